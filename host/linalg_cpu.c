/* linalg_cpu.c — float64 QR, Cholesky and triangular solves on LAPACKE/CBLAS (twins of the
 * cuSOLVER calls). Row-major symmetric or transposed operands are handed to LAPACK as their
 * column-major transposes, so nothing is copied; R comes out with a positive diagonal. */
#include "linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

/* dgeqrf's optimal workspace (doubles) for an (s + n, n) matrix; the query does not touch A. */
static size_t qr_lwork(int64_t n, int64_t s) {
  double query = 0.0, dummy = 0.0;
  lapack_int rows = (lapack_int)(s + n), cols = (lapack_int)n;
  lapack_int info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, rows, cols, &dummy,
                                        rows > 1 ? rows : 1, &dummy, &query, -1);
  size_t lwork = info == 0 ? (size_t)query : 0;
  size_t least = (size_t)(n > 1 ? n : 1) * 64; /* n nb with LAPACK's usual block size */
  return lwork > least ? lwork : least;
}

/* work: A (s + n, n) column-major | tau (n) | dgeqrf workspace, all double */
size_t sgn_qr_work_bytes_cpu(int64_t n, int64_t s) {
  size_t a = (size_t)(s + n) * (size_t)n;
  return (a + (size_t)n + qr_lwork(n, s)) * sizeof(double);
}

/* R^T R = Y Y^T + lambda I, R (n, n) upper: the R of A = [Y^T; sqrt(lambda) I] (s + n, n) = Q R */
/* Returns 1 for an exactly zero or non-finite diagonal (NaN/Inf in Y) or a dgeqrf failure. */
int sgn_qr_r_cpu(int64_t n, int64_t s, const float *Y, double lambda, void *work, double *R) {
  /* With lambda = 0 and s >= n the identity rows are zero: factor only the s rows of Y^T. */
  const int64_t rows = (lambda > 0.0 || s < n) ? s + n : s;
  const size_t lwork = qr_lwork(n, s);
  double *A = (double *)work;                  /* (rows, n) column-major, lda = rows */
  double *tau = A + (size_t)(s + n) * (size_t)n; /* (n) */
  double *wk = tau + n;                        /* (lwork) */
  const double sl = lambda > 0.0 ? sqrt(lambda) : 0.0;

  /* column i of A: row i of Y (the rows of Y^T), then sqrt(lambda) e_i */
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) {
    double *a = A + (size_t)i * (size_t)rows;
    const float *y = Y + (size_t)i * (size_t)s;
    for (int64_t t = 0; t < s; t++) a[t] = (double)y[t];
    for (int64_t t = s; t < rows; t++) a[t] = 0.0;
    if (rows > s) a[s + i] = sl;
  }
  lapack_int info = LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, (lapack_int)rows, (lapack_int)n, A,
                                        (lapack_int)rows, tau, wk, (lapack_int)lwork);
  if (info != 0) return 1;

  /* R[i, j] = A[i, j] (j >= i), each row flipped so R[i, i] > 0; R^T R is unchanged. */
  int singular = 0;
#pragma omp parallel for schedule(static) reduction(| : singular)
  for (int64_t i = 0; i < n; i++) {
    double *ri = R + (size_t)i * (size_t)n;
    double diag = A[(size_t)i * (size_t)rows + (size_t)i];
    double sign = diag < 0.0 ? -1.0 : 1.0;
    if (diag == 0.0 || !isfinite(diag)) singular = 1; /* NaN in Y lands here too */
    for (int64_t j = 0; j < i; j++) ri[j] = 0.0;
    for (int64_t j = i; j < n; j++) ri[j] = sign * A[(size_t)j * (size_t)rows + (size_t)i];
  }
  return singular;
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

/* V (N, k) <- (R^T R)^-1 V: solve R^T W = V, then R X = W, R (N, N) upper row-major */
void sgn_rtr_solve_cpu(int64_t N, int64_t k, const double *R, double *V) {
  if (N == 0 || k == 0) return;
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, (int)N, (int)k,
              1.0, R, (int)N, V, (int)k);
  cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, (int)N, (int)k,
              1.0, R, (int)N, V, (int)k);
}
