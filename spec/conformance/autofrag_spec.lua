-- Autobahn TestSuite category 10 (auto-fragmentation): the client fragments a
-- message with a fixed (or arbitrary) fragment size; the server must reassemble
-- it and echo it as one message (one frame, per the nexlua contract), whatever
-- the fragment boundaries -- including boundaries inside UTF-8 code points.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local OP = rawws.OP

local APP = "examples/echo/app.lua"

-- 9-byte unit containing 2-, 3- and 4-byte code points: odd fragment sizes
-- split code points at every possible offset.
local TEXT_UNIT = "a\206\186\226\130\172\240\159\152"
local function text_payload(n_units)
  return string.rep(TEXT_UNIT .. "\128", n_units) -- unit + final byte of U+1F600 = 10 bytes
end

local function binary_payload(n)
  local t = {}
  for i = 1, 256 do t[i] = string.char((i * 31 + 17) % 256) end
  return string.rep(table.concat(t), math.ceil(n / 256)):sub(1, n)
end

-- Fragment `p` into frames.  `sizes` is a fragment size or a function
-- returning the next size; frame_opts is merged into every frame.
local function autofrag(opcode, p, sizes, frame_opts)
  local wire = {}
  local i, k = 1, 0
  repeat
    k = k + 1
    local size = type(sizes) == "function" and sizes(k) or sizes
    local last = i + size > #p
    local o = { opcode = k == 1 and opcode or OP.CONTINUATION,
      payload = p:sub(i, i + size - 1), fin = last }
    for key, v in pairs(frame_opts or {}) do o[key] = v end
    wire[#wire + 1] = rawws.build_frame(o)
    i = i + size
  until last
  return wire
end

-- deterministic LCG so failures are reproducible
local function lcg(seed)
  local state = seed
  return function(lo, hi)
    state = (state * 1103515245 + 12345) % 2147483648
    return lo + state % (hi - lo + 1)
  end
end

describe("conformance 10.x auto-fragmentation", function()
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

  it("10.1.1 echoes a 65536-byte text message auto-fragmented at 1300 bytes", function()
    local c = open()
    local p = string.rep("*", 65536)
    c:send_raw(table.concat(autofrag(OP.TEXT, p, 1300)))
    c:expect_echo(p, OP.TEXT)
  end)

  it("10.1.2 echoes a 65536-byte binary message auto-fragmented at 1300 bytes", function()
    local c = open()
    local p = binary_payload(65536)
    c:send_raw(table.concat(autofrag(OP.BINARY, p, 1300)))
    c:expect_echo(p, OP.BINARY)
  end)

  for _, size in ipairs({ 1, 2, 3, 5, 7, 125, 126, 127, 1300, 65535 }) do
    it(string.format("echoes a multi-byte UTF-8 text message auto-fragmented at %d bytes", size),
      function()
      local c = open()
      local p = text_payload(size <= 7 and 100 or 10000)
      c:send_raw(table.concat(autofrag(OP.TEXT, p, size)))
      c:expect_echo(p, OP.TEXT, 10)
    end)
  end

  it("echoes text fragments that each use a non-minimal 64-bit length", function()
    local c = open()
    local p = text_payload(200)
    c:send_raw(table.concat(autofrag(OP.TEXT, p, 97, { length_form = "64" })))
    c:expect_echo(p, OP.TEXT)
  end)

  it("echoes binary fragments that each use a non-minimal 16-bit length", function()
    local c = open()
    local p = binary_payload(3000)
    c:send_raw(table.concat(autofrag(OP.BINARY, p, 100, { length_form = "16" })))
    c:expect_echo(p, OP.BINARY)
  end)

  it("echoes a text message auto-fragmented at random sizes (0..300, incl. empty fragments)",
    function()
    local c = open()
    local rnd = lcg(12345)
    local p = text_payload(3000)
    c:send_raw(table.concat(autofrag(OP.TEXT, p, function() return rnd(0, 300) end)))
    c:expect_echo(p, OP.TEXT)
  end)

  it("echoes 20 random-fragmented messages back to back in one segment, in order", function()
    local c = open()
    local rnd = lcg(777)
    local wire, expected = {}, {}
    for m = 1, 20 do
      local binary = m % 2 == 0
      local p = binary and binary_payload(rnd(0, 5000)) or text_payload(rnd(0, 400))
      expected[m] = { p, binary and OP.BINARY or OP.TEXT }
      for _, f in ipairs(autofrag(expected[m][2], p, function() return rnd(1, 700) end)) do
        wire[#wire + 1] = f
      end
    end
    c:send_raw(table.concat(wire))
    for m = 1, 20 do c:expect_echo(expected[m][1], expected[m][2]) end
  end)

  it("echoes an auto-fragmented text message whose frames are written in random-size send() pieces",
    function()
    local c = open()
    local rnd = lcg(4242)
    local p = text_payload(2000)
    local bytes = table.concat(autofrag(OP.TEXT, p, 333))
    local i = 1
    while i <= #bytes do
      local n = rnd(1, 50)
      assert.is_true(c:send_raw(bytes:sub(i, i + n - 1)))
      i = i + n
    end
    c:expect_echo(p, OP.TEXT)
  end)

  it("echoes an auto-fragmented binary message with a ping after every fragment, pongs first",
    function()
    local c = open()
    local p = binary_payload(5000)
    local frames = autofrag(OP.BINARY, p, 1000)
    local wire = {}
    for k, f in ipairs(frames) do
      wire[#wire + 1] = f
      if k < #frames then
        wire[#wire + 1] = rawws.build_frame { opcode = OP.PING, payload = "ping " .. k }
      end
    end
    c:send_raw(table.concat(wire))
    for k = 1, #frames - 1 do c:expect_pong("ping " .. k) end
    c:expect_echo(p, OP.BINARY)
  end)

  it("fails an auto-fragmented text message with one invalid byte in a middle fragment with 1007",
    function()
    local c = open()
    local p = text_payload(500)
    local bad = p:sub(1, 2500) .. "\255" .. p:sub(2502)
    c:send_raw(table.concat(autofrag(OP.TEXT, bad, 128)))
    c:expect_failure(1007)
  end)
end)
