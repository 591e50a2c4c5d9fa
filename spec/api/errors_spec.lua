-- Typed errors on the wire: WebSocketDisconnect (code, reason) from receive_*
-- and send_*, MessageTypeError, JSONDecodeError, misuse errors, and the
-- predicates. The app (spec/apps/errors_app.lua) catches each error and
-- describes it back (to the client, or to a file for disconnects).
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local cjson = require "cjson"
local socket = require "socket"
local clock = require "helpers.clock"
local OP = rawws.OP

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Waits for the first JSON line in path and decodes it.
local function wait_record(path, timeout)
  local deadline = clock() + (timeout or 5)
  repeat
    local line = read_file(path):match("^([^\n]*)\n")
    if line then return cjson.decode(line) end
    socket.sleep(0.02)
  until clock() > deadline
  error("the app recorded nothing in " .. path)
end

describe("typed errors", function()
  local s
  local clients, files = {}, {}

  setup(function() s = server.start("spec/apps/errors_app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    for _, f in ipairs(files) do os.remove(f) end
    clients, files = {}, {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open(path)
    local c = rawws.connect(s.port, path)
    clients[#clients + 1] = c
    assert.equal(101, c.status, "expected 101 for " .. path .. ", got " .. tostring(c.status))
    return c
  end

  local function tmpfile()
    local p = os.tmpname()
    os.remove(p)
    files[#files + 1] = p
    return p
  end

  local function only_disconnect(d)
    assert.is_false(d.ok)
    assert.is_true(d.is_disconnect, d.err)
    assert.is_true(d.is_ws_error, "a disconnect is a WebSocketError")
    assert.is_false(d.is_type_error)
    assert.is_false(d.is_json_error)
    assert.is_false(d.is_timeout)
  end

  describe("WebSocketDisconnect from receive", function()
    -- Opens /disconnect/receive, lets `leave` end the connection, returns the record.
    local function receive_until(method, leave)
      local file = tmpfile()
      local c = open("/disconnect/receive?method=" .. method .. "&file=" .. file)
      assert.equal("ready", (c:recv_message()))
      leave(c)
      return wait_record(file)
    end

    it("carries the peer's code and reason", function()
      local r = receive_until("receive_text", function(c)
        c:close(4001, "bye now")
        assert.equal(4001, (c:expect_close()))
      end)
      only_disconnect(r.first)
      assert.equal(4001, r.first.code)
      assert.equal("bye now", r.first.reason)
      assert.equal("WebSocket disconnected (4001: bye now)", r.first.err)
      -- receiving again raises the same disconnect
      only_disconnect(r.again)
      assert.equal(4001, r.again.code)
    end)

    it("carries a reason holding a NUL byte whole (valid UTF-8)", function()
      local r = receive_until("receive_text", function(c)
        c:close(4001, "ab\0cd")
        assert.equal(4001, (c:expect_close()))
      end)
      only_disconnect(r.first)
      assert.equal("ab\0cd", r.first.reason)
    end)

    it("is raised by a receive after a loop that the peer's leaving ended", function()
      local file = tmpfile()
      local c = open("/disconnect/after-iter?file=" .. file)
      assert.equal("ready", (c:recv_message()))
      c:close(4002, "done")
      local r = wait_record(file)
      assert.is_false(r.connected)
      only_disconnect(r.after)
      assert.equal(4002, r.after.code)
      assert.equal("done", r.after.reason)
    end)

    it("has code 1000 and an empty reason for a normal close", function()
      local r = receive_until("receive_bytes", function(c) c:close(1000) end)
      only_disconnect(r.first)
      assert.equal(1000, r.first.code)
      assert.equal("", r.first.reason)
      assert.equal("WebSocket disconnected (1000)", r.first.err)
    end)

    it("has code 1005 when the peer's close frame had no code", function()
      local r = receive_until("receive_json", function(c)
        c:send_frame { opcode = OP.CLOSE, payload = "" }
      end)
      only_disconnect(r.first)
      assert.equal(1005, r.first.code)
    end)

    it("has code 1006 when the TCP connection dropped without a close frame", function()
      local r = receive_until("receive", function(c) c:close_socket() end)
      only_disconnect(r.first)
      assert.equal(1006, r.first.code)
      only_disconnect(r.again)
      assert.equal(1006, r.again.code)
    end)
  end)

  describe("WebSocketDisconnect from send", function()
    local function send_until(method, leave)
      local file = tmpfile()
      local c = open("/disconnect/send?method=" .. method .. "&file=" .. file)
      assert.equal("ready", (c:recv_message()))
      leave(c)
      return wait_record(file)
    end

    it("is raised by send_text when the peer dropped TCP (1006)", function()
      local r = send_until("send_text", function(c) c:close_socket() end)
      assert.equal("table", type(r.result), tostring(r.result))
      only_disconnect(r.result)
      assert.equal(1006, r.result.code)
    end)

    it("is raised by send_bytes after the peer's close frame, with its code", function()
      local r = send_until("send_bytes", function(c)
        c:close(4002, "leaving")
        assert.equal(4002, (c:expect_close()))
      end)
      assert.equal("table", type(r.result), tostring(r.result))
      only_disconnect(r.result)
      assert.equal(4002, r.result.code)
      assert.equal("leaving", r.result.reason)
    end)

    it("is raised by send_json too", function()
      local r = send_until("send_json", function(c) c:close_socket() end)
      assert.equal("table", type(r.result), tostring(r.result))
      only_disconnect(r.result)
    end)
  end)

  describe("MessageTypeError", function()
    it("receive_text() of a binary message raises it; the connection stays usable", function()
      local c = open("/typed?method=receive_text")
      c:send_binary("\1\2\3")
      local r = cjson.decode((c:recv_message()))
      assert.is_false(r.ok)
      assert.is_true(r.is_type_error, r.err)
      assert.is_true(r.is_ws_error)
      assert.is_false(r.is_disconnect)
      assert.is_false(r.is_json_error)
      assert.equal("text", r.expected)
      assert.equal("binary", r.got)
      assert.equal("\1\2\3", r.data)
      assert.equal("expected a text message, received a binary message", r.err)
      c:send_text("fine")
      assert.same({ ok = true, value = "fine" }, cjson.decode((c:recv_message())))
    end)

    it("receive_bytes() of a text message raises it; the connection stays usable", function()
      local c = open("/typed?method=receive_bytes")
      c:send_text("oops")
      local r = cjson.decode((c:recv_message()))
      assert.is_true(r.is_type_error, r.err)
      assert.equal("binary", r.expected)
      assert.equal("text", r.got)
      assert.equal("oops", r.data)
      c:send_binary("ok")
      assert.same({ ok = true, value = "ok" }, cjson.decode((c:recv_message())))
    end)
  end)

  describe("JSONDecodeError", function()
    it("is raised for invalid JSON, keeps the raw message; the connection stays usable", function()
      local c = open("/typed?method=receive_json")
      for _, bad in ipairs { "{not json", "", "[1,2", "nul" } do
        c:send_text(bad)
        local r = cjson.decode((c:recv_message()))
        assert.is_false(r.ok)
        assert.is_true(r.is_json_error, r.err)
        assert.is_true(r.is_ws_error)
        assert.is_false(r.is_disconnect)
        assert.is_false(r.is_type_error)
        assert.equal(bad, r.data)
        assert.matches("^invalid JSON", r.err)
      end
      c:send_text('{"fine":[1]}')
      assert.same({ ok = true, value = { fine = { 1 } } }, cjson.decode((c:recv_message())))
    end)
  end)

  describe("misuse", function()
    it("receive/send before accept raise a clear WebSocketError naming the app's line", function()
      local file = tmpfile()
      local c = open("/misuse?file=" .. file)
      local r = cjson.decode((c:recv_message()))
      for _, k in ipairs { "receive_before_accept", "send_before_accept" } do
        assert.is_false(r[k].ok)
        assert.is_true(r[k].is_ws_error, r[k].err)
        assert.is_false(r[k].is_disconnect, k .. " is misuse, not a disconnect")
      end
      assert.matches("cannot receive before accept%(%)", r.receive_before_accept.err)
      assert.matches("cannot send before accept%(%)", r.send_before_accept.err)
      assert.matches("errors_app%.lua:%d+: send_text: cannot send before accept", r.send_before_accept.err)
      -- the iterators name the line of the loop too
      assert.matches("errors_app%.lua:%d+: cannot receive before accept", r.iter_before_accept.err)
      assert.matches("errors_app%.lua:%d+: cannot receive before accept", r.iter_text_before_accept.err)
    end)

    it("send after close raises a clear WebSocketError", function()
      local file = tmpfile()
      local c = open("/misuse?file=" .. file)
      c:recv_message()
      c:send_text("close")
      local code, reason = c:expect_close()
      assert.equal(1000, code)
      assert.equal("done", reason)
      local r = wait_record(file)
      for k, fn in pairs { send_after_close = "send_text", send_json_after_close = "send_json" } do
        assert.is_false(r[k].ok)
        assert.is_true(r[k].is_ws_error, r[k].err)
        assert.is_false(r[k].is_disconnect)
        assert.matches("errors_app%.lua:%d+: " .. fn .. ": cannot send after close%(%)", r[k].err)
      end
    end)
  end)

  it("none of the caught errors was logged as a handler error", function()
    assert.is_nil(s:log():find(" ERROR ", 1, true), "log:\n" .. s:log())
  end)
end)
