/* mask.c (cpu) — reading the bit mask (layout.h) back as floats: the one way the sketches see it
 * (twins of mask_expand_kernel in cuda/products.cu and mask_rows_kernel in cuda/sketch_fft.cu;
 * the Gram counts the bits instead, cpu/mask_counts.c). Packing the mask is forward's work, in
 * cpu/products.c. */
#include "mask.h"

/* U[ii, r] = sign[r] M_(i0+ii),r for r < m (sign NULL: 1), 0 for m <= r < ld */
void sgn_sketch_mask_rows_cpu(sgn_dims dm, const uint32_t *M, int64_t i0, int64_t rows,
                              const float *sign, int64_t ld, float *U) {
  const int64_t m = dm.m, mw = SGN_MASK_WORDS(m);
  for (int64_t ii = 0; ii < rows; ii++) {
    float *u = U + (size_t)ii * (size_t)ld;
    sgn_mask_row_expand(M + (size_t)(i0 + ii) * (size_t)mw, 0, m, sign, u);
    for (int64_t r = m; r < ld; r++) u[r] = 0.0f;
  }
}

/* float storage read as its bits: D's value or +0.0f by an AND, whatever D holds */
typedef uint32_t __attribute__((may_alias)) f32_bits;

/* Word by word, branch-free within a word: a bit selects all-ones or zero, ANDed with the bits
 * of D[r] or of 1.0f (a branch per bit, which the compiler emits for `bit ? D[r] : 0`, costs
 * ~6 ns on random masks) */
void sgn_mask_row_expand(const uint32_t *mrow, int64_t r0, int64_t w, const float *D, float *out) {
  const uint32_t one = 0x3f800000u; /* 1.0f */
  for (int64_t j = 0; j < w; j += 32) {
    const int64_t r = r0 + j, q = r >> 5;
    const int b = (int)(r & 31);
    const int take = (int)(w - j < 32 ? w - j : 32);
    uint32_t bits = mrow[q] >> b;
    if (b && b + take > 32) bits |= mrow[q + 1] << (32 - b); /* neurons of the next word */
    f32_bits *o = (f32_bits *)(out + j);
    if (D) {
      const f32_bits *dv = (const f32_bits *)(D + r);
      for (int t = 0; t < take; t++) o[t] = dv[t] & (0u - ((bits >> t) & 1u)); /* never -0 */
    } else {
      for (int t = 0; t < take; t++) o[t] = one & (0u - ((bits >> t) & 1u));
    }
  }
}
