-- State and lifecycle across reloads (issue #4): nexlua.keep(name, init)
-- returns the same value in every generation (init runs once), so members
-- who joined a chat room before and after a reload share the room;
-- app:on_reload(fn) runs fn(old_app) after a successful reload; the old
-- app's shutdown hooks, then the new app's startup hooks run on a reload (a
-- task started by the old startup hook is stopped by its shutdown hook, and
-- the new one started); a failing new startup hook puts the old services back.
local R = require "reload.support"

describe("across reloads", function()
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

  -- Position of the first plain occurrence of text in the log (asserted).
  local function at(log, text)
    local i = log:find(text, 1, true)
    assert(i, "expected in the log: " .. text .. "\n--- log ---\n" .. log)
    return i
  end

  it("topics: subscribers of every generation get what any generation publishes", function()
    local app_path = dir .. "/app.lua"
    R.write(app_path, R.render("topics_app.lua", { VERSION = "v1" }))
    s = R.start(app_path, { "--reload" })
    local a = open("/room/r1")
    assert.equal("in room:r1 [v1]", a:recv_message())
    R.save_atomic(app_path, R.render("topics_app.lua", { VERSION = "v2" }))
    R.wait_reloads(s, 1)
    local b = open("/room/r1")
    assert.equal("in room:r1 [v2]", b:recv_message())
    a:send_text("from a") -- published by the v1 code
    for _, c in ipairs { a, b } do assert.equal("from a [v1] to 2", c:recv_message()) end
    b:send_text("from b") -- published by the v2 code
    for _, c in ipairs { a, b } do assert.equal("from b [v2] to 2", c:recv_message()) end
    assert.equal(1000, R.close(a))
    b:send_text("alone")
    assert.equal("alone [v2] to 1", b:recv_message())
  end)

  describe("nexlua.keep", function()
    local function kept_id()
      local c = open("/kept")
      local id, version = c:recv_message():match("^(.-) (%S+)$")
      R.close(c)
      return id, version
    end

    it("returns the same table in every generation, and init runs once", function()
      local app_path = dir .. "/app.lua"
      R.write(app_path, R.render("chat_app.lua", { VERSION = "v1" }))
      s = R.start(app_path, { "--reload" })
      local id1, v = kept_id()
      assert.equal("v1", v)
      assert.matches("^table: ", id1)
      for i = 2, 4 do
        R.save_atomic(app_path, R.render("chat_app.lua", { VERSION = "v" .. i }))
        R.wait_reloads(s, i - 1)
        local id
        id, v = kept_id()
        assert.same({ id1, "v" .. i }, { id, v })
      end
      assert(s:signal("HUP"))
      R.wait_reloads(s, 4)
      assert.equal(id1, (kept_id()))
      assert.equal(1, R.count(s:log(), "rooms: init"))
    end)

    it("a member who joined before a reload and one who joined after it share the room", function()
      local app_path = dir .. "/app.lua"
      R.write(app_path, R.render("chat_app.lua", { VERSION = "v1" }))
      s = R.start(app_path, { "--reload" })

      local alice = open("/chat/lobby/alice")
      assert.equal("alice joined [v1]", alice:recv_message())

      R.save_atomic(app_path, R.render("chat_app.lua", { VERSION = "v2" }))
      R.wait_reloads(s, 1)

      local bob = open("/chat/lobby/bob")
      assert.equal("bob joined [v2]", bob:recv_message())
      assert.equal("bob joined [v2]", alice:recv_message())

      alice:send_text("hi bob") -- handled by the v1 code
      assert.equal("alice: hi bob [v1]", alice:recv_message())
      assert.equal("alice: hi bob [v1]", bob:recv_message())
      bob:send_text("hi alice") -- handled by the v2 code
      assert.equal("bob: hi alice [v2]", bob:recv_message())
      assert.equal("bob: hi alice [v2]", alice:recv_message())

      -- a third generation, on SIGHUP after a save, and a third member
      R.save_atomic(app_path, R.render("chat_app.lua", { VERSION = "v3" }))
      R.wait_reloads(s, 2)
      assert(s:signal("HUP"))
      R.wait_reloads(s, 3)
      local carol = open("/chat/lobby/carol")
      for _, c in ipairs { carol, alice, bob } do assert.equal("carol joined [v3]", c:recv_message()) end
      carol:send_text("hello all")
      for _, c in ipairs { carol, alice, bob } do assert.equal("carol: hello all [v3]", c:recv_message()) end
      alice:send_text("welcome")
      for _, c in ipairs { carol, alice, bob } do assert.equal("alice: welcome [v1]", c:recv_message()) end

      -- another room is another kept entry
      local dave = open("/chat/attic/dave")
      assert.equal("dave joined [v3]", dave:recv_message())
      bob:send_text("still here")
      for _, c in ipairs { carol, alice, bob } do assert.equal("bob: still here [v2]", c:recv_message()) end
      dave:expect_silence(0.2)

      assert.equal(1000, R.close(bob))
      for _, c in ipairs { carol, alice } do assert.equal("bob left [v2]", c:recv_message()) end
      assert.equal(1, R.count(s:log(), "rooms: init"))
    end)
  end)

  describe("lifecycle hooks", function()
    local app_path

    -- Reads messages from the subscriber until pred(msg) is true; returns
    -- every message read (raises on a close or a 2 s silence).
    local function read_until(c, pred)
      local seen = {}
      repeat
        local msg = c:recv_message(2)
        seen[#seen + 1] = msg
      until pred(msg)
      return seen
    end

    before_each(function()
      app_path = dir .. "/app.lua"
      R.write(app_path, R.render("hooks_app.lua", { VERSION = "v1" }))
      s = R.start(app_path, { "--reload" })
    end)

    it("run old shutdown, new startup, then on_reload(old_app): the old task stops, the new one starts", function()
      local sub = open("/ticks")
      read_until(sub, function(m) return m == "tick v1" end)
      R.save_atomic(app_path, R.render("hooks_app.lua", { VERSION = "v2" }))
      R.wait_reloads(s, 1)

      local log = s:log()
      local order = {
        at(log, "hook: startup v1"),
        at(log, "hook: shutdown v1"),
        at(log, "hook: ticker v1 stopped (cancelled)"),
        at(log, "hook: startup v2"),
        at(log, "hook: on_reload v2 replaced v1 (another app)"),
        at(log, "INFO reloaded "),
      }
      for i = 2, #order do
        assert(order[i - 1] < order[i], "hooks out of order; log:\n" .. log)
      end
      assert.equal(1, R.count(log, "hook: startup v1"))
      assert.equal(1, R.count(log, "hook: on_reload"))

      -- The subscriber (a v1 connection, still open) now gets v2's ticks
      -- only: once the first one came, v1's ticker never sends again.
      read_until(sub, function(m) return m == "tick v2" end)
      for _ = 1, 15 do assert.equal("tick v2", sub:recv_message(2)) end
      -- and its own handler is still v1's
      sub:send_text("ping")
      local seen = read_until(sub, function(m) return m:match("^echo") end)
      assert.equal("echo v1 ping", seen[#seen])

      -- A second reload: on_reload gets the app it replaces (v2 now).
      R.save_atomic(app_path, R.render("hooks_app.lua", { VERSION = "v3" }))
      R.wait_reloads(s, 2)
      log = s:log()
      assert(at(log, "hook: ticker v2 stopped (cancelled)") < at(log, "hook: startup v3"))
      at(log, "hook: on_reload v3 replaced v2 (another app)")
      read_until(sub, function(m) return m == "tick v3" end)
      for _ = 1, 5 do assert.equal("tick v3", sub:recv_message(2)) end

      -- At exit, the current app's shutdown hook runs.
      assert.equal(1000, R.close(sub))
      assert.is_true(s:stop(), "no clean exit on SIGTERM; log:\n" .. s:log())
      at(s:log(), "hook: shutdown v3")
      assert.equal(1, R.count(s:log(), "hook: shutdown v1"))
      assert.equal(1, R.count(s:log(), "hook: shutdown v2"))
    end)

    it("a new startup hook that fails: no on_reload, and the old app's services are started again", function()
      local sub = open("/ticks")
      read_until(sub, function(m) return m == "tick v1" end)
      R.save_atomic(app_path, R.render("broken_startup.lua"))
      R.wait_failures(s, 1)
      local log = s:log()
      assert(at(log, "hook: shutdown v1") < at(log, "cannot open the database"))
      assert.equal(2, R.count(log, "hook: startup v1"), "the old startup hook runs again; log:\n" .. log)
      assert.equal(0, R.count(log, "hook: on_reload"))
      assert.equal(0, R.reload_count(s))
      -- v1's ticker is back: ticks keep coming to the open subscriber
      R.sleep(0.1)
      for _ = 1, 5 do assert.equal("tick v1", sub:recv_message(2)) end

      R.save_atomic(app_path, R.render("hooks_app.lua", { VERSION = "v2" }))
      R.wait_reloads(s, 1)
      at(s:log(), "hook: on_reload v2 replaced v1 (another app)")
      read_until(sub, function(m) return m == "tick v2" end)
      for _ = 1, 5 do assert.equal("tick v2", sub:recv_message(2)) end
    end)
  end)
end)
