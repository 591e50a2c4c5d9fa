-- The nexlua command line: bad app files give one clear message naming the
-- file (and line) on stderr and a non-zero exit, never a C or Lua stack dump;
-- --help and --version exit 0; a port in use is a clear error; an unknown
-- flag exits 2.
local server = require "helpers.server"

local BIN = os.getenv("NEXLUA_BIN") or "build/nexlua"
local q = server.shquote

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Runs nexlua with args (bounded by `timeout`); returns code, stdout, stderr.
local function run(args)
  local out, err = os.tmpname(), os.tmpname()
  local argv = {}
  for i, a in ipairs(args) do argv[i] = q(a) end
  local cmd = string.format("timeout -k 2 10 %s %s </dev/null >%s 2>%s; echo $?",
    q(BIN), table.concat(argv, " "), q(out), q(err))
  local p = assert(io.popen(cmd, "r"))
  local code = tonumber(p:read("*a"):match("(%d+)"))
  p:close()
  local o, e = read_file(out), read_file(err)
  os.remove(out)
  os.remove(err)
  return code, o, e
end

-- One line on stderr, starting "nexlua: ", without any stack dump.
local function assert_one_clear_line(stderr)
  assert.matches("^nexlua: [^\n]+\n$", stderr)
  assert.is_nil(stderr:find("stack traceback", 1, true), stderr)
  assert.is_nil(stderr:find("[C]", 1, true), stderr)
end

describe("the nexlua command line", function()
  local dir
  local function app_file(name, text)
    local path = dir .. "/" .. name
    write_file(path, text)
    return path
  end

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    local r = os.execute("mkdir -p " .. q(dir))
    assert(r == 0 or r == true, "mkdir failed")
  end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  -- An app of these lines (after requiring nexlua, before returning the
  -- app) must fail to load: status 1, one line naming path .. where.
  local function expect_load_error(name, lines, where)
    local path = app_file(name, 'local nexlua = require "nexlua"\n' .. table.concat(lines, "\n") ..
      "\nreturn app\n")
    local code, _, err = run { path, "--port", "0" }
    assert.equal(1, code)
    assert_one_clear_line(err)
    assert.matches(path .. where, err, 1, true)
  end

  describe("an app that cannot be loaded", function()
    it("a missing file, or a directory: names it, exits 2", function()
      local path = dir .. "/does_not_exist.lua"
      local code, out, err = run { path, "--port", "0" }
      assert.equal(2, code)
      assert_one_clear_line(err)
      assert.matches(path, err, 1, true)
      assert.equal("", out)
      code, out, err = run { dir, "--port", "0" }
      assert.equal(2, code)
      assert_one_clear_line(err)
      assert.matches(dir .. ": Is a directory", err, 1, true)
      assert.equal("", out)
    end)

    -- nexlua.App{...} and ws_route's options are checked where they are given.
    for _, case in ipairs({
      { "App{ping_intervall = 1}", "unknown option ping_intervall (it takes allowed_origins, busy_poll, " },
      { "App{workers = 2}", "unknown option workers (--workers is a command-line flag only; it takes " },
      { 'App{log_level = "debug"}', "unknown option log_level (--log-level is a command-line flag only; it" },
      { "App{port = 70000}", "port must be a whole number from 0 to 65535, got 70000" },
      { 'App{max_message_size = "x"}', 'max_message_size must be a whole number, 0 or more, got "x"' },
      { "App{ping_interval = -1}", "ping_interval must be a number of seconds from 0 to 1000000" },
      { 'App{compression = "no"}', "compression must be true or false" },
      { 'App{tls_cert = "c.pem"}', "tls_cert needs tls_key" },
    }) do
      it("a bad option: nexlua." .. case[1] .. " names the app's file:line, exits 1", function()
        expect_load_error("bad_option.lua", { "local app = nexlua." .. case[1] },
          ":2: App: " .. case[2])
      end)
    end

    it("ws_route's middleware must be a list: names the app's file:line", function()
      expect_load_error("bad_route_mw.lua", {
        "local app = nexlua.App()",
        'app:ws_route("/ws", function(ws) ws:accept() end, { middleware = function() end })',
      }, ":3: ws_route: middleware must be a list of functions, got function")
    end)

    it("a bad ws_route option names the app's file:line", function()
      expect_load_error("bad_route_option.lua", {
        "local app = nexlua.App()",
        'app:ws_route("/ws", function(ws) ws:accept() end, { ping_timeout = 0 })',
      }, ":3: ws_route: ping_timeout must be a number of seconds above 0")
    end)

    -- (the app then fails to load, so that the run ends)
    it("a route that can never match (same paths as an earlier one) is warned about, with " ..
      "file:line", function()
      local path = app_file("dup_routes.lua", table.concat({
        'local nexlua = require "nexlua"',
        "local app = nexlua.App()",
        'app:ws_route("/x/{a}", function(ws) ws:accept() end)',
        'app:ws_route("/x/{b:int}", function(ws) ws:accept() end)',
        'app:ws_route("/x/{b}", function(ws) ws:accept() end)',
        'app:ws_route("/y")(function(ws) ws:accept() end)',
        'app:ws_route("/y")(function(ws) ws:accept() end)',
        'app:ws_route("/y/")(function(ws) ws:accept() end)',
        'error("stop here")',
        "",
      }, "\n"))
      local _, _, err = run { path, "--port", "0" }
      local _, n = err:gsub("never matches", "")
      assert.equal(3, n, err)
      -- (str takes every segment int does)
      assert.matches("WARN [^\n]*dup_routes%.lua:4: route /x/{b:int} never matches: /x/{a}, registered " ..
        "before it, matches the same paths", err)
      assert.matches("WARN [^\n]*dup_routes%.lua:5: route /x/{b} never matches: /x/{a}, registered " ..
        "before it, matches the same paths", err)
      assert.matches("WARN [^\n]*dup_routes%.lua:7: route /y never matches: /y, registered", err)
    end)

    it("a decorator that is never given its handler is warned about, with file:line", function()
      local path = app_file("unfinished_route.lua", table.concat({
        'local nexlua = require "nexlua"',
        "local app = nexlua.App()",
        'app:ws_route("/ws", function(ws) ws:accept() end)',
        'app:ws_route("/forgotten")',
        'app:ws_route("/done")(function(ws) ws:accept() end)',
        'app:on_startup(function() error("stop here") end)',
        "return app",
        "",
      }, "\n"))
      local _, _, err = run { path, "--port", "0" }
      local _, n = err:gsub("was never given a handler", "")
      assert.equal(1, n, err)
      assert.matches("WARN [^\n]*unfinished_route%.lua:4: ws_route%(/forgotten%) was never given a handler: the " ..
        "route does not exist %(a misspelt handler name, nil there%?", err)
    end)

    it("ping_timeout = 0 beside ping_interval = 0 says to leave it out", function()
      expect_load_error("bad_route_option0.lua", {
        "local app = nexlua.App()",
        'app:ws_route("/ws", function(ws) ws:accept() end, { ping_interval = 0, ping_timeout = 0 })',
      }, ":3: ws_route: ping_timeout must be a number of seconds above 0 (at most 1000000), got 0 (with " ..
        "ping_interval = 0, pings are off: leave ping_timeout out)")
    end)

    it("a syntax error: names file:line", function()
      local path = app_file("syntax_error.lua", table.concat({
        'local nexlua = require "nexlua"',
        "local app = nexlua.App(",
        "return app",
        "",
      }, "\n"))
      local code, _, err = run { path, "--port", "0" }
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
      assert_one_clear_line(err)
      assert.matches(path .. ":3:", err, 1, true)
    end)

    -- The loader's message is on two lines, the module's file:line on the
    -- second: both are printed, without the traceback.
    it("a syntax error in a module the app requires: names the module's file:line", function()
      app_file("broken_util.lua", "local M = {}\nM.x =\nreturn M\n")
      local path = app_file("needs_util.lua", table.concat({
        'local nexlua = require "nexlua"',
        'local util = require "broken_util"',
        "return nexlua.App()",
        "",
      }, "\n"))
      local code, _, err = run { path, "--port", "0" }
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
      assert.matches("^nexlua: cannot load [^\n]*needs_util%.lua: error loading module 'broken_util'", err)
      assert.matches("broken_util.lua:3: unexpected symbol near 'return'", err, 1, true)
      assert.is_nil(err:find("stack traceback", 1, true), err)
    end)

    it("an error raised at load, on two lines: prints both, not the traceback", function()
      local path = app_file("raises2.lua", table.concat({
        'local nexlua = require "nexlua"',
        'error("the database is not configured\\nset DB_URL")',
        "return nexlua.App()",
        "",
      }, "\n"))
      local code, _, err = run { path, "--port", "0" }
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
      assert.matches(path .. ":2: the database is not configured\n  set DB_URL\n", err, 1, true)
      assert.is_nil(err:find("stack traceback", 1, true), err)
    end)

    it("an error raised at load: names file:line and the message", function()
      local path = app_file("raises.lua", table.concat({
        'local nexlua = require "nexlua"',
        "local app = nexlua.App()",
        'error("the database is not configured")',
        "return app",
        "",
      }, "\n"))
      local code, _, err = run { path, "--port", "0" }
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
      assert_one_clear_line(err)
      assert.matches(path .. ":3: the database is not configured", err, 1, true)
    end)

    -- (raised by the core in C: the position is the app's, not that of
    -- nexlua's own module in between; an app directory whose name ends in
    -- "nexlua" is still the app's)
    for _, sub in ipairs { "", "chat-nexlua/", "nexlua/" } do
      it("a wait in the main chunk names the app's file:line (app in " .. (sub == "" and "." or sub) .. ")",
        function()
        if sub ~= "" then os.execute("mkdir -p " .. q(dir .. "/" .. sub)) end
        local path = app_file(sub .. "waits.lua", table.concat({
          'local nexlua = require "nexlua"',
          "local app = nexlua.App()",
          "nexlua.sleep(0.1)",
          "return app",
          "",
        }, "\n"))
        local code, _, err = run { path, "--port", "0" }
        assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
        assert_one_clear_line(err)
        assert.matches(path .. ":3: nexlua.sleep must be called from a nexlua coroutine", err, 1, true)
      end)
    end

    it("a bad handler given to ws_route: names the app's file:line", function()
      local path = app_file("bad_handler.lua", table.concat({
        'local nexlua = require "nexlua"',
        "local app = nexlua.App()",
        'app:ws_route("/ws", 42)',
        "return app",
        "",
      }, "\n"))
      local code, _, err = run { path, "--port", "0" }
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
      assert_one_clear_line(err)
      assert.matches(path .. ":3: ws_route handler must be a function", err, 1, true)
    end)

    it("a bad route template: names the app's file:line", function()
      local path = app_file("bad_route.lua", table.concat({
        'local nexlua = require "nexlua"',
        "local app = nexlua.App()",
        'app:ws_route("/items/{id:nope}", function(ws) ws:accept() end)',
        "return app",
        "",
      }, "\n"))
      local code, _, err = run { path, "--port", "0" }
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
      assert_one_clear_line(err)
      assert.matches('unknown converter "nope"', err, 1, true)
      assert.matches(path .. ":3:", err, 1, true)
    end)

    it("an app that returns nothing, or not an App: says so", function()
      local none = app_file("returns_nothing.lua",
        'local nexlua = require "nexlua"\nlocal app = nexlua.App()\n')
      local code, _, err = run { none, "--port", "0" }
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
      assert_one_clear_line(err)
      assert.matches(none .. " must return the app", err, 1, true)
      assert.matches("returned nil", err, 1, true)

      local tbl = app_file("returns_table.lua", "return { routes = {} }\n")
      code, _, err = run { tbl, "--port", "0" }
      assert.is_true(code ~= 0 and code ~= 124, "exit code " .. tostring(code))
      assert_one_clear_line(err)
      assert.matches("returned table", err, 1, true)
    end)
  end)

  describe("flags", function()
    it("--help prints the usage on stdout and exits 0", function()
      local code, out, err = run { "--help" }
      assert.equal(0, code)
      assert.matches("^usage: nexlua APP%.lua", out)
      assert.matches("--port", out, 1, true)
      assert.equal("", err)
    end)

    it("--version prints the version and exits 0", function()
      local code, out, err = run { "--version" }
      assert.equal(0, code)
      assert.matches("^nexlua %d+%.%d+%.%d+", out)
      assert.equal("", err)
    end)

    it("an unknown flag exits 2 with a clear message", function()
      local code, out, err = run { "examples/echo/app.lua", "--bogus" }
      assert.equal(2, code)
      assert.equal("", out)
      assert_one_clear_line(err)
      assert.matches("unknown option --bogus", err, 1, true)
    end)

    it("a bad flag value exits 2", function()
      local code, _, err = run { "examples/echo/app.lua", "--port", "abc" }
      assert.equal(2, code)
      assert_one_clear_line(err)
      assert.matches("--port", err, 1, true)
    end)

    -- Every value is checked before anything starts: no hook runs, nothing
    -- listens, and the message says what the flag accepts.
    for _, case in ipairs({
      { { "--port", "70000" }, "option --port needs a whole number from 0 to 65535, got \"70000\"" },
      { { "--port", "4294967296" }, "option --port needs a whole number from 0 to 65535" },
      { { "--max-message-size", "1.5" }, "option --max-message-size needs a whole number, 0 or more" },
      { { "--handshake-timeout", "0" }, "option --handshake-timeout needs a number of seconds above 0" },
      { { "--ping-timeout", "0" }, "option --ping-timeout needs a number of seconds above 0" },
      { { "--write-limit", "0" }, "option --write-limit needs a whole number, 1 or more" },
      { { "--tls-cert", "cert.pem" }, "option --tls-cert needs --tls-key" },
      { { "--host", "localhost" }, "option --host needs an IPv4 or IPv6 address, got \"localhost\"" },
      { { "--host", "300.1.1.1" }, "option --host needs an IPv4 or IPv6 address" },
      -- read as the core reads the address it listens on (they failed only
      -- at listen, after the startup hooks, with status 1)
      { { "--host", "::::" }, "option --host needs an IPv4 or IPv6 address, got \"::::\"" },
      { { "--host", "1:2:3:4:5:6:7:8:9" }, "option --host needs an IPv4 or IPv6 address" },
      { { "--host", "001.002.003.004" }, "option --host needs an IPv4 or IPv6 address" },
      -- numbers in decimal only: tonumber would read these as other numbers
      { { "--port", "0x2000" }, "option --port needs a whole number from 0 to 65535, got \"0x2000\"" },
      { { "--port", "8e3" }, "option --port needs a whole number from 0 to 65535, got \"8e3\"" },
      { { "--port", " 8000" }, "option --port needs a whole number from 0 to 65535, got \" 8000\"" },
      { { "--workers", "0x8" }, "option --workers needs a whole number from 1 to 1024, got \"0x8\"" },
      { { "--workers", "1e1" }, "option --workers needs a whole number from 1 to 1024, got \"1e1\"" },
      { { "--ping-interval", "1e1" }, "option --ping-interval needs a number of seconds from 0 to 1000000" },
      -- a flag takes no value: --reload=false must not turn reload on
      { { "--reload=false" }, "option --reload takes no value, got \"false\"" },
      { { "--no-compression=0" }, "option --no-compression takes no value, got \"0\"" },
      -- an empty list (an unset variable) is not "any Origin"; an Origin has no path
      { { "--allowed-origins", "" }, "option --allowed-origins needs * or a comma-separated list of origins" },
      { { "--allowed-origins", "http://a.example/" },
        "(scheme://host[:port], port 1 to 65535, no path), got \"http://a.example/\"" },
      { { "--allowed-origins", "http://a.example:99999" },
        "port 1 to 65535, no path), got \"http://a.example:99999\"" },
      { { "--allowed-origins", "https://a.example, http://z.example:0080" },
        "got \"https://a.example, http://z.example:0080\"" },
      { { "--allowed-origins", "https://a.example, a.example" }, "option --allowed-origins needs" },
    }) do
      it("exits 2 on " .. table.concat(case[1], " "), function()
        local args = { "examples/echo/app.lua" }
        for _, a in ipairs(case[1]) do args[#args + 1] = a end
        local code, out, err = run(args)
        assert.equal(2, code)
        assert.equal("", out)
        assert_one_clear_line(err)
        assert.matches(case[2], err, 1, true)
      end)
    end

    it("the listening line shows the port at every log level, even error", function()
      local s = server.start("examples/echo/app.lua", { "--log-level", "error" })
      local ok, err = pcall(function()
        assert.matches("INFO listening on ws://127%.0%.0%.1:" .. s.port, s:log())
      end)
      s:stop()
      assert(ok, err)
    end)

    it("no app file exits 2", function()
      local code, _, err = run {}
      assert.equal(2, code)
      assert.matches("^nexlua: no app file given", err)
    end)
  end)

  describe("an IPv6 address", function()
    it("is written in brackets in the listening line (a URL)", function()
      local proc = require "helpers.proc"
      local cmd = string.format("%s examples/echo/app.lua --host ::1 --port 0 & pid=$!; sleep 1; kill $pid; wait $pid",
        q(BIN))
      local _, out, err = proc.run({ "sh", "-c", cmd }, 10)
      local log = out .. err
      if not log:find("listening on", 1, true) then
        -- (a machine without IPv6 loopback: the error names the address)
        assert.matches("::1", log)
        return
      end
      assert.matches("listening on ws://%[::1%]:%d+ ", log)
    end)
  end)

  describe("a port already in use", function()
    local s
    setup(function() s = server.start("examples/echo/app.lua") end)
    teardown(function() if s then s:stop() end end)

    it("is a clear message and a non-zero exit", function()
      local code, out, err = run {
        "examples/echo/app.lua", "--host", "127.0.0.1", "--port", tostring(s.port),
      }
      assert.is_true(code ~= 0 and code ~= 124,
        "exit code " .. tostring(code) .. "; stderr:\n" .. err)
      local all = out .. err
      assert.matches("127.0.0.1:" .. s.port, all, 1, true)
      assert.matches("already in use", all, 1, true)
      assert.is_nil(all:find("stack traceback", 1, true), all)
      assert.is_true(s:alive(), "the first server must be unaffected")
    end)
  end)
end)
