/* Topics and their subscribers (see pubsub.h).
 *
 * A topic is a hash-table entry holding a doubly linked list of
 * subscriptions; a subscription is one node linked both into its topic and
 * into its connection's list, so leaving one topic and leaving them all (a
 * connection's end) are both cheap, and into a second hash table keyed by
 * (connection, topic), so that finding one (subscribe, is_subscribed,
 * unsubscribe) costs the same with a thousand connections in a thousand
 * shared topics as with one. A topic without subscribers is freed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nx.h"
#include "pubsub.h"
#include "redis.h"

typedef struct nx_topic_s nx_topic_t;

struct nx_sub_s {
  nx_topic_t *topic;
  nx_conn_t *conn;
  struct nx_sub_s *tprev, *tnext; /* in the topic */
  struct nx_sub_s *cprev, *cnext; /* in the connection */
  struct nx_sub_s *hnext;         /* in the (connection, topic) hash chain */
};

struct nx_topic_s {
  nx_topic_t *hnext; /* hash chain */
  struct nx_sub_s *subs;
  uint32_t nsubs;
  uint32_t live; /* of nsubs, the ones a publish reaches (connection open) */
  uint32_t hash;
  size_t len;
  char name[];
};

struct nx_pubsub_s {
  nx_topic_t **buckets;
  size_t nbuckets; /* a power of two */
  size_t ntopics;
  struct nx_sub_s **sbuckets; /* subscriptions by (connection, topic) */
  size_t nsbuckets;           /* a power of two */
  size_t nsubs;
};

/* Topic names may come from clients: the hash is keyed with a random
 * per-process key (SipHash-1-3), so nobody can pick names that all land in
 * one bucket. */
static uint64_t hash_key[2];

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
  do {                                                                                             \
    v0 += v1;                                                                                      \
    v1 = ROTL(v1, 13);                                                                             \
    v1 ^= v0;                                                                                      \
    v0 = ROTL(v0, 32);                                                                             \
    v2 += v3;                                                                                      \
    v3 = ROTL(v3, 16);                                                                             \
    v3 ^= v2;                                                                                      \
    v0 += v3;                                                                                      \
    v3 = ROTL(v3, 21);                                                                             \
    v3 ^= v0;                                                                                      \
    v2 += v1;                                                                                      \
    v1 = ROTL(v1, 17);                                                                             \
    v1 ^= v2;                                                                                      \
    v2 = ROTL(v2, 32);                                                                             \
  } while (0)

static uint32_t hash_name(const char *s, size_t len) {
  const uint8_t *p = (const uint8_t *)s;
  uint64_t v0 = 0x736f6d6570736575ULL ^ hash_key[0], v1 = 0x646f72616e646f6dULL ^ hash_key[1];
  uint64_t v2 = 0x6c7967656e657261ULL ^ hash_key[0], v3 = 0x7465646279746573ULL ^ hash_key[1];
  uint64_t m, b = (uint64_t)len << 56;
  size_t i, full = len & ~(size_t)7;
  for (i = 0; i < full; i += 8) {
    memcpy(&m, p + i, 8); /* little-endian hosts: the byte order does not matter for a hash */
    v3 ^= m;
    SIPROUND;
    v0 ^= m;
  }
  for (m = 0; i < len; i++)
    m |= (uint64_t)p[i] << (8 * (i - full));
  b |= m;
  v3 ^= b;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return (uint32_t)(v0 ^ v1 ^ v2 ^ v3);
}

static void init_key(void) {
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(hash_key, sizeof(hash_key), 1, f) != 1) {
    /* No /dev/urandom: still different per process and start. */
    hash_key[0] = (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)time(NULL);
    hash_key[1] = (uint64_t)(uintptr_t)&hash_key * 0xC2B2AE3D27D4EB4FULL;
  }
  if (f)
    fclose(f);
}

static nx_pubsub_t *get(nx_rt_t *rt, int create) {
  nx_pubsub_t *ps = rt->pubsub;
  if (ps || !create)
    return ps;
  ps = (nx_pubsub_t *)calloc(1, sizeof(*ps));
  if (!ps)
    return NULL;
  if (!hash_key[0] && !hash_key[1])
    init_key();
  ps->nbuckets = ps->nsbuckets = 64;
  ps->buckets = (nx_topic_t **)calloc(ps->nbuckets, sizeof(*ps->buckets));
  ps->sbuckets = (struct nx_sub_s **)calloc(ps->nsbuckets, sizeof(*ps->sbuckets));
  if (!ps->buckets || !ps->sbuckets) {
    free(ps->buckets);
    free(ps->sbuckets);
    free(ps);
    return NULL;
  }
  rt->pubsub = ps;
  return ps;
}

static nx_topic_t **slot(nx_pubsub_t *ps, const char *name, size_t len, uint32_t h) {
  nx_topic_t **pp = &ps->buckets[h & (ps->nbuckets - 1)];
  while (*pp && !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->name, name, len) == 0))
    pp = &(*pp)->hnext;
  return pp;
}

static nx_topic_t *find(nx_rt_t *rt, const char *name, size_t len) {
  nx_pubsub_t *ps = get(rt, 0);
  return ps ? *slot(ps, name, len, hash_name(name, len)) : NULL;
}

static void grow(nx_pubsub_t *ps) {
  size_t n = ps->nbuckets * 2, i;
  nx_topic_t **b = (nx_topic_t **)calloc(n, sizeof(*b));
  if (!b)
    return; /* longer chains, still correct */
  for (i = 0; i < ps->nbuckets; i++) {
    nx_topic_t *t = ps->buckets[i], *next;
    for (; t; t = next) {
      next = t->hnext;
      t->hnext = b[t->hash & (n - 1)];
      b[t->hash & (n - 1)] = t;
    }
  }
  free(ps->buckets);
  ps->buckets = b;
  ps->nbuckets = n;
}

static void topic_release(nx_rt_t *rt, nx_topic_t *t) {
  nx_pubsub_t *ps = rt->pubsub;
  nx_topic_t **pp;
  if (t->nsubs)
    return;
  pp = slot(ps, t->name, t->len, t->hash);
  *pp = t->hnext;
  ps->ntopics--;
  if (rt->redis) /* the last subscriber in this process left */
    nx_redis_topic_removed(rt, t->name, t->len);
  free(t);
}

/* The chain of the subscription of c to t. The keys are our own pointers,
 * which no client chooses: a multiplicative mix spreads them. */
static struct nx_sub_s **sub_chain(nx_pubsub_t *ps, const nx_conn_t *c, const nx_topic_t *t) {
  uint64_t x = (uint64_t)(uintptr_t)c * 0x9E3779B97F4A7C15ULL ^
               (uint64_t)(uintptr_t)t * 0xC2B2AE3D27D4EB4FULL;
  return &ps->sbuckets[(size_t)(x ^ (x >> 31)) & (ps->nsbuckets - 1)];
}

/* c's subscription to t, or NULL. */
static struct nx_sub_s *conn_sub(nx_pubsub_t *ps, const nx_conn_t *c, const nx_topic_t *t) {
  struct nx_sub_s *s = *sub_chain(ps, c, t);
  while (s && !(s->conn == c && s->topic == t))
    s = s->hnext;
  return s;
}

static void grow_subs(nx_pubsub_t *ps) {
  size_t n = ps->nsbuckets * 2, i, old = ps->nsbuckets;
  struct nx_sub_s **ob = ps->sbuckets, *s, *next;
  struct nx_sub_s **b = (struct nx_sub_s **)calloc(n, sizeof(*b));
  if (!b)
    return; /* longer chains, still correct */
  ps->sbuckets = b;
  ps->nsbuckets = n;
  for (i = 0; i < old; i++) {
    for (s = ob[i]; s; s = next) {
      struct nx_sub_s **pp = sub_chain(ps, s->conn, s->topic);
      next = s->hnext;
      s->hnext = *pp;
      *pp = s;
    }
  }
  free(ob);
}

int nx_pubsub_subscribe(nx_rt_t *rt, nx_conn_t *c, const char *name, size_t len) {
  nx_pubsub_t *ps = get(rt, 1);
  uint32_t h = hash_name(name, len);
  nx_topic_t **pp, *t;
  struct nx_sub_s *s;
  if (!ps)
    return -1;
  pp = slot(ps, name, len, h);
  t = *pp;
  if (t && conn_sub(ps, c, t))
    return 0;
  s = (struct nx_sub_s *)malloc(sizeof(*s));
  if (!s)
    return -1;
  if (!t) {
    t = (nx_topic_t *)malloc(sizeof(*t) + len + 1);
    if (!t) {
      free(s);
      return -1;
    }
    t->subs = NULL;
    t->nsubs = 0;
    t->live = 0;
    t->hash = h;
    t->len = len;
    memcpy(t->name, name, len);
    t->name[len] = '\0';
    t->hnext = NULL;
    *pp = t;
    if (++ps->ntopics > ps->nbuckets)
      grow(ps);
    if (rt->redis) /* the first subscriber in this process */
      nx_redis_topic_added(rt, name, len);
  }
  s->topic = t;
  s->conn = c;
  s->tprev = NULL;
  s->tnext = t->subs;
  if (t->subs)
    t->subs->tprev = s;
  t->subs = s;
  t->nsubs++;
  if (c->state == NX_CONN_OPEN)
    t->live++;
  s->cprev = NULL;
  s->cnext = c->subs;
  if (c->subs)
    c->subs->cprev = s;
  c->subs = s;
  {
    struct nx_sub_s **chain = sub_chain(ps, c, t);
    s->hnext = *chain;
    *chain = s;
  }
  if (++ps->nsubs > ps->nsbuckets)
    grow_subs(ps);
  return 1;
}

static void unlink_sub(nx_rt_t *rt, struct nx_sub_s *s) {
  nx_topic_t *t = s->topic;
  struct nx_sub_s **pp = sub_chain(rt->pubsub, s->conn, t);
  while (*pp != s)
    pp = &(*pp)->hnext;
  *pp = s->hnext;
  rt->pubsub->nsubs--;
  if (s->tprev)
    s->tprev->tnext = s->tnext;
  else
    t->subs = s->tnext;
  if (s->tnext)
    s->tnext->tprev = s->tprev;
  t->nsubs--;
  if (s->conn->state == NX_CONN_OPEN)
    t->live--;
  free(s);
  topic_release(rt, t);
}

int nx_pubsub_unsubscribe(nx_rt_t *rt, nx_conn_t *c, const char *name, size_t len) {
  nx_topic_t *t = find(rt, name, len);
  struct nx_sub_s *s = t ? conn_sub(rt->pubsub, c, t) : NULL;
  if (!s)
    return 0;
  if (s->cprev)
    s->cprev->cnext = s->cnext;
  else
    c->subs = s->cnext;
  if (s->cnext)
    s->cnext->cprev = s->cprev;
  unlink_sub(rt, s);
  return 1;
}

int nx_pubsub_is_subscribed(nx_rt_t *rt, const nx_conn_t *c, const char *name, size_t len) {
  nx_topic_t *t = find(rt, name, len);
  return t && conn_sub(rt->pubsub, c, t) != NULL;
}

void nx_pubsub_each_topic(const nx_conn_t *c, void (*fn)(const char *, size_t, void *), void *ud) {
  const struct nx_sub_s *s;
  for (s = c->subs; s; s = s->cnext)
    fn(s->topic->name, s->topic->len, ud);
}

void nx_pubsub_each(nx_rt_t *rt, void (*fn)(const char *, size_t, void *), void *ud) {
  nx_pubsub_t *ps = rt->pubsub;
  size_t i;
  nx_topic_t *t;
  if (!ps)
    return;
  for (i = 0; i < ps->nbuckets; i++)
    for (t = ps->buckets[i]; t; t = t->hnext)
      fn(t->name, t->len, ud);
}

void nx_pubsub_conn_leaving_open(const nx_conn_t *c) {
  const struct nx_sub_s *s;
  for (s = c->subs; s; s = s->cnext)
    s->topic->live--;
}

void nx_pubsub_drop_conn(nx_rt_t *rt, nx_conn_t *c) {
  struct nx_sub_s *s = c->subs, *next;
  c->subs = NULL;
  for (; s; s = next) {
    next = s->cnext;
    unlink_sub(rt, s);
  }
}

size_t nx_pubsub_publish(nx_rt_t *rt, const char *name, size_t len, int opcode, const void *data,
                         size_t dlen, const nx_conn_t *except) {
  nx_topic_t *t = find(rt, name, len);
  struct nx_sub_s *s;
  /* The frame, encoded once per kind a subscriber may get: [0] plain,
   * [9..15] compressed with that window. */
  nx_shared_frame_t *frames[16] = {NULL};
  size_t n = 0;
  int i;
  if (!t)
    return 0;
  /* Sending never unsubscribes (a connection dropped for its write limit
   * leaves its topics only when it is freed, in a later callback), so the
   * list stays intact while it is walked. */
  for (s = t->subs; s; s = s->tnext) {
    nx_conn_t *c = s->conn;
    int bits;
    if (c == except || c->state != NX_CONN_OPEN || c->close_sent)
      continue;
    bits = nx_conn_deflate_bits(c, opcode, dlen);
    if (!frames[bits])
      frames[bits] = nx_conn_encode_shared(rt, bits, opcode, data, dlen);
    if (frames[bits] ? nx_conn_send_frame(c, frames[bits]) == 0
                     : nx_conn_send(c, opcode, data, dlen) == 0) /* (out of memory) */
      n++;
  }
  for (i = 0; i < 16; i++)
    nx_shared_frame_unref(frames[i]);
  return n;
}

uint32_t nx_pubsub_count(nx_rt_t *rt, const char *name, size_t len) {
  nx_topic_t *t = find(rt, name, len);
  return t ? t->live : 0;
}

size_t nx_pubsub_topics(nx_rt_t *rt) { return rt->pubsub ? rt->pubsub->ntopics : 0; }

void nx_pubsub_free(nx_pubsub_t *ps) {
  size_t i;
  if (!ps)
    return;
  /* Connections are gone by now (their subscriptions with them); free
   * whatever is left regardless. */
  for (i = 0; i < ps->nbuckets; i++) {
    nx_topic_t *t = ps->buckets[i], *next;
    for (; t; t = next) {
      struct nx_sub_s *s = t->subs, *sn;
      next = t->hnext;
      for (; s; s = sn) {
        sn = s->tnext;
        s->conn->subs = NULL;
        free(s);
      }
      free(t);
    }
  }
  free(ps->buckets);
  free(ps->sbuckets);
  free(ps);
}
