/* nx_loadgen: the load generator of scripts/bench.
 *
 * A real RFC 6455 client on libuv: it performs the opening handshake (and
 * checks Sec-WebSocket-Accept), sends masked frames built with the pure
 * layer's nx_ws_frame_header/nx_ws_mask, reads the server's frames with a
 * client-role nx_ws_parser and verifies every payload it gets back (content
 * and order). It measures latency per message and reads the server's CPU
 * time and memory from /proc/PID over the measured window.
 *
 * Modes:
 *   echo       N connections, K messages in flight on each, every echo checked
 *   connect    K concurrent loops of connect + handshake + close handshake
 *   idle       N connections opened and held; server RSS per connection
 *   broadcast  N subscribers + one publisher; every delivery checked
 *
 * Safety: loopback only (127.0.0.0/8), bounded in connections and time; it
 * stops by itself (a guard timer ends the run whatever happens). */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg_run.h"

lg_state_t lg;
const char *const MODE_NAMES[4] = {"echo", "connect", "idle", "broadcast"};

void logf_(const char *fmt, ...) {
  va_list ap;
  if (lg.quiet)
    return;
  va_start(ap, fmt);
  fprintf(stderr, "nx_loadgen: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void error_(long *counter, const char *fmt, ...) {
  va_list ap;
  (*counter)++;
  if (lg.first_error[0])
    return;
  va_start(ap, fmt);
  vsnprintf(lg.first_error, sizeof(lg.first_error), fmt, ap);
  va_end(ap);
  logf_("error: %s", lg.first_error);
}

int counts_as_failure(void) {
  return lg.err_verify || lg.err_protocol || lg.err_closed ||
         (lg.mode != MODE_IDLE && (lg.err_connect || lg.err_handshake || lg.err_timeout));
}

/* A failure that makes the figures meaningless ends the run early. */
void fail_run(void) {
  if (!lg.aborted && counts_as_failure()) {
    lg.aborted = 1;
    if (lg.phase < PH_CLOSE)
      begin_close();
  }
}

/* ---- Phases ------------------------------------------------------------- */

static void phase_timer(double seconds, uv_timer_cb cb) {
  uv_timer_stop(&lg.t_phase);
  uv_timer_start(&lg.t_phase, cb, (uint64_t)(seconds * 1000.0 + 0.5), 0);
}

static void sample(lg_proc_t *s) {
  if (lg.server_pid > 0)
    lg_proc_sample(lg.server_pid, s);
}

static void on_drain_timeout(uv_timer_t *t) {
  (void)t;
  if (lg.phase == PH_DRAIN) {
    if (lg.outstanding > 0)
      error_(&lg.err_verify, "%ld message(s) never came back (waited %.0f s after the run)",
             lg.outstanding, lg.drain_timeout);
    begin_close();
  }
}

void check_drained(void) {
  if (lg.phase != PH_DRAIN)
    return;
  if (lg.mode == MODE_CONNECT ? lg.active_slots == 0 : lg.outstanding == 0)
    begin_close();
}

static void on_measure_end(uv_timer_t *t) {
  (void)t;
  lg.t_m1 = uv_hrtime();
  sample(&lg.s_m1);
  getrusage(RUSAGE_SELF, &lg.ru1);
  lg.phase = PH_DRAIN;
  logf_("measured %.2f s: %" PRIu64 " operations", (double)(lg.t_m1 - lg.t_m0) / 1e9, lg.ops);
  phase_timer(lg.drain_timeout, on_drain_timeout);
  check_drained();
}

static void on_warmup_end(uv_timer_t *t) {
  (void)t;
  lg.phase = PH_MEASURE;
  lg.nsubs_measured = lg.nsubs;
  getrusage(RUSAGE_SELF, &lg.ru0);
  sample(&lg.s_m0);
  lg.t_m0 = uv_hrtime();
  phase_timer(lg.duration, on_measure_end);
}

static void begin_traffic(uv_timer_t *t) {
  conn_t *c;
  (void)t;
  if (lg.mode == MODE_IDLE) {
    /* Memory once everything is connected and settled. */
    sample(&lg.s_connected);
    lg.phase = PH_WARMUP;
    on_warmup_end(NULL);
    return;
  }
  lg.phase = PH_WARMUP;
  if (lg.mode == MODE_ECHO) {
    for (c = lg.all; c; c = c->next) {
      int i;
      if (c->state != CS_OPEN)
        continue;
      for (i = 0; i < lg.inflight; i++)
        send_echo(c);
      flush(c);
    }
  } else if (lg.mode == MODE_BROADCAST) {
    pump_publisher();
    lg.pub_dirty = 0;
    if (lg.pub)
      flush(lg.pub);
  } else if (lg.mode == MODE_CONNECT) {
    int i;
    for (i = 0; i < lg.inflight && lg.phase == PH_WARMUP; i++)
      start_cycle();
  }
  if (lg.warmup > 0)
    phase_timer(lg.warmup, on_warmup_end);
  else
    on_warmup_end(NULL);
}

void all_connected(void) {
  if (lg.all_connected)
    return;
  lg.all_connected = 1;
  lg.t_connected = uv_hrtime();
  if (lg.mode != MODE_IDLE)
    sample(&lg.s_connected);
  logf_("%d connection(s) open in %.2f s (%d failed)", lg.connected,
        (double)(lg.t_connected - lg.t_begin) / 1e9, lg.failed);
  if (lg.mode == MODE_IDLE ? lg.connected == 0
                           : lg.connected < lg.target + (lg.mode == MODE_BROADCAST)) {
    if (!lg.first_error[0])
      error_(&lg.err_connect, "only %d of %d connections opened", lg.connected, lg.target);
    lg.aborted = 1;
    begin_close();
    return;
  }
  lg.phase = PH_SETTLE;
  phase_timer(lg.settle, begin_traffic);
}

void connect_next(void) {
  while (lg.phase == PH_CONNECT && lg.initiated < lg.target && lg.pending < lg.concurrency) {
    lg.initiated++;
    lg.pending++;
    start_conn(lg.mode == MODE_BROADCAST ? ROLE_SUB : lg.mode == MODE_IDLE ? ROLE_IDLE : ROLE_ECHO);
  }
  if (lg.phase == PH_CONNECT && lg.initiated == lg.target && lg.pending == 0 && !lg.all_connected) {
    if (lg.mode == MODE_BROADCAST && !lg.pub && lg.connected == lg.target) {
      lg.pending++;
      lg.pub = start_conn(ROLE_PUB);
    } else if (lg.mode != MODE_BROADCAST || lg.connected < lg.target) {
      all_connected();
    }
  }
}

void start_cycle(void) {
  lg.active_slots++;
  start_conn(ROLE_CYCLE);
}

static void on_close_timeout(uv_timer_t *t) {
  conn_t *c, *n;
  (void)t;
  for (c = lg.all; c; c = n) {
    n = c->next;
    conn_close(c);
  }
}

void begin_close(void) {
  conn_t *c, *n;
  if (lg.phase >= PH_CLOSE)
    return;
  if (lg.phase == PH_MEASURE || (lg.t_m0 && !lg.t_m1)) {
    lg.t_m1 = uv_hrtime();
    sample(&lg.s_m1);
    getrusage(RUSAGE_SELF, &lg.ru1);
  }
  lg.phase = PH_CLOSE;
  if (lg.nconns == 0) {
    end_run();
    return;
  }
  for (c = lg.all; c; c = n) {
    n = c->next;
    if (c->state == CS_OPEN)
      conn_start_close(c);
    else if (c->state < CS_OPEN)
      conn_close(c);
  }
  if (lg.phase == PH_CLOSE)
    phase_timer(lg.close_wait + 0.5, on_close_timeout);
}

static void on_sweep(uv_timer_t *t) {
  conn_t *c, *n;
  uint64_t now = uv_hrtime();
  static uint64_t last_progress;
  (void)t;
  for (c = lg.timed; c; c = n) {
    n = c->tnext;
    if (now < c->deadline)
      continue;
    if (c->state == CS_CONNECTING || c->state == CS_HANDSHAKE) {
      if (lg.phase < PH_CLOSE)
        error_(&lg.err_timeout, "connection %u: no %s within %.0f s", c->id,
               c->state == CS_CONNECTING ? "TCP connection" : "handshake answer", lg.hs_timeout);
    } else {
      lg.close_timeouts++;
    }
    conn_close(c);
  }
  if (lg.phase == PH_CONNECT && lg.target >= 5000 && now - last_progress > 2000000000ull) {
    last_progress = now;
    logf_("connecting: %d of %d open", lg.connected, lg.target);
  }
  fail_run();
}

static void on_guard(uv_timer_t *t) {
  (void)t;
  error_(&lg.err_timeout, "the run took longer than its time bound; stopping");
  lg.aborted = 1;
  if (lg.phase < PH_CLOSE)
    begin_close();
  else
    on_close_timeout(NULL);
  uv_timer_start(&lg.t_guard, on_close_timeout, 5000, 0);
}

static void on_signal(uv_signal_t *s, int signum) {
  (void)s;
  logf_("signal %d: stopping", signum);
  lg.aborted = 1;
  if (!lg.first_error[0])
    snprintf(lg.first_error, sizeof(lg.first_error), "interrupted by signal %d", signum);
  if (lg.phase < PH_CLOSE)
    begin_close();
  else
    on_close_timeout(NULL);
}

static void on_setup_timeout(uv_timer_t *t) {
  (void)t;
  if (lg.phase != PH_CONNECT)
    return;
  error_(&lg.err_timeout, "setup: only %d of %d connections open after %.0f s", lg.connected,
         lg.target, lg.setup_timeout);
  lg.aborted = 1;
  begin_close();
}

static void on_start_connect(uv_timer_t *t) {
  (void)t;
  lg.t_begin = uv_hrtime();
  if (lg.mode == MODE_CONNECT) {
    lg.all_connected = 1;
    lg.phase = PH_SETTLE;
    begin_traffic(NULL);
  } else {
    lg.phase = PH_CONNECT;
    phase_timer(lg.setup_timeout, on_setup_timeout);
    connect_next();
  }
}
/* ---- Options ------------------------------------------------------------ */

static int loopback_addr(const char *s, struct sockaddr_in *out, int port) {
  memset(out, 0, sizeof(*out));
  out->sin_family = AF_INET;
  out->sin_port = htons((uint16_t)port);
  if (strcmp(s, "localhost") == 0)
    s = "127.0.0.1";
  if (inet_pton(AF_INET, s, &out->sin_addr) != 1)
    return -1;
  return (ntohl(out->sin_addr.s_addr) >> 24) == 127 ? 0 : -1;
}

static void usage(FILE *f) {
  fprintf(
      f, "usage: nx_loadgen --url ws://127.0.0.1:PORT/path --mode echo|connect|idle|broadcast\n"
         "                  [--conns N] [--inflight K] [--size BYTES] [--binary [--random]]\n"
         "                  [--deflate]\n"
         "                  [--duration S] [--warmup S] [--server-pid PID]\n"
         "                  [--source-addrs 127.0.0.1,127.0.0.2,...] [--publish-path /pub]\n"
         "                  [--connect-concurrency N] [--settle S] [--setup-timeout S]\n"
         "                  [--drain-timeout S] [--spin] [--json] [--quiet]\n"
         "  echo       N connections, K messages in flight each; every echo is verified\n"
         "  connect    K concurrent loops of connect + handshake + close\n"
         "  idle       open N connections and hold them for --duration; server RSS per connection\n"
         "  broadcast  N subscribers on the URL's path, one publisher on --publish-path\n"
         "             keeping K messages in flight; deliveries/s and server CPU per delivery\n"
         "  --spin     poll the loop without sleeping (burns the client's core): latency\n"
         "             without the client's own wake-up from epoll_wait\n"
         "  --deflate  offer permessage-deflate as a browser does (messages are sent\n"
         "             uncompressed; compressed replies are inflated and verified)\n"
         "  --random   binary payloads of random bytes (which do not compress)\n"
         "Loopback only (127.0.0.0/8). Output: a summary, or JSON with --json.\n");
}

static double num(const char *s, const char *name, double lo, double hi) {
  char *end;
  double v = strtod(s, &end);
  if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
    fprintf(stderr, "nx_loadgen: %s must be a number in [%g, %g], got %s\n", name, lo, hi, s);
    exit(2);
  }
  return v;
}

static void parse_url(const char *url) {
  const char *p, *colon, *slash;
  size_t hl;
  if (strncmp(url, "ws://", 5) != 0) {
    fprintf(stderr, "nx_loadgen: --url must be ws://HOST:PORT/path (no TLS)\n");
    exit(2);
  }
  p = url + 5;
  slash = strchr(p, '/');
  if (!slash)
    slash = p + strlen(p);
  colon = memchr(p, ':', (size_t)(slash - p));
  hl = (size_t)((colon ? colon : slash) - p);
  if (hl == 0 || hl >= sizeof(lg.host)) {
    fprintf(stderr, "nx_loadgen: bad host in --url\n");
    exit(2);
  }
  memcpy(lg.host, p, hl);
  lg.host[hl] = '\0';
  lg.port = colon ? atoi(colon + 1) : 80;
  snprintf(lg.path, sizeof(lg.path), "%s", *slash ? slash : "/");
  if (lg.port <= 0 || lg.port > 65535 || loopback_addr(lg.host, &lg.dst, lg.port) != 0) {
    fprintf(stderr,
            "nx_loadgen: --url must point at a loopback address (127.0.0.0/8) with a port\n");
    exit(2);
  }
}

static void parse_sources(const char *list) {
  char buf[2048], *tok, *save = NULL;
  snprintf(buf, sizeof(buf), "%s", list);
  for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (lg.nsrc == MAX_SRC)
      break;
    if (loopback_addr(tok, &lg.src[lg.nsrc], 0) != 0) {
      fprintf(stderr, "nx_loadgen: source address %s is not in 127.0.0.0/8\n", tok);
      exit(2);
    }
    lg.nsrc++;
  }
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"url", required_argument, 0, 'u'},
                                       {"mode", required_argument, 0, 'm'},
                                       {"conns", required_argument, 0, 'c'},
                                       {"inflight", required_argument, 0, 'k'},
                                       {"size", required_argument, 0, 's'},
                                       {"binary", no_argument, 0, 'b'},
                                       {"deflate", no_argument, 0, 'Z'},
                                       {"random", no_argument, 0, 'R'},
                                       {"duration", required_argument, 0, 'd'},
                                       {"warmup", required_argument, 0, 'w'},
                                       {"server-pid", required_argument, 0, 'p'},
                                       {"source-addrs", required_argument, 0, 'a'},
                                       {"publish-path", required_argument, 0, 'P'},
                                       {"json", no_argument, 0, 'j'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"spin", no_argument, 0, 'L'},
                                       {"connect-concurrency", required_argument, 0, 'C'},
                                       {"settle", required_argument, 0, 'S'},
                                       {"setup-timeout", required_argument, 0, 'T'},
                                       {"drain-timeout", required_argument, 0, 'D'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int ch, i;
  const char *url = NULL;
  struct rlimit rl;
  double bound;

  lg.mode = MODE_ECHO;
  lg.conns = 1;
  lg.inflight = 1;
  lg.size = 32;
  lg.duration = 5;
  lg.warmup = 1;
  lg.settle = -1;
  lg.setup_timeout = 120;
  lg.close_wait = 2;
  lg.hs_timeout = 10;
  lg.drain_timeout = 10;
  lg.concurrency = 256;
  snprintf(lg.pub_path, sizeof(lg.pub_path), "/pub");

  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'u':
      url = optarg;
      break;
    case 'm':
      for (i = 0; i < 4 && strcmp(optarg, MODE_NAMES[i]) != 0; i++) {
      }
      if (i == 4) {
        fprintf(stderr, "nx_loadgen: unknown mode %s\n", optarg);
        return 2;
      }
      lg.mode = i;
      break;
    case 'c':
      lg.conns = (int)num(optarg, "--conns", 1, MAX_CONNS);
      break;
    case 'k':
      lg.inflight = (int)num(optarg, "--inflight", 1, MAX_INFLIGHT);
      break;
    case 's':
      lg.size = (size_t)num(optarg, "--size", 1, MAX_SIZE);
      break;
    case 'Z':
      lg.deflate = 1;
      break;
    case 'R':
      lg.random = 1;
      break;
    case 'b':
      lg.binary = 1;
      break;
    case 'd':
      lg.duration = num(optarg, "--duration", 0.1, 600);
      break;
    case 'w':
      lg.warmup = num(optarg, "--warmup", 0, 60);
      break;
    case 'p':
      lg.server_pid = (int)num(optarg, "--server-pid", 1, 1 << 30);
      break;
    case 'a':
      parse_sources(optarg);
      break;
    case 'P':
      snprintf(lg.pub_path, sizeof(lg.pub_path), "%s", optarg);
      break;
    case 'j':
      lg.json = 1;
      break;
    case 'q':
      lg.quiet = 1;
      break;
    case 'L':
      lg.spin = 1;
      break;
    case 'C':
      lg.concurrency = (int)num(optarg, "--connect-concurrency", 1, 65536);
      break;
    case 'S':
      lg.settle = num(optarg, "--settle", 0, 60);
      break;
    case 'T':
      lg.setup_timeout = num(optarg, "--setup-timeout", 1, 600);
      break;
    case 'D':
      lg.drain_timeout = num(optarg, "--drain-timeout", 0.1, 120);
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return 2;
    }
  }
  if (!url || optind != argc) {
    usage(stderr);
    return 2;
  }
  parse_url(url);
  if (lg.settle < 0)
    lg.settle = lg.mode == MODE_IDLE ? 1.0 : lg.mode == MODE_BROADCAST ? 0.3 : 0.0;
  if (lg.mode == MODE_IDLE)
    lg.warmup = 0;

  /* As many descriptors as the hard limit allows. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  if (lg.mode != MODE_CONNECT && (rlim_t)lg.conns + 32 > rl.rlim_cur) {
    fprintf(stderr,
            "nx_loadgen: %d connections need %d descriptors; RLIMIT_NOFILE is %llu (hard limit)\n",
            lg.conns, lg.conns + 32, (unsigned long long)rl.rlim_cur);
    return 3;
  }
  if (lg.mode != MODE_CONNECT && lg.nsrc <= 1 && lg.conns > 28000)
    logf_("warning: %d connections from one source address may exhaust the ephemeral ports; use "
          "--source-addrs",
          lg.conns);

  lg.tmpl = malloc(lg.size + 64);
  if (!lg.tmpl)
    return 4;
  if (lg.random && !lg.binary) {
    fprintf(stderr, "nx_loadgen: --random needs --binary (random bytes are not UTF-8)\n");
    return 2;
  }
  {
    uint64_t r = 0x243f6a8885a308d3ULL; /* the same bytes in every run */
    for (i = 0; i < (int)(lg.size + 64); i++)
      lg.tmpl[i] =
          lg.random ? (uint8_t)(lg_rand(&r) >> 56) : (uint8_t)('a' + (i * 7 + (i >> 6)) % 26);
  }
  lg.rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
  if (!lg.rng)
    lg.rng = 1;
  lg_hist_init(&lg.lat);
  lg_hist_init(&lg.hs_lat);
  lg.target = lg.conns;
  if (lg.mode == MODE_BROADCAST) {
    lg.slots = calloc((size_t)lg.inflight, sizeof(slot_t));
    if (!lg.slots)
      return 4;
  }
  signal(SIGPIPE, SIG_IGN);

  lg.loop = uv_default_loop();
  uv_timer_init(lg.loop, &lg.t_phase);
  uv_timer_init(lg.loop, &lg.t_sweep);
  uv_timer_init(lg.loop, &lg.t_guard);
  uv_signal_init(lg.loop, &lg.sig_int);
  uv_signal_init(lg.loop, &lg.sig_term);
  uv_signal_start(&lg.sig_int, on_signal, SIGINT);
  uv_signal_start(&lg.sig_term, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&lg.sig_int);
  uv_unref((uv_handle_t *)&lg.sig_term);
  uv_timer_start(&lg.t_sweep, on_sweep, 50, 50);
  bound = lg.setup_timeout + lg.settle + lg.warmup + lg.duration + lg.drain_timeout +
          lg.close_wait + 10;
  uv_timer_start(&lg.t_guard, on_guard, (uint64_t)(bound * 1000), 0);

  sample(&lg.s_base);
  if (lg.server_pid > 0 && !lg.s_base.ok) {
    fprintf(stderr, "nx_loadgen: cannot read /proc/%d/stat\n", lg.server_pid);
    return 2;
  }
  on_start_connect(NULL);
  if (lg.spin) {
    /* Poll instead of sleeping in epoll_wait: a reply is seen as soon as it
     * lands, without the scheduler's wake-up of this process. */
    while (uv_run(lg.loop, UV_RUN_NOWAIT)) {
    }
  } else {
    uv_run(lg.loop, UV_RUN_DEFAULT);
  }
  report();
  return (!counts_as_failure() && !lg.aborted) ? 0 : 1;
}
