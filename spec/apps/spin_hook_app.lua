-- A shutdown hook that holds the event loop (spec/api/lifecycle_spec.lua):
-- it computes forever without yielding.
local nexlua = require "nexlua"

local app = nexlua.App()

app:on_shutdown(function()
  local n = 0
  while true do n = n + 1 end
end)

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

return app
