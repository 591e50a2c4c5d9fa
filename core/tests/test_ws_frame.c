/* Tests of the RFC 6455 frame parser and encoder (core/ws_frame.c).
 *
 * Most tests build a byte stream (a "script": frames with the events they
 * must produce), then replay it through nx_ws_parse() in chunks of every
 * size k from 1 up to the whole input (a representative set of sizes for
 * big inputs), comparing each run's callback log with the one-shot run and
 * with the expected log. The log records message begin (opcode, rsv1),
 * frame begin (length), data (consecutive calls concatenated), message end,
 * control frames (opcode, payload), the error code, and whether the parser
 * is closed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "utf8.h"
#include "ws_frame.h"

/* ---- growable byte buffer ---------------------------------------------- */

typedef struct {
  uint8_t *p;
  size_t len, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t n) {
  if (b->len + n <= b->cap)
    return;
  while (b->len + n > b->cap)
    b->cap = b->cap ? b->cap * 2 : 256;
  b->p = realloc(b->p, b->cap);
  if (!b->p)
    abort();
}

static void buf_put(buf_t *b, const void *p, size_t n) {
  buf_reserve(b, n);
  if (n)
    memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void buf_free(buf_t *b) {
  free(b->p);
  memset(b, 0, sizeof(*b));
}

/* ---- event log ------------------------------------------------------------ */

enum { EV_BEGIN = 'B', EV_FRAME = 'F', EV_DATA = 'D', EV_END = 'E', EV_CTRL = 'C' };

typedef struct {
  char type;
  int op, rsv1;
  uint64_t len;  /* EV_FRAME */
  size_t off, n; /* EV_DATA, EV_CTRL: bytes in the log's byte pool */
} ev_t;

/* Callbacks that return non-zero (to stop nx_ws_parse), by event type. */
enum { STOP_BEGIN = 1, STOP_FRAME = 2, STOP_DATA = 4, STOP_END = 8, STOP_CTRL = 16, STOP_ALL = 31 };

typedef struct {
  ev_t *ev;
  size_t nev, cap;
  buf_t bytes;
  int error;           /* close code of the protocol error, 0 if none */
  int closed;          /* nx_ws_parser_closed() at the end */
  long err_lo, err_hi; /* expected logs: the error is detected while parsing a
                        * byte in [err_lo, err_hi] (-1: not checked) */
  /* Set while parsing: */
  unsigned stop_mask;
  const uint8_t *chunk_lo, *chunk_hi; /* on_data must point in here */
  int bad_pointer;
  size_t masked_bytes; /* delivered still masked (defer_unmask) */
  int stops;
  int stopped;       /* a callback asked to stop during this nx_ws_parse() */
  int cb_after_stop; /* ... and another callback came anyway */
  size_t max_events; /* a parser stuck calling back aborts the run */
} evlog_t;

static void log_init(evlog_t *l) {
  memset(l, 0, sizeof(*l));
  l->err_lo = l->err_hi = -1;
}

static void log_free(evlog_t *l) {
  free(l->ev);
  buf_free(&l->bytes);
  log_init(l);
}

static ev_t *log_add(evlog_t *l, char type) {
  ev_t *e;
  if (l->max_events && l->nev >= l->max_events) {
    printf("# runaway parser: over %zu callbacks for the input; aborting\n", l->max_events);
    fflush(stdout);
    abort();
  }
  if (l->nev == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 32;
    l->ev = realloc(l->ev, l->cap * sizeof(ev_t));
    if (!l->ev)
      abort();
  }
  e = &l->ev[l->nev++];
  memset(e, 0, sizeof(*e));
  e->type = type;
  e->off = l->bytes.len;
  return e;
}

static void ex_begin(evlog_t *l, int op, int rsv1) {
  ev_t *e = log_add(l, EV_BEGIN);
  e->op = op;
  e->rsv1 = rsv1;
}

static void ex_frame(evlog_t *l, uint64_t len) { log_add(l, EV_FRAME)->len = len; }

static void ex_data(evlog_t *l, const void *p, size_t n) {
  ev_t *e;
  if (n == 0)
    return;
  e = (l->nev && l->ev[l->nev - 1].type == EV_DATA) ? &l->ev[l->nev - 1] : log_add(l, EV_DATA);
  buf_put(&l->bytes, p, n);
  e->n += n;
}

static void ex_end(evlog_t *l) { log_add(l, EV_END); }

static void ex_ctrl(evlog_t *l, int op, const void *p, size_t n) {
  ev_t *e = log_add(l, EV_CTRL);
  e->op = op;
  buf_put(&l->bytes, p, n);
  e->n = n;
}

/* ---- parser callbacks logging into an evlog_t ---------------------------- */

/* Every callback goes through here: it notes a callback made after another
 * one asked nx_ws_parse() to return at once, and answers whether to stop. */
static int stop(evlog_t *l, unsigned what) {
  if (l->stopped)
    l->cb_after_stop = 1;
  if (!(l->stop_mask & what))
    return 0;
  l->stops++;
  l->stopped = 1;
  return 1;
}

static int cb_begin(nx_ws_parser_t *p, int opcode, int rsv1) {
  evlog_t *l = p->data;
  ex_begin(l, opcode, rsv1);
  return stop(l, STOP_BEGIN);
}

static int cb_frame(nx_ws_parser_t *p, uint64_t len) {
  evlog_t *l = p->data;
  ex_frame(l, len);
  return stop(l, STOP_FRAME);
}

static int cb_data(nx_ws_parser_t *p, const uint8_t *d, size_t n) {
  evlog_t *l = p->data;
  if (n == 0 || d < l->chunk_lo || d + n > l->chunk_hi)
    l->bad_pointer = 1;
  if (p->data_masked) {
    /* defer_unmask: the owner unmasks while it copies, in pieces here to
     * check that the phase carries from one piece to the next. */
    uint8_t tmp[7];
    size_t done = 0;
    if (!p->defer_unmask)
      l->bad_pointer = 1; /* (masked data was not asked for) */
    l->masked_bytes += n;
    while (done < n) {
      size_t k = n - done < sizeof(tmp) ? n - done : sizeof(tmp);
      nx_ws_unmask_copy(tmp, d + done, k, p->mask, p->data_phase + done);
      ex_data(l, tmp, k);
      done += k;
    }
  } else {
    ex_data(l, d, n);
  }
  return stop(l, STOP_DATA);
}

static int cb_end(nx_ws_parser_t *p) {
  evlog_t *l = p->data;
  ex_end(l);
  return stop(l, STOP_END);
}

static int cb_ctrl(nx_ws_parser_t *p, int opcode, const uint8_t *d, size_t n) {
  evlog_t *l = p->data;
  ex_ctrl(l, opcode, d, n);
  return stop(l, STOP_CTRL);
}

static const nx_ws_callbacks_t log_callbacks = {cb_begin, cb_frame, cb_data, cb_end, cb_ctrl, NULL};

/* ---- rendering and comparing logs ---------------------------------------- */

static void render(const evlog_t *l, char *out, size_t cap) {
  size_t i, o = 0, j;
#define PUT(...) (o += (o < cap ? (size_t)snprintf(out + o, cap - o, __VA_ARGS__) : 0))
  out[0] = '\0';
  for (i = 0; i < l->nev && o < cap; i++) {
    const ev_t *e = &l->ev[i];
    switch (e->type) {
    case EV_BEGIN:
      PUT("B%d%s ", e->op, e->rsv1 ? "z" : "");
      break;
    case EV_FRAME:
      PUT("F%llu ", (unsigned long long)e->len);
      break;
    case EV_END:
      PUT("E ");
      break;
    default:
      PUT("%c%d[%zu]", e->type, e->type == EV_CTRL ? e->op : 0, e->n);
      for (j = 0; j < e->n && j < 12; j++)
        PUT("%02x", l->bytes.p[e->off + j]);
      PUT("%s ", e->n > 12 ? ".." : "");
    }
  }
  PUT("!%d%s", l->error, l->closed ? " closed" : "");
#undef PUT
  if (o >= cap && cap > 4)
    memcpy(out + cap - 4, "...", 4);
}

static int ev_equal(const evlog_t *a, const ev_t *x, const evlog_t *b, const ev_t *y) {
  if (x->type != y->type || x->op != y->op || x->rsv1 != y->rsv1 || x->len != y->len ||
      x->n != y->n)
    return 0;
  return x->n == 0 || memcmp(a->bytes.p + x->off, b->bytes.p + y->off, x->n) == 0;
}

/* Whether got matches want. When want ends in a protocol error, the data of
 * the frame being parsed when it happened may be cut short (a parser may
 * deliver any valid prefix of it, or nothing) and its last data event may
 * be missing. */
static int log_match(const evlog_t *got, const evlog_t *want) {
  size_t n = want->nev, i;
  int trunc = want->error && n && want->ev[n - 1].type == EV_DATA;
  if (got->error != want->error || got->closed != want->closed)
    return 0;
  if (trunc && got->nev == n - 1)
    n--;
  else if (got->nev != n)
    return 0;
  for (i = 0; i < n; i++) {
    const ev_t *x = &got->ev[i], *y = &want->ev[i];
    if (trunc && i == want->nev - 1) {
      if (x->type != EV_DATA || x->n > y->n ||
          memcmp(got->bytes.p + x->off, want->bytes.p + y->off, x->n) != 0)
        return 0;
    } else if (!ev_equal(got, x, want, y)) {
      return 0;
    }
  }
  return 1;
}

/* ---- scripts: a byte stream with the log it must produce ------------------ */

typedef struct {
  buf_t wire;
  evlog_t want;
  int role;     /* NX_WS_ROLE_SERVER: the stream is masked client frames */
  uint64_t max; /* max_message_size */
  int allow_rsv1;
  int defer;     /* defer_unmask: binary data reaches on_data masked */
  uint32_t seed; /* mask key generator */
} script_t;

static void script_init(script_t *s, int role) {
  memset(s, 0, sizeof(*s));
  log_init(&s->want);
  s->role = role;
  s->seed = 0x9e3779b9u;
}

static void script_free(script_t *s) {
  buf_free(&s->wire);
  log_free(&s->want);
}

static void next_key(script_t *s, uint8_t key[4]) {
  uint32_t x = s->seed;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  s->seed = x;
  /* Now and then an all-zero or all-ones key. */
  if ((x & 0xf) == 3)
    x = 0;
  if ((x & 0xf) == 5)
    x = 0xffffffffu;
  key[0] = (uint8_t)(x >> 24), key[1] = (uint8_t)(x >> 16), key[2] = (uint8_t)(x >> 8),
  key[3] = (uint8_t)x;
}

/* Length encodings: minimal (what nx_ws_frame_header writes), or forced. */
enum { ENC_MIN = 0, ENC_7 = 7, ENC_16 = 16, ENC_64 = 64 };

/* Appends a frame with first byte b0 (FIN, RSV and opcode bits as given)
 * and the payload, masked in server role with a fresh key. Returns the
 * offset of the payload in the wire. */
static size_t put_frame_enc(script_t *s, uint8_t b0, int enc, const void *payload, uint64_t len,
                            size_t payload_have) {
  uint8_t hdr[14], key[4];
  size_t hl, at;
  int masked = s->role == NX_WS_ROLE_SERVER;
  if (masked)
    next_key(s, key);
  if (enc == ENC_MIN) {
    hl = nx_ws_frame_header(hdr, 0, 0, 0, len, masked ? key : NULL);
    hdr[0] = b0;
  } else {
    int i;
    hdr[0] = b0;
    hl = 2;
    if (enc == ENC_7) {
      hdr[1] = (uint8_t)len;
    } else if (enc == ENC_16) {
      hdr[1] = 126, hdr[2] = (uint8_t)(len >> 8), hdr[3] = (uint8_t)len, hl = 4;
    } else {
      hdr[1] = 127;
      for (i = 0; i < 8; i++)
        hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
      hl = 10;
    }
    if (masked) {
      hdr[1] |= 0x80;
      memcpy(hdr + hl, key, 4);
      hl += 4;
    }
  }
  buf_put(&s->wire, hdr, hl);
  at = s->wire.len;
  buf_put(&s->wire, payload, payload_have);
  if (masked)
    nx_ws_mask(s->wire.p + at, payload_have, key, 0);
  return at;
}

static size_t put_frame(script_t *s, uint8_t b0, const void *payload, size_t len) {
  return put_frame_enc(s, b0, ENC_MIN, payload, len, len);
}

static uint8_t b0_of(int fin, int op) { return (uint8_t)((fin ? 0x80 : 0) | op); }

/* A data frame and the events it must produce. */
static void data_frame(script_t *s, int fin, int op, const void *payload, size_t len) {
  put_frame(s, b0_of(fin, op), payload, len);
  if (op != NX_WS_OP_CONT)
    ex_begin(&s->want, op, 0);
  ex_frame(&s->want, len);
  ex_data(&s->want, payload, len);
  if (fin)
    ex_end(&s->want);
}

static void whole_message(script_t *s, int op, const void *payload, size_t len) {
  data_frame(s, 1, op, payload, len);
}

static void ctrl_frame(script_t *s, int op, const void *payload, size_t len) {
  put_frame(s, b0_of(1, op), payload, len);
  ex_ctrl(&s->want, op, payload, len);
  if (op == NX_WS_OP_CLOSE)
    s->want.closed = 1;
}

static void close_frame(script_t *s, unsigned code, const char *reason) {
  uint8_t pl[125];
  size_t n = nx_ws_close_payload(pl, code, reason, reason ? strlen(reason) : 0);
  ctrl_frame(s, NX_WS_OP_CLOSE, pl, n);
}

/* The stream must fail with code while the parser is at a byte in
 * [lo, hi] of the wire (absolute offsets). */
static void expect_error_in(script_t *s, int code, size_t lo, size_t hi) {
  s->want.error = code;
  s->want.err_lo = (long)lo;
  s->want.err_hi = (long)hi;
}

/* ... at the last byte of the wire so far. */
static void expect_error(script_t *s, int code) {
  expect_error_in(s, code, s->wire.len - 1, s->wire.len - 1);
}

static void put_raw(script_t *s, const void *p, size_t n) { buf_put(&s->wire, p, n); }

/* ---- replay --------------------------------------------------------------- */

typedef struct {
  long err_chunk;   /* index of the chunk during which the error appeared, -1 */
  int short_return; /* nx_ws_parse returned less than given without a reason */
  int sticky_fail;  /* after an error, nx_ws_parse consumed more */
} run_info_t;

static void parser_setup(nx_ws_parser_t *p, const script_t *s, evlog_t *log) {
  memset(p, 0, sizeof(*p));
  p->max_message_size = s->max;
  p->allow_rsv1 = (uint8_t)s->allow_rsv1;
  p->defer_unmask = (uint8_t)s->defer;
  nx_ws_parser_init(p, &log_callbacks, log, s->role);
}

/* Feeds n bytes at buf, calling again after every stop a callback asked
 * for until all are consumed. Returns -1 on a protocol error, else 0. */
static int feed(nx_ws_parser_t *p, evlog_t *log, run_info_t *info, uint8_t *buf, size_t n,
                const uint8_t *all, size_t all_len) {
  size_t done = 0;
  unsigned guard = 0;
  for (;;) {
    size_t c;
    log->chunk_lo = buf + done;
    log->chunk_hi = buf + n;
    log->stopped = 0;
    c = nx_ws_parse(p, buf + done, n - done);
    if (c > n - done) {
      info->short_return = 1;
      return -1;
    }
    done += c;
    if (p->error_code) {
      log->error = p->error_code;
      if (p->error_reason == NULL)
        info->short_return = 1;
      /* The error sticks: nothing more is consumed. */
      if (nx_ws_parse(p, buf + done, n - done) != 0 ||
          nx_ws_parse(p, (uint8_t *)all, all_len) != 0 || p->error_code != log->error)
        info->sticky_fail = 1;
      return -1;
    }
    if (done == n)
      return 0;
    /* Without stops, a short count needs an error or a close (which
     * consumes everything). */
    if (!log->stop_mask || ++guard > 4 * n + 16) {
      info->short_return = 1;
      return -1;
    }
  }
}

/* Parses the script's wire in chunks of k bytes (a copy: the parser unmasks
 * in place), resuming after every stop a callback asked for. With stops, a
 * last zero-length call resumes "with the rest", which is empty. */
static void run(const script_t *s, size_t k, unsigned stop_mask, evlog_t *log, run_info_t *info) {
  nx_ws_parser_t p;
  size_t len = s->wire.len, off;
  uint8_t *work = malloc(len ? len : 1);
  if (!work)
    abort();
  memcpy(work, s->wire.p, len);
  log_init(log);
  log->stop_mask = stop_mask;
  log->max_events = 4 * len + 64;
  memset(info, 0, sizeof(*info));
  info->err_chunk = -1;
  parser_setup(&p, s, log);

  for (off = 0; off < len; off += k) {
    size_t n = len - off < k ? len - off : k;
    if (feed(&p, log, info, work + off, n, work, len)) {
      info->err_chunk = (long)(off / k);
      break;
    }
  }
  if (off >= len && stop_mask && feed(&p, log, info, work + len, 0, work, len))
    info->err_chunk = (long)(len / k);
  log->closed = nx_ws_parser_closed(&p);
  log->stop_mask = 0;
  log->max_events = 0;
  nx_ws_parser_free(&p);
  free(work);
}

static const size_t big_chunks[] = {1, 2, 3, 7, 13, 64, 1000, 4096};

static int replay_one(const char *file, int line, const char *what, const script_t *s, size_t k,
                      unsigned stop_mask, const evlog_t *ref) {
  evlog_t got;
  run_info_t info;
  int ok = 1;
  char g[600], w[600];
  const evlog_t *want = &s->want;

  run(s, k, stop_mask, &got, &info);
  if (!log_match(&got, want) || (ref && !log_match(&got, ref) && !log_match(ref, &got)) ||
      info.short_return || info.sticky_fail || got.bad_pointer || got.cb_after_stop) {
    render(&got, g, sizeof(g));
    render(!log_match(&got, want) || !ref ? want : ref, w, sizeof(w));
    nx_test_fail_at(
        file, line, "%s: chunk size %zu, stops 0x%x: %s%s%s%s%s", what, k, stop_mask,
        !log_match(&got, want) || (ref && !log_match(&got, ref) && !log_match(ref, &got))
            ? "log mismatch"
            : "log ok",
        info.short_return ? ", short return" : "", info.sticky_fail ? ", error not sticky" : "",
        got.bad_pointer ? ", on_data pointer outside the input" : "",
        got.cb_after_stop ? ", a callback came after another asked to stop" : "");
    nx_test_diag("   got: %s", g);
    nx_test_diag("  want: %s%s", w, !log_match(&got, want) || !ref ? "" : " (the one-shot run)");
    ok = 0;
  } else if (want->err_lo >= 0 &&
             (info.err_chunk < want->err_lo / (long)k || info.err_chunk > want->err_hi / (long)k)) {
    nx_test_fail_at(file, line,
                    "%s: chunk size %zu: error %d in chunk %ld, expected in chunk %ld..%ld", what,
                    k, got.error, info.err_chunk, want->err_lo / (long)k, want->err_hi / (long)k);
    ok = 0;
  }
  log_free(&got);
  return ok;
}

/* Replays in every chunk size (a representative set for inputs over 300
 * bytes), comparing with the one-shot log and the expected one. Stops at the
 * first failing chunk size. */
static void replay_stops(const char *file, int line, const char *what, const script_t *s,
                         unsigned stop_mask) {
  size_t len = s->wire.len, ci;
  evlog_t one;
  run_info_t info;

  if (!replay_one(file, line, what, s, len ? len : 1, stop_mask, NULL))
    return;
  run(s, len ? len : 1, stop_mask, &one, &info);
  for (ci = 0;; ci++) {
    size_t k;
    if (len <= 300) {
      k = ci + 1;
      if (k >= len)
        break;
    } else {
      if (ci >= NX_COUNTOF(big_chunks))
        break;
      k = big_chunks[ci];
    }
    if (!replay_one(file, line, what, s, k, stop_mask, &one))
      break;
  }
  log_free(&one);
}

#define REPLAY(what, s) replay_stops(__FILE__, __LINE__, what, s, 0)

/* ---- payload generators ---------------------------------------------------- */

static uint32_t rng_state = 12345;

static uint32_t rnd(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return rng_state >> 8;
}

/* Valid UTF-8 of exactly n bytes, mixing 1- to 4-byte characters. */
static void gen_text(uint8_t *out, size_t n) {
  static const char *const pieces[] = {
      "a",        "\xc3\xa9",     "\xe2\x82\xac",     "\xf0\x9f\x98\x80",
      "xyz01234", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", " "};
  size_t i = 0;
  while (i < n) {
    const char *pc = pieces[rnd() % NX_COUNTOF(pieces)];
    size_t pl = strlen(pc);
    if (pl > n - i)
      pc = "a", pl = 1;
    memcpy(out + i, pc, pl);
    i += pl;
  }
}

static void gen_binary(uint8_t *out, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    out[i] = (uint8_t)rnd();
}

static const char *const lorem =
    "Lorem ipsum dolor sit amet, \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 \xf0\x9f\x98\x80!";

/* ---- tests: data frames ------------------------------------------------------ */

TEST(frame_payload_lengths) {
  static const size_t lens[] = {0, 1, 125, 126, 127, 128, 65535, 65536, 100000};
  size_t i;
  int op;
  uint8_t *payload = malloc(100000);
  if (!payload)
    abort();
  for (op = NX_WS_OP_TEXT; op <= NX_WS_OP_BINARY; op++) {
    for (i = 0; i < NX_COUNTOF(lens); i++) {
      script_t s;
      char what[64];
      size_t hl = lens[i] < 126 ? 2 : lens[i] < 65536 ? 4 : 10;
      script_init(&s, NX_WS_ROLE_SERVER);
      if (op == NX_WS_OP_TEXT)
        gen_text(payload, lens[i]);
      else
        gen_binary(payload, lens[i]);
      whole_message(&s, op, payload, lens[i]);
      CHECK_EQ(s.wire.len, hl + 4 + lens[i]);
      snprintf(what, sizeof(what), "%s of %zu bytes", op == NX_WS_OP_TEXT ? "text" : "binary",
               lens[i]);
      REPLAY(what, &s);
      script_free(&s);
    }
  }
  free(payload);
}

TEST(frame_all_lengths_in_one_stream) {
  static const size_t lens[] = {0, 1, 125, 126, 127, 128, 65535, 65536, 100000};
  size_t i;
  script_t s;
  uint8_t *payload = malloc(100000);
  if (!payload)
    abort();
  script_init(&s, NX_WS_ROLE_SERVER);
  for (i = 0; i < NX_COUNTOF(lens); i++) {
    gen_text(payload, lens[i]);
    whole_message(&s, NX_WS_OP_TEXT, payload, lens[i]);
    ctrl_frame(&s, NX_WS_OP_PING, payload, lens[i] < 125 ? lens[i] : 125);
    gen_binary(payload, lens[i]);
    whole_message(&s, NX_WS_OP_BINARY, payload, lens[i]);
  }
  close_frame(&s, 1000, "done");
  REPLAY("every length back to back", &s);
  script_free(&s);
  free(payload);
}

TEST(frame_small_lengths_every_chunk) {
  /* Lengths 0..140 for the 7-bit/16-bit boundary, every chunk size each. */
  uint8_t payload[140];
  size_t n;
  for (n = 0; n <= 140; n += (n < 120 ? 7 : 1)) {
    script_t s;
    script_init(&s, NX_WS_ROLE_SERVER);
    gen_text(payload, n);
    whole_message(&s, NX_WS_OP_TEXT, payload, n);
    REPLAY("small text", &s);
    script_free(&s);
  }
}

TEST(frame_nonminimal_lengths) {
  static const struct {
    size_t len;
    int enc;
  } cases[] = {{0, ENC_16}, {5, ENC_16},   {125, ENC_16}, {0, ENC_64},
               {5, ENC_64}, {126, ENC_64}, {300, ENC_64}, {65535, ENC_64}};
  uint8_t payload[65535];
  size_t i;
  for (i = 0; i < NX_COUNTOF(cases); i++) {
    int op;
    for (op = NX_WS_OP_TEXT; op <= NX_WS_OP_BINARY; op++) {
      script_t s;
      script_init(&s, NX_WS_ROLE_SERVER);
      gen_text(payload, cases[i].len);
      put_frame_enc(&s, b0_of(1, op), cases[i].enc, payload, cases[i].len, cases[i].len);
      ex_begin(&s.want, op, 0);
      ex_frame(&s.want, cases[i].len);
      ex_data(&s.want, payload, cases[i].len);
      ex_end(&s.want);
      /* A non-minimal continuation too. */
      put_frame_enc(&s, b0_of(0, op), ENC_64, "ab", 2, 2);
      put_frame_enc(&s, b0_of(1, NX_WS_OP_CONT), ENC_16, "cd", 2, 2);
      ex_begin(&s.want, op, 0);
      ex_frame(&s.want, 2);
      ex_data(&s.want, "ab", 2);
      ex_frame(&s.want, 2);
      ex_data(&s.want, "cd", 2);
      ex_end(&s.want);
      REPLAY("non-minimal length", &s);
      script_free(&s);
    }
  }
}

TEST(frame_sequence_of_messages) {
  script_t s;
  script_init(&s, NX_WS_ROLE_SERVER);
  whole_message(&s, NX_WS_OP_TEXT, "Hello", 5);
  whole_message(&s, NX_WS_OP_BINARY, "\x00\xff\x80", 3);
  ctrl_frame(&s, NX_WS_OP_PING, "", 0);
  whole_message(&s, NX_WS_OP_TEXT, "", 0);
  ctrl_frame(&s, NX_WS_OP_PONG, "pong!", 5);
  whole_message(&s, NX_WS_OP_TEXT, lorem, strlen(lorem));
  whole_message(&s, NX_WS_OP_BINARY, "", 0);
  close_frame(&s, 1001, "going");
  REPLAY("message sequence", &s);
  script_free(&s);
}

/* ---- tests: fragmentation ------------------------------------------------ */

TEST(frame_fragmented_messages) {
  int op;
  for (op = NX_WS_OP_TEXT; op <= NX_WS_OP_BINARY; op++) {
    script_t s;
    script_init(&s, NX_WS_ROLE_SERVER);
    /* Two fragments. */
    data_frame(&s, 0, op, "Hello, ", 7);
    data_frame(&s, 1, NX_WS_OP_CONT, "world!", 6);
    /* Three. */
    data_frame(&s, 0, op, "one ", 4);
    data_frame(&s, 0, NX_WS_OP_CONT, "two ", 4);
    data_frame(&s, 1, NX_WS_OP_CONT, "three", 5);
    /* Empty fragments: first, middle, last, all. */
    data_frame(&s, 0, op, "", 0);
    data_frame(&s, 0, NX_WS_OP_CONT, "x", 1);
    data_frame(&s, 0, NX_WS_OP_CONT, "", 0);
    data_frame(&s, 0, NX_WS_OP_CONT, "y", 1);
    data_frame(&s, 1, NX_WS_OP_CONT, "", 0);
    data_frame(&s, 0, op, "", 0);
    data_frame(&s, 0, NX_WS_OP_CONT, "", 0);
    data_frame(&s, 1, NX_WS_OP_CONT, "", 0);
    whole_message(&s, op, "after", 5);
    REPLAY(op == NX_WS_OP_TEXT ? "fragmented text" : "fragmented binary", &s);
    script_free(&s);
  }
}

TEST(frame_many_fragments) {
  /* A text split at arbitrary byte positions, code points cut anywhere,
   * fragment sizes 0..4, with a few control frames in between. */
  uint8_t text[600];
  size_t at = 0, i = 0;
  script_t s;
  script_init(&s, NX_WS_ROLE_SERVER);
  gen_text(text, sizeof(text));
  while (at < sizeof(text)) {
    size_t n = i % 5;
    if (n > sizeof(text) - at)
      n = sizeof(text) - at;
    data_frame(&s, at + n == sizeof(text), i == 0 ? NX_WS_OP_TEXT : NX_WS_OP_CONT, text + at, n);
    if (i % 17 == 5)
      ctrl_frame(&s, NX_WS_OP_PING, text, i % 126);
    if (i % 29 == 7)
      ctrl_frame(&s, NX_WS_OP_PONG, "", 0);
    at += n;
    i++;
  }
  CHECK(i > 200);
  REPLAY("many fragments", &s);
  script_free(&s);
}

TEST(frame_control_between_fragments) {
  script_t s;
  uint8_t big[125];
  script_init(&s, NX_WS_ROLE_SERVER);
  gen_binary(big, sizeof(big));
  data_frame(&s, 0, NX_WS_OP_TEXT, "abc", 3);
  ctrl_frame(&s, NX_WS_OP_PING, "p1", 2);
  data_frame(&s, 0, NX_WS_OP_CONT, "def", 3);
  ctrl_frame(&s, NX_WS_OP_PONG, "", 0);
  ctrl_frame(&s, NX_WS_OP_PING, big, sizeof(big));
  data_frame(&s, 1, NX_WS_OP_CONT, "ghi", 3);
  ctrl_frame(&s, NX_WS_OP_PING, "after", 5);
  /* A code point split around a ping. */
  data_frame(&s, 0, NX_WS_OP_TEXT, "\xf0\x9f", 2);
  ctrl_frame(&s, NX_WS_OP_PING, "", 0);
  data_frame(&s, 1, NX_WS_OP_CONT, "\x98\x80", 2);
  /* A close in the middle of a message: delivered, the rest ignored. */
  data_frame(&s, 0, NX_WS_OP_BINARY, "xyz", 3);
  ctrl_frame(&s, NX_WS_OP_PING, "ping", 4);
  close_frame(&s, 1000, NULL);
  put_frame(&s, b0_of(1, NX_WS_OP_CONT), "ignored", 7);
  REPLAY("control frames between fragments", &s);
  script_free(&s);
}

/* ---- tests: close frames --------------------------------------------------- */

TEST(frame_close_payloads) {
  static const char reason123[] =
      "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5 "
      "0123456789012345678901234567890123456789012345678901234567"
      "8901234567890123456789012345678901234567890123456\xf0\x9f\x98\x80";
  script_t s;
  CHECK_EQ(strlen(reason123), 123);
  CHECK(nx_utf8_valid((const uint8_t *)reason123, 123));

  script_init(&s, NX_WS_ROLE_SERVER);
  ctrl_frame(&s, NX_WS_OP_CLOSE, "", 0);
  REPLAY("empty close", &s);
  script_free(&s);

  script_init(&s, NX_WS_ROLE_SERVER);
  close_frame(&s, 1000, NULL);
  CHECK_EQ(s.want.ev[0].n, 2);
  REPLAY("close with a code", &s);
  script_free(&s);

  script_init(&s, NX_WS_ROLE_SERVER);
  close_frame(&s, 1001, "bye \xe2\x82\xac");
  REPLAY("close with code and reason", &s);
  script_free(&s);

  script_init(&s, NX_WS_ROLE_SERVER);
  close_frame(&s, 4000, reason123);
  CHECK_EQ(s.want.ev[0].n, 125);
  REPLAY("close with a 123-byte reason", &s);
  script_free(&s);

  /* 1-byte payload, alone and after a ping whose payload would make a
   * valid code if its bytes were reused. */
  script_init(&s, NX_WS_ROLE_SERVER);
  put_frame(&s, b0_of(1, NX_WS_OP_CLOSE), "\x03", 1);
  expect_error(&s, 1002);
  REPLAY("1-byte close", &s);
  script_free(&s);
  script_init(&s, NX_WS_ROLE_SERVER);
  ctrl_frame(&s, NX_WS_OP_PING, "\x03\xe8", 2);
  put_frame(&s, b0_of(1, NX_WS_OP_CLOSE), "\x03", 1);
  expect_error(&s, 1002);
  REPLAY("1-byte close after a ping", &s);
  script_free(&s);

  /* 126-byte payload. */
  {
    uint8_t pl[126];
    memset(pl, 'r', sizeof(pl));
    pl[0] = 0x03, pl[1] = 0xe8;
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame(&s, b0_of(1, NX_WS_OP_CLOSE), pl, sizeof(pl));
    expect_error_in(&s, 1002, 1, 7); /* once its 8-byte header is in */
    REPLAY("126-byte close", &s);
    script_free(&s);
  }
}

TEST(frame_close_codes) {
  static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010,
                                   1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999};
  static const unsigned invalid[] = {0,    1,    999,  1004, 1005, 1006, 1015,
                                     1016, 1100, 2000, 2999, 5000, 65535};
  size_t i;
  unsigned c;
  for (i = 0; i < NX_COUNTOF(valid); i++) {
    script_t s;
    script_init(&s, NX_WS_ROLE_SERVER);
    close_frame(&s, valid[i], i % 2 ? "reason" : NULL);
    REPLAY("valid close code", &s);
    CHECK(nx_ws_close_code_valid(valid[i]));
    script_free(&s);
  }
  for (i = 0; i < NX_COUNTOF(invalid); i++) {
    script_t s;
    uint8_t pl[2] = {(uint8_t)(invalid[i] >> 8), (uint8_t)invalid[i]};
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame(&s, b0_of(1, NX_WS_OP_CLOSE), pl, 2);
    expect_error(&s, 1002);
    REPLAY("invalid close code", &s);
    script_free(&s);
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame(&s, b0_of(1, NX_WS_OP_CLOSE), "\x03\xedreason", 8);
    s.wire.p[s.wire.len - 8] ^= (uint8_t)((invalid[i] >> 8) ^ 0x03);
    s.wire.p[s.wire.len - 7] ^= (uint8_t)((invalid[i] & 0xff) ^ 0xed);
    expect_error(&s, 1002);
    REPLAY("invalid close code with a reason", &s);
    script_free(&s);
    CHECK(!nx_ws_close_code_valid(invalid[i]));
  }
  /* The whole range against RFC 6455 §7.4 and the IANA registry. */
  for (c = 0; c <= 70000; c++) {
    int expect = (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
    if (nx_ws_close_code_valid(c) != expect) {
      nx_test_fail_at(__FILE__, __LINE__, "nx_ws_close_code_valid(%u) != %d", c, expect);
      break;
    }
  }
}

TEST(frame_close_reason_utf8) {
  static const char *const bad[] = {"\xff",         "ok\x80",           "\xc0\xaf",
                                    "\xed\xa0\x80", "\xf4\x90\x80\x80", "abc\xe2\x82",
                                    "\xf0\x9f\x98"};
  size_t i;
  for (i = 0; i < NX_COUNTOF(bad); i++) {
    script_t s;
    uint8_t pl[16] = {0x03, 0xe8};
    size_t n = strlen(bad[i]);
    memcpy(pl + 2, bad[i], n);
    script_init(&s, NX_WS_ROLE_SERVER);
    whole_message(&s, NX_WS_OP_TEXT, "before", 6);
    put_frame(&s, b0_of(1, NX_WS_OP_CLOSE), pl, 2 + n);
    expect_error(&s, 1007);
    REPLAY("close reason not UTF-8", &s);
    script_free(&s);
  }
}

TEST(frame_data_after_close_ignored) {
  script_t s;
  nx_ws_parser_t p;
  evlog_t log;
  uint8_t junk[64];
  size_t i;
  script_init(&s, NX_WS_ROLE_SERVER);
  whole_message(&s, NX_WS_OP_TEXT, "hi", 2);
  close_frame(&s, 1000, "bye");
  /* Valid frames, then things that would be errors: all ignored. */
  put_frame(&s, b0_of(1, NX_WS_OP_TEXT), "ignored", 7);
  put_frame(&s, b0_of(1, NX_WS_OP_PING), "ignored", 7);
  put_frame(&s, b0_of(1, NX_WS_OP_TEXT), "\xff\xfe", 2);
  put_raw(&s, "\x81\x05hello\xff\xff\xff\x00", 11);
  REPLAY("data after close", &s);

  /* And later calls consume everything, without events. */
  log_init(&log);
  parser_setup(&p, &s, &log);
  CHECK_EQ(nx_ws_parse(&p, s.wire.p, s.wire.len), s.wire.len);
  CHECK(nx_ws_parser_closed(&p));
  for (i = 0; i < sizeof(junk); i++)
    junk[i] = (uint8_t)(i * 37);
  i = log.nev;
  CHECK_EQ(nx_ws_parse(&p, junk, sizeof(junk)), sizeof(junk));
  CHECK_EQ(nx_ws_parse(&p, junk, 0), 0);
  CHECK_EQ(log.nev, i);
  CHECK_EQ(p.error_code, 0);
  log_free(&log);
  script_free(&s);
}

/* ---- tests: protocol errors (1002) ----------------------------------------- */

TEST(frame_masking_rules) {
  script_t s;
  /* Unmasked frame to a server. */
  script_init(&s, NX_WS_ROLE_SERVER);
  whole_message(&s, NX_WS_OP_TEXT, "ok", 2);
  put_raw(&s, "\x81\x02hi", 4);
  expect_error_in(&s, 1002, s.wire.len - 4, s.wire.len - 3);
  REPLAY("unmasked text to a server", &s);
  script_free(&s);
  script_init(&s, NX_WS_ROLE_SERVER);
  put_raw(&s, "\x89\x00", 2);
  expect_error_in(&s, 1002, 0, 1);
  REPLAY("unmasked ping to a server", &s);
  script_free(&s);
  script_init(&s, NX_WS_ROLE_SERVER);
  put_raw(&s, "\x88\x02\x03\xe8", 4);
  expect_error_in(&s, 1002, 0, 1);
  REPLAY("unmasked close to a server", &s);
  script_free(&s);

  /* Masked frame to a client. */
  script_init(&s, NX_WS_ROLE_CLIENT);
  whole_message(&s, NX_WS_OP_BINARY, "ok", 2);
  put_raw(&s, "\x82\x82\x01\x02\x03\x04\x00\x00", 8);
  expect_error_in(&s, 1002, s.wire.len - 8, s.wire.len - 7);
  REPLAY("masked binary to a client", &s);
  script_free(&s);
  script_init(&s, NX_WS_ROLE_CLIENT);
  put_raw(&s, "\x8a\x80\x01\x02\x03\x04", 6);
  expect_error_in(&s, 1002, 0, 1);
  REPLAY("masked pong to a client", &s);
  script_free(&s);

  /* Client role: unmasked frames are fine. */
  script_init(&s, NX_WS_ROLE_CLIENT);
  data_frame(&s, 0, NX_WS_OP_TEXT, "Hel", 3);
  ctrl_frame(&s, NX_WS_OP_PING, "x", 1);
  data_frame(&s, 1, NX_WS_OP_CONT, "lo", 2);
  close_frame(&s, 1000, "done");
  REPLAY("client role", &s);
  script_free(&s);
}

TEST(frame_rsv_bits) {
  static const uint8_t rsv[] = {0x40, 0x20, 0x10, 0x60, 0x70};
  size_t i;
  int allow, op;
  for (allow = 0; allow <= 1; allow++) {
    for (i = 0; i < NX_COUNTOF(rsv); i++) {
      static const int ops[] = {NX_WS_OP_TEXT, NX_WS_OP_BINARY, NX_WS_OP_PING, NX_WS_OP_PONG,
                                NX_WS_OP_CLOSE};
      size_t j;
      if (allow && rsv[i] == 0x40)
        continue; /* allowed on data frames: below */
      for (j = 0; j < NX_COUNTOF(ops); j++) {
        script_t s;
        script_init(&s, NX_WS_ROLE_SERVER);
        s.allow_rsv1 = allow;
        whole_message(&s, NX_WS_OP_TEXT, "fine", 4);
        put_frame(&s, (uint8_t)(b0_of(1, ops[j]) | rsv[i]), "\x03\xe8", 2);
        expect_error_in(&s, 1002, s.wire.len - 8, s.wire.len - 7);
        REPLAY("RSV bits", &s);
        script_free(&s);
      }
    }
  }
  /* allow_rsv1: RSV1 on the first frame of a data message only. */
  for (op = NX_WS_OP_TEXT; op <= NX_WS_OP_BINARY; op++) {
    script_t s;
    script_init(&s, NX_WS_ROLE_SERVER);
    s.allow_rsv1 = 1;
    put_frame(&s, (uint8_t)(b0_of(1, op) | 0x40), "\xff\xfe\x00",
              3); /* compressed: not checked as UTF-8 */
    ex_begin(&s.want, op, 1);
    ex_frame(&s.want, 3);
    ex_data(&s.want, "\xff\xfe\x00", 3);
    ex_end(&s.want);
    put_frame(&s, (uint8_t)(b0_of(0, op) | 0x40), "\xc0", 1);
    ex_begin(&s.want, op, 1);
    ex_frame(&s.want, 1);
    ex_data(&s.want, "\xc0", 1);
    ctrl_frame(&s, NX_WS_OP_PING, "", 0);
    data_frame(&s, 1, NX_WS_OP_CONT, "\xed\xa0\x80", 3);
    whole_message(&s, op, "plain", 5); /* RSV1 clear: an uncompressed message */
    REPLAY("RSV1 allowed", &s);
    /* Then RSV1 on a continuation frame. */
    put_frame(&s, (uint8_t)(b0_of(0, op) | 0x40), "a", 1);
    ex_begin(&s.want, op, 1);
    ex_frame(&s.want, 1);
    ex_data(&s.want, "a", 1);
    put_frame(&s, (uint8_t)(b0_of(1, NX_WS_OP_CONT) | 0x40), "b", 1);
    expect_error_in(&s, 1002, s.wire.len - 7, s.wire.len - 6);
    REPLAY("RSV1 on a continuation", &s);
    script_free(&s);
  }
  /* Under allow_rsv1, a text message without RSV1 is uncompressed: its
   * UTF-8 is still checked. */
  {
    script_t s;
    script_init(&s, NX_WS_ROLE_SERVER);
    s.allow_rsv1 = 1;
    put_frame(&s, b0_of(1, NX_WS_OP_TEXT), "ab\xff", 3);
    ex_begin(&s.want, NX_WS_OP_TEXT, 0);
    ex_frame(&s.want, 3);
    ex_data(&s.want, "ab", 2);
    expect_error(&s, 1007);
    REPLAY("uncompressed text under allow_rsv1", &s);
    script_free(&s);
  }
}

TEST(frame_reserved_opcodes) {
  static const int ops[] = {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf};
  size_t i;
  int fin, mid;
  for (i = 0; i < NX_COUNTOF(ops); i++)
    for (fin = 0; fin <= 1; fin++)
      for (mid = 0; mid <= 1; mid++) {
        script_t s;
        script_init(&s, NX_WS_ROLE_SERVER);
        if (mid)
          data_frame(&s, 0, NX_WS_OP_TEXT, "frag", 4);
        put_frame(&s, b0_of(fin, ops[i]), "x", 1);
        expect_error_in(&s, 1002, s.wire.len - 7, s.wire.len - 6);
        REPLAY("reserved opcode", &s);
        script_free(&s);
      }
}

TEST(frame_control_rules) {
  static const int ops[] = {NX_WS_OP_CLOSE, NX_WS_OP_PING, NX_WS_OP_PONG};
  size_t i;
  for (i = 0; i < NX_COUNTOF(ops); i++) {
    script_t s;
    uint8_t pl[126];
    memset(pl, 'a', sizeof(pl));
    pl[0] = 0x03, pl[1] = 0xe8;
    /* FIN=0. */
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame(&s, b0_of(0, ops[i]), pl, 2);
    expect_error_in(&s, 1002, 0, 1);
    REPLAY("fragmented control frame", &s);
    script_free(&s);
    /* Payload of 126 (16-bit length), and 127 (64-bit): refused once the
     * length is decoded, before any payload byte (header: 8 or 14 bytes). */
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame(&s, b0_of(1, ops[i]), pl, 126);
    expect_error_in(&s, 1002, 1, 7);
    REPLAY("control payload 126", &s);
    script_free(&s);
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame_enc(&s, b0_of(1, ops[i]), ENC_64, pl, 126, 126);
    expect_error_in(&s, 1002, 1, 13);
    REPLAY("control payload 126, 64-bit length", &s);
    script_free(&s);
    /* A payload of 125 or less in a longer length form than needed is
     * accepted, as for data frames (PROTOCOL-NOTES: lengths need not be
     * minimal). */
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame_enc(&s, b0_of(1, ops[i]), ENC_16, pl, 5, 5);
    ex_ctrl(&s.want, ops[i], pl, 5);
    if (ops[i] == NX_WS_OP_CLOSE)
      s.want.closed = 1;
    REPLAY("control payload 5, 16-bit length", &s);
    script_free(&s);
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame_enc(&s, b0_of(1, ops[i]), ENC_64, pl, 125, 125);
    ex_ctrl(&s.want, ops[i], pl, 125);
    if (ops[i] == NX_WS_OP_CLOSE)
      s.want.closed = 1;
    REPLAY("control payload 125, 64-bit length", &s);
    script_free(&s);
    /* 125 is fine. */
    script_init(&s, NX_WS_ROLE_SERVER);
    ctrl_frame(&s, ops[i], pl, 125);
    REPLAY("control payload 125", &s);
    script_free(&s);
  }
}

TEST(frame_fragmentation_order) {
  script_t s;
  /* Continuation without a message. */
  script_init(&s, NX_WS_ROLE_SERVER);
  put_frame(&s, b0_of(1, NX_WS_OP_CONT), "x", 1);
  expect_error_in(&s, 1002, 0, 1);
  REPLAY("continuation first", &s);
  script_free(&s);
  script_init(&s, NX_WS_ROLE_SERVER);
  put_frame(&s, b0_of(0, NX_WS_OP_CONT), "", 0);
  expect_error_in(&s, 1002, 0, 1);
  REPLAY("non-final continuation first", &s);
  script_free(&s);
  script_init(&s, NX_WS_ROLE_SERVER);
  data_frame(&s, 0, NX_WS_OP_TEXT, "a", 1);
  data_frame(&s, 1, NX_WS_OP_CONT, "b", 1);
  ctrl_frame(&s, NX_WS_OP_PING, "", 0);
  put_frame(&s, b0_of(1, NX_WS_OP_CONT), "c", 1);
  expect_error_in(&s, 1002, s.wire.len - 7, s.wire.len - 6);
  REPLAY("continuation after the message ended", &s);
  script_free(&s);
  /* A new data message while one is in progress. */
  {
    int first, second;
    for (first = NX_WS_OP_TEXT; first <= NX_WS_OP_BINARY; first++)
      for (second = NX_WS_OP_TEXT; second <= NX_WS_OP_BINARY; second++) {
        int fin;
        for (fin = 0; fin <= 1; fin++) {
          script_init(&s, NX_WS_ROLE_SERVER);
          data_frame(&s, 0, first, "a", 1);
          ctrl_frame(&s, NX_WS_OP_PONG, "", 0);
          data_frame(&s, 0, NX_WS_OP_CONT, "b", 1);
          put_frame(&s, b0_of(fin, second), "c", 1);
          expect_error_in(&s, 1002, s.wire.len - 7, s.wire.len - 6);
          REPLAY("data frame while a message is in progress", &s);
          script_free(&s);
        }
      }
  }
}

TEST(frame_64bit_length_top_bit) {
  static const uint64_t lens[] = {0x8000000000000000ull, 0xffffffffffffffffull,
                                  0x8000000000000005ull};
  size_t i;
  for (i = 0; i < NX_COUNTOF(lens); i++) {
    int role;
    for (role = NX_WS_ROLE_SERVER; role <= NX_WS_ROLE_CLIENT; role++) {
      script_t s;
      size_t hl;
      script_init(&s, role);
      s.max = i == 2 ? 10 : 0; /* the 1002 wins over a 1009 */
      put_frame_enc(&s, b0_of(1, NX_WS_OP_BINARY), ENC_64, "", lens[i], 0);
      hl = role == NX_WS_ROLE_SERVER ? 14 : 10;
      CHECK_EQ(s.wire.len, hl);
      expect_error_in(&s, 1002, 2, hl - 1);
      put_raw(&s, "payload", 7);
      REPLAY("64-bit length with the top bit set", &s);
      script_free(&s);
    }
  }
  /* The largest allowed length parses (header only). */
  {
    script_t s;
    script_init(&s, NX_WS_ROLE_SERVER);
    put_frame_enc(&s, b0_of(1, NX_WS_OP_BINARY), ENC_64, "abc", 0x7fffffffffffffffull, 3);
    ex_begin(&s.want, NX_WS_OP_BINARY, 0);
    ex_frame(&s.want, 0x7fffffffffffffffull);
    ex_data(&s.want, "abc", 3);
    REPLAY("63-bit length", &s);
    script_free(&s);
  }
}

/* ---- tests: message size limit (1009) -------------------------------------- */

/* Feeds only the header of a too-big frame: the error must come at once. */
static void header_only_too_big(const char *file, int line, script_t *s, size_t frame_at) {
  nx_ws_parser_t p;
  evlog_t log;
  uint8_t *work = malloc(s->wire.len);
  size_t c;
  if (!work)
    abort();
  memcpy(work, s->wire.p, s->wire.len);
  log_init(&log);
  parser_setup(&p, s, &log);
  log.chunk_lo = work, log.chunk_hi = work + s->wire.len;
  c = nx_ws_parse(&p, work, s->wire.len);
  if (p.error_code != 1009)
    nx_test_fail_at(file, line,
                    "header of a too-big frame (byte %zu..%zu) fed: error %d, consumed %zu",
                    frame_at, s->wire.len - 1, p.error_code, c);
  else if (log.nev && log.ev[log.nev - 1].type == EV_FRAME && log.ev[log.nev - 1].len > s->max)
    nx_test_fail_at(file, line, "on_frame_begin announced a frame over the limit");
  /* One byte short of the header: no error yet. */
  memcpy(work, s->wire.p, s->wire.len);
  log_free(&log);
  parser_setup(&p, s, &log);
  log.chunk_lo = work, log.chunk_hi = work + s->wire.len;
  c = nx_ws_parse(&p, work, s->wire.len - 1);
  if (p.error_code != 0 || c != s->wire.len - 1)
    nx_test_fail_at(file, line, "header of a too-big frame minus one byte: error %d", p.error_code);
  log_free(&log);
  free(work);
}

TEST(frame_max_message_size_single_frame) {
  static const size_t lens[] = {0, 1, 100, 101, 125, 126, 1000, 65536, 100000};
  uint8_t *payload = malloc(100000);
  size_t i;
  int op;
  if (!payload)
    abort();
  for (op = NX_WS_OP_TEXT; op <= NX_WS_OP_BINARY; op++) {
    for (i = 0; i < NX_COUNTOF(lens); i++) {
      script_t s;
      gen_text(payload, lens[i]);
      script_init(&s, NX_WS_ROLE_SERVER);
      s.max = 100;
      ctrl_frame(&s, NX_WS_OP_PING, "", 0);
      if (lens[i] <= 100) {
        whole_message(&s, op, payload, lens[i]);
        REPLAY("message within the limit", &s);
      } else {
        size_t frame_at = s.wire.len;
        put_frame_enc(&s, b0_of(1, op), ENC_MIN, payload, lens[i], 0); /* header only */
        expect_error(&s, 1009);
        header_only_too_big(__FILE__, __LINE__, &s, frame_at);
        buf_put(&s.wire, payload, lens[i]); /* the payload that must never be read */
        REPLAY("message over the limit", &s);
      }
      script_free(&s);
    }
  }
  /* Control frames do not count against the limit. */
  {
    script_t s;
    uint8_t pl[125];
    gen_binary(pl, sizeof(pl));
    script_init(&s, NX_WS_ROLE_SERVER);
    s.max = 10;
    ctrl_frame(&s, NX_WS_OP_PING, pl, 100);
    data_frame(&s, 0, NX_WS_OP_TEXT, "12345", 5);
    ctrl_frame(&s, NX_WS_OP_PONG, pl, 125);
    data_frame(&s, 1, NX_WS_OP_CONT, "67890", 5);
    close_frame(&s, 1000, "a reason longer than the ten-byte limit");
    REPLAY("control frames are not limited", &s);
    script_free(&s);
  }
  /* A huge announced length is refused from the header. */
  {
    script_t s;
    script_init(&s, NX_WS_ROLE_SERVER);
    s.max = 1 << 20;
    put_frame_enc(&s, b0_of(1, NX_WS_OP_BINARY), ENC_64, "", 0x4000000000000000ull, 0);
    expect_error(&s, 1009);
    header_only_too_big(__FILE__, __LINE__, &s, 0);
    REPLAY("huge frame", &s);
    script_free(&s);
  }
  free(payload);
}

TEST(frame_max_message_size_fragments) {
  uint8_t payload[100];
  int op;
  gen_text(payload, sizeof(payload));
  for (op = NX_WS_OP_TEXT; op <= NX_WS_OP_BINARY; op++) {
    script_t s;
    size_t frame_at;
    /* Exactly the limit over several fragments. */
    script_init(&s, NX_WS_ROLE_SERVER);
    s.max = 100;
    data_frame(&s, 0, op, payload, 60);
    data_frame(&s, 0, NX_WS_OP_CONT, "", 0);
    ctrl_frame(&s, NX_WS_OP_PING, payload, 50);
    data_frame(&s, 1, NX_WS_OP_CONT, payload + 60, 40);
    REPLAY("fragments up to the limit", &s);
    script_free(&s);
    /* One byte over. */
    script_init(&s, NX_WS_ROLE_SERVER);
    s.max = 100;
    data_frame(&s, 0, op, payload, 60);
    ctrl_frame(&s, NX_WS_OP_PING, payload, 50);
    data_frame(&s, 0, NX_WS_OP_CONT, payload + 60, 20);
    frame_at = s.wire.len;
    put_frame_enc(&s, b0_of(1, NX_WS_OP_CONT), ENC_MIN, "", 21, 0);
    expect_error(&s, 1009);
    header_only_too_big(__FILE__, __LINE__, &s, frame_at);
    buf_put(&s.wire, payload, 21);
    REPLAY("fragments over the limit", &s);
    script_free(&s);
  }
}

TEST(frame_max_message_size_per_message) {
  /* The limit is per message: many messages, each within it, are fine. */
  int round;
  for (round = 0; round < 2; round++) {
    script_t s;
    int i;
    script_init(&s, NX_WS_ROLE_SERVER);
    s.max = 10;
    for (i = 0; i < 5; i++) {
      if (round == 0) {
        whole_message(&s, i % 2 ? NX_WS_OP_BINARY : NX_WS_OP_TEXT, "123456", 6);
      } else {
        data_frame(&s, 0, NX_WS_OP_TEXT, "12345", 5);
        data_frame(&s, 1, NX_WS_OP_CONT, "67890", 5);
      }
    }
    REPLAY(round == 0 ? "several messages under the limit"
                      : "several fragmented messages at the limit",
           &s);
    script_free(&s);
  }
}

/* ---- tests: UTF-8 of text messages (1007) ---------------------------------- */

TEST(frame_text_utf8) {
  static const struct {
    const char *s;
    size_t len;
    size_t bad; /* index of the first impossible byte */
  } cases[] = {
      {"abc\xff", 4, 3},
      {"\x80", 1, 0},
      {"ok\xc0\x80", 4, 2},
      {"\xe0\x9f\xbf", 3, 1},
      {"\xed\xa0\x80", 3, 1},
      {"\xf4\x90\x80\x80zz", 6, 1},
      {"\xf0\x8f\xbf\xbf", 4, 1},
      {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
       "edited",
       20, 12},
  };
  size_t i;
  for (i = 0; i < NX_COUNTOF(cases); i++) {
    script_t s;
    size_t at;
    int frag;
    for (frag = 0; frag <= 1; frag++) {
      script_init(&s, NX_WS_ROLE_SERVER);
      /* fin=0: the error must come before the message ends. */
      at = put_frame(&s, b0_of(!frag, NX_WS_OP_TEXT), cases[i].s, cases[i].len);
      ex_begin(&s.want, NX_WS_OP_TEXT, 0);
      ex_frame(&s.want, cases[i].len);
      ex_data(&s.want, cases[i].s, cases[i].bad);
      expect_error(&s, 1007);
      s.want.err_lo = s.want.err_hi = (long)(at + cases[i].bad);
      if (frag)
        put_frame(&s, b0_of(1, NX_WS_OP_CONT), "tail", 4);
      REPLAY(frag ? "invalid UTF-8 in a first fragment" : "invalid UTF-8 in a text frame", &s);
      script_free(&s);
    }
  }
  /* Binary messages are not checked. */
  {
    script_t s;
    script_init(&s, NX_WS_ROLE_SERVER);
    whole_message(&s, NX_WS_OP_BINARY, "\xff\xed\xa0\x80\xc0", 5);
    data_frame(&s, 0, NX_WS_OP_BINARY, "\xe2", 1);
    data_frame(&s, 1, NX_WS_OP_CONT, "", 0);
    REPLAY("binary is not UTF-8 checked", &s);
    script_free(&s);
  }
}

TEST(frame_text_utf8_across_fragments) {
  script_t s;
  size_t at;
  /* A code point split over fragments (and a ping) is fine. */
  script_init(&s, NX_WS_ROLE_SERVER);
  data_frame(&s, 0, NX_WS_OP_TEXT, "x\xe2", 2);
  data_frame(&s, 0, NX_WS_OP_CONT, "\x82", 1);
  ctrl_frame(&s, NX_WS_OP_PING, "", 0);
  data_frame(&s, 1, NX_WS_OP_CONT, "\xac", 1);
  data_frame(&s, 0, NX_WS_OP_TEXT, "\xf0", 1);
  data_frame(&s, 0, NX_WS_OP_CONT, "", 0);
  data_frame(&s, 0, NX_WS_OP_CONT, "\x9f\x98", 2);
  data_frame(&s, 1, NX_WS_OP_CONT, "\x80!", 2);
  REPLAY("code points split across fragments", &s);
  script_free(&s);

  /* An invalid continuation in the next fragment: fails at that byte. */
  script_init(&s, NX_WS_ROLE_SERVER);
  data_frame(&s, 0, NX_WS_OP_TEXT, "ab\xed", 3);
  at = put_frame(&s, b0_of(0, NX_WS_OP_CONT), "\xa0\x80", 2);
  ex_frame(&s.want, 2);
  expect_error_in(&s, 1007, at, at);
  put_frame(&s, b0_of(1, NX_WS_OP_CONT), "zz", 2);
  REPLAY("surrogate split across fragments", &s);
  script_free(&s);

  /* Fail fast: only the first fragment is sent, no FIN ever. */
  script_init(&s, NX_WS_ROLE_SERVER);
  at = put_frame(&s, b0_of(0, NX_WS_OP_TEXT), "hello \xf5 world", 13);
  ex_begin(&s.want, NX_WS_OP_TEXT, 0);
  ex_frame(&s.want, 13);
  ex_data(&s.want, "hello ", 6);
  expect_error_in(&s, 1007, at + 6, at + 6);
  REPLAY("fail fast in the first fragment", &s);
  script_free(&s);

  /* Incomplete code point at the end of the final fragment. */
  script_init(&s, NX_WS_ROLE_SERVER);
  put_frame(&s, b0_of(1, NX_WS_OP_TEXT), "abc\xe2\x82", 5);
  ex_begin(&s.want, NX_WS_OP_TEXT, 0);
  ex_frame(&s.want, 5);
  ex_data(&s.want, "abc\xe2\x82", 5);
  expect_error(&s, 1007);
  REPLAY("incomplete code point at the end", &s);
  script_free(&s);
  script_init(&s, NX_WS_ROLE_SERVER);
  data_frame(&s, 0, NX_WS_OP_TEXT, "abc\xf0\x9f\x98", 6);
  ctrl_frame(&s, NX_WS_OP_PING, "", 0);
  put_frame(&s, b0_of(1, NX_WS_OP_CONT), "", 0);
  ex_frame(&s.want, 0);
  expect_error(&s, 1007);
  REPLAY("incomplete code point before an empty final fragment", &s);
  script_free(&s);
  script_init(&s, NX_WS_ROLE_SERVER);
  put_frame(&s, b0_of(1, NX_WS_OP_TEXT), "\xc3", 1);
  ex_begin(&s.want, NX_WS_OP_TEXT, 0);
  ex_frame(&s.want, 1);
  ex_data(&s.want, "\xc3", 1);
  expect_error(&s, 1007);
  REPLAY("lone lead byte as a whole message", &s);
  script_free(&s);
}

/* ---- tests: callbacks that stop the parser --------------------------------- */

static void rich_script(script_t *s) {
  uint8_t big[300];
  gen_text(big, sizeof(big));
  script_init(s, NX_WS_ROLE_SERVER);
  whole_message(s, NX_WS_OP_TEXT, "hello", 5);
  data_frame(s, 0, NX_WS_OP_BINARY, "\x01\x02", 2);
  ctrl_frame(s, NX_WS_OP_PING, "p", 1);
  data_frame(s, 0, NX_WS_OP_CONT, "", 0);
  ctrl_frame(s, NX_WS_OP_PONG, "", 0);
  data_frame(s, 1, NX_WS_OP_CONT, "\x03", 1);
  whole_message(s, NX_WS_OP_TEXT, big, sizeof(big));
  whole_message(s, NX_WS_OP_BINARY, "", 0);
  data_frame(s, 0, NX_WS_OP_TEXT, "\xe2\x82", 2);
  data_frame(s, 1, NX_WS_OP_CONT, "\xac", 1);
  close_frame(s, 1000, "bye");
  put_frame(s, b0_of(1, NX_WS_OP_TEXT), "ignored", 7);
}

static void check_stops(const char *file, int line, unsigned mask) {
  script_t s;
  evlog_t log;
  run_info_t info;
  rich_script(&s);
  replay_stops(file, line, "stopping callbacks", &s, mask);
  run(&s, s.wire.len, mask, &log, &info);
  if (log.stops == 0)
    nx_test_fail_at(file, line, "no callback was asked to stop");
  log_free(&log);
  script_free(&s);
}

TEST(frame_stop_in_on_message_begin) { check_stops(__FILE__, __LINE__, STOP_BEGIN); }

/* defer_unmask: binary and compressed data reach on_data still masked (the
 * owner unmasks as it copies), text as before; the events and bytes are the
 * same in every chunk size, with and without stops. */
TEST(frame_defer_unmask) {
  script_t s;
  uint8_t big[1000];
  size_t i;
  evlog_t log;
  run_info_t info;
  rich_script(&s);
  s.defer = 1;
  REPLAY("deferred unmasking", &s);
  run(&s, 3, 0, &log, &info);
  CHECK_EQ(log.masked_bytes, 3); /* the binary message's three bytes, not the text */
  log_free(&log);
  replay_stops(__FILE__, __LINE__, "deferred unmasking, stops", &s, STOP_DATA | STOP_FRAME);
  script_free(&s);
  /* A long binary message in fragments of odd lengths: every key phase at
   * every fragment and chunk boundary. */
  for (i = 0; i < sizeof(big); i++)
    big[i] = (uint8_t)(i * 131 + 7);
  script_init(&s, NX_WS_ROLE_SERVER);
  s.defer = 1;
  data_frame(&s, 0, NX_WS_OP_BINARY, big, 333);
  data_frame(&s, 0, NX_WS_OP_CONT, big + 333, 1);
  data_frame(&s, 1, NX_WS_OP_CONT, big + 334, sizeof(big) - 334);
  close_frame(&s, 1000, "");
  REPLAY("deferred unmasking, long fragmented binary", &s);
  run(&s, 64, 0, &log, &info);
  CHECK_EQ(log.masked_bytes, sizeof(big));
  log_free(&log);
  script_free(&s);
}
TEST(frame_stop_in_on_frame_begin) { check_stops(__FILE__, __LINE__, STOP_FRAME); }
TEST(frame_stop_in_on_data) { check_stops(__FILE__, __LINE__, STOP_DATA); }
TEST(frame_stop_in_on_message_end) { check_stops(__FILE__, __LINE__, STOP_END); }
TEST(frame_stop_in_on_control) { check_stops(__FILE__, __LINE__, STOP_CTRL); }
TEST(frame_stop_in_every_callback) { check_stops(__FILE__, __LINE__, STOP_ALL); }

TEST(frame_stop_returns_at_once) {
  /* Two whole messages in one buffer; on_message_end stops: nx_ws_parse
   * returns right after the first message's bytes, and the second one
   * follows on the next call. */
  script_t s;
  nx_ws_parser_t p;
  evlog_t log;
  size_t first, c;
  script_init(&s, NX_WS_ROLE_SERVER);
  whole_message(&s, NX_WS_OP_TEXT, "one", 3);
  first = s.wire.len;
  whole_message(&s, NX_WS_OP_TEXT, "two", 3);
  log_init(&log);
  log.stop_mask = STOP_END;
  parser_setup(&p, &s, &log);
  log.chunk_lo = s.wire.p, log.chunk_hi = s.wire.p + s.wire.len;
  c = nx_ws_parse(&p, s.wire.p, s.wire.len);
  CHECK_EQ(c, first);
  CHECK_EQ(log.nev, 4); /* B F D E */
  c += nx_ws_parse(&p, s.wire.p + c, s.wire.len - c);
  CHECK_EQ(c, s.wire.len);
  CHECK_EQ(log.nev, 8);
  CHECK_EQ(p.error_code, 0);
  log_free(&log);
  script_free(&s);
}

TEST(frame_stop_in_on_message_begin_keeps_size_limit) {
  /* A stop in on_message_begin must not lose the frame's size from the
   * message total, nor its on_frame_begin. */
  script_t s;
  script_init(&s, NX_WS_ROLE_SERVER);
  s.max = 10;
  put_frame(&s, b0_of(0, NX_WS_OP_BINARY), "12345678", 8);
  ex_begin(&s.want, NX_WS_OP_BINARY, 0);
  ex_frame(&s.want, 8);
  ex_data(&s.want, "12345678", 8);
  put_frame_enc(&s, b0_of(1, NX_WS_OP_CONT), ENC_MIN, "", 8, 0);
  expect_error(&s, 1009);
  put_raw(&s, "abcdefgh", 8);
  replay_stops(__FILE__, __LINE__, "limit with a stop in on_message_begin", &s, STOP_BEGIN);
  script_free(&s);
}

TEST(frame_stop_before_empty_final_frame_end) {
  /* The last bytes of the input are an empty final frame and the callback
   * stops on its frame begin: resuming with the rest (nothing) must still
   * deliver on_message_end. */
  script_t s;
  script_init(&s, NX_WS_ROLE_SERVER);
  whole_message(&s, NX_WS_OP_TEXT, "", 0);
  replay_stops(__FILE__, __LINE__, "empty message, stop in on_frame_begin", &s, STOP_FRAME);
  replay_stops(__FILE__, __LINE__, "empty message, stop in on_message_begin", &s, STOP_BEGIN);
  script_free(&s);
}

TEST(frame_null_callbacks) {
  /* Every callback NULL: the parser still checks everything. */
  static const nx_ws_callbacks_t none = {NULL, NULL, NULL, NULL, NULL, NULL};
  script_t s;
  nx_ws_parser_t p;
  size_t k;
  rich_script(&s);
  for (k = 1; k <= s.wire.len; k++) {
    uint8_t *work = malloc(s.wire.len);
    size_t off;
    if (!work)
      abort();
    memcpy(work, s.wire.p, s.wire.len);
    memset(&p, 0, sizeof(p));
    nx_ws_parser_init(&p, &none, NULL, NX_WS_ROLE_SERVER);
    for (off = 0; off < s.wire.len; off += k) {
      size_t n = s.wire.len - off < k ? s.wire.len - off : k;
      if (nx_ws_parse(&p, work + off, n) != n)
        break;
    }
    free(work);
    nx_ws_parser_free(&p);
    if (!CHECK(off >= s.wire.len && p.error_code == 0 && nx_ws_parser_closed(&p)))
      break;
  }
  script_free(&s);
}

TEST(frame_parser_init) {
  nx_ws_parser_t p;
  int x;
  memset(&p, 0x5a, sizeof(p));
  p.max_message_size = 777;
  p.allow_rsv1 = 1;
  nx_ws_parser_init(&p, &log_callbacks, &x, NX_WS_ROLE_CLIENT);
  CHECK(p.cb == &log_callbacks);
  CHECK(p.data == &x);
  CHECK_EQ(p.max_message_size, 777);
  CHECK_EQ(p.allow_rsv1, 1);
  CHECK_EQ(p.role, NX_WS_ROLE_CLIENT);
  CHECK_EQ(p.error_code, 0);
  CHECK(p.error_reason == NULL);
  CHECK(!nx_ws_parser_closed(&p));
  CHECK_EQ(p.msg_opcode, 0);
  CHECK_EQ(p.msg_size, 0);
  /* An error gives a reason and sticks. */
  {
    evlog_t log;
    uint8_t bad[2] = {0x83, 0x00};
    log_init(&log);
    nx_ws_parser_init(&p, &log_callbacks, &log, NX_WS_ROLE_CLIENT);
    p.max_message_size = 0;
    nx_ws_parse(&p, bad, 2);
    CHECK_EQ(p.error_code, 1002);
    CHECK(p.error_reason != NULL && p.error_reason[0] != '\0');
    CHECK_EQ(nx_ws_parse(&p, bad, 2), 0);
    /* Re-initialised, it parses again. */
    nx_ws_parser_init(&p, &log_callbacks, &log, NX_WS_ROLE_CLIENT);
    CHECK_EQ(p.error_code, 0);
    bad[0] = 0x81;
    CHECK_EQ(nx_ws_parse(&p, bad, 2), 2);
    CHECK_EQ(log.nev, 3);
    log_free(&log);
  }
}

/* ---- tests: encoder --------------------------------------------------------- */

TEST(encoder_header_sizes) {
  static const struct {
    uint64_t len;
    size_t size;
  } cases[] = {{0, 2},
               {1, 2},
               {125, 2},
               {126, 4},
               {127, 4},
               {128, 4},
               {65535, 4},
               {65536, 10},
               {100000, 10},
               {0xffffffffull, 10},
               {0x100000000ull, 10},
               {0x7fffffffffffffffull, 10}};
  static const uint8_t key[4] = {0xde, 0xad, 0xbe, 0xef};
  size_t i;
  uint8_t h[14];
  for (i = 0; i < NX_COUNTOF(cases); i++) {
    size_t n = nx_ws_frame_header(h, 1, 0, NX_WS_OP_BINARY, cases[i].len, NULL);
    CHECK_EQ(n, cases[i].size);
    CHECK_EQ(h[0], 0x82);
    CHECK_EQ(h[1] & 0x80, 0);
    n = nx_ws_frame_header(h, 1, 0, NX_WS_OP_BINARY, cases[i].len, key);
    CHECK_EQ(n, cases[i].size + 4);
    CHECK_EQ(h[1] & 0x80, 0x80);
    CHECK_MEM_EQ(h + n - 4, 4, key, 4);
  }
  /* Exact bytes. */
  CHECK_EQ(nx_ws_frame_header(h, 1, 0, NX_WS_OP_TEXT, 5, NULL), 2);
  CHECK_MEM_EQ(h, 2, "\x81\x05", 2);
  CHECK_EQ(nx_ws_frame_header(h, 0, 1, NX_WS_OP_TEXT, 126, NULL), 4);
  CHECK_MEM_EQ(h, 4, "\x41\x7e\x00\x7e", 4);
  CHECK_EQ(nx_ws_frame_header(h, 1, 1, NX_WS_OP_BINARY, 65535, NULL), 4);
  CHECK_MEM_EQ(h, 4, "\xc2\x7e\xff\xff", 4);
  CHECK_EQ(nx_ws_frame_header(h, 1, 0, NX_WS_OP_CLOSE, 65536, key), 14);
  CHECK_MEM_EQ(h, 14, "\x88\xff\x00\x00\x00\x00\x00\x01\x00\x00\xde\xad\xbe\xef", 14);
  CHECK_EQ(nx_ws_frame_header(h, 0, 0, NX_WS_OP_CONT, 0x0102030405060708ull, NULL), 10);
  CHECK_MEM_EQ(h, 10, "\x00\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);
  CHECK_EQ(nx_ws_frame_header(h, 1, 0, NX_WS_OP_PONG, 0, key), 6);
  CHECK_MEM_EQ(h, 6, "\x8a\x80\xde\xad\xbe\xef", 6);
}

/* Encodes a message with nx_ws_frame_header (server style, unmasked) and
 * parses it with a client-role parser; and masked, with a server-role one. */
TEST(encoder_round_trip) {
  static const size_t lens[] = {0, 1, 2, 125, 126, 127, 128, 300, 65535, 65536, 70001};
  uint8_t *payload = malloc(70001);
  size_t i;
  int role;
  if (!payload)
    abort();
  for (role = NX_WS_ROLE_SERVER; role <= NX_WS_ROLE_CLIENT; role++) {
    for (i = 0; i < NX_COUNTOF(lens); i++) {
      script_t s;
      uint8_t h[14], key[4] = {0x37, 0xfa, 0x21, 0x3d};
      size_t hl, at;
      script_init(&s, role);
      gen_text(payload, lens[i]);
      /* Built by hand here (not with put_frame) so that this test
       * depends on nothing but the encoder. */
      hl = nx_ws_frame_header(h, 1, 0, NX_WS_OP_TEXT, lens[i],
                              role == NX_WS_ROLE_SERVER ? key : NULL);
      buf_put(&s.wire, h, hl);
      at = s.wire.len;
      buf_put(&s.wire, payload, lens[i]);
      if (role == NX_WS_ROLE_SERVER)
        nx_ws_mask(s.wire.p + at, lens[i], key, 0);
      ex_begin(&s.want, NX_WS_OP_TEXT, 0);
      ex_frame(&s.want, lens[i]);
      ex_data(&s.want, payload, lens[i]);
      ex_end(&s.want);
      /* A fragmented binary message with RSV1 and a ping. */
      s.allow_rsv1 = 1;
      hl = nx_ws_frame_header(h, 0, 1, NX_WS_OP_BINARY, 3, role == NX_WS_ROLE_SERVER ? key : NULL);
      buf_put(&s.wire, h, hl);
      at = s.wire.len;
      buf_put(&s.wire, "abc", 3);
      if (role == NX_WS_ROLE_SERVER)
        nx_ws_mask(s.wire.p + at, 3, key, 0);
      hl = nx_ws_frame_header(h, 1, 0, NX_WS_OP_PING, 0, role == NX_WS_ROLE_SERVER ? key : NULL);
      buf_put(&s.wire, h, hl);
      hl = nx_ws_frame_header(h, 1, 0, NX_WS_OP_CONT, 0, role == NX_WS_ROLE_SERVER ? key : NULL);
      buf_put(&s.wire, h, hl);
      ex_begin(&s.want, NX_WS_OP_BINARY, 1);
      ex_frame(&s.want, 3);
      ex_data(&s.want, "abc", 3);
      ex_ctrl(&s.want, NX_WS_OP_PING, "", 0);
      ex_frame(&s.want, 0);
      ex_end(&s.want);
      REPLAY(role == NX_WS_ROLE_CLIENT ? "encoder -> client parser"
                                       : "masked encoder -> server parser",
             &s);
      script_free(&s);
    }
  }
  /* Huge lengths: header only, the parser announces the same length. */
  {
    static const uint64_t huge[] = {0x10000ull, 0xffffffffull, 0x100000000ull,
                                    0x7fffffffffffffffull};
    for (i = 0; i < NX_COUNTOF(huge); i++) {
      script_t s;
      uint8_t h[14];
      script_init(&s, NX_WS_ROLE_CLIENT);
      buf_put(&s.wire, h, nx_ws_frame_header(h, 0, 0, NX_WS_OP_BINARY, huge[i], NULL));
      ex_begin(&s.want, NX_WS_OP_BINARY, 0);
      ex_frame(&s.want, huge[i]);
      REPLAY("huge header round trip", &s);
      script_free(&s);
    }
  }
  free(payload);
}

static void ref_mask(uint8_t *d, size_t len, const uint8_t key[4], uint64_t off) {
  size_t i;
  for (i = 0; i < len; i++)
    d[i] ^= key[(off + i) % 4];
}

TEST(encoder_unmask_copy) {
  /* Lengths across the 64- and 16-byte blocks, every phase and alignment,
   * copying (src and dst apart) and in place. */
  static const uint8_t key[4] = {0x9c, 0x01, 0xfe, 0x37};
  uint8_t src[256], dst[256], ref[256];
  size_t len, align, i, off;
  for (off = 0; off < 4; off++)
    for (len = 0; len <= 200; len++)
      for (align = 0; align < 4; align++) {
        for (i = 0; i < sizeof(src); i++)
          src[i] = ref[i] = (uint8_t)(i * 17 + len);
        memset(dst, 0x5a, sizeof(dst));
        nx_ws_unmask_copy(dst + align, src + align, len, key, off);
        ref_mask(ref + align, len, key, off);
        for (i = 0; i < sizeof(dst); i++) {
          int inside = i >= align && i < align + len;
          if (dst[i] != (inside ? ref[i] : 0x5a)) {
            nx_test_fail_at(__FILE__, __LINE__, "copy: offset %zu len %zu align %zu: byte %zu", off,
                            len, align, i);
            return;
          }
        }
        nx_ws_unmask_copy(src + align, src + align, len, key, off);
        if (memcmp(src, ref, sizeof(src)) != 0) {
          nx_test_fail_at(__FILE__, __LINE__, "in place: offset %zu len %zu align %zu", off, len,
                          align);
          return;
        }
      }
}

TEST(encoder_mask) {
  static const uint8_t keys[][4] = {
      {0x01, 0x02, 0x04, 0x08}, {0xff, 0x00, 0xa5, 0x5a}, {0, 0, 0, 0}};
  static const uint64_t big_offsets[] = {0x100000000ull, 0xfffffffffffffffdull, 1ull << 63};
  uint8_t buf[64], ref[64];
  size_t k, len, align, i;
  uint64_t off;
  for (k = 0; k < NX_COUNTOF(keys); k++)
    for (off = 0; off < 8; off++)
      for (len = 0; len <= 40; len++)
        for (align = 0; align < 8; align++) {
          for (i = 0; i < sizeof(buf); i++)
            buf[i] = ref[i] = (uint8_t)(i * 29 + len);
          nx_ws_mask(buf + align, len, keys[k], off);
          ref_mask(ref + align, len, keys[k], off);
          if (memcmp(buf, ref, sizeof(buf)) != 0) {
            nx_test_fail_at(__FILE__, __LINE__,
                            "nx_ws_mask key %zu offset %llu len %zu align %zu differs", k,
                            (unsigned long long)off, len, align);
            return;
          }
        }
  for (i = 0; i < NX_COUNTOF(big_offsets); i++) {
    for (len = 0; len <= 20; len++) {
      memset(buf, 0x33, sizeof(buf));
      memset(ref, 0x33, sizeof(ref));
      nx_ws_mask(buf + 1, len, keys[1], big_offsets[i]);
      ref_mask(ref + 1, len, keys[1], big_offsets[i]);
      CHECK_MEM_EQ(buf, sizeof(buf), ref, sizeof(ref));
    }
  }
  /* Masking in pieces with running offsets equals masking at once, and
   * masking twice restores the data. */
  for (i = 0; i < 40; i++)
    buf[i] = ref[i] = (uint8_t)(i + 1);
  nx_ws_mask(ref, 40, keys[0], 0);
  for (k = 0; k < 40;) {
    size_t n = (k % 7) + 1;
    if (n > 40 - k)
      n = 40 - k;
    nx_ws_mask(buf + k, n, keys[0], k);
    k += n;
  }
  CHECK_MEM_EQ(buf, 40, ref, 40);
  nx_ws_mask(buf, 40, keys[0], 0);
  for (i = 0; i < 40; i++)
    CHECK_EQ(buf[i], i + 1);
}

/* The longest prefix of s, at most max bytes, ending at a code point
 * boundary. */
static size_t ref_cut(const char *s, size_t len, size_t max) {
  size_t n = len < max ? len : max;
  while (n > 0 && n < len && ((uint8_t)s[n] & 0xc0) == 0x80)
    n--;
  return n;
}

TEST(encoder_close_payload) {
  uint8_t out[140];
  char reason[200];
  size_t i, n, start, clen;
  static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};

  memset(out, 0xee, sizeof(out));
  CHECK_EQ(nx_ws_close_payload(out, 0, "ignored", 7), 0);
  CHECK_EQ(out[0], 0xee);
  CHECK_EQ(nx_ws_close_payload(out, 1000, NULL, 0), 2);
  CHECK_MEM_EQ(out, 2, "\x03\xe8", 2);
  CHECK_EQ(nx_ws_close_payload(out, 4999, "", 0), 2);
  CHECK_MEM_EQ(out, 2, "\x13\x87", 2);
  CHECK_EQ(nx_ws_close_payload(out, 1001, "bye", 3), 5);
  CHECK_MEM_EQ(out, 5,
               "\x03\xe9"
               "bye",
               5);
  CHECK_EQ(nx_ws_close_payload(out, 1000, "byebye", 3), 5);
  CHECK_MEM_EQ(out, 5,
               "\x03\xe8"
               "bye",
               5);

  /* ASCII reasons of every length around the limit. */
  memset(reason, 'r', sizeof(reason));
  for (n = 0; n <= sizeof(reason); n++) {
    memset(out, 0xee, sizeof(out));
    clen = nx_ws_close_payload(out, 1000, reason, n);
    CHECK_EQ(clen, 2 + (n < 123 ? n : 123));
    for (i = 125; i < sizeof(out); i++)
      if (out[i] != 0xee) {
        nx_test_fail_at(__FILE__, __LINE__, "wrote past 125 bytes (reason length %zu)", n);
        break;
      }
  }

  /* A multibyte character at every position across the 123-byte cut. */
  for (i = 0; i < NX_COUNTOF(chars); i++) {
    size_t cl = strlen(chars[i]);
    for (start = 115; start <= 124; start++) {
      for (n = 120; n <= 135; n++) {
        size_t expect;
        if (start + cl > n)
          continue;
        memset(reason, 'a', sizeof(reason));
        memcpy(reason + start, chars[i], cl);
        memset(out, 0xee, sizeof(out));
        clen = nx_ws_close_payload(out, 3000, reason, n);
        expect = ref_cut(reason, n, 123);
        if (clen != 2 + expect || memcmp(out + 2, reason, clen - 2) != 0 ||
            !nx_utf8_valid(out + 2, clen - 2) || out[125] != 0xee) {
          nx_test_fail_at(
              __FILE__, __LINE__,
              "close payload, %zu-byte char at %zu, reason of %zu: length %zu, expected %zu", cl,
              start, n, clen, 2 + expect);
          break;
        }
      }
    }
  }

  /* A payload built here parses back to the same close frame. */
  {
    script_t s;
    char long_reason[300];
    for (i = 0; i < sizeof(long_reason); i++)
      long_reason[i] = "\xe2\x82\xac"[i % 3];
    script_init(&s, NX_WS_ROLE_SERVER);
    clen = nx_ws_close_payload(out, 1000, long_reason, sizeof(long_reason));
    CHECK_EQ(clen, 2 + 123);
    ctrl_frame(&s, NX_WS_OP_CLOSE, out, clen);
    REPLAY("close payload round trip", &s);
    script_free(&s);
    /* "a" then euros: now the 123-byte cut falls inside a character. */
    long_reason[0] = 'a';
    for (i = 1; i < sizeof(long_reason); i++)
      long_reason[i] = "\xe2\x82\xac"[(i - 1) % 3];
    script_init(&s, NX_WS_ROLE_SERVER);
    clen = nx_ws_close_payload(out, 1000, long_reason, sizeof(long_reason) - 2);
    CHECK_EQ(clen, 2 + 121);
    ctrl_frame(&s, NX_WS_OP_CLOSE, out, clen);
    REPLAY("close payload round trip, cut mid-character", &s);
    script_free(&s);
  }
}
