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
  if (strcmp(name, "notice") == 0)
    return NX_LOG_NOTICE;
  return -1;
}

const char *nx_log_level_name(int level) { return level >= 0 && level < 4 ? names[level] : "off"; }

void nx_log(int level, const char *fmt, ...) {
  char msg[4096], line[6144];
  struct timeval tv;
  struct tm tm;
  size_t n, i, len;
  int k;
  va_list ap;

  if (level == NX_LOG_NOTICE)
    level = NX_LOG_INFO; /* at every level */
  else if (level < nx_log_level || level < 0 || level > NX_LOG_ERROR)
    return;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03dZ %s %s", (int)(tv.tv_usec / 1000),
                        labels[level], nx_log_tag);
  va_start(ap, fmt);
  k = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  len = k < 0 ? 0 : (size_t)k < sizeof(msg) ? (size_t)k : sizeof(msg) - 1;
  /* Continuation lines indented; a bare CR (which would let a line
   * overwrite its start on a terminal) written as \r, and the other control
   * characters but tab (an escape sequence a client put in a path would
   * drive the terminal reading the log) as \xHH. */
  for (i = 0; i < len && n < sizeof(line) - 5; i++) {
    unsigned char ch = (unsigned char)msg[i];
    if (msg[i] == '\n') {
      line[n++] = '\n';
      line[n++] = ' ';
      line[n++] = ' ';
    } else if (msg[i] == '\r') {
      line[n++] = '\\';
      line[n++] = 'r';
    } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      line[n++] = '\\';
      line[n++] = 'x';
      line[n++] = hex[ch >> 4];
      line[n++] = hex[ch & 15];
    } else {
      line[n++] = msg[i];
    }
  }
  line[n++] = '\n';
  /* One write per line so lines from a crash or another thread never interleave. */
  fwrite(line, 1, n, stderr);
  fflush(stderr);
}
