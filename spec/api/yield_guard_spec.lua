-- A waiting API called where the coroutine cannot be suspended (issue #3):
-- inside require, a C function's callback (string.gsub, table.sort), a
-- coroutine of the user's own, a __gc metamethod. The error says so, and the
-- connection keeps working. (spec/apps/yield_guard_app.lua, sleepy_module.lua)
local TestClient = require "nexlua.testing"

local CANNOT_WAIT = "nexlua.sleep cannot wait here: it was called inside require(), a __gc metamethod, "
  .. "or a callback of a C function"

describe("waiting where a coroutine cannot be suspended", function()
  local client
  before_each(function() client = TestClient(dofile("spec/apps/yield_guard_app.lua"), { timeout = 3 }) end)
  after_each(function() client:close() end)

  local cases = {
    { "require", "inside require() of a module that sleeps while it loads", CANNOT_WAIT },
    { "gsub", "inside a string.gsub callback", CANNOT_WAIT },
    { "sort", "inside a table.sort comparator", CANNOT_WAIT },
    { "gc", "inside a __gc metamethod", CANNOT_WAIT },
    {
      "wrap", "inside the user's own coroutine.wrap",
      "nexlua.sleep must be called from a nexlua coroutine (a handler, middleware, hook or task), "
        .. "not from the main chunk or a coroutine of your own",
    },
    { "receive-in-gsub", "ws:receive_text() inside a string.gsub callback", "receive cannot wait here" },
  }
  for _, case in ipairs(cases) do
    local what, where, expected = case[1], case[2], case[3]
    it("raises a clear error " .. where .. ", and the connection keeps working", function()
      local ws = client:websocket_connect("/try/" .. what)
      local r = ws:receive_json(2)
      assert.is_false(r.ok, "the wait did not fail: " .. r.message)
      assert.matches(expected, r.message, 1, true)
      if what == "wrap" then -- (raised in C: it names the app's line all the same)
        assert.matches("yield_guard_app%.lua:%d+: nexlua%.sleep must", r.message)
      end
      -- never LuaJIT's terse message alone
      assert.is_nil(r.message:find("^attempt to yield"), r.message)
      -- the same coroutine can wait again
      local after = ws:receive_json(2)
      assert.is_true(after.slept >= 0.04, "slept " .. tostring(after.slept))
      ws:send_text("ping")
      assert.equal("echo ping", ws:receive_text(2))
    end)
  end
end)
