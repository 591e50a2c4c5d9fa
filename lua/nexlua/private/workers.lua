--- --workers N: a master process forks N workers and supervises them.
--
-- Each worker is a whole server: it loads the app, runs the startup hooks,
-- listens on the shared port (SO_REUSEPORT: the kernel spreads new
-- connections over the workers' sockets), serves, and runs the shutdown
-- hooks, in its own loop and Lua state. The master loads no app and runs no
-- loop: it forks, forwards signals and replaces a worker that dies.
--
-- Start-up: worker 1 starts alone, so that a port of 0 is chosen once (by
-- its bind) and an app that cannot start fails once; the others then bind
-- the port worker 1 got. When all are listening the master logs the
-- "listening on" line. A worker that exits before it is listening at
-- start-up stops everything with status 1: the master never loops on an app
-- that cannot start. A replacement that cannot start (the file on disk was
-- broken since) is tried again later, with a growing delay, while another
-- worker serves: those keep their clients, and once the file is fixed the
-- next try (or a SIGHUP, at once) brings the replacement back. When no
-- worker serves, it stops everything.
local core = require "nexlua.core"
local log = require "nexlua.log"
local WebSocket = require "nexlua.websocket"

local pairs, ipairs, tonumber, format, match, min, max, time =
  pairs, ipairs, tonumber, string.format, string.match, math.min, math.max, os.time

local workers = {}

-- A replacement that cannot start is tried again after RETRY_FIRST seconds,
-- then twice as long each time, up to RETRY_MAX.
local RETRY_FIRST, RETRY_MAX = 1, 30

local function describe(status, signame)
  if signame then return "killed by " .. signame end
  return "exit status " .. status
end

-- Runs the master until every worker has exited. Returns the exit code, or
-- nil and a worker id in a freshly forked worker.
local function master(n, opts)
  local by_id, by_pid = {}, {} -- id -> {pid =, ready =}; pid -> id
  local state = "starting"     -- "starting" | "serving" | "stopping"
  local signalled = false      -- a SIGINT/SIGTERM came (a stop of our own is not one)
  local code = 0
  local first                  -- what the first worker to listen reported

  -- With --redis every worker shares topics through Redis itself (the
  -- master's relay would deliver each message twice). Redis is checked
  -- once, here: a worker replaced during a Redis outage must start and
  -- retry, not take the server down.
  if opts.redis then
    local up, rerr = require("nexlua.private.redis").check(opts.redis)
    if not up then
      log.error("%s", rerr)
      return 1
    end
    opts.redis_checked = true
  end
  local ok, err = core.supervise(not opts.redis)
  if not ok then
    log.error("%s", err)
    return 1
  end

  -- Forks worker id: true in the master, "child" in the worker, false when
  -- fork failed.
  local function start(id)
    local pid, ferr = core.fork(id)
    if not pid then
      log.error("cannot start worker %d: %s", id, ferr)
      return false
    end
    if pid == 0 then return "child" end
    by_id[id] = { pid = pid, ready = false }
    by_pid[pid] = id
    return true
  end

  local function alive()
    local k = 0
    for _ in pairs(by_id) do k = k + 1 end
    return k
  end

  local function forward(signame)
    for _, w in pairs(by_id) do core.kill(w.pid, signame) end
  end

  local function stop(why_code)
    if why_code ~= 0 then code = why_code end
    state = "stopping"
    forward("SIGTERM")
  end

  -- Replacements waiting to be tried again: id -> {at = os.time(), delay = s}.
  local retry = {}

  local function serving()
    for _, w in pairs(by_id) do
      if w.ready then return true end
    end
    return false
  end

  -- Seconds until the next retry is due (0: one is), or nil with none.
  local function next_retry()
    local soonest
    for _, r in pairs(retry) do
      if not soonest or r.at < soonest then soonest = r.at end
    end
    return soonest and max(0, soonest - time())
  end

  -- Starts the replacements that are due (all of them when now is true).
  -- Returns "child", id in a freshly forked worker.
  local function retry_due(now)
    local due = {}
    for id, r in pairs(retry) do
      if now or r.at <= time() then due[#due + 1] = id end
    end
    for _, id in ipairs(due) do
      local r = retry[id]
      local started = start(id)
      if started == "child" then return "child", id end
      if started then
        retry[id] = nil
        by_id[id].delay = r.delay
      else
        r.at = time() + r.delay
      end
    end
  end

  local r = start(1)
  if r == "child" then return nil, 1 end
  if not r then return 1 end

  while alive() > 0 do
    local ev, a, b, c = core.wait_event(state == "serving" and next_retry() or nil)
    if ev == nil then
      local child, id = retry_due(false)
      if child then return nil, id end
    elseif ev == "signal" then
      if a == "SIGHUP" then
        if state ~= "stopping" then
          log.info("SIGHUP received: reloading %d worker(s)", alive())
          forward(a)
          -- (and a replacement that could not start tries the file again now)
          local child, id = retry_due(true)
          if child then return nil, id end
        end
      elseif state == "stopping" and not signalled then
        -- Stopping on our own (a worker could not start): this is the first
        -- stop request, and the workers have had their SIGTERM (one from
        -- the master again would be their second).
        signalled = true
        log.info("%s received: already shutting down %d worker(s)", a, alive())
      elseif state == "stopping" then
        log.warn("second %s: exiting now", a)
        forward(a)
        -- A worker that does not go (stuck outside its loop, or in a
        -- system call) would keep the port: killed after a second.
        local deadline = core.hrtime() + 1
        while alive() > 0 and core.hrtime() < deadline do
          local e, pid = core.wait_event(max(0, deadline - core.hrtime()))
          if e == "exit" and by_pid[pid] then by_id[by_pid[pid]], by_pid[pid] = nil, nil end
        end
        for id, wk in pairs(by_id) do
          log.warn("worker %d (pid %d) still running: killing it", id, wk.pid)
          core.kill(wk.pid, "SIGKILL")
        end
        return 1
      else
        log.info("%s received: shutting down %d worker(s)", a, alive())
        signalled = true
        state = "stopping"
        forward(a)
      end
    elseif ev == "ready" then
      local pid, port, scheme, host, routes = match(a, "^(%d+) (%d+) (%S+) (%S+) (%d+)$")
      local id = by_pid[tonumber(pid)]
      if id then
        by_id[id].ready = true
        by_id[id].delay = nil -- (a later failure starts from the first delay)
        if not first then
          first = { port = tonumber(port), scheme = scheme, host = host, routes = tonumber(routes) }
          -- The others bind what the first one got (a port of 0 is chosen once).
          opts.port, opts.host = first.port, first.host
          for i = 2, n do
            if state == "stopping" then break end
            r = start(i)
            if r == "child" then return nil, i end
            if not r then stop(1) end
          end
        end
        if state == "starting" then
          local all = true
          for i = 1, n do all = all and by_id[i] ~= nil and by_id[i].ready end
          if all then
            state = "serving"
            core.log("notice", format("listening on %s://%s (%d routes)", first.scheme,
              tostring(WebSocket.address(first.host, first.port)), first.routes)) -- at every log level
          end
        elseif state == "serving" then
          log.info("worker %d (pid %s) is serving again", id, pid)
        end
      end
    elseif ev == "exit" then
      local id = by_pid[a]
      if id then
        local w = by_id[id]
        by_pid[a], by_id[id] = nil, nil
        local how = describe(b, c)
        if state == "stopping" then
          if b ~= 0 then
            log.warn("worker %d (pid %d) ended with %s", id, a, how)
            code = 1
          end
        elseif not w.ready and state == "serving" and serving() then
          -- A replacement: the file on disk cannot start now. The others
          -- keep serving; it is tried again later.
          local delay = w.delay and min(w.delay * 2, RETRY_MAX) or RETRY_FIRST
          log.error("worker %d (pid %d) did not start (%s): trying again in %d s; " ..
            "the other workers keep serving", id, a, how, delay)
          retry[id] = { at = time() + delay, delay = delay }
        elseif not w.ready then
          log.error("worker %d (pid %d) did not start (%s): stopping", id, a, how)
          stop(1)
        else
          if b == 0 and not c then -- a graceful end: a stop signal sent to it alone
            log.warn("worker %d (pid %d) stopped (exit status 0: a signal sent to it alone?): " ..
              "starting a replacement", id, a)
          else
            log.error("worker %d (pid %d) died (%s): starting a replacement", id, a, how)
          end
          r = start(id)
          if r == "child" then return nil, id end
          if not r then stop(1) end
        end
      end
    end
  end
  return code
end

--- Runs n workers of serve(opts) (a function returning the exit code of a
-- single server) under a master. Returns the exit code of this process:
-- the master's, or the worker's in a worker.
function workers.run(n, opts, serve)
  local code, id = master(n, opts)
  if not id then return code end
  require("nexlua").worker_id = id
  -- Topics published in this worker reach the subscribers of the others
  -- (through the master, or through Redis with --redis).
  if not opts.redis then
    local relayed, err = core.relay_start()
    if not relayed and err then log.warn("%s: topics stay in this worker", err) end
  end
  opts.reuseport = true
  opts.on_listening = function(listener, routes)
    log.info("serving (pid %d)", core.pid())
    core.worker_ready(format("%d %d %s %s %d", core.pid(), listener:port(), listener:scheme(),
      listener:host(), routes))
  end
  return serve(opts)
end

return workers
