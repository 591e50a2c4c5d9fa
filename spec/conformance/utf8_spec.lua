-- Autobahn TestSuite category 6 (UTF-8 handling), RFC 6455 §5.6/§8.1:
-- text messages must be valid UTF-8 as a whole message, validated
-- incrementally across fragments and failed fast with 1007.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local OP = rawws.OP

local APP = "examples/echo/app.lua"

local KOSME = "\206\186\225\189\185\207\131\206\188\206\181"

local VALID = {
  { "ASCII and Latin-1 mix",
    "Hello-\194\181@\195\159\195\182\195\164\195\188\195\160\195\161-UTF-8!!" },
  { "Greek kosme", "\206\186\225\189\185\207\131\206\188\206\181" },
  { "U+0000", "\0" },
  { "U+007F", "\127" },
  { "U+0080 (first 2-byte)", "\194\128" },
  { "U+07FF (last 2-byte)", "\223\191" },
  { "U+0800 (first 3-byte)", "\224\160\128" },
  { "U+D7FF (below surrogates)", "\237\159\191" },
  { "U+E000 (above surrogates)", "\238\128\128" },
  { "U+FDD0 (noncharacter)", "\239\183\144" },
  { "U+FFFD", "\239\191\189" },
  { "U+FFFE", "\239\191\190" },
  { "U+FFFF", "\239\191\191" },
  { "U+10000 (first 4-byte)", "\240\144\128\128" },
  { "U+1F600", "\240\159\152\128" },
  { "U+1FFFE (noncharacter)", "\240\159\191\190" },
  { "U+10FFFF (last code point)", "\244\143\191\191" },
  { "all boundary code points in one message",
    "\0\127\194\128\223\191\224\160\128\237\159\191\238\128\128\239\191\191" ..
    "\240\144\128\128\244\143\191\191" },
}

local INVALID = {
  -- unexpected continuation bytes
  { "lone continuation 0x80", "\128" },
  { "lone continuation 0xBF", "\191" },
  { "two continuation bytes", "\128\191" },
  { "continuation after ASCII", "abc\128def" },
  { "all 64 continuation bytes", (function()
      local t = {}
      for b = 0x80, 0xBF do t[#t + 1] = string.char(b) end
      return table.concat(t)
    end)() },
  -- lonely start bytes followed by a space
  { "C2 followed by space", "\194 " },
  { "E0 followed by space", "\224 " },
  { "F0 followed by space", "\240 " },
  -- truncated sequences at the end of the message
  { "truncated 2-byte (C2)", "\194" },
  { "truncated 3-byte (E0 A0)", "\224\160" },
  { "truncated 3-byte (EF BF)", "\239\191" },
  { "truncated 4-byte (F0 90 80)", "\240\144\128" },
  { "truncated 4-byte (F4 8F BF)", "\244\143\191" },
  { "kosme followed by truncated 2-byte", "\206\186\225\189\185\207\131\206\188\206\181\206" },
  -- impossible bytes
  { "FE", "\254" },
  { "FF", "\255" },
  { "FE FE FF FF", "\254\254\255\255" },
  { "F5 (would exceed U+10FFFF)", "\245\128\128\128" },
  { "F7 BF BF BF (U+1FFFFF)", "\247\191\191\191" },
  { "F8 5-byte form", "\248\136\128\128\128" },
  { "FC 6-byte form", "\252\132\128\128\128\128" },
  -- overlong forms
  { "overlong '/' C0 AF", "\192\175" },
  { "overlong '/' E0 80 AF", "\224\128\175" },
  { "overlong '/' F0 80 80 AF", "\240\128\128\175" },
  { "overlong NUL C0 80", "\192\128" },
  { "overlong C1 BF (max 2-byte overlong)", "\193\191" },
  { "overlong E0 9F BF (max 3-byte overlong)", "\224\159\191" },
  { "overlong F0 8F BF BF (max 4-byte overlong)", "\240\143\191\191" },
  -- UTF-16 surrogates
  { "U+D800", "\237\160\128" },
  { "U+DB7F", "\237\173\191" },
  { "U+DB80", "\237\174\128" },
  { "U+DBFF", "\237\175\191" },
  { "U+DC00", "\237\176\128" },
  { "U+DF80", "\237\190\128" },
  { "U+DFFF", "\237\191\191" },
  { "surrogate pair U+D800 U+DC00", "\237\160\128\237\176\128" },
  -- beyond U+10FFFF
  { "U+110000 (F4 90 80 80)", "\244\144\128\128" },
  { "valid text then U+110000",
    "\206\186\225\189\185\207\131\206\188\206\181\244\144\128\128edited" },
  { "valid text then surrogate", "\206\186\225\189\185\207\131\206\188\206\181\237\160\128edited" },
}

describe("conformance 6.x UTF-8", function()
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

  describe("valid UTF-8 is echoed", function()
    it("6.1 echoes an empty text message and empty text fragments", function()
      local c = open()
      c:send_text("")
      c:expect_echo("", OP.TEXT)
      c:send_frame { opcode = OP.TEXT, payload = "", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "", fin = true }
      c:expect_echo("", OP.TEXT)
    end)

    for i, v in ipairs(VALID) do
      it(string.format("6.5.%d echoes %s in one frame", i, v[1]), function()
        local c = open()
        c:send_text(v[2])
        c:expect_echo(v[2], OP.TEXT)
      end)
    end

    it("6.2.3 echoes a mixed UTF-8 message sent one byte per fragment", function()
      local c = open()
      local msg = VALID[1][2]
      for i = 1, #msg do
        c:send_frame { opcode = i == 1 and OP.TEXT or OP.CONTINUATION, payload = msg:sub(i, i),
          fin = i == #msg }
      end
      c:expect_echo(msg, OP.TEXT)
    end)

    it("6.2.4 echoes kosme sent one byte per fragment, all in one segment", function()
      local c = open()
      local msg = VALID[2][2]
      local wire = {}
      for i = 1, #msg do
        wire[i] = rawws.build_frame { opcode = i == 1 and OP.TEXT or OP.CONTINUATION,
          payload = msg:sub(i, i), fin = i == #msg }
      end
      c:send_raw(table.concat(wire))
      c:expect_echo(msg, OP.TEXT)
    end)

    for _, v in ipairs({ VALID[5], VALID[7], VALID[13], VALID[14], VALID[15], VALID[17] }) do
      it("echoes " .. v[1] .. " split across 2 fragments at every byte position", function()
        local c = open()
        local cp = v[2]
        for cut = 1, #cp - 1 do
          local msg = "a" .. cp .. "b"
          c:send_frame { opcode = OP.TEXT, payload = "a" .. cp:sub(1, cut), fin = false }
          c:send_frame { opcode = OP.CONTINUATION, payload = cp:sub(cut + 1) .. "b", fin = true }
          c:expect_echo(msg, OP.TEXT)
        end
      end)
    end

    it("does not fail early on a code point that is incomplete at the end of a non-final fragment",
      function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "smile \240\159\152", fin = false }
      c:expect_silence(0.3)
      c:send_frame { opcode = OP.CONTINUATION, payload = "\128", fin = true }
      c:expect_echo("smile \240\159\152\128", OP.TEXT)
    end)

    it("echoes U+10FFFF split over 4 fragments with pings in between", function()
      local c = open()
      local cp = "\244\143\191\191"
      for i = 1, 4 do
        c:send_frame { opcode = i == 1 and OP.TEXT or OP.CONTINUATION, payload = cp:sub(i, i),
          fin = i == 4 }
        if i < 4 then
          c:ping("p" .. i)
          c:expect_pong("p" .. i)
        end
      end
      c:expect_echo(cp, OP.TEXT)
    end)

    it("echoes invalid UTF-8 unchanged in a binary message", function()
      local c = open()
      local p = "\255\254\192\175\237\160\128\244\144\128\128\206"
      c:send_binary(p)
      c:expect_echo(p, OP.BINARY)
    end)
  end)

  describe("invalid UTF-8 fails with 1007", function()
    for i, v in ipairs(INVALID) do
      it(string.format("6.x.%d fails %s in one text frame with 1007 and no echo", i, v[1]),
        function()
        local c = open()
        c:send_text(v[2])
        c:expect_failure(1007)
      end)
    end

    it("fails a surrogate split across 2 fragments (ED | A0 80) with 1007", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "ab\237", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "\160\128cd", fin = true }
      c:expect_failure(1007)
    end)

    it("fails an overlong split across 2 fragments (E0 | 80 AF) with 1007", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "\224", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "\128\175", fin = true }
      c:expect_failure(1007)
    end)

    it("fails a message whose final fragment ends inside a code point with 1007", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "abc", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "\206", fin = true }
      c:expect_failure(1007)
    end)

    it("fails a code point left incomplete by an empty final fragment with 1007", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "\226\130", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "", fin = true }
      c:expect_failure(1007)
    end)

    it("fails invalid UTF-8 sent one byte per fragment with 1007", function()
      local c = open()
      local msg = "\206\186\225\189\185\207\131\206\188\206\181\237\160\128edited"
      local wire = {}
      for i = 1, #msg do
        wire[i] = rawws.build_frame { opcode = i == 1 and OP.TEXT or OP.CONTINUATION,
          payload = msg:sub(i, i), fin = i == #msg }
      end
      c:send_raw(table.concat(wire))
      c:expect_failure(1007)
    end)
  end)

  describe("fail fast: invalid fragments fail before the message is complete", function()
    -- In each case the message is never finished: only a server validating
    -- incrementally can send the 1007.
    it("fails a bad first fragment (C0 AF) before any further fragment is sent", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "\192\175", fin = false }
      c:expect_failure(1007, 3)
    end)

    it("fails a bad first fragment (valid ASCII then FF) before any further fragment is sent",
      function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "Hello, world\255", fin = false }
      c:expect_failure(1007, 3)
    end)

    it("fails a first fragment with a surrogate in the middle before the rest is sent", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "ab\237\160\128cd", fin = false }
      c:expect_failure(1007, 3)
    end)

    it("6.4.1 fails on the 2nd of 3 fragments (U+110000) before the 3rd is sent", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = KOSME, fin = false }
      c:expect_silence(0.2)
      c:send_frame { opcode = OP.CONTINUATION, payload = "\244\144\128\128", fin = false }
      c:expect_failure(1007, 3)
    end)

    it("6.4.2 fails as soon as F4 is followed by 90 in the next fragment", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = KOSME .. "\244", fin = false }
      c:expect_silence(0.3) -- F4 may still start a valid code point
      c:send_frame { opcode = OP.CONTINUATION, payload = "\144", fin = false }
      c:expect_failure(1007, 3)
    end)

    it("fails as soon as ED is followed by A0 (surrogate) in the next fragment", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "x\237", fin = false }
      c:expect_silence(0.2)
      c:send_frame { opcode = OP.CONTINUATION, payload = "\160", fin = false }
      c:expect_failure(1007, 3)
    end)

    it("fails as soon as E0 is followed by 9F (overlong) in the next fragment", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "\224", fin = false }
      c:expect_silence(0.2)
      c:send_frame { opcode = OP.CONTINUATION, payload = "\159", fin = false }
      c:expect_failure(1007, 3)
    end)

    it("fails as soon as F0 is followed by 8F (overlong) in the next fragment", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "\240", fin = false }
      c:expect_silence(0.2)
      c:send_frame { opcode = OP.CONTINUATION, payload = "\143", fin = false }
      c:expect_failure(1007, 3)
    end)

    it("fails a 2-byte lead followed by ASCII across fragments before the message ends", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, payload = "\206", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, payload = "A", fin = false }
      c:expect_failure(1007, 3)
    end)
  end)
end)
