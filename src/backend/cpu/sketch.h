/* sketch.h — sketches of the implicit Jacobian on the CPU (twins of cuda/sketch.cu).
 * The sketched matrix is the k = 1 block of J: row i is m^-1/2 M_i (x) x_i, M_i = 1[x_i W^T > 0],
 * so E[Y Y^T] = (X X^T) o (M M^T) / m. Y is (n, s) float row-major. M is the bit mask of
 * layout.h (n rows of SGN_MASK_WORDS(m) uint32 words); every sketch reads it through
 * cpu/mask.h. With dm.mc chunking the products, samples go in row blocks whose scratch
 * stays within the products' work (sgn_work_floats). stop (NULL: none) is backend.h's set_stop
 * flag: once it is set a sketch writes no further row block and returns (0), Y partly written. */
#ifndef SGN_SKETCH_H
#define SGN_SKETCH_H

#include "backend.h"

/* Scratch bytes the sketch of this kind needs. */
size_t sgn_sketch_work_bytes_cpu(sgn_dims dm, sgn_sketch kind, int64_t s);
/* The same for SGN_SKETCH_SRFT and SGN_SKETCH_COUNTSKETCH (cpu/sketch_fft.c). */
size_t sgn_sketch_fft_work_bytes_cpu(sgn_dims dm, sgn_sketch kind, int64_t s);

/* Tensor SRHT: with m' = next_pow2(m), d' = next_pow2(d), orthonormal H, random signs D1, D2
 * and s uniform index pairs (p_j, q_j):
 * Y[i, j] = sqrt(m' d' / (m s)) (H D1 M_i)[p_j] (H D2 x_i)[q_j].  Cost O(n (m' log m' + d' log d' + s)). */
void sgn_sketch_srht_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X, const uint32_t *M,
                         void *work, float *Y, const sgn_stop_flag *stop);

/* Gaussian Khatri-Rao reference: Y = (M Omega1) o (X Omega2) / sqrt(m s),
 * Omega1 (m, s), Omega2 (d, s) standard normal.  Cost O(n s (m + d)). */
void sgn_sketch_gaussian_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X,
                             const uint32_t *M, void *work, float *Y, const sgn_stop_flag *stop);

/* Tensor SRFT: the SRHT with the orthonormal real Fourier transform F of rft.h (FFTW r2c), no
 * padding; random signs D1, D2 and s uniform index pairs (p_j, q_j) in [m] x [d]:
 * Y[i, j] = sqrt(d / s) (F D1 M_i)[p_j] (F D2 x_i)[q_j], so E[Y Y^T] = G exactly (F orthonormal).
 * Cost O(n (m log m + d log d + s)). Returns 0, or SGN_E_RUNTIME (sgn_last_error() says why)
 * when FFTW cannot plan. */
int sgn_sketch_srft_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X, const uint32_t *M,
                        void *work, float *Y, const sgn_stop_flag *stop);

/* TensorSketch: with buckets h1: [m] -> [s], h2: [d] -> [s] and signs D1, D2,
 * a_i[b] = sum_{h1(r) = b} D1_r M_ir, b_i[b] = sum_{h2(t) = b} D2_t x_it and
 * Y[i, :] = m^-1/2 (a_i circularly convolved with b_i), by real FFTs of length s: the CountSketch
 * of M_i (x) x_i under the bucket (h1 + h2) mod s.  Cost O(n (m + d + s log s)). Returns 0, or
 * SGN_E_RUNTIME (sgn_last_error() says why) when FFTW cannot plan. */
int sgn_sketch_countsketch_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X,
                               const uint32_t *M, void *work, float *Y, const sgn_stop_flag *stop);

/* ---- the sketch's R without Y whole (cpu/sketch.c) ----
 * R (n, n) upper, R^T R = Y Y^T + lambda I for the Y above, made panel by panel: columns
 * [j0, j0 + panel) of Y for all samples (row blocks of samples sketched whole, the panel's
 * columns kept), added to Y Y^T at precision prec as sgn_sketch_r_cpu adds them, then Cholesky.
 * Memory O(n panel) beyond R; each panel sketches every sample again (s / panel passes). With
 * panel a multiple of 512 (fp64) or of SGN_GRAM_F32_COLS (the others) the sums are those of
 * sgn_sketch_r_cpu on the whole Y. */
#define SKETCH_PANEL_MIN 4096
/* Up to this many floats (256 MiB) Y is made whole, in one panel: a second pass over the samples
 * cost 10-30% of a gn-sketch step at n = 2048, m = 16384 (two panels of 4096). */
#define SKETCH_WHOLE_FLOATS ((int64_t)1 << 26)
/* Columns per panel: s when n s <= SKETCH_WHOLE_FLOATS, else max(n / 2, SKETCH_PANEL_MIN)
 * rounded up to SGN_GRAM_F32_COLS (precision.h; a multiple of 512), at most s. */
int64_t sgn_sketch_panel_cols_cpu(int64_t n, int64_t s);
size_t sgn_sketch_panels_work_bytes_cpu(sgn_dims dm, sgn_sketch kind, int64_t s, int64_t panel,
                                        sgn_precision prec);
/* Returns 0, 1 when Y Y^T + lambda I is not numerically positive definite, -1 when a sketch
 * fails (sgn_last_error says why), SGN_OP_STOPPED when stop ended it (read between row blocks,
 * DSYRK bands and Cholesky blocks). */
int sgn_sketch_panels_r_cpu(sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed, const float *X,
                            const uint32_t *M, double lambda, sgn_precision prec, int64_t panel,
                            void *work, double *R, const sgn_stop_flag *stop);

/* y (rows, N) = x (rows, N) with each row transformed by F of rft.h (inverse 0) or by
 * F^-1 = F^T (inverse 1); x and y may be the same. Plans per call: for tests and one-off use.
 * Returns 0, or -1 if FFTW or memory fails. */
int sgn_sketch_rft_cpu(int64_t rows, int64_t N, int inverse, const float *x, float *y);

#endif
