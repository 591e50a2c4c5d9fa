--- Read-only multi-dicts for request data: Headers (case-insensitive names)
-- and QueryParams (parsed from the query string, percent-decoded).
local setmetatable, type, tostring, tonumber, rawget = setmetatable, type, tostring, tonumber, rawget
local lower, gsub, char, find, sub, gmatch, format =
  string.lower, string.gsub, string.char, string.find, string.sub, string.gmatch, string.format

-- Lists handed to the app encode as JSON arrays, even when empty.
local list_of = require("nexlua.json").array

local multidict = {}

local utf8_valid = require("nexlua.core").utf8_valid
local byte, concat = string.byte, table.concat

local REPLACEMENT = "\239\191\189" -- U+FFFD

-- The bytes a sequence led by b may take second (RFC 3629 §4: no overlong
-- form, no surrogate, nothing past U+10FFFF), and its length; nil for a
-- byte that leads none.
local function lead(b)
  if b >= 0xC2 and b <= 0xDF then return 0x80, 0xBF, 2 end
  if b == 0xE0 then return 0xA0, 0xBF, 3 end
  if b == 0xED then return 0x80, 0x9F, 3 end
  if b >= 0xE1 and b <= 0xEF then return 0x80, 0xBF, 3 end
  if b == 0xF0 then return 0x90, 0xBF, 4 end
  if b == 0xF4 then return 0x80, 0x8F, 4 end
  if b >= 0xF1 and b <= 0xF3 then return 0x80, 0xBF, 4 end
end

--- s, with each maximal part that is not UTF-8 replaced by U+FFFD (as
-- Python decodes with errors="replace", and so Starlette's and Nexios's
-- path and query values): decoded text stays text whatever the client
-- percent-encoded.
local function as_text(s)
  if utf8_valid(s) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local b = byte(s, i)
    if b < 0x80 then
      local j = find(s, "[\128-\255]", i) or n + 1
      out[#out + 1] = sub(s, i, j - 1)
      i = j
    else
      local lo, hi, len = lead(b)
      local j = i + 1
      if lo then
        local c = byte(s, j)
        if c and c >= lo and c <= hi then
          j = j + 1
          while j < i + len do
            c = byte(s, j)
            if not c or c < 0x80 or c > 0xBF then break end
            j = j + 1
          end
        end
      end
      out[#out + 1] = lo and j == i + len and sub(s, i, j - 1) or REPLACEMENT
      i = j
    end
  end
  return concat(out)
end
multidict.as_text = as_text

local function unescape(s)
  s = gsub(s, "+", " ")
  if not find(s, "%", 1, true) then return s end -- (raw bytes past ASCII are refused: 400)
  return as_text((gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end)))
end

--- Percent-decodes a path (no '+' rule there), as text (see as_text).
function multidict.unescape_path(s)
  if not find(s, "%", 1, true) then return s end
  return as_text((gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end)))
end

-- The methods, and the metatable (its __index is below the methods).
local Multi, mt = {}, {}
-- Its own fields, under keys no name can be (a query names any string).
local LIST, FOLD = {}, {}

local function new(list, fold)
  -- list: flat array name1, value1, name2, value2, ...
  return setmetatable({ [LIST] = list, [FOLD] = fold }, mt)
end

-- self's list of names and values. A method called with a dot
-- (ws.query_params.get("token"), as in Python) gets the name as self.
local function list_of_self(self, method)
  local list = type(self) == "table" and rawget(self, LIST)
  if not list then
    error(format("%s: call it with a colon, as in ws.query_params:%s(...) or ws.headers:%s(...)",
      method, method, method), 3)
  end
  return list
end

local function key(self, name)
  name = tostring(name)
  return self[FOLD] and lower(name) or name
end

--- The first value for name, or default (nil if not given).
function Multi:get(name, default)
  local list = list_of_self(self, "get")
  local k = key(self, name)
  for i = 1, #list, 2 do
    local n = list[i]
    if (self[FOLD] and lower(n) or n) == k then return list[i + 1] end
  end
  return default
end

--- Every value for name, in order (an empty list if none).
function Multi:get_all(name)
  local list = list_of_self(self, "get_all")
  local k, out = key(self, name), list_of()
  for i = 1, #list, 2 do
    local n = list[i]
    if (self[FOLD] and lower(n) or n) == k then out[#out + 1] = list[i + 1] end
  end
  return out
end

function Multi:has(name)
  list_of_self(self, "has")
  return self:get(name) ~= nil
end

--- Iterates name, value pairs in order: for name, value in h:items() do ... end
function Multi:items()
  local list, i = list_of_self(self, "items"), -1
  return function()
    i = i + 2
    if list[i] ~= nil then return list[i], list[i + 1] end
  end
end

--- Distinct names, in order of first appearance (lowercased for headers).
function Multi:keys()
  local out, seen, list = list_of(), {}, list_of_self(self, "keys")
  for i = 1, #list, 2 do
    local k = key(self, list[i])
    if not seen[k] then
      seen[k] = true
      out[#out + 1] = k
    end
  end
  return out
end

--- How many name, value pairs there are (repeated names count each time).
-- A method: LuaJIT's # does not call __len on a table.
function Multi:len() return #list_of_self(self, "len") / 2 end

-- h.name and h["name"] are h:get("name") (first value, nil if absent), as
-- in Starlette, except for the method names above (get, get_all, has,
-- items, keys, len), which are the methods.
mt.__index = function(self, name)
  local m = Multi[name]
  if m ~= nil then return m end
  if type(name) == "string" then return self:get(name) end
  return nil
end

-- Read-only: a write would be seen by h.name and not by h:get("name").
mt.__newindex = function(_, name)
  error(format("ws.headers and ws.query_params are read-only (what the client sent): cannot set %s; " ..
    "keep your own values in ws.state", type(name) == "string" and format("%q", name) or tostring(name)), 2)
end

--- Headers from a flat list of names and values (as received).
function multidict.Headers(list) return new(list or {}, true) end

--- QueryParams from a raw query string ("a=1&b=2&a=3").
function multidict.QueryParams(query)
  local list = {}
  if type(query) == "string" and query ~= "" then
    for pair in gmatch(query, "[^&;]+") do
      local eq = find(pair, "=", 1, true)
      local k, v
      if eq then
        k, v = sub(pair, 1, eq - 1), sub(pair, eq + 1)
      else
        k, v = pair, ""
      end
      list[#list + 1] = unescape(k)
      list[#list + 1] = unescape(v)
    end
  end
  return new(list, false)
end

return multidict
