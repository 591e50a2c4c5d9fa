-- Sending from one connection's handler to other connections (the app keeps
-- a table of ws objects). (spec/apps/peers_app.lua)
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local socket = require "socket"

describe("sending to other connections", function()
  local s
  local clients = {}

  setup(function() s = server.start("spec/apps/peers_app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    socket.sleep(0.05) -- let the handlers see their peers leave
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open(path)
    local c = rawws.connect(s.port, path)
    clients[#clients + 1] = c
    assert.equal(101, c.status, "expected 101 for " .. path .. ", got " .. tostring(c.status))
    return c
  end

  -- Connects as name and makes sure the handler has registered it (a message
  -- addressed to it from itself comes back).
  local function peer(name)
    local c = open("/peer/" .. name)
    c:send_text("to:" .. name .. ":self-check")
    assert.equal("from " .. name .. ": self-check", (c:recv_message()))
    assert.equal("sent", (c:recv_message()))
    return c
  end

  it("delivers a message from one handler to another connection, both ways", function()
    local a, b = peer("alice"), peer("bob")
    a:send_text("to:bob:hello bob")
    assert.equal("sent", (a:recv_message()))
    assert.equal("from alice: hello bob", (b:recv_message()))
    b:send_text("to:alice:hi alice")
    assert.equal("from bob: hi alice", (a:recv_message()))
    assert.equal("sent", (b:recv_message()))
  end)

  it("broadcasts to every other connection", function()
    local a, b, c = peer("a1"), peer("b1"), peer("c1")
    a:send_text("all:news")
    assert.equal("sent 2", (a:recv_message()))
    assert.equal("from a1 to all: news", (b:recv_message()))
    assert.equal("from a1 to all: news", (c:recv_message()))
    a:expect_silence(0.2)
  end)

  it("a peer that left is gone from the table", function()
    local a = peer("stay")
    local b = peer("leave")
    b:close(1000)
    assert.equal(1000, (b:expect_close()))
    socket.sleep(0.1)
    a:send_text("to:leave:anyone?")
    assert.equal("no such peer leave", (a:recv_message()))
  end)

  it("sending to a connection that is gone raises a WebSocketDisconnect in the sender", function()
    local a = peer("sender")
    local g = open("/ghost/g1")
    assert.equal("registered", (g:recv_message()))
    a:send_text("ghost:g1:first")
    assert.equal("ghost send ok", (a:recv_message()))
    assert.equal("first", (g:recv_message()))
    g:close_socket() -- drops TCP without a close frame
    socket.sleep(0.2)
    a:send_text("ghost:g1:second")
    assert.matches("ghost send failed: disconnect=true code=1006 same=true", (a:recv_message()), 1, true)
    -- the sender's own connection is fine
    a:send_text("to:sender:still here")
    assert.equal("from sender: still here", (a:recv_message()))
  end)

  -- From another task, a connection its own handler closed is gone too: a
  -- broadcast that catches WebSocketDisconnect (the reference's ChatRoom)
  -- must not die of it.
  it("sending to a connection its own handler closed raises a WebSocketDisconnect " ..
    "with that close code", function()
    local a = peer("sender2")
    local g = open("/ghost/g2")
    assert.equal("registered", (g:recv_message()))
    g:send_text("close-me")
    assert.equal(4000, (g:expect_close()))
    a:send_text("ghost:g2:after its close")
    assert.matches("ghost send failed: disconnect=true code=4000 same=true", (a:recv_message()), 1, true)
    g:close_socket()
    socket.sleep(0.1)
    a:send_text("ghost:g2:after the end")
    assert.matches("ghost send failed: disconnect=true code=4000 same=true", (a:recv_message()), 1, true)
  end)

  it("sending to a connection that has not accepted yet raises a WebSocketError that says so",
    function()
    local a = peer("sender3")
    local l = rawws.open_tcp(s.port)
    clients[#clients + 1] = l
    l:send_raw((rawws.build_request(s.port, "/late/l1")))
    socket.sleep(0.1)
    a:send_text("ghost:l1:too early")
    assert.matches("ghost send failed: disconnect=false code=nil same=false " ..
      "message=send_text: cannot send to another connection before its accept()", (a:recv_message()), 1, true)
    a:send_text("accept:l1")
    assert.equal("sent", (a:recv_message()))
    assert.equal(101, (l:read_http_response()))
  end)
end)
