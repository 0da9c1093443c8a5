/* products.c (cpu) — the three network products, forward (with the mask), J v and J^T g (twins
 * of cuda/products.cu and the products in cuda/backend.cu): fused kernels that read the bit mask
 * directly when d and k are small (the method's regime, fused.h), else OpenBLAS sgemm (row-major)
 * chunk by chunk (layout.h). Neurons go in two halves [0, m/2) and [m/2, m) whose partial sums
 * run in separate accumulators added at the end, so a symmetric model (mirrored W rows, negated
 * A rows) gives f == 0 bit for bit. Packing the mask (forward) lives here too, and the product
 * precision's rounded operands (tf32, bf16: backend.h set_product_precision). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "fused.h"
#include "precision.h"

/* Floats of Z a forward row block aims at (16 MB): it stays in cache (L3) between the GEMM
 * that writes it and the pass that reads it, in few enough blocks that the BLAS and OpenMP
 * threads do not take turns too often (smaller blocks were slower with 2 busy cores). */
#define FWD_BLOCK_FLOATS ((size_t)1 << 22)

/* ---- the bit mask ---- */

/* pow2[t] = bit t of a mask word: ANDed with a word or a compare's all-ones, it vectorizes on
 * SSE2, where a shift by the lane index does not. */
static const uint32_t pow2[32] = {
    1u << 0,  1u << 1,  1u << 2,  1u << 3,  1u << 4,  1u << 5,  1u << 6,  1u << 7,
    1u << 8,  1u << 9,  1u << 10, 1u << 11, 1u << 12, 1u << 13, 1u << 14, 1u << 15,
    1u << 16, 1u << 17, 1u << 18, 1u << 19, 1u << 20, 1u << 21, 1u << 22, 1u << 23,
    1u << 24, 1u << 25, 1u << 26, 1u << 27, 1u << 28, 1u << 29, 1u << 30, 1u << 31};

/* Bit t of the result <- z[t] > 0 (NaN gives 0), t < take <= 32. Branch-free (the signs are
 * random). The plain loop vectorizes to an OR tree; `omp simd reduction` would end in a scalar
 * loop over its lane array. */
static inline uint32_t mask_bits(const float *z, int take) {
  uint32_t bits = 0;
  if (take == 32) {
    for (int t = 0; t < 32; t++) bits |= pow2[t] & (0u - (uint32_t)(z[t] > 0.0f));
  } else {
    for (int t = 0; t < take; t++) bits |= (uint32_t)(z[t] > 0.0f) << t;
  }
  return bits;
}

/* Bits [r0, r0 + w) of one mask row <- z[j] > 0 (NaN gives 0); the row's other bits stay. */
static void mask_put(uint32_t *row, int64_t r0, int64_t w, const float *z) {
  for (int64_t j = 0; j < w;) {
    const int64_t r = r0 + j;
    const int b = (int)(r & 31);
    const int take = (int)(32 - b < w - j ? 32 - b : w - j);
    const uint32_t bits = mask_bits(z + j, take) << b;
    const uint32_t span = take == 32 ? 0xffffffffu : (((uint32_t)1 << take) - 1u) << b;
    row[r >> 5] = (row[r >> 5] & ~span) | bits;
    j += take;
  }
}

/* Lanes of relu_dot: independent partial sums, so the loop vectorizes without reassociation. */
#define DOT_LANES 8

/* sum_j relu(z[j]) a[j], j < w, NaN propagating: lane t sums j = t mod DOT_LANES in order and
 * the lanes are added in a fixed tree, so the result depends on z and a only (not on alignment
 * or threads), and negating a negates it exactly (the symmetric model's two halves). */
static float relu_dot(int64_t w, const float *z, const float *a) {
  float acc[DOT_LANES] = {0};
  int64_t j = 0;
  for (; j + DOT_LANES <= w; j += DOT_LANES) {
#pragma omp simd
    for (int t = 0; t < DOT_LANES; t++) {
      const float v = z[j + t] < 0.0f ? 0.0f : z[j + t]; /* NaN stays NaN */
      acc[t] += v * a[j + t];
    }
  }
  for (int t = 0; j + t < w; t++) {
    const float v = z[j + t] < 0.0f ? 0.0f : z[j + t];
    acc[t] += v * a[j + t];
  }
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* float storage read as its bits (an AND with 0 gives +0.0f, whatever the value was) */
typedef uint32_t __attribute__((may_alias)) f32_bits;

/* p[j] <- bit r0 + j of the mask row ? p[j] : 0, for j < w. Word by word and branch-free: the
 * bits of p are ANDed with all-ones or zero (a bit per element costs ~6 ns with a branch). */
static void mask_keep(const uint32_t *row, int64_t r0, int64_t w, float *p) {
  for (int64_t j = 0; j < w; j += 32) {
    const int64_t r = r0 + j, q = r >> 5;
    const int b = (int)(r & 31);
    const int take = (int)(w - j < 32 ? w - j : 32);
    uint32_t bits = row[q] >> b;
    if (b && b + take > 32) bits |= row[q + 1] << (32 - b); /* neurons of the next word */
    f32_bits *u = (f32_bits *)(p + j);
    for (int t = 0; t < take; t++) u[t] &= 0u - ((bits >> t) & 1u);
  }
}

/* ---- the product precision (backend.h set_product_precision) ----
 * tf32 and bf16 round the operands of the GEMMs with d in them to nearest-even
 * (sgn_round_precision, as the sketch Gram rounds Y): X and W or V into copies in c->rounded
 * (the caller's arrays stay as they are), J^T g's masked coefficients where they are made. The
 * float32 paths below then run on the rounded values, each product of two exact as on a GPU's
 * tensor cores: the CPU shows what the precisions cost in accuracy, never a gain in time (the
 * roundings add passes; J^T g's, in the fused kernel's inner loop, costs the most). */

/* dst[e] = src[e] rounded per p, e < len (dst == src allowed) */
static void round_copy(size_t len, const float *src, sgn_precision p, float *dst) {
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
  for (size_t e = 0; e < len; e++) dst[e] = sgn_round_precision(src[e], p);
}

/* *X (n, d) and, unless Q is NULL, *Q (m, d) replaced by copies rounded per the context's
 * product precision (nothing done at fp32). Returns 0, or -1 with the sticky error set when the
 * copies' buffer cannot grow. */
static int round_operands(cpu_ctx *c, sgn_dims dm, const float **X, const float **Q) {
  const sgn_precision p = c->products;
  if (!sgn_precision_dropped_bits(p)) return 0;
  const size_t nd = (size_t)dm.n * (size_t)dm.d, md = Q ? (size_t)dm.m * (size_t)dm.d : 0;
  if (nd + md > c->rounded_cap) {
    float *b = sgn_cpu_zalloc((nd + md) * sizeof(float));
    if (!b) {
      sgn_cpu_fail(c, "out of memory for the products' rounded operands (%zu floats)", nd + md);
      return -1;
    }
    free(c->rounded);
    c->rounded = b, c->rounded_cap = nd + md;
  }
  round_copy(nd, *X, p, c->rounded);
  *X = c->rounded;
  if (Q) {
    round_copy(md, *Q, p, c->rounded + nd);
    *Q = c->rounded + nd;
  }
  return 0;
}

/* ---- fused products for small d and k ----
 * At small d a product's real work per (sample, neuron) pair is ~d + k flops, and the GEMM path's
 * passes over (n, chunk) floats cost several times more. These kernels read the bit mask directly
 * and keep their sums in registers and L1: forward and J v per sample (in groups of FUSED_GROUP
 * samples that share each block's loads of W or V and A), J^T g per tile of neurons. They need
 * no (n, chunk) buffer, so they ignore dm.mc: chunked and unchunked calls give the same bits. */

/* Products with d <= FUSED_MAX_D and k <= FUSED_MAX_K take the fused kernels. Measured on the
 * 2-core AVX-512 Xeon (n = 1024, m = 65536, 2 threads, each op alone, vs the GEMM path): at
 * k = 1 forward, J v, J^T g are 8x, 12x, 12x faster at d = 4 and about 2x at d = 32; at d = 64
 * forward and J^T g still gain 1.2-1.4x and J v breaks even; at d = 96 and 128 the GEMM path
 * wins. k = 10 and 16 gain more (the GEMM path's second GEMM costs more there). */
#define FUSED_MAX_D SGN_FUSED_MAX_D /* fused.h */
#define FUSED_MAX_K SGN_FUSED_MAX_K
/* Neurons per block: one mask word. A sample's running sums have half as many lanes. */
#define FUSED_LANES 32
/* Samples per group of the forward and J v kernels. */
#define FUSED_GROUP 8
/* Floats of a J^T g tile's sums and A rows (32 KB, within L1). */
#define VJP_TILE_FLOATS 8192
/* The kernels' hot loops are compiled for AVX-512 and AVX2 besides the baseline (the build has
 * no -march), picked when the library loads. No FMA in any: all three round alike. */
#define FUSED_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

static int fused(sgn_dims dm) { return dm.d <= FUSED_MAX_D && dm.k <= FUSED_MAX_K; }

/* Row length of the transposed copies: a block of 32 read at any neuron r < m stays in its row,
 * whose columns past m are 0. */
static int64_t fused_ld(int64_t m) { return (m + 2 * FUSED_LANES - 2) / FUSED_LANES * FUSED_LANES; }

/* (d + k) rows of fused_ld(m) floats for the transposed copies of Q and A: the caller's work when
 * it holds them (unchunked it is (n, m)), else the scratch (NULL when it cannot grow). */
static float *fused_buf(cpu_ctx *c, sgn_dims dm, float *work) {
  const size_t need = (size_t)(dm.d + dm.k) * (size_t)fused_ld(dm.m);
  return sgn_work_floats(dm) >= need ? work : sgn_cpu_scratch(c, need);
}

/* QT (cols, ld) = Q (m, cols)^T, columns [m, ld) = 0 */
static void fused_transpose(int64_t m, int64_t cols, const float *Q, int64_t ld, float *QT) {
#pragma omp parallel for schedule(static) if ((size_t)m * (size_t)cols > PAR_MIN)
  for (int64_t l = 0; l < cols; l++) {
    for (int64_t r = 0; r < m; r++) QT[l * ld + r] = Q[r * cols + l];
    for (int64_t r = m; r < ld; r++) QT[l * ld + r] = 0.0f;
  }
}

/* Bits [r, r + take) of a mask row <- bits (take <= 32, bits past take 0); the others stay. */
static inline void mask_put_word(uint32_t *row, int64_t r, int take, uint32_t bits) {
  const int64_t q = r >> 5;
  const int b = (int)(r & 31), two = b + take > 32;
  const uint64_t span = (((uint64_t)1 << take) - 1u) << b;
  uint64_t cur = row[q] | (two ? (uint64_t)row[q + 1] << 32 : 0);
  cur = (cur & ~span) | ((uint64_t)bits << b);
  row[q] = (uint32_t)cur;
  if (two) row[q + 1] = (uint32_t)(cur >> 32);
}

/* sum_t v[t], t < FUSED_LANES / 2, in a fixed tree (halves added lane by lane) */
static inline float lane_sum(const float *v) {
  float a[FUSED_LANES / 2];
  memcpy(a, v, sizeof a);
  for (int h = FUSED_LANES / 4; h > 0; h /= 2)
    for (int t = 0; t < h; t++) a[t] += a[t + h];
  return a[0];
}

/* S[s,c] = sum_{j<w} g(p_sj) A[r0+j, c], p_sj = <x_s, Q_{r0+j}>: one half [r0, r0 + w) of the
 * neurons for samples x (ns, d), ns <= FUSED_GROUP, from the transposed copies QT (d, ld) and
 * AT (k, ld). Forward (Mout): g = relu (NaN stays NaN) and bit r0 + j of mask row s <- p_sj > 0
 * (NaN gives 0). J v (Min): g(p_sj) = M_{s,r0+j} p_sj. Neurons j and j + 16 of each block of 32
 * add to lane j % 16 of their sample's sums, block after block, and the lanes are added in a
 * fixed tree: S depends on the half's values alone (a mirrored half with negated A gives exactly
 * -S), not on r0's alignment, the group or the threads. */
FUSED_CLONES
static void fused_half(int64_t d, int64_t k, int ns, const float *x, const float *QT,
                       const float *AT, int64_t ld, int64_t r0, int64_t w, const uint32_t *Min,
                       uint32_t *Mout, int64_t mw, float *S) {
  float acc[FUSED_GROUP][FUSED_MAX_K][FUSED_LANES / 2];
  for (int s = 0; s < ns; s++)
    for (int64_t c = 0; c < k; c++)
      for (int t = 0; t < FUSED_LANES / 2; t++) acc[s][c][t] = 0.0f;
  for (int64_t j = 0; j < w; j += FUSED_LANES) {
    const int64_t r = r0 + j;
    const int b = (int)(r & 31), take = (int)(w - j < FUSED_LANES ? w - j : FUSED_LANES);
    const uint32_t valid = (uint32_t)(((uint64_t)1 << take) - 1u);
    for (int s0 = 0; s0 < ns; s0 += 2) {
      /* p[e] = block of x_{s0+e} Q^T for a pair of samples (s0 twice when ns is odd): one pass
       * over QT's block and four independent running sums */
      float p[2][FUSED_LANES];
      const float *x0 = x + s0 * d, *x1 = x + (s0 + 1 < ns ? s0 + 1 : s0) * d;
#pragma omp simd
      for (int t = 0; t < FUSED_LANES; t++) p[0][t] = p[1][t] = 0.0f;
      for (int64_t l = 0; l < d; l++) {
        const float a0 = x0[l], a1 = x1[l], *ql = QT + l * ld + r;
#pragma omp simd
        for (int t = 0; t < FUSED_LANES; t++) p[0][t] += a0 * ql[t];
#pragma omp simd
        for (int t = 0; t < FUSED_LANES; t++) p[1][t] += a1 * ql[t];
      }
      for (int e = 0; e < 2 && s0 + e < ns; e++) {
        const int s = s0 + e;
        float *ps = p[e];
        uint32_t keep;
        if (Mout) {
          mask_put_word(Mout + s * mw, r, take, mask_bits(ps, FUSED_LANES) & valid);
#pragma omp simd
          for (int t = 0; t < FUSED_LANES; t++) ps[t] = ps[t] < 0.0f ? 0.0f : ps[t];
          keep = valid;
        } else {
          const uint32_t *row = Min + s * mw + (r >> 5);
          keep = row[0] >> b;
          if (b && b + take > 32) keep |= row[1] << (32 - b); /* neurons of the next word */
          keep &= valid;
        }
        f32_bits *u = (f32_bits *)ps;
#pragma omp simd
        for (int t = 0; t < FUSED_LANES; t++) u[t] &= 0u - (uint32_t)((keep & pow2[t]) != 0);
        for (int64_t c = 0; c < k; c++) {
          const float *a = AT + c * ld + r;
#pragma omp simd
          for (int t = 0; t < FUSED_LANES / 2; t++)
            acc[s][c][t] += ps[t] * a[t] + ps[t + 16] * a[t + 16];
        }
      }
    }
  }
  for (int s = 0; s < ns; s++)
    for (int64_t c = 0; c < k; c++) S[s * k + c] = lane_sum(acc[s][c]);
}

/* out (n, k) = alpha (S0 + S1) with S0, S1 the sums of fused_half over the halves [0, m/2) and
 * [m/2, m): F = m^-1/2 relu(X W^T) A with M written (Mout), or J V = m^-1/2 (M o X V^T) A (Min).
 * Samples go in groups of FUSED_GROUP, split among threads whole. */
static void fused_forward_jvp(sgn_dims dm, const float *X, const float *QT, const float *AT,
                              int64_t ld, const uint32_t *Min, uint32_t *Mout, float alpha,
                              float *out) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mw = SGN_MASK_WORDS(m), h = m / 2;
  const int64_t groups = (n + FUSED_GROUP - 1) / FUSED_GROUP;
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)m > PAR_MIN)
  for (int64_t gi = 0; gi < groups; gi++) {
    const int64_t i0 = gi * FUSED_GROUP;
    const int ns = (int)(n - i0 < FUSED_GROUP ? n - i0 : FUSED_GROUP);
    const uint32_t *mi = Min ? Min + i0 * mw : NULL;
    uint32_t *mo = Mout ? Mout + i0 * mw : NULL;
    float S0[FUSED_GROUP * FUSED_MAX_K], S1[FUSED_GROUP * FUSED_MAX_K];
    fused_half(d, k, ns, X + i0 * d, QT, AT, ld, 0, h, mi, mo, mw, S0);
    fused_half(d, k, ns, X + i0 * d, QT, AT, ld, h, m - h, mi, mo, mw, S1);
    for (int s = 0; s < ns; s++) {
      if (mo && m % 32) mo[s * mw + mw - 1] &= (1u << (m % 32)) - 1u; /* padding bits stay 0 */
      for (int64_t c = 0; c < k; c++)
        out[(i0 + s) * k + c] = alpha * S0[s * k + c] + alpha * S1[s * k + c];
    }
  }
}

/* forward (Mout) or J V (Min) by fused_forward_jvp, with Q (W or V) and A transposed first */
static void fused_products(cpu_ctx *c, sgn_dims dm, const float *X, const float *Q, const float *A,
                           float *work, const uint32_t *Min, uint32_t *Mout, float alpha,
                           float *out) {
  const int64_t ld = fused_ld(dm.m);
  float *QT = fused_buf(c, dm, work);
  if (!QT) return; /* the sticky error is set */
  float *AT = QT + dm.d * ld;
  fused_transpose(dm.m, dm.d, Q, ld, QT);
  fused_transpose(dm.m, dm.k, A, ld, AT);
  fused_forward_jvp(dm, X, QT, AT, ld, Min, Mout, alpha, out);
}

/* Rows [r0, r0 + T) of out = J^T Gv, r0 a multiple of 32: out[r,l] = alpha sum_i b_ir M_ir x_il,
 * b_ir = sum_c Gv[i,c] A[r,c], summed over samples in pairs (i, i + 1) in order: a neuron's row
 * depends on its own values only (a mirrored neuron with negated A gets exactly the negated row),
 * not on the tiles or threads. The sums (d, Tp) and the tile of A transposed (k, Tp) share one
 * L1-sized buffer. */
FUSED_CLONES
static void fused_vjp_tile(sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                           const float *Gv, int64_t r0, int64_t T, float alpha, sgn_precision prec,
                           float *out) {
  const int64_t n = dm.n, d = dm.d, k = dm.k, mw = SGN_MASK_WORDS(dm.m);
  const int64_t words = (T + 31) / 32, Tp = words * 32;
  const int round = sgn_precision_dropped_bits(prec) != 0;
  float buf[VJP_TILE_FLOATS];
  float *acc = buf, *at = buf + d * Tp;
  memset(acc, 0, (size_t)(d * Tp) * sizeof(float));
  for (int64_t c = 0; c < k; c++)
    for (int64_t t = 0; t < Tp; t++) at[c * Tp + t] = t < T ? A[(r0 + t) * k + c] : 0.0f;
  for (int64_t i = 0; i < n; i += 2) {
    /* samples i and i + 1 (past n: x = g = 0, so b = 0), both added to acc at once */
    float xs[2][FUSED_MAX_D], gs[2][FUSED_MAX_K];
    const int two = i + 1 < n;
    for (int64_t l = 0; l < d; l++) {
      xs[0][l] = X[i * d + l];
      xs[1][l] = two ? X[(i + 1) * d + l] : 0.0f;
    }
    for (int64_t c = 0; c < k; c++) {
      gs[0][c] = Gv[i * k + c];
      gs[1][c] = two ? Gv[(i + 1) * k + c] : 0.0f;
    }
    const uint32_t *row0 = M + i * mw + (r0 >> 5), *row1 = two ? row0 + mw : row0;
    for (int64_t q = 0; q < words; q++) {
      /* b[e][t] = sum_c g_c A[r0 + 32 q + t, c] M_{i+e, r0 + 32 q + t} */
      float b[2][32];
#pragma omp simd
      for (int t = 0; t < 32; t++) b[0][t] = b[1][t] = 0.0f;
      for (int64_t c = 0; c < k; c++) {
        const float g0 = gs[0][c], g1 = gs[1][c], *a = at + c * Tp + q * 32;
#pragma omp simd
        for (int t = 0; t < 32; t++) b[0][t] += g0 * a[t];
#pragma omp simd
        for (int t = 0; t < 32; t++) b[1][t] += g1 * a[t];
      }
      const uint32_t keep0 = row0[q], keep1 = row1[q];
      f32_bits *u0 = (f32_bits *)b[0], *u1 = (f32_bits *)b[1];
#pragma omp simd
      for (int t = 0; t < 32; t++) {
        u0[t] &= 0u - (uint32_t)((keep0 & pow2[t]) != 0);
        u1[t] &= 0u - (uint32_t)((keep1 & pow2[t]) != 0);
      }
      if (round) /* the product precision's rounding of B (odd: mirrored neurons stay negated) */
        for (int t = 0; t < 32; t++) {
          b[0][t] = sgn_round_precision(b[0][t], prec);
          b[1][t] = sgn_round_precision(b[1][t], prec);
        }
      for (int64_t l = 0; l < d; l++) {
        const float x0 = xs[0][l], x1 = xs[1][l];
        float *al = acc + l * Tp + q * 32;
#pragma omp simd
        for (int t = 0; t < 32; t++) al[t] += x0 * b[0][t] + x1 * b[1][t];
      }
    }
  }
  for (int64_t t = 0; t < T; t++)
    for (int64_t l = 0; l < d; l++) out[(r0 + t) * d + l] = alpha * acc[l * Tp + t];
}

/* out = J^T Gv (m, d) by tiles of neurons: as wide as VJP_TILE_FLOATS allows, at least 8 tiles
 * when m allows, for the threads to share; B rounded per prec (X comes rounded). */
static void fused_vjp(sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                      const float *Gv, float alpha, sgn_precision prec, float *out) {
  const int64_t m = dm.m;
  const int64_t tmax = VJP_TILE_FLOATS / (dm.d + dm.k) / 32 * 32;
  int64_t T = (m / 8 + 31) / 32 * 32;
  T = T < 32 ? 32 : T > tmax ? tmax : T;
  const int64_t tiles = (m + T - 1) / T;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)dm.n * (size_t)m > PAR_MIN)
  for (int64_t j = 0; j < tiles; j++)
    fused_vjp_tile(dm, X, M, A, Gv, j * T, m - j * T < T ? m - j * T : T, alpha, prec, out);
}

/* ---- network products ---- */

/* P[:, :w0] = X Q[r0a:r0a+w0]^T, P[:, w0:] = X Q[r0b:r0b+w1]^T: chunk ch of X Q^T, P (n, w0 + w1).
 * X (n, d), Q (m, d) (W or a direction V). */
static void chunk_xqt(int64_t n, int64_t d, const float *X, const float *Q, sgn_chunk ch,
                      float *P) {
  const int64_t ld = ch.w0 + ch.w1;
  if (n == 0) return;
  if (ch.w0 > 0) /* P[:, :w0](n, w0) = X(n, d) Q[r0a:r0a+w0](w0, d)^T, ldc = w0 + w1 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)ch.w0, (int)d, 1.0f, X,
                (int)d, Q + ch.r0a * d, (int)d, 0.0f, P, (int)ld);
  /* P[:, w0:](n, w1) = X(n, d) Q[r0b:r0b+w1](w1, d)^T */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)ch.w1, (int)d, 1.0f, X, (int)d,
              Q + ch.r0b * d, (int)d, 0.0f, P + ch.w0, (int)ld);
}

/* Adds chunk ch's halves to the running sums, in row blocks (returns -1, with the sticky error
 * set, when the scratch cannot grow; else 0):
 * S0 = alpha P[:, :w0] A[r0a:r0a+w0], S1 = alpha P[:, w0:] A[r0b:r0b+w1]   (n, k);
 * first: out = S0, acc1 = S1, else out += S0, acc1 += S1; last: out += acc1.
 * acc1 (n, k) may be NULL for a single chunk (first and last): S1 goes through the scratch.
 * Both halves use the same GEMM shapes, so mirrored halves give exactly opposite sums. */
static int chunk_times_a(cpu_ctx *c, int64_t n, int64_t k, const float *P, sgn_chunk ch,
                         const float *A, float alpha, int first, int last, float *out,
                         float *acc1) {
  const int64_t ld = ch.w0 + ch.w1;
  const float beta = first ? 0.0f : 1.0f;
  if (n == 0 || k == 0) return 0;
  const int64_t nb = acc1 ? n : sgn_cpu_block_rows(c, n, (size_t)k, 1);
  if (nb == 0) return -1;
  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rows = (n - i0 < nb) ? n - i0 : nb;
    const size_t len = (size_t)rows * (size_t)k;
    float *o = out + i0 * k, *t = acc1 ? acc1 + i0 * k : c->scratch;
    const float *Pc = P + i0 * ld;
    if (ch.w0 > 0) /* o(rows, k) = alpha P[:, :w0](rows, w0) A[r0a:](w0, k) + beta o */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)k, (int)ch.w0, alpha,
                  Pc, (int)ld, A + ch.r0a * k, (int)k, beta, o, (int)k);
    else if (first) memset(o, 0, len * sizeof(float));
    /* t(rows, k) = alpha P[:, w0:](rows, w1) A[r0b:](w1, k) + beta t */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)k, (int)ch.w1, alpha,
                Pc + ch.w0, (int)ld, A + ch.r0b * k, (int)k, beta, t, (int)k);
    if (last) {
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
      for (size_t e = 0; e < len; e++) o[e] += t[e];
    }
  }
  return 0;
}

/* M = 1[X W^T > 0] (bits); F = m^-1/2 relu(X W^T) A (n, k). Small d and k: the fused kernel.
 * Else chunk by chunk and, within a chunk, in blocks of rows whose Z (about FWD_BLOCK_FLOATS) is
 * reused from the start of work, so it stays in cache from its GEMM to the one pass that reads
 * it: the pass packs the mask and, for k = 1, takes the dot of relu(z) with each half of A; for
 * k > 1 it applies the relu in place for the GEMM with A. Rows are split among threads whole:
 * results do not depend on the thread count. */
void sgn_cpu_forward(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                     float *work, uint32_t *M, float *F) {
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c) || round_operands(c, dm, &X, &W)) return;
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mw = SGN_MASK_WORDS(m);
  const float alpha = (float)(1.0 / sqrt((double)m));
  const int64_t nc = sgn_chunk_count(dm);
  if (fused(dm)) {
    fused_products(c, dm, X, W, A, work, NULL, M, alpha, F);
    return;
  }
  float *acc1 = nc > 1 ? work + n * 2 * sgn_chunk_half(dm) : NULL; /* (n, k) */
  for (int64_t j = 0; j < nc; j++) {
    const sgn_chunk ch = sgn_chunk_at(dm, j);
    const int64_t ld = ch.w0 + ch.w1;
    const int first = j == 0, last = j == nc - 1;
    int64_t nb = (int64_t)FWD_BLOCK_FLOATS / (ld > 0 ? ld : 1);
    nb = nb < 1 ? 1 : nb > n ? n : nb;
    for (int64_t i0 = 0; i0 < n; i0 += nb) {
      const int64_t rb = n - i0 < nb ? n - i0 : nb;
      float *Fb = F + i0 * k, *ab = acc1 ? acc1 + i0 * k : NULL;
      chunk_xqt(rb, d, X + i0 * d, W, ch, work); /* Z of rows [i0, i0 + rb) (rb, ld) */
#pragma omp parallel for schedule(static) if ((size_t)rb * (size_t)ld > PAR_MIN)
      for (int64_t ii = 0; ii < rb; ii++) {
        float *z = work + ii * ld;
        uint32_t *row = M + (i0 + ii) * mw;
        mask_put(row, ch.r0a, ch.w0, z);
        mask_put(row, ch.r0b, ch.w1, z + ch.w0);
        if (m % 32) row[mw - 1] &= (1u << (m % 32)) - 1u; /* padding bits stay 0 */
        if (k == 1) {
          /* the halves' running sums F (first half) and acc1 (second), as in chunk_times_a */
          const float s0 = alpha * relu_dot(ch.w0, z, A + ch.r0a);
          const float s1 = alpha * relu_dot(ch.w1, z + ch.w0, A + ch.r0b);
          const float f = first ? s0 : Fb[ii] + s0;
          const float g = first ? s1 : ab[ii] + s1;
          if (last) Fb[ii] = f + g;
          else Fb[ii] = f, ab[ii] = g;
        } else {
#pragma omp simd
          for (int64_t e = 0; e < ld; e++) z[e] = z[e] < 0.0f ? 0.0f : z[e]; /* NaN stays NaN */
        }
      }
      if (k != 1 && chunk_times_a(c, rb, k, work, ch, A, alpha, first, last, Fb, ab)) return;
    }
  }
}

/* out = J V: out[i,c] = m^-1/2 sum_r A[r,c] M_ir <V_r, x_i>   (n, k) */
void sgn_cpu_jvp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                 const float *V, float *work, float *out) {
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c) || round_operands(c, dm, &X, &V)) return;
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mw = SGN_MASK_WORDS(m);
  const float alpha = (float)(1.0 / sqrt((double)m));
  if (fused(dm)) {
    fused_products(c, dm, X, V, A, work, M, NULL, alpha, out);
    return;
  }
  const int64_t nc = sgn_chunk_count(dm);
  float *acc1 = nc > 1 ? work + n * 2 * sgn_chunk_half(dm) : NULL;
  for (int64_t j = 0; j < nc; j++) {
    const sgn_chunk ch = sgn_chunk_at(dm, j);
    const int64_t ld = ch.w0 + ch.w1;
    chunk_xqt(n, d, X, V, ch, work); /* P = X V^T chunk (n, ld) */
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)ld > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
      mask_keep(M + i * mw, ch.r0a, ch.w0, work + i * ld);
      mask_keep(M + i * mw, ch.r0b, ch.w1, work + i * ld + ch.w0);
    }
    if (chunk_times_a(c, n, k, work, ch, A, alpha, j == 0, j == nc - 1, out, acc1)) return;
  }
}

/* out = J^T Gv: out[r,:] = m^-1/2 sum_i (sum_c Gv[i,c] A[r,c]) M_ir x_i   (m, d) */
void sgn_cpu_vjp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                 const float *Gv, float *work, float *out) {
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c) || round_operands(c, dm, &X, NULL)) return;
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mw = SGN_MASK_WORDS(m);
  const float alpha = (float)(1.0 / sqrt((double)m));
  if (fused(dm)) {
    fused_vjp(dm, X, M, A, Gv, alpha, c->products, out);
    return;
  }
  if (n == 0) {
    memset(out, 0, (size_t)m * (size_t)d * sizeof(float));
    return;
  }
  const int64_t nc = sgn_chunk_count(dm);
  for (int64_t j = 0; j < nc; j++) {
    const sgn_chunk ch = sgn_chunk_at(dm, j);
    const int64_t ld = ch.w0 + ch.w1;
    const int64_t r0[2] = {ch.r0a, ch.r0b}, w[2] = {ch.w0, ch.w1}, col[2] = {0, ch.w0};
    for (int half = 0; half < 2; half++) {
      if (w[half] == 0) continue;
      /* B[:, col:col+w](n, w) = Gv(n, k) A[r0:r0+w](w, k)^T, ldc = w0 + w1 */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)w[half], (int)k, 1.0f, Gv,
                  (int)k, A + r0[half] * k, (int)k, 0.0f, work + col[half], (int)ld);
    }
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)ld > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
      mask_keep(M + i * mw, ch.r0a, ch.w0, work + i * ld);
      mask_keep(M + i * mw, ch.r0b, ch.w1, work + i * ld + ch.w0);
    }
    if (sgn_precision_dropped_bits(c->products)) /* B rounded as X was */
      round_copy((size_t)n * (size_t)ld, work, c->products, work);
    for (int half = 0; half < 2; half++) {
      if (w[half] == 0) continue;
      /* out[r0:r0+w](w, d) = alpha B[:, col:col+w]^T (w, n) X(n, d) */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)w[half], (int)d, (int)n, alpha,
                  work + col[half], (int)ld, X, (int)d, 0.0f, out + r0[half] * d, (int)d);
    }
  }
}
