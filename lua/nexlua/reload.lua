--- Hot reload: a new version of the app serves new connections while open
-- connections finish on the code they started with. Nothing is closed.
--
-- A reload (on SIGHUP, or on a saved file with --reload):
--   1. unloads the Lua modules the app loaded from its own directory, then
--      loads and runs the app file again;
--   2. on any error (syntax, runtime error at load, not returning an App, a
--      failing startup hook) keeps the old app, logs file:line, and waits for
--      the next good save;
--   3. on success: runs the old app's shutdown hooks (with why = "reload"),
--      the new app's startup hooks (services such as a streaming task
--      restart on the new code), then the new app's on_reload hooks with
--      the old app, and routes new connections to the new app. A shutdown
--      (SIGTERM) during the new app's startup hooks abandons the reload: the
--      new app is shut down, the old one is not shut down a second time.
-- State that must survive lives in nexlua.keep(name, init).
local core = require "nexlua.core"
local log = require "nexlua.log"
local waits = require "nexlua.private.waiting"
local waitlist = require "nexlua.private.waitlist"
local errors = require "nexlua.errors"
local unless_done = waits.unless_done

local pairs, ipairs, type, tostring, xpcall, loadfile, pcall =
  pairs, ipairs, type, tostring, xpcall, loadfile, pcall
local format, sub, match, gsub, gmatch, find =
  string.format, string.sub, string.match, string.gsub, string.gmatch, string.find
local concat = table.concat
local traceback = debug.traceback

local reload = {}

-- Seconds after which a reload still under way (its hooks running) is logged.
local SLOW_RELOAD = 1

local kept = {}

-- The Lua file loader, as it was before any app ran: an app may insert a
-- searcher of its own before it.
local lua_file_loader = package.loaders[2]

-- The names whose init() is running: {waiters = a waitlist, by = the task
-- running it}. An init that waits (opening a pool, say) runs once, however
-- many handlers ask for the value meanwhile.
local creating = {}

-- The end of name's init(): the value is kept (unless init failed or
-- returned nil) and the tasks waiting for it wake.
local function created(name, level, ok, v)
  local c = creating[name]
  creating[name] = nil
  if ok and v ~= nil then kept[name] = v end
  if c then waitlist.wake_all(c.waiters) end
  if not ok then error(v, 0) end
  if v == nil then error("keep: init for " .. name .. " returned nil", level + 1) end
  return v
end

-- Waits (in the calling task) until name's running init has ended. A
-- creator task that ended without returning (a bare coroutine.yield in
-- init ends it) is looked for every half second.
local function wait_created(name, c, level)
  local me = core.current()
  if not me then
    error("keep: the init of " .. name .. " is running in a task: call keep from a task to wait for it", level + 1)
  end
  if me == c.by then error("keep: the init of " .. name .. " calls keep(" .. name .. ")", level + 1) end
  while creating[name] == c do
    if c.by == nil or core.task_status(c.by) == "dead" then
      creating[name] = nil
      waitlist.wake_all(c.waiters)
      return
    end
    local at = waitlist.add(c.waiters, me)
    local _, why = core.park(0.5)
    if why ~= nil then waitlist.leave(c.waiters, at, me) end
    if why == waits.CANNOT_WAIT then waits.cannot("keep", level + 1) end
    if why == "cancelled" then error(errors.CancelledError(), 0) end
  end
end

--- Returns the value kept under name, creating it with init() the first
-- time. The same value is returned in every generation of the app.
function reload.keep(name, init)
  if type(name) ~= "string" then error("keep: name must be a string, got " .. type(name), 2) end
  local v = kept[name]
  if v ~= nil then return v end
  local c = creating[name]
  if c then
    wait_created(name, c, 2)
    return reload.keep(name, init) -- (the value, or, when its init failed, this caller tries)
  end
  if type(init) ~= "function" then return created(name, 2, true, init) end
  creating[name] = { waiters = waitlist.new(), by = core.current() }
  return created(name, 2, pcall(init))
end

-- True if path is a directory. "path/." opens only for one: a regular file
-- or a FIFO fails at once with ENOTDIR (opening a FIFO itself would block
-- the whole server until somebody writes to it).
local function is_dir(path)
  local f = io.open(path .. "/.", "r")
  if not f then return false end
  f:close()
  return true
end

-- dir for a shell command: in single quotes, which the shell expands nothing
-- in (a directory's name may come from a client: an upload's, say).
local function shell_quoted(dir) return "'" .. gsub(dir, "'", "'\\''") .. "'" end

-- True if a Lua file is in dir or below it (a directory that has just
-- appeared: rare, so a short blocking look is fine).
local function has_lua(dir)
  local p = io.popen("find " .. shell_quoted(dir) .. " -name '*.lua' -print -quit 2>/dev/null")
  local out = p and p:read("*l")
  if p then p:close() end
  return out ~= nil and out ~= ""
end

local function dir_of(path) return match(path, "^(.*)/[^/]*$") or "." end

local function realdir(dir)
  local p = io.popen("cd " .. shell_quoted(dir) .. " 2>/dev/null && pwd -P")
  local out = p and p:read("*l")
  if p then p:close() end
  return out or dir
end

-- Modules loaded from the app's directory (so a reload loads them again).
local function app_modules(app_dir)
  local out = {}
  for name in pairs(package.loaded) do
    if type(name) == "string" then
      local path = package.searchpath(name, app_dir .. "/?.lua;" .. app_dir .. "/?/init.lua")
      if path then out[name] = path end
    end
  end
  return out
end

-- An error in the app's main chunk with its traceback: the frames from
-- where it was raised up to the main chunk (nexlua's own file loader and
-- the frames that ran the chunk say nothing about the app).
local function app_traceback(e, app_file)
  local tb = traceback(tostring(e), 2)
  local head, frames = match(tb, "^(.-\nstack traceback:)(.*)$")
  if not head then return tb end
  local kept_frames = {}
  for line in gmatch(frames, "\n[^\n]*") do
    if not find(line, "nexlua/reload.lua:", 1, true) then kept_frames[#kept_frames + 1] = line end
    -- (the app file's main chunk: a required module's comes before it)
    if find(line, "in main chunk", 1, true) and find(line, app_file, 1, true) then break end
  end
  return head .. concat(kept_frames)
end

--- Loads the app file in a fresh set of app modules. Returns the app, or
-- nil and the error (with file:line). Restores the old modules on failure.
function reload.load(path)
  local App = require "nexlua.app"
  local app_dir = dir_of(path)
  local saved = {}
  for name in pairs(app_modules(app_dir)) do
    saved[name] = package.loaded[name]
    package.loaded[name] = nil
  end
  local function fail(err)
    for name, v in pairs(saved) do package.loaded[name] = v end
    return nil, err
  end
  local chunk, err = loadfile(path)
  if not chunk then return fail(err) end
  -- In a coroutine of its own, as at the start: a wait in the main chunk
  -- raises (a reload runs in a task, where it would wait), and a bare
  -- coroutine.yield() suspends only this coroutine.
  local app_file = match(path, "[^/]*$")
  local co = coroutine.create(function()
    return xpcall(chunk, function(e) return app_traceback(e, app_file) end)
  end)
  local _, ok, app = coroutine.resume(co)
  if coroutine.status(co) ~= "dead" then
    return fail(format("%s: its main chunk called coroutine.yield(): an app file must run to its " ..
      "end and return the app", path))
  end
  if not ok then return fail(app) end
  if not App.is_app(app) then
    return fail(format("%s must return the app (end it with `return app`), it returned %s", path, type(app)))
  end
  return app
end

--- The reloader of one served app. holder.app is the app serving new
-- connections; lifecycle.start(app, what) runs its startup hooks and
-- returns ok, lifecycle.stop(app, what, why) its shutdown hooks (once).
-- While a new app runs its startup hooks, self.incoming is that app; while
-- an app's shutdown hooks run in a reload, self.stopping_app is that app.
function reload.new(path, holder, lifecycle)
  local self = {
    path = path, holder = holder, generation = 1, watches = {}, watched = {}, known = {}, busy = false,
    again = false,
  }

  --- Says, once, that the reload under way will not finish: the server is
  -- shutting down (serve calls it at the signal: the process may end before
  -- the reload's task runs again).
  function self.abandon()
    if self.busy and not self.committed and not self.abandoned then
      self.abandoned = true
      log.info("reload of %s abandoned: the server is shutting down", path)
    end
  end

  --- Reloads now (in a task). Returns true on success.
  function self.reload(why)
    if self.stopping then return false end -- no new generation while shutting down
    if self.busy then
      self.again = true
      return false
    end
    self.busy = true
    self.committed = false -- (true once the new app serves: its on_reload hooks may still run)
    local t0 = core.hrtime()
    -- One line when it is over; one more first if it takes a while (the
    -- old app's shutdown hooks and the new one's startup hooks may).
    local stop_watch = unless_done(SLOW_RELOAD, function()
      log.info("reloading %s (%s): under way for %g s (hooks running)", path, why or "request", SLOW_RELOAD)
    end)
    local old = holder.app
    -- A SIGHUP makes every watch anew, before the files are read (a save
    -- from then on is seen): after a directory was replaced (a release
    -- moved into place), the old watches follow the old directory.
    if why == "SIGHUP" and #self.watches > 0 then self.watch(true) end
    local new, err = reload.load(path)
    local ok = new ~= nil
    -- (an app whose shutdown hooks run here: a shutdown waits for them)
    local function stop_app(app, what, reason)
      self.stopping_app = app
      lifecycle.stop(app, what, reason)
      self.stopping_app = nil
    end
    if ok then stop_app(old, "shutdown (reload)", "reload") end
    if ok and self.stopping then
      -- SIGTERM while the old app's hooks ran: the new app never starts.
      err = "the server is shutting down"
      ok = false
    elseif ok then
      self.incoming = new
      local started = lifecycle.start(new, "startup (reload)")
      self.incoming = nil
      if self.stopping then
        -- The server began to shut down meanwhile (which cancels the
        -- startup hooks of the new app): the shutdown stops the new app
        -- with the server, once the connections have closed (it finds it
        -- here); the old app stays, shut down already.
        err = "the server is shutting down"
        self.incoming = new
        ok = false
      elseif not started then
        err = "a startup hook of the new app failed"
        stop_app(new, "shutdown (failed reload)", "failed reload")
        -- (not while the server shuts down: the old app stays shut down)
        if not self.stopping and not lifecycle.start(old, "startup (rollback)") then
          err = err .. "; and a startup hook of the previous version failed again at the rollback " ..
            "(it serves, but what its hooks start may be missing)"
        end
        ok = false
      end
    end
    if ok then
      holder.app = new
      self.committed = true
      self.generation = self.generation + 1
      -- The listener (and its options) outlives a reload: say so when the
      -- App{...} options changed, rather than ignore them quietly.
      local changed_opts = {}
      for k in pairs(old.options) do
        if old.options[k] ~= new.options[k] then changed_opts[#changed_opts + 1] = k end
      end
      for k in pairs(new.options) do
        if old.options[k] == nil then changed_opts[#changed_opts + 1] = k end
      end
      if #changed_opts > 0 then
        table.sort(changed_opts)
        log.warn("App options changed (%s): they take effect at the next start, not at a reload " ..
          "(ws_route options do); with --workers, a worker the master restarts starts with them",
          table.concat(changed_opts, ", "))
      end
      -- Traces compiled through the old code would keep it alive (see serve).
      if jit and jit.flush then jit.flush() end
      lifecycle.reloaded(new, old)
      log.info("reloaded %s (%s): generation %d, %d routes, in %.1f ms", path, why or "request",
        self.generation, #new.router.routes, (core.hrtime() - t0) * 1000)
      if #new.router.routes == 0 then
        log.warn("the reloaded app has no routes: every new request gets HTTP 404")
      end
    elseif self.stopping then
      self.abandon()
    else
      log.error("reload of %s failed, still serving the previous version: %s", path, tostring(err))
    end
    stop_watch()
    self.busy = false
    -- The new version may require modules from directories not watched yet.
    if #self.watches > 0 then self.watch() end
    if self.again then
      self.again = false
      core.spawn(self.reload, "changes during the reload")
    end
    return ok
  end

  -- A burst of file events (editors write a temp file, then rename) gives
  -- one reload: each event pushes the deadline; one task waits it out.
  local deadline, waiting, changed = 0, false, {}
  local DEBOUNCE = 0.1
  local REPLACED_WAIT = 10
  local function on_change(dir, filename)
    if filename == match(dir, "[^/]*$") and #self.watches > 0 and not is_dir(dir .. "/" .. filename) then
      -- The watched directory itself moved or went (a release directory
      -- replaced by a copy): its watch follows the old one. Once a
      -- directory is at its path again (within REPLACED_WAIT), everything
      -- is watched afresh and the app reloaded.
      if self.replaced_waiting then return end
      self.replaced_waiting = true
      local give_up = core.hrtime() + REPLACED_WAIT
      while not is_dir(dir) and core.hrtime() < give_up do core.sleep(0.1) end
      self.replaced_waiting = false
      if not is_dir(dir) then return end
      self.watch(true)
      filename = "(directory replaced)"
      dir = self.app_realdir or realdir(dir_of(path))
    elseif sub(filename, -4) ~= ".lua" then
      -- Not a Lua file. A directory created or replaced (a git checkout):
      -- watch it afresh, and reload if it holds Lua files, since its
      -- modules may have changed before the watch was in place. Anything
      -- else (logs, data files, an empty directory) is none of our business.
      if filename == "" or #self.watches == 0 or not is_dir(dir .. "/" .. filename) then return end
      self.watch(true)
      if not has_lua(dir .. "/" .. filename) then return end
    end
    deadline = core.hrtime() + DEBOUNCE
    -- named from the app's directory: "lib/util.lua", not "util.lua"
    local base = self.app_realdir or realdir(dir_of(path))
    self.app_realdir = base
    local shown = filename
    if dir ~= base then
      shown = (sub(dir, 1, #base + 1) == base .. "/" and sub(dir, #base + 2) or dir) .. "/" .. filename
    end
    changed[shown] = true
    if waiting then return end
    waiting = true
    while core.hrtime() < deadline do core.sleep(DEBOUNCE / 2) end
    waiting = false
    local names = {}
    for name in pairs(changed) do names[#names + 1] = name end
    changed = {}
    table.sort(names)
    self.reload((#names == 1 and "file changed: " or "files changed: ") .. table.concat(names, ", "))
  end

  -- A module the app requires later (from a handler, say) may come from a
  -- directory not watched yet: the Lua file loader is wrapped once, and a
  -- module of the app's directory tree seen for the first time is watched.
  local function watch_later_requires()
    local loaders = package.loaders
    local at
    for i, f in ipairs(loaders) do
      if f == lua_file_loader then at = i end
    end
    if not at then
      log.warn("--reload: package.loaders no longer holds Lua's file loader: modules required " ..
        "after the start are not watched")
      return
    end
    local lua_loader = lua_file_loader
    local app_dir = dir_of(path)
    local pending = false
    loaders[at] = function(name, ...)
      -- (called through pcall, so that a module's syntax error is not
      -- reported at this line)
      local ok, f, extra = pcall(lua_loader, name, ...)
      if not ok then error(f, 0) end
      if type(f) == "function" and not self.known[name] and #self.watches > 0 and
        package.searchpath(name, app_dir .. "/?.lua;" .. app_dir .. "/?/init.lua") then
        self.known[name] = true
        if not pending then
          pending = true
          core.spawn(function()
            pending = false
            if #self.watches > 0 then self.watch() end
          end)
        end
      end
      return f, extra
    end
  end

  --- Watches the app's directory and those of the modules it loaded from
  -- it. A directory watched already keeps its watch, and the events queued
  -- on it (a save during a reload is seen once the reload ends), unless
  -- fresh: a directory was created or replaced, and every watch is made
  -- again (the reload that follows reads what the new directories hold).
  function self.watch(fresh)
    if not self.loader_wrapped then
      self.loader_wrapped = true
      watch_later_requires()
    end
    if fresh then
      for _, w in ipairs(self.watches) do pcall(w.close, w) end
      self.watches, self.watched = {}, {}
    end
    local app_dir = dir_of(path)
    -- Directories come from module names seen in any generation, so a
    -- directory whose files are missing for a moment is still watched.
    for name in pairs(app_modules(app_dir)) do self.known[name] = true end
    local dirs = { [realdir(app_dir)] = true }
    for name in pairs(self.known) do
      local rel = dir_of(app_dir .. "/" .. (string.gsub(name, "%.", "/")))
      dirs[realdir(rel)] = true
    end
    for dir in pairs(dirs) do
      local w, err
      if not self.watched[dir] then
        w, err = core.watch(dir, function(filename) on_change(dir, filename) end)
      end
      if w then
        self.watches[#self.watches + 1] = w
        self.watched[dir] = w
      elseif err and not self.watched_once then
        log.warn("%s", err)
      end
    end
    if not self.watched_once then
      self.watched_once = true
      log.info("watching %d director%s for changes", #self.watches, #self.watches == 1 and "y" or "ies")
    end
  end

  function self.stop()
    for _, w in ipairs(self.watches) do pcall(w.close, w) end
    self.watches, self.watched = {}, {}
  end

  return self
end

return reload
