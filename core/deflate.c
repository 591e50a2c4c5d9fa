/* permessage-deflate on zlib. See deflate.h. */
#include "deflate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct nx_deflate_s {
  z_stream def[16]; /* one per window size, created on first use */
  uint8_t def_ready[16];
  z_stream inf;
  int inf_ready;
  nx_buf_t out;   /* the last compressed message */
  nx_buf_t input; /* ... and the bytes it was made from */
  int out_bits;
  int out_plain; /* ... which did not shrink: send it plain */
  uint64_t compressions, cache_hits;
};

/* Messages from this size on are compressed only when they look like they
 * would shrink: a sample of their bytes must not look random (compressed,
 * encrypted or media data: zlib spends about 30 ns a byte on such data for
 * nothing, 1.7 ms for 64 KiB on the development VM), and the compressed
 * form must be smaller. Below it, the threshold alone decides. */
#define NX_SHRINK_CHECK_MIN 256
#define NX_SAMPLE_CHUNKS 4
#define NX_SAMPLE_CHUNK 128
/* Bits of entropy per byte above which a sample counts as random. */
#define NX_RANDOM_BITS 7.5

/* c * log2(c) for the counts a sample can have, computed once. */
static float clog2_table[NX_SAMPLE_CHUNKS * NX_SAMPLE_CHUNK + 1];

static float clog2(unsigned c) {
  if (clog2_table[2] == 0.0f) {
    unsigned i;
    for (i = 2; i < sizeof(clog2_table) / sizeof(clog2_table[0]); i++)
      clog2_table[i] = (float)(i * log2((double)i));
  }
  return clog2_table[c];
}

/* The sample looks_random takes: 4 chunks of 128 bytes spread over in
 * (its first and last bytes included), or all of in when shorter. Returns
 * how many bytes it copied into out. */
static size_t take_sample(const uint8_t *in, size_t len, uint8_t *out) {
  size_t k, step;
  if (len <= NX_SAMPLE_CHUNKS * NX_SAMPLE_CHUNK) {
    memcpy(out, in, len);
    return len;
  }
  step = (len - NX_SAMPLE_CHUNK) / (NX_SAMPLE_CHUNKS - 1);
  for (k = 0; k < NX_SAMPLE_CHUNKS; k++)
    memcpy(out + k * NX_SAMPLE_CHUNK, in + k * step, NX_SAMPLE_CHUNK);
  return NX_SAMPLE_CHUNKS * NX_SAMPLE_CHUNK;
}

/* Bits of entropy per byte of p (Miller-Madow corrected for a small n). */
static double byte_entropy(const uint8_t *p, size_t n) {
  uint16_t count[256] = {0};
  unsigned distinct = 0;
  double sum = 0;
  size_t i;
  for (i = 0; i < n; i++)
    count[p[i]]++;
  for (i = 0; i < 256; i++) {
    if (count[i]) {
      distinct++;
      sum += clog2(count[i]);
    }
  }
  return log2((double)n) - sum / (double)n +
         (distinct - 1) / (2.0 * (double)n * 0.6931471805599453);
}

/* Whether the first bytes of in (up to NX_REPEAT_SPAN) repeat themselves:
 * how many of their 4-byte strings occur earlier too (a direct-mapped table
 * of where each was last seen: a lower bound), at least one in 64. Data
 * with every byte value about as often as random data can still repeat
 * (a block sent twice, a ramp, a table of counters), which deflate finds. */
#define NX_REPEAT_SPAN 8192
static int repeats_itself(const uint8_t *in, size_t len) {
  uint16_t seen[4096]; /* position + 1 of the last 4 bytes with this hash */
  size_t n = len < NX_REPEAT_SPAN ? len : NX_REPEAT_SPAN, i, found = 0;
  memset(seen, 0, sizeof(seen));
  for (i = 0; i + 4 <= n; i++) {
    uint32_t v;
    unsigned slot;
    memcpy(&v, in + i, 4);
    slot = (v * 2654435761u) >> 20;
    if (seen[slot] && memcmp(in + seen[slot] - 1, in + i, 4) == 0)
      found++;
    seen[slot] = (uint16_t)(i + 1);
  }
  return found * 64 >= n;
}

/* Whether in looks random: a sample's byte entropy is above NX_RANDOM_BITS
 * (text and most binary formats are well below), and its first bytes do
 * not repeat themselves. */
static int looks_random(const uint8_t *in, size_t len) {
  uint8_t sample[NX_SAMPLE_CHUNKS * NX_SAMPLE_CHUNK];
  size_t n = take_sample(in, len, sample);
  return byte_entropy(sample, n) > NX_RANDOM_BITS && !repeats_itself(in, len);
}

void nx_deflate_stats(const nx_deflate_t *d, uint64_t *compressions, uint64_t *cache_hits) {
  *compressions = d ? d->compressions : 0;
  *cache_hits = d ? d->cache_hits : 0;
}

nx_deflate_t *nx_deflate_new(void) { return (nx_deflate_t *)calloc(1, sizeof(nx_deflate_t)); }

void nx_deflate_free(nx_deflate_t *d) {
  int i;
  if (!d)
    return;
  for (i = 0; i < 16; i++)
    if (d->def_ready[i])
      deflateEnd(&d->def[i]);
  if (d->inf_ready)
    inflateEnd(&d->inf);
  nx_buf_free(&d->out);
  nx_buf_free(&d->input);
  free(d);
}

/* The cache of the last message (see nx_deflate_message): emptied before
 * a new one is made, then filled with its input and whether it goes plain.
 * Returns what nx_deflate_message returns for it. */
static void forget(nx_deflate_t *d) {
  d->out.off = d->out.len = 0;
  d->input.off = d->input.len = 0;
  d->out_bits = 0;
}

static const uint8_t *remember(nx_deflate_t *d, const uint8_t *in, size_t len, int bits, int plain,
                               size_t *outlen) {
  d->out_plain = plain;
  if (nx_buf_append(&d->input, in, len) == 0)
    d->out_bits = bits;
  if (plain)
    return NULL;
  *outlen = d->out.len;
  return d->out.data;
}

const uint8_t *nx_deflate_message(nx_deflate_t *d, const uint8_t *in, size_t len, int bits,
                                  size_t *outlen) {
  z_stream *z;
  if (bits < 9)
    bits = 9;
  if (bits > 15)
    bits = 15;
  /* A broadcast sends the same bytes to many peers: compress them once. */
  if (d->out_bits == bits && nx_buf_size(&d->input) == len && len &&
      memcmp(d->input.data + d->input.off, in, len) == 0) {
    d->cache_hits++;
    if (d->out_plain)
      return NULL;
    *outlen = nx_buf_size(&d->out);
    return d->out.data + d->out.off;
  }
  if (len >= NX_SHRINK_CHECK_MIN && looks_random(in, len)) {
    /* Plain, and remembered as such (sent to many, it is sampled once). */
    forget(d);
    return remember(d, in, len, bits, 1, outlen);
  }
  z = &d->def[bits];
  if (!d->def_ready[bits]) {
    /* Level 1: most of the saving for a fraction of the CPU. memLevel 8. */
    if (deflateInit2(z, 1, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      return NULL;
    d->def_ready[bits] = 1;
  } else {
    deflateReset(z);
  }
  forget(d);
  if (nx_buf_reserve(&d->out, deflateBound(z, (uLong)len) + 16))
    return NULL;
  d->compressions++;
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)len;
  z->next_out = d->out.data;
  z->avail_out = (uInt)(d->out.cap);
  if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in != 0)
    return NULL;
  d->out.len = d->out.cap - z->avail_out;
  /* RFC 7692 §7.2.1: remove the 00 00 ff ff that ends the sync flush. */
  if (d->out.len >= 4 && memcmp(d->out.data + d->out.len - 4, "\0\0\xff\xff", 4) == 0)
    d->out.len -= 4;
  if (d->out.len == 0) { /* an empty message is the single byte 00 */
    d->out.data[0] = 0;
    d->out.len = 1;
  }
  return remember(d, in, len, bits, len >= NX_SHRINK_CHECK_MIN && d->out.len >= len, outlen);
}

void nx_deflate_trim(nx_deflate_t *d) {
  if (d && (d->out.cap > 65536 || d->input.cap > 65536)) {
    nx_buf_free(&d->out);
    nx_buf_free(&d->input);
    d->out_bits = 0;
  }
}

/* 1 if the n bytes after a final block (BFINAL) are the start of the empty
 * stored block that a sender flushing with BFINAL adds (RFC 7692 §7.2.3.3:
 * its header byte 00, whose 00 00 ff ff was removed), or that block whole. */
static int empty_block_rest(const uint8_t *p, size_t n) {
  return (n == 1 && p[0] == 0) || (n == 5 && memcmp(p, "\0\0\0\xff\xff", 5) == 0);
}

/* The runtime's inflate stream, reset for a new message; NULL without memory. */
static z_stream *inflate_start(nx_deflate_t *d) {
  if (!d->inf_ready) {
    if (inflateInit2(&d->inf, -15) != Z_OK)
      return NULL;
    d->inf_ready = 1;
  } else {
    inflateReset(&d->inf);
  }
  return &d->inf;
}

/* Inflates len bytes of input into out (appending). Returns 0 once the input
 * is used up and the output drained (a full buffer may mean zlib holds more
 * output), 1 at the end of the deflate stream (a final block: z->avail_in
 * says what is left), -1 for bad data or no memory, -2 past max bytes
 * (checked as it goes: a small bomb never gets the memory). */
static int inflate_input(z_stream *z, const uint8_t *in, size_t len, uint64_t max, nx_buf_t *out) {
  int full = 1, r;
  z->next_in = (Bytef *)in;
  z->avail_in = (uInt)len;
  while (z->avail_in > 0 || full) {
    size_t room;
    if (nx_buf_reserve(out, out->len < 16384 ? 16384 : out->len))
      return -1;
    room = out->cap - out->len;
    if (room > (1u << 30)) /* avail_out is 32 bits */
      room = 1u << 30;
    z->next_out = out->data + out->len;
    z->avail_out = (uInt)room;
    r = inflate(z, Z_SYNC_FLUSH);
    out->len += room - z->avail_out;
    full = z->avail_out == 0;
    if (max && nx_buf_size(out) > max)
      return -2;
    if (r == Z_STREAM_END)
      return 1;
    if (r == Z_BUF_ERROR && !full)
      break; /* no progress: needs more input */
    if (r != Z_OK && r != Z_BUF_ERROR)
      return -1;
  }
  return 0;
}

int nx_inflate_message(nx_deflate_t *d, const uint8_t *in, size_t len, uint64_t max,
                       nx_buf_t *out) {
  static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
  z_stream *z;
  int pass, r, whole = 0;
  size_t before_tail = 0;

  /* No data at all: not the single byte 00 an empty message compresses to,
   * but taken as the empty message it plainly means (as zlib streams do). */
  if (len == 0)
    return 0;
  if (!(z = inflate_start(d)))
    return -1;
  /* The message, then the 00 00 ff ff the sender removed. */
  for (pass = 0; pass < 2; pass++) {
    if (pass == 1)
      before_tail = out->len;
    r = pass == 0 ? inflate_input(z, in, len, max, out) : inflate_input(z, tail, 4, max, out);
    if (r < 0)
      return r;
    if (r == 1) /* the final block ended: in the payload (what follows it must be the
                   empty block's start), or in the tail, which must have added nothing */
      return (pass == 0 ? z->avail_in && !empty_block_rest(z->next_in, z->avail_in)
                        : out->len != before_tail)
                 ? -1
                 : 0;
    /* The tail only ever closes an empty stored block (RFC 7692 §7.2.2): the
     * message is whole if the stream stands between blocks (zlib's
     * data_type bit 128) after the payload (a sender that kept the tail), or
     * after the tail with nothing inflated from it. Otherwise the payload
     * stopped inside a block: the tail's four bytes were taken as its data
     * (a stored block short of its bytes), or as codes of a Huffman one. */
    if ((z->data_type & 128) && (pass == 0 || out->len == before_tail))
      whole = 1;
  }
  return whole ? 0 : -1;
}

int nx_inflate_prefix(nx_deflate_t *d, const uint8_t *in, size_t len, uint64_t max, nx_buf_t *out) {
  z_stream *z = inflate_start(d);
  int r;
  if (!z)
    return -1;
  r = inflate_input(z, in, len, max, out);
  if (r != 1)
    return r;
  /* The final block ended: at most the empty block's start may follow (see
   * empty_block_rest), which later fragments may still complete. */
  return z->avail_in > 5 || memcmp(z->next_in, "\0\0\0\xff\xff", z->avail_in) != 0 ? -1 : 0;
}
