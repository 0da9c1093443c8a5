/* test_linalg.c — the float64 factorizations by what they promise: R^T R = Y Y^T + lambda I for
 * the sketch's R (every shape class: s > n, s = n, s < n with damping, s over several DSYRK
 * panels), upper triangular with a positive diagonal like a QR's; Cholesky plus the
 * two triangular solves invert an SPD system, and indefinite input is reported, not factored. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "rng.h"

/* Tolerances:
 * TOL_RTR    R^T R vs Y Y^T + lambda I, max entry error over max |entry|: the float64 Gram's
 *            rounding plus Cholesky's backward error, ~ (s + n) eps_d ~ 1e-13 here; 1e-11
 *            leaves 100x.
 * TOL_SOLVE  ||x - x_true|| / ||x_true|| after Cholesky + rtr_solve on a system with
 *            cond ~ 1e3: cond eps_d ~ 2e-13; 1e-10 as the brief asks. */
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
  size_t wb = sgn_sketch_r_work_bytes_cpu(n, s);
  void *work = malloc(wb);
  fill_normal_f(Y, n * s, seed);
  for (int64_t i = 0; i < n * n; i++) R[i] = NAN; /* every entry must be written */
  int rc = sgn_sketch_r_cpu(n, s, Y, lambda, work, R);
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

/* A zero row of Y with no damping makes Y Y^T singular, and a NaN in Y poisons it: sketch_r
 * says so. */
Test(linalg, sketch_r_singular) {
  const int64_t n = 20, s = 60;
  float *Y = malloc(sizeof(float) * n * s);
  double *R = malloc(sizeof(double) * n * n);
  void *work = malloc(sgn_sketch_r_work_bytes_cpu(n, s));
  fill_normal_f(Y, n * s, 8);
  memset(Y + 7 * s, 0, sizeof(float) * s);
  cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, 0.0, work, R), 1);
  cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, 1e-2, work, R), 0, "damping should cure the zero row");
  cr_assert(rtr_error(n, s, Y, 1e-2, R) <= TOL_RTR);
  Y[3 * s + 11] = NAN;
  cr_assert_eq(sgn_sketch_r_cpu(n, s, Y, 1e-2, work, R), 1, "a NaN in Y not reported");
  free(Y), free(R), free(work);
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
  cr_assert_eq(sgn_cholesky_cpu(N, G, lambda), 0);
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
  int info = sgn_cholesky_cpu(3, G, 0.0);
  cr_assert_gt(info, 0, "info %d", info);
  double H[9] = {1, 0, 0, 0, -1, 0, 0, 0, 1};
  cr_assert_eq(sgn_cholesky_cpu(3, H, 0.0), 2);
  double K[9] = {1, 0, 0, 0, -1, 0, 0, 0, 1}; /* damping 2 shifts it to PD */
  cr_assert_eq(sgn_cholesky_cpu(3, K, 2.0), 0);
  double Nn[4] = {NAN, 0, 0, 1};
  cr_assert_gt(sgn_cholesky_cpu(2, Nn, 0.0), 0, "NaN is not positive definite");
}
