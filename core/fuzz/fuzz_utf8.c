/* libFuzzer target: the incremental UTF-8 validator (core/utf8.h).
 *
 * Input: byte 0 picks the chunking (see fuzz_common.h), the rest is the text.
 * Three validators must agree on every input:
 *   - nx_utf8_feed() fed in chunks: the first chunk that returns -1 is the one
 *     holding the first invalid byte, every later call returns -1, and the
 *     final nx_utf8_complete() is the verdict;
 *   - nx_utf8_feed() fed one byte at a time: -1 exactly at the first invalid
 *     byte (fail-fast position), and nx_utf8_complete() after every byte
 *     matches "this prefix is valid UTF-8";
 *   - nx_utf8_valid() over the whole text;
 * against ref_utf8 (fuzz_common.h), a decoder written from RFC 3629.
 * It also checks nx_ws_close_payload(), which cuts a long reason at a code
 * point boundary: the cut reason must stay a valid prefix. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "utf8.h"
#include "ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_close_payload(const uint8_t *text, size_t len, int valid) {
  uint8_t out[125];
  size_t n, reason_len;

  n = nx_ws_close_payload(out, 1000, (const char *)text, len);
  FUZZ_CHECK(n >= 2 && n <= 125, "close payload of %zu bytes", n);
  FUZZ_CHECK(out[0] == 0x03 && out[1] == 0xe8, "close code bytes %02x %02x", out[0], out[1]);
  reason_len = n - 2;
  FUZZ_CHECK(memcmp(out + 2, text, reason_len) == 0, "the reason is not a prefix of the input");
  if (len <= 123) {
    FUZZ_CHECK(reason_len == len, "a %zu-byte reason was cut to %zu", len, reason_len);
  } else if (valid) {
    /* A code point is at most 4 bytes: the cut drops at most 3 of the 123. */
    FUZZ_CHECK(reason_len >= 120 && reason_len <= 123, "cut to %zu bytes", reason_len);
    FUZZ_CHECK(nx_utf8_valid(out + 2, reason_len) && ref_utf8_valid(out + 2, reason_len),
               "a valid reason cut to %zu bytes is not valid UTF-8", reason_len);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *text;
  size_t len, chunk, off, i;
  ref_utf8_t ref;
  long bad_at; /* index of the first invalid byte, -1 if none */
  int ref_valid, rejected;
  nx_utf8_t u;

  if (size < 1)
    return 0;
  text = data + 1;
  len = size - 1;
  chunk = fuzz_chunk_size(data[0], len);

  ref_utf8_init(&ref);
  bad_at = ref_utf8_feed(&ref, text, len);
  ref_valid = bad_at < 0 && ref_utf8_complete(&ref);

  /* One-shot. */
  FUZZ_CHECK(nx_utf8_valid(text, len) == ref_valid,
             "nx_utf8_valid says %d, reference %d (bad at %ld)", nx_utf8_valid(text, len),
             ref_valid, bad_at);

  /* Chunked: -1 first from the chunk holding the bad byte, then always. */
  nx_utf8_init(&u);
  rejected = 0;
  for (off = 0; off < len; off += chunk) {
    size_t n = len - off < chunk ? len - off : chunk;
    int r = nx_utf8_feed(&u, text + off, n);
    int expect = bad_at >= 0 && (size_t)bad_at < off + n ? -1 : 0;
    FUZZ_CHECK(r == expect, "chunk [%zu, %zu) returned %d, expected %d (bad at %ld)", off, off + n,
               r, expect, bad_at);
    if (r) {
      FUZZ_CHECK(u.state == NX_UTF8_REJECT, "state %u after -1", u.state);
      rejected = 1;
    }
  }
  if (rejected) {
    /* Feeding more (even nothing, even ASCII) keeps failing. */
    FUZZ_CHECK(nx_utf8_feed(&u, (const uint8_t *)"", 0) == -1, "empty feed after reject");
    FUZZ_CHECK(nx_utf8_feed(&u, (const uint8_t *)"abcdefghij", 10) == -1, "ASCII after reject");
  } else {
    FUZZ_CHECK(nx_utf8_feed(&u, (const uint8_t *)"", 0) == 0, "empty feed changed the verdict");
  }
  FUZZ_CHECK(nx_utf8_complete(&u) == ref_valid, "chunked complete %d, reference %d",
             nx_utf8_complete(&u), ref_valid);

  /* Byte by byte: the exact fail-fast position and every prefix's verdict. */
  nx_utf8_init(&u);
  ref_utf8_init(&ref);
  for (i = 0; i < len; i++) {
    int r = nx_utf8_feed(&u, text + i, 1);
    int rr = ref_utf8_byte(&ref, text[i]);
    FUZZ_CHECK(r == rr, "byte %zu (0x%02x): feed %d, reference %d", i, text[i], r, rr);
    if (r)
      break;
    FUZZ_CHECK(nx_utf8_complete(&u) == ref_utf8_complete(&ref),
               "prefix of %zu bytes: complete %d, reference %d", i + 1, nx_utf8_complete(&u),
               ref_utf8_complete(&ref));
  }

  /* A view that starts and ends inside the text exercises the word-at-a-time
   * ASCII path at every alignment the chunking did not reach. */
  if (len > 2) {
    size_t a = text[0] % len, b = a + (len - a) / 2;
    FUZZ_CHECK(nx_utf8_valid(text + a, b - a) == ref_utf8_valid(text + a, b - a),
               "sub-range [%zu, %zu) disagrees", a, b);
  }

  check_close_payload(text, len, ref_valid);
  return 0;
}
