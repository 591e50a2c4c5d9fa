-- TestClient's run_for works as a method (client:run_for(s)), as a module
-- function (testing.run_for(s)) and in the dot form (client.run_for(s)).
local nexlua = require "nexlua"
local TestClient = require "nexlua.testing"

describe("TestClient run_for", function()
  local client, ticks

  before_each(function()
    local app = nexlua.App()
    ticks = 0
    local task
    app:on_startup(function()
      task = nexlua.spawn(function()
        while true do
          nexlua.sleep(0.01)
          ticks = ticks + 1
        end
      end)
    end)
    app:on_shutdown(function() task:cancel() end)
    client = TestClient(app)
    client:start()
  end)

  after_each(function() client:close() end)

  it("works as a method, like the other TestClient calls", function()
    client:run_for(0.1)
    assert.is_true(ticks > 0)
  end)

  it("is reachable from the module, like wait_until", function()
    assert.is_function(TestClient.run_for)
  end)

  it("(works today as a plain function on the client)", function()
    client.run_for(0.1)
    assert.is_true(ticks > 0)
  end)
end)
