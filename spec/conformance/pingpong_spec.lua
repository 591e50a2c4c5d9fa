-- Autobahn TestSuite category 2 (pings/pongs), RFC 6455 §5.5.2/§5.5.3.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local OP = rawws.OP

local APP = "examples/echo/app.lua"

local function bytes_upto(n)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = string.char(i % 256) end
  return table.concat(t)
end

describe("conformance 2.x ping/pong", function()
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

  it("2.1 answers a ping without payload with an empty pong", function()
    local c = open()
    c:ping("")
    local f = c:expect_pong("")
    assert.equal(0, f.length)
  end)

  it("2.2 answers a ping with a small text payload with the same payload", function()
    local c = open()
    c:ping("Hello, world!")
    c:expect_pong("Hello, world!")
  end)

  it("2.3 answers a ping with a small binary payload with the same payload", function()
    local c = open()
    c:ping("\0\255\254\253\252\251\250\249")
    c:expect_pong("\0\255\254\253\252\251\250\249")
  end)

  it("2.4 answers a ping with a 125-byte payload with the same payload", function()
    local c = open()
    local p = bytes_upto(125)
    c:ping(p)
    c:expect_pong(p)
  end)

  it("2.5 fails a ping with a 126-byte payload with 1002 and no pong", function()
    local c = open()
    c:ping(string.rep("\254", 126))
    c:expect_failure(1002)
  end)

  it("2.5b fails a ping with a 64-bit encoded 200-byte payload with 1002", function()
    local c = open()
    c:ping(string.rep("x", 200), { length_form = "64" })
    c:expect_failure(1002)
  end)

  -- Lengths need not be minimal (as for data frames): what counts for a
  -- control frame is the payload's 125 bytes at most.
  it("2.5c answers a 5-byte ping sent with a non-minimal 16-bit length", function()
    local c = open()
    c:ping("ppppp", { length_form = "16" })
    c:expect_pong("ppppp")
  end)

  it("2.5d answers a 125-byte ping sent with a non-minimal 64-bit length", function()
    local c = open()
    local p = bytes_upto(125)
    c:ping(p, { length_form = "64" })
    c:expect_pong(p)
  end)

  it("2.6 answers a 125-byte ping written one byte per send()", function()
    local c = open()
    local p = bytes_upto(125)
    c:ping(p, { pieces = 1 })
    c:expect_pong(p)
  end)

  it("2.7 ignores an unsolicited empty pong", function()
    local c = open()
    c:pong("")
    c:expect_silence(0.3)
    c:send_text("still here")
    c:expect_echo("still here", OP.TEXT)
  end)

  it("2.8 ignores an unsolicited pong with payload", function()
    local c = open()
    c:pong("unsolicited pong payload")
    c:expect_silence(0.3)
    c:send_binary("\1\2\3")
    c:expect_echo("\1\2\3", OP.BINARY)
  end)

  it("2.9 answers a ping after an unsolicited pong with the ping's payload", function()
    local c = open()
    c:pong("unsolicited pong payload")
    c:ping("my ping payload")
    c:expect_pong("my ping payload")
    c:expect_silence(0.2)
  end)

  it("2.10 answers 10 pings sent in one segment with 10 pongs in order", function()
    local c = open()
    local bytes = {}
    for i = 1, 10 do
      bytes[i] = rawws.build_frame { opcode = OP.PING, payload = "payload-" .. i }
    end
    c:send_raw(table.concat(bytes))
    for i = 1, 10 do c:expect_pong("payload-" .. i) end
  end)

  it("2.11 answers 10 pings written one byte per send() with 10 pongs in order", function()
    local c = open()
    for i = 1, 10 do c:ping("payload-" .. i, { pieces = 1 }) end
    for i = 1, 10 do c:expect_pong("payload-" .. i) end
  end)

  it("answers a ping sent between two text messages " ..
    "(pong may overtake the echoes, echoes stay ordered)",
    function()
    local c = open()
    c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "first" } ..
      rawws.build_frame { opcode = OP.PING, payload = "second" } ..
      rawws.build_frame { opcode = OP.TEXT, payload = "third" })
    local data, pongs = {}, {}
    for _ = 1, 3 do
      local f, _, detail = c:recv_frame()
      assert(f, detail)
      rawws.check_server_frame(f, 1)
      assert.is_true(f.fin)
      if f.opcode == OP.PONG then pongs[#pongs + 1] = f.payload
      else
        assert.equal(OP.TEXT, f.opcode)
        data[#data + 1] = f.payload
      end
    end
    assert.same({ "first", "third" }, data)
    assert.same({ "second" }, pongs)
    c:expect_silence(0.2)
  end)
end)
