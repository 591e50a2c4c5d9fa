-- What a reload does (issue #4): it logs one line (what was reloaded, why,
-- the generation, how many routes, how long it took); open connections keep
-- running the code they started with and are never closed by it; new
-- connections get the new code.
local R = require "reload.support"
local rawws = require "helpers.rawws"

describe("a reload", function()
  teardown(R.remove_all)

  local dir, s, clients

  before_each(function()
    dir = R.tmpdir()
    clients = {}
  end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    if s then s:stop() end
    s = nil
    R.remove_dir(dir)
  end)

  local function open(path)
    local c = R.connect(s, path)
    clients[#clients + 1] = c
    return c
  end

  local function log_lines() return #R.lines(s:log(), ".") end

  it("logs one line: the file, why, the generation, how many routes, how long it took", function()
    local app_path = R.write_versioned(dir, { VERSION = "v1" })
    s = R.start(app_path, { "--reload" })
    assert.matches("listening on ws://127%.0%.0%.1:%d+ %(2 routes%)", s:log())
    R.sleep(0.1)
    local before = log_lines()

    -- a save: 3 more routes in the new version
    R.write_versioned(dir, { VERSION = "v2", EXTRA_ROUTES = 3 })
    R.wait_reloads(s, 1)
    R.sleep(0.2)
    assert.equal(before + 1, log_lines(), "one line per reload; log:\n" .. s:log())
    local line = R.reloaded_lines(s)[1]
    local stamp, path, why, generation, routes, ms = line:match(R.RELOADED_LINE)
    assert(stamp, "unexpected shape: " .. line)
    assert.equal(app_path, path)
    assert.equal("file changed: app.lua", why)
    assert.equal(2, tonumber(generation))
    assert.equal(5, tonumber(routes))
    assert(tonumber(ms) >= 0 and tonumber(ms) < 10000, "not a duration: " .. ms)

    -- a save with 2 routes fewer, then SIGHUP (same code)
    R.write_versioned(dir, { VERSION = "v3", EXTRA_ROUTES = 1 })
    R.wait_reloads(s, 2)
    assert(s:signal("HUP"))
    R.wait_reloads(s, 3)
    R.sleep(0.2)
    assert.equal(before + 3, log_lines(), "one line per reload; log:\n" .. s:log())
    local lines = R.reloaded_lines(s)
    local _, _, why2, _, routes2 = lines[2]:match(R.RELOADED_LINE)
    assert.same({ "file changed: app.lua", "3" }, { why2, routes2 })
    stamp, path, why, generation, routes = lines[3]:match(R.RELOADED_LINE)
    assert(stamp, "unexpected shape: " .. lines[3])
    assert.same({ app_path, "SIGHUP", 4, 3 }, { path, why, tonumber(generation), tonumber(routes) })
    for _, l in ipairs(lines) do assert.matches(R.RELOADED_LINE, l) end

    -- the routes counted are the ones served
    local c = open("/extra1")
    assert.equal("v3", c:recv_message())
    local gone = rawws.connect(s.port, "/extra2")
    clients[#clients + 1] = gone
    assert.equal(404, gone.status)
  end)

  it("leaves open connections on the code they started with, and never closes them", function()
    s = R.start(R.write_versioned(dir, { VERSION = "v1" }), { "--reload" })
    local echo1, ticker1 = open("/ws"), open("/ticker")
    assert.equal("v1|hello|!|1|a", R.ask(echo1, "a"))
    assert.equal("tick v1 1", ticker1:recv_message())

    R.write_versioned(dir, { VERSION = "v2", GREETING = "hi" }) -- a save
    R.wait_reloads(s, 1)
    local echo2, ticker2 = open("/ws"), open("/ticker")
    assert.equal("v2|hi|!|1|a", R.ask(echo2, "a"))
    assert.equal("v1|hello|!|2|b", R.ask(echo1, "b"))
    assert.equal("tick v2 1", ticker2:recv_message())

    R.write(dir .. "/lib/suffix.lua", 'return { text = "?" }\n') -- a module
    R.wait_reloads(s, 2)
    assert(s:signal("HUP")) -- and SIGHUP
    R.wait_reloads(s, 3)
    local echo3 = open("/ws")
    assert.equal("v2|hi|?|1|a", R.ask(echo3, "a"))
    assert.equal("v2|hi|!|2|b", R.ask(echo2, "b"))
    assert.equal("v1|hello|!|3|c", R.ask(echo1, "c"))

    -- The tickers never stopped: every tick since the start, in order, from
    -- their own version, up to ticks sent after the last reload.
    for _, t in ipairs { { ticker1, "v1", 1 }, { ticker2, "v2", 1 } } do
      local c, version, n = t[1], t[2], t[3]
      local live = 0
      while live < 5 do
        local t0 = R.now()
        local msg = c:recv_message(2) -- raises on a close frame or a timeout
        if R.now() - t0 > 0.005 then live = live + 1 end -- waited: a tick sent now
        n = n + 1
        assert.equal("tick " .. version .. " " .. n, msg)
      end
    end

    -- Every connection ends as the client asks: its close is answered with 1000.
    for _, c in ipairs { echo1, echo2, echo3, ticker1, ticker2 } do assert.equal(1000, R.close(c)) end
    assert.is_nil(s:log():find("ERROR", 1, true), "errors logged:\n" .. s:log())
  end)
end)
