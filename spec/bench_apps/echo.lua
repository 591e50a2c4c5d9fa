-- Benchmark app: echo on /ws (same semantics as examples/echo): every message
-- comes back as it was sent, text as text, binary as binary.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/ws", function(ws)
  ws:accept()
  for data, kind in ws:iter() do
    if kind == "text" then
      ws:send_text(data)
    else
      ws:send_bytes(data)
    end
  end
end)

return app
