-- Proof C of issue #4: reload latency, as the server measures it (the
-- "in X ms" of each "reloaded" line: loading the app file and its modules,
-- the hooks, the switch). Median over 20 SIGHUP reloads of the versioned app
-- (an app file and two modules) with 10 open connections. Printed on stderr
-- for the report; asserted to be a number, never against a time.
local R = require "reload.support"

local RELOADS = 20

describe("proof C: reload latency", function()
  local dir, s, clients = nil, nil, {}

  setup(function() dir = R.tmpdir() end)
  teardown(function()
    for _, c in ipairs(clients) do c:close_socket() end
    if s then s:stop() end
    R.remove_dir(dir)
  end)

  it("is logged by every reload; the median of 20 is reported", function()
    s = R.start(R.write_versioned(dir, { VERSION = "v1", EXTRA_ROUTES = 8 }))
    for i = 1, 10 do
      clients[i] = R.connect(s, "/ws")
      assert.equal("v1|hello|!|1|a", R.ask(clients[i], "a"))
    end
    for i = 1, RELOADS do
      assert(s:signal("HUP"))
      R.wait_reloads(s, i)
    end
    local ms = {}
    for _, line in ipairs(R.reloaded_lines(s)) do
      local _, _, why, _, routes, took = line:match(R.RELOADED_LINE)
      assert(took, "unexpected shape: " .. line)
      assert.equal("SIGHUP", why)
      assert.equal("10", routes)
      ms[#ms + 1] = tonumber(took)
    end
    assert.equal(RELOADS, #ms)
    local median = R.median(ms)
    assert.is_number(median)
    assert(median >= 0, "negative latency")
    table.sort(ms)
    io.stderr:write(string.format("\n[proof C] reload latency over %d SIGHUP reloads: median %.2f ms " ..
      "(min %.1f, max %.1f ms)\n", RELOADS, median, ms[1], ms[#ms]))
    for i = 1, 10 do assert.equal("v1|hello|!|2|b", R.ask(clients[i], "b")) end
  end)
end)
