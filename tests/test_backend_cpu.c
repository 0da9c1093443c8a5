/* test_backend_cpu.c — the CPU backend, the oracle of every other backend, checked by properties:
 * adjointness of J v and J^T g, agreement with an explicitly formed J on tiny shapes, central
 * differences of f, f == 0 bit for bit for a symmetric model, the block structure of the Gram.
 * The products have two paths (cpu/products.c): fused kernels for d <= 64 and k <= 16 (fused.h), GEMMs
 * otherwise; the shape tables hold shapes on both sides (d >= 66 or k >= 17 for the GEMM path:
 * keep it so if those bounds move), and further tests hold the paths to each other (zero input
 * features), chunked runs to unchunked ones, and results to the thread count.
 * The CPU backend's memory is host memory, so tests read and write its buffers directly. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "rng.h"
#include "sketch.h"
#include "linalg.h"
#include "mask_check.h"

/* Tolerances, each a relative error unless it says otherwise (measured values in brackets).
 * TOL_ADJ   <J v, g> vs <v, J^T g>, relative to max(|lhs|, |rhs|): float32 GEMMs [<= 8e-7].
 * TOL_EXPL  float32 products vs a float64 explicit J, max error over max |entry|: each entry sums
 *           at most m d float32 products, u = 6e-8 times a few [<= 1.1e-7].
 * TOL_FD    central differences of the float32 forward: f is piecewise linear, so with no kink
 *           crossed the difference is exact up to rounding, ~u |f| / eps, eps >= 1e-3 [1e-5].
 * TOL_GRAM  G from float32 GEMMs (K = X X^T) vs J J^T in float64 [<= 1.7e-7].
 * TOL_GV    G g (float64) vs J (J^T g) through two float32 products [1e-7].
 * TOL_BLOCK diagonal blocks of the full Gram vs the (n, n) Gram: the same arithmetic [0].
 * TOL_VEC   float64 vector ops vs a plain loop (reordered sums only).
 * TOL_PATH  the fused path vs the GEMM path, and chunked vs unchunked: the same float32 terms
 *           summed in another order, u = 6e-8 times a few hundred terms [<= 3e-7].
 * MASK_EDGE a mask bit may differ between the paths only where |z| is within float32 rounding
 *           of 0: |z| <= 1e-5 |x| |w|.
 * OFFDIAG_MAX  off-diagonal / diagonal block Frobenius ratio, ~ 1/sqrt(m/4) at m = 512 [0.107];
 *           0.5 leaves room and still fails if the signs A_c o A_e were ignored (ratio 1). */
#define TOL_ADJ 1e-5
#define TOL_EXPL 1e-5
#define TOL_FD 1e-3
#define TOL_GRAM 1e-5
#define TOL_GV 1e-4
#define TOL_BLOCK 1e-12
#define TOL_VEC 1e-12
#define TOL_PATH 1e-5
#define MASK_EDGE 1e-5
#define OFFDIAG_MAX 0.5

#define SEED 20240601u

/* ---- fixture: a backend and a random problem ---- */

static sgn_backend *be;

static void open_backend(void) {
  be = sgn_backend_cpu_open();
  cr_assert_not_null(be, "sgn_backend_cpu_open failed");
}

static void close_backend(void) { sgn_backend_close(be); }

typedef struct problem {
  sgn_dims dm;
  float *X;    /* (n, d) */
  float *W;    /* (m, d) */
  float *A;    /* (m, k) +-1 */
  uint32_t *M; /* (n, SGN_MASK_WORDS(m)) bit mask of X W^T > 0 */
  float *F;    /* (n, k) */
  float *work; /* (n, m) */
} problem;


static uint32_t *mask_alloc(int64_t n, int64_t m);

static void *balloc(size_t bytes) {
  void *p = be->ops->alloc(be->ctx, bytes);
  cr_assert_not_null(p, "alloc(%zu) failed", bytes);
  return p;
}

static void fill_normal(float *x, size_t len, uint64_t seed, uint64_t stream) {
  for (size_t i = 0; i < len; i++) x[i] = (float)sgn_rng_normal(seed, stream, i);
}

static void fill_sign(float *x, size_t len, uint64_t seed, uint64_t stream) {
  for (size_t i = 0; i < len; i++) x[i] = sgn_rng_sign(seed, stream, i);
}

/* Random X, W, A (Gaussian init) and the forward pass. */
static problem make_problem(int64_t n, int64_t d, int64_t m, int64_t k, uint64_t seed) {
  problem p = {.dm = {n, d, m, k, 0}};
  p.X = balloc((size_t)(n * d) * sizeof(float));
  p.W = balloc((size_t)(m * d) * sizeof(float));
  p.A = balloc((size_t)(m * k) * sizeof(float));
  p.M = mask_alloc(n, m);
  p.F = balloc((size_t)(n * k) * sizeof(float));
  p.work = balloc((size_t)(n * m) * sizeof(float));
  fill_normal(p.X, (size_t)(n * d), seed, SGN_STREAM_SYNTH_X);
  fill_normal(p.W, (size_t)(m * d), seed, SGN_STREAM_INIT_W);
  fill_sign(p.A, (size_t)(m * k), seed, SGN_STREAM_INIT_A);
  be->ops->forward(be->ctx, p.dm, p.X, p.W, p.A, p.work, p.M, p.F);
  return p;
}

static uint32_t *mask_alloc(int64_t n, int64_t m) {
  return balloc((size_t)(n * SGN_MASK_WORDS(m)) * sizeof(uint32_t));
}

static void free_problem(problem *p) {
  void *bufs[] = {p->X, p->W, p->A, p->M, p->F, p->work};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be->ctx, bufs[i]);
}

/* Makes the model symmetric: W rows r + m/2 copy rows r, A rows r + m/2 negate rows r. */
static void symmetrize(problem *p) {
  const int64_t h = p->dm.m / 2, d = p->dm.d, k = p->dm.k;
  memcpy(p->W + h * d, p->W, (size_t)(h * d) * sizeof(float));
  for (int64_t e = 0; e < h * k; e++) p->A[h * k + e] = -p->A[e];
}

/* J (n k, m d) in float64 from its definition: row (i, c) is u_ic (x) x_i with
 * u_ic = m^-1/2 A[:, c] o 1[z_i > 0], the mask taken from the backend's bit mask. */
static double *explicit_jacobian(const problem *p) {
  const int64_t n = p->dm.n, d = p->dm.d, m = p->dm.m, k = p->dm.k;
  double *J = calloc((size_t)(n * k * m * d), sizeof(double));
  cr_assert_not_null(J);
  const double s = 1.0 / sqrt((double)m);
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++)
      for (int64_t r = 0; r < m; r++) {
        const double u = mbit(p->M, m, i, r) ? s * p->A[r * k + c] : 0.0;
        for (int64_t l = 0; l < d; l++)
          J[(i * k + c) * (m * d) + r * d + l] = u * p->X[i * d + l];
      }
  return J;
}

/* max |got - want| / max |want| */
static double rel_err_f(size_t len, const float *got, const double *want) {
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < len; i++) {
    err = fmax(err, fabs((double)got[i] - want[i]));
    scale = fmax(scale, fabs(want[i]));
  }
  return scale > 0.0 ? err / scale : err;
}

static double rel_err_d(size_t len, const double *got, const double *want) {
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < len; i++) {
    err = fmax(err, fabs(got[i] - want[i]));
    scale = fmax(scale, fabs(want[i]));
  }
  return scale > 0.0 ? err / scale : err;
}

/* max |got - want| / max |want|, both float */
static double rel_err_ff(size_t len, const float *got, const float *want) {
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < len; i++) {
    err = fmax(err, fabs((double)got[i] - (double)want[i]));
    scale = fmax(scale, fabs((double)want[i]));
  }
  return scale > 0.0 ? err / scale : err;
}

static double dot_f(size_t len, const float *a, const float *b) {
  double s = 0.0;
  for (size_t i = 0; i < len; i++) s += (double)a[i] * (double)b[i];
  return s;
}

/* ---- adjointness ---- */

typedef struct shape {
  int64_t n, d, m, k;
} shape;

#define SHAPE_FMT "n=%ld d=%ld m=%ld k=%ld"
#define SHAPE_ARGS(s) (long)(s)->n, (long)(s)->d, (long)(s)->m, (long)(s)->k

/* fused: odd m, halves off the word boundary (m = 202); GEMM: d > 64, k > 16 */
static const shape adj_shapes[] = {
    {37, 13, 50, 3}, {64, 7, 129, 1}, {5, 1, 2, 2},   {33, 21, 97, 10},
    {200, 31, 300, 4}, {50, 4, 202, 1}, {40, 70, 97, 2}, {30, 3, 66, 17},
};

/* a seed per shape, so each parameterized case draws its own inputs */
static uint64_t shape_seed(const shape *s) {
  return SEED + (uint64_t)(s->n * 1000003 + s->d * 1009 + s->m * 17 + s->k);
}

ParameterizedTestParameters(backend_cpu, adjointness) {
  return cr_make_param_array(shape, adj_shapes, sizeof adj_shapes / sizeof adj_shapes[0]);
}

ParameterizedTest(const shape *s, backend_cpu, adjointness, .init = open_backend,
                  .fini = close_backend) {
  const uint64_t seed = shape_seed(s);
  problem p = make_problem(s->n, s->d, s->m, s->k, seed);
  float *V = balloc((size_t)(s->m * s->d) * sizeof(float));
  float *g = balloc((size_t)(s->n * s->k) * sizeof(float));
  float *Jv = balloc((size_t)(s->n * s->k) * sizeof(float));
  float *JTg = balloc((size_t)(s->m * s->d) * sizeof(float));
  fill_normal(V, (size_t)(s->m * s->d), seed, 101);
  fill_normal(g, (size_t)(s->n * s->k), seed, 102);
  be->ops->jvp(be->ctx, p.dm, p.X, p.M, p.A, V, p.work, Jv);
  be->ops->vjp(be->ctx, p.dm, p.X, p.M, p.A, g, p.work, JTg);
  const double lhs = dot_f((size_t)(s->n * s->k), Jv, g);
  const double rhs = dot_f((size_t)(s->m * s->d), V, JTg);
  const double rel = fabs(lhs - rhs) / fmax(fabs(lhs), fabs(rhs));
  cr_expect(rel <= TOL_ADJ, SHAPE_FMT ": <Jv,g>=%.9g <v,J^T g>=%.9g rel %.2e", SHAPE_ARGS(s), lhs,
            rhs, rel);
  void *bufs[] = {V, g, Jv, JTg};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be->ctx, bufs[i]);
  free_problem(&p);
}

/* ---- agreement with an explicit J ---- */

static const shape tiny_shapes[] = {
    {5, 3, 6, 2}, {4, 2, 3, 3}, {7, 5, 8, 1}, {3, 4, 1, 2}, {6, 1, 9, 4},
    {4, 66, 5, 2}, {3, 2, 7, 17}, /* the GEMM path */
};

ParameterizedTestParameters(backend_cpu, explicit_jacobian) {
  return cr_make_param_array(shape, tiny_shapes, sizeof tiny_shapes / sizeof tiny_shapes[0]);
}

ParameterizedTest(const shape *s, backend_cpu, explicit_jacobian, .init = open_backend,
                  .fini = close_backend) {
  const int64_t n = s->n, d = s->d, m = s->m, k = s->k, N = n * k, P = m * d;
  const uint64_t seed = shape_seed(s);
  problem p = make_problem(n, d, m, k, seed);
  double *J = explicit_jacobian(&p);

  /* the mask bits are 1[X W^T > 0] (these seeds keep every z away from 0) */
  double *want = calloc((size_t)(N * N + n * m + P), sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < m; r++) {
      double z = 0.0;
      for (int64_t l = 0; l < d; l++) z += (double)p.X[i * d + l] * p.W[r * d + l];
      cr_expect_eq(mbit(p.M, m, i, r), z > 0.0, SHAPE_FMT ": mask bit (%ld, %ld), z = %g",
                   SHAPE_ARGS(s), (long)i, (long)r, z);
    }

  /* f is 1-homogeneous in W: f = J(W) vec(W) */
  for (int64_t row = 0; row < N; row++) {
    double acc = 0.0;
    for (int64_t col = 0; col < P; col++) acc += J[row * P + col] * p.W[col];
    want[row] = acc;
  }
  cr_expect(rel_err_f((size_t)N, p.F, want) <= TOL_EXPL, SHAPE_FMT ": F != J W", SHAPE_ARGS(s));

  /* J v */
  float *V = balloc((size_t)P * sizeof(float)), *out = balloc((size_t)N * sizeof(float));
  fill_normal(V, (size_t)P, seed, 201);
  be->ops->jvp(be->ctx, p.dm, p.X, p.M, p.A, V, p.work, out);
  for (int64_t row = 0; row < N; row++) {
    double acc = 0.0;
    for (int64_t col = 0; col < P; col++) acc += J[row * P + col] * V[col];
    want[row] = acc;
  }
  cr_expect(rel_err_f((size_t)N, out, want) <= TOL_EXPL, SHAPE_FMT ": J v", SHAPE_ARGS(s));

  /* J^T g */
  float *g = balloc((size_t)N * sizeof(float)), *JTg = balloc((size_t)P * sizeof(float));
  fill_normal(g, (size_t)N, seed, 202);
  be->ops->vjp(be->ctx, p.dm, p.X, p.M, p.A, g, p.work, JTg);
  for (int64_t col = 0; col < P; col++) {
    double acc = 0.0;
    for (int64_t row = 0; row < N; row++) acc += J[row * P + col] * g[row];
    want[col] = acc;
  }
  cr_expect(rel_err_f((size_t)P, JTg, want) <= TOL_EXPL, SHAPE_FMT ": J^T g", SHAPE_ARGS(s));

  /* G = J J^T, full and the (n, n) block, and its diagonal */
  double *JJt = calloc((size_t)(N * N), sizeof(double));
  for (int64_t a = 0; a < N; a++)
    for (int64_t b = 0; b < N; b++) {
      double acc = 0.0;
      for (int64_t col = 0; col < P; col++) acc += J[a * P + col] * J[b * P + col];
      JJt[a * N + b] = acc;
    }
  double *G = balloc((size_t)(N * N) * sizeof(double));
  be->ops->gram(be->ctx, p.dm, p.X, p.M, p.A, 1, p.work, G);
  cr_expect(rel_err_d((size_t)(N * N), G, JJt) <= TOL_GRAM, SHAPE_FMT ": full gram", SHAPE_ARGS(s));

  double *G0 = balloc((size_t)(n * n) * sizeof(double));
  double *diag = balloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) want[i * n + j] = JJt[(i * k) * N + j * k];
  be->ops->gram(be->ctx, p.dm, p.X, p.M, p.A, 0, p.work, G0);
  cr_expect(rel_err_d((size_t)(n * n), G0, want) <= TOL_GRAM, SHAPE_FMT ": gram full=0",
            SHAPE_ARGS(s));
  for (int64_t i = 0; i < n; i++) want[i] = JJt[(i * k) * N + i * k];
  be->ops->gram_diag(be->ctx, p.dm, p.X, p.M, diag);
  cr_expect(rel_err_d((size_t)n, diag, want) <= TOL_GRAM, SHAPE_FMT ": gram_diag", SHAPE_ARGS(s));

  be->ops->free(be->ctx, V);
  be->ops->free(be->ctx, out);
  be->ops->free(be->ctx, g);
  be->ops->free(be->ctx, JTg);
  be->ops->free(be->ctx, G);
  be->ops->free(be->ctx, G0);
  be->ops->free(be->ctx, diag);
  free(JJt);
  free(want);
  free(J);
  free_problem(&p);
}

/* ---- finite differences ---- */

Test(backend_cpu, jvp_matches_central_differences, .init = open_backend, .fini = close_backend) {
  const int64_t n = 6, d = 4, m = 10, k = 2, P = m * d;
  problem p = make_problem(n, d, m, k, SEED + 30);
  float *V = balloc((size_t)P * sizeof(float)), *Jv = balloc((size_t)(n * k) * sizeof(float));
  fill_normal(V, (size_t)P, SEED, 301);

  /* f is linear between kinks: keep eps below the nearest one, min_ir |z_ir| / |<v_r, x_i>| */
  double ratio = INFINITY;
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < m; r++) {
      double pv = 0.0, z = 0.0;
      for (int64_t l = 0; l < d; l++) pv += (double)p.X[i * d + l] * V[r * d + l];
      for (int64_t l = 0; l < d; l++) z += (double)p.X[i * d + l] * p.W[r * d + l];
      ratio = fmin(ratio, fabs(z) / fabs(pv));
    }
  const double eps = fmin(1e-2, 0.5 * ratio);
  cr_assert(eps >= 1e-3, "this seed puts a kink within %.2e; pick another seed", ratio);

  float *Wp = balloc((size_t)P * sizeof(float)), *Wm = balloc((size_t)P * sizeof(float));
  for (int64_t e = 0; e < P; e++) {
    Wp[e] = p.W[e] + (float)eps * V[e];
    Wm[e] = p.W[e] - (float)eps * V[e];
  }
  uint32_t *Zp = mask_alloc(n, m), *Zm = mask_alloc(n, m);
  float *Fp = balloc((size_t)(n * k) * sizeof(float));
  float *Fm = balloc((size_t)(n * k) * sizeof(float));
  be->ops->forward(be->ctx, p.dm, p.X, Wp, p.A, p.work, Zp, Fp);
  be->ops->forward(be->ctx, p.dm, p.X, Wm, p.A, p.work, Zm, Fm);
  for (int64_t e = 0; e < n * SGN_MASK_WORDS(m); e++)
    cr_assert(Zp[e] == p.M[e] && Zm[e] == p.M[e], "a kink was crossed");

  be->ops->jvp(be->ctx, p.dm, p.X, p.M, p.A, V, p.work, Jv);
  double fd[12];
  for (int64_t e = 0; e < n * k; e++)
    fd[e] = ((double)Fp[e] - (double)Fm[e]) / (2.0 * eps);
  const double err = rel_err_f((size_t)(n * k), Jv, fd);
  cr_expect(err <= TOL_FD, "J v vs central differences (eps %.2e): rel %.2e", eps, err);

  void *bufs[] = {V, Jv, Wp, Wm, Zp, Zm, Fp, Fm};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be->ctx, bufs[i]);
  free_problem(&p);
}

/* A diverged weight must show in f, not vanish behind the relu, on either path (d = 3, 70). */
Test(backend_cpu, forward_propagates_nan, .init = open_backend, .fini = close_backend) {
  const int64_t dims[2] = {3, 70};
  for (int t = 0; t < 2; t++) {
    problem p = make_problem(4, dims[t], 6, 2, SEED + 35);
    p.W[0] = NAN; /* row 0 of W: z_i0 is NaN for every sample */
    be->ops->forward(be->ctx, p.dm, p.X, p.W, p.A, p.work, p.M, p.F);
    for (int64_t e = 0; e < 4 * 2; e++)
      cr_expect(isnan(p.F[e]), "d=%ld: F[%ld] = %g", (long)dims[t], (long)e, p.F[e]);
    for (int64_t i = 0; i < 4; i++)
      cr_expect(mbit(p.M, 6, i, 0) == 0, "d=%ld: mask bit of a NaN z is set", (long)dims[t]);
    free_problem(&p);
  }
}

/* ---- symmetric model ---- */

/* Includes shapes where OpenBLAS threads, where the GEMM path's forward needs several row blocks
 * of Z (600 x 8192 > 4M floats), the smallest pair m = 2, and halves that do not start on a mask
 * word (m = 130, 202), on the fused path (d <= 64, k <= 16) and on the GEMM path. */
static const shape sym_shapes[] = {
    {37, 13, 50, 3},   {1, 3, 2, 1},      {129, 64, 1000, 10}, {600, 10, 8192, 2},
    {64, 7, 130, 1},   {100, 4, 202, 1},  {600, 70, 8192, 2},  {50, 70, 202, 2},
    {33, 3, 202, 17},  {129, 100, 1000, 10},
};

ParameterizedTestParameters(backend_cpu, symmetric_model_is_exactly_zero) {
  return cr_make_param_array(shape, sym_shapes, sizeof sym_shapes / sizeof sym_shapes[0]);
}

ParameterizedTest(const shape *s, backend_cpu, symmetric_model_is_exactly_zero,
                  .init = open_backend, .fini = close_backend) {
  const int64_t h = s->m / 2;
  const uint64_t seed = shape_seed(s);
  problem p = make_problem(s->n, s->d, s->m, s->k, seed);
  symmetrize(&p);
  be->ops->forward(be->ctx, p.dm, p.X, p.W, p.A, p.work, p.M, p.F);
  for (int64_t e = 0; e < s->n * s->k; e++)
    cr_assert(p.F[e] == 0.0f, SHAPE_FMT ": F[%ld] = %g, not exactly 0", SHAPE_ARGS(s), (long)e,
              p.F[e]);
  for (int64_t i = 0; i < s->n; i++)
    for (int64_t r = 0; r < h; r++)
      cr_assert(mbit(p.M, s->m, i, r) == mbit(p.M, s->m, i, r + h),
                SHAPE_FMT ": the two halves of mask row %ld differ", SHAPE_ARGS(s), (long)i);

  /* J W = f (homogeneity) must vanish the same way, and J^T g is antisymmetric */
  float *out = balloc((size_t)(s->n * s->k) * sizeof(float));
  be->ops->jvp(be->ctx, p.dm, p.X, p.M, p.A, p.W, p.work, out);
  for (int64_t e = 0; e < s->n * s->k; e++)
    cr_assert(out[e] == 0.0f, SHAPE_FMT ": (J W)[%ld] = %g", SHAPE_ARGS(s), (long)e, out[e]);
  float *g = balloc((size_t)(s->n * s->k) * sizeof(float));
  float *JTg = balloc((size_t)(s->m * s->d) * sizeof(float));
  fill_normal(g, (size_t)(s->n * s->k), seed, 401);
  be->ops->vjp(be->ctx, p.dm, p.X, p.M, p.A, g, p.work, JTg);
  for (int64_t e = 0; e < h * s->d; e++)
    cr_assert(JTg[h * s->d + e] == -JTg[e], SHAPE_FMT ": J^T g not antisymmetric at %ld",
              SHAPE_ARGS(s), (long)e);
  be->ops->free(be->ctx, out);
  be->ops->free(be->ctx, g);
  be->ops->free(be->ctx, JTg);
  free_problem(&p);
}

/* ---- the two product paths, chunks and threads ---- */

/* Appending zero input features changes no product: X W^T, f and J v stay, J^T g keeps its first
 * d columns and is 0 in the new ones. d = 5 takes the fused path and d = 5 + 70 the GEMM path, so
 * this holds the two paths to each other (m = 202: halves off the word boundary). */
Test(backend_cpu, zero_input_features_change_no_product, .init = open_backend,
     .fini = close_backend) {
  const int64_t n = 90, d = 5, D = d + 70, m = 202;
  const int64_t ks[2] = {1, 3};
  for (int t = 0; t < 2; t++) {
    const int64_t k = ks[t];
    problem p = make_problem(n, d, m, k, SEED + 40 + (uint64_t)k); /* fused */
    problem q = make_problem(n, D, m, k, SEED + 40 + (uint64_t)k); /* GEMM */
    for (int64_t i = 0; i < n; i++)
      for (int64_t l = 0; l < D; l++) q.X[i * D + l] = l < d ? p.X[i * d + l] : 0.0f;
    for (int64_t r = 0; r < m; r++)
      for (int64_t l = 0; l < d; l++) q.W[r * D + l] = p.W[r * d + l];
    memcpy(q.A, p.A, (size_t)(m * k) * sizeof(float));
    be->ops->forward(be->ctx, q.dm, q.X, q.W, q.A, q.work, q.M, q.F);
    expect_mask_signs("fused", p.dm, p.X, p.W, p.M, MASK_EDGE);
    expect_mask_signs("gemm", q.dm, q.X, q.W, q.M, MASK_EDGE);
    double err = rel_err_ff((size_t)(n * k), q.F, p.F);
    cr_expect(err <= TOL_PATH, "k=%ld: F rel %.2e between the paths", (long)k, err);

    /* J v and J^T g on the fused path's mask, V's and the result's extra columns as above */
    const size_t nk = (size_t)(n * k), md = (size_t)(m * d), mD = (size_t)(m * D);
    float *V = balloc(md * sizeof(float)), *VD = balloc(mD * sizeof(float));
    float *g = balloc(nk * sizeof(float));
    float *Jv = balloc(nk * sizeof(float)), *JvD = balloc(nk * sizeof(float));
    float *T = balloc(md * sizeof(float)), *TD = balloc(mD * sizeof(float));
    fill_normal(VD, mD, SEED, 411);
    fill_normal(g, nk, SEED, 412);
    for (int64_t r = 0; r < m; r++)
      for (int64_t l = 0; l < d; l++) V[r * d + l] = VD[r * D + l];
    be->ops->jvp(be->ctx, p.dm, p.X, p.M, p.A, V, p.work, Jv);
    be->ops->jvp(be->ctx, q.dm, q.X, p.M, q.A, VD, q.work, JvD);
    err = rel_err_ff(nk, JvD, Jv);
    cr_expect(err <= TOL_PATH, "k=%ld: J v rel %.2e between the paths", (long)k, err);
    be->ops->vjp(be->ctx, p.dm, p.X, p.M, p.A, g, p.work, T);
    be->ops->vjp(be->ctx, q.dm, q.X, p.M, q.A, g, q.work, TD);
    double e2 = 0.0, scale = 0.0;
    for (int64_t r = 0; r < m; r++)
      for (int64_t l = 0; l < D; l++) {
        if (l >= d) {
          cr_assert(TD[r * D + l] == 0.0f, "k=%ld: J^T g (%ld, %ld) = %g on a zero feature",
                    (long)k, (long)r, (long)l, TD[r * D + l]);
          continue;
        }
        e2 = fmax(e2, fabs((double)TD[r * D + l] - T[r * d + l]));
        scale = fmax(scale, fabs((double)T[r * d + l]));
      }
    cr_expect(e2 <= TOL_PATH * scale, "k=%ld: J^T g rel %.2e between the paths", (long)k,
              e2 / scale);
    void *bufs[] = {V, VD, g, Jv, JvD, T, TD};
    for (size_t b = 0; b < sizeof bufs / sizeof bufs[0]; b++) be->ops->free(be->ctx, bufs[b]);
    free_problem(&p);
    free_problem(&q);
  }
}

typedef struct chunk_shape {
  int64_t n, d, m, k, mc;
} chunk_shape;

#define CHUNK_FMT "n=%ld d=%ld m=%ld k=%ld mc=%ld"
#define CHUNK_ARGS(c) (long)(c)->n, (long)(c)->d, (long)(c)->m, (long)(c)->k, (long)(c)->mc
#define GUARD 64 /* floats of 0x7f7f7f7f after a chunked work buffer */

/* Both paths (test_chunking covers more chunk widths): d > 64 and k > 16 for the GEMM path, an odd
 * m, mc not dividing m, the smallest chunk 2, halves off the word boundary (m = 202, 258). */
static const chunk_shape chunk_shapes[] = {
    {37, 70, 50, 3, 10}, {64, 66, 129, 1, 22}, {33, 3, 97, 17, 2}, {9, 2, 7, 20, 2},
    {70, 4, 202, 1, 64}, {48, 6, 258, 2, 256}, {40, 80, 258, 1, 64},
};

ParameterizedTestParameters(backend_cpu, chunked_products_match_unchunked) {
  return cr_make_param_array(chunk_shape, chunk_shapes,
                             sizeof chunk_shapes / sizeof chunk_shapes[0]);
}

/* Products in chunks of mc neurons agree with the unchunked ones, write their mask bits over
 * stale ones, stay within sgn_work_floats of work, and keep a symmetric model's f exactly 0. */
ParameterizedTest(const chunk_shape *c, backend_cpu, chunked_products_match_unchunked,
                  .init = open_backend, .fini = close_backend) {
  const int64_t n = c->n, d = c->d, m = c->m, k = c->k, h = m / 2;
  const sgn_dims dc = {n, d, m, k, c->mc};
  cr_assert(sgn_chunked(dc) && sgn_chunk_count(dc) > 1, CHUNK_FMT ": not chunked", CHUNK_ARGS(c));
  problem p = make_problem(n, d, m, k, SEED + (uint64_t)(n * 7919 + m * 31 + c->mc));
  const size_t nk = (size_t)(n * k), md = (size_t)(m * d), wlen = sgn_work_floats(dc);
  float *wc = balloc((wlen + GUARD) * sizeof(float));
  memset(wc + wlen, 0x7f, GUARD * sizeof(float));
  uint32_t *Mc = mask_alloc(n, m);
  float *Fc = balloc(nk * sizeof(float)), *V = balloc(md * sizeof(float));
  float *g = balloc(nk * sizeof(float)), *J0 = balloc(nk * sizeof(float));
  float *Jc = balloc(nk * sizeof(float)), *T0 = balloc(md * sizeof(float));
  float *Tc = balloc(md * sizeof(float));
  fill_normal(V, md, SEED, 421);
  fill_normal(g, nk, SEED, 422);
  const unsigned char *guard = (const unsigned char *)(wc + wlen);

  for (int sym = 0; sym <= (m % 2 == 0); sym++) {
    if (sym) { /* the same checks on the symmetric model, then f == J W == 0 exactly */
      symmetrize(&p);
      be->ops->forward(be->ctx, p.dm, p.X, p.W, p.A, p.work, p.M, p.F);
    }
    memset(Mc, 0xff, (size_t)(n * SGN_MASK_WORDS(m)) * sizeof(uint32_t));
    be->ops->forward(be->ctx, dc, p.X, p.W, p.A, wc, Mc, Fc);
    expect_mask_signs("unchunked", p.dm, p.X, p.W, p.M, MASK_EDGE);
    expect_mask_signs("chunked", dc, p.X, p.W, Mc, MASK_EDGE);
    cr_expect(rel_err_ff(nk, Fc, p.F) <= TOL_PATH, CHUNK_FMT ": F rel %.2e", CHUNK_ARGS(c),
              rel_err_ff(nk, Fc, p.F));
    const float *Vs = sym ? p.W : V; /* J W = f */
    be->ops->jvp(be->ctx, p.dm, p.X, p.M, p.A, Vs, p.work, J0);
    be->ops->jvp(be->ctx, dc, p.X, p.M, p.A, Vs, wc, Jc);
    cr_expect(rel_err_ff(nk, Jc, J0) <= TOL_PATH, CHUNK_FMT ": J v rel %.2e", CHUNK_ARGS(c),
              rel_err_ff(nk, Jc, J0));
    be->ops->vjp(be->ctx, p.dm, p.X, p.M, p.A, g, p.work, T0);
    be->ops->vjp(be->ctx, dc, p.X, p.M, p.A, g, wc, Tc);
    cr_expect(rel_err_ff(md, Tc, T0) <= TOL_PATH, CHUNK_FMT ": J^T g rel %.2e", CHUNK_ARGS(c),
              rel_err_ff(md, Tc, T0));
    for (size_t b = 0; b < GUARD * sizeof(float); b++)
      cr_assert_eq(guard[b], 0x7f, CHUNK_FMT ": a product wrote past its %zu work floats",
                   CHUNK_ARGS(c), wlen);
    if (!sym) continue;
    for (size_t e = 0; e < nk; e++) {
      cr_assert(Fc[e] == 0.0f, CHUNK_FMT ": F[%zu] = %g, not exactly 0", CHUNK_ARGS(c), e, Fc[e]);
      cr_assert(Jc[e] == 0.0f, CHUNK_FMT ": (J W)[%zu] = %g", CHUNK_ARGS(c), e, Jc[e]);
    }
    for (int64_t e = 0; e < h * d; e++)
      cr_assert(Tc[h * d + e] == -Tc[e], CHUNK_FMT ": J^T g not antisymmetric at %ld",
                CHUNK_ARGS(c), (long)e);
  }
  void *bufs[] = {wc, Mc, Fc, V, g, J0, Jc, T0, Tc};
  for (size_t b = 0; b < sizeof bufs / sizeof bufs[0]; b++) be->ops->free(be->ctx, bufs[b]);
  free_problem(&p);
}

/* fused (k = 1, 10), GEMM (d > 64; k > 16), sizes where the OpenMP loops run in parallel */
static const shape thread_shapes[] = {
    {300, 4, 1000, 1}, {100, 5, 2002, 10}, {300, 70, 1000, 3}, {64, 3, 500, 17},
};

ParameterizedTestParameters(backend_cpu, products_do_not_depend_on_the_thread_count) {
  return cr_make_param_array(shape, thread_shapes, sizeof thread_shapes / sizeof thread_shapes[0]);
}

/* Forward, J v and J^T g on 1 OpenMP thread and on 3 give the same bits. */
ParameterizedTest(const shape *s, backend_cpu, products_do_not_depend_on_the_thread_count,
                  .init = open_backend, .fini = close_backend) {
  const int64_t n = s->n, d = s->d, m = s->m, k = s->k, mw = SGN_MASK_WORDS(m);
  const uint64_t seed = shape_seed(s);
  problem p = make_problem(n, d, m, k, seed);
  float *V = balloc((size_t)(m * d) * sizeof(float)), *g = balloc((size_t)(n * k) * sizeof(float));
  fill_normal(V, (size_t)(m * d), seed, 431);
  fill_normal(g, (size_t)(n * k), seed, 432);
  const size_t bytes[4] = {(size_t)(n * mw) * sizeof(uint32_t), (size_t)(n * k) * sizeof(float),
                           (size_t)(n * k) * sizeof(float), (size_t)(m * d) * sizeof(float)};
  void *out[2][4];
  const int threads[2] = {1, 3};
  const int saved = omp_get_max_threads();
  for (int t = 0; t < 2; t++) {
    for (int b = 0; b < 4; b++) out[t][b] = balloc(bytes[b]);
    omp_set_num_threads(threads[t]);
    be->ops->forward(be->ctx, p.dm, p.X, p.W, p.A, p.work, out[t][0], out[t][1]);
    be->ops->jvp(be->ctx, p.dm, p.X, p.M, p.A, V, p.work, out[t][2]);
    be->ops->vjp(be->ctx, p.dm, p.X, p.M, p.A, g, p.work, out[t][3]);
  }
  omp_set_num_threads(saved);
  const char *names[4] = {"mask", "F", "J v", "J^T g"};
  for (int b = 0; b < 4; b++)
    cr_expect(memcmp(out[0][b], out[1][b], bytes[b]) == 0, SHAPE_FMT ": %s differs on 3 threads",
              SHAPE_ARGS(s), names[b]);
  for (int t = 0; t < 2; t++)
    for (int b = 0; b < 4; b++) be->ops->free(be->ctx, out[t][b]);
  be->ops->free(be->ctx, V);
  be->ops->free(be->ctx, g);
  free_problem(&p);
}

/* ---- Gram structure ---- */

Test(backend_cpu, gram_blocks, .init = open_backend, .fini = close_backend) {
  const int64_t n = 40, d = 8, m = 512, k = 4, N = n * k;
  problem p = make_problem(n, d, m, k, SEED + 50);
  double *G = balloc((size_t)(N * N) * sizeof(double));
  double *G0 = balloc((size_t)(n * n) * sizeof(double));
  be->ops->gram(be->ctx, p.dm, p.X, p.M, p.A, 1, p.work, G);
  be->ops->gram(be->ctx, p.dm, p.X, p.M, p.A, 0, p.work, G0);

  for (int64_t a = 0; a < N; a++)
    for (int64_t b = 0; b < a; b++)
      cr_assert(G[a * N + b] == G[b * N + a], "full gram not exactly symmetric at (%ld, %ld)",
                (long)a, (long)b);
  for (int64_t a = 0; a < n; a++)
    for (int64_t b = 0; b < a; b++)
      cr_assert(G0[a * n + b] == G0[b * n + a], "gram not exactly symmetric");

  double diag_norm = 0.0, off_norm = 0.0;
  for (int64_t c = 0; c < k; c++)
    for (int64_t e = 0; e < k; e++) {
      double fro = 0.0, err = 0.0, scale = 0.0;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
          const double v = G[(i * k + c) * N + j * k + e];
          fro += v * v;
          err = fmax(err, fabs(v - G0[i * n + j]));
          scale = fmax(scale, fabs(G0[i * n + j]));
        }
      if (c == e) {
        cr_expect(err <= TOL_BLOCK * scale, "diagonal block %ld differs from the (n, n) Gram",
                  (long)c);
        diag_norm = fmax(diag_norm, sqrt(fro));
      } else {
        off_norm = fmax(off_norm, sqrt(fro));
      }
    }
  cr_expect(off_norm < OFFDIAG_MAX * diag_norm, "off-diagonal block %.3g vs diagonal %.3g",
            off_norm, diag_norm);
  be->ops->free(be->ctx, G);
  be->ops->free(be->ctx, G0);
  free_problem(&p);
}

/* G g = J (J^T g) on a shape too large for an explicit J, with every Gram row block path. */
Test(backend_cpu, gram_matches_products, .init = open_backend, .fini = close_backend) {
  const int64_t n = 150, d = 13, m = 257, k = 3, N = n * k;
  problem p = make_problem(n, d, m, k, SEED + 60);
  double *G = balloc((size_t)(N * N) * sizeof(double));
  float *g = balloc((size_t)N * sizeof(float)), *JTg = balloc((size_t)(m * d) * sizeof(float));
  float *JJTg = balloc((size_t)N * sizeof(float));
  double *Gg = balloc((size_t)N * sizeof(double));
  fill_normal(g, (size_t)N, SEED, 601);
  be->ops->gram(be->ctx, p.dm, p.X, p.M, p.A, 1, p.work, G);
  be->ops->vjp(be->ctx, p.dm, p.X, p.M, p.A, g, p.work, JTg);
  be->ops->jvp(be->ctx, p.dm, p.X, p.M, p.A, JTg, p.work, JJTg);
  for (int64_t a = 0; a < N; a++) {
    double acc = 0.0;
    for (int64_t b = 0; b < N; b++) acc += G[a * N + b] * g[b];
    Gg[a] = acc;
  }
  const double err = rel_err_f((size_t)N, JJTg, Gg);
  cr_expect(err <= TOL_GV, "G g vs J J^T g: rel %.2e", err);

  /* and the (n, n) Gram's diagonal is gram_diag */
  double *G0 = balloc((size_t)(n * n) * sizeof(double)), *diag = balloc((size_t)n * sizeof(double));
  be->ops->gram(be->ctx, p.dm, p.X, p.M, p.A, 0, p.work, G0);
  be->ops->gram_diag(be->ctx, p.dm, p.X, p.M, diag);
  for (int64_t i = 0; i < n; i++) Gg[i] = G0[i * n + i];
  cr_expect(rel_err_d((size_t)n, diag, Gg) <= TOL_GRAM, "gram_diag vs diag of gram");

  void *bufs[] = {G, g, JTg, JJTg, Gg, G0, diag};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be->ctx, bufs[i]);
  free_problem(&p);
}

/* ---- memory ---- */

Test(backend_cpu, memory, .init = open_backend, .fini = close_backend) {
  const size_t len = 1000;
  float *a = balloc(len * sizeof(float)), *b = balloc(len * sizeof(float));
  cr_expect(((uintptr_t)a & 63) == 0 && ((uintptr_t)b & 63) == 0, "not 64-byte aligned");
  for (size_t i = 0; i < len; i++) cr_assert(a[i] == 0.0f, "alloc not zero-filled");
  float host[1000], back[1000];
  fill_normal(host, len, SEED, 701);
  be->ops->upload(be->ctx, a, host, sizeof host);
  be->ops->copy(be->ctx, b, a, sizeof host);
  be->ops->sync(be->ctx);
  be->ops->download(be->ctx, back, b, sizeof back);
  cr_expect(memcmp(host, back, sizeof host) == 0, "upload/copy/download round trip");
  be->ops->free(be->ctx, a);
  be->ops->free(be->ctx, b);
  void *z = balloc(0);
  be->ops->free(be->ctx, z);
  cr_expect_str_eq(be->ops->name, "cpu");
}

/* ---- vector ops ---- */

static void fill_normal_d(double *x, int64_t len, uint64_t stream) {
  for (int64_t i = 0; i < len; i++) x[i] = sgn_rng_normal(SEED, stream, (uint64_t)i);
}

Test(backend_cpu, vector_ops, .init = open_backend, .fini = close_backend) {
  const int64_t lens[] = {1, 7, 100003};
  for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
    const int64_t len = lens[t];
    double *x = balloc((size_t)len * sizeof(double)), *y = balloc((size_t)len * sizeof(double));
    double *y0 = malloc((size_t)len * sizeof(double)), *want = malloc((size_t)len * sizeof(double));
    fill_normal_d(x, len, 801);
    fill_normal_d(y, len, 802);
    memcpy(y0, y, (size_t)len * sizeof(double));

    long double ref = 0.0L;
    for (int64_t i = 0; i < len; i++) ref += (long double)x[i] * y[i];
    const double got = be->ops->dot(be->ctx, len, x, y);
    cr_expect(fabs(got - (double)ref) <= TOL_VEC * (double)len * (1.0 + fabs((double)ref)),
              "dot len %ld: %.17g vs %.17g", (long)len, got, (double)ref);
    cr_expect(be->ops->dot(be->ctx, len, x, y) == got, "dot not deterministic");

    be->ops->axpy(be->ctx, len, 0.5, x, y);
    for (int64_t i = 0; i < len; i++) want[i] = y0[i] + 0.5 * x[i];
    cr_expect(rel_err_d((size_t)len, y, want) <= TOL_VEC, "axpy");

    memcpy(y, y0, (size_t)len * sizeof(double));
    be->ops->xpby(be->ctx, len, x, -2.0, y);
    for (int64_t i = 0; i < len; i++) want[i] = x[i] - 2.0 * y0[i];
    cr_expect(rel_err_d((size_t)len, y, want) <= TOL_VEC, "xpby");

    memcpy(y, y0, (size_t)len * sizeof(double));
    be->ops->scal(be->ctx, len, 3.0, y);
    for (int64_t i = 0; i < len; i++) want[i] = 3.0 * y0[i];
    cr_expect(rel_err_d((size_t)len, y, want) <= TOL_VEC, "scal");

    /* float <-> double: d2f rounds, f2d is exact, so f2d(d2f(x)) == (float) x */
    float *xf = balloc((size_t)len * sizeof(float)), *yf = balloc((size_t)len * sizeof(float));
    be->ops->d2f(be->ctx, len, x, xf);
    be->ops->f2d(be->ctx, len, xf, y);
    for (int64_t i = 0; i < len; i++) {
      cr_assert(xf[i] == (float)x[i], "d2f");
      cr_assert(y[i] == (double)xf[i], "f2d");
    }

    /* residual: r = F - Y, returns sum r^2 */
    be->ops->d2f(be->ctx, len, y0, yf);
    const double ss = be->ops->residual(be->ctx, len, xf, yf, y);
    long double ref_ss = 0.0L;
    for (int64_t i = 0; i < len; i++) {
      cr_assert(y[i] == (double)xf[i] - (double)yf[i], "residual r[%ld]", (long)i);
      ref_ss += (long double)y[i] * y[i];
    }
    cr_expect(fabs(ss - (double)ref_ss) <= TOL_VEC * (double)len * (double)ref_ss,
              "residual sum %.17g vs %.17g", ss, (double)ref_ss);
    cr_expect(be->ops->residual(be->ctx, len, xf, yf, y) == ss, "residual not deterministic");

    /* axpy_f */
    float *yf0 = malloc((size_t)len * sizeof(float));
    memcpy(yf0, yf, (size_t)len * sizeof(float));
    be->ops->axpy_f(be->ctx, len, -0.25f, xf, yf);
    for (int64_t i = 0; i < len; i++) cr_assert(yf[i] == yf0[i] + -0.25f * xf[i], "axpy_f");

    be->ops->free(be->ctx, x);
    be->ops->free(be->ctx, y);
    be->ops->free(be->ctx, xf);
    be->ops->free(be->ctx, yf);
    free(y0);
    free(want);
    free(yf0);
  }
}

Test(backend_cpu, gather_rows, .init = open_backend, .fini = close_backend) {
  const int64_t rows = 9, cols = 5, b = 6;
  float *src = balloc((size_t)(rows * cols) * sizeof(float));
  float *out = balloc((size_t)(b * cols) * sizeof(float));
  int64_t *idx = balloc((size_t)b * sizeof(int64_t));
  const int64_t pick[6] = {8, 0, 3, 3, 7, 1}; /* a repeat, the first and last rows */
  memcpy(idx, pick, sizeof pick);
  for (int64_t e = 0; e < rows * cols; e++) src[e] = (float)e;
  be->ops->gather_rows(be->ctx, b, cols, src, idx, out);
  for (int64_t i = 0; i < b; i++)
    for (int64_t j = 0; j < cols; j++)
      cr_expect(out[i * cols + j] == (float)(pick[i] * cols + j), "row %ld col %ld", (long)i,
                (long)j);
  be->ops->free(be->ctx, src);
  be->ops->free(be->ctx, out);
  be->ops->free(be->ctx, idx);
}

/* With a constant gradient, bias correction makes every Adam step lr g / (|g| + eps): each
 * weight moves by ~lr against the sign of its gradient, at t = 1 and at t = 2. */
Test(backend_cpu, adam_constant_gradient, .init = open_backend, .fini = close_backend) {
  const int64_t len = 50000;
  const double lr = 1e-2, eps = 1e-8;
  float *W = balloc((size_t)len * sizeof(float)), *g = balloc((size_t)len * sizeof(float));
  float *mom = balloc((size_t)len * sizeof(float)), *vel = balloc((size_t)len * sizeof(float));
  float *W0 = malloc((size_t)len * sizeof(float));
  fill_normal(W, (size_t)len, SEED, 901);
  fill_normal(g, (size_t)len, SEED, 902);
  memcpy(W0, W, (size_t)len * sizeof(float));
  for (int64_t t = 1; t <= 2; t++) {
    be->ops->adam(be->ctx, len, W, g, mom, vel, lr, 0.9, 0.999, eps, t);
    for (int64_t i = 0; i < len; i++) {
      if (fabsf(g[i]) < 1e-3f) continue; /* eps matters there */
      const double step = (double)W0[i] - (double)W[i];
      const double want = (double)t * lr * (g[i] > 0 ? 1.0 : -1.0);
      cr_assert(fabs(step - want) <= 1e-5 + 1e-4 * fabs(want),
                "t=%ld: W[%ld] moved %.9g, want %.9g", (long)t, (long)i, step, want);
    }
  }
  /* a zero gradient leaves W unchanged at t = 1 from zero moments */
  float *Wz = balloc(4 * sizeof(float)), *gz = balloc(4 * sizeof(float));
  float *mz = balloc(4 * sizeof(float)), *vz = balloc(4 * sizeof(float));
  Wz[0] = 1.5f;
  be->ops->adam(be->ctx, 4, Wz, gz, mz, vz, lr, 0.9, 0.999, eps, 1);
  cr_expect(Wz[0] == 1.5f && Wz[1] == 0.0f, "zero gradient moved W");
  void *bufs[] = {W, g, mom, vel, Wz, gz, mz, vz};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be->ctx, bufs[i]);
  free(W0);
}

/* ---- wiring of the sketch and factorization slots ---- */

Test(backend_cpu, sketch_slots_dispatch_by_kind, .init = open_backend, .fini = close_backend) {
  const int64_t n = 20, s = 80;
  problem p = make_problem(n, 9, 24, 1, SEED + 70);
  const sgn_sketch kinds[4] = {SGN_SKETCH_SRHT, SGN_SKETCH_GAUSSIAN, SGN_SKETCH_SRFT,
                               SGN_SKETCH_COUNTSKETCH};
  for (int t = 0; t < 4; t++) {
    const size_t wb = be->ops->sketch_work_bytes(be->ctx, p.dm, kinds[t], s);
    cr_expect_eq(wb, sgn_sketch_work_bytes_cpu(p.dm, kinds[t], s));
    void *w1 = balloc(wb + 1), *w2 = malloc(wb + 1);
    float *Y1 = balloc((size_t)(n * s) * sizeof(float));
    float *Y2 = calloc((size_t)(n * s), sizeof(float));
    be->ops->sketch(be->ctx, p.dm, kinds[t], s, 5, p.X, p.M, w1, Y1);
    if (kinds[t] == SGN_SKETCH_SRHT)
      sgn_sketch_srht_cpu(p.dm, s, 5, p.X, p.M, w2, Y2);
    else if (kinds[t] == SGN_SKETCH_GAUSSIAN)
      sgn_sketch_gaussian_cpu(p.dm, s, 5, p.X, p.M, w2, Y2);
    else if (kinds[t] == SGN_SKETCH_SRFT)
      sgn_sketch_srft_cpu(p.dm, s, 5, p.X, p.M, w2, Y2);
    else
      sgn_sketch_countsketch_cpu(p.dm, s, 5, p.X, p.M, w2, Y2);
    cr_expect(memcmp(Y1, Y2, (size_t)(n * s) * sizeof(float)) == 0, "kind %d", t);
    be->ops->free(be->ctx, w1);
    be->ops->free(be->ctx, Y1);
    free(w2);
    free(Y2);
  }
  free_problem(&p);
}

/* gram -> cholesky -> rtr_solve solves (G + lambda I) x = b; sketch_r gives R^T R = Y Y^T + lambda I */
Test(backend_cpu, factorization_slots, .init = open_backend, .fini = close_backend) {
  const int64_t n = 30, k = 2, N = n * k;
  const double lambda = 1e-3;
  problem p = make_problem(n, 6, 200, k, SEED + 80);
  double *G = balloc((size_t)(N * N) * sizeof(double));
  double *R = balloc((size_t)(N * N) * sizeof(double));
  double *x = balloc((size_t)N * sizeof(double)), *b = balloc((size_t)N * sizeof(double));
  be->ops->gram(be->ctx, p.dm, p.X, p.M, p.A, 1, p.work, G);
  memcpy(R, G, (size_t)(N * N) * sizeof(double));
  cr_assert_eq(be->ops->cholesky(be->ctx, N, R, lambda, NULL), 0, "G + lambda I not SPD?");
  fill_normal_d(b, N, 1001);
  memcpy(x, b, (size_t)N * sizeof(double));
  be->ops->rtr_solve(be->ctx, N, 1, R, x);
  double err = 0.0, scale = 0.0;
  for (int64_t a = 0; a < N; a++) {
    double acc = lambda * x[a];
    for (int64_t c = 0; c < N; c++) acc += G[a * N + c] * x[c];
    err = fmax(err, fabs(acc - b[a]));
    scale = fmax(scale, fabs(b[a]));
  }
  cr_expect(err <= 1e-8 * scale, "(G + lambda I) x - b: %.2e", err);

  const int64_t s = 4 * n;
  float *Y = balloc((size_t)(n * s) * sizeof(float));
  fill_normal(Y, (size_t)(n * s), SEED, 1002);
  const size_t wb = be->ops->sketch_r_work_bytes(be->ctx, n, s);
  void *w = balloc(wb + 1);
  double *Rq = balloc((size_t)(n * n) * sizeof(double));
  cr_assert_eq(be->ops->sketch_r(be->ctx, n, s, Y, lambda, w, Rq), 0);
  err = 0.0, scale = 0.0;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      double rtr = 0.0, yyt = (i == j) ? lambda : 0.0;
      for (int64_t l = 0; l < n; l++) rtr += Rq[l * n + i] * Rq[l * n + j];
      for (int64_t l = 0; l < s; l++) yyt += (double)Y[i * s + l] * Y[j * s + l];
      err = fmax(err, fabs(rtr - yyt));
      scale = fmax(scale, fabs(yyt));
    }
  cr_expect(err <= 1e-10 * scale, "R^T R vs Y Y^T + lambda I: %.2e", err);
  void *bufs[] = {G, R, x, b, Y, w, Rq};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->ops->free(be->ctx, bufs[i]);
  free_problem(&p);
}

/* ---- the sticky error ---- */

/* A scratch growth that cannot be met (gram's row blocks for n = 2^61 samples: 64 rows of 2^62
 * floats, more bytes than size_t counts, refused before the allocator is asked, so the test
 * means the same with or without ASan) sets the error slot; from then on ops return at entry,
 * leaving their outputs alone, and the process lives. gram touches none of its arrays before it
 * sizes the blocks, so the NULL arrays are never read. */
Test(backend_cpu, failed_scratch_growth_is_a_sticky_error, .init = open_backend,
     .fini = close_backend) {
  cr_assert_null(sgn_backend_error(be), "a fresh backend reports no error");
  problem p = make_problem(8, 3, 64, 1, SEED);
  be->ops->forward(be->ctx, p.dm, p.X, p.W, p.A, p.work, p.M, p.F);
  cr_assert_null(sgn_backend_error(be), "a forward that worked reports no error");

  const sgn_dims huge = {(int64_t)1 << 61, 1, 64, 1, 32}; /* chunked: no whole-mask expansion */
  be->ops->gram(be->ctx, huge, NULL, NULL, NULL, 0, NULL, NULL);
  const char *err = sgn_backend_error(be);
  cr_assert_not_null(err, "the failed growth left no error");
  cr_expect(strstr(err, "cpu backend") && strstr(err, "scratch"), "message: %s", err);
  cr_expect(strchr(err, '\n') == NULL, "one line: %s", err);

  /* later ops do nothing: outputs keep their sentinels, reductions give NaN */
  float F0[8];
  for (int i = 0; i < 8; i++) p.F[i] = F0[i] = -7.0f;
  be->ops->forward(be->ctx, p.dm, p.X, p.W, p.A, p.work, p.M, p.F);
  cr_expect(memcmp(p.F, F0, sizeof F0) == 0, "forward wrote F after the error");
  double x[4] = {1, 2, 3, 4}, y[4] = {5, 6, 7, 8};
  be->ops->axpy(be->ctx, 4, 2.0, x, y);
  cr_expect(y[0] == 5 && y[3] == 8, "axpy ran after the error");
  cr_expect(isnan(be->ops->dot(be->ctx, 4, x, y)), "dot returned a number after the error");
  cr_expect_null(be->ops->alloc(be->ctx, 64), "alloc succeeded after the error");
  cr_expect_neq(be->ops->cholesky(be->ctx, 1, x, 0.0, NULL), 0, "cholesky reported success");
  cr_expect_str_eq(sgn_backend_error(be), err, "the first error is kept");
  free_problem(&p);
}
