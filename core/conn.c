/* One connection: its life (accept, timeouts, heartbeat, lingering close,
 * the end), reads, the request and the upgrade, and the output queue. What
 * its frames become once it is a WebSocket (messages, the inbox, pongs, the
 * peer's close, violations) is conn_frames.c.
 *
 * Memory is freed only in the close callback of the last of its two libuv
 * handles, never inside a callback that may still use it; Lua reaches the
 * connection through a box whose pointer is cleared first. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#ifdef __linux__
#include <linux/sockios.h> /* SIOCOUTQ */
#endif

#include "conn_priv.h"
#include "extensions.h"
#include "ipcount.h"
#include "lauxlib.h"
#include "log.h"
#include "nx.h"
#include "pubsub.h"
#include "stream.h"
#include "tls.h"
#include "token.h"

static int peer_ip(nx_conn_t *c, uint8_t ip[16]);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Every read lands in the runtime's one buffer: it is parsed completely
 * (and what must outlive it copied) before the next read, so an idle
 * connection holds no read buffer at all. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  nx_conn_t *c = (nx_conn_t *)h->data;
  (void)suggested;
  *buf = uv_buf_init((char *)c->rt->readbuf, sizeof(c->rt->readbuf));
}

/* close_notify: the peer sends nothing more. Mid-conversation that is an
 * abnormal end (1006); after a close handshake, just the end, as after its
 * close frame or violation whose answer waits for the end of the turn
 * (nx_conn_end_deferred). */
static void tls_peer_closed(nx_conn_t *c) {
  if (c->state == NX_CONN_DONE)
    nx_conn_end(c);
  else if (!(c->state == NX_CONN_OPEN && (c->close_received || c->ws.error_code)))
    nx_conn_abort(c, 1006);
}

void nx_conn_start_reading(nx_conn_t *c) {
  if (c->tls_eof && !c->closing_handles) {
    /* What came before the peer's close_notify has been parsed now. */
    c->tls_eof = 0;
    tls_peer_closed(c);
    return;
  }
  if (c->reading || c->closing_handles || c->state == NX_CONN_DONE || c->ws.error_code ||
      c->close_received)
    return; /* (nothing is read after a violation or a close: see violation, ws_control) */
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
}

void nx_conn_stop_reading(nx_conn_t *c) {
  if (!c->reading)
    return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
}

/* ---- Fairness between connections ------------------------------------
 * libuv reads a readable socket up to 32 times (8 MiB into our buffer) in
 * one go, and every message in those bytes is parsed, queued and taken by
 * its handler before any other connection is looked at: one client sending
 * fast (many small messages, or compressed ones that inflate) could hold
 * everyone else for seconds. Past NX_TURN_BYTES read or NX_TURN_MESSAGES
 * parsed in one turn, a connection is held: its reading stops, and the
 * rest of what it sent waits in pending, until the next turn
 * (nx_conn_release_held, before the loop polls), where it takes its turn
 * with the others. The counts are kept for the connection read last. */
#define NX_TURN_BYTES (1u << 20)
#define NX_TURN_MESSAGES 1024u

static void counting(nx_conn_t *c) {
  nx_rt_t *rt = c->rt;
  if (rt->read_conn != c) {
    rt->read_conn = c;
    rt->read_bytes = 0;
    rt->read_msgs = 0;
  }
}

/* Holds c until the next turn: 1, or 0 when it cannot (no memory: it reads
 * on). */
static int hold(nx_conn_t *c) {
  nx_rt_t *rt = c->rt;
  if (c->held)
    return 1;
  if (c->closing_handles)
    return 0;
  if (rt->nheld == rt->held_cap) {
    uint32_t cap = rt->held_cap ? rt->held_cap * 2 : 16;
    nx_conn_t **a = (nx_conn_t **)realloc(rt->held, cap * sizeof(*a));
    if (!a)
      return 0;
    rt->held = a;
    rt->held_cap = cap;
  }
  rt->held[rt->nheld++] = c;
  c->held = 1;
  nx_conn_stop_reading(c);
  nx_rt_keep_polling(rt);
  return 1;
}

static void count_read(nx_conn_t *c, size_t n) {
  if (c->state != NX_CONN_OPEN)
    return; /* (before the upgrade, the request's limits bound the bytes) */
  counting(c);
  c->rt->read_bytes += n;
  if (c->rt->read_bytes >= NX_TURN_BYTES && c->reading)
    hold(c);
}

int nx_conn_count_message(nx_conn_t *c) {
  counting(c);
  return ++c->rt->read_msgs >= NX_TURN_MESSAGES && hold(c);
}

/* c is freed while held (connections are freed in close callbacks, never
 * while the list is walked). */
static void unhold(nx_conn_t *c) {
  nx_rt_t *rt = c->rt;
  uint32_t i;
  for (i = 0; i < rt->nheld; i++)
    if (rt->held[i] == c) {
      rt->held[i] = rt->held[--rt->nheld];
      break;
    }
  c->held = 0;
}

void nx_conn_release_held(nx_rt_t *rt) {
  nx_conn_t **list = rt->held;
  uint32_t i, n = rt->nheld;
  rt->read_conn = NULL;
  if (!n)
    return;
  /* (a connection may be held again while the list is walked: a new one) */
  rt->held = NULL;
  rt->nheld = rt->held_cap = 0;
  for (i = 0; i < n; i++) {
    nx_conn_t *c = list[i];
    c->held = 0;
    if (c->paused || c->lingering || c->closing_handles)
      continue; /* (a paused one parses its pending bytes when it resumes) */
    if (c->state == NX_CONN_OPEN || c->state == NX_CONN_CLOSING)
      nx_conn_parse_pending(c);
    if (!c->held && !c->paused)
      nx_conn_start_reading(c);
  }
  free(list);
}

/* ---- Life and death ------------------------------------------------- */

void nx_conn_set_close(nx_conn_t *c, uint16_t code, const char *reason, size_t rlen) {
  if (c->close_code)
    return; /* the first cause is the one the app is told */
  c->close_code = code;
  if (reason && rlen) {
    if (rlen > NX_CLOSE_REASON_MAX)
      rlen = NX_CLOSE_REASON_MAX;
    c->close_reason = (char *)malloc(rlen + 1);
    if (c->close_reason) {
      memcpy(c->close_reason, reason, rlen); /* UTF-8, where NUL is valid: counted */
      c->close_reason[rlen] = '\0';
      c->close_reason_len = (uint8_t)rlen;
    }
  }
}

void nx_conn_forget_close(nx_conn_t *c) {
  free(c->close_reason);
  c->close_reason = NULL;
  c->close_reason_len = 0;
  c->close_code = 0;
}

nx_msg_t *nx_msg_new(nx_rt_t *rt, size_t cap) {
  nx_msg_t *m;
  if (cap <= NX_MSG_SMALL) {
    if ((m = (nx_msg_t *)nx_freelist_pop(&rt->msg_pool)) == NULL &&
        (m = (nx_msg_t *)malloc(sizeof(*m) + NX_MSG_SMALL)) == NULL) {
      return NULL;
    }
    cap = NX_MSG_SMALL;
  } else if ((m = (nx_msg_t *)malloc(sizeof(*m) + cap)) == NULL) {
    return NULL;
  }
  m->next = NULL;
  m->len = 0;
  m->cap = cap;
  m->opcode = 0;
  m->compressed = 0;
  return m;
}

void nx_msg_free(nx_rt_t *rt, nx_msg_t *m) {
  if (!m)
    return;
  /* Keep enough for a busy loop turn, not the peak of a burst. */
  if (m->cap != NX_MSG_SMALL || !nx_freelist_push(&rt->msg_pool, m, 1024))
    free(m);
}

/* (Re)arms the connection's one timeout (its room in the queue was reserved
 * at the accept). */
void nx_conn_arm(nx_conn_t *c, uint64_t ms) { nx_timerq_start(&c->rt->timers, &c->tnode, ms); }

void nx_conn_wake_waiters(nx_conn_t *c) {
  if (c->reader)
    nx_task_wake(c->reader, 0);
  while (c->writer) /* (each wake takes the task off the list) */
    nx_task_wake(c->writer, 0);
}

static void conn_free(nx_conn_t *c) {
  nx_rt_t *rt = c->rt;
  nx_listener_t *l = c->listener;
  nx_msg_t *m;

  if (l) {
    l->nconns--;
    if (c->ip_counted && l->per_ip)
      nx_ipcount_remove(l->per_ip, c->ip);
  }

  if (c->box) {
    c->box->conn = NULL;
    c->box->close_code = c->close_code ? c->close_code : 1006;
    c->box->close_reason = c->close_reason; /* the box's now */
    c->box->close_reason_len = c->close_reason_len;
    c->close_reason = NULL;
    /* Messages that came before the end are still the handler's to read:
     * a receive returns them before it reports the disconnect. They are
     * kept while the handler runs, and freed when it ends (runtime.c). */
    if (c->owner && c->inbox) {
      c->box->inbox = c->inbox;
      c->inbox = c->inbox_tail = NULL;
      c->owner->inbox_kept = 1;
    }
    luaL_unref(rt->L, LUA_REGISTRYINDEX, c->box_ref);
  }
  if (c->reader)
    nx_task_cancel_wait(c->reader);
  while (c->writer)
    nx_task_cancel_wait(c->writer);
  if (c->owner)
    c->owner->conn = NULL;
  if (c->dirty) {
    nx_conn_t **pp = &rt->dirty;
    while (*pp && *pp != c)
      pp = &(*pp)->dirty_next;
    if (*pp)
      *pp = c->dirty_next;
  }
  if (c->subs)
    nx_pubsub_drop_conn(rt, c);
  while ((m = c->inbox) != NULL) {
    c->inbox = m->next;
    nx_msg_free(rt, m);
  }
  nx_msg_free(rt, c->cur);
  nx_ws_parser_free(&c->ws);
  nx_http_free(rt, c->http);
  if (c->pending) {
    nx_buf_free(c->pending);
    free(c->pending);
  }
  nx_conn_out_free(c);
  nx_tls_free(c->tls);
  free(c->close_reason);
  if (c->held)
    unhold(c);
  if (rt->read_conn == c)
    rt->read_conn = NULL;
  nx_timerq_stop(&rt->timers, &c->tnode);
  nx_timerq_release(&rt->timers);
  rt->nconns--;
  if (!nx_freelist_push(&rt->conn_pool, c, NX_STRUCT_CACHE))
    free(c);
}

/* A zeroed connection: a kept one, or a new one. */
static nx_conn_t *conn_alloc(nx_rt_t *rt) {
  nx_conn_t *c = (nx_conn_t *)nx_freelist_pop(&rt->conn_pool);
  if (!c)
    return (nx_conn_t *)calloc(1, sizeof(*c));
  memset(c, 0, sizeof(*c));
  return c;
}

static void on_handle_closed(uv_handle_t *h) {
  nx_conn_t *c = (nx_conn_t *)h->data;
  if (--c->closing_handles == 0)
    conn_free(c);
}

/* Every change of state away from open goes through here: the topics keep
 * a count of the subscribers a publish reaches. */
static void leave_open(nx_conn_t *c, int state) {
  if (c->state == NX_CONN_OPEN)
    nx_pubsub_conn_leaving_open(c);
  c->state = state;
}

void nx_conn_really_close(nx_conn_t *c) {
  nx_listener_t *l = c->listener;
  if (c->closing_handles)
    return;
  leave_open(c, NX_CONN_DONE);
  nx_conn_set_close(c, 1006, NULL, 0);
  if (l) {
    if (c->prev)
      c->prev->next = c->next;
    else
      l->conns = c->next;
    if (c->next)
      c->next->prev = c->prev;
    c->prev = c->next = NULL;
  }
  nx_timerq_stop(&c->rt->timers, &c->tnode);
  c->closing_handles = 1;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  nx_conn_wake_waiters(c);
}

/* Our bytes the peer has taken (mod 2^32): those the socket took from us
 * (c->handed, counted as they go) less those still in the kernel's send
 * queue (SIOCOUTQ: not sent, or sent and not acknowledged). It grows while
 * the peer reads, however fast we queue more. */
static uint32_t acked_bytes(nx_conn_t *c, int *backlog) {
  uint32_t n = c->handed;
  int q = 0;
#ifdef SIOCOUTQ
  uv_os_fd_t fd;
  if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &q) != 0 || q < 0)
    q = 0;
  n -= (uint32_t)q;
#endif
  *backlog = q > 0 || nx_conn_buffered_all(c) > 0;
  return n;
}

/* Heartbeat of an open connection: ping after ping_interval of silence;
 * no sign of life within ping_timeout of the ping fails the connection.
 * Any bytes from the peer count, not only the pong, and so do our own
 * bytes leaving: a peer that reads is there, even while our ping waits
 * behind what it has still to read. */
static void heartbeat(nx_conn_t *c) {
  uint64_t now = uv_now(c->rt->loop), idle;
  int backlog;
  uint32_t acked = acked_bytes(c, &backlog);
  /* Taken from a backlog: the peer reads (however fast we queue more).
   * Without one, what it acknowledges may be our ping, which its kernel
   * takes for an app that reads nothing. (Equal after exactly 4 GiB: too
   * rare to matter.) */
  if (acked != c->acked_mark && c->had_backlog) {
    c->last_rx = now;
    c->ping_outstanding = 0;
  }
  c->acked_mark = acked;
  c->had_backlog = (uint8_t)backlog;
  if (c->paused && !c->writer) {
    /* Reads are stopped because our app is behind, not the peer: its
     * answers wait unread in the socket. Count it as alive. (Not when the
     * app waits to send to this very peer: if the peer reads, the bytes
     * leaving say so above; if it neither reads nor is read from, nothing
     * else would ever end the connection.) */
    c->last_rx = now;
    c->ping_outstanding = 0;
  }
  idle = now - c->last_rx;
  if (c->ping_outstanding) {
    uint64_t waited = now - c->ping_sent;
    if (waited >= c->ping_timeout) {
      nx_conn_debug(c, "no answer to a ping within %u ms: closing", c->ping_timeout);
      nx_conn_fail(c, 1011, "keepalive ping timeout");
      return;
    }
    nx_conn_arm(c, c->ping_timeout - waited);
  } else if (idle >= c->ping_interval) {
    nx_conn_send(c, NX_WS_OP_PING, "nexlua", 6);
    c->ping_outstanding = 1;
    c->ping_sent = now;
    /* Reads do not re-arm the timer (the hot path): wake up no later than
     * the next ping would be due after a prompt answer, so that a timeout
     * longer than the interval does not stretch the interval. */
    nx_conn_arm(c, c->ping_timeout && c->ping_timeout < c->ping_interval ? c->ping_timeout
                                                                         : c->ping_interval);
  } else {
    nx_conn_arm(c, c->ping_interval - idle);
  }
}

/* A connection's timeout (runtime.c's queue calls this): the heartbeat of
 * an open connection, else the end of the handshake or close wait. */
void nx_conn_timeout(nx_tnode_t *n) {
  nx_conn_t *c = (nx_conn_t *)((char *)n - offsetof(nx_conn_t, tnode));
  if (nx_conn_end_waits(c)) {
    nx_conn_debug(c, "close timeout: the app has not taken the messages before the peer's "
                     "close or violation; closing");
    nx_conn_end_deferred(c);
    return;
  }
  if (c->state == NX_CONN_OPEN) {
    heartbeat(c);
    return;
  }
  if (c->state == NX_CONN_HTTP)
    nx_conn_debug(c, "handshake timeout: closing the connection");
  else if (!c->lingering) /* (a lingering peer went quiet: the normal end) */
    nx_conn_debug(c, "close timeout: dropping the connection");
  nx_conn_really_close(c);
}

/* Ends the connection once its output is written (bounded by close_timeout). */
void nx_conn_end(nx_conn_t *c) {
  if (c->closing_handles)
    return;
  leave_open(c, NX_CONN_DONE);
  c->end_after_flush = 1;
  nx_conn_stop_reading(c);
  nx_conn_arm(c, c->listener->cfg.close_timeout);
  nx_rt_mark_dirty(c);
  nx_conn_wake_waiters(c);
}

/* A lingering close. A connection we end while the peer may still be
 * sending (we failed it, or refused its handshake) is not closed as soon as
 * our close frame or HTTP response is out: close() with unread input sends
 * a reset, and a client still writing (a message over the size limit, say)
 * would then see its write fail, and often never read our answer. So our
 * FIN follows our last bytes, and what the peer still sends is read and
 * dropped until it closes too, goes quiet for NX_LINGER_QUIET_MS, or the
 * close timeout has passed. */
#define NX_LINGER_QUIET_MS 250

void nx_conn_start_linger(nx_conn_t *c) {
  uv_os_fd_t fd;
  uint64_t now = uv_now(c->rt->loop);
  c->lingering = 1;
  if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0)
    shutdown(fd, SHUT_WR); /* (again, if the last write sent it already) */
  c->ping_sent = now + c->listener->cfg.close_timeout;
  nx_conn_arm(c, NX_LINGER_QUIET_MS);
  if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
}

/* Bytes that came after the request, before the handshake's answer: a
 * client must wait for the 101 (RFC 6455 §4.1), so they are kept for the
 * frame parser up to --max-header-size; past it (or out of memory) the
 * connection is dropped. Returns -1 if it was. */
static int keep_early(nx_conn_t *c, const void *data, size_t len) {
  size_t max = c->listener->cfg.max_header_size;
  if ((c->pending ? nx_buf_size(c->pending) : 0) + len > max) {
    nx_conn_debug(c,
                  "dropping the connection: it sent more than --max-header-size (%zu) before "
                  "the handshake's answer (a client must wait for the 101)",
                  max);
  } else if (nx_conn_keep_pending(c, data, len)) {
    nx_conn_debug(c, "dropping the connection: out of memory");
  } else {
    return 0;
  }
  nx_conn_abort(c, 1006);
  return -1;
}

/* Bytes (or the end) from a lingering peer: dropped; the quiet time starts
 * again, within the close timeout. */
static void linger_input(nx_conn_t *c, ssize_t nread) {
  uint64_t now = uv_now(c->rt->loop);
  if (nread < 0 || now >= c->ping_sent) {
    nx_conn_really_close(c);
    return;
  }
  nx_conn_arm(c, c->ping_sent - now < NX_LINGER_QUIET_MS ? c->ping_sent - now : NX_LINGER_QUIET_MS);
}

/* Drops the connection now, without a close frame (the app sees app_code). */
void nx_conn_abort(nx_conn_t *c, uint16_t app_code) {
  nx_conn_set_close(c, app_code, NULL, 0);
  nx_conn_really_close(c);
}

/* A connection past --max-connections: HTTP 503, and the end (lingering:
 * its request, if it is still coming, is read and dropped). Logged once a
 * second at most, with how many there were meanwhile: a flood of them must
 * not flood the log. */
static void over_capacity(nx_conn_t *c) {
  nx_listener_t *l = c->listener;
  uint32_t skipped;
  if (nx_log_limited(&l->over_log, uv_now(c->rt->loop), &skipped)) {
    if (skipped)
      nx_log(NX_LOG_WARN,
             "at the connection limit (%u): answering 503 (to %u more since the last entry; "
             "logged once a second at most)",
             l->cfg.max_connections, skipped);
    else
      nx_log(NX_LOG_WARN, "at the connection limit (%u): answering 503", l->cfg.max_connections);
  }
  nx_conn_debug(c, "at the connection limit: answering 503");
  nx_http_respond(c, 503, "Retry-After: 1\r\n", NULL, 0);
}

/* Past the open-file limit libuv accepts a connection and closes it at
 * once: its client sees a reset, and nothing would say why. So a warning
 * (once a minute at most) when the connections come close to the limit. */
static void check_fd_headroom(nx_rt_t *rt) {
  static uint64_t limit, warned_at;
  uint64_t now;
  if (!limit) {
    struct rlimit rl;
    limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? rl.rlim_cur
                                                                               : UINT64_MAX;
  }
  if (rt->nconns + 32 < limit)
    return;
  now = uv_now(rt->loop);
  if (warned_at && now - warned_at < 60000)
    return;
  warned_at = now;
  nx_log(NX_LOG_WARN,
         "%llu connections open, close to the open-file limit (%llu): past it, new connections "
         "are closed without an answer (raise `ulimit -n`, or lower --max-connections)",
         (unsigned long long)rt->nconns, (unsigned long long)limit);
}

void nx_conn_accepted(nx_listener_t *l) {
  nx_rt_t *rt = l->rt;
  nx_conn_t *c = conn_alloc(rt);
  int r;

  if (!c || nx_timerq_reserve(&rt->timers)) {
    nx_log(NX_LOG_ERROR, "out of memory accepting a connection");
    free(c);
    return;
  }
  c->rt = rt;
  c->listener = l;
  c->box_ref = LUA_NOREF;
  uv_tcp_init(rt->loop, &c->tcp);
  c->tcp.data = c;
  rt->nconns++;
  check_fd_headroom(rt);
  r = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp);
  if (r == 0)
    nx_conn_arm(c, l->cfg.handshake_timeout);
  if (r == 0) {
    c->http = nx_http_new(rt, l->cfg.max_header_size);
    if (!c->http)
      r = UV_ENOMEM;
  }
  if (r == 0 && l->cfg.tls && !(c->tls = nx_tls_new(l->cfg.tls)))
    r = UV_ENOMEM;
  if (r) {
    nx_log(NX_LOG_WARN, "accept failed: %s", uv_strerror(r));
    c->listener = NULL;     /* it was never counted there */
    c->closing_handles = 1; /* (conn_free disarms the timeout) */
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    return;
  }
  if (!l->nodelay_inherited)
    uv_tcp_nodelay(&c->tcp, 1);
  l->nconns++;
  if (l->cfg.max_connections && l->nconns > l->cfg.max_connections) {
    /* Answered 503 at once (over TLS, once its request is read, within a
     * second): a connection over the limit must not hold its descriptor for
     * the whole handshake timeout, or idle connections could take them all. */
    c->over_capacity = 1;
    if (l->cfg.handshake_timeout > 1000)
      nx_conn_arm(c, 1000);
  }
  if (l->cfg.max_per_ip && peer_ip(c, c->ip) == 0) {
    if (!l->per_ip)
      l->per_ip = nx_ipcount_new();
    if (l->per_ip) {
      uint32_t n = nx_ipcount_add(l->per_ip, c->ip);
      c->ip_counted = n > 0;
      if (n > l->cfg.max_per_ip) {
        nx_conn_debug(c, "closing a connection over the per-address cap (%u)", l->cfg.max_per_ip);
        c->next = l->conns;
        if (l->conns)
          l->conns->prev = c;
        l->conns = c;
        nx_conn_really_close(c);
        return;
      }
    }
  }
  c->next = l->conns;
  if (l->conns)
    l->conns->prev = c;
  l->conns = c;
  if (c->over_capacity && !c->tls) {
    over_capacity(c);
    return;
  }
  nx_conn_start_reading(c);
}

/* The peer's address as 16 bytes (IPv4 as ::ffff:a.b.c.d). */
static int peer_ip(nx_conn_t *c, uint8_t ip[16]) {
  uint8_t raw[16];
  uint16_t port;
  int family = nx_peer_address(&c->tcp, raw, &port);
  if (family == 0)
    return -1;
  if (family == 6) {
    memcpy(ip, raw, 16);
  } else { /* as an IPv4-mapped IPv6 address */
    memset(ip, 0, 10);
    ip[10] = ip[11] = 0xff;
    memcpy(ip + 12, raw, 4);
  }
  return 0;
}

/* Starts the closing handshake from our side. */
void nx_conn_close_frame(nx_conn_t *c, unsigned code, const char *reason, size_t rlen) {
  uint8_t payload[125];
  size_t n;
  if (c->state != NX_CONN_OPEN || c->close_sent)
    return;
  if (c->ws.error_code) {
    /* The peer's violation came first, and its failure was waiting for the
     * end of the turn (see violation): that is how the connection ends. */
    nx_conn_fail(c, c->ws.error_code, c->ws.error_reason);
    return;
  }
  n = nx_ws_close_payload(payload, code, reason, rlen);
  if (nx_conn_send(c, NX_WS_OP_CLOSE, payload, n))
    return; /* the connection was dropped meanwhile */
  c->close_sent = 1;
  nx_conn_set_close(c, (uint16_t)(code ? code : 1005), reason, n > 2 ? n - 2 : 0);
  if (c->close_received) {
    /* The peer's close came first, and its answer was waiting for the end
     * of the turn (see ws_control): this close is the answer. */
    nx_conn_end(c);
    return;
  }
  leave_open(c, NX_CONN_CLOSING);
  nx_conn_arm(c, c->listener->cfg.close_timeout);
  /* Paused because the app was behind: from now on data messages are
   * dropped (the app has closed), so read on, to see the peer's close. */
  if (c->paused)
    nx_conn_resume_reading(c);
  nx_conn_wake_waiters(c);
}

/* Fails the connection (RFC 6455 §7.1.7): close frame with code, then TCP. */
void nx_conn_fail(nx_conn_t *c, unsigned code, const char *reason) {
  size_t rlen = reason ? strlen(reason) : 0;
  nx_conn_debug(c, "failing the connection with %u: %s", code, reason ? reason : "");
  if (c->state == NX_CONN_OPEN) {
    uint8_t payload[125];
    size_t n = nx_ws_close_payload(payload, code, reason, rlen);
    nx_conn_send(c, NX_WS_OP_CLOSE, payload, n);
    c->close_sent = 1;
  }
  nx_conn_set_close(c, (uint16_t)code, reason, rlen);
  c->linger = !c->close_received;
  nx_conn_end(c);
}

void nx_conn_debug(nx_conn_t *c, const char *fmt, ...) {
  char peer[80], msg[512];
  va_list ap;
  if (!NX_LOG_ENABLED(NX_LOG_DEBUG))
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  nx_log(NX_LOG_DEBUG, "client %s: %s", nx_conn_peer_name(c, peer, sizeof(peer)), msg);
}

const char *nx_conn_peer_name(nx_conn_t *c, char *buf, size_t n) {
  uint8_t raw[16];
  uint16_t port = 0;
  char ip[64] = "?";
  int family = nx_peer_address(&c->tcp, raw, &port);
  if (family)
    uv_inet_ntop(family == 6 ? AF_INET6 : AF_INET, raw, ip, sizeof(ip));
  snprintf(buf, n, family == 6 ? "[%s]:%u" : "%s:%u", ip, (unsigned)port);
  return buf;
}

/* ---- Input: the request ---------------------------------------------- */

/* A request without Origin (not a browser) passes; one with an Origin must
 * match an entry of the list exactly (case-insensitive), or the list has "*". */
/* The length of origin s without its scheme's default port (":443" after
 * https:// or wss://, ":80" after http:// or ws://): a browser never writes
 * that port (RFC 6454 §6.2), and an entry that names it means the same
 * origin. */
static size_t origin_len(const char *s, size_t n) {
  static const struct {
    const char *scheme, *port;
  } defaults[] = {{"https://", ":443"}, {"wss://", ":443"}, {"http://", ":80"}, {"ws://", ":80"}};
  size_t i;
  for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
    size_t sl = strlen(defaults[i].scheme), pl = strlen(defaults[i].port);
    if (n > sl + pl && strncasecmp(s, defaults[i].scheme, sl) == 0 &&
        memcmp(s + n - pl, defaults[i].port, pl) == 0)
      return n - pl;
  }
  return n;
}

static int origin_allowed(nx_conn_t *c) {
  const char *vals[2];
  size_t lens[2];
  const char *list = c->listener->cfg.allowed_origins, *p;
  /* Two Origins: a browser sends one (RFC 6454 §7.3), so which would count?
   * Only "*" lets that through. */
  size_t norigins = nx_http_header_values(c->http, "origin", vals, lens, 2);
  if (norigins == 0)
    return 1;
  nx_trim_ows(&vals[0], &lens[0]); /* (llhttp keeps the blanks after a value) */
  lens[0] = origin_len(vals[0], lens[0]);
  for (p = list; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    while (n && *p == ' ')
      p++, n--;
    while (n && p[n - 1] == ' ')
      n--;
    n = origin_len(p, n);
    if ((n == 1 && *p == '*') || (norigins == 1 && n == lens[0] && strncasecmp(p, vals[0], n) == 0))
      return 1;
    if (!end)
      break;
    p = end + 1;
  }
  return 0;
}

static void on_request_bytes(nx_conn_t *c, const char *data, size_t len) {
  const char *tail = NULL, *why = NULL;
  char key[32];
  size_t tail_len = 0;
  int r = nx_http_feed(c->http, data, len, &tail, &tail_len);

  if ((r == 0 || r == 1) && nx_http_expects_continue(c->http))
    nx_conn_send_raw(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
  if (r == 0)
    return;
  if (r != 1) {
    nx_conn_debug(c, "bad HTTP request: %s", nx_http_error(c->http));
    nx_http_respond(c, r, NULL, NULL, 0);
    return;
  }
  if (c->over_capacity) {
    over_capacity(c);
    return;
  }
  if (nx_ops_answer(c)) /* (a plain GET or HEAD of --health-path or --metrics-path) */
    return;
  r = nx_http_check(c->http, &why, key, sizeof(key)); /* the box keeps it for the accept */
  if (r) {
    char body[160];
    int n = snprintf(body, sizeof(body), "%s\n", why);
    nx_conn_debug(c, "refused the handshake with %d: %s", r, why);
    nx_http_respond(c, r,
                    r == 426   ? "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n"
                    : r == 405 ? "Allow: GET\r\n"
                               : NULL,
                    body, (size_t)n);
    return;
  }
  if (c->listener->cfg.allowed_origins && !origin_allowed(c)) {
    if (NX_LOG_ENABLED(NX_LOG_DEBUG)) {
      const char *origin[2];
      size_t olen[2];
      int n = (int)nx_http_header_values(c->http, "origin", origin, olen, 2);
      if (n > 1)
        nx_conn_debug(c, "refused the handshake with two Origin headers: 403");
      else
        nx_conn_debug(c, "refused the handshake with a forbidden Origin (%.*s): 403",
                      n ? (int)(olen[0] > 200 ? 200 : olen[0]) : 0, n ? origin[0] : "");
    }
    nx_http_respond(c, 403, NULL, "Origin not allowed\n", 19);
    return;
  }
  if (tail_len && keep_early(c, tail, tail_len))
    return;
  if (c->listener->cfg.compression) {
    const char *vals[8];
    size_t lens[8], n = nx_http_header_values(c->http, "sec-websocket-extensions", vals, lens, 8);
    nx_pmd_params_t pmd;
    char reply[128];
    if (n && nx_pmd_negotiate(vals, lens, n, &pmd, reply, sizeof(reply))) {
      c->pmd_offered = 1;
      /* zlib's raw deflate has no 8-bit window, but with a 9-bit one it never
       * refers back more than 250 bytes (its window less the 262 it keeps
       * ahead), so what it makes inflates with an 8-bit window: the answer
       * can name 8. */
      c->pmd_bits = (uint8_t)(pmd.server_max_window_bits < 9 ? 9 : pmd.server_max_window_bits);
      c->pmd_bits_reply = (uint8_t)(pmd.server_window_in_reply ? pmd.server_max_window_bits : 0);
    }
  }
  nx_timerq_stop(&c->rt->timers, &c->tnode);
  c->state = NX_CONN_ROUTING;
  if (nx_lua_conn_dispatch(c))
    nx_http_respond(c, 500, NULL, NULL, 0);
}

/* Bytes from the transport (plaintext), by connection state. */
static void on_input(nx_conn_t *c, uint8_t *data, size_t len) {
  switch (c->state) {
  case NX_CONN_HTTP:
    on_request_bytes(c, (const char *)data, len);
    break;
  case NX_CONN_ROUTING:
    /* A client must wait for 101; keep a little, refuse a flood. */
    keep_early(c, data, len);
    break;
  case NX_CONN_OPEN:
  case NX_CONN_CLOSING:
    c->last_rx = uv_now(c->rt->loop);
    c->ping_outstanding = 0;
    if (c->paused) { /* older bytes wait in pending: keep the order */
      if (nx_conn_keep_pending(c, data, len))
        nx_conn_fail(c, 1011, "out of memory");
    } else
      nx_conn_parse_frames(c, data, len);
    break;
  default:
    break;
  }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  nx_conn_t *c = (nx_conn_t *)s->data;
  (void)buf;
  if (nread == 0)
    return;
  if (c->lingering) {
    linger_input(c, nread);
    return;
  }
  if (nread < 0) {
    /* EOF or reset without a close frame: abnormal closure (1006). */
    nx_conn_abort(c, 1006);
    nx_rt_run_ready(c->rt);
    return;
  }
  if (c->rt->busy_ns)
    nx_rt_busy(c->rt);
  count_read(c, (size_t)nread); /* (may stop reading after this one) */
  if (c->tls) {
    nx_buf_t *plain = &c->rt->tlsplain;
    plain->off = plain->len = 0;
    int r = nx_tls_read(c->tls, c->rt->readbuf, (size_t)nread, plain, nx_tls_out(c->tls));
    if (r < 0) {
      nx_conn_debug(c, "TLS failed (%s): dropping the connection", nx_tls_last_error());
      c->tls_closed = 1; /* no close_notify after a fatal alert */
      nx_conn_end(c);    /* the alert, if any, goes out first */
      nx_rt_run_ready(c->rt);
      return;
    }
    if (nx_buf_size(nx_tls_out(c->tls))) {
      /* TLS's own records (a KeyUpdate's answer, say) count against the
       * write limit too: a client that asks for them without reading
       * would grow them without end. */
      nx_rt_mark_dirty(c);
      if (nx_conn_check_room(c)) {
        nx_rt_run_ready(c->rt);
        return;
      }
    }
    if (plain->len)
      on_input(c, plain->data, plain->len);
    if (r == 1 && !c->closing_handles) {
      if ((c->held || c->paused) && c->pending)
        c->tls_eof = 1; /* after the bytes before it (nx_conn_start_reading) */
      else
        tls_peer_closed(c);
    }
  } else {
    on_input(c, c->rt->readbuf, (size_t)nread);
  }
  nx_rt_run_ready(c->rt);
}
