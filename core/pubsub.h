/* Topics: a connection subscribes to named topics; a message published to
 * a topic is framed (and compressed) once per kind of receiver and queued
 * to every subscriber in C, without a Lua call per receiver. Topics live
 * in the runtime, outside Lua, so they span app generations (hot reload);
 * a connection leaves all its topics when it ends. With --redis a topic's
 * first subscriber and its last one's leaving are told to redis.c, which
 * (un)subscribes the topic's channel. */
#ifndef NX_PUBSUB_H
#define NX_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

typedef struct nx_rt_s nx_rt_t;
typedef struct nx_conn_s nx_conn_t;
typedef struct nx_pubsub_s nx_pubsub_t;

/* 1 when c was not subscribed yet, 0 when it was, -1 out of memory. */
int nx_pubsub_subscribe(nx_rt_t *rt, nx_conn_t *c, const char *topic, size_t len);
/* 1 when c was subscribed, 0 when it was not. */
int nx_pubsub_unsubscribe(nx_rt_t *rt, nx_conn_t *c, const char *topic, size_t len);
int nx_pubsub_is_subscribed(nx_rt_t *rt, const nx_conn_t *c, const char *topic, size_t len);
/* Calls fn(topic, len, ud) for each topic c is subscribed to. */
void nx_pubsub_each_topic(const nx_conn_t *c, void (*fn)(const char *, size_t, void *), void *ud);
/* Calls fn(topic, len, ud) for every topic with a subscriber in this process. */
void nx_pubsub_each(nx_rt_t *rt, void (*fn)(const char *, size_t, void *), void *ud);
/* c's state is about to leave NX_CONN_OPEN (its close frame is going out,
 * or it is ending): publish no longer reaches it, nor counts it. */
void nx_pubsub_conn_leaving_open(const nx_conn_t *c);
/* Leaves every topic (the connection is ending). */
void nx_pubsub_drop_conn(nx_rt_t *rt, nx_conn_t *c);

/* Queues the message (opcode text or binary) to every open subscriber of
 * topic but except (may be NULL); returns how many it was queued to. */
size_t nx_pubsub_publish(nx_rt_t *rt, const char *topic, size_t len, int opcode, const void *data,
                         size_t dlen, const nx_conn_t *except);
/* Subscribers of topic that a publish reaches: open, not closing (0 for an
 * unknown topic). Kept as a count: O(1). */
uint32_t nx_pubsub_count(nx_rt_t *rt, const char *topic, size_t len);
/* Topics with at least one subscriber. */
size_t nx_pubsub_topics(nx_rt_t *rt);

void nx_pubsub_free(nx_pubsub_t *ps);

#endif
