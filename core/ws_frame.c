/* RFC 6455 frame parser and encoder. See ws_frame.h for the contract. */
#include "ws_frame.h"

#include <stdlib.h>
#include <string.h>

enum { ST_HEADER = 0, ST_PAYLOAD, ST_CLOSED, ST_ERROR };

/* Where an empty control payload "is": never read, but never NULL. */
static const uint8_t NO_PAYLOAD[1] = {0};

static size_t fail(nx_ws_parser_t *p, uint16_t code, const char *reason, size_t consumed) {
  p->state = ST_ERROR;
  p->error_code = code;
  p->error_reason = reason;
  return consumed;
}

void nx_ws_parser_init(nx_ws_parser_t *p, const nx_ws_callbacks_t *cb, void *data, int role) {
  uint64_t max = p->max_message_size;
  uint8_t rsv1 = p->allow_rsv1, defer = p->defer_unmask;
  memset(p, 0, sizeof(*p));
  p->cb = cb;
  p->data = data;
  p->role = (uint8_t)role;
  p->max_message_size = max;
  p->allow_rsv1 = rsv1;
  p->defer_unmask = defer;
  p->hdr_need = 2;
}

void nx_ws_parser_free(nx_ws_parser_t *p) {
  free(p->ctrl);
  p->ctrl = NULL;
}

int nx_ws_parser_closed(const nx_ws_parser_t *p) { return p->state == ST_CLOSED; }

int nx_ws_parser_failed(const nx_ws_parser_t *p) { return p->state == ST_ERROR; }

int nx_ws_close_code_valid(unsigned code) {
  if (code >= 1000 && code <= 1003)
    return 1;
  if (code >= 1007 && code <= 1014)
    return 1;
  return code >= 3000 && code <= 4999;
}

/* 16 bytes at a time (SSE2 on x86-64, NEON on arm64) with the compilers'
 * vector extension; the key phase repeats every 4 bytes, so a block built
 * from the rotated key stays in phase for the whole run. */
typedef uint8_t nx_v16_t __attribute__((vector_size(16)));

void nx_ws_unmask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                       uint64_t offset) {
  uint8_t r[4];
  uint32_t k4;
  uint64_t k8, w8, kk[2];
  nx_v16_t m, a, b, c, d;
  size_t i;

  /* The key rotated to the phase, as 4, 8 and 16 bytes. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  memcpy(&k4, key, 4);
  if (offset & 3) /* byte i of the word is key[(offset + i) & 3] */
    k4 = (k4 >> (8 * (offset & 3))) | (k4 << (32 - 8 * (offset & 3)));
  memcpy(r, &k4, 4);
#else
  for (i = 0; i < 4; i++)
    r[i] = key[(offset + i) & 3];
  memcpy(&k4, r, 4);
#endif
  k8 = (uint64_t)k4 | ((uint64_t)k4 << 32);
  if (len >= 16) { /* short payloads (chat, JSON) skip the vector setup */
    kk[0] = kk[1] = k8;
    memcpy(&m, kk, 16);
  }
  for (; len >= 64; src += 64, dst += 64, len -= 64) {
    memcpy(&a, src, 16);
    memcpy(&b, src + 16, 16);
    memcpy(&c, src + 32, 16);
    memcpy(&d, src + 48, 16);
    a ^= m;
    b ^= m;
    c ^= m;
    d ^= m;
    memcpy(dst, &a, 16);
    memcpy(dst + 16, &b, 16);
    memcpy(dst + 32, &c, 16);
    memcpy(dst + 48, &d, 16);
  }
  for (; len >= 16; src += 16, dst += 16, len -= 16) {
    memcpy(&a, src, 16);
    a ^= m;
    memcpy(dst, &a, 16);
  }
  if (len >= 8) {
    memcpy(&w8, src, 8);
    w8 ^= k8;
    memcpy(dst, &w8, 8);
    src += 8, dst += 8, len -= 8;
  }
  for (i = 0; i < len; i++)
    dst[i] = (uint8_t)(src[i] ^ r[i & 3]);
}

void nx_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t offset) {
  nx_ws_unmask_copy(data, data, len, key, offset);
}

size_t nx_ws_frame_header(uint8_t out[14], int fin, int rsv1, int opcode, uint64_t len,
                          const uint8_t *mask_key) {
  size_t n = 2;
  uint8_t maskbit = mask_key ? 0x80 : 0;

  out[0] = (uint8_t)((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0f));
  if (len < 126) {
    out[1] = (uint8_t)(maskbit | len);
  } else if (len <= 0xffff) {
    out[1] = maskbit | 126;
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    n = 4;
  } else {
    int i;
    out[1] = maskbit | 127;
    for (i = 0; i < 8; i++)
      out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    n = 10;
  }
  if (mask_key) {
    memcpy(out + n, mask_key, 4);
    n += 4;
  }
  return n;
}

size_t nx_ws_close_payload(uint8_t out[125], unsigned code, const char *reason, size_t reason_len) {
  if (code == 0)
    return 0;
  out[0] = (uint8_t)(code >> 8);
  out[1] = (uint8_t)code;
  if (reason == NULL)
    return 2;
  if (reason_len > 123) {
    /* Cut at a code point boundary so the reason stays valid UTF-8. */
    reason_len = 123;
    while (reason_len > 0 && ((uint8_t)reason[reason_len] & 0xc0) == 0x80)
      reason_len--;
  }
  memcpy(out + 2, reason, reason_len);
  return 2 + reason_len;
}

static int is_control(int opcode) { return opcode & 0x8; }

uint64_t nx_ws_compressed_limit(uint64_t max) {
  uint64_t extra = (max >> 3) + 64;
  return max > UINT64_MAX - extra ? UINT64_MAX : max + extra;
}

/* Checks everything the first two header bytes say; returns 0 or fails. */
static int check_first_bytes(nx_ws_parser_t *p) {
  uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
  int opcode = b0 & 0x0f;
  int rsv1 = (b0 & 0x40) != 0;

  if (b0 & 0x30)
    return fail(p, 1002, "reserved bits set", 0), -1;
  if (rsv1) {
    /* RFC 7692: RSV1 only on the first frame of a data message. */
    if (!p->allow_rsv1)
      return fail(p, 1002, "RSV1 set without an extension", 0), -1;
    if (opcode == NX_WS_OP_CONT)
      return fail(p, 1002, "RSV1 set on a continuation frame", 0), -1;
    if (is_control(opcode))
      return fail(p, 1002, "RSV1 set on a control frame", 0), -1;
  }
  switch (opcode) {
  case NX_WS_OP_CONT:
    if (!p->msg_opcode)
      return fail(p, 1002, "continuation frame without a message", 0), -1;
    break;
  case NX_WS_OP_TEXT:
  case NX_WS_OP_BINARY:
    if (p->msg_opcode)
      return fail(p, 1002, "new message before the previous one ended", 0), -1;
    break;
  case NX_WS_OP_CLOSE:
  case NX_WS_OP_PING:
  case NX_WS_OP_PONG:
    if (!(b0 & 0x80))
      return fail(p, 1002, "fragmented control frame", 0), -1;
    break; /* (its length is checked once decoded: a longer form may say 125 or less) */
  default:
    return fail(p, 1002, "reserved opcode", 0), -1;
  }
  if (p->role == NX_WS_ROLE_SERVER && !(b1 & 0x80))
    return fail(p, 1002, "unmasked client frame", 0), -1;
  if (p->role == NX_WS_ROLE_CLIENT && (b1 & 0x80))
    return fail(p, 1002, "masked server frame", 0), -1;
  return 0;
}

/* The header is complete: decode the length and mask, start the frame. */
static int begin_frame(nx_ws_parser_t *p) {
  uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
  uint64_t len = b1 & 0x7f, base, limit;
  size_t at = 2;
  int opcode = b0 & 0x0f;

  if (len == 126) {
    len = ((uint64_t)p->hdr[2] << 8) | p->hdr[3];
    at = 4;
  } else if (len == 127) {
    int i;
    if (p->hdr[2] & 0x80)
      return fail(p, 1002, "64-bit length with the top bit set", 0), -1;
    for (len = 0, i = 0; i < 8; i++)
      len = (len << 8) | p->hdr[2 + i];
    at = 10;
  }
  p->masked = (b1 & 0x80) != 0;
  if (p->masked)
    memcpy(p->mask, p->hdr + at, 4);
  p->opcode = (uint8_t)opcode;
  p->fin = (b0 & 0x80) != 0;
  p->remaining = len;
  p->mask_off = 0;
  p->ctrl_len = 0;
  p->ctrl_at = NO_PAYLOAD;
  p->state = ST_PAYLOAD;

  if (is_control(opcode)) {
    /* RFC 6455 §5.5; a length in a longer form than needed is accepted, as
     * it is for data frames (§5.2 asks senders for the minimal form). */
    if (len > 125)
      return fail(p, 1002, "control frame payload over 125 bytes", 0), -1;
    return 0;
  }

  /* Refuse an oversized message from its header, before any allocation.
   * Only a continuation adds to the bytes of the message so far. */
  base = opcode == NX_WS_OP_CONT ? p->msg_size : 0;
  limit = p->max_message_size;
  if (limit && (opcode == NX_WS_OP_CONT ? p->msg_rsv1 : (b0 & 0x40) != 0))
    limit = nx_ws_compressed_limit(limit);
  if (limit && (len > limit || base + len > limit))
    return fail(p, 1009, "message too big", 0), -1;
  p->msg_size = base + len;
  p->frame_len = len;
  if (opcode != NX_WS_OP_CONT) {
    p->msg_opcode = (uint8_t)opcode;
    p->msg_rsv1 = (b0 & 0x40) != 0;
    nx_utf8_init(&p->utf8);
    if (p->cb->on_message_begin && p->cb->on_message_begin(p, opcode, p->msg_rsv1)) {
      /* Stopped: on_frame_begin is still owed, at the next call. */
      p->pend_frame_begin = 1;
      return 1;
    }
  }
  if (p->cb->on_frame_begin && p->cb->on_frame_begin(p, len))
    return 1;
  return 0;
}

static int check_close_payload(nx_ws_parser_t *p) {
  unsigned code;
  if (p->ctrl_len == 0)
    return 0;
  if (p->ctrl_len == 1)
    return fail(p, 1002, "close payload of one byte", 0), -1;
  code = ((unsigned)p->ctrl_at[0] << 8) | p->ctrl_at[1];
  if (!nx_ws_close_code_valid(code))
    return fail(p, 1002, "invalid close code", 0), -1;
  if (!nx_utf8_valid(p->ctrl_at + 2, p->ctrl_len - 2u))
    return fail(p, 1007, "close reason is not UTF-8", 0), -1;
  return 0;
}

/* The current frame's payload is complete. Returns -1 on error, 1 to stop. */
static int end_frame(nx_ws_parser_t *p) {
  int op = p->opcode;
  p->state = ST_HEADER;
  p->hdr_len = 0;
  p->hdr_need = 2;
  if (is_control(op)) {
    if (op == NX_WS_OP_CLOSE) {
      if (check_close_payload(p))
        return -1;
      p->state = ST_CLOSED;
    }
    if (p->cb->on_control && p->cb->on_control(p, op, p->ctrl_at, p->ctrl_len))
      return 1;
    return p->state == ST_CLOSED ? 1 : 0;
  }
  if (!p->fin)
    return 0;
  if (p->msg_opcode == NX_WS_OP_TEXT && !p->msg_rsv1 && !nx_utf8_complete(&p->utf8))
    return fail(p, 1007, "text message is not UTF-8", 0), -1;
  p->msg_opcode = 0;
  if (p->cb->on_message_end && p->cb->on_message_end(p))
    return 1;
  return 0;
}

/* The fast path (on_message): b holds avail bytes from a frame's start.
 * Returns -1 when it is not a whole unfragmented data frame within the
 * rules and the limit (nothing changed: the general path takes it, and
 * reports what is wrong), else 0, or 1 if on_message asked to stop, with
 * *used the frame's size. */
static int whole_message(nx_ws_parser_t *p, uint8_t *b, size_t avail, size_t *used) {
  uint8_t b0 = b[0], b1 = b[1];
  int opcode = b0 & 0x0f, rsv1 = (b0 & 0x40) != 0, masked = (b1 & 0x80) != 0;
  uint64_t n = b1 & 0x7f, limit = p->max_message_size;
  size_t at = 2;
  uint8_t *d;
  /* FIN and no RSV2/RSV3; text or binary, with no message in progress;
   * RSV1 only if negotiated; masked exactly when the peer is a client. */
  if ((b0 & 0xb0) != 0x80 || (opcode != NX_WS_OP_TEXT && opcode != NX_WS_OP_BINARY) ||
      p->msg_opcode || (rsv1 && !p->allow_rsv1) || masked != (p->role == NX_WS_ROLE_SERVER))
    return -1;
  if (n == 126) {
    if (avail < 4)
      return -1;
    n = ((uint64_t)b[2] << 8) | b[3];
    at = 4;
  } else if (n == 127) {
    return -1; /* 64 KiB or more: the general path */
  }
  if (masked)
    at += 4;
  if (avail < at || avail - at < n)
    return -1;
  if (limit && rsv1)
    limit = nx_ws_compressed_limit(limit);
  if (limit && n > limit)
    return -1;
  d = b + at;
  p->data_masked = masked && p->defer_unmask && !(opcode == NX_WS_OP_TEXT && !rsv1);
  p->data_phase = 0;
  if (masked) {
    memcpy(p->mask, d - 4, 4);
    if (!p->data_masked)
      nx_ws_mask(d, (size_t)n, p->mask, 0);
  }
  if (opcode == NX_WS_OP_TEXT && !rsv1 && !nx_utf8_valid(d, (size_t)n)) {
    if (masked)
      nx_ws_mask(d, (size_t)n, p->mask, 0); /* masked again, as it came */
    return -1;
  }
  *used = at + (size_t)n;
  return p->cb->on_message(p, opcode, rsv1, d, (size_t)n) ? 1 : 0;
}

size_t nx_ws_parse(nx_ws_parser_t *p, uint8_t *buf, size_t len) {
  size_t pos = 0;

  if (p->state == ST_ERROR)
    return 0;
  if (p->state == ST_CLOSED)
    return len; /* RFC 6455 §5.5.1: ignore data after close */
  if (p->pend_frame_begin) {
    p->pend_frame_begin = 0;
    if (p->cb->on_frame_begin && p->cb->on_frame_begin(p, p->frame_len))
      return 0;
  }

  /* A frame whose payload is complete but whose end was not yet delivered
   * (a callback asked to stop) is finished even when no byte is given. */
  while (pos < len || (p->state == ST_PAYLOAD && p->remaining == 0)) {
    if (p->state == ST_HEADER) {
      if (p->hdr_len == 0 && len - pos >= 2 && p->cb->on_message) {
        size_t used;
        int r = whole_message(p, buf + pos, len - pos, &used);
        if (r >= 0) {
          pos += used;
          if (r)
            return pos; /* a callback stopped */
          continue;
        }
      }
      if (p->hdr_len == 0 && len - pos >= 2) {
        /* The common case, a whole header in this input: taken at once. */
        uint8_t b1 = buf[pos + 1], l7 = b1 & 0x7f;
        size_t need = 2 + (l7 == 126 ? 2u : l7 == 127 ? 8u : 0u) + ((b1 & 0x80) ? 4u : 0u);
        if (len - pos >= need) {
          p->hdr[0] = buf[pos];
          p->hdr[1] = b1;
          p->hdr_len = 2;
          pos += 2;
          if (check_first_bytes(p))
            return pos;
          memcpy(p->hdr + 2, buf + pos, need - 2);
          pos += need - 2;
          p->hdr_len = p->hdr_need = (uint8_t)need;
          if (begin_frame(p))
            return pos; /* error, or a callback stopped */
          continue;
        }
      }
      while (p->hdr_len < p->hdr_need && pos < len) {
        p->hdr[p->hdr_len++] = buf[pos++];
        if (p->hdr_len == 2) {
          uint8_t l7 = p->hdr[1] & 0x7f;
          if (check_first_bytes(p))
            return pos;
          p->hdr_need = (uint8_t)(2 +
                                  (l7 == 126   ? 2
                                   : l7 == 127 ? 8
                                               : 0) +
                                  ((p->hdr[1] & 0x80) ? 4 : 0));
        }
      }
      if (p->hdr_len < p->hdr_need)
        return pos;
      if (begin_frame(p))
        return pos; /* error, or a callback stopped */
      continue;
    }

    /* ST_PAYLOAD */
    {
      size_t n = len - pos;
      uint8_t *d = buf + pos;
      int r;
      if ((uint64_t)n > p->remaining)
        n = (size_t)p->remaining;
      if (n) {
        /* Bytes the parser never reads (binary or compressed data) may go
         * to the owner still masked: it unmasks them as it copies them. */
        p->data_masked = p->masked && p->defer_unmask && !is_control(p->opcode) &&
                         !(p->msg_opcode == NX_WS_OP_TEXT && !p->msg_rsv1);
        p->data_phase = p->mask_off;
        if (p->masked && !p->data_masked)
          nx_ws_mask(d, n, p->mask, p->mask_off);
        p->mask_off = (uint8_t)((p->mask_off + n) & 3);
        p->remaining -= n;
        pos += n;
        if (is_control(p->opcode)) {
          if (p->ctrl_len == 0 && p->remaining == 0) {
            p->ctrl_at = d; /* all of it in this input: used in place */
          } else {
            if (!p->ctrl && (p->ctrl = (uint8_t *)malloc(125)) == NULL)
              return fail(p, 1011, "out of memory", pos);
            memcpy(p->ctrl + p->ctrl_len, d, n);
            p->ctrl_at = p->ctrl;
          }
          p->ctrl_len = (uint8_t)(p->ctrl_len + n);
        } else {
          if (p->msg_opcode == NX_WS_OP_TEXT && !p->msg_rsv1 && nx_utf8_feed(&p->utf8, d, n))
            return fail(p, 1007, "text message is not UTF-8", pos);
          /* Stop requested: the frame's end (if reached) comes next call. */
          if (p->cb->on_data && p->cb->on_data(p, d, n))
            return pos;
        }
      }
      if (p->remaining == 0) {
        r = end_frame(p);
        if (r)
          return p->state == ST_CLOSED ? len : pos;
      }
    }
  }
  return pos;
}
