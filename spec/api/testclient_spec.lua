-- TestClient (issue #3): require "nexlua.testing", websocket_connect with
-- headers, subprotocols and query, send/receive of every type, close codes,
-- receive timeouts that fail clearly, rejected handshakes carrying the
-- status, and the two tests of the reference's "Testing WebSockets" section.
-- (spec/apps/testclient_app.lua)
local TestClient = require "nexlua.testing"
local nexlua = require "nexlua"
local clock = require "helpers.clock"

local APP = "spec/apps/testclient_app.lua"

describe("the reference's Testing WebSockets section, in Lua", function()
  local app
  before_each(function() app = dofile(APP) end)

  it("echoes text", function()
    local client = TestClient(app)
    local ws = client:websocket_connect("/ws")
    ws:send_text("Hello")
    assert.equal("Echo: Hello", ws:receive_text())
    client:close()
  end)

  it("speaks JSON", function()
    local client = TestClient(app)
    local ws = client:websocket_connect("/api")
    ws:send_json({ type = "ping" })
    assert.same({ type = "pong" }, ws:receive_json())
    client:close()
  end)
end)

describe("TestClient with the reference's authentication middleware", function()
  it("is refused without a token and served with one", function()
    local client = TestClient(dofile(APP))
    local ok, err = pcall(client.websocket_connect, client, "/ws/secure")
    assert.is_false(ok)
    assert.is_true(TestClient.is_rejected(err), tostring(err))
    assert.equal(403, err.status)
    local ws = client:websocket_connect("/ws/secure", { query = { token = "valid" } })
    assert.same({ type = "welcome", token = "valid" }, ws:receive_json())
    ws:send_text("hi")
    assert.equal("Secure echo: hi", ws:receive_text())
    ws:close()
    client:close()
  end)
end)

describe("TestClient", function()
  local client
  before_each(function() client = TestClient(dofile(APP), { timeout = 3 }) end)
  after_each(function() client:close() end)

  it("sends headers, subprotocols and query; exposes the accepted subprotocol and response headers", function()
    local ws = client:websocket_connect("/inspect", {
      headers = { ["X-Token"] = "secret" },
      subprotocols = { "chat.v1", "chat.v2" },
      query = { room = "lobby", tag = { "a", "b" } },
    })
    assert.equal("chat.v2", ws.accepted_subprotocol)
    assert.equal("nexlua", ws.headers["x-served-by"])
    assert.same({ token = "secret", room = "lobby", tags = { "a", "b" }, offered = { "chat.v1", "chat.v2" } },
      ws:receive_json(2))
  end)

  it("keeps every value of a repeated response header", function()
    local app = nexlua.App()
    app:ws_route("/cookies", function(ws)
      ws:accept { headers = { { "Set-Cookie", "a=1" }, { "Set-Cookie", "b=2" }, { "X-One", "x" } } }
      for _ in ws:iter() do end
    end)
    local c2 = TestClient(app, { timeout = 3 })
    finally(function() c2:close() end)
    local ws = c2:websocket_connect("/cookies")
    assert.same({ "a=1", "b=2" }, ws.headers:get_all("set-cookie"))
    assert.equal("a=1", ws.headers["set-cookie"])
    assert.equal("x", ws.headers["X-One"])
  end)

  it("has no accepted_subprotocol when none was chosen", function()
    local ws = client:websocket_connect("/inspect", { subprotocols = { "other" } })
    assert.is_nil(ws.accepted_subprotocol)
    assert.same({ "other" }, ws:receive_json(2).offered)
  end)

  it("sends and receives text, bytes and JSON", function()
    local ws = client:websocket_connect("/typed")
    ws:send_text("plain")
    assert.equal("plain", ws:receive_text(2))
    ws:send_bytes("\0\255binary")
    assert.equal("\0\255binary", ws:receive_bytes(2))
    ws:send_json({ n = 1, list = { 1, 2 } })
    assert.same({ got = { n = 1, list = { 1, 2 } } }, ws:receive_json(2))
    ws:send_text("typed")
    local data, kind = ws:receive(2)
    assert.equal("typed", data)
    assert.equal("text", kind)
  end)

  it("receive_text of a binary message fails clearly", function()
    local ws = client:websocket_connect("/typed")
    ws:send_bytes("raw")
    local ok, err = pcall(ws.receive_text, ws, 2)
    assert.is_false(ok)
    assert.matches("expected a text message, got a binary one", tostring(err), 1, true)
  end)

  it("reports the server's close code and reason", function()
    local ws = client:websocket_connect("/bye")
    assert.equal("bye", ws:receive_text(2))
    local ok, err = pcall(ws.receive_text, ws, 2)
    assert.is_false(ok)
    assert.is_true(nexlua.is_disconnect(err), tostring(err))
    assert.equal(4000, err.code)
    assert.equal(4000, ws.close_code)
    assert.equal("done here", ws.close_reason)
  end)

  it("reports a close reason that holds a NUL byte whole", function()
    local ws = client:websocket_connect("/bye-nul")
    local ok, err = pcall(ws.receive_text, ws, 2)
    assert.is_false(ok)
    assert.equal(4000, err.code)
    assert.equal("a\0b", err.reason)
    assert.equal("a\0b", ws.close_reason)
  end)

  it("close() performs the closing handshake and returns the server's answer", function()
    local ws = client:websocket_connect("/ws")
    ws:send_text("x")
    assert.equal("Echo: x", ws:receive_text(2))
    local code = ws:close(1000, "client done")
    assert.equal(1000, code)
    assert.equal(1000, ws.close_code)
    assert.equal("closed", ws:state())
  end)

  -- A mistake in a test fails at the test's line, saying what is wrong,
  -- before anything is sent (the server would only fail the connection).
  it("refuses what it cannot send or wait for, at the test's line", function()
    local ws = client:websocket_connect("/ws")
    local function fails(fn, want)
      local ok, err = pcall(fn)
      assert.is_false(ok, want)
      assert.matches("testclient_spec%.lua:%d+: TestClient: " .. want, tostring(err))
    end
    fails(function() ws:send_text(nil) end, "send_text: expected a string, got nil")
    fails(function() ws:send_text({}) end, "send_text: expected a string, got table")
    fails(function() ws:send_text("\255") end, "send_text: the text is not valid UTF%-8 %(use send_bytes%)")
    fails(function() ws:send_bytes(5) end, "send_bytes: expected a string, got number")
    fails(function() ws.send_text("x") end, "call it with a colon, ws:send_text%(...%), not ws%.send_text%(...%)")
    fails(function() ws:send_json(function() end) end, "send_json: cannot encode the value as JSON")
    fails(function() ws:receive("x") end, "receive: timeout must be a number of seconds, 0 or more")
    fails(function() ws:receive_text(-1) end, "receive_text: timeout must be a number of seconds, 0 or more")
    fails(function() ws:close(5000) end, "close: invalid close code 5000")
    fails(function() ws:close(1005) end, "close: invalid close code 1005")
    fails(function() ws:close(1000, string.rep("r", 124)) end,
      "close: the reason must be a string of at most 123 bytes of UTF%-8")
    fails(function() ws:wait_closed(0 / 0) end, "wait_closed: timeout must be a number of seconds, 0 or more")
    fails(function() ws.abort() end, "call it with a colon, ws:abort%(...%)")
    fails(function() client.close() end, "call it with a colon, client:close%(...%)")
    fails(function() TestClient.wait_until(function() return false end, -1) end,
      "wait_until: timeout must be a number of seconds, 0 or more %(nil: 5%), got %-1")
    -- (0 is a timeout: run for no time, look once)
    assert.has_no_error(function() client:run_for(0) end)
    assert.is_false(TestClient.wait_until(function() return false end, 0))
    assert.is_true(TestClient.wait_until(function() return true end, 0))
    fails(function() client:websocket_connect(nil) end,
      "websocket_connect: the path must be a string starting with '/', got nil")
    fails(function() client:websocket_connect("/ws", { headers = "x" }) end,
      "websocket_connect: headers must be a table, got string")
    fails(function() client:websocket_connect("/ws", { subprotocols = "chat" }) end,
      "websocket_connect: subprotocols must be a list of strings, got string")
    fails(function() client:websocket_connect("/ws", { headers = { ["X-A"] = {} } }) end,
      "websocket_connect: a header needs a string name and a string value, got string = table")
    fails(function() client:run_for("x") end, "run_for: seconds must be a number, 0 or more, got x")
    fails(function() TestClient.run_for() end, "run_for: seconds must be a number, 0 or more, got nil")
    fails(function() TestClient.wait_until(nil) end, "wait_until: cond must be a function, got nil")
    fails(function() TestClient(nil) end,
      "expected the app %(a nexlua%.App%(%); does the app file end with `return app`%?%), got nil")
    fails(function() TestClient({}) end, "expected the app .*, got a table that is not an App")
    -- and the connection is still fine
    ws:send_text("still here")
    assert.equal("Echo: still here", ws:receive_text())
  end)

  it("a receive that gets nothing fails after its timeout with a clear message", function()
    local ws = client:websocket_connect("/silent")
    local t0 = clock()
    local ok, err = pcall(ws.receive_text, ws, 0.2)
    local took = clock() - t0
    assert.is_false(ok)
    assert.matches("TestClient: no message from the server on /silent within 0.2 s", tostring(err), 1, true)
    assert.is_true(took >= 0.19 and took < 1.5, "gave up after " .. took .. " s")
    -- the connection's own timeout applies when the receive names none
    local ws2 = client:websocket_connect("/silent", { timeout = 0.3 })
    ok, err = pcall(ws2.receive_json, ws2)
    assert.is_false(ok)
    assert.matches("within 0.3 s", tostring(err), 1, true)
  end)

  it("the default receive timeout is 5 s", function()
    local c = TestClient(dofile(APP)) -- no timeout option
    local ran, result = pcall(function()
      local ws = c:websocket_connect("/silent")
      local t0 = clock()
      local ok, err = pcall(ws.receive, ws)
      return { ok = ok, err = tostring(err), took = clock() - t0 }
    end)
    c:close()
    assert(ran, result)
    assert.is_false(result.ok)
    assert.matches("TestClient: no message from the server on /silent within 5 s", result.err, 1, true)
    assert.is_true(result.took >= 4.9 and result.took < 7, "gave up after " .. result.took .. " s")
  end)

  it("a handshake refused with 403 raises an error carrying the status", function()
    local ok, err = pcall(client.websocket_connect, client, "/forbidden")
    assert.is_false(ok)
    assert.is_true(TestClient.is_rejected(err), tostring(err))
    assert.equal(403, err.status)
    assert.equal("WebSocket handshake rejected with HTTP 403", tostring(err))
  end)

  it("a handshake to an unknown path raises an error carrying 404", function()
    local ok, err = pcall(client.websocket_connect, client, "/no/such/route")
    assert.is_false(ok)
    assert.is_true(TestClient.is_rejected(err), tostring(err))
    assert.equal(404, err.status)
  end)
end)
