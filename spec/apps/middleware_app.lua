-- Middleware spec app (spec/api/middleware_spec.lua). Used in-process through
-- TestClient (app.state.events is then readable by the spec) and as a real
-- process for what only the log and the wire can show.
local nexlua = require "nexlua"

local app = nexlua.App()
local events = {}
app.state.events = events
local function note(ev) events[#events + 1] = ev end

local function push(ws, what)
  local order = ws.state.order
  order[#order + 1] = what
end

-- App-level #1: times itself around everything, waits before the handler,
-- and runs code after the handler has returned.
app:add_ws_middleware(function(ws, call_next)
  ws.state.order = { "outer" }
  ws.state.outer_co = coroutine.running()
  local t0 = nexlua.now()
  nexlua.sleep(0.05)
  ws.state.outer_slept = nexlua.now() - t0
  call_next()
  push(ws, "outer after")
  note("outer after " .. ws.path)
  if ws.path == "/ordered" then ws:send_json({ order = ws.state.order }) end
end)

-- App-level #2: authentication for /secure/... (the reference's pattern).
app:add_ws_middleware(function(ws, call_next)
  push(ws, "auth")
  if ws.path:sub(1, 8) == "/secure/" then
    local token = ws.query_params:get("token")
    if not token then
      note("auth refused " .. ws.path)
      ws:close(1008, "Authentication required")
      return
    end
    if token == "deny" then
      note("auth denied " .. ws.path)
      ws:deny(401, "token rejected\n", { ["WWW-Authenticate"] = 'Bearer realm="nexlua"' })
      return
    end
    ws.state.user = "user-" .. token
  end
  call_next()
  push(ws, "auth after")
end)

local function route_mw(name)
  return function(ws, call_next)
    push(ws, name)
    call_next()
    push(ws, name .. " after")
  end
end

-- Order: app-level first, then route-level; each wraps the next one.
app:ws_route("/ordered", function(ws)
  push(ws, "handler")
  ws:accept()
  ws:send_json({
    order = ws.state.order,
    same_coroutine = ws.state.outer_co == coroutine.running(),
    outer_slept = ws.state.outer_slept,
  })
  ws:receive_text() -- the client says when to return
  push(ws, "handler returns")
end, { middleware = { route_mw("route1"), route_mw("route2") } })

app:ws_route("/secure/profile", function(ws)
  note("secure handler ran for " .. tostring(ws.state.user))
  ws:accept()
  ws:send_text("hello " .. ws.state.user)
end)

-- A route middleware that does not call call_next: the handler never runs.
app:ws_route("/stop", function(ws)
  note("stop handler ran")
  ws:accept()
end, { middleware = { function() note("stopper ran") end } })

app:ws_route("/mw-error-before", function(ws)
  note("error-before handler ran")
  ws:accept()
end, {
  middleware = { function() error("boom in middleware before accept") end },
})

app:ws_route("/mw-error-after", function(ws)
  ws:accept()
  ws:send_text("accepted")
end, {
  middleware = {
    function(_, call_next)
      call_next()
      error("boom in middleware after the handler")
    end,
  },
})

app:ws_route("/twice", function(ws)
  ws.state.runs = (ws.state.runs or 0) + 1
  ws:accept()
  ws:send_text("handler run " .. ws.state.runs)
end, {
  middleware = {
    function(ws, call_next)
      call_next()
      local ok, err = pcall(call_next)
      ws:send_text(string.format("second call_next: ok=%s err=%s runs=%d", tostring(ok), tostring(err),
        ws.state.runs))
    end,
  },
})

-- A handler failing inside a helper, behind a middleware that lets it
-- through (/origin/through) or catches it for cleanup and re-raises it
-- (/origin/reraise): the log names the failing line either way.
local function failing_helper(t) return t.missing.field end
local function failing_handler(ws)
  ws:accept()
  failing_helper({})
end
app:ws_route("/origin/through", failing_handler, {
  middleware = { function(_, call_next) call_next() end },
})
app:ws_route("/origin/reraise", failing_handler, {
  middleware = {
    function(_, call_next)
      local ok, err = pcall(call_next)
      nexlua.log.info("origin: cleanup ran")
      if not ok then error(err, 0) end -- middleware_app.lua: the re-raise
    end,
  },
})

return app
