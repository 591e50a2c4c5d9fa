-- Fairness spec app (spec/api/fairness_spec.lua): /count takes messages,
-- works a few microseconds on each and counts them; /probe answers each
-- message with the count so far.
local nexlua = require "nexlua"

local app = nexlua.App()
local counted = 0

app:ws_route("/count", function(ws)
  ws:accept()
  local x = 0
  for _ in ws:iter() do
    for i = 1, 20000 do x = x + i % 7 end -- (some work per message)
    counted = counted + 1
  end
  ws.state.x = x
end)

app:ws_route("/probe", function(ws)
  ws:accept()
  for _ in ws:iter_text() do ws:send_text(tostring(counted)) end
end)

return app
