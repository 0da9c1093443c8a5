/* main.c — the `sketchgn` command line: parses `train` options into an sgn_train_config and runs
 * it, and reports the build (`info`). Every usage error is one line on stderr naming the flag
 * and exits 2; getopt's own messages are off so that stays true for unknown and missing flags. */
#include <cblas.h>
#include <ctype.h>
#include <errno.h>
#include <fftw3.h>
#include <getopt.h>
#include <inttypes.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend_cuda.h"
#include "bench.h"
#include "sketchgn.h"
#include "train.h"

#define EXIT_USAGE 2

/* ---- names of the enums, indexed by value ---- */

static const char *const solver_names[] = {"gd",      "adam", "gn-exact", "gn-cg", "gn-sketch",
                                           "gn-gram", "auto", NULL};
/* indexed by sgn_sketch */
static const char *const sketch_names[] = {"srht", "gaussian", "srft", "countsketch", NULL};
static const char *const init_names[] = {"symmetric", "gaussian", NULL};
static const char *const device_names[] = {"auto", "cpu", "gpu", NULL};
static const char *const onoff_names[] = {"off", "on", NULL};
static const char *const task_names[] = {"regression", "classify", NULL};
static const char *const normalize_names[] = {"unit", "none", "standard", NULL};

/* ---- one-line errors ---- */

/* Copies a user-supplied string for an error message: non-printable bytes become '?' (so the
 * message stays one line) and long values are cut. */
static const char *shown(const char *s, char *buf, size_t cap) {
  size_t i = 0;
  for (; s[i] && i + 4 < cap; i++) buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
  if (s[i]) {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

/* Prints "sketchgn CMD: MESSAGE" as one line on stderr and returns the usage exit status. */
__attribute__((format(printf, 2, 3))) static int usage_error(const char *cmd, const char *fmt,
                                                             ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  if (cmd)
    fprintf(stderr, "sketchgn %s: %s\n", cmd, msg);
  else
    fprintf(stderr, "sketchgn: %s\n", msg);
  return EXIT_USAGE;
}

/* ---- value parsers: 0 on success, EXIT_USAGE after printing the error ---- */

/* A base-10 integer in [lo, hi]; `what` says what was expected ("a positive integer"). */
static int parse_i64(const char *cmd, const char *flag, const char *s, int64_t lo, int64_t hi,
                     const char *what, int64_t *out) {
  char buf[80];
  const char *p = s[0] == '-' || s[0] == '+' ? s + 1 : s;
  if (!isdigit((unsigned char)p[0]))
    return usage_error(cmd, "%s: expected %s, got '%s'", flag, what, shown(s, buf, sizeof buf));
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*end != '\0')
    return usage_error(cmd, "%s: expected %s, got '%s'", flag, what, shown(s, buf, sizeof buf));
  if (errno == ERANGE || v < lo || v > hi)
    return usage_error(cmd, "%s: expected %s, got '%s'%s", flag, what, shown(s, buf, sizeof buf),
                       errno == ERANGE ? " (too large)" : "");
  *out = v;
  return 0;
}

/* --max-memory SIZE: bytes, or with a K, M or G suffix; > 0. */
static int parse_max_memory(const char *cmd, const char *flag, const char *s, double *out) {
  char buf[80], *end;
  errno = 0;
  double v = strtod(s, &end);
  double unit = *end == 'K' ? 1024.0 : *end == 'M' ? 1048576.0 : *end == 'G' ? 1073741824.0 : 1;
  if (unit > 1) end++;
  if (end == s || *end || errno || !isfinite(v) || !(v > 0) || isspace((unsigned char)s[0]))
    return usage_error(cmd, "%s: expected a size > 0 such as 512M or 8G, got '%s'", flag,
                       shown(s, buf, sizeof buf));
  *out = v * unit;
  return 0;
}

/* --chunk-neurons N: 0 (automatic) or at least 2. */
static int parse_chunk_neurons(const char *cmd, const char *flag, const char *s, int64_t *out) {
  int64_t i = 0;
  int rc = parse_i64(cmd, flag, s, 0, INT64_MAX, "an integer >= 0", &i);
  if (!rc && i == 1)
    return usage_error(cmd, "%s: a chunk holds at least 2 neurons (one of each half), or 0 "
                            "for automatic", flag);
  if (!rc) *out = i;
  return rc;
}

/* An unsigned 64-bit integer; no sign allowed (strtoull would wrap "-1"). */
static int parse_u64(const char *cmd, const char *flag, const char *s, uint64_t *out) {
  char buf[80];
  const char *what = "an unsigned 64-bit integer";
  if (!isdigit((unsigned char)s[0]))
    return usage_error(cmd, "%s: expected %s, got '%s'", flag, what, shown(s, buf, sizeof buf));
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (*end != '\0')
    return usage_error(cmd, "%s: expected %s, got '%s'", flag, what, shown(s, buf, sizeof buf));
  if (errno == ERANGE)
    return usage_error(cmd, "%s: expected %s, got '%s' (too large)", flag, what,
                       shown(s, buf, sizeof buf));
  *out = v;
  return 0;
}

/* Bounds for a real-valued option. */
typedef struct range {
  double lo, hi;
  int lo_open, hi_open; /* 1: the bound itself is excluded */
  int zero_ok;          /* 1: 0 is accepted even outside [lo, hi] (0 = off) */
  const char *what;     /* "a number > 0 and < 1" */
} range;

static int parse_real(const char *cmd, const char *flag, const char *s, range r, double *out) {
  char buf[80];
  char *end = (char *)s;
  double v = isspace((unsigned char)s[0]) ? NAN : strtod(s, &end);
  if (isspace((unsigned char)s[0]) || s[0] == '\0' || *end != '\0' || isnan(v))
    return usage_error(cmd, "%s: expected %s, got '%s'", flag, r.what, shown(s, buf, sizeof buf));
  int ok = isfinite(v); /* overflow gives inf; underflow gives 0 or a subnormal, kept */
  ok = ok && (r.lo_open ? v > r.lo : v >= r.lo) && (r.hi_open ? v < r.hi : v <= r.hi);
  if (!ok && !(r.zero_ok && v == 0.0))
    return usage_error(cmd, "%s: expected %s, got '%s'", flag, r.what, shown(s, buf, sizeof buf));
  *out = v;
  return 0;
}

/* One of names[]; the index into *out. */
static int parse_choice(const char *cmd, const char *flag, const char *s,
                        const char *const *names, int *out) {
  char buf[80], list[160] = "";
  for (int i = 0; names[i]; i++) {
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
    if (i) strncat(list, "|", sizeof list - strlen(list) - 1);
    strncat(list, names[i], sizeof list - strlen(list) - 1);
  }
  return usage_error(cmd, "%s: expected one of %s, got '%s'", flag, list,
                     shown(s, buf, sizeof buf));
}

/* ---- getopt plumbing shared by the commands ---- */

/* Reports what getopt_long rejected (it returned '?' or ':') as one line. */
static int getopt_error(const char *cmd, int c, int argc, char **argv,
                        const struct option *longopts) {
  char buf[80], flag[80];
  const char *word = optind - 1 >= 1 && optind - 1 < argc ? argv[optind - 1] : "";
  /* The flag as typed, without any "=value". */
  snprintf(flag, sizeof flag, "%.*s", (int)strcspn(word, "="), word);
  const char *name = NULL; /* the canonical long name, when getopt knows which option it was */
  for (const struct option *o = longopts; o->name; o++)
    if (optopt != 0 && o->val == optopt) name = o->name;
  if (c == ':') {
    if (name) return usage_error(cmd, "--%s: missing value", name);
    return usage_error(cmd, "-%c: missing value", optopt);
  }
  if (name && strchr(word, '=')) return usage_error(cmd, "--%s: takes no value, got '%s'", name,
                                                    shown(word, buf, sizeof buf));
  if (optopt > 0 && optopt < 256 && isprint(optopt))
    return usage_error(cmd, "-%c: unknown option (try 'sketchgn %s --help')", optopt, cmd);
  /* An unknown long option, or a prefix of several. */
  if (strncmp(flag, "--", 2) == 0 && flag[2]) {
    char list[256] = "";
    int matches = 0;
    for (const struct option *o = longopts; o->name; o++)
      if (strncmp(o->name, flag + 2, strlen(flag + 2)) == 0) {
        matches++;
        strncat(list, matches > 1 ? ", --" : "--", sizeof list - strlen(list) - 1);
        strncat(list, o->name, sizeof list - strlen(list) - 1);
      }
    if (matches > 1)
      return usage_error(cmd, "%s: ambiguous option (could be %s)", shown(flag, buf, sizeof buf),
                         list);
  }
  return usage_error(cmd, "%s: unknown option (try 'sketchgn %s --help')",
                     shown(flag, buf, sizeof buf), cmd);
}

/* Rejects positional arguments left after the options. */
static int no_operands(const char *cmd, int argc, char **argv) {
  char buf[80];
  if (optind < argc)
    return usage_error(cmd, "unexpected argument '%s' (try 'sketchgn %s --help')",
                       shown(argv[optind], buf, sizeof buf), cmd);
  return 0;
}

/* ---- sketchgn --help ---- */

static void main_usage(FILE *f) {
  fprintf(f,
          "usage: sketchgn <command> [options]\n"
          "       sketchgn --help | --version\n"
          "\n"
          "Trains wide two-layer ReLU networks f(x) = m^-1/2 A^T relu(W x) with Gauss-Newton\n"
          "steps solved by conjugate gradient with sketched preconditioners.\n"
          "\n"
          "Commands:\n"
          "  train     train a network on a data SPEC ('sketchgn train --help')\n"
          "  eval      loss and accuracy of a saved model on a data SPEC\n"
          "  predict   a saved model's outputs (and classes) on a data SPEC\n"
          "  info      print the version, the backends built and the library versions\n"
          "  bench     time training steps over grids of sizes and solvers (CSV)\n"
          "\n"
          "Options:\n"
          "  -h, --help      print this help and exit\n"
          "  -V, --version   print the version and exit\n"
          "\n"
          "Every command takes --help. Exit status: 0 success, 1 runtime failure, 2 usage or\n"
          "bad input.\n");
}

/* ---- sketchgn train ---- */

enum train_opt {
  OPT_DATA = 256,
  OPT_WIDTH,
  OPT_SOLVER,
  OPT_SKETCH,
  OPT_SKETCH_RATIO,
  OPT_REFRESH,
  OPT_STEPS,
  OPT_TARGET_REL,
  OPT_TIME_LIMIT,
  OPT_BATCH,
  OPT_DAMPING,
  OPT_LR,
  OPT_CG_TOL,
  OPT_CG_MAX,
  OPT_INIT,
  OPT_LINE_SEARCH,
  OPT_DEVICE,
  OPT_SEED,
  OPT_LOG_JSON,
  OPT_QUIET,
  OPT_TARGETS,
  OPT_TEST,
  OPT_TEST_TARGETS,
  OPT_TASK,
  OPT_NORMALIZE,
  OPT_BIAS,
  OPT_SAVE,
  OPT_CHECKPOINT_EVERY,
  OPT_CHECKPOINT,
  OPT_RESUME,
  OPT_MODEL,
  OPT_OUT,
  OPT_MAX_MEMORY,
  OPT_CHUNK_NEURONS,
};

static const struct option train_longopts[] = {
    {"data", required_argument, NULL, OPT_DATA},
    {"width", required_argument, NULL, OPT_WIDTH},
    {"solver", required_argument, NULL, OPT_SOLVER},
    {"sketch", required_argument, NULL, OPT_SKETCH},
    {"sketch-ratio", required_argument, NULL, OPT_SKETCH_RATIO},
    {"precond-refresh", required_argument, NULL, OPT_REFRESH},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"target-rel", required_argument, NULL, OPT_TARGET_REL},
    {"time-limit", required_argument, NULL, OPT_TIME_LIMIT},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"damping", required_argument, NULL, OPT_DAMPING},
    {"lr", required_argument, NULL, OPT_LR},
    {"cg-tol", required_argument, NULL, OPT_CG_TOL},
    {"cg-max", required_argument, NULL, OPT_CG_MAX},
    {"init", required_argument, NULL, OPT_INIT},
    {"line-search", required_argument, NULL, OPT_LINE_SEARCH},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"seed", required_argument, NULL, OPT_SEED},
    {"log-json", required_argument, NULL, OPT_LOG_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"targets", required_argument, NULL, OPT_TARGETS},
    {"test", required_argument, NULL, OPT_TEST},
    {"test-targets", required_argument, NULL, OPT_TEST_TARGETS},
    {"task", required_argument, NULL, OPT_TASK},
    {"normalize", required_argument, NULL, OPT_NORMALIZE},
    {"bias", no_argument, NULL, OPT_BIAS},
    {"save", required_argument, NULL, OPT_SAVE},
    {"checkpoint-every", required_argument, NULL, OPT_CHECKPOINT_EVERY},
    {"checkpoint", required_argument, NULL, OPT_CHECKPOINT},
    {"resume", required_argument, NULL, OPT_RESUME},
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
    {"chunk-neurons", required_argument, NULL, OPT_CHUNK_NEURONS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Looks a name up in a NULL-terminated table, tolerating out-of-range enum values. */
static const char *name_of(const char *const *names, int count, int v) {
  return v >= 0 && v < count && names[v] ? names[v] : "?";
}

/* One help entry: "  --flag ARG   meaning (default: ...)". A long flag gets the text on the
 * next line; a long default moves to a line of its own, so lines stay under 100 columns. */
static void help_entry(FILE *f, const char *flag, const char *meaning, const char *dflt) {
  const int col = 27;
  int len = fprintf(f, "  %s", flag);
  if (len + 1 > col) {
    fputc('\n', f);
    len = 0;
  }
  len += fprintf(f, "%*s%s", col - len, "", meaning);
  if (!dflt) {
    fputc('\n', f);
    return;
  }
  if (len + (int)strlen(dflt) + 12 > 99)
    fprintf(f, "\n%*s(default: %s)\n", col, "", dflt);
  else
    fprintf(f, " (default: %s)\n", dflt);
}

/* The help text; defaults are read from sgn_train_config_default() so they cannot drift. */
static void train_usage(FILE *f) {
  sgn_train_config c = sgn_train_config_default();
  const sgn_options *o = &c.opt;
  char width[32], seed[32], ratio[32], refresh[64], damping[64], lr[80], ls[64], tol[32],
      cgmax[32], batch[64], steps[32], target[32], tlimit[32];

  snprintf(width, sizeof width, "%" PRId64, c.width);
  snprintf(seed, sizeof seed, "%" PRIu64, c.seed);
  snprintf(ratio, sizeof ratio, "%g", o->sketch_ratio);
  switch (o->refresh) {
  case SGN_REFRESH_ALWAYS: snprintf(refresh, sizeof refresh, "always"); break;
  case SGN_REFRESH_AUTO: snprintf(refresh, sizeof refresh, "auto"); break;
  case SGN_REFRESH_EVERY: snprintf(refresh, sizeof refresh, "%d", o->refresh_every); break;
  default: snprintf(refresh, sizeof refresh, "always for gn-sketch, auto for gn-gram"); break;
  }
  if (o->damping < 0)
    snprintf(damping, sizeof damping, "auto, 1e-6 * mean(G_ii) each step");
  else
    snprintf(damping, sizeof damping, "%g", o->damping);
  if (o->lr < 0)
    snprintf(lr, sizeof lr, "1 for gn-*, 1.8 n / lambda_max(G) for gd, 1e-3 for adam");
  else
    snprintf(lr, sizeof lr, "%g", o->lr);
  if (o->line_search < 0)
    snprintf(ls, sizeof ls, "on for gn-*, off for gd and adam");
  else
    snprintf(ls, sizeof ls, "%s", o->line_search ? "on" : "off");
  snprintf(tol, sizeof tol, "%g", o->cg_tol);
  snprintf(cgmax, sizeof cgmax, "%d", o->cg_max);
  if (o->batch <= 0)
    snprintf(batch, sizeof batch, "all samples; 128 for adam");
  else
    snprintf(batch, sizeof batch, "%" PRId64, o->batch);
  snprintf(steps, sizeof steps, "%" PRId64, c.steps);
  if (c.target_rel > 0)
    snprintf(target, sizeof target, "%g", c.target_rel);
  else
    snprintf(target, sizeof target, "off");
  if (c.time_limit > 0)
    snprintf(tlimit, sizeof tlimit, "%g", c.time_limit);
  else
    snprintf(tlimit, sizeof tlimit, "none");

  fprintf(f, "usage: sketchgn train --data SPEC [options]\n"
             "\n"
             "Trains f(x) = m^-1/2 A^T relu(W x) (W trained, A fixed +-1) on the loss\n"
             "1/(2n) sum ||f(x_i) - y_i||^2, printing one line per step on stderr.\n"
             "\nData and model:\n");
  help_entry(f, "--data SPEC", "training data (required), e.g. synth:n=1024,d=32,k=1,seed=1",
             NULL);
  help_entry(f, "--targets T", "CSV: target columns (indices or names); NPY: the targets file",
             "CSV: the last k columns");
  help_entry(f, "--test SPEC", "held-out data evaluated after every step", "none");
  help_entry(f, "--test-targets T", "--targets for the --test data", "none");
  help_entry(f, "--task regression|classify",
             "classify: integer labels become k one-hot 0/1 outputs; reports accuracy",
             name_of(task_names, 2, (int)c.task));
  help_entry(f, "--normalize unit|none|standard",
             "unit: center, then unit norm per sample; standard: per-feature z-score",
             name_of(normalize_names, 3, (int)c.normalize));
  help_entry(f, "--bias", "append a constant 1 feature after normalizing", "off");
  help_entry(f, "--width M", "hidden width m, >= 1, even with --init symmetric", width);
  help_entry(f, "--init symmetric|gaussian",
             "symmetric: mirrored neuron pairs, so f == 0 at the start",
             name_of(init_names, 2, (int)c.init));
  help_entry(f, "--seed S", "unsigned 64-bit seed for the model, sketches and batches", seed);
  fprintf(f, "\nSolver:\n");
  help_entry(f, "--solver S",
             "gd|adam|gn-exact|gn-cg|gn-sketch|gn-gram|auto (auto: the cost model's choice)",
             name_of(solver_names, 7, (int)o->solver));
  help_entry(f, "--sketch K",
             "srht|srft|gaussian|countsketch, the sketch of J for gn-sketch (README: Sketches)",
             name_of(sketch_names, 4, (int)o->sketch));
  help_entry(f, "--sketch-ratio R", "sketch rows s = R * n, >= 1; 2 or more advised", ratio);
  help_entry(f, "--precond-refresh auto|always|N",
             "when PCG rebuilds its preconditioner; N: every N steps", refresh);
  help_entry(f, "--damping L", "lambda in (G + lambda I) g = r, >= 0", damping);
  help_entry(f, "--lr ETA", "step size eta, > 0", lr);
  help_entry(f, "--line-search on|off", "halve the step until the loss decreases", ls);
  help_entry(f, "--cg-tol E", "relative residual per CG solve, 0 < E < 1", tol);
  help_entry(f, "--cg-max N", "CG iteration cap per solve, >= 1", cgmax);
  help_entry(f, "--batch B", "samples per step, >= 1", batch);
  fprintf(f, "\nStopping:\n");
  help_entry(f, "--steps T", "maximum number of steps, >= 0", steps);
  help_entry(f, "--target-rel R", "stop at loss <= R * step-0 loss; 0 < R < 1, 0 = off", target);
  help_entry(f, "--time-limit SEC", "stop after SEC seconds of training, > 0", tlimit);
  fprintf(f, "\nRun:\n");
  help_entry(f, "--device auto|cpu|gpu", "where to run; auto takes the GPU when one answers",
             name_of(device_names, 3, (int)c.device));
  help_entry(f, "--max-memory SIZE", "refuse runs needing more, e.g. 512M, 8G (bytes, K, M, G)",
             "what the device has");
  help_entry(f, "--chunk-neurons N",
             "run the Jacobian products N neurons at a time (N >= 2; 0: all at once when the "
             "n x m work fits --max-memory, else the widest chunk that fits)", "0");
  help_entry(f, "--log-json FILE", "write one JSON object per step to FILE", "none");
  help_entry(f, "--save FILE", "write the trained model to FILE", "none");
  help_entry(f, "--checkpoint-every N", "write a checkpoint every N steps", "never");
  help_entry(f, "--checkpoint FILE", "where checkpoints go", "the --save path + .ckpt");
  help_entry(f, "--resume FILE", "continue a run from a checkpoint (same data and solver)",
             "none");
  help_entry(f, "--quiet", "no per-step lines on stderr", "off");
  help_entry(f, "-h, --help", "print this help and exit", NULL);
  fprintf(f, "\nOptions take their value as '--flag value' or '--flag=value'. Exit status:\n"
             "0 success, 1 runtime failure, 2 usage or bad input.\n");
}

/* Parses a train command line into *cfg. Returns -1 to go on, else the exit status. */
static int train_parse(int argc, char **argv, sgn_train_config *cfg) {
  const char *cmd = "train";
  int c, longindex = 0;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":h", train_longopts, &longindex)) != -1) {
    if (c == '?' || c == ':') return getopt_error(cmd, c, argc, argv, train_longopts);
    if (c == 'h') {
      train_usage(stdout);
      return 0;
    }
    char flag[40];
    snprintf(flag, sizeof flag, "--%s", train_longopts[longindex].name);
    int64_t i = 0;
    int choice = 0, rc = 0;
    switch (c) {
    case OPT_DATA:
      if (!optarg[0]) return usage_error(cmd, "%s: expected a data SPEC, got ''", flag);
      cfg->data = optarg;
      break;
    case OPT_WIDTH:
      rc = parse_i64(cmd, flag, optarg, 1, INT64_MAX, "a positive integer", &i);
      cfg->width = i;
      break;
    case OPT_SOLVER:
      rc = parse_choice(cmd, flag, optarg, solver_names, &choice);
      cfg->opt.solver = (sgn_solver)choice;
      break;
    case OPT_SKETCH:
      rc = parse_choice(cmd, flag, optarg, sketch_names, &choice);
      cfg->opt.sketch = (sgn_sketch)choice;
      break;
    case OPT_SKETCH_RATIO:
      rc = parse_real(cmd, flag, optarg, (range){1, INFINITY, 0, 1, 0, "a number >= 1"},
                      &cfg->opt.sketch_ratio);
      break;
    case OPT_REFRESH:
      if (strcmp(optarg, "auto") == 0) {
        cfg->opt.refresh = SGN_REFRESH_AUTO;
      } else if (strcmp(optarg, "always") == 0) {
        cfg->opt.refresh = SGN_REFRESH_ALWAYS;
      } else {
        rc = parse_i64(cmd, flag, optarg, 1, INT_MAX, "auto, always or an integer N >= 1", &i);
        cfg->opt.refresh = SGN_REFRESH_EVERY;
        cfg->opt.refresh_every = (int)i;
      }
      break;
    case OPT_STEPS:
      rc = parse_i64(cmd, flag, optarg, 0, INT64_MAX, "an integer >= 0", &i);
      cfg->steps = i;
      break;
    case OPT_TARGET_REL:
      rc = parse_real(cmd, flag, optarg, (range){0, 1, 1, 1, 1, "a number > 0 and < 1, or 0"},
                      &cfg->target_rel);
      break;
    case OPT_TIME_LIMIT:
      rc = parse_real(cmd, flag, optarg, (range){0, INFINITY, 1, 1, 0, "seconds > 0"},
                      &cfg->time_limit);
      break;
    case OPT_BATCH:
      rc = parse_i64(cmd, flag, optarg, 1, INT64_MAX, "a positive integer", &i);
      cfg->opt.batch = i;
      break;
    case OPT_DAMPING:
      rc = parse_real(cmd, flag, optarg, (range){0, INFINITY, 0, 1, 0, "a number >= 0"},
                      &cfg->opt.damping);
      break;
    case OPT_LR:
      rc = parse_real(cmd, flag, optarg, (range){0, INFINITY, 1, 1, 0, "a number > 0"},
                      &cfg->opt.lr);
      break;
    case OPT_CG_TOL:
      rc = parse_real(cmd, flag, optarg, (range){0, 1, 1, 1, 0, "a number > 0 and < 1"},
                      &cfg->opt.cg_tol);
      break;
    case OPT_CG_MAX:
      rc = parse_i64(cmd, flag, optarg, 1, INT_MAX, "a positive integer", &i);
      cfg->opt.cg_max = (int)i;
      break;
    case OPT_INIT:
      rc = parse_choice(cmd, flag, optarg, init_names, &choice);
      cfg->init = (sgn_init)choice;
      break;
    case OPT_LINE_SEARCH:
      rc = parse_choice(cmd, flag, optarg, onoff_names, &choice);
      cfg->opt.line_search = choice;
      break;
    case OPT_DEVICE:
      rc = parse_choice(cmd, flag, optarg, device_names, &choice);
      cfg->device = (sgn_device)choice;
      break;
    case OPT_SEED:
      rc = parse_u64(cmd, flag, optarg, &cfg->seed);
      cfg->opt.seed = cfg->seed;
      break;
    case OPT_LOG_JSON:
      if (!optarg[0]) return usage_error(cmd, "%s: expected a file name, got ''", flag);
      cfg->log_json = optarg;
      break;
    case OPT_QUIET: cfg->quiet = 1; break;
    case OPT_TARGETS:
    case OPT_TEST:
    case OPT_TEST_TARGETS:
    case OPT_SAVE:
    case OPT_CHECKPOINT:
    case OPT_RESUME:
      if (!optarg[0]) return usage_error(cmd, "%s: expected a value, got ''", flag);
      *(c == OPT_TARGETS        ? &cfg->targets
        : c == OPT_TEST         ? &cfg->test
        : c == OPT_TEST_TARGETS ? &cfg->test_targets
        : c == OPT_SAVE         ? &cfg->save
        : c == OPT_CHECKPOINT   ? &cfg->checkpoint
                                : &cfg->resume) = optarg;
      break;
    case OPT_TASK:
      rc = parse_choice(cmd, flag, optarg, task_names, &choice);
      cfg->task = (sgn_task)choice;
      break;
    case OPT_NORMALIZE:
      rc = parse_choice(cmd, flag, optarg, normalize_names, &choice);
      cfg->normalize = (sgn_normalize)choice;
      break;
    case OPT_BIAS: cfg->bias = 1; break;
    case OPT_MAX_MEMORY: rc = parse_max_memory(cmd, flag, optarg, &cfg->opt.max_memory); break;
    case OPT_CHUNK_NEURONS:
      rc = parse_chunk_neurons(cmd, flag, optarg, &cfg->opt.chunk_neurons);
      break;
    case OPT_CHECKPOINT_EVERY:
      rc = parse_i64(cmd, flag, optarg, 1, INT64_MAX, "a positive integer", &i);
      cfg->checkpoint_every = i;
      break;
    default: return usage_error(cmd, "internal error: unhandled option %d", c);
    }
    if (rc) return rc;
  }
  int rc = no_operands(cmd, argc, argv);
  if (rc) return rc;

  /* Checks that involve more than one option, so the order on the command line is free. */
  if (!cfg->data)
    return usage_error(cmd, "--data: missing; a data SPEC is required "
                            "(e.g. --data synth:n=1024,d=32)");
  if (cfg->checkpoint_every > 0 && !cfg->checkpoint && !cfg->save)
    return usage_error(cmd, "--checkpoint-every: needs --checkpoint FILE or --save FILE");
  if (cfg->test_targets && !cfg->test)
    return usage_error(cmd, "--test-targets: needs --test SPEC");
  if (cfg->init == SGN_INIT_SYMMETRIC && cfg->width % 2 != 0)
    return usage_error(cmd, "--width: --init symmetric needs an even width, got %" PRId64
                            " (use an even width or --init gaussian)", cfg->width);
  return -1;
}

/* A warning, not an error: s close to n leaves the sketched preconditioner near singular. The
 * estimate is the Gaussian (Marchenko-Pastur) condition number ((1 + sqrt(n/s))/(1 - sqrt(n/s)))^2. */
static void train_warn(const sgn_train_config *cfg) {
  double r = cfg->opt.sketch_ratio;
  if (cfg->quiet || cfg->opt.solver != SGN_SOLVER_GN_SKETCH || r >= 2) return;
  double q = sqrt(1.0 / r);
  if (q >= 1)
    fprintf(stderr, "sketchgn train: warning: --sketch-ratio %g gives s = n rows; the "
                    "preconditioner is near singular (use 2 or more)\n", r);
  else
    fprintf(stderr, "sketchgn train: warning: --sketch-ratio %g: expect a preconditioned "
                    "condition number near %.0f (use 2 or more)\n", r, pow((1 + q) / (1 - q), 2));
}

static int cmd_train(int argc, char **argv) {
  sgn_train_config cfg = sgn_train_config_default();
  int rc = train_parse(argc, argv, &cfg);
  if (rc >= 0) return rc;
  train_warn(&cfg);
  fflush(stdout);
  return sgn_train_run(&cfg);
}

/* ---- sketchgn eval / predict ---- */

static const struct option eval_longopts[] = {
    {"model", required_argument, NULL, OPT_MODEL},
    {"data", required_argument, NULL, OPT_DATA},
    {"targets", required_argument, NULL, OPT_TARGETS},
    {"out", required_argument, NULL, OPT_OUT},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
    {"chunk-neurons", required_argument, NULL, OPT_CHUNK_NEURONS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static void eval_usage(FILE *f, const char *cmd) {
  int predict = strcmp(cmd, "predict") == 0;
  fprintf(f, "usage: sketchgn %s --model FILE --data SPEC [options]\n\n", cmd);
  fprintf(f, predict ? "Writes a saved model's outputs on the data, one row per sample (and the\n"
                       "predicted class when the model classifies).\n\nOptions:\n"
                     : "Prints a saved model's loss 1/(2n) sum ||f(x_i) - y_i||^2 on the data (and\n"
                       "its accuracy when the model classifies).\n\nOptions:\n");
  help_entry(f, "--model FILE", "a model written by 'sketchgn train --save' (required)", NULL);
  help_entry(f, "--data SPEC", "the data, as for train (required)", NULL);
  help_entry(f, "--targets T", "as for train", "CSV: the last k columns");
  if (predict)
    help_entry(f, "--out FILE", "FILE.csv (outputs, then the class) or FILE.npy (outputs)",
               "CSV on stdout");
  help_entry(f, "--device auto|cpu|gpu", "where to run", "auto");
  help_entry(f, "--max-memory SIZE", "refuse to run in more, e.g. 512M, 8G (bytes, K, M, G)",
             "what the device has");
  help_entry(f, "--chunk-neurons N",
             "forward N neurons at a time (N >= 2; 0: to fit --max-memory)", "0");
  help_entry(f, "-h, --help", "print this help and exit", NULL);
}

static int cmd_eval(int argc, char **argv, const char *cmd) {
  sgn_eval_config cfg = {0};
  int c, longindex = 0, predict = strcmp(cmd, "predict") == 0;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":h", eval_longopts, &longindex)) != -1) {
    if (c == '?' || c == ':') return getopt_error(cmd, c, argc, argv, eval_longopts);
    if (c == 'h') {
      eval_usage(stdout, cmd);
      return 0;
    }
    char flag[40];
    snprintf(flag, sizeof flag, "--%s", eval_longopts[longindex].name);
    if (c == OPT_DEVICE) {
      int choice = 0, rc = parse_choice(cmd, flag, optarg, device_names, &choice);
      if (rc) return rc;
      cfg.device = (sgn_device)choice;
      continue;
    }
    if (c == OPT_MAX_MEMORY || c == OPT_CHUNK_NEURONS) {
      int rc = c == OPT_MAX_MEMORY ? parse_max_memory(cmd, flag, optarg, &cfg.max_memory)
                                   : parse_chunk_neurons(cmd, flag, optarg, &cfg.chunk_neurons);
      if (rc) return rc;
      continue;
    }
    if (c == OPT_OUT && !predict)
      return usage_error(cmd, "--out: only 'sketchgn predict' writes outputs");
    if (!optarg[0]) return usage_error(cmd, "%s: expected a value, got ''", flag);
    *(c == OPT_MODEL ? &cfg.model : c == OPT_DATA ? &cfg.data : c == OPT_TARGETS ? &cfg.targets
                                                                           : &cfg.out) = optarg;
  }
  int rc = no_operands(cmd, argc, argv);
  if (rc) return rc;
  if (!cfg.model) return usage_error(cmd, "--model: missing; a model file is required");
  if (!cfg.data) return usage_error(cmd, "--data: missing; a data SPEC is required");
  return predict ? sgn_predict_run(&cfg) : sgn_eval_run(&cfg);
}

/* ---- sketchgn info ---- */

static void info_usage(FILE *f) {
  fprintf(f,
          "usage: sketchgn info [options]\n"
          "\n"
          "Prints the version, the backends, the CUDA plugin and the GPU that answers (if any),\n"
          "and the versions of the linked libraries (OpenBLAS, LAPACK, OpenMP).\n"
          "\n"
          "Options:\n"
          "  -h, --help   print this help and exit\n");
}

/* The CUDA plugin (loading it is what probes for a GPU) and device 0 with the CUDA libraries. */
static void info_gpu(void) {
  const char *path = sgn_cuda_plugin_path();
  if (!path) {
    printf("gpu: %s\n", sgn_last_error());
    return;
  }
  printf("gpu backend: %s\n", path);
  char line[1024];
  sgn_cuda_device_info(line, sizeof line);
  printf("gpu: %s\n", line);
}

static int cmd_info(int argc, char **argv) {
  static const struct option longopts[] = {{"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int c;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
    if (c == 'h') {
      info_usage(stdout);
      return 0;
    }
    return getopt_error("info", c, argc, argv, longopts);
  }
  int rc = no_operands("info", argc, argv);
  if (rc) return rc;

  lapack_int major = 0, minor = 0, patch = 0;
  LAPACKE_ilaver(&major, &minor, &patch);
  printf("sketchgn %s\n", sgn_version());
  printf("cpu: built\n");
  info_gpu();
  printf("openblas: %s (kernels: %s%s)\n", openblas_get_config(), openblas_get_corename(),
         getenv("OPENBLAS_CORETYPE") ? ", set by OPENBLAS_CORETYPE" : "");
  printf("openblas threads: %d\n", openblas_get_num_threads());
  printf("lapack: %d.%d.%d\n", (int)major, (int)minor, (int)patch);
  printf("fftw: %s\n", fftwf_version);
  printf("openmp: %d max threads (OpenMP %d)\n", omp_get_max_threads(), _OPENMP);
  return 0;
}

/* ---- threading and BLAS kernels ---- */

/* Two environment settings that only take effect when the libraries load, so the process
 * re-runs itself once with them:
 * - OpenBLAS's runtime dispatch falls back to its SSE3 "Prescott" kernels on a CPU whose model
 *   it does not recognize, even when the CPU has AVX2 or AVX-512 (3-5x slower GEMMs); unless the
 *   user chose OPENBLAS_CORETYPE, pick the kernels the CPU's features support.
 * - libgomp's threads spin after every OpenMP loop and then compete with OpenBLAS's own threads
 *   for the same cores (gn-cg 2.2x slower on 2 cores); unless the user chose OMP_WAIT_POLICY,
 *   make them sleep. */
static void env_fixup(char **argv) {
  const char *preload = getenv("LD_PRELOAD");
  if (preload && strstr(preload, "vgpreload")) return; /* under valgrind an exec would escape it */
  int again = 0;
  if (!getenv("OPENBLAS_CORETYPE") && strcmp(openblas_get_corename(), "Prescott") == 0) {
    __builtin_cpu_init();
    const char *core = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      core = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      core = "Haswell";
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) == 0) again = 1;
  }
  if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0) again = 1;
  if (!again) return;
  execv("/proc/self/exe", argv);
  /* exec failed: go on with what the libraries picked */
}

/* ---- dispatch ---- */

int main(int argc, char **argv) {
  env_fixup(argv);
  if (argc < 2) return usage_error(NULL, "missing command (try 'sketchgn --help')");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    if (argc > 2 && strcmp(cmd, "help") == 0) {
      char buf[80];
      if (strcmp(argv[2], "train") == 0) {
        train_usage(stdout);
        return 0;
      }
      if (strcmp(argv[2], "info") == 0) {
        info_usage(stdout);
        return 0;
      }
      if (strcmp(argv[2], "bench") == 0) {
        char *bench_help[] = {"bench", "--help", NULL};
        return sgn_bench_main(2, bench_help);
      }
      if (strcmp(argv[2], "eval") == 0 || strcmp(argv[2], "predict") == 0) {
        eval_usage(stdout, argv[2]);
        return 0;
      }
      return usage_error(NULL, "unknown command '%s' (try 'sketchgn --help')",
                         shown(argv[2], buf, sizeof buf));
    }
    main_usage(stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("sketchgn %s\n", sgn_version());
    return 0;
  }
  /* The command's own argv: argv[0] is the command name, as getopt expects. */
  if (strcmp(cmd, "train") == 0) return cmd_train(argc - 1, argv + 1);
  if (strcmp(cmd, "info") == 0) return cmd_info(argc - 1, argv + 1);
  if (strcmp(cmd, "bench") == 0) return sgn_bench_main(argc - 1, argv + 1);
  if (strcmp(cmd, "eval") == 0 || strcmp(cmd, "predict") == 0)
    return cmd_eval(argc - 1, argv + 1, cmd);
  char buf[80];
  if (cmd[0] == '-')
    return usage_error(NULL, "%s: unknown option (try 'sketchgn --help')",
                       shown(cmd, buf, sizeof buf));
  return usage_error(NULL, "unknown command '%s' (commands: train, eval, predict, info, bench; try 'sketchgn --help')",
                     shown(cmd, buf, sizeof buf));
}
