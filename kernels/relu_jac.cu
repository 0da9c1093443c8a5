/* relu_jac.cu — the elementwise and row-reduction halves of the Jacobian products: relu(Z) A and
 * (M o P) A as fused row reductions (Z is read once, no (n, m) scratch), the masked B of J^T g,
 * the mask and signed mask of the Gram, the Gram's mirrored scatter and its diagonal.
 * The mask is never stored: every kernel reads Z and tests Z > 0 (design.md's bit mask would
 * need a slot of its own; Z is already resident). */
#include "cuda_check.h"
#include "kernels.h"

#define RJ_KC 8 /* outputs per pass of a row reduction (accumulators in registers) */

/* ---- kernels ---- */

/* g = relu(z) as the CPU twin writes it (z < 0 ? 0 : z, so a NaN weight shows in f), or
 * 1[z > 0] p. One block per row i (grid-stride over rows). For outputs [c0, c0 + RJ_KC) at a
 * time, thread t accumulates neurons r = t, t + T, ... of each half with fmaf in the same order,
 * then the block adds them with the same tree: a half that mirrors the other (same g, negated A)
 * gives exactly the negated sum, and alpha S1 + alpha S2 (never contracted) is exactly 0. */
static __global__ void rows_times_a_kernel(int64_t n, int64_t m, int64_t k,
                                           const float *__restrict__ Z,
                                           const float *__restrict__ P,
                                           const float *__restrict__ A, float alpha,
                                           float *__restrict__ out) {
  __shared__ float part[SGN_THREADS / 32][2 * RJ_KC];
  const int64_t h = m / 2, w2 = m - h; /* halves [0, h) and [h, m); w2 >= h */
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float *z = Z + (size_t)i * (size_t)m;
    const float *p = P ? P + (size_t)i * (size_t)m : nullptr;
    for (int64_t c0 = 0; c0 < k; c0 += RJ_KC) {
      const int kc = (int)(k - c0 < RJ_KC ? k - c0 : RJ_KC);
      float s1[RJ_KC], s2[RJ_KC];
#pragma unroll
      for (int c = 0; c < RJ_KC; c++) s1[c] = 0.0f, s2[c] = 0.0f;
      for (int64_t r = threadIdx.x; r < w2; r += blockDim.x) {
        if (r < h) {
          const float zv = z[r];
          const float g = p ? (zv > 0.0f ? p[r] : 0.0f) : (zv < 0.0f ? 0.0f : zv);
          const float *a = A + (size_t)r * (size_t)k + (size_t)c0;
#pragma unroll
          for (int c = 0; c < RJ_KC; c++)
            if (c < kc) s1[c] = fmaf(g, a[c], s1[c]);
        }
        const int64_t r2 = h + r;
        const float zv = z[r2];
        const float g = p ? (zv > 0.0f ? p[r2] : 0.0f) : (zv < 0.0f ? 0.0f : zv);
        const float *a = A + (size_t)r2 * (size_t)k + (size_t)c0;
#pragma unroll
        for (int c = 0; c < RJ_KC; c++)
          if (c < kc) s2[c] = fmaf(g, a[c], s2[c]);
      }
#pragma unroll
      for (int c = 0; c < RJ_KC; c++) {
        if (c < kc) /* kc is the same for the whole block: no lane skips a shuffle */
          for (int off = 16; off > 0; off >>= 1) {
            s1[c] += __shfl_down_sync(0xffffffffu, s1[c], off);
            s2[c] += __shfl_down_sync(0xffffffffu, s2[c], off);
          }
      }
      if (lane == 0) {
#pragma unroll
        for (int c = 0; c < RJ_KC; c++) part[warp][c] = s1[c], part[warp][RJ_KC + c] = s2[c];
      }
      __syncthreads();
      if ((int)threadIdx.x < kc) {
        const int c = (int)threadIdx.x;
        float t1 = 0.0f, t2 = 0.0f;
        for (int w = 0; w < (int)(blockDim.x >> 5); w++) t1 += part[w][c], t2 += part[w][RJ_KC + c];
        out[(size_t)i * (size_t)k + (size_t)(c0 + c)] = __fadd_rn(__fmul_rn(alpha, t1),
                                                                  __fmul_rn(alpha, t2));
      }
      __syncthreads(); /* part[] is reused by the next chunk */
    }
  }
}

/* B[i,r] = 1[Z_ir > 0] sum_c Gv[i,c] A[r,c]: rows over blocks, neurons over threads */
static __global__ void vjp_rows_kernel(int64_t n, int64_t m, int64_t k,
                                       const float *__restrict__ Z, const float *__restrict__ Gv,
                                       const float *__restrict__ A, float *__restrict__ B) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float *z = Z + (size_t)i * (size_t)m, *g = Gv + (size_t)i * (size_t)k;
    float *b = B + (size_t)i * (size_t)m;
    for (int64_t r = threadIdx.x; r < m; r += blockDim.x) {
      float acc = 0.0f;
      if (z[r] > 0.0f) {
        const float *a = A + (size_t)r * (size_t)k;
        for (int64_t c = 0; c < k; c++) acc = fmaf(g[c], a[c], acc);
      }
      b[r] = acc;
    }
  }
}

static __global__ void mask_kernel(size_t count, const float *__restrict__ Z,
                                   float *__restrict__ M) {
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < count;
       e += (size_t)gridDim.x * blockDim.x)
    M[e] = Z[e] > 0.0f ? 1.0f : 0.0f;
}

/* Ms[ii, r] = M[ii, r] (A[r,c] A[r,e]), the CPU twin's expression with (A A) first */
static __global__ void mask_signed_kernel(int64_t rows, int64_t m, int64_t k, const float *M,
                                          const float *__restrict__ A, int64_t c, int64_t e,
                                          float *Ms) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    const size_t row = (size_t)ii * (size_t)m;
    for (int64_t r = threadIdx.x; r < m; r += blockDim.x) {
      const float *a = A + (size_t)r * (size_t)k;
      Ms[row + r] = __fmul_rn(M[row + r], __fmul_rn(a[c], a[e]));
    }
  }
}

/* Block entries (ii, jj), row stride cols = n - i0, for jj >= ii (j = i0 + jj >= i = i0 + ii):
 * rows over blocks, columns over threads. Each unordered pair {i, j} belongs to one thread, so
 * no two threads write one entry. */
static __global__ void gram_scatter_kernel(int64_t n, int64_t k, int64_t i0, int64_t rb,
                                           int64_t c, int64_t e, const float *__restrict__ Kb,
                                           const float *__restrict__ S, double inv_m,
                                           double *__restrict__ G) {
  const size_t cols = (size_t)(n - i0), N = (size_t)n * (size_t)k, K = (size_t)k;
  const size_t C = (size_t)c, E = (size_t)e;
  for (int64_t ii = blockIdx.x; ii < rb; ii += gridDim.x) {
    const size_t i = (size_t)(i0 + ii);
    for (size_t jj = (size_t)ii + threadIdx.x; jj < cols; jj += blockDim.x) {
      const size_t b = (size_t)ii * cols + jj, j = (size_t)i0 + jj;
      const double v = __dmul_rn(__dmul_rn((double)Kb[b], (double)S[b]), inv_m);
      G[(i * K + C) * N + j * K + E] = v;
      G[(j * K + E) * N + i * K + C] = v;
      G[(i * K + E) * N + j * K + C] = v;
      G[(j * K + C) * N + i * K + E] = v;
    }
  }
}

/* One block per row: the active count by a block sum of ints (exact); ||x_i||^2 by thread 0
 * in order, as the CPU twin does (d is small next to m). */
static __global__ void gram_diag_kernel(int64_t n, int64_t d, int64_t m,
                                        const float *__restrict__ X, const float *__restrict__ Z,
                                        double *__restrict__ diag) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float *z = Z + (size_t)i * (size_t)m;
    long long active = 0;
    for (int64_t r = threadIdx.x; r < m; r += blockDim.x) active += z[r] > 0.0f;
    active = sgn_block_sum<long long>(active);
    if (threadIdx.x == 0) {
      const float *x = X + (size_t)i * (size_t)d;
      double xx = 0.0;
      for (int64_t l = 0; l < d; l++) xx = __dadd_rn(xx, __dmul_rn((double)x[l], (double)x[l]));
      diag[i] = __ddiv_rn(__dmul_rn(xx, (double)active), (double)m);
    }
  }
}

/* ---- launchers ---- */

extern "C" void sgn_cuda_rows_times_a(int64_t n, int64_t m, int64_t k, const float *Z,
                                      const float *P, const float *A, float alpha, float *out,
                                      cudaStream_t st) {
  if (n <= 0 || k <= 0) return;
  if (m <= 0) {
    CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)n * (size_t)k * sizeof(float), st));
    return;
  }
  rows_times_a_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(n, m, k, Z, P, A, alpha, out);
  CUDA_CHECK_LAUNCH();
}

extern "C" void sgn_cuda_vjp_rows(int64_t n, int64_t m, int64_t k, const float *Z,
                                  const float *Gv, const float *A, float *B, cudaStream_t st) {
  if (n <= 0 || m <= 0) return;
  vjp_rows_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(n, m, k, Z, Gv, A, B);
  CUDA_CHECK_LAUNCH();
}

extern "C" void sgn_cuda_mask(size_t count, const float *Z, float *M, cudaStream_t st) {
  if (count == 0) return;
  mask_kernel<<<sgn_grid(count), SGN_THREADS, 0, st>>>(count, Z, M);
  CUDA_CHECK_LAUNCH();
}

extern "C" void sgn_cuda_mask_signed(int64_t rows, int64_t m, int64_t k, const float *M,
                                     const float *A, int64_t c, int64_t e, float *Ms,
                                     cudaStream_t st) {
  if (rows <= 0 || m <= 0) return;
  mask_signed_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(rows, m, k, M, A, c, e, Ms);
  CUDA_CHECK_LAUNCH();
}

extern "C" void sgn_cuda_gram_scatter(int64_t n, int64_t k, int64_t i0, int64_t rb, int64_t c,
                                      int64_t e, const float *Kb, const float *S, double inv_m,
                                      double *G, cudaStream_t st) {
  if (rb <= 0 || n - i0 <= 0) return;
  gram_scatter_kernel<<<sgn_row_grid(rb), SGN_THREADS, 0, st>>>(n, k, i0, rb, c, e, Kb, S, inv_m,
                                                                  G);
  CUDA_CHECK_LAUNCH();
}

extern "C" void sgn_cuda_gram_diag(int64_t n, int64_t d, int64_t m, const float *X,
                                   const float *Z, double *diag, cudaStream_t st) {
  if (n <= 0) return;
  gram_diag_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(n, d, m, X, Z, diag);
  CUDA_CHECK_LAUNCH();
}
