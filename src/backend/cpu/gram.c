/* gram.c (cpu) — the Gram matrix J J^T of the k = 1 block or of all outputs, its diagonal, and
 * the k float32 blocks of a separate-outputs model (twins of cuda_gram / cuda_gram_diag /
 * cuda_gram_heads in cuda/backend.cu and their kernels in cuda/products.cu): X X^T by OpenBLAS
 * row blocks (or the caller's, for the blocks) and M M^T as exact integer counts
 * popcount(M_i & M_j) straight from the bit mask (cpu/mask_counts.c), the upper triangle filled
 * and then mirrored, so G is exactly symmetric. The counts do not depend on dm.mc: chunked and
 * unchunked Grams are the same bits, and the products' work buffer is not used. The stop flag
 * (backend.h set_stop) is read before each row block (and each output pair or head in it): a
 * stopped Gram returns with G partly written. */
#include <cblas.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "mask_counts.h"

/* gram's row blocks keep at least this many rows, growing the scratch if needed. */
#define GRAM_MIN_ROWS 64

/* G (N, N) lower triangle <- upper triangle, in cache tiles */
static void mirror_upper(int64_t N, double *G) {
  const int64_t tile = 64;
#pragma omp parallel for schedule(dynamic, 1) if (N > 256)
  for (int64_t bi = 0; bi < N; bi += tile)
    for (int64_t bj = 0; bj <= bi; bj += tile) {
      const int64_t ai = bi + tile < N ? bi + tile : N;
      for (int64_t a = bi; a < ai; a++) {
        const int64_t bend = bj + tile < a ? bj + tile : a;
        for (int64_t b = bj; b < bend; b++) G[a * N + b] = G[b * N + a];
      }
    }
}


/* P (mw words): bit r set when A[r,c] A[r,e] > 0, the neurons that add +1 to the (c, e) block
 * (A is +-1: the others add -1); the padding bits are 0 */
static void sign_pattern(sgn_dims dm, const float *A, int64_t c, int64_t e, uint32_t *P) {
  const int64_t m = dm.m, mw = SGN_MASK_WORDS(m);
  for (int64_t w = 0; w < mw; w++) {
    uint32_t bits = 0;
    for (int64_t t = 0; t < 32 && w * 32 + t < m; t++) {
      const int64_t r = w * 32 + t;
      bits |= (uint32_t)(A[r * dm.k + c] * A[r * dm.k + e] > 0.0f) << t;
    }
    P[w] = bits;
  }
}

/* G[(i,c),(j,e)] = <x_i,x_j> (1/m) sum_r A[r,c] A[r,e] M_ir M_jr; (n, n) block only if !full.
 * Row blocks [i0, i1) against columns [i0, n): K = X X^T by SGEMM and the counts
 * C_ij = popcount(M_i & M_j) fill the upper triangle (samples j >= i), which is then mirrored.
 * With k > 1 the block (c, e), c < e, sums A[r,c] A[r,e] = +-1 over the neurons both samples
 * have: 2 P_ij - C_ij with P_ij = popcount(M_i & S_ce & M_j), S_ce the neurons where A's columns
 * c and e agree. Counts are exact integers, as the float32 sums of the SSYRK path were (m < 2^24),
 * so G = K C (1/m) in float64 keeps that path's bits. */
void sgn_cpu_gram(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                  int full, float *work, double *G) {
  (void)work;
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c)) return;
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
  const int64_t k = full ? dm.k : 1;
  const int64_t N = n * k;
  const double inv_m = 1.0 / (double)m;
  if (n == 0) return;
  const sgn_popcount_kernel kern = sgn_popcount_kernel_pick();

  /* per row: K block and counts (n each), and with k > 1 signed counts (n) and the row masked by
   * a sign pattern (mw words); the same rule for full and !full (dm.k decides) so the diagonal
   * blocks match the (n, n) Gram bit for bit. Tall blocks read the mask fewer times. The
   * pattern (mw words) goes after the blocks. */
  const size_t per_row = dm.k > 1 ? (size_t)(3 * n + mw) : (size_t)(2 * n);
  const int64_t nb = sgn_cpu_block_rows(c, n, per_row, GRAM_MIN_ROWS);
  if (nb == 0) return; /* the scratch could not grow: the sticky error is set */
  if (dm.k > 1 && !sgn_cpu_scratch(c, (size_t)nb * per_row + (size_t)mw)) return;
  float *Kb = c->scratch;                                     /* (nb, n - i0) */
  int32_t *Cb = (int32_t *)(Kb + nb * n);                     /* (nb, n - i0) counts */
  int32_t *Ce = dm.k > 1 ? Cb + nb * n : NULL;                /* (nb, n - i0) signed */
  uint32_t *Ms = dm.k > 1 ? (uint32_t *)(Ce + nb * n) : NULL; /* (nb, mw) masked rows */
  uint32_t *P = dm.k > 1 ? Ms + nb * mw : NULL;               /* (mw) sign pattern */

  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    if (sgn_stop_requested(c->stop)) return;
    const int64_t rb = (n - i0 < nb) ? n - i0 : nb;
    const int64_t cols = n - i0;
    const uint32_t *Mi = M + i0 * mw; /* rows [i0, n) */
    /* Kb(rb, cols) = X[i0:i0+rb](rb, d) X[i0:n](cols, d)^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)cols, (int)d, 1.0f,
                X + i0 * d, (int)d, X + i0 * d, (int)d, 0.0f, Kb, (int)cols);
    /* Cb(rb, cols) = M[i0:i0+rb] M[i0:n]^T, the upper triangle */
    sgn_mask_counts(kern, mw, Mi, rb, Mi, cols, 1, Cb, cols);
    for (int64_t ce = 0; ce < k; ce++) {
      for (int64_t ee = ce; ee < k; ee++) {
        const int32_t *S = Cb;
        if (ee != ce) {
          if (sgn_stop_requested(c->stop)) return;
          /* Ce = 2 popcount(M_i & P & M_j) - Cb */
          sign_pattern(dm, A, ce, ee, P);
#pragma omp parallel for schedule(static) if ((size_t)rb * (size_t)mw > PAR_MIN)
          for (int64_t ii = 0; ii < rb; ii++)
            for (int64_t w = 0; w < mw; w++) Ms[ii * mw + w] = Mi[ii * mw + w] & P[w];
          sgn_mask_counts(kern, mw, Ms, rb, Mi, cols, 1, Ce, cols);
#pragma omp parallel for schedule(static) if ((size_t)rb * (size_t)cols > PAR_MIN)
          for (int64_t ii = 0; ii < rb; ii++)
            for (int64_t j = ii; j < cols; j++) {
              const size_t b = (size_t)ii * (size_t)cols + (size_t)j;
              Ce[b] = 2 * Ce[b] - Cb[b];
            }
          S = Ce;
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
void sgn_cpu_gram_diag(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, double *diag) {
  if (sgn_cpu_failed(ctx)) return;
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

/* ---- separate outputs: the k diagonal blocks of a block-diagonal Gram ---- */

/* Hc (rows, 2 hw) <- head c's words of mask rows M (rows, mw): words [c hw, (c + 1) hw) of the
 * first half, then the same of the second half (from word mw / 2), side by side, so the counts
 * read the head's rows contiguously */
static void head_words(int64_t rows, int64_t mw, const uint32_t *M, int64_t c, int64_t hw,
                       uint32_t *Hc) {
  const size_t bytes = (size_t)hw * sizeof(uint32_t);
#pragma omp parallel for schedule(static) if ((size_t)rows * (size_t)hw > PAR_MIN)
  for (int64_t i = 0; i < rows; i++) {
    const uint32_t *row = M + (size_t)i * (size_t)mw;
    uint32_t *h = Hc + (size_t)i * (size_t)(2 * hw);
    memcpy(h, row + c * hw, bytes);
    memcpy(h + hw, row + mw / 2 + c * hw, bytes);
  }
}

/* The first head before hd whose words of every mask row (M (n, mw)) are head hd's, or -1: its
 * block is then hd's, bit for bit (the same counts with the same K). At initialization every
 * head is head 0. Heads that differ do so within the first rows, so the search is short. */
static int64_t same_head(int64_t n, int64_t mw, const uint32_t *M, int64_t hw, int64_t hd) {
  const size_t bytes = (size_t)hw * sizeof(uint32_t);
  for (int64_t e = 0; e < hd; e++) {
    int64_t i = 0;
    for (; i < n; i++) {
      const uint32_t *row = M + (size_t)i * (size_t)mw, *half = row + mw / 2;
      if (memcmp(row + hd * hw, row + e * hw, bytes) ||
          memcmp(half + hd * hw, half + e * hw, bytes))
        break;
    }
    if (i == n) return e;
  }
  return -1;
}

/* G_c = (float)((X X^T) o (M_c M_c^T) / (m / k)) for every head c, G (k, n, n) float32, block c
 * at G + c n n. gram's row blocks with k = 1: per block [i0, i0 + rb) K = X X^T against columns
 * [i0, n), by one SGEMM shared by the k heads, or read from the caller's K (n, n); per head its
 * words of rows [i0, n) side by side (head_words) and the counts popcount(M_ci & M_cj) on them,
 * which fill block c's upper triangle (the part below the diagonal is not written). K, the
 * counts and the two float64 roundings are those of gram (full = 0) on the head's own
 * (m / k)-neuron model, so where the SGEMMs see the same row blocks the blocks are its values
 * rounded to float32. A head whose mask words equal an earlier head's (every head, at
 * initialization) gets a copy of that head's block instead. */
void sgn_cpu_gram_heads(void *ctx, sgn_dims dm, const float *X, const float *K, const uint32_t *M,
                        float *work, float *G) {
  (void)work;
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c)) return;
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k, mw = SGN_MASK_WORDS(m);
  if (k < 1 || m < 64 || m % 64 != 0 || (m / 64) % k != 0) {
    sgn_cpu_fail(c, "gram_heads needs m = 2 k h with h a multiple of 32 (m = %lld, k = %lld)",
                 (long long)m, (long long)k);
    return;
  }
  if (n == 0) return;
  const int64_t hw = mw / (2 * k), cw = 2 * hw; /* words per head and half; per head */
  const double inv_mh = 1.0 / (double)(m / k);
  const sgn_popcount_kernel kern = sgn_popcount_kernel_pick();

  /* the head's words of rows [i0, n) (n cw words), then per row: K block (n, unless the caller's
   * K serves) and counts (n) */
  if ((size_t)n > SIZE_MAX / sizeof(float) / (size_t)cw) {
    sgn_cpu_fail(c, "out of memory growing the scratch to %lld rows of %lld words", (long long)n,
                 (long long)cw);
    return;
  }
  const size_t fixed = (size_t)n * (size_t)cw;
  const size_t per_row = (K ? 1 : 2) * (size_t)n;
  const int64_t nb = sgn_cpu_block_rows_after(c, fixed, n, per_row, GRAM_MIN_ROWS);
  if (nb == 0) return;                   /* the scratch could not grow: the sticky error is set */
  uint32_t *Hc = (uint32_t *)c->scratch; /* (n - i0, cw) head words */
  float *Kb = K ? NULL : c->scratch + fixed;                        /* (nb, n - i0) */
  int32_t *Cb = (int32_t *)(c->scratch + fixed + (K ? 0 : nb * n)); /* (nb, n - i0) counts */

  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rb = (n - i0 < nb) ? n - i0 : nb;
    const int64_t cols = n - i0;
    /* K's rows [i0, i0 + rb) from column i0 on: the caller's (row stride n), or
     * Kb(rb, cols) = X[i0:i0+rb](rb, d) X[i0:n](cols, d)^T (row stride cols) */
    const float *Kr = K ? K + (size_t)i0 * (size_t)n + (size_t)i0 : Kb;
    const size_t ldk = K ? (size_t)n : (size_t)cols;
    if (!K)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)cols, (int)d, 1.0f,
                  X + i0 * d, (int)d, X + i0 * d, (int)d, 0.0f, Kb, (int)cols);
    for (int64_t hd = 0; hd < k; hd++) {
      if (sgn_stop_requested(c->stop)) return;
      if (same_head(n, mw, M, hw, hd) >= 0) continue; /* copied below */
      /* Cb(rb, cols) = M_c[i0:i0+rb] M_c[i0:n]^T, the upper triangle */
      head_words(cols, mw, M + i0 * mw, hd, hw, Hc);
      sgn_mask_counts(kern, cw, Hc, rb, Hc, cols, 1, Cb, cols);
      float *Gc = G + (size_t)hd * (size_t)n * (size_t)n;
#pragma omp parallel for schedule(dynamic, 4) if ((size_t)rb * (size_t)cols > PAR_MIN)
      for (int64_t ii = 0; ii < rb; ii++) {
        const int64_t i = i0 + ii;
        float *row = Gc + (size_t)i * (size_t)n;
        const float *krow = Kr + (size_t)ii * ldk;
        const int32_t *crow = Cb + (size_t)ii * (size_t)cols;
        for (int64_t j = i; j < n; j++)
          row[j] = (float)((double)krow[j - i0] * (double)crow[j - i0] * inv_mh);
      }
    }
  }
  for (int64_t hd = 1; hd < k; hd++) {
    const int64_t src = same_head(n, mw, M, hw, hd);
    if (src < 0) continue;
    const float *from = G + (size_t)src * (size_t)n * (size_t)n;
    float *to = G + (size_t)hd * (size_t)n * (size_t)n;
#pragma omp parallel for schedule(dynamic, 16) if ((size_t)n * (size_t)n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
      const size_t at = (size_t)i * (size_t)n + (size_t)i;
      memcpy(to + at, from + at, (size_t)(n - i) * sizeof(float));
    }
  }
}
