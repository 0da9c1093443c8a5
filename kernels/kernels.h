/* kernels.h — what the .cu files of kernels/ share: the launchers each file exports (extern "C",
 * called by backend_cuda.cu), launch geometry, and a deterministic block sum.
 * Every launcher runs on the stream it is given and returns without synchronizing, except the
 * ones that return a host value (dot, residual, qr_r, cholesky), which wait for it. */
#ifndef SGN_KERNELS_H
#define SGN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

extern "C" {
#include "backend.h"
}

/* ---- launch geometry ---- */

#define SGN_THREADS 256            /* threads per block of every elementwise / row kernel */
#define SGN_MAX_BLOCKS (1u << 16)  /* grid-stride loops cap their grids here */
#define SGN_RED_BLOCKS 1024        /* most partial sums of a two-stage reduction */

/* Blocks for a grid-stride loop over count items (count > 0). */
inline unsigned sgn_grid(size_t count) {
  size_t b = (count + SGN_THREADS - 1) / SGN_THREADS;
  return (unsigned)(b < SGN_MAX_BLOCKS ? b : SGN_MAX_BLOCKS);
}

/* Blocks for a kernel that takes rows over blocks (grid-stride beyond the cap); rows > 0. */
inline unsigned sgn_row_grid(int64_t rows) {
  return (unsigned)(rows < (int64_t)SGN_MAX_BLOCKS ? rows : (int64_t)SGN_MAX_BLOCKS);
}

/* Sum of v over the block, deterministic (fixed shuffle tree, warps added in order); the result
 * is valid in thread 0 only. blockDim.x must be a multiple of 32 and every thread must call it. */
template <typename T>
__device__ __forceinline__ T sgn_block_sum(T v) {
  __shared__ T part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  __syncthreads(); /* part[] may still be read by thread 0 of a previous call */
  if (lane == 0) part[warp] = v;
  __syncthreads();
  T total = T(0);
  if (threadIdx.x == 0)
    for (int w = 0; w < nw; w++) total += part[w];
  return total;
}

/* ---- backend_cuda.cu: helpers for the other files ---- */

/* v as an int for a cuBLAS / cuSOLVER dimension; exits with a message if it does not fit. */
int sgn_cuda_int(int64_t v, const char *what);
/* Makes *buf (device memory, *cap bytes) hold at least bytes; exits with a message if the
 * device is out of memory. Frees the old buffer (cudaFree synchronizes the device). */
void *sgn_cuda_grow(void **buf, size_t *cap, size_t bytes);

extern "C" {

/* ---- relu_jac.cu: masks, masked products, row reductions, Gram pieces ---- */

/* out[i,c] = alpha S1[i,c] + alpha S2[i,c], S1 over neurons [0, m/2), S2 over [m/2, m) of
 * A[r,c] g_ir with g = relu(Z) (P == NULL) or 1[Z > 0] o P. Z, P (n, m), A (m, k), out (n, k).
 * Both halves are summed in the same order, so mirrored halves cancel exactly. */
void sgn_cuda_rows_times_a(int64_t n, int64_t m, int64_t k, const float *Z, const float *P,
                           const float *A, float alpha, float *out, cudaStream_t st);
/* B[i,r] = 1[Z_ir > 0] sum_c Gv[i,c] A[r,c]   Z, B (n, m), Gv (n, k), A (m, k) */
void sgn_cuda_vjp_rows(int64_t n, int64_t m, int64_t k, const float *Z, const float *Gv,
                       const float *A, float *B, cudaStream_t st);
/* M[e] = 1[Z[e] > 0] as 0.0f / 1.0f, count elements */
void sgn_cuda_mask(size_t count, const float *Z, float *M, cudaStream_t st);
/* Ms (rows, m) = M (rows, m) diag(A[:,c] o A[:,e]), A (m, k) */
void sgn_cuda_mask_signed(int64_t rows, int64_t m, int64_t k, const float *M, const float *A,
                          int64_t c, int64_t e, float *Ms, cudaStream_t st);
/* For i in [i0, i0 + rb), j in [i, n): v = Kb S inv_m at block entry (i - i0, j - i0) (row
 * stride n - i0), written to G (n k, n k) at ((i,c),(j,e)) and its three mirrors. */
void sgn_cuda_gram_scatter(int64_t n, int64_t k, int64_t i0, int64_t rb, int64_t c, int64_t e,
                           const float *Kb, const float *S, double inv_m, double *G,
                           cudaStream_t st);
/* diag[i] = ||x_i||^2 (1/m) sum_r 1[Z_ir > 0]   X (n, d), Z (n, m) */
void sgn_cuda_gram_diag(int64_t n, int64_t d, int64_t m, const float *X, const float *Z,
                        double *diag, cudaStream_t st);

/* ---- hadamard.cu ---- */

/* x (rows, len) row-major in place: each row <- H row (orthonormal, Sylvester order) */
void sgn_cuda_hadamard(float *x, int64_t rows, int64_t len, cudaStream_t st);

/* ---- sketch.cu ---- */

size_t sgn_cuda_sketch_work_bytes(sgn_dims dm, sgn_sketch kind, int64_t s);
/* Y (n, s) = the tensor SRHT of the k = 1 block of J (see sketch.h) */
void sgn_cuda_sketch_srht(sgn_dims dm, int64_t s, uint64_t seed, const float *X, const float *Z,
                          void *work, float *Y, cudaStream_t st);
/* Y (n, s) = (M Omega1) o (X Omega2) / sqrt(m s) (see sketch.h); h bound to st */
void sgn_cuda_sketch_gaussian(cublasHandle_t h, sgn_dims dm, int64_t s, uint64_t seed,
                              const float *X, const float *Z, void *work, float *Y,
                              cudaStream_t st);

/* ---- linalg.cu (float64; handles bound to st) ---- */

/* work bytes of qr_r for (n, s); probe is any device pointer (the size query reads nothing) */
size_t sgn_cuda_qr_work_bytes(cusolverDnHandle_t h, int64_t n, int64_t s, double *probe);
/* R (n, n) row-major upper, R^T R = Y Y^T + lambda I. host_flags: 2 pinned ints.
 * Returns 0, or 1 if the factorization failed or a diagonal of R is 0 or not finite. */
int sgn_cuda_qr_r(cusolverDnHandle_t h, int64_t n, int64_t s, const float *Y, double lambda,
                  void *work, double *R, int *host_flags, cudaStream_t st);
/* G (N, N) -> R upper with R^T R = G + lambda I, lower part zeroed. ws/ws_cap: the backend's
 * grow-only cuSOLVER workspace; dinfo: a device int; host_info: a pinned int.
 * Returns 0 or the dpotrf info (> 0: not positive definite). */
int sgn_cuda_cholesky(cusolverDnHandle_t h, int64_t N, double *G, double lambda, void **ws,
                      size_t *ws_cap, int *dinfo, int *host_info, cudaStream_t st);
/* V (N, k) row-major <- (R^T R)^-1 V, R (N, N) row-major upper */
void sgn_cuda_rtr_solve(cublasHandle_t h, int64_t N, int64_t k, const double *R, double *V);

/* ---- vecops.cu (float64 unless named _f) ----
 * dot and residual reduce in two stages through partials (SGN_RED_BLOCKS + 1 device doubles)
 * and bring the sum back through host (1 pinned double); they wait for the stream. */

double sgn_cuda_dot(int64_t len, const double *x, const double *y, double *partials,
                    double *host, cudaStream_t st);
/* r = F - Y (float64); returns sum r^2 */
double sgn_cuda_residual(int64_t len, const float *F, const float *Y, double *r,
                         double *partials, double *host, cudaStream_t st);
void sgn_cuda_axpy(int64_t len, double a, const double *x, double *y, cudaStream_t st);
void sgn_cuda_xpby(int64_t len, const double *x, double b, double *y, cudaStream_t st);
void sgn_cuda_scal(int64_t len, double a, double *x, cudaStream_t st);
void sgn_cuda_d2f(int64_t len, const double *x, float *y, cudaStream_t st);
void sgn_cuda_f2d(int64_t len, const float *x, double *y, cudaStream_t st);
void sgn_cuda_axpy_f(int64_t len, float a, const float *x, float *y, cudaStream_t st);
void sgn_cuda_gather_rows(int64_t b, int64_t cols, const float *src, const int64_t *idx,
                          float *out, cudaStream_t st);
void sgn_cuda_adam(int64_t len, float *W, const float *g, float *mom, float *vel, double lr,
                   double b1, double b2, double eps, int64_t t, cudaStream_t st);

} /* extern "C" */

#endif
