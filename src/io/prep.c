/* prep.c — preprocessing: statistics fitted once on the training set (double, fixed order, so
 * identical runs fit identical bits) and applied to any later data unchanged. Inputs: every mode
 * is (x - mean) * scale, then unit and standard+unit scale each row to norm 1, and sphere appends
 * the constant sqrt(d_in) first (the typical norm of a standardized row, so an average sample sits
 * at 45 degrees to the constant axis) and then scales to norm 1; none is mean 0, scale 1: a copy.
 * Targets of a regression: per column (y - mean) / std for training, mean + std f on output. */
#include "prep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Coordinates a mode adds after the d_in features (before the bias). */
static int64_t mode_extra(sgn_normalize mode) { return mode == SGN_NORMALIZE_SPHERE ? 1 : 0; }

int64_t sgn_prep_dim(const sgn_prep *p) {
  return p->d_in + mode_extra(p->mode) + (p->bias ? 1 : 0);
}

/* mean_j = 1/n sum_i X[i,j]; std_j = sqrt(1/n sum_i (X[i,j] - mean_j)^2) (population std). */
sgn_status sgn_prep_fit(sgn_prep *p, const float *X, int64_t n, int64_t d_in, sgn_normalize mode,
                        int bias) {
  memset(p, 0, sizeof *p);
  if (n < 1 || d_in < 1)
    return sgn_fail(SGN_E_INPUT,
                    "normalize: need at least one sample and one column (n=%lld, d=%lld)",
                    (long long)n, (long long)d_in);
  if (mode != SGN_NORMALIZE_UNIT && mode != SGN_NORMALIZE_NONE && mode != SGN_NORMALIZE_STANDARD &&
      mode != SGN_NORMALIZE_STANDARD_UNIT && mode != SGN_NORMALIZE_SPHERE)
    return sgn_fail(SGN_E_INPUT, "normalize: unknown mode %d", (int)mode);
  if (bias != 0 && bias != 1) return sgn_fail(SGN_E_INPUT, "normalize: bias must be 0 or 1");

  float *mean = sgn_calloc((size_t)d_in, sizeof(float));
  float *scale = sgn_calloc((size_t)d_in, sizeof(float));
  double *acc = sgn_calloc((size_t)d_in, sizeof(double));
  if (!mean || !scale || !acc) {
    free(mean), free(scale), free(acc);
    return SGN_E_RUNTIME;
  }
  for (int64_t j = 0; j < d_in; j++) scale[j] = 1.0f;

  /* Non-finite input would poison the statistics and be written into the model file. */
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d_in; j++)
      if (!isfinite(X[i * d_in + j])) {
        free(mean), free(scale), free(acc);
        return sgn_fail(SGN_E_INPUT, "normalize: non-finite value at sample %lld, column %lld",
                        (long long)i, (long long)j);
      }

  if (mode != SGN_NORMALIZE_NONE) {
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < d_in; j++) acc[j] += X[i * d_in + j];
    for (int64_t j = 0; j < d_in; j++) acc[j] /= (double)n;
    for (int64_t j = 0; j < d_in; j++) mean[j] = (float)acc[j];
  }
  if (mode == SGN_NORMALIZE_STANDARD || mode == SGN_NORMALIZE_STANDARD_UNIT ||
      mode == SGN_NORMALIZE_SPHERE) {
    /* two-pass variance around the double mean; acc holds the mean, var the sums */
    double *var = sgn_calloc((size_t)d_in, sizeof(double));
    if (!var) {
      free(mean), free(scale), free(acc);
      return SGN_E_RUNTIME;
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < d_in; j++) {
        double t = X[i * d_in + j] - acc[j];
        var[j] += t * t;
      }
    for (int64_t j = 0; j < d_in; j++) {
      double sd = sqrt(var[j] / (double)n);
      float s = (float)(1.0 / sd);
      scale[j] = sd > 0.0 && isfinite(s) ? s : 1.0f; /* constant feature: only centered */
    }
    free(var);
  }
  free(acc);
  p->mode = mode;
  p->bias = bias;
  p->d_in = d_in;
  p->mean = mean;
  p->scale = scale;
  return SGN_OK;
}

/* out[i, :d_in] = (X[i] - mean) * scale; sphere appends sqrt(d_in); unit, standard+unit and
 * sphere divide the row by its norm; bias appends 1 last. Rows are independent and each is
 * computed serially, so threads do not change results. */
void sgn_prep_apply(const sgn_prep *p, const float *X, int64_t n, float *out) {
  const int64_t d_in = p->d_in, D = sgn_prep_dim(p);
  const int sphere = p->mode == SGN_NORMALIZE_SPHERE;
  const int to_unit = p->mode == SGN_NORMALIZE_UNIT || p->mode == SGN_NORMALIZE_STANDARD_UNIT ||
                      sphere;
  const double c = sqrt((double)d_in); /* sphere's constant coordinate */
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float *x = X + i * d_in;
    float *o = out + i * D;
    double ss = sphere ? (double)d_in : 0.0;
    for (int64_t j = 0; j < d_in; j++) {
      o[j] = (x[j] - p->mean[j]) * p->scale[j];
      ss += (double)o[j] * o[j];
    }
    if (to_unit && ss > 0.0) {
      double inv = 1.0 / sqrt(ss);
      for (int64_t j = 0; j < d_in; j++) o[j] = (float)(o[j] * inv);
      if (sphere) o[d_in] = (float)(c * inv);
    }
    if (p->bias) o[D - 1] = 1.0f;
  }
}

/* ---- targets ---- */

/* y_mean[c] = 1/n sum_i Y[i,c]; y_scale[c] = sqrt(1/n sum_i (Y[i,c] - y_mean[c])^2), 1 if 0. */
sgn_status sgn_prep_fit_targets(sgn_prep *p, const float *Y, int64_t n, int64_t k) {
  if (n < 1 || k < 1)
    return sgn_fail(SGN_E_INPUT, "targets: need at least one sample and one column (n=%lld, k=%lld)",
                    (long long)n, (long long)k);
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++)
      if (!isfinite(Y[i * k + c]))
        return sgn_fail(SGN_E_INPUT, "targets: non-finite value at sample %lld, column %lld",
                        (long long)i, (long long)c);
  double *mean = sgn_calloc((size_t)k, sizeof(double));
  double *scale = sgn_calloc((size_t)k, sizeof(double));
  if (!mean || !scale) {
    free(mean), free(scale);
    return SGN_E_RUNTIME;
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++) mean[c] += Y[i * k + c];
  for (int64_t c = 0; c < k; c++) mean[c] /= (double)n;
  for (int64_t i = 0; i < n; i++) /* two passes around the double mean, as for the inputs */
    for (int64_t c = 0; c < k; c++) {
      double t = Y[i * k + c] - mean[c];
      scale[c] += t * t;
    }
  for (int64_t c = 0; c < k; c++) {
    double sd = sqrt(scale[c] / (double)n);
    scale[c] = sd > 0.0 && isfinite(sd) ? sd : 1.0; /* a constant target: only centered */
  }
  free(p->y_mean), free(p->y_scale);
  p->k_y = k;
  p->y_mean = mean;
  p->y_scale = scale;
  return SGN_OK;
}

void sgn_prep_targets_apply(const sgn_prep *p, float *Y, int64_t n) {
  const int64_t k = p->k_y;
  for (int64_t i = 0; i < n && k > 0; i++)
    for (int64_t c = 0; c < k; c++)
      Y[i * k + c] = (float)(((double)Y[i * k + c] - p->y_mean[c]) / p->y_scale[c]);
}

void sgn_prep_targets_undo(const sgn_prep *p, float *F, int64_t n) {
  const int64_t k = p->k_y;
  for (int64_t i = 0; i < n && k > 0; i++)
    for (int64_t c = 0; c < k; c++)
      F[i * k + c] = (float)(p->y_mean[c] + p->y_scale[c] * (double)F[i * k + c]);
}

void sgn_prep_free(sgn_prep *p) {
  if (!p) return;
  free(p->mean);
  free(p->scale);
  free(p->y_mean);
  free(p->y_scale);
  memset(p, 0, sizeof *p);
}
