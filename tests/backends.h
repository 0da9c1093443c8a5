/* backends.h — the backends a property suite runs on, in the spirit of ggml's test-backend-ops:
 * every case runs on the CPU and on the GPU when one answers (cr_skip_test when none does).
 * CUDA is touched only inside a test (Criterion forks each one; a child of a CUDA-initialized
 * parent cannot use CUDA): the GPU backend is opened in the test body, through the plugin.
 * Buffers go through the backend's upload/download, so one test body serves every backend;
 * those from the helpers below are freed in backend_close (the tests' .fini). Each suite is its
 * own program, so everything here is static. */
#ifndef SGN_TESTS_BACKENDS_H
#define SGN_TESTS_BACKENDS_H

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_cuda.h"

/* Every backend, the oracle first. */
static const sgn_device test_devices[] = {SGN_DEVICE_CPU, SGN_DEVICE_GPU};
#define TEST_NDEVICES (sizeof test_devices / sizeof test_devices[0])

static sgn_backend *be; /* the backend of the running test */

/* buffers to free in backend_close: on the backend, and on the host */
static void **be_bufs, **host_bufs;
static size_t n_be_bufs, n_host_bufs, cap_be_bufs, cap_host_bufs;

static inline void keep(void ***list, size_t *len, size_t *cap, void *p) {
  if (*len == *cap) {
    *cap = *cap ? 2 * *cap : 64;
    *list = realloc(*list, *cap * sizeof **list);
    cr_assert_not_null(*list);
  }
  (*list)[(*len)++] = p;
}

/* Skips the running test, or fails it when SKETCHGN_REQUIRE_GPU is set (`make test-emu`, where
 * a GPU backend must open). */
#define skip_or_fail_gpu(...)                                                                \
  do {                                                                                       \
    if (getenv("SKETCHGN_REQUIRE_GPU")) cr_assert_fail(__VA_ARGS__);                         \
    cr_skip_test(__VA_ARGS__);                                                               \
  } while (0)

/* Opens the backend of dev into be, or skips the test when dev is the GPU and none answers
 * (no plugin, no device); a GPU that answers but does not open is a failure. */
static inline void backend_open(sgn_device dev) {
  if (dev == SGN_DEVICE_GPU) {
    if (!sgn_cuda_plugin_path()) skip_or_fail_gpu("no CUDA backend: %s", sgn_last_error());
    if (sgn_cuda_device_count() < 1) skip_or_fail_gpu("no CUDA device answers");
  }
  be = sgn_backend_open(dev);
  cr_assert_not_null(be, "backend %d: %s", (int)dev, sgn_last_error());
}

static inline void open_cpu(void) { backend_open(SGN_DEVICE_CPU); }

/* .fini of every test that opened a backend */
static inline void backend_close(void) {
  for (size_t i = 0; be && i < n_be_bufs; i++) be->ops->free(be->ctx, be_bufs[i]);
  for (size_t i = 0; i < n_host_bufs; i++) free(host_bufs[i]);
  n_be_bufs = n_host_bufs = 0;
  sgn_backend_close(be);
  be = NULL;
}

/* zero-filled backend memory */
static inline void *dev_alloc(size_t bytes) {
  void *p = be->ops->alloc(be->ctx, bytes);
  cr_assert_not_null(p, "%s alloc(%zu): %s", be->ops->name, bytes, sgn_last_error());
  keep(&be_bufs, &n_be_bufs, &cap_be_bufs, p);
  return p;
}

/* frees a dev_alloc buffer before the test ends (loops that would pile them up) */
static inline void dev_free(void *p) {
  for (size_t i = 0; i < n_be_bufs; i++)
    if (be_bufs[i] == p) {
      be_bufs[i] = be_bufs[--n_be_bufs];
      be->ops->free(be->ctx, p);
      return;
    }
  cr_assert_fail("dev_free of a buffer not from dev_alloc");
}

/* zero-filled host memory */
static inline void *host_alloc(size_t bytes) {
  void *p = calloc(bytes ? bytes : 1, 1);
  cr_assert_not_null(p);
  keep(&host_bufs, &n_host_bufs, &cap_host_bufs, p);
  return p;
}

/* a backend copy of host memory */
static inline void *dev_from(const void *host, size_t bytes) {
  void *p = dev_alloc(bytes);
  be->ops->upload(be->ctx, p, host, bytes);
  return p;
}

/* a host copy of backend memory */
static inline void *host_from(const void *dev, size_t bytes) {
  void *p = host_alloc(bytes);
  be->ops->download(be->ctx, p, dev, bytes);
  return p;
}

/* download into existing host memory */
static inline void download(void *host, const void *dev, size_t bytes) {
  be->ops->download(be->ctx, host, dev, bytes);
}

/* ---- parameters: every case of a table on every backend ---- */

static inline void backend_params_free(struct criterion_test_params *crp) { cr_free(crp->params); }

/* The body of a ParameterizedTestParameters: the cases of table (a static array) on each of
 * test_devices, as an array of param_type, a struct {case; sgn_device dev;}. cr_malloc: the
 * parameters must be readable from the forked tests. */
#define BACKEND_PARAMS(param_type, table)                                                \
  do {                                                                                   \
    const size_t n_ = sizeof(table) / sizeof(table)[0];                                  \
    param_type *p_ = cr_malloc(TEST_NDEVICES * n_ * sizeof *p_);                         \
    cr_assert_not_null(p_);                                                              \
    for (size_t b_ = 0; b_ < TEST_NDEVICES; b_++)                                        \
      for (size_t i_ = 0; i_ < n_; i_++)                                                 \
        p_[b_ * n_ + i_] = (param_type){(table)[i_], test_devices[b_]};                  \
    return cr_make_param_array(param_type, p_, TEST_NDEVICES * n_, backend_params_free); \
  } while (0)

/* The product precisions (backend.h set_product_precision) a test of the products' exact
 * properties runs each case at. */
static const sgn_precision test_product_precisions[] = {SGN_PRECISION_FP32, SGN_PRECISION_TF32,
                                                        SGN_PRECISION_BF16};
#define TEST_NPRECISIONS (sizeof test_product_precisions / sizeof test_product_precisions[0])

/* BACKEND_PARAMS with every case at every product precision: param_type is a struct
 * {case; sgn_precision prec; sgn_device dev;}. */
#define BACKEND_PRECISION_PARAMS(param_type, table)                                              \
  do {                                                                                           \
    const size_t n_ = sizeof(table) / sizeof(table)[0], np_ = TEST_NPRECISIONS;                  \
    param_type *p_ = cr_malloc(TEST_NDEVICES * n_ * np_ * sizeof *p_);                           \
    cr_assert_not_null(p_);                                                                      \
    for (size_t b_ = 0; b_ < TEST_NDEVICES; b_++)                                                \
      for (size_t i_ = 0; i_ < n_; i_++)                                                         \
        for (size_t q_ = 0; q_ < np_; q_++)                                                      \
          p_[(b_ * n_ + i_) * np_ + q_] = (param_type){(table)[i_], test_product_precisions[q_], \
                                                       test_devices[b_]};                        \
    return cr_make_param_array(param_type, p_, TEST_NDEVICES * n_ * np_, backend_params_free);   \
  } while (0)

/* The one-case tables of tests that take only the backend as their parameter. */
typedef struct on_device {
  int unused;
  sgn_device dev;
} on_device;
static const int single_case[] = {0};
#define DEVICE_PARAMS() BACKEND_PARAMS(on_device, single_case)

#endif
