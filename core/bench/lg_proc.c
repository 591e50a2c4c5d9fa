/* Server CPU time and memory from /proc. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lg.h"

static int read_file(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n;
  if (!f)
    return -1;
  n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (int)n;
}

int lg_proc_sample(int pid, lg_proc_t *out) {
  char path[64], buf[4096], *p;
  unsigned long long utime = 0, stime = 0;
  long tck = sysconf(_SC_CLK_TCK);
  DIR *d;
  struct dirent *e;
  int i;

  memset(out, 0, sizeof(*out));
  if (pid <= 0)
    return -1;

  /* /proc/PID/stat: fields 14 and 15 (utime, stime) follow the command name,
   * which is in parentheses and may contain spaces: start after the last ')'. */
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  if (read_file(path, buf, sizeof(buf)) <= 0)
    return -1;
  p = strrchr(buf, ')');
  if (!p)
    return -1;
  p += 2; /* field 3 (state) */
  for (i = 3; i < 14 && p; i++) {
    p = strchr(p, ' ');
    if (p)
      p++;
  }
  if (!p || sscanf(p, "%llu %llu", &utime, &stime) != 2)
    return -1;
  out->cpu_s = (double)(utime + stime) / (double)(tck > 0 ? tck : 100);

  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  if (read_file(path, buf, sizeof(buf)) > 0) {
    p = strstr(buf, "VmRSS:");
    if (p)
      out->rss_kb = strtol(p + 6, NULL, 10);
    p = strstr(buf, "Threads:");
    if (p)
      out->threads = strtol(p + 8, NULL, 10);
  }

  /* Per-thread run time in nanoseconds: finer than clock ticks. */
  snprintf(path, sizeof(path), "/proc/%d/task", pid);
  d = opendir(path);
  if (d) {
    unsigned long long total = 0;
    while ((e = readdir(d)) != NULL) {
      char tpath[300];
      unsigned long long run = 0;
      if (e->d_name[0] == '.')
        continue;
      snprintf(tpath, sizeof(tpath), "/proc/%d/task/%s/schedstat", pid, e->d_name);
      if (read_file(tpath, buf, sizeof(buf)) > 0 && sscanf(buf, "%llu", &run) == 1)
        total += run;
    }
    closedir(d);
    out->sched_s = (double)total / 1e9;
  }
  if (read_file("/proc/net/sockstat", buf, sizeof(buf)) > 0 &&
      (p = strstr(buf, "TCP: inuse ")) != NULL) {
    char *m = strstr(p, " mem ");
    out->tcp_inuse = strtol(p + 11, NULL, 10);
    if (m)
      out->tcp_mem_pages = strtol(m + 5, NULL, 10);
  }
  out->ok = 1;
  return 0;
}
