-- Yield guard spec app (spec/api/yield_guard_spec.lua), used in-process: it
-- requires "apps.sleepy_module" (spec/apps/sleepy_module.lua through the
-- spec's LUA_PATH "./spec/?.lua").
local nexlua = require "nexlua"

local app = nexlua.App()

local attempts = {
  require = function() return require("apps.sleepy_module") end,
  gsub = function()
    return (string.gsub("abc", "b", function() nexlua.sleep(0.01) end))
  end,
  sort = function()
    local t = { 3, 1, 2 }
    table.sort(t, function(a, b)
      nexlua.sleep(0.01)
      return a < b
    end)
  end,
  wrap = function() return coroutine.wrap(function() nexlua.sleep(0.01) end)() end,
  gc = function()
    local result
    collectgarbage("stop") -- the finalizer runs in the collect below, nowhere else
    local p = newproxy(true)
    getmetatable(p).__gc = function()
      local ok, err = pcall(nexlua.sleep, 0.01)
      result = { ok = ok, err = err }
    end
    p = nil -- luacheck: ignore 311
    collectgarbage("collect")
    collectgarbage("restart")
    if not result then return "the finalizer did not run" end
    if not result.ok then error(result.err, 0) end
  end,
  ["receive-in-gsub"] = function(ws)
    return (string.gsub("x", "x", function() return ws:receive_text() end))
  end,
}

-- /try/{what}: attempts the wait, reports the error, then proves that the
-- same coroutine can still wait and the connection still works.
app:ws_route("/try/{what}", function(ws)
  local what = ws.path_params.what
  ws:accept()
  local ok, err = pcall(attempts[what], ws)
  ws:send_json({
    ok = ok,
    message = tostring(err),
    is_websocket_error = nexlua.is_websocket_error(err),
  })
  local t0 = nexlua.now()
  nexlua.sleep(0.05)
  ws:send_json({ slept = nexlua.now() - t0 })
  for msg in ws:iter_text() do ws:send_text("echo " .. msg) end
end)

return app
