-- Authentication before accept: the reference's authenticate_websocket().
--
-- The token comes from the query (?token=...) or from an
-- "Authorization: Bearer ..." header. Two routes show the two ways to refuse:
--   /secure       ws:close(1008, reason) before accept, as in Nexios: the
--                 client gets HTTP 403 and never sees the code or the reason
--   /secure-http  ws:deny(401, body, headers): a real HTTP answer the client
--                 can read (status, WWW-Authenticate header, body)
-- Once accepted, ws.state.user holds the user and every message is answered.
local nexlua = require "nexlua"

local app = nexlua.App()

-- Demo tokens. A real app would check a JWT signature or ask an auth service.
local TOKENS = {
  ["alice-token"] = { id = 1, name = "alice", role = "admin" },
  ["bob-token"] = { id = 2, name = "bob", role = "user" },
}

-- The reference's InvalidTokenError, as an error class of the app's own.
local InvalidTokenError = nexlua.error_class("InvalidTokenError")

--- Returns the user for token; raises InvalidTokenError for an unknown one.
-- It waits a little, as a call to an auth service would: other connections
-- keep running meanwhile.
local function verify_token(token)
  nexlua.sleep(0.01)
  local user = TOKENS[token]
  if not user then error(InvalidTokenError("unknown token", { token = token })) end
  return user
end

--- The token from ?token=, else from "Authorization: Bearer <token>" (the
-- scheme is case-insensitive, RFC 6750), else nil.
local function token_from(ws)
  local token = ws.query_params:get("token")
  if token and token ~= "" then return token end
  local header = ws.headers:get("authorization", "")
  local scheme, credentials = header:match("^(%S+)%s+(%S+)%s*$")
  if scheme and scheme:lower() == "bearer" then return credentials end
  return nil
end

-- The two ways to refuse a handshake.
local function refuse_with_close(ws, reason)
  ws:close(1008, reason) -- before accept: HTTP 403 on the wire
end

local function refuse_with_401(ws, reason)
  ws:deny(401, reason .. "\n", {
    ["WWW-Authenticate"] = reason == "Invalid token" and 'Bearer error="invalid_token"' or 'Bearer realm="nexlua"',
    ["Content-Type"] = "text/plain",
  })
end

--- Returns the user, or nil after refusing the connection with refuse(ws, reason).
local function authenticate(ws, refuse)
  local token = token_from(ws)
  if not token then
    refuse(ws, "Authentication required")
    return nil
  end
  local ok, user = pcall(verify_token, token) -- try / except InvalidTokenError
  if not ok then
    if not InvalidTokenError.is(user) then error(user, 0) end -- any other error is a bug
    refuse(ws, "Invalid token")
    return nil
  end
  return user
end

-- What an authenticated user can do: "whoami" reads ws.state.user; anything
-- else is echoed with the sender's name and a per-connection counter.
local function handle_authenticated_message(ws, message)
  local user = ws.state.user
  ws.state.message_count = ws.state.message_count + 1
  if message == "whoami" then
    ws:send_json({ type = "whoami", id = user.id, name = user.name, role = user.role })
  else
    ws:send_json({ type = "echo", user = user.name, text = message, count = ws.state.message_count })
  end
end

local function secure_handler(refuse)
  return function(ws)
    local user = authenticate(ws, refuse)
    if not user then return end
    ws:accept()
    ws.state.user = user
    ws.state.message_count = 0
    for message in ws:iter_text() do -- ends quietly when the client leaves
      handle_authenticated_message(ws, message)
    end
    nexlua.log.info("user %s disconnected after %d messages", user.name, ws.state.message_count)
  end
end

app:ws_route("/secure", secure_handler(refuse_with_close))
app:ws_route("/secure-http", secure_handler(refuse_with_401))

return app
