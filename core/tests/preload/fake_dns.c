/* A getaddrinfo for the specs, loaded with LD_PRELOAD: the name
 * "two.nexlua.test" resolves to 127.0.0.2 and then 127.0.0.1, the way
 * "localhost" resolves to ::1 and then 127.0.0.1 on a dual-stack host;
 * every other name goes to the C library. A server on 127.0.0.1 alone is
 * reached only by a client that tries the second address. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <string.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res) {
  gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
  struct addrinfo *first = NULL, *second = NULL, *ai;
  int e;
  if (!real)
    return EAI_SYSTEM;
  if (!node || strcmp(node, "two.nexlua.test") != 0)
    return real(node, service, hints, res);
  if ((e = real("127.0.0.2", service, hints, &first)) != 0)
    return e;
  if ((e = real("127.0.0.1", service, hints, &second)) != 0) {
    freeaddrinfo(first);
    return e;
  }
  for (ai = first; ai->ai_next; ai = ai->ai_next)
    ;
  ai->ai_next = second; /* glibc frees each entry of the list on its own */
  *res = first;
  return 0;
}
