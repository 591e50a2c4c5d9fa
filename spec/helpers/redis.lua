-- A real redis-server for the --redis specs, on a free port of 127.0.0.1,
-- without persistence, stopped by its PID (never by name).
--
--   local redis = require "helpers.redis"
--   local r = redis.start()            -- r.port, r.url, r.pid
--   r:cli("PUBSUB", "NUMSUB", "nexlua:lobby")  -- redis-cli's output, trimmed
--   r:numsub("nexlua:lobby")           -- subscribers Redis counts for a channel
--   r:kill()                           -- SIGKILL, waits for the exit
--   r:restart()                        -- again on the same port
--   r:stop()                           -- SIGTERM (idempotent)
--
-- redis-server is installed by scripts/install-deps: a missing one is an
-- error, not a skipped spec.
local proc = require "helpers.proc"
local socket = require "socket"

local M = {}

local function which(cmd) return proc.exec_ok("command -v " .. cmd .. " >/dev/null 2>&1") end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local Redis = {}
Redis.__index = Redis

function Redis:_launch()
  local inner = string.format(
    "redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --daemonize no " ..
    "</dev/null >>%s 2>&1 & echo $! >%s; wait $!",
    self.port, proc.shquote(self.dir .. "/redis.log"), proc.shquote(self.dir .. "/pid"))
  os.remove(self.dir .. "/pid")
  assert(proc.exec_ok("sh -c " .. proc.shquote(inner) .. " >/dev/null 2>&1 &"), "cannot start redis-server")
  self.pid = proc.poll(function() return tonumber(proc.read_file(self.dir .. "/pid") or "") end, 5)
  assert(self.pid, "no PID from the shell starting redis-server")
  local up = proc.poll(function() return self:cli("PING") == "PONG" end, 10, 0.05)
  assert(up, "redis-server did not answer PING on port " .. self.port .. "; log:\n" ..
    (proc.read_file(self.dir .. "/redis.log") or ""))
end

function M.start()
  assert(which("redis-server") and which("redis-cli"),
    "redis-server/redis-cli not found: run scripts/install-deps (it installs redis-server)")
  local self = setmetatable({ dir = proc.tmpdir(), port = free_port() }, Redis)
  self.url = "redis://127.0.0.1:" .. self.port
  self:_launch()
  return self
end

--- Runs redis-cli against this server; its output, trimmed ("" when down).
function Redis:cli(...)
  local argv = { "redis-cli", "-p", tostring(self.port) }
  for _, a in ipairs({ ... }) do argv[#argv + 1] = a end
  local _, out = proc.run(argv, 5)
  return (out:gsub("%s+$", ""))
end

function Redis:numsub(channel)
  return tonumber(self:cli("PUBSUB", "NUMSUB", channel):match("\n(%d+)$") or "")
end

--- The channels matching pattern, sorted.
function Redis:channels(pattern)
  local list = {}
  for ch in self:cli("PUBSUB", "CHANNELS", pattern):gmatch("[^\n]+") do list[#list + 1] = ch end
  table.sort(list)
  return list
end

local gone = proc.gone

function Redis:_signal(name)
  if not self.pid or gone(self.pid) then return end
  proc.exec_ok("kill -" .. name .. " " .. self.pid .. " 2>/dev/null")
  assert(proc.poll(function() return gone(self.pid) end, 10), "redis-server pid " .. self.pid .. " did not exit")
end

function Redis:kill() self:_signal("KILL") end

function Redis:restart()
  self:_launch()
end

--- A TCP proxy to this server (spec/helpers/reset_proxy.py) whose open
-- connections :reset() ends with a TCP reset; :stop() ends the proxy.
function Redis:reset_proxy()
  local port, dir = free_port(), proc.tmpdir()
  local inner = string.format("/usr/bin/python3 spec/helpers/reset_proxy.py %d %d >%s 2>&1 & echo $! >%s; wait $!",
    port, self.port, proc.shquote(dir .. "/log"), proc.shquote(dir .. "/pid"))
  assert(proc.exec_ok("sh -c " .. proc.shquote(inner) .. " >/dev/null 2>&1 &"), "cannot start the proxy")
  local pid = proc.poll(function() return tonumber(proc.read_file(dir .. "/pid") or "") end, 5)
  assert(pid and proc.poll(function() return (proc.read_file(dir .. "/log") or ""):find("ready", 1, true) end, 10),
    "the reset proxy did not start: " .. tostring(proc.read_file(dir .. "/log")))
  return {
    port = port,
    url = "redis://127.0.0.1:" .. port,
    reset = function() proc.exec_ok("kill -USR1 " .. pid) end,
    stop = function()
      if not gone(pid) then proc.exec_ok("kill -TERM " .. pid .. " 2>/dev/null") end
      proc.rmdir(dir)
    end,
  }
end

--- A server on a free port that answers like Redis and then breaks its
-- protocol in one way (spec/helpers/rogue_redis.py, MODE); :stop() ends it.
function M.rogue(mode)
  local port, dir = free_port(), proc.tmpdir()
  local inner = string.format("/usr/bin/python3 spec/helpers/rogue_redis.py %d %s >%s 2>&1 & echo $! >%s; wait $!",
    port, mode, proc.shquote(dir .. "/log"), proc.shquote(dir .. "/pid"))
  assert(proc.exec_ok("sh -c " .. proc.shquote(inner) .. " >/dev/null 2>&1 &"), "cannot start the rogue Redis")
  local pid = proc.poll(function() return tonumber(proc.read_file(dir .. "/pid") or "") end, 5)
  assert(pid and proc.poll(function() return (proc.read_file(dir .. "/log") or ""):find("ready", 1, true) end, 10),
    "the rogue Redis did not start: " .. tostring(proc.read_file(dir .. "/log")))
  return {
    url = "redis://127.0.0.1:" .. port,
    stop = function()
      if not gone(pid) then proc.exec_ok("kill -TERM " .. pid .. " 2>/dev/null") end
      proc.rmdir(dir)
    end,
  }
end

function Redis:stop()
  if self.stopped then return end
  self.stopped = true
  self:_signal("TERM")
  proc.rmdir(self.dir)
end

return M
