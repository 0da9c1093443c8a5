/* linalg.cu — the float64 factorizations on cuBLAS / cuSOLVER, twins of cpu/linalg.c: the
 * sketch's Gram at each precision (sgn_precision: DSYRK, or float32 / TF32 / bf16 GEMMs summed
 * per panel and added in float64) and its R, Cholesky and triangular solves, and the block-diagonal Gram's float32 product.
 * Row-major operands are handed over as their column-major transposes, as on the CPU, so the
 * same factor comes out: R (n, n) row-major upper with a positive diagonal (a row-major upper R
 * is a column-major lower L = R^T). Every library call is a 64-bit entry point (cuSOLVER's
 * Xpotrf, cuBLAS's _64): an (n, n) factor passes 2^31 entries at n >= 46341. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "cuda_check.h"
#include "kernels.h"
#include "precision.h"

#define WORK_ALIGN 256

/* ---- kernels ---- */

/* P (w, n) column-major, ld w (= row-major (n, w)): P[i w + t] = Y[i s + c0 + t], the panel of
 * Y's columns c0 .. c0 + w - 1 in double, cuBLAS's A for C = A^T A. Rows over blocks. */
static __global__ void sketch_panel_kernel(int64_t n, int64_t s, int64_t c0, int64_t w,
                                           const float *__restrict__ Y, double *__restrict__ P) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float *y = Y + (size_t)i * (size_t)s + (size_t)c0;
    double *p = P + (size_t)i * (size_t)w;
    for (int64_t t = threadIdx.x; t < w; t += blockDim.x) p[t] = (double)y[t];
  }
}

/* P (n, ldp) = panel c0 .. c0 + w - 1 of Y (n, s) rounded per prec (precision.h), 0 in the
 * columns w .. ldp - 1 (T = float for tf32, uint16_t for bf16). Rows over blocks. */
template <typename T>
static __global__ void round_panel_kernel(int64_t n, int64_t s, int64_t c0, int64_t w, int64_t ldp,
                                          sgn_precision prec, const float *__restrict__ Y,
                                          T *__restrict__ P) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float *y = Y + (size_t)i * (size_t)s + (size_t)c0;
    T *p = P + (size_t)i * (size_t)ldp;
    for (int64_t t = threadIdx.x; t < ldp; t += blockDim.x)
      sgn_store_rounded(&p[t], t < w ? sgn_round_precision(y[t], prec) : 0.0f);
  }
}

/* R[i0 + ii, i0 + jj] = (double) C[ii, jj] (overwrite) or += it, for jj >= ii: the tile
 * C (tb, nc) of float32 products, row stride nc, into R's upper triangle (row stride n) */
static __global__ void add_tile_kernel(int64_t n, int64_t i0, int64_t tb, int64_t nc, int overwrite,
                                       const float *__restrict__ C, double *__restrict__ R) {
  for (int64_t ii = blockIdx.x; ii < tb; ii += gridDim.x) {
    const float *c = C + (size_t)ii * (size_t)nc;
    double *r = R + (size_t)(i0 + ii) * (size_t)n + (size_t)i0;
    for (int64_t jj = ii + threadIdx.x; jj < nc; jj += blockDim.x)
      r[jj] = overwrite ? (double)c[jj] : __dadd_rn(r[jj], (double)c[jj]);
  }
}

/* G[i, i] += lambda */
static __global__ void add_diag_kernel(int64_t N, double lambda, double *__restrict__ G) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N;
       i += (size_t)gridDim.x * blockDim.x)
    G[i * (size_t)N + i] = __dadd_rn(G[i * (size_t)N + i], lambda);
}

/* G[i, j] = 0 for j < i (row-major): the column-major upper part Xpotrf leaves untouched */
static __global__ void zero_lower_kernel(int64_t N, double *__restrict__ G) {
  for (int64_t i = blockIdx.x; i < N; i += gridDim.x)
    for (int64_t j = threadIdx.x; j < i; j += blockDim.x) G[(size_t)i * (size_t)N + j] = 0.0;
}

/* info[1] <- the smallest i + 1 whose R[i, i] is not finite: cuSOLVER's potrf, like
 * OpenBLAS's, lets NaN through (NaN <= 0 is false) */
static __global__ void diag_finite_kernel(int64_t N, const double *__restrict__ G,
                                          int *__restrict__ info) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N;
       i += (size_t)gridDim.x * blockDim.x)
    if (!isfinite(G[i * (size_t)N + i])) atomicMin(&info[1], (int)(i + 1));
}

/* out[e] = outf[e] + lambda in[e] in float64 (the CPU twin's roundings) */
static __global__ void widen_add_kernel(size_t len, const float *__restrict__ outf, double lambda,
                                        const double *__restrict__ in, double *__restrict__ out) {
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < len;
       e += (size_t)gridDim.x * blockDim.x)
    out[e] = __dadd_rn((double)outf[e], __dmul_rn(lambda, in[e]));
}

/* R[i, j] = (double)(G_0[i, j] + ... + G_{k-1}[i, j]) * inv_k for j >= i (cpu/heads.c's twin:
 * the float32 sum over the blocks in order, widened): rows over blocks, columns over threads */
static __global__ void heads_mean_kernel(int64_t n, int64_t k, const float *__restrict__ G,
                                         double inv_k, double *__restrict__ R) {
  const size_t N = (size_t)n, nn = N * N;
  for (size_t i = blockIdx.x; i < N; i += gridDim.x)
    for (size_t j = i + threadIdx.x; j < N; j += blockDim.x) {
      float sum = G[i * N + j];
      for (int64_t c = 1; c < k; c++) sum = __fadd_rn(sum, G[(size_t)c * nn + i * N + j]);
      R[i * N + j] = __dmul_rn((double)sum, inv_k);
    }
}

/* ---- launchers ---- */

extern "C" int sgn_cuda_round_rows(int64_t rows, int64_t s, int64_t c0, int64_t w, int64_t ldp,
                                   sgn_precision prec, const float *Y, void *P, cudaStream_t st) {
  if (rows <= 0 || ldp <= 0) return 0;
  if (prec == SGN_PRECISION_BF16)
    round_panel_kernel<uint16_t>
        <<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(rows, s, c0, w, ldp, prec, Y, (uint16_t *)P);
  else
    round_panel_kernel<float>
        <<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(rows, s, c0, w, ldp, prec, Y, (float *)P);
  CUDA_CHECK_LAUNCH();
  return 0;
}

static size_t align_up(size_t v) { return (v + WORK_ALIGN - 1) / WORK_ALIGN * WORK_ALIGN; }

/* Columns of Y per DSYRK panel (the panel's double copy is (n, SKETCH_PANEL)). */
#define SKETCH_PANEL 1024
/* The float32 tile of the reduced precisions: rows per tile while the tile (tb, n) stays within
 * this many floats (256 MiB)... */
#define GRAM_TILE_FLOATS ((int64_t)1 << 26)
/* ...and at most n / 16 of them (rounded up to 256), so the square below each tile's diagonal,
 * which its GEMM computes and the triangle drops, stays within 1/16 of the products. */
#define GRAM_TILE_MIN 256

static int64_t panel_cols(int64_t s) { return s < SKETCH_PANEL ? (s > 1 ? s : 1) : SKETCH_PANEL; }

/* Columns per float32 sum: SGN_GRAM_F32_COLS, fewer when Y has fewer (at least 1). */
static int64_t f32_cols(int64_t s) {
  return s < SGN_GRAM_F32_COLS ? (s > 1 ? s : 1) : SGN_GRAM_F32_COLS;
}

/* The rounded panel's row stride: a multiple of 8 elements (16-byte rows of bfloat16, the
 * alignment tensor-core GEMMs want) */
static int64_t panel_ld(int64_t s) { return (f32_cols(s) + 7) / 8 * 8; }

static int64_t tile_rows(int64_t n) {
  int64_t tb = (n + 15) / 16;
  tb = (tb + GRAM_TILE_MIN - 1) / GRAM_TILE_MIN * GRAM_TILE_MIN;
  const int64_t fit = GRAM_TILE_FLOATS / (n > 1 ? n : 1) / GRAM_TILE_MIN * GRAM_TILE_MIN;
  if (tb > fit) tb = fit > GRAM_TILE_MIN ? fit : GRAM_TILE_MIN;
  return tb < n ? tb : (n > 1 ? n : 1);
}

/* the Gram's part of the work: fp64 the double panel (n, panel_cols(s)); the others the float
 * tile (tile_rows(n), n) and, for tf32 and bf16, the rounded panel (n, panel_ld(s)) */
static size_t gram_work_bytes(int64_t n, int64_t s, sgn_precision prec) {
  if (prec == SGN_PRECISION_FP64)
    return align_up((size_t)n * (size_t)panel_cols(s) * sizeof(double));
  const size_t elem = prec == SGN_PRECISION_BF16 ? sizeof(uint16_t) : sizeof(float);
  const size_t rounded = sgn_precision_dropped_bits(prec) ? (size_t)n * (size_t)panel_ld(s) * elem
                                                          : 0;
  return align_up((size_t)tile_rows(n) * (size_t)n * sizeof(float)) + align_up(rounded);
}

/* work: the Gram's (above) | Xpotrf's device workspace for n */
extern "C" size_t sgn_cuda_sketch_r_work_bytes(cusolverDnHandle_t h, cusolverDnParams_t p,
                                               int64_t n, int64_t s, sgn_precision prec,
                                               double *probe) {
  if (n <= 0) return WORK_ALIGN;
  const size_t chol = sgn_cuda_cholesky_work_bytes(h, p, n, probe);
  if (!chol) return 0;
  return gram_work_bytes(n, s, prec) + chol;
}

/* R's upper triangle = Y Y^T in float64 sums: cublasDsyrk_64 over double copies of column
 * panels. Row-major Y Y^T's upper triangle is the column-major lower one Dsyrk fills. */
static int gram_fp64(cublasHandle_t b, int64_t n, int64_t s, const float *Y, void *work, double *R,
                     cudaStream_t st) {
  const int64_t pw = panel_cols(s);
  double *P = (double *)work;
  const double one = 1.0, zero = 0.0;
  for (int64_t c0 = 0; c0 < s; c0 += pw) {
    const int64_t w = s - c0 < pw ? s - c0 : pw;
    sketch_panel_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(n, s, c0, w, Y, P);
    CUDA_CHECK_LAUNCH();
    /* C (n, n) (+)= A^T A, A = P as (w, n) ld w */
    CUBLAS_CHECK(cublasDsyrk_64(b, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, n, w, &one, P, w,
                                c0 == 0 ? &zero : &one, R, n));
  }
  return 0;
}

/* R's upper triangle = Y Y^T in float32 sums over panels of f32_cols(s) columns (tf32, bf16: Y
 * rounded into the panel copy first), each added to R in float64 (cpu/linalg.c's twin). A panel
 * goes by tiles of tile_rows(n) rows of the triangle, each one cublasGemmEx_64 into the float
 * tile C (tb, nc = n - i0) row-major, then R += (double) C over jj >= ii:
 *   C^T (nc, tb) column-major, ld nc = A^T B with A = P's rows i0 .. n - 1 read column-major as
 *   (w, nc) ld ldp (transa T) and B = its rows i0 .. i0 + tb - 1 as (w, tb) ld ldp (transb N)
 *   -> cublasGemmEx_64(T, N, nc, tb, w), A and B the same memory, read only.
 * fp32 reads Y itself (P = Y + c0, ld s) in plain float32 (CUBLAS_COMPUTE_32F on the handle's
 * CUBLAS_DEFAULT_MATH: no TF32); tf32 asks for the TF32 tensor cores (CUBLAS_COMPUTE_32F_FAST_TF32)
 * on values that TF32 holds exactly; bf16 passes the bfloat16 panel (CUDA_R_16BF) to float32
 * accumulation (CUBLAS_COMPUTE_32F). */
static int gram_f32(cublasHandle_t b, int64_t n, int64_t s, const float *Y, sgn_precision prec,
                    void *work, double *R, cudaStream_t st) {
  const int64_t pw = f32_cols(s), TB = tile_rows(n), ldr = panel_ld(s);
  float *C = (float *)work;
  void *P = (char *)work + align_up((size_t)TB * (size_t)n * sizeof(float));
  const int bf16 = prec == SGN_PRECISION_BF16, round = sgn_precision_dropped_bits(prec) != 0;
  const cudaDataType ab = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasComputeType_t compute = prec == SGN_PRECISION_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                 : CUBLAS_COMPUTE_32F;
  const size_t elem = bf16 ? sizeof(uint16_t) : sizeof(float);
  const float one = 1.0f, zero = 0.0f;
  for (int64_t c0 = 0; c0 < s; c0 += pw) {
    const int64_t w = s - c0 < pw ? s - c0 : pw;
    const char *A = (const char *)(Y + c0); /* the panel (n, w), row stride ldp elements */
    int64_t ldp = s;
    if (round) {
      if (sgn_cuda_round_rows(n, s, c0, w, ldr, prec, Y, P, st)) return -1;
      A = (const char *)P, ldp = ldr;
    }
    for (int64_t i0 = 0; i0 < n; i0 += TB) {
      const int64_t tb = n - i0 < TB ? n - i0 : TB, nc = n - i0;
      const void *Ai = A + (size_t)i0 * (size_t)ldp * elem;
      CUBLAS_CHECK(cublasGemmEx_64(b, CUBLAS_OP_T, CUBLAS_OP_N, nc, tb, w, &one, Ai, ab, ldp, Ai,
                                   ab, ldp, &zero, C, CUDA_R_32F, nc, compute,
                                   CUBLAS_GEMM_DEFAULT));
      add_tile_kernel<<<sgn_row_grid(tb), SGN_THREADS, 0, st>>>(n, i0, tb, nc, c0 == 0, C, R);
      CUDA_CHECK_LAUNCH();
    }
  }
  return 0;
}

/* G's upper triangle (row-major) = Y Y^T at precision prec (cpu/linalg.c's twin); the part
 * below the diagonal is not written. 0, or -1 on a failure (sticky error set). */
extern "C" int sgn_cuda_sketch_gram(cublasHandle_t b, int64_t n, int64_t s, const float *Y,
                                    sgn_precision prec, void *work, double *G, cudaStream_t st) {
  if (n <= 0) return 0;
  if (s == 0) {
    CUDA_CHECK(cudaMemsetAsync(G, 0, (size_t)n * (size_t)n * sizeof(double), st));
    return 0;
  }
  return prec == SGN_PRECISION_FP64 ? gram_fp64(b, n, s, Y, work, G, st)
                                    : gram_f32(b, n, s, Y, prec, work, G, st);
}

/* R^T R = Y Y^T + lambda I, R (n, n) upper (cpu/linalg.c's twin): sgn_cuda_sketch_gram at prec,
 * then sgn_cuda_cholesky, which reads the row-major upper triangle (Xpotrf's column-major
 * lower). */
extern "C" int sgn_cuda_sketch_r(cublasHandle_t b, cusolverDnHandle_t h, cusolverDnParams_t p,
                                 int64_t n, int64_t s, const float *Y, double lambda,
                                 sgn_precision prec, void *work, double *R, int *dinfo,
                                 int *host_info, cudaStream_t st) {
  if (n <= 0) return 0;
  if (sgn_cuda_sketch_gram(b, n, s, Y, prec, work, R, st)) return -1;
  void *chol_work = (char *)work + gram_work_bytes(n, s, prec);
  return sgn_cuda_cholesky(h, p, n, R, lambda, chol_work, dinfo, host_info, st) != 0;
}

/* Xpotrf's workspaces for an (N, N) float64 factor, lower, ld N, in bytes: *dev on the device,
 * *host on the host. 0, or -1 with the sticky error set. */
SGN_MUST_CHECK static int potrf_sizes(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t N,
                                      const double *A, size_t *dev, size_t *host) {
  *dev = *host = 0;
  CUSOLVER_CHECK(cusolverDnXpotrf_bufferSize(h, p, CUBLAS_FILL_MODE_LOWER, N, CUDA_R_64F, A, N,
                                             CUDA_R_64F, dev, host));
  return 0;
}

/* Xpotrf's device workspace for an (N, N) factor, in bytes (at least one double; 0 with the
 * sticky error set). probe is any device pointer (the size query reads nothing; a real one
 * rather than NULL). */
extern "C" size_t sgn_cuda_cholesky_work_bytes(cusolverDnHandle_t h, cusolverDnParams_t p,
                                               int64_t N, double *probe) {
  if (N <= 0) return sizeof(double);
  size_t dev = 0, host = 0;
  if (potrf_sizes(h, p, N, probe, &dev, &host)) return 0;
  return dev < sizeof(double) ? sizeof(double) : dev;
}

/* Host memory a cuSOLVER call may still use: freed once the stream has finished with it, on every
 * way out of the function that holds it. */
struct host_work {
  void *ptr = nullptr;
  cudaStream_t st;
  explicit host_work(cudaStream_t s) : st(s) {}
  ~host_work() {
    if (!ptr) return;
    (void)cudaStreamSynchronize(st);
    free(ptr);
  }
  host_work(const host_work &) = delete;
  host_work &operator=(const host_work &) = delete;
};

/* G <- R upper, R^T R = G + lambda I, G (N, N) row-major symmetric. Row-major G is column-major
 * G^T = G; its column-major lower factor L (G = L L^T) read row-major is L^T = R.
 * work holds sgn_cuda_cholesky_work_bytes(h, p, N); a host workspace, when Xpotrf asks for one,
 * is allocated here for the call. */
extern "C" int sgn_cuda_cholesky(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t N, double *G,
                                 double lambda, void *work, int *dinfo, int *host_info,
                                 cudaStream_t st) {
  if (N <= 0) return 0;
  add_diag_kernel<<<sgn_grid((size_t)N), SGN_THREADS, 0, st>>>(N, lambda, G);
  CUDA_CHECK_LAUNCH();
  size_t dev = 0, host = 0;
  if (potrf_sizes(h, p, N, G, &dev, &host)) return -1;
  if (dev < sizeof(double)) dev = sizeof(double);
  host_work hw(st);
  if (host > 0 && !(hw.ptr = malloc(host))) {
    sgn_cuda_error("gpu backend: out of host memory for cusolverDnXpotrf's workspace (%zu bytes)",
                   host);
    return -1;
  }
  /* dinfo[1]: no non-finite diagonal yet (0x7f7f7f7f, above any N + 1 that fits an int) */
  CUDA_CHECK(cudaMemsetAsync(dinfo + 1, 0x7f, sizeof(int), st));
  CUSOLVER_CHECK(cusolverDnXpotrf(h, p, CUBLAS_FILL_MODE_LOWER, N, CUDA_R_64F, G, N, CUDA_R_64F,
                                  work, dev, hw.ptr, host, dinfo));
  diag_finite_kernel<<<sgn_grid((size_t)N), SGN_THREADS, 0, st>>>(N, G, dinfo);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(host_info, dinfo, 2 * sizeof(int), cudaMemcpyDeviceToHost, st));
  CUDA_CHECK(cudaStreamSynchronize(st));
  if (host_info[0] != 0) return host_info[0];
  if (host_info[1] <= N) return host_info[1];
  zero_lower_kernel<<<sgn_row_grid(N), SGN_THREADS, 0, st>>>(N, G);
  CUDA_CHECK_LAUNCH();
  return 0;
}

/* V (N, k) <- (R^T R)^-1 V. Row-major V is column-major V^T (k, N), ld k; row-major upper R is
 * column-major lower L = R^T, ld N.
 *   W = R^-T V  <=>  W^T R = V^T:   X op(L) = B, op(L) = L^T = R -> cublasDtrsm_64(RIGHT, LOWER, T)
 *   X = R^-1 W  <=>  X^T R^T = W^T: X op(L) = B, op(L) = L = R^T -> cublasDtrsm_64(RIGHT, LOWER, N)
 * with B = V^T (k, N) in place. */
extern "C" int sgn_cuda_rtr_solve(cublasHandle_t h, int64_t N, int64_t k, const double *R,
                                  double *V) {
  if (N <= 0 || k <= 0) return 0;
  const double one = 1.0;
  CUBLAS_CHECK(cublasDtrsm_64(h, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T,
                              CUBLAS_DIAG_NON_UNIT, k, N, &one, R, N, V, k));
  CUBLAS_CHECK(cublasDtrsm_64(h, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                              CUBLAS_DIAG_NON_UNIT, k, N, &one, R, N, V, k));
  return 0;
}

/* out[i k + c] = sum_j G_c[i, j] in[j k + c] + lambda in[i k + c] (cpu/linalg.c's twin): inf =
 * (float) in, per head outf_c = G_c inf_c by cublasSsymv on the strided slices (incx = incy = k),
 * then out = outf + lambda in in float64. Row-major G_c is its column-major transpose: its
 * row-major upper triangle, the one given, is the column-major lower. The 64-bit entry point:
 * n^2 passes 2^31 at n >= 46341. */
extern "C" int sgn_cuda_heads_symv(cublasHandle_t h, int64_t n, int64_t k, const float *G,
                                   double lambda, const double *in, float *inf, float *outf,
                                   double *out, cudaStream_t st) {
  if (n <= 0 || k <= 0) return 0;
  const size_t len = (size_t)n * (size_t)k;
  if (sgn_cuda_d2f((int64_t)len, in, inf, st)) return -1;
  const float one = 1.0f, zero = 0.0f;
  for (int64_t c = 0; c < k; c++)
    CUBLAS_CHECK(cublasSsymv_64(h, CUBLAS_FILL_MODE_LOWER, n, &one,
                                G + (size_t)c * (size_t)n * (size_t)n, n, inf + c, k, &zero,
                                outf + c, k));
  widen_add_kernel<<<sgn_grid(len), SGN_THREADS, 0, st>>>(len, outf, lambda, in, out);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_heads_mean(int64_t n, int64_t k, const float *G, double *R,
                                   cudaStream_t st) {
  if (n <= 0 || k <= 0) return 0;
  heads_mean_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(n, k, G, 1.0 / (double)k, R);
  CUDA_CHECK_LAUNCH();
  return 0;
}

/* ---- R^-1 and the preconditioner as two products ---- */

/* cusolverDnXtrtri's workspaces for an (N, N) R, the 64-bit entry point (N^2 passes 2^31 at
 * N >= 46341): device bytes returned (at least WORK_ALIGN; 0 with the sticky error set), host
 * bytes in *host_bytes. probe is any device pointer (the size query reads nothing). */
extern "C" size_t sgn_cuda_r_inverse_work_bytes(cusolverDnHandle_t h, int64_t N, double *probe,
                                                size_t *host_bytes) {
  *host_bytes = 0;
  if (N <= 0) return WORK_ALIGN;
  size_t dev = 0, host = 0;
  if (CUSOLVER_FAILED(cusolverDnXtrtri_bufferSize(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT,
                                                  N, CUDA_R_64F, probe, N, &dev, &host)))
    return 0;
  *host_bytes = host;
  return dev > WORK_ALIGN ? dev : WORK_ALIGN;
}

/* R (N, N) row-major upper <- R^-1 in place (cpu/linalg.c's twin): row-major upper R is the
 * column-major lower L = R^T, and cusolverDnXtrtri's L^-1 = (R^-1)^T read row-major is R^-1 (the
 * zeros of the other triangle are not touched). work holds sgn_cuda_r_inverse_work_bytes(h, N);
 * the host workspace, if the query asks for one, lives for the call. Returns 0, the trtri info
 * (> 0: R[info - 1, info - 1] is zero), 1 + the first index whose R^-1 diagonal is not finite, or
 * -1 on a failure (sticky error set). */
extern "C" int sgn_cuda_r_inverse(cusolverDnHandle_t h, int64_t N, double *R, void *work,
                                  int *dinfo, int *host_info, cudaStream_t st) {
  if (N <= 0) return 0;
  if (N > INT_MAX - 1) {
    sgn_cuda_error("r_inverse: N = %lld: its devInfo (an int) cannot name every row", (long long)N);
    return -1;
  }
  size_t dev = 0, host = 0;
  CUSOLVER_CHECK(cusolverDnXtrtri_bufferSize(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, N,
                                             CUDA_R_64F, R, N, &dev, &host));
  void *host_work = NULL;
  if (host > 0 && !(host_work = malloc(host))) {
    sgn_cuda_error("r_inverse: out of host memory for trtri's %zu-byte workspace", host);
    return -1;
  }
  /* dinfo[1]: no non-finite diagonal yet (0x7f7f7f7f, above any N + 1 that fits an int) */
  int rc = CUDA_FAILED(cudaMemsetAsync(dinfo + 1, 0x7f, sizeof(int), st)) ||
           CUSOLVER_FAILED(cusolverDnXtrtri(h, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, N,
                                            CUDA_R_64F, R, N, work, dev, host_work, host, dinfo));
  if (!rc) {
    diag_finite_kernel<<<sgn_grid((size_t)N), SGN_THREADS, 0, st>>>(N, R, dinfo);
    rc = CUDA_FAILED(cudaGetLastError()) ||
         CUDA_FAILED(
             cudaMemcpyAsync(host_info, dinfo, 2 * sizeof(int), cudaMemcpyDeviceToHost, st)) ||
         CUDA_FAILED(cudaStreamSynchronize(st));
  }
  free(host_work); /* the stream has synchronized, or failed */
  if (rc) return -1;
  if (host_info[0] != 0) return host_info[0];
  if (host_info[1] <= N) return host_info[1];
  return 0;
}

/* V (N, k) <- Rinv Rinv^T V, Rinv (N, N) row-major upper R^-1 with zeros below (cpu/linalg.c's
 * twin), as two float64 GEMVs (k == 1) or GEMMs over the whole square: each reads Rinv once,
 * where the triangular solves of rtr_solve run a dependent chain over R. Row-major Rinv is
 * column-major A = Rinv^T (ld N); row-major V (N, k) is column-major V^T (k, N), ld k.
 *   W = Rinv^T V:  k == 1  w = A v                        -> cublasDgemv(N)
 *                  W^T (k, N) = V^T Rinv = V^T A^T        -> cublasDgemm(N, T, k, N, N)
 *   V = Rinv W:    k == 1  v = A^T w                      -> cublasDgemv(T)
 *                  V^T (k, N) = W^T Rinv^T = W^T A        -> cublasDgemm(N, N, k, N, N)
 * with W in work (N k doubles). The 64-bit entry points. */
extern "C" int sgn_cuda_rinv_apply(cublasHandle_t h, int64_t N, int64_t k, const double *Rinv,
                                   double *V, double *work) {
  if (N <= 0 || k <= 0) return 0;
  const double one = 1.0, zero = 0.0;
  if (k == 1) {
    CUBLAS_CHECK(cublasDgemv_64(h, CUBLAS_OP_N, N, N, &one, Rinv, N, V, 1, &zero, work, 1));
    CUBLAS_CHECK(cublasDgemv_64(h, CUBLAS_OP_T, N, N, &one, Rinv, N, work, 1, &zero, V, 1));
  } else {
    CUBLAS_CHECK(
        cublasDgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_T, k, N, N, &one, V, k, Rinv, N, &zero, work, k));
    CUBLAS_CHECK(
        cublasDgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_N, k, N, N, &one, work, k, Rinv, N, &zero, V, k));
  }
  return 0;
}
