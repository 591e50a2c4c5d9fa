-- examples/echo/app.lua: every message on /ws comes back unchanged, text as
-- text and binary as binary.
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local OP = rawws.OP

describe("examples/echo", function()
  local s
  local clients = {}

  setup(function() s = server.start("examples/echo/app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open()
    local c = rawws.connect(s.port, "/ws")
    clients[#clients + 1] = c
    assert.equal(101, c.status)
    assert.equal(c.expected_accept, c.headers["sec-websocket-accept"])
    return c
  end

  it("echoes text as text", function()
    local c = open()
    for _, m in ipairs { "hello", "", "héllo wörld ✓", string.rep("abc", 1000) } do
      c:send_text(m)
      c:expect_echo(m, OP.TEXT)
    end
  end)

  it("echoes binary as binary, every byte value intact", function()
    local c = open()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local payload = table.concat(all)
    c:send_binary(payload)
    c:expect_echo(payload, OP.BINARY)
  end)

  it("echoes a 1 MiB message and a fragmented message whole", function()
    local c = open()
    local big = rawws.random_bytes(1024):rep(1024)
    c:send_binary(big)
    c:expect_echo(big, OP.BINARY, 10)
    c:send_frame { opcode = OP.TEXT, payload = "frag", fin = false }
    c:send_frame { opcode = OP.CONTINUATION, payload = "mented", fin = true }
    c:expect_echo("fragmented", OP.TEXT)
  end)

  it("keeps the messages of concurrent clients apart, in order", function()
    local a, b = open(), open()
    for i = 1, 20 do
      a:send_text("a" .. i)
      b:send_text("b" .. i)
    end
    for i = 1, 20 do
      a:expect_echo("a" .. i, OP.TEXT)
      b:expect_echo("b" .. i, OP.TEXT)
    end
  end)

  it("answers pings with pongs", function()
    local c = open()
    c:ping("are you alive")
    c:expect_pong("are you alive")
    c:send_text("after ping")
    c:expect_echo("after ping", OP.TEXT)
  end)

  it("answers a close with the same code and closes TCP", function()
    local c = open()
    c:send_text("bye")
    c:expect_echo("bye", OP.TEXT)
    c:close(1000, "done")
    local code = c:expect_close()
    assert.equal(1000, code)
    assert.is_true((c:wait_tcp_close(3)))
  end)

  it("answers 404 for another path", function()
    local c = rawws.connect(s.port, "/other")
    clients[#clients + 1] = c
    assert.equal(404, c.status)
    assert.is_nil(c.headers["upgrade"])
  end)

  it("logs no error for clients that leave", function()
    local c = open()
    c:close_socket()
    local d = open()
    d:close(1001)
    d:expect_close()
    assert.is_nil(s:log():find(" ERROR ", 1, true), "log:\n" .. s:log())
  end)
end)

-- The README's load-balancer line: the same app with --health-path and
-- --metrics-path (the endpoints themselves: spec/api/ops_spec.lua).
describe("examples/echo behind a load balancer", function()
  it("answers /healthz and /metrics as plain HTTP, and still echoes on /ws", function()
    local s = server.start("examples/echo/app.lua", { "--health-path", "/healthz", "--metrics-path", "/metrics" })
    finally(function() s:stop() end)
    local get = function(path)
      return rawws.http(s.port, "GET " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    end
    local status, _, body = get("/healthz")
    assert.equal(200, status)
    assert.equal("ok\n", body)
    local c = rawws.connect(s.port, "/ws")
    c:send_text("hi")
    c:expect_echo("hi", OP.TEXT)
    status, _, body = get("/metrics")
    assert.equal(200, status)
    assert.matches('\nnexlua_handlers{worker="1"} 1\n', body, 1, true)
    c:close_socket()
  end)
end)
