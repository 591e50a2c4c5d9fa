/* Many timeouts on one libuv timer: a binary min-heap of deadlines (ms of
 * loop time). A node is embedded in its owner (a connection costs 16 bytes
 * instead of a uv_timer_t's 152); the queue's one callback gets the node. */
#ifndef NX_TIMERQ_H
#define NX_TIMERQ_H

#include <stdint.h>
#include <uv.h>

typedef struct {
  uint64_t due;  /* loop time (uv_now) at which it fires */
  uint32_t slot; /* its index in the heap plus one; 0: not armed */
} nx_tnode_t;

typedef struct nx_timerq_s nx_timerq_t;
typedef void (*nx_tfire_t)(nx_tnode_t *n);

struct nx_timerq_s {
  uv_timer_t timer; /* armed for the earliest deadline, stopped when empty */
  nx_tfire_t fire;
  nx_tnode_t **heap;
  uint32_t n, cap;
  uint32_t reserved; /* owners that may arm a node: the heap has room for all */
};

void nx_timerq_init(nx_timerq_t *q, uv_loop_t *loop, nx_tfire_t fire);
/* An owner of a node comes (reserve: -1 when out of memory) or goes
 * (release, its node disarmed). Arming then never needs memory. */
int nx_timerq_reserve(nx_timerq_t *q);
void nx_timerq_release(nx_timerq_t *q);
/* Arms n to fire ms (at least 1) from now, re-arming it if it was armed. */
void nx_timerq_start(nx_timerq_t *q, nx_tnode_t *n, uint64_t ms);
/* Disarms n; nothing if it was not armed. */
void nx_timerq_stop(nx_timerq_t *q, nx_tnode_t *n);
/* Frees the heap; the uv_timer_t is the owner's to close. */
void nx_timerq_free(nx_timerq_t *q);

#endif
