--- Logging to stderr through the core: one line per call, with a timestamp
-- and level. nexlua.log.info("user %s joined %s", name, room)
local core = require "nexlua.core"
local select, format, tostring, pcall, error = select, string.format, tostring, pcall, error
local core_log = core.log

local log = {}

local function emit(level, fmt, ...)
  local msg = fmt
  if select("#", ...) > 0 then
    local ok, s = pcall(format, tostring(fmt), ...)
    -- (a bad argument is the caller's: name its line, not this one)
    if not ok then error("log." .. level .. ": " .. s:gsub("to '%?'", "to 'format'"), 3) end
    msg = s
  end
  core_log(level, tostring(msg))
end

function log.debug(...) emit("debug", ...) end
function log.info(...) emit("info", ...) end
function log.warn(...) emit("warn", ...) end
function log.error(...) emit("error", ...) end

--- Gets or sets the level: "debug", "info", "warn" or "error".
function log.level(name) return core.log_level(name) end

--- Whether debug entries are written (to skip building one that is not).
function log.debugging() return core.log_level() == "debug" end

return log
