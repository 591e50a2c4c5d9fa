/* What conn.c, conn_frames.c and conn_output.c share about a connection,
 * and nothing else includes: conn.c owns its life and request, conn_frames.c
 * turns its frames into messages, conn_output.c queues and writes them. */
#ifndef NX_CONN_PRIV_H
#define NX_CONN_PRIV_H

#include "nx.h"

/* conn.c */
/* The code and reason the app is told (the first cause only: see conn.c). */
void nx_conn_set_close(nx_conn_t *c, uint16_t code, const char *reason, size_t rlen);
void nx_conn_forget_close(nx_conn_t *c);     /* a cause that turned out not to be the first */
void nx_conn_arm(nx_conn_t *c, uint64_t ms); /* its one timeout, in ms from now */
void nx_conn_start_reading(nx_conn_t *c);
void nx_conn_stop_reading(nx_conn_t *c);
void nx_conn_wake_waiters(nx_conn_t *c);
void nx_conn_really_close(nx_conn_t *c); /* closes its handles; freed in their callback */
void nx_conn_start_linger(nx_conn_t *c); /* our last bytes and FIN are out: read to discard */
/* A whole message parsed: 1 when c has had its share of this turn and is
 * held until the next (its parser must stop: the rest waits in pending). */
int nx_conn_count_message(nx_conn_t *c);
/* "ip:port" (or "[ip6]:port") of the peer, for the log. */

/* conn_output.c */
void nx_conn_out_free(nx_conn_t *c); /* the output queue, at the end */
/* Drops c (-1) if its output is over --write-limit once the socket has
 * taken what it takes now; else 0. */
int nx_conn_check_room(nx_conn_t *c);

/* conn_frames.c */
void nx_conn_parse_frames(nx_conn_t *c, uint8_t *data, size_t len);
int nx_conn_keep_pending(nx_conn_t *c, const void *data, size_t len);
void nx_conn_resume_reading(nx_conn_t *c);
void nx_conn_parse_pending(nx_conn_t *c); /* parses what was kept, then forgets it */

#endif
