/* A small chained hash of peer address -> open connections. */
#include "ipcount.h"

#include <stdlib.h>
#include <string.h>

#define BUCKETS 4096

typedef struct entry_s {
  struct entry_s *next;
  uint8_t ip[16];
  uint32_t count;
} entry_t;

struct nx_ipcount_s {
  entry_t *b[BUCKETS];
};

nx_ipcount_t *nx_ipcount_new(void) { return (nx_ipcount_t *)calloc(1, sizeof(nx_ipcount_t)); }

void nx_ipcount_free(nx_ipcount_t *t) {
  int i;
  if (!t)
    return;
  for (i = 0; i < BUCKETS; i++) {
    entry_t *e = t->b[i], *n;
    for (; e; e = n) {
      n = e->next;
      free(e);
    }
  }
  free(t);
}

static unsigned hash(const uint8_t ip[16]) {
  uint32_t h = 2166136261u;
  int i;
  for (i = 0; i < 16; i++)
    h = (h ^ ip[i]) * 16777619u;
  return h % BUCKETS;
}

uint32_t nx_ipcount_add(nx_ipcount_t *t, const uint8_t ip[16]) {
  entry_t **head = &t->b[hash(ip)], *e;
  for (e = *head; e; e = e->next)
    if (memcmp(e->ip, ip, 16) == 0)
      return ++e->count;
  e = (entry_t *)malloc(sizeof(*e));
  if (!e)
    return 0;
  memcpy(e->ip, ip, 16);
  e->count = 1;
  e->next = *head;
  *head = e;
  return 1;
}

void nx_ipcount_remove(nx_ipcount_t *t, const uint8_t ip[16]) {
  entry_t **pp = &t->b[hash(ip)], *e;
  for (; (e = *pp) != NULL; pp = &e->next) {
    if (memcmp(e->ip, ip, 16) == 0) {
      if (--e->count == 0) {
        *pp = e->next;
        free(e);
      }
      return;
    }
  }
}
