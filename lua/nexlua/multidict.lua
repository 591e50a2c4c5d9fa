--- Read-only multi-dicts for request data: Headers (case-insensitive names)
-- and QueryParams (parsed from the query string, percent-decoded).
local setmetatable, type, tostring, tonumber, rawget = setmetatable, type, tostring, tonumber, rawget
local lower, gsub, char, find, sub, gmatch, format =
  string.lower, string.gsub, string.char, string.find, string.sub, string.gmatch, string.format

-- Lists handed to the app encode as JSON arrays, even when empty.
local list_of = require("nexlua.json").array

local multidict = {}

local function unescape(s)
  s = gsub(s, "+", " ")
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

--- Percent-decodes a path (no '+' rule there).
function multidict.unescape_path(s)
  if not find(s, "%", 1, true) then return s end
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
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
