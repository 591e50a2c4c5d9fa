-- Memory spec app (spec/api/memory_spec.lua): /iter and /receive echo with
-- the two receive styles; /mem answers the Lua heap in bytes after a full
-- collection, so the spec can count what each idle connection keeps.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/iter", function(ws)
  ws:accept()
  for data in ws:iter_text() do ws:send_text(data) end
end)

app:ws_route("/receive", function(ws)
  ws:accept()
  while true do ws:send_text(ws:receive_text()) end
end)

app:ws_route("/mem", function(ws)
  ws:accept()
  for _ in ws:iter_text() do
    collectgarbage()
    collectgarbage()
    ws:send_text(string.format("%d", collectgarbage("count") * 1024))
  end
end)

return app
