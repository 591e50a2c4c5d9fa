#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

int nx_log_level = NX_LOG_INFO;
char nx_log_tag[16];

static const char *const names[] = {"debug", "info", "warn", "error"};
static const char *const labels[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int nx_log_level_from_name(const char *name) {
  int i;
  for (i = 0; i < 4; i++)
    if (strcmp(name, names[i]) == 0)
      return i;
  if (strcmp(name, "warning") == 0)
    return NX_LOG_WARN;
  return -1;
}

const char *nx_log_level_name(int level) { return level >= 0 && level < 4 ? names[level] : "off"; }

void nx_log(int level, const char *fmt, ...) {
  char line[4096];
  struct timeval tv;
  struct tm tm;
  size_t n;
  int k;
  va_list ap;

  if (level < nx_log_level || level < 0 || level > NX_LOG_ERROR)
    return;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03dZ %s %s", (int)(tv.tv_usec / 1000),
                        labels[level], nx_log_tag);
  va_start(ap, fmt);
  k = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  if (k < 0)
    k = 0;
  n += (size_t)k;
  if (n > sizeof(line) - 2)
    n = sizeof(line) - 2;
  line[n++] = '\n';
  /* One write per line so lines from a crash or another thread never interleave. */
  fwrite(line, 1, n, stderr);
  fflush(stderr);
}
