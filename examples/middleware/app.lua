-- WebSocket middleware: the reference's auth and rate-limit middleware, plus
-- a route-level one.
--
--   ws://127.0.0.1:8000/ws?token=alice-token      (route middleware + handler)
--   ws://127.0.0.1:8000/plain?token=bob-token     (app middleware only)
--
-- A middleware is fn(ws, call_next). It runs before the handler, may refuse
-- the connection (close before accept: HTTP 403) instead of calling
-- call_next(), and its code after call_next() runs once the handler has
-- returned. App middleware (add_ws_middleware, in the order added) wraps
-- route middleware (ws_route's {middleware = {...}}), which wraps the handler.
-- Every step appends its name to ws.state.trace, so the order can be seen.
local nexlua = require "nexlua"

local app = nexlua.App()

local function trace(ws, step)
  local t = ws.state.trace
  if not t then
    t = {}
    ws.state.trace = t
  end
  t[#t + 1] = step
end

---------------------------------------------------------------------------
-- Rate limiting: at most `limit` connections per `window` seconds per key
-- (a sliding window of the accepted connections' times).

local RateLimiter = {}
RateLimiter.__index = RateLimiter

function RateLimiter.new(opts)
  return setmetatable({ limit = opts.limit, window = opts.window, hits = {}, swept_at = nexlua.now() },
    RateLimiter)
end

-- Forgets the keys with no connection in the window (once per window), so
-- the table holds only recent clients, not every address ever seen.
function RateLimiter:sweep(now)
  for key, times in pairs(self.hits) do
    if now - times[#times] >= self.window then self.hits[key] = nil end
  end
  self.swept_at = now
end

--- True (and counts the connection) when key is under its limit.
function RateLimiter:allow(key)
  local now = nexlua.now()
  if now - self.swept_at >= self.window then self:sweep(now) end
  local times = self.hits[key] or {}
  local kept = {}
  for _, t in ipairs(times) do
    if now - t < self.window then kept[#kept + 1] = t end
  end
  if #kept >= self.limit then
    self.hits[key] = kept
    return false
  end
  kept[#kept + 1] = now
  self.hits[key] = kept
  return true
end

local limiter = RateLimiter.new({
  limit = tonumber(os.getenv("NEXLUA_RATE_LIMIT")) or 10,
  window = tonumber(os.getenv("NEXLUA_RATE_WINDOW")) or 60,
})
app.rate_limiter = limiter

local function websocket_rate_limit_middleware(ws, call_next)
  trace(ws, "rate_limit")
  local client_ip = ws.client and ws.client.host or "unknown"
  if not limiter:allow(client_ip) then
    ws:close(1008, "Rate limit exceeded")
    return
  end
  call_next()
end

---------------------------------------------------------------------------
-- Authentication

local TOKENS = {
  ["alice-token"] = { id = 1, name = "alice" },
  ["bob-token"] = { id = 2, name = "bob" },
}

local function verify_token(token)
  nexlua.sleep(0.005) -- as if asking an auth service
  return TOKENS[token]
end

-- The last sessions, oldest first: written by the outermost code that runs
-- after call_next(), i.e. after everything else.
app.sessions = {}

local function websocket_auth_middleware(ws, call_next)
  trace(ws, "auth")
  local token = ws.query_params:get("token")
  if not token then
    ws:close(1008, "Authentication required")
    return
  end
  local user = verify_token(token)
  if not user then
    ws:close(1008, "Invalid token")
    return
  end
  ws.state.user = user
  call_next()
  trace(ws, "auth:after")
  table.insert(app.sessions, { user = user.name, path = ws.path, trace = ws.state.trace })
  if #app.sessions > 100 then table.remove(app.sessions, 1) end
end

-- Rate limiting first: a flood of bad tokens is limited too and never
-- reaches verify_token (the reference adds auth first).
app:add_ws_middleware(websocket_rate_limit_middleware)
app:add_ws_middleware(websocket_auth_middleware)

---------------------------------------------------------------------------
-- A route-level middleware: counts messages, and once the handler has
-- returned, sends a summary if the connection is still open.

local function session_middleware(ws, call_next)
  trace(ws, "route")
  ws.state.messages = 0
  local started = nexlua.now()
  call_next()
  trace(ws, "route:after")
  if ws:is_connected() then
    ws:send_json({
      type = "session_end",
      messages = ws.state.messages,
      seconds = math.floor((nexlua.now() - started) * 1000 + 0.5) / 1000,
      trace = ws.state.trace,
    })
  end
end

local function handler(ws)
  trace(ws, "handler")
  ws:accept()
  local user = ws.state.user -- set by the auth middleware
  ws:send_json({ type = "welcome", user = user.name, trace = ws.state.trace })
  for message in ws:iter_text() do
    if message == "bye" then break end
    ws.state.messages = (ws.state.messages or 0) + 1
    ws:send_json({ type = "echo", user = user.name, text = message })
  end
  trace(ws, "handler:end")
end

app:ws_route("/ws", handler, { middleware = { session_middleware } })
app:ws_route("/plain", handler)

return app
