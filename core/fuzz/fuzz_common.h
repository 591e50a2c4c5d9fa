/* Shared helpers of the libFuzzer targets in core/fuzz/.
 *
 * Chunking (after uWS fuzzing/helpers.h makeChunked): the first input byte
 * picks how the rest is fed to an incremental API, so one corpus entry covers
 * one chunking and the fuzzer explores the others by mutating that byte:
 * 1 + b % 64 bytes per call, or the whole rest at once when b == 255.
 *
 * FUZZ_CHECK aborts with a message naming the broken invariant, which
 * libFuzzer reports as a crash and saves the input as a reproducer. It is not
 * assert(): it must stay on whatever the build type. */
#ifndef NX_FUZZ_COMMON_H
#define NX_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: invariant violated: %s: ", __FILE__, __LINE__, #cond);               \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* The chunk size the first input byte selects for a rest of rest_len bytes
 * (never 0, so a loop over chunks always progresses). */
static inline size_t fuzz_chunk_size(uint8_t b, size_t rest_len) {
  if (b == 255)
    return rest_len ? rest_len : 1;
  return 1 + (size_t)(b % 64);
}

/* A growable byte buffer. */
typedef struct {
  uint8_t *p;
  size_t len, cap;
} fuzz_buf_t;

static inline void fuzz_buf_put(fuzz_buf_t *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n)
      cap *= 2;
    b->p = (uint8_t *)realloc(b->p, cap);
    if (!b->p)
      abort();
    b->cap = cap;
  }
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

static inline void fuzz_buf_free(fuzz_buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

/* A reference UTF-8 validator written from RFC 3629 §3-4 as a decoder, not as
 * a byte-range table like core/utf8.c, so the two can be checked against each
 * other. It accumulates the code point's bits; after every byte it asks
 * whether *some* completion of the sequence so far could still be a valid
 * scalar value (in the range of its length's shortest form, at most
 * U+10FFFF, not a surrogate). That is the fail-fast rule core/utf8.h
 * promises: reject on the first byte after which no continuation can make
 * the input valid. */
typedef struct {
  uint32_t cp;  /* bits of the code point so far */
  uint8_t need; /* continuation bytes still to come */
  uint8_t len;  /* total length of the sequence in progress */
  uint8_t bad;  /* rejected */
} ref_utf8_t;

static inline void ref_utf8_init(ref_utf8_t *r) { memset(r, 0, sizeof(*r)); }

/* Feeds one byte; returns 0 while still viable, -1 once rejected. */
static inline int ref_utf8_byte(ref_utf8_t *r, uint8_t b) {
  uint32_t lo, hi, min, bits;
  if (r->bad)
    return -1;
  if (r->need == 0) {
    if (b < 0x80)
      return 0;
    if ((b & 0xe0) == 0xc0) {
      r->len = 2, r->cp = b & 0x1f;
    } else if ((b & 0xf0) == 0xe0) {
      r->len = 3, r->cp = b & 0x0f;
    } else if ((b & 0xf8) == 0xf0) {
      r->len = 4, r->cp = b & 0x07;
    } else {
      r->bad = 1; /* a continuation byte with no lead, or F8..FF */
      return -1;
    }
    r->need = (uint8_t)(r->len - 1);
  } else {
    if ((b & 0xc0) != 0x80) {
      r->bad = 1;
      return -1;
    }
    r->cp = (r->cp << 6) | (b & 0x3f);
    r->need--;
  }
  /* The smallest and largest code points this prefix can still become. */
  bits = 6u * r->need;
  lo = r->cp << bits;
  hi = lo | ((1u << bits) - 1u);
  min = r->len == 2 ? 0x80 : r->len == 3 ? 0x800 : 0x10000;
  if (lo < min)
    lo = min;
  if (hi > 0x10ffff)
    hi = 0x10ffff;
  if (lo > hi || (lo >= 0xd800 && hi <= 0xdfff)) {
    r->bad = 1;
    return -1;
  }
  return 0;
}

/* Feeds len bytes; returns the index of the byte that made the input invalid,
 * or -1 if it is still a valid prefix. */
static inline long ref_utf8_feed(ref_utf8_t *r, const uint8_t *p, size_t len) {
  size_t i;
  if (r->bad)
    return 0;
  for (i = 0; i < len; i++)
    if (ref_utf8_byte(r, p[i]))
      return (long)i;
  return -1;
}

static inline int ref_utf8_complete(const ref_utf8_t *r) { return !r->bad && r->need == 0; }

static inline int ref_utf8_valid(const uint8_t *p, size_t len) {
  ref_utf8_t r;
  ref_utf8_init(&r);
  return ref_utf8_feed(&r, p, len) < 0 && ref_utf8_complete(&r);
}

#endif
