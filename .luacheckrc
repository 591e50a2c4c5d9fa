-- luacheck configuration for nexlua
std = "luajit"
globals = {}
max_line_length = 120

exclude_files = {
  "build*/**",
  "**/node_modules/**",
}

-- busted specs: describe/it/assert/... are globals there
files["spec/"] = { std = "+busted" }
files["**/*_spec.lua"] = { std = "+busted" }
