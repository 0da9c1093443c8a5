/* costmodel.h — flop and byte counts of one training step per solver, and the rule behind
 * --solver auto: estimate each Gauss-Newton solver's seconds per step from those counts and
 * rates calibrated with `sketchgn bench`, drop those whose memory does not fit, take the fastest.
 * Pure arithmetic on what it is given: the memory of each candidate comes from the caller (the
 * session counts it on its own backend, session.h), so the model calls no session code.
 * Letters as in sketchgn.h: n samples, d inputs, m hidden, k outputs, s sketch rows. */
#ifndef SGN_COSTMODEL_H
#define SGN_COSTMODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "sketchgn.h"

/* The work of one step, by the kind of hardware path that does it. */
typedef struct sgn_cost {
  double gemm;  /* float32 GEMM flops: the Gram's X X^T and M M^T; forward, J v, J^T g at large d */
  double gram;  /* the part of gemm that the Gram's M M^T is (2 flops a neuron and pair of samples,
                 * as a float GEMM would do it), done as integer mask counts at its own rate */
  double fused; /* flops of the fused products (small d and k, backend.h): 2 (d + k) per pair */
  double pairs; /* (sample, neuron) pairs those visit: mask bits, relu or select, lane sums */
  double syrk;  /* float64 DSYRK flops: the sketch's Y Y^T */
  double chol;  /* float64 Cholesky and triangular-solve flops (dpotrf, dtrsm) */
  double other; /* Hadamard butterflies, sketch products, Gaussian draws */
  double bytes; /* memory traffic: passes over (n, m) arrays, scatters, triangular solves */
} sgn_cost;

/* Effective throughputs of one device: flops (or bytes) per second. */
typedef struct sgn_cost_rates {
  double gemm, fused, pair, syrk, chol, other, bw; /* pair: pairs per second */
  double gram; /* the integer M M^T, in flops of its float GEMM (sgn_cost.gram) per second */
} sgn_cost_rates;

/* The calibrated rates of a backend by name ("cpu", "gpu"; anything else gets the CPU's). */
sgn_cost_rates sgn_costmodel_rates(const char *device);

/* What one step did, as the counts need it (sgn_step_info has these fields). */
typedef struct sgn_cost_step {
  int cg_iters;    /* CG/PCG iterations */
  int refreshed;   /* the preconditioner was rebuilt (gn-sketch, gn-gram) */
  int ls_halvings; /* line-search halvings: 1 + halvings trial forward passes */
  int first;       /* step 1 (gd estimates its step size there) */
} sgn_cost_step;

/* Counts of one step of `solver` on dm (dm.n: the full training set) with options opt (sketch
 * ratio and kind, batch). flops = gemm + fused + syrk + chol + other. */
sgn_cost sgn_costmodel_step(sgn_solver solver, sgn_dims dm, const sgn_options *opt,
                            sgn_cost_step st);
double sgn_cost_flops(const sgn_cost *c);
/* Estimated seconds: each count over its rate, added. */
double sgn_cost_seconds(const sgn_cost *c, const sgn_cost_rates *r);

/* Expected CG/PCG iterations per step and the fraction of steps that rebuild the preconditioner,
 * as the model assumes them (documented in costmodel.c). */
void sgn_costmodel_expect(sgn_solver solver, sgn_dims dm, const sgn_options *opt, double *cg_iters,
                          double *refresh_fraction);
/* Expected seconds per step over a run: refreshes amortized, iterations as expected. */
double sgn_costmodel_step_seconds(sgn_solver solver, sgn_dims dm, const sgn_options *opt,
                                  const sgn_cost_rates *r);
/* A session's memory must fit in this fraction of what is available (--solver auto's rule, and
 * bench --largest-n's). */
#define SGN_COSTMODEL_MEM_MARGIN 0.85

/* The solvers --solver auto picks among, in the order of sgn_costmodel_choose's mem_bytes:
 * gn-exact, gn-gram, gn-sketch. */
#define SGN_COSTMODEL_CANDIDATES 3
extern const sgn_solver sgn_costmodel_candidates[SGN_COSTMODEL_CANDIDATES];

/* The Gauss-Newton half of --solver auto (sgn_costmodel_choose_auto adds the regime): the
 * candidate with the smallest expected seconds per step at rates r
 * (sgn_costmodel_rates of the backend that will run it) among those whose session fits:
 * mem_bytes[i] is the fewest bytes candidate i's session allocates on that backend
 * (sgn_session_mem_bytes_min, session.h), and it fits when within 85% of mem_bytes_available
 * (<= 0: unknown, no check); when none fits, the smallest. reason (may be NULL) receives one
 * line: the estimates and the memory verdict. */
sgn_solver sgn_costmodel_choose(sgn_dims dm, const sgn_options *opt, const sgn_cost_rates *r,
                                const double mem_bytes[SGN_COSTMODEL_CANDIDATES],
                                double mem_bytes_available, char *reason, size_t reason_len);

/* The regime: overparametrized when the trained parameters are at least the targets they fit,
 * m d >= n k. Below it the (nk, nk) Gram has rank at most m d < nk: no Gauss-Newton step fits
 * the data exactly, damping decides the step, and the function-space solve costs n^2..n^3 for a
 * model of fewer unknowns than that (issue 13: synth n = 20000, d = 16, width 1024: gn-sketch
 * 400 s/step, 30 epochs of adam fit better in 2.4 s). */
int sgn_costmodel_overparametrized(sgn_dims dm);

/* --solver auto over both regimes: not overparametrized, adam (mini-batch, first-order) when
 * its session fits (mem_first_order bytes, as mem_bytes); otherwise sgn_costmodel_choose among
 * the Gauss-Newton candidates. reason names the regime, adam's estimated seconds per epoch and
 * the Gauss-Newton line (sgn_costmodel_choose's). */
sgn_solver sgn_costmodel_choose_auto(sgn_dims dm, const sgn_options *opt, const sgn_cost_rates *r,
                                     const double mem_bytes[SGN_COSTMODEL_CANDIDATES],
                                     double mem_first_order, double mem_bytes_available,
                                     char *reason, size_t reason_len);

#endif
