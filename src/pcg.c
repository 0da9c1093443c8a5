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
 * moved), and the caller rebuilds it or raises the damping.
 *
 * Where the scalars live: the tests of each iteration are pcg_control.h's, run by the host on
 * scalars it brings back one dot product at a time, or, where the backend has the pcg_* slots
 * (backend.h), by the backend on scalars kept in its memory: the host queues a batch of
 * iterations, reads the state back once, and replays the recorded residuals to the progress
 * callback and its stop flag. Both give the same iterates, counts, flags and progress calls (the
 * iterations queued past the end change nothing). A batch holds at most a quarter of the
 * iterations run so far (at least 1, at most the backend's pcg_queue), so the products wasted
 * after the last iteration stay within a quarter of the solve; where the backend records graphs,
 * one iteration is recorded once the solve has run GRAPH_AFTER and replayed from then on. */
#include "pcg.h"

#include <math.h>

#include "pcg_control.h"

#define BATCH_SHARE 4 /* a batch is at most 1 / BATCH_SHARE of the iterations run so far */
#define GRAPH_AFTER 2 /* iterations before one is recorded: short solves launch op by op */

/* One solve: the problem, and where its scalars are (dev: s in backend memory, h its host copy;
 * else h alone) */
typedef struct pcg_run {
  const sgn_backend_ops *o;
  void *c;
  int64_t len;
  const sgn_linop *A, *M;
  double *x, *r, *z, *p, *q;
  sgn_pcg_ctl h;    /* the state; with dev, as last read back */
  sgn_pcg_ctl *dev; /* the state in backend memory, or NULL */
  void *graph;      /* one recorded iteration, or NULL */
  int graph_tried;  /* recording was tried: once per solve, since the scalars the operators
                        were called with (a damping) are fixed in a recording */
} pcg_run;

/* z = M r */
static void precondition(pcg_run *R) {
  if (R->M) R->M->apply(R->M->ctx, R->r, R->z);
  else R->o->copy(R->c, R->z, R->r, (size_t)R->len * sizeof(double));
}

/* One iteration on the host's scalars; stops after the tests when they end the solve. */
static void host_iteration(pcg_run *R) {
  const sgn_backend_ops *o = R->o;
  sgn_pcg_ctl *s = &R->h;
  R->A->apply(R->A->ctx, R->p, R->q);
  s->pq = o->dot(R->c, R->len, R->p, R->q);
  if (sgn_pcg_pq_ok(s->pq)) {
    const double alpha = s->rz / s->pq;
    o->axpy(R->c, R->len, alpha, R->p, R->x);
    o->axpy(R->c, R->len, -alpha, R->q, R->r);
    s->rr = o->dot(R->c, R->len, R->r, R->r);
  }
  sgn_pcg_control(s);
  if (s->done) return;
  precondition(R);
  s->rz = o->dot(R->c, R->len, R->r, R->z);
  o->xpby(R->c, R->len, R->z, s->rz / s->rz_old, R->p);
}

/* One iteration queued on the backend's scalars (pcg_update and pcg_direction skip once done) */
static void queue_iteration(pcg_run *R) {
  const sgn_backend_ops *o = R->o;
  sgn_pcg_ctl *s = R->dev;
  R->A->apply(R->A->ctx, R->p, R->q);
  o->pcg_dot(R->c, R->len, R->p, R->q, &s->pq);
  o->pcg_update(R->c, R->len, s, R->p, R->q, R->x, R->r);
  o->pcg_dot(R->c, R->len, R->r, R->r, &s->rr);
  o->pcg_control(R->c, s);
  precondition(R);
  o->pcg_dot(R->c, R->len, R->r, R->z, &s->rz);
  o->pcg_direction(R->c, R->len, s, R->z, R->p);
}

/* Queues n iterations: the recorded one where there is one (recorded here, after GRAPH_AFTER
 * iterations, when the backend records graphs), else op by op. A recording that fails has set
 * the backend's sticky error, on which the solve ends (iterate); one the backend declines runs
 * op by op. */
static void queue_batch(pcg_run *R, int n) {
  const sgn_backend_ops *o = R->o;
  if (!R->graph_tried && o->graph_begin && R->h.iters >= GRAPH_AFTER) {
    R->graph_tried = 1;
    const int rc = o->graph_begin(R->c); /* 1: declined, the ops go one by one */
    if (rc == 0) {
      queue_iteration(R);
      R->graph = o->graph_end(R->c);
    }
    if (rc < 0 || (rc == 0 && !R->graph)) return; /* the sticky error says why; the solve ends */
  }
  for (int i = 0; i < n; i++) {
    if (R->graph) o->graph_launch(R->c, R->graph);
    else queue_iteration(R);
  }
}

/* Iterations for the next batch: a quarter of those run so far, within [1, pcg_queue] */
static int batch_size(const pcg_run *R) {
  int n = R->h.iters / BATCH_SHARE, cap = R->o->pcg_queue;
  if (cap > SGN_PCG_QUEUE) cap = SGN_PCG_QUEUE;
  if (n > cap) n = cap;
  if (n < 1) n = 1;
  if (n > R->h.maxit - R->h.iters) n = R->h.maxit - R->h.iters;
  return n;
}

/* The host loop's steps after each of iterations seen + 1 .. h.iters (the state just read):
 * the progress call, and the stop flag read after the tolerance and divergence tests and before
 * the stagnation test, as when the host ran them one by one. Returns 1 when the stop flag ended
 * the solve (h then stands at that iteration). */
static int replay(pcg_run *R, int seen, sgn_progress_fn progress, void *user,
                  const atomic_int *stop) {
  sgn_pcg_ctl *s = &R->h;
  int last = s->iters;
  if (s->done == SGN_PCG_BREAKDOWN && !isfinite(s->rnorm)) last--; /* no call for it */
  for (int i = seen + 1; i <= last; i++) {
    const double rnorm = s->hist[(i - 1) % SGN_PCG_QUEUE];
    if (progress) progress(user, i, rnorm / s->bnorm);
    if (i == s->iters && (s->done == SGN_PCG_CONVERGED || s->done == SGN_PCG_DIVERGED)) return 0;
    if (stop && atomic_load(stop)) {
      s->iters = i, s->rnorm = rnorm;
      return 1;
    }
  }
  return 0;
}

/* Runs iterations from the current r, z, p and rz until the state says done or the stop flag
 * ends the solve (returns 1). */
static int iterate(pcg_run *R, sgn_progress_fn progress, void *user, const atomic_int *stop) {
  sgn_pcg_ctl *s = &R->h;
  s->done = s->iters >= s->maxit ? SGN_PCG_CAPPED : SGN_PCG_RUNNING;
  if (R->dev) R->o->upload(R->c, R->dev, s, sizeof *s);
  while (!s->done) {
    const int seen = s->iters;
    if (R->dev) {
      queue_batch(R, batch_size(R));
      R->o->download(R->c, s, R->dev, sizeof *s);
      if (R->o->error && R->o->error(R->c)) {        /* a failed backend: s was not read back */
        s->done = SGN_PCG_BREAKDOWN, s->rnorm = NAN; /* as its NaN dots give on the host */
        return 0;
      }
    } else {
      host_iteration(R);
    }
    if (replay(R, seen, progress, user, stop)) return 1;
  }
  return 0;
}

/* x = A^-1 b by PCG: r = b, z = M r, p = z; alpha = r.z / p.Ap; beta = r'.z' / r.z */
void sgn_pcg(sgn_backend *be, int64_t len, const sgn_linop *A, const sgn_linop *M, const double *b,
             double *x, double tol, int maxit, double *work, sgn_progress_fn progress, void *user,
             const atomic_int *stop, sgn_pcg_result *res) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  pcg_run R = {.o = o,
               .c = c,
               .len = len,
               .A = A,
               .M = M,
               .x = x,
               .r = work,
               .z = work + len,
               .p = work + 2 * len,
               .q = work + 3 * len};
  res->iters = 0, res->capped = 0, res->breakdown = 0, res->stagnated = 0, res->restarts = 0;
  res->diverged = 0, res->interrupted = 0, res->relres = 0;

  o->scal(c, len, 0.0, x);
  o->copy(c, R.r, b, (size_t)len * sizeof(double));
  double bnorm = sqrt(o->dot(c, len, b, b));
  if (bnorm == 0 || !isfinite(bnorm)) {
    res->breakdown = !isfinite(bnorm);
    return;
  }
  sgn_pcg_ctl *s = &R.h;
  s->bnorm = bnorm, s->tol = tol, s->maxit = maxit;
  s->rnorm = bnorm, s->best = bnorm, s->prev = bnorm, s->best_at = -1;
  if (o->pcg_dot && o->pcg_update && o->pcg_control && o->pcg_direction && o->pcg_queue > 0)
    R.dev = o->alloc(c, sizeof(sgn_pcg_ctl));
  for (;;) {
    precondition(&R);
    o->copy(c, R.p, R.z, (size_t)len * sizeof(double));
    s->rz = o->dot(c, len, R.r, R.z);
    if (iterate(&R, progress, user, stop)) {
      res->interrupted = 1;
      break;
    }
    if (s->done != SGN_PCG_STALLED) {
      res->breakdown = s->done == SGN_PCG_BREAKDOWN;
      res->diverged = s->done == SGN_PCG_DIVERGED;
      break;
    }
    if (res->restarts) {
      res->stagnated = 1;
      break;
    }
    /* r = b - A x, then CG afresh from this x */
    res->restarts++;
    A->apply(A->ctx, x, R.q);
    o->copy(c, R.r, b, (size_t)len * sizeof(double));
    o->axpy(c, len, -1.0, R.q, R.r);
    s->rnorm = sqrt(o->dot(c, len, R.r, R.r));
    if (!isfinite(s->rnorm)) {
      res->breakdown = 1;
      break;
    }
    s->best = s->rnorm, s->best_at = -1, s->prev = s->rnorm, s->rising = 0;
    if (s->rnorm <= tol * bnorm) break;
  }
  if (R.graph) o->graph_free(c, R.graph);
  if (R.dev) o->free(c, R.dev);
  res->iters = s->iters;
  res->relres = s->rnorm / bnorm;
  res->capped = !res->breakdown && !res->stagnated && !res->diverged && !res->interrupted &&
                s->rnorm > tol * bnorm;
}
