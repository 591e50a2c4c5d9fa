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
