-- No reload once the server is shutting down (issue #4): after SIGTERM, in
-- the grace period where open connections finish, neither SIGHUP nor a
-- saved file may load a new version (and start its services) only to shut
-- it down again.
local R = require "reload.support"

describe("during the shutdown grace period", function()
  teardown(R.remove_all)

  local dir, s, sub

  before_each(function()
    dir = R.tmpdir()
    local app_path = dir .. "/app.lua"
    R.write(app_path, R.render("hooks_app.lua", { VERSION = "v1" }))
    s = R.start(app_path, { "--reload", "--graceful-timeout", "5" })
    -- A subscriber that does not answer the server's close keeps the server
    -- in its grace period until the spec drops it.
    sub = R.connect(s, "/ticks")
    assert.equal("tick v1", sub:recv_message())
    assert(s:signal("TERM"))
    assert(s:wait_log("SIGTERM received", 3), "no SIGTERM line; log:\n" .. s:log())
  end)

  after_each(function()
    if sub then sub:close_socket() end
    -- the server exits by itself once its last connection is gone
    local deadline = R.now() + 5
    while s:alive() and R.now() < deadline do R.sleep(0.02) end
    s:stop()
    R.remove_dir(dir)
  end)

  local function assert_no_reload()
    R.sleep(0.5) -- past the save debounce
    local log = s:log()
    assert.equal(0, R.reload_count(s), "reloaded while shutting down; log:\n" .. log)
    assert.is_nil(log:find("hook: startup v2", 1, true), "v2's services started while shutting down; log:\n" .. log)
  end

  it("SIGHUP does not reload", function()
    assert(s:signal("HUP")) -- the same code: a reload would start v1's services again
    assert_no_reload()
    assert.equal(1, R.count(s:log(), "hook: startup v1"))
  end)

  -- The watcher stays on until the loop ends: a save in the grace period must
  -- not reload (else the old app's shutdown hooks run, v2's startup hooks
  -- start its services, and the final shutdown stops them again).
  it("a saved file does not reload", function()
    R.save_atomic(dir .. "/app.lua", R.render("hooks_app.lua", { VERSION = "v2" }))
    assert_no_reload()
  end)
end)
