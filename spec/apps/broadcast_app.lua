-- Sending to other connections (spec/api/broadcast_spec.lua): by hand from a
-- handler's coroutine and from a task, to a slow reader, to a gone peer.
local nexlua = require "nexlua"

local app = nexlua.App()
local members = {} -- name -> ws, while its handler runs
local kept = {}    -- name -> ws, never removed (to send to a gone peer)
app.state.members, app.state.gone = members, {}

local CHUNK = string.rep("0123456789abcdef", 4096) -- 64 KiB

local function describe_error(err)
  return string.format("disconnect=%s code=%s", tostring(nexlua.is_disconnect(err)),
    tostring(type(err) == "table" and err.code or "?"))
end

-- Sends mib MiB to ws in 64 KiB messages, without waiting for the reader.
local function blast(ws, mib)
  for _ = 1, mib * 16 do ws:send_text(CHUNK) end
end

local function broadcast(from, msg)
  local n = 0
  for name, peer in pairs(members) do
    if name ~= from then
      peer:send_text("from " .. from .. ": " .. msg)
      n = n + 1
    end
  end
  return n
end

app:ws_route("/member/{name}", function(ws)
  local name = ws.path_params.name
  ws:accept()
  members[name], kept[name] = ws, ws
  ws:send_text("joined " .. name)
  local ok, err = pcall(function()
    for msg in ws:iter_text() do
      local cmd, rest = msg:match("^([%w%-]+):?(.*)$")
      if cmd == "echo" then
        ws:send_text("echo " .. rest)
      elseif cmd == "broadcast" then
        ws:send_text("sent to " .. broadcast(name, rest))
      elseif cmd == "broadcast-task" then
        -- from a task that outlives this turn of the loop: it sends to the
        -- others and then to this connection, neither being its own
        nexlua.spawn(function()
          nexlua.sleep(0.05)
          local n = broadcast(name, rest)
          ws:send_text("task sent to " .. n)
        end)
        ws:send_text("task spawned")
      elseif cmd == "blast" or cmd == "blast-task" then
        local target, mib = rest:match("^(%w+):(%d+)$")
        local peer = members[target]
        if cmd == "blast" then
          blast(peer, tonumber(mib))
        else
          nexlua.spawn(blast, peer, tonumber(mib)):wait(5)
        end
        ws:send_text(string.format("blasted %s MiB to %s, buffered %d", mib, target, peer:buffered_amount()))
      elseif cmd == "send-to" then
        local target, text = rest:match("^(%w+):(.*)$")
        local peer = kept[target]
        local ok2, err2 = pcall(peer.send_text, peer, text)
        ws:send_text(ok2 and "send ok" or ("send failed: " .. describe_error(err2)))
      end
    end
  end)
  if members[name] == ws then members[name] = nil end
  table.insert(app.state.gone, name)
  nexlua.log.info("member %s left (%s)", name, ok and "disconnect" or tostring(err))
  if not ok then error(err, 0) end
end)

return app
