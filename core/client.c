/* A WebSocket client on the runtime's loop, for nexlua.testing's
 * TestClient: a real TCP connection to a real listener in the same
 * process, with the client's side of RFC 6455 (masked frames, the accept
 * key checked). Lua drives it by polling while it steps the loop. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lauxlib.h"
#include "llhttp.h"
#include "log.h"
#include "nx.h"
#include "stream.h"

#define CLIENT_MT "nexlua.client"

enum { CL_CONNECTING = 0, CL_HANDSHAKE, CL_OPEN, CL_CLOSED, CL_REJECTED, CL_FAILED };
static const char *const state_names[] = {"connecting", "handshake", "open",
                                          "closed",     "rejected",  "failed"};

typedef struct nx_client_s nx_client_t;

typedef struct {
  nx_client_t *c; /* NULL once freed */
} cbox_t;

struct nx_client_s {
  uv_tcp_t tcp;
  uv_connect_t creq;
  nx_rt_t *rt;
  cbox_t *box;
  int box_ref;
  int state;
  int closed_handle; /* uv_close called */
  int handle_done;   /* its close callback ran */
  llhttp_t http;
  llhttp_settings_t settings;
  int status;
  int head_done, response_done;
  char key[32];
  nx_buf_t head; /* response headers as "name\0value\0" pairs */
  int last_was_value;
  nx_buf_t body;
  nx_ws_parser_t ws;
  nx_msg_t *cur, *inbox, *inbox_tail;
  nx_buf_t out;
  uv_write_t *wreq; /* the write in flight (owning its bytes), or NULL */
  int close_received, close_sent;
  uint16_t close_code;
  char close_reason[124];
  size_t close_reason_len;
  char error[160];
};

static void client_flush(nx_client_t *c);

static void set_state(nx_client_t *c, int st, const char *err) {
  c->state = st;
  if (err)
    snprintf(c->error, sizeof(c->error), "%s", err);
}

static void client_free(nx_client_t *c) {
  nx_msg_t *m;
  while ((m = c->inbox) != NULL) {
    c->inbox = m->next;
    free(m);
  }
  free(c->cur);
  nx_ws_parser_free(&c->ws);
  nx_buf_free(&c->head);
  nx_buf_free(&c->body);
  nx_buf_free(&c->out);
  free(c);
}

/* The struct is freed when both the handle is closed and the Lua box is
 * collected, whichever comes last. */
static void on_closed(uv_handle_t *h) {
  nx_client_t *c = (nx_client_t *)h->data;
  c->handle_done = 1;
  if (!c->box)
    client_free(c);
}

/* Closes the TCP connection; the struct lives until the box is collected. */
static void drop(nx_client_t *c, int st, const char *err) {
  if (c->state != CL_REJECTED && c->state != CL_CLOSED)
    set_state(c, st, err);
  if (!c->closed_handle) {
    c->closed_handle = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  }
}

/* ---- frames ---- */

static int cl_frame_begin(nx_ws_parser_t *p, uint64_t len) {
  nx_client_t *c = (nx_client_t *)p->data;
  if (!c->cur) {
    c->cur = (nx_msg_t *)malloc(sizeof(nx_msg_t) + (size_t)len);
    if (!c->cur) {
      drop(c, CL_FAILED, "out of memory for a message");
      return 1;
    }
    c->cur->len = 0;
    c->cur->cap = (size_t)len;
    c->cur->opcode = p->msg_opcode;
    c->cur->next = NULL;
  } else if (c->cur->len + len > c->cur->cap) {
    nx_msg_t *g = (nx_msg_t *)realloc(c->cur, sizeof(nx_msg_t) + c->cur->len + (size_t)len);
    if (!g) {
      drop(c, CL_FAILED, "out of memory for a message");
      return 1;
    }
    g->cap = g->len + (size_t)len;
    c->cur = g;
  }
  return 0;
}

static int cl_data(nx_ws_parser_t *p, const uint8_t *d, size_t n) {
  nx_client_t *c = (nx_client_t *)p->data;
  memcpy(c->cur->data + c->cur->len, d, n);
  c->cur->len += n;
  return 0;
}

static int cl_message_end(nx_ws_parser_t *p) {
  nx_client_t *c = (nx_client_t *)p->data;
  nx_msg_t *m = c->cur;
  c->cur = NULL;
  if (c->inbox_tail)
    c->inbox_tail->next = m;
  else
    c->inbox = m;
  c->inbox_tail = m;
  return 0;
}

static int send_frame(nx_client_t *c, int opcode, const void *data, size_t len) {
  uint8_t hdr[14], key[4];
  size_t hlen;
  if (c->closed_handle)
    return -1;
  uv_random(NULL, NULL, key, sizeof(key), 0, NULL);
  hlen = nx_ws_frame_header(hdr, 1, 0, opcode, len, key);
  if (nx_buf_reserve(&c->out, hlen + len))
    return -1;
  memcpy(c->out.data + c->out.len, hdr, hlen);
  if (len)
    memcpy(c->out.data + c->out.len + hlen, data, len);
  nx_ws_mask(c->out.data + c->out.len + hlen, len, key, 0);
  c->out.len += hlen + len;
  client_flush(c);
  return 0;
}

static int cl_control(nx_ws_parser_t *p, int opcode, const uint8_t *payload, size_t len) {
  nx_client_t *c = (nx_client_t *)p->data;
  if (opcode == NX_WS_OP_PING) {
    if (!c->close_sent)
      send_frame(c, NX_WS_OP_PONG, payload, len);
    return 0;
  }
  if (opcode == NX_WS_OP_PONG)
    return 0;
  c->close_received = 1;
  c->close_code = len >= 2 ? (uint16_t)((payload[0] << 8) | payload[1]) : 1005;
  if (len > 2) {
    c->close_reason_len = len - 2 < sizeof(c->close_reason) ? len - 2 : sizeof(c->close_reason) - 1;
    memcpy(c->close_reason, payload + 2, c->close_reason_len); /* NUL is valid UTF-8 */
  }
  if (!c->close_sent) {
    c->close_sent = 1;
    send_frame(c, NX_WS_OP_CLOSE, payload, len >= 2 ? 2 : 0);
  }
  set_state(c, CL_CLOSED, NULL);
  return 1;
}

static const nx_ws_callbacks_t cl_callbacks = {NULL,           cl_frame_begin, cl_data,
                                               cl_message_end, cl_control,     NULL};

static void feed_frames(nx_client_t *c, uint8_t *d, size_t n) {
  size_t used = nx_ws_parse(&c->ws, d, n);
  (void)used;
  if (c->ws.error_code) {
    char err[160];
    snprintf(err, sizeof(err), "the server broke the protocol: %s", c->ws.error_reason);
    c->close_code = 1006;
    drop(c, CL_FAILED, err);
  }
}

/* ---- the HTTP response ---- */

static int on_status_cb(llhttp_t *p) {
  (void)p;
  return 0;
}

static int on_hfield(llhttp_t *p, const char *at, size_t n) {
  nx_client_t *c = (nx_client_t *)p->data;
  if (c->last_was_value || c->head.len == 0) {
    if (c->head.len)
      nx_buf_append(&c->head, "", 1); /* end the previous value */
    c->last_was_value = 0;
  }
  return nx_buf_append(&c->head, at, n);
}

static int on_hvalue(llhttp_t *p, const char *at, size_t n) {
  nx_client_t *c = (nx_client_t *)p->data;
  if (!c->last_was_value) {
    nx_buf_append(&c->head, "", 1); /* end the name */
    c->last_was_value = 1;
  }
  return nx_buf_append(&c->head, at, n);
}

static int on_hdone(llhttp_t *p) {
  nx_client_t *c = (nx_client_t *)p->data;
  if (c->head.len)
    nx_buf_append(&c->head, "", 1);
  c->status = p->status_code;
  c->head_done = 1;
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  nx_client_t *c = (nx_client_t *)p->data;
  return nx_buf_append(&c->body, at, n);
}

static int on_done(llhttp_t *p) {
  nx_client_t *c = (nx_client_t *)p->data;
  c->response_done = 1;
  /* A 101 ends the HTTP part: llhttp then pauses with HPE_PAUSED_UPGRADE. */
  return p->status_code == 101 ? 0 : HPE_PAUSED;
}

/* Finds a response header (case-insensitive name); NULL if absent. */
static const char *find_header(nx_client_t *c, const char *name) {
  size_t i = 0;
  while (i < c->head.len) {
    const char *n = (const char *)c->head.data + i;
    const char *v = n + strlen(n) + 1;
    if ((size_t)(v - (const char *)c->head.data) > c->head.len)
      break;
    if (strcasecmp(n, name) == 0)
      return v;
    i = (size_t)(v - (const char *)c->head.data) + strlen(v) + 1;
  }
  return NULL;
}

static void on_response_bytes(nx_client_t *c, const char *d, size_t n) {
  llhttp_errno_t err = llhttp_execute(&c->http, d, n);
  if (err == HPE_PAUSED_UPGRADE && c->status == 101) {
    char expect[29];
    const char *acc = find_header(c, "sec-websocket-accept");
    size_t used = (size_t)(llhttp_get_error_pos(&c->http) - d);
    nx_http_accept_key(c->key, expect);
    if (!acc || strcmp(acc, expect) != 0) {
      drop(c, CL_FAILED, "the server's Sec-WebSocket-Accept is wrong");
      return;
    }
    set_state(c, CL_OPEN, NULL);
    if (used < n)
      feed_frames(c, (uint8_t *)d + used, n - used);
    return;
  }
  if (err == HPE_OK || (err == HPE_PAUSED && c->response_done)) {
    if (c->response_done) {
      set_state(c, CL_REJECTED, NULL);
      drop(c, CL_REJECTED, NULL);
    }
    return;
  }
  drop(c, CL_FAILED, llhttp_get_error_reason(&c->http));
}

static void on_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  nx_client_t *c = (nx_client_t *)h->data;
  (void)s;
  *b = uv_buf_init((char *)c->rt->readbuf, sizeof(c->rt->readbuf));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  nx_client_t *c = (nx_client_t *)s->data;
  (void)b;
  if (n < 0) {
    if (c->state == CL_HANDSHAKE) {
      if (llhttp_finish(&c->http) == HPE_OK && c->head_done) {
        set_state(c, CL_REJECTED, NULL);
      } else {
        set_state(c, CL_FAILED, "the server closed the connection during the handshake");
      }
    } else if (c->state == CL_OPEN) {
      c->close_code = 1006;
      set_state(c, CL_CLOSED, NULL);
    }
    drop(c, c->state, NULL);
    nx_rt_run_ready(c->rt);
    return;
  }
  if (c->state == CL_HANDSHAKE)
    on_response_bytes(c, (const char *)c->rt->readbuf, (size_t)n);
  else if (c->state == CL_OPEN || c->state == CL_CLOSED)
    feed_frames(c, c->rt->readbuf, (size_t)n);
  nx_rt_run_ready(c->rt);
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status) {
  nx_client_t *c = (nx_client_t *)req->data;
  nx_stream_done(req);
  c->wreq = NULL;
  if (status < 0 || c->closed_handle)
    return;
  client_flush(c);
}

static void client_flush(nx_client_t *c) {
  if (c->wreq || !nx_buf_size(&c->out) || c->closed_handle || c->state == CL_CONNECTING)
    return;
  /* (a write in flight is c->wreq; an error ends the client elsewhere) */
  nx_stream_write((uv_stream_t *)&c->tcp, &c->out, NULL, 0, &c->wreq, on_write, c);
}

static void on_connect(uv_connect_t *req, int status) {
  nx_client_t *c = (nx_client_t *)req->data;
  if (status < 0) {
    char err[160];
    snprintf(err, sizeof(err), "cannot connect: %s", uv_strerror(status));
    drop(c, CL_FAILED, err);
    return;
  }
  set_state(c, CL_HANDSHAKE, NULL);
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  client_flush(c);
}

/* ---- Lua ---- */

static nx_client_t *check_client(lua_State *L) {
  cbox_t *b = (cbox_t *)luaL_checkudata(L, 1, CLIENT_MT);
  if (!b->c)
    luaL_error(L, "the test client is gone");
  return b->c;
}

static int cbox_gc(lua_State *L) {
  cbox_t *b = (cbox_t *)luaL_checkudata(L, 1, CLIENT_MT);
  nx_client_t *c = b->c;
  if (!c)
    return 0;
  b->c = NULL;
  c->box = NULL;
  if (!c->closed_handle) {
    c->closed_handle = 1;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  } else if (c->handle_done) {
    client_free(c);
  }
  return 0;
}

/* client_connect(host, port, target, header_lines) -> client */
static int l_client_connect(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  const char *host = luaL_checkstring(L, 1);
  int port = (int)luaL_checkinteger(L, 2);
  const char *target = luaL_checkstring(L, 3);
  const char *extra = luaL_optstring(L, 4, "");
  struct sockaddr_storage addr;
  unsigned char raw[16];
  char head[1024];
  int n;
  nx_client_t *c;
  cbox_t *b;

  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr))
    return luaL_error(L, "bad address %s", host);
  c = (nx_client_t *)calloc(1, sizeof(*c));
  if (!c)
    return luaL_error(L, "out of memory");
  c->rt = rt;
  uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL);
  EVP_EncodeBlock((unsigned char *)c->key, raw, sizeof(raw));
  llhttp_settings_init(&c->settings);
  c->settings.on_status_complete = on_status_cb;
  c->settings.on_header_field = on_hfield;
  c->settings.on_header_value = on_hvalue;
  c->settings.on_headers_complete = on_hdone;
  c->settings.on_body = on_body;
  c->settings.on_message_complete = on_done;
  llhttp_init(&c->http, HTTP_RESPONSE, &c->settings);
  c->http.data = c;
  c->ws.max_message_size = 256u * 1024 * 1024; /* a test client trusts no length */
  nx_ws_parser_init(&c->ws, &cl_callbacks, c, NX_WS_ROLE_CLIENT);
  n = snprintf(head, sizeof(head),
               "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
               target, host, port, c->key);
  nx_buf_append(&c->out, head, (size_t)n);
  nx_buf_append(&c->out, extra, strlen(extra));
  nx_buf_append(&c->out, "\r\n", 2);

  b = (cbox_t *)lua_newuserdata(L, sizeof(*b));
  b->c = c;
  c->box = b;
  if (luaL_newmetatable(L, CLIENT_MT)) {
    lua_pushcfunction(L, cbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  uv_tcp_init(rt->loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr, on_connect))
    drop(c, CL_FAILED, "cannot connect");
  return 1;
}

/* client_state(c) -> state, error | status, body, {name, value, ...} */
static int l_client_state(lua_State *L) {
  nx_client_t *c = check_client(L);
  size_t i = 0;
  int k = 1;
  lua_pushstring(L, state_names[c->state]);
  lua_pushstring(L, c->error);
  lua_pushinteger(L, c->status);
  lua_pushlstring(L, (const char *)c->body.data, c->body.len);
  lua_newtable(L);
  while (i < c->head.len) {
    const char *s = (const char *)c->head.data + i;
    size_t len = strlen(s);
    lua_pushlstring(L, s, len);
    lua_rawseti(L, -2, k++);
    i += len + 1;
  }
  return 5;
}

/* client_recv(c) -> data, kind | nil, "closed", code, reason | nil */
static int l_client_recv(lua_State *L) {
  nx_client_t *c = check_client(L);
  nx_msg_t *m = c->inbox;
  if (m) {
    c->inbox = m->next;
    if (!c->inbox)
      c->inbox_tail = NULL;
    lua_pushlstring(L, (const char *)m->data, m->len);
    lua_pushstring(L, m->opcode == NX_WS_OP_TEXT ? "text" : "binary");
    free(m);
    return 2;
  }
  if (c->state == CL_CLOSED || c->state == CL_FAILED) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    lua_pushinteger(L, c->close_code ? c->close_code : 1006);
    lua_pushlstring(L, c->close_reason, c->close_reason_len);
    return 4;
  }
  return 0;
}

/* client_send(c, data, opcode) -> true | false when closed */
static int l_client_send(lua_State *L) {
  nx_client_t *c = check_client(L);
  size_t len;
  const char *d = luaL_checklstring(L, 2, &len);
  int op = (int)luaL_optinteger(L, 3, NX_WS_OP_TEXT);
  lua_pushboolean(L, c->state == CL_OPEN && !c->close_sent && send_frame(c, op, d, len) == 0);
  return 1;
}

/* client_close(c, code, reason): sends a close frame (once). */
static int l_client_close(lua_State *L) {
  nx_client_t *c = check_client(L);
  int code = (int)luaL_optinteger(L, 2, 1000);
  size_t rlen = 0;
  const char *reason = luaL_optlstring(L, 3, NULL, &rlen);
  uint8_t payload[125];
  size_t n;
  if (c->state == CL_OPEN && !c->close_sent) {
    n = nx_ws_close_payload(payload, (unsigned)code, reason, rlen);
    c->close_sent = 1;
    send_frame(c, NX_WS_OP_CLOSE, payload, n);
  }
  return 0;
}

/* client_abort(c): drops the TCP connection without a close frame. */
static int l_client_abort(lua_State *L) {
  nx_client_t *c = check_client(L);
  if (c->state == CL_OPEN)
    c->close_code = 1006;
  drop(c, CL_CLOSED, NULL);
  return 0;
}

void nx_lua_client_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"client_connect", l_client_connect},
                                 {"client_state", l_client_state},
                                 {"client_recv", l_client_recv},
                                 {"client_send", l_client_send},
                                 {"client_close", l_client_close},
                                 {"client_abort", l_client_abort},
                                 {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
