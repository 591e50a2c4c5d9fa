-- Topics: a chat where each room is a topic, so it spans --workers.
--   /rooms/{room:slug}?name=NAME
--     joins the room's topic; the others get {"type":"joined","name":...}
--     {"type":"say","text":"hi"}      -> {"type":"said","name":...,"text":...} to everyone, the sender too
--     {"type":"whisper","text":"hi"}  -> the same, to everyone but the sender
--     {"type":"follow","room":"x"}    -> also receive room x; {"type":"following","rooms":[...]} back
--     {"type":"who"}                  -> {"type":"members","count":N} (this worker's)
--     text that is not JSON           -> {"type":"error","error":"invalid JSON"}
--     leaving: {"type":"left","name":...} to the rest
--   /announce  every text message is published to every room named in
--              ?rooms=a,b (an operator's feed): one publish per room, so a
--              member following two of them gets it twice
local nexlua = require "nexlua"

local app = nexlua.App()

local function topic_of(room) return "room:" .. room end

app:ws_route("/rooms/{room:slug}", function(ws)
  local name = ws.query_params:get("name")
  if not name or name == "" or #name > 32 then
    ws:close(1008, "a name (?name=, 1-32 bytes) is required")
    return
  end
  ws:accept()
  local topic = topic_of(ws.path_params.room)
  ws:subscribe(topic)
  ws:publish_json(topic, { type = "joined", name = name })
  local ok, err = pcall(function()
    while true do
      local got, msg = pcall(ws.receive_json, ws)
      if not got and not nexlua.is_json_error(msg) then error(msg, 0) end -- (the client left, say)
      local kind = got and type(msg) == "table" and msg.type
      if kind == "say" and type(msg.text) == "string" then
        nexlua.publish_json(topic, { type = "said", name = name, text = msg.text })
      elseif kind == "whisper" and type(msg.text) == "string" then
        ws:publish_json(topic, { type = "said", name = name, text = msg.text })
      elseif kind == "follow" and type(msg.room) == "string" and msg.room:match("^[%w_-]+$") then
        ws:subscribe(topic_of(msg.room))
        local rooms = {}
        for _, t in ipairs(ws:topics()) do rooms[#rooms + 1] = t:sub(6) end
        table.sort(rooms)
        ws:send_json({ type = "following", rooms = nexlua.json.array(rooms) })
      elseif kind == "who" then
        ws:send_json({ type = "members", count = nexlua.subscribers(topic) })
      elseif not got then
        ws:send_json({ type = "error", error = "invalid JSON" })
      else
        ws:send_json({ type = "error", error = "unknown message" })
      end
    end
  end)
  -- Whatever ended the session: tell the others (a connection that has
  -- ended gets nothing more; the core drops its subscriptions with it).
  nexlua.publish_json(topic, { type = "left", name = name })
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end)

app:ws_route("/announce", function(ws)
  ws:accept()
  local rooms = {}
  for room in (ws.query_params:get("rooms", "")):gmatch("[%w_-]+") do rooms[#rooms + 1] = room end
  for text in ws:iter_text() do
    local n = 0
    for _, room in ipairs(rooms) do n = n + nexlua.publish(topic_of(room), text) end
    ws:send_text("delivered to " .. n)
  end
end)

return app
