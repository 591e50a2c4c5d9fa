-- nexlua.sleep, nexlua.now, nexlua.spawn and Task (issue #3), on the real
-- core in-process; task errors nobody waits for in a real process's log.
-- (spec/apps/tasks_app.lua)
local nexlua = require "nexlua"
local testing = require "nexlua.testing"
local server = require "helpers.server"
local rawws = require "helpers.rawws"

-- Runs fn in a nexlua task, stepping the loop until it ends (bounded);
-- returns fn's results or raises its error.
local function in_task(fn, timeout)
  local res
  nexlua.spawn(function() res = { n = 0, pcall(fn) } end)
  assert(testing.wait_until(function() return res ~= nil end, timeout or 3), "the task did not finish in time")
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end

describe("nexlua.sleep and nexlua.now", function()
  it("sleep suspends only the caller; now() follows the loop clock", function()
    local ticks = 0
    local ticker = nexlua.spawn(function()
      while true do
        ticks = ticks + 1
        nexlua.sleep(0.01)
      end
    end)
    local elapsed, now_type = in_task(function()
      local t0 = nexlua.now()
      nexlua.sleep(0.15)
      return nexlua.now() - t0, type(t0)
    end)
    ticker:cancel()
    assert.equal("number", now_type)
    assert.is_true(elapsed >= 0.14 and elapsed < 1, "slept " .. elapsed .. " s")
    assert.is_true(ticks >= 5, "the other task ran " .. ticks .. " times during the sleep")
  end)

  it("sleep lasts its time from the call, even after the task held the loop for longer", function()
    local clock = require "helpers.clock"
    local slept = in_task(function()
      local spin = clock() + 0.1 -- work in the task: the loop's cached clock falls behind
      while clock() < spin do end
      local t0 = clock()
      nexlua.sleep(0.05)
      return clock() - t0
    end)
    assert.is_true(slept >= 0.045, "sleep(0.05) returned after " .. slept .. " s")
  end)

  it("sleep outside a nexlua coroutine raises an error that says so", function()
    local ok, err = pcall(nexlua.sleep, 0.01)
    assert.is_false(ok)
    assert.matches("must be called from a nexlua coroutine", tostring(err), 1, true)
    -- at the caller's line, not inside nexlua's own modules
    assert.matches("^[^\n]*tasks_spec%.lua:%d+: ", tostring(err))
  end)
end)

describe("nexlua.spawn and Task", function()
  it("runs fn(...) from the next loop turn and wait() returns its results", function()
    local ran = false
    local t = nexlua.spawn(function(a, b, c)
      ran = true
      nexlua.sleep(0.01)
      return a + b, nil, c
    end, 1, 2, "three")
    assert.is_false(ran, "spawn ran the function at once")
    assert.is_false(t:done())
    local r = { in_task(function() return t:wait() end) }
    assert.is_true(ran)
    assert.is_true(t:done())
    assert.equal(3, r[1])
    assert.is_nil(r[2])
    assert.equal("three", r[3])
  end)

  it("wait(timeout) raises a TimeoutError and leaves the task running", function()
    local t = nexlua.spawn(function()
      nexlua.sleep(0.2)
      return "late"
    end)
    local ok, err, again = in_task(function()
      local ok, err = pcall(t.wait, t, 0.05)
      return ok, err, t:wait(2)
    end)
    assert.is_false(ok)
    assert.is_true(nexlua.is_timeout(err), "expected a TimeoutError, got " .. tostring(err))
    assert.equal("late", again)
  end)

  it("wait() re-raises the task's error, even when the task failed before anyone waited", function()
    local boom = setmetatable({}, { __tostring = function() return "the boom object" end })
    local t1 = nexlua.spawn(function() nexlua.sleep(0.02) error(boom) end)
    local t2 = nexlua.spawn(function() error("plain string failure") end)
    testing.wait_until(function() return t2:done() end, 2) -- t2 failed with no waiter
    local e1, e2 = in_task(function()
      local _, a = pcall(t1.wait, t1)
      local _, b = pcall(t2.wait, t2)
      return a, b
    end)
    assert.equal(boom, e1)
    assert.matches("plain string failure", e2, 1, true)
    assert.is_true(t1:done() and t2:done())
  end)

  it("cancel() makes the task's wait raise CancelledError and its waiters see it", function()
    local inside
    local t = nexlua.spawn(function()
      local ok, err = pcall(nexlua.sleep, 10)
      inside = { ok = ok, cancelled = nexlua.is_cancelled(err) }
      error(err, 0) -- let it end as cancelled
    end)
    testing.wait_until(function() return false end, 0.02) -- let it start sleeping
    local ok, err, took = in_task(function()
      local t0 = nexlua.now()
      nexlua.spawn(function() nexlua.sleep(0.02) assert(t:cancel() == true) end)
      local ok, err = pcall(t.wait, t, 3)
      return ok, err, nexlua.now() - t0
    end)
    assert.is_false(ok)
    assert.is_true(nexlua.is_cancelled(err), "expected CancelledError, got " .. tostring(err))
    assert.is_true(took < 1, "wait took " .. took .. " s")
    assert.same({ ok = false, cancelled = true }, inside)
    assert.is_true(t:done())
    assert.is_true(t:cancelled())
    assert.is_false(t:cancel(), "cancel() of an ended task must return false")
  end)

  it("a cancelled task's wait raises CancelledError even when nobody waited before", function()
    local t = nexlua.spawn(function() nexlua.sleep(10) end)
    testing.wait_until(function() return false end, 0.02)
    assert.is_true(t:cancel())
    assert.is_true(testing.wait_until(function() return t:done() end, 2))
    local ok, err = in_task(function() return pcall(t.wait, t) end)
    assert.is_false(ok)
    assert.is_true(nexlua.is_cancelled(err))
  end)
end)

-- A timeout under half a millisecond is a real wait that ends at the end
-- of the next round: what wakes the task first (a cancel, a task that was
-- ready, a putter) still ends it (see also spec/api/yielding_spec.lua).
describe("zero timeouts", function()
  it("a task cancelled while in sleep(0) ends cancelled", function()
    local status, ok = in_task(function()
      local t = nexlua.spawn(function()
        nexlua.sleep(0)
        return "finished normally"
      end)
      nexlua.sleep(0) -- t is in its sleep(0) now
      assert.is_true(t:cancel())
      local ok = pcall(t.wait, t)
      return t.status, ok
    end)
    assert.equal("cancelled", status)
    assert.is_false(ok)
  end)

  it("Task:wait(0), wait_for(fn, 0) and Queue:get(0) take what a ready task gives", function()
    local a, b, c = in_task(function()
      local t = nexlua.spawn(function() return 42 end)
      local r1 = t:wait(0)
      local r2 = nexlua.wait_for(function() return "r" end, 0)
      local q = nexlua.Queue()
      nexlua.spawn(function() q:put("item") end)
      local r3 = q:get(0)
      return r1, r2, r3
    end)
    assert.equal(42, a)
    assert.equal("r", b)
    assert.equal("item", c)
  end)

  it("sleep(0) returns, and a zero wait with nothing to wake it times out", function()
    local slept, timed_out = in_task(function()
      nexlua.sleep(0)
      local q = nexlua.Queue()
      local ok, err = pcall(q.get, q, 0)
      return true, not ok and nexlua.is_timeout(err)
    end)
    assert.is_true(slept)
    assert.is_true(timed_out)
  end)
end)

describe("task errors in a real process", function()
  local s
  setup(function() s = server.start("spec/apps/tasks_app.lua") end)
  teardown(function() if s then s:stop() end end)

  it("an error in a task nobody waits for is logged with its traceback", function()
    local c = rawws.connect(s.port, "/orphan")
    assert.equal(101, c.status)
    assert.equal("spawned", (c:recv_message()))
    local line = s:wait_log("ERROR task [^\n]*tasks_app%.lua:%d+ failed: [^\n]*orphan task exploded", 3)
    assert.is_truthy(line, "log:\n" .. s:log())
    local log = s:log()
    local tb = log:sub((log:find("orphan task exploded", 1, true)))
    assert.matches("stack traceback:", tb, 1, true)
    assert.matches("in function 'inner_step'", tb, 1, true)
    c:close_socket()
  end)

  it("an error in a task someone waits for is re-raised there, not logged as lost", function()
    local before = #s:log()
    local c = rawws.connect(s.port, "/waited")
    assert.equal(101, c.status)
    assert.matches("^ok=false err=.*waited task exploded$", (c:recv_message()))
    c:close_socket()
    -- Had the error been logged, it would be there already: the task logs
    -- when it ends, before its waiter is resumed to send the message above.
    assert.is_nil(s:log():sub(before + 1):find("waited task exploded", 1, true), "log:\n" .. s:log())
  end)
end)

describe("a task's WebSocketDisconnect (real process, debug log)", function()
  local s
  setup(function() s = server.start("spec/apps/tasks_app.lua", { "--log-level", "debug" }) end)
  teardown(function() if s then s:stop() end end)

  it("of the connection it was spawned for ends it quietly, nested tasks too", function()
    local c = rawws.connect(s.port, "/ticker")
    assert.equal(101, c.status)
    local seen = {}
    while not (seen["tick"] and seen["nested tick"]) do seen[assert(c:recv_message())] = true end
    c:close_socket()
    -- Both tasks end at their next send, each with a DEBUG line.
    local pat = "DEBUG task [^\n]*tasks_app%.lua:%d+ ended: its connection's client left"
    assert.is_truthy(s:wait_log(pat .. ".*\n.*" .. pat, 3), "log:\n" .. s:log())
    assert.is_nil(s:log():find("ERROR", 1, true), "log:\n" .. s:log())
  end)

  it("of another connection is the app's bug: logged with its traceback", function()
    local a = rawws.connect(s.port, "/park")
    assert.equal("parked", (a:recv_message()))
    local b = rawws.connect(s.port, "/poke")
    assert.equal("poking", (b:recv_message()))
    assert.equal("poke", (a:recv_message()))
    a:close_socket()
    local line = s:wait_log("ERROR task [^\n]*tasks_app%.lua:%d+ failed: [^\n]*WebSocket disconnected", 3)
    assert.is_truthy(line, "log:\n" .. s:log())
    assert.matches("stack traceback:", s:log():sub((s:log():find("WebSocket disconnected", 1, true))), 1, true)
    b:close_socket()
  end)
end)

describe("tasks the core ends, and timeouts past what a timer holds", function()
  it("a task ended for a bare coroutine.yield() fails: wait() raises, status 'failed'", function()
    local t = nexlua.spawn(function() coroutine.yield() end)
    local ok, err = pcall(in_task, function() return t:wait(2) end)
    assert.is_false(ok)
    assert.matches("coroutine.yield%(%) called directly", tostring(err))
    assert.equal("failed", t.status)
    -- and wait_for on it gives its error, not a timeout
    ok, err = pcall(in_task, function() return nexlua.wait_for(function() coroutine.yield() end, 2) end)
    assert.is_false(ok)
    assert.matches("coroutine.yield%(%) called directly", tostring(err))
  end)

  it("sleep(math.huge), a huge receive or get timeout wait instead of firing at once", function()
    local q = nexlua.Queue()
    local slept, got = nexlua.spawn(function() nexlua.sleep(math.huge) end),
      nexlua.spawn(function() return q:get(2 ^ 70) end)
    local huge = nexlua.spawn(function() return q:get(1e300) end)
    testing.wait_until(function() return false end, 0.3) -- let them start waiting
    assert.equal("pending", slept.status)
    assert.equal("pending", got.status)
    assert.equal("pending", huge.status)
    q:put_nowait("a")
    q:put_nowait("b")
    assert.equal("a", in_task(function() return got:wait(2) end))
    assert.equal("b", in_task(function() return huge:wait(2) end))
    slept:cancel()
  end)

  it("a finished task leaves nothing behind: 5,000 spawned and waited for keep no memory", function()
    local function heap_kb()
      collectgarbage()
      collectgarbage()
      return collectgarbage("count")
    end
    in_task(function()
      for _ = 1, 100 do nexlua.spawn(function() return 1 end):wait() end
    end)
    local before = heap_kb()
    in_task(function()
      for _ = 1, 5000 do nexlua.spawn(function() return string.rep("r", 100) end):wait() end
    end, 10)
    local grown = heap_kb() - before
    assert.is_true(grown < 300, string.format("the Lua heap grew by %.0f KB", grown))
  end)
end)
