/* libFuzzer target: opening handshake validation (core/handshake.h).
 *
 * There is no incremental API here, so there is no chunking byte: the whole
 * input is a request in a line format that keeps the corpus readable:
 *
 *   line 1      the method
 *   line 2      the version, "MAJOR.MINOR" (decimal, optional '-')
 *   lines 3..   headers, "Name:value" split at the first ':' (the value keeps
 *               its whitespace; a line with no ':' is a name with an empty
 *               value); at most 32, the rest is ignored
 *
 * Lines end at '\n' (a '\r' before it is dropped). Every string is copied
 * into its own heap block of exactly its length, so ASan sees any read past
 * a (pointer, length) pair.
 *
 * Checks: nx_handshake_check() returns out->status, one of 0/400/405/426;
 * status 0 exactly when an independent reference (written from RFC 6455
 * §4.2.1, RFC 9110/9112 for header names, Host and Transfer-Encoding, and
 * the header's comments) accepts the request, and then the key is
 * the trimmed Sec-WebSocket-Key value, 24 chars, nx_handshake_key_valid();
 * each non-zero status is backed by a reason the header gives for it.
 * nx_header_has_token(), nx_header_find() and nx_handshake_key_valid() are
 * compared with reference versions on every header, and nx_request_check()
 * (the part of the checks any request must pass) with the reference's. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADERS 32

/* ---- Reference implementations ------------------------------------------ */

static int ref_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int ref_ieq(const char *a, size_t alen, const char *b, size_t blen) {
  size_t i;
  if (alen != blen)
    return 0;
  for (i = 0; i < alen; i++)
    if (ref_lower((unsigned char)a[i]) != ref_lower((unsigned char)b[i]))
      return 0;
  return 1;
}

static int ref_ows(char c) { return c == ' ' || c == '\t'; }

static void ref_trim(const char **v, size_t *len) {
  while (*len > 0 && ref_ows((*v)[0]))
    ++*v, --*len;
  while (*len > 0 && ref_ows((*v)[*len - 1]))
    --*len;
}

/* RFC 7230 #rule: comma-separated elements, each with optional whitespace. */
static int ref_has_token(const char *v, size_t len, const char *tok) {
  size_t start = 0, i;
  for (i = 0; i <= len; i++) {
    if (i == len || v[i] == ',') {
      const char *e = v + start;
      size_t elen = i - start;
      ref_trim(&e, &elen);
      if (elen > 0 && ref_ieq(e, elen, tok, strlen(tok)))
        return 1;
      start = i + 1;
    }
  }
  return 0;
}

static int ref_count(const nx_header_t *h, size_t n, const char *name, size_t *first) {
  size_t i;
  int count = 0;
  for (i = 0; i < n; i++) {
    if (ref_ieq(h[i].name, h[i].name_len, name, strlen(name))) {
      if (count == 0 && first)
        *first = i;
      count++;
    }
  }
  return count;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of 16 bytes: decode (ignoring the bits that do not fit a byte) and
 * encode again; the two must be the same text but for the low 4 bits of the
 * last data character, which are padding (accepted when not zero). */
static int ref_key_valid(const char *s, size_t len) {
  uint8_t raw[18] = {0};
  char again[25];
  unsigned acc = 0, nbits = 0;
  size_t i, o = 0;
  if (len != 24)
    return 0;
  for (i = 0; i < 22; i++) {
    const char *at = memchr(b64, s[i], 64);
    if (s[i] == '\0' || !at)
      return 0;
    acc = (acc << 6) | (unsigned)(at - b64);
    nbits += 6;
    if (nbits >= 8) {
      nbits -= 8;
      raw[o++] = (uint8_t)(acc >> nbits);
      acc &= (1u << nbits) - 1;
    }
  }
  if (o != 16)
    return 0;
  for (i = 0, o = 0; i < 15; i += 3) {
    unsigned w = ((unsigned)raw[i] << 16) | ((unsigned)raw[i + 1] << 8) | raw[i + 2];
    again[o++] = b64[(w >> 18) & 63], again[o++] = b64[(w >> 12) & 63];
    again[o++] = b64[(w >> 6) & 63], again[o++] = b64[w & 63];
  }
  again[o++] = b64[raw[15] >> 2];
  again[o++] = b64[(raw[15] & 3) << 4];
  again[o++] = '=', again[o++] = '=';
  return memcmp(again, s, 21) == 0 && memcmp(again + 22, s + 22, 2) == 0;
}

static int ref_in(char c, const char *set) { return c != '\0' && strchr(set, c) != NULL; }

static int ref_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int ref_hex(char c) { return (c >= '0' && c <= '9') || ref_in(c, "abcdefABCDEF"); }

/* RFC 9110 §7.2 Host: uri-host [ ":" port ] (RFC 3986 §3.2.2). */
static int ref_host(const char *v, size_t n) {
  size_t hostlen, i;
  if (n > 0 && v[0] == '[') {
    const char *rb = memchr(v, ']', n);
    if (!rb || rb == v + 1)
      return 0;
    hostlen = (size_t)(rb - v) + 1;
    for (i = 1; i + 1 < hostlen; i++)
      if (!ref_alnum(v[i]) && !ref_in(v[i], "-._~!$&'()*+,;=:"))
        return 0;
  } else {
    const char *colon = memchr(v, ':', n);
    hostlen = colon ? (size_t)(colon - v) : n;
    for (i = 0; i < hostlen; i++) {
      if (v[i] == '%') {
        if (i + 2 >= hostlen || !ref_hex(v[i + 1]) || !ref_hex(v[i + 2]))
          return 0;
        i += 2;
      } else if (!ref_alnum(v[i]) && !ref_in(v[i], "-._~!$&'()*+,;=")) {
        return 0;
      }
    }
  }
  if (hostlen == n)
    return 1;
  if (v[hostlen] != ':')
    return 0;
  for (i = hostlen + 1; i < n; i++)
    if (v[i] < '0' || v[i] > '9')
      return 0;
  return 1;
}

/* RFC 9110 #rule elements: each non-empty one is a token. */
static int ref_token_list(const char *v, size_t len) {
  size_t start = 0, i, j;
  for (i = 0; i <= len; i++) {
    if (i == len || v[i] == ',') {
      const char *e = v + start;
      size_t elen = i - start;
      ref_trim(&e, &elen);
      for (j = 0; j < elen; j++)
        if (!ref_alnum(e[j]) && !ref_in(e[j], "!#$%&'*+-.^_`|~"))
          return 0;
      start = i + 1;
    }
  }
  return 1;
}

/* The last non-empty element of the list is "chunked". */
static int ref_ends_chunked(const char *v, size_t len) {
  size_t start = 0, i;
  const char *last = NULL;
  size_t last_len = 0;
  for (i = 0; i <= len; i++) {
    if (i == len || v[i] == ',') {
      const char *e = v + start;
      size_t elen = i - start;
      ref_trim(&e, &elen);
      if (elen > 0)
        last = e, last_len = elen;
      start = i + 1;
    }
  }
  return last != NULL && ref_ieq(last, last_len, "chunked", 7);
}

/* ---- Input splitting ------------------------------------------------------ */

static char *dup_exact(const uint8_t *p, size_t n) {
  /* malloc(0) gives a block ASan treats as zero bytes long. */
  char *s = (char *)malloc(n);
  if (!s && n)
    abort();
  if (n)
    memcpy(s, p, n);
  return s;
}

/* The next line of [*at, end): its bounds, without '\n' or a final '\r'. */
static int next_line(const uint8_t **at, const uint8_t *end, const uint8_t **line, size_t *len) {
  const uint8_t *p = *at, *nl;
  if (p >= end)
    return 0;
  nl = memchr(p, '\n', (size_t)(end - p));
  *line = p;
  *len = (size_t)((nl ? nl : end) - p);
  *at = nl ? nl + 1 : end;
  if (*len > 0 && p[*len - 1] == '\r')
    --*len;
  return 1;
}

static int parse_int(const uint8_t *p, size_t len, size_t *used) {
  size_t i = 0;
  long v = 0;
  int neg = 0;
  if (i < len && p[i] == '-')
    neg = 1, i++;
  for (; i < len && p[i] >= '0' && p[i] <= '9'; i++)
    if (v < 100000)
      v = v * 10 + (p[i] - '0');
  *used = i;
  return (int)(neg ? -v : v);
}

/* ---- The target -------------------------------------------------------- */

static void check_request(const nx_request_t *req, const char *method_z) {
  const nx_header_t *h = req->headers;
  size_t n = req->nheaders, i, first = 0;
  nx_handshake_t out;
  int status, count, ref_ok, version_ok, host_n, up_n, up_ok = 0, conn_ok = 0, ver_n, key_n;
  int ver13 = 0, key_ok = 0, names_ok = 1, host_ok = 0, te_ok = 1, proto_ok = 1;
  const char *v;
  size_t vlen;
  static const char *const names[] = {"host", "upgrade", "connection", "sec-websocket-key",
                                      "sec-websocket-version"};

  memset(&out, 0xa5, sizeof(out)); /* the check must fill every field */
  status = nx_handshake_check(req, &out);
  if (getenv("NX_FUZZ_TRACE"))
    fprintf(stderr, "  => %d %s\n", status, status ? out.error : "valid");
  FUZZ_CHECK(status == out.status, "returned %d, out.status %d", status, out.status);
  FUZZ_CHECK(status == 0 || status == 400 || status == 405 || status == 426 || status == 505,
             "status %d", status);

  /* The reference verdict. */
  version_ok = req->http_major == 1 && req->http_minor >= 1;
  host_n = ref_count(h, n, "host", &first);
  if (host_n >= 1) {
    v = h[first].value, vlen = h[first].value_len;
    ref_trim(&v, &vlen);
    host_ok = ref_host(v, vlen);
  }
  up_n = ref_count(h, n, "upgrade", NULL);
  for (i = 0; i < n; i++) {
    if (h[i].name_len == 0 || memchr(h[i].name, ' ', h[i].name_len) ||
        memchr(h[i].name, '\t', h[i].name_len))
      names_ok = 0;
    if (ref_ieq(h[i].name, h[i].name_len, "transfer-encoding", 17))
      te_ok = ref_ends_chunked(h[i].value, h[i].value_len); /* the last one decides */
    if (ref_ieq(h[i].name, h[i].name_len, "sec-websocket-protocol", 22) &&
        !ref_token_list(h[i].value, h[i].value_len))
      proto_ok = 0;
    if (ref_ieq(h[i].name, h[i].name_len, "upgrade", 7) &&
        ref_has_token(h[i].value, h[i].value_len, "websocket"))
      up_ok = 1;
    if (ref_ieq(h[i].name, h[i].name_len, "connection", 10) &&
        ref_has_token(h[i].value, h[i].value_len, "upgrade"))
      conn_ok = 1;
  }
  ver_n = ref_count(h, n, "sec-websocket-version", &first);
  if (ver_n >= 1) {
    v = h[first].value, vlen = h[first].value_len;
    ref_trim(&v, &vlen);
    ver13 = vlen == 2 && v[0] == '1' && v[1] == '3';
  }
  key_n = ref_count(h, n, "sec-websocket-key", &first);
  if (key_n == 1) {
    v = h[first].value, vlen = h[first].value_len;
    ref_trim(&v, &vlen);
    key_ok = ref_key_valid(v, vlen);
  }
  ref_ok = ref_ieq(req->method, req->method_len, "GET", 3) && version_ok && names_ok &&
           host_n == 1 && host_ok && te_ok && up_ok && conn_ok && ver_n == 1 && ver13 &&
           key_n == 1 && key_ok && proto_ok;

  FUZZ_CHECK((status == 0) == ref_ok, "status %d (%s) but the reference says %s", status,
             status ? out.error : "-", ref_ok ? "valid" : "invalid");
  if (status == 0) {
    FUZZ_CHECK(out.error == NULL, "an error text on success");
    FUZZ_CHECK(out.key_len == 24 && out.key != NULL, "key of %zu chars", out.key_len);
    FUZZ_CHECK(nx_handshake_key_valid(out.key, out.key_len), "accepted key is not valid");
    v = h[first].value, vlen = h[first].value_len;
    ref_trim(&v, &vlen);
    FUZZ_CHECK(out.key == v && out.key_len == vlen, "key is not the trimmed header value");
  } else {
    FUZZ_CHECK(out.error != NULL && out.error[0] != '\0', "status %d without an error text",
               status);
    FUZZ_CHECK(out.key == NULL && out.key_len == 0, "a key on failure");
  }
  /* nx_request_check: the part of the checks that any request must pass. */
  {
    nx_handshake_t plain;
    int ref_plain =
        names_ok && te_ok && (host_n == 0 ? req->http_minor < 1 : host_n == 1 && host_ok);
    memset(&plain, 0xa5, sizeof(plain));
    FUZZ_CHECK((nx_request_check(req, &plain) == 0) == ref_plain &&
                   (plain.status == 0) == ref_plain,
               "request check %d (%s) but the reference says %s", plain.status,
               plain.status ? plain.error : "-", ref_plain ? "valid" : "invalid");
    FUZZ_CHECK(plain.status == 0 || plain.status == 400, "request check status %d", plain.status);
  }
  if (status == 405)
    FUZZ_CHECK(!ref_ieq(req->method, req->method_len, "GET", 3), "405 for a GET");
  if (status == 505)
    FUZZ_CHECK(req->http_major != 1, "505 for HTTP/1.%d", req->http_minor);
  if (status == 426)
    FUZZ_CHECK(up_n == 0 || (ver_n >= 1 && !ver13),
               "426 (%s) with an Upgrade header and version 13", out.error);
  if (status == 400)
    FUZZ_CHECK(!version_ok || !names_ok || host_n != 1 || !host_ok || !te_ok ||
                   (up_n > 0 && !up_ok) || !conn_ok || ver_n != 1 || key_n != 1 || !key_ok ||
                   !proto_ok,
               "400 (%s) with none of the reasons for 400", out.error);

  /* The helpers, header by header. */
  for (i = 0; i < n; i++) {
    const char *toks[3] = {"websocket", "upgrade", method_z};
    size_t t;
    for (t = 0; t < 3; t++) {
      int got = nx_header_has_token(h[i].value, h[i].value_len, toks[t]);
      FUZZ_CHECK(got == ref_has_token(h[i].value, h[i].value_len, toks[t]),
                 "has_token(header %zu, '%s') = %d", i, toks[t], got);
    }
    FUZZ_CHECK(nx_handshake_key_valid(h[i].value, h[i].value_len) ==
                   ref_key_valid(h[i].value, h[i].value_len),
               "key_valid(header %zu) = %d", i, nx_handshake_key_valid(h[i].value, h[i].value_len));
  }
  for (i = 0; i < sizeof(names) / sizeof(names[0]) + 1; i++) {
    const char *name = i < sizeof(names) / sizeof(names[0]) ? names[i] : method_z;
    size_t at = 0;
    int want = ref_count(h, n, name, &at);
    const nx_header_t *found = nx_header_find(req, name, &count);
    FUZZ_CHECK(count == want, "find('%s') counted %d, reference %d", name, count, want);
    FUZZ_CHECK(found == (want ? &h[at] : NULL), "find('%s') returned the wrong header", name);
    FUZZ_CHECK(nx_header_find(req, name, NULL) == found, "find('%s') without a count differs",
               name);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *at = data, *end = data + size, *line;
  size_t len, used, i;
  nx_header_t headers[MAX_HEADERS];
  nx_request_t req;
  char *method_z;

  memset(&req, 0, sizeof(req));
  memset(headers, 0, sizeof(headers));
  if (!next_line(&at, end, &line, &len))
    return 0;
  req.method = dup_exact(line, len);
  req.method_len = len;
  /* A NUL-terminated copy, used as a token and a header name. */
  method_z = (char *)malloc(len + 1);
  if (!method_z)
    abort();
  memcpy(method_z, line, len);
  method_z[len] = '\0';

  if (next_line(&at, end, &line, &len)) {
    req.http_major = parse_int(line, len, &used);
    if (used < len && line[used] == '.')
      req.http_minor = parse_int(line + used + 1, len - used - 1, &used);
  }
  while (req.nheaders < MAX_HEADERS && next_line(&at, end, &line, &len)) {
    nx_header_t *h = &headers[req.nheaders++];
    const uint8_t *colon = memchr(line, ':', len);
    size_t nlen = colon ? (size_t)(colon - line) : len;
    h->name = dup_exact(line, nlen);
    h->name_len = nlen;
    h->value_len = colon ? len - nlen - 1 : 0;
    h->value = dup_exact(colon ? colon + 1 : line, h->value_len);
  }
  req.headers = headers;

  check_request(&req, method_z);

  for (i = 0; i < req.nheaders; i++) {
    free((void *)headers[i].name);
    free((void *)headers[i].value);
  }
  free((void *)req.method);
  free(method_z);
  return 0;
}
