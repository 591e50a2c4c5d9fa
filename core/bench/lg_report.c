/* nx_loadgen: the result, as a summary or as JSON. */
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>

#include "lg_run.h"

/* ---- Report ------------------------------------------------------------- */

static double tv_s(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static void print_hist(FILE *f, const char *name, const lg_hist_t *h) {
  fprintf(f,
          "  \"%s\": {\"n\": %" PRIu64
          ", \"p50\": %.1f, \"p90\": %.1f, \"p99\": %.1f, \"p999\": %.1f, "
          "\"max\": %.1f, \"mean\": %.1f},\n",
          name, h->n, lg_hist_quantile(h, 0.50) / 1e3, lg_hist_quantile(h, 0.90) / 1e3,
          lg_hist_quantile(h, 0.99) / 1e3, lg_hist_quantile(h, 0.999) / 1e3, (double)h->max / 1e3,
          h->n ? h->sum / (double)h->n / 1e3 : 0.0);
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      fprintf(f, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      fprintf(f, "\\u%04x", *s);
    else
      fputc(*s, f);
  }
  fputc('"', f);
}

void report(void) {
  double dur = lg.t_m1 > lg.t_m0 && lg.t_m0 ? (double)(lg.t_m1 - lg.t_m0) / 1e9 : 0;
  double cpu = lg.s_m1.ok && lg.s_m0.ok ? lg.s_m1.cpu_s - lg.s_m0.cpu_s : 0;
  double sched = lg.s_m1.ok && lg.s_m0.ok ? lg.s_m1.sched_s - lg.s_m0.sched_s : 0;
  double ccpu = lg.t_m1 ? (tv_s(lg.ru1.ru_utime) + tv_s(lg.ru1.ru_stime)) -
                              (tv_s(lg.ru0.ru_utime) + tv_s(lg.ru0.ru_stime))
                        : 0;
  double ops = (double)lg.ops;
  int ok =
      !counts_as_failure() && !lg.aborted && (lg.mode == MODE_IDLE ? lg.connected > 0 : lg.ops > 0);
  struct rusage me;
  FILE *f = stdout;
  getrusage(RUSAGE_SELF, &me);

  if (!lg.json) {
    printf("%s %s:%d%s conns=%d inflight=%d size=%zu%s%s%s\n", MODE_NAMES[lg.mode], lg.host,
           lg.port, lg.path, lg.conns, lg.inflight, lg.size, lg.binary ? " binary" : "",
           lg.random ? " random" : "",
           !lg.deflate    ? ""
           : lg.pmd_conns ? " deflate (negotiated)"
                          : " deflate (declined)");
    printf("  ok=%s ops=%" PRIu64 " in %.2f s = %.0f/s, %.1f MB/s\n", ok ? "yes" : "NO", lg.ops,
           dur, dur > 0 ? ops / dur : 0, dur > 0 ? (double)lg.bytes / dur / 1e6 : 0);
    printf("  latency us: p50 %.1f p90 %.1f p99 %.1f max %.1f\n",
           lg_hist_quantile(&lg.lat, .5) / 1e3, lg_hist_quantile(&lg.lat, .9) / 1e3,
           lg_hist_quantile(&lg.lat, .99) / 1e3, (double)lg.lat.max / 1e3);
    if (lg.server_pid > 0)
      printf("  server: cpu %.3f s (%.2f us/op), rss %ld -> %ld kB", cpu,
             ops > 0 ? cpu * 1e6 / ops : 0, lg.s_base.rss_kb, lg.s_connected.rss_kb);
    if (lg.server_pid > 0 && lg.connected > 0)
      printf(" (%.0f B/conn)",
             (double)(lg.s_connected.rss_kb - lg.s_base.rss_kb) * 1024.0 / lg.connected);
    printf("\n  client: cpu %.3f s (%.0f%% of the window)\n", ccpu, dur > 0 ? 100 * ccpu / dur : 0);
    if (lg.first_error[0])
      printf("  first error: %s\n", lg.first_error);
    return;
  }
  fprintf(f, "{\n  \"mode\": \"%s\",\n  \"url\": \"ws://%s:%d%s\",\n", MODE_NAMES[lg.mode], lg.host,
          lg.port, lg.path);
  if (lg.mode == MODE_BROADCAST)
    fprintf(f, "  \"publish_path\": \"%s\",\n", lg.pub_path);
  fprintf(f,
          "  \"conns\": %d,\n  \"inflight\": %d,\n  \"size\": %zu,\n  \"binary\": %s,\n"
          "  \"random\": %s,\n  \"deflate_offered\": %s,\n  \"deflate_conns\": %ld,\n"
          "  \"compressed_msgs\": %" PRIu64 ",\n"
          "  \"source_addrs\": %d,\n  \"warmup_s\": %.3f,\n  \"duration_s\": %.4f,\n",
          lg.conns, lg.inflight, lg.size, lg.binary ? "true" : "false",
          lg.random ? "true" : "false", lg.deflate ? "true" : "false", lg.pmd_conns,
          lg.compressed_msgs, lg.nsrc ? lg.nsrc : 1, lg.warmup, dur);
  fprintf(f, "  \"connected\": %d,\n  \"connect_failed\": %d,\n  \"connect_s\": %.4f,\n",
          lg.connected, lg.failed,
          lg.t_connected > lg.t_begin ? (double)(lg.t_connected - lg.t_begin) / 1e9 : 0.0);
  fprintf(f, "  \"ops\": %" PRIu64 ",\n  \"ops_per_s\": %.1f,\n  \"bytes_per_s\": %.1f,\n", lg.ops,
          dur > 0 ? ops / dur : 0, dur > 0 ? (double)lg.bytes / dur : 0);
  if (lg.mode == MODE_BROADCAST)
    fprintf(f, "  \"published\": %" PRIu64 ",\n  \"subscribers\": %d,\n", lg.pub_seq,
            lg.nsubs_measured);
  if (lg.mode == MODE_CONNECT) {
    fprintf(f, "  \"handshakes\": %" PRIu64 ",\n", lg.handshakes);
    print_hist(f, "handshake_latency_us", &lg.hs_lat);
  }
  print_hist(f, "latency_us", &lg.lat);
  fprintf(f, "  \"server\": {\"pid\": %d", lg.server_pid);
  if (lg.server_pid > 0 && lg.s_m0.ok && lg.s_m1.ok) {
    fprintf(f,
            ", \"cpu_s\": %.4f, \"sched_s\": %.4f, \"util\": %.4f, \"cpu_us_per_op\": %.4f, "
            "\"sched_us_per_op\": %.4f",
            cpu, sched, dur > 0 ? sched / dur : 0, ops > 0 ? cpu * 1e6 / ops : 0,
            ops > 0 ? sched * 1e6 / ops : 0);
  }
  if (lg.server_pid > 0) {
    fprintf(
        f,
        ", \"rss_kb_base\": %ld, \"rss_kb_connected\": %ld, \"rss_kb_end\": %ld, \"threads\": %ld",
        lg.s_base.rss_kb, lg.s_connected.rss_kb, lg.s_m1.rss_kb, lg.s_m1.threads);
    if (lg.connected > 0 && lg.s_connected.ok) {
      fprintf(f,
              ", \"rss_bytes_per_conn\": %.1f, \"cpu_us_per_accept\": %.2f, "
              "\"sched_us_per_accept\": %.2f",
              (double)(lg.s_connected.rss_kb - lg.s_base.rss_kb) * 1024.0 / lg.connected,
              (lg.s_connected.cpu_s - lg.s_base.cpu_s) * 1e6 / lg.connected,
              (lg.s_connected.sched_s - lg.s_base.sched_s) * 1e6 / lg.connected);
    }
  }
  fprintf(f, "},\n");
  fprintf(
      f,
      "  \"kernel_tcp\": {\"inuse_base\": %ld, \"inuse_connected\": %ld, \"mem_pages_base\": %ld, "
      "\"mem_pages_connected\": %ld},\n",
      lg.s_base.tcp_inuse, lg.s_connected.tcp_inuse, lg.s_base.tcp_mem_pages,
      lg.s_connected.tcp_mem_pages);
  fprintf(f, "  \"client\": {\"cpu_s\": %.4f, \"util\": %.4f, \"rss_kb\": %ld},\n", ccpu,
          dur > 0 ? ccpu / dur : 0, me.ru_maxrss);
  fprintf(f,
          "  \"errors\": {\"connect\": %ld, \"handshake\": %ld, \"timeout\": %ld, \"verify\": %ld, "
          "\"protocol\": %ld, \"unexpected_close\": %ld, \"close_timeout\": %ld},\n",
          lg.err_connect, lg.err_handshake, lg.err_timeout, lg.err_verify, lg.err_protocol,
          lg.err_closed, lg.close_timeouts);
  fprintf(f, "  \"first_error\": ");
  json_str(f, lg.first_error);
  fprintf(f, ",\n  \"ok\": %s\n}\n", ok ? "true" : "false");
}
