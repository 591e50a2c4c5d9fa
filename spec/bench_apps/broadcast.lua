-- Benchmark app: broadcast.
--   /sub  accept, join the subscribers, wait for the disconnect, leave.
--   /pub  every message received is sent (as text) to every subscriber.
-- A plain Lua loop over a table: the baseline a C pub/sub API has to beat.
local nexlua = require "nexlua"

local app = nexlua.App()

local subscribers = {}
local pcall, pairs = pcall, pairs

app:ws_route("/sub", function(ws)
  ws:accept()
  subscribers[ws] = true
  for _ in ws:iter() do end -- until the subscriber leaves
  subscribers[ws] = nil
end)

local function send_text(ws, data) ws:send_text(data) end

app:ws_route("/pub", function(ws)
  ws:accept()
  for data in ws:iter() do
    for sub in pairs(subscribers) do
      -- A subscriber that is already gone raises WebSocketDisconnect; its own
      -- handler removes it, the publisher goes on.
      pcall(send_text, sub, data)
    end
  end
end)

return app
