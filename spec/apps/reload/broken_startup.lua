-- A reload that loads, but whose startup hook fails. Its /ws route would
-- answer "BROKEN": a spec proves no connection ever reaches it.
local nexlua = require "nexlua"
local app = nexlua.App()
app:ws_route("/ws", function(ws) ws:accept() for _ in ws:iter_text() do ws:send_text("BROKEN") end end)
app:on_startup(function()
  error("cannot open the database") -- ERROR HERE
end)
return app
