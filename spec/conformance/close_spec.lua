-- Autobahn TestSuite category 7 (close handling), RFC 6455 §5.5.1, §7.4.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local clock = require "helpers.clock"
local OP = rawws.OP

local APP = "examples/echo/app.lua"

local VALID_CODES = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
  3000, 3999, 4000, 4999 }
local INVALID_CODES = { 0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 5555,
  65535 }

describe("conformance 7.x close handling", function()
  local s
  local clients = {}

  setup(function() s = server.start(APP) end)
  teardown(function()
    if s then assert.is_true(s:stop(), "server did not exit within 5 s of SIGTERM") end
  end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server process died; log:\n" .. s:log())
  end)

  local function open()
    local c = rawws.connect(s.port, "/ws")
    clients[#clients + 1] = c
    assert.equal(101, c.status)
    return c
  end

  -- A connection to path on a server of its own running app, stopped at
  -- the end of the test.
  local function open_app(app, path)
    local hs = server.start(app)
    finally(function() hs:stop() end)
    local c = rawws.connect(hs.port, path)
    clients[#clients + 1] = c
    assert.equal(101, c.status)
    return c
  end

  -- The very next frame is the server's close (nothing before it); then the
  -- server closes TCP and sends nothing after the close frame.
  local function expect_close_reply(c, code)
    local f, _, detail = c:recv_frame()
    assert(f, detail)
    assert.equal(OP.CLOSE, f.opcode,
      "expected the close reply first, got " .. rawws.describe_frame(f))
    rawws.check_server_frame(f, 1)
    assert.is_true(f.fin)
    if code == nil then
      assert.equal("", f.payload, "empty close must be answered with an empty close")
    else
      assert.is_true(#f.payload >= 2, "close reply without a code: " .. rawws.describe_frame(f))
      local got = f.payload:byte(1) * 256 + f.payload:byte(2)
      assert.equal(code, got)
      assert.is_true(rawws.utf8_valid(f.payload:sub(3)), "close reply reason is not UTF-8")
    end
    local closed, why = c:wait_tcp_close(3)
    assert.is_true(closed, why)
    assert.equal("", c.trailing, "server sent bytes after its close frame")
    return f
  end

  describe("7.1 basic close behaviour", function()
    it("7.1.1 echoes a text message, then answers close 1000 with close 1000 and closes TCP",
      function()
      local c = open()
      c:send_text("Hello World!")
      c:expect_echo("Hello World!", OP.TEXT)
      c:close(1000, "")
      expect_close_reply(c, 1000)
    end)

    it("7.1.2 sends exactly one close reply when the client sends close twice", function()
      local c = open()
      c:send_raw(rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) } ..
        rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) })
      expect_close_reply(c, 1000)
    end)

    it("7.1.3 ignores a ping after the close (no pong)", function()
      local c = open()
      c:send_raw(rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) } ..
        rawws.build_frame { opcode = OP.PING, payload = "Hello World!" })
      expect_close_reply(c, 1000)
    end)

    -- RFC 6455 §5.5.2: a ping is answered "unless it already received a
    -- Close frame"; the server's own close does not end that duty.
    it("answers a ping that comes after the server's close, before the client's answer", function()
      local c = open_app("spec/apps/handshake_app.lua", "/close/with?code=4000&reason=bye")
      local f = assert(c:recv_frame(3))
      assert.equal(OP.CLOSE, f.opcode, rawws.describe_frame(f))
      c:ping("still there?")
      c:expect_pong("still there?")
      c:close(4000)
      local closed, why = c:wait_tcp_close(3)
      assert.is_true(closed, why)
    end)

    it("7.1.4 ignores a text message after the close (no echo)", function()
      local c = open()
      c:send_raw(rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) } ..
        rawws.build_frame { opcode = OP.TEXT, payload = "Hello World!" })
      expect_close_reply(c, 1000)
    end)

    it("7.1.4b ignores data sent after the close in a later segment", function()
      local c = open()
      c:close(1000)
      -- the server may already be closing; the writes may fail, that is fine
      c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "late" })
      c:send_raw(rawws.build_frame { opcode = OP.PING, payload = "late" })
      expect_close_reply(c, 1000)
    end)

    it("7.1.5 answers a close between the fragments of a message and drops the message", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "fragment1", fin = false }
      c:close(1000)
      c:send_frame { opcode = OP.CONTINUATION, payload = "fragment2", fin = true }
      expect_close_reply(c, 1000)
    end)

    -- The messages before the close are the app's: its answers to them go
    -- out before the close reply (RFC 6455 §5.5.1), as from a server that
    -- reads one frame at a time. Nothing after the close is read.
    it("7.1.6 answers a close that follows a 256 KiB message in the same segment: " ..
      "the echo, then the close, no pong",
      function()
      local c = open()
      local big = string.rep("BAsd7&jh23", 26215):sub(1, 262144)
      c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = big } ..
        rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) } ..
        rawws.build_frame { opcode = OP.PING, payload = "Hello World!" })
      c:expect_echo(big, OP.TEXT)
      local reason = c:expect_failure(1000)
      assert.is_true(rawws.utf8_valid(reason))
      assert.is_true((c:wait_tcp_close(3)), "the server must close TCP after the close handshake")
    end)

    -- All of them: the close waits until the app has taken the last message
    -- before it, however many loop turns that takes (here the handler
    -- answers each with 64 KiB, and its sends wait for the client to read:
    -- a 64 KiB high-water mark, 13 MB of replies).
    for _, case in ipairs({
      { "the client's close", rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) }, 1000 },
      { "a violation", rawws.build_frame { opcode = 3, payload = "reserved" }, 1002 },
    }) do
      it("answers 200 messages sent with " .. case[1] .. " in one segment, every one, then " ..
        "closes with " .. case[3], function()
        local c = open_app("spec/apps/liveness_app.lua", "/flood-reply")
        local frames = {}
        for i = 1, 200 do frames[i] = rawws.build_frame { opcode = OP.TEXT, payload = tostring(i) } end
        c:send_raw(table.concat(frames) .. case[2])
        for i = 1, 200 do
          local f = assert(c:recv_frame(5))
          assert.equal(OP.BINARY, f.opcode, "reply " .. i .. ": " .. rawws.describe_frame(f))
          assert.equal(65536, #f.payload)
        end
        c:expect_failure(case[3]) -- (and TCP closed after it)
      end)
    end

    -- The handler's replies to the last message before the close wait for
    -- the client to read (4 MiB of them past a 64 KiB high-water mark): the
    -- close waits for them too.
    it("answers a close after the last message's replies whose sends had to wait", function()
      local c = open_app("spec/apps/liveness_app.lua", "/reply-many")
      c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "go" } ..
        rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(4001) })
      for i = 1, 64 do
        local f = assert(c:recv_frame(5))
        assert.equal(OP.BINARY, f.opcode, "reply " .. i .. ": " .. rawws.describe_frame(f))
      end
      c:expect_failure(4001)
    end)

    -- A message past the read pause (4 MiB) and the close in one segment:
    -- reading resumes inside the handler's receive, and the close found
    -- there still waits for its reply.
    it("answers a close that follows a 5 MiB message in the same segment: the echo, then the close",
      function()
      local c = open()
      local big = string.rep("0123456789abcdef", 5 * 65536)
      c:send_raw(rawws.build_frame { opcode = OP.BINARY, payload = big } ..
        rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) })
      local f = assert(c:recv_frame(10))
      assert.equal(OP.BINARY, f.opcode, rawws.describe_frame(f))
      assert.is_true(f.payload == big, "the echo differs from the message")
      c:expect_failure(1000)
    end)

    -- The app may close while the answer to the peer's close (or to its
    -- violation) waits for the end of the turn: after a close, its close is
    -- the answer; after a violation, the connection fails with the
    -- violation's code. Either way TCP is closed at once (nothing more will
    -- be read).
    for _, case in ipairs({
      { "a close", rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000) }, 4000 },
      { "a violation", rawws.build_frame { opcode = 3, payload = "reserved" }, 1002 },
    }) do
      it("the app's own close in the turn before " .. case[1] .. " is answered ends the " ..
        "connection at once with " .. case[3], function()
        local c = open_app("spec/apps/hardening_app.lua", "/bye")
        c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "one" } ..
          rawws.build_frame { opcode = OP.TEXT, payload = "bye" } .. case[2])
        c:expect_echo("one", OP.TEXT)
        local t0 = clock()
        c:expect_failure(case[3])
        assert.is_true((c:wait_tcp_close(3)), "the server must close TCP")
        assert.is_true(clock() - t0 < 2, "TCP closed only after the close timeout")
      end)
    end

    -- The handler takes the messages before the close and returns: its
    -- end answers the waiting close, with the client's code (§5.5.1).
    for _, case in ipairs({ { rawws.close_payload(4002, "done"), 4002 }, { "", nil } }) do
      it("a handler returning after the messages before a close " ..
        (case[2] and "with code " .. case[2] or "without a code") .. " answers it with " ..
        (case[2] and "that code" or "an empty close"), function()
        local c = open_app("spec/apps/hardening_app.lua", "/two")
        c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "one" } ..
          rawws.build_frame { opcode = OP.TEXT, payload = "two" } ..
          rawws.build_frame { opcode = OP.CLOSE, payload = case[1] })
        c:expect_echo("one", OP.TEXT)
        c:expect_echo("two", OP.TEXT)
        expect_close_reply(c, case[2])
      end)
    end

    it("echoes every message sent in the same segment before a close, in order, then " ..
      "answers the close with its code", function()
      local c = open()
      local parts = {}
      for i = 1, 20 do parts[i] = rawws.build_frame { opcode = OP.BINARY, payload = "b" .. i } end
      parts[#parts + 1] = rawws.build_frame { opcode = OP.CLOSE, payload = rawws.close_payload(4321, "bye") }
      parts[#parts + 1] = rawws.build_frame { opcode = OP.TEXT, payload = "after the close" }
      c:send_raw(table.concat(parts))
      for i = 1, 20 do c:expect_echo("b" .. i, OP.BINARY) end
      c:expect_failure(4321)
      assert.is_true((c:wait_tcp_close(3)), "the server must close TCP after the close handshake")
    end)

    it("echoes a message whose echo was received before the client sends close", function()
      local c = open()
      local big = string.rep("BAsd7&jh23", 26215):sub(1, 262144)
      c:send_text(big)
      c:expect_echo(big, OP.TEXT)
      c:close(1000)
      expect_close_reply(c, 1000)
    end)

    it("closes TCP itself after the close handshake while the client keeps its side open",
      function()
      local c = open()
      c:close(1000, "done")
      assert.equal(1000, (c:expect_close(3)))
      local closed, why = c:wait_tcp_close(3)
      assert.is_true(closed, why)
    end)
  end)

  describe("7.3 close frame structure", function()
    it("7.3.1 answers an empty close with an empty close", function()
      local c = open()
      c:close(nil)
      expect_close_reply(c, nil)
    end)

    it("7.3.2 fails a close with a 1-byte payload with 1002", function()
      local c = open()
      c:send_frame { opcode = OP.CLOSE, payload = "\3" }
      c:expect_failure(1002)
    end)

    it("7.3.3 answers close 1000 without reason with 1000", function()
      local c = open()
      c:close(1000)
      expect_close_reply(c, 1000)
    end)

    it("7.3.4 answers close 1000 with a short reason with 1000", function()
      local c = open()
      c:close(1000, "Hello World!")
      expect_close_reply(c, 1000)
    end)

    it("7.3.5 accepts close 1000 with a 123-byte reason (125-byte payload)", function()
      local c = open()
      c:close(1000, string.rep("*", 123))
      expect_close_reply(c, 1000)
    end)

    it("7.3.6 fails close 1000 with a 124-byte reason (126-byte payload) with 1002", function()
      local c = open()
      c:close(1000, string.rep("*", 124))
      c:expect_failure(1002)
    end)

    it("accepts a close reason with multi-byte UTF-8 (kosme, U+10FFFF)", function()
      local c = open()
      c:close(1000, "\206\186\225\189\185\207\131\206\188\206\181 \244\143\191\191")
      expect_close_reply(c, 1000)
    end)

    it("accepts a close written one byte per send()", function()
      local c = open()
      c:close(1001, "bye", { pieces = 1 })
      expect_close_reply(c, 1001)
    end)
  end)

  describe("7.5 close reason UTF-8", function()
    it("7.5.1 fails a close whose reason is invalid UTF-8 (U+110000) with 1007", function()
      local c = open()
      c:close(1000, "\206\186\225\189\185\207\131\206\188\206\181\244\144\128\128edited")
      c:expect_failure(1007)
    end)

    it("fails a close whose reason contains a surrogate with 1007", function()
      local c = open()
      c:close(1000, "\237\160\128")
      c:expect_failure(1007)
    end)

    it("fails a close whose reason ends in a truncated code point with 1007", function()
      local c = open()
      c:close(1000, "bye\206")
      c:expect_failure(1007)
    end)

    it("fails a close whose reason is an overlong encoding with 1007", function()
      local c = open()
      c:close(1000, "\192\175")
      c:expect_failure(1007)
    end)
  end)

  describe("7.7 valid close codes are echoed", function()
    for i, code in ipairs(VALID_CODES) do
      it(string.format("7.7.%d answers close %d with close %d", i, code, code), function()
        local c = open()
        c:close(code, "")
        expect_close_reply(c, code)
      end)
    end
  end)

  describe("7.9 invalid close codes fail with 1002", function()
    for i, code in ipairs(INVALID_CODES) do
      it(string.format("7.9.%d fails close code %d with 1002", i, code), function()
        local c = open()
        c:close(code, "")
        c:expect_failure(1002)
      end)
    end

    it("fails close code 1005 with a reason with 1002", function()
      local c = open()
      c:close(1005, "no status")
      c:expect_failure(1002)
    end)
  end)

  describe("close frame framing", function()
    it("fails a close with FIN=0 with 1002", function()
      local c = open()
      c:send_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000), fin = false }
      c:expect_failure(1002)
    end)

    it("fails an unmasked close with 1002 (not an echo of 1000)", function()
      local c = open()
      c:send_frame { opcode = OP.CLOSE, payload = rawws.close_payload(1000), mask = false }
      c:expect_failure(1002)
    end)
  end)
end)
