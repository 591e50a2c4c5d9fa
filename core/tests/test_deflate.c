/* Tests of the permessage-deflate codec (core/deflate.c): what it declines
 * to compress (send plain), and that what it compresses inflates back. */
#include <string.h>
#include <zlib.h>

#include "deflate.h"
#include "test.h"

/* n bytes from a linear congruential generator: random to any compressor. */
static void random_bytes(uint8_t *p, size_t n, uint32_t seed) {
  size_t i;
  for (i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    p[i] = (uint8_t)(seed >> 24);
  }
}

/* n bytes of JSON-like text. */
static void text_bytes(uint8_t *p, size_t n) {
  static const char unit[] =
      "{\"user\":\"alice\",\"room\":\"lobby\",\"text\":\"hello there\",\"n\":42},";
  size_t i;
  for (i = 0; i < n; i++)
    p[i] = (uint8_t)unit[i % (sizeof(unit) - 1)];
}

/* Compresses in, then inflates the result and checks it gives in back. */
static int round_trip(nx_deflate_t *d, const uint8_t *in, size_t len, size_t *clen) {
  const uint8_t *z = nx_deflate_message(d, in, len, 15, clen);
  nx_buf_t out = {0};
  int ok;
  if (!z)
    return 0;
  ok = CHECK_EQ(nx_inflate_message(d, z, *clen, 0, &out), 0) &&
       CHECK_MEM_EQ(out.data + out.off, nx_buf_size(&out), in, len);
  nx_buf_free(&out);
  return ok;
}

TEST(deflate_compresses_text_and_it_inflates_back) {
  static uint8_t in[65536];
  static const size_t lens[] = {0, 1, 100, 255, 256, 1000, 4096, 65536};
  size_t i, clen;
  nx_deflate_t *d = nx_deflate_new();
  for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    text_bytes(in, lens[i]);
    if (!CHECK(round_trip(d, in, lens[i], &clen)))
      nx_test_diag("text of %zu bytes was not compressed", lens[i]);
    else if (lens[i] >= 1000)
      CHECK(clen < lens[i] / 4);
  }
  nx_deflate_free(d);
}

TEST(deflate_sends_random_data_plain) {
  static uint8_t in[65536];
  static const size_t lens[] = {256, 300, 1024, 2048, 2049, 4096, 65536};
  size_t i, clen;
  nx_deflate_t *d = nx_deflate_new();
  for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    random_bytes(in, lens[i], (uint32_t)i + 1);
    if (!CHECK(nx_deflate_message(d, in, lens[i], 15, &clen) == NULL))
      nx_test_diag("random data of %zu bytes was compressed to %zu", lens[i], clen);
  }
  /* Below 256 bytes the threshold alone decides: compressed. */
  random_bytes(in, 200, 7);
  CHECK(round_trip(d, in, 200, &clen));
  nx_deflate_free(d);
}

TEST(deflate_compresses_mostly_random_data_that_still_shrinks) {
  /* Every other byte random, the others all 'a': about 5 bits of entropy
   * a byte, not random by the sample, and it shrinks (the 'a's): compressed. */
  static uint8_t in[8192];
  size_t i, clen;
  nx_deflate_t *d = nx_deflate_new();
  random_bytes(in, sizeof(in), 3);
  for (i = 0; i < sizeof(in); i += 2)
    in[i] = 'a';
  CHECK(round_trip(d, in, sizeof(in), &clen));
  CHECK(clen < sizeof(in));
  nx_deflate_free(d);
}

TEST(deflate_compresses_data_with_every_byte_value_that_repeats) {
  /* A ramp of all 256 byte values, over and over: the byte entropy of
   * random data, yet it shrinks to nearly nothing. */
  static uint8_t in[65536];
  static const size_t lens[] = {600, 1024, 5000, 65536};
  size_t i, clen;
  nx_deflate_t *d = nx_deflate_new();
  for (i = 0; i < sizeof(in); i++)
    in[i] = (uint8_t)((i * 7 + 3) & 0xff);
  for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
    if (!CHECK(round_trip(d, in, lens[i], &clen)))
      nx_test_diag("a ramp of %zu bytes was sent plain", lens[i]);
    else if (lens[i] >= 1024)
      CHECK(clen < lens[i] / 2);
  }
  /* A random block of 4 KiB sent 16 times over: compressed. */
  random_bytes(in, 4096, 5);
  for (i = 4096; i < sizeof(in); i++)
    in[i] = in[i - 4096];
  CHECK(round_trip(d, in, sizeof(in), &clen));
  CHECK(clen < sizeof(in) / 8);
  /* One period alone (every byte value once) does not repeat: plain. */
  for (i = 0; i < 256; i++)
    in[i] = (uint8_t)((i * 7 + 3) & 0xff);
  CHECK(nx_deflate_message(d, in, 256, 15, &clen) == NULL);
  nx_deflate_free(d);
}

/* Inflates in with a raw window of bits (zlib directly, as a client would):
 * 1 when it gives want back. The output is taken 16 bytes at a time, so
 * that what a match refers to comes from zlib's window (within one output
 * buffer, zlib reads back from the buffer, whatever the window). */
static int inflates_with_window(const uint8_t *in, size_t len, int bits, const uint8_t *want,
                                size_t wlen) {
  static uint8_t out[65536 + 64];
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  z_stream z;
  size_t got = 0;
  int pass, r = Z_OK;
  memset(&z, 0, sizeof(z));
  if (inflateInit2(&z, -bits) != Z_OK)
    return 0;
  for (pass = 0; pass < 2 && r != Z_DATA_ERROR; pass++) {
    z.next_in = (uint8_t *)(uintptr_t)(pass ? tail : in);
    z.avail_in = (uInt)(pass ? sizeof(tail) : len);
    do {
      uint8_t chunk[16];
      z.next_out = chunk;
      z.avail_out = sizeof(chunk);
      r = inflate(&z, Z_SYNC_FLUSH);
      if (r == Z_DATA_ERROR || got + (sizeof(chunk) - z.avail_out) > sizeof(out))
        r = Z_DATA_ERROR;
      else
        memcpy(out + got, chunk, sizeof(chunk) - z.avail_out), got += sizeof(chunk) - z.avail_out;
    } while (r == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
  }
  inflateEnd(&z);
  return r != Z_DATA_ERROR && got == wlen && memcmp(out, want, wlen) == 0;
}

TEST(deflate_window_8_output_inflates_with_an_8_bit_window) {
  /* A client may ask for server_max_window_bits=8 (Autobahn 13.3, 13.5):
   * the compressor runs with 9 bits, whose matches reach back 250 bytes at
   * most, so a 256-byte window reads them. Data that repeats at every
   * distance around that edge, and text. */
  static uint8_t in[65536];
  size_t clen, n, dist;
  nx_deflate_t *d = nx_deflate_new();
  const uint8_t *z;
  for (dist = 180; dist <= 320; dist += 7) {
    random_bytes(in, dist, (uint32_t)dist);
    for (n = 0; n < dist; n++)
      in[n] = (uint8_t)('a' + (in[n] & 15));
    for (n = dist; n < 20000; n++)
      in[n] = (n % 97) < 60 ? in[n - dist] : (uint8_t)('a' + ((n * 31) & 15));
    z = nx_deflate_message(d, in, 20000, 8, &clen);
    if (!CHECK(z != NULL))
      break;
    if (!CHECK(inflates_with_window(z, clen, 8, in, 20000))) {
      nx_test_diag("repeats at distance %zu: the output needs more than an 8-bit window", dist);
      break;
    }
  }
  text_bytes(in, sizeof(in));
  z = nx_deflate_message(d, in, sizeof(in), 8, &clen);
  CHECK(z != NULL && inflates_with_window(z, clen, 8, in, sizeof(in)));
  /* (and the check can fail: a 15-bit window's output of 300 random
   * letters said over and over does not read with 8) */
  random_bytes(in, 300, 99);
  for (n = 0; n < 300; n++)
    in[n] = (uint8_t)('a' + (in[n] & 15));
  for (n = 300; n < 20000; n++)
    in[n] = in[n - 300];
  z = nx_deflate_message(d, in, 20000, 15, &clen);
  CHECK(z != NULL && !inflates_with_window(z, clen, 8, in, 20000) &&
        inflates_with_window(z, clen, 15, in, 20000));
  nx_deflate_free(d);
}

TEST(deflate_cache_remembers_plain) {
  /* The same bytes again (a broadcast): the cached answer. */
  static uint8_t in[4096];
  size_t clen;
  uint64_t compressions, hits;
  nx_deflate_t *d = nx_deflate_new();
  text_bytes(in, sizeof(in));
  CHECK(nx_deflate_message(d, in, sizeof(in), 15, &clen) != NULL);
  CHECK(nx_deflate_message(d, in, sizeof(in), 15, &clen) != NULL);
  nx_deflate_stats(d, &compressions, &hits);
  CHECK_EQ(compressions, 1);
  CHECK_EQ(hits, 1);
  /* Bytes that pass the sample but do not shrink: plain, remembered as
   * such (compressed once). 256 bytes drawn from 128 values: about 7 bits a
   * byte (not random by the sample), but a dynamic Huffman block's tables
   * cost more than the bit a byte saves. */
  {
    uint8_t mixed[256];
    random_bytes(mixed, sizeof(mixed), 11);
    for (size_t i = 0; i < sizeof(mixed); i++)
      mixed[i] &= 0x7f;
    CHECK(nx_deflate_message(d, mixed, sizeof(mixed), 15, &clen) == NULL);
    CHECK(nx_deflate_message(d, mixed, sizeof(mixed), 15, &clen) == NULL);
    nx_deflate_stats(d, &compressions, &hits);
    CHECK_EQ(compressions, 2);
    CHECK_EQ(hits, 2);
  }
  /* Random bytes: sampled once, plain, then a cache hit. */
  {
    static uint8_t rnd[65536];
    random_bytes(rnd, sizeof(rnd), 13);
    CHECK(nx_deflate_message(d, rnd, sizeof(rnd), 15, &clen) == NULL);
    CHECK(nx_deflate_message(d, rnd, sizeof(rnd), 15, &clen) == NULL);
    nx_deflate_stats(d, &compressions, &hits);
    CHECK_EQ(compressions, 2);
    CHECK_EQ(hits, 3);
  }
  nx_deflate_free(d);
}
