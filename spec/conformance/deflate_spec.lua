-- permessage-deflate (RFC 7692), modelled on Autobahn TestSuite categories
-- 12 (compressed echo of many sizes and payload kinds) and 13 (negotiation
-- of every parameter combination the suite offers), plus the failure cases:
-- RSV1 where it may not be, invalid deflate data, invalid UTF-8 after
-- inflating, a deflate bomb against the maximum message size (with the
-- server's memory measured), the compression threshold and --no-compression.
--
-- The spec compresses and inflates with the system zlib through LuaJIT's FFI
-- (spec/helpers/zlib.lua), independent of the server's own code.
--
-- What the server promises (core/extensions.c, core/deflate.c):
--   * it answers an acceptable offer with exactly
--     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
--     plus "; server_max_window_bits=N" when the offer named N (8..15), and
--     its messages then inflate with a window of N bits;
--   * it declines an offer with an unknown, repeated or malformed parameter,
--     and tries the next offer;
--   * its messages of --compress-threshold bytes (default 1024) or more go out
--     compressed (RSV1), smaller ones plain, and so do ones of 256 bytes or
--     more that would not shrink (random data); it never fragments its replies;
--   * inflating stops at --max-message-size (1009), bad data is 1007, and a
--     compressed text message must be UTF-8 once inflated (1007).
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local zlib = require "helpers.zlib"
local proc = require "helpers.proc"
local ffi = require "ffi"
local clock = require "helpers.clock"
local OP = rawws.OP

local APP = "spec/apps/hardening_app.lua"
local KiB, MiB = 1024, 1024 * 1024
local THRESHOLD = 1024 -- the default --compress-threshold
-- Under an AddressSanitizer build RSS is not the server's own memory
-- (shadow, quarantine): the figures are printed, the bounds not checked.
local SANITIZED = proc.sanitized()
local SNCT, CNCT = "server_no_context_takeover", "client_no_context_takeover"

---------------------------------------------------------------------------
-- Payloads (deterministic)
---------------------------------------------------------------------------

-- Pseudo-random bytes from a 32-bit LCG, seeded: incompressible. (The
-- state is a uint64_t: in doubles, x * 1103515245 loses its low bits past
-- 2^53, and the sequence falls into short cycles, which compress.)
local function random_bytes(n, seed)
  local buf = ffi.new("uint8_t[?]", n)
  local x = ffi.new("uint64_t", seed or 12345)
  for i = 0, n - 1 do
    x = (x * 1103515245ULL + 12345ULL) % 4294967296ULL
    buf[i] = tonumber(x / 16777216ULL)
  end
  return ffi.string(buf, n)
end

-- Compressible UTF-8 text: words with numbers and multi-byte characters, so
-- repeats are frequent but not exact.
-- n random bytes from 64 values (6 bits each): the server compresses them
-- (random bytes from all 256 values it sends plain: they would not shrink),
-- and a block of them repeated shrinks only by reference to the copy before.
local function random_sixbit(n, seed)
  local s = random_bytes(n, seed)
  return (s:gsub(".", function(ch) return string.char(48 + ch:byte() % 64) end))
end

local WORDS = { "permessage", "deflate", "κόσμε", "nexlua", "échange", "😀", "data", "frame" }
local function compressible_text(n)
  local parts, len, i = {}, 0, 0
  while len < n do
    i = i + 1
    local w = WORDS[i % #WORDS + 1] .. " " .. (i % 97) .. " "
    parts[#parts + 1] = w
    len = len + #w
  end
  local s = table.concat(parts)
  -- cut to n bytes at an ASCII boundary, then pad with ASCII
  local cut = n
  while cut > 0 and s:byte(cut) >= 0x80 do cut = cut - 1 end
  -- a multi-byte character whose last byte is at cut may still be whole; keep
  -- it simple: drop any trailing non-ASCII run and pad
  return s:sub(1, cut) .. string.rep("x", n - cut)
end

local function compressible_binary(n)
  local unit = {}
  for i = 0, 255 do unit[#unit + 1] = string.char((i * 7 + 3) % 256) end
  unit = table.concat(unit)
  return string.rep(unit, math.ceil(n / #unit)):sub(1, n)
end

local cache = {}
local function payload(kind, n)
  local key = kind .. n
  if not cache[key] then
    if kind == "text" then
      cache[key] = compressible_text(n)
    elseif kind == "binary" then
      cache[key] = compressible_binary(n)
    else
      cache[key] = random_bytes(n, n)
    end
  end
  return cache[key]
end

local function human(n)
  if n >= MiB then return (n / MiB) .. " MiB" end
  if n >= KiB then return (n / KiB) .. " KiB" end
  return n .. " B"
end

---------------------------------------------------------------------------
-- Extensions header
---------------------------------------------------------------------------

-- "permessage-deflate; a; b=c, other" -> { {name=, params={a=true, b="c"}, order={...}} ... }
local function parse_extensions(value)
  local list = {}
  if not value then return list end
  for offer in value:gmatch("[^,]+") do
    local e = { params = {}, order = {} }
    for part in offer:gmatch("[^;]+") do
      part = part:match("^%s*(.-)%s*$")
      if not e.name then
        e.name = part:lower()
      else
        local k, v = part:match("^([^=]+)=(.*)$")
        k = (k or part):match("^%s*(.-)%s*$"):lower()
        v = v and v:match("^%s*\"?(.-)\"?%s*$") or true
        e.params[k] = v
        e.order[#e.order + 1] = k
      end
    end
    list[#list + 1] = e
  end
  return list
end

---------------------------------------------------------------------------
-- Wire helpers
---------------------------------------------------------------------------

-- The frames of one compressed message: the deflated bytes split into
-- `frag`-byte fragments (nil: one frame), RSV1 on the first frame only.
local function compressed_wire(opcode, msg, opts)
  opts = opts or {}
  local z = opts.raw or zlib.deflate(msg, { window_bits = opts.window_bits, level = opts.level })
  local frag = opts.frag
  if not frag or frag >= #z then
    return rawws.build_frame { opcode = opcode, payload = z, rsv1 = true }, z
  end
  local wire, i = {}, 1
  repeat
    local last = i + frag > #z
    wire[#wire + 1] = rawws.build_frame { opcode = i == 1 and opcode or OP.CONTINUATION,
      payload = z:sub(i, i + frag - 1), fin = last, rsv1 = i == 1 }
    i = i + frag
  until last
  return table.concat(wire), z
end

-- Reads one data message from the server (reassembling fragments, skipping
-- pongs) and inflates it when RSV1 is set on its first frame. Returns
-- { data=, opcode=, compressed=, frames=, wire_bytes= }.
local function recv_message(c, opts)
  opts = opts or {}
  local deadline = clock() + (opts.timeout or 10)
  local parts, first, frames, wire = {}, nil, 0, 0
  while true do
    local f, _, detail = c:recv_frame(math.max(0, deadline - clock()))
    assert(f, detail)
    assert.is_false(f.masked, "server frame is masked")
    assert.is_false(f.rsv2 or f.rsv3, "server set RSV2/RSV3")
    if f.opcode == OP.CLOSE then
      local code = #f.payload >= 2 and (f.payload:byte(1) * 256 + f.payload:byte(2)) or nil
      error(string.format("expected a data message, got close %s %q", tostring(code),
        f.payload:sub(3)), 2)
    end
    if f.opcode >= 8 then
      assert.is_false(f.rsv1, "RSV1 on a control frame from the server")
    elseif f.opcode == OP.CONTINUATION then
      assert(first, "continuation without a message")
      assert.is_false(f.rsv1, "RSV1 on a continuation frame from the server")
      parts[#parts + 1] = f.payload
      frames, wire = frames + 1, wire + #f.payload
    else
      assert(not first, "a new message inside a fragmented one")
      first = f
      parts[1] = f.payload
      frames, wire = 1, #f.payload
    end
    if first and f.opcode < 8 and f.fin then break end
  end
  local data = table.concat(parts)
  if first.rsv1 then
    local inflated, err = zlib.inflate(data, { window_bits = opts.window_bits })
    assert(inflated, "the server's compressed message does not inflate" ..
      (opts.window_bits and (" with a " .. opts.window_bits .. "-bit window") or "") .. ": " ..
      tostring(err))
    data = inflated
  end
  return { data = data, opcode = first.opcode, compressed = first.rsv1, frames = frames,
    wire_bytes = wire }
end

local function expect_same(want, got)
  if want ~= got then error(rawws.payload_mismatch(want, got), 2) end
end

---------------------------------------------------------------------------

describe("conformance: permessage-deflate", function()
  local s, nocomp, small
  local clients = {}

  setup(function()
    s = server.start(APP)
    nocomp = server.start(APP, { "--no-compression" })
    small = server.start(APP, { "--max-message-size", tostring(MiB) })
  end)
  teardown(function()
    for _, srv in ipairs({ s, nocomp, small }) do
      if srv then assert.is_true(srv:stop(), "server did not exit within 5 s of SIGTERM") end
    end
  end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    for _, srv in ipairs({ s, nocomp, small }) do
      assert.is_true(srv:alive(), "server process died; log:\n" .. srv:log())
    end
  end)

  -- A server of its own for one test; always stopped.
  local function with_server(args, fn)
    local srv = server.start(APP, args)
    local ok, err = pcall(fn, srv)
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    local alive, log = srv:alive(), srv:log()
    srv:stop()
    assert(ok, err)
    assert(alive, "server process died; log:\n" .. log)
  end

  -- Opens /ws offering `offers`: a string (one header), a list of strings
  -- (one header each) or nil (no offer).
  local function open(offers, srv)
    if type(offers) == "string" then offers = { offers } end
    local headers = {}
    for _, o in ipairs(offers or {}) do headers[#headers + 1] = { "Sec-WebSocket-Extensions", o } end
    local c = rawws.connect((srv or s).port, "/ws", { headers = headers, timeout = 10 })
    clients[#clients + 1] = c
    assert.equal(101, c.status, "status line: " .. tostring(c.status_line))
    return c
  end

  -- The one extension the server accepted (asserting its shape), or nil.
  local function accepted(c)
    local v = c.headers["sec-websocket-extensions"]
    if not v then return nil end
    local list = parse_extensions(v)
    assert.equal(1, #list, "more than one extension in " .. v)
    local e = list[1]
    assert.equal("permessage-deflate", e.name, v)
    assert.is_true(e.params[SNCT], "no " .. SNCT .. " in " .. v)
    assert.is_true(e.params[CNCT], "no " .. CNCT .. " in " .. v)
    for _, k in ipairs(e.order) do
      assert.is_truthy(({ [SNCT] = 1, [CNCT] = 1, server_max_window_bits = 1 })[k],
        "unexpected parameter " .. k .. " in " .. v)
    end
    return e
  end

  -- /late (spec/apps/hardening_app.lua) offering permessage-deflate: the
  -- app accepts, then receives nothing for `wait` seconds.
  local function late(wait, timeout)
    local c = rawws.connect(s.port, "/late?wait=" .. wait,
      { headers = { { "Sec-WebSocket-Extensions", "permessage-deflate" } }, timeout = timeout })
    clients[#clients + 1] = c
    assert(accepted(c))
    return c
  end

  -- A compressed round trip on c: text and binary, checked both ways.
  local function compressed_round_trip(c, window_bits)
    -- 4 KiB random block repeated: with a window smaller than 4 KiB a
    -- compressor cannot refer back to the previous copy, so inflating with
    -- exactly `window_bits` proves the server kept to its window.
    local msg = random_sixbit(4 * KiB, 7):rep(8)
    c:send_raw((compressed_wire(OP.BINARY, msg)))
    local r = recv_message(c, { window_bits = window_bits })
    assert.is_true(r.compressed, "the reply to a compressed message is not compressed")
    assert.equal(OP.BINARY, r.opcode)
    expect_same(msg, r.data)
    local text = payload("text", 2 * THRESHOLD)
    c:send_raw((compressed_wire(OP.TEXT, text)))
    r = recv_message(c, { window_bits = window_bits })
    assert.is_true(r.compressed)
    assert.equal(OP.TEXT, r.opcode)
    expect_same(text, r.data)
    -- 300 random letters over and over: a compressor that kept to 512
    -- bytes but not to 256 would refer back 300.
    msg = random_sixbit(300, 9):rep(40)
    c:send_raw((compressed_wire(OP.BINARY, msg)))
    r = recv_message(c, { window_bits = window_bits })
    expect_same(msg, r.data)
  end

  -- Uncompressed traffic on a connection without the extension; RSV1 fails it.
  local function plain_round_trip(c)
    local msg = payload("text", 1000)
    c:send_text(msg)
    local r = recv_message(c)
    assert.is_false(r.compressed, "compressed reply without a negotiated extension")
    expect_same(msg, r.data)
  end

  -------------------------------------------------------------------------
  describe("13.x negotiation", function()
    -- { name, offers, expected server_max_window_bits in the reply (false:
    -- none), window the client compresses with }
    local ACCEPTED = {
      { "13.1 plain offer", "permessage-deflate", false },
      { "13.2 server_no_context_takeover", "permessage-deflate; " .. SNCT, false },
      { "client_no_context_takeover", "permessage-deflate; " .. CNCT, false },
      { "both no_context_takeover", "permessage-deflate; " .. SNCT .. "; " .. CNCT, false },
      { "client_max_window_bits without a value", "permessage-deflate; client_max_window_bits",
        false },
      { "client_max_window_bits=9 (client compresses with 9)",
        "permessage-deflate; client_max_window_bits=9", false, 9 },
      { "client_max_window_bits=15", "permessage-deflate; client_max_window_bits=15", false },
      { "client_max_window_bits=8 (inflating with 15 reads any window)",
        "permessage-deflate; client_max_window_bits=8", false, 9 },
      { "every parameter at once",
        "permessage-deflate; " .. SNCT .. "; " .. CNCT ..
        "; server_max_window_bits=12; client_max_window_bits=10", 12, 10 },
      { "a quoted window value", "permessage-deflate; server_max_window_bits=\"11\"", 11 },
      { "whitespace around parameters and '='",
        "permessage-deflate ;  server_max_window_bits = 10 ;client_max_window_bits", 10 },
      { "13.7 three offers, the first with server_max_window_bits=8: the first",
        "permessage-deflate; " .. SNCT .. "; server_max_window_bits=8, permessage-deflate; " ..
        SNCT .. ", permessage-deflate", 8 },
      { "a declined first offer (server_max_window_bits=7) then an acceptable one",
        "permessage-deflate; " .. SNCT .. "; server_max_window_bits=7, permessage-deflate; " ..
        SNCT .. ", permessage-deflate", false },
      { "a declined first offer (unknown parameter) then one with a window",
        "permessage-deflate; x-unknown, permessage-deflate; server_max_window_bits=13", 13 },
      { "an unknown extension first, then permessage-deflate in the same header",
        "x-webkit-deflate-frame, permessage-deflate; " .. CNCT, false },
      { "offers in several headers: the first declined, the second accepted",
        { "permessage-deflate; server_max_window_bits=7",
          "permessage-deflate; server_max_window_bits=14; " .. CNCT }, 14 },
      { "offers in several headers: an unknown extension, then permessage-deflate",
        { "foo-extension; a=1", "permessage-deflate" }, false },
    }
    -- 13.3-13.6 offer server_max_window_bits: every value 8..15, with and
    -- without server_no_context_takeover. (8: zlib's raw deflate has no
    -- 8-bit window; the server compresses with 9, whose matches reach back
    -- 250 bytes at most, and the client inflates with 8.)
    for bits = 8, 15 do
      ACCEPTED[#ACCEPTED + 1] = { "server_max_window_bits=" .. bits,
        "permessage-deflate; server_max_window_bits=" .. bits, bits }
      ACCEPTED[#ACCEPTED + 1] = { SNCT .. " + server_max_window_bits=" .. bits,
        "permessage-deflate; " .. SNCT .. "; server_max_window_bits=" .. bits, bits }
    end

    for _, case in ipairs(ACCEPTED) do
      local name, offers, bits, client_bits = case[1], case[2], case[3], case[4]
      it("accepts: " .. name .. (bits and (" -> server_max_window_bits=" .. bits) or ""), function()
        local c = open(offers)
        local e = accepted(c)
        assert(e, "the offer was declined: " .. tostring(c.request))
        if bits then
          assert.equal(tostring(bits), e.params.server_max_window_bits)
        else
          assert.is_nil(e.params.server_max_window_bits)
        end
        if client_bits then
          -- the client keeps to its own window; the server inflates it
          local msg = random_bytes(2 * KiB, 3):rep(4)
          c:send_raw((compressed_wire(OP.BINARY, msg, { window_bits = client_bits })))
          local r = recv_message(c, { window_bits = bits or 15 })
          expect_same(msg, r.data)
        end
        compressed_round_trip(c, bits or 15)
      end)
    end

    local DECLINED = {
      { "an unknown parameter", "permessage-deflate; foo" },
      { "an unknown parameter with a value", "permessage-deflate; foo=bar" },
      { "a repeated server_no_context_takeover",
        "permessage-deflate; " .. SNCT .. "; " .. SNCT },
      { "a repeated client_no_context_takeover",
        "permessage-deflate; " .. CNCT .. "; " .. CNCT },
      { "a repeated server_max_window_bits",
        "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10" },
      { "a repeated client_max_window_bits",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10" },
      { "server_max_window_bits without a value", "permessage-deflate; server_max_window_bits" },
      { "server_max_window_bits=16", "permessage-deflate; server_max_window_bits=16" },
      { "server_max_window_bits=7", "permessage-deflate; server_max_window_bits=7" },
      { "server_max_window_bits=010", "permessage-deflate; server_max_window_bits=010" },
      { "server_max_window_bits=abc", "permessage-deflate; server_max_window_bits=abc" },
      { "client_max_window_bits=16", "permessage-deflate; client_max_window_bits=16" },
      { "client_max_window_bits=7", "permessage-deflate; client_max_window_bits=7" },
      { "a value on server_no_context_takeover", "permessage-deflate; " .. SNCT .. "=1" },
      { "an empty parameter", "permessage-deflate;; " .. SNCT },
      { "only an unknown extension", "x-webkit-deflate-frame" },
      { "every offer declined (three offers in one header)",
        "permessage-deflate; server_max_window_bits=7, permessage-deflate; foo, " ..
        "permessage-deflate; " .. SNCT .. "; " .. SNCT },
      { "every offer declined (two headers)",
        { "permessage-deflate; a", "permessage-deflate; server_max_window_bits=7" } },
    }
    for _, case in ipairs(DECLINED) do
      it("declines: " .. case[1] .. " -> no extension, plain traffic, RSV1 fails with 1002",
        function()
        local c = open(case[2])
        assert.is_nil(c.headers["sec-websocket-extensions"],
          "accepted a bad offer: " .. tostring(c.headers["sec-websocket-extensions"]))
        plain_round_trip(c)
        c:send_raw((compressed_wire(OP.TEXT, "hello")))
        c:expect_failure(1002)
      end)
    end

    it("without an offer: no extension header, 1 KiB replies plain", function()
      local c = open(nil)
      assert.is_nil(c.headers["sec-websocket-extensions"])
      plain_round_trip(c)
    end)

    it("--no-compression: an acceptable offer is declined, replies plain, RSV1 fails with 1002",
      function()
      local c = open("permessage-deflate; " .. CNCT, nocomp)
      assert.is_nil(c.headers["sec-websocket-extensions"])
      plain_round_trip(c)
      c:send_raw((compressed_wire(OP.BINARY, payload("binary", 1000))))
      c:expect_failure(1002)
    end)
  end)

  -------------------------------------------------------------------------
  describe("12.x compressed echo", function()
    local SIZES = { 16, 64, 127, 128, 256, 1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB, 128 * KiB,
      256 * KiB, 1 * MiB }
    local KINDS = {
      { "text", OP.TEXT, "compressible text" },
      { "binary", OP.BINARY, "compressible binary" },
      { "random", OP.BINARY, "random binary" },
    }
    for _, k in ipairs(KINDS) do
      local kind, opcode, label = k[1], k[2], k[3]
      it(string.format("echoes %s messages of %s..%s, unfragmented", label, human(SIZES[1]),
        human(SIZES[#SIZES])), function()
        local c = open("permessage-deflate; " .. CNCT)
        assert(accepted(c))
        for _, n in ipairs(SIZES) do
          local msg = payload(kind, n)
          local wire, z = compressed_wire(opcode, msg)
          c:send_raw(wire)
          local r = recv_message(c)
          assert.equal(opcode, r.opcode, human(n))
          expect_same(msg, r.data)
          -- (random data does not shrink: it goes out plain)
          assert.equal(n >= THRESHOLD and kind ~= "random", r.compressed,
            string.format("%s: reply RSV1=%s (threshold %d)", human(n), tostring(r.compressed),
              THRESHOLD))
          assert.equal(1, r.frames, "the server fragmented its reply")
          if kind ~= "random" and n >= 4 * KiB then
            assert.is_true(r.wire_bytes < n / 2, string.format(
              "%s of %s compressed to %d bytes only", human(n), label, r.wire_bytes))
            assert.is_true(#z < n / 2)
          end
        end
      end)

      for _, frag in ipairs({ 64, 1000, 64 * KiB }) do
        it(string.format("echoes %s messages of 1 KiB..1 MiB fragmented in %s pieces " ..
          "(RSV1 on the first frame only)", label, human(frag)), function()
          local c = open("permessage-deflate")
          assert(accepted(c))
          for _, n in ipairs({ 1 * KiB, 16 * KiB, 256 * KiB, 1 * MiB }) do
            local msg = payload(kind, n)
            c:send_raw((compressed_wire(opcode, msg, { frag = frag })))
            local r = recv_message(c)
            expect_same(msg, r.data)
            assert.equal(kind ~= "random", r.compressed)
            assert.equal(opcode, r.opcode)
          end
        end)
      end
    end

    it("echoes messages compressed at levels 0 (stored blocks) to 9", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local msg = payload("text", 20 * KiB)
      for level = 0, 9 do
        c:send_raw((compressed_wire(OP.TEXT, msg, { level = level })))
        expect_same(msg, recv_message(c).data)
      end
    end)

    it("echoes a message that ends with a final block (BFINAL=1, RFC 7692 §7.2.3.3)", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local msg = payload("text", 3000)
      c:send_raw((compressed_wire(OP.TEXT, msg, { raw = zlib.deflate(msg, { finish = true }) })))
      expect_same(msg, recv_message(c).data)
    end)

    -- RFC 7692 §7.2.3.3's own example: "Hello" in a final block, then the
    -- header byte of the empty stored block whose 00 00 ff ff was removed.
    it("echoes the RFC's BFINAL example (f3 48 cd c9 c9 07 00 00) as Hello", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = "\243\72\205\201\201\7\0\0" }
      expect_same("Hello", recv_message(c).data)
      -- and with that block whole (its 00 00 ff ff kept)
      c:send_frame { opcode = OP.TEXT, rsv1 = true,
        payload = "\243\72\205\201\201\7\0" .. "\0\0\0\255\255" }
      expect_same("Hello", recv_message(c).data)
    end)

    it("takes a compressed message with no payload bytes at all as the empty message", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = "" }
      expect_same("", recv_message(c).data)
    end)

    it("echoes a message that keeps the 00 00 ff ff tail (an empty stored block inside)",
      function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local msg = payload("binary", 3000)
      c:send_raw((compressed_wire(OP.BINARY, msg,
        { raw = zlib.deflate(msg, { keep_tail = true }) })))
      expect_same(msg, recv_message(c).data)
    end)

    it("echoes an empty compressed message (the single byte 00) as an empty message", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      for _, opcode in ipairs({ OP.TEXT, OP.BINARY }) do
        c:send_frame { opcode = opcode, payload = "\0", rsv1 = true }
        local r = recv_message(c)
        assert.equal("", r.data)
        assert.equal(opcode, r.opcode)
        assert.is_false(r.compressed, "an empty reply under the threshold came compressed")
      end
      -- and an empty compressed message made by zlib itself
      c:send_raw((compressed_wire(OP.TEXT, "")))
      assert.equal("", recv_message(c).data)
    end)

    -- An empty first compressed message once reached memcpy(NULL, p, 0) in
    -- core/buf.h (fatal under UBSan): it must just work.
    it("with --compress-threshold 0, even an empty reply is compressed (the byte 00), also " ..
      "as the first compressed message of the process", function()
      with_server({ "--compress-threshold", "0" }, function(srv)
        local c = open("permessage-deflate", srv)
        assert(accepted(c))
        c:send_text("")
        local f, _, detail = c:recv_frame(5)
        assert(f, "no reply to an empty message (" .. tostring(detail) .. "); server log:\n" ..
          srv:log())
        assert.is_true(f.rsv1)
        assert.equal(OP.TEXT, f.opcode)
        assert.equal("", zlib.inflate(f.payload))
        c:send_binary("x")
        local r = recv_message(c)
        assert.is_true(r.compressed)
        assert.equal("x", r.data)
      end)
    end)

    it("accepts uncompressed messages (RSV1 clear) on a compressed connection and " ..
      "compresses the replies over the threshold", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      for _, n in ipairs({ 0, 10, THRESHOLD - 1, THRESHOLD, 4 * KiB, 300 * KiB }) do
        local msg = payload("text", n)
        c:send_text(msg)
        local r = recv_message(c)
        expect_same(msg, r.data)
        assert.equal(n >= THRESHOLD, r.compressed, n .. " bytes")
      end
    end)

    it("answers pings (RSV1 clear) between the fragments of a compressed message", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local msg = payload("text", 10 * KiB)
      local z = zlib.deflate(msg)
      local half = math.floor(#z / 2)
      c:send_frame { opcode = OP.TEXT, rsv1 = true, fin = false, payload = z:sub(1, half) }
      c:ping("between")
      local pong = c:expect_pong("between")
      assert.is_false(pong.rsv1)
      c:send_frame { opcode = OP.CONTINUATION, payload = z:sub(half + 1) }
      expect_same(msg, recv_message(c).data)
    end)

    it("sends the same broadcast-sized reply correctly to clients with different windows",
      function()
      -- the server caches the last compressed message per window: alternate
      -- windows and messages so a stale cache entry would show
      local a = open("permessage-deflate; server_max_window_bits=9")
      local b = open("permessage-deflate")
      local msg1 = random_sixbit(2 * KiB, 11):rep(6)
      local msg2 = random_sixbit(2 * KiB, 12):rep(6)
      for _, step in ipairs({ { a, msg1, 9 }, { b, msg1, 15 }, { a, msg1, 9 }, { b, msg2, 15 },
        { a, msg2, 9 }, { b, msg1, 15 } }) do
        step[1]:send_binary(step[2])
        local r = recv_message(step[1], { window_bits = step[3] })
        assert.is_true(r.compressed)
        expect_same(step[2], r.data)
      end
    end)
  end)

  -------------------------------------------------------------------------
  describe("failures", function()
    it("fails RSV1 on a continuation frame with 1002", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local z = zlib.deflate(payload("text", 2000))
      c:send_frame { opcode = OP.TEXT, rsv1 = true, fin = false, payload = z:sub(1, 10) }
      c:send_frame { opcode = OP.CONTINUATION, rsv1 = true, payload = z:sub(11) }
      c:expect_failure(1002)
    end)

    it("fails RSV1 on a continuation of an uncompressed message with 1002", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      c:send_frame { opcode = OP.BINARY, fin = false, payload = "abc" }
      c:send_frame { opcode = OP.CONTINUATION, rsv1 = true, payload = "def" }
      c:expect_failure(1002)
    end)

    for _, op in ipairs({ { "ping", OP.PING }, { "pong", OP.PONG }, { "close", OP.CLOSE } }) do
      it("fails RSV1 on a " .. op[1] .. " frame with 1002", function()
        local c = open("permessage-deflate")
        assert(accepted(c))
        c:send_frame { opcode = op[2], rsv1 = true,
          payload = op[2] == OP.CLOSE and rawws.close_payload(1000) or "x" }
        c:expect_failure(1002)
      end)
    end

    it("fails RSV1 without a negotiated extension with 1002 (no offer made)", function()
      local c = open(nil)
      c:send_raw((compressed_wire(OP.TEXT, payload("text", 500))))
      c:expect_failure(1002)
    end)

    it("fails RSV2 and RSV3 on a compressed connection with 1002", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      c:send_frame { opcode = OP.TEXT, rsv1 = true, rsv2 = true, payload = zlib.deflate("hi") }
      c:expect_failure(1002)
      local d = open("permessage-deflate")
      d:send_frame { opcode = OP.TEXT, rsv3 = true, payload = "hi" }
      d:expect_failure(1002)
    end)

    local INVALID = {
      { "block type 3 (reserved)", "\255\255\255\255" },
      { "a stored block whose LEN and NLEN disagree", "\0\5\0\5\0hello" },
      -- fixed Huffman block: length 3 at distance 1 with nothing before it
      { "a distance too far back", "\3\2\0" },
      { "bytes after a final block", zlib.deflate("hello", { finish = true }) .. "\1\2\3", true },
      -- The payload stops inside a block: the 00 00 ff ff the receiver
      -- appends must not be taken as the block's missing data.
      { "a stored block of 1024 bytes cut after 500", "\0\0\4\255\251" .. random_bytes(500, 7), true },
      -- (the four bytes appended would be exactly its data)
      { "a stored block of 4 bytes with none of them", "\0\4\0\251\255", true },
      { "a final stored block of 4 bytes with none of them", "\1\4\0\251\255", true },
      { "a final stored block of 2 bytes with none of them", "\1\2\0\253\255", true },
      { "a Huffman block cut in the middle",
        zlib.deflate(string.rep("The quick brown fox jumps over the lazy dog. ", 40)):sub(1, 40), true },
    }
    for _, case in ipairs(INVALID) do
      it("fails invalid deflate data (" .. case[1] .. ") with 1007", function()
        -- sanity: the spec's own zlib agrees the data is bad
        if not case[3] then assert.is_nil((zlib.inflate(case[2]))) end
        local c = open("permessage-deflate")
        assert(accepted(c))
        c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = case[2] }
        c:expect_failure(1007)
      end)
    end

    it("echoes a compressed message sent in one segment before invalid deflate data, " ..
      "then fails with 1007", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local msg = payload("text", 3000)
      c:send_raw((compressed_wire(OP.TEXT, msg)) ..
        rawws.build_frame { opcode = OP.BINARY, rsv1 = true, payload = "\255\255\255\255" })
      expect_same(msg, recv_message(c).data)
      c:expect_failure(1007)
    end)

    it("fails a compressed text message that is not UTF-8 once inflated with 1007", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local bad = string.rep("valid text ", 50) .. "\255\254" .. string.rep("more ", 50)
      c:send_raw((compressed_wire(OP.TEXT, bad)))
      c:expect_failure(1007)
    end)

    it("fails a compressed text message whose last character is cut with 1007", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      c:send_raw((compressed_wire(OP.TEXT, "abc\206")))
      c:expect_failure(1007)
    end)

    it("echoes a compressed binary message with the same bytes (binary is not checked)",
      function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local bad = string.rep("valid text ", 50) .. "\255\254"
      c:send_raw((compressed_wire(OP.BINARY, bad)))
      expect_same(bad, recv_message(c).data)
    end)

    it("fails a compressed message that inflates past --max-message-size (1 MiB) with 1009, " ..
      "and accepts one that inflates to exactly 1 MiB", function()
      local c = open("permessage-deflate", small)
      assert(accepted(c))
      local exact = string.rep("\0", MiB)
      c:send_raw((compressed_wire(OP.BINARY, exact)))
      expect_same(exact, recv_message(c).data)
      c:send_raw((compressed_wire(OP.BINARY, exact .. "\0")))
      c:expect_failure(1009)
    end)

    -- The limit is on the message: incompressible data grows a little when
    -- deflated, and a message of exactly the limit must still pass, whole or
    -- fragmented; its compressed size may pass the limit by at most 1/8.
    it("accepts an incompressible message of exactly --max-message-size (1 MiB) whose " ..
      "compressed form is larger, whole and fragmented; 1 MiB + 1 is 1009", function()
      local c = open("permessage-deflate", small)
      assert(accepted(c))
      local f = assert(io.open("/dev/urandom", "rb"))
      local exact = f:read(MiB)
      f:close()
      local wire, z = compressed_wire(OP.BINARY, exact)
      assert.is_true(#z > MiB, "the compressed form is " .. #z .. " bytes")
      c:send_raw(wire)
      expect_same(exact, recv_message(c).data)
      c:send_raw((compressed_wire(OP.BINARY, exact, { frag = 65536 })))
      expect_same(exact, recv_message(c).data)
      c:send_raw((compressed_wire(OP.BINARY, exact .. "x")))
      c:expect_failure(1009)
      -- past the bound on compressed bytes: refused from the frame header
      local d = open("permessage-deflate", small)
      assert(accepted(d))
      d:send_raw(rawws.build_frame { opcode = OP.BINARY, rsv1 = true,
        payload = string.rep("\0", MiB + MiB / 8 + 65) })
      d:expect_failure(1009)
    end)

    it("a deflate bomb (20 MiB of zeros in ~20 KB) against a 1 MiB maximum: 1009 at once, " ..
      "server RSS grows by less than 16 MiB over 40 bombs", function()
      local bomb = zlib.deflate(string.rep("\0", 20 * MiB), { level = 9 })
      assert.is_true(#bomb < 25000, "bomb is " .. #bomb .. " bytes")
      -- warm up: one connection with a 1 MiB compressed echo, so the
      -- baseline includes the buffers every large message needs
      local w = open("permessage-deflate", small)
      local warm = payload("text", MiB)
      w:send_raw((compressed_wire(OP.TEXT, warm)))
      expect_same(warm, recv_message(w).data)
      w:close_socket()
      local before = proc.status_kb(small.pid, "VmRSS")
      local peak = 0
      for i = 1, 20 do
        for _, opcode in ipairs({ OP.BINARY, OP.TEXT }) do
          local c = open("permessage-deflate", small)
          assert(accepted(c))
          c:send_frame { opcode = opcode, rsv1 = true, payload = bomb }
          local t0 = clock()
          c:expect_failure(1009, 5)
          assert.is_true(clock() - t0 < 2, "bomb " .. i .. " took long")
        end
        local rss = proc.status_kb(small.pid, "VmRSS")
        if rss > peak then peak = rss end
      end
      local after = proc.status_kb(small.pid, "VmRSS")
      io.stderr:write(string.format(
        "\n[deflate bomb x40, max 1 MiB] RSS before %d kB, peak sampled %d kB, after %d kB, " ..
        "VmHWM %d kB\n", before, peak, after, proc.status_kb(small.pid, "VmHWM")))
      if not SANITIZED then
        assert.is_true(peak - before < 16 * 1024, string.format(
          "RSS grew from %d kB to %d kB during the bombs", before, peak))
      end
      -- the server still serves compressed traffic
      local c = open("permessage-deflate", small)
      compressed_round_trip(c, 15)
    end)

    it("a deflate bomb fragmented in 1 KB pieces is stopped with 1009 too", function()
      local bomb = zlib.deflate(string.rep("\0", 20 * MiB), { level = 9 })
      local c = open("permessage-deflate", small)
      assert(accepted(c))
      c:send_raw((compressed_wire(OP.BINARY, nil, { raw = bomb, frag = 1000 })))
      c:expect_failure(1009, 5)
    end)

    -- Fail fast, as for uncompressed messages: a compressed message is
    -- failed once what has come of it cannot become valid, without its
    -- last fragment.
    local function first_fragments(opcode, z, size)
      local wire, i = {}, 1
      while i <= #z do
        wire[#wire + 1] = rawws.build_frame { opcode = i == 1 and opcode or OP.CONTINUATION,
          payload = z:sub(i, i + size - 1), fin = false, rsv1 = i == 1 }
        i = i + size
      end
      return table.concat(wire)
    end

    it("fails fast: a compressed text whose first fragments inflate to invalid UTF-8 gets " ..
      "1007 before its last fragment", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local z = zlib.deflate(string.rep("fine ", 100) .. "\255" .. string.rep("more ", 100))
      c:send_raw(first_fragments(OP.TEXT, z, 100))
      c:expect_failure(1007, 3)
    end)

    -- Each fragment deflated on its own (sync-flushed): the first is valid,
    -- the second, a few bytes, carries a UTF-16 surrogate.
    it("fails fast: a small later fragment of a compressed text that inflates to invalid " ..
      "UTF-8 gets 1007 before the last fragment", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local first, second = zlib.deflate_fragments({ string.rep("hello ", 300), "\237\160\128" })
      c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = first, fin = false, rsv1 = true } ..
        rawws.build_frame { opcode = OP.CONTINUATION, payload = second, fin = false })
      c:expect_failure(1007, 3)
    end)

    it("fails fast: invalid deflate data in a first fragment gets 1007 before the last one",
      function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      c:send_raw(first_fragments(OP.BINARY, "\255\255\255\255", 4))
      c:expect_failure(1007, 3)
    end)

    -- After a final block (BFINAL), only the empty stored block's start may
    -- follow (RFC 7692 §7.2.3.3): anything else fails the message at once.
    it("fails fast: bytes after a final block in a first fragment get 1007 before the last one",
      function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      c:send_raw(rawws.build_frame { opcode = OP.BINARY, rsv1 = true, fin = false,
        payload = zlib.deflate("hello", { finish = true }) .. "\1\2\3" })
      c:expect_failure(1007, 3)
    end)

    it("a final block, then the empty block's start split over fragments, is echoed", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local z = zlib.deflate("hello", { finish = true })
      c:send_raw(rawws.build_frame { opcode = OP.TEXT, rsv1 = true, fin = false, payload = z .. "\0\0" } ..
        rawws.build_frame { opcode = OP.CONTINUATION, fin = false, payload = "\0" } ..
        rawws.build_frame { opcode = OP.CONTINUATION, payload = "\255\255" })
      expect_same("hello", recv_message(c).data)
    end)

    it("fails fast: fragments that already inflate past --max-message-size get 1009 " ..
      "before the last one", function()
      local c = open("permessage-deflate", small)
      assert(accepted(c))
      local bomb = zlib.deflate(string.rep("\0", 8 * MiB), { level = 9 })
      c:send_raw(first_fragments(OP.BINARY, bomb, 1000))
      c:expect_failure(1009, 3)
    end)

    it("a compressed text split inside a character across fragments is echoed whole", function()
      local c = open("permessage-deflate")
      assert(accepted(c))
      local msg = string.rep("κόσμε 😀 ", 3000)
      c:send_raw((compressed_wire(OP.TEXT, msg, { frag = 333 })))
      expect_same(msg, recv_message(c).data)
    end)

    -- A compressed message the app is not waiting for is kept as it came
    -- and inflated when the app takes it: 16 KB of zeros on the wire must
    -- not hold 16 MiB on the server for every connection.
    it("keeps compressed messages compressed until a busy app takes them (RSS), then " ..
      "delivers them whole", function()
      local N, EACH = 8, 3
      local zeros = zlib.deflate(string.rep("\0", 15 * MiB), { level = 9 })
      assert.is_true(#zeros < 64 * KiB)
      local conns = {}
      for i = 1, N do
        conns[i] = late(3, 20)
      end
      local before = proc.status_kb(s.pid, "VmRSS")
      for _, c in ipairs(conns) do
        for _ = 1, EACH do c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = zeros } end
      end
      -- the frames are in; the app sleeps on
      require("socket").sleep(1)
      local held = proc.status_kb(s.pid, "VmRSS") - before
      io.stderr:write(string.format("\n[busy app] %d connections x %d compressed messages of %d B " ..
        "(15 MiB inflated each): RSS +%d kB while the app has not taken them\n", N, EACH, #zeros, held))
      if not SANITIZED then
        assert.is_true(held < 32 * 1024, "RSS grew by " .. held .. " kB: messages were inflated ahead")
      end
      -- Taken one at a time, each is whole.
      for _, c in ipairs(conns) do
        for _ = 1, EACH do
          assert.equal(string.format("%d binary 0", 15 * MiB), (c:recv_message(20)))
        end
      end
    end)

    it("a compressed message the app was not waiting for that does not inflate fails the " ..
      "connection with 1007 when the app takes it; the messages before it are delivered", function()
      local c = late(0.5)
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate("first") }
      c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = "\255\255\255\255" }
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate("after the bad one") }
      assert.equal("5 text 102", (c:recv_message(5)))
      c:expect_failure(1007, 5)
    end)

    it("compressed messages still unread when the client leaves are inflated when the app " ..
      "takes them after the end", function()
      local c = late(0.5)
      c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = zlib.deflate(string.rep("\7", 300001)) }
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate(string.rep("z", 4097)) }
      c:close(1000, "bye")
      c:close_socket()
      assert.truthy(s:wait_log("late got 300001 binary 7", 10), s:log())
      assert.truthy(s:wait_log("late got 4097 text 122", 5), s:log())
    end)

    it("a compressed message the app was not waiting for that does not inflate, then the " ..
      "client's close: 1007 (not the client's 1000); the messages before it are the app's, " ..
      "and its reply comes first", function()
      local c = late(0.5)
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate("first") }
      c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = "\255\255\255\255" }
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate("after") }
      c:close(1000, "bye")
      assert.equal("5 text 102", (c:recv_message(5)))
      c:expect_failure(1007, 5)
      assert.truthy(s:wait_log("late got 5 text 102", 5), s:log())
      require("socket").sleep(0.2)
      assert.is_nil(s:log():find("late got 5 text 97", 1, true), "a message after the bad one was delivered")
    end)

    -- The check at the close is bounded (4 MiB inflated): past that, a bad
    -- message is found when the app takes it (the answer to the close waits
    -- for the app to take the messages before it), and fails the
    -- connection then, with its code.
    it("a bad compressed message behind more than 4 MiB of good ones, then the client's close: " ..
      "the replies to the good ones, then 1007 when the app reaches the bad one", function()
      local c = late(0.5)
      local three = zlib.deflate(string.rep("t", 3 * MiB))
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = three }
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = three }
      c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = "\255\255\255\255" }
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate("after") }
      c:close(1000, "bye")
      assert.equal("3145728 text 116", (c:recv_message(10)))
      assert.equal("3145728 text 116", (c:recv_message(10)))
      c:expect_failure(1007, 5)
      -- (the log is the whole file's: look after this test's first line)
      local function ours()
        local log = s:log()
        local at = log:find("late got 3145728 text 116", 1, true)
        return at and log:sub(at)
      end
      assert.truthy(proc.poll(function()
        local log = ours()
        return log and log:find("late ended with", 1, true)
      end, 10), s:log())
      local log = ours()
      local _, got = log:gsub("late got 3145728 text 116", "")
      assert.equal(2, got, log)
      assert.matches("late ended with 1007", log)
      assert.is_nil(log:find("late got 5 text 97", 1, true), "a message after the bad one was delivered")
    end)

    it("a compressed message the app was not waiting for that does not inflate, then a " ..
      "protocol violation: 1007, the first failure", function()
      local c = late(0.3)
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate("first") }
      c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = "\255\255\255\255" }
      c:send_frame { opcode = 3, payload = "reserved opcode" }
      assert.equal("5 text 102", (c:recv_message(5)))
      c:expect_failure(1007, 5)
    end)

    it("a compressed text the app was not waiting for that is not UTF-8 fails with 1007 when " ..
      "taken", function()
      local c = late(0.3)
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate("ok \255 not utf-8") }
      c:expect_failure(1007, 5)
    end)

    it("a 64 MiB bomb against the default 16 MiB maximum: 1009", function()
      local bomb = zlib.deflate(string.rep("a", 64 * MiB), { level = 9 })
      local c = open("permessage-deflate")
      assert(accepted(c))
      local before = proc.status_kb(s.pid, "VmRSS")
      c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = bomb }
      c:expect_failure(1009, 10)
      local after = proc.status_kb(s.pid, "VmRSS")
      io.stderr:write(string.format(
        "\n[deflate bomb 64 MiB, max 16 MiB] RSS before %d kB, after %d kB, VmHWM %d kB\n",
        before, after, proc.status_kb(s.pid, "VmHWM")))
      if not SANITIZED then assert.is_true(after - before < 64 * 1024) end
    end)

    -- The runtime's inflate buffer must not keep the capacity of the largest
    -- message ever inflated (up to 2 x --max-message-size) after a bomb.
    it("releases the inflate buffer after a rejected bomb (RSS back within 8 MiB of the " ..
      "baseline after the next small compressed message)", function()
      if SANITIZED then
        pending("RSS is not the server's own memory under the sanitizer build")
        return
      end
      with_server({}, function(srv)
        local function conn()
          local c = rawws.connect(srv.port, "/ws",
            { headers = { { "Sec-WebSocket-Extensions", "permessage-deflate" } } })
          clients[#clients + 1] = c
          assert(accepted(c))
          return c
        end
        local c = conn()
        c:send_raw((compressed_wire(OP.TEXT, payload("text", 4 * KiB))))
        recv_message(c)
        local base = proc.status_kb(srv.pid, "VmRSS")
        c:send_frame { opcode = OP.BINARY, rsv1 = true,
          payload = zlib.deflate(string.rep("a", 64 * MiB), { level = 9 }) }
        c:expect_failure(1009, 10)
        local after_bomb = proc.status_kb(srv.pid, "VmRSS")
        local d = conn()
        for _ = 1, 3 do
          d:send_raw((compressed_wire(OP.TEXT, payload("text", 4 * KiB))))
          recv_message(d)
        end
        local after = proc.status_kb(srv.pid, "VmRSS")
        io.stderr:write(string.format("\n[inflate buffer] RSS baseline %d kB, after the bomb %d kB, " ..
          "after 3 small compressed messages %d kB\n", base, after_bomb, after))
        assert.is_true(after - base < 8 * 1024, string.format(
          "the inflate buffer was kept: RSS %d kB -> %d kB after a rejected bomb and 3 small " ..
          "messages (core/conn.c inflate_message: nx_buf_shrink_idle on a non-empty buffer)",
          base, after))
      end)
    end)
  end)
end)
