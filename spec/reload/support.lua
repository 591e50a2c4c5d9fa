-- Shared helpers of the hot reload specs (spec/reload/*_spec.lua).
--
-- Every spec copies its app (a template from spec/apps/reload/) into a fresh
-- temp directory and edits the files there, so nothing in the repository is
-- ever touched.  Templates use {{NAME}} placeholders filled in by render().
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local socket = require "socket"
local clock = require "helpers.clock"
local luassert = require "luassert"

local M = {}

M.TEMPLATES = "spec/apps/reload/"

-- Specs never wait for pings: rawws does not answer them.
M.BASE_ARGS = { "--ping-interval", "0" }

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Plain write (truncate, then write): what `echo > file` or a simple editor does.
function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- An editor's safe save: write a temp file in the same directory, then
-- rename it over the original.  The temp name does not end in ".lua".
local saves = 0
function M.save_atomic(path, text)
  saves = saves + 1
  local tmp = string.format("%s.tmp-%d-%d", path, saves, math.random(1, 1e6))
  M.write(tmp, text)
  assert(os.rename(tmp, path))
end

-- Fills {{NAME}} placeholders of text from vars (every placeholder must be given).
function M.fill(text, vars)
  return (text:gsub("{{([%w_]+)}}", function(k)
    local v = vars and vars[k]
    if v == nil then error("template placeholder {{" .. k .. "}} has no value", 3) end
    return tostring(v)
  end))
end

-- The template spec/apps/reload/<name> with vars filled in.
function M.render(name, vars)
  local text = assert(M.read(M.TEMPLATES .. name), "no template " .. name)
  return M.fill(text, vars)
end

-- The line of template name marked "ERROR HERE" (where its error is).
function M.error_line(name)
  local n = 0
  for line in assert(M.read(M.TEMPLATES .. name)):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:find("ERROR HERE", 1, true) then return n end
  end
  error("template " .. name .. " has no ERROR HERE line")
end

-- The versioned app: dir/app.lua, dir/greeting.lua, dir/lib/suffix.lua.
-- v: VERSION (default "v1"), GREETING ("hello"), SUFFIX ("!"), EXTRA_ROUTES (0).
-- Only the files whose text changes are written, each with save (default M.write).
function M.write_versioned(dir, v, save)
  save = save or M.write
  v = v or {}
  local vars = {
    VERSION = v.VERSION or "v1", GREETING = v.GREETING or "hello",
    SUFFIX = v.SUFFIX or "!", EXTRA_ROUTES = v.EXTRA_ROUTES or 0,
  }
  if not M.read(dir .. "/lib/suffix.lua") then os.execute("mkdir -p " .. server.shquote(dir .. "/lib")) end
  local files = {
    [dir .. "/greeting.lua"] = M.render("greeting.lua", vars),
    [dir .. "/lib/suffix.lua"] = M.render("suffix.lua", vars),
    [dir .. "/app.lua"] = M.render("versioned_app.lua", vars),
  }
  for _, path in ipairs { dir .. "/greeting.lua", dir .. "/lib/suffix.lua", dir .. "/app.lua" } do
    if M.read(path) ~= files[path] then save(path, files[path]) end
  end
  return dir .. "/app.lua"
end

-- A fresh temp directory (mktemp -d).  remove_dir() deletes only directories
-- this module created.
local created = {}
function M.tmpdir()
  local p = assert(io.popen("mktemp -d -t nexlua-reload.XXXXXXXX"))
  local dir = p:read("*l")
  p:close()
  assert(dir and dir:match("^/.+/nexlua%-reload%.%w+$"), "mktemp -d failed: " .. tostring(dir))
  created[dir] = true
  return dir
end

function M.remove_dir(dir)
  if dir and created[dir] then
    os.execute("rm -rf " .. server.shquote(dir))
    created[dir] = nil
  end
end

-- Removes every directory still left (a spec's teardown, for the cases where
-- a before_each failed and its after_each did not run).
function M.remove_all()
  for dir in pairs(created) do M.remove_dir(dir) end
end

-- Starts nexlua on dir/app.lua with args (after BASE_ARGS).  With --reload,
-- waits until the watcher is set up, so a save right after is seen.
function M.start(app_path, args)
  local argv = {}
  for _, a in ipairs(M.BASE_ARGS) do argv[#argv + 1] = a end
  local watching = false
  for _, a in ipairs(args or {}) do
    argv[#argv + 1] = a
    if a == "--reload" then watching = true end
  end
  local s = server.start(app_path, argv)
  if watching then
    assert(s:wait_log("watching %d+ director", 5), "the watcher did not start; log:\n" .. s:log())
  end
  return s
end

-- Number of (non-overlapping) matches of pattern in text.
function M.count(text, pattern)
  local n = 0
  for _ in text:gmatch(pattern) do n = n + 1 end
  return n
end

-- Lines of the log that match pattern, in order.
function M.lines(text, pattern)
  local out = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    if line:match(pattern) then out[#out + 1] = line end
  end
  return out
end

M.RELOADED = "INFO reloaded "
M.FAILED = "ERROR reload of .- failed, still serving the previous version"

-- One "reloaded" line: timestamp, path, why, generation, routes, ms.
M.RELOADED_LINE =
  "^(%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d+Z) INFO reloaded (/%S+) %((.-)%): " ..
  "generation (%d+), (%d+) routes, in (%d+%.%d+) ms$"

function M.reloaded_lines(s) return M.lines(s:log(), "INFO reloaded ") end
function M.reload_count(s) return M.count(s:log(), M.RELOADED) end
function M.failure_count(s) return M.count(s:log(), M.FAILED) end

-- Polls until count_fn(s) >= n; returns the count (or raises with the log).
function M.wait_count(s, count_fn, n, what, timeout)
  local deadline = clock() + (timeout or 5)
  while true do
    local c = count_fn(s)
    if c >= n then return c end
    if clock() > deadline then
      -- an assertion (a failure, not an error, in busted's report)
      luassert(false, string.format("timed out waiting for %s #%d (have %d); log:\n%s", what, n, c, s:log()))
    end
    socket.sleep(0.01)
  end
end

function M.wait_reloads(s, n, timeout) return M.wait_count(s, M.reload_count, n, "a reload", timeout) end
function M.wait_failures(s, n, timeout) return M.wait_count(s, M.failure_count, n, "a failed reload", timeout) end

-- A WebSocket client on path (asserts the 101).
function M.connect(s, path, timeout)
  local c = rawws.connect(s.port, path, { timeout = timeout or 5 })
  assert(c.status == 101, string.format("expected 101 for %s, got %s %s", path, tostring(c.status),
    tostring(c.body)))
  return c
end

-- Sends text and returns the reply.
function M.ask(c, text, timeout)
  c:send_text(text)
  return (c:recv_message(timeout or 5))
end

-- Closes the client as a polite peer: close 1000, the server's close, TCP end.
-- Returns the server's close code.
function M.close(c)
  c:close(1000)
  local code = c:expect_close(5)
  c:wait_tcp_close(5)
  c:close_socket()
  return code
end

function M.median(xs)
  local t = {}
  for i, x in ipairs(xs) do t[i] = x end
  table.sort(t)
  local n = #t
  if n == 0 then return nil end
  if n % 2 == 1 then return t[(n + 1) / 2] end
  return (t[n / 2] + t[n / 2 + 1]) / 2
end

M.sleep = socket.sleep
M.now = clock

return M
