-- Handlers that do not read what their client sent
-- (spec/api/liveness_spec.lua): /noread waits 0.3 s, then returns;
-- /sleeper waits 30 s.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/noread", function(ws)
  ws:accept()
  nexlua.sleep(0.3)
end)

app:ws_route("/sleeper", function(ws)
  ws:accept()
  nexlua.sleep(30)
end)

return app
