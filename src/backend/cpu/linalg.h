/* linalg.h — dense float64 factorizations on the CPU (LAPACK), twins of the cuSOLVER calls, and
 * the separate-outputs Gram blocks' product.
 * Used by the CPU backend's sketch_r, cholesky, rtr_solve, r_inverse, rinv_apply and heads_symv
 * slots; see backend.h for contracts. */
#ifndef SGN_LINALG_H
#define SGN_LINALG_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Work bytes of sgn_sketch_r_cpu and sgn_sketch_gram_add_cpu for Y (n, s) at prec: one float64
 * panel (n, 512) for fp64; for the others a float32 tile (512, n) and, for tf32 and bf16, Y's
 * rounded panel (n, SGN_GRAM_F32_COLS). O(n) beyond R however wide Y is. */
size_t sgn_sketch_r_work_bytes_cpu(int64_t n, int64_t s, sgn_precision prec);
/* stop (NULL: none) is the flag of backend.h's set_stop: read between blocks, and when set the
 * function returns SGN_OP_STOPPED at once, its output unspecified. */

/* R (n, n) row-major upper with R^T R = Y Y^T + lambda I, Y (n, s) float row-major: Y Y^T by
 * sgn_sketch_gram_add_cpu at prec, then the blocked Cholesky. Returns 0, 1 if that
 * Gram + lambda I is not numerically positive definite, or SGN_OP_STOPPED. */
int sgn_sketch_r_cpu(int64_t n, int64_t s, const float *Y, double lambda, sgn_precision prec,
                     void *work, double *R, const sgn_stop_flag *stop);
/* R's upper triangle (+)= Y Y^T (first: =), Y (n, w) float of row stride ld, the part below the
 * diagonal untouched. fp64: DSYRK over float64 copies of 512-column panels. fp32, tf32, bf16
 * (precision.h): Y's entries rounded (tf32, bf16), then each panel of SGN_GRAM_F32_COLS columns
 * summed in float32 (SSYRK / SGEMM by tiles of rows) and added to R in float64. Calls on column
 * ranges starting at multiples of the panel width add what one call on the whole Y adds. work is
 * sgn_sketch_r_work_bytes_cpu(n, w, prec) bytes. The stop flag is read between panels and tiles.
 * Returns 0 or SGN_OP_STOPPED. */
int sgn_sketch_gram_add_cpu(int64_t n, int64_t w, const float *Y, int64_t ld, sgn_precision prec,
                            int first, void *work, double *R, const sgn_stop_flag *stop);
/* In place G (N, N) -> upper R with R^T R = G + lambda I, lower part zeroed: blocked
 * right-looking Cholesky on dpotrf, DTRSM and DSYRK/DGEMM (LAPACK's dpotrf to rounding).
 * Returns 0, the LAPACK info (> 0: the first column whose leading minor is not positive
 * definite, or the first non-finite diagonal entry + 1), or SGN_OP_STOPPED. */
int sgn_cholesky_cpu(int64_t N, double *G, double lambda, const sgn_stop_flag *stop);
/* The blocking of sgn_cholesky_cpu made explicit (tests run its blocks and bands at small N):
 * `block` columns per block column (< 1: one block, a plain dpotrf), the trailing updates in
 * bands of at most band_flops flops and at least band_min columns (sgn_syrk_lower_cpu). */
int sgn_cholesky_blocked_cpu(int64_t N, double *G, double lambda, int64_t block, double band_flops,
                             int64_t band_min, const sgn_stop_flag *stop);
/* C (n, n) column-major, lower triangle, ldc: C <- alpha op(A) op(A)^T + beta C, op(A) (n, k)
 * either A (n, k) column-major (trans 0) or A^T with A (k, n) column-major (trans 1), lda. One
 * DSYRK when n^2 k <= band_flops; else in column bands [c0, c0 + w) of C, each a DSYRK on its
 * diagonal block and a DGEMM on the rectangle below it, w as wide as keeps a band's 2 (n - c0) w k
 * flops within band_flops but at least band_min, the stop flag read before each band after the
 * first. Every entry gets the same k products summed by a kernel loop of the same kind, so the
 * banded update agrees with one DSYRK to rounding. Returns 0, or SGN_OP_STOPPED (some bands
 * updated, the rest not). */
int sgn_syrk_lower_cpu(int trans, int64_t n, int64_t k, double alpha, const double *A, int64_t lda,
                       double beta, double *C, int64_t ldc, double band_flops, int64_t band_min,
                       const sgn_stop_flag *stop);
/* In place V (N, k) row-major <- (R^T R)^-1 V (two dtrsm; two dtrsv when k == 1). */
void sgn_rtr_solve_cpu(int64_t N, int64_t k, const double *R, double *V);
/* In place R (N, N) row-major upper <- R^-1 (dtrtri). Returns 0, i + 1 when R[i, i] is zero
 * (LAPACK's info) or R^-1[i, i] came out non-finite, or SGN_OP_STOPPED (the flag read before
 * and after the dtrtri). */
int sgn_r_inverse_cpu(int64_t N, double *R, const sgn_stop_flag *stop);
/* In place V (N, k) row-major <- Rinv Rinv^T V, Rinv (N, N) row-major upper (R^-1): two dtrmv
 * (k == 1) or dtrmm. */
void sgn_rinv_apply_cpu(int64_t N, int64_t k, const double *Rinv, double *V);
/* ---- cpu/heads.c ---- */
/* out[i k + c] = sum_j G_c[i, j] in[j k + c] + lambda in[i k + c], G (k, n, n) float32
 * row-major, k symmetric blocks of which the upper triangle is read; in, out (n, k) float64,
 * apart in memory. The products and their sums in float32 (in rounded), lambda in added in
 * float64, the same bits whatever the threads. scratch: sgn_heads_symv_scratch_floats(n). */
size_t sgn_heads_symv_scratch_floats(int64_t n);
void sgn_heads_symv_cpu(int64_t n, int64_t k, const float *G, double lambda, const double *in,
                        float *scratch, double *out);
/* R (n, n) float64 upper triangle = the k blocks' mean, backend.h heads_mean (the float32 sum
 * over c in order, widened, times 1 / k); R's part below the diagonal is not written. */
void sgn_heads_mean_cpu(int64_t n, int64_t k, const float *G, double *R);

#endif
