--- Tasks: coroutines the scheduler runs beside the connections.
--   local t = nexlua.spawn(function(a, b) nexlua.sleep(1) return a + b end, 1, 2)
--   t:wait()      --> 3 (raises the task's error if it failed)
--   t:cancel()    -- its current (or next) wait raises CancelledError
-- A task's error is never lost: it is re-raised by wait(), and logged with
-- its traceback when nobody is waiting for the task when it fails (but for
-- the disconnect of the connection it was spawned for: a debug line).
local core = require "nexlua.core"
local errors = require "nexlua.errors"
local log = require "nexlua.log"
local waiting = require "nexlua.private.waiting"
local waitlist = require "nexlua.private.waitlist"
local args = require "nexlua.private.opts"

local setmetatable, select, unpack, xpcall, tostring, error, type =
  setmetatable, select, unpack, xpcall, tostring, error, type
local traceback = debug.traceback
local park, current = core.park, core.current
local TimeoutError, CancelledError = errors.TimeoutError, errors.CancelledError
local is_cancelled = errors.is_cancelled

local tasks = {}

local NOT_IN_TASK = " must be called from a nexlua coroutine (a handler, middleware, hook or task), not from " ..
  "the main chunk or a coroutine of your own"

local Task = {}
Task.__index = Task
Task.__tostring = function(t) return "nexlua.Task(" .. t.status .. ")" end

local function handler(e)
  if is_cancelled(e) then return { error = e, cancelled = true } end
  return { error = e, traceback = traceback(errors.text(e), 2) }
end

local by_handle = setmetatable({}, { __mode = "k" }) -- a pending task by its handle

-- The task's own connection's client left (the handler's companion task,
-- a ticker, sent after the disconnect): as for the handler, that is how
-- it ends, not a failure worth a traceback.
local box_of
local function home_left(home, err)
  if not home or not errors.is_disconnect(err) or err.websocket == nil then return false end
  box_of = box_of or require("nexlua.websocket").box_of
  return box_of(err.websocket) == home
end

local function finish(task, ok, ...)
  by_handle[task.handle] = nil -- (its value refers to its key: never collected while there)
  local home = task.home
  task.home = nil
  if ok then
    task.status = "done"
    task.results = { n = select("#", ...), ... }
  else
    local err = ...
    task.error = err.error
    if err.cancelled then
      task.status = "cancelled"
    else
      task.status = "failed"
      task.traceback = err.traceback
      -- (With waiters, wait() raises it.)
      if waitlist.count(task.waiters) == 0 then
        if home_left(home, task.error) then
          log.debug("task %s ended: its connection's client left (%s)", task.name, errors.text(task.error))
        else
          log.error("task %s failed: %s", task.name, err.traceback)
        end
      end
    end
  end
  waitlist.wake_all(task.waiters)
end

local function run(task, fn, ...)
  finish(task, xpcall(fn, handler, ...))
end

-- A task the core ends (a bare coroutine.yield() in it) fails as if it had
-- raised: its waiters wake, and wait() raises the error.
core.on_task_abort(function(handle, message)
  local task = by_handle[handle]
  if task and task.status == "pending" then
    finish(task, false, { error = message, traceback = message })
  elseif not task then
    log.error("uncaught error in a nexlua coroutine: %s", tostring(message))
  end
end)

--- Runs fn(...) in a new task from the next loop turn; returns the Task.
function tasks.spawn(fn, ...)
  if type(fn) ~= "function" then error("spawn: expected a function, got " .. type(fn), 2) end
  local info = debug.getinfo(fn, "S")
  local task = setmetatable({
    status = "pending",
    waiters = waitlist.new(),
    name = info and (info.short_src .. ":" .. (info.linedefined or "?")) or "?",
  }, Task)
  task.handle, task.home = core.spawn(run, task, fn, ...)
  by_handle[task.handle] = task
  return task
end

--- Waits until the task ends (timeout: seconds, optional). Returns its
-- results; raises its error if it failed, CancelledError if it was cancelled,
-- TimeoutError if the timeout passed first (the task keeps running).
function Task:wait(timeout)
  waiting.check_timeout(timeout, "Task:wait", 2)
  while self.status == "pending" do
    local me = current()
    if not me then
      error("Task:wait()" .. NOT_IN_TASK, 2)
    end
    if me == self.handle then error("Task:wait(): a task cannot wait for itself (it would never end)", 2) end
    local at = waitlist.add(self.waiters, me)
    local why = waiting.call(park, "Task:wait", timeout)
    if why ~= nil then waitlist.leave(self.waiters, at, me) end -- (woken: the list was emptied)
    if why == "timeout" then error(TimeoutError(timeout), 0) end
    if why == "cancelled" then error(CancelledError(), 0) end
  end
  if self.status == "done" then return unpack(self.results, 1, self.results.n) end
  error(self.error, 0)
end

--- Asks the task to stop: the wait it is in (or its next one) raises
-- CancelledError. Returns false when the task has already ended.
function Task:cancel()
  if self.status ~= "pending" then return false end
  core.cancel(self.handle)
  return true
end

function Task:done() return self.status ~= "pending" end
function Task:cancelled() return self.status == "cancelled" end

--- Runs fn(...) and returns its results, or raises TimeoutError when it
-- takes longer than seconds: fn's task is then cancelled and waited for.
-- What fn got meanwhile is not lost (as in Python 3.12's asyncio.wait_for):
-- a task that ends with results all the same (a receive whose message came
-- with the timeout) returns them, and one that fails raises its error.
function tasks.wait_for(fn, seconds, ...)
  if type(fn) ~= "function" then error("wait_for: expected a function, got " .. type(fn), 2) end
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then -- (NaN too)
    error("wait_for: seconds must be a non-negative number", 2)
  end
  if not current() then
    error("wait_for" .. NOT_IN_TASK, 2)
  end
  local t = tasks.spawn(fn, ...)
  local function collect(ok, ...)
    if ok then return ... end
    local err = ...
    if not errors.is_timeout(err) then
      -- (the caller was cancelled: fn's task goes too)
      if t.status == "pending" then t:cancel() end
      error(err, 0)
    end
    if t.status == "pending" then
      t:cancel()
      while t.status == "pending" do
        -- (wait() raises the task's own error once it has ended; anything
        -- else is the caller's cancel, which must not be lost even when the
        -- task ended in the same round)
        local waited, why = pcall(t.wait, t)
        if not waited and why ~= t.error then error(why, 0) end
      end
    end
    if t.status == "done" then return unpack(t.results, 1, t.results.n) end
    if t.status == "failed" then error(t.error, 0) end -- (a cancelled one is "cancelled")
    error(err, 0)
  end
  return collect(pcall(t.wait, t, seconds))
end

--- Suspends the calling coroutine for seconds; other coroutines keep running.
function tasks.sleep(seconds)
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    error("nexlua.sleep: seconds must be a number, 0 or more, got " ..
      (type(seconds) == "string" and string.format("the string %q", seconds) or tostring(seconds)), 2)
  end
  local why = waiting.call(core.sleep, "nexlua.sleep", seconds)
  if why == "cancelled" then error(CancelledError(), 0) end
end

args.colon_methods(Task, "Task", "task")
tasks.Task = Task
return tasks
