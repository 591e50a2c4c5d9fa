-- Messages read after the peer is gone, and the heartbeat of busy
-- connections (spec/api/liveness_spec.lua).
--   /busy             the handler is busy for 0.3 s, then reads every message
--                     until the disconnect and logs them with the close code
--   /close-then-read  waits 0.3 s, closes, waits 0.3 s, then reads the same way
--   /flood-reply      answers each message with 64 KiB (to a client that does
--                     not read: the handler waits to send, reads pause)
--   /push             sends 16 x 64 KiB at once, then waits for a message
--   /reply-many       answers each message with 64 x 64 KiB (its sends wait)
--   /stats            replies the number of open connections to any message
local nexlua = require "nexlua"

local app = nexlua.App { write_high_water = 65536, read_pause_bytes = 65536 }

local function read_all(ws, name)
  local got = {}
  local ok, err = pcall(function()
    while true do got[#got + 1] = ws:receive_text() end
  end)
  nexlua.log.info("%s read: %s (code %s)", name, table.concat(got, ","),
    tostring(not ok and nexlua.is_disconnect(err) and err.code or err))
end

app:ws_route("/busy", function(ws)
  ws:accept()
  nexlua.sleep(0.3)
  read_all(ws, "busy")
end)

app:ws_route("/close-then-read", function(ws)
  ws:accept()
  nexlua.sleep(0.3)
  ws:close(1000)
  nexlua.sleep(0.3)
  read_all(ws, "closed")
end)

app:ws_route("/flood-reply", function(ws)
  ws:accept()
  local big = string.rep("r", 65536)
  local ok, err = pcall(function()
    for _ in ws:iter() do ws:send_bytes(big) end
  end)
  nexlua.log.info("flood handler ended (%s)", ok and "left" or tostring(err.code or err))
end)

app:ws_route("/reply-many", function(ws)
  ws:accept()
  local big = string.rep("m", 65536)
  for _ in ws:iter() do
    for _ = 1, 64 do ws:send_bytes(big) end
  end
end)

app:ws_route("/push", function(ws)
  ws:accept()
  local chunk = string.rep("p", 65536)
  for _ = 1, 16 do ws:send_bytes(chunk) end
  ws:receive_text()
  ws:send_text("bye")
end)

app:ws_route("/stats", function(ws)
  ws:accept()
  for _ in ws:iter() do ws:send_text(tostring(nexlua.stats().connections)) end
end)

return app
