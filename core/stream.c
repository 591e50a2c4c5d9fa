/* See stream.h. */
#include <stdlib.h>

#include "stream.h"

int nx_stream_write(uv_stream_t *s, nx_buf_t *src, nx_buf_t *wbuf, uv_write_cb cb, void *data) {
  size_t size = nx_buf_size(src);
  uv_buf_t b = uv_buf_init((char *)src->data + src->off, (unsigned)size);
  uv_write_t *req;
  nx_buf_t tmp;
  int n = size ? uv_try_write(s, &b, 1) : 0;
  if (n == UV_EAGAIN || n == UV_ENOSYS)
    n = 0;
  if (n < 0)
    return n;
  nx_buf_consume(src, (size_t)n);
  if (!nx_buf_size(src))
    return 0;
  req = (uv_write_t *)malloc(sizeof(*req)); /* only a write the socket could not take has one */
  if (!req)
    return UV_ENOMEM;
  tmp = *wbuf;
  *wbuf = *src;
  *src = tmp;
  req->data = data;
  b = uv_buf_init((char *)wbuf->data + wbuf->off, (unsigned)nx_buf_size(wbuf));
  n = uv_write(req, s, &b, 1, cb);
  if (n) {
    free(req);
    return n;
  }
  return 1;
}
