/* linalg.h — dense float64 factorizations on the CPU (LAPACK), twins of the cuSOLVER calls, and
 * the separate-outputs Gram blocks' product.
 * Used by the CPU backend's sketch_r, cholesky, rtr_solve, r_inverse, rinv_apply and heads_symv
 * slots; see backend.h for contracts. */
#ifndef SGN_LINALG_H
#define SGN_LINALG_H

#include <stddef.h>
#include <stdint.h>

#include "sketchgn.h"

/* Work bytes of sgn_sketch_r_cpu and sgn_sketch_gram_add_cpu for Y (n, s) at prec: one float64
 * panel (n, 512) for fp64; for the others a float32 tile (512, n) and, for tf32 and bf16, Y's
 * rounded panel (n, SGN_GRAM_F32_COLS). O(n) beyond R however wide Y is. */
size_t sgn_sketch_r_work_bytes_cpu(int64_t n, int64_t s, sgn_precision prec);
/* R (n, n) row-major upper with R^T R = Y Y^T + lambda I, Y (n, s) float row-major: Y Y^T by
 * sgn_sketch_gram_add_cpu at prec, then dpotrf. Returns 0, or 1 if that Gram + lambda I is not
 * numerically positive definite. */
int sgn_sketch_r_cpu(int64_t n, int64_t s, const float *Y, double lambda, sgn_precision prec,
                     void *work, double *R);
/* R's upper triangle (+)= Y Y^T (first: =), Y (n, w) float of row stride ld, the part below the
 * diagonal untouched. fp64: DSYRK over float64 copies of 512-column panels. fp32, tf32, bf16
 * (precision.h): Y's entries rounded (tf32, bf16), then each panel of SGN_GRAM_F32_COLS columns
 * summed in float32 (SSYRK / SGEMM) and added to R in float64. Calls on column ranges starting at
 * multiples of the panel width add what one call on the whole Y adds. */
void sgn_sketch_gram_add_cpu(int64_t n, int64_t w, const float *Y, int64_t ld, sgn_precision prec,
                             int first, void *work, double *R);
/* In place G (N, N) -> upper R with R^T R = G + lambda I, lower part zeroed (dpotrf).
 * Returns 0 or the LAPACK info (> 0: not positive definite). */
int sgn_cholesky_cpu(int64_t N, double *G, double lambda);
/* In place V (N, k) row-major <- (R^T R)^-1 V (two dtrsm; two dtrsv when k == 1). */
void sgn_rtr_solve_cpu(int64_t N, int64_t k, const double *R, double *V);
/* In place R (N, N) row-major upper <- R^-1 (dtrtri). Returns 0, or i + 1 when R[i, i] is zero
 * (LAPACK's info) or R^-1[i, i] came out non-finite. */
int sgn_r_inverse_cpu(int64_t N, double *R);
/* In place V (N, k) row-major <- Rinv Rinv^T V, Rinv (N, N) row-major upper (R^-1): two dtrmv
 * (k == 1) or dtrmm. */
void sgn_rinv_apply_cpu(int64_t N, int64_t k, const double *Rinv, double *V);
/* out[i k + c] = sum_j G_c[i, j] in[j k + c] + lambda in[i k + c], G (k, n, n) float32
 * row-major, k full symmetric blocks; in, out (n, k) float64, apart in memory. The products in
 * float32 (SSYMV per block on inf = (float) in, into outf), lambda in added in float64; inf and
 * outf are (n, k) float scratch. */
void sgn_heads_symv_cpu(int64_t n, int64_t k, const float *G, double lambda, const double *in,
                        float *inf, float *outf, double *out);

#endif
