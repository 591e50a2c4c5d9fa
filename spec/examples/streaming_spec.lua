-- examples/streaming/app.lua: the reference's DataStreamer, a task started
-- by on_startup and cancelled by on_shutdown, publishing to subscribers.
local TestClient = require "nexlua.testing"
local testing = TestClient

describe("examples/streaming", function()
  local app, client

  before_each(function()
    app = dofile("examples/streaming/app.lua")
    app.streamer.interval = 0.02 -- 50 updates a second keeps the spec fast
    client = TestClient(app)
  end)

  after_each(function() client:close() end)

  -- The next data message (skipping nothing: data are JSON objects).
  local function next_update(ws)
    local m = ws:receive_json()
    assert.is_table(m.data)
    return m
  end

  it("starts the streamer task on startup", function()
    assert.is_nil(app.streamer.task)
    client:start()
    assert.is_false(app.streamer.task:done())
    assert.is_true(testing.wait_until(function() return app.streamer.ticks >= 2 end, 2))
  end)

  it("refuses an unknown data type before accept (HTTP 403)", function()
    local ok, err = pcall(client.websocket_connect, client, "/stream/crypto")
    assert.is_false(ok)
    assert.equal(403, err.status)
  end)

  it("sends each subscriber only the type it subscribed to, in order", function()
    local socks = {}
    for _, t in ipairs { "stocks", "weather", "news" } do
      socks[t] = client:websocket_connect("/stream/" .. t)
    end
    local stocks2 = client:websocket_connect("/stream/stocks")
    for t, ws in pairs(socks) do
      local last = 0
      for _ = 1, 5 do
        local m = next_update(ws)
        assert.equal(t, m.type)
        assert.is_true(m.seq > last)
        last = m.seq
        assert.is_string(m.timestamp)
      end
    end
    local s = next_update(socks.stocks)
    assert.is_number(s.data.ACME)
    assert.is_number(next_update(socks.weather).data.Oslo.temperature)
    assert.is_string(next_update(socks.news).data.headline)
    assert.equal("stocks", next_update(stocks2).type)
    assert.equal(2, app.streamer:count("stocks"))
  end)

  it("answers ping with pong between updates", function()
    local ws = client:websocket_connect("/stream/weather")
    next_update(ws)
    ws:send_text("ping")
    for _ = 1, 100 do
      local data = ws:receive_text()
      if data == "pong" then return end
      assert.equal("weather", require("cjson").decode(data).type)
    end
    error("no pong")
  end)

  it("unsubscribe: confirms, stops the updates and closes with 1000", function()
    local ws = client:websocket_connect("/stream/news")
    local other = client:websocket_connect("/stream/news")
    next_update(ws)
    ws:send_text("unsubscribe")
    local m
    repeat m = ws:receive_json() until m.type == "unsubscribed"
    assert.equal("news", m.data_type)
    local code, reason = ws:wait_closed()
    assert.equal(1000, code)
    assert.equal("Unsubscribed", reason)
    assert.equal(1, app.streamer:count("news"))
    assert.equal("news", next_update(other).type) -- the other subscriber goes on
  end)

  it("drops subscribers that leave, the others keep receiving", function()
    local a = client:websocket_connect("/stream/stocks")
    local b = client:websocket_connect("/stream/stocks")
    next_update(a)
    next_update(b)
    a:abort()
    assert.is_true(testing.wait_until(function() return app.streamer:count("stocks") == 1 end, 2))
    local seq = next_update(b).seq
    assert.is_true(next_update(b).seq > seq)
  end)

  it("shutdown cancels the task and the updates stop", function()
    local ws = client:websocket_connect("/stream/stocks")
    next_update(ws)
    local task = app.streamer.task
    client:close() -- closes the sockets, then runs the shutdown hooks
    assert.is_true(task:done())
    assert.is_true(task:cancelled())
    assert.is_false(app.streamer.running)
    local ticks = app.streamer.ticks
    client.run_for(0.1) -- five intervals
    assert.equal(ticks, app.streamer.ticks)
  end)

  it("a failing update is logged and retried, the task survives", function()
    app.streamer.error_delay = 0.02
    client:start()
    local tick = app.streamer.tick
    local failures = 0
    app.streamer.tick = function(self)
      if failures < 2 then
        failures = failures + 1
        error("feed unavailable")
      end
      return tick(self)
    end
    local ws = client:websocket_connect("/stream/news")
    assert.equal("news", next_update(ws).type)
    assert.equal(2, failures)
    assert.is_false(app.streamer.task:done())
  end)
end)
