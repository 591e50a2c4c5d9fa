--- The application: routes, middleware and lifecycle hooks.
--   local app = nexlua.App()
--   app:ws_route("/chat/{room_id}", function(ws) ... end)
--   return app
local router = require "nexlua.router"
local options = require "nexlua.private.options"
local log = require "nexlua.log"

local type, error, ipairs, pairs, pcall, select, setmetatable, getmetatable, tostring =
  type, error, ipairs, pairs, pcall, select, setmetatable, getmetatable, tostring
local format = string.format
local getinfo = debug.getinfo

local App = {}
App.__index = App

local function new_app(opts)
  opts = opts or {}
  options.check_app(opts, 2)
  local self = setmetatable({
    router = router.new(),
    ws_middleware = {},
    startup = {},
    shutdown = {},
    reload_hooks = {},
    options = opts,
    state = {},
    unfinished = {}, -- ws_route(path) decorators not called yet -> "file:line: ws_route(path)"
  }, App)
  -- app.ws_route(path, handler) works as well as app:ws_route(path, handler).
  local methods = { "ws_route", "add_ws_middleware", "on_startup", "on_shutdown", "on_reload" }
  for _, name in ipairs(methods) do
    local m = App[name]
    self[name] = function(a, ...)
      if a == self then return m(self, ...) end
      return m(self, a, ...)
    end
  end
  return self
end

local function check_fn(fn, what, level)
  if type(fn) ~= "function" and not (type(fn) == "table" and getmetatable(fn) and getmetatable(fn).__call) then
    error(format("%s must be a function, got %s", what, type(fn)), level + 1)
  end
end

local decorator_of

-- ws_route's work; level: the caller's level, for errors and the warning.
local function add_route(self, path, handler, opts, level)
  check_fn(handler, "ws_route handler", level + 1)
  opts = opts or {}
  if type(opts) ~= "table" then error("ws_route options must be a table", level + 1) end
  options.check_route(opts, level + 1)
  local mw = opts.middleware or {}
  if type(mw) ~= "table" or getmetatable(mw) then
    error("ws_route: middleware must be a list of functions, got " .. type(mw), level + 1)
  end
  -- A list, whole (a key that is not 1..n, a hole: that middleware, an
  -- auth check say, would be skipped), copied (a later change to the
  -- table must not change the route).
  local list, n = {}, #mw
  for k in pairs(mw) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
      error(format("ws_route: middleware must be a list of functions (without holes), found the key %s",
        type(k) == "string" and format("%q", k) or tostring(k)), level + 1)
    end
  end
  for i = 1, n do
    check_fn(mw[i], "route middleware #" .. i, level + 1)
    list[i] = mw[i]
  end
  local route = { handler = handler, middleware = list, options = opts, app = self }
  local ok, err, shadow = pcall(self.router.add, self.router, path, route)
  if not ok then error(err, level + 1) end
  if shadow then
    local at = getinfo(level + 1, "Sl")
    log.warn("%s:%d: route %s never matches: %s, registered before it, matches the same paths " ..
      "(every path this one matches; the first match wins)", at.short_src, at.currentline or 0, path,
      shadow.template)
  end
end

-- The decorator form's function (ws_route(path) or ws_route(path, nil,
-- opts)); until it is called, the route is listed in app.unfinished, for
-- the warning at the start (a misspelt handler with options ends up here).
function decorator_of(self, path, opts)
  local at = getinfo(2, "Sl") -- (ws_route tail-calls this: 2 is its caller)
  local decorator
  decorator = function(h)
    self.unfinished[decorator] = nil
    add_route(self, path, h, opts, 2)
    return h
  end
  self.unfinished[decorator] = format("%s:%d: ws_route(%s)", at.short_src, at.currentline or 0, tostring(path))
  return decorator
end

--- Registers a WebSocket route. handler(ws) runs in its own coroutine.
-- opts.middleware: route-level middleware, run after the app's.
-- Returns the app, so calls can be chained. Without a handler it returns a
-- decorator-like function: app:ws_route("/x")(function(ws) ... end).
function App:ws_route(path, ...)
  local handler, opts = ...
  if select("#", ...) == 0 then return decorator_of(self, path, nil) end
  if handler == nil and opts == nil then
    error("ws_route: the handler is nil (a misspelled name? the decorator form is " ..
      "app:ws_route(path)(handler), or app:ws_route(path, nil, opts)(handler))", 2)
  end
  if handler == nil then return decorator_of(self, path, opts) end
  add_route(self, path, handler, opts, 2)
  return self
end

--- Adds middleware(ws, call_next) around every WebSocket handler, in order.
function App:add_ws_middleware(fn)
  check_fn(fn, "middleware", 2)
  self.ws_middleware[#self.ws_middleware + 1] = fn
  return self
end

--- fn() runs before the server accepts connections (in order; may wait).
function App:on_startup(fn)
  check_fn(fn, "startup hook", 2)
  if self._stopped == false and not self._starting then -- (started, its hooks done: serving)
    error("on_startup: the app has started already, so this hook would not run until it starts again " ..
      "(register hooks in the app file, or call fn yourself)", 2)
  end
  self.startup[#self.startup + 1] = fn
  return fn
end

--- fn() runs when the server stops (in order; may wait).
function App:on_shutdown(fn)
  check_fn(fn, "shutdown hook", 2)
  self.shutdown[#self.shutdown + 1] = fn
  return fn
end

--- fn(old_app) runs after this app replaced old_app in a hot reload
-- (after its startup hooks); for migrating kept state.
function App:on_reload(fn)
  check_fn(fn, "reload hook", 2)
  self.reload_hooks[#self.reload_hooks + 1] = fn
  return fn
end

--- Registers a path converter usable as {name:key} in routes.
function App.register_converter(key, conv)
  return router.register_converter(key, conv) -- (a tail call: errors name the app's line)
end

function App:__tostring() return format("nexlua.App(%d routes)", #self.router.routes) end

local function is_app(v) return getmetatable(v) == App end

--- Warns of each ws_route(path) whose decorator was never given a handler
-- (the route does not exist), once the app file has run.
local function warn_unfinished(app)
  local lines = {}
  for _, where in pairs(app.unfinished) do lines[#lines + 1] = where end
  table.sort(lines)
  for _, where in ipairs(lines) do
    log.warn("%s was never given a handler: the route does not exist (a misspelt handler name, " ..
      "nil there? the decorator form is app:ws_route(path)(handler), or ws_route(path, nil, opts)(handler))",
      where)
  end
end

return { new = new_app, is_app = is_app, App = App, tostring = tostring, warn_unfinished = warn_unfinished }
