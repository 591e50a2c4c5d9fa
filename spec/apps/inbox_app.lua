-- A handler that ends without reading what its client sent
-- (spec/api/liveness_spec.lua): /noread waits 0.3 s, then returns.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/noread", function(ws)
  ws:accept()
  nexlua.sleep(0.3)
end)

return app
