/* libFuzzer target: the permessage-deflate path (core/deflate.c) and its
 * negotiation (core/extensions.c).
 *
 * Byte 0 picks the mode (b % 3), byte 1 a parameter, the rest is the data:
 *   0  inflate the data as a compressed message, bounded by (b1 + 1) KiB;
 *      the bound holds, whatever inflates re-compresses and inflates back
 *      to the same bytes, and any first part of a message that inflates is
 *      taken as a valid start (nx_inflate_prefix), giving the first part of
 *      its bytes;
 *   1  compress the data with a window of 9 + b1 % 7 bits and inflate it:
 *      the same bytes come back, and compressing them again hits the cache;
 *   2  negotiate: the data split at '\n' into Sec-WebSocket-Extensions
 *      values; an accepted offer gives a well-formed reply and windows in
 *      range. */
#include "../deflate.h"
#include "../extensions.h"
#include "fuzz_common.h"

static nx_deflate_t *shared; /* like the runtime's: reused across inputs */

static void roundtrip(const uint8_t *data, size_t len, int bits) {
  size_t clen;
  const uint8_t *z = nx_deflate_message(shared, data, len, bits, &clen);
  uint8_t *copy;
  nx_buf_t out = {0};
  FUZZ_CHECK(z != NULL, "compression failed for %zu bytes", len);
  FUZZ_CHECK(clen >= 1, "empty compressed message");
  copy = (uint8_t *)malloc(clen);
  memcpy(copy, z, clen);
  FUZZ_CHECK(nx_inflate_message(shared, copy, clen, 0, &out) == 0, "own output does not inflate");
  FUZZ_CHECK(nx_buf_size(&out) == len && (len == 0 || memcmp(out.data, data, len) == 0),
             "round trip changed the bytes (%zu -> %zu)", len, nx_buf_size(&out));
  if (len) {
    size_t clen2;
    const uint8_t *z2 = nx_deflate_message(shared, data, len, bits, &clen2);
    FUZZ_CHECK(z2 && clen2 == clen && memcmp(z2, copy, clen) == 0, "the cache gave other bytes");
  }
  free(copy);
  nx_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *in, size_t size) {
  uint8_t mode, param;
  const uint8_t *data;
  size_t len;

  if (size < 2)
    return 0;
  if (!shared)
    shared = nx_deflate_new();
  mode = in[0] % 3;
  param = in[1];
  data = in + 2;
  len = size - 2;

  if (mode == 0) {
    uint64_t max = ((uint64_t)param + 1) * 1024;
    nx_buf_t out = {0};
    int r = nx_inflate_message(shared, data, len, max, &out);
    FUZZ_CHECK(r == 0 || r == -1 || r == -2, "unexpected result %d", r);
    if (r == 0) {
      uint8_t *copy;
      size_t n = nx_buf_size(&out);
      FUZZ_CHECK(n <= max, "inflated %zu bytes past the bound %llu", n, (unsigned long long)max);
      copy = (uint8_t *)malloc(n ? n : 1);
      if (n)
        memcpy(copy, out.data + out.off, n);
      {
        size_t cut = len * param / 256;
        nx_buf_t part = {0};
        int pr = nx_inflate_prefix(shared, data, cut, max, &part);
        FUZZ_CHECK(pr == 0, "the first %zu of %zu bytes of a valid message refused (%d)", cut, len,
                   pr);
        FUZZ_CHECK(nx_buf_size(&part) <= n &&
                       (nx_buf_size(&part) == 0 ||
                        memcmp(part.data + part.off, copy, nx_buf_size(&part)) == 0),
                   "a first part inflates to other bytes than the message's first ones");
        nx_buf_free(&part);
      }
      roundtrip(copy, n, 15);
      free(copy);
    }
    nx_buf_free(&out);
  } else if (mode == 1) {
    roundtrip(data, len, 9 + param % 7);
  } else {
    const char *vals[16];
    size_t lens[16], n = 0, start = 0, i;
    nx_pmd_params_t p;
    char reply[160];
    for (i = 0; i <= len && n < 16; i++) {
      if (i == len || data[i] == '\n') {
        vals[n] = (const char *)data + start;
        lens[n] = i - start;
        n++;
        start = i + 1;
      }
    }
    if (nx_pmd_negotiate(vals, lens, n, &p, reply, sizeof(reply))) {
      FUZZ_CHECK(strncmp(reply,
                         "permessage-deflate; server_no_context_takeover; "
                         "client_no_context_takeover",
                         74) == 0,
                 "bad reply: %s", reply);
      FUZZ_CHECK(p.server_max_window_bits >= 8 && p.server_max_window_bits <= 15,
                 "server window %d", p.server_max_window_bits);
      FUZZ_CHECK(p.client_max_window_bits >= 8 && p.client_max_window_bits <= 15,
                 "client window %d", p.client_max_window_bits);
    }
  }
  return 0;
}
