-- examples/auth/app.lua: token from ?token= or "Authorization: Bearer";
-- refused before accept with close(1008) (HTTP 403) or deny(401).
local TestClient = require "nexlua.testing"
local testing = TestClient

describe("examples/auth", function()
  local client, refusals

  before_each(function()
    local app = dofile("examples/auth/app.lua")
    -- Outermost middleware, added by the spec only: records how each
    -- connection that the app refused was closed (the client cannot see it).
    refusals = {}
    table.insert(app.ws_middleware, 1, function(ws, call_next)
      call_next()
      if ws.close_code then refusals[#refusals + 1] = { ws.path, ws.close_code, ws.close_reason } end
    end)
    client = TestClient(app)
  end)

  after_each(function() client:close() end)

  local function rejected(path, opts)
    local ok, err = pcall(client.websocket_connect, client, path, opts)
    assert.is_false(ok, "the handshake was accepted")
    assert.is_true(testing.is_rejected(err), tostring(err))
    return err
  end

  local function refusal(n)
    assert.is_true(testing.wait_until(function() return #refusals >= n end, 2))
    return refusals[n]
  end

  describe("/secure (close before accept)", function()
    it("without a token: HTTP 403, closed with 1008 'Authentication required'", function()
      local err = rejected("/secure")
      assert.equal(403, err.status)
      assert.equal("Forbidden\n", err.body) -- the reason never reaches the client
      assert.same({ "/secure", 1008, "Authentication required" }, refusal(1))
    end)

    it("with an empty token or a non-Bearer header: 'Authentication required'", function()
      assert.equal(403, rejected("/secure", { query = { token = "" } }).status)
      assert.equal(403, rejected("/secure", { headers = { Authorization = "Basic YWxpY2U6cHc=" } }).status)
      assert.same({ "/secure", 1008, "Authentication required" }, refusal(1))
      assert.same({ "/secure", 1008, "Authentication required" }, refusal(2))
    end)

    it("with an unknown token: HTTP 403, closed with 1008 'Invalid token'", function()
      assert.equal(403, rejected("/secure", { query = { token = "mallory" } }).status)
      assert.equal(403, rejected("/secure", { headers = { Authorization = "Bearer mallory" } }).status)
      assert.same({ "/secure", 1008, "Invalid token" }, refusal(1))
      assert.same({ "/secure", 1008, "Invalid token" }, refusal(2))
    end)

    it("the query token wins over the header", function()
      rejected("/secure", { query = { token = "bad" }, headers = { Authorization = "Bearer alice-token" } })
      assert.same({ "/secure", 1008, "Invalid token" }, refusal(1))
    end)

    it("a valid query token: accepted, ws.state.user set, messages processed", function()
      local ws = client:websocket_connect("/secure", { query = { token = "alice-token" } })
      ws:send_text("whoami")
      assert.same({ type = "whoami", id = 1, name = "alice", role = "admin" }, ws:receive_json())
      ws:send_text("hello")
      assert.same({ type = "echo", user = "alice", text = "hello", count = 2 }, ws:receive_json())
      ws:send_text("again")
      assert.same({ type = "echo", user = "alice", text = "again", count = 3 }, ws:receive_json())
      assert.equal(1000, (ws:close()))
      assert.same({}, refusals)
    end)

    it("a valid Bearer header (any case of the scheme): accepted as that user", function()
      local ws = client:websocket_connect("/secure", { headers = { Authorization = "Bearer bob-token" } })
      ws:send_text("whoami")
      assert.equal("bob", ws:receive_json().name)
      local ws2 = client:websocket_connect("/secure", { headers = { Authorization = "bearer alice-token" } })
      ws2:send_text("whoami")
      assert.equal("alice", ws2:receive_json().name)
    end)

    it("users authenticate concurrently, each connection keeps its own state", function()
      local a = client:websocket_connect("/secure", { query = { token = "alice-token" } })
      local b = client:websocket_connect("/secure", { query = { token = "bob-token" } })
      a:send_text("1")
      b:send_text("1")
      a:send_text("2")
      assert.same({ type = "echo", user = "alice", text = "1", count = 1 }, a:receive_json())
      assert.same({ type = "echo", user = "alice", text = "2", count = 2 }, a:receive_json())
      assert.same({ type = "echo", user = "bob", text = "1", count = 1 }, b:receive_json())
    end)
  end)

  describe("/secure-http (deny with 401)", function()
    it("without a token: HTTP 401 with a body and WWW-Authenticate", function()
      local err = rejected("/secure-http")
      assert.equal(401, err.status)
      assert.equal("Authentication required\n", err.body)
      assert.equal('Bearer realm="nexlua"', err.headers["www-authenticate"])
    end)

    it("with an unknown token: HTTP 401 'Invalid token'", function()
      local err = rejected("/secure-http", { query = { token = "mallory" } })
      assert.equal(401, err.status)
      assert.equal("Invalid token\n", err.body)
      assert.equal('Bearer error="invalid_token"', err.headers["www-authenticate"])
    end)

    it("a valid token is accepted like on /secure", function()
      local ws = client:websocket_connect("/secure-http", { query = { token = "bob-token" } })
      ws:send_text("hi")
      assert.same({ type = "echo", user = "bob", text = "hi", count = 1 }, ws:receive_json())
    end)
  end)
end)
