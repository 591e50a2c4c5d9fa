--- Serving an app: the per-connection entry (routing, middleware, handler,
-- error policy) and the server lifecycle (startup, signals, shutdown).
local core = require "nexlua.core"
local errors = require "nexlua.errors"
local log = require "nexlua.log"
local tasks = require "nexlua.tasks"
local options = require "nexlua.private.options"
local waiting = require "nexlua.private.waiting"
local WebSocket = require "nexlua.websocket"
local router = require "nexlua.router"
local warn_unfinished = require("nexlua.app").warn_unfinished
local unescape_path = require("nexlua.multidict").unescape_path

local xpcall, pcall, tostring, error, ipairs, type = xpcall, pcall, tostring, error, ipairs, type
local traceback, getinfo = debug.traceback, debug.getinfo
local format = string.format
local is_disconnect = errors.is_disconnect
local STATES = WebSocket.STATES
local box_of, state_of, route_of = WebSocket.box_of, WebSocket.state_of, WebSocket.route_of

local serve = {}

-- Where an error that comes out of call_next() was first raised, per
-- handler coroutine: a middleware that catches it (pcall(call_next)) and
-- re-raises it would otherwise have its own line in the log's traceback,
-- not the failing one (Python keeps the first). Weak: gone with the
-- coroutine. Disconnects and cancels are never logged: not recorded.
local origins = setmetatable({}, { __mode = "k" })

local rethrow

local function record_origin(e)
  if not is_disconnect(e) and not errors.is_cancelled(e) then
    -- Not when an inner call_next() passes it on, nor when a middleware
    -- re-raises it into an outer one: the first raise is the one kept.
    local co, by = coroutine.running(), getinfo(3, "fSl") -- (1: here, 2: error(), 3: its caller)
    local known = origins[co]
    if by and by.func == rethrow then return e end
    if known and rawequal(known.err, e) then -- a middleware's re-raise: where
      if by and by.currentline > 0 then known.again = format("%s:%d", by.short_src, by.currentline) end
    else
      origins[co] = { err = e, traceback = traceback(errors.text(e), 2) }
    end
  end
  return e
end

function rethrow(ok, ...)
  if ok then return ... end
  error((...), 0)
end

-- How a handler's coroutine died (err, from the core's finisher): the
-- connection's own disconnect is the normal end, as is a cancel; anything
-- else (another connection's disconnect included) is a bug worth a
-- traceback, taken of the dead coroutine, whose frames LuaJIT keeps.
local function failure(ws, err, co)
  if is_disconnect(err) then
    local w = err.websocket
    if w == nil or w == ws then return err end
  end
  if errors.is_cancelled(err) then return err end
  local msg = errors.text(err)
  if is_disconnect(err) and err.websocket ~= nil then
    -- (another connection's: this handler sent to it after it was gone)
    msg = "a send to another connection (" .. tostring(err.websocket.path) .. ") that is gone: " .. msg
  end
  local tb = traceback(co, msg, 0)
  local origin = origins[co]
  if origin and rawequal(origin.err, err) then
    -- Out of call_next(): where it was raised (the coroutine's stack is
    -- where it was raised again), then, if a middleware re-raised it, where.
    tb = origin.traceback:gsub("\n\t%[C%]: in function 'xpcall'(\n\t[^\n]*nexlua/private/serve%.lua:)", "%1")
    local again = origin.again
    if not again then -- (the outermost middleware's re-raise passes no call_next)
      local at = getinfo(co, 1, "Sl")
      if at and at.currentline > 0 and not at.short_src:find("nexlua/private/serve%.lua$") then
        again = format("%s:%d", at.short_src, at.currentline)
      end
    end
    if again then tb = tb .. "\n\t(re-raised at " .. again .. ")" end
    return { error = err, traceback = tb }
  end
  -- A coroutine that died of a runtime error (not error()) has no current
  -- line in its top frame for LuaJIT; the message has it ("app.lua:11: ...").
  -- (After error(), the top frame is error's own, a C one: it has no line.)
  local top = getinfo(co, 0, "Sl")
  local line = top and top.currentline < 0 and top.what ~= "C" and type(err) == "string" and
    err:match("^[^\n]-:(%d+): ")
  if line then
    local at = "\n\t" .. top.short_src .. ": in "
    local i = tb:find(at, 1, true)
    if i then tb = tb:sub(1, i + #top.short_src + 1) .. ":" .. line .. tb:sub(i + #top.short_src + 2) end
  end
  return { error = err, traceback = tb }
end

-- Runs middleware i of chain, or the handler after the last one.
local function run_chain(chain, i, handler, ws)
  local mw = chain[i]
  if mw == nil then return handler(ws) end
  local called = false
  return mw(ws, function()
    if called then error("call_next() called twice by a middleware", 2) end
    called = true
    return rethrow(xpcall(run_chain, record_origin, chain, i + 1, handler, ws))
  end)
end

local function build_chain(app, route)
  local app_mw, route_mw = app.ws_middleware, route.middleware
  if #route_mw == 0 then return app_mw end
  local chain = {}
  for _, m in ipairs(app_mw) do chain[#chain + 1] = m end
  for _, m in ipairs(route_mw) do chain[#chain + 1] = m end
  return chain
end

-- The handler is over: make the connection's end match how it ended.
local function ended(ws, route, ok, err)
  local st = state_of(ws)
  if not ok and err.traceback then
    log.error("error in WebSocket handler or middleware for %s (path %s, client %s): %s", route.template, ws.path,
      tostring(ws.client or "?"), err.traceback)
    if st == STATES.CONNECTING then
      core.reject(box_of(ws), 500, nil, "Internal Server Error\n")
    elseif st == STATES.CONNECTED then
      core.close(box_of(ws), 1011, "Internal Server Error")
    end
    return
  end
  if st == STATES.CONNECTING then
    -- Returned (or a middleware stopped) without accepting: refuse, as a
    -- close before accept does.
    if log.debugging() then
      log.debug("client %s: the handler or a middleware for %s returned without accept(): HTTP 403",
        tostring(ws.client or "?"), ws.path)
    end
    core.reject(box_of(ws), 403, nil, "Forbidden\n")
  elseif st == STATES.CONNECTED then
    -- 1000, or the code of the client's close if it came meanwhile
    core.close(box_of(ws))
  end
end

-- A connection of app ended. When it was the last one of an app a reload
-- replaced, that generation's code can go: but compiled traces (LuaJIT)
-- keep the closures and tables they were recorded through alive, so the
-- trace cache is flushed once, and the old generation becomes garbage.
local function generation_done(app, holder)
  app._live = app._live - 1
  if app._live == 0 and app ~= holder.app and jit and jit.flush then jit.flush() end
end

--- The functions the core runs for target, an app or a holder {app = app}
-- whose app a reload replaces: entry(box, path) in a new coroutine for each
-- upgrade request, and finish(ws, ok, err, co) once that coroutine has
-- ended. The handler runs by tail calls from entry, so a waiting handler's
-- stack holds only its own frames (LuaJIT shrinks a coroutine's stack only
-- when little of it is in use); the core calls finish when it is over.
function serve.entry(target)
  local holder = target.router and { app = target } or target
  local function entry(box, path)
    local app = holder.app
    app._live = (app._live or 0) + 1
    path = unescape_path(path)
    local route, params = app.router:match(path)
    if not route then
      if log.debugging() then
        local r = core.request(box)
        log.debug("client %s: no WebSocket route for %s: 404",
          tostring(WebSocket.address(r.client_host, r.client_port) or "?"), path)
      end
      core.reject(box, 404, nil, "Not Found\n")
      generation_done(app, holder)
      return
    end
    local ws = WebSocket.new(box, route)
    if params ~= router.NO_PARAMS then ws.path_params = params end
    core.bind(ws)
    return run_chain(build_chain(app, route), 1, route.handler, ws)
  end
  local function finish(ws, ok, err, co)
    local route = route_of(ws)
    if not ok then err = failure(ws, err, co) end
    ended(ws, route, ok, err)
    generation_done(route.app, holder)
  end
  return entry, finish
end

local LISTEN_OPTIONS = {
  "host", "port", "max_message_size", "max_header_size", "handshake_timeout", "close_timeout",
  "write_high_water", "write_limit", "read_pause_bytes", "ping_interval", "ping_timeout",
  "compression", "compress_threshold", "tls_cert", "tls_key",
  "max_connections", "max_connections_per_ip", "max_fragments", "allowed_origins", "reuseport",
  "health_path", "metrics_path",
}

-- A listen option: the command line's, else the App{...}'s.
local function listen_option(opts, app, k)
  local v = opts[k]
  if v == nil then v = app.options[k] end
  return v
end

--- Starts listening for app (or a holder {app = app}); returns the
-- listener or nil, message.
function serve.listen(target, opts)
  local app = target.router and target or target.app
  local o = {}
  for _, k in ipairs(LISTEN_OPTIONS) do o[k] = listen_option(opts, app, k) end
  local same = options.same_paths(o.health_path, o.metrics_path, "--health-path and --metrics-path")
  if same then return nil, same end
  o.worker_id = require("nexlua").worker_id
  local entry, finish = serve.entry(target)
  return core.listen(o, entry, finish)
end

-- Runs hooks in order; returns true, or false and the first error. A
-- failed hook is logged; the rest are skipped, unless all is true (shutdown
-- hooks: each releases something of its own).
-- A hook that has not returned after SLOW_HOOK seconds is named in a
-- warning: a reload whose new startup hook waits forever would otherwise
-- hang (the old version serving on) without a word.
local SLOW_HOOK = 10

-- " (file:line)" where a hook function is defined, for the log.
local function hook_at(fn)
  local info = type(fn) == "function" and getinfo(fn, "S")
  return info and format(" (%s:%d)", info.short_src, info.linedefined or 0) or ""
end

-- Warns when hook i has not returned after SLOW_HOOK s; returns the stop.
local function watch_hook(what, i, fn)
  return waiting.unless_done(SLOW_HOOK, function()
    log.warn("%s hook #%d%s has not returned after %d s; still waiting for it", what, i, hook_at(fn), SLOW_HOOK)
  end)
end

local function hook_traceback(e) return traceback(errors.text(e), 2) end

-- Calls a hook: in a task of its own when called from one, so that a bare
-- coroutine.yield() in it fails the hook, not the task running the hooks
-- (a server's start, or a reload, which would never end). app: for the
-- startup hooks, the app whose stop may cancel them (app._cancel, see
-- lifecycle.stop). Returns true; or false and the error; or false, the
-- error raised while it was being cancelled (if any), and true when a stop
-- cancelled it.
local function call_hook(what, i, fn, arg, app)
  if not core.in_task() then return xpcall(fn, hook_traceback, arg) end
  local stop_watch = watch_hook(what, i, fn)
  local t = tasks.spawn(function(a) return fn(a) end, arg) -- (fn may be a callable table)
  local ok, err = pcall(t.wait, t)
  if not ok and t.status == "pending" then
    -- The task running the hooks was cancelled (a stop during the startup
    -- hooks): so is the hook, which ends before anything else runs.
    t:cancel()
    while t.status == "pending" do pcall(t.wait, t) end
  end
  stop_watch()
  if t.status == "done" then return true end
  if app and app._cancel then
    return false, t.status == "failed" and not errors.is_cancelled(t.error) and t.traceback or nil, true
  end
  return false, t.traceback or errors.text(t.error or err)
end

local function run_hooks(hooks, what, all, arg, app)
  local first
  for i, fn in ipairs(hooks) do
    if app and app._cancel then return false, "cancelled", true end
    local ok, err, cancelled = call_hook(what, i, fn, arg, app)
    if cancelled then
      log.info("%s hook #%d%s cancelled: the server is stopping", what, i, hook_at(fn))
      if err then log.error("%s hook #%d%s failed as it was cancelled: %s", what, i, hook_at(fn), err) end
      return false, "cancelled", true
    end
    if not ok then
      log.error("%s hook #%d%s failed: %s", what, i, hook_at(fn), err)
      if not all then return false, err end
      first = first or err
    end
  end
  if app and app._cancel then return false, "cancelled", true end
  if first then return false, first end
  return true
end
serve.run_hooks = run_hooks

--- An app's lifecycle: start runs its startup hooks (true, or false and the
-- first error, and true when they were cancelled); stop runs its shutdown
-- hooks with why ("shutdown", "reload" or "failed reload"), at most once
-- after each start (never for an app that was not started), so an app
-- whose hooks ran at a reload is not shut down again at the exit. A stop
-- that finds the hooks running in another task (a reload's) waits for
-- them to end: the exit must not cut them short. A stop during the startup
-- hooks (a SIGTERM while the server starts, or while a reload starts the
-- new app) cancels them: the one running is cancelled if it waits (else no
-- other starts), the stop waits for it to end, and then runs the shutdown
-- hooks: never beside a startup hook half-way.
serve.lifecycle = {
  start = function(app, what)
    if not app._warned then
      app._warned = true
      warn_unfinished(app)
    end
    app._stopped, app._cancel = false, nil
    app._starting = core.current()
    local ok, err, cancelled = run_hooks(app.startup, what, false, nil, app)
    app._starting = nil
    return ok, err, cancelled
  end,
  -- Cancels the startup hooks if they are running (see stop), at once: a
  -- shutdown does it first, before it waits for the connections to close.
  cancel_start = function(app)
    if app._starting and app._starting ~= core.current() and not app._cancel then
      app._cancel = true
      -- (only a task that waits: a cancel of one that is about to run
      -- would be kept for its next wait, whatever that is)
      if core.task_status(app._starting) == "waiting" then core.cancel(app._starting) end
    end
  end,
  stop = function(app, what, why)
    if app._starting and app._starting ~= core.current() then
      serve.lifecycle.cancel_start(app)
      while app._starting do core.sleep(0.02) end
    end
    if app._stopped ~= false then -- never started, or stopped already
      while app._stopping do core.sleep(0.02) end
      return
    end
    app._stopped, app._stopping = true, true
    run_hooks(app.shutdown, what, true, why)
    app._stopping = false
  end,
  -- the new app's on_reload hooks, with the old app
  reloaded = function(new, old) run_hooks(new.reload_hooks or {}, "on_reload", true, old) end,
}
local lifecycle = serve.lifecycle

--- Serves app until SIGINT/SIGTERM. Returns the process exit code.
-- opts: listen options plus graceful_timeout (seconds, default 10), redis
-- (a redis:// URL: topics shared through it, see private/redis.lua) and
-- on_listening(listener, routes), called instead of logging the
-- "listening on" line (a worker of --workers tells its master instead).
function serve.run(app, opts)
  local exit_code = 0
  local listener
  local stopping = false
  local grace = opts.graceful_timeout or app.options.graceful_timeout or 10
  local holder = { app = app }
  -- From here on only holder.app: a parameter kept alive by this frame
  -- would pin the first generation of the app for the life of the process.
  app = nil -- luacheck: ignore 311
  local busy = opts.busy_poll
  if busy == nil then busy = holder.app.options.busy_poll end
  if busy ~= nil then core.busy_poll(busy) end -- (checked with the other options: options.lua)
  local reloader = opts.app_path and require("nexlua.reload").new(opts.app_path, holder, lifecycle)
  -- A SIGHUP before the server listens (its startup hooks still running)
  -- waits for it: a reload then would stop an app that has not started.
  local listening, hup_waiting = false, false

  local function shutdown(signame)
    if signame == "SIGHUP" then
      if not listening then
        hup_waiting = true
      elseif reloader and not stopping then
        reloader.reload("SIGHUP")
      end
      return
    end
    if stopping then
      log.warn("second %s: exiting now", signame)
      os.exit(1)
    end
    stopping = true
    if reloader then
      reloader.stopping = true
      reloader.abandon()
    end
    log.info("%s received: shutting down (grace period %g s)", signame, grace)
    -- Startup hooks still running (the server's, or a reload's new app's)
    -- are cancelled now, not once the connections have closed.
    lifecycle.cancel_start(holder.app)
    if reloader and reloader.incoming then lifecycle.cancel_start(reloader.incoming) end
    if listener then listener:close() end
    core.close_all(1001, "server shutting down")
    local deadline = core.now() + grace
    -- Wait for the connections to close and their handlers to finish
    -- (cleanup after the disconnect included), up to the grace period.
    while (core.conn_count() > 0 or core.handler_count() > 0) and core.now() < deadline do
      core.sleep(0.02)
    end
    if core.conn_count() > 0 or core.handler_count() > 0 then
      log.warn("%d connection(s) still open after the grace period, %d handler(s) running: stopping",
        core.conn_count(), core.handler_count())
      core.log_handlers(10)
    end
    lifecycle.stop(holder.app, "shutdown", "shutdown")
    if reloader then
      -- A reload whose new app was still in its startup hooks: that app is
      -- shut down too (the old one was, when the reload began).
      if reloader.incoming then lifecycle.stop(reloader.incoming, "shutdown", "shutdown") end
      -- Shutdown hooks a reload is running: they finish before the exit.
      if reloader.stopping_app then lifecycle.stop(reloader.stopping_app, "shutdown", "shutdown") end
    end
    core.stop()
  end

  core.on_signal(shutdown)
  local function start()
    -- One path from a flag, the other from App{...}, the same: found before
    -- the startup hooks run, as TLS files that cannot be loaded are (a port
    -- in use is found once they have: see on_startup).
    local same = options.same_paths(listen_option(opts, holder.app, "health_path"),
      listen_option(opts, holder.app, "metrics_path"), "--health-path and --metrics-path")
    if same then
      log.error("%s", same)
      exit_code = 1
      core.stop()
      return
    end
    local cert, key = listen_option(opts, holder.app, "tls_cert"), listen_option(opts, holder.app, "tls_key")
    if cert and key then
      local ok, why = core.tls_check(cert, key)
      if not ok then
        log.error("%s", why)
        exit_code = 1
        core.stop()
        return
      end
    end
    if opts.redis then
      -- Like a port in use: a Redis that does not answer at start-up is an
      -- error (once serving, a lost Redis is retried instead).
      local ok, what = require("nexlua.private.redis").start(opts.redis, not opts.redis_checked)
      if not ok then
        log.error("%s", what)
        exit_code = 1
        core.stop()
        return
      end
      log.info("%s", what)
    end
    -- (a SIGINT/SIGTERM meanwhile: its task stops the server, and cancels
    -- the startup hooks if they are running)
    if stopping then return end
    local started = lifecycle.start(holder.app, "startup")
    if stopping then return end
    if not started then
      log.error("startup failed: not serving")
      exit_code = 1
      core.stop()
      return
    end
    local err
    listener, err = serve.listen(holder, opts)
    if not listener then
      log.error("%s", err)
      exit_code = 1
      lifecycle.stop(holder.app, "shutdown", "shutdown")
      core.stop()
      return
    end
    if #holder.app.router.routes == 0 then
      log.warn("the app has no routes: every request gets HTTP 404 (add one with app:ws_route)")
    end
    if opts.on_listening then
      opts.on_listening(listener, #holder.app.router.routes)
    else
      -- at every log level: it says where the server is (--port 0)
      core.log("notice", string.format("listening on %s://%s (%d routes)", listener:scheme(),
        tostring(WebSocket.address(listener:host(), listener:port())), #holder.app.router.routes))
    end
    if reloader and opts.reload then reloader.watch() end
    listening = true
    if hup_waiting and reloader and not stopping then reloader.reload("SIGHUP") end
  end
  -- (an error of nexlua's own while starting must not end the process
  -- with status 0)
  core.spawn(function()
    local ok, err = xpcall(start, function(e) return traceback(errors.text(e), 1) end)
    if not ok then
      log.error("cannot start: %s", err)
      exit_code = 1
      if listener then listener:close() end
      core.stop()
    end
  end)
  core.run()
  if reloader then reloader.stop() end
  return exit_code
end

return serve
