--- The one way Lua code waits: a call to a core function that may yield.
-- Where the coroutine cannot be suspended (inside require, a __gc
-- metamethod, a string.gsub or table.sort callback, ...) the core does not
-- try: it returns nil, core.CANNOT_WAIT, and the wait fails with an error
-- that says so instead of LuaJIT's terse one. No pcall: a waiting
-- coroutine's stack stays as shallow as its own code.
local core = require "nexlua.core"
local errors = require "nexlua.errors"

local type, tostring, error = type, tostring, error
local CANNOT_WAIT = core.CANNOT_WAIT

local waiting = { CANNOT_WAIT = CANNOT_WAIT }

--- Raises the error for a wait attempted where it cannot be; level as in
-- error() (1: the caller of cannot).
function waiting.cannot(what, level)
  errors.raise(errors.WebSocketError, level + 1, what .. " cannot wait here: it was called inside require(), "
    .. "a __gc metamethod, or a callback of a C function (string.gsub, table.sort, ...), "
    .. "which cannot be suspended; call it from the handler or a task itself")
end

--- Checks a wait's timeout: nil (no limit) or a number of seconds, 0 or
-- more; raises naming what, at level as in error() (1: the caller).
function waiting.check_timeout(timeout, what, level)
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    error(what .. ": the timeout must be a number of seconds, 0 or more (nil: no limit), got " ..
      (type(timeout) == "string" and string.format("the string %q", timeout) or tostring(timeout)), level + 1)
  end
end

--- Calls fn(...), which may yield; returns its second result (the reason:
-- "timeout", "cancelled" or nil) and its first.
function waiting.call(fn, what, ...)
  local a, b = fn(...)
  if b == CANNOT_WAIT then waiting.cannot(what, 3) end
  return b, a
end

--- Runs fn() after seconds, in a task of its own, unless the function it
-- returns is called first: a warning for something that takes too long.
function waiting.unless_done(seconds, fn)
  local done = false
  local task = core.spawn(function()
    core.sleep(seconds) -- (returns early when cancelled)
    if not done then fn() end
  end)
  return function()
    done = true
    core.cancel(task)
  end
end

return waiting
