/* The client side of the opening handshake: key, request, checking the 101. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "lg.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void lg_hs_accept(const char *key, size_t len, char accept[29]) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  char cat[64 + sizeof(GUID)];
  if (len > 64)
    len = 64; /* a valid key has 24 characters */
  memcpy(cat, key, len);
  memcpy(cat + len, GUID, sizeof(GUID) - 1);
  SHA1((const unsigned char *)cat, len + sizeof(GUID) - 1, digest);
  EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH); /* 28 chars + NUL */
}

void lg_hs_key(uint64_t *rng, char key[LG_WS_KEY_LEN + 1], char accept[29]) {
  unsigned char raw[16];
  uint64_t a = lg_rand(rng), b = lg_rand(rng);
  memcpy(raw, &a, 8);
  memcpy(raw + 8, &b, 8);
  EVP_EncodeBlock((unsigned char *)key, raw, 16); /* 24 chars + NUL */
  lg_hs_accept(key, LG_WS_KEY_LEN, accept);
}

size_t lg_hs_request(char *out, size_t cap, const char *host, int port, const char *path,
                     const char *key, int deflate) {
  int n = snprintf(out, cap,
                   "GET %s HTTP/1.1\r\n"
                   "Host: %s:%d\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "%s"
                   "\r\n",
                   path, host, port, key,
                   deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                             "client_max_window_bits\r\n"
                           : "");
  if (n < 0 || (size_t)n >= cap)
    return 0;
  return (size_t)n;
}

static const char *memfind(const char *hay, size_t n, const char *needle, size_t m) {
  size_t i;
  if (m > n)
    return NULL;
  for (i = 0; i + m <= n; i++)
    if (hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0)
      return hay + i;
  return NULL;
}

const char *lg_hs_header(const char *head, size_t len, const char *name, size_t *vlen) {
  const char *end = head + len, *line = memfind(head, len, "\r\n", 2), *eol;
  size_t want = strlen(name);
  while (line && line < end) {
    const char *colon, *v, *ve;
    line += 2;
    eol = memfind(line, (size_t)(end - line), "\r\n", 2);
    if (!eol)
      eol = end;
    colon = memchr(line, ':', (size_t)(eol - line));
    if (colon && (size_t)(colon - line) == want && strncasecmp(line, name, want) == 0) {
      v = colon + 1;
      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      ve = eol;
      while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
      *vlen = (size_t)(ve - v);
      return v;
    }
    line = eol;
  }
  return NULL;
}

int lg_hs_response(const char *buf, size_t len, const char *accept, size_t *head_len,
                   const char **err) {
  const char *end = memfind(buf, len, "\r\n\r\n", 4), *v;
  size_t vlen;

  if (!end) {
    if (len > 8192) {
      *err = "response head over 8 KiB";
      return -1;
    }
    return 0;
  }
  *head_len = (size_t)(end - buf) + 4;
  if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0) {
    *err = "status is not 101";
    return -1;
  }
  v = lg_hs_header(buf, (size_t)(end - buf) + 2, "Sec-WebSocket-Accept", &vlen);
  if (!v) {
    *err = "no Sec-WebSocket-Accept";
    return -1;
  }
  if (vlen != 28 || memcmp(v, accept, 28) != 0) {
    *err = "wrong Sec-WebSocket-Accept";
    return -1;
  }
  v = lg_hs_header(buf, (size_t)(end - buf) + 2, "Upgrade", &vlen);
  if (!v || vlen != 9 || strncasecmp(v, "websocket", 9) != 0) {
    *err = "no Upgrade: websocket";
    return -1;
  }
  return 1;
}
