/* fuzz_common.h — what every libFuzzer harness shares. The parsers read files by path, so each
 * input is written to a scratch folder on /dev/shm (tmpfs: no disk I/O per run) and loaded from
 * there. Beyond "no crash, no leak, no undefined behaviour" the harnesses check the loaders'
 * contract: a success is a consistent dataset of finite values, a failure a non-empty one-line
 * message and an untouched output. A broken contract is __builtin_trap(), which libFuzzer
 * reports as a crash with the input that caused it. */
#ifndef SGN_FUZZ_COMMON_H
#define SGN_FUZZ_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data.h"
#include "sketchgn.h"

#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      fprintf(stderr, "fuzz contract broken: %s (%s:%d); last error: %s\n", #cond, __FILE__, \
              __LINE__, sgn_last_error());                                                   \
      __builtin_trap();                                                                      \
    }                                                                                        \
  } while (0)

static char fuzz_dir[256];

static inline void fuzz_cleanup(void) {
  if (!fuzz_dir[0]) return;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", fuzz_dir);
}

/* The scratch folder, made on first use: /dev/shm when it exists, else $TMPDIR or /tmp. */
static inline const char *fuzz_scratch(void) {
  if (fuzz_dir[0]) return fuzz_dir;
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
  snprintf(fuzz_dir, sizeof fuzz_dir, "%s/sgn_fuzz_XXXXXX", base && base[0] ? base : "/tmp");
  if (!mkdtemp(fuzz_dir)) {
    perror("mkdtemp");
    abort();
  }
  atexit(fuzz_cleanup);
  return fuzz_dir;
}

/* scratch/name; a static buffer of four in rotation. */
static inline const char *fuzz_path(const char *name) {
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", fuzz_scratch(), name);
  return p;
}

static inline void fuzz_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
    perror(path);
    abort();
  }
}

/* 1 when s holds printable ASCII only, like a command-line argument that would be shown back in
 * a one-line error as typed. */
static inline int fuzz_printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 32 || (unsigned char)*s >= 127) return 0;
  return 1;
}

/* A failure's message: set, one line, printable: file content never reaches it raw. */
static inline void fuzz_check_message(void) {
  const char *msg = sgn_last_error();
  FUZZ_CHECK(msg[0] != 0);
  FUZZ_CHECK(fuzz_printable(msg));
}

/* The outcome of sgn_data_load: a consistent dataset of finite values (every element read,
 * so ASan sees any short allocation), or a one-line error and an empty dataset. */
static inline void fuzz_check_dataset(sgn_status st, sgn_dataset *ds) {
  if (st != SGN_OK) {
    FUZZ_CHECK(st == SGN_E_INPUT || st == SGN_E_RUNTIME);
    FUZZ_CHECK(!ds->X && !ds->Y);
    fuzz_check_message();
    return;
  }
  FUZZ_CHECK(ds->n >= 1 && ds->d >= 1 && ds->k >= 1 && ds->X && ds->Y);
  for (int64_t i = 0; i < ds->n * ds->d; i++) FUZZ_CHECK(isfinite(ds->X[i]));
  for (int64_t i = 0; i < ds->n * ds->k; i++) FUZZ_CHECK(isfinite(ds->Y[i]));
  if (ds->labels) {
    FUZZ_CHECK(ds->k == 1);
    for (int64_t i = 0; i < ds->n; i++) FUZZ_CHECK(ds->Y[i] >= 0 && ds->Y[i] == floorf(ds->Y[i]));
  }
  sgn_dataset_free(ds);
}

/* Splits a two-file input: byte 0 holds options (the harness says which), bytes 1-2 the length
 * of the first file (little-endian, clamped to what is there); then the first file, then the
 * second. Returns 0 when the input is too short to carry the 3-byte prefix. */
static inline int fuzz_split2(const uint8_t *data, size_t size, uint8_t *opt, const uint8_t **a,
                              size_t *alen, const uint8_t **b, size_t *blen) {
  if (size < 3) return 0;
  *opt = data[0];
  size_t want = (size_t)data[1] | (size_t)data[2] << 8, rest = size - 3;
  *alen = want < rest ? want : rest;
  *a = data + 3;
  *b = data + 3 + *alen;
  *blen = rest - *alen;
  return 1;
}

#endif
