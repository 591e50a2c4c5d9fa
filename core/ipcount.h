/* Connections per peer address, for the per-IP cap. */
#ifndef NX_IPCOUNT_H
#define NX_IPCOUNT_H

#include <stdint.h>

typedef struct nx_ipcount_s nx_ipcount_t;

nx_ipcount_t *nx_ipcount_new(void);
void nx_ipcount_free(nx_ipcount_t *t);
/* Adds one connection from ip (16 bytes; IPv4 mapped); returns the new count, 0 if out of memory.
 */
uint32_t nx_ipcount_add(nx_ipcount_t *t, const uint8_t ip[16]);
void nx_ipcount_remove(nx_ipcount_t *t, const uint8_t ip[16]);

#endif
