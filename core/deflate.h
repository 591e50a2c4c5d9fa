/* permessage-deflate (RFC 7692) message compression on zlib, with no
 * context takeover in either direction: the runtime keeps one deflate and
 * one inflate stream, reset for every message, and no connection holds
 * zlib state of its own. */
#ifndef NX_DEFLATE_H
#define NX_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct nx_deflate_s nx_deflate_t;

nx_deflate_t *nx_deflate_new(void);
void nx_deflate_free(nx_deflate_t *d);

/* Compresses one message with a window of window_bits (9..15). Returns a
 * pointer to the compressed payload (the trailing 00 00 ff ff removed) and
 * its length in *outlen, or NULL: on failure, and for a message of 256
 * bytes or more that would not shrink (it looks random, or its compressed
 * form is not smaller): send it plain. The result stays valid until the
 * next call. Compressing the same bytes with the same window again (a
 * broadcast) returns the cached result without compressing. */
const uint8_t *nx_deflate_message(nx_deflate_t *d, const uint8_t *in, size_t len, int window_bits,
                                  size_t *outlen);

/* How many messages were compressed, and how many sends reused the last. */
void nx_deflate_stats(const nx_deflate_t *d, uint64_t *compressions, uint64_t *cache_hits);

/* Drops the cached last message when it is large (called once per loop
 * turn: a broadcast happens within one turn). */
void nx_deflate_trim(nx_deflate_t *d);

/* Inflates one compressed message into out (appending). Returns 0, -1 if
 * the data is not valid deflate (a payload that stops inside a block included), -2 if the result
 * would exceed max bytes (checked while inflating: a small bomb never gets the memory). */
int nx_inflate_message(nx_deflate_t *d, const uint8_t *in, size_t len, uint64_t max, nx_buf_t *out);

/* Inflates the first len bytes of a compressed message whose last fragment
 * has not come yet into out (appending), to fail it early: returns 0 while
 * they can still begin a valid message, -1 if they cannot (bad deflate
 * data), -2 if they already inflate to more than max bytes. */
int nx_inflate_prefix(nx_deflate_t *d, const uint8_t *in, size_t len, uint64_t max, nx_buf_t *out);

#endif
