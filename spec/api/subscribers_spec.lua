-- nexlua.subscribers(topic) counts the connections a publish reaches: one
-- whose close frame is out (its client has not answered yet) is skipped by
-- publish, and no longer counted either.
local nexlua = require "nexlua"
local TestClient = require "nexlua.testing"

describe("nexlua.subscribers", function()
  it("stops counting a subscriber once its close frame is out, as publish skips it", function()
    local app = nexlua.App()
    app:ws_route("/sub", function(ws)
      ws:accept()
      ws:subscribe("room")
      if ws:receive_text() == "quit" then
        ws:close(4000)
        app.state.counted = nexlua.subscribers("room")
        app.state.reached = nexlua.publish("room", "after the close")
      end
      for _ in ws:iter() do end
    end)
    local client = TestClient(app)
    finally(function() client:close() end)
    local a = client:websocket_connect("/sub")
    local b = client:websocket_connect("/sub")
    assert(TestClient.wait_until(function() return nexlua.subscribers("room") == 2 end))
    a:send_text("quit")
    assert(TestClient.wait_until(function() return app.state.counted ~= nil end))
    assert.equal(1, app.state.reached)
    assert.equal(1, app.state.counted)
    assert.equal("after the close", b:receive_text())
  end)
end)

-- The count is kept as connections come and go (not counted one by one at
-- each call): every way a subscriber leaves must take it off, once, and
-- it must always equal what a publish reaches.
describe("nexlua.subscribers, kept as a count", function()
  local server = require "helpers.server"
  local rawws = require "helpers.rawws"
  local clock = require "helpers.clock"
  local socket = require "socket"
  local s

  local clients = {}
  before_each(function() s = server.start("spec/apps/topics_app.lua") end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    s:stop()
  end)

  local function join(topic)
    local c = rawws.connect(s.port, "/t/" .. topic)
    clients[#clients + 1] = c
    assert.equal(101, c.status)
    assert.equal("subscribed", (c:recv_message()))
    return c
  end

  -- The watcher's count and a publish's reach, taken in one step of the
  -- app (other clients' actions may be in flight), which must agree.
  local function count(watcher)
    watcher:send_text("census")
    local n, sent
    repeat
      n, sent = watcher:recv_message():match("^census (%d+) (%d+)$")
    until n
    assert.equal(tonumber(n), tonumber(sent), "subscribers() and publish disagree")
    return tonumber(n)
  end

  local function settles_at(watcher, want)
    local deadline = clock() + 5
    local n
    repeat
      n = count(watcher)
      if n == want then return end
      socket.sleep(0.02)
    until clock() > deadline
    assert.equal(want, n)
  end

  it("follows unsubscribe, a client's close, a dropped TCP connection, a violation and resubscribing", function()
    local w = join("k")
    local a, b, c, d = join("k"), join("k"), join("k"), join("k")
    join("other") -- a subscriber of another topic never counts here
    assert.equal(5, count(w))

    a:send_text("unsub")
    settles_at(w, 4)
    a:send_text("unsub") -- a second time changes nothing
    settles_at(w, 4)

    b:close(1000) -- the client's close: answered, then the connection ends
    settles_at(w, 3)

    c.sock:close() -- TCP gone without a close frame
    settles_at(w, 2)

    d:send_frame { opcode = 1, payload = "x", rsv2 = true } -- a violation: failed with 1002
    settles_at(w, 1)

    a:send_text("resub")
    settles_at(w, 2)
    a:send_text("also:k") -- subscribing again to the same topic counts once
    settles_at(w, 2)
  end)
end)
