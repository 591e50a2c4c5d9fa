-- A message published to many subscribers that do not read is queued to them
-- as one shared, reference-counted frame, not as one copy per subscriber:
-- 40 subscribers that each fall 10 MiB behind cost the server about 10 MiB,
-- not 400. Own bytes sent between the shared frames (a direct send) keep
-- their place, and every subscriber reads every frame intact and in order
-- once it reads. (spec/apps/shared_broadcast_app.lua)
local rawws = require "helpers.rawws"
local server = require "helpers.server"
local proc = require "helpers.proc"
local zlib = require "helpers.zlib"

local SANITIZED = proc.sanitized()
local N, MSGS, SIZE = 40, 40, 256 * 1024

-- Message i: its number in the first 4 bytes, then a byte pattern of its own.
local function payload(i)
  local head = string.format("%04d", i)
  return head .. string.rep(string.char(65 + i % 26), SIZE - #head)
end

-- Message i that deflate cannot shrink much: a pseudo-random byte stream.
local function noise(i)
  local t, x = {}, i * 7919 + 1
  for k = 1, SIZE / 4 do
    x = (x * 1103515245 + 12345) % 2147483648
    t[k] = string.char(x % 256, math.floor(x / 256) % 256, math.floor(x / 65536) % 256,
      math.floor(x / 16777216) % 128)
  end
  return table.concat(t)
end

describe("publishing to subscribers that do not read", function()
  local s, subs, pub

  before_each(function()
    s = server.start("spec/apps/shared_broadcast_app.lua")
    subs = {}
  end)
  after_each(function()
    for _, c in ipairs(subs) do c:close_socket() end
    if pub then pub:close_socket() end
    s:stop()
  end)

  it("shares the frames: the server's memory grows by about one backlog, not one per subscriber",
    function()
      for i = 1, N do
        subs[i] = rawws.connect(s.port, "/sub")
        assert.equal(101, subs[i].status)
      end
      pub = rawws.connect(s.port, "/pub")
      pub:send_text("mark:start")
      assert.equal(tostring(N), (pub:recv_message(10)))
      local before = proc.status_kb(s.pid, "VmRSS")
      for i = 1, MSGS do
        pub:send_binary(payload(i))
        assert.equal(tostring(N), (pub:recv_message(10)), "publish " .. i)
        if i == MSGS / 2 then
          pub:send_text("mark:middle")
          assert.equal(tostring(N), (pub:recv_message(10)))
        end
      end
      local after = proc.status_kb(s.pid, "VmRSS")
      io.stderr:write(string.format("\n[shared broadcast] %d subscribers x %d x %d KiB: RSS %d -> %d kB\n",
        N, MSGS, SIZE / 1024, before, after))
      if not SANITIZED then
        -- One copy per subscriber would be 40 x 10 MiB (less what the kernel
        -- holds); shared, it is the 10 MiB of messages and one partly
        -- written frame per subscriber.
        assert.is_true(after - before < 80 * 1024,
          string.format("RSS grew by %d kB", after - before))
      end
      for k, c in ipairs(subs) do
        assert.equal("mark:start", (c:recv_message(10)), "subscriber " .. k)
        for i = 1, MSGS do
          local data, opcode = c:recv_message(10)
          assert.equal(2, opcode)
          assert.equal(SIZE, #data)
          assert.is_true(data == payload(i), string.format("subscriber %d, message %d", k, i))
          if i == MSGS / 2 then
            assert.equal("mark:middle", (c:recv_message(10)), "subscriber " .. k)
          end
        end
      end
      assert.is_true(s:alive())
    end)

  it("shares compressed frames with the subscribers that negotiated permessage-deflate", function()
    local PMD = { ["Sec-WebSocket-Extensions"] = "permessage-deflate" }
    for i = 1, 20 do
      subs[i] = rawws.connect(s.port, "/sub", { headers = i % 2 == 0 and PMD or nil })
      assert.equal(101, subs[i].status)
    end
    pub = rawws.connect(s.port, "/pub")
    local msgs = {}
    for i = 1, 24 do
      msgs[i] = noise(i)
      pub:send_binary(msgs[i])
      assert.equal("20", (pub:recv_message(10)), "publish " .. i)
    end
    for k, c in ipairs(subs) do
      for i = 1, 24 do
        local f = assert(c:recv_frame(10))
        assert.equal(2, f.opcode)
        assert.is_true(f.fin)
        assert.equal(k % 2 == 0, f.rsv1 == true, string.format("subscriber %d, message %d", k, i))
        local data = f.rsv1 and assert(zlib.inflate(f.payload)) or f.payload
        assert.is_true(data == msgs[i], string.format("subscriber %d, message %d", k, i))
      end
    end
  end)

  it("a crowd of subscribers dropped together is one WARN entry a second, the rest counted", function()
    s:stop()
    s = server.start("spec/apps/shared_broadcast_app.lua", { "--write-limit", "1048576" })
    for k = 1, 12 do subs[k] = rawws.connect(s.port, "/sub") end
    pub = rawws.connect(s.port, "/pub")
    -- Publishes 256 KiB messages until no subscriber is left (each quiet
    -- one passes 1 MiB queued, past what its socket takes, and is dropped).
    local function flood()
      for i = 1, 80 do
        pub:send_binary(payload(i))
        if pub:recv_message(10) == "0" then return true end
      end
    end
    assert(flood(), "the quiet subscribers were not dropped; log:\n" .. s:log())
    local pat = "WARN dropping a connection that does not read fast enough"
    local count = select(2, s:log():gsub(pat, ""))
    assert.is_true(count >= 1 and count <= 2, count .. " entries for 12 drops; log:\n" .. s:log())
    -- a drop more than a second later is logged, counting the ones before
    os.execute("sleep 1.1")
    subs[13] = rawws.connect(s.port, "/sub")
    assert(flood(), "the 13th was not dropped; log:\n" .. s:log())
    assert(s:wait_log("%(and %d+ more since the last entry; logged once a second at most%)", 5), s:log())
  end)

  it("a subscriber past the write limit is dropped alone; the frames it held are released",
    function()
      s:stop()
      s = server.start("spec/apps/shared_broadcast_app.lua", { "--write-limit", "4194304" })
      local quiet = rawws.connect(s.port, "/sub")
      local reader = rawws.connect(s.port, "/sub")
      subs = { quiet, reader }
      pub = rawws.connect(s.port, "/pub")
      -- 48 x 256 KiB = 12 MiB: the quiet one falls past its 4 MiB; the
      -- reader reads each message as it comes.
      local reached = {}
      for i = 1, 48 do
        pub:send_binary(payload(i))
        reached[i] = tonumber((pub:recv_message(10)))
        local data = reader:recv_message(10)
        assert.is_true(data == payload(i), "reader, message " .. i)
      end
      assert(s:wait_log("dropping a connection that does not read", 5), s:log())
      -- the log names the client
      assert.matches("does not read fast enough %(%d+ bytes buffered%): 127%.0%.0%.1:%d+\n", s:log())
      assert.equal(2, reached[1])
      assert.equal(1, reached[48])
      local c = rawws.connect(s.port, "/sub")
      subs[3] = c
      pub:send_binary(payload(49))
      assert.equal("2", (pub:recv_message(10)))
      assert.is_true(reader:recv_message(10) == payload(49))
      assert.is_true(c:recv_message(10) == payload(49))
      assert.is_true(s:alive())
    end)
end)
