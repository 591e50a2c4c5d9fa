--- The WebSocket object a handler receives: Nexios' API in Lua's idiom.
local core = require "nexlua.core"
local errors = require "nexlua.errors"
local json = require "nexlua.json"
local multidict = require "nexlua.multidict"
local topics = require "nexlua.topics"

local type, tostring, pairs, ipairs, rawset, setmetatable, floor =
  type, tostring, pairs, ipairs, rawset, setmetatable, math.floor
local find, format, gmatch, lower = string.find, string.format, string.gmatch, string.lower
local concat = table.concat
local waiting = require "nexlua.private.waiting"
local recv, wait_recv, send, accept, reject, close, conn_state =
  core.recv, core.wait_recv, core.send, core.accept, core.reject, core.close, core.state
local raise = errors.raise
local Disconnect, WebSocketError, MessageTypeError, JSONDecodeError, TimeoutError =
  errors.WebSocketDisconnect, errors.WebSocketError, errors.MessageTypeError,
  errors.JSONDecodeError, errors.TimeoutError

local WebSocket = {}

local ok_new, new_table = pcall(require, "table.new")
if not ok_new then new_table = function() return {} end end

-- Connection states, as the app sees them.
local CONNECTING, CONNECTED, CLOSED, DISCONNECTED = "connecting", "connected", "closed", "disconnected"

-- Fields computed on first access, so a connection that never looks at its
-- headers never pays for parsing them.
local lazy = {
  -- The request as a table, built from the box's compact copy on first use.
  _req = function(self) return core.request(self._box) end,
  route = function(self) return self._route and self._route.template end,
  app = function(self) return self._route and self._route.app end,
  path = function(self) return multidict.unescape_path(core.request_path(self._box)) end,
  headers = function(self) return multidict.Headers(self._req.headers) end,
  query_params = function(self) return multidict.QueryParams(self._req.query) end,
  client = function(self)
    local r = self._req
    if not r.client_host or r.client_host == "" then return nil end
    return { host = r.client_host, port = r.client_port }
  end,
  url = function(self)
    local host = self.headers:get("host", "localhost")
    return (self._req.scheme or "ws") .. "://" .. host .. self._req.target
  end,
  subprotocols = function(self)
    local out = {}
    for _, v in ipairs(self.headers:get_all("sec-websocket-protocol")) do
      for p in gmatch(v, "[^,%s]+") do out[#out + 1] = p end
    end
    return out
  end,
  state = function() return {} end,
  path_params = function() return {} end,
}

local mt = {
  __index = function(self, k)
    local m = WebSocket[k]
    if m ~= nil then return m end
    local f = lazy[k]
    if f then
      local v = f(self)
      rawset(self, k, v)
      return v
    end
    return nil
  end,
  __tostring = function(self)
    return format("nexlua.WebSocket(%s %s)", self.path, self._state)
  end,
}

--- Wraps a connection box (from the core). Kept small: this table is a
-- good part of an idle connection's memory, so it holds four fields (these
-- two, then _route and _co from serve) and every other one is computed on
-- first access (see lazy). Note that storing nil under a new key still adds
-- the key in Lua: fields that may be nil are only set when they are not.
function WebSocket.new(box)
  local self = new_table(0, 4)
  self._box, self._state = box, CONNECTING
  return setmetatable(self, mt)
end

local function valid_token(s)
  return type(s) == "string" and s ~= "" and not find(s, "[%c%s\"(),/:;<=>?@%[\\%]{}]")
end

local function header_lines(headers, level)
  if headers == nil then return nil end
  if type(headers) ~= "table" then raise(WebSocketError, level, "accept: headers must be a table") end
  local out = {}
  local function add(name, value)
    name, value = tostring(name), tostring(value)
    if not valid_token(name) then
      raise(WebSocketError, level + 1, "accept: invalid header name " .. format("%q", name))
    end
    if find(value, "[\r\n%z]") then
      raise(WebSocketError, level + 1, "accept: header value for " .. name .. " contains a line break")
    end
    local l = lower(name)
    if l == "sec-websocket-accept" or l == "upgrade" or l == "connection" or l == "sec-websocket-protocol" then
      raise(WebSocketError, level + 1, "accept: header " .. name .. " is set by the server")
    end
    out[#out + 1] = name .. ": " .. value .. "\r\n"
  end
  if headers[1] ~= nil then
    for _, pair in ipairs(headers) do add(pair[1], pair[2]) end
  else
    for k, v in pairs(headers) do add(k, v) end
  end
  return concat(out)
end

-- The peer is gone (code, reason from the core): the connection is over
-- for this object, and the error remembers whose disconnect it is.
local function disconnected(self, code, reason)
  if self._state ~= CLOSED then self._state = DISCONNECTED end
  local e = Disconnect(code, reason)
  e.websocket = self
  self._disconnect = e
  return e
end

--- Accepts the connection. opts: {subprotocol = "chat", headers = {["X-Server"] = "nexlua"}}
-- (or a subprotocol name as a string). The subprotocol must be one the
-- client offered (see ws.subprotocols).
function WebSocket:accept(opts)
  if self._state ~= CONNECTING then raise(WebSocketError, 2, "accept() called twice, or after close()") end
  local subprotocol, headers
  if type(opts) == "string" then
    subprotocol = opts
  elseif type(opts) == "table" then
    subprotocol, headers = opts.subprotocol, opts.headers
  elseif opts ~= nil then
    raise(WebSocketError, 2, "accept() takes a table {subprotocol=, headers=} or a subprotocol name")
  end
  if subprotocol ~= nil then
    local offered = false
    for _, p in ipairs(self.subprotocols) do
      if p == subprotocol then offered = true end
    end
    if not offered then
      raise(WebSocketError, 2, format("accept: subprotocol %q was not offered by the client", tostring(subprotocol)))
    end
  end
  local lines = header_lines(headers, 3)
  local ropts = self._route and self._route.options
  local ok, _, code, reason = accept(self._box, subprotocol, lines,
    ropts and ropts.ping_interval, ropts and ropts.ping_timeout, not (ropts and ropts.compression == false))
  if not ok then error(disconnected(self, code, reason), 0) end
  self._state = CONNECTED
  if subprotocol ~= nil then self.accepted_subprotocol = subprotocol end -- (a nil store would still add a key)
end

local function check_close_code(code)
  if type(code) ~= "number" or code ~= floor(code) then return false end
  return (code >= 1000 and code <= 1003) or (code >= 1007 and code <= 1014) or (code >= 3000 and code <= 4999)
end

--- Closes the connection with code (default 1000) and reason (at most 123
-- bytes of UTF-8). Before accept() this refuses the handshake: the client
-- gets HTTP 403 and no WebSocket is opened. Closing twice does nothing.
function WebSocket:close(code, reason)
  if code == nil then code = 1000 end
  if not check_close_code(code) then
    raise(WebSocketError, 2,
      format("close: invalid close code %s (use 1000-1003, 1007-1014 or 3000-4999)", tostring(code)))
  end
  if reason ~= nil and type(reason) ~= "string" then raise(WebSocketError, 2, "close: reason must be a string") end
  if reason and #reason > 123 then raise(WebSocketError, 2, "close: reason is longer than 123 bytes") end
  if reason and not core.utf8_valid(reason) then raise(WebSocketError, 2, "close: reason is not valid UTF-8") end
  local st = self._state
  if st == CONNECTING then
    self._state = CLOSED
    self.close_code, self.close_reason = code, reason
    reject(self._box, 403, nil, "Forbidden\n")
  elseif st == CONNECTED then
    self._state = CLOSED
    self.close_code, self.close_reason = code, reason
    close(self._box, code, reason)
  end
end

--- Refuses the handshake with a real HTTP response (before accept only).
-- status: 4xx/5xx; headers: table; body: string.
function WebSocket:deny(status, body, headers)
  if self._state ~= CONNECTING then raise(WebSocketError, 2, "deny() is only possible before accept()") end
  if type(status) ~= "number" or status < 400 or status > 599 then
    raise(WebSocketError, 2, "deny: status must be 4xx or 5xx")
  end
  local lines = header_lines(headers, 3)
  self._state = CLOSED
  reject(self._box, status, lines, body and tostring(body) or nil)
end

-- The one receive loop: a queued message straight from the core, else a
-- wait (the only place a receive yields). Returns data, kind; or nil,
-- "closed", code, reason once the connection has ended; or nil, "timeout"
-- or "cancelled" when the wait ended so.
local function take(box, timeout)
  while true do
    local data, kind, code, reason = recv(box)
    if data ~= nil or kind == "closed" then return data, kind, code, reason end
    local why = waiting.call(wait_recv, "receive", box, timeout)
    if why then return nil, why end
    -- woken up: a message arrived or the connection ended; look again
  end
end

--- Receives the next message: returns data, "text" | "binary".
-- opts: {timeout = seconds} or a number. Raises WebSocketDisconnect when the
-- peer leaves, TimeoutError when the timeout passes (connection still usable).
function WebSocket:receive(opts)
  local st = self._state
  if st ~= CONNECTED then
    if st == CONNECTING then raise(WebSocketError, 2, "cannot receive before accept()") end
    if self._disconnect then error(self._disconnect, 0) end
  end
  local timeout = opts
  if type(opts) == "table" then timeout = opts.timeout end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout < 0) then
    raise(WebSocketError, 2, "receive: timeout must be a non-negative number of seconds")
  end
  local data, kind, code, reason = take(self._box, timeout)
  if data ~= nil then return data, kind end
  if kind == "closed" then error(disconnected(self, code, reason), 0) end
  if kind == "timeout" then error(TimeoutError(timeout), 0) end
  error(errors.CancelledError(), 0)
end

function WebSocket:receive_text(opts)
  local data, kind = self:receive(opts)
  if kind ~= "text" then error(MessageTypeError("text", kind, data), 0) end
  return data
end

function WebSocket:receive_bytes(opts)
  local data, kind = self:receive(opts)
  if kind ~= "binary" then error(MessageTypeError("binary", kind, data), 0) end
  return data
end

--- Receives a message (text or binary) and decodes it as JSON.
function WebSocket:receive_json(opts)
  local data = self:receive(opts)
  local v, err = json.decode(data)
  if v == nil then error(JSONDecodeError(err, data), 0) end
  return v
end

local function do_send(self, data, binary)
  local st = self._state
  if st ~= CONNECTED then
    if st == CONNECTING then raise(WebSocketError, 3, "cannot send before accept()") end
    if st == CLOSED then raise(WebSocketError, 3, "cannot send after close()") end
  end
  local ok, kind, code, reason = send(self._box, data, binary)
  if ok then
    -- Our own client reads slower than we send: wait until it catches up.
    if kind == "drain" then
      local why = waiting.call(core.wait_drain, "send", self._box)
      if why == "cancelled" then error(errors.CancelledError(), 0) end
    end
    return
  end
  if kind ~= nil then
    if kind == "cancelled" then error(errors.CancelledError(), 0) end
    if kind == "utf8" then
      raise(WebSocketError, 3, "send_text: the text is not valid UTF-8 (use send_bytes for binary data)")
    end
    -- "closing": our close frame is out because the server is shutting down
    -- (the app's own close() was caught above): the peer is as good as gone.
    error(disconnected(self, code, reason), 0)
  end
end

function WebSocket:send_text(s)
  if type(s) ~= "string" then
    if type(s) ~= "number" then raise(WebSocketError, 2, "send_text: expected a string, got " .. type(s)) end
    s = tostring(s)
  end
  do_send(self, s, false)
end

function WebSocket:send_bytes(s)
  if type(s) ~= "string" then raise(WebSocketError, 2, "send_bytes: expected a string, got " .. type(s)) end
  do_send(self, s, true)
end

--- Sends v encoded as compact JSON, as a text message (opts.binary = true
-- for a binary one). See nexlua.json for empty arrays and null.
function WebSocket:send_json(v, opts)
  local s, err = json.encode(v)
  if not s then raise(WebSocketError, 2, "send_json: cannot encode the value as JSON: " .. tostring(err)) end
  do_send(self, s, opts ~= nil and opts.binary == true)
end

-- The iterators' receive: a queued message straight from the core, a wait
-- when there is none, and nil (not an error) when the connection ended, so
-- the normal end of a connection raises and unwinds nothing.
local function next_message(self)
  local st = self._state
  if st == CONNECTING then raise(WebSocketError, 3, "cannot receive before accept()") end
  if st == DISCONNECTED then return nil end
  local data, kind, code, reason = take(self._box, nil)
  if data ~= nil then return data, kind end
  if kind == "closed" then
    disconnected(self, code, reason)
    return nil
  end
  error(errors.CancelledError(), 0)
end

-- The iterators are stateless (function, ws): a loop allocates nothing.
local function step_text(self)
  local data, kind = next_message(self)
  if data ~= nil and kind ~= "text" then error(MessageTypeError("text", kind, data), 0) end
  return data
end

local function step_bytes(self)
  local data, kind = next_message(self)
  if data ~= nil and kind ~= "binary" then error(MessageTypeError("binary", kind, data), 0) end
  return data
end

local function step_json(self)
  local data = next_message(self)
  if data == nil then return nil end
  local v, err = json.decode(data)
  if v == nil then error(JSONDecodeError(err, data), 0) end
  return v
end

--- for msg in ws:iter_text() do ... end: ends quietly when the peer leaves.
function WebSocket:iter_text() return step_text, self end
function WebSocket:iter_bytes() return step_bytes, self end
function WebSocket:iter_json() return step_json, self end

-- (A step of its own, not a tail call, so that an error names the loop's line.)
local function step_any(self)
  local data, kind = next_message(self)
  return data, kind
end

--- for data, kind in ws:iter() do ... end: every message with its type.
function WebSocket:iter() return step_any, self end

--- Topics (see nexlua.publish): subscribes this connection to topic until
-- ws:unsubscribe(topic) or the end of the connection. Returns true if it
-- was not subscribed yet. Raises WebSocketDisconnect once the peer is gone.
function WebSocket:subscribe(topic)
  topics.check(topic, "subscribe", 2)
  local st = self._state
  if st == CONNECTING then raise(WebSocketError, 2, "cannot subscribe before accept()") end
  if st == CLOSED then raise(WebSocketError, 2, "cannot subscribe after close()") end
  local ok, _, code, reason = core.subscribe(self._box, topic)
  if ok == nil then error(disconnected(self, code, reason), 0) end
  return ok
end

--- Leaves topic; returns true if the connection was subscribed to it.
function WebSocket:unsubscribe(topic)
  topics.check(topic, "unsubscribe", 2)
  return core.unsubscribe(self._box, topic)
end

function WebSocket:is_subscribed(topic)
  topics.check(topic, "is_subscribed", 2)
  return core.subscribed(self._box, topic)
end

--- The topics this connection is subscribed to (in no particular order).
function WebSocket:topics() return core.topics(self._box) end

local function publish_options(opts, what)
  if opts == nil then return false end
  if type(opts) ~= "table" then raise(WebSocketError, 3, what .. ": opts must be a table") end
  return opts.binary == true
end

--- Sends data to every subscriber of topic except this connection (which
-- need not be a subscriber itself). opts.binary: a binary message. Returns
-- how many connections it was queued to.
function WebSocket:publish(topic, data, opts)
  local n = topics.deliver(topic, data, publish_options(opts, "publish"), self._box, "publish", 2)
  return n
end

function WebSocket:publish_json(topic, v, opts)
  local binary = publish_options(opts, "publish_json")
  local s, err = json.encode(v)
  if not s then raise(WebSocketError, 2, "publish_json: cannot encode the value as JSON: " .. tostring(err)) end
  local n = topics.deliver(topic, s, binary, self._box, "publish_json", 2)
  return n
end

--- True while accepted and neither side has closed.
function WebSocket:is_connected()
  return self._state == CONNECTED and conn_state(self._box) == "open"
end

--- "connecting", "open", "closing" or "closed": the connection as the core sees it.
function WebSocket:connection_state() return conn_state(self._box) end

--- Bytes queued for this connection and not yet written to the socket.
function WebSocket:buffered_amount() return core.buffered(self._box) end

WebSocket.STATES = { CONNECTING = CONNECTING, CONNECTED = CONNECTED, CLOSED = CLOSED, DISCONNECTED = DISCONNECTED }

return WebSocket
