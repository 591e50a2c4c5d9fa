-- Fairness between connections: one client's burst (here 40,000 small
-- messages, 240 KB, each some 30 microseconds of work) is taken a share per
-- loop turn, so another client's message is answered while the burst is
-- still being worked through, not after all of it. Order, not time, is
-- asserted: the probe's answer is the number of burst messages taken
-- before it. (spec/apps/fairness_app.lua)
local server = require "helpers.server"
local rawws = require "helpers.rawws"

local BURST = 40000

describe("fairness between connections", function()
  local s
  setup(function() s = server.start("spec/apps/fairness_app.lua") end)
  teardown(function() if s then s:stop() end end)

  it("a burst of 40,000 messages from one client does not keep another waiting for all of them",
    function()
    local flood = rawws.connect(s.port, "/count", { timeout = 30 })
    local probe = rawws.connect(s.port, "/probe", { timeout = 30 })
    assert.equal(101, flood.status)
    assert.equal(101, probe.status)
    probe:send_text("count?")
    assert.equal("0", (probe:recv_message(5)))
    local one = rawws.build_frame { opcode = rawws.OP.TEXT, payload = "hi" }
    flood:send_raw(string.rep(one, BURST))
    probe:send_text("count?")
    local seen = tonumber((probe:recv_message(30)))
    -- Held after 1,024 messages a turn, the burst lets the probe in within
    -- a turn or two of its arrival; read whole, it would first be worked
    -- through as far as it had come (tens of thousands).
    assert.is_true(seen <= 4 * 1024, string.format("the probe waited for %d of the %d messages", seen, BURST))
    -- and the burst is all taken in the end
    local last
    for _ = 1, 600 do
      probe:send_text("count?")
      last = tonumber((probe:recv_message(30)))
      if last == BURST then break end
      require("socket").sleep(0.05)
    end
    assert.equal(BURST, last)
    flood:close_socket()
    probe:close_socket()
    assert.is_true(s:alive(), s:log())
  end)
end)
