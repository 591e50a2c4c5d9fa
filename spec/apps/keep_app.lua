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
-- keep with a value that is not a function; keep inside its own init; an
-- init whose task ends without returning (a bare coroutine.yield()).
app:ws_route("/plain", function(ws)
  ws:accept()
  local a, b = nexlua.keep("plain", 5), nexlua.keep("plain", 6)
  ws:send_text(string.format("plain %s %s", tostring(a), tostring(b)))
end)
app:ws_route("/self", function(ws)
  ws:accept()
  local ok, err = pcall(nexlua.keep, "self", function()
    local again = nexlua.keep("self", {})
    return again
  end)
  ws:send_text(ok and "self ok" or ("self err " .. tostring(err)))
end)
app:ws_route("/abandoned", function(ws)
  ws:accept()
  nexlua.spawn(function()
    nexlua.keep("abandoned", function()
      nexlua.sleep(0.05)
      coroutine.yield() -- (the core ends this task: init never returns)
    end)
  end)
  nexlua.sleep(0.1)
  local v = nexlua.keep("abandoned", function() return { fresh = true } end)
  ws:send_text(v.fresh and "abandoned fresh" or "abandoned ?")
end)

return app
