-- Heartbeat spec app (spec/api/heartbeat_spec.lua): the core's pings with the
-- command line's settings and with route options, and the reference's manual
-- ping/pong by text messages.
local nexlua = require "nexlua"

local app = nexlua.App()
app.state.manual = {}

-- Echoes; logs how it ended (the handler must see the heartbeat's close).
local function echo(ws)
  ws:accept()
  local ok, err = pcall(function()
    while true do ws:send_text(ws:receive_text()) end
  end)
  nexlua.log.info("handler %s ended: disconnect=%s code=%s", ws.path, tostring(nexlua.is_disconnect(err)),
    tostring(type(err) == "table" and err.code or "?"))
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end

app:ws_route("/ws", echo)                                                        -- the listener's settings
app:ws_route("/noping", echo, { ping_interval = 0 })                             -- no heartbeat
app:ws_route("/slow-ping", echo, { ping_interval = 0.8 })                        -- later than the listener's
app:ws_route("/patient", echo, { ping_interval = 0.1, ping_timeout = 1.0 })      -- a longer timeout

-- The reference's pattern: the app pings with text messages from a task and
-- the client answers with a text "pong".
app:ws_route("/manual", function(ws)
  ws:accept()
  local state = app.state.manual
  local pongs = 0
  local heartbeat = nexlua.spawn(function()
    while true do
      nexlua.sleep(0.05)
      ws:send_json({ type = "ping" })
    end
  end)
  state.heartbeat = heartbeat
  pcall(function()
    while true do
      local msg = ws:receive_json()
      if msg.type == "pong" then
        pongs = pongs + 1
      else
        ws:send_json({ type = "echo", data = msg.data, pongs = pongs })
      end
    end
  end)
  heartbeat:cancel()
  state.ended = true
end)

return app
