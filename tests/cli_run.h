/* cli_run.h — running the sketchgn binary from a Criterion suite: spawn it with stdout and stderr
 * in anonymous temp files, wait, and read both back. Shared by the suites that drive the CLI
 * (each is its own program, so everything here is static inline). Needs _GNU_SOURCE. */
#ifndef SGN_TESTS_CLI_RUN_H
#define SGN_TESTS_CLI_RUN_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A hung binary dies of SIGALRM after this many seconds (the alarm survives exec). */
#define CLI_ALARM_S 120

typedef struct run_result {
  int exited;    /* 1: it called exit; 0: a signal ended it */
  int status;    /* the exit status, or 128 + the signal number (as a shell reports it) */
  double wall_s; /* from spawn to the end of the wait */
  char *out, *err;
} run_result;

typedef struct cli_child {
  pid_t pid;
  int out_fd, err_fd;
  double t0;
} cli_child;

/* The binary under test: $SKETCHGN_BIN (make test sets it), else build/sketchgn. */
static inline const char *cli_bin(void) {
  const char *bin = getenv("SKETCHGN_BIN");
  return bin && bin[0] ? bin : "build/sketchgn";
}

static inline double cli_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Everything in fd from its start, NUL-terminated; *len (may be NULL) gets the byte count. */
static inline char *slurp_fd(int fd, size_t *len) {
  size_t used = 0, cap = 4096;
  char *buf = malloc(cap);
  cr_assert_not_null(buf);
  lseek(fd, 0, SEEK_SET);
  for (;;) {
    if (used + 1 >= cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      cr_assert_not_null(buf);
    }
    ssize_t got = read(fd, buf + used, cap - used - 1);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    used += (size_t)got;
  }
  buf[used] = '\0';
  if (len) *len = used;
  return buf;
}

/* The whole file, NUL-terminated (*len, may be NULL, without the NUL), or NULL if it cannot be
 * opened. */
static inline char *slurp_path(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return NULL;
  char *s = slurp_fd(fd, len);
  close(fd);
  return s;
}

/* An anonymous temp file in $TMPDIR (never in a test's own folder, so it never shows up in a
 * listing of it). */
static inline int anon_fd(void) {
  const char *tmp = getenv("TMPDIR");
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/sgn_cli_io_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  int fd = mkstemp(path);
  cr_assert(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
  unlink(path);
  return fd;
}

/* Makes a fresh empty file in $TMPDIR for a command's output and writes its path to path. */
static inline void temp_path(char *path, size_t cap) {
  const char *dir = getenv("TMPDIR");
  snprintf(path, cap, "%s/sgn_cli_XXXXXX", dir && dir[0] ? dir : "/tmp");
  int fd = mkstemp(path);
  cr_assert(fd >= 0, "mkstemp(%s): %s", path, strerror(errno));
  close(fd);
}

/* Starts `bin args...` (args NULL-terminated) in the current folder with stdout and stderr in
 * anonymous temp files; as_limit > 0 caps the child's address space (RLIMIT_AS, set before
 * exec). */
static inline cli_child cli_spawn(const char *bin, const char *const *args, rlim_t as_limit) {
  const char *argv[64];
  int argc = 0;
  argv[argc++] = bin;
  for (int i = 0; args[i] && argc < 63; i++) argv[argc++] = args[i];
  argv[argc] = NULL;
  cli_child c = {0, anon_fd(), anon_fd(), cli_now_s()};
  fflush(NULL);
  c.pid = fork();
  cr_assert(c.pid >= 0, "fork: %s", strerror(errno));
  if (c.pid == 0) {
    dup2(c.out_fd, STDOUT_FILENO);
    dup2(c.err_fd, STDERR_FILENO);
    if (as_limit > 0) {
      struct rlimit rl = {as_limit, as_limit};
      if (setrlimit(RLIMIT_AS, &rl) != 0) {
        dprintf(STDERR_FILENO, "setrlimit: %s\n", strerror(errno));
        _exit(127);
      }
    }
    alarm(CLI_ALARM_S);
    execv(argv[0], (char *const *)argv);
    dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return c;
}

/* Waits for c and reads back what it wrote. */
static inline run_result cli_finish(cli_child c) {
  int ws = 0;
  while (waitpid(c.pid, &ws, 0) < 0 && errno == EINTR) {
  }
  run_result r;
  r.wall_s = cli_now_s() - c.t0;
  r.exited = WIFEXITED(ws);
  r.status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  r.out = slurp_fd(c.out_fd, NULL);
  r.err = slurp_fd(c.err_fd, NULL);
  close(c.out_fd);
  close(c.err_fd);
  return r;
}

static inline run_result cli_run(const char *bin, const char *const *args, rlim_t as_limit) {
  return cli_finish(cli_spawn(bin, args, as_limit));
}

static inline void run_free(run_result *r) {
  free(r->out);
  free(r->err);
}

static inline int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

#endif
