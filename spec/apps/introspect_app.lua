-- Introspection spec app: sends back, as JSON, what the WebSocket object
-- tells about the request (client, headers, query_params, path_params, url,
-- path, subprotocols) and shows that ws.state is per connection.
local nexlua = require "nexlua"
local json = nexlua.json

local app = nexlua.App()

local function list(t)
  if #t == 0 then return json.empty_array end
  return t
end

local function introspect(ws)
  -- Looked at before accept (the reference's authentication pattern).
  local auth = ws.headers:get("Authorization")
  ws:accept()
  local h, q = ws.headers, ws.query_params
  local client = ws.client
  local params = ws.path_params
  if next(params) == nil then params = json.empty_array end
  ws:send_json({
    client = client and { host = client.host, port = client.port, port_type = type(client.port),
      text = tostring(client), concat = "from " .. client }
      or json.null,
    auth_before_accept = auth or json.null,
    header = {
      lower = h:get("x-custom") or json.null,
      upper = h:get("X-CUSTOM") or json.null,
      mixed = h:get("X-Custom") or json.null,
      missing = h:get("x-missing") or json.null,
      default = h:get("x-missing", "fallback"),
      all = list(h:get_all("X-Multi")),
      all_missing = list(h:get_all("x-missing")),
      host = h:get("host") or json.null,
      indexed = h["X-CUSTOM"] or json.null,
      dotted = h.host or json.null,
    },
    query = {
      a = q:get("a") or json.null,
      a_all = list(q:get_all("a")),
      q = q:get("q") or json.null,
      plus = q:get("plus") or json.null,
      empty = q:get("empty") or json.null,
      flag = q:get("flag") or json.null,
      missing = q:get("missing") or json.null,
      case = q:get("A") or json.null,
      indexed = q["q"] or json.null,
      dotted = q.plus or json.null,
      indexed_missing = q["missing"] or json.null,
      method = type(q.get),
      s = q:get("s") or json.null,
      names = list(q:keys()),
    },
    path_params = params,
    url = ws.url,
    path = ws.path,
    subprotocols = list(ws.subprotocols),
  })
  for _ in ws:iter() do end
end

app:ws_route("/introspect", introspect)
app:ws_route("/introspect/{name}/{n:int}", introspect)

-- ws.state: a per-connection table. Each text message "set K V" stores
-- state[K] = V; "get K" answers state[K]; "count" counts messages so far.
app:ws_route("/state", function(ws)
  ws:accept()
  ws.state.messages = 0
  for msg in ws:iter_text() do
    ws.state.messages = ws.state.messages + 1
    local k, v = msg:match("^set (%S+) (.*)$")
    if k then
      ws.state[k] = v
      ws:send_text("ok")
    else
      k = msg:match("^get (%S+)$")
      if k then
        ws:send_text(tostring(ws.state[k]))
      else
        ws:send_text("messages=" .. ws.state.messages)
      end
    end
  end
end)

return app
