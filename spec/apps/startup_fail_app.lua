-- A startup hook that fails (spec/api/lifecycle_spec.lua): the server must
-- not serve, must say why, and must exit non-zero.
local nexlua = require "nexlua"

local app = nexlua.App()
app:on_startup(function() nexlua.log.info("first startup hook ran") end)
app:on_startup(function()
  nexlua.sleep(0.01)
  error("cannot reach the database")
end)
app:on_startup(function() nexlua.log.info("third startup hook ran") end)
app:ws_route("/ws", function(ws) ws:accept() end)

return app
