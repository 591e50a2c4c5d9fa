-- A handler that holds the event loop (spec/api/lifecycle_spec.lua): /spin
-- accepts, then computes forever without yielding; /ws echoes.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/spin", function(ws)
  ws:accept()
  nexlua.sleep(0.05) -- (the 101 goes out at the end of the loop turn)
  local n = 0
  while true do n = n + 1 end
end)

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

return app
