--- A first-in, first-out list of parked coroutines (a Queue's getters and
-- putters, a Task's waiters). Adding one, waking the first, and leaving
-- early (a timeout, a cancel) are O(1) each, so that ten thousand waiters
-- on one queue or task cost what one does, times ten thousand.
--   local l = waitlist.new()
--   local at = waitlist.add(l, me)       -- then park
--   waitlist.leave(l, at, me)            -- after a timeout or cancel
--   waitlist.wake_one(l)                 -- the first still parked
--   waitlist.wake_all(l)
local core = require "nexlua.core"

local unpark = core.unpark

local waitlist = {}

function waitlist.new() return { head = 1, tail = 0, n = 0 } end

--- Appends task t; returns its place (for leave).
function waitlist.add(l, t)
  local i = l.tail + 1
  l.tail = i
  l[i] = t
  l.n = l.n + 1
  return i
end

--- Takes t out of its place, if it is still there (it was not woken).
function waitlist.leave(l, at, t)
  if l[at] == t then
    l[at] = false
    l.n = l.n - 1
  end
end

--- How many are waiting.
function waitlist.count(l) return l.n end

--- Wakes the first waiter that is still parked; returns true if one was.
function waitlist.wake_one(l)
  local h, tail = l.head, l.tail
  while h <= tail do
    local t = l[h]
    l[h] = nil
    h = h + 1
    if t then
      l.n = l.n - 1
      if unpark(t) then
        l.head = h
        return true
      end
    end
  end
  l.head, l.tail, l.n = 1, 0, 0 -- empty: places start again from 1
  return false
end

--- Wakes every waiter, in order.
function waitlist.wake_all(l)
  local h, tail = l.head, l.tail
  l.head, l.tail, l.n = 1, 0, 0
  for i = h, tail do
    local t = l[i]
    l[i] = nil
    if t then unpark(t) end
  end
end

return waitlist
