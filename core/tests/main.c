/* Test runner: see test.h. */
#include "test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_TESTS = 512, MAX_DIAG_PER_TEST = 30 };

static struct {
  const char *name;
  nx_test_fn fn;
} tests[MAX_TESTS];
static size_t ntests;

static int cur_failures;
static int cur_diags;

void nx_test_register(const char *name, nx_test_fn fn) {
  if (ntests == MAX_TESTS) {
    fprintf(stderr, "too many tests (raise MAX_TESTS in %s)\n", __FILE__);
    exit(2);
  }
  tests[ntests].name = name;
  tests[ntests].fn = fn;
  ntests++;
}

int nx_test_failures(void) { return cur_failures; }

static void vdiag(const char *fmt, va_list ap) {
  if (cur_diags == MAX_DIAG_PER_TEST)
    printf("# (further diagnostics of this test suppressed)\n");
  if (cur_diags++ >= MAX_DIAG_PER_TEST)
    return;
  printf("# ");
  vprintf(fmt, ap);
  printf("\n");
}

void nx_test_diag(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(fmt, ap);
  va_end(ap);
}

int nx_test_fail_at(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  char msg[512];
  cur_failures++;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  nx_test_diag("%s:%d: %s", file, line, msg);
  return 0;
}

int nx_check(int ok, const char *file, int line, const char *expr) {
  if (ok)
    return 1;
  return nx_test_fail_at(file, line, "CHECK(%s) failed", expr);
}

int nx_check_eq(long long a, long long b, const char *file, int line, const char *ea,
                const char *eb) {
  if (a == b)
    return 1;
  return nx_test_fail_at(file, line, "CHECK_EQ(%s, %s) failed: %lld != %lld", ea, eb, a, b);
}

static void hex(char *out, size_t cap, const void *p, size_t len) {
  const uint8_t *b = p;
  size_t i, o = 0;
  out[0] = '\0';
  for (i = 0; i < len && o + 4 < cap; i++)
    o += (size_t)snprintf(out + o, cap - o, "%02x", b[i]);
  if (i < len && o + 4 < cap)
    snprintf(out + o, cap - o, "...");
}

int nx_check_mem(const void *a, size_t alen, const void *b, size_t blen, const char *file, int line,
                 const char *ea, const char *eb) {
  char ha[128], hb[128];
  if (alen == blen && (alen == 0 || memcmp(a, b, alen) == 0))
    return 1;
  hex(ha, sizeof(ha), a, alen);
  hex(hb, sizeof(hb), b, blen);
  return nx_test_fail_at(file, line, "CHECK_MEM_EQ(%s, %s) failed: [%zu] %s != [%zu] %s", ea, eb,
                         alen, ha, blen, hb);
}

int main(int argc, char **argv) {
  size_t i;
  int passed = 0, failed = 0;
  const char *filter = argc > 1 ? argv[1] : NULL;

  setvbuf(stdout, NULL, _IOLBF, 0);
  for (i = 0; i < ntests; i++) {
    if (filter && !strstr(tests[i].name, filter))
      continue;
    cur_failures = 0;
    cur_diags = 0;
    tests[i].fn();
    if (cur_failures) {
      printf("not ok - %s\n", tests[i].name);
      failed++;
    } else {
      printf("ok - %s\n", tests[i].name);
      passed++;
    }
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
