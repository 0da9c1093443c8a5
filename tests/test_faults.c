/* test_faults.c — a failure inside the library leaves the caller running. A wrapper backend (the
 * CPU backend's ops table, copied, with some slots replaced) fails the Nth allocation, or has an
 * op record a sticky error the way the CUDA backend's checks do and return; the session, a test
 * set and sgn_evaluate must turn either into SGN_E_RUNTIME with a message that says what
 * failed, free what they allocated (the wrapper counts live allocations; make sanitize checks
 * the rest), and the process must go on to train on a fresh backend. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "rng.h"
#include "util.h"

/* ---- the wrapper backend ---- */

static sgn_backend *cpu;    /* the real backend underneath; its ctx is the wrapper's */
static sgn_backend_ops ops; /* cpu's ops with alloc, free, error and a few ops replaced */
static sgn_backend wrap;    /* {&ops, cpu->ctx} */

static long allocs;       /* alloc calls so far */
static long fail_at;      /* the alloc call that fails (1-based), 0: none */
static size_t fail_bytes; /* the bytes it asked for */
static long live;         /* allocations not yet freed */

static const char *fault_op; /* the op that records the sticky error, NULL: none */
static long fault_call;      /* on its Nth call (1-based) */
static long op_calls;        /* calls of fault_op so far */
static char err[256];        /* the sticky error, "" while none */

static void *wrap_alloc(void *ctx, size_t bytes) {
  if (++allocs == fail_at) {
    fail_bytes = bytes;
    return NULL;
  }
  void *p = cpu->ops->alloc(ctx, bytes);
  if (p) live++;
  return p;
}

static void wrap_free(void *ctx, void *p) {
  if (p) live--;
  cpu->ops->free(ctx, p);
}

static const char *wrap_error(void *ctx) {
  if (err[0]) return err;
  return cpu->ops->error ? cpu->ops->error(ctx) : NULL;
}

/* 1 when op `name` must not run: the backend has failed, or this call is the one that fails
 * (then it records the error as a CUDA check does). */
static int faulted(const char *name) {
  if (err[0]) return 1;
  if (!fault_op || strcmp(fault_op, name) != 0 || ++op_calls != fault_call) return 0;
  snprintf(err, sizeof err,
           "CUDA error 700 (an illegal memory access was encountered) in %s "
           "(src/backend/cuda/products.cu:212)",
           name);
  return 1;
}

static void wrap_forward(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                         float *work, uint32_t *M, float *F) {
  if (!faulted("forward")) cpu->ops->forward(ctx, dm, X, W, A, work, M, F);
}
static void wrap_jvp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                     const float *V, float *work, float *out) {
  if (!faulted("jvp")) cpu->ops->jvp(ctx, dm, X, M, A, V, work, out);
}
static void wrap_vjp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                     const float *Gv, float *work, float *out) {
  if (!faulted("vjp")) cpu->ops->vjp(ctx, dm, X, M, A, Gv, work, out);
}
static void wrap_gram(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                      int full, float *work, double *G) {
  if (!faulted("gram")) cpu->ops->gram(ctx, dm, X, M, A, full, work, G);
}
static int wrap_cholesky(void *ctx, int64_t N, double *G, double lambda, void *work) {
  return faulted("cholesky") ? 0 : cpu->ops->cholesky(ctx, N, G, lambda, work);
}
static void wrap_download(void *ctx, void *dst, const void *src, size_t bytes) {
  if (!faulted("download")) cpu->ops->download(ctx, dst, src, bytes);
}

static void wrap_open(void) {
  cpu = sgn_backend_cpu_open();
  cr_assert_not_null(cpu, "sgn_backend_cpu_open failed");
  ops = *cpu->ops;
  ops.alloc = wrap_alloc, ops.free = wrap_free, ops.error = wrap_error;
  ops.forward = wrap_forward, ops.jvp = wrap_jvp, ops.vjp = wrap_vjp, ops.gram = wrap_gram;
  ops.cholesky = wrap_cholesky, ops.download = wrap_download;
  wrap = (sgn_backend){&ops, cpu->ctx};
}

static void wrap_close(void) { sgn_backend_close(cpu); }

/* Back to a healthy wrapper with no fault armed (counters from 0). */
static void reset(void) {
  allocs = fail_at = 0, fail_bytes = 0;
  fault_op = NULL, fault_call = op_calls = 0;
  err[0] = '\0';
}

TestSuite(faults, .init = wrap_open, .fini = wrap_close, .timeout = 120);

/* ---- a small problem ---- */

#define NS 48 /* samples */
#define DS 4  /* inputs */
#define MS 64 /* hidden */
#define KS 2  /* outputs */

typedef struct problem {
  sgn_model *model;
  float X[NS * DS], Y[NS * KS];
} problem;

static problem *problem_make(void) {
  problem *p = calloc(1, sizeof *p);
  cr_assert_not_null(p);
  p->model = sgn_model_create(DS, MS, KS, SGN_INIT_SYMMETRIC, 7);
  cr_assert_not_null(p->model);
  for (int i = 0; i < NS * DS; i++) p->X[i] = (float)sgn_rng_normal(11, 1, (uint64_t)i);
  for (int i = 0; i < NS * KS; i++) p->Y[i] = (float)sgn_rng_normal(11, 2, (uint64_t)i);
  return p;
}

static void problem_free(problem *p) {
  sgn_model_free(p->model);
  free(p);
}

/* Every solver, and a batched one: between them every entry of the session's buffer list. */
typedef struct config {
  const char *name;
  sgn_solver solver;
  int64_t batch;
} config;

static const config configs[] = {
    {"gd", SGN_SOLVER_GD, 0},
    {"adam", SGN_SOLVER_ADAM, 16},
    {"gn-exact", SGN_SOLVER_GN_EXACT, 0},
    {"gn-cg", SGN_SOLVER_GN_CG, 0},
    {"gn-sketch", SGN_SOLVER_GN_SKETCH, 0},
    {"gn-gram", SGN_SOLVER_GN_GRAM, 0},
    {"gn-sketch batched", SGN_SOLVER_GN_SKETCH, 16},
};
#define NCONFIGS (sizeof configs / sizeof *configs)

static sgn_options options_of(const config *c) {
  sgn_options o = sgn_options_default();
  o.solver = c->solver;
  o.batch = c->batch;
  return o;
}

/* The message of a failed allocation names the bytes of the one that failed. */
static void expect_names_failed_alloc(const char *what) {
  char want[64];
  snprintf(want, sizeof want, "allocating %zu bytes failed", fail_bytes);
  cr_expect(strstr(sgn_last_error(), "out of memory") && strstr(sgn_last_error(), want),
            "%s: %s (want \"%s\")", what, sgn_last_error(), want);
}

/* ---- (a) a failed allocation ---- */

/* Each allocation of each configuration's session fails in turn: create returns NULL with
 * SGN_E_RUNTIME naming the bytes, allocates nothing after the failure, and frees what it had. */
Test(faults, every_session_allocation_can_fail) {
  problem *p = problem_make();
  for (size_t ci = 0; ci < NCONFIGS; ci++) {
    const sgn_options o = options_of(&configs[ci]);
    reset();
    sgn_session *s = sgn_session_create(&wrap, p->model, p->X, p->Y, NS, &o);
    cr_assert_not_null(s, "%s: %s", configs[ci].name, sgn_last_error());
    const long count = allocs;
    cr_expect_eq(live, count, "%s", configs[ci].name);
    sgn_session_free(s);
    cr_assert_eq(live, 0, "%s: %ld allocations left after free", configs[ci].name, live);
    cr_assert_gt(count, 15, "%s: %ld allocations", configs[ci].name, count);
    for (long n = 1; n <= count; n++) {
      reset();
      fail_at = n;
      s = sgn_session_create(&wrap, p->model, p->X, p->Y, NS, &o);
      cr_assert_null(s, "%s: allocation %ld of %ld failed unnoticed", configs[ci].name, n, count);
      cr_expect_eq(sgn_last_status(), SGN_E_RUNTIME, "%s #%ld", configs[ci].name, n);
      expect_names_failed_alloc(configs[ci].name);
      cr_expect_eq(allocs, n, "%s: %ld allocations after #%ld failed", configs[ci].name, allocs, n);
      cr_assert_eq(live, 0, "%s #%ld: %ld allocations leaked", configs[ci].name, n, live);
    }
  }
  problem_free(p);
}

/* Each of a test set's allocations fails in turn: SGN_E_RUNTIME naming the bytes, the session
 * keeps only its own buffers, and a second attach then succeeds and evaluates. */
Test(faults, every_test_set_allocation_can_fail) {
  problem *p = problem_make();
  const sgn_options o = sgn_options_default();
  reset();
  sgn_session *s = sgn_session_create(&wrap, p->model, p->X, p->Y, NS, &o);
  cr_assert_not_null(s, "%s", sgn_last_error());
  const long held = live;
  const int64_t nt = 20;
  allocs = 0;
  cr_assert_eq(sgn_session_attach_test(s, p->X, p->Y, nt), SGN_OK, "%s", sgn_last_error());
  const long count = allocs;
  cr_assert_eq(count, 5);
  sgn_session_free(s);
  cr_assert_eq(live, 0);

  for (long n = 1; n <= count; n++) {
    reset();
    s = sgn_session_create(&wrap, p->model, p->X, p->Y, NS, &o);
    cr_assert_not_null(s, "%s", sgn_last_error());
    allocs = 0, fail_at = n;
    cr_expect_eq(sgn_session_attach_test(s, p->X, p->Y, nt), SGN_E_RUNTIME, "#%ld", n);
    expect_names_failed_alloc("attach_test");
    cr_expect_eq(live, held, "#%ld: %ld allocations beyond the session's %ld", n, live, held);
    double loss = -1;
    cr_expect_eq(sgn_session_test(s, &loss, NULL), SGN_E_INPUT, "nothing attached after #%ld", n);
    fail_at = 0;
    cr_expect_eq(sgn_session_attach_test(s, p->X, p->Y, nt), SGN_OK, "%s", sgn_last_error());
    cr_expect_eq(sgn_session_test(s, &loss, NULL), SGN_OK, "%s", sgn_last_error());
    cr_expect(isfinite(loss) && loss > 0, "test loss %g", loss);
    sgn_session_free(s);
    cr_assert_eq(live, 0, "#%ld: %ld allocations leaked", n, live);
  }
  problem_free(p);
}

/* Each of sgn_evaluate's allocations fails in turn, with and without targets: SGN_E_RUNTIME
 * naming the bytes, nothing left allocated; unfaulted, the same call gives the session's loss. */
Test(faults, every_evaluate_allocation_can_fail) {
  problem *p = problem_make();
  float out[NS * KS];
  for (int targets = 0; targets < 2; targets++) {
    double loss = -1;
    reset();
    cr_assert_eq(
        sgn_evaluate(&wrap, p->model, p->X, targets ? p->Y : NULL, NS, targets ? &loss : NULL, out),
        SGN_OK, "%s", sgn_last_error());
    const long count = allocs;
    cr_assert_eq(count, targets ? 8 : 6);
    cr_assert_eq(live, 0);
    for (long n = 1; n <= count; n++) {
      reset();
      fail_at = n;
      cr_expect_eq(sgn_evaluate(&wrap, p->model, p->X, targets ? p->Y : NULL, NS,
                                targets ? &loss : NULL, out),
                   SGN_E_RUNTIME, "targets %d #%ld", targets, n);
      expect_names_failed_alloc("evaluate");
      cr_assert_eq(live, 0, "targets %d #%ld: %ld allocations leaked", targets, n, live);
    }
  }
  problem_free(p);
}

/* ---- (b) a sticky error inside an op ---- */

static void expect_cuda_error(const char *what, sgn_status st, const char *op) {
  char want[128];
  snprintf(want, sizeof want,
           "gpu backend: CUDA error 700 (an illegal memory access was "
           "encountered) in %s",
           op);
  cr_expect_eq(st, SGN_E_RUNTIME, "%s: status %d", what, (int)st);
  cr_expect(strncmp(sgn_last_error(), want, strlen(want)) == 0, "%s: %s", what, sgn_last_error());
}

/* Trains three steps of gn-sketch on a fresh CPU backend, the loss going down: the process is
 * still fine. */
static void train_on_a_fresh_backend(problem *p) {
  sgn_backend *be = sgn_backend_cpu_open();
  cr_assert_not_null(be);
  sgn_session *s = sgn_session_create(be, p->model, p->X, p->Y, NS, NULL);
  cr_assert_not_null(s, "%s", sgn_last_error());
  sgn_step_info info;
  for (int i = 0; i < 3; i++)
    cr_assert_eq(sgn_session_step(s, &info), SGN_OK, "%s", sgn_last_error());
  cr_expect_lt(sgn_session_loss(s), sgn_session_initial_loss(s));
  sgn_session_free(s);
  sgn_backend_close(be);
}

/* A fault in a step's op (its first call, or one mid-solve; armed after a clean step, or from
 * the first step where only that one calls the op): that step and the next return
 * SGN_E_RUNTIME with the backend's message, so do outputs, sync, the test set, saving and
 * loading the state, and sgn_evaluate on that backend; free works, nothing leaks, and a fresh
 * session on a fresh backend trains. */
Test(faults, a_sticky_error_in_a_step_reaches_the_caller) {
  static const struct {
    sgn_solver solver;
    const char *op;
    long call;
    int clean_steps; /* steps before the fault is armed */
  } cases[] = {
      {SGN_SOLVER_GN_SKETCH, "jvp", 1, 1},     {SGN_SOLVER_GN_SKETCH, "jvp", 4, 1},
      {SGN_SOLVER_GN_CG, "jvp", 3, 1},         {SGN_SOLVER_GN_EXACT, "gram", 1, 1},
      {SGN_SOLVER_GN_EXACT, "cholesky", 1, 1}, {SGN_SOLVER_GN_GRAM, "cholesky", 1, 0},
      {SGN_SOLVER_GN_GRAM, "gram", 1, 0},      {SGN_SOLVER_GD, "vjp", 1, 1},
      {SGN_SOLVER_ADAM, "forward", 2, 1},      {SGN_SOLVER_GN_SKETCH, "forward", 3, 1},
  };
  problem *p = problem_make();
  ops.name = "gpu"; /* messages read as they would from the CUDA backend */
  float out[NS * KS];
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const char *op = cases[i].op;
    reset();
    sgn_options o = sgn_options_default();
    o.solver = cases[i].solver;
    sgn_session *s = sgn_session_create(&wrap, p->model, p->X, p->Y, NS, &o);
    cr_assert_not_null(s, "%s", sgn_last_error());
    cr_assert_eq(sgn_session_attach_test(s, p->X, p->Y, NS), SGN_OK, "%s", sgn_last_error());
    sgn_step_info info;
    for (int t = 0; t < cases[i].clean_steps; t++)
      cr_assert_eq(sgn_session_step(s, &info), SGN_OK, "case %zu: %s", i, sgn_last_error());
    void *state = NULL;
    size_t state_bytes = 0;
    cr_assert_eq(sgn_session_save_state(s, &state, &state_bytes), SGN_OK, "%s", sgn_last_error());
    op_calls = 0, fault_op = op, fault_call = cases[i].call;
    sgn_status st = SGN_OK;
    for (int t = 0; t < 5 && st == SGN_OK; t++) st = sgn_session_step(s, &info);
    cr_assert(err[0], "case %zu: %s never reached its call %ld", i, op, cases[i].call);
    expect_cuda_error("the step", st, op);
    const int64_t steps = sgn_session_steps(s);
    expect_cuda_error("the next step", sgn_session_step(s, &info), op);
    cr_expect_eq(sgn_session_steps(s), steps, "a failed backend took another step");
    expect_cuda_error("outputs", sgn_session_outputs(s, out), op);
    expect_cuda_error("sync", sgn_session_sync(s), op);
    double loss;
    expect_cuda_error("test", sgn_session_test(s, &loss, NULL), op);
    void *buf = NULL;
    size_t bytes = 0;
    expect_cuda_error("save_state", sgn_session_save_state(s, &buf, &bytes), op);
    cr_expect_null(buf);
    expect_cuda_error("load_state", sgn_session_load_state(s, state, state_bytes), op);
    free(state);
    expect_cuda_error("evaluate", sgn_evaluate(&wrap, p->model, p->X, p->Y, NS, &loss, out), op);
    sgn_session_free(s);
    cr_expect_eq(live, 0, "case %zu: %ld allocations leaked", i, live);
  }
  ops.name = cpu->ops->name;
  train_on_a_fresh_backend(p);
  problem_free(p);
}

/* A fault while creating (the step-0 forward pass, the upload of the loss's outputs) or
 * evaluating: NULL / SGN_E_RUNTIME with the backend's message and nothing left allocated. */
Test(faults, a_sticky_error_in_create_or_evaluate_reaches_the_caller) {
  problem *p = problem_make();
  ops.name = "gpu";
  reset();
  fault_op = "forward", fault_call = 1;
  sgn_session *s = sgn_session_create(&wrap, p->model, p->X, p->Y, NS, NULL);
  cr_expect_null(s);
  expect_cuda_error("create", sgn_last_status(), "forward");
  cr_expect_eq(live, 0, "%ld allocations leaked", live);
  sgn_session_free(s);

  float out[NS * KS];
  double loss;
  for (int targets = 0; targets < 2; targets++) {
    reset();
    fault_op = targets ? "forward" : "download", fault_call = 1;
    const sgn_status st = sgn_evaluate(&wrap, p->model, p->X, targets ? p->Y : NULL, NS,
                                       targets ? &loss : NULL, out);
    expect_cuda_error("evaluate", st, fault_op);
    cr_expect_eq(live, 0, "%ld allocations leaked", live);
  }
  ops.name = cpu->ops->name;
  train_on_a_fresh_backend(p);
  problem_free(p);
}
