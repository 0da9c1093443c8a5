/* step.c — what every solver's step shares: the loss of trial weights, accepting them, the
 * backtracking line search, phase timing, the batch permutation, and the backend's sticky
 * error turned into the caller's SGN_E_RUNTIME. The bottom layer of the session's files
 * (session.h): it calls none of them. */
#include <math.h>
#include <stdint.h>

#include "backend.h"
#include "rng.h"
#include "session.h"
#include "util.h"

void sgn_step_shuffle(int64_t *perm, int64_t n, int64_t count, uint64_t seed, uint64_t base) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = 0; i < count && i < n - 1; i++) {
    int64_t j = i + (int64_t)sgn_rng_below(seed, SGN_STREAM_BATCH, base + (uint64_t)i,
                                           (uint64_t)(n - i));
    int64_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
}

double sgn_step_trial_loss(sgn_session *s) {
  s->o->forward(s->c, s->dm, s->X, s->Wt, s->A, s->work, s->Mt, s->Ft);
  double ss = s->o->residual(s->c, s->dm.n * s->dm.k, s->Ft, s->Y, s->rfull);
  return ss / (2.0 * (double)s->dm.n);
}

/* The ridge's penalty (session.h): alpha - eta g and F - F0 in the first half of cgw (PCG is
 * done with it; full-batch, so nb = n). */
double sgn_ridge_penalty(sgn_session *s, const float *F, double eta) {
  if (!(s->rho > 0)) return 0;
  const int64_t len = s->dm.n * s->dm.k;
  double *a = s->cgw, *df = s->cgw + len;
  s->o->copy(s->c, a, s->alpha, dbytes(len));
  if (eta != 0) s->o->axpy(s->c, len, -eta, s->g, a);
  s->o->residual(s->c, len, F, s->F0, df);
  return s->rho * s->o->dot(s->c, len, a, df) / (2.0 * (double)s->dm.n);
}

void sgn_step_accept(sgn_session *s, double loss) {
  float *t;
  uint32_t *u;
  t = s->W, s->W = s->Wt, s->Wt = t;
  u = s->M, s->M = s->Mt, s->Mt = u;
  t = s->F, s->F = s->Ft, s->Ft = t;
  s->loss = loss;
}

double sgn_step_accept_bound(const sgn_session *s) {
  return s->ls ? s->loss + s->pen : DIVERGED * (s->loss0 > 0 ? s->loss0 : s->loss);
}

sgn_status sgn_step_line_search(sgn_session *s, double lr, sgn_step_info *info) {
  const sgn_backend_ops *o = s->o;
  int64_t md = s->dm.m * s->dm.d;
  double eta = lr;
  /* A trial whose loss is not finite, or that blows the loss up by DIVERGED, is never
   * accepted, line search or not. */
  for (int h = 0; h <= LS_MAX_HALVINGS; h++, eta *= 0.5) {
    if (sgn_step_interrupted(s)) return SGN_E_INTERRUPTED;
    if (s->ls && s->rho > 0 && h > RIDGE_HALVINGS) {
      /* With a ridge the step is built in the dual coefficients (gn.c); at the optimum the
       * model's nonlinearity leaves it no descent direction of the objective, and no halving
       * helps: W stays (lr 0) and the stop rule sees a step without progress. */
      info->lr = 0, info->ls_halvings = RIDGE_HALVINGS;
      return SGN_OK;
    }
    o->copy(s->c, s->Wt, s->W, fbytes(md));
    o->axpy_f(s->c, md, (float)-eta, s->D, s->Wt);
    double loss = sgn_step_trial_loss(s);
    const double pen = sgn_ridge_penalty(s, s->Ft, eta); /* the objective is loss + pen */
    const double bound = sgn_step_accept_bound(s);
    if (isfinite(loss) && loss + pen <= bound) {
      sgn_step_accept(s, loss);
      s->pen = pen;
      if (s->rho > 0) s->o->axpy(s->c, s->dm.n * s->dm.k, -eta, s->g, s->alpha);
      info->lr = eta, info->ls_halvings = h;
      return SGN_OK;
    }
  }
  info->lr = 0, info->ls_halvings = LS_MAX_HALVINGS;
  if (!s->ls)
    return sgn_fail(SGN_E_RUNTIME,
                    "step %lld: the update diverges (a non-finite or %gx larger loss) at every "
                    "step size from %g down to %g; stopping with the last good model",
                    (long long)s->step, DIVERGED, lr, eta);
  info->ls_failed = 1;
  return SGN_OK;
}

void sgn_step_lap(sgn_session *s, double *t0, double *acc) {
  s->o->sync(s->c);
  double t = sgn_now_ms();
  *acc += t - *t0;
  *t0 = t;
}

sgn_status sgn_step_interrupted(const sgn_session *s) {
  if (!atomic_load(&s->interrupt)) return SGN_OK;
  return sgn_fail(SGN_E_INTERRUPTED, "step %lld interrupted; the model is that of step %lld",
                  (long long)s->step, (long long)s->step - 1);
}

sgn_status sgn_check_backend(const sgn_backend *be) {
  const char *msg = sgn_backend_error(be);
  if (!msg) return SGN_OK;
  return sgn_fail(SGN_E_RUNTIME, "%s backend: %s", sgn_backend_name(be), msg);
}
