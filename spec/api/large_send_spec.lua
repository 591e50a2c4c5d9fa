-- Large frames leave straight from the sender's string (one writev after
-- whatever is queued); only what the socket does not take is copied and
-- queued. Whatever path a frame takes, the peer must see every message
-- whole and in order: small and large interleaved, sent faster than the
-- client reads, so the socket fills and the partial-write path runs.
local TestClient = require "nexlua.testing"
local nexlua = require "nexlua"

local function payload(i, size)
  local unit = string.format("%06d|", i)
  return string.rep(unit, math.ceil(size / #unit)):sub(1, size)
end

local SIZES = { 20000, 16384, 65536, 300000, 16383, 1048576 }

local function burst_app()
  local app = nexlua.App()
  app:ws_route("/burst", function(ws)
    ws:accept()
    local n = tonumber(ws:receive_text())
    for i = 1, n do
      ws:send_text("small " .. i)
      ws:send_bytes(payload(i, SIZES[i % #SIZES + 1]))
    end
    ws:send_text("end")
    for _ in ws:iter() do end
  end)
  return app
end

describe("large sends", function()
  it("arrive whole and in order, interleaved with small ones, past a full socket", function()
    local client = TestClient(burst_app(), { timeout = 20 })
    local ws = client:websocket_connect("/burst")
    local n = 60 -- about 24 MiB: far more than the socket buffers hold
    ws:send_text(tostring(n))
    client:run_for(0.3) -- the server fills the socket before we read
    for i = 1, n do
      assert.equal("small " .. i, ws:receive_text(10))
      local data = ws:receive_bytes(10)
      local want = payload(i, SIZES[i % #SIZES + 1])
      assert.equal(#want, #data, "message " .. i)
      assert.is_true(data == want, "message " .. i .. " differs")
    end
    assert.equal("end", ws:receive_text(10))
    ws:close()
    client:close()
  end)
end)
