/* The Lua side of a connection: functions of nexlua.core that take a
 * connection box (see nx_box_t) and the dispatch of a new request to Lua.
 *
 * Failures of the connection come back as values (nil, "closed", code,
 * reason) for the Lua layer to turn into typed errors; misuse raises. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "log.h"
#include "nx.h"
#include "pubsub.h"
#include "redis.h"
#include "relay.h"
#include "utf8.h"

#define BOX_MT "nexlua.connection"

/* The box at i, or NULL: a full userdata (a light one has no length) big
 * enough, whose first word is the mark. Two API calls, where comparing
 * metatables took five, on a check made for every message that does not
 * take the FFI path. Only nexlua's own Lua code passes boxes, and no Lua
 * code can write a userdata's bytes. Every function here is a closure whose
 * upvalues 2 and 3 are the strings "text" and "binary". */
static nx_box_t *to_box(lua_State *L, int i) {
  nx_box_t *b = (nx_box_t *)lua_touserdata(L, i);
  if (b && lua_objlen(L, i) >= sizeof(nx_box_t) && b->mark == NX_BOX_MARK)
    return b;
  return NULL;
}

static nx_box_t *check_box(lua_State *L, int i) {
  nx_box_t *b = to_box(L, i);
  if (!b)
    luaL_typerror(L, i, BOX_MT);
  return b;
}

/* is_box(v) -> true if v is a connection box (publish's exclude, from the app). */
static int l_is_box(lua_State *L) {
  lua_pushboolean(L, to_box(L, 1) != NULL);
  return 1;
}

static int push_closed(lua_State *L, nx_box_t *b) {
  nx_conn_t *c = b->conn;
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  if (c) {
    lua_pushinteger(L, c->close_code ? c->close_code : 1006);
    lua_pushlstring(L, c->close_reason ? c->close_reason : "", c->close_reason_len);
  } else {
    lua_pushinteger(L, b->close_code ? b->close_code : 1006);
    lua_pushlstring(L, b->close_reason ? b->close_reason : "", b->close_reason_len);
  }
  return 4;
}

/* Starts the handler coroutine for a request that passed validation:
 * entry(box, path) in a new task; the box keeps the request head (see
 * request.c). Returns 0, or -1 if it could not. */
int nx_lua_conn_dispatch(nx_conn_t *c) {
  nx_rt_t *rt = c->rt;
  lua_State *co;
  nx_task_t *t;
  nx_box_t *b;
  size_t head = nx_http_store_size(c->http);

  if (c->listener->entry_ref == LUA_NOREF)
    return -1;
  t = nx_task_new(rt);
  if (!t)
    return -1;
  co = t->co;
  lua_rawgeti(co, LUA_REGISTRYINDEX, c->listener->entry_ref);
  b = (nx_box_t *)lua_newuserdata(co, sizeof(*b) + head);
  memset(b, 0, sizeof(*b));
  b->mark = NX_BOX_MARK;
  b->conn = c;
  b->tls = c->tls != NULL;
  nx_http_store(c->http, b);
  nx_request_store_peer(b, c);
  lua_rawgeti(co, LUA_REGISTRYINDEX, rt->box_mt_ref);
  lua_setmetatable(co, -2);
  lua_pushvalue(co, -1);
  c->box_ref = luaL_ref(co, LUA_REGISTRYINDEX);
  c->box = b;
  nx_request_push_path(co, b);
  nx_http_free(rt, c->http);
  c->http = NULL;
  t->conn = c;
  t->listener = c->listener; /* (this makes it a handler task) */
  rt->nhandlers++;
  c->owner = t;
  nx_task_wake(t, 2);
  return 0;
}

/* accept(box, subprotocol|nil, header_lines|nil) -> true | nil, "closed", code, reason */
static int l_accept(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  const char *proto = luaL_optstring(L, 2, NULL);
  const char *extra = luaL_optstring(L, 3, NULL);
  /* Every argument is checked before the first byte of the 101 is queued. */
  double ping_interval = luaL_optnumber(L, 4, -1), ping_timeout = luaL_optnumber(L, 5, -1);
  int compress = lua_toboolean(L, 6);
  nx_conn_t *c = b->conn;
  char accept[29];
  char head[512];
  int n;

  if (!c || c->state == NX_CONN_DONE)
    return push_closed(L, b);
  if (c->state != NX_CONN_ROUTING)
    return luaL_error(L, "WebSocket already accepted");
  {
    /* The request passed the handshake check: it has one valid key. */
    static const char pre[] = "HTTP/1.1 101 Switching Protocols\r\n"
                              "Upgrade: websocket\r\n"
                              "Connection: Upgrade\r\n"
                              "Sec-WebSocket-Accept: ";
    size_t klen = 0, alen;
    const char *k = nx_request_header(b, "sec-websocket-key", &klen);
    char key[32];
    if (!k || klen >= sizeof(key))
      return luaL_error(L, "the request has no Sec-WebSocket-Key");
    memcpy(key, k, klen);
    key[klen] = '\0';
    nx_http_accept_key(key, accept);
    alen = strlen(accept);
    memcpy(head, pre, sizeof(pre) - 1);
    memcpy(head + sizeof(pre) - 1, accept, alen);
    memcpy(head + sizeof(pre) - 1 + alen, "\r\n", 2);
    n = (int)(sizeof(pre) - 1 + alen + 2);
  }
  nx_conn_send_raw(c, head, (size_t)n);
  if (proto) {
    nx_conn_send_raw(c, "Sec-WebSocket-Protocol: ", 24);
    nx_conn_send_raw(c, proto, strlen(proto));
    nx_conn_send_raw(c, "\r\n", 2);
  }
  if (c->pmd_offered && compress) {
    /* We always answer with no context takeover both ways: see extensions.h. */
    char reply[160];
    int k = snprintf(reply, sizeof(reply),
                     "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                     "client_no_context_takeover");
    if (c->pmd_bits_reply)
      k += snprintf(reply + k, sizeof(reply) - (size_t)k, "; server_max_window_bits=%d",
                    c->pmd_bits_reply);
    nx_conn_send_raw(c, reply, (size_t)k);
    nx_conn_send_raw(c, "\r\n", 2);
    c->deflate = 1;
    c->ws.allow_rsv1 = 1;
  }
  if (extra)
    nx_conn_send_raw(c, extra, strlen(extra));
  nx_conn_send_raw(c, "\r\n", 2);
  nx_conn_upgraded(c, ping_interval, ping_timeout);
  lua_pushboolean(L, 1);
  return 1;
}

/* reject(box, status, header_lines|nil, body|nil): an HTTP answer instead of the upgrade. */
static int l_reject(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  int status = (int)luaL_checkinteger(L, 2);
  const char *extra = luaL_optstring(L, 3, NULL);
  size_t blen = 0;
  const char *body = luaL_optlstring(L, 4, NULL, &blen);
  nx_conn_t *c = b->conn;

  if (status < 400 || status > 599)
    return luaL_error(L, "reject status must be 4xx or 5xx, got %d", status);
  if (!c || c->state == NX_CONN_DONE)
    return push_closed(L, b);
  if (c->state != NX_CONN_ROUTING)
    return luaL_error(L, "cannot reject: the WebSocket was already accepted");
  nx_http_respond(c, status, extra, body, blen);
  lua_pushboolean(L, 1);
  return 1;
}

/* The next message a box kept from its ended connection: what came before
 * the end. One kept compressed (see ws_message_end) is inflated now; if it
 * cannot be, it and what came after it are dropped, and the app is told the
 * connection ended with the code that message would have failed it with
 * (1007, 1009), not the close that came after it. */
static nx_msg_t *box_pop(lua_State *L, nx_box_t *b) {
  nx_rt_t *rt = nx_rt_get(L);
  nx_msg_t *m = b->inbox;
  int err = 0;
  if (!m)
    return NULL;
  b->inbox = m->next;
  if (m->compressed && (m = nx_msg_inflate(rt, m, &err)) == NULL) {
    const char *reason = "out of memory";
    unsigned code = err == -4 ? 1011 : nx_inflate_code(err, &reason);
    nx_log(NX_LOG_DEBUG, "a message kept after the connection's end does not inflate: %s", reason);
    while ((m = b->inbox) != NULL) {
      b->inbox = m->next;
      nx_msg_free(rt, m);
    }
    free(b->close_reason);
    b->close_reason = strdup(reason);
    b->close_reason_len = b->close_reason ? (uint8_t)strlen(reason) : 0;
    b->close_code = (uint16_t)code;
    return NULL;
  }
  return m;
}

/* take(box, timeout|nil) -> data, "text"|"binary" | nil, "closed" (see
 * close_info) | nil, "connecting" (not accepted yet) | nil, CANNOT_WAIT; else it
 * suspends the calling task until a message or the end of the connection
 * (then returns nothing: call again), the timeout (nil, "timeout") or a
 * cancel (nil, "cancelled"). A message already queued never yields. */
static int l_take(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  nx_conn_t *c = b->conn;
  nx_msg_t *m;
  nx_task_t *t;
  double timeout;

  if (c ? (m = nx_conn_pop(c)) != NULL : (m = box_pop(L, b)) != NULL) {
    lua_pushlstring(L, (const char *)m->data, m->len);
    lua_pushvalue(L, lua_upvalueindex(m->opcode == NX_WS_OP_TEXT ? 2 : 3));
    nx_msg_free(c ? c->rt : nx_rt_get(L), m);
    return 2;
  }
  if (!c || c->state >= NX_CONN_CLOSING) {
    /* Two values only: the Lua side keeps few stack slots (close_info). */
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  if (c->state != NX_CONN_OPEN) {
    lua_pushnil(L);
    lua_pushliteral(L, "connecting");
    return 2;
  }
  timeout = luaL_optnumber(L, 2, -1);
  t = nx_rt_current(L, "receive");
  if (c->reader && c->reader != t)
    return nx_error_at_app(L, "another coroutine is already receiving on this WebSocket");
  return nx_task_suspend(L, t, NX_WAIT_RECV, c, timeout);
}

/* close_info(box) -> code, reason: how the connection ended (or is ending). */
static int l_close_info(lua_State *L) {
  push_closed(L, check_box(L, 1));
  return 2;
}

/* bind(ws): the calling handler task's WebSocket. When the task ends, its
 * listener's finisher gets it (see task_finished in runtime.c). */
static int l_bind(lua_State *L) {
  nx_task_t *t = nx_rt_current(L, "bind");
  luaL_checktype(L, 1, LUA_TTABLE);
  if (!t->listener || t->ws_ref != LUA_NOREF)
    return luaL_error(L, "bind: not a connection's handler, or bound already");
  lua_settop(L, 1);
  t->ws_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* wait_drain(box): suspends the calling task until the connection's output
 * is below half the high-water mark, or the connection ends. */
static int l_wait_drain(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  nx_conn_t *c = b->conn;
  nx_task_t *t = nx_rt_current(L, "send");
  if (!c || c->closing_handles || nx_conn_buffered(c) <= c->listener->cfg.write_high_water)
    return 0;
  return nx_task_suspend(L, t, NX_WAIT_DRAIN, c, -1);
}

/* send(box, data, binary) -> true | true, "drain" | nil, "wait"
 *   | nil, "closed", code, reason | nil, "closing", code, reason
 *   | nil, "utf8". "drain": the caller is the connection's own handler, or
 * a task it spawned (inherit_home in lua_core.c), and the output is above
 * the high-water mark; it should wait_drain() before sending more. "wait":
 * such a caller found the output above the mark before this message, which
 * was not sent: wait_drain(), then send it. Never yields. */
/* 1 if c's output is over the high-water mark once the socket has taken
 * what it takes now. */
static int over_high_water(nx_conn_t *c) {
  if (nx_conn_buffered(c) <= c->listener->cfg.write_high_water)
    return 0;
  nx_conn_flush(c);
  return !c->closing_handles && nx_conn_buffered(c) > c->listener->cfg.write_high_water;
}

static int l_send(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int binary = lua_toboolean(L, 3);
  nx_conn_t *c = b->conn;
  nx_rt_t *rt;
  int paced;

  if (!c || c->state == NX_CONN_DONE)
    return push_closed(L, b);
  if (c->state == NX_CONN_CLOSING) {
    /* Our close frame is out: the app's own close(), or a server shutdown. */
    push_closed(L, b);
    lua_pushliteral(L, "closing");
    lua_replace(L, -4);
    return 4;
  }
  if (c->state != NX_CONN_OPEN)
    return luaL_error(L, "cannot send before accept()");
  if (!binary && !nx_utf8_valid((const uint8_t *)data, len)) {
    lua_pushnil(L);
    lua_pushliteral(L, "utf8");
    return 2;
  }
  rt = c->rt;
  paced = rt->current && rt->current->co == L &&
          (rt->current == c->owner || (rt->current->box && rt->current->box->home == b));
  if (paced && over_high_water(c)) {
    /* Over the mark already (other tasks of the handler sent in this
     * turn): wait first, then send, so that many of them together stay
     * near the mark instead of reaching the write limit. */
    lua_pushnil(L);
    lua_pushliteral(L, "wait");
    return 2;
  }
  if (nx_conn_send(c, binary ? NX_WS_OP_BINARY : NX_WS_OP_TEXT, data, len))
    return push_closed(L, b);
  if (paced && b->conn && over_high_water(c)) {
    /* The handler outpaces its own client: it should wait_drain. */
    lua_pushboolean(L, 1);
    lua_pushliteral(L, "drain");
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* The fast path of take and send for nexlua's own Lua code, called through
 * LuaJIT's FFI (lua/nexlua/private/fastpath.lua) so that a compiled loop
 * reaches them without the Lua C API. Only the common case: they never
 * yield, never raise, and whatever they do not handle they leave untouched
 * for take() and send(). */

/* A queued message: 1 (text) or 2 (binary) with *data and *len set, valid
 * until the next call or the end of the loop turn (the caller copies it at
 * once); 0: none queued (or not a box): call take(). */
int nx_ffi_take(nx_box_t *b, const char **data, size_t *len) {
  nx_conn_t *c;
  nx_msg_t *m;
  if (!b || b->mark != NX_BOX_MARK || !(c = b->conn))
    return 0;
  nx_rt_release_ffi_msg(c->rt); /* the previous one was copied long since */
  if (!(m = nx_conn_pop(c)))
    return 0;
  c->rt->ffi_msg = m;
  *data = (const char *)m->data;
  *len = m->len;
  return m->opcode == NX_WS_OP_TEXT ? 1 : 2;
}

/* 0: sent. 1: nothing done, call send() (not open, text that is not UTF-8,
 * or output past the high-water mark, where send() decides on a wait).
 * 2: the connection failed while queueing (as send()'s "closed"). */
int nx_ffi_send(nx_box_t *b, const char *data, size_t len, int kind) {
  nx_conn_t *c;
  if (!b || b->mark != NX_BOX_MARK || !(c = b->conn) || c->state != NX_CONN_OPEN)
    return 1;
  if (nx_conn_buffered(c) + len + 14 > c->listener->cfg.write_high_water)
    return 1;
  if (kind == NX_FFI_TEXT && !nx_utf8_valid((const uint8_t *)data, len))
    return 1;
  return nx_conn_send(c, kind == NX_FFI_BINARY ? NX_WS_OP_BINARY : NX_WS_OP_TEXT, data, len) ? 2
                                                                                             : 0;
}

/* close(box, code, reason): the closing handshake from our side. Without a
 * code (the handler returned), the peer's close waiting for its answer is
 * echoed with its code (RFC 6455 §5.5.1), else 1000. */
static int l_close(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  nx_conn_t *c = b->conn;
  int code;
  size_t rlen = 0;
  const char *reason = luaL_optlstring(L, 3, NULL, &rlen);
  if (!lua_isnoneornil(L, 2))
    code = (int)luaL_checkinteger(L, 2);
  else if (c && c->close_received)
    code = c->close_code == 1005 ? 0 : c->close_code;
  else
    code = 1000;
  if (c && c->state == NX_CONN_OPEN)
    nx_conn_close_frame(c, (unsigned)code, reason, rlen);
  return 0;
}

/* state(box) -> "connecting" | "open" | "closing" | "closed" */
static int l_state(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  nx_conn_t *c = b->conn;
  if (!c || c->state == NX_CONN_DONE)
    lua_pushliteral(L, "closed");
  else if (c->state == NX_CONN_OPEN)
    lua_pushliteral(L, "open");
  else if (c->state == NX_CONN_CLOSING)
    lua_pushliteral(L, "closing");
  else
    lua_pushliteral(L, "connecting");
  return 1;
}

static int l_buffered(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  lua_pushnumber(L, b->conn ? (lua_Number)nx_conn_buffered(b->conn) : 0);
  return 1;
}

/* ---- Topics (pubsub.c) ----------------------------------------------- */

/* The connection of box for a topic call: NULL (and nil, "closed", ...
 * pushed) once it has ended; an error before accept. */
static nx_conn_t *topic_conn(lua_State *L, nx_box_t *b, const char *what) {
  nx_conn_t *c = b->conn;
  if (c && (c->state == NX_CONN_HTTP || c->state == NX_CONN_ROUTING)) {
    luaL_error(L, "cannot %s before accept()", what);
    return NULL;
  }
  if (!c || c->state != NX_CONN_OPEN) {
    push_closed(L, b);
    return NULL;
  }
  return c;
}

/* subscribe(box, topic) -> true (new) | false (already) | nil, "closed", code, reason */
static int l_subscribe(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  size_t len;
  const char *topic = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, len > 0, 2, "the topic must not be empty");
  nx_conn_t *c = topic_conn(L, b, "subscribe");
  int r;
  if (!c)
    return 4;
  r = nx_pubsub_subscribe(c->rt, c, topic, len);
  if (r < 0)
    return luaL_error(L, "out of memory subscribing to a topic");
  lua_pushboolean(L, r);
  return 1;
}

/* The connection (NULL once ended) and the topic of a (box, topic) call. */
static nx_conn_t *conn_topic(lua_State *L, const char **topic, size_t *len) {
  nx_box_t *b = check_box(L, 1);
  *topic = luaL_checklstring(L, 2, len);
  return b->conn;
}

/* unsubscribe(box, topic) -> true (was subscribed) | false */
static int l_unsubscribe(lua_State *L) {
  size_t len;
  const char *topic;
  nx_conn_t *c = conn_topic(L, &topic, &len);
  lua_pushboolean(L, c && nx_pubsub_unsubscribe(c->rt, c, topic, len));
  return 1;
}

/* subscribed(box, topic) -> boolean */
static int l_subscribed(lua_State *L) {
  size_t len;
  const char *topic;
  nx_conn_t *c = conn_topic(L, &topic, &len);
  lua_pushboolean(L, c && nx_pubsub_is_subscribed(c->rt, c, topic, len));
  return 1;
}

static void add_topic(const char *topic, size_t len, void *ud) {
  lua_State *L = (lua_State *)ud;
  lua_pushlstring(L, topic, len);
  lua_rawseti(L, -2, (int)lua_objlen(L, -2) + 1);
}

/* topics(box) -> { topic, ... } (empty once the connection ended) */
static int l_topics(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  lua_newtable(L);
  if (b->conn)
    nx_pubsub_each_topic(b->conn, add_topic, L);
  return 1;
}

/* publish(topic, data, binary, except_box|nil) -> receivers | nil, "utf8" */
static int l_publish(lua_State *L) {
  size_t tlen, len;
  const char *topic = luaL_checklstring(L, 1, &tlen);
  const char *data = luaL_checklstring(L, 2, &len);
  int binary = lua_toboolean(L, 3);
  luaL_argcheck(L, tlen > 0, 1, "the topic must not be empty");
  nx_conn_t *except = lua_isnoneornil(L, 4) ? NULL : check_box(L, 4)->conn;
  nx_rt_t *rt = nx_rt_get(L);
  int opcode;
  if (!binary && !nx_utf8_valid((const uint8_t *)data, len)) {
    lua_pushnil(L);
    lua_pushliteral(L, "utf8");
    return 2;
  }
  opcode = binary ? NX_WS_OP_BINARY : NX_WS_OP_TEXT;
  lua_pushnumber(L, (lua_Number)nx_pubsub_publish(rt, topic, tlen, opcode, data, len, except));
  if (rt->relay) /* the subscribers of the other workers */
    nx_relay_send(rt, topic, tlen, opcode, data, len);
  if (rt->redis) /* the subscribers of the other processes on the same Redis */
    nx_redis_publish(rt, topic, tlen, opcode, data, len);
  return 1;
}

/* subscribers(topic) -> count (this process) */
static int l_subscribers(lua_State *L) {
  size_t len;
  const char *topic = luaL_checklstring(L, 1, &len);
  lua_pushnumber(L, nx_pubsub_count(nx_rt_get(L), topic, len));
  return 1;
}

/* request_path(box) -> the raw path of the request (no query) */
static int l_request_path(lua_State *L) {
  nx_request_push_path(L, check_box(L, 1));
  return 1;
}

/* owned(box) -> true when the running task is the handler of box's
 * connection (its middleware included), false from any other task, or once
 * the connection is gone. */
static int l_owned(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  nx_rt_t *rt = nx_rt_get(L);
  lua_pushboolean(L, b->conn && b->conn->owner && b->conn->owner == rt->current);
  return 1;
}

/* request(box) -> the request table (see nx_request_push) */
static int l_request(lua_State *L) {
  nx_request_push(L, check_box(L, 1));
  return 1;
}

/* The close reason and the unread messages became the box's at the
 * connection's end. (free(), not the runtime's pool: at lua_close the
 * runtime may be going.) */
static int box_gc(lua_State *L) {
  nx_box_t *b = (nx_box_t *)lua_touserdata(L, 1);
  nx_msg_t *m;
  free(b->close_reason);
  b->close_reason = NULL;
  while ((m = b->inbox) != NULL) {
    b->inbox = m->next;
    free(m);
  }
  return 0;
}

static int box_tostring(lua_State *L) {
  nx_box_t *b = check_box(L, 1);
  lua_pushfstring(L, "nexlua.connection (%s)", b->conn ? "live" : "ended");
  return 1;
}

void nx_lua_conn_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"accept", l_accept},
                                 {"reject", l_reject},
                                 {"take", l_take},
                                 {"bind", l_bind},
                                 {"close_info", l_close_info},
                                 {"is_box", l_is_box},
                                 {"wait_drain", l_wait_drain},
                                 {"send", l_send},
                                 {"close", l_close},
                                 {"state", l_state},
                                 {"buffered", l_buffered},
                                 {"request", l_request},
                                 {"owned", l_owned},
                                 {"request_path", l_request_path},
                                 {"subscribe", l_subscribe},
                                 {"unsubscribe", l_unsubscribe},
                                 {"subscribed", l_subscribed},
                                 {"topics", l_topics},
                                 {"publish", l_publish},
                                 {"subscribers", l_subscribers},
                                 {NULL, NULL}};
  const luaL_Reg *f;
  nx_rt_t *rt;
  int mt;
  luaL_newmetatable(L, BOX_MT);
  mt = lua_gettop(L);
  rt = nx_rt_get(L);
  if (!rt->box_mt_ref) { /* (a second open finds it set) */
    lua_pushvalue(L, mt);
    rt->box_mt_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_pushvalue(L, mt);
  lua_pushliteral(L, "text");
  lua_pushliteral(L, "binary");
  lua_pushcclosure(L, box_tostring, 3);
  lua_setfield(L, mt, "__tostring");
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, mt, "__gc");
  lua_pushliteral(L, "locked");
  lua_setfield(L, mt, "__metatable");
  for (f = fns; f->name; f++) {
    lua_pushvalue(L, mt);
    lua_pushliteral(L, "text");
    lua_pushliteral(L, "binary");
    lua_pushcclosure(L, f->func, 3);
    lua_setfield(L, mt - 1, f->name);
  }
  lua_pop(L, 1);
}
