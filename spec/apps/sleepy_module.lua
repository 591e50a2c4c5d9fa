-- A module that waits while it loads (spec/api/yield_guard_spec.lua):
-- require() cannot be suspended, so this must fail with a clear error.
local nexlua = require "nexlua"
nexlua.sleep(0.01)
return { loaded = true }
