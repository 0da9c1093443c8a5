/* model.c — model creation and host-side prediction. The symmetric initialization mirrors
 * neuron r into neuron r + m/2 (same w, negated A), which the backends' two-half products turn
 * into f == 0 exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "rng.h"
#include "util.h"

sgn_model *sgn_model_create(int64_t d, int64_t m, int64_t k, sgn_init init, uint64_t seed) {
  if (d < 1 || m < 1 || k < 1) {
    sgn_fail(SGN_E_INPUT, "model shape d=%lld m=%lld k=%lld: every size must be >= 1", (long long)d,
             (long long)m, (long long)k);
    return NULL;
  }
  if (init == SGN_INIT_SYMMETRIC && m % 2) {
    sgn_fail(SGN_E_INPUT, "--width %lld: symmetric initialization needs an even width",
             (long long)m);
    return NULL;
  }
  sgn_model *model = sgn_calloc(1, sizeof *model);
  if (!model) return NULL;
  model->d = d, model->m = m, model->k = k;
  model->W = sgn_calloc((size_t)(m * d), sizeof(float));
  model->A = sgn_calloc((size_t)(m * k), sizeof(float));
  if (!model->W || !model->A) {
    sgn_model_free(model);
    return NULL;
  }
  /* Draws are indexed by (neuron, coordinate), so the first half of a symmetric model equals
   * the first half of a Gaussian one with the same seed. */
  int64_t drawn = init == SGN_INIT_SYMMETRIC ? m / 2 : m;
  for (int64_t r = 0; r < drawn; r++) {
    for (int64_t j = 0; j < d; j++)
      model->W[r * d + j] = (float)sgn_rng_normal(seed, SGN_STREAM_INIT_W, (uint64_t)(r * d + j));
    for (int64_t c = 0; c < k; c++)
      model->A[r * k + c] = sgn_rng_sign(seed, SGN_STREAM_INIT_A, (uint64_t)(r * k + c));
  }
  for (int64_t r = drawn; r < m; r++) {
    memcpy(model->W + r * d, model->W + (r - drawn) * d, (size_t)d * sizeof(float));
    for (int64_t c = 0; c < k; c++) model->A[r * k + c] = -model->A[(r - drawn) * k + c];
  }
  return model;
}

void sgn_model_free(sgn_model *model) {
  if (!model) return;
  free(model->W);
  free(model->A);
  free(model);
}

/* out (n, k) = m^-1/2 relu(X W^T) A, on the CPU backend, within what it has (sgn_evaluate_with
 * chunks neurons or blocks rows when the (n, m) work does not fit). */
sgn_status sgn_model_predict(const sgn_model *model, const float *X, int64_t n, float *out) {
  if (n < 1) return sgn_fail(SGN_E_INPUT, "predict: no samples");
  sgn_backend *be = sgn_backend_cpu_open();
  if (!be) return SGN_E_RUNTIME;
  sgn_status st = sgn_evaluate_with(be, model, X, NULL, n, NULL, NULL, out);
  sgn_backend_close(be);
  return st;
}
