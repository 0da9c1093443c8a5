/* mask_check.h — what the bit mask M = 1[X W^T > 0] must hold, for the suites that check a
 * backend's mask (each is its own program, so everything here is static inline). */
#ifndef SGN_TESTS_MASK_CHECK_H
#define SGN_TESTS_MASK_CHECK_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>

#include "backend.h"

/* bit r of mask row i */
static inline int mbit(const uint32_t *M, int64_t m, int64_t i, int64_t r) {
  return (int)((M[i * SGN_MASK_WORDS(m) + (r >> 5)] >> (r & 31)) & 1u);
}

/* Every bit of M (dm.n rows) is 1[x_i . w_r > 0] computed in float64, but where |z| <= edge
 * |x_i| |w_r| (within rounding of 0), and every padding bit past m is 0. what names the case. */
static inline void expect_mask_signs(const char *what, sgn_dims dm, const float *X, const float *W,
                                     const uint32_t *M, double edge) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
  for (int64_t i = 0; i < n; i++) {
    for (int64_t r = 0; r < m; r++) {
      double z = 0.0, xx = 0.0, ww = 0.0;
      for (int64_t l = 0; l < d; l++) {
        z += (double)X[i * d + l] * W[r * d + l];
        xx += (double)X[i * d + l] * X[i * d + l];
        ww += (double)W[r * d + l] * W[r * d + l];
      }
      if (fabs(z) <= edge * sqrt(xx * ww)) continue;
      cr_assert_eq(mbit(M, m, i, r), z > 0.0, "%s: mask bit (%ld, %ld) vs z = %g", what, (long)i,
                   (long)r, z);
    }
    if (m % 32)
      cr_assert_eq(M[i * mw + mw - 1] >> (m % 32), 0u, "%s: padding bits of row %ld", what,
                   (long)i);
  }
}

#endif
