/* Writing a queued buffer to a libuv stream: what the socket takes now
 * goes at once (uv_try_write), the rest through one uv_write whose buffer
 * nobody touches until it is done. Connections and the worker relay write
 * this way. */
#ifndef NX_STREAM_H
#define NX_STREAM_H

#include <uv.h>

#include "buf.h"

#define NX_STREAM_MAX_EXTRA 2

/* Writes src, then the nextra buffers of extra (the caller's, used only
 * during the call: a large frame goes out without a copy), to s in one
 * writev. What the socket does not take now is left in src (the rest of
 * the extra buffers copied after it) and goes out in a uv_write of its
 * own: src and *wbuf (empty) are swapped, so src can take new bytes at once
 * while wbuf must stay untouched until cb(req, status) runs with req->data
 * = data; cb frees req. Returns 1 when such a write is in flight, 0 when
 * everything was written, or a libuv error (nothing in flight). */
int nx_stream_write(uv_stream_t *s, nx_buf_t *src, const uv_buf_t *extra, unsigned nextra,
                    nx_buf_t *wbuf, uv_write_cb cb, void *data);

#endif
