-- Opening handshake, RFC 6455 §4.2.1/§4.2.2, plus the nexlua limits
-- (--max-header-size, --handshake-timeout) and bytes that follow the request in
-- the same TCP segment.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local socket = require "socket"
local clock = require "helpers.clock"
local OP = rawws.OP

local APP = "examples/echo/app.lua"
local HANDSHAKE_TIMEOUT = 2   -- passed explicitly so the timeout test stays short
local DEFAULT_MAX_HEADER = 16384

local KEY = "dGhlIHNhbXBsZSBub25jZQ=="

local function has_token(value, token)
  if not value then return false end
  for t in value:gmatch("[^,]+") do
    if t:match("^%s*(.-)%s*$"):lower() == token then return true end
  end
  return false
end

describe("conformance: opening handshake", function()
  local s
  local clients = {}

  setup(function()
    s = server.start(APP, { "--handshake-timeout", tostring(HANDSHAKE_TIMEOUT) })
  end)
  teardown(function()
    if s then assert.is_true(s:stop(), "server did not exit within 5 s of SIGTERM") end
  end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server process died; log:\n" .. s:log())
  end)

  local function track(c) clients[#clients + 1] = c; return c end

  -- Build a request from the default valid headers with overrides
  -- (name -> value, or false to drop the header).
  local function request(overrides, path, method, version)
    return (rawws.build_request(s.port, path or "/ws",
      { headers = overrides or {}, key = KEY, method = method, version = version }))
  end

  local function http(text, opts)
    local status, headers, body, c = rawws.http(s.port, text, opts)
    track(c)
    return status, headers, body, c
  end

  local function assert_upgraded(c)
    assert.equal(101, c.status, "status line: " .. tostring(c.status_line))
    assert.equal(c.expected_accept, c.headers["sec-websocket-accept"])
    c:send_text("after upgrade")
    c:expect_echo("after upgrade", OP.TEXT)
  end

  describe("valid upgrade", function()
    it("answers 101 Switching Protocols with Upgrade, Connection and a correct Accept", function()
      local c = track(rawws.connect(s.port, "/ws"))
      assert.equal(101, c.status)
      assert.equal("HTTP/1.1", c.http_version)
      assert.is_true(has_token(c.headers["upgrade"], "websocket"),
        "Upgrade: " .. tostring(c.headers["upgrade"]))
      assert.is_true(has_token(c.headers["connection"], "upgrade"),
        "Connection: " .. tostring(c.headers["connection"]))
      assert.equal(rawws.accept_key(c.key), c.headers["sec-websocket-accept"])
      assert.is_nil(c.headers["sec-websocket-protocol"])
      assert.is_nil(c.headers["sec-websocket-extensions"])
      c:send_text("hello")
      c:expect_echo("hello", OP.TEXT)
    end)

    it("computes the RFC 6455 sample accept key", function()
      local c = track(rawws.connect(s.port, "/ws", { key = KEY }))
      assert.equal(101, c.status)
      assert.equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", c.headers["sec-websocket-accept"])
    end)

    it("accepts 50 different random keys with the right accept value each", function()
      for _ = 1, 50 do
        local c = track(rawws.connect(s.port, "/ws"))
        assert.equal(101, c.status)
        assert.equal(rawws.accept_key(c.key), c.headers["sec-websocket-accept"])
        c:close_socket()
      end
    end)

    it("treats header names and the Upgrade/Connection tokens case-insensitively", function()
      local text = "GET /ws HTTP/1.1\r\nhost: 127.0.0.1\r\nUPGRADE: WebSocket\r\n" ..
        "connection: UPGRADE\r\nsec-websocket-key: " .. KEY ..
        "\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n"
      local c = track(rawws.connect(s.port, "/ws", { raw_request = text, key = KEY }))
      assert_upgraded(c)
    end)

    for _, conn in ipairs({ "keep-alive, Upgrade", "Upgrade, keep-alive", "keep-alive,upgrade",
                            "keep-alive , Upgrade " }) do
      it(string.format("accepts Connection: %q (comma list)", conn), function()
        local c = track(rawws.connect(s.port, "/ws", { headers = { Connection = conn } }))
        assert_upgraded(c)
      end)
    end

    it("accepts websocket as one token of an Upgrade list", function()
      local c = track(rawws.connect(s.port, "/ws", { headers = { Upgrade = "foo/2, websocket" } }))
      assert_upgraded(c)
    end)

    it("does not pick a subprotocol the echo app did not choose", function()
      local c = track(rawws.connect(s.port, "/ws",
        { headers = { ["Sec-WebSocket-Protocol"] = "chat, superchat" } }))
      assert.equal(101, c.status)
      assert.is_nil(c.headers["sec-websocket-protocol"])
    end)

    it("accepts a request written one byte per send()", function()
      local c = track(rawws.open_tcp(s.port))
      local req, key = rawws.build_request(s.port, "/ws", { key = KEY })
      assert.is_true(c:send_raw(req, 1))
      local status, headers = c:read_http_response()
      assert.equal(101, status)
      assert.equal(rawws.accept_key(key), headers["sec-websocket-accept"])
      c:send_text("x")
      c:expect_echo("x", OP.TEXT)
    end)

    it("accepts a request with headers just below the default header limit", function()
      local pad = string.rep("a", DEFAULT_MAX_HEADER - 2048)
      local c = track(rawws.connect(s.port, "/ws", { headers = { ["X-Pad"] = pad } }))
      assert_upgraded(c)
    end)
  end)

  describe("bytes after the request in the same segment", function()
    it("treats a text frame sent with the request as the first frame", function()
      local c = track(rawws.connect(s.port, "/ws",
        { extra = rawws.build_frame { opcode = OP.TEXT, payload = "tail frame" } }))
      assert.equal(101, c.status)
      c:expect_echo("tail frame", OP.TEXT)
    end)

    it("treats two data frames sent with the request as the first frames, in order", function()
      local c = track(rawws.connect(s.port, "/ws", { extra =
        rawws.build_frame { opcode = OP.TEXT, payload = "one" } ..
        rawws.build_frame { opcode = OP.BINARY, payload = "\0two" } }))
      assert.equal(101, c.status)
      c:expect_echo("one", OP.TEXT)
      c:expect_echo("\0two", OP.BINARY)
    end)

    it("answers a ping sent with the request", function()
      local c = track(rawws.connect(s.port, "/ws",
        { extra = rawws.build_frame { opcode = OP.PING, payload = "early ping" } }))
      assert.equal(101, c.status)
      c:expect_pong("early ping")
    end)

    it("keeps a partial frame sent with the request and completes it with later bytes", function()
      local frame = rawws.build_frame { opcode = OP.TEXT, payload = "split across the upgrade" }
      local c = track(rawws.connect(s.port, "/ws", { extra = frame:sub(1, 9) }))
      assert.equal(101, c.status)
      c:expect_silence(0.1)
      c:send_raw(frame:sub(10))
      c:expect_echo("split across the upgrade", OP.TEXT)
    end)

    it("answers a close sent with the request", function()
      local c = track(rawws.connect(s.port, "/ws",
        { extra = rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) } }))
      assert.equal(101, c.status)
      assert.equal(1000, (c:expect_failure(1000) and 1000))
    end)
  end)

  describe("rejections", function()
    it("answers 404 for an unknown path, without upgrading", function()
      local status, headers = http(request(nil, "/nope"))
      assert.equal(404, status)
      assert.is_nil(headers["sec-websocket-accept"])
    end)

    it("answers 404 for / (not a registered route)", function()
      local c = track(rawws.connect(s.port, "/"))
      assert.equal(404, c.status)
      assert.is_nil(c.headers["sec-websocket-accept"])
    end)

    it("answers 400 when Host is missing", function()
      assert.equal(400, (http(request { Host = false })))
    end)

    it("answers 400 for HTTP/1.0", function()
      assert.equal(400, (http(request(nil, "/ws", "GET", "HTTP/1.0"))))
    end)

    -- HTTP/1.1's syntax under another version: one the server does not
    -- speak (RFC 9110 §15.6.6). (A later HTTP/1.x would be read as 1.1, but
    -- the request parser, llhttp 8, knows only 1.0 and 1.1.)
    for _, version in ipairs { "HTTP/2.0", "HTTP/3.0", "HTTP/1.2", "HTTP/0.9" } do
      it("answers 505 HTTP Version Not Supported for " .. version, function()
        local status, _, _, c = http(request(nil, "/ws", "GET", version))
        assert.equal(505, status)
        assert.equal("HTTP Version Not Supported", c.reason)
      end)
    end

    -- A version that is not one (RFC 9112 §2.3: HTTP/DIGIT.DIGIT) is a
    -- malformed request line.
    for _, version in ipairs { "HTTP/1.x", "HTTP/x.1", "HTTP/11.1", "HTTP/1", "HTTP/1.1x", "HTTPS/1.1" } do
      it("answers 400 for a malformed version " .. version, function()
        assert.equal(400, (http(request(nil, "/ws", "GET", version))))
      end)
    end

    it("names the status of an app's refusal in its reason phrase", function()
      local hs = server.start("spec/apps/handshake_app.lua")
      finally(function() hs:stop() end)
      for status, phrase in pairs { [451] = "Unavailable For Legal Reasons", [418] = "Client Error",
        [413] = "Content Too Large", [503] = "Service Unavailable" } do
        local got, _, _, c = rawws.http(hs.port, (rawws.build_request(hs.port, "/deny-status?status=" .. status)))
        assert.equal(status, got)
        assert.equal(phrase, c.reason)
      end
    end)

    it("answers 405 for POST", function()
      assert.equal(405, (http(request(nil, "/ws", "POST"))))
    end)

    it("answers 405 for PUT", function()
      assert.equal(405, (http(request(nil, "/ws", "PUT"))))
    end)

    it("answers a HEAD with its 405 head and no body (RFC 9110 §9.3.2)", function()
      local c = track(rawws.open_tcp(s.port))
      c:send_raw(request(nil, "/ws", "HEAD"))
      assert.truthy(c:wait_tcp_close(3))
      local text = c.trailing -- all of it, up to the close
      assert.matches("^HTTP/1%.1 405 Method Not Allowed\r\n", text)
      assert.matches("\r\nAllow: GET\r\n", text)
      assert.matches("\r\nContent%-Length: %d+\r\n", text) -- (the GET's)
      assert.matches("\r\n\r\n$", text) -- the head, and nothing after it
    end)

    -- RFC 9110 §9.1: a method the server does not know is 501, and stays
    -- 400 when the request is not HTTP at all.
    -- (PLAY: llhttp knows RTSP's methods and refuses them in HTTP later)
    for _, method in ipairs({ "FOO", "BREW", "get", "M-SEARCH2", "X_Y.Z~", "PLAY", "ABCDEFGHIJKLMNOPQRSTUVWXYZ" }) do
      it("answers 501 Not Implemented for the unknown method " .. method, function()
        local status, _, body, c = http(request(nil, "/ws", method))
        assert.equal(501, status)
        assert.equal("Not Implemented", c.reason)
        assert.equal("501 Not Implemented\n", body)
      end)
    end

    it("answers 501 for an unknown method sent one byte at a time, or after empty lines", function()
      assert.equal(501, (http(request(nil, "/ws", "PURGEALL"), { pieces = 1 })))
      assert.equal(501, (http(string.rep("\r\n", 12) .. request(nil, "/ws", "FOO"))))
    end)

    -- Whole, or one byte at a time: the answer does not depend on the split.
    for _, junk in ipairs({ "\22\3\1\0\165\1\0\0\161\3\3", "G@T /ws HTTP/1.1\r\n\r\n",
      "(GET) /ws HTTP/1.1\r\n\r\n", "GET\t/ws HTTP/1.1\r\n\r\n", "FOO\t/ws HTTP/1.1\r\n\r\n",
      "SSH-2.0-OpenSSH_9.6\r\n" }) do
      it(string.format("answers 400 for a request line that is not HTTP: %q", junk:sub(1, 12)), function()
        assert.equal(400, (http(junk)))
        assert.equal(400, (http(junk, { pieces = 1 })))
      end)
    end

    -- RFC 9110 §6.6.1: a Date in every 2xx-4xx answer (IMF-fixdate).
    it("dates its answers: 400, 404, 405, 426 and 501 carry a Date in IMF-fixdate", function()
      for _, case in ipairs({
        { 400, request { Host = false } }, { 404, request(nil, "/no-such-route") },
        { 405, request(nil, "/ws", "POST") }, { 426, request { Upgrade = false } },
        { 501, request(nil, "/ws", "UNKNOWN") } }) do
        local before = os.time()
        local status, headers = http(case[2])
        assert.equal(case[1], status)
        local date = headers["date"]
        assert.is_string(date, "no Date in the " .. status)
        local d, mon, y, hh, mm, ss = date:match(
          "^%u%l%l, (%d%d) (%u%l%l) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
        assert.is_truthy(d, "not IMF-fixdate: " .. date)
        local months = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
          Sep = 9, Oct = 10, Nov = 11, Dec = 12 }
        local utc = os.date("!*t", before)
        local stamp = os.time { year = tonumber(y), month = months[mon], day = tonumber(d),
          hour = tonumber(hh), min = tonumber(mm), sec = tonumber(ss) }
        local base = os.time { year = utc.year, month = utc.month, day = utc.day, hour = utc.hour,
          min = utc.min, sec = utc.sec }
        assert.is_true(math.abs(stamp - base) <= 5, "Date " .. date .. " is not now")
        assert.equal(os.date("!%a", before + (stamp - base)), date:sub(1, 3)) -- (its weekday)
      end
    end)

    it("names GET in the Allow header of a 405 (RFC 9110 §15.5.6)", function()
      local status, headers = http(request(nil, "/ws", "POST"))
      assert.equal(405, status)
      assert.equal("GET", headers["allow"])
    end)

    it("sends Connection: Upgrade with the Upgrade header of a 426 (RFC 9110 §7.8)", function()
      for _, overrides in ipairs({ { ["Sec-WebSocket-Version"] = "8" }, { Upgrade = false } }) do
        local status, headers = http(request(overrides))
        assert.equal(426, status)
        assert.equal("websocket", headers["upgrade"])
        assert.is_true(has_token(headers["connection"], "upgrade"), tostring(headers["connection"]))
      end
    end)

    -- RFC 9112 §3.2: a Host that is not uri-host [ ":" port ].
    for _, host in ipairs({ "a b", "a/b", "a@b", "[::1", "http://evil", "a:80x", "a?b", '"a"' }) do
      it(string.format("answers 400 for Host: %s", host), function()
        local status, headers = http(request { Host = host })
        assert.equal(400, status)
        assert.is_nil(headers["sec-websocket-accept"])
      end)
    end

    it("upgrades for valid Host forms: a name, a port, an IPv6 literal, empty", function()
      for _, host in ipairs({ "example.com", "example.com:8080", "[::1]:443", "127.0.0.1", "" }) do
        local c = track(rawws.connect(s.port, "/ws", { headers = { Host = host } }))
        assert.equal(101, c.status, "Host: " .. host)
      end
    end)

    -- RFC 9112 §5.1: whitespace between a field name and its colon.
    for _, line in ipairs({ "X-Foo : a", "X-Foo  : a", "Host : evil.example",
                            "Origin : http://evil.example", "X Foo: a", ": a" }) do
      it(string.format("answers 400 for the header line %q", line), function()
        local text = request():gsub("\r\n\r\n$", "\r\n" .. line .. "\r\n\r\n")
        assert.equal(400, (http(text)))
      end)
    end

    -- RFC 9112 §5.2: obs-fold, refused whether the fold comes in one read or
    -- the continuation line in the next.
    it("answers 400 for a header value folded over two lines (obs-fold)", function()
      local text = request():gsub("\r\n\r\n$", "\r\nX-Foo: a\r\n\tb\r\n\r\n")
      assert.equal(400, (http(text)))
      local c = track(rawws.open_tcp(s.port))
      local at = text:find("\tb", 1, true)
      c:send_raw(text:sub(1, at - 1))
      socket.sleep(0.05)
      c:send_raw(text:sub(at))
      assert.equal(400, (c:read_http_response()))
    end)

    -- The same when the value's first line is empty: "Connection:" CRLF " Upgrade"
    -- (the fold's line is then the value's first piece), in one read or split
    -- at every byte around the fold.
    it("answers 400 for a folded value whose first line is empty", function()
      local text = request():gsub("Connection: Upgrade\r\n", "Connection:\r\n Upgrade\r\n")
      assert.truthy(text:find("Connection:\r\n Upgrade", 1, true))
      assert.equal(400, (http(text)))
      local at = text:find("\r\n Upgrade", 1, true)
      for cut = at - 1, at + 4 do
        local c = track(rawws.open_tcp(s.port))
        c:send_raw(text:sub(1, cut))
        socket.sleep(0.02)
        c:send_raw(text:sub(cut + 1))
        assert.equal(400, (c:read_http_response()), "split after byte " .. cut)
      end
      -- a value that is only blanks, then a line of its own: the same
      assert.equal(400, (http((request():gsub("\r\n\r\n$", "\r\nX-Foo: \r\n\tb\r\n\r\n")))))
      -- an empty value followed by the next header is no fold
      assert.equal(101, (http((request():gsub("\r\n\r\n$", "\r\nX-Empty:\r\nX-Next: 1\r\n\r\n")))))
    end)

    -- RFC 9112 §6.3: a Transfer-Encoding whose final coding is not chunked.
    for _, te in ipairs({ "gzip", "xchunked", "identity", "chunked, gzip" }) do
      it("answers 400 for Transfer-Encoding: " .. te, function()
        assert.equal(400, (http(request { ["Transfer-Encoding"] = te })))
      end)
    end

    -- RFC 6455 §4.1: Sec-WebSocket-Protocol is 1#token.
    for _, proto in ipairs({ "a b", '"chat"', "ch;at", "ch/at" }) do
      it(string.format("answers 400 for Sec-WebSocket-Protocol: %s", proto), function()
        assert.equal(400, (http(request { ["Sec-WebSocket-Protocol"] = proto })))
      end)
    end

    -- RFC 6455 §3 (no fragment), RFC 9112 §3: a malformed request target.
    for _, target in ipairs({ "/ws#frag", "/ws\xe9" }) do
      it(string.format("answers 400 for the request target %q", target), function()
        assert.equal(400, (http(request(nil, target))))
      end)
    end

    it("answers 414 for a request target longer than the header limit", function()
      assert.equal(414, (http(request(nil, "/ws?" .. string.rep("a", DEFAULT_MAX_HEADER + 100)))))
    end)

    it("answers 426 for a plain GET without any Upgrade header", function()
      assert.equal(426, (http(request { Upgrade = false, Connection = false,
        ["Sec-WebSocket-Key"] = false, ["Sec-WebSocket-Version"] = false })))
    end)

    it("answers 426 when only the Upgrade header is missing", function()
      assert.equal(426, (http(request { Upgrade = false })))
    end)

    it("answers 400 for Upgrade: h2c", function()
      assert.equal(400, (http(request { Upgrade = "h2c" })))
    end)

    it("answers 400 for Upgrade: websocketx (token, not substring)", function()
      assert.equal(400, (http(request { Upgrade = "websocketx" })))
    end)

    it("answers 400 when Connection is missing", function()
      assert.equal(400, (http(request { Connection = false })))
    end)

    it("answers 400 for Connection: keep-alive (no upgrade token)", function()
      assert.equal(400, (http(request { Connection = "keep-alive" })))
    end)

    it("answers 400 for Connection: upgraded (token, not substring)", function()
      assert.equal(400, (http(request { Connection = "upgraded" })))
    end)

    it("answers 400 when Sec-WebSocket-Key is missing", function()
      assert.equal(400, (http(request { ["Sec-WebSocket-Key"] = false })))
    end)

    for _, bad in ipairs({
      { "too short (3 bytes)", "YWJj" },
      { "15 bytes", rawws.b64encode(string.rep("k", 15)) },
      { "17 bytes", rawws.b64encode(string.rep("k", 17)) },
      { "16 bytes plus trailing garbage", KEY .. "AAAA" },
      { "not base64", "!!!!!!!!!!!!!!!!!!!!!!==" },
      { "empty", "" },
    }) do
      it("answers 400 for a Sec-WebSocket-Key that is " .. bad[1], function()
        local status, headers = http(request { ["Sec-WebSocket-Key"] = bad[2] })
        assert.equal(400, status)
        assert.is_nil(headers["sec-websocket-accept"])
      end)
    end

    for _, v in ipairs({ "8", "12", "14", "abc" }) do
      it("answers 426 with Sec-WebSocket-Version: 13 for version " .. v, function()
        local status, headers = http(request { ["Sec-WebSocket-Version"] = v })
        assert.equal(426, status)
        assert.equal("13", headers["sec-websocket-version"])
        assert.is_nil(headers["sec-websocket-accept"])
      end)
    end

    it("does not upgrade when Sec-WebSocket-Version is missing (400 or 426)", function()
      local status = http(request { ["Sec-WebSocket-Version"] = false })
      assert.is_true(status == 400 or status == 426, "got " .. tostring(status))
    end)

    it("answers 431 for one header line larger than the default limit (16384)", function()
      local status = http(request { ["X-Pad"] = string.rep("a", DEFAULT_MAX_HEADER + 1024) })
      assert.equal(431, status)
    end)

    it("answers 431 for oversized headers written in 1000-byte pieces (limit counted across reads)",
      function()
      local c = track(rawws.open_tcp(s.port))
      c:send_raw(request { ["X-Pad"] = string.rep("c", DEFAULT_MAX_HEADER + 4096) }, 1000)
      assert.equal(431, (c:read_http_response()))
    end)

    it("answers 431 for many header lines adding up to more than the default limit", function()
      local hdrs = {}
      for i = 1, 400 do hdrs[#hdrs + 1] = { "X-Pad-" .. i, string.rep("b", 50) } end
      local text = request():gsub("\r\n\r\n$", "\r\n")
      for _, kv in ipairs(hdrs) do text = text .. kv[1] .. ": " .. kv[2] .. "\r\n" end
      text = text .. "\r\n"
      assert.is_true(#text > DEFAULT_MAX_HEADER + 4096)
      assert.equal(431, (http(text)))
    end)
  end)

  -- RFC 9110 §7.8 and §10.1.1: with Expect: 100-continue, a 100 (Continue)
  -- comes first, at once (not after the body), and the 101 after it.
  describe("Expect: 100-continue", function()
    it("sends 100 Continue before the 101", function()
      local c = track(rawws.open_tcp(s.port))
      c:send_raw(request { Expect = "100-continue" })
      assert.equal(100, (c:read_http_response()))
      local status, headers = c:read_http_response()
      assert.equal(101, status)
      assert.equal(rawws.accept_key(KEY), headers["sec-websocket-accept"])
      c:send_text("after 100")
      c:expect_echo("after 100", OP.TEXT)
    end)

    it("sends 100 Continue before the body arrives, then 101 once it has", function()
      local c = track(rawws.open_tcp(s.port))
      c:send_raw(request { Expect = "100-continue", ["Content-Length"] = "5" })
      assert.equal(100, (c:read_http_response(2)))
      c:send_raw("hello")
      assert.equal(101, (c:read_http_response()))
      c:send_text("x")
      c:expect_echo("x", OP.TEXT)
    end)

    it("sends no 100 for a request it refuses", function()
      local status = http(request { Expect = "100-continue", ["Sec-WebSocket-Key"] = "short" })
      assert.equal(400, status)
    end)
  end)

  describe("handshake timeout", function()
    it("closes a connection whose request never completes after --handshake-timeout", function()
      local c = track(rawws.open_tcp(s.port))
      local t0 = clock()
      c:send_raw("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
      local closed, why = c:wait_tcp_close(HANDSHAKE_TIMEOUT + 3)
      local elapsed = clock() - t0
      assert.is_true(closed, why)
      assert.is_true(elapsed >= HANDSHAKE_TIMEOUT - 0.5,
        string.format("closed after %.2fs, before the %ds handshake timeout",
          elapsed, HANDSHAKE_TIMEOUT))
      assert.is_nil(c.trailing:find("HTTP/1.1 101", 1, true), "upgraded an incomplete request")
    end)

    it("closes a connection that sends nothing after --handshake-timeout", function()
      local c = track(rawws.open_tcp(s.port))
      local t0 = clock()
      local closed, why = c:wait_tcp_close(HANDSHAKE_TIMEOUT + 3)
      local elapsed = clock() - t0
      assert.is_true(closed, why)
      assert.is_true(elapsed >= HANDSHAKE_TIMEOUT - 0.5,
        string.format("closed after %.2fs, before the %ds handshake timeout",
          elapsed, HANDSHAKE_TIMEOUT))
    end)

    it("closes a connection that keeps trickling request bytes (the timeout is total, not idle)",
      function()
      local c = track(rawws.open_tcp(s.port))
      local req = rawws.build_request(s.port, "/ws", {})
      local t0 = clock()
      local i, closed_after = 1, nil
      -- one byte every 0.2 s: the request (> 100 bytes) cannot complete in time
      while clock() - t0 < HANDSHAKE_TIMEOUT + 3 do
        c:send_raw(req:sub(i, i))
        i = i + 1
        if c:is_closed() then closed_after = clock() - t0; break end
        socket.sleep(0.2)
      end
      assert.is_not_nil(closed_after, "server kept a trickling handshake open for " ..
        (HANDSHAKE_TIMEOUT + 3) .. " s")
      assert.is_true(closed_after >= HANDSHAKE_TIMEOUT - 0.5,
        string.format("closed after %.2fs, before the %ds handshake timeout",
          closed_after, HANDSHAKE_TIMEOUT))
      assert.is_nil(c.buf:find("HTTP/1.1 101", 1, true), "upgraded an incomplete request")
    end)

    it("accepts a slow request that completes within the timeout", function()
      local c = track(rawws.open_tcp(s.port))
      local req, key = rawws.build_request(s.port, "/ws", {})
      -- ~10 pieces over about half of the timeout
      local piece = math.ceil(#req / 10)
      assert.is_true(c:send_raw(req, piece, HANDSHAKE_TIMEOUT / 20))
      local status, headers = c:read_http_response()
      assert.equal(101, status)
      assert.equal(rawws.accept_key(key), headers["sec-websocket-accept"])
    end)

    it("does not apply the handshake timeout to an upgraded connection", function()
      local c = track(rawws.connect(s.port, "/ws"))
      assert.equal(101, c.status)
      c:expect_silence(HANDSHAKE_TIMEOUT + 0.5)
      c:send_text("still open")
      c:expect_echo("still open", OP.TEXT)
    end)
  end)
end)
