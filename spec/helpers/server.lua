-- Spawn and control a real `nexlua` process for specs.
--
--   local server = require "helpers.server"
--   local s = server.start("examples/echo/app.lua", { "--max-message-size", "1024" })
--   ... s.port, s.pid, s.log_path, s:log(), s:wait_log(pat, t), s:alive(), s:signal("HUP")
--   s:stop()
--
-- The binary is $NEXLUA_BIN (default build/nexlua, relative to the repo root).
-- Only the PID this module started is ever signalled.

local socket = require "socket"
local clock = require "helpers.clock"

local M = {}

M.START_TIMEOUT = 10
M.STOP_TIMEOUT = 5

local function shquote(s)
  s = tostring(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.shquote = shquote

local function exec_ok(cmd)
  local r = os.execute(cmd)
  return r == 0 or r == true
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local counter = 0
local function temp_log_path()
  -- mktemp creates a unique empty file; we reuse it as the log.  The prefix
  -- makes leftover logs (NEXLUA_SPEC_KEEP_LOGS) easy to find.
  local p = io.popen("mktemp -t nexlua-spec.XXXXXXXX 2>/dev/null")
  local name = p and p:read("*l")
  if p then p:close() end
  if name and name ~= "" then return name end
  local ok, tmp = pcall(os.tmpname)
  if ok and tmp then return tmp end
  counter = counter + 1
  return string.format("/tmp/nexlua-spec-%d-%d-%d.log", os.time(),
    math.floor((clock() % 1) * 1e6), counter)
end

local Server = {}
Server.__index = Server

-- Start the server.  `args` is a list of extra command-line arguments;
-- opts: bin, env = { NAME = value }, start_timeout, keep_log (don't delete the
-- log file on stop; also $NEXLUA_SPEC_KEEP_LOGS).
function M.start(app_path, args, opts)
  args = args or {}
  opts = opts or {}
  local bin = opts.bin or os.getenv("NEXLUA_BIN") or "build/nexlua"
  local log_path = temp_log_path()

  local argv = { shquote(bin), shquote(app_path), "--host", "127.0.0.1", "--port", "0" }
  for _, a in ipairs(args) do argv[#argv + 1] = shquote(a) end
  local envs = {}
  if opts.env then
    for k, v in pairs(opts.env) do envs[#envs + 1] = k .. "=" .. shquote(v) end
  end
  local inner = table.concat(envs, " ") .. (#envs > 0 and " " or "") ..
    table.concat(argv, " ") .. " </dev/null >" .. shquote(log_path) .. " 2>&1 & echo $!"
  local cmd = "sh -c " .. shquote(inner)
  local p = assert(io.popen(cmd, "r"))
  local out = p:read("*a") or ""
  p:close()
  local pid = tonumber(out:match("(%d+)"))
  if not pid then
    error("could not start " .. bin .. ": no PID from shell (" .. out .. ")", 2)
  end

  local self = setmetatable({
    pid = pid, log_path = log_path, bin = bin, app = app_path, args = args,
    stopped = false, keep_log = opts.keep_log or (os.getenv("NEXLUA_SPEC_KEEP_LOGS") or "") ~= "",
  }, Server)

  local deadline = clock() + (opts.start_timeout or M.START_TIMEOUT)
  while true do
    local text = read_file(log_path) or ""
    local port = text:match("listening on ws://127%.0%.0%.1:(%d+)")
    if port then
      self.port = tonumber(port)
      break
    end
    if not self:alive() then
      self.stopped = true
      local log = read_file(log_path) or ""
      if not self.keep_log then os.remove(log_path) end
      error(string.format("%s exited before listening (cmd: %s)\n--- log ---\n%s",
        bin, inner, log), 2)
    end
    if clock() > deadline then
      self:stop()
      error(string.format("%s did not log 'listening on ws://127.0.0.1:PORT' within %ss\n" ..
        "--- log ---\n%s",
        bin, tostring(opts.start_timeout or M.START_TIMEOUT), self:log()), 2)
    end
    socket.sleep(0.02)
  end
  return self
end

-- Whole log text (stdout + stderr) so far.
function Server:log()
  if self.final_log then return self.final_log end
  return read_file(self.log_path) or ""
end

-- Poll until Lua `pattern` appears in the log.  Returns the match (or true),
-- or nil, "timeout".
function Server:wait_log(pattern, timeout)
  local deadline = clock() + (timeout or 5)
  while true do
    local text = self:log()
    local m = text:match(pattern)
    if m then return m end
    if clock() > deadline then return nil, "timeout" end
    socket.sleep(0.02)
  end
end

-- Is the started process still running (and not a zombie)?
function Server:alive()
  if self.pid == nil then return false end
  local stat = read_file("/proc/" .. self.pid .. "/stat")
  if stat then
    local state = stat:match("^%d+ %b() (%a)")
    return state ~= "Z" and state ~= "X"
  end
  local self_stat = io.open("/proc/self/stat", "r")
  if self_stat then -- /proc works, so the pid is gone
    self_stat:close()
    return false
  end
  return exec_ok("kill -0 " .. self.pid .. " 2>/dev/null")
end

-- Send a signal (name like "TERM", "HUP", "USR1") to the started PID.
function Server:signal(name)
  if not self.pid then return false end
  name = tostring(name):upper():gsub("^SIG", "")
  assert(name:match("^[%w]+$"), "bad signal name")
  return exec_ok("kill -" .. name .. " " .. self.pid .. " 2>/dev/null")
end

local function wait_exit(self, timeout)
  local deadline = clock() + timeout
  while self:alive() do
    if clock() > deadline then return false end
    socket.sleep(0.02)
  end
  return true
end

-- SIGTERM, wait up to 5 s, then SIGKILL.  Idempotent.  Returns true when the
-- process exited on SIGTERM (false if it had to be killed or was already gone).
function Server:stop()
  if self.stopped then return self.stop_result end
  self.stopped = true
  local graceful = false
  if self:alive() then
    self:signal("TERM")
    graceful = wait_exit(self, M.STOP_TIMEOUT)
    if not graceful then
      self:signal("KILL")
      wait_exit(self, 2)
    end
  end
  self.stop_result = graceful
  self.final_log = read_file(self.log_path) or ""
  if not self.keep_log then os.remove(self.log_path) end
  return graceful
end

return M
