-- TestClient spec app (spec/api/testclient_spec.lua), including the routes
-- of the reference's "Testing WebSockets" section (an echo at /ws, JSON
-- ping/pong at /api) and an authenticated /ws/secure.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text("Echo: " .. msg) end
end)

app:ws_route("/api", function(ws)
  ws:accept()
  for data in ws:iter_json() do
    if data.type == "ping" then ws:send_json({ type = "pong" }) end
  end
end)

-- The reference's authentication middleware, on one route.
local function auth_middleware(ws, call_next)
  local token = ws.query_params:get("token")
  if not token then
    ws:close(1008, "Authentication required")
    return
  end
  ws.state.user = { token = token }
  call_next()
end

app:ws_route("/ws/secure", function(ws)
  ws:accept()
  ws:send_json({ type = "welcome", token = ws.state.user.token })
  for msg in ws:iter_text() do ws:send_text("Secure echo: " .. msg) end
end, { middleware = { auth_middleware } })

-- Reports what the handshake carried; accepts "chat.v2" when offered.
app:ws_route("/inspect", function(ws)
  local offered = ws.subprotocols
  local chosen
  for _, p in ipairs(offered) do
    if p == "chat.v2" then chosen = p end
  end
  ws:accept({ subprotocol = chosen, headers = { ["X-Served-By"] = "nexlua" } })
  ws:send_json({
    token = ws.headers:get("x-token"),
    room = ws.query_params:get("room"),
    tags = ws.query_params:get_all("tag"),
    offered = offered,
  })
  ws:receive()
end)

-- Echoes every message with its own type; JSON as JSON.
app:ws_route("/typed", function(ws)
  ws:accept()
  for data, kind in ws:iter() do
    if kind == "binary" then
      ws:send_bytes(data)
    else
      local v = nexlua.json.decode(data)
      if type(v) == "table" then ws:send_json({ got = v }) else ws:send_text(data) end
    end
  end
end)

-- Never sends anything.
app:ws_route("/silent", function(ws)
  ws:accept()
  ws:receive()
end)

-- Says goodbye and closes with its own code and reason.
app:ws_route("/bye", function(ws)
  ws:accept()
  ws:send_text("bye")
  ws:close(4000, "done here")
end)

-- Closes with a reason that holds a NUL byte (valid UTF-8).
app:ws_route("/bye-nul", function(ws)
  ws:accept()
  ws:close(4000, "a\0b")
end)

-- Refuses before accept.
app:ws_route("/forbidden", function(ws) ws:close(1008) end)

return app
