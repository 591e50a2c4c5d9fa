-- Broadcast over permessage-deflate: one compression for many receivers.
--   /sub     subscribers (kept in a table until they leave)
--   /pub     each text message is sent to every subscriber
--   /stats   replies nexlua.stats() as JSON to any message
--   /tsub    subscribers of the topic "news"
--   /tpub    each text message is published to "news"; replies the count
local nexlua = require "nexlua"

local app = nexlua.App()
local subs = {}

app:ws_route("/sub", function(ws)
  ws:accept()
  subs[ws] = true
  for _ in ws:iter() do end
  subs[ws] = nil
end)

app:ws_route("/pub", function(ws)
  ws:accept()
  for msg in ws:iter_text() do
    local n = 0
    for s in pairs(subs) do
      if pcall(s.send_text, s, msg) then n = n + 1 end
    end
    ws:send_text(tostring(n))
  end
end)

app:ws_route("/tsub", function(ws)
  ws:accept()
  ws:subscribe("news")
  for _ in ws:iter() do end
end)

app:ws_route("/tpub", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(tostring(nexlua.publish("news", msg))) end
end)

app:ws_route("/stats", function(ws)
  ws:accept()
  for _ in ws:iter() do ws:send_json(nexlua.stats()) end
end)

return app
