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
 *   Gram      n^2 (m + d) (X X^T and M M^T over the upper triangle; M M^T runs as integer
 *             counts and is counted as the float GEMM it replaced); gn-exact with k > 1 adds
 *             k (k - 1)/2 signed M M^T products of n^2 m each (the off-diagonal blocks)
 *   Cholesky  N^3 / 3 with N = n k (gn-exact) or n (gn-gram); solves 2 N^2 per right-hand side
 *   sketch    SRHT: n (m' log2 m' + d' log2 d') + 2 n s (m', d' the powers of two >= m, d);
 *             Gaussian: 2 n s (m + d); SRFT: 2.5 n (m log2 m + d log2 d) + 2 n s (real FFTs,
 *             unpadded); CountSketch: n (m + 2 d) + 7.5 n s log2 s + 3 n s (three FFTs of length s)
 *   sketch R  n (n + 1) s for Y Y^T (float64 DSYRK, or float32 sums at --precision fp32, tf32,
 *             bf16) plus n^3 / 3 for its Cholesky
 *   update    J^T g plus one forward per line-search trial
 *   gd        J^T r plus the trial forwards (step 1 adds 30 power iterations of J J^T);
 *   adam      an epoch: forward and J^T g over all n rows, then a full forward.
 * gflops = flops / step_ms (median). Phase times are the step's own (sgn_step_info).
 *
 * --kernels: for each (n, d, m, k), J v and J^T g (the backend's ops, random data) alternate with
 * plain SGEMMs of the two shapes each op contains, and the Hadamard transform of n rows of length
 * m' alternates with a copy of the same bytes; medians over --reps; ratio = reference time / op
 * time (1.0: the op runs as fast as the bare GEMMs or the copy). With --gram, the Gram of the
 * (n, n) block (X X^T and the integer counts M M^T, scattered and mirrored) alternates with an
 * SSYRK of an (n, m) float matrix, the mask's shape (the float path the counts replaced; on a GPU
 * an SGEMM of the same shape, which has no SSYRK in the ops table); flops n^2 m for both. Then,
 * once per (n, k) (at the first d and m of the lists), the preconditioner: r_inverse (R^-1, once
 * per preconditioner) against the Cholesky that makes R, both n^3 / 3 flops, and "apply", the
 * PCG iteration's (R^T R)^-1 v as two products with R^-1 (rinv_apply), against rtr_solve's two
 * triangular solves, both 2 n^2 k flops; and with --precision, the sketch Gram Y Y^T (s = ratio n,
 * n (n + 1) s flops) at each listed precision but fp64 against fp64's float64 DSYRK.
 *
 * --largest-n: no timing; for each (device, d, k, m, solver), the largest n whose session fits
 * SGN_COSTMODEL_MEM_MARGIN (85%) of --max-memory, counted by the session's own buffer list with
 * the backend's workspace sizes (sgn_session_max_n), at the narrowest neuron chunk the session
 * would take. gn-gram with k > 1 gets a second row for separate outputs (the k float32 Gram
 * blocks) where the width allows them (m a multiple of 64 k). */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"
#include "commands.h"
#include "costmodel.h"
#include "data.h"
#include "hadamard.h"
#include "opts.h"
#include "rng.h"
#include "session.h"
#include "util.h"


static const char *const csv_header =
    "solver,device,n,d,m,k,s,step_ms,step_ms_min,step_ms_max,forward_ms,sketch_ms,precond_ms,"
    "solve_ms,update_ms,cg_iters,loss_ratio,flops,gflops,precision,product_precision";
static const char *const kernels_header =
    "op,device,n,d,m,k,op_ms,ref_ms,ratio,op_gflops,ref_gflops,ref";
static const char *const largest_n_header = "solver,device,d,m,k,outputs,memory,max_n,bytes";

typedef struct bench_config {
  opt_list n, m, d, k;
  opt_list solvers;    /* sgn_solver values (SGN_SOLVER_AUTO: the cost model's pick) */
  opt_list devices;    /* sgn_device values */
  opt_list precisions; /* sgn_precision values: gn-sketch (and auto) rows per value; --kernels:
                          the sketch Gram at each value but fp64, against fp64 */
  opt_list product_precisions; /* sgn_precision values of the products: rows per value for
                                  every solver; --kernels: J v and J^T g at each value but fp32,
                                  against fp32 */
  int64_t steps, warmup, reps;
  const char *csv;
  double aniso;
  uint64_t seed;
  sgn_options opt; /* sketch, ratio, refresh, CG, memory, seed */
  int kernels;
  int gram;      /* --kernels: the Gram row too */
  int largest_n; /* --largest-n: the largest n per configuration instead of timings */
} bench_config;

/* A usage-like failure while setting up the output: one line, exit status 2. */
__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return opts_error("bench", "%s", msg);
}

/* A user string cut to fit an error message. */
static const char *shown(const char *s) {
  static char buf[64];
  return opts_shown(s, buf, sizeof buf);
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
  sgn_dims dm = {ds->n,    model->d, model->m,
                 model->k, 0,        sgn_model_is_separate(model) ? model->k : 0};
  for (int64_t t = 0; st == SGN_OK && t < T; t++) {
    st = sgn_session_load_state(ses, blob, bytes);
    if (st == SGN_OK) st = sgn_session_step(ses, &info);
    if (st != SGN_OK) break;
    sgn_cost_step cs = {info.cg_iters, info.refreshed, info.ls_halvings, info.step == 1};
    sgn_cost cost = sgn_costmodel_step(opt->solver, dm, opt, cs);
    double vals[11] = {
        info.step_ms,         info.step_ms,
        info.step_ms,         info.forward_ms,
        info.sketch_ms,       info.precond_ms,
        info.solve_ms,        info.update_ms,
        info.cg_iters,        info.loss_before > 0 ? info.loss / info.loss_before : 1,
        sgn_cost_flops(&cost)};
    for (int i = 0; i < 11; i++) v[i][t] = vals[i];
  }
  if (st == SGN_OK) {
    double *out[11] = {&row->step_ms, &row->step_min,   &row->step_max, &row->fwd,
                       &row->sk,      &row->pc,         &row->solve,    &row->upd,
                       &row->cg,      &row->loss_ratio, &row->flops};
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
  sgn_backend *be = sgn_backend_open((sgn_device)cfg->devices.v[di]);
  if (!be) {
    const char *err = sgn_last_error();
    if (strncmp(err, "--device", 8) == 0) fprintf(stderr, "sketchgn bench: %s\n", err);
    else
      fprintf(stderr, "sketchgn bench: --device %s: %s\n",
              sgn_name(SGN_NAMES_DEVICE, (int)cfg->devices.v[di]), err);
  }
  return be;
}

/* The precisions the si-th solver runs at: every listed one for gn-sketch and auto (which may
 * pick it), the first alone for the solvers that form no sketch Gram. */
static int solver_precisions(const bench_config *cfg, int si) {
  const int64_t v = cfg->solvers.v[si];
  return v == SGN_SOLVER_GN_SKETCH || v == SGN_SOLVER_AUTO ? cfg->precisions.count : 1;
}

static int run_steps(const bench_config *cfg) {
  csv_out out;
  int rc = csv_open(cfg->csv, csv_header, &out);
  if (rc) return rc;
  int failed = 0;
  int64_t runs = 0; /* per (device, n, d, k, m): gn-sketch and auto once per precision, every
                       solver once per product precision */
  for (int si = 0; si < cfg->solvers.count; si++) runs += solver_precisions(cfg, si);
  runs *= cfg->product_precisions.count;
  const int64_t total = (int64_t)cfg->devices.count * cfg->n.count * cfg->d.count * cfg->k.count *
                        cfg->m.count * runs;
  int64_t done = 0;
  for (int di = 0; di < cfg->devices.count; di++) {
    sgn_backend *be = open_device(cfg, di);
    if (!be) {
      failed = 1;
      done += total / cfg->devices.count;
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
            fprintf(stderr, "sketchgn bench: synth:n=%" PRId64 ",d=%" PRId64 ",k=%" PRId64 ": %s\n",
                    n, d, k, sgn_last_error());
            failed = 1;
            done += cfg->m.count * runs;
            continue;
          }
          for (int mi = 0; mi < cfg->m.count; mi++) {
            int64_t m = cfg->m.v[mi];
            sgn_model *model = sgn_model_create(d, m, k, SGN_INIT_SYMMETRIC, cfg->seed);
            for (int si = 0; si < cfg->solvers.count; si++)
              for (int ri = 0; ri < solver_precisions(cfg, si) * cfg->product_precisions.count;
                   ri++) {
                const int pi = ri / cfg->product_precisions.count;
                done++;
                char name[64];
                sgn_options opt = cfg->opt;
                opt.precision = (sgn_precision)cfg->precisions.v[pi];
                opt.product_precision =
                    (sgn_precision)cfg->product_precisions.v[ri % cfg->product_precisions.count];
                const char *pprec = sgn_name(SGN_NAMES_PRECISION, opt.product_precision);
                sgn_dims dm = {n, d, m, k, 0, 0};
                if (cfg->solvers.v[si] == SGN_SOLVER_AUTO) {
                  char reason[400];
                  opt.solver = sgn_session_choose_solver(be, dm, &opt, mem, &rates, reason,
                                                         sizeof reason);
                  snprintf(name, sizeof name, "auto:%s", sgn_name(SGN_NAMES_SOLVER, opt.solver));
                  fprintf(stderr, "sketchgn bench: auto picks %s\n", reason);
                } else {
                  opt.solver = (sgn_solver)cfg->solvers.v[si];
                  snprintf(name, sizeof name, "%s", sgn_name(SGN_NAMES_SOLVER, opt.solver));
                }
                /* the precision shown on stderr where the solver forms a sketch Gram */
                const char *prec = sgn_name(SGN_NAMES_PRECISION, opt.precision);
                const int sketch = opt.solver == SGN_SOLVER_GN_SKETCH;
                step_row row = {0};
                sgn_status st = model ? time_steps(be, model, &ds, &opt, cfg, &row)
                                      : SGN_E_RUNTIME; /* the message is sgn_model_create's */
                if (st != SGN_OK) {
                  fprintf(stderr,
                          "sketchgn bench: [%" PRId64 "/%" PRId64
                          "] %s %s%s%s products %s n=%" PRId64 " d=%" PRId64 " m=%" PRId64
                          " k=%" PRId64 ": failed: %s\n",
                          done, total, dev, name, sketch ? " " : "", sketch ? prec : "", pprec, n,
                          d, m, k, sgn_last_error());
                  failed = 1;
                  continue;
                }
                int64_t nb = opt.batch > 0 && opt.batch < n ? opt.batch : n;
                int64_t s = sketch ? (int64_t)ceil(opt.sketch_ratio * (double)nb) : 0;
                double gflops = row.flops / (row.step_ms * 1e6);
                fprintf(out.f,
                        "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
                        ",%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,%g,%.6g,%.6g,%.4g,%s,%s\n",
                        name, dev, n, d, m, k, s, row.step_ms, row.step_min, row.step_max, row.fwd,
                        row.sk, row.pc, row.solve, row.upd, row.cg, row.loss_ratio, row.flops,
                        gflops, prec, pprec);
                fflush(out.f);
                fprintf(stderr,
                        "sketchgn bench: [%" PRId64 "/%" PRId64 "] %s %s%s%s products %s n=%" PRId64
                        " d=%" PRId64 " m=%" PRId64 " k=%" PRId64
                        ": %.1f ms/step "
                        "(%.1f-%.1f), cg %g, loss x%.3g, %.1f GFLOP/s\n",
                        done, total, dev, name, sketch ? " " : "", sketch ? prec : "", pprec, n, d,
                        m, k, row.step_ms, row.step_min, row.step_max, row.cg, row.loss_ratio,
                        gflops);
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
  fprintf(out->f,
          "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
          ",%.6g,%.6g,%.4g,%.4g,"
          "%.4g,%s\n",
          op, dev, dm.n, dm.d, dm.m, dm.k, op_ms, ref_ms, ref_ms / op_ms, flops / (op_ms * 1e6),
          flops / (ref_ms * 1e6), ref);
  fflush(out->f);
  fprintf(stderr,
          "sketchgn bench: %s %-8s n=%" PRId64 " d=%" PRId64 " m=%" PRId64 " k=%" PRId64
          ": %.3f ms vs %s %.3f ms: ratio %.2f\n",
          dev, op, dm.n, dm.d, dm.m, dm.k, op_ms, ref, ref_ms, ref_ms / op_ms);
}

/* The Gram row: gram (full = 0) on X and the mask in b->Z against SSYRK (CPU) or SGEMM (other
 * devices) of C1 (n, m) into an (n, n) float buffer; R timed rounds, after one untimed. */
static int run_gram_row(sgn_backend *be, sgn_dims dm, const kernel_bufs *b, int64_t R, double *t_op,
                        double *t_ref, csv_out *out) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  const int64_t n = dm.n, m = dm.m;
  const int cpu = strcmp(o->name, "cpu") == 0;
  double *G = o->alloc(c, (size_t)(n * n) * sizeof(double));
  float *S = o->alloc(c, (size_t)(n * n) * sizeof(float));
  if (!G || !S) {
    fprintf(stderr, "sketchgn bench: %s gram n=%" PRId64 ": out of memory\n", o->name, n);
    if (G) o->free(c, G);
    if (S) o->free(c, S);
    return 1;
  }
  for (int64_t r = -1; r < R; r++) {
    for (int side = 0; side < 2; side++) {
      double t0 = sgn_now_ms();
      if (side == 0) {
        o->gram(c, dm, b->X, (const uint32_t *)b->Z, b->A, 0, b->work, G);
      } else if (cpu) { /* S (n, n) upper = C1 (n, m) C1^T */
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)m, 1.0f, b->C1, (int)m,
                    0.0f, S, (int)n);
      } else { /* S (n, n) = C1 (n, m) C1 (n, m)^T */
        o->gemm(c, 0, 1, n, n, m, b->C1, m, b->C1, m, S, n);
      }
      o->sync(c);
      double dt = sgn_now_ms() - t0;
      if (r >= 0) (side ? t_ref : t_op)[r] = dt;
    }
  }
  kernel_row(out, "gram", o->name, dm, median(t_op, R), median(t_ref, R),
             (double)n * (double)n * (double)m, cpu ? "ssyrk" : "sgemm");
  o->free(c, G), o->free(c, S);
  return 0;
}

/* The preconditioner's rows, on one (n, n) factor: r_inverse (R^-1 in place) against the
 * Cholesky that makes R, both n^3 / 3 flops, and rinv_apply (two products with R^-1) against
 * rtr_solve (two triangular solves) on k right-hand sides, both 2 n^2 k flops (a GEMV over the
 * whole square on the GPU does twice that). G = 2 I + U / n with U symmetric,
 * uniform in [-1, 1]: diagonally dominant, cond(G) <= 3. Each timed op works on a fresh copy
 * (in place), the copy untimed; R timed rounds of each pair after one untimed. */
static int run_apply_rows(sgn_backend *be, sgn_dims dm, const bench_config *cfg, int64_t R,
                          double *t_op, double *t_ref, csv_out *out) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  const int64_t n = dm.n, k = dm.k;
  const size_t nn = (size_t)n * (size_t)n, nk = (size_t)n * (size_t)k;
  double *hG = malloc(nn * sizeof(double)), *hV = malloc(nk * sizeof(double));
  double *G = o->alloc(c, nn * sizeof(double)), *Rf64 = o->alloc(c, nn * sizeof(double));
  double *S = o->alloc(c, nn * sizeof(double)), *V0 = o->alloc(c, nk * sizeof(double));
  double *V = o->alloc(c, nk * sizeof(double)), *work = o->alloc(c, nk * sizeof(double));
  void *cw = o->alloc(c, o->cholesky_work_bytes(c, n) + 1);
  void *iw = o->alloc(c, o->r_inverse_work_bytes(c, n) + 1);
  void *bufs[] = {G, Rf64, S, V0, V, work, cw, iw};
  int bad = !hG || !hV;
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) bad |= !bufs[i];
  if (!bad) {
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = i; j < n; j++) {
        const double u = 2.0 * sgn_rng_uniform(cfg->seed, 120, (uint64_t)(i * n + j)) - 1.0;
        hG[i * n + j] = hG[j * n + i] = i == j ? 2.0 : u / (double)n;
      }
    for (size_t e = 0; e < nk; e++) hV[e] = sgn_rng_normal(cfg->seed, 121, e);
    o->upload(c, G, hG, nn * sizeof(double));
    o->upload(c, V0, hV, nk * sizeof(double));
    o->copy(c, Rf64, G, nn * sizeof(double));
    bad = o->cholesky(c, n, Rf64, 0.0, cw) != 0;
  }
  for (int which = 0; which < 2 && !bad; which++) {
    for (int64_t r = -1; r < R && !bad; r++) {
      for (int side = 0; side < 2; side++) {
        if (which == 0) o->copy(c, S, side == 0 ? Rf64 : G, nn * sizeof(double));
        else o->copy(c, V, V0, nk * sizeof(double));
        o->sync(c);
        double t0 = sgn_now_ms();
        if (which == 0 && side == 0) bad |= o->r_inverse(c, n, S, iw) != 0;
        else if (which == 0) bad |= o->cholesky(c, n, S, 0.0, cw) != 0;
        else if (side == 0) o->rinv_apply(c, n, k, S, V, work);
        else o->rtr_solve(c, n, k, Rf64, V);
        o->sync(c);
        double dt = sgn_now_ms() - t0;
        if (r >= 0) (side ? t_ref : t_op)[r] = dt;
      }
    }
    if (bad) break;
    if (which == 0) { /* S = R^-1 for the apply */
      o->copy(c, S, Rf64, nn * sizeof(double));
      bad = o->r_inverse(c, n, S, iw) != 0;
      kernel_row(out, "r_inverse", o->name, dm, median(t_op, R), median(t_ref, R),
                 (double)n * (double)n * (double)n / 3.0, "cholesky");
    } else {
      kernel_row(out, "apply", o->name, dm, median(t_op, R), median(t_ref, R),
                 2.0 * (double)n * (double)n * (double)k, "rtr_solve");
    }
  }
  bad |= sgn_backend_error(be) != NULL;
  if (bad)
    fprintf(stderr, "sketchgn bench: %s apply n=%" PRId64 ": %s\n", o->name, n,
            sgn_backend_error(be) ? sgn_backend_error(be) : "out of memory or not factored");
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
    if (bufs[i]) o->free(c, bufs[i]);
  free(hG), free(hV);
  return bad;
}

/* The sketch Gram's rows: sketch_gram of Y (n, s), s = ceil(ratio n), N(0, 1 / s) entries, at
 * each listed precision but fp64 against sketch_gram at fp64 (float64 DSYRK panels), n (n + 1) s
 * flops each; R timed rounds of each pair after one untimed. */
static int run_sketch_gram_rows(sgn_backend *be, sgn_dims dm, const bench_config *cfg, int64_t R,
                                double *t_op, double *t_ref, csv_out *out) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  const int64_t n = dm.n, s = (int64_t)ceil(cfg->opt.sketch_ratio * (double)n);
  int bad = 0;
  for (int pi = 0; pi < cfg->precisions.count && !bad; pi++) {
    const sgn_precision p = (sgn_precision)cfg->precisions.v[pi];
    if (p == SGN_PRECISION_FP64) continue;
    size_t wb = o->sketch_r_work_bytes(c, n, s, p),
           wb64 = o->sketch_r_work_bytes(c, n, s, SGN_PRECISION_FP64);
    float *h = host_random(n * s, cfg->seed, 122, 1.0 / sqrt((double)s), 0);
    float *Y = o->alloc(c, (size_t)(n * s) * sizeof(float));
    double *G = o->alloc(c, (size_t)(n * n) * sizeof(double));
    void *w = o->alloc(c, (wb > wb64 ? wb : wb64) + 1);
    bad = !h || !Y || !G || !w;
    if (!bad) o->upload(c, Y, h, (size_t)(n * s) * sizeof(float));
    for (int64_t r = -1; r < R && !bad; r++)
      for (int side = 0; side < 2; side++) {
        o->sync(c);
        double t0 = sgn_now_ms();
        o->sketch_gram(c, n, s, Y, side ? SGN_PRECISION_FP64 : p, w, G);
        o->sync(c);
        double dt = sgn_now_ms() - t0;
        if (r >= 0) (side ? t_ref : t_op)[r] = dt;
      }
    bad |= sgn_backend_error(be) != NULL;
    if (!bad) {
      char op[32];
      snprintf(op, sizeof op, "sketch_gram:%s", sgn_name(SGN_NAMES_PRECISION, p));
      kernel_row(out, op, o->name, dm, median(t_op, R), median(t_ref, R),
                 (double)n * (double)(n + 1) * (double)s, "sketch_gram:fp64");
    } else {
      fprintf(stderr, "sketchgn bench: %s sketch_gram n=%" PRId64 " s=%" PRId64 ": %s\n", o->name,
              n, s, sgn_backend_error(be) ? sgn_backend_error(be) : "out of memory");
    }
    free(h);
    if (Y) o->free(c, Y);
    if (G) o->free(c, G);
    if (w) o->free(c, w);
  }
  return bad;
}

/* The products' rows: J v and J^T g (on the mask in b->Z) at each listed product precision but
 * fp32 against themselves at fp32, the backend's precision set before each call (tf32 and bf16
 * emulated on the CPU: rounded copies, not faster), 2 n m (d + k) flops each; R timed rounds of
 * each pair after one untimed. */
static int run_product_rows(sgn_backend *be, sgn_dims dm, const bench_config *cfg,
                            const kernel_bufs *b, int64_t R, double *t_op, double *t_ref,
                            csv_out *out) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  const double flops = 2.0 * (double)dm.n * (double)dm.m * (double)(dm.d + dm.k);
  int bad = 0;
  for (int pi = 0; pi < cfg->product_precisions.count && !bad; pi++) {
    const sgn_precision p = (sgn_precision)cfg->product_precisions.v[pi];
    if (p == SGN_PRECISION_FP32) continue;
    for (int which = 0; which < 2 && !bad; which++) {
      for (int64_t r = -1; r < R && !bad; r++)
        for (int side = 0; side < 2; side++) {
          bad |= sgn_backend_set_product_precision(be, side ? SGN_PRECISION_FP32 : p);
          o->sync(c);
          double t0 = sgn_now_ms();
          if (which == 0) o->jvp(c, dm, b->X, (const uint32_t *)b->Z, b->A, b->V, b->work, b->outj);
          else o->vjp(c, dm, b->X, (const uint32_t *)b->Z, b->A, b->Gv, b->work, b->outv);
          o->sync(c);
          double dt = sgn_now_ms() - t0;
          if (r >= 0) (side ? t_ref : t_op)[r] = dt;
        }
      (void)sgn_backend_set_product_precision(be, SGN_PRECISION_FP32);
      bad |= sgn_backend_error(be) != NULL;
      const char *name = which ? "vjp" : "jvp";
      if (!bad) {
        char op[32], ref[32];
        snprintf(op, sizeof op, "%s:%s", name, sgn_name(SGN_NAMES_PRECISION, p));
        snprintf(ref, sizeof ref, "%s:fp32", name);
        kernel_row(out, op, o->name, dm, median(t_op, R), median(t_ref, R), flops, ref);
      } else {
        fprintf(stderr, "sketchgn bench: %s %s n=%" PRId64 ": %s\n", o->name, name, dm.n,
                sgn_backend_error(be) ? sgn_backend_error(be) : "no such product precision");
      }
    }
  }
  return bad;
}

/* The rows of one (n, d, m, k); the preconditioner's (which depend on n and k only) where
 * apply_rows. */
static int run_kernels_one(sgn_backend *be, sgn_dims dm, const bench_config *cfg, int apply_rows,
                           csv_out *out) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mp = sgn_next_pow2(m);
  const char *dev = o->name;
  kernel_bufs b = {0};
  float **ptrs[] = {&b.X,    &b.W,    &b.A,  &b.V,  &b.Gv, &b.Z, &b.F, &b.work,
                    &b.outj, &b.outv, &b.C1, &b.C2, &b.C3, &b.H, &b.Hc};
  const int64_t sizes[] = {n * d, m * d, m * k, m * d, n * k, n * m,  n * k, n * m,
                           n * k, m * d, n * m, n * k, m * d, n * mp, n * mp};
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
  int failed = run_product_rows(be, dm, cfg, &b, R, t_op, t_ref, out);
  if (cfg->gram) failed |= run_gram_row(be, dm, &b, R, t_op, t_ref, out);
  if (apply_rows) failed |= run_apply_rows(be, dm, cfg, R, t_op, t_ref, out);
  if (apply_rows && dm.k == cfg->k.v[0])
    failed |= run_sketch_gram_rows(be, dm, cfg, R, t_op, t_ref, out);
  free(t_op), free(t_ref);
  for (int i = 0; i < nbuf; i++) o->free(c, *ptrs[i]);
  return failed;
}

static int run_kernels(const bench_config *cfg) {
  csv_out out;
  int rc = csv_open(cfg->csv, kernels_header, &out);
  if (rc) return rc;
  int failed = 0;
  for (int di = 0; di < cfg->devices.count; di++) {
    sgn_backend *be = open_device(cfg, di);
    if (!be) {
      failed = 1;
      continue;
    }
    for (int ni = 0; ni < cfg->n.count; ni++)
      for (int dj = 0; dj < cfg->d.count; dj++)
        for (int mi = 0; mi < cfg->m.count; mi++)
          for (int ki = 0; ki < cfg->k.count; ki++) {
            sgn_dims dm = {cfg->n.v[ni], cfg->d.v[dj], cfg->m.v[mi], cfg->k.v[ki], 0, 0};
            failed |= run_kernels_one(be, dm, cfg, dj == 0 && mi == 0, &out);
          }
    sgn_backend_close(be);
  }
  if (csv_close(&out, cfg->csv)) failed = 1;
  return failed;
}

/* ---- --largest-n ---- */

/* One row: the largest n of solver opt->solver at dm (dm.n ignored) within the margin. */
static void largest_n_row(sgn_backend *be, sgn_dims dm, const sgn_options *opt, double memory,
                          csv_out *out) {
  dm.n = sgn_session_max_n(be, dm, opt, SGN_COSTMODEL_MEM_MARGIN * memory);
  const size_t bytes = dm.n > 0 ? sgn_session_mem_bytes_min(be, dm, opt) : 0;
  fprintf(out->f, "%s,%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%s,%.0f,%" PRId64 ",%zu\n",
          sgn_name(SGN_NAMES_SOLVER, opt->solver), sgn_backend_name(be), dm.d, dm.m, dm.k,
          dm.heads ? "separate" : "shared", memory, dm.n, bytes);
}

static int run_largest_n(const bench_config *cfg) {
  if (!(cfg->opt.max_memory > 0))
    return usage_error("--largest-n: give the memory with --max-memory");
  for (int si = 0; si < cfg->solvers.count; si++)
    if (cfg->solvers.v[si] == SGN_SOLVER_AUTO)
      return usage_error("--largest-n: name the solvers (auto picks by time at a given n)");
  csv_out out;
  int rc = csv_open(cfg->csv, largest_n_header, &out);
  if (rc) return rc;
  int failed = 0;
  for (int di = 0; di < cfg->devices.count; di++) {
    sgn_backend *be = open_device(cfg, di);
    if (!be) {
      failed = 1;
      continue;
    }
    for (int dj = 0; dj < cfg->d.count; dj++)
      for (int ki = 0; ki < cfg->k.count; ki++)
        for (int mi = 0; mi < cfg->m.count; mi++)
          for (int si = 0; si < cfg->solvers.count; si++) {
            sgn_options opt = cfg->opt;
            opt.solver = (sgn_solver)cfg->solvers.v[si];
            sgn_dims dm = {0, cfg->d.v[dj], cfg->m.v[mi], cfg->k.v[ki], 0, 0};
            largest_n_row(be, dm, &opt, cfg->opt.max_memory, &out);
            dm.heads = dm.k;
            if (opt.solver == SGN_SOLVER_GN_GRAM && sgn_heads_solve(dm))
              largest_n_row(be, dm, &opt, cfg->opt.max_memory, &out);
          }
    if (sgn_check_backend(be)) {
      fprintf(stderr, "sketchgn bench: %s\n", sgn_last_error());
      failed = 1;
    }
    sgn_backend_close(be);
  }
  if (csv_close(&out, cfg->csv)) failed = 1;
  return failed;
}

/* ---- sketchgn bench: the options ---- */

static const opt_spec opt_n = {
    .name = "n", .kind = OPT_INT, .arg = "N", .lo = 1, .hi = INT_MAX, .help = "samples"};
static const opt_spec opt_m = {.name = "m",
                               .kind = OPT_INT,
                               .arg = "M",
                               .lo = 2,
                               .hi = INT_MAX - 1,
                               .even = 1,
                               .help = "hidden width, even (the symmetric model mirrors pairs)"};
static const opt_spec opt_d = {
    .name = "d", .kind = OPT_INT, .arg = "D", .lo = 1, .hi = INT_MAX, .help = "input dimension"};
static const opt_spec opt_k = {
    .name = "k", .kind = OPT_INT, .arg = "K", .lo = 1, .hi = 4096, .help = "outputs"};
static const opt_spec opt_bench_steps = {.name = "steps",
                                         .kind = OPT_INT,
                                         .arg = "T",
                                         .lo = 1,
                                         .hi = 1000000,
                                         .help = "timed repetitions per configuration"};
static const opt_spec opt_warmup = {.name = "warmup",
                                    .kind = OPT_INT,
                                    .arg = "W",
                                    .lo = 0,
                                    .hi = 1000000,
                                    .help = "steps before the timed one"};
static const opt_spec opt_csv = {.name = "csv",
                                 .kind = OPT_STRING,
                                 .arg = "FILE",
                                 .what = "a file name",
                                 .help = "write the CSV to FILE (via FILE.tmp)",
                                 .dflt = "stdout"};
static const opt_spec opt_aniso = {.name = "aniso",
                                   .kind = OPT_REAL,
                                   .arg = "A",
                                   .rlo = 1,
                                   .rhi = INFINITY,
                                   .hi_open = 1,
                                   .help = "input anisotropy of the synthetic task, >= 1"};
static const opt_spec opt_kernels = {
    .name = "kernels",
    .kind = OPT_FLAG,
    .help =
        "time J v, J^T g and the Hadamard transform against SGEMM and a copy, R^-1 against "
        "the Cholesky and the preconditioner's two products against its triangular solves "
        "instead; CSV: op, device, n, d, m, k, op_ms, ref_ms, ratio (ref_ms / op_ms), "
        "op_gflops, ref_gflops, ref"};
static const opt_spec opt_reps = {.name = "reps",
                                  .kind = OPT_INT,
                                  .arg = "R",
                                  .lo = 1,
                                  .hi = 1000000,
                                  .help = "--kernels: alternating repetitions"};

static const opt_spec opt_gram = {
    .name = "gram",
    .kind = OPT_FLAG,
    .help =
        "--kernels: also time the Gram (integer mask counts) against an SSYRK of the "
        "mask's shape (n, m) (an SGEMM on a GPU)"};

static const opt_spec opt_largest_n = {
    .name = "largest-n",
    .kind = OPT_FLAG,
    .help =
        "print the largest n whose session fits 85% of --max-memory instead of timing "
        "(no n list); CSV: solver, device, d, m, k, outputs, memory, max_n, bytes"};

static void bench_defaults(bench_config *cfg) {
  cfg->n = (opt_list){1, {1024}};
  cfg->m = (opt_list){1, {4096}};
  cfg->d = (opt_list){1, {32}};
  cfg->k = (opt_list){1, {1}};
  cfg->solvers = (opt_list){1, {SGN_SOLVER_GN_SKETCH}};
  cfg->devices = (opt_list){1, {SGN_DEVICE_AUTO}};
  cfg->precisions = (opt_list){1, {SGN_PRECISION_FP64}};
  cfg->product_precisions = (opt_list){1, {SGN_PRECISION_FP32}};
  cfg->steps = 3, cfg->warmup = 1, cfg->reps = 10;
  cfg->csv = NULL;
  cfg->aniso = 1;
  cfg->seed = 1;
  cfg->opt = sgn_options_default();
  cfg->kernels = 0;
  cfg->gram = 0;
  cfg->largest_n = 0;
}

int sgn_cmd_bench(int argc, char **argv) {
  bench_config cfg = {0};
  sgn_options *o = &cfg.opt;
  opt_entry opts[] = {
      {.spec = &opt_n, .dst = &cfg.n, .list = OPT_LIST_MAX},
      {.spec = &opt_m, .dst = &cfg.m, .list = OPT_LIST_MAX},
      {.spec = &opt_d, .dst = &cfg.d, .list = OPT_LIST_MAX},
      {.spec = &opt_k, .dst = &cfg.k, .list = OPT_LIST_MAX},
      {.spec = &opt_solver,
       .dst = &cfg.solvers,
       .list = OPT_LIST_MAX,
       .help = "solvers to time; auto: the cost model's choice"},
      {.spec = &opt_device,
       .dst = &cfg.devices,
       .list = 4,
       .help = "backends to time, one after the other"},
      {.spec = &opt_bench_steps, .dst = &cfg.steps},
      {.spec = &opt_warmup, .dst = &cfg.warmup},
      {.spec = &opt_csv, .dst = &cfg.csv},
      {.spec = &opt_sketch, .dst = &o->sketch},
      {.spec = &opt_sketch_ratio, .dst = &o->sketch_ratio},
      {.spec = &opt_precision,
       .dst = &cfg.precisions,
       .list = SGN_PRECISION_BF16 + 1,
       .help = "gn-sketch's sketch Gram arithmetic, a row per value (other solvers run the first "
               "alone; --largest-n counts the first); --kernels: the sketch Gram at each value "
               "but fp64 against fp64 (tf32 and bf16 emulated on the CPU, at fp32 speed)"},
      {.spec = &opt_product_precision,
       .dst = &cfg.product_precisions,
       .list = SGN_PRECISION_BF16,
       .help = "the products' GEMM inputs, a row per value for every solver (--largest-n "
               "ignores it); --kernels: J v and J^T g at each value but fp32 against fp32 "
               "(tf32 and bf16 emulated on the CPU, at fp32 speed)"},
      {.spec = &opt_refresh, .dst = o, .help = "as for train", .dflt = "the solver's"},
      {.spec = &opt_cg_max, .dst = &o->cg_max},
      {.spec = &opt_cg_tol, .dst = &o->cg_tol},
      {.spec = &opt_max_memory, .dst = &o->max_memory},
      {.spec = &opt_chunk_neurons, .dst = &o->chunk_neurons},
      {.spec = &opt_aniso, .dst = &cfg.aniso},
      {.spec = &opt_seed, .dst = &cfg.seed, .help = "data, model and sketch seed"},
      {.spec = &opt_kernels, .dst = &cfg.kernels},
      {.spec = &opt_reps, .dst = &cfg.reps},
      {.spec = &opt_gram, .dst = &cfg.gram},
      {.spec = &opt_largest_n, .dst = &cfg.largest_n},
  };
  opt_cmd cmd = {
      "bench",
      "usage: sketchgn bench [--n LIST] [--m LIST] [--d LIST] [--k LIST] [--solver LIST]\n"
      "                      [--device LIST] [options]\n"
      "       sketchgn bench --kernels [--n LIST] [--m LIST] [--d LIST] [--k LIST]\n"
      "                      [--device LIST] [--reps R] [--gram] [--precision LIST]\n"
      "                      [--product-precision LIST] [--csv FILE]\n"
      "       sketchgn bench --largest-n --max-memory SIZE [--m LIST] [--d LIST] [--k LIST]\n"
      "                      [--solver LIST] [--device LIST] [--csv FILE]\n"
      "\n"
      "Times training steps for every combination of the lists (comma-separated) on a\n"
      "synthetic task (synth:n=N,d=D,k=K) and a symmetric model of width M, and writes one\n"
      "CSV row per configuration: solver, device, n, d, m, k, s, step_ms (median),\n"
      "step_ms_min, step_ms_max, forward_ms, sketch_ms, precond_ms, solve_ms, update_ms,\n"
      "cg_iters (medians), loss_ratio (after / before the step), flops, gflops, precision,\n"
      "product_precision.\n"
      "Each timed step restarts from the state after the warm-up steps. One progress line\n"
      "per configuration goes to stderr. 'auto' in --solver runs the cost model's choice\n"
      "(the row's solver reads auto:CHOICE, the reason goes to stderr).\n",
      "Exit status: 0 success, 1 a configuration failed (the others still ran), 2 usage.\n", opts,
      OPTS_COUNT(opts)};
  bench_defaults(&cfg);
  int rc = opts_parse(&cmd, argc, argv);
  if (rc == OPTS_HELP) {
    bench_defaults(&cfg); /* the help shows the defaults */
    opts_help(stdout, &cmd);
    return 0;
  }
  if (rc != OPTS_RUN) return rc;
  cfg.opt.seed = cfg.seed;
  cfg.opt.precision = (sgn_precision)cfg.precisions.v[0]; /* --largest-n counts the first */
  fflush(stdout);
  if (cfg.largest_n && cfg.kernels) return usage_error("--largest-n and --kernels: pick one");
  if (cfg.largest_n && opts_find(&cmd, &opt_n)->seen)
    return usage_error("--largest-n finds n: leave out --n");
  if (cfg.largest_n) return run_largest_n(&cfg);
  return cfg.kernels ? run_kernels(&cfg) : run_steps(&cfg);
}
