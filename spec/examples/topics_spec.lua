-- examples/topics/app.lua: rooms as topics, in-process (TestClient) and with
-- --workers 2 over real sockets (members on different workers share a room).
local TestClient = require "nexlua.testing"
local proc = require "helpers.proc"
local rawws = require "helpers.rawws"
local cjson = require "cjson"

local APP = "examples/topics/app.lua"

describe("examples/topics", function()
  local client

  before_each(function() client = TestClient(dofile(APP)) end)
  after_each(function() client:close() end)

  local function join(room, name)
    return client:websocket_connect("/rooms/" .. room, { query = { name = name } })
  end

  it("says to everyone, whispers to the others, and announces joins and leaves", function()
    local alice = join("lobby", "alice")
    local bob = join("lobby", "bob")
    assert.same({ type = "joined", name = "bob" }, alice:receive_json(2))
    alice:send_json({ type = "say", text = "hi all" })
    assert.same({ type = "said", name = "alice", text = "hi all" }, alice:receive_json(2))
    assert.same({ type = "said", name = "alice", text = "hi all" }, bob:receive_json(2))
    bob:send_json({ type = "whisper", text = "psst" })
    assert.same({ type = "said", name = "bob", text = "psst" }, alice:receive_json(2))
    bob:send_json({ type = "who" })
    assert.same({ type = "members", count = 2 }, bob:receive_json(2))
    bob:close()
    assert.same({ type = "left", name = "bob" }, alice:receive_json(2))
    alice:send_json({ type = "who" })
    assert.same({ type = "members", count = 1 }, alice:receive_json(2))
  end)

  it("keeps rooms apart, and follow adds a second room", function()
    local a = join("one", "a")
    local b = join("two", "b")
    b:send_json({ type = "say", text = "in two" })
    assert.same({ type = "said", name = "b", text = "in two" }, b:receive_json(2))
    a:send_json({ type = "follow", room = "two" })
    assert.same({ type = "following", rooms = { "one", "two" } }, a:receive_json(2))
    b:send_json({ type = "say", text = "again" })
    assert.same({ type = "said", name = "b", text = "again" }, a:receive_json(2))
  end)

  it("text that is not JSON gets an error, and the member stays", function()
    local a = join("lobby", "a")
    local b = join("lobby", "b")
    assert.same({ type = "joined", name = "b" }, a:receive_json(2))
    b:send_text("not json")
    assert.same({ type = "error", error = "invalid JSON" }, b:receive_json(2))
    b:send_json({ type = "say", text = "still here" })
    assert.same({ type = "said", name = "b", text = "still here" }, a:receive_json(2))
  end)

  it("refuses a member without a name", function()
    local ok, err = pcall(client.websocket_connect, client, "/rooms/lobby")
    assert.is_false(ok)
    assert.equal(403, err.status)
  end)

  it("announces to several rooms", function()
    local a, b = join("r1", "a"), join("r2", "b")
    local op = client:websocket_connect("/announce", { query = { rooms = "r1,r2,empty" } })
    op:send_text("maintenance at noon")
    assert.equal("maintenance at noon", a:receive_text(2))
    assert.equal("maintenance at noon", b:receive_text(2))
    assert.equal("delivered to 2", op:receive_text(2))
  end)
end)

describe("examples/topics with --workers 2", function()
  it("members served by different workers are in the same room", function()
    local s = proc.start(APP, { "--workers", "2" })
    local ok, err = pcall(function()
      -- Members until two of them are on different workers (the kernel
      -- spreads connections by their ports); "who" counts this worker's.
      local members = {}
      for i = 1, 40 do
        local c = rawws.connect(s.port, "/rooms/lobby?name=m" .. i)
        assert.equal(101, c.status)
        members[#members + 1] = c
      end
      -- Everyone hears m1's message, whichever worker serves them.
      local first = members[1]
      -- drain the "joined" notices m1 got from the 39 others
      for _ = 2, 40 do assert.equal("joined", cjson.decode((first:recv_message(10))).type) end
      first:send_text(cjson.encode({ type = "say", text = "across" }))
      local counts = {}
      for i, c in ipairs(members) do
        local m
        repeat m = cjson.decode((c:recv_message(10))) until m.type == "said"
        assert.same({ type = "said", name = "m1", text = "across" }, m, "member " .. i)
        c:send_text(cjson.encode({ type = "who" }))
        repeat m = cjson.decode((c:recv_message(10))) until m.type == "members"
        counts[m.count] = true
      end
      -- Two workers: each reports its own share of the 40, not 40.
      assert.is_nil(counts[40], "one worker served all 40 members")
      for _, c in ipairs(members) do c:close_socket() end
    end)
    local code = s:stop(15)
    assert(ok, err)
    assert.equal(0, code)
  end)
end)
