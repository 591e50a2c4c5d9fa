--- The WebSocket object a handler receives: Nexios' API in Lua's idiom.
local core = require "nexlua.core"
local errors = require "nexlua.errors"
local json = require "nexlua.json"
local multidict = require "nexlua.multidict"
local log = require "nexlua.log"
local topics = require "nexlua.topics"

local type, tostring, tonumber, pairs, ipairs, rawset, setmetatable, getmetatable, floor =
  type, tostring, tonumber, pairs, ipairs, rawset, setmetatable, getmetatable, math.floor
local find, format, gmatch, lower, sub = string.find, string.format, string.gmatch, string.lower, string.sub
local concat = table.concat
local waiting = require "nexlua.private.waiting"
local take, send, accept, reject, close, conn_state, close_info =
  core.take, core.send, core.accept, core.reject, core.close, core.state, core.close_info

-- With the FFI fast path (see private/fastpath.lua), take and send try it
-- first and fall back to the core functions, with the same results.
local fastpath = require "nexlua.private.fastpath"
local args = require "nexlua.private.opts"
if fastpath then
  local fast_take, fast_send, core_take, core_send = fastpath.take, fastpath.send, take, send
  take = function(box, timeout)
    local data, kind = fast_take(box)
    if data ~= nil then return data, kind end
    return core_take(box, timeout) -- (a tail call: a wait is no deeper)
  end
  send = function(box, data, binary)
    local r = fast_send(box, data, binary)
    if r == 0 then return true end
    if r == 2 then return nil, "closed", close_info(box) end
    return core_send(box, data, binary)
  end
end
local CANNOT_WAIT = waiting.CANNOT_WAIT
local raise = errors.raise
local Disconnect, WebSocketError, MessageTypeError, JSONDecodeError, TimeoutError =
  errors.WebSocketDisconnect, errors.WebSocketError, errors.MessageTypeError,
  errors.JSONDecodeError, errors.TimeoutError

local WebSocket = {}

-- The array slots of a WebSocket table (see WebSocket.new).
local BOX, STATE, ROUTE = 1, 2, 3

local ok_new, new_table = pcall(require, "table.new")
if not ok_new then new_table = function() return {} end end

-- Connection states, as the app sees them.
local CONNECTING, CONNECTED, CLOSED, DISCONNECTED = "connecting", "connected", "closed", "disconnected"

-- The WebSockets whose handshake the app refused (close() or deny() before
-- accept(): true), or whose client left before accept() ("left"): a state
-- that was never connected, for the messages of a later accept() or deny().
-- (Not a slot of every WebSocket: it is rare.)
local refused = setmetatable({}, { __mode = "k" })

-- A client's address: {host = , port = }, written "host:port" ("[host]:port"
-- for IPv6) by tostring.
local function address_text(a)
  return (find(a.host, ":", 1, true) and "[" .. a.host .. "]" or a.host) .. ":" .. a.port
end
local Address = {
  __tostring = address_text,
  __concat = function(a, b)
    return (type(a) == "table" and address_text(a) or a) .. (type(b) == "table" and address_text(b) or b)
  end,
}
local function address(host, port)
  if not host or host == "" then return nil end
  return setmetatable({ host = host, port = port }, Address)
end

-- Fields computed on first access, so a connection that never looks at its
-- headers never pays for parsing them.
local lazy = {
  -- The request as a table, built from the box's compact copy on first use.
  _req = function(self) return core.request(self[BOX]) end,
  route = function(self) return self[ROUTE] and self[ROUTE].template end,
  app = function(self) return self[ROUTE] and self[ROUTE].app end,
  path = function(self) return multidict.unescape_path(core.request_path(self[BOX])) end,
  headers = function(self) return multidict.Headers(self._req.headers) end,
  query_params = function(self) return multidict.QueryParams(self._req.query) end,
  client = function(self)
    local r = self._req
    return address(r.client_host, r.client_port)
  end,
  url = function(self)
    -- An absolute-form request target names the host instead of Host.
    local host = self._req.authority or self.headers:get("host", "localhost")
    return (self._req.scheme or "ws") .. "://" .. host .. self._req.target
  end,
  subprotocols = function(self)
    local out = json.array()
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
    return format("nexlua.WebSocket(%s %s)", self.path, self[STATE])
  end,
}

-- A method called with a dot (ws.send_text("hi"), as in Python) gets its
-- first argument as self: raises saying so, at level (1: the caller of
-- check_colon), instead of a complaint about the arguments. On the hot
-- paths (receive, send) only where something is already wrong.
local function check_colon(self, method, level)
  if getmetatable(self) ~= mt then
    raise(WebSocketError, level + 1,
      format("%s: call it with a colon, ws:%s(...), not ws.%s(...)", method, method, method))
  end
end

--- Wraps a connection box (from the core). Kept small: this table is a
-- good part of an idle connection's memory, so its own fields are three
-- array slots (the box, the state, the route: ws[1], ws[2], ws[3], private),
-- with no hash part until the app or a lazy field (see lazy) stores a key.
-- Note that storing nil under a new key still adds the key in Lua: fields
-- that may be nil are only set when they are not.
function WebSocket.new(box, route)
  local self = new_table(3, 0)
  self[BOX], self[STATE], self[ROUTE] = box, CONNECTING, route
  return setmetatable(self, mt)
end

-- For the server (serve.lua): the connection box, state and route of ws.
function WebSocket.box_of(ws) return ws[BOX] end
function WebSocket.state_of(ws) return ws[STATE] end
function WebSocket.route_of(ws) return ws[ROUTE] end

local function valid_token(s)
  return type(s) == "string" and s ~= "" and not find(s, "[%c%s\"(),/:;<=>?@%[\\%]{}]")
end

-- Headers the server writes itself, so an app may not add them: to the 101
-- of accept() (the handshake's own, the negotiated extensions, and none of
-- a body's: RFC 9110 §8.6, RFC 9112 §6.1 forbid those in a 1xx), and to the
-- response of deny() (its framing; Upgrade is the app's to add there, to a
-- 426 for one: RFC 9110 §15.5.22).
local RESERVED = {
  accept = {
    ["sec-websocket-accept"] = true, upgrade = true, connection = true,
    ["sec-websocket-protocol"] = true, ["sec-websocket-extensions"] = true,
    ["content-length"] = true, ["transfer-encoding"] = true,
  },
  deny = {
    ["sec-websocket-accept"] = true, connection = true, ["content-length"] = true,
    ["transfer-encoding"] = true,
  },
}

local header_text

-- The header lines of headers (a table name -> value, or a list of
-- {name, value} pairs) for caller ("accept" or "deny"), checked. (Split in
-- two, see header_text.)
local function header_lines(headers, level, caller)
  if headers == nil then return nil end
  return header_text(headers, level, caller) -- (a tail call: the same level)
end

-- header_lines' work, apart. In one function, the checks change which
-- traces LuaJIT records around accept(), and an idle handler's coroutine
-- keeps a larger stack: 1,030 bytes per idle connection against 936
-- (spec/api/memory_spec.lua). Measured, not derived: keep the shape.
function header_text(headers, level, caller)
  if type(headers) ~= "table" then raise(WebSocketError, level, caller .. ": headers must be a table") end
  local reserved = RESERVED[caller]
  local out = {}
  local function add(name, value)
    if type(name) ~= "string" or not valid_token(name) then
      raise(WebSocketError, level + 1, caller .. ": invalid header name " ..
        (type(name) == "string" and format("%q", name) or "(a " .. type(name) .. ")"))
    end
    if type(value) == "number" then
      value = tostring(value)
    elseif type(value) ~= "string" then
      raise(WebSocketError, level + 1, format("%s: the value of header %s must be a string, got %s",
        caller, name, type(value)))
    end
    if find(value, "[\r\n]") then
      raise(WebSocketError, level + 1, caller .. ": header value for " .. name .. " contains a line break")
    end
    if find(value, "%z") then
      raise(WebSocketError, level + 1, caller .. ": header value for " .. name .. " contains a NUL byte")
    end
    if reserved[lower(name)] then
      raise(WebSocketError, level + 1, caller .. ": header " .. name .. " is set by the server")
    end
    out[#out + 1] = name .. ": " .. value .. "\r\n"
  end
  if headers[1] ~= nil then
    local n = #headers
    for k in pairs(headers) do
      if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then
        raise(WebSocketError, level, caller .. ": headers must be a list of {name, value} pairs or a " ..
          "table of name = value, not both (found key " .. format("%q", tostring(k)) .. ")")
      end
    end
    for i, pair in ipairs(headers) do
      if type(pair) ~= "table" or pair[1] == nil or pair[2] == nil then
        raise(WebSocketError, level, format("%s: headers[%d] must be a {name, value} pair, got %s", caller, i,
          type(pair) == "table" and "a table without both" or type(pair)))
      end
      add(pair[1], pair[2])
    end
  else
    for k, v in pairs(headers) do add(k, v) end
  end
  return concat(out)
end

-- The peer is gone (code, reason from the core): the connection is over
-- for this object, and the error remembers whose disconnect it is.
local function gone(self)
  if self[STATE] ~= CLOSED then self[STATE] = DISCONNECTED end
end

local function disconnected(self, code, reason)
  gone(self)
  local e = Disconnect(code, reason)
  e.websocket = self
  return e
end

local ACCEPT_OPTIONS, RECEIVE_OPTIONS, RECEIVE_JSON_OPTIONS, KIND_OPTIONS =
  { "subprotocol", "headers" }, { "timeout" }, { "timeout", "mode" }, { "binary", "mode" }

-- accept()'s arguments for the core, checked: subprotocol, header lines,
-- ping interval and timeout, compression. Errors name the caller of accept.
local function accept_args(self, opts)
  check_colon(self, "accept", 3)
  local st = self[STATE]
  if st == CONNECTED then raise(WebSocketError, 3, "accept() called twice") end
  if st ~= CONNECTING then
    local why = refused[self]
    raise(WebSocketError, 3, why == "left" and "accept() after the client left (the first accept() raised " ..
      "WebSocketDisconnect)" or why and "accept() after the handshake was refused (close() or deny() " ..
      "before accept(), by its handler or by another task)" or
      "accept() called twice: this connection was accepted before, and has ended since")
  end
  local subprotocol, headers
  if type(opts) == "string" then
    subprotocol = opts
  elseif type(opts) == "table" then
    args.check(opts, ACCEPT_OPTIONS, "accept", 3)
    subprotocol, headers = opts.subprotocol, opts.headers
  elseif opts ~= nil then
    raise(WebSocketError, 3, "accept() takes a table {subprotocol=, headers=} or a subprotocol name")
  end
  if subprotocol ~= nil then
    local offered = false
    for _, p in ipairs(self.subprotocols) do
      if p == subprotocol then offered = true end
    end
    if not offered then
      raise(WebSocketError, 3, format("accept: subprotocol %q was not offered by the client", tostring(subprotocol)))
    end
  end
  local ropts = self[ROUTE] and self[ROUTE].options
  return subprotocol, header_lines(headers, 4, "accept"),
    ropts and ropts.ping_interval, ropts and ropts.ping_timeout, not (ropts and ropts.compression == false)
end

--- Accepts the connection. opts: {subprotocol = "chat", headers = {["X-Server"] = "nexlua"}}
-- (or a subprotocol name as a string). The subprotocol must be one the
-- client offered (see ws.subprotocols).
function WebSocket:accept(opts)
  if getmetatable(self) ~= mt then accept_args(self, opts) end -- (raises: called with a dot)
  -- The core is called with few slots in use: a C call deeper in the
  -- coroutine's stack would make LuaJIT grow it (see take).
  local ok, _, code, reason = accept(self[BOX], accept_args(self, opts))
  if not ok then
    refused[self] = "left"
    error(disconnected(self, code, reason), 0)
  end
  self[STATE] = CONNECTED
  local subprotocol = opts
  if type(opts) == "table" then subprotocol = opts.subprotocol end
  if subprotocol ~= nil then self.accepted_subprotocol = subprotocol end -- (a nil store would still add a key)
end

local function check_close_code(code)
  return (code >= 1000 and code <= 1003) or (code >= 1007 and code <= 1014) or (code >= 3000 and code <= 4999)
end
--- Whether code is a close code an endpoint may send (RFC 6455 §7.4).
WebSocket.sendable_close_code = check_close_code

--- Closes the connection with code (default 1000) and reason (at most 123
-- bytes of UTF-8). Before accept() this refuses the handshake: the client
-- gets HTTP 403 and no WebSocket is opened. Closing twice does nothing.
function WebSocket:close(code, reason)
  check_colon(self, "close", 2)
  if code == nil then code = 1000 end
  if type(code) ~= "number" or code ~= floor(code) then
    raise(WebSocketError, 2, format("close: the code must be an integer, got %s %s", type(code),
      type(code) == "string" and format("%q", code) or tostring(code)))
  end
  if not check_close_code(code) then
    raise(WebSocketError, 2,
      format("close: invalid close code %s (use 1000-1003, 1007-1014 or 3000-4999)", tostring(code)))
  end
  if reason ~= nil and type(reason) ~= "string" then raise(WebSocketError, 2, "close: reason must be a string") end
  if reason and #reason > 123 then raise(WebSocketError, 2, "close: reason is longer than 123 bytes") end
  if reason and not core.utf8_valid(reason) then raise(WebSocketError, 2, "close: reason is not valid UTF-8") end
  local st = self[STATE]
  if st == CONNECTING then
    self[STATE], refused[self] = CLOSED, true
    self.close_code, self.close_reason = code, reason
    if log.debugging() then
      log.debug("client %s: %s closed before accept() with %d %q: HTTP 403", tostring(self.client or "?"),
        self.path, code, reason or "")
    end
    reject(self[BOX], 403, nil, "Forbidden\n")
  elseif st == CONNECTED then
    self[STATE] = CLOSED
    self.close_code, self.close_reason = code, reason
    close(self[BOX], code, reason)
  end
end

--- Refuses the handshake with a real HTTP response (before accept only).
-- status: 4xx/5xx; headers: table; body: string.
function WebSocket:deny(status, body, headers)
  check_colon(self, "deny", 2)
  if self[STATE] ~= CONNECTING then
    local why = refused[self]
    raise(WebSocketError, 2, why == "left" and "deny() after the client left" or why and
      "deny(): the handshake was already refused (by close() or an earlier deny())" or
      "deny() is only possible before accept()")
  end
  if type(status) ~= "number" or status < 400 or status > 599 or status ~= floor(status) then
    raise(WebSocketError, 2, "deny: status must be an integer from 400 to 599, got " ..
      (type(status) == "number" and tostring(status) or type(status)))
  end
  if body ~= nil and type(body) ~= "string" and type(body) ~= "number" then
    raise(WebSocketError, 2, "deny: body must be a string, got " .. type(body))
  end
  local lines = header_lines(headers, 3, "deny")
  self[STATE], refused[self] = CLOSED, true
  if log.debugging() then
    log.debug("client %s: %s denied with HTTP %d", tostring(self.client or "?"), self.path, status)
  end
  reject(self[BOX], status, lines, body and tostring(body) or nil)
end

-- A receive that found no message (kind from core.take): marks a peer that
-- is gone and returns (the caller returns nil or raises the disconnect), or
-- raises. level as in error(), 1 being the caller of no_message.
local function no_message(self, kind, level)
  if kind == "closed" then return disconnected(self, close_info(self[BOX])) end
  if kind == "cancelled" then error(errors.CancelledError(), 0) end
  if kind == CANNOT_WAIT then waiting.cannot("receive", level + 1) end
  raise(WebSocketError, level + 1, "cannot receive before accept()")
end

-- receive() on a WebSocket that is not connected: raises before accept
-- (level 3 is the app's line: see receive). Once the peer is gone, the
-- core's take says "closed", which raises the disconnect.
local RECEIVE_NAMES = { text = "receive_text", binary = "receive_bytes", json = "receive_json" }

local function not_receiving(self, want)
  check_colon(self, RECEIVE_NAMES[want] or "receive", 3)
  if self[STATE] == CONNECTING then raise(WebSocketError, 3, "cannot receive before accept()") end
end

-- The timeout of receive's opts, and what to want: receive_json's
-- {mode = "text"} (or "binary", as in Nexios) wants that kind of message.
local function timeout_of(opts, want)
  local timeout = opts
  if type(opts) == "table" then
    if want == "json" then
      args.check(opts, RECEIVE_JSON_OPTIONS, "receive_json", 3)
      local mode = opts.mode
      if mode ~= nil then
        if mode ~= "text" and mode ~= "binary" then
          raise(WebSocketError, 3, format('receive_json: mode must be "text" or "binary", got %s',
            type(mode) == "string" and format("%q", mode) or type(mode)))
        end
        want = mode == "text" and "json text" or "json binary"
      end
    else
      args.check(opts, RECEIVE_OPTIONS, "receive", 3)
    end
    timeout = opts.timeout
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then -- (NaN too)
    raise(WebSocketError, 3, "receive: timeout must be a non-negative number of seconds")
  end
  return timeout, want
end

-- A received message as receive() returns it for want (see receive).
local function typed(data, kind, want)
  if want == "json text" or want == "json binary" then
    local mode = want == "json text" and "text" or "binary"
    if kind ~= mode then error(MessageTypeError(mode, kind, data), 0) end
    want = "json"
  end
  if want == "json" then
    local v, err = json.decode(data)
    if v == nil then error(JSONDecodeError(err, data), 0) end
    return v
  end
  if kind ~= want then error(MessageTypeError(want, kind, data), 0) end
  return data
end

-- The receive loop: a queued message straight from the core, else the core
-- waits (take only yields when nothing is queued) and, once woken, looks
-- again. want: "text" or "binary" to return that kind's data alone, "json"
-- for the message decoded, nil for data, kind. Reached by tail calls, so
-- that errors at level 2 name the app's line; and kept lean (few locals, the
-- rest in helpers) so that the core is called, and a handler waits, with
-- few stack slots in use.
local not_received

local function receive(self, opts, want)
  if type(self) ~= "table" or self[STATE] ~= CONNECTED then not_receiving(self, want) end
  if opts ~= nil then opts, want = timeout_of(opts, want) end
  local data, kind = take(self[BOX], opts)
  if data == nil then
    if kind == nil then return receive(self, opts, want) end -- woken up: look again
    return not_received(self, kind, opts)
  end
  if want == nil then return data, kind end
  return typed(data, kind, want)
end

-- (Tail-called by receive: level 2 is still the app's line.)
function not_received(self, kind, timeout)
  if kind == "timeout" then error(TimeoutError(timeout), 0) end
  error(no_message(self, kind, 2), 0)
end

--- Receives the next message: returns data, "text" | "binary".
-- opts: {timeout = seconds} or a number. Raises WebSocketDisconnect when the
-- peer leaves, TimeoutError when the timeout passes (connection still usable).
function WebSocket:receive(opts)
  return receive(self, opts, nil)
end

function WebSocket:receive_text(opts)
  return receive(self, opts, "text")
end

function WebSocket:receive_bytes(opts)
  return receive(self, opts, "binary")
end

--- Receives a message (text or binary) and decodes it as JSON.
function WebSocket:receive_json(opts)
  return receive(self, opts, "json")
end

-- A send the core did not simply take (its results after the first):
-- waits for our output to drain, or raises. level: 1 is the caller of sent.
local function sent(self, kind, code, reason, level)
  if kind == "drain" then
    -- Our own client reads slower than we send: wait until it catches up.
    local _, why = core.wait_drain(self[BOX])
    if why == CANNOT_WAIT then waiting.cannot("send", level + 1) end
    if why == "cancelled" then error(errors.CancelledError(), 0) end
    return
  end
  if kind == "cancelled" then error(errors.CancelledError(), 0) end
  if kind == "utf8" then
    raise(WebSocketError, level + 1, "send_text: the text is not valid UTF-8 (use send_bytes for binary data)")
  end
  -- "closed", or "closing": our close frame is out because the server is
  -- shutting down (the app's own close() is caught before): the peer is as
  -- good as gone.
  error(disconnected(self, code, reason), 0)
end

-- A send in a state that cannot send raises (a disconnected one goes on:
-- the core answers "closed"). For the connection's own handler that is a
-- mistake in its code; from any other task (a broadcast, a spawned sender)
-- a closed connection is one that is gone, as for a disconnected one.
local function check_sendable(self, what)
  check_colon(self, what, 3) -- (send_text and send_bytes find a dot call first)
  local st = self[STATE]
  local own = core.owned(self[BOX])
  if st == CONNECTING then
    raise(WebSocketError, 3, what .. (own and ": cannot send before accept()" or
      ": cannot send to another connection before its accept()"))
  end
  if st == CLOSED then
    if not own then error(disconnected(self, close_info(self[BOX])), 0) end
    raise(WebSocketError, 3, what .. ": cannot send after close()")
  end
end

-- Sends data as one message. Reached by tail calls, so errors at level 2
-- name the app's line, and the core is called with few slots in use.
local function send_message(self, data, binary, what)
  if self[STATE] ~= CONNECTED then check_sendable(self, what) end
  local _, kind, code, reason = send(self[BOX], data, binary)
  if kind == "wait" then -- (not sent: other sends of ours filled the output)
    sent(self, "drain", nil, nil, 2)
    return send_message(self, data, binary, what)
  end
  if kind ~= nil then sent(self, kind, code, reason, 2) end
end

-- A number as text: an integer in full (tostring stops at 14 digits), any
-- other in the fewest digits that read back as the same number.
local function number_text(n)
  if n == floor(n) and n > -2 ^ 63 and n < 2 ^ 63 then return format("%d", n) end
  for digits = 1, 17 do
    local s = format("%." .. digits .. "g", n)
    if tonumber(s) == n then return s end
  end
  return tostring(n) -- (nan, inf)
end

function WebSocket:send_text(s)
  if type(s) ~= "string" then
    check_colon(self, "send_text", 2)
    if type(s) ~= "number" then raise(WebSocketError, 2, "send_text: expected a string, got " .. type(s)) end
    s = number_text(s)
  end
  return send_message(self, s, false, "send_text")
end

function WebSocket:send_bytes(s)
  if type(s) ~= "string" then
    check_colon(self, "send_bytes", 2)
    raise(WebSocketError, 2, "send_bytes: expected a string, got " .. type(s))
  end
  return send_message(self, s, true, "send_bytes")
end

-- Whether opts (nil or a table: binary = true or mode = "binary") asks a
-- call at level 2 for a binary message.
local function binary_of(opts, what)
  if opts == nil then return false end
  args.check(opts, KIND_OPTIONS, what, 3)
  local binary = args.binary(opts, what, 3)
  return binary -- (not a tail call: level 3 is the app's line)
end

--- Sends v encoded as compact JSON, as a text message (opts.binary = true,
-- or opts.mode = "binary", for a binary one). See nexlua.json for empty
-- arrays and null.
function WebSocket:send_json(v, opts)
  local binary = binary_of(opts, "send_json")
  local s, err = json.encode(v)
  if not s then raise(WebSocketError, 2, "send_json: cannot encode the value as JSON: " .. tostring(err)) end
  return send_message(self, s, binary, "send_json")
end

-- The iterators: stateless (function, ws), so a loop allocates nothing.
-- Each step asks the core itself (no helper frame: a handler waiting in a
-- loop keeps a stack shallow enough for LuaJIT to shrink it, see the
-- README's memory notes), looks again after a wake, and ends the loop with
-- nil, not an error, when the peer leaves. Errors name the loop's line.
-- stepper(want) makes the step for want ("text", "binary", "json", or nil
-- for any kind).
local function stepper(want)
  local step
  step = function(self)
    local data, kind = take(self[BOX])
    if data == nil then
      if kind == nil then return step(self) end -- woken up: look again
      if kind == "closed" then gone(self) else no_message(self, kind, 2) end
      return nil -- (the loop ends: no error object is made)
    end
    if want == nil then return data, kind end
    return typed(data, kind, want)
  end
  return step
end
local step_any, step_text, step_bytes, step_json = stepper(nil), stepper("text"), stepper("binary"), stepper("json")

--- for data, kind in ws:iter() do ... end: every message with its type;
-- for msg in ws:iter_text() do ... end (iter_bytes, iter_json): one type.
-- Each ends quietly when the peer leaves.
for name, step in pairs({ iter = step_any, iter_text = step_text, iter_bytes = step_bytes, iter_json = step_json }) do
  WebSocket[name] = function(self, extra)
    check_colon(self, name, 2)
    if extra ~= nil then
      raise(WebSocketError, 2, name .. " takes no options (a wait with a timeout: receive" ..
        (name == "iter" and "" or "_" .. sub(name, 6)) .. "{timeout = seconds} in a loop)")
    end
    return step, self
  end
end

--- Topics (see nexlua.publish): subscribes this connection to topic until
-- ws:unsubscribe(topic) or the end of the connection. Returns true if it
-- was not subscribed yet. Raises WebSocketDisconnect once the peer is gone.
function WebSocket:subscribe(topic)
  check_colon(self, "subscribe", 2)
  topics.check(topic, "subscribe", 2)
  local st = self[STATE]
  if st == CONNECTING then raise(WebSocketError, 2, "cannot subscribe before accept()") end
  if st == CLOSED then raise(WebSocketError, 2, "cannot subscribe after close()") end
  local ok, _, code, reason = core.subscribe(self[BOX], topic)
  if ok == nil then error(disconnected(self, code, reason), 0) end
  return ok
end

--- Leaves topic; returns true if the connection was subscribed to it.
function WebSocket:unsubscribe(topic)
  check_colon(self, "unsubscribe", 2)
  topics.check(topic, "unsubscribe", 2)
  return core.unsubscribe(self[BOX], topic)
end

function WebSocket:is_subscribed(topic)
  check_colon(self, "is_subscribed", 2)
  topics.check(topic, "is_subscribed", 2)
  return core.subscribed(self[BOX], topic)
end

--- The topics this connection is subscribed to (in no particular order).
function WebSocket:topics()
  check_colon(self, "topics", 2)
  return core.topics(self[BOX])
end

--- Sends data to every subscriber of topic except this connection (which
-- need not be a subscriber itself). opts.binary: a binary message. Returns
-- how many connections it was queued to.
function WebSocket:publish(topic, data, opts)
  check_colon(self, "publish", 2)
  local n = topics.deliver(topic, data, binary_of(opts, "publish"), self[BOX], "publish", 2)
  return n
end

function WebSocket:publish_json(topic, v, opts)
  check_colon(self, "publish_json", 2)
  local binary = binary_of(opts, "publish_json")
  local s, err = json.encode(v)
  if not s then raise(WebSocketError, 2, "publish_json: cannot encode the value as JSON: " .. tostring(err)) end
  local n = topics.deliver(topic, s, binary, self[BOX], "publish_json", 2)
  return n
end

--- True while accepted and neither side has closed.
function WebSocket:is_connected()
  check_colon(self, "is_connected", 2)
  return self[STATE] == CONNECTED and conn_state(self[BOX]) == "open"
end

--- "connecting", "open", "closing" or "closed": the connection as the core sees it.
function WebSocket:connection_state()
  check_colon(self, "connection_state", 2)
  return conn_state(self[BOX])
end

--- Bytes queued for this connection and not yet written to the socket.
function WebSocket:buffered_amount()
  check_colon(self, "buffered_amount", 2)
  return core.buffered(self[BOX])
end

WebSocket.STATES = { CONNECTING = CONNECTING, CONNECTED = CONNECTED, CLOSED = CLOSED, DISCONNECTED = DISCONNECTED }

--- The address of a request's client (core.request's client_host and
-- client_port) as ws.client has it, or nil.
WebSocket.address = address

-- accept() runs once per connection, so compiling it gains nothing; and a
-- trace of it calls the core's accept through trace stitching, which grows
-- the handler's coroutine stack for good (an idle connection kept 94 bytes
-- more: spec/api/memory_spec.lua). It stays interpreted.
if jit then jit.off(WebSocket.accept) end

return WebSocket
