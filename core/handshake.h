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
} nx_handshake_t;

/* Checks method, version, Host, Upgrade, Connection, Sec-WebSocket-Key and
 * Sec-WebSocket-Version. Fills out and returns out->status:
 *   0   valid;
 *   400 malformed (missing Host, HTTP/1.0, bad Upgrade/Connection, bad key,
 *       missing version, duplicated key or version);
 *   405 method other than GET;
 *   426 no Upgrade header at all (a plain HTTP request), or a version other
 *       than 13 (the answer must then carry Sec-WebSocket-Version: 13). */
int nx_handshake_check(const nx_request_t *req, nx_handshake_t *out);

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
 * target, or an absolute form with an empty host or with userinfo ("@"),
 * which RFC 9110 §4.2 does not allow in http(s) URIs. */
int nx_target_split(const char *target, size_t len, size_t *origin);

#endif
