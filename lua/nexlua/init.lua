--- nexlua: WebSocket apps in Lua, served by a C core.
--   local nexlua = require "nexlua"
--   local app = nexlua.App()
--   app:ws_route("/ws", function(ws) ws:accept() ... end)
--   return app
local core = require "nexlua.core"
local app = require "nexlua.app"
local errors = require "nexlua.errors"
local json = require "nexlua.json"
local log = require "nexlua.log"
local router = require "nexlua.router"

local nexlua = {
  _VERSION = core.version,
  version = core.version,

  --- A new application. opts: default listen options (port, max_message_size, ...).
  App = app.new,

  WebSocketError = errors.WebSocketError,
  WebSocketDisconnect = errors.WebSocketDisconnect,
  MessageTypeError = errors.MessageTypeError,
  JSONDecodeError = errors.JSONDecodeError,
  TimeoutError = errors.TimeoutError,
  is_disconnect = errors.is_disconnect,
  is_websocket_error = errors.is_websocket_error,
  is_type_error = errors.is_type_error,
  is_json_error = errors.is_json_error,
  is_timeout = errors.is_timeout,

  register_converter = router.register_converter,

  --- Suspends the calling coroutine for seconds (others keep running).
  sleep = core.sleep,
  --- The loop's clock, in seconds (monotonic, updated once per loop turn).
  now = core.now,
  --- Runs fn(...) in a new coroutine, from the next loop turn.
  spawn = core.spawn,

  json = json,
  log = log,
}

return nexlua
