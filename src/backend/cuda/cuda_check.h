/* cuda_check.h — error checks for every CUDA, cuBLAS, cuSOLVER, cuFFT and cuRAND call, from one
 * generic test. A failing call becomes the backend's sticky error (backend.h's error slot),
 * one line naming the library, its code and string, the op and function, file:line and the
 * statement; the first failure wins. Nothing ends the process: *_CHECK returns -1 from the
 * function it is in (every such function returns an int status, 0 or -1, that its caller
 * checks, so nothing is launched on a buffer that was not made), and *_FAILED is the same test
 * as an expression for functions that return something else. Allocation, which can fail without
 * harm, is checked by hand where it happens (alloc returns NULL instead). */
#ifndef SGN_CUDA_CHECK_H
#define SGN_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>
#include <curand.h>
#include <cusolverDn.h>

/* ---- cuda/context.cu ---- */

/* Bytes of a backend's sticky error, the NUL included. */
#define SGN_CUDA_ERROR_LEN 512

/* While one lives, the failures recorded on this thread go to `error` (a backend's sticky error,
 * SGN_CUDA_ERROR_LEN bytes) and name the op `name`; the previous target comes back when it
 * ends. Every op of cuda/backend.cu opens one. */
struct sgn_cuda_op_scope {
  char *prev_error;
  const char *prev_name;
  sgn_cuda_op_scope(char *error, const char *name);
  ~sgn_cuda_op_scope();
  sgn_cuda_op_scope(const sgn_cuda_op_scope &) = delete;
  sgn_cuda_op_scope &operator=(const sgn_cuda_op_scope &) = delete;
};
/* Stops this thread's failures going to error (a backend that is being freed). */
void sgn_cuda_op_forget(char *error);

/* Records "<lib> error <code> (<what>) in <op>[, <func>] at <file>:<line>: <stmt>" as the
 * sticky error of the backend whose op runs on this thread (first wins; outside any op, as
 * sgn_last_error()). */
void sgn_cuda_fatal(const char *lib, long code, const char *what, const char *stmt,
                    const char *func, const char *file, int line);
/* Records a one-line message the same way (printf-style). */
void sgn_cuda_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Names of the status codes of the libraries that have no string function of their own. */
const char *sgn_cusolver_string(cusolverStatus_t st);
const char *sgn_cufft_string(cufftResult st);
const char *sgn_curand_string(curandStatus_t st);

/* true (the failure recorded) when st is not ok */
template <typename S>
static inline bool sgn_lib_failed(S st, S ok, const char *(*to_string)(S), const char *lib,
                                  const char *stmt, const char *func, const char *file, int line) {
  if (st == ok) return false;
  sgn_cuda_fatal(lib, (long)st, to_string(st), stmt, func, file, line);
  return true;
}

#define SGN_LIB_FAILED(lib, ok, to_string, stmt) \
  sgn_lib_failed((stmt), (ok), to_string, lib, #stmt, __func__, __FILE__, __LINE__)

#define CUDA_FAILED(stmt) SGN_LIB_FAILED("CUDA", cudaSuccess, cudaGetErrorString, stmt)
#define CUBLAS_FAILED(stmt) \
  SGN_LIB_FAILED("cuBLAS", CUBLAS_STATUS_SUCCESS, cublasGetStatusString, stmt)
#define CUSOLVER_FAILED(stmt) \
  SGN_LIB_FAILED("cuSOLVER", CUSOLVER_STATUS_SUCCESS, sgn_cusolver_string, stmt)
#define CUFFT_FAILED(stmt) SGN_LIB_FAILED("cuFFT", CUFFT_SUCCESS, sgn_cufft_string, stmt)
#define CURAND_FAILED(stmt) SGN_LIB_FAILED("cuRAND", CURAND_STATUS_SUCCESS, sgn_curand_string, stmt)

#define SGN_RETURN_IF(failed) \
  do {                        \
    if (failed) return -1;    \
  } while (0)

#define CUDA_CHECK(stmt) SGN_RETURN_IF(CUDA_FAILED(stmt))
#define CUBLAS_CHECK(stmt) SGN_RETURN_IF(CUBLAS_FAILED(stmt))
#define CUSOLVER_CHECK(stmt) SGN_RETURN_IF(CUSOLVER_FAILED(stmt))
#define CUFFT_CHECK(stmt) SGN_RETURN_IF(CUFFT_FAILED(stmt))
#define CURAND_CHECK(stmt) SGN_RETURN_IF(CURAND_FAILED(stmt))

/* After every kernel launch: a bad configuration shows here, at the launch that caused it. */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

/* On the int status functions: a caller that drops the status does not compile (-Werror). */
#define SGN_MUST_CHECK __attribute__((warn_unused_result))

#endif
