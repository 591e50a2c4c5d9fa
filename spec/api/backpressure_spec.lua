-- Backpressure: a handler sending 50 MiB to a client that reads slowly waits
-- (its send yields) instead of buffering it all; every byte arrives, in
-- order; the server keeps serving others meanwhile. (spec/apps/flood_app.lua)
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local cjson = require "cjson"
local socket = require "socket"
local clock = require "helpers.clock"
local OP = rawws.OP

local MB, CHUNK = 50, 65536
local HIGH_WATER = 1024 * 1024 -- the default --write-high-water

describe("backpressure", function()
  local s

  setup(function() s = server.start("spec/apps/flood_app.lua") end)
  teardown(function() if s then s:stop() end end)

  it("50 MiB to a slow reader all arrive in order, while others are served", function()
    local c = rawws.connect(s.port, "/flood?mb=" .. MB .. "&chunk=" .. CHUNK, { timeout = 30 })
    assert.equal(101, c.status)
    c:send_text("go")

    -- Do not read at all for a while: the handler must be waiting, and the
    -- loop free for others.
    socket.sleep(0.8)
    local other = rawws.connect(s.port, "/echo")
    assert.equal(101, other.status)
    local t0 = clock()
    other:send_text("are you there?")
    assert.equal("are you there?", (other:recv_message(2)))
    assert.is_true(clock() - t0 < 1, "the echo was slow: the loop was blocked")

    local count = math.floor(MB * 1024 * 1024 / CHUNK)
    local filler = string.rep("x", CHUNK - 8)
    local total = 0
    for i = 1, count do
      if i <= 20 then socket.sleep(0.01) end -- read slowly at first
      local f, err, detail = c:recv_frame(20)
      assert(f, detail or err)
      if f.opcode ~= OP.BINARY then
        error(string.format("message %d: expected binary, got %s", i, rawws.describe_frame(f)))
      end
      assert.is_true(f.fin)
      if f.length ~= CHUNK or f.payload:sub(1, 8) ~= string.format("%08d", i) then
        error(string.format("message %d: got %d bytes starting %q", i, f.length,
          f.payload:sub(1, 8)))
      end
      if f.payload:sub(9) ~= filler then
        error(string.format("message %d: payload corrupted", i))
      end
      total = total + f.length
    end
    assert.equal(count * CHUNK, total)

    local report = cjson.decode((c:recv_message(10)))
    assert.equal(count, report.count)
    -- The handler's send yielded near the high-water mark instead of queueing
    -- up to 50 MiB for a client that was not reading.
    assert.is_true(report.max_buffered <= HIGH_WATER + 2 * CHUNK,
      "max buffered " .. report.max_buffered .. " bytes: the sender did not wait")
    c:close(1000)
    assert.equal(1000, (c:expect_close()))
    c:close_socket()
    other:close_socket()
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  -- A task the handler spawned (or one spawned by such a task) sends to the
  -- handler's connection as the handler does: its sends wait too, several
  -- waiting senders included (each is woken when the client catches up).
  for _, mode in ipairs({ "task", "nested", "both" }) do
    it("8 MiB from " .. (mode == "both" and "the handler and a task at once" or
      mode == "nested" and "a task's task" or "a spawned task") .. " wait for a slow reader", function()
      local chunk = 65536
      local c = rawws.connect(s.port, "/flood-tasks?mb=8&chunk=" .. chunk .. "&mode=" .. mode, { timeout = 30 })
      assert.equal(101, c.status)
      c:send_text("go")
      socket.sleep(0.5) -- not reading: the senders must wait, the loop stay free
      local other = rawws.connect(s.port, "/echo")
      assert.equal(101, other.status)
      other:send_text("still there?")
      assert.equal("still there?", (other:recv_message(2)))
      other:close_socket()
      local count = 8 * 1024 * 1024 / chunk
      local next_seq = { a = 1, b = 1 }
      local senders = mode == "both" and { "a", "b" } or { "a" }
      for _ = 1, count * #senders do
        local f, err, detail = c:recv_frame(20)
        assert(f, detail or err)
        assert.equal(OP.BINARY, f.opcode, rawws.describe_frame(f))
        local id, seq = f.payload:sub(1, 1), tonumber(f.payload:sub(2, 10))
        assert.equal(next_seq[id], seq, "sender " .. id .. " out of order")
        next_seq[id] = seq + 1
      end
      local report = cjson.decode((c:recv_message(10)))
      assert.equal(count, report.count)
      assert.is_true(report.max_buffered <= HIGH_WATER + 3 * chunk,
        "max buffered " .. report.max_buffered .. " bytes: the task's sends did not wait")
      c:close(1000)
      assert.equal(1000, (c:expect_close()))
      c:close_socket()
    end)
  end

  -- 300 tasks of the handler sending at once: each that finds the output
  -- over the mark waits before it sends, so together they stay near it
  -- (19 MiB at once would pass the 16 MiB write limit and drop a client
  -- that reads as fast as it can).
  it("300 tasks sending 64 KiB each at once to a client that reads: all arrive, near the mark", function()
    local chunk, tasks, each = 65536, 300, 2
    local c = rawws.connect(s.port, string.format("/crowd?tasks=%d&each=%d&chunk=%d", tasks, each, chunk),
      { timeout = 30 })
    assert.equal(101, c.status)
    c:send_text("go")
    local next_seq = {}
    for _ = 1, tasks * each do
      local f, err, detail = c:recv_frame(20)
      assert(f, detail or err)
      assert.equal(OP.BINARY, f.opcode, rawws.describe_frame(f))
      local id, seq = tonumber(f.payload:sub(1, 5)), tonumber(f.payload:sub(6, 14))
      assert.equal(next_seq[id] or 1, seq, "task " .. id .. " out of order")
      next_seq[id] = seq + 1
    end
    local report = cjson.decode((c:recv_message(10)))
    assert.equal(tasks * each, report.count)
    assert.is_true(report.max_buffered <= HIGH_WATER + 3 * chunk,
      "max buffered " .. report.max_buffered .. " bytes: the tasks' sends did not wait")
    assert.is_nil(s:log():find("does not read fast enough", 1, true), s:log())
    c:close(1000)
    assert.equal(1000, (c:expect_close()))
    c:close_socket()
  end)
end)
