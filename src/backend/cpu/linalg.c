/* linalg.c (cpu) — the float64 factorizations on LAPACKE/CBLAS (twins of the cuBLAS / cuSOLVER
 * calls): the sketch's R, Cholesky and triangular solves, R^-1 and its two triangular products
 * (the preconditioner as products), and the block-diagonal Gram's float32 product. Row-major
 * symmetric or transposed operands are handed to LAPACK as their column-major transposes, so nothing is copied; R comes
 * out with a positive diagonal. */
#include "linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

/* Columns of Y per DSYRK panel: the panel's float64 copy (n, SKETCH_PANEL) is the whole
 * workspace, so memory stays O(n) beyond R however wide the sketch is. */
#define SKETCH_PANEL 512

static int64_t panel_cols(int64_t s) { return s < SKETCH_PANEL ? (s > 1 ? s : 1) : SKETCH_PANEL; }

size_t sgn_sketch_r_work_bytes_cpu(int64_t n, int64_t s) {
  return (size_t)(n > 1 ? n : 1) * (size_t)panel_cols(s) * sizeof(double);
}

/* R's upper triangle (+)= Y Y^T for Y (n, w) of row stride ld: DSYRK over panels of
 * SKETCH_PANEL columns converted to double in work (first: the first panel overwrites R). The
 * panels start at Y's column 0, so a sum of calls on column ranges that start at multiples of
 * SKETCH_PANEL adds the same DSYRKs in the same order as one call on the whole Y. */
void sgn_sketch_gram_add_cpu(int64_t n, int64_t w, const float *Y, int64_t ld, int first,
                             void *work, double *R) {
  if (n == 0) return;
  if (w == 0 && first) memset(R, 0, (size_t)n * (size_t)n * sizeof(double));
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

/* R^T R = Y Y^T + lambda I, R (n, n) upper. Y Y^T is summed in float64 by DSYRK over panels of
 * Y's columns (converted to double), then factored in place by sgn_cholesky_cpu: the same R as
 * a QR of [Y^T; sqrt(lambda) I] (the Cholesky factor with a positive diagonal is unique), in
 * about half its flops, at level-3 speed, and without an (s + n, n) copy. Rounding in the Gram
 * is ~1e-16 of its norm, far below the damping's 1e-6 mean(G_ii). Returns 1 when Y Y^T +
 * lambda I is not numerically positive definite (a zero row without damping, NaN in Y). */
int sgn_sketch_r_cpu(int64_t n, int64_t s, const float *Y, double lambda, void *work, double *R) {
  if (n == 0) return 0;
  sgn_sketch_gram_add_cpu(n, s, Y, s, 1, work, R);
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
