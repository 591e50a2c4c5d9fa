-- Tasks spec app (spec/api/tasks_spec.lua): task errors in a real process.
local nexlua = require "nexlua"

local app = nexlua.App()

-- Spawns a task that fails while nobody waits for it: its error must be
-- logged with a traceback.
app:ws_route("/orphan", function(ws)
  ws:accept()
  nexlua.spawn(function()
    nexlua.sleep(0.05)
    local function inner_step() error("orphan task exploded") end
    inner_step()
  end)
  ws:send_text("spawned")
  ws:receive_text()
end)

-- Spawns a task that fails while the handler waits for it: wait() re-raises
-- the error (so it is the handler's to deal with, not logged as orphaned).
app:ws_route("/waited", function(ws)
  ws:accept()
  local t = nexlua.spawn(function()
    nexlua.sleep(0.05)
    error("waited task exploded")
  end)
  local ok, err = pcall(t.wait, t, 2)
  ws:send_text(string.format("ok=%s err=%s", tostring(ok), tostring(err)))
  ws:receive_text()
end)

return app
