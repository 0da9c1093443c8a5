/* costmodel.c — flop and byte counts of a training step, and --solver auto. The counts follow
 * the backends' actual work (cpu/backend.c, gn.c, first_order.c); the rates turn them into
 * seconds and were
 * calibrated with `sketchgn bench` (see CPU_RATES). What decides gn-exact vs gn-sketch: the Gram
 * is n^2 d flops of SGEMM and the integer counts M M^T (n^2 m flops as a float GEMM would count
 * them, at the counts' own rate) plus (nk)^3/3 of Cholesky, the sketch step is the
 * sketch's R (n^2 s float64 DSYRK flops plus n^3/3 of Cholesky) plus ~12 PCG iterations, each a
 * J v and a J^T g whose passes over (n, m) arrays are memory-bound when d is small. */
#include "costmodel.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fused.h"
#include "hadamard.h"
#include "precision.h"

/* ---- calibration ----
 * CPU: this repository's 2-core Xeon (AVX-512, OpenBLAS 0.3.21 SkylakeX kernels), fitted to the
 * per-phase columns of `sketchgn bench` in one `scripts/scaling.sh --quick` run: gemm from
 * gn-exact's precond_ms (the Gram's SSYRK and SGEMMs: 83-107 GFLOP/s at n = 512, 162-213 at
 * n = 2048..8192), fused and pair from the per-iteration solve_ms of gn-cg and gn-sketch (the
 * fused products: 0.19-0.24 ns per sample-neuron pair and product at d = 4, and 0.75 at d = 32
 * in `bench --kernels`), syrk from gn-sketch's precond_ms (DSYRK and dpotrf: 56-64 GFLOP/s at
 * n = 512, 86-121 at 2048..8192), other from sketch_ms (the SRHT's Hadamard transforms:
 * 4.3-6.9 GFLOP/s), chol from gn-exact at k = 10 (dpotrf of 5120), bw for the GEMM path's passes
 * over (n, m) arrays (5-9 GB/s). gram, the Gram's integer counts (cpu/mask_counts.c, AVX-512
 * VPOPCNTDQ), in flops of the float SSYRK they replaced: `bench --kernels --gram` at n = 4096,
 * m = 65536, d = 4 puts them 9.6-9.9x faster than that SSYRK side by side (both slowed about 4x
 * by a loaded machine: 455 vs 46 GFLOP/s), times the quiet SSYRK rate above (150 GFLOP/s):
 * 1.4e12. Good to ~30% on a quiet machine; the machine's own noise is about 20% between
 * identical runs.
 * GPU: H200 datasheet-derived guesses (FP32 without TF32, FP64 tensor cores, HBM3e at ~75% of
 * peak; gram: still the float SGEMM rate, although the counts now run as an int8 tensor-core
 * GEMM, which may be 10x faster: that path has never run on a device, and falls back to the
 * SGEMM where cuBLAS lacks it), not calibrated on a device yet: rerun `sketchgn bench` (and
 * `bench --kernels --gram` for gram) there and update. */
static const sgn_cost_rates CPU_RATES = {.gemm = 150e9,
                                         .fused = 110e9,
                                         .pair = 8e9,
                                         .syrk = 100e9,
                                         .chol = 35e9,
                                         .other = 6e9,
                                         .bw = 6e9,
                                         .gram = 1.4e12};
/* the GPU's products are GEMMs and a pass over (n, chunk) floats: fused and pair stand for them */
static const sgn_cost_rates GPU_RATES = {.gemm = 40e12,
                                         .fused = 40e12,
                                         .pair = 1.75e11,
                                         .syrk = 20e12,
                                         .chol = 20e12,
                                         .other = 2e12,
                                         .bw = 3.5e12,
                                         .gram = 40e12};

/* Expected PCG iterations (measured with `sketchgn bench`, n = 512, m = 8192, d = 4).
 * gn-sketch: the Marchenko-Pastur condition number of the sketched preconditioner,
 * kappa = ((1 + sqrt(n/s)) / (1 - sqrt(n/s)))^2, in the CG bound 0.5 sqrt(kappa) ln(2 / tol):
 * 12 at s = 4n and tol 1e-3, where runs take 8-13.
 * gn-gram: 1 iteration right after a rebuild (the exact Gram; only lambda differs), about 5 on a
 * reused factor; `auto` refresh then rebuilds about every other step.
 * k > 1: both preconditioners are I_k (x) (an n x n factor) and miss the off-diagonal blocks of
 * G, so iterations grow with c = ((k - 1) / 9)^0.75 (0 at k = 1, 1 at k = 10): gn-gram 1 + 12 c
 * fresh and 5 + 9 c reused (measured 5 and 8 at k = 3, 13 and 14 at k = 10), gn-sketch
 * x (1 + 0.8 c) (10-15 at k = 3, 20 at k = 10). */
#define GRAM_ITERS_FRESH 1.0
#define GRAM_ITERS_REUSED 5.0
#define SKETCH_AUTO_REFRESH 0.34 /* a sketch stays good for ~3 steps in the lazy regime */
#define SKETCH_REUSED_FACTOR 1.3 /* iterations on a reused sketch vs a fresh one */
#define MEM_MARGIN SGN_COSTMODEL_MEM_MARGIN

sgn_cost_rates sgn_costmodel_rates(const char *device) {
  return device && strcmp(device, "gpu") == 0 ? GPU_RATES : CPU_RATES;
}

double sgn_cost_flops(const sgn_cost *c) {
  return c->gemm + c->fused + c->syrk + c->chol + c->other;
}

double sgn_cost_seconds(const sgn_cost *c, const sgn_cost_rates *r) {
  return (c->gemm - c->gram) / r->gemm + c->gram / r->gram + c->fused / r->fused +
         c->pairs / r->pair + c->syrk / r->syrk + c->chol / r->chol + c->other / r->other +
         c->bytes / r->bw;
}

/* ---- counts of the backend ops ---- */

/* A fused product (d <= SGN_FUSED_MAX_D, k <= SGN_FUSED_MAX_K): 2 (d + k) flops in registers
 * per (sample, neuron) pair, plus the pair's own cost (its mask bit, relu or select, lane sums). */
static int fused_dims(double d, double k) { return d <= SGN_FUSED_MAX_D && k <= SGN_FUSED_MAX_K; }

/* One forward pass. Fused: as above. Else Z = X W^T (2nmd), relu(Z) A (2nmk); Z written once and
 * read once by the pass that packs the mask and sums relu(Z) A (k = 1; for k > 1 it writes
 * relu(Z) for a GEMM, in row blocks that stay in cache). */
static void add_forward(sgn_cost *c, double n, double d, double m, double k) {
  if (fused_dims(d, k)) {
    c->fused += 2 * n * m * (d + k);
    c->pairs += n * m;
    return;
  }
  c->gemm += 2 * n * m * (d + k);
  c->bytes += 8 * n * m;
}

/* J v or J^T g. Fused: as above. Else two GEMMs (2nmd + 2nmk) and the mask pass (read Z, read
 * and write the work). */
static void add_product(sgn_cost *c, double n, double d, double m, double k) {
  if (fused_dims(d, k)) {
    c->fused += 2 * n * m * (d + k);
    c->pairs += n * m;
    return;
  }
  c->gemm += 2 * n * m * (d + k);
  c->bytes += 20 * n * m;
}

/* (R^T R)^-1 v for N unknowns and nrhs right-hand sides: two triangular solves (dtrsm), each
 * reading R's triangle (4 N^2 bytes) and doing N^2 nrhs flops at float64 level-3 rates. */
static void add_rtr_solve(sgn_cost *c, double N, double nrhs) {
  c->bytes += 8 * N * N;
  c->chol += 2 * N * N * nrhs;
}

/* The Gram: X X^T and the integer counts M M^T over the upper triangle (n^2 d + n^2 m flops, the
 * latter as its float GEMM would count them: c->gram), and for the full (nk)^2 Gram one more
 * count per pair of outputs c < e (the signed blocks); scatter and mirror (16 N^2 bytes). The
 * counts' own traffic (the bit mask read tile by tile on the CPU, expanded on the GPU) is in
 * their rate, fitted to the bench's gram row. */
static void add_gram(sgn_cost *c, double n, double d, double m, double k, int full) {
  double pairs = full ? k * (k - 1) / 2 : 0;
  double N = full ? n * k : n;
  c->bytes += 16 * N * N;
  c->gemm += n * n * d + n * n * m * (1 + pairs);
  c->gram += n * n * m * (1 + pairs);
}

/* The sketch (n, s) of the k = 1 block. */
static void add_sketch(sgn_cost *c, sgn_sketch kind, double n, double d, double m, double s) {
  if (kind == SGN_SKETCH_GAUSSIAN) {
    c->gemm += 2 * n * s * (m + d);
    c->other += 30 * (m + d) * s; /* the normal draws, ~30 flops each */
    c->bytes += 4 * n * m + 8 * n * s;
    return;
  }
  if (kind == SGN_SKETCH_SRFT) { /* two real FFTs per row (~2.5 N log2 N flops each), unpadded */
    c->other += 2.5 * n * (m * log2(m + 1) + d * log2(d + 1)) + 2 * n * s;
    c->bytes += 4 * n * m + 4 * n * s;
    return;
  }
  if (kind == SGN_SKETCH_COUNTSKETCH) { /* scatter m + d, three real FFTs of length s per row */
    c->other += n * (m + 2 * d) + 3 * 2.5 * n * s * log2(s + 1) + 3 * n * s;
    c->bytes += 4 * n * m + 12 * n * s;
    return;
  }
  double mp = (double)sgn_next_pow2((int64_t)m), dp = (double)sgn_next_pow2((int64_t)d);
  c->other += n * (mp * log2(mp) + dp * log2(dp)) + 2 * n * s;
  c->bytes += 4 * n * m + 4 * n * s;
}

/* The sketch's R: Y Y^T (n (n + 1) s flops), then dpotrf of the (n, n) result (n^3 / 3). fp64:
 * DSYRK on panels of Y converted to doubles. The other precisions: float32 products at the GEMM
 * rate (tf32 and bf16 at the float32 rate too: right for the CPU, which emulates them; a GPU's
 * tensor cores run them faster than the rates say), each panel of SGN_GRAM_F32_COLS columns added
 * to the float64 Gram (read a float, read and write a double over the triangle), Y rounded into
 * a copy for tf32 and bf16. */
static void add_sketch_r(sgn_cost *c, double n, double s, sgn_precision prec) {
  c->chol += n * n * n / 3;
  c->bytes += 16 * n * n;
  if (prec == SGN_PRECISION_FP64) {
    c->syrk += n * (n + 1) * s;
    c->bytes += 12 * n * s;
    return;
  }
  c->gemm += n * (n + 1) * s;
  c->bytes += 4 * n * s + 10 * n * n * ceil(s / SGN_GRAM_F32_COLS);
  if (sgn_precision_dropped_bits(prec)) c->bytes += 8 * n * s;
}

sgn_cost sgn_costmodel_step(sgn_solver solver, sgn_dims dm, const sgn_options *opt,
                            sgn_cost_step st) {
  sgn_options o = opt ? *opt : sgn_options_default();
  sgn_cost c = {0};
  const double n = (double)dm.n, d = (double)dm.d, m = (double)dm.m, k = (double)dm.k;
  double nb = n; /* rows per Gauss-Newton step */
  if (solver >= SGN_SOLVER_GN_EXACT && o.batch > 0 && o.batch < dm.n) nb = (double)o.batch;
  const double s = ceil(o.sketch_ratio * nb);
  const double its = st.cg_iters;
  const double trials = 1 + (st.ls_halvings > 0 ? st.ls_halvings : 0);

  switch (solver) {
  case SGN_SOLVER_GD:
    if (st.first)
      for (int it = 0; it < 30; it++) { /* the power iteration for the step size */
        add_product(&c, n, d, m, k);
        add_product(&c, n, d, m, k);
      }
    add_product(&c, n, d, m, k); /* J^T r */
    for (double t = 0; t < trials; t++) add_forward(&c, n, d, m, k);
    return c;
  case SGN_SOLVER_ADAM: { /* an epoch: forward and J^T g over every row, then the full loss */
    /* per mini-batch: the rows gathered, and the Adam update reading W, the gradient and both
     * moments and writing W and the moments back (7 (m, d) float arrays) */
    const double b = o.batch > 0 && o.batch < dm.n ? (double)o.batch : fmin(128, n);
    const double batches = ceil(n / b);
    for (double t = 0; t < trials; t++) {
      add_forward(&c, n, d, m, k);
      add_product(&c, n, d, m, k);
      add_forward(&c, n, d, m, k);
      c.bytes += 8 * n * (d + k) + batches * 28 * m * d;
    }
    return c;
  }
  default: break;
  }

  if (nb < n) add_forward(&c, nb, d, m, k); /* the batch's own forward */
  c.bytes += nb * m / 8;                    /* damping: the Gram diagonal counts mask bits */
  if (solver == SGN_SOLVER_GN_GRAM && sgn_heads_solve(dm)) {
    /* separate outputs: the k float Gram blocks every step (each head's counts over its m / k
     * neurons, n^2 m in all, times X X^T, which an unbatched session makes once; the blocks'
     * upper triangles written), on a refresh their mean summed (the triangles read, R's
     * written) and factored; PCG on the formed blocks (heads_symv: the k triangles read,
     * 2 k n^2 bytes) with I_k (x) R */
    c.bytes += 2 * k * nb * nb;
    if (nb < n) c.gemm += nb * nb * d;
    c.gemm += nb * nb * m;
    c.gram += nb * nb * m;
    if (st.refreshed) {
      c.bytes += 2 * k * nb * nb + 4 * nb * nb;
      c.chol += nb * nb * nb / 3;
    }
    add_rtr_solve(&c, nb, k);
    for (double it = 0; it < its; it++) {
      c.bytes += 2 * k * nb * nb + 8 * 12 * nb * k;
      c.chol += 2 * k * nb * nb;
      add_rtr_solve(&c, nb, k);
    }
    add_product(&c, nb, d, m, k); /* D = J^T g */
    for (double t = 0; t < trials; t++) add_forward(&c, n, d, m, k);
    return c;
  }
  switch (solver) {
  case SGN_SOLVER_GN_EXACT:
    add_gram(&c, nb, d, m, k, 1);
    c.chol += pow(nb * k, 3) / 3;
    add_rtr_solve(&c, nb * k, 1);
    break;
  case SGN_SOLVER_GN_GRAM:
  case SGN_SOLVER_GN_SKETCH:
    if (st.refreshed) {
      if (solver == SGN_SOLVER_GN_GRAM) {
        add_gram(&c, nb, d, m, k, 0);
        c.chol += nb * nb * nb / 3;
      } else {
        add_sketch(&c, o.sketch, nb, d, m, s);
        add_sketch_r(&c, nb, s, o.precision);
      }
    }
    add_rtr_solve(&c, nb, k);     /* the first preconditioner application */
    __attribute__((fallthrough)); /* to the iterations */
  case SGN_SOLVER_GN_CG:
    for (double it = 0; it < its; it++) {
      add_product(&c, nb, d, m, k); /* J^T p */
      add_product(&c, nb, d, m, k); /* J (J^T p) */
      c.bytes += 8 * 12 * nb * k;   /* the vector ops */
      if (solver != SGN_SOLVER_GN_CG) add_rtr_solve(&c, nb, k);
    }
    break;
  default: break;
  }
  add_product(&c, nb, d, m, k); /* D = J^T g */
  for (double t = 0; t < trials; t++) add_forward(&c, n, d, m, k);
  return c;
}

/* ---- what a run is expected to do ---- */

void sgn_costmodel_expect(sgn_solver solver, sgn_dims dm, const sgn_options *opt, double *cg_iters,
                          double *refresh_fraction) {
  sgn_options o = opt ? *opt : sgn_options_default();
  int batched = o.batch > 0 && o.batch < dm.n; /* a new batch every step: always rebuilt */
  double c = dm.k > 1 ? pow(fmin(1.0, (double)(dm.k - 1) / 9.0), 0.75) : 0.0;
  double fresh = 0, reused = 0;
  if (solver == SGN_SOLVER_GN_SKETCH) {
    double q = sqrt(1.0 / (o.sketch_ratio > 1 ? o.sketch_ratio : 1.0001));
    double kappa = pow((1 + q) / (1 - q), 2);
    fresh = ceil(0.5 * sqrt(kappa) * log(2.0 / o.cg_tol)) * (1 + 0.8 * c);
    reused = SKETCH_REUSED_FACTOR * fresh;
  } else if (solver == SGN_SOLVER_GN_GRAM && sgn_heads_solve(dm)) {
    /* separate outputs: the Gram is block diagonal, I_k (x) R misses nothing but the blocks'
     * spread about their mean (none at initialization) */
    fresh = GRAM_ITERS_FRESH + 6; /* a fresh mean-block R: 1 at step 1, 7-8 later */
    reused = GRAM_ITERS_REUSED + 8;
  } else if (solver == SGN_SOLVER_GN_GRAM) {
    fresh = GRAM_ITERS_FRESH + 12 * c;
    reused = GRAM_ITERS_REUSED + 9 * c;
  }
  sgn_refresh rf = o.refresh;
  if (rf == SGN_REFRESH_DEFAULT)
    rf = solver == SGN_SOLVER_GN_GRAM && !sgn_heads_solve(dm) ? SGN_REFRESH_AUTO
                                                              : SGN_REFRESH_ALWAYS;
  if (batched) rf = SGN_REFRESH_ALWAYS;
  double frac;
  if (rf == SGN_REFRESH_ALWAYS) frac = 1.0;
  else if (rf == SGN_REFRESH_EVERY) frac = 1.0 / (o.refresh_every > 0 ? o.refresh_every : 1);
  else if (solver == SGN_SOLVER_GN_GRAM) frac = reused > 1.5 * fresh ? 0.5 : 0.2; /* the rule */
  else frac = SKETCH_AUTO_REFRESH;
  double its = frac * fresh + (1 - frac) * reused;
  if (solver == SGN_SOLVER_GN_CG) its = o.cg_max; /* unpreconditioned: assume the cap */
  if (solver != SGN_SOLVER_GN_SKETCH && solver != SGN_SOLVER_GN_GRAM) frac = 0;
  if (its > o.cg_max) its = o.cg_max;
  if (cg_iters) *cg_iters = its;
  if (refresh_fraction) *refresh_fraction = frac;
}

double sgn_costmodel_step_seconds(sgn_solver solver, sgn_dims dm, const sgn_options *opt,
                                  const sgn_cost_rates *r) {
  double its, frac;
  sgn_costmodel_expect(solver, dm, opt, &its, &frac);
  /* a fractional iteration count: interpolate between floor and ceil */
  int lo = (int)floor(its);
  double w = its - lo;
  sgn_cost_step base = {lo, 0, 0, 0}, fresh = {lo, 1, 0, 0};
  double t = 0;
  for (int up = 0; up < 2; up++) {
    base.cg_iters = fresh.cg_iters = lo + up;
    sgn_cost a = sgn_costmodel_step(solver, dm, opt, base);
    sgn_cost b = sgn_costmodel_step(solver, dm, opt, fresh);
    double ts = (1 - frac) * sgn_cost_seconds(&a, r) + frac * sgn_cost_seconds(&b, r);
    t += (up ? w : 1 - w) * ts;
  }
  return t;
}

/* ---- the choice ---- */

static void human_bytes(double b, char *buf, size_t len) {
  if (b >= 1073741824.0) snprintf(buf, len, "%.1f GiB", b / 1073741824.0);
  else snprintf(buf, len, "%.1f MiB", b / 1048576.0);
}

const sgn_solver sgn_costmodel_candidates[SGN_COSTMODEL_CANDIDATES] = {
    SGN_SOLVER_GN_EXACT, SGN_SOLVER_GN_GRAM, SGN_SOLVER_GN_SKETCH};

sgn_solver sgn_costmodel_choose(sgn_dims dm, const sgn_options *opt, const sgn_cost_rates *r,
                                const double mem_bytes[SGN_COSTMODEL_CANDIDATES],
                                double mem_bytes_available, char *reason, size_t reason_len) {
  const sgn_solver *cand = sgn_costmodel_candidates;
  const double *mem = mem_bytes;
  double t[SGN_COSTMODEL_CANDIDATES];
  int fits[SGN_COSTMODEL_CANDIDATES], best = -1, smallest = 0;
  for (int i = 0; i < SGN_COSTMODEL_CANDIDATES; i++) {
    t[i] = sgn_costmodel_step_seconds(cand[i], dm, opt, r);
    fits[i] = !(mem_bytes_available > 0) || mem[i] <= MEM_MARGIN * mem_bytes_available;
    if (dm.heads > 1 && cand[i] == SGN_SOLVER_GN_EXACT) fits[i] = 0; /* shared outputs only */
    if (fits[i] && (best < 0 || t[i] < t[best])) best = i;
    const int excluded = dm.heads > 1 && cand[i] == SGN_SOLVER_GN_EXACT;
    if (!excluded && (mem[i] < mem[smallest] || (dm.heads > 1 && smallest == 0))) smallest = i;
  }
  int none_fit = best < 0;
  if (none_fit) best = smallest;
  if (reason && reason_len) {
    char avail[32] = "unknown", need[32];
    if (mem_bytes_available > 0) human_bytes(mem_bytes_available, avail, sizeof avail);
    human_bytes(mem[best], need, sizeof need);
    size_t at = (size_t)snprintf(reason, reason_len, "%s: est. %.3g s/step (",
                                 sgn_name(SGN_NAMES_SOLVER, cand[best]), t[best]);
    for (int i = 0, first = 1; i < SGN_COSTMODEL_CANDIDATES && at < reason_len; i++) {
      if (i == best) continue;
      const int shared_only = dm.heads > 1 && cand[i] == SGN_SOLVER_GN_EXACT;
      at += (size_t)snprintf(reason + at, reason_len - at, "%s%s %.3g%s", first ? "" : ", ",
                             sgn_name(SGN_NAMES_SOLVER, cand[i]), t[i],
                             shared_only ? " but for shared outputs only"
                             : fits[i]   ? ""
                                         : " but does not fit");
      first = 0;
    }
    if (at < reason_len)
      snprintf(reason + at, reason_len - at, "); needs %s of %s available%s", need, avail,
               none_fit ? ": none fits, taking the smallest" : "");
  }
  return cand[best];
}

/* ---- the regime ---- */

int sgn_costmodel_overparametrized(sgn_dims dm) {
  return (double)dm.m * (double)dm.d >= (double)dm.n * (double)dm.k;
}

sgn_solver sgn_costmodel_choose_auto(sgn_dims dm, const sgn_options *opt, const sgn_cost_rates *r,
                                     const double mem_bytes[SGN_COSTMODEL_CANDIDATES],
                                     double mem_first_order, double mem_bytes_available,
                                     char *reason, size_t reason_len) {
  const double params = (double)dm.m * (double)dm.d, targets = (double)dm.n * (double)dm.k;
  const int fits = !(mem_bytes_available > 0) ||
                   mem_first_order <= MEM_MARGIN * mem_bytes_available;
  char gn[400] = "";
  const sgn_solver pick = sgn_costmodel_choose(dm, opt, r, mem_bytes, mem_bytes_available, gn,
                                               sizeof gn);
  if (sgn_costmodel_overparametrized(dm) || !fits) {
    if (reason && reason_len)
      snprintf(reason, reason_len, "%s; %s: m*d = %.0f parameters %s n*k = %.0f targets", gn,
               sgn_costmodel_overparametrized(dm) ? "overparametrized" : "not overparametrized",
               params, sgn_costmodel_overparametrized(dm) ? ">=" : "<", targets);
    return pick;
  }
  if (reason && reason_len) {
    char need[32], avail[32] = "unknown";
    human_bytes(mem_first_order, need, sizeof need);
    if (mem_bytes_available > 0) human_bytes(mem_bytes_available, avail, sizeof avail);
    const double t = sgn_costmodel_step_seconds(SGN_SOLVER_ADAM, dm, opt, r);
    snprintf(reason, reason_len,
             "adam: not overparametrized (m*d = %.0f parameters < n*k = %.0f targets): no "
             "Gauss-Newton step fits the data exactly, and first-order epochs are cheap; est. "
             "%.3g s/epoch; needs %s of %s available (Gauss-Newton would be %s)",
             params, targets, t, need, avail, gn);
  }
  return SGN_SOLVER_ADAM;
}
