-- Topics across reloads (spec/reload/state_spec.lua): /room/{name} subscribes
-- to "room:NAME"; every text message is published to the room, tagged with
-- the generation of the code that handled it.
local nexlua = require "nexlua"

local VERSION = "{{VERSION}}"
local app = nexlua.App()

app:ws_route("/room/{name}", function(ws)
  ws:accept()
  local topic = "room:" .. ws.path_params.name
  ws:subscribe(topic)
  ws:send_text("in " .. topic .. " [" .. VERSION .. "]")
  for text in ws:iter_text() do
    nexlua.publish(topic, text .. " [" .. VERSION .. "] to " .. nexlua.subscribers(topic))
  end
end)

return app
