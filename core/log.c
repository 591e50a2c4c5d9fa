#include "log.h"
#include "utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* An entry's message is written whole up to LOG_MAX bytes; a longer one
 * keeps its start and its last LOG_TAIL bytes (where a traceback is), with
 * a line that says how much was left out between them. */
#define LOG_MAX 16384
#define LOG_TAIL 4096

/* The length of the UTF-8 character at s (left bytes there), or 0 when the
 * bytes there are not one, or are a C1 control character (U+0080-U+009F,
 * which a terminal may read as an escape sequence: 0xc2 0x9b is CSI). */
static size_t text_char(const unsigned char *s, size_t left) {
  size_t k = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
  if (k == 0 || k > left || !nx_utf8_valid(s, k) || (s[0] == 0xc2 && s[1] < 0xa0))
    return 0;
  return k;
}

/* s[0, len) into out as the log writes it: continuation lines indented; a
 * bare CR (which would let a line overwrite its start on a terminal) as \r,
 * and the other control characters but tab (an escape sequence a client
 * put in a path would drive the terminal reading the log), C1 controls and
 * bytes that are not UTF-8 as \xHH: the log is UTF-8 text. At most 4 bytes
 * per byte of s. Returns the bytes written. */
static size_t put_escaped(char *out, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t i, k, n = 0;
  for (i = 0; i < len; i++) {
    unsigned char ch = u[i];
    if (ch == '\n') {
      memcpy(out + n, "\n  ", 3), n += 3;
    } else if (ch == '\r') {
      out[n++] = '\\', out[n++] = 'r';
    } else if (ch >= 0x80 && (k = text_char(u + i, len - i)) != 0) {
      memcpy(out + n, s + i, k), n += k, i += k - 1;
    } else if ((ch < 0x20 && ch != '\t') || ch >= 0x7f) {
      out[n++] = '\\', out[n++] = 'x', out[n++] = hex[ch >> 4], out[n++] = hex[ch & 15];
    } else {
      out[n++] = (char)ch;
    }
  }
  return n;
}

/* i moved back (step -1) or forward (+1) off UTF-8 continuation bytes, at
 * most 3 (a character's length): a cut falls between characters, and bytes
 * that are not UTF-8 are cut anywhere. */
static size_t char_edge(const char *s, size_t i, size_t len, int step) {
  int k;
  for (k = 0; k < 3 && i > 0 && i < len && ((unsigned char)s[i] & 0xc0) == 0x80; k++)
    i = step < 0 ? i - 1 : i + 1;
  return i;
}

static void write_entry(int level, const char *msg, size_t len);

void nx_log(int level, const char *fmt, ...) {
  char small[4096], *msg = small;
  size_t len;
  int k;
  va_list ap;

  if (level == NX_LOG_NOTICE)
    level = NX_LOG_INFO; /* at every level */
  else if (level < nx_log_level || level < 0 || level > NX_LOG_ERROR)
    return;
  va_start(ap, fmt);
  k = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  len = k < 0 ? 0 : (size_t)k;
  if (len >= sizeof(small)) {
    msg = (char *)malloc(len + 1);
    if (msg) {
      va_start(ap, fmt);
      vsnprintf(msg, len + 1, fmt, ap);
      va_end(ap);
    } else {
      msg = small, len = sizeof(small) - 1;
    }
  }
  write_entry(level, msg, len);
  if (msg != small)
    free(msg);
}

void nx_log_text(int level, const char *msg, size_t len) {
  if (level == NX_LOG_NOTICE)
    level = NX_LOG_INFO;
  else if (level < nx_log_level || level < 0 || level > NX_LOG_ERROR)
    return;
  write_entry(level, msg, len);
}

/* One entry: the head (time, level, tag) and msg[0, len), escaped, cut if
 * long (see LOG_MAX), in one write. */
static void write_entry(int level, const char *msg, size_t len) {
  char *line, stack_line[8192];
  char head[96], gap[96];
  struct timeval tv;
  struct tm tm;
  size_t n, keep, resume, glen = 0;

  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  n = strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(head + n, sizeof(head) - n, ".%03dZ %s %s", (int)(tv.tv_usec / 1000),
                        labels[level], nx_log_tag);
  if (n >= sizeof(head))
    n = sizeof(head) - 1;
  keep = resume = len;
  if (len > LOG_MAX) {
    keep = char_edge(msg, LOG_MAX - LOG_TAIL, len, -1);
    resume = char_edge(msg, len - LOG_TAIL, len, 1);
  }
  line = stack_line;
  if (n + 4 * (keep + len - resume) + sizeof(gap) + 1 > sizeof(stack_line) &&
      !(line = (char *)malloc(n + 4 * (keep + len - resume) + sizeof(gap) + 1))) {
    /* (no memory: what fits here, the start, rather than nothing; an "out
     * of memory" entry must not be lost for want of memory) */
    line = stack_line;
    keep = char_edge(msg, (sizeof(stack_line) - n - sizeof(gap) - 1) / 4, len, -1);
    resume = len;
  }
  if (resume > keep)
    glen = (size_t)snprintf(gap, sizeof(gap), "\n  [... %zu bytes of this entry left out ...]%s",
                            resume - keep, resume < len ? "\n  " : "");
  memcpy(line, head, n);
  n += put_escaped(line + n, msg, keep);
  memcpy(line + n, gap, glen), n += glen;
  n += put_escaped(line + n, msg + resume, len - resume);
  line[n++] = '\n';
  /* One write per line so lines from a crash or another thread never interleave. */
  fwrite(line, 1, n, stderr);
  fflush(stderr);
  if (line != stack_line)
    free(line);
}
