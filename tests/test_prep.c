/* test_prep.c — preprocessing by what it promises: unit mode centers by the training mean and
 * gives unit-norm rows, standard mode gives per-feature mean 0 and std 1, standard+unit is standard
 * mode's rows scaled to unit norm, none is an exact copy,
 * bias appends ones, new data is transformed with the training statistics (never refitted), and
 * constant features neither divide by zero nor disappear. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prep.h"
#include "rng.h"

/* Tolerances (float32 data, statistics in double, results stored in float32):
 * TOL_NORM   | ||row|| - 1 |: each entry carries ~2^-24 relative rounding, so the norm is off by
 *            ~1e-7 sqrt(d) ~ 1e-6 at d = 24; 1e-5 leaves 10x.
 * TOL_MEAN   |mean over samples| of centered data, relative to the features' spread: the stored
 *            float mean is within 2^-24 |mean| of the exact one (|mean| <~ 30 here); 1e-5 x spread.
 * TOL_STD    |std - 1| of standardized features: float rounding of (x - mean) * scale, ~1e-7 per
 *            entry, averaged; 1e-5 leaves 100x.
 * TOL_PARA   1 - cos(row, x - mean) in unit mode: direction kept up to float rounding. */
#define TOL_NORM 1e-5
#define TOL_MEAN 1e-5
#define TOL_STD 1e-5
#define TOL_PARA 1e-6

enum { N = 500, D_IN = 24 };

/* X (n, d) with feature j ~ (j + 1) * N(0, 1) + 3 j - 20: shifted and of different scales, so
 * centering and scaling both matter. */
static float *make_data(int64_t n, int64_t d, uint64_t seed) {
  float *X = malloc(sizeof(float) * (size_t)(n * d));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++)
      X[i * d + j] = (float)((j + 1) *
                                 sgn_rng_normal(seed, SGN_STREAM_SYNTH_X, (uint64_t)(i * d + j)) +
                             3.0 * j - 20.0);
  return X;
}

/* Per-feature mean and (population) std of Y (n, d) in double. */
static void column_stats(const float *Y, int64_t n, int64_t d, int64_t stride, double *mu,
                         double *sd) {
  for (int64_t j = 0; j < d; j++) {
    double s = 0, ss = 0;
    for (int64_t i = 0; i < n; i++) s += Y[i * stride + j];
    s /= n;
    for (int64_t i = 0; i < n; i++) ss += (Y[i * stride + j] - s) * (Y[i * stride + j] - s);
    mu[j] = s;
    sd[j] = sqrt(ss / n);
  }
}

Test(prep, unit_rows_have_unit_norm_and_centered_data_has_zero_mean) {
  float *X = make_data(N, D_IN, 1);
  sgn_prep p;
  cr_assert_eq(sgn_prep_fit(&p, X, N, D_IN, SGN_NORMALIZE_UNIT, 0), SGN_OK);
  cr_assert_eq(sgn_prep_dim(&p), D_IN);
  float *out = malloc(sizeof(float) * N * D_IN);
  sgn_prep_apply(&p, X, N, out);

  double mu[D_IN], sd[D_IN];
  column_stats(X, N, D_IN, D_IN, mu, sd);
  for (int j = 0; j < D_IN; j++) {
    cr_expect_eq(p.scale[j], 1.0f, "unit mode stores scale 1, column %d: %g", j, p.scale[j]);
    /* centered by the stored mean: mean over the training samples of x - mean is ~0 */
    double c = 0;
    for (int i = 0; i < N; i++) c += (double)X[i * D_IN + j] - p.mean[j];
    c /= N;
    cr_expect(fabs(c) <= TOL_MEAN * sd[j], "column %d: centered mean %.3e (std %.3g)", j, c, sd[j]);
  }
  for (int i = 0; i < N; i++) {
    double nn = 0, dot = 0, cc = 0;
    for (int j = 0; j < D_IN; j++) {
      double c = (double)X[i * D_IN + j] - p.mean[j];
      nn += (double)out[i * D_IN + j] * out[i * D_IN + j];
      dot += c * out[i * D_IN + j];
      cc += c * c;
    }
    cr_expect(fabs(sqrt(nn) - 1.0) <= TOL_NORM, "row %d: norm %.9f", i, sqrt(nn));
    cr_expect(1.0 - dot / sqrt(cc * nn) <= TOL_PARA, "row %d: direction changed (cos %.9f)", i,
              dot / sqrt(cc * nn));
  }
  sgn_prep_free(&p);
  free(X), free(out);
}

Test(prep, unit_zero_row_stays_zero) {
  /* two rows symmetric about the mean, and a row equal to the mean */
  const float X[] = {1, 2, 3, -1, 0, 1, 0, 1, 2};
  sgn_prep p;
  cr_assert_eq(sgn_prep_fit(&p, X, 3, 3, SGN_NORMALIZE_UNIT, 1), SGN_OK);
  float out[3 * 4];
  sgn_prep_apply(&p, X, 3, out);
  for (int j = 0; j < 3; j++) cr_expect_eq(out[2 * 4 + j], 0.0f, "mean row, column %d", j);
  cr_expect_eq(out[2 * 4 + 3], 1.0f, "bias of the zero row");
  for (int j = 0; j < 12; j++) cr_expect(isfinite(out[j]), "entry %d not finite", j);
  sgn_prep_free(&p);
}

Test(prep, standard_gives_zero_mean_unit_std) {
  float *X = make_data(N, D_IN, 2);
  sgn_prep p;
  cr_assert_eq(sgn_prep_fit(&p, X, N, D_IN, SGN_NORMALIZE_STANDARD, 0), SGN_OK);
  float *out = malloc(sizeof(float) * N * D_IN);
  sgn_prep_apply(&p, X, N, out);
  double mu[D_IN], sd[D_IN];
  column_stats(out, N, D_IN, D_IN, mu, sd);
  for (int j = 0; j < D_IN; j++) {
    cr_expect(fabs(mu[j]) <= TOL_MEAN, "column %d: mean %.3e", j, mu[j]);
    cr_expect(fabs(sd[j] - 1.0) <= TOL_STD, "column %d: std %.9f", j, sd[j]);
  }
  sgn_prep_free(&p);
  free(X), free(out);
}

/* standard+unit: each row is the standardized row scaled to norm 1 (same direction), so the
 * stored statistics are standard mode's and every row has unit norm. */
Test(prep, standard_unit_is_standard_then_unit_norm) {
  float *X = make_data(N, D_IN, 4);
  sgn_prep p, q;
  cr_assert_eq(sgn_prep_fit(&p, X, N, D_IN, SGN_NORMALIZE_STANDARD_UNIT, 0), SGN_OK);
  cr_assert_eq(sgn_prep_fit(&q, X, N, D_IN, SGN_NORMALIZE_STANDARD, 0), SGN_OK);
  for (int j = 0; j < D_IN; j++) {
    cr_expect_eq(p.mean[j], q.mean[j], "column %d: mean differs from standard mode", j);
    cr_expect_eq(p.scale[j], q.scale[j], "column %d: scale differs from standard mode", j);
  }
  float *out = malloc(sizeof(float) * N * D_IN), *z = malloc(sizeof(float) * N * D_IN);
  sgn_prep_apply(&p, X, N, out);
  sgn_prep_apply(&q, X, N, z);
  for (int i = 0; i < N; i++) {
    double nn = 0, dot = 0, zz = 0;
    for (int j = 0; j < D_IN; j++) {
      nn += (double)out[i * D_IN + j] * out[i * D_IN + j];
      dot += (double)z[i * D_IN + j] * out[i * D_IN + j];
      zz += (double)z[i * D_IN + j] * z[i * D_IN + j];
    }
    cr_expect(fabs(sqrt(nn) - 1.0) <= TOL_NORM, "row %d: norm %.9f", i, sqrt(nn));
    cr_expect(1.0 - dot / sqrt(zz * nn) <= TOL_PARA, "row %d: direction changed (cos %.9f)", i,
              dot / sqrt(zz * nn));
  }
  sgn_prep_free(&p), sgn_prep_free(&q);
  free(X), free(out), free(z);
}

Test(prep, none_is_the_identity) {
  float *X = make_data(N, D_IN, 3);
  X[5] = -0.0f; /* even the sign of zero survives */
  sgn_prep p;
  cr_assert_eq(sgn_prep_fit(&p, X, N, D_IN, SGN_NORMALIZE_NONE, 0), SGN_OK);
  for (int j = 0; j < D_IN; j++) {
    cr_expect_eq(p.mean[j], 0.0f);
    cr_expect_eq(p.scale[j], 1.0f);
  }
  float *out = malloc(sizeof(float) * N * D_IN);
  sgn_prep_apply(&p, X, N, out);
  cr_expect_eq(memcmp(out, X, sizeof(float) * N * D_IN), 0, "none changed the bits of X");
  sgn_prep_free(&p);
  free(X), free(out);
}

/* Every mode with bias: the first d_in columns equal the no-bias result, the last is 1. */
static void check_bias(sgn_normalize mode) {
  float *X = make_data(N, D_IN, 4);
  sgn_prep p0, p1;
  cr_assert_eq(sgn_prep_fit(&p0, X, N, D_IN, mode, 0), SGN_OK);
  cr_assert_eq(sgn_prep_fit(&p1, X, N, D_IN, mode, 1), SGN_OK);
  cr_assert_eq(sgn_prep_dim(&p1), D_IN + 1);
  float *o0 = malloc(sizeof(float) * N * D_IN), *o1 = malloc(sizeof(float) * N * (D_IN + 1));
  sgn_prep_apply(&p0, X, N, o0);
  sgn_prep_apply(&p1, X, N, o1);
  for (int i = 0; i < N; i++) {
    cr_expect_eq(memcmp(o1 + i * (D_IN + 1), o0 + i * D_IN, sizeof(float) * D_IN), 0,
                 "mode %d row %d: features differ with bias", (int)mode, i);
    cr_expect_eq(o1[i * (D_IN + 1) + D_IN], 1.0f, "mode %d row %d: bias column", (int)mode, i);
  }
  sgn_prep_free(&p0), sgn_prep_free(&p1);
  free(X), free(o0), free(o1);
}

Test(prep, bias_appends_ones) {
  check_bias(SGN_NORMALIZE_UNIT);
  check_bias(SGN_NORMALIZE_STANDARD);
  check_bias(SGN_NORMALIZE_NONE);
  check_bias(SGN_NORMALIZE_STANDARD_UNIT);
}

Test(prep, new_data_uses_training_statistics) {
  enum { NT = 40 };
  float *X = make_data(N, D_IN, 5), *T = make_data(NT, D_IN, 6);
  for (int i = 0; i < NT * D_IN; i++) T[i] = 2.0f * T[i] + 7.0f; /* a different distribution */
  sgn_prep p;
  cr_assert_eq(sgn_prep_fit(&p, X, N, D_IN, SGN_NORMALIZE_STANDARD, 0), SGN_OK);
  float *out = malloc(sizeof(float) * NT * D_IN);
  sgn_prep_apply(&p, T, NT, out);
  double mu[D_IN], sd[D_IN], tmu[D_IN], tsd[D_IN];
  column_stats(X, N, D_IN, D_IN, mu, sd);
  column_stats(T, NT, D_IN, D_IN, tmu, tsd);
  double omu[D_IN], osd[D_IN];
  column_stats(out, NT, D_IN, D_IN, omu, osd);
  for (int j = 0; j < D_IN; j++) {
    /* T's own stats would map it to mean 0 / std 1; the training stats give (tmu - mu) / sd */
    double want_mu = (tmu[j] - mu[j]) / sd[j], want_sd = tsd[j] / sd[j];
    cr_expect(fabs(omu[j] - want_mu) <= 1e-4 * (1 + fabs(want_mu)),
              "column %d: mean %.6f want %.6f", j, omu[j], want_mu);
    cr_expect(fabs(osd[j] - want_sd) <= 1e-4 * want_sd, "column %d: std %.6f want %.6f", j, osd[j],
              want_sd);
    cr_expect(fabs(osd[j] - 1.0) > 0.5, "column %d looks refitted (std %.6f)", j, osd[j]);
  }
  /* and applying row by row equals applying in one call (no cross-row statistics) */
  float row[D_IN];
  for (int i = 0; i < NT; i++) {
    sgn_prep_apply(&p, T + i * D_IN, 1, row);
    cr_expect_eq(memcmp(row, out + i * D_IN, sizeof row), 0, "row %d differs when applied alone",
                 i);
  }
  sgn_prep_free(&p);
  free(X), free(T), free(out);
}

Test(prep, zero_variance_feature) {
  float *X = make_data(N, D_IN, 7);
  for (int i = 0; i < N; i++) X[i * D_IN + 3] = 4.25f; /* constant column */
  sgn_prep p;
  cr_assert_eq(sgn_prep_fit(&p, X, N, D_IN, SGN_NORMALIZE_STANDARD, 0), SGN_OK);
  cr_expect_eq(p.scale[3], 1.0f, "std 0 must give scale 1, got %g", p.scale[3]);
  cr_expect_eq(p.mean[3], 4.25f);
  float *out = malloc(sizeof(float) * N * D_IN);
  sgn_prep_apply(&p, X, N, out);
  for (int i = 0; i < N; i++) cr_expect_eq(out[i * D_IN + 3], 0.0f, "row %d: constant column", i);
  for (int i = 0; i < N * D_IN; i++) cr_assert(isfinite(out[i]), "entry %d not finite", i);
  /* a test sample with another value in that column passes through centered, unscaled */
  float t[D_IN];
  memcpy(t, X, sizeof t);
  t[3] = 5.0f;
  float o[D_IN];
  sgn_prep_apply(&p, t, 1, o);
  cr_expect_eq(o[3], 0.75f);
  sgn_prep_free(&p);
  free(X), free(out);
}

Test(prep, fit_is_deterministic) {
  float *X = make_data(N, D_IN, 8);
  sgn_prep a, b;
  cr_assert_eq(sgn_prep_fit(&a, X, N, D_IN, SGN_NORMALIZE_STANDARD, 1), SGN_OK);
  cr_assert_eq(sgn_prep_fit(&b, X, N, D_IN, SGN_NORMALIZE_STANDARD, 1), SGN_OK);
  cr_expect_eq(memcmp(a.mean, b.mean, sizeof(float) * D_IN), 0);
  cr_expect_eq(memcmp(a.scale, b.scale, sizeof(float) * D_IN), 0);
  sgn_prep_free(&a), sgn_prep_free(&b);
  free(X);
}

Test(prep, rejects_bad_arguments) {
  const float X[] = {1, 2, NAN, 4};
  sgn_prep p;
  cr_expect_eq(sgn_prep_fit(&p, X, 0, 2, SGN_NORMALIZE_UNIT, 0), SGN_E_INPUT);
  cr_expect_eq(sgn_prep_fit(&p, X, 2, 0, SGN_NORMALIZE_UNIT, 0), SGN_E_INPUT);
  cr_expect_eq(sgn_prep_fit(&p, X, 1, 2, (sgn_normalize)7, 0), SGN_E_INPUT);
  cr_expect_eq(sgn_prep_fit(&p, X, 1, 2, SGN_NORMALIZE_UNIT, 2), SGN_E_INPUT);
  cr_expect_eq(sgn_prep_fit(&p, X, 2, 2, SGN_NORMALIZE_UNIT, 0), SGN_E_INPUT, "NaN accepted");
  cr_expect(strstr(sgn_last_error(), "sample 1"), "message: %s", sgn_last_error());
  cr_expect_null(p.mean, "a failed fit leaves nothing to free");
  sgn_prep_free(&p); /* and freeing it is harmless */
}
