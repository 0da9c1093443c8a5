/* test_linalg.c — the float64 factorizations by what they promise: R^T R = Y Y^T + lambda I for
 * the sketch's R (every shape class: s > n, s = n, s < n with damping, s over several DSYRK
 * panels), upper triangular with a positive diagonal like a QR's; Cholesky plus the
 * two triangular solves invert an SPD system, and indefinite input is reported, not factored.
 * The blocked Cholesky, run at small N with small blocks and bands, within Cholesky's backward
 * error, next to LAPACK's dpotrf, failing at LAPACK's column; the stop flag ends the
 * factorizations before they touch their output, and the banded update between its bands. */
#include <criterion/criterion.h>
#include <lapacke.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "error_bounds.h"
#include "linalg.h"
#include "precision.h"
#include "rng.h"

/* Tolerances:
 * TOL_RTR    R^T R vs Y Y^T + lambda I, max entry error over max |entry|: the float64 Gram's
 *            rounding plus Cholesky's backward error, ~ (s + n) eps_d ~ 1e-13 here; 1e-11
 *            leaves 100x.
 * TOL_SOLVE  ||x - x_true|| / ||x_true|| after Cholesky + rtr_solve on a system with
 *            cond ~ 1e3: cond eps_d ~ 2e-13; 1e-10 as the brief asks.
 * blocked Cholesky  backward error, any blocking (Higham, Accuracy and Stability, Thm 10.3 and
 *            its blocked form in 10.1.2): R^T R = G + E with |E| <= gamma64(N + 1) |R|^T |R|
 *            entry by entry, C_ROUND (error_bounds.h) on top, the test's own float64 sum of
 *            R^T R counted in the same gamma. Against dpotrf's R on G = 2 I + U / N (U
 *            symmetric, |U_ij| <= 1: cond(G) <= 3 by Gershgorin): both R are exact factors of
 *            G + E, ||E||_F <= gamma64(N + 1) || |R|^T |R| ||_F <= gamma64(N + 1) N ||G||_2,
 *            and the Cholesky factor moves by at most cond(G) ||E||_F / ||G||_2 ||R||_2 (Sun's
 *            bound, within a factor 1/sqrt 2), so the two within twice that, C_ROUND on top. */
#define TOL_RTR 1e-11
#define TOL_SOLVE 1e-10

static void fill_normal_f(float *x, int64_t count, uint64_t seed) {
  for (int64_t i = 0; i < count; i++)
    x[i] = (float)sgn_rng_normal(seed, SGN_STREAM_SYNTH_X, (uint64_t)i);
}

/* max |R^T R - (Y Y^T + lambda I)| / max |Y Y^T + lambda I|, everything in double */
static double rtr_error(int64_t n, int64_t s, const float *Y, double lambda, const double *R) {
  double maxerr = 0.0, maxval = 0.0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      double g = i == j ? lambda : 0.0, rr = 0.0;
      for (int64_t t = 0; t < s; t++) g += (double)Y[i * s + t] * Y[j * s + t];
      for (int64_t t = 0; t < n; t++) rr += R[t * n + i] * R[t * n + j];
      maxerr = fmax(maxerr, fabs(rr - g));
      maxval = fmax(maxval, fabs(g));
    }
  return maxerr / maxval;
}

static void check_r(int64_t n, int64_t s, double lambda, uint64_t seed) {
  float *Y = malloc(sizeof(float) * n * s);
  double *R = malloc(sizeof(double) * n * n);
  size_t wb = sgn_sketch_r_work_bytes_cpu(n, s, SGN_PRECISION_FP64);
  void *work = malloc(wb);
  fill_normal_f(Y, n * s, seed);
  for (int64_t i = 0; i < n * n; i++) R[i] = NAN; /* every entry must be written */
  int rc = sgn_sketch_r_cpu(n, s, Y, lambda, SGN_PRECISION_FP64, work, R, NULL);
  cr_assert_eq(rc, 0, "n %lld s %lld lambda %g: sketch_r returned %d", (long long)n, (long long)s,
               lambda, rc);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < i; j++)
      cr_assert_eq(R[i * n + j], 0.0, "R[%lld,%lld] below the diagonal is %g", (long long)i,
                   (long long)j, R[i * n + j]);
  for (int64_t i = 0; i < n; i++)
    cr_assert(R[i * n + i] > 0.0, "R[%lld,%lld] = %g is not positive", (long long)i, (long long)i,
              R[i * n + i]);
  double err = rtr_error(n, s, Y, lambda, R);
  cr_assert(err <= TOL_RTR, "n %lld s %lld lambda %g: R^T R off by %.3g", (long long)n,
            (long long)s, lambda, err);
  free(Y), free(R), free(work);
}

Test(linalg, sketch_r_tall_sketch) {
  check_r(50, 200, 0.0, 1);
  check_r(50, 200, 1e-3, 2);
  check_r(64, 256, 2.0, 3);
  check_r(30, 1100, 1e-3, 9); /* three panels of Y's columns: 512, 512, 76 */
}

Test(linalg, sketch_r_square_and_wide) {
  check_r(40, 40, 0.0, 4); /* s = n: square, still nonsingular */
  check_r(40, 40, 0.5, 5);
  check_r(40, 10, 0.5, 6); /* s < n: rank-deficient Y Y^T, damping makes it PD */
  check_r(1, 1, 0.0, 7);
}

/* A zero row of Y with no damping makes Y Y^T singular, and a NaN or an infinity in Y poisons
 * it: sketch_r says so, at every precision. */
Test(linalg, sketch_r_singular) {
  const int64_t n = 20, s = 60;
  float *Y = malloc(sizeof(float) * n * s);
  double *R = malloc(sizeof(double) * n * n);
  for (int p = SGN_PRECISION_FP64; p <= SGN_PRECISION_BF16; p++) {
    const sgn_precision prec = (sgn_precision)p;
    void *work = malloc(sgn_sketch_r_work_bytes_cpu(n, s, prec));
    fill_normal_f(Y, n * s, 8);
    memset(Y + 7 * s, 0, sizeof(float) * s);
    cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, 0.0, prec, work, R, NULL), 1, "precision %d", p);
    cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, 1e-2, prec, work, R, NULL), 0,
                 "precision %d: damping should cure the zero row", p);
    if (prec == SGN_PRECISION_FP64) cr_assert(rtr_error(n, s, Y, 1e-2, R) <= TOL_RTR);
    Y[3 * s + 11] = NAN;
    cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, 1e-2, prec, work, R, NULL), 1,
                 "precision %d: a NaN in Y not reported", p);
    Y[3 * s + 11] = INFINITY;
    cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, 1e-2, prec, work, R, NULL), 1,
                 "precision %d: an infinity in Y not reported", p);
    free(work);
  }
  free(Y), free(R);
}

/* SPD G = B B^T / c + 1e-3 I (cond ~ 1e3); x_true known, V = (G + lambda I) x_true. */
static void make_spd(int64_t N, double *G, uint64_t seed) {
  double *B = malloc(sizeof(double) * N * N);
  for (int64_t i = 0; i < N * N; i++) B[i] = sgn_rng_normal(seed, SGN_STREAM_SYNTH_X, (uint64_t)i);
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < N; j++) {
      double acc = 0.0;
      for (int64_t t = 0; t < N; t++) acc += B[i * N + t] * B[j * N + t];
      G[i * N + j] = acc / (double)(N * N) + (i == j ? 1e-3 : 0.0);
    }
  free(B);
}

Test(linalg, cholesky_solve) {
  const int64_t N = 120, k = 3;
  const double lambda = 1e-4;
  double *G = malloc(sizeof(double) * N * N), *G0 = malloc(sizeof(double) * N * N);
  double *x = malloc(sizeof(double) * N * k), *V = malloc(sizeof(double) * N * k);
  make_spd(N, G0, 11);
  memcpy(G, G0, sizeof(double) * N * N);
  for (int64_t i = 0; i < N * k; i++) x[i] = sgn_rng_normal(12, SGN_STREAM_SYNTH_X, (uint64_t)i);
  for (int64_t i = 0; i < N; i++)
    for (int64_t c = 0; c < k; c++) {
      double acc = lambda * x[i * k + c];
      for (int64_t j = 0; j < N; j++) acc += G0[i * N + j] * x[j * k + c];
      V[i * k + c] = acc;
    }
  cr_assert_eq(sgn_cholesky_cpu(N, G, lambda, NULL), 0);
  /* R upper, lower part zeroed, R^T R = G0 + lambda I */
  double maxerr = 0.0, maxval = 0.0;
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < N; j++) {
      if (j < i) cr_assert_eq(G[i * N + j], 0.0);
      double rr = 0.0, g = G0[i * N + j] + (i == j ? lambda : 0.0);
      for (int64_t t = 0; t < N; t++) rr += G[t * N + i] * G[t * N + j];
      maxerr = fmax(maxerr, fabs(rr - g));
      maxval = fmax(maxval, fabs(g));
    }
  cr_assert(maxerr / maxval <= TOL_RTR, "R^T R off by %.3g", maxerr / maxval);
  sgn_rtr_solve_cpu(N, k, G, V);
  double e2 = 0.0, x2 = 0.0;
  for (int64_t i = 0; i < N * k; i++) e2 += (V[i] - x[i]) * (V[i] - x[i]), x2 += x[i] * x[i];
  cr_assert(sqrt(e2 / x2) <= TOL_SOLVE, "solve error %.3g", sqrt(e2 / x2));
  free(G), free(G0), free(x), free(V);
}

/* Positive diagonal but a negative eigenvalue: dpotrf stops, cholesky returns info > 0. */
Test(linalg, cholesky_not_pd) {
  double G[9] = {1, 2, 0, 2, 1, 0, 0, 0, 1}; /* eigenvalues 3, -1, 1 */
  int info = sgn_cholesky_cpu(3, G, 0.0, NULL);
  cr_assert_gt(info, 0, "info %d", info);
  double H[9] = {1, 0, 0, 0, -1, 0, 0, 0, 1};
  cr_assert_eq(sgn_cholesky_cpu(3, H, 0.0, NULL), 2);
  double K[9] = {1, 0, 0, 0, -1, 0, 0, 0, 1}; /* damping 2 shifts it to PD */
  cr_assert_eq(sgn_cholesky_cpu(3, K, 2.0, NULL), 0);
  double Nn[4] = {NAN, 0, 0, 1};
  cr_assert_gt(sgn_cholesky_cpu(2, Nn, 0.0, NULL), 0, "NaN is not positive definite");
}

/* ---- the blocked Cholesky ---- */

/* Blockings of sgn_cholesky_blocked_cpu: (block, band flops, band min). The small ones cut a
 * few-hundred matrix into many blocks and bands; {0} is one dpotrf; the last is the default's. */
typedef struct blocking {
  int64_t block;
  double band_flops;
  int64_t band_min;
} blocking;
static const blocking blockings[] = {{0, 0, 0},    {1, 1e9, 1},    {16, 4e3, 4},
                                     {64, 2e5, 8}, {96, 1e9, 256}, {256, 2e9, 256}};
#define NBLOCKINGS (sizeof blockings / sizeof *blockings)

/* G (N, N) = 2 I + U / N with U symmetric uniform in [-1, 1]: cond(G) <= 3 */
static void dominant_spd(int64_t N, double *G, uint64_t seed) {
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = i; j < N; j++) {
      const double u = 2.0 * sgn_rng_uniform(seed, SGN_STREAM_SYNTH_X, (uint64_t)(i * N + j)) - 1.0;
      G[i * N + j] = G[j * N + i] = i == j ? 2.0 : u / (double)N;
    }
}

/* worst |R^T R - (G + lambda I)|_ij / (C_ROUND gamma64(N + 1) (|R|^T |R|)_ij) */
static double cholesky_backward_ratio(int64_t N, const double *G, double lambda, const double *R) {
  double worst = 0.0;
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < N; j++) {
      double rr = 0.0, arr = 0.0;
      for (int64_t t = 0; t <= (i < j ? i : j); t++) {
        rr += R[t * N + i] * R[t * N + j];
        arr += fabs(R[t * N + i] * R[t * N + j]);
      }
      const double err = fabs(rr - G[i * N + j] - (i == j ? lambda : 0.0));
      if (err == 0.0) continue;
      worst = fmax(worst, err / (C_ROUND * gamma64((double)N + 1) * arr));
    }
  return worst;
}

/* Every blocking: upper R with a positive diagonal and exact zeros below, within Cholesky's
 * backward error of G + lambda I (an ill-conditioned G of make_spd's and a dominant one), and
 * near dpotrf's R on the dominant one (the table). */
Test(linalg, blocked_cholesky_is_backward_stable) {
  const int64_t sizes[] = {1, 37, 200, 301};
  for (size_t t = 0; t < sizeof sizes / sizeof *sizes; t++) {
    const int64_t N = sizes[t];
    const size_t NN = (size_t)(N * N);
    double *G0 = malloc(sizeof(double) * NN), *D0 = malloc(sizeof(double) * NN);
    double *R = malloc(sizeof(double) * NN), *L = malloc(sizeof(double) * NN);
    make_spd(N, G0, 40 + (uint64_t)N);
    dominant_spd(N, D0, 50 + (uint64_t)N);
    /* dpotrf's factor of D0, upper R row-major */
    memcpy(L, D0, sizeof(double) * NN);
    cr_assert_eq(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)N, L, (lapack_int)N), 0);
    for (int64_t i = 0; i < N; i++)
      for (int64_t j = 0; j < i; j++) L[i * N + j] = 0.0;
    for (size_t b = 0; b < NBLOCKINGS; b++) {
      const blocking *bl = &blockings[b];
      for (int which = 0; which < 2; which++) {
        const double *G = which ? D0 : G0, lambda = which ? 0.0 : 1e-4;
        memcpy(R, G, sizeof(double) * NN);
        cr_assert_eq(
            sgn_cholesky_blocked_cpu(N, R, lambda, bl->block, bl->band_flops, bl->band_min, NULL),
            0, "N %lld blocking %zu: not factored", (long long)N, b);
        for (int64_t i = 0; i < N; i++) {
          cr_assert(R[i * N + i] > 0.0, "N %lld blocking %zu: R[%lld,%lld] = %g", (long long)N, b,
                    (long long)i, (long long)i, R[i * N + i]);
          for (int64_t j = 0; j < i; j++)
            cr_assert_eq(R[i * N + j], 0.0, "N %lld blocking %zu: R[%lld,%lld] below", (long long)N,
                         b, (long long)i, (long long)j);
        }
        const double ratio = cholesky_backward_ratio(N, G, lambda, R);
        cr_expect(ratio <= 1.0, "N %lld blocking %zu %s G: R^T R off by %.3g of the bound",
                  (long long)N, b, which ? "dominant" : "ill-conditioned", ratio);
        if (!which) continue;
        /* ||R - R_dpotrf||_F <= 2 C_ROUND cond gamma64(N + 1) N ||R||_2, cond <= 3,
         * ||R||_2 = sqrt(||G||_2) <= sqrt(3) */
        double diff2 = 0.0;
        for (size_t e = 0; e < NN; e++) diff2 += (R[e] - L[e]) * (R[e] - L[e]);
        const double bound = 2.0 * C_ROUND * 3.0 * gamma64((double)N + 1) * (double)N * sqrt(3.0);
        cr_expect(sqrt(diff2) <= bound, "N %lld blocking %zu: ||R - R_dpotrf|| %.3g, bound %.3g",
                  (long long)N, b, sqrt(diff2), bound);
      }
    }
    free(G0), free(D0), free(R), free(L);
  }
}

/* A matrix whose leading minors are positive definite up to order p and not at p + 1 (G_pp set
 * to -1 or NaN in an SPD matrix): every blocking returns p + 1, the column LAPACK's dpotrf names,
 * wherever p falls among the blocks (first, last of a block, first of the next, last). */
Test(linalg, blocked_cholesky_fails_at_lapacks_column) {
  const int64_t N = 100;
  const int64_t cols[] = {0, 15, 16, 63, 64, 99};
  double *G = malloc(sizeof(double) * N * N), *A = malloc(sizeof(double) * N * N);
  make_spd(N, G, 60);
  for (size_t t = 0; t < sizeof cols / sizeof *cols; t++)
    for (int nan = 0; nan < 2; nan++) {
      const int64_t p = cols[t];
      memcpy(A, G, sizeof(double) * N * N);
      A[p * N + p] = nan ? NAN : -1.0;
      const lapack_int want = nan ? (lapack_int)(p + 1)
                                  : LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)N, A,
                                                   (lapack_int)N);
      cr_assert_eq(want, p + 1, "LAPACK names column %d for p = %lld", (int)want, (long long)p);
      for (size_t b = 0; b < NBLOCKINGS; b++) {
        const blocking *bl = &blockings[b];
        memcpy(A, G, sizeof(double) * N * N);
        A[p * N + p] = nan ? NAN : -1.0;
        const int got = sgn_cholesky_blocked_cpu(N, A, 0.0, bl->block, bl->band_flops, bl->band_min,
                                                 NULL);
        cr_expect_eq(got, (int)want, "p %lld %s blocking %zu: info %d, LAPACK %d", (long long)p,
                     nan ? "NaN" : "-1", b, got, (int)want);
      }
    }
  free(G), free(A);
}

/* ---- the stop flag ---- */

/* Set before the call: the Cholesky, the sketch's R (at every precision) and R^-1 return
 * SGN_OP_STOPPED with their output untouched (not even the damping added), the sketch Gram too;
 * cleared, the same calls do their work. */
Test(linalg, a_set_stop_flag_ends_the_factorizations_before_they_start) {
  const int64_t N = 300, s = 600;
  atomic_int stop = 1;
  double *G = malloc(sizeof(double) * N * N), *A = malloc(sizeof(double) * N * N);
  float *Y = malloc(sizeof(float) * N * s);
  make_spd(N, G, 70);
  fill_normal_f(Y, N * s, 71);
  memcpy(A, G, sizeof(double) * N * N);
  cr_expect_eq(sgn_cholesky_cpu(N, A, 1e-3, &stop), SGN_OP_STOPPED);
  cr_expect(memcmp(A, G, sizeof(double) * N * N) == 0, "a stopped Cholesky wrote G");
  for (int p = SGN_PRECISION_FP64; p <= SGN_PRECISION_BF16; p++) {
    void *work = malloc(sgn_sketch_r_work_bytes_cpu(N, s, (sgn_precision)p));
    cr_expect_eq(sgn_sketch_r_cpu(N, s, Y, 1e-3, (sgn_precision)p, work, A, &stop), SGN_OP_STOPPED,
                 "precision %d", p);
    cr_expect(memcmp(A, G, sizeof(double) * N * N) == 0, "precision %d: a stopped sketch_r wrote R",
              p);
    cr_expect_eq(sgn_sketch_gram_add_cpu(N, s, Y, s, (sgn_precision)p, 1, work, A, &stop),
                 SGN_OP_STOPPED, "precision %d", p);
    cr_expect(memcmp(A, G, sizeof(double) * N * N) == 0,
              "precision %d: a stopped sketch Gram wrote R", p);
    free(work);
  }
  cr_expect_eq(sgn_r_inverse_cpu(N, A, &stop), SGN_OP_STOPPED);
  cr_expect(memcmp(A, G, sizeof(double) * N * N) == 0, "a stopped r_inverse wrote R");
  atomic_store(&stop, 0);
  cr_expect_eq(sgn_cholesky_cpu(N, A, 1e-3, &stop), 0);
  cr_expect_eq(sgn_r_inverse_cpu(N, A, &stop), 0);
  for (int p = SGN_PRECISION_FP64; p <= SGN_PRECISION_BF16; p++) {
    void *work = malloc(sgn_sketch_r_work_bytes_cpu(N, s, (sgn_precision)p));
    cr_expect_eq(sgn_sketch_r_cpu(N, s, Y, 1e-3, (sgn_precision)p, work, A, &stop), 0,
                 "precision %d", p);
    free(work);
  }
  free(G), free(A), free(Y);
}

/* The banded update reads the flag between bands: set before the call, the first band (the
 * leading columns) is updated exactly as without the flag, then SGN_OP_STOPPED and every later
 * column untouched. Both operand layouts (the Cholesky's and the sketch Gram's). */
Test(linalg, a_banded_update_stops_between_bands) {
  const int64_t n = 120, k = 24, band_min = 16;
  const double band_flops = 2.0 * (double)n * (double)k * (double)band_min; /* first band: 16 */
  double *A = malloc(sizeof(double) * n * k), *C0 = malloc(sizeof(double) * n * n);
  double *C1 = malloc(sizeof(double) * n * n), *C2 = malloc(sizeof(double) * n * n);
  for (int64_t e = 0; e < n * k; e++) A[e] = sgn_rng_normal(80, SGN_STREAM_SYNTH_X, (uint64_t)e);
  for (int64_t e = 0; e < n * n; e++) C0[e] = sgn_rng_normal(81, SGN_STREAM_SYNTH_X, (uint64_t)e);
  for (int trans = 0; trans < 2; trans++) {
    const int64_t lda = trans ? k : n; /* A (n, k) or (k, n) column-major */
    atomic_int stop = 0;
    memcpy(C1, C0, sizeof(double) * n * n);
    memcpy(C2, C0, sizeof(double) * n * n);
    cr_assert_eq(
        sgn_syrk_lower_cpu(trans, n, k, -1.0, A, lda, 1.0, C1, n, band_flops, band_min, &stop), 0);
    atomic_store(&stop, 1);
    cr_assert_eq(
        sgn_syrk_lower_cpu(trans, n, k, -1.0, A, lda, 1.0, C2, n, band_flops, band_min, &stop),
        SGN_OP_STOPPED, "trans %d", trans);
    /* column-major: column c is C[c n .. c n + n) */
    cr_expect(memcmp(C2, C1, sizeof(double) * (size_t)(band_min * n)) == 0,
              "trans %d: the first band differs from the full update's", trans);
    cr_expect(memcmp(C2 + band_min * n, C0 + band_min * n,
                     sizeof(double) * (size_t)((n - band_min) * n)) == 0,
              "trans %d: columns past the first band were written", trans);
    /* the full banded update against one DSYRK: the same sums, within gamma64(k) |A| |A|^T */
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j <= i; j++) {
        double acc = C0[j * n + i], aacc = fabs(C0[j * n + i]);
        for (int64_t l = 0; l < k; l++) {
          const double ai = trans ? A[i * k + l] : A[l * n + i],
                       aj = trans ? A[j * k + l] : A[l * n + j];
          acc -= ai * aj;
          aacc += fabs(ai * aj);
        }
        worst = fmax(worst, fabs(C1[j * n + i] - acc) / (C_ROUND * gamma64((double)k + 1) * aacc));
      }
    cr_expect(worst <= 1.0, "trans %d: banded update off by %.3g of the bound", trans, worst);
  }
  free(A), free(C0), free(C1), free(C2);
}

/* ---- the sketch Gram's precisions (precision.h) ---- */

/* Round to nearest-even at 10 (tf32) and 7 (bf16) mantissa bits: the result keeps no dropped
 * bit, is within the unit roundoff, ties go to the even neighbour, overflow goes to infinity,
 * infinities and NaNs stay; fp64 and fp32 leave x alone. */
Test(precision, rounding_to_nearest_even) {
  const sgn_precision tf = SGN_PRECISION_TF32, bf = SGN_PRECISION_BF16;
  cr_assert_eq(sgn_round_precision(1.0f + 0x1p-11f, tf), 1.0f);               /* tie: to even */
  cr_assert_eq(sgn_round_precision(1.0f + 3 * 0x1p-11f, tf), 1.0f + 0x1p-9f); /* tie: up, even */
  cr_assert_eq(sgn_round_precision(1.0f + 0x1p-11f + 0x1p-20f, tf), 1.0f + 0x1p-10f);
  cr_assert_eq(sgn_round_precision(-(1.0f + 0x1p-8f), bf), -1.0f);
  cr_assert_eq(sgn_round_precision(1.0f + 3 * 0x1p-8f, bf), 1.0f + 0x1p-6f);
  cr_assert_eq(sgn_round_precision(1.0f + 0x1p-8f + 0x1p-20f, bf), 1.0f + 0x1p-7f);
  cr_assert_eq(sgn_round_precision(0x1.fffffep127f, tf), INFINITY); /* past TF32's largest */
  cr_assert_eq(sgn_round_precision(-0x1.fffffep127f, bf), -INFINITY);
  cr_assert_eq(sgn_round_precision(INFINITY, bf), INFINITY);
  cr_assert(isnan(sgn_round_precision(NAN, tf)));
  float tiny;
  const uint32_t payload = 0x7f800001u; /* a NaN whose payload lies in the dropped bits */
  memcpy(&tiny, &payload, sizeof tiny);
  cr_assert(isnan(sgn_round_precision(tiny, bf)), "a NaN must stay one in the kept bits");
  cr_assert_eq(sgn_round_precision(0.1f, SGN_PRECISION_FP32), 0.1f);
  cr_assert_eq(sgn_round_precision(0.1f, SGN_PRECISION_FP64), 0.1f);
  for (int p = SGN_PRECISION_TF32; p <= SGN_PRECISION_BF16; p++) {
    const int drop = sgn_precision_dropped_bits((sgn_precision)p);
    const double u = sgn_precision_unit_roundoff((sgn_precision)p);
    for (uint64_t i = 0; i < 100000; i++) {
      const float x = (float)(sgn_rng_normal(3, SGN_STREAM_SYNTH_X, i) *
                              pow(2.0, (double)(i % 200) - 100.0));
      const float r = sgn_round_precision(x, (sgn_precision)p);
      uint32_t b;
      memcpy(&b, &r, sizeof b);
      cr_assert_eq(b & ((1u << drop) - 1u), 0u, "precision %d: %a keeps dropped bits", p, r);
      cr_assert_leq(fabs((double)r - x), u * fabs((double)x), "precision %d: %a -> %a", p, x, r);
    }
  }
}

/* |Y| |Y|^T (n, n) for Y (n, s) */
static double *abs_yyt(int64_t n, int64_t s, const float *Y) {
  double *A = calloc((size_t)(n * n), sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i; j < n; j++) {
      double a = 0.0;
      for (int64_t t = 0; t < s; t++) a += fabs((double)Y[i * s + t] * Y[j * s + t]);
      A[i * n + j] = A[j * n + i] = a;
    }
  return A;
}

/* sgn_sketch_gram_add_cpu at precision p into a fresh (n, n) (upper triangle) */
static double *gram_at(int64_t n, int64_t s, const float *Y, sgn_precision p) {
  double *G = malloc(sizeof(double) * (size_t)(n * n));
  void *work = malloc(sgn_sketch_r_work_bytes_cpu(n, s, p));
  for (int64_t e = 0; e < n * n; e++) G[e] = NAN;
  cr_assert_eq(sgn_sketch_gram_add_cpu(n, s, Y, s, p, 1, work, G, NULL), 0);
  free(work);
  return G;
}

/* Every precision's Gram within sketch_gram_bound (error_bounds.h) of Y Y^T entry by entry,
 * against |Y| |Y|^T: over several float32 panels (s > SGN_GRAM_F32_COLS, a short last one) and
 * tiles of rows (n > 512, a short last one). The bound is not empty: each reduced precision's
 * worst error is larger than the one before it (fp32 < tf32 < bf16), so each rounds as it
 * claims. Measured (ratios of the bound) in the log. */
Test(precision, gram_within_the_bound_of_each_precision, .timeout = 120) {
  const struct { int64_t n, s; } shapes[] = {{37, 2 * SGN_GRAM_F32_COLS + 300}, {700, 96}, {1, 5}};
  for (size_t q = 0; q < sizeof shapes / sizeof *shapes; q++) {
    const int64_t n = shapes[q].n, s = shapes[q].s;
    float *Y = malloc(sizeof(float) * (size_t)(n * s));
    fill_normal_f(Y, n * s, 40 + q);
    double *exact = gram_at(n, s, Y, SGN_PRECISION_FP64), *A = abs_yyt(n, s, Y);
    double prev = 0.0;
    for (int p = SGN_PRECISION_FP64; p <= SGN_PRECISION_BF16; p++) {
      double *G = gram_at(n, s, Y, (sgn_precision)p);
      const double bound = sketch_gram_bound((sgn_precision)p, s);
      double worst = 0.0, err = 0.0;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = i; j < n; j++) {
          double yy = 0.0; /* the exact Y Y^T entry, to float64 rounding */
          for (int64_t t = 0; t < s; t++) yy += (double)Y[i * s + t] * Y[j * s + t];
          const double e = fabs(G[i * n + j] - yy); /* yy's own error: gamma64(s) A, twice */
          cr_assert(e <= bound * A[i * n + j] + 2 * gamma64((double)s) * A[i * n + j],
                    "n=%ld s=%ld precision %d: G[%ld,%ld] = %.17g, Y Y^T %.17g, bound %.3g",
                    (long)n, (long)s, p, (long)i, (long)j, G[i * n + j], yy, bound * A[i * n + j]);
          worst = fmax(worst, e / (bound * A[i * n + j]));
          err = fmax(err, fabs(G[i * n + j] - exact[i * n + j]) / A[i * n + j]);
        }
      cr_log_info(
          "n=%ld s=%ld %s: worst error %.3g of the bound; max |G - G_fp64| / |Y||Y|^T "
          "%.3g",
          (long)n, (long)s,
          p == 0   ? "fp64"
          : p == 1 ? "fp32"
          : p == 2 ? "tf32"
                   : "bf16",
          worst, err);
      if (p > SGN_PRECISION_FP32 && n > 1)
        cr_assert_gt(err, 4 * prev, "n=%ld s=%ld: precision %d no coarser than the one before",
                     (long)n, (long)s, p);
      if (p >= SGN_PRECISION_FP32) prev = err;
      free(G);
    }
    free(Y), free(exact), free(A);
  }
}

/* tf32 and bf16 are fp32 on Y rounded first, and nothing else: their Gram equals, bit for bit,
 * fp32's Gram of the rounded Y (one panel, so both run the same SSYRK / SGEMM calls). */
Test(precision, rounding_happens_first_and_only_there) {
  const int64_t n = 600, s = 300;
  float *Y = malloc(sizeof(float) * (size_t)(n * s)), *Yr = malloc(sizeof(float) * (size_t)(n * s));
  fill_normal_f(Y, n * s, 50);
  for (int p = SGN_PRECISION_TF32; p <= SGN_PRECISION_BF16; p++) {
    for (int64_t e = 0; e < n * s; e++) Yr[e] = sgn_round_precision(Y[e], (sgn_precision)p);
    double *G = gram_at(n, s, Y, (sgn_precision)p), *Gr = gram_at(n, s, Yr, SGN_PRECISION_FP32);
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = i; j < n; j++)
        cr_assert_eq(G[i * n + j], Gr[i * n + j], "precision %d: G[%ld,%ld]", p, (long)i, (long)j);
    free(G), free(Gr);
  }
  free(Y), free(Yr);
}

/* Each precision's R against fp64's, through the Grams they factor: with B_p the Gram bound
 * (sketch_gram_bound) and Cholesky's backward error gamma64(n + 1) |R|^T |R| (Higham, thm 10.3)
 * on each side,
 *   |R_p^T R_p - R_64^T R_64| <= (B_p + B_64) |Y| |Y|^T
 *                                + C_ROUND gamma64(n + 1) (|R_p|^T |R_p| + |R_64|^T |R_64|),
 * a bound from the norms alone (||Y||_F^2 bounds the first term's Frobenius norm), whatever
 * cond(Y Y^T). Y has s = 4n (the default ratio) over two float32 panels; lambda 1e-6 of the
 * mean diagonal, as the automatic damping. */
Test(precision, r_of_each_precision_against_fp64, .timeout = 120) {
  const int64_t n = 150, s = SGN_GRAM_F32_COLS + 600;
  float *Y = malloc(sizeof(float) * (size_t)(n * s));
  fill_normal_f(Y, n * s, 60);
  double *A = abs_yyt(n, s, Y), mean = 0.0;
  for (int64_t i = 0; i < n; i++) mean += A[i * n + i] / (double)n;
  const double lambda = 1e-6 * mean;
  double *R64 = malloc(sizeof(double) * (size_t)(n * n)),
         *R = malloc(sizeof(double) * (size_t)(n * n));
  void *w64 = malloc(sgn_sketch_r_work_bytes_cpu(n, s, SGN_PRECISION_FP64));
  cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, lambda, SGN_PRECISION_FP64, w64, R64, NULL), 0);
  for (int p = SGN_PRECISION_FP32; p <= SGN_PRECISION_BF16; p++) {
    void *work = malloc(sgn_sketch_r_work_bytes_cpu(n, s, (sgn_precision)p));
    cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, lambda, (sgn_precision)p, work, R, NULL), 0,
                 "precision %d", p);
    const double bg = sketch_gram_bound((sgn_precision)p, s) +
                      sketch_gram_bound(SGN_PRECISION_FP64, s);
    double worst = 0.0;
    for (int64_t i = 0; i < n; i++) {
      cr_assert_gt(R[i * n + i], 0.0);
      for (int64_t j = i; j < n; j++) {
        double g = 0.0, g64 = 0.0, a = 0.0, a64 = 0.0;
        for (int64_t l = 0; l <= i; l++) {
          g += R[l * n + i] * R[l * n + j], g64 += R64[l * n + i] * R64[l * n + j];
          a += fabs(R[l * n + i] * R[l * n + j]), a64 += fabs(R64[l * n + i] * R64[l * n + j]);
        }
        const double bound = bg * A[i * n + j] + C_ROUND * gamma64((double)n + 1) * (a + a64);
        cr_assert(fabs(g - g64) <= bound, "precision %d: (R^T R)[%ld,%ld] %.17g vs %.17g (%.3g)", p,
                  (long)i, (long)j, g, g64, bound);
        worst = fmax(worst, fabs(g - g64) / bound);
      }
    }
    cr_log_info("precision %d: |R_p^T R_p - R_64^T R_64| at %.3g of the bound", p, worst);
    free(work);
  }
  free(Y), free(A), free(R64), free(R), free(w64);
}
