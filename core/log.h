/* Logging: one entry per event on stderr, "TIMESTAMP LEVEL message". A
 * message of several lines (a traceback) keeps them, each continuation line
 * indented by two spaces, so that no text in a message (a client's, say)
 * can pass for an entry of its own. */
#ifndef NX_LOG_H
#define NX_LOG_H

#include <stddef.h>
#include <stdint.h>

/* NX_LOG_NOTICE: written as INFO at every level (the "listening on" line,
 * which says where the server is). */
enum { NX_LOG_DEBUG = 0, NX_LOG_INFO, NX_LOG_WARN, NX_LOG_ERROR, NX_LOG_OFF, NX_LOG_NOTICE };

extern int nx_log_level;
/* Written after the level on every line ("[w2] " in worker 2 of --workers). */
extern char nx_log_tag[16];

/* Returns the level for a name ("debug", "info", "warn", "error", and
 * "notice" for NX_LOG_NOTICE), or -1. */
int nx_log_level_from_name(const char *name);
const char *nx_log_level_name(int level);

/* A message as it is (NUL bytes and all: written as \x00), not a format. */
void nx_log_text(int level, const char *msg, size_t len);
void nx_log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define NX_LOG_ENABLED(level) ((level) >= nx_log_level)

/* One entry a second at most for an event a flood repeats (a connection
 * refused at the limit, one dropped for not reading): nx_log_limited
 * returns 1 when this one is to be logged, with *skipped set to how many
 * were not since the last entry; else 0 (and it is counted). now_ms: the
 * loop's clock. */
typedef struct {
  uint64_t at; /* when one was last logged (0: never) */
  uint32_t skipped;
} nx_log_limit_t;

static inline int nx_log_limited(nx_log_limit_t *r, uint64_t now_ms, uint32_t *skipped) {
  if (r->at && now_ms - r->at < 1000) {
    r->skipped++;
    return 0;
  }
  *skipped = r->skipped;
  r->at = now_ms ? now_ms : 1;
  r->skipped = 0;
  return 1;
}

#endif
