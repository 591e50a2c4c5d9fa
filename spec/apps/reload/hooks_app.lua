-- Hot reload spec app: lifecycle hooks across a reload. The startup hook
-- starts a ticker task that sends "tick <version>" to every subscriber (kept
-- with nexlua.keep); the shutdown hook cancels it and waits for it to end;
-- on_reload logs the version of the app it replaced.
-- A template: {{VERSION}} is filled in by the spec.
local nexlua = require "nexlua"
local log = nexlua.log

local VERSION = "{{VERSION}}"

local subscribers = nexlua.keep("subscribers", function() return {} end)

local app = nexlua.App()
app.state.version = VERSION

local ticker

app:on_startup(function()
  log.info("hook: startup %s", VERSION)
  ticker = nexlua.spawn(function()
    local ok, err = pcall(function()
      while true do
        for ws in pairs(subscribers) do pcall(ws.send_text, ws, "tick " .. VERSION) end
        nexlua.sleep(0.02)
      end
    end)
    log.info("hook: ticker %s stopped (%s)", VERSION,
      (not ok and nexlua.is_cancelled(err)) and "cancelled" or tostring(err))
  end)
end)

app:on_shutdown(function()
  log.info("hook: shutdown %s", VERSION)
  ticker:cancel()
  pcall(ticker.wait, ticker, 2)
end)

app:on_reload(function(old_app)
  log.info("hook: on_reload %s replaced %s (%s)", VERSION, tostring(old_app and old_app.state.version),
    old_app == app and "same app" or "another app")
end)

app:ws_route("/ticks", function(ws)
  ws:accept()
  subscribers[ws] = true
  local ok, err = pcall(function()
    for msg in ws:iter_text() do ws:send_text("echo " .. VERSION .. " " .. msg) end
  end)
  subscribers[ws] = nil
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end)

return app
