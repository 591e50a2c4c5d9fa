-- Autobahn TestSuite category 9 (limits/performance), scaled to run in well
-- under 30 s: large messages whole, fragmented and chopped; many small
-- messages; and the maximum message size (1009 from the frame header, before
-- the payload is sent) and the 64-bit length top bit (1002).
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local clock = require "helpers.clock"
local OP = rawws.OP

local APP = "examples/echo/app.lua"
local KiB, MiB = 1024, 1024 * 1024
local DEFAULT_MAX = 16 * MiB
local SMALL_MAX = 1024

-- 16-byte unit of valid UTF-8 (Greek kosme + ASCII): every size used below is a
-- multiple of 16, so the text stays valid.
local TEXT_UNIT = "\206\186\225\189\185\207\131\206\188\206\181-0123"
assert(#TEXT_UNIT == 16)
local BIN_UNIT
do
  local t = {}
  for i = 0, 255 do t[#t + 1] = string.char((i * 7 + 3) % 256) end
  BIN_UNIT = table.concat(t)
end

local cache = {}
local function payload(kind, n)
  local key = kind .. n
  if not cache[key] then
    local unit = kind == "text" and TEXT_UNIT or BIN_UNIT
    cache[key] = string.rep(unit, math.ceil(n / #unit)):sub(1, n)
  end
  return cache[key]
end

local function human(n)
  if n >= MiB then return (n / MiB) .. " MiB" end
  if n >= KiB then return (n / KiB) .. " KiB" end
  return n .. " B"
end

-- All frames of a message fragmented into `size`-byte fragments.
local function fragmented(opcode, p, size)
  local wire = {}
  local i = 1
  repeat
    local last = i + size > #p
    wire[#wire + 1] = rawws.build_frame { opcode = i == 1 and opcode or OP.CONTINUATION,
      payload = p:sub(i, i + size - 1), fin = last }
    i = i + size
  until last
  return table.concat(wire)
end

describe("conformance 9.x limits", function()
  local s, small
  local clients = {}

  setup(function()
    s = server.start(APP)
    small = server.start(APP, { "--max-message-size", tostring(SMALL_MAX) })
  end)
  teardown(function()
    local ok1 = not s or s:stop()
    local ok2 = not small or small:stop()
    assert.is_true(ok1, "server did not exit within 5 s of SIGTERM")
    assert.is_true(ok2, "small-limit server did not exit within 5 s of SIGTERM")
  end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server process died; log:\n" .. s:log())
    assert.is_true(small:alive(), "small-limit server process died; log:\n" .. small:log())
  end)

  local function open(srv)
    local c = rawws.connect((srv or s).port, "/ws")
    clients[#clients + 1] = c
    assert.equal(101, c.status)
    return c
  end

  local KINDS = { { "text", OP.TEXT, "9.1" }, { "binary", OP.BINARY, "9.2" } }

  for _, k in ipairs(KINDS) do
    local kind, opcode, cat = k[1], k[2], k[3]
    describe(cat .. " large " .. kind .. " messages in one frame", function()
      for i, n in ipairs({ 64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 8 * MiB }) do
        it(string.format("%s.%d echoes a %s %s message", cat, i, human(n), kind), function()
          local c = open()
          local p = payload(kind, n)
          c:send_frame { opcode = opcode, payload = p }
          c:expect_echo(p, opcode, 20)
        end)
      end
    end)
  end

  it("9.2.7 echoes a binary message of exactly the default maximum (16 MiB)", function()
    local c = open()
    local p = payload("binary", DEFAULT_MAX)
    c:send_binary(p)
    c:expect_echo(p, OP.BINARY, 30)
  end)

  for _, k in ipairs({ { "text", OP.TEXT, "9.3" }, { "binary", OP.BINARY, "9.4" } }) do
    local kind, opcode, cat = k[1], k[2], k[3]
    describe(cat .. " fragmented " .. kind .. " messages", function()
      local cases = {
        { 256 * KiB, 64 }, { 1 * MiB, 64 }, { 4 * MiB, 4 * KiB }, { 8 * MiB, 1 * MiB },
      }
      for i, case in ipairs(cases) do
        local n, size = case[1], case[2]
        it(string.format("%s.%d echoes a %s %s message sent in %s fragments (%d frames) " ..
          "as one frame",
          cat, i, human(n), kind, human(size), math.ceil(n / size)), function()
          local c = open()
          local p = payload(kind, n)
          c:send_raw(fragmented(opcode, p, size))
          c:expect_echo(p, opcode, 20)
        end)
      end
    end)
  end

  for _, k in ipairs({ { "text", OP.TEXT, "9.5" }, { "binary", OP.BINARY, "9.6" } }) do
    local kind, opcode, cat = k[1], k[2], k[3]
    describe(cat .. " " .. kind .. " message written in chops", function()
      for i, chop in ipairs({ 64, 4 * KiB }) do
        it(string.format("%s.%d echoes a 1 MiB %s frame written in %d-byte send() calls",
          cat, i, kind, chop),
          function()
          local c = open()
          local p = payload(kind, MiB)
          c:send_frame { opcode = opcode, payload = p, pieces = chop }
          c:expect_echo(p, opcode, 20)
        end)
      end
    end)
  end

  describe("9.7/9.8 many small messages", function()
    it("9.7 echoes 1000 small text messages sent in one batch, in order", function()
      local c = open()
      local wire = {}
      for i = 1, 1000 do wire[i] = rawws.build_frame { opcode = OP.TEXT, payload = "msg " .. i } end
      c:send_raw(table.concat(wire))
      for i = 1, 1000 do c:expect_echo("msg " .. i, OP.TEXT) end
    end)

    it("9.8 completes 500 sequential binary round trips of 16 bytes", function()
      local c = open()
      local t0 = clock()
      for i = 1, 500 do
        local p = string.format("%016d", i)
        c:send_binary(p)
        c:expect_echo(p, OP.BINARY)
      end
      assert.is_true(clock() - t0 < 10, "500 round trips took more than 10 s")
    end)
  end)

  describe("maximum message size", function()
    it("accepts a text message of exactly the limit (1024 bytes)", function()
      local c = open(small)
      local p = payload("text", SMALL_MAX)
      c:send_text(p)
      c:expect_echo(p, OP.TEXT)
    end)

    it("accepts a binary message of exactly the limit in 2 fragments of 512", function()
      local c = open(small)
      local p = payload("binary", SMALL_MAX)
      c:send_raw(fragmented(OP.BINARY, p, 512))
      c:expect_echo(p, OP.BINARY)
    end)

    it("accepts a message of exactly the limit in 1-byte fragments", function()
      local c = open(small)
      local p = payload("binary", SMALL_MAX)
      c:send_raw(fragmented(OP.BINARY, p, 1))
      c:expect_echo(p, OP.BINARY)
    end)

    it("fails a 1025-byte text frame with 1009 from its header, before the payload is sent",
      function()
      local c = open(small)
      c:send_frame { opcode = OP.TEXT, length_override = SMALL_MAX + 1, header_only = true }
      c:expect_failure(1009, 3)
    end)

    it("fails a 1025-byte binary frame with 1009 from its header, before the payload is sent",
      function()
      local c = open(small)
      c:send_frame { opcode = OP.BINARY, length_override = SMALL_MAX + 1, header_only = true }
      c:expect_failure(1009, 3)
    end)

    it("fails a 1 MiB frame header (64-bit length) with 1009 before the payload is sent", function()
      local c = open(small)
      c:send_frame { opcode = OP.BINARY, length_override = MiB, header_only = true }
      c:expect_failure(1009, 3)
    end)

    -- A message is one Lua string, and LuaJIT's strings stop short of 2 GiB:
    -- "no limit" (0) is that limit, decided from the header too.
    it("--max-message-size 0: fails a 2 GiB frame header with 1009 before the payload is sent",
      function()
      local none = server.start(APP, { "--max-message-size", "0" })
      finally(function() none:stop() end)
      local c = rawws.connect(none.port, "/ws")
      clients[#clients + 1] = c
      assert.equal(101, c.status)
      c:send_frame { opcode = OP.BINARY, length_override = 2 ^ 31, header_only = true }
      c:expect_failure(1009, 3)
    end)

    it("fails a fragmented message whose second fragment header exceeds the limit with 1009",
      function()
      local c = open(small)
      c:send_frame { opcode = OP.TEXT, payload = payload("text", 1000), fin = false }
      c:send_frame { opcode = OP.CONTINUATION, length_override = 25, header_only = true,
        fin = true }
      c:expect_failure(1009, 3)
    end)

    it("fails a fragmented message exceeding the limit by one byte with 1009 and no echo",
      function()
      local c = open(small)
      local p = payload("binary", SMALL_MAX + 1)
      c:send_raw(fragmented(OP.BINARY, p, 100))
      c:expect_failure(1009, 3)
    end)

    it("still answers pings (control frames are not messages) on the small-limit server", function()
      local c = open(small)
      local p = string.rep("p", 125)
      c:ping(p)
      c:expect_pong(p)
    end)

    it("fails a frame header of 16 MiB + 1 on the default server with 1009 " ..
      "before the payload is sent",
      function()
      local c = open()
      c:send_frame { opcode = OP.BINARY, length_override = DEFAULT_MAX + 1, header_only = true }
      c:expect_failure(1009, 3)
    end)

    it("fails a 16 MiB + 1 message made of a 16 MiB fragment header after 1 byte with 1009",
      function()
      local c = open()
      c:send_frame { opcode = OP.BINARY, payload = "x", fin = false }
      c:send_frame { opcode = OP.CONTINUATION, length_override = DEFAULT_MAX, header_only = true }
      c:expect_failure(1009, 3)
    end)
  end)

  describe("64-bit length with the most significant bit set", function()
    it("fails 0x8000000000000000 on the default server with 1002", function()
      local c = open()
      c:send_frame { opcode = OP.BINARY, length_raw = "\128\0\0\0\0\0\0\0", header_only = true }
      c:expect_failure(1002, 3)
    end)

    it("fails 0xFFFFFFFFFFFFFFFF on the default server with 1002", function()
      local c = open()
      c:send_frame { opcode = OP.TEXT, length_raw = "\255\255\255\255\255\255\255\255",
        header_only = true }
      c:expect_failure(1002, 3)
    end)

    it("fails 0x8000000000000005 followed by 5 payload bytes with 1002 (not 1009, not an echo)",
      function()
      local c = open()
      local key = "\1\2\3\4"
      c:send_raw(rawws.build_frame { opcode = OP.BINARY, length_raw = "\128\0\0\0\0\0\0\5",
        header_only = true, mask_key = key } .. rawws.mask("hello", key))
      c:expect_failure(1002, 3)
    end)

    it("fails a top-bit length with 1002 on the small-limit server too", function()
      local c = open(small)
      c:send_frame { opcode = OP.BINARY, length_raw = "\128\0\0\0\0\0\4\0", header_only = true }
      c:expect_failure(1002, 3)
    end)
  end)
end)
