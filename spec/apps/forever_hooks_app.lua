-- Hooks that wait on what nothing will wake (spec/api/lifecycle_spec.lua):
-- with FOREVER=startup the startup hook sleeps for ever (until a stop
-- cancels it); with
-- FOREVER=shutdown the first shutdown hook waits on an empty queue, and the
-- second logs "second shutdown hook ran".
local nexlua = require "nexlua"

local app = nexlua.App()
local where = os.getenv("FOREVER")

app:on_startup(function()
  if where == "startup" then
    -- (a stop cancels the wait: the hook cleans up for 0.3 s, and the
    -- shutdown hooks must run only once it has ended)
    local ok, e = pcall(nexlua.sleep, math.huge)
    nexlua.log.info("startup hook woke: %s", nexlua.is_cancelled(e) and "cancelled" or tostring(ok))
    nexlua.sleep(0.3)
    nexlua.log.info("startup hook cleaned up")
    error(e, 0)
  end
end)

app:on_shutdown(function()
  nexlua.log.info("first shutdown hook runs")
  if where == "shutdown" then nexlua.Queue():get() end
end)

app:on_shutdown(function() nexlua.log.info("second shutdown hook ran") end)

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

return app
