-- Benchmark app: broadcast through a topic.
--   /sub  accept, subscribe to "all", wait for the disconnect (which leaves it).
--   /pub  every message received is published to "all": the core frames it
--         once and queues it to every subscriber, with no Lua per receiver.
local nexlua = require "nexlua"

local app = nexlua.App()
local publish = nexlua.publish
local BINARY = { binary = true }

app:ws_route("/sub", function(ws)
  ws:accept()
  ws:subscribe("all")
  for _ in ws:iter() do end -- until the subscriber leaves
end)

app:ws_route("/pub", function(ws)
  ws:accept()
  for data, kind in ws:iter() do
    publish("all", data, kind == "binary" and BINARY or nil)
  end
end)

return app
