/* A bounded stack of freed blocks kept for reuse (header-only). The link is
 * written into the first bytes of each block kept, so a block needs no field
 * for it; a block taken back holds whatever it held before, except those
 * bytes, and its owner sets it up again. */
#ifndef NX_FREELIST_H
#define NX_FREELIST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  void *head;
  uint32_t n;
} nx_freelist_t;

/* A kept block, or NULL. */
static inline void *nx_freelist_pop(nx_freelist_t *f) {
  void *p = f->head;
  if (p) {
    memcpy(&f->head, p, sizeof(void *));
    f->n--;
  }
  return p;
}

/* Keeps p when fewer than max blocks are kept: 1; else 0, and p is still
 * the caller's to free. */
static inline int nx_freelist_push(nx_freelist_t *f, void *p, uint32_t max) {
  if (f->n >= max)
    return 0;
  memcpy(p, &f->head, sizeof(void *));
  f->head = p;
  f->n++;
  return 1;
}

/* Frees every kept block, through destroy when a block owns more memory. */
static inline void nx_freelist_drain(nx_freelist_t *f, void (*destroy)(void *)) {
  void *p;
  while ((p = nx_freelist_pop(f)) != NULL) {
    if (destroy)
      destroy(p);
    else
      free(p);
  }
}

#endif
