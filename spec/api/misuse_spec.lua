-- API misuse a user writing from the README may make, over real sockets
-- (spec/apps/misuse_app.lua): each gets an error that names the call and
-- what is wrong, at the app's line, and the server goes on serving.
local server = require "helpers.server"
local rawws = require "helpers.rawws"

describe("API misuse", function()
  local s
  local clients = {}

  setup(function() s = server.start("spec/apps/misuse_app.lua") end)
  teardown(function() if s then s:stop() end end)
  after_each(function()
    for _, c in ipairs(clients) do c:close_socket() end
    clients = {}
    assert.is_true(s:alive(), "server died; log:\n" .. s:log())
  end)

  local function open(path)
    local c = rawws.connect(s.port, path)
    clients[#clients + 1] = c
    return c
  end

  -- The error the route at path reports in its first message.
  local function reported(path)
    local c = open(path)
    assert.equal(101, c.status, path)
    return (c:recv_message())
  end

  describe("accept{headers = ...} refuses what it cannot send", function()
    for case, want in pairs {
      string_entry = "accept: headers%[1%] must be a {name, value} pair, got string",
      one_element = "accept: headers%[1%] must be a {name, value} pair, got a table without both",
      table_value = "accept: the value of header X%-A must be a string, got table",
      mixed = "accept: headers must be a list of {name, value} pairs or a table of name = value, not " ..
        "both %(found key \"X%-B\"%)",
      nul_value = "accept: header value for X%-A contains a NUL byte",
      number_name = "accept: invalid header name %(a number%)",
    } do
      it(case, function()
        local e = reported("/accept_headers/" .. case)
        assert.matches("misuse_app%.lua:%d+: " .. want, e)
      end)
    end
  end)

  describe("deny() refuses a body or status it cannot send", function()
    for case, want in pairs {
      table_body = "deny: body must be a string, got table",
      function_body = "deny: body must be a string, got function",
      fraction = "deny: status must be an integer from 400 to 599, got 401.5",
    } do
      it(case, function()
        local c = open("/deny/" .. case)
        assert.equal(409, c.status)
        assert.matches("misuse_app%.lua:%d+: " .. want, c.body)
      end)
    end
  end)

  describe("a second refusal, or an accept() after one, says the handshake was refused", function()
    for case, want in pairs {
      deny_deny = "deny%(%): the handshake was already refused %(by close%(%) or an earlier deny%(%)%)",
      close_deny = "deny%(%): the handshake was already refused",
      close_accept = "accept%(%) after the handshake was refused",
    } do
      it(case, function()
        local c = open("/refused/" .. case)
        assert.is_true(c.status == 401 or c.status == 403, tostring(c.status))
        assert.truthy(s:wait_log("RESULT " .. case .. ": [^\n]*misuse_app%.lua:%d+: " .. want),
          s:log())
      end)
    end
  end)

  it("accept() again after the client left says so", function()
    local c = rawws.open_tcp(s.port)
    c:send_raw((rawws.build_request(s.port, "/left")))
    c:close_socket()
    assert.truthy(s:wait_log("RESULT left: WebSocket disconnected %(1006%) | [^\n]*misuse_app%.lua:%d+: accept%(%) " ..
      "after the client left %(the first accept%(%) raised WebSocketDisconnect%)"), s:log())
  end)

  it("accept() on a WebSocket that was accepted and has ended says so", function()
    local c = open("/save")
    assert.equal(1000, (c:expect_close()))
    assert.matches("misuse_app%.lua:%d+: accept%(%) called twice: this connection was accepted before, " ..
      "and has ended since", reported("/accept_saved"))
  end)

  describe("a method called with a dot names itself", function()
    for what, want in pairs {
      receive_json = "receive_json: call it with a colon, ws:receive_json%(...%)",
      receive_bytes = "receive_bytes: call it with a colon",
      queue = "Queue:put_nowait: call it with a colon, q:put_nowait%(...%), not q%.put_nowait%(...%)",
      task = "Task:wait: call it with a colon, task:wait%(...%)",
    } do
      it(what, function()
        assert.matches("misuse_app%.lua:%d+: " .. want, reported("/dot/" .. what))
      end)
    end
  end)

  it("an iterator given options raises (it takes none) instead of waiting without a timeout", function()
    assert.matches("misuse_app%.lua:%d+: iter_text takes no options %(a wait with a timeout: " ..
      "receive_text{timeout = seconds} in a loop%)", reported("/iter_opts"))
  end)

  it("a task that waits for itself raises instead of waiting forever", function()
    local c = open("/wait_self")
    assert.matches("a task cannot wait for itself", (c:recv_message()))
  end)

  it("receive_json of a binary message that is not UTF-8 raises JSONDecodeError", function()
    local c = open("/json")
    c:send_binary("\"\255\254\"")
    assert.matches("^JSONDecodeError: .*not valid UTF%-8", (c:recv_message()))
    -- (and valid JSON in a binary message still decodes)
    local d = open("/json")
    d:send_binary('{"a":1}')
    assert.equal("decoded", (d:recv_message()))
  end)

  it("an error object whose __tostring raises is still logged with its traceback, and closes with 1011",
    function()
    local c = open("/raise/bad_tostring")
    local code, reason = c:expect_close()
    assert.equal(1011, code)
    assert.equal("Internal Server Error", reason)
    local entry = s:wait_log("ERROR [^\n]*%(a table whose __tostring raised: [^\n]*boom%)\n  stack " ..
      "traceback:\n[^\n]*\n  \tspec/apps/misuse_app%.lua:%d+")
    assert.truthy(entry, s:log())
  end)

  it("a long error message keeps its end and the traceback, saying how much was left out", function()
    local c = open("/raise/long")
    assert.equal(1011, (c:expect_close()))
    local entry = s:wait_log("ERROR [^\n]*eeee\n  %[%.%.%. %d+ bytes of this entry left out %.%.%.%]\n  e*" ..
      " END%-OF%-MESSAGE\n  stack traceback:\n[^\n]*\n  \tspec/apps/misuse_app%.lua:%d+")
    assert.truthy(entry, s:log():sub(-3000))
    -- bytes that are not UTF-8 (continuation bytes only): cut where asked,
    -- escaped, and the end and the traceback kept
    c = open("/raise/long_bytes")
    assert.equal(1011, (c:expect_close()))
    entry = s:wait_log("ERROR [^\n]*\\x80\\x80\n  %[%.%.%. %d+ bytes of this entry left out %.%.%.%]\n  " ..
      "[\\x80]* END%-OF%-BYTES\n  stack traceback:\n[^\n]*\n  \tspec/apps/misuse_app%.lua:%d+")
    assert.truthy(entry, s:log():sub(-3000))
  end)
end)
