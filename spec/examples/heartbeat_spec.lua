-- examples/heartbeat/app.lua: the reference's heartbeat loop (/ws) and the
-- core's protocol-level heartbeat (/core).
local ffi = require "ffi"
local clock = require "helpers.clock"
local TestClient = require "nexlua.testing"
local testing = TestClient

ffi.cdef [[ int setenv(const char *name, const char *value, int overwrite); ]]

describe("examples/heartbeat", function()
  local app, client

  before_each(function()
    -- The /core route reads its options when the app is loaded.
    ffi.C.setenv("HEARTBEAT_PING_INTERVAL", "0.1", 1)
    ffi.C.setenv("HEARTBEAT_PING_TIMEOUT", "0.2", 1)
    app = dofile("examples/heartbeat/app.lua")
    app.heartbeat.receive_timeout = 0.1
    app.heartbeat.idle_timeout = 0.3
    client = TestClient(app)
  end)

  after_each(function() client:close() end)

  -- The next text that is not the server's own "ping" (it pings every 0.1 s
  -- of silence, which a slow machine may hit between two steps of a test).
  local function reply(ws)
    local m
    repeat m = ws:receive_text() until m ~= "ping"
    return m
  end

  describe("/ws (the app's loop)", function()
    it("answers ping with pong and echoes other text", function()
      local ws = client:websocket_connect("/ws")
      ws:send_text("ping")
      assert.equal("pong", reply(ws))
      ws:send_text("hello")
      assert.equal("echo: hello", reply(ws))
    end)

    it("pings a quiet client, then closes 1000 'Timeout' once it has been silent too long", function()
      local start = clock()
      local ws = client:websocket_connect("/ws")
      local pings = 0
      local ok, err = pcall(function()
        while true do
          assert.equal("ping", ws:receive_text(2))
          pings = pings + 1
        end
      end)
      assert.is_false(ok)
      assert.is_true(require("nexlua").is_disconnect(err), tostring(err))
      local elapsed = clock() - start
      assert.equal(1000, ws.close_code)
      assert.equal("Timeout", ws.close_reason)
      assert.is_true(pings >= 2 and pings <= 4, "pings: " .. pings) -- every 0.1 s for 0.3 s
      assert.is_true(elapsed >= 0.28 and elapsed < 2, "closed after " .. elapsed .. " s")
      assert.is_true(testing.wait_until(function() return next(app.active) == nil end, 1)) -- cleaned up
    end)

    it("keeps a client that pings open", function()
      local ws = client:websocket_connect("/ws")
      local deadline = clock() + 0.6 -- twice idle_timeout
      while clock() < deadline do
        ws:send_text("ping")
        assert.equal("pong", reply(ws))
        client.run_for(0.05)
      end
      assert.equal("open", ws:state())
      ws:send_text("still here")
      assert.equal("echo: still here", reply(ws))
    end)

    it("keeps a client that answers the server's pings with pong open", function()
      local ws = client:websocket_connect("/ws")
      for _ = 1, 5 do -- 5 x 0.1 s > idle_timeout
        assert.equal("ping", ws:receive_text(2))
        ws:send_text("pong")
      end
      assert.equal("open", ws:state())
    end)

    it("cleans up when the client leaves", function()
      local ws = client:websocket_connect("/ws")
      ws:send_text("hi")
      assert.equal("echo: hi", reply(ws))
      assert.is_not_nil(next(app.active))
      ws:close()
      assert.is_true(testing.wait_until(function() return next(app.active) == nil end, 1))
    end)
  end)

  describe("/core (ping_interval / ping_timeout route options)", function()
    it("keeps a client that answers Ping frames open (the TestClient does)", function()
      local ws = client:websocket_connect("/core")
      client.run_for(0.6) -- several ping intervals and ping timeouts
      assert.equal("open", ws:state())
      ws:send_text("hi")
      assert.equal("echo: hi", ws:receive_text())
    end)

    it("closes a client that never answers with 1011 (real server, raw client)", function()
      local server = require "helpers.server"
      local rawws = require "helpers.rawws"
      local s = server.start("examples/heartbeat/app.lua", {},
        { env = { HEARTBEAT_PING_INTERVAL = "0.1", HEARTBEAT_PING_TIMEOUT = "0.2" } })
      local ok, err = pcall(function()
        local c = rawws.connect(s.port, "/core")
        assert.equal(101, c.status)
        local code = c:expect_close(3) -- skips (and never answers) the Ping frames
        assert.equal(1011, code)
        local pinged = false
        for _, f in ipairs(c.skipped) do
          if f.opcode == rawws.OP.PING then pinged = true end
        end
        assert.is_true(pinged, "no Ping frame before the close")
        c:close_socket()
      end)
      s:stop()
      assert(ok, err)
    end)
  end)
end)
