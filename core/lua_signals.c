/* nexlua.core's signals: on_signal (SIGINT, SIGTERM and SIGHUP to a Lua
 * function in a task), the second stop signal while the loop is held, and
 * a SIGHUP that comes before the app is loaded. */
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lauxlib.h"
#include "log.h"
#include "nx.h"

/* A loop held by a handler (a busy loop, a blocking call) runs no signal
 * callback, so a second SIGINT or SIGTERM is also watched for outside the
 * loop, in front of libuv's signal handler: one that comes while the first
 * is still waiting for the loop ends the process at once; one that comes
 * after the loop took the first (a shutdown under way) ends it if the loop
 * has not taken it within a second (a hook or a handler's cleanup that
 * holds the loop). Otherwise the loop takes it, and the app logs it. */
static volatile sig_atomic_t unseen_stops;  /* stop signals the loop has not taken */
static volatile sig_atomic_t stop_taken;    /* the loop took one: a shutdown is under way */
static volatile sig_atomic_t last_stop;     /* its signal number */
static struct sigaction uv_stop_handler[2]; /* libuv's, for SIGINT and SIGTERM */

/* n as digits digits into p (no stdio in a signal handler). */
static char *put_num(char *p, long n, int digits) {
  int i;
  for (i = digits - 1; i >= 0; i--, n /= 10)
    p[i] = (char)('0' + n % 10);
  return p + digits;
}

/* The log's "2026-11-26T16:54:09.044Z " for now, async-signal-safely (the
 * civil date from days since 1970: H. Hinnant's algorithm). */
static char *put_timestamp(char *p) {
  struct timespec ts;
  long days, secs, era, doe, yoe, doy, mp, y, m, d;
  clock_gettime(CLOCK_REALTIME, &ts);
  days = (long)(ts.tv_sec / 86400) + 719468;
  secs = (long)(ts.tv_sec % 86400);
  era = days / 146097;
  doe = days - era * 146097;
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = yoe + era * 400 + (m <= 2);
  p = put_num(p, y, 4), *p++ = '-', p = put_num(p, m, 2), *p++ = '-', p = put_num(p, d, 2);
  *p++ = 'T';
  p = put_num(p, secs / 3600, 2), *p++ = ':', p = put_num(p, secs / 60 % 60, 2), *p++ = ':';
  p = put_num(p, secs % 60, 2), *p++ = '.', p = put_num(p, ts.tv_nsec / 1000000, 3);
  *p++ = 'Z', *p++ = ' ';
  return p;
}

static void stop_now(void) {
  static const char what[] = " while the event loop is held (a handler or hook that does not "
                             "yield?): exiting now\n";
  char line[256], *p = put_timestamp(line);
  size_t tag = strlen(nx_log_tag);
  ssize_t w;
  memcpy(p, "WARN ", 5), p += 5;
  if (tag < 32)
    memcpy(p, nx_log_tag, tag), p += tag;
  memcpy(p, "second ", 7), p += 7;
  memcpy(p, last_stop == SIGINT ? "SIGINT" : "SIGTERM", last_stop == SIGINT ? 6 : 7);
  p += last_stop == SIGINT ? 6 : 7;
  memcpy(p, what, sizeof(what) - 1), p += sizeof(what) - 1;
  w = write(2, line, (size_t)(p - line));
  (void)w;
  _exit(1);
}

static void on_stop_alarm(int signum) {
  (void)signum;
  if (unseen_stops > 0)
    stop_now();
}

/* One stop request may come twice: `timeout(1)` signals its child and
 * then its own process group, `kill` may be given a pid twice, systemctl
 * stop signals every process of a service while the master of --workers
 * forwards what it gets to its workers. A stop signal within SAME_STOP_MS
 * of the first is that same request, taken no further; a later one is a
 * second signal. (A window, not a count per sender: two pending copies of
 * one signal are delivered once, so a copy may never come, and a real
 * second signal later must not pass for it.) The handler runs with every
 * signal blocked (libuv's sa_mask): no nesting. The master of --workers
 * asks the same from its own handler (process.c), which blocks the stop
 * signals too. */
#define SAME_STOP_MS 250
static volatile sig_atomic_t stops_seen;
static volatile long first_stop_ms; /* CLOCK_MONOTONIC, of the first */

int nx_same_stop(void) {
  struct timespec ts;
  long now;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* (async-signal-safe) */
  now = (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  if (stops_seen && now - first_stop_ms <= SAME_STOP_MS)
    return 1;
  if (!stops_seen)
    first_stop_ms = now;
  stops_seen = 1;
  return 0;
}

static void on_stop_signal(int signum, siginfo_t *si, void *ctx) {
  (void)si, (void)ctx;
  if (nx_same_stop())
    return;
  last_stop = signum;
  if (unseen_stops++ > 0)
    stop_now();
  if (stop_taken)
    alarm(1);
  uv_stop_handler[signum == SIGINT ? 0 : 1].sa_handler(signum);
}

/* Puts on_stop_signal in front of libuv's handlers (installed by
 * uv_signal_start, which does not install them again while its watchers
 * live). */
static void wrap_stop_signals(void) {
  int sigs[2] = {SIGINT, SIGTERM}, i;
  struct sigaction sa;
  for (i = 0; i < 2; i++) {
    if (sigaction(sigs[i], NULL, &uv_stop_handler[i]) != 0 ||
        (uv_stop_handler[i].sa_flags & SA_SIGINFO) || /* (ours, or not libuv's) */
        uv_stop_handler[i].sa_handler == SIG_DFL || uv_stop_handler[i].sa_handler == SIG_IGN)
      continue;
    sa = uv_stop_handler[i];
    sa.sa_sigaction = on_stop_signal;
    sa.sa_flags |= SA_SIGINFO;
    sigaction(sigs[i], &sa, NULL);
  }
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_stop_alarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
}

/* A SIGHUP before core.on_signal (the app still loading): noted, and raised
 * again once libuv's handler is there. Not blocked instead: a blocked
 * signal stays blocked in the processes the app starts (os.execute), for
 * their whole life; a caught one goes back to its default in them. */
static volatile sig_atomic_t early_hup;

static void on_early_hup(int signum) {
  (void)signum;
  early_hup = 1;
}

int nx_take_early_hup(void) {
  int got = early_hup;
  early_hup = 0;
  return got;
}

void nx_catch_early_hup(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_early_hup;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGHUP, &sa, NULL);
}

static void on_signal(uv_signal_t *h, int signum) {
  nx_rt_t *rt = (nx_rt_t *)h->data;
  const char *name = signum == SIGINT ? "SIGINT" : signum == SIGHUP ? "SIGHUP" : "SIGTERM";
  if (signum != SIGHUP) {
    unseen_stops = 0; /* the loop has it */
    stop_taken = 1;
    alarm(0);
  }
  if (rt->signal_ref == LUA_NOREF) {
    if (signum != SIGHUP)
      uv_stop(rt->loop);
    return;
  }
  nx_task_start(rt, rt->signal_ref, name, NULL);
  nx_rt_run_ready(rt);
}

/* on_signal(fn): fn(name) runs in a task on SIGINT, SIGTERM and SIGHUP. */
static int l_on_signal(lua_State *L) {
  nx_rt_t *rt = nx_rt_get(L);
  luaL_checktype(L, 1, LUA_TFUNCTION);
  nx_lua_set_ref(L, 1, &rt->signal_ref);
  if (!rt->sigint.data) {
    uv_signal_t *hs[3] = {&rt->sigint, &rt->sigterm, &rt->sighup};
    int sigs[3] = {SIGINT, SIGTERM, SIGHUP}, i;
    for (i = 0; i < 3; i++) {
      uv_signal_init(rt->loop, hs[i]);
      hs[i]->data = rt;
      /* (kept referenced: a server waits for its signals, so the loop
       * does not end by itself while a hook waits on something nobody will
       * wake; it ends by core.stop) */
      uv_signal_start(hs[i], on_signal, sigs[i]);
    }
    wrap_stop_signals();
    /* A worker of --workers starts with these three blocked, so that a
     * signal its master forwards early waits for the handlers instead of
     * killing it (process.c). Now they are there. */
    nx__unblock_signals();
    if (nx_take_early_hup())
      raise(SIGHUP);
  }
  return 0;
}

/* Adds on_signal to the nexlua.core table on top of the stack. */
void nx_lua_signals_open(lua_State *L) {
  static const luaL_Reg fns[] = {{"on_signal", l_on_signal}, {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
