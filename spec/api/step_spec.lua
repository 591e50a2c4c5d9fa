-- core.step(timeout), the loop turn under TestClient's waits, returns within
-- its timeout even when the loop's cached clock is stale: a step timer that is
-- already due when the turn starts must not leave the poll to block until the
-- next other timer (a CI run once saw a 5 s receive timeout give up after
-- 20 s, the default ping interval).
local core = require "nexlua.core"
local clock = require "helpers.clock"

describe("core.step", function()
  it("returns within its timeout after the caller held the loop for longer than it", function()
    local woke = false
    local task = core.spawn(function()
      core.sleep(3)
      woke = true
    end)
    finally(function() core.cancel(task) end)
    core.step(0) -- the loop's clock is read here
    for _ = 1, 5 do
      local spin = clock() + 0.02 -- 20 ms of work in the caller, no loop turn
      while clock() < spin do end
      local t0 = clock()
      core.step(0.005)
      local took = clock() - t0
      assert.is_false(woke)
      assert.is_true(took < 1, "step(0.005) blocked for " .. took .. " s")
    end
  end)

end)
