-- Routing spec app: every route accepts, sends one JSON report of what it saw
-- ({route=, params=, types=}), then waits for the client to leave.
local nexlua = require "nexlua"

local app = nexlua.App()

-- A custom converter: hexadecimal numbers, converted to a Lua number.
nexlua.register_converter("hex", {
  pattern = "%x+",
  convert = function(s) return tonumber(s, 16) end,
})
-- A custom converter that refuses some matches (convert returns nil).
nexlua.register_converter("even", {
  pattern = "%d+",
  convert = function(s)
    local n = tonumber(s)
    if n % 2 == 0 then return n end
    return nil
  end,
})

local function reporter(name)
  return function(ws)
    ws:accept()
    local types = {}
    for k, v in pairs(ws.path_params) do types[k] = type(v) end
    local params = ws.path_params
    if next(params) == nil then params = nexlua.json.empty_array end
    ws:send_json({ route = name, params = params, types = types, path = ws.path })
    for _ in ws:iter() do end
  end
end

app:ws_route("/static", reporter("static"))
app:ws_route("/conv/str/{name}", reporter("str"))
app:ws_route("/conv/int/{id:int}", reporter("int"))
app:ws_route("/conv/float/{x:float}", reporter("float"))
app:ws_route("/conv/uuid/{u:uuid}", reporter("uuid"))
app:ws_route("/conv/path/{rest:path}", reporter("path"))
app:ws_route("/conv/slug/{s:slug}", reporter("slug"))
app:ws_route("/conv/hex/{n:hex}", reporter("hex"))
app:ws_route("/conv/even/{n:even}", reporter("even"))
app:ws_route("/multi/{a}/x/{b:int}", reporter("multi"))

-- First match in registration order: /order/{id:int} wins for digits, the
-- str route takes the rest, and the static /order/me registered after the str
-- route is never reached.
app:ws_route("/order/{id:int}", reporter("order-int"))
app:ws_route("/order/{name}", reporter("order-str"))
app:ws_route("/order/me", reporter("order-static"))

-- The dot form: app.ws_route(path, handler).
app.ws_route("/dot", reporter("dot"))
-- Chaining: ws_route returns the app.
app:ws_route("/chain1", reporter("chain1")):ws_route("/chain2", reporter("chain2"))
-- The decorator form: app:ws_route(path)(handler).
app:ws_route("/deco")(reporter("deco"))

return app
