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

describe("TestClient before any connection", function()
  it("client:run_for starts the client: the startup hooks run and their tasks progress", function()
    local app = nexlua.App()
    local started, ticks, task = false, 0, nil
    app:on_startup(function()
      started = true
      task = nexlua.spawn(function()
        while true do
          nexlua.sleep(0.01)
          ticks = ticks + 1
        end
      end)
    end)
    app:on_shutdown(function() task:cancel() end)
    local client = TestClient(app)
    assert.is_false(started) -- nothing runs before the client starts
    client:run_for(0.2)
    assert.is_true(started)
    assert.is_true(ticks > 0, "the startup hook's task did not run")
    client:close()
  end)

  it("client:start() runs the startup hooks before any connection", function()
    local app = nexlua.App()
    local started = false
    app:on_startup(function() started = true end)
    local client = TestClient(app)
    client:start()
    assert.is_true(started)
    client:close()
  end)
end)

describe("TestClient.wait_until", function()
  it("returns true once the condition holds, and false (no error) after its timeout", function()
    local n = 0
    assert.is_true(TestClient.wait_until(function() n = n + 1; return n >= 3 end, 1))
    local clock = require "helpers.clock"
    local t0 = clock()
    assert.is_false(TestClient.wait_until(function() return false end, 0.1))
    assert.is_true(clock() - t0 >= 0.09)
  end)
end)
