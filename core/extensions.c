/* permessage-deflate negotiation. See extensions.h. */
#include "extensions.h"

#include <stdio.h>
#include <string.h>

#include "token.h"

/* Parses a window-bits value (optionally quoted): 8..15, else -1. */
static int window_bits(const char *v, size_t len) {
  nx_trim_ows(&v, &len);
  if (len >= 2 && v[0] == '"' && v[len - 1] == '"')
    v++, len -= 2;
  if (len == 1 && v[0] >= '8' && v[0] <= '9')
    return v[0] - '0';
  if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
    return 10 + v[1] - '0';
  return -1;
}

/* Checks one offer "permessage-deflate; a; b=c"; 1 if acceptable. */
static int accept_offer(const char *s, size_t len, nx_pmd_params_t *p) {
  int seen_snct = 0, seen_cnct = 0, seen_smwb = 0, seen_cmwb = 0;
  size_t i = 0;
  const char *name;
  size_t nlen;

  memset(p, 0, sizeof(*p));
  p->server_max_window_bits = 15;
  p->client_max_window_bits = 15;
  while (i < len && s[i] != ';')
    i++;
  name = s;
  nlen = i;
  nx_trim_ows(&name, &nlen);
  if (!nx_token_ieq(name, nlen, "permessage-deflate"))
    return 0;
  while (i < len) {
    const char *param, *val = NULL;
    size_t plen, vlen = 0, start = ++i;
    while (i < len && s[i] != ';')
      i++;
    param = s + start;
    plen = i - start;
    {
      const char *eq = memchr(param, '=', plen);
      if (eq) {
        val = eq + 1;
        vlen = plen - (size_t)(val - param);
        plen = (size_t)(eq - param);
      }
    }
    nx_trim_ows(&param, &plen);
    if (plen == 0)
      return 0;
    if (nx_token_ieq(param, plen, "server_no_context_takeover")) {
      if (seen_snct++ || val)
        return 0;
    } else if (nx_token_ieq(param, plen, "client_no_context_takeover")) {
      if (seen_cnct++ || val)
        return 0;
    } else if (nx_token_ieq(param, plen, "server_max_window_bits")) {
      int b = val ? window_bits(val, vlen) : -1;
      if (seen_smwb++ || b < 0)
        return 0;
      p->server_max_window_bits = b;
      p->server_window_in_reply = 1;
    } else if (nx_token_ieq(param, plen, "client_max_window_bits")) {
      if (seen_cmwb++)
        return 0;
      if (val) {
        int b = window_bits(val, vlen);
        if (b < 0)
          return 0;
        p->client_max_window_bits = b;
      }
      p->client_window_in_reply = 1;
    } else {
      return 0;
    }
  }
  return 1;
}

int nx_pmd_negotiate(const char *const *values, const size_t *lens, size_t n, nx_pmd_params_t *out,
                     char *reply, size_t replylen) {
  size_t h;
  for (h = 0; h < n; h++) {
    const char *v = values[h];
    size_t len = lens[h], i = 0;
    while (i < len) {
      size_t start = i;
      int quoted = 0;
      /* An offer ends at a comma outside quotes. */
      while (i < len && (quoted || v[i] != ',')) {
        if (v[i] == '"')
          quoted = !quoted;
        i++;
      }
      if (accept_offer(v + start, i - start, out)) {
        int k = snprintf(reply, replylen,
                         "permessage-deflate; server_no_context_takeover; "
                         "client_no_context_takeover");
        if (out->server_window_in_reply && k > 0 && (size_t)k < replylen)
          snprintf(reply + k, replylen - (size_t)k, "; server_max_window_bits=%d",
                   out->server_max_window_bits);
        return 1;
      }
      i++;
    }
  }
  return 0;
}
