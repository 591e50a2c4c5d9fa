/* WebSocket opening handshake validation. See handshake.h. */
#include "handshake.h"

#include <string.h>

#include "token.h"

int nx_header_has_token(const char *v, size_t len, const char *token) {
  size_t i = 0;
  while (i < len) {
    size_t start, end;
    while (i < len && (nx_is_ows(v[i]) || v[i] == ','))
      i++;
    start = i;
    while (i < len && v[i] != ',')
      i++;
    end = i;
    while (end > start && nx_is_ows(v[end - 1]))
      end--;
    if (end > start && nx_token_ieq(v + start, end - start, token))
      return 1;
  }
  return 0;
}

const nx_header_t *nx_header_find(const nx_request_t *req, const char *name, int *count) {
  const nx_header_t *found = NULL;
  size_t i;
  int n = 0;
  for (i = 0; i < req->nheaders; i++) {
    if (nx_token_ieq(req->headers[i].name, req->headers[i].name_len, name)) {
      if (!found)
        found = &req->headers[i];
      n++;
    }
  }
  if (count)
    *count = n;
  return found;
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int nx_handshake_key_valid(const char *s, size_t len) {
  size_t i;
  /* 16 bytes encode to 22 significant characters plus "==". */
  if (len != 24 || s[22] != '=' || s[23] != '=')
    return 0;
  for (i = 0; i < 22; i++)
    if (b64_value(s[i]) < 0)
      return 0;
  /* The last character carries 2 data bits; its low 4 bits must be zero. */
  return (b64_value(s[21]) & 0x0f) == 0;
}

static int reject(nx_handshake_t *out, int status, const char *why) {
  out->status = status;
  out->error = why;
  return status;
}

int nx_handshake_check(const nx_request_t *req, nx_handshake_t *out) {
  const nx_header_t *h;
  int n, upgrade_ok = 0;
  size_t i;
  const char *v;
  size_t vlen;

  memset(out, 0, sizeof(*out));
  if (!nx_token_ieq(req->method, req->method_len, "GET"))
    return reject(out, 405, "only GET can upgrade to WebSocket");
  if (req->http_major < 1 || (req->http_major == 1 && req->http_minor < 1))
    return reject(out, 400, "WebSocket requires HTTP/1.1");
  if (!nx_header_find(req, "host", &n) || n != 1)
    return reject(out, 400, "missing or repeated Host header");

  if (!nx_header_find(req, "upgrade", &n))
    return reject(out, 426, "this endpoint speaks WebSocket: send an Upgrade request");
  for (i = 0; i < req->nheaders; i++) {
    h = &req->headers[i];
    if (nx_token_ieq(h->name, h->name_len, "upgrade") &&
        nx_header_has_token(h->value, h->value_len, "websocket"))
      upgrade_ok = 1;
  }
  if (!upgrade_ok)
    return reject(out, 400, "Upgrade header does not name websocket");
  upgrade_ok = 0;
  for (i = 0; i < req->nheaders; i++) {
    h = &req->headers[i];
    if (nx_token_ieq(h->name, h->name_len, "connection") &&
        nx_header_has_token(h->value, h->value_len, "upgrade"))
      upgrade_ok = 1;
  }
  if (!upgrade_ok)
    return reject(out, 400, "Connection header does not contain Upgrade");

  h = nx_header_find(req, "sec-websocket-version", &n);
  if (!h)
    return reject(out, 400, "missing Sec-WebSocket-Version");
  v = h->value;
  vlen = h->value_len;
  nx_trim_ows(&v, &vlen);
  if (n != 1)
    return reject(out, 400, "repeated Sec-WebSocket-Version");
  if (vlen != 2 || memcmp(v, "13", 2) != 0)
    return reject(out, 426, "unsupported Sec-WebSocket-Version (13 is supported)");

  h = nx_header_find(req, "sec-websocket-key", &n);
  if (!h || n != 1)
    return reject(out, 400, "missing or repeated Sec-WebSocket-Key");
  v = h->value;
  vlen = h->value_len;
  nx_trim_ows(&v, &vlen);
  if (!nx_handshake_key_valid(v, vlen))
    return reject(out, 400, "Sec-WebSocket-Key is not base64 of 16 bytes");
  out->key = v;
  out->key_len = vlen;
  return 0;
}
