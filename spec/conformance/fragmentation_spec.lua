-- Autobahn TestSuite category 5 (fragmentation), RFC 6455 §5.4: fragmented
-- messages are reassembled; control frames may be interleaved and are answered at
-- once; fragmented control frames, orphan continuations and nested messages fail
-- the connection with 1002.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local socket = require "socket"
local OP = rawws.OP

local APP = "examples/echo/app.lua"

local function frag(opcode, payload, fin, extra)
  local o = { opcode = opcode, payload = payload, fin = fin }
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("conformance 5.x fragmentation", function()
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

  describe("fragmented control frames", function()
    it("5.1 fails a ping fragmented into 2 frames with 1002 and no pong", function()
      local c = open()
      c:send_frame(frag(OP.PING, "fragment1", false))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", true))
      c:expect_failure(1002)
    end)

    it("5.2 fails a pong fragmented into 2 frames with 1002", function()
      local c = open()
      c:send_frame(frag(OP.PONG, "fragment1", false))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", true))
      c:expect_failure(1002)
    end)

    it("fails a close with FIN=0 with 1002 (not an echo of 1000)", function()
      local c = open()
      c:send_frame(frag(OP.CLOSE, rawws.close_payload(1000, "x"), false))
      c:expect_failure(1002)
    end)

    it("fails a FIN=0 ping alone (before any continuation) with 1002", function()
      local c = open()
      c:send_frame(frag(OP.PING, "", false))
      c:expect_failure(1002)
    end)
  end)

  describe("valid fragmented messages", function()
    it("5.3 echoes a text message sent in 2 fragments as one message", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", true))
      c:expect_echo("fragment1fragment2", OP.TEXT)
    end)

    it("5.4 same as 5.3 with the fragments written in chops of 3 bytes with pauses", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false, { pieces = 3, delay = 0.005 }))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", true, { pieces = 3, delay = 0.005 }))
      c:expect_echo("fragment1fragment2", OP.TEXT)
    end)

    it("5.5 same as 5.3 with every byte in its own send()", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false, { pieces = 1 }))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", true, { pieces = 1 }))
      c:expect_echo("fragment1fragment2", OP.TEXT)
    end)

    it("5.6 answers a ping between 2 text fragments, then echoes the message", function()
      local c = open()
      c:send_raw(rawws.build_frame(frag(OP.TEXT, "fragment1", false)) ..
        rawws.build_frame(frag(OP.PING, "ping payload", true)) ..
        rawws.build_frame(frag(OP.CONTINUATION, "fragment2", true)))
      c:expect_pong("ping payload")
      c:expect_echo("fragment1fragment2", OP.TEXT)
    end)

    it("5.7 same as 5.6 written in chops of 2 bytes", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false, { pieces = 2 }))
      c:send_frame(frag(OP.PING, "ping payload", true, { pieces = 2 }))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", true, { pieces = 2 }))
      c:expect_pong("ping payload")
      c:expect_echo("fragment1fragment2", OP.TEXT)
    end)

    it("5.8 same as 5.6 with every byte in its own send()", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false, { pieces = 1 }))
      c:send_frame(frag(OP.PING, "ping payload", true, { pieces = 1 }))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", true, { pieces = 1 }))
      c:expect_pong("ping payload")
      c:expect_echo("fragment1fragment2", OP.TEXT)
    end)

    it("answers a ping between fragments BEFORE the message is completed", function()
      local c = open()
      c:send_frame(frag(OP.BINARY, "\1\2\3", false))
      c:send_frame(frag(OP.PING, "mid-message", true))
      -- the final fragment has not been sent: the pong must come now, alone
      c:expect_pong("mid-message", 2)
      c:expect_silence(0.2)
      c:send_frame(frag(OP.CONTINUATION, "\4\5\6", true))
      c:expect_echo("\1\2\3\4\5\6", OP.BINARY)
    end)

    it("ignores a pong between fragments", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "a", false))
      c:send_frame(frag(OP.PONG, "unsolicited", true))
      c:send_frame(frag(OP.CONTINUATION, "b", true))
      c:expect_echo("ab", OP.TEXT)
      c:expect_silence(0.2)
    end)

    it("5.19 answers pings between 5 fragments sent with pauses, each pong before the message",
      function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false))
      c:send_frame(frag(OP.PING, "pongme 1!", true))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", false))
      socket.sleep(0.1)
      c:send_frame(frag(OP.CONTINUATION, "fragment3", false))
      c:send_frame(frag(OP.PING, "pongme 2!", true))
      c:expect_pong("pongme 1!")
      c:expect_pong("pongme 2!")
      c:expect_silence(0.1)
      c:send_frame(frag(OP.CONTINUATION, "fragment4", false))
      socket.sleep(0.1)
      c:send_frame(frag(OP.CONTINUATION, "fragment5", true))
      c:expect_echo("fragment1fragment2fragment3fragment4fragment5", OP.TEXT)
    end)

    it("5.20 same as 5.19 with every frame written one byte per send()", function()
      local c = open()
      local o = { pieces = 1 }
      c:send_frame(frag(OP.TEXT, "fragment1", false, o))
      c:send_frame(frag(OP.PING, "pongme 1!", true, o))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", false, o))
      c:send_frame(frag(OP.CONTINUATION, "fragment3", false, o))
      c:send_frame(frag(OP.PING, "pongme 2!", true, o))
      c:expect_pong("pongme 1!")
      c:expect_pong("pongme 2!")
      c:send_frame(frag(OP.CONTINUATION, "fragment4", false, o))
      c:send_frame(frag(OP.CONTINUATION, "fragment5", true, o))
      c:expect_echo("fragment1fragment2fragment3fragment4fragment5", OP.TEXT)
    end)

    it("echoes a text message sent as 1-byte fragments", function()
      local c = open()
      local msg = "Hello, fragmented world!"
      for i = 1, #msg do
        c:send_frame(frag(i == 1 and OP.TEXT or OP.CONTINUATION, msg:sub(i, i), i == #msg))
      end
      c:expect_echo(msg, OP.TEXT)
    end)

    it("echoes a binary message of 256 1-byte fragments (every byte value)", function()
      local c = open()
      local parts = {}
      local wire = {}
      for i = 0, 255 do
        parts[#parts + 1] = string.char(i)
        wire[#wire + 1] = rawws.build_frame(frag(i == 0 and OP.BINARY or OP.CONTINUATION,
          string.char(i), i == 255))
      end
      c:send_raw(table.concat(wire))
      c:expect_echo(table.concat(parts), OP.BINARY)
    end)

    it("echoes a text message with empty first, middle and last fragments", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "", false))
      c:send_frame(frag(OP.CONTINUATION, "abc", false))
      c:send_frame(frag(OP.CONTINUATION, "", false))
      c:send_frame(frag(OP.CONTINUATION, "def", false))
      c:send_frame(frag(OP.CONTINUATION, "", true))
      c:expect_echo("abcdef", OP.TEXT)
    end)

    it("echoes an empty text message made of 3 empty fragments as an empty text frame", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "", false))
      c:send_frame(frag(OP.CONTINUATION, "", false))
      c:send_frame(frag(OP.CONTINUATION, "", true))
      c:expect_echo("", OP.TEXT)
    end)

    it("echoes an empty binary message made of 2 empty fragments as an empty binary frame",
      function()
      local c = open()
      c:send_frame(frag(OP.BINARY, "", false))
      c:send_frame(frag(OP.CONTINUATION, "", true))
      c:expect_echo("", OP.BINARY)
    end)

    it("keeps message boundaries: fragmented, unfragmented, fragmented in one segment", function()
      local c = open()
      c:send_raw(rawws.build_frame(frag(OP.TEXT, "a1", false)) ..
        rawws.build_frame(frag(OP.CONTINUATION, "a2", true)) ..
        rawws.build_frame(frag(OP.BINARY, "b", true)) ..
        rawws.build_frame(frag(OP.BINARY, "c1", false)) ..
        rawws.build_frame(frag(OP.CONTINUATION, "c2", false)) ..
        rawws.build_frame(frag(OP.CONTINUATION, "c3", true)))
      c:expect_echo("a1a2", OP.TEXT)
      c:expect_echo("b", OP.BINARY)
      c:expect_echo("c1c2c3", OP.BINARY)
    end)

    it("echoes a 64 KiB binary message in 1000-byte fragments with different mask keys", function()
      local c = open()
      local p = string.rep("\0\1\2\3\4\5\6\7\8\9", 6554):sub(1, 65536)
      local wire = {}
      for i = 1, #p, 1000 do
        wire[#wire + 1] = rawws.build_frame(frag(i == 1 and OP.BINARY or OP.CONTINUATION,
          p:sub(i, i + 999), i + 1000 > #p))
      end
      c:send_raw(table.concat(wire))
      c:expect_echo(p, OP.BINARY)
    end)
  end)

  describe("invalid continuation / nesting", function()
    it("5.9 fails a continuation (FIN=1) with no message in progress with 1002", function()
      local c = open()
      c:send_frame(frag(OP.CONTINUATION, "non-continuation payload", true))
      c:send_text("Hello, world!")
      c:expect_failure(1002)
    end)

    it("5.10 same as 5.9 written in chops of 1 byte", function()
      local c = open()
      c:send_frame(frag(OP.CONTINUATION, "non-continuation payload", true, { pieces = 1 }))
      c:send_frame(frag(OP.TEXT, "Hello, world!", true, { pieces = 1 }))
      c:expect_failure(1002)
    end)

    it("5.12 fails a continuation (FIN=0) with no message in progress with 1002", function()
      local c = open()
      c:send_frame(frag(OP.CONTINUATION, "non-continuation payload", false))
      c:send_text("Hello, world!")
      c:expect_failure(1002)
    end)

    it("5.13 same as 5.12 written in chops of 1 byte", function()
      local c = open()
      c:send_frame(frag(OP.CONTINUATION, "non-continuation payload", false, { pieces = 1 }))
      c:send_frame(frag(OP.TEXT, "Hello, world!", true, { pieces = 1 }))
      c:expect_failure(1002)
    end)

    it("5.15 echoes a complete fragmented message, then fails an orphan continuation with 1002",
      function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false))
      c:send_frame(frag(OP.CONTINUATION, "fragment2", true))
      c:expect_echo("fragment1fragment2", OP.TEXT)
      c:send_frame(frag(OP.CONTINUATION, "fragment3", false))
      c:send_frame(frag(OP.TEXT, "fragment4", true))
      c:expect_failure(1002)
    end)

    it("5.15 in one segment: the complete message's echo first, then 1002", function()
      local c = open()
      c:send_raw(rawws.build_frame(frag(OP.TEXT, "fragment1", false)) ..
        rawws.build_frame(frag(OP.CONTINUATION, "fragment2", true)) ..
        rawws.build_frame(frag(OP.CONTINUATION, "fragment3", false)) ..
        rawws.build_frame(frag(OP.TEXT, "fragment4", true)))
      c:expect_echo("fragment1fragment2", OP.TEXT)
      c:expect_failure(1002)
    end)

    it("in one segment, every message before a violation is echoed in order, then 1002",
      function()
      local c = open()
      local parts = {}
      for i = 1, 20 do parts[i] = rawws.build_frame { opcode = OP.TEXT, payload = "m" .. i } end
      parts[#parts + 1] = rawws.build_frame(frag(OP.CONTINUATION, "orphan", true))
      parts[#parts + 1] = rawws.build_frame { opcode = OP.TEXT, payload = "after" }
      c:send_raw(table.concat(parts))
      for i = 1, 20 do c:expect_echo("m" .. i, OP.TEXT) end
      c:expect_failure(1002)
    end)

    it("5.16 fails continuation-first sequences repeated (FIN=0 then text, FIN=1) with 1002",
      function()
      local c = open()
      c:send_frame(frag(OP.CONTINUATION, "fragment1", false))
      c:send_frame(frag(OP.TEXT, "fragment2", false))
      c:send_frame(frag(OP.CONTINUATION, "fragment3", true))
      c:expect_failure(1002)
    end)

    it("5.17 fails continuation-first sequences (FIN=1 first) with 1002", function()
      local c = open()
      c:send_frame(frag(OP.CONTINUATION, "fragment1", true))
      c:send_frame(frag(OP.TEXT, "fragment2", false))
      c:send_frame(frag(OP.CONTINUATION, "fragment3", true))
      c:expect_failure(1002)
    end)

    it("5.18 fails a new text frame while a text message is in progress with 1002 and no echo",
      function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false))
      c:send_frame(frag(OP.TEXT, "fragment2", true))
      c:expect_failure(1002)
    end)

    it("fails a new binary frame while a text message is in progress with 1002", function()
      local c = open()
      c:send_frame(frag(OP.TEXT, "fragment1", false))
      c:send_frame(frag(OP.BINARY, "fragment2", false))
      c:expect_failure(1002)
    end)

    it("fails a new text frame while a binary message is in progress with 1002", function()
      local c = open()
      c:send_frame(frag(OP.BINARY, "fragment1", false))
      c:send_frame(frag(OP.TEXT, "fragment2", true))
      c:expect_failure(1002)
    end)

    it("fails after the nested frame even when the first fragment was answered with a pong",
      function()
      local c = open()
      c:send_frame(frag(OP.BINARY, "part", false))
      c:ping("x")
      c:expect_pong("x")
      c:send_frame(frag(OP.BINARY, "again", true))
      c:expect_failure(1002)
    end)
  end)
end)
