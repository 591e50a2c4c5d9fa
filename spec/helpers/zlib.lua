-- Raw deflate for permessage-deflate specs (RFC 7692), on the system zlib
-- through LuaJIT's FFI: independent of the server's own zlib code paths.
--
--   local zlib = require "helpers.zlib"
--   local z = zlib.deflate(msg)                    -- one message, 00 00 ff ff removed
--   local z = zlib.deflate(msg, { window_bits = 9, level = 9 })
--   local m = zlib.inflate(z)                      -- appends 00 00 ff ff itself
--   local m, err = zlib.inflate(z, { max = 1e6 })  -- nil, "too big" past max bytes
--
-- Each call uses a fresh stream (no context takeover), like the server.

local ffi = require "ffi"

ffi.cdef [[
typedef struct nx_spec_z_stream_s {
  const unsigned char *next_in;
  unsigned int avail_in;
  unsigned long total_in;
  unsigned char *next_out;
  unsigned int avail_out;
  unsigned long total_out;
  const char *msg;
  void *state;
  void *zalloc;
  void *zfree;
  void *opaque;
  int data_type;
  unsigned long adler;
  unsigned long reserved;
} nx_spec_z_stream;
const char *zlibVersion(void);
int deflateInit2_(nx_spec_z_stream *strm, int level, int method, int windowBits, int memLevel,
                  int strategy, const char *version, int stream_size);
int deflate(nx_spec_z_stream *strm, int flush);
int deflateEnd(nx_spec_z_stream *strm);
unsigned long deflateBound(nx_spec_z_stream *strm, unsigned long sourceLen);
int inflateInit2_(nx_spec_z_stream *strm, int windowBits, const char *version, int stream_size);
int inflate(nx_spec_z_stream *strm, int flush);
int inflateEnd(nx_spec_z_stream *strm);
]]

local ok, z = pcall(ffi.load, "z")
if not ok then z = ffi.load("libz.so.1") end

local M = {}

local Z_OK, Z_STREAM_END, Z_BUF_ERROR = 0, 1, -5
local Z_SYNC_FLUSH, Z_FINISH = 2, 4
local Z_DEFLATED = 8
local TAIL = "\0\0\255\255"

M.TAIL = TAIL
M.version = ffi.string(z.zlibVersion())

local function stream_size() return ffi.sizeof("nx_spec_z_stream") end

-- A raw deflate stream (window bits, level, memLevel).
local function deflater(bits, level, mem_level)
  local s = ffi.new("nx_spec_z_stream")
  local r = z.deflateInit2_(s, level, Z_DEFLATED, -bits, mem_level, 0, M.version, stream_size())
  assert(r == Z_OK, "deflateInit2 failed: " .. r)
  return s
end

-- Runs data through stream s with flush: the bytes it gives, and the result.
local function run(s, data, flush)
  local cap = tonumber(z.deflateBound(s, #data)) + 64
  local out = ffi.new("unsigned char[?]", cap)
  s.next_in = data
  s.avail_in = #data
  s.next_out = out
  s.avail_out = cap
  local r = z.deflate(s, flush)
  assert(r == Z_OK or r == Z_STREAM_END, "deflate failed: " .. r)
  return ffi.string(out, cap - s.avail_out)
end

--- Compresses one message as permessage-deflate does: raw deflate, a sync
-- flush, and the final 00 00 ff ff removed (opts.keep_tail keeps it).
-- opts: window_bits (8..15, default 15), level (0..9, default 6),
-- mem_level (1..9, default 8), finish (end with a final block: BFINAL set).
function M.deflate(data, opts)
  opts = opts or {}
  local bits = opts.window_bits or 15
  if bits == 8 then bits = 9 end -- zlib's raw deflate has no 8-bit window
  local s = deflater(bits, opts.level or 6, opts.mem_level or 8)
  local res = run(s, data, opts.finish and Z_FINISH or Z_SYNC_FLUSH)
  z.deflateEnd(s)
  if not opts.keep_tail and not opts.finish and res:sub(-4) == TAIL then res = res:sub(1, -5) end
  return res
end

--- One message compressed in parts on one stream, each sync-flushed (so
-- each inflates on its own after the ones before it): the payloads of its
-- fragments, in order, the message's final 00 00 ff ff removed.
function M.deflate_fragments(parts)
  local s = deflater(15, 6, 8)
  local out = {}
  for i, data in ipairs(parts) do out[i] = run(s, data, Z_SYNC_FLUSH) end
  z.deflateEnd(s)
  if out[#out]:sub(-4) == TAIL then out[#out] = out[#out]:sub(1, -5) end
  return unpack(out)
end

--- Inflates one permessage-deflate message (the 00 00 ff ff is appended).
-- Returns the bytes, or nil and "invalid" / "too big" (opts.max bytes).
function M.inflate(data, opts)
  opts = opts or {}
  local max = opts.max
  local s = ffi.new("nx_spec_z_stream")
  local r = z.inflateInit2_(s, -(opts.window_bits or 15), M.version, stream_size())
  assert(r == Z_OK, "inflateInit2 failed: " .. r)
  local input = data .. (opts.no_tail and "" or TAIL)
  -- Under a 15-bit window, output a byte per call: what a match refers to
  -- then comes from zlib's window alone, which holds 2^bits bytes, so data
  -- that needs a larger window fails (within one output buffer, zlib reads
  -- back from the buffer, whatever the window).
  local CH = (opts.window_bits or 15) < 15 and 1 or 65536
  local buf = ffi.new("unsigned char[?]", CH)
  local parts, total = {}, 0
  s.next_in = input
  s.avail_in = #input
  local err
  while true do
    s.next_out = buf
    s.avail_out = CH
    r = z.inflate(s, Z_SYNC_FLUSH)
    local n = CH - s.avail_out
    if n > 0 then
      parts[#parts + 1] = ffi.string(buf, n)
      total = total + n
      if max and total > max then err = "too big"; break end
    end
    if r == Z_STREAM_END then break end
    if r == Z_BUF_ERROR then
      if s.avail_in == 0 then break end
    elseif r ~= Z_OK then
      err = "invalid"
      break
    end
    if s.avail_in == 0 and s.avail_out ~= 0 then break end
  end
  z.inflateEnd(s)
  if err then return nil, err end
  return table.concat(parts)
end

return M
