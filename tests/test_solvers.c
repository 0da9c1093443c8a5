/* test_solvers.c — PCG against a direct solve, and every solver's training behaviour on small
 * synthetic problems: monotone loss under the line search, convergence, determinism.
 *
 * Tolerances (how chosen):
 *   PCG_VS_CHOL  1e-6  relative; float64 PCG run to 1e-12 on a matrix with cond ~1e4
 *   GN_TARGET    1e-6  the design's convergence target (loss / initial loss)
 *   RESUME_FORM_REL 1e-6 of the initial loss: a step with the preconditioner applied as R^-1
 *                      against one with R's solves (R^-1 formed or inverted back in float64:
 *                      rounding of u kappa^2); the weights then differ in float32 roundings, each
 *                      moving f by ~u32 |f| and the loss by ~u32 ||f|| ||r|| / n, far below 1e-6
 *                      of the initial ||y||^2 / 2n (f = 0 at the symmetric start) [8.5e-11]
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "data.h"
#include "pcg.h"
#include "rng.h"
#include "session.h"
#include "util.h"

#define PCG_VS_CHOL 1e-6
#define GN_TARGET 1e-6
#define RESUME_FORM_REL 1e-6

/* ---- PCG on an explicit SPD matrix ---- */

typedef struct dense_op {
  int64_t n;
  const double *M; /* (n, n) row-major */
} dense_op;

/* out = M in */
static void dense_apply(void *ctx, const double *in, double *out) {
  dense_op *d = ctx;
  for (int64_t i = 0; i < d->n; i++) {
    double acc = 0;
    for (int64_t j = 0; j < d->n; j++) acc += d->M[i * d->n + j] * in[j];
    out[i] = acc;
  }
}

typedef struct chol_pre {
  sgn_backend *be;
  int64_t n;
  const double *R;
} chol_pre;

/* out = (R^T R)^-1 in */
static void chol_apply(void *ctx, const double *in, double *out) {
  chol_pre *p = ctx;
  memcpy(out, in, (size_t)p->n * sizeof(double));
  p->be->ops->rtr_solve(p->be->ctx, p->n, 1, p->R, out);
}

/* M = Q diag(ev) Q^T with eigenvalues spread over [1, 1e4] (Q from a Gram-Schmidt of random
 * vectors would be slow to write; B B^T / n + shift has a controlled spectrum instead). */
static double *spd_matrix(int64_t n, uint64_t seed) {
  double *B = malloc(sizeof(double) * n * n), *M = calloc(n * n, sizeof(double));
  for (int64_t i = 0; i < n * n; i++) B[i] = sgn_rng_normal(seed, 99, i);
  for (int64_t i = 0; i < n; i++) /* grade the rows so the spectrum is wide */
    for (int64_t j = 0; j < n; j++) B[i * n + j] *= pow(100.0, (double)i / n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      double acc = 0;
      for (int64_t t = 0; t < n; t++) acc += B[i * n + t] * B[j * n + t];
      M[i * n + j] = acc / n + (i == j ? 1.0 : 0.0);
    }
  free(B);
  return M;
}

static double rel_err(const double *got, const double *want, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return sqrt(num / den);
}

Test(pcg, cg_and_pcg_match_cholesky) {
  const int64_t n = 120;
  sgn_backend *be = sgn_backend_cpu_open();
  double *M = spd_matrix(n, 3);
  double *b = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n);
  double *ref = malloc(sizeof(double) * n), *work = malloc(sizeof(double) * 4 * n);
  double *R = malloc(sizeof(double) * n * n);
  for (int64_t i = 0; i < n; i++) b[i] = sgn_rng_normal(5, 1, i);
  memcpy(R, M, sizeof(double) * n * n);
  cr_assert_eq(be->ops->cholesky(be->ctx, n, R, 0.0, NULL), 0);
  memcpy(ref, b, sizeof(double) * n);
  be->ops->rtr_solve(be->ctx, n, 1, R, ref);

  dense_op dop = {n, M};
  sgn_linop A = {dense_apply, &dop};
  sgn_pcg_result res;
  sgn_pcg(be, n, &A, NULL, b, x, 1e-12, 10 * n, work, NULL, NULL, NULL, &res);
  cr_assert(!res.breakdown && !res.capped, "CG: breakdown %d capped %d", res.breakdown, res.capped);
  cr_assert(!res.stagnated && res.restarts == 0, "a steady solve restarted (%d)", res.restarts);
  cr_assert(rel_err(x, ref, n) < PCG_VS_CHOL, "CG rel err %g", rel_err(x, ref, n));
  int cg_iters = res.iters;

  /* a preconditioner from a perturbed matrix: fewer iterations, same answer */
  double *P = spd_matrix(n, 3);
  for (int64_t i = 0; i < n; i++) P[i * n + i] *= 1.2;
  cr_assert_eq(be->ops->cholesky(be->ctx, n, P, 0.0, NULL), 0);
  chol_pre cp = {be, n, P};
  sgn_linop pre = {chol_apply, &cp};
  sgn_pcg(be, n, &A, &pre, b, x, 1e-12, 10 * n, work, NULL, NULL, NULL, &res);
  cr_assert(!res.breakdown && !res.capped);
  cr_assert(rel_err(x, ref, n) < PCG_VS_CHOL, "PCG rel err %g", rel_err(x, ref, n));
  cr_assert_lt(res.iters, cg_iters, "PCG %d vs CG %d iterations", res.iters, cg_iters);

  /* the cap is reported */
  sgn_pcg(be, n, &A, NULL, b, x, 1e-12, 3, work, NULL, NULL, NULL, &res);
  cr_assert(res.capped && res.iters == 3);
  free(M), free(b), free(x), free(ref), free(work), free(R), free(P);
  sgn_backend_close(be);
}

/* M in, plus noise of relative size `noise` while fewer than noisy_calls products were taken:
 * products whose rounding spoils CG's recurrence for a while. */
typedef struct noisy_op {
  dense_op base;
  double noise;
  int calls, noisy_calls;
} noisy_op;

static void noisy_apply(void *ctx, const double *in, double *out) {
  noisy_op *o = ctx;
  dense_apply(&o->base, in, out);
  if (o->calls++ >= o->noisy_calls) return;
  double norm = 0;
  for (int64_t i = 0; i < o->base.n; i++) norm += out[i] * out[i];
  norm = sqrt(norm / (double)o->base.n);
  for (int64_t i = 0; i < o->base.n; i++)
    out[i] += o->noise * norm * sgn_rng_normal(77, (uint64_t)o->calls, (uint64_t)i);
}

/* ||b - M x|| / ||b|| */
static double true_relres(const dense_op *A, const double *b, const double *x) {
  double *Ax = malloc(sizeof(double) * A->n);
  dense_apply((void *)A, x, Ax);
  double num = 0, den = 0;
  for (int64_t i = 0; i < A->n; i++) num += (b[i] - Ax[i]) * (b[i] - Ax[i]), den += b[i] * b[i];
  free(Ax);
  return sqrt(num / den);
}

Test(pcg, stall_restarts_from_the_true_residual) {
  const int64_t n = 120;
  const int maxit = 4000;
  sgn_backend *be = sgn_backend_cpu_open();
  double *M = spd_matrix(n, 3);
  double *b = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n);
  double *work = malloc(sizeof(double) * 4 * n);
  for (int64_t i = 0; i < n; i++) b[i] = sgn_rng_normal(5, 1, i), x[i] = NAN;
  sgn_pcg_result res;

  /* noisy products for a while stall the recurrence; one restart from b - A x and CG reaches
   * tol on the true residual. x starts as NaN (a failed solve's leftovers): it is zeroed. */
  noisy_op op = {{n, M}, 1e-1, 0, 10};
  sgn_linop A = {noisy_apply, &op};
  sgn_pcg(be, n, &A, NULL, b, x, 1e-10, maxit, work, NULL, NULL, NULL, &res);
  cr_assert_eq(res.restarts, 1, "restarts %d (iters %d)", res.restarts, res.iters);
  cr_assert(!res.stagnated && !res.capped && !res.breakdown, "stagnated %d capped %d breakdown %d",
            res.stagnated, res.capped, res.breakdown);
  cr_assert_lt(true_relres(&op.base, b, x), 1e-8, "true residual %g", true_relres(&op.base, b, x));
  free(M), free(b), free(x), free(work);
  sgn_backend_close(be);
}

Test(pcg, stall_after_restart_is_reported_early) {
  const int64_t n = 120;
  const int maxit = 4000;
  sgn_backend *be = sgn_backend_cpu_open();
  /* M + 1e4 I plus a skew-symmetric part: p^T A p stays positive (no breakdown), but A is not
   * symmetric, so CG's residual stops falling well above tol */
  double *M = spd_matrix(n, 3);
  for (int64_t i = 0; i < n; i++) {
    M[i * n + i] += 1e4;
    for (int64_t j = 0; j < i; j++) {
      double v = 1e2 * sgn_rng_normal(9, (uint64_t)i, (uint64_t)j);
      M[i * n + j] += v, M[j * n + i] -= v;
    }
  }
  double *b = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n);
  double *work = malloc(sizeof(double) * 4 * n);
  for (int64_t i = 0; i < n; i++) b[i] = sgn_rng_normal(5, 1, i);
  dense_op op = {n, M};
  sgn_linop A = {dense_apply, &op};
  sgn_pcg_result res;
  sgn_pcg(be, n, &A, NULL, b, x, 1e-10, maxit, work, NULL, NULL, NULL, &res);
  cr_assert(res.stagnated && res.restarts == 1 && !res.capped && !res.breakdown,
            "stagnated %d restarts %d capped %d", res.stagnated, res.restarts, res.capped);
  cr_assert_lt(res.iters, maxit / 10, "gave up only after %d iterations", res.iters);
  cr_assert_gt(res.relres, 1e-10, "reported relres %g is below tol", res.relres);
  cr_assert_lt(true_relres(&op, b, x), 1e-3, "the progress made is lost: %g",
               true_relres(&op, b, x));
  free(M), free(b), free(x), free(work);
  sgn_backend_close(be);
}

/* The divergence stop (pcg.c): a residual that rose in each of the last ten iterations
 * (DIVERGE_WINDOW) and stands above ||b|| ends the solve with diverged = 1. The progress
 * callback records every relative residual, so a test can find the first iteration where the
 * rule holds and check the solve stopped exactly there. */
#define DIVERGE_WINDOW 10

typedef struct trace {
  int n;
  double rel[1024];
} trace;

static void trace_progress(void *user, int iter, double relres) {
  trace *t = user;
  if (iter == t->n + 1 && t->n < 1024) t->rel[t->n++] = relres;
}

/* The first iteration (1-based) after which the residual had risen DIVERGE_WINDOW times in a
 * row and stood above ||b|| (relres > 1); 0 if never. Iteration 0's residual is ||b||. */
static int first_divergence(const trace *t) {
  int rising = 0;
  double prev = 1.0;
  for (int i = 0; i < t->n; i++) {
    rising = t->rel[i] > prev ? rising + 1 : 0;
    prev = t->rel[i];
    if (rising >= DIVERGE_WINDOW && t->rel[i] > 1.0) return i + 1;
  }
  return 0;
}

/* The longest run of iterations whose residual rose. */
static int longest_rise(const trace *t) {
  int rising = 0, most = 0;
  double prev = 1.0;
  for (int i = 0; i < t->n; i++) {
    rising = t->rel[i] > prev ? rising + 1 : 0;
    prev = t->rel[i];
    if (rising > most) most = rising;
  }
  return most;
}

/* (n, n) diagonal 1 + i mod 7 (SPD) plus `skew` times a random skew-symmetric part of norm about
 * 2 skew (entries N(0, 1/n)): x^T S x = 0, so p^T S p > 0 for any p and CG never breaks down,
 * but S is not symmetric positive definite. */
static double *diag_plus_skew(int64_t n, double skew, int invert_diagonal) {
  double *S = calloc((size_t)(n * n), sizeof(double));
  for (int64_t i = 0; i < n; i++) {
    double a = 1 + (double)(i % 7);
    S[i * n + i] = invert_diagonal ? 1.0 / a : a;
    for (int64_t j = 0; j < i; j++) {
      double v = skew * sgn_rng_normal(9, (uint64_t)i, (uint64_t)j) / sqrt((double)n);
      S[i * n + j] += v, S[j * n + i] -= v;
    }
  }
  return S;
}

Test(pcg, rising_residual_stops_with_diverged) {
  const int64_t n = 60;
  const int maxit = 100;
  sgn_backend *be = sgn_backend_cpu_open();
  double *b = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n);
  double *work = malloc(sizeof(double) * 4 * n);
  for (int64_t i = 0; i < n; i++) b[i] = sgn_rng_normal(5, 1, (uint64_t)i);
  double *D = diag_plus_skew(n, 0, 0);      /* A: SPD, diagonal */
  double *Pbad = diag_plus_skew(n, 1.5, 1); /* A^-1 plus a skew part: not SPD */
  double *Abad = diag_plus_skew(n, 2.0, 0); /* A plus a skew part: not symmetric */
  dense_op dop = {n, D}, pop = {n, Pbad}, aop = {n, Abad};
  sgn_linop A = {dense_apply, &dop}, P = {dense_apply, &pop}, Askew = {dense_apply, &aop};
  struct {
    const char *what;
    const sgn_linop *A, *M;
  } cases[] = {{"a preconditioner that is not SPD", &A, &P},
               {"an operator that is not symmetric", &Askew, NULL}};
  for (int c = 0; c < 2; c++) {
    trace t = {0};
    sgn_pcg_result res;
    sgn_pcg(be, n, cases[c].A, cases[c].M, b, x, 1e-6, maxit, work, trace_progress, &t, NULL, &res);
    cr_assert_eq(t.n, res.iters, "%s: the trace missed iterations", cases[c].what);
    const int want = first_divergence(&t);
    cr_assert_gt(want, 0,
                 "%s: the residual never rose ten times in a row above ||b||: "
                 "the case does not exercise the rule",
                 cases[c].what);
    cr_assert(res.diverged, "%s: not reported as diverged (iters %d, relres %g)", cases[c].what,
              res.iters, res.relres);
    cr_assert(!res.capped && !res.breakdown && !res.stagnated && res.restarts == 0,
              "%s: capped %d breakdown %d stagnated %d restarts %d", cases[c].what, res.capped,
              res.breakdown, res.stagnated, res.restarts);
    cr_assert_eq(res.iters, want, "%s: stopped at iteration %d, the rule first held at %d",
                 cases[c].what, res.iters, want);
    cr_assert_lt(res.iters, maxit);
    cr_assert_gt(res.relres, 1.0, "%s: relres %g", cases[c].what, res.relres);
    cr_assert_eq(res.relres, t.rel[t.n - 1], "%s: relres is not the last residual", cases[c].what);
  }
  /* the same system with its true inverse as preconditioner: one iteration, no alarm */
  double *Pgood = diag_plus_skew(n, 0, 1);
  dense_op gop = {n, Pgood};
  sgn_linop G = {dense_apply, &gop};
  sgn_pcg_result res;
  sgn_pcg(be, n, &A, &G, b, x, 1e-6, maxit, work, NULL, NULL, NULL, &res);
  cr_assert(!res.diverged && !res.capped && res.iters == 1, "iters %d diverged %d", res.iters,
            res.diverged);
  free(b), free(x), free(work), free(D), free(Pbad), free(Abad), free(Pgood);
  sgn_backend_close(be);
}

/* A long solve whose residual wanders (rises for a few iterations, as CG's 2-norm residual may
 * on an ill-conditioned SPD system) but converges: the rule never fires. */
Test(pcg, long_converging_solve_is_not_stopped) {
  const int64_t n = 120;
  const int maxit = 10 * 120;
  sgn_backend *be = sgn_backend_cpu_open();
  double *M = spd_matrix(n, 3);
  double *b = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n);
  double *work = malloc(sizeof(double) * 4 * n);
  for (int64_t i = 0; i < n; i++) b[i] = sgn_rng_normal(5, 1, (uint64_t)i);
  dense_op op = {n, M};
  sgn_linop A = {dense_apply, &op};
  trace t = {0};
  sgn_pcg_result res;
  sgn_pcg(be, n, &A, NULL, b, x, 1e-12, maxit, work, trace_progress, &t, NULL, &res);
  cr_assert(!res.diverged && !res.capped && !res.breakdown && !res.stagnated,
            "diverged %d capped %d breakdown %d stagnated %d", res.diverged, res.capped,
            res.breakdown, res.stagnated);
  cr_assert_gt(res.iters, 5 * DIVERGE_WINDOW, "a short solve (%d iterations) proves little",
               res.iters);
  const int rise = longest_rise(&t);
  cr_assert(rise >= 1 && rise < DIVERGE_WINDOW, "longest rise %d iterations", rise);
  cr_assert_lt(true_relres(&op, b, x), 1e-9, "true residual %g", true_relres(&op, b, x));
  free(M), free(b), free(x), free(work);
  sgn_backend_close(be);
}

/* ---- training ---- */

typedef struct run {
  int steps;
  double loss[64];
  int cg[64];
  int refreshed[64];
} run;

/* width neurons shared by the outputs, or (separate) width neurons for each output */
static run train_outputs(const char *spec, int64_t width, sgn_options opt, int steps, sgn_init init,
                         int separate) {
  run out = {0};
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load(spec, NULL, &ds), SGN_OK, "%s", sgn_last_error());
  sgn_model *model = separate ? sgn_model_create_separate(ds.d, width, ds.k, init, 7)
                              : sgn_model_create(ds.d, width, ds.k, init, 7);
  cr_assert(model);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &opt);
  cr_assert(ses, "%s", sgn_last_error());
  out.loss[0] = sgn_session_loss(ses);
  for (int t = 1; t <= steps; t++) {
    sgn_step_info info;
    cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
    out.loss[t] = info.loss;
    out.cg[t] = info.cg_iters;
    out.refreshed[t] = info.refreshed;
    out.steps = t;
    if (info.ls_failed) break;
  }
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
  return out;
}

static run train(const char *spec, int64_t width, sgn_options opt, int steps, sgn_init init) {
  return train_outputs(spec, width, opt, steps, init, 0);
}

static sgn_options with_solver(sgn_solver solver) {
  sgn_options o = sgn_options_default();
  o.solver = solver;
  o.line_search = 1;
  return o;
}

Test(train, every_solver_lowers_the_loss_at_every_step) {
  const sgn_solver solvers[] = {SGN_SOLVER_GD,    SGN_SOLVER_ADAM,      SGN_SOLVER_GN_EXACT,
                                SGN_SOLVER_GN_CG, SGN_SOLVER_GN_SKETCH, SGN_SOLVER_GN_GRAM};
  for (size_t q = 0; q < sizeof solvers / sizeof *solvers; q++) {
    sgn_options o = with_solver(solvers[q]);
    if (solvers[q] == SGN_SOLVER_ADAM) o.lr = 0.05; /* an aggressive rate the search must tame */
    run r = train("synth:n=96,d=6,k=2,seed=3,aniso=4", 128, o, 6, SGN_INIT_SYMMETRIC);
    cr_assert_gt(r.steps, 0);
    for (int t = 1; t <= r.steps; t++)
      cr_assert_leq(r.loss[t], r.loss[t - 1], "solver %zu step %d: %g > %g", q, t, r.loss[t],
                    r.loss[t - 1]);
    cr_assert_lt(r.loss[r.steps], r.loss[0], "solver %zu made no progress", q);
  }
}

Test(train, gn_sketch_reaches_1e6_within_10_steps) {
  run r = train("synth:n=512,d=32,seed=1", 4096, with_solver(SGN_SOLVER_GN_SKETCH), 10,
                SGN_INIT_SYMMETRIC);
  double best = r.loss[r.steps];
  cr_assert_leq(best, GN_TARGET * r.loss[0], "loss ratio %g after %d steps", best / r.loss[0],
                r.steps);
}

/* The sketch Gram's precisions (README "Precision") build preconditioners as good as fp64's on
 * an ill-conditioned task (aniso 30): every one reaches GN_TARGET within 10 steps, in as many
 * steps as fp64, with PCG within two iterations of fp64's at every step (measured: the same
 * counts, 10 then 12). */
Test(train, gn_sketch_converges_at_every_precision, .timeout = 120) {
  const char *spec = "synth:n=512,d=16,seed=1,aniso=30";
  run ref = {0};
  for (int p = SGN_PRECISION_FP64; p <= SGN_PRECISION_BF16; p++) {
    sgn_options o = with_solver(SGN_SOLVER_GN_SKETCH);
    o.precision = (sgn_precision)p;
    run r = train(spec, 1024, o, 10, SGN_INIT_SYMMETRIC);
    int reached = 0;
    while (reached < r.steps && r.loss[reached] > GN_TARGET * r.loss[0]) reached++;
    cr_assert_leq(r.loss[reached], GN_TARGET * r.loss[0], "precision %d: loss ratio %g after %d", p,
                  r.loss[r.steps] / r.loss[0], r.steps);
    if (p == SGN_PRECISION_FP64) {
      ref = r;
      ref.steps = reached;
      continue;
    }
    cr_assert_eq(reached, ref.steps, "precision %d: %d steps to 1e-6, fp64 %d", p, reached,
                 ref.steps);
    for (int t = 1; t <= reached; t++)
      cr_assert_leq(abs(r.cg[t] - ref.cg[t]), 2, "precision %d step %d: %d PCG iterations, fp64 %d",
                    p, t, r.cg[t], ref.cg[t]);
  }
}

/* An sgn_precision outside the enum is refused, naming it. */
Test(train, unknown_precision_is_refused) {
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("synth:n=16,d=3,seed=1", NULL, &ds), SGN_OK);
  sgn_model *model = sgn_model_create(ds.d, 32, ds.k, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = sgn_options_default();
  o.precision = (sgn_precision)4;
  cr_assert_null(sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o));
  cr_assert_eq(sgn_last_status(), SGN_E_INPUT);
  cr_assert(strstr(sgn_last_error(), "precision"), "%s", sgn_last_error());
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

/* A product precision other than fp32, tf32 and bf16 (fp64 included: no float64 products) is
 * refused, naming it; a tf32 session's backend is back at fp32 once the session is freed. */
Test(train, bad_product_precision_is_refused) {
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("synth:n=16,d=3,seed=1", NULL, &ds), SGN_OK);
  sgn_model *model = sgn_model_create(ds.d, 32, ds.k, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = sgn_options_default();
  cr_assert_eq(o.product_precision, SGN_PRECISION_FP32);
  const sgn_precision bad[2] = {SGN_PRECISION_FP64, (sgn_precision)4};
  for (int i = 0; i < 2; i++) {
    o.product_precision = bad[i];
    cr_assert_null(sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o));
    cr_assert_eq(sgn_last_status(), SGN_E_INPUT);
    cr_assert(strstr(sgn_last_error(), "product precision"), "%s", sgn_last_error());
  }
  double loss[2];
  const sgn_precision prec[2] = {SGN_PRECISION_TF32, SGN_PRECISION_FP32};
  for (int i = 0; i < 2; i++) {
    o.product_precision = prec[i];
    sgn_session *s = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
    cr_assert_not_null(s, "%s", sgn_last_error());
    loss[i] = sgn_session_loss(s);
    sgn_session_free(s);
  }
  sgn_backend *fresh = sgn_backend_cpu_open();
  o.product_precision = SGN_PRECISION_FP32;
  sgn_session *s = sgn_session_create(fresh, model, ds.X, ds.Y, ds.n, &o);
  cr_assert_not_null(s, "%s", sgn_last_error());
  cr_assert(loss[1] == sgn_session_loss(s), "fp32 after a tf32 session: %.17g, fresh %.17g",
            loss[1], sgn_session_loss(s));
  sgn_session_free(s);
  sgn_backend_close(fresh);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

Test(train, gn_solvers_agree_on_the_first_step) {
  run exact = train("synth:n=128,d=8,seed=2", 512, with_solver(SGN_SOLVER_GN_EXACT), 1,
                    SGN_INIT_SYMMETRIC);
  run sketch = train("synth:n=128,d=8,seed=2", 512, with_solver(SGN_SOLVER_GN_SKETCH), 1,
                     SGN_INIT_SYMMETRIC);
  cr_assert_lt(fabs(sketch.loss[1] - exact.loss[1]), 0.01 * exact.loss[1] + 1e-4 * exact.loss[0]);
}

Test(train, same_seed_gives_bit_identical_trajectories) {
  const sgn_solver solvers[] = {SGN_SOLVER_GN_SKETCH, SGN_SOLVER_ADAM};
  for (int q = 0; q < 2; q++) {
    sgn_options o = with_solver(solvers[q]);
    o.batch = 48;
    run a = train("synth:n=96,d=8,k=2,seed=4", 128, o, 4, SGN_INIT_GAUSSIAN);
    run b = train("synth:n=96,d=8,k=2,seed=4", 128, o, 4, SGN_INIT_GAUSSIAN);
    cr_assert_eq(a.steps, b.steps);
    cr_assert(!memcmp(a.loss, b.loss, sizeof a.loss), "solver %d: trajectories differ", q);
    o.seed = 99;
    run c = train("synth:n=96,d=8,k=2,seed=4", 128, o, 4, SGN_INIT_GAUSSIAN);
    cr_assert(memcmp(a.loss + 1, c.loss + 1, 4 * sizeof(double)), "seed has no effect");
  }
}

Test(train, multi_output_and_batches_converge) {
  sgn_options o = with_solver(SGN_SOLVER_GN_SKETCH);
  run k3 = train("synth:n=200,d=16,k=3,seed=5", 1024, o, 8, SGN_INIT_SYMMETRIC);
  cr_assert_lt(k3.loss[k3.steps], 1e-4 * k3.loss[0], "k=3: ratio %g",
               k3.loss[k3.steps] / k3.loss[0]);
  o.batch = 100;
  run b = train("synth:n=200,d=16,seed=5", 1024, o, 8, SGN_INIT_SYMMETRIC);
  cr_assert_lt(b.loss[b.steps], 0.2 * b.loss[0], "batched: ratio %g", b.loss[b.steps] / b.loss[0]);
}

Test(train, auto_refresh_reuses_the_preconditioner) {
  sgn_options o = with_solver(SGN_SOLVER_GN_SKETCH);
  o.refresh = SGN_REFRESH_AUTO;
  run r = train("synth:n=256,d=16,seed=6,aniso=8", 2048, o, 6, SGN_INIT_SYMMETRIC);
  cr_assert(r.refreshed[1], "the first step must build a preconditioner");
  int reused = 0;
  for (int t = 2; t <= r.steps; t++) reused += !r.refreshed[t];
  cr_assert_gt(reused, 0, "auto never reused its preconditioner");
  cr_assert_lt(r.loss[r.steps], 1e-4 * r.loss[0]);
  o.refresh = SGN_REFRESH_EVERY;
  o.refresh_every = 2;
  run e = train("synth:n=256,d=16,seed=6,aniso=8", 2048, o, 4, SGN_INIT_SYMMETRIC);
  cr_assert(e.refreshed[1] && !e.refreshed[2] && e.refreshed[3] && !e.refreshed[4]);
}

/* Ten outputs (README "Many outputs"). Shared outputs couple through the off-diagonal blocks of
 * G, finite-width noise that I_k (x) R misses: on this ill-conditioned task PCG needs more than 15
 * iterations per step. Separate outputs make G block diagonal, each block within mask flips of
 * the blocks' mean that R factors (equal to it at initialization): <= 15 every step, and the
 * loss after 3 steps no higher (each output also has its own 512 neurons). */
Test(train, separate_outputs_solve_in_few_iterations) {
  const char *spec = "synth:n=1000,d=32,k=10,seed=1";
  const sgn_options o = with_solver(SGN_SOLVER_GN_GRAM);
  run shared = train_outputs(spec, 512, o, 3, SGN_INIT_SYMMETRIC, 0);
  run sep = train_outputs(spec, 512, o, 3, SGN_INIT_SYMMETRIC, 1);
  cr_assert_eq(shared.steps, 3);
  cr_assert_eq(sep.steps, 3);
  int most_shared = 0, most_sep = 0;
  for (int t = 1; t <= 3; t++) {
    most_shared = shared.cg[t] > most_shared ? shared.cg[t] : most_shared;
    most_sep = sep.cg[t] > most_sep ? sep.cg[t] : most_sep;
  }
  cr_assert_gt(most_shared, 15,
               "shared outputs took only %d PCG iterations: the task no longer "
               "shows the coupling",
               most_shared);
  cr_assert_leq(most_sep, 15, "separate outputs: %d, %d, %d PCG iterations", sep.cg[1], sep.cg[2],
                sep.cg[3]);
  cr_assert_leq(sep.loss[3], shared.loss[3], "loss after 3 steps %g, shared %g", sep.loss[3],
                shared.loss[3]);
}

/* A kept gn-gram factor built at a damping 1e4 times the current one (the Levenberg-Marquardt
 * boost dropped back between the steps) preconditions a different system: PCG then crawls to its
 * cap. The step must rebuild the factor at the damping it solves with. */
Test(train, a_kept_factor_follows_the_damping) {
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("synth:n=512,d=4,seed=6,aniso=30", NULL, &ds), SGN_OK);
  sgn_model *model = sgn_model_create(ds.d, 1024, ds.k, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = with_solver(SGN_SOLVER_GN_GRAM);
  o.refresh = SGN_REFRESH_EVERY;
  o.refresh_every = 100; /* keep the step-1 factor */
  sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
  cr_assert(ses, "%s", sgn_last_error());
  sgn_step_info info;
  ses->boost = MAX_BOOST; /* step 1 factors G + 1e-2 mean(G_ii) I */
  cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
  cr_assert(info.refreshed);
  const double built = info.damping;
  ses->boost = 1.0; /* step 2 solves with 1e-6 mean(G_ii) */
  cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
  cr_assert_lt(info.damping, 1e-2 * built, "the damping did not drop: %g vs %g", info.damping,
               built);
  cr_assert(!info.cg_capped,
            "PCG ran to its cap (%d iterations, relres %g) on a factor built "
            "at damping %g for damping %g",
            info.cg_iters, info.cg_relres, built, info.damping);
  cr_assert(info.refreshed, "the factor was not rebuilt for the new damping (%d iterations)",
            info.cg_iters);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

Test(model, symmetric_init_predicts_exactly_zero) {
  const int64_t n = 33, d = 11, m = 94, k = 3;
  sgn_model *model = sgn_model_create(d, m, k, SGN_INIT_SYMMETRIC, 12);
  cr_assert(model);
  float *X = malloc(sizeof(float) * n * d), *out = malloc(sizeof(float) * n * k);
  for (int64_t i = 0; i < n * d; i++) X[i] = (float)sgn_rng_normal(8, 1, i);
  cr_assert_eq(sgn_model_predict(model, X, n, out), SGN_OK);
  for (int64_t i = 0; i < n * k; i++)
    cr_assert(out[i] == 0.0f, "f[%lld] = %g", (long long)i, out[i]);
  sgn_model_free(model);
  model = sgn_model_create(d, m, k, SGN_INIT_GAUSSIAN, 12);
  cr_assert_eq(sgn_model_predict(model, X, n, out), SGN_OK);
  int nonzero = 0;
  for (int64_t i = 0; i < n * k; i++) nonzero += out[i] != 0.0f;
  cr_assert_gt(nonzero, 0, "gaussian init should not be zero");
  cr_assert_null(sgn_model_create(d, 95, k, SGN_INIT_SYMMETRIC, 1), "odd width must be refused");
  sgn_model_free(model);
  free(X), free(out);
}

/* ---- numerical faults ---- */

/* 500 rows, every row twice, half of the pairs with opposite labels: G is singular and no
 * network can fit both labels of a conflicting pair. The best any model can do is the pair
 * means, so the loss must end at 1/(2n) sum over conflicting pairs of 2 y^2. */
Test(faults, duplicate_rows_with_conflicting_labels_reach_the_least_squares_optimum) {
  const int64_t n = 500, d = 8, pairs = n / 2;
  float *X = malloc(sizeof(float) * n * d), *Y = malloc(sizeof(float) * n);
  double optimum = 0;
  for (int64_t p = 0; p < pairs; p++) {
    double norm = 0;
    for (int64_t j = 0; j < d; j++) {
      X[2 * p * d + j] = (float)sgn_rng_normal(21, 1, p * d + j);
      norm += (double)X[2 * p * d + j] * X[2 * p * d + j];
    }
    for (int64_t j = 0; j < d; j++) {
      X[2 * p * d + j] /= (float)sqrt(norm);
      X[(2 * p + 1) * d + j] = X[2 * p * d + j];
    }
    float y = (float)sgn_rng_normal(21, 2, p);
    Y[2 * p] = y;
    Y[2 * p + 1] = p % 2 ? -y : y;
    if (p % 2) optimum += 2.0 * y * y;
  }
  optimum /= 2.0 * n;
  const sgn_solver solvers[] = {SGN_SOLVER_GN_EXACT, SGN_SOLVER_GN_CG, SGN_SOLVER_GN_SKETCH};
  for (int q = 0; q < 3; q++) {
    sgn_model *model = sgn_model_create(d, 512, 1, SGN_INIT_SYMMETRIC, 3);
    sgn_backend *be = sgn_backend_cpu_open();
    sgn_options o = with_solver(solvers[q]);
    sgn_session *ses = sgn_session_create(be, model, X, Y, n, &o);
    cr_assert(ses, "%s", sgn_last_error());
    sgn_step_info info;
    for (int t = 0; t < 15; t++) {
      cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "solver %d: %s", q, sgn_last_error());
      cr_assert(isfinite(info.loss));
      if (info.ls_failed || info.loss <= 1.01 * optimum) break;
    }
    cr_assert_leq(sgn_session_loss(ses), 1.01 * optimum, "solver %d: loss %g, optimum %g", q,
                  sgn_session_loss(ses), optimum);
    cr_assert_geq(sgn_session_loss(ses), 0.99 * optimum, "below the optimum: a bug");
    sgn_session_free(ses);
    sgn_backend_close(be);
    sgn_model_free(model);
  }
  free(X), free(Y);
}

/* --damping 0 on a singular Gram: the factorization fails, and the step raises lambda until
 * it succeeds instead of failing. */
/* Levenberg-Marquardt damping: a step the line search shortens (here --lr 8 overshoots) damps
 * the next one tenfold more, and the multiplier travels with the session's state, so a resumed
 * run takes the same steps. (Full steps relax it: the duplicate-rows test above goes through
 * both.) */
Test(faults, shortened_steps_raise_the_next_damping) {
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("synth:n=128,d=8,seed=4", NULL, &ds), SGN_OK, "%s", sgn_last_error());
  sgn_model *model = sgn_model_create(ds.d, 256, 1, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = with_solver(SGN_SOLVER_GN_EXACT);
  o.lr = 8;
  sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
  cr_assert_not_null(ses, "%s", sgn_last_error());
  sgn_step_info a, b;
  cr_assert_eq(sgn_session_step(ses, &a), SGN_OK, "%s", sgn_last_error());
  cr_assert_gt(a.ls_halvings, 0, "--lr 8 was not shortened");
  void *state;
  size_t bytes;
  cr_assert_eq(sgn_session_save_state(ses, &state, &bytes), SGN_OK);
  cr_assert_eq(sgn_session_step(ses, &b), SGN_OK, "%s", sgn_last_error());
  /* mean(G_ii) moves a little with W: the ratio is 10 up to that */
  cr_expect(b.damping > 8 * a.damping && b.damping < 12 * a.damping, "damping %g after %g",
            b.damping, a.damping);
  /* the same step from the saved state, in a fresh session */
  sgn_session *again = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
  cr_assert_eq(sgn_session_load_state(again, state, bytes), SGN_OK, "%s", sgn_last_error());
  sgn_step_info c;
  cr_assert_eq(sgn_session_step(again, &c), SGN_OK, "%s", sgn_last_error());
  cr_expect(c.damping == b.damping && c.loss == b.loss,
            "resumed: damping %g loss %.9g, kept: "
            "damping %g loss %.9g",
            c.damping, c.loss, b.damping, b.loss);
  free(state);
  sgn_session_free(again);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

/* The CPU backend with the preconditioner as two products with R^-1 (the GPU's form, backend.h
 * rinv_preferred): the same ops, one slot replaced. */
static int prefers_rinv(void *ctx, int64_t N, int64_t k) {
  (void)ctx, (void)N, (void)k;
  return 1;
}
static sgn_backend_ops rinv_ops;
static sgn_backend rinv_be;
static sgn_backend *with_rinv(sgn_backend *cpu) {
  rinv_ops = *cpu->ops;
  rinv_ops.rinv_preferred = prefers_rinv;
  rinv_be = (sgn_backend){&rinv_ops, cpu->ctx};
  return &rinv_be;
}

/* Two steps on one kept preconditioner, applied as R (the CPU's form) and as R^-1 (the GPU's),
 * each also resumed after step 1 from the other form's state (state.c inverts it on load: a
 * GSTATE03 state, which holds R, into the R^-1 session; R^-1 into the R session). Every step runs
 * as the R run's up to rounding: the same PCG iterations, the loss within RESUME_FORM_REL of the
 * initial one. */
Test(faults, the_two_preconditioner_forms_agree_and_resume_from_each_other) {
  const char *specs[] = {"synth:n=128,d=8,k=3,seed=4,aniso=8", "synth:n=128,d=8,seed=4,aniso=8"};
  for (int t = 0; t < 2; t++) {
    sgn_dataset ds;
    cr_assert_eq(sgn_data_load(specs[t], NULL, &ds), SGN_OK, "%s", sgn_last_error());
    sgn_model *model = sgn_model_create(ds.d, 256, ds.k, SGN_INIT_SYMMETRIC, 7);
    sgn_backend *be[2] = {sgn_backend_cpu_open(), NULL};
    be[1] = with_rinv(be[0]);
    sgn_options o = with_solver(SGN_SOLVER_GN_GRAM);
    o.refresh = SGN_REFRESH_EVERY;
    o.refresh_every = 100; /* step 2 runs on step 1's preconditioner */
    sgn_step_info b[2], c[2];
    void *state[2];
    size_t bytes[2];
    double loss0 = 0;
    for (int f = 0; f < 2; f++) { /* f = 0: R, f = 1: R^-1 */
      sgn_session *ses = sgn_session_create(be[f], model, ds.X, ds.Y, ds.n, &o);
      cr_assert_not_null(ses, "%s", sgn_last_error());
      cr_assert_eq(ses->rinv, f);
      loss0 = sgn_session_loss(ses);
      cr_assert_eq(sgn_session_step(ses, &c[f]), SGN_OK, "%s", sgn_last_error());
      cr_assert_eq(sgn_session_save_state(ses, &state[f], &bytes[f]), SGN_OK);
      cr_assert_eq(sgn_session_step(ses, &b[f]), SGN_OK, "%s", sgn_last_error());
      cr_assert(!b[f].refreshed);
      sgn_session_free(ses);
    }
    for (int f = 0; f < 2; f++) {
      cr_expect_eq(c[f].cg_iters, c[0].cg_iters, "k = %ld, step 1: %d PCG iterations, R %d",
                   (long)ds.k, c[f].cg_iters, c[0].cg_iters);
      cr_expect_eq(b[f].cg_iters, b[0].cg_iters, "k = %ld, step 2: %d PCG iterations, R %d",
                   (long)ds.k, b[f].cg_iters, b[0].cg_iters);
      cr_expect(fabs(b[f].loss - b[0].loss) <= RESUME_FORM_REL * loss0,
                "k = %ld: loss %.9g with R^-1, %.9g with R", (long)ds.k, b[f].loss, b[0].loss);
    }
    /* the R state as GSTATE03 (no pre_inverse, field 20 of the header, nor the ridge's fields
     * 21 and 22: none here) */
    char *v3 = malloc(bytes[0]);
    memcpy(v3, state[0], bytes[0]);
    int64_t inverse;
    double ridge[2];
    memcpy(&inverse, v3 + 20 * 8, 8);
    memcpy(ridge, v3 + 21 * 8, 16);
    cr_assert(inverse == 0 && ridge[0] == 0 && ridge[1] == 0);
    memcpy(v3, "GSTATE03", 8);
    memmove(v3 + 20 * 8, v3 + 23 * 8, bytes[0] - 23 * 8);
    const void *other[2] = {state[1], v3};
    const size_t other_bytes[2] = {bytes[1], bytes[0] - 24};
    for (int f = 0; f < 2; f++) {
      sgn_session *again = sgn_session_create(be[f], model, ds.X, ds.Y, ds.n, &o);
      cr_assert_eq(sgn_session_load_state(again, other[f], other_bytes[f]), SGN_OK, "%s",
                   sgn_last_error());
      sgn_step_info r;
      cr_assert_eq(sgn_session_step(again, &r), SGN_OK, "%s", sgn_last_error());
      cr_expect(!r.refreshed, "k = %ld, form %d: the loaded preconditioner was not kept",
                (long)ds.k, f);
      cr_expect_eq(r.cg_iters, b[0].cg_iters, "k = %ld, form %d resumed: %d PCG iterations, %d",
                   (long)ds.k, f, r.cg_iters, b[0].cg_iters);
      cr_expect(fabs(r.loss - b[0].loss) <= RESUME_FORM_REL * loss0,
                "k = %ld, form %d resumed: loss %.9g, %.9g", (long)ds.k, f, r.loss, b[0].loss);
      sgn_session_free(again);
    }
    free(v3), free(state[0]), free(state[1]);
    sgn_backend_close(be[0]);
    sgn_model_free(model);
    sgn_dataset_free(&ds);
  }
}

/* A session state with values no run could have written is refused before any of it is used:
 * the session keeps its weights and loss, and the intact state still loads after. The header is
 * 23 fields of 8 bytes (state.c, state_head): the step counter at field 8, have_pre at 10, the
 * step size at 16, the damping multiplier at 18, the kept factor's damping at 19, its form
 * (pre_inverse) at 20, the ridge (relative, rho) at 21 and 22; W follows at byte 184. */
Test(faults, corrupt_session_state_is_refused_and_changes_nothing) {
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("synth:n=64,d=4,seed=6", NULL, &ds), SGN_OK, "%s", sgn_last_error());
  sgn_model *model = sgn_model_create(ds.d, 32, 1, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = with_solver(SGN_SOLVER_GN_CG);
  sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
  cr_assert_not_null(ses, "%s", sgn_last_error());
  sgn_step_info info;
  cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
  void *state;
  size_t bytes;
  cr_assert_eq(sgn_session_save_state(ses, &state, &bytes), SGN_OK);
  cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
  const double loss = sgn_session_loss(ses);
  const double lr_bad = -1, boost_bad = 0.5, nan = NAN;
  const float w_nan = NAN, w_huge = 3e38f;
  const int64_t pre_bad = 7, step_bad = 288230376151711747; /* fuzzing: step * 64 overflowed */
  const struct {
    size_t at;
    const void *value;
    size_t len;
    const char *says;
  } cases[] = {{16 * 8, &lr_bad, 8, "step size"},
               {16 * 8, &nan, 8, "step size"},
               {18 * 8, &boost_bad, 8, "multiplier"},
               {10 * 8, &pre_bad, 8, "counter"},
               {8 * 8, &step_bad, 8, "counter"},
               {184, &w_nan, 4, "weight"},
               {19 * 8, &nan, 8, "preconditioner damping"},
               {20 * 8, &pre_bad, 8, "counter"},
               {22 * 8, &nan, 8, "ridge"},
               {22 * 8, &lr_bad, 8, "ridge"}};
  char *copy = malloc(bytes);
  for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
    memcpy(copy, state, bytes);
    memcpy(copy + cases[t].at, cases[t].value, cases[t].len);
    cr_expect_eq(sgn_session_load_state(ses, copy, bytes), SGN_E_INPUT, "case %zu loaded", t);
    cr_expect(strstr(sgn_last_error(), cases[t].says), "case %zu: %s", t, sgn_last_error());
    cr_expect_eq(sgn_session_loss(ses), loss, "case %zu changed the session", t);
  }
  /* finite weights whose products overflow: the loss is not finite */
  memcpy(copy, state, bytes);
  for (int64_t i = 0; i < 32 * ds.d; i++) memcpy(copy + 184 + 4 * i, &w_huge, 4);
  cr_expect_eq(sgn_session_load_state(ses, copy, bytes), SGN_E_INPUT, "overflowing weights loaded");
  cr_expect(strstr(sgn_last_error(), "loss of"), "%s", sgn_last_error());
  cr_expect_eq(sgn_session_loss(ses), loss, "overflowing weights changed the session");
  cr_expect_eq(sgn_session_load_state(ses, state, bytes), SGN_OK, "%s", sgn_last_error());
  cr_expect_neq(sgn_session_loss(ses), loss, "the intact state did not load");
  free(copy), free(state);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

Test(faults, singular_gram_raises_the_damping) {
  const int64_t n = 64, d = 2;
  float *X = malloc(sizeof(float) * n * d), *Y = malloc(sizeof(float) * n);
  for (int64_t i = 0; i < n; i++) { /* 8 distinct rows, each 8 times: rank <= 8 */
    X[i * d] = (float)cos((double)(i % 8)), X[i * d + 1] = (float)sin((double)(i % 8));
    Y[i] = (float)(i % 8) / 8.0f;
  }
  sgn_model *model = sgn_model_create(d, 64, 1, SGN_INIT_SYMMETRIC, 3);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = with_solver(SGN_SOLVER_GN_GRAM);
  o.damping = 0;
  sgn_session *ses = sgn_session_create(be, model, X, Y, n, &o);
  sgn_step_info info;
  cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
  cr_assert_gt(info.damping_raised, 0, "lambda was never raised");
  cr_assert_gt(info.damping, 0);
  cr_assert_lt(info.loss, info.loss_before);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  free(X), free(Y);
}

/* Without a line search, a huge step size is rejected rather than turned into a NaN model: a
 * step either succeeds with a finite loss or fails with a message, and W stays finite. */
Test(faults, huge_step_size_never_gives_a_non_finite_model) {
  const double lrs[] = {1e30, 1e8};
  for (int q = 0; q < 2; q++) {
    sgn_dataset ds;
    cr_assert_eq(sgn_data_load("synth:n=64,d=4,seed=1", NULL, &ds), SGN_OK);
    sgn_model *model = sgn_model_create(ds.d, 64, ds.k, SGN_INIT_SYMMETRIC, 7);
    sgn_backend *be = sgn_backend_cpu_open();
    sgn_options o = with_solver(SGN_SOLVER_GD);
    o.line_search = 0;
    o.lr = lrs[q];
    sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
    int failed = 0;
    for (int t = 0; t < 4 && !failed; t++) {
      sgn_step_info info;
      failed = sgn_session_step(ses, &info) != SGN_OK;
      if (failed) cr_assert(strstr(sgn_last_error(), "last good model"), "%s", sgn_last_error());
      cr_assert(isfinite(sgn_session_loss(ses)));
    }
    sgn_session_sync(ses);
    for (int64_t i = 0; i < model->m * model->d; i++) cr_assert(isfinite(model->W[i]));
    sgn_session_free(ses);
    sgn_backend_close(be);
    sgn_model_free(model);
    sgn_dataset_free(&ds);
  }
}

/* A run needing more than --max-memory is refused before anything is allocated, with both
 * numbers in the message. */
Test(faults, memory_limit_is_checked_before_allocating) {
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("synth:n=256,d=8,seed=1", NULL, &ds), SGN_OK);
  sgn_model *model = sgn_model_create(ds.d, 1024, ds.k, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = sgn_options_default();
  o.max_memory = 1 << 20;
  cr_assert_null(sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o));
  cr_assert(strstr(sgn_last_error(), "MiB") && strstr(sgn_last_error(), "--max-memory"), "%s",
            sgn_last_error());
  o.max_memory = 1e9;
  sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
  cr_assert_not_null(ses, "%s", sgn_last_error());
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

/* With fewer parameters than samples (width 32, d = 4: m d = 128 < n = 512) --solver auto
 * resolves to adam, says why, and its epochs lower the loss. */
Test(train, auto_solver_takes_adam_below_overparametrization) {
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("synth:n=512,d=4,seed=2", NULL, &ds), SGN_OK);
  sgn_model *model = sgn_model_create(ds.d, 32, ds.k, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = sgn_options_default();
  o.solver = SGN_SOLVER_AUTO;
  sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
  cr_assert_not_null(ses, "%s", sgn_last_error());
  cr_assert_eq(sgn_session_solver(ses), SGN_SOLVER_ADAM, "%s", sgn_session_solver_reason(ses));
  cr_assert(strstr(sgn_session_solver_reason(ses), "not overparametrized"), "%s",
            sgn_session_solver_reason(ses));
  sgn_step_info info;
  double first = 0;
  for (int t = 0; t < 3; t++) {
    cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
    if (t == 0) first = info.loss_before;
  }
  cr_assert_lt(info.loss, first);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

/* --solver auto resolves, at session creation, to one of the Gauss-Newton solvers with a
 * reason, and the session then trains with it. */
Test(train, auto_solver_resolves_and_trains) {
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("synth:n=64,d=4,seed=2", NULL, &ds), SGN_OK);
  sgn_model *model = sgn_model_create(ds.d, 256, ds.k, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = sgn_options_default();
  o.solver = SGN_SOLVER_AUTO;
  sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
  cr_assert_not_null(ses, "%s", sgn_last_error());
  sgn_solver got = sgn_session_solver(ses);
  cr_assert(got == SGN_SOLVER_GN_EXACT || got == SGN_SOLVER_GN_GRAM || got == SGN_SOLVER_GN_SKETCH,
            "auto resolved to %d", (int)got);
  cr_assert_gt(strlen(sgn_session_solver_reason(ses)), 0);
  sgn_step_info info;
  cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
  cr_assert_lt(info.loss, info.loss_before);
  void *state;
  size_t bytes;
  cr_assert_eq(sgn_session_save_state(ses, &state, &bytes), SGN_OK);
  cr_assert_eq(sgn_state_solver(state, bytes), (int)got);
  free(state);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

/* ---- the ridge (sgn_options.ridge) ---- */

typedef struct ridge_result {
  double chosen;    /* sgn_session_ridge */
  double loss;      /* training loss at the end */
  double test_loss; /* on the held-out rows, clean targets */
  double wdist;     /* ||W - W0|| */
} ridge_result;

/* gn-exact from the same initialization on (X, Y) until the objective stops falling (at most 12
 * steps), evaluated on (Xt, Yt). */
static ridge_result ridge_train(const sgn_dataset *tr, const float *Y, const sgn_dataset *te,
                                double ridge) {
  ridge_result out = {0};
  sgn_model *model = sgn_model_create(tr->d, 2048, tr->k, SGN_INIT_SYMMETRIC, 7);
  const size_t md = (size_t)(model->m * model->d);
  float *W0 = malloc(md * sizeof(float));
  memcpy(W0, model->W, md * sizeof(float));
  sgn_backend *be = sgn_backend_cpu_open();
  sgn_options o = with_solver(SGN_SOLVER_GN_EXACT);
  o.ridge = ridge;
  sgn_session *ses = sgn_session_create(be, model, tr->X, Y, tr->n, &o);
  cr_assert_not_null(ses, "%s", sgn_last_error());
  cr_assert_eq(sgn_session_attach_test(ses, te->X, te->Y, te->n), SGN_OK);
  out.chosen = sgn_session_ridge(ses);
  for (int t = 0; t < 12; t++) {
    sgn_step_info info;
    cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
    cr_assert_leq(info.objective, info.objective_before, "step %d raised the objective", t + 1);
    if (info.ls_failed || info.objective_before - info.objective <= 1e-6 * info.objective_before)
      break;
  }
  out.loss = sgn_session_loss(ses);
  cr_assert_eq(sgn_session_test(ses, &out.test_loss, NULL), SGN_OK);
  cr_assert_eq(sgn_session_sync(ses), SGN_OK);
  double ss = 0;
  for (size_t i = 0; i < md; i++) ss += (double)(model->W[i] - W0[i]) * (model->W[i] - W0[i]);
  out.wdist = sqrt(ss);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  free(W0);
  return out;
}

/* Targets of the teacher task plus Gaussian noise of sigma times their RMS. */
static float *noisy_targets(const sgn_dataset *ds, double sigma) {
  float *Y = malloc(sizeof(float) * (size_t)(ds->n * ds->k));
  double ss = 0;
  for (int64_t i = 0; i < ds->n * ds->k; i++) ss += (double)ds->Y[i] * ds->Y[i];
  const double rms = sqrt(ss / (double)(ds->n * ds->k));
  for (int64_t i = 0; i < ds->n * ds->k; i++)
    Y[i] = (float)(ds->Y[i] + sigma * rms * sgn_rng_normal(11, 3, (uint64_t)i));
  return Y;
}

/* A larger ridge buys smaller weights with a larger training loss: on the same noisy targets,
 * rho = 1e-3, 1e-1, 10 (relative to mean(G_ii)) give training losses that rise and distances
 * ||W - W0|| that fall. (The regularized optimum's trade-off is monotone in rho; each run ends
 * at its optimum to the objective's 1e-6, far inside the decades between the three.) */
Test(train, ridge_trades_fit_for_smaller_weights) {
  sgn_dataset tr, te;
  cr_assert_eq(sgn_data_load("synth:n=96,d=6,seed=4", NULL, &tr), SGN_OK);
  cr_assert_eq(sgn_data_load("synth:n=96,d=6,seed=4,skip=96", NULL, &te), SGN_OK);
  float *Y = noisy_targets(&tr, 0.5);
  const double rho[] = {1e-3, 1e-1, 10};
  ridge_result r[3];
  for (int q = 0; q < 3; q++) {
    r[q] = ridge_train(&tr, Y, &te, rho[q]);
    cr_assert_eq(r[q].chosen, rho[q]);
  }
  for (int q = 1; q < 3; q++) {
    cr_assert_gt(r[q].loss, r[q - 1].loss, "ridge %g: loss %g, ridge %g: %g", rho[q], r[q].loss,
                 rho[q - 1], r[q - 1].loss);
    cr_assert_lt(r[q].wdist, r[q - 1].wdist, "ridge %g: ||W - W0|| %g, ridge %g: %g", rho[q],
                 r[q].wdist, rho[q - 1], r[q - 1].wdist);
  }
  free(Y);
  sgn_dataset_free(&tr), sgn_dataset_free(&te);
}

/* The automatic ridge follows the noise: leave-one-out picks a far larger ridge for targets with
 * noise of their own size than for the clean teacher, and on the noisy targets it generalizes
 * better than interpolating them (ridge 0): a lower loss on held-out clean targets. */
Test(train, auto_ridge_follows_the_noise) {
  sgn_dataset tr, te;
  cr_assert_eq(sgn_data_load("synth:n=200,d=6,seed=4", NULL, &tr), SGN_OK);
  cr_assert_eq(sgn_data_load("synth:n=200,d=6,seed=4,skip=200", NULL, &te), SGN_OK);
  float *Y = noisy_targets(&tr, 1.0);
  ridge_result clean = ridge_train(&tr, tr.Y, &te, -1), noisy = ridge_train(&tr, Y, &te, -1),
               none = ridge_train(&tr, Y, &te, 0);
  cr_assert_gt(noisy.chosen, 10 * clean.chosen, "auto ridge %g on noisy targets, %g on clean",
               noisy.chosen, clean.chosen);
  cr_assert_lt(noisy.test_loss, none.test_loss, "held-out loss %g with auto ridge %g, %g with none",
               noisy.test_loss, noisy.chosen, none.test_loss);
  free(Y);
  sgn_dataset_free(&tr), sgn_dataset_free(&te);
}
