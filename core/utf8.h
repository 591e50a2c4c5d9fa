/* Incremental UTF-8 validation (RFC 3629, as RFC 6455 §8.1 requires).
 *
 * Pure: no I/O, no allocation. The validator keeps its state between calls,
 * so a code point may be split across any number of chunks (fragments).
 * It fails fast: nx_utf8_feed() reports an error on the first byte after
 * which the input can no longer become valid, whatever follows. */
#ifndef NX_UTF8_H
#define NX_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  uint8_t state; /* NX_UTF8_ACCEPT when positioned between code points */
} nx_utf8_t;

enum { NX_UTF8_ACCEPT = 0, NX_UTF8_REJECT = 0xff };

static inline void nx_utf8_init(nx_utf8_t *u) { u->state = NX_UTF8_ACCEPT; }

/* Feeds len bytes. Returns 0 while the input so far is a valid prefix,
 * -1 as soon as it is not (the state then stays NX_UTF8_REJECT; feeding
 * more bytes keeps returning -1). */
int nx_utf8_feed(nx_utf8_t *u, const uint8_t *p, size_t len);

/* True when the input fed so far is complete (not in the middle of a
 * code point) and valid. */
static inline int nx_utf8_complete(const nx_utf8_t *u) { return u->state == NX_UTF8_ACCEPT; }

/* One-shot check of a whole buffer. Returns 1 if valid, 0 if not. */
int nx_utf8_valid(const uint8_t *p, size_t len);

#endif
