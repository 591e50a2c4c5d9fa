-- nexlua.router (pure Lua): templates, converters, matching order; and the
-- route registration of nexlua.app.
local router = require "nexlua.router"
local App = require "nexlua.app"

local function handler() end

describe("nexlua.router", function()
  local function match(template, path)
    local r = router.new()
    r:add(template, { name = template })
    local route, params = r:match(path)
    return route and params or nil
  end

  describe("compile", function()
    it("keeps the template and lists the parameters in order", function()
      local c = router.compile("/a/{x}/b/{y:int}")
      assert.equal("/a/{x}/b/{y:int}", c.template)
      assert.equal(2, #c.params)
      assert.equal("x", c.params[1].name)
      assert.equal("y", c.params[2].name)
    end)

    it("refuses bad templates with a clear message", function()
      local bad = {
        { "no-slash", "must be a string starting with '/'" },
        { 42, "must be a string starting with '/'" },
        { "/a/{1x}", "bad parameter {1x}" },
        { "/a/{}", "bad parameter {}" },
        { "/a/{x}/{x}", 'duplicate parameter "x"' },
        { "/a/{x:nope}", 'unknown converter "nope"' },
        { "/a/{x", "unbalanced braces" },
        { "/a/x}", "unbalanced braces" },
        -- a route matches the path alone, never the query string
        { "/a?x=1", 'route "/a?x=1" contains "?": a route matches the path alone' },
        { "/a#top", 'contains "#"' },
      }
      for _, case in ipairs(bad) do
        local ok, err = pcall(router.compile, case[1])
        assert.is_false(ok, tostring(case[1]) .. " should be refused")
        assert.matches(case[2], err, 1, true)
      end
    end)

    it("allows spaces around names and converters", function()
      assert.same({ id = 5 }, match("/i/{ id : int }", "/i/5"))
    end)
  end)

  describe("matching", function()
    it("matches a static route exactly", function()
      assert.same({}, match("/static", "/static"))
      assert.is_nil(match("/static", "/static/"))
      assert.is_nil(match("/static", "/Static"))
    end)

    it("treats pattern characters in templates literally", function()
      assert.same({ x = "1" }, match("/v1.0/a+b/(c)/[d]/%/{x}", "/v1.0/a+b/(c)/[d]/%/1"))
      assert.is_nil(match("/v1.0/{x}", "/v1x0/1"))
      assert.same({}, match("/a.b", "/a.b"))
      assert.is_nil(match("/a.b", "/aXb"))
    end)

    it("str: one segment", function()
      assert.same({ name = "hello" }, match("/u/{name}", "/u/hello"))
      assert.same({ name = "hello" }, match("/u/{name:str}", "/u/hello"))
      assert.is_nil(match("/u/{name}", "/u/a/b"))
      assert.is_nil(match("/u/{name}", "/u/"))
    end)

    it("int: digits, converted to a number", function()
      local p = match("/i/{id:int}", "/i/0042")
      assert.equal(42, p.id)
      assert.equal("number", type(p.id))
      assert.is_nil(match("/i/{id:int}", "/i/-1"))
      assert.is_nil(match("/i/{id:int}", "/i/1.5"))
      assert.is_nil(match("/i/{id:int}", "/i/x1"))
      -- past 2^53 a number would not hold the digits sent
      assert.same({ id = 9007199254740992 }, match("/i/{id:int}", "/i/9007199254740992"))
      assert.is_nil(match("/i/{id:int}", "/i/9007199254740993"))
      assert.is_nil(match("/i/{id:int}", "/i/100000000000000000000"))
    end)

    it("float: decimal numbers", function()
      assert.same({ x = 3.25 }, match("/f/{x:float}", "/f/3.25"))
      assert.same({ x = 7 }, match("/f/{x:float}", "/f/7"))
      assert.is_nil(match("/f/{x:float}", "/f/1.2.3"))
      assert.is_nil(match("/f/{x:float}", "/f/."))
      assert.is_nil(match("/f/{x:float}", "/f/1."))
      assert.is_nil(match("/f/{x:float}", "/f/.5"))
      assert.is_nil(match("/f/{x:float}", "/f/" .. string.rep("9", 400))) -- inf
      assert.is_nil(match("/f/{x:float}", "/f/abc"))
    end)

    it("uuid: dashed or plain 32 hex digits, lower-cased", function()
      assert.same({ u = "123e4567-e89b-12d3-a456-426614174000" },
        match("/x/{u:uuid}", "/x/123E4567-E89B-12D3-A456-426614174000"))
      assert.same({ u = "123e4567e89b12d3a456426614174000" },
        match("/x/{u:uuid}", "/x/123e4567e89b12d3a456426614174000"))
      assert.is_nil(match("/x/{u:uuid}", "/x/123e4567-e89b-12d3-a456-42661417400"))
      assert.is_nil(match("/x/{u:uuid}", "/x/123e4567e89b-12d3-a456-426614174000"))
      assert.is_nil(match("/x/{u:uuid}", "/x/g23e4567-e89b-12d3-a456-426614174000"))
    end)

    it("path: the rest, slashes included", function()
      assert.same({ rest = "a/b/c.txt" }, match("/files/{rest:path}", "/files/a/b/c.txt"))
      assert.same({ rest = "x", tail = "y/z" }, match("/{rest}/{tail:path}", "/x/y/z"))
    end)

    it("slug: letters, digits, '-' and '_'", function()
      assert.same({ s = "my-post_2" }, match("/p/{s:slug}", "/p/my-post_2"))
      assert.is_nil(match("/p/{s:slug}", "/p/a.b"))
      assert.is_nil(match("/p/{s:slug}", "/p/a b"))
    end)

    it("several parameters in one segment", function()
      assert.same({ a = "x", b = 2 }, match("/{a}-{b:int}", "/x-2"))
    end)

    it("returns the first matching route in registration order", function()
      local r = router.new()
      r:add("/order/{id:int}", { name = "int" })
      r:add("/order/{name}", { name = "str" })
      r:add("/order/me", { name = "static" })
      assert.equal("int", (r:match("/order/5")).name)
      assert.equal("str", (r:match("/order/abc")).name)
      assert.equal("str", (r:match("/order/me")).name)
      assert.is_nil(r:match("/elsewhere"))
    end)

    it("stores the extra fields on the route", function()
      local r = router.new()
      local added = r:add("/x", { handler = handler, tag = 1 })
      local route = r:match("/x")
      assert.equal(added, route)
      assert.equal(handler, route.handler)
      assert.equal(1, route.tag)
    end)
  end)

  describe("register_converter", function()
    it("adds a converter usable in templates", function()
      router.register_converter("unit_hex", {
        pattern = "%x+",
        convert = function(s) return tonumber(s, 16) end,
      })
      assert.same({ n = 255 }, match("/h/{n:unit_hex}", "/h/ff"))
      assert.is_nil(match("/h/{n:unit_hex}", "/h/zz"))
    end)

    it("without convert, passes the text through", function()
      router.register_converter("unit_upper", { pattern = "%u+" })
      assert.same({ w = "ABC" }, match("/w/{w:unit_upper}", "/w/ABC"))
      assert.is_nil(match("/w/{w:unit_upper}", "/w/abc"))
    end)

    it("a convert returning nil refuses the match, and the next route is tried", function()
      router.register_converter("unit_even", {
        pattern = "%d+",
        convert = function(s) local n = tonumber(s) if n % 2 == 0 then return n end end,
      })
      local r = router.new()
      r:add("/n/{n:unit_even}", { name = "even" })
      r:add("/n/{n}", { name = "other" })
      assert.equal("even", (r:match("/n/4")).name)
      local route, params = r:match("/n/3")
      assert.equal("other", route.name)
      assert.same({ n = "3" }, params)
    end)

    it("refuses bad names and definitions", function()
      assert.has_error(function() router.register_converter("1bad", { pattern = "x" }) end)
      assert.has_error(function() router.register_converter("bad name", { pattern = "x" }) end)
      assert.has_error(function() router.register_converter("ok", nil) end)
      assert.has_error(function() router.register_converter("ok", { convert = tostring }) end)
      assert.has_error(function() router.register_converter("ok", { pattern = "(%d+)" }) end,
        "converter pattern must not contain captures")
      -- a built-in cannot be taken over (it is every app's); an app's own
      -- name can be registered again (a hot reload runs the file again)
      assert.has_error(function() router.register_converter("int", { pattern = "%a+" }) end,
        "converter int is built in: pick another name")
      assert.same({ id = 12 }, match("/a/{id:int}", "/a/12"))
      router.register_converter("unit_again", { pattern = "%d+" })
      router.register_converter("unit_again", { pattern = "%a+" })
      assert.same({ v = "abc" }, match("/a/{v:unit_again}", "/a/abc"))
    end)

    -- Lua reads a pattern as it matches: a mistake after the first item
    -- would only raise when a path got that far, in every route's matching.
    it("refuses a pattern that is not a valid Lua pattern, at registration", function()
      for pattern, why in pairs {
        ["[a-z][a-z"] = "a '[' without its ']'",
        ["x["] = "a '[' without its ']'",
        ["%"] = "it ends with '%'",
        ["%d%"] = "it ends with '%'",
        ["%1"] = "a back-reference (%1) needs a capture",
        ["%f"] = "'%f' needs a set ('[...]')",
        ["%bx"] = "'%b' needs two characters",
        ["%d+)"] = "a ')' without its '('",
      } do
        local ok, err = pcall(router.register_converter, "unit_badpat", { pattern = pattern })
        assert.is_false(ok, pattern)
        assert.matches(string.format("converter unit_badpat: %q is not a valid Lua pattern: ", pattern) .. why, err,
          1, true)
      end
      for _, pattern in ipairs { "[]]+", "[^]]+", "[%]%-]+", "%bxy", "%f[%w]%w+", "[%w_%-]+", "%(%d+%)", "[()]+",
        "%b()" } do
        assert.has_no_error(function() router.register_converter("unit_goodpat", { pattern = pattern }) end, pattern)
      end
      -- an empty pattern would be a position capture ("()"): its value a number
      assert.has_error(function() router.register_converter("unit_empty", { pattern = "" }) end,
        "converter unit_empty: the pattern must not be empty")
      assert.has_error(function() router.register_converter("unit_conv", { pattern = "%a+", convert = 5 }) end,
        "converter unit_conv: convert must be a function, got number")
    end)
  end)

  -- A route that can never match (an earlier one takes every path it
  -- matches) is returned by add() as shadowed, for the app's warning.
  describe("shadowed routes", function()
    local function shadowed(first, second)
      local r = router.new()
      r:add(first, {})
      local _, shadow = r:add(second, {})
      return shadow and shadow.template or nil
    end

    it("the same paths, or a subset of an earlier route's", function()
      assert.equal("/x/{a}", shadowed("/x/{a}", "/x/{b}"))
      assert.equal("/x/{a}", shadowed("/x/{a}", "/x/{b:int}")) -- str takes every segment int does
      assert.equal("/x/{a}", shadowed("/x/{a}", "/x/{b:uuid}"))
      assert.equal("/x/{a:path}", shadowed("/x/{a:path}", "/x/{b}"))
      assert.equal("/x/{a:path}", shadowed("/x/{a:path}", "/x/readme")) -- a fixed path it matches
      assert.equal("/u/{id}", shadowed("/u/{id}", "/u/me"))
      assert.equal("/y", shadowed("/y", "/y"))
    end)

    it("not when the later route matches paths the earlier one does not", function()
      assert.is_nil(shadowed("/x/{b:int}", "/x/{a}"))
      assert.is_nil(shadowed("/v/{id:int}", "/v/me"))
      assert.is_nil(shadowed("/x/{a}", "/x/{a}/more"))
      assert.is_nil(shadowed("/x/{a}/{b}", "/x/{a:path}"))
      assert.is_nil(shadowed("/x/{a}", "/y/{a}"))
      assert.is_nil(shadowed("/y", "/y/"))
      -- (side by side: /v/12345678901234567 reaches the second, int refusing 17 digits in the first)
      assert.is_nil(shadowed("/v/{a:int}{rest:path}", "/v/{a:int}{b:int}"))
      router.register_converter("unit_word", { pattern = "%a+" })
      assert.is_nil(shadowed("/x/{a}", "/x/{b:unit_word}")) -- (an app's own converter is not compared)
    end)
  end)
end)

describe("nexlua.app route registration", function()
  it("app:ws_route and app.ws_route both register, in order", function()
    local app = App.new()
    assert.equal(app, app:ws_route("/a", handler))
    assert.equal(app, app.ws_route("/b", handler))
    app:ws_route("/c")(handler)
    assert.equal(3, #app.router.routes)
    assert.equal("/a", app.router.routes[1].template)
    assert.equal("/b", app.router.routes[2].template)
    assert.equal("/c", app.router.routes[3].template)
    assert.equal(handler, (app.router:match("/b")).handler)
    assert.is_true(App.is_app(app))
    assert.is_false(App.is_app({}))
  end)

  -- A mistake in a route is reported at the app's own line, like a bad handler is.
  it("errors name the line of the app that called ws_route", function()
    local app = App.new()
    local ok, err = pcall(function() app:ws_route("/x", 42) end)
    assert.is_false(ok)
    assert.matches("router_spec%.lua:%d+: ws_route handler must be a function", err)
    ok, err = pcall(function() app:ws_route("/x/{id:nope}", handler) end)
    assert.is_false(ok)
    assert.matches('unknown converter "nope"', err, 1, true)
    assert.matches("router_spec%.lua:%d+:", err)
  end)

  -- A misspelt handler name is nil: not the decorator form, which has no
  -- second argument at all.
  it("a nil handler is an error, with or without options", function()
    local app = App.new()
    local hanlder = nil -- luacheck: ignore 311
    for _, call in ipairs {
      function() app:ws_route("/x", hanlder) end,
      function() app:ws_route("/x", hanlder, nil) end,
      function() app.ws_route("/x", hanlder) end,
    } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.matches("router_spec%.lua:%d+: ws_route: the handler is nil %(a misspelled name%? the decorator " ..
        "form is app:ws_route%(path%)%(handler%), or app:ws_route%(path, nil, opts%)%(handler%)%)", err)
    end
    assert.equal(0, #app.router.routes)
    -- with options, nil is the decorator form (a route never given its
    -- handler is warned about at the start: app.unfinished)
    app:ws_route("/d", nil, { compression = false })(handler)
    assert.equal(false, (app.router:match("/d")).options.compression)
    local _ = app:ws_route("/never", nil, { compression = false })
    local n = 0
    for _, where in pairs(app.unfinished) do
      n = n + 1
      assert.matches("^[^:]*router_spec%.lua:%d+: ws_route%(/never%)$", where)
    end
    assert.equal(1, n)
  end)

  -- A middleware list with a hole or other keys would skip that middleware
  -- (an auth check, say) without a word; a later change to the table would
  -- change the route.
  it("route middleware must be a whole list, and is copied", function()
    local app = App.new()
    local auth = function(_, call_next) return call_next() end
    for _, case in ipairs {
      { { auth = auth }, 'found the key "auth"' },
      { { [2] = auth }, "found the key 2" },
      { { nil, auth }, "route middleware #1 must be a function, got nil" },
    } do
      local ok, err = pcall(function() app:ws_route("/x", handler, { middleware = case[1] }) end)
      assert.is_false(ok)
      assert.matches("router_spec%.lua:%d+: ", err)
      assert.truthy(err:find(case[2], 1, true), err)
    end
    local late = {}
    app:ws_route("/late", handler, { middleware = late })
    late[1] = "not a function"
    assert.same({}, (app.router:match("/late")).middleware)
  end)

  it("on_startup while the app serves raises: the hook would not run", function()
    local app = App.new()
    app._stopped = false -- (as lifecycle.start leaves it)
    local ok, err = pcall(function() app:on_startup(function() end) end)
    assert.is_false(ok)
    assert.matches("router_spec%.lua:%d+: on_startup: the app has started already", err)
    -- (from a startup hook, or between two starts, the hook runs at the next)
    app._starting = true
    assert.has_no_error(function() app:on_startup(function() end) end)
    app._starting, app._stopped = nil, true
    assert.has_no_error(function() app:on_startup(function() end) end)
  end)

  it("App.register_converter's errors name the app's line", function()
    local ok, err = pcall(function() App.App.register_converter("unit_bad", { pattern = "[a" }) end)
    assert.is_false(ok)
    assert.matches("^[^:]*router_spec%.lua:%d+: converter unit_bad", err)
  end)
end)
