--- Topics: publish once, delivered to every subscriber by the core.
--   ws:subscribe("room:lobby")                    -- in a handler, after accept
--   nexlua.publish("room:lobby", "hello")          -- to every subscriber
--   ws:publish("room:lobby", "hi", {binary = true}) -- to every subscriber but ws
-- A connection leaves its topics when it ends. Topics survive hot reloads;
-- with --workers a publish also reaches the other workers' subscribers
-- (core/relay.c), while the counts returned are this worker's.
local core = require "nexlua.core"
local errors = require "nexlua.errors"
local json = require "nexlua.json"
local args = require "nexlua.private.opts"

local type, tostring = type, tostring
local raise, WebSocketError = errors.raise, errors.WebSocketError
local publish, subscribers = core.publish, core.subscribers

local topics = {}

--- Checks a topic name (a non-empty string); level: for the error's position.
function topics.check(topic, what, level)
  if type(topic) ~= "string" or topic == "" then
    raise(WebSocketError, level + 1, what .. ": the topic must be a non-empty string, got " ..
      (type(topic) == "string" and "an empty one" or type(topic)))
  end
end

local function message(data, what, level)
  if type(data) == "string" then return data end
  if type(data) == "number" then return tostring(data) end
  raise(WebSocketError, level + 1, what .. ": expected a string, got " .. type(data))
end

-- Queues data to topic's subscribers but the connection of except_box.
-- level: where errors point (the caller of the public function).
function topics.deliver(topic, data, binary, except_box, what, level)
  topics.check(topic, what, level + 1)
  data = message(data, what, level + 1)
  local n, err = publish(topic, data, binary, except_box)
  if not n and err == "utf8" then
    raise(WebSocketError, level + 1, what .. ": the text is not valid UTF-8 (use {binary = true} for binary data)")
  end
  return n
end

local PUBLISH_OPTIONS = { "exclude", "binary", "mode" }

local function options(opts, what)
  if opts == nil then return false, nil end
  args.check(opts, PUBLISH_OPTIONS, what, 3)
  local exclude, box = opts.exclude, nil
  if exclude ~= nil then
    -- (a WebSocket keeps its connection box in array slot 1: see websocket.lua)
    box = type(exclude) == "table" and exclude[1] or nil
    if not core.is_box(box) then raise(WebSocketError, 3, what .. ": opts.exclude must be a WebSocket") end
  end
  return args.binary(opts, what, 3), box
end

--- Sends data to every subscriber of topic (in every worker with --workers;
-- but opts.exclude, a WebSocket, if given). opts.binary: a binary message
-- (default text). Returns how many connections of this worker it was queued to.
function topics.publish(topic, data, opts)
  local binary, except = options(opts, "publish")
  local n = topics.deliver(topic, data, binary, except, "publish", 2)
  return n
end

--- Like publish, with v encoded as compact JSON.
function topics.publish_json(topic, v, opts)
  local binary, except = options(opts, "publish_json")
  local s, err = json.encode(v)
  if not s then raise(WebSocketError, 2, "publish_json: cannot encode the value as JSON: " .. tostring(err)) end
  local n = topics.deliver(topic, s, binary, except, "publish_json", 2)
  return n
end

--- How many connections of this process are subscribed to topic.
function topics.subscribers(topic)
  topics.check(topic, "subscribers", 2)
  return subscribers(topic)
end

return topics
