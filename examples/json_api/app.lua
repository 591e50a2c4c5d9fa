-- A JSON API over one WebSocket: the reference's receive_json pattern.
--   {"type":"ping"}                      -> {"type":"pong"}
--   {"type":"message","content":"hi"}    -> {"type":"message","content":"hi","length":2}
--   {"type":"add","a":1,"b":2}           -> {"type":"sum","result":3}
--   anything else                        -> {"error":"unknown type", ...}
--   text that is not JSON                -> {"error":"Invalid JSON"} (the connection stays open)
local nexlua = require "nexlua"

local app = nexlua.App()

local handlers = {}

function handlers.ping() return { type = "pong" } end

function handlers.message(data)
  if type(data.content) ~= "string" then return { error = "message needs a string 'content'" } end
  return { type = "message", content = data.content, length = #data.content }
end

function handlers.add(data)
  if type(data.a) ~= "number" or type(data.b) ~= "number" then
    return { error = "add needs numbers 'a' and 'b'" }
  end
  local sum = data.a + data.b
  if sum ~= sum or sum == math.huge or sum == -math.huge then -- (JSON has no infinity)
    return { error = "the sum is too large for JSON" }
  end
  return { type = "sum", result = sum }
end

app:ws_route("/api", function(ws)
  ws:accept()
  while true do
    local ok, data = pcall(ws.receive_json, ws)
    if ok then
      local handler = type(data) == "table" and handlers[data.type]
      if handler then
        ws:send_json(handler(data))
      else
        ws:send_json({ error = "unknown type", type = type(data) == "table" and data.type or nexlua.json.null })
      end
    elseif nexlua.is_json_error(data) then
      ws:send_json({ error = "Invalid JSON" })
    elseif nexlua.is_disconnect(data) then
      return -- the client left
    else
      error(data, 0)
    end
  end
end)

return app
