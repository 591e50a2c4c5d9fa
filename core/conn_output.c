/* A connection's output queue: frames and raw bytes queued during a loop
 * turn leave in one write per connection at its end (nx_rt_flush), what the
 * socket does not take waits in one uv_write, large frames go out at once
 * without a copy, the write limit drops a peer that does not read, and a
 * published frame is shared between the subscribers that fall behind. */
#include <stdlib.h>
#include <string.h>

#include "conn_priv.h"
#include "deflate.h"
#include "log.h"
#include "nx.h"
#include "shared_frame.h"
#include "stream.h"
#include "tls.h"

/* Output buffers are recycled: a connection's is released once written (an
 * idle connection keeps none), and its next batch takes one back from this
 * runtime-wide pool instead of growing a new one from 256 bytes through
 * realloc. Only mid-sized buffers are kept, at most 512 KiB in all. */
#define NX_OUT_POOL_MIN 512
#define NX_OUT_POOL_MAX 4096
#define NX_OUT_POOL_COUNT 128

/* A pooled block: the pool's link, then the block's capacity. */
typedef struct {
  void *link;
  size_t cap;
} nx_out_block_t;

static void out_release(nx_rt_t *rt, nx_buf_t *b) {
  if (b->cap >= NX_OUT_POOL_MIN && b->cap <= NX_OUT_POOL_MAX) {
    ((nx_out_block_t *)(void *)b->data)->cap = b->cap;
    if (nx_freelist_push(&rt->out_pool, b->data, NX_OUT_POOL_COUNT)) {
      b->data = NULL;
      b->off = b->len = b->cap = 0;
      return;
    }
  }
  nx_buf_free(b);
}

static int out_reserve(nx_rt_t *rt, nx_buf_t *b, size_t n) {
  nx_out_block_t *k = b->data ? NULL : (nx_out_block_t *)nx_freelist_pop(&rt->out_pool);
  if (k) {
    b->data = (uint8_t *)(void *)k;
    b->cap = k->cap;
    b->off = b->len = 0;
  } else if (!b->data && n <= NX_OUT_POOL_MIN) {
    /* Pool-sized from the start, so that it goes back to the pool once
     * written (a 101 and a close reply are all most connections send). */
    if (!(b->data = (uint8_t *)malloc(NX_OUT_POOL_MIN)))
      return -1;
    b->cap = NX_OUT_POOL_MIN;
    b->off = b->len = 0;
  }
  return nx_buf_reserve(b, n);
}

static void on_write(uv_write_t *req, int status);

/* nx_stream_write to the connection's socket, counting what the socket
 * took (c->handed, for the heartbeat: see acked_bytes in conn.c). */
static int conn_write(nx_conn_t *c, nx_buf_t *src, const uv_buf_t *extra, unsigned nextra) {
  size_t before = nx_buf_size(src);
  unsigned i;
  int r;
  for (i = 0; i < nextra; i++)
    before += extra[i].len;
  r = nx_stream_write((uv_stream_t *)&c->tcp, src, extra, nextra, &c->wreq, on_write, c);
  if (r >= 0)
    c->handed += (uint32_t)(before - (r ? nx_stream_pending(c->wreq) : 0));
  return r;
}

/* ---- Shared frames --------------------------------------------------- *
 * A connection whose socket is full (a write in flight) queues a large
 * shared frame by reference: its output is then the write in flight, the
 * segments (own bytes that were queued before a shared frame, and the
 * shared frames), and c->out after them, in that order. TLS connections
 * encrypt per connection and always copy. */
#define NX_SHARE_MIN 512
#define NX_SEG_IOV 64

typedef struct nx_seg_s {
  struct nx_seg_s *next;
  nx_shared_frame_t *frame; /* or NULL: own bytes, in buf */
  size_t off;               /* bytes of frame written */
  nx_buf_t buf;
} nx_seg_t;

/* A connection's segments: allocated with the first, freed with the last
 * (a connection that is not behind keeps one pointer for them). */
struct nx_segq_s {
  nx_seg_t *head, *tail;
  size_t bytes; /* not yet written */
};

static size_t seg_size(const nx_seg_t *s) {
  return s->frame ? s->frame->len - s->off : nx_buf_size(&s->buf);
}

static void seg_free(nx_rt_t *rt, nx_seg_t *s) {
  if (s->frame)
    nx_shared_frame_unref(s->frame);
  else
    out_release(rt, &s->buf);
  free(s);
}

/* Takes the first segment off the queue (freed with its last). */
static nx_seg_t *seg_pop(nx_conn_t *c) {
  struct nx_segq_s *q = c->segq;
  nx_seg_t *s = q->head;
  q->head = s->next;
  q->bytes -= seg_size(s);
  if (!q->head) {
    free(q);
    c->segq = NULL;
  }
  return s;
}

static void seg_append(struct nx_segq_s *q, nx_seg_t *s) {
  if (q->tail)
    q->tail->next = s;
  else
    q->head = s;
  q->tail = s;
  q->bytes += seg_size(s);
}

static int seg_push(nx_conn_t *c, nx_shared_frame_t *f) {
  nx_seg_t *own = NULL, *s = (nx_seg_t *)calloc(1, sizeof(*s));
  struct nx_segq_s *q = c->segq ? c->segq : (struct nx_segq_s *)calloc(1, sizeof(*q));
  if (!s || !q || (nx_buf_size(&c->out) && !(own = (nx_seg_t *)calloc(1, sizeof(*own))))) {
    free(s);
    if (q != c->segq)
      free(q);
    return -1;
  }
  c->segq = q;
  if (own) { /* what was queued before the frame goes before it */
    own->buf = c->out;
    memset(&c->out, 0, sizeof(c->out));
    seg_append(q, own);
  }
  s->frame = nx_shared_frame_ref(f);
  seg_append(q, s);
  return 0;
}

/* Writes the segments (and c->out after them, if they all fit in one
 * writev) as far as the socket takes them; the first one it does not take
 * goes out in a write of its own, and the rest waits for it. 0, or a libuv
 * error. */
static int flush_segs(nx_conn_t *c) {
  uv_stream_t *stream = (uv_stream_t *)&c->tcp;
  while (c->segq && !c->wreq) {
    uv_buf_t b[NX_SEG_IOV + 1];
    unsigned n = 0;
    nx_seg_t *s;
    size_t w;
    int r;
    int cut = 0;
    for (s = c->segq->head; s && n < NX_SEG_IOV && !cut; s = s->next) {
      /* One over a chunk goes last, in part (its rest would be overtaken) */
      size_t len = seg_size(s) > NX_STREAM_CHUNK ? (cut = 1, NX_STREAM_CHUNK) : seg_size(s);
      b[n++] = s->frame ? uv_buf_init((char *)s->frame->data + s->off, (unsigned)len)
                        : uv_buf_init((char *)s->buf.data + s->buf.off, (unsigned)len);
    }
    if (!s && !cut && nx_buf_size(&c->out))
      b[n++] = uv_buf_init((char *)c->out.data + c->out.off, /* last: a part of it may go */
                           nx_buf_size(&c->out) > NX_STREAM_CHUNK ? NX_STREAM_CHUNK
                                                                  : (unsigned)nx_buf_size(&c->out));
    r = uv_try_write(stream, b, n);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
      r = 0;
    if (r < 0)
      return r;
    c->handed += (uint32_t)r;
    for (w = (size_t)r; c->segq && w >= seg_size(c->segq->head);) {
      w -= seg_size(c->segq->head);
      seg_free(c->rt, seg_pop(c));
    }
    if (w && c->segq) { /* the one written in part */
      nx_seg_t *h = c->segq->head;
      if (h->frame)
        h->off += w;
      else
        nx_buf_consume(&h->buf, w);
      c->segq->bytes -= w;
    } else if (w) {
      nx_buf_consume(&c->out, w);
    }
    if (!c->segq)
      return 0;
    s = seg_pop(c);
    if (s->frame) {
      r = nx_stream_write_frame(stream, s->frame, s->off, &c->wreq, on_write, c);
      if (r > 0)
        s->frame = NULL; /* the write holds the reference now */
    } else {
      r = conn_write(c, &s->buf, NULL, 0);
    }
    seg_free(c->rt, s);
    if (r < 0)
      return r;
  }
  return 0;
}

void nx_conn_out_free(nx_conn_t *c) {
  while (c->segq)
    seg_free(c->rt, seg_pop(c));
  nx_buf_free(&c->out);
}

size_t nx_conn_buffered_all(const nx_conn_t *c) {
  return nx_buf_size(&c->out) + (c->segq ? c->segq->bytes : 0) +
         (c->wreq ? nx_stream_pending(c->wreq) : 0) +
         (c->tls ? nx_buf_size(nx_tls_out(c->tls)) : 0);
}

static void on_write(uv_write_t *req, int status) {
  nx_conn_t *c = (nx_conn_t *)req->data;
  if (status >= 0)
    c->handed += (uint32_t)nx_stream_pending(req);
  nx_stream_done(req); /* only a write the socket could not take at once has one */
  c->wreq = NULL;
  if (c->closing_handles)
    return;
  if (status < 0) {
    nx_log(NX_LOG_DEBUG, "write failed: %s", uv_strerror(status));
    nx_conn_really_close(c);
    return;
  }
  /* The peer read what the socket could not take: a sign of life. */
  c->last_rx = uv_now(c->rt->loop);
  c->ping_outstanding = 0;
  nx_conn_flush(c);
  nx_rt_run_ready(c->rt);
}

/* Writes what is queued: first synchronously (most writes complete at once),
 * the rest through one uv_write whose buffer stays untouched until done. */
void nx_conn_flush(nx_conn_t *c) {
  nx_buf_t *src = &c->out;
  if (c->closing_handles || c->wreq)
    return;
  if (c->segq) {
    int r = flush_segs(c);
    if (r < 0) {
      nx_log(NX_LOG_DEBUG, "write failed: %s", uv_strerror(r));
      nx_conn_really_close(c);
      return;
    }
  }
  if (c->tls) {
    /* The transport: what the connection queued is encrypted, and the
     * ciphertext is what goes to the socket. */
    nx_buf_t *cipher = nx_tls_out(c->tls);
    if (nx_tls_write(c->tls, &c->out, cipher) < 0) {
      nx_conn_debug(c, "TLS failed (%s): dropping the connection", nx_tls_last_error());
      nx_conn_really_close(c);
      return;
    }
    if (c->end_after_flush && !c->tls_closed && nx_buf_size(&c->out) == 0) {
      nx_tls_shutdown(c->tls, cipher); /* close_notify after the last record */
      c->tls_closed = 1;
    }
    src = cipher;
  }
  if (!c->wreq && nx_buf_size(src)) { /* (a write in flight: a shared frame's, before src) */
    int r = 0;
    /* The last bytes (a close frame, an HTTP error) and the FIN go out in
     * one packet. */
    if (c->end_after_flush && (!c->tls || nx_buf_size(&c->out) == 0))
      r = nx_stream_write_last((uv_stream_t *)&c->tcp, src);
    if (r == 0)
      r = conn_write(c, src, NULL, 0);
    if (r < 0) {
      nx_log(NX_LOG_DEBUG, "write failed: %s", uv_strerror(r));
      nx_conn_really_close(c);
      return;
    }
    if (r == 0) /* all written: an idle connection keeps no output buffer (a busy
                 * one gets one back from the pool on its next send) */
      out_release(c->rt, src);
  }
  if (c->tls && nx_buf_size(&c->out) == 0)
    out_release(c->rt, &c->out); /* encrypted into the transport's buffer */
  if (c->writer && nx_conn_buffered(c) <= c->listener->cfg.write_high_water / 2)
    while (c->writer) /* (each wake takes the task off the list) */
      nx_task_wake(c->writer, 0);
  if (c->end_after_flush && !c->wreq && !c->segq && nx_buf_size(src) == 0 &&
      nx_buf_size(&c->out) == 0 && !c->lingering) {
    if (c->linger && c->listener)
      nx_conn_start_linger(c);
    else
      nx_conn_really_close(c);
  }
}

int nx_conn_send_raw(nx_conn_t *c, const void *data, size_t len) {
  if (c->closing_handles)
    return -1;
  if (out_reserve(c->rt, &c->out, len))
    return -1;
  nx_buf_append(&c->out, data, len);
  nx_rt_mark_dirty(c);
  return 0;
}

/* A large frame goes to the socket at once, straight from the caller's
 * bytes (after what is already queued, in one writev): copying 64 KiB into
 * the output buffer costs more than the syscall batching saves. Only what
 * the socket does not take is copied and queued. */
#define NX_DIRECT_SEND 16384

static int send_direct(nx_conn_t *c, const uint8_t *hdr, size_t hlen, const void *data,
                       size_t len) {
  uv_buf_t extra[2];
  int r;
  extra[0] = uv_buf_init((char *)hdr, (unsigned)hlen);
  extra[1] = uv_buf_init((char *)data, (unsigned)len);
  r = conn_write(c, &c->out, extra, 2);
  if (r < 0) {
    nx_log(NX_LOG_DEBUG, "write failed: %s", uv_strerror(r));
    nx_conn_really_close(c);
    return -1;
  }
  if (r == 0)
    out_release(c->rt, &c->out);
  return 0;
}

int nx_conn_deflate_bits(const nx_conn_t *c, int opcode, size_t len) {
  if (!c->deflate || opcode > NX_WS_OP_BINARY || len < c->listener->cfg.compress_threshold)
    return 0;
  return c->pmd_bits < 9 ? 9 : c->pmd_bits > 15 ? 15 : c->pmd_bits;
}

/* The payload compressed with a window of bits, in the runtime's
 * compressor (valid until its next message), or NULL: send it plain. */
static const uint8_t *compress(nx_rt_t *rt, int bits, const void *data, size_t len, size_t *clen) {
  if (!rt->deflate)
    rt->deflate = nx_deflate_new();
  return rt->deflate ? nx_deflate_message(rt->deflate, data, len, bits, clen) : NULL;
}

nx_shared_frame_t *nx_conn_encode_shared(nx_rt_t *rt, int bits, int opcode, const void *data,
                                         size_t len) {
  uint8_t hdr[14];
  size_t hlen, clen;
  const uint8_t *z = bits ? compress(rt, bits, data, len, &clen) : NULL;
  nx_shared_frame_t *f;
  if (z) {
    data = z;
    len = clen;
  }
  hlen = nx_ws_frame_header(hdr, 1, z != NULL, opcode, len, NULL);
  if (!(f = nx_shared_frame_new(hlen + len)))
    return NULL;
  memcpy(f->data, hdr, hlen);
  if (len)
    memcpy(f->data + hlen, data, len);
  return f;
}

/* No memory to queue len more bytes: the connection is dropped. -1. */
static int drop_no_memory(nx_conn_t *c, size_t len) {
  nx_log(NX_LOG_ERROR, "out of memory queueing %zu bytes: dropping the connection", len);
  nx_conn_abort(c, 1006);
  return -1;
}

/* Room for len more bytes under the write limit: 0, or -1 when the
 * connection is gone or was dropped for buffering more than its limit. */
static int make_room(nx_conn_t *c, size_t len) {
  size_t limit = c->listener->cfg.write_limit, queued = nx_conn_buffered(c);
  if (queued && queued + len > limit) {
    nx_conn_flush(c); /* what the socket takes now does not count */
    if (c->closing_handles)
      return -1;
    queued = nx_conn_buffered(c);
    if (queued && queued + len > limit) {
      /* The peer does not read: it cannot be allowed to grow our memory.
       * (One message is always accepted into an empty buffer.) A crowd of
       * such peers is logged once a second at most. */
      char peer[80];
      uint32_t skipped;
      if (!nx_log_limited(&c->listener->slow_log, uv_now(c->rt->loop), &skipped))
        nx_conn_debug(
            c, "dropping a connection that does not read fast enough (%zu bytes buffered)", queued);
      else if (skipped)
        nx_log(NX_LOG_WARN,
               "dropping a connection that does not read fast enough (%zu bytes buffered): %s "
               "(and %u more since the last entry; logged once a second at most)",
               queued, nx_conn_peer_name(c, peer, sizeof(peer)), skipped);
      else
        nx_log(NX_LOG_WARN,
               "dropping a connection that does not read fast enough (%zu bytes buffered): %s",
               queued, nx_conn_peer_name(c, peer, sizeof(peer)));
      nx_conn_abort(c, 1006);
      return -1;
    }
  }
  return 0;
}

int nx_conn_check_room(nx_conn_t *c) { return make_room(c, 0); }

/* Queues one unfragmented frame. Returns 0, or -1 when the connection is
 * gone or was dropped for buffering more than its limit. */
int nx_conn_send(nx_conn_t *c, int opcode, const void *data, size_t len) {
  uint8_t hdr[14];
  size_t hlen;
  int bits;
  const uint8_t *z = NULL;

  if (c->closing_handles)
    return -1;
  if ((bits = nx_conn_deflate_bits(c, opcode, len)) != 0) {
    size_t clen;
    if ((z = compress(c->rt, bits, data, len, &clen)) != NULL) {
      data = z;
      len = clen;
    }
  }
  if (make_room(c, len))
    return -1;
  if (len >= NX_DIRECT_SEND && !c->tls && !c->wreq && c->state != NX_CONN_DONE) {
    hlen = nx_ws_frame_header(hdr, 1, z != NULL, opcode, len, NULL);
    return send_direct(c, hdr, hlen, data, len);
  }
  /* The header is written in place (a server's frames are not masked). */
  hlen = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
  if (out_reserve(c->rt, &c->out, hlen + len))
    return drop_no_memory(c, len);
  hlen = nx_ws_frame_header(c->out.data + c->out.len, 1, z != NULL, opcode, len, NULL);
  if (len)
    memcpy(c->out.data + c->out.len + hlen, data, len);
  c->out.len += hlen + len;
  nx_rt_mark_dirty(c);
  return 0;
}

int nx_conn_send_frame(nx_conn_t *c, nx_shared_frame_t *f) {
  if (c->closing_handles || make_room(c, f->len))
    return -1;
  if (c->tls || c->state == NX_CONN_DONE ||
      (c->wreq ? f->len < NX_SHARE_MIN : f->len < NX_DIRECT_SEND))
    return nx_conn_send_raw(c, f->data, f->len) ? drop_no_memory(c, f->len) : 0;
  /* Behind (a write in flight): a reference. Or a large frame, which goes
   * out at once as a direct send does, and what the socket does not take
   * stays a reference. */
  if (seg_push(c, f))
    return drop_no_memory(c, f->len);
  if (!c->wreq)
    nx_conn_flush(c);
  return c->closing_handles ? -1 : 0;
}
