/* test_sketch.c — the two sketches of J held to what a correct sketch does: unbiased
 * (the seed average of Y Y^T converges to G at the 1/sqrt(seeds) rate), a preconditioner on the
 * Marchenko-Pastur curve (cond(R^-T G R^-1) < 30 at s = 4n, hopeless at s = n), exact agreement
 * with the sketch matrix formed from the rng.h draws (what the CUDA twin must reproduce),
 * reproducible per seed, and never touching memory past sketch_work_bytes. */
#include <cblas.h>
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "rng.h"
#include "sketch.h"

/* Tolerances and thresholds:
 * COND_4N      cond(R^-T G R^-1) at s = 4n: the Gaussian (Marchenko-Pastur) value is
 *              ((1 + 1/2) / (1 - 1/2))^2 = 9; the design allows 30 for sketch-to-sketch spread.
 * COND_N_MIN   at s = n the preconditioner is near-singular (design: 1e6..1e11); 1e3 is a
 *              floor that a working sketch at s = n cannot mistakenly pass and s = 4n cannot reach.
 * MEAN_STEP    error of the seed average after 4x more seeds: 1/sqrt(4) = 0.5 for an unbiased
 *              sketch (measured 0.43-0.60); 0.75 allows the spread of a finite average.
 * MEAN_RATE    after 64x more seeds: 1/8 expected (measured 0.10-0.12); a biased sketch stalls
 *              at its bias, a wrong scale of 10% already floors the error near 0.1.
 * MEAN_FINAL   relative Frobenius error of the 64-seed average (measured 0.058-0.069).
 * TOL_ENTRY    entry of Y vs the explicitly formed sketch, relative to the float bound
 *              sum |terms|: float rounding over <= 8192-term sums and log2(8192) butterflies. */
#define COND_4N 30.0
#define COND_N_MIN 1e3
#define MEAN_STEP 0.75
#define MEAN_RATE 0.2
#define MEAN_FINAL 0.1
#define TOL_ENTRY 1e-5

/* ---- problem and helpers ---- */

typedef struct problem {
  sgn_dims dm;
  float *X, *Z; /* (n, d) unit rows, (n, m) = X W^T with W (m, d) standard normal */
  double *G;    /* (n, n) exact (X X^T) o (M M^T) / m */
} problem;

static problem make_problem(int64_t n, int64_t d, int64_t m, uint64_t seed, int with_gram) {
  problem p = {.dm = {.n = n, .d = d, .m = m, .k = 1}};
  p.X = malloc(sizeof(float) * n * d);
  p.Z = malloc(sizeof(float) * n * m);
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

static void free_problem(problem *p) { free(p->X), free(p->Z), free(p->G); }

/* Y = sketch(kind) with a work buffer of exactly sketch_work_bytes, filled with junk first
 * (the result must not depend on it) and followed by a guard that must survive. */
#define GUARD 256
static void run_sketch(sgn_sketch kind, const problem *p, int64_t s, uint64_t seed,
                       unsigned char junk, float *Y) {
  size_t wb = sgn_sketch_work_bytes_cpu(p->dm, kind, s);
  unsigned char *work = malloc(wb + GUARD);
  memset(work, junk, wb);
  memset(work + wb, 0xA5, GUARD);
  if (kind == SGN_SKETCH_SRHT)
    sgn_sketch_srht_cpu(p->dm, s, seed, p->X, p->Z, work, Y);
  else
    sgn_sketch_gaussian_cpu(p->dm, s, seed, p->X, p->Z, work, Y);
  for (size_t b = 0; b < GUARD; b++)
    cr_assert_eq(work[wb + b], 0xA5, "sketch wrote past its %zu work bytes (at +%zu)", wb, b);
  free(work);
}

static const char *kind_name(sgn_sketch kind) {
  return kind == SGN_SKETCH_SRHT ? "srht" : "gaussian";
}

/* Eigenvalue ratio of the symmetric C (n, n) (destroyed); INFINITY if not positive. */
static double sym_cond(int64_t n, double *C) {
  double *w = malloc(sizeof(double) * n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < i; j++) C[i * n + j] = C[j * n + i] = 0.5 * (C[i * n + j] + C[j * n + i]);
  lapack_int info = LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'N', 'U', (lapack_int)n, C, (lapack_int)n, w);
  cr_assert_eq(info, 0, "dsyev info %d", (int)info);
  double cond = w[0] > 0.0 ? w[n - 1] / w[0] : INFINITY;
  free(w);
  return cond;
}

/* cond(R^-T G R^-1) with R^T R = Y Y^T from sgn_qr_r_cpu (lambda = 0). */
static double precond_cond(int64_t n, int64_t s, const float *Y, const double *G) {
  double *R = malloc(sizeof(double) * n * n), *C = malloc(sizeof(double) * n * n);
  void *work = malloc(sgn_qr_work_bytes_cpu(n, s));
  double cond = INFINITY;
  if (sgn_qr_r_cpu(n, s, Y, 0.0, work, R) == 0) {
    memcpy(C, G, sizeof(double) * n * n);
    /* C <- G R^-1, then C <- R^-T C */
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, (int)n,
                (int)n, 1.0, R, (int)n, C, (int)n);
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, (int)n, (int)n,
                1.0, R, (int)n, C, (int)n);
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

/* ---- preconditioner quality ---- */

/* n = 256, d = 16, m = 512: cond at s = n, 2n, 4n, 8n must follow the Marchenko-Pastur curve
 * (9 at 4n, 4.4 at 8n) and s = n must fail, so this test can tell a good sketch from a bad one. */
static void check_condition(sgn_sketch kind) {
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
  fprintf(stderr, "%s: cond(G) = %.3g; cond(R^-T G R^-1) at s = n, 2n, 4n, 8n: "
          "%.3g %.3g %.3g %.3g\n", kind_name(kind), condG, cond[0], cond[1], cond[2], cond[3]);
  cr_assert(cond[2] < COND_4N, "%s: cond %.3g at s = 4n", kind_name(kind), cond[2]);
  cr_assert(cond[3] < cond[2] && cond[2] < cond[1] && cond[1] < cond[0],
            "%s: more rows must precondition better", kind_name(kind));
  cr_assert(cond[0] > COND_N_MIN, "%s: s = n should be near-singular, cond %.3g",
            kind_name(kind), cond[0]);
  free(Gc);
  free_problem(&p);
}

Test(sketch, srht_condition_number) { check_condition(SGN_SKETCH_SRHT); }
Test(sketch, gaussian_condition_number) { check_condition(SGN_SKETCH_GAUSSIAN); }

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
