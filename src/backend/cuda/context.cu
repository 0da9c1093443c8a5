/* context.cu — what every file of the CUDA backend leans on (twin of cpu/context.c): the sticky
 * error the checks of cuda_check.h record into, the thread's current slot that the ops of
 * cuda/backend.cu set (an sgn_cuda_op_scope), the host's error recorder, the status strings of
 * the libraries, and the checked int conversion and scratch growth. Kept apart from the ops
 * table so the kernel files can use it without the table's file and theirs needing each other. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cuda_check.h"
#include "kernels.h"

extern "C" {
#include "backend_cuda.h"
}

static sgn_cuda_host host; /* what the host lent at sgn_cuda_plugin_entry */

static thread_local char *scope_error;      /* the sticky error of the op running on this thread */
static thread_local const char *scope_name; /* and that op's function */

void sgn_cuda_lend_host(const sgn_cuda_host *lent) { host = *lent; }

sgn_cuda_op_scope::sgn_cuda_op_scope(char *error, const char *name)
    : prev_error(scope_error), prev_name(scope_name) {
  scope_error = error, scope_name = name;
}

sgn_cuda_op_scope::~sgn_cuda_op_scope() { scope_error = prev_error, scope_name = prev_name; }

void sgn_cuda_op_forget(char *error) {
  if (scope_error == error) scope_error = NULL, scope_name = NULL;
}

/* The message as the running op's sticky error, first wins; outside an op, through the host's
 * recorder (sgn_last_error). */
static void record(const char *msg) {
  if (!scope_error) {
    sgn_cuda_fail(SGN_E_RUNTIME, "%s", msg);
    return;
  }
  if (scope_error[0]) return;
  snprintf(scope_error, SGN_CUDA_ERROR_LEN, "%s", msg);
}

extern "C" sgn_status sgn_cuda_fail(sgn_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (host.vfail) host.vfail(code, fmt, ap);
  va_end(ap);
  return code;
}

void sgn_cuda_fatal(const char *lib, long code, const char *what, const char *stmt,
                    const char *func, const char *file, int line) {
  char msg[512];
  const char *base = strrchr(file, '/');
  const int same = !scope_name || strcmp(scope_name, func) == 0;
  snprintf(msg, sizeof msg, "%s error %ld (%s) in %s%s%s at %s:%d: %s", lib, code,
           what ? what : "?", scope_name ? scope_name : func, same ? "" : ", ", same ? "" : func,
           base ? base + 1 : file, line, stmt);
  record(msg);
}

void sgn_cuda_error(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  record(msg);
}

const char *sgn_cusolver_string(cusolverStatus_t st) {
  switch (st) {
  case CUSOLVER_STATUS_SUCCESS: return "CUSOLVER_STATUS_SUCCESS";
  case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
  case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
  case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
  case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
  case CUSOLVER_STATUS_MAPPING_ERROR: return "CUSOLVER_STATUS_MAPPING_ERROR";
  case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
  case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
  case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
    return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
  case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
  case CUSOLVER_STATUS_ZERO_PIVOT: return "CUSOLVER_STATUS_ZERO_PIVOT";
  case CUSOLVER_STATUS_INVALID_LICENSE: return "CUSOLVER_STATUS_INVALID_LICENSE";
  case CUSOLVER_STATUS_INVALID_WORKSPACE: return "CUSOLVER_STATUS_INVALID_WORKSPACE";
  default: return "unrecognized cuSOLVER status";
  }
}

const char *sgn_cufft_string(cufftResult st) {
  switch (st) {
  case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
  case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
  case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
  case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
  case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
  case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
  case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
  case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
  case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
  case CUFFT_UNALIGNED_DATA: return "CUFFT_UNALIGNED_DATA";
  case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
  case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
  case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
  case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
  default: return "unrecognized cuFFT result";
  }
}

const char *sgn_curand_string(curandStatus_t st) {
  switch (st) {
  case CURAND_STATUS_SUCCESS: return "CURAND_STATUS_SUCCESS";
  case CURAND_STATUS_VERSION_MISMATCH: return "CURAND_STATUS_VERSION_MISMATCH";
  case CURAND_STATUS_NOT_INITIALIZED: return "CURAND_STATUS_NOT_INITIALIZED";
  case CURAND_STATUS_ALLOCATION_FAILED: return "CURAND_STATUS_ALLOCATION_FAILED";
  case CURAND_STATUS_TYPE_ERROR: return "CURAND_STATUS_TYPE_ERROR";
  case CURAND_STATUS_OUT_OF_RANGE: return "CURAND_STATUS_OUT_OF_RANGE";
  case CURAND_STATUS_LENGTH_NOT_MULTIPLE: return "CURAND_STATUS_LENGTH_NOT_MULTIPLE";
  case CURAND_STATUS_DOUBLE_PRECISION_REQUIRED: return "CURAND_STATUS_DOUBLE_PRECISION_REQUIRED";
  case CURAND_STATUS_LAUNCH_FAILURE: return "CURAND_STATUS_LAUNCH_FAILURE";
  case CURAND_STATUS_PREEXISTING_FAILURE: return "CURAND_STATUS_PREEXISTING_FAILURE";
  case CURAND_STATUS_INITIALIZATION_FAILED: return "CURAND_STATUS_INITIALIZATION_FAILED";
  case CURAND_STATUS_ARCH_MISMATCH: return "CURAND_STATUS_ARCH_MISMATCH";
  case CURAND_STATUS_INTERNAL_ERROR: return "CURAND_STATUS_INTERNAL_ERROR";
  default: return "unrecognized cuRAND status";
  }
}

int sgn_cuda_int(int64_t v, const char *what) {
  if (v < 0 || v > INT_MAX) {
    sgn_cuda_error("gpu backend: %s = %lld does not fit the 32-bit sizes of cuFFT", what,
                   (long long)v);
    return -1;
  }
  return (int)v;
}

void *sgn_cuda_grow(void **buf, size_t *cap, size_t bytes) {
  if (bytes <= *cap && *buf) return *buf;
  /* cudaFree synchronizes: nothing queued still uses the old buffer */
  const bool freed = !CUDA_FAILED(cudaFree(*buf));
  *buf = NULL, *cap = 0;
  if (!freed) return NULL;
  if (cudaMalloc(buf, bytes ? bytes : 1) != cudaSuccess) {
    (void)cudaGetLastError(); /* not sticky: clear it so the next launch check does not see it */
    *buf = NULL;
    sgn_cuda_error("gpu backend: out of device memory growing the scratch to %zu bytes", bytes);
    return NULL;
  }
  *cap = bytes;
  return *buf;
}
