/* pcg.h — preconditioned conjugate gradient against the backend interface. Vectors are float64
 * backend memory; only scalars come back to the host: a dot product at a time, or, where the
 * backend keeps them in its memory (backend.h pcg_*), its state once per batch of iterations. */
#ifndef SGN_PCG_H
#define SGN_PCG_H

#include <stdatomic.h>
#include <stdint.h>

#include "backend.h"

/* out = Op in, for vectors of length len in backend memory. Where the backend records graphs
 * (backend.h graph_begin), apply must only queue backend ops, the same ones on every call with
 * the same scalars for the length of a solve: PCG records one iteration and replays it. */
typedef struct sgn_linop {
  void (*apply)(void *ctx, const double *in, double *out);
  void *ctx;
} sgn_linop;

typedef struct sgn_pcg_result {
  int iters;       /* iterations taken */
  int capped;      /* 1 if maxit was reached before tol */
  int breakdown;   /* 1 if p^T A p <= 0 or not finite: A is not positive definite here */
  int restarts;    /* restarts from the true residual after a stall (at most 1) */
  int stagnated;   /* 1 if it stalled again after the restart (pcg.c: STAGNATION_WINDOW) */
  int diverged;    /* 1 if the residual rose DIVERGE_WINDOW iterations running to above ||b||
                      (pcg.c): a preconditioner that no longer fits the system */
  int interrupted; /* 1 if *stop was set: x is a partial solve, not to be used */
  double relres;   /* ||b - A x|| / ||b|| as tracked by the recurrence */
} sgn_pcg_result;

/* Solves A x = b from x = 0 until ||r|| <= tol ||b||, maxit iterations, a breakdown, or a
 * second stall, with the preconditioner M ~ A^-1 (NULL: plain CG). x is the last iterate.
 * work is 4 len doubles of backend memory. progress (may be NULL) is called after every
 * iteration. stop (may be NULL) is read after every iteration: non-zero ends the solve with
 * interrupted = 1 at that iteration (iters and relres say which; x is a partial solve, which
 * the backend may have carried up to a batch of iterations further). */
void sgn_pcg(sgn_backend *be, int64_t len, const sgn_linop *A, const sgn_linop *M, const double *b,
             double *x, double tol, int maxit, double *work, sgn_progress_fn progress, void *user,
             const atomic_int *stop, sgn_pcg_result *res);

#endif
