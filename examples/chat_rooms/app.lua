-- Room-based chat: the reference's ChatRoom on /chat/{room_id}.
--
--   ws://127.0.0.1:8000/chat/lobby?token=alice-token
--   send {"type":"message","content":"hi"}
--
-- Joining needs a token (?token= or "Authorization: Bearer"); the user name
-- comes from it. A joiner gets the room's last 50 messages, the others a
-- user_joined notice; leaving sends user_left. Each room keeps at most 1000
-- messages. A member whose connection died is dropped during a broadcast
-- and the others still get the message.
local nexlua = require "nexlua"

local json = nexlua.json

local app = nexlua.App()

local HISTORY_LIMIT = 1000 -- messages kept per room
local REPLAY = 50 -- messages sent to a joiner

-- Demo tokens; a real app would verify a JWT or ask an auth service.
local TOKENS = {
  ["alice-token"] = { id = 1, name = "alice" },
  ["bob-token"] = { id = 2, name = "bob" },
  ["carol-token"] = { id = 3, name = "carol" },
  ["dave-token"] = { id = 4, name = "dave" },
}

local function now_iso() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

--- The user for the connection's token, or nil after refusing it (a close
-- before accept: the client gets HTTP 403).
local function authenticate(ws)
  local token = ws.query_params:get("token")
  if not token or token == "" then
    token = ws.headers:get("authorization", ""):match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)")
  end
  if not token then
    ws:close(1008, "Authentication required")
    return nil
  end
  nexlua.sleep(0.005) -- as if asking an auth service
  local user = TOKENS[token]
  if not user then
    ws:close(1008, "Invalid token")
    return nil
  end
  return user
end

---------------------------------------------------------------------------
-- ChatRoom

local ChatRoom = {}
ChatRoom.__index = ChatRoom

function ChatRoom.new(room_id, opts)
  opts = opts or {}
  return setmetatable({
    room_id = room_id,
    connections = {}, -- ws -> user
    history = { first = 1, last = 0 }, -- a ring of the last history_limit messages
    history_limit = opts.history_limit or HISTORY_LIMIT,
    replay = opts.replay or REPLAY,
  }, ChatRoom)
end

--- Number of members.
function ChatRoom:size()
  local n = 0
  for _ in pairs(self.connections) do n = n + 1 end
  return n
end

--- The last n messages (default: all kept), oldest first.
function ChatRoom:recent(n)
  local h = self.history
  local from = n and math.max(h.first, h.last - n + 1) or h.first
  local out = {}
  for i = from, h.last do out[#out + 1] = h[i] end
  return out
end

--- Sends message to every member but exclude. The message is encoded once.
-- A member whose connection is gone is removed; the others still get it.
function ChatRoom:broadcast(message, exclude)
  local text = json.encode(message)
  -- A send can wait (a slow reader), and members may join meanwhile: walk a
  -- snapshot, not the live table.
  local members = {}
  for ws in pairs(self.connections) do
    if ws ~= exclude then members[#members + 1] = ws end
  end
  for _, ws in ipairs(members) do
    local ok, err = pcall(ws.send_text, ws, text)
    if not ok then
      if nexlua.is_disconnect(err) or not ws:is_connected() then
        self.connections[ws] = nil
        nexlua.log.debug("room %s: dropped a dead connection", self.room_id)
      else
        error(err, 0) -- a bug or a cancellation: not the member's fault
      end
    end
  end
end

function ChatRoom:add_connection(ws, user)
  self.connections[ws] = user
  for _, message in ipairs(self:recent(self.replay)) do
    ws:send_json(message)
  end
  self:broadcast({ type = "user_joined", user = user.name, timestamp = now_iso() }, ws)
end

function ChatRoom:remove_connection(ws, user)
  self.connections[ws] = nil
  self:broadcast({ type = "user_left", user = user.name, timestamp = now_iso() })
end

function ChatRoom:add_message(message)
  local h = self.history
  h.last = h.last + 1
  h[h.last] = message
  if h.last - h.first + 1 > self.history_limit then
    h[h.first] = nil
    h.first = h.first + 1
  end
  self:broadcast(message)
end

---------------------------------------------------------------------------
-- The route

-- Every connection of this app shares this table (one Lua state, one thread).
-- Kept across hot reloads: members who joined before a reload and after it
-- share one room (see nexlua.keep and `nexlua app.lua --reload`).
local rooms = nexlua.keep("chat_rooms", function() return {} end)
app.rooms = rooms

local function get_room(room_id)
  local room = rooms[room_id]
  if not room then
    room = ChatRoom.new(room_id)
    rooms[room_id] = room
  end
  return room
end

local function chat(ws, room, user)
  room:add_connection(ws, user)
  while true do
    local ok, data = pcall(ws.receive_json, ws)
    if ok then
      if type(data) == "table" and data.type == "message" and type(data.content) == "string" then
        room:add_message({ type = "message", user = user.name, content = data.content, timestamp = now_iso() })
      else
        ws:send_json({ type = "error", error = 'expected {"type":"message","content":"..."}' })
      end
    elseif nexlua.is_json_error(data) then
      ws:send_json({ type = "error", error = "Invalid JSON" })
    else
      error(data, 0) -- a disconnect ends the loop
    end
  end
end

app:ws_route("/chat/{room_id}", function(ws)
  local user = authenticate(ws)
  if not user then return end
  ws:accept()
  local room = get_room(ws.path_params.room_id)
  local ok, err = pcall(chat, ws, room, user)
  -- Whatever ended the session, the member leaves the room.
  room:remove_connection(ws, user)
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end)

app.ChatRoom = ChatRoom
return app
