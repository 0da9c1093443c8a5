/* backend.c (cpu) — the CPU backend: the products in fused kernels that read the bit mask directly
 * when d and k are small (the method's regime), else on OpenBLAS sgemm (row-major); the sketches
 * and factorizations of cpu/sketch.c / cpu/linalg.c, and OpenMP loops for everything elementwise.
 * Neurons go in two halves [0, m/2) and [m/2, m) (through GEMMs also in chunks, backend.h) whose
 * partial sums run in separate accumulators added at the end, so a symmetric model (mirrored W
 * rows, negated A rows) gives f == 0 bit for bit. The mask is bit-packed (backend.h).
 * Reductions (dot, residual) use fixed blocks, so results do not depend on the thread count. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "hadamard.h"
#include "linalg.h"
#include "sketch.h"
#include "util.h"

/* Grow-only scratch allocated at open (floats): the unchunked products' second-half partial sums
 * and gram's row blocks are cut to fit it, so the hot paths allocate nothing. It grows only when
 * a single minimal block does not fit (k > 4M, or gram with n, m in the hundreds of thousands);
 * gram, a once-per-refresh setup op, may grow it to keep its blocks >= 64 rows. */
#define SCRATCH_FLOATS ((size_t)1 << 22)
#define GRAM_MIN_ROWS 64
/* Floats of Z a forward row block aims at (16 MB): it stays in cache (L3) between the GEMM
 * that writes it and the pass that reads it, in few enough blocks that the BLAS and OpenMP
 * threads do not take turns too often (smaller blocks were slower with 2 busy cores). */
#define FWD_BLOCK_FLOATS ((size_t)1 << 22)
/* Elementwise loops shorter than this stay on one thread. */
#define PAR_MIN 16384
/* Fixed number of blocks of the deterministic reductions. */
#define RED_BLOCKS 64

/* One backend serves one thread at a time (the scratch is shared by its ops), like a stream. */
typedef struct cpu_ctx {
  float *scratch; /* (cap) floats, 64-byte aligned */
  size_t cap;
} cpu_ctx;

/* ---- memory ---- */

static void *aligned_zalloc(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void *p = aligned_alloc(64, rounded);
  if (!p) {
    sgn_fail(SGN_E_RUNTIME, "cpu backend: out of memory allocating %zu bytes", bytes);
    return NULL;
  }
  memset(p, 0, rounded);
  return p;
}

static void *cpu_alloc(void *ctx, size_t bytes) {
  (void)ctx;
  return aligned_zalloc(bytes);
}

static void cpu_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void cpu_memcpy(void *ctx, void *dst, const void *src, size_t bytes) {
  (void)ctx;
  if (bytes) memcpy(dst, src, bytes);
}

static void cpu_sync(void *ctx) { (void)ctx; }

/* MemAvailable of /proc/meminfo (what can be allocated without swapping), else free pages. */
static size_t cpu_mem_available(void *ctx) {
  (void)ctx;
  FILE *f = fopen("/proc/meminfo", "r");
  char line[128];
  unsigned long long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
  if (f) fclose(f);
  if (kib) return (size_t)kib * 1024;
  long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : SIZE_MAX;
}

/* Makes the scratch hold at least `floats`. The ops have no error channel, and failing to get a
 * few megabytes leaves nothing sensible to compute, so failure here aborts with a message. */
static float *scratch_get(cpu_ctx *c, size_t floats) {
  if (floats > c->cap) {
    float *p = aligned_zalloc(floats * sizeof(float));
    if (!p) {
      fprintf(stderr, "sketchgn: cpu backend: out of memory growing scratch to %zu bytes\n",
              floats * sizeof(float));
      abort();
    }
    free(c->scratch);
    c->scratch = p;
    c->cap = floats;
  }
  return c->scratch;
}

/* Rows per block when each row needs per_row floats of scratch: as many as fit, at least
 * min_rows (growing the scratch if needed), at most n. */
static int64_t block_rows(cpu_ctx *c, int64_t n, size_t per_row, int64_t min_rows) {
  int64_t nb = (int64_t)(c->cap / per_row);
  if (nb < min_rows) nb = min_rows;
  if (nb > n) nb = n;
  if (nb < 1) nb = 1;
  scratch_get(c, (size_t)nb * per_row);
  return nb;
}

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
#define FUSED_MAX_D SGN_FUSED_MAX_D
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
 * it holds them (unchunked it is (n, m)), else the scratch. */
static float *fused_buf(cpu_ctx *c, sgn_dims dm, float *work) {
  const size_t need = (size_t)(dm.d + dm.k) * (size_t)fused_ld(dm.m);
  return sgn_work_floats(dm) >= need ? work : scratch_get(c, need);
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
  float *QT = fused_buf(c, dm, work), *AT = QT + dm.d * ld;
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
                           const float *Gv, int64_t r0, int64_t T, float alpha, float *out) {
  const int64_t n = dm.n, d = dm.d, k = dm.k, mw = SGN_MASK_WORDS(dm.m);
  const int64_t words = (T + 31) / 32, Tp = words * 32;
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
 * when m allows, for the threads to share. */
static void fused_vjp(sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                      const float *Gv, float alpha, float *out) {
  const int64_t m = dm.m;
  const int64_t tmax = VJP_TILE_FLOATS / (dm.d + dm.k) / 32 * 32;
  int64_t T = (m / 8 + 31) / 32 * 32;
  T = T < 32 ? 32 : T > tmax ? tmax : T;
  const int64_t tiles = (m + T - 1) / T;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)dm.n * (size_t)m > PAR_MIN)
  for (int64_t j = 0; j < tiles; j++)
    fused_vjp_tile(dm, X, M, A, Gv, j * T, m - j * T < T ? m - j * T : T, alpha, out);
}

/* ---- network products ---- */

/* P[:, :w0] = X Q[r0a:r0a+w0]^T, P[:, w0:] = X Q[r0b:r0b+w1]^T: chunk ch of X Q^T, P (n, w0 + w1).
 * X (n, d), Q (m, d) (W or a direction V). */
static void chunk_xqt(int64_t n, int64_t d, const float *X, const float *Q, sgn_chunk ch,
                      float *P) {
  const int64_t ld = ch.w0 + ch.w1;
  if (n == 0) return;
  if (ch.w0 > 0)
    /* P[:, :w0](n, w0) = X(n, d) Q[r0a:r0a+w0](w0, d)^T, ldc = w0 + w1 */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)ch.w0, (int)d, 1.0f, X,
                (int)d, Q + ch.r0a * d, (int)d, 0.0f, P, (int)ld);
  /* P[:, w0:](n, w1) = X(n, d) Q[r0b:r0b+w1](w1, d)^T */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)ch.w1, (int)d, 1.0f, X,
              (int)d, Q + ch.r0b * d, (int)d, 0.0f, P + ch.w0, (int)ld);
}

/* Adds chunk ch's halves to the running sums, in row blocks:
 * S0 = alpha P[:, :w0] A[r0a:r0a+w0], S1 = alpha P[:, w0:] A[r0b:r0b+w1]   (n, k);
 * first: out = S0, acc1 = S1, else out += S0, acc1 += S1; last: out += acc1.
 * acc1 (n, k) may be NULL for a single chunk (first and last): S1 goes through the scratch.
 * Both halves use the same GEMM shapes, so mirrored halves give exactly opposite sums. */
static void chunk_times_a(cpu_ctx *c, int64_t n, int64_t k, const float *P, sgn_chunk ch,
                          const float *A, float alpha, int first, int last, float *out,
                          float *acc1) {
  const int64_t ld = ch.w0 + ch.w1;
  const float beta = first ? 0.0f : 1.0f;
  if (n == 0 || k == 0) return;
  const int64_t nb = acc1 ? n : block_rows(c, n, (size_t)k, 1);
  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rows = (n - i0 < nb) ? n - i0 : nb;
    const size_t len = (size_t)rows * (size_t)k;
    float *o = out + i0 * k, *t = acc1 ? acc1 + i0 * k : c->scratch;
    const float *Pc = P + i0 * ld;
    if (ch.w0 > 0)
      /* o(rows, k) = alpha P[:, :w0](rows, w0) A[r0a:](w0, k) + beta o */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)k, (int)ch.w0, alpha,
                  Pc, (int)ld, A + ch.r0a * k, (int)k, beta, o, (int)k);
    else if (first)
      memset(o, 0, len * sizeof(float));
    /* t(rows, k) = alpha P[:, w0:](rows, w1) A[r0b:](w1, k) + beta t */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)k, (int)ch.w1, alpha,
                Pc + ch.w0, (int)ld, A + ch.r0b * k, (int)k, beta, t, (int)k);
    if (last) {
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
      for (size_t e = 0; e < len; e++) o[e] += t[e];
    }
  }
}

/* M = 1[X W^T > 0] (bits); F = m^-1/2 relu(X W^T) A (n, k). Small d and k: the fused kernel.
 * Else chunk by chunk and, within a chunk, in blocks of rows whose Z (about FWD_BLOCK_FLOATS) is
 * reused from the start of work, so it stays in cache from its GEMM to the one pass that reads
 * it: the pass packs the mask and, for k = 1, takes the dot of relu(z) with each half of A; for
 * k > 1 it applies the relu in place for the GEMM with A. Rows are split among threads whole:
 * results do not depend on the thread count. */
static void cpu_forward(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                        float *work, uint32_t *M, float *F) {
  cpu_ctx *c = ctx;
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
      if (k != 1) chunk_times_a(c, rb, k, work, ch, A, alpha, first, last, Fb, ab);
    }
  }
}

/* out = J V: out[i,c] = m^-1/2 sum_r A[r,c] M_ir <V_r, x_i>   (n, k) */
static void cpu_jvp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                    const float *V, float *work, float *out) {
  cpu_ctx *c = ctx;
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
    chunk_times_a(c, n, k, work, ch, A, alpha, j == 0, j == nc - 1, out, acc1);
  }
}

/* out = J^T Gv: out[r,:] = m^-1/2 sum_i (sum_c Gv[i,c] A[r,c]) M_ir x_i   (m, d) */
static void cpu_vjp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                    const float *Gv, float *work, float *out) {
  (void)ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mw = SGN_MASK_WORDS(m);
  const float alpha = (float)(1.0 / sqrt((double)m));
  if (fused(dm)) {
    fused_vjp(dm, X, M, A, Gv, alpha, out);
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
    for (int half = 0; half < 2; half++) {
      if (w[half] == 0) continue;
      /* out[r0:r0+w](w, d) = alpha B[:, col:col+w]^T (w, n) X(n, d) */
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)w[half], (int)d, (int)n, alpha,
                  work + col[half], (int)ld, X, (int)d, 0.0f, out + r0[half] * d, (int)d);
    }
  }
}

/* G (N, N) lower triangle <- upper triangle, in cache tiles */
static void mirror_upper(int64_t N, double *G) {
  const int64_t T = 64;
#pragma omp parallel for schedule(dynamic, 1) if (N > 256)
  for (int64_t bi = 0; bi < N; bi += T)
    for (int64_t bj = 0; bj <= bi; bj += T) {
      const int64_t ai = bi + T < N ? bi + T : N;
      for (int64_t a = bi; a < ai; a++) {
        const int64_t bend = bj + T < a ? bj + T : a;
        for (int64_t b = bj; b < bend; b++) G[a * N + b] = G[b * N + a];
      }
    }
}

/* G[(i,c),(j,e)] = <x_i,x_j> (1/m) sum_r A[r,c] A[r,e] M_ir M_jr; (n, n) block only if !full.
 * Row blocks [i0, i1) against columns [i0, n): K = X X^T and S = M diag(s) M^T fill the upper
 * triangle (samples j >= i), which is then mirrored, so G is exactly symmetric. Unchunked, the
 * whole mask is expanded to floats in work once; chunked, each neuron range [r0, r0 + cw) of
 * rows [i0, n) is expanded when needed and S summed over the ranges (exact: integer counts). */
static void cpu_gram(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                     int full, float *work, double *G) {
  cpu_ctx *c = ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
  const int64_t k = full ? dm.k : 1;
  const int64_t N = n * k;
  const double inv_m = 1.0 / (double)m;
  if (n == 0) return;
  const int chunked = sgn_chunked(dm);
  const int64_t cwid = chunked ? 2 * sgn_chunk_half(dm) : m; /* neurons per range */

  if (!chunked) {
    /* M as floats in work (n, m) */
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)m > PAR_MIN)
    for (int64_t i = 0; i < n; i++) sgn_mask_row_expand(M + i * mw, 0, m, NULL, work + i * m);
  }

  /* per row: K block, plain S block (n each), and with k > 1 a signed S block (n) and signed M
   * rows (cwid); the same rule for full and !full (dm.k decides) so the diagonal blocks match
   * the (n, n) Gram bit for bit. Tall blocks read the expanded mask fewer times. */
  const int64_t nb =
      block_rows(c, n, (size_t)(dm.k > 1 ? 3 * n + cwid : 2 * n), GRAM_MIN_ROWS);
  float *Kb = c->scratch;          /* (nb, n - i0) */
  float *Sb = Kb + nb * n;         /* (nb, n - i0) plain M M^T */
  float *Se = dm.k > 1 ? Sb + nb * n : NULL; /* (nb, n - i0) signed */
  float *Ms = dm.k > 1 ? Se + nb * n : NULL;  /* (nb, w) signed rows of M */

  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rb = (n - i0 < nb) ? n - i0 : nb;
    const int64_t cols = n - i0;
    /* Kb(rb, cols) = X[i0:i0+rb](rb, d) X[i0:n](cols, d)^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)cols, (int)d, 1.0f,
                X + i0 * d, (int)d, X + i0 * d, (int)d, 0.0f, Kb, (int)cols);
    for (int64_t ce = 0; ce < k; ce++) {
      for (int64_t ee = ce; ee < k; ee++) {
        float *S = ee == ce ? Sb : Se;
        for (int64_t r0 = 0; (ee != ce || ce == 0) && r0 < m; r0 += cwid) {
          /* S (+)= the neuron range [r0, r0 + w): Mc = M[i0:n, r0:r0+w] (cols, w), ld ldm */
          const int64_t w = m - r0 < cwid ? m - r0 : cwid;
          const float *Mc = work + i0 * m + r0;
          int64_t ldm = m;
          if (chunked) {
#pragma omp parallel for schedule(static) if ((size_t)cols * (size_t)w > PAR_MIN)
            for (int64_t jj = 0; jj < cols; jj++)
              sgn_mask_row_expand(M + (i0 + jj) * mw, r0, w, NULL, work + jj * w);
            Mc = work, ldm = w;
          }
          const float *L = Mc;
          int64_t ldl = ldm;
          if (ee != ce) {
            /* Ms = M[i0:i0+rb, r0:r0+w] diag(A[r0:,c] o A[r0:,e]) */
#pragma omp parallel for schedule(static) if ((size_t)rb * (size_t)w > PAR_MIN)
            for (int64_t ii = 0; ii < rb; ii++)
              for (int64_t r = 0; r < w; r++)
                Ms[ii * w + r] =
                    Mc[ii * ldm + r] * (A[(r0 + r) * dm.k + ce] * A[(r0 + r) * dm.k + ee]);
            L = Ms, ldl = w;
          }
          /* S(rb, cols) (+)= L(rb, w) Mc(cols, w)^T. When L is Mc's own first rb rows, the
           * (rb, rb) block on the diagonal is symmetric: SSYRK fills its upper triangle (all the
           * scatter reads) and SGEMM the columns after it, for half the flops there. */
          const float beta = r0 == 0 ? 0.0f : 1.0f;
          if (L == Mc) {
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)rb, (int)w, 1.0f, Mc,
                        (int)ldm, beta, S, (int)cols);
            if (cols > rb)
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)(cols - rb),
                          (int)w, 1.0f, Mc, (int)ldm, Mc + rb * ldm, (int)ldm, beta, S + rb,
                          (int)cols);
          } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)cols, (int)w, 1.0f,
                        L, (int)ldl, Mc, (int)ldm, beta, S, (int)cols);
          }
        }
        /* rows of sample i, samples j >= i: sets the whole upper triangle (mirrored below) */
#pragma omp parallel for schedule(dynamic, 4) if ((size_t)rb * (size_t)cols > PAR_MIN)
        for (int64_t ii = 0; ii < rb; ii++) {
          const int64_t i = i0 + ii;
          double *Gc = G + (i * k + ce) * N, *Ge = G + (i * k + ee) * N;
          for (int64_t j = i; j < n; j++) {
            const size_t b = (size_t)ii * (size_t)cols + (size_t)(j - i0);
            const double v = (double)Kb[b] * (double)S[b] * inv_m;
            Gc[j * k + ee] = v;
            Ge[j * k + ce] = v;
          }
        }
      }
    }
  }
  mirror_upper(N, G);
}

/* diag[i] = G_ii = ||x_i||^2 (1/m) sum_r M_ir   (n) */
static void cpu_gram_diag(void *ctx, sgn_dims dm, const float *X, const uint32_t *M,
                          double *diag) {
  (void)ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)(mw + d) > PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    double xx = 0.0;
    for (int64_t l = 0; l < d; l++) xx += (double)X[i * d + l] * (double)X[i * d + l];
    int64_t active = 0;
    for (int64_t w = 0; w < mw; w++) active += __builtin_popcount(M[i * mw + w]);
    diag[i] = xx * (double)active / (double)m;
  }
}

/* ---- sketches and factorizations: wired to cpu/sketch.c and cpu/linalg.c ---- */

static size_t cpu_sketch_work_bytes(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s) {
  (void)ctx;
  return sgn_sketch_work_bytes_cpu(dm, kind, s);
}

/* Y (n, s) = sketch of the k = 1 block of J */
static void cpu_sketch(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed,
                       const float *X, const uint32_t *M, void *work, float *Y) {
  (void)ctx;
  switch (kind) {
  case SGN_SKETCH_SRHT:
    sgn_sketch_srht_cpu(dm, s, seed, X, M, work, Y);
    return;
  case SGN_SKETCH_GAUSSIAN:
    sgn_sketch_gaussian_cpu(dm, s, seed, X, M, work, Y);
    return;
  case SGN_SKETCH_SRFT:
    sgn_sketch_srft_cpu(dm, s, seed, X, M, work, Y);
    return;
  case SGN_SKETCH_COUNTSKETCH:
    sgn_sketch_countsketch_cpu(dm, s, seed, X, M, work, Y);
    return;
  }
  /* an enum value this backend does not know: make the result loud rather than plausible */
  sgn_fail(SGN_E_INPUT, "cpu backend: unknown sketch kind %d", (int)kind);
  for (size_t e = 0; e < (size_t)dm.n * (size_t)s; e++) Y[e] = NAN;
}

static size_t cpu_sketch_r_work_bytes(void *ctx, int64_t n, int64_t s) {
  (void)ctx;
  return sgn_sketch_r_work_bytes_cpu(n, s);
}

static int cpu_sketch_r(void *ctx, int64_t n, int64_t s, const float *Y, double lambda, void *work,
                    double *R) {
  (void)ctx;
  return sgn_sketch_r_cpu(n, s, Y, lambda, work, R);
}

static size_t cpu_cholesky_work_bytes(void *ctx, int64_t N) {
  (void)ctx, (void)N;
  return 0; /* LAPACK's dpotrf needs none */
}

static int cpu_cholesky(void *ctx, int64_t N, double *G, double lambda, void *work) {
  (void)ctx, (void)work;
  return sgn_cholesky_cpu(N, G, lambda);
}

static void cpu_rtr_solve(void *ctx, int64_t N, int64_t k, const double *R, double *V) {
  (void)ctx;
  sgn_rtr_solve_cpu(N, k, R, V);
}

/* ---- plain kernels ---- */

static void cpu_gemm(void *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc) {
  (void)ctx;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              (int)M, (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, C, (int)ldc);
}

static void cpu_hadamard(void *ctx, float *x, int64_t rows, int64_t len) {
  (void)ctx;
  sgn_hadamard_cpu(x, rows, len);
}

/* ---- vector ops ---- */

/* sum_i x_i y_i (y == NULL: sum x_i^2) in RED_BLOCKS fixed blocks added in order */
static double block_dot(int64_t len, const double *x, const double *y) {
  double part[RED_BLOCKS];
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
  for (int b = 0; b < RED_BLOCKS; b++) {
    const int64_t lo = len * b / RED_BLOCKS, hi = len * (b + 1) / RED_BLOCKS;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = lo;
    for (; i + 4 <= hi; i += 4) {
      s0 += x[i] * (y ? y[i] : x[i]);
      s1 += x[i + 1] * (y ? y[i + 1] : x[i + 1]);
      s2 += x[i + 2] * (y ? y[i + 2] : x[i + 2]);
      s3 += x[i + 3] * (y ? y[i + 3] : x[i + 3]);
    }
    for (; i < hi; i++) s0 += x[i] * (y ? y[i] : x[i]);
    part[b] = (s0 + s1) + (s2 + s3);
  }
  double sum = 0.0;
  for (int b = 0; b < RED_BLOCKS; b++) sum += part[b];
  return sum;
}

/* <x, y> */
static double cpu_dot(void *ctx, int64_t len, const double *x, const double *y) {
  (void)ctx;
  return block_dot(len, x, y);
}

/* y += a x */
static void cpu_axpy(void *ctx, int64_t len, double a, const double *x, double *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] += a * x[i];
}

/* y = x + b y */
static void cpu_xpby(void *ctx, int64_t len, const double *x, double b, double *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = x[i] + b * y[i];
}

/* x *= a */
static void cpu_scal(void *ctx, int64_t len, double a, double *x) {
  (void)ctx;
  if (a == 0.0) { /* zeros, even where x held NaN or Inf (0 * NaN is NaN) */
    memset(x, 0, (size_t)len * sizeof(double));
    return;
  }
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) x[i] *= a;
}

/* y = (float) x */
static void cpu_d2f(void *ctx, int64_t len, const double *x, float *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = (float)x[i];
}

/* y = (double) x */
static void cpu_f2d(void *ctx, int64_t len, const float *x, double *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = (double)x[i];
}

/* r = F - Y in float64; returns sum_i r_i^2 */
static double cpu_residual(void *ctx, int64_t len, const float *F, const float *Y, double *r) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) r[i] = (double)F[i] - (double)Y[i];
  return block_dot(len, r, NULL);
}

/* y += a x (float) */
static void cpu_axpy_f(void *ctx, int64_t len, float a, const float *x, float *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] += a * x[i];
}

/* out[i, :] = src[idx[i], :]   out (b, cols) */
static void cpu_gather_rows(void *ctx, int64_t b, int64_t cols, const float *src,
                            const int64_t *idx, float *out) {
  (void)ctx;
#pragma omp parallel for schedule(static) if ((size_t)b * (size_t)cols > PAR_MIN)
  for (int64_t i = 0; i < b; i++)
    memcpy(out + i * cols, src + idx[i] * cols, (size_t)cols * sizeof(float));
}

/* mom = b1 mom + (1-b1) g; vel = b2 vel + (1-b2) g^2;
 * W -= lr (mom / (1-b1^t)) / (sqrt(vel / (1-b2^t)) + eps) */
static void cpu_adam(void *ctx, int64_t len, float *W, const float *g, float *mom, float *vel,
                     double lr, double b1, double b2, double eps, int64_t t) {
  (void)ctx;
  const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) {
    const double gi = g[i];
    const double mo = b1 * mom[i] + (1.0 - b1) * gi;
    const double ve = b2 * vel[i] + (1.0 - b2) * gi * gi;
    mom[i] = (float)mo;
    vel[i] = (float)ve;
    W[i] = (float)((double)W[i] - lr * (mo / bc1) / (sqrt(ve / bc2) + eps));
  }
}

/* ---- the table ---- */

static void cpu_destroy(void *ctx) {
  cpu_ctx *c = ctx;
  if (!c) return;
  free(c->scratch);
  free(c);
}

static const sgn_backend_ops cpu_ops = {
    .name = "cpu",
    /* memory */
    .alloc = cpu_alloc,       /* aligned_alloc(64) + memset 0 */
    .free = cpu_free,         /* free */
    .upload = cpu_memcpy,     /* host memory is backend memory: memcpy */
    .download = cpu_memcpy,   /* memcpy */
    .copy = cpu_memcpy,       /* memcpy */
    .sync = cpu_sync,         /* nothing is queued */
    .mem_available = cpu_mem_available, /* MemAvailable from /proc/meminfo */
    /* network products */
    .forward = cpu_forward,     /* mask bits of X W^T > 0; F = m^-1/2 relu(X W^T) A, by chunks */
    .jvp = cpu_jvp,             /* J V */
    .vjp = cpu_vjp,             /* J^T Gv */
    .gram = cpu_gram,           /* J J^T, (n, n) or (n k, n k), float64 */
    .gram_diag = cpu_gram_diag, /* diag of the (n, n) Gram */
    /* sketches */
    .sketch_work_bytes = cpu_sketch_work_bytes, /* cpu/sketch.c */
    .sketch = cpu_sketch,                       /* srht | gaussian | srft | countsketch */
    /* dense factorizations */
    .sketch_r_work_bytes = cpu_sketch_r_work_bytes, /* cpu/linalg.c */
    .sketch_r = cpu_sketch_r,                       /* DSYRK panels of Y, dpotrf -> R */
    .cholesky_work_bytes = cpu_cholesky_work_bytes, /* none */
    .cholesky = cpu_cholesky,           /* dpotrf, upper */
    .rtr_solve = cpu_rtr_solve,         /* two dtrsm */
    /* plain kernels */
    .gemm = cpu_gemm,                   /* cblas_sgemm */
    .hadamard = cpu_hadamard,           /* cpu/hadamard.c */
    /* vector ops */
    .dot = cpu_dot,               /* fixed-block sum, thread-count independent */
    .axpy = cpu_axpy,             /* y += a x */
    .xpby = cpu_xpby,             /* y = x + b y */
    .scal = cpu_scal,             /* x *= a */
    .d2f = cpu_d2f,               /* double -> float */
    .f2d = cpu_f2d,               /* float -> double */
    .residual = cpu_residual,     /* r = F - Y, returns ||r||^2 */
    .axpy_f = cpu_axpy_f,         /* float y += a x */
    .gather_rows = cpu_gather_rows, /* mini-batch rows */
    .adam = cpu_adam,             /* bias-corrected Adam */
    .error = NULL, /* a failed scratch allocation still aborts (scratch_get) */
    .destroy = cpu_destroy, /* frees the ctx; sgn_backend_close frees the handle */
};

sgn_backend *sgn_backend_cpu_open(void) {
  cpu_ctx *c = calloc(1, sizeof *c);
  sgn_backend *be = malloc(sizeof *be);
  if (c) c->scratch = aligned_zalloc(SCRATCH_FLOATS * sizeof(float));
  if (!c || !be || !c->scratch) {
    if (c) free(c->scratch);
    free(c);
    free(be);
    sgn_fail(SGN_E_RUNTIME, "cpu backend: out of memory opening the backend");
    return NULL;
  }
  c->cap = SCRATCH_FLOATS;
  be->ops = &cpu_ops;
  be->ctx = c;
  return be;
}
