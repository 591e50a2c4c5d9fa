-- Slow to load and to start (spec/api/lifecycle_spec.lua): loading blocks
-- for 0.4 s, the startup hook waits 0.6 s; the hooks log what they do.
local nexlua = require "nexlua"

os.execute("sleep 0.4") -- (a load that blocks: a SIGHUP now must wait)
do -- the signal mask of a process the app starts while it loads
  local p = io.popen("grep SigBlk /proc/self/status")
  nexlua.log.info("child %s", p and p:read("*l") or "?")
  if p then p:close() end
end

local app = nexlua.App()

app:on_startup(function()
  nexlua.log.info("startup begins")
  nexlua.sleep(0.6)
  nexlua.log.info("startup done")
end)

app:on_shutdown(function(why) nexlua.log.info("shutdown (%s)", tostring(why)) end)

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

return app
