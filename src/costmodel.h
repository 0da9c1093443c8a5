/* costmodel.h — flop and byte counts of one training step per solver, and the rule behind
 * --solver auto: estimate each Gauss-Newton solver's seconds per step from those counts and
 * rates calibrated with `sketchgn bench`, drop those whose memory does not fit, take the fastest.
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
void sgn_costmodel_expect(sgn_solver solver, sgn_dims dm, const sgn_options *opt,
                          double *cg_iters, double *refresh_fraction);
/* Expected seconds per step over a run: refreshes amortized, iterations as expected. */
double sgn_costmodel_step_seconds(sgn_solver solver, sgn_dims dm, const sgn_options *opt,
                                  const sgn_cost_rates *r);
/* The fewest bytes a session of this solver allocates on its backend: sgn_session_create's own
 * count (sgn_session_mem_bytes_min, solvers.h) at the narrowest neuron chunk it would run in,
 * with the CPU backend's workspace sizes. */
double sgn_costmodel_mem_bytes(sgn_solver solver, sgn_dims dm, const sgn_options *opt);

/* --solver auto: gn-exact, gn-gram or gn-sketch, whichever has the smallest expected seconds per
 * step (CPU rates) among those whose session fits in mem_bytes_available (<= 0: unknown, no
 * check). reason (may be NULL) receives one line: the estimates and the memory verdict. */
sgn_solver sgn_costmodel_choose(sgn_dims dm, const sgn_options *opt, double mem_bytes_available,
                                char *reason, size_t reason_len);
/* The same with the rates of a given device (sgn_costmodel_rates(sgn_backend_name(be))). */
sgn_solver sgn_costmodel_choose_rates(sgn_dims dm, const sgn_options *opt,
                                      double mem_bytes_available, const sgn_cost_rates *r,
                                      char *reason, size_t reason_len);

#endif
