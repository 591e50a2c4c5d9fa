-- Hot reload spec app for proof B (spec/reload/proof_b_spec.lua): every
-- generation holds a ballast (about 50 KB) reachable only from its handler,
-- so an old generation that is never collected shows in the Lua heap.
-- /mem collects garbage twice and answers collectgarbage("count") (KB);
-- /alive collects twice and answers the generations whose ballast is still
-- reachable (a weak table kept across reloads tracks them).
local nexlua = require "nexlua"

-- The generation number, counted in state that survives reloads.
local counter = nexlua.keep("generations", function() return { n = 0 } end)
counter.n = counter.n + 1
local GENERATION = counter.n

local ballast = {}
for i = 1, 500 do ballast[i] = { i, tostring(i) } end

local live = nexlua.keep("live generations", function() return setmetatable({}, { __mode = "k" }) end)
live[ballast] = GENERATION

local app = nexlua.App()

app:ws_route("/ws", function(ws)
  ws:accept()
  for msg in ws:iter_text() do ws:send_text(GENERATION .. " " .. #ballast .. " " .. msg) end
end)

app:ws_route("/mem", function(ws)
  ws:accept()
  for _ in ws:iter_text() do
    collectgarbage("collect")
    collectgarbage("collect")
    ws:send_text(string.format("%.1f", collectgarbage("count")))
  end
end)

app:ws_route("/alive", function(ws)
  ws:accept()
  for _ in ws:iter_text() do
    collectgarbage("collect")
    collectgarbage("collect")
    local gens = {}
    for _, g in pairs(live) do gens[#gens + 1] = g end
    table.sort(gens)
    ws:send_text(table.concat(gens, " "))
  end
end)

return app
