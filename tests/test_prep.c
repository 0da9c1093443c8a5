/* test_prep.c — preprocessing by what it promises: unit mode centers by the training mean and
 * gives unit-norm rows, standard mode gives per-feature mean 0 and std 1, standard+unit is standard
 * mode's rows scaled to unit norm, sphere is standard mode's rows with sqrt(d) appended, scaled to
 * unit norm (so, unlike standard+unit, it tells z from 2 z), none is an exact copy,
 * bias appends ones, new data is transformed with the training statistics (never refitted), and
 * constant features neither divide by zero nor disappear. Targets: standardized per column by
 * the training targets' statistics, and mapped back to their units by the inverse map. */
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
 * TOL_PARA   1 - cos(row, x - mean) in unit mode: direction kept up to float rounding.
 * TOL_TARGET |undo(apply(y)) - y| / (|y| + std): apply rounds (y - mean) / std to float (2^-24
 *            relative to |y - mean| / std), undo rounds mean + std t to float (2^-24 |y|): the
 *            error is below 2^-24 (2 |y| + |mean| + std) ~ 3e-7 (|y| + std) for |mean| <~ |y| +
 *            std, as here; 1e-6 leaves 3x. */
#define TOL_NORM 1e-5
#define TOL_MEAN 1e-5
#define TOL_STD 1e-5
#define TOL_PARA 1e-6
#define TOL_TARGET 1e-6

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

/* sphere: d_in + 1 coordinates of norm 1; the first d_in have the direction of the standardized
 * row z, the last is sqrt(d_in) / sqrt(||z||^2 + d_in); the statistics are standard mode's. */
Test(prep, sphere_is_standard_plus_a_constant_on_the_unit_sphere) {
  float *X = make_data(N, D_IN, 9);
  sgn_prep p, q;
  cr_assert_eq(sgn_prep_fit(&p, X, N, D_IN, SGN_NORMALIZE_SPHERE, 0), SGN_OK);
  cr_assert_eq(sgn_prep_fit(&q, X, N, D_IN, SGN_NORMALIZE_STANDARD, 0), SGN_OK);
  enum { D = D_IN + 1 };
  cr_assert_eq(sgn_prep_dim(&p), D);
  cr_assert_eq(memcmp(p.mean, q.mean, sizeof(float) * D_IN), 0, "mean differs from standard");
  cr_assert_eq(memcmp(p.scale, q.scale, sizeof(float) * D_IN), 0, "scale differs from standard");
  float *out = malloc(sizeof(float) * N * D), *z = malloc(sizeof(float) * N * D_IN);
  sgn_prep_apply(&p, X, N, out);
  sgn_prep_apply(&q, X, N, z);
  for (int i = 0; i < N; i++) {
    double nn = 0, dot = 0, zz = 0, head = 0;
    for (int j = 0; j < D; j++) nn += (double)out[i * D + j] * out[i * D + j];
    for (int j = 0; j < D_IN; j++) {
      dot += (double)z[i * D_IN + j] * out[i * D + j];
      zz += (double)z[i * D_IN + j] * z[i * D_IN + j];
      head += (double)out[i * D + j] * out[i * D + j];
    }
    const double last = sqrt((double)D_IN / (zz + D_IN));
    cr_expect(fabs(sqrt(nn) - 1.0) <= TOL_NORM, "row %d: norm %.9f", i, sqrt(nn));
    cr_expect(1.0 - dot / sqrt(zz * head) <= TOL_PARA, "row %d: direction changed (cos %.9f)", i,
              dot / sqrt(zz * head));
    cr_expect(fabs(out[i * D + D_IN] - last) <= TOL_NORM, "row %d: constant %.9f, want %.9f", i,
              (double)out[i * D + D_IN], last);
  }
  sgn_prep_free(&p), sgn_prep_free(&q);
  free(X), free(out), free(z);
}

/* Two samples whose standardized rows are z and 2 z: standard+unit maps both to z / ||z|| (the
 * norm is lost), sphere to different points (the constant coordinate falls from
 * sqrt(d / (||z||^2 + d)) to sqrt(d / (4 ||z||^2 + d))). */
Test(prep, sphere_keeps_the_norm_standard_unit_drops) {
  float *X = make_data(N, D_IN, 10);
  sgn_prep sp, su;
  cr_assert_eq(sgn_prep_fit(&sp, X, N, D_IN, SGN_NORMALIZE_SPHERE, 0), SGN_OK);
  cr_assert_eq(sgn_prep_fit(&su, X, N, D_IN, SGN_NORMALIZE_STANDARD_UNIT, 0), SGN_OK);
  /* raw rows x = mean + z / scale and x2 = mean + 2 z / scale, z = (1, -1, 1, ...) / 2 */
  float x[2][D_IN];
  for (int j = 0; j < D_IN; j++) {
    const double zj = j % 2 ? -0.5 : 0.5;
    x[0][j] = (float)(sp.mean[j] + zj / sp.scale[j]);
    x[1][j] = (float)(sp.mean[j] + 2 * zj / sp.scale[j]);
  }
  float a[2][D_IN + 1], b[2][D_IN];
  sgn_prep_apply(&sp, &x[0][0], 2, &a[0][0]);
  sgn_prep_apply(&su, &x[0][0], 2, &b[0][0]);
  double dsu = 0, dsp = 0;
  for (int j = 0; j < D_IN; j++) dsu += pow((double)b[0][j] - b[1][j], 2);
  for (int j = 0; j <= D_IN; j++) dsp += pow((double)a[0][j] - a[1][j], 2);
  /* ||z||^2 = d / 4: the constants are sqrt(4/5) and sqrt(1/2), the points ~0.3 apart */
  cr_expect(sqrt(dsu) <= 2 * TOL_NORM, "standard+unit: z and 2z %.3g apart", sqrt(dsu));
  cr_expect(sqrt(dsp) >= 0.25, "sphere: z and 2z only %.3g apart", sqrt(dsp));
  cr_expect(fabs(a[0][D_IN] - sqrt(0.8)) <= TOL_NORM, "constant of z: %.9f", (double)a[0][D_IN]);
  cr_expect(fabs(a[1][D_IN] - sqrt(0.5)) <= TOL_NORM, "constant of 2z: %.9f", (double)a[1][D_IN]);
  sgn_prep_free(&sp), sgn_prep_free(&su);
  free(X);
}

/* A row equal to the training mean standardizes to 0 and lands on the constant axis: (0,..,0,1). */
Test(prep, sphere_zero_row_is_the_pole) {
  const float X[] = {1, 2, 3, -1, 0, 1, 0, 1, 2};
  sgn_prep p;
  cr_assert_eq(sgn_prep_fit(&p, X, 3, 3, SGN_NORMALIZE_SPHERE, 1), SGN_OK);
  cr_assert_eq(sgn_prep_dim(&p), 5);
  float out[3 * 5];
  sgn_prep_apply(&p, X, 3, out);
  for (int j = 0; j < 3; j++) cr_expect_eq(out[2 * 5 + j], 0.0f, "mean row, column %d", j);
  cr_expect_eq(out[2 * 5 + 3], 1.0f, "constant of the zero row: %.9g", (double)out[2 * 5 + 3]);
  cr_expect_eq(out[2 * 5 + 4], 1.0f, "bias of the zero row");
  for (int j = 0; j < 15; j++) cr_expect(isfinite(out[j]), "entry %d not finite", j);
  sgn_prep_free(&p);
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

/* Every mode with bias: the first D0 columns equal the no-bias result (D0 = its dimension), the
 * last is 1. */
static void check_bias(sgn_normalize mode) {
  float *X = make_data(N, D_IN, 4);
  sgn_prep p0, p1;
  cr_assert_eq(sgn_prep_fit(&p0, X, N, D_IN, mode, 0), SGN_OK);
  cr_assert_eq(sgn_prep_fit(&p1, X, N, D_IN, mode, 1), SGN_OK);
  const int64_t D0 = sgn_prep_dim(&p0);
  cr_assert_eq(D0, D_IN + (mode == SGN_NORMALIZE_SPHERE));
  cr_assert_eq(sgn_prep_dim(&p1), D0 + 1);
  float *o0 = malloc(sizeof(float) * N * D0), *o1 = malloc(sizeof(float) * N * (D0 + 1));
  sgn_prep_apply(&p0, X, N, o0);
  sgn_prep_apply(&p1, X, N, o1);
  for (int i = 0; i < N; i++) {
    cr_expect_eq(memcmp(o1 + i * (D0 + 1), o0 + i * D0, sizeof(float) * D0), 0,
                 "mode %d row %d: features differ with bias", (int)mode, i);
    cr_expect_eq(o1[i * (D0 + 1) + D0], 1.0f, "mode %d row %d: bias column", (int)mode, i);
  }
  sgn_prep_free(&p0), sgn_prep_free(&p1);
  free(X), free(o0), free(o1);
}

Test(prep, bias_appends_ones) {
  check_bias(SGN_NORMALIZE_UNIT);
  check_bias(SGN_NORMALIZE_STANDARD);
  check_bias(SGN_NORMALIZE_NONE);
  check_bias(SGN_NORMALIZE_STANDARD_UNIT);
  check_bias(SGN_NORMALIZE_SPHERE);
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

/* ---- targets ---- */

/* Y (n, k) with column c ~ 10^c (N(0,1) + c) - 1000 c: different scales and offsets per column. */
static float *make_targets(int64_t n, int64_t k, uint64_t seed) {
  float *Y = malloc(sizeof(float) * (size_t)(n * k));
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++)
      Y[i * k + c] = (float)(pow(10, (double)c) *
                                 (sgn_rng_normal(seed, SGN_STREAM_SYNTH_X, (uint64_t)(i * k + c)) +
                                  (double)c) -
                             1000.0 * (double)c);
  return Y;
}

/* Applied, the training targets have mean 0 and std 1 per column; undone, they come back. */
Test(prep, targets_standardize_and_come_back) {
  enum { K = 3 };
  float *Y = make_targets(N, K, 12), *T = malloc(sizeof(float) * N * K);
  float *X = make_data(N, D_IN, 12);
  sgn_prep p;
  cr_assert_eq(sgn_prep_fit(&p, X, N, D_IN, SGN_NORMALIZE_SPHERE, 0), SGN_OK);
  cr_assert_eq(p.k_y, 0, "sgn_prep_fit fits no target statistics");
  cr_assert_eq(sgn_prep_fit_targets(&p, Y, N, K), SGN_OK, "%s", sgn_last_error());
  cr_assert_eq(p.k_y, K);
  double mu[K], sd[K];
  column_stats(Y, N, K, K, mu, sd);
  for (int c = 0; c < K; c++) {
    /* the same two-pass sums in double: equal up to the order of rounding in the sums */
    cr_expect(fabs(p.y_mean[c] - mu[c]) <= 1e-12 * (fabs(mu[c]) + sd[c]), "column %d: mean %.17g, "
              "want %.17g", c, p.y_mean[c], mu[c]);
    cr_expect(fabs(p.y_scale[c] - sd[c]) <= 1e-12 * sd[c], "column %d: scale %.17g, want %.17g", c,
              p.y_scale[c], sd[c]);
  }
  memcpy(T, Y, sizeof(float) * N * K);
  sgn_prep_targets_apply(&p, T, N);
  double tmu[K], tsd[K];
  column_stats(T, N, K, K, tmu, tsd);
  for (int c = 0; c < K; c++) {
    cr_expect(fabs(tmu[c]) <= TOL_MEAN, "column %d: standardized mean %.3e", c, tmu[c]);
    cr_expect(fabs(tsd[c] - 1.0) <= TOL_STD, "column %d: standardized std %.9f", c, tsd[c]);
  }
  sgn_prep_targets_undo(&p, T, N);
  for (int i = 0; i < N; i++)
    for (int c = 0; c < K; c++)
      cr_expect(fabs((double)T[i * K + c] - Y[i * K + c]) <=
                    TOL_TARGET * (fabs(Y[i * K + c]) + sd[c]),
                "sample %d column %d: %.9g came back as %.9g", i, c, (double)Y[i * K + c],
                (double)T[i * K + c]);
  /* a refit replaces the statistics (no leak: the sanitizer run checks) */
  cr_assert_eq(sgn_prep_fit_targets(&p, Y, N, 1 /* its first N entries as (N, 1) */), SGN_OK);
  cr_expect_eq(p.k_y, 1);
  sgn_prep_free(&p);
  cr_expect(p.k_y == 0 && !p.y_mean && !p.y_scale, "sgn_prep_free leaves target statistics");
  free(X), free(Y), free(T);
}

/* A constant target column is only centered (scale 1); k_y = 0 leaves outputs bit for bit. */
Test(prep, targets_constant_column_and_identity) {
  const float Y[] = {5, -1, 5, 2, 5, 3, 5, 4};
  sgn_prep p = {0};
  cr_assert_eq(sgn_prep_fit_targets(&p, Y, 4, 2), SGN_OK);
  cr_expect_eq(p.y_mean[0], 5.0);
  cr_expect_eq(p.y_scale[0], 1.0, "std 0 must give scale 1, got %g", p.y_scale[0]);
  float T[8];
  memcpy(T, Y, sizeof T);
  sgn_prep_targets_apply(&p, T, 4);
  for (int i = 0; i < 4; i++) cr_expect_eq(T[2 * i], 0.0f, "row %d: constant target", i);
  sgn_prep_free(&p);

  sgn_prep none = {0};
  float F[] = {-0.0f, 1e-40f, 3.5f, -7.25f};
  const float F0[] = {-0.0f, 1e-40f, 3.5f, -7.25f};
  sgn_prep_targets_apply(&none, F, 2);
  sgn_prep_targets_undo(&none, F, 2);
  cr_expect_eq(memcmp(F, F0, sizeof F), 0, "k_y = 0 changed the outputs");
}

Test(prep, targets_reject_non_finite) {
  const float Y[] = {1, 2, 3, INFINITY, 5, 6};
  sgn_prep p = {0};
  cr_expect_eq(sgn_prep_fit_targets(&p, Y, 3, 2), SGN_E_INPUT, "inf accepted");
  cr_expect(strstr(sgn_last_error(), "sample 1, column 1"), "message: %s", sgn_last_error());
  cr_expect(!strchr(sgn_last_error(), '\n'), "message is not one line: %s", sgn_last_error());
  cr_expect(p.k_y == 0 && !p.y_mean, "a failed fit leaves nothing");
  cr_expect_eq(sgn_prep_fit_targets(&p, Y, 0, 2), SGN_E_INPUT);
  sgn_prep_free(&p);
}
