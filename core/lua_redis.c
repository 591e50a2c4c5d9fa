/* The Lua side of --redis (redis.h):
 *
 *   redis_start{host=, port=, username=, password=, check=}  true | nil, message
 *   redis_check{host=, port=, username=, password=}  true | nil, message
 *
 * and the redis_* fields of stats(). */
#include "lauxlib.h"
#include "nx.h"
#include "redis.h"

static const char *opt_string(lua_State *L, const char *key) {
  const char *s;
  lua_getfield(L, 1, key);
  s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the string stays in the table, alive */
  return s;
}

static void get_opts(lua_State *L, nx_redis_opts_t *o) {
  luaL_checktype(L, 1, LUA_TTABLE);
  o->host = opt_string(L, "host");
  o->username = opt_string(L, "username");
  o->password = opt_string(L, "password");
  lua_getfield(L, 1, "port");
  o->port = (int)luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "check"); /* default true */
  o->check = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (!o->host)
    luaL_error(L, "redis: host is required");
}

/* redis_check{...} -> true | nil, message (blocking; no loop needed) */
static int l_redis_check(lua_State *L) {
  nx_redis_opts_t o;
  char err[512];
  get_opts(L, &o);
  if (nx_redis_check(&o, err, sizeof(err))) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_redis_start(lua_State *L) {
  nx_redis_opts_t o;
  char err[512];
  get_opts(L, &o);
  if (nx_redis_start(nx_rt_get(L), &o, err, sizeof(err))) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

void nx_lua_redis_stats(lua_State *L) {
  nx_redis_stats_t s;
  nx_redis_stats(nx_rt_get(L), &s);
  lua_pushboolean(L, s.connected);
  lua_setfield(L, -2, "redis_connected");
  lua_pushnumber(L, (lua_Number)s.published);
  lua_setfield(L, -2, "redis_published");
  lua_pushnumber(L, (lua_Number)s.received);
  lua_setfield(L, -2, "redis_received");
  lua_pushnumber(L, (lua_Number)s.dropped);
  lua_setfield(L, -2, "redis_dropped");
}

void nx_lua_redis_open(lua_State *L) {
  lua_pushcfunction(L, l_redis_start);
  lua_setfield(L, -2, "redis_start");
  lua_pushcfunction(L, l_redis_check);
  lua_setfield(L, -2, "redis_check");
}
