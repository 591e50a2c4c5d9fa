/* Tests of core/stream.c on a real libuv loop and a socket pair: a queue
 * longer than a uv_buf_t can say (32 bits) leaves whole, in buffers of
 * NX_STREAM_CHUNK. The queue's pages are never written (they read as
 * zeros, and cost no memory); the reader counts the bytes. A pipe, read
 * with splice: the kernel copies 4 GiB once, not twice. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <uv.h>

#include "stream.h"
#include "test.h"

typedef struct {
  int fd;
  uint64_t got;
} reader_t;

/* Moves what comes to /dev/null inside the kernel (no copy out). */
static void *read_all(void *arg) {
  reader_t *r = (reader_t *)arg;
  int null = open("/dev/null", O_WRONLY);
  ssize_t n;
  while ((n = splice(r->fd, NULL, null, NULL, 1 << 20, SPLICE_F_MOVE)) > 0)
    r->got += (uint64_t)n;
  close(null);
  return NULL;
}

static int done_status = 1;

static void on_written(uv_write_t *req, int status) {
  done_status = status;
  nx_stream_done(req);
}

TEST(stream_write_over_4_gib_leaves_whole) {
  const size_t total = (4ull << 30) + (1u << 20) + 7; /* 4 GiB + 1 MiB + 7 */
  uv_loop_t loop;
  uv_pipe_t out;
  uv_write_t *req = NULL;
  nx_buf_t src = {0};
  reader_t r = {0};
  pthread_t th;
  int sv[2], w;
  if (!CHECK(pipe(sv) == 0)) /* sv[0] read, sv[1] write */
    return;
  fcntl(sv[1], F_SETPIPE_SZ, 1 << 20); /* fewer, larger writes (where allowed) */
  src.data = (uint8_t *)malloc(total);
  if (!CHECK(src.data != NULL)) {
    close(sv[0]);
    close(sv[1]);
    return;
  }
  src.cap = src.len = total;
  r.fd = sv[0];
  uv_loop_init(&loop);
  uv_pipe_init(&loop, &out, 0);
  CHECK(uv_pipe_open(&out, sv[1]) == 0);
  CHECK(pthread_create(&th, NULL, read_all, &r) == 0);
  w = nx_stream_write((uv_stream_t *)&out, &src, NULL, 0, &req, on_written, NULL);
  CHECK(w == 1 || w == 0);
  if (w == 0)
    done_status = 0;
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ(done_status, 0);
  uv_close((uv_handle_t *)&out, NULL); /* closes sv[1]: the reader sees the end */
  uv_run(&loop, UV_RUN_DEFAULT);
  pthread_join(th, NULL);
  close(sv[0]);
  CHECK_EQ(r.got, total);
  nx_buf_free(&src);
  uv_loop_close(&loop);
}
