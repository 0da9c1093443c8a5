/* products.cu — the elementwise and row-reduction halves of the Jacobian products over one neuron
 * chunk (their GEMMs are in cuda/backend.cu; the CPU twins are cpu/products.c, cpu/gram.c and
 * cpu/mask.c) (layout.h: columns [0, w0) of the chunk buffer are neurons r0a.., [w0, w0 + w1) are
 * r0b..): the bit mask written from X W^T, relu(Z) A and (M o P) A as fused row reductions that
 * run sums across chunks, the masked B of J^T g (rounded at the product precision: backend.h
 * set_product_precision), the mask expanded to floats and signed for the
 * Gram (and to bytes, by neuron range or by a head's two ranges), the Gram's mirrored scatter (and
 * a head's float32 block's upper triangle) and its diagonal (a popcount). Launchers return 0, or -1 with the
 * backend's sticky error set (cuda_check.h). */
#include "cuda_check.h"
#include "kernels.h"
#include "precision.h"

#define RJ_KC 8 /* outputs per pass of a row reduction (accumulators in registers) */

/* ---- kernels ---- */

/* Mask word of neuron r (a multiple of 32) <- bits for neurons [r, r + min(left, 32)); the
 * word's other bits kept, those past m cleared. bits has no bit at or past left. */
static __device__ __forceinline__ void mask_word_put(uint32_t *mrow, int64_t r, int64_t left,
                                                     uint32_t bits, int64_t m) {
  uint32_t span = left >= 32 ? 0xffffffffu : (1u << left) - 1u;
  if (r + 32 > m && (m & 31)) span |= ~((1u << (m & 31)) - 1u); /* padding past m */
  mrow[r >> 5] = (mrow[r >> 5] & ~span) | bits;
}

/* One block per row i (grid-stride over rows). g = relu(p) as the CPU twin writes it (p < 0 ? 0
 * : p, so a NaN weight shows in f) when M is NULL, else M_ir p. For outputs [c0, c0 + RJ_KC) at
 * a time, thread t accumulates chunk columns r = t, t + T, ... of each half with fmaf in the same
 * order, then the block adds them with the same tree: a half that mirrors the other (same p,
 * negated A) gives exactly the negated sum. With v1 = alpha S1, v2 = alpha S2 (never contracted):
 * first and last: out = v1 + v2; else out and acc1 run the halves' sums across chunks
 * (first: out = v1, acc1 = v2; later: out += v1, acc1 += v2) and last adds out += acc1.
 * Mout (forward only, M NULL, r0a and r0b multiples of 32): the same pass also writes the mask
 * bits of both halves, Mout_ir = 1[p > 0] (NaN gives 0): the warps walk each half 32 columns at a
 * time, so a ballot is one mask word, written by lane 0 with the bits outside the half (or past
 * m, cleared) merged as mask_pack_kernel does; no two lanes of a launch share a word. */
static __global__ void chunk_times_a_kernel(int64_t n, int64_t w0, int64_t w1, int64_t k,
                                            const float *__restrict__ P,
                                            const uint32_t *__restrict__ M, int64_t mw, int64_t r0a,
                                            int64_t r0b, const float *__restrict__ A, float alpha,
                                            int first, int last, float *__restrict__ out,
                                            float *__restrict__ acc1, uint32_t *__restrict__ Mout,
                                            int64_t m) {
  __shared__ float part[SGN_THREADS / 32][2 * RJ_KC];
  const int64_t ld = w0 + w1; /* w1 >= w0 */
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float *p = P + (size_t)i * (size_t)ld;
    const uint32_t *mrow = M ? M + (size_t)i * (size_t)mw : nullptr;
    uint32_t *orow = Mout ? Mout + (size_t)i * (size_t)mw : nullptr;
    for (int64_t c0 = 0; c0 < k; c0 += RJ_KC) {
      const int kc = (int)(k - c0 < RJ_KC ? k - c0 : RJ_KC);
      const bool pack = orow && c0 == 0; /* the same for the whole block */
      float s1[RJ_KC], s2[RJ_KC];
#pragma unroll
      for (int c = 0; c < RJ_KC; c++) s1[c] = 0.0f, s2[c] = 0.0f;
      /* thread t takes r = t, t + T, ...; the loop runs while any lane of the warp has an r, so
       * the ballots below see all 32 lanes (the sums are those of a loop over r < w1) */
      for (int64_t rw = threadIdx.x - lane; rw < w1; rw += blockDim.x) {
        const int64_t r = rw + lane;
        bool on1 = false, on2 = false;
        if (r < w0) {
          const float pv = p[r];
          on1 = pv > 0.0f;
          const float g = mrow ? (sgn_mask_bit(mrow, r0a + r) ? pv : 0.0f)
                               : (pv < 0.0f ? 0.0f : pv);
          const float *a = A + (size_t)(r0a + r) * (size_t)k + (size_t)c0;
#pragma unroll
          for (int c = 0; c < RJ_KC; c++)
            if (c < kc) s1[c] = fmaf(g, a[c], s1[c]);
        }
        if (r < w1) {
          const float pv = p[w0 + r];
          on2 = pv > 0.0f;
          const float g = mrow ? (sgn_mask_bit(mrow, r0b + r) ? pv : 0.0f)
                               : (pv < 0.0f ? 0.0f : pv);
          const float *a = A + (size_t)(r0b + r) * (size_t)k + (size_t)c0;
#pragma unroll
          for (int c = 0; c < RJ_KC; c++)
            if (c < kc) s2[c] = fmaf(g, a[c], s2[c]);
        }
        if (pack) {
          const uint32_t b1 = __ballot_sync(0xffffffffu, on1);
          const uint32_t b2 = __ballot_sync(0xffffffffu, on2);
          if (lane == 0) {
            if (rw < w0) mask_word_put(orow, r0a + rw, w0 - rw, b1, m);
            mask_word_put(orow, r0b + rw, w1 - rw, b2, m); /* rw < w1 */
          }
        }
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
        const float v1 = __fmul_rn(alpha, t1), v2 = __fmul_rn(alpha, t2);
        const size_t e = (size_t)i * (size_t)k + (size_t)(c0 + c);
        if (first && last) {
          out[e] = __fadd_rn(v1, v2);
        } else {
          const float o = first ? v1 : __fadd_rn(out[e], v1);
          const float a = first ? v2 : __fadd_rn(acc1[e], v2);
          if (last) out[e] = __fadd_rn(o, a);
          else out[e] = o, acc1[e] = a;
        }
      }
      __syncthreads(); /* part[] is reused by the next pass */
    }
  }
}

/* Bits [r0, r0 + w) of mask row i <- Z[i, col0 + j] > 0 (NaN gives 0), the row's other bits
 * kept, and the padding bits past m cleared by the range that ends at m. Rows over blocks, one
 * thread per 32-bit word, so no two threads write one word. */
static __global__ void mask_pack_kernel(int64_t rows, int64_t ld, int64_t col0, int64_t w,
                                        const float *__restrict__ Z, int64_t r0, int64_t m,
                                        int64_t mw, uint32_t *__restrict__ M) {
  const int64_t q0 = r0 >> 5, q1 = (r0 + w - 1) >> 5; /* words touched, inclusive */
  for (int64_t i = blockIdx.x; i < rows; i += gridDim.x) {
    const float *z = Z + (size_t)i * (size_t)ld + (size_t)col0;
    uint32_t *mrow = M + (size_t)i * (size_t)mw;
    for (int64_t q = q0 + threadIdx.x; q <= q1; q += blockDim.x) {
      const int64_t lo = 32 * q > r0 ? 32 * q : r0;
      const int64_t hi = 32 * q + 32 < r0 + w ? 32 * q + 32 : r0 + w;
      uint32_t bits = 0, span = 0;
      for (int64_t r = lo; r < hi; r++) {
        const uint32_t b = 1u << (r & 31);
        span |= b;
        if (z[r - r0] > 0.0f) bits |= b;
      }
      if (hi == m && (m & 31)) span |= ~((1u << (m & 31)) - 1u); /* padding past m */
      mrow[q] = (mrow[q] & ~span) | bits;
    }
  }
}

/* B[i, col] = M_ir sum_c Gv[i,c] A[r,c], r the chunk's neuron at column col, rounded per prec
 * (T = float, or uint16_t for bf16: sgn_store_rounded): rows over blocks, columns over threads.
 * B (n, w0 + w1). */
template <typename T>
static __global__ void
vjp_rows_kernel(int64_t n, int64_t w0, int64_t w1, int64_t k, const uint32_t *__restrict__ M,
                int64_t mw, int64_t r0a, int64_t r0b, const float *__restrict__ Gv,
                const float *__restrict__ A, sgn_precision prec, T *__restrict__ B) {
  const int64_t ld = w0 + w1;
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const uint32_t *mrow = M + (size_t)i * (size_t)mw;
    const float *g = Gv + (size_t)i * (size_t)k;
    T *b = B + (size_t)i * (size_t)ld;
    for (int64_t col = threadIdx.x; col < ld; col += blockDim.x) {
      const int64_t r = col < w0 ? r0a + col : r0b + (col - w0);
      float acc = 0.0f;
      if (sgn_mask_bit(mrow, r)) {
        const float *a = A + (size_t)r * (size_t)k;
        for (int64_t c = 0; c < k; c++) acc = fmaf(g[c], a[c], acc);
      }
      sgn_store_rounded(&b[col], sgn_round_precision(acc, prec));
    }
  }
}

/* out[ii, j] = M_(ii), r0 + j as 0.0f / 1.0f, j < w, row stride ld; M points at the first row */
static __global__ void mask_expand_kernel(int64_t rows, const uint32_t *__restrict__ M, int64_t mw,
                                          int64_t r0, int64_t w, int64_t ld,
                                          float *__restrict__ out) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    const uint32_t *mrow = M + (size_t)ii * (size_t)mw;
    float *o = out + (size_t)ii * (size_t)ld;
    for (int64_t j = threadIdx.x; j < w; j += blockDim.x)
      o[j] = sgn_mask_bit(mrow, r0 + j) ? 1.0f : 0.0f;
  }
}

/* Ms[ii, r] = Mf[ii, r] (A[r0 + r, c] A[r0 + r, e]), Mf rows of stride ldm, Ms of stride w: the
 * CPU twin's expression with (A A) first */
static __global__ void mask_signed_kernel(int64_t rows, int64_t w, int64_t ldm, int64_t k,
                                          const float *Mf, const float *__restrict__ A, int64_t r0,
                                          int64_t c, int64_t e, float *Ms) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    for (int64_t r = threadIdx.x; r < w; r += blockDim.x) {
      const float *a = A + (size_t)(r0 + r) * (size_t)k;
      Ms[(size_t)ii * (size_t)w + r] = __fmul_rn(Mf[(size_t)ii * (size_t)ldm + r],
                                                 __fmul_rn(a[c], a[e]));
    }
  }
}

/* Bytes for the Gram's int8 GEMM: out[ii, j] = bit r0 + j of mask row ii (0 or 1), and with A
 * the neuron's sign A[r0 + j, c] A[r0 + j, e] (+1 or -1) in place of the 1, for j < w; 0 for
 * w <= j < ld and in the rows [rows, rows_pad) (the GEMM's padding). */
static __global__ void mask_bytes_kernel(int64_t rows, int64_t rows_pad,
                                         const uint32_t *__restrict__ M, int64_t mw, int64_t r0,
                                         int64_t w, int64_t ld, const float *__restrict__ A,
                                         int64_t k, int64_t c, int64_t e,
                                         int8_t *__restrict__ out) {
  for (int64_t ii = blockIdx.x; ii < rows_pad; ii += gridDim.x) {
    int8_t *o = out + (size_t)ii * (size_t)ld;
    const uint32_t *mrow = M + (size_t)(ii < rows ? ii : 0) * (size_t)mw;
    for (int64_t j = threadIdx.x; j < ld; j += blockDim.x) {
      int8_t v = 0;
      if (ii < rows && j < w && sgn_mask_bit(mrow, r0 + j)) {
        v = 1;
        if (A) {
          const float *a = A + (size_t)(r0 + j) * (size_t)k;
          v = a[c] * a[e] > 0.0f ? (int8_t)1 : (int8_t)-1;
        }
      }
      o[j] = v;
    }
  }
}

/* Bytes of a two-range chunk (layout.h) for the int8 GEMM of a separate-outputs model's head:
 * out[ii, j] = bit ch.r0a + j of mask row ii for j < w0, bit ch.r0b + j - w0 for
 * w0 <= j < w0 + w1 (0 or 1); 0 for w0 + w1 <= j < ld and in the rows [rows, rows_pad). */
static __global__ void mask_bytes_chunk_kernel(int64_t rows, int64_t rows_pad,
                                               const uint32_t *__restrict__ M, int64_t mw,
                                               sgn_chunk ch, int64_t ld, int8_t *__restrict__ out) {
  for (int64_t ii = blockIdx.x; ii < rows_pad; ii += gridDim.x) {
    int8_t *o = out + (size_t)ii * (size_t)ld;
    const uint32_t *mrow = M + (size_t)(ii < rows ? ii : 0) * (size_t)mw;
    for (int64_t j = threadIdx.x; j < ld; j += blockDim.x) {
      int8_t v = 0;
      if (ii < rows && j < ch.w0 + ch.w1)
        v = (int8_t)sgn_mask_bit(mrow, j < ch.w0 ? ch.r0a + j : ch.r0b + (j - ch.w0));
      o[j] = v;
    }
  }
}

/* gram_scatter_kernel with integer counts S of row stride lds (Kb's stays cols = n - i0):
 * v = (Kb S) inv_m, the same roundings, so equal counts give the CPU's bits. */
static __global__ void gram_scatter_i32_kernel(int64_t n, int64_t k, int64_t i0, int64_t rb,
                                               int64_t c, int64_t e, const float *__restrict__ Kb,
                                               const int32_t *__restrict__ S, int64_t lds,
                                               double inv_m, double *__restrict__ G) {
  const size_t cols = (size_t)(n - i0), N = (size_t)n * (size_t)k, K = (size_t)k;
  const size_t C = (size_t)c, E = (size_t)e;
  for (int64_t ii = blockIdx.x; ii < rb; ii += gridDim.x) {
    const size_t i = (size_t)(i0 + ii);
    for (size_t jj = (size_t)ii + threadIdx.x; jj < cols; jj += blockDim.x) {
      const size_t j = (size_t)i0 + jj;
      const double v = __dmul_rn(
          __dmul_rn((double)Kb[(size_t)ii * cols + jj], (double)S[(size_t)ii * (size_t)lds + jj]),
          inv_m);
      G[(i * K + C) * N + j * K + E] = v;
      G[(j * K + E) * N + i * K + C] = v;
      G[(i * K + E) * N + j * K + C] = v;
      G[(j * K + C) * N + i * K + E] = v;
    }
  }
}

/* A separate-outputs head's block (n, n) float32, rows [i0, i0 + rb): for jj >= ii,
 * v = (float)((Kr S) inv_m) with Kr of row stride ldk (the caller's K or gram_heads' Kb) and S
 * of lds, the CPU twin's roundings, written at (i, j): the upper triangle only (backend.h). */
static __global__ void heads_scatter_kernel(int64_t n, int64_t i0, int64_t rb,
                                            const float *__restrict__ Kr, int64_t ldk,
                                            const int32_t *__restrict__ S, int64_t lds,
                                            double inv_m, float *__restrict__ G) {
  const size_t cols = (size_t)(n - i0), N = (size_t)n;
  for (int64_t ii = blockIdx.x; ii < rb; ii += gridDim.x) {
    const size_t i = (size_t)(i0 + ii);
    for (size_t jj = (size_t)ii + threadIdx.x; jj < cols; jj += blockDim.x) {
      const size_t j = (size_t)i0 + jj;
      const float v = __double2float_rn(
          __dmul_rn(__dmul_rn((double)Kr[(size_t)ii * (size_t)ldk + jj],
                              (double)S[(size_t)ii * (size_t)lds + jj]),
                    inv_m));
      G[i * N + j] = v;
    }
  }
}

/* Block entries (ii, jj), row stride cols = n - i0, for jj >= ii (j = i0 + jj >= i = i0 + ii):
 * rows over blocks, columns over threads. Each unordered pair {i, j} belongs to one thread, so
 * no two threads write one entry. */
static __global__ void gram_scatter_kernel(int64_t n, int64_t k, int64_t i0, int64_t rb, int64_t c,
                                           int64_t e, const float *__restrict__ Kb,
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

/* One block per row: the active count by a block sum of word popcounts (exact); ||x_i||^2 by
 * thread 0 in order, as the CPU twin does (d is small next to m). */
static __global__ void gram_diag_kernel(int64_t n, int64_t d, int64_t m,
                                        const float *__restrict__ X, const uint32_t *__restrict__ M,
                                        double *__restrict__ diag) {
  const int64_t mw = SGN_MASK_WORDS(m);
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const uint32_t *mrow = M + (size_t)i * (size_t)mw;
    long long active = 0;
    for (int64_t q = threadIdx.x; q < mw; q += blockDim.x) active += __popc(mrow[q]);
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

extern "C" int sgn_cuda_chunk_times_a(int64_t n, int64_t k, const float *P, const uint32_t *M,
                                      int64_t mw, sgn_chunk ch, const float *A, float alpha,
                                      int first, int last, float *out, float *acc1,
                                      cudaStream_t st) {
  if (n <= 0 || k <= 0) return 0;
  if (ch.w0 + ch.w1 <= 0) {
    if (first) CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)n * (size_t)k * sizeof(float), st));
    return 0;
  }
  chunk_times_a_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(
      n, ch.w0, ch.w1, k, P, M, mw, ch.r0a, ch.r0b, A, alpha, first, last, out, acc1, nullptr, 0);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_forward_rows(int64_t n, int64_t k, int64_t m, const float *Z, sgn_chunk ch,
                                     const float *A, float alpha, int first, int last, uint32_t *M,
                                     float *out, float *acc1, cudaStream_t st) {
  const int64_t mw = SGN_MASK_WORDS(m), ld = ch.w0 + ch.w1;
  if (n <= 0) return 0;
  if (k <= 0 || ld <= 0 || (ch.r0a & 31) || (ch.r0b & 31)) {
    /* halves that start inside a word (or nothing to sum): pack in a pass of its own */
    if (sgn_cuda_mask_pack(n, ld, 0, ch.w0, Z, ch.r0a, m, M, st) ||
        sgn_cuda_mask_pack(n, ld, ch.w0, ch.w1, Z, ch.r0b, m, M, st))
      return -1;
    return sgn_cuda_chunk_times_a(n, k, Z, NULL, mw, ch, A, alpha, first, last, out, acc1, st);
  }
  chunk_times_a_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(
      n, ch.w0, ch.w1, k, Z, nullptr, mw, ch.r0a, ch.r0b, A, alpha, first, last, out, acc1, M, m);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_mask_pack(int64_t rows, int64_t ld, int64_t col0, int64_t w, const float *Z,
                                  int64_t r0, int64_t m, uint32_t *M, cudaStream_t st) {
  if (rows <= 0 || w <= 0) return 0;
  mask_pack_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(rows, ld, col0, w, Z, r0, m,
                                                               SGN_MASK_WORDS(m), M);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_vjp_rows(int64_t n, int64_t k, const uint32_t *M, int64_t mw, sgn_chunk ch,
                                 const float *Gv, const float *A, sgn_precision prec, void *B,
                                 cudaStream_t st) {
  if (n <= 0 || ch.w0 + ch.w1 <= 0) return 0;
  if (prec == SGN_PRECISION_BF16)
    vjp_rows_kernel<uint16_t><<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(
        n, ch.w0, ch.w1, k, M, mw, ch.r0a, ch.r0b, Gv, A, prec, (uint16_t *)B);
  else
    vjp_rows_kernel<float><<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(
        n, ch.w0, ch.w1, k, M, mw, ch.r0a, ch.r0b, Gv, A, prec, (float *)B);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_mask_expand(int64_t rows, const uint32_t *M, int64_t mw, int64_t r0,
                                    int64_t w, int64_t ld, float *out, cudaStream_t st) {
  if (rows <= 0 || w <= 0) return 0;
  mask_expand_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(rows, M, mw, r0, w, ld, out);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_mask_signed(int64_t rows, int64_t w, int64_t ldm, int64_t k,
                                    const float *Mf, const float *A, int64_t r0, int64_t c,
                                    int64_t e, float *Ms, cudaStream_t st) {
  if (rows <= 0 || w <= 0) return 0;
  mask_signed_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(rows, w, ldm, k, Mf, A, r0, c, e,
                                                                 Ms);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_gram_scatter(int64_t n, int64_t k, int64_t i0, int64_t rb, int64_t c,
                                     int64_t e, const float *Kb, const float *S, double inv_m,
                                     double *G, cudaStream_t st) {
  if (rb <= 0 || n - i0 <= 0) return 0;
  gram_scatter_kernel<<<sgn_row_grid(rb), SGN_THREADS, 0, st>>>(n, k, i0, rb, c, e, Kb, S, inv_m,
                                                                G);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_mask_bytes(int64_t rows, int64_t rows_pad, const uint32_t *M, int64_t mw,
                                   int64_t r0, int64_t w, int64_t ld, const float *A, int64_t k,
                                   int64_t c, int64_t e, int8_t *out, cudaStream_t st) {
  if (rows_pad <= 0 || ld <= 0) return 0;
  mask_bytes_kernel<<<sgn_row_grid(rows_pad), SGN_THREADS, 0, st>>>(rows, rows_pad, M, mw, r0, w,
                                                                    ld, A, k, c, e, out);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_mask_bytes_chunk(int64_t rows, int64_t rows_pad, const uint32_t *M,
                                         int64_t mw, sgn_chunk ch, int64_t ld, int8_t *out,
                                         cudaStream_t st) {
  if (rows_pad <= 0 || ld <= 0) return 0;
  mask_bytes_chunk_kernel<<<sgn_row_grid(rows_pad), SGN_THREADS, 0, st>>>(rows, rows_pad, M, mw, ch,
                                                                          ld, out);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_gram_scatter_i32(int64_t n, int64_t k, int64_t i0, int64_t rb, int64_t c,
                                         int64_t e, const float *Kb, const int32_t *S, int64_t lds,
                                         double inv_m, double *G, cudaStream_t st) {
  if (rb <= 0 || n - i0 <= 0) return 0;
  gram_scatter_i32_kernel<<<sgn_row_grid(rb), SGN_THREADS, 0, st>>>(n, k, i0, rb, c, e, Kb, S, lds,
                                                                    inv_m, G);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_heads_scatter(int64_t n, int64_t i0, int64_t rb, const float *Kr,
                                      int64_t ldk, const int32_t *S, int64_t lds, double inv_m,
                                      float *G, cudaStream_t st) {
  if (rb <= 0 || n - i0 <= 0) return 0;
  heads_scatter_kernel<<<sgn_row_grid(rb), SGN_THREADS, 0, st>>>(n, i0, rb, Kr, ldk, S, lds, inv_m,
                                                                 G);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_gram_diag(int64_t n, int64_t d, int64_t m, const float *X,
                                  const uint32_t *M, double *diag, cudaStream_t st) {
  if (n <= 0) return 0;
  gram_diag_kernel<<<sgn_row_grid(n), SGN_THREADS, 0, st>>>(n, d, m, X, M, diag);
  CUDA_CHECK_LAUNCH();
  return 0;
}
