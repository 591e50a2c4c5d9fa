/* Log-linear latency histogram. */
#include <string.h>

#include "lg.h"

void lg_hist_init(lg_hist_t *h) {
  memset(h, 0, sizeof(*h));
  h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v) {
  unsigned e;
  if (v < LG_HIST_SUB)
    return (unsigned)v;
  e = 63u - (unsigned)__builtin_clzll(v); /* >= LG_HIST_SUB_BITS */
  return LG_HIST_SUB + (e - LG_HIST_SUB_BITS) * LG_HIST_SUB +
         (unsigned)((v >> (e - LG_HIST_SUB_BITS)) - LG_HIST_SUB);
}

/* The middle of a bucket's range. */
static uint64_t value_of(unsigned b) {
  unsigned e, sub;
  uint64_t lo, width;
  if (b < LG_HIST_SUB)
    return b;
  e = (b - LG_HIST_SUB) / LG_HIST_SUB + LG_HIST_SUB_BITS;
  sub = (b - LG_HIST_SUB) % LG_HIST_SUB;
  width = 1ull << (e - LG_HIST_SUB_BITS);
  lo = ((uint64_t)(LG_HIST_SUB + sub)) << (e - LG_HIST_SUB_BITS);
  return lo + width / 2;
}

void lg_hist_add(lg_hist_t *h, uint64_t ns) {
  h->count[bucket_of(ns)]++;
  h->n++;
  h->sum += (double)ns;
  if (ns > h->max)
    h->max = ns;
  if (ns < h->min)
    h->min = ns;
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double q) {
  uint64_t rank, seen = 0;
  unsigned b;
  uint64_t v;
  if (h->n == 0)
    return 0;
  if (q >= 1.0)
    return h->max;
  rank = (uint64_t)(q * (double)h->n);
  if (rank >= h->n)
    rank = h->n - 1;
  for (b = 0; b < LG_HIST_BUCKETS; b++) {
    seen += h->count[b];
    if (seen > rank)
      break;
  }
  v = value_of(b);
  if (v > h->max)
    v = h->max;
  if (v < h->min)
    v = h->min;
  return v;
}
