--- Seconds on a monotonic clock (CLOCK_MONOTONIC, through nexlua.core.hrtime),
-- for the durations and deadlines of specs: unlike socket.gettime (the wall
-- clock), a step of the system time cannot move it, and the server's own
-- timers (libuv) run on it.
--   local clock = require "helpers.clock"
--   local t0 = clock()
return require("nexlua.core").hrtime
