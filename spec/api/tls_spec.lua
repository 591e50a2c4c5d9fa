-- TLS (wss://) with --tls-cert/--tls-key: a self-signed certificate made
-- with the openssl CLI; independent clients (Python websockets with the ssl
-- module, Node's ws) do echo round trips up to 4 MiB, with and without
-- permessage-deflate; TLS 1.1 is refused, TLS 1.2 and 1.3 served; plain
-- ws:// to the TLS port gets no HTTP answer; a client that never finishes
-- the TLS handshake is closed at --handshake-timeout; bad certificate/key
-- flags are one clear error and a non-zero exit.
local proc = require "helpers.proc"
local rawws = require "helpers.rawws"
local clock = require "helpers.clock"

local BIN = os.getenv("NEXLUA_BIN") or "build/nexlua"
local APP = "spec/apps/hardening_app.lua"
local PYTHON = "/usr/bin/python3" -- Debian's, with python3-websockets
local HANDSHAKE_TIMEOUT = 2
local q = proc.shquote

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"rc=$?\""))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return rc, out:gsub("rc=%d+%s*$", "")
end

-- Lines "ok - NAME" / "not ok - NAME: detail" -> { [NAME] = true | detail }
local function parse_checks(out)
  local res = {}
  for line in out:gmatch("[^\n]+") do
    local name = line:match("^ok %- (.+)$")
    if name then res[name] = true end
    local bad, detail = line:match("^not ok %- (.-): (.*)$")
    if bad then res[bad] = detail end
  end
  return res
end

describe("TLS: wss://", function()
  local dir, cert, key, other_key, junk
  local s

  setup(function()
    dir = proc.tmpdir()
    cert, key = dir .. "/cert.pem", dir .. "/key.pem"
    other_key, junk = dir .. "/other-key.pem", dir .. "/junk.pem"
    local rc, out = sh(string.format(
      "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 -subj /CN=localhost " ..
      "-addext subjectAltName=DNS:localhost,IP:127.0.0.1", q(key), q(cert)))
    assert(rc == 0, "openssl req failed: " .. out)
    rc, out = sh(string.format("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s",
      q(other_key)))
    assert(rc == 0, "openssl genpkey failed: " .. out)
    proc.write_file(junk, "this is not a PEM file\n")
    s = proc.start(APP, { "--tls-cert", cert, "--tls-key", key,
      "--handshake-timeout", tostring(HANDSHAKE_TIMEOUT) }, { scheme = "wss" })
  end)

  teardown(function()
    if s then assert.equal(0, s:stop(), "server did not exit 0 on SIGTERM") end
    proc.rmdir(dir)
  end)

  after_each(function()
    assert.is_true(s:alive(), "server process died; log:\n" .. s:log())
  end)

  it("logs 'listening on wss://127.0.0.1:PORT'", function()
    assert.matches("listening on wss://127%.0%.0%.1:" .. s.port, s:log())
  end)

  describe("Python websockets + ssl (certificate and host name verified)", function()
    local results, output
    local NAMES = {
      "TLS 1.2+ negotiated, certificate and host name verified",
      "small text and binary echo without compression",
      "1 MiB and 4 MiB echo without compression",
      "permessage-deflate over TLS, 1 MiB echo",
      "clean close 1000 over TLS",
      "20 concurrent TLS clients x 20 echoes",
      "TLS 1.1-only client refused",
      "TLS 1.2-only client served",
      "an untrusted certificate is refused by the client (sanity)",
      "a message, a close and close_notify in one write: the echo, then close 4001",
      "a message, a violation and close_notify in one write: the echo, then close 1002",
      "3000 messages, a close and close_notify in one write: 3000 echoes, then close 4001",
    }
    local function run()
      if not results then
        local _
        _, output = sh(string.format("timeout -k 2 90 %s spec/api/tls_client.py %s %s", PYTHON,
          q("wss://127.0.0.1:" .. s.port .. "/ws"), q(cert)))
        results = parse_checks(output)
        local tls = output:match("# negotiated ([^\n]+)")
        if tls then io.stderr:write("\n[tls] python client: negotiated " .. tls .. "\n") end
      end
      return results
    end
    for _, name in ipairs(NAMES) do
      it(name, function()
        local r = run()[name]
        assert(r ~= nil, "check did not run; client output:\n" .. output)
        assert(r == true, tostring(r))
      end)
    end
  end)

  describe("Node ws over Node's TLS", function()
    local results, output
    local NAMES = {
      "permessage-deflate negotiated over TLS, 1 MiB binary and text echo",
      "no compression over TLS, 1 MiB binary echo and 100 small ones",
      "clean close 1000 over TLS",
      "TLS 1.1-only client refused",
    }
    local function run()
      if not results then
        local _
        _, output = sh(string.format("timeout -k 2 60 node spec/api/tls_client.js %s %s",
          q("wss://127.0.0.1:" .. s.port .. "/ws"), q(cert)))
        results = parse_checks(output)
      end
      return results
    end
    for _, name in ipairs(NAMES) do
      it(name, function()
        local r = run()[name]
        assert(r ~= nil, "check did not run; client output:\n" .. output)
        assert(r == true, tostring(r))
      end)
    end
  end)

  describe("protocol versions (openssl s_client)", function()
    local function s_client(flags)
      return sh(string.format("echo | timeout -k 1 10 openssl s_client -connect 127.0.0.1:%d " ..
        "-servername localhost %s", s.port, flags))
    end

    it("refuses TLS 1.1 with a protocol_version alert, even from a client allowed to offer it",
      function()
      local rc, out = s_client("-tls1_1 -cipher DEFAULT:@SECLEVEL=0")
      assert.is_true(rc ~= 0, "s_client -tls1_1 succeeded:\n" .. out)
      assert.matches("alert protocol version", out, 1, true)
      assert.matches("Cipher is (NONE)", out, 1, true)
    end)

    it("refuses TLS 1.0", function()
      local rc, out = s_client("-tls1 -cipher DEFAULT:@SECLEVEL=0")
      assert.is_true(rc ~= 0, "s_client -tls1 succeeded:\n" .. out)
    end)

    it("serves TLS 1.2 with a forward-secret AEAD suite", function()
      local rc, out = s_client("-tls1_2")
      assert.equal(0, rc, out)
      assert.matches("Protocol%s*:%s*TLSv1%.2", out)
      local cipher = out:match("Cipher%s*:%s*(%S+)")
      assert.matches("^ECDHE%-", cipher)
      assert.is_truthy(cipher:match("GCM") or cipher:match("CHACHA20"), cipher)
    end)

    it("serves TLS 1.3", function()
      local rc, out = s_client("-tls1_3")
      assert.equal(0, rc, out)
      assert.matches("TLSv1%.3", out)
    end)

    it("refuses a TLS 1.2 client offering only CBC suites without forward secrecy", function()
      local rc, out = s_client("-tls1_2 -cipher AES128-SHA")
      assert.is_true(rc ~= 0, "a non-forward-secret CBC suite was accepted:\n" .. out)
    end)
  end)

  describe("clients that do not speak TLS properly", function()
    it("plain ws:// to the TLS port gets no HTTP answer and is closed", function()
      local c = rawws.open_tcp(s.port)
      c:send_raw((rawws.build_request(s.port, "/ws", {})))
      local closed, why = c:wait_tcp_close(5)
      c:close_socket()
      assert.is_true(closed, why)
      assert.is_nil(c.trailing:find("HTTP/1.1", 1, true), "answered plain HTTP on the TLS port")
      local ok = pcall(rawws.connect, s.port, "/ws", { timeout = 3 })
      assert.is_false(ok, "a plain WebSocket handshake succeeded on the TLS port")
    end)

    it("a TCP client that never starts TLS is closed at --handshake-timeout", function()
      local c = rawws.open_tcp(s.port)
      local t0 = clock()
      local closed, why = c:wait_tcp_close(HANDSHAKE_TIMEOUT + 3)
      local elapsed = clock() - t0
      c:close_socket()
      assert.is_true(closed, why)
      assert.is_true(elapsed >= HANDSHAKE_TIMEOUT - 0.5 and elapsed < HANDSHAKE_TIMEOUT + 2,
        string.format("closed after %.2f s", elapsed))
    end)

    it("a client that completes TLS but never sends the request is closed at " ..
      "--handshake-timeout", function()
      local script = [[
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[2])
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
t = ctx.wrap_socket(raw, server_hostname="localhost")
t0 = time.time()
try:
    data = t.recv(1)
except (ssl.SSLError, OSError) as e:
    data = repr(e)
print("closed after %.2f data=%r" % (time.time() - t0, data))
]]
      local path = dir .. "/idle_tls.py"
      proc.write_file(path, script)
      local rc, out = sh(string.format("timeout -k 1 15 %s %s %d %s", PYTHON, q(path), s.port,
        q(cert)))
      assert.equal(0, rc, out)
      local elapsed = tonumber(out:match("closed after ([%d.]+)"))
      assert(elapsed, out)
      assert.is_true(elapsed >= HANDSHAKE_TIMEOUT - 0.5 and elapsed < HANDSHAKE_TIMEOUT + 2,
        string.format("closed after %.2f s", elapsed))
    end)

    it("random bytes instead of a ClientHello: closed, the server keeps serving", function()
      for i = 1, 20 do
        local c = rawws.open_tcp(s.port)
        c:send_raw(rawws.random_bytes(100 * i))
        assert.is_true((c:wait_tcp_close(5)))
        c:close_socket()
      end
      -- a TLS record header announcing a 16 KB handshake, then nothing more
      local c = rawws.open_tcp(s.port)
      c:send_raw("\22\3\1\64\0" .. string.rep("\1", 100))
      assert.is_true((c:wait_tcp_close(HANDSHAKE_TIMEOUT + 3)))
      c:close_socket()
      local rc, out = sh(string.format("echo | timeout -k 1 10 openssl s_client -connect " ..
        "127.0.0.1:%d -tls1_3", s.port))
      assert.equal(0, rc, out)
    end)
  end)

  describe("start-up errors", function()
    -- Runs nexlua with the TLS flags; returns exit code and all output.
    local function start(flags)
      local argv = { BIN, APP, "--host", "127.0.0.1", "--port", "0" }
      for _, f in ipairs(flags) do argv[#argv + 1] = f end
      local code, out, err = proc.run(argv, 10)
      return code, out .. err
    end

    local function assert_clear_failure(code, out, ...)
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code) .. ":\n" .. out)
      assert.is_nil(out:find("listening on", 1, true), "it served anyway:\n" .. out)
      assert.is_nil(out:find("stack traceback", 1, true), out)
      for _, want in ipairs({ ... }) do assert.matches(want, out, 1, true) end
    end

    it("a missing certificate file: names the file, exits non-zero", function()
      local missing = dir .. "/missing-cert.pem"
      local code, out = start({ "--tls-cert", missing, "--tls-key", key })
      assert_clear_failure(code, out, "certificate", missing)
    end)

    it("a missing key file: names the file, exits non-zero", function()
      local missing = dir .. "/missing-key.pem"
      local code, out = start({ "--tls-cert", cert, "--tls-key", missing })
      assert_clear_failure(code, out, "key", missing)
    end)

    it("a certificate file that is not PEM: names the file, exits non-zero", function()
      local code, out = start({ "--tls-cert", junk, "--tls-key", key })
      assert_clear_failure(code, out, "certificate", junk)
    end)

    it("a key that does not match the certificate: says so, exits non-zero", function()
      local code, out = start({ "--tls-cert", cert, "--tls-key", other_key })
      assert_clear_failure(code, out, other_key)
      -- OpenSSL 3 already refuses the key while loading it ("key values
      -- mismatch"); older versions reach the server's own "does not match"
      assert.is_truthy(out:find("does not match", 1, true) or out:find("mismatch", 1, true), out)
    end)

    -- Checked before the startup hooks: a typo in a file name does not
    -- start (and then shut down) the app's services.
    it("a bad key: the app's startup and shutdown hooks never run", function()
      local app = dir .. "/hooks_app.lua"
      local f = assert(io.open(app, "w"))
      f:write('local nexlua = require "nexlua"\nlocal app = nexlua.App()\n',
        'app:on_startup(function() nexlua.log.info("STARTUP RAN") end)\n',
        'app:on_shutdown(function() nexlua.log.info("SHUTDOWN RAN") end)\n',
        'app:ws_route("/ws", function(ws) ws:accept() end)\nreturn app\n')
      f:close()
      local code, out, err = proc.run({ BIN, app, "--host", "127.0.0.1", "--port", "0",
        "--tls-cert", cert, "--tls-key", other_key }, 10)
      out = out .. err
      assert_clear_failure(code, out, other_key)
      assert.is_nil(out:find("STARTUP RAN", 1, true), out)
      assert.is_nil(out:find("SHUTDOWN RAN", 1, true), out)
    end)

    it("only --tls-cert: asks for both, exits non-zero", function()
      local code, out = start({ "--tls-cert", cert })
      assert_clear_failure(code, out, "--tls-key")
    end)

    it("only --tls-key: asks for both, exits non-zero", function()
      local code, out = start({ "--tls-key", key })
      assert_clear_failure(code, out, "--tls-cert")
    end)

    it("--help lists --tls-cert and --tls-key", function()
      local code, out = proc.run({ BIN, "--help" }, 10)
      assert.equal(0, code)
      assert.matches("--tls-cert", out, 1, true)
      assert.matches("--tls-key", out, 1, true)
    end)
  end)
end)
