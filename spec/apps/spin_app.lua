-- Code that holds the event loop (spec/api/lifecycle_spec.lua): /spin
-- accepts, then computes forever without yielding; after a connection to
-- /arm-shutdown, the shutdown hook does the same; /ws echoes.
-- /compute?s=S computes for S seconds, then waits.
local nexlua = require "nexlua"

local app = nexlua.App()
local spin_at_shutdown = false

local function spin()
  local n = 0
  while true do n = n + 1 end
end

app:ws_route("/spin", function(ws)
  ws:accept()
  nexlua.sleep(0.05) -- (the 101 goes out at the end of the loop turn)
  spin()
end)

-- /compute?s=S: computes for S seconds without a wait, then waits (a
-- sleep) and sends "done".
app:ws_route("/compute", function(ws)
  ws:accept()
  nexlua.sleep(0.05)
  local t = os.clock() + tonumber(ws.query_params:get("s", "1"))
  while os.clock() < t do end
  nexlua.sleep(0) -- WAITS HERE
  ws:send_text("done")
end)

app:ws_route("/arm-shutdown", function(ws)
  spin_at_shutdown = true
  ws:accept()
  ws:send_text("armed")
end)

app:on_shutdown(function()
  if spin_at_shutdown then spin() end
end)

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

return app
