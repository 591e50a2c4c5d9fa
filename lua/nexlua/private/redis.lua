--- --redis URL: topics shared with every nexlua process on the same Redis
-- (core/redis.c). This module parses the URL and starts the connections.
--
--   redis://HOST[:PORT]                 (port 6379 by default)
--   redis://:PASSWORD@HOST[:PORT]       AUTH PASSWORD
--   redis://USER:PASSWORD@HOST[:PORT]   AUTH USER PASSWORD (Redis 6 ACLs)
--
-- HOST is a name, an IPv4 address or [an IPv6 address]; USER and PASSWORD
-- may be %-encoded. A /DB suffix is refused: Redis pub/sub channels are
-- shared by all databases, so a database number would isolate nothing.
local core = require "nexlua.core"

local tonumber, format, match, gsub, char = tonumber, string.format, string.match, string.gsub, string.char

local redis = {}

local function unescape(s)
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

--- Parses a redis:// URL; returns {host =, port =, username =, password =}
-- or nil and what is wrong with it.
function redis.parse_url(url)
  local rest = match(url, "^redis://(.*)$")
  if not rest then
    if match(url, "^rediss://") then return nil, "rediss:// (TLS) is not supported; use redis://" end
    return nil, format("expected redis://[:PASSWORD@]HOST[:PORT], got %q", url)
  end
  local userinfo, hostport = match(rest, "^(.*)@([^@]*)$")
  hostport = hostport or rest
  local path = match(hostport, "^[^/]*(/.*)$")
  if path and path ~= "/" then
    return nil, format("%q: a /DB suffix means nothing for pub/sub (channels are shared by all " ..
      "databases); remove it", url)
  end
  hostport = match(hostport, "^[^/]*")
  local host, port = match(hostport, "^%[([%x:%.]+)%]:?(%d*)$")
  if not host then host, port = match(hostport, "^([%w%.%-_]+):?(%d*)$") end
  if not host then return nil, format("%q: no valid HOST[:PORT] after redis://", url) end
  port = port == "" and 6379 or tonumber(port)
  if port < 1 or port > 65535 then return nil, format("%q: the port must be from 1 to 65535", url) end
  local o = { host = host, port = port }
  if userinfo then
    local user, password = match(userinfo, "^([^:]*):(.*)$")
    if not user or password == "" then
      return nil, format("%q: expected :PASSWORD@ or USER:PASSWORD@ before the host", url)
    end
    o.username = user ~= "" and unescape(user) or nil
    o.password = unescape(password)
    if (o.username and o.username:find("%z")) or o.password:find("%z") then
      return nil, format("%q: a user name or password with a NUL byte (%%00) cannot be sent", url)
    end
  end
  return o
end

--- Checks that the Redis of url answers (blocking). Returns true, or nil
-- and why.
function redis.check(url)
  local o, err = redis.parse_url(url)
  if not o then return nil, err end
  return core.redis_check(o)
end

--- Connects this process to the Redis of url (already checked by the
-- command line). check = false: no blocking check first (a worker: the
-- master checked once; a replacement started during an outage must come
-- up and retry, not fail). Returns true, or nil and why.
function redis.start(url, check)
  local o, err = redis.parse_url(url)
  if not o then return nil, err end
  o.check = check ~= false
  local ok, serr = core.redis_start(o)
  if not ok then return nil, serr end
  return true, format("topics are shared through Redis at %s:%d (channels nexlua:TOPIC)", o.host, o.port)
end

return redis
