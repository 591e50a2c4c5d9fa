/* Negotiation of permessage-deflate (RFC 7692 §5, §7.1). Pure: it reads
 * Sec-WebSocket-Extensions header values and decides. */
#ifndef NX_EXTENSIONS_H
#define NX_EXTENSIONS_H

#include <stddef.h>

typedef struct {
  int server_max_window_bits; /* 8..15: our compressor's window (see conn.c for 8) */
  int client_max_window_bits; /* 8..15: the client's (we inflate with 15) */
  int client_window_in_reply; /* the offer named client_max_window_bits */
  int server_window_in_reply; /* the offer named server_max_window_bits */
} nx_pmd_params_t;

/* Picks the first acceptable permessage-deflate offer among the n header
 * values (each a comma-separated list of offers). An offer with an unknown,
 * repeated or malformed parameter is declined and the next one tried.
 * We always answer with server_no_context_takeover and
 * client_no_context_takeover, so no connection keeps a zlib context.
 * Returns 1 and fills out and reply (the response header value, NUL-ended)
 * when an offer is accepted; 0 when none is. */
int nx_pmd_negotiate(const char *const *values, const size_t *lens, size_t n, nx_pmd_params_t *out,
                     char *reply, size_t replylen);

#endif
