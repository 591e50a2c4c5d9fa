--- nexlua: WebSocket apps in Lua, served by a C core.
--   local nexlua = require "nexlua"
--   local app = nexlua.App()
--   app:ws_route("/ws", function(ws) ws:accept() ... end)
--   return app
local core = require "nexlua.core"
-- Errors the core raises name the app's line, not one in these modules.
core.framework_source(debug.getinfo(1, "S").source:match("^(@.*/)init%.lua$") or "")
local app = require "nexlua.app"
local errors = require "nexlua.errors"
local json = require "nexlua.json"
local log = require "nexlua.log"
local router = require "nexlua.router"
local tasks = require "nexlua.tasks"
local queue = require "nexlua.queue"
local reload = require "nexlua.reload"
local topics = require "nexlua.topics"

local nexlua = {
  _VERSION = core.version,
  version = core.version,

  --- A new application. opts: default listen options (port, max_message_size, ...).
  App = app.new,

  Error = errors.Error,
  WebSocketError = errors.WebSocketError,
  WebSocketDisconnect = errors.WebSocketDisconnect,
  MessageTypeError = errors.MessageTypeError,
  JSONDecodeError = errors.JSONDecodeError,
  TimeoutError = errors.TimeoutError,
  CancelledError = errors.CancelledError,
  QueueFull = errors.QueueFull,
  QueueEmpty = errors.QueueEmpty,
  error_class = errors.define,
  is_error = errors.is_error,
  is_cancelled = errors.is_cancelled,
  is_disconnect = errors.is_disconnect,
  is_websocket_error = errors.is_websocket_error,
  is_type_error = errors.is_type_error,
  is_json_error = errors.is_json_error,
  is_timeout = errors.is_timeout,

  register_converter = router.register_converter,

  --- Suspends the calling coroutine for seconds (others keep running).
  sleep = tasks.sleep,
  --- The loop's clock, in seconds (monotonic, updated once per loop turn).
  now = core.now,
  --- Runs fn(...) in a new task, from the next loop turn; returns the Task
  -- (task:wait(timeout), task:cancel(), task:done()).
  spawn = tasks.spawn,
  --- Runs fn(...) and returns its results, or raises TimeoutError after seconds.
  wait_for = tasks.wait_for,
  --- An asyncio-style queue: nexlua.Queue{maxsize = n}.
  Queue = queue.new,

  --- Topics (see ws:subscribe): nexlua.publish(topic, data, {binary =,
  -- exclude = ws}) queues data to every subscriber and returns how many.
  publish = topics.publish,
  publish_json = topics.publish_json,
  --- Subscribers of a topic in this process.
  subscribers = topics.subscribers,

  --- A value that survives hot reloads: nexlua.keep("rooms", function() return {} end).
  keep = reload.keep,

  --- Counters of the core: connections, handlers, compressions,
  -- compression_cache_hits (a message broadcast to many compressed peers
  -- is compressed once).
  stats = core.stats,

  --- This process's worker number: 1..N with `--workers N`, 1 otherwise.
  -- Each worker has its own app state; see "Workers" in the README.
  worker_id = 1,

  json = json,
  log = log,
}

return nexlua
