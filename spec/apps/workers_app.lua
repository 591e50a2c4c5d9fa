-- Workers spec app (spec/api/workers_spec.lua): answers which worker (id
-- and pid) serves each connection, logs its lifecycle hooks with the pid,
-- and counts its connections (state is per worker).
-- /room subscribes to the topic "room" and answers "W id pid"; each text
-- message is published to "room" as "[wID] text" (binary when it starts
-- with "bin:"), so it reaches the subscribers of every worker.
local nexlua = require "nexlua"
local core = require "nexlua.core"

local app = nexlua.App()
local served = nexlua.keep("served", function() return { n = 0 } end)
local generation = nexlua.keep("generation", function() return { n = 0 } end)
generation.n = generation.n + 1
local gen = generation.n

app:on_startup(function()
  nexlua.log.info("STARTUP worker=%d pid=%d", nexlua.worker_id, core.pid())
end)
app:on_shutdown(function()
  nexlua.sleep(0.05) -- a hook that waits
  nexlua.log.info("SHUTDOWN worker=%d pid=%d", nexlua.worker_id, core.pid())
end)
app:on_reload(function()
  nexlua.log.info("RELOADED worker=%d pid=%d generation=%d", nexlua.worker_id, core.pid(), gen)
end)

app:ws_route("/who", function(ws)
  ws:accept()
  served.n = served.n + 1
  ws:send_text(string.format("%d %d %d %d", nexlua.worker_id, core.pid(), served.n, gen))
  for _ in ws:iter_text() do end
end)

app:ws_route("/room", function(ws)
  ws:accept()
  ws:subscribe("room")
  ws:send_text(string.format("W %d %d", nexlua.worker_id, core.pid()))
  for text in ws:iter_text() do
    local binary = text:sub(1, 4) == "bin:"
    nexlua.publish("room", string.format("[w%d] %s", nexlua.worker_id, text), { binary = binary })
  end
end)

-- /slow_end answers "S id pid" and, once its connection ends (a shutdown
-- closes it), takes half a second to clean up before it logs CLEANED.
app:ws_route("/slow_end", function(ws)
  ws:accept()
  ws:send_text(string.format("S %d %d", nexlua.worker_id, core.pid()))
  for _ in ws:iter_text() do end
  nexlua.sleep(0.5)
  nexlua.log.info("CLEANED worker=%d pid=%d", nexlua.worker_id, core.pid())
end)

return app
