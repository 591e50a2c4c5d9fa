-- A reload that compiles but raises while the app file runs.
local nexlua = require "nexlua"
local app = nexlua.App()
local settings = nil
app.port = settings.port -- ERROR HERE
return app
