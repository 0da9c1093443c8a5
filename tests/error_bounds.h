/* error_bounds.h — the scales that rounding errors of the network products are bounded against.
 * A float32 sum of K terms, in any order or grouping (any BLAS kernel, thread count, chunking,
 * GPU reduction tree), is off by at most gamma(K) times the sum of the terms' absolute values
 * (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., section 3.1), with
 * gamma(K) = K u / (1 - K u). So each product is checked entry by entry against the same product
 * of absolute values, computed here in float64 from the host copies of the inputs:
 * never against the result itself, which cancellation can make arbitrarily small.
 * Each suite is its own program, so everything here is static inline. */
#ifndef SGN_TESTS_ERROR_BOUNDS_H
#define SGN_TESTS_ERROR_BOUNDS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "mask_check.h"
#include "precision.h"

#define U32 0x1p-24 /* unit roundoff of float32 */
#define U64 0x1p-53 /* of float64 */

static inline double gamma32(double K) { return K * U32 / (1.0 - K * U32); }
static inline double gamma64(double K) { return K * U64 / (1.0 - K * U64); }

/* Roundings on the longest path through each op, for the bounds of the suites' tables:
 * J v and f: the d products and adds of <v_r, x_i> (or z_ir), the m - 1 adds over neurons (the
 * two halves, their sum, chunk partial sums: any grouping), the rounded m^-1/2 and its multiply.
 * J^T g: the k - 1 adds of sum_c g_ic A_rc (A = +-1: exact products), the multiply by x_il, the
 * n - 1 adds over samples, the scale's two. The Gram: the d of <x_i, x_j> in float32, then
 * integer counts (exact below 2^24) and two float64 roundings (counted as one float32 one). */
static inline double jvp_roundings(sgn_dims dm) { return (double)(dm.d + dm.m + 2); }
static inline double vjp_roundings(sgn_dims dm) { return (double)(dm.n + dm.k + 2); }
static inline double gram_roundings(sgn_dims dm) { return (double)(dm.d + 1); }

/* The bounds, relative to the products of absolute values below: the counted roundings doubled
 * (C_ROUND), so one that a kernel adds (a pre-scaled A, an extra conversion) never decides. */
#define C_ROUND 2.0
#define BOUND_JVP(dm) (C_ROUND * gamma32(jvp_roundings(dm)))   /* J v and f */
#define BOUND_VJP(dm) (C_ROUND * gamma32(vjp_roundings(dm)))   /* J^T g */
#define BOUND_GRAM(dm) (C_ROUND * gamma32(gram_roundings(dm))) /* G and diag(G) */

/* The separate-outputs ops (backend.h gram_heads, heads_symv):
 * a gram_heads block is gram's value rounded once more, to float32: one rounding past the Gram's.
 * heads_symv: in rounded to float32 (u each), a float32 sum of the n products G_ij (float)in_j
 * (gamma(n) against sum |G_ij| |in_j| (1 + u)), then in float64 lambda in_i and one add
 * (gamma64(2) against |y_i| + |lambda in_i|): in all within gamma(n + 1) (Higham's
 * gamma(n) (1 + u) + u <= gamma(n + 1)) plus gamma64(3) of sum_j |G_ij in_j| + |lambda in_i|;
 * doubled (C_ROUND) that holds gamma64(3) many times over. Subnormal in or products (not in the
 * suites' data) are outside these relative bounds. */
static inline double heads_gram_roundings(sgn_dims dm) { return gram_roundings(dm) + 1.0; }
static inline double heads_symv_roundings(int64_t n) { return (double)n + 1.0; }
#define BOUND_HEADS_GRAM(dm) (C_ROUND * gamma32(heads_gram_roundings(dm))) /* a block's entries */
#define BOUND_HEADS_SYMV(n) (C_ROUND * gamma32(heads_symv_roundings(n)))   /* heads_symv */

/* The preconditioner as two products (backend.h r_inverse, rinv_apply):
 * r_inverse: the standard ways of inverting a triangular R in float64 (column by column, or
 * blocked as LAPACK's dtrtri; cuSOLVER's) leave a residual within c_N u |X| |R| on the left or
 * c_N u |R| |X| on the right (Higham, ch. 14, c_N ~ N; which side depends on the method). With
 * kappa = ||R||inf ||X||inf, the bounded side is within c_N u kappa of I in the max norm, the
 * other (R X - I = R (X R - I) X) within c_N u kappa^2, and either way every entry of X is within
 * c_N u kappa ||X||inf of R^-1's (X - R^-1 = (X R - I) R^-1 = R^-1 (R X - I)). c_N taken as N.
 * rinv_apply: two float64 sums of N products, 2 N roundings on any path, against
 * |Rinv| |Rinv|^T |V|. */
static inline double rinv_apply_roundings(int64_t N) { return 2.0 * (double)N; }
#define BOUND_R_INVERSE(N) (C_ROUND * gamma64((double)(N)))              /* times kappa^j */
#define BOUND_RINV_APPLY(N) (C_ROUND * gamma64(rinv_apply_roundings(N))) /* the products */

/* The sketch's Gram (backend.h sketch_gram) at precision p, entry by entry against
 * (|Y| |Y|^T)_ij (precision.h): fp64 is a float64 sum of s exact products (a float32 product
 * fits a double), gamma64(s). The others round Y's entries first (unit roundoff u: 0 for fp32,
 * 2^-11 tf32, 2^-8 bf16), which moves each product by at most (2u + u^2) |y_it y_jt|; sum each
 * panel of w = min(s, SGN_GRAM_F32_COLS) columns in float32, the products included (exact for
 * tf32 and bf16, one rounding for fp32), within gamma32(w) (1 + u)^2 of the rounded terms'
 * absolute sum; and add the ceil(s / w) panels in float64, within gamma64(panels + 1). Doubled
 * (C_ROUND): a GPU's tensor cores may accumulate with truncation (2 u32 an add), and any order or
 * split of the sums is covered. */
static inline double sketch_gram_bound(sgn_precision p, int64_t s) {
  if (p == SGN_PRECISION_FP64) return C_ROUND * gamma64((double)s);
  const double u = sgn_precision_unit_roundoff(p);
  const double w = (double)(s < SGN_GRAM_F32_COLS ? (s > 1 ? s : 1) : SGN_GRAM_F32_COLS);
  const double panels = ceil((double)s / w);
  return C_ROUND * (2 * u + u * u + gamma32(w) * (1 + u) * (1 + u) + gamma64(panels + 1));
}

/* The products at product precision p (backend.h set_product_precision), whose bound at float32
 * is `bound` (BOUND_JVP, BOUND_VJP), against the products of the unrounded operands, relative to
 * the same absolute products: rounding both factors of a term (x and w or v; x and J^T g's
 * masked coefficient b) moves it by at most (2u + u^2) of its absolute value (u:
 * sgn_precision_unit_roundoff, 2^-11 tf32, 2^-8 bf16); the float32 sums of the rounded terms,
 * their products exact, stay within `bound` of the rounded terms' absolute sum, at most (1 + u)^2
 * times the unrounded one. A mask bit that the rounding flips at z ~ 0 stays within for f as
 * for fp32 (relu is 1-Lipschitz; abs_jvp with M NULL). Against the products of the rounded
 * operands themselves the bound is `bound` alone. */
static inline double product_precision_bound(sgn_precision p, double bound) {
  const double u = sgn_precision_unit_roundoff(p);
  return 2 * u + u * u + bound * (1 + u) * (1 + u);
}

/* x (len) rounded per p, a copy (host memory, freed by the caller) */
static inline float *rounded_copy(size_t len, const float *x, sgn_precision p) {
  float *y = malloc((len ? len : 1) * sizeof(float));
  for (size_t i = 0; i < len; i++) y[i] = sgn_round_precision(x[i], p);
  return y;
}

/* |J| |V|: out[i,c] = m^-1/2 sum_r |A_rc| M_ir sum_l |x_il| |v_rl|   (n, k). With M NULL every
 * neuron counts: the scale of f = m^-1/2 relu(X W^T) A (V = W), whose error a mask bit flipped
 * at z ~ 0 stays within (relu is 1-Lipschitz). */
static inline void abs_jvp(sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                           const float *V, double *out) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k;
  const double s = 1.0 / sqrt((double)m);
  for (int64_t i = 0; i < n; i++) {
    for (int64_t c = 0; c < k; c++) out[i * k + c] = 0.0;
    for (int64_t r = 0; r < m; r++) {
      if (M && !mbit(M, m, i, r)) continue;
      double xv = 0.0;
      for (int64_t l = 0; l < d; l++) xv += fabs((double)X[i * d + l] * V[r * d + l]);
      for (int64_t c = 0; c < k; c++) out[i * k + c] += fabs((double)A[r * k + c]) * xv;
    }
    for (int64_t c = 0; c < k; c++) out[i * k + c] *= s;
  }
}

/* |J|^T |g|: out[r,l] = m^-1/2 sum_i M_ir (sum_c |g_ic| |A_rc|) |x_il|   (m, d) */
static inline void abs_vjp(sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                           const float *g, double *out) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k;
  const double s = 1.0 / sqrt((double)m);
  memset(out, 0, (size_t)(m * d) * sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < m; r++) {
      if (!mbit(M, m, i, r)) continue;
      double t = 0.0;
      for (int64_t c = 0; c < k; c++) t += fabs((double)g[i * k + c] * A[r * k + c]);
      for (int64_t l = 0; l < d; l++) out[r * d + l] += t * fabs((double)X[i * d + l]);
    }
  for (int64_t e = 0; e < m * d; e++) out[e] *= s;
}

/* |J| |J|^T's (n, n) block: out[i,j] = (sum_l |x_il| |x_jl|) (1/m) sum_r M_ir M_jr; every
 * (c, e) block of the full Gram has the same one (A = +-1). */
static inline void abs_gram(sgn_dims dm, const float *X, const uint32_t *M, double *out) {
  const int64_t n = dm.n, d = dm.d, mw = SGN_MASK_WORDS(dm.m);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      double xx = 0.0;
      int64_t both = 0;
      for (int64_t l = 0; l < d; l++) xx += fabs((double)X[i * d + l] * X[j * d + l]);
      for (int64_t w = 0; w < mw; w++) both += __builtin_popcount(M[i * mw + w] & M[j * mw + w]);
      out[i * n + j] = xx * (double)both / (double)dm.m;
    }
}

/* The worst entry of |got - want| / (tol scale): <= 1 when every entry is within its bound; an
 * entry whose scale is 0 must be exact (a difference there is INFINITY, as is a NaN). */
static inline double worst_ratio(size_t len, const double *got, const double *want,
                                 const double *scale, double tol) {
  double worst = 0.0;
  for (size_t i = 0; i < len; i++) {
    const double e = fabs(got[i] - want[i]);
    if (e == 0.0) continue;
    const double r = e / (tol * scale[i]);
    if (isnan(r)) return INFINITY;
    worst = fmax(worst, r);
  }
  return worst;
}

/* float32 arrays as float64 (host memory, freed by the caller) */
static inline double *as_double(size_t len, const float *x) {
  double *y = malloc((len ? len : 1) * sizeof(double));
  for (size_t i = 0; i < len; i++) y[i] = (double)x[i];
  return y;
}

/* worst_ratio for float32 got and want */
static inline double worst_ratio_f(size_t len, const float *got, const float *want,
                                   const double *scale, double tol) {
  double *g = as_double(len, got), *w = as_double(len, want);
  const double r = worst_ratio(len, g, w, scale, tol);
  free(g), free(w);
  return r;
}

/* worst_ratio for float32 got against float64 want */
static inline double worst_ratio_fd(size_t len, const float *got, const double *want,
                                    const double *scale, double tol) {
  double *g = as_double(len, got);
  const double r = worst_ratio(len, g, want, scale, tol);
  free(g);
  return r;
}

#endif
