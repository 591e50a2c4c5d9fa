/* RFC 6455 framing: a push parser and a frame encoder. Pure: no I/O, no
 * allocation, no libuv/Lua/OpenSSL.
 *
 * The parser is fed whatever bytes arrived (any chunking, down to one byte
 * at a time) and calls back with *messages*, not raw frames: it checks every
 * rule of RFC 6455 §5 (masking, RSV bits, opcodes, control frame limits,
 * fragmentation order, UTF-8 of text messages and close reasons, close
 * codes, the maximum message size) and reports the first violation as a
 * close code. Control frames are delivered whole, even between the
 * fragments of a data message. */
#ifndef NX_WS_FRAME_H
#define NX_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "utf8.h"

enum {
  NX_WS_OP_CONT = 0x0,
  NX_WS_OP_TEXT = 0x1,
  NX_WS_OP_BINARY = 0x2,
  NX_WS_OP_CLOSE = 0x8,
  NX_WS_OP_PING = 0x9,
  NX_WS_OP_PONG = 0xa
};

enum {
  NX_WS_CLOSE_NORMAL = 1000,
  NX_WS_CLOSE_GOING_AWAY = 1001,
  NX_WS_CLOSE_PROTOCOL_ERROR = 1002,
  NX_WS_CLOSE_UNSUPPORTED = 1003,
  NX_WS_CLOSE_NO_STATUS = 1005, /* never on the wire */
  NX_WS_CLOSE_ABNORMAL = 1006,  /* never on the wire */
  NX_WS_CLOSE_INVALID_DATA = 1007,
  NX_WS_CLOSE_POLICY = 1008,
  NX_WS_CLOSE_TOO_BIG = 1009,
  NX_WS_CLOSE_INTERNAL_ERROR = 1011,
  NX_WS_CLOSE_TRY_AGAIN = 1013
};

/* Which side this parser reads for. A server requires masked frames from its
 * clients; a client requires unmasked frames from its server. */
enum { NX_WS_ROLE_SERVER = 0, NX_WS_ROLE_CLIENT = 1 };

typedef struct nx_ws_parser_s nx_ws_parser_t;

/* Every callback returns 0 to go on, or non-zero to make nx_ws_parse()
 * return at once (the bytes it consumed so far are counted; parsing can be
 * resumed with the rest later). A NULL callback is skipped. */
typedef struct {
  /* The first frame of a text or binary message. rsv1 is the
   * permessage-deflate "compressed" bit (only when allow_rsv1 is set). */
  int (*on_message_begin)(nx_ws_parser_t *p, int opcode, int rsv1);
  /* A data frame (first or continuation) of len payload bytes begins: the
   * size is known and within the limit before any payload byte arrives. */
  int (*on_frame_begin)(nx_ws_parser_t *p, uint64_t len);
  /* Unmasked payload bytes of the current data message. For an uncompressed
   * text message the bytes are already known to be a valid UTF-8 prefix. */
  int (*on_data)(nx_ws_parser_t *p, const uint8_t *data, size_t len);
  /* The last frame of the data message has been delivered. */
  int (*on_message_end)(nx_ws_parser_t *p);
  /* A whole control frame (close, ping, pong), payload unmasked. A close
   * payload has already been checked (code valid on the wire, reason
   * UTF-8). After a close frame the parser ignores all further input. */
  int (*on_control)(nx_ws_parser_t *p, int opcode, const uint8_t *payload, size_t len);
  /* Optional, the fast path: a whole text or binary message in one frame
   * (FIN set, no message in progress), all of it in the input and within
   * the size limit, in one call instead of on_message_begin, on_frame_begin,
   * on_data and on_message_end. data follows on_data's rules (unmasked, or
   * masked with data_masked set; an uncompressed text is valid UTF-8). A
   * frame that breaks a rule takes the general path, which reports it. */
  int (*on_message)(nx_ws_parser_t *p, int opcode, int rsv1, const uint8_t *data, size_t len);
} nx_ws_callbacks_t;

struct nx_ws_parser_s {
  /* Settings: set before the first nx_ws_parse(), may change between calls. */
  const nx_ws_callbacks_t *cb;
  void *data;                /* owner's pointer, untouched by the parser */
  uint64_t max_message_size; /* 0 means no limit */
  uint8_t role;              /* NX_WS_ROLE_* */
  uint8_t allow_rsv1;        /* permessage-deflate was negotiated */
  /* Data the parser does not read itself (binary messages, compressed ones)
   * reaches on_data still masked, with data_masked set: the owner unmasks
   * it while copying it (nx_ws_unmask_copy with mask and data_phase), which
   * saves a pass over the payload. Text is always unmasked (its UTF-8 is
   * checked as it comes). */
  uint8_t defer_unmask;

  /* Result: non-zero once the input violated the protocol; the parser then
   * stops and nx_ws_parse() consumes nothing more. */
  uint16_t error_code;      /* close code to send: 1002, 1007, 1009 (1011: no memory) */
  const char *error_reason; /* static text, fit for a close reason */

  /* Private state. */
  uint8_t state;
  uint8_t hdr_len, hdr_need;
  uint8_t hdr[14];
  uint8_t opcode, fin, masked;
  uint8_t msg_opcode; /* opcode of the data message in progress, 0 if none */
  uint8_t msg_rsv1;
  uint8_t mask[4];
  uint8_t mask_off; /* phase in the mask of the next payload byte (0-3) */
  uint8_t ctrl_len;
  uint8_t pend_frame_begin; /* on_frame_begin owed after a stop in on_message_begin */
  uint8_t data_masked;      /* during on_data: the bytes are still masked (defer_unmask) */
  uint8_t data_phase;       /* during on_data: the key phase of their first byte */
  nx_utf8_t utf8;
  uint64_t remaining; /* payload bytes of the current frame still to come */
  uint64_t msg_size;  /* payload bytes of the current message so far */
  uint64_t frame_len;
  const uint8_t *ctrl_at; /* the control payload: in the input, or in ctrl */
  uint8_t *ctrl;          /* a control payload split across inputs is gathered
                           * here: 125 bytes, allocated on first need */
};

/* Zeroes the parser state; keeps cb, data and the settings (so the struct
 * must be zeroed, or its settings set, before the first init). A parser
 * that was used is freed (nx_ws_parser_free) before it is initialised
 * again or dropped. */
void nx_ws_parser_init(nx_ws_parser_t *p, const nx_ws_callbacks_t *cb, void *data, int role);

/* Frees what the parser allocated (a buffer for split control frames); the
 * parser must be initialised again before it is used again. */
void nx_ws_parser_free(nx_ws_parser_t *p);

/* Parses up to len bytes. The buffer is modified: payloads are unmasked in
 * place. Returns the number of bytes consumed: all of them unless a callback
 * asked to stop, a protocol error occurred (p->error_code is then set) or
 * the close frame was seen (later input is consumed and ignored). */
size_t nx_ws_parse(nx_ws_parser_t *p, uint8_t *buf, size_t len);

/* True once a close frame has been parsed. */
int nx_ws_parser_closed(const nx_ws_parser_t *p);
/* Whether the parser itself failed (error_code is then its finding). */
int nx_ws_parser_failed(const nx_ws_parser_t *p);

/* Writes a frame header to out (at most 14 bytes) and returns its length.
 * mask_key NULL writes an unmasked (server) frame. */
size_t nx_ws_frame_header(uint8_t out[14], int fin, int rsv1, int opcode, uint64_t len,
                          const uint8_t *mask_key);

/* XORs len bytes with the 4-byte key, starting at key phase offset % 4. */
void nx_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], uint64_t offset);

/* The same from src into dst (which may be src itself, not otherwise overlap). */
void nx_ws_unmask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                       uint64_t offset);

/* 1 if code may appear in a close frame on the wire (RFC 6455 §7.4):
 * 1000-1003, 1007-1014, 3000-4999. */
int nx_ws_close_code_valid(unsigned code);

/* Builds a close payload (code + reason, reason cut to 123 bytes at a UTF-8
 * boundary) into out; code 0 means an empty payload. Returns its length. */
size_t nx_ws_close_payload(uint8_t out[125], unsigned code, const char *reason, size_t reason_len);

/* The limit on the compressed bytes of a message whose inflated size may be
 * max (the parser applies it to messages with RSV1): deflate can make
 * incompressible data larger (by a few bytes per stored block with zlib, by
 * up to an eighth with fixed Huffman codes), and the inflated size is
 * checked against max itself while inflating. */
uint64_t nx_ws_compressed_limit(uint64_t max);

#endif
