-- Connection limits: each limit's default, its flag and its behaviour.
--   --max-connections N         the N+1th handshake gets HTTP 503 + Retry-After;
--                               default: the open-file limit minus 64
--   --max-connections-per-ip N  the N+1th connection from one address is closed
--                               at once (no HTTP answer); default 0 = no cap
--   --allowed-origins LIST      a browser Origin not in LIST gets 403; no Origin
--                               passes; default: any Origin
--   --max-fragments N           a message in more than N frames: 1008;
--                               default 100000
--   --write-limit BYTES         a connection buffering more than BYTES for a
--                               client that does not read is dropped (TCP close,
--                               no close frame; the app sees 1006) with a log
--                               warning; default 16 MiB
--   --max-header-size BYTES     a longer request head: 431 (the default 16384 and
--                               --handshake-timeout are in conformance/handshake_spec)
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local proc = require "helpers.proc"
local socket = require "socket"
local clock = require "helpers.clock"
local OP = rawws.OP

local APP = "spec/apps/hardening_app.lua"
local BIN = os.getenv("NEXLUA_BIN") or "build/nexlua"
local KiB, MiB = 1024, 1024 * 1024
-- Under an AddressSanitizer build RSS is not the server's own memory
-- (shadow, quarantine): the figures are printed, the bounds not checked.
local SANITIZED = proc.sanitized()

-- A client whose socket is bound to the source address `from` (loopback).
local function connect_from(from, port, path, opts)
  opts = opts or {}
  local sock = assert(socket.tcp())
  assert(sock:bind(from, 0))
  sock:settimeout(5)
  assert(sock:connect("127.0.0.1", port))
  sock:setoption("tcp-nodelay", true)
  local c = setmetatable({ sock = sock, port = port, buf = "", eof = false, timeout = 5,
    sent_close = false }, rawws.Client)
  if opts.no_request then return c end
  c:send_raw((rawws.build_request(port, path or "/ws", opts)))
  c:read_http_response(5)
  return c
end

-- Frames of one message in `size`-byte fragments with a zero mask key
-- (masking is the identity: fast to build for tens of thousands of frames).
local function fragments(opcode, msg, size)
  local wire, i = {}, 1
  repeat
    local last = i + size > #msg
    local b0 = (last and 0x80 or 0) + (i == 1 and opcode or 0)
    local n = math.min(size, #msg - i + 1)
    local hdr
    if n < 126 then
      hdr = string.char(b0, 0x80 + n)
    else
      hdr = string.char(b0, 0x80 + 126, math.floor(n / 256), n % 256)
    end
    wire[#wire + 1] = hdr .. "\0\0\0\0" .. msg:sub(i, i + n - 1)
    i = i + size
  until last
  return table.concat(wire)
end

-- n one-byte fragments of "x" (n >= 2), built from three constant frames.
local function one_byte_fragments(n)
  return "\1\129\0\0\0\0x" .. string.rep("\0\129\0\0\0\0x", n - 2) .. "\128\129\0\0\0\0x"
end

-- Open descriptors of the server process.
local function fd_count(pid)
  local p = io.popen("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l")
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

-- Waits until the server holds exactly n descriptors (its connections are
-- accepted or freed); returns the count.
local function wait_fds(pid, n, timeout)
  local deadline = clock() + (timeout or 3)
  local have = fd_count(pid)
  while have ~= n and clock() < deadline do
    socket.sleep(0.01)
    have = fd_count(pid)
  end
  return have
end

-- Connects until the handshake is answered 101 (a slot freed by a close is
-- free once the server has seen the close), within 3 s.
local function connect_until_upgraded(open)
  local deadline = clock() + 3
  local c
  repeat
    c = open()
    if c.status ~= 101 then
      c:close_socket()
      socket.sleep(0.05)
    end
  until c.status == 101 or clock() > deadline
  return c
end

local function echo_ok(c, text)
  text = text or ("ping " .. tostring(clock()))
  c:send_text(text)
  c:expect_echo(text, OP.TEXT, 5)
end

describe("limits", function()
  local clients = {}
  local function track(c) clients[#clients + 1] = c; return c end
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
  end)

  it("--help documents every limit with its default", function()
    local code, out = proc.run({ BIN, "--help" }, 10)
    assert.equal(0, code)
    for _, want in ipairs({
      "--max-connections N", "open-file limit minus 64",
      "--max-connections-per-ip N", "0 = no cap (default 0)",
      "--allowed-origins VALUE", "(default: any)",
      "--max-fragments N", "(default 100000)",
      "--write-limit N", "(default 16777216)",
      "--max-header-size N", "(default 16384)",
      "--handshake-timeout N", "(default 10)",
      "--max-message-size N", "(default 16777216)",
    }) do
      assert.matches(want, out, 1, true)
    end
  end)

  -------------------------------------------------------------------------
  describe("--max-connections", function()
    local s, base_fds
    setup(function()
      s = server.start(APP, { "--max-connections", "5" })
      base_fds = fd_count(s.pid)
    end)
    teardown(function() if s then s:stop() end end)
    before_each(function()
      -- the previous test's connections are all gone
      assert.equal(base_fds, wait_fds(s.pid, base_fds), "connections left from the last test")
    end)

    it("5: the 6th handshake gets 503 with Retry-After while the 5 keep working; " ..
      "a freed slot is used again", function()
      local five = {}
      for i = 1, 5 do
        five[i] = track(rawws.connect(s.port, "/ws"))
        assert.equal(101, five[i].status, "connection " .. i)
      end
      for _ = 1, 3 do
        local sixth = track(rawws.connect(s.port, "/ws"))
        assert.equal(503, sixth.status)
        assert.is_not_nil(sixth.headers["retry-after"], "no Retry-After header")
        assert.matches("^%d+$", sixth.headers["retry-after"])
        assert.is_true((sixth:wait_tcp_close(3)), "the 503 connection was kept open")
      end
      for i = 1, 5 do echo_ok(five[i], "still served " .. i) end
      assert.matches("at the connection limit %(5%)", s:log())
      -- logged once a second at most, not once per refused connection
      local _, entries = s:log():gsub("WARN at the connection limit", "")
      assert.is_true(entries <= 2, entries .. " entries for 3 refused connections")
      -- free one slot with a clean close; the next handshake is accepted
      five[1]:close(1000)
      five[1]:expect_close()
      assert.is_true((five[1]:wait_tcp_close(3)))
      local again = track(connect_until_upgraded(function() return rawws.connect(s.port, "/ws") end))
      assert.equal(101, again.status)
      echo_ok(again)
    end)

    -- Past the limit a connection is answered at once, before it sends
    -- anything, and closed: idle connections cannot hold every descriptor
    -- for the whole handshake timeout.
    it("5: a connection past the limit gets 503 before it sends anything, and is closed",
      function()
      for i = 1, 5 do
        assert.equal(101, track(rawws.connect(s.port, "/ws")).status, "connection " .. i)
      end
      local t0 = clock()
      local bare = track(rawws.open_tcp(s.port))
      assert.equal(503, (bare:read_http_response(3)))
      assert.is_true((bare:wait_tcp_close(3)), "the 503 connection was kept open")
      assert.is_true(clock() - t0 < 2, "closed only after " .. (clock() - t0) .. " s")
    end)

    it("5: a half-open TCP connection holds a slot until its handshake ends", function()
      for i = 1, 4 do
        assert.equal(101, track(rawws.connect(s.port, "/ws")).status, "connection " .. i)
      end
      local idle = track(rawws.open_tcp(s.port)) -- counted from the accept
      assert.equal(base_fds + 5, wait_fds(s.pid, base_fds + 5), "the idle connection not accepted")
      local sixth = track(rawws.connect(s.port, "/ws"))
      assert.equal(503, sixth.status)
      idle:close_socket()
      local ok = track(connect_until_upgraded(function() return rawws.connect(s.port, "/ws") end))
      assert.equal(101, ok.status)
    end)

    it("default: the open-file limit minus 64 (ulimit -n 200 -> 136 connections, the 137th " ..
      "gets 503)", function()
      local dir = proc.tmpdir()
      local wrapper = dir .. "/nexlua-ulimit"
      local abs = BIN
      if abs:sub(1, 1) ~= "/" then
        local p = assert(io.popen("pwd"))
        abs = p:read("*l") .. "/" .. BIN
        p:close()
      end
      proc.write_file(wrapper, "#!/bin/sh\nulimit -n 200 || exit 9\nexec " .. proc.shquote(abs) ..
        " \"$@\"\n")
      os.execute("chmod +x " .. proc.shquote(wrapper))
      local srv = proc.start(APP, {}, { bin = wrapper })
      local ok, err = pcall(function()
        local conns = {}
        for i = 1, 136 do
          local c = track(rawws.connect(srv.port, "/ws"))
          assert.equal(101, c.status, "connection " .. i)
          conns[i] = c
        end
        local over = track(rawws.connect(srv.port, "/ws"))
        assert.equal(503, over.status)
        assert.is_not_nil(over.headers["retry-after"])
        echo_ok(conns[1])
        echo_ok(conns[136])
      end)
      for _, c in ipairs(clients) do c:close_socket() end
      clients = {}
      srv:stop()
      proc.rmdir(dir)
      assert(ok, err)
    end)
  end)

  -------------------------------------------------------------------------
  describe("--max-connections and the open-file limit", function()
    -- (ulimit -n sets the hard limit too, so nexlua cannot raise it)
    local function start_under(limit, args)
      local cmd = string.format("ulimit -n %d && exec %s examples/echo/app.lua --host 127.0.0.1 --port 0 %s " ..
        "& pid=$!; sleep 1; kill $pid; wait $pid", limit, BIN, args)
      local _, out, err = proc.run({ "sh", "-c", cmd }, 20)
      return out .. err
    end

    it("warns at start when the limit cannot hold the value given", function()
      local log = start_under(100, "--max-connections 500")
      assert.matches("%-%-max%-connections 500 is more than the open%-file limit %(100%) holds " ..
        "with room for files %(50%)", log)
    end)

    it("warns when the open connections come close to the limit", function()
      local log_path, pid_path = os.tmpname(), os.tmpname()
      os.execute(string.format("sh -c 'ulimit -n 100 && exec %s examples/echo/app.lua --host 127.0.0.1 " ..
        "--port 0 --max-connections 90' >%s 2>&1 </dev/null & echo $! >%s", BIN, log_path, pid_path))
      local function read(path)
        local f = io.open(path)
        local s = f and f:read("*a") or ""
        if f then f:close() end
        return s
      end
      local pid = proc.poll(function() return read(pid_path):match("%d+") end, 5)
      local conns = {}
      finally(function()
        for _, c in ipairs(conns) do c:close_socket() end
        if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
        os.remove(log_path)
        os.remove(pid_path)
      end)
      local port = tonumber(proc.poll(function() return read(log_path):match("listening on ws://[%d.]+:(%d+)") end, 10))
      assert(port, read(log_path))
      for i = 1, 75 do
        conns[i] = rawws.connect(port, "/ws")
        assert.equal(101, conns[i].status, "connection " .. i)
      end
      assert(proc.poll(function() return read(log_path):find("close to the open-file limit (100)", 1, true) end, 5),
        read(log_path))
    end)

    it("does not warn about the default, which fits a small limit", function()
      local log = start_under(100, "")
      assert.matches("listening on", log)
      assert.is_nil(log:find("open-file limit", 1, true), log)
    end)
  end)

  describe("--max-connections-per-ip", function()
    local s, open
    setup(function()
      s = server.start(APP, { "--max-connections-per-ip", "3" })
      open = server.start(APP)
    end)
    teardown(function()
      if s then s:stop() end
      if open then open:stop() end
    end)

    it("3: the 4th connection from 127.0.0.1 is closed at once, one from 127.0.0.2 works; " ..
      "closing one frees a place", function()
      local three = {}
      for i = 1, 3 do
        three[i] = track(connect_from("127.0.0.1", s.port))
        assert.equal(101, three[i].status)
      end
      local t0 = clock()
      local fourth = track(connect_from("127.0.0.1", s.port, "/ws", { no_request = true }))
      local closed, why = fourth:wait_tcp_close(3)
      assert.is_true(closed, why)
      assert.is_true(clock() - t0 < 1, "closed only after the handshake timeout")
      assert.equal("", fourth.trailing, "the server answered the over-cap connection")
      -- the same with a request sent: no 101
      local fifth = track(rawws.open_tcp(s.port))
      fifth:send_raw((rawws.build_request(s.port, "/ws", {})))
      assert.is_true((fifth:wait_tcp_close(3)))
      assert.is_nil(fifth.trailing:find("101", 1, true))

      local other = track(connect_from("127.0.0.2", s.port))
      assert.equal(101, other.status)
      echo_ok(other)
      for i = 1, 3 do echo_ok(three[i]) end

      three[3]:close(1000)
      three[3]:expect_close()
      three[3]:wait_tcp_close(3)
      local again = track(connect_until_upgraded(function()
        local ok, c = pcall(connect_from, "127.0.0.1", s.port)
        return ok and c or { status = 0, close_socket = function() end }
      end))
      assert.equal(101, again.status)
      echo_ok(again)
    end)

    it("default 0 (no cap): 50 connections from 127.0.0.1 are all served", function()
      local conns = {}
      for i = 1, 50 do
        conns[i] = track(rawws.connect(open.port, "/ws"))
        assert.equal(101, conns[i].status)
      end
      for i = 1, 50 do echo_ok(conns[i], "n" .. i) end
    end)
  end)

  -------------------------------------------------------------------------
  describe("--allowed-origins", function()
    local s, multi, any, default
    setup(function()
      s = server.start(APP, { "--allowed-origins", "https://good.example" })
      multi = server.start(APP, { "--allowed-origins",
        "https://a.example, https://b.example, https://ported.example:443, http://plain.example:80, " ..
        "wss://sock.example:443, ws://wsplain.example" })
      any = server.start(APP, { "--allowed-origins", "*" })
      default = server.start(APP)
    end)
    teardown(function()
      for _, x in ipairs({ s, multi, any, default }) do if x then x:stop() end end
    end)

    local function with_origin(srv, origin)
      return track(rawws.connect(srv.port, "/ws", { headers = origin and { Origin = origin } or {} }))
    end

    it("https://good.example: Origin https://evil.example gets 403, the good one and no " ..
      "Origin are accepted", function()
      local evil = with_origin(s, "https://evil.example")
      assert.equal(403, evil.status)
      local good = with_origin(s, "https://good.example")
      assert.equal(101, good.status)
      echo_ok(good)
      local none = with_origin(s, nil)
      assert.equal(101, none.status)
      echo_ok(none)
    end)

    it("matches the whole Origin, case-insensitively", function()
      assert.equal(101, with_origin(s, "HTTPS://GOOD.EXAMPLE").status)
      for _, bad in ipairs({ "https://good.example.evil", "http://good.example",
        "https://good.example:8443", "https://sub.good.example", "null", "" }) do
        assert.equal(403, with_origin(s, bad).status, "Origin " .. bad)
      end
    end)

    it("the blanks around the Origin's value are not part of it (RFC 9112 §5.1)", function()
      for _, padded in ipairs({ "https://good.example ", "https://good.example\t",
        "  https://good.example \t ", "\thttps://good.example" }) do
        local c = with_origin(s, padded)
        assert.equal(101, c.status, string.format("Origin %q", padded))
        echo_ok(c)
      end
      assert.equal(403, with_origin(s, "https://good.example x").status)
    end)

    it("a scheme's default port, in the entry or the Origin, is the same origin", function()
      assert.equal(101, with_origin(s, "https://good.example:443").status)
      assert.equal(101, with_origin(multi, "https://ported.example").status)
      assert.equal(101, with_origin(multi, "https://ported.example:443").status)
      assert.equal(101, with_origin(multi, "http://plain.example").status)
      assert.equal(403, with_origin(multi, "http://ported.example").status)
      assert.equal(403, with_origin(multi, "https://plain.example").status)
      assert.equal(403, with_origin(multi, "https://ported.example:4430").status)
      assert.equal(403, with_origin(s, "http://good.example:443").status)
      assert.equal(101, with_origin(multi, "wss://sock.example").status)
      assert.equal(101, with_origin(multi, "ws://wsplain.example:80").status)
      assert.equal(403, with_origin(multi, "ws://sock.example").status)
    end)

    it("a comma list allows each entry", function()
      assert.equal(101, with_origin(multi, "https://a.example").status)
      assert.equal(101, with_origin(multi, "https://b.example").status)
      assert.equal(403, with_origin(multi, "https://c.example").status)
    end)

    it("two Origin lines get 403 whichever comes first (a browser sends one); '*' allows them",
      function()
      local function two(srv, a, b)
        return track(rawws.connect(srv.port, "/ws", { headers = { { "Origin", a }, { "Origin", b } } }))
      end
      assert.equal(403, two(s, "https://good.example", "https://evil.example").status)
      assert.equal(403, two(s, "https://evil.example", "https://good.example").status)
      assert.equal(403, two(s, "https://good.example", "https://good.example").status)
      assert.equal(101, two(any, "https://good.example", "https://evil.example").status)
    end)

    it("'*' allows any Origin; the default (no flag) allows any Origin", function()
      assert.equal(101, with_origin(any, "https://evil.example").status)
      assert.equal(101, with_origin(default, "https://evil.example").status)
      assert.equal(101, with_origin(default, nil).status)
    end)
  end)

  -------------------------------------------------------------------------
  describe("--max-fragments", function()
    local s, default
    setup(function()
      s = server.start(APP, { "--max-fragments", "10" })
      default = server.start(APP)
    end)
    teardown(function()
      if s then s:stop() end
      if default then default:stop() end
    end)

    it("10: a message in 10 fragments is echoed, twice in a row (the count is per message)",
      function()
      local c = track(rawws.connect(s.port, "/ws"))
      local msg = string.rep("0123456789", 10)
      for _ = 1, 2 do
        c:send_raw(fragments(OP.TEXT, msg, 10))
        c:expect_echo(msg, OP.TEXT)
      end
    end)

    it("10: pings between the fragments do not count", function()
      local c = track(rawws.connect(s.port, "/ws"))
      local msg = string.rep("abcdefghij", 10)
      local wire = {}
      for i = 0, 9 do
        wire[#wire + 1] = rawws.build_frame { opcode = i == 0 and OP.BINARY or OP.CONTINUATION,
          fin = i == 9, payload = msg:sub(i * 10 + 1, i * 10 + 10) }
        wire[#wire + 1] = rawws.build_frame { opcode = OP.PING, payload = "p" .. i }
      end
      c:send_raw(table.concat(wire))
      for i = 0, 9 do c:expect_pong("p" .. i) end
      c:expect_echo(msg, OP.BINARY)
    end)

    it("10: an 11-fragment message gets 1008, and no echo", function()
      local c = track(rawws.connect(s.port, "/ws"))
      c:send_raw(fragments(OP.TEXT, string.rep("x", 110), 10))
      c:expect_failure(1008)
    end)

    it("10: a message before an 11-fragment one in the same segment is echoed first", function()
      local c = track(rawws.connect(s.port, "/ws"))
      c:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = "before" } ..
        fragments(OP.TEXT, string.rep("x", 110), 10))
      c:expect_echo("before", OP.TEXT)
      c:expect_failure(1008)
    end)

    it("0: no limit, 100001 one-byte fragments are echoed", function()
      local none = server.start(APP, { "--max-fragments", "0" })
      finally(function() none:stop() end)
      local c = track(rawws.connect(none.port, "/ws"))
      c:send_raw(one_byte_fragments(100001))
      c:expect_echo(string.rep("x", 100001), OP.TEXT, 20)
    end)

    it("default 100000: 100000 one-byte fragments are echoed, 100001 get 1008", function()
      local c = track(rawws.connect(default.port, "/ws"))
      c:send_raw(one_byte_fragments(100000))
      c:expect_echo(string.rep("x", 100000), OP.TEXT, 20)
      local d = track(rawws.connect(default.port, "/ws"))
      d:send_raw(one_byte_fragments(100001))
      d:expect_failure(1008, 20)
    end)

    -- A message of many small fragments must grow its buffer geometrically:
    -- growing it to the exact size at every fragment copied it over and over
    -- (quadratic where realloc cannot grow in place, as under ASan).
    it("default: a 4 MiB message in 64-byte fragments (65536 frames) is echoed", function()
      local c = track(rawws.connect(default.port, "/ws", { timeout = 30 }))
      local unit = {}
      for i = 0, 255 do unit[#unit + 1] = string.char((i * 31 + 7) % 256) end
      local msg = string.rep(table.concat(unit), 4 * MiB / 256)
      local wire = fragments(OP.BINARY, msg, 64)
      local t0 = clock()
      c:send_raw(wire)
      c:expect_echo(msg, OP.BINARY, 10)
      io.stderr:write(string.format("\n[max-fragments] 4 MiB in 65536 fragments echoed in %.2f s\n",
        clock() - t0))
    end)
  end)

  -------------------------------------------------------------------------
  describe("--write-limit", function()
    -- Reads everything until the server closes TCP; returns bytes, frames
    -- seen, whether a close frame came, and whether the TCP close came.
    local function drain(c, timeout)
      local deadline = clock() + timeout
      local bytes, frames, close = 0, 0, false
      while clock() < deadline do
        local f, err = c:recv_frame(math.max(0, deadline - clock()))
        if not f then return bytes, frames, close, err == "closed" end
        frames = frames + 1
        bytes = bytes + f.length
        if f.opcode == OP.CLOSE then close = true end
      end
      return bytes, frames, close, false
    end

    -- The connection's own handler (and the tasks it spawned) wait at the
    -- high-water mark (kept under half the limit) instead; the limit is for
    -- the senders that never wait: other connections' handlers and tasks
    -- the handler did not spawn (broadcasts; here, one started by on_startup).
    it("1048576: a task sending 8 MiB to a client that never reads: the connection is " ..
      "dropped (TCP close, no close frame), the app sees 1006, a warning is logged, others " ..
      "are served", function()
      local s = server.start(APP, { "--write-limit", tostring(MiB) })
      local ok, err = pcall(function()
        local other = track(rawws.connect(s.port, "/ws"))
        local c = track(rawws.connect(s.port, "/blast?mb=8&task=1"))
        c:send_text("go")
        assert(s:wait_log("dropping a connection that does not read fast enough %((%d+) bytes buffered%)", 10),
          "no warning in the log:\n" .. s:log())
        assert(s:wait_log("blast ended: sent=%d+ code=1006", 5),
          "the app did not see 1006:\n" .. s:log())
        local buffered = tonumber(s:log():match("dropping a connection that does not read fast enough %((%d+)"))
        assert.is_true(buffered <= MiB, buffered .. " bytes buffered over the 1 MiB limit")
        echo_ok(other, "still served while the blast is dropped")
        local bytes, frames, close, tcp_closed = drain(c, 10)
        io.stderr:write(string.format("\n[write-limit 1 MiB] dropped with %d bytes buffered; the " ..
          "client then read %d bytes in %d frames before the TCP close\n", buffered, bytes, frames))
        assert.is_true(tcp_closed, "the TCP connection was not closed")
        assert.is_false(close, "a close frame was sent to a dropped connection")
        assert.is_true(bytes < 8 * MiB)
        echo_ok(other, "still served after")
      end)
      for _, c in ipairs(clients) do c:close_socket() end
      clients = {}
      s:stop()
      assert(ok, err)
    end)

    it("default 16 MiB: sends from another task (which never wait) are dropped at 16 MiB, " ..
      "server RSS stays under 200 MB", function()
      local s = server.start(APP)
      local ok, err = pcall(function()
        local other = track(rawws.connect(s.port, "/ws"))
        local before = proc.status_kb(s.pid, "VmRSS")
        local c = track(rawws.connect(s.port, "/blast?mb=100&task=1"))
        c:send_text("go")
        assert(s:wait_log("dropping a connection that does not read fast enough %((%d+) bytes buffered%)", 15),
          "no warning in the log:\n" .. s:log())
        local peak = proc.status_kb(s.pid, "VmHWM")
        local buffered = tonumber(s:log():match("dropping a connection that does not read fast enough %((%d+)"))
        assert.is_true(buffered <= 16 * MiB and buffered > 8 * MiB, tostring(buffered))
        assert(s:wait_log("blast ended: sent=%d+ code=1006", 5), s:log())
        echo_ok(other)
        socket.sleep(0.3)
        local after = proc.status_kb(s.pid, "VmRSS")
        io.stderr:write(string.format("\n[write-limit default] dropped at %d bytes buffered; RSS " ..
          "before %d kB, peak (VmHWM) %d kB, after %d kB\n", buffered, before, peak, after))
        if not SANITIZED then
          assert.is_true(peak < 200 * 1024, "peak RSS " .. peak .. " kB")
          assert.is_true(after - before < 16 * 1024, string.format(
            "the dropped connection's buffer was not released: %d -> %d kB", before, after))
        end
      end)
      for _, c in ipairs(clients) do c:close_socket() end
      clients = {}
      s:stop()
      assert(ok, err)
    end)

    -- Reads 8 MiB from /blast on a server started with args; returns the
    -- bytes read and the server log.
    local function read_blast(args)
      local s = server.start(APP, args)
      local total = 0
      local ok, err = pcall(function()
        local c = track(rawws.connect(s.port, "/blast?mb=8", { timeout = 20 }))
        c:send_text("go")
        while total < 8 * MiB do
          local f = c:recv_frame(10)
          if not f then break end
          assert.equal(OP.BINARY, f.opcode)
          total = total + f.length
        end
      end)
      for _, c in ipairs(clients) do c:close_socket() end
      clients = {}
      s:stop()
      assert(ok, err)
      return total, s:log()
    end

    it("a client that reads gets all 8 MiB with --write-limit 1048576 --write-high-water " ..
      "262144 (the handler waits for it)", function()
      local total, log = read_blast({ "--write-limit", tostring(MiB), "--write-high-water",
        tostring(256 * KiB) })
      assert.equal(8 * MiB, total)
      assert.is_nil(log:find("dropping a connection", 1, true))
    end)

    -- A handler's own sends wait at the high-water mark (kept under half of
    -- --write-limit) and what the socket takes does not count: a client that
    -- reads is never dropped by the write limit.
    it("a client that reads gets all 8 MiB with --write-limit 1048576 and the default " ..
      "--write-high-water", function()
      local total, log = read_blast({ "--write-limit", tostring(MiB) })
      assert.is_nil(log:find("dropping a connection", 1, true),
        "a reading client was dropped after receiving " .. total .. " bytes:\n" .. log)
      assert.equal(8 * MiB, total)
    end)
  end)

  -------------------------------------------------------------------------
  describe("--max-header-size", function()
    local s, tiny
    setup(function()
      s = server.start(APP, { "--max-header-size", "1024" })
      tiny = server.start(APP, { "--max-header-size", "10" })
    end)
    teardown(function()
      if s then s:stop() end
      if tiny then tiny:stop() end
    end)

    local function request_of(port, size)
      local base = rawws.build_request(port, "/ws", { headers = { ["X-Pad"] = "" } })
      local pad = size - #base
      assert(pad >= 0)
      return (rawws.build_request(port, "/ws", { headers = { ["X-Pad"] = string.rep("p", pad) } }))
    end

    it("1024: a 1000-byte request is upgraded, a 1100-byte one gets 431", function()
      local req = request_of(s.port, 1000)
      assert.equal(1000, #req)
      local c = track(rawws.connect(s.port, "/ws", { raw_request = req }))
      assert.equal(101, c.status)
      echo_ok(c)
      local status = rawws.http(s.port, request_of(s.port, 1100))
      assert.equal(431, status)
    end)

    -- The limit is on the head as sent (line ends, ": " and all), also when
    -- it arrives whole in one read.
    it("1024: exactly 1024 bytes are upgraded, 1025 get 431, whole in one write or not",
      function()
      local c = track(rawws.connect(s.port, "/ws", { raw_request = request_of(s.port, 1024) }))
      assert.equal(101, c.status)
      assert.equal(431, (rawws.http(s.port, request_of(s.port, 1025))))
      -- many short header lines: their line ends count
      local lines, many = {}, ""
      while #many <= 1024 do
        lines[#lines + 1] = { "X-" .. #lines, "v" }
        many = rawws.build_request(s.port, "/ws", { headers = lines })
      end
      assert.equal(431, (rawws.http(s.port, many)))
    end)

    -- Only the head counts: a body, and frames after it, read later, do not.
    it("1024: a request with a body, its head in one read and body and a 600-byte " ..
      "frame in the next, is upgraded", function()
      local head = rawws.build_request(s.port, "/ws", { headers = { ["Content-Length"] = "3" } })
      local c = track(rawws.open_tcp(s.port))
      c:send_raw(head)
      socket.sleep(0.05)
      local msg = string.rep("m", 600)
      c:send_raw("abc" .. rawws.build_frame { opcode = OP.TEXT, payload = msg })
      assert.equal(101, (c:read_http_response()))
      c:expect_echo(msg, OP.TEXT)
    end)

    -- A client must wait for the 101 (RFC 6455 §4.1): what it sends before
    -- is kept up to the head's limit, past it the connection is dropped,
    -- and the debug log says why.
    it("1024: frames sent before the 101 are kept up to 1024 bytes, past it the connection " ..
      "is dropped with a debug entry", function()
      local d = server.start(APP, { "--max-header-size", "1024", "--log-level", "debug" })
      local ok, err = pcall(function()
        local small = track(rawws.open_tcp(d.port))
        small:send_raw(rawws.build_request(d.port, "/slow_accept") ..
          rawws.build_frame { opcode = OP.TEXT, payload = string.rep("s", 900) })
        assert.equal(101, (small:read_http_response()))
        small:expect_echo(string.rep("s", 900), OP.TEXT)
        small:close_socket()
        assert.is_nil(d:log():find("before the handshake's answer", 1, true))

        local big = track(rawws.open_tcp(d.port))
        big:send_raw(rawws.build_request(d.port, "/slow_accept") ..
          rawws.build_frame { opcode = OP.TEXT, payload = string.rep("b", 1100) })
        assert.truthy(big:wait_tcp_close(3))
        assert.equal("", big.trailing) -- no 101, no response at all
        assert.truthy(d:wait_log("sent more than %-%-max%-header%-size %(1024%) before the " ..
          "handshake's answer", 3), d:log())

        -- the same when the frames come in a later read (here: 2 x 600 bytes)
        local later = track(rawws.open_tcp(d.port))
        later:send_raw((rawws.build_request(d.port, "/slow_accept")))
        socket.sleep(0.05)
        later:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = string.rep("l", 600) })
        socket.sleep(0.05)
        later:send_raw(rawws.build_frame { opcode = OP.TEXT, payload = string.rep("l", 600) })
        assert.truthy(later:wait_tcp_close(3))
        assert.equal("", later.trailing)
        local _, n = d:log():gsub("before the handshake's answer", "")
        assert.equal(2, n)
      end)
      d:stop()
      assert(ok, err)
    end)

    it("10 is raised to the minimum of 256: a 200-byte request is upgraded, 300 bytes get 431",
      function()
      local c = track(rawws.connect(tiny.port, "/ws", { raw_request = request_of(tiny.port, 200) }))
      assert.equal(101, c.status)
      assert.equal(431, (rawws.http(tiny.port, request_of(tiny.port, 300))))
    end)
  end)
end)
