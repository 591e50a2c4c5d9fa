-- Tasks that yield without waiting for anything (spec/api/yielding_spec.lua):
-- what a task started by on_startup does is chosen by NEXLUA_YIELD_MODE:
--   sleep0   while true do sleep(0) end
--   sleep01  while true do sleep(0.0001) end (under half a millisecond)
--   queues   two tasks handing a value back and forth through two Queues
-- /count answers with how many rounds the task(s) made, /poll polls
-- receive{timeout = 0} until the client's message comes and echoes it.
local nexlua = require "nexlua"

local app = nexlua.App()
local mode = os.getenv("NEXLUA_YIELD_MODE") or "sleep0"
local rounds = 0

app:on_startup(function()
  if mode == "queues" then
    local a, b = nexlua.Queue(), nexlua.Queue()
    nexlua.spawn(function()
      while true do
        a:put(1)
        b:get()
        rounds = rounds + 1
      end
    end)
    nexlua.spawn(function()
      while true do
        a:get()
        b:put(1)
      end
    end)
  else
    local s = mode == "sleep01" and 0.0001 or 0
    nexlua.spawn(function()
      while true do
        rounds = rounds + 1
        nexlua.sleep(s)
      end
    end)
  end
end)

app:ws_route("/count", function(ws)
  ws:accept()
  ws:send_text(tostring(rounds))
end)

app:ws_route("/poll", function(ws)
  ws:accept()
  local polls = 0
  while true do
    local ok, data = pcall(ws.receive_text, ws, { timeout = 0 })
    if ok then
      ws:send_text(data .. " after " .. polls .. " polls")
      return
    end
    assert(nexlua.is_timeout(data), tostring(data))
    polls = polls + 1
  end
end)

return app
