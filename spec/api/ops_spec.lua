-- The server's own plain-HTTP endpoints, over real sockets:
--   --health-path PATH   a GET or HEAD without Upgrade gets 200 "ok"
--   --metrics-path PATH  a GET gets the process's counters, Prometheus text
-- Anything else that is not an upgrade still gets 426; an upgrade request
-- to either path is a WebSocket request like any other.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local proc = require "helpers.proc"

local APP = "spec/apps/hardening_app.lua"
local BIN = os.getenv("NEXLUA_BIN") or "build/nexlua"

local function plain(port, method, target)
  return rawws.http(port, string.format("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", method, target,
    port))
end

-- The value of a sample line `name{worker="N"} value`.
local function sample(text, name)
  return tonumber(text:match("\n" .. name .. "{worker=\"%d+\"} (%d+)\n"))
end

describe("--health-path and --metrics-path", function()
  local s
  setup(function() s = server.start(APP, { "--health-path", "/healthz", "--metrics-path", "/metrics" }) end)
  teardown(function() if s then s:stop() end end)

  it("GET of the health path: 200 ok, not cached, the connection closed", function()
    local status, headers, body = plain(s.port, "GET", "/healthz")
    assert.equal(200, status)
    assert.equal("ok\n", body)
    assert.equal("3", headers["content-length"])
    assert.equal("no-store", headers["cache-control"])
    assert.equal("close", headers["connection"])
  end)

  it("HEAD of the health path: 200 with the GET's Content-Length and no body", function()
    local c = rawws.open_tcp(s.port)
    c:send_raw(string.format("HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", s.port))
    assert.truthy(c:wait_tcp_close(3))
    local text = c.trailing -- all of it, up to the close
    assert.matches("^HTTP/1%.1 200 OK\r\n", text)
    assert.matches("\r\nContent%-Length: 3\r\n", text)
    assert.matches("\r\n\r\n$", text) -- the head, and no body after it
  end)

  -- RFC 9112 §3.2 and §5.1: what every HTTP/1.1 server answers with 400.
  -- HTTP/1.0 has no Host to require: a probe that speaks it still gets 200.
  it("a request that breaks HTTP/1.1's rules gets 400 here too; an HTTP/1.0 probe gets 200", function()
    for _, case in ipairs({
      { "no Host", "GET /healthz HTTP/1.1\r\n\r\n" },
      { "two Hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" },
      { "a Host that is not one", "GET /metrics HTTP/1.1\r\nHost: a b\r\n\r\n" },
      { "a space before a colon", "GET /healthz HTTP/1.1\r\nHost: a\r\nX : y\r\n\r\n" },
      { "two Hosts in HTTP/1.0", "GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n" },
    }) do
      local status, headers = rawws.http(s.port, case[2])
      assert.equal(400, status, case[1])
      assert.equal("close", headers["connection"], case[1])
    end
    local c = rawws.open_tcp(s.port) -- a HEAD without Host: the 400's head, no body
    c:send_raw("HEAD /healthz HTTP/1.1\r\n\r\n")
    assert.truthy(c:wait_tcp_close(3))
    assert.matches("^HTTP/1%.1 400 Bad Request\r\n.*\r\n\r\n$", c.trailing)
    assert.equal(200, (rawws.http(s.port, "GET /healthz HTTP/1.0\r\n\r\n")))
    assert.equal(200, (rawws.http(s.port, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")))
    assert.equal(200, (rawws.http(s.port, "GET /healthz HTTP/1.1\r\nHost:  127.0.0.1:1 \r\n\r\n")))
  end)

  it("a query string is allowed; another method gets 405, another path 426", function()
    assert.equal(200, (plain(s.port, "GET", "/healthz?probe=lb1")))
    -- the absolute form (RFC 9112 §3.2.2), as a proxy sends it
    assert.equal(200, (plain(s.port, "GET", "http://127.0.0.1/healthz")))
    local status, headers = plain(s.port, "POST", "/healthz")
    assert.equal(405, status)
    assert.equal("GET, HEAD", headers["allow"])
    assert.equal("GET", select(2, plain(s.port, "POST", "/ws"))["allow"]) -- (the WebSocket path's)
    assert.equal(426, (plain(s.port, "GET", "/healthz/")))
    assert.equal(426, (plain(s.port, "GET", "/ws")))
  end)

  it("an upgrade request to the health path is a WebSocket request (here: no such route, 404)",
    function()
    local c = rawws.connect(s.port, "/healthz")
    assert.equal(404, c.status)
    local ws = rawws.connect(s.port, "/ws")
    assert.equal(101, ws.status)
    ws:send_text("still echoing")
    ws:expect_echo("still echoing", rawws.OP.TEXT)
    ws:close_socket()
  end)

  it("metrics: every sample has its HELP and TYPE; connections and handlers are counted", function()
    local a, b = rawws.connect(s.port, "/ws"), rawws.connect(s.port, "/ws")
    a:send_text("x")
    a:expect_echo("x", rawws.OP.TEXT)
    local status, headers, body = plain(s.port, "GET", "/metrics")
    assert.equal(200, status)
    assert.matches("^text/plain; version=0%.0%.4", headers["content-type"])
    body = "\n" .. body
    for _, name in ipairs { "nexlua_connections", "nexlua_handlers", "nexlua_compressions_total",
      "nexlua_compression_cache_hits_total", "nexlua_redis_connected", "nexlua_redis_published_total",
      "nexlua_redis_received_total", "nexlua_redis_dropped_total" } do
      assert.matches("\n# HELP " .. name .. " [^\n]+\n# TYPE " .. name .. " %a+\n" .. name ..
        "{worker=\"1\"} %d+\n", body)
    end
    -- the two WebSockets and this request itself
    assert.is_true(sample(body, "nexlua_connections") >= 3, body)
    assert.equal(2, sample(body, "nexlua_handlers"), body)
    assert.equal(0, sample(body, "nexlua_redis_connected"))
    a:close_socket()
    b:close_socket()
  end)
end)

describe("the endpoints' defaults and values", function()
  it("off by default: a GET of /healthz or /metrics gets 426", function()
    local s = server.start(APP)
    finally(function() s:stop() end)
    assert.equal(426, (plain(s.port, "GET", "/healthz")))
    assert.equal(426, (plain(s.port, "GET", "/metrics")))
  end)

  it("App{health_path=} works too; a bad path is refused with what it takes", function()
    local dir = proc.tmpdir()
    local path = dir .. "/up_app.lua"
    local f = assert(io.open(path, "w"))
    f:write('local app = require("nexlua").App{ health_path = "/up" }\n',
      'app:ws_route("/ws", function(ws) ws:accept() end)\nreturn app\n')
    f:close()
    local s = server.start(path)
    finally(function() s:stop() end)
    local status, _, body = plain(s.port, "GET", "/up")
    assert.equal(200, status)
    assert.equal("ok\n", body)
    for _, bad in ipairs { "up", "/up?x=1", "/a b", "/" .. string.rep("x", 63) } do
      local code, out, err = proc.run({ BIN, APP, "--health-path", bad }, 10)
      assert.equal(2, code, out .. err)
      assert.matches("option --health-path needs a path starting with / (no query, at most 63 bytes)",
        err, 1, true)
    end
  end)

  it("the same path for both: refused with the other flags, at App{...}, or before the startup hooks", function()
    local code, out, err = proc.run({ BIN, APP, "--port", "0", "--health-path", "/h", "--metrics-path", "/h" }, 10)
    assert.equal(2, code, out .. err)
    assert.matches("options --health-path and --metrics-path are both /h: give them different paths", err, 1, true)
    local dir = proc.tmpdir()
    finally(function() proc.rmdir(dir) end)
    local function app_file(name, opts)
      local f = assert(io.open(dir .. "/" .. name, "w"))
      f:write(([[
local nexlua = require "nexlua"
local app = nexlua.App(%s)
app:on_startup(function() nexlua.log.info("hook ran") end)
return app
]]):format(opts))
      f:close()
      return dir .. "/" .. name
    end
    code, out, err = proc.run({ BIN, app_file("both.lua", '{ health_path = "/h", metrics_path = "/h" }'),
      "--port", "0" }, 10)
    assert.equal(1, code, out .. err)
    assert.matches("both.lua:2: App: health_path and metrics_path are both /h", err, 1, true)
    -- one from App{...}, the other from a flag: before any hook runs
    code, out, err = proc.run({ BIN, app_file("mixed.lua", '{ health_path = "/h" }'), "--port", "0",
      "--metrics-path", "/h" }, 10)
    assert.equal(1, code, out .. err)
    assert.matches("--health-path and --metrics-path are both /h", err, 1, true)
    assert.falsy(err:find("hook ran", 1, true), err)
  end)

  it("--workers 2: each worker answers with its own counters, labelled with its number", function()
    local s = server.start(APP, { "--workers", "2", "--metrics-path", "/metrics" })
    finally(function() s:stop() end)
    local seen = {}
    for _ = 1, 40 do
      local _, _, body = plain(s.port, "GET", "/metrics")
      local w = body:match('nexlua_connections{worker="(%d+)"}')
      if w then seen[w] = true end
      if seen["1"] and seen["2"] then break end
    end
    assert.is_true(seen["1"] or seen["2"], "no worker label")
    for w in pairs(seen) do assert.truthy(w == "1" or w == "2", w) end
  end)
end)
