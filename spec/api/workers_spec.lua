-- --workers N: a master process and N workers sharing the port with
-- SO_REUSEPORT, each with the whole app lifecycle; the master forwards
-- SIGTERM and SIGHUP, replaces a worker that dies, and exits 0 after a clean
-- shutdown. (spec/apps/workers_app.lua answers "worker_id pid served generation".)
local proc = require "helpers.proc"
local rawws = require "helpers.rawws"
local socket = require "socket"

local BIN = os.getenv("NEXLUA_BIN") or "build/nexlua"
local APP = "spec/apps/workers_app.lua"

local function poll(fn, timeout) return proc.poll(fn, timeout, 0.05) end

local function count(s, pattern)
  local n = 0
  for _ in s:gmatch(pattern) do n = n + 1 end
  return n
end

-- The parent pid of pid, from /proc (nil once it is gone).
local function ppid(pid)
  local stat = proc.read_file("/proc/" .. pid .. "/stat")
  return stat and tonumber(stat:match("^%d+ %b() %a (%d+)"))
end

local gone = proc.gone

-- Opens a connection to /who; returns the client and {id=, pid=, served=, gen=}.
local function who(port)
  local c = rawws.connect(port, "/who")
  assert.equal(101, c.status)
  local id, pid, served, gen = c:recv_message(10):match("^(%d+) (%d+) (%d+) (%d+)$")
  return c, { id = tonumber(id), pid = tonumber(pid), served = tonumber(served), gen = tonumber(gen) }
end

-- Opens connections (held open, so that the kernel spreads them) until
-- pred(seen) is true or n connections are open; closes them. seen: id -> info.
local function sample(port, n, pred)
  local clients, seen = {}, {}
  for _ = 1, n do
    local c, info = who(port)
    clients[#clients + 1] = c
    seen[info.id] = info
    if pred and pred(seen, info) then break end
  end
  for _, c in ipairs(clients) do c:close_socket() end
  return seen
end

-- Connections to /room until they are on `want` different workers (or n
-- are open); returns the list of {c=, id=, pid=} (all kept open).
local function room_members(port, n, want)
  local list, ids, k = {}, {}, 0
  for _ = 1, n do
    local c = rawws.connect(port, "/room")
    assert.equal(101, c.status)
    local id, pid = c:recv_message(10):match("^W (%d+) (%d+)$")
    list[#list + 1] = { c = c, id = tonumber(id), pid = tonumber(pid) }
    if not ids[id] then
      ids[id] = true
      k = k + 1
      if k >= want then break end
    end
  end
  return list, k
end

describe("--workers topics", function()
  local s
  after_each(function()
    if s then s:stop(15) end
    s = nil
  end)

  it("a message published in one worker reaches the subscribers of every worker", function()
    s = proc.start(APP, { "--workers", "3" })
    local members, k = room_members(s.port, 60, 3)
    assert.is_true(k >= 2, "all connections landed on one worker")
    for round = 1, 3 do
      local from = members[(round - 1) % #members + 1]
      from.c:send_text("hello " .. round)
      local want = string.format("[w%d] hello %d", from.id, round)
      for _, m in ipairs(members) do
        local msg, op = m.c:recv_message(10)
        assert.equal(want, msg, "member on worker " .. m.id)
        assert.equal(1, op) -- text
      end
    end
    members[1].c:send_text("bin:raw")
    for _, m in ipairs(members) do
      local msg, op = m.c:recv_message(10)
      assert.equal(string.format("[w%d] bin:raw", members[1].id), msg)
      assert.equal(2, op) -- binary
    end
    for _, m in ipairs(members) do m.c:close_socket() end
    assert.equal(0, s:stop(15))
  end)

  it("a replacement worker is in the relay too", function()
    s = proc.start(APP, { "--workers", "2" })
    local members, k = room_members(s.port, 60, 2)
    assert.equal(2, k, "all connections landed on one worker")
    local victim
    for _, m in ipairs(members) do if m.id == 2 then victim = m.pid end end
    for _, m in ipairs(members) do m.c:close_socket() end
    assert(proc.exec_ok("kill -KILL " .. victim))
    assert(poll(function() return s:log():find("worker 2 %(pid %d+%) is serving again") end, 20),
      "no replacement; log:\n" .. s:log())
    local again, k2 = room_members(s.port, 60, 2)
    assert.equal(2, k2)
    local fresh
    for _, m in ipairs(again) do
      if m.id == 2 then
        assert.are_not.equal(victim, m.pid)
        fresh = m
      end
    end
    local from = again[1].id == 1 and again[1] or again[#again]
    if from.id ~= 1 then
      for _, m in ipairs(again) do if m.id == 1 then from = m end end
    end
    assert.equal(1, from.id)
    from.c:send_text("to the new one")
    assert.equal("[w1] to the new one", fresh.c:recv_message(10))
    assert.equal("[w1] to the new one", from.c:recv_message(10)) -- a subscriber too
    fresh.c:send_text("and back")
    assert.equal("[w2] and back", from.c:recv_message(10))
    for _, m in ipairs(again) do m.c:close_socket() end
    assert.equal(0, s:stop(15))
  end)
end)

describe("--workers", function()
  local s
  after_each(function()
    if s then s:stop(15) end
    s = nil
  end)

  it("spreads connections over workers, each a child of the master with its own state", function()
    s = proc.start(APP, { "--workers", "3" })
    local log = s:log()
    assert.equal(1, count(log, "listening on ws://"), log)
    assert.equal(3, count(log, "STARTUP worker=%d"), log)
    for i = 1, 3 do assert.matches("%[w" .. i .. "%] STARTUP worker=" .. i, log) end

    local seen = sample(s.port, 60, function(seen)
      local k = 0
      for _ in pairs(seen) do k = k + 1 end
      return k == 3
    end)
    local ids = {}
    for id, info in pairs(seen) do
      ids[#ids + 1] = id
      assert.are_not.equal(s.pid, info.pid)
      assert.equal(s.pid, ppid(info.pid))
    end
    -- SO_REUSEPORT hashes each connection's addresses and ports: over up to
    -- 60 connections, more than one worker serves.
    assert.is_true(#ids >= 2, "one worker served everything")
    assert.equal(0, s:stop(15))
  end)

  it("SIGTERM: every worker runs its shutdown hooks, the master exits 0", function()
    s = proc.start(APP, { "--workers", "3" })
    local seen = sample(s.port, 10)
    local pids = {}
    for _, info in pairs(seen) do pids[#pids + 1] = info.pid end
    s:signal("TERM")
    assert.equal(0, s:wait_exit(20), s:log())
    local log = s:log()
    assert.equal(3, count(log, "SHUTDOWN worker=%d"), log)
    assert.matches("SIGTERM received: shutting down 3 worker%(s%)", log)
    for _, pid in ipairs(pids) do assert.is_true(gone(pid), "worker " .. pid .. " still running") end
  end)

  it("SIGTERM to the master and every worker at once (systemctl stop) is one graceful stop", function()
    s = proc.start(APP, { "--workers", "2" })
    -- a connection on each worker, whose handler cleans up for 0.5 s
    local clients, pids = {}, {}
    for _ = 1, 60 do
      local c = rawws.connect(s.port, "/slow_end")
      assert.equal(101, c.status)
      clients[#clients + 1] = c
      local pid = tonumber(c:recv_message(10):match("^S %d+ (%d+)$"))
      pids[pid] = true
      if next(pids, next(pids)) then break end
    end
    local children = proc.read_file("/proc/" .. s.pid .. "/task/" .. s.pid .. "/children") or ""
    local all = { tostring(s.pid) }
    for pid in children:gmatch("%d+") do all[#all + 1] = pid end
    assert.equal(3, #all, "workers: " .. children)
    assert(proc.exec_ok("kill -TERM " .. table.concat(all, " ")))
    for _, c in ipairs(clients) do c:close_socket() end
    assert.equal(0, s:wait_exit(20), s:log())
    local log = s:log()
    assert.equal(2, count(log, "SHUTDOWN worker=%d"), log)
    assert.equal(#clients, count(log, "CLEANED worker=%d"), log)
    assert.is_nil(log:find("second SIGTERM", 1, true), log)
  end)

  -- A worker that has nothing to wait for ends fast: the master's copy of
  -- the signal then came while it closed its handles (the default action
  -- back: "killed by SIGINT", and the master exited 1).
  -- A stop sent twice within a quarter second (a script's double kill) is
  -- one request for the master too, as for a single server.
  it("two SIGTERMs to the master 0.1 s apart are one stop: graceful, exit 0 (3 rounds)", function()
    for _ = 1, 3 do
      s = proc.start(APP, { "--workers", "2" })
      local c = rawws.connect(s.port, "/slow_end")
      assert.equal(101, c.status)
      assert(proc.exec_ok("kill -TERM " .. s.pid .. "; sleep 0.1; kill -TERM " .. s.pid))
      assert.equal(0, s:wait_exit(20), s:log())
      assert.is_nil(s:log():find("second SIGTERM", 1, true), s:log())
      assert.is_nil(s:log():find("killing it", 1, true), s:log())
      c:close_socket()
      s = nil
    end
  end)

  it("SIGINT to every process of an idle server: exit 0, every time", function()
    for _ = 1, 4 do
      s = proc.start(APP, { "--workers", "3" })
      local children = proc.read_file("/proc/" .. s.pid .. "/task/" .. s.pid .. "/children") or ""
      local all = { tostring(s.pid) }
      for pid in children:gmatch("%d+") do all[#all + 1] = pid end
      assert.equal(4, #all, "workers: " .. children)
      assert(proc.exec_ok("kill -INT " .. table.concat(all, " ")))
      assert.equal(0, s:wait_exit(20), s:log())
      assert.is_nil(s:log():find("killed by", 1, true), s:log())
      s = nil
    end
  end)

  -- Two pending copies of one signal are delivered once: a worker stopped
  -- (SIGSTOP) while the group's SIGTERM and the master's copy arrive sees
  -- one; the master's second signal, later, must not pass for the copy.
  it("after a stop sent to every process, a second SIGTERM to the master still ends the workers at once",
    function()
    s = proc.start(APP, { "--workers", "2" })
    local clients = {}
    for _ = 1, 4 do
      local c = rawws.connect(s.port, "/slow_end")
      assert.equal(101, c.status)
      clients[#clients + 1] = c
    end
    local children = proc.read_file("/proc/" .. s.pid .. "/task/" .. s.pid .. "/children") or ""
    local w = {}
    for pid in children:gmatch("%d+") do w[#w + 1] = pid end
    assert.equal(2, #w, "workers: " .. children)
    assert(proc.exec_ok("kill -STOP " .. w[1]))
    assert(proc.exec_ok("kill -TERM " .. s.pid .. " " .. w[1] .. " " .. w[2]))
    socket.sleep(0.2)
    assert(proc.exec_ok("kill -CONT " .. w[1]))
    socket.sleep(0.4) -- (the workers wait for their clients' close: the grace period)
    assert(proc.exec_ok("kill -TERM " .. s.pid))
    assert.equal(1, s:wait_exit(10), s:log())
    local log = s:log()
    assert.matches("second SIGTERM: exiting now", log)
    assert.is_nil(log:find("still running: killing it", 1, true), log)
    for _, c in ipairs(clients) do c:close_socket() end
  end)

  it("a worker killed with SIGKILL is logged and replaced", function()
    s = proc.start(APP, { "--workers", "2" })
    local _, first = who(s.port)
    assert.equal(s.pid, ppid(first.pid)) -- only a child of the process we started is signalled
    assert(proc.exec_ok("kill -KILL " .. first.pid))
    local pat = "worker " .. first.id .. " %(pid " .. first.pid .. "%) died %(killed by SIGKILL%): " ..
      "starting a replacement"
    assert.truthy(s:wait_log(pat, 20), s:log())
    local again = s:wait_log("worker " .. first.id .. " %(pid (%d+)%) is serving again", 20)
    assert.truthy(again, s:log())
    assert.are_not.equal(first.pid, tonumber(again))
    -- The replacement answers (with a fresh state: it is a new process).
    local seen = poll(function()
      local got = sample(s.port, 40, function(_, info) return info.pid == tonumber(again) end)
      local r = got[first.id]
      return r and r.pid == tonumber(again) and r
    end, 30)
    assert.truthy(seen, "the replacement worker never answered")
    assert.equal(1, count(s:log(), "listening on ws://"))
    assert.equal(0, s:stop(15))
  end)

  it("a worker stopped on its own by SIGTERM: a warning, not an error, and a replacement", function()
    s = proc.start(APP, { "--workers", "2" })
    local _, first = who(s.port)
    assert.equal(s.pid, ppid(first.pid))
    assert(proc.exec_ok("kill -TERM " .. first.pid))
    local pat = "WARN worker " .. first.id .. " %(pid " .. first.pid .. "%) stopped %(exit status 0: " ..
      "a signal sent to it alone%?%): starting a replacement"
    assert.truthy(s:wait_log(pat, 20), s:log())
    assert.truthy(s:wait_log("worker " .. first.id .. " %(pid %d+%) is serving again", 20), s:log())
    assert.is_nil(s:log():find("ERROR", 1, true), s:log())
    assert.equal(0, s:stop(15))
  end)

  it("a replacement that cannot start is tried again while the others keep serving", function()
    local dir = proc.tmpdir()
    local path = dir .. "/app.lua"
    local good = proc.read_file(APP)
    proc.write_file(path, good)
    s = proc.start(path, { "--workers", "2" })
    -- One connection held on each worker: one to keep, one whose worker dies.
    local held = {}
    assert.truthy(poll(function()
      local c, info = who(s.port)
      if held[info.id] then c:close_socket() else held[info.id] = { c = c, info = info } end
      return held[1] and held[2]
    end, 30), "connections never reached both workers")
    local keep, victim = held[1], held[2]
    -- The file is broken on disk (no --reload: the running workers keep
    -- their app), then worker 2 dies: its replacement cannot load the file.
    proc.write_file(path, "local x = \n")
    assert(proc.exec_ok("kill -KILL " .. victim.info.pid))
    local first = "worker 2 %(pid %d+%) did not start %(exit status 1%): trying again in 1 s; " ..
      "the other workers keep serving"
    assert.truthy(s:wait_log(first, 20), s:log())
    -- Tried again, later, with a longer delay: the master and worker 1 serve on.
    assert.truthy(s:wait_log("did not start %(exit status 1%): trying again in 2 s", 20), s:log())
    assert.is_true(s:alive())
    local c, info = who(s.port)
    assert.equal(1, info.id)
    c:close()
    -- The file is fixed: the next try starts worker 2 again.
    proc.write_file(path, good)
    assert.truthy(s:wait_log("worker 2 %(pid %d+%) is serving again", 20), s:log())
    -- The connection held on worker 1 was open all along: it closes cleanly.
    keep.c:close(1000, "bye")
    local f = keep.c:recv_frame(10)
    assert.equal(8, f and f.opcode, "worker 1's connection did not close cleanly")
    victim.c:close_socket()
    assert.equal(0, s:stop(15))
    proc.rmdir(dir)
  end)

  it("SIGHUP reloads every worker", function()
    s = proc.start(APP, { "--workers", "2" })
    s:signal("HUP")
    assert.truthy(poll(function()
      local log = s:log()
      return log:match("RELOADED worker=1 ") and log:match("RELOADED worker=2 ")
    end, 20), s:log())
    assert.matches("SIGHUP received: reloading 2 worker%(s%)", s:log())
    local seen = sample(s.port, 10)
    for _, info in pairs(seen) do assert.equal(2, info.gen) end
    assert.equal(0, s:stop(15))
  end)

  it("a startup that fails stops everything with status 1, once", function()
    s = proc.start("spec/apps/startup_fail_app.lua", { "--workers", "3" }, { expect_exit = true })
    assert.equal(1, s:wait_exit(20), s:log())
    local log = s:log()
    assert.matches("cannot reach the database", log)
    assert.matches("worker 1 %(pid %d+%) did not start %(exit status 1%): stopping", log)
    assert.is_nil(log:find("[w2]", 1, true), log) -- the others never started
    assert.is_nil(log:find("listening on", 1, true), log)
  end)

  it("an app that cannot be loaded exits 1 with the load error", function()
    local dir = proc.tmpdir()
    local path = dir .. "/bad.lua"
    proc.write_file(path, "local x = \n")
    local code, _, err = proc.run({ BIN, path, "--port", "0", "--workers", "2" }, 20)
    proc.rmdir(dir)
    assert.equal(1, code)
    -- a log entry of the worker, with its time and tag
    assert.matches("%d%dZ ERROR %[w%d%] cannot load " .. path:gsub("%p", "%%%0"), err)
    assert.equal(1, count(err, "cannot load"))
  end)

  it("--workers 1 is the single process of old", function()
    s = proc.start(APP, { "--workers", "1" })
    local _, info = who(s.port)
    assert.equal(1, info.id)
    assert.equal(s.pid, info.pid)
    assert.is_nil(s:log():find("[w1]", 1, true))
    assert.equal(0, s:stop(15))
  end)

  for _, bad in ipairs({ "0", "-1", "x", "1.5" }) do
    it("--workers " .. bad .. " is a command-line error (exit 2)", function()
      local code, out, err = proc.run({ BIN, APP, "--workers", bad }, 10)
      assert.equal(2, code)
      assert.equal("", out)
      assert.matches("^nexlua: option %-%-workers needs a whole number from 1 to %d+, got \"" ..
        bad:gsub("%p", "%%%0") .. "\"\n$", err)
    end)
  end

  it("--help lists --workers", function()
    local code, out = proc.run({ BIN, "--help" }, 10)
    assert.equal(0, code)
    assert.matches("%-%-workers N", out)
  end)
end)
