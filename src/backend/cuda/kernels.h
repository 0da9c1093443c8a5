/* kernels.h — what the .cu files of src/backend/cuda/ share: the launchers each file exports (extern "C",
 * called by cuda/backend.cu), launch geometry, and a deterministic block sum.
 * Every launcher runs on the stream it is given and returns without synchronizing, except the
 * ones that return a host value (dot, residual, sketch_r, cholesky), which wait for it.
 * Launchers that return int return 0, or -1 with the backend's sticky error set (cuda_check.h):
 * the caller returns at once. Those that return a size give 0 on failure, dot and residual NaN. */
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

#include "cuda_check.h"

/* Records an error for sgn_last_error() through the host's recorder (cuda/context.cu keeps the
 * one the host lent at sgn_cuda_plugin_entry); returns code. The plugin never links host code.
 * For failures outside ops (opening, alloc); failures inside ops go to the sticky error. */
extern "C" sgn_status sgn_cuda_fail(sgn_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- launch geometry ---- */

#define SGN_THREADS 256           /* threads per block of every elementwise / row kernel */
#define SGN_MAX_BLOCKS (1u << 16) /* grid-stride loops cap their grids here */
#define SGN_RED_BLOCKS 1024       /* most partial sums of a two-stage reduction */

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

/* Bit r of a mask row (layout.h: bit r % 32 of word r / 32). */
__device__ __forceinline__ int sgn_mask_bit(const uint32_t *mrow, int64_t r) {
  return (int)((mrow[r >> 5] >> (r & 31)) & 1u);
}

/* A value rounded per a precision (precision.h) as a rounded copy holds it: a float (fp32,
 * tf32), or the top 16 bits of the rounded float, which are its bfloat16 bit pattern exactly
 * (bf16: cuBLAS's CUDA_R_16BF). */
__device__ __forceinline__ void sgn_store_rounded(float *p, float v) { *p = v; }
__device__ __forceinline__ void sgn_store_rounded(uint16_t *p, float v) {
  *p = (uint16_t)(__float_as_uint(v) >> 16);
}

/* ---- cuda/context.cu: helpers for the other files ---- */

struct sgn_cuda_host;
/* Keeps the host's error recorder (sgn_cuda_plugin_entry). */
void sgn_cuda_lend_host(const struct sgn_cuda_host *lent);

/* v as an int for a cuFFT dimension (cuBLAS and cuSOLVER are called through their 64-bit entry
 * points); -1, with the sticky error set, if it does not fit (check < 0 before using it). */
SGN_MUST_CHECK
int sgn_cuda_int(int64_t v, const char *what);
/* Makes *buf (device memory, *cap bytes) hold at least bytes and returns it; NULL, with the
 * sticky error set, if the device is out of memory (then *buf is NULL too). Frees the old buffer
 * (cudaFree synchronizes the device). */
SGN_MUST_CHECK void *sgn_cuda_grow(void **buf, size_t *cap, size_t bytes);

extern "C" {

/* ---- cuda/products.cu: masks, masked products, row reductions, Gram pieces ----
 * A chunk buffer (n, w0 + w1) holds neurons ch.r0a + j at column j < w0 and ch.r0b + j at
 * column w0 + j (layout.h); M is the bit mask, mw = SGN_MASK_WORDS(m) words per row. */

/* One chunk's halves into the running sums (the CPU twin's chunk_times_a):
 * v1[i,c] = alpha sum_{j<w0} A[r0a+j,c] g_ij, v2 the same over the second half, with
 * g = relu(P) (M == NULL, forward) or M o P (jvp). first and last: out = v1 + v2; otherwise
 * first: out = v1, acc1 = v2; later: out += v1, acc1 += v2; last: out += acc1.
 * P (n, w0 + w1), A (m, k), out and acc1 (n, k). Mirrored halves cancel exactly. */
SGN_MUST_CHECK
int sgn_cuda_chunk_times_a(int64_t n, int64_t k, const float *P, const uint32_t *M, int64_t mw,
                           sgn_chunk ch, const float *A, float alpha, int first, int last,
                           float *out, float *acc1, cudaStream_t st);
/* forward's one pass over the chunk Z (n, w0 + w1): the mask bits of both halves (as
 * sgn_cuda_mask_pack, M has m neurons) and chunk_times_a's running sums of relu(Z) A. Fused
 * when r0a and r0b are multiples of 32 (m and the chunk width multiples of 64), else
 * the two passes. */
SGN_MUST_CHECK
int sgn_cuda_forward_rows(int64_t n, int64_t k, int64_t m, const float *Z, sgn_chunk ch,
                          const float *A, float alpha, int first, int last, uint32_t *M, float *out,
                          float *acc1, cudaStream_t st);
/* Bits [r0, r0 + w) of each of rows mask rows (m neurons) <- Z[i, col0 + j] > 0; other bits
 * kept; the range ending at m clears the padding bits. Z (rows, ld). Launches on one stream run
 * in order, so the halves' ranges may share a word. */
SGN_MUST_CHECK
int sgn_cuda_mask_pack(int64_t rows, int64_t ld, int64_t col0, int64_t w, const float *Z,
                       int64_t r0, int64_t m, uint32_t *M, cudaStream_t st);
/* B[i, col] = M_ir sum_c Gv[i,c] A[r,c], r the chunk's neuron at col   B (n, w0 + w1), each
 * entry rounded per prec (precision.h) as sgn_store_rounded holds it: floats, or bfloat16 bit
 * patterns for bf16 */
SGN_MUST_CHECK
int sgn_cuda_vjp_rows(int64_t n, int64_t k, const uint32_t *M, int64_t mw, sgn_chunk ch,
                      const float *Gv, const float *A, sgn_precision prec, void *B,
                      cudaStream_t st);
/* out[ii, j] = bit r0 + j of mask row ii as 0.0f / 1.0f, j < w; out rows of stride ld,
 * M at the first row */
SGN_MUST_CHECK
int sgn_cuda_mask_expand(int64_t rows, const uint32_t *M, int64_t mw, int64_t r0, int64_t w,
                         int64_t ld, float *out, cudaStream_t st);
/* Ms (rows, w) = Mf (rows, w; stride ldm) diag(A[r0:r0+w, c] o A[r0:r0+w, e]), A (m, k) */
SGN_MUST_CHECK
int sgn_cuda_mask_signed(int64_t rows, int64_t w, int64_t ldm, int64_t k, const float *Mf,
                         const float *A, int64_t r0, int64_t c, int64_t e, float *Ms,
                         cudaStream_t st);
/* For i in [i0, i0 + rb), j in [i, n): v = Kb S inv_m at block entry (i - i0, j - i0) (row
 * stride n - i0), written to G (n k, n k) at ((i,c),(j,e)) and its three mirrors. */
SGN_MUST_CHECK
int sgn_cuda_gram_scatter(int64_t n, int64_t k, int64_t i0, int64_t rb, int64_t c, int64_t e,
                          const float *Kb, const float *S, double inv_m, double *G,
                          cudaStream_t st);
/* out (rows_pad, ld) int8 = mask rows [0, rows) of M (stride mw words), neurons [r0, r0 + w) as
 * 0/1 bytes, or with A (m, k) non-NULL as 0/+-1 (the sign A[r,c] A[r,e]); columns [w, ld) and
 * rows [rows, rows_pad) 0: the operands of the Gram's int8 GEMM */
SGN_MUST_CHECK
int sgn_cuda_mask_bytes(int64_t rows, int64_t rows_pad, const uint32_t *M, int64_t mw, int64_t r0,
                        int64_t w, int64_t ld, const float *A, int64_t k, int64_t c, int64_t e,
                        int8_t *out, cudaStream_t st);
/* out (rows_pad, ld) int8 = mask rows [0, rows) of M (stride mw words), the neurons of the
 * two-range chunk ch (layout.h: [r0a, r0a + w0) then [r0b, r0b + w1)) as 0/1 bytes; columns
 * [w0 + w1, ld) and rows [rows, rows_pad) 0: a separate-outputs head for the int8 GEMM */
SGN_MUST_CHECK
int sgn_cuda_mask_bytes_chunk(int64_t rows, int64_t rows_pad, const uint32_t *M, int64_t mw,
                              sgn_chunk ch, int64_t ld, int8_t *out, cudaStream_t st);
/* sgn_cuda_gram_scatter with integer counts S (rb, lds) */
SGN_MUST_CHECK
int sgn_cuda_gram_scatter_i32(int64_t n, int64_t k, int64_t i0, int64_t rb, int64_t c, int64_t e,
                              const float *Kb, const int32_t *S, int64_t lds, double inv_m,
                              double *G, cudaStream_t st);
/* For i in [i0, i0 + rb), j in [i, n): v = (float)((Kr S) inv_m) at block entry (i - i0, j - i0),
 * Kr (rb, n - i0) of row stride ldk, S (rb, lds) integer counts, written to the float32 block
 * G (n, n) at (i, j): a separate-outputs head's Gram block, its upper triangle */
SGN_MUST_CHECK
int sgn_cuda_heads_scatter(int64_t n, int64_t i0, int64_t rb, const float *Kr, int64_t ldk,
                           const int32_t *S, int64_t lds, double inv_m, float *G, cudaStream_t st);
/* diag[i] = ||x_i||^2 (1/m) sum_r M_ir   X (n, d), M the bit mask */
SGN_MUST_CHECK
int sgn_cuda_gram_diag(int64_t n, int64_t d, int64_t m, const float *X, const uint32_t *M,
                       double *diag, cudaStream_t st);

/* ---- hadamard.cu ---- */

/* x (rows, len) row-major in place: each row <- H row (orthonormal, Sylvester order); x 16-byte
 * aligned (float4 accesses; otherwise -1 with the sticky error set) */
SGN_MUST_CHECK
int sgn_cuda_hadamard(float *x, int64_t rows, int64_t len, cudaStream_t st);
/* Passes over global memory sgn_cuda_hadamard makes at this length (backend_cuda.h). */
int sgn_cuda_hadamard_passes(int64_t len);

/* ---- sketch.cu ---- */

size_t sgn_cuda_sketch_work_bytes(sgn_dims dm, sgn_sketch kind, int64_t s);
/* Y (n, s) = the tensor SRHT of the k = 1 block of J (see sketch.h) */
SGN_MUST_CHECK
int sgn_cuda_sketch_srht(sgn_dims dm, int64_t s, uint64_t seed, const float *X, const uint32_t *M,
                         void *work, float *Y, cudaStream_t st);
/* Y (n, s) = (M Omega1) o (X Omega2) / sqrt(m s) (see sketch.h); h bound to st */
SGN_MUST_CHECK
int sgn_cuda_sketch_gaussian(cublasHandle_t h, sgn_dims dm, int64_t s, uint64_t seed,
                             const float *X, const uint32_t *M, void *work, float *Y,
                             cudaStream_t st);

/* ---- sketch_fft.cu: srft and countsketch on cuFFT ---- */

/* A backend's cuFFT plans for the FFT sketches (NULL until the first use; the backend frees it
 * with sgn_cuda_sketch_fft_free). */
typedef struct sgn_cuda_fft sgn_cuda_fft;
void sgn_cuda_sketch_fft_free(sgn_cuda_fft *cache);
/* Work bytes of an srft / countsketch sketch of (dm, s), cuFFT's work area included (0 for
 * other kinds). Makes the plans such a sketch runs and keeps them in *cache, so the sketch
 * allocates nothing. */
size_t sgn_cuda_sketch_fft_work_bytes(sgn_cuda_fft **cache, sgn_dims dm, sgn_sketch kind, int64_t s,
                                      cudaStream_t st);
/* Y (n, s) = the tensor SRFT of the k = 1 block of J (see sketch.h) */
SGN_MUST_CHECK
int sgn_cuda_sketch_srft(sgn_cuda_fft **cache, sgn_dims dm, int64_t s, uint64_t seed,
                         const float *X, const uint32_t *M, void *work, float *Y, cudaStream_t st);
/* Y (n, s) = TensorSketch of the k = 1 block of J (see sketch.h) */
SGN_MUST_CHECK
int sgn_cuda_sketch_countsketch(sgn_cuda_fft **cache, sgn_dims dm, int64_t s, uint64_t seed,
                                const float *X, const uint32_t *M, void *work, float *Y,
                                cudaStream_t st);
/* U (rows, ld) = rows i0 .. i0 + rows - 1 of the bit mask M, signed: sign[r] M_(i0+ii),r for
 * r < m (sign NULL: 1), 0 for m <= r < ld (sgn_sketch_mask_rows_cpu's twin) */
SGN_MUST_CHECK
int sgn_cuda_sketch_mask_rows(sgn_dims dm, const uint32_t *M, int64_t i0, int64_t rows,
                              const float *sign, int64_t ld, float *U, cudaStream_t st);

/* ---- linalg.cu (float64; handles bound to st; p: the backend's cuSOLVER params) ---- */

/* P (rows, ldp) = columns c0 .. c0 + w - 1 of Y (rows, s) rounded per prec (precision.h), 0 in
 * the columns w .. ldp - 1, as sgn_store_rounded holds them (bfloat16 bit patterns for bf16,
 * else floats): the rounded copies of sketch_gram's panels and of the products' operands */
SGN_MUST_CHECK
int sgn_cuda_round_rows(int64_t rows, int64_t s, int64_t c0, int64_t w, int64_t ldp,
                        sgn_precision prec, const float *Y, void *P, cudaStream_t st);
/* work bytes of sketch_gram and sketch_r for (n, s) at prec; probe is any device pointer (the
 * size query reads nothing) */
size_t sgn_cuda_sketch_r_work_bytes(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t n,
                                    int64_t s, sgn_precision prec, double *probe);
/* G's upper triangle (row-major; below it not written) = Y Y^T at prec (backend.h sketch_gram):
 * fp64 cublasDsyrk_64 over double panels, the others cublasGemmEx_64 per float32 panel and tile
 * added in float64. Returns 0, or -1 on a failure (sticky error set). */
SGN_MUST_CHECK
int sgn_cuda_sketch_gram(cublasHandle_t b, int64_t n, int64_t s, const float *Y, sgn_precision prec,
                         void *work, double *G, cudaStream_t st);
/* R (n, n) row-major upper, R^T R = Y Y^T + lambda I (sgn_cuda_sketch_gram at prec, then
 * sgn_cuda_cholesky; dinfo, host_info as there). Returns 0, or 1 if the Gram + lambda I is not
 * numerically positive definite or R has a non-finite diagonal, or -1 on a failure (sticky
 * error set). */
SGN_MUST_CHECK
int sgn_cuda_sketch_r(cublasHandle_t b, cusolverDnHandle_t h, cusolverDnParams_t p, int64_t n,
                      int64_t s, const float *Y, double lambda, sgn_precision prec, void *work,
                      double *R, int *dinfo, int *host_info, cudaStream_t st);
/* G (N, N) -> R upper with R^T R = G + lambda I, lower part zeroed (cusolverDnXpotrf). work: the
 * caller's sgn_cuda_cholesky_work_bytes(h, p, N) of device memory; dinfo: 2 device ints;
 * host_info: 2 pinned ints. Returns 0, the potrf info (> 0: not positive definite), or 1 + the
 * first index whose diagonal came out non-finite (NaN in G), or -1 on a failure (sticky error
 * set). */
size_t sgn_cuda_cholesky_work_bytes(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t N,
                                    double *probe);
SGN_MUST_CHECK
int sgn_cuda_cholesky(cusolverDnHandle_t h, cusolverDnParams_t p, int64_t N, double *G,
                      double lambda, void *work, int *dinfo, int *host_info, cudaStream_t st);
/* V (N, k) row-major <- (R^T R)^-1 V, R (N, N) row-major upper */
SGN_MUST_CHECK
int sgn_cuda_rtr_solve(cublasHandle_t h, int64_t N, int64_t k, const double *R, double *V);
/* cusolverDnXtrtri's workspace for (N, N): device bytes returned (0: the sticky error is set),
 * host bytes in *host_bytes; probe is any device pointer */
size_t sgn_cuda_r_inverse_work_bytes(cusolverDnHandle_t h, int64_t N, double *probe,
                                     size_t *host_bytes);
/* R (N, N) row-major upper <- R^-1 in place (cusolverDnXtrtri, work of the size above; dinfo,
 * host_info as for sgn_cuda_cholesky). Returns 0, > 0 when R has a zero diagonal entry or R^-1 a
 * non-finite one, or -1 on a failure (sticky error set). */
SGN_MUST_CHECK
int sgn_cuda_r_inverse(cusolverDnHandle_t h, int64_t N, double *R, void *work, int *dinfo,
                       int *host_info, cudaStream_t st);
/* V (N, k) row-major <- Rinv Rinv^T V, Rinv (N, N) row-major R^-1 with zeros below: two float64
 * GEMVs / GEMMs; work N k doubles */
SGN_MUST_CHECK
int sgn_cuda_rinv_apply(cublasHandle_t h, int64_t N, int64_t k, const double *Rinv, double *V,
                        double *work);

/* out[i k + c] = sum_j G_c[i, j] in[j k + c] + lambda in[i k + c], G (k, n, n) float32 row-major
 * symmetric blocks, in and out (n, k) float64 apart in memory: the products in float32 on
 * inf = (float) in into outf (both (n, k) float scratch), lambda in added in float64; h bound
 * to st */
SGN_MUST_CHECK
int sgn_cuda_heads_symv(cublasHandle_t h, int64_t n, int64_t k, const float *G, double lambda,
                        const double *in, float *inf, float *outf, double *out, cudaStream_t st);
/* R (n, n) float64 upper triangle = the k blocks' mean (backend.h heads_mean, cpu/heads.c's
 * twin); below the diagonal not written */
int sgn_cuda_heads_mean(int64_t n, int64_t k, const float *G, double *R, cudaStream_t st);

/* ---- vecops.cu (float64 unless named _f) ----
 * dot and residual reduce in two stages through partials (SGN_RED_BLOCKS + 1 device doubles)
 * and bring the sum back through host (1 pinned double); they wait for the stream. */

double sgn_cuda_dot(int64_t len, const double *x, const double *y, double *partials, double *host,
                    cudaStream_t st);
/* r = F - Y (float64); returns sum r^2 */
double sgn_cuda_residual(int64_t len, const float *F, const float *Y, double *r, double *partials,
                         double *host, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_axpy(int64_t len, double a, const double *x, double *y, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_xpby(int64_t len, const double *x, double b, double *y, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_scal(int64_t len, double a, double *x, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_d2f(int64_t len, const double *x, float *y, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_f2d(int64_t len, const float *x, double *y, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_axpy_f(int64_t len, float a, const float *x, float *y, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_gather_rows(int64_t b, int64_t cols, const float *src, const int64_t *idx, float *out,
                         cudaStream_t st);
/* PCG's scalars in device memory (backend.h pcg_*), s a sgn_pcg_ctl (pcg_control.h) in device
 * memory; none waits for the stream. pcg_dot is dot's reduction with the sum left at out. */
SGN_MUST_CHECK
int sgn_cuda_pcg_dot(int64_t len, const double *x, const double *y, double *partials, double *out,
                     cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_pcg_update(int64_t len, const struct sgn_pcg_ctl *s, const double *p, const double *q,
                        double *x, double *r, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_pcg_control(struct sgn_pcg_ctl *s, cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_pcg_direction(int64_t len, const struct sgn_pcg_ctl *s, const double *z, double *p,
                           cudaStream_t st);
SGN_MUST_CHECK
int sgn_cuda_adam(int64_t len, float *W, const float *g, float *mom, float *vel, double lr,
                  double b1, double b2, double eps, int64_t t, cudaStream_t st);

} /* extern "C" */

#endif
