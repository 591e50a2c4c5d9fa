-- Peer server for scripts/bench: nginx + ngx_http_lua + lua-resty-websocket
-- (Debian's lua-nginx-websocket installs it as nginx.websocket.*).
-- One worker process; the subscriber table is per worker (module state).
--   /ws   echo: every message back as it came, text as text, binary as binary
--   /sub  subscriber: a reader light thread notices the disconnect, the
--         request's own thread writes what the publisher queued for it
--         (a cosocket is written only by the request that owns it)
--   /pub  every message is queued for every subscriber, as text
-- luacheck: globals ngx
local server = require "nginx.websocket.server"
local semaphore = require "ngx.semaphore"

local M = {}
local subscribers = {}
local pairs = pairs

local function new_ws()
  local wb, err = server:new { timeout = 600000, max_payload_len = 16 * 1024 * 1024 }
  if not wb then
    ngx.log(ngx.ERR, "websocket handshake failed: ", err)
    return ngx.exit(444)
  end
  return wb
end

function M.echo()
  local wb = new_ws()
  while true do
    local data, typ = wb:recv_frame()
    if not data then return end
    if typ == "text" then
      wb:send_text(data)
    elseif typ == "binary" then
      wb:send_binary(data)
    elseif typ == "ping" then
      wb:send_pong(data)
    elseif typ == "close" then
      wb:send_close(1000, "")
      return
    end
  end
end

function M.sub()
  local wb = new_ws()
  local me = { q = {}, n = 0, sema = semaphore.new(), closed = false }
  subscribers[me] = true
  local reader = ngx.thread.spawn(function()
    while true do
      local data, typ = wb:recv_frame()
      if not data or typ == "close" then break end
    end
    me.closed = true
    me.sema:post(1)
  end)
  while not me.closed do
    me.sema:wait(600)
    local n = me.n
    if n > 0 then
      local q = me.q
      me.q, me.n = {}, 0
      for i = 1, n do
        if not wb:send_text(q[i]) then
          me.closed = true
          break
        end
      end
    end
  end
  subscribers[me] = nil
  wb:send_close(1000, "")
  ngx.thread.wait(reader)
end

function M.pub()
  local wb = new_ws()
  while true do
    local data, typ = wb:recv_frame()
    if not data then break end
    if typ == "text" or typ == "binary" then
      for sub in pairs(subscribers) do
        local n = sub.n + 1
        sub.q[n] = data
        sub.n = n
        if n == 1 then sub.sema:post(1) end
      end
    elseif typ == "close" then
      wb:send_close(1000, "")
      break
    end
  end
end

return M
