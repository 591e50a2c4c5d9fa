/* A growable byte buffer with a read offset, for output queues. */
#ifndef NX_BUF_H
#define NX_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  uint8_t *data;
  size_t off; /* bytes before off were already consumed */
  size_t len; /* end of valid data */
  size_t cap;
} nx_buf_t;

static inline size_t nx_buf_size(const nx_buf_t *b) { return b->len - b->off; }

/* Makes room for n more bytes; returns 0, or -1 when out of memory. */
static inline int nx_buf_reserve(nx_buf_t *b, size_t n) {
  size_t need, cap;
  uint8_t *d;
  if (b->off && b->off == b->len)
    b->off = b->len = 0;
  if (b->cap - b->len >= n)
    return 0;
  if (b->off) { /* compact before growing */
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->cap - b->len >= n)
      return 0;
  }
  need = b->len + n;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  d = (uint8_t *)realloc(b->data, cap);
  if (!d)
    return -1;
  b->data = d;
  b->cap = cap;
  return 0;
}

static inline int nx_buf_append(nx_buf_t *b, const void *p, size_t n) {
  if (n == 0)
    return 0;
  if (nx_buf_reserve(b, n))
    return -1;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

static inline void nx_buf_consume(nx_buf_t *b, size_t n) {
  b->off += n;
  if (b->off == b->len)
    b->off = b->len = 0;
}

static inline void nx_buf_free(nx_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->off = b->len = b->cap = 0;
}

/* Drops the storage when empty and large, so idle connections stay small. */
static inline void nx_buf_shrink_idle(nx_buf_t *b) {
  if (b->len == b->off && b->cap > 4096)
    nx_buf_free(b);
}

#endif
