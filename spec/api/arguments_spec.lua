-- The arguments of the API calls, as a Nexios user writes them: an options
-- table with a key the call does not take raises (naming it and the ones
-- it takes) instead of being ignored; Nexios's send_json(v, mode="binary")
-- is {mode = "binary"}; and a method called with a dot (Python's
-- ws.send_text("x"), ws.query_params.get("token")) raises saying to use a
-- colon. Over real sockets (TestClient).
local TestClient = require "nexlua.testing"
local nexlua = require "nexlua"

-- One route per case: the handler runs the call under pcall and sends
-- back what it raised ("ok" if nothing), then what the client should see.
local function app_with(cases)
  local app = nexlua.App()
  app:ws_route("/{case}", function(ws)
    local case = cases[ws.path_params.case]
    if case.before_accept then
      local ok, err = pcall(case.fn, ws)
      ws:accept()
      ws:send_text(ok and "ok" or tostring(err))
      return
    end
    ws:accept()
    local ok, err = pcall(case.fn, ws)
    ws:send_text(ok and "ok" or tostring(err))
    ws:send_text("still open")
  end)
  return app
end

describe("API arguments", function()
  local client, ws
  after_each(function()
    if client then client:close() end
    client, ws = nil, nil
  end)

  local function connect(cases, name, ...)
    client = TestClient(app_with(cases), { timeout = 3 })
    ws = client:websocket_connect("/" .. name, ...)
  end

  local function run(cases, name, ...)
    connect(cases, name, ...)
    return ws:receive_text()
  end

  describe("an unknown option raises, naming it and the ones the call takes", function()
    local here = "spec/api/arguments_spec.lua:%d+: "
    local cases = {
      accept = { before_accept = true, fn = function(w) w:accept({ subprotocl = "chat" }) end },
      receive = { fn = function(w) w:receive({ timeot = 0.2 }) end },
      receive_json = { fn = function(w) w:receive_json({ timeout = 0.01, mod = "text" }) end },
      send_json = { fn = function(w) w:send_json({ a = 1 }, { mod = "binary" }) end },
      publish = { fn = function(w) nexlua.publish("t", "x", { exclud = w }) end },
      ws_publish = { fn = function(w) w:publish("t", "x", { exclude = w }) end },
    }
    for name, want in pairs({
      accept = here .. "accept: unknown option subprotocl %(it takes subprotocol, headers%)",
      receive = here .. "receive: unknown option timeot %(it takes timeout%)",
      receive_json = here .. "receive_json: unknown option mod %(it takes timeout, mode%)",
      send_json = here .. "send_json: unknown option mod %(it takes binary, mode%)",
      publish = here .. "publish: unknown option exclud %(it takes exclude, binary, mode%)",
      ws_publish = here .. "publish: unknown option exclude %(it takes binary, mode%)",
    }) do
      it(name, function()
        assert.matches("^" .. want .. "$", run(cases, name))
        if name ~= "accept" then assert.equal("still open", ws:receive_text()) end
      end)
    end

    it("TestClient's websocket_connect", function()
      client = TestClient(app_with({}), { timeout = 3 })
      local ok, err = pcall(client.websocket_connect, client, "/x", { header = { A = "b" } })
      assert.is_false(ok)
      assert.matches("websocket_connect: unknown option header %(it takes headers, subprotocols, query, timeout%)",
        tostring(err))
    end)
  end)

  describe("a binary JSON message", function()
    local cases = {
      mode_binary = { fn = function(w) w:send_json({ a = 1 }, { mode = "binary" }) end },
      mode_text = { fn = function(w) w:send_json({ a = 1 }, { mode = "text" }) end },
      binary = { fn = function(w) w:send_json({ a = 1 }, { binary = true }) end },
      bad_mode = { fn = function(w) w:send_json({ a = 1 }, { mode = "bin" }) end },
      disagree = { fn = function(w) w:send_json({ a = 1 }, { mode = "text", binary = true }) end },
      bad_binary = { fn = function(w) w:send_json({ a = 1 }, { binary = "yes" }) end },
      publish = { fn = function(w)
        w:subscribe("t")
        nexlua.publish_json("t", { b = 2 }, { mode = "binary" })
      end },
    }

    for name, kind in pairs({ mode_binary = "binary", mode_text = "text", binary = "binary", publish = "binary" }) do
      it(name .. " sends a " .. kind .. " message", function()
        connect(cases, name)
        local data, got = ws:receive()
        assert.equal(name == "publish" and '{"b":2}' or '{"a":1}', data)
        assert.equal(kind, got)
        assert.equal("ok", ws:receive_text())
      end)
    end

    for name, want in pairs({
      bad_mode = 'send_json: mode must be "text" or "binary", got "bin"',
      disagree = 'send_json: binary = true and mode = "text" disagree',
      bad_binary = "send_json: binary must be true or false, got string",
    }) do
      it("refuses " .. name, function()
        assert.matches(want, run(cases, name), 1, true)
        assert.equal("still open", ws:receive_text())
      end)
    end
  end)

  describe("receive_json with Nexios's mode", function()
    -- The handler answers each message with what receive_json made of it.
    local function mode_app(mode)
      local app = nexlua.App()
      app:ws_route("/m", function(w)
        w:accept()
        for _ = 1, 2 do
          local ok, v = pcall(w.receive_json, w, { mode = mode, timeout = 2 })
          w:send_text(ok and ("got " .. v.a) or tostring(v))
        end
        local ok, err = pcall(w.receive_json, w, { mode = "txt" })
        w:send_text(ok and "ok" or tostring(err))
      end)
      return app
    end
    for _, case in ipairs({
      { "text", "got 1", "expected a text message, received a binary message" },
      { "binary", "expected a binary message, received a text message", "got 1" },
    }) do
      it("mode = '" .. case[1] .. "' takes a " .. case[1] .. " message and refuses the other type", function()
        client = TestClient(mode_app(case[1]), { timeout = 3 })
        ws = client:websocket_connect("/m")
        ws:send_text('{"a": 1}')
        ws:send_bytes('{"a": 1}')
        assert.matches(case[2], ws:receive_text(), 1, true)
        assert.matches(case[3], ws:receive_text(), 1, true)
        assert.matches('receive_json: mode must be "text" or "binary", got "txt"', ws:receive_text(), 1, true)
      end)
    end

    it("the test side's send_json takes mode too", function()
      client = TestClient(mode_app("binary"), { timeout = 3 })
      ws = client:websocket_connect("/m")
      ws:send_json({ a = 1 }, { mode = "binary" })
      ws:send_json({ a = 2 }, { binary = true })
      assert.equal("got 1", ws:receive_text())
      assert.equal("got 2", ws:receive_text())
    end)
  end)

  describe("a method called with a dot raises, saying to use a colon", function()
    local cases = {
      receive_number = { fn = function(w) w.receive(5) end },
      subscribe = { fn = function(w) w.subscribe("t") end },
      publish = { fn = function(w) w.publish("t", "x") end },
      is_connected = { fn = function(w) local v = w.is_connected() return v end },
      iter_text = { fn = function(w) for _ in w.iter_text() do end end },
      topics = { fn = function(w) local v = w.topics() return v end },
      buffered_amount = { fn = function(w) local v = w.buffered_amount() return v end },
      send_text = { fn = function(w) w.send_text("x") end },
      send_bytes = { fn = function(w) w.send_bytes("x") end },
      send_json = { fn = function(w) w.send_json({ a = 1 }) end },
      receive_text = { fn = function(w) w.receive_text() end },
      close = { fn = function(w) w.close(1000) end },
      accept = { before_accept = true, fn = function(w) w.accept() end },
      query = { fn = function(w) w.query_params.get("token") end },
      headers = { fn = function(w) w.headers.get("host") end },
    }
    for name, want in pairs({
      send_text = "send_text: call it with a colon, ws:send_text(...), not ws.send_text(...)",
      send_bytes = "send_bytes: call it with a colon, ws:send_bytes(...), not ws.send_bytes(...)",
      send_json = "send_json: call it with a colon, ws:send_json(...), not ws.send_json(...)",
      receive_text = "receive_text: call it with a colon, ws:receive_text(...), not ws.receive_text(...)",
      receive_number = "receive: call it with a colon, ws:receive(...), not ws.receive(...)",
      subscribe = "subscribe: call it with a colon, ws:subscribe(...), not ws.subscribe(...)",
      publish = "publish: call it with a colon, ws:publish(...), not ws.publish(...)",
      is_connected = "is_connected: call it with a colon, ws:is_connected(...), not ws.is_connected(...)",
      iter_text = "iter_text: call it with a colon, ws:iter_text(...), not ws.iter_text(...)",
      topics = "topics: call it with a colon, ws:topics(...), not ws.topics(...)",
      buffered_amount = "buffered_amount: call it with a colon",
      close = "close: call it with a colon, ws:close(...), not ws.close(...)",
      accept = "accept: call it with a colon, ws:accept(...), not ws.accept(...)",
      query = "get: call it with a colon, as in ws.query_params:get(...)",
      headers = "get: call it with a colon, as in ws.query_params:get(...)",
    }) do
      it(name, function()
        local got = run(cases, name, { query = { token = "abc" } })
        assert.matches("spec/api/arguments_spec.lua:%d+: ", got)
        assert.truthy(got:find(want, 1, true), got)
        if name ~= "accept" then assert.equal("still open", ws:receive_text()) end
      end)
    end
  end)
end)
