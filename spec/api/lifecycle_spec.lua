-- Lifecycle (issue #3): on_startup / on_shutdown hooks (in order, in a
-- coroutine, may wait), a failing startup hook, SIGINT/SIGTERM with a grace
-- period (--graceful-timeout), a second signal.
-- (spec/apps/lifecycle_app.lua, spec/apps/startup_fail_app.lua)
local TestClient = require "nexlua.testing"
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local socket = require "socket"
local clock = require "helpers.clock"
local proc = require "helpers.proc"

local BIN = os.getenv("NEXLUA_BIN") or "build/nexlua"
local APP = "spec/apps/lifecycle_app.lua"
local q = server.shquote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function poll(fn, timeout) return proc.poll(fn, timeout, 0.02) end

local function lines_of(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = line end
  return out
end

-- A nexlua process whose exit status is kept: a shell waits for it and
-- writes the status to a file. Only this PID is ever signalled.
local Proc = {}
Proc.__index = Proc

local function spawn(app, args, wait_listening, env)
  local p = setmetatable({ log_path = os.tmpname(), status_path = os.tmpname(), pid_path = os.tmpname() }, Proc)
  os.remove(p.status_path)
  os.remove(p.pid_path)
  local argv = { q(BIN), q(app), "--host", "127.0.0.1", "--port", "0" }
  for k, v in pairs(env or {}) do table.insert(argv, 1, k .. "=" .. q(v)) end
  for _, a in ipairs(args or {}) do argv[#argv + 1] = q(a) end
  local inner = string.format("%s </dev/null >%s 2>&1 & echo $! >%s; wait $!; echo $? >%s",
    table.concat(argv, " "), q(p.log_path), q(p.pid_path), q(p.status_path))
  os.execute("sh -c " .. q(inner) .. " >/dev/null 2>&1 &")
  p.pid = tonumber(poll(function()
    local s = read_file(p.pid_path)
    return s and s:match("%d+")
  end, 5))
  assert(p.pid, "no PID for " .. app)
  if wait_listening ~= false then
    p.port = tonumber(poll(function()
      return p:log():match("listening on ws://127%.0%.0%.1:(%d+)") or p:status()
    end, 10))
    assert(p.port and p.port > 255, "the server did not start; log:\n" .. p:log())
  end
  return p
end

function Proc:log() return read_file(self.log_path) or "" end
function Proc:status()
  local s = read_file(self.status_path)
  return s and s:match("%d+")
end
function Proc:wait_exit(timeout) return poll(function() return self:status() end, timeout) end
function Proc:signal(name) os.execute("kill -" .. name .. " " .. self.pid .. " 2>/dev/null") end
function Proc:cleanup()
  if not self:status() then
    self:signal("KILL")
    self:wait_exit(2)
  end
  for _, f in ipairs { self.log_path, self.status_path, self.pid_path } do os.remove(f) end
end

-- Position of plain text in s, or fails naming what is missing.
local function pos(s, text)
  local i = s:find(text, 1, true)
  assert(i, "missing " .. string.format("%q", text) .. " in the log:\n" .. s)
  return i
end

describe("startup and shutdown hooks, in-process (TestClient)", function()
  it("run in order, in a coroutine, may wait; startup before serving, shutdown on close", function()
    local app = dofile(APP)
    local client = TestClient(app, { timeout = 3 })
    local ok, err = pcall(function()
      local ws = client:websocket_connect("/ws/a")
      ws:send_text("ping")
      assert.equal("ping", ws:receive_text(2))
    end)
    client:close()
    assert(ok, err)
    local ev = app.state.events
    assert.matches("^startup hook 1 done %(slept 0%.0[4-9] s, in a coroutine: true%)$", ev[1])
    assert.equal("startup hook 2 done", ev[2])
    assert.equal("handler a accepted", ev[3])
    local s1, s2
    for i, e in ipairs(ev) do
      if e == "shutdown hook 1 done" then s1 = i end
      if e:match("^shutdown hook 2 done %(slept 0%.0[4-9] s%)$") then s2 = i end
    end
    assert.is_truthy(s1, "shutdown hook 1 did not run: " .. table.concat(ev, " | "))
    assert.is_truthy(s2, "shutdown hook 2 did not run (or did not wait): " .. table.concat(ev, " | "))
    assert.is_true(s1 < s2)
  end)

  it("a failing shutdown hook is logged and the next ones still run", function()
    local nexlua = require "nexlua"
    local app = nexlua.App()
    local ran = {}
    app:ws_route("/ws", function(ws) ws:accept() end)
    app:on_shutdown(function() ran[#ran + 1] = 1 end)
    app:on_shutdown(function() error("the cache would not flush") end)
    app:on_shutdown(function() ran[#ran + 1] = 3 end)
    local client = TestClient(app, { timeout = 3 })
    client:start()
    client:close()
    assert.same({ 1, 3 }, ran)
  end)
end)

describe("lifecycle of a real process", function()
  local procs = {}
  after_each(function()
    for _, p in ipairs(procs) do p:cleanup() end
    procs = {}
  end)
  local function start(app, args, wait)
    local p = spawn(app, args, wait)
    procs[#procs + 1] = p
    return p
  end

  it("runs the startup hooks in order before listening", function()
    local p = start(APP)
    local log = p:log()
    assert.is_true(pos(log, "startup hook 1 done") < pos(log, "startup hook 2 done"))
    assert.is_true(pos(log, "startup hook 2 done") < pos(log, "listening on ws://"))
  end)

  it("a failing startup hook stops the server with a clear message and a non-zero exit", function()
    local p = start("spec/apps/startup_fail_app.lua", {}, false)
    local status = p:wait_exit(5)
    local log = p:log()
    assert.is_truthy(status, "the server kept running after a failed startup hook; log:\n" .. log)
    assert.are_not.equal("0", status, "exit status; log:\n" .. log)
    assert.matches("ERROR startup hook #2 %([^\n]*startup_fail_app%.lua:%d+%) failed: [^\n]*cannot reach " ..
      "the database", log)
    assert.matches("startup failed: not serving", log, 1, true)
    assert.matches("first startup hook ran", log, 1, true)
    assert.is_nil(log:find("third startup hook ran", 1, true), "hooks after the failed one ran:\n" .. log)
    assert.is_nil(log:find("listening on", 1, true), "it listened:\n" .. log)
  end)

  for _, sig in ipairs { "TERM", "INT" } do
    it("SIG" .. sig .. ": stops accepting, closes every WebSocket with 1001, runs shutdown hooks, exits 0",
      function()
        local p = start(APP)
        local a, b = rawws.connect(p.port, "/ws/a"), rawws.connect(p.port, "/ws/b")
        assert.equal(101, a.status)
        assert.equal(101, b.status)
        a:send_text("x")
        assert.equal("x", (a:recv_message()))
        p:signal(sig)
        for _, c in ipairs { a, b } do
          local code, reason = c:expect_close(3)
          assert.equal(1001, code)
          assert.equal("server shutting down", reason)
        end
        -- no new connections once the shutdown has begun
        local t = socket.tcp()
        t:settimeout(2)
        local ok, err = t:connect("127.0.0.1", p.port)
        t:close()
        assert.is_nil(ok, "a new connection was accepted during the shutdown")
        assert.equal("connection refused", err)
        for _, c in ipairs { a, b } do
          c:close(1001)
          assert.is_true((c:wait_tcp_close(3)))
          c:close_socket()
        end
        local status = p:wait_exit(5)
        local log = p:log()
        assert.equal("0", status, "exit status; log:\n" .. log)
        local got = pos(log, "SIG" .. sig .. " received: shutting down (grace period 10 s)")
        local h1 = pos(log, "shutdown hook 1 done")
        local h2 = pos(log, "shutdown hook 2 done")
        assert.is_true(got < h1 and h1 < h2)
        assert.is_nil(log:find(" ERROR ", 1, true), "log:\n" .. log)
      end)
  end

  it("gives handlers the grace period to finish their cleanup after the disconnect", function()
    local p = start(APP)
    local a = rawws.connect(p.port, "/ws/cleanup")
    assert.equal(101, a.status)
    assert.truthy(poll(function() return p:log():find("handler cleanup accepted", 1, true) end, 2))
    p:signal("TERM")
    assert.equal(1001, (a:expect_close(3)))
    a:close(1001) -- answers at once: the connection is over, the handler is not
    assert.is_true((a:wait_tcp_close(3)))
    a:close_socket()
    local status = p:wait_exit(5)
    local log = p:log()
    assert.equal("0", status, "exit status; log:\n" .. log)
    pos(log, "handler cleanup saw the end")
    -- The handler sleeps 0.3 s after the disconnect, then logs; the grace
    -- period (10 s) is for exactly that.
    local done = pos(log, "CLEANUP-DONE cleanup")
    assert.is_true(done < pos(log, "shutdown hook 1 done"), "cleanup finished after the shutdown hooks")
  end)

  -- A handshake whose middleware is still running when SIGTERM arrives must
  -- not end up as an open WebSocket nobody closes: it is either refused or
  -- closed with 1001 like the others, and the server exits promptly.
  it("a handshake still in its middleware at SIGTERM is refused or closed with 1001", function()
    local p = start(APP)
    local c = rawws.open_tcp(p.port)
    c:send_raw((rawws.build_request(p.port, "/slow-mw/late", {})))
    assert.truthy(poll(function() return p:log():find("slow middleware waiting for late", 1, true) end, 2))
    local t0 = clock()
    p:signal("TERM")
    local status = c:read_http_response(3)
    if status == 101 then
      local f, err, detail = c:recv_frame(1.5)
      assert.is_truthy(f, "upgraded during the shutdown and then left open (" .. tostring(detail or err) ..
        "); log:\n" .. p:log())
      assert.equal(rawws.OP.CLOSE, f.opcode, rawws.describe_frame(f))
      assert.equal(1001, f.payload:byte(1) * 256 + f.payload:byte(2))
      c:close(1001)
    else
      assert.is_truthy(status and status >= 400, "no answer to the handshake: " .. tostring(status))
    end
    local exited = p:wait_exit(3)
    c:close_socket()
    assert.is_truthy(exited, "still running 3 s after SIGTERM; log:\n" .. p:log())
    assert.is_true(clock() - t0 < 3)
  end)

  it("--graceful-timeout bounds the wait for a client that never answers the close", function()
    local p = start(APP, { "--graceful-timeout", "0.5", "--close-timeout", "30" })
    local a = rawws.connect(p.port, "/ws/mute")
    assert.equal(101, a.status)
    local t0 = clock()
    p:signal("TERM")
    assert.equal(1001, (a:expect_close(3))) -- and never answered
    local status = p:wait_exit(5)
    local took = clock() - t0
    local log = p:log()
    assert.equal("0", status, "exit status; log:\n" .. log)
    pos(log, "grace period 0.5 s")
    pos(log, "still open after the grace period")
    pos(log, "shutdown hook 2 done")
    assert.is_true(took >= 0.4 and took < 3, "exited " .. took .. " s after SIGTERM")
    a:close_socket()
  end)

  -- where: the framework's Lua files in the repository, or installed
  -- elsewhere (NEXLUA_LUA_DIR) under a path that does not end in lua/nexlua/
  for _, where in ipairs { "repository", "installed" } do
  it("a handler still running after the grace period is named, with where it waits (" .. where .. ")", function()
    local dir = proc.tmpdir()
    finally(function() proc.rmdir(dir) end)
    local env
    if where == "installed" then
      assert(os.execute("mkdir -p " .. dir .. "/share && cp -r lua/nexlua " .. dir .. "/share/"))
      env = { NEXLUA_LUA_DIR = dir .. "/share" }
    end
    local app = dir .. "/stuck_app.lua"
    proc.write_file(app, table.concat({
      'local nexlua = require "nexlua"',
      "local app = nexlua.App()",
      'app:ws_route("/stuck", function(ws)',
      "  ws:accept()",
      '  ws:send_text("stuck")',
      "  nexlua.Queue():get() -- line 6: never learns of the shutdown",
      "end)",
      "return app", "",
    }, "\n"))
    local p = spawn(app, { "--graceful-timeout", "0.3" }, true, env)
    procs[#procs + 1] = p
    local a = rawws.connect(p.port, "/stuck")
    assert.equal("stuck", (a:recv_message()))
    p:signal("TERM")
    assert.equal(1001, (a:expect_close(3)))
    a:close(1001)
    local status = p:wait_exit(5)
    local log = p:log()
    assert.equal("0", status, "exit status; log:\n" .. log)
    pos(log, "0 connection(s) still open after the grace period, 1 handler(s) running: stopping")
    pos(log, "still running: the handler of a connection that has ended, waiting at " .. app .. ":6")
    a:close_socket()
  end)
  end

  it("App{graceful_timeout = 0.5} sets the grace period (a flag would override it)", function()
    local dir = proc.tmpdir()
    finally(function() proc.rmdir(dir) end)
    local app = dir .. "/grace_app.lua"
    proc.write_file(app, table.concat({
      'local nexlua = require "nexlua"',
      "local app = nexlua.App{ graceful_timeout = 0.5 }",
      'app:ws_route("/ws", function(ws) ws:accept() for _ in ws:iter() do end end)',
      "return app", "",
    }, "\n"))
    local p = start(app)
    p:signal("TERM")
    assert.equal("0", p:wait_exit(5), "exit status; log:\n" .. p:log())
    pos(p:log(), "grace period 0.5 s")
  end)

  it("a second signal exits at once, non-zero, while the grace period runs", function()
    local p = start(APP, { "--graceful-timeout", "30", "--close-timeout", "30" })
    local a = rawws.connect(p.port, "/ws/mute")
    assert.equal(101, a.status)
    p:signal("TERM")
    assert.equal(1001, (a:expect_close(3))) -- never answered: the server keeps waiting
    socket.sleep(0.3)
    assert.is_nil(p:status(), "exited before the grace period ended; log:\n" .. p:log())
    pos(p:log(), "grace period 30 s")
    local t0 = clock()
    p:signal("TERM")
    local status = p:wait_exit(3)
    local took = clock() - t0
    local log = p:log()
    assert.is_truthy(status, "still running after the second SIGTERM; log:\n" .. log)
    assert.are_not.equal("0", status)
    assert.is_true(took < 3, "took " .. took .. " s")
    pos(log, "second SIGTERM")
    a:close_socket()
  end)

  -- One request delivered twice: `timeout(1)` signals its child, then its
  -- own process group; a script may kill a pid twice. Within a quarter
  -- second, a second stop signal is the same request.
  it("two SIGTERMs back to back are one stop: graceful, hooks run, exit 0 (5 rounds)", function()
    for round = 1, 5 do
      local p = start(APP)
      local a = rawws.connect(p.port, "/ws/r" .. round)
      assert.equal(101, a.status)
      assert(poll(function() return p:log():find("handler r" .. round .. " accepted", 1, true) end, 3))
      os.execute("kill -TERM " .. p.pid .. "; kill -TERM " .. p.pid)
      assert.equal("0", p:wait_exit(10), "round " .. round .. "; log:\n" .. p:log())
      local log = p:log()
      assert.is_nil(log:find("second SIGTERM", 1, true), "round " .. round .. "; log:\n" .. log)
      pos(log, "shutdown hook 2 done")
      a:close_socket()
    end
  end)

  it("timeout(1) stopping nexlua: one stop, the shutdown hooks run (3 rounds)", function()
    local log_path = os.tmpname()
    finally(function() os.remove(log_path) end)
    for _ = 1, 3 do
      os.execute(string.format("timeout -s TERM 3 %s %s --port 0 >%s 2>&1", q(BIN), q(APP), q(log_path)))
      local log = read_file(log_path) or ""
      pos(log, "listening on")
      pos(log, "shutdown hook 2 done")
      assert.is_nil(log:find("second SIGTERM", 1, true), log)
    end
  end)
end)

describe("signals while the event loop is held or the app is still starting", function()
  local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == 0 or
    os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end

  -- The watchdog: a coroutine computing for more than 2 s without a wait
  -- is named in a WARN entry while it holds the loop, and again once it
  -- has waited, with how long it held it and where it waited.
  it("a handler computing for 2.6 s without a wait is warned about during the hold and after it",
    function()
    local p = spawn("spec/apps/spin_app.lua")
    finally(function() p:cleanup() end)
    local c = rawws.connect(p.port, "/compute?s=2.6")
    assert.equal(101, c.status)
    local port = c.sock:getsockname() and select(2, c.sock:getsockname())
    assert.equal("done", (c:recv_message(10)))
    local log = p:log()
    assert.matches("WARN the event loop has been held for 2%.0 s by a handler, task or hook running " ..
      "Lua without a wait", log)
    -- (2.6 s of CPU: longer on a busy machine)
    assert.matches("WARN the event loop was held for %d+%.%d s by the handler of client 127%.0%.0%.1:" ..
      port .. "; it then waited at spec/apps/spin_app%.lua:%d+\n", log)
    local line = 0
    for n, text in ipairs(lines_of("spec/apps/spin_app.lua")) do
      if text:find("WAITS HERE", 1, true) then line = n end
    end
    assert.matches("waited at spec/apps/spin_app%.lua:" .. line .. "\n", log)
    -- a short computation is not: 0.5 s
    local c2 = rawws.connect(p.port, "/compute?s=0.5")
    assert.equal("done", (c2:recv_message(10)))
    local _, n = p:log():gsub("event loop has been held", "")
    assert.equal(1, n, p:log())
    c:close_socket()
    c2:close_socket()
  end)

  it("an app with no routes is served, with a warning", function()
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write('return require("nexlua").App()\n')
    f:close()
    local p = spawn(path)
    finally(function() p:cleanup() os.remove(path) end)
    pos(p:log(), "WARN the app has no routes: every request gets HTTP 404")
    pos(p:log(), "(0 routes)")
  end)

  -- The watchdog counts its own looks, not the clock: a process stopped
  -- for 2.5 s (SIGSTOP, a debugger) during a 0.8 s computation held nothing.
  it("a process stopped during a short computation is not warned about", function()
    local p = spawn("spec/apps/spin_app.lua")
    finally(function() p:cleanup() end)
    local c = rawws.connect(p.port, "/compute?s=0.8")
    socket.sleep(0.3)
    p:signal("STOP")
    socket.sleep(2.5)
    p:signal("CONT")
    assert.equal("done", (c:recv_message(10)))
    assert.is_nil(p:log():find("event loop has been held", 1, true), p:log())
    c:close_socket()
  end)

  -- A hook may be any callable value (a table with __call), as check_fn
  -- lets it be: each runs in a task of its own, through a function.
  it("startup and shutdown hooks that are callable tables run; SIGTERM exits 0", function()
    local path = os.tmpname() .. ".lua"
    local f = assert(io.open(path, "w"))
    f:write([[
local nexlua = require "nexlua"
local app = nexlua.App()
local function callable(text)
  return setmetatable({}, { __call = function(_, why) nexlua.log.info("%s %s", text, tostring(why)) end })
end
app:on_startup(callable("CALLABLE STARTUP"))
app:on_shutdown(callable("CALLABLE SHUTDOWN"))
app:ws_route("/ws", function(ws) ws:accept() end)
return app
]])
    f:close()
    local p = spawn(path)
    finally(function() p:cleanup() os.remove(path) end)
    pos(p:log(), "CALLABLE STARTUP")
    p:signal("TERM")
    assert.equal("0", p:wait_exit(5), p:log())
    pos(p:log(), "CALLABLE SHUTDOWN shutdown")
  end)

  it("a handler that never waits is warned about while it holds the loop", function()
    local p = spawn("spec/apps/spin_app.lua")
    finally(function() p:cleanup() end)
    local c = rawws.connect(p.port, "/spin")
    assert.equal(101, c.status)
    assert(poll(function() return p:log():find("event loop has been held", 1, true) end, 5), p:log())
    assert.is_nil(p:log():find("event loop was held", 1, true))
    p:signal("KILL")
    c:close_socket()
  end)

  it("a second SIGTERM ends a process whose handler never yields", function()
    local p = spawn("spec/apps/spin_app.lua")
    finally(function() p:cleanup() end)
    local c = rawws.connect(p.port, "/spin")
    assert.equal(101, c.status)
    socket.sleep(0.3)
    p:signal("TERM")
    socket.sleep(0.3)
    assert.is_nil(p:status(), "exited on the first SIGTERM; log:\n" .. p:log())
    p:signal("TERM")
    assert.equal("1", p:wait_exit(3), "exit status; log:\n" .. p:log())
    pos(p:log(), "second SIGTERM while the event loop is held")
    -- an entry like any other: its UTC time (this year) and level
    local year = os.date("!%Y")
    assert.matches("\n" .. year .. "%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ WARN second SIGTERM while the " ..
      "event loop is held", "\n" .. p:log())
    c:close_socket()
  end)

  it("a second SIGTERM ends a process whose shutdown hook holds the loop (taken the first)", function()
    local p = spawn("spec/apps/spin_app.lua", { "--graceful-timeout", "0" })
    finally(function() p:cleanup() end)
    local c = rawws.connect(p.port, "/arm-shutdown")
    assert.equal("armed", (c:recv_message()))
    c:close_socket()
    p:signal("TERM")
    assert(poll(function() return p:log():find("SIGTERM received", 1, true) end, 3), p:log())
    socket.sleep(0.3)
    assert.is_nil(p:status(), "exited on the first SIGTERM; log:\n" .. p:log())
    p:signal("TERM")
    assert.equal("1", p:wait_exit(5), "exit status; log:\n" .. p:log())
    pos(p:log(), "second SIGTERM while the event loop is held")
  end)

  it("a second SIGTERM to the master of --workers ends workers whose handlers never yield", function()
    local p = spawn("spec/apps/spin_app.lua", { "--workers", "2" })
    local pids = {}
    finally(function()
      p:cleanup()
      for _, pid in ipairs(pids) do os.execute("kill -9 " .. pid .. " 2>/dev/null") end
    end)
    assert(poll(function()
      pids = {}
      for pid in p:log():gmatch("serving %(pid (%d+)%)") do pids[#pids + 1] = pid end
      return #pids == 2
    end, 5), p:log())
    local conns = {}
    for i = 1, 6 do conns[i] = rawws.connect(p.port, "/spin") end -- (the kernel spreads them)
    socket.sleep(0.3)
    p:signal("TERM")
    socket.sleep(0.3)
    p:signal("TERM")
    assert.equal("1", p:wait_exit(5), "exit status; log:\n" .. p:log())
    for _, pid in ipairs(pids) do
      assert.is_truthy(poll(function() return not alive(pid) end, 3),
        "worker " .. pid .. " still running; log:\n" .. p:log())
    end
    for _, c in ipairs(conns) do c:close_socket() end
  end)

  -- The loop keeps running while a hook waits on something nothing will
  -- wake (it ended at once, status 0, with nothing logged).
  it("a startup hook that never returns keeps the process up (not listening) until a signal, which " ..
    "cancels it and then runs the shutdown hooks", function()
    local p = spawn("spec/apps/forever_hooks_app.lua", {}, false, { FOREVER = "startup" })
    finally(function() p:cleanup() end)
    socket.sleep(1)
    assert.is_nil(p:status(), "the process ended; log:\n" .. p:log())
    assert.is_nil(p:log():find("listening on", 1, true), p:log())
    p:signal("TERM")
    assert.equal("0", p:wait_exit(5), "exit status; log:\n" .. p:log())
    -- The stop cancelled the startup hook's wait; the shutdown hooks ran
    -- once it had ended, not beside it; the server never listened.
    local log = p:log()
    assert.matches("startup hook woke: cancelled", log)
    assert.matches("startup hook #1 %([^)]*forever_hooks_app%.lua:%d+%) cancelled: the server is stopping", log)
    assert.is_true(pos(log, "startup hook cleaned up") < pos(log, "first shutdown hook runs"), log)
    assert.is_true(pos(log, "first shutdown hook runs") < pos(log, "second shutdown hook ran"), log)
    assert.is_nil(log:find("listening on", 1, true), log)
    assert.is_nil(log:find("startup failed", 1, true), log)
  end)

  it("a shutdown hook that never returns keeps the process up until a second signal", function()
    local p = spawn("spec/apps/forever_hooks_app.lua", {}, true, { FOREVER = "shutdown" })
    finally(function() p:cleanup() end)
    p:signal("TERM")
    socket.sleep(1)
    assert.is_nil(p:status(), "the process ended in the first shutdown hook; log:\n" .. p:log())
    p:signal("TERM")
    assert.equal("1", p:wait_exit(5), "exit status; log:\n" .. p:log())
  end)

  it("a SIGHUP while the app loads or starts waits until it listens, then reloads", function()
    local p = spawn("spec/apps/slow_start_app.lua", {}, false)
    finally(function() p:cleanup() end)
    socket.sleep(0.2) -- loading (0.4 s)
    p:signal("HUP")
    assert(poll(function() return p:log():find("startup begins", 1, true) end, 5), p:log())
    p:signal("HUP") -- in the startup hook (0.6 s)
    assert(poll(function()
      local _, n = p:log():gsub("startup done", "")
      return n >= 2
    end, 10), "no reload after the start; log:\n" .. p:log())
    local log = p:log()
    assert.is_nil(p:status(), "the process ended; log:\n" .. log)
    -- (a process the app started while loading does not have SIGHUP blocked)
    local blk = assert(log:match("child SigBlk:%s*(%x+)"), log)
    assert.equal(0, tonumber(blk:sub(-1), 16) % 2, "SIGHUP blocked in a child: " .. blk)
    local done, stop = pos(log, "startup done"), pos(log, "shutdown (reload)")
    assert.is_true(done < stop, "the app was shut down before its startup finished; log:\n" .. log)
    assert.is_true(pos(log, "listening on") < stop, log)
    p:signal("TERM")
    assert.equal("0", p:wait_exit(5), "exit status; log:\n" .. p:log())
  end)
end)
