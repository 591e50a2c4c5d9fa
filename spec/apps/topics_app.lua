-- Topics for spec/api/topics_spec.lua. /t/{topic} subscribes on accept and
-- answers "subscribed"; then each text command does one thing:
--   pub:TEXT      ws:publish(topic, TEXT)        -> "sent N" to the sender
--   all:TEXT      nexlua.publish(topic, TEXT)    -> "sent N"
--   bin:TEXT      nexlua.publish(topic, TEXT, {binary = true}) -> "sent N"
--   json:TEXT     nexlua.publish_json(topic, {text = TEXT}) -> "sent N"
--   unsub         ws:unsubscribe(topic)          -> "unsub true|false"
--   resub         ws:subscribe(topic)            -> "resub true|false"
--   state         "topics a,b n=COUNT sub=true|false"
--   census        nexlua.subscribers(topic), then a publish to it, in one
--                 step: "census COUNT SENT"
--   bad           publish invalid UTF-8 as text  -> the error message
--   excl:TEXT     nexlua.publish(topic, TEXT, {exclude = ws}) -> "sent N"
--   badexcl       nexlua.publish with exclude = {} and {newproxy()} -> both errors
--   also:NAME     ws:subscribe(NAME)             -> "also true|false"
--   redis         "redis connected=BOOL published=N received=N dropped=N"
--                 (nexlua.stats(); --redis specs)
local nexlua = require "nexlua"

local app = nexlua.App()

app:ws_route("/early", function(ws)
  local ok, err = pcall(ws.subscribe, ws, "x")
  ws:accept()
  ws:send_text(ok and "subscribed before accept" or tostring(err))
end)

app:ws_route("/t/{topic}", function(ws)
  local topic = ws.path_params.topic
  ws:accept()
  ws:subscribe(topic)
  ws:send_text("subscribed")
  for cmd in ws:iter_text() do
    local verb, arg = cmd:match("^(%a+):?(.*)$")
    if verb == "pub" then
      ws:send_text("sent " .. ws:publish(topic, arg))
    elseif verb == "all" then
      ws:send_text("sent " .. nexlua.publish(topic, arg))
    elseif verb == "bin" then
      ws:send_text("sent " .. nexlua.publish(topic, arg, { binary = true }))
    elseif verb == "json" then
      ws:send_text("sent " .. nexlua.publish_json(topic, { text = arg }))
    elseif verb == "unsub" then
      ws:send_text("unsub " .. tostring(ws:unsubscribe(topic)))
    elseif verb == "resub" then
      ws:send_text("resub " .. tostring(ws:subscribe(topic)))
    elseif verb == "also" then
      ws:send_text("also " .. tostring(ws:subscribe(arg)))
    elseif verb == "state" then
      local list = ws:topics()
      table.sort(list)
      ws:send_text(string.format("topics %s n=%d sub=%s", table.concat(list, ","),
        nexlua.subscribers(topic), tostring(ws:is_subscribed(topic))))
    elseif verb == "census" then
      local n = nexlua.subscribers(topic)
      ws:send_text(string.format("census %d %d", n, nexlua.publish(topic, "probe")))
    elseif verb == "redis" then
      local st = nexlua.stats()
      ws:send_text(string.format("redis connected=%s published=%d received=%d dropped=%d",
        tostring(st.redis_connected), st.redis_published, st.redis_received, st.redis_dropped))
    elseif verb == "excl" then
      ws:send_text("sent " .. nexlua.publish(topic, arg, { exclude = ws }))
    elseif verb == "badexcl" then
      -- a table, and a table holding some other userdata where a WebSocket keeps its box
      local ok, err = pcall(nexlua.publish, topic, "x", { exclude = {} })
      local ok2, err2 = pcall(nexlua.publish, topic, "x", { exclude = { newproxy() } })
      ws:send_text((ok and "published" or tostring(err)) .. " | " .. (ok2 and "published" or tostring(err2)))
    elseif verb == "bad" then
      local ok, err = pcall(nexlua.publish, topic, "\255\254")
      ws:send_text(ok and "published" or tostring(err))
    end
  end
end)

return app
