/* hadamard.h — the fast Walsh-Hadamard transform (CPU twin of cuda/hadamard.cu). */
#ifndef SGN_HADAMARD_H
#define SGN_HADAMARD_H

#include <stdint.h>

/* Smallest power of two >= v (v >= 1). */
int64_t sgn_next_pow2(int64_t v);

/* In place, each row of x (rows, len) row-major: x_row <- H x_row, with H the orthonormal
 * Walsh-Hadamard matrix in Sylvester order, H[i][j] = (-1)^popcount(i & j) / sqrt(len).
 * len must be a power of two. */
void sgn_hadamard_cpu(float *x, int64_t rows, int64_t len);

#endif
