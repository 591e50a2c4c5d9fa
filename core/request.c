/* The request a connection was opened with, as its box keeps it: the
 * head in one compact block (written by http.c at the dispatch) and the
 * peer's address, so that a handler can read them for as long as it holds
 * the WebSocket, even after the connection is gone. The Lua table is built
 * here, only when the app asks for it. */
#include <string.h>
#include <strings.h>

#include "llhttp.h"
#include "nx.h"

void nx_request_store_peer(nx_box_t *b, nx_conn_t *c) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  b->client_family = 0;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len))
    return;
  if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    memcpy(b->client_ip, &a->sin6_addr, 16);
    b->client_port = ntohs(a->sin6_port);
    b->client_family = 6;
  } else if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    memcpy(b->client_ip, &a->sin_addr, 4);
    b->client_port = ntohs(a->sin_port);
    b->client_family = 4;
  }
}

static size_t path_len(const nx_box_t *b) {
  const uint8_t *q = memchr(b->head, '?', b->url_len);
  return q ? (size_t)(q - b->head) : b->url_len;
}

void nx_request_push_path(lua_State *L, const nx_box_t *b) {
  lua_pushlstring(L, (const char *)b->head, path_len(b));
}

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
  size_t plen = path_len(b);
  const uint8_t *p = b->head + b->url_len;
  uint32_t i;

  lua_createtable(L, 0, 8);
  lua_pushstring(L, llhttp_method_name((llhttp_method_t)b->method));
  lua_setfield(L, -2, "method");
  lua_pushlstring(L, url, b->url_len);
  lua_setfield(L, -2, "target");
  lua_pushlstring(L, url, plen);
  lua_setfield(L, -2, "path");
  if (plen < b->url_len)
    lua_pushlstring(L, url + plen + 1, b->url_len - plen - 1);
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
