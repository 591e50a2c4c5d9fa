-- Cross-connection spec app: handlers send to other connections' ws objects.
--   /peer/{name}: "to:NAME:TEXT" sends "from ME: TEXT" to NAME, answers "sent";
--                 "all:TEXT" sends it to every other peer, answers "sent N".
--   /ghost/{name}: registered and never removed, to try sending to a peer
--                  that is gone: "ghost:NAME:TEXT" answers how the send ended.
--                  "close-me" makes its handler close it (4000) and return.
--   /late/{name}:  registered as a ghost before its accept(), which comes
--                  after "accept" is sent to /peer: "accept:NAME".
local nexlua = require "nexlua"

local app = nexlua.App()

local peers, ghosts = {}, {}

app:ws_route("/peer/{name}", function(ws)
  local me = ws.path_params.name
  ws:accept()
  peers[me] = ws
  for msg in ws:iter_text() do
    local to, text = msg:match("^to:([^:]+):(.*)$")
    local all = msg:match("^all:(.*)$")
    local ghost, gtext = msg:match("^ghost:([^:]+):(.*)$")
    if to then
      local target = peers[to]
      if target then
        target:send_text("from " .. me .. ": " .. text)
        ws:send_text("sent")
      else
        ws:send_text("no such peer " .. to)
      end
    elseif all then
      local n = 0
      for name, other in pairs(peers) do
        if name ~= me then
          other:send_text("from " .. me .. " to all: " .. all)
          n = n + 1
        end
      end
      ws:send_text("sent " .. n)
    elseif ghost then
      local target = ghosts[ghost]
      local ok, err = pcall(function() target:send_text(gtext) end)
      if ok then
        ws:send_text("ghost send ok")
      else
        ws:send_text(string.format("ghost send failed: disconnect=%s code=%s same=%s message=%s",
          tostring(nexlua.is_disconnect(err)), tostring(type(err) == "table" and err.code),
          tostring(type(err) == "table" and err.websocket == target),
          tostring(type(err) == "table" and err.message or err)))
      end
    elseif msg:match("^accept:") then
      local late = ghosts[msg:sub(8)]
      late.state.go:put(true)
      ws:send_text("sent")
    end
  end
  peers[me] = nil
end)

app:ws_route("/ghost/{name}", function(ws)
  ws:accept()
  ghosts[ws.path_params.name] = ws
  ws:send_text("registered")
  for msg in ws:iter() do
    if msg == "close-me" then
      ws:close(4000, "closing myself")
      return
    end
  end
end)

app:ws_route("/late/{name}", function(ws)
  ghosts[ws.path_params.name] = ws
  ws.state.go = nexlua.Queue()
  ws.state.go:get()
  ws:accept()
  ws:send_text("registered")
  for _ in ws:iter() do end
end)

return app
