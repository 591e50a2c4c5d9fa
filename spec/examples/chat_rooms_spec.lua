-- examples/chat_rooms/app.lua: the reference's ChatRoom on /chat/{room_id}.
local TestClient = require "nexlua.testing"
local testing = TestClient

describe("examples/chat_rooms", function()
  local app, client, server_ws

  before_each(function()
    app = dofile("examples/chat_rooms/app.lua")
    -- Spec-only middleware: remembers each user's server-side WebSocket.
    server_ws = {}
    app:add_ws_middleware(function(ws, call_next)
      local token = ws.query_params:get("token")
      if token then server_ws[token:match("^(%a+)")] = ws end
      return call_next()
    end)
    client = TestClient(app)
  end)

  after_each(function() client:close() end)

  local function join(room, name)
    return client:websocket_connect("/chat/" .. room, { query = { token = name .. "-token" } })
  end

  local function say(ws, content) ws:send_json({ type = "message", content = content }) end

  local function expect(ws, fields)
    local m = ws:receive_json()
    for k, v in pairs(fields) do assert.equal(v, m[k], "field " .. k .. " of " .. require("cjson").encode(m)) end
    assert.is_string(m.timestamp)
    return m
  end

  local function wait_size(room, n)
    assert.is_true(testing.wait_until(function()
      return app.rooms[room] ~= nil and app.rooms[room]:size() == n
    end, 2), "room " .. room .. " never got " .. n .. " members")
  end

  it("refuses a missing or unknown token before accept (HTTP 403)", function()
    local ok, err = pcall(client.websocket_connect, client, "/chat/lobby")
    assert.is_false(ok)
    assert.equal(403, err.status)
    ok, err = pcall(join, "lobby", "mallory")
    assert.is_false(ok)
    assert.equal(403, err.status)
    assert.is_nil(app.rooms.lobby) -- nobody got in
  end)

  it("announces joins and leaves to the others, and broadcasts messages to all", function()
    local alice = join("lobby", "alice")
    wait_size("lobby", 1)
    local bob = join("lobby", "bob")
    expect(alice, { type = "user_joined", user = "bob" })
    local carol = join("lobby", "carol")
    expect(alice, { type = "user_joined", user = "carol" })
    expect(bob, { type = "user_joined", user = "carol" })

    say(bob, "hi all")
    for _, ws in ipairs { alice, bob, carol } do
      expect(ws, { type = "message", user = "bob", content = "hi all" })
    end

    bob:close()
    expect(alice, { type = "user_left", user = "bob" })
    expect(carol, { type = "user_left", user = "bob" })
    wait_size("lobby", 2)
    say(carol, "bye bob")
    expect(alice, { type = "message", user = "carol", content = "bye bob" })
    expect(carol, { type = "message", user = "carol", content = "bye bob" })
  end)

  it("keeps rooms apart, and shares one room between its members", function()
    local a1 = join("one", "alice")
    local b2 = join("two", "bob")
    wait_size("one", 1)
    wait_size("two", 1)
    local c1 = join("one", "carol")
    expect(a1, { type = "user_joined", user = "carol" })
    assert.equal(2, app.rooms.one:size())
    say(b2, "only in two")
    expect(b2, { content = "only in two" })
    say(a1, "only in one")
    expect(a1, { content = "only in one" })
    expect(c1, { content = "only in one" }) -- not "only in two", nor a join of bob
    assert.equal(1, #app.rooms.one:recent())
    assert.equal("only in one", app.rooms.one:recent()[1].content)
    assert.equal(1, #app.rooms.two:recent())
  end)

  it("sends a joiner the last 50 messages, oldest first, then live ones", function()
    local alice = join("hist", "alice")
    for i = 1, 60 do say(alice, "m" .. i) end
    for i = 1, 60 do expect(alice, { user = "alice", content = "m" .. i }) end

    local bob = join("hist", "bob")
    for i = 11, 60 do expect(bob, { type = "message", user = "alice", content = "m" .. i }) end
    expect(alice, { type = "user_joined", user = "bob" })
    say(alice, "live")
    expect(bob, { type = "message", content = "live" }) -- nothing but the 50 came before
  end)

  it("caps the history at 1000 messages", function()
    local alice = join("big", "alice")
    for i = 1, 1005 do say(alice, "m" .. i) end
    for i = 1, 1005 do expect(alice, { content = "m" .. i }) end
    local kept = app.rooms.big:recent()
    assert.equal(1000, #kept)
    assert.equal("m6", kept[1].content)
    assert.equal("m1005", kept[1000].content)
    local bob = join("big", "bob")
    for i = 956, 1005 do expect(bob, { content = "m" .. i }) end
  end)

  it("removes a member that aborted; the others still get messages", function()
    local alice = join("r", "alice")
    wait_size("r", 1)
    local bob = join("r", "bob")
    expect(alice, { type = "user_joined", user = "bob" })
    local carol = join("r", "carol")
    expect(alice, { type = "user_joined", user = "carol" })
    expect(bob, { type = "user_joined", user = "carol" })

    bob:abort() -- TCP drops, no close frame
    expect(alice, { type = "user_left", user = "bob" })
    expect(carol, { type = "user_left", user = "bob" })
    wait_size("r", 2)
    say(alice, "still here?")
    expect(alice, { content = "still here?" })
    expect(carol, { content = "still here?" })
  end)

  it("drops a dead member during a broadcast without stopping delivery to the others", function()
    local alice = join("d", "alice")
    wait_size("d", 1)
    local bob = join("d", "bob")
    expect(alice, { type = "user_joined", user = "bob" })
    local carol = join("d", "carol")
    expect(alice, { type = "user_joined", user = "carol" })
    expect(bob, { type = "user_joined", user = "carol" })
    local room = app.rooms.d

    -- Bob's connection dies and his handler leaves the room...
    local dead = server_ws.bob
    bob:abort()
    expect(alice, { type = "user_left", user = "bob" })
    expect(carol, { type = "user_left", user = "bob" })
    wait_size("d", 2)
    -- ...but pretend it had not noticed yet: the dead socket is still a member.
    room.connections[dead] = { name = "bob" }
    assert.equal(3, room:size())

    -- Sending to it raises WebSocketDisconnect(1006) inside the broadcast.
    local ok, err = pcall(dead.send_text, dead, "x")
    assert.is_false(ok)
    assert.is_true(require("nexlua").is_disconnect(err))

    for i = 1, 3 do
      say(carol, "after " .. i)
      expect(alice, { user = "carol", content = "after " .. i })
      expect(carol, { user = "carol", content = "after " .. i })
    end
    assert.equal(2, room:size())
    assert.is_nil(room.connections[dead])
  end)

  it("answers bad input with an error and keeps the connection", function()
    local alice = join("e", "alice")
    alice:send_text("{not json")
    assert.same({ type = "error", error = "Invalid JSON" }, alice:receive_json())
    alice:send_json({ type = "message" })
    assert.equal("error", alice:receive_json().type)
    say(alice, "ok")
    expect(alice, { content = "ok" })
  end)

  it("accepts the token in an Authorization header too", function()
    local ws = client:websocket_connect("/chat/h", { headers = { Authorization = "Bearer dave-token" } })
    say(ws, "hey")
    expect(ws, { user = "dave", content = "hey" })
  end)
end)
