--- The options tables of API calls (accept, receive, send_json, publish,
-- ...): a key the call does not take raises, naming it and the ones it does
-- take, so that a misspelt option (`timeot`) is not quietly ignored.
local errors = require "nexlua.errors"

local pairs, type, tostring, error, getmetatable = pairs, type, tostring, error, getmetatable
local concat, format, find = table.concat, string.format, string.find
local raise, WebSocketError = errors.raise, errors.WebSocketError

local opts = {}

--- Raises a WebSocketError at level (1: the caller of check) unless t is a
-- table whose keys are all in names, a list. what: the call, for the text.
function opts.check(t, names, what, level)
  if type(t) ~= "table" then
    raise(WebSocketError, level + 1, format("%s: options must be a table, got %s", what, type(t)))
  end
  for k in pairs(t) do
    local known = false
    for i = 1, #names do
      if names[i] == k then
        known = true
        break
      end
    end
    if not known then
      raise(WebSocketError, level + 1,
        format("%s: unknown option %s (it takes %s)", what, tostring(k), concat(names, ", ")))
    end
  end
end

--- Whether the options ask for a binary message: binary = true, or, as in
-- Nexios, mode = "binary" (mode = "text", binary = false or neither: text).
function opts.binary(t, what, level)
  local binary, mode = t.binary, t.mode
  if binary ~= nil and type(binary) ~= "boolean" then
    raise(WebSocketError, level + 1, format("%s: binary must be true or false, got %s", what, type(binary)))
  end
  if mode ~= nil and mode ~= "text" and mode ~= "binary" then
    raise(WebSocketError, level + 1, format("%s: mode must be \"text\" or \"binary\", got %s", what,
      type(mode) == "string" and format("%q", mode) or type(mode)))
  end
  if mode ~= nil and binary ~= nil and (mode == "binary") ~= binary then
    raise(WebSocketError, level + 1, format("%s: binary = %s and mode = %q disagree", what, tostring(binary), mode))
  end
  return binary == true or mode == "binary"
end

--- Makes every method of class raise a clear error when called with a dot
-- (q.put(1), as in Python) instead of failing inside it: "Queue:put: call it
-- with a colon, q:put(...)". cname: the class's name; var: a variable name
-- for the example. The wrapper tail-calls the method, so the method's own
-- errors still name the caller's line.
function opts.colon_methods(class, cname, var)
  for name, f in pairs(class) do
    if type(f) == "function" and not find(name, "^_") then
      local text = format("%s:%s: call it with a colon, %s:%s(...), not %s.%s(...)", cname, name, var, name,
        var, name)
      class[name] = function(self, ...)
        if getmetatable(self) ~= class then error(text, 2) end
        return f(self, ...)
      end
    end
  end
end

return opts
