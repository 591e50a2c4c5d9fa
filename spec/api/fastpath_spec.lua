-- The FFI fast path of receive and send (lua/nexlua/private/fastpath.lua,
-- nx_ffi_take / nx_ffi_send in core/lua_conn.c) against the Lua C API path
-- (NEXLUA_NO_FFI=1): the same messages, errors and waits either way.
-- (spec/apps/fastpath_app.lua)
local rawws = require "helpers.rawws"
local server = require "helpers.server"

local OP = rawws.OP

for _, mode in ipairs({ { name = "with the FFI fast path", ffi = true },
                        { name = "with the C API only (NEXLUA_NO_FFI=1)", ffi = false } }) do
  describe("receive and send " .. mode.name, function()
    local s

    setup(function()
      s = server.start("spec/apps/fastpath_app.lua", {}, { env = mode.ffi and {} or { NEXLUA_NO_FFI = "1" } })
    end)
    teardown(function() s:stop() end)

    it("uses the path it should", function()
      local c = rawws.connect(s.port, "/info")
      assert.equal("ffi=" .. tostring(mode.ffi), (c:recv_message()))
      c:close_socket()
    end)

    it("echoes text and binary, empty and large, in order", function()
      local c = rawws.connect(s.port, "/echo")
      local msgs = {
        { OP.TEXT, "hello" }, { OP.BINARY, "\0\1\2\255" }, { OP.TEXT, "" }, { OP.BINARY, "" },
        { OP.TEXT, string.rep("é", 40000) }, { OP.BINARY, string.rep("\0\255", 70000) },
      }
      for _, m in ipairs(msgs) do
        c:send_frame({ opcode = m[1], payload = m[2], fin = true })
      end
      for _, m in ipairs(msgs) do
        local data, op = c:recv_message()
        assert.equal(m[1], op)
        assert.equal(#m[2], #data)
        assert.is_true(data == m[2])
      end
      c:close_socket()
    end)

    it("raises the typed errors, and the connection goes on", function()
      local c = rawws.connect(s.port, "/typed")
      c:send_binary("b1")
      c:send_text("t2")
      c:send_text('{"n": 3}')
      assert.matches("^receive_text error .*expected a text message, received a binary message", (c:recv_message()))
      assert.equal("receive_bytes error", (c:recv_message()):match("^receive_bytes error"))
      assert.equal("receive_json json 3", (c:recv_message()))
      c:close_socket()
    end)

    it("refuses text that is not UTF-8, and a send after close", function()
      local w = rawws.connect(s.port, "/watch")
      assert.equal("watching", (w:recv_message()))
      local c = rawws.connect(s.port, "/send-errors")
      assert.matches("^utf8 false .*not valid UTF%-8", (c:recv_message()))
      c:send_text("close now")
      c:expect_close()
      assert.matches("^false .*cannot send after close", (w:recv_message()))
      c:close_socket()
      w:close_socket()
    end)

    it("sends received text back as it came, and still checks bytes that were not text", function()
      local c = rawws.connect(s.port, "/resend")
      c:send_text("h\195\169llo")
      local data, op = c:recv_message()
      assert.equal("h\195\169llo", data)
      assert.equal(OP.TEXT, op)
      c:send_binary("\255\254")
      assert.matches("^error .*not valid UTF%-8", (c:recv_message()))
      c:send_text("again")
      data, op = c:recv_message()
      assert.equal("again", data)
      assert.equal(OP.TEXT, op)
      c:send_binary("caf\195")
      assert.matches("^error .*not valid UTF%-8", (c:recv_message()))
      c:close_socket()
    end)

    it("a handler that outpaces its client waits past the high-water mark, and nothing is lost", function()
      local c = rawws.connect(s.port, "/flood?n=64")
      local socket = require "socket"
      socket.sleep(0.3) -- let the server fill the socket and wait
      for _ = 1, 64 do
        local data, op = c:recv_message()
        assert.equal(OP.BINARY, op)
        assert.equal(65536, #data)
      end
      assert.equal("done", (c:recv_message()))
      c:close_socket()
    end)
  end)
end
