-- nexlua.keep(name, init) with an init() that waits: it runs once however
-- many handlers ask meanwhile (they wait for its value); if it fails, the
-- caller gets the error and a waiting one tries again. (spec/apps/keep_app.lua)
local rawws = require "helpers.rawws"
local server = require "helpers.server"

describe("nexlua.keep", function()
  local s
  setup(function() s = server.start("spec/apps/keep_app.lua") end)
  teardown(function() if s then s:stop() end end)

  -- Three upgrade requests sent at once (each handler calls keep before
  -- accept); returns their first messages, sorted.
  local function three(path)
    local cs = {}
    for i = 1, 3 do
      cs[i] = rawws.open_tcp(s.port)
      cs[i]:send_raw((rawws.build_request(s.port, path)))
    end
    local got = {}
    for i = 1, 3 do
      assert.equal(101, (cs[i]:read_http_response(5)))
      got[i] = cs[i]:recv_message()
      cs[i]:close_socket()
    end
    table.sort(got)
    return got
  end

  it("runs an init that waits once, and every caller meanwhile gets its value", function()
    assert.same({ "pool 1 calls 1", "pool 1 calls 1", "pool 1 calls 1" }, three("/pool"))
  end)

  -- (reported)
  local function first(path)
    local c = rawws.connect(s.port, path)
    assert.equal(101, c.status)
    local m = c:recv_message(5)
    c:close_socket()
    return m
  end

  it("takes a value that is not a function as it is", function()
    assert.equal("plain 5 5", first("/plain"))
  end)

  it("raises for a keep inside its own init, instead of waiting for itself", function()
    assert.matches("^self err [^\n]*keep_app%.lua:%d+: keep: the init of self calls keep%(self%)$", first("/self"))
  end)

  it("does not wait for ever on an init whose task ended without returning", function()
    assert.equal("abandoned fresh", first("/abandoned"))
  end)

  it("an init that fails raises in its caller; the others try again", function()
    local got = three("/bad")
    assert.matches("^bad err [^\n]*keep_app%.lua:%d+: first fails$", got[1])
    assert.same({ "bad ok 2", "bad ok 2" }, { got[2], got[3] })
  end)
end)
