-- The benchmark's own tools, run briefly for real: nx_loadgen (the client of
-- scripts/bench, which verifies every echo) against nexlua's bench apps and
-- against nx_floor (the C floor of scripts/bench --compare), in every mode
-- the matrix uses; and nx_loadgen failing a run whose echoes are wrong.
-- Figures are not checked here (speed is shown by scripts/bench, never by a
-- timed assertion): only that every operation was verified and counted.
local proc = require "helpers.proc"
local json = require "nexlua.json"

-- The tools of the build under test: under the sanitizer suite
-- (NEXLUA_BIN=build-asan/nexlua) the ASan builds of nx_loadgen and nx_floor.
local BUILD = (os.getenv("NEXLUA_BIN") or "build/nexlua"):match("^(.*)/[^/]*$") or "build"
local probe = io.open(BUILD .. "/core/bench/nx_floor", "rb")
if probe then probe:close() else BUILD = "build" end
local LOADGEN = BUILD .. "/core/bench/nx_loadgen"
local FLOOR = BUILD .. "/core/bench/nx_floor"

local function loadgen(port, pid, args)
  local argv = { LOADGEN, "--duration", "0.3", "--warmup", "0.1", "--json", "--quiet",
    "--server-pid", tostring(pid) }
  local url_path = "/ws"
  for i = 1, #args do
    if args[i] == "--path" then url_path = args[i + 1] end
  end
  argv[#argv + 1] = "--url"
  argv[#argv + 1] = "ws://127.0.0.1:" .. port .. url_path
  local i = 1
  while i <= #args do
    if args[i] == "--path" then i = i + 2 else argv[#argv + 1] = args[i]; i = i + 1 end
  end
  local code, out, err = proc.run(argv, 60)
  local ok, res = pcall(json.decode, out)
  assert(ok and type(res) == "table", "nx_loadgen exited " .. tostring(code) .. ": " .. err .. out)
  return res, code
end

local MODES = {
  { name = "echo, 32 B text, 8 conns x 4 in flight",
    args = { "--mode", "echo", "--conns", "8", "--inflight", "4", "--size", "32" } },
  { name = "echo, 64 KiB binary (messages spread over reads)",
    args = { "--mode", "echo", "--conns", "2", "--inflight", "4", "--size", "65536", "--binary" } },
  { name = "connect + handshake + close", args = { "--mode", "connect", "--inflight", "8" } },
  { name = "idle", args = { "--mode", "idle", "--conns", "200" }, idle = true },
}

local function check(res, idle)
  assert.equal("", res.first_error)
  assert.is_true(res.ok)
  for k, v in pairs(res.errors) do assert.equal(0, v, k) end
  if idle then
    assert.equal(200, res.connected)
  else
    assert.is_true(res.ops > 0, "no operation was counted")
    assert.is_true(res.server.cpu_s >= 0)
  end
end

for _, target in ipairs({ "nexlua", "nx_floor" }) do
  describe("nx_loadgen against " .. target, function()
    local s
    before_each(function()
      if target == "nexlua" then
        s = proc.start("spec/bench_apps/echo.lua")
      else
        s = proc.start(nil, nil, { argv = { FLOOR, "0" } })
      end
    end)
    after_each(function() s:stop() end)

    for _, m in ipairs(MODES) do
      it(m.name .. ": every operation verified", function()
        check(loadgen(s.port, s.pid, m.args), m.idle)
        assert.is_true(s:alive())
      end)
    end

    if target == "nx_floor" then
      it("broadcast: every delivery to every subscriber verified", function()
        local res = loadgen(s.port, s.pid, { "--mode", "broadcast", "--path", "/sub",
          "--publish-path", "/pub", "--conns", "50", "--inflight", "4", "--size", "32" })
        check(res)
        assert.equal(50, res.subscribers)
        assert.is_true(res.published > 0)
      end)

      it("refuses an unknown path (nx_loadgen reports the refused handshake)", function()
        local res = loadgen(s.port, s.pid, { "--mode", "echo", "--path", "/nope", "--conns", "1" })
        assert.is_false(res.ok)
        assert.matches("handshake refused: status is not 101", res.first_error, 1, true)
      end)
    end
  end)
end

describe("nx_loadgen against nexlua's broadcast app", function()
  it("verifies every delivery to every subscriber", function()
    local s = proc.start("spec/bench_apps/broadcast.lua")
    finally(function() s:stop() end)
    local res = loadgen(s.port, s.pid, { "--mode", "broadcast", "--path", "/sub",
      "--publish-path", "/pub", "--conns", "50", "--inflight", "4", "--size", "32" })
    check(res)
    assert.equal(50, res.subscribers)
  end)
end)

describe("nx_loadgen --deflate against nexlua", function()
  local s
  before_each(function() s = proc.start("spec/bench_apps/echo.lua") end)
  after_each(function() s:stop() end)

  it("inflates and verifies compressed replies (2 KiB text)", function()
    local res = loadgen(s.port, s.pid, { "--mode", "echo", "--conns", "4", "--inflight", "4",
      "--size", "2048", "--deflate" })
    check(res)
    assert.is_true(res.deflate_offered)
    assert.equal(4, res.deflate_conns)
    assert.is_true(res.compressed_msgs >= res.ops, "replies were not compressed")
  end)

  it("verifies random binary replies, which nexlua sends plain", function()
    local res = loadgen(s.port, s.pid, { "--mode", "echo", "--conns", "2", "--inflight", "4",
      "--size", "65536", "--binary", "--random", "--deflate" })
    check(res)
    assert.is_true(res.random)
    assert.equal(2, res.deflate_conns)
    assert.equal(0, res.compressed_msgs, "random data was compressed")
  end)

  it("--random needs --binary", function()
    local code, _, err = proc.run({ LOADGEN, "--url", "ws://127.0.0.1:" .. s.port .. "/ws",
      "--mode", "echo", "--random" }, 10)
    assert.equal(2, code)
    assert.matches("--random needs --binary", err, 1, true)
  end)
end)

describe("nx_loadgen", function()
  it("fails a run whose echoes are not what was sent", function()
    -- spec/apps/testclient_app.lua answers "Echo: " .. data on /ws
    local s = proc.start("spec/apps/testclient_app.lua")
    finally(function() s:stop() end)
    local res = loadgen(s.port, s.pid, { "--mode", "echo", "--conns", "1", "--size", "32" })
    assert.is_false(res.ok)
    assert.is_true(res.errors.verify > 0, json.encode(res.errors))
    assert.is_true(#res.first_error > 0)
  end)
end)
