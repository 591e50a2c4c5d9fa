-- A live counter that survives hot reloads: run it with --reload, edit
-- GREETING below, save, and connected clients keep counting while new ones
-- get the new greeting.
--
--   ws://127.0.0.1:8000/counter
--
-- Each text message "+1" adds one to a count shared by every client; every
-- client sees {"count": n} after each change, and a ticker task publishes
-- {"tick": i, "count": n} to the topic "ticks" every TICK seconds (0.5 by
-- default; NEXLUA_TICK overrides it).
--
-- What survives a reload, and how:
-- * the count lives in nexlua.keep("counter", ...): the same table in every
--   generation of the app;
-- * the ticker is started by on_startup and cancelled by on_shutdown, so a
--   reload stops the old generation's ticker before the new one starts its
--   own (never two at once); it keeps its tick number in the kept table;
-- * on_reload(old_app) says which version replaced which;
-- * open connections keep the handler they started with (and its greeting).
local nexlua = require "nexlua"

local GREETING = "v1"
local TICK = tonumber(os.getenv("NEXLUA_TICK") or "0.5")

local app = nexlua.App()
app.state.greeting = GREETING

local counter = nexlua.keep("counter", function() return { count = 0, ticks = 0 } end)
local ticker -- this generation's task

app:on_startup(function()
  ticker = nexlua.spawn(function()
    while true do
      nexlua.sleep(TICK)
      counter.ticks = counter.ticks + 1
      nexlua.publish_json("ticks", { tick = counter.ticks, count = counter.count })
    end
  end)
end)

app:on_shutdown(function(why)
  ticker:cancel()
  nexlua.log.info("%s: ticker stopped (%s)", GREETING, why)
end)

app:on_reload(function(old_app)
  nexlua.log.info("%s replaced %s; the count is %d", GREETING, old_app.state.greeting, counter.count)
end)

app:ws_route("/counter", function(ws)
  ws:accept()
  ws:subscribe("counts")
  if ws.query_params.ticks == "1" then ws:subscribe("ticks") end
  ws:send_json({ greeting = GREETING, count = counter.count })
  for text in ws:iter_text() do
    if text == "+1" then
      counter.count = counter.count + 1
      nexlua.publish_json("counts", { count = counter.count })
    else
      ws:send_json({ error = "send +1" })
    end
  end
end)

return app
