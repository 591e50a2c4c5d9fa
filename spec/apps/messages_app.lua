-- Messages spec app: receive*/send*/iter*, JSON encoding, receive timeouts,
-- control frames. Routes that end quietly append a line to the file named by
-- the ?file= query parameter so the spec can see how they ended.
local nexlua = require "nexlua"
local json = nexlua.json

local app = nexlua.App()

local function record(ws, line)
  local path = ws.query_params:get("file")
  if not path then return end
  local f = assert(io.open(path, "a"))
  f:write(line, "\n")
  f:close()
end

-- Every message back with its type, as ws:receive() returned it.
app:ws_route("/kind", function(ws)
  ws:accept()
  while true do
    local data, kind = ws:receive()
    if kind == "text" then
      ws:send_text("text:" .. data)
    else
      ws:send_bytes("binary:" .. data)
    end
  end
end)

app:ws_route("/receive-text", function(ws)
  ws:accept()
  while true do ws:send_text("got:" .. ws:receive_text()) end
end)

app:ws_route("/receive-bytes", function(ws)
  ws:accept()
  while true do ws:send_bytes(ws:receive_bytes()) end
end)

-- Decodes, then sends back {got = value, type = lua type}.
app:ws_route("/receive-json", function(ws)
  ws:accept()
  while true do
    local v = ws:receive_json()
    ws:send_json({ got = v, type = type(v) })
  end
end)

app:ws_route("/iter-text", function(ws)
  ws:accept()
  local n = 0
  for msg in ws:iter_text() do
    n = n + 1
    ws:send_text(msg)
  end
  record(ws, "iter_text ended after " .. n)
end)

app:ws_route("/iter-bytes", function(ws)
  ws:accept()
  local n = 0
  for msg in ws:iter_bytes() do
    n = n + 1
    ws:send_bytes(msg)
  end
  record(ws, "iter_bytes ended after " .. n)
end)

app:ws_route("/iter-json", function(ws)
  ws:accept()
  local n = 0
  for v in ws:iter_json() do
    n = n + 1
    ws:send_json({ echo = v })
  end
  record(ws, "iter_json ended after " .. n)
end)

-- send_text with a number, send_bytes with every byte value.
app:ws_route("/send-variety", function(ws)
  ws:accept()
  ws:send_text(42)
  ws:send_text(2 ^ 53)
  ws:send_text(0.1)
  ws:send_text(-1.5e-7)
  ws:send_text(5e-324)
  local all = {}
  for i = 0, 255 do all[#all + 1] = string.char(i) end
  ws:send_bytes(table.concat(all))
  ws:send_text("")
  ws:send_text("héllo wörld ✓")
  for _ in ws:iter() do end
end)

-- Each text message names a case; the reply is ws:send_json(<that value>).
local cases = {
  slash = function() return { path = "/a/b" } end,
  compact = function() return { a = { b = { 1, 2 } } } end,
  list = function() return { 1, 2, 3 } end,
  empty_object = function() return {} end,
  empty_array = function() return json.empty_array end,
  array_fn = function() return json.array({}) end,
  nested_empty = function() return { list = json.empty_array } end,
  deep_empty = function() return { a = { b = { c = json.array() } } } end,
  null = function() return { v = json.null } end,
  string = function() return "plain" end,
  number = function() return 1.5 end,
  boolean = function() return true end,
  unicode = function() return { s = "héllo ✓" } end,
  escapes = function() return { s = "quote\" backslash\\ newline\n tab\t" } end,
  bigint = function() return { n = 9007199254740991, m = 123456789012345 } end,
}
app:ws_route("/send-json", function(ws)
  ws:accept()
  for name in ws:iter_text() do
    if name == "binary" then
      ws:send_json({ binary = true }, { binary = true })
    elseif name == "unencodable" or name == "raw_bytes" then
      local v = name == "raw_bytes" and { data = "\xff\xfe raw" } or { f = function() end }
      local ok, err = pcall(function() ws:send_json(v) end)
      ws:send_json({ ok = ok, err = tostring(err), is_ws_error = nexlua.is_websocket_error(err) })
    else
      ws:send_json(cases[name]())
    end
  end
end)

-- receive{timeout=} raises TimeoutError; the connection stays usable.
app:ws_route("/timeout", function(ws)
  ws:accept()
  local t0 = nexlua.now()
  local ok, err = pcall(function() return ws:receive { timeout = 0.3 } end)
  ws:send_json({
    ok = ok, err = tostring(err), is_timeout = nexlua.is_timeout(err),
    is_disconnect = nexlua.is_disconnect(err), is_ws_error = nexlua.is_websocket_error(err),
    is_error = nexlua.is_error(err),
    elapsed = nexlua.now() - t0,
  })
  -- still usable: a normal receive
  ws:send_text("after:" .. ws:receive_text())
  -- the number form, on receive_text
  ok, err = pcall(ws.receive_text, ws, 0.1)
  ws:send_json({ ok = ok, is_timeout = nexlua.is_timeout(err) })
  -- a message that comes within the timeout is returned
  local data, kind = ws:receive { timeout = 5 }
  ws:send_text("within:" .. kind .. ":" .. data)
  for _ in ws:iter() do end
end)

-- "sleep" makes the handler busy (not receiving) for 1 s, then it says "woke".
app:ws_route("/sleeper", function(ws)
  ws:accept()
  for msg in ws:iter_text() do
    if msg == "sleep" then
      nexlua.sleep(1)
      ws:send_text("woke")
    else
      ws:send_text("echo:" .. msg)
    end
  end
end)

-- Counts what the handler sees: only data messages, never control frames.
app:ws_route("/count", function(ws)
  ws:accept()
  local n = 0
  for data, kind in ws:iter() do
    n = n + 1
    ws:send_text(string.format("%d:%s:%s", n, kind, kind == "text" and data or #data))
  end
end)

return app
