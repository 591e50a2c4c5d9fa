-- examples/queued/app.lua: a bounded per-connection queue that drops the
-- oldest message on overflow, drained by a processor task.
local TestClient = require "nexlua.testing"
local testing = TestClient

describe("examples/queued", function()
  local app, client, server

  before_each(function()
    app = dofile("examples/queued/app.lua")
    -- Spec-only: keep the server-side WebSocket of the latest connection.
    app:add_ws_middleware(function(ws, call_next)
      server = ws
      return call_next()
    end)
    client = TestClient(app)
  end)

  after_each(function() client:close() end)

  local function wait(cond, what)
    assert.is_true(testing.wait_until(cond, 3), what)
  end

  it("sends every message back, in order, when the processor keeps up", function()
    local ws = client:websocket_connect("/queued")
    for i = 1, 50 do ws:send_json({ n = i }) end
    for i = 1, 50 do assert.same({ n = i }, ws:receive_json()) end
    assert.equal(0, server.state.queue.dropped)
  end)

  it("answers invalid JSON in order with the rest", function()
    local ws = client:websocket_connect("/queued")
    ws:send_json({ n = 1 })
    ws:send_text("{oops")
    ws:send_json("three")
    assert.same({ n = 1 }, ws:receive_json())
    assert.same({ error = "Invalid JSON" }, ws:receive_json())
    assert.equal("three", ws:receive_json())
  end)

  it("drops the oldest messages when a slow processor lets the queue overflow", function()
    app.queue_settings.maxsize = 3
    app.queue_settings.process_delay = 0.3
    local ws = client:websocket_connect("/queued")
    ws:send_json({ n = 1 })
    -- The processor has taken message 1 and works on it for 0.3 s...
    wait(function() return server.state.received == 1 and server.state.queue:size() == 0 end, "m1 not taken")
    -- ...while 9 more arrive: only the last 3 fit.
    for i = 2, 10 do ws:send_json({ n = i }) end
    wait(function() return server.state.received == 10 end, "not all received")
    assert.equal(0, server.state.sent, "the processor was not slow enough for this test")
    assert.equal(3, server.state.queue:size())
    assert.equal(6, server.state.queue.dropped)
    for _, n in ipairs { 1, 8, 9, 10 } do assert.same({ n = n }, ws:receive_json()) end
    -- Nothing else is coming.
    ws:send_json({ n = 11 })
    assert.same({ n = 11 }, ws:receive_json())
  end)

  it("cancels an idle processor when the client leaves", function()
    local ws = client:websocket_connect("/queued")
    ws:send_json("x")
    ws:receive_json()
    local task = server.state.processor
    assert.is_false(task:done())
    ws:close()
    wait(function() return task:done() end, "the processor is still running")
    assert.is_true(task:cancelled())
  end)

  it("cancels a busy processor, with messages still queued, when the client aborts", function()
    app.queue_settings.process_delay = 0.3
    local ws = client:websocket_connect("/queued")
    for i = 1, 5 do ws:send_json(i) end
    wait(function() return server.state.received == 5 end, "not all received")
    local task = server.state.processor
    ws:abort()
    wait(function() return task:done() end, "the processor is still running")
    assert.is_true(task:cancelled())
    assert.equal(0, server.state.sent)
    assert.equal(4, server.state.queue:size()) -- left behind with the connection
  end)
end)
