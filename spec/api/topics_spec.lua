-- Topics: ws:subscribe / ws:unsubscribe / ws:is_subscribed / ws:topics,
-- nexlua.publish / publish_json / subscribers and ws:publish (everyone but
-- the sender), delivered by the core to every subscriber; a connection
-- leaves its topics when it ends. (spec/apps/topics_app.lua)
local TestClient = require "nexlua.testing"
local nexlua = require "nexlua"

local APP = "spec/apps/topics_app.lua"

describe("topics", function()
  local client

  before_each(function() client = TestClient(dofile(APP)) end)
  after_each(function() client:close() end)

  local function join(topic)
    local ws = client:websocket_connect("/t/" .. topic)
    assert.equal("subscribed", ws:receive_text(2))
    return ws
  end

  it("nexlua.publish reaches every subscriber, the publisher included, and counts them", function()
    local a, b, c = join("lobby"), join("lobby"), join("lobby")
    local other = join("elsewhere")
    a:send_text("all:hello")
    -- a gets the message and its own count, in the order they were queued.
    assert.equal("hello", a:receive_text(2))
    assert.equal("sent 3", a:receive_text(2))
    assert.equal("hello", b:receive_text(2))
    assert.equal("hello", c:receive_text(2))
    other:send_text("state")
    assert.equal("topics elsewhere n=1 sub=true", other:receive_text(2))
  end)

  it("ws:publish reaches everyone but the sender", function()
    local a, b = join("room"), join("room")
    a:send_text("pub:from a")
    assert.equal("sent 1", a:receive_text(2))
    assert.equal("from a", b:receive_text(2))
    b:send_text("pub:from b")
    assert.equal("from b", a:receive_text(2))
    assert.equal("sent 1", b:receive_text(2))
  end)

  it("nexlua.publish with {exclude = ws} skips that connection; an exclude that is not a WebSocket raises", function()
    local a, b = join("excl"), join("excl")
    a:send_text("excl:not for a")
    assert.equal("sent 1", a:receive_text(2))
    assert.equal("not for a", b:receive_text(2))
    a:send_text("badexcl")
    local both = a:receive_text(2)
    local refused = "[^|]*publish: opts.exclude must be a WebSocket[^|]*"
    assert.matches("^" .. refused .. " | " .. refused .. "$", both)
    -- nothing was sent by the refused publish
    b:send_text("state")
    assert.equal("topics excl n=2 sub=true", b:receive_text(2))
  end)

  it("publishes binary messages as binary, and JSON as text", function()
    local a, b = join("bin"), join("bin")
    a:send_text("bin:\0raw")
    assert.equal("\0raw", b:receive_bytes(2))
    a:send_text("json:caf\195\169")
    assert.same({ text = "café" }, b:receive_json(2))
  end)

  it("refuses text that is not UTF-8 with a clear error, and sends nothing", function()
    local a, b = join("utf"), join("utf")
    a:send_text("bad")
    assert.matches("not valid UTF%-8", a:receive_text(2))
    b:send_text("state")
    assert.equal("topics utf n=2 sub=true", b:receive_text(2))
  end)

  it("unsubscribe stops delivery; subscribe again resumes it; state is reported", function()
    local a, b = join("u"), join("u")
    b:send_text("unsub")
    assert.equal("unsub true", b:receive_text(2))
    b:send_text("unsub")
    assert.equal("unsub false", b:receive_text(2))
    b:send_text("state")
    assert.equal("topics  n=1 sub=false", b:receive_text(2))
    a:send_text("all:only a")
    assert.equal("only a", a:receive_text(2))
    assert.equal("sent 1", a:receive_text(2))
    b:send_text("resub")
    assert.equal("resub true", b:receive_text(2))
    b:send_text("also:second")
    assert.equal("also true", b:receive_text(2))
    b:send_text("state")
    assert.equal("topics second,u n=2 sub=true", b:receive_text(2))
    a:send_text("all:both")
    assert.equal("both", b:receive_text(2))
  end)

  it("a connection that ends leaves its topics", function()
    local a, b = join("gone"), join("gone")
    b:close()
    a:send_text("all:after")
    assert.equal("after", a:receive_text(2))
    assert.equal("sent 1", a:receive_text(2))
    assert.equal(0, nexlua.subscribers("never-used"))
  end)

  it("many topics on many connections: each leaves all of them when it ends", function()
    local conns = {}
    for c = 1, 5 do
      conns[c] = join("base")
      for i = 1, 100 do
        conns[c]:send_text("also:t" .. i)
        assert.equal("also true", conns[c]:receive_text(2))
      end
      conns[c]:send_text("also:t1")
      assert.equal("also false", conns[c]:receive_text(2))
    end
    assert.equal(5, nexlua.subscribers("t77"))
    for c = 1, 5 do
      conns[c]:close()
      client:run_for(0.05)
      assert.equal(5 - c, nexlua.subscribers("t100"))
      assert.equal(5 - c, nexlua.subscribers("base"))
    end
  end)

  it("subscribing before accept is an error that names the call", function()
    local ws = client:websocket_connect("/early")
    assert.matches("cannot subscribe before accept%(%)", ws:receive_text(2))
  end)

  it("keeps the order of published and directly sent messages", function()
    local a, b = join("order"), join("order")
    for i = 1, 50 do a:send_text("pub:" .. i) end
    for i = 1, 50 do
      assert.equal("sent 1", a:receive_text(2))
      assert.equal(tostring(i), b:receive_text(2))
    end
  end)

  it("checks the topic and the message", function()
    for _, bad in ipairs({ { nil, "x" }, { "", "x" }, { 42, "x" }, { "t", {} } }) do
      local ok, err = pcall(nexlua.publish, bad[1], bad[2])
      assert.is_false(ok)
      assert.is_true(nexlua.is_websocket_error(err), tostring(err))
    end
    assert.equal(0, nexlua.publish("nobody", "x"))
    local ok, err = pcall(nexlua.publish_json, "t", { f = function() end })
    assert.is_false(ok)
    assert.matches("cannot encode", tostring(err))
  end)
end)

-- Many connections in many shared topics: the (connection, topic) index
-- that subscribe, is_subscribed and unsubscribe use stays right as it grows
-- and shrinks.
describe("topics shared by many connections", function()

  it("60 connections x 60 topics: subscribe, leave half, ask, count", function()
    local app = nexlua.App()
    app:ws_route("/many/{id:int}", function(ws)
      ws:accept()
      local id = ws.path_params.id
      for i = 1, 60 do ws:subscribe("m" .. i) end
      for cmd in ws:iter_text() do
        if cmd == "leave" then -- odd connections leave the even topics
          local n = 0
          for i = 2, 60, 2 do
            if id % 2 == 1 and ws:unsubscribe("m" .. i) then n = n + 1 end
          end
          ws:send_text(tostring(n))
        elseif cmd == "ask" then
          local wrong = 0
          for i = 1, 60 do
            local want = not (id % 2 == 1 and i % 2 == 0)
            if ws:is_subscribed("m" .. i) ~= want then wrong = wrong + 1 end
            if ws:subscribe("m" .. i) ~= not want then wrong = wrong + 1 end -- (and back)
            if not want then ws:unsubscribe("m" .. i) end
          end
          ws:send_text(tostring(wrong) .. " " .. #ws:topics())
        elseif cmd == "count" then
          ws:send_text(nexlua.subscribers("m1") .. " " .. nexlua.subscribers("m2"))
        end
      end
    end)
    local client = TestClient(app)
    finally(function() client:close() end)
    local conns = {}
    for id = 1, 60 do conns[id] = client:websocket_connect("/many/" .. id) end
    for id = 1, 60 do
      conns[id]:send_text("leave")
      assert.equal(id % 2 == 1 and "30" or "0", conns[id]:receive_text())
    end
    for id = 1, 60 do
      conns[id]:send_text("ask")
      assert.equal("0 " .. (id % 2 == 1 and 30 or 60), conns[id]:receive_text())
    end
    conns[1]:send_text("count")
    assert.equal("60 30", conns[1]:receive_text())
    for id = 1, 60, 3 do conns[id]:close() end -- leaving drops every subscription
    conns[2]:send_text("count")
    assert.equal("40 20", conns[2]:receive_text())
  end)
end)
