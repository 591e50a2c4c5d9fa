/* Incremental UTF-8 validator: a small hand-written state machine.
 *
 * States name what the next byte must be. The restricted second-byte ranges
 * after E0, ED, F0 and F4 are what reject overlong forms, UTF-16 surrogates
 * and code points above U+10FFFF; everything else is "n continuation bytes
 * to go". ASCII runs are skipped eight bytes at a time, which is what text
 * traffic mostly is. */
#include "utf8.h"

#include <string.h>

enum {
  S_ACCEPT = NX_UTF8_ACCEPT,
  S_CONT1, /* one byte 80..BF, then accept */
  S_CONT2, /* two bytes 80..BF */
  S_CONT3, /* three bytes 80..BF */
  S_E0,    /* A0..BF then CONT1 (no overlong 3-byte forms) */
  S_ED,    /* 80..9F then CONT1 (no surrogates D800..DFFF) */
  S_F0,    /* 90..BF then CONT2 (no overlong 4-byte forms) */
  S_F4,    /* 80..8F then CONT2 (nothing above U+10FFFF) */
  S_REJECT = NX_UTF8_REJECT
};

static uint8_t lead(uint8_t b) {
  if (b < 0x80)
    return S_ACCEPT;
  if (b < 0xc2)
    return S_REJECT; /* stray continuation or overlong C0/C1 */
  if (b < 0xe0)
    return S_CONT1;
  if (b == 0xe0)
    return S_E0;
  if (b == 0xed)
    return S_ED;
  if (b < 0xf0)
    return S_CONT2;
  if (b == 0xf0)
    return S_F0;
  if (b < 0xf4)
    return S_CONT3;
  if (b == 0xf4)
    return S_F4;
  return S_REJECT; /* F5..FF never appear in UTF-8 */
}

static uint8_t step(uint8_t s, uint8_t b) {
  switch (s) {
  case S_ACCEPT:
    return lead(b);
  case S_CONT1:
    return (b & 0xc0) == 0x80 ? S_ACCEPT : S_REJECT;
  case S_CONT2:
    return (b & 0xc0) == 0x80 ? S_CONT1 : S_REJECT;
  case S_CONT3:
    return (b & 0xc0) == 0x80 ? S_CONT2 : S_REJECT;
  case S_E0:
    return (b >= 0xa0 && b <= 0xbf) ? S_CONT1 : S_REJECT;
  case S_ED:
    return (b >= 0x80 && b <= 0x9f) ? S_CONT1 : S_REJECT;
  case S_F0:
    return (b >= 0x90 && b <= 0xbf) ? S_CONT2 : S_REJECT;
  case S_F4:
    return (b >= 0x80 && b <= 0x8f) ? S_CONT2 : S_REJECT;
  default:
    return S_REJECT;
  }
}

int nx_utf8_feed(nx_utf8_t *u, const uint8_t *p, size_t len) {
  uint8_t s = u->state;
  const uint8_t *end;

  if (s == S_REJECT)
    return -1;
  if (len == 0)
    return 0; /* p may be NULL then: no pointer arithmetic on it */
  end = p + len;
  while (p < end) {
    if (s == S_ACCEPT) {
      /* Fast path: skip whole words of ASCII, two at a time first. */
      while (end - p >= 16) {
        uint64_t w0, w1;
        memcpy(&w0, p, 8);
        memcpy(&w1, p + 8, 8);
        if ((w0 | w1) & 0x8080808080808080ull)
          break;
        p += 16;
      }
      while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (w & 0x8080808080808080ull)
          break;
        p += 8;
      }
      if (p == end)
        break;
    }
    s = step(s, *p++);
    if (s == S_REJECT) {
      u->state = S_REJECT;
      return -1;
    }
  }
  u->state = s;
  return 0;
}

int nx_utf8_valid(const uint8_t *p, size_t len) {
  nx_utf8_t u;
  nx_utf8_init(&u);
  return nx_utf8_feed(&u, p, len) == 0 && nx_utf8_complete(&u);
}
