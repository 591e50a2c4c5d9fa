/* Tests of the opening handshake validation (core/handshake.c). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "handshake.h"
#include "test.h"

/* The sample request of RFC 6455 §1.3. */
static const char *const rfc_headers[][2] = {
    {"Host", "server.example.com"},   {"Upgrade", "websocket"},
    {"Connection", "Upgrade"},        {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
    {"Origin", "http://example.com"}, {"Sec-WebSocket-Protocol", "chat, superchat"},
    {"Sec-WebSocket-Version", "13"},
};

enum { MAX_HDRS = 24 };

/* A request whose method, names and values live back to back in one arena
 * with no NUL terminators, as a parser hands them out pointing into its read
 * buffer: the code under test must go by the lengths. */
typedef struct {
  char arena[2048];
  size_t used;
  nx_header_t headers[MAX_HDRS];
  nx_request_t req;
} req_t;

static const char *arena_put(req_t *r, const char *s, size_t len) {
  char *at = r->arena + r->used;
  memcpy(at, s, len);
  r->used += len;
  return at;
}

/* Length of the name in a "Name" or "Name: value" string. */
static size_t name_len(const char *s) {
  const char *colon = strchr(s, ':');
  return colon ? (size_t)(colon - s) : strlen(s);
}

static int same_name(const char *a, const char *b) {
  size_t n = name_len(a);
  return n == name_len(b) && strncasecmp(a, b, n) == 0;
}

/* Builds the RFC sample request, then applies edits, NULL-terminated:
 * "-Name" removes every Name header, "=Name: value" sets the value of every
 * Name header (appending one if there is none), "+Name: value" appends. */
static void req_build(req_t *r, const char *method, int major, int minor, va_list ap) {
  const char *names[MAX_HDRS], *values[MAX_HDRS];
  size_t n = 0, i;
  const char *op;

  for (i = 0; i < NX_COUNTOF(rfc_headers); i++, n++)
    names[n] = rfc_headers[i][0], values[n] = rfc_headers[i][1];
  while ((op = va_arg(ap, const char *)) != NULL) {
    const char *name = op + 1;
    const char *colon = strchr(name, ':');
    const char *value = colon ? colon + 2 : "";
    int found = 0;
    if (op[0] == '-') {
      size_t j = 0;
      for (i = 0; i < n; i++)
        if (!same_name(names[i], name))
          names[j] = names[i], values[j] = values[i], j++;
      n = j;
      continue;
    }
    if (op[0] == '=')
      for (i = 0; i < n; i++)
        if (same_name(names[i], name))
          values[i] = value, found = 1;
    if (!found && n < MAX_HDRS) {
      names[n] = name;
      values[n] = value;
      n++;
    }
  }

  memset(r, 0, sizeof(*r));
  r->req.method = arena_put(r, method, strlen(method));
  r->req.method_len = strlen(method);
  r->req.http_major = major;
  r->req.http_minor = minor;
  for (i = 0; i < n; i++) {
    r->headers[i].name = arena_put(r, names[i], name_len(names[i]));
    r->headers[i].name_len = name_len(names[i]);
    r->headers[i].value = arena_put(r, values[i], strlen(values[i]));
    r->headers[i].value_len = strlen(values[i]);
  }
  r->req.headers = r->headers;
  r->req.nheaders = n;
}

/* Checks the request against the expected status (0 = a valid upgrade). */
static void hs_case(const char *file, int line, int expect, const char *method, int major,
                    int minor, ...) {
  req_t r;
  nx_handshake_t out;
  int status;
  va_list ap;

  va_start(ap, minor);
  req_build(&r, method, major, minor, ap);
  va_end(ap);
  memset(&out, 0xa5, sizeof(out));
  status = nx_handshake_check(&r.req, &out);
  if (status != expect || out.status != expect)
    nx_test_fail_at(file, line, "status %d (out.status %d), expected %d (error: %s)", status,
                    out.status, expect, status ? out.error : "none");
  if (status && (out.error == NULL || out.error[0] == '\0'))
    nx_test_fail_at(file, line, "rejection without an error text");
  if (status == 0) {
    const nx_header_t *key = nx_header_find(&r.req, "sec-websocket-key", NULL);
    if (out.error != NULL)
      nx_test_fail_at(file, line, "valid request with an error text");
    if (!key || out.key < key->value || out.key + out.key_len > key->value + key->value_len ||
        out.key_len != 24 || !nx_handshake_key_valid(out.key, out.key_len))
      nx_test_fail_at(file, line, "out.key does not point at the trimmed Sec-WebSocket-Key value");
  }
}

#define HS(expect, method, major, minor, ...)                                                      \
  hs_case(__FILE__, __LINE__, expect, method, major, minor, __VA_ARGS__, (const char *)NULL)

TEST(handshake_rfc_sample_valid) {
  req_t r;
  nx_handshake_t out;
  HS(0, "GET", 1, 1, (const char *)NULL);
  /* A later HTTP/1 may upgrade too; HTTP/1.1's syntax with another major
   * version is one we do not speak. */
  HS(0, "GET", 1, 2, (const char *)NULL);
  HS(505, "GET", 2, 0, (const char *)NULL);
  HS(505, "GET", 3, 0, (const char *)NULL);
  {
    /* Direct construction, to look at the key pointer. */
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    nx_header_t h[5] = {
        {"Host", 4, "x", 1},
        {"Upgrade", 7, "websocket", 9},
        {"Connection", 10, "Upgrade", 7},
        {"Sec-WebSocket-Key", 17, key, 24},
        {"Sec-WebSocket-Version", 21, "13", 2},
    };
    memset(&r, 0, sizeof(r));
    r.req.method = "GET";
    r.req.method_len = 3;
    r.req.http_major = r.req.http_minor = 1;
    r.req.headers = h;
    r.req.nheaders = 5;
    CHECK_EQ(nx_handshake_check(&r.req, &out), 0);
    CHECK(out.key == key);
    CHECK_EQ(out.key_len, 24);
    CHECK(out.error == NULL);
  }
}

TEST(handshake_method_and_version) {
  HS(405, "POST", 1, 1, (const char *)NULL);
  HS(405, "PUT", 1, 1, (const char *)NULL);
  HS(405, "HEAD", 1, 1, (const char *)NULL);
  HS(405, "GETX", 1, 1, (const char *)NULL);
  HS(405, "GE", 1, 1, (const char *)NULL);
  HS(405, "", 1, 1, (const char *)NULL);
  HS(400, "GET", 1, 0, (const char *)NULL);
  HS(505, "GET", 0, 9, (const char *)NULL);
  /* The method is checked first. */
  HS(405, "POST", 1, 0, "-Host", "-Upgrade");
}

TEST(handshake_host) {
  HS(400, "GET", 1, 1, "-Host");
  HS(400, "GET", 1, 1, "+Host: other.example.com");
  HS(0, "GET", 1, 1, "-Host", "+host: server.example.com");
  HS(0, "GET", 1, 1, "-Host", "+HOST: server.example.com");
}

/* Header names match in any letter case, and nothing else: a byte that is
 * a letter's other case only by bit 0x20 (CR against '-') or a
 * name one byte off does not count as the header. */
TEST(handshake_header_names) {
  HS(0, "GET", 1, 1, "-Sec-WebSocket-Key", "+SEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==");
  HS(0, "GET", 1, 1, "-Sec-WebSocket-Version", "+sec-websocket-VERSION: 13");
  HS(0, "GET", 1, 1, "-Connection", "+cOnNeCtIoN: upgrade");
  HS(400, "GET", 1, 1, "-Sec-WebSocket-Key", "+Sec\rWebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==");
  HS(400, "GET", 1, 1, "-Sec-WebSocket-Key", "+Sec-WebSocket-Kez: dGhlIHNhbXBsZSBub25jZQ==");
  HS(400, "GET", 1, 1, "-Sec-WebSocket-Key", "+Sec-WebSocket-Ke: dGhlIHNhbXBsZSBub25jZQ==");
  HS(400, "GET", 1, 1, "-Host", "+Hos\x14: x");
  HS(400, "GET", 1, 1, "-Connection", "+Connectio\x0e: Upgrade");
  HS(400, "GET", 1, 1, "-Sec-WebSocket-Version", "+Sec\x0dWebSocket-Version: 13");
}

/* RFC 9112 §5.1: no whitespace between a name and its colon, which a
 * parser may let through as part of the name ("Host : evil" would be
 * another header than Host). */
TEST(handshake_header_name_whitespace) {
  HS(400, "GET", 1, 1, "+X-Foo : a");
  HS(400, "GET", 1, 1, "+X-Foo\t: a");
  HS(400, "GET", 1, 1, "+X Foo: a");
  HS(400, "GET", 1, 1, "+: a");
  HS(400, "GET", 1, 1, "+Host : evil.example");
  HS(0, "GET", 1, 1, "+X-Foo: a b");
}

/* RFC 9112 §3.2: a Host that is not uri-host [ ":" port ] gets 400. */
TEST(handshake_host_value) {
  static const char *const bad[] = {"a b", "a/b",   "a@b", "[::1", "[]",    "http://evil", "a:80x",
                                    "a?b", "\"a\"", "a%2", "a%zz", "a:8:0", "[::1]x",      "a#b"};
  static const char *const good[] = {"",
                                     "example.com",
                                     "example.com:8080",
                                     "127.0.0.1:1",
                                     "[::1]",
                                     "[::1]:443",
                                     "a%20b",
                                     "xn--bcher-kva.example",
                                     "host:",
                                     "h_1.x~y",
                                     "[v1.fe80::a+en1]",
                                     " example.com "};
  char hdr[64];
  size_t i;
  for (i = 0; i < NX_COUNTOF(bad); i++) {
    snprintf(hdr, sizeof(hdr), "=Host: %s", bad[i]);
    HS(400, "GET", 1, 1, hdr);
  }
  for (i = 0; i < NX_COUNTOF(good); i++) {
    snprintf(hdr, sizeof(hdr), "=Host: %s", good[i]);
    HS(0, "GET", 1, 1, hdr);
  }
  CHECK(nx_host_valid("a:80", 4));
  CHECK(nx_host_valid("a:80", 3)); /* only len bytes are read: "a:8" */
  CHECK(!nx_host_valid("a b", 3));
}

/* RFC 9112 §6.3: a Transfer-Encoding whose final coding is not chunked. */
TEST(handshake_transfer_encoding) {
  HS(400, "GET", 1, 1, "+Transfer-Encoding: gzip");
  HS(400, "GET", 1, 1, "+Transfer-Encoding: xchunked");
  HS(400, "GET", 1, 1, "+Transfer-Encoding: identity");
  HS(400, "GET", 1, 1, "+Transfer-Encoding: chunked, gzip");
  HS(400, "GET", 1, 1, "+Transfer-Encoding: chunked", "+Transfer-Encoding: gzip");
  HS(400, "GET", 1, 1, "+Transfer-Encoding: ");
  HS(0, "GET", 1, 1, "+Transfer-Encoding: chunked");
  HS(0, "GET", 1, 1, "+Transfer-Encoding: gzip, Chunked ,");
}

/* nx_request_check: the checks of any request (the health and metrics
 * paths), whatever its method and upgrade headers: Host required from
 * HTTP/1.1 on, optional but single and valid in HTTP/1.0. */
static void rq_case(const char *file, int line, int expect, const char *method, int minor, ...) {
  req_t r;
  nx_handshake_t out;
  int status;
  va_list ap;
  va_start(ap, minor);
  req_build(&r, method, 1, minor, ap);
  va_end(ap);
  memset(&out, 0xa5, sizeof(out));
  status = nx_request_check(&r.req, &out);
  if (status != expect || out.status != expect || (status && !out.error) || (!status && out.error))
    nx_test_fail_at(file, line, "status %d (out.status %d), expected %d", status, out.status,
                    expect);
}
#define RQ(expect, method, minor, ...)                                                             \
  rq_case(__FILE__, __LINE__, expect, method, minor, __VA_ARGS__, (const char *)NULL)

TEST(request_check) {
  RQ(0, "GET", 1, "-Upgrade", "-Connection", "-Sec-WebSocket-Key");
  RQ(0, "HEAD", 1, "-Upgrade");
  RQ(0, "POST", 1, "-Sec-WebSocket-Version");
  RQ(0, "GET", 0, "-Host");
  RQ(0, "GET", 0, "-Upgrade");
  RQ(0, "GET", 1, "=Host:  example.com ");
  RQ(400, "GET", 1, "-Host");
  RQ(400, "HEAD", 1, "-Host");
  RQ(400, "GET", 1, "+Host: b.example");
  RQ(400, "GET", 0, "+Host: b.example");
  RQ(400, "GET", 1, "=Host: a b");
  RQ(400, "GET", 0, "=Host: a/b");
  RQ(400, "GET", 1, "+X-Foo : a");
  RQ(400, "GET", 0, "+: a");
  RQ(400, "GET", 1, "+Transfer-Encoding: gzip");
}

/* RFC 6455 §4.1: Sec-WebSocket-Protocol is 1#token. */
TEST(handshake_subprotocol_tokens) {
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Protocol: a b");
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Protocol: \"chat\"");
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Protocol: ch;at");
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Protocol: ch/at");
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Protocol: chat", "+Sec-WebSocket-Protocol: x y");
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Protocol: chat, v2.json.example,, ");
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Protocol: ");
}

/* The RFC sample with edits (as HS), checked into *out: the status. */
static int hs_check(req_t *r, nx_handshake_t *out, ...) {
  va_list ap;
  va_start(ap, out);
  req_build(r, "GET", 1, 1, ap);
  va_end(ap);
  return nx_handshake_check(&r->req, out);
}

TEST(handshake_expect_continue) {
  req_t r;
  nx_handshake_t out;
  CHECK_EQ(hs_check(&r, &out, "+Expect: 100-continue", (const char *)NULL), 0);
  CHECK_EQ(out.expect_continue, 1);
  CHECK_EQ(hs_check(&r, &out, "+Expect: 100-Continue", (const char *)NULL), 0);
  CHECK_EQ(out.expect_continue, 1);
  CHECK_EQ(hs_check(&r, &out, (const char *)NULL), 0);
  CHECK_EQ(out.expect_continue, 0);
}

TEST(handshake_upgrade_header) {
  HS(426, "GET", 1, 1, "-Upgrade");
  HS(426, "GET", 1, 1, "-Upgrade", "-Connection");
  HS(400, "GET", 1, 1, "=Upgrade: h2c");
  HS(400, "GET", 1, 1, "=Upgrade: ");
  HS(400, "GET", 1, 1, "=Upgrade: websockets");
  HS(400, "GET", 1, 1, "=Upgrade: web socket");
  HS(400, "GET", 1, 1, "=Upgrade: websocket/13x");
  HS(0, "GET", 1, 1, "=Upgrade: WebSocket");
  HS(0, "GET", 1, 1, "=Upgrade: WEBSOCKET");
  HS(0, "GET", 1, 1, "=Upgrade: h2c, websocket");
  HS(0, "GET", 1, 1, "=Upgrade: websocket,h2c");
  HS(0, "GET", 1, 1, "=Upgrade:   websocket  ");
  HS(0, "GET", 1, 1, "-Upgrade", "+upgrade: websocket");
  /* Two Upgrade headers: one naming websocket is enough. */
  HS(0, "GET", 1, 1, "+Upgrade: h2c");
  HS(0, "GET", 1, 1, "=Upgrade: h2c", "+Upgrade: websocket");
}

TEST(handshake_connection_header) {
  HS(400, "GET", 1, 1, "-Connection");
  HS(400, "GET", 1, 1, "=Connection: keep-alive");
  HS(400, "GET", 1, 1, "=Connection: ");
  HS(400, "GET", 1, 1, "=Connection: upgraded");
  HS(400, "GET", 1, 1, "=Connection: keep-alive upgrade");
  HS(0, "GET", 1, 1, "=Connection: keep-alive, Upgrade");
  HS(0, "GET", 1, 1, "=Connection: keep-alive,upgrade");
  HS(0, "GET", 1, 1, "=Connection: UPGRADE");
  HS(0, "GET", 1, 1, "=Connection: Upgrade, keep-alive");
  HS(0, "GET", 1, 1, "=Connection: \tupgrade\t");
  HS(0, "GET", 1, 1, "=Connection: ,, upgrade ,,");
  HS(0, "GET", 1, 1, "=Connection: keep-alive", "+Connection: Upgrade");
}

TEST(handshake_version_header) {
  HS(400, "GET", 1, 1, "-Sec-WebSocket-Version");
  HS(426, "GET", 1, 1, "=Sec-WebSocket-Version: 8");
  HS(426, "GET", 1, 1, "=Sec-WebSocket-Version: 7");
  HS(426, "GET", 1, 1, "=Sec-WebSocket-Version: 14");
  HS(426, "GET", 1, 1, "=Sec-WebSocket-Version: 130");
  HS(426, "GET", 1, 1, "=Sec-WebSocket-Version: 1");
  HS(426, "GET", 1, 1, "=Sec-WebSocket-Version: ");
  HS(426, "GET", 1, 1, "=Sec-WebSocket-Version: 13, 8");
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Version:  13 ");
  HS(0, "GET", 1, 1, "-Sec-WebSocket-Version", "+sec-websocket-version: 13");
}

TEST(handshake_version_repeated) {
  /* handshake.h: "400 malformed (..., duplicated key or version)". */
  HS(400, "GET", 1, 1, "+Sec-WebSocket-Version: 13");
  HS(400, "GET", 1, 1, "+Sec-WebSocket-Version: 8");
}

TEST(handshake_key_header) {
  HS(400, "GET", 1, 1, "-Sec-WebSocket-Key");
  HS(400, "GET", 1, 1, "+Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="); /* repeated */
  HS(400, "GET", 1, 1, "+sec-websocket-key: AAAAAAAAAAAAAAAAAAAAAA=="); /* repeated, other case */
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: ");
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=");      /* 23 chars */
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ===");    /* 25 chars */
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ");       /* no padding */
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j!Q==");     /* not base64 */
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j-Q==");     /* base64url */
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==");       /* padding bits set */
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==dGhl"); /* trailing junk */
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==");
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub2 5jZQ==");
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==");
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: YWJj");                     /* 3 bytes */
  HS(400, "GET", 1, 1, "=Sec-WebSocket-Key: MTIzNDU2Nzg5MDEyMzQ1Njc="); /* 17 bytes */
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Key:  dGhlIHNhbXBsZSBub25jZQ== "); /* whitespace trimmed */
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Key: MTIzNDU2Nzg5MDEyMzQ1Ng==");   /* "1234567890123456" */
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==");
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Key: /////////////////////w==");
  HS(0, "GET", 1, 1, "=Sec-WebSocket-Key: +++++++++++++++++++++w==");
}

TEST(handshake_check_order) {
  /* Several things wrong at once: each check in the documented order wins. */
  HS(400, "GET", 1, 0, "-Host", "-Upgrade");
  HS(400, "GET", 1, 1, "-Host", "-Upgrade");
  HS(426, "GET", 1, 1, "-Upgrade", "-Sec-WebSocket-Key");
  HS(400, "GET", 1, 1, "=Connection: close", "=Sec-WebSocket-Version: 8");
  HS(400, "GET", 1, 1, "-Sec-WebSocket-Version", "-Sec-WebSocket-Key");
  HS(426, "GET", 1, 1, "=Sec-WebSocket-Version: 8", "-Sec-WebSocket-Key");
  /* Headers the check does not care about change nothing. */
  HS(0, "GET", 1, 1, "-Origin", "-Sec-WebSocket-Protocol");
  HS(0, "GET", 1, 1, "+Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits");
}

static int tok(const char *v, const char *t) { return nx_header_has_token(v, strlen(v), t); }

TEST(header_has_token) {
  CHECK(tok("upgrade", "upgrade"));
  CHECK(tok("Upgrade", "upgrade"));
  CHECK(tok("upgrade", "UPGRADE"));
  CHECK(tok("keep-alive, Upgrade", "upgrade"));
  CHECK(tok("keep-alive,Upgrade", "upgrade"));
  CHECK(tok("Upgrade, keep-alive", "upgrade"));
  CHECK(tok("a, b ,upgrade , c", "upgrade"));
  CHECK(tok("  upgrade  ", "upgrade"));
  CHECK(tok("\tupgrade\t", "upgrade"));
  CHECK(tok(",upgrade", "upgrade"));
  CHECK(tok("upgrade,", "upgrade"));
  CHECK(tok(",,, ,upgrade,, ,", "upgrade"));
  CHECK(tok("x,y,z,upgrade", "upgrade"));
  CHECK(!tok("", "upgrade"));
  CHECK(!tok(",", "upgrade"));
  CHECK(!tok(" , ,\t,", "upgrade"));
  CHECK(!tok("upgraded", "upgrade"));
  CHECK(!tok("upgrad", "upgrade"));
  CHECK(!tok("xupgrade", "upgrade"));
  CHECK(!tok("keep-alive upgrade", "upgrade"));
  CHECK(!tok("up grade", "upgrade"));
  CHECK(!tok("upgrade;q=1", "upgrade"));
  CHECK(!tok("\"upgrade\"", "upgrade"));
  CHECK(!tok("keep-alive", "upgrade"));
  CHECK(!tok("upgrade", ""));
  /* Only len bytes are read. */
  CHECK(nx_header_has_token("upgradeXYZ", 7, "upgrade"));
  CHECK(!nx_header_has_token("upgrade", 6, "upgrade"));
  CHECK(!nx_header_has_token("upgrade", 0, "upgrade"));
  CHECK(!nx_header_has_token(NULL, 0, "upgrade"));
  CHECK(nx_header_has_token("keep-alive, Upgrade, x", 19, "upgrade"));
  CHECK(!nx_header_has_token("keep-alive, Upgrade", 18, "upgrade"));
}

TEST(header_find) {
  nx_header_t h[4] = {
      {"Host", 4, "a", 1},
      {"X-Thing", 7, "1", 1},
      {"x-thing", 7, "2", 1},
      {"X-ThingY", 7, "3", 1}, /* name_len 7: this is "X-Thing" too */
  };
  nx_request_t req;
  int count = -1;
  const nx_header_t *f;
  memset(&req, 0, sizeof(req));
  req.headers = h;
  req.nheaders = 4;
  f = nx_header_find(&req, "x-THING", &count);
  CHECK(f == &h[1]);
  CHECK_EQ(count, 3);
  f = nx_header_find(&req, "host", NULL);
  CHECK(f == &h[0]);
  count = -1;
  CHECK(nx_header_find(&req, "origin", &count) == NULL);
  CHECK_EQ(count, 0);
  CHECK(nx_header_find(&req, "hos", &count) == NULL);
  CHECK(nx_header_find(&req, "hostx", &count) == NULL);
  req.nheaders = 0;
  CHECK(nx_header_find(&req, "host", &count) == NULL);
  CHECK_EQ(count, 0);
}

static int key_ok(const char *s) { return nx_handshake_key_valid(s, strlen(s)); }

TEST(handshake_key_valid) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char k[25];
  int i, c;
  CHECK(key_ok("dGhlIHNhbXBsZSBub25jZQ=="));
  CHECK(key_ok("AAAAAAAAAAAAAAAAAAAAAA=="));
  CHECK(!key_ok(""));
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZQ="));
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZQ"));
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZQ==="));
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZQ=A"));
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZ=== "));
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZ===")); /* 15 bytes and a half */
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZQ== "));
  CHECK(!key_ok(" dGhlIHNhbXBsZSBub25jZQ==")); /* the caller trims, not this */
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZQAA"));  /* 18 bytes, no padding */
  CHECK(!key_ok("dGhlIHNhbXBsZSBub25jZQ%3D%3D"));
  /* Only the given length is read. */
  CHECK(nx_handshake_key_valid("dGhlIHNhbXBsZSBub25jZQ==xyz", 24));
  CHECK(!nx_handshake_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 23));
  /* Every character at every data position (the last one's padding bits
   * need not be zero: "...ZR==" decodes to the same 16 bytes as "...ZQ=="). */
  for (i = 0; i < 22; i++) {
    for (c = 0; c < 256; c++) {
      int valid_char = c != 0 && strchr(b64, c) != NULL;
      int expect;
      memcpy(k, "dGhlIHNhbXBsZSBub25jZQ==", 25);
      k[i] = (char)c;
      expect = valid_char;
      if (nx_handshake_key_valid(k, 24) != expect)
        nx_test_fail_at(__FILE__, __LINE__, "key with byte %02x at %d: got %d", c, i, !expect);
    }
  }
  /* The padding positions accept only '='. */
  for (i = 22; i < 24; i++) {
    for (c = 0; c < 256; c++) {
      memcpy(k, "dGhlIHNhbXBsZSBub25jZQ==", 25);
      k[i] = (char)c;
      if (nx_handshake_key_valid(k, 24) != (c == '='))
        nx_test_fail_at(__FILE__, __LINE__, "key with byte %02x at %d accepted", c, i);
    }
  }
}

/* Origin offset of target, or -1 when nx_target_split refuses it. */
static long origin_of(const char *target) {
  size_t origin = 12345;
  if (nx_target_split(target, strlen(target), &origin))
    return -1;
  return (long)origin;
}

TEST(target_split) {
  /* the origin form */
  CHECK_EQ(0, origin_of("/"));
  CHECK_EQ(0, origin_of("/ws?x=1"));
  CHECK_EQ(0, origin_of("/a://b"));
  /* the absolute form: the path starts after the authority */
  CHECK_EQ(18, origin_of("http://example.org/ws?x=1"));
  CHECK_EQ(11, origin_of("HTTP://h:80/p"));
  CHECK_EQ(8, origin_of("ws://h:1/p"));
  CHECK_EQ(7, origin_of("wss://h"));
  CHECK_EQ(11, origin_of("http://host?q"));
  CHECK_EQ(18, origin_of("https://[::1]:8443/ws"));
  /* refused: no host, userinfo, no scheme, other forms */
  CHECK_EQ(-1, origin_of("http://"));
  CHECK_EQ(-1, origin_of("http:///p"));
  CHECK_EQ(-1, origin_of("http://:80/p"));
  CHECK_EQ(-1, origin_of("http://u:pw@h/p"));
  CHECK_EQ(-1, origin_of("http://h:80@evil/p"));
  CHECK_EQ(-1, origin_of("http:/p"));
  CHECK_EQ(-1, origin_of("1http://h/p"));
  CHECK_EQ(-1, origin_of("*"));
  CHECK_EQ(-1, origin_of("example.org:443"));
  CHECK_EQ(-1, origin_of(""));
  CHECK_EQ(-1, origin_of("http://a b/p"));
  CHECK_EQ(-1, origin_of("http://h:8x/p"));
  /* a fragment, whitespace, control bytes, bytes past ASCII */
  CHECK_EQ(-1, origin_of("/ws#frag"));
  CHECK_EQ(-1, origin_of("/w s"));
  CHECK_EQ(-1, origin_of("/w\ts"));
  CHECK_EQ(-1, origin_of("/w\x7fs"));
  CHECK_EQ(-1, origin_of("/caf\xc3\xa9"));
  CHECK_EQ(0, origin_of("/caf%C3%A9?q=a|b^c[]{}"));
}
