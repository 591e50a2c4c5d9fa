/* The HTTP side of a connection: the request head parsed by llhttp, the
 * upgrade checked by handshake.c, and the few responses we write ourselves
 * (101, and errors before the upgrade). */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "handshake.h"
#include "lauxlib.h"
#include "llhttp.h"
#include "log.h"
#include "nx.h"
#include "token.h"

#define NX_MAX_HEADERS 100

enum { EL_NONE = 0, EL_URL, EL_FIELD, EL_VALUE };

typedef struct {
  uint32_t name_off, name_len, value_off, value_len;
} nx_hdr_t;

/* Small while the head is small: the copy grows up to max_header_size and
 * the header index past its first 16 entries only for heads that need it
 * (this lives only during the handshake, but for every connection). */
struct nx_http_s {
  llhttp_t parser;
  char *buf; /* every piece of the head, copied: the read buffer is reused */
  size_t len, cap, max;
  size_t seen; /* bytes of head fed so far */
  size_t url_off, url_len;
  nx_hdr_t *h; /* hdr_small, or a larger heap array */
  int nheaders, hcap;
  int last;    /* EL_*: which element the previous piece belonged to */
  int too_big; /* 431, or 414 when the request target alone is too long */
  int obs_fold;
  const char *error; /* why the request was refused (static text), for the log */
  int complete;
  int headers_done;
  int continue_checked; /* Expect: 100-continue was looked at */
  int value_open;       /* the last value piece ran to the end of its input */
  int method_done;      /* llhttp has read the method (parser.method is it) */
  int method_pending;   /* llhttp refused the method: is it a token? (method_verdict) */
  unsigned start_len;   /* the first bytes of the request (after empty lines), for a method */
  char start[24];
  int blank_line_end; /* the input so far ends in a line end and blanks (see on_header_value) */
  const char *exec_start, *exec_end; /* the input of the llhttp_execute running */
  nx_hdr_t hdr_small[16];
};

static int append(nx_http_t *h, const char *at, size_t n) {
  if (h->len + n > h->cap) {
    size_t cap = h->cap * 2;
    char *b;
    if (h->len + n > h->max) {
      h->too_big = h->last == EL_URL ? 414 : 431;
      return -1;
    }
    while (cap < h->len + n)
      cap *= 2;
    if (cap > h->max)
      cap = h->max;
    if (!(b = (char *)realloc(h->buf, cap))) {
      h->too_big = 431;
      return -1;
    }
    h->buf = b;
    h->cap = cap;
  }
  memcpy(h->buf + h->len, at, n);
  h->len += n;
  return 0;
}

/* Room for one more header in the index; -1 past NX_MAX_HEADERS. */
static int grow_headers(nx_http_t *h) {
  nx_hdr_t *g;
  int cap;
  if (h->nheaders < h->hcap)
    return 0;
  if (h->hcap >= NX_MAX_HEADERS)
    return -1;
  cap = h->hcap * 2 > NX_MAX_HEADERS ? NX_MAX_HEADERS : h->hcap * 2;
  g = (nx_hdr_t *)malloc((size_t)cap * sizeof(*g));
  if (!g)
    return -1;
  memcpy(g, h->h, (size_t)h->nheaders * sizeof(*g));
  if (h->h != h->hdr_small)
    free(h->h);
  h->h = g;
  h->hcap = cap;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n) {
  nx_http_t *h = (nx_http_t *)p->data;
  h->method_done = 1;
  if (h->last != EL_URL)
    h->url_off = h->len, h->url_len = 0, h->last = EL_URL;
  if (append(h, at, n))
    return -1;
  h->url_len += n;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n) {
  nx_http_t *h = (nx_http_t *)p->data;
  if (h->last != EL_FIELD) {
    if (grow_headers(h)) {
      h->too_big = 431;
      return -1;
    }
    h->h[h->nheaders].name_off = (uint32_t)h->len;
    h->h[h->nheaders].name_len = 0;
    h->h[h->nheaders].value_off = (uint32_t)h->len;
    h->h[h->nheaders].value_len = 0;
    h->nheaders++;
    h->last = EL_FIELD;
  }
  if (append(h, at, n))
    return -1;
  h->h[h->nheaders - 1].name_len += (uint32_t)n;
  return 0;
}

/* A value comes in pieces only where a read ended. Another piece after one
 * that ended before its input did (at a line end), or that starts past the
 * start of its input, is an obs-fold continuation line: refused with 400
 * (RFC 9112 §5.2 allows that or joining the lines). */
static int on_header_value(llhttp_t *p, const char *at, size_t n) {
  nx_http_t *h = (nx_http_t *)p->data;
  if (h->nheaders == 0)
    return -1;
  if (h->last != EL_VALUE) {
    /* A first piece after a line end: the value's first line was empty
     * ("Connection:" CRLF " Upgrade"), a fold too. */
    const char *b = at;
    while (b > h->exec_start && (b[-1] == ' ' || b[-1] == '\t'))
      b--;
    if (n && (b > h->exec_start ? b[-1] == '\n' : h->blank_line_end)) { /* (n: an empty value) */
      h->obs_fold = 1;
      return -1;
    }
    h->h[h->nheaders - 1].value_off = (uint32_t)h->len;
    h->last = EL_VALUE;
  } else if (!h->value_open || at != h->exec_start) {
    h->obs_fold = 1;
    return -1;
  }
  if (append(h, at, n))
    return -1;
  h->value_open = at + n == h->exec_end;
  h->h[h->nheaders - 1].value_len += (uint32_t)n;
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  nx_http_t *h = (nx_http_t *)p->data;
  h->headers_done = 1;
  /* Pause: nx_http_feed measures the head where it ends, then resumes. */
  return HPE_PAUSED;
}

static int on_message_complete(llhttp_t *p) {
  nx_http_t *h = (nx_http_t *)p->data;
  h->complete = 1;
  /* Stop here: nothing after the first request is read as HTTP. */
  return HPE_PAUSED;
}

static llhttp_settings_t settings;
static int settings_ready;

#define NX_HTTP_BUF 1024 /* the head's first buffer: most requests fit */

nx_http_t *nx_http_new(nx_rt_t *rt, size_t max_header_size) {
  nx_http_t *h = (nx_http_t *)nx_freelist_pop(&rt->http_pool);
  if (h) {
    /* A kept parser keeps its NX_HTTP_BUF buffer; the rest starts over. */
    char *buf = h->buf;
    memset(h, 0, offsetof(nx_http_t, hdr_small));
    h->buf = buf;
  } else {
    if (!(h = (nx_http_t *)calloc(1, sizeof(*h))))
      return NULL;
    if (!(h->buf = (char *)malloc(NX_HTTP_BUF))) {
      free(h);
      return NULL;
    }
  }
  h->max = max_header_size;
  h->cap = max_header_size < NX_HTTP_BUF ? (max_header_size ? max_header_size : 1) : NX_HTTP_BUF;
  h->h = h->hdr_small;
  h->hcap = (int)(sizeof(h->hdr_small) / sizeof(h->hdr_small[0]));
  if (!settings_ready) {
    llhttp_settings_init(&settings);
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_headers_complete = on_headers_complete;
    settings.on_message_complete = on_message_complete;
    settings_ready = 1;
  }
  llhttp_init(&h->parser, HTTP_REQUEST, &settings);
  h->parser.data = h;
  return h;
}

void nx_http_free(nx_rt_t *rt, nx_http_t *h) {
  if (!h)
    return;
  if (h->h != h->hdr_small)
    free(h->h);
  /* Kept only with a buffer of the first size (one that grew is freed). */
  if (h->cap == NX_HTTP_BUF && nx_freelist_push(&rt->http_pool, h, NX_STRUCT_CACHE))
    return;
  nx_http_destroy(h);
}

void nx_http_destroy(void *p) {
  nx_http_t *h = (nx_http_t *)p;
  free(h->buf);
  free(h);
}

const char *nx_http_error(const nx_http_t *h) { return h->error ? h->error : "too large"; }

static int feed(nx_http_t *h, const char *data, size_t len, const char **tail, size_t *tail_len);

int nx_http_feed(nx_http_t *h, const char *data, size_t len, const char **tail, size_t *tail_len) {
  int r = feed(h, data, len, tail, tail_len);
  const char *e = data + len;
  while (e > data && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  if (e > data)
    h->blank_line_end = e[-1] == '\n';
  return r;
}

/* Keeps the first bytes of the request, after the empty lines a server
 * ignores before it (RFC 9112 §2.2). */
static void keep_start(nx_http_t *h, const char *data, size_t len) {
  while (h->start_len == 0 && len && (*data == '\r' || *data == '\n'))
    data++, len--;
  if (len && h->start_len < sizeof(h->start)) { /* (data may be NULL when len is 0) */
    size_t n = sizeof(h->start) - h->start_len;
    memcpy(h->start + h->start_len, data, n < len ? n : len);
    h->start_len += (unsigned)(n < len ? n : len);
  }
}

/* Once llhttp has refused the method: a token followed by a space (or
 * filling what is kept) is a well-formed method this server does not know,
 * 501 (RFC 9110 §9.1); anything else is not HTTP (a TLS hello to a plain
 * port), 400. 0 while the bytes so far are a token: the next ones decide,
 * however the request was split. */
static int method_verdict(nx_http_t *h, const char *data, size_t len) {
  unsigned i = 0;
  keep_start(h, data, len);
  while (i < h->start_len && nx_is_tchar((unsigned char)h->start[i]))
    i++;
  if (i == h->start_len && i < sizeof(h->start))
    return 0;
  if (i > 0 && (i == h->start_len || h->start[i] == ' ')) {
    h->error = "a method this server does not know";
    return 501;
  }
  return 400;
}

static int feed(nx_http_t *h, const char *data, size_t len, const char **tail, size_t *tail_len) {
  llhttp_errno_t err;
  size_t used, before = h->seen;

  if (!h->headers_done)
    h->seen += len;
  if (h->method_pending)
    return method_verdict(h, data, len);
  keep_start(h, data, len);
  h->exec_start = data;
  h->exec_end = data + len;
  err = llhttp_execute(&h->parser, data, len);
  if (err == HPE_PAUSED && h->headers_done && !h->complete) {
    /* Paused where the head ends (on_headers_complete): the limit is on
     * the head as sent, line ends and all, however it was split into reads. */
    const char *at = llhttp_get_error_pos(&h->parser);
    if (before + (size_t)(at - data) > h->max)
      return 431;
    llhttp_resume(&h->parser);
    len -= (size_t)(at - data);
    data = at;
    h->exec_start = data;
    err = llhttp_execute(&h->parser, data, len);
  }
  if (h->too_big)
    return h->too_big;
  if (h->obs_fold) {
    h->error = "a header value folded over lines (obs-fold)";
    return 400;
  }
  if (err == HPE_OK) {
    if (!h->headers_done && h->seen > h->max)
      return 431;
    return 0;
  }
  if (err == HPE_PAUSED_UPGRADE || (err == HPE_PAUSED && h->complete)) {
    used = (size_t)(llhttp_get_error_pos(&h->parser) - data);
    if (used > len)
      used = len;
    *tail = data + used;
    *tail_len = len - used;
    return 1;
  }
  h->error = llhttp_get_error_reason(&h->parser);
  /* (llhttp also knows RTSP's methods, and refuses them in HTTP later) */
  if (err == HPE_INVALID_METHOD || (err == HPE_INVALID_CONSTANT &&
                                    strcmp(h->error, "Invalid method for HTTP/x.x request") == 0)) {
    h->method_pending = 1;
    return method_verdict(h, NULL, 0);
  }
  /* llhttp reads 0.9, 1.0, 1.1 and 2.0 only: another well-formed version
   * (HTTP/DIGIT.DIGIT) is one we do not speak (RFC 9110 §15.6.6), not a
   * malformed request; a version that is not well formed is (RFC 9112 §3). */
  return err == HPE_INVALID_VERSION &&
                 strcmp(llhttp_get_error_reason(&h->parser), "Invalid HTTP version") == 0
             ? 505
             : 400;
}

static void fill_request(nx_http_t *h, nx_request_t *req, nx_header_t *hdrs) {
  int i;
  const char *m = llhttp_method_name((llhttp_method_t)h->parser.method);
  req->method = m;
  req->method_len = strlen(m);
  req->http_major = h->parser.http_major;
  req->http_minor = h->parser.http_minor;
  for (i = 0; i < h->nheaders; i++) {
    hdrs[i].name = h->buf + h->h[i].name_off;
    hdrs[i].name_len = h->h[i].name_len;
    hdrs[i].value = h->buf + h->h[i].value_off;
    hdrs[i].value_len = h->h[i].value_len;
  }
  req->headers = hdrs;
  req->nheaders = (size_t)h->nheaders;
}

int nx_http_check(nx_http_t *h, const char **why, char *key, size_t keylen) {
  nx_header_t hdrs[NX_MAX_HEADERS];
  nx_request_t req;
  nx_handshake_t hs;

  size_t origin;

  fill_request(h, &req, hdrs);
  if (nx_handshake_check(&req, &hs)) {
    *why = hs.error;
    return hs.status;
  }
  if (nx_target_split(h->buf + h->url_off, h->url_len, &origin)) {
    *why = "the request target is neither a path nor an absolute URI with a host";
    return 400;
  }
  if (hs.key_len >= keylen) {
    *why = "Sec-WebSocket-Key too long";
    return 400;
  }
  memcpy(key, hs.key, hs.key_len);
  key[hs.key_len] = '\0';
  *why = NULL;
  return 0;
}

int nx_http_expects_continue(nx_http_t *h) {
  nx_header_t hdrs[NX_MAX_HEADERS];
  nx_request_t req;
  nx_handshake_t hs;
  int i;
  if (!h->headers_done || h->continue_checked)
    return 0;
  h->continue_checked = 1;
  for (i = 0; i < h->nheaders; i++)
    if (h->h[i].name_len == 6 && strncasecmp(h->buf + h->h[i].name_off, "expect", 6) == 0)
      break;
  if (i == h->nheaders)
    return 0; /* (most requests: no second pass over the head) */
  fill_request(h, &req, hdrs);
  return nx_handshake_check(&req, &hs) == 0 && hs.expect_continue;
}

/* A header's value without the spaces and tabs around it (RFC 9110 OWS). */
static const char *header_value(const nx_http_t *h, int i, size_t *len) {
  const char *v = h->buf + h->h[i].value_off;
  size_t n = h->h[i].value_len;
  while (n && (*v == ' ' || *v == '\t'))
    v++, n--;
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  *len = n;
  return v;
}

size_t nx_http_store_size(const nx_http_t *h) {
  size_t n = h->url_len, vlen;
  int i;
  for (i = 0; i < h->nheaders; i++) {
    header_value(h, i, &vlen);
    n += 8 + h->h[i].name_len + vlen;
  }
  return n;
}

void nx_http_store(const nx_http_t *h, nx_box_t *b) {
  uint8_t *p = b->head;
  int i;
  b->method = (uint8_t)h->parser.method;
  b->url_len = (uint32_t)h->url_len;
  b->nheaders = (uint32_t)h->nheaders;
  memcpy(p, h->buf + h->url_off, h->url_len);
  p += h->url_len;
  for (i = 0; i < h->nheaders; i++) {
    size_t vlen;
    const char *v = header_value(h, i, &vlen);
    uint32_t lens[2] = {(uint32_t)h->h[i].name_len, (uint32_t)vlen};
    memcpy(p, lens, 8);
    p += 8;
    memcpy(p, h->buf + h->h[i].name_off, lens[0]);
    p += lens[0];
    memcpy(p, v, vlen);
    p += vlen;
  }
  b->head_len = (uint32_t)(p - b->head);
}

static const char *status_text(int status) {
  /* RFC 9110 §15, and 429, 431 (RFC 6585) and 451 (RFC 7725). */
  static const char *const c4[] = {"Bad Request",
                                   "Unauthorized",
                                   "Payment Required",
                                   "Forbidden",
                                   "Not Found",
                                   "Method Not Allowed",
                                   "Not Acceptable",
                                   "Proxy Authentication Required",
                                   "Request Timeout",
                                   "Conflict",
                                   "Gone",
                                   "Length Required",
                                   "Precondition Failed",
                                   "Content Too Large",
                                   "URI Too Long",
                                   "Unsupported Media Type",
                                   "Range Not Satisfiable",
                                   "Expectation Failed",
                                   NULL,
                                   NULL,
                                   NULL,
                                   "Misdirected Request",
                                   "Unprocessable Content",
                                   NULL,
                                   NULL,
                                   NULL,
                                   "Upgrade Required",
                                   NULL,
                                   "Precondition Required",
                                   "Too Many Requests",
                                   NULL,
                                   "Request Header Fields Too Large"};
  static const char *const c5[] = {"Internal Server Error", "Not Implemented",
                                   "Bad Gateway",           "Service Unavailable",
                                   "Gateway Timeout",       "HTTP Version Not Supported"};
  const char *t = NULL;
  if (status == 101)
    return "Switching Protocols";
  if (status >= 400 && status < 400 + (int)(sizeof(c4) / sizeof(c4[0])))
    t = c4[status - 400];
  else if (status >= 500 && status < 500 + (int)(sizeof(c5) / sizeof(c5[0])))
    t = c5[status - 500];
  else if (status == 451)
    t = "Unavailable For Legal Reasons";
  else if (status == 511)
    t = "Network Authentication Required";
  if (t)
    return t;
  return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}

/* 1 if the extra header lines hold an Upgrade header, whose sender must
 * name "upgrade" in Connection too (RFC 9110 §7.8). */
/* Whether the header lines (each ending in CRLF) have one named name
 * (given with its colon, lower-case). */
static int has_header(const char *headers, const char *name) {
  const char *p = headers;
  size_t n = strlen(name);
  while (p && *p) {
    if (strncasecmp(p, name, n) == 0)
      return 1;
    p = strstr(p, "\r\n");
    if (p)
      p += 2;
  }
  return 0;
}

const char *nx_http_target(const nx_http_t *h, size_t *len) {
  *len = h->url_len;
  return h->buf + h->url_off;
}

int nx_http_method(const nx_http_t *h) { return h->parser.method; }

int nx_http_check_plain(nx_http_t *h, const char **why) {
  nx_header_t hdrs[NX_MAX_HEADERS];
  nx_request_t req;
  nx_handshake_t out;
  fill_request(h, &req, hdrs);
  *why = NULL;
  if (nx_request_check(&req, &out))
    *why = out.error;
  return out.status;
}

/* Answers the request with an HTTP response and ends the connection.
 * headers: extra header lines, each ending in CRLF, or NULL. */
void nx_http_respond(nx_conn_t *c, int status, const char *headers, const char *body, size_t blen) {
  nx_http_answer(c, status, headers, body, blen,
                 c->http && c->http->method_done && c->http->parser.method == HTTP_HEAD);
}

/* The Date header's value (RFC 9110 §6.6.1, IMF-fixdate), made once a
 * second; in English whatever the locale. */
static const char *http_date(void) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  static time_t made = (time_t)-1;
  static char text[80]; /* 29 bytes, but the compiler cannot bound the fields */
  time_t now = time(NULL);
  struct tm tm;
  if (now != made && gmtime_r(&now, &tm)) {
    snprintf(text, sizeof(text), "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", days + 3 * tm.tm_wday,
             tm.tm_mday, months + 3 * tm.tm_mon, tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    made = now;
  }
  return text;
}

void nx_http_answer(nx_conn_t *c, int status, const char *headers, const char *body, size_t blen,
                    int head_only) {
  char head[512];
  int n;
  const char *text = status_text(status);
  char deflt[128];

  if (!body) {
    n = snprintf(deflt, sizeof(deflt), "%d %s\n", status, text);
    body = deflt;
    blen = (size_t)n;
  }
  /* The app's own Content-Type and Date win over ours. */
  int own_date = has_header(headers, "date:");
  n = snprintf(
      head, sizeof(head),
      "HTTP/1.1 %d %s\r\n"
      "%s%s%s"
      "%s"
      "Content-Length: %zu\r\n"
      "Connection: %sclose\r\n",
      status, text, own_date ? "" : "Date: ", own_date ? "" : http_date(), own_date ? "" : "\r\n",
      has_header(headers, "content-type:") ? "" : "Content-Type: text/plain; charset=utf-8\r\n",
      blen, has_header(headers, "upgrade:") ? "Upgrade, " : ""); /* RFC 9110 §7.8 */
  nx_conn_send_raw(c, head, (size_t)n);
  if (headers)
    nx_conn_send_raw(c, headers, strlen(headers));
  nx_conn_send_raw(c, "\r\n", 2);
  if (!head_only) /* (a HEAD's answer: its Content-Length, no body: RFC 9110 §9.3.2) */
    nx_conn_send_raw(c, body, blen);
  nx_conn_debug(c, "answered HTTP %d %s", status, text);
  c->linger = 1; /* the client may still be sending its request */
  nx_conn_end(c);
}

size_t nx_http_header_values(nx_http_t *h, const char *name, const char **values, size_t *lens,
                             size_t max) {
  size_t n = 0;
  int i;
  for (i = 0; i < h->nheaders && n < max; i++) {
    size_t nl = h->h[i].name_len;
    if (nl == strlen(name) && strncasecmp(h->buf + h->h[i].name_off, name, nl) == 0) {
      values[n] = h->buf + h->h[i].value_off;
      lens[n] = h->h[i].value_len;
      n++;
    }
  }
  return n;
}

/* base64(SHA-1(key + GUID)), RFC 6455 §4.2.2: 28 characters. The digest is
 * fetched once and its context reused: SHA1() fetches the algorithm (a
 * locked lookup in the provider store) and builds a context on every call,
 * twice the work of the hash itself. Single-threaded, like the rest. */
int nx_http_accept_key(const char *key, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  static EVP_MD *md;
  static EVP_MD_CTX *ctx;
  unsigned char digest[SHA_DIGEST_LENGTH];
  unsigned int dlen = 0;
  size_t klen = strlen(key);

  out[0] = '\0';
  if (klen > 64)
    return -1;
  if (!ctx) {
    if (!md && !(md = EVP_MD_fetch(NULL, "SHA1", NULL)))
      return -1;
    if (!(ctx = EVP_MD_CTX_new()))
      return -1;
  }
  if (!EVP_DigestInit_ex2(ctx, md, NULL) || !EVP_DigestUpdate(ctx, key, klen) ||
      !EVP_DigestUpdate(ctx, guid, sizeof(guid) - 1) || !EVP_DigestFinal_ex(ctx, digest, &dlen))
    return -1;
  EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
  return 0;
}
