/* The server's own plain-HTTP endpoints, for the machines around it: a
 * GET or HEAD without Upgrade to --health-path is answered 200 "ok" (a load
 * balancer's or an orchestrator's liveness check), and one to
 * --metrics-path gets the process's counters in Prometheus's text format.
 * Both are answered here, at once, without the app; anything else that is
 * not an upgrade still gets 426. Each process of --workers answers with its
 * own counters, labelled with its worker number. */
#include <stdio.h>
#include <string.h>

#include "deflate.h"
#include "handshake.h"
#include "llhttp.h"
#include "nx.h"
#include "redis.h"

/* Whether the target's path (up to '?') is path; an absolute-form target
 * (http://host/path: RFC 9112 §3.2.2) by its path. */
static int path_is(const char *target, size_t len, const char *path) {
  size_t n = strlen(path), origin = 0;
  const char *q;
  if (nx_target_split(target, len, &origin) == 0) {
    target += origin;
    len -= origin;
  }
  q = memchr(target, '?', len);
  if (q)
    len = (size_t)(q - target);
  return n && len == n && memcmp(target, path, n) == 0;
}

static void metric(char *buf, size_t cap, size_t *n, const char *name, const char *type,
                   const char *help, uint32_t worker, double value) {
  int k = snprintf(buf + *n, cap - *n, "# HELP %s %s\n# TYPE %s %s\n%s{worker=\"%u\"} %.0f\n", name,
                   help, name, type, name, (unsigned)worker, value);
  if (k > 0 && (size_t)k < cap - *n)
    *n += (size_t)k;
}

static size_t metrics_text(nx_conn_t *c, char *buf, size_t cap) {
  nx_rt_t *rt = c->rt;
  uint32_t w = c->listener->cfg.worker_id;
  uint64_t comp = 0, hits = 0;
  nx_redis_stats_t r;
  size_t n = 0;
  nx_deflate_stats(rt->deflate, &comp, &hits);
  nx_redis_stats(rt, &r);
  metric(buf, cap, &n, "nexlua_connections", "gauge",
         "Connections open in this process, in every state.", w, (double)rt->nconns);
  metric(buf, cap, &n, "nexlua_handlers", "gauge", "WebSocket handlers running in this process.", w,
         (double)rt->nhandlers);
  metric(buf, cap, &n, "nexlua_compressions_total", "counter",
         "Messages compressed for sending (permessage-deflate).", w, (double)comp);
  metric(buf, cap, &n, "nexlua_compression_cache_hits_total", "counter",
         "Sends that reused a message compressed for an earlier peer.", w, (double)hits);
  metric(buf, cap, &n, "nexlua_redis_connected", "gauge",
         "1 when both connections to Redis (--redis) are up.", w, (double)r.connected);
  metric(buf, cap, &n, "nexlua_redis_published_total", "counter", "Messages published to Redis.", w,
         (double)r.published);
  metric(buf, cap, &n, "nexlua_redis_received_total", "counter",
         "Messages from other processes delivered here through Redis.", w, (double)r.received);
  metric(buf, cap, &n, "nexlua_redis_dropped_total", "counter",
         "Messages published that did not go to Redis (not connected, too large, refused).", w,
         (double)r.dropped);
  return n;
}

int nx_ops_answer(nx_conn_t *c) {
  const nx_config_t *cfg = &c->listener->cfg;
  const char *target, *v[1];
  size_t len, vlen[1];
  const char *why;
  int method, head, health, bad;
  if (!cfg->health_path[0] && !cfg->metrics_path[0])
    return 0;
  if (nx_http_header_values(c->http, "upgrade", v, vlen, 1))
    return 0;
  target = nx_http_target(c->http, &len);
  health = path_is(target, len, cfg->health_path);
  if (!health && !path_is(target, len, cfg->metrics_path))
    return 0;
  method = nx_http_method(c->http);
  head = method == HTTP_HEAD;
  if ((bad = nx_http_check_plain(c->http, &why)) != 0) {
    nx_conn_debug(c, "bad HTTP request: %s", why);
    nx_http_respond(c, bad, NULL, NULL, 0);
  } else if (method != HTTP_GET && !head) {
    nx_http_respond(c, 405, "Allow: GET, HEAD\r\n", "these paths take GET and HEAD\n", 30);
  } else if (health) {
    nx_http_answer(c, 200, "Cache-Control: no-store\r\n", "ok\n", 3, head);
  } else {
    char body[2048];
    size_t n = metrics_text(c, body, sizeof(body));
    nx_http_answer(c, 200,
                   "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                   "Cache-Control: no-store\r\n",
                   body, n, head);
  }
  return 1;
}
