--- The FFI fast path of receive and send (nx_ffi_take / nx_ffi_send in
-- core/lua_conn.c): the common case, a message already queued or one that
-- can be queued at once, reached from compiled loops without the Lua C API
-- (no trace stitching around a C function). Everything else goes through
-- core.take and core.send as before.
--
-- Returns false when the FFI or the core's symbols cannot be found (or
-- NEXLUA_NO_FFI is set, which the specs use to cover the other path), else
-- { take = function(box) -> data, kind | nil, send = function(box, data,
-- binary) -> 0 sent | 1 use core.send | 2 the connection failed }.
if os.getenv("NEXLUA_NO_FFI") then return false end

local ok_ffi, ffi = pcall(require, "ffi")
if not ok_ffi then return false end

-- (cdef once per Lua state: a module reloaded must not redefine them)
pcall(ffi.cdef, [[
int nx_ffi_take(void *box, const char **data, size_t *len);
int nx_ffi_send(void *box, const char *data, size_t len, int kind);
]])

local function lookup(lib)
  local ok = pcall(function() return lib.nx_ffi_take, lib.nx_ffi_send end)
  return ok and lib or nil
end

-- The nexlua executable exports them; under busted they are in core.so.
local lib = lookup(ffi.C)
if not lib then
  local path = package.searchpath and package.searchpath("nexlua.core", package.cpath)
  local ok, loaded = false, nil
  if path then ok, loaded = pcall(ffi.load, path) end
  lib = ok and lookup(loaded) or nil
end
if not lib then return false end

local c_take, c_send, ffi_string = lib.nx_ffi_take, lib.nx_ffi_send, ffi.string
-- Filled by nx_ffi_take and read right after, with no yield in between:
-- one pair serves every coroutine.
local pdata, plen = ffi.new("const char *[1]"), ffi.new("size_t[1]")

local fastpath = {}

-- The last text message taken (if at most KNOWN_MAX bytes), whose UTF-8 the
-- core has checked: sending that string again (an echo, a relay) skips the
-- check. Lua strings are interned and immutable, so an equal string is the
-- same bytes.
local KNOWN_MAX = 65536
local known_text

--- data, "text" | "binary" for a queued message, else nil (call core.take).
function fastpath.take(box)
  local k = c_take(box, pdata, plen)
  if k == 0 then return nil end
  local data = ffi_string(pdata[0], plen[0])
  if k ~= 1 then return data, "binary" end
  if #data <= KNOWN_MAX then known_text = data end
  return data, "text"
end

-- kind for nx_ffi_send: 0 text, 1 binary, 2 text known to be UTF-8
function fastpath.send(box, data, binary)
  return c_send(box, data, #data, binary and 1 or data == known_text and 2 or 0)
end

return fastpath
