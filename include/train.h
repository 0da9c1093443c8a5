/* train.h — a whole training run as the CLI drives it: data, model, step loop, logging. */
#ifndef SGN_TRAIN_H
#define SGN_TRAIN_H

#include <stdint.h>

#include "sketchgn.h"

typedef struct sgn_train_config {
  const char *data;     /* data SPEC */
  int64_t width;        /* m (default 1024) */
  sgn_init init;
  uint64_t seed;        /* model initialization; the solver's seed is opt.seed */
  sgn_device device;
  sgn_options opt;
  int64_t steps;        /* maximum steps (default 20) */
  double target_rel;    /* stop when loss <= target_rel * step-0 loss (0: off) */
  double time_limit;    /* stop after this many seconds of training (0: off) */
  const char *log_json; /* one JSON object per line per step, or NULL */
  int quiet;            /* no per-step lines on stderr */
} sgn_train_config;

/* Defaults for every field (data = NULL). */
sgn_train_config sgn_train_config_default(void);

/* Runs it. Returns the exit status: 0 success, 1 runtime failure, 2 bad input. Prints a one-line
 * error on stderr on failure. */
int sgn_train_run(const sgn_train_config *cfg);

#endif
