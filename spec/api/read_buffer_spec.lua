-- Every read lands in the runtime's one read buffer, which the next read
-- (of any connection, or of the in-process client) reuses. Whatever the
-- timing, a handler must see every message as sent: taken at once in the
-- read's callback, or long after other reads have reused the buffer; one
-- message per read, or several in one. (It guards any future shortcut that
-- leaves message bytes in the read buffer: one tried without its copy at the
-- end of the callback failed both tests.)
local TestClient = require "nexlua.testing"
local nexlua = require "nexlua"

local function payload(tag, size)
  local unit = string.format("<%s:%d>", tag, size)
  return string.rep(unit, math.ceil(size / #unit)):sub(1, size)
end

local function app()
  local a = nexlua.App()
  -- Takes the first message at once, then sleeps while the others queue up
  -- and other reads go by, then echoes them in order.
  a:ws_route("/late", function(ws)
    ws:accept()
    local first, kind = ws:receive()
    local got = { { first, kind } }
    nexlua.sleep(0.3)
    for i = 2, 6 do
      local data, k = ws:receive()
      got[i] = { data, k }
    end
    for _, m in ipairs(got) do
      if m[2] == "text" then ws:send_text(m[1]) else ws:send_bytes(m[1]) end
    end
    for _ in ws:iter() do end
  end)
  a:ws_route("/echo", function(ws)
    ws:accept()
    for data, kind in ws:iter() do
      if kind == "text" then ws:send_text(data) else ws:send_bytes(data) end
    end
  end)
  return a
end

describe("messages left in the read buffer", function()
  local client
  before_each(function() client = TestClient(app(), { timeout = 10 }) end)
  after_each(function() client:close() end)

  it("reach a handler intact when it takes them long after the read that brought them", function()
    local late = client:websocket_connect("/late")
    local noise = client:websocket_connect("/echo")
    local sent = {
      { payload("a", 4096), "binary" },
      { payload("b", 65536), "binary" },
      { payload("c", 3000), "text" },
      { payload("d", 2048), "binary" },
      { payload("e", 100000), "text" },
      { payload("f", 70000), "binary" },
    }
    for i, m in ipairs(sent) do
      if m[2] == "text" then late:send_text(m[1]) else late:send_bytes(m[1]) end
      if i == 1 then client:run_for(0.05) end -- the first is taken at once
    end
    -- Other reads reuse the buffer meanwhile, on the server and the client.
    for i = 1, 8 do
      local x = payload("noise" .. i, 60000 + i)
      noise:send_bytes(x)
      assert.equal(x, noise:receive_bytes())
    end
    for i, m in ipairs(sent) do
      local data, kind = late:receive()
      assert.equal(m[2], kind, "message " .. i)
      assert.equal(#m[1], #data, "message " .. i)
      assert.is_true(m[1] == data, "message " .. i .. " differs from what was sent")
    end
  end)

  it("reach a handler intact when several arrive in one read and it takes one at a time", function()
    local late = client:websocket_connect("/late")
    local noise = client:websocket_connect("/echo")
    local sent = {}
    for i = 1, 6 do sent[i] = payload("m" .. i, 2048 + i * 1000) end
    for _, p in ipairs(sent) do late:send_bytes(p) end -- back to back: few reads
    client:run_for(0.05)
    for i = 1, 4 do
      local x = payload("n" .. i, 30000)
      noise:send_bytes(x)
      assert.equal(x, noise:receive_bytes())
    end
    for i, p in ipairs(sent) do
      assert.is_true(p == late:receive_bytes(), "message " .. i .. " differs from what was sent")
    end
  end)
end)
