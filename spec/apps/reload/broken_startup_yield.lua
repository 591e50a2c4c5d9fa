-- A reload whose startup hook calls coroutine.yield(): the hook fails, as
-- if it had raised, and the reload is rolled back (see broken_startup.lua).
local nexlua = require "nexlua"
local app = nexlua.App()
app:ws_route("/ws", function(ws) ws:accept() for _ in ws:iter_text() do ws:send_text("BROKEN") end end)
app:on_startup(function()
  coroutine.yield()
end)
return app
