/* A connection's input once it is a WebSocket: frames into messages (with
 * permessage-deflate and its early checks), the inbox the app takes them
 * from, reading paused while the app is behind, and how a violation or the
 * peer's close ends the connection. See conn.c for the rest of its life. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conn_priv.h"
#include "deflate.h"
#include "utf8.h"

/* The peer's close or a violation came after messages the app has not
 * taken yet, or while it handles one (nx_conn_app_has_messages): they are
 * still the app's, and its answers to them go out
 * before our close frame, as they would from a server reading one frame at
 * a time (RFC 6455 §5.5.1 lets an endpoint finish sending first). Nothing
 * more is read; the close waits until the app has taken the last of them
 * (nx_conn_pop), then goes out at the end of that loop turn, after the
 * replies (nx_conn_end_deferred). An app that does not take them within
 * the close timeout is not waited for (nx_conn_timeout). */
static void defer_end(nx_conn_t *c) {
  nx_conn_stop_reading(c);
  nx_conn_arm(c, c->listener->cfg.close_timeout);
  nx_rt_mark_dirty(c);
}

/* A violation of the protocol by the peer (RFC 6455 §7.1.7): the
 * connection fails with code, and nothing after the violation is read;
 * after the messages before it, if the app has some to take (defer_end).
 * reason: static text. The messages queued have been checked (violation
 * below). */
static void violation_checked(nx_conn_t *c, unsigned code, const char *reason) {
  if (c->state == NX_CONN_OPEN && nx_conn_app_has_messages(c)) {
    c->ws.error_code = (uint16_t)code;
    c->ws.error_reason = reason;
    defer_end(c);
    return;
  }
  nx_conn_fail(c, code, reason);
}

static int check_queued(nx_conn_t *c, unsigned *code, const char **reason);

/* A violation, after the compressed messages queued before it: one that
 * does not inflate came first, and is the failure (see check_queued). */
static void violation(nx_conn_t *c, unsigned code, const char *reason) {
  check_queued(c, &code, &reason);
  violation_checked(c, code, reason);
}

void nx_conn_end_deferred(nx_conn_t *c) {
  if (c->state != NX_CONN_OPEN || c->closing_handles)
    return;
  if (c->ws.error_code) {
    nx_conn_fail(c, c->ws.error_code, c->ws.error_reason);
  } else if (c->close_received) {
    /* The peer's close, answered with its code (see ws_control). */
    uint8_t payload[2] = {(uint8_t)(c->close_code >> 8), (uint8_t)c->close_code};
    nx_conn_send(c, NX_WS_OP_CLOSE, payload, c->close_code == 1005 ? 0 : 2);
    c->close_sent = 1;
    nx_conn_end(c);
  }
}

/* ---- Input: frames into messages ------------------------------------- */

/* A new message of cap bytes reserved, as the connection's current one; NULL
 * (and the connection failed) without memory. */
static nx_msg_t *begin_message(nx_conn_t *c, int opcode, int rsv1, size_t cap) {
  nx_msg_t *m = nx_msg_new(c->rt, cap);
  if (!m) {
    nx_conn_fail(c, 1011, "out of memory for the message");
    return NULL;
  }
  m->opcode = (uint8_t)opcode;
  m->compressed = (uint8_t)rsv1;
  m->check_kb = 0;
  m->inflate_max = 0;
  c->fragments = 1;
  c->cur = m;
  return m;
}

static int ws_frame_begin(nx_ws_parser_t *p, uint64_t len) {
  nx_conn_t *c = (nx_conn_t *)p->data;
  nx_msg_t *m = c->cur;
  size_t want;
  if (c->state != NX_CONN_OPEN)
    return 0;
  c->fragments = m ? c->fragments + 1 : 1;
  if (c->listener->cfg.max_fragments && c->fragments > c->listener->cfg.max_fragments) {
    violation(c, 1008, "too many fragments in one message");
    return 1;
  }
  if (!m) {
    /* Reserve what the header announced, up to 256 KiB; a larger frame
     * grows as its bytes really arrive. */
    want = len < 262144 ? (size_t)len : 262144;
    if (!begin_message(c, p->msg_opcode, p->msg_rsv1, want))
      return 1;
  }
  return 0;
}

/* The close code and reason for what inflating a message found: -2 over
 * the size limit (1009), -3 text that is not UTF-8, else bad deflate data
 * (1007). */
unsigned nx_inflate_code(int r, const char **reason) {
  *reason = r == -2   ? "message too big"
            : r == -3 ? "text message is not UTF-8"
                      : "invalid compressed data";
  return r == -2 ? 1009 : 1007;
}

/* Fails c for what inflating a message found (see nx_inflate_code). */
static void inflate_failed(nx_conn_t *c, int r) {
  const char *reason;
  unsigned code = nx_inflate_code(r, &reason);
  violation(c, code, reason);
}

/* Drops c's inbox from m on (m and what came after it). */
static void drop_inbox_from(nx_conn_t *c, nx_msg_t *m) {
  nx_msg_t *prev = NULL, *x;
  for (x = c->inbox; x && x != m; x = x->next)
    prev = x;
  if (!x)
    return;
  if (prev)
    prev->next = NULL;
  else
    c->inbox = NULL;
  c->inbox_tail = prev;
  while (m) {
    x = m->next;
    c->inbox_bytes -= m->cap + sizeof(*m);
    nx_msg_free(c->rt, m);
    m = x;
  }
}

/* Before the connection's end is decided (the peer's close, a violation):
 * the compressed messages still queued (see ws_message_end) are inflated
 * as a test, their output dropped, so that one that would have failed the
 * connection, had it been inflated when it came, fails it now, with its
 * own code, instead of the close or violation that came after it. Drops it
 * and what came after it, sets *code and *reason, and returns 1; 0 when
 * they all inflate. Bounded: once NX_CHECK_QUEUED_MAX bytes have been
 * inflated, the rest is left to be checked when the app takes it (a box
 * then reports the failure as the connection's end: see box_pop), so that
 * one client's close cannot hold the loop for seconds. */
#define NX_CHECK_QUEUED_MAX (4u << 20)

/* Inflates the whole compressed message m into buf after its first `from`
 * bytes (within m->inflate_max bytes), and checks text as UTF-8: 0, or as
 * nx_inflate_message, -3 for text that is not UTF-8. */
static int inflate_checked(nx_rt_t *rt, const nx_msg_t *m, nx_buf_t *buf, size_t from) {
  uint64_t max = m->inflate_max;
  int r = nx_inflate_message(rt->deflate, m->data, m->len, max ? max + from : 0, buf);
  if (r == 0 && m->opcode == NX_WS_OP_TEXT && buf->len > from &&
      !nx_utf8_valid(buf->data + from, buf->len - from))
    r = -3;
  return r;
}

static int check_queued(nx_conn_t *c, unsigned *code, const char **reason) {
  nx_rt_t *rt = c->rt;
  nx_msg_t *m;
  size_t done = 0;
  for (m = c->inbox; m && done < NX_CHECK_QUEUED_MAX; m = m->next) {
    int r;
    if (!m->compressed)
      continue;
    rt->scratch.off = rt->scratch.len = 0;
    if (!rt->deflate && !(rt->deflate = nx_deflate_new()))
      return 0; /* (then it fails when taken) */
    r = inflate_checked(rt, m, &rt->scratch, 0);
    done += rt->scratch.len;
    rt->scratch.off = rt->scratch.len = 0;
    if (r) {
      nx_buf_shrink_idle(&rt->scratch);
      drop_inbox_from(c, m);
      *code = nx_inflate_code(r, reason);
      return 1;
    }
  }
  nx_buf_shrink_idle(&rt->scratch);
  return 0;
}

/* A compressed message whose last fragment has not come yet fails as soon
 * as it cannot become valid, as an uncompressed one does: what has come is
 * inflated from its start (with the runtime's one stream: no connection
 * keeps zlib state between reads), and must be valid deflate data, within
 * the size limit and, for text, the start of UTF-8. The check runs after
 * every fragment while what has come is small (under 64 bytes, inflating
 * to under 4 KiB: at most 256 KiB inflated in all, in 64 one-byte
 * fragments; with a KiB, a thousand one-byte fragments cost 4 ms of CPU
 * for 7 KB from the client), then once a KiB has come, then each time the
 * compressed bytes have doubled, and only until what has come inflates to
 * a MiB: a message
 * can grow in compressed bytes without growing inflated (empty blocks), and
 * every check inflates from the start. Past that, the end of the message
 * tells (its inflated size is bounded as it goes, then as ever). Returns 1
 * when the connection was failed. */
#define NX_PREFIX_CHECK_MAX (1u << 20)
#define NX_PREFIX_SMALL 64

static int check_compressed_prefix(nx_conn_t *c, nx_msg_t *m) {
  nx_rt_t *rt = c->rt;
  nx_buf_t *out = &rt->scratch;
  nx_utf8_t u;
  int r;
  m->check_kb = (uint32_t)((m->len >> 10) * 2 + 1); /* (if it cannot be checked now) */
  if (!rt->deflate && !(rt->deflate = nx_deflate_new()))
    return 0; /* (the end of the message tells) */
  out->off = out->len = 0;
  r = nx_inflate_prefix(rt->deflate, m->data, m->len, c->listener->cfg.max_message_size, out);
  if (r == 0 && m->opcode == NX_WS_OP_TEXT) {
    nx_utf8_init(&u);
    if (out->len && nx_utf8_feed(&u, out->data, out->len))
      r = -3;
  }
  if (out->len >= NX_PREFIX_CHECK_MAX)
    m->check_kb = UINT32_MAX; /* no more checks for this message */
  else if (m->len < NX_PREFIX_SMALL && out->len < 4096)
    m->check_kb = 0; /* small yet: the next fragment is checked too */
  out->off = out->len = 0;
  nx_buf_shrink_idle(out);
  if (r == 0)
    return 0;
  inflate_failed(c, r);
  return 1;
}

static int ws_data(nx_ws_parser_t *p, const uint8_t *data, size_t n) {
  nx_conn_t *c = (nx_conn_t *)p->data;
  nx_msg_t *m = c->cur;
  if (c->state != NX_CONN_OPEN || !m)
    return 0;
  if (m->len + n > m->cap) {
    /* Double (amortized: many small fragments must not copy the message
     * over and over), but never past the maximum message size. */
    size_t need = m->len + n;
    size_t cap = m->cap * 2;
    uint64_t max = c->listener->cfg.max_message_size;
    nx_msg_t *g;
    if (cap < 1024)
      cap = 1024;
    if (max && cap > max)
      cap = (size_t)max;
    if (cap < need)
      cap = need;
    g = (nx_msg_t *)realloc(m, sizeof(*m) + cap);
    if (!g) {
      nx_conn_fail(c, 1009, "out of memory for the message");
      return 1;
    }
    g->cap = cap;
    c->cur = m = g;
  }
  if (p->data_masked)
    nx_ws_unmask_copy(m->data + m->len, data, n, p->mask, p->data_phase);
  else
    memcpy(m->data + m->len, data, n);
  m->len += n;
  /* A compressed fragment that is not the last one, whole. */
  if (m->compressed && !p->fin && p->remaining == 0 && (m->len >> 10) >= m->check_kb)
    return check_compressed_prefix(c, m);
  return 0;
}

/* An inflated message this large takes the inflate buffer over as it is
 * (the buffer was filled after room for the message header): no second
 * allocation and no copy. A smaller one is copied into a pooled message,
 * and the buffer is kept for the next. */
#define NX_INFLATE_OWN_MIN (64u * 1024)

/* A whole compressed message m, inflated (within m->inflate_max bytes, and
 * checked as UTF-8 if it is text), in place of m, which is freed. NULL with
 * *err: -1 bad deflate data, -2 over the limit, -3 not UTF-8, -4 out of
 * memory. Uses the runtime's one inflate stream: no connection is needed. */
nx_msg_t *nx_msg_inflate(nx_rt_t *rt, nx_msg_t *m, int *err) {
  nx_buf_t *buf = &rt->scratch;
  const size_t hdr = offsetof(nx_msg_t, data);
  nx_msg_t *out;
  size_t n;
  int r;
  buf->off = buf->len = 0;
  if ((!rt->deflate && !(rt->deflate = nx_deflate_new())) || nx_buf_reserve(buf, hdr + 16384)) {
    nx_msg_free(rt, m);
    *err = -4;
    return NULL;
  }
  buf->len = hdr; /* the header's room: counted in the buffer, so max too */
  r = inflate_checked(rt, m, buf, hdr);
  n = buf->len - hdr;
  if (r) {
    nx_msg_free(rt, m);
    buf->off = buf->len = 0;
    nx_buf_shrink_idle(buf);
    *err = r == -2 || r == -3 ? r : -1;
    return NULL;
  }
  if (n >= NX_INFLATE_OWN_MIN) {
    out = (nx_msg_t *)(void *)buf->data;
    out->cap = buf->cap - hdr;
    buf->data = NULL; /* given away: the next message starts a new buffer */
    buf->off = buf->len = buf->cap = 0;
  } else {
    if (!(out = nx_msg_new(rt, n))) {
      nx_msg_free(rt, m);
      *err = -4;
      return NULL;
    }
    if (n)
      memcpy(out->data, buf->data + hdr, n);
    buf->off = buf->len = 0;
  }
  out->next = NULL;
  out->len = n;
  out->opcode = m->opcode;
  out->compressed = 0;
  out->check_kb = 0;
  out->inflate_max = 0;
  nx_msg_free(rt, m);
  return out;
}

/* Fails c for nx_msg_inflate's err (-4: out of memory). */
static void msg_inflate_failed(nx_conn_t *c, int err) {
  if (err == -4)
    nx_conn_fail(c, 1011, "out of memory");
  else
    inflate_failed(c, err);
}

/* Replaces a whole compressed message of c by its inflated bytes; NULL
 * when the connection was failed (bomb, bad data, bad UTF-8). */
static nx_msg_t *inflate_message(nx_conn_t *c, nx_msg_t *m) {
  int err = 0;
  m->inflate_max = c->listener->cfg.max_message_size;
  if ((m = nx_msg_inflate(c->rt, m, &err)) == NULL)
    msg_inflate_failed(c, err);
  return m;
}

static int ws_message_end(nx_ws_parser_t *p) {
  nx_conn_t *c = (nx_conn_t *)p->data;
  nx_msg_t *m = c->cur;
  c->cur = NULL;
  if (c->state != NX_CONN_OPEN) {
    nx_msg_free(c->rt, m);
    return 0;
  }
  if (!m)
    return 0;
  if (m->compressed) {
    /* Inflated now when the app is waiting for it. Otherwise it waits as
     * it came, and is inflated when the app takes it (nx_conn_pop): an app
     * that is busy, or never receives, holds the compressed bytes, which
     * read_pause_bytes bounds, not up to max_message_size inflated for
     * every connection (16 KB of zeros inflate to 16 MiB). */
    if (c->reader && !c->inbox) {
      if ((m = inflate_message(c, m)) == NULL)
        return 1;
    } else {
      m->inflate_max = c->listener->cfg.max_message_size;
    }
  }
  m->next = NULL;
  if (c->inbox_tail)
    c->inbox_tail->next = m;
  else
    c->inbox = m;
  c->inbox_tail = m;
  c->inbox_bytes += m->cap + sizeof(*m); /* what it holds, not what it says */
  if (c->reader)
    nx_task_wake(c->reader, 0);
  if (c->inbox_bytes > c->listener->cfg.read_pause_bytes) {
    /* The app is not keeping up: stop reading until it does. */
    nx_conn_stop_reading(c);
    c->paused = 1;
    return 1;
  }
  return nx_conn_count_message(c); /* (its share of this turn: see conn.c) */
}

static int ws_control(nx_ws_parser_t *p, int opcode, const uint8_t *payload, size_t len) {
  nx_conn_t *c = (nx_conn_t *)p->data;
  if (opcode == NX_WS_OP_PING) {
    /* Also after our close (CLOSING): only the peer's close ends the duty.
     * A ping counts as a message for the turn's share (conn.c). */
    if (c->state == NX_CONN_OPEN || c->state == NX_CONN_CLOSING)
      if (nx_conn_send(c, NX_WS_OP_PONG, payload, len) == 0)
        return nx_conn_count_message(c);
    return 0;
  }
  if (opcode == NX_WS_OP_PONG)
    return 0; /* unsolicited pongs are fine */

  /* Close: answer with the peer's code (unless we already sent ours), then
   * end the TCP connection from our side, as a server should. Nothing after
   * it is read; the answer follows the app's replies to the messages before
   * it, if it has some to take (defer_end). */
  {
    unsigned code;
    const char *reason;
    if (c->state == NX_CONN_OPEN && check_queued(c, &code, &reason)) {
      /* A message before the close does not inflate: the connection fails
       * for it, as it would have when it came. */
      violation_checked(c, code, reason);
      return 1;
    }
  }
  c->close_received = 1;
  if (len >= 2)
    nx_conn_set_close(c, (uint16_t)((payload[0] << 8) | payload[1]), (const char *)payload + 2,
                      len - 2);
  else
    nx_conn_set_close(c, 1005, NULL, 0);
  if (c->state == NX_CONN_OPEN && nx_conn_app_has_messages(c)) {
    defer_end(c);
    return 1;
  }
  if (c->state == NX_CONN_OPEN) {
    nx_conn_send(c, NX_WS_OP_CLOSE, payload, len >= 2 ? 2 : 0);
    c->close_sent = 1;
  }
  nx_conn_end(c);
  return 1;
}

/* A whole message in one frame, all in this input (the parser's fast
 * path): what ws_frame_begin, ws_data and ws_message_end do for it, with
 * one allocation of its exact size. */
static int ws_message(nx_ws_parser_t *p, int opcode, int rsv1, const uint8_t *data, size_t n) {
  nx_conn_t *c = (nx_conn_t *)p->data;
  nx_msg_t *m;
  if (c->state != NX_CONN_OPEN)
    return 0;
  if (!(m = begin_message(c, opcode, rsv1, n)))
    return 1;
  if (p->data_masked)
    nx_ws_unmask_copy(m->data, data, n, p->mask, 0);
  else if (n)
    memcpy(m->data, data, n);
  m->len = n;
  return ws_message_end(p);
}

static const nx_ws_callbacks_t ws_callbacks = {
    NULL, ws_frame_begin, ws_data, ws_message_end, ws_control, ws_message,
};

/* Bytes kept for later: after the request (before the accept), or while
 * reads are paused. The buffer exists only while there are such bytes. */
int nx_conn_keep_pending(nx_conn_t *c, const void *data, size_t len) {
  if (!c->pending && (c->pending = (nx_buf_t *)calloc(1, sizeof(nx_buf_t))) == NULL)
    return -1;
  return nx_buf_append(c->pending, data, len);
}

/* Parses what was kept (see keep_pending), then forgets it. */
void nx_conn_parse_pending(nx_conn_t *c) {
  nx_buf_t *rest = c->pending;
  if (!rest)
    return;
  c->pending = NULL; /* parsing may keep a new rest */
  nx_conn_parse_frames(c, rest->data + rest->off, nx_buf_size(rest));
  nx_buf_free(rest);
  free(rest);
}

/* Reads again after a pause: first what waited in pending. */
void nx_conn_resume_reading(nx_conn_t *c) {
  c->paused = 0;
  nx_conn_parse_pending(c);
  if (!c->paused && !c->held)
    nx_conn_start_reading(c);
}

void nx_conn_parse_frames(nx_conn_t *c, uint8_t *data, size_t len) {
  while (len && !c->closing_handles && !c->end_after_flush && !c->ws.error_code &&
         !c->close_received) {
    size_t n = nx_ws_parse(&c->ws, data, len);
    data += n;
    len -= n;
    if (c->ws.error_code) {
      /* The parser's own finding; a callback's (a deferred violation, set
       * by violation_checked) has been dealt with already. */
      if (nx_ws_parser_failed(&c->ws))
        violation(c, c->ws.error_code, c->ws.error_reason);
      return;
    }
    if ((c->paused || c->held) && len) {
      /* Keep the unparsed rest until the app has made room, or until the
       * next turn. */
      if (nx_conn_keep_pending(c, data, len))
        nx_conn_fail(c, 1011, "out of memory");
      return;
    }
    if (n == 0)
      break;
  }
}

/* The app accepted: from now on bytes are frames. Bytes that came right
 * after the request (even in the same segment) are the first of them. */
void nx_conn_upgraded(nx_conn_t *c, double ping_interval, double ping_timeout) {
  const nx_config_t *cfg = &c->listener->cfg;
  c->state = NX_CONN_OPEN;
  c->ws.max_message_size = cfg->max_message_size;
  c->ws.defer_unmask = 1; /* ws_data unmasks binary data as it copies it */
  nx_ws_parser_init(&c->ws, &ws_callbacks, c, NX_WS_ROLE_SERVER);
  nx_timerq_stop(&c->rt->timers, &c->tnode);
  /* Negative: the listener's setting; 0 turns the heartbeat off. */
  c->ping_interval = ping_interval < 0 ? cfg->ping_interval : (uint32_t)(ping_interval * 1000);
  c->ping_timeout = ping_timeout < 0 ? cfg->ping_timeout : (uint32_t)(ping_timeout * 1000);
  c->last_rx = uv_now(c->rt->loop);
  if (c->ping_interval)
    nx_conn_arm(c, c->ping_interval);
  nx_conn_parse_pending(c);
  if (!c->paused && !c->held) /* the app may already be behind on what came with the request */
    nx_conn_start_reading(c);
}

/* Takes the oldest complete message; resumes reading when there is room. */
nx_msg_t *nx_conn_pop(nx_conn_t *c) {
  nx_msg_t *m = c->inbox;
  if (!m)
    return NULL;
  c->inbox = m->next;
  if (!c->inbox)
    c->inbox_tail = NULL;
  c->inbox_bytes -= m->cap + sizeof(*m);
  if (m->compressed) {
    /* (see ws_message_end) A message that fails to inflate fails the
     * connection at once: what came after it is not the app's. */
    int err = 0;
    if ((m = nx_msg_inflate(c->rt, m, &err)) == NULL) {
      drop_inbox_from(c, c->inbox);
      /* (A connection whose end has begun, our close sent or the peer's
       * answered, is left to end as it was going to.) A peer's close whose
       * answer waits for the app (defer_end) came after this message: the
       * failure is the connection's end, for the app as on the wire. */
      if (c->state == NX_CONN_OPEN) {
        if (c->close_received)
          nx_conn_forget_close(c);
        msg_inflate_failed(c, err);
      }
      return NULL;
    }
  }
  if (nx_conn_end_waits(c)) {
    /* The peer's close or a violation is waiting for the app to take the
     * messages before it (defer_end): this was the last one. */
    if (!c->inbox)
      nx_rt_mark_dirty(c);
  } else if (c->paused && c->inbox_bytes <= c->listener->cfg.read_pause_bytes / 2 &&
             (c->state == NX_CONN_OPEN || c->state == NX_CONN_CLOSING)) {
    nx_conn_resume_reading(c);
  }
  return m;
}
