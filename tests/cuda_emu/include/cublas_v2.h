/* cublas_v2.h (emulator) — the cuBLAS calls of src/backend/cuda/, on OpenBLAS, with the
 * documented argument rules checked (tests/cuda_emu/emu_libs.cpp). */
#ifndef SGN_EMU_CUBLAS_V2_H
#define SGN_EMU_CUBLAS_V2_H
#include "cuda_runtime.h"

typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
typedef enum { CUBLAS_FILL_MODE_LOWER = 0, CUBLAS_FILL_MODE_UPPER = 1, CUBLAS_FILL_MODE_FULL = 2 } cublasFillMode_t;
typedef enum { CUBLAS_SIDE_LEFT = 0, CUBLAS_SIDE_RIGHT = 1 } cublasSideMode_t;
typedef enum { CUBLAS_DIAG_NON_UNIT = 0, CUBLAS_DIAG_UNIT = 1 } cublasDiagType_t;
typedef enum { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 } cublasPointerMode_t;
typedef enum {
  CUBLAS_DEFAULT_MATH = 0,
  CUBLAS_TENSOR_OP_MATH = 1,
  CUBLAS_PEDANTIC_MATH = 2,
  CUBLAS_TF32_TENSOR_OP_MATH = 3
} cublasMath_t;
typedef enum {
  CUDA_R_32F = 0,
  CUDA_R_64F = 1,
  CUDA_R_16F = 2,
  CUDA_R_8I = 3,
  CUDA_R_32I = 10,
  CUDA_R_16BF = 14
} cudaDataType;
typedef cudaDataType cudaDataType_t;
typedef enum {
  CUBLAS_COMPUTE_32F = 68,
  CUBLAS_COMPUTE_32F_PEDANTIC = 69,
  CUBLAS_COMPUTE_32I = 72,
  CUBLAS_COMPUTE_32F_FAST_TF32 = 77
} cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;
typedef struct sgn_emu_cublas *cublasHandle_t;

#ifdef __cplusplus
extern "C" {
#endif
cublasStatus_t cublasCreate(cublasHandle_t *h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t st);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode);
cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode);
/* the handle's workspace (device memory); a call captured without one is an error */
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes);
cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value);
const char *cublasGetStatusString(cublasStatus_t st);
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C, int ldc);
cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                         cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long strideA, const float *B, int ldb,
                                         long long strideB, const float *beta, float *C, int ldc,
                                         long long strideC, int batchCount);
/* Three forms are modelled, any other type combination is refused as an error: int8 x int8 ->
 * int32 (CUDA_R_8I inputs, CUDA_R_32I output, CUBLAS_COMPUTE_32I, int32 alpha and beta);
 * float32 x float32 -> float32 (CUDA_R_32F everywhere, CUBLAS_COMPUTE_32F, _PEDANTIC or
 * _FAST_TF32, float alpha and beta; TF32 is not applied: the sum is plain float32);
 * bfloat16 x bfloat16 -> float32 (CUDA_R_16BF inputs, CUDA_R_32F output, CUBLAS_COMPUTE_32F or
 * _PEDANTIC, float alpha and beta; the inputs widened exactly, summed in float32). */
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                            int lda, const void *B, cudaDataType Btype, int ldb, const void *beta,
                            void *C, cudaDataType Ctype, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo);
cublasStatus_t cublasDsyrk(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t trans,
                           int n, int k, const double *alpha, const double *A, int lda,
                           const double *beta, double *C, int ldc);
cublasStatus_t cublasDtrsm(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo,
                           cublasOperation_t trans, cublasDiagType_t diag, int m, int n,
                           const double *alpha, const double *A, int lda, double *B, int ldb);
/* The 64-bit entry points (in cuBLAS macros for the _v2_64 names where a _v2 form exists):
 * the same calls with int64_t sizes, run by OpenBLAS's 32-bit interface here, so sizes past
 * INT_MAX are refused as not modelled. */
cublasStatus_t cublasSgemm_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                              int64_t m, int64_t n, int64_t k, const float *alpha, const float *A,
                              int64_t lda, const float *B, int64_t ldb, const float *beta, float *C,
                              int64_t ldc);
cublasStatus_t cublasSgemmStridedBatched_64(cublasHandle_t h, cublasOperation_t ta,
                                            cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                            const float *alpha, const float *A, int64_t lda,
                                            long long strideA, const float *B, int64_t ldb,
                                            long long strideB, const float *beta, float *C,
                                            int64_t ldc, long long strideC, int64_t batchCount);
cublasStatus_t cublasGemmEx_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                               int64_t m, int64_t n, int64_t k, const void *alpha, const void *A,
                               cudaDataType Atype, int64_t lda, const void *B, cudaDataType Btype,
                               int64_t ldb, const void *beta, void *C, cudaDataType Ctype,
                               int64_t ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo);
cublasStatus_t cublasDsyrk_64(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t trans,
                              int64_t n, int64_t k, const double *alpha, const double *A,
                              int64_t lda, const double *beta, double *C, int64_t ldc);
cublasStatus_t cublasDtrsm_64(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo,
                              cublasOperation_t trans, cublasDiagType_t diag, int64_t m, int64_t n,
                              const double *alpha, const double *A, int64_t lda, double *B,
                              int64_t ldb);
/* cuBLAS's cublasDsymv_64 */
cublasStatus_t cublasDsymv_64(cublasHandle_t h, cublasFillMode_t uplo, int64_t n,
                              const double *alpha, const double *A, int64_t lda, const double *x,
                              int64_t incx, const double *beta, double *y, int64_t incy);
/* the same in float32 (cuBLAS's cublasSsymv_64) */
cublasStatus_t cublasSsymv_64(cublasHandle_t h, cublasFillMode_t uplo, int64_t n,
                              const float *alpha, const float *A, int64_t lda, const float *x,
                              int64_t incx, const float *beta, float *y, int64_t incy);
/* float64 GEMV and GEMM, the 64-bit entry points (cublasDgemv_v2_64, cublasDgemm_v2_64 there) */
cublasStatus_t cublasDgemv_64(cublasHandle_t h, cublasOperation_t trans, int64_t m, int64_t n,
                              const double *alpha, const double *A, int64_t lda, const double *x,
                              int64_t incx, const double *beta, double *y, int64_t incy);
cublasStatus_t cublasDgemm_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                              int64_t m, int64_t n, int64_t k, const double *alpha, const double *A,
                              int64_t lda, const double *B, int64_t ldb, const double *beta,
                              double *C, int64_t ldc);
#ifdef __cplusplus
}
#endif
#endif
