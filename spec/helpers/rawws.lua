-- Raw RFC 6455 client for conformance specs.
--
-- Deliberately independent of the nexlua Lua modules: it speaks the wire format
-- itself over plain LuaSocket TCP, so it can produce malformed frames and observe
-- exactly what the server writes back.
--
--   local rawws = require "helpers.rawws"
--   local c = rawws.connect(port, "/ws")          -- c.status, c.headers, c.body
--   c:send_frame{opcode = 1, payload = "hi", fin = true}
--   local f = c:recv_frame()                       -- {opcode=, fin=, payload=, ...}
--
-- Every blocking operation has a timeout (default 5 s).  Functions that return
-- frames report nil, "timeout"/"closed", detail; higher level helpers raise an
-- error that says what was being awaited.

local socket = require "socket"
local clock = require "helpers.clock"
local bit = require "bit"

local bxor, band, bor, rshift, lshift, rol =
  bit.bxor, bit.band, bit.bor, bit.rshift, bit.lshift, bit.rol
local tobit = bit.tobit
local schar, sbyte, ssub, srep = string.char, string.byte, string.sub, string.rep
local concat = table.concat
local unpack = unpack or table.unpack -- luacheck: ignore 143
local floor = math.floor

local M = {}

M.DEFAULT_TIMEOUT = 5
M.GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

M.OP = {
  CONTINUATION = 0x0, TEXT = 0x1, BINARY = 0x2,
  CLOSE = 0x8, PING = 0x9, PONG = 0xA,
}
local OP = M.OP

local OPNAME = { [0] = "continuation", [1] = "text", [2] = "binary",
  [8] = "close", [9] = "ping", [10] = "pong" }
local function opname(op)
  return OPNAME[op] or string.format("opcode 0x%X", op or -1)
end
M.opname = opname

---------------------------------------------------------------------------
-- SHA-1 / base64 (pure Lua, for Sec-WebSocket-Accept)
---------------------------------------------------------------------------

local function u32_be(n)
  return schar(band(rshift(n, 24), 255), band(rshift(n, 16), 255),
               band(rshift(n, 8), 255), band(n, 255))
end

function M.sha1(msg)
  local h0, h1, h2, h3, h4 =
    tobit(0x67452301), tobit(0xEFCDAB89), tobit(0x98BADCFE),
    tobit(0x10325476), tobit(0xC3D2E1F0)
  local ml = #msg
  local padlen = (55 - ml) % 64
  local bits = ml * 8
  local hi = floor(bits / 4294967296)
  local lo = bits % 4294967296
  msg = msg .. "\128" .. srep("\0", padlen) .. u32_be(hi) .. u32_be(lo)
  local w = {}
  for chunk = 1, #msg, 64 do
    for i = 0, 15 do
      local a, b, c, d = sbyte(msg, chunk + i * 4, chunk + i * 4 + 3)
      w[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for i = 16, 79 do
      w[i] = rol(bxor(w[i - 3], w[i - 8], w[i - 14], w[i - 16]), 1)
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then
        f = bor(band(b, c), band(bit.bnot(b), d)); k = 0x5A827999
      elseif i < 40 then
        f = bxor(b, c, d); k = 0x6ED9EBA1
      elseif i < 60 then
        f = bor(band(b, c), band(b, d), band(c, d)); k = tobit(0x8F1BBCDC)
      else
        f = bxor(b, c, d); k = tobit(0xCA62C1D6)
      end
      local temp = tobit(rol(a, 5) + f + e + k + w[i])
      e = d; d = c; c = rol(b, 30); b = a; a = temp
    end
    h0 = tobit(h0 + a); h1 = tobit(h1 + b); h2 = tobit(h2 + c)
    h3 = tobit(h3 + d); h4 = tobit(h4 + e)
  end
  return u32_be(h0) .. u32_be(h1) .. u32_be(h2) .. u32_be(h3) .. u32_be(h4)
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.b64encode(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = sbyte(s, i, i + 2)
    local n = lshift(a, 16) + lshift(b or 0, 8) + (c or 0)
    local c1 = band(rshift(n, 18), 63) + 1
    local c2 = band(rshift(n, 12), 63) + 1
    local c3 = band(rshift(n, 6), 63) + 1
    local c4 = band(n, 63) + 1
    out[#out + 1] = ssub(B64, c1, c1) .. ssub(B64, c2, c2) ..
      (b and ssub(B64, c3, c3) or "=") .. (c and ssub(B64, c4, c4) or "=")
  end
  return concat(out)
end

function M.accept_key(key)
  return M.b64encode(M.sha1(key .. M.GUID))
end

---------------------------------------------------------------------------
-- Random bytes (not cryptographic; the spec only needs them to vary)
---------------------------------------------------------------------------

local seeded = false
local function rand_bytes(n)
  if not seeded then
    local seed = tonumber(os.getenv("RAWWS_SEED") or "") or
      (os.time() + floor((clock() % 1) * 1e6))
    math.randomseed(seed)
    seeded = true
  end
  local t = {}
  for i = 1, n do t[i] = math.random(0, 255) end
  return schar(unpack(t))
end
M.random_bytes = rand_bytes

function M.new_key()
  return M.b64encode(rand_bytes(16))
end

---------------------------------------------------------------------------
-- Masking
---------------------------------------------------------------------------

local MASK_CHUNK = 4096 -- multiple of 4, below unpack()'s limit

-- XOR `data` with the 4-byte `key`, cycling from the first key byte.
function M.mask(data, key)
  local n = #data
  if n == 0 then return data end
  local k1, k2, k3, k4 = sbyte(key, 1, 4)
  local out = {}
  local b = {}
  for start = 1, n, MASK_CHUNK do
    local stop = start + MASK_CHUNK - 1
    if stop > n then stop = n end
    local len = stop - start + 1
    -- refill b with the bytes of the slice
    for i = 1, len do b[i] = sbyte(data, start + i - 1) end
    local i = 1
    while i + 3 <= len do
      b[i] = bxor(b[i], k1); b[i + 1] = bxor(b[i + 1], k2)
      b[i + 2] = bxor(b[i + 2], k3); b[i + 3] = bxor(b[i + 3], k4)
      i = i + 4
    end
    if i <= len then b[i] = bxor(b[i], k1) end
    if i + 1 <= len then b[i + 1] = bxor(b[i + 1], k2) end
    if i + 2 <= len then b[i + 2] = bxor(b[i + 2], k3) end
    out[#out + 1] = schar(unpack(b, 1, len))
  end
  return concat(out)
end

---------------------------------------------------------------------------
-- Frame building
---------------------------------------------------------------------------

local function be_bytes(n, width)
  local t = {}
  for i = width, 1, -1 do
    t[i] = n % 256
    n = floor(n / 256)
  end
  return schar(unpack(t))
end
M.be_bytes = be_bytes

-- Build the bytes of one frame.  Options:
--   opcode (default 1), payload (default ""), fin (default true),
--   rsv1/rsv2/rsv3 (booleans), mask (default true), mask_key (4 bytes),
--   length_override (number written as payload length instead of #payload),
--   length_form ("7" | "16" | "64": force the length encoding, e.g. non-minimal),
--   length_raw (raw extended-length bytes: 2 bytes -> code 126, 8 -> code 127;
--               use for lengths not representable as a Lua number, e.g. top bit set),
--   header_only (only header and mask key, no payload),
--   first_byte / second_byte (raw override of those bytes).
function M.build_frame(o)
  o = o or {}
  local opcode = o.opcode or OP.TEXT
  local payload = o.payload or ""
  local fin = o.fin ~= false
  local mask = o.mask ~= false
  local b0 = opcode % 16
  if fin then b0 = b0 + 0x80 end
  if o.rsv1 then b0 = b0 + 0x40 end
  if o.rsv2 then b0 = b0 + 0x20 end
  if o.rsv3 then b0 = b0 + 0x10 end
  if o.first_byte then b0 = o.first_byte end

  local len = o.length_override or #payload
  local code, ext
  if o.length_raw then
    if #o.length_raw == 2 then code = 126
    elseif #o.length_raw == 8 then code = 127
    else error("length_raw must be 2 or 8 bytes", 2) end
    ext = o.length_raw
  else
    local form = o.length_form
    if not form then
      if len <= 125 then form = "7" elseif len <= 65535 then form = "16" else form = "64" end
    end
    if form == "7" then
      if len > 127 then error("length " .. len .. " does not fit 7 bits", 2) end
      code, ext = len, ""
    elseif form == "16" then
      if len > 65535 then error("length " .. len .. " does not fit 16 bits", 2) end
      code, ext = 126, be_bytes(len, 2)
    elseif form == "64" then
      code, ext = 127, be_bytes(len, 8)
    else
      error("bad length_form " .. tostring(form), 2)
    end
  end
  local b1 = code + (mask and 0x80 or 0)
  if o.second_byte then b1 = o.second_byte end

  local parts = { schar(b0, b1), ext }
  if mask then
    local key = o.mask_key or rand_bytes(4)
    assert(#key == 4, "mask_key must be 4 bytes")
    parts[#parts + 1] = key
    if not o.header_only then parts[#parts + 1] = M.mask(payload, key) end
  elseif not o.header_only then
    parts[#parts + 1] = payload
  end
  return concat(parts)
end

function M.close_payload(code, reason)
  if code == nil then return reason or "" end
  return be_bytes(code, 2) .. (reason or "")
end

---------------------------------------------------------------------------
-- Client object
---------------------------------------------------------------------------

local Client = {}
Client.__index = Client
M.Client = Client

local function now() return clock() end

local function new_tcp(port, host, timeout)
  local sock = assert(socket.tcp())
  sock:settimeout(timeout or M.DEFAULT_TIMEOUT)
  local ok, err = sock:connect(host or "127.0.0.1", port)
  if not ok then
    sock:close()
    error(string.format("connect to %s:%d failed: %s", host or "127.0.0.1", port, tostring(err)), 3)
  end
  sock:setoption("tcp-nodelay", true)
  return sock
end

local function wrap(sock, port)
  return setmetatable({
    sock = sock, port = port, buf = "", eof = false, eof_err = nil,
    timeout = M.DEFAULT_TIMEOUT, sent_close = false,
  }, Client)
end

-- Low-level: wait until at least one more byte has been appended to self.buf.
-- Returns true, or nil, "timeout"|"closed".
function Client:_fill(deadline)
  if self.eof then return nil, "closed" end
  while true do
    local remaining = deadline - now()
    if remaining <= 0 then return nil, "timeout" end
    if not self.sock:dirty() then
      local r = socket.select({ self.sock }, nil, remaining)
      if not r or #r == 0 then return nil, "timeout" end
    end
    self.sock:settimeout(0)
    local data, err, partial = self.sock:receive(1048576)
    local got = data or partial
    if got and #got > 0 then
      self.buf = self.buf .. got
      if err and err ~= "timeout" then self.eof = true; self.eof_err = err end
      return true
    end
    if err and err ~= "timeout" then
      self.eof = true; self.eof_err = err
      return nil, "closed"
    end
    -- spurious wakeup: loop
  end
end

-- Ensure #self.buf >= n (collects chunks in a table to stay linear).
function Client:_need(n, deadline)
  if #self.buf >= n then return true end
  if self.eof then return nil, "closed" end
  local parts, have = { self.buf }, #self.buf
  self.buf = ""
  local ok, err
  while have < n do
    ok, err = self:_fill(deadline)
    if not ok then break end
    parts[#parts + 1] = self.buf
    have = have + #self.buf
    self.buf = ""
  end
  self.buf = concat(parts)
  if have >= n then return true end
  return nil, err
end

function Client:_take(n)
  local s = ssub(self.buf, 1, n)
  self.buf = ssub(self.buf, n + 1)
  return s
end

-- Read a line terminated by CRLF (returned without it).
function Client:_line(deadline, what)
  while true do
    local i = self.buf:find("\r\n", 1, true)
    if i then
      local line = ssub(self.buf, 1, i - 1)
      self.buf = ssub(self.buf, i + 2)
      return line
    end
    local ok, err = self:_fill(deadline)
    if not ok then
      return nil, err, string.format("%s while waiting for %s (buffered %q)", err, what, self.buf)
    end
  end
end

-- Parse an HTTP response head + body from the client's stream.
-- body_mode: "handshake" -> for 101 no body; otherwise per Content-Length, or
-- until close when there is none.
function Client:_read_http_response(deadline, body_mode)
  local status_line, _, detail = self:_line(deadline, "HTTP status line")
  if not status_line then error(detail, 3) end
  local version, status, reason = status_line:match("^(HTTP/%d%.%d) (%d%d%d) ?(.*)$")
  if not status then
    error("malformed HTTP status line: " .. string.format("%q", status_line), 3)
  end
  self.http_version = version
  self.status = tonumber(status)
  self.reason = reason
  self.status_line = status_line
  self.headers = {}
  self.header_list = {}
  while true do
    local line, _, detail2 = self:_line(deadline, "HTTP response headers")
    if not line then error(detail2, 3) end
    if line == "" then break end
    local name, value = line:match("^([^:%s]+):%s*(.-)%s*$")
    if not name then error("malformed HTTP header line: " .. string.format("%q", line), 3) end
    name = name:lower()
    self.header_list[#self.header_list + 1] = { name, value }
    if self.headers[name] then
      self.headers[name] = self.headers[name] .. ", " .. value
    else
      self.headers[name] = value
    end
  end
  self.body = ""
  if self.status == 101 or (self.status >= 100 and self.status < 200)
     or self.status == 204 or self.status == 304 then
    return
  end
  local cl = self.headers["content-length"]
  if cl then
    local n = tonumber(cl)
    if not n then error("bad Content-Length " .. cl, 3) end
    local ok, err3 = self:_need(n, deadline)
    if not ok then
      error(string.format("%s while waiting for a %d-byte HTTP body (got %d)",
        err3, n, #self.buf), 3)
    end
    self.body = self:_take(n)
  elseif body_mode == "until_close" then
    while true do
      local ok, err3 = self:_fill(deadline)
      if not ok then
        if err3 == "timeout" then
          error("timeout while waiting for the server to close after an HTTP response " ..
            "without Content-Length", 3)
        end
        break
      end
    end
    self.body = self.buf
    self.buf = ""
  end
end

local DEFAULT_HEADER_ORDER = {
  "Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
}

-- Build the opening handshake request text.
--   opts.key, opts.headers: { Name = value | false } or list of {name, value};
--   a false value removes a default header; opts.method, opts.version.
function M.build_request(port, path, opts)
  opts = opts or {}
  local key = opts.key or M.new_key()
  local defaults = {
    Host = "127.0.0.1:" .. tostring(port),
    Upgrade = "websocket",
    Connection = "Upgrade",
    ["Sec-WebSocket-Key"] = key,
    ["Sec-WebSocket-Version"] = "13",
  }
  local extra = {}
  local hdrs = opts.headers or {}
  if #hdrs > 0 then
    for _, kv in ipairs(hdrs) do extra[#extra + 1] = kv end
  else
    -- map form: overrides defaults (case-insensitive match)
    local names = {}
    for k in pairs(hdrs) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do
      local v = hdrs[k]
      local replaced = false
      for dk in pairs(defaults) do
        if dk:lower() == k:lower() then
          defaults[dk] = v
          replaced = true
        end
      end
      if not replaced and v ~= false then extra[#extra + 1] = { k, v } end
    end
  end
  local lines = {
    string.format("%s %s %s", opts.method or "GET", path or "/", opts.version or "HTTP/1.1"),
  }
  for _, name in ipairs(DEFAULT_HEADER_ORDER) do
    local v = defaults[name]
    if v then lines[#lines + 1] = name .. ": " .. v end
  end
  for _, kv in ipairs(extra) do lines[#lines + 1] = kv[1] .. ": " .. kv[2] end
  return concat(lines, "\r\n") .. "\r\n\r\n", key
end

-- Open a WebSocket connection.  Returns the client even when the server did not
-- answer 101 (check c.status).  opts: headers, key, raw_request, extra (bytes
-- appended to the request in the same send()), timeout, host.
function M.connect(port, path, opts)
  opts = opts or {}
  local timeout = opts.timeout or M.DEFAULT_TIMEOUT
  local sock = new_tcp(port, opts.host, timeout)
  local c = wrap(sock, port)
  local req, key
  if opts.raw_request then
    req, key = opts.raw_request, opts.key
  else
    req, key = M.build_request(port, path or "/ws", opts)
  end
  c.key = key
  c.expected_accept = key and M.accept_key(key) or nil
  c.request = req
  c:send_raw(req .. (opts.extra or ""))
  local deadline = now() + timeout
  c:_read_http_response(deadline, "handshake")
  if c.status ~= 101 then
    -- body may be delimited by close instead of Content-Length
    if not c.headers["content-length"] then
      while c:_fill(deadline) do end
      c.body = c.buf
      c.buf = ""
    end
  end
  return c
end

-- Open a plain TCP connection wrapped as a client, without any handshake
-- (for slow/partial handshake tests).  Use c:send_raw, c:wait_tcp_close,
-- c:read_http_response(timeout).
function M.open_tcp(port, opts)
  opts = opts or {}
  local c = wrap(new_tcp(port, opts.host, opts.timeout), port)
  return c
end

-- Read an HTTP response (status line, headers, body per Content-Length) from a
-- client opened with open_tcp.  Returns status, headers, body.
function Client:read_http_response(timeout)
  self:_read_http_response(now() + (timeout or self.timeout), "handshake")
  return self.status, self.headers, self.body
end

-- Send a raw HTTP request and read the full response.
-- Returns status, headers (lowercased names), body, client (socket still open if
-- the server kept it).  opts.timeout, opts.pieces (send request in n-byte pieces).
function M.http(port, request_text, opts)
  opts = opts or {}
  local timeout = opts.timeout or M.DEFAULT_TIMEOUT
  local sock = new_tcp(port, opts.host, timeout)
  local c = wrap(sock, port)
  c:send_raw(request_text, opts.pieces)
  local deadline = now() + timeout
  c:_read_http_response(deadline, "until_close")
  return c.status, c.headers, c.body, c
end

function Client:send_raw(bytes, piece_size, delay)
  local sock = self.sock
  sock:settimeout(self.timeout)
  if not piece_size or piece_size >= #bytes then
    local i = 1
    while i <= #bytes do
      local last, err, partial = sock:send(bytes, i)
      if not last then
        if err == "timeout" and partial and partial >= i then
          i = partial + 1
        else
          return nil, err
        end
      else
        i = last + 1
      end
    end
    return true
  end
  for i = 1, #bytes, piece_size do
    local piece = ssub(bytes, i, i + piece_size - 1)
    local ok, err = self:send_raw(piece)
    if not ok then return nil, err end
    if delay then socket.sleep(delay) end
  end
  return true
end

-- Build and send one frame (see M.build_frame for options).
-- Extra options: pieces = n (write in n-byte send() calls), delay (seconds
-- between pieces).  Returns the bytes, and true or nil, err from the send.
-- A failed send does not raise: after a violation the server may legitimately
-- have closed the connection already, and the test asserts on what it reads
-- (the error is kept in c.send_error).
function Client:send_frame(o)
  local bytes = M.build_frame(o)
  local ok, err = self:send_raw(bytes, o and o.pieces, o and o.delay)
  if not ok then self.send_error = err end
  if o and o.opcode == OP.CLOSE then self.sent_close = true end
  return bytes, ok, err
end

function Client:send_text(s, o)
  o = o or {}; o.opcode = OP.TEXT; o.payload = s
  return self:send_frame(o)
end

function Client:send_binary(s, o)
  o = o or {}; o.opcode = OP.BINARY; o.payload = s
  return self:send_frame(o)
end

function Client:ping(p, o)
  o = o or {}; o.opcode = OP.PING; o.payload = p or ""
  return self:send_frame(o)
end

function Client:pong(p, o)
  o = o or {}; o.opcode = OP.PONG; o.payload = p or ""
  return self:send_frame(o)
end

function Client:close(code, reason, o)
  o = o or {}; o.opcode = OP.CLOSE; o.payload = M.close_payload(code, reason)
  return self:send_frame(o)
end

-- Receive one frame.  Returns a table
--   { opcode, fin, rsv1, rsv2, rsv3, masked, mask_key, payload, length,
--     length_code, header_len, minimal_length }
-- or nil, "timeout"|"closed", detail.
function Client:recv_frame(timeout)
  local deadline = now() + (timeout or self.timeout)
  local ok, err = self:_need(2, deadline)
  if not ok then
    return nil, err, string.format("%s while waiting for a frame header (%d bytes buffered)",
      err, #self.buf)
  end
  local b0, b1 = sbyte(self.buf, 1, 2)
  local code = band(b1, 0x7F)
  local masked = band(b1, 0x80) ~= 0
  local hlen = 2
  if code == 126 then hlen = 4 elseif code == 127 then hlen = 10 end
  if masked then hlen = hlen + 4 end
  ok, err = self:_need(hlen, deadline)
  if not ok then
    return nil, err, string.format("%s while waiting for the rest of a frame header", err)
  end
  local len
  if code < 126 then
    len = code
  elseif code == 126 then
    local x, y = sbyte(self.buf, 3, 4)
    len = x * 256 + y
  else
    len = 0
    for i = 3, 10 do len = len * 256 + sbyte(self.buf, i) end
  end
  ok, err = self:_need(hlen + len, deadline)
  if not ok then
    return nil, err, string.format("%s while waiting for a %d-byte frame payload (%d buffered)",
      err, len, #self.buf - hlen)
  end
  local header = self:_take(hlen)
  local payload = self:_take(len)
  local mask_key
  if masked then
    mask_key = ssub(header, hlen - 3, hlen)
    payload = M.mask(payload, mask_key)
  end
  local minimal
  if code < 126 then minimal = true
  elseif code == 126 then minimal = len > 125
  else minimal = len > 65535 end
  return {
    opcode = band(b0, 0x0F),
    fin = band(b0, 0x80) ~= 0,
    rsv1 = band(b0, 0x40) ~= 0,
    rsv2 = band(b0, 0x20) ~= 0,
    rsv3 = band(b0, 0x10) ~= 0,
    masked = masked,
    mask_key = mask_key,
    payload = payload,
    length = len,
    length_code = code,
    header_len = hlen,
    minimal_length = minimal,
  }
end

local function describe_frame(f)
  local p = f.payload
  if #p > 40 then p = ssub(p, 1, 40) .. "..." end
  return string.format("%s frame (fin=%s rsv=%d%d%d masked=%s len=%d payload=%q)",
    opname(f.opcode), tostring(f.fin), f.rsv1 and 1 or 0, f.rsv2 and 1 or 0, f.rsv3 and 1 or 0,
    tostring(f.masked), f.length, p)
end
M.describe_frame = describe_frame

-- Errors if a server frame is not well-formed at the frame level.
local function check_server_frame(f, level)
  if f.masked then error("server sent a masked " .. describe_frame(f), level + 1) end
  if f.rsv1 or f.rsv2 or f.rsv3 then
    error("server set RSV bits: " .. describe_frame(f), level + 1)
  end
  if not f.minimal_length then
    error("server used a non-minimal length encoding: " .. describe_frame(f), level + 1)
  end
  if f.opcode >= 8 then
    if not f.fin then
      error("server sent a fragmented control frame: " .. describe_frame(f), level + 1)
    end
    if f.length > 125 then
      error("server sent a control frame > 125 bytes: " .. describe_frame(f), level + 1)
    end
  end
  if not OPNAME[f.opcode] then
    error("server sent a reserved opcode: " .. describe_frame(f), level + 1)
  end
end
M.check_server_frame = check_server_frame

-- Receive one complete data message (text/binary), reassembling fragments.
-- Pongs are skipped (collected in c.pongs); a close frame or timeout raises.
-- Returns payload, opcode, frames (number of frames the message came in).
function Client:recv_message(timeout)
  local deadline = now() + (timeout or self.timeout)
  local parts, opcode, nframes = {}, nil, 0
  while true do
    local f, _, detail = self:recv_frame(math.max(0, deadline - now()))
    if not f then
      error(string.format("%s while waiting for a data message%s", detail,
        opcode and string.format(" (got %d fragment(s) so far)", nframes) or ""), 2)
    end
    check_server_frame(f, 2)
    if f.opcode == OP.PONG then
      self.pongs = self.pongs or {}
      self.pongs[#self.pongs + 1] = f.payload
    elseif f.opcode == OP.PING then
      self.pings = self.pings or {}
      self.pings[#self.pings + 1] = f.payload
    elseif f.opcode == OP.CLOSE then
      local code = #f.payload >= 2 and (sbyte(f.payload, 1) * 256 + sbyte(f.payload, 2)) or nil
      error(string.format("expected a data message but the server sent close (code %s, reason %q)",
        tostring(code), ssub(f.payload, 3)), 2)
    elseif f.opcode == OP.CONTINUATION then
      if not opcode then
        error("server sent a continuation frame without a message in progress", 2)
      end
      parts[#parts + 1] = f.payload
      nframes = nframes + 1
      if f.fin then return concat(parts), opcode, nframes end
    else
      if opcode then
        error("server started a new message inside a fragmented one: " .. describe_frame(f), 2)
      end
      opcode = f.opcode
      parts[1] = f.payload
      nframes = 1
      if f.fin then return f.payload, opcode, 1 end
    end
  end
end

local function utf8_valid(s)
  local i, n = 1, #s
  while i <= n do
    local c = sbyte(s, i)
    local need, min
    if c < 0x80 then i = i + 1; need = 0
    elseif c >= 0xC2 and c <= 0xDF then need, min = 1, 0x80
    elseif c >= 0xE0 and c <= 0xEF then need, min = 2, 0x800
    elseif c >= 0xF0 and c <= 0xF4 then need, min = 3, 0x10000
    else return false end
    if need > 0 then
      if i + need > n then return false end
      local cp = band(c, rshift(0x7F, need + 1))
      for j = 1, need do
        local cc = sbyte(s, i + j)
        if band(cc, 0xC0) ~= 0x80 then return false end
        cp = cp * 64 + band(cc, 0x3F)
      end
      if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return false end
      i = i + need + 1
    end
  end
  return true
end
M.utf8_valid = utf8_valid

-- Parse and validate a close frame from the server.  Returns code (nil for an
-- empty payload), reason.
local function parse_close(f, level)
  check_server_frame(f, level + 1)
  local p = f.payload
  if #p == 1 then error("server sent a close frame with a 1-byte payload", level + 1) end
  if #p == 0 then return nil, "" end
  local code = sbyte(p, 1) * 256 + sbyte(p, 2)
  local reason = ssub(p, 3)
  if not utf8_valid(reason) then
    error(string.format("server close reason is not valid UTF-8: %q", reason), level + 1)
  end
  return code, reason
end

-- Wait for the server's close frame, skipping any data/ping/pong frames
-- (collected in c.skipped).  Asserts the frame is well-formed and unmasked.
-- Returns code (nil when the payload was empty), reason.
function Client:expect_close(timeout)
  local deadline = now() + (timeout or self.timeout)
  self.skipped = self.skipped or {}
  while true do
    local f, err, detail = self:recv_frame(math.max(0, deadline - now()))
    if not f then
      if err == "closed" then
        error("server closed the TCP connection without sending a close frame " ..
          "(waiting for close)", 2)
      end
      error(detail .. " (waiting for a close frame)", 2)
    end
    if f.opcode == OP.CLOSE then
      self.got_close = true
      return parse_close(f, 2)
    end
    check_server_frame(f, 2)
    self.skipped[#self.skipped + 1] = f
  end
end

-- Strict: the very next frame must be a close frame with `code`, and the server
-- must then close the TCP connection.  Used for protocol-violation tests, where
-- nothing (no echo, no pong) may come before the close.  Returns the reason.
--
-- opts.allow_before = { {opcode, payload}, ... }: frames that may (in this
-- order, each at most once) precede the close -- for cases where the RFC lets a
-- server either deliver or drop data that was received before the violation.
function Client:expect_failure(code, timeout, opts)
  timeout = timeout or self.timeout
  local allowed = opts and opts.allow_before or {}
  local ai = 1
  local f, err, detail = self:recv_frame(timeout)
  while f and f.opcode ~= OP.CLOSE and ai <= #allowed do
    local matched = false
    while ai <= #allowed do
      local a = allowed[ai]
      ai = ai + 1
      if f.opcode == a[1] and f.payload == a[2] and f.fin then matched = true; break end
    end
    if not matched then break end
    check_server_frame(f, 2)
    self.allowed_seen = (self.allowed_seen or 0) + 1
    f, err, detail = self:recv_frame(timeout)
  end
  if not f then
    if err == "closed" then
      error(string.format("expected close %d, but the server closed TCP without a close frame",
        code), 2)
    end
    error(string.format("%s (expected a close frame with code %d)", detail, code), 2)
  end
  if f.opcode ~= OP.CLOSE then
    error(string.format("expected a close frame with code %d, got %s", code, describe_frame(f)), 2)
  end
  local got, reason = parse_close(f, 2)
  if got ~= code then
    error(string.format("expected close code %d, got %s (reason %q)",
      code, tostring(got), reason), 2)
  end
  self.got_close = true
  local closed, why = self:wait_tcp_close(timeout)
  if not closed then
    error(string.format("server sent close %d but did not close the TCP connection (%s)",
      code, why), 2)
  end
  if #self.trailing > 0 then
    error(string.format("server sent %d byte(s) after its close frame: %q", #self.trailing,
      ssub(self.trailing, 1, 60)), 2)
  end
  return reason
end

local function first_diff(a, b)
  local n = math.min(#a, #b)
  for i = 1, n, 4096 do
    if ssub(a, i, i + 4095) ~= ssub(b, i, i + 4095) then
      for j = i, math.min(i + 4095, n) do
        if sbyte(a, j) ~= sbyte(b, j) then return j end
      end
    end
  end
  return n + 1
end

local function payload_mismatch(expected, got)
  local at = first_diff(expected, got)
  return string.format("payload mismatch: expected %d bytes, got %d; " ..
    "first difference at byte %d (expected %q, got %q)",
    #expected, #got, at, ssub(expected, at, at + 15), ssub(got, at, at + 15))
end
M.payload_mismatch = payload_mismatch

-- Strict: the very next frame must be a complete (FIN=1) well-formed frame with
-- this opcode and (if given) exactly this payload.  Returns the frame.
function Client:expect_frame(opcode, payload, timeout)
  local f, _, detail = self:recv_frame(timeout)
  if not f then
    error(string.format("%s (expected a %s frame%s)", detail, opname(opcode),
      payload and string.format(" with %d-byte payload", #payload) or ""), 2)
  end
  if f.opcode == OP.CLOSE and opcode ~= OP.CLOSE then
    local code = #f.payload >= 2 and (sbyte(f.payload, 1) * 256 + sbyte(f.payload, 2)) or nil
    error(string.format("expected a %s frame, but the server sent close (code %s, reason %q)",
      opname(opcode), tostring(code), ssub(f.payload, 3)), 2)
  end
  check_server_frame(f, 2)
  if f.opcode ~= opcode then
    error(string.format("expected a %s frame, got %s", opname(opcode), describe_frame(f)), 2)
  end
  if not f.fin then
    error("expected FIN=1 (one frame per message), got " .. describe_frame(f), 2)
  end
  if payload and f.payload ~= payload then error(payload_mismatch(payload, f.payload), 2) end
  return f
end

-- The next frame must be the echo of `payload` as one unfragmented frame.
function Client:expect_echo(payload, opcode, timeout)
  return self:expect_frame(opcode or OP.TEXT, payload, timeout)
end

-- The next frame must be a pong with exactly this payload.
function Client:expect_pong(payload, timeout)
  return self:expect_frame(OP.PONG, payload or "", timeout)
end

-- Wait until the server closes the TCP connection.  Any bytes that arrive are
-- collected in c.trailing (so tests can assert nothing else was sent).
-- Returns true, or false, "timeout".
function Client:wait_tcp_close(timeout)
  local deadline = now() + (timeout or self.timeout)
  self.trailing = self.buf
  self.buf = ""
  while true do
    local ok, err = self:_fill(deadline)
    self.trailing = self.trailing .. self.buf
    self.buf = ""
    if not ok then
      if err == "closed" then return true end
      return false, "timeout waiting for the server to close the TCP connection"
    end
  end
end

-- Assert that nothing at all arrives within `timeout` seconds (connection
-- stays open and silent).  Returns true or raises describing what came.
function Client:expect_silence(timeout)
  local f, err = self:recv_frame(timeout or 0.3)
  if f then error("expected no frame, got " .. describe_frame(f), 2) end
  if err == "closed" then
    error("expected the connection to stay open, but the server closed it", 2)
  end
  return true
end

function Client:close_socket()
  if self.sock then
    self.sock:close()
    self.sock = nil
  end
end

-- Is the connection closed by the peer?  Non-blocking check.
function Client:is_closed()
  if self.eof then return true end
  local _, err = self:_fill(now() + 0.001)
  return err == "closed"
end

return M
