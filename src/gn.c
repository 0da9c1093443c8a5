/* gn.c — the Gauss-Newton step of gn-exact, gn-cg, gn-sketch and gn-gram: the operator
 * J J^T + lambda I on the step's rows, the kept preconditioner R and when to rebuild it, the
 * solve with automatic damping raised on a breakdown, then the line search (step.c). Also the
 * power iteration on J J^T that gives gd its step size. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "pcg.h"
#include "rng.h"
#include "session.h"
#include "util.h"

#define DAMPING_RETRIES 8 /* raising lambda 10x each time */
#define BASE_DAMPING 1e-6 /* automatic damping: lambda = BASE_DAMPING boost mean(G_ii) */
#define POWER_ITERS 30
/* A kept factor of G + lambda' I serves a solve at lambda while lambda / lambda' stays within
 * [1/DAMPING_DRIFT, DAMPING_DRIFT]: mean(G_ii) drifts a little from step to step, the
 * Levenberg-Marquardt boost moves tenfold. Measured (tests/test_solvers.c,
 * a_kept_factor_follows_the_damping): a gn-gram factor built at 1e4 times the damping ran PCG
 * to its cap of 100 where a rebuilt one takes 1 iteration. */
#define DAMPING_DRIFT 2.0

/* ---- the Gauss-Newton operator on the step's rows ---- */

typedef struct gn_problem {
  sgn_session *s;
  sgn_dims dm; /* nb rows */
  const float *X, *Y;
  const uint32_t *M; /* mask of the rows */
  const float *F;
} gn_problem;

/* out = (J J^T + lambda I) in, in and out (nb k) float64 */
static void gn_apply(void *ctx, const double *in, double *out) {
  gn_problem *p = ctx;
  sgn_session *s = p->s;
  int64_t len = p->dm.n * p->dm.k;
  s->o->d2f(s->c, len, in, s->vf);
  s->o->vjp(s->c, p->dm, p->X, p->M, s->A, s->vf, s->work, s->Dtmp);
  s->o->jvp(s->c, p->dm, p->X, p->M, s->A, s->Dtmp, s->work, s->of);
  s->o->f2d(s->c, len, s->of, out);
  s->o->axpy(s->c, len, s->lambda, in, out);
}

/* out = (G + lambda I) in with G the k Gram blocks of separate outputs, formed (s->Gh) */
static void heads_apply(void *ctx, const double *in, double *out) {
  gn_problem *p = ctx;
  sgn_session *s = p->s;
  s->o->heads_symv(s->c, p->dm.n, p->dm.k, s->Gh, s->lambda, in, out);
}

/* out = (R^T R)^-1 in, per output column (I_k (x) R^-1 R^-T): two products with R^-1 where the
 * session keeps it (rinv), else two triangular solves with R */
static void rtr_apply(void *ctx, const double *in, double *out) {
  gn_problem *p = ctx;
  sgn_session *s = p->s;
  s->o->copy(s->c, out, in, dbytes(p->dm.n * p->dm.k));
  if (s->rinv) s->o->rinv_apply(s->c, p->dm.n, p->dm.k, s->R, out, s->pw);
  else s->o->rtr_solve(s->c, p->dm.n, p->dm.k, s->R, out);
}

/* The step's rows: the full set, or a fresh batch gathered and run forward. */
static gn_problem gn_rows(sgn_session *s) {
  gn_problem p = {s, s->dm, s->X, s->Y, s->M, s->F};
  if (!s->batched) return p;
  int64_t nb = s->nb;
  sgn_step_shuffle(s->perm, s->dm.n, nb, s->opt.seed, (uint64_t)s->step * (uint64_t)s->dm.n);
  s->o->upload(s->c, s->idx, s->perm, (size_t)nb * sizeof(int64_t));
  s->o->gather_rows(s->c, nb, s->dm.d, s->X, s->idx, s->Xb);
  s->o->gather_rows(s->c, nb, s->dm.k, s->Y, s->idx, s->Yb);
  p.dm.n = nb;
  s->o->forward(s->c, p.dm, s->Xb, s->W, s->A, s->work, s->Mb, s->Fb);
  p.X = s->Xb, p.Y = s->Yb, p.M = s->Mb, p.F = s->Fb;
  return p;
}

double sgn_gn_top_eigenvalue(sgn_session *s) {
  int64_t len = s->dm.n * s->dm.k;
  double *v = s->cgw, *w = s->cgw + len, *h = calloc((size_t)len, sizeof(double));
  if (!h) return NAN;
  for (int64_t i = 0; i < len; i++)
    h[i] = sgn_rng_normal(s->opt.seed, SGN_STREAM_POWER, (uint64_t)i);
  s->o->upload(s->c, v, h, dbytes(len));
  free(h);
  gn_problem p = {s, s->dm, s->X, s->Y, s->M, s->F};
  double saved = s->lambda, est = 0;
  s->lambda = 0;
  for (int it = 0; it < POWER_ITERS && !atomic_load(&s->interrupt); it++) {
    s->o->scal(s->c, len, 1.0 / sqrt(s->o->dot(s->c, len, v, v)), v);
    gn_apply(&p, v, w);
    est = s->o->dot(s->c, len, v, w);
    double *t = v;
    v = w, w = t;
  }
  s->lambda = saved;
  return est;
}

/* ---- the solve ---- */

static int want_refresh(const sgn_session *s) {
  if (!s->have_pre) return 1;
  if (s->pre_lambda > 0 &&
      (s->lambda > DAMPING_DRIFT * s->pre_lambda || s->lambda * DAMPING_DRIFT < s->pre_lambda))
    return 1;
  switch (s->opt.refresh) {
  case SGN_REFRESH_AUTO: return s->stale;
  case SGN_REFRESH_EVERY: return s->since_refresh >= s->opt.refresh_every;
  default: return 1;
  }
}

/* One factorization + solve of (G + lambda I) g = r with the session's solver. Returns 0, or 1
 * when a factorization failed or CG broke down, stalled or diverged (the caller raises lambda and
 * tries again). A kept preconditioner is rebuilt when the damping moved away from the one it was
 * built with (DAMPING_DRIFT); PCG on a kept one that diverges or runs to its cap is retried once
 * on a rebuilt one. */
static int gn_solve(sgn_session *s, gn_problem *p, sgn_step_info *info, sgn_pcg_result *res,
                    double *t0) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  int64_t nb = p->dm.n, len = nb * p->dm.k;
  sgn_linop op = {gn_apply, p}, pre = {rtr_apply, p};
  memset(res, 0, sizeof *res);
  switch (s->opt.solver) {
  case SGN_SOLVER_GN_EXACT: {
    o->gram(c, p->dm, p->X, p->M, s->A, 1, s->work, s->R);
    int bad = o->cholesky(c, len, s->R, s->lambda, s->qrw);
    sgn_step_lap(s, t0, &info->precond_ms);
    if (bad) return 1;
    o->copy(c, s->g, s->rhs, dbytes(len));
    o->rtr_solve(c, len, 1, s->R, s->g);
    sgn_step_lap(s, t0, &info->solve_ms);
    return 0;
  }
  case SGN_SOLVER_GN_CG:
    sgn_pcg(s->be, len, &op, NULL, s->rhs, s->g, s->opt.cg_tol, s->opt.cg_max, s->cgw, s->progress,
            s->progress_user, &s->interrupt, res);
    sgn_step_lap(s, t0, &info->solve_ms);
    return res->breakdown || res->stagnated || res->diverged;
  default: break;
  }
  /* gn-gram and gn-sketch: PCG with a kept R, rebuilt per --precond-refresh. Separate outputs
   * (gn-gram): PCG on their k Gram blocks (formed by sgn_gn_step) with R of the blocks' mean. */
  const int heads = s->Gh != NULL;
  if (heads) op.apply = heads_apply;
  int wasted = 0; /* iterations on a kept R that no longer fit */
retry:
  if (want_refresh(s)) {
    int bad;
    if (s->opt.solver == SGN_SOLVER_GN_GRAM) {
      if (heads) o->heads_mean(c, nb, p->dm.k, s->Gh, s->R);
      else o->gram(c, p->dm, p->X, p->M, s->A, 0, s->work, s->R);
      bad = o->cholesky(c, nb, s->R, s->lambda, s->qrw);
    } else {
      uint64_t seed = sgn_rng_u64(s->opt.seed, SGN_STREAM_STEP_SEED, (uint64_t)s->step);
      if (!s->Ysk) { /* Y in panels, never whole (session.c): the sketch's time is precond's */
        bad = o->sketch_panels_r(c, p->dm, s->opt.sketch, s->s, seed, p->X, p->M, s->lambda,
                                 s->opt.precision, s->skw, s->R);
      } else {
        o->sketch(c, p->dm, s->opt.sketch, s->s, seed, p->X, p->M, s->skw, s->Ysk);
        sgn_step_lap(s, t0, &info->sketch_ms);
        bad = o->sketch_r(c, nb, s->s, s->Ysk, s->lambda, s->opt.precision, s->qrw, s->R);
      }
    }
    if (!bad && s->rinv) bad = o->r_inverse(c, nb, s->R, s->riw) != 0; /* R -> R^-1 */
    sgn_step_lap(s, t0, &info->precond_ms);
    if (bad) {
      s->have_pre = 0;
      return 1;
    }
    s->have_pre = 1, s->stale = 0, s->since_refresh = 0, s->pre_lambda = s->lambda;
    info->refreshed = 1;
  }
  sgn_pcg(s->be, len, &op, &pre, s->rhs, s->g, s->opt.cg_tol, s->opt.cg_max, s->cgw, s->progress,
          s->progress_user, &s->interrupt, res);
  sgn_step_lap(s, t0, &info->solve_ms);
  if (!info->refreshed && (res->diverged || res->capped || res->stagnated || res->breakdown)) {
    s->have_pre = 0; /* the kept R no longer fits: rebuild it and solve again, once */
    wasted = res->iters;
    goto retry;
  }
  if (res->breakdown || res->stagnated || res->diverged) return 1;
  s->since_refresh++;
  if (info->refreshed) s->iters_at_refresh = res->iters > 0 ? res->iters : 1;
  else if (res->iters > 1.5 * s->iters_at_refresh) s->stale = 1;
  res->iters += wasted; /* the step's count includes the solve that was thrown away */
  return 0;
}

/* ---- the step ---- */

/* The solve's right side with a ridge rho (lambda = rho + damping): the Gauss-Newton step of
 * the kernel ridge objective in the dual coefficients alpha (W - W0 ~ J^T alpha, F - F0 ~ G alpha:
 * 1/2 ||F - Y||^2 + rho/2 alpha . (F - F0)) is alpha <- alpha - g with
 * (G + lambda I) g = r + rho alpha, and W moves by -J^T g as without one. The right side goes
 * to 0 at the optimum (F - Y = -rho alpha), so PCG's relative tolerance keeps its meaning. */
static void ridge_rhs(sgn_session *s, int64_t len, double rho) {
  if (s->rhs == s->r) return; /* a session without a ridge solves for r itself */
  s->o->copy(s->c, s->rhs, s->r, dbytes(len));
  s->o->axpy(s->c, len, rho, s->alpha, s->rhs);
}

sgn_status sgn_gn_step(sgn_session *s, sgn_step_info *info) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  double t0 = sgn_now_ms();
  gn_problem p = gn_rows(s);
  int64_t nb = p.dm.n, len = nb * p.dm.k;
  o->residual(c, len, p.F, p.Y, s->r);
  o->gram_diag(c, p.dm, p.X, p.M, s->diag);
  o->download(c, s->diag_h, s->diag, dbytes(nb));
  double mean = 0;
  for (int64_t i = 0; i < nb; i++) mean += s->diag_h[i];
  mean /= (double)nb;
  s->lambda = s->opt.damping >= 0 ? s->opt.damping : BASE_DAMPING * s->boost * mean;
  const double rho = s->rho; /* full-batch steps only (session.c) */
  s->lambda += rho;
  sgn_step_lap(s, &t0, &info->forward_ms);
  if (sgn_step_interrupted(s)) return SGN_E_INTERRUPTED;
  if (s->Gh) { /* separate outputs: their Gram blocks, once a step whatever the damping */
    o->gram_heads(c, p.dm, p.X, s->Kxx, p.M, s->work, s->Gh); /* Kxx: NULL when batched */
    sgn_step_lap(s, &t0, &info->precond_ms);
  }

  /* A singular Gram (duplicate inputs, n > m d), a CG breakdown, or CG stalled even after its
   * restart: raise lambda tenfold, at least to 1e-8 mean(G_ii), and solve again with a rebuilt
   * preconditioner. A failed backend (its ops no longer work) is no reason to retry. */
  sgn_pcg_result res;
  for (int attempt = 0; ridge_rhs(s, len, rho), gn_solve(s, &p, info, &res, &t0);
       attempt++) {
    if (sgn_backend_error(s->be)) return sgn_check_backend(s->be);
    if (sgn_step_interrupted(s)) return SGN_E_INTERRUPTED;
    if (attempt == DAMPING_RETRIES)
      return sgn_fail(SGN_E_RUNTIME,
                      "step %lld: %s even with damping %g; stopping with the last good model",
                      (long long)s->step,
                      res.breakdown   ? "CG broke down (the system is not positive definite)"
                      : res.stagnated ? "CG stalled (no progress in its residual)"
                      : res.diverged  ? "CG diverged (its residual kept rising)"
                                      : "the factorization failed (the matrix is singular)",
                      s->lambda);
    s->lambda = fmax(10 * s->lambda, fmax(1e-8 * mean, 1e-30));
    s->have_pre = 0;
    info->damping_raised++;
  }
  if (sgn_step_interrupted(s)) return SGN_E_INTERRUPTED; /* g may be a partial solve */
  info->damping = s->lambda - rho;
  info->cg_iters = res.iters, info->cg_capped = res.capped, info->cg_relres = res.relres;
  info->cg_restarts = res.restarts;

  /* D = J^T g, then the line search over the full set */
  o->d2f(c, len, s->g, s->vf);
  o->vjp(c, p.dm, p.X, p.M, s->A, s->vf, s->work, s->D);
  sgn_status st = sgn_step_line_search(s, s->lr, info);
  sgn_step_lap(s, &t0, &info->update_ms);
  /* A step the line search had to shorten trusted the quadratic model too far (on a singular
   * Gram, float32 rounding of a huge null-space component of g leaks into J^T g): damp the next
   * one more. A full step relaxes the damping back towards the default. */
  if (info->ls_halvings > 0 || info->ls_failed) s->boost = fmin(10 * s->boost, MAX_BOOST);
  else s->boost = fmax(s->boost / 10, 1.0);
  return st;
}
