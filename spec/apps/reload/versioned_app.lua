-- Hot reload spec app (spec/reload/): every reply names the version of the
-- code that handles it, so a spec can tell which generation served it.
-- A template: spec/reload/support.lua fills {{VERSION}} and {{EXTRA_ROUTES}}
-- and writes greeting.lua and lib/suffix.lua beside it.
local nexlua = require "nexlua"
local greeting = require "greeting"
local suffix = require "lib.suffix"

local VERSION = "{{VERSION}}"

local app = nexlua.App()
app.state.version = VERSION

-- Echo that names the version, the modules' texts and a per-connection count.
app:ws_route("/ws", function(ws)
  ws:accept()
  local n = 0
  for msg in ws:iter_text() do
    n = n + 1
    ws:send_text(table.concat({ VERSION, greeting.text, suffix.text, n, msg }, "|"))
  end
end)

-- Streams ticks until the client leaves.
app:ws_route("/ticker", function(ws)
  ws:accept()
  local n = 0
  while true do
    n = n + 1
    ws:send_text("tick " .. VERSION .. " " .. n)
    nexlua.sleep(0.02)
  end
end)

for i = 1, tonumber("{{EXTRA_ROUTES}}") do
  app:ws_route("/extra" .. i, function(ws)
    ws:accept()
    ws:send_text(VERSION)
  end)
end

return app
