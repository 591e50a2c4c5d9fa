/* nx_loadgen: the run's state, shared by its modules (loadgen.c: options
 * and phases; lg_conn.c: connections and frames; lg_report.c: output). */
#ifndef NX_LG_RUN_H
#define NX_LG_RUN_H

#include <stdint.h>
#include <sys/resource.h>

#include <netinet/in.h>
#include <uv.h>

#include "lg.h"
#include "ws_frame.h"

#define MAX_CONNS 200000
#define MAX_INFLIGHT 4096
#define MAX_SIZE (16u << 20)
#define MAX_SRC 64

enum { MODE_ECHO, MODE_CONNECT, MODE_IDLE, MODE_BROADCAST };
enum { ROLE_ECHO, ROLE_CYCLE, ROLE_IDLE, ROLE_SUB, ROLE_PUB };
/* CLOSING: our close frame is out; WAIT_EOF: close frames exchanged, waiting
 * for the server to end TCP (RFC 6455 §7.1.1: the server closes first). */
enum { CS_CONNECTING, CS_HANDSHAKE, CS_OPEN, CS_CLOSING, CS_WAIT_EOF, CS_DONE };
enum { PH_CONNECT, PH_SETTLE, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_CLOSE, PH_END };

typedef struct {
  uint8_t *p;
  size_t len, cap;
} wbuf_t;

typedef struct conn_s conn_t;
struct conn_s {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  conn_t *prev, *next;   /* every live connection */
  conn_t *tprev, *tnext; /* connections with a deadline */
  int timed;
  uint8_t role, state, writing, handle_closing, opened, src;
  uint32_t id;
  uint64_t t_start, deadline;
  char *hs;
  size_t hs_len, hs_cap;
  char accept[29];
  nx_ws_parser_t parser;
  uint8_t pmd;           /* permessage-deflate negotiated (--deflate) */
  uint8_t pmd_reset;     /* ... with server_no_context_takeover: a fresh stream each message */
  uint8_t rx_compressed; /* the message being received has RSV1 */
  void *rx_z;            /* its inflate stream (a z_stream), once negotiated */
  int rx_op;
  uint64_t rx_pos, rx_seq, tx_seq;
  uint64_t *ts; /* echo: send time of each message in flight (ring of K) */
  wbuf_t pend, infl;
};

typedef struct {
  uint64_t ts;
  uint32_t count;
} slot_t;

typedef struct {
  /* options */
  int mode;
  char host[64];
  int port;
  char path[256], pub_path[256];
  struct sockaddr_in dst;
  struct sockaddr_in src[MAX_SRC];
  int nsrc;
  int conns, inflight, binary, json, quiet, spin, server_pid, concurrency;
  int deflate, random; /* offer permessage-deflate; random payload bytes */
  size_t size;
  double duration, warmup, settle, setup_timeout, close_wait, hs_timeout, drain_timeout;

  /* state */
  uv_loop_t *loop;
  uv_timer_t t_phase, t_sweep, t_guard;
  uv_signal_t sig_int, sig_term;
  int phase;
  uint64_t rng;
  uint8_t *tmpl;
  conn_t *all, *timed;
  long nconns;
  uint32_t next_id;
  int target, initiated, pending, connected, failed, all_connected;
  int active_slots;
  conn_t *pub;
  int pub_dirty;
  slot_t *slots;
  uint64_t pub_seq;
  int nsubs, nsubs_measured;
  long outstanding;
  uint64_t now;

  /* results */
  uint64_t ops, bytes, handshakes;
  long pmd_conns;           /* connections whose server took the permessage-deflate offer */
  uint64_t compressed_msgs; /* messages received compressed (RSV1) */
  lg_hist_t lat, hs_lat;
  uint64_t t_begin, t_connected, t_m0, t_m1;
  lg_proc_t s_base, s_connected, s_m0, s_m1;
  struct rusage ru0, ru1;
  long err_connect, err_handshake, err_timeout, err_verify, err_protocol, err_closed,
      close_timeouts;
  char first_error[256];
  int aborted;
} lg_state_t;

extern lg_state_t lg;
extern const char *const MODE_NAMES[4];

/* loadgen.c: phases and errors */
void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void error_(long *counter, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int counts_as_failure(void);
void fail_run(void);
void begin_close(void);
void connect_next(void);
void start_cycle(void);
void check_drained(void);
void all_connected(void);
void end_run(void);

/* lg_conn.c: connections */
conn_t *start_conn(int role);
void conn_close(conn_t *c);
void conn_start_close(conn_t *c);
void flush(conn_t *c);
void send_echo(conn_t *c);
void pump_publisher(void);

/* lg_report.c */
void report(void);

#endif
