/* gram.c (cpu) — the Gram matrix J J^T of the k = 1 block or of all outputs, and its diagonal
 * (twins of cuda_gram / cuda_gram_diag in cuda/backend.cu and their kernels in
 * cuda/products.cu): X X^T and M M^T by OpenBLAS row blocks, the upper triangle filled and then
 * mirrored, so G is exactly symmetric; M M^T holds integer counts, exact in float32. */
#include <cblas.h>

#include "cpu.h"
#include "mask.h"

/* gram's row blocks keep at least this many rows, growing the scratch if needed. */
#define GRAM_MIN_ROWS 64

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
void sgn_cpu_gram(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                  int full, float *work, double *G) {
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c)) return;
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
  const int64_t nb = sgn_cpu_block_rows(c, n, (size_t)(dm.k > 1 ? 3 * n + cwid : 2 * n),
                                        GRAM_MIN_ROWS);
  if (nb == 0) return;     /* the scratch could not grow: the sticky error is set */
  float *Kb = c->scratch;  /* (nb, n - i0) */
  float *Sb = Kb + nb * n; /* (nb, n - i0) plain M M^T */
  float *Se = dm.k > 1 ? Sb + nb * n : NULL; /* (nb, n - i0) signed */
  float *Ms = dm.k > 1 ? Se + nb * n : NULL; /* (nb, w) signed rows of M */

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
                Ms[ii * w + r] = Mc[ii * ldm + r] *
                                 (A[(r0 + r) * dm.k + ce] * A[(r0 + r) * dm.k + ee]);
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
