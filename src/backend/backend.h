/* backend.h — the one interface every backend implements: memory, the three Jacobian products,
 * the Gram matrix, the sketches, dense factorizations and the vector ops of CG.
 * Solvers are written once against it. All pointers passed to ops are backend (device) memory.
 * Network arrays are float32; CG vectors, Grams and factors are float64 (the separate-outputs
 * Gram blocks float32). */
#ifndef SGN_BACKEND_H
#define SGN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "sketchgn.h"

#ifndef __cplusplus
#include <stdatomic.h>
#endif

struct sgn_pcg_ctl; /* pcg_control.h: PCG's scalars and stopping state */

/* ---- stopping a long op ----
 * The stop request a session lends its backend for the length of a step (set_stop below): the
 * session's interrupt flag, set by sgn_session_interrupt from a signal handler or another
 * thread. C sees it as the atomic_int it is; C++ (the CUDA plugin) as the plain int it is laid
 * out as, read with the same atomic builtin. */
#ifdef __cplusplus
typedef int sgn_stop_flag;
#else
typedef atomic_int sgn_stop_flag;
#endif

/* 1 when stop is set (NULL: never). A relaxed load: inside a step the flag only goes 0 -> 1. */
static inline int sgn_stop_requested(const sgn_stop_flag *stop) {
#ifdef __cplusplus
  return stop && __atomic_load_n(stop, __ATOMIC_RELAXED) != 0;
#else
  return stop && atomic_load_explicit(stop, memory_order_relaxed) != 0;
#endif
}

/* What cholesky, sketch_r, sketch_panels_r and r_inverse return when the stop flag ended them
 * early: no factorization failure (damping cannot help) and no backend failure (nothing sticky). */
#define SGN_OP_STOPPED (-2)

typedef struct sgn_backend_ops {
  const char *name; /* "cpu", "gpu" */

  /* ---- memory ---- */
  void *(*alloc)(void *ctx, size_t bytes); /* zero-filled; NULL on failure */
  void (*free)(void *ctx, void *p);
  void (*upload)(void *ctx, void *dst, const void *src, size_t bytes);   /* host -> backend */
  void (*download)(void *ctx, void *dst, const void *src, size_t bytes); /* backend -> host */
  void (*copy)(void *ctx, void *dst, const void *src, size_t bytes);     /* backend -> backend */
  void (*sync)(void *ctx);            /* waits for queued work (for timing) */
  size_t (*mem_available)(void *ctx); /* bytes this backend can still allocate */

  /* ---- network products (float32) ----
   * X (n, d), W (m, d), A (m, k), M the bit mask of X W^T > 0 (n rows of SGN_MASK_WORDS(m)
   * words, layout.h), F (n, k), V (m, d) a direction in weight space, Gv (n, k) a vector in output
   * space. work is sgn_work_floats(dm) floats of scratch. Neurons run in two halves [0, m/2)
   * and [m/2, m) whose partial sums go to separate accumulators added at the end, so a
   * symmetric model gives f == 0 exactly; a backend whose products go through (n, chunk)
   * buffers (GEMMs) runs them in chunks of dm.mc (layout.h), one that reads the mask directly
   * (the CPU's fused kernels at small d and k) may ignore dm.mc. */

  /* M = 1[X W^T > 0]; F = m^-1/2 relu(X W^T) A */
  void (*forward)(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                  float *work, uint32_t *M, float *F);
  /* out = J V: out[i,c] = m^-1/2 sum_r A[r,c] M_ir <V_r, x_i>   (n, k) */
  void (*jvp)(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
              const float *V, float *work, float *out);
  /* out = J^T Gv: out[r,:] = m^-1/2 sum_i (sum_c Gv[i,c] A[r,c]) M_ir x_i   (m, d) */
  void (*vjp)(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
              const float *Gv, float *work, float *out);
  /* G = J J^T (n k, n k), rows ordered (i, c) -> i k + c:
   * G[(i,c),(j,e)] = <x_i,x_j> (1/m) sum_r A[r,c] A[r,e] M_ir M_jr.
   * With full == 0 only the k = 1 block (n, n): (X X^T) o (M M^T) / m, the exact diagonal
   * block for every output since A is +-1. work is sgn_work_floats(dm) floats. The counts
   * M M^T are exact integers, so chunked and unchunked Grams agree bit for bit. */
  void (*gram)(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A, int full,
               float *work, double *G);
  /* diag[i] = G_ii = ||x_i||^2 (1/m) sum_r M_ir   (n) */
  void (*gram_diag)(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, double *diag);
  /* ---- separate outputs (sgn_model_separate: head c owns neurons [c h, (c + 1) h) and
   * [m/2 + c h, m/2 + (c + 1) h), h = m / (2 k), and A[r, c] = +-sqrt(k) on them, 0 elsewhere) ----
   * The Gram of such a model is block diagonal: block c is (X X^T) o (M_c M_c^T) / (m / k) with
   * M_c the head's mask bits. gram_heads writes the k blocks in float32: the blocks are
   * float32-derived (K is an SGEMM result, the counts are exact integers), so storing them in
   * float32 adds one rounding of 2^-24 relative and halves what the PCG reads per product.
   * K: X X^T (n, n) float32 row-major, both triangles, as the caller computed it once (the
   * session keeps it across steps, X never changes), or NULL to compute it here; G (k, n, n)
   * float32 row-major, block c at G + c n n,
   * G_c[i,j] = (float)((double)K_ij * (double)C_ij * (1.0 / (m / k))) for j >= i, with C the
   * head's exact counts popcount(M_ci & M_cj) (gram's roundings: with gram's K, block c is the
   * float32 rounding of gram (full = 0) of the head taken as a model of its own), the counts bit
   * for bit across backends. Only each block's upper triangle (row-major, j >= i, from K's upper
   * triangle) is written: heads_symv and heads_mean read no other. Needs h % 32 == 0 (whole mask
   * words per head and half); work as gram's. */
  void (*gram_heads)(void *ctx, sgn_dims dm, const float *X, const float *K, const uint32_t *M,
                     float *work, float *G);
  /* out[i k + c] = sum_j G_c[i, j] in[j k + c] + lambda in[i k + c]: the block-diagonal Gram
   * (gram_heads' G, k float32 blocks of (n, n), symmetric, of which the row-major upper triangle
   * is read) on float64 vectors in the (n, k) layout of the residual. The products in float32 (in rounded to float32, each block's SYMV summed in
   * float32), as the float32 J v / J^T g products of the other solvers' PCG; the sum widened to
   * float64 and the lambda term added in float64. */
  void (*heads_symv)(void *ctx, int64_t n, int64_t k, const float *G, double lambda,
                     const double *in, double *out);
  /* R[i, j] = (double)(G_0[i, j] + G_1[i, j] + ... + G_{k-1}[i, j]) * (1.0 / k) for j >= i: the
   * blocks' mean (what the k = 1 Gram of all their neurons is), summed in float32 in that order
   * and widened, into R (n, n) float64 row-major; R's part below the diagonal is not written
   * (cholesky reads the upper triangle). Entry by entry, so bit for bit across backends. */
  void (*heads_mean)(void *ctx, int64_t n, int64_t k, const float *G, double *R);

  /* ---- sketches of J (k = 1 block: rows m^-1/2 M_i (x) x_i) ----
   * Y (n, s) float with E[Y Y^T] = (X X^T) o (M M^T) / m. seed picks the random signs, indices
   * or Gaussians (rng.h streams, independent of the model's A). M is the bit mask. work is
   * sketch_work_bytes; samples go in row blocks whose scratch stays within the products' work
   * budget when dm.mc chunks them. */
  size_t (*sketch_work_bytes)(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s);
  void (*sketch)(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed, const float *X,
                 const uint32_t *M, void *work, float *Y);

  /* ---- dense factorizations (float64) ---- */
  /* The sketch's Gram at precision prec (sgn_precision, precision.h): G's upper triangle
   * (row-major; the part below the diagonal unspecified) = Y Y^T, Y (n, s) float row-major,
   * summed over panels of Y's columns added in float64: fp64 sums each panel in float64 (DSYRK);
   * fp32, tf32 and bf16 sum panels of SGN_GRAM_F32_COLS columns in float32, tf32 and bf16 after
   * rounding Y's entries (sgn_round_precision; exact products of the rounded values), so every
   * backend forms the same Gram up to the order of its float32 sums. work is
   * sketch_r_work_bytes(n, s, prec) (O(n): one panel, one tile of rows). Stopped (set_stop), it
   * returns with G partly summed. */
  size_t (*sketch_r_work_bytes)(void *ctx, int64_t n, int64_t s, sgn_precision prec);
  void (*sketch_gram)(void *ctx, int64_t n, int64_t s, const float *Y, sgn_precision prec,
                      void *work, double *G);
  /* R (n, n) row-major upper triangular with R^T R = sketch_gram's Y Y^T + lambda I (what a thin
   * QR of [Y^T; sqrt(lambda) I] gives for that Gram), by Cholesky. work as sketch_gram's.
   * Returns 0, a positive value if the Gram + lambda I is not numerically positive definite, or
   * SGN_OP_STOPPED (set_stop). */
  int (*sketch_r)(void *ctx, int64_t n, int64_t s, const float *Y, double lambda,
                  sgn_precision prec, void *work, double *R);
  /* Optional (NULL: callers write Y whole with sketch, then call sketch_r): sketch_r's R for
   * the Y that sketch(dm, kind, s, seed) would write, without Y whole: panels of Y's columns are
   * made (every sample sketched again per panel) and added to Y Y^T at precision prec one after
   * the other, so memory is O(n panel) (sketch_panels_work_bytes) beyond R. Returns as sketch_r
   * (SGN_OP_STOPPED included), or -1 when the sketch fails (the sticky error says why).
   * sketch_panels_work_bytes returns 0 where the backend would make Y in one panel anyway (Y
   * small): callers then write Y whole with sketch and call sketch_r, which also times the
   * sketch apart. */
  size_t (*sketch_panels_work_bytes)(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s,
                                     sgn_precision prec);
  int (*sketch_panels_r)(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed,
                         const float *X, const uint32_t *M, double lambda, sgn_precision prec,
                         void *work, double *R);
  /* In place: G (N, N) row-major symmetric -> R upper with R^T R = G + lambda I (lower part
   * zeroed). work is cholesky_work_bytes(N). Returns 0, the LAPACK info (> 0: the first column
   * whose leading minor is not positive definite) if G + lambda I is not positive definite, or
   * SGN_OP_STOPPED (set_stop). */
  size_t (*cholesky_work_bytes)(void *ctx, int64_t N);
  int (*cholesky)(void *ctx, int64_t N, double *G, double lambda, void *work);
  /* In place: V (N, k) row-major <- (R^T R)^-1 V, two triangular solves, R (N, N) upper. */
  void (*rtr_solve)(void *ctx, int64_t N, int64_t k, const double *R, double *V);
  /* ---- the preconditioner as two products (gn-gram, gn-sketch) ----
   * (R^T R)^-1 = R^-1 R^-T: with R^-1 formed once per preconditioner (r_inverse, N^3 / 3 flops
   * as many as the Cholesky), each PCG iteration applies it as two matrix-vector products
   * (rinv_apply) instead of two triangular solves (rtr_solve), both in float64.
   * rinv_preferred: the form this backend applies faster at (N, k), measured per backend (each
   * backend's table says with what numbers): 1 R^-1 and rinv_apply, 0 R and rtr_solve. */
  int (*rinv_preferred)(void *ctx, int64_t N, int64_t k);
  /* In place: R (N, N) row-major upper -> R^-1 (upper, the zeros below kept); run on R^-1 it
   * gives R back to rounding. work is r_inverse_work_bytes(N). Returns 0, a positive value when R
   * has a zero diagonal entry or R^-1 came out with a non-finite one, or SGN_OP_STOPPED
   * (set_stop). */
  size_t (*r_inverse_work_bytes)(void *ctx, int64_t N);
  int (*r_inverse)(void *ctx, int64_t N, double *R, void *work);
  /* In place: V (N, k) row-major <- Rinv Rinv^T V = (R^T R)^-1 V, Rinv (N, N) row-major r_inverse's
   * R^-1 (the zeros below its diagonal included). work is N k doubles. */
  void (*rinv_apply)(void *ctx, int64_t N, int64_t k, const double *Rinv, double *V, double *work);

  /* ---- plain kernels, for benchmarks and tests ---- */
  /* Row-major C (M, N) = op(A) op(B), float32, op = transpose when ta / tb (SGEMM). */
  void (*gemm)(void *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
               int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc);
  /* In place, x (rows, len) row-major, len a power of two: each row <- H row, the orthonormal
   * Walsh-Hadamard transform in Sylvester order (the sketches' transform; hadamard.h). */
  void (*hadamard)(void *ctx, float *x, int64_t rows, int64_t len);

  /* ---- vector ops (float64 unless named _f) ---- */
  double (*dot)(void *ctx, int64_t len, const double *x, const double *y);
  void (*axpy)(void *ctx, int64_t len, double a, const double *x, double *y); /* y += a x */
  void (*xpby)(void *ctx, int64_t len, const double *x, double b, double *y); /* y = x + b y */
  /* x *= a; a == 0 writes zeros, even over NaN or Inf */
  void (*scal)(void *ctx, int64_t len, double a, double *x);
  void (*d2f)(void *ctx, int64_t len, const double *x, float *y); /* y = (float) x */
  void (*f2d)(void *ctx, int64_t len, const float *x, double *y); /* y = x */
  /* r = F - Y in float64; returns sum r^2 */
  double (*residual)(void *ctx, int64_t len, const float *F, const float *Y, double *r);
  void (*axpy_f)(void *ctx, int64_t len, float a, const float *x, float *y); /* y += a x */
  /* out rows = src rows idx[0..b): out (b, cols), idx (b) int64 in backend memory */
  void (*gather_rows)(void *ctx, int64_t b, int64_t cols, const float *src, const int64_t *idx,
                      float *out);
  /* Adam update with bias correction at step t >= 1:
   * mom = b1 mom + (1-b1) g; vel = b2 vel + (1-b2) g^2;
   * W -= lr (mom / (1-b1^t)) / (sqrt(vel / (1-b2^t)) + eps) */
  void (*adam)(void *ctx, int64_t len, float *W, const float *g, float *mom, float *vel, double lr,
               double b1, double b2, double eps, int64_t t);

  /* ---- PCG with its scalars in backend memory (pcg.c; optional: all NULL, and PCG brings each
   * dot product to the host) ----
   * s is a sgn_pcg_ctl (pcg_control.h) in backend memory. Each iteration queues pcg_dot,
   * pcg_update, pcg_dot, pcg_control, pcg_dot, pcg_direction around the operator's and the
   * preconditioner's products, and nothing comes back to the host until pcg.c reads s after a
   * batch of at most pcg_queue iterations. Once s->done is set, pcg_update and pcg_direction
   * leave the vectors alone, so the iterations queued past the end change nothing. Each computes
   * what the host loop does with dot, axpy and xpby, with the same roundings. */
  /* *out = dot(x, y), the same sum as dot's, out in backend memory */
  void (*pcg_dot)(void *ctx, int64_t len, const double *x, const double *y, double *out);
  /* unless done or p.q breaks down: alpha = rz / pq; x += alpha p; r += -alpha q */
  void (*pcg_update)(void *ctx, int64_t len, const struct sgn_pcg_ctl *s, const double *p,
                     const double *q, double *x, double *r);
  /* sgn_pcg_control(s) (pcg_control.h) */
  void (*pcg_control)(void *ctx, struct sgn_pcg_ctl *s);
  /* unless done: p = z + (rz / rz_old) p */
  void (*pcg_direction)(void *ctx, int64_t len, const struct sgn_pcg_ctl *s, const double *z,
                        double *p);
  /* Most iterations to queue before reading s back: 1 where ops run as they are called (the CPU:
   * nothing to save, and an iteration queued past the end is a wasted product), up to
   * SGN_PCG_QUEUE where each read-back waits for a queue to drain. */
  int pcg_queue;
  /* Optional (NULL: ops are launched one by one): record the ops queued from graph_begin to
   * graph_end without running them, then replay them with graph_launch as often as needed. The
   * pointers and scalars the ops were called with are fixed in the recording. graph_begin
   * returns 0 (recording), 1 (declined: nothing recorded, launch the ops one by one; the CUDA
   * backend with SKETCHGN_CUDA_GRAPHS=0) or -1 (the sticky error set); graph_end returns the
   * recording, or NULL when the recording failed (the ops between did not run and the sticky
   * error says why). */
  int (*graph_begin)(void *ctx);
  void *(*graph_end)(void *ctx);
  void (*graph_launch)(void *ctx, void *graph);
  void (*graph_free)(void *ctx, void *graph);

  /* ---- stopping ----
   * set_stop: the flag the long ops watch from now on (NULL: none; the backend keeps the pointer,
   * the caller keeps the flag alive until it sets NULL). The session lends its interrupt flag
   * for each step and takes it back after (session.c). While the flag is set, the ops that can
   * run for seconds on large shapes check it between their blocks (and at entry) and return
   * early, their outputs unspecified:
   *   cholesky, sketch_r, sketch_panels_r, r_inverse return SGN_OP_STOPPED;
   *   gram, gram_heads, sketch and sketch_gram return with their outputs partly written.
   * Nothing sticky is set: the backend works as before once the flag is cleared, and the caller,
   * seeing the flag set, drops whatever those ops wrote (gn.c: SGN_E_INTERRUPTED, never a raised
   * damping). The CPU checks between blocks of at most a few 10^9 flops (cpu/linalg.c), so a
   * stop takes effect within about 0.1-0.5 s however large the Cholesky or the Gram; the GPU,
   * whose calls are queued and short, checks at entry and between the host loop's blocks. A
   * backend may leave the slot NULL (its ops then run to the end). */
  void (*set_stop)(void *ctx, const sgn_stop_flag *stop);

  /* ---- the products' precision ----
   * set_product_precision: the arithmetic of forward, jvp and vjp from now on (sgn_precision,
   * precision.h; a backend starts at fp32). fp32 (and fp64, taken as fp32): float32 GEMMs with
   * TF32 off, as documented above. tf32 and bf16: the operands of the products' GEMMs with d in
   * them, X and W (forward's Z = X W^T: its mask and relu), X and V (J v's X V^T), X and the
   * masked coefficients B = M o (Gv A^T) (J^T g's B^T X), are rounded to nearest-even with
   * sgn_round_precision (into copies: the caller's arrays are not changed) and multiplied with
   * float32 sums, so a product of two rounded values is exact and the backends differ only in
   * their summation order. The sums over neurons weighted by A (+-1, exact) stay float32.
   * Rounding is deterministic and odd, so a symmetric model still gives f == 0 bit for bit. The
   * session sets its options.product_precision at creation and fp32 back when freed
   * (session.c). A backend may leave the slot NULL: it then supports fp32 only (the session
   * refuses the others). */
  void (*set_product_precision)(void *ctx, sgn_precision prec);

  /* The sticky error: NULL while every op has done its work, else one line naming the first
   * failure inside an op (a CUDA or library error, a failed scratch allocation). Once set, ops
   * return without doing their work (outputs unspecified) until the backend is closed; the
   * session turns it into SGN_E_RUNTIME with the message. A backend whose ops cannot fail may
   * leave the slot NULL. */
  const char *(*error)(void *ctx);

  void (*destroy)(void *ctx);
} sgn_backend_ops;

struct sgn_backend {
  const sgn_backend_ops *ops;
  void *ctx;
};

/* The backend's sticky error (the error slot above), or NULL when there is none. */
const char *sgn_backend_error(const sgn_backend *be);
/* Lends be the stop flag its long ops watch (the set_stop slot above; NULL takes it back). A
 * backend without the slot ignores it. */
void sgn_backend_set_stop(sgn_backend *be, const sgn_stop_flag *stop);

/* Sets be's product precision (the set_product_precision slot above): 0, or -1 (nothing set)
 * when prec rounds (tf32, bf16) and the backend has no slot. */
int sgn_backend_set_product_precision(sgn_backend *be, sgn_precision prec);

/* The CPU backend: OpenBLAS, LAPACK, the Hadamard transform of cpu/hadamard.c. */
sgn_backend *sgn_backend_cpu_open(void);

#endif
