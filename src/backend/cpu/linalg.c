/* linalg.c (cpu) — the float64 factorizations on LAPACKE/CBLAS (twins of the cuBLAS / cuSOLVER
 * calls): the sketch's Gram at each precision (sgn_precision) and its R, Cholesky and triangular solves, R^-1 and its two triangular products
 * (the preconditioner as products). Row-major
 * symmetric or transposed operands are handed to LAPACK as their column-major transposes, so nothing is copied; R comes
 * out with a positive diagonal. The Cholesky and the sketch's Gram are blocked so the stop flag
 * (backend.h set_stop) is read every few 10^9 flops: one dpotrf or DSYRK on an n of 20 000 runs
 * for 15-60 s on two cores. */
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

/* ---- symmetric rank-k updates in bands, the stop flag read between them ---- */

/* Flops of level-3 work between two reads of the stop flag: 0.012 s at the 170 GFLOP/s of
 * dpotrf on this repository's 2-core Xeon (N = 8000), 0.1-0.2 s on one shared core (4e9 gave
 * 0.25-0.4 s there, test_interrupt.c). A band's DGEMM call and its packing of the rows below
 * cost 1 / (2 band) of its flops, nothing at 256 columns and more. */
#define STOP_FLOPS 2e9
/* Bands narrower than this are not cut (DGEMM's efficiency); the band then runs past STOP_FLOPS
 * only when n k > STOP_FLOPS / (2 BAND_MIN), n > 7 800 at k = 512 (the sketch's panels), past
 * 15 600 at k = 256 (the Cholesky's blocks). */
#define BAND_MIN 256

/* C's lower triangle <- alpha op(A) op(A)^T + beta C in bands (linalg.h) */
int sgn_syrk_lower_cpu(int trans, int64_t n, int64_t k, double alpha, const double *A, int64_t lda,
                       double beta, double *C, int64_t ldc, double band_flops, int64_t band_min,
                       const sgn_stop_flag *stop) {
  if (n == 0) return 0;
  const CBLAS_TRANSPOSE ta = trans ? CblasTrans : CblasNoTrans;
  for (int64_t c0 = 0; c0 < n;) {
    if (c0 > 0 && sgn_stop_requested(stop)) return SGN_OP_STOPPED;
    const int64_t rest = n - c0;
    int64_t w = (int64_t)(band_flops / (2.0 * (double)rest * (double)(k > 0 ? k : 1)));
    if (w < band_min) w = band_min;
    if (w < 1) w = 1;
    if (w >= rest || (double)rest * (double)rest * (double)k <= band_flops) w = rest;
    /* rows [c0, c0 + w) of op(A): A + c0 (trans 0) or columns c0.. of A (trans 1) */
    const double *Ab = A + (trans ? (size_t)c0 * (size_t)lda : (size_t)c0);
    double *Cb = C + (size_t)c0 * (size_t)ldc + (size_t)c0;
    cblas_dsyrk(CblasColMajor, CblasLower, ta, (int)w, (int)k, alpha, Ab, (int)lda, beta, Cb,
                (int)ldc);
    if (rest > w) { /* C[c0 + w : n, c0 : c0 + w] (+)= op(A)[c0 + w : n] op(A)[c0 : c0 + w]^T */
      const double *Ar = A + (trans ? (size_t)(c0 + w) * (size_t)lda : (size_t)(c0 + w));
      cblas_dgemm(CblasColMajor, ta, trans ? CblasNoTrans : CblasTrans, (int)(rest - w), (int)w,
                  (int)k, alpha, Ar, (int)lda, Ab, (int)lda, beta, Cb + w, (int)ldc);
    }
    c0 += w;
  }
  return 0;
}

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
 * converted to double in work, each cut into bands (sgn_syrk_lower_cpu) with the stop flag read
 * between bands and panels. Returns 0 or SGN_OP_STOPPED. */
static int gram_add_fp64(int64_t n, int64_t w, const float *Y, int64_t ld, int first, void *work,
                         double *R, const sgn_stop_flag *stop) {
  double *P = (double *)work;
  const int64_t pw = panel_cols(w);
  for (int64_t c0 = 0; c0 < w; c0 += pw) {
    if (c0 > 0 && sgn_stop_requested(stop)) return SGN_OP_STOPPED;
    const int64_t cw = w - c0 < pw ? w - c0 : pw;
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)cw > 16384)
    for (int64_t i = 0; i < n; i++) {
      const float *y = Y + (size_t)i * (size_t)ld + (size_t)c0;
      double *p = P + (size_t)i * (size_t)cw;
      for (int64_t t = 0; t < cw; t++) p[t] = (double)y[t];
    }
    /* R's upper triangle (+)= P P^T: row-major R is column-major R^T, whose lower triangle is
     * R's upper one, and row-major P (n, cw) is column-major P^T (cw, n), so the update is
     * C_lower (+)= (P^T)^T (P^T) */
    if (sgn_syrk_lower_cpu(1, n, cw, 1.0, P, cw, first && c0 == 0 ? 0.0 : 1.0, R, n, STOP_FLOPS,
                           BAND_MIN, stop))
      return SGN_OP_STOPPED;
  }
  return 0;
}

/* R's upper triangle (+)= Y Y^T in float32 sums over panels of f32_cols(w) columns (Y's entries
 * rounded per prec into work first, precision.h), each panel's sums added to R in float64. A
 * panel goes by tiles of GRAM_TILE_ROWS rows of the triangle: the tile's diagonal block by SSYRK,
 * the rest of its rows by SGEMM, into float32 C, then R += (double) C. The stop flag is read
 * before each panel and each tile (a tile is at most 2 GRAM_TILE_ROWS n SGN_GRAM_F32_COLS
 * float32 flops, 8.4e10 at n = 20 000). Returns 0 or SGN_OP_STOPPED. */
static int gram_add_f32(int64_t n, int64_t w, const float *Y, int64_t ld, sgn_precision prec,
                        int first, void *work, double *R, const sgn_stop_flag *stop) {
  const int64_t pw = f32_cols(w), TB = tile_rows(n);
  const int round = sgn_precision_dropped_bits(prec) != 0;
  float *P = (float *)work;                            /* (n, pw) rounded panel */
  float *C = P + (round ? (size_t)n * (size_t)pw : 0); /* (TB, n) tile of products */
  for (int64_t c0 = 0; c0 < w; c0 += pw) {
    if (sgn_stop_requested(stop)) return SGN_OP_STOPPED;
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
      if (i0 > 0 && sgn_stop_requested(stop)) return SGN_OP_STOPPED;
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
  return 0;
}

/* R's upper triangle (+)= Y Y^T for Y (n, w) of row stride ld, at precision prec (first: the
 * first panel overwrites R). The panels start at Y's column 0, so a sum of calls on column ranges
 * that start at multiples of the panel width (SKETCH_PANEL for fp64, SGN_GRAM_F32_COLS for the
 * others) adds the same sums in the same order as one call on the whole Y. Returns 0, or
 * SGN_OP_STOPPED when the stop flag ended it (R partly summed). */
int sgn_sketch_gram_add_cpu(int64_t n, int64_t w, const float *Y, int64_t ld, sgn_precision prec,
                            int first, void *work, double *R, const sgn_stop_flag *stop) {
  if (n == 0) return 0;
  if (sgn_stop_requested(stop)) return SGN_OP_STOPPED;
  if (w == 0 && first) memset(R, 0, (size_t)n * (size_t)n * sizeof(double));
  if (prec == SGN_PRECISION_FP64) return gram_add_fp64(n, w, Y, ld, first, work, R, stop);
  return gram_add_f32(n, w, Y, ld, prec, first, work, R, stop);
}

/* R^T R = Y Y^T + lambda I, R (n, n) upper. Y Y^T is summed over panels of Y's columns at
 * precision prec (sgn_sketch_gram_add_cpu), then factored in place by sgn_cholesky_cpu: the same
 * R as a QR of [Y^T; sqrt(lambda) I] of that Gram (the Cholesky factor with a positive diagonal
 * is unique), in about half its flops, at level-3 speed, and without an (s + n, n) copy. In
 * float64 the Gram's rounding is ~1e-16 of its norm, far below the damping's 1e-6 mean(G_ii).
 * Returns 1 when the Gram + lambda I is not numerically positive definite (a zero row without
 * damping, NaN in Y), SGN_OP_STOPPED when the stop flag ended it. */
int sgn_sketch_r_cpu(int64_t n, int64_t s, const float *Y, double lambda, sgn_precision prec,
                     void *work, double *R, const sgn_stop_flag *stop) {
  if (n == 0) return 0;
  if (sgn_sketch_gram_add_cpu(n, s, Y, s, prec, 1, work, R, stop)) return SGN_OP_STOPPED;
  const int rc = sgn_cholesky_cpu(n, R, lambda, stop);
  return rc > 0 ? 1 : rc;
}

/* Columns per block of the Cholesky: the diagonal block's dpotrf and the panel's DTRSM are
 * O(N CHOL_BLOCK^2), the trailing update (sgn_syrk_lower_cpu) O(N^2 CHOL_BLOCK). Timed against
 * one dpotrf of the whole matrix, in alternation on this repository's 2-core Xeon (shared at the
 * time), the best of 5-9 runs: at N = 4000 blocks of 128 to 512 all within 1% of dpotrf, at
 * N = 8000 256 and 512 within 4%. `bench --kernels` (the r_inverse row's cholesky column), two
 * threads at quiet moments, against the single dpotrf: 161-164 ms vs 171 ms at N = 4000,
 * 1129-1164 ms vs 1110-1116 ms at N = 8000 (150 GFLOP/s); one thread at N = 4000 354 vs 371 ms. */
#define CHOL_BLOCK 256

int sgn_cholesky_cpu(int64_t N, double *G, double lambda, const sgn_stop_flag *stop) {
  return sgn_cholesky_blocked_cpu(N, G, lambda, CHOL_BLOCK, STOP_FLOPS, BAND_MIN, stop);
}

/* G <- R upper, R^T R = G + lambda I, G (N, N) row-major symmetric. Row-major G is column-major
 * G^T = G; its column-major lower factor L (G = L L^T) read row-major is L^T = R, upper. L by
 * the right-looking blocked algorithm of LAPACK's dpotrf: per block column [j, j + b), dpotrf
 * on the diagonal block, DTRSM for the panel below it, then the trailing matrix minus the panel
 * times its transpose (sgn_syrk_lower_cpu), the stop flag read before each block and between
 * the update's bands. A failing diagonal block reports its column as LAPACK does (j + its
 * info). */
int sgn_cholesky_blocked_cpu(int64_t N, double *G, double lambda, int64_t block, double band_flops,
                             int64_t band_min, const sgn_stop_flag *stop) {
  if (sgn_stop_requested(stop)) return SGN_OP_STOPPED;
  for (int64_t i = 0; i < N; i++) G[(size_t)i * (size_t)N + (size_t)i] += lambda;
  const size_t ld = (size_t)(N > 1 ? N : 1);
  if (block < 1) block = N > 1 ? N : 1;
  for (int64_t j = 0; j < N; j += block) {
    if (j > 0 && sgn_stop_requested(stop)) return SGN_OP_STOPPED;
    const int64_t b = N - j < block ? N - j : block, rest = N - j - b;
    double *Ljj = G + (size_t)j * ld + (size_t)j; /* column-major (j, j) */
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', (lapack_int)b, Ljj,
                                          (lapack_int)ld);
    if (info != 0) return (int)(j + info);
    if (rest == 0) break;
    /* L[j + b :, j : j + b] <- A[j + b :, j : j + b] Ljj^-T */
    cblas_dtrsm(CblasColMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)rest, (int)b,
                1.0, Ljj, (int)ld, Ljj + b, (int)ld);
    /* A[j + b :, j + b :] -= L[j + b :, j : j + b] L[j + b :, j : j + b]^T, lower triangle */
    if (sgn_syrk_lower_cpu(0, rest, b, -1.0, Ljj + b, (int64_t)ld, 1.0,
                           Ljj + (size_t)b * ld + (size_t)b, (int64_t)ld, band_flops, band_min,
                           stop))
      return SGN_OP_STOPPED;
  }
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
 * L = R^T, and dtrtri's L^-1 = (R^-1)^T read row-major is R^-1 (upper; the zeros below stay).
 * One dtrtri, the stop flag read before and after it, not inside: the CPU applies R by its
 * solves (rinv_preferred 0), so R^-1 is made only when a checkpoint holds the other form. */
int sgn_r_inverse_cpu(int64_t N, double *R, const sgn_stop_flag *stop) {
  if (N == 0) return 0;
  if (sgn_stop_requested(stop)) return SGN_OP_STOPPED;
  lapack_int info = LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'L', 'N', (lapack_int)N, R,
                                        (lapack_int)N);
  if (info != 0) return (int)info;
  if (sgn_stop_requested(stop)) return SGN_OP_STOPPED; /* asked while it ran: dropped anyway */
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
