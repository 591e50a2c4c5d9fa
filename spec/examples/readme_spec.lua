-- The README's TestClient examples (the ```lua blocks that require
-- nexlua.testing and describe tests) run as they are written there, so the
-- README cannot drift from the API.
local f = assert(io.open("README.md", "rb"))
local text = f:read("*a")
f:close()

local n = 0
for block in text:gmatch("```lua\n(.-)```") do
  if block:find('require "nexlua.testing"', 1, true) and block:find("describe%(") then
    n = n + 1
    local chunk = assert(loadstring(block, "=README.md (TestClient example " .. n .. ")"))
    setfenv(chunk, getfenv(1)) -- busted's describe, it, finally, assert
    describe("README TestClient example " .. n, chunk)
  end
end

describe("README", function()
  it("has TestClient examples to run", function()
    assert.is_true(n >= 1, "no ```lua block with describe() and nexlua.testing in README.md")
  end)
end)

describe("README code", function()
  it("every ```lua block is valid Lua", function()
    local i = 0
    for block in text:gmatch("```lua\n(.-)```") do
      i = i + 1
      local chunk, err = loadstring(block, "=README.md (lua block " .. i .. ")")
      assert(chunk, err)
    end
    assert.is_true(i > 5, "only " .. i .. " lua blocks found")
  end)

  -- The /queued block (Concurrency) cancels its sender task however the
  -- loop ends: a message that is not JSON must not leave it waiting in
  -- q:get() for the life of the process.
  it("the /queued example leaves no task behind when a client sends what is not JSON", function()
    local block = text:match('```lua\n(app:ws_route%("/queued".-)```')
    assert(block, "the /queued block is missing")
    local nexlua = require "nexlua"
    local TestClient = require "nexlua.testing"
    local app = nexlua.App()
    local tasks = {}
    local env = setmetatable({
      app = app,
      nexlua = setmetatable({
        spawn = function(...)
          local t = nexlua.spawn(...)
          tasks[#tasks + 1] = t
          return t
        end,
      }, { __index = nexlua }),
    }, { __index = _G })
    local chunk = assert(loadstring(block, "=README.md (/queued block)"))
    setfenv(chunk, env)
    chunk()
    local client = TestClient(app)
    finally(function() client:close() end)
    local ws = client:websocket_connect("/queued")
    ws:send_json({ n = 1 })
    assert.same({ n = 1 }, ws:receive_json())
    ws:send_text("not json")
    assert.equal(1011, (ws:wait_closed(3)))
    assert(TestClient.wait_until(function() return tasks[1].status ~= "pending" end, 3))
    assert.equal(1, #tasks)
    assert.equal("cancelled", tasks[1].status)
  end)

  -- The JSON block prints what its comments say (--> ...).
  it("the JSON examples print what they say", function()
    local block = text:match("```lua\n(local json = nexlua.json\n.-)```")
    assert(block, "the JSON block is missing")
    local out = {}
    local env = setmetatable({
      nexlua = require "nexlua",
      print = function(v) out[#out + 1] = tostring(v) end,
    }, { __index = _G })
    local chunk = assert(loadstring(block, "=README.md (JSON block)"))
    setfenv(chunk, env)
    chunk()
    local i = 0
    for expected in block:gmatch("%-%->%s*([^\n]-)%s*\n") do
      i = i + 1
      expected = expected:gsub("%s+%(key order may vary%)$", "")
      if i == 1 then
        -- two keys, either order
        assert.is_truthy(out[1] == expected or out[1] == '{"tags":{},"path":"a/b"}', out[1])
      else
        assert.equal(expected, out[i])
      end
    end
    assert.equal(#out, i)
  end)
end)
