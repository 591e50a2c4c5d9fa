/* libFuzzer target: the RFC 6455 push parser and the frame encoder
 * (core/ws_frame.h).
 *
 * Input layout:
 *   byte 0  chunking (fuzz_common.h): bytes per nx_ws_parse() call
 *   byte 1  max_message_size: 0 no limit, 1..127 that many bytes (to reach
 *           1009 often), 128..254 (b - 127) * 64, 255 65536
 *   byte 2  flags: bit 0 allow_rsv1, bit 1 client role (else server),
 *           bits 2-3 when callbacks ask the parser to stop: never, always,
 *           in on_data only, on every third callback; bit 4 the chunked
 *           run sets defer_unmask (binary data reaches on_data masked);
 *           bit 5 the chunked run has on_message (the fast path), which
 *           the one-shot run always has
 *   rest    the bytes a peer sent
 *
 * Every callback checks the header's contract as it happens: data only
 * inside a message and inside a frame of the announced length, the message
 * size limit, a text message's data a valid UTF-8 prefix and whole at its
 * end, control payloads of at most 125 bytes with a valid close payload,
 * nothing after a close frame, nothing (and nothing consumed) once
 * error_code is set, and every call consumes all it is given unless a
 * callback stopped it, an error occurred or a close was seen.
 *
 * Then two differential checks:
 *   - the chunked run (with stops, maybe deferred unmasking) delivers the
 *     same events, message data and error as a one-shot run without either; with an error, only the
 * data of the last frame may differ (a chunked run delivers the valid part of a payload chunk
 * before the byte that broke UTF-8), one being a prefix of the other;
 *   - when the one-shot run had no error, re-encoding its events with
 *     nx_ws_frame_header() and nx_ws_mask() and parsing that gives the same
 *     events again (the encoder round trip). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "utf8.h"
#include "ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { EV_BEGIN = 'B', EV_FRAME = 'F', EV_END = 'E', EV_CTRL = 'C' };
enum { STOP_NEVER = 0, STOP_ALWAYS, STOP_DATA, STOP_THIRD };

typedef struct {
  uint8_t type;
  uint8_t op, rsv1; /* EV_BEGIN, EV_CTRL (op) */
  uint64_t len;     /* EV_FRAME: announced payload length */
  size_t off, n;    /* EV_FRAME: delivered data, EV_CTRL: payload, in run_t.bytes */
} ev_t;

typedef struct {
  nx_ws_parser_t *p;
  unsigned stop_mode;
  unsigned long calls; /* callbacks so far */
  int stopped;         /* the last callback asked to stop */

  /* The buffer of the nx_ws_parse() call in progress (NULL outside one). */
  const uint8_t *buf;
  size_t buf_len;
  size_t total_len; /* of the whole input */

  /* What has been delivered. */
  ev_t *ev;
  size_t nev, cap;
  fuzz_buf_t bytes;

  /* Protocol position, for the invariants. */
  int in_msg, msg_op, msg_rsv1, want_frame_begin;
  int have_frame;
  uint64_t frame_len, frame_got, msg_total;
  fuzz_buf_t msg; /* the current message's data */
  ref_utf8_t ref; /* over it, for an uncompressed text message */
  int closed, dead;
} run_t;

static uint64_t max_size_of(uint8_t b) {
  if (b < 128)
    return b;
  if (b == 255)
    return 65536;
  return (uint64_t)(b - 127) * 64;
}

static ev_t *log_add(run_t *r, uint8_t type) {
  ev_t *e;
  if (r->nev == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 32;
    r->ev = (ev_t *)realloc(r->ev, r->cap * sizeof(*r->ev));
    if (!r->ev)
      abort();
  }
  e = &r->ev[r->nev++];
  memset(e, 0, sizeof(*e));
  e->type = type;
  e->off = r->bytes.len;
  return e;
}

/* Checks common to every callback; returns what the callback should answer. */
static run_t *enter(nx_ws_parser_t *p) {
  run_t *r = (run_t *)p->data;
  FUZZ_CHECK(r != NULL && r->p == p, "callback with a foreign parser");
  FUZZ_CHECK(r->buf != NULL, "callback outside nx_ws_parse()");
  FUZZ_CHECK(!r->closed, "callback after the close frame");
  FUZZ_CHECK(!r->dead && p->error_code == 0, "callback after an error (%u)", p->error_code);
  r->calls++;
  /* Each event needs an input byte or two, except a stop's replay: a loop
   * that delivers events without consuming input would trip this. */
  FUZZ_CHECK(r->calls <= 4 * (unsigned long)r->total_len + 16,
             "runaway callbacks: %lu for %zu bytes", r->calls, r->total_len);
  return r;
}

static int leave(run_t *r, int is_data) {
  int stop = 0;
  switch (r->stop_mode) {
  case STOP_ALWAYS:
    stop = 1;
    break;
  case STOP_DATA:
    stop = is_data;
    break;
  case STOP_THIRD:
    stop = r->calls % 3 == 0;
    break;
  default:
    break;
  }
  r->stopped = stop;
  return stop;
}

static int frame_incomplete(const run_t *r) { return r->have_frame && r->frame_got < r->frame_len; }

static int on_message_begin(nx_ws_parser_t *p, int opcode, int rsv1) {
  run_t *r = enter(p);
  ev_t *e;
  FUZZ_CHECK(!r->in_msg, "message begin inside a message");
  FUZZ_CHECK(!frame_incomplete(r), "message begin inside a frame");
  FUZZ_CHECK(opcode == NX_WS_OP_TEXT || opcode == NX_WS_OP_BINARY, "message opcode %d", opcode);
  FUZZ_CHECK(rsv1 == 0 || rsv1 == 1, "rsv1 %d", rsv1);
  FUZZ_CHECK(!rsv1 || p->allow_rsv1, "rsv1 without allow_rsv1");
  r->in_msg = 1;
  r->msg_op = opcode;
  r->msg_rsv1 = rsv1;
  r->want_frame_begin = 1;
  r->have_frame = 0;
  r->msg_total = 0;
  r->msg.len = 0;
  ref_utf8_init(&r->ref);
  e = log_add(r, EV_BEGIN);
  e->op = (uint8_t)opcode;
  e->rsv1 = (uint8_t)rsv1;
  return leave(r, 0);
}

static int on_frame_begin(nx_ws_parser_t *p, uint64_t len) {
  run_t *r = enter(p);
  FUZZ_CHECK(r->in_msg, "frame begin outside a message");
  FUZZ_CHECK(!frame_incomplete(r), "frame begin before the previous frame's %llu bytes",
             (unsigned long long)r->frame_len);
  if (p->max_message_size) {
    uint64_t limit =
        r->msg_rsv1 ? nx_ws_compressed_limit(p->max_message_size) : p->max_message_size;
    FUZZ_CHECK(len <= limit && r->msg_total + len <= limit,
               "frame of %llu after %llu bytes, limit %llu", (unsigned long long)len,
               (unsigned long long)r->msg_total, (unsigned long long)limit);
  }
  r->want_frame_begin = 0;
  r->have_frame = 1;
  r->frame_len = len;
  r->frame_got = 0;
  log_add(r, EV_FRAME)->len = len;
  return leave(r, 0);
}

static int on_data(nx_ws_parser_t *p, const uint8_t *d, size_t n) {
  run_t *r = enter(p);
  ev_t *e;
  uint8_t *plain = NULL;
  FUZZ_CHECK(r->in_msg && !r->want_frame_begin && r->have_frame, "data outside a frame");
  FUZZ_CHECK(n > 0, "empty on_data");
  FUZZ_CHECK((uintptr_t)d >= (uintptr_t)r->buf &&
                 (uintptr_t)(d + n) <= (uintptr_t)(r->buf + r->buf_len),
             "data not in the caller's buffer (payloads are unmasked in place)");
  FUZZ_CHECK(r->frame_got + n <= r->frame_len, "%zu more bytes after %llu of a %llu-byte frame", n,
             (unsigned long long)r->frame_got, (unsigned long long)r->frame_len);
  if (p->data_masked) {
    /* defer_unmask: only for data the parser does not read itself. */
    FUZZ_CHECK(p->defer_unmask && !(r->msg_op == NX_WS_OP_TEXT && !r->msg_rsv1),
               "masked data without defer_unmask, or for uncompressed text");
    plain = (uint8_t *)malloc(n);
    if (!plain)
      abort();
    nx_ws_unmask_copy(plain, d, n, p->mask, p->data_phase);
    d = plain;
  }
  r->frame_got += n;
  r->msg_total += n;
  if (p->max_message_size)
    FUZZ_CHECK(r->msg_total <= (r->msg_rsv1 ? nx_ws_compressed_limit(p->max_message_size)
                                            : p->max_message_size),
               "message data %llu over the limit %llu", (unsigned long long)r->msg_total,
               (unsigned long long)p->max_message_size);
  if (r->msg_op == NX_WS_OP_TEXT && !r->msg_rsv1) {
    long bad = ref_utf8_feed(&r->ref, d, n);
    FUZZ_CHECK(bad < 0, "text data is not a valid UTF-8 prefix (byte %ld of this call)", bad);
  }
  fuzz_buf_put(&r->msg, d, n);
  /* A frame's data follows its EV_FRAME with nothing in between. */
  FUZZ_CHECK(r->nev > 0, "data before any event");
  e = &r->ev[r->nev - 1];
  FUZZ_CHECK(e->type == EV_FRAME, "data not right after its frame");
  FUZZ_CHECK(e->off + e->n == r->bytes.len, "frame data not contiguous");
  fuzz_buf_put(&r->bytes, d, n);
  e->n += n;
  free(plain);
  return leave(r, 1);
}

static int on_message_end(nx_ws_parser_t *p) {
  run_t *r = enter(p);
  FUZZ_CHECK(r->in_msg && !r->want_frame_begin && r->have_frame, "message end outside a message");
  FUZZ_CHECK(r->frame_got == r->frame_len, "message end after %llu of %llu frame bytes",
             (unsigned long long)r->frame_got, (unsigned long long)r->frame_len);
  FUZZ_CHECK(r->msg.len == r->msg_total, "message bookkeeping");
  if (r->msg_op == NX_WS_OP_TEXT && !r->msg_rsv1) {
    static const uint8_t none[1];
    FUZZ_CHECK(nx_utf8_valid(r->msg.p ? r->msg.p : none, r->msg.len),
               "text message of %zu bytes is not UTF-8", r->msg.len);
    FUZZ_CHECK(ref_utf8_complete(&r->ref), "text message ends inside a code point (reference)");
  }
  r->in_msg = 0;
  r->have_frame = 0;
  log_add(r, EV_END);
  return leave(r, 0);
}

static int on_control(nx_ws_parser_t *p, int opcode, const uint8_t *payload, size_t len) {
  run_t *r = enter(p);
  ev_t *e;
  FUZZ_CHECK(opcode == NX_WS_OP_CLOSE || opcode == NX_WS_OP_PING || opcode == NX_WS_OP_PONG,
             "control opcode %d", opcode);
  FUZZ_CHECK(len <= 125, "control payload of %zu bytes", len);
  FUZZ_CHECK(!r->want_frame_begin && !frame_incomplete(r), "control frame inside a data frame");
  if (opcode == NX_WS_OP_CLOSE) {
    FUZZ_CHECK(len != 1, "close payload of one byte");
    if (len >= 2) {
      unsigned code = ((unsigned)payload[0] << 8) | payload[1];
      FUZZ_CHECK(nx_ws_close_code_valid(code), "close code %u", code);
      FUZZ_CHECK((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                     (code >= 3000 && code <= 4999),
                 "close code %u is not valid on the wire (RFC 6455 7.4)", code);
      FUZZ_CHECK(ref_utf8_valid(payload + 2, len - 2), "close reason is not UTF-8");
    }
    FUZZ_CHECK(nx_ws_parser_closed(p), "not closed in the close frame's callback");
    r->closed = 1;
  } else {
    FUZZ_CHECK(!nx_ws_parser_closed(p), "closed in a ping/pong callback");
  }
  e = log_add(r, EV_CTRL);
  e->op = (uint8_t)opcode;
  fuzz_buf_put(&r->bytes, payload, len);
  e->n = len;
  return leave(r, 0);
}

/* The fast path: one call for a whole message, checked as the four calls
 * of the general path would be (its parts never stop: the call does). */
static int on_message(nx_ws_parser_t *p, int opcode, int rsv1, const uint8_t *d, size_t n) {
  run_t *r = (run_t *)p->data;
  unsigned mode = r->stop_mode;
  r->stop_mode = STOP_NEVER;
  on_message_begin(p, opcode, rsv1);
  on_frame_begin(p, n);
  if (n)
    on_data(p, d, n);
  r->stop_mode = mode;
  return on_message_end(p);
}

static const nx_ws_callbacks_t callbacks = {on_message_begin, on_frame_begin, on_data,
                                            on_message_end,   on_control,     NULL};
static const nx_ws_callbacks_t fast_callbacks = {on_message_begin, on_frame_begin, on_data,
                                                 on_message_end,   on_control,     on_message};

typedef struct {
  uint64_t max_size;
  int allow_rsv1, role, defer, fast;
} settings_t;

static void run_init(run_t *r, nx_ws_parser_t *p, const settings_t *s, unsigned stop_mode) {
  memset(r, 0, sizeof(*r));
  memset(p, 0, sizeof(*p));
  p->max_message_size = s->max_size;
  p->allow_rsv1 = (uint8_t)s->allow_rsv1;
  p->defer_unmask = (uint8_t)s->defer;
  nx_ws_parser_init(p, s->fast ? &fast_callbacks : &callbacks, r, s->role);
  FUZZ_CHECK(p->max_message_size == s->max_size && p->allow_rsv1 == s->allow_rsv1 &&
                 p->defer_unmask == s->defer && p->role == s->role &&
                 p->cb == (s->fast ? &fast_callbacks : &callbacks) && p->data == r,
             "nx_ws_parser_init lost a setting");
  r->p = p;
  r->stop_mode = stop_mode;
}

static void run_free(run_t *r) {
  nx_ws_parser_free(r->p);
  free(r->ev);
  fuzz_buf_free(&r->bytes);
  fuzz_buf_free(&r->msg);
}

static size_t parse(run_t *r, uint8_t *buf, size_t n) {
  /* Never NULL, even for no bytes: the header does not promise NULL works. */
  static uint8_t none[1];
  size_t got;
  if (!buf)
    buf = none;
  r->buf = buf;
  r->buf_len = n;
  r->stopped = 0;
  got = nx_ws_parse(r->p, buf, n);
  r->buf = NULL;
  FUZZ_CHECK(got <= n, "consumed %zu of %zu", got, n);
  return got;
}

/* After an error: nothing more is consumed or called, whatever is fed. */
static void check_dead(run_t *r, uint8_t *rest, size_t n) {
  nx_ws_parser_t *p = r->p;
  uint8_t junk[4] = {0x81, 0x80, 0, 0};
  uint16_t code = p->error_code;
  FUZZ_CHECK(code == 1002 || code == 1007 || code == 1009, "error code %u", code);
  FUZZ_CHECK(code != 1009 || p->max_message_size != 0, "1009 with no size limit");
  FUZZ_CHECK(p->error_reason != NULL && p->error_reason[0] != '\0', "error without a reason");
  FUZZ_CHECK(strlen(p->error_reason) <= 123, "error reason too long for a close frame");
  FUZZ_CHECK(nx_utf8_valid((const uint8_t *)p->error_reason, strlen(p->error_reason)),
             "error reason is not UTF-8");
  FUZZ_CHECK(!nx_ws_parser_closed(p), "closed and in error");
  r->dead = 1;
  FUZZ_CHECK(parse(r, rest, n) == 0, "consumed input after an error");
  FUZZ_CHECK(parse(r, junk, sizeof(junk)) == 0, "consumed input after an error");
  FUZZ_CHECK(parse(r, NULL, 0) == 0, "consumed input after an error");
  FUZZ_CHECK(p->error_code == code, "error code changed from %u to %u", code, p->error_code);
}

/* Feeds buf[0..len) in calls of at most chunk bytes, re-calling after stops
 * (with no byte when the input is used up: a stop may leave an event owed). */
static void feed_all(run_t *r, uint8_t *buf, size_t len, size_t chunk) {
  size_t off = 0;
  r->total_len += len;
  for (;;) {
    size_t n = len - off < chunk ? len - off : chunk, got;
    int stopped;
    if (n == 0 && !r->stopped)
      break;
    got = parse(r, buf + off, n);
    stopped = r->stopped;
    if (r->p->error_code) {
      check_dead(r, buf + off + got, len - off - got);
      return;
    }
    if (r->closed) {
      FUZZ_CHECK(got == n, "close frame seen but %zu of %zu consumed", got, n);
      FUZZ_CHECK(nx_ws_parser_closed(r->p), "closed callback but parser not closed");
    } else if (!stopped) {
      FUZZ_CHECK(got == n, "consumed %zu of %zu with no stop, error or close", got, n);
    }
    off += got;
    r->stopped = stopped;
    if (r->closed && !stopped)
      break;
  }
  if (r->closed) {
    /* Later input is consumed and ignored. */
    uint8_t more[3] = {0x89, 0x80, 0x00};
    size_t calls = r->calls;
    FUZZ_CHECK(parse(r, buf + off, len - off) == len - off, "input after close not consumed");
    FUZZ_CHECK(parse(r, more, sizeof(more)) == sizeof(more), "input after close not consumed");
    FUZZ_CHECK(r->calls == calls && nx_ws_parser_closed(r->p), "parser woke up after close");
  } else {
    FUZZ_CHECK(off == len, "only %zu of %zu bytes consumed", off, len);
  }
}

static int ev_same(const run_t *a, const ev_t *x, const run_t *b, const ev_t *y, int data_prefix) {
  if (x->type != y->type || x->op != y->op || x->rsv1 != y->rsv1 || x->len != y->len)
    return 0;
  if (data_prefix) {
    size_t n = x->n < y->n ? x->n : y->n;
    return n == 0 || memcmp(a->bytes.p + x->off, b->bytes.p + y->off, n) == 0;
  }
  return x->n == y->n && (x->n == 0 || memcmp(a->bytes.p + x->off, b->bytes.p + y->off, x->n) == 0);
}

static void compare_runs(const run_t *a, const run_t *b, const char *what) {
  size_t i;
  int err = a->p->error_code != 0;
  FUZZ_CHECK(a->p->error_code == b->p->error_code, "%s: error %u vs %u", what, a->p->error_code,
             b->p->error_code);
  FUZZ_CHECK(!err || strcmp(a->p->error_reason, b->p->error_reason) == 0, "%s: reason '%s' vs '%s'",
             what, a->p->error_reason, b->p->error_reason);
  FUZZ_CHECK(a->closed == b->closed, "%s: closed %d vs %d", what, a->closed, b->closed);
  FUZZ_CHECK(a->nev == b->nev, "%s: %zu events vs %zu", what, a->nev, b->nev);
  for (i = 0; i < a->nev; i++) {
    /* Only the payload of the frame an error cut short may differ. */
    int prefix = err && i == a->nev - 1 && a->ev[i].type == EV_FRAME;
    FUZZ_CHECK(ev_same(a, &a->ev[i], b, &b->ev[i], prefix), "%s: event %zu ('%c' vs '%c') differs",
               what, i, a->ev[i].type, b->ev[i].type);
  }
}

/* Writes the events of a clean run back as frames, as the peer would have. */
static void encode(const run_t *a, int role, fuzz_buf_t *wire) {
  uint8_t hdr[14], key[4], tmp[125];
  uint8_t *payload;
  size_t i, n;
  int op = 0, rsv1 = 0;
  for (i = 0; i < a->nev; i++) {
    const ev_t *e = &a->ev[i];
    const uint8_t *keyp = NULL;
    int fin, fop, frsv1;
    uint64_t len;
    if (e->type == EV_BEGIN) {
      op = e->op;
      rsv1 = e->rsv1;
      continue;
    }
    if (e->type == EV_END)
      continue;
    if (role == NX_WS_ROLE_SERVER) {
      /* The peer is a client: mask, with a key that changes per frame. */
      key[0] = (uint8_t)(0x5a + i), key[1] = (uint8_t)(i * 7), key[2] = 0xc3,
      key[3] = (uint8_t)(i >> 3);
      keyp = key;
    }
    if (e->type == EV_FRAME) {
      fin = i + 1 < a->nev && a->ev[i + 1].type == EV_END;
      fop = op;
      frsv1 = rsv1;
      op = NX_WS_OP_CONT;
      rsv1 = 0;
      len = e->len;
    } else {
      fin = 1;
      fop = e->op;
      frsv1 = 0;
      len = e->n;
    }
    n = nx_ws_frame_header(hdr, fin, frsv1, fop, len, keyp);
    FUZZ_CHECK(n == (len < 126       ? 2u
                     : len <= 0xffff ? 4u
                                     : 10u) +
                        (keyp ? 4u : 0u),
               "header of %zu bytes for length %llu", n, (unsigned long long)len);
    fuzz_buf_put(wire, hdr, n);
    payload = e->n <= sizeof(tmp) ? tmp : (uint8_t *)malloc(e->n);
    if (!payload)
      abort();
    if (e->n)
      memcpy(payload, a->bytes.p + e->off, e->n);
    if (keyp)
      nx_ws_mask(payload, e->n, keyp, 0);
    fuzz_buf_put(wire, payload, e->n);
    if (payload != tmp)
      free(payload);
  }
}

/* NX_FUZZ_TRACE=1 prints the one-shot run's events, for triage of a
 * reproducer (./fuzz_ws_frame FILE). */
static void trace(const run_t *a) {
  size_t i;
  for (i = 0; i < a->nev; i++) {
    const ev_t *e = &a->ev[i];
    switch (e->type) {
    case EV_BEGIN:
      fprintf(stderr, "  message begin op=%u rsv1=%u\n", e->op, e->rsv1);
      break;
    case EV_FRAME:
      fprintf(stderr, "  frame len=%llu, %zu bytes delivered\n", (unsigned long long)e->len, e->n);
      break;
    case EV_END:
      fprintf(stderr, "  message end\n");
      break;
    default:
      fprintf(stderr, "  control op=%u, %zu bytes\n", e->op, e->n);
      break;
    }
  }
  fprintf(stderr, "  => error %u (%s), closed %d\n", a->p->error_code,
          a->p->error_reason ? a->p->error_reason : "-", a->closed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int tracing = -1;
  settings_t s, sb;
  nx_ws_parser_t pa, pb, pc;
  run_t a, b, c;
  uint8_t *copy;
  size_t len, chunk;
  unsigned flags, stop_mode;

  if (size < 3)
    return 0;
  s.max_size = max_size_of(data[1]);
  flags = data[2];
  s.allow_rsv1 = flags & 1;
  s.role = (flags & 2) ? NX_WS_ROLE_CLIENT : NX_WS_ROLE_SERVER;
  s.defer = 0;
  s.fast = 1; /* the one-shot run takes the fast path where it can */
  stop_mode = (flags >> 2) & 3;
  len = size - 3;
  chunk = fuzz_chunk_size(data[0], len);

  /* Each run unmasks in place, so each gets its own exact-size copy (ASan
   * then catches a read past the end). */
  copy = (uint8_t *)malloc(len ? len : 1);
  if (!copy)
    abort();

  memcpy(copy, data + 3, len);
  run_init(&a, &pa, &s, STOP_NEVER);
  feed_all(&a, copy, len, len ? len : 1);

  memcpy(copy, data + 3, len);
  sb = s;
  sb.defer = (flags >> 4) & 1;
  sb.fast = (flags >> 5) & 1;
  run_init(&b, &pb, &sb, stop_mode);
  feed_all(&b, copy, len, chunk);
  free(copy);

  if (tracing < 0)
    tracing = getenv("NX_FUZZ_TRACE") != NULL;
  if (tracing)
    trace(&a);
  compare_runs(&a, &b, "one-shot vs chunked");

  if (!pa.error_code && a.nev > 0) {
    fuzz_buf_t wire = {0};
    encode(&a, s.role, &wire);
    run_init(&c, &pc, &s, STOP_NEVER);
    feed_all(&c, wire.p, wire.len, chunk);
    compare_runs(&a, &c, "input vs re-encoded");
    run_free(&c);
    fuzz_buf_free(&wire);
  }

  run_free(&a);
  run_free(&b);
  return 0;
}
