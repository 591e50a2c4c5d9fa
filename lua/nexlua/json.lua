--- JSON for send_json/receive_json, on lua-cjson.
--
-- Encoding is compact (no spaces) and leaves "/" unescaped, as Python's
-- json.dumps does. Lua has one table type, so an empty table encodes as
-- an object `{}`; to send an empty array use `json.empty_array` or a table
-- marked with `json.array(t)`. JSON null decodes to `json.null` (a
-- sentinel, since nil cannot be stored in a table) and encodes back to null.
local cjson = require "cjson"
local type, pairs, next, setmetatable, getmetatable, pcall, tostring =
  type, pairs, next, setmetatable, getmetatable, pcall, tostring
local find, gsub = string.find, string.gsub

local json = {}

local codec = cjson.new()
codec.encode_sparse_array(true)

json.null = codec.null

local array_mt = { __name = "nexlua.json.array" }
--- A table that always encodes as a JSON array, even when empty.
json.empty_array = setmetatable({}, array_mt)
function json.array(t) return setmetatable(t or {}, array_mt) end

-- cjson 2.1 cannot emit an empty array; arrays marked empty are swapped for
-- a token string and the token is replaced in the output.
local TOKEN_VALUE = string.format("nexlua_empty_array_%x_%x", os.time(), math.random(0, 0x7fffffff))
local TOKEN = "\"" .. TOKEN_VALUE .. "\""

local function has_empty_array(v, depth)
  if depth > 100 then return false end
  for _, x in pairs(v) do
    if type(x) == "table" then
      if getmetatable(x) == array_mt and next(x) == nil then return true end
      if has_empty_array(x, depth + 1) then return true end
    end
  end
  return false
end

local function swap(v, depth)
  if type(v) ~= "table" then return v end
  if getmetatable(v) == array_mt and next(v) == nil then return TOKEN_VALUE end
  if depth > 100 then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = swap(x, depth + 1) end
  return out
end

--- Encodes v; returns the text, or nil and a message.
function json.encode(v)
  if type(v) == "table" and ((getmetatable(v) == array_mt and next(v) == nil) or has_empty_array(v, 0)) then
    v = swap(v, 0)
  end
  local ok, s = pcall(codec.encode, v)
  if not ok then return nil, s end
  if find(s, "\\/", 1, true) then s = gsub(s, "\\/", "/") end
  if find(s, TOKEN, 1, true) then s = gsub(s, TOKEN, "[]") end
  return s
end

--- Decodes s; returns the value, or nil and a message.
function json.decode(s)
  local ok, v = pcall(codec.decode, s)
  if not ok then return nil, tostring(v) end
  return v
end

return json
