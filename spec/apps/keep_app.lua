-- nexlua.keep with an init() that waits (spec/api/keep_spec.lua): /pool
-- answers the pool it got and how many times init ran; /bad's first init
-- fails.
local nexlua = require "nexlua"
local app = nexlua.App()
local calls = 0
app:ws_route("/pool", function(ws)
  local pool = nexlua.keep("pool", function()
    calls = calls + 1
    nexlua.sleep(0.2)
    return { id = calls }
  end)
  ws:accept()
  ws:send_text(string.format("pool %d calls %d", pool.id, calls))
end)
local fails = 0
app:ws_route("/bad", function(ws)
  ws:accept()
  local ok, err = pcall(nexlua.keep, "bad", function()
    fails = fails + 1
    nexlua.sleep(0.1)
    if fails == 1 then error("first fails") end
    return { n = fails }
  end)
  ws:send_text(ok and ("bad ok " .. err.n) or ("bad err " .. tostring(err)))
end)
return app
