-- A feed for spec/api/heartbeat_spec.lua: 1 KB published to topic "feed"
-- every 0.1 s from a startup task; /sub?burst=N subscribes, then publishes
-- N messages of 1 KB at once (a backlog for a slow reader).
local nexlua = require "nexlua"

local app = nexlua.App()
local chunk = string.rep("f", 1000)

app:on_startup(function()
  nexlua.spawn(function()
    while true do
      nexlua.sleep(0.1)
      nexlua.publish("feed", chunk, { binary = true })
    end
  end)
end)

app:ws_route("/sub", function(ws)
  ws:accept()
  ws:subscribe("feed")
  for _ = 1, tonumber(ws.query_params:get("burst") or "0") do
    nexlua.publish("feed", chunk, { binary = true })
  end
  for _ in ws:iter() do end
end)

return app
