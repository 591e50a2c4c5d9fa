-- Autobahn TestSuite category 3 (reserved bits), RFC 6455 §5.2: with no
-- extension negotiated, any of RSV1-3 set fails the connection with 1002.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local OP = rawws.OP

local APP = "examples/echo/app.lua"

-- rsv value 1..7 as a bit field: 4 = RSV1, 2 = RSV2, 1 = RSV3
local function rsv(v)
  return { rsv1 = v >= 4, rsv2 = (v % 4) >= 2, rsv3 = (v % 2) == 1 }
end

local function frame(opcode, payload, rsvv, extra)
  local o = rsv(rsvv or 0)
  o.opcode = opcode
  o.payload = payload
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("conformance 3.x reserved bits", function()
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

  it("3.1 fails a small text message with RSV=1 (RSV3) with 1002 and no echo", function()
    local c = open()
    c:send_frame(frame(OP.TEXT, "Hello, world!", 1))
    c:expect_failure(1002)
  end)

  it("3.2 echoes a text message, then fails the next one with RSV=2 (RSV2); " ..
    "the following ping gets no pong",
    function()
    local c = open()
    c:send_text("Hello, world!")
    c:expect_echo("Hello, world!", OP.TEXT)
    c:send_frame(frame(OP.TEXT, "Hello, world!", 2))
    c:send_frame { opcode = OP.PING, payload = "after bad frame" }
    c:expect_failure(1002)
  end)

  -- Strict: the message before the bad frame is the app's, and its echo
  -- comes before the close, as from a server that reads frame by frame.
  it("3.3 same as 3.2 with RSV=3, all three frames in one segment: echo, then 1002, no pong",
    function()
    local c = open()
    c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "good" } ..
      rawws.build_frame(frame(OP.TEXT, "bad", 3)) ..
      rawws.build_frame { opcode = OP.PING, payload = "p" })
    c:expect_echo("good", OP.TEXT)
    c:expect_failure(1002)
  end)

  it("3.4 same as 3.2 with RSV=4 (RSV1), written one byte per send()", function()
    local c = open()
    c:send_frame { opcode = OP.TEXT, payload = "good", pieces = 1 }
    c:expect_echo("good", OP.TEXT)
    c:send_frame(frame(OP.TEXT, "bad", 4, { pieces = 1 }))
    c:send_frame { opcode = OP.PING, payload = "p", pieces = 1 }
    c:expect_failure(1002)
  end)

  it("3.5 fails a binary message with RSV=5 with 1002", function()
    local c = open()
    c:send_frame(frame(OP.BINARY, "\0\255\0\255\0\255", 5))
    c:expect_failure(1002)
  end)

  it("3.6 fails a ping with RSV=6 with 1002 and no pong", function()
    local c = open()
    c:send_frame(frame(OP.PING, "Hello, world!", 6))
    c:expect_failure(1002)
  end)

  it("3.7 fails a close with RSV=7 with 1002 (not an echo of 1000)", function()
    local c = open()
    c:send_frame(frame(OP.CLOSE, rawws.close_payload(1000, ""), 7))
    c:expect_failure(1002)
  end)

  it("fails a pong with RSV1 set with 1002", function()
    local c = open()
    c:send_frame(frame(OP.PONG, "", 4))
    c:expect_failure(1002)
  end)

  it("fails a continuation frame with RSV1 set with 1002 and no echo of the message", function()
    local c = open()
    c:send_frame { opcode = OP.TEXT, payload = "frag1", fin = false }
    c:send_frame(frame(OP.CONTINUATION, "frag2", 4, { fin = true }))
    c:expect_failure(1002)
  end)

  it("fails an empty text frame with RSV2 set with 1002", function()
    local c = open()
    c:send_frame(frame(OP.TEXT, "", 2))
    c:expect_failure(1002)
  end)
end)
