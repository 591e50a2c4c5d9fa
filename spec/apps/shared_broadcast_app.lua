-- Large publishes to subscribers that do not read (spec/api/shared_broadcast_spec.lua).
--   /sub    subscribes to "big" (and is remembered, for direct sends)
--   /pub    each binary message is published to "big"; a text message
--           "mark:<s>" is sent to every subscriber directly instead (own
--           bytes between the shared ones); replies the count each time
local nexlua = require "nexlua"

local app = nexlua.App()
local subs = {}

app:ws_route("/sub", function(ws)
  ws:accept()
  ws:subscribe("big")
  subs[ws] = true
  for _ in ws:iter() do end
  subs[ws] = nil
end)

app:ws_route("/pub", function(ws)
  ws:accept()
  for data, kind in ws:iter() do
    local n = 0
    if kind == "text" then
      for s in pairs(subs) do
        if pcall(s.send_text, s, data) then n = n + 1 end
      end
    else
      n = nexlua.publish("big", data, { binary = true })
    end
    ws:send_text(tostring(n))
  end
end)

return app
