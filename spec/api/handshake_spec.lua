-- ws:accept{subprotocol=, headers=}, ws:close(code, reason), refusing before
-- accept (403), handler errors before accept (500), ws:deny.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local cjson = require "cjson"
local OP = rawws.OP

describe("handshake: accept and close", function()
  local s
  local clients = {}

  setup(function() s = server.start("spec/apps/handshake_app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function connect(path, opts)
    local c = rawws.connect(s.port, path, opts)
    clients[#clients + 1] = c
    return c
  end

  local function open(path, opts)
    local c = connect(path, opts)
    assert.equal(101, c.status,
      "expected 101 for " .. path .. ", got " .. tostring(c.status) .. ": " .. tostring(c.body))
    assert.equal(c.expected_accept, c.headers["sec-websocket-accept"])
    return c
  end

  -- A refused handshake: an HTTP status, no upgrade, then the server closes TCP.
  local function expect_refused(path, status, opts, upgrade_offered)
    local c = connect(path, opts)
    assert.equal(status, c.status,
      "expected HTTP " .. status .. " for " .. path .. ", got " .. tostring(c.status))
    if not upgrade_offered then assert.is_nil(c.headers["upgrade"]) end
    assert.is_nil(c.headers["sec-websocket-accept"])
    assert.is_true((c:wait_tcp_close(3)), "the server must close the connection after refusing")
    return c
  end

  describe("accept()", function()
    it("upgrades with 101 and a correct Sec-WebSocket-Accept, without a subprotocol", function()
      local c = open("/accept/plain", { headers = { ["Sec-WebSocket-Protocol"] = "chat" } })
      assert.equal("websocket", c.headers["upgrade"]:lower())
      assert.is_nil(c.headers["sec-websocket-protocol"], "no subprotocol was chosen")
      assert.equal("accepted", (c:recv_message()))
    end)

    it("answers with the chosen subprotocol", function()
      local c = open("/accept/subprotocol?pick=superchat",
        { headers = { ["Sec-WebSocket-Protocol"] = "chat, superchat" } })
      assert.equal("superchat", c.headers["sec-websocket-protocol"])
      assert.equal("proto:superchat", (c:recv_message()))
    end)

    it("takes the subprotocol as a plain string too", function()
      local c = open("/accept/subprotocol-string",
        { headers = { ["Sec-WebSocket-Protocol"] = "chat" } })
      assert.equal("chat", c.headers["sec-websocket-protocol"])
      assert.equal("proto:chat", (c:recv_message()))
    end)

    it("raises for a subprotocol the client did not offer: HTTP 500, logged, no upgrade", function()
      expect_refused("/accept/subprotocol?pick=mqtt", 500,
        { headers = { ["Sec-WebSocket-Protocol"] = "chat, superchat" } })
      assert.truthy(s:wait_log('subprotocol "mqtt" was not offered', 3),
        "the error should be logged; log:\n" .. s:log())
      -- No Sec-WebSocket-Protocol header at all: nothing was offered.
      expect_refused("/accept/subprotocol?pick=chat", 500)
    end)

    it("adds the extra response headers", function()
      local c = open("/accept/headers")
      assert.equal("nexlua", c.headers["x-server"])
      assert.equal("abc-123", c.headers["x-request-id"])
      assert.equal("ok", (c:recv_message()))
    end)

    it("takes headers as a list of pairs, with a subprotocol", function()
      local c = open("/accept/headers-and-subprotocol",
        { headers = { ["Sec-WebSocket-Protocol"] = "chat" } })
      assert.equal("chat", c.headers["sec-websocket-protocol"])
      assert.equal("1", c.headers["x-one"])
      assert.equal("2", c.headers["x-two"])
      -- headers come in the given order
      local names = {}
      for _, kv in ipairs(c.header_list) do names[#names + 1] = kv[1] end
      local one, two
      for i, n in ipairs(names) do
        if n == "x-one" then one = i elseif n == "x-two" then two = i end
      end
      assert.is_true(one < two)
      assert.equal("ok", (c:recv_message()))
    end)

    it("refuses bad headers and a second accept with a WebSocketError", function()
      local c = open("/accept/misuse")
      assert.is_nil(c.headers["injected"], "a header value with CRLF must never reach the wire")
      local r = cjson.decode((c:recv_message()))
      for _, k in ipairs { "bad_header_name", "crlf_value", "reserved_header", "reserved_extensions",
        "reserved_length", "twice" } do
        assert.is_false(r[k].ok, k .. " should have raised")
        assert.is_true(r[k].is_ws_error, k .. ": " .. r[k].err)
      end
      assert.matches("invalid header name", r.bad_header_name.err)
      assert.matches("line break", r.crlf_value.err)
      assert.matches("set by the server", r.reserved_header.err)
      -- (the client would believe in compression the server never turned on)
      assert.matches("accept: header Sec%-WebSocket%-Extensions is set by the server", r.reserved_extensions.err)
      assert.matches("accept: header Content%-Length is set by the server", r.reserved_length.err)
      assert.matches("accept%(%) called twice", r.twice.err)
      -- the error names the app's line
      assert.matches("handshake_app%.lua:%d+:", r.twice.err)
    end)
  end)

  describe("refusing", function()
    it("close() before accept() answers HTTP 403 and never upgrades", function()
      -- A frame sent right behind the request must not be read as WebSocket data.
      local c = expect_refused("/close/before-accept", 403,
        { extra = rawws.build_frame { opcode = OP.TEXT, payload = "sneaky" } })
      assert.equal("", c.trailing, "nothing may follow the 403 response")
    end)

    it("a handler returning without accept() answers HTTP 403", function()
      expect_refused("/return-without-accept", 403)
    end)

    it("deny(status, body, headers) answers that HTTP response", function()
      local c = expect_refused("/deny", 401)
      assert.equal("Bearer", c.headers["www-authenticate"])
      assert.equal("token required\n", c.body)
    end)

    it("deny(426) without an Upgrade header keeps Connection: close (no upgrade option)", function()
      local c = expect_refused("/deny426", 426)
      assert.equal("close", c.headers["connection"])
      assert.is_nil(c.headers["upgrade"])
    end)

    it("deny(426, body, {Upgrade = ...}) sends the Upgrade header with Connection: Upgrade, close", function()
      local c = expect_refused("/deny426-upgrade", 426, nil, true)
      assert.equal("websocket", c.headers["upgrade"])
      assert.equal("Upgrade, close", c.headers["connection"])
      assert.equal("upgrade to the v2 protocol\n", c.body)
    end)

    it("deny() looks for Content-Type and Upgrade among header names only, not in values", function()
      local c = expect_refused("/deny/note", 403)
      assert.equal("text/plain; charset=utf-8", c.headers["content-type"])
      assert.equal("close", c.headers["connection"])
      assert.equal("content-type: upgrade: neither is a header here", c.headers["x-note"])
    end)

    it("deny() with a Date of the app's: that one, not a second of the server's", function()
      local c = expect_refused("/deny/dated", 503)
      local dates = {}
      for _, h in ipairs(c.header_list) do
        if h[1] == "date" then dates[#dates + 1] = h[2] end
      end
      assert.same({ "Thu, 01 Jan 1970 00:00:00 GMT" }, dates)
      assert.equal("5", c.headers["retry-after"])
      -- and without one, the server's (RFC 9110 §6.6.1)
      local other = expect_refused("/deny", 401)
      assert.matches("^%u%l%l, %d%d %u%l%l %d%d%d%d %d%d:%d%d:%d%d GMT$", other.headers["date"])
    end)

    it("deny() refuses the headers that frame its response, naming deny", function()
      local c = expect_refused("/deny/reserved", 400)
      assert.matches("^false .*deny: header Content%-Length is set by the server$", c.body)
    end)

    it("an error before accept() answers HTTP 500", function()
      expect_refused("/error-before-accept", 500)
      assert.truthy(s:wait_log("failure before accept", 3))
    end)
  end)

  describe("close()", function()
    it("happens with 1000 when the handler returns after accept()", function()
      local c = open("/accept/return")
      assert.equal("bye", (c:recv_message()))
      assert.equal(1000, (c:expect_close()))
      c:close(1000)
      assert.is_true((c:wait_tcp_close(3)))
    end)

    it("defaults to code 1000 and an empty reason, then closes TCP after the reply", function()
      local c = open("/close/default")
      local code, reason = c:expect_close()
      assert.equal(1000, code)
      assert.equal("", reason)
      c:close(1000)
      assert.is_true((c:wait_tcp_close(3)))
    end)

    it("sends the given code and reason", function()
      local c = open("/close/with?code=4001&reason=see+you")
      local code, reason = c:expect_close()
      assert.equal(4001, code)
      assert.equal("see you", reason)
      c:close(4001)
      assert.is_true((c:wait_tcp_close(3)))
    end)

    it("accepts every valid code (1000-1003, 1007-1014, 3000-4999)", function()
      for _, code in ipairs { 1001, 1003, 1007, 1008, 1011, 1014, 3000, 4999 } do
        local c = open("/close/with?code=" .. code .. "&reason=r%C3%A9")
        local got, reason = c:expect_close()
        assert.equal(code, got)
        assert.equal("ré", reason)
        c:close(1000)
        c:close_socket()
      end
    end)

    it("sends one close frame when called twice", function()
      local c = open("/close/twice")
      local code, reason = c:expect_close()
      assert.equal(4000, code)
      assert.equal("first", reason)
      c:close(1000)
      assert.is_true((c:wait_tcp_close(3)))
      assert.equal("", c.trailing, "nothing after the first close frame")
    end)

    it("validates the code and the reason's length", function()
      local c = open("/close/validation")
      local r = cjson.decode((c:recv_message()))
      assert.equal(12, #r)
      for _, x in ipairs(r) do
        assert.is_false(x.ok, "close(" .. x.code .. ") should have raised")
        assert.is_true(x.is_ws_error, x.err)
      end
      assert.matches("invalid close code 1005", r[4].err)
      -- a code that is not an integer is named as such, not as a code out of range
      assert.matches("the code must be an integer, got number 1000.5", r[10].err, 1, true)
      assert.matches('the code must be an integer, got string "1000"', r[11].err, 1, true)
      assert.matches("longer than 123 bytes", r[12].err)
      -- and a 123-byte reason is fine
      local code, reason = c:expect_close()
      assert.equal(1000, code)
      assert.equal(string.rep("r", 123), reason)
    end)

    it("refuses a reason that is not UTF-8 instead of sending it", function()
      local c = open("/close/bad-utf8")
      local f = assert(c:recv_frame())
      if f.opcode == OP.CLOSE then
        error(string.format("close(1000, <invalid UTF-8>) sent it on the wire: close payload %q",
          f.payload))
      end
      assert.equal(OP.TEXT, f.opcode)
      local r = cjson.decode(f.payload)
      assert.is_false(r.ok)
      assert.is_true(r.is_ws_error, r.err)
      local code = c:expect_close()
      assert.equal(1000, code)
    end)
  end)
end)
