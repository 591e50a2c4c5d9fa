-- A broken reload (issue #4): whatever goes wrong -- a syntax error, an
-- error raised while the app file runs, an app file that does not return an
-- App, a failing startup hook of the new version, or any of these in a module
-- the app requires -- the old app keeps serving (open and new connections),
-- the error is logged with file:line, and the next good save is picked up.
local R = require "reload.support"

describe("a broken reload", function()
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
    local c = R.connect(s, path or "/ws")
    clients[#clients + 1] = c
    return c
  end

  local function fresh_reply()
    local c = R.connect(s, "/ws")
    local reply = R.ask(c, "new")
    R.close(c)
    return reply
  end

  -- Starts v1 with --reload and an open connection that has talked once.
  local function start()
    s = R.start(R.write_versioned(dir, { VERSION = "v1" }), { "--reload" })
    local old = open()
    assert.equal("v1|hello|!|1|a", R.ask(old, "a"))
    return old
  end

  -- After a failed reload: the old app serves the open connection (its count
  -- going on) and new ones; nothing reached the broken version.
  local function assert_old_serving(old, n)
    assert.is_true(s:alive(), "the server died; log:\n" .. s:log())
    assert.equal("v1|hello|!|" .. n .. "|m" .. n, R.ask(old, "m" .. n))
    assert.equal("v1|hello|!|1|new", fresh_reply())
    assert.equal(0, R.reload_count(s))
  end

  -- The next good save is picked up; the open connection stays on v1.
  local function assert_next_good_save(old, n)
    R.write_versioned(dir, { VERSION = "v2" })
    R.wait_reloads(s, 1)
    assert.matches(": generation 2,", R.reloaded_lines(s)[1], 1, true)
    assert.equal("v2|hello|!|1|new", fresh_reply())
    assert.equal("v1|hello|!|" .. n .. "|m" .. n, R.ask(old, "m" .. n))
    assert.is_nil(s:log():find("BROKEN", 1, true))
  end

  -- The log has the failure line, and text (file:line: message) somewhere in
  -- the error it logged.
  local function assert_logged(text)
    local log = s:log()
    assert.matches("ERROR reload of " .. dir:gsub("%p", "%%%0") .. "/app%.lua failed, still serving the " ..
      "previous version", log)
    assert(log:find(text, 1, true), "expected the log to name " .. text .. "; log:\n" .. log)
  end

  local cases = {
    { "a syntax error in the app file", "broken_syntax.lua.in", "unexpected symbol near '='" },
    { "an error raised while the app file runs", "broken_runtime.lua", "attempt to index local 'settings'" },
    { "a failing startup hook of the new version", "broken_startup.lua", "cannot open the database" },
  }
  for _, case in ipairs(cases) do
    local what, template, message = case[1], case[2], case[3]
    it(what .. ": the old app keeps serving, file:line is logged, the next good save is picked up", function()
      local old = start()
      R.save_atomic(dir .. "/app.lua", R.render(template))
      R.wait_failures(s, 1)
      assert_logged(string.format("%s/app.lua:%d: %s", dir, R.error_line(template), message))
      assert_old_serving(old, 2)
      assert_next_good_save(old, 3)
    end)
  end

  it("an app file that does not return an App: the old app keeps serving, the file is named", function()
    local old = start()
    R.save_atomic(dir .. "/app.lua", R.render("broken_not_app.lua"))
    R.wait_failures(s, 1)
    -- There is no line to name for a value returned; the file and the fix are named.
    assert_logged(dir .. "/app.lua must return the app (end it with `return app`), it returned table")
    assert_old_serving(old, 2)
    assert_next_good_save(old, 3)
  end)

  -- A wait, or a bare coroutine.yield(), in a reloaded file or its startup
  -- hook once hung the reload for good (every later save was ignored).
  local waits = {
    { "a wait in the main chunk", "broken_wait.lua",
      "/app.lua:7: nexlua.sleep must be called from a nexlua coroutine" },
    { "coroutine.yield() in the main chunk", "broken_yield.lua",
      "/app.lua: its main chunk called coroutine.yield()" },
    { "coroutine.yield() in a startup hook", "broken_startup_yield.lua",
      "/app.lua:6) failed: coroutine.yield() called directly" },
  }
  for _, case in ipairs(waits) do
    local what, template, message = case[1], case[2], case[3]
    it(what .. ": the reload fails and says why, the old app keeps serving, the next good save is " ..
      "picked up", function()
      local old = start()
      R.save_atomic(dir .. "/app.lua", R.render(template))
      R.wait_failures(s, 1)
      assert_logged(message)
      assert_old_serving(old, 2)
      assert_next_good_save(old, 3)
    end)
  end

  it("a syntax error in a module the app requires: module file:line is logged", function()
    local old = start()
    R.write(dir .. "/greeting.lua", "-- broken\nreturn { text = = 1 }\n")
    R.wait_failures(s, 1)
    assert_logged(dir .. "/greeting.lua:2: unexpected symbol near '='")
    -- the frames are the app's (nexlua's own loader and reload code are not)
    assert.matches("/app%.lua:%d+: in main chunk", s:log())
    assert.is_nil(s:log():find("nexlua/reload.lua", 1, true), s:log())
    assert_old_serving(old, 2)
    assert_next_good_save(old, 3)
  end)

  it("an error raised while a module the app requires runs: module file:line is logged", function()
    local old = start()
    R.write(dir .. "/lib/suffix.lua", "-- broken\n\nerror('no suffix today')\n")
    R.wait_failures(s, 1)
    assert_logged(dir .. "/lib/suffix.lua:3: no suffix today")
    -- the traceback goes on to the app's line that required the module
    assert.matches("lib/suffix%.lua:3: in main chunk.-/app%.lua:%d+: in main chunk", s:log())
    assert_old_serving(old, 2)
    assert_next_good_save(old, 3)
  end)

  it("the app file missing for a moment (deleted, then written again): the old app keeps serving", function()
    local old = start()
    os.remove(dir .. "/app.lua")
    R.wait_failures(s, 1)
    assert_logged("cannot open " .. dir .. "/app.lua")
    assert_old_serving(old, 2)
    assert_next_good_save(old, 3)
  end)

  it("several broken saves in a row, then a good one", function()
    local old = start()
    local n = 1
    local templates = { "broken_syntax.lua.in", "broken_runtime.lua", "broken_not_app.lua", "broken_startup.lua" }
    for i, template in ipairs(templates) do
      R.save_atomic(dir .. "/app.lua", R.render(template))
      R.wait_failures(s, i)
      n = n + 1
      assert_old_serving(old, n)
    end
    assert_next_good_save(old, n + 1)
    assert.equal(4, R.failure_count(s))
  end)

  it("on SIGHUP too (without --reload): the broken file is refused, the fixed one is loaded", function()
    s = R.start(R.write_versioned(dir, { VERSION = "v1" }))
    local old = open()
    assert.equal("v1|hello|!|1|a", R.ask(old, "a"))
    R.write(dir .. "/app.lua", R.render("broken_runtime.lua"))
    assert(s:signal("HUP"))
    R.wait_failures(s, 1)
    assert_logged(string.format("%s/app.lua:%d: attempt to index local 'settings'", dir,
      R.error_line("broken_runtime.lua")))
    assert_old_serving(old, 2)
    R.write_versioned(dir, { VERSION = "v2" })
    assert(s:signal("HUP"))
    R.wait_reloads(s, 1)
    assert.equal("v2|hello|!|1|new", fresh_reply())
    assert.equal("v1|hello|!|3|m3", R.ask(old, "m3"))
  end)
end)
