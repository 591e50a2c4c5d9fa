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

  it("an init that fails raises in its caller; the others try again", function()
    local got = three("/bad")
    assert.matches("^bad err [^\n]*keep_app%.lua:%d+: first fails$", got[1])
    assert.same({ "bad ok 2", "bad ok 2" }, { got[2], got[3] })
  end)
end)
