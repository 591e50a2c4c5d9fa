-- A log entry of several lines keeps them, each continuation line indented,
-- so that text a client sends cannot pass for a log entry of its own; a bare
-- CR is written as \r. (spec/apps/log_app.lua)
local rawws = require "helpers.rawws"
local server = require "helpers.server"

describe("log entries", function()
  local s
  setup(function() s = server.start("spec/apps/log_app.lua") end)
  teardown(function() s:stop() end)

  it("indent the lines after the first; a CR is escaped", function()
    local c = rawws.connect(s.port, "/log")
    local fake = "2026-01-01T00:00:00.000Z ERROR forged entry"
    c:send_text("hello\n" .. fake .. "\rover")
    assert.equal("ok", (c:recv_message()))
    c:close(1000)
    assert(s:wait_log("client said: hello", 5), s:log())
    local log = s:log()
    assert.matches("INFO client said: hello\n  2026%-01%-01T00:00:00%.000Z ERROR forged entry\\rover\n", log)
    for line in log:gmatch("[^\n]+") do
      assert.is_nil(line:match("^2026%-01%-01"), "a forged line starts an entry: " .. line)
    end
  end)
end)

describe("debug log entries", function()
  it("name the client of a refused handshake, and a forbidden Origin", function()
    local s = server.start("spec/apps/log_app.lua",
      { "--log-level", "debug", "--allowed-origins", "https://a.example" })
    local ok, err = pcall(function()
      local c = rawws.connect(s.port, "/log", { headers = { Origin = "https://evil.example" } })
      assert.equal(403, c.status)
      c:close_socket()
      local plain = rawws.connect(s.port, "/log", { headers = { Upgrade = false } })
      assert.equal(426, plain.status)
      plain:close_socket()
      assert(s:wait_log("with 426", 3), s:log())
      local log = s:log()
      assert.matches("refused a handshake from 127%.0%.0%.1:%d+ with a forbidden Origin " ..
        "%(https://evil%.example%): 403", log)
      assert.matches("refused a handshake from 127%.0%.0%.1:%d+ with 426: ", log)
    end)
    s:stop()
    assert(ok, err)
  end)
end)

describe("log levels", function()
  it("'notice' (the listening line's) cannot be set: it would silence every entry", function()
    local log = require "nexlua.log"
    local before = log.level()
    assert.has_error(function() log.level("notice") end)
    assert.equal(before, log.level())
  end)
end)
