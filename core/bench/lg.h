/* nx_loadgen: shared pieces (histogram, /proc sampling, the client side of
 * the opening handshake). The load generator itself is loadgen.c. */
#ifndef NX_LG_H
#define NX_LG_H

#include <stddef.h>
#include <stdint.h>

/* ---- Latency histogram (log-linear: 64 sub-buckets per power of two, so a
 * percentile is exact to about 1.6 %). Values are nanoseconds. */
#define LG_HIST_SUB_BITS 6
#define LG_HIST_SUB (1u << LG_HIST_SUB_BITS)
#define LG_HIST_BUCKETS (LG_HIST_SUB + (64 - LG_HIST_SUB_BITS) * LG_HIST_SUB)

typedef struct {
  uint64_t count[LG_HIST_BUCKETS];
  uint64_t n, max, min;
  double sum;
} lg_hist_t;

void lg_hist_init(lg_hist_t *h);
void lg_hist_add(lg_hist_t *h, uint64_t ns);
/* The value at quantile q (0..1), in nanoseconds; 0 when empty. */
uint64_t lg_hist_quantile(const lg_hist_t *h, double q);

/* ---- A process as /proc shows it. */
typedef struct {
  int ok;
  double cpu_s;   /* utime + stime of all threads (/proc/PID/stat), seconds */
  double sched_s; /* sum of /proc/PID/task/ * /schedstat run time, seconds (finer) */
  long rss_kb;    /* VmRSS from /proc/PID/status */
  long threads;
  long tcp_inuse, tcp_mem_pages; /* system-wide, from /proc/net/sockstat */
} lg_proc_t;

int lg_proc_sample(int pid, lg_proc_t *out);

/* ---- Opening handshake, client side (RFC 6455 §4.1). */
#define LG_WS_KEY_LEN 24

/* A fresh Sec-WebSocket-Key (base64 of 16 random bytes) and the
 * Sec-WebSocket-Accept the server must answer with. */
void lg_hs_key(uint64_t *rng, char key[LG_WS_KEY_LEN + 1], char accept[29]);

/* The Sec-WebSocket-Accept for a key (SHA-1 of key and GUID, base64). */
void lg_hs_accept(const char *key, size_t len, char accept[29]);

/* The value of the first header called name (any case) in a request or
 * response head of len bytes (from its first line to the CRLF of its last
 * header), trimmed; NULL if there is none. */
const char *lg_hs_header(const char *head, size_t len, const char *name, size_t *vlen);

/* Writes the upgrade request (offering permessage-deflate, as a browser
 * does, when deflate is set); returns its length (0 if cap is too small). */
size_t lg_hs_request(char *out, size_t cap, const char *host, int port, const char *path,
                     const char *key, int deflate);

/* Looks at the bytes received so far. Returns 0 while the head is
 * incomplete, 1 when it is a valid 101 with the right accept key (*head_len
 * is then the length of the head, bytes after it are frames), -1 when it is
 * not (*err says why). */
int lg_hs_response(const char *buf, size_t len, const char *accept, size_t *head_len,
                   const char **err);

/* xorshift64*: fast, good enough for mask keys and handshake keys. */
static inline uint64_t lg_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

#endif
