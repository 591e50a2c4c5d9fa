-- Shutdown hooks across reloads: each hook learns why it runs ("reload",
-- "shutdown", "failed reload"), and an app's shutdown hooks run once per
-- start. A SIGTERM that comes while a reload's new app is still in its
-- startup hooks shuts that new app down and does not shut the old one down
-- a second time. Also: a module first required by a handler, from a
-- subdirectory, is watched by --reload from then on.
local R = require "reload.support"
local rawws = require "helpers.rawws"

local APP = [[
local nexlua = require "nexlua"
local app = nexlua.App()
app:on_startup(function()
  nexlua.log.info("hook: startup %s", "$VERSION")
  if $SLOW > 0 then nexlua.sleep($SLOW) end
  nexlua.log.info("hook: started %s", "$VERSION")
end)
app:on_shutdown(function(why) nexlua.log.info("hook: shutdown %s (%s)", "$VERSION", tostring(why)) end)
app:ws_route("/ws", function(ws)
  ws:accept()
  local slow_end = false
  for text in ws:iter_text() do
    if text == "slow_end" then slow_end = true end
    if text == "lazy" then ws:send_text(require("sub.lazy").value) else ws:send_text("$VERSION") end
  end
  if slow_end then
    nexlua.sleep(1.5)
    nexlua.log.info("hook: cleaned up %s", "$VERSION")
  end
end)
return app
]]

-- slow: seconds the startup hook waits (true: 3)
local function app_text(version, slow)
  return (APP:gsub("%$VERSION", version):gsub("%$SLOW", tostring(slow == true and 3 or slow or 0)))
end

describe("reload and the app's lifecycle", function()
  teardown(R.remove_all)
  local dir, s

  before_each(function() dir = R.tmpdir() end)
  after_each(function()
    if s then s:stop() end
    R.remove_dir(dir)
  end)

  it("shutdown hooks get why: 'reload' at a reload, 'shutdown' at the exit, once each", function()
    R.write(dir .. "/app.lua", app_text("v1"))
    s = R.start(dir .. "/app.lua")
    assert(s:wait_log("hook: started v1", 5), s:log())
    R.write(dir .. "/app.lua", app_text("v2"))
    assert(s:signal("HUP"))
    R.wait_reloads(s, 1)
    assert(s:signal("TERM"))
    assert(s:wait_log("hook: shutdown v2 %(shutdown%)", 5), s:log())
    local log = s:log()
    assert.equal(1, R.count(log, "hook: shutdown v1 %(reload%)"), log)
    assert.equal(0, R.count(log, "hook: shutdown v1 %(shutdown%)"), log)
    assert.equal(1, R.count(log, "hook: shutdown v2 %(shutdown%)"), log)
  end)

  it("a reload still under way after 1 s is logged then, and once more when it is over", function()
    R.write(dir .. "/app.lua", app_text("v1"))
    s = R.start(dir .. "/app.lua")
    assert(s:wait_log("hook: started v1", 5), s:log())
    R.write(dir .. "/app.lua", app_text("v2", 1.5))
    assert(s:signal("HUP"))
    R.wait_reloads(s, 1)
    local log = s:log()
    local slow = "INFO reloading [^\n]*app%.lua %(SIGHUP%): under way for 1 s %(hooks running%)"
    assert.equal(1, R.count(log, slow), log)
    local at_slow, at_started = log:find(slow), log:find("hook: started v2", 1, true)
    assert.is_true(at_slow < at_started, "logged while the hook ran; log:\n" .. log)
    -- a quick one is one line
    R.write(dir .. "/app.lua", app_text("v3"))
    assert(s:signal("HUP"))
    R.wait_reloads(s, 2)
    R.sleep(1.2)
    assert.equal(1, R.count(s:log(), slow), s:log())
  end)

  -- (the shutdown waits for the connections to close: the new app's
  -- startup hook is cancelled at once, not after that wait)
  it("SIGTERM during the new app's slow startup cancels it at once, while connections still close",
    function()
      R.write(dir .. "/app.lua", app_text("v1"))
      s = R.start(dir .. "/app.lua")
      assert(s:wait_log("hook: started v1", 5), s:log())
      local c = rawws.connect(s.port, "/ws")
      assert.equal(101, c.status)
      c:send_text("slow_end")
      assert.equal("v1", (c:recv_message()))
      R.write(dir .. "/app.lua", app_text("v2", true))
      assert(s:signal("HUP"))
      assert(s:wait_log("hook: startup v2", 5), s:log())
      assert(s:signal("TERM"))
      c:close_socket()
      assert(s:wait_log("hook: cleaned up v1", 5), s:log())
      local deadline = R.now() + 8
      while s:alive() and R.now() < deadline do R.sleep(0.05) end
      local log = s:log()
      local cancelled = assert(log:find("startup (reload) hook #1", 1, true), log)
      assert.is_true(cancelled < assert(log:find("hook: cleaned up v1", 1, true)), log)
      assert.is_nil(log:find("hook: started v2", 1, true), log)
      assert.is_true(assert(log:find("hook: cleaned up v1", 1, true)) < assert(log:find("hook: shutdown v2 (shutdown)",
        1, true)), "the new app's shutdown hooks ran before the connections had closed:\n" .. log)
    end)

  it("SIGTERM during the new app's slow startup: the new app is shut down, the old one not twice",
    function()
      R.write(dir .. "/app.lua", app_text("v1"))
      s = R.start(dir .. "/app.lua")
      assert(s:wait_log("hook: started v1", 5), s:log())
      R.write(dir .. "/app.lua", app_text("v2", true))
      assert(s:signal("HUP"))
      assert(s:wait_log("hook: startup v2", 5), s:log())
      assert(s:signal("TERM"))
      local deadline = R.now() + 8
      while s:alive() and R.now() < deadline do R.sleep(0.05) end
      assert.is_false(s:alive(), "the server did not exit")
      local log = s:log()
      assert.equal(1, R.count(log, "hook: shutdown v1"), log)
      assert.equal(1, R.count(log, "hook: shutdown v1 %(reload%)"), log)
      assert.equal(1, R.count(log, "hook: shutdown v2 %(shutdown%)"), log)
      assert.equal(0, R.reload_count(s), log)
      assert.equal(1, R.count(log, "INFO reload of [^\n]*app%.lua abandoned: the server is shutting down"),
        log)
    end)

  -- (the old app's shutdown hooks for the reload take 1 s: the SIGTERM
  -- comes while they run, and the new app never starts)
  it("SIGTERM during the old app's shutdown for a reload: the reload is logged as abandoned",
    function()
      R.write(dir .. "/app.lua", [[
local nexlua = require "nexlua"
local app = nexlua.App()
app:on_shutdown(function(why)
  nexlua.log.info("hook: shutdown v1 (%s)", why)
  if why == "reload" then nexlua.sleep(1) end
end)
app:ws_route("/ws", function(ws) ws:accept() end)
return app
]])
      s = R.start(dir .. "/app.lua")
      R.write(dir .. "/app.lua", app_text("v2"))
      assert(s:signal("HUP"))
      assert(s:wait_log("hook: shutdown v1 %(reload%)", 5), s:log())
      assert(s:signal("TERM"))
      assert(s:wait_log("INFO reload of [^\n]*app%.lua abandoned: the server is shutting down", 5),
        s:log())
      R.sleep(1.2) -- the old app's hooks are over: the reload's task does not say it again
      assert.equal(1, R.count(s:log(), "abandoned"), s:log())
      assert.equal(0, R.count(s:log(), "still serving the previous version"), s:log())
      assert.equal(0, R.count(s:log(), "hook: startup v2"), s:log())
    end)

  -- Once the new app serves, the reload is done: a SIGTERM while its
  -- on_reload hooks run does not abandon it.
  it("SIGTERM during the new app's on_reload hooks: the reload is not logged as abandoned", function()
    R.write(dir .. "/app.lua", app_text("v1"))
    s = R.start(dir .. "/app.lua")
    assert(s:wait_log("hook: started v1", 5), s:log())
    R.write(dir .. "/app.lua", (app_text("v2"):gsub("return app\n$", [[
app:on_reload(function()
  nexlua.log.info("hook: on_reload begins")
  nexlua.sleep(1.5)
end)
return app
]])))
    assert(s:signal("HUP"))
    assert(s:wait_log("hook: on_reload begins", 5), s:log())
    assert(s:signal("TERM"))
    local deadline = R.now() + 8
    while s:alive() and R.now() < deadline do R.sleep(0.05) end
    local log = s:log()
    assert.equal(0, R.count(log, "abandoned"), log)
    assert.equal(1, R.count(log, "hook: shutdown v2 %(shutdown%)"), log)
  end)

  -- The rollback runs the old app's startup hooks again: when one of them
  -- fails too, the entry says so.
  it("a failed reload whose rollback fails too says so", function()
    local flaky = [[
local nexlua = require "nexlua"
local starts = nexlua.keep("starts", function() return { n = 0 } end)
local app = nexlua.App()
app:on_startup(function()
  starts.n = starts.n + 1
  if starts.n == 2 then error("$WHAT startup failed") end
end)
app:ws_route("/ws", function(ws) ws:accept() ws:send_text("$WHAT") end)
return app
]]
    -- start 1: v1; start 2: v2 fails; start 3 would be the rollback of v1:
    -- here it is the 2nd call for v1's hook after a counter bump by v2
    R.write(dir .. "/app.lua", (flaky:gsub("%$WHAT", "v1"):gsub("starts.n == 2", "starts.n == 3")))
    s = R.start(dir .. "/app.lua")
    R.write(dir .. "/app.lua", (flaky:gsub("%$WHAT", "v2")))
    assert(s:signal("HUP"))
    assert(s:wait_log("reload of [^\n]*failed, still serving the previous version: a startup hook " ..
      "of the new app failed; and a startup hook of the previous version failed again at the " ..
      "rollback", 5), s:log())
    local c = R.connect(s, "/ws")
    R.close(c)
  end)

  it("a reload to an app with no routes is warned about", function()
    R.write(dir .. "/app.lua", app_text("v1"))
    s = R.start(dir .. "/app.lua")
    R.write(dir .. "/app.lua", 'return require("nexlua").App()\n')
    assert(s:signal("HUP"))
    R.wait_reloads(s, 1)
    assert(s:wait_log("WARN the reloaded app has no routes: every new request gets HTTP 404", 3), s:log())
  end)

  it("a new startup hook still running after 10 s is named in a warning; the old app serves on",
    function()
      R.write(dir .. "/app.lua", app_text("v1"))
      s = R.start(dir .. "/app.lua")
      assert(s:wait_log("hook: started v1", 5), s:log())
      R.write(dir .. "/app.lua", app_text("v2", 1e9))
      assert(s:signal("HUP"))
      assert(s:wait_log("hook: startup v2", 5), s:log())
      assert(s:wait_log("WARN startup %(reload%) hook #1 %([^\n]*/app%.lua:%d+%) has not returned after 10 s",
        13), s:log())
      local c = R.connect(s, "/ws")
      assert.equal("v1", R.ask(c, "?"))
      R.close(c)
      assert.equal(0, R.reload_count(s), s:log())
      -- A hook that returns in time is not warned about.
      assert.equal(0, R.count(s:log(), "startup hook #1 %(.-%) has not returned"), s:log())
    end)

  it("--reload watches a module first required by a handler, from a subdirectory", function()
    R.write(dir .. "/app.lua", app_text("v1"))
    os.execute("mkdir -p " .. dir .. "/sub")
    R.write(dir .. "/sub/lazy.lua", 'return { value = "lazy 1" }\n')
    s = R.start(dir .. "/app.lua", { "--reload" })
    local c = R.connect(s, "/ws")
    assert.equal("lazy 1", R.ask(c, "lazy"))
    R.sleep(0.3) -- the watch of sub/ is set up after the require
    R.save_atomic(dir .. "/sub/lazy.lua", 'return { value = "lazy 2" }\n')
    R.wait_reloads(s, 1)
    assert.matches("%(file changed: sub/lazy%.lua%)", R.reloaded_lines(s)[1])
    local c2 = R.connect(s, "/ws")
    assert.equal("lazy 2", R.ask(c2, "lazy"))
    R.close(c)
    R.close(c2)
  end)

  it("warns that changed App{...} options wait for the next start", function()
    local function text(size)
      return "local nexlua = require 'nexlua'\n" ..
        "local app = nexlua.App { max_message_size = " .. size .. ", ping_interval = 20 }\n" ..
        "app:ws_route('/ws', function(ws) ws:accept() end)\nreturn app\n"
    end
    R.write(dir .. "/app.lua", text(1000))
    s = R.start(dir .. "/app.lua")
    R.write(dir .. "/app.lua", text(2000))
    assert(s:signal("HUP"))
    R.wait_reloads(s, 1)
    assert.matches("WARN App options changed %(max_message_size%): they take effect at the next start",
      s:log())
    -- the same options again: no warning
    assert(s:signal("HUP"))
    R.wait_reloads(s, 2)
    assert.equal(1, R.count(s:log(), "App options changed"))
  end)

  it("SIGTERM while a reload runs the old app's shutdown hooks: they finish before the exit", function()
    local text = [[
local nexlua = require "nexlua"
local app = nexlua.App()
app:on_shutdown(function(why)
  nexlua.log.info("hook: flushing (%s)", why)
  nexlua.sleep(1)
  nexlua.log.info("hook: flushed (%s)", why)
end)
app:ws_route("/ws", function(ws) ws:accept() end)
return app
]]
    R.write(dir .. "/app.lua", text)
    s = R.start(dir .. "/app.lua")
    assert(s:signal("HUP"))
    assert(s:wait_log("hook: flushing %(reload%)", 5), s:log())
    assert(s:signal("TERM"))
    local deadline = R.now() + 8
    while s:alive() and R.now() < deadline do R.sleep(0.05) end
    assert.is_false(s:alive(), "the server did not exit")
    local log = s:log()
    assert.equal(1, R.count(log, "hook: flushing"), log)
    assert.equal(1, R.count(log, "hook: flushed %(reload%)"), log)
    assert.equal(0, R.reload_count(s), log) -- the new app never started
  end)

  it("--reload watches a module required later even when the app put its own searcher first",
    function()
      local text = [[
local nexlua = require "nexlua"
table.insert(package.loaders, 2, function(name) return nil end) -- a searcher of the app's
local app = nexlua.App()
app:ws_route("/ws", function(ws)
  ws:accept()
  for _ in ws:iter_text() do ws:send_text(require("sub.lazy").value) end
end)
return app
]]
      R.write(dir .. "/app.lua", text)
      os.execute("mkdir -p " .. dir .. "/sub")
      R.write(dir .. "/sub/lazy.lua", 'return { value = "lazy 1" }\n')
      s = R.start(dir .. "/app.lua", { "--reload" })
      local c = R.connect(s, "/ws")
      assert.equal("lazy 1", R.ask(c, "?"))
      R.sleep(0.3)
      R.save_atomic(dir .. "/sub/lazy.lua", 'return { value = "lazy 2" }\n')
      R.wait_reloads(s, 1)
      local c2 = R.connect(s, "/ws")
      assert.equal("lazy 2", R.ask(c2, "?"))
      R.close(c)
      R.close(c2)
    end)
end)
