-- Sending to other connections (issue #3): by hand from a handler's
-- coroutine and from a task; a slow reader never blocks the sender; a send
-- to a connection that is gone raises WebSocketDisconnect.
-- (spec/apps/broadcast_app.lua)
local TestClient = require "nexlua.testing"
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local clock = require "helpers.clock"

local APP = "spec/apps/broadcast_app.lua"

describe("sending to other connections, in-process (TestClient)", function()
  local app, client
  before_each(function()
    app = dofile(APP)
    client = TestClient(app, { timeout = 3 })
  end)
  after_each(function() client:close() end)

  local function member(name)
    local ws = client:websocket_connect("/member/" .. name)
    assert.equal("joined " .. name, ws:receive_text(2))
    return ws
  end

  local function gone(name)
    return TestClient.wait_until(function()
      for _, n in ipairs(app.state.gone) do
        if n == name then return true end
      end
      return false
    end, 2)
  end

  it("broadcasts by hand from one handler's coroutine to every other connection", function()
    local a, b, c = member("a"), member("b"), member("c")
    a:send_text("broadcast:news")
    assert.equal("sent to 2", a:receive_text(2))
    assert.equal("from a: news", b:receive_text(2))
    assert.equal("from a: news", c:receive_text(2))
  end)

  it("broadcasts from a task", function()
    local a, b = member("a"), member("b")
    a:send_text("broadcast-task:later")
    assert.equal("task spawned", a:receive_text(2))
    assert.equal("from a: later", b:receive_text(2))
    assert.equal("task sent to 1", a:receive_text(2))
  end)

  it("a send to a connection whose TCP dropped raises WebSocketDisconnect (1006)", function()
    local a, g = member("a"), member("g")
    a:send_text("send-to:g:first")
    assert.equal("send ok", a:receive_text(2))
    assert.equal("first", g:receive_text(2))
    g:abort()
    assert.is_true(gone("g"), "the server did not see g leave")
    a:send_text("send-to:g:second")
    assert.equal("send failed: disconnect=true code=1006", a:receive_text(2))
    -- the sender's own connection is unaffected
    a:send_text("echo:still here")
    assert.equal("echo still here", a:receive_text(2))
  end)

  it("a send to a connection that closed cleanly raises WebSocketDisconnect with its code", function()
    local a, g = member("a"), member("g")
    g:close(4001, "bye")
    assert.is_true(gone("g"), "the server did not see g leave")
    a:send_text("send-to:g:anyone?")
    assert.equal("send failed: disconnect=true code=4001", a:receive_text(2))
  end)
end)

describe("a slow reader, real process", function()
  local s
  local clients = {}
  setup(function() s = server.start(APP) end)
  teardown(function()
    for _, c in ipairs(clients) do c:close_socket() end
    if s then s:stop() end
  end)

  local function member(name)
    local c = rawws.connect(s.port, "/member/" .. name)
    clients[#clients + 1] = c
    assert.equal(101, c.status)
    assert.equal("joined " .. name, (c:recv_message()))
    return c
  end

  for i, cmd in ipairs { "blast", "blast-task" } do
    it(cmd .. ": the sender's loop finishes promptly while the receiver does not read 16 MiB", function()
      local slow_name = "slow" .. i
      local slow, sender, other = member(slow_name), member("sender" .. i), member("other" .. i)
      local t0 = clock()
      sender:send_text(cmd .. ":" .. slow_name .. ":16")
      local reply = sender:recv_message(3)
      local took = clock() - t0
      local buffered = tonumber(reply:match("^blasted 16 MiB to " .. slow_name .. ", buffered (%d+)$"))
      assert.is_truthy(buffered, "reply: " .. reply)
      -- the receiver really is behind: most of it still waits in the server
      assert.is_true(buffered > 4 * 1024 * 1024, "only " .. buffered .. " bytes were left buffered")
      assert.is_true(took < 2, "the sender took " .. took .. " s")
      -- everyone else is still served at once
      t0 = clock()
      other:send_text("echo:are you there")
      assert.equal("echo are you there", (other:recv_message(2)))
      assert.is_true(clock() - t0 < 1)
      -- and the slow reader gets its data when it reads
      local first = slow:recv_message(3)
      assert.equal(65536, #first)
      assert.equal("0123456789abcdef", first:sub(1, 16))
      slow:close_socket()
      assert.is_true(s:alive(), "server died; log:\n" .. s:log())
    end)
  end
end)
