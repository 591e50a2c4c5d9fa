-- API misuse a user may write (spec/api/misuse_spec.lua): each route makes
-- one mistake and answers with the error it got (after accept(), as a text
-- message; when the handshake is already refused, in a log line "RESULT
-- <route>: <error>"), or lets the error end the handler.
local nexlua = require "nexlua"
local log = nexlua.log

local app = nexlua.App()

-- The error of fn(), as text (or "no error"). (fn is a closure that makes
-- the call as an app would, not in a tail call: the error names its line.)
local function err_of(fn)
  local ok, e = pcall(fn)
  if ok then return "no error" end
  return tostring(e)
end

-- accept() with bad headers: every case is refused; then a good accept.
local BAD_HEADERS = {
  string_entry = { "X-A: 1" },
  one_element = { { "X-A" } },
  table_value = { ["X-A"] = {} },
  mixed = { { "X-A", "1" }, ["X-B"] = "2" },
  nul_value = { ["X-A"] = "a\0b" },
  number_name = { [2] = "x" }, -- (a table that is not a list: key 2 alone)
}
app:ws_route("/accept_headers/{case}", function(ws)
  local e = err_of(function() ws:accept { headers = BAD_HEADERS[ws.path_params.case] } end)
  ws:accept()
  ws:send_text(e)
end)

-- deny() with a body or status that is not what it takes.
app:ws_route("/deny/{case}", function(ws)
  local case = ws.path_params.case
  local e
  if case == "table_body" then
    e = err_of(function() ws:deny(401, {}) end)
  elseif case == "function_body" then
    e = err_of(function() ws:deny(401, print) end)
  elseif case == "fraction" then
    e = err_of(function() ws:deny(401.5) end)
  end
  ws:deny(409, e)
end)

-- The second of two refusals, and an accept() after a refusal.
app:ws_route("/refused/{case}", function(ws)
  local case = ws.path_params.case
  if case == "deny_deny" then
    ws:deny(401)
    log.info("RESULT %s: %s", case, err_of(function() ws:deny(402) end))
  elseif case == "close_deny" then
    ws:close()
    log.info("RESULT %s: %s", case, err_of(function() ws:deny(402) end))
  elseif case == "close_accept" then
    ws:close()
    log.info("RESULT %s: %s", case, err_of(function() ws:accept() end))
  end
end)

-- accept() again after the first raised WebSocketDisconnect (the client
-- left while the handler waited).
app:ws_route("/left", function(ws)
  nexlua.sleep(0.3)
  local first = err_of(function() ws:accept() end)
  log.info("RESULT left: %s | %s", first, err_of(function() ws:accept() end))
end)

-- accept() on a WebSocket that was accepted and has ended since.
local saved
app:ws_route("/save", function(ws)
  saved = ws
  ws:accept()
  ws:close()
end)
app:ws_route("/accept_saved", function(ws)
  local e = err_of(function() saved:accept() end)
  ws:accept()
  ws:send_text(e)
end)

-- Methods called with a dot.
app:ws_route("/dot/{what}", function(ws)
  ws:accept()
  local what = ws.path_params.what
  if what == "receive_json" then
    ws:send_text(err_of(function()
      local v = ws.receive_json()
      return v
    end))
  elseif what == "receive_bytes" then
    ws:send_text(err_of(function()
      local v = ws.receive_bytes()
      return v
    end))
  elseif what == "queue" then
    local q = nexlua.Queue()
    ws:send_text(err_of(function() q.put_nowait(1) end))
  elseif what == "task" then
    local t = nexlua.spawn(function() end)
    ws:send_text(err_of(function()
      local v = t.wait()
      return v
    end))
  end
end)

-- An iterator given options (it takes none: the loop would wait for ever
-- where a timeout was meant).
app:ws_route("/iter_opts", function(ws)
  ws:accept()
  ws:send_text(err_of(function()
    for _ in ws:iter_text({ timeout = 0.3 }) do end
  end))
end)

-- A task that waits for itself.
app:ws_route("/wait_self", function(ws)
  ws:accept()
  local t
  t = nexlua.spawn(function()
    nexlua.sleep(0)
    return t:wait()
  end)
  ws:send_text(err_of(function()
    local v = t:wait(2)
    return v
  end))
end)

-- JSON of a binary message that is not UTF-8.
app:ws_route("/json", function(ws)
  ws:accept()
  local ok, e = pcall(ws.receive_json, ws)
  ws:send_text(ok and "decoded" or (nexlua.is_json_error(e) and "JSONDecodeError: " or "other: ") .. tostring(e))
end)

-- Errors the handler does not catch.
app:ws_route("/raise/{what}", function(ws)
  ws:accept()
  local what = ws.path_params.what
  if what == "bad_tostring" then
    error(setmetatable({}, { __tostring = function() error("boom") end }))
  elseif what == "long" then
    error(string.rep("e", 20000) .. " END-OF-MESSAGE")
  elseif what == "long_bytes" then
    error(string.rep("\128", 20000) .. " END-OF-BYTES")
  end
end)

-- A handler given as a nil variable, and a decorator never completed, are
-- load-time matters: see misuse_spec's CLI cases.
return app
