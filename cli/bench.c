/* bench.c — `sketchgn bench`. For every configuration of the grids it builds a synthetic task
 * (sgn_data_synth) and a symmetric model, runs W warm-up steps, saves the session's state, then
 * times T repetitions of the next step, each restored from that state (sgn_session_load_state),
 * so the T timings measure the same work and a converged loss cannot distort them. One CSV row
 * per configuration: medians (min and max of step_ms) over the T repetitions.
 *
 * flops (sgn_costmodel_step, costmodel.c) counts what the backends execute in the timed step:
 *   product   forward, J v or J^T g: 2 n m (d + k)   (the (n,d)x(d,m) GEMM and the k-column
 *             reduction against A)
 *   gn-cg, gn-sketch, gn-gram: cg_iters x (J^T p + J (J^T p)) = cg_iters x 4 n m (d + k),
 *             plus 2 n^2 k per preconditioner application (two triangular solves)
 *   Gram      n^2 (m + d) (X X^T and M M^T over the upper triangle); gn-exact with k > 1 adds
 *             k (k - 1)/2 signed M M^T products of n^2 m each (the off-diagonal blocks)
 *   Cholesky  N^3 / 3 with N = n k (gn-exact) or n (gn-gram); solves 2 N^2 per right-hand side
 *   sketch    SRHT: n (m' log2 m' + d' log2 d') + 2 n s (m', d' the powers of two >= m, d);
 *             Gaussian: 2 n s (m + d); SRFT: 2.5 n (m log2 m + d log2 d) + 2 n s (real FFTs,
 *             unpadded); CountSketch: n (m + 2 d) + 7.5 n s log2 s + 3 n s (three FFTs of length s)
 *   sketch R  n (n + 1) s for Y Y^T (DSYRK, float64) plus n^3 / 3 for its Cholesky
 *   update    J^T g plus one forward per line-search trial
 *   gd        J^T r plus the trial forwards (step 1 adds 30 power iterations of J J^T);
 *   adam      an epoch: forward and J^T g over all n rows, then a full forward.
 * gflops = flops / step_ms (median). Phase times are the step's own (sgn_step_info).
 *
 * --kernels: for each (n, d, m, k), J v and J^T g (the backend's ops, random data) alternate with
 * plain SGEMMs of the two shapes each op contains, and the Hadamard transform of n rows of length
 * m' alternates with a copy of the same bytes; medians over --reps; ratio = reference time / op
 * time (1.0: the op runs as fast as the bare GEMMs or the copy). */
#include "bench.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "costmodel.h"
#include "data.h"
#include "hadamard.h"
#include "rng.h"
#include "session.h"
#include "util.h"


#define EXIT_USAGE 2
#define MAX_LIST 64
#define SOLVER_AUTO (-1)

static const char *const solver_names[] = {"gd", "adam", "gn-exact", "gn-cg", "gn-sketch",
                                           "gn-gram", NULL};
static const char *const device_names[] = {"auto", "cpu", "gpu", NULL};
/* indexed by sgn_sketch */
static const char *const sketch_names[] = {"srht", "gaussian", "srft", "countsketch", NULL};

static const char *const csv_header =
    "solver,device,n,d,m,k,s,step_ms,step_ms_min,step_ms_max,forward_ms,sketch_ms,precond_ms,"
    "solve_ms,update_ms,cg_iters,loss_ratio,flops,gflops";
static const char *const kernels_header =
    "op,device,n,d,m,k,op_ms,ref_ms,ratio,op_gflops,ref_gflops,ref";

typedef struct int_list {
  int count;
  int64_t v[MAX_LIST];
} int_list;

typedef struct bench_config {
  int_list n, m, d, k;
  int solvers[MAX_LIST], nsolvers;  /* sgn_solver values or SOLVER_AUTO */
  int devices[4], ndevices;         /* sgn_device values */
  int64_t steps, warmup, reps;
  const char *csv;
  double aniso;
  uint64_t seed;
  sgn_options opt;                  /* sketch, ratio, refresh, seed */
  int kernels;
} bench_config;

/* ---- one-line usage errors ---- */

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r' || !isprint((unsigned char)*p)) *p = '?';
  fprintf(stderr, "sketchgn bench: %s\n", msg);
  return EXIT_USAGE;
}

/* A user string cut to fit an error message. */
static const char *shown(const char *s) {
  static char buf[64];
  snprintf(buf, sizeof buf, "%s%s", s, strlen(s) > 40 ? "..." : "");
  if (strlen(s) > 40) memcpy(buf + 40, "...", 4);
  return buf;
}

/* "a,b,c": each a base-10 integer in [lo, hi]; even != 0 demands even values. */
static int parse_int_list(const char *flag, const char *s, int64_t lo, int64_t hi, int even,
                          int_list *out) {
  out->count = 0;
  const char *p = s;
  for (;;) {
    if (out->count == MAX_LIST)
      return usage_error("%s: at most %d values, got '%s'", flag, MAX_LIST, shown(s));
    if (!isdigit((unsigned char)*p))
      return usage_error("%s: expected a comma-separated list of integers >= %" PRId64
                         ", got '%s'", flag, lo, shown(s));
    errno = 0;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (errno == ERANGE || v < lo || v > hi)
      return usage_error("%s: values must be in [%" PRId64 ", %" PRId64 "], got '%s'", flag, lo,
                         hi, shown(s));
    if (even && v % 2)
      return usage_error("%s: the width must be even (the symmetric initialization mirrors "
                         "neurons in pairs), got %lld", flag, v);
    out->v[out->count++] = v;
    if (*end == '\0') return 0;
    if (*end != ',' || end[1] == '\0')
      return usage_error("%s: expected a comma-separated list of integers >= %" PRId64
                         ", got '%s'", flag, lo, shown(s));
    p = end + 1;
  }
}

/* "name,name": each one of names[] (or "auto" when auto_ok) -> indices (SOLVER_AUTO). */
static int parse_name_list(const char *flag, const char *s, const char *const *names, int auto_ok,
                           int *out, int *count, int cap) {
  char list[160] = "";
  for (int i = 0; names[i]; i++) {
    if (i) strcat(list, "|");
    strcat(list, names[i]);
  }
  if (auto_ok) strcat(list, "|auto");
  *count = 0;
  const char *p = s;
  for (;;) {
    size_t len = strcspn(p, ",");
    int found = -2;
    for (int i = 0; names[i]; i++)
      if (strlen(names[i]) == len && strncmp(p, names[i], len) == 0) found = i;
    if (auto_ok && len == 4 && strncmp(p, "auto", 4) == 0) found = SOLVER_AUTO;
    if (found == -2)
      return usage_error("%s: expected a comma-separated list of %s, got '%s'", flag, list,
                         shown(s));
    if (*count == cap) return usage_error("%s: at most %d values, got '%s'", flag, cap, shown(s));
    out[(*count)++] = found;
    if (p[len] == '\0') return 0;
    p += len + 1;
    if (*p == '\0')
      return usage_error("%s: expected a comma-separated list of %s, got '%s'", flag, list,
                         shown(s));
  }
}

static int parse_one_int(const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out) {
  errno = 0;
  char *end = (char *)s;
  long long v = isdigit((unsigned char)s[0]) ? strtoll(s, &end, 10) : 0;
  if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    return usage_error("%s: expected an integer in [%" PRId64 ", %" PRId64 "], got '%s'", flag, lo,
                       hi, shown(s));
  *out = v;
  return 0;
}

static int parse_double(const char *flag, const char *s, double lo, const char *what,
                        double *out) {
  char *end;
  errno = 0;
  double v = s[0] && !isspace((unsigned char)s[0]) ? strtod(s, &end) : NAN;
  if (isnan(v) || *end != '\0' || !isfinite(v) || v < lo)
    return usage_error("%s: expected %s, got '%s'", flag, what, shown(s));
  *out = v;
  return 0;
}

/* ---- help ---- */

static void bench_usage(FILE *f) {
  fprintf(f,
          "usage: sketchgn bench [--n LIST] [--m LIST] [--d LIST] [--k LIST] [--solver LIST]\n"
          "                      [--device LIST] [options]\n"
          "       sketchgn bench --kernels [--n LIST] [--m LIST] [--d LIST] [--k LIST]\n"
          "                      [--device LIST] [--reps R] [--csv FILE]\n"
          "\n"
          "Times training steps for every combination of the lists (comma-separated) on a\n"
          "synthetic task (synth:n=N,d=D,k=K) and a symmetric model of width M, and writes one\n"
          "CSV row per configuration: solver, device, n, d, m, k, s, step_ms (median),\n"
          "step_ms_min, step_ms_max, forward_ms, sketch_ms, precond_ms, solve_ms, update_ms,\n"
          "cg_iters (medians), loss_ratio (after / before the step), flops, gflops.\n"
          "Each timed step restarts from the state after the warm-up steps. One progress line\n"
          "per configuration goes to stderr. 'auto' in --solver runs the cost model's choice\n"
          "(the row's solver reads auto:CHOICE, the reason goes to stderr).\n"
          "\n"
          "Options:\n"
          "  --n LIST             samples (default 1024)\n"
          "  --m LIST             hidden width, even (default 4096)\n"
          "  --d LIST             input dimension (default 32)\n"
          "  --k LIST             outputs (default 1)\n"
          "  --solver LIST        gd|adam|gn-exact|gn-cg|gn-sketch|gn-gram|auto "
          "(default gn-sketch)\n"
          "  --device LIST        auto|cpu|gpu (default auto)\n"
          "  --steps T            timed repetitions per configuration (default 3)\n"
          "  --warmup W           steps before the timed one (default 1)\n"
          "  --csv FILE           write the CSV to FILE (via FILE.tmp) instead of stdout\n"
          "  --sketch K           srht|srft|gaussian|countsketch, the sketch of gn-sketch\n"
          "                       (default srht)\n"
          "  --sketch-ratio R     sketch rows s = R n (default 4)\n"
          "  --precond-refresh auto|always|N  as for train (default: the solver's)\n"
          "  --cg-max N, --cg-tol E  CG iteration cap and tolerance, as for train (100, 1e-3)\n"
          "  --aniso A            input anisotropy of the synthetic task (default 1)\n"
          "  --seed S             data, model and sketch seed (default 1)\n"
          "  --kernels            time J v, J^T g and the Hadamard transform against SGEMM and\n"
          "                       a copy instead; CSV: op, device, n, d, m, k, op_ms, ref_ms,\n"
          "                       ratio (ref_ms / op_ms), op_gflops, ref_gflops, ref\n"
          "  --reps R             --kernels: alternating repetitions (default 10)\n"
          "  -h, --help           print this help and exit\n"
          "\n"
          "Exit status: 0 success, 1 a configuration failed (the others still ran), 2 usage.\n");
}

/* ---- parsing ---- */

enum {
  OPT_N = 256, OPT_M, OPT_D, OPT_K, OPT_SOLVER, OPT_DEVICE, OPT_STEPS, OPT_WARMUP, OPT_CSV,
  OPT_SKETCH, OPT_RATIO, OPT_REFRESH, OPT_ANISO, OPT_SEED, OPT_KERNELS, OPT_REPS, OPT_CG_MAX,
  OPT_CG_TOL,
};

static const struct option longopts[] = {
    {"n", required_argument, NULL, OPT_N},
    {"m", required_argument, NULL, OPT_M},
    {"d", required_argument, NULL, OPT_D},
    {"k", required_argument, NULL, OPT_K},
    {"solver", required_argument, NULL, OPT_SOLVER},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"steps", required_argument, NULL, OPT_STEPS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"csv", required_argument, NULL, OPT_CSV},
    {"sketch", required_argument, NULL, OPT_SKETCH},
    {"sketch-ratio", required_argument, NULL, OPT_RATIO},
    {"precond-refresh", required_argument, NULL, OPT_REFRESH},
    {"aniso", required_argument, NULL, OPT_ANISO},
    {"seed", required_argument, NULL, OPT_SEED},
    {"kernels", no_argument, NULL, OPT_KERNELS},
    {"reps", required_argument, NULL, OPT_REPS},
    {"cg-max", required_argument, NULL, OPT_CG_MAX},
    {"cg-tol", required_argument, NULL, OPT_CG_TOL},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns -1 to go on, else the exit status. */
static int bench_parse(int argc, char **argv, bench_config *cfg) {
  int c, idx = 0;
  opterr = 0;
  optind = 1;
  while ((c = getopt_long(argc, argv, ":h", longopts, &idx)) != -1) {
    if (c == 'h') {
      bench_usage(stdout);
      return 0;
    }
    if (c == '?' || c == ':') {
      const char *word = optind - 1 >= 1 && optind - 1 < argc ? argv[optind - 1] : "?";
      char flag[64];
      snprintf(flag, sizeof flag, "%.*s", (int)strcspn(word, "="), word);
      if (c == ':') return usage_error("%s: missing value", shown(flag));
      if (optopt && optopt >= 256)
        return usage_error("%s: takes no value", shown(flag));
      return usage_error("%s: unknown option (try 'sketchgn bench --help')", shown(flag));
    }
    char flag[40];
    snprintf(flag, sizeof flag, "--%s", longopts[idx].name);
    int rc = 0, one = 0, cnt = 0;
    int64_t v = 0;
    switch (c) {
    case OPT_N: rc = parse_int_list(flag, optarg, 1, INT_MAX, 0, &cfg->n); break;
    case OPT_M: rc = parse_int_list(flag, optarg, 2, INT_MAX - 1, 1, &cfg->m); break;
    case OPT_D: rc = parse_int_list(flag, optarg, 1, INT_MAX, 0, &cfg->d); break;
    case OPT_K: rc = parse_int_list(flag, optarg, 1, 4096, 0, &cfg->k); break;
    case OPT_SOLVER:
      rc = parse_name_list(flag, optarg, solver_names, 1, cfg->solvers, &cfg->nsolvers, MAX_LIST);
      break;
    case OPT_DEVICE:
      rc = parse_name_list(flag, optarg, device_names, 0, cfg->devices, &cfg->ndevices, 4);
      break;
    case OPT_STEPS: rc = parse_one_int(flag, optarg, 1, 1000000, &cfg->steps); break;
    case OPT_WARMUP: rc = parse_one_int(flag, optarg, 0, 1000000, &cfg->warmup); break;
    case OPT_REPS: rc = parse_one_int(flag, optarg, 1, 1000000, &cfg->reps); break;
    case OPT_CSV:
      if (!optarg[0]) return usage_error("--csv: expected a file name, got ''");
      cfg->csv = optarg;
      break;
    case OPT_SKETCH:
      rc = parse_name_list(flag, optarg, sketch_names, 0, &one, &cnt, 1);
      cfg->opt.sketch = (sgn_sketch)one;
      break;
    case OPT_RATIO:
      rc = parse_double(flag, optarg, 1, "a number >= 1", &cfg->opt.sketch_ratio);
      break;
    case OPT_REFRESH:
      if (strcmp(optarg, "auto") == 0) {
        cfg->opt.refresh = SGN_REFRESH_AUTO;
      } else if (strcmp(optarg, "always") == 0) {
        cfg->opt.refresh = SGN_REFRESH_ALWAYS;
      } else if (isdigit((unsigned char)optarg[0]) && !strchr(optarg, ',') &&
                 parse_one_int(flag, optarg, 1, INT_MAX, &v) == 0) {
        cfg->opt.refresh = SGN_REFRESH_EVERY;
        cfg->opt.refresh_every = (int)v;
      } else {
        return usage_error("%s: expected auto, always or an integer N >= 1, got '%s'", flag,
                           shown(optarg));
      }
      break;
    case OPT_ANISO: rc = parse_double(flag, optarg, 1, "a number >= 1", &cfg->aniso); break;
    case OPT_SEED:
      if (!isdigit((unsigned char)optarg[0]))
        return usage_error("%s: expected an unsigned integer, got '%s'", flag, shown(optarg));
      errno = 0;
      {
        char *end;
        unsigned long long s = strtoull(optarg, &end, 10);
        if (*end || errno == ERANGE)
          return usage_error("%s: expected an unsigned 64-bit integer, got '%s'", flag,
                             shown(optarg));
        cfg->seed = cfg->opt.seed = s;
      }
      break;
    case OPT_KERNELS: cfg->kernels = 1; break;
    case OPT_CG_MAX:
      rc = parse_one_int(flag, optarg, 1, INT_MAX, &v);
      cfg->opt.cg_max = (int)v;
      break;
    case OPT_CG_TOL:
      rc = parse_double(flag, optarg, 0, "a number > 0 and < 1", &cfg->opt.cg_tol);
      if (!rc && !(cfg->opt.cg_tol > 0 && cfg->opt.cg_tol < 1))
        rc = usage_error("%s: expected a number > 0 and < 1, got '%s'", flag, shown(optarg));
      break;
    default: return usage_error("internal error: unhandled option %d", c);
    }
    if (rc) return rc;
  }
  if (optind < argc)
    return usage_error("unexpected argument '%s' (try 'sketchgn bench --help')",
                       shown(argv[optind]));
  return -1;
}

/* ---- statistics ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of v[0..n) (v is reordered). */
static double median(double *v, int64_t n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- output: FILE.tmp renamed at the end, or stdout ---- */

typedef struct csv_out {
  FILE *f;
  char *tmp; /* NULL for stdout */
} csv_out;

static int csv_open(const char *path, const char *header, csv_out *o) {
  o->f = stdout, o->tmp = NULL;
  if (path) {
    o->tmp = malloc(strlen(path) + 5);
    if (!o->tmp) return usage_error("--csv: out of memory");
    sprintf(o->tmp, "%s.tmp", path);
    o->f = fopen(o->tmp, "w");
    if (!o->f) {
      int rc = usage_error("--csv %s: cannot write %s: %s", shown(path), o->tmp, strerror(errno));
      free(o->tmp);
      return rc;
    }
  }
  fprintf(o->f, "%s\n", header);
  fflush(o->f);
  return 0;
}

/* Closes and renames into place; 1 on an I/O error. */
static int csv_close(csv_out *o, const char *path) {
  if (!o->tmp) return fflush(stdout) != 0;
  int bad = ferror(o->f);
  bad |= fclose(o->f) != 0;
  if (bad || rename(o->tmp, path) != 0) {
    fprintf(stderr, "sketchgn bench: --csv %s: write failed: %s\n", path, strerror(errno));
    remove(o->tmp);
    free(o->tmp);
    return 1;
  }
  free(o->tmp);
  return 0;
}

/* ---- timed steps ---- */

typedef struct step_row {
  double step_ms, step_min, step_max, fwd, sk, pc, solve, upd, cg, loss_ratio, flops;
} step_row;

/* Warm-up, save, T restored repetitions. SGN_OK or the failing status (message in
 * sgn_last_error()). */
static sgn_status time_steps(sgn_backend *be, sgn_model *model, const sgn_dataset *ds,
                             const sgn_options *opt, const bench_config *cfg, step_row *row) {
  sgn_session *ses = sgn_session_create(be, model, ds->X, ds->Y, ds->n, opt);
  if (!ses) return sgn_last_status() ? sgn_last_status() : SGN_E_RUNTIME;
  sgn_step_info info;
  sgn_status st = SGN_OK;
  void *blob = NULL;
  size_t bytes = 0;
  const int64_t T = cfg->steps;
  double *v[11];
  for (int i = 0; i < 11; i++) v[i] = calloc((size_t)T, sizeof(double));
  for (int i = 0; i < 11; i++)
    if (!v[i]) st = sgn_fail(SGN_E_RUNTIME, "out of memory");
  for (int64_t w = 0; st == SGN_OK && w < cfg->warmup; w++) st = sgn_session_step(ses, &info);
  if (st == SGN_OK) st = sgn_session_save_state(ses, &blob, &bytes);
  sgn_dims dm = {ds->n, model->d, model->m, model->k, 0};
  for (int64_t t = 0; st == SGN_OK && t < T; t++) {
    st = sgn_session_load_state(ses, blob, bytes);
    if (st == SGN_OK) st = sgn_session_step(ses, &info);
    if (st != SGN_OK) break;
    sgn_cost_step cs = {info.cg_iters, info.refreshed, info.ls_halvings, info.step == 1};
    sgn_cost cost = sgn_costmodel_step(opt->solver, dm, opt, cs);
    double vals[11] = {info.step_ms, info.step_ms, info.step_ms, info.forward_ms,
                       info.sketch_ms, info.precond_ms, info.solve_ms, info.update_ms,
                       info.cg_iters, info.loss_before > 0 ? info.loss / info.loss_before : 1,
                       sgn_cost_flops(&cost)};
    for (int i = 0; i < 11; i++) v[i][t] = vals[i];
  }
  if (st == SGN_OK) {
    double *out[11] = {&row->step_ms, &row->step_min, &row->step_max, &row->fwd, &row->sk,
                       &row->pc, &row->solve, &row->upd, &row->cg, &row->loss_ratio,
                       &row->flops};
    for (int i = 0; i < 11; i++) *out[i] = median(v[i], T);
    row->step_min = v[1][0], row->step_max = v[2][T - 1]; /* sorted by median() */
  }
  for (int i = 0; i < 11; i++) free(v[i]);
  free(blob);
  sgn_session_free(ses);
  return st;
}

/* The backend of the di-th --device, or NULL after saying why on stderr. */
static sgn_backend *open_device(const bench_config *cfg, int di) {
  sgn_backend *be = sgn_backend_open((sgn_device)cfg->devices[di]);
  if (!be) {
    const char *err = sgn_last_error();
    if (strncmp(err, "--device", 8) == 0)
      fprintf(stderr, "sketchgn bench: %s\n", err);
    else
      fprintf(stderr, "sketchgn bench: --device %s: %s\n", device_names[cfg->devices[di]], err);
  }
  return be;
}

static int run_steps(const bench_config *cfg) {
  csv_out out;
  int rc = csv_open(cfg->csv, csv_header, &out);
  if (rc) return rc;
  int failed = 0;
  const int64_t total = (int64_t)cfg->ndevices * cfg->n.count * cfg->d.count * cfg->k.count *
                        cfg->m.count * cfg->nsolvers;
  int64_t done = 0;
  for (int di = 0; di < cfg->ndevices; di++) {
    sgn_backend *be = open_device(cfg, di);
    if (!be) {
      failed = 1;
      done += total / cfg->ndevices;
      continue;
    }
    const char *dev = sgn_backend_name(be);
    sgn_cost_rates rates = sgn_costmodel_rates(dev);
    double mem = (double)be->ops->mem_available(be->ctx);
    for (int ni = 0; ni < cfg->n.count; ni++)
      for (int dj = 0; dj < cfg->d.count; dj++)
        for (int ki = 0; ki < cfg->k.count; ki++) {
          int64_t n = cfg->n.v[ni], d = cfg->d.v[dj], k = cfg->k.v[ki];
          sgn_dataset ds;
          if (sgn_data_synth(n, d, k, cfg->seed, cfg->aniso, &ds) != SGN_OK) {
            fprintf(stderr, "sketchgn bench: synth:n=%" PRId64 ",d=%" PRId64 ",k=%" PRId64
                            ": %s\n", n, d, k, sgn_last_error());
            failed = 1;
            done += cfg->m.count * cfg->nsolvers;
            continue;
          }
          for (int mi = 0; mi < cfg->m.count; mi++) {
            int64_t m = cfg->m.v[mi];
            sgn_model *model = sgn_model_create(d, m, k, SGN_INIT_SYMMETRIC, cfg->seed);
            for (int si = 0; si < cfg->nsolvers; si++) {
              done++;
              char name[64];
              sgn_options opt = cfg->opt;
              sgn_dims dm = {n, d, m, k, 0};
              if (cfg->solvers[si] == SOLVER_AUTO) {
                char reason[400];
                opt.solver = sgn_session_choose_solver(be, dm, &opt, mem, &rates, reason,
                                                       sizeof reason);
                snprintf(name, sizeof name, "auto:%s", solver_names[opt.solver]);
                fprintf(stderr, "sketchgn bench: auto picks %s\n", reason);
              } else {
                opt.solver = (sgn_solver)cfg->solvers[si];
                snprintf(name, sizeof name, "%s", solver_names[opt.solver]);
              }
              step_row row = {0};
              sgn_status st = model ? time_steps(be, model, &ds, &opt, cfg, &row)
                                    : SGN_E_RUNTIME; /* the message is sgn_model_create's */
              if (st != SGN_OK) {
                fprintf(stderr, "sketchgn bench: [%" PRId64 "/%" PRId64 "] %s %s n=%" PRId64
                                " d=%" PRId64 " m=%" PRId64 " k=%" PRId64 ": failed: %s\n",
                        done, total, dev, name, n, d, m, k, sgn_last_error());
                failed = 1;
                continue;
              }
              int64_t nb = opt.batch > 0 && opt.batch < n ? opt.batch : n;
              int64_t s = opt.solver == SGN_SOLVER_GN_SKETCH
                              ? (int64_t)ceil(opt.sketch_ratio * (double)nb) : 0;
              double gflops = row.flops / (row.step_ms * 1e6);
              fprintf(out.f,
                      "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                      ",%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%g,%.6g,%.6g,%.4g\n",
                      name, dev, n, d, m, k, s, row.step_ms, row.step_min, row.step_max, row.fwd,
                      row.sk, row.pc, row.solve, row.upd, row.cg, row.loss_ratio, row.flops,
                      gflops);
              fflush(out.f);
              fprintf(stderr, "sketchgn bench: [%" PRId64 "/%" PRId64 "] %s %s n=%" PRId64
                              " d=%" PRId64 " m=%" PRId64 " k=%" PRId64 ": %.1f ms/step "
                              "(%.1f-%.1f), cg %g, loss x%.3g, %.1f GFLOP/s\n",
                      done, total, dev, name, n, d, m, k, row.step_ms, row.step_min,
                      row.step_max, row.cg, row.loss_ratio, gflops);
            }
            sgn_model_free(model);
          }
          sgn_dataset_free(&ds);
        }
    sgn_backend_close(be);
  }
  if (csv_close(&out, cfg->csv)) failed = 1;
  return failed;
}

/* ---- --kernels ---- */

/* Random host floats: N(0, 1) * scale, or +-1 when sign. */
static float *host_random(int64_t count, uint64_t seed, uint64_t stream, double scale, int sign) {
  float *h = malloc((size_t)count * sizeof(float));
  if (!h) return NULL;
  for (int64_t i = 0; i < count; i++)
    h[i] = sign ? sgn_rng_sign(seed, stream, (uint64_t)i)
                : (float)(scale * sgn_rng_normal(seed, stream, (uint64_t)i));
  return h;
}

typedef struct kernel_bufs {
  float *X, *W, *A, *V, *Gv, *Z, *F, *work, *outj, *outv, *C1, *C2, *C3, *H, *Hc;
} kernel_bufs;

static void kernel_row(csv_out *out, const char *op, const char *dev, sgn_dims dm, double op_ms,
                       double ref_ms, double flops, const char *ref) {
  fprintf(out->f, "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%.6g,%.6g,%.4g,%.4g,"
                  "%.4g,%s\n", op, dev, dm.n, dm.d, dm.m, dm.k, op_ms, ref_ms, ref_ms / op_ms,
          flops / (op_ms * 1e6), flops / (ref_ms * 1e6), ref);
  fflush(out->f);
  fprintf(stderr, "sketchgn bench: %s %-8s n=%" PRId64 " d=%" PRId64 " m=%" PRId64 " k=%" PRId64
                  ": %.3f ms vs %s %.3f ms: ratio %.2f\n",
          dev, op, dm.n, dm.d, dm.m, dm.k, op_ms, ref, ref_ms, ref_ms / op_ms);
}

static int run_kernels_one(sgn_backend *be, sgn_dims dm, const bench_config *cfg,
                           csv_out *out) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mp = sgn_next_pow2(m);
  const char *dev = o->name;
  kernel_bufs b = {0};
  float **ptrs[] = {&b.X, &b.W, &b.A, &b.V, &b.Gv, &b.Z, &b.F, &b.work, &b.outj, &b.outv,
                    &b.C1, &b.C2, &b.C3, &b.H, &b.Hc};
  const int64_t sizes[] = {n * d, m * d, m * k, m * d, n * k, n * m, n * k, n * m, n * k,
                           m * d, n * m, n * k, m * d, n * mp, n * mp};
  const int nbuf = (int)(sizeof sizes / sizeof *sizes);
  int bad = 0;
  for (int i = 0; i < nbuf; i++)
    if (!(*ptrs[i] = o->alloc(c, (size_t)sizes[i] * sizeof(float)))) bad = 1;
  /* inputs: unit-scale X rows, N(0,1) W and V, +-1 A, N(0,1) Gv and H */
  const int inputs[] = {0, 1, 2, 3, 4, 13};
  const double scales[] = {1.0 / sqrt((double)d), 1, 1, 1, 1, 1};
  for (int j = 0; j < 6 && !bad; j++) {
    int i = inputs[j];
    float *h = host_random(sizes[i], cfg->seed, 100 + (uint64_t)i, scales[j], i == 2);
    if (!h) {
      bad = 1;
      break;
    }
    o->upload(c, *ptrs[i], h, (size_t)sizes[i] * sizeof(float));
    free(h);
  }
  if (bad) {
    fprintf(stderr, "sketchgn bench: %s n=%" PRId64 " d=%" PRId64 " m=%" PRId64 ": out of memory\n",
            dev, n, d, m);
    for (int i = 0; i < nbuf; i++)
      if (*ptrs[i]) o->free(c, *ptrs[i]);
    return 1;
  }
  o->forward(c, dm, b.X, b.W, b.A, b.work, (uint32_t *)b.Z, b.F); /* Z holds the bit mask */
  o->sync(c);

  const int64_t R = cfg->reps;
  double *t_op = calloc((size_t)R, sizeof(double)), *t_ref = calloc((size_t)R, sizeof(double));
  if (!t_op || !t_ref) {
    free(t_op), free(t_ref);
    return 1;
  }
  const double prod_flops = 2.0 * (double)n * (double)m * (double)(d + k);
  for (int which = 0; which < 3; which++) {
    /* one untimed round of each, then R alternating timed rounds */
    for (int64_t r = -1; r < R; r++) {
      for (int side = 0; side < 2; side++) {
        double t0 = sgn_now_ms();
        if (which == 0 && side == 0) {
          o->jvp(c, dm, b.X, (const uint32_t *)b.Z, b.A, b.V, b.work, b.outj);
        } else if (which == 0) {
          /* C1 (n, m) = X (n, d) V (m, d)^T; C2 (n, k) = C1 (n, m) A (m, k) */
          o->gemm(c, 0, 1, n, m, d, b.X, d, b.V, d, b.C1, m);
          o->gemm(c, 0, 0, n, k, m, b.C1, m, b.A, k, b.C2, k);
        } else if (which == 1 && side == 0) {
          o->vjp(c, dm, b.X, (const uint32_t *)b.Z, b.A, b.Gv, b.work, b.outv);
        } else if (which == 1) {
          /* C1 (n, m) = Gv (n, k) A (m, k)^T; C3 (m, d) = C1 (n, m)^T X (n, d) */
          o->gemm(c, 0, 1, n, m, k, b.Gv, k, b.A, k, b.C1, m);
          o->gemm(c, 1, 0, m, d, n, b.C1, m, b.X, d, b.C3, d);
        } else if (side == 0) {
          o->hadamard(c, b.H, n, mp);
        } else {
          o->copy(c, b.Hc, b.H, (size_t)(n * mp) * sizeof(float));
        }
        o->sync(c);
        double dt = sgn_now_ms() - t0;
        if (r >= 0) (side ? t_ref : t_op)[r] = dt;
      }
    }
    double op_ms = median(t_op, R), ref_ms = median(t_ref, R);
    if (which == 0) kernel_row(out, "jvp", dev, dm, op_ms, ref_ms, prod_flops, "sgemm");
    if (which == 1) kernel_row(out, "vjp", dev, dm, op_ms, ref_ms, prod_flops, "sgemm");
    if (which == 2) {
      double hf = (double)n * (double)mp * log2((double)mp);
      kernel_row(out, "hadamard", dev, dm, op_ms, ref_ms, hf, "copy");
    }
  }
  free(t_op), free(t_ref);
  for (int i = 0; i < nbuf; i++) o->free(c, *ptrs[i]);
  return 0;
}

static int run_kernels(const bench_config *cfg) {
  csv_out out;
  int rc = csv_open(cfg->csv, kernels_header, &out);
  if (rc) return rc;
  int failed = 0;
  for (int di = 0; di < cfg->ndevices; di++) {
    sgn_backend *be = open_device(cfg, di);
    if (!be) {
      failed = 1;
      continue;
    }
    for (int ni = 0; ni < cfg->n.count; ni++)
      for (int dj = 0; dj < cfg->d.count; dj++)
        for (int mi = 0; mi < cfg->m.count; mi++)
          for (int ki = 0; ki < cfg->k.count; ki++) {
            sgn_dims dm = {cfg->n.v[ni], cfg->d.v[dj], cfg->m.v[mi], cfg->k.v[ki], 0};
            failed |= run_kernels_one(be, dm, cfg, &out);
          }
    sgn_backend_close(be);
  }
  if (csv_close(&out, cfg->csv)) failed = 1;
  return failed;
}

/* ---- entry ---- */

int sgn_bench_main(int argc, char **argv) {
  bench_config cfg = {0};
  cfg.n = (int_list){1, {1024}};
  cfg.m = (int_list){1, {4096}};
  cfg.d = (int_list){1, {32}};
  cfg.k = (int_list){1, {1}};
  cfg.solvers[0] = SGN_SOLVER_GN_SKETCH, cfg.nsolvers = 1;
  cfg.devices[0] = SGN_DEVICE_AUTO, cfg.ndevices = 1;
  cfg.steps = 3, cfg.warmup = 1, cfg.reps = 10;
  cfg.aniso = 1;
  cfg.seed = 1;
  cfg.opt = sgn_options_default();
  int rc = bench_parse(argc, argv, &cfg);
  if (rc >= 0) return rc;
  fflush(stdout);
  return cfg.kernels ? run_kernels(&cfg) : run_steps(&cfg);
}
