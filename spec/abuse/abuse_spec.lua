-- Abuse: a real server process on loopback under hostile clients, each case
-- bounded in count and time. In every case a well-behaved client connected
-- alongside keeps getting echo replies during and after the abuse, the
-- abusers are closed as documented, and the server's resident memory (VmRSS
-- from /proc/PID/status, sampled during the case) stays under the stated
-- bound. The figures (RSS before / peak / after, the good client's echoes and
-- worst latency) go to stderr.
--
-- Documented behaviour relied on:
--   * --handshake-timeout: a connection whose request is not complete in time
--     is closed (no answer);
--   * protocol violations fail the connection with 1002 (1007 bad UTF-8,
--     1009 too big: known from the frame header, before any allocation);
--   * a handler's send waits above --write-high-water (1 MiB) and reading
--     pauses while 4 MiB of messages wait for the app, so a client that
--     sends without reading is throttled by TCP, not buffered;
--   * pongs are queued like any output: bounded by --write-limit (16 MiB;
--     past it the connection is dropped with a warning).
local server = require "helpers.server"
local rawws = require "helpers.rawws"
local proc = require "helpers.proc"
local socket = require "socket"
local clock = require "helpers.clock"
local OP = rawws.OP

local APP = "spec/apps/hardening_app.lua"
local KiB, MiB = 1024, 1024 * 1024
local HANDSHAKE_TIMEOUT = 2
-- Under an AddressSanitizer build RSS is not the server's own memory
-- (shadow, quarantine): the figures are printed, the bounds not checked.
local SANITIZED = proc.sanitized()

local function fd_count(pid)
  local p = io.popen("ls /proc/" .. pid .. "/fd 2>/dev/null | wc -l")
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

-- Seeded bytes (a 32-bit LCG): the same garbage on every run.
local function seeded_bytes(n, seed)
  local t, x = {}, seed
  for i = 1, n do
    x = (x * 1103515245 + 12345) % 4294967296
    t[i] = string.char(math.floor(x / 16777216))
  end
  return table.concat(t)
end

-- A case's observer: the good client and the server's memory.
local Watch = {}
Watch.__index = Watch

local function watch(s, name, socks)
  local good = rawws.connect(s.port, "/ws")
  if socks then socks[#socks + 1] = good end
  assert.equal(101, good.status)
  local w = setmetatable({ s = s, name = name, good = good, echoes = 0, worst = 0, last = 0 },
    Watch)
  w:echo()
  w.before = proc.status_kb(s.pid, "VmRSS")
  w.peak = w.before
  w.fds_before = fd_count(s.pid)
  return w
end

-- One echo round trip on the good client (must answer within 2 s).
function Watch:echo()
  local text = string.format("%s #%d", self.name, self.echoes + 1)
  local t0 = clock()
  self.good:send_text(text)
  self.good:expect_echo(text, OP.TEXT, 2)
  local dt = clock() - t0
  if dt > self.worst then self.worst = dt end
  self.echoes = self.echoes + 1
  self.last = clock()
end

-- Samples memory; an echo round trip at most every 50 ms.
function Watch:tick()
  local rss = proc.status_kb(self.s.pid, "VmRSS")
  if rss and rss > self.peak then self.peak = rss end
  if clock() - self.last >= 0.05 then self:echo() end
end

-- The end of a case: echoes after, memory after, figures to stderr, bounds.
function Watch:finish(bound_kb, extra)
  for _ = 1, 3 do self:echo() end
  socket.sleep(0.2)
  self:tick()
  self.after = proc.status_kb(self.s.pid, "VmRSS")
  self.fds_after = fd_count(self.s.pid)
  io.stderr:write(string.format("\n[abuse: %s] RSS before %d kB, peak %d kB, after %d kB " ..
    "(bound %d kB); VmHWM %d kB; fds %d -> %d; good client %d echoes, worst %.0f ms%s\n",
    self.name, self.before, self.peak, self.after, bound_kb,
    proc.status_kb(self.s.pid, "VmHWM") or -1, self.fds_before, self.fds_after, self.echoes,
    self.worst * 1000, (extra and ("; " .. extra) or "") ..
    (SANITIZED and "; sanitizer build: RSS bounds not checked" or "")))
  assert.is_true(SANITIZED or self.peak < bound_kb, string.format("%s: peak RSS %d kB over the %d kB bound",
    self.name, self.peak, bound_kb))
  assert.is_true(self.s:alive(), "server died; log:\n" .. self.s:log())
  self.good:close(1000)
  self.good:expect_close()
  self.good:close_socket()
end

-- Sends bytes (over and over) on c's socket without reading, until target
-- bytes are out or nothing moved for 1 s (bounded: 8 s), sampling w as it
-- goes. Returns the bytes sent and the seconds it took.
local function send_until_pushback(c, bytes, target, w)
  local sock = c.sock
  sock:settimeout(0)
  local total, pos, t0 = 0, 1, clock()
  local progress_at = t0
  while total < target and clock() - progress_at < 1 and clock() - t0 < 8 do
    local _, wr = socket.select(nil, { sock }, 0.05)
    if wr and #wr > 0 then
      local last, err, partial = sock:send(bytes, pos)
      local upto = last or partial or (pos - 1)
      if upto >= pos then progress_at = clock() end
      total = total + (upto - pos + 1)
      pos = upto + 1
      if pos > #bytes then pos = 1 end
      if err and err ~= "timeout" then error("send failed: " .. err) end
    end
    w:tick()
  end
  return total, clock() - t0
end

describe("abuse", function()
  local s
  local socks = {}

  before_each(function()
    s = server.start(APP, { "--handshake-timeout", tostring(HANDSHAKE_TIMEOUT) })
  end)
  after_each(function()
    for _, c in ipairs(socks) do
      if c.close_socket then c:close_socket() else c:close() end
    end
    socks = {}
    if s then
      assert.is_true(s:alive(), "server died; log:\n" .. s:log())
      assert.is_true(s:stop(), "server did not stop on SIGTERM")
      local log = s:log()
      assert.is_nil(log:find("ERROR", 1, true), "errors in the server log:\n" .. log)
    end
  end)

  it("500 half-open idle TCP connections are closed at the handshake timeout " ..
    "(RSS < 64 MB)", function()
    local w = watch(s, "500 half-open", socks)
    local conns = {}
    local t0 = clock()
    for i = 1, 500 do
      conns[i] = rawws.open_tcp(s.port)
      socks[#socks + 1] = conns[i]
      if i % 25 == 0 then w:tick() end
    end
    local open_fds = fd_count(s.pid)
    -- all of them closed by the server after the timeout, none earlier
    local closed, first, last = 0, nil, nil
    local done = {}
    while closed < 500 and clock() - t0 < HANDSHAKE_TIMEOUT + 4 do
      for i = 1, 500 do
        if not done[i] and conns[i]:is_closed() then
          done[i] = true
          closed = closed + 1
          local at = clock() - t0
          first = first or at
          last = at
        end
      end
      w:tick()
      socket.sleep(0.05)
    end
    assert.equal(500, closed, "connections the server kept open past the timeout")
    assert.is_true(first >= HANDSHAKE_TIMEOUT - 0.5, string.format("closed after %.2f s", first))
    w:finish(64 * 1024, string.format("server fds with the 500 open: %d; closed %.2f..%.2f s " ..
      "after the first connect", open_fds, first, last))
    assert.is_true(w.fds_after <= w.fds_before + 1,
      string.format("fds %d before, %d after: descriptors leaked", w.fds_before, w.fds_after))
  end)

  it("200 slowloris handshakes (one header byte per 100 ms) are closed at the handshake " ..
    "timeout, never upgraded (RSS < 64 MB)", function()
    local w = watch(s, "200 slowloris", socks)
    local conns, req = {}, {}
    for i = 1, 200 do
      conns[i] = rawws.open_tcp(s.port)
      socks[#socks + 1] = conns[i]
      req[i] = rawws.build_request(s.port, "/ws", {})
    end
    local t0 = clock()
    local pos, done, closed, first = 1, {}, 0, nil
    while closed < 200 and clock() - t0 < HANDSHAKE_TIMEOUT + 4 do
      for i = 1, 200 do
        if not done[i] then
          conns[i].sock:settimeout(0)
          local ok = conns[i].sock:send(req[i]:sub(pos, pos))
          if not ok or conns[i]:is_closed() then
            done[i] = true
            closed = closed + 1
            first = first or (clock() - t0)
          end
        end
      end
      pos = pos + 1
      w:tick()
      socket.sleep(0.1)
    end
    assert.equal(200, closed, "slowloris connections still open")
    assert.is_true(first >= HANDSHAKE_TIMEOUT - 0.5, string.format("closed after %.2f s", first))
    assert.is_true(pos < #req[1], "a whole request was sent")
    for i = 1, 200 do
      assert.is_nil(conns[i].buf:find("101", 1, true), "a slowloris handshake was upgraded")
    end
    w:finish(64 * 1024, string.format("%d header bytes each were sent before the close", pos - 1))
  end)

  it("random garbage after a handshake: 100 connections each failed (1002, 1007 or 1009) " ..
    "or closed (RSS < 64 MB)", function()
    local w = watch(s, "garbage", socks)
    local codes = {}
    for i = 1, 100 do
      local c = rawws.connect(s.port, "/ws")
      socks[#socks + 1] = c
      assert.equal(101, c.status)
      -- half of them first send a valid message
      if i % 2 == 0 then
        c:send_text("valid first")
        c:expect_echo("valid first", OP.TEXT)
      end
      c:send_raw(seeded_bytes(4 * KiB, i))
      local code
      local deadline = clock() + 3
      while true do
        local f, err = c:recv_frame(math.max(0, deadline - clock()))
        if not f then
          assert.equal("closed", err, "connection " .. i .. ": neither closed nor failed")
          code = "tcp"
          break
        end
        if f.opcode == OP.CLOSE then
          code = f.payload:byte(1) * 256 + f.payload:byte(2)
          assert.is_true(code == 1002 or code == 1007 or code == 1009,
            "connection " .. i .. ": close code " .. code)
          assert.is_true((c:wait_tcp_close(3)))
          break
        end
      end
      codes[code] = (codes[code] or 0) + 1
      c:close_socket()
      w:tick()
    end
    local summary = {}
    for k, v in pairs(codes) do summary[#summary + 1] = tostring(k) .. "=" .. v end
    table.sort(summary)
    w:finish(64 * 1024, "outcomes " .. table.concat(summary, " "))
  end)

  it("a frame header declaring 2^40 bytes gets 1009 at once, nothing allocated " ..
    "(RSS < 32 MB)", function()
    local w = watch(s, "2^40 header", socks)
    for i = 1, 50 do
      local c = rawws.connect(s.port, "/ws")
      socks[#socks + 1] = c
      local t0 = clock()
      c:send_frame { opcode = i % 2 == 0 and OP.TEXT or OP.BINARY,
        length_raw = "\0\0\1\0\0\0\0\0", header_only = true }
      c:expect_failure(1009, 2)
      assert.is_true(clock() - t0 < 1, "1009 came late")
      c:close_socket()
      w:tick()
    end
    -- and as the second fragment of a message
    local c = rawws.connect(s.port, "/ws")
    socks[#socks + 1] = c
    c:send_frame { opcode = OP.BINARY, payload = "x", fin = false }
    c:send_frame { opcode = OP.CONTINUATION, length_raw = "\0\0\1\0\0\0\0\0", header_only = true }
    c:expect_failure(1009, 2)
    w:finish(32 * 1024)
    assert.is_true(SANITIZED or w.peak - w.before < 4 * 1024, "memory grew by " .. (w.peak - w.before) .. " kB")
  end)

  it("a client sending 64 MiB of echo requests without reading is throttled (read pause, " ..
    "handler waiting), RSS < 200 MB; its abort frees everything", function()
    local w = watch(s, "64 MiB unread echoes", socks)
    local c = rawws.connect(s.port, "/ws")
    socks[#socks + 1] = c
    -- one 64 KiB binary frame with a zero mask key (masking is the identity)
    local frame = "\130\255" .. rawws.be_bytes(64 * KiB, 8) .. "\0\0\0\0" ..
      string.rep("e", 64 * KiB)
    local target = 64 * MiB
    local total, elapsed = send_until_pushback(c, frame, target, w)
    -- the server must not have swallowed all of it: TCP pushed back
    assert.is_true(total < target, "the server accepted all 64 MiB without pushing back")
    local peak_while_blocked = w.peak
    -- abort: the server frees the connection's buffers
    c:close_socket()
    socket.sleep(0.3)
    w:finish(200 * 1024, string.format("client got %d kB in before TCP pushed back (%.1f s); " ..
      "after its abort RSS %d kB", math.floor(total / 1024), elapsed,
      proc.status_kb(s.pid, "VmRSS")))
    assert.is_true(SANITIZED or w.after - w.before < 32 * 1024, string.format(
      "memory not released after the abort: %d -> %d kB (peak %d)", w.before, w.after,
      peak_while_blocked))
  end)

  it("empty messages sent to a handler that does not read pause the connection after " ..
    "read_pause_bytes of real memory (each counts what it holds), RSS growth < 16 MB", function()
    local w = watch(s, "empty messages, handler not reading", socks)
    local c = rawws.connect(s.port, "/sleepy")
    socks[#socks + 1] = c
    -- 1,000 empty binary frames (zero mask key) per send
    local frames = string.rep("\130\128\0\0\0\0", 1000)
    local total, elapsed = send_until_pushback(c, frames, math.huge, w)
    -- TCP pushed back: the server stopped reading instead of queueing on
    local messages = math.floor(total / 6)
    assert.is_true(elapsed < 8, "the server kept reading " .. messages .. " messages")
    c:close_socket()
    socket.sleep(0.3)
    w:finish(w.before + 16 * 1024, string.format("%d empty messages went in before TCP pushed back",
      messages))
  end)

  it("a ping flood (100,000 pings of 125 bytes, pongs never read) is served in order with " ..
    "bounded memory (RSS < 200 MB); past --write-limit it is dropped", function()
    local w = watch(s, "ping flood", socks)
    local c = rawws.connect(s.port, "/ws", { timeout = 20 })
    socks[#socks + 1] = c
    local N, PAY = 100000, 125
    -- pings with a zero mask key; payload: 8-digit sequence number + padding
    local pad = string.rep("p", PAY - 8)
    local batch = {}
    local sock = c.sock
    local sent = 0
    local t0 = clock()
    for i = 1, N do
      batch[#batch + 1] = "\137\253\0\0\0\0" .. string.format("%08d", i) .. pad
      if #batch == 1000 then
        assert(c:send_raw(table.concat(batch)))
        sent = sent + #batch
        batch = {}
        w:tick()
      end
    end
    local send_time = clock() - t0
    socket.sleep(0.3)
    w:tick()
    local buffered_peak = w.peak
    -- now read every pong (2 + 125 bytes each), in order; read in bulk:
    -- rawws's frame reader copies its buffer per frame
    local want = N * (2 + PAY)
    local parts, have = { c.buf }, #c.buf
    c.buf = ""
    sock:settimeout(10)
    while have < want do
      local data, err, partial = sock:receive(math.min(256 * KiB, want - have))
      local d = data or partial
      if d and #d > 0 then
        parts[#parts + 1] = d
        have = have + #d
      end
      if err and err ~= "timeout" then error("reading the pongs: " .. err .. " after " .. have) end
      if err == "timeout" and (not d or #d == 0) then error("no pongs for 10 s after " .. have) end
      w:tick()
    end
    local all = table.concat(parts)
    local got = 0
    for i = 1, N do
      local at = (i - 1) * (2 + PAY) + 1
      if all:sub(at, at + 1) ~= "\138\125" or all:sub(at + 2, at + 9) ~= string.format("%08d", i) then
        error(string.format("pong %d: header %q payload %q", i, all:sub(at, at + 1),
          all:sub(at + 2, at + 9)))
      end
      got = got + 1
    end
    assert.equal(N, got)
    w:finish(200 * 1024, string.format("%d pings sent in %.2f s; RSS with the pongs queued %d kB",
      sent, send_time, buffered_peak))

    -- the same flood against a 4 MiB write limit: dropped, with a warning
    local small = server.start(APP, { "--write-limit", tostring(4 * MiB) })
    local ok, err = pcall(function()
      local w2 = watch(small, "ping flood, --write-limit 4 MiB", socks)
      local d = rawws.connect(small.port, "/ws")
      socks[#socks + 1] = d
      local pings = {}
      for i = 1, 1000 do pings[i] = "\137\253\0\0\0\0" .. string.format("%08d", i) .. pad end
      local chunk = table.concat(pings)
      local pushed = 0
      d.sock:settimeout(0.5)
      for _ = 1, N / 1000 do
        local okk = d:send_raw(chunk)
        if not okk then break end
        pushed = pushed + 1000
        w2:tick()
      end
      assert(small:wait_log("dropping a connection that does not read", 10),
        "no drop past the write limit:\n" .. small:log())
      w2:finish(200 * 1024, string.format("dropped after ~%d pings", pushed))
    end)
    small:stop()
    assert(ok, err)
  end)

  it("a storm of 2,000 connect/close cycles (clean closes, aborts, bare TCP, refused paths) " ..
    "leaves no descriptor or memory behind (RSS < 64 MB)", function()
    local w = watch(s, "2000 connect/close", socks)
    local kinds = { clean = 0, abort = 0, tcp = 0, notfound = 0, midframe = 0 }
    for i = 1, 2000 do
      local k = i % 5
      if k == 0 then
        local c = rawws.connect(s.port, "/ws")
        c:send_text("hi")
        c:expect_echo("hi", OP.TEXT)
        c:close(1000)
        c:expect_close()
        c:close_socket()
        kinds.clean = kinds.clean + 1
      elseif k == 1 then
        local c = rawws.connect(s.port, "/ws")
        c:close_socket()
        kinds.abort = kinds.abort + 1
      elseif k == 2 then
        local c = rawws.open_tcp(s.port)
        c:close_socket()
        kinds.tcp = kinds.tcp + 1
      elseif k == 3 then
        local c = rawws.connect(s.port, "/nowhere")
        assert.equal(404, c.status)
        c:close_socket()
        kinds.notfound = kinds.notfound + 1
      else
        local c = rawws.connect(s.port, "/ws")
        c:send_frame { opcode = OP.BINARY, length_override = 1000, header_only = true }
        c:send_raw("partial")
        c:close_socket()
        kinds.midframe = kinds.midframe + 1
      end
      if i % 100 == 0 then w:tick() end
    end
    -- let the server see every close
    local deadline = clock() + 5
    while fd_count(s.pid) > w.fds_before and clock() < deadline do socket.sleep(0.05) end
    w:finish(64 * 1024, string.format("clean %d, abort %d, bare TCP %d, 404 %d, mid-frame %d",
      kinds.clean, kinds.abort, kinds.tcp, kinds.notfound, kinds.midframe))
    assert.is_true(w.fds_after <= w.fds_before, string.format(
      "descriptors leaked: %d before, %d after", w.fds_before, w.fds_after))
    assert.is_true(SANITIZED or w.after - w.before < 8 * 1024, string.format(
      "memory grew by %d kB over 2000 connections", w.after - w.before))
  end)
end)
