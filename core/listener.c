/* Listening sockets: one per app being served. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipcount.h"
#include "log.h"
#include "nx.h"
#include "tls.h"

void nx_config_defaults(nx_config_t *cfg) {
  memset(cfg, 0, sizeof(*cfg)); /* every field not set below is off/NULL */
  cfg->max_message_size = 16u * 1024 * 1024;
  cfg->max_header_size = 16 * 1024;
  cfg->handshake_timeout = 10000;
  cfg->close_timeout = 5000;
  cfg->write_high_water = 1024 * 1024;
  /* A maximal message fits; a slow subscriber holds no more. */
  cfg->write_limit = 16u * 1024 * 1024;
  cfg->read_pause_bytes = 4u * 1024 * 1024;
  cfg->ping_interval = 20000;
  cfg->ping_timeout = 20000;
  cfg->compression = 1;
  cfg->max_connections = 0;
  cfg->max_per_ip = 0;
  cfg->max_fragments = 100000;
  cfg->allowed_origins = NULL;
  cfg->compress_threshold = 1024;
}

static void on_connection(uv_stream_t *server, int status) {
  nx_listener_t *l = (nx_listener_t *)server->data;
  if (status < 0) {
    nx_log(NX_LOG_WARN, "accept error: %s", uv_strerror(status));
    return;
  }
  if (l->closed)
    return;
  nx_conn_accepted(l);
  nx_rt_run_ready(l->rt);
}

/* Binds a socket that other processes of this user may bind too
 * (SO_REUSEPORT): with --workers every worker listens on its own socket of
 * the same port and the kernel spreads new connections over them. libuv
 * 1.44 has no flag for it, so the socket is made here and handed to libuv.
 * Returns 0 or a negative libuv error code. */
static int bind_shared(uv_tcp_t *tcp, const struct sockaddr *addr) {
  int fd, on = 1, r;
  socklen_t len =
      addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uv_translate_sys_error(errno);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 || bind(fd, addr, len) != 0) {
    r = uv_translate_sys_error(errno);
    close(fd);
    return r;
  }
  r = uv_tcp_open(tcp, fd);
  if (r)
    close(fd);
  return r;
}

int nx_listener_start(nx_listener_t *l, const char *host, int port, char *err, size_t errlen) {
  struct sockaddr_storage addr;
  struct sockaddr_storage bound;
  int r, len = sizeof(bound);

  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr) != 0) {
    snprintf(err, errlen, "invalid listen address '%s' (use an IPv4 or IPv6 address)", host);
    return -1;
  }
  uv_tcp_init(l->rt->loop, &l->tcp);
  l->tcp.data = l;
  if (l->cfg.reuseport)
    r = bind_shared(&l->tcp, (const struct sockaddr *)&addr);
  else
    r = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0);
  if (r == 0)
    r = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
  if (r) {
    if (r == UV_EADDRINUSE)
      snprintf(err, errlen,
               "cannot listen on %s:%d: the address is already in use "
               "(another server running? pick another --port)",
               host, port);
    else
      snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, uv_strerror(r));
    l->closed = 1;
    uv_close((uv_handle_t *)&l->tcp, NULL);
    return -1;
  }
#ifdef __linux__
  /* Linux copies TCP_NODELAY from the listening socket to the accepted
   * ones: one setsockopt here instead of one per connection. */
  l->nodelay_inherited = uv_tcp_nodelay(&l->tcp, 1) == 0;
#endif
  uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len);
  if (bound.ss_family == AF_INET6) {
    l->port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  } else {
    l->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  }
  snprintf(l->host, sizeof(l->host), "%s", host);
  l->next = l->rt->listeners;
  l->rt->listeners = l;
  return 0;
}

/* Frees what a closed listener owns, and the listener (at exit only:
 * connections point at its settings while they live). */
void nx_listener_free(nx_listener_t *l) {
  free(l->cfg.allowed_origins);
  nx_ipcount_free(l->per_ip);
  if (l->cfg.tls)
    nx_tls_ctx_free(l->cfg.tls);
  free(l);
}

/* Stops accepting; open connections are left to their handlers (the
 * listener stays in rt->listeners so shutdown still finds them). */
void nx_listener_close(nx_listener_t *l) {
  if (l->closed)
    return;
  l->closed = 1;
  uv_close((uv_handle_t *)&l->tcp, NULL);
}
