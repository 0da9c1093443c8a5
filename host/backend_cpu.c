/* backend_cpu.c — the CPU backend: the products on OpenBLAS sgemm (row-major), the sketches and
 * factorizations of sketch_cpu.c / linalg_cpu.c, and OpenMP loops for everything elementwise.
 * Neurons go through GEMMs in two halves [0, m/2) and [m/2, m) whose partial sums are added at
 * the end, so a symmetric model (mirrored W rows, negated A rows) gives f == 0 bit for bit.
 * Reductions (dot, residual) use fixed blocks, so results do not depend on the thread count. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "linalg.h"
#include "sketch.h"
#include "util.h"

/* Grow-only scratch allocated at open (floats): forward's relu chunks, jvp's partial sums and
 * gram's row blocks are cut to fit it, so the hot paths allocate nothing. It grows only when a
 * single minimal chunk does not fit (m + k > 4M, or gram with n, m in the hundreds of
 * thousands); gram, a once-per-refresh setup op, may grow it to keep its blocks >= 64 rows. */
#define SCRATCH_FLOATS ((size_t)1 << 22)
#define GRAM_MIN_ROWS 64
/* Elementwise loops shorter than this stay on one thread. */
#define PAR_MIN 16384
/* Fixed number of blocks of the deterministic reductions. */
#define RED_BLOCKS 64

/* One backend serves one thread at a time (the scratch is shared by its ops), like a stream. */
typedef struct cpu_ctx {
  float *scratch; /* (cap) floats, 64-byte aligned */
  size_t cap;
} cpu_ctx;

/* ---- memory ---- */

static void *aligned_zalloc(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void *p = aligned_alloc(64, rounded);
  if (!p) {
    sgn_fail(SGN_E_RUNTIME, "cpu backend: out of memory allocating %zu bytes", bytes);
    return NULL;
  }
  memset(p, 0, rounded);
  return p;
}

static void *cpu_alloc(void *ctx, size_t bytes) {
  (void)ctx;
  return aligned_zalloc(bytes);
}

static void cpu_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void cpu_memcpy(void *ctx, void *dst, const void *src, size_t bytes) {
  (void)ctx;
  if (bytes) memcpy(dst, src, bytes);
}

static void cpu_sync(void *ctx) { (void)ctx; }

/* MemAvailable of /proc/meminfo (what can be allocated without swapping), else free pages. */
static size_t cpu_mem_available(void *ctx) {
  (void)ctx;
  FILE *f = fopen("/proc/meminfo", "r");
  char line[128];
  unsigned long long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
  if (f) fclose(f);
  if (kib) return (size_t)kib * 1024;
  long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : SIZE_MAX;
}

/* Makes the scratch hold at least `floats`. The ops have no error channel, and failing to get a
 * few megabytes leaves nothing sensible to compute, so failure here aborts with a message. */
static float *scratch_get(cpu_ctx *c, size_t floats) {
  if (floats > c->cap) {
    float *p = aligned_zalloc(floats * sizeof(float));
    if (!p) {
      fprintf(stderr, "sketchgn: cpu backend: out of memory growing scratch to %zu bytes\n",
              floats * sizeof(float));
      abort();
    }
    free(c->scratch);
    c->scratch = p;
    c->cap = floats;
  }
  return c->scratch;
}

/* Rows per block when each row needs per_row floats of scratch: as many as fit, at least
 * min_rows (growing the scratch if needed), at most n. */
static int64_t block_rows(cpu_ctx *c, int64_t n, size_t per_row, int64_t min_rows) {
  int64_t nb = (int64_t)(c->cap / per_row);
  if (nb < min_rows) nb = min_rows;
  if (nb > n) nb = n;
  if (nb < 1) nb = 1;
  scratch_get(c, (size_t)nb * per_row);
  return nb;
}

/* ---- network products ---- */

/* Z[:, r0:r0+w] = X W[r0:r0+w]^T for the two neuron halves.  X (n, d), W (m, d), Z (n, m). */
static void z_halves(sgn_dims dm, const float *X, const float *W, float *Z) {
  const int64_t h = dm.m / 2;
  const int64_t r0[2] = {0, h}, w[2] = {h, dm.m - h};
  for (int half = 0; half < 2; half++) {
    if (w[half] == 0 || dm.n == 0) continue;
    /* Z(n, w) = X(n, d) W[r0:r0+w](w, d)^T, written with ldc = m */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)dm.n, (int)w[half], (int)dm.d, 1.0f,
                X, (int)dm.d, W + r0[half] * dm.d, (int)dm.d, 0.0f, Z + r0[half], (int)dm.m);
  }
}

/* out = alpha (P[:, :h] A[:h] + P[:, h:] A[h:]), h = m/2.  P (rows, m) with row stride ldp,
 * A (m, k), out (rows, k), tmp (rows, k) scratch. Same shapes for both halves when m is even, so
 * mirrored halves give bitwise opposite partial sums. */
static void halves_times_a(int64_t rows, int64_t m, int64_t k, const float *P, int64_t ldp,
                           const float *A, float alpha, float *out, float *tmp) {
  const int64_t h = m / 2;
  const size_t len = (size_t)rows * (size_t)k;
  if (rows == 0 || k == 0) return;
  if (h > 0)
    /* out(rows, k) = alpha P[:, :h](rows, h) A[:h](h, k) */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)k, (int)h, alpha, P,
                (int)ldp, A, (int)k, 0.0f, out, (int)k);
  else
    memset(out, 0, len * sizeof(float));
  /* tmp(rows, k) = alpha P[:, h:](rows, m-h) A[h:](m-h, k) */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)k, (int)(m - h), alpha,
              P + h, (int)ldp, A + h * k, (int)k, 0.0f, tmp, (int)k);
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (size_t i = 0; i < len; i++) out[i] += tmp[i];
}

/* Z = X W^T (n, m); F = m^-1/2 relu(Z) A (n, k), in row chunks through the scratch. */
static void cpu_forward(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                        float *Z, float *F) {
  cpu_ctx *c = ctx;
  const int64_t n = dm.n, m = dm.m, k = dm.k;
  const float alpha = (float)(1.0 / sqrt((double)m));
  z_halves(dm, X, W, Z);
  const int64_t nb = block_rows(c, n, (size_t)(m + k), 1);
  float *S = c->scratch;               /* (nb, m) relu(Z) of the chunk */
  float *T = c->scratch + nb * m;      /* (nb, k) second half's partial sum */
  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rows = (n - i0 < nb) ? n - i0 : nb;
    const size_t len = (size_t)rows * (size_t)m;
    const float *Zc = Z + i0 * m;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
    for (size_t e = 0; e < len; e++) S[e] = Zc[e] < 0.0f ? 0.0f : Zc[e]; /* NaN stays NaN */
    halves_times_a(rows, m, k, S, m, A, alpha, F + i0 * k, T);
  }
}

/* work (n, m) <- work o 1[Z > 0] */
static void apply_mask(int64_t n, int64_t m, const float *Z, float *work) {
  const size_t len = (size_t)n * (size_t)m;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (size_t e = 0; e < len; e++) work[e] = Z[e] > 0.0f ? work[e] : 0.0f;
}

/* out = J V: out[i,c] = m^-1/2 sum_r A[r,c] 1[Z_ir>0] <V_r, x_i>   (n, k) */
static void cpu_jvp(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A,
                    const float *V, float *work, float *out) {
  cpu_ctx *c = ctx;
  const int64_t n = dm.n, m = dm.m, k = dm.k;
  const float alpha = (float)(1.0 / sqrt((double)m));
  z_halves(dm, X, V, work); /* P = X V^T (n, m) */
  apply_mask(n, m, Z, work);
  const int64_t nb = block_rows(c, n, (size_t)k, 1);
  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rows = (n - i0 < nb) ? n - i0 : nb;
    halves_times_a(rows, m, k, work + i0 * m, m, A, alpha, out + i0 * k, c->scratch);
  }
}

/* out = J^T Gv: out[r,:] = m^-1/2 sum_i (sum_c Gv[i,c] A[r,c]) 1[Z_ir>0] x_i   (m, d) */
static void cpu_vjp(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A,
                    const float *Gv, float *work, float *out) {
  (void)ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k;
  const float alpha = (float)(1.0 / sqrt((double)m));
  const int64_t h = m / 2;
  const int64_t r0[2] = {0, h}, w[2] = {h, m - h};
  if (n == 0) {
    memset(out, 0, (size_t)m * (size_t)d * sizeof(float));
    return;
  }
  for (int half = 0; half < 2; half++) {
    if (w[half] == 0) continue;
    /* B[:, r0:r0+w](n, w) = Gv(n, k) A[r0:r0+w](w, k)^T, ldc = m */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)w[half], (int)k, 1.0f, Gv,
                (int)k, A + r0[half] * k, (int)k, 0.0f, work + r0[half], (int)m);
  }
  apply_mask(n, m, Z, work);
  for (int half = 0; half < 2; half++) {
    if (w[half] == 0) continue;
    /* out[r0:r0+w](w, d) = alpha B[:, r0:r0+w]^T (w, n) X(n, d) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)w[half], (int)d, (int)n, alpha,
                work + r0[half], (int)m, X, (int)d, 0.0f, out + r0[half] * d, (int)d);
  }
}

/* G (N, N) lower triangle <- upper triangle, in cache tiles */
static void mirror_upper(int64_t N, double *G) {
  const int64_t T = 64;
#pragma omp parallel for schedule(dynamic, 1) if (N > 256)
  for (int64_t bi = 0; bi < N; bi += T)
    for (int64_t bj = 0; bj <= bi; bj += T) {
      const int64_t ai = bi + T < N ? bi + T : N;
      for (int64_t a = bi; a < ai; a++) {
        const int64_t bend = bj + T < a ? bj + T : a;
        for (int64_t b = bj; b < bend; b++) G[a * N + b] = G[b * N + a];
      }
    }
}

/* G[(i,c),(j,e)] = <x_i,x_j> (1/m) sum_r A[r,c] A[r,e] M_ir M_jr; (n, n) block only if !full.
 * Row blocks [i0, i1) against columns [i0, n): K = X X^T and S = M diag(s) M^T fill the upper
 * triangle (samples j >= i), which is then mirrored, so G is exactly symmetric. */
static void cpu_gram(void *ctx, sgn_dims dm, const float *X, const float *Z, const float *A,
                     int full, float *work, double *G) {
  cpu_ctx *c = ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  const int64_t k = full ? dm.k : 1;
  const int64_t N = n * k;
  const double inv_m = 1.0 / (double)m;
  if (n == 0) return;

  /* M = 1[Z > 0] as floats in work (n, m) */
  const size_t nm = (size_t)n * (size_t)m;
#pragma omp parallel for simd schedule(static) if (nm > PAR_MIN)
  for (size_t e = 0; e < nm; e++) work[e] = Z[e] > 0.0f ? 1.0f : 0.0f;
  const float *M = work;

  /* per row: K block, plain S block, signed S block (n each), signed M rows (m); the same rule
   * for full and !full so the diagonal blocks match the (n, n) Gram bit for bit */
  const int64_t nb = block_rows(c, n, (size_t)(3 * n + m), GRAM_MIN_ROWS);
  float *Kb = c->scratch;          /* (nb, n - i0) */
  float *Sb = Kb + nb * n;         /* (nb, n - i0) plain M M^T */
  float *Se = Sb + nb * n;         /* (nb, n - i0) signed */
  float *Ms = Se + nb * n;         /* (nb, m) signed rows of M */

  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rb = (n - i0 < nb) ? n - i0 : nb;
    const int64_t cols = n - i0;
    /* Kb(rb, cols) = X[i0:i0+rb](rb, d) X[i0:n](cols, d)^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)cols, (int)d, 1.0f,
                X + i0 * d, (int)d, X + i0 * d, (int)d, 0.0f, Kb, (int)cols);
    /* Sb(rb, cols) = M[i0:i0+rb](rb, m) M[i0:n](cols, m)^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)cols, (int)m, 1.0f,
                M + i0 * m, (int)m, M + i0 * m, (int)m, 0.0f, Sb, (int)cols);
    for (int64_t ce = 0; ce < k; ce++) {
      for (int64_t ee = ce; ee < k; ee++) {
        const float *S = Sb;
        if (ee != ce) {
          /* Ms = M[i0:i0+rb] diag(A[:,c] o A[:,e]); Se(rb, cols) = Ms M[i0:n]^T */
#pragma omp parallel for schedule(static) if ((size_t)rb * (size_t)m > PAR_MIN)
          for (int64_t ii = 0; ii < rb; ii++)
            for (int64_t r = 0; r < m; r++)
              Ms[ii * m + r] = M[(i0 + ii) * m + r] * (A[r * dm.k + ce] * A[r * dm.k + ee]);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rb, (int)cols, (int)m, 1.0f,
                      Ms, (int)m, M + i0 * m, (int)m, 0.0f, Se, (int)cols);
          S = Se;
        }
        /* rows of sample i, samples j >= i: sets the whole upper triangle (mirrored below) */
#pragma omp parallel for schedule(dynamic, 4) if ((size_t)rb * (size_t)cols > PAR_MIN)
        for (int64_t ii = 0; ii < rb; ii++) {
          const int64_t i = i0 + ii;
          double *Gc = G + (i * k + ce) * N, *Ge = G + (i * k + ee) * N;
          for (int64_t j = i; j < n; j++) {
            const size_t b = (size_t)ii * (size_t)cols + (size_t)(j - i0);
            const double v = (double)Kb[b] * (double)S[b] * inv_m;
            Gc[j * k + ee] = v;
            Ge[j * k + ce] = v;
          }
        }
      }
    }
  }
  mirror_upper(N, G);
}

/* diag[i] = G_ii = ||x_i||^2 (1/m) sum_r M_ir   (n) */
static void cpu_gram_diag(void *ctx, sgn_dims dm, const float *X, const float *Z,
                          double *diag) {
  (void)ctx;
  const int64_t n = dm.n, d = dm.d, m = dm.m;
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)(m + d) > PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    double xx = 0.0;
    for (int64_t l = 0; l < d; l++) xx += (double)X[i * d + l] * (double)X[i * d + l];
    int64_t active = 0;
    for (int64_t r = 0; r < m; r++) active += Z[i * m + r] > 0.0f;
    diag[i] = xx * (double)active / (double)m;
  }
}

/* ---- sketches and factorizations: wired to sketch_cpu.c and linalg_cpu.c ---- */

static size_t cpu_sketch_work_bytes(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s) {
  (void)ctx;
  return sgn_sketch_work_bytes_cpu(dm, kind, s);
}

/* Y (n, s) = sketch of the k = 1 block of J */
static void cpu_sketch(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed,
                       const float *X, const float *Z, void *work, float *Y) {
  (void)ctx;
  switch (kind) {
  case SGN_SKETCH_SRHT:
    sgn_sketch_srht_cpu(dm, s, seed, X, Z, work, Y);
    return;
  case SGN_SKETCH_GAUSSIAN:
    sgn_sketch_gaussian_cpu(dm, s, seed, X, Z, work, Y);
    return;
  }
  /* an enum value this backend does not know: make the result loud rather than plausible */
  sgn_fail(SGN_E_INPUT, "cpu backend: unknown sketch kind %d", (int)kind);
  for (size_t e = 0; e < (size_t)dm.n * (size_t)s; e++) Y[e] = NAN;
}

static size_t cpu_qr_work_bytes(void *ctx, int64_t n, int64_t s) {
  (void)ctx;
  return sgn_qr_work_bytes_cpu(n, s);
}

static int cpu_qr_r(void *ctx, int64_t n, int64_t s, const float *Y, double lambda, void *work,
                    double *R) {
  (void)ctx;
  return sgn_qr_r_cpu(n, s, Y, lambda, work, R);
}

static int cpu_cholesky(void *ctx, int64_t N, double *G, double lambda) {
  (void)ctx;
  return sgn_cholesky_cpu(N, G, lambda);
}

static void cpu_rtr_solve(void *ctx, int64_t N, int64_t k, const double *R, double *V) {
  (void)ctx;
  sgn_rtr_solve_cpu(N, k, R, V);
}

/* ---- vector ops ---- */

/* sum_i x_i y_i (y == NULL: sum x_i^2) in RED_BLOCKS fixed blocks added in order */
static double block_dot(int64_t len, const double *x, const double *y) {
  double part[RED_BLOCKS];
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
  for (int b = 0; b < RED_BLOCKS; b++) {
    const int64_t lo = len * b / RED_BLOCKS, hi = len * (b + 1) / RED_BLOCKS;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = lo;
    for (; i + 4 <= hi; i += 4) {
      s0 += x[i] * (y ? y[i] : x[i]);
      s1 += x[i + 1] * (y ? y[i + 1] : x[i + 1]);
      s2 += x[i + 2] * (y ? y[i + 2] : x[i + 2]);
      s3 += x[i + 3] * (y ? y[i + 3] : x[i + 3]);
    }
    for (; i < hi; i++) s0 += x[i] * (y ? y[i] : x[i]);
    part[b] = (s0 + s1) + (s2 + s3);
  }
  double sum = 0.0;
  for (int b = 0; b < RED_BLOCKS; b++) sum += part[b];
  return sum;
}

/* <x, y> */
static double cpu_dot(void *ctx, int64_t len, const double *x, const double *y) {
  (void)ctx;
  return block_dot(len, x, y);
}

/* y += a x */
static void cpu_axpy(void *ctx, int64_t len, double a, const double *x, double *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] += a * x[i];
}

/* y = x + b y */
static void cpu_xpby(void *ctx, int64_t len, const double *x, double b, double *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = x[i] + b * y[i];
}

/* x *= a */
static void cpu_scal(void *ctx, int64_t len, double a, double *x) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) x[i] *= a;
}

/* y = (float) x */
static void cpu_d2f(void *ctx, int64_t len, const double *x, float *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = (float)x[i];
}

/* y = (double) x */
static void cpu_f2d(void *ctx, int64_t len, const float *x, double *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = (double)x[i];
}

/* r = F - Y in float64; returns sum_i r_i^2 */
static double cpu_residual(void *ctx, int64_t len, const float *F, const float *Y, double *r) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) r[i] = (double)F[i] - (double)Y[i];
  return block_dot(len, r, NULL);
}

/* y += a x (float) */
static void cpu_axpy_f(void *ctx, int64_t len, float a, const float *x, float *y) {
  (void)ctx;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] += a * x[i];
}

/* out[i, :] = src[idx[i], :]   out (b, cols) */
static void cpu_gather_rows(void *ctx, int64_t b, int64_t cols, const float *src,
                            const int64_t *idx, float *out) {
  (void)ctx;
#pragma omp parallel for schedule(static) if ((size_t)b * (size_t)cols > PAR_MIN)
  for (int64_t i = 0; i < b; i++)
    memcpy(out + i * cols, src + idx[i] * cols, (size_t)cols * sizeof(float));
}

/* mom = b1 mom + (1-b1) g; vel = b2 vel + (1-b2) g^2;
 * W -= lr (mom / (1-b1^t)) / (sqrt(vel / (1-b2^t)) + eps) */
static void cpu_adam(void *ctx, int64_t len, float *W, const float *g, float *mom, float *vel,
                     double lr, double b1, double b2, double eps, int64_t t) {
  (void)ctx;
  const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) {
    const double gi = g[i];
    const double mo = b1 * mom[i] + (1.0 - b1) * gi;
    const double ve = b2 * vel[i] + (1.0 - b2) * gi * gi;
    mom[i] = (float)mo;
    vel[i] = (float)ve;
    W[i] = (float)((double)W[i] - lr * (mo / bc1) / (sqrt(ve / bc2) + eps));
  }
}

/* ---- the table ---- */

static void cpu_destroy(void *ctx) {
  cpu_ctx *c = ctx;
  if (!c) return;
  free(c->scratch);
  free(c);
}

static const sgn_backend_ops cpu_ops = {
    .name = "cpu",
    /* memory */
    .alloc = cpu_alloc,       /* aligned_alloc(64) + memset 0 */
    .free = cpu_free,         /* free */
    .upload = cpu_memcpy,     /* host memory is backend memory: memcpy */
    .download = cpu_memcpy,   /* memcpy */
    .copy = cpu_memcpy,       /* memcpy */
    .sync = cpu_sync,         /* nothing is queued */
    .mem_available = cpu_mem_available, /* MemAvailable from /proc/meminfo */
    /* network products */
    .forward = cpu_forward,     /* Z = X W^T; F = m^-1/2 relu(Z) A, by neuron halves */
    .jvp = cpu_jvp,             /* J V */
    .vjp = cpu_vjp,             /* J^T Gv */
    .gram = cpu_gram,           /* J J^T, (n, n) or (n k, n k), float64 */
    .gram_diag = cpu_gram_diag, /* diag of the (n, n) Gram */
    /* sketches */
    .sketch_work_bytes = cpu_sketch_work_bytes, /* sketch_cpu.c */
    .sketch = cpu_sketch,                       /* srht | gaussian, sketch_cpu.c */
    /* dense factorizations */
    .qr_work_bytes = cpu_qr_work_bytes, /* linalg_cpu.c */
    .qr_r = cpu_qr_r,                   /* thin QR of [Y^T; sqrt(lambda) I] -> R */
    .cholesky = cpu_cholesky,           /* dpotrf, upper */
    .rtr_solve = cpu_rtr_solve,         /* two dtrsm */
    /* vector ops */
    .dot = cpu_dot,               /* fixed-block sum, thread-count independent */
    .axpy = cpu_axpy,             /* y += a x */
    .xpby = cpu_xpby,             /* y = x + b y */
    .scal = cpu_scal,             /* x *= a */
    .d2f = cpu_d2f,               /* double -> float */
    .f2d = cpu_f2d,               /* float -> double */
    .residual = cpu_residual,     /* r = F - Y, returns ||r||^2 */
    .axpy_f = cpu_axpy_f,         /* float y += a x */
    .gather_rows = cpu_gather_rows, /* mini-batch rows */
    .adam = cpu_adam,             /* bias-corrected Adam */
    .destroy = cpu_destroy, /* frees the ctx; sgn_backend_close frees the handle */
};

sgn_backend *sgn_backend_cpu_open(void) {
  cpu_ctx *c = calloc(1, sizeof *c);
  sgn_backend *be = malloc(sizeof *be);
  if (c) c->scratch = aligned_zalloc(SCRATCH_FLOATS * sizeof(float));
  if (!c || !be || !c->scratch) {
    if (c) free(c->scratch);
    free(c);
    free(be);
    sgn_fail(SGN_E_RUNTIME, "cpu backend: out of memory opening the backend");
    return NULL;
  }
  c->cap = SCRATCH_FLOATS;
  be->ops = &cpu_ops;
  be->ctx = c;
  return be;
}
