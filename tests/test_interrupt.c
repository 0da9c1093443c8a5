/* test_interrupt.c — sgn_session_interrupt from another thread stops a step inside one long
 * backend call, not after it: gn-exact's Gram and blocked Cholesky, gn-sketch's panels of the
 * sketch and their DSYRKs (backend.h set_stop). The step returns SGN_E_INTERRUPTED within
 * LATENCY_S of the request, the session is that of the last completed step (W, loss, step
 * count), and the next step runs as any step does, with no damping raised for the dropped one.
 *
 * Shapes: the (n, n) float64 factor is the long part, n^3 / 3 flops for the Cholesky and
 * n^2 s for the sketch's DSYRKs. gn-exact at n = 6000: the Gram 0.24 s, the Cholesky 1.9 s on one
 * core of this repository's Xeon while shared (1 s alone); gn-sketch at n = 4608 (s = 4 n: Y in
 * panels, cpu/sketch.h) about 5 s. The request comes INTERRUPT_AFTER_S into the first step, so
 * inside the Cholesky (inside the Gram on a slower machine).
 * LATENCY_S  1.5 s: the CPU backend reads the flag every 2e9 flops or so (cpu/linalg.c), 0.013 s
 *            at the 150 GFLOP/s of two cores, 0.1-0.2 s on one shared core; measured [printed]
 *            0.01-0.27 s for gn-exact, 0.02-0.19 s for gn-sketch, single-threaded, the two
 *            tests side by side at a load of 4-5 on the two cores. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "sketchgn.h"
#include "sketchgn_io.h"

#define LATENCY_S 1.5
#define INTERRUPT_AFTER_S 0.5
#define MAX_STEPS 20

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct interrupter {
  sgn_session *ses;
  double delay_s;
  double at; /* when the request was made */
} interrupter;

static void *interrupt_later(void *arg) {
  interrupter *it = arg;
  const struct timespec d = {(time_t)it->delay_s,
                             (long)((it->delay_s - (double)(time_t)it->delay_s) * 1e9)};
  nanosleep(&d, NULL);
  it->at = now_s();
  sgn_session_interrupt(it->ses);
  return NULL;
}

/* Steps a session of `solver` on synth:n (d 8, width 64, damping 1e-3) until a request made
 * INTERRUPT_AFTER_S after the first step began stops one; checks the latency and the session
 * left behind; with next_step, runs one more step. */
static void check_interrupt(sgn_solver solver, int64_t n, int next_step) {
  const int64_t d = 8, m = 64;
  sgn_dataset ds;
  cr_assert_eq(sgn_data_synth(n, d, 1, 1, 1.0, &ds), SGN_OK, "%s", sgn_last_error());
  sgn_model *model = sgn_model_create(ds.d, m, ds.k, SGN_INIT_SYMMETRIC, 7);
  sgn_backend *be = sgn_backend_cpu_open();
  cr_assert(model && be, "%s", sgn_last_error());
  sgn_options o = sgn_options_default();
  o.solver = solver;
  o.damping = 1e-3; /* n > m d: the Gram is singular, this keeps G + lambda I factorable */
  sgn_session *ses = sgn_session_create(be, model, ds.X, ds.Y, ds.n, &o);
  cr_assert_not_null(ses, "%s", sgn_last_error());

  float *W = malloc(sizeof(float) * (size_t)(m * d)); /* W of the last completed step */
  cr_assert_eq(sgn_session_sync(ses), SGN_OK);
  memcpy(W, model->W, sizeof(float) * (size_t)(m * d));
  double loss = sgn_session_loss(ses);
  int64_t done = 0;

  interrupter it = {ses, INTERRUPT_AFTER_S, 0.0};
  pthread_t th;
  const double t0 = now_s();
  cr_assert_eq(pthread_create(&th, NULL, interrupt_later, &it), 0);
  sgn_status st = SGN_OK;
  sgn_step_info info;
  double step_s = 0.0;
  for (int i = 0; i < MAX_STEPS; i++) {
    const double ts = now_s();
    st = sgn_session_step(ses, &info);
    step_s = now_s() - ts;
    if (st != SGN_OK) break;
    done++;
    cr_assert_eq(sgn_session_sync(ses), SGN_OK);
    memcpy(W, model->W, sizeof(float) * (size_t)(m * d));
    loss = sgn_session_loss(ses);
  }
  const double back = now_s();
  pthread_join(th, NULL);
  cr_assert_eq(st, SGN_E_INTERRUPTED, "%s: status %d after %lld steps: %s",
               sgn_name(SGN_NAMES_SOLVER, (int)solver), (int)st, (long long)done, sgn_last_error());
  fprintf(stderr,
          "%s n=%lld: interrupted %.3f s into step %lld (%.3f s after the start), returned %.3f s "
          "after the request\n",
          sgn_name(SGN_NAMES_SOLVER, (int)solver), (long long)n, step_s - (back - it.at),
          (long long)done + 1, it.at - t0, back - it.at);
  cr_expect(back - it.at <= LATENCY_S, "%s: the step returned %.3f s after the request",
            sgn_name(SGN_NAMES_SOLVER, (int)solver), back - it.at);
  cr_expect_eq(info.damping_raised, 0, "%s: the stopped step raised the damping",
               sgn_name(SGN_NAMES_SOLVER, (int)solver));

  /* the session of the last completed step */
  cr_expect_eq(sgn_session_steps(ses), done);
  cr_expect(sgn_session_loss(ses) == loss, "%s: loss %.9g, want %.9g",
            sgn_name(SGN_NAMES_SOLVER, (int)solver), sgn_session_loss(ses), loss);
  cr_assert_eq(sgn_session_sync(ses), SGN_OK);
  cr_expect(memcmp(model->W, W, sizeof(float) * (size_t)(m * d)) == 0,
            "%s: W is not that of step %lld", sgn_name(SGN_NAMES_SOLVER, (int)solver),
            (long long)done);

  if (next_step) { /* the request is spent: the next step runs whole */
    cr_assert_eq(sgn_session_step(ses, &info), SGN_OK, "%s", sgn_last_error());
    cr_expect_eq(info.step, done + 1);
    cr_expect_eq(info.damping_raised, 0, "%s: the step after the stop raised the damping",
                 sgn_name(SGN_NAMES_SOLVER, (int)solver));
    cr_expect(info.loss < loss, "%s: loss %.9g after the step, %.9g before",
              sgn_name(SGN_NAMES_SOLVER, (int)solver), info.loss, loss);
  }
  free(W);
  sgn_session_free(ses);
  sgn_backend_close(be);
  sgn_model_free(model);
  sgn_dataset_free(&ds);
}

TestSuite(interrupt, .timeout = 120);

Test(interrupt, stops_gn_exact_inside_its_cholesky) {
  check_interrupt(SGN_SOLVER_GN_EXACT, 6000, 1);
}

Test(interrupt, stops_gn_sketch_inside_its_sketch_panels) {
  check_interrupt(SGN_SOLVER_GN_SKETCH, 4608, 0);
}
