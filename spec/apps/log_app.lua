-- Logs what clients send (spec/api/log_spec.lua): /log logs each text
-- message at info and replies "ok"; /shut closes before accept with 1008
-- "no token"; /deny denies with 401; /quiet returns without accept();
-- /badfmt logs with a format its argument does not fit.
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/log", function(ws)
  ws:accept()
  for text in ws:iter_text() do
    nexlua.log.info("client said: %s", text)
    ws:send_text("ok")
  end
end)

app:ws_route("/deny", function(ws) ws:deny(401, "no\n") end)

app:ws_route("/quiet", function() end) -- returns without accept()

app:ws_route("/shut", function(ws)
  ws:close(1008, "no token")
end)

app:ws_route("/badfmt", function(ws)
  ws:accept()
  local ok, err = pcall(function() nexlua.log.info("%d apples", "abc") end)
  ws:send_text(ok and "logged" or tostring(err))
end)

return app
