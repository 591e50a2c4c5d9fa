-- Logs what clients send (spec/api/log_spec.lua): /log logs each text
-- message at info and replies "ok".
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/log", function(ws)
  ws:accept()
  for text in ws:iter_text() do
    nexlua.log.info("client said: %s", text)
    ws:send_text("ok")
  end
end)

return app
