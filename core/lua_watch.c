/* nexlua.core's watch(dir, fn): a directory's changes to a Lua function
 * (the reloader's --watch). */
#include <stdlib.h>

#include "lauxlib.h"
#include "log.h"
#include "nx.h"

static int l_unwatch(lua_State *L);

/* A watched directory: its callback runs fn(filename) in a task. */
typedef struct {
  uv_fs_event_t ev;
  nx_rt_t *rt;
  int fn_ref;
} watch_t;

typedef struct {
  watch_t *w; /* NULL once closed */
} wbox_t;

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
  watch_t *w = (watch_t *)h->data;
  (void)events;
  if (status < 0) {
    nx_log(NX_LOG_WARN, "watching files: %s", uv_strerror(status));
    return;
  }
  nx_task_start(w->rt, w->fn_ref, filename ? filename : "", NULL);
  nx_rt_run_ready(w->rt);
}

static void on_watch_closed(uv_handle_t *h) { free(h->data); }

static int l_unwatch(lua_State *L) {
  wbox_t *b = (wbox_t *)luaL_checkudata(L, 1, "nexlua.watch");
  watch_t *w = b->w;
  if (!w)
    return 0;
  b->w = NULL;
  luaL_unref(L, LUA_REGISTRYINDEX, w->fn_ref);
  uv_close((uv_handle_t *)&w->ev, on_watch_closed);
  return 0;
}

/* watch(dir, fn) -> handle | nil, message: fn(filename) on every change in
 * dir (not recursive). The handle's close() stops it. */
static int l_watch(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  const char *dir = luaL_checkstring(L, 1);
  watch_t *w;
  wbox_t *b;
  int r;
  luaL_checktype(L, 2, LUA_TFUNCTION);
  w = (watch_t *)calloc(1, sizeof(*w));
  if (!w)
    return luaL_error(L, "out of memory");
  w->rt = rt;
  uv_fs_event_init(rt->loop, &w->ev);
  w->ev.data = w;
  r = uv_fs_event_start(&w->ev, on_fs_event, dir, 0);
  if (r) {
    uv_close((uv_handle_t *)&w->ev, on_watch_closed);
    lua_pushnil(L);
    lua_pushfstring(L, "cannot watch %s: %s", dir, uv_strerror(r));
    return 2;
  }
  uv_unref((uv_handle_t *)&w->ev);
  lua_pushvalue(L, 2);
  w->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  b = (wbox_t *)lua_newuserdata(L, sizeof(*b));
  b->w = w;
  if (luaL_newmetatable(L, "nexlua.watch")) {
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_unwatch);
    lua_setfield(L, -2, "close");
  }
  lua_setmetatable(L, -2);
  return 1;
}

/* Adds watch to the nexlua.core table on top of the stack. */
void nx_lua_watch_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"watch", l_watch}, {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
