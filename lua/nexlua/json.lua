--- JSON for send_json/receive_json, on lua-cjson.
--
-- Encoding is compact (no spaces) and leaves "/" unescaped, as Python's
-- json.dumps does. Lua has one table type, so an empty table encodes as
-- an object `{}`; to send an empty array use `json.empty_array` or a table
-- marked with `json.array(t)`. JSON null decodes to `json.null` (a
-- sentinel, since nil cannot be stored in a table) and encodes back to null.
-- JSON text is UTF-8 (RFC 8259 §8.1): a value holding a string that is not
-- (raw bytes) is refused, where lua-cjson would pass its bytes through.
local cjson = require "cjson"
local utf8_valid = require("nexlua.core").utf8_valid
local type, pairs, next, setmetatable, getmetatable, pcall, tostring, error =
  type, pairs, next, setmetatable, getmetatable, pcall, tostring, error
local find, gsub = string.find, string.gsub

local json = {}

local codec = cjson.new()
codec.encode_sparse_array(true)
-- Only JSON's own numbers: NaN, Infinity, hexadecimal, a leading "+" or
-- leading zeros are refused (lua-cjson takes them by default, and Python's
-- json.dumps sends NaN and Infinity unless told not to).
codec.decode_invalid_numbers(false)

json.null = codec.null

local array_mt = { __name = "nexlua.json.array" }
--- The empty JSON array, `[]` wherever it is: one table shared by every
-- caller, so it cannot be filled (json.array() makes one to fill).
json.empty_array = setmetatable({}, {
  __name = "nexlua.json.empty_array",
  __newindex = function()
    error("json.empty_array is shared by everyone and stays empty: use json.array() for an array to fill", 2)
  end,
  __metatable = array_mt, -- (getmetatable says what it is: an array)
})
local EMPTY = json.empty_array
--- Marks t (default: a new table) to encode as a JSON array, even when empty.
function json.array(t)
  if t == EMPTY then return t end
  if t ~= nil and type(t) ~= "table" then error("json.array: expected a table, got " .. type(t), 2) end
  return setmetatable(t or {}, array_mt)
end

-- Two things cjson 2.1 cannot do: emit an empty array, and print integers
-- above 10^14 exactly (its precision stops at 14 digits). Such values are
-- swapped for marker strings in a copy, and the markers replaced in the
-- output. Values without either are encoded directly.
-- (random, so that no client can send a string the encoder would take for
-- one: a marker guessed would turn that string into [] or a number)
local function random_hex(n)
  local f = io.open("/dev/urandom", "rb")
  local b = f and f:read(n)
  if f then f:close() end
  if not b or #b < n then b = tostring({}) .. os.time() .. os.clock() end
  return (gsub(b, ".", function(c) return string.format("%02x", c:byte()) end))
end
local MARK = "nexlua_json_" .. random_hex(12) .. "_"
local MARK_PATTERN = '"' .. MARK .. '(%-?%d*)"'
local BIG = 1e14
local floor, huge, sformat = math.floor, math.huge, string.format

local function special(x)
  if type(x) == "number" then
    return (x >= BIG or x <= -BIG) and x == floor(x) and x ~= huge and x ~= -huge and x < 2 ^ 63 and x > -2 ^ 63
  end
  return x == EMPTY or type(x) == "table" and getmetatable(x) == array_mt and next(x) == nil
end

-- A number key lua-cjson 2.1 mishandles: from 2^31 on it overflows the
-- array length it counts (the entry is dropped), and from 10^14 on it
-- prints the key in 14 digits. Such a table's number keys are written as
-- strings of ours (it is an object anyway).
local function big_key(k)
  return type(k) == "number" and (k >= 2 ^ 31 or k <= -2 ^ 31) and k ~= huge and k ~= -huge
end

-- (as cjson writes a number: integers in full, others in 14 digits)
local function key_text(k)
  if k == floor(k) and k > -2 ^ 63 and k < 2 ^ 63 then return sformat("%d", k) end
  return sformat("%.14g", k)
end

-- (as deep as lua-cjson goes: 1000)
local MAX_DEPTH = 1000

local function needs_swap(v, depth)
  if special(v) then return true end
  if type(v) ~= "table" or depth > MAX_DEPTH then return false end
  for k, x in pairs(v) do
    if special(x) or (type(x) == "table" and needs_swap(x, depth + 1)) then return true end
    if big_key(k) then return true end
  end
  return false
end

local function swap(v, depth)
  if special(v) then
    if type(v) == "number" then return MARK .. sformat("%d", v) end
    return MARK
  end
  if type(v) ~= "table" or depth > MAX_DEPTH then return v end
  local stringify = false
  for k in pairs(v) do
    if big_key(k) then
      stringify = true
      break
    end
  end
  local out = {}
  for k, x in pairs(v) do
    if stringify and type(k) == "number" then
      k = key_text(k)
      if v[k] ~= nil then error({ collision = k }) end -- (a string key the same: one would be lost)
    end
    out[k] = swap(x, depth + 1)
  end
  return setmetatable(out, not stringify and getmetatable(v) == array_mt and array_mt or nil)
end

local function unmark(digits) return digits == "" and "[]" or digits end

--- Encodes v; returns the text, or nil and a message.
function json.encode(v)
  local swapped = needs_swap(v, 0)
  if swapped then
    local ok, out = pcall(swap, v, 0)
    if not ok then
      if type(out) == "table" and out.collision then
        return nil, sformat("a table has the key %s both as a number and as a string", out.collision)
      end
      error(out, 0)
    end
    v = out
  end
  local ok, s = pcall(codec.encode, v)
  if not ok then
    if find(tostring(s), "excessive nesting", 1, true) then
      return nil, "tables nested more than 1000 deep (a table that contains itself?)"
    end
    return nil, s
  end
  if find(s, "\\/", 1, true) then s = gsub(s, "\\/", "/") end
  if swapped then s = gsub(s, MARK_PATTERN, unmark) end
  if not utf8_valid(s) then
    return nil, "a string in the value is not valid UTF-8 (binary data: send_bytes, or encode it, e.g. as base64)"
  end
  return s
end

-- Whether v holds a number that overflowed to an infinity (1e400).
local function has_infinity(v, depth)
  if v == huge or v == -huge then return true end
  if type(v) ~= "table" or depth > 1000 then return false end
  for k, x in pairs(v) do
    if has_infinity(x, depth + 1) or k == huge or k == -huge then return true end
  end
  return false
end

--- Decodes s; returns the value, or nil and a message.
function json.decode(s)
  -- (RFC 8259 §8.1: JSON text is UTF-8; lua-cjson passes raw bytes through,
  -- into strings that could not be encoded again)
  if type(s) == "string" and not utf8_valid(s) then return nil, "the text is not valid UTF-8" end
  local ok, v = pcall(codec.decode, s)
  if not ok then return nil, tostring(v) end
  -- A number too large for a double (an exponent of three digits, or a
  -- long run of digits) would become an infinity, which no JSON text can
  -- hold: refused, as it could not be sent back. Only such texts are walked.
  if type(s) == "string" and (find(s, "[eE]%+?%d%d%d") or find(s, "%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d"))
    and has_infinity(v, 0) then
    return nil, "a number is out of range (beyond what a double holds)"
  end
  return v
end

return json
