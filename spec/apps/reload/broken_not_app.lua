-- A reload whose app file does not return an App.
local nexlua = require "nexlua"
local app = nexlua.App()
app:ws_route("/ws", function(ws) ws:accept() ws:send_text("BROKEN") end)
return { app = app } -- ERROR HERE
