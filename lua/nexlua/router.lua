--- Path routing for WebSocket routes. Pure Lua, no I/O.
-- Templates: "/chat/{room_id}", "/items/{id:int}", "/files/{rest:path}".
-- Routes match in registration order; the first match wins.
local tonumber, type, pairs, ipairs, error, setmetatable, getmetatable, tostring =
  tonumber, type, pairs, ipairs, error, setmetatable, getmetatable, tostring
local format, find, sub, gsub, match, lower =
  string.format, string.find, string.sub, string.gsub, string.match, string.lower

local router = {}

--- What match() returns as params for a route without any: one shared,
-- read-only table (a connection then allocates nothing for them).
local NO_PARAMS = setmetatable({}, {
  __newindex = function() error("path params of a route without parameters are read-only", 2) end,
  __metatable = false,
})
router.NO_PARAMS = NO_PARAMS

--- Converters: pattern is a Lua pattern for one parameter (it must not
-- contain captures); convert turns the matched text into the value, or
-- returns nil to refuse the match.
local converters = {
  str = { pattern = "[^/]+", convert = function(s) return s end },
  path = { pattern = ".*", convert = function(s) return s end },
  -- Whole numbers a Lua number holds exactly (up to 2^53, 16 digits):
  -- a longer one would not come back as the digits sent.
  int = {
    pattern = "%d+",
    convert = function(s)
      local d = match(s, "^0*(%d*)$")
      if #d > 16 or (#d == 16 and d > "9007199254740992") then return nil end
      return tonumber(s)
    end,
  },
  float = {
    pattern = "[%d%.]+",
    convert = function(s)
      if not (match(s, "^%d+$") or match(s, "^%d+%.%d+$")) then return nil end
      local n = tonumber(s)
      if n == math.huge then return nil end -- (400 nines: not a number JSON can carry)
      return n
    end,
  },
  uuid = {
    pattern = "[%x%-]+",
    convert = function(s)
      local hex = gsub(s, "-", "")
      if #hex ~= 32 or find(hex, "%X") then return nil end
      if #s ~= 32 and not match(s, "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$") then
        return nil
      end
      return lower(s)
    end,
  },
  slug = { pattern = "[%w_%-]+", convert = function(s) return s end },
}

-- The built-in converters' names, which an app cannot take over (a second
-- register_converter of an app's own name replaces it: a hot reload runs
-- the app file again).
local BUILTIN, BUILTIN_CONV = {}, {}
for k, c in pairs(converters) do BUILTIN[k], BUILTIN_CONV[c] = true, true end

-- What is wrong with Lua pattern p, or nil; and true for a capture (a
-- converter's pattern is one capture of the route's). (Lua reads a pattern
-- as it matches, so a mistake after the first item that fails on a given
-- text is only found by a text that gets that far: the syntax is checked
-- here, as Lua 5.1's lstrlib.c reads it.)
local function pattern_error(p)
  local i, n = 1, #p
  while i <= n do
    local c = sub(p, i, i)
    if c == "%" then
      local d = sub(p, i + 1, i + 1)
      if d == "" then return "it ends with '%'" end
      if match(d, "%d") then return "a back-reference (%" .. d .. ") needs a capture" end
      if d == "b" then
        if i + 3 > n then return "'%b' needs two characters" end
        i = i + 4
      elseif d == "f" then
        if sub(p, i + 2, i + 2) ~= "[" then return "'%f' needs a set ('[...]')" end
        i = i + 2
      else
        i = i + 2
      end
    elseif c == "(" then
      return "captures", true
    elseif c == ")" then
      return "a ')' without its '('"
    elseif c == "[" then
      local j = i + 1
      if sub(p, j, j) == "^" then j = j + 1 end
      if sub(p, j, j) == "]" then j = j + 1 end -- (a first ']' is itself)
      while sub(p, j, j) ~= "]" do
        if j > n then return "a '[' without its ']'" end
        j = j + (sub(p, j, j) == "%" and 2 or 1)
      end
      i = j + 1
    else
      i = i + 1
    end
  end
  return nil
end

--- Registers a converter usable as {name:key}. conv = {pattern=, convert=}.
function router.register_converter(key, conv)
  if type(key) ~= "string" or not match(key, "^[%a_][%w_]*$") then
    error("converter name must be an identifier, got " .. tostring(key), 2)
  end
  if type(conv) ~= "table" or type(conv.pattern) ~= "string" then
    error("converter must be a table with a string 'pattern' (and optional 'convert')", 2)
  end
  if conv.pattern == "" then error("converter " .. key .. ": the pattern must not be empty", 2) end
  local why, capture = pattern_error(conv.pattern)
  if capture then error("converter pattern must not contain captures", 2) end
  if why then error(format("converter %s: %q is not a valid Lua pattern: %s", key, conv.pattern, why), 2) end
  local convert = conv.convert
  if convert ~= nil and type(convert) ~= "function" and
    not (type(convert) == "table" and getmetatable(convert) and getmetatable(convert).__call) then
    error(format("converter %s: convert must be a function, got %s", key, type(convert)), 2)
  end
  if BUILTIN[key] then error("converter " .. key .. " is built in: pick another name", 2) end
  converters[key] = { pattern = conv.pattern, convert = convert or function(s) return s end }
end

local function escape(s) return (gsub(s, "[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

--- Compiles a path template into {pattern=, params={{name=, conv=}}}.
function router.compile(template)
  if type(template) ~= "string" or sub(template, 1, 1) ~= "/" then
    error(format("route path must be a string starting with '/', got %s", tostring(template)), 0)
  end
  local q = match(template, "[?#]")
  if q then
    error(format("route %q contains %q: a route matches the path alone (read the query string " ..
      "from ws.query_params)", template, q), 0)
  end
  local parts, params, seen, literals = { "^" }, {}, {}, {}
  local pos = 1
  while true do
    local s, e, body = find(template, "{([^}]*)}", pos)
    if not s then break end
    literals[#literals + 1] = sub(template, pos, s - 1)
    parts[#parts + 1] = escape(literals[#literals])
    local name, conv = match(body, "^%s*([%a_][%w_]*)%s*:%s*([%a_][%w_]*)%s*$")
    if not name then
      name = match(body, "^%s*([%a_][%w_]*)%s*$")
      conv = "str"
    end
    if not name then error(format("bad parameter {%s} in route %q", body, template), 0) end
    if seen[name] then error(format("duplicate parameter %q in route %q", name, template), 0) end
    local c = converters[conv]
    if not c then error(format("unknown converter %q in route %q", conv, template), 0) end
    seen[name] = true
    params[#params + 1] = { name = name, conv = c }
    parts[#parts + 1] = "(" .. c.pattern .. ")"
    pos = e + 1
  end
  if find(sub(template, pos), "[{}]") or find(template, "{", 1, true) and #params == 0 then
    error(format("unbalanced braces in route %q", template), 0)
  end
  literals[#literals + 1] = sub(template, pos)
  parts[#parts + 1] = escape(literals[#literals]) .. "$"
  return { template = template, pattern = table.concat(parts), params = params, literals = literals }
end

local Router = {}
Router.__index = Router

function router.new() return setmetatable({ routes = {} }, Router) end

local try

-- Whether parameter a takes every value parameter b takes: the same
-- converter; `str` (any one segment) over a built-in one-segment converter;
-- `path` (anything) over any.
local function covers(a, b)
  if a == b or a == converters.path then return true end
  return a == converters.str and BUILTIN_CONV[b] and b ~= converters.path
end

-- Whether route a, tried first, takes every path route b matches (so b
-- never matches): b is a path without parameters that a matches, or both
-- have the same literal parts and each of a's parameters covers b's.
local function shadows(a, b)
  if #b.params == 0 then
    if #a.params == 0 then return a.template == b.template end
    return try(a, b.template) ~= nil
  end
  if #a.params ~= #b.params then return false end
  for i, lit in ipairs(a.literals) do
    if lit ~= b.literals[i] then return false end
    -- (two parameters side by side split a path as the first match says,
    -- and a converter may refuse that split where another would do: not
    -- compared)
    if lit == "" and i > 1 and i <= #a.params then return false end
  end
  for i, p in ipairs(a.params) do
    if not covers(p.conv, b.params[i].conv) then return false end
  end
  return true
end

--- Adds a route; extra is stored as is (handler, middleware, options).
-- Returns it, and the earlier route that takes every path it matches (so
-- the new one never matches), if there is one.
function Router:add(template, extra)
  local r = router.compile(template)
  for k, v in pairs(extra or {}) do r[k] = v end
  local shadow
  for _, earlier in ipairs(self.routes) do
    if shadows(earlier, r) then shadow = earlier break end
  end
  self.routes[#self.routes + 1] = r
  return r, shadow
end

function try(route, path)
  local caps = { match(path, route.pattern) }
  if caps[1] == nil then return nil end
  local values = {}
  for i, p in ipairs(route.params) do
    local v = p.conv.convert(caps[i])
    if v == nil then return nil end
    values[p.name] = v
  end
  return values
end

--- Returns route, path_params for the first route matching path, or nil.
function Router:match(path)
  for _, route in ipairs(self.routes) do
    if #route.params == 0 then
      if path == route.template then return route, NO_PARAMS end
    else
      local values = try(route, path)
      if values then return route, values end
    end
  end
  return nil
end

return router
