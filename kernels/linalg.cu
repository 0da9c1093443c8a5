/* linalg.cu — float64 QR, Cholesky and triangular solves on cuSOLVER / cuBLAS, twins of
 * host/linalg_cpu.c. Row-major operands are handed over as their column-major transposes, as
 * on the CPU, so the same factor comes out: R (n, n) row-major upper with a positive diagonal
 * (a row-major upper R is a column-major lower L = R^T). */
#include <math.h>

#include "cuda_check.h"
#include "kernels.h"

#define WORK_ALIGN 256

/* ---- kernels ---- */

/* A (rows, n) column-major, lda = rows: column i = row i of Y (n, s), then sqrt(lambda) e_i
 * when rows > s. Columns over blocks, rows over threads. */
static __global__ void qr_build_kernel(int64_t n, int64_t s, int64_t rows,
                                       const float *__restrict__ Y, double sl,
                                       double *__restrict__ A) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    double *a = A + (size_t)i * (size_t)rows;
    const float *y = Y + (size_t)i * (size_t)s;
    for (int64_t t = threadIdx.x; t < rows; t += blockDim.x)
      a[t] = t < s ? (double)y[t] : (t - s == i ? sl : 0.0);
  }
}

/* R[i, j] = sign_i A[j rows + i] for j >= i, 0 below; sign_i flips row i to a positive
 * diagonal. flags[1] |= 1 when a diagonal is 0 or not finite (NaN in Y lands here too). */
static __global__ void qr_extract_kernel(int64_t n, int64_t rows, const double *__restrict__ A,
                                         double *__restrict__ R, int *__restrict__ flags) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const double diag = A[(size_t)i * (size_t)rows + (size_t)i];
    const double sign = diag < 0.0 ? -1.0 : 1.0;
    double *r = R + (size_t)i * (size_t)n;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      r[j] = j < i ? 0.0 : sign * A[(size_t)j * (size_t)rows + (size_t)i];
    if (threadIdx.x == 0 && (diag == 0.0 || !isfinite(diag))) atomicOr(&flags[1], 1);
  }
}

/* G[i, i] += lambda */
static __global__ void add_diag_kernel(int64_t N, double lambda, double *__restrict__ G) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N;
       i += (size_t)gridDim.x * blockDim.x)
    G[i * (size_t)N + i] = __dadd_rn(G[i * (size_t)N + i], lambda);
}

/* G[i, j] = 0 for j < i (row-major): the column-major upper part dpotrf leaves untouched */
static __global__ void zero_lower_kernel(int64_t N, double *__restrict__ G) {
  for (int64_t i = blockIdx.x; i < N; i += gridDim.x)
    for (int64_t j = threadIdx.x; j < i; j += blockDim.x) G[(size_t)i * (size_t)N + j] = 0.0;
}

/* ---- launchers ---- */

static size_t align_up(size_t v) { return (v + WORK_ALIGN - 1) / WORK_ALIGN * WORK_ALIGN; }

/* dgeqrf's workspace (doubles) for the (s + n, n) and (s, n) problems qr_r may factor */
static size_t qr_lwork(cusolverDnHandle_t h, int64_t n, int64_t s, double *probe) {
  int full = 0, plain = 0;
  const int in = sgn_cuda_int(n, "n"), rows = sgn_cuda_int(s + n, "s + n");
  CUSOLVER_CHECK(cusolverDnDgeqrf_bufferSize(h, rows, in, probe, rows, &full));
  if (s >= n && s > 0)
    CUSOLVER_CHECK(cusolverDnDgeqrf_bufferSize(h, (int)s, in, probe, (int)s, &plain));
  const int most = full > plain ? full : plain;
  return (size_t)(most > 1 ? most : 1);
}

typedef struct qr_layout {
  double *A;   /* (s + n, n) column-major (lda = the rows in use) */
  double *tau; /* (n) */
  double *wk;  /* (lwork) */
  int *flags;  /* [0] dgeqrf info, [1] singular diagonal */
  size_t bytes;
} qr_layout;

static qr_layout qr_carve(int64_t n, int64_t s, size_t lwork, void *work) {
  const uintptr_t base = (uintptr_t)work;
  size_t off = 0;
  qr_layout L;
  L.A = (double *)(base + off), off = align_up(off + (size_t)(s + n) * (size_t)n * sizeof(double));
  L.tau = (double *)(base + off), off = align_up(off + (size_t)n * sizeof(double));
  L.wk = (double *)(base + off), off = align_up(off + lwork * sizeof(double));
  L.flags = (int *)(base + off), off = align_up(off + 2 * sizeof(int));
  L.bytes = off;
  return L;
}

extern "C" size_t sgn_cuda_qr_work_bytes(cusolverDnHandle_t h, int64_t n, int64_t s,
                                         double *probe) {
  if (n <= 0) return WORK_ALIGN;
  return qr_carve(n, s, qr_lwork(h, n, s, probe), nullptr).bytes;
}

/* R^T R = Y Y^T + lambda I, R (n, n) upper: the R of A = [Y^T; sqrt(lambda) I] (s + n, n) = Q R */
extern "C" int sgn_cuda_qr_r(cusolverDnHandle_t h, int64_t n, int64_t s, const float *Y,
                             double lambda, void *work, double *R, int *host_flags,
                             cudaStream_t st) {
  if (n <= 0) return 0;
  /* With lambda = 0 and s >= n the identity rows are zero: factor only the s rows of Y^T. */
  const int64_t rows = (lambda > 0.0 || s < n) ? s + n : s;
  const size_t lwork = qr_lwork(h, n, s, (double *)work);
  const qr_layout L = qr_carve(n, s, lwork, work);
  const double sl = lambda > 0.0 ? sqrt(lambda) : 0.0;
  const int in = sgn_cuda_int(n, "n"), ir = sgn_cuda_int(rows, "qr rows");

  qr_build_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(n, s, rows, Y, sl, L.A);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemsetAsync(L.flags, 0, 2 * sizeof(int), st));
  CUSOLVER_CHECK(cusolverDnDgeqrf(h, ir, in, L.A, ir, L.tau, L.wk, (int)lwork, L.flags));
  qr_extract_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(n, rows, L.A, R, L.flags);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(host_flags, L.flags, 2 * sizeof(int), cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  if (host_flags[0] != 0) return 1;
  return host_flags[1] ? 1 : 0;
}

/* dpotrf's workspace for an (N, N) factor, in bytes (at least one double). probe is any device
 * pointer (the size query reads nothing; a real one rather than NULL, as for the QR). */
extern "C" size_t sgn_cuda_cholesky_work_bytes(cusolverDnHandle_t h, int64_t N, double *probe) {
  if (N <= 0) return sizeof(double);
  const int iN = sgn_cuda_int(N, "N");
  int lwork = 0;
  CUSOLVER_CHECK(cusolverDnDpotrf_bufferSize(h, CUBLAS_FILL_MODE_LOWER, iN, probe, iN, &lwork));
  return (size_t)(lwork < 1 ? 1 : lwork) * sizeof(double);
}

/* G <- R upper, R^T R = G + lambda I, G (N, N) row-major symmetric. Row-major G is column-major
 * G^T = G; its column-major lower factor L (G = L L^T) read row-major is L^T = R.
 * work holds sgn_cuda_cholesky_work_bytes(h, N). */
extern "C" int sgn_cuda_cholesky(cusolverDnHandle_t h, int64_t N, double *G, double lambda,
                                 void *work, int *dinfo, int *host_info, cudaStream_t st) {
  if (N <= 0) return 0;
  const int iN = sgn_cuda_int(N, "N");
  add_diag_kernel<<<sgn_grid((size_t)N), SGN_THREADS, 0, st>>>(N, lambda, G);
  CUDA_CHECK_LAUNCH();
  int lwork = 0;
  CUSOLVER_CHECK(cusolverDnDpotrf_bufferSize(h, CUBLAS_FILL_MODE_LOWER, iN, G, iN, &lwork));
  if (lwork < 1) lwork = 1;
  CUSOLVER_CHECK(
      cusolverDnDpotrf(h, CUBLAS_FILL_MODE_LOWER, iN, G, iN, (double *)work, lwork, dinfo));
  CUDA_CHECK(cudaMemcpyAsync(host_info, dinfo, sizeof(int), cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  if (*host_info != 0) return *host_info;
  zero_lower_kernel<<<sgn_row_grid(N), SGN_THREADS, 0, st>>>(N, G);
  CUDA_CHECK_LAUNCH();
  return 0;
}

/* V (N, k) <- (R^T R)^-1 V. Row-major V is column-major V^T (k, N), ld k; row-major upper R is
 * column-major lower L = R^T, ld N.
 *   W = R^-T V  <=>  W^T R = V^T:   X op(L) = B, op(L) = L^T = R -> cublasDtrsm(RIGHT, LOWER, T)
 *   X = R^-1 W  <=>  X^T R^T = W^T: X op(L) = B, op(L) = L = R^T -> cublasDtrsm(RIGHT, LOWER, N)
 * with B = V^T (k, N) in place. */
extern "C" void sgn_cuda_rtr_solve(cublasHandle_t h, int64_t N, int64_t k, const double *R,
                                   double *V) {
  if (N <= 0 || k <= 0) return;
  const double one = 1.0;
  const int iN = sgn_cuda_int(N, "N"), ik = sgn_cuda_int(k, "k");
  CUBLAS_CHECK(cublasDtrsm(h, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T,
                           CUBLAS_DIAG_NON_UNIT, ik, iN, &one, R, iN, V, ik));
  CUBLAS_CHECK(cublasDtrsm(h, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                           CUBLAS_DIAG_NON_UNIT, ik, iN, &one, R, iN, V, ik));
}
