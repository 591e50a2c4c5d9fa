-- examples/middleware/app.lua: app-level rate-limit and auth middleware, a
-- route-level middleware, and code after call_next().
local TestClient = require "nexlua.testing"
local testing = TestClient

describe("examples/middleware", function()
  local app, client, refusals

  before_each(function()
    app = dofile("examples/middleware/app.lua")
    -- Spec-only, outermost: records how refused connections were closed
    -- and how far they got (the client only sees HTTP 403).
    refusals = {}
    table.insert(app.ws_middleware, 1, function(ws, call_next)
      call_next()
      if ws.close_code then -- set by ws:close(); this app closes only to refuse
        refusals[#refusals + 1] = { code = ws.close_code, reason = ws.close_reason, trace = ws.state.trace }
      end
    end)
    client = TestClient(app)
  end)

  after_each(function() client:close() end)

  local function connect(path, token)
    return client:websocket_connect(path, { query = token and { token = token } or nil })
  end

  local function refused(path, token)
    local ok, err = pcall(connect, path, token)
    assert.is_false(ok, "accepted")
    assert.equal(403, err.status)
    assert.is_true(testing.wait_until(function() return #refusals > 0 end, 2))
    return table.remove(refusals, 1)
  end

  it("runs app middleware in the order added, then route middleware, then the handler", function()
    local ws = connect("/ws", "alice-token")
    assert.same({ type = "welcome", user = "alice", trace = { "rate_limit", "auth", "route", "handler" } },
      ws:receive_json())
    local plain = connect("/plain", "bob-token")
    assert.same({ type = "welcome", user = "bob", trace = { "rate_limit", "auth", "handler" } },
      plain:receive_json())
  end)

  it("runs the code after call_next() once the handler has returned", function()
    local ws = connect("/ws", "alice-token")
    ws:receive_json()
    ws:send_text("one")
    assert.same({ type = "echo", user = "alice", text = "one" }, ws:receive_json())
    ws:send_text("two")
    ws:receive_json()
    ws:send_text("bye") -- the handler returns
    local summary = ws:receive_json()
    assert.equal("session_end", summary.type)
    assert.equal(2, summary.messages)
    assert.same({ "rate_limit", "auth", "route", "handler", "handler:end", "route:after" }, summary.trace)
    assert.equal(1000, (ws:wait_closed())) -- then the framework closes normally
    -- The outermost after-code ran last of all.
    assert.is_true(testing.wait_until(function() return #app.sessions == 1 end, 2))
    assert.same({ "rate_limit", "auth", "route", "handler", "handler:end", "route:after", "auth:after" },
      app.sessions[1].trace)
    assert.equal("alice", app.sessions[1].user)
  end)

  it("after-code still runs when the client leaves, but finds the connection closed", function()
    local ws = connect("/ws", "bob-token")
    ws:receive_json()
    ws:close()
    assert.is_true(testing.wait_until(function() return #app.sessions == 1 end, 2))
    assert.same({ "rate_limit", "auth", "route", "handler", "handler:end", "route:after", "auth:after" },
      app.sessions[1].trace)
  end)

  it("auth: no token -> 1008 'Authentication required', unknown -> 1008 'Invalid token' (HTTP 403)", function()
    local r = refused("/ws", nil)
    assert.same({ code = 1008, reason = "Authentication required", trace = { "rate_limit", "auth" } }, r)
    r = refused("/plain", "mallory")
    assert.same({ code = 1008, reason = "Invalid token", trace = { "rate_limit", "auth" } }, r)
    assert.same({}, app.sessions) -- no handler ran
  end)

  it("rate limit: the connection over the limit gets 1008 'Rate limit exceeded'; the window frees it", function()
    app.rate_limiter.limit, app.rate_limiter.window = 3, 0.3
    local open = {}
    for i = 1, 3 do open[i] = connect("/plain", "alice-token") end
    local r = refused("/plain", "alice-token")
    assert.same({ code = 1008, reason = "Rate limit exceeded", trace = { "rate_limit" } }, r)
    -- Limited before auth: a bad token is refused without reaching verify_token.
    r = refused("/plain", "mallory")
    assert.equal("Rate limit exceeded", r.reason)
    -- The limit counts connections made, not connections open.
    open[1]:close()
    assert.equal("Rate limit exceeded", refused("/plain", "bob-token").reason)
    client.run_for(0.35)
    local ws = connect("/plain", "bob-token")
    assert.equal("welcome", ws:receive_json().type)
  end)

  it("rate limit is per client IP", function()
    local limiter = app.rate_limiter
    limiter.limit = 1
    assert.is_true(limiter:allow("10.0.0.1"))
    assert.is_false(limiter:allow("10.0.0.1"))
    assert.is_true(limiter:allow("10.0.0.2"))
    connect("/plain", "alice-token") -- 127.0.0.1 has its own budget
    assert.equal("Rate limit exceeded", refused("/plain", "alice-token").reason)
    assert.is_true(limiter.hits["127.0.0.1"] ~= nil)
  end)

  -- The table holds the clients of the last window, not every address ever
  -- seen (a public server would grow it without end).
  it("rate limit forgets the addresses with no connection in the window", function()
    local limiter = app.rate_limiter
    limiter.window = 0.2
    for i = 1, 50 do assert.is_true(limiter:allow("10.1.0." .. i)) end
    client.run_for(0.25)
    assert.is_true(limiter:allow("10.2.0.1")) -- the sweep comes with a call
    local left = 0
    for _ in pairs(limiter.hits) do left = left + 1 end
    assert.equal(1, left)
  end)
end)
