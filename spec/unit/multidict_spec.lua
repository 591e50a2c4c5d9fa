-- nexlua.multidict (pure Lua): Headers (case-insensitive) and QueryParams
-- (parsed and percent-decoded).
local multidict = require "nexlua.multidict"

describe("nexlua.multidict", function()
  describe("Headers", function()
    local h
    before_each(function()
      h = multidict.Headers {
        "Host", "example.com",
        "X-Multi", "one",
        "Content-Type", "text/plain",
        "x-multi", "two",
        "X-MULTI", "three",
      }
    end)

    it("get() is case-insensitive and returns the first value", function()
      assert.equal("example.com", h:get("host"))
      assert.equal("example.com", h:get("HOST"))
      assert.equal("one", h:get("x-multi"))
      assert.equal("text/plain", h:get("content-TYPE"))
    end)

    it("get() returns nil or the default for a missing name", function()
      assert.is_nil(h:get("missing"))
      assert.equal("dflt", h:get("missing", "dflt"))
    end)

    it("get_all() returns every value in order, or an empty table", function()
      assert.same({ "one", "two", "three" }, h:get_all("X-Multi"))
      assert.same({}, h:get_all("missing"))
    end)

    it("get_all() and keys() are lists that encode as JSON arrays, even when empty", function()
      local json = require "nexlua.json"
      assert.equal("[]", json.encode(h:get_all("missing")))
      assert.equal('["one","two","three"]', json.encode(h:get_all("X-Multi")))
      assert.equal("[]", json.encode(multidict.Headers({}):keys()))
    end)

    it("has(), items() and keys()", function()
      assert.is_true(h:has("HOST"))
      assert.is_false(h:has("missing"))
      local items = {}
      for k, v in h:items() do items[#items + 1] = k .. "=" .. v end
      assert.same({
        "Host=example.com", "X-Multi=one", "Content-Type=text/plain",
        "x-multi=two", "X-MULTI=three",
      }, items)
      assert.same({ "host", "x-multi", "content-type" }, h:keys())
      assert.equal(5, h:len())
    end)

    it("a method called with a dot (as in Python) raises, saying to use a colon", function()
      local hd = multidict.Headers({ "Host", "a" })
      for _, m in ipairs({ "get", "get_all", "has", "items", "keys", "len" }) do
        local ok, err = pcall(function() local v = hd[m]("host") return v end)
        assert.is_false(ok, m)
        assert.matches(m .. ": call it with a colon, as in ws.query_params:" .. m .. "%(...%)", err)
      end
      assert.equal("a", hd:get("host"))
    end)

    it("works empty", function()
      local e = multidict.Headers()
      assert.is_nil(e:get("x"))
      assert.same({}, e:get_all("x"))
      assert.same({}, e:keys())
      assert.equal(0, e:len())
    end)
  end)

  describe("QueryParams", function()
    it("parses pairs; get() is the first value, get_all() every value in order", function()
      local q = multidict.QueryParams("a=1&b=2&a=3")
      assert.equal("1", q:get("a"))
      assert.equal("2", q:get("b"))
      assert.same({ "1", "3" }, q:get_all("a"))
      assert.same({ "a", "b" }, q:keys())
      assert.equal(3, q:len())
    end)

    it("percent-decodes names and values, and '+' is a space", function()
      local q = multidict.QueryParams(
        "na%6De=hello%20w%C3%B6rld&sp=a+b&eq=b%3Dc&amp=x%26y&slash=%2F")
      assert.equal("hello wörld", q:get("name"))
      assert.equal("a b", q:get("sp"))
      assert.equal("b=c", q:get("eq"))
      assert.equal("x&y", q:get("amp"))
      assert.equal("/", q:get("slash"))
    end)

    it("keeps a raw '=' in a value, and an invalid escape as is", function()
      local q = multidict.QueryParams("a=b=c&bad=%zz%4")
      assert.equal("b=c", q:get("a"))
      assert.equal("%zz%4", q:get("bad"))
    end)

    it("a name without '=' or with an empty value has the value ''", function()
      local q = multidict.QueryParams("flag&empty=&x=1")
      assert.equal("", q:get("flag"))
      assert.equal("", q:get("empty"))
      assert.equal("1", q:get("x"))
    end)

    it("names are case-sensitive", function()
      local q = multidict.QueryParams("Key=1")
      assert.equal("1", q:get("Key"))
      assert.is_nil(q:get("key"))
    end)

    it("skips empty pairs and accepts ';' as a separator", function()
      local q = multidict.QueryParams("&&a=1;b=2&")
      assert.equal("1", q:get("a"))
      assert.equal("2", q:get("b"))
      assert.same({ "a", "b" }, q:keys())
    end)

    it("an empty or missing query has no params", function()
      assert.is_nil(multidict.QueryParams(""):get("a"))
      assert.is_nil(multidict.QueryParams(nil):get("a"))
      assert.equal("d", multidict.QueryParams(""):get("a", "d"))
    end)
  end)

  describe("unescape_path", function()
    it("percent-decodes, but leaves '+' alone", function()
      assert.equal("/a b/c+d/é", multidict.unescape_path("/a%20b/c+d/%C3%A9"))
      assert.equal("/plain", multidict.unescape_path("/plain"))
    end)
  end)

  it("indexing by name is get(name), for any name but the methods'", function()
    local q = multidict.QueryParams("token=abc&_list=1&_fold=2&__index=3&get=4")
    assert.equal("abc", q.token)
    assert.equal("abc", q["token"])
    assert.equal("1", q._list)
    assert.equal("2", q._fold)
    assert.equal("3", q.__index)
    assert.is_nil(q.missing)
    assert.equal("function", type(q.get)) -- a method: q:get("get") for the parameter
    assert.equal("4", q:get("get"))
    local h = multidict.Headers({ "Authorization", "Bearer x", "X-A", "1", "x-a", "2" })
    assert.equal("Bearer x", h["authorization"])
    assert.equal("1", h["X-A"])
    assert.same({ "1", "2" }, h:get_all("x-a"))
    assert.equal(3, h:len())
  end)

  -- A write would be seen by h.name and not by h:get("name").
  it("is read-only", function()
    local h = multidict.Headers({ "Authorization", "Bearer real" })
    local ok, err = pcall(function() h.authorization = "Bearer rewritten" end)
    assert.is_false(ok)
    assert.matches('multidict_spec%.lua:%d+: ws%.headers and ws%.query_params are read%-only %(what the client ' ..
      'sent%): cannot set "authorization"', err)
    assert.equal("Bearer real", h.authorization)
    local q = multidict.QueryParams("a=1")
    assert.has_error(function() q.a = "w" end)
    assert.equal("1", q:get("a"))
  end)

  -- Each maximal part that is not UTF-8 becomes one U+FFFD, as Python's
  -- bytes.decode("utf-8", "replace") does (the expected values are its).
  it("as_text: what is not UTF-8 becomes U+FFFD, as Python's errors='replace'", function()
    local R = "\239\191\189"
    for _, c in ipairs({
      { "plain ascii", "plain ascii" }, { "\255", R }, { "a\192\175b", "a" .. R .. R .. "b" },
      { "\226\130", R }, { "\226\130x", R .. "x" }, { "\226\130\172", "\226\130\172" },
      { "\237\160\128", R .. R .. R }, { "\240\144\128", R }, { "\244\144\128\128", R .. R .. R .. R },
      { "\224\128\128", R .. R .. R }, { "\128\191", R .. R }, { "\248\136\128\128\128", R .. R .. R .. R .. R },
      { "é\255é", "é" .. R .. "é" }, { "\240\159\152\128", "\240\159\152\128" }, { "", "" },
    }) do
      assert.equal(c[2], multidict.as_text(c[1]), string.format("%q", c[1]))
    end
    assert.equal("a" .. R .. " b", multidict.QueryParams("k=a%FF+b"):get("k"))
    assert.equal("/x/" .. R, multidict.unescape_path("/x/%c3"))
  end)
end)
