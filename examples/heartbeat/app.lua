-- Heartbeats, two ways.
--
--   /ws    the reference's "Connection State Management" loop, in the app:
--          receive with a timeout; on "ping" answer "pong"; when nothing came
--          for `receive_timeout` seconds send a "ping" text; close 1000
--          "Timeout" when the client has not pinged (or ponged) for
--          `idle_timeout` seconds. Other text is echoed as "echo: ...".
--   /core  the same job done by the server: the route options ping_interval
--          and ping_timeout make the core send protocol-level Ping frames
--          and close with 1011 a client that does not answer; the handler is
--          a plain echo and never sees the pings (browsers answer them).
--
-- Settings (seconds), from the environment at load time:
--   HEARTBEAT_RECEIVE_TIMEOUT (30), HEARTBEAT_IDLE_TIMEOUT (60)  for /ws
--   HEARTBEAT_PING_INTERVAL (20), HEARTBEAT_PING_TIMEOUT (20)    for /core
-- app.heartbeat holds the /ws ones; changes apply to new connections.
local nexlua = require "nexlua"

local app = nexlua.App()

local function env_number(name, default) return tonumber(os.getenv(name)) or default end

local heartbeat = {
  receive_timeout = env_number("HEARTBEAT_RECEIVE_TIMEOUT", 30),
  idle_timeout = env_number("HEARTBEAT_IDLE_TIMEOUT", 60),
}
app.heartbeat = heartbeat

-- Connections currently in the /ws loop (what cleanup_connection undoes).
local active = {}
app.active = active

local function process_message(ws, message) ws:send_text("echo: " .. message) end

local function cleanup_connection(ws) active[ws] = nil end

local function heartbeat_loop(ws)
  local receive_timeout, idle_timeout = heartbeat.receive_timeout, heartbeat.idle_timeout
  local last_ping = nexlua.now()
  while true do
    local ok, message, kind = pcall(ws.receive, ws, { timeout = receive_timeout })
    if ok then
      if kind == "text" and message == "ping" then
        ws:send_text("pong")
        last_ping = nexlua.now()
      elseif kind == "text" and message == "pong" then -- the answer to our "ping"
        last_ping = nexlua.now()
      elseif kind == "text" then
        process_message(ws, message)
      end -- binary messages are not part of this protocol: ignored
    elseif nexlua.is_timeout(message) then
      if nexlua.now() - last_ping > idle_timeout then
        ws:close(1000, "Timeout")
        return
      end
      ws:send_text("ping") -- is anybody there?
    else
      error(message, 0) -- WebSocketDisconnect: the client left
    end
  end
end

app:ws_route("/ws", function(ws)
  ws:accept()
  active[ws] = true
  local ok, err = pcall(heartbeat_loop, ws)
  cleanup_connection(ws) -- the reference's finally:
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end)

app:ws_route("/core", function(ws)
  ws:accept()
  for message in ws:iter_text() do
    ws:send_text("echo: " .. message)
  end
end, {
  ping_interval = env_number("HEARTBEAT_PING_INTERVAL", 20),
  ping_timeout = env_number("HEARTBEAT_PING_TIMEOUT", 20),
})

return app
