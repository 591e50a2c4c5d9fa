-- The --redis URL (lua/nexlua/private/redis.lua parse_url).
local parse = require("nexlua.private.redis").parse_url

describe("--redis URL", function()
  it("takes a host, a port (6379 by default), a password and a user", function()
    assert.same({ host = "localhost", port = 6379 }, parse("redis://localhost"))
    assert.same({ host = "10.0.0.5", port = 7000 }, parse("redis://10.0.0.5:7000/"))
    assert.same({ host = "h", port = 1, password = "p@ss:w" }, parse("redis://:p%40ss:w@h:1"))
    assert.same({ host = "h", port = 6379, username = "app", password = "x" }, parse("redis://app:x@h"))
    assert.same({ host = "::1", port = 6380 }, parse("redis://[::1]:6380"))
  end)

  it("refuses a /DB suffix, TLS, other schemes, bad ports and a user without a password", function()
    local cases = {
      ["redis://h:6379/0"] = "/DB suffix means nothing for pub/sub",
      ["rediss://h"] = "not supported",
      ["http://h"] = "expected redis://",
      ["redis://h:0"] = "from 1 to 65535",
      ["redis://h:x"] = "no valid HOST",
      ["redis://user@h"] = "expected :PASSWORD@",
      ["redis://:@h"] = "expected :PASSWORD@",
    }
    for url, why in pairs(cases) do
      local o, err = parse(url)
      assert.is_nil(o, url)
      assert.truthy(err:find(why, 1, true), url .. ": " .. tostring(err))
    end
  end)
end)
