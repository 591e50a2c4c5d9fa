-- The receive and send paths, for spec/api/fastpath_spec.lua, which runs it
-- with the FFI fast path and without it (NEXLUA_NO_FFI=1):
--   /info          -> "ffi=true|false": whether the fast path is in use
--   /echo          every message back with its kind (iter)
--   /typed         receive_text, then receive_bytes, then receive_json: each
--                  result or error back as text
--   /send-errors   the errors of send_text (bad UTF-8), of a send after
--                  close() and of a send to a departed peer
--   /flood?n=N     N messages of 64 KiB, sent as fast as the handler can
--                  (the high-water mark makes it wait), then "done"
local nexlua = require "nexlua"

local app = nexlua.App({ write_high_water = 65536 })

app:ws_route("/info", function(ws)
  ws:accept()
  ws:send_text("ffi=" .. tostring(require("nexlua.private.fastpath") ~= false))
end)

app:ws_route("/echo", function(ws)
  ws:accept()
  for data, kind in ws:iter() do
    if kind == "text" then ws:send_text(data) else ws:send_bytes(data) end
  end
end)

app:ws_route("/typed", function(ws)
  ws:accept()
  for _, f in ipairs({ "receive_text", "receive_bytes", "receive_json" }) do
    local ok, v = pcall(ws[f], ws)
    if ok then
      ws:send_text(f .. " " .. (type(v) == "table" and ("json " .. tostring(v.n)) or v))
    else
      ws:send_text(f .. " error " .. tostring(v))
    end
  end
  ws:receive_text()
end)

app:ws_route("/send-errors", function(ws)
  ws:accept()
  local ok, err = pcall(ws.send_text, ws, "\255bad")
  ws:send_text("utf8 " .. tostring(ok) .. " " .. tostring(err))
  ws:receive_text() -- the client says when to close
  ws:close(1000, "bye")
  ok, err = pcall(ws.send_text, ws, "late")
  ws.state.after_close = tostring(ok) .. " " .. tostring(err)
  nexlua.publish("fastpath", ws.state.after_close)
end)

-- Every message goes back with send_text, whatever its kind: text just
-- received skips the second UTF-8 check, anything else is checked.
app:ws_route("/resend", function(ws)
  ws:accept()
  for data in ws:iter() do
    local ok, err = pcall(ws.send_text, ws, data)
    if not ok then ws:send_text("error " .. tostring(err)) end
  end
end)

app:ws_route("/watch", function(ws)
  ws:accept()
  ws:subscribe("fastpath")
  ws:send_text("watching")
  ws:receive_text()
end)

app:ws_route("/flood", function(ws)
  ws:accept()
  local n = tonumber(ws.query_params:get("n", "100"))
  local chunk = string.rep("x", 65536)
  for _ = 1, n do ws:send_bytes(chunk) end
  ws:send_text("done")
  ws:receive_text()
end)

return app
