-- Message queuing: the reference's MessageQueue on /queued.
--
--   ws://127.0.0.1:8000/queued     send JSON values, they come back in order
--
-- Each connection gets a bounded queue (nexlua.Queue{maxsize = ...}) and a
-- processor task that takes messages from it and sends them back. The
-- receiving side never waits for the processor: when the queue is full the
-- oldest message is dropped to make room. The processor task is cancelled
-- when the client leaves.
--
-- Settings, from the environment at load time (app.queue_settings holds them;
-- changes apply to new connections):
--   QUEUE_MAXSIZE        messages kept per connection (1000)
--   QUEUE_PROCESS_DELAY  seconds the processor spends per message (0), to
--                        simulate a slow consumer and see the drops
local nexlua = require "nexlua"

local app = nexlua.App()

local settings = {
  maxsize = tonumber(os.getenv("QUEUE_MAXSIZE")) or 1000,
  process_delay = tonumber(os.getenv("QUEUE_PROCESS_DELAY")) or 0,
}
app.queue_settings = settings

local MessageQueue = {}
MessageQueue.__index = MessageQueue

function MessageQueue.new(maxsize)
  return setmetatable({ queue = nexlua.Queue({ maxsize = maxsize }), dropped = 0 }, MessageQueue)
end

--- Adds message; when the queue is full the oldest message is dropped first.
-- Never waits.
function MessageQueue:put_message(message)
  local q = self.queue
  if q:full() then
    q:get_nowait() -- drop the oldest
    self.dropped = self.dropped + 1
  end
  q:put_nowait(message)
end

--- The oldest message, waiting while there is none.
function MessageQueue:get_message() return self.queue:get() end

function MessageQueue:size() return self.queue:qsize() end

-- The processor: sends queued messages back, one by one, in order.
local function process_messages(ws, message_queue, delay)
  while true do
    local message = message_queue:get_message() -- raises CancelledError when cancelled
    if delay > 0 then nexlua.sleep(delay) end -- the "work"
    local ok, err = pcall(ws.send_json, ws, message)
    if ok then
      ws.state.sent = ws.state.sent + 1
    elseif nexlua.is_disconnect(err) then
      return -- the client left; the handler cancels us anyway
    else
      error(err, 0) -- a cancellation while waiting to send, or a bug
    end
  end
end

app:ws_route("/queued", function(ws)
  ws:accept()
  local message_queue = MessageQueue.new(settings.maxsize)
  local processor_task = nexlua.spawn(process_messages, ws, message_queue, settings.process_delay)
  ws.state.queue, ws.state.processor = message_queue, processor_task
  ws.state.received, ws.state.sent = 0, 0
  local ok, err = pcall(function()
    while true do
      local got, data = pcall(ws.receive_json, ws)
      if got then
        ws.state.received = ws.state.received + 1
        message_queue:put_message(data)
      elseif nexlua.is_json_error(data) then
        message_queue:put_message({ error = "Invalid JSON" }) -- in order with the rest
      else
        error(data, 0) -- WebSocketDisconnect: the client left
      end
    end
  end)
  processor_task:cancel() -- whatever ended the loop
  if not ok and not nexlua.is_disconnect(err) then error(err, 0) end
end)

return app
