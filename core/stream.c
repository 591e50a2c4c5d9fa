/* See stream.h. */
#include <stdlib.h>
#include <string.h>

#include "stream.h"

/* A write the socket could not take at once: the request, and the bytes it
 * owns until it is done (an owner keeps 8 bytes for it, not a buffer). */
typedef struct {
  uv_write_t req; /* first: the request is the struct */
  nx_buf_t buf;
} nx_wreq_t;

int nx_stream_write(uv_stream_t *s, nx_buf_t *src, const uv_buf_t *extra, unsigned nextra,
                    uv_write_t **reqp, uv_write_cb cb, void *data) {
  uv_buf_t b[1 + NX_STREAM_MAX_EXTRA];
  size_t queued = nx_buf_size(src), skip, k;
  unsigned n = 0, i;
  nx_wreq_t *wr;
  int w;
  if (nextra > NX_STREAM_MAX_EXTRA)
    return UV_EINVAL;
  if (queued)
    b[n++] = uv_buf_init((char *)src->data + src->off, (unsigned)queued);
  for (i = 0; i < nextra; i++)
    b[n++] = extra[i];
  w = n ? uv_try_write(s, b, n) : 0;
  if (w == UV_EAGAIN || w == UV_ENOSYS)
    w = 0;
  if (w < 0)
    return w;
  /* What the socket refused: the rest of src stays, the rest of each extra
   * buffer is copied after it (the caller's buffers are not kept). */
  skip = (size_t)w;
  k = skip < queued ? skip : queued;
  nx_buf_consume(src, k);
  skip -= k;
  for (i = 0; i < nextra; i++) {
    k = skip < extra[i].len ? skip : extra[i].len;
    skip -= k;
    if (nx_buf_append(src, extra[i].base + k, extra[i].len - k))
      return UV_ENOMEM;
  }
  if (!nx_buf_size(src))
    return 0;
  wr = (nx_wreq_t *)malloc(sizeof(*wr)); /* only a write the socket could not take has one */
  if (!wr)
    return UV_ENOMEM;
  wr->buf = *src;
  memset(src, 0, sizeof(*src));
  wr->req.data = data;
  b[0] = uv_buf_init((char *)wr->buf.data + wr->buf.off, (unsigned)nx_buf_size(&wr->buf));
  w = uv_write(&wr->req, s, b, 1, cb);
  if (w) {
    *src = wr->buf; /* the bytes go back where they were */
    free(wr);
    return w;
  }
  *reqp = &wr->req;
  return 1;
}

size_t nx_stream_pending(const uv_write_t *req) {
  return nx_buf_size(&((const nx_wreq_t *)req)->buf);
}

void nx_stream_done(uv_write_t *req) {
  nx_wreq_t *wr = (nx_wreq_t *)req;
  nx_buf_free(&wr->buf);
  free(wr);
}
