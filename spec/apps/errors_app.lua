-- Typed errors spec app. Routes catch errors with pcall and describe them
-- (tostring and every predicate) either to the client (while it is there) or,
-- for disconnects, as one JSON line appended to the file named by ?file=.
local nexlua = require "nexlua"
local json = nexlua.json

local app = nexlua.App()

local function describe(ok, err)
  if ok then return { ok = true, value = err } end
  local t = type(err) == "table" and err or {}
  return {
    ok = false,
    err = tostring(err),
    code = t.code, reason = t.reason,
    expected = t.expected, got = t.got, data = t.data,
    is_disconnect = nexlua.is_disconnect(err),
    is_ws_error = nexlua.is_websocket_error(err),
    is_type_error = nexlua.is_type_error(err),
    is_json_error = nexlua.is_json_error(err),
    is_timeout = nexlua.is_timeout(err),
  }
end

local function record(ws, t)
  local f = assert(io.open(assert(ws.query_params:get("file"), "?file= missing"), "a"))
  f:write(assert(json.encode(t)), "\n")
  f:close()
end

-- An iterator ends quietly when the peer leaves; a receive after it raises
-- the disconnect, with the peer's code; is_connected() is then false.
app:ws_route("/disconnect/after-iter", function(ws)
  ws:accept()
  ws:send_text("ready")
  for _ in ws:iter_text() do end
  local connected = ws:is_connected()
  record(ws, { connected = connected, after = describe(pcall(ws.receive_text, ws)) })
end)

-- ?method=receive_text|receive_bytes|receive_json|receive: wait for the peer
-- to leave, record the error; a second call raises the same disconnect.
app:ws_route("/disconnect/receive", function(ws)
  local method = ws.query_params:get("method", "receive_text")
  ws:accept()
  ws:send_text("ready")
  local first = describe(pcall(function() return ws[method](ws) end))
  local again = describe(pcall(function() return ws[method](ws) end))
  record(ws, { method = method, first = first, again = again })
end)

-- ?method=send_text|send_bytes|send_json: send until the peer is gone, record.
app:ws_route("/disconnect/send", function(ws)
  local method = ws.query_params:get("method", "send_text")
  local payload = method == "send_json" and { tick = true } or "tick"
  ws:accept()
  ws:send_text("ready")
  local deadline = nexlua.now() + 5
  while nexlua.now() < deadline do
    local ok, err = pcall(function() ws[method](ws, payload) end)
    if not ok then
      record(ws, { method = method, result = describe(false, err) })
      return
    end
    nexlua.sleep(0.02)
  end
  record(ws, { method = method, result = "no error within 5 s" })
end)

-- Each message is received with ?method= inside pcall and described back;
-- the loop goes on after type and JSON errors (the connection stays usable).
app:ws_route("/typed", function(ws)
  local method = ws.query_params:get("method")
  ws:accept()
  while true do
    local ok, v = pcall(function() return ws[method](ws) end)
    if not ok and nexlua.is_disconnect(v) then return end
    ws:send_json(describe(ok, v))
  end
end)

-- Misuse: receive and send before accept, send after close.
app:ws_route("/misuse", function(ws)
  local before_receive = describe(pcall(function() return ws:receive_text() end))
  local before_send = describe(pcall(function() ws:send_text("too early") end))
  local before_iter = describe(pcall(function() for _ in ws:iter() do end end))
  local before_iter_text = describe(pcall(function() for _ in ws:iter_text() do end end))
  ws:accept()
  ws:send_json({ receive_before_accept = before_receive, send_before_accept = before_send,
    iter_before_accept = before_iter, iter_text_before_accept = before_iter_text })
  local cmd = ws:receive_text()
  if cmd == "close" then
    ws:close(1000, "done")
    local after_send = describe(pcall(function() ws:send_text("too late") end))
    local after_json = describe(pcall(function() ws:send_json({}) end))
    record(ws, { send_after_close = after_send, send_json_after_close = after_json })
  end
end)

return app
