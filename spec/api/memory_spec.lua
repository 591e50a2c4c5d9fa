-- What an idle connection keeps in the Lua heap, after it has exchanged a
-- message: its WebSocket table (three array slots), the connection box with
-- the request head, and the handler's coroutine. A handler waiting in
-- ws:iter_text() or ws:receive_text() holds a stack shallow enough for
-- LuaJIT to shrink at the next collection (the handler runs by tail calls;
-- the waits are direct calls into the core): 59 slots instead of 102.
-- About 1,000 bytes per connection here; about 1,450 before, when a waiting
-- handler sat under an xpcall, a pcall and three helper frames.
-- (spec/apps/memory_app.lua)
local rawws = require "helpers.rawws"
local server = require "helpers.server"

local N = 200

describe("idle connection memory (Lua heap)", function()
  local s, mem

  -- A server of its own per case: connections closed by one case would end
  -- during the next one's count.
  before_each(function()
    s = server.start("spec/apps/memory_app.lua")
    mem = rawws.connect(s.port, "/mem")
  end)
  after_each(function()
    if mem then mem:close_socket() end
    s:stop()
  end)

  local function lua_bytes()
    mem:send_text("?")
    return tonumber((mem:recv_message()))
  end

  for _, route in ipairs({ "/iter", "/receive" }) do
    it("a handler waiting in " .. route .. " after an echo keeps under 1,020 bytes", function()
      local conns = {}
      local function open(n)
        for _ = 1, n do
          local c = rawws.connect(s.port, route)
          local i = #conns + 1
          c:send_text("hello " .. i)
          c:expect_echo("hello " .. i)
          conns[i] = c
        end
      end
      -- A first batch warms the JIT up: compiled traces count in the heap.
      open(N)
      local before = lua_bytes()
      open(N)
      local per = (lua_bytes() - before) / N
      io.stderr:write(string.format("[memory] %s: %.0f bytes of Lua heap per idle connection\n", route, per))
      -- (936 and 997 bytes today; with the handler's start compiled by
      -- the JIT, the waiting coroutine's stack grew: 1,030 with /iter.)
      assert.is_true(per < 1020, string.format("%.0f bytes per connection", per))
      -- and each still answers
      for _, i in ipairs({ 1, N, 2 * N }) do
        conns[i]:send_text("again")
        conns[i]:expect_echo("again")
      end
      for _, c in ipairs(conns) do c:close_socket() end
    end)
  end
end)
