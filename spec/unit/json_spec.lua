-- nexlua.json (pure Lua on lua-cjson): compact encoding, '/' unescaped,
-- empty arrays, null, decode errors.
local json = require "nexlua.json"
local cjson = require "cjson"

describe("nexlua.json", function()
  describe("encode", function()
    it("is compact", function()
      assert.equal('{"a":{"b":[1,2,{"c":true}]}}',
        json.encode({ a = { b = { 1, 2, { c = true } } } }))
      assert.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.equal('"s"', json.encode("s"))
      assert.equal("1.5", json.encode(1.5))
      assert.equal("false", json.encode(false))
    end)

    it("leaves '/' unescaped, and backslashes round-trip", function()
      assert.equal('{"p":"/a/b"}', json.encode({ p = "/a/b" }))
      assert.equal('{"s":"</script>"}', json.encode({ s = "</script>" }))
      for _, s in ipairs { "a\\/b", "\\", "\\\\/", "/\\", "\\\\\\/" } do
        local text = json.encode({ s = s })
        assert.equal(s, cjson.decode(text).s, "round trip of " .. s .. " via " .. text)
      end
    end)

    it("encodes an empty table as {} and marked empty arrays as []", function()
      assert.equal("{}", json.encode({}))
      assert.equal("[]", json.encode(json.empty_array))
      assert.equal("[]", json.encode(json.array()))
      assert.equal("[]", json.encode(json.array({})))
      assert.equal('{"l":[]}', json.encode({ l = json.empty_array }))
      assert.equal('[[],{}]', json.encode({ json.array(), {} }))
      assert.equal('{"a":{"b":{"c":[]}}}', json.encode({ a = { b = { c = json.array() } } }))
    end)

    it("json.array(t) keeps the elements and marks t", function()
      local t = { 1, 2 }
      assert.equal(t, json.array(t))
      assert.equal("[1,2]", json.encode(t))
      -- emptied later, it still encodes as an array
      t[1], t[2] = nil, nil
      assert.equal("[]", json.encode(t))
    end)

    it("does not modify what it encodes", function()
      local v = { l = json.empty_array, n = { 1 } }
      json.encode(v)
      assert.equal(json.empty_array, v.l)
      assert.is_nil(next(json.empty_array))
      assert.same({ 1 }, v.n)
    end)

    it("encodes json.null as null", function()
      assert.equal('{"v":null}', json.encode({ v = json.null }))
      assert.equal("null", json.encode(json.null))
    end)

    it("returns nil and a message for what cannot be encoded", function()
      local s, err = json.encode({ f = function() end })
      assert.is_nil(s)
      assert.is_string(err)
      local cyclic = {}
      cyclic.self = cyclic
      s, err = json.encode(cyclic)
      assert.is_nil(s)
      assert.equal("tables nested more than 1000 deep (a table that contains itself?)", err)
    end)

    it("refuses a string that is not UTF-8 (JSON text is UTF-8), anywhere in the value", function()
      for _, v in ipairs({ "\xff", { k = "ok\xc3" }, { list = { "a", "\xed\xa0\x80" } }, { ["\xfe"] = 1 } }) do
        local s, err = json.encode(v)
        assert.is_nil(s)
        assert.matches("not valid UTF-8", err, 1, true)
      end
      assert.equal('{"s":"héllo ✓"}', json.encode({ s = "héllo ✓" }))
    end)

    -- lua-cjson 2.1 counts an array's length in an int: a key from 2^31 on
    -- overflowed it and the entry was dropped ({[1]=..., [3e9]=...} sent
    -- ["admin"]); keys from 10^14 on were printed in 14 digits.
    it("keeps entries under large number keys, written exactly", function()
      assert.same({ ["1"] = "admin", ["3000000000"] = "carol" },
        json.decode(json.encode({ [1] = "admin", [3000000000] = "carol" })))
      assert.equal('{"123456789012345":"x"}', json.encode({ [123456789012345] = "x" }))
      assert.equal('{"-3000000000":1}', json.encode({ [-3000000000] = 1 }))
      -- (one key as a number and as a string: one entry would be lost)
      local s, err = json.encode({ [3000000000] = "c", ["3000000000"] = "s" })
      assert.is_nil(s)
      assert.equal("a table has the key 3000000000 both as a number and as a string", err)
      assert.is_nil((json.encode({ [math.huge] = 1 }))) -- (an infinity is no key either)
      assert.equal(json.empty_array, json.array(json.empty_array))
    end)

    it("converts empty arrays and big integers at any depth cjson encodes", function()
      local deep = { ids = json.empty_array }
      for _ = 1, 150 do deep = { deep } end
      local text = assert(json.encode(deep))
      assert.truthy(text:find('{"ids":[]}', 1, true), text)
    end)

    it("json.empty_array stays empty: a write raises, and it encodes as [] whatever was put in", function()
      local ok, err = pcall(function()
        local t = json.empty_array
        t[#t + 1] = "x"
      end)
      assert.is_false(ok)
      assert.matches("json_spec%.lua:%d+: json%.empty_array is shared by everyone and stays empty", err)
      table.insert(json.empty_array, "raw") -- (a raw write: still [])
      assert.equal('{"tags":[]}', json.encode({ tags = json.empty_array }))
      rawset(json.empty_array, 1, nil)
      assert.equal("[]", json.encode(json.array()))
    end)

    it("keeps integers exact up to 2^53", function()
      assert.equal("123456789012345", json.encode(123456789012345))
      assert.equal("9007199254740991", json.encode(9007199254740991))
      assert.equal('{"id":1700000000123}', json.encode({ id = 1700000000123 }))
    end)
  end)

  describe("decode", function()
    it("decodes values; null is json.null", function()
      assert.same({ a = { 1, 2 }, b = "x" }, json.decode('{"a":[1,2],"b":"x"}'))
      assert.equal(json.null, json.decode("null"))
      assert.equal(json.null, json.decode('{"v":null}').v)
      assert.is_false(json.decode("false"))
      assert.equal(42, json.decode("42"))
    end)

    it("returns nil and a message for invalid JSON", function()
      for _, bad in ipairs { "", "{", "{a:1}", "[1,]", "nul", "'x'" } do
        local v, err = json.decode(bad)
        assert.is_nil(v, bad)
        assert.is_string(err, bad)
      end
    end)

    -- RFC 8259 §8.1: JSON text is UTF-8 (lua-cjson would pass raw bytes into
    -- strings that encode() then refuses).
    it("refuses a text that is not UTF-8", function()
      for _, bad in ipairs { '"\255"', '{"k":"\192\175"}', '["\237\160\128"]', '{"\255":1}' } do
        local v, err = json.decode(bad)
        assert.is_nil(v, bad)
        assert.equal("the text is not valid UTF-8", err)
      end
      assert.equal("café", json.decode('"café"'))
    end)

    it("refuses numbers that are not JSON's: NaN, Infinity, hexadecimal, a leading + or zeros", function()
      for _, bad in ipairs { "NaN", "-NaN", "Infinity", "-Infinity", "inf", "nan", "0x10", "[0X1f]", "+1",
        "01", "[-007]", '{"a":NaN}' } do
        local v, err = json.decode(bad)
        assert.is_nil(v, bad)
        assert.is_string(err, bad)
      end
      assert.equal(0, json.decode("0"))
      assert.equal(-0.5, json.decode("-0.5"))
      assert.equal(1e5, json.decode("1E+5"))
    end)

    it("refuses a number beyond a double's range (it would be an infinity), anywhere", function()
      for _, bad in ipairs { "1e400", "[1,-1e999]", '{"a":{"b":[2E+309]}}', ("9"):rep(400) } do
        local v, err = json.decode(bad)
        assert.is_nil(v, bad:sub(1, 20))
        assert.matches("out of range", err)
      end
      assert.equal(1e308, json.decode("1e308"))
      assert.equal("1e400", json.decode('"1e400"')) -- (a string)
      assert.equal(123456789012345678901234567890, json.decode("123456789012345678901234567890"))
    end)

    it("round-trips through encode", function()
      local v = { s = "héllo ✓ /\n\"", n = -1.25, t = { true, false }, o = { k = "v" } }
      assert.same(v, json.decode(json.encode(v)))
    end)
  end)
end)
