/* backend.h — the one interface every backend implements: memory, the three Jacobian products,
 * the Gram matrix, the sketches, dense factorizations and the vector ops of CG.
 * Solvers are written once against it. All pointers passed to ops are backend (device) memory.
 * Network arrays are float32; CG vectors, Grams and factors are float64. */
#ifndef SGN_BACKEND_H
#define SGN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "sketchgn.h"

/* Problem sizes: n samples, d inputs, m hidden, k outputs. */
typedef struct sgn_dims {
  int64_t n, d, m, k;
} sgn_dims;

typedef struct sgn_backend_ops {
  const char *name; /* "cpu", "gpu" */

  /* ---- memory ---- */
  void *(*alloc)(void *ctx, size_t bytes); /* zero-filled; NULL on failure */
  void (*free)(void *ctx, void *p);
  void (*upload)(void *ctx, void *dst, const void *src, size_t bytes);   /* host -> backend */
  void (*download)(void *ctx, void *dst, const void *src, size_t bytes); /* backend -> host */
  void (*copy)(void *ctx, void *dst, const void *src, size_t bytes);     /* backend -> backend */
  void (*sync)(void *ctx); /* waits for queued work (for timing) */
  size_t (*mem_available)(void *ctx); /* bytes this backend can still allocate */

  /* ---- network products (float32) ----
   * X (n, d), W (m, d), A (m, k), Z (n, m) pre-activations X W^T (the mask is Z > 0),
   * F (n, k), V (m, d) a direction in weight space, Gv (n, k) a vector in output space.
   * work is (n, m) floats of scratch. Neurons are processed in two halves [0, m/2) and
   * [m/2, m) with separate GEMMs, so a symmetric model gives f == 0 exactly. */

  /* Z = X W^T; F = m^-1/2 relu(Z) A */
  void (*forward)(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                  float *Z, float *F);
  /* out = J V: out[i,c] = m^-1/2 sum_r A[r,c] 1[Z_ir>0] <V_r, x_i>   (n, k) */
  void (*jvp)(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A,
              const float *V, float *work, float *out);
  /* out = J^T Gv: out[r,:] = m^-1/2 sum_i (sum_c Gv[i,c] A[r,c]) 1[Z_ir>0] x_i   (m, d) */
  void (*vjp)(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A,
              const float *Gv, float *work, float *out);
  /* G = J J^T (n k, n k), rows ordered (i, c) -> i k + c:
   * G[(i,c),(j,e)] = <x_i,x_j> (1/m) sum_r A[r,c] A[r,e] M_ir M_jr.
   * With full == 0 only the k = 1 block (n, n): (X X^T) o (M M^T) / m, the exact diagonal
   * block for every output since A is +-1. work is (n, m) floats. */
  void (*gram)(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A, int full,
               float *work, double *G);
  /* diag[i] = G_ii = ||x_i||^2 (1/m) sum_r M_ir   (n) */
  void (*gram_diag)(void *ctx, sgn_dims dm, const float *X, const float *Z, double *diag);

  /* ---- sketches of J (k = 1 block: rows m^-1/2 M_i (x) x_i) ----
   * Y (n, s) float with E[Y Y^T] = (X X^T) o (M M^T) / m. seed picks the random signs, indices
   * or Gaussians (rng.h streams, independent of the model's A). work is sketch_work_bytes. */
  size_t (*sketch_work_bytes)(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s);
  void (*sketch)(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed,
                 const float *X, const float *Z, void *work, float *Y);

  /* ---- dense factorizations (float64) ---- */
  /* R (n, n) row-major upper triangular with R^T R = Y Y^T + lambda I: thin QR of
   * [Y^T; sqrt(lambda) I]. work is qr_work_bytes. Returns 0, or nonzero if R is singular. */
  size_t (*qr_work_bytes)(void *ctx, int64_t n, int64_t s);
  int (*qr_r)(void *ctx, int64_t n, int64_t s, const float *Y, double lambda, void *work,
              double *R);
  /* In place: G (N, N) row-major symmetric -> R upper with R^T R = G + lambda I (lower part
   * zeroed). Returns 0, or the LAPACK info (> 0) if G + lambda I is not positive definite. */
  int (*cholesky)(void *ctx, int64_t N, double *G, double lambda);
  /* In place: V (N, k) row-major <- (R^T R)^-1 V, two triangular solves, R (N, N) upper. */
  void (*rtr_solve)(void *ctx, int64_t N, int64_t k, const double *R, double *V);

  /* ---- vector ops (float64 unless named _f) ---- */
  double (*dot)(void *ctx, int64_t len, const double *x, const double *y);
  void (*axpy)(void *ctx, int64_t len, double a, const double *x, double *y); /* y += a x */
  void (*xpby)(void *ctx, int64_t len, const double *x, double b, double *y); /* y = x + b y */
  void (*scal)(void *ctx, int64_t len, double a, double *x);                  /* x *= a */
  void (*d2f)(void *ctx, int64_t len, const double *x, float *y);             /* y = (float) x */
  void (*f2d)(void *ctx, int64_t len, const float *x, double *y);             /* y = x */
  /* r = F - Y in float64; returns sum r^2 */
  double (*residual)(void *ctx, int64_t len, const float *F, const float *Y, double *r);
  void (*axpy_f)(void *ctx, int64_t len, float a, const float *x, float *y);  /* y += a x */
  /* out rows = src rows idx[0..b): out (b, cols), idx (b) int64 in backend memory */
  void (*gather_rows)(void *ctx, int64_t b, int64_t cols, const float *src, const int64_t *idx,
                      float *out);
  /* Adam update with bias correction at step t >= 1:
   * mom = b1 mom + (1-b1) g; vel = b2 vel + (1-b2) g^2;
   * W -= lr (mom / (1-b1^t)) / (sqrt(vel / (1-b2^t)) + eps) */
  void (*adam)(void *ctx, int64_t len, float *W, const float *g, float *mom, float *vel, double lr,
               double b1, double b2, double eps, int64_t t);

  void (*destroy)(void *ctx);
} sgn_backend_ops;

struct sgn_backend {
  const sgn_backend_ops *ops;
  void *ctx;
};

/* The CPU backend: OpenBLAS, LAPACK, the Hadamard transform of hadamard_cpu.c. */
sgn_backend *sgn_backend_cpu_open(void);

#endif
