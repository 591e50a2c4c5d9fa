/* nx_floor: the floor of scripts/bench --compare. nexlua's own pure C
 * protocol layer (the frame parser and encoder of nx_proto) on raw epoll,
 * with nothing else: no Lua, no libuv, no options, no limits beyond the
 * 16 MiB message size. It serves what the bench apps serve:
 *   /ws   echo: every message back as it came, text as text, binary as binary
 *   /sub  subscriber: held until it leaves
 *   /pub  every message is sent as text to every subscriber
 * and closes as nexlua does: the peer's close frame answered, with our FIN
 * in the same packet, then the socket closed at once (the peer sends nothing
 * after its close frame); after a failure or a refusal, the socket waits
 * for the peer's FIN. What it measures in the same run as
 * nexlua is the cost of the machine itself (the kernel's TCP and socket
 * work, the VM's wake-ups): the part of a figure no server on top of it can
 * remove. It is a yardstick for the bench, not a server to deploy (it
 * trusts its client: bench traffic on 127.0.0.1 only).
 *
 * usage: nx_floor PORT (0: any free port, printed on stderr) */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "buf.h"
#include "lg.h"
#include "ws_frame.h"

enum { ST_HTTP, ST_OPEN, ST_CLOSING };
enum { R_ECHO, R_SUB, R_PUB };

typedef struct conn_s conn_t;
struct conn_s {
  int fd;
  uint8_t state, route, dirty, fin_after_flush, want_out;
  uint8_t close_after_fin; /* the peer's close frame came: nothing more will */
  uint8_t opcode;          /* of the message in progress */
  nx_ws_parser_t ws;
  nx_buf_t head;        /* an incomplete request head */
  nx_buf_t msg;         /* a message spread over reads */
  const uint8_t *whole; /* a message whole in the read buffer: used in place */
  size_t whole_len;
  nx_buf_t out;
  conn_t *sub_prev, *sub_next; /* subscribers */
  conn_t *next_dirty;
};

static int ep;
static uint8_t rbuf[262144];
static conn_t *subscribers, *dirty;

static void mark_dirty(conn_t *c) {
  if (!c->dirty) {
    c->dirty = 1;
    c->next_dirty = dirty;
    dirty = c;
  }
}

/* Out of memory for a connection's output: it is given up (closed once
 * what is queued has left). */
static void give_up(conn_t *c) {
  c->state = ST_CLOSING;
  c->fin_after_flush = 1;
}

static void send_frame(conn_t *c, int opcode, const uint8_t *p, size_t n) {
  uint8_t hdr[14];
  size_t hlen = nx_ws_frame_header(hdr, 1, 0, opcode, n, NULL);
  if (!nx_buf_size(&c->out) && n >= 16384) {
    /* Large, with nothing queued before it: straight to the socket, and
     * only what it does not take is copied. */
    struct iovec iov[2] = {{hdr, hlen}, {(void *)p, n}};
    ssize_t w = writev(c->fd, iov, 2);
    size_t done = w > 0 ? (size_t)w : 0;
    if (done >= hlen + n)
      return;
    if (done < hlen && nx_buf_append(&c->out, hdr + done, hlen - done))
      give_up(c);
    done = done > hlen ? done - hlen : 0;
    if (nx_buf_append(&c->out, p + done, n - done))
      give_up(c);
    mark_dirty(c);
    return;
  }
  if (nx_buf_append(&c->out, hdr, hlen) || nx_buf_append(&c->out, p, n))
    give_up(c);
  mark_dirty(c);
}

static void conn_close(conn_t *c) {
  if (c->route == R_SUB && c->state != ST_HTTP) {
    if (c->sub_prev)
      c->sub_prev->sub_next = c->sub_next;
    else if (subscribers == c)
      subscribers = c->sub_next;
    if (c->sub_next)
      c->sub_next->sub_prev = c->sub_prev;
  }
  close(c->fd); /* leaves the epoll set with it */
  c->fd = -1;
  nx_ws_parser_free(&c->ws);
  nx_buf_free(&c->head);
  nx_buf_free(&c->msg);
  nx_buf_free(&c->out);
  if (!c->dirty)
    free(c); /* a dirty one is freed by flush_all */
}

/* ---- frames ---------------------------------------------------------- */

static int on_frame_begin(nx_ws_parser_t *p, uint64_t len) {
  (void)len;
  if (p->opcode != NX_WS_OP_CONT)
    ((conn_t *)p->data)->opcode = p->opcode;
  return 0;
}

static int on_data(nx_ws_parser_t *p, const uint8_t *data, size_t n) {
  conn_t *c = (conn_t *)p->data;
  if (p->fin && p->remaining == 0 && p->msg_size == n) {
    /* The message is all here (its end comes next, in this same parse): no
     * copy. */
    c->whole = data;
    c->whole_len = n;
    return 0;
  }
  return nx_buf_append(&c->msg, data, n) ? 1 : 0;
}

static int on_message_end(nx_ws_parser_t *p) {
  conn_t *c = (conn_t *)p->data, *s;
  const uint8_t *d = c->whole ? c->whole : c->msg.data;
  size_t n = c->whole ? c->whole_len : c->msg.len;
  if (c->route == R_ECHO)
    send_frame(c, c->opcode, d, n);
  else if (c->route == R_PUB)
    for (s = subscribers; s; s = s->sub_next)
      if (s->state == ST_OPEN) /* nothing after our close frame */
        send_frame(s, NX_WS_OP_TEXT, d, n);
  c->whole = NULL;
  c->msg.len = 0;
  return 0;
}

static int on_control(nx_ws_parser_t *p, int opcode, const uint8_t *payload, size_t len) {
  conn_t *c = (conn_t *)p->data;
  if (opcode == NX_WS_OP_PING)
    send_frame(c, NX_WS_OP_PONG, payload, len);
  else if (opcode == NX_WS_OP_CLOSE && c->state == ST_OPEN) {
    send_frame(c, NX_WS_OP_CLOSE, payload, len >= 2 ? 2 : 0);
    c->state = ST_CLOSING;
    c->fin_after_flush = 1;
    c->close_after_fin = 1;
  }
  return 0;
}

/* The parser's fast path: a whole message in one frame, in place. */
static int on_message(nx_ws_parser_t *p, int opcode, int rsv1, const uint8_t *data, size_t n) {
  conn_t *c = (conn_t *)p->data;
  (void)rsv1;
  c->opcode = opcode;
  c->whole = data;
  c->whole_len = n;
  return on_message_end(p);
}

static const nx_ws_callbacks_t callbacks = {NULL,           on_frame_begin, on_data,
                                            on_message_end, on_control,     on_message};

static void parse_frames(conn_t *c, uint8_t *data, size_t len) {
  while (len && c->state == ST_OPEN) {
    size_t n = nx_ws_parse(&c->ws, data, len);
    if (c->ws.error_code) {
      uint8_t payload[2] = {(uint8_t)(c->ws.error_code >> 8), (uint8_t)c->ws.error_code};
      send_frame(c, NX_WS_OP_CLOSE, payload, 2);
      c->state = ST_CLOSING;
      c->fin_after_flush = 1;
      return;
    }
    if (n == 0)
      return;
    data += n;
    len -= n;
  }
}

/* ---- the opening handshake ------------------------------------------- */

static const char *route_of(const char *path, size_t len, int *route) {
  size_t n = 0;
  while (n < len && path[n] != '?')
    n++;
  if (n == 3 && memcmp(path, "/ws", 3) == 0)
    *route = R_ECHO;
  else if (n == 4 && memcmp(path, "/sub", 4) == 0)
    *route = R_SUB;
  else if (n == 4 && memcmp(path, "/pub", 4) == 0)
    *route = R_PUB;
  else
    return "404 Not Found";
  return NULL;
}

/* Answers a complete head; returns the bytes consumed (the head), or 0
 * when the connection was refused. */
static size_t upgrade(conn_t *c, const char *head, size_t len) {
  static const char ok[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
  const char *sp = memchr(head, ' ', len), *path, *pe, *key, *why = "400 Bad Request";
  size_t klen = 0;
  int route = R_ECHO;
  char accept[29], reply[160];
  int n;
  if (sp && (path = sp + 1) < head + len && (pe = memchr(path, ' ', (size_t)(head + len - path))) &&
      (key = lg_hs_header(head, len - 2, "Sec-WebSocket-Key", &klen)) && klen == 24)
    why = route_of(path, (size_t)(pe - path), &route);
  if (why) {
    n = snprintf(reply, sizeof(reply),
                 "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", why);
    nx_buf_append(&c->out, reply, (size_t)n);
    c->state = ST_CLOSING;
    c->fin_after_flush = 1;
    mark_dirty(c);
    return 0;
  }
  lg_hs_accept(key, klen, accept);
  nx_buf_append(&c->out, ok, sizeof(ok) - 1);
  nx_buf_append(&c->out, accept, 28);
  nx_buf_append(&c->out, "\r\n\r\n", 4);
  mark_dirty(c);
  c->state = ST_OPEN;
  c->route = (uint8_t)route;
  c->ws.max_message_size = 16u << 20;
  nx_ws_parser_init(&c->ws, &callbacks, c, NX_WS_ROLE_SERVER);
  if (route == R_SUB) {
    c->sub_next = subscribers;
    if (subscribers)
      subscribers->sub_prev = c;
    subscribers = c;
  }
  return len;
}

static const uint8_t *find_end(const uint8_t *d, size_t n) {
  size_t i;
  for (i = 3; i < n; i++)
    if (d[i] == '\n' && d[i - 1] == '\r' && d[i - 2] == '\n' && d[i - 3] == '\r')
      return d + i + 1;
  return NULL;
}

static void on_http(conn_t *c, uint8_t *data, size_t len) {
  const uint8_t *end;
  size_t used;
  if (c->head.len) { /* the rest of a head that came in pieces */
    if (nx_buf_append(&c->head, data, len)) {
      conn_close(c);
      return;
    }
    data = c->head.data;
    len = c->head.len;
  }
  end = find_end(data, len);
  if (!end) {
    if (len > 8192) {
      conn_close(c);
      return;
    }
    if (!c->head.len)
      nx_buf_append(&c->head, data, len);
    return;
  }
  used = upgrade(c, (const char *)data, (size_t)(end - data));
  if (used && len > used)
    parse_frames(c, data + used, len - used);
  nx_buf_free(&c->head);
}

/* ---- I/O ------------------------------------------------------------- */

static void flush(conn_t *c) {
  while (nx_buf_size(&c->out)) {
    /* The last bytes before our FIN wait for it: one packet, not two. */
    ssize_t w = send(c->fd, c->out.data + c->out.off, nx_buf_size(&c->out),
                     MSG_NOSIGNAL | MSG_DONTWAIT | (c->fin_after_flush ? MSG_MORE : 0));
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        conn_close(c);
        return;
      }
      break;
    }
    nx_buf_consume(&c->out, (size_t)w);
  }
  if (nx_buf_size(&c->out) && !c->want_out) {
    struct epoll_event ev = {EPOLLIN | EPOLLOUT, {.ptr = c}};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = 1;
  } else if (!nx_buf_size(&c->out)) {
    if (c->want_out) {
      struct epoll_event ev = {EPOLLIN, {.ptr = c}};
      epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      c->want_out = 0;
    }
    nx_buf_free(&c->out); /* an idle connection holds no buffer */
    if (c->fin_after_flush) {
      shutdown(c->fd, SHUT_WR);
      c->fin_after_flush = 0;
      if (c->close_after_fin) {
        conn_close(c);
        return;
      }
    }
  }
}

/* Everything queued during this turn leaves in one write per connection. */
static void flush_all(void) {
  while (dirty) {
    conn_t *c = dirty;
    dirty = c->next_dirty;
    c->dirty = 0;
    if (c->fd < 0)
      free(c);
    else
      flush(c);
  }
}

static void on_readable(conn_t *c) {
  ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    conn_close(c);
    return;
  }
  if (n < 0)
    return;
  if (c->state == ST_HTTP)
    on_http(c, rbuf, (size_t)n);
  else if (c->state == ST_OPEN)
    parse_frames(c, rbuf, (size_t)n);
  /* ST_CLOSING: input after the close frame is read and dropped */
}

static void on_accept(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    conn_t *c;
    struct epoll_event ev;
    if (fd < 0)
      return;
    if (!(c = (conn_t *)calloc(1, sizeof(*c)))) {
      close(fd);
      continue;
    }
    c->fd = fd;
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
}

int main(int argc, char **argv) {
  struct sockaddr_in a;
  struct epoll_event evs[256];
  int lfd, one = 1;
  if (argc != 2) {
    fprintf(stderr, "usage: nx_floor PORT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* inherited by accepted sockets */
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1024)) {
    perror("nx_floor: listen");
    return 1;
  }
  ep = epoll_create1(EPOLL_CLOEXEC);
  {
    struct epoll_event ev = {EPOLLIN, {.ptr = NULL}};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  }
  {
    socklen_t alen = sizeof(a);
    getsockname(lfd, (struct sockaddr *)&a, &alen); /* the port, when asked for 0 */
    fprintf(stderr, "nx_floor listening on ws://127.0.0.1:%d\n", ntohs(a.sin_port));
  }
  for (;;) {
    int i, n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) {
      perror("nx_floor: epoll_wait");
      return 1;
    }
    for (i = 0; i < n; i++) {
      conn_t *c = (conn_t *)evs[i].data.ptr;
      if (!c)
        on_accept(lfd);
      else if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
        flush(c);
      else if (c->fd >= 0)
        on_readable(c);
    }
    flush_all();
  }
}
