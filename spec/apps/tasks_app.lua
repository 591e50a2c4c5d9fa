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

-- A companion task that sends to its own connection until the client
-- leaves: its end is the client's departure, not a failure (a DEBUG line).
-- The nested one, spawned by the first, belongs to the same connection.
app:ws_route("/ticker", function(ws)
  ws:accept()
  nexlua.spawn(function()
    nexlua.spawn(function()
      while true do
        ws:send_text("nested tick")
        nexlua.sleep(0.02)
      end
    end)
    while true do
      ws:send_text("tick")
      nexlua.sleep(0.02)
    end
  end)
  ws:receive_text()
end)

-- A task that sends to another connection after that one's client left:
-- a bug of the app, logged with its traceback.
local parked
app:ws_route("/park", function(ws)
  ws:accept()
  parked = ws
  ws:send_text("parked")
  ws:receive_text()
end)

app:ws_route("/poke", function(ws)
  ws:accept()
  local target = parked
  nexlua.spawn(function()
    while true do
      target:send_text("poke") -- raises once /park's client has left
      nexlua.sleep(0.02)
    end
  end)
  ws:send_text("poking")
  ws:receive_text()
end)

return app
