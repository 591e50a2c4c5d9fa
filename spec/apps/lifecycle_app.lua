-- Lifecycle spec app (spec/api/lifecycle_spec.lua): startup and shutdown
-- hooks that wait, and a handler that cleans up after its disconnect.
-- app.state.events records what ran, for the in-process spec.
local nexlua = require "nexlua"

local app = nexlua.App()
local events = {}
app.state.events = events
local function note(fmt, ...)
  local msg = string.format(fmt, ...)
  events[#events + 1] = msg
  nexlua.log.info("%s", msg)
end

app:on_startup(function()
  local t0 = nexlua.now()
  nexlua.sleep(0.05)
  note("startup hook 1 done (slept %.2f s, in a coroutine: %s)", nexlua.now() - t0,
    tostring(coroutine.running() ~= nil))
end)
app:on_startup(function() note("startup hook 2 done") end)

app:on_shutdown(function() note("shutdown hook 1 done") end)
app:on_shutdown(function()
  local t0 = nexlua.now()
  nexlua.sleep(0.05)
  note("shutdown hook 2 done (slept %.2f s)", nexlua.now() - t0)
end)

-- Echoes; once the peer is gone (or the server closes), cleans up for a
-- moment and says so in the log.
app:ws_route("/ws/{id}", function(ws)
  local id = ws.path_params.id
  ws:accept()
  note("handler %s accepted", id)
  local ok, err = pcall(function()
    for msg in ws:iter_text() do ws:send_text(msg) end
  end)
  note("handler %s saw the end (%s)", id, ok and "disconnect" or tostring(err))
  nexlua.sleep(0.3)
  note("CLEANUP-DONE %s", id)
end)

-- A route whose middleware takes a while before the handler accepts: a
-- handshake that is in progress when the shutdown begins.
app:ws_route("/slow-mw/{id}", function(ws)
  ws:accept()
  note("slow-mw %s accepted", ws.path_params.id)
  pcall(function()
    for msg in ws:iter_text() do ws:send_text(msg) end
  end)
end, {
  middleware = {
    function(ws, call_next)
      note("slow middleware waiting for %s", ws.path_params.id)
      nexlua.sleep(0.5)
      call_next()
    end,
  },
})

return app
