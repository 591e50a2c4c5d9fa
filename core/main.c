/* The nexlua executable: a LuaJIT state with nexlua.core preloaded, running
 * the command line in Lua (lua/nexlua/private/cli.lua), protected, so that
 * any error at start-up is one clear message and a non-zero exit. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"

int nx_lua_open(lua_State *L);
void nx_rt_close(lua_State *L);
void nx_catch_early_hup(void); /* (nx.h) */

#ifndef NEXLUA_LUA_DIR
#define NEXLUA_LUA_DIR "lua"
#endif

static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

/* Runs protected: package paths, the core, then cli.main(argv). */
static int pmain(lua_State *L) {
  int argc = (int)lua_tointeger(L, 1);
  char **argv = (char **)lua_touserdata(L, 2);
  const char *dir = getenv("NEXLUA_LUA_DIR");
  int i;

  if (!dir || !*dir)
    dir = NEXLUA_LUA_DIR;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", dir, dir);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, nx_lua_open);
  lua_setfield(L, -2, "nexlua.core");
  lua_pop(L, 2);

  lua_getglobal(L, "require");
  lua_pushliteral(L, "nexlua.private.cli");
  lua_call(L, 1, 1);
  lua_getfield(L, -1, "main");
  lua_createtable(L, argc, 0);
  for (i = 1; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_pushstring(L, argv[0]);
  lua_rawseti(L, -2, 0);
  lua_call(L, 1, 1);
  return 1;
}

/* Every connection takes a descriptor, and the soft limit (often 1024) is
 * only a default: take what the hard limit allows, as Go's runtime does.
 * (The loop is epoll's, so descriptors past 1024 are fine.) */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  lua_State *L;
  int status, code = 1;

  raise_nofile();
  /* A SIGHUP (a reload) while the app is loading would end the process (its
   * default action): it is noted, and raised again once the handlers exist. */
  nx_catch_early_hup();
  /* Message and output buffers of 64 KiB..1 MiB come and go with every
   * large message. glibc would hand buffers over 128 KiB to mmap and trim
   * the heap top as soon as 128 KiB are free: each message would then
   * fault its pages in again (measured: a third of the CPU of a 64 KiB
   * echo in page faults). Keep those sizes on the heap, and keep up to
   * 4 MiB of free heap instead of returning it at once. */
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
  L = luaL_newstate();

  if (!L) {
    fprintf(stderr, "nexlua: cannot create a Lua state (out of memory)\n");
    return 1;
  }
  lua_pushcfunction(L, traceback);
  lua_pushcfunction(L, pmain);
  lua_pushinteger(L, argc);
  lua_pushlightuserdata(L, argv);
  status = lua_pcall(L, 2, 1, 1);
  if (status != 0) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "nexlua: %s\n", msg ? msg : "(unknown error)");
  } else {
    code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : 0;
  }
  /* Handles first (they may point at Lua-owned objects), then Lua. */
  nx_rt_close(L);
  lua_close(L);
  return code;
}
