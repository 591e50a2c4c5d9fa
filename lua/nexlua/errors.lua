--- Error types of nexlua. Errors are tables with a type, raised with error().
-- Each type has a constructor (callable class) and a predicate in nexlua:
-- nexlua.is_disconnect(err), nexlua.is_timeout(err), ...
local setmetatable, getmetatable, tostring, type, pairs, pcall, rawget =
  setmetatable, getmetatable, tostring, type, pairs, pcall, rawget
local format, floor = string.format, math.floor
local getinfo = debug.getinfo

local errors = {}

local registry = {} -- metatable -> class

local function where(level)
  local info = getinfo(level + 1, "Sl")
  if info and info.currentline and info.currentline > 0 then
    return info.short_src .. ":" .. info.currentline .. ": "
  end
  return ""
end

-- A constructor's argument of the wrong type: named, at the caller's line
-- (level 4: the check, the init, __call, the caller).
local function check_arg(ok, call, what, v)
  if not ok then
    local got = type(v) == "string" and format("%q", v) or type(v) == "number" and "number " .. tostring(v) or
      type(v)
    error(format("%s: %s, got %s", call, what, got), 4)
  end
end

--- Declares an error class. parent is another class or nil. tostring(err)
-- never fails: an error whose fields were changed to values describe
-- cannot format still gives its class name and message.
local function class(name, parent, init, describe)
  local cls = { name = name, parent = parent }
  local mt = {
    __index = cls,
    __tostring = function(e)
      local ok, text = pcall(describe, e)
      if not ok or type(text) ~= "string" then text = name .. ": " .. tostring(rawget(e, "message")) end
      local at = rawget(e, "where")
      return (type(at) == "string" and at or "") .. text
    end,
  }
  cls.mt = mt
  registry[mt] = cls
  setmetatable(cls, {
    __call = function(_, ...)
      local e = setmetatable({}, mt)
      init(e, ...)
      return e
    end,
    __tostring = function() return "nexlua." .. name end,
  })
  --- True when err is of this class or of a class derived from it.
  function cls.is(err)
    if type(err) ~= "table" then return false end
    local c = registry[getmetatable(err)]
    while c do
      if c == cls then return true end
      c = c.parent
    end
    return false
  end
  return cls
end

--- The root of every nexlua error type.
errors.Error = class("Error", nil,
  function(e, message) e.message = message == nil and "error" or tostring(message) end,
  function(e) return e.message end)

--- Misuse of the WebSocket API (receive before accept, send after close, ...)
-- and the base of the WebSocket error types.
errors.WebSocketError = class("WebSocketError", errors.Error,
  function(e, message) e.message = message == nil and "WebSocket error" or tostring(message) end,
  function(e) return e.message end)

--- The peer has left (or the connection was lost). code: the peer's close
-- code, 1005 when it sent none, 1006 when the TCP connection dropped.
-- WebSocketDisconnect(code, reason), both optional (1000, ""); a single
-- string is the reason.
errors.WebSocketDisconnect = class("WebSocketDisconnect", errors.WebSocketError,
  function(e, code, reason)
    if type(code) == "string" and reason == nil then code, reason = nil, code end
    check_arg(code == nil or (type(code) == "number" and code == floor(code)),
      "WebSocketDisconnect(code, reason)", "code must be an integer", code)
    check_arg(reason == nil or type(reason) == "string", "WebSocketDisconnect(code, reason)",
      "reason must be a string", reason)
    e.code = code or 1000
    e.reason = reason or ""
    e.message = "WebSocket disconnected"
  end,
  function(e)
    if e.reason ~= "" then return format("WebSocket disconnected (%s: %s)", tostring(e.code), tostring(e.reason)) end
    return format("WebSocket disconnected (%s)", tostring(e.code))
  end)

--- receive_text() got a binary message, or receive_bytes() a text one.
-- The message is consumed; the connection stays usable.
-- MessageTypeError(expected, got, data) ("text"/"binary"), or
-- MessageTypeError(message): a message of the app's own.
errors.MessageTypeError = class("MessageTypeError", errors.WebSocketError,
  function(e, expected, got, data)
    if got ~= nil then
      check_arg(type(expected) == "string" and type(got) == "string", "MessageTypeError(expected, got, data)",
        "expected and got must be strings (\"text\", \"binary\")", type(expected) ~= "string" and expected or got)
    end
    e.expected, e.got, e.data = expected, got, data
    if got == nil then
      e.message = expected == nil and "unexpected message type" or tostring(expected)
    else
      e.message = format("expected a %s message, received a %s message", tostring(expected), tostring(got))
    end
  end,
  function(e) return e.message end)

--- receive_json() got a message that is not valid JSON. The connection
-- stays usable; err.data holds the raw message.
errors.JSONDecodeError = class("JSONDecodeError", errors.WebSocketError,
  function(e, message, data)
    e.data = data
    e.message = message == nil and "invalid JSON" or "invalid JSON: " .. tostring(message)
  end,
  function(e) return e.message end)

--- A wait ran out of time (receive with a timeout, nexlua.wait_for).
-- The connection stays usable. TimeoutError(seconds) or
-- TimeoutError(message).
errors.TimeoutError = class("TimeoutError", errors.Error,
  function(e, seconds)
    if type(seconds) == "string" then
      e.message = seconds
      return
    end
    check_arg(seconds == nil or type(seconds) == "number", "TimeoutError(seconds)",
      "seconds must be a number (or a message string)", seconds)
    e.seconds = seconds
    e.message = seconds and format("timed out after %g s", seconds) or "timed out"
  end,
  function(e) return e.message end)

--- The task was cancelled (task:cancel(), or a wait_for that timed out)
-- while it waited. Ends a task quietly when not caught.
errors.CancelledError = class("CancelledError", errors.Error,
  function(e, message) e.message = message == nil and "cancelled" or tostring(message) end,
  function(e) return e.message end)

--- Queue:put_nowait() on a full queue.
errors.QueueFull = class("QueueFull", errors.Error,
  function(e, message) e.message = message == nil and "queue is full" or tostring(message) end,
  function(e) return e.message end)

--- Queue:get_nowait() on an empty queue.
errors.QueueEmpty = class("QueueEmpty", errors.Error,
  function(e, message) e.message = message == nil and "queue is empty" or tostring(message) end,
  function(e) return e.message end)

--- An error class of the app's own (Python's `class InvalidToken(Exception)`):
-- nexlua.error_class("InvalidTokenError", parent) with parent another class
-- (default errors.Error). Its instances are made by calling it,
-- Class(message, fields), where the optional fields table's keys are
-- copied into the error; Class.is(err) is true for it and its subclasses,
-- and tostring(err) is "InvalidTokenError: message".
function errors.define(name, parent)
  if type(name) ~= "string" or name == "" then
    error("error_class: the class name must be a non-empty string", 2)
  end
  parent = parent or errors.Error
  if type(parent) ~= "table" or not registry[parent.mt] then
    error("error_class: the parent must be an error class, got " .. tostring(parent), 2)
  end
  return class(name, parent,
    function(e, message, fields)
      if type(fields) == "table" then
        for k, v in pairs(fields) do e[k] = v end
      end
      e.message = message == nil and name or tostring(message)
    end,
    function(e) return name .. ": " .. e.message end)
end

--- Raises err of class cls with the location of the caller `level` levels up.
function errors.raise(cls, level, ...)
  local e = cls(...)
  e.where = where((level or 1) + 1)
  error(e, 0)
end

--- The text of any error value, for the log: tostring, except for a plain
-- table raised as an error (error({code = 1})), shown with its fields
-- instead of "table: 0x...".
-- tostring(v), or what it is when its __tostring raises (an error object's
-- own bug must not hide the error being reported).
local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return format("(a %s whose __tostring %s)", type(v),
    ok and "returned a " .. type(s) or "raised: " .. (type(s) == "string" and s or type(s)))
end

function errors.text(e)
  local mt = type(e) == "table" and getmetatable(e)
  if type(e) ~= "table" or (mt and mt.__tostring) then return safe_tostring(e) end
  local keys = {}
  for k in pairs(e) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return safe_tostring(a) < safe_tostring(b) end)
  local parts = {}
  for i, k in ipairs(keys) do
    if i > 8 then
      parts[#parts + 1] = "..."
      break
    end
    local v = e[k]
    parts[#parts + 1] = safe_tostring(k) .. " = " .. (type(v) == "string" and format("%q", v) or safe_tostring(v))
  end
  return "a table raised as an error: {" .. table.concat(parts, ", ") .. "}"
end

errors.is_disconnect = errors.WebSocketDisconnect.is
errors.is_websocket_error = errors.WebSocketError.is
errors.is_type_error = errors.MessageTypeError.is
errors.is_json_error = errors.JSONDecodeError.is
errors.is_timeout = errors.TimeoutError.is
errors.is_cancelled = errors.CancelledError.is
errors.is_error = errors.Error.is

return errors
