/* test_costmodel.c — the memory verdict of --solver auto: each candidate's bytes are the
 * session's own count on its backend (session.h), at the narrowest neuron chunk the session
 * would run in, so a solver is ruled out only when the session itself would refuse it; and auto,
 * under a budget that only the chunked layouts fit, picks a solver whose session then runs in
 * chunks. (The time estimates are tested in test_bench.c.) */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "costmodel.h"
#include "rng.h"
#include "session.h"

static const sgn_solver gn[3] = {SGN_SOLVER_GN_EXACT, SGN_SOLVER_GN_GRAM, SGN_SOLVER_GN_SKETCH};
static const char *const gn_name[3] = {"gn-exact", "gn-gram", "gn-sketch"};

static sgn_backend *be;

static void open_backend(void) {
  be = sgn_backend_cpu_open();
  cr_assert_not_null(be, "sgn_backend_cpu_open failed");
}

static void close_backend(void) { sgn_backend_close(be); }

/* what auto hands the cost model: each candidate's fewest bytes on be, in its order */
static void candidate_bytes(sgn_dims dm, const sgn_options *opt, double need[3]) {
  sgn_options o = *opt;
  for (int i = 0; i < SGN_COSTMODEL_CANDIDATES; i++) {
    o.solver = sgn_costmodel_candidates[i];
    need[i] = (double)sgn_session_mem_bytes_min(be, dm, &o);
  }
}

/* a small problem: unit-norm random inputs, random targets */
typedef struct problem {
  sgn_model *model;
  float *X, *Y;
  int64_t n;
} problem;

static problem problem_make(sgn_dims dm) {
  problem p = {sgn_model_create(dm.d, dm.m, dm.k, SGN_INIT_SYMMETRIC, 5), NULL, NULL, dm.n};
  cr_assert(p.model);
  p.X = calloc((size_t)(dm.n * dm.d), sizeof(float));
  p.Y = calloc((size_t)(dm.n * dm.k), sizeof(float));
  cr_assert(p.X && p.Y);
  for (int64_t i = 0; i < dm.n; i++) {
    double nrm = 0;
    for (int64_t j = 0; j < dm.d; j++) {
      p.X[i * dm.d + j] = (float)sgn_rng_normal(3, SGN_STREAM_SYNTH_X, (uint64_t)(i * dm.d + j));
      nrm += (double)p.X[i * dm.d + j] * p.X[i * dm.d + j];
    }
    for (int64_t j = 0; j < dm.d; j++) p.X[i * dm.d + j] = (float)(p.X[i * dm.d + j] / sqrt(nrm));
  }
  for (int64_t i = 0; i < dm.n * dm.k; i++) p.Y[i] = (float)sgn_rng_normal(3, 14, (uint64_t)i);
  return p;
}

static void problem_free(problem *p) {
  sgn_model_free(p->model);
  free(p->X), free(p->Y);
}

/* For each Gauss-Newton solver, on a shape whose (n, m) work dwarfs the rest: the cost model's
 * bytes are exactly the least a session accepts (a budget of that many bytes is accepted, in
 * chunks, one byte less is refused), and well under the unchunked layout. */
Test(costmodel_memory, estimate_is_the_sessions_own_threshold, .init = open_backend,
     .fini = close_backend, .timeout = 120) {
  const sgn_dims dm = {200, 4, 8192, 2, 0, 0};
  problem p = problem_make(dm);
  double need[3];
  const sgn_options o0 = sgn_options_default();
  candidate_bytes(dm, &o0, need);
  for (int i = 0; i < 3; i++) {
    sgn_options o = sgn_options_default();
    o.solver = gn[i];
    cr_assert_eq(sgn_costmodel_candidates[i], gn[i]);
    const double est = need[i];
    const double whole = (double)sgn_session_mem_bytes(be, dm, &o);
    cr_expect_eq(est, (double)sgn_session_mem_bytes_min(be, dm, &o), "%s", gn_name[i]);
    cr_expect(est < 0.5 * whole, "%s: chunked minimum %.0f vs unchunked %.0f", gn_name[i], est,
              whole);
    o.max_memory = est;
    sgn_session *s = sgn_session_create(be, p.model, p.X, p.Y, p.n, &o);
    cr_expect_not_null(s, "%s at its estimate %.0f: %s", gn_name[i], est, sgn_last_error());
    cr_expect(s && sgn_session_chunk_neurons(s) > 0, "%s did not chunk", gn_name[i]);
    sgn_session_free(s);
    o.max_memory = est - 1;
    s = sgn_session_create(be, p.model, p.X, p.Y, p.n, &o);
    cr_expect_null(s, "%s accepted one byte under the estimate", gn_name[i]);
    sgn_session_free(s);
  }
  problem_free(&p);
}

/* A forced chunk width is what the estimate counts; no chunk (m <= 64) is the whole layout. */
Test(costmodel_memory, estimate_follows_forced_and_impossible_chunks, .init = open_backend,
     .fini = close_backend) {
  sgn_options o = sgn_options_default();
  sgn_dims dm = {300, 8, 4096, 1, 0, 0};
  double need[3];
  o.chunk_neurons = 512;
  sgn_dims c512 = dm;
  c512.mc = 512;
  o.solver = SGN_SOLVER_GN_SKETCH;
  candidate_bytes(dm, &o, need);
  cr_expect_eq(need[2], (double)sgn_session_mem_bytes(be, c512, &o));
  o.chunk_neurons = 0;
  dm.m = 64;
  candidate_bytes(dm, &o, need);
  cr_expect_eq(need[2], (double)sgn_session_mem_bytes(be, dm, &o));
}

/* A budget under every solver's unchunked layout but over their chunked minima: auto names no
 * solver as not fitting, and its session runs, in chunks, within the budget. */
Test(costmodel_memory, auto_picks_a_solver_only_chunks_fit, .init = open_backend,
     .fini = close_backend, .timeout = 120) {
  const sgn_dims dm = {256, 4, 16384, 1, 0, 0};
  sgn_options o = sgn_options_default();
  double most_chunked = 0, least_whole = INFINITY, need[3];
  candidate_bytes(dm, &o, need);
  for (int i = 0; i < 3; i++) {
    o.solver = gn[i];
    most_chunked = fmax(most_chunked, need[i]);
    least_whole = fmin(least_whole, (double)sgn_session_mem_bytes(be, dm, &o));
  }
  const double budget = most_chunked / 0.8; /* above the model's 15% margin */
  cr_assert_lt(budget, least_whole, "the shape does not separate chunked from whole");
  o = sgn_options_default();
  char why[400];
  const sgn_cost_rates cpu = sgn_costmodel_rates("cpu");
  const sgn_solver pick = sgn_costmodel_choose(dm, &o, &cpu, need, budget, why, sizeof why);
  cr_expect_null(strstr(why, "does not fit"), "%s", why);
  cr_expect_null(strstr(why, "none fits"), "%s", why);

  problem p = problem_make(dm);
  o.solver = SGN_SOLVER_AUTO;
  o.max_memory = budget;
  sgn_session *s = sgn_session_create(be, p.model, p.X, p.Y, p.n, &o);
  cr_assert_not_null(s, "auto under %.0f bytes: %s", budget, sgn_last_error());
  cr_expect_eq(sgn_session_solver(s), pick, "%s", sgn_session_solver_reason(s));
  cr_expect_gt(sgn_session_chunk_neurons(s), 0);
  sgn_step_info info;
  cr_expect_eq(sgn_session_step(s, &info), SGN_OK, "%s", sgn_last_error());
  cr_expect_lt(info.loss, info.loss_before);
  sgn_session_free(s);
  problem_free(&p);
}

/* The model is pure arithmetic on the bytes it is handed: the same shape and rates give the
 * fastest candidate when its bytes fit, another when only the handed bytes say it does not, and
 * the smallest when none fits. */
Test(costmodel_memory, verdict_follows_the_bytes_it_is_given) {
  const sgn_dims dm = {64, 8, 1 << 20, 1, 0, 0}; /* gn-exact is the fastest here (test_bench.c) */
  const sgn_options o = sgn_options_default();
  const sgn_cost_rates cpu = sgn_costmodel_rates("cpu");
  char why[400];
  const double small[3] = {1e6, 1e6, 1e6}, exact_big[3] = {1e12, 2e6, 1e6};
  cr_expect_eq(sgn_costmodel_choose(dm, &o, &cpu, small, 1e9, why, sizeof why), SGN_SOLVER_GN_EXACT,
               "%s", why);
  cr_expect_neq(sgn_costmodel_choose(dm, &o, &cpu, exact_big, 1e9, why, sizeof why),
                SGN_SOLVER_GN_EXACT, "%s", why);
  cr_expect(strstr(why, "gn-exact") && strstr(why, "does not fit"), "%s", why);
  cr_expect_eq(sgn_costmodel_choose(dm, &o, &cpu, exact_big, 0, why, sizeof why),
               SGN_SOLVER_GN_EXACT, "unknown memory rules nothing out: %s", why);
  cr_expect_eq(sgn_costmodel_choose(dm, &o, &cpu, exact_big, 1e3, why, sizeof why),
               SGN_SOLVER_GN_SKETCH, "none fits: the smallest: %s", why);
  cr_expect(strstr(why, "none fits"), "%s", why);
}

/* gn-sketch on the CPU never holds the sketch Y (n, s) whole: at n = 16384 (s = 4n) the session
 * counts R (8 n^2 bytes), a panel of Y's columns and the block rows it is cut from, and the
 * network's arrays, within 3 n^2 floats, where Y alone was 4 n^2 floats. */
Test(costmodel_memory, sketch_counts_panels_not_y, .init = open_backend, .fini = close_backend) {
  const int64_t n = 16384;
  const sgn_dims dm = {n, 4, 1024, 1, 0, 0};
  sgn_options o = sgn_options_default();
  o.solver = SGN_SOLVER_GN_SKETCH;
  o.sketch_ratio = 4;
  const double bytes = (double)sgn_session_mem_bytes(be, dm, &o);
  const double nn = (double)n * (double)n;
  cr_expect_leq(bytes, 12.0 * nn, "gn-sketch at n = %ld: %.3g bytes, %.2f n^2 floats", (long)n,
                bytes, bytes / (4.0 * nn));
  cr_expect_geq(bytes, 8.0 * nn, "R alone is 8 n^2 bytes: %.3g", bytes);
}

/* bench --largest-n's bisection: the n it returns fits the budget and n + 1 does not, for every
 * solver and for separate outputs' Gram blocks; a budget below one sample gives 0. */
Test(costmodel_memory, max_n_is_the_largest_that_fits, .init = open_backend,
     .fini = close_backend) {
  const sgn_solver solvers[5] = {SGN_SOLVER_GN_EXACT, SGN_SOLVER_GN_GRAM, SGN_SOLVER_GN_SKETCH,
                                 SGN_SOLVER_GN_CG, SGN_SOLVER_ADAM};
  const sgn_dims shapes[3] = {
      {0, 4, 1280, 1, 0, 0}, {0, 4, 1280, 10, 0, 0}, {0, 4, 1280, 10, 0, 10}};
  const double budget = 3e8;
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 3; j++) {
      sgn_options o = sgn_options_default();
      o.solver = solvers[i];
      sgn_dims dm = shapes[j];
      const int64_t n = sgn_session_max_n(be, dm, &o, budget);
      cr_assert_gt(n, 0, "solver %d shape %d", i, j);
      dm.n = n;
      cr_expect_leq((double)sgn_session_mem_bytes_min(be, dm, &o), budget, "n = %ld", (long)n);
      dm.n = n + 1;
      cr_expect_gt((double)sgn_session_mem_bytes_min(be, dm, &o), budget, "n + 1 = %ld",
                   (long)(n + 1));
      cr_expect_eq(sgn_session_max_n(be, dm, &o, 100.0), 0, "a budget of 100 bytes");
    }
}

/* A float32 precision of the sketch Gram (sgn_options.precision) counts the same n (n + 1) s
 * flops at the float32 GEMM rate instead of DSYRK's, so the step's flops stay and its estimated
 * time drops on the CPU, whose rates put DSYRK below SGEMM; fp64 counts no GEMM for it. */
Test(costmodel_time, precision_moves_the_sketch_gram_to_float32) {
  const sgn_dims dm = {4096, 32, 4096, 1, 0, 0};
  const sgn_cost_step st = {12, 1, 0, 0};
  const sgn_cost_rates cpu = sgn_costmodel_rates("cpu");
  sgn_options o = sgn_options_default();
  const sgn_cost c64 = sgn_costmodel_step(SGN_SOLVER_GN_SKETCH, dm, &o, st);
  const double s = 4.0 * 4096;
  cr_assert_eq(c64.syrk, 4096.0 * 4097.0 * s);
  for (int p = SGN_PRECISION_FP32; p <= SGN_PRECISION_BF16; p++) {
    o.precision = (sgn_precision)p;
    const sgn_cost c = sgn_costmodel_step(SGN_SOLVER_GN_SKETCH, dm, &o, st);
    cr_assert_eq(c.syrk, 0.0, "precision %d", p);
    cr_assert_eq(c.gemm - c64.gemm, c64.syrk, "precision %d", p);
    cr_assert_eq(sgn_cost_flops(&c), sgn_cost_flops(&c64), "precision %d", p);
    cr_assert_lt(sgn_cost_seconds(&c, &cpu), sgn_cost_seconds(&c64, &cpu), "precision %d", p);
  }
}
