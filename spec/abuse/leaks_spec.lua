-- Leak check under AddressSanitizer/LeakSanitizer: the sanitizer build of
-- nexlua (build-asan/nexlua, or $NEXLUA_ASAN_BIN) serves 3,000 connections
-- that end in every way a connection can end -- clean closes, aborts,
-- compressed echoes, protocol failures (1002/1007/1009), a write-limit drop,
-- refused handshakes (403/404), bare TCP, handshake timeouts, TLS churn --
-- with some still open at SIGTERM. The process must exit 0 and its stderr
-- must hold no LeakSanitizer (or other sanitizer) report.
--
-- Build the binary with
--   cmake -S . -B build-asan -DNEXLUA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
--   cmake --build build-asan -j2 --target nexlua
-- (scripts/test does this with NEXLUA_SANITIZE=1).
local proc = require "helpers.proc"
local rawws = require "helpers.rawws"
local zlib = require "helpers.zlib"
local socket = require "socket"
local OP = rawws.OP

local BIN = os.getenv("NEXLUA_ASAN_BIN") or "build-asan/nexlua"
local APP = "spec/apps/hardening_app.lua"
local PYTHON = "/usr/bin/python3"
local MiB = 1024 * 1024
local ASAN_ENV = { ASAN_OPTIONS = "detect_leaks=1:abort_on_error=0:halt_on_error=1" }
local SANITIZER_REPORT = { "LeakSanitizer", "AddressSanitizer", "runtime error:",
  "UndefinedBehaviorSanitizer" }

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function instrumented(path)
  return proc.exec_ok("grep -q __asan_init " .. proc.shquote(path) .. " 2>/dev/null")
end

local function assert_clean_exit(s, what)
  local code = s:stop(30)
  local log = s:log()
  for _, pat in ipairs(SANITIZER_REPORT) do
    local at = log:find(pat, 1, true)
    assert(not at, what .. ": sanitizer report in the server's stderr:\n" ..
      log:sub(math.max(1, (at or 1) - 200), (at or 1) + 4000))
  end
  assert.equal(0, code, what .. ": exit code " .. tostring(code) .. " after SIGTERM; log:\n" ..
    log:sub(-3000))
  return log
end

describe("leaks (ASan/LSan build)", function()
  if not exists(BIN) then
    it("needs the sanitizer build", function()
      pending(BIN .. " does not exist: build it with cmake -S . -B build-asan " ..
        "-DNEXLUA_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug && cmake --build build-asan --target " ..
        "nexlua (or set NEXLUA_ASAN_BIN)")
    end)
    return
  end

  it(BIN .. " is instrumented with AddressSanitizer", function()
    assert.is_true(instrumented(BIN), BIN .. " has no __asan_init: not a sanitizer build")
  end)

  it("2,700 plain connections ending every way, some open at SIGTERM: exit 0, no leak report",
    function()
    local s = proc.start(APP, {
      "--close-timeout", "1", "--handshake-timeout", "1", "--graceful-timeout", "5",
      "--max-message-size", tostring(MiB), "--write-limit", tostring(MiB),
    }, { bin = BIN, env = ASAN_ENV })
    local port = s.port
    local PMD = { { "Sec-WebSocket-Extensions", "permessage-deflate" } }
    local bomb = zlib.deflate(string.rep("\0", 4 * MiB), { level = 9 })
    local text = string.rep("compressible text ", 100)
    local counts = {}
    local open_at_end = {}
    local ok, err = pcall(function()
      local function ws(headers)
        local c = rawws.connect(port, "/ws", { headers = headers })
        assert.equal(101, c.status)
        return c
      end
      local function deflate_reply(c, msg)
        local f = assert(c:recv_frame(5))
        assert.is_true(f.rsv1)
        assert.equal(msg, zlib.inflate(f.payload))
      end
      local MODES = {
        clean = function()
          local c = ws()
          c:send_text("hello")
          c:expect_echo("hello", OP.TEXT)
          c:close(1000)
          c:expect_close()
          c:close_socket()
        end,
        abort = function()
          local c = ws()
          c:send_text("hello")
          c:close_socket()
        end,
        deflate_clean = function()
          local c = ws(PMD)
          c:send_frame { opcode = OP.TEXT, rsv1 = true, payload = zlib.deflate(text) }
          deflate_reply(c, text)
          c:close(1000)
          c:expect_close()
          c:close_socket()
        end,
        deflate_abort = function()
          local c = ws(PMD)
          c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = zlib.deflate(text) }
          deflate_reply(c, text)
          c:send_frame { opcode = OP.TEXT, rsv1 = true, fin = false,
            payload = zlib.deflate(text):sub(1, 20) }
          c:close_socket()
        end,
        bad_deflate = function()
          local c = ws(PMD)
          c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = "\255\255\255\255" }
          c:expect_failure(1007)
          c:close_socket()
        end,
        bomb = function()
          local c = ws(PMD)
          c:send_frame { opcode = OP.BINARY, rsv1 = true, payload = bomb }
          c:expect_failure(1009)
          c:close_socket()
        end,
        too_big = function()
          local c = ws()
          c:send_frame { opcode = OP.BINARY, length_override = 2 * MiB, header_only = true }
          c:expect_failure(1009)
          c:close_socket()
        end,
        protocol = function()
          local c = ws()
          c:send_frame { opcode = OP.TEXT, rsv2 = true, payload = "x" }
          c:expect_failure(1002)
          c:close_socket()
        end,
        mid_frame = function()
          local c = ws()
          c:send_frame { opcode = OP.BINARY, fin = false, payload = string.rep("f", 3000) }
          c:send_frame { opcode = OP.CONTINUATION, length_override = 1000, header_only = true }
          c:send_raw("partial")
          c:close_socket()
        end,
        large = function()
          local c = ws(PMD)
          local msg = rawws.random_bytes(4000):rep(100)
          c:send_binary(msg)
          local f = assert(c:recv_frame(10))
          assert.equal(msg, zlib.inflate(f.payload))
          c:close_socket()
        end,
        refused = function()
          local c = rawws.connect(port, "/nowhere")
          assert.equal(404, c.status)
          c:close_socket()
          local d = rawws.open_tcp(port)
          d:send_raw("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n" ..
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
          assert.equal(400, (d:read_http_response()))
          d:close_socket()
        end,
        topic_clean = function()
          local topic = "/topic/t" .. math.random(7)
          local a = rawws.connect(port, topic)
          local b = rawws.connect(port, topic, { headers = PMD })
          assert.equal(101, a.status)
          assert.equal(101, b.status)
          a:send_text(text)
          a:expect_echo(text, OP.TEXT)
          deflate_reply(b, text)
          a:close(1000)
          a:expect_close()
          a:close_socket()
          b:close_socket()
        end,
        bare_tcp = function()
          local c = rawws.open_tcp(port)
          c:send_raw("GET /ws HTTP/1.1\r\nHost: x\r\n")
          c:close_socket()
        end,
      }
      local order = { "clean", "abort", "deflate_clean", "deflate_abort", "bad_deflate", "bomb",
        "too_big", "protocol", "mid_frame", "large", "refused", "bare_tcp", "clean", "abort",
        "deflate_clean", "topic_clean" }
      local n = 0
      local i = 0
      while n < 2700 do
        i = i + 1
        local mode = order[(i - 1) % #order + 1]
        MODES[mode]()
        counts[mode] = (counts[mode] or 0) + 1
        n = n + ((mode == "refused" or mode == "topic_clean") and 2 or 1)
        if i % 300 == 0 then
          -- a write-limit drop: 16 MiB (more than the kernel buffers) to a client that does not read
          local c = rawws.connect(port, "/blast?mb=16&task=1")
          c:send_text("go")
          assert(s:wait_log("dropping a connection that does not read", 10))
          c:close_socket()
          counts.write_limit_drop = (counts.write_limit_drop or 0) + 1
          n = n + 1
        end
      end
      counts.total = n
      -- still open at SIGTERM: idle, mid-message, half-open, a blast in progress
      for _ = 1, 5 do open_at_end[#open_at_end + 1] = ws(PMD) end
      for _ = 1, 3 do
        local c = ws()
        c:send_frame { opcode = OP.TEXT, fin = false, payload = "part one" }
        open_at_end[#open_at_end + 1] = c
      end
      for _ = 1, 3 do open_at_end[#open_at_end + 1] = rawws.open_tcp(port) end
      for t = 1, 4 do -- subscribed to topics at exit
        local c = rawws.connect(port, "/topic/open" .. t)
        assert.equal(101, c.status)
        open_at_end[#open_at_end + 1] = c
      end
      local b = rawws.connect(port, "/blast?mb=1&chunk=4096")
      b:send_text("go")
      open_at_end[#open_at_end + 1] = b
      socket.sleep(0.2)
    end)
    local summary = {}
    for k, v in pairs(counts) do summary[#summary + 1] = k .. "=" .. v end
    table.sort(summary)
    io.stderr:write("\n[leaks] plain connections: " .. table.concat(summary, " ") ..
      "; " .. #open_at_end .. " open at SIGTERM\n")
    local log = assert_clean_exit(s, "plain")
    for _, c in ipairs(open_at_end) do c:close_socket() end
    assert(ok, err)
    assert.matches("SIGTERM received", log, 1, true)
  end)

  -- At exit, core/runtime.c nx_rt_close() must free what each listener's
  -- settings own, not only the listener (these leaked once):
  --   * l->cfg.allowed_origins, strdup'ed in core/lua_core.c l_listen (line 82)
  --     (the error paths of l_listen that free(l) after it leak it too);
  --   * l->per_ip, the per-address table calloc'ed in core/ipcount.c
  --     nx_ipcount_new (from core/conn.c nx_conn_accepted) -- 32 KiB;
  --   * l->cfg.tls, the SSL_CTX with its certificate and key
  --     (nx_tls_ctx_free is never called).
  it("50 connections with --allowed-origins (half refused with 403), then SIGTERM: exit 0, " ..
    "no leak report", function()
    local s = proc.start(APP, { "--allowed-origins", "https://ok.example" },
      { bin = BIN, env = ASAN_ENV })
    local ok, err = pcall(function()
      for i = 1, 50 do
        local evil = i % 2 == 0
        local c = rawws.connect(s.port, "/ws",
          { headers = { Origin = evil and "https://evil.example" or "https://ok.example" } })
        assert.equal(evil and 403 or 101, c.status)
        c:close_socket()
      end
    end)
    assert_clean_exit(s, "--allowed-origins")
    assert(ok, err)
  end)

  it("50 connections with --max-connections-per-ip 10 (over-cap ones closed at once), then " ..
    "SIGTERM: exit 0, no leak report", function()
    local s = proc.start(APP, { "--max-connections-per-ip", "10" }, { bin = BIN, env = ASAN_ENV })
    local held, refused = {}, 0
    local ok, err = pcall(function()
      for i = 1, 50 do
        local okc, c = pcall(rawws.connect, s.port, "/ws", { timeout = 3 })
        if okc and c.status == 101 then
          held[#held + 1] = c
        else
          refused = refused + 1
        end
        if i % 25 == 0 then
          for _, h in ipairs(held) do h:close_socket() end
          held = {}
          socket.sleep(0.1)
        end
      end
      assert.equal(30, refused)
    end)
    assert_clean_exit(s, "--max-connections-per-ip")
    assert(ok, err)
  end)

  it("300 TLS connections (compressed, plain, aborted, handshake-only, broken) then SIGTERM: " ..
    "exit 0, no leak report", function()
    local dir = proc.tmpdir()
    local cert, key = dir .. "/cert.pem", dir .. "/key.pem"
    local code, out, errout = proc.run({ "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
      "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1" }, 30)
    assert(code == 0, "openssl req failed: " .. out .. errout)
    local s = proc.start(APP, { "--tls-cert", cert, "--tls-key", key, "--close-timeout", "1",
      "--handshake-timeout", "1", "--graceful-timeout", "5" },
      { bin = BIN, env = ASAN_ENV, scheme = "wss" })
    local ok, err = pcall(function()
      local rc, o, e = proc.run({ PYTHON, "spec/abuse/tls_churn.py", tostring(s.port), cert, "300" },
        120)
      io.stderr:write("\n[leaks] TLS churn: " .. (o:match("done[^\n]*") or "?") .. "\n")
      assert(rc == 0, "tls_churn.py exit " .. tostring(rc) .. ":\n" .. o .. e)
    end)
    -- one TLS connection left open at SIGTERM
    local idle = rawws.open_tcp(s.port)
    assert_clean_exit(s, "TLS")
    idle:close_socket()
    proc.rmdir(dir)
    assert(ok, err)
  end)

  -- --redis: hiredis contexts on the loop (their poll handles close through
  -- the adapter), a Redis lost and back (contexts freed by hiredis, timers),
  -- and subscribed connections at SIGTERM.
  it("two --redis nodes with subscribed connections, a Redis restart, then SIGTERM: exit 0, " ..
    "no leak report", function()
    local redis = require "helpers.redis"
    local r = redis.start()
    local args = { "--redis", r.url, "--close-timeout", "1", "--graceful-timeout", "5" }
    local a, b
    local started, serr = pcall(function()
      a = proc.start("spec/apps/topics_app.lua", args, { bin = BIN, env = ASAN_ENV })
      b = proc.start("spec/apps/topics_app.lua", args, { bin = BIN, env = ASAN_ENV })
    end)
    if not started then -- (the Redis server is this spec's to stop, whatever failed)
      if a then a:stop() end
      r:stop()
      error(serr, 0)
    end
    local held = {}
    local ok, err = pcall(function()
      local function join(s, topic)
        local c = rawws.connect(s.port, "/t/" .. topic)
        assert.equal(101, c.status)
        assert.equal("subscribed", c:recv_message(10))
        held[#held + 1] = c
        return c
      end
      local a1, b1 = join(a, "t1"), join(b, "t1")
      for i = 2, 20 do join(i % 2 == 0 and a or b, "t" .. i) end
      assert(proc.poll(function() return r:numsub("nexlua:t1") == 2 end, 20), "not subscribed")
      local big = string.rep("x", 5000)
      b1:send_text("all:" .. big)
      assert(b1:recv_message(10) == big and b1:recv_message(10) == "sent 1", "b1: own publish")
      assert(a1:recv_message(10) == big, "a1: not the message of b")
      a1:send_text("bin:\0bin")
      assert.equal("\0bin", a1:recv_message(10))
      assert.equal("sent 1", a1:recv_message(10))
      assert.equal("\0bin", b1:recv_message(10))
      r:kill()
      assert(a:wait_log("subscriber connection", 20), "no warning about the lost Redis")
      a1:send_text("all:dropped")
      r:restart()
      assert(proc.poll(function() return r:numsub("nexlua:t1") == 2 end, 30), "not subscribed again")
      assert(a:wait_log("connected again", 30), "no reconnect in the log")
    end)
    local a_ok, a_err = pcall(assert_clean_exit, a, "--redis node a")
    assert_clean_exit(b, "--redis node b")
    for _, c in ipairs(held) do c:close_socket() end
    r:stop()
    assert(ok, err)
    assert(a_ok, a_err)
  end)
end)
