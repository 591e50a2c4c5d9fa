-- The request stays readable for as long as the handler holds its WebSocket:
-- the core keeps the head in the connection's box (compact) and Lua builds
-- ws.headers, ws.query_params, ws.client and ws.url only when they are read,
-- which may be after the peer has gone (cleanup, logging).
local TestClient = require "nexlua.testing"
local nexlua = require "nexlua"

local function app_recording(seen)
  local app = nexlua.App()
  app:ws_route("/rooms/{room}", function(ws)
    ws:accept()
    for _ in ws:iter_text() do end -- until the client leaves
    -- Nothing of the request was read before this point.
    seen.token = ws.headers:get("X-Token")
    seen.all = ws.headers:get_all("x-multi")
    seen.q = ws.query_params:get("q")
    seen.client = ws.client and ws.client.host
    seen.url = ws.url
    seen.path = ws.path
    seen.room = ws.path_params.room
    seen.route = ws.route
    seen.code = ws.close_code
    seen.done = true
  end)
  app:ws_route("/plain", function(ws)
    ws:accept()
    seen.empty = next(ws.path_params) == nil
    seen.route = ws.route
    ws.path_params.x = (ws.path_params.x or 0) + 1 -- its own table: no other connection sees it
    seen.x = ws.path_params.x
    ws:send_text("ok")
    for _ in ws:iter_text() do end
  end)
  return app
end

describe("request data after the connection ended", function()
  it("headers, query, client, url and path params are still there", function()
    local seen = {}
    local client = TestClient(app_recording(seen))
    local ws = client:websocket_connect("/rooms/caf%C3%A9", {
      headers = { { "X-Token", "t0k" }, { "X-Multi", "a" }, { "x-multi", "b" } },
      query = { q = "find me" },
    })
    ws:send_text("hello")
    ws:close(1000, "bye")
    client:run_for(0.2)
    assert.is_true(seen.done, "the handler did not finish")
    assert.equal("t0k", seen.token)
    assert.same({ "a", "b" }, seen.all)
    assert.equal("find me", seen.q)
    assert.equal("127.0.0.1", seen.client)
    assert.matches("^ws://127%.0%.0%.1:%d+/rooms/caf%%C3%%A9%?q=find", seen.url)
    assert.equal("/rooms/café", seen.path)
    assert.equal("café", seen.room)
    assert.equal("/rooms/{room}", seen.route)
    client:close()
  end)

  it("a route without parameters has empty path params of its own", function()
    local seen = {}
    local client = TestClient(app_recording(seen))
    for _ = 1, 2 do
      local ws = client:websocket_connect("/plain")
      assert.equal("ok", ws:receive_text(2))
      assert.is_true(seen.empty)
      assert.equal(1, seen.x)
      assert.equal("/plain", seen.route)
      ws:close()
    end
    client:close()
  end)
end)
