/* The runtime: one libuv loop and one scheduler per Lua state.
 *
 * Every Lua coroutine that nexlua runs is a task. nx_task_resume() is the
 * only place that calls lua_resume (the trampoline): it is reached from
 * libuv callbacks on a shallow C stack, never from inside Lua. A task that
 * must wait calls nx_task_suspend() from a C function that then returns
 * lua_yield(); whoever ends the wait calls nx_task_wake(), which only queues
 * the task; the queue is run at the end of the callback that woke it and on
 * every loop turn, so resumes never nest inside running Lua code. When a
 * connection's handler task ends, its listener's Lua finisher runs (see
 * task_finished). */
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "deflate.h"
#include "lauxlib.h"
#include "log.h"
#include "nx.h"
#include "pubsub.h"
#include "redis.h"
#include "relay.h"

static const char RT_KEY[] = "nexlua.runtime";
const char nx_cannot_wait = 0;

/* The message nx_ffi_take handed out last: its bytes were copied into a Lua
 * string at once, so it goes at the next take or before the loop sleeps (a
 * large one must not stay pinned while nothing happens). */
void nx_rt_release_ffi_msg(nx_rt_t *rt) {
  if (rt->ffi_msg) {
    nx_msg_free(rt, rt->ffi_msg);
    rt->ffi_msg = NULL;
  }
}

static void on_check(uv_check_t *h) {
  nx_rt_t *rt = (nx_rt_t *)h->data;
  nx_rt_run_ready(rt);
  nx_rt_flush(rt);
}

static void on_prepare(uv_prepare_t *h) {
  nx_rt_t *rt = (nx_rt_t *)h->data;
  nx_conn_release_held(rt);
  nx_rt_run_ready(rt);
  nx_rt_flush(rt);
  nx_rt_release_ffi_msg(rt);
  nx_deflate_trim(rt->deflate); /* before the loop sleeps */
}

static void on_idle(uv_idle_t *h) {
  nx_rt_t *rt = (nx_rt_t *)h->data;
  nx_rt_run_ready(rt);
  if (!rt->ready_head && !rt->nzero && !rt->nheld)
    uv_idle_stop(&rt->idle);
}

/* The loop must not sleep in its poll while a connection is held with
 * bytes of its own to parse (conn.c): no event would come for them. */
void nx_rt_keep_polling(nx_rt_t *rt) {
  if (!uv_is_active((uv_handle_t *)&rt->idle))
    uv_idle_start(&rt->idle, on_idle);
}

/* Busy polling (--busy-poll): after a read the loop keeps polling, without
 * sleeping in epoll_wait, until busy_ns have passed with nothing to read. A
 * request that comes within that window is seen at once instead of after the
 * scheduler wakes the process up (tens of microseconds on a VM), at the price
 * of a core kept busy while traffic flows. */
static void on_spin(uv_idle_t *h) {
  nx_rt_t *rt = (nx_rt_t *)h->data;
  if (uv_hrtime() >= rt->busy_until)
    uv_idle_stop(h);
}

void nx_rt_busy(nx_rt_t *rt) {
  rt->busy_until = uv_hrtime() + rt->busy_ns;
  uv_idle_start(&rt->spin, on_spin); /* no-op while active */
}

/* The runtime found last: a process has one Lua state, so this spares most
 * calls the registry lookup by name (the main thread, or the task running). */
static nx_rt_t *rt_last;

/* Finds or creates the runtime of this Lua state. */
nx_rt_t *nx_rt_get(lua_State *L) {
  nx_rt_t *rt = rt_last;
  if (rt && (rt->L == L || (rt->current && rt->current->co == L)))
    return rt;
  lua_getfield(L, LUA_REGISTRYINDEX, RT_KEY);
  rt = (nx_rt_t *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (rt)
    return rt_last = rt;

  /* The runtime lives as long as the process: libuv handles inside it may
   * still be referenced by the loop when a Lua state closes. */
  rt = (nx_rt_t *)calloc(1, sizeof(*rt));
  if (!rt)
    luaL_error(L, "nexlua: out of memory");
  rt->loop = uv_default_loop();
  lua_pushthread(L);
  rt->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  rt->signal_ref = LUA_NOREF;
  rt->abort_ref = LUA_NOREF;
  nx_timerq_init(&rt->timers, rt->loop, nx_conn_timeout);
  uv_check_init(rt->loop, &rt->check);
  rt->check.data = rt;
  uv_check_start(&rt->check, on_check);
  uv_unref((uv_handle_t *)&rt->check);
  uv_prepare_init(rt->loop, &rt->prepare);
  rt->prepare.data = rt;
  uv_prepare_start(&rt->prepare, on_prepare);
  uv_unref((uv_handle_t *)&rt->prepare);
  uv_idle_init(rt->loop, &rt->idle);
  rt->idle.data = rt;
  uv_idle_init(rt->loop, &rt->spin);
  rt->spin.data = rt;
  lua_pushlightuserdata(L, rt);
  lua_setfield(L, LUA_REGISTRYINDEX, RT_KEY);
  return rt_last = rt;
}

/* A new task with a fresh coroutine (pinned in the registry), not yet
 * scheduled: push the function and its arguments on t->co, then wake it.
 * NULL when out of memory. */
nx_task_t *nx_task_new(nx_rt_t *rt) {
  nx_task_t *t = (nx_task_t *)nx_freelist_pop(&rt->task_pool);
  if (t) {
    memset(t, 0, sizeof(*t));
  } else if (!(t = (nx_task_t *)calloc(1, sizeof(*t)))) {
    return NULL;
  }
  t->co = lua_newthread(rt->L);
  t->co_ref = luaL_ref(rt->L, LUA_REGISTRYINDEX);
  t->rt = rt;
  t->box_ref = LUA_NOREF;
  t->ws_ref = LUA_NOREF;
  t->next = rt->tasks;
  if (rt->tasks)
    rt->tasks->prev = t;
  rt->tasks = t;
  return t;
}

/* Starts fn(arg1, arg2) in a new task (the function from a registry ref);
 * it runs from the ready queue. Args may be NULL. */
nx_task_t *nx_task_start(nx_rt_t *rt, int fn_ref, const char *arg1, const char *arg2) {
  nx_task_t *t = nx_task_new(rt);
  lua_State *co;
  int n = 0;
  if (!t)
    return NULL;
  co = t->co;
  lua_rawgeti(co, LUA_REGISTRYINDEX, fn_ref);
  if (arg1)
    lua_pushstring(co, arg1), n++;
  if (arg2)
    lua_pushstring(co, arg2), n++;
  nx_task_wake(t, n);
  return t;
}

static void on_timer_closed(uv_handle_t *h) { free(h); }

static void task_free(nx_task_t *t) {
  nx_rt_t *rt = t->rt;
  nx_task_cancel_wait(t);
  /* A connection may outlive its handler task (at exit): forget the task. */
  if (t->conn && t->conn->owner == t) {
    t->conn->owner = NULL;
    if (nx_conn_end_waits(t->conn)) /* for messages this task will not take now */
      nx_rt_mark_dirty(t->conn);
  }
  if (t->ready) {
    /* Unlink from the ready queue. */
    nx_task_t **pp = &rt->ready_head, *prev = NULL;
    while (*pp && *pp != t)
      prev = *pp, pp = &(*pp)->ready_next;
    if (*pp) {
      *pp = t->ready_next;
      if (rt->ready_tail == t)
        rt->ready_tail = prev;
    }
  }
  if (t->timer)
    uv_close((uv_handle_t *)t->timer, on_timer_closed);
  if (t->prev)
    t->prev->next = t->next;
  else
    rt->tasks = t->next;
  if (t->next)
    t->next->prev = t->prev;
  if (t->listener) /* a connection's handler */
    rt->nhandlers--;
  if (t->box) {
    t->box->t = NULL;
    luaL_unref(rt->L, LUA_REGISTRYINDEX, t->box_ref);
    luaL_unref(rt->L, LUA_REGISTRYINDEX, t->box->home_ref);
    t->box->home = NULL;
    t->box->home_ref = LUA_NOREF;
  }
  luaL_unref(rt->L, LUA_REGISTRYINDEX, t->ws_ref);
  luaL_unref(rt->L, LUA_REGISTRYINDEX, t->co_ref);
  if (!nx_freelist_push(&rt->task_pool, t, NX_STRUCT_CACHE))
    free(t);
}

/* Logs prefix and the error value on top of from's stack (all of it: a NUL
 * a client sent must not end the entry), with from's traceback if asked;
 * built on L's stack, which is left as it was. */
static void log_error_value(lua_State *L, const char *prefix, lua_State *from, int traceback) {
  int top = lua_gettop(L), at = lua_gettop(from);
  size_t len;
  const char *s;
  lua_pushstring(L, prefix);
  s = lua_isstring(from, at) ? lua_tolstring(from, at, &len) : NULL;
  if (s)
    lua_pushlstring(L, s, len);
  else
    lua_pushliteral(L, "(error object is not a string)");
  if (traceback) {
    lua_pushliteral(L, "\n");
    luaL_traceback(L, from, NULL, 0);
  }
  lua_concat(L, lua_gettop(L) - top);
  s = lua_tolstring(L, -1, &len);
  nx_log_text(NX_LOG_ERROR, s, len);
  lua_settop(L, top);
}

/* A bound handler's coroutine ended (status 0, or the error it died of on
 * top of its stack): its listener's finisher runs, on the main thread, with
 * (ws, ok, err, co). The coroutine keeps its frames after an error, so the
 * finisher can take a traceback of it. Returns 0 if it ran. */
static int run_finisher(nx_task_t *t, int status) {
  nx_rt_t *rt = t->rt;
  lua_State *L = rt->L;
  int top = lua_gettop(L);
  if (t->ws_ref == LUA_NOREF || !t->listener || t->listener->finish_ref == LUA_NOREF)
    return -1;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->listener->finish_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ws_ref);
  lua_pushboolean(L, status == 0);
  if (status == 0)
    lua_pushnil(L);
  else
    lua_xmove(t->co, L, 1);
  lua_pushthread(t->co);
  lua_xmove(t->co, L, 1);
  if (lua_pcall(L, 4, 0, 0) != 0) {
    log_error_value(L, "error while ending a WebSocket handler: ", L, 0);
  }
  lua_settop(L, top);
  return 0;
}

/* A task ended (status 0, or its error is on top of its coroutine). A
 * handler's finisher ends its connection as the handler left it; the core
 * then makes sure the connection ends in any case. */
/* The messages its ended connection left unread, which the handler could
 * still have read: freed with the handler (its WebSocket's box, ws[1]). */
static void drop_kept_inbox(nx_task_t *t) {
  lua_State *L = t->rt->L;
  nx_box_t *b;
  nx_msg_t *m;
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->ws_ref);
  lua_rawgeti(L, -1, 1);
  b = (nx_box_t *)lua_touserdata(L, -1);
  if (b && lua_objlen(L, -1) >= sizeof(*b) && b->mark == NX_BOX_MARK) {
    while ((m = b->inbox) != NULL) {
      b->inbox = m->next;
      nx_msg_free(t->rt, m);
    }
  }
  lua_pop(L, 2);
}

static void task_finished(nx_task_t *t, int status) {
  nx_conn_t *c;
  if (run_finisher(t, status) != 0 && status != 0) {
    log_error_value(t->rt->L, "uncaught error in a nexlua coroutine: ", t->co, 1);
  }
  c = t->conn;
  if (c) {
    c->owner = NULL;
    if (c->state == NX_CONN_ROUTING) {
      nx_http_respond(c, 500, NULL, NULL, 0);
    } else if (c->state == NX_CONN_OPEN) {
      nx_conn_close_frame(c, 1011, "handler ended abnormally", 24);
    }
  }
  if (t->inbox_kept && t->ws_ref != LUA_NOREF)
    drop_kept_inbox(t);
  task_free(t);
}

/* A task (not a handler) that the core ends, its error on top of its
 * coroutine: the abort function (tasks.lua) is told, so that the Task fails
 * and its waiters wake, and it logs. Returns 1 if it was told. */
static int task_aborted(nx_task_t *t) {
  nx_rt_t *rt = t->rt;
  lua_State *L = rt->L;
  if (t->ws_ref != LUA_NOREF || !t->box || rt->abort_ref == LUA_NOREF)
    return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, rt->abort_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->box_ref);
  lua_xmove(t->co, L, 1);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    log_error_value(L, "error while ending a task: ", L, 0);
    lua_pop(L, 1);
  }
  return 1;
}

void nx_task_resume(nx_task_t *t, int nargs) {
  nx_rt_t *rt = t->rt;
  nx_task_t *prev = rt->current;
  uint64_t held;
  int status;

  if (t->running || lua_status(t->co) > LUA_YIELD)
    return; /* never resume a dead coroutine */
  t->wait = NX_WAIT_NONE;
  t->running = 1;
  rt->current = t;
  __atomic_store_n(&rt->held_seq, rt->held_seq + 1, __ATOMIC_RELEASE); /* odd: Lua runs */
  status = lua_resume(t->co, nargs);
  held = rt->held_seq;
  __atomic_store_n(&rt->held_seq, held + 1, __ATOMIC_RELEASE);
  if (__atomic_load_n(&rt->held_warned_seq, __ATOMIC_ACQUIRE) == held)
    nx_watchdog_held_ended(rt, t);
  rt->current = prev;
  t->running = 0;

  if (status == LUA_YIELD) {
    lua_settop(t->co, 0);
    if (t->wait == NX_WAIT_NONE) {
      /* A bare coroutine.yield(): nothing would ever resume it. It ends as
       * if it had raised this error. */
      lua_pushliteral(t->co, "coroutine.yield() called directly in a nexlua coroutine; use "
                             "nexlua's waiting APIs (receive, sleep, Queue) instead: ending it");
      task_finished(t, task_aborted(t) ? 0 : LUA_ERRRUN);
    }
    return;
  }
  task_finished(t, status);
}

void nx_task_wake(nx_task_t *t, int nargs) {
  nx_rt_t *rt = t->rt;
  nx_task_cancel_wait(t);
  if (t->ready)
    return;
  t->nargs = nargs;
  t->ready = 1;
  t->ready_pass = rt->ready_pass;
  t->ready_next = NULL;
  if (rt->ready_tail)
    rt->ready_tail->ready_next = t;
  else
    rt->ready_head = t;
  rt->ready_tail = t;
  if (!uv_is_active((uv_handle_t *)&rt->idle))
    uv_idle_start(&rt->idle, on_idle);
}

/* The zero waits begun before this round (pass) time out now, after the
 * tasks ready at its start have run (a task woken by one of them, or a
 * message read meanwhile, still ends such a wait first); they run in the
 * next round. Those begun in this round wait for the end of the next one. */
static void expire_zero_waits(nx_rt_t *rt, uint8_t pass) {
  uint32_t i, n = rt->nzero, kept = 0;
  for (i = 0; i < n; i++) {
    nx_task_t *t = rt->zero[i];
    if (!t)
      continue;
    if (t->ready_pass == pass) {
      rt->zero[kept] = t;
      t->zero_slot = kept++;
      continue;
    }
    t->zero_wait = 0; /* (its slot is dropped here, not by the wake) */
    t->timed_out = 1;
    lua_pushnil(t->co);
    lua_pushliteral(t->co, "timeout");
    nx_task_wake(t, 2);
  }
  rt->nzero = kept;
}

void nx_rt_run_ready(nx_rt_t *rt) {
  nx_task_t *t;
  /* The tasks ready now, in order. Those they wake run at the next call
   * (the idle handle keeps the loop from sleeping meanwhile): tasks that
   * wake each other (through a Queue, or sleep(0)) never hold the loop, which
   * polls its sockets between rounds, as asyncio's does. */
  uint8_t pass = ++rt->ready_pass;
  while ((t = rt->ready_head) != NULL && t->ready_pass != pass) {
    rt->ready_head = t->ready_next;
    if (!rt->ready_head)
      rt->ready_tail = NULL;
    t->ready = 0;
    nx_task_resume(t, t->nargs);
  }
  if (rt->nzero)
    expire_zero_waits(rt, pass);
}

static void on_wait_timeout(uv_timer_t *h) {
  nx_task_t *t = (nx_task_t *)h->data;
  if (!t || t->wait == NX_WAIT_NONE)
    return;
  t->timed_out = 1;
  /* The waiting C function returns these: (nil, "timeout"). */
  lua_pushnil(t->co);
  lua_pushliteral(t->co, "timeout");
  nx_task_wake(t, 2);
  nx_rt_run_ready(t->rt);
}

void nx_task_cancel_wait(nx_task_t *t) {
  nx_conn_t *c = t->wait_conn;
  if (t->zero_wait) {
    t->rt->zero[t->zero_slot] = NULL;
    t->zero_wait = 0;
  }
  if (c) {
    if (c->reader == t)
      c->reader = NULL;
    if (t->wait == NX_WAIT_DRAIN) {
      nx_task_t **pp = &c->writer;
      while (*pp && *pp != t)
        pp = &(*pp)->ready_next;
      if (*pp)
        *pp = t->ready_next;
      t->ready_next = NULL;
      /* A close waiting for this writer's replies (nx_conn_app_has_messages)
       * is looked at again at the end of the turn. */
      if (nx_conn_end_waits(c))
        nx_rt_mark_dirty(c);
    }
    t->wait_conn = NULL;
  }
  if (t->timer)
    uv_timer_stop(t->timer);
  t->wait = NX_WAIT_NONE;
}

/* t begins a zero wait (see nx_task_suspend). Returns -1 without memory. */
static int rt_zero_add(nx_rt_t *rt, nx_task_t *t) {
  if (rt->nzero == rt->zero_cap) {
    uint32_t cap = rt->zero_cap ? rt->zero_cap * 2 : 16;
    nx_task_t **z = (nx_task_t **)realloc(rt->zero, cap * sizeof(*z));
    if (!z)
      return -1;
    rt->zero = z;
    rt->zero_cap = cap;
  }
  t->zero_slot = rt->nzero;
  rt->zero[rt->nzero++] = t;
  t->zero_wait = 1;
  t->ready_pass = rt->ready_pass; /* (free while it waits) */
  if (!uv_is_active((uv_handle_t *)&rt->idle))
    uv_idle_start(&rt->idle, on_idle);
  return 0;
}

/* Suspends t until it is woken, its timeout passes (timeout < 0: none) or
 * it is cancelled. The C function calling this must `return` its result:
 * either lua_yield() or, pushed at once, the two values (nil, "cancelled")
 * for a task cancelled while it was running, or (nil, CANNOT_WAIT) where the
 * coroutine cannot yield. The values the C function
 * returns after a wake are those the waker pushed; after a timeout
 * (nil, "timeout"); after a cancel (nil, "cancelled"). */
int nx_task_suspend(lua_State *L, nx_task_t *t, int what, nx_conn_t *c, double timeout) {
  /* Past what a timer holds (math.huge, 1e300; about 285,000 years): no
   * timeout, rather than an out-of-range conversion that fires at once. */
  if (!(timeout < 9.0e12))
    timeout = -1;
  nx_task_cancel_wait(t);
  if (!lua_isyieldable(L)) {
    /* Inside require(), a __gc metamethod or a C function's callback: the
     * caller raises an error that says so (LuaJIT's own is terse). */
    lua_pushnil(L);
    lua_pushlightuserdata(L, (void *)&nx_cannot_wait);
    return 2;
  }
  if (t->cancelled) {
    t->cancelled = 0;
    lua_pushnil(L);
    lua_pushliteral(L, "cancelled");
    return 2;
  }
  if (timeout >= 0 && timeout * 1000.0 + 0.5 < 1.0) {
    /* Under half a millisecond (sleep(0), receive{timeout = 0}): no timer.
     * A libuv timer due at once, started from a timer's callback, runs
     * again in the same pass over the timers, before any socket is polled,
     * for as long as the task goes on doing so. The wait ends at the end of
     * the next round instead (expire_zero_waits), unless something ends it
     * first; the idle handle keeps the loop from sleeping meanwhile. */
    if (rt_zero_add(t->rt, t))
      return luaL_error(L, "nexlua: out of memory");
    timeout = -1;
  }
  if (timeout >= 0 && !t->timer) {
    t->timer = (uv_timer_t *)malloc(sizeof(uv_timer_t));
    if (!t->timer)
      return luaL_error(L, "nexlua: out of memory");
    uv_timer_init(t->rt->loop, t->timer);
    t->timer->data = t;
  }
  t->wait = (uint8_t)what;
  t->timed_out = 0;
  t->wait_conn = c;
  if (c && what == NX_WAIT_RECV)
    c->reader = t;
  if (c && what == NX_WAIT_DRAIN) {
    t->ready_next = c->writer; /* (not in the ready queue while it waits) */
    c->writer = t;
  }
  if (timeout >= 0) {
    /* From now, not from the start of the loop turn: the task (or the ones
     * before it in this turn) may have run for longer than the timeout. */
    uv_update_time(t->rt->loop);
    uv_timer_start(t->timer, on_wait_timeout, (uint64_t)(timeout * 1000.0 + 0.5), 0);
  }
  return lua_yield(L, 0);
}

/* Cancels t: a waiting task is woken with (nil, "cancelled"); a running or
 * ready one gets it from its next wait. Returns 1 if t was waiting. */
int nx_task_cancel(nx_task_t *t) {
  if (t->wait != NX_WAIT_NONE && !t->ready) {
    lua_pushnil(t->co);
    lua_pushliteral(t->co, "cancelled");
    nx_task_wake(t, 2);
    return 1;
  }
  t->cancelled = 1;
  return 0;
}

#define TASK_MT "nexlua.task"

/* Pushes t's Lua handle, creating it on first use. */
void nx_task_push_box(lua_State *L, nx_task_t *t) {
  if (!t->box) {
    t->box = (nx_tbox_t *)lua_newuserdata(L, sizeof(nx_tbox_t));
    t->box->t = t;
    t->box->home = NULL;
    t->box->home_ref = LUA_NOREF;
    if (luaL_newmetatable(L, TASK_MT)) {
      lua_pushliteral(L, "nexlua.task");
      lua_setfield(L, -2, "__name");
    }
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    t->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->box_ref);
}

/* The chunk name prefix of nexlua's own Lua modules ("@/path/lua/nexlua/"),
 * as the framework registered it (core.framework_source), or "". */
static char framework_prefix[1024];

void nx_set_framework_prefix(const char *prefix) {
  size_t n = strlen(prefix);
  if (n >= sizeof(framework_prefix))
    n = 0; /* (too long to keep: the name test below is used) */
  memcpy(framework_prefix, prefix, n);
  framework_prefix[n] = '\0';
}

/* Whether a chunk name is one of nexlua's own Lua modules: under the
 * registered prefix, or else named ".../nexlua/NAME.lua" or
 * ".../nexlua/private/NAME.lua". */
static int is_framework_source(const char *src) {
  const char *end = src + strlen(src), *p;
  if (framework_prefix[0])
    return strncmp(src, framework_prefix, strlen(framework_prefix)) == 0;
  if (end - src < 4 || strcmp(end - 4, ".lua") != 0)
    return 0;
  for (p = end - 4; p > src && p[-1] != '/'; p--)
    ;
  if (p - src >= 8 && strncmp(p - 8, "private/", 8) == 0)
    p -= 8;
  /* ".../nexlua/" itself: not ".../chat-nexlua/" */
  return p - src >= 7 && strncmp(p - 7, "nexlua/", 7) == 0 &&
         (p - src == 7 || p[-8] == '/' || p[-8] == '@');
}

/* Raises a Lua error with the message prefixed by the position of the
 * app's code that led to it: the first Lua frame outside nexlua's own
 * modules (the frame that called the C function when there is none). */
int nx_error_at_app(lua_State *L, const char *fmt, ...) {
  lua_Debug ar;
  va_list ap;
  int level, first = 0;
  for (level = 1; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
      continue;
    if (!first)
      first = level;
    if (!is_framework_source(ar.source)) {
      first = level;
      break;
    }
  }
  luaL_where(L, first ? first : 1);
  va_start(ap, fmt);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}

/* The task running L, or a Lua error naming `what` when L is not a task
 * (the main chunk, a coroutine.wrap of the user's, a metamethod called from C). */
nx_task_t *nx_rt_current(lua_State *L, const char *what) {
  nx_rt_t *rt = nx_rt_get(L);
  nx_task_t *t = rt->current;
  if (!t || t->co != L) {
    nx_error_at_app(L,
                    "%s must be called from a nexlua coroutine (a handler, middleware, hook or "
                    "task), not from the main chunk or a coroutine of your own",
                    what);
    return NULL;
  }
  return t;
}

void nx_rt_mark_dirty(nx_conn_t *c) {
  if (c->dirty)
    return;
  c->dirty = 1;
  c->dirty_next = c->rt->dirty;
  c->rt->dirty = c;
}

/* Writes out everything queued this loop turn: one write per connection. */
void nx_rt_flush(nx_rt_t *rt) {
  nx_conn_t *c;
  while ((c = rt->dirty) != NULL) {
    rt->dirty = c->dirty_next;
    /* (rare: no call on the message path; while still marked dirty, so
     * that it stays off the list) */
    if ((c->ws.error_code || c->close_received) && !nx_conn_app_has_messages(c))
      nx_conn_end_deferred(c);
    c->dirty = 0;
    nx_conn_flush(c);
  }
  if (rt->relay)
    nx_relay_flush(rt);
}

static void close_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* Tears the runtime down at exit: every connection is dropped, every task
 * freed, every handle closed and the loop run dry, so that lua_close()
 * afterwards frees everything and leak checkers see nothing left. */
void nx_rt_close(lua_State *L) {
  nx_rt_t *rt;
  nx_listener_t *l, *lnext;
  lua_getfield(L, LUA_REGISTRYINDEX, RT_KEY);
  rt = (nx_rt_t *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!rt)
    return;
  /* The process is ending: closing the signal handles below would give the
   * stop signals their default action back, and a late copy of one (a
   * worker of --workers gets a stop from the master and from whoever
   * stopped the group) would turn a clean exit into "killed by SIGTERM". */
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  nx_watchdog_stop(rt->watchdog); /* (core.run stops it, unless it was left by an error) */
  rt->watchdog = NULL;
  for (l = rt->listeners; l; l = l->next) {
    nx_listener_close(l);
    while (l->conns)
      nx_conn_abort(l->conns, 1001);
  }
  while (rt->tasks)
    task_free(rt->tasks);
  rt->ready_head = rt->ready_tail = NULL;
  free(rt->zero);
  rt->zero = NULL;
  rt->nzero = rt->zero_cap = 0;
  nx_relay_close(rt);
  /* Before the walk: hiredis closes its own poll handles (a handle closed
   * twice asserts) and frees them in their close callbacks. */
  nx_redis_close(rt);
  uv_walk(rt->loop, close_handle, NULL);
  uv_run(rt->loop, UV_RUN_DEFAULT);
  for (l = rt->listeners; l; l = lnext) {
    lnext = l->next;
    luaL_unref(L, LUA_REGISTRYINDEX, l->entry_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, l->finish_ref);
    nx_listener_free(l);
  }
  nx_deflate_free(rt->deflate);
  nx_pubsub_free(rt->pubsub);
  rt->pubsub = NULL;
  nx_buf_free(&rt->scratch);
  nx_buf_free(&rt->tlsplain);
  nx_timerq_free(&rt->timers);
  nx_rt_release_ffi_msg(rt);
  nx_freelist_drain(&rt->msg_pool, NULL);
  nx_freelist_drain(&rt->out_pool, NULL);
  nx_freelist_drain(&rt->conn_pool, NULL);
  nx_freelist_drain(&rt->http_pool, nx_http_destroy);
  nx_freelist_drain(&rt->task_pool, NULL);
  lua_pushnil(L);
  lua_setfield(L, LUA_REGISTRYINDEX, RT_KEY);
  uv_loop_close(rt->loop);
  if (rt_last == rt)
    rt_last = NULL;
  free(rt);
}

/* Where a suspended task waits: "file:line" of the app's first frame, past
 * the waiting API's own frames. 0: not suspended, or no such frame. */
int nx_task_where(nx_task_t *t, char *buf, size_t n) {
  lua_Debug ar;
  int level;
  for (level = 0; lua_status(t->co) == LUA_YIELD && lua_getstack(t->co, level, &ar); level++) {
    if (!lua_getinfo(t->co, "Sl", &ar) || ar.currentline <= 0 || is_framework_source(ar.source))
      continue;
    snprintf(buf, n, "%s:%d", ar.short_src, ar.currentline);
    return 1;
  }
  return 0;
}
