-- Heartbeats (issue #3): the core pings after --ping-interval (or the route's
-- ping_interval) of silence and closes with 1011 a peer that does not answer
-- within --ping-timeout (or ping_timeout); 0 turns pings off. Also the
-- reference's manual ping/pong by text. (spec/apps/heartbeat_app.lua)
local TestClient = require "nexlua.testing"
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local clock = require "helpers.clock"
local proc = require "helpers.proc"

local APP = "spec/apps/heartbeat_app.lua"
local OP = rawws.OP

-- Reads frames for `seconds`, answering every ping; returns how many came
-- and fails on anything but a ping.
local function answer_pings(c, seconds)
  local deadline = clock() + seconds
  local pings = 0
  while true do
    local left = deadline - clock()
    if left <= 0 then return pings end
    local f, err, detail = c:recv_frame(left)
    if not f then
      assert(err == "timeout", "the connection ended: " .. tostring(detail))
      return pings
    end
    assert.equal(OP.PING, f.opcode, "expected only pings, got " .. rawws.describe_frame(f))
    c:pong(f.payload)
    pings = pings + 1
  end
end

describe("heartbeat with --ping-interval 0.2 --ping-timeout 0.3", function()
  local s
  local clients = {}
  setup(function() s = server.start(APP, { "--ping-interval", "0.2", "--ping-timeout", "0.3" }) end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open(path)
    local c = rawws.connect(s.port, path)
    clients[#clients + 1] = c
    assert.equal(101, c.status)
    return c
  end

  it("a client that answers the pings stays connected across several intervals", function()
    local c = open("/ws")
    local pings = answer_pings(c, 1.3)
    assert.is_true(pings >= 3, "only " .. pings .. " pings in 1.3 s")
    c:send_text("still here")
    assert.equal("still here", (c:recv_message()))
  end)

  it("a client that never answers is closed with 1011 and its handler sees WebSocketDisconnect", function()
    local t0 = clock()
    local c = open("/ws")
    local code, reason = c:expect_close(3)
    local took = clock() - t0
    assert.equal(1011, code)
    assert.equal("keepalive ping timeout", reason)
    assert.is_true(took >= 0.45, "closed after " .. took .. " s, before interval + timeout")
    assert.equal(OP.PING, c.skipped[1] and c.skipped[1].opcode, "no ping came before the close")
    assert.is_truthy(s:wait_log("handler /ws ended: disconnect=true code=1011", 3), "log:\n" .. s:log())
  end)

  it("the route option ping_interval = 0 turns pings off", function()
    local c = open("/noping")
    c:expect_silence(1.0) -- five of the listener's intervals
    c:send_text("echo")
    assert.equal("echo", (c:recv_message()))
  end)

  it("the route option ping_interval replaces the listener's", function()
    local c = open("/slow-ping")
    c:expect_silence(0.6) -- the listener's 0.2 s would have pinged (and closed) by now
    local f = c:recv_frame(2)
    assert.is_truthy(f, "no ping within 2.6 s")
    assert.equal(OP.PING, f.opcode)
    c:pong(f.payload)
    c:send_text("alive")
    assert.equal("alive", (c:recv_message()))
  end)

  it("the route option ping_timeout replaces the listener's", function()
    local c = open("/patient")
    local f = c:recv_frame(2)
    assert.is_truthy(f, "no ping")
    assert.equal(OP.PING, f.opcode)
    c:expect_silence(0.6) -- the listener's 0.3 s timeout would have closed it by now
    assert.equal(1011, (c:expect_close(3)))
  end)
end)

describe("heartbeat with --ping-interval 0", function()
  local s
  setup(function() s = server.start(APP, { "--ping-interval", "0", "--ping-timeout", "0.1" }) end)
  teardown(function() if s then s:stop() end end)

  it("sends no pings and closes nobody", function()
    local c = rawws.connect(s.port, "/ws")
    assert.equal(101, c.status)
    c:expect_silence(0.8)
    c:send_text("hi")
    assert.equal("hi", (c:recv_message()))
    c:close_socket()
  end)
end)

describe("heartbeat with --ping-interval 0.2 --ping-timeout 5 (a timeout longer than the interval)", function()
  it("a client that answers at once is pinged after each interval of silence, not each timeout", function()
    local s = server.start(APP, { "--ping-interval", "0.2", "--ping-timeout", "5" })
    local c
    -- (one finally per test: busted keeps the last one given)
    finally(function()
      if c then c:close_socket() end
      s:stop()
    end)
    c = rawws.connect(s.port, "/ws")
    assert.equal(101, c.status)
    local pings = answer_pings(c, 1.5)
    assert.is_true(pings >= 4, "only " .. pings .. " pings in 1.5 s with a 0.2 s interval")
  end)
end)

describe("heartbeat with a subscriber reading slowly behind a backlog", function()
  -- It reads a little under the feed's rate (spec/helpers/slow_reader.py, with a
  -- small receive buffer: the backlog waits on the server's side) and never
  -- reaches the ping in time: the bytes it takes from the backlog say it is
  -- there. (Before, only a backlog that shrank did: a growing one was
  -- failed.) Once it stops reading, the backlog stops moving and the
  -- heartbeat fails it.
  it("stays connected while it takes bytes, and is failed once it stops", function()
    local s = server.start("spec/apps/feed_app.lua", { "--ping-interval", "1", "--ping-timeout", "3",
      "--close-timeout", "0.5", "--log-level", "debug" })
    finally(function() s:stop() end)
    local code, out = proc.run({ "/usr/bin/python3", "spec/helpers/slow_reader.py", tostring(s.port),
      "/sub?burst=60", "900", "7", "6" }, 30)
    assert.equal(0, code, out)
    local h, m, sec = out:match("^open after .* until (%d+):(%d+):([%d.]+)")
    assert(h, out)
    assert(s:wait_log("keepalive ping timeout", 5), "a client that stopped reading was not failed:\n" .. s:log())
    -- and not before it stopped (its reset would reach it only behind the backlog)
    local fh, fm, fsec = s:log():match("T(%d+):(%d+):([%d.]+)Z[^\n]*keepalive ping timeout")
    local function secs(a, b, c) return tonumber(a) * 3600 + tonumber(b) * 60 + tonumber(c) end
    assert.is_true(secs(fh, fm, fsec) > secs(h, m, sec), "failed while it read:\n" .. out .. "\n" .. s:log())
  end)
end)

describe("the reference's manual ping/pong by text messages (TestClient)", function()
  it("works: the app pings from a task, the client's pongs reach the handler", function()
    local app = dofile(APP)
    local client = TestClient(app, { timeout = 3 })
    local ok, err = pcall(function()
      local ws = client:websocket_connect("/manual")
      for _ = 1, 3 do
        assert.same({ type = "ping" }, ws:receive_json(2))
        ws:send_json({ type = "pong" })
      end
      ws:send_json({ type = "msg", data = "hello" })
      local reply
      repeat reply = ws:receive_json(2) until reply.type ~= "ping"
      assert.same({ type = "echo", data = "hello", pongs = 3 }, reply)
      ws:close()
      assert.is_true(TestClient.wait_until(function() return app.state.manual.ended end, 2))
      local hb = app.state.manual.heartbeat
      assert.is_true(TestClient.wait_until(function() return hb:done() end, 2))
      assert.is_true(hb:cancelled(), "the heartbeat task was not cancelled")
    end)
    client:close()
    assert(ok, err)
  end)
end)
