-- A reload whose main chunk calls coroutine.yield() (see broken_wait.lua).
local nexlua = require "nexlua"
local app = nexlua.App()
app:ws_route("/ws", function(ws) ws:accept() for _ in ws:iter_text() do ws:send_text("BROKEN") end end)
coroutine.yield()
return app
