/* test_hadamard.c — the fast Walsh-Hadamard transform against its definition: the naive product
 * with H[i][j] = (-1)^popcount(i & j) / sqrt(len) at every length 1..2^12, then orthonormality,
 * many rows at once, and the Sylvester recursion for lengths past the cache block. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hadamard.h"
#include "rng.h"

/* Tolerances, relative to ||x||_2 of the row:
 * TOL_FWHT  float butterflies: each of log2(len) passes adds ~eps_f (6e-8) relative error in
 *           norm; 2e-7 log2(len) + 1e-7 is ~3x that bound.
 * TOL_TWICE H H x = x after two transforms: twice TOL_FWHT. */
#define TOL_FWHT(len) (1e-7 + 2e-7 * log2((double)(len)))
#define TOL_TWICE(len) (2.0 * TOL_FWHT(len))

static void fill_normal(float *x, int64_t count, uint64_t seed) {
  for (int64_t i = 0; i < count; i++)
    x[i] = (float)sgn_rng_normal(seed, SGN_STREAM_SYNTH_X, (uint64_t)i);
}

static double norm2(const float *x, int64_t len) {
  double s = 0.0;
  for (int64_t i = 0; i < len; i++) s += (double)x[i] * x[i];
  return sqrt(s);
}

/* ||a - b||_2 with a float, b double */
static double dist_fd(const float *a, const double *b, int64_t len) {
  double s = 0.0;
  for (int64_t i = 0; i < len; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return sqrt(s);
}

static double dist_ff(const float *a, const float *b, int64_t len) {
  double s = 0.0;
  for (int64_t i = 0; i < len; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
  return sqrt(s);
}

/* out = H x in double, straight from the definition */
static void naive_hadamard(const float *x, int64_t len, double *out) {
  double scale = 1.0 / sqrt((double)len);
  for (int64_t i = 0; i < len; i++) {
    double acc = 0.0;
    for (int64_t j = 0; j < len; j++)
      acc += (__builtin_popcountll((unsigned long long)(i & j)) & 1) ? -(double)x[j] : (double)x[j];
    out[i] = acc * scale;
  }
}

Test(hadamard, next_pow2) {
  cr_assert_eq(sgn_next_pow2(1), 1);
  cr_assert_eq(sgn_next_pow2(2), 2);
  cr_assert_eq(sgn_next_pow2(3), 4);
  cr_assert_eq(sgn_next_pow2(5), 8);
  cr_assert_eq(sgn_next_pow2(784), 1024);
  cr_assert_eq(sgn_next_pow2(1023), 1024);
  cr_assert_eq(sgn_next_pow2(1024), 1024);
  cr_assert_eq(sgn_next_pow2(1025), 2048);
  cr_assert_eq(sgn_next_pow2(65536), 65536);
  cr_assert_eq(sgn_next_pow2(((int64_t)1 << 40) + 1), (int64_t)1 << 41);
  cr_assert_eq(sgn_next_pow2((int64_t)1 << 62), (int64_t)1 << 62);
}

/* Every length 1..2^12, three rows transformed in one call, each against the naive product. */
Test(hadamard, matches_definition_every_length) {
  const int64_t rows = 3;
  for (int64_t len = 1; len <= 4096; len <<= 1) {
    float *x = malloc(sizeof(float) * rows * len), *x0 = malloc(sizeof(float) * rows * len);
    double *want = malloc(sizeof(double) * len);
    fill_normal(x0, rows * len, (uint64_t)len);
    memcpy(x, x0, sizeof(float) * rows * len);
    sgn_hadamard_cpu(x, rows, len);
    for (int64_t r = 0; r < rows; r++) {
      naive_hadamard(x0 + r * len, len, want);
      double err = dist_fd(x + r * len, want, len) / norm2(x0 + r * len, len);
      cr_assert(err <= TOL_FWHT(len), "len %lld row %lld: relative error %.3g > %.3g",
                (long long)len, (long long)r, err, TOL_FWHT(len));
    }
    free(x), free(x0), free(want);
  }
}

/* H is orthonormal and symmetric: ||H x|| = ||x|| and H H x = x, at lengths up to 2^20. */
Test(hadamard, orthonormal_and_involution) {
  for (int64_t len = 1; len <= ((int64_t)1 << 20); len <<= 1) {
    float *x = malloc(sizeof(float) * len), *x0 = malloc(sizeof(float) * len);
    fill_normal(x0, len, 100 + (uint64_t)len);
    memcpy(x, x0, sizeof(float) * len);
    double n0 = norm2(x0, len);
    sgn_hadamard_cpu(x, 1, len);
    double rel = fabs(norm2(x, len) - n0) / n0;
    cr_assert(rel <= TOL_FWHT(len), "len %lld: norm changed by %.3g", (long long)len, rel);
    sgn_hadamard_cpu(x, 1, len);
    double err = dist_ff(x, x0, len) / n0;
    cr_assert(err <= TOL_TWICE(len), "len %lld: H H x differs from x by %.3g", (long long)len, err);
    free(x), free(x0);
  }
}

/* Sylvester: H_2L [a; b] = [H_L a + H_L b; H_L a - H_L b] / sqrt 2. Checks the long-stride
 * passes (past the cache block) against the short ones, up to 2^20. */
Test(hadamard, sylvester_recursion_long_rows) {
  for (int64_t len = 2; len <= ((int64_t)1 << 20); len <<= 1) {
    int64_t h = len / 2;
    float *x = malloc(sizeof(float) * len), *halves = malloc(sizeof(float) * len);
    double *want = malloc(sizeof(double) * len);
    fill_normal(x, len, 200 + (uint64_t)len);
    memcpy(halves, x, sizeof(float) * len);
    double n0 = norm2(x, len);
    sgn_hadamard_cpu(halves, 2, h); /* H_L a and H_L b as two rows */
    for (int64_t i = 0; i < h; i++) {
      want[i] = ((double)halves[i] + halves[h + i]) / sqrt(2.0);
      want[h + i] = ((double)halves[i] - halves[h + i]) / sqrt(2.0);
    }
    sgn_hadamard_cpu(x, 1, len);
    double err = dist_fd(x, want, len) / n0;
    cr_assert(err <= TOL_TWICE(len), "len %lld: recursion off by %.3g", (long long)len, err);
    free(x), free(halves), free(want);
  }
}

/* H e_j is column j of H: e_0 -> all 1/sqrt(len); e_j -> signs (-1)^popcount(i & j). */
Test(hadamard, basis_vectors) {
  const int64_t len = 256;
  float x[256];
  for (int64_t j = 0; j < len; j += 37) {
    memset(x, 0, sizeof x);
    x[j] = 1.0f;
    sgn_hadamard_cpu(x, 1, len);
    for (int64_t i = 0; i < len; i++) {
      float want = (__builtin_popcountll((unsigned long long)(i & j)) & 1) ? -0.0625f : 0.0625f;
      cr_assert_eq(x[i], want, "H e_%lld at %lld: %g != %g", (long long)j, (long long)i, x[i],
                   want);
    }
  }
}

/* Many rows in one (parallel) call give bit for bit what one call per row gives. */
Test(hadamard, many_rows_match_single_rows) {
  const int64_t rows = 97, len = 1024;
  float *x = malloc(sizeof(float) * rows * len), *y = malloc(sizeof(float) * rows * len);
  fill_normal(x, rows * len, 7);
  memcpy(y, x, sizeof(float) * rows * len);
  sgn_hadamard_cpu(x, rows, len);
  for (int64_t r = 0; r < rows; r++) sgn_hadamard_cpu(y + r * len, 1, len);
  cr_assert(memcmp(x, y, sizeof(float) * rows * len) == 0);
  free(x), free(y);
}
