/* Writing a queued buffer to a libuv stream: what the socket takes now
 * goes at once (uv_try_write), the rest through one uv_write whose buffer
 * nobody touches until it is done. Connections and the worker relay write
 * this way. */
#ifndef NX_STREAM_H
#define NX_STREAM_H

#include <uv.h>

#include "buf.h"

/* Writes src to s. What is left goes out in a uv_write of its own: src and
 * *wbuf (empty) are swapped, so src can take new bytes at once while wbuf
 * must stay untouched until cb(req, status) runs with req->data = data; cb
 * frees req. Returns 1 when such a write is in flight, 0 when everything
 * was written, or a libuv error (nothing in flight). */
int nx_stream_write(uv_stream_t *s, nx_buf_t *src, nx_buf_t *wbuf, uv_write_cb cb, void *data);

#endif
