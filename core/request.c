/* The request a connection was opened with, as its box keeps it: the
 * head in one compact block (written by http.c at the dispatch) and the
 * peer's address, so that a handler can read them for as long as it holds
 * the WebSocket, even after the connection is gone. The Lua table is built
 * here, only when the app asks for it. */
#include <string.h>
#include <strings.h>

#include "handshake.h"
#include "llhttp.h"
#include "nx.h"

int nx_peer_address(const uv_tcp_t *tcp, uint8_t ip[16], uint16_t *port) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len))
    return 0;
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    memcpy(ip, &a->sin6_addr, 16);
    *port = ntohs(a->sin6_port);
    return 6;
  }
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    memcpy(ip, &a->sin_addr, 4);
    *port = ntohs(a->sin_port);
    return 4;
  }
  return 0;
}

void nx_request_store_peer(nx_box_t *b, nx_conn_t *c) {
  b->client_family = (uint8_t)nx_peer_address(&c->tcp, b->client_ip, &b->client_port);
}

/* The request target split: where its origin form (path and query) starts
 * (past "scheme://authority" in the absolute form: see nx_target_split,
 * which the handshake check passed), and where the path ends (at '?'). */
typedef struct {
  size_t origin, path_end;
} nx_target_t;

static nx_target_t split_target(const nx_box_t *b) {
  const uint8_t *u = b->head, *q;
  size_t n = b->url_len;
  nx_target_t t = {0, 0};
  if (nx_target_split((const char *)u, n, &t.origin))
    t.origin = 0;
  q = memchr(u + t.origin, '?', n - t.origin);
  t.path_end = q ? (size_t)(q - u) : n;
  return t;
}

/* The path; "/" for an absolute-form target without one ("ws://host"). */
static void push_path(lua_State *L, const nx_box_t *b, nx_target_t t) {
  if (t.path_end == t.origin && t.origin > 0)
    lua_pushliteral(L, "/");
  else
    lua_pushlstring(L, (const char *)b->head + t.origin, t.path_end - t.origin);
}

void nx_request_push_path(lua_State *L, const nx_box_t *b) { push_path(L, b, split_target(b)); }

static void push_client(lua_State *L, const nx_box_t *b) {
  char host[64] = "";
  if (b->client_family == 4)
    uv_inet_ntop(AF_INET, b->client_ip, host, sizeof(host));
  else if (b->client_family == 6)
    uv_inet_ntop(AF_INET6, b->client_ip, host, sizeof(host));
  lua_pushstring(L, host);
  lua_setfield(L, -2, "client_host");
  lua_pushinteger(L, b->client_port);
  lua_setfield(L, -2, "client_port");
}

void nx_request_push(lua_State *L, const nx_box_t *b) {
  const char *url = (const char *)b->head;
  nx_target_t t = split_target(b);
  const uint8_t *p = b->head + b->url_len;
  uint32_t i;

  lua_createtable(L, 0, 9);
  lua_pushstring(L, llhttp_method_name((llhttp_method_t)b->method));
  lua_setfield(L, -2, "method");
  if (t.origin > 0) {
    /* An absolute-form target names the authority the Host header would. */
    const char *a = (const char *)memchr(url, ':', t.origin) + 3;
    lua_pushlstring(L, a, (size_t)(url + t.origin - a));
    lua_setfield(L, -2, "authority");
  }
  push_path(L, b, t);
  lua_pushlstring(L, url + t.path_end, b->url_len - t.path_end);
  lua_concat(L, 2);
  lua_setfield(L, -2, "target"); /* the origin form: path and "?query" */
  push_path(L, b, t);
  lua_setfield(L, -2, "path");
  if (t.path_end < b->url_len)
    lua_pushlstring(L, url + t.path_end + 1, b->url_len - t.path_end - 1);
  else
    lua_pushliteral(L, "");
  lua_setfield(L, -2, "query");
  lua_pushstring(L, b->tls ? "wss" : "ws");
  lua_setfield(L, -2, "scheme");
  push_client(L, b);
  lua_createtable(L, (int)b->nheaders * 2, 0);
  for (i = 0; i < b->nheaders; i++) {
    uint32_t lens[2];
    memcpy(lens, p, 8);
    p += 8;
    lua_pushlstring(L, (const char *)p, lens[0]);
    lua_rawseti(L, -2, (int)(2 * i + 1));
    p += lens[0];
    lua_pushlstring(L, (const char *)p, lens[1]);
    lua_rawseti(L, -2, (int)(2 * i + 2));
    p += lens[1];
  }
  lua_setfield(L, -2, "headers");
}

const char *nx_request_header(const nx_box_t *b, const char *name, size_t *len) {
  const uint8_t *p = b->head + b->url_len;
  size_t nlen = strlen(name);
  uint32_t i;
  for (i = 0; i < b->nheaders; i++) {
    uint32_t lens[2];
    memcpy(lens, p, 8);
    p += 8;
    if (lens[0] == nlen && strncasecmp((const char *)p, name, nlen) == 0) {
      *len = lens[1];
      return (const char *)p + lens[0];
    }
    p += lens[0] + lens[1];
  }
  return NULL;
}
