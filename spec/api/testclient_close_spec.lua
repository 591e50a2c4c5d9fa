-- TestClient:close() waits for the handlers of its connections to return:
-- one still running after close() could publish to a topic that a later
-- test's connections subscribe to (topics belong to the process).
local nexlua = require "nexlua"
local TestClient = require "nexlua.testing"
describe("TestClient:close()", function()
  it("A: a handler that publishes after its client left", function()
    local app = nexlua.App()
    app:ws_route("/a", function(ws)
      ws:accept()
      pcall(ws.receive_text, ws)
      nexlua.sleep(0.2)
      nexlua.publish("room", "late message from A")
    end)
    local client = TestClient(app)
    finally(function() client:close() end)
    client:websocket_connect("/a")
  end)
  it("B: a new client's subscriber sees nothing from A", function()
    local app = nexlua.App()
    app:ws_route("/b", function(ws)
      ws:accept()
      ws:subscribe("room")
      for m in ws:iter_text() do ws:send_text(m) end
    end)
    local client = TestClient(app, { timeout = 0.6 })
    finally(function() client:close() end)
    local ws = client:websocket_connect("/b")
    local ok = pcall(ws.receive_text, ws, 0.5)
    assert.is_false(ok, "B received a message from A's handler")
  end)

  it("its options are checked like App's", function()
    local ok, err = pcall(TestClient, nexlua.App(), { bogus = 1 })
    assert.is_false(ok)
    assert.matches("TestClient: unknown option bogus %(it takes allowed_origins, .*, timeout, .*write_limit%)",
      err)
    assert.has_error(function() TestClient(nexlua.App(), { timeout = -1 }) end,
      "TestClient: timeout must be a number of seconds above 0, got -1")
    assert.has_error(function() TestClient(nexlua.App(), { max_message_size = "big" }) end)
  end)
end)

describe("TestClient:close() with a handler that does not return", function()
  it("warns, naming how many are still running", function()
    local proc = require "helpers.proc"
    local script = [[
      local nexlua = require "nexlua"
      local TestClient = require "nexlua.testing"
      local app = nexlua.App()
      app:ws_route("/stuck", function(ws)
        ws:accept()
        while true do pcall(ws.receive, ws); nexlua.sleep(0.05) end
      end)
      local client = TestClient(app, { timeout = 0.3 })
      client:websocket_connect("/stuck")
      client:close()
      print("closed")
    ]]
    local code, out, err = proc.run({ "luajit", "-e", script }, 20,
      { env = { LUA_PATH = package.path, LUA_CPATH = package.cpath } })
    assert.equal(0, code, err)
    assert.matches("closed", out)
    assert.matches("TestClient:close%(%): 1 handler%(s%) still running after 0%.3 s", err)
  end)
end)
