/* session.h — the training session's private side: its struct, the buffer-list macro that both
 * counts and allocates its memory, and what the library's files offer each other. The layers,
 * each calling only those below it: session.c (create, free, budget, sgn_session_step) on
 * first_order.c on gn.c (the solvers' steps) on step.c (trial, acceptance, line search, the
 * backend's sticky error); evaluate.c and state.c on session.c and step.c; costmodel.c and
 * options.c call none of these. */
#ifndef SGN_SESSION_H
#define SGN_SESSION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "costmodel.h"
#include "sketchgn.h"

#define LS_MAX_HALVINGS 60 /* from --lr 1e12 down to 1e-6 */
#define RIDGE_HALVINGS 4 /* with a ridge, halvings before a step is skipped (step.c) */
#define MAX_BOOST 1e4      /* automatic damping's largest multiplier (gn.c): 1e-2 mean(G_ii) */
#define DIVERGED \
  1e4 /* without a line search, a step to a loss this many times the
                              step-0 loss is a numerical fault, rejected like a non-finite one */

struct sgn_session {
  sgn_backend *be;
  const sgn_backend_ops *o;
  void *c;
  sgn_model *model;
  sgn_options opt;
  sgn_dims dm; /* the full training set: n, d, m, k */
  int64_t nb;  /* samples per Gauss-Newton step or Adam update (n unless batched) */
  int batched; /* nb < n: steps work on gathered rows Xb, Yb */
  int ls;      /* line search on */
  double lr;   /* current step size (adam: may be halved by the line search) */
  double loss; /* full training loss at the current W */
  int64_t step;
  /* the ridge (full-batch Gauss-Newton; sgn_options.ridge), carried by dual coefficients alpha
   * (ridge.c): the objective is loss + pen with pen = rho / (2n) alpha . (F - F0) */
  double ridge_rel; /* rho / mean(G_ii) of the initial Gram, as chosen */
  double rho;       /* 0: none */
  double pen;       /* the penalty at the current W */

  /* backend memory; (rows, cols) row-major */
  float *X, *Y;        /* (n, d), (n, k) */
  float *W, *Wt, *A;   /* (m, d) current and trial weights, (m, k) */
  uint32_t *M, *Mt;    /* (n, SGN_MASK_WORDS(m)) bit masks 1[X W^T > 0] at W and at the trial */
  float *F, *Ft;       /* (n, k) outputs at W and at the trial */
  float *work;         /* sgn_work_floats(dm) product scratch: (n, m), or (n, mc) + (n, k) in
                          neuron chunks (dm.mc, chosen in sgn_session_create) */
  float *D, *Dtmp;     /* (m, d) update direction, operator scratch */
  double *alpha;       /* (n k) the ridge's dual coefficients: W - W0 ~ J^T alpha (Gauss-Newton) */
  float *F0;           /* (n, k) the outputs the session started from (Gauss-Newton) */
  double *rhs;         /* (nb k) what the solve solves for: r, or r + rho alpha with a ridge */
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

  /* preconditioner / factor: (N, N) upper R with R^T R ~ G + lambda I; the kept preconditioner
   * of gn-gram and gn-sketch is R^-1, in R's place, where rinv */
  double *R;
  int rinv;        /* gn-gram, gn-sketch: the backend applies the preconditioner as two products
                 (rinv_preferred), so R is inverted once built */
  void *riw;       /* r_inverse's workspace (gn-gram, gn-sketch) */
  double *pw;      /* (nb k) rinv_apply's scratch (with rinv) */
  float *Gh;       /* (k, nb, nb) the block-diagonal Gram of separate outputs (gn-gram), or NULL */
  float *Kxx;      /* (n, n) X X^T of the training set, made once (unbatched separate outputs) */
  float *Ysk;      /* (nb, s) sketch */
  void *skw, *qrw; /* sketch workspace; its R's (gn-sketch) or Cholesky workspace */
  int64_t s;
  int have_pre, iters_at_refresh, stale, since_refresh;
  double pre_lambda; /* the damping the kept R was built with (0: unknown, a GSTATE02 resume) */
  float *mom, *vel, *mom0, *vel0; /* adam moments and their backups (m, d) */
  int64_t adam_t;
  double lambda;  /* damping of the current solve */
  double boost;   /* automatic damping's multiplier (Levenberg-Marquardt): x10 after a
                          step the line search had to shorten, /10 (down to 1) after a full one */
  double loss0;   /* the step-0 loss */
  double time_ms; /* sum of the steps' step_ms */
  sgn_progress_fn progress;
  void *progress_user;
  atomic_int interrupt; /* set by sgn_session_interrupt, spent by the step it stops */
  /* an attached test set */
  int64_t nt;
  float *Xte, *Yte, *Fte;  /* (nt, d), (nt, k), (nt, k) */
  uint32_t *Mte;           /* (min(nt, n), SGN_MASK_WORDS(m)): one block's mask */
  double *rte;             /* (nt k) */
  char solver_reason[512]; /* why --solver auto chose opt.solver */
};

/* ---- sizes and the buffer lists ---- */

static inline size_t fbytes(int64_t count) { return (size_t)count * sizeof(float); }
static inline size_t dbytes(int64_t count) { return (size_t)count * sizeof(double); }
/* bytes of a bit mask of rows x m */
static inline size_t mbytes(int64_t rows, int64_t m) {
  return (size_t)rows * (size_t)SGN_MASK_WORDS(m) * sizeof(uint32_t);
}

static inline int is_gn(sgn_solver s) { return s >= SGN_SOLVER_GN_EXACT; }

/* One entry of a buffer list walked twice (session.c's session_layout, evaluate.c's test_layout
 * and eval_layout): it always adds the bytes to `total`; with `alloc` it also allocates ptr from
 * backend o (ctx c), recording in *bad the bytes of the first allocation that fails (0: none)
 * and allocating nothing after it. */
#define ALLOC(ptr, bytes)                                        \
  do {                                                           \
    size_t b_ = (bytes);                                         \
    total += b_;                                                 \
    if (b_ == 0) b_ = 1;                                         \
    if (alloc && !*bad && !((ptr) = o->alloc(c, b_))) *bad = b_; \
  } while (0)

/* ---- session.c: the session's memory and its backend ---- */

/* Bytes sgn_session_create allocates for opt->solver (resolved, not AUTO) on dm.n samples of a
 * model (dm.d, dm.m, dm.k), with the products' neurons in chunks of dm.mc (0: all m at once),
 * the workspaces sized by backend be. */
size_t sgn_session_mem_bytes(const sgn_backend *be, sgn_dims dm, const sgn_options *opt);

/* The fewest bytes such a session can run in: at the narrowest chunk the session would take
 * (opt->chunk_neurons when it forces one, else 64 neurons, or none when that is not smaller);
 * what the session refuses to go below. */
size_t sgn_session_mem_bytes_min(const sgn_backend *be, sgn_dims dm, const sgn_options *opt);

/* The largest n whose session fits in bytes: sgn_session_mem_bytes_min of dm with dm.n = n (the
 * other fields as given) at most bytes (taken as 1e18 when larger); 0 when not even n = 1 fits.
 * The count grows with n, so it doubles n until the count passes bytes, then bisects. */
int64_t sgn_session_max_n(const sgn_backend *be, sgn_dims dm, const sgn_options *opt, double bytes);

/* --solver auto on backend be: each of sgn_costmodel_candidates' fewest bytes on be
 * (sgn_session_mem_bytes_min), and adam's, handed with rates r to sgn_costmodel_choose_auto. */
sgn_solver sgn_session_choose_solver(const sgn_backend *be, sgn_dims dm, const sgn_options *opt,
                                     double mem_bytes_available, const sgn_cost_rates *r,
                                     char *reason, size_t reason_len);

/* The bytes of the session's own buffer list at its current sizes (test set excluded). */
size_t sgn_session_held_bytes(sgn_session *s);

/* The budget: --max-memory when set and below what the backend has. */
double sgn_mem_budget(double max_memory, double avail);
/* The chunk a forced width asks for: 0 (automatic) stays 0, a width >= m is no chunking. */
int64_t sgn_forced_chunk(int64_t chunk_neurons, int64_t m);
/* The neuron chunk of a buffer list whose bytes at chunk width dm.mc are bytes(user, dm):
 * 0 (all m at once) when that fits limit, else the widest 64 q < m that fits, else 64. */
int64_t sgn_widest_chunk(sgn_dims dm, double limit, size_t (*bytes)(void *, sgn_dims), void *user);
/* The one refusal of a budget too small (SGN_E_INPUT), in the units a user reads, with the
 * exact bytes. */
sgn_status sgn_budget_fail(const char *what, const char *backend, size_t need, double limit,
                           double avail, const char *shape);

/* ---- ridge.c: the ridge's automatic choice (its penalty is step.c's) ---- */

/* Sets s->ridge_rel and s->rho for options.ridge (> 0 as given; < 0 chosen by leave-one-out on
 * the initial Gram of up to SGN_RIDGE_SAMPLE of the training rows, Y their host targets (n, k)),
 * with the session at its initial W (= W0, mask M). SGN_OK, or SGN_E_RUNTIME when scratch cannot
 * be allocated or LAPACK fails. */
sgn_status sgn_ridge_choose(sgn_session *s, const float *Y);

/* ---- gn.c and first_order.c: one step of each solver ---- */

sgn_status sgn_gn_step(sgn_session *s, sgn_step_info *info);
/* lambda_max(J J^T) by power iteration on the full set (gd's default step size); NAN when its
 * host vector cannot be allocated. */
double sgn_gn_top_eigenvalue(sgn_session *s);
sgn_status sgn_gd_step(sgn_session *s, sgn_step_info *info);
sgn_status sgn_adam_step(sgn_session *s, sgn_step_info *info);

/* ---- step.c: what every step shares ---- */

/* The ridge's penalty at outputs F (n, k) and coefficients alpha - eta g:
 * rho / (2n) (alpha - eta g) . (F - F0); 0 without a ridge. Uses cgw as scratch. */
double sgn_ridge_penalty(sgn_session *s, const float *F, double eta);
/* Loss at the trial weights Wt: forward over the full set into Mt, Ft. */
double sgn_step_trial_loss(sgn_session *s);
/* The trial becomes the current W (with its mask and outputs) at the given loss. */
void sgn_step_accept(sgn_session *s, double loss);
/* The largest objective (loss + ridge penalty) a trial may reach and be accepted. */
double sgn_step_accept_bound(const sgn_session *s);
/* W <- W - eta D with eta = lr, halved until the loss does not go up (when the line search is
 * on). Returns SGN_OK, or SGN_E_RUNTIME if the loss is not finite with the line search off. */
sgn_status sgn_step_line_search(sgn_session *s, double lr, sgn_step_info *info);
/* Times a phase: adds the ms since *t0 to *acc after the backend drains, and restarts *t0. */
void sgn_step_lap(sgn_session *s, double *t0, double *acc);
/* SGN_E_INTERRUPTED (with a message naming the step) when sgn_session_interrupt has asked the
 * running step to stop, else SGN_OK: the steps call it at their checkpoints. */
sgn_status sgn_step_interrupted(const sgn_session *s);
/* SGN_E_RUNTIME with "<name> backend: <message>" when be holds a sticky error (an op failed:
 * backend.h), else SGN_OK. */
sgn_status sgn_check_backend(const sgn_backend *be);
/* Fisher-Yates over perm, the first `count` entries drawn with counter base `base`. */
void sgn_step_shuffle(int64_t *perm, int64_t n, int64_t count, uint64_t seed, uint64_t base);

/* ---- evaluate.c ---- */

/* Bytes sgn_evaluate_with allocates to evaluate dm.n samples (dm.d, dm.m, dm.k) in one block of
 * rows with neurons in chunks of dm.mc; with_targets 0: outputs only (prediction). */
size_t sgn_evaluate_mem_bytes(sgn_dims dm, int with_targets);

#endif
