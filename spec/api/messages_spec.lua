-- Messages: receive()/receive_text/bytes/json, send_text/bytes/json, iter_*,
-- receive timeouts, and control frames (answered by the core, never seen by
-- handlers). Real nexlua process (spec/apps/messages_app.lua), real sockets.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local cjson = require "cjson"
local socket = require "socket"
local clock = require "helpers.clock"
local OP = rawws.OP

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Polls path until it contains pattern (plain text); returns its content.
local function wait_file(path, text, timeout)
  local deadline = clock() + (timeout or 3)
  repeat
    local s = read_file(path)
    if s:find(text, 1, true) then return s end
    socket.sleep(0.02)
  until clock() > deadline
  return read_file(path)
end

-- The next data message: payload, opcode (recv_message also returns a frame count).
local function msg(c, timeout)
  local data, op = c:recv_message(timeout)
  return data, op
end

describe("messages", function()
  local s
  local clients, files = {}, {}

  setup(function() s = server.start("spec/apps/messages_app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    for _, f in ipairs(files) do os.remove(f) end
    clients, files = {}, {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open(path)
    local c = rawws.connect(s.port, path)
    clients[#clients + 1] = c
    assert.equal(101, c.status, "expected 101 for " .. path .. ", got " .. tostring(c.status))
    return c
  end

  local function tmpfile()
    local p = os.tmpname()
    files[#files + 1] = p
    return p
  end

  describe("ws:receive()", function()
    it("returns the message and its type", function()
      local c = open("/kind")
      c:send_text("hello")
      assert.same({ "text:hello", OP.TEXT }, { msg(c) })
      c:send_binary("\0\1\2\255")
      local data, op = c:recv_message()
      assert.equal(OP.BINARY, op)
      assert.equal("binary:\0\1\2\255", data)
    end)

    it("delivers a fragmented message whole", function()
      local c = open("/kind")
      c:send_frame { opcode = OP.TEXT, payload = "hel", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "lo ", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "world", fin = true }
      assert.equal("text:hello world", (c:recv_message()))
    end)
  end)

  describe("typed receives", function()
    it("receive_text() returns text", function()
      local c = open("/receive-text")
      c:send_text("héllo ✓")
      assert.equal("got:héllo ✓", (c:recv_message()))
    end)

    it("receive_bytes() returns bytes, every byte value intact", function()
      local c = open("/receive-bytes")
      local all = {}
      for i = 0, 255 do all[#all + 1] = string.char(i) end
      local payload = table.concat(all):rep(300) -- 76800 bytes: 64-bit length
      c:send_binary(payload)
      local data, op = c:recv_message()
      assert.equal(OP.BINARY, op)
      assert.equal(#payload, #data)
      assert.is_true(data == payload, "payload differs")
    end)

    it("receive_json() decodes objects, arrays, scalars, and JSON in binary frames", function()
      local c = open("/receive-json")
      c:send_text('{"a":1,"b":[true,null,"x"]}')
      local r = cjson.decode((c:recv_message()))
      assert.equal("table", r.type)
      assert.equal(1, r.got.a)
      assert.same({ true, cjson.null, "x" }, r.got.b)
      c:send_text("[1,2,3]")
      assert.same({ got = { 1, 2, 3 }, type = "table" }, cjson.decode((c:recv_message())))
      c:send_text("42.5")
      assert.same({ got = 42.5, type = "number" }, cjson.decode((c:recv_message())))
      c:send_text('"str"')
      assert.same({ got = "str", type = "string" }, cjson.decode((c:recv_message())))
      c:send_binary('{"bin":true}')
      assert.same({ got = { bin = true }, type = "table" }, cjson.decode((c:recv_message())))
    end)
  end)

  describe("sending", function()
    it("send_text/send_bytes send text and binary frames", function()
      local c = open("/send-variety")
      assert.same({ "42", OP.TEXT }, { msg(c) })
      -- integers with all their digits, others in the fewest that read back
      assert.same({ "9007199254740992", OP.TEXT }, { msg(c) })
      assert.same({ "0.1", OP.TEXT }, { msg(c) })
      assert.same({ "-1.5e-07", OP.TEXT }, { msg(c) })
      assert.same({ "5e-324", OP.TEXT }, { msg(c) })
      local data, op = c:recv_message()
      assert.equal(OP.BINARY, op)
      assert.equal(256, #data)
      for i = 0, 255 do assert.equal(i, data:byte(i + 1)) end
      assert.same({ "", OP.TEXT }, { msg(c) })
      assert.same({ "héllo wörld ✓", OP.TEXT }, { msg(c) })
    end)

    describe("send_json()", function()
      local c
      before_each(function() c = open("/send-json") end)
      local function json_of(case)
        c:send_text(case)
        local data, op = msg(c)
        assert.equal(OP.TEXT, op)
        return data
      end

      it("is compact and leaves '/' unescaped", function()
        assert.equal('{"path":"/a/b"}', json_of("slash"))
        assert.equal('{"a":{"b":[1,2]}}', json_of("compact"))
        assert.equal("[1,2,3]", json_of("list"))
      end)

      it("encodes an empty table as {} and json.empty_array / json.array() as []", function()
        assert.equal("{}", json_of("empty_object"))
        assert.equal("[]", json_of("empty_array"))
        assert.equal("[]", json_of("array_fn"))
        assert.equal('{"list":[]}', json_of("nested_empty"))
        assert.equal('{"a":{"b":{"c":[]}}}', json_of("deep_empty"))
      end)

      it("encodes json.null, scalars, UTF-8 and escapes", function()
        assert.equal('{"v":null}', json_of("null"))
        assert.equal('"plain"', json_of("string"))
        assert.equal("1.5", json_of("number"))
        assert.equal("true", json_of("boolean"))
        assert.equal("héllo ✓", cjson.decode(json_of("unicode")).s)
        assert.equal("quote\" backslash\\ newline\n tab\t", cjson.decode(json_of("escapes")).s)
      end)

      it("sends a binary frame with {binary = true}", function()
        c:send_text("binary")
        assert.same({ '{"binary":true}', OP.BINARY }, { msg(c) })
      end)

      it("raises a WebSocketError for a value JSON cannot encode", function()
        local r = cjson.decode(json_of("unencodable"))
        assert.is_false(r.ok)
        assert.is_true(r.is_ws_error)
        assert.matches("send_json: cannot encode", r.err)
      end)

      it("raises a WebSocketError naming send_json for a string that is not UTF-8", function()
        local r = cjson.decode(json_of("raw_bytes"))
        assert.is_false(r.ok)
        assert.is_true(r.is_ws_error)
        assert.matches("send_json: cannot encode the value as JSON: a string in the value is not valid UTF-8",
          r.err, 1, true)
      end)

      it("keeps integers exact up to 2^53", function()
        local text = json_of("bigint")
        assert.matches('"n":9007199254740991', text, 1, true)
        assert.matches('"m":123456789012345', text, 1, true)
      end)
    end)
  end)

  describe("iterators end silently when the peer leaves", function()
    local function run(path, send, expect_echo, drop)
      local file = tmpfile()
      local c = open(path .. "?file=" .. file)
      for _ = 1, 2 do
        send(c)
        expect_echo(c)
      end
      if drop then
        c:close_socket()
      else
        c:close(1000)
        assert.equal(1000, (c:expect_close()))
      end
      return wait_file(file, "ended after 2")
    end

    it("iter_text() on a close frame", function()
      local out = run("/iter-text", function(c) c:send_text("t") end,
        function(c) assert.equal("t", (c:recv_message())) end)
      assert.equal("iter_text ended after 2\n", out)
    end)

    it("iter_bytes() on a dropped TCP connection", function()
      local out = run("/iter-bytes", function(c) c:send_binary("\1\2") end,
        function(c) assert.same({ "\1\2", OP.BINARY }, { msg(c) }) end, true)
      assert.equal("iter_bytes ended after 2\n", out)
    end)

    it("iter_json() on a close frame", function()
      local out = run("/iter-json", function(c) c:send_text('{"k":[1]}') end,
        function(c) assert.equal('{"echo":{"k":[1]}}', (c:recv_message())) end)
      assert.equal("iter_json ended after 2\n", out)
    end)

    it("and no error is logged for them", function()
      assert.is_nil(s:log():find(" ERROR ", 1, true), "log:\n" .. s:log())
    end)
  end)

  describe("receive{timeout=}", function()
    it("raises a TimeoutError, and the connection stays usable", function()
      local c = open("/timeout")
      local t0 = clock()
      local r = cjson.decode((c:recv_message()))
      local waited = clock() - t0
      assert.is_false(r.ok)
      assert.is_true(r.is_timeout, r.err)
      assert.is_false(r.is_ws_error) -- a TimeoutError is a nexlua.Error, not a WebSocketError
      assert.is_true(r.is_error)
      assert.is_false(r.is_disconnect)
      assert.matches("timed out after 0%.3 s", r.err)
      assert.is_true(r.elapsed >= 0.25 and r.elapsed < 2, "elapsed " .. r.elapsed)
      assert.is_true(waited >= 0.25, "the report came after " .. waited .. " s")
      -- the connection is still open and usable
      c:send_text("x")
      assert.equal("after:x", (c:recv_message()))
      -- ws:receive_text(0.1): the number form times out as well
      assert.same({ ok = false, is_timeout = true }, cjson.decode((c:recv_message())))
      -- a message within the timeout is returned with its type
      c:send_text("y")
      assert.equal("within:text:y", (c:recv_message()))
    end)
  end)

  describe("control frames", function()
    it("pings are answered by the core even while the handler is busy", function()
      local c = open("/sleeper")
      c:send_text("sleep")
      local t0 = clock()
      c:ping("p1")
      c:expect_pong("p1", 2)
      assert.is_true(clock() - t0 < 0.8, "the pong waited for the handler")
      c:expect_echo("woke", OP.TEXT, 3)
      -- a 125-byte ping (the largest) is answered with the same payload
      local big = string.rep("z", 125)
      c:ping(big)
      c:expect_pong(big)
    end)

    it("handlers never see pings, pongs or a ping inside a fragmented message", function()
      local c = open("/count")
      c:ping("a")
      c:send_text("t")
      c:pong("unsolicited")
      c:send_binary("\1\2")
      c:send_frame { opcode = OP.TEXT, payload = "hel", fin = false }
      c:ping("b")
      c:send_frame { opcode = OP.CONTINUATION, payload = "lo", fin = true }
      assert.equal("1:text:t", (c:recv_message()))
      assert.equal("2:binary:2", (c:recv_message()))
      assert.equal("3:text:hello", (c:recv_message()))
      -- the pongs came too, and nothing else
      table.sort(c.pongs)
      assert.same({ "a", "b" }, c.pongs)
      c:expect_silence(0.3)
    end)
  end)
end)
