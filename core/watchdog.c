/* The loop watchdog: a thread that notices a Lua coroutine running for a
 * long time without waiting. While one does, the loop serves nobody: no
 * handshake is answered, no message read, no signal handled. The server
 * cannot take the loop back (compiled Lua code checks for nothing), but it
 * can say so: a WARN entry once the hold passes 2 s, from this thread,
 * and one when it ends, from the loop, with how long it lasted and where
 * the coroutine went on to wait.
 *
 * The loop's side is two increments of rt->held_seq per resume (odd while
 * Lua runs: nx_task_resume) and a test of rt->held_warned_seq after it.
 * This thread looks every NX_HELD_TICK_MS: the same odd value at
 * NX_HELD_WARN_TICKS looks in a row is one resume that has not returned.
 * Ticks, not the clock: a process stopped (SIGSTOP, a debugger) has its
 * thread stopped too, and its stopped time is no hold. The thread never
 * touches the task or its connection (the resume may end, and free them,
 * while it looks): the loop names them once the hold is over. */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nx.h"

#define NX_HELD_TICK_MS 100
#define NX_HELD_WARN_TICKS 20 /* 2 s */

struct nx_watchdog_s {
  nx_rt_t *rt;
  uv_thread_t thread;
  uv_mutex_t mu;
  uv_cond_t cv;
  int stop;
};

/* Who held the loop (on the loop, where the task is safe to look at): a
 * connection's handler (its client's address), or a task. */
static void describe(nx_task_t *t, char *buf, size_t n) {
  char peer[80];
  if (t && t->conn)
    snprintf(buf, n, "the handler of client %s", nx_conn_peer_name(t->conn, peer, sizeof(peer)));
  else
    snprintf(buf, n, "a task or hook");
}

static void watch(void *arg) {
  nx_watchdog_t *w = (nx_watchdog_t *)arg;
  nx_rt_t *rt = w->rt;
  uint64_t seen = 0, since = uv_hrtime();
  unsigned ticks = 0;
  uv_mutex_lock(&w->mu);
  while (!w->stop) {
    uint64_t seq;
    /* (a spurious or early wake only counts a tick sooner) */
    uv_cond_timedwait(&w->cv, &w->mu, (uint64_t)NX_HELD_TICK_MS * 1000000u);
    if (w->stop)
      break;
    seq = __atomic_load_n(&rt->held_seq, __ATOMIC_ACQUIRE);
    if (seq != seen || !(seq & 1)) {
      seen = seq;
      since = uv_hrtime();
      ticks = 0;
      continue;
    }
    if (++ticks == NX_HELD_WARN_TICKS) {
      __atomic_store_n(&rt->held_since, since, __ATOMIC_RELEASE);
      __atomic_store_n(&rt->held_warned_seq, seq, __ATOMIC_RELEASE);
      nx_log(NX_LOG_WARN,
             "the event loop has been held for %.1f s by a handler, task or hook running Lua "
             "without a wait: nothing else is served until it waits (split long work with "
             "nexlua.sleep(0))",
             (double)(NX_HELD_WARN_TICKS * NX_HELD_TICK_MS) / 1000.0);
    }
  }
  uv_mutex_unlock(&w->mu);
}

nx_watchdog_t *nx_watchdog_start(nx_rt_t *rt) {
  nx_watchdog_t *w = (nx_watchdog_t *)calloc(1, sizeof(*w));
  if (!w)
    return NULL;
  w->rt = rt;
  if (uv_mutex_init(&w->mu)) {
    free(w);
    return NULL;
  }
  if (uv_cond_init(&w->cv)) {
    uv_mutex_destroy(&w->mu);
    free(w);
    return NULL;
  }
  if (uv_thread_create(&w->thread, watch, w)) {
    uv_cond_destroy(&w->cv);
    uv_mutex_destroy(&w->mu);
    free(w);
    return NULL;
  }
  return w;
}

void nx_watchdog_stop(nx_watchdog_t *w) {
  if (!w)
    return;
  uv_mutex_lock(&w->mu);
  w->stop = 1;
  uv_cond_signal(&w->cv);
  uv_mutex_unlock(&w->mu);
  uv_thread_join(&w->thread);
  uv_cond_destroy(&w->cv);
  uv_mutex_destroy(&w->mu);
  free(w);
}

/* On the loop, after the resume that held it (the watchdog warned): how
 * long the hold lasted, and where the coroutine then waited, if it did. */
void nx_watchdog_held_ended(nx_rt_t *rt, nx_task_t *t) {
  char who[128], at[280], where[300] = "";
  double secs = (double)(uv_hrtime() - __atomic_load_n(&rt->held_since, __ATOMIC_ACQUIRE)) / 1e9;
  describe(t, who, sizeof(who));
  if (t && nx_task_where(t, at, sizeof(at)))
    snprintf(where, sizeof(where), "; it then waited at %s", at);
  nx_log(NX_LOG_WARN, "the event loop was held for %.1f s by %s%s", secs, who, where);
}

int nx_watchdog_pause(nx_rt_t *rt) {
  if (!(rt->held_seq & 1))
    return 0;
  __atomic_store_n(&rt->held_seq, rt->held_seq + 1, __ATOMIC_RELEASE);
  return 1;
}

void nx_watchdog_unpause(nx_rt_t *rt, int paused) {
  if (paused)
    __atomic_store_n(&rt->held_seq, rt->held_seq + 1, __ATOMIC_RELEASE);
}
