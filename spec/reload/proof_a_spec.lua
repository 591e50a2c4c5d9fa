-- Proof A of issue #4: 200 connections mid-conversation through 10 reloads
-- (SIGHUP and saves), 3 of them broken code. Every connection exchanges a
-- message before, between and after the reloads; none is dropped; every one
-- is answered by the handler it started with (the reply carries that
-- version and the connection's message count); every new connection by the
-- newest good version; every broken reload is logged with file:line.
-- A real nexlua process, 200 raw LuaSocket clients in this process.
local R = require "reload.support"

local CONNECTIONS = 200

describe("proof A: 200 connections through 10 reloads, 3 broken", function()
  local dir, s, conns

  setup(function()
    dir = R.tmpdir()
    conns = {}
  end)
  teardown(function()
    for _, c in ipairs(conns) do c.ws:close_socket() end
    if s then s:stop() end
    R.remove_dir(dir)
  end)

  it("drops no connection; old ones keep their handler, new ones get the newest good one", function()
    local t_start = R.now()
    local app_path = dir .. "/app.lua"
    local rev = 0
    local function good_app()
      rev = rev + 1
      return R.render("proof_app.lua", { DIR = dir, REV = rev })
    end
    R.write(dir .. "/version.txt", "v1\n")
    R.write(app_path, good_app())
    s = R.start(app_path, { "--reload" })

    local current = "v1" -- the newest good version
    local exchanges, new_conns = 0, 0

    local function open_one()
      local c = { ws = R.connect(s, "/ws", 10), version = current, n = 0 }
      conns[#conns + 1] = c
      return c
    end

    -- Every open connection sends one message, then every one reads its
    -- reply: version it started with, its own count, its own text. If
    -- `during` is given it runs while all the messages are in flight.
    local function round(tag, during)
      for i, c in ipairs(conns) do
        local _, ok, err = c.ws:send_text(tag .. "#" .. i)
        assert(ok, "send failed on connection " .. i .. ": " .. tostring(err))
      end
      if during then during() end
      for i, c in ipairs(conns) do
        c.n = c.n + 1
        local ok, reply = pcall(c.ws.recv_message, c.ws, 10)
        assert(ok, string.format("connection %d (%s) dropped in round %s: %s", i, c.version, tag, tostring(reply)))
        assert.equal(string.format("%s %d %s#%d", c.version, c.n, tag, i), reply)
        exchanges = exchanges + 1
      end
    end

    -- 200 connections, all mid-conversation
    for _ = 1, CONNECTIONS do open_one() end
    round("before")

    local reloads, failures = 0, 0
    local broken_lines = {}

    -- A good reload by SIGHUP: version.txt changes (no .lua file is saved,
    -- so only the signal reloads), sent while a round is in flight.
    local function good_by_sighup(version)
      R.write(dir .. "/version.txt", version .. "\n")
      round("hup-" .. version, function() assert(s:signal("HUP")) end)
      reloads = reloads + 1
      R.wait_reloads(s, reloads)
      current = version
    end

    -- A good reload by a save of the app file (an editor's save).
    local function good_by_save(version)
      R.write(dir .. "/version.txt", version .. "\n")
      R.save_atomic(app_path, good_app())
      reloads = reloads + 1
      R.wait_reloads(s, reloads)
      current = version
    end

    -- A broken save; its error must be logged with file:line.
    local function broken_save(template)
      R.write(dir .. "/version.txt", "BAD\n")
      R.save_atomic(app_path, R.render(template))
      failures = failures + 1
      R.wait_failures(s, failures)
      local where = string.format("%s/app.lua:%d:", dir, R.error_line(template))
      broken_lines[#broken_lines + 1] = where
      assert(s:log():find(where, 1, true), "broken reload not logged with " .. where .. "; log:\n" .. s:log())
    end

    local steps = {
      function() good_by_sighup("v2") end,
      function() good_by_save("v3") end,
      function() broken_save("broken_syntax.lua.in") end,
      function() good_by_save("v4") end,
      function() good_by_sighup("v5") end,
      function() broken_save("broken_runtime.lua") end,
      function() good_by_save("v6") end,
      function() good_by_sighup("v7") end,
      function() broken_save("broken_startup.lua") end,
      function() good_by_save("v8") end,
    }
    for step, fn in ipairs(steps) do
      fn()
      -- between reloads: every open connection answers on its own code...
      round("after-step-" .. step)
      -- ...and a new one gets the newest good code (and stays open).
      local c = open_one()
      c.n = 1
      c.ws:send_text("hello")
      assert.equal(current .. " 1 hello", c.ws:recv_message(5))
      new_conns = new_conns + 1
    end
    round("after")

    assert.equal(7, R.reload_count(s))
    assert.equal(3, R.failure_count(s))
    assert.matches(": generation 8,", R.reloaded_lines(s)[7], 1, true)
    assert.equal(3, #broken_lines)

    -- No connection was dropped: all are still open and close as asked.
    local by_version = {}
    for _, c in ipairs(conns) do by_version[c.version] = (by_version[c.version] or 0) + 1 end
    local closed = 0
    for i, c in ipairs(conns) do
      local ok, code = pcall(R.close, c.ws)
      assert(ok and code == 1000, "connection " .. i .. " did not close normally: " .. tostring(code))
      closed = closed + 1
    end
    assert.equal(CONNECTIONS + 10, closed)
    local log = s:log()
    assert.is_nil(log:find("error in WebSocket handler", 1, true), "handler errors:\n" .. log)
    assert.is_nil(log:find("BAD", 1, true))
    assert.is_true(s:alive())

    local took = R.now() - t_start
    io.stderr:write(string.format(
      "\n[proof A] %d connections (+%d opened between reloads), 10 reloads (7 good, 3 broken), " ..
      "%d exchanges, 0 dropped; connections per version: %s; %.1f s\n",
      CONNECTIONS, new_conns, exchanges,
      (function()
        local parts = {}
        for v = 1, 8 do parts[#parts + 1] = "v" .. v .. "=" .. (by_version["v" .. v] or 0) end
        return table.concat(parts, " ")
      end)(), took))
    assert(took < 60, "proof A took " .. took .. " s")
  end)
end)
