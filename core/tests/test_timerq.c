/* Tests of the timer queue (core/timerq.c) on a real libuv loop: deadlines
 * fire in order, a stop or a re-arm takes effect, and a node re-armed from
 * its callback fires again later, not in the same pass. */
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "test.h"
#include "timerq.h"

typedef struct {
  nx_tnode_t node;
  int id;
  int rearm; /* re-arm this many more times from the callback */
} item_t;

static int fired[64];
static int nfired;
static nx_timerq_t *cur_q;

static void on_fire(nx_tnode_t *n) {
  item_t *it = (item_t *)((char *)n - offsetof(item_t, node));
  if (nfired < 64)
    fired[nfired++] = it->id;
  if (it->rearm > 0) {
    it->rearm--;
    nx_timerq_start(cur_q, &it->node, 0);
  }
}

static void setup(uv_loop_t *loop, nx_timerq_t *q, int reserve) {
  int i;
  uv_loop_init(loop);
  nx_timerq_init(q, loop, on_fire);
  cur_q = q;
  nfired = 0;
  for (i = 0; i < reserve; i++)
    CHECK(nx_timerq_reserve(q) == 0);
}

static void teardown(uv_loop_t *loop, nx_timerq_t *q) {
  uv_close((uv_handle_t *)&q->timer, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  nx_timerq_free(q);
  CHECK(uv_loop_close(loop) == 0);
}

TEST(timerq_fires_in_deadline_order) {
  uv_loop_t loop;
  nx_timerq_t q;
  /* Armed out of order, with ties; 100 nodes make the heap several levels deep. */
  static item_t items[100];
  int i, ok = 1;
  setup(&loop, &q, 100);
  for (i = 0; i < 100; i++) {
    items[i].id = i;
    items[i].rearm = 0;
    items[i].node.slot = 0;
    nx_timerq_start(&q, &items[i].node, (uint64_t)(1 + (i * 37) % 50));
  }
  CHECK_EQ(q.n, 100);
  /* Stop every tenth one: it must never fire. */
  for (i = 0; i < 100; i += 10)
    nx_timerq_stop(&q, &items[i].node);
  CHECK_EQ(q.n, 90);
  uv_run(&loop, UV_RUN_DEFAULT); /* returns once nothing is armed */
  CHECK_EQ(nfired, 64);          /* (only the first 64 are recorded) */
  for (i = 1; i < 64; i++) {
    int a = fired[i - 1], b = fired[i];
    if ((1 + (a * 37) % 50) > (1 + (b * 37) % 50))
      ok = 0;
  }
  CHECK(ok);
  for (i = 0; i < 64; i++)
    CHECK(fired[i] % 10 != 0);
  CHECK_EQ(q.n, 0);
  teardown(&loop, &q);
}

TEST(timerq_rearm_moves_a_deadline) {
  uv_loop_t loop;
  nx_timerq_t q;
  item_t a = {{0, 0}, 1, 0}, b = {{0, 0}, 2, 0}, c = {{0, 0}, 3, 0};
  setup(&loop, &q, 3);
  nx_timerq_start(&q, &a.node, 5);
  nx_timerq_start(&q, &b.node, 10);
  nx_timerq_start(&q, &c.node, 15);
  nx_timerq_start(&q, &a.node, 20); /* later: now the last */
  nx_timerq_start(&q, &c.node, 1);  /* earlier: now the first */
  CHECK_EQ(q.n, 3);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(nfired, 3);
  CHECK_EQ(fired[0], 3);
  CHECK_EQ(fired[1], 2);
  CHECK_EQ(fired[2], 1);
  teardown(&loop, &q);
}

TEST(timerq_rearm_from_callback_fires_again_later) {
  uv_loop_t loop;
  nx_timerq_t q;
  item_t a = {{0, 0}, 7, 3};
  setup(&loop, &q, 1);
  nx_timerq_start(&q, &a.node, 0); /* 0 ms means 1 ms: never a busy loop */
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(nfired, 4); /* once, then three re-arms */
  CHECK_EQ(a.node.slot, 0);
  nx_timerq_release(&q);
  CHECK_EQ(q.reserved, 0);
  teardown(&loop, &q);
}

TEST(timerq_stop_of_the_last_node_lets_the_loop_end) {
  uv_loop_t loop;
  nx_timerq_t q;
  item_t a = {{0, 0}, 1, 0};
  setup(&loop, &q, 1);
  nx_timerq_start(&q, &a.node, 60000);
  nx_timerq_stop(&q, &a.node);
  nx_timerq_stop(&q, &a.node); /* twice: nothing */
  CHECK(!uv_is_active((uv_handle_t *)&q.timer));
  CHECK_EQ(uv_run(&loop, UV_RUN_NOWAIT), 0);
  CHECK_EQ(nfired, 0);
  teardown(&loop, &q);
}
