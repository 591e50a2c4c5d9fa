-- The error policy: a WebSocketDisconnect escaping a handler ends it quietly;
-- any other error closes with 1011 and logs a traceback naming the route; the
-- server keeps serving everyone else. (spec/apps/crash_app.lua)
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local socket = require "socket"

describe("handler error policy", function()
  local s
  local clients = {}

  setup(function() s = server.start("spec/apps/crash_app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open(path)
    local c = rawws.connect(s.port, path)
    clients[#clients + 1] = c
    assert.equal(101, c.status, "expected 101 for " .. path .. ", got " .. tostring(c.status))
    return c
  end

  -- The log text written after `from` (a length of the log).
  local function log_since(from) return s:log():sub(from + 1) end

  describe("a WebSocketDisconnect escaping the handler", function()
    it("from receive (peer closed) ends it without an ERROR line", function()
      local before = #s:log()
      local c = open("/quiet/receive")
      c:send_text("a")
      assert.equal("a", (c:recv_message()))
      c:close(1001, "going")
      assert.equal(1001, (c:expect_close()))
      assert.is_true((c:wait_tcp_close(3)))
      -- the same for a dropped TCP connection
      local d = open("/quiet/receive")
      d:close_socket()
      socket.sleep(0.3)
      local log = log_since(before)
      assert.is_nil(log:find("ERROR", 1, true), "log:\n" .. log)
    end)

    it("from send (peer gone) ends it without an ERROR line", function()
      local before = #s:log()
      local c = open("/quiet/send")
      assert.equal("tick", (c:recv_message()))
      c:close_socket()
      socket.sleep(0.3)
      local log = log_since(before)
      assert.is_nil(log:find("ERROR", 1, true), "log:\n" .. log)
    end)
  end)

  describe("any other error", function()
    it("closes with 1011, logs a traceback naming the route, others keep being served", function()
      local before = #s:log()
      local bystander = open("/echo")
      bystander:send_text("before")
      assert.equal("before", (bystander:recv_message()))

      local c = open("/crash")
      c:send_text("hello")
      assert.equal("hello", (c:recv_message()))
      c:send_text("crash")
      local code = c:expect_close()
      assert.equal(1011, code)
      c:close(1011)
      assert.is_true((c:wait_tcp_close(3)), "the server must close TCP after the closing handshake")

      local line = s:wait_log("[^\n]*ERROR[^\n]*", 3)
      assert.truthy(line, "no ERROR line; log:\n" .. s:log())
      local log = log_since(before)
      assert.matches("ERROR error in WebSocket handler or middleware for /crash ", log, 1, true)
      assert.matches("crash_app%.lua:%d+: crash_app: boom on purpose %(crash%)", log)
      assert.matches("stack traceback:", log, 1, true)
      assert.matches("crash_app%.lua:%d+: in function 'explode'", log)
      assert.is_nil(log:find("%[C%]:%d"), "a C frame was given a line:\n" .. log)

      -- the bystander connected during the crash is still served
      bystander:send_text("after")
      assert.equal("after", (bystander:recv_message()))
      bystander:ping("still there?")
      bystander:expect_pong("still there?")
      -- and so is a new client
      local fresh = open("/echo")
      fresh:send_text("new")
      assert.equal("new", (fresh:recv_message()))
    end)

    it("a runtime error (not error()) is logged with the line of the frame that failed", function()
      local before = #s:log()
      local c = open("/crash/runtime")
      c:send_text("go")
      assert.equal(1011, (c:expect_close()))
      assert.truthy(s:wait_log("error in WebSocket handler or middleware for /crash/runtime", 3))
      local log = log_since(before)
      assert.matches("crash_app%.lua:29: attempt to index local 'inner'", log)
      -- the top frame keeps its line in the traceback too
      assert.matches("crash_app%.lua:29: in function 'dig'", log)
    end)

    it("an uncaught nexlua error that is not a disconnect closes with 1011 too", function()
      local before = #s:log()
      local c = open("/crash/type")
      c:send_binary("\0")
      assert.equal(1011, (c:expect_close()))
      assert.truthy(s:wait_log("error in WebSocket handler or middleware for /crash/type", 3))
      assert.matches("expected a text message, received a binary message", log_since(before),
        1, true)
    end)
  end)
end)
