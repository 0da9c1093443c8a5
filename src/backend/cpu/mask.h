/* mask.h — reading the bit mask of layout.h (n rows of SGN_MASK_WORDS(m) uint32 words) as
 * floats, for the CPU's sketches (cpu/mask.c; the Gram counts bits: cpu/mask_counts.h). */
#ifndef SGN_MASK_H
#define SGN_MASK_H

#include "layout.h"

/* out[j] = bit r0 + j of the mask row mrow ? (D ? D[r0 + j] : 1) : 0, for j < w: a masked
 * (and, with D, sign-flipped) stretch of one row, the one way the CPU reads the mask. */
void sgn_mask_row_expand(const uint32_t *mrow, int64_t r0, int64_t w, const float *D, float *out);

/* U (rows, ld) row-major, rows i0 .. i0 + rows - 1 of the bit mask M, signed:
 * U[ii, r] = sign[r] M_(i0+ii),r for r < m (sign NULL: 1), 0 for m <= r < ld.
 * The one place the CPU sketches read the mask (through sgn_mask_row_expand). Serial: callers
 * parallelize over rows. */
void sgn_sketch_mask_rows_cpu(sgn_dims dm, const uint32_t *M, int64_t i0, int64_t rows,
                              const float *sign, int64_t ld, float *U);

#endif
