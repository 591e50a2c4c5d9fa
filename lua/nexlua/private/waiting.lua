--- The one way Lua code waits: a call to a core function that may yield,
-- protected so that a wait attempted where a coroutine cannot yield (inside
-- require, a __gc metamethod, a string.gsub or table.sort callback, ...)
-- fails with an error that says so instead of LuaJIT's terse one.
local errors = require "nexlua.errors"

local pcall, error, tostring, find = pcall, error, tostring, string.find

local waiting = {}

local function check(what, ok, a, b)
  if ok then return b, a end
  if find(tostring(a), "yield across", 1, true) then
    errors.raise(errors.WebSocketError, 4, what .. " cannot wait here: it was called inside require(), "
      .. "a __gc metamethod, or a callback of a C function (string.gsub, table.sort, ...), "
      .. "which cannot be suspended; call it from the handler or a task itself")
  end
  error(a, 0)
end

--- Calls fn(...), which may yield; returns its second result (the reason:
-- "timeout", "cancelled" or nil) and its first.
function waiting.call(fn, what, ...)
  return check(what, pcall(fn, ...))
end

return waiting
