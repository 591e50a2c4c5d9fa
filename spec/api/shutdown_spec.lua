-- SIGTERM: open connections receive close 1001, the process exits 0.
-- The process is started here (not with helpers.server) because the spec
-- needs its exit status: a shell waits for it and writes the status to a file.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local socket = require "socket"
local proc = require "helpers.proc"

local BIN = os.getenv("NEXLUA_BIN") or "build/nexlua"
local q = server.shquote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function poll(fn, timeout) return proc.poll(fn, timeout, 0.02) end

describe("SIGTERM", function()
  local pid, port, log_path, status_path, pid_path

  local function alive()
    local stat = read_file("/proc/" .. pid .. "/stat")
    return stat ~= nil and not stat:match("^%d+ %b() [ZX]")
  end

  setup(function()
    log_path, status_path, pid_path = os.tmpname(), os.tmpname(), os.tmpname()
    os.remove(status_path)
    os.remove(pid_path)
    local inner = string.format(
      "%s spec/apps/shutdown_app.lua --host 127.0.0.1 --port 0 </dev/null >%s 2>&1 & " ..
      "echo $! >%s; wait $!; echo $? >%s", q(BIN), q(log_path), q(pid_path), q(status_path))
    os.execute("sh -c " .. q(inner) .. " >/dev/null 2>&1 &")
    pid = tonumber(poll(function()
      local s = read_file(pid_path)
      return s and s:match("%d+")
    end, 5))
    assert(pid, "no PID")
    port = tonumber(poll(function()
      return (read_file(log_path) or ""):match("listening on ws://127%.0%.0%.1:(%d+)")
    end, 10))
    assert(port, "the server did not start; log:\n" .. tostring(read_file(log_path)))
  end)

  teardown(function()
    if pid and alive() then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    for _, p in ipairs { log_path, status_path, pid_path } do os.remove(p) end
  end)

  it("closes open connections with 1001 and exits 0", function()
    local waiting = rawws.connect(port, "/ws")
    assert.equal(101, waiting.status)
    waiting:send_text("hi")
    assert.equal("hi", (waiting:recv_message()))
    local ticker = rawws.connect(port, "/ticker")
    assert.equal(101, ticker.status)
    assert.equal("tick", (ticker:recv_message()))

    assert(os.execute("kill -TERM " .. pid) == 0 or true)

    for _, c in ipairs { waiting, ticker } do
      local code, reason = c:expect_close(5)
      assert.equal(1001, code)
      assert.equal("server shutting down", reason)
      -- The ticker's client takes a moment to answer: meanwhile its handler
      -- keeps sending (see the next test).
      if c == ticker then socket.sleep(0.2) end
      c:close(1001)
      assert.is_true((c:wait_tcp_close(5)))
      c:close_socket()
    end

    local status = poll(function() return read_file(status_path) end, 10)
    assert(status, "the process did not exit within 10 s after SIGTERM; log:\n" ..
      tostring(read_file(log_path)))
    local log = read_file(log_path)
    assert.equal("0", status:match("%d+"), "exit status; log:\n" .. log)
    assert.matches("SIGTERM received", log, 1, true)
    -- and it no longer listens
    local ok = socket.tcp():connect("127.0.0.1", port)
    assert.is_nil(ok, "still listening after exit")
  end)

  -- A handler that sends while the server's 1001 close waits for the client's
  -- answer did not close anything itself: it must get a WebSocketDisconnect
  -- (ending it quietly), not a misuse error logged as a handler crash.
  it("logs no handler error for a handler still sending during the shutdown", function()
    local log = read_file(log_path) or ""
    assert.matches("SIGTERM received", log, 1, true)
    assert.is_nil(log:find(" ERROR ", 1, true), "a clean shutdown logs no error; log:\n" .. log)
  end)
end)
