/* A min-heap of deadlines on one uv_timer_t (see timerq.h). Nodes fire in
 * deadline order. A deadline is at least 1 ms away, so a node re-armed from
 * its own callback never fires twice in one pass. */
#include "timerq.h"

#include <stdlib.h>

static void put(nx_timerq_t *q, uint32_t i, nx_tnode_t *n) {
  q->heap[i] = n;
  n->slot = i + 1;
}

static void sift_up(nx_timerq_t *q, uint32_t i) {
  nx_tnode_t *n = q->heap[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 2;
    if (q->heap[parent]->due <= n->due)
      break;
    put(q, i, q->heap[parent]);
    i = parent;
  }
  put(q, i, n);
}

static void sift_down(nx_timerq_t *q, uint32_t i) {
  nx_tnode_t *n = q->heap[i];
  for (;;) {
    uint32_t c = 2 * i + 1;
    if (c >= q->n)
      break;
    if (c + 1 < q->n && q->heap[c + 1]->due < q->heap[c]->due)
      c++;
    if (n->due <= q->heap[c]->due)
      break;
    put(q, i, q->heap[c]);
    i = c;
  }
  put(q, i, n);
}

static void on_timer(uv_timer_t *t);

/* Arms the libuv timer for the earliest deadline, or stops it. */
static void rearm(nx_timerq_t *q) {
  uint64_t now, due;
  if (q->n == 0) {
    uv_timer_stop(&q->timer);
    return;
  }
  now = uv_now(q->timer.loop);
  due = q->heap[0]->due;
  uv_timer_start(&q->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *t) {
  nx_timerq_t *q = (nx_timerq_t *)t->data;
  uint64_t now = uv_now(t->loop);
  while (q->n && q->heap[0]->due <= now) {
    nx_tnode_t *n = q->heap[0];
    nx_timerq_stop(q, n);
    q->fire(n);
  }
  rearm(q);
}

void nx_timerq_init(nx_timerq_t *q, uv_loop_t *loop, nx_tfire_t fire) {
  uv_timer_init(loop, &q->timer);
  q->timer.data = q;
  q->fire = fire;
  q->heap = NULL;
  q->n = q->cap = q->reserved = 0;
}

int nx_timerq_reserve(nx_timerq_t *q) {
  if (q->reserved == q->cap) {
    uint32_t cap = q->cap ? q->cap * 2 : 64;
    nx_tnode_t **h = (nx_tnode_t **)realloc(q->heap, cap * sizeof(*h));
    if (!h)
      return -1;
    q->heap = h;
    q->cap = cap;
  }
  q->reserved++;
  return 0;
}

void nx_timerq_release(nx_timerq_t *q) { q->reserved--; }

void nx_timerq_start(nx_timerq_t *q, nx_tnode_t *n, uint64_t ms) {
  uint64_t due;
  int earliest;
  due = uv_now(q->timer.loop) + (ms ? ms : 1);
  if (n->slot) {
    uint32_t i = n->slot - 1;
    uint64_t old = n->due;
    n->due = due;
    if (due < old)
      sift_up(q, i);
    else
      sift_down(q, i);
  } else {
    n->due = due; /* room: its owner reserved it */
    put(q, q->n++, n);
    sift_up(q, q->n - 1);
  }
  earliest = q->heap[0] == n;
  if (earliest || !uv_is_active((uv_handle_t *)&q->timer))
    rearm(q);
}

void nx_timerq_stop(nx_timerq_t *q, nx_tnode_t *n) {
  uint32_t i;
  nx_tnode_t *last;
  if (!n->slot)
    return;
  i = n->slot - 1;
  n->slot = 0;
  last = q->heap[--q->n];
  if (q->n == 0) {
    uv_timer_stop(&q->timer); /* an armed timer would keep the loop alive */
    return;
  }
  if (i == q->n)
    return; /* it was the last one */
  put(q, i, last);
  if (i > 0 && q->heap[(i - 1) / 2]->due > last->due)
    sift_up(q, i);
  else
    sift_down(q, i);
  /* The libuv timer may now be early: it re-arms itself when it fires. */
}

void nx_timerq_free(nx_timerq_t *q) {
  free(q->heap);
  q->heap = NULL;
  q->n = q->cap = q->reserved = 0;
}
