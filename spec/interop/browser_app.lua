-- The app behind the headless-Chromium interop checks (spec/interop/browser_page.html)
-- that the echo app cannot serve: subprotocol choice, a server-initiated close,
-- a refused handshake, how the browser's close arrived, and the compression counter.
local nexlua = require "nexlua"

-- examples/echo's app, with its /ws (text as text, binary as binary), and
-- the routes below added: the compression checks need the echo and the
-- counter in one process.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local app = dofile(here .. "../../examples/echo/app.lua")

-- /stats: nexlua.stats() as JSON (compressions counts messages this server deflated).
app:ws_route("/stats", function(ws)
  ws:accept()
  ws:send_json(nexlua.stats())
end)

-- /chat: speaks chat.v2 and chat.v3, preferring chat.v2; picks the first of
-- those the client offered (none: no subprotocol), then echoes text.
local SUPPORTED = { "chat.v2", "chat.v3" }
app:ws_route("/chat", function(ws)
  local offered = {}
  for _, p in ipairs(ws.subprotocols) do
    offered[p] = true
  end
  local pick
  for _, p in ipairs(SUPPORTED) do
    if offered[p] then
      pick = p
      break
    end
  end
  ws:accept(pick and { subprotocol = pick } or nil)
  ws:send_text("subprotocol:" .. tostring(ws.accepted_subprotocol))
  for msg in ws:iter_text() do
    ws:send_text(msg)
  end
end)

-- /server-close: one message, then the server closes with 4000 and a UTF-8 reason.
app:ws_route("/server-close", function(ws)
  ws:accept()
  ws:send_text("closing")
  ws:close(4000, "server closing: done ✓")
end)

-- /deny: the app refuses the handshake with HTTP 403.
app:ws_route("/deny", function(ws)
  ws:deny(403, "forbidden\n")
end)

-- /record/{id}: echoes text until the client leaves, then keeps the close code
-- and reason it saw; /closed/{id} sends them as JSON ({} until known).
local closes = {}
app:ws_route("/record/{id}", function(ws)
  local id = ws.path_params.id
  ws:accept()
  local ok, err = pcall(function()
    while true do
      ws:send_text(ws:receive_text())
    end
  end)
  if not ok and nexlua.is_disconnect(err) then
    closes[id] = { code = err.code, reason = err.reason or "" }
  elseif not ok then
    error(err, 0)
  end
end)

app:ws_route("/closed/{id}", function(ws)
  ws:accept()
  ws:send_json(closes[ws.path_params.id] or {})
end)

return app
