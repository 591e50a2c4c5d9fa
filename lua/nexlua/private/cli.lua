--- The nexlua command line: nexlua APP.lua [options]
local core = require "nexlua.core"
local options = require "nexlua.private.options"

local tonumber, tostring, ipairs, pairs = tonumber, tostring, ipairs, pairs
local format, match, gsub = string.format, string.match, string.gsub
local stderr, stdout = io.stderr, io.stdout

local cli = {}

local MAX_COUNT = 1024 -- the largest --workers

-- A number written in decimal digits ("8", "0.5", "-1"), or nil: tonumber
-- would also read "0x20", "1e1" and " 8", which a flag does not mean.
local function decimal(v)
  if match(v, "^%-?%d+%.?%d*$") or match(v, "^%-?%.%d+$") then return tonumber(v) end
  return nil
end

-- name -> {key, kind, help}; kind "number" | "count" | "string" | "level" | "flag"
local OPTIONS = {
  { "--host", "host", "string", "address to listen on (default 127.0.0.1)" },
  { "--port", "port", "number", "port to listen on; 0 picks a free one (default 8000)" },
  { "--log-level", "log_level", "level", "debug, info, warn or error (default info)" },
  {
    "--max-message-size", "max_message_size", "number",
    "largest message accepted, in bytes; larger ones are closed with 1009 (default 16777216)",
  },
  {
    "--max-header-size", "max_header_size", "number",
    "largest request head, in bytes; larger gets HTTP 431 (default 16384)",
  },
  {
    "--handshake-timeout", "handshake_timeout", "number",
    "seconds allowed to send the upgrade request (default 10)",
  },
  {
    "--close-timeout", "close_timeout", "number",
    "seconds to wait for the peer's close reply (default 5)",
  },
  {
    "--graceful-timeout", "graceful_timeout", "number",
    "seconds connections get to close, and handlers to return, on SIGINT/SIGTERM (default 10)",
  },
  {
    "--write-high-water", "write_high_water", "number",
    "bytes buffered before a handler's (or its tasks') own send waits (default 1048576)",
  },
  {
    "--write-limit", "write_limit", "number",
    "bytes buffered for a client that does not read before it is dropped (default 16777216)",
  },
  {
    "--ping-interval", "ping_interval", "number",
    "seconds of silence before the server pings a client; 0 turns pings off (default 20)",
  },
  {
    "--ping-timeout", "ping_timeout", "number",
    "seconds a pinged client has to answer before it is closed with 1011 (default 20)",
  },
  {
    "--no-compression", "no_compression", "flag",
    "decline permessage-deflate (on by default, no context takeover)",
  },
  {
    "--compress-threshold", "compress_threshold", "number",
    "messages smaller than this many bytes are sent uncompressed (default 1024)",
  },
  {
    "--max-connections", "max_connections", "number",
    "connections beyond this get HTTP 503 (default: the open-file limit minus 64)",
  },
  {
    "--max-connections-per-ip", "max_connections_per_ip", "number",
    "connections from one address beyond this are closed at once; 0 = no cap (default 0)",
  },
  {
    "--max-fragments", "max_fragments", "number",
    "frames in one message beyond this close the connection with 1008; 0 = no limit (default 100000)",
  },
  {
    "--allowed-origins", "allowed_origins", "string",
    "comma list of Origins browsers may connect from; others get 403 (default: any)",
  },
  {
    "--busy-poll", "busy_poll", "number",
    "microseconds to keep polling after a read before the loop sleeps: lower latency, "
      .. "more CPU; 0 = off (default 0, at most 1000000)",
  },
  {
    "--health-path", "health_path", "string",
    "a plain GET or HEAD of this path gets 200 \"ok\" (a load balancer's check) (default: none)", "PATH",
  },
  {
    "--metrics-path", "metrics_path", "string",
    "a plain GET or HEAD of this path gets the process's counters, Prometheus text (default: none)", "PATH",
  },
  { "--tls-cert", "tls_cert", "string", "PEM certificate (chain) file: serve wss:// (with --tls-key)", "FILE" },
  { "--tls-key", "tls_key", "string", "PEM private key file for --tls-cert", "FILE" },
  {
    "--workers", "workers", "count",
    "worker processes sharing the port (SO_REUSEPORT); Lua state is per worker, topics are shared (default 1)",
  },
  {
    "--redis", "redis", "string",
    "redis://[:PASSWORD@]HOST[:PORT]: share topics with every nexlua process on that Redis",
    "URL",
  },
  { "--reload", "reload", "flag", "reload the app when its Lua files change (SIGHUP always reloads)" },
  { "--help", "help", "flag", "show this help" },
  { "--version", "version", "flag", "show the version" },
}

local function usage()
  local lines = {
    "usage: nexlua APP.lua [options]", "",
    "Serves the WebSocket routes of APP.lua (a file that returns a nexlua.App()).", "",
    "options:",
  }
  for _, o in ipairs(OPTIONS) do
    local meta = o[5] or o[3] == "level" and "LEVEL" or (o[3] == "number" or o[3] == "count") and "N" or "VALUE"
    local arg = o[3] == "flag" and "" or (" " .. meta)
    lines[#lines + 1] = format("  %-28s %s", o[1] .. arg, o[4])
  end
  return table.concat(lines, "\n") .. "\n"
end

--- Parses argv; returns opts or nil, message.
function cli.parse(argv)
  local opts, i = {}, 1
  local by_name = {}
  for _, o in ipairs(OPTIONS) do by_name[o[1]] = o end
  while argv[i] do
    local a = argv[i]
    local name, inline = match(a, "^(%-%-[%w%-]+)=(.*)$")
    name = name or a
    local o = by_name[name]
    if o then
      if o[3] == "flag" then
        if inline ~= nil then return nil, format("option %s takes no value, got %q", name, inline) end
        opts[o[2]] = true
      else
        local v = inline
        if v == nil then
          i = i + 1
          v = argv[i]
        end
        if v == nil then return nil, format("option %s needs a value", name) end
        if o[3] == "number" or (o[3] == "string" and options.SPEC[o[2]]) then
          -- checked as App{} options are (private/options.lua)
          -- (a value that is not a decimal number is checked as NaN: the
          -- message then says what the option takes)
          local x, err = options.check(o[2], o[3] == "number" and (decimal(v) or 0 / 0) or v)
          if x == nil then
            return nil, format("option %s needs %s, got %q", name, match(err, "must be (.-), got"), v)
          end
          v = x
        elseif o[3] == "count" then
          local n = decimal(v)
          if not n or n < 1 or n > MAX_COUNT or n % 1 ~= 0 then
            return nil, format("option %s needs a whole number from 1 to %d, got %q", name, MAX_COUNT, v)
          end
          v = n
        elseif o[3] == "level" and core.log_level() and not ({ debug = 1, info = 1, warn = 1, error = 1 })[v] then
          return nil, format("option %s must be debug, info, warn or error, got %q", name, v)
        end
        opts[o[2]] = v
      end
    elseif match(a, "^%-") then
      return nil, format("unknown option %s (see --help)", a)
    elseif opts.app then
      return nil, format("more than one app file given: %s and %s", opts.app, a)
    else
      opts.app = a
    end
    i = i + 1
  end
  if opts.redis then
    local ok, err = require("nexlua.private.redis").parse_url(opts.redis)
    if not ok then return nil, "option --redis: " .. err end
  end
  local same = options.same_paths(opts.health_path, opts.metrics_path, "options --health-path and --metrics-path")
  if same then return nil, same end
  if (opts.tls_cert == nil) ~= (opts.tls_key == nil) then
    -- (the flags are checked before the app is loaded: one does not pair
    -- with the other file given in App{...})
    return nil, (opts.tls_cert and "option --tls-cert needs --tls-key" or "option --tls-key needs --tls-cert") ..
      " (give both files on the command line, or both in App{tls_cert=, tls_key=})"
  end
  return opts
end

-- nil, or why path cannot be the app file (missing, unreadable, a directory).
local function app_file_problem(path)
  local f, err = io.open(path, "r")
  if not f then return err end
  local _, rerr = f:read(0) -- (nil and no error for an empty file)
  f:close()
  return rerr and (path .. ": " .. rerr) or nil
end

--- Loads the app file; returns the app or nil, message.
function cli.load_app(path)
  local f = io.open(path, "r")
  if not f then return nil, format("cannot open app file %s", path) end
  f:close()
  local dir = match(path, "^(.*)/[^/]*$") or "."
  package.path = dir .. "/?.lua;" .. dir .. "/?/init.lua;" .. package.path
  local app, err = require("nexlua.reload").load(path)
  if not app then
    -- The traceback helps only when asked for; the message has file:line
    -- (a module's syntax error is on its second line).
    if core.log_level() ~= "debug" then err = match(tostring(err), "^(.-)\nstack traceback:") or err end
    return nil, err
  end
  return app
end

function cli.main(argv)
  local opts, err = cli.parse(argv)
  if not opts then
    stderr:write("nexlua: ", err, "\n")
    return 2
  end
  if opts.help then
    stdout:write(usage())
    return 0
  end
  if opts.version then
    stdout:write("nexlua ", core.version, " (", jit and jit.version or _VERSION, ")\n")
    return 0
  end
  if not opts.app then
    stderr:write("nexlua: no app file given\n", usage())
    return 2
  end
  local problem = app_file_problem(opts.app)
  if problem then
    stderr:write("nexlua: cannot open app file ", problem, "\n")
    return 2
  end
  if opts.log_level then core.log_level(opts.log_level) end
  local nworkers = opts.workers or 1
  opts.app_path = opts.app
  if opts.no_compression then opts.compression = false end
  opts.no_compression = nil
  opts.app = nil
  for k in pairs({ help = 1, version = 1, log_level = 1, workers = 1 }) do opts[k] = nil end
  if nworkers > 1 then
    -- Every worker loads the app itself, after the fork: the master stays
    -- small, and a replacement worker serves the app as it is on disk now.
    return require("nexlua.private.workers").run(nworkers, opts, cli.serve)
  end
  return cli.serve(opts)
end

--- Loads the app of opts.app_path and serves it; returns the exit code.
function cli.serve(opts)
  local app, err = cli.load_app(opts.app_path)
  if not app then
    if opts.on_listening then -- a worker of --workers: a log entry, with its time and [wN]
      require("nexlua.log").error("cannot load %s: %s", opts.app_path, tostring(err))
    else
      stderr:write("nexlua: cannot load ", opts.app_path, ": ", gsub(tostring(err), "\n", "\n  "), "\n")
    end
    return 1
  end
  return require("nexlua.private.serve").run(app, opts)
end

return cli
