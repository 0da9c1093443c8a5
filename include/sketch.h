/* sketch.h — sketches of the implicit Jacobian on the CPU (twins of kernels/sketch.cu).
 * The sketched matrix is the k = 1 block of J: row i is m^-1/2 M_i (x) x_i, M_i = 1[Z_i > 0],
 * so E[Y Y^T] = (X X^T) o (M M^T) / m. Y is (n, s) float row-major. */
#ifndef SGN_SKETCH_H
#define SGN_SKETCH_H

#include "backend.h"

/* Scratch bytes the sketch of this kind needs. */
size_t sgn_sketch_work_bytes_cpu(sgn_dims dm, sgn_sketch kind, int64_t s);

/* Tensor SRHT: with m' = next_pow2(m), d' = next_pow2(d), orthonormal H, random signs D1, D2
 * and s uniform index pairs (p_j, q_j):
 * Y[i, j] = sqrt(m' d' / (m s)) (H D1 M_i)[p_j] (H D2 x_i)[q_j].  Cost O(n (m' log m' + d' log d' + s)). */
void sgn_sketch_srht_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X, const float *Z,
                         void *work, float *Y);

/* Gaussian Khatri-Rao reference: Y = (M Omega1) o (X Omega2) / sqrt(m s),
 * Omega1 (m, s), Omega2 (d, s) standard normal.  Cost O(n s (m + d)). */
void sgn_sketch_gaussian_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X,
                             const float *Z, void *work, float *Y);

#endif
