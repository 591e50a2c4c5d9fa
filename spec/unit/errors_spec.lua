-- nexlua.errors (pure Lua): the error classes, their fields and messages,
-- and the predicates (also exported by nexlua itself).
local errors = require "nexlua.errors"

describe("nexlua.errors", function()
  local Disconnect, WSError, TypeError, JSONError, Timeout =
    errors.WebSocketDisconnect, errors.WebSocketError, errors.MessageTypeError,
    errors.JSONDecodeError, errors.TimeoutError

  it("WebSocketDisconnect carries code and reason", function()
    local e = Disconnect(4001, "bye")
    assert.equal(4001, e.code)
    assert.equal("bye", e.reason)
    assert.equal("WebSocket disconnected (4001: bye)", tostring(e))
    local d = Disconnect()
    assert.equal(1000, d.code)
    assert.equal("", d.reason)
    assert.equal("WebSocket disconnected (1000)", tostring(d))
    assert.equal("WebSocket disconnected (1006)", tostring(Disconnect(1006)))
  end)

  it("MessageTypeError carries what was expected and received", function()
    local e = TypeError("text", "binary", "\1")
    assert.equal("text", e.expected)
    assert.equal("binary", e.got)
    assert.equal("\1", e.data)
    assert.equal("expected a text message, received a binary message", tostring(e))
  end)

  it("JSONDecodeError keeps the raw data", function()
    local e = JSONError("Expected value", "{x")
    assert.equal("{x", e.data)
    assert.equal("invalid JSON: Expected value", tostring(e))
  end)

  it("constructors take a message of the app's own where it makes sense", function()
    assert.equal("WebSocket disconnected (1000: client gone)", tostring(Disconnect("client gone")))
    assert.equal("client gone", Disconnect("client gone").reason)
    assert.equal("5 s", tostring(Timeout("5 s")))
    assert.equal("custom", tostring(TypeError("custom")))
    assert.equal("invalid JSON", tostring(JSONError()))
    assert.equal("stop", tostring(errors.CancelledError("stop")))
    assert.equal("cancelled", tostring(errors.CancelledError()))
    assert.equal("full!", tostring(errors.QueueFull("full!")))
    assert.equal("42", tostring(errors.Error(42)))
  end)

  it("an argument of the wrong type raises, naming it", function()
    assert.has_error(function() Disconnect({}) end)
    local ok, err = pcall(Disconnect, 1000.5)
    assert.is_false(ok)
    assert.matches("WebSocketDisconnect%(code, reason%): code must be an integer, got number 1000.5", err)
    ok, err = pcall(Disconnect, 1000, 5)
    assert.is_false(ok)
    assert.matches("reason must be a string, got number 5", err)
    ok, err = pcall(TypeError, 1, 2)
    assert.is_false(ok)
    assert.matches("MessageTypeError%(expected, got, data%): expected and got must be strings", err)
    ok, err = pcall(Timeout, {})
    assert.is_false(ok)
    assert.matches("TimeoutError%(seconds%): seconds must be a number", err)
  end)

  it("tostring never fails, whatever the fields became", function()
    local e = Disconnect(1000)
    e.code = {}
    assert.matches("^WebSocket disconnected %(table: ", tostring(e))
    e.where = {}
    assert.matches("^WebSocket disconnected %(table: ", tostring(e))
    local j = JSONError("bad")
    j.message = {}
    assert.matches("^JSONDecodeError: table: ", tostring(j))
  end)

  it("TimeoutError says how long", function()
    assert.equal("timed out after 0.5 s", tostring(Timeout(0.5)))
    assert.equal(0.5, Timeout(0.5).seconds)
    assert.equal("timed out", tostring(Timeout()))
  end)

  it("WebSocketError is the base, with a message", function()
    assert.equal("cannot send after close()", tostring(WSError("cannot send after close()")))
    assert.equal("WebSocket error", tostring(WSError()))
  end)

  it("the classes print their names", function()
    assert.equal("nexlua.WebSocketDisconnect", tostring(Disconnect))
    assert.equal("nexlua.JSONDecodeError", tostring(JSONError))
  end)

  describe("predicates", function()
    local samples = {
      disconnect = Disconnect(1000),
      ws_error = WSError("x"),
      type_error = TypeError("text", "binary"),
      json_error = JSONError("bad", ""),
      timeout = Timeout(1),
      cancelled = errors.CancelledError(),
      queue_full = errors.QueueFull(),
      queue_empty = errors.QueueEmpty(),
    }
    local expected = {
      is_disconnect = { disconnect = true },
      is_type_error = { type_error = true },
      is_json_error = { json_error = true },
      is_timeout = { timeout = true },
      is_cancelled = { cancelled = true },
      -- a timeout is not a WebSocket error: wait_for and Queue raise it too
      is_websocket_error = {
        disconnect = true, ws_error = true, type_error = true, json_error = true,
      },
      is_error = {
        disconnect = true, ws_error = true, type_error = true, json_error = true, timeout = true,
        cancelled = true, queue_full = true, queue_empty = true,
      },
    }

    for pred, yes in pairs(expected) do
      it(pred .. " is true for exactly its class (and subclasses)", function()
        for name, e in pairs(samples) do
          assert.equal(yes[name] == true, errors[pred](e), pred .. "(" .. name .. ")")
        end
      end)
      it(pred .. " is false for non-nexlua values", function()
        local values = {
          "WebSocket disconnected (1000)", 1000, true, {}, { code = 1000 }, setmetatable({}, {}),
        }
        for _, v in ipairs(values) do
          assert.is_false(errors[pred](v))
        end
        assert.is_false(errors[pred](nil))
      end)
    end
  end)

  it("raise() throws the error with the caller's location", function()
    local function misuse() errors.raise(WSError, 1, "cannot do that") end
    local ok, e = pcall(misuse)
    assert.is_false(ok)
    assert.is_true(errors.is_websocket_error(e))
    assert.matches("errors_spec%.lua:%d+: cannot do that$", tostring(e))
  end)

  it("nexlua exports the classes and predicates", function()
    local nexlua = require "nexlua"
    assert.equal(errors.WebSocketDisconnect, nexlua.WebSocketDisconnect)
    assert.equal(errors.WebSocketError, nexlua.WebSocketError)
    assert.equal(errors.MessageTypeError, nexlua.MessageTypeError)
    assert.equal(errors.JSONDecodeError, nexlua.JSONDecodeError)
    assert.equal(errors.TimeoutError, nexlua.TimeoutError)
    local predicates = {
      "is_disconnect", "is_websocket_error", "is_type_error", "is_json_error", "is_timeout",
    }
    for _, p in ipairs(predicates) do
      assert.equal(errors[p], nexlua[p], p)
    end
  end)

  describe("nexlua.error_class: the app's own error classes", function()
    local nexlua = require "nexlua"

    it("makes a class under nexlua.Error, or under a given parent", function()
      local Auth = nexlua.error_class("AuthError")
      local Expired = nexlua.error_class("TokenExpired", Auth)
      local e = Expired("the token expired", { user = "bob", code = 4001 })
      assert.is_true(Expired.is(e))
      assert.is_true(Auth.is(e))
      assert.is_true(nexlua.is_error(e))
      assert.is_false(nexlua.is_disconnect(e))
      assert.is_false(Expired.is(Auth("x")))
      assert.equal("the token expired", e.message)
      assert.equal("bob", e.user)
      assert.equal(4001, e.code)
      assert.equal("TokenExpired: the token expired", tostring(e))
      assert.equal("AuthError: AuthError", tostring(Auth()))
      -- raised and caught like any error
      local ok, err = pcall(function() error(Expired("again"), 0) end)
      assert.is_false(ok)
      assert.is_true(Auth.is(err))
      -- under a nexlua class
      local Mine = nexlua.error_class("MyWebSocketError", nexlua.WebSocketError)
      assert.is_true(nexlua.is_websocket_error(Mine("m")))
    end)

    it("refuses a bad name or parent", function()
      assert.has_error(function() nexlua.error_class("") end,
        "error_class: the class name must be a non-empty string")
      assert.has_error(function() nexlua.error_class("X", {}) end)
    end)
  end)

  describe("errors.text (the log's view of an error value)", function()
    it("shows a plain table's fields, sorted, at most 8, instead of table: 0x...", function()
      assert.equal('a table raised as an error: {code = 503, msg = "db down"}',
        errors.text({ msg = "db down", code = 503 }))
      local many = {}
      for i = 1, 12 do many["k" .. string.format("%02d", i)] = i end
      assert.matches("^a table raised as an error: {k01 = 1, .-k08 = 8, %.%.%.}$", errors.text(many))
    end)

    it("is tostring for strings, numbers and errors with __tostring", function()
      assert.equal("boom", errors.text("boom"))
      assert.equal("42", errors.text(42))
      assert.equal("nil", errors.text(nil))
      assert.equal(tostring(errors.TimeoutError(5)), errors.text(errors.TimeoutError(5)))
    end)
  end)
end)
