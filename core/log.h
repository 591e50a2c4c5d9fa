/* Logging: one entry per event on stderr, "TIMESTAMP LEVEL message". A
 * message of several lines (a traceback) keeps them, each continuation line
 * indented by two spaces, so that no text in a message (a client's, say)
 * can pass for an entry of its own. */
#ifndef NX_LOG_H
#define NX_LOG_H

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

void nx_log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define NX_LOG_ENABLED(level) ((level) >= nx_log_level)

#endif
