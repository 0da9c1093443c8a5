/* first_order.c — the first-order solvers' steps: full-batch gradient descent (its default step
 * size from the top eigenvalue of J J^T, gn.c) and an epoch of mini-batch Adam, each checked
 * against the full training loss like a Gauss-Newton step (step.c). */
#include <math.h>

#include "backend.h"
#include "session.h"
#include "util.h"

#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8

/* W <- W - lr J^T r / n */
sgn_status sgn_gd_step(sgn_session *s, sgn_step_info *info) {
  const sgn_backend_ops *o = s->o;
  double t0 = sgn_now_ms();
  if (s->step == 1 && !(s->opt.lr > 0)) {
    double top = sgn_gn_top_eigenvalue(s);
    if (sgn_step_interrupted(s)) return SGN_E_INTERRUPTED;
    if (!(top > 0) || !isfinite(top))
      return sgn_fail(SGN_E_RUNTIME,
                      "gd: could not estimate the top eigenvalue of the Gram matrix");
    s->lr = 1.8 * (double)s->dm.n / top; /* stable below 2 n / lambda_max */
    sgn_step_lap(s, &t0, &info->precond_ms);
  }
  int64_t len = s->dm.n * s->dm.k;
  o->residual(s->c, len, s->F, s->Y, s->r);
  o->d2f(s->c, len, s->r, s->vf);
  sgn_step_lap(s, &t0, &info->forward_ms);
  o->vjp(s->c, s->dm, s->X, s->M, s->A, s->vf, s->work, s->D);
  /* D = J^T r is n times the gradient */
  sgn_status st = sgn_step_line_search(s, s->lr / (double)s->dm.n, info);
  info->lr *= (double)s->dm.n;
  sgn_step_lap(s, &t0, &info->update_ms);
  return st;
}

/* One epoch of mini-batch Adam on L_B = 1/(2b) sum_B ||f - y||^2. With the line search on,
 * an epoch that raises the full loss is undone and retried at half the learning rate. */
sgn_status sgn_adam_step(sgn_session *s, sgn_step_info *info) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  int64_t n = s->dm.n, md = s->dm.m * s->dm.d;
  double t0 = sgn_now_ms();
  for (int h = 0; h <= LS_MAX_HALVINGS; h++) {
    int64_t t_saved = s->adam_t;
    o->copy(c, s->mom0, s->mom, fbytes(md)); /* undone on a rejected or interrupted epoch */
    o->copy(c, s->vel0, s->vel, fbytes(md));
    o->copy(c, s->Wt, s->W, fbytes(md));
    sgn_step_shuffle(s->perm, n, n, s->opt.seed,
                     ((uint64_t)s->step * 64 + (uint64_t)h) * (uint64_t)n);
    sgn_status st = SGN_OK;
    for (int64_t b0 = 0; b0 < n && !(st = sgn_step_interrupted(s)); b0 += s->nb) {
      sgn_dims bd = s->dm;
      bd.n = b0 + s->nb <= n ? s->nb : n - b0;
      int64_t len = bd.n * bd.k;
      o->upload(c, s->idx, s->perm + b0, (size_t)bd.n * sizeof(int64_t));
      o->gather_rows(c, bd.n, bd.d, s->X, s->idx, s->Xb);
      o->gather_rows(c, bd.n, bd.k, s->Y, s->idx, s->Yb);
      o->forward(c, bd, s->Xb, s->Wt, s->A, s->work, s->Mb, s->Fb);
      o->residual(c, len, s->Fb, s->Yb, s->r);
      o->scal(c, len, 1.0 / (double)bd.n, s->r);
      o->d2f(c, len, s->r, s->vf);
      o->vjp(c, bd, s->Xb, s->Mb, s->A, s->vf, s->work, s->D);
      s->adam_t++;
      o->adam(c, md, s->Wt, s->D, s->mom, s->vel, s->lr, ADAM_B1, ADAM_B2, ADAM_EPS, s->adam_t);
    }
    double loss = st ? NAN : sgn_step_trial_loss(s);
    if (!st && isfinite(loss) && loss <= sgn_step_accept_bound(s)) {
      sgn_step_accept(s, loss);
      info->lr = s->lr, info->ls_halvings = h;
      sgn_step_lap(s, &t0, &info->update_ms);
      return SGN_OK;
    }
    o->copy(c, s->mom, s->mom0, fbytes(md));
    o->copy(c, s->vel, s->vel0, fbytes(md));
    s->adam_t = t_saved;
    if (st) return st;
    s->lr *= 0.5;
  }
  sgn_step_lap(s, &t0, &info->update_ms);
  if (!s->ls)
    return sgn_fail(SGN_E_RUNTIME,
                    "step %lld: Adam's epoch diverges (a non-finite or %gx larger loss) at every "
                    "learning rate down to %g; stopping with the last good model",
                    (long long)s->step, DIVERGED, s->lr);
  info->ls_failed = 1;
  return SGN_OK;
}
