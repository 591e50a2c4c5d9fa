/* Tests of the incremental UTF-8 validator (core/utf8.c). */
#include <string.h>

#include "test.h"
#include "utf8.h"

/* A reference validator written independently of utf8.c: it decodes code
 * point values and asks, after every byte, whether some completion of the
 * sequence so far can still be a valid scalar value (the bits given fix an
 * interval of code points; it must meet the range of its length without
 * lying wholly inside the surrogates). Returns the index of the first byte
 * after which the input cannot become valid, or -1; *complete says whether
 * the input ends between code points. */
static int ref_viable(uint32_t lo, uint32_t hi, uint32_t min) {
  if (lo < min)
    lo = min;
  if (hi > 0x10ffff)
    hi = 0x10ffff;
  if (lo > hi)
    return 0;
  if (lo >= 0xd800 && hi <= 0xdfff)
    return 0;
  return 1;
}

static long ref_check(const uint8_t *s, size_t n, int *complete) {
  size_t i = 0;
  while (i < n) {
    uint8_t b = s[i];
    int need, j;
    uint32_t cp, min;
    if (b < 0x80) {
      i++;
      continue;
    } else if ((b & 0xe0) == 0xc0) {
      need = 1, cp = b & 0x1fu, min = 0x80;
    } else if ((b & 0xf0) == 0xe0) {
      need = 2, cp = b & 0x0fu, min = 0x800;
    } else if ((b & 0xf8) == 0xf0) {
      need = 3, cp = b & 0x07u, min = 0x10000;
    } else {
      return (long)i; /* a continuation byte or F8..FF as a lead */
    }
    for (j = 0; j <= need; j++) {
      int rem = need - j;
      if (j > 0) {
        if (i + (size_t)j >= n) {
          *complete = 0;
          return -1;
        }
        if ((s[i + (size_t)j] & 0xc0) != 0x80)
          return (long)(i + (size_t)j);
        cp = (cp << 6) | (s[i + (size_t)j] & 0x3fu);
      }
      if (!ref_viable(cp << (6 * rem), (cp << (6 * rem)) | ((1u << (6 * rem)) - 1), min))
        return (long)(i + (size_t)j);
    }
    i += (size_t)need + 1;
  }
  *complete = 1;
  return -1;
}

/* Index of the first byte at which byte-by-byte feeding fails, or -1. */
static long feed_bytewise(const uint8_t *s, size_t n, nx_utf8_t *u) {
  size_t i;
  nx_utf8_init(u);
  for (i = 0; i < n; i++)
    if (nx_utf8_feed(u, s + i, 1) != 0)
      return (long)i;
  return -1;
}

static const size_t big_chunks[] = {1, 2, 3, 7, 13, 64, 1000, 4096};

/* Checks one input against the expectation: err_at is the index of the
 * first impossible byte (-1 if none), complete whether a valid input ends
 * between code points. Checked: the one-shot feed and nx_utf8_valid(); fail
 * fast (the prefix before err_at is fine, the one through it is not, and
 * the error sticks); the reference validator agrees; and feeding in chunks
 * of every size k reports the error in the chunk holding err_at (or no
 * error and the same completeness). */
static void utf8_case(const char *file, int line, const char *what, const void *data, size_t len,
                      long err_at, int complete) {
  const uint8_t *s = data;
  nx_utf8_t u;
  int r, rc = 0;
  long ref;
  size_t k, ci;

  ref = ref_check(s, len, &rc);
  if (ref != err_at || (err_at < 0 && rc != complete))
    nx_test_fail_at(file, line, "%s: reference validator says err_at %ld complete %d", what, ref,
                    rc);

  nx_utf8_init(&u);
  r = nx_utf8_feed(&u, s, len);
  if (r != (err_at < 0 ? 0 : -1))
    nx_test_fail_at(file, line, "%s: one-shot feed returned %d", what, r);
  if (nx_utf8_complete(&u) != (err_at < 0 && complete))
    nx_test_fail_at(file, line, "%s: one-shot complete is %d", what, nx_utf8_complete(&u));
  if (nx_utf8_valid(s, len) != (err_at < 0 && complete))
    nx_test_fail_at(file, line, "%s: nx_utf8_valid returned %d", what, nx_utf8_valid(s, len));

  if (err_at >= 0) {
    nx_utf8_init(&u);
    if (nx_utf8_feed(&u, s, (size_t)err_at) != 0)
      nx_test_fail_at(file, line, "%s: prefix before the bad byte (%ld bytes) rejected", what,
                      err_at);
    nx_utf8_init(&u);
    if (nx_utf8_feed(&u, s, (size_t)err_at + 1) != -1)
      nx_test_fail_at(file, line, "%s: prefix through the bad byte (%ld bytes) accepted", what,
                      err_at + 1);
    if (u.state != NX_UTF8_REJECT || nx_utf8_complete(&u))
      nx_test_fail_at(file, line, "%s: state after the error is %d", what, u.state);
    if (nx_utf8_feed(&u, (const uint8_t *)"a", 1) != -1 || nx_utf8_feed(&u, s, 0) != -1)
      nx_test_fail_at(file, line, "%s: error does not stick", what);
  }

  for (ci = 0;; ci++) {
    size_t off;
    long chunk_of_err = -1;
    if (len <= 300) {
      k = ci + 1;
      if (k > len)
        break;
    } else {
      if (ci > NX_COUNTOF(big_chunks))
        break;
      k = ci < NX_COUNTOF(big_chunks) ? big_chunks[ci] : len;
    }
    nx_utf8_init(&u);
    for (off = 0; off < len; off += k) {
      size_t n = len - off < k ? len - off : k;
      if (nx_utf8_feed(&u, s + off, n) != 0) {
        chunk_of_err = (long)(off / k);
        break;
      }
    }
    if (err_at >= 0) {
      if (chunk_of_err != err_at / (long)k) {
        nx_test_fail_at(file, line, "%s: chunk size %zu: error in chunk %ld, expected chunk %ld",
                        what, k, chunk_of_err, err_at / (long)k);
        return;
      }
    } else if (chunk_of_err != -1 || nx_utf8_complete(&u) != complete) {
      nx_test_fail_at(file, line, "%s: chunk size %zu: error in chunk %ld, complete %d", what, k,
                      chunk_of_err, nx_utf8_complete(&u));
      return;
    }
  }
}

#define UTF8_OK(s) utf8_case(__FILE__, __LINE__, #s, s, sizeof(s) - 1, -1, 1)
#define UTF8_PARTIAL(s) utf8_case(__FILE__, __LINE__, #s, s, sizeof(s) - 1, -1, 0)
#define UTF8_BAD(s, at) utf8_case(__FILE__, __LINE__, #s, s, sizeof(s) - 1, at, 0)

TEST(utf8_valid_basic) {
  uint8_t all_ascii[128];
  size_t i;
  UTF8_OK("");
  UTF8_OK("hello, world");
  for (i = 0; i < 128; i++)
    all_ascii[i] = (uint8_t)i;
  utf8_case(__FILE__, __LINE__, "all ASCII", all_ascii, sizeof(all_ascii), -1, 1);
  /* 2 bytes */
  UTF8_OK("\xc2\x80"); /* U+0080 */
  UTF8_OK("\xc3\xa9"); /* é */
  UTF8_OK("\xdf\xbf"); /* U+07FF */
  /* 3 bytes */
  UTF8_OK("\xe0\xa0\x80"); /* U+0800 */
  UTF8_OK("\xe1\x80\x80"); /* U+1000 */
  UTF8_OK("\xe2\x82\xac"); /* € */
  UTF8_OK("\xec\xbf\xbf"); /* U+CFFF */
  UTF8_OK("\xed\x80\x80"); /* U+D000 */
  UTF8_OK("\xed\x9f\xbf"); /* U+D7FF, the last before the surrogates */
  UTF8_OK("\xee\x80\x80"); /* U+E000, the first after them */
  UTF8_OK("\xef\xbf\xbe"); /* U+FFFE */
  UTF8_OK("\xef\xbf\xbf"); /* U+FFFF */
  /* 4 bytes */
  UTF8_OK("\xf0\x90\x80\x80"); /* U+10000 */
  UTF8_OK("\xf0\x9f\x98\x80"); /* 😀 */
  UTF8_OK("\xf1\x80\x80\x80"); /* U+40000 */
  UTF8_OK("\xf3\xbf\xbf\xbf"); /* U+FFFFF */
  UTF8_OK("\xf4\x80\x80\x80"); /* U+100000 */
  UTF8_OK("\xf4\x8f\xbf\xbf"); /* U+10FFFF */
  /* Mixed: "κόσμε" and friends. */
  UTF8_OK("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5");
  UTF8_OK("a\xc3\xa9"
          "b\xe2\x82\xac"
          "c\xf0\x9f\x98\x80"
          "d\xef\xbf\xbf\xf4\x8f\xbf\xbf");
  UTF8_OK("\xef\xb7\x90\xef\xb7\xaf"); /* U+FDD0, U+FDEF: noncharacters are valid */
  UTF8_OK("\x00\x00\x00");
}

TEST(utf8_invalid) {
  int b;
  /* Overlong forms. */
  UTF8_BAD("\xc0\x80", 0);
  UTF8_BAD("\xc0\xaf", 0);
  UTF8_BAD("\xc1\xbf", 0);
  UTF8_BAD("\xe0\x80\x80", 1);
  UTF8_BAD("\xe0\x9f\xbf", 1);
  UTF8_BAD("\xf0\x80\x80\x80", 1);
  UTF8_BAD("\xf0\x8f\xbf\xbf", 1);
  /* UTF-16 surrogates. */
  UTF8_BAD("\xed\xa0\x80", 1);
  UTF8_BAD("\xed\xbf\xbf", 1);
  UTF8_BAD("\xed\xa0\x80\xed\xb0\x80", 1); /* a surrogate pair, CESU-8 style */
  /* Above U+10FFFF. */
  UTF8_BAD("\xf4\x90\x80\x80", 1);
  UTF8_BAD("\xf4\xbf\xbf\xbf", 1);
  UTF8_BAD("\xf5\x80\x80\x80", 0);
  UTF8_BAD("\xf7\xbf\xbf\xbf", 0);
  UTF8_BAD("\xf8\x88\x80\x80\x80", 0);
  UTF8_BAD("\xfc\x84\x80\x80\x80\x80", 0);
  UTF8_BAD("\xfe", 0);
  UTF8_BAD("\xff", 0);
  for (b = 0xf5; b <= 0xff; b++) {
    uint8_t s[3] = {'x', (uint8_t)b, 0x80};
    utf8_case(__FILE__, __LINE__, "F5..FF lead", s, 3, 1, 0);
    utf8_case(__FILE__, __LINE__, "F5..FF lead alone", s + 1, 1, 0, 0);
  }
  /* Stray continuation bytes. */
  for (b = 0x80; b <= 0xbf; b++) {
    uint8_t s[2] = {(uint8_t)b, 'a'};
    utf8_case(__FILE__, __LINE__, "stray continuation", s, 2, 0, 0);
  }
  UTF8_BAD("a\x80", 1);
  UTF8_BAD("\xc2\x80\x80", 2);
  UTF8_BAD("\xe2\x82\xac\xac", 3);
  /* A sequence cut short by a non-continuation byte. */
  UTF8_BAD("\xc2"
           "a",
           1);
  UTF8_BAD("\xc2\xc2\x80", 1);
  UTF8_BAD("\xe2\x82"
           "a",
           2);
  UTF8_BAD("\xe2\x28\xa1", 1);
  UTF8_BAD("\xf0\x9f\x98"
           "a",
           3);
  UTF8_BAD("\xf0\x9f\x98\xf0\x9f\x98\x80", 3);
  /* Autobahn 6.3.1: valid up to the surrogate. */
  UTF8_BAD("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", 12);
}

TEST(utf8_truncated) {
  UTF8_PARTIAL("\xc2");
  UTF8_PARTIAL("\xdf");
  UTF8_PARTIAL("\xe0");
  UTF8_PARTIAL("\xe0\xa0");
  UTF8_PARTIAL("\xe2\x82");
  UTF8_PARTIAL("\xed");
  UTF8_PARTIAL("\xed\x9f");
  UTF8_PARTIAL("\xf0");
  UTF8_PARTIAL("\xf0\x90");
  UTF8_PARTIAL("\xf0\x9f\x98");
  UTF8_PARTIAL("\xf4\x8f\xbf");
  UTF8_PARTIAL("abc\xe2");
  UTF8_PARTIAL("abcdefghijklmnop\xf0\x9f");
}

/* Long ASCII runs around the 8-byte fast path, with one multibyte character
 * (valid, invalid or truncated) at every offset 0..15, runs of every length
 * 0..40 after it, and the split between two feeds at every position. */
TEST(utf8_fast_path_offsets) {
  static const struct {
    const char *s;
    size_t len;
    long bad; /* index within s of the first impossible byte, -1 if valid */
  } chars[] = {
      {"\xc3\xa9", 2, -1},         {"\xe2\x82\xac", 3, -1},
      {"\xef\xbf\xbf", 3, -1},     {"\xf0\x9f\x98\x80", 4, -1},
      {"\xf4\x8f\xbf\xbf", 4, -1}, {"\x80", 1, 0},
      {"\xc0\x80", 2, 0},          {"\xed\xa0\x80", 3, 1},
      {"\xf4\x90\x80\x80", 4, 1},  {"\xff", 1, 0},
  };
  uint8_t buf[80];
  size_t c, off, tail, split;
  for (c = 0; c < NX_COUNTOF(chars); c++) {
    for (off = 0; off < 16; off++) {
      for (tail = 0; tail <= 40; tail += (tail < 17 ? 1 : 7)) {
        size_t len = off + chars[c].len + tail;
        memset(buf, 'a', sizeof(buf));
        memcpy(buf + off, chars[c].s, chars[c].len);
        utf8_case(__FILE__, __LINE__, chars[c].s, buf, len,
                  chars[c].bad < 0 ? -1 : (long)off + chars[c].bad, 1);
      }
      /* Truncated at the end of an ASCII run: fine so far, not complete. */
      if (chars[c].bad < 0) {
        memset(buf, 'a', sizeof(buf));
        memcpy(buf + off, chars[c].s, chars[c].len);
        utf8_case(__FILE__, __LINE__, chars[c].s, buf, off + chars[c].len - 1, -1, 0);
      }
    }
  }
  /* Two feeds split at every position of a 40-byte string. */
  memset(buf, 'z', 40);
  memcpy(buf + 13, "\xf0\x9f\x98\x80", 4);
  memcpy(buf + 29, "\xe2\x82\xac", 3);
  for (split = 0; split <= 40; split++) {
    nx_utf8_t u;
    nx_utf8_init(&u);
    CHECK_EQ(nx_utf8_feed(&u, buf, split), 0);
    CHECK_EQ(nx_utf8_feed(&u, buf + split, 40 - split), 0);
    CHECK(nx_utf8_complete(&u));
  }
}

/* Every sequence of up to 2 bytes, and a large sample of 3- and 4-byte
 * ones, against the reference: the position of the first error byte-by-byte,
 * and the verdict on the sequence embedded between ASCII runs long enough
 * to go through the fast path. */
TEST(utf8_exhaustive_vs_reference) {
  static const uint8_t tail[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf,
                                 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff};
  static const uint8_t lead4[] = {0x7a, 0x80, 0xc2, 0xe0, 0xed, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5};
  uint8_t s[4], wrapped[4 + 18];
  unsigned a, b, c, d, mismatches = 0;
  size_t n;
  memset(wrapped, 'q', sizeof(wrapped));

  for (n = 1; n <= 4; n++) {
    unsigned na = n == 4 ? (unsigned)sizeof(lead4) : 256;
    unsigned nb = n >= 2 ? 256 : 1;
    unsigned nc = n >= 3 ? (unsigned)sizeof(tail) : 1;
    unsigned nd = n >= 4 ? (unsigned)sizeof(tail) : 1;
    for (a = 0; a < na; a++)
      for (b = 0; b < nb; b++)
        for (c = 0; c < nc; c++)
          for (d = 0; d < nd; d++) {
            nx_utf8_t u;
            int rc = 0, wc = 0, complete;
            long ref, got, wref;
            s[0] = n == 4 ? lead4[a] : (uint8_t)a;
            s[1] = (uint8_t)b;
            s[2] = tail[c];
            s[3] = tail[d];
            ref = ref_check(s, n, &rc);
            got = feed_bytewise(s, n, &u);
            complete = nx_utf8_complete(&u);
            memcpy(wrapped + 9, s, n);
            wref = ref_check(wrapped, 9 + n + 9, &wc);
            nx_utf8_init(&u);
            if (got != ref || (ref < 0 && complete != rc) ||
                nx_utf8_feed(&u, wrapped, 9 + n + 9) != (wref < 0 ? 0 : -1) ||
                (wref < 0 && nx_utf8_complete(&u) != wc)) {
              if (mismatches++ < 10)
                nx_test_fail_at(__FILE__, __LINE__,
                                "%02x %02x %02x %02x (n=%zu): ref %ld/%d, got %ld/%d", s[0], s[1],
                                s[2], s[3], n, ref, rc, got, complete);
            }
            memset(wrapped + 9, 'q', n);
          }
  }
  CHECK_EQ(mismatches, 0);
}

TEST(utf8_state_kept_across_feeds) {
  /* A 4-byte code point fed one byte per call, with empty feeds between. */
  static const uint8_t s[] = {0xf0, 0x9f, 0x98, 0x80};
  nx_utf8_t u;
  size_t i;
  nx_utf8_init(&u);
  CHECK(nx_utf8_complete(&u));
  CHECK_EQ(nx_utf8_feed(&u, s, 0), 0);
  for (i = 0; i < 4; i++) {
    CHECK_EQ(nx_utf8_feed(&u, s + i, 1), 0);
    CHECK_EQ(nx_utf8_feed(&u, s, 0), 0);
    CHECK_EQ(nx_utf8_complete(&u), i == 3);
  }
  /* nx_utf8_init resets a rejected validator. */
  CHECK_EQ(nx_utf8_feed(&u, (const uint8_t *)"\xff", 1), -1);
  nx_utf8_init(&u);
  CHECK_EQ(nx_utf8_feed(&u, (const uint8_t *)"ok", 2), 0);
  CHECK(nx_utf8_complete(&u));
  CHECK(nx_utf8_valid((const uint8_t *)"", 0));
  CHECK(!nx_utf8_valid((const uint8_t *)"\xe2\x82", 2));
}
