-- --busy-poll (and the app option busy_poll): after a read the server keeps
-- polling instead of sleeping for the given microseconds, then sleeps again.
-- Shown by the server's own CPU time (/proc/PID/stat) over real sockets: a
-- server that polls burns its core during the window after a message and
-- nothing once the window has passed; without the option it burns nothing.
local rawws = require "helpers.rawws"
local server = require "helpers.server"
local proc = require "helpers.proc"
local socket = require "socket"

local TICKS = 100 -- USER_HZ: /proc/PID/stat counts CPU time in 1/100 s

-- utime + stime of pid, in seconds.
local function cpu_seconds(pid)
  local stat = assert(proc.read_file("/proc/" .. pid .. "/stat"))
  local rest = stat:match("^%d+ %b() (.*)$")
  local fields = {}
  for f in rest:gmatch("%S+") do fields[#fields + 1] = f end
  -- fields[1] is the state (field 3): utime and stime are fields 14 and 15.
  return (tonumber(fields[12]) + tonumber(fields[13])) / TICKS
end

-- Echoes one message on a fresh connection, then returns the server's CPU
-- seconds over the next `window` seconds of silence.
local function cpu_after_message(s, window)
  local c = rawws.connect(s.port, "/ws")
  c:send_text("wake up")
  assert.equal("wake up", (c:recv_message()))
  local before = cpu_seconds(s.pid)
  socket.sleep(window)
  local used = cpu_seconds(s.pid) - before
  c:close_socket()
  return used
end

describe("--busy-poll", function()
  it("keeps the loop polling for the window after a read, then lets it sleep", function()
    local s = server.start("spec/bench_apps/echo.lua", { "--busy-poll", "600000" })
    finally(function() s:stop() end)
    -- The window is 0.6 s: most of the 0.5 s after the echo is spent polling.
    local busy = cpu_after_message(s, 0.5)
    assert.is_true(busy >= 0.15, "CPU while polling: " .. busy .. " s")
    -- Past the window the server sleeps in epoll_wait again.
    socket.sleep(0.3)
    local before = cpu_seconds(s.pid)
    socket.sleep(0.5)
    local idle = cpu_seconds(s.pid) - before
    assert.is_true(idle <= 0.05, "CPU once the window has passed: " .. idle .. " s")
    -- And it still serves.
    local c = rawws.connect(s.port, "/ws")
    c:send_text("still here")
    assert.equal("still here", (c:recv_message()))
    c:close_socket()
  end)

  it("is off by default: an idle server sleeps right after a message", function()
    local s = server.start("spec/bench_apps/echo.lua", {})
    finally(function() s:stop() end)
    local used = cpu_after_message(s, 0.5)
    assert.is_true(used <= 0.05, "CPU after a message without --busy-poll: " .. used .. " s")
  end)

  it("is taken from the app's options too", function()
    local dir, s = proc.tmpdir(), nil
    -- (one finally per test: busted keeps the last one given)
    finally(function()
      if s then s:stop() end
      proc.rmdir(dir)
    end)
    local app = dir .. "/app.lua"
    proc.write_file(app, [[
local nexlua = require "nexlua"
local app = nexlua.App({ busy_poll = 600000 })
app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(msg) end
end)
return app
]])
    s = server.start(app, {})
    local busy = cpu_after_message(s, 0.5)
    assert.is_true(busy >= 0.15, "CPU while polling: " .. busy .. " s")
  end)

  it("refuses values outside 0 to 1000000 microseconds with a clear error", function()
    local bin = os.getenv("NEXLUA_BIN") or "build/nexlua"
    for _, v in ipairs({ "1000001", "-1", "soon" }) do
      local code, _, err = proc.run({ bin, "spec/bench_apps/echo.lua", "--port", "0", "--busy-poll", v }, 10)
      assert.equal(2, code, "--busy-poll " .. v .. ": " .. err)
      assert.matches("busy.poll", err)
      assert.is_nil(err:find("stack traceback", 1, true), err)
    end
    local dir = proc.tmpdir()
    finally(function() proc.rmdir(dir) end)
    local app = dir .. "/app.lua"
    proc.write_file(app, 'local app = require("nexlua").App({ busy_poll = "fast" })\nreturn app\n')
    local code, _, err = proc.run({ bin, app, "--port", "0" }, 10)
    assert.equal(1, code, err) -- (the app cannot be loaded)
    assert.matches(app .. ':1: App: busy_poll must be a number from 0 to 1000000, got "fast"', err, 1, true)
  end)
end)
