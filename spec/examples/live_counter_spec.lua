-- examples/live_counter/app.lua under --reload, over real sockets: the
-- count kept in nexlua.keep survives a reload, an open connection keeps its
-- handler while a new one gets the new version, and the old generation's
-- ticker is stopped before the new one starts (one ticker at a time).
local R = require "reload.support"
local server = require "helpers.server"
local cjson = require "cjson"
local clock = require "helpers.clock"

describe("examples/live_counter", function()
  local dir, s
  teardown(R.remove_all)
  after_each(function()
    if s then s:stop() end
    s = nil
    R.remove_dir(dir)
  end)

  local function recv_json(c)
    local data = assert(c:recv_message(5))
    return cjson.decode(data)
  end
  local function next_json(c, pred)
    for _ = 1, 200 do
      local v = recv_json(c)
      if pred(v) then return v end
    end
    error("no matching message")
  end
  local function count_is(n) return function(v) return v.count == n and v.tick == nil end end

  it("keeps the count and one ticker across a reload; old connections keep their handler", function()
    dir = R.tmpdir()
    local text = assert(R.read("examples/live_counter/app.lua"))
    R.write(dir .. "/app.lua", text)
    s = server.start(dir .. "/app.lua", { "--reload", "--ping-interval", "0" }, { env = { NEXLUA_TICK = "0.05" } })
    assert(s:wait_log("watching %d+ director", 5), s:log())

    local a = R.connect(s, "/counter?ticks=1")
    assert.same({ greeting = "v1", count = 0 }, recv_json(a))
    a:send_text("+1")
    next_json(a, count_is(1))
    a:send_text("+1")
    next_json(a, count_is(2))
    local before = next_json(a, function(v) return v.tick ~= nil end).tick

    R.write(dir .. "/app.lua", (text:gsub('local GREETING = "v1"', 'local GREETING = "v2"')))
    R.wait_reloads(s, 1)

    local b = R.connect(s, "/counter")
    assert.same({ greeting = "v2", count = 2 }, recv_json(b))
    a:send_text("+1") -- on the v1 handler, still open
    next_json(a, count_is(3))
    next_json(b, count_is(3))
    b:send_text("oops")
    assert.same({ error = "send +1" }, next_json(b, function(v) return v.error ~= nil end))

    -- The ticks go on from where they were (one counter, kept), from one
    -- ticker: 10 ticks take 10 x 0.05 s (two tickers would take half).
    local after = next_json(a, function(v) return v.tick ~= nil and v.tick > before end)
    assert.equal(3, after.count)
    local t0 = clock()
    for _ = 1, 10 do next_json(a, function(v) return v.tick ~= nil end) end
    assert.is_true(clock() - t0 >= 0.4, string.format("10 ticks in %.2f s: two tickers?", clock() - t0))

    local log = s:log()
    assert.equal(1, R.count(log, "v1: ticker stopped %(reload%)"), log)
    assert.equal(1, R.count(log, "v2 replaced v1; the count is 2"), log)
    -- the old ticker stopped before the reload finished
    assert.is_true(log:find("v1: ticker stopped", 1, true) < log:find("INFO reloaded", 1, true), log)
    R.close(a)
    R.close(b)
  end)
end)
