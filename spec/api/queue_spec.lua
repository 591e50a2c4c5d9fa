-- nexlua.Queue{maxsize = n} (issue #3), on the real core in-process: put/get
-- wait, FIFO, put_nowait/get_nowait raise QueueFull/QueueEmpty, timeouts.
local nexlua = require "nexlua"
local testing = require "nexlua.testing"

local function in_task(fn, timeout)
  local res
  nexlua.spawn(function() res = { pcall(fn) } end)
  assert(testing.wait_until(function() return res ~= nil end, timeout or 3), "the task did not finish in time")
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end

describe("nexlua.Queue", function()
  it("is FIFO", function()
    local got = in_task(function()
      local q = nexlua.Queue { maxsize = 10 }
      for i = 1, 5 do q:put("item" .. i) end
      assert.equal(5, q:qsize())
      local out = {}
      for i = 1, 5 do out[i] = q:get() end
      assert.is_true(q:empty())
      return out
    end)
    assert.same({ "item1", "item2", "item3", "item4", "item5" }, got)
  end)

  it("get() on an empty queue waits until a put", function()
    local v, waited = in_task(function()
      local q = nexlua.Queue()
      nexlua.spawn(function()
        nexlua.sleep(0.1)
        q:put("late value")
      end)
      local t0 = nexlua.now()
      local v = q:get()
      return v, nexlua.now() - t0
    end)
    assert.equal("late value", v)
    assert.is_true(waited >= 0.09 and waited < 1, "waited " .. waited .. " s")
  end)

  it("put() on a full queue waits until a get", function()
    local events = in_task(function()
      local q = nexlua.Queue { maxsize = 1 }
      local ev = {}
      q:put("a")
      assert.is_true(q:full())
      local putter = nexlua.spawn(function()
        ev[#ev + 1] = "put b starts"
        q:put("b")
        ev[#ev + 1] = "put b returned"
      end)
      nexlua.sleep(0.1)
      ev[#ev + 1] = "get " .. q:get()
      putter:wait(1)
      ev[#ev + 1] = "qsize " .. q:qsize()
      ev[#ev + 1] = "get " .. q:get()
      return ev
    end)
    assert.same({ "put b starts", "get a", "put b returned", "qsize 1", "get b" }, events)
  end)

  it("serves waiting getters in the order they came", function()
    local got = in_task(function()
      local q = nexlua.Queue()
      local out = {}
      local g1 = nexlua.spawn(function()
        local v = q:get()
        out[#out + 1] = "g1:" .. v
      end)
      nexlua.sleep(0.01)
      local g2 = nexlua.spawn(function()
        local v = q:get()
        out[#out + 1] = "g2:" .. v
      end)
      nexlua.sleep(0.01)
      q:put("x")
      q:put("y")
      g1:wait(1)
      g2:wait(1)
      return out
    end)
    assert.same({ "g1:x", "g2:y" }, got)
  end)

  it("put_nowait on a full queue raises QueueFull; get_nowait on an empty one raises QueueEmpty", function()
    -- these never wait: they work outside a coroutine too
    local q = nexlua.Queue { maxsize = 2 }
    q:put_nowait(1)
    q:put_nowait(2)
    local ok, err = pcall(q.put_nowait, q, 3)
    assert.is_false(ok)
    assert.is_true(nexlua.QueueFull.is(err), "expected QueueFull, got " .. tostring(err))
    assert.is_true(nexlua.is_error(err))
    assert.matches("queue is full", tostring(err), 1, true)
    assert.equal(2, q:qsize())
    assert.equal(1, q:get_nowait())
    assert.equal(2, q:get_nowait())
    ok, err = pcall(q.get_nowait, q)
    assert.is_false(ok)
    assert.is_true(nexlua.QueueEmpty.is(err), "expected QueueEmpty, got " .. tostring(err))
    assert.matches("queue is empty", tostring(err), 1, true)
  end)

  it("maxsize 0 (the default) is unbounded", function()
    local q = nexlua.Queue()
    for i = 1, 1000 do q:put_nowait(i) end
    assert.equal(1000, q:qsize())
    assert.is_false(q:full())
  end)

  it("get(timeout) and put(item, timeout) raise TimeoutError and leave the queue as it was", function()
    local r = in_task(function()
      local q = nexlua.Queue { maxsize = 1 }
      local out = {}
      local t0 = nexlua.now()
      local ok, err = pcall(q.get, q, 0.1)
      out.get = { ok = ok, timeout = nexlua.is_timeout(err), took = nexlua.now() - t0 }
      q:put("only")
      t0 = nexlua.now()
      ok, err = pcall(q.put, q, "extra", 0.1)
      out.put = { ok = ok, timeout = nexlua.is_timeout(err), took = nexlua.now() - t0 }
      out.size = q:qsize()
      out.item = q:get()
      return out
    end)
    for _, k in ipairs { "get", "put" } do
      assert.is_false(r[k].ok)
      assert.is_true(r[k].timeout, k .. " did not raise a TimeoutError")
      assert.is_true(r[k].took >= 0.09 and r[k].took < 1, k .. " took " .. r[k].took)
    end
    assert.equal(1, r.size)
    assert.equal("only", r.item)
  end)

  it("a getter cancelled while waiting does not swallow the next item", function()
    local r = in_task(function()
      local q = nexlua.Queue()
      local g = nexlua.spawn(function() return q:get() end)
      nexlua.sleep(0.02)
      g:cancel()
      local ok, err = pcall(g.wait, g, 1)
      q:put("kept")
      return { cancelled = not ok and nexlua.is_cancelled(err), size = q:qsize(), item = q:get(0.5) }
    end)
    assert.same({ cancelled = true, size = 1, item = "kept" }, r)
  end)

  -- A timeout is nil (no limit) or a number of seconds, 0 or more: a
  -- negative one waited forever, a string failed deep inside the waiting code.
  it("refuses bad timeouts, options and sizes at the call", function()
    in_task(function()
      local q = nexlua.Queue { maxsize = 1 }
      for _, t in ipairs({ -1, "x", 0 / 0 }) do
        local ok, err = pcall(q.get, q, t)
        assert.is_false(ok)
        assert.matches("Queue:get: the timeout must be a number of seconds, 0 or more", err)
      end
      q:put(1)
      local ok, err = pcall(q.put, q, 2, -1)
      assert.is_false(ok)
      assert.matches("Queue:put: the timeout must be", err)
      local t = nexlua.spawn(function() nexlua.sleep(1) end)
      ok, err = pcall(t.wait, t, -1)
      assert.is_false(ok)
      assert.matches("Task:wait: the timeout must be", err)
      t:cancel()
      for _, v in ipairs({ -1, "x" }) do
        ok, err = pcall(nexlua.sleep, v)
        assert.is_false(ok)
        assert.matches("nexlua.sleep: seconds must be a number, 0 or more", err)
      end
      ok, err = pcall(nexlua.sleep, "0.01")
      assert.is_false(ok)
      assert.matches('got the string "0.01"', err, 1, true)
    end)
    assert.has_error(function() nexlua.Queue { bogus = 1 } end, "Queue: unknown option bogus (it takes maxsize)")
    assert.has_error(function() nexlua.Queue { maxsize = 1.5 } end,
      "Queue: maxsize must be a whole number, 0 or more, got 1.5")
  end)
end)

describe("waiters in order (private/waitlist: O(1) add, leave and wake)", function()

  it("getters are served first come, first served; one that timed out is skipped", function()
    local q = nexlua.Queue()
    local got = {}
    for i = 1, 5 do
      nexlua.spawn(function()
        local ok, v = pcall(q.get, q, i == 2 and 0.05 or nil)
        got[#got + 1] = ok and (i .. "=" .. v) or (i .. " timed out")
      end)
    end
    testing.wait_until(function() return #got == 1 end, 2) -- getter 2 timed out
    assert.same({ "2 timed out" }, got)
    for v = 1, 4 do q:put_nowait("v" .. v) end
    testing.wait_until(function() return #got == 5 end, 2)
    assert.same({ "2 timed out", "1=v1", "3=v2", "4=v3", "5=v4" }, got)
  end)

  it("a task's waiters all wake; one that left early is not woken twice", function()
    local gate = nexlua.Queue()
    local t = nexlua.spawn(function() return gate:get() end)
    local results = {}
    for i = 1, 4 do
      nexlua.spawn(function()
        local ok, v = pcall(t.wait, t, i == 3 and 0.05 or nil)
        results[#results + 1] = ok and (i .. "=" .. v) or (i .. " timed out")
      end)
    end
    testing.wait_until(function() return #results == 1 end, 2)
    gate:put_nowait("done")
    testing.wait_until(function() return #results == 4 end, 2)
    assert.same({ "3 timed out", "1=done", "2=done", "4=done" }, results)
    testing.wait_until(function() return false end, 0.1)
    assert.equal(4, #results)
  end)
end)
