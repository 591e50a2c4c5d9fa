-- Hot reload spec app: a chat whose rooms are kept with nexlua.keep, so a
-- member who joined before a reload and one who joined after it share the
-- room. Every line names the version of the handler that sent it.
-- A template: {{VERSION}} is filled in by the spec.
local nexlua = require "nexlua"

local VERSION = "{{VERSION}}"

-- init runs once, whatever the number of reloads: the log shows it.
local rooms = nexlua.keep("rooms", function()
  nexlua.log.info("rooms: init")
  return {}
end)

local app = nexlua.App()

local function broadcast(room, text)
  local members = {}
  for peer in pairs(room) do members[#members + 1] = peer end
  for _, peer in ipairs(members) do pcall(peer.send_text, peer, text) end
end

app:ws_route("/chat/{room}/{name}", function(ws)
  ws:accept()
  local room_id, name = ws.path_params.room, ws.path_params.name
  local room = rooms[room_id]
  if not room then
    room = {}
    rooms[room_id] = room
  end
  room[ws] = name
  broadcast(room, string.format("%s joined [%s]", name, VERSION))
  local ok, err = pcall(function()
    for msg in ws:iter_text() do broadcast(room, string.format("%s: %s [%s]", name, msg, VERSION)) end
  end)
  room[ws] = nil
  broadcast(room, string.format("%s left [%s]", name, VERSION))
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end)

-- Names the kept table, so a spec can see it is the same one in every generation.
app:ws_route("/kept", function(ws)
  ws:accept()
  ws:send_text(tostring(rooms) .. " " .. VERSION)
end)

return app
