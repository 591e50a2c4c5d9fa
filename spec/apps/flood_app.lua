-- Backpressure spec app: /flood sends ?mb= MiB (default 50) in ?chunk= byte
-- binary messages (default 65536), each starting with its 8-digit sequence
-- number, to a client that may read slowly. The handler's own sends wait
-- while the output buffer is above the high-water mark, so the largest
-- buffered amount it sees stays near that mark. The last message is a JSON
-- report {count=, max_buffered=, seconds=}.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/flood", function(ws)
  local q = ws.query_params
  local mb = tonumber(q:get("mb", "50"))
  local chunk = tonumber(q:get("chunk", "65536"))
  ws:accept()
  assert(ws:receive_text() == "go")
  local count = math.floor(mb * 1024 * 1024 / chunk)
  local filler = string.rep("x", chunk - 8)
  local max_buffered = 0
  local t0 = nexlua.now()
  for i = 1, count do
    ws:send_bytes(string.format("%08d", i) .. filler)
    local b = ws:buffered_amount()
    if b > max_buffered then max_buffered = b end
  end
  ws:send_json({ count = count, max_buffered = max_buffered, seconds = nexlua.now() - t0 })
  for _ in ws:iter() do end
end)

-- /flood-tasks: the same from tasks the handler spawned (mode=task), from a
-- task spawned by such a task (mode=nested), or from the handler and a task
-- at once (mode=both): each message starts with its sender's letter and
-- its 9-digit sequence number. Their sends wait like the handler's.
app:ws_route("/flood-tasks", function(ws)
  local q = ws.query_params
  local mb = tonumber(q:get("mb", "8"))
  local chunk = tonumber(q:get("chunk", "65536"))
  local mode = q:get("mode", "task")
  ws:accept()
  assert(ws:receive_text() == "go")
  local count = math.floor(mb * 1024 * 1024 / chunk)
  local filler = string.rep("x", chunk - 10)
  local max_buffered = 0
  local function sender(id)
    for i = 1, count do
      ws:send_bytes(id .. string.format("%09d", i) .. filler)
      local b = ws:buffered_amount()
      if b > max_buffered then max_buffered = b end
    end
  end
  local task
  if mode == "nested" then
    task = nexlua.spawn(function() nexlua.spawn(sender, "a"):wait() end)
  else
    task = nexlua.spawn(sender, mode == "both" and "b" or "a")
    if mode == "both" then sender("a") end
  end
  task:wait()
  ws:send_json({ count = count, max_buffered = max_buffered })
  for _ in ws:iter() do end
end)

-- /crowd: many tasks of the handler, each sending a few messages at once
-- (task number, 5 digits, then its sequence number, 9 digits): together
-- they stay near the high-water mark; each waits before it sends when the
-- others have filled the output.
app:ws_route("/crowd", function(ws)
  local q = ws.query_params
  local tasks, each = tonumber(q:get("tasks", "300")), tonumber(q:get("each", "2"))
  local chunk = tonumber(q:get("chunk", "65536"))
  ws:accept()
  assert(ws:receive_text() == "go")
  local filler = string.rep("x", chunk - 14)
  local max_buffered, list = 0, {}
  for t = 1, tasks do
    list[t] = nexlua.spawn(function()
      for i = 1, each do
        ws:send_bytes(string.format("%05d%09d", t, i) .. filler)
        local b = ws:buffered_amount()
        if b > max_buffered then max_buffered = b end
      end
    end)
  end
  for _, t in ipairs(list) do t:wait() end
  ws:send_json({ count = tasks * each, max_buffered = max_buffered })
  for _ in ws:iter() do end
end)

app:ws_route("/echo", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

return app
