-- Hooks that wait on what nothing will wake (spec/api/lifecycle_spec.lua):
-- with FOREVER=startup the startup hook sleeps for ever; with
-- FOREVER=shutdown the first shutdown hook waits on an empty queue, and the
-- second logs "second shutdown hook ran".
local nexlua = require "nexlua"

local app = nexlua.App()
local where = os.getenv("FOREVER")

app:on_startup(function()
  if where == "startup" then nexlua.sleep(math.huge) end
end)

app:on_shutdown(function()
  if where == "shutdown" then nexlua.Queue():get() end
end)

app:on_shutdown(function() nexlua.log.info("second shutdown hook ran") end)

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

return app
