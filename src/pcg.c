/* pcg.c — (preconditioned) conjugate gradient, written once against the backend interface.
 * The recurrence residual is what tol is checked against; callers that need the true residual
 * compute it themselves.
 *
 * Stagnation: once the residual has fallen below STAGNATION_DROP of where the solve (or its
 * restart) began, a smallest residual that then stays put (no new low below STAGNATION_DROP of
 * it) for STAGNATION_WINDOW iterations is a stall: rounding in the products or a system that is
 * not quite symmetric positive definite keeps CG far above tol. CG restarts once from its current
 * x with the true residual b - A x, dropping what the recurrence has gathered. A second stall
 * ends the solve with stagnated = 1, and the caller raises the damping. The gate on a first fall
 * spares ill-conditioned solves whose residual rises for a while before it drops.
 *
 * Divergence: a residual that rose in each of the last DIVERGE_WINDOW iterations and stands
 * above ||b|| ends the solve with diverged = 1 rather than running on to maxit. In exact
 * arithmetic an SPD preconditioner lets ||r|| wander (the A-norm of the error falls, the 2-norm
 * of the residual need not), but not climb for ten iterations in a row past where it began; that
 * is a preconditioner built for another system (a kept factor at another damping, a Gram that
 * moved), and the caller rebuilds it or raises the damping. */
#include "pcg.h"

#include <math.h>

#define STAGNATION_WINDOW 50
#define STAGNATION_DROP 0.99
#define DIVERGE_WINDOW 10

/* x = A^-1 b by PCG: r = b, z = M r, p = z; alpha = r.z / p.Ap; beta = r'.z' / r.z */
void sgn_pcg(sgn_backend *be, int64_t len, const sgn_linop *A, const sgn_linop *M, const double *b,
             double *x, double tol, int maxit, double *work, sgn_progress_fn progress, void *user,
             const atomic_int *stop, sgn_pcg_result *res) {
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
  int best_at = -1; /* the iteration of the last new low; -1: no fall yet */
  int rising = 0;   /* iterations in a row whose residual rose */
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
    if (rising >= DIVERGE_WINDOW && rnorm > bnorm) {
      res->diverged = 1;
      break;
    }
    if (stop && atomic_load(stop)) {
      res->interrupted = 1;
      break;
    }
    if (rnorm < STAGNATION_DROP * best) best = rnorm, best_at = res->iters;
    if (best_at >= 0 && res->iters - best_at >= STAGNATION_WINDOW) {
      if (res->restarts) {
        res->stagnated = 1;
        break;
      }
      /* r = b - A x, then CG afresh from this x */
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
