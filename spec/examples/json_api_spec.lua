-- examples/json_api/app.lua: a tiny JSON protocol on /api (the reference's
-- receive_json pattern); bad JSON is answered and the connection stays open.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local cjson = require "cjson"
local socket = require "socket"
local OP = rawws.OP

describe("examples/json_api", function()
  local s
  local clients = {}

  setup(function() s = server.start("examples/json_api/app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open()
    local c = rawws.connect(s.port, "/api")
    clients[#clients + 1] = c
    assert.equal(101, c.status)
    return c
  end

  -- Sends text, returns the reply's raw text and its decoded value.
  local function ask(c, text)
    c:send_text(text)
    local data, op = c:recv_message()
    assert.equal(OP.TEXT, op)
    return cjson.decode(data), data
  end

  it("ping -> pong", function()
    local c = open()
    local _, raw = ask(c, '{"type":"ping"}')
    assert.equal('{"type":"pong"}', raw)
  end)

  it("message -> the content and its length", function()
    local c = open()
    assert.same({ type = "message", content = "hi", length = 2 },
      ask(c, '{"type":"message","content":"hi"}'))
    assert.same({ type = "message", content = "a/b", length = 3 },
      ask(c, '{"type":"message","content":"a/b"}'))
  end)

  it("add -> the sum", function()
    local c = open()
    assert.same({ type = "sum", result = 3 }, ask(c, '{"type":"add","a":1,"b":2}'))
    assert.same({ type = "sum", result = -0.5 }, ask(c, '{"type":"add","a":1.5,"b":-2}'))
  end)

  it("answers errors for bad arguments", function()
    local c = open()
    assert.same({ error = "message needs a string 'content'" },
      ask(c, '{"type":"message","content":5}'))
    assert.same({ error = "add needs numbers 'a' and 'b'" }, ask(c, '{"type":"add","a":"1","b":2}'))
    -- a sum JSON cannot hold is an answer too, not a closed connection
    assert.same({ error = "the sum is too large for JSON" }, ask(c, '{"type":"add","a":1e308,"b":1e308}'))
    assert.same({ type = "pong" }, ask(c, '{"type":"ping"}'))
  end)

  it("an unknown type -> error with the type (null when there is none)", function()
    local c = open()
    assert.same({ error = "unknown type", type = "nope" }, ask(c, '{"type":"nope"}'))
    assert.same({ error = "unknown type", type = cjson.null }, ask(c, "42"))
    assert.same({ error = "unknown type", type = cjson.null }, ask(c, "[1,2]"))
  end)

  it("invalid JSON -> {\"error\":\"Invalid JSON\"} and the connection stays open", function()
    local c = open()
    local _, raw = ask(c, "{this is not json")
    assert.equal('{"error":"Invalid JSON"}', raw)
    _, raw = ask(c, "")
    assert.equal('{"error":"Invalid JSON"}', raw)
    _, raw = ask(c, '{"type":"ping"}')
    assert.equal('{"type":"pong"}', raw)
  end)

  it("accepts JSON in a binary message too", function()
    local c = open()
    c:send_binary('{"type":"ping"}')
    local data, op = c:recv_message()
    assert.equal(OP.TEXT, op)
    assert.equal('{"type":"pong"}', data)
  end)

  it("a client leaving ends the handler without an error", function()
    local c = open()
    ask(c, '{"type":"ping"}')
    c:close(1000)
    assert.equal(1000, (c:expect_close()))
    local d = open()
    d:close_socket()
    socket.sleep(0.2)
    assert.is_nil(s:log():find(" ERROR ", 1, true), "log:\n" .. s:log())
  end)
end)
