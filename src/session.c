/* session.c — a training session: its buffer list (one ALLOC walk that counts the bytes, then
 * the same walk that allocates them, so the memory budget cannot drift from what is allocated),
 * the neuron chunk that fits the budget, --solver auto, create and free, the getters, and
 * sgn_session_step, which runs the solver's step (gn.c, first_order.c). Everything is allocated
 * in sgn_session_create; a step allocates nothing. After each call that runs backend ops, a
 * sticky backend error (backend.h) becomes the caller's SGN_E_RUNTIME. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "costmodel.h"
#include "session.h"
#include "util.h"

/* ---- the buffer list ---- */

/* The session's buffers, one list walked twice: with alloc == 0 it only adds up the bytes (to
 * check them, and to pick the neuron chunk, before anything is allocated); with alloc == 1 it
 * also allocates, setting *bad to the bytes of the first allocation that fails. Sizes follow
 * s->dm (mc included), s->nb and s->opt; the workspaces are s's backend's. Returns the bytes, the
 * host arrays of sgn_session_create included. */
static size_t session_layout(sgn_session *s, int alloc, size_t *bad) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  const sgn_options opt = s->opt;
  const int64_t n = s->dm.n, d = s->dm.d, m = s->dm.m, k = s->dm.k, nb = s->nb;
  size_t total = 0, pbytes = 0;
  ALLOC(s->X, fbytes(n * d));
  ALLOC(s->Y, fbytes(n * k));
  ALLOC(s->W, fbytes(m * d));
  ALLOC(s->Wt, fbytes(m * d));
  ALLOC(s->A, fbytes(m * k));
  ALLOC(s->M, mbytes(n, m));
  ALLOC(s->Mt, mbytes(n, m));
  ALLOC(s->F, fbytes(n * k));
  ALLOC(s->Ft, fbytes(n * k));
  ALLOC(s->work, sgn_work_floats(s->dm) * sizeof(float)); /* forward runs on all n rows */
  ALLOC(s->D, fbytes(m * d));
  ALLOC(s->Dtmp, fbytes(m * d));
  ALLOC(s->vf, fbytes(nb * k));
  ALLOC(s->of, fbytes(nb * k));
  ALLOC(s->r, dbytes(nb * k));
  ALLOC(s->g, dbytes(nb * k));
  ALLOC(s->cgw, dbytes(4 * nb * k));
  ALLOC(s->rfull, dbytes(n * k));
  ALLOC(s->diag, dbytes(nb));
  if (is_gn(opt.solver) && opt.ridge != 0) { /* the ridge's (never batched: session_shape) */
    ALLOC(s->alpha, dbytes(n * k));
    ALLOC(s->F0, fbytes(n * k));
    ALLOC(s->rhs, dbytes(nb * k));
  }
  if (s->batched || opt.solver == SGN_SOLVER_ADAM) {
    ALLOC(s->Xb, fbytes(nb * d));
    ALLOC(s->Yb, fbytes(nb * k));
    ALLOC(s->Mb, mbytes(nb, m));
    ALLOC(s->Fb, fbytes(nb * k));
    ALLOC(s->idx, (size_t)nb * sizeof(int64_t));
  }
  switch (opt.solver) {
  case SGN_SOLVER_GN_EXACT:
    ALLOC(s->R, dbytes(nb * k * nb * k));
    ALLOC(s->qrw, o->cholesky_work_bytes(c, nb * k));
    break;
  case SGN_SOLVER_GN_GRAM:
    ALLOC(s->R, dbytes(nb * nb));
    ALLOC(s->qrw, o->cholesky_work_bytes(c, nb));
    if (sgn_heads_solve(s->dm)) {
      ALLOC(s->Gh, fbytes(k * nb * nb));
      if (!s->batched) ALLOC(s->Kxx, fbytes(n * n));
    }
    break;
  case SGN_SOLVER_GN_SKETCH:
    s->s = (int64_t)ceil(opt.sketch_ratio * (double)nb);
    ALLOC(s->R, dbytes(nb * nb));
    /* Y in panels where the backend makes them (O(nb panel), never (nb, s)); gn.c tells the
     * two apart by Ysk == NULL */
    if (o->sketch_panels_r &&
        (pbytes = o->sketch_panels_work_bytes(c, (sgn_dims){nb, d, m, k, s->dm.mc, s->dm.heads},
                                              opt.sketch, s->s, opt.precision)) > 0) {
      ALLOC(s->skw, pbytes);
      break;
    }
    ALLOC(s->Ysk, fbytes(nb * s->s));
    ALLOC(s->skw, o->sketch_work_bytes(c, (sgn_dims){nb, d, m, k, s->dm.mc, s->dm.heads},
                                       opt.sketch, s->s));
    ALLOC(s->qrw, o->sketch_r_work_bytes(c, nb, s->s, opt.precision));
    break;
  case SGN_SOLVER_ADAM:
    ALLOC(s->mom, fbytes(m * d));
    ALLOC(s->vel, fbytes(m * d));
    ALLOC(s->mom0, fbytes(m * d));
    ALLOC(s->vel0, fbytes(m * d));
    break;
  default: break;
  }
  /* gn-gram and gn-sketch apply their preconditioner as two products with R^-1, kept in R's
   * place, where the backend runs that faster: the products' vector. r_inverse's workspace
   * either way: a resumed state may hold the other form. */
  if (opt.solver == SGN_SOLVER_GN_GRAM || opt.solver == SGN_SOLVER_GN_SKETCH) {
    ALLOC(s->riw, o->r_inverse_work_bytes(c, nb));
    if ((s->rinv = o->rinv_preferred(c, nb, k))) ALLOC(s->pw, dbytes(nb * k));
  }
  total += (size_t)n * sizeof(int64_t) + dbytes(nb); /* the host arrays */
  return total;
}

/* The session's sizes from dm (n samples, the model's d, m, k; dm.mc as given) and opt, its
 * solver resolved: rows per step nb and whether steps gather batches. */
static void session_shape(sgn_session *s, sgn_dims dm, const sgn_options *opt) {
  s->opt = *opt;
  s->dm = dm;
  if (opt->solver == SGN_SOLVER_ADAM) s->nb = opt->batch ? opt->batch : 128;
  else if (is_gn(opt->solver)) s->nb = opt->batch ? opt->batch : dm.n;
  else s->nb = dm.n;
  if (s->nb > dm.n) s->nb = dm.n;
  s->batched = s->nb < dm.n;
}

/* session_layout's count at chunk width dm.mc */
static size_t session_bytes(void *user, sgn_dims dm) {
  sgn_session *s = user;
  size_t bad = 0;
  s->dm = dm;
  return session_layout(s, 0, &bad);
}

size_t sgn_session_held_bytes(sgn_session *s) { return session_bytes(s, s->dm); }

/* ---- the memory budget ---- */

/* Bisects over 64 q < m (32 neurons of each half, times q); m <= 64 is never chunked, and when
 * not even 64 fits the caller sees it and refuses. */
int64_t sgn_widest_chunk(sgn_dims dm, double limit, size_t (*bytes)(void *, sgn_dims), void *user) {
  dm.mc = 0;
  if (dm.m <= 64 || (double)bytes(user, dm) <= limit) return 0;
  int64_t lo = 1, hi = (dm.m - 1) / 64, best = 0; /* mc = 64 q < m */
  while (lo <= hi) {
    const int64_t q = lo + (hi - lo) / 2;
    dm.mc = 64 * q;
    if ((double)bytes(user, dm) <= limit) best = q, lo = q + 1;
    else hi = q - 1;
  }
  return 64 * (best ? best : 1);
}

int64_t sgn_forced_chunk(int64_t chunk_neurons, int64_t m) {
  return chunk_neurons > 0 && chunk_neurons < m ? chunk_neurons : 0;
}

double sgn_mem_budget(double max_memory, double avail) {
  return max_memory > 0 && max_memory < avail ? max_memory : avail;
}

/* bytes in KiB, MiB or GiB, one decimal */
static const char *human_size(double b, char *buf, size_t cap) {
  if (b >= 1073741824.0) snprintf(buf, cap, "%.1f GiB", b / 1073741824.0);
  else if (b >= 1048576.0) snprintf(buf, cap, "%.1f MiB", b / 1048576.0);
  else snprintf(buf, cap, "%.1f KiB", b / 1024.0);
  return buf;
}

sgn_status sgn_budget_fail(const char *what, const char *backend, size_t need, double limit,
                           double avail, const char *shape) {
  char a[32], b[32];
  return sgn_fail(SGN_E_INPUT,
                  "%s needs %s (%zu bytes) on the %s backend, more than the %s "
                  "(%.0f bytes) %s (%s)",
                  what, human_size((double)need, a, sizeof a), need, backend,
                  human_size(limit, b, sizeof b), limit,
                  limit < avail ? "--max-memory allows" : "available", shape);
}

size_t sgn_session_mem_bytes(const sgn_backend *be, sgn_dims dm, const sgn_options *opt) {
  sgn_session t = {0};
  t.o = be->ops, t.c = be->ctx;
  const sgn_options o = opt ? *opt : sgn_options_default();
  session_shape(&t, dm, &o);
  return session_bytes(&t, dm);
}

size_t sgn_session_mem_bytes_min(const sgn_backend *be, sgn_dims dm, const sgn_options *opt) {
  const sgn_options o = opt ? *opt : sgn_options_default();
  dm.mc = sgn_forced_chunk(o.chunk_neurons, dm.m);
  if (o.chunk_neurons > 0) return sgn_session_mem_bytes(be, dm, &o);
  dm.mc = 0;
  const size_t whole = sgn_session_mem_bytes(be, dm, &o);
  if (dm.m <= 64) return whole;
  dm.mc = 64;
  const size_t narrow = sgn_session_mem_bytes(be, dm, &o);
  return narrow < whole ? narrow : whole;
}

int64_t sgn_session_max_n(const sgn_backend *be, sgn_dims dm, const sgn_options *opt,
                          double bytes) {
  /* at most 1e18: a count that fits at n fits size_t at 2 n (it grows at most fourfold) */
  if (!(bytes <= 1e18)) bytes = 1e18;
  int64_t lo = 0, hi = 1; /* lo fits (n = 0 counts as fitting), hi is the first to try */
  for (;; hi *= 2) {
    dm.n = hi;
    if ((double)sgn_session_mem_bytes_min(be, dm, opt) > bytes) break;
    lo = hi;
  }
  while (hi - lo > 1) { /* lo fits, hi does not */
    dm.n = lo + (hi - lo) / 2;
    if ((double)sgn_session_mem_bytes_min(be, dm, opt) <= bytes) lo = dm.n;
    else hi = dm.n;
  }
  return lo;
}

/* The products' (n, m) work is cut into chunks when it does not fit, so each candidate is
 * counted at the narrowest chunk it would run in: only what cannot be chunked (data, weights,
 * masks, the Gram or R, the sketch Y, workspaces) rules a solver out. */
sgn_solver sgn_session_choose_solver(const sgn_backend *be, sgn_dims dm, const sgn_options *opt,
                                     double mem_bytes_available, const sgn_cost_rates *r,
                                     char *reason, size_t reason_len) {
  sgn_options o = opt ? *opt : sgn_options_default();
  double need[SGN_COSTMODEL_CANDIDATES];
  for (int i = 0; i < SGN_COSTMODEL_CANDIDATES; i++) {
    o.solver = sgn_costmodel_candidates[i];
    need[i] = (double)sgn_session_mem_bytes_min(be, dm, &o);
  }
  o.solver = SGN_SOLVER_ADAM;
  const double first_order = (double)sgn_session_mem_bytes_min(be, dm, &o);
  return sgn_costmodel_choose_auto(dm, opt, r, need, first_order, mem_bytes_available, reason,
                                   reason_len);
}

/* ---- create and free ---- */

sgn_session *sgn_session_create(sgn_backend *be, sgn_model *model, const float *X, const float *Y,
                                int64_t n, const sgn_options *opt_in) {
  sgn_options opt = opt_in ? *opt_in : sgn_options_default();
  if (opt.chunk_neurons < 0 || opt.chunk_neurons == 1) {
    sgn_fail(SGN_E_INPUT, "invalid chunk width %lld (0 for automatic, or at least 2 neurons)",
             (long long)opt.chunk_neurons);
    return NULL;
  }
  if (n < 1) {
    sgn_fail(SGN_E_INPUT, "no training samples");
    return NULL;
  }
  if (opt.sketch_ratio < 1 || !(opt.cg_tol > 0 && opt.cg_tol < 1) || opt.cg_max < 1 ||
      opt.batch < 0 || (opt.refresh == SGN_REFRESH_EVERY && opt.refresh_every < 1)) {
    sgn_fail(SGN_E_INPUT,
             "invalid solver options (sketch ratio >= 1, 0 < cg tol < 1, cg max >= 1)");
    return NULL;
  }
  if (!isfinite(opt.ridge)) {
    sgn_fail(SGN_E_INPUT, "invalid ridge %g (>= 0, or < 0 for automatic)", opt.ridge);
    return NULL;
  }
  if (!sgn_name(SGN_NAMES_PRECISION, (int)opt.precision)) {
    sgn_fail(SGN_E_INPUT, "invalid precision %d (fp64, fp32, tf32 or bf16: sgn_precision)",
             (int)opt.precision);
    return NULL;
  }
  const sgn_precision pp = opt.product_precision;
  if (pp != SGN_PRECISION_FP32 && pp != SGN_PRECISION_TF32 && pp != SGN_PRECISION_BF16) {
    sgn_fail(SGN_E_INPUT, "invalid product precision %d (fp32, tf32 or bf16: sgn_precision)",
             (int)pp);
    return NULL;
  }
  if (pp != SGN_PRECISION_FP32 && !be->ops->set_product_precision) {
    sgn_fail(SGN_E_INPUT, "the %s backend runs its products in fp32 only (product precision %s)",
             be->ops->name, sgn_name(SGN_NAMES_PRECISION, (int)pp));
    return NULL;
  }
  const int64_t heads = sgn_model_is_separate(model) ? model->k : 0;
  if (heads && opt.solver == SGN_SOLVER_GN_EXACT) {
    sgn_fail(SGN_E_INPUT,
             "--solver gn-exact forms the coupled Gram of shared outputs; this model "
             "has separate outputs (gn-gram solves their block-diagonal Gram; or use --outputs "
             "shared)");
    return NULL;
  }
  sgn_session *s = sgn_calloc(1, sizeof *s);
  if (!s) return NULL;
  const int auto_solver = opt.solver == SGN_SOLVER_AUTO;
  if (auto_solver) {
    sgn_dims d0 = {n, model->d, model->m, model->k, 0, heads};
    sgn_cost_rates rates = sgn_costmodel_rates(be->ops->name);
    double avail = (double)be->ops->mem_available(be->ctx);
    if (opt.max_memory > 0 && opt.max_memory < avail) avail = opt.max_memory;
    opt.solver = sgn_session_choose_solver(be, d0, &opt, avail, &rates, s->solver_reason,
                                           sizeof s->solver_reason);
  }
  if (!is_gn(opt.solver)) {
    if (opt.ridge > 0 && !auto_solver) {
      sgn_fail(SGN_E_INPUT, "a ridge needs a Gauss-Newton solver (--solver %s has none)",
               sgn_name(SGN_NAMES_SOLVER, opt.solver));
      free(s);
      return NULL;
    }
    opt.ridge = 0; /* auto: first-order solvers run without one */
  }
  if (opt.batch > 0 && opt.batch < n) {
    if (opt.ridge > 0) {
      sgn_fail(SGN_E_INPUT, "a ridge needs full-batch steps (batch %lld of %lld samples)",
               (long long)opt.batch, (long long)n);
      free(s);
      return NULL;
    }
    opt.ridge = 0;
  }
  s->be = be, s->o = be->ops, s->c = be->ctx, s->model = model;
  session_shape(s, (sgn_dims){n, model->d, model->m, model->k, 0, heads}, &opt);
  int64_t d = model->d, m = model->m, k = model->k;
  s->ls = opt.line_search >= 0 ? opt.line_search : is_gn(opt.solver);
  int64_t nb = s->nb;
  if (opt.refresh == SGN_REFRESH_DEFAULT)
    s->opt.refresh = opt.solver == SGN_SOLVER_GN_GRAM ? SGN_REFRESH_AUTO : SGN_REFRESH_ALWAYS;
  if (s->batched) s->opt.refresh = SGN_REFRESH_ALWAYS; /* a new batch every step */

  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  /* Count before allocating: all n m neurons at once when that fits what the backend has (or
   * --max-memory), else the widest chunk that fits; --chunk-neurons forces a width. Then
   * allocate. */
  const double avail = (double)o->mem_available(c);
  const double limit = sgn_mem_budget(opt.max_memory, avail);
  s->dm.mc = opt.chunk_neurons ? sgn_forced_chunk(opt.chunk_neurons, m)
                               : sgn_widest_chunk(s->dm, limit, session_bytes, s);
  size_t total = session_bytes(s, s->dm);
  if ((double)total > limit && sgn_heads_solve(s->dm) && s->opt.solver == SGN_SOLVER_GN_GRAM) {
    /* the k Gram blocks do not fit: PCG on the products, as for shared outputs */
    s->dm.heads = 0;
    s->dm.mc = opt.chunk_neurons ? sgn_forced_chunk(opt.chunk_neurons, m)
                                 : sgn_widest_chunk(s->dm, limit, session_bytes, s);
    total = session_bytes(s, s->dm);
  }
  /* separate outputs: the factor of the blocks' current mean is the better preconditioner
   * (fewer iterations than a kept one, README "Many outputs"; the blocks are formed every step
   * anyway, and on the products' path a kept factor ran PCG to its cap) */
  if (opt.refresh == SGN_REFRESH_DEFAULT && !s->batched && s->opt.solver == SGN_SOLVER_GN_GRAM &&
      heads)
    s->opt.refresh = SGN_REFRESH_ALWAYS;
  if ((double)total > limit) {
    char shape[160];
    snprintf(shape, sizeof shape, "n=%lld, width %lld%s, solver memory included", (long long)n,
             (long long)m, sgn_chunked(s->dm) ? ", even with neurons in the smallest chunks" : "");
    sgn_budget_fail("this run", o->name, total, limit, avail, shape);
    sgn_session_free(s);
    return NULL;
  }
  size_t bad = 0;
  total = session_layout(s, 1, &bad);
  if (!bad && !(s->perm = calloc((size_t)n, sizeof(int64_t)))) bad = (size_t)n * sizeof(int64_t);
  if (!bad && !(s->diag_h = calloc((size_t)nb, sizeof(double)))) bad = dbytes(nb);
  if (bad) {
    sgn_fail(SGN_E_RUNTIME,
             "out of memory: this run needs %.1f MiB (%zu bytes) on the %s backend; allocating "
             "%zu bytes failed",
             (double)total / 1048576.0, total, o->name, bad);
    sgn_session_free(s);
    return NULL;
  }
  (void)sgn_backend_set_product_precision(be, pp); /* checked above; fp32 back at free */
  o->upload(c, s->X, X, fbytes(n * d));
  o->upload(c, s->Y, Y, fbytes(n * k));
  o->upload(c, s->W, model->W, fbytes(m * d));
  o->upload(c, s->A, model->A, fbytes(m * k));
  if (s->Kxx) o->gemm(c, 0, 1, n, n, d, s->X, d, s->X, d, s->Kxx, n); /* rows never change */
  /* step 0: the evaluation before any update */
  o->copy(c, s->Wt, s->W, fbytes(m * d));
  sgn_step_accept(s, sgn_step_trial_loss(s));
  if (sgn_check_backend(be)) {
    sgn_session_free(s);
    return NULL;
  }
  s->loss0 = s->loss;
  if (s->F0) o->copy(c, s->F0, s->F, fbytes(n * k));
  if (s->opt.ridge != 0 && sgn_ridge_choose(s, Y) != SGN_OK) {
    sgn_session_free(s);
    return NULL;
  }
  s->rhs = s->rhs ? s->rhs : s->r; /* no ridge: the solve's right side is the residual */
  s->lr = opt.lr > 0 ? opt.lr : (opt.solver == SGN_SOLVER_ADAM ? 1e-3 : 1.0);
  s->boost = 1.0;
  return s;
}

void sgn_session_free(sgn_session *s) {
  if (!s) return;
  void *ptrs[] = {s->X,    s->Y,   s->W,    s->Wt,  s->A,   s->M,   s->Mt,  s->F,   s->Ft,
                  s->work, s->D,   s->Dtmp, s->vf,  s->of,  s->r,   s->g,   s->cgw, s->rfull,
                  s->diag, s->Xb,  s->Yb,   s->Mb,  s->Fb,  s->idx, s->R,   s->riw, s->pw,
                  s->Gh,   s->Kxx,  s->Ysk, s->skw, s->qrw, s->mom, s->vel, s->mom0,
                  s->vel0, s->Xte, s->Yte,  s->Mte, s->Fte, s->rte, s->alpha, s->F0,
                  s->rhs != s->r ? s->rhs : NULL};
  for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++)
    if (ptrs[i]) s->o->free(s->c, ptrs[i]);
  (void)sgn_backend_set_product_precision(s->be, SGN_PRECISION_FP32);
  free(s->perm);
  free(s->diag_h);
  free(s);
}

/* ---- the step ---- */

sgn_status sgn_session_step(sgn_session *s, sgn_step_info *info) {
  memset(info, 0, sizeof *info);
  sgn_status st = sgn_check_backend(s->be); /* a failed backend runs no more steps */
  if (st != SGN_OK) return st;
  s->step++;
  info->step = s->step;
  info->loss_before = s->loss;
  info->objective_before = s->loss + s->pen;
  double t0 = sgn_now_ms();
  sgn_backend_set_stop(s->be, &s->interrupt); /* long ops stop early on an interrupt */
  switch (s->opt.solver) {
  case SGN_SOLVER_GD: st = sgn_gd_step(s, info); break;
  case SGN_SOLVER_ADAM: st = sgn_adam_step(s, info); break;
  default: st = sgn_gn_step(s, info); break;
  }
  s->o->sync(s->c);
  sgn_backend_set_stop(s->be, NULL);
  info->step_ms = sgn_now_ms() - t0;
  info->loss = s->loss;
  info->objective = s->loss + s->pen;
  if (st == SGN_E_INTERRUPTED && !sgn_backend_error(s->be)) {
    /* the session stays that of the last completed step; the request is spent */
    s->step--;
    atomic_store(&s->interrupt, 0);
    return st;
  }
  s->time_ms += info->step_ms;
  const sgn_status be_st = sgn_check_backend(s->be); /* the root cause of any other failure */
  return be_st != SGN_OK ? be_st : st;
}

/* ---- getters and copies out ---- */

double sgn_session_loss(const sgn_session *s) { return s->loss; }
int64_t sgn_session_chunk_neurons(const sgn_session *s) {
  return sgn_chunked(s->dm) ? s->dm.mc : 0;
}
double sgn_session_initial_loss(const sgn_session *s) { return s->loss0; }
double sgn_session_ridge(const sgn_session *s) { return s->ridge_rel; }
sgn_solver sgn_session_solver(const sgn_session *s) { return s->opt.solver; }
const char *sgn_session_solver_reason(const sgn_session *s) { return s->solver_reason; }
int64_t sgn_session_steps(const sgn_session *s) { return s->step; }
double sgn_session_time_ms(const sgn_session *s) { return s->time_ms; }

void sgn_session_interrupt(sgn_session *s) {
  if (s) atomic_store(&s->interrupt, 1);
}

void sgn_session_set_progress(sgn_session *s, sgn_progress_fn fn, void *user) {
  s->progress = fn, s->progress_user = user;
}

sgn_status sgn_session_outputs(const sgn_session *s, float *out) {
  s->o->download(s->c, out, s->F, fbytes(s->dm.n * s->dm.k));
  return sgn_check_backend(s->be);
}

sgn_status sgn_session_sync(sgn_session *s) {
  s->o->download(s->c, s->model->W, s->W, fbytes(s->dm.m * s->dm.d));
  return sgn_check_backend(s->be);
}
