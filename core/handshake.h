/* Validation of a WebSocket opening handshake (RFC 6455 §4.2.1). Pure: it
 * reads an already parsed request and decides; computing the accept key
 * (SHA-1) is left to the caller. */
#ifndef NX_HANDSHAKE_H
#define NX_HANDSHAKE_H

#include <stddef.h>

typedef struct {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} nx_header_t;

typedef struct {
  const char *method;
  size_t method_len;
  int http_major, http_minor;
  const nx_header_t *headers;
  size_t nheaders;
} nx_request_t;

typedef struct {
  int status;        /* 0 when the request is a valid upgrade, else the HTTP status to answer */
  const char *error; /* why it is not, for the response body and the log */
  const char *key;   /* the Sec-WebSocket-Key value, when valid */
  size_t key_len;
  int expect_continue; /* Expect: 100-continue (the 101 must follow a 100) */
} nx_handshake_t;

/* Checks method, version, header names, Host, Transfer-Encoding, Upgrade,
 * Connection, Sec-WebSocket-Version, Sec-WebSocket-Key and
 * Sec-WebSocket-Protocol, in that order. Fills out and returns out->status:
 *   0   valid;
 *   400 malformed (HTTP/1.0; a header name that is empty or holds
 *       whitespace, which RFC 9112 §5.1 requires a 400 for; a missing,
 *       repeated or invalid Host (RFC 9112 §3.2); a Transfer-Encoding whose
 *       last coding is not chunked (§6.3); bad Upgrade/Connection; bad key;
 *       missing version; duplicated key or version; a Sec-WebSocket-Protocol
 *       element that is not a token (RFC 6455 §4.1));
 *   405 method other than GET;
 *   426 no Upgrade header at all (a plain HTTP request), or a version other
 *       than 13 (the answer must then carry Sec-WebSocket-Version: 13). */
int nx_handshake_check(const nx_request_t *req, nx_handshake_t *out);

/* The checks of any HTTP/1.x request that RFC 9112 answers with 400 (a
 * header name that is empty or holds whitespace; more than one Host, an
 * invalid one, or none in HTTP/1.1; a Transfer-Encoding whose last coding
 * is not chunked), as nx_handshake_check makes them: for the requests the
 * core answers without an upgrade (the health and metrics paths). */
int nx_request_check(const nx_request_t *req, nx_handshake_t *out);

/* 1 if v is a valid Host value, RFC 9110 §7.2: uri-host [ ":" port ], where
 * uri-host is an IP literal in brackets or a reg-name (RFC 3986 §3.2.2:
 * unreserved, sub-delims and %XX; an IPv4 address is one too), possibly
 * empty. No whitespace (the caller trims OWS). */
int nx_host_valid(const char *v, size_t len);

/* 1 if a comma-separated header value contains token (case-insensitive,
 * optional whitespace around elements). */
int nx_header_has_token(const char *value, size_t len, const char *token);

/* Finds the first header called name (case-insensitive); NULL if none.
 * *count, when not NULL, receives how many headers have that name. */
const nx_header_t *nx_header_find(const nx_request_t *req, const char *name, int *count);

/* 1 if s is canonical base64 of exactly 16 bytes (24 chars ending "=="). */
int nx_handshake_key_valid(const char *s, size_t len);

/* The request target (RFC 9112 §3.2): the origin form "/path?query", or the
 * absolute form "scheme://authority/path?query", which a server must
 * accept. Sets *origin to where the path starts (0 for the origin form, just
 * past the authority for the absolute form) and returns 0; -1 for any other
 * target, an absolute form whose authority is not a valid host[:port] (an
 * empty host, or userinfo, which RFC 9110 §4.2 does not allow in http(s)
 * URIs), or a target with a fragment ('#', RFC 6455 §3), whitespace, a
 * control byte or a byte past ASCII (a client percent-encodes those). */
int nx_target_split(const char *target, size_t len, size_t *origin);

#endif
