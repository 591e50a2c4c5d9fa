--- TestClient: drive an app in-process over a real loopback socket.
--
--   local TestClient = require "nexlua.testing"
--   local client = TestClient(app)
--   local ws = client:websocket_connect("/ws", {headers = {...}, subprotocols = {...}, query = {...}})
--   ws:send_text("Hello")
--   assert.equal("Echo: Hello", ws:receive_text())
--   ws:close()
--   client:close()
--
-- The app's handlers run in this process, on the real C core, while the
-- test waits: every receive steps the event loop until a message arrives or
-- its timeout (default 5 s) fails the test with a clear message.
local core = require "nexlua.core"
local errors = require "nexlua.errors"
local json = require "nexlua.json"
local args = require "nexlua.private.opts"
local serve = require "nexlua.private.serve"
local options = require "nexlua.private.options"
local multidict = require "nexlua.multidict"
local log = require "nexlua.log"

local setmetatable, getmetatable, type, tostring, pairs, ipairs, error, concat =
  setmetatable, getmetatable, type, tostring, pairs, ipairs, error, table.concat
local format, gsub, char, byte, find, sub = string.format, string.gsub, string.char, string.byte, string.find,
  string.sub
local is_app = require("nexlua.app").is_app
local sendable_close_code = require("nexlua.websocket").sendable_close_code
local hrtime, step = core.hrtime, core.step

local testing = {}

local DEFAULT_TIMEOUT = 5

local TestWebSocket, TestClient = {}, {} -- (the test side of one connection; the client)

-- The checks of the test side's arguments: a mistake in a test fails at
-- the test's line with what is wrong (level 1: the caller of the check's
-- caller), never as an error inside this module.
local function fail(level, fmt, ...) error("TestClient: " .. format(fmt, ...), level + 1) end

local function check_timeout(t, what, level)
  if t ~= nil and (type(t) ~= "number" or t ~= t or t < 0) then
    fail(level + 1, "%s: timeout must be a number of seconds, 0 or more (nil: the client's), got %s", what,
      tostring(t))
  end
end

local function check_ws(self, name, level)
  if getmetatable(self) ~= TestWebSocket then
    fail(level + 1, "call it with a colon, ws:%s(...), not ws.%s(...)", name, name)
  end
end

local function check_client(self, name, level)
  if getmetatable(self) ~= TestClient then
    fail(level + 1, "call it with a colon, client:%s(...), not client.%s(...)", name, name)
  end
end

--- Raised by websocket_connect when the app refuses the handshake:
-- err.status (403, 404, ...), err.body, err.headers.
local HandshakeRejected = {}
HandshakeRejected.__index = HandshakeRejected
HandshakeRejected.__tostring = function(e)
  return format("WebSocket handshake rejected with HTTP %d", e.status)
end
testing.HandshakeRejected = HandshakeRejected
function testing.is_rejected(e) return getmetatable(e) == HandshakeRejected end

-- Steps the loop until cond() is true (then true); false after timeout
-- seconds (default 5): it does not fail the test by itself.
local function wait_until(cond, timeout)
  if type(cond) ~= "function" then fail(2, "wait_until: cond must be a function, got %s", type(cond)) end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    fail(2, "wait_until: timeout must be a number of seconds, 0 or more (nil: 5), got %s", tostring(timeout))
  end
  local deadline = hrtime() + (timeout or DEFAULT_TIMEOUT)
  while not cond() do
    if hrtime() >= deadline then return false end
    step(0.005)
  end
  return true
end
testing.wait_until = wait_until

local function urlencode(s)
  return (gsub(tostring(s), "[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end

local function query_string(q)
  if q == nil then return "" end
  if type(q) == "string" then return q end
  local parts = {}
  for k, v in pairs(q) do
    if type(v) == "table" then
      for _, x in ipairs(v) do parts[#parts + 1] = urlencode(k) .. "=" .. urlencode(x) end
    else
      parts[#parts + 1] = urlencode(k) .. "=" .. urlencode(v)
    end
  end
  table.sort(parts)
  return concat(parts, "&")
end

-- The request's extra header lines (level: the test's line, for errors).
local function header_lines(headers, subprotocols, level)
  local out = {}
  if headers ~= nil and type(headers) ~= "table" then
    fail(level + 1, "websocket_connect: headers must be a table, got %s", type(headers))
  end
  for k, v in pairs(headers or {}) do
    if type(k) == "number" then
      if type(v) ~= "table" then fail(level + 1, "websocket_connect: headers[%d] must be a {name, value} pair", k) end
      k, v = v[1], v[2]
    end
    if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
      fail(level + 1, "websocket_connect: a header needs a string name and a string value, got %s = %s",
        type(k), type(v))
    end
    if find(k, "[%c :]") or find(tostring(v), "[\r\n%z]") then
      fail(level + 1, "websocket_connect: header %q has a name or value that cannot be sent", k)
    end
    out[#out + 1] = k .. ": " .. tostring(v) .. "\r\n"
  end
  if subprotocols ~= nil then
    if type(subprotocols) ~= "table" then
      fail(level + 1, "websocket_connect: subprotocols must be a list of strings, got %s", type(subprotocols))
    end
    for i, p in ipairs(subprotocols) do
      if type(p) ~= "string" then fail(level + 1, "websocket_connect: subprotocols[%d] is a %s", i, type(p)) end
    end
    if #subprotocols > 0 then
      out[#out + 1] = "Sec-WebSocket-Protocol: " .. concat(subprotocols, ", ") .. "\r\n"
    end
  end
  return concat(out)
end

-- The test side of one WebSocket connection.
TestWebSocket.__index = TestWebSocket

-- The test side checks what it sends as the server's side does: a text
-- message that is not UTF-8 would only make the server fail the connection.
function TestWebSocket:send_text(s)
  check_ws(self, "send_text", 2)
  if type(s) == "number" then s = tostring(s) end
  if type(s) ~= "string" then fail(2, "send_text: expected a string, got %s", type(s)) end
  if not core.utf8_valid(s) then fail(2, "send_text: the text is not valid UTF-8 (use send_bytes)") end
  self:_send(s, 1)
end

function TestWebSocket:send_bytes(s)
  check_ws(self, "send_bytes", 2)
  if type(s) ~= "string" then fail(2, "send_bytes: expected a string, got %s", type(s)) end
  self:_send(s, 2)
end

function TestWebSocket:send_json(v, opts)
  check_ws(self, "send_json", 2)
  local binary = false
  if opts ~= nil then
    args.check(opts, { "binary", "mode" }, "send_json", 2)
    binary = args.binary(opts, "send_json", 2)
  end
  local s, err = json.encode(v)
  if not s then fail(2, "send_json: cannot encode the value as JSON: %s", tostring(err)) end
  self:_send(s, binary and 2 or 1)
end

function TestWebSocket:_send(data, opcode)
  if not core.client_send(self._c, data, opcode) then
    error(format("TestClient: cannot send on %s: the connection is %s", self.path, self:state()), 3)
  end
end

--- Receives the next message: data, "text" | "binary". Raises
-- WebSocketDisconnect when the server closed, and fails with a clear message
-- after timeout seconds (default 5).
-- (level: where a timeout is reported, as in error(): the test's own line)
local function recv(self, timeout, level, name)
  check_ws(self, name or "receive", level)
  check_timeout(timeout, name or "receive", level)
  timeout = timeout or self._timeout
  local data, kind, code, reason
  local ok = wait_until(function()
    data, kind, code, reason = core.client_recv(self._c)
    return data ~= nil or kind ~= nil
  end, timeout)
  if not ok then
    error(format("TestClient: no message from the server on %s within %g s", self.path, timeout), level)
  end
  if data == nil then
    self.close_code, self.close_reason = code, reason
    error(errors.WebSocketDisconnect(code, reason), 0)
  end
  return data, kind
end

function TestWebSocket:receive(timeout)
  local data, kind = recv(self, timeout, 3) -- (not a tail call: level 3 is the test's line)
  return data, kind
end

function TestWebSocket:receive_text(timeout)
  local data, kind = recv(self, timeout, 3, "receive_text")
  if kind ~= "text" then error("TestClient: expected a text message, got a " .. kind .. " one", 2) end
  return data
end

function TestWebSocket:receive_bytes(timeout)
  local data, kind = recv(self, timeout, 3, "receive_bytes")
  if kind ~= "binary" then error("TestClient: expected a binary message, got a " .. kind .. " one", 2) end
  return data
end

function TestWebSocket:receive_json(timeout)
  local data = recv(self, timeout, 3, "receive_json")
  local v, err = json.decode(data)
  if v == nil then error("TestClient: the server sent invalid JSON: " .. tostring(err) .. ": " .. data, 2) end
  return v
end

--- "open", "closed", "failed": the connection as the client sees it.
function TestWebSocket:state()
  check_ws(self, "state", 2)
  return (core.client_state(self._c))
end

--- Sends a close frame and waits (timeout) for the server's answer.
-- Returns the close code and reason the server sent.
function TestWebSocket:close(code, reason, timeout)
  check_ws(self, "close", 2)
  if code ~= nil and (type(code) ~= "number" or code % 1 ~= 0 or not sendable_close_code(code)) then
    fail(2, "close: invalid close code %s (use 1000-1003, 1007-1014 or 3000-4999)", tostring(code))
  end
  if reason ~= nil and (type(reason) ~= "string" or #reason > 123 or not core.utf8_valid(reason)) then
    fail(2, "close: the reason must be a string of at most 123 bytes of UTF-8")
  end
  check_timeout(timeout, "close", 2)
  core.client_close(self._c, code or 1000, reason)
  return self:wait_closed(timeout)
end

--- Waits until the server has closed; returns its close code and reason
-- (1006 when the TCP connection dropped without a close frame). Messages
-- still arriving before the close are discarded.
function TestWebSocket:wait_closed(timeout)
  check_ws(self, "wait_closed", 2)
  check_timeout(timeout, "wait_closed", 2)
  timeout = timeout or self._timeout
  local code, reason
  local ok = wait_until(function()
    local data, kind, c, r = core.client_recv(self._c)
    if data == nil and kind == "closed" then
      code, reason = c, r
      return true
    end
    return false
  end, timeout)
  if not ok then error(format("TestClient: %s was not closed within %g s", self.path, timeout), 2) end
  self.close_code, self.close_reason = code, reason
  return code, reason
end

--- Drops the TCP connection without a close frame (the app sees 1006).
function TestWebSocket:abort()
  check_ws(self, "abort", 2)
  core.client_abort(self._c)
end

TestClient.__index = TestClient

--- Starts the app (startup hooks, a listener on 127.0.0.1:0) if not started.
function TestClient:start()
  check_client(self, "start", 2)
  if self.listener then return self end
  local done, failure = false, nil
  core.spawn(function()
    local ok, err = serve.lifecycle.start(self.app, "startup")
    done, failure = true, not ok and err or nil
  end)
  if not wait_until(function() return done end, self.timeout) then
    error("TestClient: the app's startup hooks did not finish within " .. self.timeout .. " s", 2)
  end
  if failure then error("TestClient: a startup hook failed: " .. tostring(failure), 2) end
  local opts = { host = "127.0.0.1", port = 0 }
  for k, v in pairs(self.options) do opts[k] = v end
  local listener, err = serve.listen(self.app, opts)
  if not listener then error("TestClient: " .. tostring(err), 2) end
  self.listener = listener
  self.port = listener:port()
  return self
end

local CONNECT_OPTIONS = { "headers", "subprotocols", "query", "timeout" }

--- Opens a WebSocket to path. opts: headers (table), subprotocols (list),
-- query (table or string), timeout (seconds, for this connection's waits).
-- Raises a HandshakeRejected error (err.status) when the app refuses.
function TestClient:websocket_connect(path, opts)
  check_client(self, "websocket_connect", 2)
  if type(path) ~= "string" or sub(path, 1, 1) ~= "/" then
    fail(2, "websocket_connect: the path must be a string starting with '/', got %s",
      type(path) == "string" and format("%q", path) or type(path))
  end
  opts = opts or {}
  args.check(opts, CONNECT_OPTIONS, "websocket_connect", 2)
  check_timeout(opts.timeout, "websocket_connect", 2)
  if opts.query ~= nil and type(opts.query) ~= "table" and type(opts.query) ~= "string" then
    fail(2, "websocket_connect: query must be a table or a string, got %s", type(opts.query))
  end
  self:start()
  local target = path
  local qs = query_string(opts.query)
  if qs ~= "" then target = target .. (target:find("?", 1, true) and "&" or "?") .. qs end
  local c = core.client_connect("127.0.0.1", self.port, target, header_lines(opts.headers, opts.subprotocols, 2))
  local timeout = opts.timeout or self.timeout
  local st, err, status, body, flat
  local settled = wait_until(function()
    st, err, status, body, flat = core.client_state(c)
    return st ~= "connecting" and st ~= "handshake"
  end, timeout)
  if not settled then error(format("TestClient: no handshake answer for %s within %g s", path, timeout), 2) end
  -- (every value of a repeated header is kept: headers:get_all(name))
  local headers = multidict.Headers(flat)
  if st == "rejected" or (st == "closed" and status ~= 101) then
    error(setmetatable({ status = status, body = body, headers = headers }, HandshakeRejected), 2)
  elseif st ~= "open" and st ~= "closed" then
    error("TestClient: connecting to " .. path .. " failed: " .. tostring(err), 2)
  end
  local ws = setmetatable({
    _c = c, _timeout = timeout, path = path, headers = headers,
    accepted_subprotocol = headers["sec-websocket-protocol"],
  }, TestWebSocket)
  self.sockets[#self.sockets + 1] = ws
  return ws
end

--- Closes every connection, waits (up to the client's timeout) for their
-- handlers to return, as a server's shutdown does, stops listening and runs
-- the shutdown hooks. (A handler still running after close() could publish
-- to a topic a later test's connections subscribe to: topics belong to the
-- process.)
function TestClient:close()
  check_client(self, "close", 2)
  for _, ws in ipairs(self.sockets) do
    if ws:state() == "open" then core.client_close(ws._c, 1000) end
  end
  wait_until(function()
    for _, ws in ipairs(self.sockets) do
      if ws:state() == "open" then return false end
    end
    return true
  end, 1)
  self.sockets = {}
  if self.listener then
    local app = self.app
    if not wait_until(function() return (app._live or 0) == 0 end, self.timeout) then
      log.warn("TestClient:close(): %d handler(s) still running after %g s (not returning when " ..
        "their connection closes?): they go on, and may reach the next test's connections",
        app._live, self.timeout)
    end
    self.listener:close()
    self.listener = nil
    local done = false
    core.spawn(function()
      serve.lifecycle.stop(self.app, "shutdown", "shutdown")
      done = true
    end)
    wait_until(function() return done end, self.timeout)
  end
end

--- Runs the loop for seconds (lets the app's tasks progress):
-- client:run_for(0.1) (which starts the client first, as websocket_connect
-- does: startup hooks, listener), or testing.run_for(0.1).
local function run_for(a, b)
  local seconds = getmetatable(a) == TestClient and b or a
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    fail(2, "run_for: seconds must be a number, 0 or more, got %s", tostring(seconds))
  end
  if getmetatable(a) == TestClient then a:start() end
  wait_until(function() return false end, seconds)
end
TestClient.run_for = run_for
testing.run_for = run_for

local function new(app, opts)
  if not is_app(app) then
    fail(2, "expected the app (a nexlua.App(); does the app file end with `return app`?), got %s",
      type(app) == "table" and "a table that is not an App" or type(app))
  end
  if opts ~= nil and type(opts) ~= "table" then fail(2, "options must be a table, got %s", type(opts)) end
  opts = opts or {}
  local listen = {}
  for k, v in pairs(opts) do
    if k == "timeout" then
      if type(v) ~= "number" or v ~= v or v <= 0 then
        error("TestClient: timeout must be a number of seconds above 0, got " .. tostring(v), 2)
      end
    else
      local _, err = options.check(k, v)
      if err and not options.known(k) then
        err = format("unknown option %s (it takes %s)", tostring(k), options.names({ "timeout" }))
      end
      if err then error("TestClient: " .. err, 2) end
      listen[k] = v
    end
  end
  return setmetatable({ app = app, options = listen, timeout = opts.timeout or DEFAULT_TIMEOUT, sockets = {} },
    TestClient)
end

testing.TestClient = new
testing.TestWebSocket = TestWebSocket
local _ = char
return setmetatable(testing, { __call = function(_, app, opts) return new(app, opts) end })
