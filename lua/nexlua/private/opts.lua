--- The options tables of API calls (accept, receive, send_json, publish,
-- ...): a key the call does not take raises, naming it and the ones it does
-- take, so that a misspelt option (`timeot`) is not quietly ignored.
local errors = require "nexlua.errors"

local pairs, type, tostring, concat, format = pairs, type, tostring, table.concat, string.format
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

return opts
