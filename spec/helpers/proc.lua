-- Process helpers for the hardening specs: a nexlua process whose exit code
-- is kept (for wss:// servers, ASan builds and start-up failures), its memory
-- from /proc, and bounded commands.
--
--   local proc = require "helpers.proc"
--   local s = proc.start("spec/apps/hardening_app.lua", { "--tls-cert", c, "--tls-key", k },
--                        { scheme = "wss", bin = "build-asan/nexlua", env = { ... } })
--   s.port, s.pid, s:log(), s:wait_log(pat, t), s:alive(), s:rss_kb(), s:hwm_kb()
--   local code = s:stop()        -- SIGTERM, then the exit code (nil: had to be killed)
--   local code, out, err = proc.run({ "build/nexlua", "app.lua", "--port", "0" }, 10)
--   local v = proc.poll(function() return something() end, 5) -- nil on timeout
--
-- Only the PIDs this module started are ever signalled.

local socket = require "socket"
local clock = require "helpers.clock"

local M = {}

--- Calls fn every step seconds (default 0.02) until it returns a true value,
-- which is returned; nil after timeout seconds.
function M.poll(fn, timeout, step)
  local deadline = clock() + timeout
  repeat
    local v = fn()
    if v then return v end
    socket.sleep(step or 0.02)
  until clock() > deadline
  return nil
end

local function shquote(s)
  s = tostring(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.shquote = shquote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end
M.read_file = read_file

--- True once process pid has exited (gone, or a zombie not yet reaped).
function M.gone(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  return stat == nil or stat:match("^%d+ %b() ([ZX])") ~= nil
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end
M.write_file = write_file

local function exec_ok(cmd)
  local r = os.execute(cmd)
  return r == 0 or r == true
end
M.exec_ok = exec_ok

--- A fresh temporary directory (removed by M.rmdir).
function M.tmpdir()
  local p = assert(io.popen("mktemp -d -t nexlua-spec.XXXXXXXX"))
  local d = p:read("*l")
  p:close()
  assert(d and d ~= "", "mktemp -d failed")
  return d
end

function M.rmdir(d)
  if d and d:match("^/tmp/nexlua%-spec%.") then os.execute("rm -rf " .. shquote(d)) end
end

local sanitized_cache = {}
--- True when bin (default $NEXLUA_BIN or build/nexlua) is an AddressSanitizer
-- build: its RSS includes shadow memory and a quarantine of freed blocks, so
-- memory bounds and "memory released" checks do not apply to it.
function M.sanitized(bin)
  bin = bin or os.getenv("NEXLUA_BIN") or "build/nexlua"
  if sanitized_cache[bin] == nil then
    sanitized_cache[bin] = exec_ok("grep -q __asan_init " .. shquote(bin) .. " 2>/dev/null")
  end
  return sanitized_cache[bin]
end

--- A field of /proc/PID/status in kB (VmRSS, VmHWM, ...), or nil.
function M.status_kb(pid, field)
  local text = read_file("/proc/" .. pid .. "/status")
  if not text then return nil end
  local v = text:match(field .. ":%s*(%d+) kB")
  return v and tonumber(v)
end

--- Runs argv (a list) bounded by timeout seconds; returns code, stdout, stderr.
-- code 124: timed out. opts.env = { NAME = value }.
function M.run(argv, timeout, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local q = {}
  for i, a in ipairs(argv) do q[i] = shquote(a) end
  local envs = {}
  for k, v in pairs(opts.env or {}) do envs[#envs + 1] = k .. "=" .. shquote(v) end
  local cmd = string.format("%s timeout -k 2 %d %s </dev/null >%s 2>%s; echo $?",
    #envs > 0 and ("env " .. table.concat(envs, " ")) or "", timeout or 10,
    table.concat(q, " "), shquote(out), shquote(err))
  local p = assert(io.popen(cmd, "r"))
  local code = tonumber((p:read("*a") or ""):match("(%d+)"))
  p:close()
  local o, e = read_file(out) or "", read_file(err) or ""
  os.remove(out)
  os.remove(err)
  return code, o, e
end

local Proc = {}
Proc.__index = Proc

--- Starts bin APP --host 127.0.0.1 --port 0 ARGS in the background, keeping
-- its exit code. opts: bin (default $NEXLUA_BIN or build/nexlua), env,
-- scheme ("ws" or "wss": the log line waited for), start_timeout (s),
-- expect_exit (do not wait for a listening line; use s:wait_exit()),
-- argv (a whole command line instead: another server that logs the same
-- "listening on ws://127.0.0.1:PORT" line).
function M.start(app, args, opts)
  opts = opts or {}
  local bin = opts.bin or os.getenv("NEXLUA_BIN") or "build/nexlua"
  local dir = M.tmpdir()
  local self = setmetatable({
    dir = dir, log_path = dir .. "/server.log", rc_path = dir .. "/rc", pid_path = dir .. "/pid",
    bin = bin, scheme = opts.scheme or "ws",
  }, Proc)
  local argv = { shquote(bin), shquote(app), "--host", "127.0.0.1", "--port", "0" }
  for _, a in ipairs(args or {}) do argv[#argv + 1] = shquote(a) end
  if opts.argv then
    argv = {}
    for i, a in ipairs(opts.argv) do argv[i] = shquote(a) end
    bin = opts.argv[1]
    self.bin = bin
  end
  local envs = {}
  for k, v in pairs(opts.env or {}) do envs[#envs + 1] = k .. "=" .. shquote(v) end
  -- The inner shell waits for the server and writes its exit status; the
  -- outer one returns at once.
  local inner = string.format("%s %s </dev/null >%s 2>&1 & echo $! >%s; wait $!; echo $? >%s",
    #envs > 0 and ("env " .. table.concat(envs, " ")) or "", table.concat(argv, " "),
    shquote(self.log_path), shquote(self.pid_path), shquote(self.rc_path))
  assert(exec_ok("sh -c " .. shquote(inner) .. " >/dev/null 2>&1 &"), "could not start " .. bin)
  local deadline = clock() + 5
  while not self.pid do
    self.pid = tonumber(read_file(self.pid_path) or "")
    if not self.pid then
      assert(clock() < deadline, "no PID from the shell starting " .. bin)
      socket.sleep(0.01)
    end
  end
  if opts.expect_exit then return self end
  deadline = clock() + (opts.start_timeout or 15)
  local pat = "listening on " .. self.scheme .. "://127%.0%.0%.1:(%d+)"
  while true do
    local port = self:log():match(pat)
    if port then
      self.port = tonumber(port)
      return self
    end
    if self:exit_code() then
      local log = self:log()
      M.rmdir(dir)
      error(string.format("%s exited (%s) before listening\n--- log ---\n%s", bin,
        tostring(self.rc), log), 2)
    end
    if clock() > deadline then
      local log = self:log()
      self:stop()
      error(string.format("%s did not log 'listening on %s://...' in time\n--- log ---\n%s", bin,
        self.scheme, log), 2)
    end
    socket.sleep(0.02)
  end
end

function Proc:log()
  if self.final_log then return self.final_log end
  return read_file(self.log_path) or ""
end

function Proc:wait_log(pattern, timeout)
  local deadline = clock() + (timeout or 5)
  while true do
    local m = self:log():match(pattern)
    if m then return m end
    if clock() > deadline then return nil, "timeout" end
    socket.sleep(0.02)
  end
end

--- The exit code once the process has exited, else nil.
function Proc:exit_code()
  if self.rc then return self.rc end
  local t = read_file(self.rc_path)
  if t and t:match("%d") then self.rc = tonumber(t:match("%d+")) end
  return self.rc
end

function Proc:alive() return self:exit_code() == nil end

function Proc:rss_kb() return M.status_kb(self.pid, "VmRSS") end
function Proc:hwm_kb() return M.status_kb(self.pid, "VmHWM") end

function Proc:signal(name)
  if self:exit_code() then return false end
  assert(tostring(name):match("^%w+$"), "bad signal name")
  return exec_ok("kill -" .. name .. " " .. self.pid .. " 2>/dev/null")
end

--- Waits for the exit; returns the code, or nil after timeout seconds.
function Proc:wait_exit(timeout)
  local deadline = clock() + (timeout or 5)
  while not self:exit_code() do
    if clock() > deadline then return nil end
    socket.sleep(0.02)
  end
  return self.rc
end

--- SIGTERM, wait up to timeout (default 5 s), else SIGKILL. Returns the exit
-- code after SIGTERM, or nil when it had to be killed. Idempotent.
function Proc:stop(timeout)
  if self.stopped then return self.stop_code end
  self.stopped = true
  local code = self:exit_code()
  if not code then
    self:signal("TERM")
    code = self:wait_exit(timeout or 5)
    if not code then
      self:signal("KILL")
      self:wait_exit(2)
    end
  end
  self.stop_code = code
  self.final_log = read_file(self.log_path) or ""
  M.rmdir(self.dir)
  return code
end

return M
