/* model.c — model creation: shared outputs, and separate ones (one hidden layer per output,
 * sgn_model_is_separate tells them apart). The symmetric initialization mirrors neuron r into
 * neuron r + m/2 (same w, negated A), which the backends' two-half products turn into f == 0
 * exactly. Prediction is evaluate.c's. */
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

sgn_model *sgn_model_create_separate(int64_t d, int64_t m, int64_t k, sgn_init init,
                                     uint64_t seed) {
  if (k < 2 || m < 64 || m % 64) {
    sgn_fail(SGN_E_INPUT,
             "separate outputs need k >= 2 outputs and a width that is a multiple of 64 (k=%lld, "
             "--width %lld)",
             (long long)k, (long long)m);
    return NULL;
  }
  sgn_model *shared = sgn_model_create(d, m, k, init, seed);
  if (!shared) return NULL;
  sgn_model *model = sgn_calloc(1, sizeof *model);
  if (!model) {
    sgn_model_free(shared);
    return NULL;
  }
  const int64_t h = m / 2, total = k * m;
  model->d = d, model->m = total, model->k = k;
  model->W = sgn_calloc((size_t)(total * d), sizeof(float));
  model->A = sgn_calloc((size_t)(total * k), sizeof(float));
  if (!model->W || !model->A) {
    sgn_model_free(model);
    sgn_model_free(shared);
    return NULL;
  }
  /* neuron r of the shared model, in half r / h, goes to position j = r % h of head c's range
   * in that half: both halves keep their mirror (r and r + h of the shared model land at
   * c h + j and k h + c h + j, which are t and t + total / 2) */
  const float scale = sqrtf((float)k);
  for (int64_t c = 0; c < k; c++)
    for (int64_t r = 0; r < m; r++) {
      const int64_t t = (r / h) * k * h + c * h + r % h;
      memcpy(model->W + t * d, shared->W + r * d, (size_t)d * sizeof(float));
      model->A[t * k + c] = scale * shared->A[r * k + c];
    }
  sgn_model_free(shared);
  return model;
}

int sgn_model_is_separate(const sgn_model *model) {
  if (!model || !model->A || model->k < 2 || model->m % (2 * model->k)) return 0;
  const int64_t k = model->k, h = model->m / (2 * k);
  const float scale = sqrtf((float)k);
  for (int64_t r = 0; r < model->m; r++) {
    const int64_t own = (r % (k * h)) / h; /* the head whose range holds r */
    for (int64_t c = 0; c < k; c++) {
      const float a = model->A[r * k + c];
      if (c == own ? (a != scale && a != -scale) : a != 0.0f) return 0;
    }
  }
  return 1;
}

void sgn_model_free(sgn_model *model) {
  if (!model) return;
  free(model->W);
  free(model->A);
  free(model);
}
