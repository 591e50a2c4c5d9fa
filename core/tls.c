/* TLS on memory BIOs. See tls.h. */
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

struct nx_tls_s {
  SSL *ssl;
  BIO *rbio;    /* ciphertext from the peer */
  BIO *wbio;    /* ciphertext to the peer */
  nx_buf_t out; /* ciphertext waiting for the socket (nx_tls_out) */
};

static void openssl_error(char *err, size_t errlen, const char *what, const char *file) {
  unsigned long e = ERR_get_error();
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  snprintf(err, errlen, "%s %s: %s", what, file, e ? buf : "unknown error");
  ERR_clear_error();
}

nx_tls_ctx_t *nx_tls_ctx_new(const char *cert_file, const char *key_file, char *err,
                             size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    snprintf(err, errlen, "cannot create a TLS context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are all sound. */
  SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!MD5:!DSS");
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
    openssl_error(err, errlen, "cannot load the TLS certificate", cert_file);
    SSL_CTX_free(ctx);
    return NULL;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    openssl_error(err, errlen, "cannot load the TLS key", key_file);
    SSL_CTX_free(ctx);
    return NULL;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    snprintf(err, errlen, "the TLS key %s does not match the certificate %s", key_file, cert_file);
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

void nx_tls_ctx_free(nx_tls_ctx_t *ctx) { SSL_CTX_free(ctx); }

nx_tls_t *nx_tls_new(nx_tls_ctx_t *ctx) {
  nx_tls_t *t = (nx_tls_t *)calloc(1, sizeof(*t));
  if (!t)
    return NULL;
  t->ssl = SSL_new(ctx);
  t->rbio = BIO_new(BIO_s_mem());
  t->wbio = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->rbio || !t->wbio) {
    if (t->ssl)
      SSL_free(t->ssl);
    else {
      BIO_free(t->rbio);
      BIO_free(t->wbio);
    }
    free(t);
    return NULL;
  }
  SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both BIOs now */
  SSL_set_accept_state(t->ssl);
  return t;
}

void nx_tls_free(nx_tls_t *t) {
  if (!t)
    return;
  SSL_free(t->ssl);
  nx_buf_free(&t->out);
  free(t);
}

nx_buf_t *nx_tls_out(nx_tls_t *t) { return &t->out; }

/* Moves what TLS wants to send into out. */
static int drain(nx_tls_t *t, nx_buf_t *out) {
  size_t pending;
  while ((pending = BIO_ctrl_pending(t->wbio)) > 0) {
    int n;
    if (nx_buf_reserve(out, pending))
      return -1;
    n = BIO_read(t->wbio, out->data + out->len, (int)pending);
    if (n <= 0)
      break;
    out->len += (size_t)n;
  }
  return 0;
}

/* Why the last TLS operation failed (for the caller's log entry, which
 * names the connection). */
static char last_error[256];

const char *nx_tls_last_error(void) { return last_error; }

static int fatal(nx_tls_t *t, int r) {
  int e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return 0;
  if (NX_LOG_ENABLED(NX_LOG_DEBUG))
    ERR_error_string_n(ERR_peek_error(), last_error, sizeof(last_error));
  ERR_clear_error();
  return -1;
}

int nx_tls_shutdown(nx_tls_t *t, nx_buf_t *out) {
  if (SSL_is_init_finished(t->ssl))
    SSL_shutdown(t->ssl);
  ERR_clear_error();
  return drain(t, out);
}

/* A memory BIO keeps the largest buffer it has needed until it is freed:
 * once empty, a large one is replaced by a new one (the SSL frees the old),
 * so that an idle connection holds no more than a busy one's 64 KiB. */
#define BIO_KEEP_MAX (64u * 1024)

static void shrink_bio(nx_tls_t *t, int write_side) {
  BIO *b = write_side ? t->wbio : t->rbio, *fresh;
  BUF_MEM *bm = NULL;
  if (BIO_ctrl_pending(b) || BIO_get_mem_ptr(b, &bm) <= 0 || !bm || bm->max <= BIO_KEEP_MAX)
    return;
  if (!(fresh = BIO_new(BIO_s_mem())))
    return; /* (it keeps the large one) */
  if (write_side) {
    SSL_set0_wbio(t->ssl, fresh);
    t->wbio = fresh;
  } else {
    SSL_set0_rbio(t->ssl, fresh);
    t->rbio = fresh;
  }
}

int nx_tls_read(nx_tls_t *t, const uint8_t *in, size_t n, nx_buf_t *plain, nx_buf_t *out) {
  int r, closed = 0;
  if (n && BIO_write(t->rbio, in, (int)n) != (int)n)
    return -1;
  if (!SSL_is_init_finished(t->ssl)) {
    r = SSL_do_handshake(t->ssl);
    if (r != 1 && fatal(t, r)) {
      drain(t, out); /* the alert */
      return -1;
    }
  }
  for (;;) {
    if (nx_buf_reserve(plain, 16384))
      return -1;
    r = SSL_read(t->ssl, plain->data + plain->len, (int)(plain->cap - plain->len));
    if (r <= 0) {
      if (SSL_get_error(t->ssl, r) == SSL_ERROR_ZERO_RETURN) {
        closed = 1; /* close_notify */
        break;
      }
      if (fatal(t, r)) {
        drain(t, out);
        return -1;
      }
      break;
    }
    plain->len += (size_t)r;
  }
  shrink_bio(t, 0);
  if (drain(t, out))
    return -1;
  shrink_bio(t, 1);
  return closed;
}

/* Encrypts in pieces of at most 64 KiB, each moved to out before the next:
 * the write BIO then never holds (nor keeps) more than one piece. */
int nx_tls_write(nx_tls_t *t, nx_buf_t *plain, nx_buf_t *out) {
  while (nx_buf_size(plain) > 0) {
    size_t n = nx_buf_size(plain) > BIO_KEEP_MAX ? BIO_KEEP_MAX : nx_buf_size(plain);
    int r = SSL_write(t->ssl, plain->data + plain->off, (int)n);
    if (r <= 0) {
      if (fatal(t, r))
        return -1;
      break; /* handshake not finished: keep the bytes */
    }
    nx_buf_consume(plain, (size_t)r);
    if (drain(t, out))
      return -1;
  }
  if (drain(t, out))
    return -1;
  shrink_bio(t, 1);
  return 0;
}
