/* nexlua.core: the C core as a Lua module. Used by the nexlua executable
 * and loadable by any LuaJIT host (busted runs the real core this way). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "deflate.h"
#include "lauxlib.h"
#include "log.h"
#include "nx.h"
#include "tls.h"
#include "utf8.h"

#define LISTENER_MT "nexlua.listener"

#ifndef NEXLUA_VERSION
#define NEXLUA_VERSION "0.0.0"
#endif

typedef struct {
  nx_listener_t *l; /* NULL once closed */
} lst_box_t;

static double opt_field_number(lua_State *L, int t, const char *k, double dflt) {
  double v;
  lua_getfield(L, t, k);
  if (lua_isnil(L, -1))
    v = dflt;
  else if (lua_isnumber(L, -1))
    v = lua_tonumber(L, -1);
  else {
    luaL_error(L, "option '%s' must be a number", k);
    v = dflt;
  }
  lua_pop(L, 1);
  if (v < 0)
    luaL_error(L, "option '%s' must not be negative", k);
  return v;
}

/* listen(opts, entry, finish|nil) -> listener | nil, message. entry(box,
 * path) runs in a new task per upgrade request; finish(ws, ok, err, co)
 * when a task that called bind(ws) ends. */
static int l_listen(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  nx_config_t cfg;
  const char *origins;
  nx_listener_t *l;
  lst_box_t *box;
  const char *host;
  int port;
  char err[256];

  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_getfield(L, 1, "host");
  host = lua_isnil(L, -1) ? "127.0.0.1" : luaL_checkstring(L, -1);
  port = (int)opt_field_number(L, 1, "port", 8000);
  if (port > 65535)
    return luaL_error(L, "port must be 0..65535");

  /* Every option is read (and may raise) before anything is allocated. */
  nx_config_defaults(&cfg);
  cfg.max_message_size =
      (uint64_t)opt_field_number(L, 1, "max_message_size", (double)cfg.max_message_size);
  if (cfg.max_message_size == 0 || cfg.max_message_size > NX_MESSAGE_MAX)
    cfg.max_message_size = NX_MESSAGE_MAX;
  cfg.max_header_size =
      (size_t)opt_field_number(L, 1, "max_header_size", (double)cfg.max_header_size);
  cfg.handshake_timeout = (uint64_t)(1000 * opt_field_number(L, 1, "handshake_timeout",
                                                             cfg.handshake_timeout / 1000.0));
  cfg.close_timeout =
      (uint64_t)(1000 * opt_field_number(L, 1, "close_timeout", cfg.close_timeout / 1000.0));
  cfg.write_high_water =
      (size_t)opt_field_number(L, 1, "write_high_water", (double)cfg.write_high_water);
  cfg.write_limit = (size_t)opt_field_number(L, 1, "write_limit", (double)cfg.write_limit);
  cfg.read_pause_bytes =
      (size_t)opt_field_number(L, 1, "read_pause_bytes", (double)cfg.read_pause_bytes);
  cfg.max_connections = (uint32_t)opt_field_number(L, 1, "max_connections", cfg.max_connections);
  cfg.max_per_ip = (uint32_t)opt_field_number(L, 1, "max_connections_per_ip", cfg.max_per_ip);
  cfg.max_fragments = (uint32_t)opt_field_number(L, 1, "max_fragments", cfg.max_fragments);
  {
    /* (checked in Lua: a path starting with '/', under 64 bytes) */
    static const char *const names[2] = {"health_path", "metrics_path"};
    char *dst[2] = {cfg.health_path, cfg.metrics_path};
    int i;
    for (i = 0; i < 2; i++) {
      size_t n = 0;
      const char *p;
      lua_getfield(L, 1, names[i]);
      p = lua_isstring(L, -1) ? lua_tolstring(L, -1, &n) : NULL;
      dst[i][0] = '\0';
      if (p && n < 64)
        memcpy(dst[i], p, n + 1);
      lua_pop(L, 1);
    }
  }
  cfg.worker_id = (uint32_t)opt_field_number(L, 1, "worker_id", 1);
  lua_getfield(L, 1, "allowed_origins");
  origins = lua_isstring(L, -1) && lua_objlen(L, -1) > 0 ? lua_tostring(L, -1) : NULL;
  {
    /* Default: what the descriptor limit allows, keeping some for files
     * (64, or half of a small limit). A connection past the descriptors
     * cannot be answered: libuv accepts and closes it at once. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
      uint32_t fit = (uint32_t)(rl.rlim_cur > 128 ? rl.rlim_cur - 64 : rl.rlim_cur / 2);
      if (cfg.max_connections == 0)
        cfg.max_connections = fit;
      else if (cfg.max_connections > fit)
        nx_log(NX_LOG_WARN,
               "--max-connections %u is more than the open-file limit (%llu) holds with room for "
               "files (%u): once the descriptors run out, new connections are closed without "
               "an answer (raise `ulimit -n`)",
               cfg.max_connections, (unsigned long long)rl.rlim_cur, fit);
    }
  }
  cfg.compress_threshold =
      (size_t)opt_field_number(L, 1, "compress_threshold", (double)cfg.compress_threshold);
  lua_getfield(L, 1, "compression");
  if (!lua_isnil(L, -1))
    cfg.compression = lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, 1, "reuseport");
  cfg.reuseport = lua_toboolean(L, -1);
  lua_pop(L, 1);
  cfg.ping_interval =
      (uint32_t)(1000 * opt_field_number(L, 1, "ping_interval", cfg.ping_interval / 1000.0));
  cfg.ping_timeout =
      (uint32_t)(1000 * opt_field_number(L, 1, "ping_timeout", cfg.ping_timeout / 1000.0));
  /* A handler must be able to wait for its own client before the limit
   * that drops slow readers: keep the high-water mark under half of it. */
  if (cfg.write_high_water > cfg.write_limit / 2)
    cfg.write_high_water = cfg.write_limit / 2;
  if (cfg.max_header_size < 256)
    cfg.max_header_size = 256;
  if (cfg.read_pause_bytes < 65536)
    cfg.read_pause_bytes = 65536;

  l = (nx_listener_t *)calloc(1, sizeof(*l));
  if (!l)
    return luaL_error(L, "out of memory");
  l->rt = rt;
  l->cfg = cfg;
  l->entry_ref = l->finish_ref = LUA_NOREF;
  if (origins)
    l->cfg.allowed_origins = strdup(origins);
  lua_pop(L, 1); /* the origins string */

  lua_getfield(L, 1, "tls_cert");
  lua_getfield(L, 1, "tls_key");
  if (!lua_isnil(L, -1) || !lua_isnil(L, -2)) {
    const char *cert = lua_tostring(L, -2), *key = lua_tostring(L, -1);
    if (!cert || !key) {
      free(l->cfg.allowed_origins);
      free(l);
      lua_pushnil(L);
      lua_pushliteral(L, "TLS needs both a certificate (--tls-cert) and a key (--tls-key)");
      return 2;
    }
    l->cfg.tls = nx_tls_ctx_new(cert, key, err, sizeof(err));
    if (!l->cfg.tls) {
      free(l->cfg.allowed_origins);
      free(l);
      lua_pushnil(L);
      lua_pushstring(L, err);
      return 2;
    }
  }
  lua_pop(L, 2);
  if (nx_listener_start(l, host, port, err, sizeof(err))) {
    /* The handle is closing; its memory must outlive the close. Leak the
     * small struct rather than free it under libuv. */
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushvalue(L, 2);
  l->entry_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (lua_isfunction(L, 3)) {
    lua_pushvalue(L, 3);
    l->finish_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  box = (lst_box_t *)lua_newuserdata(L, sizeof(*box));
  box->l = l;
  luaL_getmetatable(L, LISTENER_MT);
  lua_setmetatable(L, -2);
  return 1;
}

static lst_box_t *check_listener(lua_State *L) {
  return (lst_box_t *)luaL_checkudata(L, 1, LISTENER_MT);
}

static int lst_port(lua_State *L) {
  lst_box_t *b = check_listener(L);
  if (!b->l)
    return 0;
  lua_pushinteger(L, b->l->port);
  return 1;
}

static int lst_scheme(lua_State *L) {
  lst_box_t *b = check_listener(L);
  lua_pushstring(L, b->l && b->l->cfg.tls ? "wss" : "ws");
  return 1;
}

static int lst_host(lua_State *L) {
  lst_box_t *b = check_listener(L);
  if (!b->l)
    return 0;
  lua_pushstring(L, b->l->host);
  return 1;
}

/* close(): stops accepting. Open connections are not touched. The listener
 * struct stays allocated: connections point at its settings, and a process
 * opens few listeners. */
static int lst_close(lua_State *L) {
  lst_box_t *b = check_listener(L);
  if (b->l)
    nx_listener_close(b->l);
  return 0;
}

/* connections(listener) -> number of open connections */
static int lst_connections(lua_State *L) {
  lst_box_t *b = check_listener(L);
  nx_conn_t *c;
  int n = 0;
  if (b->l)
    for (c = b->l->conns; c; c = c->next)
      n++;
  lua_pushinteger(L, n);
  return 1;
}

/* going_away(code, reason): starts the closing handshake on every open
 * connection of every listener (server shutdown). Returns how many. */
static int l_close_all(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  int code = (int)luaL_optinteger(L, 1, 1001);
  size_t rlen = 0;
  const char *reason = luaL_optlstring(L, 2, "server shutting down", &rlen);
  nx_listener_t *l;
  nx_conn_t *c, *next;
  int n = 0;
  for (l = rt->listeners; l; l = l->next) {
    for (c = l->conns; c; c = next) {
      next = c->next;
      if (c->state == NX_CONN_OPEN) {
        nx_conn_close_frame(c, (unsigned)code, reason, rlen);
        n++;
      } else if (c->state == NX_CONN_HTTP) {
        nx_conn_abort(c, 1001);
      } else if (c->state == NX_CONN_ROUTING) {
        /* Still in its middleware: no upgrade now; its accept() will see
         * the connection gone. */
        nx_http_respond(c, 503, "Retry-After: 1\r\n", "server shutting down\n", 21);
      }
    }
  }
  if (!rt->current) /* never resume tasks from inside a running one */
    nx_rt_run_ready(rt);
  lua_pushinteger(L, n);
  return 1;
}

/* handler_count() -> connection handlers still running */
static int l_handler_count(lua_State *L) {
  lua_pushnumber(L, (lua_Number)nx_rt_get(L)->nhandlers);
  return 1;
}

/* log_handlers(max): a WARN line for each connection handler still
 * running (at most max of them): whose it is and where it waits. */
static int l_log_handlers(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  int max = (int)luaL_checkinteger(L, 1), n = 0, waits;
  nx_task_t *t;
  char who[100], at[280];
  for (t = rt->tasks; t; t = t->next) {
    if (!t->listener || t == rt->current)
      continue;
    if (++n > max)
      continue;
    if (t->conn)
      nx_conn_peer_name(t->conn, who, sizeof(who));
    waits = nx_task_where(t, at, sizeof(at));
    nx_log(NX_LOG_WARN, "still running: the handler of %s%s, %s%s",
           t->conn ? "client " : "a connection that has ended", t->conn ? who : "",
           waits ? "waiting at " : "not waiting", waits ? at : "");
  }
  if (n > max)
    nx_log(NX_LOG_WARN, "still running: %d more handler(s)", n - max);
  return 0;
}

/* stats() -> {connections=, handlers=, compressions=, compression_cache_hits=,
 * redis_connected=, redis_published=, redis_received=, redis_dropped=} */
static int l_stats(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  uint64_t comp, hits;
  nx_deflate_stats(rt->deflate, &comp, &hits);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)rt->nconns);
  lua_setfield(L, -2, "connections");
  lua_pushnumber(L, (lua_Number)rt->nhandlers);
  lua_setfield(L, -2, "handlers");
  lua_pushnumber(L, (lua_Number)comp);
  lua_setfield(L, -2, "compressions");
  lua_pushnumber(L, (lua_Number)hits);
  lua_setfield(L, -2, "compression_cache_hits");
  nx_lua_redis_stats(L);
  return 1;
}

/* conn_count() -> connections alive in the process */
static int l_conn_count(lua_State *L) {
  lua_pushnumber(L, (lua_Number)nx_rt_get(L)->nconns);
  return 1;
}

static int l_run(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  if (rt->current)
    return luaL_error(L, "nexlua.core.run cannot run inside a nexlua coroutine");
  rt->stopping = 0;
  rt->watchdog =
      nx_watchdog_start(rt); /* (none if no thread can be made: only the warning is lost) */
  uv_run(rt->loop, UV_RUN_DEFAULT);
  nx_watchdog_stop(rt->watchdog);
  rt->watchdog = NULL;
  return 0;
}

/* The step's timer may fire in the turn's first timer run, before the poll
 * (the caller held the loop longer than the timeout): the stop makes that
 * poll return at once instead of blocking until the next other timer. */
static void on_step_timer(uv_timer_t *t) { uv_stop(t->loop); }

/* step(timeout): runs one loop iteration, blocking at most timeout seconds. */
static int l_step(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  if (rt->current)
    return luaL_error(L, "nexlua.core.step cannot run inside a nexlua coroutine");
  double timeout = luaL_optnumber(L, 1, 0);
  if (!(timeout > 0))
    timeout = 0;
  else if (timeout > 86400)
    timeout = 86400;
  uv_timer_t timer;
  uv_timer_init(rt->loop, &timer);
  uv_update_time(rt->loop);
  uv_timer_start(&timer, on_step_timer, (uint64_t)(timeout * 1000), 0);
  uv_run(rt->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(rt->loop, UV_RUN_NOWAIT);
  return 0;
}

static int l_stop(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  rt->stopping = 1;
  uv_stop(rt->loop);
  return 0;
}

static int l_now(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  lua_pushnumber(L, (lua_Number)uv_now(rt->loop) / 1000.0);
  return 1;
}

/* busy_poll(microseconds): after each read, poll for that long before the
 * loop sleeps again; 0 turns it off. */
static int l_busy_poll(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  double us = luaL_checknumber(L, 1);
  if (!(us >= 0 && us <= 1e6))
    return luaL_error(L, "busy_poll must be 0 to 1000000 microseconds, got %f", us);
  rt->busy_ns = (uint64_t)(us * 1000);
  if (!rt->busy_ns)
    uv_idle_stop(&rt->spin);
  return 0;
}

static int l_hrtime(lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

/* *ref becomes a registry reference to the value at idx (the old one dropped). */
void nx_lua_set_ref(lua_State *L, int idx, int *ref) {
  if (*ref != LUA_NOREF)
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
  lua_pushvalue(L, idx);
  *ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* address_valid(s) -> true when s is an IPv4 or IPv6 address that listen()
 * takes (as it reads it: libuv's parser). */
static int l_address_valid(lua_State *L) {
  struct sockaddr_storage a;
  const char *s = luaL_checkstring(L, 1);
  lua_pushboolean(L, uv_ip4_addr(s, 0, (struct sockaddr_in *)&a) == 0 ||
                         uv_ip6_addr(s, 0, (struct sockaddr_in6 *)&a) == 0);
  return 1;
}

/* log(level, message) */
static int l_log(lua_State *L) {
  const char *lvl = luaL_checkstring(L, 1);
  size_t len;
  const char *msg = luaL_checklstring(L, 2, &len);
  int level = nx_log_level_from_name(lvl);
  if (level < 0)
    return luaL_error(L, "unknown log level '%s'", lvl);
  nx_log_text(level, msg, len); /* (all of it: a NUL a client sent must not end the entry) */
  return 0;
}

/* log_level([name]) -> current name; sets it when a name is given. */
static int l_log_level(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    int level = nx_log_level_from_name(luaL_checkstring(L, 1));
    if (level < 0 || level > NX_LOG_ERROR) /* ("notice" is a level to write at, not to set) */
      return luaL_error(L, "unknown log level '%s' (debug, info, warn, error)", lua_tostring(L, 1));
    nx_log_level = level;
  }
  lua_pushstring(L, nx_log_level_name(nx_log_level));
  return 1;
}

/* utf8_valid(s) -> true when s is valid UTF-8 */
static int l_utf8_valid(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lua_pushboolean(L, nx_utf8_valid((const uint8_t *)s, len));
  return 1;
}

/* framework_source(prefix): the chunk name prefix of nexlua's own Lua
 * modules, so that errors the core raises name the app's line, not one
 * inside them (nx_error_at_app). */
static int l_framework_source(lua_State *L) {
  nx_set_framework_prefix(luaL_checkstring(L, 1));
  return 0;
}

/* tls_check(cert_file, key_file) -> true | nil, message: loads them as
 * listen() would, so that a bad file is found before the startup hooks. */
static int l_tls_check(lua_State *L) {
  char err[256];
  nx_tls_ctx_t *ctx =
      nx_tls_ctx_new(luaL_checkstring(L, 1), luaL_checkstring(L, 2), err, sizeof(err));
  if (!ctx) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  nx_tls_ctx_free(ctx);
  lua_pushboolean(L, 1);
  return 1;
}

int nx_lua_open(lua_State *L);
int nx_lua_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"listen", l_listen},
                                 {"tls_check", l_tls_check},
                                 {"address_valid", l_address_valid},
                                 {"run", l_run},
                                 {"step", l_step},
                                 {"stop", l_stop},
                                 {"now", l_now},
                                 {"hrtime", l_hrtime},
                                 {"busy_poll", l_busy_poll},
                                 {"log", l_log},
                                 {"log_level", l_log_level},
                                 {"framework_source", l_framework_source},
                                 {"close_all", l_close_all},
                                 {"conn_count", l_conn_count},
                                 {"utf8_valid", l_utf8_valid},
                                 {"handler_count", l_handler_count},
                                 {"log_handlers", l_log_handlers},
                                 {"stats", l_stats},
                                 {NULL, NULL}};
  static const luaL_Reg lst[] = {
      {"port", lst_port},   {"scheme", lst_scheme},           {"host", lst_host},
      {"close", lst_close}, {"connections", lst_connections}, {NULL, NULL}};
  signal(SIGPIPE, SIG_IGN);
  nx_rt_get(L);
  if (luaL_newmetatable(L, LISTENER_MT)) {
    lua_newtable(L);
    luaL_register(L, NULL, lst);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  luaL_register(L, NULL, fns);
  nx_lua_tasks_open(L);
  nx_lua_signals_open(L);
  nx_lua_watch_open(L);
  nx_lua_conn_open(L);
  nx_lua_client_open(L);
  nx_lua_process_open(L);
  nx_lua_redis_open(L);
  lua_pushliteral(L, NEXLUA_VERSION);
  lua_setfield(L, -2, "version");
  lua_pushlightuserdata(L, (void *)&nx_cannot_wait);
  lua_setfield(L, -2, "CANNOT_WAIT");
  return 1;
}
