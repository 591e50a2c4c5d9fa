/* Topics across machines (--redis): every nexlua process connected to the
 * same Redis server shares its topics with the others, through Redis
 * pub/sub. hiredis runs on the process's libuv loop; this header does not
 * expose it.
 *
 * Two connections: one in subscribe mode, one for PUBLISH. A topic is the
 * channel "nexlua:" + topic name. The subscriber connection SUBSCRIBEs a
 * channel when its topic gets its first subscriber in this process and
 * UNSUBSCRIBEs it when the last one leaves (pubsub.c calls
 * nx_redis_topic_added / nx_redis_topic_removed while rt->redis is set).
 *
 * A message on a channel: one byte 't' (text) or 'b' (binary), the
 * publishing process's node id (16 lowercase hex digits, random per
 * process), then the data, binary-safe. A process delivers to its local
 * subscribers only what other processes published: its own messages
 * come back from Redis and are ignored (they were delivered locally at the
 * publish). Other programs may publish in this format too (any 16 bytes as
 * the node id); a message not in it is ignored, as is text that is not
 * UTF-8.
 *
 * Delivery is at most once: while a connection to Redis is down (lost,
 * or not yet up again), published messages are dropped (counted; the
 * first is logged, and their number once the outage is over), never
 * buffered (but while the first connections are being made, they wait in
 * hiredis); every address of the host is tried in turn; the connections come back with a
 * backoff from 0.1 s doubling to 5 s, and the subscriber connection
 * subscribes again to every current topic. */
#ifndef NX_REDIS_H
#define NX_REDIS_H

#include <stddef.h>
#include <stdint.h>

typedef struct nx_rt_s nx_rt_t;
typedef struct nx_redis_s nx_redis_t;

#define NX_REDIS_PREFIX "nexlua:"
#define NX_REDIS_NODE_ID_LEN 16
#define NX_REDIS_HEADER (1 + NX_REDIS_NODE_ID_LEN)
/* Bytes of commands queued for Redis past which publishes are dropped
 * (Redis connected but not reading fast enough). */
#define NX_REDIS_MAX_QUEUED (64u * 1024 * 1024)
/* A larger message is not sent to Redis: its default output-buffer limit
 * for subscribers (32 MiB) would close every subscriber of the channel. */
#define NX_REDIS_MAX_MESSAGE (16u * 1024 * 1024)

typedef struct {
  const char *host; /* name or address */
  int port;
  const char *username; /* NULL: AUTH with the password alone (or no AUTH) */
  const char *password; /* NULL: no AUTH */
  int check;            /* first check that Redis answers (blocking, at start-up) */
} nx_redis_opts_t;

typedef struct {
  int connected;      /* both connections are up */
  uint64_t published; /* messages sent to Redis */
  uint64_t received;  /* messages from other processes delivered here */
  uint64_t dropped;   /* not sent: disconnected, too large, refused, over the queue cap */
} nx_redis_stats_t;

/* Resolves the host once (so that no reconnect waits for DNS on the loop)
 * and, with o->check, checks that Redis answers (a blocking connect with a
 * timeout, AUTH when asked, PING); then opens the two connections on the
 * loop. 0, or -1 with a message in err. Once only per runtime. */
int nx_redis_start(nx_rt_t *rt, const nx_redis_opts_t *o, char *err, size_t errlen);
/* Only the blocking check (the master of --workers, before forking). */
int nx_redis_check(const nx_redis_opts_t *o, char *err, size_t errlen);
/* Sends a message this process published (and delivered locally). */
void nx_redis_publish(nx_rt_t *rt, const char *topic, size_t tlen, int opcode, const void *data,
                      size_t dlen);
/* A topic got its first local subscriber / lost its last one. */
void nx_redis_topic_added(nx_rt_t *rt, const char *topic, size_t tlen);
void nx_redis_topic_removed(nx_rt_t *rt, const char *topic, size_t tlen);
void nx_redis_stats(nx_rt_t *rt, nx_redis_stats_t *s);
/* Closes both connections (their handles close on the next loop run). */
void nx_redis_close(nx_rt_t *rt);

#endif
