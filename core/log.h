/* Logging: one line per event on stderr, "TIMESTAMP LEVEL message". */
#ifndef NX_LOG_H
#define NX_LOG_H

enum { NX_LOG_DEBUG = 0, NX_LOG_INFO, NX_LOG_WARN, NX_LOG_ERROR, NX_LOG_OFF };

extern int nx_log_level;
/* Written after the level on every line ("[w2] " in worker 2 of --workers). */
extern char nx_log_tag[16];

/* Returns the level for a name ("debug", "info", "warn", "error"), or -1. */
int nx_log_level_from_name(const char *name);
const char *nx_log_level_name(int level);

void nx_log(int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#define NX_LOG_ENABLED(level) ((level) >= nx_log_level)

#endif
