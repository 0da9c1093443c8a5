/* backend_cuda.cu — the CUDA backend: the ops table of backend.h over cuBLAS, cuSOLVER and the
 * kernels of this directory, one stream per backend with every handle bound to it. Host arrays
 * are row-major and cuBLAS is column-major: each GEMM below spells out its transposes. Neurons go
 * through the GEMMs in two halves [0, m/2) and [m/2, m) as on the CPU, so a symmetric model gives
 * f == 0 bit for bit. TF32 stays off (CUBLAS_DEFAULT_MATH): the products inside CG need float32. */
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cufft.h>
#include <curand.h>

#include "cuda_check.h"
#include "kernels.h"

extern "C" {
#include "backend_cuda.h"
#include "util.h"
}

/* gram's row blocks are cut so their scratch stays near this many floats (128 MiB)... */
#define GRAM_SCRATCH_FLOATS ((size_t)1 << 25)
/* ...but keep at least this many rows (the CPU twin's rule), growing the scratch if needed */
#define GRAM_MIN_ROWS 64

typedef struct cuda_ctx {
  int device;
  cudaStream_t stream;
  cublasHandle_t blas;        /* bound to stream, CUBLAS_DEFAULT_MATH, host pointer mode */
  cusolverDnHandle_t solver;  /* bound to stream */
  double *partials;           /* (SGN_RED_BLOCKS + 1) device: reduction partial sums, result */
  int *dinfo;                 /* device: cuSOLVER devInfo */
  void *pinned;               /* host, page-locked: the scalars that come back */
  double *host_d;             /* (1) in pinned */
  int *host_i;                /* (2) in pinned */
  void *scratch;              /* device, grow-only: gram's row blocks */
  size_t scratch_cap;         /* bytes */
  void *solver_ws;            /* device, grow-only: dpotrf workspace */
  size_t solver_ws_cap;       /* bytes */
} cuda_ctx;

/* ---- errors (declared in cuda_check.h / kernels.h) ---- */

void sgn_cuda_fatal(const char *lib, long code, const char *what, const char *stmt,
                    const char *func, const char *file, int line) {
  fprintf(stderr, "sketchgn: %s error %ld (%s) in %s at %s:%d: %s\n", lib, code,
          what ? what : "?", func, file, line, stmt);
  fflush(stderr);
  exit(1);
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
    fprintf(stderr,
            "sketchgn: gpu backend: %s = %lld does not fit the 32-bit sizes of cuBLAS/cuSOLVER\n",
            what, (long long)v);
    exit(1);
  }
  return (int)v;
}

void *sgn_cuda_grow(void **buf, size_t *cap, size_t bytes) {
  if (bytes <= *cap && *buf) return *buf;
  CUDA_CHECK(cudaFree(*buf)); /* synchronizes: nothing queued still uses the old buffer */
  *buf = NULL, *cap = 0;
  if (cudaMalloc(buf, bytes ? bytes : 1) != cudaSuccess) {
    (void)cudaGetLastError();
    fprintf(stderr, "sketchgn: gpu backend: out of device memory growing scratch to %zu bytes\n",
            bytes);
    exit(1);
  }
  *cap = bytes;
  return *buf;
}

/* ---- memory ---- */

/* zero-filled; NULL (and sgn_last_error) when the device is out of memory */
static void *cuda_alloc(void *ctx, size_t bytes) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  void *p = NULL;
  if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
    (void)cudaGetLastError(); /* not sticky: clear it so the next launch check does not see it */
    sgn_fail(SGN_E_RUNTIME, "gpu backend: out of device memory allocating %zu bytes", bytes);
    return NULL;
  }
  CUDA_CHECK(cudaMemsetAsync(p, 0, bytes ? bytes : 1, c->stream));
  return p;
}

static void cuda_free(void *ctx, void *p) {
  (void)ctx;
  CUDA_CHECK(cudaFree(p));
}

/* host -> device; returns when src may be reused */
static void cuda_upload(void *ctx, void *dst, const void *src, size_t bytes) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (!bytes) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
  CUDA_CHECK(cudaStreamSynchronize(c->stream));
}

/* device -> host; returns when dst holds the data */
static void cuda_download(void *ctx, void *dst, const void *src, size_t bytes) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (!bytes) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
  CUDA_CHECK(cudaStreamSynchronize(c->stream));
}

static void cuda_copy(void *ctx, void *dst, const void *src, size_t bytes) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (!bytes) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, c->stream));
}

static void cuda_sync(void *ctx) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  CUDA_CHECK(cudaStreamSynchronize(c->stream));
}

/* Free device memory (cudaMemGetInfo), less 5% for cuBLAS/cuSOLVER workspaces and the
 * backend's own scratch that grow after a session is sized. */
static size_t cuda_mem_available(void *ctx) {
  (void)ctx;
  size_t free_bytes = 0, total_bytes = 0;
  CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return free_bytes - free_bytes / 20;
}

/* ---- network products ---- */

/* Z[:, r0:r0+w] = X W[r0:r0+w]^T for the two neuron halves.  X (n, d), W (m, d), Z (n, m).
 * With m even the halves are one strided-batched call (batch 2), so both run the same kernel
 * with the same decomposition whatever the alignment of W + h d and Z + h: mirrored rows of W
 * give bitwise equal halves of Z. (Two plain calls could pick different kernels when the second
 * half's pointers are less aligned than the first's.) */
static void z_halves(cuda_ctx *c, sgn_dims dm, const float *X, const float *W, float *Z) {
  const int64_t h = dm.m / 2;
  const int64_t r0[2] = {0, h}, w[2] = {h, dm.m - h};
  const float one = 1.0f, zero = 0.0f;
  if (dm.n == 0 || dm.m == 0) return;
  const int in = sgn_cuda_int(dm.n, "n"), id = sgn_cuda_int(dm.d, "d"),
            im = sgn_cuda_int(dm.m, "m");
  /* Z[:, r0:r0+w](n, w) = X(n, d) W_half(w, d)^T, row stride m. Column-major:
   * Z_half^T(w, n) ld m = W_half(w, d) X^T(d, n); W_half is stored as (d, w) ld d -> T,
   * X as (d, n) ld d -> N:  cublasSgemm(T, N, w, n, d); batch strides W: h d, X: 0, Z: h */
  if (h > 0 && w[0] == w[1]) {
    CUBLAS_CHECK(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)h, in, id, &one,
                                           W, id, (long long)(h * dm.d), X, id, 0LL, &zero, Z, im,
                                           (long long)h, 2));
    return;
  }
  for (int half = 0; half < 2; half++) {
    if (w[half] == 0) continue;
    CUBLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w[half], in, id, &one,
                             W + r0[half] * dm.d, id, X, id, &zero, Z + r0[half], im));
  }
}

/* Z = X W^T (n, m); F = m^-1/2 relu(Z) A (n, k), the halves' sums added at the end */
static void cuda_forward(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                         float *Z, float *F) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  const float alpha = (float)(1.0 / sqrt((double)dm.m));
  z_halves(c, dm, X, W, Z);
  sgn_cuda_rows_times_a(dm.n, dm.m, dm.k, Z, NULL, A, alpha, F, c->stream);
}

/* out = J V: out[i,c] = m^-1/2 sum_r A[r,c] 1[Z_ir>0] <V_r, x_i>   (n, k) */
static void cuda_jvp(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A,
                     const float *V, float *work, float *out) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  const float alpha = (float)(1.0 / sqrt((double)dm.m));
  z_halves(c, dm, X, V, work); /* P = X V^T (n, m) */
  sgn_cuda_rows_times_a(dm.n, dm.m, dm.k, Z, work, A, alpha, out, c->stream);
}

/* out = J^T Gv: out[r,:] = m^-1/2 sum_i (sum_c Gv[i,c] A[r,c]) 1[Z_ir>0] x_i   (m, d) */
static void cuda_vjp(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A,
                     const float *Gv, float *work, float *out) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  const float alpha = (float)(1.0 / sqrt((double)m)), zero = 0.0f;
  const int64_t h = m / 2;
  const int64_t r0[2] = {0, h}, w[2] = {h, m - h};
  if (n == 0) {
    CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)m * (size_t)d * sizeof(float), c->stream));
    return;
  }
  const int in = sgn_cuda_int(n, "n"), id = sgn_cuda_int(d, "d"), im = sgn_cuda_int(m, "m");
  sgn_cuda_vjp_rows(n, m, dm.k, Z, Gv, A, work, c->stream); /* B = M o (Gv A^T) (n, m) */
  /* out[r0:r0+w](w, d) = alpha B_half^T(w, n) X(n, d), B_half = B[:, r0:r0+w] row stride m.
   * Column-major: out_half^T(d, w) ld d = X^T(d, n) B_half(n, w); X is stored as (d, n)
   * ld d -> N, B_half as (w, n) ld m -> T:  cublasSgemm(N, T, d, w, n); with m even one
   * strided-batched call as in z_halves (strides X: 0, B: h, out: h d), so a mirrored B gives
   * an exactly antisymmetric J^T g */
  if (h > 0 && w[0] == w[1]) {
    CUBLAS_CHECK(cublasSgemmStridedBatched(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, id, (int)h, in,
                                           &alpha, X, id, 0LL, work, im, (long long)h, &zero, out,
                                           id, (long long)(h * d), 2));
    return;
  }
  for (int half = 0; half < 2; half++) {
    if (w[half] == 0) continue;
    CUBLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, id, (int)w[half], in, &alpha, X,
                             id, work + r0[half], im, &zero, out + r0[half] * d, id));
  }
}

/* G[(i,c),(j,e)] = <x_i,x_j> (1/m) sum_r A[r,c] A[r,e] M_ir M_jr; (n, n) block only if !full.
 * The CPU twin's blocking: row blocks [i0, i0 + rb) against columns [i0, n), K = X X^T and
 * S = M diag(A_c o A_e) M^T on the block (exact integers in float32), each entry written with
 * its mirrors, so G is exactly symmetric. */
static void cuda_gram(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A,
                      int full, float *work, double *G) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  const int64_t k = full ? dm.k : 1;
  const double inv_m = 1.0 / (double)m;
  const float one = 1.0f, zero = 0.0f;
  if (n == 0) return;
  const int id = sgn_cuda_int(d, "d"), im = sgn_cuda_int(m, "m");
  sgn_cuda_int(n * k, "n k");

  sgn_cuda_mask((size_t)n * (size_t)m, Z, work, c->stream); /* M = 1[Z > 0] (n, m) */
  const float *M = work;

  /* per row: K block, plain S block, signed S block (n each), signed M rows (m) */
  const size_t per_row = 3 * (size_t)n + (size_t)m;
  int64_t nb = (int64_t)(GRAM_SCRATCH_FLOATS / per_row);
  if (nb < GRAM_MIN_ROWS) nb = GRAM_MIN_ROWS;
  if (nb > n) nb = n;
  float *Kb = (float *)sgn_cuda_grow(&c->scratch, &c->scratch_cap,
                                     (size_t)nb * per_row * sizeof(float));
  float *Sb = Kb + (size_t)nb * (size_t)n; /* (nb, n - i0) plain M M^T */
  float *Se = Sb + (size_t)nb * (size_t)n; /* (nb, n - i0) signed */
  float *Ms = Se + (size_t)nb * (size_t)n; /* (nb, m) signed rows of M */

  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rb = n - i0 < nb ? n - i0 : nb;
    const int cols = (int)(n - i0);
    const float *Xb = X + (size_t)i0 * (size_t)d, *Mb = M + (size_t)i0 * (size_t)m;
    /* Kb(rb, cols) = X[i0:i0+rb](rb, d) X[i0:n](cols, d)^T. Column-major: Kb^T(cols, rb)
     * ld cols = X[i0:n](cols, d) X[i0:i0+rb]^T(d, rb); both stored (d, .) ld d
     * -> cublasSgemm(T, N, cols, rb, d) */
    CUBLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, cols, (int)rb, id, &one, Xb, id,
                             Xb, id, &zero, Kb, cols));
    /* Sb(rb, cols) = M[i0:i0+rb](rb, m) M[i0:n](cols, m)^T -> cublasSgemm(T, N, cols, rb, m) */
    CUBLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, cols, (int)rb, im, &one, Mb, im,
                             Mb, im, &zero, Sb, cols));
    for (int64_t ce = 0; ce < k; ce++) {
      for (int64_t ee = ce; ee < k; ee++) {
        const float *S = Sb;
        if (ee != ce) {
          /* Ms = M[i0:i0+rb] diag(A[:,c] o A[:,e]); Se(rb, cols) = Ms(rb, m) M[i0:n](cols, m)^T
           * -> cublasSgemm(T, N, cols, rb, m) with A = M[i0:n], B = Ms */
          sgn_cuda_mask_signed(rb, m, dm.k, Mb, A, ce, ee, Ms, c->stream);
          CUBLAS_CHECK(cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, cols, (int)rb, im, &one, Mb,
                                   im, Ms, im, &zero, Se, cols));
          S = Se;
        }
        sgn_cuda_gram_scatter(n, k, i0, rb, ce, ee, Kb, S, inv_m, G, c->stream);
      }
    }
  }
}

/* diag[i] = G_ii = ||x_i||^2 (1/m) sum_r M_ir   (n) */
static void cuda_gram_diag(void *ctx, sgn_dims dm, const float *X, const float *Z,
                           double *diag) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  sgn_cuda_gram_diag(dm.n, dm.d, dm.m, X, Z, diag, c->stream);
}

/* ---- sketches and factorizations: sketch.cu and linalg.cu ---- */

static size_t cuda_sketch_work_bytes(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s) {
  (void)ctx;
  return sgn_cuda_sketch_work_bytes(dm, kind, s);
}

/* Y (n, s) = sketch of the k = 1 block of J */
static void cuda_sketch(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed,
                        const float *X, const float *Z, void *work, float *Y) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  switch (kind) {
  case SGN_SKETCH_SRHT:
    sgn_cuda_sketch_srht(dm, s, seed, X, Z, work, Y, c->stream);
    return;
  case SGN_SKETCH_GAUSSIAN:
    sgn_cuda_sketch_gaussian(c->blas, dm, s, seed, X, Z, work, Y, c->stream);
    return;
  }
  /* an enum value this backend does not know: make the result loud rather than plausible */
  sgn_fail(SGN_E_INPUT, "gpu backend: unknown sketch kind %d", (int)kind);
  CUDA_CHECK(cudaMemsetAsync(Y, 0xff, (size_t)dm.n * (size_t)s * sizeof(float), c->stream));
}

static size_t cuda_qr_work_bytes(void *ctx, int64_t n, int64_t s) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  return sgn_cuda_qr_work_bytes(c->solver, n, s, c->partials);
}

static int cuda_qr_r(void *ctx, int64_t n, int64_t s, const float *Y, double lambda, void *work,
                     double *R) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  return sgn_cuda_qr_r(c->solver, n, s, Y, lambda, work, R, c->host_i, c->stream);
}

static int cuda_cholesky(void *ctx, int64_t N, double *G, double lambda) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  return sgn_cuda_cholesky(c->solver, N, G, lambda, &c->solver_ws, &c->solver_ws_cap, c->dinfo,
                           c->host_i, c->stream);
}

static void cuda_rtr_solve(void *ctx, int64_t N, int64_t k, const double *R, double *V) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  sgn_cuda_rtr_solve(c->blas, N, k, R, V);
}

/* ---- vector ops: vecops.cu ---- */

static double cuda_dot(void *ctx, int64_t len, const double *x, const double *y) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  return sgn_cuda_dot(len, x, y, c->partials, c->host_d, c->stream);
}

static void cuda_axpy(void *ctx, int64_t len, double a, const double *x, double *y) {
  sgn_cuda_axpy(len, a, x, y, ((cuda_ctx *)ctx)->stream);
}

static void cuda_xpby(void *ctx, int64_t len, const double *x, double b, double *y) {
  sgn_cuda_xpby(len, x, b, y, ((cuda_ctx *)ctx)->stream);
}

static void cuda_scal(void *ctx, int64_t len, double a, double *x) {
  sgn_cuda_scal(len, a, x, ((cuda_ctx *)ctx)->stream);
}

static void cuda_d2f(void *ctx, int64_t len, const double *x, float *y) {
  sgn_cuda_d2f(len, x, y, ((cuda_ctx *)ctx)->stream);
}

static void cuda_f2d(void *ctx, int64_t len, const float *x, double *y) {
  sgn_cuda_f2d(len, x, y, ((cuda_ctx *)ctx)->stream);
}

static double cuda_residual(void *ctx, int64_t len, const float *F, const float *Y, double *r) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  return sgn_cuda_residual(len, F, Y, r, c->partials, c->host_d, c->stream);
}

static void cuda_axpy_f(void *ctx, int64_t len, float a, const float *x, float *y) {
  sgn_cuda_axpy_f(len, a, x, y, ((cuda_ctx *)ctx)->stream);
}

static void cuda_gather_rows(void *ctx, int64_t b, int64_t cols, const float *src,
                             const int64_t *idx, float *out) {
  sgn_cuda_gather_rows(b, cols, src, idx, out, ((cuda_ctx *)ctx)->stream);
}

static void cuda_adam(void *ctx, int64_t len, float *W, const float *g, float *mom, float *vel,
                      double lr, double b1, double b2, double eps, int64_t t) {
  sgn_cuda_adam(len, W, g, mom, vel, lr, b1, b2, eps, t, ((cuda_ctx *)ctx)->stream);
}

/* ---- the table ---- */

/* Releases whatever ctx holds; safe on a partly opened ctx. Errors here are ignored: the
 * backend is going away, and a sticky device error would only repeat. */
static void cuda_destroy(void *ctx) {
  cuda_ctx *c = (cuda_ctx *)ctx;
  if (!c) return;
  if (c->stream) (void)cudaStreamSynchronize(c->stream);
  if (c->solver) (void)cusolverDnDestroy(c->solver);
  if (c->blas) (void)cublasDestroy(c->blas);
  (void)cudaFree(c->partials);
  (void)cudaFree(c->dinfo);
  (void)cudaFree(c->scratch);
  (void)cudaFree(c->solver_ws);
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
    .forward = cuda_forward,     /* two SGEMMs for Z, fused relu(Z) A row reduction */
    .jvp = cuda_jvp,             /* two SGEMMs for X V^T, fused (M o P) A row reduction */
    .vjp = cuda_vjp,             /* fused B = M o (Gv A^T), two SGEMMs for B^T X */
    .gram = cuda_gram,           /* SGEMM row blocks of X X^T and M M^T, mirrored scatter */
    .gram_diag = cuda_gram_diag, /* one block per row */
    /* sketches */
    .sketch_work_bytes = cuda_sketch_work_bytes, /* sketch.cu */
    .sketch = cuda_sketch,                       /* srht | gaussian, sketch.cu */
    /* dense factorizations */
    .qr_work_bytes = cuda_qr_work_bytes, /* A, tau, dgeqrf workspace, devInfo */
    .qr_r = cuda_qr_r,                   /* cusolverDnDgeqrf of [Y^T; sqrt(lambda) I] -> R */
    .cholesky = cuda_cholesky,           /* cusolverDnDpotrf, upper */
    .rtr_solve = cuda_rtr_solve,         /* two cublasDtrsm */
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
    .destroy = cuda_destroy, /* handles, buffers, stream, ctx; sgn_backend_close frees the handle */
};

/* ---- opening, probing, reporting ---- */

extern "C" int sgn_cuda_device_count(void) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

/* Records "gpu backend: <what> failed (<why>)" and returns NULL after releasing c. */
static sgn_backend *open_failed(cuda_ctx *c, const char *what, const char *why) {
  sgn_fail(SGN_E_RUNTIME, "gpu backend: %s failed (%s)", what, why);
  cuda_destroy(c);
  return NULL;
}

extern "C" sgn_backend *sgn_backend_cuda_open(void) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count < 1) {
    (void)cudaGetLastError();
    sgn_fail(SGN_E_RUNTIME, "no CUDA device answers (%s)",
             err != cudaSuccess ? cudaGetErrorString(err) : "the driver reports 0 devices");
    return NULL;
  }
  cuda_ctx *c = (cuda_ctx *)calloc(1, sizeof *c);
  if (!c) {
    sgn_fail(SGN_E_RUNTIME, "gpu backend: out of host memory");
    return NULL;
  }
  c->device = 0;
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
  CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
  CUBLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH)); /* no TF32 */
  CUBLAS_CHECK(cublasSetPointerMode(c->blas, CUBLAS_POINTER_MODE_HOST));
  CUSOLVER_CHECK(cusolverDnSetStream(c->solver, c->stream));
  if ((err = cudaMalloc(&c->partials, (SGN_RED_BLOCKS + 1) * sizeof(double))) != cudaSuccess ||
      (err = cudaMalloc(&c->dinfo, sizeof(int))) != cudaSuccess ||
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

extern "C" int sgn_cuda_device_info(char *buf, size_t len) {
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
           err != cudaSuccess ? cudaGetErrorString(err) : "the driver reports 0 devices",
           rt / 1000, rt % 1000 / 10, drv / 1000, drv % 1000 / 10);
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
         p.multiProcessorCount, count, count == 1 ? "" : "s", rt / 1000, rt % 1000 / 10,
         drv / 1000, drv % 1000 / 10, blas_maj, blas_min, blas_pat, sol_maj, sol_min, sol_pat,
         fft, rand);
  return SGN_OK;
}

extern "C" void sgn_hadamard_cuda(sgn_backend *be, float *x, int64_t rows, int64_t len) {
  if (!be || be->ops != &cuda_ops) {
    sgn_fail(SGN_E_INPUT, "sgn_hadamard_cuda: not a CUDA backend");
    return;
  }
  sgn_cuda_hadamard(x, rows, len, ((cuda_ctx *)be->ctx)->stream);
}
