-- Messages that came before a connection ended are still the handler's to
-- read; and the heartbeat of connections that are busy, not dead: a peer
-- that reads slowly behind a backlog is alive (our bytes leaving count), a
-- peer that neither reads nor sends while the handler waits to send to it
-- is not, even though reads are paused. (spec/apps/liveness_app.lua)
local rawws = require "helpers.rawws"
local server = require "helpers.server"
local socket = require "socket"
local OP = rawws.OP

local APP = "spec/apps/liveness_app.lua"

describe("messages before the end", function()
  local s
  setup(function() s = server.start(APP) end)
  teardown(function() s:stop() end)

  local function three_and(c, tail)
    c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "m1" } ..
      rawws.build_frame { opcode = OP.TEXT, payload = "m2" } ..
      rawws.build_frame { opcode = OP.TEXT, payload = "m3" } .. (tail or ""))
  end

  it("a busy handler reads the messages sent with the client's close, then the disconnect", function()
    local c = rawws.connect(s.port, "/busy")
    three_and(c, rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) })
    assert.equal(1000, (c:expect_close(3)))
    c:close_socket()
    assert(s:wait_log("busy read: [^\n]*", 3), s:log())
    assert.matches("busy read: m1,m2,m3 %(code 1000%)", s:log())
  end)

  -- The log since `before`, once it holds pattern (or after 3 s).
  local function log_after(before, pattern)
    local deadline = socket.gettime() + 3
    repeat
      local log = s:log():sub(before + 1)
      if log:find(pattern) then return log end
      socket.sleep(0.02)
    until socket.gettime() > deadline
    return s:log():sub(before + 1)
  end

  it("... and those sent before the client dropped TCP (1006)", function()
    local before = #s:log()
    local c = rawws.connect(s.port, "/busy")
    three_and(c)
    socket.sleep(0.05)
    c:close_socket()
    assert.matches("busy read: m1,m2,m3 %(code 1006%)", log_after(before, "busy read"))
  end)

  it("after its own close(), a handler reads what came before, once the client has replied",
    function()
      local before = #s:log()
      local c = rawws.connect(s.port, "/close-then-read")
      three_and(c) -- before the handler's close (it waits 0.3 s first)
      local f = assert(c:recv_frame(3))
      assert.equal(OP.CLOSE, f.opcode)
      c:send_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) }
      socket.sleep(0.1)
      c:close_socket()
      assert.matches("closed read: m1,m2,m3 %(code 1000%)", log_after(before, "closed read"))
    end)
end)

describe("the heartbeat of busy connections", function()
  local s
  setup(function()
    s = server.start(APP, { "--ping-interval", "1", "--ping-timeout", "1", "--close-timeout", "1" })
  end)
  teardown(function() s:stop() end)

  local function connections()
    local c = rawws.connect(s.port, "/stats")
    c:send_text("?")
    local n = tonumber((c:recv_message(3)))
    c:close(1000)
    return n - 1 -- not this one
  end

  it("a client reading slowly behind a backlog, our ping behind it, is not failed", function()
    -- 1 MiB at about 200 KB/s: five seconds, five ping intervals, the
    -- backlog on the server's side (the client's receive buffer is small)
    local p = assert(io.popen(string.format("timeout -k 2 60 /usr/bin/python3 spec/api/slow_reader.py " ..
      "%d /push %d 200000 2>&1", s.port, 16 * 65536)))
    local out = p:read("*a")
    p:close()
    assert.matches("^ok: 1048576 bytes", out)
  end)

  it("a client that floods without reading, then goes quiet, is failed though reads are paused",
    function()
      local base = connections()
      local c = rawws.connect(s.port, "/flood-reply")
      local msg = rawws.build_frame { opcode = OP.TEXT, payload = string.rep("x", 1024) }
      c.sock:settimeout(0.05)
      for _ = 1, 400 do c.sock:send(msg) end -- what the socket takes
      local t0 = socket.gettime()
      assert(s:wait_log("flood handler ended", 10), "the connection was never ended:\n" .. s:log())
      local took = socket.gettime() - t0
      assert.is_true(took < 9, took)
      local deadline = socket.gettime() + 5
      while connections() > base and socket.gettime() < deadline do socket.sleep(0.1) end
      assert.equal(base, connections())
      c:close_socket()
    end)
end)

describe("messages nobody will read", function()
  local proc = require "helpers.proc"

  -- The answer to a client's close waits for the app to take the messages
  -- before it, but not past --close-timeout.
  it("do not hold the answer to the client's close past the close timeout", function()
    local s = server.start("spec/apps/inbox_app.lua", { "--close-timeout", "0.5" })
    finally(function() s:stop() end)
    local c = rawws.connect(s.port, "/sleeper")
    c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "m1" } ..
      rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) })
    local t0 = socket.gettime()
    c:expect_failure(1000, 5) -- (the handler sleeps 30 s)
    assert.is_true(socket.gettime() - t0 >= 0.4, "answered before the close timeout")
    c:close_socket()
  end)

  it("are freed when the handler ends, not kept until the Lua collector runs", function()
    local s = server.start("spec/apps/inbox_app.lua")
    local ok, err = pcall(function()
      local big = rawws.build_frame { opcode = OP.BINARY, payload = string.rep("b", 200000) }
      local close = rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) }
      local before = proc.status_kb(s.pid, "VmRSS")
      -- one connection at a time, each handler over (0.3 s) before the next:
      -- memory freed when a handler ends is used again by the next one
      for _ = 1, 12 do
        local c = rawws.connect(s.port, "/noread")
        c:send_raw(string.rep(big, 10) .. close) -- 2 MB each, under the read pause
        c:expect_close(3)
        c:close_socket()
        socket.sleep(0.4)
      end
      local after = proc.status_kb(s.pid, "VmRSS")
      io.stderr:write(string.format("\n[unread messages] 12 x 2 MB: RSS %d -> %d kB\n", before, after))
      if not proc.sanitized() then
        -- kept until the Lua collector ran (it did not: the Lua heap is
        -- small), they were 24 MB
        assert.is_true(after - before < 10 * 1024, string.format("RSS grew by %d kB", after - before))
      end
    end)
    s:stop()
    assert(ok, err)
  end)
end)
