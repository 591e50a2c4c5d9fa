/* Processes for --workers: the master forks the workers and waits for what
 * happens to them, in plain POSIX calls (the master never runs a libuv
 * loop; each worker runs its own).
 *
 *   supervise([relay]) in the master, once, before the first fork: the four
 *                      signals it handles are blocked outside wait_event()
 *                      and a pipe is made for the workers' "ready" lines;
 *                      relay false: no topic relay (--redis shares topics)
 *   fork(id)           pid in the master; 0 in worker id, whose loop is
 *                      re-created (uv_loop_fork) and whose log lines say [wID]
 *   worker_ready(line) in a worker: one line to the master, once
 *   wait_event([s])    in the master: "signal", NAME | "exit", pid, status,
 *                      signal name | "ready", line | nil after s seconds
 *   kill(pid, NAME)    true | nil, message
 *   pid()              this process's id
 *   relay_start()      in a worker: topics published here reach the other
 *                      workers and theirs reach this one (relay.h); the
 *                      master passes the records on inside wait_event() */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "lauxlib.h"
#include "log.h"
#include "nx.h"
#include "relay.h"

static const struct {
  const char *name;
  int sig;
} SIGNALS[] = {{"SIGINT", SIGINT},   {"SIGTERM", SIGTERM},
               {"SIGHUP", SIGHUP},   {"SIGKILL", SIGKILL},
               {"SIGQUIT", SIGQUIT}, {"SIGSEGV", SIGSEGV},
               {"SIGABRT", SIGABRT}, {"SIGBUS", SIGBUS},
               {"SIGILL", SIGILL},   {"SIGFPE", SIGFPE},
               {"SIGPIPE", SIGPIPE}, {"SIGUSR1", SIGUSR1},
               {"SIGUSR2", SIGUSR2}, {NULL, 0}};

static int ready_fd[2] = {-1, -1}; /* the workers write, the master reads */
static char ready_buf[4096];
static size_t ready_len;
static pid_t master_pid;
static volatile sig_atomic_t got_int, got_term, got_hup;

/* The master's ends of the workers' relay socketpairs. */
#define MAX_PEERS 1024
typedef struct {
  pid_t pid;
  int id; /* the worker's number, as the log names it ([wID]) */
  int fd; /* -1 once the worker closed its end */
  nx_buf_t in, out;
  int dropping; /* a warning about records dropped for it was logged */
} peer_t;
static peer_t peers[MAX_PEERS];
static int npeers;
static int worker_relay_fd = -1; /* in a worker: its end */
static int relay_on = 1;         /* supervise(false): workers get no relay */

static void peer_close(peer_t *p) {
  if (p->fd >= 0)
    close(p->fd);
  p->fd = -1;
  nx_buf_free(&p->in);
  nx_buf_free(&p->out);
}

static void relay_read(int i, int max_reads);

/* A worker was reaped: what it published before it ended still goes to the
 * others (an on_shutdown hook may publish a farewell). */
static void peer_remove(pid_t pid) {
  int i;
  for (i = 0; i < npeers; i++) {
    if (peers[i].pid == pid) {
      relay_read(i, 0);
      peer_close(&peers[i]);
      peers[i] = peers[--npeers];
      memset(&peers[npeers], 0, sizeof(peers[npeers]));
      return;
    }
  }
}

/* Passes a record from worker `from` to every other worker. */
static void relay_record(int from, const uint8_t *rec, size_t size) {
  int i;
  for (i = 0; i < npeers; i++) {
    peer_t *p = &peers[i];
    if (i == from || p->fd < 0)
      continue;
    if (nx_buf_size(&p->out) + size > NX_RELAY_MAX_QUEUED) {
      if (!p->dropping)
        nx_log(NX_LOG_WARN,
               "topic relay: worker %d (pid %d) does not keep up; dropping messages for it", p->id,
               (int)p->pid);
      p->dropping = 1;
      continue;
    }
    p->dropping = 0;
    nx_buf_append(&p->out, rec, size);
  }
}

/* Reads worker i's records (at most max_reads reads; 0: until the socket
 * is empty) and queues each for the other workers. */
static void relay_read(int i, int max_reads) {
  static uint8_t chunk[65536];
  peer_t *p = &peers[i];
  int reads = 0;
  while (p->fd >= 0 && (max_reads == 0 || reads < max_reads)) {
    const char *topic;
    const uint8_t *data;
    size_t tlen, dlen, size;
    int opcode, k;
    ssize_t r = read(p->fd, chunk, sizeof(chunk));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (r <= 0) {
      peer_close(p); /* the worker ended; its exit is reaped separately */
      break;
    }
    reads++;
    if (nx_buf_append(&p->in, chunk, (size_t)r)) {
      peer_close(p);
      break;
    }
    while ((k = nx_relay_parse(&p->in, &topic, &tlen, &opcode, &data, &dlen, &size)) == 1) {
      relay_record(i, p->in.data + p->in.off, size);
      nx_buf_consume(&p->in, size);
    }
    if (k < 0) {
      nx_log(NX_LOG_ERROR, "topic relay: a malformed record from worker %d (pid %d)", p->id,
             (int)p->pid);
      peer_close(p);
    }
  }
  if (p->fd >= 0)
    nx_buf_shrink_idle(&p->in); /* one large record must not pin its buffer */
}

/* Moves what can move without blocking: a bounded share of every worker's
 * records (so that one busy worker cannot starve the others, the signals
 * or the reaping), queued for the others, then what the sockets take. */
static void relay_pump(void) {
  int i;
  for (i = 0; i < npeers; i++)
    relay_read(i, 4);
  for (i = 0; i < npeers; i++) {
    peer_t *p = &peers[i];
    while (p->fd >= 0 && nx_buf_size(&p->out)) {
      ssize_t w = write(p->fd, p->out.data + p->out.off, nx_buf_size(&p->out));
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (w < 0) {
        peer_close(p);
        break;
      }
      nx_buf_consume(&p->out, (size_t)w);
    }
    if (p->fd >= 0)
      nx_buf_shrink_idle(&p->out);
  }
}

static void on_master_signal(int sig) {
  if ((sig == SIGINT || sig == SIGTERM) && nx_same_stop())
    return; /* one stop request, delivered twice (lua_signals.c) */
  if (sig == SIGINT)
    got_int = 1;
  else if (sig == SIGTERM)
    got_term = 1;
  else if (sig == SIGHUP)
    got_hup = 1;
  /* SIGCHLD only interrupts ppoll(); wait_event() reaps. */
}

static void push_signame(lua_State *L, int sig) {
  int i;
  for (i = 0; SIGNALS[i].name; i++)
    if (SIGNALS[i].sig == sig) {
      lua_pushstring(L, SIGNALS[i].name);
      return;
    }
  lua_pushfstring(L, "signal %d", sig);
}

static void handled_set(sigset_t *set, int with_chld) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
  if (with_chld)
    sigaddset(set, SIGCHLD);
}

void nx__unblock_signals(void) {
  sigset_t set;
  handled_set(&set, 0);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static int l_supervise(lua_State *L) {
  struct sigaction sa;
  sigset_t set;
  int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD}, i;
  if (ready_fd[0] >= 0)
    return luaL_error(L, "supervise() called twice");
  if (pipe(ready_fd) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot create a pipe: %s", strerror(errno));
    return 2;
  }
  fcntl(ready_fd[0], F_SETFL, O_NONBLOCK);
  fcntl(ready_fd[0], F_SETFD, FD_CLOEXEC);
  fcntl(ready_fd[1], F_SETFD, FD_CLOEXEC);
  master_pid = getpid();
  relay_on = lua_isnoneornil(L, 1) || lua_toboolean(L, 1);
  /* Blocked except inside ppoll(): a signal is seen by wait_event(), never
   * lost between a check and the wait. */
  handled_set(&set, 1);
  sigprocmask(SIG_BLOCK, &set, NULL);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_master_signal;
  handled_set(&sa.sa_mask, 1); /* no nesting: see nx_same_stop */
  for (i = 0; i < 4; i++) {
    sa.sa_flags = sigs[i] == SIGCHLD ? SA_NOCLDSTOP : 0;
    sigaction(sigs[i], &sa, NULL);
  }
  if (nx_take_early_hup())
    got_hup = 1; /* (one before these handlers) */
  lua_pushboolean(L, 1);
  return 1;
}

/* fork(id): see the top of the file. In the worker, the master's signal
 * handlers go back to the defaults; SIGINT, SIGTERM and SIGHUP stay blocked
 * until the worker's own handlers exist (core.on_signal unblocks them). */
static int l_fork(lua_State *L) {
  int id = (int)luaL_checkinteger(L, 1);
  nx_rt_t *rt = nx_rt_get(L);
  struct sigaction sa;
  sigset_t set;
  int sigs[4] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD}, i, r, sv[2];
  pid_t pid;

  if (ready_fd[0] < 0)
    return luaL_error(L, "fork() needs supervise() first");
  if (npeers == MAX_PEERS)
    return luaL_error(L, "fork(): at most %d workers", MAX_PEERS);
  sv[0] = sv[1] = -1;
  if (relay_on && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot create a socketpair: %s", strerror(errno));
    return 2;
  }
  fflush(NULL); /* or buffered output would be written twice */
  pid = fork();
  if (pid < 0) {
    if (sv[0] >= 0) {
      close(sv[0]);
      close(sv[1]);
    }
    lua_pushnil(L);
    lua_pushfstring(L, "fork failed: %s", strerror(errno));
    return 2;
  }
  if (pid > 0) {
    if (sv[0] >= 0) {
      close(sv[1]);
      fcntl(sv[0], F_SETFL, O_NONBLOCK);
      memset(&peers[npeers], 0, sizeof(peers[npeers]));
      peers[npeers].pid = pid;
      peers[npeers].id = id;
      peers[npeers].fd = sv[0];
      npeers++;
    }
    lua_pushinteger(L, pid);
    return 1;
  }
  if (sv[0] >= 0)
    close(sv[0]);
  for (i = 0; i < npeers; i++) /* the master's ends for the other workers */
    peer_close(&peers[i]);
  npeers = 0;
  worker_relay_fd = sv[1];
  close(ready_fd[0]);
  ready_fd[0] = -1;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (i = 0; i < 4; i++)
    sigaction(sigs[i], &sa, NULL);
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  /* Its own process group: a Ctrl-C at the terminal reaches the master
   * only, which forwards it once (twice would mean "exit now"). If the
   * master dies without forwarding anything, the worker gets SIGTERM. */
  setpgid(0, 0);
#ifdef __linux__
  prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
  if (getppid() != master_pid)
    _exit(1); /* the master died before prctl() */
  snprintf(nx_log_tag, sizeof(nx_log_tag), "[w%d] ", id);
  /* The loop was created in the master (nexlua.core made it): its epoll
   * descriptor is shared with the master until it is re-created here. */
  r = uv_loop_fork(rt->loop);
  if (r) {
    nx_log(NX_LOG_ERROR, "cannot re-create the event loop after fork: %s", uv_strerror(r));
    _exit(1);
  }
  lua_pushinteger(L, 0);
  return 1;
}

static int l_worker_ready(lua_State *L) {
  size_t len;
  const char *line = luaL_checklstring(L, 1, &len);
  char buf[512];
  ssize_t w;
  if (ready_fd[1] < 0)
    return 0;
  if (len > sizeof(buf) - 2 || memchr(line, '\n', len))
    return luaL_error(L, "worker_ready: one line of at most %d bytes", (int)sizeof(buf) - 2);
  memcpy(buf, line, len);
  buf[len++] = '\n';
  /* Under PIPE_BUF: one atomic write, never mixed with another worker's. */
  do
    w = write(ready_fd[1], buf, len);
  while (w < 0 && errno == EINTR);
  close(ready_fd[1]);
  ready_fd[1] = -1;
  lua_pushboolean(L, w == (ssize_t)len);
  return 1;
}

/* Pushes the next complete line of the ready pipe; 0 when there is none. */
static int pop_line(lua_State *L) {
  char *nl = memchr(ready_buf, '\n', ready_len);
  size_t n;
  if (!nl)
    return 0;
  n = (size_t)(nl - ready_buf);
  lua_pushliteral(L, "ready");
  lua_pushlstring(L, ready_buf, n);
  memmove(ready_buf, nl + 1, ready_len - n - 1);
  ready_len -= n + 1;
  return 2;
}

static double now_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int l_wait_event(lua_State *L) {
  double timeout = luaL_optnumber(L, 1, -1), deadline = 0;
  struct timespec ts, *tsp = NULL;
  static struct pollfd pfd[MAX_PEERS + 1];
  sigset_t none;
  int status, n, i;
  pid_t pid;

  if (ready_fd[0] < 0)
    return luaL_error(L, "wait_event() needs supervise() first");
  if (timeout >= 0)
    deadline = now_seconds() + timeout; /* relay traffic must not extend it */
  sigemptyset(&none);
  for (;;) {
    const char *sig = got_term ? "SIGTERM" : got_int ? "SIGINT" : got_hup ? "SIGHUP" : NULL;
    if (sig) {
      if (got_term)
        got_term = 0;
      else if (got_int)
        got_int = 0;
      else
        got_hup = 0;
      lua_pushliteral(L, "signal");
      lua_pushstring(L, sig);
      return 2;
    }
    pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      peer_remove(pid);
      lua_pushliteral(L, "exit");
      lua_pushinteger(L, pid);
      if (WIFEXITED(status)) {
        lua_pushinteger(L, WEXITSTATUS(status));
        lua_pushnil(L);
      } else {
        lua_pushnil(L);
        push_signame(L, WTERMSIG(status));
      }
      return 4;
    }
    if ((n = pop_line(L)) > 0)
      return n;
    if (ready_len < sizeof(ready_buf)) {
      ssize_t r = read(ready_fd[0], ready_buf + ready_len, sizeof(ready_buf) - ready_len);
      if (r > 0) {
        ready_len += (size_t)r;
        continue;
      }
    } else {
      ready_len = 0; /* a line longer than the buffer: not from a worker */
    }
    relay_pump();
    pfd[0].fd = ready_fd[0];
    pfd[0].events = POLLIN;
    pfd[0].revents = 0;
    for (i = 0; i < npeers; i++) {
      pfd[i + 1].fd = peers[i].fd; /* -1: ignored by poll */
      pfd[i + 1].events = (short)(POLLIN | (nx_buf_size(&peers[i].out) ? POLLOUT : 0));
      pfd[i + 1].revents = 0;
    }
    if (timeout >= 0) {
      double left = deadline - now_seconds();
      if (left <= 0)
        return 0;
      ts.tv_sec = (time_t)left;
      ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
      tsp = &ts;
    }
    /* The handled signals are unblocked only while ppoll() waits. */
    n = ppoll(pfd, (nfds_t)npeers + 1, tsp, &none);
    if (n == 0)
      return 0;
  }
}

static int l_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  const char *name = luaL_checkstring(L, 2);
  int i;
  if (pid <= 0)
    return luaL_error(L, "kill: pid must be positive");
  for (i = 0; SIGNALS[i].name; i++)
    if (strcmp(SIGNALS[i].name, name) == 0 || strcmp(SIGNALS[i].name + 3, name) == 0)
      break;
  if (!SIGNALS[i].name)
    return luaL_error(L, "kill: unknown signal '%s'", name);
  if (kill(pid, SIGNALS[i].sig) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "kill %d: %s", (int)pid, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_relay_start(lua_State *L) {
  int r;
  if (worker_relay_fd < 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  r = nx_relay_start(nx_rt_get(L), worker_relay_fd);
  if (r) {
    lua_pushnil(L);
    lua_pushfstring(L, "cannot relay topics to the other workers: %s", uv_strerror(r));
    return 2;
  }
  worker_relay_fd = -1; /* the relay's now */
  lua_pushboolean(L, 1);
  return 1;
}

static int l_pid(lua_State *L) {
  lua_pushinteger(L, getpid());
  return 1;
}

/* Adds the functions to the nexlua.core table on top of the stack. */
void nx_lua_process_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"supervise", l_supervise},     {"fork", l_fork}, {"worker_ready", l_worker_ready},
      {"wait_event", l_wait_event},   {"kill", l_kill}, {"pid", l_pid},
      {"relay_start", l_relay_start}, {NULL, NULL}};
  luaL_register(L, NULL, fns);
}
