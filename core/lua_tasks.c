/* nexlua.core's task functions: spawn, sleep, park and unpark, cancel,
 * the task handle's status (the scheduler itself is runtime.c). */
#include "lauxlib.h"
#include "nx.h"

/* sleep(seconds): suspends the calling task. */
static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  nx_task_t *t = nx_rt_current(L, "nexlua.sleep");
  if (s < 0)
    s = 0;
  return nx_task_suspend(L, t, NX_WAIT_SLEEP, NULL, s);
}

/* A task spawned by a connection's handler, or by a task of that handler,
 * sends to that connection as the handler does: its sends wait while the
 * client is behind (see l_send). */
static void inherit_home(lua_State *L, nx_rt_t *rt, nx_tbox_t *tb) {
  nx_task_t *cur = rt->current;
  if (!cur || cur->co != L)
    return;
  if (cur->conn && cur->conn->owner == cur && cur->conn->box) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, cur->conn->box_ref);
    tb->home = cur->conn->box;
  } else if (cur->box && cur->box->home) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, cur->box->home_ref);
    tb->home = cur->box->home;
  } else {
    return;
  }
  tb->home_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* spawn(fn, ...) -> task, home|nil: runs fn(...) in a new task, from the
 * next loop turn; home: the box of the connection whose sends it shares
 * (inherit_home). */
static int l_spawn(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  int n = lua_gettop(L);
  nx_task_t *t;
  luaL_checktype(L, 1, LUA_TFUNCTION);
  t = nx_task_new(rt);
  if (!t)
    return luaL_error(L, "out of memory");
  lua_xmove(L, t->co, n);
  nx_task_wake(t, n - 1);
  nx_task_push_box(L, t);
  inherit_home(L, rt, t->box);
  if (!t->box->home)
    return 1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->box->home_ref);
  return 2;
}

static nx_task_t *check_task(lua_State *L, int i) {
  nx_tbox_t *b = (nx_tbox_t *)luaL_checkudata(L, i, "nexlua.task");
  return b->t;
}

/* on_task_abort(fn): fn(task, message) runs when the core ends a task
 * spawned with spawn() (a bare coroutine.yield), instead of the log line. */
static int l_on_task_abort(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  nx_lua_set_ref(L, 1, &nx_rt_get(L)->abort_ref);
  return 0;
}

/* current() -> the calling task's handle, or nil outside a task. */
static int l_current(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  if (!rt->current || rt->current->co != L)
    return 0;
  nx_task_push_box(L, rt->current);
  return 1;
}

/* park(timeout|nil): suspends the calling task until unpark(task, ...)
 * (returns those values), the timeout (nil, "timeout") or a cancel
 * (nil, "cancelled"). */
static int l_park(lua_State *L) {
  double timeout = luaL_optnumber(L, 1, -1);
  nx_task_t *t = nx_rt_current(L, "a waiting nexlua API");
  lua_settop(L, 0);
  return nx_task_suspend(L, t, NX_WAIT_PARK, NULL, timeout);
}

/* unpark(task, ...) -> true if the task was parked and is now woken. */
static int l_unpark(lua_State *L) {
  nx_task_t *t = check_task(L, 1);
  int n = lua_gettop(L) - 1;
  if (!t || t->wait != NX_WAIT_PARK || t->ready) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_xmove(L, t->co, n);
  nx_task_wake(t, n);
  lua_pushboolean(L, 1);
  return 1;
}

/* cancel(task) -> true if the task was waiting (it wakes with "cancelled"). */
static int l_cancel(lua_State *L) {
  nx_task_t *t = check_task(L, 1);
  lua_pushboolean(L, t ? nx_task_cancel(t) : 0);
  return 1;
}

/* task_status(task) -> "running" | "waiting" | "ready" | "dead" */
static int l_task_status(lua_State *L) {
  nx_task_t *t = check_task(L, 1);
  if (!t)
    lua_pushliteral(L, "dead");
  else if (t->running)
    lua_pushliteral(L, "running");
  else if (t->ready)
    lua_pushliteral(L, "ready");
  else
    lua_pushliteral(L, "waiting");
  return 1;
}

/* in_task() -> true when called from a nexlua task's coroutine. */
static int l_in_task(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  lua_pushboolean(L, rt->current && rt->current->co == L);
  return 1;
}

/* Adds the task functions to the nexlua.core table on top of the stack. */
void nx_lua_tasks_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"sleep", l_sleep},
                                 {"spawn", l_spawn},
                                 {"on_task_abort", l_on_task_abort},
                                 {"current", l_current},
                                 {"park", l_park},
                                 {"unpark", l_unpark},
                                 {"cancel", l_cancel},
                                 {"task_status", l_task_status},
                                 {"in_task", l_in_task},
                                 {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
