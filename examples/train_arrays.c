/* train_arrays.c — sketchgn from C: trains on arrays held in memory, then predicts.
 * A small regression problem is made in code (inputs on the unit sphere, a smooth target); the
 * program exits 0 only if the training loss fell at least 100-fold. Build: make examples. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "sketchgn.h"

enum { N = 256, D = 8, K = 2, WIDTH = 1024, MAX_STEPS = 10 };

/* A uniform number in [-1, 1) from a 64-bit LCG, so the data are the same on every platform. */
static float uniform(uint64_t *state) {
  *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
  return (float)((double)(*state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* 1/(2n) sum ||F_i - Y_i||^2 for F, Y (n, k): the loss the session reports. */
static double loss_of(const float *F, const float *Y, int64_t n, int64_t k) {
  double s = 0.0;
  for (int64_t i = 0; i < n * k; i++) s += ((double)F[i] - Y[i]) * ((double)F[i] - Y[i]);
  return s / (2.0 * (double)n);
}

static int fail(const char *what) {
  fprintf(stderr, "train_arrays: %s: %s\n", what, sgn_last_error());
  return 1;
}

int main(void) {
  static float X[N * D], Y[N * K], F[N * K]; /* X (n, d), Y and F (n, k), row-major */
  uint64_t state = 42;
  for (int i = 0; i < N; i++) {
    float *x = X + i * D, norm = 0.0f;
    for (int j = 0; j < D; j++) x[j] = uniform(&state), norm += x[j] * x[j];
    for (int j = 0; j < D; j++) x[j] /= sqrtf(norm);
    Y[i * K + 0] = sinf(3.0f * x[0]) + x[1] * x[2];
    Y[i * K + 1] = fabsf(x[3]) - 0.5f * x[4];
  }

  printf("sketchgn %s\n", sgn_version());
  sgn_backend *be = sgn_backend_open(SGN_DEVICE_AUTO); /* the GPU when one answers, else the CPU */
  if (!be) return fail("backend");
  sgn_model *model = sgn_model_create(D, WIDTH, K, SGN_INIT_SYMMETRIC, 1);
  if (!model) return fail("model");
  sgn_options opt = sgn_options_default(); /* gn-sketch: SRHT sketch, s = 4n, PCG to 1e-3 */
  sgn_session *ses = sgn_session_create(be, model, X, Y, N, &opt);
  if (!ses) return fail("session");

  double loss0 = sgn_session_initial_loss(ses);
  printf("backend %s, n=%d d=%d k=%d width %d\nstep  0  loss %.4e\n", sgn_backend_name(be), N, D, K,
         WIDTH, loss0);
  sgn_step_info info;
  for (int t = 0; t < MAX_STEPS && sgn_session_loss(ses) > 1e-4 * loss0; t++) {
    if (sgn_session_step(ses, &info) != SGN_OK) return fail("step");
    printf("step %2lld  loss %.4e  cg %d  %.1f ms\n", (long long)info.step, info.loss,
           info.cg_iters, info.step_ms);
  }

  /* The trained W back into model->W; then predict on the host. */
  if (sgn_session_sync(ses) != SGN_OK) return fail("sync");
  if (sgn_model_predict(model, X, N, F) != SGN_OK) return fail("predict");
  double loss = sgn_session_loss(ses), predicted = loss_of(F, Y, N, K);
  printf("final loss %.4e (%.2e of initial); loss of sgn_model_predict's outputs %.4e\n", loss,
         loss / loss0, predicted);
  printf("sample 0: target (%.4f, %.4f), prediction (%.4f, %.4f)\n", Y[0], Y[1], F[0], F[1]);

  sgn_session_free(ses);
  sgn_model_free(model);
  sgn_backend_close(be);
  int ok = loss <= 1e-2 * loss0 && predicted <= 1e-2 * loss0;
  if (!ok) fprintf(stderr, "train_arrays: the loss did not fall 100-fold\n");
  return ok ? 0 : 1;
}
