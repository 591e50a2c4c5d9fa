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
