-- Proof B of issue #4: 100 reloads (SIGHUP) with open connections that then
-- close. Each generation holds a ~50 KB ballast reachable only from its
-- handlers (spec/apps/reload/mem_app.lua).
--
-- * Memory: while the 100 connections are open their generations stay alive
--   (the Lua heap grows by ~100 ballasts, which shows the measure sees
--   them); once they close, the heap (after two full collections) returns to
--   within START * 1.10 + 200 KB of where it was before the first reload.
-- * Generations: a weak table kept across reloads names the generations
--   whose ballast is still reachable. With all connections open: all 101.
--   Once they close: only the current one.
local R = require "reload.support"

local RELOADS = 100
local BOUND_FACTOR, BOUND_SLACK_KB = 1.10, 200

describe("proof B: 100 reloads with open connections that then close", function()
  local dir, s, clients = nil, nil, {}
  local start, peak, final, bound, samples
  local alive_open, alive_after

  local function ask_once(path)
    local c = R.connect(s, path)
    local reply = R.ask(c, "?")
    R.close(c)
    return reply
  end
  -- The Lua heap (KB) after two full collections, from the current generation.
  local function heap_kb() return tonumber(ask_once("/mem")) end

  setup(function()
    dir = R.tmpdir()
    local app_path = dir .. "/app.lua"
    R.write(app_path, R.render("mem_app.lua", {}))
    s = R.start(app_path)

    start = heap_kb()
    bound = start * BOUND_FACTOR + BOUND_SLACK_KB

    for i = 1, RELOADS do
      local c = R.connect(s, "/ws")
      clients[#clients + 1] = c
      assert.equal(i .. " 500 a", R.ask(c, "a"))
      assert(s:signal("HUP"))
      R.wait_reloads(s, i)
      assert.equal(i .. " 500 b", R.ask(c, "b")) -- still its own generation
    end
    assert.equal(0, R.failure_count(s))
    assert.matches(": generation " .. (RELOADS + 1) .. ",", R.reloaded_lines(s)[RELOADS], 1, true)

    peak = heap_kb()
    alive_open = ask_once("/alive")
    for i, c in ipairs(clients) do assert.equal(i .. " 500 c", R.ask(c, "c")) end
    for _, c in ipairs(clients) do assert.equal(1000, R.close(c)) end
    clients = {}

    -- The handlers end once their close handshakes are done: poll a little.
    samples = {}
    local deadline = R.now() + 5
    repeat
      final = heap_kb()
      samples[#samples + 1] = final
      if final <= bound then break end
      R.sleep(0.1)
    until R.now() > deadline
    alive_after = ask_once("/alive")

    io.stderr:write(string.format(
      "\n[proof B] Lua heap: start %.1f KB; with %d old generations open %.1f KB (+%.1f KB, %.1f KB each); " ..
      "after they closed %.1f KB (%+.1f KB; bound %.1f KB = start*%.2f+%d KB; %d sample(s)); " ..
      "generations alive after: %s\n",
      start, RELOADS, peak, peak - start, (peak - start) / RELOADS, final, final - start, bound, BOUND_FACTOR,
      BOUND_SLACK_KB, #samples, alive_after))
  end)

  teardown(function()
    for _, c in ipairs(clients) do c:close_socket() end
    if s then s:stop() end
    R.remove_dir(dir)
  end)

  it("the Lua heap returns to within start*1.10+200 KB once the connections close", function()
    -- The measure sees generations: 100 live ones weigh far more than the bound allows.
    assert(peak > start + RELOADS * 25, string.format("peak %.1f KB: the ballast is not visible", peak))
    assert(final <= bound, string.format("the heap did not come back: start %.1f KB, end %.1f KB, bound %.1f KB",
      start, final, bound))
    assert.is_true(s:alive())
  end)

  it("keeps every generation with an open connection alive", function()
    local all = {}
    for g = 1, RELOADS + 1 do all[g] = tostring(g) end
    assert.equal(table.concat(all, " "), alive_open)
  end)

  -- Guards against serve.run keeping the first app alive in its frame (the
  -- parameter `app`, or an upvalue of its startup task): generation 1 must
  -- be collected like every other.
  it("collects every old generation once its last connection ended: only the current one is left", function()
    assert.equal(tostring(RELOADS + 1), alive_after)
  end)
end)
