--- Logging to stderr through the core: one line per call, with a timestamp
-- and level. nexlua.log.info("user %s joined %s", name, room)
local core = require "nexlua.core"
local select, format, tostring = select, string.format, tostring
local core_log = core.log

local log = {}

local function emit(level, fmt, ...)
  local msg = fmt
  if select("#", ...) > 0 then msg = format(tostring(fmt), ...) end
  core_log(level, tostring(msg))
end

function log.debug(...) emit("debug", ...) end
function log.info(...) emit("info", ...) end
function log.warn(...) emit("warn", ...) end
function log.error(...) emit("error", ...) end

--- Gets or sets the level: "debug", "info", "warn" or "error".
function log.level(name) return core.log_level(name) end

return log
