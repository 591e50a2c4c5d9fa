/* Entry point of the Lua C module nexlua.core (build/lua/nexlua/core.so). */
#include "lua.h"

int nx_lua_open(lua_State *L);
int luaopen_nexlua_core(lua_State *L);

int luaopen_nexlua_core(lua_State *L) { return nx_lua_open(L); }
