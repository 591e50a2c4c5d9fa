-- Timeouts (issue #3): receive{timeout = s} in every receive method raises a
-- typed TimeoutError and leaves the connection usable; nexlua.wait_for.
-- (spec/apps/timeouts_app.lua)
local nexlua = require "nexlua"
local TestClient = require "nexlua.testing"

local function in_task(fn, timeout)
  local res
  nexlua.spawn(function() res = { pcall(fn) } end)
  assert(TestClient.wait_until(function() return res ~= nil end, timeout or 3), "the task did not finish in time")
  if not res[1] then error(res[2], 0) end
  return unpack(res, 2, table.maxn(res))
end

-- Steps the loop for seconds (lets the app's coroutines progress).
local function run_for(seconds) TestClient.wait_until(function() return false end, seconds) end

describe("receive timeouts", function()
  local client
  before_each(function() client = TestClient(dofile("spec/apps/timeouts_app.lua"), { timeout = 3 }) end)
  after_each(function() client:close() end)

  local cases = {
    { "receive_text", "send_text", "hello", "hello" },
    { "receive_bytes", "send_bytes", "\0\1\2", "\0\1\2" },
    { "receive_json", "send_json", { a = 1 }, { a = 1 } },
    { "receive", "send_text", "any", "any" },
  }
  for _, case in ipairs(cases) do
    local method, send, payload, expected = case[1], case[2], case[3], case[4]
    for _, form in ipairs { "table", "number" } do
      it(string.format("ws:%s(%s) raises TimeoutError and the connection stays usable", method,
        form == "table" and "{timeout = 0.1}" or "0.1"), function()
        local ws = client:websocket_connect("/recv", { query = { method = method, form = form } })
        local r = ws:receive_json(2)
        assert.is_false(r.ok)
        assert.is_true(r.is_timeout, "not a TimeoutError: " .. r.message)
        assert.is_false(r.is_disconnect)
        assert.equal(0.1, r.seconds)
        assert.equal("timed out after 0.1 s", r.message)
        assert.is_true(r.elapsed >= 0.09 and r.elapsed < 1, "timed out after " .. r.elapsed .. " s")
        assert.is_true(r.connected)
        ws[send](ws, payload)
        local after = ws:receive_json(2)
        assert.same(expected, after.got)
      end)
    end
  end

  it("a timeout that is not a number of seconds, 0 or more (NaN too), raises a WebSocketError at once", function()
    local ws = client:websocket_connect("/recv-bad")
    local report = ws:receive_json(2)
    assert.equal(4, #report)
    for i, r in ipairs(report) do
      assert.is_false(r.ok, "case " .. i .. " did not raise")
      assert.is_true(r.is_websocket_error, "case " .. i .. ": " .. r.message)
      assert.matches("receive: timeout must be a non%-negative number of seconds", r.message)
    end
  end)

  it("a second coroutine receiving on one WebSocket raises, naming the app's line", function()
    local ws = client:websocket_connect("/recv-twice")
    local r = ws:receive_json(2)
    assert.is_false(r.ok)
    assert.matches("timeouts_app%.lua:%d+: another coroutine is already receiving on this WebSocket$", r.message)
  end)

  it("a receive whose message comes in time returns it (timeout = 30)", function()
    local ws = client:websocket_connect("/recv", { query = { method = "receive_text" } })
    assert.is_true(ws:receive_json(2).is_timeout)
    run_for(0.05)
    ws:send_text("in time")
    local after = ws:receive_json(2)
    assert.equal("in time", after.got)
  end)
end)

describe("nexlua.wait_for", function()
  it("returns fn's results (fn gets the extra arguments)", function()
    local a, b, c = in_task(function()
      return nexlua.wait_for(function(x, y)
        nexlua.sleep(0.02)
        return x, y, "done"
      end, 2, "one", "two")
    end)
    assert.equal("one", a)
    assert.equal("two", b)
    assert.equal("done", c)
  end)

  it("raises TimeoutError after the given seconds and cancels fn's task", function()
    local reached_end, saw_cancel = false, nil
    local ok, err, took = in_task(function()
      local t0 = nexlua.now()
      local ok, err = pcall(nexlua.wait_for, function()
        local ok2, e2 = pcall(nexlua.sleep, 0.3)
        saw_cancel = not ok2 and nexlua.is_cancelled(e2)
        if not ok2 then error(e2, 0) end
        reached_end = true
      end, 0.1)
      return ok, err, nexlua.now() - t0
    end)
    assert.is_false(ok)
    assert.is_true(nexlua.is_timeout(err), "expected a TimeoutError, got " .. tostring(err))
    assert.is_true(took >= 0.09 and took < 2, "raised after " .. took .. " s")
    run_for(0.4) -- past the point fn would have finished
    assert.is_true(saw_cancel, "fn's task was not cancelled")
    assert.is_false(reached_end)
  end)

  it("returns what fn's task ends with after all, once cancelled (nothing it got is lost)", function()
    local r = in_task(function()
      return nexlua.wait_for(function()
        pcall(nexlua.sleep, 10) -- the cancel ends this wait
        return "kept"
      end, 0.05)
    end)
    assert.equal("kept", r)
  end)

  it("raises the error fn's task fails with once cancelled", function()
    local ok, err = in_task(function()
      return pcall(nexlua.wait_for, function()
        pcall(nexlua.sleep, 10)
        error("failed while cancelled", 0)
      end, 0.05)
    end)
    assert.is_false(ok)
    assert.equal("failed while cancelled", err)
  end)

  it("a caller cancelled while it waits for fn's cancelled task gets CancelledError", function()
    -- The caller's cancel and the end of fn's task come in the same round:
    -- the cancel must not give way to fn's result or to the TimeoutError.
    for _, fn in ipairs {
      function() nexlua.sleep(10) end,
      function() pcall(nexlua.sleep, 10) return "result" end,
    } do
      local res
      local caller = nexlua.spawn(function()
        local ok, err = pcall(nexlua.wait_for, fn, 0)
        res = { ok = ok, err = err }
      end)
      nexlua.spawn(function()
        nexlua.sleep(0) -- (ends in the round the caller's zero timeout does)
        caller:cancel()
      end)
      assert(TestClient.wait_until(function() return res ~= nil end, 3), "the caller did not finish")
      assert.is_false(res.ok, "the cancelled caller got fn's result")
      assert.is_true(nexlua.is_cancelled(res.err), "expected CancelledError, got " .. tostring(res.err))
    end
  end)

  it("around a receive, loses no message that comes as a timeout ends (real process)", function()
    local server = require "helpers.server"
    local rawws = require "helpers.rawws"
    local socket = require "socket"
    local s = server.start("spec/apps/timeouts_app.lua")
    finally(function() s:stop() end)
    local c = rawws.connect(s.port, "/wait-for-echo")
    assert.equal(101, c.status)
    -- Messages spread over many 1 ms timeouts: some come as one ends.
    local n = 1500
    for i = 1, n do
      c:send_text(tostring(i))
      if i % 7 == 0 then socket.sleep(0.0015) end
    end
    for i = 1, n do
      local m = c:recv_message(3)
      assert.equal(tostring(i), m, "echo " .. i .. " of " .. n)
    end
    c:close_socket()
  end)

  it("refuses a timeout that is not a number of seconds, 0 or more (NaN too), naming wait_for", function()
    for _, bad in ipairs { -1, 0 / 0, "1" } do
      local ok, err = in_task(function() return pcall(nexlua.wait_for, function() end, bad) end)
      assert.is_false(ok)
      assert.matches("^wait_for: seconds must be a non%-negative number", tostring(err))
    end
  end)

  it("refuses what is not a function, naming wait_for (not the task it would start)", function()
    local ok, err = in_task(function()
      return pcall(function()
        local r = nexlua.wait_for(42, 1) -- (not a tail call: its line is the error's)
        return r
      end)
    end)
    assert.is_false(ok)
    assert.matches("timeouts_spec%.lua:%d+: wait_for: expected a function, got number", tostring(err))
  end)

  it("re-raises fn's own error", function()
    local ok, err = in_task(function()
      return pcall(nexlua.wait_for, function() error("inner failure") end, 1)
    end)
    assert.is_false(ok)
    assert.matches("inner failure", tostring(err), 1, true)
  end)
end)
