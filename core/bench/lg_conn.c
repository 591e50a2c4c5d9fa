/* nx_loadgen: connections. Each one is a real RFC 6455 client: the opening
 * handshake (Sec-WebSocket-Accept checked), masked frames built with the pure
 * layer, the server's frames read with a client-role parser, and every
 * payload that comes back compared with what was sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <zlib.h>

#include "lg_run.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ---- Payloads ----------------------------------------------------------
 * A message is its sequence number in hex (up to 16 digits) followed by a
 * window of a printable template that starts at seq % 64: every message
 * differs, text stays valid UTF-8, and checking a chunk is a memcmp. */

static const char HEX[] = "0123456789abcdef";

static void gen_payload(uint8_t *dst, uint64_t seq, size_t size) {
  size_t h = size < 16 ? size : 16, i;
  for (i = 0; i < h; i++)
    dst[i] = (uint8_t)HEX[(seq >> (4 * (h - 1 - i))) & 15];
  if (size > h)
    memcpy(dst + h, lg.tmpl + (seq & 63) + h, size - h);
}

static int verify_chunk(uint64_t seq, uint64_t pos, const uint8_t *d, size_t n) {
  size_t h = lg.size < 16 ? lg.size : 16;
  if (pos + n > lg.size)
    return -1;
  while (n && pos < h) {
    if (*d != (uint8_t)HEX[(seq >> (4 * (h - 1 - pos))) & 15])
      return -1;
    d++, n--, pos++;
  }
  if (n && memcmp(d, lg.tmpl + (seq & 63) + pos, n) != 0)
    return -1;
  return 0;
}

/* A compressed message's bytes (RFC 7692): inflated, then checked as
 * verify_chunk checks plain ones. tail: the 00 00 ff ff the server removed,
 * at the message's end. Returns 0, or -1 (bad data or a mismatch). */
static int inflate_verify(conn_t *c, uint64_t seq, const uint8_t *d, size_t n) {
  static uint8_t out[65536];
  z_stream *z = (z_stream *)c->rx_z;
  z->next_in = (Bytef *)d;
  z->avail_in = (uInt)n;
  do {
    int r;
    size_t got;
    z->next_out = out;
    z->avail_out = sizeof(out);
    r = inflate(z, Z_SYNC_FLUSH);
    if (r != Z_OK && r != Z_BUF_ERROR && r != Z_STREAM_END)
      return -1;
    got = sizeof(out) - z->avail_out;
    if (got && verify_chunk(seq, c->rx_pos, out, got))
      return -1;
    c->rx_pos += got;
    if (r == Z_STREAM_END) {
      /* A final block (BFINAL): the stream ends; the next message starts a
       * new one, and what follows it in this one (the empty block the
       * sender adds) inflates to nothing. */
      inflateReset(z);
      break;
    }
    if (r == Z_BUF_ERROR)
      break;
  } while (z->avail_in || z->avail_out == 0);
  return 0;
}

/* ---- Output ------------------------------------------------------------ */

static uint8_t *wbuf_reserve(wbuf_t *b, size_t extra) {
  if (b->len + extra > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    uint8_t *p;
    while (cap < b->len + extra)
      cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
      fprintf(stderr, "nx_loadgen: out of memory\n");
      exit(4);
    }
    b->p = p;
    b->cap = cap;
  }
  return b->p + b->len;
}

static void wbuf_free(wbuf_t *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

static void on_write(uv_write_t *req, int status) {
  conn_t *c = (conn_t *)req->data;
  c->writing = 0;
  c->infl.len = 0;
  if (status < 0) {
    if (!c->handle_closing && c->state < CS_CLOSING && lg.phase < PH_CLOSE)
      error_(&lg.err_closed, "write failed on connection %u: %s", c->id, uv_strerror(status));
    conn_close(c);
    fail_run();
    return;
  }
  if (c->role == ROLE_IDLE && c->pend.len == 0) {
    wbuf_free(&c->pend);
    wbuf_free(&c->infl);
  }
  flush(c);
}

/* Writes what is pending: directly when the socket takes it, else with one
 * uv_write (and anything queued meanwhile goes out when it completes). */
void flush(conn_t *c) {
  uv_buf_t b;
  int r;
  wbuf_t t;
  if (c->writing || c->pend.len == 0 || c->handle_closing || c->state < CS_HANDSHAKE)
    return;
  b = uv_buf_init((char *)c->pend.p, (unsigned)c->pend.len);
  r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (r == (int)c->pend.len) {
    c->pend.len = 0;
    return;
  }
  if (r < 0 && r != UV_EAGAIN) {
    if (c->state < CS_CLOSING && lg.phase < PH_CLOSE)
      error_(&lg.err_closed, "write failed on connection %u: %s", c->id, uv_strerror(r));
    conn_close(c);
    fail_run();
    return;
  }
  if (r < 0)
    r = 0;
  t = c->infl;
  c->infl = c->pend;
  c->pend = t;
  c->pend.len = 0;
  b = uv_buf_init((char *)c->infl.p + r, (unsigned)(c->infl.len - (size_t)r));
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) == 0)
    c->writing = 1;
  else
    conn_close(c);
}

/* Appends one masked frame; the payload is copied (or generated) in place. */
static uint8_t *frame_begin(conn_t *c, int opcode, size_t len, uint8_t key[4]) {
  uint8_t *p = wbuf_reserve(&c->pend, 14 + len);
  uint32_t k = (uint32_t)lg_rand(&lg.rng);
  size_t h;
  memcpy(key, &k, 4);
  h = nx_ws_frame_header(p, 1, 0, opcode, len, key);
  c->pend.len += h + len;
  return p + h;
}

static void send_frame(conn_t *c, int opcode, const uint8_t *payload, size_t len) {
  uint8_t key[4];
  uint8_t *d = frame_begin(c, opcode, len, key);
  if (len)
    memcpy(d, payload, len);
  nx_ws_mask(d, len, key, 0);
}

static void send_close(conn_t *c, unsigned code) {
  uint8_t pl[2];
  pl[0] = (uint8_t)(code >> 8);
  pl[1] = (uint8_t)code;
  send_frame(c, NX_WS_OP_CLOSE, pl, 2);
}

static void send_message(conn_t *c, uint64_t seq, int binary) {
  uint8_t key[4];
  uint8_t *d = frame_begin(c, binary ? NX_WS_OP_BINARY : NX_WS_OP_TEXT, lg.size, key);
  gen_payload(d, seq, lg.size);
  nx_ws_mask(d, lg.size, key, 0);
}

static uint64_t echo_seq(const conn_t *c, uint64_t n) {
  return ((uint64_t)c->id << 32) | (n & 0xffffffffu);
}

void send_echo(conn_t *c) {
  send_message(c, echo_seq(c, c->tx_seq), lg.binary);
  c->ts[c->tx_seq % (uint64_t)lg.inflight] = uv_hrtime();
  c->tx_seq++;
  lg.outstanding++;
}

/* The publisher keeps up to K messages in flight; one is done when every
 * subscriber has it. */
void pump_publisher(void) {
  conn_t *p = lg.pub;
  if (!p || p->state != CS_OPEN)
    return;
  while (lg.outstanding < lg.inflight && (lg.phase == PH_WARMUP || lg.phase == PH_MEASURE)) {
    slot_t *s = &lg.slots[lg.pub_seq % (uint64_t)lg.inflight];
    send_message(p, lg.pub_seq, 0);
    s->ts = uv_hrtime();
    s->count = 0;
    lg.pub_seq++;
    lg.outstanding++;
    lg.pub_dirty = 1;
  }
}

/* ---- Deadlines ---------------------------------------------------------- */

static void timed_add(conn_t *c, double seconds) {
  c->deadline = uv_hrtime() + (uint64_t)(seconds * 1e9);
  if (c->timed)
    return;
  c->timed = 1;
  c->tprev = NULL;
  c->tnext = lg.timed;
  if (lg.timed)
    lg.timed->tprev = c;
  lg.timed = c;
}

static void timed_remove(conn_t *c) {
  if (!c->timed)
    return;
  c->timed = 0;
  if (c->tprev)
    c->tprev->tnext = c->tnext;
  else
    lg.timed = c->tnext;
  if (c->tnext)
    c->tnext->tprev = c->tprev;
}

/* ---- Connection life ---------------------------------------------------- */

/* Everything is closed: let the loop end. */
void end_run(void) {
  if (lg.phase == PH_END)
    return;
  lg.phase = PH_END;
  uv_close((uv_handle_t *)&lg.t_phase, NULL);
  uv_close((uv_handle_t *)&lg.t_sweep, NULL);
  uv_close((uv_handle_t *)&lg.t_guard, NULL);
  uv_close((uv_handle_t *)&lg.sig_int, NULL);
  uv_close((uv_handle_t *)&lg.sig_term, NULL);
}

static void conn_gone(conn_t *c) {
  if (c->prev)
    c->prev->next = c->next;
  else
    lg.all = c->next;
  if (c->next)
    c->next->prev = c->prev;
  lg.nconns--;

  if (c->role == ROLE_CYCLE) {
    lg.active_slots--;
    if (lg.phase == PH_WARMUP || lg.phase == PH_MEASURE)
      start_cycle();
    else
      check_drained();
  } else if (!c->opened && lg.phase == PH_CONNECT) {
    /* It failed before opening: try the next one. */
    lg.pending--;
    lg.failed++;
    if (c->role == ROLE_PUB) {
      error_(&lg.err_connect, "the publisher could not connect");
      fail_run();
    } else {
      connect_next();
    }
  } else if (c->role == ROLE_SUB && c->opened) {
    lg.nsubs--;
  }
  if (c == lg.pub)
    lg.pub = NULL;
  nx_ws_parser_free(&c->parser);
  wbuf_free(&c->pend);
  wbuf_free(&c->infl);
  free(c->hs);
  free(c->ts);
  if (c->rx_z) {
    inflateEnd((z_stream *)c->rx_z);
    free(c->rx_z);
  }
  free(c);
  if (lg.phase == PH_CLOSE && lg.nconns == 0)
    end_run();
}

static void on_closed(uv_handle_t *h) { conn_gone((conn_t *)h->data); }

void conn_close(conn_t *c) {
  if (c->handle_closing)
    return;
  c->handle_closing = 1;
  c->state = CS_DONE;
  timed_remove(c);
  uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Starts our side of the closing handshake. */
void conn_start_close(conn_t *c) {
  if (c->handle_closing)
    return;
  if (c->state != CS_OPEN) {
    conn_close(c);
    return;
  }
  send_close(c, 1000);
  c->state = CS_CLOSING;
  timed_add(c, lg.close_wait);
  flush(c);
}

/* ---- Frames from the server --------------------------------------------- */

static int expected_opcode(void) {
  return lg.mode == MODE_ECHO && lg.binary ? NX_WS_OP_BINARY : NX_WS_OP_TEXT;
}

static int bad(conn_t *c, long *counter, const char *what) {
  error_(counter, "connection %u (%s): %s", c->id, c->role == ROLE_SUB ? "subscriber" : "client",
         what);
  conn_close(c);
  fail_run();
  return 1;
}

static int on_message_begin(nx_ws_parser_t *p, int opcode, int rsv1) {
  conn_t *c = (conn_t *)p->data;
  if (rsv1 && !c->pmd)
    return bad(c, &lg.err_protocol, "RSV1 set without an extension");
  c->rx_compressed = (uint8_t)rsv1;
  if (rsv1 && c->pmd_reset)
    inflateReset((z_stream *)c->rx_z);
  if (c->role != ROLE_ECHO && c->role != ROLE_SUB)
    return bad(c, &lg.err_protocol, "unexpected data message from the server");
  if (opcode != expected_opcode())
    return bad(c, &lg.err_verify,
               opcode == NX_WS_OP_TEXT ? "got text, expected binary" : "got binary, expected text");
  if (c->role == ROLE_ECHO && c->rx_seq >= c->tx_seq)
    return bad(c, &lg.err_verify, "got a message that was never sent");
  if (c->role == ROLE_SUB && c->rx_seq >= lg.pub_seq)
    return bad(c, &lg.err_verify, "got a message that was never published");
  c->rx_op = opcode;
  c->rx_pos = 0;
  return 0;
}

static int on_data(nx_ws_parser_t *p, const uint8_t *d, size_t n) {
  conn_t *c = (conn_t *)p->data;
  uint64_t seq = c->role == ROLE_ECHO ? echo_seq(c, c->rx_seq) : c->rx_seq;
  if (c->rx_compressed) {
    if (inflate_verify(c, seq, d, n))
      return bad(c, &lg.err_verify, "compressed payload differs from what was sent");
    return 0;
  }
  if (verify_chunk(seq, c->rx_pos, d, n))
    return bad(c, &lg.err_verify, "payload differs from what was sent (wrong content or order)");
  c->rx_pos += n;
  return 0;
}

static int on_message_end(nx_ws_parser_t *p) {
  conn_t *c = (conn_t *)p->data;
  int measuring = lg.phase == PH_MEASURE;
  if (c->rx_compressed) {
    static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
    uint64_t seq = c->role == ROLE_ECHO ? echo_seq(c, c->rx_seq) : c->rx_seq;
    if (inflate_verify(c, seq, tail, 4))
      return bad(c, &lg.err_verify, "compressed payload differs from what was sent");
    lg.compressed_msgs++;
  }
  if (c->rx_pos != lg.size)
    return bad(c, &lg.err_verify, "message shorter than what was sent");
  if (c->role == ROLE_ECHO) {
    uint64_t t = c->ts[c->rx_seq % (uint64_t)lg.inflight];
    c->rx_seq++;
    lg.outstanding--;
    if (measuring) {
      lg_hist_add(&lg.lat, lg.now > t ? lg.now - t : 0);
      lg.ops++;
      lg.bytes += lg.size;
    }
    if (lg.phase == PH_WARMUP || lg.phase == PH_MEASURE)
      send_echo(c);
    else
      check_drained();
  } else {
    slot_t *s = &lg.slots[c->rx_seq % (uint64_t)lg.inflight];
    c->rx_seq++;
    if (measuring) {
      lg_hist_add(&lg.lat, lg.now > s->ts ? lg.now - s->ts : 0);
      lg.ops++;
      lg.bytes += lg.size;
    }
    if (++s->count == (uint32_t)lg.nsubs) {
      lg.outstanding--;
      pump_publisher();
      check_drained();
    }
  }
  return 0;
}

static int on_control(nx_ws_parser_t *p, int opcode, const uint8_t *pl, size_t len) {
  conn_t *c = (conn_t *)p->data;
  if (opcode == NX_WS_OP_PING) {
    send_frame(c, NX_WS_OP_PONG, pl, len);
    return 0;
  }
  if (opcode != NX_WS_OP_CLOSE)
    return 0;
  if (c->state == CS_CLOSING) {
    /* The server's answer to our close. */
    if (c->role == ROLE_CYCLE && lg.phase == PH_MEASURE) {
      lg_hist_add(&lg.lat, lg.now - c->t_start);
      lg.ops++;
    }
  } else {
    unsigned code = len >= 2 ? ((unsigned)pl[0] << 8 | pl[1]) : 1005;
    if (lg.phase < PH_CLOSE)
      error_(&lg.err_closed, "the server closed connection %u with code %u", c->id, code);
    send_close(c, code == 1005 ? 1000 : code);
    c->state = CS_WAIT_EOF;
    timed_add(c, lg.close_wait);
    fail_run();
    return 1;
  }
  c->state = CS_WAIT_EOF;
  timed_add(c, lg.close_wait);
  return 1;
}

static const nx_ws_callbacks_t CALLBACKS = {on_message_begin, NULL,       on_data,
                                            on_message_end,   on_control, NULL};

static uint8_t readbuf[1 << 20];

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  *buf = uv_buf_init((char *)readbuf, sizeof(readbuf));
}

static void parse(conn_t *c, uint8_t *d, size_t n) {
  if (c->state == CS_WAIT_EOF || c->handle_closing)
    return; /* after a close frame: ignored */
  nx_ws_parse(&c->parser, d, n);
  if (c->parser.error_code && !c->handle_closing) {
    char what[160];
    snprintf(what, sizeof(what), "protocol error from the server: %s", c->parser.error_reason);
    bad(c, &lg.err_protocol, what);
  }
}

static void handshake_done(conn_t *c) {
  free(c->hs);
  c->hs = NULL;
  c->hs_len = c->hs_cap = 0;
  c->state = CS_OPEN;
  c->opened = 1;
  timed_remove(c);
  if (c->role == ROLE_CYCLE) {
    if (lg.phase == PH_MEASURE) {
      lg_hist_add(&lg.hs_lat, lg.now - c->t_start);
      lg.handshakes++;
    }
    conn_start_close(c);
    return;
  }
  if (c->role == ROLE_IDLE && c->pend.len == 0 && !c->writing) {
    wbuf_free(&c->pend);
    wbuf_free(&c->infl);
  }
  if (c->role == ROLE_SUB)
    lg.nsubs++;
  lg.pending--;
  lg.connected++;
  if (c->role == ROLE_PUB)
    all_connected();
  else
    connect_next();
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn_t *c = (conn_t *)s->data;
  lg.now = uv_hrtime();
  if (nread < 0) {
    if (c->state != CS_WAIT_EOF && c->state != CS_CLOSING && lg.phase < PH_CLOSE) {
      if (c->state == CS_HANDSHAKE)
        error_(&lg.err_handshake,
               "connection %u: the server ended the connection during the handshake (%s)", c->id,
               uv_strerror((int)nread));
      else
        error_(&lg.err_closed, "connection %u: the server ended the connection (%s)", c->id,
               uv_strerror((int)nread));
    }
    conn_close(c);
    fail_run();
    return;
  }
  if (nread == 0)
    return;
  if (c->state == CS_HANDSHAKE) {
    size_t head = 0;
    const char *err = NULL;
    int r;
    if (c->hs_len + (size_t)nread > c->hs_cap) {
      size_t cap = c->hs_cap ? c->hs_cap : 512;
      char *p;
      while (cap < c->hs_len + (size_t)nread)
        cap *= 2;
      p = realloc(c->hs, cap);
      if (!p)
        exit(4);
      c->hs = p;
      c->hs_cap = cap;
    }
    memcpy(c->hs + c->hs_len, buf->base, (size_t)nread);
    c->hs_len += (size_t)nread;
    r = lg_hs_response(c->hs, c->hs_len, c->accept, &head, &err);
    if (r == 0)
      return;
    if (r < 0) {
      error_(&lg.err_handshake, "connection %u: handshake refused: %s", c->id, err);
      conn_close(c);
      fail_run();
      return;
    }
    if (lg.deflate) {
      /* The server took the offer (with or without context takeover)? */
      size_t vlen = 0;
      const char *v = lg_hs_header(c->hs, head - 2, "Sec-WebSocket-Extensions", &vlen);
      if (v && vlen >= 18 && strncmp(v, "permessage-deflate", 18) == 0) {
        z_stream *z = calloc(1, sizeof(*z));
        if (!z || inflateInit2(z, -15) != Z_OK)
          exit(4);
        c->rx_z = z;
        c->pmd = 1;
        lg.pmd_conns++;
        static const char snct[] = "server_no_context_takeover";
        size_t i;
        for (i = 0; i + sizeof(snct) - 1 <= vlen; i++)
          if (memcmp(v + i, snct, sizeof(snct) - 1) == 0)
            c->pmd_reset = 1;
        c->parser.allow_rsv1 = 1;
      }
    }
    {
      /* Frames that came with the head go through the parser (from the
       * shared buffer, since the head buffer is freed). */
      size_t rest = c->hs_len - head;
      memmove(readbuf, c->hs + head, rest);
      handshake_done(c);
      if (rest)
        parse(c, readbuf, rest);
    }
  } else if (c->state >= CS_OPEN) {
    parse(c, (uint8_t *)buf->base, (size_t)nread);
  }
  flush(c);
  if (lg.pub_dirty && lg.pub) {
    lg.pub_dirty = 0;
    flush(lg.pub);
  }
}

static void on_connect(uv_connect_t *req, int status) {
  conn_t *c = (conn_t *)req->data;
  char reqbuf[512];
  size_t n;
  const char *path = c->role == ROLE_PUB ? lg.pub_path : lg.path;
  if (c->handle_closing)
    return;
  if (status < 0) {
    error_(&lg.err_connect, "connect %s:%d: %s", lg.host, lg.port, uv_strerror(status));
    conn_close(c);
    fail_run();
    return;
  }
  c->state = CS_HANDSHAKE;
  uv_tcp_nodelay(&c->tcp, 1);
  {
    char key[LG_WS_KEY_LEN + 1];
    lg_hs_key(&lg.rng, key, c->accept);
    n = lg_hs_request(reqbuf, sizeof(reqbuf), lg.host, lg.port, path, key, lg.deflate);
  }
  memcpy(wbuf_reserve(&c->pend, n), reqbuf, n);
  c->pend.len += n;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    conn_close(c);
    return;
  }
  flush(c);
}

conn_t *start_conn(int role) {
  conn_t *c = calloc(1, sizeof(*c));
  int r;
  if (!c)
    exit(4);
  r = uv_tcp_init_ex(lg.loop, &c->tcp, AF_INET);
  if (r != 0) {
    /* No handle (EMFILE, ...): account for it as a failed connection. */
    free(c);
    if (role == ROLE_CYCLE)
      lg.active_slots--;
    else if (lg.phase == PH_CONNECT)
      lg.pending--, lg.failed++;
    error_(&lg.err_connect, "socket: %s", uv_strerror(r));
    fail_run();
    return NULL;
  }
  c->role = (uint8_t)role;
  c->id = lg.next_id++;
  c->state = CS_CONNECTING;
  c->t_start = uv_hrtime();
  c->tcp.data = c;
  c->creq.data = c;
  c->next = lg.all;
  if (lg.all)
    lg.all->prev = c;
  lg.all = c;
  lg.nconns++;
  c->parser.max_message_size = 0;
  nx_ws_parser_init(&c->parser, &CALLBACKS, c, NX_WS_ROLE_CLIENT);
  if (role == ROLE_ECHO) {
    c->ts = calloc((size_t)lg.inflight, sizeof(uint64_t));
    if (!c->ts)
      exit(4);
  }
  if (lg.nsrc) {
    uv_os_fd_t fd;
    int one = 1;
    c->src = (uint8_t)(c->id % (uint32_t)lg.nsrc);
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
      setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    r = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&lg.src[c->src], 0);
    if (r != 0) {
      error_(&lg.err_connect, "bind to the source address: %s", uv_strerror(r));
      conn_close(c);
      fail_run();
      return NULL;
    }
  }
  r = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&lg.dst, on_connect);
  if (r != 0) {
    error_(&lg.err_connect, "connect: %s", uv_strerror(r));
    conn_close(c);
    fail_run();
    return NULL;
  }
  timed_add(c, lg.hs_timeout);
  return c;
}
