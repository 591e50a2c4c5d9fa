-- TestClient's run_for works as a method (client:run_for(s)), as a module
-- function (testing.run_for(s)) and in the dot form (client.run_for(s)).
local nexlua = require "nexlua"
local TestClient = require "nexlua.testing"

-- An app whose startup hook starts a ticker task (stopped at shutdown);
-- state.started and state.ticks tell what ran.
local function ticker_app()
  local app, state, task = nexlua.App(), { started = false, ticks = 0 }, nil
  app:on_startup(function()
    state.started = true
    task = nexlua.spawn(function()
      while true do
        nexlua.sleep(0.01)
        state.ticks = state.ticks + 1
      end
    end)
  end)
  app:on_shutdown(function() task:cancel() end)
  return app, state
end

describe("TestClient run_for", function()
  local client, state

  before_each(function()
    local app
    app, state = ticker_app()
    client = TestClient(app)
    client:start()
  end)

  after_each(function() client:close() end)

  it("works as a method, like the other TestClient calls", function()
    client:run_for(0.1)
    assert.is_true(state.ticks > 0)
  end)

  it("is reachable from the module, like wait_until", function()
    assert.is_function(TestClient.run_for)
  end)

  it("(works today as a plain function on the client)", function()
    client.run_for(0.1)
    assert.is_true(state.ticks > 0)
  end)
end)

describe("TestClient before any connection", function()
  it("client:run_for starts the client: the startup hooks run and their tasks progress", function()
    local app, state = ticker_app()
    local client = TestClient(app)
    assert.is_false(state.started) -- nothing runs before the client starts
    client:run_for(0.2)
    assert.is_true(state.started)
    assert.is_true(state.ticks > 0, "the startup hook's task did not run")
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
