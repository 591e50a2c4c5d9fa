-- Hot reload triggers (issue #4), against a real nexlua process: --reload
-- picks up a save of the app file and of the Lua modules it requires from its
-- directory, an editor's save (temp file renamed over the original), and
-- gives one reload for a burst of saves; SIGHUP reloads on demand, also
-- without --reload.
local R = require "reload.support"

describe("hot reload triggers", function()
  teardown(R.remove_all)

  local dir, s

  before_each(function() dir = R.tmpdir() end)
  after_each(function()
    if s then s:stop() end
    s = nil
    R.remove_dir(dir)
  end)

  -- The reply of a new connection to /ws.
  local function fresh_reply(text)
    local c = R.connect(s, "/ws")
    local reply = R.ask(c, text or "x")
    R.close(c)
    return reply
  end

  describe("--reload", function()
    before_each(function()
      s = R.start(R.write_versioned(dir, { VERSION = "v1" }), { "--reload" })
      assert.equal("v1|hello|!|1|x", fresh_reply())
    end)

    it("picks up a save of the app file", function()
      R.write_versioned(dir, { VERSION = "v2" })
      R.wait_reloads(s, 1)
      assert.equal("v2|hello|!|1|x", fresh_reply())
      local line = R.reloaded_lines(s)[1]
      assert.matches("%(file changed: app%.lua%)", line)
      assert.matches(": generation 2,", line, 1, true)
    end)

    it("names every file of a burst of saves in its one reload", function()
      R.write_versioned(dir, { VERSION = "v2", GREETING = "bonjour" }) -- app.lua and greeting.lua
      R.wait_reloads(s, 1)
      assert.equal("v2|bonjour|!|1|x", fresh_reply())
      assert.matches("%(files changed: app%.lua, greeting%.lua%)", R.reloaded_lines(s)[1])
    end)

    it("picks up a save of a module the app requires from its directory", function()
      R.write_versioned(dir, { GREETING = "bonjour" })
      R.wait_reloads(s, 1)
      assert.equal("v1|bonjour|!|1|x", fresh_reply())
      assert.matches("%(file changed: greeting%.lua%)", R.reloaded_lines(s)[1])
    end)

    it("picks up a save of a module the app requires from a subdirectory of its own", function()
      R.write_versioned(dir, { SUFFIX = "?" })
      R.wait_reloads(s, 1)
      assert.equal("v1|hello|?|1|x", fresh_reply())
      -- named from the app's directory
      assert.matches("%(file changed: lib/suffix%.lua%)", R.reloaded_lines(s)[1])
    end)

    it("picks up an editor's save: a temp file in the same directory renamed over the original", function()
      R.write_versioned(dir, { VERSION = "v2" }, R.save_atomic)
      R.wait_reloads(s, 1)
      assert.equal("v2|hello|!|1|x", fresh_reply())
      R.sleep(0.4) -- the temp file's own events must not give a second reload
      assert.equal(1, R.reload_count(s))
      -- and the same for a module
      R.write_versioned(dir, { VERSION = "v2", GREETING = "hallo" }, R.save_atomic)
      R.wait_reloads(s, 2)
      assert.equal("v2|hallo|!|1|x", fresh_reply())
    end)

    it("gives one reload for a burst of 5 saves inside the debounce window, with the last save's code", function()
      local texts = {}
      for i = 1, 5 do
        texts[i] = R.render("versioned_app.lua", { VERSION = "burst" .. i, EXTRA_ROUTES = 0 })
      end
      local t0 = R.now()
      for i = 1, 5 do
        -- plain writes and editor saves, mixed
        local save = i % 2 == 0 and R.save_atomic or R.write
        save(dir .. "/app.lua", texts[i])
        if i < 5 then R.sleep(0.008) end
      end
      local took = R.now() - t0
      R.wait_reloads(s, 1)
      R.sleep(0.6) -- well past the debounce: nothing else may come
      -- Each gap between saves (8 ms of sleep plus the write) is far below
      -- the 100 ms debounce, so the burst is one reload. Only if this machine
      -- stalled for a whole debounce window between two saves may a second
      -- reload come; that is correct behaviour, not a failure.
      local gaps_over_debounce = took >= 0.1 and math.floor(took / 0.1) or 0
      assert.is_true(R.reload_count(s) >= 1 and R.reload_count(s) <= 1 + gaps_over_debounce,
        string.format("%d reloads for one burst of %.1f ms; log:\n%s", R.reload_count(s), took * 1000,
          s:log()))
      assert.equal(0, R.failure_count(s))
      assert.equal("burst5|hello|!|1|x", fresh_reply())
    end)

    -- The watches outlive a reload, and the events queued on them: a save
    -- while a reload loads the app (here 0.5 s of CPU in its main chunk)
    -- gives a second reload, which serves it. (Each reload once made the
    -- watches anew, and such a save was lost for good.)
    it("picks up a save made while a reload is loading the app", function()
      local slow = "local t = os.clock() + 0.5 while os.clock() < t do end\n"
      R.save_atomic(dir .. "/app.lua", slow .. R.render("versioned_app.lua", { VERSION = "v2", EXTRA_ROUTES = 0 }))
      R.sleep(0.35) -- the debounce (0.1 s), then the load has begun
      R.save_atomic(dir .. "/app.lua", R.render("versioned_app.lua", { VERSION = "v3", EXTRA_ROUTES = 0 }))
      R.wait_reloads(s, 2)
      assert.equal("v3|hello|!|1|x", fresh_reply())
      assert.equal(0, R.failure_count(s))
    end)

    -- The watches follow a directory's inode: one moved away and replaced
    -- by a copy (a release put in place) is watched again after a SIGHUP.
    it("after the app's directory is replaced by a copy, a SIGHUP reload watches the copy", function()
      local old = dir .. ".old"
      assert(os.execute(string.format("mv '%s' '%s' && cp -r '%s' '%s'", dir, old, old, dir)))
      finally(function() R.remove_dir(old) end)
      assert(s:signal("HUP"))
      R.wait_reloads(s, 1)
      R.write_versioned(dir, { VERSION = "v3" })
      R.wait_reloads(s, 2)
      assert.equal("v3|hello|!|1|x", fresh_reply())
    end)

    it("after the app's directory is moved away and replaced by a copy, the copy is watched " ..
      "(one reload for the copy, then its saves)", function()
      local old = dir .. ".old"
      finally(function() R.remove_dir(old) end)
      assert(os.execute(string.format("mv '%s' '%s'", dir, old)))
      R.sleep(0.3)
      assert(os.execute(string.format("cp -r '%s' '%s'", old, dir)))
      R.wait_reloads(s, 1)
      assert.matches("%(file changed: %(directory replaced%)%)", R.reloaded_lines(s)[1])
      R.write_versioned(dir, { VERSION = "v3" })
      R.wait_reloads(s, 2)
      assert.equal("v3|hello|!|1|x", fresh_reply())
      -- the old directory is no longer watched
      R.write_versioned(old, { VERSION = "OLD" })
      R.sleep(0.5)
      assert.equal(2, R.reload_count(s))
    end)

    it("does not reload for a save of a file that is not Lua", function()
      R.write(dir .. "/notes.txt", "not code\n")
      R.sleep(0.5)
      assert.equal(0, R.reload_count(s))
      assert.equal("v1|hello|!|1|x", fresh_reply())
    end)

    it("does not reload for files without a dot in their name (a log, a Makefile)", function()
      for i = 1, 3 do
        R.write(dir .. "/log", string.rep("line\n", i))
        R.write(dir .. "/Makefile", "all:\n")
        R.sleep(0.2)
      end
      R.sleep(0.3)
      assert.equal(0, R.reload_count(s))
      assert.equal("v1|hello|!|1|x", fresh_reply())
    end)

    it("keeps serving when a FIFO appears in the app's directory", function()
      assert(os.execute("mkfifo " .. dir .. "/data.fifo") == 0)
      R.sleep(0.3)
      assert.equal("v1|hello|!|1|x", fresh_reply())
      assert.equal(0, R.reload_count(s))
    end)

    it("reloads for every separate save, and on SIGHUP as well", function()
      for i = 2, 4 do
        R.write_versioned(dir, { VERSION = "v" .. i })
        R.wait_reloads(s, i - 1)
        assert.equal("v" .. i .. "|hello|!|1|x", fresh_reply())
      end
      assert(s:signal("HUP"))
      R.wait_reloads(s, 4)
      assert.matches("%(SIGHUP%): generation 5,", R.reloaded_lines(s)[4])
      assert.equal("v4|hello|!|1|x", fresh_reply())
    end)
  end)

  describe("--reload, a module the app starts to require after a reload", function()
    local app_path

    local function plugin_reply()
      local c = R.connect(s, "/ws")
      local reply = c:recv_message()
      R.close(c)
      return reply
    end

    before_each(function()
      app_path = dir .. "/app.lua"
      R.write(app_path, R.render("plugin_app.lua", { PLUGIN = "" }))
      s = R.start(app_path, { "--reload" })
      assert.equal("none", plugin_reply())
    end)

    it("from the app's directory: its saves are picked up", function()
      R.write(dir .. "/extra.lua", 'return { text = "one" }\n')
      R.save_atomic(app_path, R.render("plugin_app.lua", { PLUGIN = "extra" }))
      R.wait_reloads(s, 1)
      assert.equal("one", plugin_reply())
      R.write(dir .. "/extra.lua", 'return { text = "two" }\n')
      R.wait_reloads(s, 2)
      assert.equal("two", plugin_reply())
    end)

    -- The watches are renewed after every reload: a subdirectory first used
    -- by a later version is watched too.
    it("from a subdirectory the first version did not use: its saves are picked up", function()
      os.execute("mkdir " .. require("helpers.server").shquote(dir .. "/plugins"))
      R.write(dir .. "/plugins/extra.lua", 'return { text = "one" }\n')
      R.save_atomic(app_path, R.render("plugin_app.lua", { PLUGIN = "plugins.extra" }))
      R.wait_reloads(s, 1)
      assert.equal("one", plugin_reply())
      R.write(dir .. "/plugins/extra.lua", 'return { text = "two" }\n')
      R.wait_reloads(s, 2, 2)
      assert.equal("two", plugin_reply())
    end)
  end)

  describe("--reload, a new directory without Lua files", function()
    it("does not reload (a log or data directory the app makes, say)", function()
      s = R.start(R.write_versioned(dir, { VERSION = "v1" }), { "--reload" })
      local before = R.reload_count(s) + R.failure_count(s)
      os.execute("mkdir " .. require("helpers.server").shquote(dir .. "/uploads"))
      R.write(dir .. "/uploads/note.txt", "not Lua\n")
      R.sleep(0.6)
      assert.equal(before, R.reload_count(s) + R.failure_count(s), s:log())
    end)

    it("runs nothing a directory's name says (a name from a client: $(...), backquotes)", function()
      s = R.start(R.write_versioned(dir, { VERSION = "v1" }), { "--reload" })
      local mark = "nxpwn" .. math.random(1, 1e9)
      finally(function() os.remove(mark); os.remove(mark .. "b") end)
      local q = require("helpers.server").shquote
      os.execute("mkdir " .. q(dir .. "/up$(touch " .. mark .. ")'\"`touch " .. mark .. "b`"))
      R.sleep(0.6)
      -- (a command would run in the server's directory, which is this one)
      assert.is_nil(io.open(mark), "a directory's name ran a command")
      assert.is_nil(io.open(mark .. "b"), "a directory's name ran a command")
    end)
  end)

  describe("--reload, a subdirectory of modules replaced (as by a git checkout)", function()
    -- The watch on lib/ dies with the directory; the new one must be watched.
    it("still picks up saves of the modules in the new directory", function()
      s = R.start(R.write_versioned(dir, { VERSION = "v1" }), { "--reload" })
      os.execute("rm -rf " .. require("helpers.server").shquote(dir .. "/lib"))
      R.wait_reloads(s, 1) -- lib/suffix.lua went away: a reload (that fails or not)
      os.execute("mkdir " .. require("helpers.server").shquote(dir .. "/lib"))
      R.write(dir .. "/lib/suffix.lua", 'return { text = "?" }\n')
      R.sleep(0.4)
      local before = R.reload_count(s) + R.failure_count(s)
      R.write(dir .. "/lib/suffix.lua", 'return { text = "#" }\n')
      R.wait_count(s, function() return R.reload_count(s) + R.failure_count(s) end, before + 1,
        "a reload after a save in the new lib/", 2)
      assert.equal("v1|hello|#|1|x", fresh_reply())
    end)
  end)

  describe("SIGHUP", function()
    it("reloads on demand without --reload, where a save alone does nothing", function()
      s = R.start(R.write_versioned(dir, { VERSION = "v1" }))
      assert.matches("listening on", s:log())
      assert.is_nil(s:log():match("watching"), "no watcher without --reload")
      R.write_versioned(dir, { VERSION = "v2", GREETING = "hi" })
      R.sleep(0.5)
      assert.equal(0, R.reload_count(s))
      assert.equal("v1|hello|!|1|x", fresh_reply())

      assert(s:signal("HUP"))
      R.wait_reloads(s, 1)
      assert.matches("%(SIGHUP%): generation 2,", R.reloaded_lines(s)[1])
      assert.equal("v2|hi|!|1|x", fresh_reply())

      -- again, with nothing changed: a new generation of the same code
      assert(s:signal("HUP"))
      R.wait_reloads(s, 2)
      assert.matches("%(SIGHUP%): generation 3,", R.reloaded_lines(s)[2])
      assert.equal("v2|hi|!|1|x", fresh_reply())
      assert.is_true(s:alive())
    end)
  end)
end)
