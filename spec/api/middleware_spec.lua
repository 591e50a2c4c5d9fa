-- WebSocket middleware (issue #3): app:add_ws_middleware(fn(ws, call_next)),
-- route-level middleware, rejection before accept, ws.state, code after the
-- handler, errors, call_next twice, ws:deny. (spec/apps/middleware_app.lua)
local TestClient = require "nexlua.testing"
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local socket = require "socket"

local APP = "spec/apps/middleware_app.lua"

local function contains(list, v)
  for _, x in ipairs(list) do
    if x == v then return true end
  end
  return false
end

describe("WebSocket middleware, in-process (TestClient)", function()
  local app, client

  before_each(function()
    app = dofile(APP)
    client = TestClient(app, { timeout = 3 })
  end)
  after_each(function() client:close() end)

  it("runs app-level then route-level middleware around the handler, in the connection's coroutine", function()
    local ws = client:websocket_connect("/ordered")
    local first = ws:receive_json(2)
    assert.same({ "outer", "auth", "route1", "route2", "handler" }, first.order)
    assert.is_true(first.same_coroutine)
    -- the outer middleware slept 0.05 s before calling call_next
    assert.is_true(first.outer_slept >= 0.04, "outer middleware slept " .. tostring(first.outer_slept))
    ws:send_text("return now")
    -- sent by the outer middleware after the handler returned
    local after = ws:receive_json(2)
    assert.same({
      "outer", "auth", "route1", "route2", "handler", "handler returns",
      "route2 after", "route1 after", "auth after", "outer after",
    }, after.order)
    assert.equal(1000, (ws:wait_closed(2)))
  end)

  it("hands ws.state set by a middleware to the handler", function()
    local ws = client:websocket_connect("/secure/profile", { query = { token = "alice" } })
    assert.equal("hello user-alice", ws:receive_text(2))
    assert.is_true(contains(app.state.events, "secure handler ran for user-alice"))
  end)

  it("rejects before accept with ws:close(1008, ...): HTTP 403, the handler never runs", function()
    local ok, err = pcall(client.websocket_connect, client, "/secure/profile")
    assert.is_false(ok)
    assert.is_true(TestClient.is_rejected(err), "expected a HandshakeRejected, got " .. tostring(err))
    assert.equal(403, err.status)
    assert.matches("403", tostring(err))
    assert.is_true(contains(app.state.events, "auth refused /secure/profile"))
    for _, e in ipairs(app.state.events) do
      assert.is_nil(e:find("secure handler ran", 1, true), "the handler ran: " .. e)
    end
    -- the outer middleware still ran its code after call_next returned
    assert.is_true(contains(app.state.events, "outer after /secure/profile"))
  end)

  it("a middleware that does not call call_next refuses the handshake with 403", function()
    local ok, err = pcall(client.websocket_connect, client, "/stop")
    assert.is_false(ok)
    assert.is_true(TestClient.is_rejected(err), tostring(err))
    assert.equal(403, err.status)
    assert.is_true(contains(app.state.events, "stopper ran"))
    assert.is_false(contains(app.state.events, "stop handler ran"))
  end)

  it("ws:deny(status, body, headers) answers with that HTTP response", function()
    local ok, err = pcall(client.websocket_connect, client, "/secure/profile", { query = { token = "deny" } })
    assert.is_false(ok)
    assert.is_true(TestClient.is_rejected(err), tostring(err))
    assert.equal(401, err.status)
    assert.equal("token rejected\n", err.body)
    assert.equal('Bearer realm="nexlua"', err.headers["www-authenticate"])
  end)

  it("an error in a middleware before accept gives HTTP 500", function()
    local ok, err = pcall(client.websocket_connect, client, "/mw-error-before")
    assert.is_false(ok)
    assert.is_true(TestClient.is_rejected(err), tostring(err))
    assert.equal(500, err.status)
    assert.is_false(contains(app.state.events, "error-before handler ran"))
  end)

  it("an error in a middleware after accept closes with 1011", function()
    local ws = client:websocket_connect("/mw-error-after")
    assert.equal("accepted", ws:receive_text(2))
    local code = ws:wait_closed(2)
    assert.equal(1011, code)
  end)

  it("calling call_next twice raises and does not run the handler again", function()
    local ws = client:websocket_connect("/twice")
    assert.equal("handler run 1", ws:receive_text(2))
    local msg = ws:receive_text(2)
    assert.matches("^second call_next: ok=false err=.*call_next%(%) called twice", msg)
    assert.matches("runs=1$", msg)
  end)
end)

describe("WebSocket middleware, real process (wire and log)", function()
  local s
  setup(function() s = server.start(APP) end)
  teardown(function() if s then s:stop() end end)

  local function log_since(n) return s:log():sub(n + 1) end

  it("ws:close(1008) before accept is HTTP 403 on the wire, never upgraded", function()
    local c = rawws.connect(s.port, "/secure/profile")
    assert.equal(403, c.status)
    assert.is_nil(c.headers["upgrade"])
    assert.is_nil(c.headers["sec-websocket-accept"])
    c:close_socket()
  end)

  it("ws:deny sends its status, body and header on the wire", function()
    local c = rawws.connect(s.port, "/secure/profile?token=deny")
    assert.equal(401, c.status)
    assert.equal("token rejected\n", c.body)
    assert.equal('Bearer realm="nexlua"', c.headers["www-authenticate"])
    assert.is_nil(c.headers["sec-websocket-accept"])
    c:close_socket()
  end)

  it("not calling call_next ends the connection cleanly: 403 and no error logged", function()
    local before = #s:log()
    local c = rawws.connect(s.port, "/stop")
    assert.equal(403, c.status)
    c:close_socket()
    -- a later connection proves the server went past /stop's end
    local ok = rawws.connect(s.port, "/secure/profile?token=bob")
    assert.equal(101, ok.status)
    assert.equal("hello user-bob", (ok:recv_message()))
    ok:close_socket()
    local log = log_since(before)
    assert.is_nil(log:find("ERROR", 1, true), "log:\n" .. log)
  end)

  it("an error before accept: 500 and a traceback naming the route", function()
    local before = #s:log()
    local c = rawws.connect(s.port, "/mw-error-before")
    assert.equal(500, c.status)
    c:close_socket()
    local line = s:wait_log("ERROR error in WebSocket handler or middleware for /mw%-error%-before[^\n]*", 3)
    assert.is_truthy(line, "no error line; log:\n" .. log_since(before))
    local log = log_since(before)
    assert.matches("boom in middleware before accept", log, 1, true)
    assert.matches("stack traceback", log, 1, true)
    -- error()'s own frame is a C one, with no line of its own
    assert.matches("\n  \t%[C%]: in function 'error'", log) -- (continuation lines indented)
    assert.is_nil(log:find("%[C%]:%d"), "a C frame was given a line:\n" .. log)
  end)

  -- Python keeps an exception's first traceback through a re-raise; so does
  -- the log here: the failing line, then where a middleware raised it again.
  for _, case in ipairs({ { "through", false }, { "reraise", true } }) do
    it("an error out of call_next() (" .. case[1] .. "): the traceback starts at the failing line", function()
      local before = #s:log()
      local c = rawws.connect(s.port, "/origin/" .. case[1])
      assert.equal(101, c.status)
      assert.equal(1011, (c:expect_close(3)))
      c:close_socket()
      assert(s:wait_log("error in WebSocket handler or middleware for /origin/" .. case[1], 3), log_since(before))
      local log = log_since(before)
      assert.matches("stack traceback:\n%s*[^\n]*middleware_app%.lua:%d+: in function 'failing_helper'", log)
      if case[2] then
        assert.matches("%(re%-raised at [^\n]*middleware_app%.lua:%d+%)", log)
        assert.matches("origin: cleanup ran", log, 1, true)
      else
        assert.falsy(log:find("re-raised", 1, true), log)
      end
    end)
  end

  it("an error after accept: close 1011 and a traceback naming the route", function()
    local before = #s:log()
    local c = rawws.connect(s.port, "/mw-error-after")
    assert.equal(101, c.status)
    assert.equal("accepted", (c:recv_message()))
    assert.equal(1011, (c:expect_close(3)))
    c:close(1011)
    c:close_socket()
    assert.is_truthy(s:wait_log("error in WebSocket handler or middleware for /mw%-error%-after", 3),
      "log:\n" .. log_since(before))
    local log = log_since(before)
    assert.matches("boom in middleware after the handler", log, 1, true)
    assert.matches("stack traceback", log, 1, true)
    socket.sleep(0.05)
    assert.is_true(s:alive())
  end)
end)
