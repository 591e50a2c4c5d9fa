-- Autobahn TestSuite category 4 (opcodes), RFC 6455 §5.2: the reserved
-- non-control opcodes 3-7 and control opcodes 0xB-0xF fail the connection (1002).
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local OP = rawws.OP

local APP = "examples/echo/app.lua"

describe("conformance 4.x opcodes", function()
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

  local groups = {
    { "4.1 reserved non-control opcodes", { 3, 4, 5, 6, 7 } },
    { "4.2 reserved control opcodes", { 0xB, 0xC, 0xD, 0xE, 0xF } },
  }

  for g, group in ipairs(groups) do
    describe(group[1], function()
      for i, op in ipairs(group[2]) do
        it(string.format("4.%d.%d fails an empty frame with opcode 0x%X with 1002", g, i, op),
          function()
          local c = open()
          c:send_frame { opcode = op, payload = "" }
          c:expect_failure(1002)
        end)

        it(string.format("4.%d.%d fails a frame with opcode 0x%X and payload with 1002", g, i, op),
          function()
          local c = open()
          c:send_frame { opcode = op, payload = "reserved opcode payload" }
          c:expect_failure(1002)
        end)

        it(string.format("4.%d.%d echoes text, then fails opcode 0x%X with 1002; " ..
          "the following ping gets no pong", g, i, op),
          function()
          local c = open()
          c:send_text("Hello, world!")
          c:expect_echo("Hello, world!", OP.TEXT)
          c:send_frame { opcode = op, payload = "reserved" }
          c:ping("Hello, world!")
          c:expect_failure(1002)
        end)

        it(string.format("4.%d.%d fails opcode 0x%X with FIN=0 with 1002", g, i, op), function()
          local c = open()
          c:send_frame { opcode = op, payload = "x", fin = false }
          c:expect_failure(1002)
        end)
      end
    end)
  end

  it("fails a reserved opcode sent in one segment after a text and before a ping: " ..
    "the text's echo first, then 1002, no pong",
    function()
    local c = open()
    c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "Hello, world!" } ..
      rawws.build_frame { opcode = 5, payload = "reserved" } ..
      rawws.build_frame { opcode = OP.PING, payload = "Hello, world!" })
    c:expect_echo("Hello, world!", OP.TEXT)
    c:expect_failure(1002)
  end)

  it("fails a reserved opcode between the fragments of a text message with 1002 and no message",
    function()
    local c = open()
    c:send_frame { opcode = OP.TEXT, payload = "part1", fin = false }
    c:send_frame { opcode = 0xB, payload = "" }
    c:send_frame { opcode = OP.CONTINUATION, payload = "part2", fin = true }
    c:expect_failure(1002)
  end)
end)
