-- Autobahn TestSuite category 1 (framing): text and binary messages of the
-- length-encoding boundary sizes, whole and chopped into small writes; plus the
-- masking and length-encoding rules of RFC 6455 §5.2/§5.3.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local OP = rawws.OP

local APP = "examples/echo/app.lua"
local LENGTHS = { 0, 125, 126, 127, 128, 65535, 65536 }

local function text_payload(n)
  return string.rep("*", n)
end

local BYTES256
do
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char(i) end
  BYTES256 = table.concat(t)
end
local function binary_payload(n)
  return string.rep(BYTES256, math.floor(n / 256) + 1):sub(1, n)
end

describe("conformance 1.x framing", function()
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

  describe("1.1 text messages", function()
    for i, n in ipairs(LENGTHS) do
      it(string.format("1.1.%d echoes a %d-byte text message in one minimal-length frame", i, n),
        function()
        local c = open()
        local p = text_payload(n)
        c:send_text(p)
        local f = c:expect_echo(p, OP.TEXT)
        assert.is_false(f.masked)
        assert.is_true(f.minimal_length)
      end)
    end

    it("1.1.8 echoes a 65536-byte text message written in chops of 997 bytes", function()
      local c = open()
      local p = text_payload(65536)
      c:send_text(p, { pieces = 997 })
      c:expect_echo(p, OP.TEXT)
    end)

    it("1.1.9 echoes a 1 MiB text message", function()
      local c = open()
      local p = string.rep("0123456789abcdef", 65536)
      c:send_text(p)
      c:expect_echo(p, OP.TEXT, 10)
    end)
  end)

  describe("1.2 binary messages", function()
    for i, n in ipairs(LENGTHS) do
      it(string.format("1.2.%d echoes a %d-byte binary message in one minimal-length frame", i, n),
        function()
        local c = open()
        local p = binary_payload(n)
        c:send_binary(p)
        local f = c:expect_echo(p, OP.BINARY)
        assert.is_false(f.masked)
        assert.is_true(f.minimal_length)
      end)
    end

    it("1.2.8 echoes a 65536-byte binary message written in chops of 997 bytes", function()
      local c = open()
      local p = binary_payload(65536)
      c:send_binary(p, { pieces = 997 })
      c:expect_echo(p, OP.BINARY)
    end)

    it("1.2.9 echoes a 1 MiB binary message", function()
      local c = open()
      local p = binary_payload(1048576)
      c:send_binary(p)
      c:expect_echo(p, OP.BINARY, 10)
    end)
  end)

  describe("frames written one byte per send()", function()
    for _, n in ipairs({ 0, 1, 125, 126, 127, 128, 300 }) do
      it(string.format("echoes a %d-byte text frame chopped into 1-byte writes", n), function()
        local c = open()
        local p = text_payload(n)
        c:send_text(p, { pieces = 1 })
        c:expect_echo(p, OP.TEXT)
      end)
    end

    it("echoes a 65536-byte binary frame chopped into 1-byte writes", function()
      local c = open()
      local p = binary_payload(65536)
      c:send_binary(p, { pieces = 1 })
      c:expect_echo(p, OP.BINARY, 15)
    end)

    it("echoes a 300-byte binary frame chopped into 1-byte writes with pauses", function()
      local c = open()
      local p = binary_payload(300)
      -- header pieces arrive in separate segments with a pause between them
      local bytes = rawws.build_frame { opcode = OP.BINARY, payload = p }
      for i = 1, 8 do
        assert.is_true(c:send_raw(bytes:sub(i, i)))
        require("socket").sleep(0.02)
      end
      c:expect_silence(0.1)
      assert.is_true(c:send_raw(bytes:sub(9), 1))
      c:expect_echo(p, OP.BINARY)
    end)
  end)

  describe("length encoding and masking", function()
    it("accepts a 5-byte payload with a non-minimal 16-bit length", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "hello", length_form = "16" }
      local f = c:expect_echo("hello", OP.TEXT)
      assert.equal(5, f.length_code)
    end)

    it("accepts a 5-byte payload with a non-minimal 64-bit length", function()
      local c = open()
      c:send_frame { opcode = OP.BINARY, payload = "\0\1\2\3\4", length_form = "64" }
      local f = c:expect_echo("\0\1\2\3\4", OP.BINARY)
      assert.equal(5, f.length_code)
    end)

    it("accepts a 200-byte payload with a non-minimal 64-bit length " ..
      "and answers with a 16-bit length",
      function()
      local c = open()
      local p = text_payload(200)
      c:send_frame { opcode = OP.TEXT, payload = p, length_form = "64" }
      local f = c:expect_echo(p, OP.TEXT)
      assert.equal(126, f.length_code)
      assert.equal(4, f.header_len)
    end)

    it("unmasks correctly with an all-zero mask key", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "zero key", mask_key = "\0\0\0\0" }
      c:expect_echo("zero key", OP.TEXT)
    end)

    it("unmasks correctly with an all-0xFF mask key and every byte value", function()
      local c = open()
      c:send_frame { opcode = OP.BINARY, payload = BYTES256, mask_key = "\255\255\255\255" }
      c:expect_echo(BYTES256, OP.BINARY)
    end)

    it("answers three frames sent in one segment with three echoes in order", function()
      local c = open()
      local bytes = rawws.build_frame { opcode = OP.TEXT, payload = "one" } ..
        rawws.build_frame { opcode = OP.BINARY, payload = "\2two" } ..
        rawws.build_frame { opcode = OP.TEXT, payload = "three" }
      c:send_raw(bytes)
      c:expect_echo("one", OP.TEXT)
      c:expect_echo("\2two", OP.BINARY)
      c:expect_echo("three", OP.TEXT)
    end)

    it("answers a frame split across two segments at every header boundary", function()
      local c = open()
      local p = text_payload(130)
      local bytes = rawws.build_frame { opcode = OP.TEXT, payload = p }
      for cut = 1, 9 do
        c:send_raw(bytes:sub(1, cut))
        c:expect_silence(0.02)
        c:send_raw(bytes:sub(cut + 1))
        c:expect_echo(p, OP.TEXT)
      end
    end)
  end)

  describe("unmasked client frames (RFC 6455 §5.1)", function()
    it("fails an unmasked text frame with 1002 and no echo", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "unmasked", mask = false }
      c:expect_failure(1002)
    end)

    it("fails an unmasked empty binary frame with 1002", function()
      local c = open()
      c:send_frame { opcode = OP.BINARY, payload = "", mask = false }
      c:expect_failure(1002)
    end)

    it("fails an unmasked ping with 1002 and no pong", function()
      local c = open()
      c:send_frame { opcode = OP.PING, payload = "p", mask = false }
      c:expect_failure(1002)
    end)

    it("fails an unmasked frame after a valid exchange", function()
      local c = open()
      c:send_text("ok")
      c:expect_echo("ok", OP.TEXT)
      c:send_frame { opcode = OP.TEXT, payload = "bad", mask = false }
      c:expect_failure(1002)
    end)
  end)
end)
