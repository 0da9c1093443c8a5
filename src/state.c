/* state.c — a session's state as bytes for checkpoints (sgn_session_save_state) and back
 * (sgn_session_load_state): a fixed header of 8-byte fields, then the weights, Adam's moments
 * and the kept preconditioner. A load checks every value before it touches the session, so a
 * corrupt or mismatched state is refused with the session as it was. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "session.h"
#include "util.h"

/* The blob: this header (every field 8 bytes, so no padding), then W (m, d) float, then Adam's
 * moments (m, d) x 2 when solving with adam, then the kept preconditioner (nb, nb) double when
 * gn-gram or gn-sketch holds one: R, or R^-1 (pre_inverse) where the session applies it as two
 * products and keeps R^-1 in R's place (session.h). Keeping R beside it would cost the session
 * another nb^2 doubles, so the state holds what the session holds, and a load turns it into the
 * form the loading session uses (r_inverse maps R to R^-1 and back, to rounding; a session of
 * the same backend and shape loads the bytes it saved). M, F and the loss are recomputed from
 * W on load. */
#define STATE_MAGIC 0x3530455441545347ull    /* "GSTATE05" */
#define STATE_MAGIC_V4 0x3430455441545347ull /* "GSTATE04": no ridge (read as none) */
#define STATE_MAGIC_V3 0x3330455441545347ull /* "GSTATE03": no pre_inverse (the kept one is R) */
#define STATE_MAGIC_V2 0x3230455441545347ull /* "GSTATE02": no pre_lambda (read as 0) */
#define STATE_MAGIC_V1 0x3130455441545347ull /* "GSTATE01": no boost (read as 1) either */
typedef struct state_head {
  uint64_t magic, seed;
  int64_t solver, n, d, m, k, nb, step, adam_t;
  int64_t have_pre, iters_at_refresh, stale, since_refresh;
  double loss, loss0, lr, time_ms;
  double boost;        /* GSTATE02 on */
  double pre_lambda;   /* GSTATE03 on: the damping the kept R was built with */
  int64_t pre_inverse; /* GSTATE04 on: 1 when the kept preconditioner is R^-1 */
  double ridge_rel, rho; /* GSTATE05 on: the ridge (session.h); when rho > 0 the blob ends with
                            its alpha (n k) double and F0 (n, k) float */
} state_head;
#define STATE_HEAD_V4 (sizeof(state_head) - 2 * sizeof(double))
#define STATE_HEAD_V3 (STATE_HEAD_V4 - sizeof(int64_t))
#define STATE_HEAD_V2 (STATE_HEAD_V3 - sizeof(double))
#define STATE_HEAD_V1 (STATE_HEAD_V3 - 2 * sizeof(double))

/* The header's size for the magic at the start of buf, 0 for an unknown one. */
static size_t state_head_bytes(const void *buf, size_t bytes) {
  uint64_t magic;
  if (bytes < sizeof magic) return 0;
  memcpy(&magic, buf, sizeof magic);
  return magic == STATE_MAGIC      ? sizeof(state_head)
         : magic == STATE_MAGIC_V4 ? STATE_HEAD_V4
         : magic == STATE_MAGIC_V3 ? STATE_HEAD_V3
         : magic == STATE_MAGIC_V2 ? STATE_HEAD_V2
         : magic == STATE_MAGIC_V1 ? STATE_HEAD_V1
                                   : 0;
}

static int keeps_pre(const sgn_session *s) {
  return s->have_pre &&
         (s->opt.solver == SGN_SOLVER_GN_GRAM || s->opt.solver == SGN_SOLVER_GN_SKETCH);
}

sgn_status sgn_session_save_state(sgn_session *s, void **buf, size_t *bytes) {
  int64_t md = s->dm.m * s->dm.d;
  int adam = s->opt.solver == SGN_SOLVER_ADAM;
  const int64_t nk = s->dm.n * s->dm.k;
  const size_t rb = s->rho > 0 ? dbytes(nk) + fbytes(nk) : 0; /* the ridge's alpha and F0 */
  size_t total = sizeof(state_head) + fbytes(md) * (adam ? 3 : 1) +
                 (keeps_pre(s) ? dbytes(s->nb * s->nb) : 0) + rb;
  char *p = sgn_calloc(1, total);
  if (!p) return SGN_E_RUNTIME;
  state_head h = {STATE_MAGIC,
                  s->opt.seed,
                  s->opt.solver,
                  s->dm.n,
                  s->dm.d,
                  s->dm.m,
                  s->dm.k,
                  s->nb,
                  s->step,
                  s->adam_t,
                  s->have_pre,
                  s->iters_at_refresh,
                  s->stale,
                  s->since_refresh,
                  s->loss,
                  s->loss0,
                  s->lr,
                  s->time_ms,
                  s->boost,
                  s->pre_lambda,
                  keeps_pre(s) && s->rinv,
                  s->ridge_rel,
                  s->rho};
  memcpy(p, &h, sizeof h);
  char *q = p + sizeof h;
  s->o->download(s->c, q, s->W, fbytes(md)), q += fbytes(md);
  if (adam) {
    s->o->download(s->c, q, s->mom, fbytes(md)), q += fbytes(md);
    s->o->download(s->c, q, s->vel, fbytes(md)), q += fbytes(md);
  }
  if (keeps_pre(s)) s->o->download(s->c, q, s->R, dbytes(s->nb * s->nb)), q += dbytes(s->nb * s->nb);
  if (rb) {
    s->o->download(s->c, q, s->alpha, dbytes(nk)), q += dbytes(nk);
    s->o->download(s->c, q, s->F0, fbytes(nk));
  }
  const sgn_status st = sgn_check_backend(s->be);
  if (st != SGN_OK) {
    free(p);
    return st;
  }
  *buf = p, *bytes = total;
  return SGN_OK;
}

int sgn_state_solver(const void *buf, size_t bytes) {
  state_head h;
  const size_t hb = state_head_bytes(buf, bytes);
  if (!hb || bytes < hb) return -1;
  memcpy(&h, buf, hb);
  return h.solver >= 0 && h.solver < SGN_SOLVER_AUTO ? (int)h.solver : -1;
}

/* What is wrong with a state's values (NULL: nothing), checked before any of it is used: the
 * counters, step size and losses in range, W and Adam's moments finite (the second moments not
 * negative), a kept R finite with a positive diagonal. q is the arrays after the header; R is
 * (nb, nb) when nb > 0. */
static const char *state_values_bad(const state_head *h, const char *q, int64_t md, int adam,
                                    int64_t nb) {
  const int64_t most = (int64_t)1 << 53; /* steps no run reaches; keeps the counters' sums exact */
  if (h->step < 0 || h->step > most || h->adam_t < 0 || h->adam_t > most ||
      h->iters_at_refresh < 0 || h->iters_at_refresh > INT_MAX || h->since_refresh < 0 ||
      h->since_refresh > INT_MAX || (h->have_pre | 1) != 1 || (h->stale | 1) != 1 ||
      (h->pre_inverse | 1) != 1)
    return "a counter is out of range";
  if (!(isfinite(h->loss0) && h->loss0 >= 0 && isfinite(h->lr) && h->lr > 0 &&
        isfinite(h->time_ms) && h->time_ms >= 0))
    return "the initial loss, step size or time is not a finite number in range";
  float f;
  for (int64_t i = 0; i < md * (adam ? 3 : 1); i++) {
    memcpy(&f, q + (size_t)i * sizeof f, sizeof f);
    if (!isfinite(f) || (adam && i >= 2 * md && f < 0))
      return i < md ? "a weight is not finite" : "an Adam moment is not finite or negative";
  }
  const char *r = q + fbytes(md) * (adam ? 3 : 1);
  double v;
  for (int64_t i = 0; i < nb * nb; i++) {
    memcpy(&v, r + (size_t)i * sizeof v, sizeof v);
    if (!isfinite(v) || (i % (nb + 1) == 0 && !(v > 0)))
      return "the kept preconditioner is not finite or has a diagonal entry <= 0";
  }
  return NULL;
}

sgn_status sgn_session_load_state(sgn_session *s, const void *buf, size_t bytes) {
  state_head h;
  const size_t hb = state_head_bytes(buf, bytes);
  if (bytes >= sizeof(uint64_t) && !hb)
    return sgn_fail(SGN_E_INPUT, "checkpoint state has a bad magic");
  if (!hb || bytes < hb) return sgn_fail(SGN_E_INPUT, "checkpoint state is truncated");
  memcpy(&h, buf, hb);
  if (hb == STATE_HEAD_V1) h.boost = 1.0;
  if (hb < STATE_HEAD_V3) h.pre_lambda = 0; /* unknown: the kept R is not checked */
  if (hb < STATE_HEAD_V4) h.pre_inverse = 0;
  if (hb < sizeof(state_head)) h.ridge_rel = 0, h.rho = 0;
  if (!(isfinite(h.rho) && h.rho >= 0 && isfinite(h.ridge_rel) && h.ridge_rel >= 0))
    return sgn_fail(SGN_E_INPUT, "checkpoint state has a ridge of %g", h.rho);
  if (h.rho > 0 && !s->alpha)
    return sgn_fail(SGN_E_INPUT, "checkpoint was trained with a ridge (%g); this session has none",
                    h.ridge_rel);
  if (!(h.pre_lambda >= 0 && isfinite(h.pre_lambda)))
    return sgn_fail(SGN_E_INPUT, "checkpoint state has a preconditioner damping of %g",
                    h.pre_lambda);
  if (!(h.boost >= 1.0 && h.boost <= MAX_BOOST))
    return sgn_fail(SGN_E_INPUT, "checkpoint state has a damping multiplier of %g", h.boost);
  if (h.n != s->dm.n || h.d != s->dm.d || h.m != s->dm.m || h.k != s->dm.k)
    return sgn_fail(SGN_E_INPUT,
                    "checkpoint was taken with n=%lld d=%lld m=%lld k=%lld, this run has n=%lld "
                    "d=%lld m=%lld k=%lld",
                    (long long)h.n, (long long)h.d, (long long)h.m, (long long)h.k,
                    (long long)s->dm.n, (long long)s->dm.d, (long long)s->dm.m, (long long)s->dm.k);
  if (h.solver != (int64_t)s->opt.solver || h.nb != s->nb)
    return sgn_fail(SGN_E_INPUT, "checkpoint was taken with --solver %s and %lld samples per step",
                    h.solver >= 0 && h.solver < SGN_SOLVER_AUTO
                        ? sgn_name(SGN_NAMES_SOLVER, (int)h.solver)
                        : "?",
                    (long long)h.nb);
  int64_t md = s->dm.m * s->dm.d;
  int adam = s->opt.solver == SGN_SOLVER_ADAM;
  int pre = h.have_pre &&
            (s->opt.solver == SGN_SOLVER_GN_GRAM || s->opt.solver == SGN_SOLVER_GN_SKETCH);
  const int64_t nk = s->dm.n * s->dm.k;
  const size_t rb = h.rho > 0 ? dbytes(nk) + fbytes(nk) : 0; /* the ridge's alpha and F0 */
  size_t total = hb + fbytes(md) * (adam ? 3 : 1) + (pre ? dbytes(s->nb * s->nb) : 0) + rb;
  if (bytes != total)
    return sgn_fail(SGN_E_INPUT, "checkpoint state has %zu bytes, expected %zu", bytes, total);
  const char *q = (const char *)buf + hb;
  const char *bad = state_values_bad(&h, q, md, adam, pre ? s->nb : 0);
  if (bad) return sgn_fail(SGN_E_INPUT, "checkpoint state is corrupt: %s", bad);
  const char *ra = (const char *)buf + bytes - rb, *rf = ra + (rb ? dbytes(nk) : 0);
  for (int64_t i = 0; rb && i < nk; i++) {
    double a;
    float f;
    memcpy(&a, ra + (size_t)i * sizeof a, sizeof a);
    memcpy(&f, rf + (size_t)i * sizeof f, sizeof f);
    if (!isfinite(a) || !isfinite(f))
      return sgn_fail(SGN_E_INPUT, "checkpoint state is corrupt: the ridge's coefficients or "
                                   "initial outputs are not finite");
  }
  /* W goes into the trial buffers first: weights whose loss is not finite are refused with the
   * session as it was */
  s->o->upload(s->c, s->Wt, q, fbytes(md)), q += fbytes(md);
  const double loss = sgn_step_trial_loss(s);
  const sgn_status st = sgn_check_backend(s->be);
  if (st != SGN_OK) return st;
  if (!isfinite(loss))
    return sgn_fail(SGN_E_INPUT, "checkpoint state is corrupt: its weights give a loss of %g",
                    loss);
  if (adam) {
    s->o->upload(s->c, s->mom, q, fbytes(md)), q += fbytes(md);
    s->o->upload(s->c, s->vel, q, fbytes(md)), q += fbytes(md);
  }
  if (pre) s->o->upload(s->c, s->R, q, dbytes(s->nb * s->nb));
  if (rb) {
    s->o->upload(s->c, s->alpha, ra, dbytes(nk));
    s->o->upload(s->c, s->F0, rf, fbytes(nk));
  }
  s->ridge_rel = h.ridge_rel, s->rho = h.rho; /* the run's objective, whatever this session chose */
  s->opt.seed = h.seed;
  s->step = h.step, s->adam_t = h.adam_t;
  s->have_pre = (int)h.have_pre, s->iters_at_refresh = (int)h.iters_at_refresh;
  s->stale = (int)h.stale, s->since_refresh = (int)h.since_refresh;
  s->loss0 = h.loss0, s->time_ms = h.time_ms, s->boost = h.boost;
  s->lr = s->opt.lr > 0 ? s->opt.lr : h.lr; /* --lr given now (or stored with the run) wins */
  s->pre_lambda = h.pre_lambda;
  /* the kept preconditioner in this session's form (R^-1 where it applies two products, R where
   * it solves); one that does not invert is rebuilt at the next step */
  if (pre && (h.pre_inverse != 0) != (s->rinv != 0) && s->o->r_inverse(s->c, s->nb, s->R, s->riw))
    s->have_pre = 0;
  sgn_step_accept(s, loss); /* Ft, the loaded outputs, is F now */
  s->pen = sgn_ridge_penalty(s, s->F, 0);
  s->o->copy(s->c, s->Wt, s->W, fbytes(md));
  return sgn_check_backend(s->be);
}
