--- An asyncio-style queue between coroutines.
--   local q = nexlua.Queue{maxsize = 100}   -- maxsize 0 (default): unbounded
--   q:put(v)          -- waits while full        q:put_nowait(v)  -- raises QueueFull
--   local v = q:get() -- waits while empty       q:get_nowait()   -- raises QueueEmpty
-- put and get take an optional timeout (seconds) and raise TimeoutError.
local core = require "nexlua.core"
local errors = require "nexlua.errors"
local waiting = require "nexlua.private.waiting"
local waitlist = require "nexlua.private.waitlist"
local args = require "nexlua.private.opts"

local setmetatable, error, type, pairs, tostring = setmetatable, error, type, pairs, tostring
local park, current = core.park, core.current
local wake_one = waitlist.wake_one

local Queue = {}
Queue.__index = Queue

local function new(opts)
  local maxsize = opts or 0
  if type(opts) == "table" then
    for k in pairs(opts) do
      if k ~= "maxsize" then error("Queue: unknown option " .. tostring(k) .. " (it takes maxsize)", 2) end
    end
    maxsize = opts.maxsize or 0
  end
  if type(maxsize) ~= "number" or maxsize ~= maxsize or maxsize < 0 or maxsize % 1 ~= 0 then
    error("Queue: maxsize must be a whole number, 0 or more, got " ..
      (type(maxsize) == "string" and string.format("the string %q", maxsize) or tostring(maxsize)), 2)
  end
  return setmetatable({
    items = {}, head = 1, tail = 0, maxsize = maxsize, getters = waitlist.new(), putters = waitlist.new(),
  }, Queue)
end

function Queue:qsize() return self.tail - self.head + 1 end
function Queue:empty() return self.tail < self.head end
function Queue:full() return self.maxsize > 0 and self:qsize() >= self.maxsize end

local function wait_in(list, timeout, what)
  local me = current()
  if not me then error("Queue:" .. what .. "() must be called from a nexlua coroutine", 3) end
  local at = waitlist.add(list, me)
  local why = waiting.call(park, "Queue:" .. what, timeout)
  if why ~= nil then waitlist.leave(list, at, me) end -- (woken: it was taken off already)
  if why == "timeout" then error(errors.TimeoutError(timeout), 0) end
  if why == "cancelled" then error(errors.CancelledError(), 0) end
end

function Queue:put_nowait(item)
  if self:full() then error(errors.QueueFull(), 2) end
  self.tail = self.tail + 1
  self.items[self.tail] = item
  wake_one(self.getters)
end

function Queue:get_nowait()
  if self:empty() then error(errors.QueueEmpty(), 2) end
  local item = self.items[self.head]
  self.items[self.head] = nil
  self.head = self.head + 1
  if self.head > self.tail then self.head, self.tail = 1, 0 end
  wake_one(self.putters)
  return item
end

--- Adds item, waiting while the queue is full.
function Queue:put(item, timeout)
  waiting.check_timeout(timeout, "Queue:put", 2)
  while self:full() do wait_in(self.putters, timeout, "put") end
  self:put_nowait(item)
end

--- Removes and returns the oldest item, waiting while the queue is empty.
function Queue:get(timeout)
  waiting.check_timeout(timeout, "Queue:get", 2)
  while self:empty() do wait_in(self.getters, timeout, "get") end
  return self:get_nowait()
end

args.colon_methods(Queue, "Queue", "q")
return { new = new, Queue = Queue }
