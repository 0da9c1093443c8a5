/* solvers.c — a training session and its solvers: gd, adam, gn-exact, gn-cg, gn-sketch,
 * gn-gram, and the backtracking line search, all written once against the backend interface.
 * Everything is allocated in sgn_session_create; a step allocates nothing. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "costmodel.h"
#include "linalg.h"
#include "pcg.h"
#include "rng.h"
#include "sketch.h"
#include "solvers.h"
#include "util.h"

#define LS_MAX_HALVINGS 60 /* from --lr 1e12 down to 1e-6 */
#define DAMPING_RETRIES 8  /* raising lambda 10x each time */
#define BASE_DAMPING 1e-6  /* automatic damping: lambda = BASE_DAMPING boost mean(G_ii) */
#define MAX_BOOST 1e4      /* ... up to 1e-2 mean(G_ii), which costs about one more step */
#define DIVERGED 1e4       /* without a line search, a step to a loss this many times the
                              step-0 loss is a numerical fault, rejected like a non-finite one */
#define POWER_ITERS 30
#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8

struct sgn_session {
  sgn_backend *be;
  const sgn_backend_ops *o;
  void *c;
  sgn_model *model;
  sgn_options opt;
  sgn_dims dm;  /* the full training set: n, d, m, k */
  int64_t nb;   /* samples per Gauss-Newton step or Adam update (n unless batched) */
  int batched;  /* nb < n: steps work on gathered rows Xb, Yb */
  int ls;       /* line search on */
  double lr;    /* current step size (adam: may be halved by the line search) */
  double loss;  /* full training loss at the current W */
  int64_t step;

  /* backend memory; (rows, cols) row-major */
  float *X, *Y;        /* (n, d), (n, k) */
  float *W, *Wt, *A;   /* (m, d) current and trial weights, (m, k) */
  uint32_t *M, *Mt;    /* (n, SGN_MASK_WORDS(m)) bit masks 1[X W^T > 0] at W and at the trial */
  float *F, *Ft;       /* (n, k) outputs at W and at the trial */
  float *work;         /* sgn_work_floats(dm) product scratch: (n, m), or (n, mc) + (n, k) in
                          neuron chunks (dm.mc, chosen in sgn_session_create) */
  float *D, *Dtmp;     /* (m, d) update direction, operator scratch */
  float *vf, *of;      /* (nb, k) float vectors for the products */
  double *r, *g;       /* (nb k) residual and solution */
  double *cgw;         /* 4 nb k: PCG vectors */
  double *rfull;       /* (n k) residual of the full set */
  double *diag;        /* (nb) Gram diagonal */
  double *diag_h;      /* (nb) host copy */
  float *Xb, *Yb, *Fb; /* batch rows (nb, .) */
  uint32_t *Mb;        /* (nb, SGN_MASK_WORDS(m)) the batch's mask */
  int64_t *idx;        /* (nb) batch row indices, backend memory */
  int64_t *perm;       /* (n) host permutation */

  /* preconditioner / factor: (N, N) upper R with R^T R ~ G + lambda I */
  double *R;
  float *Ysk;          /* (nb, s) sketch */
  void *skw, *qrw;     /* sketch workspace; its R's (gn-sketch) or Cholesky workspace */
  int64_t s;
  int have_pre, iters_at_refresh, stale, since_refresh;
  float *mom, *vel, *mom0, *vel0; /* adam moments and their backups (m, d) */
  int64_t adam_t;
  double lambda;       /* damping of the current solve */
  double boost;        /* automatic damping's multiplier (Levenberg-Marquardt): x10 after a
                          step the line search had to shorten, /10 (down to 1) after a full one */
  double loss0;        /* the step-0 loss */
  double time_ms;      /* sum of the steps' step_ms */
  sgn_progress_fn progress;
  void *progress_user;
  /* an attached test set */
  int64_t nt;
  float *Xte, *Yte, *Fte;       /* (nt, d), (nt, k), (nt, k) */
  uint32_t *Mte;                /* (min(nt, n), SGN_MASK_WORDS(m)): one block's mask */
  double *rte;                  /* (nt k) */
  char solver_reason[512];      /* why --solver auto chose opt.solver */
};

/* ---- small helpers ---- */

static size_t fbytes(int64_t count) { return (size_t)count * sizeof(float); }
static size_t dbytes(int64_t count) { return (size_t)count * sizeof(double); }
/* bytes of a bit mask of rows x m */
static size_t mbytes(int64_t rows, int64_t m) {
  return (size_t)rows * (size_t)SGN_MASK_WORDS(m) * sizeof(uint32_t);
}

static int is_gn(sgn_solver s) { return s >= SGN_SOLVER_GN_EXACT; }

sgn_options sgn_options_default(void) {
  sgn_options o = {0};
  o.solver = SGN_SOLVER_GN_SKETCH;
  o.sketch = SGN_SKETCH_SRHT;
  o.sketch_ratio = 4.0;
  o.refresh = SGN_REFRESH_DEFAULT;
  o.refresh_every = 1;
  o.damping = -1;
  o.lr = -1;
  o.cg_tol = 1e-3;
  o.cg_max = 100;
  o.batch = 0;
  o.line_search = -1;
  o.seed = 1;
  o.max_memory = 0;
  o.chunk_neurons = 0;
  return o;
}

/* Fisher-Yates over perm, the first `count` entries drawn with counter base `base`. */
static void shuffle(int64_t *perm, int64_t n, int64_t count, uint64_t seed, uint64_t base) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  for (int64_t i = 0; i < count && i < n - 1; i++) {
    int64_t j = i + (int64_t)sgn_rng_below(seed, SGN_STREAM_BATCH, base + (uint64_t)i,
                                           (uint64_t)(n - i));
    int64_t t = perm[i];
    perm[i] = perm[j], perm[j] = t;
  }
}

/* Loss at the trial weights Wt: forward over the full set into Mt, Ft. */
static double trial_loss(sgn_session *s) {
  s->o->forward(s->c, s->dm, s->X, s->Wt, s->A, s->work, s->Mt, s->Ft);
  double ss = s->o->residual(s->c, s->dm.n * s->dm.k, s->Ft, s->Y, s->rfull);
  return ss / (2.0 * (double)s->dm.n);
}

static void accept_trial(sgn_session *s, double loss) {
  float *t;
  uint32_t *u;
  t = s->W, s->W = s->Wt, s->Wt = t;
  u = s->M, s->M = s->Mt, s->Mt = u;
  t = s->F, s->F = s->Ft, s->Ft = t;
  s->loss = loss;
}

/* The largest loss a trial may reach and be accepted. */
static double accept_bound(const sgn_session *s) {
  return s->ls ? s->loss : DIVERGED * (s->loss0 > 0 ? s->loss0 : s->loss);
}

/* W <- W - eta D with eta = lr, halved until the loss does not go up (when the line search is
 * on). Returns SGN_OK, or SGN_E_RUNTIME if the loss is not finite with the line search off. */
static sgn_status line_search(sgn_session *s, double lr, sgn_step_info *info) {
  const sgn_backend_ops *o = s->o;
  int64_t md = s->dm.m * s->dm.d;
  double eta = lr;
  /* A trial whose loss is not finite, or that blows the loss up by DIVERGED, is never
   * accepted, line search or not. */
  for (int h = 0; h <= LS_MAX_HALVINGS; h++, eta *= 0.5) {
    o->copy(s->c, s->Wt, s->W, fbytes(md));
    o->axpy_f(s->c, md, (float)-eta, s->D, s->Wt);
    double loss = trial_loss(s);
    if (isfinite(loss) && loss <= accept_bound(s)) {
      accept_trial(s, loss);
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

/* ---- session ---- */

/* The backend's workspace bytes for the session's solver; the CPU backend's when the session
 * has no backend (sgn_session_mem_bytes with be == NULL: the cost model). */
static size_t ws_sketch(const sgn_session *s, sgn_dims dm) {
  return s->o ? s->o->sketch_work_bytes(s->c, dm, s->opt.sketch, s->s)
              : sgn_sketch_work_bytes_cpu(dm, s->opt.sketch, s->s);
}
static size_t ws_sketch_r(const sgn_session *s, int64_t n) {
  return s->o ? s->o->sketch_r_work_bytes(s->c, n, s->s) : sgn_sketch_r_work_bytes_cpu(n, s->s);
}
static size_t ws_cholesky(const sgn_session *s, int64_t N) {
  return s->o ? s->o->cholesky_work_bytes(s->c, N) : 0; /* LAPACK's dpotrf needs none */
}

/* One entry of a buffer list walked twice (session_layout, test_layout, eval_layout): it always
 * adds the bytes to `total`; with `alloc` it also allocates ptr from backend o (ctx c), setting
 * *bad on the first failure and allocating nothing after it. */
#define ALLOC(ptr, bytes)                                                  \
  do {                                                                     \
    size_t b_ = (bytes);                                                   \
    total += b_;                                                           \
    if (alloc && !*bad && !((ptr) = o->alloc(c, b_ ? b_ : 1))) *bad = 1;   \
  } while (0)

/* The session's buffers, one list walked twice: with alloc == 0 it only adds up the bytes (to
 * check them, and to pick the neuron chunk, before anything is allocated); with alloc == 1 it
 * also allocates, setting *bad on the first failure. Sizes follow s->dm (mc included), s->nb
 * and s->opt. Returns the bytes, the host arrays of sgn_session_create included. */
static size_t session_layout(sgn_session *s, int alloc, int *bad) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  const sgn_options opt = s->opt;
  const int64_t n = s->dm.n, d = s->dm.d, m = s->dm.m, k = s->dm.k, nb = s->nb;
  size_t total = 0;
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
    ALLOC(s->qrw, ws_cholesky(s, nb * k));
    break;
  case SGN_SOLVER_GN_GRAM:
    ALLOC(s->R, dbytes(nb * nb));
    ALLOC(s->qrw, ws_cholesky(s, nb));
    break;
  case SGN_SOLVER_GN_SKETCH:
    s->s = (int64_t)ceil(opt.sketch_ratio * (double)nb);
    ALLOC(s->R, dbytes(nb * nb));
    ALLOC(s->Ysk, fbytes(nb * s->s));
    ALLOC(s->skw, ws_sketch(s, (sgn_dims){nb, d, m, k, s->dm.mc}));
    ALLOC(s->qrw, ws_sketch_r(s, nb));
    break;
  case SGN_SOLVER_ADAM:
    ALLOC(s->mom, fbytes(m * d));
    ALLOC(s->vel, fbytes(m * d));
    ALLOC(s->mom0, fbytes(m * d));
    ALLOC(s->vel0, fbytes(m * d));
    break;
  default: break;
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
  int bad = 0;
  s->dm = dm;
  return session_layout(s, 0, &bad);
}

/* The neuron chunk of a buffer list whose bytes at chunk width dm.mc are bytes(user, dm):
 * 0 (all m at once) when that fits limit, else the widest 64 q < m that fits (32 neurons of each
 * half, times q), else 64, the narrowest (the caller sees it does not fit and refuses). m <= 64
 * is never chunked. */
static int64_t widest_chunk(sgn_dims dm, double limit, size_t (*bytes)(void *, sgn_dims),
                            void *user) {
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

/* The chunk a forced width asks for: 0 (automatic) stays 0, a width >= m is no chunking. */
static int64_t forced_chunk(int64_t chunk_neurons, int64_t m) {
  return chunk_neurons > 0 && chunk_neurons < m ? chunk_neurons : 0;
}

/* The budget: --max-memory when set and below what the backend has. */
static double budget(double max_memory, double avail) {
  return max_memory > 0 && max_memory < avail ? max_memory : avail;
}

/* bytes in KiB, MiB or GiB, one decimal */
static const char *human_size(double b, char *buf, size_t cap) {
  if (b >= 1073741824.0) snprintf(buf, cap, "%.1f GiB", b / 1073741824.0);
  else if (b >= 1048576.0) snprintf(buf, cap, "%.1f MiB", b / 1048576.0);
  else snprintf(buf, cap, "%.1f KiB", b / 1024.0);
  return buf;
}

/* The one refusal of a budget too small, in the units a user reads, with the exact bytes. */
static sgn_status budget_fail(const char *what, const char *backend, size_t need, double limit,
                              double avail, const char *shape) {
  char a[32], b[32];
  return sgn_fail(SGN_E_INPUT, "%s needs %s (%zu bytes) on the %s backend, more than the %s "
                  "(%.0f bytes) %s (%s)",
                  what, human_size((double)need, a, sizeof a), need, backend,
                  human_size(limit, b, sizeof b), limit,
                  limit < avail ? "--max-memory allows" : "available", shape);
}

size_t sgn_session_mem_bytes(const sgn_backend *be, sgn_dims dm, const sgn_options *opt) {
  sgn_session t = {0};
  t.o = be ? be->ops : NULL, t.c = be ? be->ctx : NULL;
  const sgn_options o = opt ? *opt : sgn_options_default();
  session_shape(&t, dm, &o);
  return session_bytes(&t, dm);
}

size_t sgn_session_mem_bytes_min(const sgn_backend *be, sgn_dims dm, const sgn_options *opt) {
  const sgn_options o = opt ? *opt : sgn_options_default();
  dm.mc = forced_chunk(o.chunk_neurons, dm.m);
  if (o.chunk_neurons > 0) return sgn_session_mem_bytes(be, dm, &o);
  dm.mc = 0;
  const size_t whole = sgn_session_mem_bytes(be, dm, &o);
  if (dm.m <= 64) return whole;
  dm.mc = 64;
  const size_t narrow = sgn_session_mem_bytes(be, dm, &o);
  return narrow < whole ? narrow : whole;
}

sgn_session *sgn_session_create(sgn_backend *be, sgn_model *model, const float *X,
                                const float *Y, int64_t n, const sgn_options *opt_in) {
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
    sgn_fail(SGN_E_INPUT, "invalid solver options (sketch ratio >= 1, 0 < cg tol < 1, cg max >= 1)");
    return NULL;
  }
  sgn_session *s = sgn_calloc(1, sizeof *s);
  if (!s) return NULL;
  if (opt.solver == SGN_SOLVER_AUTO) {
    sgn_dims d0 = {n, model->d, model->m, model->k, 0};
    sgn_cost_rates rates = sgn_costmodel_rates(be->ops->name);
    double avail = (double)be->ops->mem_available(be->ctx);
    if (opt.max_memory > 0 && opt.max_memory < avail) avail = opt.max_memory;
    opt.solver = sgn_costmodel_choose_rates(d0, &opt, avail, &rates, s->solver_reason,
                                            sizeof s->solver_reason);
  }
  s->be = be, s->o = be->ops, s->c = be->ctx, s->model = model;
  session_shape(s, (sgn_dims){n, model->d, model->m, model->k, 0}, &opt);
  int64_t d = model->d, m = model->m, k = model->k;
  s->ls = opt.line_search >= 0 ? opt.line_search : is_gn(opt.solver);
  int64_t nb = s->nb;
  if (opt.refresh == SGN_REFRESH_DEFAULT)
    s->opt.refresh = opt.solver == SGN_SOLVER_GN_GRAM ? SGN_REFRESH_AUTO : SGN_REFRESH_ALWAYS;
  if (s->batched) s->opt.refresh = SGN_REFRESH_ALWAYS; /* a new batch every step */

  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  int bad = 0;
  /* Count before allocating: all n m neurons at once when that fits what the backend has (or
   * --max-memory), else the widest chunk that fits; --chunk-neurons forces a width. Then
   * allocate. */
  const double avail = (double)o->mem_available(c);
  const double limit = budget(opt.max_memory, avail);
  s->dm.mc = opt.chunk_neurons ? forced_chunk(opt.chunk_neurons, m)
                               : widest_chunk(s->dm, limit, session_bytes, s);
  size_t total = session_bytes(s, s->dm);
  if ((double)total > limit) {
    char shape[160];
    snprintf(shape, sizeof shape, "n=%lld, width %lld%s, solver memory included", (long long)n,
             (long long)m, sgn_chunked(s->dm) ? ", even with neurons in the smallest chunks" : "");
    budget_fail("this run", o->name, total, limit, avail, shape);
    sgn_session_free(s);
    return NULL;
  }
  total = session_layout(s, 1, &bad);
  s->perm = calloc((size_t)n, sizeof(int64_t));
  s->diag_h = calloc((size_t)nb, sizeof(double));
  if (bad || !s->perm || !s->diag_h) {
    sgn_fail(SGN_E_RUNTIME, "out of memory: this run needs %.1f MiB on the %s backend",
             (double)total / 1048576.0, o->name);
    sgn_session_free(s);
    return NULL;
  }
  o->upload(c, s->X, X, fbytes(n * d));
  o->upload(c, s->Y, Y, fbytes(n * k));
  o->upload(c, s->W, model->W, fbytes(m * d));
  o->upload(c, s->A, model->A, fbytes(m * k));
  /* step 0: the evaluation before any update */
  o->copy(c, s->Wt, s->W, fbytes(m * d));
  accept_trial(s, trial_loss(s));
  s->loss0 = s->loss;
  s->lr = opt.lr > 0 ? opt.lr : (opt.solver == SGN_SOLVER_ADAM ? 1e-3 : 1.0);
  s->boost = 1.0;
  return s;
}

void sgn_session_free(sgn_session *s) {
  if (!s) return;
  void *ptrs[] = {s->X,  s->Y,  s->W,   s->Wt,  s->A,   s->M,    s->Mt,  s->F,   s->Ft,
                  s->work, s->D, s->Dtmp, s->vf, s->of, s->r,   s->g,    s->cgw, s->rfull,
                  s->diag, s->Xb, s->Yb, s->Mb,  s->Fb,  s->idx, s->R,   s->Ysk, s->skw,
                  s->qrw, s->mom, s->vel, s->mom0, s->vel0, s->Xte, s->Yte, s->Mte, s->Fte, s->rte};
  for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++)
    if (ptrs[i]) s->o->free(s->c, ptrs[i]);
  free(s->perm);
  free(s->diag_h);
  free(s);
}

double sgn_session_loss(const sgn_session *s) { return s->loss; }
int64_t sgn_session_chunk_neurons(const sgn_session *s) { return sgn_chunked(s->dm) ? s->dm.mc : 0; }
double sgn_session_initial_loss(const sgn_session *s) { return s->loss0; }
sgn_solver sgn_session_solver(const sgn_session *s) { return s->opt.solver; }
const char *sgn_session_solver_reason(const sgn_session *s) { return s->solver_reason; }
int64_t sgn_session_steps(const sgn_session *s) { return s->step; }
double sgn_session_time_ms(const sgn_session *s) { return s->time_ms; }

void sgn_session_set_progress(sgn_session *s, sgn_progress_fn fn, void *user) {
  s->progress = fn, s->progress_user = user;
}

sgn_status sgn_session_outputs(const sgn_session *s, float *out) {
  s->o->download(s->c, out, s->F, fbytes(s->dm.n * s->dm.k));
  return SGN_OK;
}

/* The test set's buffers (nt rows), walked like session_layout. Its mask is reused per block of
 * the training set's n rows (sgn_session_test). */
static size_t test_layout(sgn_session *s, int64_t nt, int alloc, int *bad) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  const int64_t d = s->dm.d, m = s->dm.m, k = s->dm.k;
  size_t total = 0;
  ALLOC(s->Xte, fbytes(nt * d));
  ALLOC(s->Yte, fbytes(nt * k));
  ALLOC(s->Mte, mbytes(nt < s->dm.n ? nt : s->dm.n, m));
  ALLOC(s->Fte, fbytes(nt * k));
  ALLOC(s->rte, dbytes(nt * k));
  return total;
}

sgn_status sgn_session_attach_test(sgn_session *s, const float *Xt, const float *Yt, int64_t nt) {
  const sgn_backend_ops *o = s->o;
  if (nt < 1) return sgn_fail(SGN_E_INPUT, "the test set is empty");
  if (s->nt) return sgn_fail(SGN_E_INPUT, "a test set is already attached");
  int64_t d = s->dm.d, m = s->dm.m, k = s->dm.k;
  /* the test set's buffers count against the same budget as the session's own */
  int bad = 0;
  const size_t test = test_layout(s, nt, 0, &bad);
  const size_t held = session_bytes(s, s->dm);
  const double avail = (double)o->mem_available(s->c) + (double)held; /* held is already taken */
  const double limit = budget(s->opt.max_memory, avail);
  if ((double)(held + test) > limit) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld, width %lld, a test set of %lld samples",
             (long long)s->dm.n, (long long)m, (long long)nt);
    return budget_fail("this run", o->name, held + test, limit, avail, shape);
  }
  test_layout(s, nt, 1, &bad);
  if (bad)
    return sgn_fail(SGN_E_RUNTIME, "out of memory for a test set of %lld samples", (long long)nt);
  o->upload(s->c, s->Xte, Xt, fbytes(nt * d));
  o->upload(s->c, s->Yte, Yt, fbytes(nt * k));
  s->nt = nt;
  return SGN_OK;
}

sgn_status sgn_session_test(sgn_session *s, double *loss, float *out) {
  if (!s->nt) return sgn_fail(SGN_E_INPUT, "no test set attached");
  sgn_dims dm = s->dm;
  /* in blocks of the training set's n rows, the rows the session's work (and Mte) is sized for */
  for (int64_t i0 = 0; i0 < s->nt; i0 += s->dm.n) {
    dm.n = s->nt - i0 < s->dm.n ? s->nt - i0 : s->dm.n;
    s->o->forward(s->c, dm, s->Xte + i0 * dm.d, s->W, s->A, s->work, s->Mte, s->Fte + i0 * dm.k);
  }
  dm.n = s->nt;
  *loss = s->o->residual(s->c, dm.n * dm.k, s->Fte, s->Yte, s->rte) / (2.0 * (double)dm.n);
  if (out) s->o->download(s->c, out, s->Fte, fbytes(dm.n * dm.k));
  return SGN_OK;
}

sgn_status sgn_session_sync(sgn_session *s) {
  s->o->download(s->c, s->model->W, s->W, fbytes(s->dm.m * s->dm.d));
  return SGN_OK;
}

/* ---- the Gauss-Newton operator on the step's rows ---- */

typedef struct gn_problem {
  sgn_session *s;
  sgn_dims dm;             /* nb rows */
  const float *X, *Y;
  const uint32_t *M;       /* mask of the rows */
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

/* out = (R^T R)^-1 in, per output column (I_k (x) R^-1 R^-T) */
static void rtr_apply(void *ctx, const double *in, double *out) {
  gn_problem *p = ctx;
  sgn_session *s = p->s;
  s->o->copy(s->c, out, in, dbytes(p->dm.n * p->dm.k));
  s->o->rtr_solve(s->c, p->dm.n, p->dm.k, s->R, out);
}

/* The step's rows: the full set, or a fresh batch gathered and run forward. */
static gn_problem gn_rows(sgn_session *s) {
  gn_problem p = {s, s->dm, s->X, s->Y, s->M, s->F};
  if (!s->batched) return p;
  int64_t nb = s->nb;
  shuffle(s->perm, s->dm.n, nb, s->opt.seed, (uint64_t)s->step * (uint64_t)s->dm.n);
  s->o->upload(s->c, s->idx, s->perm, (size_t)nb * sizeof(int64_t));
  s->o->gather_rows(s->c, nb, s->dm.d, s->X, s->idx, s->Xb);
  s->o->gather_rows(s->c, nb, s->dm.k, s->Y, s->idx, s->Yb);
  p.dm.n = nb;
  s->o->forward(s->c, p.dm, s->Xb, s->W, s->A, s->work, s->Mb, s->Fb);
  p.X = s->Xb, p.Y = s->Yb, p.M = s->Mb, p.F = s->Fb;
  return p;
}

static int want_refresh(const sgn_session *s) {
  if (!s->have_pre) return 1;
  switch (s->opt.refresh) {
  case SGN_REFRESH_AUTO: return s->stale;
  case SGN_REFRESH_EVERY: return s->since_refresh >= s->opt.refresh_every;
  default: return 1;
  }
}

/* Times a phase: adds the ms since *t0 to *acc after the backend drains, and restarts *t0. */
static void lap(sgn_session *s, double *t0, double *acc) {
  s->o->sync(s->c);
  double t = sgn_now_ms();
  *acc += t - *t0;
  *t0 = t;
}

/* One factorization + solve of (G + lambda I) g = r with the session's solver. Returns 0, or 1
 * when a factorization failed or CG broke down (the caller raises lambda and tries again). */
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
    lap(s, t0, &info->precond_ms);
    if (bad) return 1;
    o->copy(c, s->g, s->r, dbytes(len));
    o->rtr_solve(c, len, 1, s->R, s->g);
    lap(s, t0, &info->solve_ms);
    return 0;
  }
  case SGN_SOLVER_GN_CG:
    sgn_pcg(s->be, len, &op, NULL, s->r, s->g, s->opt.cg_tol, s->opt.cg_max, s->cgw, s->progress,
            s->progress_user, res);
    lap(s, t0, &info->solve_ms);
    return res->breakdown || res->stagnated;
  default: break;
  }
  /* gn-gram and gn-sketch: PCG with a kept R, rebuilt per --precond-refresh */
  if (want_refresh(s)) {
    int bad;
    if (s->opt.solver == SGN_SOLVER_GN_GRAM) {
      o->gram(c, p->dm, p->X, p->M, s->A, 0, s->work, s->R);
      bad = o->cholesky(c, nb, s->R, s->lambda, s->qrw);
    } else {
      uint64_t seed = sgn_rng_u64(s->opt.seed, SGN_STREAM_STEP_SEED, (uint64_t)s->step);
      o->sketch(c, p->dm, s->opt.sketch, s->s, seed, p->X, p->M, s->skw, s->Ysk);
      lap(s, t0, &info->sketch_ms);
      bad = o->sketch_r(c, nb, s->s, s->Ysk, s->lambda, s->qrw, s->R);
    }
    lap(s, t0, &info->precond_ms);
    if (bad) {
      s->have_pre = 0;
      return 1;
    }
    s->have_pre = 1, s->stale = 0, s->since_refresh = 0;
    info->refreshed = 1;
  }
  sgn_pcg(s->be, len, &op, &pre, s->r, s->g, s->opt.cg_tol, s->opt.cg_max, s->cgw, s->progress,
          s->progress_user, res);
  lap(s, t0, &info->solve_ms);
  if (res->breakdown || res->stagnated) return 1;
  s->since_refresh++;
  if (info->refreshed) s->iters_at_refresh = res->iters > 0 ? res->iters : 1;
  else if (res->iters > 1.5 * s->iters_at_refresh) s->stale = 1;
  return 0;
}

static sgn_status gn_step(sgn_session *s, sgn_step_info *info) {
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
  lap(s, &t0, &info->forward_ms);

  /* A singular Gram (duplicate inputs, n > m d), a CG breakdown, or CG stalled even after its
   * restart: raise lambda tenfold, at least to 1e-8 mean(G_ii), and solve again with a rebuilt
   * preconditioner. */
  sgn_pcg_result res;
  for (int attempt = 0; gn_solve(s, &p, info, &res, &t0); attempt++) {
    if (attempt == DAMPING_RETRIES)
      return sgn_fail(SGN_E_RUNTIME,
                      "step %lld: %s even with damping %g; stopping with the last good model",
                      (long long)s->step,
                      res.breakdown    ? "CG broke down (the system is not positive definite)"
                      : res.stagnated ? "CG stalled (no progress in its residual)"
                                      : "the factorization failed (the matrix is singular)",
                      s->lambda);
    s->lambda = fmax(10 * s->lambda, fmax(1e-8 * mean, 1e-30));
    s->have_pre = 0;
    info->damping_raised++;
  }
  info->damping = s->lambda;
  info->cg_iters = res.iters, info->cg_capped = res.capped, info->cg_relres = res.relres;
  info->cg_restarts = res.restarts;

  /* D = J^T g, then the line search over the full set */
  o->d2f(c, len, s->g, s->vf);
  o->vjp(c, p.dm, p.X, p.M, s->A, s->vf, s->work, s->D);
  sgn_status st = line_search(s, s->lr, info);
  lap(s, &t0, &info->update_ms);
  /* A step the line search had to shorten trusted the quadratic model too far (on a singular
   * Gram, float32 rounding of a huge null-space component of g leaks into J^T g): damp the next
   * one more. A full step relaxes the damping back towards the default. */
  if (info->ls_halvings > 0 || info->ls_failed)
    s->boost = fmin(10 * s->boost, MAX_BOOST);
  else
    s->boost = fmax(s->boost / 10, 1.0);
  return st;
}

/* lambda_max(J J^T) by power iteration on the full set (for gd's default step size) */
static double gram_top_eigenvalue(sgn_session *s) {
  int64_t len = s->dm.n * s->dm.k;
  double *v = s->cgw, *w = s->cgw + len, *h = calloc((size_t)len, sizeof(double));
  if (!h) return NAN;
  for (int64_t i = 0; i < len; i++) h[i] = sgn_rng_normal(s->opt.seed, SGN_STREAM_POWER, (uint64_t)i);
  s->o->upload(s->c, v, h, dbytes(len));
  free(h);
  gn_problem p = {s, s->dm, s->X, s->Y, s->M, s->F};
  double saved = s->lambda, est = 0;
  s->lambda = 0;
  for (int it = 0; it < POWER_ITERS; it++) {
    s->o->scal(s->c, len, 1.0 / sqrt(s->o->dot(s->c, len, v, v)), v);
    gn_apply(&p, v, w);
    est = s->o->dot(s->c, len, v, w);
    double *t = v;
    v = w, w = t;
  }
  s->lambda = saved;
  return est;
}

/* W <- W - lr J^T r / n */
static sgn_status gd_step(sgn_session *s, sgn_step_info *info) {
  const sgn_backend_ops *o = s->o;
  double t0 = sgn_now_ms();
  if (s->step == 1 && !(s->opt.lr > 0)) {
    double top = gram_top_eigenvalue(s);
    if (!(top > 0) || !isfinite(top))
      return sgn_fail(SGN_E_RUNTIME, "gd: could not estimate the top eigenvalue of the Gram matrix");
    s->lr = 1.8 * (double)s->dm.n / top; /* stable below 2 n / lambda_max */
    lap(s, &t0, &info->precond_ms);
  }
  int64_t len = s->dm.n * s->dm.k;
  o->residual(s->c, len, s->F, s->Y, s->r);
  o->d2f(s->c, len, s->r, s->vf);
  lap(s, &t0, &info->forward_ms);
  o->vjp(s->c, s->dm, s->X, s->M, s->A, s->vf, s->work, s->D);
  /* D = J^T r is n times the gradient */
  sgn_status st = line_search(s, s->lr / (double)s->dm.n, info);
  info->lr *= (double)s->dm.n;
  lap(s, &t0, &info->update_ms);
  return st;
}

/* One epoch of mini-batch Adam on L_B = 1/(2b) sum_B ||f - y||^2. With the line search on,
 * an epoch that raises the full loss is undone and retried at half the learning rate. */
static sgn_status adam_step(sgn_session *s, sgn_step_info *info) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  int64_t n = s->dm.n, md = s->dm.m * s->dm.d;
  double t0 = sgn_now_ms();
  for (int h = 0; h <= LS_MAX_HALVINGS; h++) {
    int64_t t_saved = s->adam_t;
    if (s->ls) {
      o->copy(c, s->mom0, s->mom, fbytes(md));
      o->copy(c, s->vel0, s->vel, fbytes(md));
    }
    o->copy(c, s->Wt, s->W, fbytes(md));
    shuffle(s->perm, n, n, s->opt.seed, ((uint64_t)s->step * 64 + (uint64_t)h) * (uint64_t)n);
    for (int64_t b0 = 0; b0 < n; b0 += s->nb) {
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
    double loss = trial_loss(s);
    if (isfinite(loss) && loss <= accept_bound(s)) {
      accept_trial(s, loss);
      info->lr = s->lr, info->ls_halvings = h;
      lap(s, &t0, &info->update_ms);
      return SGN_OK;
    }
    o->copy(c, s->mom, s->mom0, fbytes(md));
    o->copy(c, s->vel, s->vel0, fbytes(md));
    s->adam_t = t_saved;
    s->lr *= 0.5;
  }
  lap(s, &t0, &info->update_ms);
  if (!s->ls)
    return sgn_fail(SGN_E_RUNTIME,
                    "step %lld: Adam's epoch diverges (a non-finite or %gx larger loss) at every "
                    "learning rate down to %g; stopping with the last good model",
                    (long long)s->step, DIVERGED, s->lr);
  info->ls_failed = 1;
  return SGN_OK;
}

sgn_status sgn_session_step(sgn_session *s, sgn_step_info *info) {
  memset(info, 0, sizeof *info);
  s->step++;
  info->step = s->step;
  info->loss_before = s->loss;
  double t0 = sgn_now_ms();
  sgn_status st;
  switch (s->opt.solver) {
  case SGN_SOLVER_GD: st = gd_step(s, info); break;
  case SGN_SOLVER_ADAM: st = adam_step(s, info); break;
  default: st = gn_step(s, info); break;
  }
  s->o->sync(s->c);
  info->step_ms = sgn_now_ms() - t0;
  info->loss = s->loss;
  s->time_ms += info->step_ms;
  return st;
}

/* ---- evaluation ---- */

/* An evaluation's buffers: rows in blocks of dm.n, neurons in chunks of dm.mc. */
typedef struct eval_bufs {
  float *X, *Y, *W, *A, *F; /* (nr, d), (nr, k) or none, (m, d), (m, k), (nr, k) */
  float *work;              /* sgn_work_floats(dm) */
  uint32_t *M;              /* (nr, SGN_MASK_WORDS(m)) */
  double *r;                /* (nr k) or none */
} eval_bufs;

/* The list walked like session_layout: counts (o may be NULL), or also allocates into *b. Y and
 * r only with targets. */
static size_t eval_layout(const sgn_backend_ops *o, void *c, sgn_dims dm, int with_y,
                          eval_bufs *b, int alloc, int *bad) {
  size_t total = 0;
  eval_bufs none;
  if (!b) b = &none;
  ALLOC(b->X, fbytes(dm.n * dm.d));
  ALLOC(b->W, fbytes(dm.m * dm.d));
  ALLOC(b->A, fbytes(dm.m * dm.k));
  ALLOC(b->work, sgn_work_floats(dm) * sizeof(float));
  ALLOC(b->M, mbytes(dm.n, dm.m));
  ALLOC(b->F, fbytes(dm.n * dm.k));
  if (with_y) {
    ALLOC(b->Y, fbytes(dm.n * dm.k));
    ALLOC(b->r, dbytes(dm.n * dm.k));
  }
  return total;
}

static size_t eval_bytes(void *with_y, sgn_dims dm) {
  return eval_layout(NULL, NULL, dm, *(int *)with_y, NULL, 0, NULL);
}

size_t sgn_evaluate_mem_bytes(sgn_dims dm, int with_targets) {
  return eval_bytes(&with_targets, dm);
}

sgn_status sgn_evaluate_with(sgn_backend *be, const sgn_model *model, const float *X,
                             const float *Y, int64_t n, const sgn_options *opt_in, double *loss,
                             float *out) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  const sgn_options opt = opt_in ? *opt_in : sgn_options_default();
  if (n < 1) return sgn_fail(SGN_E_INPUT, "evaluate: no samples");
  if (opt.chunk_neurons < 0 || opt.chunk_neurons == 1)
    return sgn_fail(SGN_E_INPUT, "invalid chunk width %lld (0 for automatic, or at least 2 neurons)",
                    (long long)opt.chunk_neurons);
  int with_y = Y && loss;
  /* As a session: all rows and all m neurons at once when that fits, else the widest chunk
   * that fits (or the forced one); else, at the narrowest chunk, the most rows that fit. */
  const double avail = (double)o->mem_available(c);
  const double limit = budget(opt.max_memory, avail);
  sgn_dims dm = {n, model->d, model->m, model->k, 0};
  dm.mc = opt.chunk_neurons ? forced_chunk(opt.chunk_neurons, dm.m)
                            : widest_chunk(dm, limit, eval_bytes, &with_y);
  if ((double)eval_bytes(&with_y, dm) > limit) {
    int64_t lo = 1, hi = n - 1, best = 0;
    while (lo <= hi) {
      dm.n = lo + (hi - lo) / 2;
      if ((double)eval_bytes(&with_y, dm) <= limit) best = dm.n, lo = dm.n + 1;
      else hi = dm.n - 1;
    }
    dm.n = best ? best : 1;
    if (!best) {
      char what[64], shape[160];
      snprintf(what, sizeof what, "evaluating %lld samples", (long long)n);
      snprintf(shape, sizeof shape, "width %lld, even with %s one sample at a time",
               (long long)dm.m, sgn_chunked(dm) ? "neurons in the smallest chunks and" : "");
      return budget_fail(what, o->name, eval_bytes(&with_y, dm), limit, avail, shape);
    }
  }
  eval_bufs b = {0};
  int bad = 0;
  const size_t total = eval_layout(o, c, dm, with_y, &b, 1, &bad);
  sgn_status st = SGN_OK;
  if (bad) {
    st = sgn_fail(SGN_E_RUNTIME, "evaluate: out of memory for %.1f MiB on the %s backend",
                  (double)total / 1048576.0, o->name);
  } else {
    const int64_t nr = dm.n, d = dm.d, k = dm.k;
    o->upload(c, b.W, model->W, fbytes(dm.m * d));
    o->upload(c, b.A, model->A, fbytes(dm.m * k));
    double ss = 0;
    for (int64_t i0 = 0; i0 < n; i0 += nr) {
      sgn_dims bd = dm;
      bd.n = n - i0 < nr ? n - i0 : nr;
      o->upload(c, b.X, X + i0 * d, fbytes(bd.n * d));
      o->forward(c, bd, b.X, b.W, b.A, b.work, b.M, b.F);
      if (with_y) {
        o->upload(c, b.Y, Y + i0 * k, fbytes(bd.n * k));
        ss += o->residual(c, bd.n * k, b.F, b.Y, b.r);
      }
      if (out) o->download(c, out + i0 * k, b.F, fbytes(bd.n * k));
    }
    if (with_y) *loss = ss / (2.0 * (double)n);
  }
  void *ptrs[] = {b.X, b.Y, b.W, b.A, b.F, b.work, b.M, b.r};
  for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++)
    if (ptrs[i]) o->free(c, ptrs[i]);
  return st;
}

sgn_status sgn_evaluate(sgn_backend *be, const sgn_model *model, const float *X, const float *Y,
                        int64_t n, double *loss, float *out) {
  return sgn_evaluate_with(be, model, X, Y, n, NULL, loss, out);
}

/* ---- state for checkpoints ---- */

/* The blob: this header (every field 8 bytes, so no padding), then W (m, d) float, then Adam's
 * moments (m, d) x 2 when solving with adam, then the kept preconditioner R (nb, nb) double when
 * gn-gram or gn-sketch holds one. M, F and the loss are recomputed from W on load. */
#define STATE_MAGIC 0x3230455441545347ull    /* "GSTATE02" */
#define STATE_MAGIC_V1 0x3130455441545347ull /* "GSTATE01": no boost (read as 1) */
typedef struct state_head {
  uint64_t magic, seed;
  int64_t solver, n, d, m, k, nb, step, adam_t;
  int64_t have_pre, iters_at_refresh, stale, since_refresh;
  double loss, loss0, lr, time_ms;
  double boost; /* GSTATE02 on */
} state_head;
#define STATE_HEAD_V1 (sizeof(state_head) - sizeof(double))

/* The header's size for the magic at the start of buf, 0 for an unknown one. */
static size_t state_head_bytes(const void *buf, size_t bytes) {
  uint64_t magic;
  if (bytes < sizeof magic) return 0;
  memcpy(&magic, buf, sizeof magic);
  return magic == STATE_MAGIC ? sizeof(state_head) : magic == STATE_MAGIC_V1 ? STATE_HEAD_V1 : 0;
}

static int keeps_pre(const sgn_session *s) {
  return s->have_pre &&
         (s->opt.solver == SGN_SOLVER_GN_GRAM || s->opt.solver == SGN_SOLVER_GN_SKETCH);
}

sgn_status sgn_session_save_state(sgn_session *s, void **buf, size_t *bytes) {
  int64_t md = s->dm.m * s->dm.d;
  int adam = s->opt.solver == SGN_SOLVER_ADAM;
  size_t total = sizeof(state_head) + fbytes(md) * (adam ? 3 : 1) +
                 (keeps_pre(s) ? dbytes(s->nb * s->nb) : 0);
  char *p = sgn_calloc(1, total);
  if (!p) return SGN_E_RUNTIME;
  state_head h = {STATE_MAGIC, s->opt.seed, s->opt.solver, s->dm.n, s->dm.d, s->dm.m, s->dm.k,
                  s->nb, s->step, s->adam_t, s->have_pre, s->iters_at_refresh, s->stale,
                  s->since_refresh, s->loss, s->loss0, s->lr, s->time_ms, s->boost};
  memcpy(p, &h, sizeof h);
  char *q = p + sizeof h;
  s->o->download(s->c, q, s->W, fbytes(md)), q += fbytes(md);
  if (adam) {
    s->o->download(s->c, q, s->mom, fbytes(md)), q += fbytes(md);
    s->o->download(s->c, q, s->vel, fbytes(md)), q += fbytes(md);
  }
  if (keeps_pre(s)) s->o->download(s->c, q, s->R, dbytes(s->nb * s->nb));
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
      h->iters_at_refresh < 0 || h->iters_at_refresh > INT_MAX ||
      h->since_refresh < 0 || h->since_refresh > INT_MAX || (h->have_pre | 1) != 1 ||
      (h->stale | 1) != 1)
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
                    h.solver >= 0 && h.solver < SGN_SOLVER_AUTO ? sgn_name(SGN_NAMES_SOLVER, (int)h.solver) : "?", (long long)h.nb);
  int64_t md = s->dm.m * s->dm.d;
  int adam = s->opt.solver == SGN_SOLVER_ADAM;
  int pre = h.have_pre && (s->opt.solver == SGN_SOLVER_GN_GRAM || s->opt.solver == SGN_SOLVER_GN_SKETCH);
  size_t total = hb + fbytes(md) * (adam ? 3 : 1) + (pre ? dbytes(s->nb * s->nb) : 0);
  if (bytes != total)
    return sgn_fail(SGN_E_INPUT, "checkpoint state has %zu bytes, expected %zu", bytes, total);
  const char *q = (const char *)buf + hb;
  const char *bad = state_values_bad(&h, q, md, adam, pre ? s->nb : 0);
  if (bad) return sgn_fail(SGN_E_INPUT, "checkpoint state is corrupt: %s", bad);
  /* W goes into the trial buffers first: weights whose loss is not finite are refused with the
   * session as it was */
  s->o->upload(s->c, s->Wt, q, fbytes(md)), q += fbytes(md);
  const double loss = trial_loss(s);
  if (!isfinite(loss))
    return sgn_fail(SGN_E_INPUT, "checkpoint state is corrupt: its weights give a loss of %g",
                    loss);
  if (adam) {
    s->o->upload(s->c, s->mom, q, fbytes(md)), q += fbytes(md);
    s->o->upload(s->c, s->vel, q, fbytes(md)), q += fbytes(md);
  }
  if (pre) s->o->upload(s->c, s->R, q, dbytes(s->nb * s->nb));
  s->opt.seed = h.seed;
  s->step = h.step, s->adam_t = h.adam_t;
  s->have_pre = (int)h.have_pre, s->iters_at_refresh = (int)h.iters_at_refresh;
  s->stale = (int)h.stale, s->since_refresh = (int)h.since_refresh;
  s->loss0 = h.loss0, s->lr = h.lr, s->time_ms = h.time_ms, s->boost = h.boost;
  accept_trial(s, loss);
  s->o->copy(s->c, s->Wt, s->W, fbytes(md));
  return SGN_OK;
}
