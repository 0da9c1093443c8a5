/* pcg_control.h — the per-iteration tests of PCG (pcg.c), written once for the three places that
 * run them: pcg.c's host loop, the CPU backend's pcg_control slot (cpu/vecops.c) and the
 * one-thread kernel of cuda/vecops.cu. Each runs the same float64 arithmetic (a square root, a
 * product, comparisons: nothing a compiler may contract into an FMA), so all three stop at the
 * same iteration with the same flags and record the same residuals.
 *
 * The state lives where the vectors live: in host memory for the host loop, in backend memory
 * when the backend keeps PCG's scalars there (backend.h, pcg_dot ...). The host writes it whole
 * at a (re)start and reads it back after a batch of queued iterations; in between only the
 * backend's ops touch it. Plain C, also compiled as C++ (the emulator) and CUDA. */
#ifndef SGN_PCG_CONTROL_H
#define SGN_PCG_CONTROL_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SGN_PCG_HD __host__ __device__
#else
#define SGN_PCG_HD
#endif

/* pcg.c's header says what these windows are for. */
#define SGN_PCG_STAGNATION_WINDOW 50
#define SGN_PCG_STAGNATION_DROP 0.99
#define SGN_PCG_DIVERGE_WINDOW 10
/* The most iterations a backend may queue between two read-backs of the state: hist's length. */
#define SGN_PCG_QUEUE 16

/* Why the solve stopped (sgn_pcg_ctl.done). */
enum {
  SGN_PCG_RUNNING = 0,
  SGN_PCG_CONVERGED, /* ||r|| <= tol ||b|| */
  SGN_PCG_BREAKDOWN, /* p.q <= 0 or not finite (iteration not counted), or ||r|| not finite */
  SGN_PCG_DIVERGED,  /* ||r|| rose DIVERGE_WINDOW iterations running, above ||b|| */
  SGN_PCG_STALLED,   /* no new low for STAGNATION_WINDOW iterations: restart, or give up */
  SGN_PCG_CAPPED     /* maxit iterations */
};

typedef struct sgn_pcg_ctl {
  double bnorm, tol; /* ||b|| and the relative tolerance, set at the start */
  /* this iteration's dot products (pcg_dot): p.q, r.r, r.z; and r.z of the iteration before,
   * which beta = r.z / rz_old needs once r.z is overwritten */
  double pq, rr, rz, rz_old;
  double rnorm, best, prev;   /* ||r||, the last new low, the residual before */
  int32_t maxit, iters;       /* the cap and the iterations taken (over restarts) */
  int32_t best_at, rising;    /* iteration of the last new low (-1: none since the start), rises */
  int32_t done, pad;          /* SGN_PCG_*: 0 while it runs */
  double hist[SGN_PCG_QUEUE]; /* ||r|| of iteration i at hist[(i - 1) % SGN_PCG_QUEUE] */
} sgn_pcg_ctl;

/* 1 while p.q lets the iteration go on (alpha = r.z / p.q) */
SGN_PCG_HD static inline int sgn_pcg_pq_ok(double pq) { return pq > 0 && isfinite(pq); }

/* The tests once an iteration has updated x and r (s->pq its p.q, s->rr the new r.r): a p.q
 * that breaks down ends the solve before the iteration counts; otherwise it counts, ||r|| is
 * recorded and checked against tol, the divergence window, the stagnation window and the cap,
 * in the host loop's order (pcg.c checks its stop flag between the divergence test and the
 * stagnation test). Saves r.z for beta. Does nothing once done is set. */
SGN_PCG_HD static inline void sgn_pcg_control(sgn_pcg_ctl *s) {
  if (s->done) return;
  if (!sgn_pcg_pq_ok(s->pq)) {
    s->done = SGN_PCG_BREAKDOWN;
    return;
  }
  s->iters++;
  s->rz_old = s->rz;
  s->rnorm = sqrt(s->rr);
  if (!isfinite(s->rnorm)) {
    s->done = SGN_PCG_BREAKDOWN;
    return;
  }
  s->hist[(s->iters - 1) % SGN_PCG_QUEUE] = s->rnorm;
  if (s->rnorm <= s->tol * s->bnorm) {
    s->done = SGN_PCG_CONVERGED;
    return;
  }
  s->rising = s->rnorm > s->prev ? s->rising + 1 : 0;
  s->prev = s->rnorm;
  if (s->rising >= SGN_PCG_DIVERGE_WINDOW && s->rnorm > s->bnorm) {
    s->done = SGN_PCG_DIVERGED;
    return;
  }
  if (s->rnorm < SGN_PCG_STAGNATION_DROP * s->best) s->best = s->rnorm, s->best_at = s->iters;
  if (s->best_at >= 0 && s->iters - s->best_at >= SGN_PCG_STAGNATION_WINDOW)
    s->done = SGN_PCG_STALLED;
  else if (s->iters >= s->maxit) s->done = SGN_PCG_CAPPED;
}

#endif
