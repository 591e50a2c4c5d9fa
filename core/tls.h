/* TLS as a transport: OpenSSL on memory BIOs. The connection feeds it the
 * bytes it read and writes out the bytes it produces; nothing above the
 * transport (HTTP, WebSocket) knows TLS is there. */
#ifndef NX_TLS_H
#define NX_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct nx_tls_s nx_tls_t;
typedef struct ssl_ctx_st nx_tls_ctx_t;

/* A server context from PEM files: TLS 1.2 and later only. NULL and a
 * message in err when a file cannot be read or the key does not match. */
nx_tls_ctx_t *nx_tls_ctx_new(const char *cert_file, const char *key_file, char *err, size_t errlen);
void nx_tls_ctx_free(nx_tls_ctx_t *ctx);

nx_tls_t *nx_tls_new(nx_tls_ctx_t *ctx);
void nx_tls_free(nx_tls_t *t);

/* A buffer the transport keeps for its owner: the ciphertext waiting to be
 * written (pass it as out below). Freed with t. */
nx_buf_t *nx_tls_out(nx_tls_t *t);

/* Feeds n bytes read from the socket. Decrypted bytes are appended to
 * plain; bytes TLS must send (handshake records, alerts) to out. Returns 0,
 * 1 when the peer sent close_notify (no more data will come), or -1 when
 * the peer broke TLS (the connection must be dropped). */
int nx_tls_read(nx_tls_t *t, const uint8_t *in, size_t n, nx_buf_t *plain, nx_buf_t *out);
/* OpenSSL's reason for the last failure of nx_tls_read or nx_tls_write
 * (kept at the debug log level only: "" otherwise). */
const char *nx_tls_last_error(void);

/* Queues our close_notify into out (called once, after the last bytes). */
int nx_tls_shutdown(nx_tls_t *t, nx_buf_t *out);

/* Encrypts plain's bytes into out and consumes what it encrypted (all of
 * them once the handshake is done; none before). Returns 0 or -1. */
int nx_tls_write(nx_tls_t *t, nx_buf_t *plain, nx_buf_t *out);

#endif
