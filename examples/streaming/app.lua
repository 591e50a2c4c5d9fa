-- Real-time data streaming: the reference's DataStreamer.
--
--   ws://127.0.0.1:8000/stream/stocks    (or weather, news)
--
-- One background task, started by an on_startup hook and cancelled by an
-- on_shutdown hook, publishes synthetic updates of every type each
-- `interval` seconds (0.1 by default; NEXLUA_STREAM_INTERVAL overrides it)
-- to the subscribers of that type. Clients may send "ping" (answer: "pong")
-- and "unsubscribe" (answer: {"type":"unsubscribed"}, then close 1000).
local nexlua = require "nexlua"

local json = nexlua.json

local app = nexlua.App()

local DATA_TYPES = { "stocks", "weather", "news" }

---------------------------------------------------------------------------
-- Synthetic data sources (stand-ins for an exchange feed, a weather API...)

local prices = { ACME = 101.5, GLOBEX = 47.25, INITECH = 12.8 }
local temperatures = { Lagos = 29.0, Oslo = 4.0, Lima = 18.5 }
local headlines = {
  "Markets open higher", "Rain expected in the afternoon", "New Lua release announced",
  "Local team wins again", "Scientists observe a new comet",
}
local news_index = 0

local function round(x, places)
  local m = 10 ^ places
  return math.floor(x * m + 0.5) / m
end

local function fetch_stock_prices()
  local out = {}
  for symbol, price in pairs(prices) do
    price = math.max(1, price * (1 + (math.random() - 0.5) / 50))
    prices[symbol] = price
    out[symbol] = round(price, 2)
  end
  return out
end

local function fetch_weather_data()
  local out = {}
  for city, t in pairs(temperatures) do
    t = t + (math.random() - 0.5) / 2
    temperatures[city] = t
    out[city] = { temperature = round(t, 1), unit = "C" }
  end
  return out
end

local function fetch_news()
  news_index = news_index % #headlines + 1
  return { headline = headlines[news_index] }
end

local sources = { stocks = fetch_stock_prices, weather = fetch_weather_data, news = fetch_news }

---------------------------------------------------------------------------
-- DataStreamer

local DataStreamer = {}
DataStreamer.__index = DataStreamer

function DataStreamer.new(opts)
  opts = opts or {}
  local self = setmetatable({
    subscribers = {}, -- data_type -> {ws = true}
    interval = opts.interval or 0.1, -- seconds between updates
    error_delay = opts.error_delay or 5, -- seconds to back off after a failed update
    running = false,
    task = nil,
    published = 0, -- messages sent, all types and subscribers
    ticks = 0,
  }, DataStreamer)
  for _, t in ipairs(DATA_TYPES) do self.subscribers[t] = {} end
  return self
end

function DataStreamer:start()
  if self.task and not self.task:done() then return end
  self.running = true
  self.task = nexlua.spawn(self.process_data, self)
end

--- Stops the task and waits (at most a second) for it to end.
function DataStreamer:stop()
  self.running = false
  local task = self.task
  if not task then return end
  task:cancel()
  local ok, err = pcall(task.wait, task, 1)
  if not ok and not nexlua.is_cancelled(err) then
    nexlua.log.warn("data streamer did not stop cleanly: %s", tostring(err))
  end
end

function DataStreamer:subscribe(ws, data_type) self.subscribers[data_type][ws] = true end

function DataStreamer:unsubscribe(ws, data_type) self.subscribers[data_type][ws] = nil end

function DataStreamer:count(data_type)
  local n = 0
  for _ in pairs(self.subscribers[data_type]) do n = n + 1 end
  return n
end

--- Sends one update to the subscribers of data_type (encoded once). A
-- subscriber whose connection is gone is dropped; the others still get it.
function DataStreamer:publish_data(data_type, data)
  local set = self.subscribers[data_type]
  if next(set) == nil then return end
  local text = json.encode({
    type = data_type, data = data, seq = self.ticks, timestamp = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  })
  local members = {}
  for ws in pairs(set) do members[#members + 1] = ws end
  for _, ws in ipairs(members) do
    local ok, err = pcall(ws.send_text, ws, text)
    if ok then
      self.published = self.published + 1
    elseif nexlua.is_disconnect(err) or not ws:is_connected() then
      set[ws] = nil
    else
      error(err, 0) -- cancellation or a bug
    end
  end
end

function DataStreamer:tick()
  self.ticks = self.ticks + 1
  for _, data_type in ipairs(DATA_TYPES) do
    self:publish_data(data_type, sources[data_type]())
  end
end

--- The task's body: one update of every type per interval, until stopped.
function DataStreamer:process_data()
  while self.running do
    local ok, err = pcall(self.tick, self)
    if ok then
      nexlua.sleep(self.interval) -- raises CancelledError when stop() cancels us
    elseif nexlua.is_cancelled(err) then
      error(err, 0) -- never swallow a cancellation
    else
      nexlua.log.error("data streamer: %s", tostring(err))
      nexlua.sleep(self.error_delay)
    end
  end
end

---------------------------------------------------------------------------
-- The app

local data_streamer = DataStreamer.new({ interval = tonumber(os.getenv("NEXLUA_STREAM_INTERVAL")) })
app.streamer = data_streamer

app:on_startup(function() data_streamer:start() end)
app:on_shutdown(function() data_streamer:stop() end)

app:ws_route("/stream/{data_type}", function(ws)
  local data_type = ws.path_params.data_type
  if not data_streamer.subscribers[data_type] then
    ws:close(1008, "Invalid data type") -- before accept: HTTP 403
    return
  end
  ws:accept()
  data_streamer:subscribe(ws, data_type)
  local ok, err = pcall(function()
    for message, kind in ws:iter() do -- ends quietly when the client leaves
      if kind == "text" and message == "ping" then
        ws:send_text("pong")
      elseif kind == "text" and message == "unsubscribe" then
        data_streamer:unsubscribe(ws, data_type)
        ws:send_json({ type = "unsubscribed", data_type = data_type })
        ws:close(1000, "Unsubscribed")
        return
      end
    end
  end)
  data_streamer:unsubscribe(ws, data_type)
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end)

return app
