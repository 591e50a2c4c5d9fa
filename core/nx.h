/* Internal types shared by the core modules: the runtime (loop + scheduler),
 * tasks (Lua coroutines), listeners and connections. Not a public API. */
#ifndef NX_H
#define NX_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "freelist.h"
#include "log.h"
#include "lua.h"
#include "shared_frame.h"
#include "timerq.h"
#include "ws_frame.h"

typedef struct nx_rt_s nx_rt_t;
typedef struct nx_task_s nx_task_t;
typedef struct nx_listener_s nx_listener_t;
typedef struct nx_conn_s nx_conn_t;
typedef struct nx_http_s nx_http_t;
typedef struct nx_msg_s nx_msg_t;
typedef struct nx_watchdog_s nx_watchdog_t;

/* A message becomes one Lua string, and LuaJIT's stop short of 2 GiB: the
 * largest message, whatever --max-message-size says (0 included). */
#define NX_MESSAGE_MAX 0x7fffff00u

/* Settings of a listener (one app); every limit has a default in listener.c. */
typedef struct {
  uint64_t max_message_size;  /* bytes; over it the peer gets 1009 (NX_MESSAGE_MAX at most) */
  size_t max_header_size;     /* bytes of request head; over it 431 */
  uint64_t handshake_timeout; /* ms from accept to a complete request */
  uint64_t close_timeout;     /* ms to wait for the peer's close reply */
  size_t write_high_water;    /* an owner's send yields above this */
  size_t write_limit;         /* a connection buffering more is dropped */
  size_t read_pause_bytes;    /* stop reading while this much waits for the app */
  uint32_t ping_interval;     /* ms of silence before we ping; 0: never */
  uint32_t max_connections;   /* per listener; more get HTTP 503; 0: the fd limit */
  uint32_t max_per_ip;        /* connections from one address; more are closed; 0: off */
  uint32_t max_fragments;     /* frames in one message; more: 1008 */
  char *allowed_origins;      /* comma list; a browser Origin not in it gets 403 */
  uint32_t ping_timeout;      /* ms to wait for any frame after a ping */
  int compression;            /* accept permessage-deflate offers */
  struct ssl_ctx_st *tls;     /* serve wss:// with this context, or NULL */
  size_t compress_threshold;  /* smaller messages are sent uncompressed */
  int reuseport;              /* bind with SO_REUSEPORT (--workers: one socket per worker) */
  char health_path[64];       /* a plain GET here gets 200 "ok" (ops.c); "": none */
  char metrics_path[64];      /* a plain GET here gets the counters, Prometheus text; "": none */
  uint32_t worker_id;         /* this process's worker number, for the metrics */
} nx_config_t;

/* What a suspended task waits for. */
enum { NX_WAIT_NONE = 0, NX_WAIT_RECV, NX_WAIT_DRAIN, NX_WAIT_SLEEP, NX_WAIT_PARK };

/* The Lua handle of a task (nexlua.task): valid while the task lives. */
typedef struct {
  nx_task_t *t;
  /* A task spawned by a connection's handler, or by such a task: that
   * connection's box (held by home_ref), whose sends wait like the
   * handler's (NULL and LUA_NOREF for any other task). */
  struct nx_box_s *home;
  int home_ref;
} nx_tbox_t;

/* How many ended structures of each kind a runtime keeps for reuse. None
 * in a sanitizer build: a use after free must reach AddressSanitizer. */
#if defined(__SANITIZE_ADDRESS__)
#define NX_STRUCT_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NX_STRUCT_CACHE 0
#endif
#endif
#ifndef NX_STRUCT_CACHE
#define NX_STRUCT_CACHE 64
#endif

struct nx_task_s {
  nx_rt_t *rt;
  lua_State *co; /* the coroutine; pinned by co_ref while the task lives */
  int co_ref;
  int ws_ref;    /* the handler's WebSocket (bind()), handed to the finisher */
  uint8_t wait;  /* NX_WAIT_* while suspended in a nexlua API */
  uint8_t ready; /* queued to be resumed */
  uint8_t running;
  uint8_t timed_out;  /* the wait ended by its timeout */
  uint8_t cancelled;  /* cancel() came while it was not waiting */
  uint8_t inbox_kept; /* its connection ended with messages unread: its box holds them */
  uint8_t ready_pass; /* rt->ready_pass when it was queued, or began a zero wait */
  uint8_t zero_wait;  /* waiting with a timeout under half a millisecond (in rt->zero) */
  nx_tbox_t *box;     /* its Lua handle, if one was asked for */
  int box_ref;
  union {
    int nargs;          /* values pushed on co for the next resume (while ready) */
    uint32_t zero_slot; /* its index in rt->zero (while in a zero wait) */
  };
  nx_conn_t *wait_conn;    /* the connection a RECV/DRAIN wait is on */
  uv_timer_t *timer;       /* for sleeps and timeouts, created on first use */
  nx_conn_t *conn;         /* the connection this task is the handler of, if any */
  nx_listener_t *listener; /* set for a connection's handler task (counted in
                            * rt->nhandlers): its listener's finisher runs at the end */
  nx_task_t *ready_next;   /* in the ready queue; while it waits to send, in its
                            * connection's list of writers instead */
  nx_task_t *prev, *next;  /* all live tasks */
};

struct nx_rt_s {
  uv_loop_t *loop;
  lua_State *L;       /* the main thread: coroutines are created from it */
  int box_mt_ref;     /* the connection boxes' metatable (lua_conn.c) */
  nx_task_t *current; /* the task whose coroutine is running now */
  nx_task_t *ready_head, *ready_tail;
  uint8_t ready_pass; /* of the nx_rt_run_ready call under way, or the last */
  /* Tasks in a wait whose timeout is under half a millisecond: they time
   * out at the end of the round after the one they began it in (see
   * nx_task_suspend). A slot is NULL once its task was woken otherwise. */
  nx_task_t **zero;
  uint32_t nzero, zero_cap;
  nx_task_t *tasks; /* every live task */
  nx_conn_t *dirty; /* connections with output to flush this turn */
  nx_listener_t *listeners;
  nx_timerq_t timers;   /* the connections' timeouts */
  uv_check_t check;     /* flush + run ready after I/O callbacks */
  uv_prepare_t prepare; /* flush before the loop blocks */
  uv_idle_t idle;       /* keeps the loop from blocking while tasks are ready */
  uv_idle_t spin;       /* keeps it polling until busy_until (--busy-poll) */
  uint64_t busy_ns;     /* --busy-poll: how long to poll after a read; 0: off */
  uint64_t busy_until;  /* uv_hrtime() at which polling stops */
  uv_signal_t sigint, sigterm, sighup;
  int signal_ref; /* Lua function called on SIGINT/SIGTERM, or LUA_NOREF */
  int abort_ref;  /* Lua function(task, message) for a task ended by the core, or LUA_NOREF */
  int stopping;
  uint32_t nhandlers; /* handler tasks alive (a shutdown waits for them) */
  /* The loop watchdog (watchdog.c): held_seq is odd while a task's Lua
   * runs (written by the loop only); held_warned_seq is the odd value the
   * watchdog's thread warned about, a hold that began at held_since. */
  uint64_t held_seq, held_since, held_warned_seq;
  struct nx_watchdog_s *watchdog;
  uint64_t nconns;
  struct nx_deflate_s *deflate; /* shared compressor, created on first use */
  struct nx_pubsub_s *pubsub;   /* topics, created on first use */
  struct nx_relay_s *relay;     /* topics to and from the other workers, or NULL */
  struct nx_redis_s *redis;     /* topics to and from other processes via Redis, or NULL */
  nx_buf_t scratch;             /* inflated messages land here first */
  nx_msg_t *ffi_msg;            /* the message nx_ffi_take last handed out */
  /* Freed blocks kept for reuse: small messages (nx_msg_new), output
   * buffers (conn.c), and the structures of ended connections, request
   * parsers and tasks (at most NX_STRUCT_CACHE each: a burst of short
   * connections then allocates almost nothing). */
  nx_freelist_t msg_pool, out_pool, conn_pool, http_pool, task_pool;
  nx_buf_t tlsplain; /* what TLS decrypted from the last read */
  /* Fairness: a connection that has sent NX_READ_TURN_MAX bytes in one
   * turn is read no further until the next (conn.c). */
  nx_conn_t *read_conn; /* the connection read last this turn, and how much */
  size_t read_bytes;
  uint32_t read_msgs;
  nx_conn_t **held; /* connections whose reading waits for the next turn */
  uint32_t nheld, held_cap;
  /* Every read lands here and is parsed before the next. One buffer for
   * all connections, so it can be large: a 64 KiB message then mostly
   * arrives in one read, and a busy connection drains in few syscalls. */
  uint8_t readbuf[262144];
};

struct nx_listener_s {
  uv_tcp_t tcp;
  nx_rt_t *rt;
  nx_config_t cfg;
  int entry_ref;  /* Lua function(box, path) run per upgrade request, in a new task */
  int finish_ref; /* Lua function(ws, ok, err, co) run when a bound handler task ends */
  int closed;
  int nodelay_inherited; /* accepted sockets get TCP_NODELAY from the listener (Linux) */
  char host[64];
  int port;
  nx_conn_t *conns;        /* open connections, for shutdown */
  uint32_t nconns;         /* connections alive (accepted and not yet freed) */
  nx_log_limit_t over_log; /* "at the connection limit" (503) entries */
  nx_log_limit_t slow_log; /* "does not read fast enough" entries */
  struct nx_ipcount_s *per_ip;
  nx_listener_t *next;
};

struct nx_msg_s {
  nx_msg_t *next;
  size_t len, cap;
  uint8_t opcode;
  uint8_t compressed;   /* permessage-deflate: RSV1 was set on its first frame */
  uint32_t check_kb;    /* compressed and still coming: KiB at which to check it next */
  uint64_t inflate_max; /* compressed and whole, waiting: its inflated size limit (0: none) */
  uint8_t data[];
};

enum {
  NX_CONN_HTTP = 0, /* reading the request */
  NX_CONN_ROUTING,  /* request handed to Lua, not yet accepted */
  NX_CONN_OPEN,     /* WebSocket open */
  NX_CONN_CLOSING,  /* close frame sent, waiting for the peer's */
  NX_CONN_DONE      /* finished: output draining or TCP closing */
};

#define NX_BOX_MARK 0x6e78626fu /* "nxbo" */
#define NX_CLOSE_REASON_MAX 123 /* bytes of a close frame's reason */

/* The Lua side's handle on a connection: a userdata that outlives it. It
 * also keeps the request the connection was opened with, compact (see
 * request.c): Lua builds a table of it only when the app looks. */
typedef struct nx_box_s {
  uint32_t mark;       /* NX_BOX_MARK, first: what the core functions check (lua_conn.c) */
  uint16_t close_code; /* what the app is told after the end */
  uint16_t client_port;
  nx_conn_t *conn;       /* NULL once the connection is freed */
  char *close_reason;    /* taken over from the connection at its end; freed by __gc */
  nx_msg_t *inbox;       /* messages still unread at its end (taken over too) */
  uint8_t client_family; /* 4 or 6; 0 when the address is unknown */
  uint8_t tls;           /* wss:// */
  uint8_t method;        /* llhttp_method_t */
  uint8_t close_reason_len;
  uint8_t client_ip[16];
  uint32_t url_len;  /* head: the URL, then per header its name and value lengths */
  uint32_t nheaders; /* (u32 each, unaligned) and bytes, the value trimmed */
  uint32_t head_len;
  uint8_t head[];
} nx_box_t;

struct nx_conn_s {
  uv_tcp_t tcp;
  nx_tnode_t tnode; /* its one timeout: handshake, close or heartbeat */
  nx_listener_t *listener;
  nx_rt_t *rt;
  uint8_t state;
  uint8_t closing_handles; /* handles whose close callback is pending */
  uint8_t close_sent, close_received, end_after_flush, reading, dirty;
  uint8_t paused; /* reads stopped while the app catches up */
  uint8_t ping_outstanding;
  uint8_t over_capacity;    /* accepted past max_connections: answer 503 */
  uint8_t ip_counted;       /* counted in the listener's per-IP caps, under ip */
  uint8_t tls_closed;       /* our close_notify is queued */
  uint8_t close_reason_len; /* (a reason may hold NUL: it is UTF-8) */
  uint8_t had_backlog;      /* bytes of ours waited at the last heartbeat */
  uint8_t pmd_offered;      /* the request carried an acceptable permessage-deflate offer */
  uint8_t deflate;          /* permessage-deflate is on for this connection */
  uint8_t pmd_bits;         /* our compressor's window (server_max_window_bits) */
  uint8_t pmd_bits_reply;   /* server_max_window_bits to answer (0: the offer did not name it) */
  uint8_t linger;           /* ends while the peer may still send: lingering close */
  uint8_t lingering;        /* our last bytes and FIN are out: reading to discard */
  uint8_t held;             /* in rt->held: read enough this turn */
  uint8_t tls_eof;          /* close_notify came with bytes still in pending */
  uint16_t close_code;      /* for the app: peer's code, 1005, 1006 or ours */
  uint8_t ip[16];           /* peer address, when per-IP caps are on */
  uint32_t fragments;       /* frames of the message being assembled */
  uint32_t ping_interval, ping_timeout; /* this connection's heartbeat */
  int box_ref;
  uint32_t handed;     /* bytes the socket took from us (mod 2^32) */
  uint32_t acked_mark; /* handed less those unacknowledged, at the last heartbeat */
  uint64_t last_rx;    /* loop time of the last sign of life: bytes read, or ours written */
  uint64_t ping_sent;  /* (while lingering: the loop time it ends at the latest) */
  char *close_reason;
  nx_http_t *http;   /* request parser; freed at the upgrade */
  nx_buf_t *pending; /* bytes after the request or while paused, or NULL (conn.c) */
  nx_ws_parser_t ws;
  nx_msg_t *cur; /* message being assembled */
  nx_msg_t *inbox, *inbox_tail;
  size_t inbox_bytes;
  nx_buf_t out;           /* frames waiting to be written */
  uv_write_t *wreq;       /* the write in flight (owning its bytes: stream.c), or NULL */
  struct nx_segq_s *segq; /* shared frames queued before out, or NULL (conn_output.c) */
  struct nx_tls_s *tls;   /* the TLS transport (with its output), or NULL for plain TCP */
  nx_task_t *owner;       /* the handler task */
  nx_task_t *reader;      /* task waiting in recv */
  nx_task_t *writer;      /* task waiting for the buffer to drain */
  nx_box_t *box;
  nx_conn_t *dirty_next;
  nx_conn_t *prev, *next; /* in listener->conns */
  struct nx_sub_s *subs;  /* its topic subscriptions (pubsub.c) */
};

/* lua_conn.c: the FFI fast path (exported: lua/nexlua/private/fastpath.lua) */
int nx_ffi_take(nx_box_t *b, const char **data, size_t *len);
/* kind: text, binary, or text whose UTF-8 the core has already checked (the
 * last text message nx_ffi_take handed out, sent back as it was) */
enum { NX_FFI_TEXT = 0, NX_FFI_BINARY = 1, NX_FFI_TEXT_VALID = 2 };
int nx_ffi_send(nx_box_t *b, const char *data, size_t len, int kind);

/* runtime.c */
nx_rt_t *nx_rt_get(lua_State *L);
nx_task_t *nx_task_new(nx_rt_t *rt);
nx_task_t *nx_task_start(nx_rt_t *rt, int fn_ref, const char *arg1, const char *arg2);
void nx_task_wake(nx_task_t *t, int nargs);
void nx_task_resume(nx_task_t *t, int nargs);
void nx_rt_run_ready(nx_rt_t *rt);
int nx_task_suspend(lua_State *L, nx_task_t *t, int what, nx_conn_t *c, double timeout);
void nx_task_push_box(lua_State *L, nx_task_t *t);
int nx_task_cancel(nx_task_t *t);
void nx_task_cancel_wait(nx_task_t *t);
nx_task_t *nx_rt_current(lua_State *L, const char *what);
int nx_error_at_app(lua_State *L, const char *fmt, ...);
void nx_set_framework_prefix(const char *prefix);
/* Its address is the value a wait returns, after nil, where the coroutine
 * cannot be suspended (core.CANNOT_WAIT in Lua). */
extern const char nx_cannot_wait;
void nx_rt_mark_dirty(nx_conn_t *c);
void nx_rt_release_ffi_msg(nx_rt_t *rt);
int nx_task_where(nx_task_t *t, char *buf, size_t n);

/* watchdog.c: a thread that warns when a task runs Lua too long without a
 * wait (started by core.run for as long as it runs). */
nx_watchdog_t *nx_watchdog_start(nx_rt_t *rt);
void nx_watchdog_stop(nx_watchdog_t *w);
void nx_watchdog_held_ended(nx_rt_t *rt, nx_task_t *t);
/* Around a blocking call of nexlua's own made while Lua runs (the Redis
 * check at start-up): no hold to name. pause returns what unpause takes. */
int nx_watchdog_pause(nx_rt_t *rt);
void nx_watchdog_unpause(nx_rt_t *rt, int paused);
void nx_rt_busy(nx_rt_t *rt);
void nx_rt_flush(nx_rt_t *rt);
void nx_rt_close(lua_State *L);

/* listener.c */
void nx_config_defaults(nx_config_t *cfg);
int nx_listener_start(nx_listener_t *l, const char *host, int port, char *err, size_t errlen);
void nx_listener_close(nx_listener_t *l);
void nx_listener_free(nx_listener_t *l);

/* conn.c */
enum { NX_MSG_SMALL = 216 }; /* data bytes of a reusable message (256 with the header) */
/* A message able to hold cap bytes (len 0); NULL when out of memory. Small
 * ones come from the runtime's free list, so a small message costs no malloc. */
nx_msg_t *nx_msg_new(nx_rt_t *rt, size_t cap);
void nx_msg_free(nx_rt_t *rt, nx_msg_t *m);
void nx_conn_accepted(nx_listener_t *l);
void nx_conn_timeout(nx_tnode_t *n);
int nx_conn_send(nx_conn_t *c, int opcode, const void *data, size_t len);
int nx_conn_send_raw(nx_conn_t *c, const void *data, size_t len);
/* A frame encoded once for many connections (a publish): nx_conn_deflate_bits
 * says which one a connection gets (0: uncompressed, else the compressor's
 * window), nx_conn_encode_shared encodes it (NULL when out of memory), and
 * nx_conn_send_frame queues it as nx_conn_send does, holding a reference
 * instead of a copy while the connection is behind. */
int nx_conn_deflate_bits(const nx_conn_t *c, int opcode, size_t len);
nx_shared_frame_t *nx_conn_encode_shared(nx_rt_t *rt, int bits, int opcode, const void *data,
                                         size_t len);
int nx_conn_send_frame(nx_conn_t *c, nx_shared_frame_t *f);
void nx_conn_close_frame(nx_conn_t *c, unsigned code, const char *reason, size_t rlen);
void nx_conn_fail(nx_conn_t *c, unsigned code, const char *reason);
/* Whether the connection's end (a violation, or the peer's close) is
 * waiting for the app to take the messages that came before it (see
 * defer_end in conn_frames.c). */
static inline int nx_conn_end_waits(const nx_conn_t *c) {
  return c->state == NX_CONN_OPEN && (c->close_received || c->ws.error_code);
}
/* Whether the app has messages to answer before the connection's end:
 * some it has not taken, or one it is taking now (a task is running: the
 * rest of the input was parsed inside its receive, which resumed reading;
 * its replies in this loop turn go first), or a reply it is sending (a
 * send waiting for the client to read). */
static inline int nx_conn_app_has_messages(const nx_conn_t *c) {
  return c->owner && (c->inbox || c->rt->current || c->writer);
}
/* Ends a connection whose end waited (nx_conn_end_waits), now: at the end
 * of the loop turn in which the app took the last of those messages or
 * ended, or at the close timeout. Else nothing. */
void nx_conn_end_deferred(nx_conn_t *c);
void nx_conn_end(nx_conn_t *c);
void nx_conn_abort(nx_conn_t *c, uint16_t app_code);
void nx_conn_flush(nx_conn_t *c);
/* "ADDRESS:PORT" of the connection's client ("?:0" once it is gone). */
const char *nx_conn_peer_name(nx_conn_t *c, char *buf, size_t n);
/* A debug entry about the connection: "client ADDRESS:PORT: message". */
void nx_conn_debug(nx_conn_t *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void nx_conn_upgraded(nx_conn_t *c, double ping_interval, double ping_timeout);
/* Bytes queued for the connection and not yet written: its output buffer,
 * and, when it is behind or on TLS, what nx_conn_buffered_all adds. */
size_t nx_conn_buffered_all(const nx_conn_t *c);
static inline size_t nx_conn_buffered(const nx_conn_t *c) {
  return c->segq || c->wreq || c->tls ? nx_conn_buffered_all(c) : nx_buf_size(&c->out);
}
nx_msg_t *nx_conn_pop(nx_conn_t *c);
nx_msg_t *nx_msg_inflate(nx_rt_t *rt, nx_msg_t *m, int *err);
unsigned nx_inflate_code(int err, const char **reason);

/* runtime.c: the loop polls without sleeping while connections are held. */
void nx_rt_keep_polling(nx_rt_t *rt);
/* conn.c: connections that read enough in the last turn read again. */
void nx_conn_release_held(nx_rt_t *rt);

/* http.c */
nx_http_t *nx_http_new(nx_rt_t *rt, size_t max_header_size);
void nx_http_free(nx_rt_t *rt, nx_http_t *h);
/* Frees a parser and its buffer (for a drained pool). */
void nx_http_destroy(void *h);
/* Feeds request bytes. Returns 0 while incomplete, 1 when the request is
 * complete (tail and tail_len: the bytes after it), or an HTTP status (400;
 * 414 for a request target past the head limit, 431 for a head past it). */
int nx_http_feed(nx_http_t *h, const char *data, size_t len, const char **tail, size_t *tail_len);
/* Why nx_http_feed refused the request (for the log). */
const char *nx_http_error(const nx_http_t *h);
/* 1, once, when the head is complete, is a valid upgrade and carries
 * Expect: 100-continue: a 100 (Continue) is due now, before any body is
 * read and before the 101 (RFC 9110 §7.8, §10.1.1). */
int nx_http_expects_continue(nx_http_t *h);
/* Validates the complete request as a WebSocket upgrade: 0 or a status. */
int nx_http_check(nx_http_t *h, const char **why, char *key, size_t keylen);
/* The request head in a box's compact form: the size it needs after the
 * box's fixed part, then the copy (method, URL and headers). */
size_t nx_http_store_size(const nx_http_t *h);
void nx_http_store(const nx_http_t *h, nx_box_t *b);
void nx_http_respond(nx_conn_t *c, int status, const char *headers, const char *body, size_t blen);
/* nx_http_respond, without the body when head_only (the answer to a HEAD). */
void nx_http_answer(nx_conn_t *c, int status, const char *headers, const char *body, size_t blen,
                    int head_only);
/* The request target as sent, and the method (llhttp_method_t). */
const char *nx_http_target(const nx_http_t *h, size_t *len);
int nx_http_method(const nx_http_t *h);
/* The checks every request must pass (RFC 9112: header names, Host,
 * Transfer-Encoding), for a request answered without an upgrade: 0, or
 * 400 and why. */
int nx_http_check_plain(nx_http_t *h, const char **why);

/* ops.c: the server's own plain-HTTP endpoints (--health-path,
 * --metrics-path). 1 if the request was one of them, and is answered. */
int nx_ops_answer(nx_conn_t *c);
int nx_http_accept_key(const char *key, char out[29]);
/* Collects the values of every header called name: at most max of them. */
size_t nx_http_header_values(nx_http_t *h, const char *name, const char **values, size_t *lens,
                             size_t max);

/* request.c */
/* The peer's address: returns its family, 4 or 6 (0 when it is unknown),
 * with ip (its first 4 or 16 bytes) and port set. */
int nx_peer_address(const uv_tcp_t *tcp, uint8_t ip[16], uint16_t *port);
void nx_request_store_peer(nx_box_t *b, nx_conn_t *c);
/* Pushes the box's request as {method=, target=, path=, query=, scheme=,
 * client_host=, client_port=, headers={name, value, ...}}. */
void nx_request_push(lua_State *L, const nx_box_t *b);
/* The value of the first header called name (any case), or NULL. */
const char *nx_request_header(const nx_box_t *b, const char *name, size_t *len);
/* Pushes the path of the box's request (the target without its query). */
void nx_request_push_path(lua_State *L, const nx_box_t *b);

/* lua_core.c: *ref becomes a registry reference to the value at idx (the
 * old one dropped). */
void nx_lua_set_ref(lua_State *L, int idx, int *ref);
/* lua_tasks.c, lua_signals.c, lua_watch.c: their functions into the
 * nexlua.core table on top of the stack. */
void nx_lua_tasks_open(lua_State *L);
void nx_lua_signals_open(lua_State *L);
void nx_lua_watch_open(lua_State *L);

/* lua_conn.c */
void nx_lua_conn_open(lua_State *L);
void nx_lua_client_open(lua_State *L);
int nx_lua_conn_dispatch(nx_conn_t *c);

/* process.c (--workers) */
void nx_lua_process_open(lua_State *L);

/* lua_redis.c (--redis) */
void nx_lua_redis_open(lua_State *L);
/* Adds the redis_* fields to the stats table on top of the stack. */
void nx_lua_redis_stats(lua_State *L);
/* In a stop signal's handler: 1 if it comes within a quarter second of the
 * first, and so is that same request delivered twice (lua_signals.c). */
int nx_same_stop(void);
/* Unblocks SIGINT, SIGTERM and SIGHUP (a new worker has them blocked). */
void nx__unblock_signals(void);
/* lua_signals.c: from the start of the process until core.on_signal, a SIGHUP
 * is noted (not the default action: the end of the process) and raised
 * again then. */
void nx_catch_early_hup(void);
/* 1 if one came (and forgets it): the master of --workers, which handles
 * signals itself, takes it when its own handlers are in place. */
int nx_take_early_hup(void);

#endif
