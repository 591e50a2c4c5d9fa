-- examples/connection_pool/app.lua: the reference's WebSocketPool with
-- max_connections, here 3 (NEXLUA_POOL_MAX, read when the app is loaded).
local ffi = require "ffi"
local TestClient = require "nexlua.testing"
local testing = TestClient

ffi.cdef [[ int setenv(const char *name, const char *value, int overwrite); ]]

describe("examples/connection_pool", function()
  local app, client, refusals

  before_each(function()
    ffi.C.setenv("NEXLUA_POOL_MAX", "3", 1)
    app = dofile("examples/connection_pool/app.lua")
    -- Spec-only: how refused connections were closed (the client only sees 403).
    refusals = {}
    app:add_ws_middleware(function(ws, call_next)
      call_next()
      if ws.close_code then refusals[#refusals + 1] = { ws.close_code, ws.close_reason } end
    end)
    client = TestClient(app)
  end)

  after_each(function() client:close() end)

  local function connect()
    local ws = client:websocket_connect("/ws")
    local welcome = ws:receive_json()
    assert.equal("welcome", welcome.type)
    ws.id = welcome.id
    return ws
  end

  local function refused()
    local ok, err = pcall(client.websocket_connect, client, "/ws")
    assert.is_false(ok, "accepted")
    assert.equal(403, err.status)
    assert.is_true(testing.wait_until(function() return #refusals > 0 end, 2))
    return table.remove(refusals, 1)
  end

  local function wait_size(n)
    assert.is_true(testing.wait_until(function() return app.pool:size() == n end, 2),
      "pool size " .. app.pool:size() .. ", expected " .. n)
  end

  it("reads max_connections from NEXLUA_POOL_MAX", function()
    assert.equal(3, app.pool.max_connections)
  end)

  it("refuses the connection over the limit with 1008 'Server at capacity' (HTTP 403)", function()
    local a, b, c = connect(), connect(), connect()
    assert.equal(3, app.pool:size())
    assert.same({ 1008, "Server at capacity" }, refused())
    assert.same({ 1008, "Server at capacity" }, refused())
    assert.equal(3, app.pool:size())
    for _, ws in ipairs { a, b, c } do assert.equal("open", ws:state()) end
    a:send_text("stats")
    assert.same({ type = "stats", connections = 3, max_connections = 3 }, a:receive_json())
  end)

  it("frees a slot when a client leaves (close or abort)", function()
    local a, b = connect(), connect()
    local c = connect()
    refused()
    a:close()
    wait_size(2)
    local d = connect()
    refused()
    b:abort()
    wait_size(2)
    local e = connect()
    assert.equal(3, app.pool:size())
    for _, ws in ipairs { c, d, e } do assert.equal("open", ws:state()) end
  end)

  it("broadcasts every message to all connections", function()
    local a, b, c = connect(), connect(), connect()
    b:send_text("hello")
    for _, ws in ipairs { a, b, c } do
      assert.same({ type = "message", from = b.id, text = "hello" }, ws:receive_json())
    end
  end)

  it("skips and removes dead connections during a broadcast", function()
    local a = connect()
    local b = connect()
    local c = connect()
    -- Keep c's server-side WebSocket, then kill c.
    local dead
    for ws in pairs(app.pool.active_connections) do
      if ws.state.id == c.id then dead = ws end
    end
    c:abort()
    wait_size(2)
    -- Pretend its handler had not noticed yet: the dead socket is a member.
    app.pool.active_connections[dead] = true
    app.pool.count = app.pool.count + 1
    assert.equal(3, app.pool:size())
    a:send_text("anyone?")
    assert.same({ type = "message", from = a.id, text = "anyone?" }, a:receive_json())
    assert.same({ type = "message", from = a.id, text = "anyone?" }, b:receive_json())
    assert.equal(2, app.pool:size())
    assert.is_nil(app.pool.active_connections[dead])
    -- The slot it held is free again.
    connect()
    assert.equal(3, app.pool:size())
  end)
end)
