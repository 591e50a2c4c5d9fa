/* Small helpers for HTTP header text (pure, header-only): case-insensitive
 * comparison of tokens and trimming of optional whitespace (RFC 9110 OWS). */
#ifndef NX_TOKEN_H
#define NX_TOKEN_H

#include <stddef.h>
#include <string.h>

static inline int nx_is_ows(char c) { return c == ' ' || c == '\t'; }

static inline int nx_ascii_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* RFC 9110 §5.6.2 tchar: a byte of a token. */
static inline int nx_is_tchar(unsigned char c) {
  unsigned char l = (unsigned char)(c | 0x20);
  return (c >= '0' && c <= '9') || (l >= 'a' && l <= 'z') ||
         (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* 1 if the alen bytes at a equal the string b, ignoring ASCII case. */
static inline int nx_token_ieq(const char *a, size_t alen, const char *b) {
  size_t i, blen = strlen(b);
  if (alen != blen)
    return 0;
  for (i = 0; i < alen; i++)
    if (nx_ascii_lower((unsigned char)a[i]) != nx_ascii_lower((unsigned char)b[i]))
      return 0;
  return 1;
}

/* Trims optional whitespace at both ends of *s (length *len). */
static inline void nx_trim_ows(const char **s, size_t *len) {
  while (*len && nx_is_ows(**s))
    (*s)++, (*len)--;
  while (*len && nx_is_ows((*s)[*len - 1]))
    (*len)--;
}

#endif
