-- A startup hook that publishes at once, for spec/api/redis_spec.lua: the
-- server-wide feed pattern of the README ("a server-wide task belongs in
-- on_startup"). The task publishes "boot:1" .. "boot:5" to topic "boot",
-- 2 ms apart, the first before Redis has answered this process's
-- connections. /stats answers with nexlua.stats()'s Redis counters.
local nexlua = require "nexlua"

local app = nexlua.App()

app:on_startup(function()
  nexlua.spawn(function()
    for i = 1, 5 do
      nexlua.publish("boot", "boot:" .. i)
      nexlua.sleep(0.002)
    end
  end)
end)

app:ws_route("/stats", function(ws)
  ws:accept()
  local st = nexlua.stats()
  ws:send_text(string.format("published=%d dropped=%d", st.redis_published, st.redis_dropped))
  ws:close()
end)

return app
