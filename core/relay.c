/* The worker's side of the topic relay (see relay.h), and the record
 * format shared with the master's side (process.c). */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nx.h"
#include "pubsub.h"
#include "relay.h"
#include "stream.h"

struct nx_relay_s {
  uv_pipe_t pipe;
  nx_rt_t *rt;
  nx_buf_t in;      /* bytes read, up to a complete record */
  nx_buf_t out;     /* records waiting for the flush */
  uv_write_t *wreq; /* the write in flight (owning its bytes), or NULL */
  int closed;
  int dropping; /* a warning about dropped records was logged */
};

static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int nx_relay_record(nx_buf_t *out, const char *topic, size_t tlen, int opcode, const void *data,
                    size_t dlen) {
  uint8_t *p;
  if (tlen > UINT32_MAX || dlen > UINT32_MAX || nx_buf_reserve(out, NX_RELAY_HEADER + tlen + dlen))
    return -1;
  p = out->data + out->len;
  put32(p, (uint32_t)tlen);
  put32(p + 4, (uint32_t)dlen);
  p[8] = (uint8_t)opcode;
  memcpy(p + NX_RELAY_HEADER, topic, tlen);
  if (dlen)
    memcpy(p + NX_RELAY_HEADER + tlen, data, dlen);
  out->len += NX_RELAY_HEADER + tlen + dlen;
  return 0;
}

int nx_relay_parse(const nx_buf_t *b, const char **topic, size_t *tlen, int *opcode,
                   const uint8_t **data, size_t *dlen, size_t *size) {
  const uint8_t *p = b->data + b->off;
  size_t avail = nx_buf_size(b);
  uint64_t t, d;
  if (avail < NX_RELAY_HEADER)
    return 0;
  t = get32(p);
  d = get32(p + 4);
  if (t == 0 || (p[8] != NX_WS_OP_TEXT && p[8] != NX_WS_OP_BINARY))
    return -1;
  if (avail < NX_RELAY_HEADER + t + d)
    return 0;
  *topic = (const char *)p + NX_RELAY_HEADER;
  *tlen = (size_t)t;
  *opcode = p[8];
  *data = p + NX_RELAY_HEADER + t;
  *dlen = (size_t)d;
  *size = (size_t)(NX_RELAY_HEADER + t + d);
  return 1;
}

static void relay_closed(uv_handle_t *h) {
  nx_relay_t *r = (nx_relay_t *)h->data;
  nx_buf_free(&r->in);
  nx_buf_free(&r->out);
  free(r);
}

/* The master is gone (or sent garbage): topics stay local from now on. */
static void stop_relay(nx_relay_t *r, const char *why) {
  if (r->closed)
    return;
  r->closed = 1;
  nx_log(NX_LOG_WARN, "topic relay to the other workers stopped: %s", why);
  r->rt->relay = NULL;
  uv_close((uv_handle_t *)&r->pipe, relay_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  nx_relay_t *r = (nx_relay_t *)h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)r->rt->readbuf, sizeof(r->rt->readbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  nx_relay_t *r = (nx_relay_t *)s->data;
  const char *topic;
  const uint8_t *data;
  size_t tlen, dlen, size;
  int opcode, k;
  (void)buf;
  if (nread == 0)
    return;
  if (nread < 0) {
    stop_relay(r, uv_strerror((int)nread));
    return;
  }
  if (nx_buf_append(&r->in, r->rt->readbuf, (size_t)nread)) {
    stop_relay(r, "out of memory");
    return;
  }
  while ((k = nx_relay_parse(&r->in, &topic, &tlen, &opcode, &data, &dlen, &size)) == 1) {
    nx_pubsub_publish(r->rt, topic, tlen, opcode, data, dlen, NULL);
    nx_buf_consume(&r->in, size);
  }
  if (k < 0) {
    stop_relay(r, "a malformed record");
    return;
  }
  nx_buf_shrink_idle(&r->in);
  nx_rt_run_ready(r->rt);
}

int nx_relay_start(nx_rt_t *rt, int fd) {
  nx_relay_t *r;
  int e;
  if (rt->relay)
    return 0;
  r = (nx_relay_t *)calloc(1, sizeof(*r));
  if (!r)
    return UV_ENOMEM;
  r->rt = rt;
  uv_pipe_init(rt->loop, &r->pipe, 0);
  r->pipe.data = r;
  if ((e = uv_pipe_open(&r->pipe, fd)) != 0 ||
      (e = uv_read_start((uv_stream_t *)&r->pipe, on_alloc, on_read)) != 0) {
    uv_close((uv_handle_t *)&r->pipe, relay_closed);
    return e;
  }
  rt->relay = r;
  return 0;
}

void nx_relay_send(nx_rt_t *rt, const char *topic, size_t tlen, int opcode, const void *data,
                   size_t dlen) {
  nx_relay_t *r = rt->relay;
  if (!r || r->closed)
    return;
  if (nx_buf_size(&r->out) + (r->wreq ? nx_stream_pending(r->wreq) : 0) + dlen >
      NX_RELAY_MAX_QUEUED) {
    if (!r->dropping)
      nx_log(NX_LOG_WARN, "topic relay: the master does not keep up; dropping messages for the "
                          "other workers");
    r->dropping = 1;
    return;
  }
  r->dropping = 0;
  if (nx_relay_record(&r->out, topic, tlen, opcode, data, dlen))
    nx_log(NX_LOG_ERROR, "topic relay: out of memory; a message is not passed on");
}

static void on_write(uv_write_t *req, int status) {
  nx_relay_t *r = (nx_relay_t *)req->data;
  nx_stream_done(req);
  r->wreq = NULL;
  if (r->closed)
    return;
  if (status < 0) {
    stop_relay(r, uv_strerror(status));
    return;
  }
  nx_relay_flush(r->rt);
}

void nx_relay_flush(nx_rt_t *rt) {
  nx_relay_t *r = rt->relay;
  int n;
  if (!r || r->closed || r->wreq || !nx_buf_size(&r->out))
    return;
  n = nx_stream_write((uv_stream_t *)&r->pipe, &r->out, NULL, 0, &r->wreq, on_write, r);
  if (n < 0)
    stop_relay(r, uv_strerror(n));
  else if (n == 0)
    nx_buf_shrink_idle(&r->out);
}

void nx_relay_close(nx_rt_t *rt) {
  nx_relay_t *r = rt->relay;
  if (!r)
    return;
  r->closed = 1;
  rt->relay = NULL;
  uv_close((uv_handle_t *)&r->pipe, relay_closed);
}
