--- The server's options: what each one accepts, checked in one place for
-- the command line (cli.lua), nexlua.App{...} and ws_route's options, so
-- that a bad value is refused with the same clear message before anything
-- is started, wherever it was given.
local type, tostring, pairs, ipairs, tonumber = type, tostring, pairs, ipairs, tonumber
local format, floor, huge, match, find = string.format, math.floor, math.huge, string.match, string.find

local options = {}

local WHOLE_MAX = 2 ^ 53 -- the largest whole number a Lua number holds exactly

-- kind, lowest, highest (inclusive unless noted by above = true: > lowest)
local SPEC = {
  host = { "address" },
  port = { "whole", 0, 65535 },
  max_message_size = { "whole", 0, WHOLE_MAX },
  max_header_size = { "whole", 0, 2 ^ 31 },
  handshake_timeout = { "seconds", 0, 1e6, above = true },
  close_timeout = { "seconds", 0, 1e6, above = true },
  graceful_timeout = { "seconds", 0, 1e6 },
  write_high_water = { "whole", 0, WHOLE_MAX },
  write_limit = { "whole", 1, WHOLE_MAX },
  read_pause_bytes = { "whole", 0, WHOLE_MAX },
  ping_interval = { "seconds", 0, 1e6 },
  ping_timeout = { "seconds", 0, 1e6, above = true },
  compression = { "boolean" },
  compress_threshold = { "whole", 0, WHOLE_MAX },
  max_connections = { "whole", 0, 2 ^ 32 - 1 },
  max_connections_per_ip = { "whole", 0, 2 ^ 32 - 1 },
  max_fragments = { "whole", 0, 2 ^ 32 - 1 },
  allowed_origins = { "origins" },
  busy_poll = { "number", 0, 1e6 },
  health_path = { "path" },
  metrics_path = { "path" },
  tls_cert = { "string" },
  tls_key = { "string" },
}
options.SPEC = SPEC

-- The options a route may override (see App:ws_route).
--- Whether key is an option name.
function options.known(key) return SPEC[key] ~= nil end

--- The option names, sorted, with extra names (a list) added: for the
-- message that refuses an unknown one.
function options.names(extra)
  local out = {}
  for k in pairs(SPEC) do out[#out + 1] = k end
  for _, k in ipairs(extra or {}) do out[#out + 1] = k end
  table.sort(out)
  return table.concat(out, ", ")
end

local ROUTE = { ping_interval = true, ping_timeout = true, compression = true, middleware = true }

local function num(x)
  if x == floor(x) and x < 1e15 then return format("%d", x) end
  return format("%g", x)
end

local function range_text(s)
  local lo, hi = s[2], s[3]
  local what = s[1] == "whole" and "a whole number" or s[1] == "seconds" and "a number of seconds" or "a number"
  if s.above then return format("%s above %s (at most %s)", what, num(lo), num(hi)) end
  if hi >= WHOLE_MAX then return format("%s, %s or more", what, num(lo)) end
  return format("%s from %s to %s", what, num(lo), num(hi))
end

-- An IPv4 or IPv6 address, as the core reads the one it listens on.
local is_address = require("nexlua.core").address_valid

--- Checks value for option key; returns the value, or nil and a message
-- that says what the option accepts. Unknown keys are refused.
function options.check(key, value)
  local s = SPEC[key]
  if not s then
    local flag_only = key == "workers" or key == "reload" or key == "redis" or key == "log_level"
    return nil, format("unknown option %s (%sit takes %s)", tostring(key),
      flag_only and format("--%s is a command-line flag only; ", (key:gsub("_", "-"))) or "", options.names())
  end
  local kind = s[1]
  if kind == "string" then
    if type(value) ~= "string" then return nil, format("%s must be a string, got %s", key, type(value)) end
    return value
  end
  if kind == "origins" then
    -- "*", or origins as a browser sends them: scheme://host[:port], no path
    local ok = type(value) == "string" and find(value, "[^%s,]") ~= nil
    if ok then
      for entry in string.gmatch(value, "[^,]+") do
        entry = match(entry, "^%s*(.-)%s*$")
        if entry ~= "*" and entry ~= "null" and not match(entry, "^%a[%w+.-]*://[^/?#%s@]+$") then
          ok = false
        end
        -- a port is 1 to 65535, written as a browser writes it (no leading zero)
        local port = match(entry, "^%a[%w+.-]*://[^/]*[^:]:(%d*)$") or match(entry, "^%a[%w+.-]*://%[.*%]:(%d*)$")
        if port and not (match(port, "^[1-9]%d*$") and tonumber(port) <= 65535) then ok = false end
      end
    end
    if not ok then
      return nil, format("%s must be * or a comma-separated list of origins (scheme://host[:port], " ..
        "port 1 to 65535, no path), got %s", key, type(value) == "string" and format("%q", value) or tostring(value))
    end
    return value
  end
  if kind == "path" then
    if type(value) ~= "string" or not match(value, "^/[^%s?#%c]*$") or #value > 63 then
      return nil, format("%s must be a path starting with / (no query, at most 63 bytes), got %s", key,
        type(value) == "string" and format("%q", value) or tostring(value))
    end
    return value
  end
  if kind == "address" then
    if type(value) ~= "string" or not is_address(value) then
      return nil, format("%s must be an IPv4 or IPv6 address, got %s", key, type(value) == "string" and
        format("%q", value) or tostring(value))
    end
    return value
  end
  if kind == "boolean" then
    if type(value) ~= "boolean" then return nil, format("%s must be true or false, got %s", key, tostring(value)) end
    return value
  end
  local n = value
  if type(n) ~= "number" or n ~= n or n == huge or n == -huge or (kind == "whole" and n ~= floor(n)) or
    n < s[2] or n > s[3] or (s.above and n <= s[2]) then
    return nil, format("%s must be %s, got %s", key, range_text(s), type(value) == "string" and
      format("%q", value) or tostring(value))
  end
  return n
end

-- A ping_timeout of 0 beside ping_interval = 0 (pings off): the timeout
-- is not needed at all.
local function hint(opts, k, err)
  if k == "ping_timeout" and opts.ping_interval == 0 then
    return err .. " (with ping_interval = 0, pings are off: leave ping_timeout out)"
  end
  return err
end

--- Checks every option of an App{...} table; raises at the caller's
-- caller (level) with the first problem.
function options.check_app(opts, level)
  if type(opts) ~= "table" then error(format("App options must be a table, got %s", type(opts)), level + 1) end
  for k, v in pairs(opts) do
    local _, err = options.check(k, v)
    if err then error("App: " .. hint(opts, k, err), level + 1) end
  end
  if (opts.tls_cert == nil) ~= (opts.tls_key == nil) then
    error(opts.tls_cert and "App: tls_cert needs tls_key" or "App: tls_key needs tls_cert", level + 1)
  end
  local same = options.same_paths(opts.health_path, opts.metrics_path, "health_path and metrics_path")
  if same then error("App: " .. same, level + 1) end
end

--- The message for a health path equal to the metrics path (names: how
-- the caller calls the two), or nil.
function options.same_paths(health, metrics, names)
  if health and health == metrics then
    return format("%s are both %s: give them different paths", names, health)
  end
end

--- Checks ws_route's options (middleware is checked by the caller).
function options.check_route(opts, level)
  for k, v in pairs(opts) do
    if not ROUTE[k] then
      error(format("ws_route: unknown option %s (it takes middleware, ping_interval, ping_timeout " ..
        "and compression)", tostring(k)), level + 1)
    end
    if k ~= "middleware" then
      local _, err = options.check(k, v)
      if err then error("ws_route: " .. hint(opts, k, err), level + 1) end
    end
  end
end

return options
