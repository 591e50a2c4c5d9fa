/* Topics across machines through Redis pub/sub (see redis.h).
 *
 * Each of the two connections is a link: a hiredis async context on the
 * loop while it is up or connecting, and one timer that is the connect
 * timeout (while connecting), the delay before the next attempt (while
 * down), or the keepalive (while up). A link that fails or is lost is
 * retried with a backoff; nothing else changes meanwhile: local delivery
 * goes on, publishes for the other processes are dropped. Every address
 * the host resolved to is tried in turn.
 *
 * A link is up once Redis answers its PING (after AUTH), and counts as
 * back (backoff reset, "connected again" logged, the outage over) once it
 * has stayed up for STABLE_MS: a Redis that accepts and then ends the
 * connection (a SUBSCRIBE an ACL refuses) is retried with the growing
 * backoff and logged once, not every 0.1 s. While up, a connection sends
 * a PING each KEEPALIVE_MS, so that Redis's `timeout` never closes it (a
 * subscribed connection is exempt from it, and sends none).
 *
 * hiredis frees a context itself after its connect or disconnect callback
 * reports a failure, and calls the disconnect callback from
 * redisAsyncFree() too; so a link forgets its context (l->ac = NULL)
 * before anything frees it, and a callback whose context is not the link's
 * current one has nothing to do. */
#include <ctype.h>
#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "nx.h"
#include "pubsub.h"
#include "redis.h"
#include "utf8.h"

#define BACKOFF_MIN 100      /* ms */
#define BACKOFF_MAX 5000     /* ms */
#define CONNECT_TIMEOUT 5000 /* ms for an attempt on the loop */
#define CHECK_TIMEOUT 3      /* s for the blocking check at start-up */
#define STABLE_MS 1000       /* up this long: the link counts as back */
#define KEEPALIVE_MS 500     /* a PING this often (Redis's timeout counts whole seconds) */
#define MAX_ADDRS 8          /* addresses of the host, tried in turn */

typedef struct {
  char a[MAX_ADDRS][64]; /* numeric */
  int n;
} addrs_t;

typedef struct {
  nx_redis_t *r;
  redisAsyncContext *ac; /* NULL while down */
  uv_timer_t timer;      /* connect timeout, delay before the next attempt, or keepalive */
  uint64_t backoff;      /* ms before the next attempt */
  const char *name;      /* "subscriber" or "publisher", for the log */
  uint8_t up;            /* connected: PING answered */
  uint8_t stable;        /* this connection has been up for STABLE_MS */
  uint8_t fresh;         /* the first attempt since start-up, not failed yet */
  uint8_t sub;           /* the subscriber link */
  uint8_t outage;        /* down since it was up: logged once per reason */
  uint8_t refused;       /* a refused PUBLISH was logged on this connection */
  uint8_t addr;          /* the address (r->addrs) tried or connected to */
  uint8_t malformed;     /* a reply out of protocol ended this connection */
  uint8_t shape;         /* the reply being read is a pub/sub one: its shape is checked */
  uint8_t unsub;         /* ... and an (un)subscribe confirmation's count must follow */
  uint8_t tried;         /* addresses that failed to connect in this round */
  char why[96];          /* the reason of the outage last logged */
} link_t;

struct nx_redis_s {
  nx_rt_t *rt;
  link_t sub, pub;
  char *host, *username, *password;
  addrs_t addrs; /* resolved once at start-up: reconnects never wait for DNS */
  int port;
  char node[NX_REDIS_NODE_ID_LEN + 1];
  nx_buf_t chan, msg; /* scratch for the channel name and the message */
  nx_redis_stats_t st;
  uint64_t series; /* drops since the drop warning (the others are logged their own way) */
  int dropping;    /* the drop warning was logged (DROP_DOWN or DROP_SLOW) */
  nx_buf_t early;  /* publishes waiting for the first connection: [u32 len, channel, u32 len,
                      message] each */
  int closing;
  int open_timers;
};

enum { DROP_NONE, DROP_DOWN, DROP_SLOW };

static void link_connect(link_t *l);
static void on_timer(uv_timer_t *t);

/* ---- hiredis on libuv --------------------------------------------------
 * Our own adapter (hiredis 0.14's ignores a poll error: a connection reset
 * or refused was then never noticed, and never retried). On an error the
 * handlers run for the events being watched, so hiredis reads or writes,
 * sees the errno and reports the disconnect. */
typedef struct {
  redisAsyncContext *context;
  uv_poll_t handle;
  int events;
} poll_t;

static void on_poll(uv_poll_t *handle, int status, int events) {
  poll_t *p = (poll_t *)handle->data;
  int ev = status ? p->events : events;
  if (p->context && (ev & UV_READABLE))
    redisAsyncHandleRead(p->context);
  if (p->context && (ev & UV_WRITABLE))
    redisAsyncHandleWrite(p->context);
}

static void poll_set(poll_t *p, int events) {
  p->events = events;
  if (events)
    uv_poll_start(&p->handle, events, on_poll);
  else
    uv_poll_stop(&p->handle);
}

static void add_read(void *d) { poll_set((poll_t *)d, ((poll_t *)d)->events | UV_READABLE); }
static void del_read(void *d) { poll_set((poll_t *)d, ((poll_t *)d)->events & ~UV_READABLE); }
static void add_write(void *d) { poll_set((poll_t *)d, ((poll_t *)d)->events | UV_WRITABLE); }
static void del_write(void *d) { poll_set((poll_t *)d, ((poll_t *)d)->events & ~UV_WRITABLE); }

static void on_poll_closed(uv_handle_t *h) { free(h->data); }

static void poll_cleanup(void *d) {
  poll_t *p = (poll_t *)d;
  p->context = NULL;
  uv_close((uv_handle_t *)&p->handle, on_poll_closed);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop) {
  poll_t *p;
  if (ac->ev.data)
    return REDIS_ERR;
  p = (poll_t *)calloc(1, sizeof(*p));
  if (!p)
    return REDIS_ERR;
  if (uv_poll_init(loop, &p->handle, ac->c.fd) != 0) {
    free(p);
    return REDIS_ERR;
  }
  p->handle.data = p;
  p->context = ac;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = poll_cleanup;
  ac->ev.data = p;
  return REDIS_OK;
}

/* ---- Replies out of protocol -------------------------------------------
 * hiredis 0.14 asserts, and so aborts the whole server, on a reply it has
 * no callback for and on a pub/sub reply of another shape than Redis's: a
 * broken or hostile server, or a tampered connection, would cut every
 * client. Its reader builds replies with these functions instead of its
 * own, and they refuse such a reply as it is read: the reader fails, hiredis
 * ends the connection, and the link logs it and retries. The blocking
 * check at start-up reads with them too (no link: any shape, within
 * MAX_ELEMENTS). */
static int reply_expected(const redisReadTask *t, int type, const char *str, size_t len) {
  link_t *l = (link_t *)t->privdata;
  redisAsyncContext *ac = l ? l->ac : NULL;
  if (!l)
    return 1;
  if (!ac)
    return 0;
  if (!t->parent) {
    l->shape = l->unsub = 0;
    if (ac->replies.head || type == REDIS_REPLY_ERROR)
      return 1; /* a command's answer, or an error (hiredis ends the connection) */
    if (!(ac->c.flags & REDIS_SUBSCRIBED))
      return 0; /* nobody asked */
    if (type != REDIS_REPLY_ARRAY)
      return 1; /* hiredis drops it */
    l->shape = 1;
    return 1; /* (its length is checked by make_array) */
  }
  if (!l->shape || t->parent->parent)
    return 1;
  /* [kind, channel, count or data], as Redis sends them */
  if (t->idx == 0) {
    /* hiredis's reading of the kind: up to a NUL, any case, a "p" first
     * for the pattern variant */
    size_t k = type == REDIS_REPLY_STRING ? strnlen(str, len) : 0;
    const char *kind = str;
    if (k && tolower((unsigned char)kind[0]) == 'p') {
      kind++;
      k--;
    }
    l->unsub = k == 11 && strncasecmp(kind, "unsubscribe", 11) == 0;
    return type == REDIS_REPLY_STRING && len > 0 && str[0] != '\0';
  }
  if (t->idx == 1)
    return type == REDIS_REPLY_STRING;
  return !l->unsub || type == REDIS_REPLY_INTEGER;
}

static void *refuse(const redisReadTask *t) {
  if (t->privdata)
    ((link_t *)t->privdata)->malformed = 1;
  return NULL; /* the reader fails ("out of memory": the link says why) */
}

/* A reply of type, linked into its array (once it is whole). */
static redisReply *reply_new(int type) {
  redisReply *r = (redisReply *)calloc(1, sizeof(*r));
  if (r)
    r->type = type;
  return r;
}

static void *reply_link(const redisReadTask *t, redisReply *r) {
  if (t->parent)
    ((redisReply *)t->parent->obj)->element[t->idx] = r;
  return r;
}

static void *make_string(const redisReadTask *t, char *str, size_t len) {
  redisReply *r;
  if (!reply_expected(t, t->type, str, len))
    return refuse(t);
  if (!(r = reply_new(t->type)))
    return NULL;
  if (!(r->str = (char *)malloc(len + 1))) {
    free(r);
    return NULL;
  }
  memcpy(r->str, str, len);
  r->str[len] = '\0';
  r->len = (int)len;
  return reply_link(t, r);
}

/* No reply to what nexlua sends has more elements than a pub/sub message
 * (PING's, when subscribed, has 2): hiredis would allocate room for any
 * count a server names (2^31 is 16 GiB) and walk it when freeing. */
#define MAX_ELEMENTS 3

static void *make_array(const redisReadTask *t, int elements) {
  redisReply *r;
  if (elements > MAX_ELEMENTS || !reply_expected(t, REDIS_REPLY_ARRAY, NULL, 0) ||
      (!t->parent && t->privdata && ((link_t *)t->privdata)->shape && elements != 3))
    return refuse(t);
  if (!(r = reply_new(REDIS_REPLY_ARRAY)))
    return NULL;
  if (elements > 0 &&
      !(r->element = (redisReply **)calloc((size_t)elements, sizeof(*r->element)))) {
    free(r);
    return NULL;
  }
  r->elements = (size_t)(elements > 0 ? elements : 0);
  return reply_link(t, r);
}

static void *make_integer(const redisReadTask *t, long long v) {
  redisReply *r;
  if (!reply_expected(t, REDIS_REPLY_INTEGER, NULL, 0))
    return refuse(t);
  if (!(r = reply_new(REDIS_REPLY_INTEGER)))
    return NULL;
  r->integer = v;
  return reply_link(t, r);
}

static void *make_nil(const redisReadTask *t) {
  redisReply *r;
  if (!reply_expected(t, REDIS_REPLY_NIL, NULL, 0))
    return refuse(t);
  if (!(r = reply_new(REDIS_REPLY_NIL)))
    return NULL;
  return reply_link(t, r);
}

static void free_reply(void *r) { freeReplyObject(r); }

static redisReplyObjectFunctions checked_replies = {make_string, make_array, make_integer, make_nil,
                                                    free_reply};

static const char *chan_name(nx_redis_t *r, const char *topic, size_t tlen, size_t *clen) {
  size_t plen = sizeof(NX_REDIS_PREFIX) - 1;
  r->chan.off = r->chan.len = 0;
  if (nx_buf_append(&r->chan, NX_REDIS_PREFIX, plen) || nx_buf_append(&r->chan, topic, tlen))
    return NULL;
  *clen = plen + tlen;
  return (const char *)r->chan.data;
}

static void count_drop(nx_redis_t *r, int why);
static int publish_now(nx_redis_t *r, redisAsyncContext *ac, const char *chan, size_t clen,
                       const void *msg, size_t mlen);

/* The publishes that waited for the first connection of the publisher
 * link: sent (up), or dropped (its first round of addresses failed). */
static void early_flush(nx_redis_t *r, int send) {
  nx_buf_t *e = &r->early;
  while (nx_buf_size(e) >= 8) {
    const uint8_t *p = e->data + e->off;
    uint32_t clen, mlen;
    memcpy(&clen, p, 4);
    memcpy(&mlen, p + 4 + clen, 4);
    if (!send || publish_now(r, r->pub.ac, (const char *)p + 4, clen, p + 8 + clen, mlen))
      count_drop(r, DROP_DOWN);
    nx_buf_consume(e, 8 + (size_t)clen + mlen);
  }
  nx_buf_free(e);
}

static void link_retry(link_t *l, const char *why) {
  nx_redis_t *r = l->r;
  if (r->closing)
    return;
  l->up = 0;
  l->stable = 0;
  l->fresh = 0;
  if (!l->sub)
    early_flush(r, 0); /* every address failed: what waited is dropped */
  if (!l->outage) {
    nx_log(NX_LOG_WARN,
           "Redis %s:%d (%s connection): %s; topics reach only this process until it is back, "
           "retrying",
           r->host, r->port, l->name, why);
    l->outage = 1;
    snprintf(l->why, sizeof(l->why), "%s", why);
  } else if (strncmp(l->why, why, sizeof(l->why) - 1) != 0) {
    /* A new reason (it went away, and now refuses our password): once. */
    nx_log(NX_LOG_WARN, "Redis %s:%d (%s connection): %s; still retrying", r->host, r->port,
           l->name, why);
    snprintf(l->why, sizeof(l->why), "%s", why);
  } else {
    nx_log(NX_LOG_DEBUG, "Redis %s:%d (%s connection): %s; next attempt in %llu ms", r->host,
           r->port, l->name, why, (unsigned long long)l->backoff);
  }
  uv_timer_start(&l->timer, on_timer, l->backoff, 0);
  l->backoff = l->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : l->backoff * 2;
}

/* Closes the link's context ourselves (an AUTH refused, a connect that
 * takes too long) and tries again later. */
static void link_forget(link_t *l) {
  redisAsyncContext *ac = l->ac;
  l->ac = NULL;
  l->up = 0;
  if (ac)
    redisAsyncFree(ac); /* deferred by hiredis when inside one of its callbacks */
}

static void link_drop(link_t *l, const char *why) {
  link_forget(l);
  link_retry(l, why);
}

/* A connection attempt that failed before Redis answered: the next
 * address of the host, at once, while this round has one not tried;
 * otherwise the backoff. */
static void link_unreachable(link_t *l, const char *why) {
  nx_redis_t *r = l->r;
  l->addr = (uint8_t)((l->addr + 1) % r->addrs.n);
  if (++l->tried < r->addrs.n && !r->closing) {
    nx_log(NX_LOG_DEBUG, "Redis %s:%d (%s connection): %s; trying %s", r->host, r->port, l->name,
           why, r->addrs.a[l->addr]);
    uv_timer_start(&l->timer, on_timer, 0, 0);
    return;
  }
  l->tried = 0;
  link_retry(l, why);
}

/* A message that does not reach the other processes: counted, and the
 * first of a series logged. */
static void count_drop(nx_redis_t *r, int why) {
  r->st.dropped++;
  r->series++;
  if (r->dropping)
    return;
  nx_log(NX_LOG_WARN, "Redis %s: published messages reach only this process's subscribers",
         why == DROP_SLOW ? "does not keep up" : "is not connected");
  r->dropping = why;
}

static void report_drops(nx_redis_t *r) {
  nx_log(NX_LOG_INFO, "Redis: publishing again; %llu message(s) did not reach the other processes",
         (unsigned long long)r->series);
  r->series = 0;
  r->dropping = DROP_NONE;
}

/* Up for STABLE_MS: the outage is over. */
static void link_stable(link_t *l) {
  nx_redis_t *r = l->r;
  l->stable = 1;
  l->backoff = BACKOFF_MIN;
  if (l->outage)
    nx_log(NX_LOG_INFO, "Redis %s:%d (%s connection): connected again", r->host, r->port, l->name);
  l->outage = 0;
  if (!l->sub && r->dropping)
    report_drops(r);
}

/* A PING each tick, however busy the connection (a command a second is
 * nothing, and a check of "idle since" would let the gap grow to two), but
 * on a subscribed one: it never idles out, and takes no PING in RESP2's
 * way. */
static void link_keepalive(link_t *l) {
  if (!(l->sub && (l->ac->c.flags & REDIS_SUBSCRIBED)))
    redisAsyncCommand(l->ac, NULL, NULL, "PING");
}

static void on_timer(uv_timer_t *t) {
  link_t *l = (link_t *)t->data;
  if (l->ac && !l->up) {
    if (l->ac->c.flags & REDIS_CONNECTED) { /* AUTH or PING not answered: not the address */
      link_drop(l, "Redis did not answer in time");
    } else {
      link_forget(l);
      link_unreachable(l, "the connection attempt timed out");
    }
    return;
  }
  if (l->ac) {
    if (!l->stable)
      link_stable(l);
    link_keepalive(l);
    uv_timer_start(&l->timer, on_timer, KEEPALIVE_MS, 0);
    return;
  }
  link_connect(l);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  link_t *l = (link_t *)ac->data;
  nx_redis_t *r;
  if (!l || l->ac != ac)
    return;
  r = l->r;
  if (status != REDIS_OK) {
    l->ac = NULL; /* hiredis frees it */
    link_unreachable(l, ac->errstr[0] ? ac->errstr : "cannot connect");
    return;
  }
  (void)r; /* up once PING is answered (on_ready): AUTH and ACLs are checked by then */
}

/* The PING sent after AUTH is answered: the link is up (it counts as
 * back once stable, STABLE_MS later). */
static void on_ready(redisAsyncContext *ac, void *reply, void *priv) {
  link_t *l = (link_t *)priv;
  nx_redis_t *r = l->r;
  redisReply *rep = (redisReply *)reply;
  char why[256];
  if (!rep || l->ac != ac)
    return;
  if (rep->type == REDIS_REPLY_ERROR) {
    snprintf(why, sizeof(why), "PING refused: %s", rep->str);
    link_drop(l, why);
    return;
  }
  l->up = 1;
  l->tried = 0;
  uv_timer_start(&l->timer, on_timer, STABLE_MS, 0);
  if (!l->sub)
    early_flush(r, 1);
  if (!l->outage)
    nx_log(NX_LOG_DEBUG, "Redis %s:%d (%s connection): connected to %s", r->host, r->port, l->name,
           r->addrs.a[l->addr]);
}

/* A PUBLISH refused (an ACL, an out-of-memory Redis): counted, logged once
 * per connection. */
static void on_published(redisAsyncContext *ac, void *reply, void *priv) {
  link_t *l = (link_t *)priv;
  redisReply *rep = (redisReply *)reply;
  (void)ac;
  if (!rep && !l->r->closing) {
    /* The connection ended before Redis answered: most likely it never
     * took it (a Redis frozen past its own `timeout` closes the connection
     * as it wakes up, unread), so it is counted dropped. */
    l->r->st.published--;
    count_drop(l->r, DROP_DOWN);
    return;
  }
  if (!rep || rep->type != REDIS_REPLY_ERROR)
    return;
  l->r->st.published--;
  l->r->st.dropped++;
  if (!l->refused)
    nx_log(NX_LOG_WARN, "Redis refused a PUBLISH: %s", rep->str);
  l->refused = 1;
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  link_t *l = (link_t *)ac->data;
  (void)status;
  if (!l || l->ac != ac)
    return;     /* one we freed ourselves */
  l->ac = NULL; /* hiredis frees it */
  link_retry(l, l->malformed    ? "a reply out of Redis's protocol (is it Redis?)"
                : ac->errstr[0] ? ac->errstr
                                : "the connection was closed");
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv) {
  link_t *l = (link_t *)priv;
  redisReply *rep = (redisReply *)reply;
  char why[256];
  if (!rep || l->ac != ac || rep->type != REDIS_REPLY_ERROR)
    return;
  snprintf(why, sizeof(why), "AUTH refused: %s", rep->str);
  link_drop(l, why);
}

/* Subscriber connection: subscribe confirmations and messages. */
static void on_message(redisAsyncContext *ac, void *reply, void *priv) {
  link_t *l = (link_t *)priv;
  nx_redis_t *r = l->r;
  redisReply *rep = (redisReply *)reply, *ch, *m;
  size_t plen = sizeof(NX_REDIS_PREFIX) - 1;
  const char *data;
  int opcode;
  (void)ac;
  if (!rep || r->closing || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
    return;
  if (rep->element[0]->type != REDIS_REPLY_STRING || strcmp(rep->element[0]->str, "message") != 0)
    return; /* (un)subscribe confirmations */
  ch = rep->element[1];
  m = rep->element[2];
  if (ch->type != REDIS_REPLY_STRING || m->type != REDIS_REPLY_STRING || (size_t)ch->len <= plen ||
      (size_t)m->len < NX_REDIS_HEADER || (m->str[0] != 't' && m->str[0] != 'b'))
    return; /* not in our format */
  if (memcmp(m->str + 1, r->node, NX_REDIS_NODE_ID_LEN) == 0)
    return; /* ours, delivered locally at the publish */
  opcode = m->str[0] == 't' ? NX_WS_OP_TEXT : NX_WS_OP_BINARY;
  data = m->str + NX_REDIS_HEADER;
  if (opcode == NX_WS_OP_TEXT && !nx_utf8_valid((const uint8_t *)data, m->len - NX_REDIS_HEADER))
    return;
  r->st.received++;
  nx_pubsub_publish(r->rt, ch->str + plen, ch->len - plen, opcode, data, m->len - NX_REDIS_HEADER,
                    NULL);
}

static void subscribe_topic(const char *topic, size_t tlen, void *ud) {
  nx_redis_t *r = (nx_redis_t *)ud;
  size_t clen;
  const char *chan = chan_name(r, topic, tlen, &clen);
  if (chan && r->sub.ac)
    redisAsyncCommand(r->sub.ac, on_message, &r->sub, "SUBSCRIBE %b", chan, clen);
}

static void link_connect(link_t *l) {
  nx_redis_t *r = l->r;
  redisAsyncContext *ac = redisAsyncConnect(r->addrs.a[l->addr], r->port);
  char why[256];
  l->up = l->stable = 0;
  if (!ac) {
    link_retry(l, "out of memory");
    return;
  }
  if (ac->err) {
    snprintf(why, sizeof(why), "%s", ac->errstr);
    redisAsyncFree(ac);
    link_unreachable(l, why);
    return;
  }
  if (attach(ac, r->rt->loop) != REDIS_OK) {
    redisAsyncFree(ac);
    link_retry(l, "cannot watch its socket");
    return;
  }
  ac->data = l;
  l->malformed = 0;
  ac->c.reader->fn = &checked_replies;
  ac->c.reader->privdata = l;
  redisEnableKeepAlive(&ac->c);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  l->ac = ac;
  /* Commands wait in hiredis until the connection is up, in order: AUTH
   * first, then (subscriber) every current topic. */
  if (r->password && r->username)
    redisAsyncCommand(ac, on_auth, l, "AUTH %s %s", r->username, r->password);
  else if (r->password)
    redisAsyncCommand(ac, on_auth, l, "AUTH %s", r->password);
  redisAsyncCommand(ac, on_ready, l, "PING");
  l->refused = 0;
  if (l->sub)
    nx_pubsub_each(r->rt, subscribe_topic, r);
  uv_timer_start(&l->timer, on_timer, CONNECT_TIMEOUT, 0);
}

/* The host's numeric addresses, in getaddrinfo's order, without repeats
 * (a name may resolve to ::1 and 127.0.0.1 with Redis on one of them). */
static int resolve(const char *host, addrs_t *out, char *err, size_t errlen) {
  struct addrinfo hints, *res = NULL, *ai;
  char name[64];
  int e, i;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  e = getaddrinfo(host, NULL, &hints, &res);
  if (e || !res) {
    snprintf(err, errlen, "cannot resolve the Redis host %s: %s", host, gai_strerror(e));
    return -1;
  }
  for (ai = res; ai && out->n < MAX_ADDRS; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET6)
      e = uv_ip6_name((const struct sockaddr_in6 *)ai->ai_addr, name, sizeof(name));
    else if (ai->ai_family == AF_INET)
      e = uv_ip4_name((const struct sockaddr_in *)ai->ai_addr, name, sizeof(name));
    else
      continue;
    for (i = 0; !e && i < out->n; i++)
      e = strcmp(out->a[i], name) == 0;
    if (!e)
      memcpy(out->a[out->n++], name, sizeof(name));
  }
  freeaddrinfo(res);
  if (!out->n) {
    snprintf(err, errlen, "cannot resolve the Redis host %s", host);
    return -1;
  }
  return 0;
}

/* Why a command of the check got no reply, in words. */
static const char *check_error(const redisContext *c) {
  static char text[160];
  if (c->err == REDIS_ERR_OOM)
    return "a reply out of Redis's protocol (is it Redis?)"; /* (refused by make_array & co) */
  if (c->err == REDIS_ERR_IO && strcmp(c->errstr, strerror(EAGAIN)) == 0) {
    snprintf(text, sizeof(text), "no answer within %d s", CHECK_TIMEOUT);
    return text;
  }
  return c->errstr;
}

/* The blocking check at start-up: connect (to each address in turn until
 * one answers: *first is its index), AUTH, PING. */
static int check(const nx_redis_opts_t *o, const addrs_t *a, int *first, char *err, size_t errlen) {
  struct timeval tv = {CHECK_TIMEOUT, 0};
  redisContext *c = NULL;
  redisReply *rep = NULL;
  int ok = 0, i;
  for (i = 0; i < a->n; i++) {
    if (c)
      redisFree(c);
    c = redisConnectWithTimeout(a->a[i], o->port, tv);
    if (c && !c->err)
      break;
  }
  *first = i < a->n ? i : 0;
  if (!c || c->err) {
    snprintf(err, errlen, "cannot connect to Redis at %s:%d: %s", o->host, o->port,
             c ? c->errstr : "out of memory");
    goto done;
  }
  redisSetTimeout(c, tv);
  c->reader->fn = &checked_replies;
  c->reader->privdata = NULL;
  if (o->password) {
    rep = o->username ? redisCommand(c, "AUTH %s %s", o->username, o->password)
                      : redisCommand(c, "AUTH %s", o->password);
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
      snprintf(err, errlen, "Redis at %s:%d refused AUTH: %s", o->host, o->port,
               rep ? rep->str : check_error(c));
      goto done;
    }
    freeReplyObject(rep);
  }
  rep = redisCommand(c, "PING");
  if (!rep || rep->type == REDIS_REPLY_ERROR) {
    snprintf(err, errlen, "Redis at %s:%d does not answer PING: %s", o->host, o->port,
             rep ? rep->str : check_error(c));
    goto done;
  }
  ok = 1;
done:
  if (rep)
    freeReplyObject(rep);
  if (c)
    redisFree(c);
  return ok ? 0 : -1;
}

int nx_redis_check(const nx_redis_opts_t *o, char *err, size_t errlen) {
  addrs_t a;
  int first;
  a.n = 0;
  return resolve(o->host, &a, err, errlen) || check(o, &a, &first, err, errlen) ? -1 : 0;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void link_init(nx_redis_t *r, link_t *l, int sub) {
  l->r = r;
  l->sub = (uint8_t)sub;
  l->name = sub ? "subscriber" : "publisher";
  l->backoff = BACKOFF_MIN;
  l->fresh = 1;
  uv_timer_init(r->rt->loop, &l->timer);
  l->timer.data = l;
  r->open_timers++;
}

int nx_redis_start(nx_rt_t *rt, const nx_redis_opts_t *o, char *err, size_t errlen) {
  nx_redis_t *r;
  unsigned char id[NX_REDIS_NODE_ID_LEN / 2];
  int i, paused, bad, first = 0;
  if (rt->redis) {
    snprintf(err, errlen, "Redis is already started");
    return -1;
  }
  r = (nx_redis_t *)calloc(1, sizeof(*r));
  if (r) {
    /* nexlua's own blocking waits (DNS, the check), not a hold by the app */
    paused = nx_watchdog_pause(rt);
    bad = resolve(o->host, &r->addrs, err, errlen) ||
          (o->check && check(o, &r->addrs, &first, err, errlen));
    nx_watchdog_unpause(rt, paused);
    if (bad) {
      free(r);
      return -1;
    }
  }
  if (!r || !(r->host = strdup(o->host)) || (o->password && !(r->password = strdup(o->password))) ||
      (o->username && !(r->username = dup_or_null(o->username)))) {
    if (r) {
      free(r->host);
      free(r->password);
    }
    free(r);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  r->rt = rt;
  r->port = o->port;
  if (uv_random(NULL, NULL, id, sizeof(id), 0, NULL) != 0) {
    uint64_t x = uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32);
    memcpy(id, &x, sizeof(id));
  }
  for (i = 0; i < (int)sizeof(id); i++)
    snprintf(r->node + 2 * i, 3, "%02x", id[i]);
  link_init(r, &r->sub, 1);
  link_init(r, &r->pub, 0);
  r->sub.addr = r->pub.addr = (uint8_t)first; /* the one the check reached */
  rt->redis = r;
  link_connect(&r->sub);
  link_connect(&r->pub);
  nx_log(NX_LOG_DEBUG, "Redis %s:%d: node id %s", r->host, r->port, r->node);
  return 0;
}

/* A PUBLISH of a message in our format (counted sent); 0, or -1. */
static int publish_now(nx_redis_t *r, redisAsyncContext *ac, const char *chan, size_t clen,
                       const void *msg, size_t mlen) {
  if (redisAsyncCommand(ac, on_published, &r->pub, "PUBLISH %b %b", chan, clen, msg, mlen) !=
      REDIS_OK)
    return -1;
  r->st.published++;
  return 0;
}

/* A message kept for the first connection (early_flush sends it); 0, or -1
 * (out of memory: what waited is lost with it). */
static int early_push(nx_redis_t *r, const char *chan, size_t clen, const void *msg, size_t mlen) {
  uint32_t c32 = (uint32_t)clen, m32 = (uint32_t)mlen;
  if (nx_buf_append(&r->early, &c32, 4) || nx_buf_append(&r->early, chan, clen) ||
      nx_buf_append(&r->early, &m32, 4) || nx_buf_append(&r->early, msg, mlen)) {
    nx_buf_free(&r->early);
    return -1;
  }
  return 0;
}

void nx_redis_publish(nx_rt_t *rt, const char *topic, size_t tlen, int opcode, const void *data,
                      size_t dlen) {
  nx_redis_t *r = rt->redis;
  redisAsyncContext *ac;
  const char *chan;
  size_t clen, queued;
  if (!r)
    return;
  ac = r->pub.up ? r->pub.ac : NULL;
  if (dlen > NX_REDIS_MAX_MESSAGE) {
    r->st.dropped++;
    nx_log(NX_LOG_WARN,
           "a message of %zu bytes is over %u, too large for Redis pub/sub: it reaches only "
           "this process's subscribers",
           dlen, NX_REDIS_MAX_MESSAGE);
    return;
  }
  /* While the first connection is being made (every address of the host in
   * turn), a publish (a startup hook's) waits for it in r->early. */
  queued = ac ? sdslen(ac->c.obuf) : nx_buf_size(&r->early);
  if ((!ac && !r->pub.fresh) || queued + dlen > NX_REDIS_MAX_QUEUED) {
    count_drop(r, ac || r->pub.fresh ? DROP_SLOW : DROP_DOWN);
    return;
  }
  r->msg.off = r->msg.len = 0;
  if (!(chan = chan_name(r, topic, tlen, &clen)) ||
      nx_buf_append(&r->msg, opcode == NX_WS_OP_TEXT ? "t" : "b", 1) ||
      nx_buf_append(&r->msg, r->node, NX_REDIS_NODE_ID_LEN) ||
      (dlen && nx_buf_append(&r->msg, data, dlen)) ||
      (ac ? publish_now(r, ac, chan, clen, r->msg.data, r->msg.len)
          : early_push(r, chan, clen, r->msg.data, r->msg.len))) {
    r->st.dropped++;
    return;
  }
  nx_buf_shrink_idle(&r->msg);
  if (r->dropping == DROP_SLOW) /* (an outage's drops are reported when it is over) */
    report_drops(r);
}

void nx_redis_topic_added(nx_rt_t *rt, const char *topic, size_t tlen) {
  if (rt->redis)
    subscribe_topic(topic, tlen, rt->redis);
}

void nx_redis_topic_removed(nx_rt_t *rt, const char *topic, size_t tlen) {
  nx_redis_t *r = rt->redis;
  const char *chan;
  size_t clen;
  if (!r || !r->sub.ac || !(chan = chan_name(r, topic, tlen, &clen)))
    return;
  redisAsyncCommand(r->sub.ac, NULL, NULL, "UNSUBSCRIBE %b", chan, clen);
}

void nx_redis_stats(nx_rt_t *rt, nx_redis_stats_t *s) {
  nx_redis_t *r = rt->redis;
  if (!r) {
    memset(s, 0, sizeof(*s));
    return;
  }
  *s = r->st;
  s->connected = r->sub.up && r->pub.up;
}

static void on_timer_closed(uv_handle_t *h) {
  nx_redis_t *r = ((link_t *)h->data)->r;
  if (--r->open_timers)
    return;
  nx_buf_free(&r->chan);
  nx_buf_free(&r->msg);
  nx_buf_free(&r->early);
  free(r->host);
  free(r->username);
  free(r->password);
  free(r);
}

static void link_close(link_t *l) {
  redisAsyncContext *ac = l->ac;
  l->ac = NULL;
  l->up = 0;
  if (ac)
    redisAsyncFree(ac); /* its poll handle closes on the next loop run */
  uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

void nx_redis_close(nx_rt_t *rt) {
  nx_redis_t *r = rt->redis;
  if (!r)
    return;
  r->closing = 1;
  rt->redis = NULL;
  link_close(&r->sub);
  link_close(&r->pub);
}
