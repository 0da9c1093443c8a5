/* backend.cu — the CUDA backend (twin of cpu/backend.c, and of cpu/products.c and cpu/gram.c for
 * the products' and the Gram's GEMMs): the ops table of backend.h over cuBLAS, cuSOLVER and the
 * kernels of this directory, one stream per backend with every handle bound to it. A failure
 * inside an op (a CUDA or library error, a failed scratch growth) becomes the backend's sticky
 * error, after which every op returns at entry; nothing here ends the process or prints. Host arrays
 * are row-major and cuBLAS is column-major: each GEMM below spells out its transposes. Neurons go
 * through the GEMMs in chunks, each in two halves [0, m/2) and [m/2, m) as on the CPU (layout.h),
 * so a symmetric model gives f == 0 bit for bit; the mask is bit-packed (layout.h). TF32 stays
 * off (CUBLAS_DEFAULT_MATH): the products inside CG need float32; only the sketch Gram, and the
 * products at the product precision tf32, ask for TF32 tensor cores, per call
 * (CUBLAS_COMPUTE_32F_FAST_TF32), on values rounded to TF32 first. Every cuBLAS and cuSOLVER
 * call is a 64-bit entry point (_64, Xpotrf): at n >= 46341 an (n, n) matrix passes 2^31
 * entries, and the (n, chunk) and (n, s) operands pass it at n m or n s > 2^31. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cufft.h>
#include <curand.h>

#include "cuda_check.h"
#include "kernels.h"
#include "pcg_control.h"
#include "precision.h"

extern "C" {
#include "backend_cuda.h"
}

/* gram's row blocks are cut so their scratch stays near this many floats (128 MiB)... */
#define GRAM_SCRATCH_FLOATS ((size_t)1 << 25)
/* ...but keep at least this many rows (the CPU twin's rule), growing the scratch if needed */
#define GRAM_MIN_ROWS 64
/* cuBLAS's workspace, set once so no call allocates one, which a recorded graph (PCG's
 * iteration) may not: the size cuBLAS's documentation recommends for Hopper */
#define BLAS_WORKSPACE_BYTES ((size_t)32 << 20)

typedef struct cuda_ctx {
  int device;
  cudaStream_t stream;
  cublasHandle_t blas;            /* bound to stream, CUBLAS_DEFAULT_MATH, host pointer mode */
  void *blas_ws;                  /* device (BLAS_WORKSPACE_BYTES): blas's workspace */
  cusolverDnHandle_t solver;      /* bound to stream */
  cusolverDnParams_t params;      /* the 64-bit API's options (defaults) for cusolverDnXpotrf */
  double *partials;               /* (SGN_RED_BLOCKS + 1) device: reduction partial sums, result */
  int *dinfo;                     /* device (2): cuSOLVER devInfo, first non-finite diagonal */
  void *pinned;                   /* host, page-locked: the scalars that come back */
  double *host_d;                 /* (1) in pinned */
  int *host_i;                    /* (2) in pinned */
  void *scratch;                  /* device, grow-only: gram's row blocks, heads_symv's vectors */
  size_t scratch_cap;             /* bytes */
  sgn_cuda_fft *fft;              /* sketch_fft.cu's cuFFT plans, made by sketch_work_bytes */
  const sgn_stop_flag *stop;      /* backend.h set_stop: read by the host loops; NULL */
  sgn_precision products;         /* backend.h set_product_precision (0, fp64: as fp32) */
  int no_graphs;                  /* SKETCHGN_CUDA_GRAPHS=0: graph_begin declines */
  char error[SGN_CUDA_ERROR_LEN]; /* the sticky error (backend.h): "" while every op worked */
} cuda_ctx;

/* ---- errors (cuda/context.cu keeps the thread's current slot) ----
 * First line of every op: c = the backend, failures inside go to its sticky error (an
 * sgn_cuda_op_scope, undone when the op returns), and the op returns (with the value given, if
 * any) when that error is set already. */
#define OP_ENTER(c, ctx, ...)                          \
  cuda_ctx *c = (cuda_ctx *)(ctx);                     \
  sgn_cuda_op_scope sgn_op_scope_(c->error, __func__); \
  if (c->error[0]) return __VA_ARGS__

/* ---- memory ----
 * Once the sticky error is set every op returns at entry (alloc with NULL), except free and
 * destroy, which always release. */

/* zero-filled; NULL (and sgn_last_error) when the device is out of memory */
static void *cuda_alloc(void *ctx, size_t bytes) {
  OP_ENTER(c, ctx, (sgn_cuda_fail(SGN_E_RUNTIME, "%s", c->error), nullptr));
  void *p = NULL;
  if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
    (void)cudaGetLastError(); /* not sticky: clear it so the next launch check does not see it */
    sgn_cuda_fail(SGN_E_RUNTIME, "gpu backend: out of device memory allocating %zu bytes", bytes);
    return NULL;
  }
  if (CUDA_FAILED(cudaMemsetAsync(p, 0, bytes ? bytes : 1, c->stream))) {
    (void)cudaFree(p);
    sgn_cuda_fail(SGN_E_RUNTIME, "%s", c->error);
    return NULL;
  }
  return p;
}

static void cuda_free(void *ctx, void *p) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  sgn_cuda_op_scope scope(c->error, __func__);
  (void)CUDA_FAILED(cudaFree(p)); /* recorded, if it is the first failure */
}

/* host -> device; returns when src may be reused */
static void cuda_upload(void *ctx, void *dst, const void *src, size_t bytes) {
  OP_ENTER(c, ctx);
  if (!bytes) return;
  if (CUDA_FAILED(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream))) return;
  (void)CUDA_FAILED(cudaStreamSynchronize(c->stream));
}

/* device -> host; returns when dst holds the data */
static void cuda_download(void *ctx, void *dst, const void *src, size_t bytes) {
  OP_ENTER(c, ctx);
  if (!bytes) return;
  if (CUDA_FAILED(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream))) return;
  (void)CUDA_FAILED(cudaStreamSynchronize(c->stream));
}

static void cuda_copy(void *ctx, void *dst, const void *src, size_t bytes) {
  OP_ENTER(c, ctx);
  if (!bytes) return;
  (void)CUDA_FAILED(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
}

static void cuda_sync(void *ctx) {
  OP_ENTER(c, ctx);
  (void)CUDA_FAILED(cudaStreamSynchronize(c->stream));
}

/* Free device memory (cudaMemGetInfo), less 5% for cuBLAS/cuSOLVER workspaces and the
 * backend's own scratch that grow after a session is sized. */
static size_t cuda_mem_available(void *ctx) {
  OP_ENTER(c, ctx, 0);
  (void)c;
  size_t free_bytes = 0, total_bytes = 0;
  if (CUDA_FAILED(cudaMemGetInfo(&free_bytes, &total_bytes))) return 0;
  return free_bytes - free_bytes / 20;
}

/* ---- network products ---- */

/* P[:, :w0] = X Q[r0a:r0a+w0]^T, P[:, w0:] = X Q[r0b:r0b+w1]^T: chunk ch of X Q^T (layout.h),
 * P (n, w0 + w1), X (n, d), Q (m, d) (W or a direction V). With w0 == w1 the halves are one
 * strided-batched call (batch 2), so both run the same kernel with the same decomposition
 * whatever the alignment of the second half's pointers: mirrored rows of W give bitwise equal
 * halves. (Two plain calls could pick different kernels when the second half's pointers are
 * less aligned than the first's.) Returns 0 or -1. */
SGN_MUST_CHECK static int chunk_xqt(cuda_ctx *c, int64_t n, int64_t d, const float *X,
                                    const float *Q, sgn_chunk ch, float *P) {
  const float one = 1.0f, zero = 0.0f;
  if (n == 0 || ch.w0 + ch.w1 == 0) return 0;
  const int64_t ld = ch.w0 + ch.w1;
  /* P[:, col:col+w](n, w) = X(n, d) Q_half(w, d)^T, row stride ld. Column-major:
   * P_half^T(w, n) ld ld = Q_half(w, d) X^T(d, n); Q_half is stored as (d, w) ld d -> T,
   * X as (d, n) ld d -> N:  cublasSgemm_64(T, N, w, n, d); batch strides Q: (r0b - r0a) d,
   * X: 0, P: w0 */
  if (ch.w0 > 0 && ch.w0 == ch.w1) {
    CUBLAS_CHECK(cublasSgemmStridedBatched_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, ch.w0, n, d, &one,
                                              Q + ch.r0a * d, d, (long long)((ch.r0b - ch.r0a) * d),
                                              X, d, 0LL, &zero, P, ld, (long long)ch.w0, 2));
    return 0;
  }
  const int64_t r0[2] = {ch.r0a, ch.r0b}, w[2] = {ch.w0, ch.w1}, col[2] = {0, ch.w0};
  for (int half = 0; half < 2; half++) {
    if (w[half] == 0) continue;
    CUBLAS_CHECK(cublasSgemm_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, w[half], n, d, &one,
                                Q + r0[half] * d, d, X, d, &zero, P + col[half], ld));
  }
  return 0;
}

/* ---- the product precision (backend.h set_product_precision) ----
 * tf32 and bf16 round the GEMM operands into copies first, as sketch_gram rounds Y
 * (sgn_cuda_round_rows): X once per op into the scratch, each chunk's rows of W or V after it,
 * J^T g's B where vjp_rows writes it; then cublasGemmEx_64 with CUBLAS_COMPUTE_32F_FAST_TF32
 * (tf32) or CUDA_R_16BF inputs and CUBLAS_COMPUTE_32F (bf16). What the tensor cores read is
 * rounded already, so their products are exact and the result differs from the CPU's only in
 * the order of the float32 sums. The copies' rows are padded with zeros to a multiple of 8
 * elements (16-byte rows of bfloat16, as tensor-core GEMMs want); the zeros add nothing. There
 * is no strided-batched call here (the emulator models no cublasGemmStridedBatchedEx): the
 * halves are two calls of the same shape, X's copy shared and each half of Q's copy at its own
 * RND_ALIGN boundary, so mirrored rows of W give equal halves as long as cuBLAS picks the same
 * kernel for both; their outputs start w0 floats apart (J^T g's B halves w0 elements apart too),
 * which for a w0 that is no multiple of 4 might change its pick: the symmetric-model tests (m =
 * 50 among them) check it on a GPU. The scratch is grown to its size at the first product (a
 * session's first forward), so later ones allocate nothing. */

#define RND_ALIGN 256 /* bytes */

static cudaDataType rnd_type(sgn_precision p) {
  return p == SGN_PRECISION_BF16 ? CUDA_R_16BF : CUDA_R_32F;
}

static cublasComputeType_t rnd_compute(sgn_precision p) {
  return p == SGN_PRECISION_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

/* elements per row of a rounded copy with d columns */
static int64_t rnd_ld(int64_t d) { return (d + 7) / 8 * 8; }

/* bytes of a rounded copy of rows (rows, d), to the next RND_ALIGN */
static size_t rnd_bytes(int64_t rows, int64_t d, sgn_precision p) {
  const size_t elem = p == SGN_PRECISION_BF16 ? sizeof(uint16_t) : sizeof(float);
  const size_t b = (size_t)rows * (size_t)rnd_ld(d) * elem;
  return (b + RND_ALIGN - 1) / RND_ALIGN * RND_ALIGN;
}

/* NULL at fp32; else the scratch holding X (n, d) rounded at its start and room after it for a
 * chunk's two halves of Q (chunk_xqt_at); NULL with the sticky error set on failure (the caller
 * tells the two apart by c->error). */
static char *rounded_x(cuda_ctx *c, sgn_dims dm, const float *X) {
  const sgn_precision p = c->products;
  if (!sgn_precision_dropped_bits(p)) return NULL;
  const size_t bytes = rnd_bytes(dm.n, dm.d, p) + 2 * rnd_bytes(sgn_chunk_half(dm), dm.d, p);
  char *rs = (char *)sgn_cuda_grow(&c->scratch, &c->scratch_cap, bytes);
  if (!rs || sgn_cuda_round_rows(dm.n, dm.d, 0, dm.d, rnd_ld(dm.d), p, X, rs, c->stream))
    return NULL;
  return rs;
}

/* chunk_xqt at the product precision: rs NULL (fp32) chunk_xqt itself; else with X's rounded
 * copy at rs (rounded_x) and the chunk's halves of Q rounded after it, one cublasGemmEx_64 per
 * half, as chunk_xqt's: P_half^T(w, n) ld ld = Qr_half(w, d) Xr^T(d, n), both copies stored as
 * (rnd_ld(d), .) column-major -> (T, N). Returns 0 or -1. */
SGN_MUST_CHECK static int chunk_xqt_at(cuda_ctx *c, sgn_dims dm, const float *X, const char *rs,
                                       const float *Q, sgn_chunk ch, float *P) {
  if (!rs) return chunk_xqt(c, dm.n, dm.d, X, Q, ch, P);
  const sgn_precision p = c->products;
  const int64_t n = dm.n, d = dm.d, ld = ch.w0 + ch.w1, rl = rnd_ld(d);
  const float one = 1.0f, zero = 0.0f;
  if (n == 0 || ld == 0) return 0;
  char *q0 = (char *)rs + rnd_bytes(n, d, p);
  char *const Qr[2] = {q0, q0 + rnd_bytes(sgn_chunk_half(dm), d, p)};
  const int64_t r0[2] = {ch.r0a, ch.r0b}, w[2] = {ch.w0, ch.w1}, col[2] = {0, ch.w0};
  for (int half = 0; half < 2; half++) {
    if (w[half] == 0) continue;
    if (sgn_cuda_round_rows(w[half], d, 0, d, rl, p, Q + r0[half] * d, Qr[half], c->stream))
      return -1;
    CUBLAS_CHECK(cublasGemmEx_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, w[half], n, d, &one, Qr[half],
                                 rnd_type(p), rl, rs, rnd_type(p), rl, &zero, P + col[half],
                                 CUDA_R_32F, ld, rnd_compute(p), CUBLAS_GEMM_DEFAULT));
  }
  return 0;
}

/* out[r0:r0+w](w, d) = alpha B_half^T X per half (cuda_vjp's GEMMs) at the product precision,
 * B (n, w0 + w1) rounded by vjp_rows, X's rounded copy at rs: one cublasGemmEx_64 per half,
 * out_half^T(d, w) ld d = Xr^T(d, n) B_half(n, w), Xr stored as (rnd_ld(d), n) -> N and B_half
 * as (w, n) ld w0 + w1 -> T. Returns 0 or -1. */
SGN_MUST_CHECK static int chunk_btx_rounded(cuda_ctx *c, sgn_dims dm, const char *rs, const void *B,
                                            sgn_chunk ch, float alpha, float *out) {
  const sgn_precision p = c->products;
  const size_t elem = p == SGN_PRECISION_BF16 ? sizeof(uint16_t) : sizeof(float);
  const int64_t d = dm.d, ld = ch.w0 + ch.w1, r0[2] = {ch.r0a, ch.r0b}, w[2] = {ch.w0, ch.w1};
  const int64_t col[2] = {0, ch.w0};
  const float zero = 0.0f;
  for (int half = 0; half < 2; half++) {
    if (w[half] == 0) continue;
    CUBLAS_CHECK(cublasGemmEx_64(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, d, w[half], dm.n, &alpha, rs,
                                 rnd_type(p), rnd_ld(d), (const char *)B + col[half] * elem,
                                 rnd_type(p), ld, &zero, out + r0[half] * d, CUDA_R_32F, d,
                                 rnd_compute(p), CUBLAS_GEMM_DEFAULT));
  }
  return 0;
}

static void cuda_set_product_precision(void *ctx, sgn_precision prec) {
  ((cuda_ctx *)ctx)->products = prec;
}

/* The second half's running sum (n, k) of a chunked product: after the chunk in work */
static float *chunk_acc1(sgn_dims dm, float *work) {
  return sgn_chunked(dm) ? work + (size_t)dm.n * (size_t)(2 * sgn_chunk_half(dm)) : NULL;
}

/* M = 1[X W^T > 0] (bits); F = m^-1/2 relu(X W^T) A (n, k), chunk by chunk through work, the
 * halves' sums added at the end; the mask and the sums read Z once (sgn_cuda_forward_rows) */
static void cuda_forward(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                         float *work, uint32_t *M, float *F) {
  OP_ENTER(c, ctx);
  const float alpha = (float)(1.0 / sqrt((double)dm.m));
  const int64_t nc = sgn_chunk_count(dm);
  float *acc1 = chunk_acc1(dm, work);
  const char *rs = rounded_x(c, dm, X);
  if (c->error[0]) return;
  for (int64_t j = 0; j < nc; j++) {
    const sgn_chunk ch = sgn_chunk_at(dm, j);
    if (chunk_xqt_at(c, dm, X, rs, W, ch, work)) return; /* Z chunk (n, w0 + w1) */
    /* the mask bits and relu(Z) A in one pass over Z */
    if (sgn_cuda_forward_rows(dm.n, dm.k, dm.m, work, ch, A, alpha, j == 0, j == nc - 1, M, F, acc1,
                              c->stream))
      return;
  }
}

/* out = J V: out[i,c] = m^-1/2 sum_r A[r,c] M_ir <V_r, x_i>   (n, k) */
static void cuda_jvp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                     const float *V, float *work, float *out) {
  OP_ENTER(c, ctx);
  const float alpha = (float)(1.0 / sqrt((double)dm.m));
  const int64_t nc = sgn_chunk_count(dm), mw = SGN_MASK_WORDS(dm.m);
  float *acc1 = chunk_acc1(dm, work);
  const char *rs = rounded_x(c, dm, X);
  if (c->error[0]) return;
  for (int64_t j = 0; j < nc; j++) {
    const sgn_chunk ch = sgn_chunk_at(dm, j);
    if (chunk_xqt_at(c, dm, X, rs, V, ch, work)) return; /* P = X V^T chunk */
    if (sgn_cuda_chunk_times_a(dm.n, dm.k, work, M, mw, ch, A, alpha, j == 0, j == nc - 1, out,
                               acc1, c->stream))
      return;
  }
}

/* out = J^T Gv: out[r,:] = m^-1/2 sum_i (sum_c Gv[i,c] A[r,c]) M_ir x_i   (m, d) */
static void cuda_vjp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                     const float *Gv, float *work, float *out) {
  OP_ENTER(c, ctx);
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
  const float alpha = (float)(1.0 / sqrt((double)m)), zero = 0.0f;
  if (n == 0) {
    (void)CUDA_FAILED(cudaMemsetAsync(out, 0, (size_t)m * (size_t)d * sizeof(float), c->stream));
    return;
  }
  const int64_t nc = sgn_chunk_count(dm);
  const char *rs = rounded_x(c, dm, X);
  if (c->error[0]) return;
  for (int64_t j = 0; j < nc; j++) {
    const sgn_chunk ch = sgn_chunk_at(dm, j);
    const int64_t ld = ch.w0 + ch.w1;
    /* B = M o (Gv A^T) chunk, rounded per the product precision (floats: fp32 as it is) */
    if (sgn_cuda_vjp_rows(n, dm.k, M, mw, ch, Gv, A, c->products, work, c->stream)) return;
    if (rs) {
      if (chunk_btx_rounded(c, dm, rs, work, ch, alpha, out)) return;
      continue;
    }
    /* out[r0:r0+w](w, d) = alpha B_half^T(w, n) X(n, d), B_half = B[:, col:col+w] row stride
     * ld. Column-major: out_half^T(d, w) ld d = X^T(d, n) B_half(n, w); X is stored as (d, n)
     * ld d -> N, B_half as (w, n) ld ld -> T:  cublasSgemm_64(N, T, d, w, n); with w0 == w1 one
     * strided-batched call as in chunk_xqt (strides X: 0, B: w0, out: (r0b - r0a) d), so a
     * mirrored B gives an exactly antisymmetric J^T g */
    if (ch.w0 > 0 && ch.w0 == ch.w1) {
      if (CUBLAS_FAILED(cublasSgemmStridedBatched_64(
              c->blas, CUBLAS_OP_N, CUBLAS_OP_T, d, ch.w0, n, &alpha, X, d, 0LL, work, ld,
              (long long)ch.w0, &zero, out + ch.r0a * d, d, (long long)((ch.r0b - ch.r0a) * d), 2)))
        return;
      continue;
    }
    const int64_t r0[2] = {ch.r0a, ch.r0b}, w[2] = {ch.w0, ch.w1}, col[2] = {0, ch.w0};
    for (int half = 0; half < 2; half++) {
      if (w[half] == 0) continue;
      if (CUBLAS_FAILED(cublasSgemm_64(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, d, w[half], n, &alpha, X,
                                       d, work + col[half], ld, &zero, out + r0[half] * d, d)))
        return;
    }
  }
}

/* G[(i,c),(j,e)] = <x_i,x_j> (1/m) sum_r A[r,c] A[r,e] M_ir M_jr; (n, n) block only if !full.
 * The CPU twin's blocking: row blocks [i0, i0 + rb) against columns [i0, n), K = X X^T and
 * S = M diag(A_c o A_e) M^T on the block (exact integers in float32), summed over neuron ranges
 * of the chunk width when chunked (the mask expanded per range into work; unchunked, once),
 * each entry written with its mirrors, so G is exactly symmetric. */
SGN_MUST_CHECK static int gram_blocks(cuda_ctx *c, sgn_dims dm, const float *X, const uint32_t *M,
                                      const float *A, int full, float *work, double *G) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
  const int64_t k = full ? dm.k : 1;
  const double inv_m = 1.0 / (double)m;
  const float one = 1.0f, zero = 0.0f;
  if (n == 0) return 0;
  const int chunked = sgn_chunked(dm);
  const int64_t cwid = chunked ? 2 * sgn_chunk_half(dm) : m; /* neurons per range */

  /* M as floats (n, m) */
  if (!chunked && sgn_cuda_mask_expand(n, M, mw, 0, m, m, work, c->stream)) return -1;

  /* per row: K block, plain S block, signed S block (n each), signed M rows (cwid) */
  const size_t per_row = 3 * (size_t)n + (size_t)cwid;
  int64_t nb = (int64_t)(GRAM_SCRATCH_FLOATS / per_row);
  if (nb < GRAM_MIN_ROWS) nb = GRAM_MIN_ROWS;
  if (nb > n) nb = n;
  float *Kb = (float *)sgn_cuda_grow(&c->scratch, &c->scratch_cap,
                                     (size_t)nb * per_row * sizeof(float));
  if (!Kb) return -1;
  float *Sb = Kb + (size_t)nb * (size_t)n; /* (nb, n - i0) plain M M^T */
  float *Se = Sb + (size_t)nb * (size_t)n; /* (nb, n - i0) signed */
  float *Ms = Se + (size_t)nb * (size_t)n; /* (nb, w) signed rows of M */

  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    if (sgn_stop_requested(c->stop)) return 0; /* G partly written (backend.h set_stop) */
    const int64_t rb = n - i0 < nb ? n - i0 : nb;
    const int64_t cols = n - i0;
    const float *Xb = X + (size_t)i0 * (size_t)d;
    /* Kb(rb, cols) = X[i0:i0+rb](rb, d) X[i0:n](cols, d)^T. Column-major: Kb^T(cols, rb)
     * ld cols = X[i0:n](cols, d) X[i0:i0+rb]^T(d, rb); both stored (d, .) ld d
     * -> cublasSgemm_64(T, N, cols, rb, d) */
    CUBLAS_CHECK(cublasSgemm_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, cols, rb, d, &one, Xb, d, Xb, d,
                                &zero, Kb, cols));
    for (int64_t ce = 0; ce < k; ce++) {
      for (int64_t ee = ce; ee < k; ee++) {
        float *S = ee == ce ? Sb : Se;
        for (int64_t r0 = 0; (ee != ce || ce == 0) && r0 < m; r0 += cwid) {
          /* S (+)= the neuron range [r0, r0 + w): Mc = M[i0:n, r0:r0+w] (cols, w), row stride
           * ldm, as floats */
          const int64_t w = m - r0 < cwid ? m - r0 : cwid;
          const float *Mc = work + (size_t)i0 * (size_t)m + (size_t)r0;
          int64_t ldm = m;
          if (chunked) {
            if (sgn_cuda_mask_expand(cols, M + (size_t)i0 * (size_t)mw, mw, r0, w, w, work,
                                     c->stream))
              return -1;
            Mc = work, ldm = w;
          }
          const float *L = Mc;
          int64_t ldl = ldm;
          if (ee != ce) {
            /* Ms(rb, w) = M[i0:i0+rb, r0:r0+w] diag(A[r0:,c] o A[r0:,e]) */
            if (sgn_cuda_mask_signed(rb, w, ldm, dm.k, Mc, A, r0, ce, ee, Ms, c->stream)) return -1;
            L = Ms, ldl = w;
          }
          /* S(rb, cols) (+)= L(rb, w) Mc(cols, w)^T. Column-major: S^T(cols, rb) ld cols =
           * Mc(cols, w) L^T(w, rb); Mc stored (w, cols) ld ldm -> T, L stored (w, rb) ld ldl
           * -> N:  cublasSgemm_64(T, N, cols, rb, w) */
          const float beta = r0 == 0 ? 0.0f : 1.0f;
          CUBLAS_CHECK(cublasSgemm_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, cols, rb, w, &one, Mc, ldm,
                                      L, ldl, &beta, S, cols));
        }
        if (sgn_cuda_gram_scatter(n, k, i0, rb, ce, ee, Kb, S, inv_m, G, c->stream)) return -1;
      }
    }
  }
  return 0;
}

/* The int8 GEMM's padding (cuBLAS's IMMA rules for regular layouts, taken conservatively:
 * pointers 4-byte (better 16) aligned, lda, ldb, ldc multiples of 4, m and k multiples of 4):
 * neurons (k) to multiples of 16 bytes, sample rows of the output (m, ldc) to multiples of 4. */
#define I8_PAD_K 16
#define I8_PAD_M 4
#define I8_ALIGN 256 /* bytes: every buffer carved from the scratch starts here */

static int64_t round_up(int64_t x, int64_t q) { return (x + q - 1) / q * q; }

/* The same Gram with M M^T as exact integer counts by an INT8 x INT8 -> INT32 tensor-core GEMM
 * (cublasGemmEx, CUBLAS_COMPUTE_32I) on the mask expanded to bytes, 0/1, or 0/+-1 for the signed
 * rows of the (c, e) blocks: (X X^T) o C / m with the CPU's roundings, so equal counts give the
 * CPU's bits. Bytes: the expanded mask, (n + 3) rows of wp (the chunk width padded to 16) in
 * work when it fits there (it does unless n < 3 or the chunks are a few neurons), else in the
 * scratch after the row blocks' Kb (float), Sb and Se (int32, rows padded to 4) and Ms (int8).
 * Returns 0, -1 with the sticky error set, or 1 (nothing written, no error) when cuBLAS does not
 * support the int8 GEMM on this device: the caller then runs the float path. */
SGN_MUST_CHECK static int gram_blocks_int8(cuda_ctx *c, sgn_dims dm, const float *X,
                                           const uint32_t *M, const float *A, int full, float *work,
                                           double *G) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
  const int64_t k = full ? dm.k : 1;
  const double inv_m = 1.0 / (double)m;
  const float one = 1.0f, zero = 0.0f;
  if (n == 0) return 0;
  const int chunked = sgn_chunked(dm);
  const int64_t cwid = chunked ? 2 * sgn_chunk_half(dm) : m; /* neurons per range */
  const int64_t wp = round_up(cwid > 0 ? cwid : 1, I8_PAD_K);
  const int64_t erows = n + I8_PAD_M - 1; /* i0 + round_up(n - i0, 4) <= n + 3 */

  /* scratch: Kb (nb, n) float | Sb, Se (nb, np) int32 | Ms (nb, wp) int8 | E if not in work */
  const int64_t np = round_up(n, I8_PAD_M);
  const size_t per_row = 4 * (size_t)n + 8 * (size_t)np + (size_t)wp;
  int64_t nb = (int64_t)(GRAM_SCRATCH_FLOATS * sizeof(float) / per_row);
  if (nb < GRAM_MIN_ROWS) nb = GRAM_MIN_ROWS;
  if (nb > n) nb = n;
  const size_t kb_bytes = (size_t)round_up(nb * n * 4, I8_ALIGN);
  const size_t s_bytes = (size_t)round_up(nb * np * 4, I8_ALIGN);
  const size_t ms_bytes = (size_t)round_up(nb * wp, I8_ALIGN);
  const size_t e_bytes = (size_t)round_up(erows * wp, I8_ALIGN);
  const int e_in_work = e_bytes <= sgn_work_floats(dm) * sizeof(float);
  char *base = (char *)sgn_cuda_grow(&c->scratch, &c->scratch_cap,
                                     kb_bytes + 2 * s_bytes + ms_bytes + (e_in_work ? 0 : e_bytes));
  if (!base) return -1;
  float *Kb = (float *)base;                              /* (nb, n - i0) */
  int32_t *Sb = (int32_t *)(base + kb_bytes);             /* (nb, colsp) plain counts */
  int32_t *Se = (int32_t *)(base + kb_bytes + s_bytes);   /* (nb, colsp) signed */
  int8_t *Ms = (int8_t *)(base + kb_bytes + 2 * s_bytes); /* (nb, wp) signed rows */
  int8_t *E = e_in_work ? (int8_t *)work : (int8_t *)(base + kb_bytes + 2 * s_bytes + ms_bytes);

  /* unchunked: all rows, all neurons once, (erows, wp) */
  if (!chunked && sgn_cuda_mask_bytes(n, erows, M, mw, 0, m, wp, nullptr, 0, 0, 0, E, c->stream))
    return -1;

  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    if (sgn_stop_requested(c->stop)) return 0; /* G partly written (backend.h set_stop) */
    const int64_t rb = n - i0 < nb ? n - i0 : nb;
    const int64_t cols = n - i0, colsp = round_up(n - i0, I8_PAD_M);
    const float *Xb = X + (size_t)i0 * (size_t)d;
    /* Kb(rb, cols) = X[i0:i0+rb](rb, d) X[i0:n](cols, d)^T -> cublasSgemm_64(T, N, cols, rb, d),
     * as in gram_blocks */
    CUBLAS_CHECK(cublasSgemm_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, cols, rb, d, &one, Xb, d, Xb, d,
                                &zero, Kb, cols));
    for (int64_t ce = 0; ce < k; ce++) {
      for (int64_t ee = ce; ee < k; ee++) {
        int32_t *S = ee == ce ? Sb : Se;
        for (int64_t r0 = 0; (ee != ce || ce == 0) && r0 < m; r0 += cwid) {
          /* Mc = bytes of M[i0:i0+colsp, r0:r0+w] (rows past n: 0), row stride ldm */
          const int64_t w = m - r0 < cwid ? m - r0 : cwid, kp = round_up(w, I8_PAD_K);
          const int8_t *Mc = E + (size_t)i0 * (size_t)wp;
          int64_t ldm = wp;
          if (chunked) {
            if (sgn_cuda_mask_bytes(cols, colsp, M + (size_t)i0 * (size_t)mw, mw, r0, w, kp,
                                    nullptr, 0, 0, 0, E, c->stream))
              return -1;
            Mc = E, ldm = kp;
          }
          const int8_t *L = Mc;
          int64_t ldl = ldm;
          if (ee != ce) {
            /* Ms(rb, kp) = M[i0:i0+rb, r0:r0+w] with A[r,c] A[r,e] = +-1 for its ones */
            if (sgn_cuda_mask_bytes(rb, rb, M + (size_t)i0 * (size_t)mw, mw, r0, w, kp, A, dm.k, ce,
                                    ee, Ms, c->stream))
              return -1;
            L = Ms, ldl = kp;
          }
          /* S(rb, colsp) (+)= L(rb, kp) Mc(colsp, kp)^T in int32. Column-major: S^T(colsp, rb)
           * ld colsp = Mc(colsp, kp) L^T(kp, rb); Mc stored (kp, colsp) ld ldm -> T (K-major),
           * L stored (kp, rb) ld ldl -> N (K-major): the "TN" int8 layout,
           * cublasGemmEx_64(T, N, colsp, rb, kp); colsp, kp, ldm, ldl, colsp multiples of 4 */
          const int32_t ione = 1, ibeta = r0 == 0 ? 0 : 1;
          const cublasStatus_t st = cublasGemmEx_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, colsp, rb,
                                                    kp, &ione, Mc, CUDA_R_8I, ldm, L, CUDA_R_8I,
                                                    ldl, &ibeta, S, CUDA_R_32I, colsp,
                                                    CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT);
          if (st == CUBLAS_STATUS_NOT_SUPPORTED && i0 == 0 && ce == 0 && r0 == 0) return 1;
          CUBLAS_CHECK(st);
        }
        if (sgn_cuda_gram_scatter_i32(n, k, i0, rb, ce, ee, Kb, S, colsp, inv_m, G, c->stream))
          return -1;
      }
    }
  }
  return 0;
}

/* The int8 counts; the float SGEMM path (gram_blocks) where cuBLAS has no int8 GEMM. */
static void cuda_gram(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                      int full, float *work, double *G) {
  OP_ENTER(c, ctx);
  const int r = gram_blocks_int8(c, dm, X, M, A, full, work, G);
  if (r == 1 && gram_blocks(c, dm, X, M, A, full, work, G)) return; /* the sticky error */
}

/* diag[i] = G_ii = ||x_i||^2 (1/m) sum_r M_ir   (n) */
static void cuda_gram_diag(void *ctx, sgn_dims dm, const float *X, const uint32_t *M,
                           double *diag) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_gram_diag(dm.n, dm.d, dm.m, X, M, diag, c->stream)) return;
}

/* ---- separate outputs: the k diagonal blocks of a block-diagonal Gram ---- */

/* 1 when m = 2 k h with h a multiple of 32 (whole mask words per head and half) */
static int heads_shape_ok(sgn_dims dm) {
  return dm.k >= 1 && dm.m >= 64 && dm.m % 64 == 0 && (dm.m / 64) % dm.k == 0;
}

/* G_c = (float)((X X^T) o (M_c M_c^T) / (m / k)) for every head c, G (k, n, n) float32, block c
 * at G + c n n (the CPU twin's sgn_cpu_gram_heads): gram_blocks_int8's row blocks with k = 1,
 * K = X X^T by one SGEMM per block shared by the k heads, or read from the caller's K (n, n);
 * per head its 2 h neurons of rows [i0, n) as bytes (E), their counts by the int8 GEMM, and the
 * scatter of block c's upper triangle with the CPU's roundings, so equal K and counts give the
 * CPU's bits. E, (n + 3) rows of 2 h bytes (a multiple of 64, no padding), sits in work when it
 * fits there, else in the scratch after Kb and Sb. No float path: the devices CUDA 13 runs on
 * (sm_75 on) all have cuBLAS's int8 GEMM, and where it answers NOT_SUPPORTED the sticky error
 * says so. Returns 0 or -1. */
SGN_MUST_CHECK static int gram_heads_int8(cuda_ctx *c, sgn_dims dm, const float *X, const float *K,
                                          const uint32_t *M, float *work, float *G) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mw = SGN_MASK_WORDS(m);
  const int64_t h = m / (2 * k), hp = 2 * h; /* neurons per head and half; per head */
  const double inv_mh = 1.0 / (double)(m / k);
  const float one = 1.0f, zero = 0.0f;
  if (n == 0) return 0;
  const int64_t erows = n + I8_PAD_M - 1; /* i0 + round_up(n - i0, 4) <= n + 3 */

  /* scratch: Kb (nb, n) float unless the caller's K serves | Sb (nb, np) int32 | E if not in
   * work */
  const int64_t np = round_up(n, I8_PAD_M);
  const size_t per_row = (K ? 0 : 4 * (size_t)n) + 4 * (size_t)np;
  int64_t nb = (int64_t)(GRAM_SCRATCH_FLOATS * sizeof(float) / per_row);
  if (nb < GRAM_MIN_ROWS) nb = GRAM_MIN_ROWS;
  if (nb > n) nb = n;
  const size_t kb_bytes = K ? 0 : (size_t)round_up(nb * n * 4, I8_ALIGN);
  const size_t s_bytes = (size_t)round_up(nb * np * 4, I8_ALIGN);
  const size_t e_bytes = (size_t)round_up(erows * hp, I8_ALIGN);
  const int e_in_work = e_bytes <= sgn_work_floats(dm) * sizeof(float);
  char *base = (char *)sgn_cuda_grow(&c->scratch, &c->scratch_cap,
                                     kb_bytes + s_bytes + (e_in_work ? 0 : e_bytes));
  if (!base) return -1;
  float *Kb = K ? NULL : (float *)base;       /* (nb, n - i0) */
  int32_t *Sb = (int32_t *)(base + kb_bytes); /* (nb, colsp) counts */
  int8_t *E = e_in_work ? (int8_t *)work : (int8_t *)(base + kb_bytes + s_bytes);

  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    if (sgn_stop_requested(c->stop)) return 0; /* G partly written (backend.h set_stop) */
    const int64_t rb = n - i0 < nb ? n - i0 : nb;
    const int64_t cols = n - i0, colsp = round_up(n - i0, I8_PAD_M);
    /* K's rows [i0, i0 + rb) from column i0 on: the caller's (row stride n), or Kb(rb, cols) =
     * X[i0:i0+rb](rb, d) X[i0:n](cols, d)^T -> cublasSgemm_64(T, N, cols, rb, d), as in
     * gram_blocks (row stride cols) */
    const float *Kr = K ? K + (size_t)i0 * (size_t)n + (size_t)i0 : Kb;
    const int64_t ldk = K ? n : cols;
    if (!K) {
      const float *Xb = X + (size_t)i0 * (size_t)d;
      CUBLAS_CHECK(cublasSgemm_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, cols, rb, d, &one, Xb, d, Xb,
                                  d, &zero, Kb, cols));
    }
    for (int64_t hd = 0; hd < k; hd++) {
      /* E (colsp, hp) = bytes of head hd's neurons [hd h, hd h + h) and [m/2 + hd h, ...) of
       * rows [i0, i0 + colsp) (rows past n: 0) */
      const sgn_chunk ch = {hd * h, h, m / 2 + hd * h, h};
      if (sgn_cuda_mask_bytes_chunk(cols, colsp, M + (size_t)i0 * (size_t)mw, mw, ch, hp, E,
                                    c->stream))
        return -1;
      /* Sb(rb, colsp) = E(rb, hp) E(colsp, hp)^T in int32. Column-major: Sb^T(colsp, rb) ld colsp
       * = E(colsp, hp) E^T(hp, rb); E stored (hp, colsp) ld hp -> T, its first rb rows stored
       * (hp, rb) ld hp -> N: the "TN" int8 layout, cublasGemmEx_64(T, N, colsp, rb, hp); colsp,
       * hp and the leading dimensions multiples of 4 */
      const int32_t ione = 1, izero = 0;
      CUBLAS_CHECK(cublasGemmEx_64(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, colsp, rb, hp, &ione, E,
                                   CUDA_R_8I, hp, E, CUDA_R_8I, hp, &izero, Sb, CUDA_R_32I, colsp,
                                   CUBLAS_COMPUTE_32I, CUBLAS_GEMM_DEFAULT));
      /* block hd (n, n): entries (i, j >= i) */
      if (sgn_cuda_heads_scatter(n, i0, rb, Kr, ldk, Sb, colsp, inv_mh,
                                 G + (size_t)hd * (size_t)n * (size_t)n, c->stream))
        return -1;
    }
  }
  return 0;
}

static void cuda_gram_heads(void *ctx, sgn_dims dm, const float *X, const float *K,
                            const uint32_t *M, float *work, float *G) {
  OP_ENTER(c, ctx);
  if (!heads_shape_ok(dm)) {
    sgn_cuda_error(
        "gpu backend: gram_heads needs m = 2 k h with h a multiple of 32 (m = %lld, "
        "k = %lld)",
        (long long)dm.m, (long long)dm.k);
    return;
  }
  if (gram_heads_int8(c, dm, X, K, M, work, G)) return; /* the sticky error */
}

/* out[i k + c] = sum_j G_c[i, j] in[j k + c] + lambda in[i k + c], the products in float32 on
 * two (n, k) float vectors in the scratch */
static void cuda_heads_symv(void *ctx, int64_t n, int64_t k, const float *G, double lambda,
                            const double *in, double *out) {
  OP_ENTER(c, ctx);
  if (n <= 0 || k <= 0) return;
  const size_t len = (size_t)n * (size_t)k;
  float *f = (float *)sgn_cuda_grow(&c->scratch, &c->scratch_cap, 2 * len * sizeof(float));
  if (!f) return; /* the sticky error */
  if (sgn_cuda_heads_symv(c->blas, n, k, G, lambda, in, f, f + len, out, c->stream)) return;
}

/* R's upper triangle = the k blocks' mean, summed in float32 (linalg.cu) */
static void cuda_heads_mean(void *ctx, int64_t n, int64_t k, const float *G, double *R) {
  OP_ENTER(c, ctx);
  (void)sgn_cuda_heads_mean(n, k, G, R, c->stream); /* a failed launch sets the sticky error */
}

/* ---- sketches and factorizations: sketch.cu and linalg.cu ---- */

static size_t cuda_sketch_work_bytes(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s) {
  OP_ENTER(c, ctx, 0);
  if (kind == SGN_SKETCH_SRFT || kind == SGN_SKETCH_COUNTSKETCH)
    return sgn_cuda_sketch_fft_work_bytes(&c->fft, dm, kind, s, c->stream);
  return sgn_cuda_sketch_work_bytes(dm, kind, s);
}

/* Y (n, s) = sketch of the k = 1 block of J */
static void cuda_sketch(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed,
                        const float *X, const uint32_t *M, void *work, float *Y) {
  OP_ENTER(c, ctx);
  if (sgn_stop_requested(c->stop)) return; /* Y not written (backend.h set_stop) */
  /* a failure inside is the sticky error */
  switch (kind) {
  case SGN_SKETCH_SRHT:
    if (sgn_cuda_sketch_srht(dm, s, seed, X, M, work, Y, c->stream)) return;
    return;
  case SGN_SKETCH_GAUSSIAN:
    if (sgn_cuda_sketch_gaussian(c->blas, dm, s, seed, X, M, work, Y, c->stream)) return;
    return;
  case SGN_SKETCH_SRFT:
    if (sgn_cuda_sketch_srft(&c->fft, dm, s, seed, X, M, work, Y, c->stream)) return;
    return;
  case SGN_SKETCH_COUNTSKETCH:
    if (sgn_cuda_sketch_countsketch(&c->fft, dm, s, seed, X, M, work, Y, c->stream)) return;
    return;
  }
  /* an enum value this backend does not know: make the result loud rather than plausible */
  sgn_cuda_error("gpu backend: unknown sketch kind %d", (int)kind);
  sgn_cuda_fail(SGN_E_INPUT, "gpu backend: unknown sketch kind %d", (int)kind);
  (void)CUDA_FAILED(cudaMemsetAsync(Y, 0xff, (size_t)dm.n * (size_t)s * sizeof(float), c->stream));
}

static size_t cuda_sketch_r_work_bytes(void *ctx, int64_t n, int64_t s, sgn_precision prec) {
  OP_ENTER(c, ctx, 0);
  return sgn_cuda_sketch_r_work_bytes(c->solver, c->params, n, s, prec, c->partials);
}

static void cuda_sketch_gram(void *ctx, int64_t n, int64_t s, const float *Y, sgn_precision prec,
                             void *work, double *G) {
  OP_ENTER(c, ctx);
  if (sgn_stop_requested(c->stop)) return; /* set_stop: G left as it was */
  if (sgn_cuda_sketch_gram(c->blas, n, s, Y, prec, work, G, c->stream)) return;
}

/* With the sticky error set the factorizations report failure (nonzero), never success. The
 * stop flag is read at entry only: each is a few library calls queued at once, seconds at most
 * (a 46k Cholesky is about one on an H100). */
static int cuda_sketch_r(void *ctx, int64_t n, int64_t s, const float *Y, double lambda,
                         sgn_precision prec, void *work, double *R) {
  OP_ENTER(c, ctx, 1);
  if (sgn_stop_requested(c->stop)) return SGN_OP_STOPPED;
  return sgn_cuda_sketch_r(c->blas, c->solver, c->params, n, s, Y, lambda, prec, work, R, c->dinfo,
                           c->host_i, c->stream) != 0;
}

static size_t cuda_cholesky_work_bytes(void *ctx, int64_t N) {
  OP_ENTER(c, ctx, 0);
  return sgn_cuda_cholesky_work_bytes(c->solver, c->params, N, c->partials);
}

static int cuda_cholesky(void *ctx, int64_t N, double *G, double lambda, void *work) {
  OP_ENTER(c, ctx, 1);
  if (sgn_stop_requested(c->stop)) return SGN_OP_STOPPED;
  const int rc = sgn_cuda_cholesky(c->solver, c->params, N, G, lambda, work, c->dinfo, c->host_i,
                                   c->stream);
  return rc < 0 ? 1 : rc; /* -1: a failure, the sticky error set */
}

static void cuda_rtr_solve(void *ctx, int64_t N, int64_t k, const double *R, double *V) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_rtr_solve(c->blas, N, k, R, V)) return;
}

/* Which form of the preconditioner (no device has measured it here): the estimate for an H200
 * at N = 16384 is 1-5 ms for two cublasDtrsm with one right-hand side, which run a dependent
 * chain over R, where the two float64 GEMVs of rinv_apply stream R^-1 twice (2 x 2.1 GB) in about
 * 0.9 ms; cusolverDnXtrtri, once per preconditioner, costs about as much as the Cholesky. So the
 * GPU applies R^-1 at every (N, k); scripts/device-check.sh times both (bench --kernels' apply
 * row). */
static int cuda_rinv_preferred(void *ctx, int64_t N, int64_t k) {
  (void)ctx, (void)N, (void)k;
  return 1;
}

static size_t cuda_r_inverse_work_bytes(void *ctx, int64_t N) {
  OP_ENTER(c, ctx, 0);
  size_t host = 0;
  return sgn_cuda_r_inverse_work_bytes(c->solver, N, c->partials, &host);
}

static int cuda_r_inverse(void *ctx, int64_t N, double *R, void *work) {
  OP_ENTER(c, ctx, 1);
  if (sgn_stop_requested(c->stop)) return SGN_OP_STOPPED;
  const int rc = sgn_cuda_r_inverse(c->solver, N, R, work, c->dinfo, c->host_i, c->stream);
  return rc < 0 ? 1 : rc; /* -1: a failure, the sticky error set */
}

static void cuda_rinv_apply(void *ctx, int64_t N, int64_t k, const double *Rinv, double *V,
                            double *work) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_rinv_apply(c->blas, N, k, Rinv, V, work)) return;
}

/* ---- reference products for benchmarks ---- */

/* Row-major C (M, N) = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands and
 * M, N, keep the transposes. */
static void cuda_gemm(void *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc) {
  OP_ENTER(c, ctx);
  const float one = 1.0f, zero = 0.0f;
  (void)CUBLAS_FAILED(cublasSgemm_64(c->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &one, B, ldb, A, lda,
                                     &zero, C, ldc));
}

static void cuda_hadamard(void *ctx, float *x, int64_t rows, int64_t len) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_hadamard(x, rows, len, c->stream)) return;
}

/* ---- vector ops: vecops.cu (a failure inside is the sticky error) ---- */

static double cuda_dot(void *ctx, int64_t len, const double *x, const double *y) {
  OP_ENTER(c, ctx, NAN);
  return sgn_cuda_dot(len, x, y, c->partials, c->host_d, c->stream);
}

static void cuda_axpy(void *ctx, int64_t len, double a, const double *x, double *y) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_axpy(len, a, x, y, c->stream)) return;
}

static void cuda_xpby(void *ctx, int64_t len, const double *x, double b, double *y) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_xpby(len, x, b, y, c->stream)) return;
}

static void cuda_scal(void *ctx, int64_t len, double a, double *x) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_scal(len, a, x, c->stream)) return;
}

static void cuda_d2f(void *ctx, int64_t len, const double *x, float *y) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_d2f(len, x, y, c->stream)) return;
}

static void cuda_f2d(void *ctx, int64_t len, const float *x, double *y) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_f2d(len, x, y, c->stream)) return;
}

static double cuda_residual(void *ctx, int64_t len, const float *F, const float *Y, double *r) {
  OP_ENTER(c, ctx, NAN);
  return sgn_cuda_residual(len, F, Y, r, c->partials, c->host_d, c->stream);
}

static void cuda_axpy_f(void *ctx, int64_t len, float a, const float *x, float *y) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_axpy_f(len, a, x, y, c->stream)) return;
}

static void cuda_gather_rows(void *ctx, int64_t b, int64_t cols, const float *src,
                             const int64_t *idx, float *out) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_gather_rows(b, cols, src, idx, out, c->stream)) return;
}

static void cuda_adam(void *ctx, int64_t len, float *W, const float *g, float *mom, float *vel,
                      double lr, double b1, double b2, double eps, int64_t t) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_adam(len, W, g, mom, vel, lr, b1, b2, eps, t, c->stream)) return;
}

/* ---- PCG's scalars in device memory: vecops.cu (backend.h pcg_*) ---- */

static void cuda_pcg_dot(void *ctx, int64_t len, const double *x, const double *y, double *out) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_pcg_dot(len, x, y, c->partials, out, c->stream)) return;
}

static void cuda_pcg_update(void *ctx, int64_t len, const sgn_pcg_ctl *s, const double *p,
                            const double *q, double *x, double *r) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_pcg_update(len, s, p, q, x, r, c->stream)) return;
}

static void cuda_pcg_control(void *ctx, sgn_pcg_ctl *s) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_pcg_control(s, c->stream)) return;
}

static void cuda_pcg_direction(void *ctx, int64_t len, const sgn_pcg_ctl *s, const double *z,
                               double *p) {
  OP_ENTER(c, ctx);
  if (sgn_cuda_pcg_direction(len, s, z, p, c->stream)) return;
}

/* ---- graphs (backend.h graph_*): PCG's iteration recorded once per solve ----
 * The ops an iteration queues are capture-safe once its first iterations ran op by op (pcg.c
 * records after GRAPH_AFTER): kernels, cuBLAS on its own workspace (blas_ws), device-to-device
 * copies and memsets; the scratch heads_symv grows has grown by then. The global capture mode
 * makes an unsafe call (an allocation, a synchronization, a copy to or from the host) fail,
 * and so set the sticky error, rather than run. */

static int cuda_graph_begin(void *ctx) {
  OP_ENTER(c, ctx, -1);
  if (c->no_graphs) return 1;
  CUDA_CHECK(cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeGlobal));
  return 0;
}

/* Ends the capture even after a failure inside it (the stream must run again), and returns
 * the instantiated graph, NULL when anything failed. */
static void *cuda_graph_end(void *ctx) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  sgn_cuda_op_scope scope(c->error, __func__);
  cudaGraph_t g = NULL;
  cudaGraphExec_t exec = NULL;
  if (!CUDA_FAILED(cudaStreamEndCapture(c->stream, &g)) && !c->error[0] &&
      CUDA_FAILED(cudaGraphInstantiate(&exec, g, 0)))
    exec = NULL;
  if (g) (void)cudaGraphDestroy(g);
  if (exec && c->error[0]) (void)cudaGraphExecDestroy(exec), exec = NULL;
  return exec;
}

static void cuda_graph_launch(void *ctx, void *graph) {
  OP_ENTER(c, ctx);
  (void)CUDA_FAILED(cudaGraphLaunch((cudaGraphExec_t)graph, c->stream));
}

static void cuda_graph_free(void *ctx, void *graph) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  sgn_cuda_op_scope scope(c->error, __func__);
  (void)CUDA_FAILED(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

/* ---- the table ---- */

/* the flag the host loops read (gram's row blocks) and the factorizations at entry; no op
 * enqueues a thing to set it (a host pointer, read by the host) */
static void cuda_set_stop(void *ctx, const sgn_stop_flag *stop) { ((cuda_ctx *)ctx)->stop = stop; }

/* Releases whatever ctx holds; safe on a partly opened ctx. Errors here are ignored: the
 * backend is going away, and a sticky device error would only repeat. */
/* the sticky error, NULL while there is none */
static const char *cuda_error(void *ctx) {
  const cuda_ctx *c = (const cuda_ctx *)ctx;
  return c->error[0] ? c->error : NULL;
}

static void cuda_destroy(void *ctx) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (!c) return;
  sgn_cuda_op_forget(c->error); /* no thread is left pointing at freed memory */
  if (c->stream) (void)cudaStreamSynchronize(c->stream);
  if (c->params) (void)cusolverDnDestroyParams(c->params);
  if (c->solver) (void)cusolverDnDestroy(c->solver);
  if (c->blas) (void)cublasDestroy(c->blas);
  (void)cudaFree(c->blas_ws);
  sgn_cuda_sketch_fft_free(c->fft);
  (void)cudaFree(c->partials);
  (void)cudaFree(c->dinfo);
  (void)cudaFree(c->scratch);
  if (c->pinned) (void)cudaFreeHost(c->pinned);
  if (c->stream) (void)cudaStreamDestroy(c->stream);
  (void)cudaGetLastError();
  free(c);
}

static const sgn_backend_ops cuda_ops = {
    .name = "gpu",
    /* memory */
    .alloc = cuda_alloc,       /* cudaMalloc + cudaMemsetAsync 0; NULL when out of memory */
    .free = cuda_free,         /* cudaFree (synchronizes the device) */
    .upload = cuda_upload,     /* cudaMemcpyAsync H2D on the stream, then waits */
    .download = cuda_download, /* cudaMemcpyAsync D2H on the stream, then waits */
    .copy = cuda_copy,         /* cudaMemcpyAsync D2D on the stream */
    .sync = cuda_sync,         /* cudaStreamSynchronize */
    .mem_available = cuda_mem_available, /* cudaMemGetInfo's free bytes, less 5% */
    /* network products */
    .forward = cuda_forward, /* per chunk: SGEMMs for Z, mask bits, fused relu(Z) A sums */
    .jvp = cuda_jvp,         /* per chunk: SGEMMs for X V^T, fused (M o P) A sums */
    .vjp = cuda_vjp,         /* per chunk: fused B = M o (Gv A^T), SGEMMs for B^T X */
    .gram = cuda_gram, /* X X^T by SGEMM, M M^T by int8 GEMM (int32 counts), mirrored scatter */
    .gram_diag = cuda_gram_diag,   /* one block per row */
    .gram_heads = cuda_gram_heads, /* per head: int8 GEMM counts of its neurons, one SGEMM shared */
    .heads_symv = cuda_heads_symv, /* cublasSsymv_64 per head, then lambda in (linalg.cu) */
    .heads_mean = cuda_heads_mean, /* one kernel over the upper triangles (linalg.cu) */
    /* sketches */
    .sketch_work_bytes = cuda_sketch_work_bytes, /* sketch.cu, sketch_fft.cu (+ plans) */
    .sketch = cuda_sketch, /* srht | gaussian: sketch.cu; srft | countsketch: sketch_fft.cu */
    /* dense factorizations */
    .sketch_r_work_bytes = cuda_sketch_r_work_bytes, /* a panel of Y, a float tile, Xpotrf's */
    .sketch_gram = cuda_sketch_gram, /* cublasDsyrk_64 panels, or GemmEx float32/TF32/bf16 ones */
    .sketch_r = cuda_sketch_r,       /* sketch_gram, Xpotrf -> R */
    .sketch_panels_work_bytes = nullptr, /* none yet: Y is written whole, then sketch_r */
    .sketch_panels_r = nullptr,
    .cholesky_work_bytes = cuda_cholesky_work_bytes, /* cusolverDnXpotrf_bufferSize */
    .cholesky = cuda_cholesky,                       /* cusolverDnXpotrf, upper */
    .rtr_solve = cuda_rtr_solve,                     /* two cublasDtrsm_64 */
    .rinv_preferred = cuda_rinv_preferred,             /* R^-1 always (the GEMV form) */
    .r_inverse_work_bytes = cuda_r_inverse_work_bytes, /* cusolverDnXtrtri's query */
    .r_inverse = cuda_r_inverse,                       /* cusolverDnXtrtri, checked */
    .rinv_apply = cuda_rinv_apply,                     /* two GEMVs / GEMMs, float64 */
    /* plain kernels */
    .gemm = cuda_gemm,         /* cublasSgemm_64, TF32 off */
    .hadamard = cuda_hadamard, /* hadamard.cu */
    /* vector ops */
    .dot = cuda_dot,                 /* two-stage deterministic reduction, one double back */
    .axpy = cuda_axpy,               /* y += a x */
    .xpby = cuda_xpby,               /* y = x + b y */
    .scal = cuda_scal,               /* x *= a */
    .d2f = cuda_d2f,                 /* double -> float */
    .f2d = cuda_f2d,                 /* float -> double */
    .residual = cuda_residual,       /* r = F - Y, returns ||r||^2 */
    .axpy_f = cuda_axpy_f,           /* float y += a x */
    .gather_rows = cuda_gather_rows, /* mini-batch rows */
    .adam = cuda_adam,               /* bias-corrected Adam */
    /* PCG's scalars in device memory */
    .pcg_dot = cuda_pcg_dot,             /* dot's two kernels, the sum left in device memory */
    .pcg_update = cuda_pcg_update,       /* both axpys in one kernel, alpha from s */
    .pcg_control = cuda_pcg_control,     /* one thread: pcg_control.h */
    .pcg_direction = cuda_pcg_direction, /* xpby with beta from s */
    .pcg_queue = SGN_PCG_QUEUE,          /* each read-back drains the stream */
    .graph_begin = cuda_graph_begin,     /* cudaStreamBeginCapture, global mode */
    .graph_end = cuda_graph_end,         /* cudaStreamEndCapture, cudaGraphInstantiate */
    .graph_launch = cuda_graph_launch,   /* cudaGraphLaunch on the stream */
    .graph_free = cuda_graph_free,       /* cudaGraphExecDestroy */
    .set_stop = cuda_set_stop, /* read at the factorizations' entry, between gram's row blocks */
    .set_product_precision = cuda_set_product_precision, /* GemmEx on rounded copies */
    .error = cuda_error, /* the first CUDA / library failure or failed scratch growth in an op */
    .destroy = cuda_destroy, /* handles, buffers, stream, ctx; sgn_backend_close frees the handle */
};

/* ---- opening, probing, reporting ---- */

static int cuda_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

/* Records "gpu backend: <what> failed (<why>)" and returns NULL after releasing c. */
static sgn_backend *open_failed(cuda_ctx *c, const char *what, const char *why) {
  sgn_cuda_fail(SGN_E_RUNTIME, "gpu backend: %s failed (%s)", what, why);
  cuda_destroy(c);
  return NULL;
}

static sgn_backend *cuda_open(void) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count < 1) {
    (void)cudaGetLastError();
    sgn_cuda_fail(SGN_E_RUNTIME, "no CUDA device answers (%s)",
                  err != cudaSuccess ? cudaGetErrorString(err) : "the driver reports 0 devices");
    return NULL;
  }
  cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
  if (!c) {
    sgn_cuda_fail(SGN_E_RUNTIME, "gpu backend: out of host memory");
    return NULL;
  }
  c->device = 0;
  const char *graphs = getenv("SKETCHGN_CUDA_GRAPHS"); /* "0": PCG launches op by op */
  c->no_graphs = graphs && strcmp(graphs, "0") == 0;
  if ((err = cudaSetDevice(c->device)) != cudaSuccess)
    return open_failed(c, "cudaSetDevice(0)", cudaGetErrorString(err));
  if ((err = cudaStreamCreate(&c->stream)) != cudaSuccess)
    return open_failed(c, "cudaStreamCreate", cudaGetErrorString(err));
  cublasStatus_t bst = cublasCreate(&c->blas);
  if (bst != CUBLAS_STATUS_SUCCESS) {
    c->blas = NULL;
    return open_failed(c, "cublasCreate", cublasGetStatusString(bst));
  }
  cusolverStatus_t sst = cusolverDnCreate(&c->solver);
  if (sst != CUSOLVER_STATUS_SUCCESS) {
    c->solver = NULL;
    return open_failed(c, "cusolverDnCreate", sgn_cusolver_string(sst));
  }
  if ((sst = cusolverDnCreateParams(&c->params)) != CUSOLVER_STATUS_SUCCESS) {
    c->params = NULL;
    return open_failed(c, "cusolverDnCreateParams", sgn_cusolver_string(sst));
  }
  if ((bst = cublasSetStream(c->blas, c->stream)) != CUBLAS_STATUS_SUCCESS ||
      (bst = cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH)) !=
          CUBLAS_STATUS_SUCCESS || /* no TF32 */
      (bst = cublasSetPointerMode(c->blas, CUBLAS_POINTER_MODE_HOST)) != CUBLAS_STATUS_SUCCESS)
    return open_failed(c, "binding cuBLAS to the stream", cublasGetStatusString(bst));
  if ((sst = cusolverDnSetStream(c->solver, c->stream)) != CUSOLVER_STATUS_SUCCESS)
    return open_failed(c, "cusolverDnSetStream", sgn_cusolver_string(sst));
  /* after cublasSetStream, which puts the handle back on cuBLAS's own workspace pool */
  if ((err = cudaMalloc(&c->blas_ws, BLAS_WORKSPACE_BYTES)) != cudaSuccess) {
    (void)cudaGetLastError();
    return open_failed(c, "allocating cuBLAS's workspace", cudaGetErrorString(err));
  }
  if ((bst = cublasSetWorkspace(c->blas, c->blas_ws, BLAS_WORKSPACE_BYTES)) !=
      CUBLAS_STATUS_SUCCESS)
    return open_failed(c, "cublasSetWorkspace", cublasGetStatusString(bst));
  if ((err = cudaMalloc(&c->partials, (SGN_RED_BLOCKS + 1) * sizeof(double))) != cudaSuccess ||
      (err = cudaMalloc(&c->dinfo, 2 * sizeof(int))) != cudaSuccess ||
      (err = cudaMallocHost(&c->pinned, 64)) != cudaSuccess) {
    (void)cudaGetLastError();
    return open_failed(c, "allocating the backend's scalars", cudaGetErrorString(err));
  }
  c->host_d = (double *)c->pinned;
  c->host_i = (int *)((char *)c->pinned + 16);
  sgn_backend *be = (sgn_backend *)malloc(sizeof *be);
  if (!be) return open_failed(c, "malloc", "out of host memory");
  be->ops = &cuda_ops;
  be->ctx = c;
  return be;
}

/* Appends printf-style text at *pos of buf (len bytes), never past its end. */
static void append(char *buf, size_t len, size_t *pos, const char *fmt, ...) {
  if (*pos >= len) return;
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf + *pos, len - *pos, fmt, ap);
  va_end(ap);
  if (w > 0) *pos += (size_t)w < len - *pos ? (size_t)w : len - *pos - 1;
}

static int cuda_device_info(char *buf, size_t len) {
  if (!buf || len == 0) return SGN_E_INPUT;
  buf[0] = '\0';
  int count = 0, rt = 0, drv = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  (void)cudaRuntimeGetVersion(&rt);
  (void)cudaDriverGetVersion(&drv);
  size_t pos = 0;
  if (err != cudaSuccess || count < 1) {
    (void)cudaGetLastError();
    append(buf, len, &pos, "no CUDA device answers (%s); CUDA runtime %d.%d, driver %d.%d",
           err != cudaSuccess ? cudaGetErrorString(err) : "the driver reports 0 devices", rt / 1000,
           rt % 1000 / 10, drv / 1000, drv % 1000 / 10);
    return SGN_E_RUNTIME;
  }
  struct cudaDeviceProp p;
  if ((err = cudaGetDeviceProperties(&p, 0)) != cudaSuccess) {
    (void)cudaGetLastError();
    append(buf, len, &pos, "device 0 does not answer (%s)", cudaGetErrorString(err));
    return SGN_E_RUNTIME;
  }
  int blas_maj = 0, blas_min = 0, blas_pat = 0, sol_maj = 0, sol_min = 0, sol_pat = 0;
  int fft = 0, rand = 0;
  (void)cublasGetProperty(MAJOR_VERSION, &blas_maj);
  (void)cublasGetProperty(MINOR_VERSION, &blas_min);
  (void)cublasGetProperty(PATCH_LEVEL, &blas_pat);
  (void)cusolverGetProperty(MAJOR_VERSION, &sol_maj);
  (void)cusolverGetProperty(MINOR_VERSION, &sol_min);
  (void)cusolverGetProperty(PATCH_LEVEL, &sol_pat);
  (void)cufftGetVersion(&fft);
  (void)curandGetVersion(&rand);
  append(buf, len, &pos,
         "%s, sm_%d%d, %.1f GiB, %d SMs (%d device%s); CUDA runtime %d.%d, driver %d.%d; "
         "cuBLAS %d.%d.%d; cuSOLVER %d.%d.%d; cuFFT %d; cuRAND %d",
         p.name, p.major, p.minor, (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
         p.multiProcessorCount, count, count == 1 ? "" : "s", rt / 1000, rt % 1000 / 10, drv / 1000,
         drv % 1000 / 10, blas_maj, blas_min, blas_pat, sol_maj, sol_min, sol_pat, fft, rand);
  return SGN_OK;
}

/* ---- the plugin's entry (backend_cuda.h) ---- */

static const sgn_cuda_plugin plugin = {
    .abi = SGN_CUDA_PLUGIN_ABI,
    .version = SGN_VERSION,
    .open = cuda_open,
    .device_count = cuda_device_count,
    .device_info = cuda_device_info,
    .hadamard_passes = sgn_cuda_hadamard_passes,
};

extern "C" __attribute__((visibility("default"))) const sgn_cuda_plugin *
sgn_cuda_plugin_entry(const sgn_cuda_host *lent) {
  if (lent) sgn_cuda_lend_host(lent);
  return &plugin;
}
