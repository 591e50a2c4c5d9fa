-- What the WebSocket object tells about the request: ws.client, ws.headers,
-- ws.query_params, ws.path_params, ws.url, ws.path, ws.subprotocols, ws.state.
-- The app (spec/apps/introspect_app.lua) reports them back as JSON.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local cjson = require "cjson"
local socket = require "socket"

describe("request data on the WebSocket", function()
  local s
  local clients = {}

  setup(function() s = server.start("spec/apps/introspect_app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open(path, opts)
    local c = rawws.connect(s.port, path, opts)
    clients[#clients + 1] = c
    assert.equal(101, c.status, "expected 101 for " .. path .. ", got " .. tostring(c.status))
    return c
  end

  local function introspect(path, opts)
    local c = open(path, opts)
    return cjson.decode((c:recv_message())), c
  end

  it("ws.client is the peer's host and port", function()
    local r, c = introspect("/introspect")
    local _, local_port = c.sock:getsockname()
    assert.equal("127.0.0.1", r.client.host)
    assert.equal("127.0.0.1:" .. r.client.port, r.client.text)
    assert.equal("from 127.0.0.1:" .. r.client.port, r.client.concat)
    assert.equal(tonumber(local_port), r.client.port)
    assert.equal("number", r.client.port_type)
  end)

  it("ws.headers:get() is case-insensitive; get_all() returns every value in order", function()
    local r = introspect("/introspect", {
      headers = {
        { "X-Custom", "v1" },
        { "x-multi", "first" },
        { "X-MULTI", "second" },
        { "Authorization", "Bearer t0k3n" },
      },
    })
    assert.equal("v1", r.header.lower)
    assert.equal("v1", r.header.upper)
    assert.equal("v1", r.header.mixed)
    assert.equal(cjson.null, r.header.missing)
    assert.equal("fallback", r.header.default)
    assert.same({ "first", "second" }, r.header.all)
    assert.same({}, r.header.all_missing)
    assert.equal("127.0.0.1:" .. s.port, r.header.host)
    assert.equal("v1", r.header.indexed) -- h["X-CUSTOM"]
    assert.equal("127.0.0.1:" .. s.port, r.header.dotted) -- h.host
    assert.equal("Bearer t0k3n", r.auth_before_accept)
  end)

  it("ws.query_params: get(), get_all(), percent/'+' decoding, case-sensitive names", function()
    local r = introspect("/introspect?a=1&q=hello%20w%C3%B6rld%2F%26&a=2&plus=a+b&empty=&flag&a=3")
    assert.equal("1", r.query.a)
    assert.same({ "1", "2", "3" }, r.query.a_all)
    assert.equal("hello wörld/&", r.query.q)
    assert.equal("a b", r.query.plus)
    assert.equal("", r.query.empty)
    assert.equal("", r.query.flag)
    assert.equal(cjson.null, r.query.missing)
    assert.equal(cjson.null, r.query.case)
    -- q["q"] and q.plus are q:get(...); a method name is the method
    assert.equal("hello wörld/&", r.query.indexed)
    assert.equal("a b", r.query.dotted)
    assert.equal(cjson.null, r.query.indexed_missing)
    assert.equal("function", r.query.method)
  end)

  -- ws.url is the request target as sent (path and query, still encoded).
  it("ws.url, ws.path and ws.path_params", function()
    local r = introspect("/introspect/caf%C3%A9%20bar/17?x=1")
    assert.equal("/introspect/café bar/17", r.path)
    assert.same({ name = "café bar", n = 17 }, r.path_params)
    assert.matches("/introspect/caf%C3%A9%20bar/17?x=1", r.url, 1, true)
  end)

  -- As Python decodes them (errors="replace"): Starlette's and Nexios's path
  -- and query values are always text, and so are nexlua's.
  it("percent-encoded bytes that are not UTF-8 decode to U+FFFD, in the path and the query", function()
    local FFFD = "\239\191\189"
    local r = introspect("/introspect/a%FFb%C0%AF%E2%82/5?q=%FF%C3%A9&bad%ED%A0%80=x&s=%F0%9F%98%80")
    assert.equal("/introspect/a" .. FFFD .. "b" .. FFFD .. FFFD .. FFFD .. "/5", r.path)
    assert.same({ name = "a" .. FFFD .. "b" .. FFFD .. FFFD .. FFFD, n = 5 }, r.path_params)
    assert.equal(FFFD .. "é", r.query.q)
    assert.equal("\240\159\152\128", r.query.s) -- (valid: kept)
    assert.same({ "q", "bad" .. FFFD .. FFFD .. FFFD, "s" }, r.query.names)
    assert.matches("?q=%FF%C3%A9", r.url, 1, true) -- the URL as sent
  end)

  -- RFC 9112 §3.2.2: a server must accept the absolute form of the target;
  -- its authority then stands for the Host header (RFC 9110 §7.2).
  it("an absolute-form target (http://authority/path?query) routes by its path", function()
    for _, scheme in ipairs({ "http", "HTTPS", "ws" }) do
      local r = introspect(scheme .. "://example.test:8080/introspect/bob/3?a=1&q=%C3%A9")
      assert.equal("/introspect/bob/3", r.path)
      assert.same({ name = "bob", n = 3 }, r.path_params)
      assert.equal("1", r.query.a)
      assert.equal("é", r.query.q)
      assert.equal("ws://example.test:8080/introspect/bob/3?a=1&q=%C3%A9", r.url)
    end
    -- no path at all is the path "/", which this app does not route
    local status = rawws.http(s.port, "GET http://example.test HTTP/1.1\r\nHost: x\r\n" ..
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" ..
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert.equal(404, status)
    -- no host, or userinfo (RFC 9110 §4.2), or not a URI at all: 400
    for _, target in ipairs({ "http://", "http://u:pw@example.test/introspect",
      "http://h:80@evil/introspect", "introspect" }) do
      status = rawws.http(s.port, "GET " .. target .. " HTTP/1.1\r\nHost: x\r\n" ..
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" ..
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
      assert.equal(400, status, target)
    end
  end)

  it("ws.path_params is empty for a route without parameters", function()
    local r = introspect("/introspect")
    assert.same({}, r.path_params)
    assert.equal("/introspect", r.path)
  end)

  it("ws.subprotocols lists what the client offered, in order, across headers", function()
    local r = introspect("/introspect", {
      headers = {
        { "Sec-WebSocket-Protocol", "chat, superchat" },
        { "Sec-WebSocket-Protocol", "v2" },
      },
    })
    assert.same({ "chat", "superchat", "v2" }, r.subprotocols)
    assert.same({}, introspect("/introspect").subprotocols)
  end)

  it("ws.state is per connection, not shared", function()
    local a = open("/state")
    local b = open("/state")
    a:send_text("set user alice")
    assert.equal("ok", (a:recv_message()))
    b:send_text("get user")
    assert.equal("nil", (b:recv_message()), "b must not see a's state")
    b:send_text("set user bob")
    assert.equal("ok", (b:recv_message()))
    a:send_text("get user")
    assert.equal("alice", (a:recv_message()))
    a:send_text("count")
    assert.equal("messages=3", (a:recv_message()))
    b:send_text("get user")
    assert.equal("bob", (b:recv_message()))
    b:send_text("count")
    assert.equal("messages=4", (b:recv_message()))
    -- a new connection starts with a fresh state
    local c = open("/state")
    c:send_text("get user")
    assert.equal("nil", (c:recv_message()))
  end)
  -- The core reuses the structures of ended connections (the connection,
  -- the request parser with its buffer, the task): a new connection must
  -- see only its own request, whatever the previous ones sent.
  it("nothing of one connection's request carries over to the next", function()
    local function big(round)
      local headers = {
        { "X-Custom", "from-big-" .. round },
        { "X-Multi", "m1" }, { "X-Multi", "m2" },
        { "Authorization", "Bearer big" },
      }
      for i = 1, 40 do headers[#headers + 1] = { "X-Filler-" .. i, string.rep("f", 50) } end
      local r, c = introspect("/introspect/alice/7?a=1&a=2&q=big", { headers = headers })
      assert.equal("from-big-" .. round, r.header.lower)
      assert.same({ "m1", "m2" }, r.header.all)
      assert.same({ "1", "2" }, r.query.a_all)
      assert.same({ name = "alice", n = 7 }, r.path_params)
      c:close()
    end
    for round = 1, 3 do
      big(round)
      -- a request the server refuses, parsed by the same kind of parser
      local status = rawws.http(s.port, "GET /introspect HTTP/1.1\r\nHost: x\r\n\r\n")
      assert.equal(426, status)
      socket.sleep(0.1) -- the big connection's structures are back for reuse
      local r, c = introspect("/introspect")
      assert.equal(cjson.null, r.header.lower)
      assert.same({}, r.header.all)
      assert.equal(cjson.null, r.auth_before_accept)
      assert.equal(cjson.null, r.query.a)
      assert.same({}, r.query.a_all)
      assert.same({}, r.path_params)
      assert.equal("ws://127.0.0.1:" .. s.port .. "/introspect", r.url)
      assert.equal("/introspect", r.path)
      assert.equal("127.0.0.1:" .. s.port, r.header.host)
      c:close()
    end
  end)
end)
