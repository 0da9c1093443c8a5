/* test_pcg_device.c — PCG with its scalars in backend memory (backend.h pcg_*, pcg_control.h)
 * against PCG with its scalars on the host, bit for bit, on the CPU backend: the iterates, the
 * iteration count, every flag and the progress calls are the same, and so are they against
 * reference_pcg below, the host loop as it stood before the scalars could stay in the backend.
 * Each system is solved by four variants of the CPU backend's ops table:
 *   reference  reference_pcg (dot, axpy, xpby on the host's scalars)
 *   host       sgn_pcg with the pcg_* slots NULL (its host loop)
 *   slots      sgn_pcg with the CPU's slots, read back every iteration (pcg_queue 1)
 *   batched    the same slots with pcg_queue = SGN_PCG_QUEUE, as on a GPU: iterations queued in
 *              batches, the ones past the end changing nothing.
 * The systems reach each way a solve ends: tol, maxit, a breakdown of p.q, a residual that
 * overflows, divergence, a stall with its restart and a second stall, and the stop flag set by
 * the progress callback in the middle of a batch. The GPU's twins of the slots are compared
 * with these in tests/test_gpu_ops.c. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "pcg.h"
#include "pcg_control.h"
#include "rng.h"

/* ---- the reference: sgn_pcg's loop before the pcg_* slots, verbatim but for its names ---- */

static void reference_pcg(sgn_backend *be, int64_t len, const sgn_linop *A, const sgn_linop *M,
                          const double *b, double *x, double tol, int maxit, double *work,
                          sgn_progress_fn progress, void *user, const atomic_int *stop,
                          sgn_pcg_result *res) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  double *r = work, *z = work + len, *p = work + 2 * len, *q = work + 3 * len;
  res->iters = 0, res->capped = 0, res->breakdown = 0, res->stagnated = 0, res->restarts = 0;
  res->diverged = 0, res->interrupted = 0, res->relres = 0;

  o->scal(c, len, 0.0, x);
  o->copy(c, r, b, (size_t)len * sizeof(double));
  double bnorm = sqrt(o->dot(c, len, b, b));
  if (bnorm == 0 || !isfinite(bnorm)) {
    res->breakdown = !isfinite(bnorm);
    return;
  }
  double rnorm = bnorm, best = bnorm, prev = bnorm;
  int best_at = -1;
  int rising = 0;
restart:
  if (M) M->apply(M->ctx, r, z);
  else o->copy(c, z, r, (size_t)len * sizeof(double));
  o->copy(c, p, z, (size_t)len * sizeof(double));
  double rz = o->dot(c, len, r, z);
  while (res->iters < maxit) {
    A->apply(A->ctx, p, q);
    double pq = o->dot(c, len, p, q);
    if (!(pq > 0) || !isfinite(pq)) {
      res->breakdown = 1;
      break;
    }
    double alpha = rz / pq;
    o->axpy(c, len, alpha, p, x);
    o->axpy(c, len, -alpha, q, r);
    res->iters++;
    rnorm = sqrt(o->dot(c, len, r, r));
    if (!isfinite(rnorm)) {
      res->breakdown = 1;
      break;
    }
    if (progress) progress(user, res->iters, rnorm / bnorm);
    if (rnorm <= tol * bnorm) break;
    rising = rnorm > prev ? rising + 1 : 0;
    prev = rnorm;
    if (rising >= SGN_PCG_DIVERGE_WINDOW && rnorm > bnorm) {
      res->diverged = 1;
      break;
    }
    if (stop && atomic_load(stop)) {
      res->interrupted = 1;
      break;
    }
    if (rnorm < SGN_PCG_STAGNATION_DROP * best) best = rnorm, best_at = res->iters;
    if (best_at >= 0 && res->iters - best_at >= SGN_PCG_STAGNATION_WINDOW) {
      if (res->restarts) {
        res->stagnated = 1;
        break;
      }
      res->restarts++;
      A->apply(A->ctx, x, q);
      o->copy(c, r, b, (size_t)len * sizeof(double));
      o->axpy(c, len, -1.0, q, r);
      rnorm = sqrt(o->dot(c, len, r, r));
      if (!isfinite(rnorm)) {
        res->breakdown = 1;
        break;
      }
      best = rnorm, best_at = -1, prev = rnorm, rising = 0;
      if (rnorm <= tol * bnorm) break;
      goto restart;
    }
    if (M) M->apply(M->ctx, r, z);
    else o->copy(c, z, r, (size_t)len * sizeof(double));
    double rz_new = o->dot(c, len, r, z);
    o->xpby(c, len, z, rz_new / rz, p);
    rz = rz_new;
  }
  res->relres = rnorm / bnorm;
  res->capped = !res->breakdown && !res->stagnated && !res->diverged && !res->interrupted &&
                rnorm > tol * bnorm;
}

/* ---- operators: dense matrices on host (= CPU backend) memory, counting their products ---- */

typedef struct dense_op {
  int64_t n;
  const double *M; /* (n, n) row-major */
  long calls;
} dense_op;

static void dense_apply(void *ctx, const double *in, double *out) {
  dense_op *d = ctx;
  d->calls++;
  for (int64_t i = 0; i < d->n; i++) {
    double acc = 0;
    for (int64_t j = 0; j < d->n; j++) acc += d->M[i * d->n + j] * in[j];
    out[i] = acc;
  }
}

/* B B^T / n + I with B's rows graded over two decades: SPD, cond ~1e4 */
static double *spd(int64_t n, uint64_t seed) {
  double *B = malloc(sizeof(double) * n * n), *M = calloc((size_t)(n * n), sizeof(double));
  for (int64_t i = 0; i < n * n; i++)
    B[i] = sgn_rng_normal(seed, 99, (uint64_t)i) * pow(100.0, (double)(i / n) / (double)n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      double acc = 0;
      for (int64_t t = 0; t < n; t++) acc += B[i * n + t] * B[j * n + t];
      M[i * n + j] = acc / (double)n + (i == j ? 1.0 : 0.0);
    }
  free(B);
  return M;
}

/* diag plus `skew` times a random skew-symmetric part (x^T S x = 0: no breakdown, not SPD);
 * the diagonal 1 + i mod 7, or its inverse, or shifted by -shift (indefinite) */
static double *diag_skew(int64_t n, double skew, int invert, double shift) {
  double *S = calloc((size_t)(n * n), sizeof(double));
  for (int64_t i = 0; i < n; i++) {
    const double a = 1 + (double)(i % 7);
    S[i * n + i] = (invert ? 1.0 / a : a) - shift;
    for (int64_t j = 0; j < i; j++) {
      const double v = skew * sgn_rng_normal(9, (uint64_t)i, (uint64_t)j) / sqrt((double)n);
      S[i * n + j] += v, S[j * n + i] -= v;
    }
  }
  return S;
}

/* ---- the four variants ---- */

enum { REFERENCE, HOST, SLOTS, BATCHED, VARIANTS };
static const char *variant_name[VARIANTS] = {"reference", "host", "slots", "batched"};

typedef struct trace {
  int n;
  int iter[4096];
  double rel[4096];
  int stop_at; /* set *stop when iteration stop_at is reported (0: never) */
  atomic_int *stop;
} trace;

static void record(void *user, int iter, double relres) {
  trace *t = user;
  if (t->n < 4096) t->iter[t->n] = iter, t->rel[t->n] = relres, t->n++;
  if (t->stop_at && iter == t->stop_at) atomic_store(t->stop, 1);
}

typedef struct outcome {
  sgn_pcg_result res;
  double *x;
  trace t;
  long products; /* calls of A */
} outcome;

/* Solves A x = b (M: preconditioner, NULL: plain CG) in variant v of the CPU backend */
static void solve(int v, sgn_backend *cpu, int64_t n, dense_op *A, dense_op *M, const double *b,
                  double tol, int maxit, int stop_at, outcome *out) {
  sgn_backend_ops ops = *cpu->ops;
  if (v == HOST || v == REFERENCE)
    ops.pcg_dot = NULL, ops.pcg_update = NULL, ops.pcg_control = NULL, ops.pcg_direction = NULL;
  if (v == BATCHED) ops.pcg_queue = SGN_PCG_QUEUE;
  sgn_backend be = {&ops, cpu->ctx};
  double *work = malloc(sizeof(double) * 4 * (size_t)n);
  atomic_int stop = 0;
  memset(&out->t, 0, sizeof out->t);
  out->t.stop_at = stop_at, out->t.stop = &stop;
  out->x = malloc(sizeof(double) * (size_t)n);
  A->calls = 0;
  sgn_linop Aop = {dense_apply, A}, Mop = {dense_apply, M};
  (v == REFERENCE ? reference_pcg : sgn_pcg)(&be, n, &Aop, M ? &Mop : NULL, b, out->x, tol, maxit,
                                             work, record, &out->t, &stop, &out->res);
  out->products = A->calls;
  free(work);
}

/* The variants agree bit for bit: result, trace and (unless interrupted: a partial solve) x.
 * Returns the reference's result. */
static sgn_pcg_result solve_all(const char *what, int64_t n, dense_op *A, dense_op *M,
                                const double *b, double tol, int maxit, int stop_at) {
  sgn_backend *cpu = sgn_backend_cpu_open();
  cr_assert_not_null(cpu);
  static outcome o[VARIANTS];
  for (int v = 0; v < VARIANTS; v++) solve(v, cpu, n, A, M, b, tol, maxit, stop_at, &o[v]);
  const sgn_pcg_result *r0 = &o[REFERENCE].res;
  for (int v = 1; v < VARIANTS; v++) {
    const sgn_pcg_result *r = &o[v].res;
    const char *name = variant_name[v];
    cr_expect_eq(r->iters, r0->iters, "%s, %s: iters %d vs %d", what, name, r->iters, r0->iters);
    cr_expect(r->capped == r0->capped && r->breakdown == r0->breakdown &&
                  r->restarts == r0->restarts && r->stagnated == r0->stagnated &&
                  r->diverged == r0->diverged && r->interrupted == r0->interrupted,
              "%s, %s: flags differ (capped %d/%d breakdown %d/%d restarts %d/%d stagnated "
              "%d/%d diverged %d/%d interrupted %d/%d)",
              what, name, r->capped, r0->capped, r->breakdown, r0->breakdown, r->restarts,
              r0->restarts, r->stagnated, r0->stagnated, r->diverged, r0->diverged, r->interrupted,
              r0->interrupted);
    cr_expect(memcmp(&r->relres, &r0->relres, sizeof(double)) == 0, "%s, %s: relres %.17g vs %.17g",
              what, name, r->relres, r0->relres);
    cr_expect_eq(o[v].t.n, o[REFERENCE].t.n, "%s, %s: %d progress calls vs %d", what, name,
                 o[v].t.n, o[REFERENCE].t.n);
    for (int i = 0; i < o[v].t.n && i < o[REFERENCE].t.n; i++)
      cr_expect(o[v].t.iter[i] == o[REFERENCE].t.iter[i] &&
                    memcmp(&o[v].t.rel[i], &o[REFERENCE].t.rel[i], sizeof(double)) == 0,
                "%s, %s: progress call %d is (%d, %.17g), reference (%d, %.17g)", what, name, i,
                o[v].t.iter[i], o[v].t.rel[i], o[REFERENCE].t.iter[i], o[REFERENCE].t.rel[i]);
    if (!r0->interrupted)
      cr_expect(memcmp(o[v].x, o[REFERENCE].x, sizeof(double) * (size_t)n) == 0,
                "%s, %s: x differs", what, name);
  }
  /* read back every iteration, nothing is wasted; batched, at most a quarter of the iterations
   * so far (pcg.c BATCH_SHARE) past the end of each run (a restart ends one) */
  const long used = o[REFERENCE].products;
  cr_expect_eq(o[HOST].products, used, "%s: host %ld products vs %ld", what, o[HOST].products,
               used);
  cr_expect_eq(o[SLOTS].products, used, "%s: slots %ld products vs %ld", what, o[SLOTS].products,
               used);
  const long spare = (1 + r0->restarts) * (r0->iters / 4); /* a batch per end of a run */
  cr_expect(o[BATCHED].products >= used && o[BATCHED].products <= used + spare,
            "%s: batched %ld products for %ld used over %d iterations", what, o[BATCHED].products,
            used, r0->iters);
  sgn_pcg_result r = *r0;
  for (int v = 0; v < VARIANTS; v++) free(o[v].x);
  sgn_backend_close(cpu);
  return r;
}

static double *rhs(int64_t n) {
  double *b = malloc(sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) b[i] = sgn_rng_normal(5, 1, (uint64_t)i);
  return b;
}

/* ---- the systems ---- */

Test(pcg_device, converging_cg_and_pcg) {
  const int64_t n = 80;
  double *M = spd(n, 3), *P = spd(n, 3), *b = rhs(n);
  for (int64_t i = 0; i < n; i++) P[i * n + i] *= 1.2;
  /* the preconditioner: a perturbed copy of M, SPD as the path needs (a poor approximation of
   * M^-1, which changes PCG's count, not the code it runs) */
  dense_op A = {n, M, 0}, pre = {n, P, 0};
  sgn_pcg_result r = solve_all("cg", n, &A, NULL, b, 1e-10, 1000, 0);
  cr_expect(!r.capped && !r.breakdown && r.iters > 2 * SGN_PCG_QUEUE, "cg: iters %d", r.iters);
  r = solve_all("pcg", n, &A, &pre, b, 1e-8, 1000, 0);
  cr_expect(r.iters > 0 && !r.breakdown, "pcg: iters %d breakdown %d", r.iters, r.breakdown);
  free(M), free(P), free(b);
}

Test(pcg_device, capped) {
  const int64_t n = 80;
  double *M = spd(n, 3), *b = rhs(n);
  dense_op A = {n, M, 0};
  for (int maxit = 0; maxit <= 40; maxit += 13) {
    sgn_pcg_result r = solve_all("capped", n, &A, NULL, b, 1e-14, maxit, 0);
    cr_expect(r.capped && r.iters == maxit, "maxit %d: capped %d iters %d", maxit, r.capped,
              r.iters);
  }
  free(M), free(b);
}

Test(pcg_device, breakdown_of_p_q) {
  const int64_t n = 60;
  double *S = diag_skew(n, 0, 0, 3.5), *b = rhs(n); /* diagonal with negative entries */
  dense_op A = {n, S, 0};
  sgn_pcg_result r = solve_all("indefinite", n, &A, NULL, b, 1e-10, 500, 0);
  cr_expect(r.breakdown, "an indefinite operator did not break down (iters %d)", r.iters);
  free(S), free(b);
}

/* A = [[eps, s], [-s, eps]], b = e1: p.q = eps exactly, alpha = 1 / eps, and r = (0, s / eps)
 * overflows: ||r|| is Inf after one iteration, which counts but is not reported to progress */
Test(pcg_device, breakdown_of_the_residual) {
  const int64_t n = 2;
  double S[4] = {1e-10, 1e300, -1e300, 1e-10}, b[2] = {1, 0};
  dense_op A = {n, S, 0};
  sgn_pcg_result r = solve_all("overflow", n, &A, NULL, b, 1e-10, 50, 0);
  cr_expect(r.breakdown && r.iters == 1 && !isfinite(r.relres), "breakdown %d iters %d relres %g",
            r.breakdown, r.iters, r.relres);
}

Test(pcg_device, diverged) {
  const int64_t n = 60;
  double *D = diag_skew(n, 0, 0, 0), *Pbad = diag_skew(n, 1.5, 1, 0), *b = rhs(n);
  dense_op A = {n, D, 0}, pre = {n, Pbad, 0};
  sgn_pcg_result r = solve_all("diverged", n, &A, &pre, b, 1e-6, 200, 0);
  cr_expect(r.diverged, "not diverged (iters %d)", r.iters);
  free(D), free(Pbad), free(b);
}

/* A well above 0 plus a large skew part: CG stalls, restarts, stalls again */
Test(pcg_device, stall_restart_and_stagnation) {
  const int64_t n = 80;
  double *S = spd(n, 3), *b = rhs(n);
  for (int64_t i = 0; i < n; i++) {
    S[i * n + i] += 1e4;
    for (int64_t j = 0; j < i; j++) {
      const double v = 1e2 * sgn_rng_normal(9, (uint64_t)i, (uint64_t)j);
      S[i * n + j] += v, S[j * n + i] -= v;
    }
  }
  dense_op A = {n, S, 0};
  sgn_pcg_result r = solve_all("stall", n, &A, NULL, b, 1e-10, 4000, 0);
  cr_expect(r.restarts == 1 && r.stagnated, "restarts %d stagnated %d iters %d", r.restarts,
            r.stagnated, r.iters);
  /* capped just after the restart: the cap is checked as the host loop checked it */
  const int at = r.iters;
  r = solve_all("stall, capped", n, &A, NULL, b, 1e-10, at - 1, 0);
  cr_expect(r.capped && r.restarts == 1, "capped %d restarts %d", r.capped, r.restarts);
  free(S), free(b);
}

/* The stop flag, set by the progress callback at iteration k (in the middle of a batch when
 * batched): every variant ends at k with interrupted = 1 and the same progress calls. */
Test(pcg_device, interrupt_between_batches) {
  const int64_t n = 80;
  double *M = spd(n, 3), *b = rhs(n);
  dense_op A = {n, M, 0};
  const int at[] = {1, 7, 23, 41};
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
    sgn_pcg_result r = solve_all("interrupt", n, &A, NULL, b, 1e-12, 1000, at[i]);
    cr_expect(r.interrupted && r.iters == at[i] && !r.capped, "stop at %d: interrupted %d iters %d",
              at[i], r.interrupted, r.iters);
  }
  free(M), free(b);
}
