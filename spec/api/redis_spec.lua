-- --redis: topics shared by every nexlua process connected to the same
-- Redis (core/redis.c). Real processes: a redis-server started here on a
-- free port, and nexlua "nodes" (spec/apps/topics_app.lua, and
-- spec/apps/workers_app.lua with --workers) on ports of their own.
local proc = require "helpers.proc"
local rawws = require "helpers.rawws"
local redis = require "helpers.redis"

local BIN = os.getenv("NEXLUA_BIN") or "build/nexlua"
local TOPICS = "spec/apps/topics_app.lua"
local WORKERS = "spec/apps/workers_app.lua"
local TEXT, BINARY = rawws.OP.TEXT, rawws.OP.BINARY

describe("--redis", function()
  local r, nodes

  before_each(function()
    r = redis.start()
    nodes = {}
  end)

  -- Every node shuts down cleanly (and, with NEXLUA_BIN=build-asan/nexlua,
  -- without a sanitizer report).
  after_each(function()
    local bad = {}
    for _, n in ipairs(nodes) do
      local code = n:stop(15)
      local log = n:log()
      if code ~= 0 or log:find("Sanitizer", 1, true) or log:find("runtime error:", 1, true) then
        bad[#bad + 1] = string.format("exit %s; log:\n%s", tostring(code), log:sub(-3000))
      end
    end
    r:stop()
    assert(#bad == 0, table.concat(bad, "\n"))
  end)

  local function node(args, app, opts)
    local all = { "--redis", r.url, "--close-timeout", "1" }
    for _, a in ipairs(args or {}) do all[#all + 1] = a end
    local n = proc.start(app or TOPICS, all, opts)
    nodes[#nodes + 1] = n
    return n
  end

  -- A connection subscribed to topic on n.
  local function join(n, topic)
    local c = rawws.connect(n.port, "/t/" .. topic)
    assert.equal(101, c.status)
    assert.equal("subscribed", c:recv_message(5))
    return c
  end

  -- Waits until Redis counts want subscriber connections (nodes) on topic's channel.
  local function wait_numsub(topic, want)
    assert(proc.poll(function() return r:numsub("nexlua:" .. topic) == want end, 10, 0.05),
      string.format("Redis does not count %d subscriber(s) of nexlua:%s (has %s)", want, topic,
        tostring(r:numsub("nexlua:" .. topic))))
  end

  local function recv(c, want, op)
    local msg, opcode = c:recv_message(10)
    assert.equal(want, msg)
    assert.equal(op or TEXT, opcode)
  end

  local function redis_stats(c)
    c:send_text("redis")
    local connected, pub, rec, dropped = c:recv_message(5):match(
      "^redis connected=(%a+) published=(%d+) received=(%d+) dropped=(%d+)$")
    return { connected = connected == "true", published = tonumber(pub), received = tonumber(rec),
      dropped = tonumber(dropped) }
  end

  it("a publish on one node reaches the subscribers of the other: text, binary, JSON", function()
    local a, b = node(), node()
    local a1, b1 = join(a, "lobby"), join(b, "lobby")
    wait_numsub("lobby", 2)
    b1:send_text("all:hello from b")
    recv(b1, "hello from b")
    recv(b1, "sent 1") -- the count is this node's
    recv(a1, "hello from b")
    b1:send_text("bin:\0raw\1")
    recv(b1, "\0raw\1", BINARY)
    recv(b1, "sent 1")
    recv(a1, "\0raw\1", BINARY)
    b1:send_text("json:caf\195\169")
    recv(b1, '{"text":"café"}')
    recv(b1, "sent 1")
    recv(a1, '{"text":"café"}')
    assert.is_true(redis_stats(b1).connected)
    local st = redis_stats(a1)
    assert.equal(3, st.received)
    assert.equal(0, st.dropped)
  end)

  it("ws:publish reaches everyone but the sender, on every node", function()
    local a, b = node(), node()
    local a1, a2, b1 = join(a, "room"), join(a, "room"), join(b, "room")
    wait_numsub("room", 2)
    a1:send_text("pub:from a1")
    recv(a1, "sent 1")
    recv(a2, "from a1")
    recv(b1, "from a1")
    -- a1 got nothing else: its next message answers its next command.
    a1:send_text("state")
    recv(a1, "topics room n=2 sub=true")
  end)

  it("a node delivers its own publish once (its echo from Redis is ignored)", function()
    local a, b = node(), node()
    local a1, a2, b1 = join(a, "echo"), join(a, "echo"), join(b, "echo")
    wait_numsub("echo", 2)
    a1:send_text("all:once")
    recv(a1, "once")
    recv(a1, "sent 2")
    recv(a2, "once")
    recv(b1, "once") -- Redis has sent it to a's subscriber connection too
    -- Redis writes to a's subscriber connection in publish order: the echo
    -- of "once" came before "marker".
    b1:send_text("all:marker")
    recv(a2, "marker")
    recv(a1, "marker")
    local st = redis_stats(a1)
    assert.equal(1, st.published)
    assert.equal(1, st.received)
  end)

  it("unsubscribing and closing stop delivery and unsubscribe the channel in Redis", function()
    local a, b = node(), node()
    local a1, b1 = join(a, "u1"), join(b, "u1")
    local a2 = join(a, "u2")
    wait_numsub("u1", 2)
    wait_numsub("u2", 1)
    assert.same({ "nexlua:u1", "nexlua:u2" }, r:channels("nexlua:*"))
    a1:send_text("unsub")
    recv(a1, "unsub true")
    wait_numsub("u1", 1) -- a has no subscriber of u1 left
    b1:send_text("all:after")
    recv(b1, "after")
    recv(b1, "sent 1")
    a1:send_text("state") -- nothing came before the answer
    recv(a1, "topics  n=0 sub=false")
    -- Subscribing again subscribes the channel again.
    a1:send_text("resub")
    recv(a1, "resub true")
    wait_numsub("u1", 2)
    b1:send_text("all:again")
    recv(a1, "again")
    -- Closing the last subscribers removes the channels.
    a2:close(1000)
    a2:close_socket()
    assert(proc.poll(function() return #r:channels("nexlua:u2") == 0 end, 10), "nexlua:u2 still subscribed")
    a1:close(1000)
    a1:close_socket()
    b1:close(1000)
    b1:close_socket()
    assert(proc.poll(function() return #r:channels("nexlua:*") == 0 end, 10),
      "channels left: " .. table.concat(r:channels("nexlua:*"), ","))
  end)

  it("--workers 2 --redis delivers exactly once to each subscriber of every worker and node", function()
    local w = node({ "--workers", "2" }, WORKERS)
    local b = node()
    local members, ids = {}, {}
    for _ = 1, 60 do
      local c = rawws.connect(w.port, "/room")
      assert.equal(101, c.status)
      local id = tonumber(c:recv_message(10):match("^W (%d+) %d+$"))
      members[#members + 1] = { c = c, id = id }
      ids[id] = true
      if ids[1] and ids[2] then break end
    end
    assert.is_true(ids[1] and ids[2], "all connections landed on one worker")
    local b1 = join(b, "room")
    wait_numsub("room", 3) -- two workers and node b
    local from = members[1]
    from.c:send_text("hello")
    local want = string.format("[w%d] hello", from.id)
    for _, m in ipairs(members) do recv(m.c, want) end
    recv(b1, want)
    b1:send_text("all:marker")
    recv(b1, "marker")
    recv(b1, "sent 1")
    for _, m in ipairs(members) do recv(m.c, "marker") end -- no second "hello" before it
    for _, m in ipairs(members) do m.c:close_socket() end
    assert.equal(0, w:stop(15))
  end)

  it("Redis lost while serving: a warning, local delivery goes on, and after a restart it is shared again",
    function()
    local a, b = node(), node()
    local a1, b1, b2 = join(a, "live"), join(b, "live"), join(b, "live")
    wait_numsub("live", 2)
    b1:send_text("all:before")
    recv(a1, "before")
    recv(b1, "before")
    recv(b1, "sent 2")
    recv(b2, "before")
    r:kill()
    assert(a:wait_log("WARN[^\n]*Redis 127%.0%.0%.1:%d+ %(subscriber connection%)", 10), a:log())
    -- Local delivery goes on; the message for the other node is dropped.
    b1:send_text("all:while down")
    recv(b2, "while down")
    recv(b1, "while down")
    recv(b1, "sent 2")
    local st = redis_stats(b1)
    assert.is_false(st.connected)
    assert.is_true(st.dropped >= 1)
    r:restart()
    wait_numsub("live", 2) -- both nodes subscribed again
    assert(proc.poll(function() return redis_stats(b1).connected end, 20), "node b did not reconnect")
    b1:send_text("all:after")
    recv(a1, "after") -- "while down" never came
    assert(a:wait_log("connected again", 10), a:log()) -- once up for a second
    assert(b:wait_log("publishing again; %d+ message%(s%) did not reach", 10), b:log())
  end)

  it("--workers: a worker replaced while Redis is down starts and retries; the server stays up", function()
    local w = node({ "--workers", "2" }, WORKERS)
    local c = rawws.connect(w.port, "/room")
    assert.equal(101, c.status)
    local id, pid = c:recv_message(10):match("^W (%d+) (%d+)$")
    c:close_socket()
    r:kill()
    assert(proc.exec_ok("kill -KILL " .. pid))
    assert(w:wait_log("worker " .. id .. " %(pid %d+%) is serving again", 20), w:log())
    assert.falsy(w:log():find("did not start", 1, true))
    r:restart()
    -- Both workers are back on Redis: a node subscribed on the same room
    -- hears a message published in either worker.
    local b = node()
    local b1 = join(b, "room") -- node b subscribed too
    wait_numsub("room", 1)
    local members, ids = {}, {}
    for _ = 1, 60 do
      local m = rawws.connect(w.port, "/room")
      assert.equal(101, m.status)
      local mid = tonumber(m:recv_message(10):match("^W (%d+) %d+$"))
      members[#members + 1] = m
      ids[mid] = true
      if ids[1] and ids[2] then break end
    end
    wait_numsub("room", 3)
    -- and a message published in a worker reaches node b through Redis
    members[1]:send_text("after the outage")
    assert.matches("^%[w%d%] after the outage$", (b1:recv_message(10)))
    for _, m in ipairs(members) do m:close_socket() end
    assert.is_true(w:alive())
  end)

  it("AUTH changed while serving: retried with a backoff, logged once, not in a loop", function()
    r:cli("CONFIG", "SET", "requirepass", "old")
    local a = node({ "--redis", "redis://:old@127.0.0.1:" .. r.port })
    local a1 = join(a, "auth2")
    assert(proc.poll(function() return redis_stats(a1).connected end, 10), "not connected")
    r:cli("-a", "old", "--no-auth-warning", "CONFIG", "SET", "requirepass", "new")
    r:cli("-a", "new", "--no-auth-warning", "CLIENT", "KILL", "TYPE", "pubsub")
    r:cli("-a", "new", "--no-auth-warning", "CLIENT", "KILL", "TYPE", "normal")
    proc.poll(function() return false end, 2.5)
    local log = a:log()
    local warns = select(2, log:gsub("AUTH refused", ""))
    local again = select(2, log:gsub("connected again", ""))
    assert.equal(0, again, "a refused AUTH counted as connected:\n" .. log)
    -- the new reason is shown once per connection (subscriber, publisher),
    -- at the default level: a changed password is not hidden in DEBUG
    assert.is_true(warns >= 1 and warns <= 2, warns .. " AUTH warnings in 2.5 s:\n" .. log)
    assert.matches("WARN .-AUTH refused: WRONGPASS", log)
    assert.is_false(redis_stats(a1).connected)
  end)

  it("a connection ended by a TCP reset (a NAT forgetting it) is noticed and made again", function()
    local px = r:reset_proxy()
    local ok, err = pcall(function()
      local a = node({ "--redis", px.url }) -- through the proxy
      local b = node()                      -- straight to Redis
      local a1, b1 = join(a, "nat"), join(b, "nat")
      wait_numsub("nat", 2)
      b1:send_text("all:one")
      recv(a1, "one")
      px.reset()
      assert(a:wait_log("WARN[^\n]*Redis[^\n]*subscriber connection", 10), "the reset went unnoticed:\n" .. a:log())
      wait_numsub("nat", 2) -- a subscribed again, through a new proxied connection
      assert(proc.poll(function() return redis_stats(a1).connected end, 20), "a did not reconnect")
      b1:send_text("all:two")
      recv(a1, "two")
    end)
    px.stop()
    assert(ok, err)
  end)

  it("a startup hook's publishes, made before Redis has answered the new connections, reach the others",
    function()
    local b = node()
    local b1 = join(b, "boot")
    wait_numsub("boot", 1)
    local a = node({}, "spec/apps/redis_boot_app.lua")
    for i = 1, 5 do recv(b1, "boot:" .. i) end
    local s = rawws.connect(a.port, "/stats")
    assert.equal("published=5 dropped=0", s:recv_message(5))
    assert.falsy(a:log():find("WARN", 1, true), a:log())
  end)

  it("each outage's dropped messages are counted when it is over, in a line of their own", function()
    local a, b = node({ "--max-message-size", "20000000" }), node()
    local a1 = join(a, "twice")
    join(b, "twice")
    wait_numsub("twice", 2)
    -- a message too large for Redis is dropped too, logged on its own: not
    -- in an outage's count
    local big = string.rep("x", 17 * 1024 * 1024)
    a1:send_text("all:" .. big)
    recv(a1, big)
    recv(a1, "sent 1")
    assert(a:wait_log("too large for Redis pub/sub", 5), a:log())
    for round, n in ipairs({ 2, 3 }) do
      r:kill()
      assert(a:wait_log(string.rep("publisher connection%): [^\n]*retrying.-", round), 10), a:log())
      for i = 1, n do
        a1:send_text("all:lost " .. i)
        recv(a1, "lost " .. i)
        recv(a1, "sent 1")
      end
      r:restart()
      -- reported once the publisher connection is back, before any publish
      assert(a:wait_log(round == 1 and "publishing again; 2 message%(s%)" or
        "publishing again; 2 message%(s%).-publishing again; 3 message%(s%)", 20), a:log())
    end
    assert.equal(6, redis_stats(a1).dropped)
    assert.equal(2, select(2, a:log():gsub("Redis is not connected", "")), a:log())
  end)

  -- Redis closes, as it wakes up, a connection idle past its timeout: the
  -- PUBLISHes that waited are lost, and counted so.
  it("Redis frozen past its own timeout: what waited is counted dropped, not sent", function()
    r:cli("CONFIG", "SET", "timeout", "1")
    local a, b = node(), node()
    local a1 = join(a, "frozen")
    join(b, "frozen")
    wait_numsub("frozen", 2)
    local before = redis_stats(a1)
    assert(proc.exec_ok("kill -STOP " .. r.pid))
    for i = 1, 3 do
      a1:send_text("all:waits " .. i)
      recv(a1, "waits " .. i)
      recv(a1, "sent 1")
    end
    proc.poll(function() return false end, 2.5)
    assert(proc.exec_ok("kill -CONT " .. r.pid))
    assert(a:wait_log("publishing again; 3 message%(s%) did not reach", 20), a:log())
    local after = redis_stats(a1)
    assert.equal(before.dropped + 3, after.dropped)
    assert.equal(before.published, after.published)
  end)

  it("a SUBSCRIBE an ACL refuses: retried with the backoff and logged once, not every 0.1 s", function()
    r:cli("ACL", "SETUSER", "bob", "on", ">bpw", "+@all", "~*", "resetchannels")
    local a = node({ "--redis", "redis://bob:bpw@127.0.0.1:" .. r.port })
    local before = tonumber(r:cli("INFO", "stats"):match("total_connections_received:(%d+)"))
    local a1 = join(a, "lobby") -- the subscriber connection ends at each attempt
    proc.poll(function() return false end, 3)
    local log = a:log()
    local made = tonumber(r:cli("INFO", "stats"):match("total_connections_received:(%d+)")) - before
    assert.is_true(made <= 10, made .. " connections to Redis in 3 s:\n" .. log)
    assert.equal(1, select(2, log:gsub("NOPERM", "")), log)
    assert.equal(0, select(2, log:gsub("connected again", "")), log)
    assert.is_false(redis_stats(a1).connected)
    -- allowed now: back within the backoff (at most 5 s), and logged so
    r:cli("ACL", "SETUSER", "bob", "allchannels")
    wait_numsub("lobby", 1)
    assert(a:wait_log("subscriber connection%): connected again", 10), a:log())
    assert.is_true(redis_stats(a1).connected)
  end)

  -- Debian's "localhost" is ::1 and then 127.0.0.1; core/tests/preload/
  -- fake_dns.c makes "two.nexlua.test" 127.0.0.2 and then 127.0.0.1.
  local function two_addresses()
    local dir = (os.getenv("NEXLUA_BIN") or BIN):match("^(.*)/[^/]*$") or "."
    local asan = os.getenv("ASAN_OPTIONS")
    return { env = {
      LD_PRELOAD = dir .. "/libnx_fake_dns.so",
      -- the shim comes before the sanitizer's runtime in a build-asan run
      ASAN_OPTIONS = (asan and asan ~= "" and asan .. ":" or "") .. "verify_asan_link_order=0",
    } }
  end

  -- The workers skip the start-up check (the master made it): each of
  -- their connections tries the addresses in turn, and a startup hook's
  -- publishes wait through it.
  it("--workers 2 on a host whose first address refuses: every startup publish arrives, no warning",
    function()
    local b = node()
    local b1 = join(b, "boot")
    wait_numsub("boot", 1)
    local w = node({ "--redis", "redis://two.nexlua.test:" .. r.port, "--workers", "2" },
      "spec/apps/redis_boot_app.lua", two_addresses())
    local got = {}
    for _ = 1, 10 do
      local m = b1:recv_message(10)
      got[m] = (got[m] or 0) + 1
    end
    for i = 1, 5 do assert.equal(2, got["boot:" .. i], "boot:" .. i .. " (once per worker)") end
    assert.falsy(w:log():find("WARN", 1, true), w:log())
  end)

  it("a host whose first address refuses: the next one is used, quietly", function()
    local a = node({ "--redis", "redis://two.nexlua.test:" .. r.port }, nil, two_addresses())
    local b = node()
    local a1, b1 = join(a, "dual"), join(b, "dual")
    wait_numsub("dual", 2)
    b1:send_text("all:both ways")
    recv(a1, "both ways")
    assert(proc.poll(function() return redis_stats(a1).connected end, 10), a:log())
    assert.falsy(a:log():find("WARN", 1, true), a:log())
  end)

  it("Redis's idle timeout (even 1 s) never closes a connection: each sends a PING", function()
    r:cli("CONFIG", "SET", "timeout", "1")
    local a, b = node(), node()
    local idle = node() -- no topic: neither connection is subscribed
    local a1, b1 = join(a, "idle"), join(b, "idle")
    wait_numsub("idle", 2)
    for i = 1, 3 do -- a publish now and then: its connection is idle in between
      b1:send_text("all:between " .. i)
      recv(a1, "between " .. i)
      recv(b1, "between " .. i)
      recv(b1, "sent 1")
      proc.poll(function() return false end, 1.6)
    end
    for _, n in ipairs({ a, b, idle }) do
      assert.falsy(n:log():find("WARN", 1, true), n:log())
    end
    b1:send_text("all:after a while")
    recv(a1, "after a while")
    recv(b1, "after a while")
    recv(b1, "sent 1")
    assert.equal(0, redis_stats(b1).dropped)
  end)

  -- hiredis 0.14 aborts on such replies when left to itself (core/redis.c
  -- reads them with functions of its own that refuse them).
  -- bigreply and bignested: an array head naming a million elements, which
  -- hiredis would allocate and wait for (2^31 of them: 16 GiB, and the
  -- loop held while freeing them); nothing nexlua sends has more than 3.
  for _, mode in ipairs({ "nilchan", "empty", "intkind", "unsubnil", "unsubcase", "punsubstr", "extra",
    "bigreply", "bignested" }) do
    it("a reply out of Redis's protocol (" .. mode .. "): the connection is dropped and retried, " ..
      "the server serves on", function()
      local rogue = redis.rogue(mode)
      finally(rogue.stop)
      local a = node({ "--redis", rogue.url })
      local a1 = join(a, "rogue")
      if mode == "extra" or mode == "bigreply" then
        a1:send_text("all:once")
        recv(a1, "once")
        recv(a1, "sent 1")
      end
      assert(a:wait_log("WARN Redis [^\n]*: a reply out of Redis's protocol %(is it Redis%?%)", 10), a:log())
      -- still serving: the subscriber, and a new connection
      a1:send_text("all:after")
      recv(a1, "after")
      recv(a1, "sent 1")
      local a2 = join(a, "other")
      a2:send_text("state")
      recv(a2, "topics other n=1 sub=true")
      assert.is_true(a:alive())
    end)
  end

  it("a server that is not Redis at start-up: a clear error at once, exit status 1", function()
    local rogue = redis.rogue("bigping")
    finally(rogue.stop)
    local code, _, err = proc.run({ BIN, TOPICS, "--port", "0", "--redis", rogue.url }, 20)
    assert.equal(1, code)
    assert.matches("does not answer PING: a reply out of Redis's protocol (is it Redis?)", err, 1, true)
    assert.falsy(err:find("listening on", 1, true))
  end)

  -- The start-up check reads with the checked reply functions, without a
  -- link: a short array there is any reply, not a pub/sub message's shape.
  it("a PING answered with a short array at start-up: the server starts", function()
    local rogue = redis.rogue("arrayping")
    finally(rogue.stop)
    local a = node({ "--redis", rogue.url })
    local a1 = join(a, "arrays")
    a1:send_text("state")
    recv(a1, "topics arrays n=1 sub=true")
    assert.is_true(a:alive(), a:log())
  end)

  it("Redis not answering at start-up: a clear error and exit status 1", function()
    local port = r.port
    r:stop()
    local code, _, err = proc.run({ BIN, TOPICS, "--port", "0", "--redis", "redis://127.0.0.1:" .. port }, 20)
    assert.equal(1, code)
    assert.matches("cannot connect to Redis at 127%.0%.0%.1:" .. port .. ": Connection refused", err)
    assert.falsy(err:find("listening on", 1, true))
  end)

  -- The check at start-up blocks (with 3 s timeouts): it is nexlua's own
  -- wait, not a hold by the app, and the watchdog does not name it.
  it("Redis accepting but never answering at start-up: exit status 1, no hold warning", function()
    local socket = require "socket"
    local mute = assert(socket.bind("127.0.0.1", 0)) -- the kernel accepts; nobody answers
    local _, port = mute:getsockname()
    local code, _, err = proc.run({ BIN, TOPICS, "--port", "0", "--redis", "redis://127.0.0.1:" .. port }, 20)
    mute:close()
    assert.equal(1, code, err)
    assert.matches("does not answer PING: no answer within 3 s", err, 1, true)
    assert.falsy(err:find("event loop has been held", 1, true), err)
  end)

  it("a password Redis does not accept: exit status 1, AUTH named", function()
    local code, _, err = proc.run({ BIN, TOPICS, "--port", "0", "--redis",
      "redis://:secret@127.0.0.1:" .. r.port }, 20)
    assert.equal(1, code)
    assert.matches("Redis at 127%.0%.0%.1:%d+ refused AUTH", err)
  end)

  it("a password Redis requires is sent (redis://:PASSWORD@HOST:PORT)", function()
    r:cli("CONFIG", "SET", "requirepass", "s3cret")
    local a = node({ "--redis", "redis://:s3cret@127.0.0.1:" .. r.port })
    local a1 = join(a, "auth")
    assert(proc.poll(function() return r:cli("-a", "s3cret", "--no-auth-warning", "PUBSUB", "NUMSUB",
      "nexlua:auth"):match("\n1$") end, 10), "no subscription with AUTH")
    assert.is_true(redis_stats(a1).connected)
  end)

  it("refuses a bad --redis URL on the command line with exit status 2", function()
    for _, url in ipairs({ "http://127.0.0.1:6379", "redis://127.0.0.1:6379/2", "redis://", "rediss://h:1",
      "redis://h:99999" }) do
      local code, _, err = proc.run({ BIN, TOPICS, "--redis", url }, 10)
      assert.equal(2, code, url)
      assert.matches("option %-%-redis", err)
    end
  end)
end)
