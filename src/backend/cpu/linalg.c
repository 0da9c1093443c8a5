/* linalg.c (cpu) — the float64 factorizations on LAPACKE/CBLAS (twins of the cuBLAS / cuSOLVER
 * calls): the sketch's Gram at each precision (sgn_precision) and its R, Cholesky and triangular solves, R^-1 and its two triangular products
 * (the preconditioner as products), and the block-diagonal Gram's float32 product. Row-major
 * symmetric or transposed operands are handed to LAPACK as their column-major transposes, so nothing is copied; R comes
 * out with a positive diagonal. */
#include "linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "precision.h"

/* Columns of Y per DSYRK panel: the panel's float64 copy (n, SKETCH_PANEL) is the whole
 * workspace, so memory stays O(n) beyond R however wide the sketch is. */
#define SKETCH_PANEL 512
/* Rows of the Gram per float32 tile (fp32, tf32, bf16): the tile (GRAM_TILE_ROWS, n) of float32
 * products is their workspace, beside the rounded panel (tf32, bf16). */
#define GRAM_TILE_ROWS 512

static int64_t panel_cols(int64_t s) { return s < SKETCH_PANEL ? (s > 1 ? s : 1) : SKETCH_PANEL; }

/* Columns per float32 sum: SGN_GRAM_F32_COLS, fewer when Y has fewer (at least 1). */
static int64_t f32_cols(int64_t s) {
  return s < SGN_GRAM_F32_COLS ? (s > 1 ? s : 1) : SGN_GRAM_F32_COLS;
}

static int64_t tile_rows(int64_t n) {
  return n < GRAM_TILE_ROWS ? (n > 1 ? n : 1) : GRAM_TILE_ROWS;
}

size_t sgn_sketch_r_work_bytes_cpu(int64_t n, int64_t s, sgn_precision prec) {
  const size_t rows = (size_t)(n > 1 ? n : 1);
  if (prec == SGN_PRECISION_FP64) return rows * (size_t)panel_cols(s) * sizeof(double);
  const size_t rounded = sgn_precision_dropped_bits(prec) ? rows * (size_t)f32_cols(s) : 0;
  return (rounded + (size_t)tile_rows(n) * rows) * sizeof(float);
}

/* R's upper triangle (+)= Y Y^T in float64 sums: DSYRK over panels of SKETCH_PANEL columns
 * converted to double in work. */
static void gram_add_fp64(int64_t n, int64_t w, const float *Y, int64_t ld, int first, void *work,
                          double *R) {
  double *P = (double *)work;
  const int64_t pw = panel_cols(w);
  for (int64_t c0 = 0; c0 < w; c0 += pw) {
    const int64_t cw = w - c0 < pw ? w - c0 : pw;
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)cw > 16384)
    for (int64_t i = 0; i < n; i++) {
      const float *y = Y + (size_t)i * (size_t)ld + (size_t)c0;
      double *p = P + (size_t)i * (size_t)cw;
      for (int64_t t = 0; t < cw; t++) p[t] = (double)y[t];
    }
    /* R's upper triangle (+)= P P^T */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)n, (int)cw, 1.0, P, (int)cw,
                first && c0 == 0 ? 0.0 : 1.0, R, (int)n);
  }
}

/* R's upper triangle (+)= Y Y^T in float32 sums over panels of f32_cols(w) columns (Y's entries
 * rounded per prec into work first, precision.h), each panel's sums added to R in float64. A
 * panel goes by tiles of GRAM_TILE_ROWS rows of the triangle: the tile's diagonal block by SSYRK,
 * the rest of its rows by SGEMM, into float32 C, then R += (double) C. */
static void gram_add_f32(int64_t n, int64_t w, const float *Y, int64_t ld, sgn_precision prec,
                         int first, void *work, double *R) {
  const int64_t pw = f32_cols(w), TB = tile_rows(n);
  const int round = sgn_precision_dropped_bits(prec) != 0;
  float *P = (float *)work;                            /* (n, pw) rounded panel */
  float *C = P + (round ? (size_t)n * (size_t)pw : 0); /* (TB, n) tile of products */
  for (int64_t c0 = 0; c0 < w; c0 += pw) {
    const int64_t cw = w - c0 < pw ? w - c0 : pw;
    const float *A = Y + c0; /* the panel (n, cw), row stride lda */
    int64_t lda = ld;
    if (round) {
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)cw > 16384)
      for (int64_t i = 0; i < n; i++) {
        const float *y = Y + (size_t)i * (size_t)ld + (size_t)c0;
        float *p = P + (size_t)i * (size_t)cw;
        for (int64_t t = 0; t < cw; t++) p[t] = sgn_round_precision(y[t], prec);
      }
      A = P, lda = cw;
    }
    const int overwrite = first && c0 == 0;
    for (int64_t i0 = 0; i0 < n; i0 += TB) {
      const int64_t tb = n - i0 < TB ? n - i0 : TB, nc = n - i0;
      const float *Ai = A + (size_t)i0 * (size_t)lda;
      /* C (tb, nc), row stride nc: C[ii, jj] = <A_(i0+ii), A_(i0+jj)> for jj >= ii */
      cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)tb, (int)cw, 1.0f, Ai, (int)lda,
                  0.0f, C, (int)nc);
      if (nc > tb)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)tb, (int)(nc - tb), (int)cw, 1.0f,
                    Ai, (int)lda, Ai + (size_t)tb * (size_t)lda, (int)lda, 0.0f, C + tb, (int)nc);
#pragma omp parallel for schedule(static) if ((size_t)tb * (size_t)nc > 16384)
      for (int64_t ii = 0; ii < tb; ii++) {
        const float *c = C + (size_t)ii * (size_t)nc;
        double *r = R + (size_t)(i0 + ii) * (size_t)n + (size_t)i0;
        if (overwrite)
          for (int64_t jj = ii; jj < nc; jj++) r[jj] = (double)c[jj];
        else
          for (int64_t jj = ii; jj < nc; jj++) r[jj] += (double)c[jj];
      }
    }
  }
}

/* R's upper triangle (+)= Y Y^T for Y (n, w) of row stride ld, at precision prec (first: the
 * first panel overwrites R). The panels start at Y's column 0, so a sum of calls on column ranges
 * that start at multiples of the panel width (SKETCH_PANEL for fp64, SGN_GRAM_F32_COLS for the
 * others) adds the same sums in the same order as one call on the whole Y. */
void sgn_sketch_gram_add_cpu(int64_t n, int64_t w, const float *Y, int64_t ld, sgn_precision prec,
                             int first, void *work, double *R) {
  if (n == 0) return;
  if (w == 0 && first) memset(R, 0, (size_t)n * (size_t)n * sizeof(double));
  if (prec == SGN_PRECISION_FP64) gram_add_fp64(n, w, Y, ld, first, work, R);
  else gram_add_f32(n, w, Y, ld, prec, first, work, R);
}

/* R^T R = Y Y^T + lambda I, R (n, n) upper. Y Y^T is summed over panels of Y's columns at
 * precision prec (sgn_sketch_gram_add_cpu), then factored in place by sgn_cholesky_cpu: the same
 * R as a QR of [Y^T; sqrt(lambda) I] of that Gram (the Cholesky factor with a positive diagonal
 * is unique), in about half its flops, at level-3 speed, and without an (s + n, n) copy. In
 * float64 the Gram's rounding is ~1e-16 of its norm, far below the damping's 1e-6 mean(G_ii).
 * Returns 1 when the Gram + lambda I is not numerically positive definite (a zero row without
 * damping, NaN in Y). */
int sgn_sketch_r_cpu(int64_t n, int64_t s, const float *Y, double lambda, sgn_precision prec,
                     void *work, double *R) {
  if (n == 0) return 0;
  sgn_sketch_gram_add_cpu(n, s, Y, s, prec, 1, work, R);
  return sgn_cholesky_cpu(n, R, lambda) != 0;
}

/* G <- R upper, R^T R = G + lambda I, G (N, N) row-major symmetric */
int sgn_cholesky_cpu(int64_t N, double *G, double lambda) {
  for (int64_t i = 0; i < N; i++) G[(size_t)i * (size_t)N + (size_t)i] += lambda;
  /* Row-major G is column-major G^T = G; its column-major lower factor L (G = L L^T) read
   * row-major is L^T = R, upper. */
  lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)N, G,
                                        (lapack_int)(N > 1 ? N : 1));
  if (info != 0) return (int)info;
  /* OpenBLAS's dpotrf lets NaN through (NaN <= 0 is false): report it like LAPACK would. */
  for (int64_t i = 0; i < N; i++)
    if (!isfinite(G[(size_t)i * (size_t)N + (size_t)i])) return (int)(i + 1);
#pragma omp parallel for schedule(static)
  for (int64_t i = 1; i < N; i++) memset(G + (size_t)i * (size_t)N, 0, (size_t)i * sizeof(double));
  return 0;
}

/* V (N, k) <- (R^T R)^-1 V: solve R^T W = V, then R X = W, R (N, N) upper row-major. One
 * right-hand side goes to dtrsv: OpenBLAS's dtrsm with one column took 3.4-4.8x dtrsv's time
 * (scripts/prototypes/precond_apply.md: 5.0 vs 1.4 ms at N = 2000, 126 vs 37 ms at 8000). */
void sgn_rtr_solve_cpu(int64_t N, int64_t k, const double *R, double *V) {
  if (N == 0 || k == 0) return;
  if (k == 1) {
    cblas_dtrsv(CblasRowMajor, CblasUpper, CblasTrans, CblasNonUnit, (int)N, R, (int)N, V, 1);
    cblas_dtrsv(CblasRowMajor, CblasUpper, CblasNoTrans, CblasNonUnit, (int)N, R, (int)N, V, 1);
    return;
  }
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, (int)N, (int)k, 1.0,
              R, (int)N, V, (int)k);
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, (int)N, (int)k, 1.0,
              R, (int)N, V, (int)k);
}

/* R (N, N) upper row-major <- R^-1, in place: row-major upper R is the column-major lower
 * L = R^T, and dtrtri's L^-1 = (R^-1)^T read row-major is R^-1 (upper; the zeros below stay). */
int sgn_r_inverse_cpu(int64_t N, double *R) {
  if (N == 0) return 0;
  lapack_int info = LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)N, R,
                                        (lapack_int)N);
  if (info != 0) return (int)info;
  for (int64_t i = 0; i < N; i++)
    if (!isfinite(R[(size_t)i * (size_t)N + (size_t)i])) return (int)(i + 1);
  return 0;
}

/* V (N, k) <- Rinv Rinv^T V, Rinv (N, N) upper row-major (R^-1): two triangular products in
 * place, dtrmv for one column, dtrmm for more. */
void sgn_rinv_apply_cpu(int64_t N, int64_t k, const double *Rinv, double *V) {
  if (N == 0 || k == 0) return;
  if (k == 1) {
    cblas_dtrmv(CblasRowMajor, CblasUpper, CblasTrans, CblasNonUnit, (int)N, Rinv, (int)N, V, 1);
    cblas_dtrmv(CblasRowMajor, CblasUpper, CblasNoTrans, CblasNonUnit, (int)N, Rinv, (int)N, V, 1);
    return;
  }
  cblas_dtrmm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, (int)N, (int)k, 1.0,
              Rinv, (int)N, V, (int)k);
  cblas_dtrmm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, (int)N, (int)k, 1.0,
              Rinv, (int)N, V, (int)k);
}

/* out[i k + c] = sum_j G_c[i, j] in[j k + c] + lambda in[i k + c], G (k, n, n) float32: inf =
 * (float) in, then per head one SSYMV on the strided slices (stride k) into outf, then
 * out = outf + lambda in in float64. The blocks are full and exactly symmetric, so the triangle
 * read does not matter (the upper one). */
void sgn_heads_symv_cpu(int64_t n, int64_t k, const float *G, double lambda, const double *in,
                        float *inf, float *outf, double *out) {
  const int64_t N = n * k;
#pragma omp parallel for schedule(static) if (N > 16384)
  for (int64_t e = 0; e < N; e++) inf[e] = (float)in[e], outf[e] = 0.0f;
  for (int64_t c = 0; c < k && n > 0; c++)
    cblas_ssymv(CblasRowMajor, CblasUpper, (int)n, 1.0f, G + (size_t)c * (size_t)n * (size_t)n,
                (int)n, inf + c, (int)k, 0.0f, outf + c, (int)k);
#pragma omp parallel for schedule(static) if (N > 16384)
  for (int64_t e = 0; e < N; e++) out[e] = (double)outf[e] + lambda * in[e];
}
