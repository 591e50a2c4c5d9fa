/* See stream.h. */
#include <stdlib.h>

#include "stream.h"

int nx_stream_write(uv_stream_t *s, nx_buf_t *src, const uv_buf_t *extra, unsigned nextra,
                    nx_buf_t *wbuf, uv_write_cb cb, void *data) {
  uv_buf_t b[1 + NX_STREAM_MAX_EXTRA];
  size_t queued = nx_buf_size(src), skip, k;
  unsigned n = 0, i;
  uv_write_t *req;
  nx_buf_t tmp;
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
  req = (uv_write_t *)malloc(sizeof(*req)); /* only a write the socket could not take has one */
  if (!req)
    return UV_ENOMEM;
  tmp = *wbuf;
  *wbuf = *src;
  *src = tmp;
  req->data = data;
  b[0] = uv_buf_init((char *)wbuf->data + wbuf->off, (unsigned)nx_buf_size(wbuf));
  w = uv_write(req, s, b, 1, cb);
  if (w) {
    free(req);
    return w;
  }
  return 1;
}
