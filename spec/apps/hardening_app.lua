-- Hardening spec app (deflate, TLS, limits, abuse, leaks).
--   /ws           echo: every message back as it came, text as text, binary as binary
--   /blast?mb=N   after "go", sends N MiB (default 8) in ?chunk= byte binary
--                 messages (default 65536) without reading; logs how it ended:
--                 "blast ended: sent=BYTES code=CODE"; ?task=1: sent by a task
--                 started by on_startup (whose sends never wait)
--   /hello        sends "hello" at once, then echoes
--   /topic/{name} subscribes to name and to "all"; every message is
--                 published to name (so it comes back to every subscriber)
--   /sleepy       accepts and never reads (its inbox fills up) while connected
--   /bye          echo, but "bye" is answered with close(4000, "bye")
--   /late?wait=S  accepts, receives nothing for S seconds (default 1), then
--                 answers each message with "LENGTH KIND FIRST-BYTE" (and logs
--                 "late got LENGTH KIND FIRST-BYTE", also after the client left,
--                 and "late ended with CODE" at the disconnect)
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/ws", function(ws)
  ws:accept()
  for data, kind in ws:iter() do
    if kind == "text" then
      ws:send_text(data)
    else
      ws:send_bytes(data)
    end
  end
end)

app:ws_route("/bye", function(ws)
  ws:accept()
  for data in ws:iter() do
    if data == "bye" then
      ws:close(4000, "bye")
      return
    end
    ws:send_text(data)
  end
end)

-- Echoes two messages, then returns.
app:ws_route("/two", function(ws)
  ws:accept()
  for _ = 1, 2 do ws:send_text(ws:receive_text()) end
end)

-- The broadcaster of /blast?task=1: runs each job's loop, and answers on
-- its done queue with the loop's pcall results.
local blasts = nexlua.Queue()
app:on_startup(function()
  nexlua.spawn(function()
    while true do
      local job = blasts:get()
      job.done:put({ pcall(job.loop) })
    end
  end)
end)

app:ws_route("/blast", function(ws)
  local q = ws.query_params
  local mb = tonumber(q:get("mb", "8"))
  local chunk = tonumber(q:get("chunk", "65536"))
  ws:accept()
  ws:receive_text()
  local block = string.rep("b", chunk)
  local total, sent = math.floor(mb * 1024 * 1024), 0
  local function loop()
    while sent < total do
      ws:send_bytes(block)
      sent = sent + chunk
    end
  end
  local ok, err
  if q:get("task") then
    -- Sent by a task the handler did not spawn (a broadcaster started by
    -- on_startup): its sends never wait.
    local done = nexlua.Queue()
    blasts:put({ loop = loop, done = done })
    local r = done:get()
    ok, err = r[1], r[2]
  else
    ok, err = pcall(loop)
  end
  local code = ok and "none" or (type(err) == "table" and tostring(err.code) or tostring(err))
  nexlua.log.warn("blast ended: sent=%d code=%s", sent, code)
  if ok then
    for _ in ws:iter() do end
  end
end)

app:ws_route("/hello", function(ws)
  ws:accept()
  ws:send_text("hello")
  for data, kind in ws:iter() do
    if kind == "text" then ws:send_text(data) else ws:send_bytes(data) end
  end
end)

app:ws_route("/topic/{name}", function(ws)
  ws:accept()
  ws:subscribe(ws.path_params.name)
  ws:subscribe("all")
  for data, kind in ws:iter() do
    nexlua.publish(ws.path_params.name, data, { binary = kind == "binary" })
  end
end)

app:ws_route("/sleepy", function(ws)
  ws:accept()
  while ws:is_connected() do nexlua.sleep(0.05) end
end)

app:ws_route("/slow_accept", function(ws)
  nexlua.sleep(0.3)
  ws:accept()
  for data in ws:iter_text() do ws:send_text(data) end
end)

app:ws_route("/late", function(ws)
  ws:accept()
  nexlua.sleep(tonumber(ws.query_params:get("wait", "1")))
  while true do
    local ok, data, kind = pcall(ws.receive, ws)
    if not ok then
      nexlua.log.info("late ended with %s", nexlua.is_disconnect(data) and data.code or tostring(data))
      return
    end
    local line = string.format("%d %s %d", #data, kind, data:byte(1) or 0)
    nexlua.log.info("late got %s", line) -- (also once the client has gone)
    if ws:is_connected() then ws:send_text(line) end
  end
end)

return app
