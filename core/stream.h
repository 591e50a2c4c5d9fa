/* Writing a queued buffer to a libuv stream: what the socket takes now
 * goes at once (uv_try_write), the rest through one uv_write whose buffer
 * nobody touches until it is done. Connections and the worker relay write
 * this way. */
#ifndef NX_STREAM_H
#define NX_STREAM_H

#include <uv.h>

#include "buf.h"
#include "shared_frame.h"

#define NX_STREAM_MAX_EXTRA 2
/* Bytes in one uv_buf_t at most: its length is 32 bits, and a queue may
 * hold more (a --write-limit over 4 GiB). */
#define NX_STREAM_CHUNK (1u << 30)

/* Writes src, then the nextra buffers of extra (the caller's, used only
 * during the call: a large frame goes out without a copy), to s in one
 * writev. What the socket does not take now goes out in a uv_write of its
 * own: the rest of src (with the rest of the extra buffers copied after
 * it) moves, without a copy, into a request that owns it, and src is left
 * empty for new bytes. *reqp is then that request, and cb(req, status) runs
 * with req->data = data; cb must call nx_stream_done(req). Returns 1 when
 * such a write is in flight, 0 when everything was written, or a libuv
 * error (nothing in flight, src as it was left). */
int nx_stream_write(uv_stream_t *s, nx_buf_t *src, const uv_buf_t *extra, unsigned nextra,
                    uv_write_t **reqp, uv_write_cb cb, void *data);

/* Writes the shared frame f from byte off in a uv_write of its own (the
 * socket is known to be full: no attempt is made to write it at once). The
 * request takes over the caller's reference to f. Returns 1 (in flight, as
 * nx_stream_write), or a libuv error (the reference is still the caller's). */
int nx_stream_write_frame(uv_stream_t *s, nx_shared_frame_t *f, size_t off, uv_write_t **reqp,
                          uv_write_cb cb, void *data);

/* For the last bytes before the socket is closed: writes what the socket
 * takes of src now and consumes it; when that is all of it, shuts the
 * write side down, so that the bytes and the FIN leave in one packet
 * instead of two (MSG_MORE holds them back until the shutdown). Any rest
 * (a full socket) stays in src for nx_stream_write. Returns 0 or a libuv
 * error. */
int nx_stream_write_last(uv_stream_t *s, nx_buf_t *src);

/* Bytes of the write in flight that req still owns. */
size_t nx_stream_pending(const uv_write_t *req);

/* Frees a request of nx_stream_write and the bytes it owns (from its cb). */
void nx_stream_done(uv_write_t *req);

#endif
