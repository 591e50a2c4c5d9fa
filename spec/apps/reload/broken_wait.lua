-- A reload whose main chunk waits: at the start this raises, and so it must
-- in a reload (which runs in a task, where a wait would otherwise wait).
-- Its /ws route would answer "BROKEN": a spec proves no connection reaches it.
local nexlua = require "nexlua"
local app = nexlua.App()
app:ws_route("/ws", function(ws) ws:accept() for _ in ws:iter_text() do ws:send_text("BROKEN") end end)
nexlua.sleep(math.huge) -- ERROR HERE
return app
