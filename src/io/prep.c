/* prep.c — input preprocessing: statistics fitted once on the training set (double, fixed order,
 * so identical runs fit identical bits) and applied to any later data unchanged. Every mode is
 * (x - mean) * scale, then unit and standard+unit modes scale each row to norm 1; none is mean 0,
 * scale 1: a copy. */
#include "prep.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

int64_t sgn_prep_dim(const sgn_prep *p) { return p->d_in + (p->bias ? 1 : 0); }

/* mean_j = 1/n sum_i X[i,j]; std_j = sqrt(1/n sum_i (X[i,j] - mean_j)^2) (population std). */
sgn_status sgn_prep_fit(sgn_prep *p, const float *X, int64_t n, int64_t d_in, sgn_normalize mode,
                        int bias) {
  memset(p, 0, sizeof *p);
  if (n < 1 || d_in < 1)
    return sgn_fail(SGN_E_INPUT,
                    "normalize: need at least one sample and one column (n=%lld, d=%lld)",
                    (long long)n, (long long)d_in);
  if (mode != SGN_NORMALIZE_UNIT && mode != SGN_NORMALIZE_NONE && mode != SGN_NORMALIZE_STANDARD &&
      mode != SGN_NORMALIZE_STANDARD_UNIT)
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
  if (mode == SGN_NORMALIZE_STANDARD || mode == SGN_NORMALIZE_STANDARD_UNIT) {
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

/* out[i, :d_in] = (X[i] - mean) * scale, divided by its norm in unit mode; out[i, d_in] = 1 with
 * bias. Rows are independent and each is computed serially, so threads do not change results. */
void sgn_prep_apply(const sgn_prep *p, const float *X, int64_t n, float *out) {
  const int64_t d_in = p->d_in, D = sgn_prep_dim(p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float *x = X + i * d_in;
    float *o = out + i * D;
    double ss = 0.0;
    for (int64_t j = 0; j < d_in; j++) {
      o[j] = (x[j] - p->mean[j]) * p->scale[j];
      ss += (double)o[j] * o[j];
    }
    if ((p->mode == SGN_NORMALIZE_UNIT || p->mode == SGN_NORMALIZE_STANDARD_UNIT) && ss > 0.0) {
      double inv = 1.0 / sqrt(ss);
      for (int64_t j = 0; j < d_in; j++) o[j] = (float)(o[j] * inv);
    }
    if (p->bias) o[d_in] = 1.0f;
  }
}

void sgn_prep_free(sgn_prep *p) {
  if (!p) return;
  free(p->mean);
  free(p->scale);
  memset(p, 0, sizeof *p);
}
