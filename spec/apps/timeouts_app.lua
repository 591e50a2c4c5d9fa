-- Receive timeouts spec app (spec/api/timeouts_spec.lua).
local nexlua = require "nexlua"

local app = nexlua.App()

local function describe_error(ok, err, t0)
  return {
    ok = ok,
    is_timeout = nexlua.is_timeout(err),
    is_websocket_error = nexlua.is_websocket_error(err),
    is_disconnect = nexlua.is_disconnect(err),
    seconds = type(err) == "table" and err.seconds or nil,
    message = tostring(err),
    elapsed = nexlua.now() - t0,
  }
end

-- /recv?method=receive_text|receive_bytes|receive_json|receive&form=table|number
-- A receive with a 0.1 s timeout while the client is silent, reported; then
-- the same connection receives the client's next message with {timeout = 30}.
app:ws_route("/recv", function(ws)
  local method = ws.query_params:get("method", "receive_text")
  local form = ws.query_params:get("form", "table")
  ws:accept()
  local t0 = nexlua.now()
  local ok, err = pcall(ws[method], ws, form == "number" and 0.1 or { timeout = 0.1 })
  local report = describe_error(ok, err, t0)
  report.connected = ws:is_connected()
  ws:send_json(report)
  local got, kind = ws[method](ws, { timeout = 30 })
  ws:send_json({ got = got, kind = kind or "" })
  ws:receive() -- until the client leaves
end)

-- /recv-bad: receive with timeouts that are not non-negative numbers (NaN
-- too: it compares false with everything) raises at once; reported.
app:ws_route("/recv-bad", function(ws)
  ws:accept()
  local report = {}
  for i, timeout in ipairs { -1, 0 / 0, { timeout = 0 / 0 }, "1" } do
    local ok, err = pcall(ws.receive, ws, timeout)
    report[i] = { ok = ok, is_websocket_error = nexlua.is_websocket_error(err), message = tostring(err) }
  end
  ws:send_json(report)
  ws:receive() -- until the client leaves
end)

-- /recv-twice: a second coroutine receiving on the same WebSocket raises,
-- naming this file's line; reported.
app:ws_route("/recv-twice", function(ws)
  ws:accept()
  nexlua.spawn(function() pcall(ws.receive, ws) end)
  nexlua.sleep(0.01)
  local ok, err = pcall(function() return ws:receive_text() end)
  ws:send_json({ ok = ok, message = tostring(err) })
  ws:receive() -- until the client leaves
end)

-- /wait-for-echo: echoes what wait_for(ws.receive_text, 1 ms) gets; a
-- message that comes just as a timeout ends must not be lost.
app:ws_route("/wait-for-echo", function(ws)
  ws:accept()
  while true do
    local ok, m = pcall(nexlua.wait_for, ws.receive_text, 0.001, ws)
    if ok then
      ws:send_text(m)
    elseif not nexlua.is_timeout(m) then
      error(m, 0)
    end
  end
end)

return app
