/* Topics across the worker processes of --workers. Each worker has one end
 * of a socketpair whose other end the master holds. A worker publishes to
 * its own subscribers and sends the message to the master as a record; the
 * master passes every record it reads from one worker to all the others,
 * which publish it to their subscribers. Nothing crosses a machine: that
 * is a pub/sub backend's job (DESIGN.md).
 *
 * A record: topic length and data length (u32, little-endian), the opcode
 * (u8: text or binary), the topic, the data. */
#ifndef NX_RELAY_H
#define NX_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct nx_rt_s nx_rt_t;
typedef struct nx_relay_s nx_relay_t;

#define NX_RELAY_HEADER 9
/* A worker or the master queues at most this much for a peer that does
 * not read; records past it are dropped with a warning. */
#define NX_RELAY_MAX_QUEUED (64u * 1024 * 1024)

/* Appends one record to out; -1 when out of memory. */
int nx_relay_record(nx_buf_t *out, const char *topic, size_t tlen, int opcode, const void *data,
                    size_t dlen);
/* The next complete record in b (from b->off): 1 with its parts (pointing
 * into b) and *size = its bytes; 0 when incomplete; -1 when malformed. */
int nx_relay_parse(const nx_buf_t *b, const char **topic, size_t *tlen, int *opcode,
                   const uint8_t **data, size_t *dlen, size_t *size);

/* Worker side, on the loop: reads records into local publishes. */
int nx_relay_start(nx_rt_t *rt, int fd);
/* Queues a published message for the other workers (sent at the flush). */
void nx_relay_send(nx_rt_t *rt, const char *topic, size_t tlen, int opcode, const void *data,
                   size_t dlen);
void nx_relay_flush(nx_rt_t *rt);
void nx_relay_close(nx_rt_t *rt);

#endif
