/* A frame queued to many connections at once (a publish): encoded once,
 * reference-counted, and freed when the last connection that queued it has
 * written it or ended. A subscriber that falls behind holds a reference, not
 * a copy, so N subscribers behind on M bytes cost M, not N x M.
 * Header-only; one loop thread, so the count is a plain integer. */
#ifndef NX_SHARED_FRAME_H
#define NX_SHARED_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct {
  uint32_t refs;
  size_t len;
  uint8_t data[]; /* the whole frame: header and payload */
} nx_shared_frame_t;

/* A frame of len bytes (to be filled), held once; NULL when out of memory. */
static inline nx_shared_frame_t *nx_shared_frame_new(size_t len) {
  nx_shared_frame_t *f = (nx_shared_frame_t *)malloc(sizeof(*f) + len);
  if (f) {
    f->refs = 1;
    f->len = len;
  }
  return f;
}

static inline nx_shared_frame_t *nx_shared_frame_ref(nx_shared_frame_t *f) {
  f->refs++;
  return f;
}

static inline void nx_shared_frame_unref(nx_shared_frame_t *f) {
  if (f && --f->refs == 0)
    free(f);
}

#endif
