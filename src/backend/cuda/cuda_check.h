/* cuda_check.h — error checks for every CUDA, cuBLAS, cuSOLVER, cuFFT and cuRAND call, from one
 * generic macro. A failing call prints the statement, function, file:line and the library's own
 * error string, then exits with status 1 (runtime failure): the backend's ops return void, and
 * a failed launch or a sticky device error leaves nothing sensible to compute. Allocation, which
 * can fail without harm, is checked by hand where it happens (it returns NULL instead). */
#ifndef SGN_CUDA_CHECK_H
#define SGN_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>
#include <curand.h>
#include <cusolverDn.h>

/* Prints "sketchgn: <lib> error <code> (<what>) in <func> at <file>:<line>: <stmt>" and exits 1.
 * Defined in cuda/backend.cu. */
[[noreturn]] void sgn_cuda_fatal(const char *lib, long code, const char *what, const char *stmt,
                                 const char *func, const char *file, int line);

/* Names of the status codes of the libraries that have no string function of their own. */
const char *sgn_cusolver_string(cusolverStatus_t st);
const char *sgn_cufft_string(cufftResult st);
const char *sgn_curand_string(curandStatus_t st);

#define SGN_LIB_CHECK(lib, ok, to_string, stmt)                                            \
  do {                                                                                     \
    auto sgn_st_ = (stmt);                                                                 \
    if (sgn_st_ != (ok))                                                                   \
      sgn_cuda_fatal(lib, (long)sgn_st_, to_string(sgn_st_), #stmt, __func__, __FILE__,    \
                     __LINE__);                                                            \
  } while (0)

#define CUDA_CHECK(stmt) SGN_LIB_CHECK("CUDA", cudaSuccess, cudaGetErrorString, stmt)
#define CUBLAS_CHECK(stmt) \
  SGN_LIB_CHECK("cuBLAS", CUBLAS_STATUS_SUCCESS, cublasGetStatusString, stmt)
#define CUSOLVER_CHECK(stmt) \
  SGN_LIB_CHECK("cuSOLVER", CUSOLVER_STATUS_SUCCESS, sgn_cusolver_string, stmt)
#define CUFFT_CHECK(stmt) SGN_LIB_CHECK("cuFFT", CUFFT_SUCCESS, sgn_cufft_string, stmt)
#define CURAND_CHECK(stmt) SGN_LIB_CHECK("cuRAND", CURAND_STATUS_SUCCESS, sgn_curand_string, stmt)

/* After every kernel launch: a bad configuration shows here, at the launch that caused it. */
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

#endif
