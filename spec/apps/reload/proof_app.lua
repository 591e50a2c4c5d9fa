-- Hot reload spec app for proof A (spec/reload/proof_a_spec.lua): a
-- conversation per connection. Each reply carries the version the handler
-- was loaded with (read from version.txt beside this file when the app file
-- runs, so a SIGHUP reload can change it without saving a .lua file) and the
-- number of messages the connection has exchanged.
-- A template: {{DIR}} and {{REV}} are filled in by the spec.
local nexlua = require "nexlua"

-- rev {{REV}}
local f = assert(io.open("{{DIR}}/version.txt", "rb"))
local VERSION = assert(f:read("*a"):match("%S+"), "version.txt is empty")
f:close()

local app = nexlua.App()

app:ws_route("/ws", function(ws)
  ws:accept()
  local n = 0
  for msg in ws:iter_text() do
    n = n + 1
    ws:send_text(VERSION .. " " .. n .. " " .. msg)
  end
end)

return app
