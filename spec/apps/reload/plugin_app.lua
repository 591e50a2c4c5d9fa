-- Hot reload spec app: a later version starts to require a module the first
-- one did not load. A template: {{PLUGIN}} is the name of the module to
-- require (e.g. "plugins.extra"), or empty for none.
local nexlua = require "nexlua"

local PLUGIN = "{{PLUGIN}}"
local plugin = PLUGIN == "" and { text = "none" } or require(PLUGIN)

local app = nexlua.App()

app:ws_route("/ws", function(ws)
  ws:accept()
  ws:send_text(plugin.text)
end)

return app
