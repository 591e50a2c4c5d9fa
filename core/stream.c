/* See stream.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "stream.h"

/* A write the socket could not take at once: the request, and the bytes it
 * owns until it is done (an owner keeps 8 bytes for it, not a buffer):
 * either a buffer of its own or the rest of a shared frame it holds. */
typedef struct {
  uv_write_t req; /* first: the request is the struct */
  nx_buf_t buf;
  nx_shared_frame_t *frame;
  size_t frame_off;
} nx_wreq_t;

/* uv_write of len bytes at base, in buffers of NX_STREAM_CHUNK at most
 * (libuv copies the array). */
static int write_chunks(uv_write_t *req, uv_stream_t *s, char *base, size_t len, uv_write_cb cb) {
  uv_buf_t one[4], *b = one;
  size_t n = (len + NX_STREAM_CHUNK - 1) / NX_STREAM_CHUNK, i;
  int w;
  if (n > sizeof(one) / sizeof(one[0]) && !(b = (uv_buf_t *)malloc(n * sizeof(*b))))
    return UV_ENOMEM;
  for (i = 0; i < n; i++, base += NX_STREAM_CHUNK, len -= NX_STREAM_CHUNK)
    b[i] = uv_buf_init(base, len > NX_STREAM_CHUNK ? NX_STREAM_CHUNK : (unsigned)len);
  w = uv_write(req, s, b, (unsigned)n, cb);
  if (b != one)
    free(b);
  return w;
}

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
    b[n++] = uv_buf_init((char *)src->data + src->off,
                         queued > NX_STREAM_CHUNK ? NX_STREAM_CHUNK : (unsigned)queued);
  for (i = 0; i < nextra && queued <= NX_STREAM_CHUNK; i++)
    b[n++] = extra[i]; /* (after a part of src only, they would leave before its rest) */
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
  wr->frame = NULL;
  wr->req.data = data;
  w = write_chunks(&wr->req, s, (char *)wr->buf.data + wr->buf.off, nx_buf_size(&wr->buf), cb);
  if (w) {
    *src = wr->buf; /* the bytes go back where they were */
    free(wr);
    return w;
  }
  *reqp = &wr->req;
  return 1;
}

int nx_stream_write_frame(uv_stream_t *s, nx_shared_frame_t *f, size_t off, uv_write_t **reqp,
                          uv_write_cb cb, void *data) {
  nx_wreq_t *wr = (nx_wreq_t *)calloc(1, sizeof(*wr));
  uv_buf_t b;
  int w;
  if (!wr)
    return UV_ENOMEM;
  wr->frame = f;
  wr->frame_off = off;
  wr->req.data = data;
  b = uv_buf_init((char *)f->data + off, (unsigned)(f->len - off));
  w = uv_write(&wr->req, s, &b, 1, cb);
  if (w) {
    free(wr); /* the reference stays the caller's */
    return w;
  }
  *reqp = &wr->req;
  return 1;
}

size_t nx_stream_pending(const uv_write_t *req) {
  const nx_wreq_t *wr = (const nx_wreq_t *)req;
  return nx_buf_size(&wr->buf) + (wr->frame ? wr->frame->len - wr->frame_off : 0);
}

void nx_stream_done(uv_write_t *req) {
  nx_wreq_t *wr = (nx_wreq_t *)req;
  nx_buf_free(&wr->buf);
  nx_shared_frame_unref(wr->frame);
  free(wr);
}

int nx_stream_write_last(uv_stream_t *s, nx_buf_t *src) {
#ifdef MSG_MORE
  uv_os_fd_t fd;
  ssize_t w;
  if (!nx_buf_size(src) || uv_fileno((const uv_handle_t *)s, &fd) != 0)
    return 0;
  do
    w = send(fd, src->data + src->off, nx_buf_size(src), MSG_MORE | MSG_DONTWAIT | MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : uv_translate_sys_error(errno);
  nx_buf_consume(src, (size_t)w);
  /* Sent now, with the FIN: unread input at close() could not drop them. */
  if (!nx_buf_size(src) && shutdown(fd, SHUT_WR) != 0)
    return uv_translate_sys_error(errno);
#else
  (void)s;
  (void)src;
#endif
  return 0;
}
