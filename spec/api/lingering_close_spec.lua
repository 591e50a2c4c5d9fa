-- A lingering close: when the server fails a connection (here: a message
-- over the size limit, or a protocol error) or refuses a handshake while the
-- client may still be sending, its close frame or HTTP response is followed
-- by its FIN, and what the client still sends is read and dropped until the
-- client closes too, goes quiet (0.25 s), or --close-timeout passes. Closing
-- the socket at once would answer the client's next bytes with a reset, and
-- a client still writing (Node's ws, with a large message) then saw its
-- write fail and reported 1006 instead of the server's 1009.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local proc = require "helpers.proc"
local clock = require "helpers.clock"
local socket = require "socket"

describe("lingering close", function()
  local s
  before_each(function()
    s = server.start("examples/echo/app.lua", { "--max-message-size", "1000", "--close-timeout", "2" })
  end)
  after_each(function() s:stop() end)

  it("a Node ws client still writing a message over the limit reads close 1009, every time", function()
    for _, size in ipairs({ 2000000, 8000000, 2000000, 8000000, 20000000, 8000000 }) do
      local code, out, err = proc.run({ "node", "spec/api/too_big_client.js",
        "ws://127.0.0.1:" .. s.port .. "/ws", tostring(size), "binary" }, 30)
      assert.equal(0, code, out .. err)
      assert.equal("close 1009 message too big", out:match("[^\n]*"), size .. " bytes: " .. out .. err)
    end
    assert.is_true(s:alive())
  end)

  it("after failing a connection, the server reads on until the client is done, then closes", function()
    local c = rawws.connect(s.port, "/ws")
    c:send_frame({ opcode = 0x3, payload = "x" }) -- reserved opcode: fail with 1002
    local code = c:expect_close(3)
    assert.equal(1002, code)
    -- Our FIN came with the close frame; the client's writes are still taken
    -- (a socket already closed would answer them with a reset).
    assert.is_true((c:wait_tcp_close(3)), "no FIN after the close frame")
    for _ = 1, 5 do
      local ok, e = c:send_raw(string.rep("z", 65536))
      assert.is_true(ok, "a write after the close frame failed: " .. tostring(e))
      socket.sleep(0.05)
    end
    c:close_socket()
    assert.is_true(s:alive())
  end)

  it("a client that goes quiet is let go at once; one that never stops, at the close timeout", function()
    local function ended_within(c, limit)
      -- the server's socket is gone once a write gets a reset
      local t0 = clock()
      while clock() - t0 < limit do
        local ok = c:send_raw("ping me")
        if not ok then return clock() - t0 end
        socket.sleep(0.1)
      end
      return nil
    end
    local quiet = rawws.connect(s.port, "/ws")
    quiet:send_frame({ opcode = 0x3, payload = "x" })
    assert.equal(1002, (quiet:expect_close(3)))
    socket.sleep(0.6) -- quiet for longer than 0.25 s: the server has closed
    assert.is_not_nil(ended_within(quiet, 1), "the server kept a quiet client's socket open")
    quiet:close_socket()

    local chatty = rawws.connect(s.port, "/ws")
    chatty:send_frame({ opcode = 0x3, payload = "x" })
    assert.equal(1002, (chatty:expect_close(3)))
    local t0 = clock()
    -- writing every 0.1 s, it is dropped at the close timeout (2 s), not before
    local took = ended_within(chatty, 6)
    assert.is_not_nil(took, "a client that never stops was never dropped")
    assert.is_true(clock() - t0 >= 1.5, "dropped after " .. (clock() - t0) .. " s, before the close timeout")
    chatty:close_socket()
  end)

  it("a request whose headers are too large gets its 431 whole while the client is still sending", function()
    local c = rawws.open_tcp(s.port)
    local head = "GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: " .. string.rep("a", 200000) .. "\r\n\r\n"
    c:send_raw(head) -- far over the limit: the answer comes while this is still being written
    assert.equal(431, (c:read_http_response(3)))
    c:close_socket()
  end)
end)
