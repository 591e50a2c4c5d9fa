-- SIGTERM spec app: one handler waits in receive, one keeps sending.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

app:ws_route("/ticker", function(ws)
  ws:accept()
  while true do
    ws:send_text("tick")
    nexlua.sleep(0.05)
  end
end)

return app
