/* fuzz_state.c — sgn_session_load_state, the session state a checkpoint carries (state.c: a
 * header of counters, step size, losses and the damping multiplier, then W, Adam's moments and a
 * kept preconditioner). One tiny session per solver is made once; byte 0 of the input picks the
 * solver, the rest is the state. The contract: a refusal is SGN_E_INPUT with a one-line message
 * and leaves the session as it was (its loss unchanged); a state that loads gives a finite loss,
 * saves back to the same bytes (an older state comes back as v5, with what it lacked), and takes
 * a step that keeps the loss finite. The Gauss-Newton sessions have a ridge, so states with one
 * (and W0 at their end) load too. */
#include "backend.h"
#include "fuzz_common.h"
#include "rng.h"

#define N 6
#define D 3
#define M 8
#define K 2

static sgn_backend *be;
static sgn_model *model;
static sgn_session *ses[6];
static float X[N * D], Y[N * K];

static void setup(void) {
  for (int i = 0; i < N * D; i++) X[i] = (float)sgn_rng_normal(5, 1, (uint64_t)i);
  for (int i = 0; i < N * K; i++) Y[i] = (float)sgn_rng_normal(5, 2, (uint64_t)i);
  be = sgn_backend_cpu_open();
  FUZZ_CHECK(be);
  model = sgn_model_create(D, M, K, SGN_INIT_SYMMETRIC, 3);
  FUZZ_CHECK(model);
  for (int q = 0; q < 6; q++) {
    sgn_options o = sgn_options_default();
    o.solver = (sgn_solver)q;
    if (q == SGN_SOLVER_ADAM) o.batch = 4;
    if (q >= SGN_SOLVER_GN_EXACT) o.ridge = 0.1;
    ses[q] = sgn_session_create(be, model, X, Y, N, &o);
    FUZZ_CHECK(ses[q]);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!be) setup();
  if (size < 1) return 0;
  sgn_session *s = ses[data[0] % 6];
  const void *state = data + 1;
  const size_t bytes = size - 1;
  const double before = sgn_session_loss(s);
  sgn_status st = sgn_session_load_state(s, state, bytes);
  if (st != SGN_OK) {
    FUZZ_CHECK(st == SGN_E_INPUT);
    fuzz_check_message();
    FUZZ_CHECK(sgn_session_loss(s) == before || (isnan(before) && isnan(sgn_session_loss(s))));
    return 0;
  }
  FUZZ_CHECK(isfinite(sgn_session_loss(s)));
  void *again;
  size_t again_bytes;
  FUZZ_CHECK(sgn_session_save_state(s, &again, &again_bytes) == SGN_OK);
  /* It saves back as v5 (23 fields), byte for byte but for the loss (field 14), which loading
   * recomputes from W; an older state gains what it lacks: v1 (18 fields) the damping multiplier
   * 1.0 as field 18, v1 and v2 (19 fields) the kept preconditioner's damping 0 (unknown) as
   * field 19, v1 to v3 (20 fields) the preconditioner's form as field 20 (theirs is R, which this
   * CPU session keeps: 0), v1 to v4 (21 fields) no ridge (0, 0) as fields 21 and 22. A state
   * whose kept preconditioner is in the other form (R^-1) is turned into the session's on load,
   * so its bytes then differ by that inversion's rounding; W and the moments before it still come
   * back unchanged. */
  FUZZ_CHECK(again_bytes >= bytes && again_bytes - bytes <= 40 && (again_bytes - bytes) % 8 == 0);
  const size_t head_out = 23 * 8, head_in = head_out - (again_bytes - bytes), loss_at = 14 * 8;
  const char *in = state, *out = again;
  FUZZ_CHECK(memcmp(out + 8, in + 8, loss_at - 8) == 0);               /* seed .. counters */
  FUZZ_CHECK(memcmp(out + loss_at + 8, in + loss_at + 8, 3 * 8) == 0); /* loss0, lr, time */
  double loss, boost, pre_lambda;
  int64_t form_in = 0, form_out;
  memcpy(&loss, out + loss_at, sizeof loss);
  memcpy(&boost, out + 18 * 8, sizeof boost);
  memcpy(&pre_lambda, out + 19 * 8, sizeof pre_lambda);
  memcpy(&form_out, out + 20 * 8, sizeof form_out);
  if (head_in >= 21 * 8) memcpy(&form_in, in + 20 * 8, sizeof form_in);
  FUZZ_CHECK(loss == sgn_session_loss(s));
  FUZZ_CHECK(head_in == 18 * 8 ? boost == 1.0 : memcmp(out + 18 * 8, in + 18 * 8, 8) == 0);
  FUZZ_CHECK(head_in < 20 * 8 ? pre_lambda == 0.0 : memcmp(out + 19 * 8, in + 19 * 8, 8) == 0);
  FUZZ_CHECK(form_out == 0); /* the CPU session's form: R */
  double ridge_out[2];
  memcpy(ridge_out, out + 21 * 8, sizeof ridge_out);
  FUZZ_CHECK(head_in < head_out ? ridge_out[0] == 0 && ridge_out[1] == 0
                                : memcmp(out, in, 8) == 0 && memcmp(out + 21 * 8, in + 21 * 8, 16) == 0);
  if ((form_in != 0) == (form_out != 0)) /* W, moments, the kept preconditioner */
    FUZZ_CHECK(memcmp(out + head_out, in + head_in, bytes - head_in) == 0);
  else /* W alone (no moments: Adam keeps no preconditioner) */
    FUZZ_CHECK(memcmp(out + head_out, in + head_in, (size_t)M * D * sizeof(float)) == 0);
  free(again);
  sgn_step_info info;
  if (sgn_session_step(s, &info) == SGN_OK) FUZZ_CHECK(isfinite(info.loss));
  else fuzz_check_message();
  return 0;
}
