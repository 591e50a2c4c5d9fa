-- A task that yields without waiting for anything (sleep(0), a sleep under
-- half a millisecond, receive{timeout = 0}, two tasks handing values
-- through Queues) must not hold the loop: between its rounds the server
-- polls its sockets, so handshakes, messages and signals are served while
-- it runs, as in asyncio (libuv 1.44 runs a timer due at once again and
-- again before polling; nexlua's own round of ready tasks did the same).
-- Real process, real sockets (spec/apps/yielding_app.lua).
local server = require "helpers.server"
local rawws = require "helpers.rawws"

describe("tasks that yield without waiting", function()
  for _, mode in ipairs({ "sleep0", "sleep01", "queues" }) do
    it(mode .. ": connections are served while the task runs, and SIGTERM ends the server", function()
      local s = server.start("spec/apps/yielding_app.lua", nil, { env = { NEXLUA_YIELD_MODE = mode } })
      finally(function() s:stop() end)
      local counts = {}
      for i = 1, 2 do
        local c = rawws.connect(s.port, "/count", { timeout = 3 })
        assert.equal(101, c.status, s:log())
        counts[i] = tonumber((assert(c:recv_message(3))))
        c:close_socket()
      end
      -- the task really runs, between the two connections too
      assert.is_true(counts[1] > 0 and counts[2] > counts[1], counts[1] .. ", " .. counts[2])
      assert.is_true(s:stop(), "the server did not exit within 5 s of SIGTERM; log:\n" .. s:log())
      assert.matches("SIGTERM received: shutting down", s:log())
    end)
  end

  it("receive{timeout = 0} in a loop gets the client's message once it comes", function()
    local s = server.start("spec/apps/yielding_app.lua")
    finally(function() s:stop() end)
    local c = rawws.connect(s.port, "/poll", { timeout = 3 })
    assert.equal(101, c.status)
    c:send_text("hello")
    local data = assert(c:recv_message(3))
    assert.matches("^hello after %d+ polls$", data)
    c:close_socket()
  end)
end)
