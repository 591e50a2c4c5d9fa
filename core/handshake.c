/* WebSocket opening handshake validation. See handshake.h. */
#include "handshake.h"

#include <string.h>

#include "token.h"

/* The next non-empty element of a comma-separated list (RFC 9110 §5.6.1),
 * from *i: its bounds without the whitespace around it. 0 at the end. */
static int next_element(const char *v, size_t len, size_t *i, size_t *start, size_t *end) {
  while (*i < len && (nx_is_ows(v[*i]) || v[*i] == ','))
    (*i)++;
  if (*i >= len)
    return 0;
  *start = *i;
  while (*i < len && v[*i] != ',')
    (*i)++;
  *end = *i;
  while (*end > *start && nx_is_ows(v[*end - 1]))
    (*end)--;
  return 1;
}

int nx_header_has_token(const char *v, size_t len, const char *token) {
  size_t i = 0, start, end;
  while (next_element(v, len, &i, &start, &end))
    if (nx_token_ieq(v + start, end - start, token))
      return 1;
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

/* One more than each byte's value as a base64 digit (RFC 4648 §4); 0 for
 * a byte that is not one: a single lookup per character of the key. */
static const unsigned char b64_digit1[256] = {
    ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
    ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
    ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
    ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
    ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
    ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

static int b64_value(char c) { return (int)b64_digit1[(unsigned char)c] - 1; }

int nx_handshake_key_valid(const char *s, size_t len) {
  size_t i;
  int bad = 0;
  /* 16 bytes encode to 22 significant characters plus "==". */
  if (len != 24 || s[22] != '=' || s[23] != '=')
    return 0;
  for (i = 0; i < 22; i++)
    bad |= b64_value(s[i]);
  /* The last character carries 2 data bits; its low 4 are padding, which
   * RFC 4648 §3.5 lets a decoder refuse when not zero. Not here: a client
   * that makes its key from 22 random base64 characters would be refused
   * three times in four, and the key is only ever hashed as it is. */
  return bad >= 0;
}

static int hex_digit(char c) {
  return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* RFC 3986 §2.2-2.3: unreserved or sub-delims. */
static int host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         (c && strchr("-._~!$&'()*+,;=", c) != NULL);
}

int nx_host_valid(const char *v, size_t n) {
  size_t i = 0;
  if (n && v[0] == '[') { /* IP-literal: IPv6address or IPvFuture */
    for (i = 1; i < n && v[i] != ']'; i++)
      if (!host_char(v[i]) && v[i] != ':')
        return 0;
    if (i == n || i == 1)
      return 0;
    i++;
  } else {
    for (; i < n && v[i] != ':'; i++) {
      if (v[i] == '%') {
        if (i + 2 >= n || !hex_digit(v[i + 1]) || !hex_digit(v[i + 2]))
          return 0;
        i += 2;
      } else if (!host_char(v[i])) {
        return 0;
      }
    }
  }
  if (i < n && v[i++] != ':')
    return 0;
  for (; i < n; i++)
    if (v[i] < '0' || v[i] > '9')
      return 0;
  return 1;
}

static int scheme_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '-' || c == '.';
}

int nx_target_split(const char *u, size_t n, size_t *origin) {
  size_t i = 0, host;
  *origin = 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)u[i];
    if (c <= ' ' || c >= 0x7f || c == '#')
      return -1;
  }
  i = 0;
  if (n && u[0] == '/')
    return 0;
  while (i < n && scheme_char(u[i]))
    i++;
  if (i == 0 || !((u[0] >= 'a' && u[0] <= 'z') || (u[0] >= 'A' && u[0] <= 'Z')) || i + 3 > n ||
      memcmp(u + i, "://", 3) != 0)
    return -1;
  host = i += 3;
  while (i < n && u[i] != '/' && u[i] != '?')
    i++;
  if (i == host || u[host] == ':' || !nx_host_valid(u + host, i - host))
    return -1; /* no host, userinfo, or not a host */
  *origin = i;
  return 0;
}

static int reject(nx_handshake_t *out, int status, const char *why) {
  out->status = status;
  out->error = why;
  return status;
}

/* What the upgrade depends on, gathered in one pass over the headers (the
 * checks below then run in their documented order). Names are told apart by
 * length first: most headers of a request are none of these. */
typedef struct {
  int host, upgrade, upgrade_ws, connection_upgrade, version, key;
  int bad_name, bad_protocol, expect_continue;
  const nx_header_t *host_h, *version_h, *key_h, *te_h; /* te_h: the last one */
} seen_t;

/* 1 if every element of a comma-separated list is a token (empty elements
 * are allowed and skipped, RFC 9110 §5.6.1). */
static int token_list(const char *v, size_t len) {
  size_t i = 0, start, end;
  while (next_element(v, len, &i, &start, &end))
    for (; start < end; start++)
      if (!nx_is_tchar((unsigned char)v[start]))
        return 0;
  return 1;
}

/* 1 if the last non-empty element of a comma-separated list is token. */
static int last_element_is(const char *v, size_t len, const char *token) {
  size_t i = 0, start, end, last = 0, last_end = 0;
  while (next_element(v, len, &i, &start, &end))
    last = start, last_end = end;
  return last_end > last && nx_token_ieq(v + last, last_end - last, token);
}

/* 1 if the n bytes at a are lit, a lowercase token, in any case: a letter
 * of lit matches itself or its capital (the two differ only in bit 0x20),
 * any other byte only itself. */
static int name_is(const char *a, const char *lit, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)a[i], l = (unsigned char)lit[i];
    if (c != l && ((c | 0x20) != l || l < 'a' || l > 'z'))
      return 0;
  }
  return 1;
}

static void scan_headers(const nx_request_t *req, seen_t *s) {
  size_t i;
  memset(s, 0, sizeof(*s));
  for (i = 0; i < req->nheaders; i++) {
    const nx_header_t *h = &req->headers[i];
    if (!h->name_len || memchr(h->name, ' ', h->name_len) || memchr(h->name, '\t', h->name_len))
      s->bad_name = 1;
    switch (h->name_len) {
    case 4:
      if (name_is(h->name, "host", 4) && !s->host++)
        s->host_h = h;
      break;
    case 6:
      if (name_is(h->name, "expect", 6) &&
          nx_header_has_token(h->value, h->value_len, "100-continue"))
        s->expect_continue = 1;
      break;
    case 7:
      if (name_is(h->name, "upgrade", 7)) {
        s->upgrade++;
        if (nx_header_has_token(h->value, h->value_len, "websocket"))
          s->upgrade_ws = 1;
      }
      break;
    case 10:
      if (name_is(h->name, "connection", 10) &&
          nx_header_has_token(h->value, h->value_len, "upgrade"))
        s->connection_upgrade = 1;
      break;
    case 17:
      if (name_is(h->name, "sec-websocket-key", 17)) {
        if (!s->key++)
          s->key_h = h;
      } else if (name_is(h->name, "transfer-encoding", 17)) {
        s->te_h = h;
      }
      break;
    case 22:
      if (name_is(h->name, "sec-websocket-protocol", 22) && !token_list(h->value, h->value_len))
        s->bad_protocol = 1;
      break;
    case 21:
      if (name_is(h->name, "sec-websocket-version", 21) && !s->version++)
        s->version_h = h;
      break;
    default:
      break;
    }
  }
}

/* What RFC 9112 asks a server to refuse with 400 in any request: a header
 * name that is empty or holds whitespace (§5.1), more than one Host or an
 * invalid one, or none in HTTP/1.1 (§3.2), a Transfer-Encoding whose last
 * coding is not chunked (§6.3). */
static int message_check(const nx_request_t *req, const seen_t *s, nx_handshake_t *out) {
  const char *v;
  size_t vlen;
  if (s->bad_name)
    return reject(out, 400, "a header name is empty or holds whitespace");
  if (s->host > 1 || (s->host == 0 && req->http_minor >= 1))
    return reject(out, 400, "missing or repeated Host header");
  if (s->host_h) {
    v = s->host_h->value;
    vlen = s->host_h->value_len;
    nx_trim_ows(&v, &vlen);
    if (!nx_host_valid(v, vlen))
      return reject(out, 400, "the Host header is not a host[:port]");
  }
  if (s->te_h && !last_element_is(s->te_h->value, s->te_h->value_len, "chunked"))
    return reject(out, 400, "a Transfer-Encoding must end in chunked");
  return 0;
}

int nx_request_check(const nx_request_t *req, nx_handshake_t *out) {
  seen_t s;
  memset(out, 0, sizeof(*out));
  scan_headers(req, &s);
  return message_check(req, &s, out);
}

int nx_handshake_check(const nx_request_t *req, nx_handshake_t *out) {
  seen_t s;
  const char *v;
  size_t vlen;

  memset(out, 0, sizeof(*out));
  if (!nx_token_ieq(req->method, req->method_len, "GET"))
    return reject(out, 405, "only GET can upgrade to WebSocket");
  if (req->http_major != 1)
    return reject(out, 505, "only HTTP/1.1 can upgrade to WebSocket");
  if (req->http_minor < 1)
    return reject(out, 400, "WebSocket requires HTTP/1.1");
  scan_headers(req, &s);
  if (message_check(req, &s, out))
    return out->status;
  if (!s.upgrade)
    return reject(out, 426, "this endpoint speaks WebSocket: send an Upgrade request");
  if (!s.upgrade_ws)
    return reject(out, 400, "Upgrade header does not name websocket");
  if (!s.connection_upgrade)
    return reject(out, 400, "Connection header does not contain Upgrade");

  if (!s.version_h)
    return reject(out, 400, "missing Sec-WebSocket-Version");
  v = s.version_h->value;
  vlen = s.version_h->value_len;
  nx_trim_ows(&v, &vlen);
  if (s.version != 1)
    return reject(out, 400, "repeated Sec-WebSocket-Version");
  if (vlen != 2 || memcmp(v, "13", 2) != 0)
    return reject(out, 426, "unsupported Sec-WebSocket-Version (13 is supported)");

  if (!s.key_h || s.key != 1)
    return reject(out, 400, "missing or repeated Sec-WebSocket-Key");
  v = s.key_h->value;
  vlen = s.key_h->value_len;
  nx_trim_ows(&v, &vlen);
  if (!nx_handshake_key_valid(v, vlen))
    return reject(out, 400, "Sec-WebSocket-Key is not base64 of 16 bytes");
  if (s.bad_protocol)
    return reject(out, 400, "a Sec-WebSocket-Protocol element is not a token");
  out->key = v;
  out->key_len = vlen;
  out->expect_continue = s.expect_continue;
  return 0;
}
