-- Connection limits: the reference's WebSocketPool.
--
--   ws://127.0.0.1:8000/ws
--
-- At most max_connections clients at a time (NEXLUA_POOL_MAX, default 500):
-- one more is refused with close(1008, "Server at capacity") before accept
-- (HTTP 403 on the wire); a slot frees as soon as a client leaves. Every
-- text message is broadcast to all connected clients as
-- {"type":"message","from":<id>,"text":...}; "stats" answers
-- {"type":"stats","connections":n,"max_connections":m}. Connections found
-- dead during a broadcast are dropped from the pool.
local nexlua = require "nexlua"

local json = nexlua.json

local app = nexlua.App()

local WebSocketPool = {}
WebSocketPool.__index = WebSocketPool

function WebSocketPool.new(max_connections)
  return setmetatable({ max_connections = max_connections or 1000, active_connections = {}, count = 0 },
    WebSocketPool)
end

function WebSocketPool:size() return self.count end

--- Adds ws, or refuses it (before accept: HTTP 403) when the pool is full.
function WebSocketPool:add_connection(ws)
  if self.count >= self.max_connections then
    ws:close(1008, "Server at capacity")
    return false
  end
  self.active_connections[ws] = true
  self.count = self.count + 1
  return true
end

function WebSocketPool:remove_connection(ws)
  if self.active_connections[ws] then
    self.active_connections[ws] = nil
    self.count = self.count - 1
  end
end

--- Sends message to every connection (encoded once); returns how many got
-- it. Dead connections are removed, the others still get the message.
function WebSocketPool:broadcast_to_all(message)
  local text = json.encode(message)
  local targets = {} -- a snapshot: a send may wait, and clients may come and go meanwhile
  for ws in pairs(self.active_connections) do targets[#targets + 1] = ws end
  local delivered = 0
  for _, ws in ipairs(targets) do
    local ok, err = pcall(ws.send_text, ws, text)
    if ok then
      delivered = delivered + 1
    elseif nexlua.is_disconnect(err) or not ws:is_connected() then
      self:remove_connection(ws)
    else
      error(err, 0) -- a bug or a cancellation
    end
  end
  return delivered
end

local ws_pool = WebSocketPool.new(tonumber(os.getenv("NEXLUA_POOL_MAX")) or 500)
app.pool = ws_pool

local next_id = 0

local function process_message(ws, message)
  if message == "stats" then
    ws:send_json({ type = "stats", connections = ws_pool:size(), max_connections = ws_pool.max_connections })
  else
    ws_pool:broadcast_to_all({ type = "message", from = ws.state.id, text = message })
  end
end

app:ws_route("/ws", function(ws)
  if not ws_pool:add_connection(ws) then return end
  -- No wait between add_connection and accept(), so a broadcast never finds
  -- a member that is still in its handshake.
  -- From here on the slot must be given back, whatever happens (even if the
  -- client is gone before accept() completes).
  local ok, err = pcall(function()
    ws:accept()
    next_id = next_id + 1
    ws.state.id = next_id
    ws:send_json({ type = "welcome", id = ws.state.id })
    for message in ws:iter_text() do
      process_message(ws, message)
    end
  end)
  ws_pool:remove_connection(ws)
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end)

return app
