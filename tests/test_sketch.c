/* test_sketch.c — the four sketches of J (srht, gaussian, srft, countsketch) held to what a
 * correct sketch does: unbiased (the seed average of Y Y^T converges to G at the 1/sqrt(seeds)
 * rate), a preconditioner on the Marchenko-Pastur curve (cond(R^-T G R^-1) < 30 at s = 4n; for
 * TensorSketch in the median over seeds, with a bar on its tail; hopeless at s = n), exact
 * agreement with the sketch matrix formed from the rng.h draws (what the CUDA twins must
 * reproduce), reproducible per seed and independent of blocking and threads, never touching
 * memory past sketch_work_bytes, writing no row once the stop flag is set; and srft's real
 * Fourier transform orthonormal. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error_bounds.h"
#include "linalg.h"
#include "precision.h"
#include "rng.h"
#include "sketch.h"

/* Tolerances and thresholds:
 * COND_4N      cond(R^-T G R^-1) at s = 4n: the Gaussian (Marchenko-Pastur) value is
 *              ((1 + 1/2) / (1 - 1/2))^2 = 9; the design allows 30 for sketch-to-sketch spread.
 * COND_4N_CS_MAX TensorSketch's worst seed at s = 4n: measured over 40 seeds (n = 256,
 *              m = 512) mean 27.7, max 144 at d = 16 (7 of 40 above 30), max 14.9 at d = 128;
 *              srft over the same 40 seeds: max 11.3 at d = 16, 16.2 at d = 128 (under COND_4N).
 * COND_N_MIN   at s = n the preconditioner is near-singular (design: 1e6..1e11); 1e3 is a
 *              floor that a working sketch at s = n cannot mistakenly pass and s = 4n cannot reach.
 * MEAN_STEP    error of the seed average after 4x more seeds: 1/sqrt(4) = 0.5 for an unbiased
 *              sketch (measured 0.43-0.60); 0.75 allows the spread of a finite average.
 * MEAN_RATE    after 64x more seeds: 1/8 expected (measured 0.10-0.12); a biased sketch stalls
 *              at its bias, a wrong scale of 10% already floors the error near 0.1.
 * MEAN_FINAL   relative Frobenius error of the 64-seed average (measured 0.058-0.069).
 * TOL_ENTRY    entry of Y vs the explicitly formed sketch, relative to the float bound
 *              sum |terms|: float rounding over <= 8192-term sums and log2(8192) butterflies.
 * TOL_RFT      F^T F - I and F^-1 F x - x in float32 FFTs of length <= 5003: a few ulps times
 *              log2 N (measured 1.5e-7 and 3.9e-7).
 * TOL_CONV     TensorSketch vs its direct float64 sum, relative to the row norm ||J_i|| (the
 *              FFT's error spreads over the row): measured 5e-8 and 1.1e-7 at s = 250, 257. */
#define COND_4N 30.0
#define COND_4N_CS_MAX 500.0
#define COND_N_MIN 1e3
#define MEAN_STEP 0.75
#define MEAN_RATE 0.2
#define MEAN_FINAL 0.1
#define TOL_ENTRY 1e-5
#define TOL_RFT 1e-5
#define TOL_CONV 1e-6

/* ---- problem and helpers ---- */

typedef struct problem {
  sgn_dims dm;
  float *X, *Z; /* (n, d) unit rows, (n, m) = X W^T with W (m, d) standard normal */
  uint32_t *M;  /* (n, SGN_MASK_WORDS(m)) the bit mask 1[Z > 0] the sketches read */
  double *G;    /* (n, n) exact (X X^T) o (M M^T) / m */
} problem;

static problem make_problem(int64_t n, int64_t d, int64_t m, uint64_t seed, int with_gram) {
  problem p = {.dm = {.n = n, .d = d, .m = m, .k = 1}};
  p.X = malloc(sizeof(float) * n * d);
  p.Z = malloc(sizeof(float) * n * m);
  p.M = calloc((size_t)(n * SGN_MASK_WORDS(m)), sizeof(uint32_t));
  p.G = with_gram ? malloc(sizeof(double) * n * n) : NULL;
  float *W = malloc(sizeof(float) * m * d);
  for (int64_t i = 0; i < n; i++) {
    double nrm = 0.0, x[4096];
    for (int64_t t = 0; t < d; t++) {
      x[t] = sgn_rng_normal(seed, SGN_STREAM_SYNTH_X, (uint64_t)(i * d + t));
      nrm += x[t] * x[t];
    }
    for (int64_t t = 0; t < d; t++) p.X[i * d + t] = (float)(x[t] / sqrt(nrm));
  }
  for (int64_t i = 0; i < m * d; i++)
    W[i] = (float)sgn_rng_normal(seed, SGN_STREAM_INIT_W, (uint64_t)i);
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < m; r++) {
      double z = 0.0;
      for (int64_t t = 0; t < d; t++) z += (double)p.X[i * d + t] * W[r * d + t];
      p.Z[i * m + r] = (float)z;
      if (p.Z[i * m + r] > 0.0f) p.M[i * SGN_MASK_WORDS(m) + r / 32] |= 1u << (r % 32);
    }
  for (int64_t i = 0; with_gram && i < n; i++)
    for (int64_t j = 0; j <= i; j++) {
      double xx = 0.0;
      int64_t both = 0;
      for (int64_t t = 0; t < d; t++) xx += (double)p.X[i * d + t] * p.X[j * d + t];
      for (int64_t r = 0; r < m; r++) both += p.Z[i * m + r] > 0.0f && p.Z[j * m + r] > 0.0f;
      p.G[i * n + j] = p.G[j * n + i] = xx * (double)both / (double)m;
    }
  free(W);
  return p;
}

static void free_problem(problem *p) { free(p->X), free(p->Z), free(p->M), free(p->G); }

/* Y = sketch(kind) with a work buffer of exactly sketch_work_bytes, filled with junk first
 * (the result must not depend on it) and followed by a guard that must survive. */
#define GUARD 256
static void run_sketch(sgn_sketch kind, const problem *p, int64_t s, uint64_t seed,
                       unsigned char junk, float *Y) {
  size_t wb = sgn_sketch_work_bytes_cpu(p->dm, kind, s);
  unsigned char *work = malloc(wb + GUARD);
  memset(work, junk, wb);
  memset(work + wb, 0xA5, GUARD);
  switch (kind) {
  case SGN_SKETCH_SRHT: sgn_sketch_srht_cpu(p->dm, s, seed, p->X, p->M, work, Y, NULL); break;
  case SGN_SKETCH_GAUSSIAN:
    sgn_sketch_gaussian_cpu(p->dm, s, seed, p->X, p->M, work, Y, NULL);
    break;
  case SGN_SKETCH_SRFT: sgn_sketch_srft_cpu(p->dm, s, seed, p->X, p->M, work, Y, NULL); break;
  case SGN_SKETCH_COUNTSKETCH:
    sgn_sketch_countsketch_cpu(p->dm, s, seed, p->X, p->M, work, Y, NULL);
    break;
  }
  for (size_t b = 0; b < GUARD; b++)
    cr_assert_eq(work[wb + b], 0xA5, "sketch wrote past its %zu work bytes (at +%zu)", wb, b);
  free(work);
}

static const char *kind_name(sgn_sketch kind) {
  static const char *const names[] = {"srht", "gaussian", "srft", "countsketch"};
  return names[kind];
}

/* Eigenvalue ratio of the symmetric C (n, n) (destroyed); INFINITY if not positive. */
static double sym_cond(int64_t n, double *C) {
  double *w = malloc(sizeof(double) * n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < i; j++)
      C[i * n + j] = C[j * n + i] = 0.5 * (C[i * n + j] + C[j * n + i]);
  lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)n, C, (lapack_int)n, w);
  cr_assert_eq(info, 0, "dsyev info %d", (int)info);
  double cond = w[0] > 0.0 ? w[n - 1] / w[0] : INFINITY;
  free(w);
  return cond;
}

/* cond(R^-T G R^-1) with R^T R = Y Y^T from sgn_sketch_r_cpu (lambda = 0). */
static double precond_cond(int64_t n, int64_t s, const float *Y, const double *G) {
  double *R = malloc(sizeof(double) * n * n), *C = malloc(sizeof(double) * n * n);
  void *work = malloc(sgn_sketch_r_work_bytes_cpu(n, s, SGN_PRECISION_FP64));
  double cond = INFINITY;
  if (sgn_sketch_r_cpu(n, s, Y, 0.0, SGN_PRECISION_FP64, work, R, NULL) == 0) {
    memcpy(C, G, sizeof(double) * n * n);
    /* C <- G R^-1, then C <- R^-T C */
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, (int)n, (int)n,
                1.0, R, (int)n, C, (int)n);
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, (int)n, (int)n, 1.0,
                R, (int)n, C, (int)n);
    cond = sym_cond(n, C);
  }
  free(R), free(C), free(work);
  return cond;
}

/* ---- unbiasedness ---- */

/* E[Y Y^T] = G: the average over K seeds has relative Frobenius error ~ 1/sqrt(K)
 * (K = 1, 4, 16, 64). */
static void check_unbiased(sgn_sketch kind) {
  const int64_t n = 64, s = 128;
  problem p = make_problem(n, 8, 128, 21, 1);
  float *Y = malloc(sizeof(float) * n * s);
  double *acc = calloc((size_t)(n * n), sizeof(double));
  double gnorm = 0.0, err[4];
  int at = 0;
  for (int64_t i = 0; i < n * n; i++) gnorm += p.G[i] * p.G[i];
  gnorm = sqrt(gnorm);
  for (int64_t K = 1; K <= 64; K++) {
    run_sketch(kind, &p, s, 1000 + (uint64_t)K, 0, Y);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) {
        double yy = 0.0;
        for (int64_t t = 0; t < s; t++) yy += (double)Y[i * s + t] * Y[j * s + t];
        acc[i * n + j] += yy;
      }
    if (K == 1 || K == 4 || K == 16 || K == 64) {
      double e = 0.0;
      for (int64_t i = 0; i < n * n; i++) e += (acc[i] / K - p.G[i]) * (acc[i] / K - p.G[i]);
      err[at++] = sqrt(e) / gnorm;
    }
  }
  fprintf(stderr, "%s: ||mean_K Y Y^T - G||_F / ||G||_F at K = 1, 4, 16, 64: %.3f %.3f %.3f %.3f\n",
          kind_name(kind), err[0], err[1], err[2], err[3]);
  for (int a = 1; a < 4; a++)
    cr_assert(err[a] < MEAN_STEP * err[a - 1], "%s: error %.3f -> %.3f with 4x the seeds",
              kind_name(kind), err[a - 1], err[a]);
  cr_assert(err[3] < MEAN_RATE * err[0], "%s: error %.3f -> %.3f with 64x the seeds",
            kind_name(kind), err[0], err[3]);
  cr_assert(err[3] < MEAN_FINAL, "%s: 64-seed error %.3f", kind_name(kind), err[3]);
  free(Y), free(acc);
  free_problem(&p);
}

Test(sketch, srht_unbiased) { check_unbiased(SGN_SKETCH_SRHT); }
Test(sketch, gaussian_unbiased) { check_unbiased(SGN_SKETCH_GAUSSIAN); }
Test(sketch, srft_unbiased) { check_unbiased(SGN_SKETCH_SRFT); }
Test(sketch, countsketch_unbiased) { check_unbiased(SGN_SKETCH_COUNTSKETCH); }

/* ---- preconditioner quality ---- */

/* n = 256, d = 16, m = 512: cond at s = n, 2n, 4n, 8n must follow the Marchenko-Pastur curve
 * (9 at 4n, 4.4 at 8n) and s = n must fail, so this test can tell a good sketch from a bad one. */
static void check_condition(sgn_sketch kind, double bar_4n) {
  const int64_t n = 256, ratios[4] = {1, 2, 4, 8};
  problem p = make_problem(n, 16, 512, 5, 1);
  double cond[4], *Gc = malloc(sizeof(double) * n * n);
  memcpy(Gc, p.G, sizeof(double) * n * n);
  double condG = sym_cond(n, Gc);
  for (int a = 0; a < 4; a++) {
    int64_t s = ratios[a] * n;
    float *Y = malloc(sizeof(float) * n * s);
    run_sketch(kind, &p, s, 77, 0, Y);
    cond[a] = precond_cond(n, s, Y, p.G);
    free(Y);
  }
  fprintf(stderr,
          "%s: cond(G) = %.3g; cond(R^-T G R^-1) at s = n, 2n, 4n, 8n: "
          "%.3g %.3g %.3g %.3g\n",
          kind_name(kind), condG, cond[0], cond[1], cond[2], cond[3]);
  cr_assert(cond[2] < bar_4n, "%s: cond %.3g at s = 4n (bar %g)", kind_name(kind), cond[2], bar_4n);
  cr_assert(cond[3] < cond[2] && cond[2] < cond[1] && cond[1] < cond[0],
            "%s: more rows must precondition better", kind_name(kind));
  cr_assert(cond[0] > COND_N_MIN, "%s: s = n should be near-singular, cond %.3g", kind_name(kind),
            cond[0]);
  free(Gc);
  free_problem(&p);
}

Test(sketch, srht_condition_number) { check_condition(SGN_SKETCH_SRHT, COND_4N); }
Test(sketch, gaussian_condition_number) { check_condition(SGN_SKETCH_GAUSSIAN, COND_4N); }
Test(sketch, srft_condition_number) { check_condition(SGN_SKETCH_SRFT, COND_4N); }
Test(sketch, countsketch_condition_number) {
  check_condition(SGN_SKETCH_COUNTSKETCH, COND_4N_CS_MAX);
}

/* TensorSketch's tail: at s = 4n, d = 16 the median over seeds is on the Marchenko-Pastur value
 * but some seeds land far above it, so it is held to COND_4N in the median of 9 seeds and to
 * COND_4N_CS_MAX in the worst (SRFT, for contrast, stays under 30 at every seed measured). */
Test(sketch, countsketch_condition_over_seeds) {
  const int64_t n = 256, s = 4 * n;
  double cond[9];
  float *Y = malloc(sizeof(float) * n * s);
  for (int a = 0; a < 9; a++) {
    problem p = make_problem(n, 16, 512, 30 + (uint64_t)a, 1);
    run_sketch(SGN_SKETCH_COUNTSKETCH, &p, s, 300 + (uint64_t)a, 0, Y);
    cond[a] = precond_cond(n, s, Y, p.G);
    free_problem(&p);
  }
  for (int a = 1; a < 9; a++) /* insertion sort */
    for (int b = a; b > 0 && cond[b] < cond[b - 1]; b--) {
      double t = cond[b];
      cond[b] = cond[b - 1], cond[b - 1] = t;
    }
  fprintf(stderr,
          "countsketch: cond(R^-T G R^-1) at s = 4n over 9 seeds: min %.3g median %.3g "
          "max %.3g\n",
          cond[0], cond[4], cond[8]);
  cr_assert(cond[4] < COND_4N, "countsketch: median cond %.3g at s = 4n", cond[4]);
  cr_assert(cond[8] < COND_4N_CS_MAX, "countsketch: worst cond %.3g at s = 4n", cond[8]);
  free(Y);
}

/* ---- the draws, entry by entry ---- */

/* Y[i,j] = <S_j, J_i> with the explicitly formed SRHT row
 * S_j = sqrt(m' d' / s) ((H D1)[p_j, :]) (x) ((H D2)[q_j, :]) and J_i = m^-1/2 M_i (x) x_i.
 * m = 5000 (padded to 8192), d = 20 (padded to 32), n = 600 spans several sample blocks. */
Test(sketch, srht_matches_explicit_sketch) {
  const int64_t n = 600, d = 20, m = 5000, s = 600, mp = 8192, dp = 32;
  const uint64_t seed = 99;
  problem p = make_problem(n, d, m, 3, 0);
  float *Y = malloc(sizeof(float) * n * s);
  run_sketch(SGN_SKETCH_SRHT, &p, s, seed, 0xFF, Y);
  const int64_t is[] = {0, 1, 255, 256, 509, 510, 511, 512, 599}, js[] = {0, 1, 300, 599};
  for (int64_t a = 0; a < 9 * 4 + 64; a++) {
    int64_t i = a < 36 ? is[a / 4] : (int64_t)sgn_rng_below(1, 1, (uint64_t)a, (uint64_t)n);
    int64_t j = a < 36 ? js[a % 4] : (int64_t)sgn_rng_below(2, 2, (uint64_t)a, (uint64_t)s);
    uint64_t pj = sgn_rng_below(seed, SGN_STREAM_SKETCH_P, (uint64_t)j, (uint64_t)mp);
    uint64_t qj = sgn_rng_below(seed, SGN_STREAM_SKETCH_Q, (uint64_t)j, (uint64_t)dp);
    double u = 0.0, v = 0.0, ubound = 0.0, vbound = 0.0;
    for (int64_t r = 0; r < m; r++) {
      if (!(p.Z[i * m + r] > 0.0f)) continue;
      double h = (__builtin_popcountll(pj & (uint64_t)r) & 1) ? -1.0 : 1.0;
      u += h * sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)r);
      ubound += 1.0;
    }
    for (int64_t t = 0; t < d; t++) {
      double h = (__builtin_popcountll(qj & (uint64_t)t) & 1) ? -1.0 : 1.0;
      v += h * sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t) * p.X[i * d + t];
      vbound += fabs(p.X[i * d + t]);
    }
    /* the 1/sqrt(m' d') of the two H's cancels the sqrt(m' d') of the scale */
    double want = u * v / sqrt((double)m * (double)s);
    double bound = ubound * vbound / sqrt((double)m * (double)s);
    cr_assert(fabs(Y[i * s + j] - want) <= TOL_ENTRY * bound, "Y[%lld,%lld] = %.8g, want %.8g",
              (long long)i, (long long)j, Y[i * s + j], want);
  }
  free(Y);
  free_problem(&p);
}

/* Y[i,j] = (sum_r M_ir Omega1[r,j]) (sum_t x_it Omega2[t,j]) / sqrt(m s), Omega from rng.h by
 * element (r s + j, t s + j); n = s = 600 crosses the 512 x 512 blocks both ways. */
Test(sketch, gaussian_matches_explicit_sketch) {
  const int64_t n = 600, d = 5, m = 64, s = 600;
  const uint64_t seed = 98;
  problem p = make_problem(n, d, m, 4, 0);
  float *Y = malloc(sizeof(float) * n * s);
  run_sketch(SGN_SKETCH_GAUSSIAN, &p, s, seed, 0xFF, Y);
  const int64_t is[] = {0, 1, 511, 512, 599}, js[] = {0, 511, 512, 513, 599};
  for (int64_t a = 0; a < 25 + 100; a++) {
    int64_t i = a < 25 ? is[a / 5] : (int64_t)sgn_rng_below(1, 1, (uint64_t)a, (uint64_t)n);
    int64_t j = a < 25 ? js[a % 5] : (int64_t)sgn_rng_below(2, 2, (uint64_t)a, (uint64_t)s);
    double u = 0.0, v = 0.0, ub = 0.0, vb = 0.0;
    for (int64_t r = 0; r < m; r++) {
      if (!(p.Z[i * m + r] > 0.0f)) continue;
      double o = sgn_rng_normal(seed, SGN_STREAM_SKETCH_G1, (uint64_t)(r * s + j));
      u += o, ub += fabs(o);
    }
    for (int64_t t = 0; t < d; t++) {
      double o = sgn_rng_normal(seed, SGN_STREAM_SKETCH_G2, (uint64_t)(t * s + j));
      v += o * p.X[i * d + t], vb += fabs(o * p.X[i * d + t]);
    }
    double want = u * v / sqrt((double)m * (double)s);
    double bound = ub * vb / sqrt((double)m * (double)s);
    cr_assert(fabs(Y[i * s + j] - want) <= TOL_ENTRY * bound, "Y[%lld,%lld] = %.8g, want %.8g",
              (long long)i, (long long)j, Y[i * s + j], want);
  }
  free(Y);
  free_problem(&p);
}

/* ---- seeds ---- */

/* The same seed gives bit-identical Y whatever junk work held; another seed changes Y. */
static void check_seeds(sgn_sketch kind) {
  const int64_t n = 100, s = 300;
  problem p = make_problem(n, 12, 200, 6, 0);
  float *Y1 = malloc(sizeof(float) * n * s), *Y2 = malloc(sizeof(float) * n * s);
  run_sketch(kind, &p, s, 42, 0x00, Y1);
  run_sketch(kind, &p, s, 42, 0x7F, Y2);
  cr_assert(memcmp(Y1, Y2, sizeof(float) * n * s) == 0, "%s: same seed, different Y",
            kind_name(kind));
  run_sketch(kind, &p, s, 43, 0x00, Y2);
  int64_t differ = 0;
  for (int64_t i = 0; i < n * s; i++) differ += Y1[i] != Y2[i];
  cr_assert(differ > 0.9 * (double)(n * s), "%s: seeds 42 and 43 agree on %lld of %lld entries",
            kind_name(kind), (long long)(n * s - differ), (long long)(n * s));
  free(Y1), free(Y2);
  free_problem(&p);
}

Test(sketch, srht_seeds) { check_seeds(SGN_SKETCH_SRHT); }
Test(sketch, gaussian_seeds) { check_seeds(SGN_SKETCH_GAUSSIAN); }
Test(sketch, srft_seeds) { check_seeds(SGN_SKETCH_SRFT); }
Test(sketch, countsketch_seeds) { check_seeds(SGN_SKETCH_COUNTSKETCH); }

/* ---- the FFT sketches: srft and countsketch ---- */

/* 1 if neuron r of sample i is active (the mask the sketches read) */
static int active(const problem *p, int64_t i, int64_t r) { return p->Z[i * p->dm.m + r] > 0.0f; }

/* F of rft.h is orthogonal (F^T F = I, so norms are kept and F^T inverts it) and incoherent
 * (no entry above sqrt(2/N): it spreads every coordinate over all of them, what makes the sampled
 * coordinates of F D x a good sketch); the inverse transform recovers x. Odd and even lengths,
 * powers of two and primes. F is formed column by column from the transform of e_t. */
Test(sketch, rft_is_orthonormal_and_inverts) {
  const int64_t lens[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 31, 64, 100, 127, 128};
  const int64_t big[] = {1000, 1001, 4096, 5003};
  double worst_dev = 0.0, worst_inv = 0.0;
  for (size_t a = 0; a < sizeof lens / sizeof *lens; a++) {
    const int64_t N = lens[a];
    float *E = calloc((size_t)(N * N), sizeof(float)), *Ft = malloc(sizeof(float) * N * N);
    for (int64_t t = 0; t < N; t++) E[t * N + t] = 1.0f;
    cr_assert_eq(sgn_sketch_rft_cpu(N, N, 0, E, Ft), 0); /* row t of Ft = F e_t = column t */
    double dev = 0.0, peak = 0.0;
    for (int64_t t = 0; t < N; t++)
      for (int64_t u = 0; u < N; u++) {
        double dot = 0.0;
        for (int64_t q = 0; q < N; q++) dot += (double)Ft[t * N + q] * Ft[u * N + q];
        dev = fmax(dev, fabs(dot - (t == u)));
        peak = fmax(peak, fabs(Ft[t * N + u]));
      }
    worst_dev = fmax(worst_dev, dev);
    cr_assert(dev < TOL_RFT, "N = %lld: |F^T F - I|_max = %.3g", (long long)N, dev);
    cr_assert(peak <= sqrt(2.0 / (double)N) * (1 + TOL_RFT), "N = %lld: entry %.6g > sqrt(2/N)",
              (long long)N, peak);
    /* F^-1 F = I through the inverse transform */
    float *back = malloc(sizeof(float) * N * N);
    cr_assert_eq(sgn_sketch_rft_cpu(N, N, 1, Ft, back), 0);
    for (int64_t e = 0; e < N * N; e++)
      cr_assert(fabs(back[e] - E[e]) < TOL_RFT, "N = %lld: inverse of F e_t off by %.3g at %lld",
                (long long)N, fabs(back[e] - E[e]), (long long)e);
    free(E), free(Ft), free(back);
  }
  for (size_t a = 0; a < sizeof big / sizeof *big; a++) {
    const int64_t N = big[a];
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    float *z = malloc(sizeof(float) * N);
    double nx = 0.0, ny = 0.0, err = 0.0;
    for (int64_t t = 0; t < N; t++) x[t] = (float)sgn_rng_normal(7, 7, (uint64_t)t);
    cr_assert_eq(sgn_sketch_rft_cpu(1, N, 0, x, y), 0);
    cr_assert_eq(sgn_sketch_rft_cpu(1, N, 1, y, z), 0);
    for (int64_t t = 0; t < N; t++) {
      nx += (double)x[t] * x[t], ny += (double)y[t] * y[t];
      err += ((double)z[t] - x[t]) * ((double)z[t] - x[t]);
    }
    cr_assert(fabs(sqrt(ny / nx) - 1.0) < TOL_RFT, "N = %lld: ||F x|| / ||x|| = %.9g", (long long)N,
              sqrt(ny / nx));
    worst_inv = fmax(worst_inv, fmax(fabs(sqrt(ny / nx) - 1.0), sqrt(err / nx)));
    cr_assert(sqrt(err / nx) < TOL_RFT, "N = %lld: ||F^-1 F x - x|| / ||x|| = %.3g", (long long)N,
              sqrt(err / nx));
    free(x), free(y), free(z);
  }
  fprintf(stderr,
          "rft: worst |F^T F - I|_max %.3g (N <= 128); worst norm / inverse error %.3g "
          "(N <= 5003)\n",
          worst_dev, worst_inv);
}

/* Y[i,j] = sqrt(d / s) (F D1 M_i)[p_j] (F D2 x_i)[q_j] with F from the DFT's definition in
 * float64 (cosines and sines), the signs and indices from rng.h: what the CUDA twin reproduces.
 * Odd m = 1001, even d = 12, n = 300 rows. */
static double dft_coord(int64_t N, int64_t p, const double *v, double *bound) {
  /* p -> (k, cos or sin) as rft.h says; returns (F v)[p], *bound = sum |terms| */
  double acc = 0.0, b = 0.0, w;
  int64_t k;
  int use_sin = 0;
  if (p == 0) k = 0, w = sqrt(1.0 / N);
  else if (N % 2 == 0 && p == N - 1) k = N / 2, w = sqrt(1.0 / N);
  else k = (p + 1) / 2, use_sin = p % 2 == 0, w = sqrt(2.0 / N);
  for (int64_t t = 0; t < N; t++) {
    double ang = 2.0 * M_PI * (double)((k * t) % N) / (double)N;
    double term = v[t] * (use_sin ? -sin(ang) : cos(ang)) * w;
    acc += term, b += fabs(term);
  }
  *bound = b;
  return acc;
}

Test(sketch, srft_matches_explicit_sketch) {
  const int64_t n = 300, d = 12, m = 1001, s = 500;
  const uint64_t seed = 97;
  problem p = make_problem(n, d, m, 8, 0);
  float *Y = malloc(sizeof(float) * n * s);
  double *u = malloc(sizeof(double) * m), v[12];
  run_sketch(SGN_SKETCH_SRFT, &p, s, seed, 0xFF, Y);
  for (int64_t a = 0; a < 200; a++) {
    int64_t i = (int64_t)sgn_rng_below(1, 1, (uint64_t)a, (uint64_t)n);
    int64_t j = a < 4 ? a : (int64_t)sgn_rng_below(2, 2, (uint64_t)a, (uint64_t)s);
    int64_t pj = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_P, (uint64_t)j, (uint64_t)m);
    int64_t qj = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_Q, (uint64_t)j, (uint64_t)d);
    for (int64_t r = 0; r < m; r++)
      u[r] = active(&p, i, r) ? sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)r) : 0.0;
    for (int64_t t = 0; t < d; t++)
      v[t] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t) * p.X[i * d + t];
    double ub, vb;
    double fu = dft_coord(m, pj, u, &ub), fv = dft_coord(d, qj, v, &vb);
    double want = sqrt((double)d / (double)s) * fu * fv;
    double bound = sqrt((double)d / (double)s) * ub * vb;
    cr_assert(fabs(Y[i * s + j] - want) <= TOL_ENTRY * bound,
              "Y[%lld,%lld] = %.8g, want %.8g (p %lld, q %lld)", (long long)i, (long long)j,
              Y[i * s + j], want, (long long)pj, (long long)qj);
  }
  free(Y), free(u);
  free_problem(&p);
}

/* TensorSketch is the CountSketch of the row M_i (x) x_i / sqrt(m) under the bucket
 * (h1(r) + h2(t)) mod s and the sign D1_r D2_t: summed here directly over all (r, t) in float64,
 * against the FFT convolution. s = 250 (even) and 257 (prime). */
Test(sketch, countsketch_matches_explicit_sketch) {
  const int64_t n = 120, d = 7, m = 300, ss[] = {250, 257};
  const uint64_t seed = 96;
  problem p = make_problem(n, d, m, 9, 0);
  for (int c = 0; c < 2; c++) {
    const int64_t s = ss[c];
    float *Y = malloc(sizeof(float) * n * s);
    double *want = malloc(sizeof(double) * s), *bound = malloc(sizeof(double) * s);
    run_sketch(SGN_SKETCH_COUNTSKETCH, &p, s, seed, 0xFF, Y);
    double worst = 0.0;
    for (int64_t i = 0; i < n; i += 7) {
      double norm2 = 0.0;
      for (int64_t j = 0; j < s; j++) want[j] = bound[j] = 0.0;
      for (int64_t r = 0; r < m; r++) {
        if (!active(&p, i, r)) continue;
        uint64_t h1 = sgn_rng_below(seed, SGN_STREAM_SKETCH_H1, (uint64_t)r, (uint64_t)s);
        double s1 = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)r);
        for (int64_t t = 0; t < d; t++) {
          uint64_t h2 = sgn_rng_below(seed, SGN_STREAM_SKETCH_H2, (uint64_t)t, (uint64_t)s);
          double term = s1 * sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t) *
                        p.X[i * d + t] / sqrt((double)m);
          want[(h1 + h2) % (uint64_t)s] += term;
          bound[(h1 + h2) % (uint64_t)s] += fabs(term);
          norm2 += term * term;
        }
      }
      /* the FFT's rounding spreads over the whole row: relative to the row's norm ||J_i|| */
      for (int64_t j = 0; j < s; j++) {
        double e = fabs(Y[i * s + j] - want[j]) / sqrt(norm2);
        worst = fmax(worst, e);
        cr_assert(e <= TOL_CONV, "s %lld: Y[%lld,%lld] = %.8g, want %.8g", (long long)s,
                  (long long)i, (long long)j, Y[i * s + j], want[j]);
      }
    }
    fprintf(stderr, "countsketch s = %lld: worst |Y - direct| / ||J_i|| = %.3g\n", (long long)s,
            worst);
    free(Y), free(want), free(bound);
  }
  free_problem(&p);
}

/* Y depends on the seed only: not on the row blocking (a neuron-chunked dm cuts the blocks to a
 * few rows), the thread count, or which rows are sketched together (the first 100 rows alone
 * give the first 100 rows of Y). Bit for bit, for every sketch. */
static void check_blocking(sgn_sketch kind) {
  const int64_t n = 600, s = 300;
  problem p = make_problem(n, 10, 300, 11, 0);
  float *Y1 = malloc(sizeof(float) * n * s), *Y2 = malloc(sizeof(float) * n * s);
  omp_set_num_threads(1);
  run_sketch(kind, &p, s, 5, 0x00, Y1);
  omp_set_num_threads(4);
  run_sketch(kind, &p, s, 5, 0x3C, Y2);
  cr_assert(memcmp(Y1, Y2, sizeof(float) * n * s) == 0, "%s: 1 vs 4 threads", kind_name(kind));
  problem q = p;
  q.dm.mc = 2; /* chunked: blocks of a few rows */
  run_sketch(kind, &q, s, 5, 0x11, Y2);
  cr_assert(memcmp(Y1, Y2, sizeof(float) * n * s) == 0, "%s: small row blocks", kind_name(kind));
  q.dm.mc = 0, q.dm.n = 100;
  memset(Y2, 0, sizeof(float) * n * s);
  run_sketch(kind, &q, s, 5, 0x22, Y2);
  cr_assert(memcmp(Y1, Y2, sizeof(float) * 100 * s) == 0, "%s: the first 100 rows alone",
            kind_name(kind));
  omp_set_num_threads(1);
  free(Y1), free(Y2);
  free_problem(&p);
}

Test(sketch, srht_ignores_blocking_and_threads) { check_blocking(SGN_SKETCH_SRHT); }
Test(sketch, srft_ignores_blocking_and_threads) { check_blocking(SGN_SKETCH_SRFT); }
Test(sketch, countsketch_ignores_blocking_and_threads) { check_blocking(SGN_SKETCH_COUNTSKETCH); }

/* ---- the sketch's R in panels ---- */

/* R from Y's columns in panels (sgn_sketch_panels_r_cpu, work of exactly its bytes, junk-filled
 * and guarded) against R from Y whole (sgn_sketch_r_cpu) at the same precision,
 * lambda = 1e-3 mean(G_ii). Panels of a multiple of the Gram's own panel width (512 for fp64,
 * SGN_GRAM_F32_COLS for the float32 precisions) and one panel run the same sums on the same Y:
 * bit for bit for the sketches whose rows do not depend on the blocking (srht, srft,
 * countsketch: *_ignores_blocking_and_threads). Every panel width and the Gaussian sketch (its
 * SGEMMs may round otherwise in row blocks) within the rounding bound from the norms: both are
 * Cholesky factors of a Gram of Y + lambda I up to |E| <= gamma64(n + 1) |R|^T |R| (Higham,
 * thm 10.3); at the float32 precisions both round Y alike and cut its float32 sums elsewhere,
 * each Gram within fp32's sketch_gram_bound of the rounded Y's (error_bounds.h; |rounded Y| <=
 * (1 + u) |Y|); and the two Y (Gaussian only; the others' rows are the same bits) differ by at
 * most gamma32(m + d + 4) |Y| entry by entry, their roundings (tf32, bf16) by up to u |Y| more,
 * so
 * |R_p^T R_p - R_w^T R_w| <= 2 gamma64(n + s) (|R_p|^T |R_p| + |R_w|^T |R_w|)
 *                            + 2 sketch_gram_bound(fp32, s) (1 + u)^2 |Y| |Y|^T  (float32 ones)
 *                            [+ (3 gamma32(m + d + 4) + 2 (2u + u^2)) |Y| |Y|^T]  (Gaussian)
 * (the factors 2 and 3: room). */

static void check_panels(sgn_sketch kind) {
  const int64_t n = 300, d = 6, m = 200, s = 4 * n;
  problem p = make_problem(n, d, m, 31, 0);
  float *Y = malloc(sizeof(float) * n * s);
  run_sketch(kind, &p, s, 9, 0x00, Y);
  double mean = 0.0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < s; j++) mean += (double)Y[i * s + j] * Y[i * s + j] / (double)n;
  const double lambda = 1e-3 * mean;
  double *Rw = malloc(sizeof(double) * n * n), *Rp = malloc(sizeof(double) * n * n);
  /* |Y| |Y|^T */
  double *YY = calloc((size_t)(n * n), sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++)
      for (int64_t t = 0; t < s; t++) YY[i * n + j] += fabs((double)Y[i * s + t] * Y[j * s + t]);
  for (int q = SGN_PRECISION_FP64; q <= SGN_PRECISION_BF16; q++) {
    const sgn_precision prec = (sgn_precision)q;
    void *rw = malloc(sgn_sketch_r_work_bytes_cpu(n, s, prec));
    cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, lambda, prec, rw, Rw, NULL), 0);
    free(rw);
    const int64_t same = prec == SGN_PRECISION_FP64 ? 512 : SGN_GRAM_F32_COLS;
    const int64_t panels[] = {512, 700, 1024, s};
    for (size_t t = 0; t < sizeof panels / sizeof *panels; t++) {
      const int64_t pw = panels[t];
      const size_t wb = sgn_sketch_panels_work_bytes_cpu(p.dm, kind, s, pw, prec);
      unsigned char *work = malloc(wb + GUARD);
      memset(work, 0x5C, wb);
      memset(work + wb, 0xA5, GUARD);
      memset(Rp, 0xff, sizeof(double) * n * n);
      cr_assert_eq(
          sgn_sketch_panels_r_cpu(p.dm, kind, s, 9, p.X, p.M, lambda, prec, pw, work, Rp, NULL), 0);
      for (size_t b = 0; b < GUARD; b++)
        cr_assert_eq(work[wb + b], 0xA5, "%s precision %d panel %ld: wrote past its %zu work bytes",
                     kind_name(kind), q, (long)pw, wb);
      free(work);
      if (kind != SGN_SKETCH_GAUSSIAN && (pw % same == 0 || pw == s))
        cr_assert(memcmp(Rp, Rw, sizeof(double) * n * n) == 0,
                  "%s precision %d panel %ld: R not bit for bit", kind_name(kind), q, (long)pw);
      /* the Grams R^T R, and the bound */
      const double u = sgn_precision_unit_roundoff(prec);
      const double gram = prec == SGN_PRECISION_FP64
                              ? 0.0
                              : 2.0 * sketch_gram_bound(SGN_PRECISION_FP32, s) * (1 + u) * (1 + u);
      /* the Gaussian's two Y, and (tf32, bf16) their roundings, which may then part by an ulp */
      const double ydiff = kind == SGN_SKETCH_GAUSSIAN
                               ? 3.0 * (double)(m + d + 4) * 0x1p-24 + 2 * (2 * u + u * u)
                               : 0;
      double worst = 0.0;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) {
          double gw = 0.0, gp = 0.0, aw = 0.0, ap = 0.0;
          for (int64_t l = 0; l <= i; l++) {
            gw += Rw[l * n + i] * Rw[l * n + j], gp += Rp[l * n + i] * Rp[l * n + j];
            aw += fabs(Rw[l * n + i] * Rw[l * n + j]), ap += fabs(Rp[l * n + i] * Rp[l * n + j]);
          }
          const double bound = 2.0 * gamma64((double)(n + s)) * (aw + ap) +
                               (gram + ydiff) * YY[i * n + j];
          worst = fmax(worst, fabs(gp - gw) / bound);
          cr_assert(fabs(gp - gw) <= bound,
                    "%s precision %d panel %ld: (R^T R)[%ld,%ld] %.17g vs %.17g (bound %.3g)",
                    kind_name(kind), q, (long)pw, (long)i, (long)j, gp, gw, bound);
        }
      fprintf(stderr, "%s precision %d panel %ld: worst |R_p^T R_p - R_w^T R_w| / bound = %.3g\n",
              kind_name(kind), q, (long)pw, worst);
    }
  }
  free(Y), free(Rw), free(Rp), free(YY);
  free_problem(&p);
}

Test(sketch, srht_panels_r_matches_whole) { check_panels(SGN_SKETCH_SRHT); }
Test(sketch, gaussian_panels_r_matches_whole) { check_panels(SGN_SKETCH_GAUSSIAN); }
Test(sketch, srft_panels_r_matches_whole) { check_panels(SGN_SKETCH_SRFT); }
Test(sketch, countsketch_panels_r_matches_whole) { check_panels(SGN_SKETCH_COUNTSKETCH); }

/* ---- the stop flag ---- */

/* Set before the call (backend.h set_stop): no sketch writes a row of Y, and the panels' R is
 * SGN_OP_STOPPED with R untouched at every precision; cleared, the panels' R is the one made
 * without a flag, bit for bit (nothing of the stopped call lingers). */
Test(sketch, a_set_stop_flag_ends_the_sketches_before_any_row) {
  const int64_t n = 300, d = 6, m = 200, s = 4 * n, panel = 512;
  problem p = make_problem(n, d, m, 32, 0);
  atomic_int stop = 1;
  float *Y = malloc(sizeof(float) * n * s);
  for (int kind = 0; kind < 4; kind++) {
    const size_t wb = sgn_sketch_work_bytes_cpu(p.dm, (sgn_sketch)kind, s);
    void *work = malloc(wb + 1);
    memset(Y, 0xff, sizeof(float) * n * s);
    int rc = 0;
    switch ((sgn_sketch)kind) {
    case SGN_SKETCH_SRHT: sgn_sketch_srht_cpu(p.dm, s, 3, p.X, p.M, work, Y, &stop); break;
    case SGN_SKETCH_GAUSSIAN: sgn_sketch_gaussian_cpu(p.dm, s, 3, p.X, p.M, work, Y, &stop); break;
    case SGN_SKETCH_SRFT: rc = sgn_sketch_srft_cpu(p.dm, s, 3, p.X, p.M, work, Y, &stop); break;
    case SGN_SKETCH_COUNTSKETCH:
      rc = sgn_sketch_countsketch_cpu(p.dm, s, 3, p.X, p.M, work, Y, &stop);
      break;
    }
    cr_expect_eq(rc, 0, "%s: a stop is no failure", kind_name((sgn_sketch)kind));
    const unsigned char *b = (const unsigned char *)Y;
    size_t written = 0;
    for (size_t e = 0; e < sizeof(float) * (size_t)(n * s); e++) written += b[e] != 0xff;
    cr_expect_eq(written, 0, "%s: %zu bytes of Y written after the stop",
                 kind_name((sgn_sketch)kind), written);
    free(work);
  }
  double *R = malloc(sizeof(double) * n * n), *R0 = malloc(sizeof(double) * n * n);
  for (int q = SGN_PRECISION_FP64; q <= SGN_PRECISION_BF16; q++) {
    const sgn_precision prec = (sgn_precision)q;
    const size_t wb = sgn_sketch_panels_work_bytes_cpu(p.dm, SGN_SKETCH_SRHT, s, panel, prec);
    void *work = malloc(wb);
    atomic_store(&stop, 1);
    memset(R, 0xff, sizeof(double) * n * n);
    cr_expect_eq(sgn_sketch_panels_r_cpu(p.dm, SGN_SKETCH_SRHT, s, 3, p.X, p.M, 1e-3, prec, panel,
                                         work, R, &stop),
                 SGN_OP_STOPPED, "precision %d", q);
    const unsigned char *b = (const unsigned char *)R;
    size_t written = 0;
    for (size_t e = 0; e < sizeof(double) * (size_t)(n * n); e++) written += b[e] != 0xff;
    cr_expect_eq(written, 0, "panels, precision %d: %zu bytes of R written after the stop", q,
                 written);
    cr_assert_eq(sgn_sketch_panels_r_cpu(p.dm, SGN_SKETCH_SRHT, s, 3, p.X, p.M, 1e-3, prec, panel,
                                         work, R0, NULL),
                 0);
    atomic_store(&stop, 0);
    cr_assert_eq(sgn_sketch_panels_r_cpu(p.dm, SGN_SKETCH_SRHT, s, 3, p.X, p.M, 1e-3, prec, panel,
                                         work, R, &stop),
                 0);
    cr_expect(memcmp(R, R0, sizeof(double) * n * n) == 0,
              "precision %d: R after a cleared flag differs", q);
    free(work);
  }
  free(R), free(R0), free(Y);
  free_problem(&p);
}
