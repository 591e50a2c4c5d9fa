-- Error policy spec app: handlers that crash, and handlers that let a
-- WebSocketDisconnect escape (which must end them quietly).
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/echo", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)

local function explode(what)
  error("crash_app: boom on purpose (" .. what .. ")")
end

-- "crash" raises a plain Lua error from a nested function.
app:ws_route("/crash", function(ws)
  ws:accept()
  while true do
    local msg = ws:receive_text()
    if msg == "crash" then explode("crash") end
    ws:send_text(msg)
  end
end)

-- A runtime error (not error()): indexing nil in a nested function.
local function dig(t)
  local inner = t.missing
  return inner.deeper -- line 29: the traceback must name it
end

app:ws_route("/crash/runtime", function(ws)
  ws:accept()
  ws:receive_text()
  dig({})
end)

-- An uncaught nexlua error that is not a disconnect (a MessageTypeError).
app:ws_route("/crash/type", function(ws)
  ws:accept()
  ws:receive_text()
end)

-- A WebSocketDisconnect escaping from receive.
app:ws_route("/quiet/receive", function(ws)
  ws:accept()
  while true do ws:send_text(ws:receive_text()) end
end)

-- A WebSocketDisconnect escaping from send.
app:ws_route("/quiet/send", function(ws)
  ws:accept()
  while true do
    ws:send_text("tick")
    nexlua.sleep(0.02)
  end
end)

return app
