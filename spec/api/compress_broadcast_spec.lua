-- A message broadcast to many peers that negotiated permessage-deflate is
-- compressed once per parameter set, not once per receiver.
local cjson = require "cjson"
local server = require "helpers.server"
local rawws = require "helpers.rawws"

local APP = "spec/apps/compress_broadcast_app.lua"
local PMD = { ["Sec-WebSocket-Extensions"] = "permessage-deflate" }

describe("broadcast with permessage-deflate", function()
  local s
  setup(function() s = server.start(APP) end)
  teardown(function() s:stop() end)

  local function stats()
    local c = rawws.connect(s.port, "/stats")
    c:send_text("?")
    local v = cjson.decode((c:recv_message()))
    c:close(1000)
    return v
  end

  it("compresses one message once for 20 receivers, and each gets it compressed", function()
    local subs = {}
    for i = 1, 20 do
      subs[i] = rawws.connect(s.port, "/sub", { headers = PMD })
      assert.equal(101, subs[i].status)
      assert.matches("permessage%-deflate", subs[i].headers["sec-websocket-extensions"])
    end
    local pub = rawws.connect(s.port, "/pub")
    local before = stats()
    local msg = string.rep("compress me once, deliver me twenty times. ", 40)
    pub:send_text(msg)
    assert.equal("20", (pub:recv_message()))
    for i = 1, 20 do
      local f = assert(subs[i]:recv_frame(5))
      assert.is_true(f.rsv1, "frame " .. i .. " is not compressed")
      assert.is_true(#f.payload < #msg)
    end
    local after = stats()
    assert.equal(1, after.compressions - before.compressions)
    assert.equal(19, after.compression_cache_hits - before.compression_cache_hits)
    -- a different message: compressed once more
    pub:send_text(msg .. "!")
    assert.equal("20", (pub:recv_message()))
    for i = 1, 20 do assert(subs[i]:recv_frame(5)) end
    local last = stats()
    assert.equal(1, last.compressions - after.compressions)
    for i = 1, 20 do subs[i]:close(1000) end
    pub:close(1000)
  end)

  it("a topic: one compression for 20 subscribers that negotiated it, none for the others", function()
    local subs = {}
    for i = 1, 24 do
      subs[i] = rawws.connect(s.port, "/tsub", { headers = i <= 20 and PMD or nil })
      assert.equal(101, subs[i].status)
    end
    local pub = rawws.connect(s.port, "/tpub")
    local before = stats()
    local msg = string.rep("published once, compressed once. ", 40)
    pub:send_text(msg)
    assert.equal("24", (pub:recv_message()))
    for i = 1, 24 do
      local f = assert(subs[i]:recv_frame(5))
      assert.equal(i <= 20, f.rsv1 == true, "frame " .. i)
      if i > 20 then assert.equal(msg, f.payload) end
    end
    local after = stats()
    -- framed once per kind of subscriber: the compressor is not even asked again
    assert.equal(1, after.compressions - before.compressions)
    assert.equal(0, after.compression_cache_hits - before.compression_cache_hits)
    for i = 1, 24 do subs[i]:close(1000) end
    pub:close(1000)
  end)
end)
