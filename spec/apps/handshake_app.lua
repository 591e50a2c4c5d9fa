-- Handshake spec app: ws:accept{subprotocol=, headers=}, ws:close(code, reason),
-- refusing before accept (403), errors before accept (500).
local nexlua = require "nexlua"

local app = nexlua.App()

local function drain(ws) for _ in ws:iter() do end end

-- How a pcall ended: {ok=, err=, is_ws_error=}.
local function result(ok, err)
  return { ok = ok, err = tostring(err), is_ws_error = nexlua.is_websocket_error(err) }
end

app:ws_route("/accept/plain", function(ws)
  ws:accept()
  ws:send_text("accepted")
  drain(ws)
end)

-- ?pick=NAME: accept with that subprotocol (it may not have been offered).
app:ws_route("/accept/subprotocol", function(ws)
  local pick = ws.query_params:get("pick")
  ws:accept { subprotocol = pick }
  ws:send_text("proto:" .. tostring(ws.accepted_subprotocol))
  drain(ws)
end)

-- The string form: ws:accept("chat").
app:ws_route("/accept/subprotocol-string", function(ws)
  ws:accept("chat")
  ws:send_text("proto:" .. tostring(ws.accepted_subprotocol))
  drain(ws)
end)

app:ws_route("/accept/headers", function(ws)
  ws:accept { headers = { ["X-Server"] = "nexlua", ["X-Request-Id"] = "abc-123" } }
  ws:send_text("ok")
  drain(ws)
end)

app:ws_route("/accept/headers-and-subprotocol", function(ws)
  ws:accept { subprotocol = "chat", headers = { { "X-One", "1" }, { "X-Two", "2" } } }
  ws:send_text("ok")
  drain(ws)
end)

-- Misuse of accept is reported back after a successful accept.
app:ws_route("/accept/misuse", function(ws)
  local results = {}
  local ok, err = pcall(ws.accept, ws, { headers = { ["Bad Name"] = "x" } })
  results.bad_header_name = result(ok, err)
  ok, err = pcall(ws.accept, ws, { headers = { ["X-Evil"] = "a\r\nInjected: yes" } })
  results.crlf_value = result(ok, err)
  ok, err = pcall(ws.accept, ws, { headers = { ["Sec-WebSocket-Accept"] = "x" } })
  results.reserved_header = result(ok, err)
  ok, err = pcall(ws.accept, ws, { headers = { ["Sec-WebSocket-Extensions"] = "permessage-deflate" } })
  results.reserved_extensions = result(ok, err)
  ok, err = pcall(ws.accept, ws, { headers = { { "Content-Length", "0" } } })
  results.reserved_length = result(ok, err)
  ws:accept()
  ok, err = pcall(function() ws:accept() end)
  results.twice = result(ok, err)
  ws:send_json(results)
  drain(ws)
end)

-- Returning after accept() closes the connection normally (1000).
app:ws_route("/accept/return", function(ws)
  ws:accept()
  ws:send_text("bye")
end)

app:ws_route("/close/before-accept", function(ws)
  ws:close(1008, "go away")
end)

app:ws_route("/return-without-accept", function(ws)
  local _ = ws.path -- look at the request, then decide not to accept
end)

app:ws_route("/deny", function(ws)
  ws:deny(401, "token required\n", { ["WWW-Authenticate"] = "Bearer" })
end)

app:ws_route("/deny/dated", function(ws)
  ws:deny(503, "later\n", { Date = "Thu, 01 Jan 1970 00:00:00 GMT", ["Retry-After"] = "5" })
end)

app:ws_route("/deny-status", function(ws)
  ws:deny(tonumber(ws.query_params:get("status")), "no\n")
end)

app:ws_route("/deny426", function(ws)
  ws:deny(426, "use the other endpoint\n")
end)

app:ws_route("/deny426-upgrade", function(ws)
  ws:deny(426, "upgrade to the v2 protocol\n", { Upgrade = "websocket" })
end)

-- A header whose value merely mentions content-type: the Content-Type is ours.
app:ws_route("/deny/note", function(ws)
  ws:deny(403, "no\n", { ["X-Note"] = "content-type: upgrade: neither is a header here" })
end)

-- The framing headers are the server's: the error is the body of a 400.
app:ws_route("/deny/reserved", function(ws)
  local ok, err = pcall(ws.deny, ws, 401, "no", { ["Content-Length"] = "2" })
  ws:deny(400, tostring(ok) .. " " .. tostring(err))
end)

app:ws_route("/error-before-accept", function(ws)
  local _ = ws
  error("handshake_app: failure before accept")
end)

app:ws_route("/close/default", function(ws)
  ws:accept()
  ws:close()
end)

-- ?code=N&reason=TEXT
app:ws_route("/close/with", function(ws)
  ws:accept()
  local q = ws.query_params
  ws:close(tonumber(q:get("code")), q:get("reason"))
end)

-- close() twice: the second does nothing, then the handler sends a report
-- nowhere; it must simply end (no error).
app:ws_route("/close/twice", function(ws)
  ws:accept()
  ws:close(4000, "first")
  ws:close(4001, "second")
end)

-- Invalid close codes and reasons raise; the report is sent before a final
-- close(1000, <123 bytes>) which is valid.
app:ws_route("/close/validation", function(ws)
  ws:accept()
  local out = {}
  local bad = { 0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 1000.5, "1000" }
  for _, code in ipairs(bad) do
    local ok, err = pcall(ws.close, ws, code)
    local r = result(ok, err)
    r.code = tostring(code)
    out[#out + 1] = r
  end
  local ok, err = pcall(ws.close, ws, 1000, string.rep("r", 124))
  local r = result(ok, err)
  r.code = "reason124"
  out[#out + 1] = r
  ws:send_json(out)
  ws:close(1000, string.rep("r", 123))
end)

-- A close reason that is not UTF-8 must not reach the wire: close() raises
-- (like it does for a bad code or a long reason) and the report is sent.
app:ws_route("/close/bad-utf8", function(ws)
  ws:accept()
  local ok, err = pcall(ws.close, ws, 1000, "\255\254 bad")
  ws:send_json(result(ok, err))
  ws:close(1000)
end)

return app
