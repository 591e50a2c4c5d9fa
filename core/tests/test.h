/* A tiny unit test harness for the pure protocol layer.
 *
 * A test is a function declared with TEST(name) { ... } in any .c file
 * of core/tests; it registers itself before main() runs (a GCC/Clang
 * constructor), so adding a test needs no list to update. main.c runs every
 * test in registration order and prints one line per test:
 *
 *   ok - name
 *   not ok - name
 *
 * then a last line "N passed, M failed", and exits non-zero if M > 0.
 * An optional argument runs only the tests whose name contains it.
 *
 * CHECK* macros record a failure (with file:line and the values involved,
 * as "# ..." diagnostic lines) and let the test go on; they return 1 when the
 * check held, so a test can stop early with `if (!CHECK(x)) return;`. */
#ifndef NX_TEST_H
#define NX_TEST_H

#include <stddef.h>
#include <stdint.h>

typedef void (*nx_test_fn)(void);

void nx_test_register(const char *name, nx_test_fn fn);

/* Failure recording; use the macros below. Each returns 1 if the check held. */
int nx_check(int ok, const char *file, int line, const char *expr);
int nx_check_eq(long long a, long long b, const char *file, int line, const char *ea,
                const char *eb);
int nx_check_mem(const void *a, size_t alen, const void *b, size_t blen, const char *file, int line,
                 const char *ea, const char *eb);

/* Prints a "# ..." diagnostic line (printf format), counted against the
 * output limit of the current test so a broken loop cannot flood the log. */
void nx_test_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Records a failure with a formatted message at file:line (for helpers that
 * report at their caller's location). Returns 0. */
int nx_test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Number of failures recorded so far by the running test. */
int nx_test_failures(void);

#define CHECK(cond) nx_check((cond) != 0, __FILE__, __LINE__, #cond)
#define CHECK_EQ(a, b) nx_check_eq((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_MEM_EQ(a, alen, b, blen)                                                             \
  nx_check_mem((a), (alen), (b), (blen), __FILE__, __LINE__, #a, #b)

#define TEST(name)                                                                                 \
  static void nx_test_##name(void);                                                                \
  static void nx_test_reg_##name(void) __attribute__((constructor));                               \
  static void nx_test_reg_##name(void) { nx_test_register(#name, nx_test_##name); }                \
  static void nx_test_##name(void)

#define NX_COUNTOF(a) (sizeof(a) / sizeof((a)[0]))

#endif
