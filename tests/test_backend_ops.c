/* test_backend_ops.c — the products and ops of every backend, checked by properties, in the
 * spirit of ggml's test-backend-ops: each test runs on the CPU (the oracle) and on the GPU when
 * one answers (backends.h). Adjointness of J v and J^T g, agreement with an explicitly formed J
 * on tiny shapes, central differences of f, f == 0 bit for bit for a symmetric model (unchunked
 * and in chunks), the block structure of the Gram, the separate-outputs Gram blocks and their
 * product, the memory and vector ops, the factorizations, R^-1 and the preconditioner as two
 * products, and the long ops' early return on the stop flag. The CPU's products have two paths
 * (cpu/products.c): fused kernels for d <= 64 and k <= 16, GEMMs otherwise; the shape tables
 * hold shapes on both sides (d >= 66 or k >= 17 for the GEMM path: keep it so if those bounds
 * move), and further tests hold the paths to each other (zero input features), chunked runs to
 * unchunked ones, and the CPU's results to the thread count. Ops against their CPU twins, op by
 * op, are test_gpu_ops.c's.
 *
 * Tolerances: bounds from error analysis, never a relative error against a result that
 * cancellation can make small (error_bounds.h). A float32 sum of K terms in any order is within
 * gamma(K) = K u / (1 - K u) (u = 2^-24) of the exact sum, times the sum of the terms' absolute
 * values; so each product is held entry by entry to C_ROUND gamma(K) times the same product
 * of absolute values (|J| |v|, |J|^T |g|, |J| |J|^T), computed in float64. The bounds hold for
 * every BLAS kernel, thread count, chunk width and GPU reduction tree; the measured worst ratio
 * error / bound over the suite's cases is in brackets (OpenBLAS, Haswell to SkylakeX kernels).
 * C_ROUND     2: the counted roundings (error_bounds.h: d + m + 2 for J v and f, n + k + 2 for
 *             J^T g, d + 1 for the Gram) doubled, so one a kernel adds (a pre-scaled A, an extra
 *             conversion) never decides.
 * BOUND_JVP   C_ROUND gamma(d + m + 2) against |J| |v| (f: against m^-1/2 |X| |W|^T |A| with
 *             every neuron on, which a mask bit flipped at z ~ 0 stays within) [0.15 (f vs
 *             J W at d = 1), 0.07 (J v)].
 * BOUND_VJP   C_ROUND gamma(n + k + 2) against |J|^T |g| [0.12].
 * BOUND_GRAM  C_ROUND gamma(d + 1) against |J| |J|^T [0.18, at d = 1].
 * adjointness |<J v, g> - <v, J^T g>| <= BOUND_JVP <|J| |v|, |g|> + BOUND_VJP <|v|, |J|^T |g|>
 *             (the two are one number, S), plus gamma64 of each float64 dot's length times its
 *             sum |terms|: each side is the exact <J v, g> plus <e, g> with |e| entrywise within
 *             the product's bound. Against S, not |<J v, g>|: on n=40 d=70 m=97 k=2 the
 *             SkylakeX SGEMMs are off by 1.1e-5 of |<J v, g>| = 0.935 [0.017].
 * explicit J  each product against the float64 J: its own bound (the float64 sums are exact to
 *             gamma64(m d), below 1e-12 of the float32 bounds).
 * FD          central differences of f with eps = (float) eps, no kink crossed (checked), so
 *             f(W+)-f(W-) = J (W+ - W-) exactly; W+- round to float32, off from W +- eps V by
 *             u (|W| + 2 eps |V|) each, and each f by BOUND_JVP of its scale:
 *             |J v - fd| <= (u + BOUND_JVP) m^-1/2 |A|^T relu-free |X| (|W| + 2 eps |V|) / eps
 *             + BOUND_JVP |J| |v|.
 * paths, chunks  two results of one product (fused vs GEMM path, chunked vs unchunked): each
 *             within its bound of the exact one, so 2 x the bound, with K of the larger problem
 *             [7e-3].
 * blocks      the full Gram's diagonal blocks vs the (n, n) Gram: bit for bit on the CPU (one
 *             block rule for both, cpu/backend.c), 2 BOUND_GRAM elsewhere.
 * heads       gram_heads' float32 block c vs gram (full = 0) of head c's neurons as a model of
 *             their own, rounded to float32: bit for bit on every backend with K NULL (the same
 *             integer counts, the same one SGEMM for K at n below a row block, the same
 *             roundings); with K from the gemm op bit for bit for integer X (K exact), else
 *             2 BOUND_HEADS_GRAM (error_bounds.h: the Gram's roundings and the float32 store,
 *             each side) against |X| |X|^T o C / (m / k) [0: bit for bit with
 *             OpenBLAS 0.3.21's Prescott kernels and on the emulator, not assumed]. With a given
 *             K: the block is (float)(K_ij C_ij / (m / k)) from K's upper triangle, bit for bit.
 *             heads_symv on gram_heads vs J (J^T g) of a separate model: as
 *             gram_matches_products, with BOUND_HEADS_GRAM for the stored blocks and
 *             BOUND_HEADS_SYMV(n) against |G| |g| for the float32 sums [1.3e-3].
 * heads_symv  against a long double loop over the stored float32 G: BOUND_HEADS_SYMV(n) =
 *             C_ROUND gamma32(n + 1) against sum_j |G_c[i,j] in_j| + |lambda in_i| (in rounded
 *             to float32, a float32 sum of n products, the lambda term in float64)
 *             [0.073].
 * OFFDIAG_MAX off-diagonal / diagonal block Frobenius ratio, ~ 1/sqrt(m/4) at m = 512 [0.107]:
 *             statistics, not rounding; 0.5 still fails if the signs A_c o A_e were ignored (1).
 * vector ops  float64: a dot of len terms within gamma64(len) sum |x_i y_i| (got and the long
 *             double reference: 2x); axpy/xpby within gamma64(2) (|y| + |a x|) each side; the
 *             residual sum (nonnegative terms, r exact) within gamma64(len + 1) of the sum;
 *             conversions, r = F - Y, scal's one product and axpy_f's (-0.25 x exact, one
 *             rounding) exact.
 * adam        the step with a constant g is lr g / (|g| + eps) t: off from t lr sign(g) by
 *             t lr eps / |g|, plus float32 roundings of W (u |W| per step, 2 on the measured
 *             difference) and of the step (a few u of lr t): t lr (eps/|g| + 8u) + (t+2) u |W|.
 * factorizations  float64 Cholesky is backward stable: R^T R = G + lambda I + E with
 *             |E| <= gamma64(N + 1) |R|^T |R|, and the solve adds gamma64(3N + 1) |R|^T |R| |x|
 *             to the residual; the test's own float64 sums add gamma64(N + 1) (|G| + lambda) |x|
 *             and gamma64(s + 1) |Y| |Y|^T; C_ROUND on top [3e-3, 6e-3]. The sketch's R at
 *             each precision adds its Gram's sketch_gram_bound(p, s) |Y| |Y|^T (error_bounds.h:
 *             Y rounded by tf32 / bf16, float32 panel sums, float64 between panels).
 * r_inverse   X = R^-1 in float64 (error_bounds.h): X R - I and R X - I within
 *             BOUND_R_INVERSE(N) kappa^2 and one of them within BOUND_R_INVERSE(N) kappa,
 *             kappa = ||R||inf ||X||inf, N up to 300, kappa up to 6e4 [0.053 (N = 1), 6e-3 above];
 *             inverted twice, R within (N + 1) BOUND_R_INVERSE(N) kappa^2 ||R||inf [2e-5].
 * rinv_apply  against rtr_solve entry by entry: BOUND_RINV_APPLY(N) = C_ROUND gamma64(2 N)
 *             against |X| |X|^T |v| (two float64 sums of N) plus X's error and rtr_solve's,
 *             normwise, as the test says [2.2e-4].
 * MASK_EDGE   a mask bit may differ from the float64 sign of z only where |z| is within float32
 *             rounding of 0: |z| <= 1e-5 |x| |w| (gamma(d) for d <= 160). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backends.h"
#include "error_bounds.h"
#include "linalg.h"
#include "mask_check.h"
#include "rng.h"
#include "sketch.h"

/* C_ROUND, BOUND_JVP, BOUND_VJP, BOUND_GRAM: error_bounds.h */
#define OFFDIAG_MAX 0.5
#define MASK_EDGE 1e-5

#define SEED 20240601u

/* "[cpu] " before each message names the backend */
#define ON "[%s] "
#define BE be->ops->name

/* ---- a random problem on the backend, with host copies ---- */

typedef struct problem {
  sgn_dims dm;              /* unchunked */
  float *X, *W, *A, *F;     /* host: X (n, d), W (m, d), A (m, k) +-1, the backend's F (n, k) */
  uint32_t *M;              /* host: the backend's mask, (n, SGN_MASK_WORDS(m)) */
  float *dX, *dW, *dA, *dF; /* backend: the same */
  uint32_t *dM;
  float *dwork; /* backend: sgn_work_floats(dm) */
} problem;

static size_t mask_bytes(int64_t n, int64_t m) {
  return (size_t)(n * SGN_MASK_WORDS(m)) * sizeof(uint32_t);
}

static float *fnormal(size_t len, uint64_t seed, uint64_t stream) {
  float *x = host_alloc(len * sizeof(float));
  for (size_t i = 0; i < len; i++) x[i] = (float)sgn_rng_normal(seed, stream, i);
  return x;
}

static float *fsigns(size_t len, uint64_t seed, uint64_t stream) {
  float *x = host_alloc(len * sizeof(float));
  for (size_t i = 0; i < len; i++) x[i] = sgn_rng_sign(seed, stream, i);
  return x;
}

/* uploads W and A, runs the forward pass, downloads M and F */
static void forward(problem *p) {
  const sgn_dims dm = p->dm;
  be->ops->upload(be->ctx, p->dW, p->W, (size_t)(dm.m * dm.d) * sizeof(float));
  be->ops->upload(be->ctx, p->dA, p->A, (size_t)(dm.m * dm.k) * sizeof(float));
  be->ops->forward(be->ctx, dm, p->dX, p->dW, p->dA, p->dwork, p->dM, p->dF);
  download(p->M, p->dM, mask_bytes(dm.n, dm.m));
  download(p->F, p->dF, (size_t)(dm.n * dm.k) * sizeof(float));
}

/* Random X, W, A (Gaussian init) and the forward pass. */
static problem make_problem(int64_t n, int64_t d, int64_t m, int64_t k, uint64_t seed) {
  problem p = {.dm = {n, d, m, k, 0}};
  p.X = fnormal((size_t)(n * d), seed, SGN_STREAM_SYNTH_X);
  p.W = fnormal((size_t)(m * d), seed, SGN_STREAM_INIT_W);
  p.A = fsigns((size_t)(m * k), seed, SGN_STREAM_INIT_A);
  p.M = host_alloc(mask_bytes(n, m));
  p.F = host_alloc((size_t)(n * k) * sizeof(float));
  p.dX = dev_from(p.X, (size_t)(n * d) * sizeof(float));
  p.dW = dev_alloc((size_t)(m * d) * sizeof(float));
  p.dA = dev_alloc((size_t)(m * k) * sizeof(float));
  p.dM = dev_alloc(mask_bytes(n, m));
  p.dF = dev_alloc((size_t)(n * k) * sizeof(float));
  p.dwork = dev_alloc(sgn_work_floats(p.dm) * sizeof(float));
  forward(&p);
  return p;
}

/* Makes the model symmetric (W rows r + m/2 copy rows r, A rows r + m/2 negate rows r) and
 * reruns the forward pass. */
static void symmetrize(problem *p) {
  const int64_t h = p->dm.m / 2, d = p->dm.d, k = p->dm.k;
  memcpy(p->W + h * d, p->W, (size_t)(h * d) * sizeof(float));
  for (int64_t e = 0; e < h * k; e++) p->A[h * k + e] = -p->A[e];
  forward(p);
}

/* out = J v on the backend, for host v (m, d) and host out (n, k); dm may chunk */
static void jvp(const problem *p, sgn_dims dm, const uint32_t *dM, const float *V, float *dwork,
                float *out) {
  const size_t md = (size_t)(dm.m * dm.d) * sizeof(float),
               nk = (size_t)(dm.n * dm.k) * sizeof(float);
  float *dV = dev_from(V, md), *dout = dev_alloc(nk);
  be->ops->jvp(be->ctx, dm, p->dX, dM, p->dA, dV, dwork, dout);
  download(out, dout, nk);
  dev_free(dV), dev_free(dout);
}

/* out = J^T g on the backend, for host g (n, k) and host out (m, d) */
static void vjp(const problem *p, sgn_dims dm, const uint32_t *dM, const float *g, float *dwork,
                float *out) {
  const size_t md = (size_t)(dm.m * dm.d) * sizeof(float),
               nk = (size_t)(dm.n * dm.k) * sizeof(float);
  float *dg = dev_from(g, nk), *dout = dev_alloc(md);
  be->ops->vjp(be->ctx, dm, p->dX, dM, p->dA, dg, dwork, dout);
  download(out, dout, md);
  dev_free(dg), dev_free(dout);
}

/* G (host) = the backend's Gram, full or the (n, n) block */
static void gram(const problem *p, sgn_dims dm, int full, float *dwork, double *G) {
  const int64_t N = full ? dm.n * dm.k : dm.n;
  double *dG = dev_alloc((size_t)(N * N) * sizeof(double));
  be->ops->gram(be->ctx, dm, p->dX, p->dM, p->dA, full, dwork, dG);
  download(G, dG, (size_t)(N * N) * sizeof(double));
  dev_free(dG);
}

static void gram_diag(const problem *p, sgn_dims dm, double *diag) {
  double *dd = dev_alloc((size_t)dm.n * sizeof(double));
  be->ops->gram_diag(be->ctx, dm, p->dX, p->dM, dd);
  download(diag, dd, (size_t)dm.n * sizeof(double));
  dev_free(dd);
}

static double *dalloc(size_t len) { return host_alloc(len * sizeof(double)); }
static float *falloc(size_t len) { return host_alloc(len * sizeof(float)); }

/* |v| as a float32 array (host) */
static float *fabs_of(size_t len, const float *v) {
  float *a = falloc(len);
  for (size_t i = 0; i < len; i++) a[i] = fabsf(v[i]);
  return a;
}

/* ---- shapes ---- */

typedef struct shape {
  int64_t n, d, m, k;
} shape;

typedef struct shape_on {
  shape s;
  sgn_device dev;
} shape_on;

/* a shape at a product precision (backend.h set_product_precision) */
typedef struct shape_prec_on {
  shape s;
  sgn_precision prec;
  sgn_device dev;
} shape_prec_on;

#define SHAPE_FMT "n=%ld d=%ld m=%ld k=%ld"
#define SHAPE_ARGS(s) (long)(s)->n, (long)(s)->d, (long)(s)->m, (long)(s)->k

/* a seed per shape, so each parameterized case draws its own inputs */
static uint64_t shape_seed(const shape *s) {
  return SEED + (uint64_t)(s->n * 1000003 + s->d * 1009 + s->m * 17 + s->k);
}

/* Chunk widths the adjointness and symmetric-model tests run at: none, a width whose half (11)
 * divides no half of their shapes, the smallest (one neuron per half), an odd one, 64. */
static const int64_t chunk_widths[] = {0, 22, 2, 7, 64};
#define NCHUNK (sizeof chunk_widths / sizeof *chunk_widths)

static sgn_dims with_chunks(sgn_dims dm, int64_t mc) {
  dm.mc = mc;
  return dm;
}

/* ---- adjointness ---- */

/* fused: odd m, halves off the word boundary (m = 202); GEMM: d > 64, k > 16; the GPU suite's
 * product shapes (m = 1000, n = 1) */
static const shape adj_shapes[] = {
    {37, 13, 50, 3},    {64, 7, 129, 1}, {5, 1, 2, 2},    {33, 21, 97, 10},
    {200, 31, 300, 4},  {50, 4, 202, 1}, {40, 70, 97, 2}, {30, 3, 66, 17},
    {300, 31, 1000, 4}, {1, 3, 2, 1},    {70, 5, 33, 9},
};

ParameterizedTestParameters(backend_ops, adjointness) { BACKEND_PARAMS(shape_on, adj_shapes); }

/* <J v, g> = <v, J^T g> within the bound of the table, at every chunk width */
ParameterizedTest(const shape_on *c, backend_ops, adjointness, .fini = backend_close) {
  backend_open(c->dev);
  const shape *s = &c->s;
  const uint64_t seed = shape_seed(s);
  problem p = make_problem(s->n, s->d, s->m, s->k, seed);
  const size_t nk = (size_t)(s->n * s->k), md = (size_t)(s->m * s->d);
  const float *V = fnormal(md, seed, 101), *g = fnormal(nk, seed, 102);
  float *Jv = falloc(nk), *JTg = falloc(md);
  double *aJv = dalloc(nk);
  abs_jvp(p.dm, p.X, p.M, p.A, fabs_of(md, V), aJv);
  double S = 0.0;
  for (size_t e = 0; e < nk; e++) S += aJv[e] * fabs((double)g[e]);

  for (size_t ci = 0; ci < NCHUNK; ci++) {
    const sgn_dims dc = with_chunks(p.dm, chunk_widths[ci]);
    float *dwork = dev_alloc(sgn_work_floats(dc) * sizeof(float));
    jvp(&p, dc, p.dM, V, dwork, Jv);
    vjp(&p, dc, p.dM, g, dwork, JTg);
    dev_free(dwork);
    double lhs = 0.0, rhs = 0.0, abs_l = 0.0, abs_r = 0.0;
    for (size_t e = 0; e < nk; e++) {
      lhs += (double)Jv[e] * g[e];
      abs_l += fabs((double)Jv[e] * g[e]);
    }
    for (size_t e = 0; e < md; e++) {
      rhs += (double)V[e] * JTg[e];
      abs_r += fabs((double)V[e] * JTg[e]);
    }
    const double bound = (BOUND_JVP(p.dm) + BOUND_VJP(p.dm)) * S + gamma64((double)nk) * abs_l +
                         gamma64((double)md) * abs_r;
    cr_expect(fabs(lhs - rhs) <= bound,
              ON SHAPE_FMT
              " mc=%ld: <Jv,g>=%.9g <v,J^T g>=%.9g: |diff| %.3g > bound %.3g "
              "(S = %.3g)",
              BE, SHAPE_ARGS(s), (long)dc.mc, lhs, rhs, fabs(lhs - rhs), bound, S);
  }
}

/* ---- agreement with an explicit J ---- */

static const shape tiny_shapes[] = {
    {5, 3, 6, 2}, {4, 2, 3, 3},  {7, 5, 8, 1},  {3, 4, 1, 2},
    {6, 1, 9, 4}, {4, 66, 5, 2}, {3, 2, 7, 17}, /* the GEMM path */
};

/* J (n k, m d) in float64 from its definition: row (i, c) is u_ic (x) x_i with
 * u_ic = m^-1/2 A[:, c] o 1[z_i > 0], the mask taken from the backend's bit mask. */
static double *explicit_jacobian(const problem *p) {
  const int64_t n = p->dm.n, d = p->dm.d, m = p->dm.m, k = p->dm.k;
  double *J = dalloc((size_t)(n * k * m * d));
  const double s = 1.0 / sqrt((double)m);
  for (int64_t i = 0; i < n; i++)
    for (int64_t c = 0; c < k; c++)
      for (int64_t r = 0; r < m; r++) {
        const double u = mbit(p->M, m, i, r) ? s * p->A[r * k + c] : 0.0;
        for (int64_t l = 0; l < d; l++) J[(i * k + c) * (m * d) + r * d + l] = u * p->X[i * d + l];
      }
  return J;
}

/* rows x cols matrix B (float64) times the float vector v, or with absolute values */
static void matvec(int64_t rows, int64_t cols, const double *B, const float *v, int absolute,
                   double *out) {
  for (int64_t a = 0; a < rows; a++) {
    double acc = 0.0;
    for (int64_t b = 0; b < cols; b++)
      acc += absolute ? fabs(B[a * cols + b] * v[b]) : B[a * cols + b] * v[b];
    out[a] = acc;
  }
}

ParameterizedTestParameters(backend_ops, explicit_jacobian) {
  BACKEND_PARAMS(shape_on, tiny_shapes);
}

ParameterizedTest(const shape_on *c, backend_ops, explicit_jacobian, .fini = backend_close) {
  backend_open(c->dev);
  const shape *s = &c->s;
  const int64_t n = s->n, d = s->d, m = s->m, k = s->k, N = n * k, P = m * d;
  const uint64_t seed = shape_seed(s);
  problem p = make_problem(n, d, m, k, seed);
  const sgn_dims dm = p.dm;
  double *J = explicit_jacobian(&p);
  double *want = dalloc((size_t)(N * N + n * m + P)), *scale = dalloc((size_t)(N * N + P));

  /* the mask bits are 1[X W^T > 0], and these seeds keep every z off float32 rounding of 0 */
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < m; r++) {
      double z = 0.0, xw = 0.0;
      for (int64_t l = 0; l < d; l++) {
        z += (double)p.X[i * d + l] * p.W[r * d + l];
        xw += fabs((double)p.X[i * d + l] * p.W[r * d + l]);
      }
      cr_assert(fabs(z) > MASK_EDGE * xw, ON SHAPE_FMT ": z (%ld, %ld) = %g near 0: pick a seed",
                BE, SHAPE_ARGS(s), (long)i, (long)r, z);
      cr_expect_eq(mbit(p.M, m, i, r), z > 0.0, ON SHAPE_FMT ": mask bit (%ld, %ld), z = %g", BE,
                   SHAPE_ARGS(s), (long)i, (long)r, z);
    }

  /* f is 1-homogeneous in W: f = J(W) vec(W) */
  matvec(N, P, J, p.W, 0, want);
  abs_jvp(dm, p.X, NULL, p.A, fabs_of((size_t)P, p.W), scale);
  double r = worst_ratio_fd((size_t)N, p.F, want, scale, BOUND_JVP(dm));
  cr_expect(r <= 1.0, ON SHAPE_FMT ": F != J W: %.3g of the bound", BE, SHAPE_ARGS(s), r);

  /* J v */
  const float *V = fnormal((size_t)P, seed, 201);
  float *out = falloc((size_t)N);
  jvp(&p, dm, p.dM, V, p.dwork, out);
  matvec(N, P, J, V, 0, want);
  matvec(N, P, J, V, 1, scale);
  r = worst_ratio_fd((size_t)N, out, want, scale, BOUND_JVP(dm));
  cr_expect(r <= 1.0, ON SHAPE_FMT ": J v: %.3g of the bound", BE, SHAPE_ARGS(s), r);

  /* J^T g */
  const float *g = fnormal((size_t)N, seed, 202);
  float *JTg = falloc((size_t)P);
  vjp(&p, dm, p.dM, g, p.dwork, JTg);
  for (int64_t col = 0; col < P; col++) {
    double acc = 0.0, aacc = 0.0;
    for (int64_t row = 0; row < N; row++) {
      acc += J[row * P + col] * g[row];
      aacc += fabs(J[row * P + col] * g[row]);
    }
    want[col] = acc, scale[col] = aacc;
  }
  r = worst_ratio_fd((size_t)P, JTg, want, scale, BOUND_VJP(dm));
  cr_expect(r <= 1.0, ON SHAPE_FMT ": J^T g: %.3g of the bound", BE, SHAPE_ARGS(s), r);

  /* G = J J^T, full and the (n, n) block, and its diagonal, against |J| |J|^T */
  double *JJt = dalloc((size_t)(N * N)), *aJJt = dalloc((size_t)(N * N));
  for (int64_t a = 0; a < N; a++)
    for (int64_t b = 0; b < N; b++) {
      double acc = 0.0, aacc = 0.0;
      for (int64_t col = 0; col < P; col++) {
        acc += J[a * P + col] * J[b * P + col];
        aacc += fabs(J[a * P + col] * J[b * P + col]);
      }
      JJt[a * N + b] = acc, aJJt[a * N + b] = aacc;
    }
  double *G = dalloc((size_t)(N * N));
  gram(&p, dm, 1, p.dwork, G);
  r = worst_ratio((size_t)(N * N), G, JJt, aJJt, BOUND_GRAM(dm));
  cr_expect(r <= 1.0, ON SHAPE_FMT ": full gram: %.3g of the bound", BE, SHAPE_ARGS(s), r);

  double *G0 = dalloc((size_t)(n * n)), *diag = dalloc((size_t)n);
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      want[i * n + j] = JJt[(i * k) * N + j * k];
      scale[i * n + j] = aJJt[(i * k) * N + j * k];
    }
  gram(&p, dm, 0, p.dwork, G0);
  r = worst_ratio((size_t)(n * n), G0, want, scale, BOUND_GRAM(dm));
  cr_expect(r <= 1.0, ON SHAPE_FMT ": gram full=0: %.3g of the bound", BE, SHAPE_ARGS(s), r);
  for (int64_t i = 0; i < n; i++) want[i] = JJt[(i * k) * N + i * k], scale[i] = want[i];
  gram_diag(&p, dm, diag);
  r = worst_ratio((size_t)n, diag, want, scale, BOUND_GRAM(dm));
  cr_expect(r <= 1.0, ON SHAPE_FMT ": gram_diag: %.3g of the bound", BE, SHAPE_ARGS(s), r);
}

/* ---- the product precision (backend.h set_product_precision) ---- */

/* F (n, k) = m^-1/2 relu(X W^T) A in float64 */
static void relu_forward64(sgn_dims dm, const float *X, const float *W, const float *A, double *F) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, k = dm.k;
  const double s = 1.0 / sqrt((double)m);
  for (int64_t i = 0; i < n; i++) {
    for (int64_t c = 0; c < k; c++) F[i * k + c] = 0.0;
    for (int64_t r = 0; r < m; r++) {
      double z = 0.0;
      for (int64_t l = 0; l < d; l++) z += (double)X[i * d + l] * W[r * d + l];
      for (int64_t c = 0; c < k && z > 0.0; c++) F[i * k + c] += s * z * A[r * k + c];
    }
  }
}

/* out (cols) = B^T v for B (rows, cols) float64, or |B|^T |v| */
static void matvec_t(int64_t rows, int64_t cols, const double *B, const float *v, int absolute,
                     double *out) {
  for (int64_t b = 0; b < cols; b++) {
    double acc = 0.0;
    for (int64_t a = 0; a < rows; a++)
      acc += absolute ? fabs(B[a * cols + b] * v[a]) : B[a * cols + b] * v[a];
    out[b] = acc;
  }
}

/* The fused path (d <= 64, k <= 16) and the GEMM path, k = 1 and k > 1, m with halves off the
 * mask words (202) */
static const shape prec_shapes[] = {
    {37, 13, 50, 3}, {7, 5, 8, 1}, {40, 70, 64, 2}, {30, 66, 202, 1}, {33, 4, 130, 17},
};

/* every case at tf32 and bf16 only (fp32 is the other tests') */
ParameterizedTestParameters(backend_ops, products_at_each_product_precision) {
  const size_t ns = sizeof prec_shapes / sizeof *prec_shapes, N = TEST_NDEVICES * ns * 2;
  shape_prec_on *p = cr_malloc(N * sizeof *p);
  cr_assert_not_null(p);
  for (size_t b = 0; b < TEST_NDEVICES; b++)
    for (size_t i = 0; i < ns; i++)
      for (size_t q = 0; q < 2; q++)
        p[(b * ns + i) * 2 + q] = (shape_prec_on){
            prec_shapes[i], q ? SGN_PRECISION_BF16 : SGN_PRECISION_TF32, test_devices[b]};
  return cr_make_param_array(shape_prec_on, p, N, backend_params_free);
}

/* forward, J v and J^T g at tf32 and bf16, unchunked and in chunks: each within its float32
 * bound (error_bounds.h) of the float64 product of the rounded operands (X, W, V rounded; J^T g's
 * coefficients b = M o (g A^T) rounded: for k = 1 b = +-g, so g rounded, for k > 1 one more
 * rounding u of b), and within product_precision_bound of the float64 product of the unrounded
 * ones; J v and J^T g on the mask the backend's forward wrote at that precision. */
ParameterizedTest(const shape_prec_on *c, backend_ops, products_at_each_product_precision,
                  .fini = backend_close) {
  backend_open(c->dev);
  cr_assert_eq(sgn_backend_set_product_precision(be, c->prec), 0);
  const shape *s = &c->s;
  const sgn_precision q = c->prec;
  const char *prec = sgn_name(SGN_NAMES_PRECISION, q);
  const int64_t n = s->n, d = s->d, m = s->m, k = s->k, N = n * k, P = m * d;
  const uint64_t seed = shape_seed(s) + 17;
  problem p = make_problem(n, d, m, k, seed); /* its forward at q: p.M, p.F */
  const sgn_dims dm = p.dm;
  const double u = sgn_precision_unit_roundoff(q);
  const float *V = fnormal((size_t)P, seed, 201), *g = fnormal((size_t)N, seed, 202);
  problem pr = p; /* the rounded operands, the backend's mask */
  pr.X = rounded_copy((size_t)(n * d), p.X, q);
  float *Wr = rounded_copy((size_t)P, p.W, q), *Vr = rounded_copy((size_t)P, V, q);
  float *gr = rounded_copy((size_t)N, g, q);
  double *J = explicit_jacobian(&p), *Jr = explicit_jacobian(&pr);
  double *F64 = dalloc((size_t)N), *Fr64 = dalloc((size_t)N), *aF = dalloc((size_t)N);
  const size_t NP = (size_t)(N > P ? N : P);
  double *aFr = dalloc((size_t)N), *want = dalloc(NP), *scale = dalloc(NP);
  relu_forward64(dm, p.X, p.W, p.A, F64);
  relu_forward64(dm, pr.X, Wr, p.A, Fr64);
  abs_jvp(dm, p.X, NULL, p.A, fabs_of((size_t)P, p.W), aF);
  abs_jvp(dm, pr.X, NULL, p.A, fabs_of((size_t)P, Wr), aFr);
  float *F = falloc((size_t)N), *Jv = falloc((size_t)N), *JTg = falloc((size_t)P);
  float *dF = dev_alloc((size_t)N * sizeof(float));
  uint32_t *dM = dev_alloc(mask_bytes(n, m));

  const int64_t widths[] = {0, 22};
  for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++) {
    const sgn_dims dc = with_chunks(dm, widths[wi]);
    const long mc = (long)dc.mc;
    float *dwork = dev_alloc(sgn_work_floats(dc) * sizeof(float));
    be->ops->forward(be->ctx, dc, p.dX, p.dW, p.dA, dwork, dM, dF);
    download(F, dF, (size_t)N * sizeof(float));
    double r = worst_ratio_fd((size_t)N, F, Fr64, aFr, BOUND_JVP(dm));
    cr_expect(r <= 1.0, ON SHAPE_FMT " mc=%ld %s: F, rounded operands: %.3g of the bound", BE,
              SHAPE_ARGS(s), mc, prec, r);
    r = worst_ratio_fd((size_t)N, F, F64, aF, product_precision_bound(q, BOUND_JVP(dm)));
    cr_expect(r <= 1.0, ON SHAPE_FMT " mc=%ld %s: F: %.3g of the bound", BE, SHAPE_ARGS(s), mc,
              prec, r);

    jvp(&p, dc, p.dM, V, dwork, Jv);
    matvec(N, P, Jr, Vr, 0, want), matvec(N, P, Jr, Vr, 1, scale);
    r = worst_ratio_fd((size_t)N, Jv, want, scale, BOUND_JVP(dm));
    cr_expect(r <= 1.0, ON SHAPE_FMT " mc=%ld %s: J v, rounded operands: %.3g of the bound", BE,
              SHAPE_ARGS(s), mc, prec, r);
    matvec(N, P, J, V, 0, want), matvec(N, P, J, V, 1, scale);
    r = worst_ratio_fd((size_t)N, Jv, want, scale, product_precision_bound(q, BOUND_JVP(dm)));
    cr_expect(r <= 1.0, ON SHAPE_FMT " mc=%ld %s: J v: %.3g of the bound", BE, SHAPE_ARGS(s), mc,
              prec, r);

    vjp(&p, dc, p.dM, g, dwork, JTg);
    matvec_t(N, P, Jr, k == 1 ? gr : g, 0, want), matvec_t(N, P, Jr, k == 1 ? gr : g, 1, scale);
    const double b_round = k == 1 ? 0.0 : u; /* b's own rounding, for k > 1 */
    r = worst_ratio_fd((size_t)P, JTg, want, scale, b_round + BOUND_VJP(dm) * (1 + b_round));
    cr_expect(r <= 1.0, ON SHAPE_FMT " mc=%ld %s: J^T g, rounded operands: %.3g of the bound", BE,
              SHAPE_ARGS(s), mc, prec, r);
    matvec_t(N, P, J, g, 0, want), matvec_t(N, P, J, g, 1, scale);
    r = worst_ratio_fd((size_t)P, JTg, want, scale, product_precision_bound(q, BOUND_VJP(dm)));
    cr_expect(r <= 1.0, ON SHAPE_FMT " mc=%ld %s: J^T g: %.3g of the bound", BE, SHAPE_ARGS(s), mc,
              prec, r);
    dev_free(dwork);
  }
  dev_free(dF), dev_free(dM);
  void *copies[] = {pr.X, Wr, Vr, gr}; /* rounded_copy's; host_alloc's go at backend_close */
  for (size_t i = 0; i < sizeof copies / sizeof *copies; i++) free(copies[i]);
}

/* fp32 is the default and what the other precisions go back to: forward, J v and J^T g give
 * the same bits on a fresh backend, after set_product_precision(fp32), and after tf32 then
 * fp32 again. */
ParameterizedTestParameters(backend_ops, product_precision_fp32_is_the_default) { DEVICE_PARAMS(); }

ParameterizedTest(const on_device *c, backend_ops, product_precision_fp32_is_the_default,
                  .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 40, m = 64, k = 2, N = n * k;
  const int64_t dims[2] = {70, 6}; /* the GEMM path and the fused one */
  const char *const runs[3] = {"default", "fp32 set", "fp32 after tf32"};
  const char *const ops[3] = {"F", "J v", "J^T g"};
  for (int t = 0; t < 2; t++) {
    problem p = make_problem(n, dims[t], m, k, SEED + 71 + (uint64_t)t);
    const size_t len[3] = {(size_t)N, (size_t)N, (size_t)(m * dims[t])};
    const float *V = fnormal(len[2], SEED, 203), *g = fnormal((size_t)N, SEED, 204);
    float *out[3][3];
    for (int run = 0; run < 3; run++) {
      if (run == 2) { /* a forward at tf32 in between */
        cr_assert_eq(sgn_backend_set_product_precision(be, SGN_PRECISION_TF32), 0);
        forward(&p);
      }
      if (run) cr_assert_eq(sgn_backend_set_product_precision(be, SGN_PRECISION_FP32), 0);
      forward(&p);
      for (int o = 0; o < 3; o++) out[run][o] = falloc(len[o]);
      memcpy(out[run][0], p.F, len[0] * sizeof(float));
      jvp(&p, p.dm, p.dM, V, p.dwork, out[run][1]);
      vjp(&p, p.dm, p.dM, g, p.dwork, out[run][2]);
    }
    for (int run = 1; run < 3; run++)
      for (int o = 0; o < 3; o++)
        cr_expect(memcmp(out[run][o], out[0][o], len[o] * sizeof(float)) == 0,
                  ON "d=%ld, %s: %s differs from the default's", BE, (long)dims[t], runs[run],
                  ops[o]);
  }
}

/* ---- finite differences ---- */

ParameterizedTestParameters(backend_ops, jvp_matches_central_differences) { DEVICE_PARAMS(); }

ParameterizedTest(const on_device *c, backend_ops, jvp_matches_central_differences,
                  .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 6, d = 4, m = 10, k = 2, P = m * d;
  problem p = make_problem(n, d, m, k, SEED + 30);
  const float *V = fnormal((size_t)P, SEED, 301);

  /* f is linear between kinks: keep eps below the nearest one, min_ir |z_ir| / |<v_r, x_i>| */
  double ratio = INFINITY;
  for (int64_t i = 0; i < n; i++)
    for (int64_t r = 0; r < m; r++) {
      double pv = 0.0, z = 0.0;
      for (int64_t l = 0; l < d; l++) pv += (double)p.X[i * d + l] * V[r * d + l];
      for (int64_t l = 0; l < d; l++) z += (double)p.X[i * d + l] * p.W[r * d + l];
      ratio = fmin(ratio, fabs(z) / fabs(pv));
    }
  const float eps = (float)fmin(1e-2, 0.5 * ratio);
  cr_assert(eps >= 1e-3f, "this seed puts a kink within %.2e; pick another seed", ratio);

  float *Wp = falloc((size_t)P), *Wm = falloc((size_t)P), *Wa = falloc((size_t)P);
  for (int64_t e = 0; e < P; e++) {
    Wp[e] = p.W[e] + eps * V[e];
    Wm[e] = p.W[e] - eps * V[e];
    Wa[e] = fabsf(p.W[e]) + 2.0f * eps * fabsf(V[e]);
  }
  const size_t nk = (size_t)(n * k), mb = mask_bytes(n, m);
  uint32_t *dZ = dev_alloc(mb);
  float *dF = dev_alloc(nk * sizeof(float));
  float *Fp = falloc(nk), *Fm = falloc(nk);
  uint32_t *Z = host_alloc(mb);
  const float *Ws[2] = {Wp, Wm};
  float *Fs[2] = {Fp, Fm};
  for (int t = 0; t < 2; t++) {
    float *dWt = dev_from(Ws[t], (size_t)P * sizeof(float));
    be->ops->forward(be->ctx, p.dm, p.dX, dWt, p.dA, p.dwork, dZ, dF);
    download(Fs[t], dF, nk * sizeof(float));
    download(Z, dZ, mb);
    cr_assert(memcmp(Z, p.M, mb) == 0, ON "a kink was crossed", BE);
  }
  float *Jv = falloc(nk);
  jvp(&p, p.dm, p.dM, V, p.dwork, Jv);
  double fd[12], scale[12], aJv[12];
  for (size_t e = 0; e < nk; e++) fd[e] = ((double)Fp[e] - (double)Fm[e]) / (2.0 * (double)eps);
  abs_jvp(p.dm, p.X, NULL, p.A, Wa, scale);
  abs_jvp(p.dm, p.X, p.M, p.A, fabs_of((size_t)P, V), aJv);
  for (size_t e = 0; e < nk; e++)
    scale[e] = (U32 + BOUND_JVP(p.dm)) * scale[e] / (double)eps + BOUND_JVP(p.dm) * aJv[e];
  const double r = worst_ratio_fd(nk, Jv, fd, scale, 1.0);
  cr_expect(r <= 1.0, ON "J v vs central differences (eps %.2e): %.3g of the bound", BE,
            (double)eps, r);
}

/* A diverged weight must show in f, not vanish behind the relu, on either path (d = 3, 70). */
ParameterizedTestParameters(backend_ops, forward_propagates_nan) { DEVICE_PARAMS(); }

ParameterizedTest(const on_device *c, backend_ops, forward_propagates_nan, .fini = backend_close) {
  backend_open(c->dev);
  const int64_t dims[2] = {3, 70};
  for (int t = 0; t < 2; t++) {
    problem p = make_problem(4, dims[t], 6, 2, SEED + 35);
    p.W[0] = NAN; /* row 0 of W: z_i0 is NaN for every sample */
    forward(&p);
    for (int64_t e = 0; e < 4 * 2; e++)
      cr_expect(isnan(p.F[e]), ON "d=%ld: F[%ld] = %g", BE, (long)dims[t], (long)e, p.F[e]);
    for (int64_t i = 0; i < 4; i++)
      cr_expect(mbit(p.M, 6, i, 0) == 0, ON "d=%ld: mask bit of a NaN z is set", BE, (long)dims[t]);
  }
}

/* ---- symmetric model ---- */

/* Includes shapes where OpenBLAS threads, where the GEMM path's forward needs several row blocks
 * of Z (600 x 8192 > 4M floats), the smallest pair m = 2, and halves that do not start on a mask
 * word (m = 130, 202; m = 50 puts the second half at an offset not 16-byte aligned), on the
 * fused path (d <= 64, k <= 16) and on the GEMM path; {200, 10, 4096, 2} from the GPU suite. */
static const shape sym_shapes[] = {
    {37, 13, 50, 3},  {1, 3, 2, 1},         {129, 64, 1000, 10}, {600, 10, 8192, 2},
    {64, 7, 130, 1},  {100, 4, 202, 1},     {600, 70, 8192, 2},  {50, 70, 202, 2},
    {33, 3, 202, 17}, {129, 100, 1000, 10}, {200, 10, 4096, 2},
};

ParameterizedTestParameters(backend_ops, symmetric_model_is_exactly_zero) {
  BACKEND_PRECISION_PARAMS(shape_prec_on, sym_shapes);
}

/* Mirrored halves of W with negated halves of A, at every chunk width and product precision
 * (the roundings are deterministic and odd): f == 0 and J W == 0 bit for bit, the mask's halves
 * equal, J^T g exactly antisymmetric. */
ParameterizedTest(const shape_prec_on *c, backend_ops, symmetric_model_is_exactly_zero,
                  .fini = backend_close, .timeout = 120) {
  backend_open(c->dev);
  cr_assert_eq(sgn_backend_set_product_precision(be, c->prec), 0);
  const shape *s = &c->s;
  const int64_t n = s->n, d = s->d, m = s->m, k = s->k, h = m / 2;
  const size_t nk = (size_t)(n * k), md = (size_t)(m * d), mb = mask_bytes(n, m);
  const uint64_t seed = shape_seed(s);
  problem p = make_problem(n, d, m, k, seed);
  dev_free(p.dwork); /* each chunk width gets its own */
  p.W = host_alloc(md * sizeof(float)), p.A = host_alloc((size_t)(m * k) * sizeof(float));
  download(p.W, p.dW, md * sizeof(float));
  download(p.A, p.dA, (size_t)(m * k) * sizeof(float));
  memcpy(p.W + h * d, p.W, (size_t)(h * d) * sizeof(float));
  for (int64_t e = 0; e < h * k; e++) p.A[h * k + e] = -p.A[e];
  be->ops->upload(be->ctx, p.dW, p.W, md * sizeof(float));
  be->ops->upload(be->ctx, p.dA, p.A, (size_t)(m * k) * sizeof(float));
  const float *g = fnormal(nk, seed, 401);
  float *dg = dev_from(g, nk * sizeof(float)), *dout = dev_alloc(nk * sizeof(float));
  float *dJTg = dev_alloc(md * sizeof(float));
  float *out = falloc(nk), *JTg = falloc(md);

  for (size_t ci = 0; ci < NCHUNK; ci++) {
    const sgn_dims dc = with_chunks(p.dm, chunk_widths[ci]);
    const long mc = (long)dc.mc;
    const char *prec = sgn_name(SGN_NAMES_PRECISION, c->prec);
    float *dwork = dev_alloc(sgn_work_floats(dc) * sizeof(float));
    be->ops->forward(be->ctx, dc, p.dX, p.dW, p.dA, dwork, p.dM, p.dF);
    download(p.F, p.dF, nk * sizeof(float));
    download(p.M, p.dM, mb);
    for (size_t e = 0; e < nk; e++)
      cr_assert(p.F[e] == 0.0f, ON SHAPE_FMT " mc=%ld %s: F[%zu] = %g, not exactly 0", BE,
                SHAPE_ARGS(s), mc, prec, e, p.F[e]);
    for (int64_t i = 0; i < n; i++)
      for (int64_t r = 0; r < h; r++)
        cr_assert(mbit(p.M, m, i, r) == mbit(p.M, m, i, r + h),
                  ON SHAPE_FMT " mc=%ld %s: the two halves of mask row %ld differ", BE,
                  SHAPE_ARGS(s), mc, prec, (long)i);

    /* J W = f (homogeneity) must vanish the same way, and J^T g is antisymmetric */
    be->ops->jvp(be->ctx, dc, p.dX, p.dM, p.dA, p.dW, dwork, dout);
    download(out, dout, nk * sizeof(float));
    for (size_t e = 0; e < nk; e++)
      cr_assert(out[e] == 0.0f, ON SHAPE_FMT " mc=%ld %s: (J W)[%zu] = %g", BE, SHAPE_ARGS(s), mc,
                prec, e, out[e]);
    be->ops->vjp(be->ctx, dc, p.dX, p.dM, p.dA, dg, dwork, dJTg);
    download(JTg, dJTg, md * sizeof(float));
    for (int64_t e = 0; e < h * d; e++)
      cr_assert(JTg[h * d + e] == -JTg[e],
                ON SHAPE_FMT " mc=%ld %s: J^T g not antisymmetric at %ld", BE, SHAPE_ARGS(s), mc,
                prec, (long)e);
    dev_free(dwork);
  }
}

/* ---- the two product paths, chunks and threads ---- */

ParameterizedTestParameters(backend_ops, zero_input_features_change_no_product) { DEVICE_PARAMS(); }

/* Appending zero input features changes no product: X W^T, f and J v stay, J^T g keeps its first
 * d columns and is 0 in the new ones. On the CPU d = 5 takes the fused path and d = 5 + 70 the
 * GEMM path, so this holds the two paths to each other (m = 202: halves off the word boundary).
 * Each result is within its bound (with the larger problem's roundings) of the exact product,
 * which the zero features do not change: 2 x the bound between them. */
ParameterizedTest(const on_device *c, backend_ops, zero_input_features_change_no_product,
                  .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 90, d = 5, D = d + 70, m = 202;
  const int64_t ks[2] = {1, 3};
  for (int t = 0; t < 2; t++) {
    const int64_t k = ks[t];
    const size_t nk = (size_t)(n * k), md = (size_t)(m * d), mD = (size_t)(m * D);
    problem p = make_problem(n, d, m, k, SEED + 40 + (uint64_t)k); /* fused */
    problem q = make_problem(n, D, m, k, SEED + 40 + (uint64_t)k); /* GEMM */
    for (int64_t i = 0; i < n; i++)
      for (int64_t l = 0; l < D; l++) q.X[i * D + l] = l < d ? p.X[i * d + l] : 0.0f;
    for (int64_t r = 0; r < m; r++)
      for (int64_t l = 0; l < D; l++) q.W[r * D + l] = l < d ? p.W[r * d + l] : q.W[r * D + l];
    memcpy(q.A, p.A, (size_t)(m * k) * sizeof(float));
    be->ops->upload(be->ctx, q.dX, q.X, (size_t)(n * D) * sizeof(float));
    forward(&q);
    expect_mask_signs("fused", p.dm, p.X, p.W, p.M, MASK_EDGE);
    expect_mask_signs("gemm", q.dm, q.X, q.W, q.M, MASK_EDGE);
    const double tol_f = 2.0 * BOUND_JVP(q.dm), tol_t = 2.0 * BOUND_VJP(q.dm);
    double *scale = dalloc(md > nk ? md : nk);
    abs_jvp(p.dm, p.X, NULL, p.A, fabs_of(md, p.W), scale);
    double r = worst_ratio_f(nk, q.F, p.F, scale, tol_f);
    cr_expect(r <= 1.0, ON "k=%ld: F between the paths: %.3g of the bound", BE, (long)k, r);

    /* J v and J^T g on the fused path's mask, V's and the result's extra columns as above */
    float *VD = fnormal(mD, SEED, 411), *V = falloc(md);
    const float *g = fnormal(nk, SEED, 412);
    for (int64_t r0 = 0; r0 < m; r0++)
      for (int64_t l = 0; l < d; l++) V[r0 * d + l] = VD[r0 * D + l];
    float *Jv = falloc(nk), *JvD = falloc(nk), *T = falloc(md), *TD = falloc(mD);
    uint32_t *dMp = dev_from(p.M, mask_bytes(n, m));
    jvp(&p, p.dm, p.dM, V, p.dwork, Jv);
    jvp(&q, q.dm, dMp, VD, q.dwork, JvD);
    abs_jvp(p.dm, p.X, p.M, p.A, fabs_of(md, V), scale);
    r = worst_ratio_f(nk, JvD, Jv, scale, tol_f);
    cr_expect(r <= 1.0, ON "k=%ld: J v between the paths: %.3g of the bound", BE, (long)k, r);
    vjp(&p, p.dm, p.dM, g, p.dwork, T);
    vjp(&q, q.dm, dMp, g, q.dwork, TD);
    float *TDd = falloc(md);
    for (int64_t r0 = 0; r0 < m; r0++)
      for (int64_t l = 0; l < D; l++) {
        if (l < d) {
          TDd[r0 * d + l] = TD[r0 * D + l];
          continue;
        }
        cr_assert(TD[r0 * D + l] == 0.0f, ON "k=%ld: J^T g (%ld, %ld) = %g on a zero feature", BE,
                  (long)k, (long)r0, (long)l, TD[r0 * D + l]);
      }
    abs_vjp(p.dm, p.X, p.M, p.A, g, scale);
    r = worst_ratio_f(md, TDd, T, scale, tol_t);
    cr_expect(r <= 1.0, ON "k=%ld: J^T g between the paths: %.3g of the bound", BE, (long)k, r);
  }
}

typedef struct chunk_shape {
  int64_t n, d, m, k, mc;
} chunk_shape;

typedef struct chunk_shape_on {
  chunk_shape c;
  sgn_device dev;
} chunk_shape_on;

#define CHUNK_FMT "n=%ld d=%ld m=%ld k=%ld mc=%ld"
#define CHUNK_ARGS(c) (long)(c)->n, (long)(c)->d, (long)(c)->m, (long)(c)->k, (long)(c)->mc
#define GUARD 64 /* floats of 0x7f7f7f7f after a chunked work buffer */

/* Both paths (test_chunking covers more chunk widths): d > 64 and k > 16 for the GEMM path, an odd
 * m, mc not dividing m, the smallest chunk 2, halves off the word boundary (m = 202, 258). */
static const chunk_shape chunk_shapes[] = {
    {37, 70, 50, 3, 10}, {64, 66, 129, 1, 22}, {33, 3, 97, 17, 2},   {9, 2, 7, 20, 2},
    {70, 4, 202, 1, 64}, {48, 6, 258, 2, 256}, {40, 80, 258, 1, 64},
};

ParameterizedTestParameters(backend_ops, chunked_products_match_unchunked) {
  BACKEND_PARAMS(chunk_shape_on, chunk_shapes);
}

/* Products in chunks of mc neurons agree with the unchunked ones (2 x each product's bound),
 * write their mask bits over stale ones, stay within sgn_work_floats of work, and keep a
 * symmetric model's f exactly 0. */
ParameterizedTest(const chunk_shape_on *cs, backend_ops, chunked_products_match_unchunked,
                  .fini = backend_close) {
  backend_open(cs->dev);
  const chunk_shape *c = &cs->c;
  const int64_t n = c->n, d = c->d, m = c->m, k = c->k, h = m / 2;
  const sgn_dims dc = {n, d, m, k, c->mc, 0};
  cr_assert(sgn_chunked(dc) && sgn_chunk_count(dc) > 1, CHUNK_FMT ": not chunked", CHUNK_ARGS(c));
  problem p = make_problem(n, d, m, k, SEED + (uint64_t)(n * 7919 + m * 31 + c->mc));
  const size_t nk = (size_t)(n * k), md = (size_t)(m * d), wlen = sgn_work_floats(dc);
  const size_t mb = mask_bytes(n, m);
  float *guarded = falloc(wlen + GUARD);
  memset(guarded + wlen, 0x7f, GUARD * sizeof(float));
  float *wc = dev_from(guarded, (wlen + GUARD) * sizeof(float));
  uint32_t *dMc = dev_alloc(mb), *Mc = host_alloc(mb), *ones = host_alloc(mb);
  memset(ones, 0xff, mb);
  float *dFc = dev_alloc(nk * sizeof(float)), *Fc = falloc(nk);
  const float *V = fnormal(md, SEED, 421), *g = fnormal(nk, SEED, 422);
  float *J0 = falloc(nk), *Jc = falloc(nk), *T0 = falloc(md), *Tc = falloc(md);
  double *scale = dalloc(md > nk ? md : nk);
  const double tol_f = 2.0 * BOUND_JVP(p.dm), tol_t = 2.0 * BOUND_VJP(p.dm);

  for (int sym = 0; sym <= (m % 2 == 0); sym++) {
    if (sym) symmetrize(&p); /* the same checks on the symmetric model, then f == J W == 0 */
    be->ops->upload(be->ctx, dMc, ones, mb); /* stale bits must be cleared */
    be->ops->forward(be->ctx, dc, p.dX, p.dW, p.dA, wc, dMc, dFc);
    download(Mc, dMc, mb);
    download(Fc, dFc, nk * sizeof(float));
    expect_mask_signs("unchunked", p.dm, p.X, p.W, p.M, MASK_EDGE);
    expect_mask_signs("chunked", dc, p.X, p.W, Mc, MASK_EDGE);
    abs_jvp(p.dm, p.X, NULL, p.A, fabs_of(md, p.W), scale);
    double r = worst_ratio_f(nk, Fc, p.F, scale, tol_f);
    cr_expect(r <= 1.0, ON CHUNK_FMT ": F: %.3g of the bound", BE, CHUNK_ARGS(c), r);
    const float *Vs = sym ? p.W : V; /* J W = f */
    jvp(&p, p.dm, p.dM, Vs, p.dwork, J0);
    jvp(&p, dc, p.dM, Vs, wc, Jc);
    abs_jvp(p.dm, p.X, p.M, p.A, fabs_of(md, Vs), scale);
    r = worst_ratio_f(nk, Jc, J0, scale, tol_f);
    cr_expect(r <= 1.0, ON CHUNK_FMT ": J v: %.3g of the bound", BE, CHUNK_ARGS(c), r);
    vjp(&p, p.dm, p.dM, g, p.dwork, T0);
    vjp(&p, dc, p.dM, g, wc, Tc);
    abs_vjp(p.dm, p.X, p.M, p.A, g, scale);
    r = worst_ratio_f(md, Tc, T0, scale, tol_t);
    cr_expect(r <= 1.0, ON CHUNK_FMT ": J^T g: %.3g of the bound", BE, CHUNK_ARGS(c), r);
    download(guarded, wc, (wlen + GUARD) * sizeof(float));
    const unsigned char *guard = (const unsigned char *)(guarded + wlen);
    for (size_t b = 0; b < GUARD * sizeof(float); b++)
      cr_assert_eq(guard[b], 0x7f, ON CHUNK_FMT ": a product wrote past its %zu work floats", BE,
                   CHUNK_ARGS(c), wlen);
    if (!sym) continue;
    for (size_t e = 0; e < nk; e++) {
      cr_assert(Fc[e] == 0.0f, ON CHUNK_FMT ": F[%zu] = %g, not exactly 0", BE, CHUNK_ARGS(c), e,
                Fc[e]);
      cr_assert(Jc[e] == 0.0f, ON CHUNK_FMT ": (J W)[%zu] = %g", BE, CHUNK_ARGS(c), e, Jc[e]);
    }
    for (int64_t e = 0; e < h * d; e++)
      cr_assert(Tc[h * d + e] == -Tc[e], ON CHUNK_FMT ": J^T g not antisymmetric at %ld", BE,
                CHUNK_ARGS(c), (long)e);
  }
}

/* fused (k = 1, 10), GEMM (d > 64; k > 16), sizes where the OpenMP loops run in parallel */
static const shape thread_shapes[] = {
    {300, 4, 1000, 1},
    {100, 5, 2002, 10},
    {300, 70, 1000, 3},
    {64, 3, 500, 17},
};

ParameterizedTestParameters(backend_ops, cpu_products_do_not_depend_on_the_thread_count) {
  return cr_make_param_array(shape, thread_shapes, sizeof thread_shapes / sizeof thread_shapes[0]);
}

/* The CPU's forward, J v and J^T g on 1 OpenMP thread and on 3 give the same bits. */
ParameterizedTest(const shape *s, backend_ops, cpu_products_do_not_depend_on_the_thread_count,
                  .init = open_cpu, .fini = backend_close) {
  const int64_t n = s->n, d = s->d, m = s->m, k = s->k, mw = SGN_MASK_WORDS(m);
  const uint64_t seed = shape_seed(s);
  problem p = make_problem(n, d, m, k, seed);
  const float *V = dev_from(fnormal((size_t)(m * d), seed, 431), (size_t)(m * d) * sizeof(float));
  const float *g = dev_from(fnormal((size_t)(n * k), seed, 432), (size_t)(n * k) * sizeof(float));
  const size_t bytes[4] = {(size_t)(n * mw) * sizeof(uint32_t), (size_t)(n * k) * sizeof(float),
                           (size_t)(n * k) * sizeof(float), (size_t)(m * d) * sizeof(float)};
  void *out[2][4]; /* CPU backend memory is host memory: compared in place */
  const int threads[2] = {1, 3};
  const int saved = omp_get_max_threads();
  for (int t = 0; t < 2; t++) {
    for (int b = 0; b < 4; b++) out[t][b] = dev_alloc(bytes[b]);
    omp_set_num_threads(threads[t]);
    be->ops->forward(be->ctx, p.dm, p.dX, p.dW, p.dA, p.dwork, out[t][0], out[t][1]);
    be->ops->jvp(be->ctx, p.dm, p.dX, p.dM, p.dA, V, p.dwork, out[t][2]);
    be->ops->vjp(be->ctx, p.dm, p.dX, p.dM, p.dA, g, p.dwork, out[t][3]);
  }
  omp_set_num_threads(saved);
  const char *names[4] = {"mask", "F", "J v", "J^T g"};
  for (int b = 0; b < 4; b++)
    cr_expect(memcmp(out[0][b], out[1][b], bytes[b]) == 0, SHAPE_FMT ": %s differs on 3 threads",
              SHAPE_ARGS(s), names[b]);
}

/* ---- Gram structure ---- */

ParameterizedTestParameters(backend_ops, gram_blocks) { DEVICE_PARAMS(); }

ParameterizedTest(const on_device *c, backend_ops, gram_blocks, .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 40, d = 8, m = 512, k = 4, N = n * k;
  problem p = make_problem(n, d, m, k, SEED + 50);
  double *G = dalloc((size_t)(N * N)), *G0 = dalloc((size_t)(n * n)), *aG = dalloc((size_t)(n * n));
  gram(&p, p.dm, 1, p.dwork, G);
  gram(&p, p.dm, 0, p.dwork, G0);
  abs_gram(p.dm, p.X, p.M, aG);

  for (int64_t a = 0; a < N; a++)
    for (int64_t b = 0; b < a; b++)
      cr_assert(G[a * N + b] == G[b * N + a], ON "full gram not exactly symmetric at (%ld, %ld)",
                BE, (long)a, (long)b);
  for (int64_t a = 0; a < n; a++)
    for (int64_t b = 0; b < a; b++)
      cr_assert(G0[a * n + b] == G0[b * n + a], ON "gram not exactly symmetric", BE);

  /* the CPU computes both with one block rule: bit for bit; elsewhere 2 x BOUND_GRAM */
  const int exact = c->dev == SGN_DEVICE_CPU;
  double diag_norm = 0.0, off_norm = 0.0;
  for (int64_t ce = 0; ce < k; ce++)
    for (int64_t e = 0; e < k; e++) {
      double fro = 0.0, worst = 0.0;
      for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
          const double v = G[(i * k + ce) * N + j * k + e];
          fro += v * v;
          const double err = fabs(v - G0[i * n + j]);
          if (err > 0)
            worst = fmax(worst, exact ? INFINITY : err / (2.0 * BOUND_GRAM(p.dm) * aG[i * n + j]));
        }
      if (ce == e) {
        cr_expect(worst <= 1.0,
                  ON
                  "diagonal block %ld differs from the (n, n) Gram: %.3g of the "
                  "bound",
                  BE, (long)ce, worst);
        diag_norm = fmax(diag_norm, sqrt(fro));
      } else {
        off_norm = fmax(off_norm, sqrt(fro));
      }
    }
  cr_expect(off_norm < OFFDIAG_MAX * diag_norm, ON "off-diagonal block %.3g vs diagonal %.3g", BE,
            off_norm, diag_norm);
}

ParameterizedTestParameters(backend_ops, gram_matches_products) { DEVICE_PARAMS(); }

/* G g = J (J^T g) on a shape too large for an explicit J, with every Gram row block path. Each
 * side is within its bounds of J J^T g, entry by entry against |J| |J|^T |g|: the Gram's, and
 * the two products' (the vjp's error passes through |J|). */
ParameterizedTest(const on_device *c, backend_ops, gram_matches_products, .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 150, d = 13, m = 257, k = 3, N = n * k;
  problem p = make_problem(n, d, m, k, SEED + 60);
  double *G = dalloc((size_t)(N * N)), *Gg = dalloc((size_t)N), *scale = dalloc((size_t)N);
  const float *g = fnormal((size_t)N, SEED, 601);
  float *JTg = falloc((size_t)(m * d)), *JJTg = falloc((size_t)N);
  gram(&p, p.dm, 1, p.dwork, G);
  vjp(&p, p.dm, p.dM, g, p.dwork, JTg);
  jvp(&p, p.dm, p.dM, JTg, p.dwork, JJTg);
  double *aGg = dalloc((size_t)N); /* the test's own float64 sums: gamma64(N) sum |G| |g| */
  for (int64_t a = 0; a < N; a++) {
    double acc = 0.0, aacc = 0.0;
    for (int64_t b = 0; b < N; b++) {
      acc += G[a * N + b] * g[b];
      aacc += fabs(G[a * N + b] * g[b]);
    }
    Gg[a] = acc, aGg[a] = aacc;
  }
  double *aT = dalloc((size_t)(m * d));
  abs_vjp(p.dm, p.X, p.M, p.A, g, aT);
  float *aTf = falloc((size_t)(m * d));
  for (int64_t e = 0; e < m * d; e++) aTf[e] = (float)aT[e];
  abs_jvp(p.dm, p.X, p.M, p.A, aTf, scale);
  const double tol = BOUND_JVP(p.dm) + BOUND_VJP(p.dm) * (1.0 + BOUND_JVP(p.dm)) + BOUND_GRAM(p.dm);
  for (int64_t a = 0; a < N; a++) scale[a] += gamma64((double)N) * aGg[a] / tol;
  double r = worst_ratio_fd((size_t)N, JJTg, Gg, scale, tol);
  cr_expect(r <= 1.0, ON "G g vs J J^T g: %.3g of the bound", BE, r);

  /* and the (n, n) Gram's diagonal is gram_diag: each within BOUND_GRAM of G_ii */
  double *G0 = dalloc((size_t)(n * n)), *diag = dalloc((size_t)n);
  gram(&p, p.dm, 0, p.dwork, G0);
  gram_diag(&p, p.dm, diag);
  for (int64_t i = 0; i < n; i++) Gg[i] = G0[i * n + i];
  r = worst_ratio((size_t)n, diag, Gg, Gg, 2.0 * BOUND_GRAM(p.dm));
  cr_expect(r <= 1.0, ON "gram_diag vs diag of gram: %.3g of the bound", BE, r);
}

/* ---- memory ---- */

ParameterizedTestParameters(backend_ops, memory) { DEVICE_PARAMS(); }

/* zero-filled, 64-byte aligned, upload/copy/download round trip, alloc(0) freeable; the name */
ParameterizedTest(const on_device *c, backend_ops, memory, .fini = backend_close) {
  backend_open(c->dev);
  const size_t len = 100003;
  float *a = dev_alloc(len * sizeof(float)), *b = dev_alloc(len * sizeof(float));
  cr_expect(((uintptr_t)a & 63) == 0 && ((uintptr_t)b & 63) == 0, ON "not 64-byte aligned", BE);
  const float *zeros = host_from(a, len * sizeof(float));
  for (size_t i = 0; i < len; i++)
    cr_assert(zeros[i] == 0.0f, ON "alloc not zero-filled at %zu", BE, i);
  const float *host = fnormal(len, SEED, 701);
  be->ops->upload(be->ctx, a, host, len * sizeof(float));
  be->ops->copy(be->ctx, b, a, len * sizeof(float));
  be->ops->sync(be->ctx);
  const float *back = host_from(b, len * sizeof(float));
  cr_expect(memcmp(host, back, len * sizeof(float)) == 0, ON "upload/copy/download round trip", BE);
  dev_free(dev_alloc(0));
  cr_expect_str_eq(be->ops->name, c->dev == SGN_DEVICE_CPU ? "cpu" : "gpu");
}

/* ---- vector ops ---- */

static double *dnormal(int64_t len, uint64_t stream) {
  double *x = dalloc((size_t)len);
  for (int64_t i = 0; i < len; i++) x[i] = sgn_rng_normal(SEED, stream, (uint64_t)i);
  return x;
}

ParameterizedTestParameters(backend_ops, vector_ops) { DEVICE_PARAMS(); }

/* Each op against a plain loop, within the bounds of the table. */
ParameterizedTest(const on_device *c, backend_ops, vector_ops, .fini = backend_close) {
  backend_open(c->dev);
  const int64_t lens[] = {1, 7, 100003};
  for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
    const int64_t len = lens[t];
    const size_t db = (size_t)len * sizeof(double), fb = (size_t)len * sizeof(float);
    const double *x = dnormal(len, 801), *y0 = dnormal(len, 802);
    double *y = dalloc((size_t)len), *want = dalloc((size_t)len), *scale = dalloc((size_t)len);
    double *dx = dev_from(x, db), *dy = dev_from(y0, db);

    long double ref = 0.0L;
    double sum_abs = 0.0;
    for (int64_t i = 0; i < len; i++) {
      ref += (long double)x[i] * y0[i];
      sum_abs += fabs(x[i] * y0[i]);
    }
    const double got = be->ops->dot(be->ctx, len, dx, dy);
    cr_expect(fabs(got - (double)ref) <= 2.0 * gamma64((double)len) * sum_abs,
              ON "dot len %ld: %.17g vs %.17g", BE, (long)len, got, (double)ref);
    cr_expect(be->ops->dot(be->ctx, len, dx, dy) == got, ON "dot not deterministic", BE);

    be->ops->axpy(be->ctx, len, 0.5, dx, dy);
    download(y, dy, db);
    for (int64_t i = 0; i < len; i++) {
      want[i] = y0[i] + 0.5 * x[i];
      scale[i] = fabs(y0[i]) + fabs(0.5 * x[i]);
    }
    cr_expect(worst_ratio((size_t)len, y, want, scale, 2.0 * gamma64(2)) <= 1.0, ON "axpy", BE);

    be->ops->upload(be->ctx, dy, y0, db);
    be->ops->xpby(be->ctx, len, dx, -2.0, dy);
    download(y, dy, db);
    for (int64_t i = 0; i < len; i++) {
      want[i] = x[i] - 2.0 * y0[i];
      scale[i] = fabs(x[i]) + fabs(2.0 * y0[i]);
    }
    cr_expect(worst_ratio((size_t)len, y, want, scale, 2.0 * gamma64(2)) <= 1.0, ON "xpby", BE);

    be->ops->upload(be->ctx, dy, y0, db);
    be->ops->scal(be->ctx, len, 3.0, dy);
    download(y, dy, db);
    for (int64_t i = 0; i < len; i++) cr_assert(y[i] == 3.0 * y0[i], ON "scal", BE);

    /* float <-> double: d2f rounds, f2d is exact, so f2d(d2f(x)) == (float) x */
    float *dxf = dev_alloc(fb), *dyf = dev_alloc(fb);
    be->ops->d2f(be->ctx, len, dx, dxf);
    be->ops->f2d(be->ctx, len, dxf, dy);
    const float *xf = host_from(dxf, fb);
    download(y, dy, db);
    for (int64_t i = 0; i < len; i++) {
      cr_assert(xf[i] == (float)x[i], ON "d2f", BE);
      cr_assert(y[i] == (double)xf[i], ON "f2d", BE);
    }

    /* residual: r = F - Y exactly (two floats' difference fits a double), returns sum r^2 */
    float *yf = falloc((size_t)len);
    for (int64_t i = 0; i < len; i++) yf[i] = (float)y0[i];
    be->ops->upload(be->ctx, dyf, yf, fb);
    const double ss = be->ops->residual(be->ctx, len, dxf, dyf, dy);
    download(y, dy, db);
    long double ref_ss = 0.0L;
    for (int64_t i = 0; i < len; i++) {
      cr_assert(y[i] == (double)xf[i] - (double)yf[i], ON "residual r[%ld]", BE, (long)i);
      ref_ss += (long double)y[i] * y[i];
    }
    cr_expect(fabs(ss - (double)ref_ss) <= 2.0 * gamma64((double)len + 1) * (double)ref_ss,
              ON "residual sum %.17g vs %.17g", BE, ss, (double)ref_ss);
    cr_expect(be->ops->residual(be->ctx, len, dxf, dyf, dy) == ss, ON "residual not deterministic",
              BE);

    /* axpy_f: -0.25 x is exact, so y + a x has one rounding: exact on any backend, FMA or not */
    be->ops->axpy_f(be->ctx, len, -0.25f, dxf, dyf);
    const float *yf1 = host_from(dyf, fb);
    for (int64_t i = 0; i < len; i++) cr_assert(yf1[i] == yf[i] + -0.25f * xf[i], ON "axpy_f", BE);
    dev_free(dx), dev_free(dy), dev_free(dxf), dev_free(dyf);
  }
}

ParameterizedTestParameters(backend_ops, gather_rows) { DEVICE_PARAMS(); }

ParameterizedTest(const on_device *c, backend_ops, gather_rows, .fini = backend_close) {
  backend_open(c->dev);
  const int64_t rows = 9, cols = 5, b = 6;
  float *src = falloc((size_t)(rows * cols));
  const int64_t pick[6] = {8, 0, 3, 3, 7, 1}; /* a repeat, the first and last rows */
  for (int64_t e = 0; e < rows * cols; e++) src[e] = (float)e;
  float *dsrc = dev_from(src, (size_t)(rows * cols) * sizeof(float));
  int64_t *didx = dev_from(pick, sizeof pick);
  float *dout = dev_alloc((size_t)(b * cols) * sizeof(float));
  be->ops->gather_rows(be->ctx, b, cols, dsrc, didx, dout);
  const float *out = host_from(dout, (size_t)(b * cols) * sizeof(float));
  for (int64_t i = 0; i < b; i++)
    for (int64_t j = 0; j < cols; j++)
      cr_expect(out[i * cols + j] == (float)(pick[i] * cols + j), ON "row %ld col %ld", BE, (long)i,
                (long)j);
}

ParameterizedTestParameters(backend_ops, adam_constant_gradient) { DEVICE_PARAMS(); }

/* With a constant gradient, bias correction makes every Adam step lr g / (|g| + eps): each
 * weight moves by ~lr against the sign of its gradient, at t = 1 and at t = 2 (bound: table). */
ParameterizedTest(const on_device *c, backend_ops, adam_constant_gradient, .fini = backend_close) {
  backend_open(c->dev);
  const int64_t len = 50000;
  const size_t fb = (size_t)len * sizeof(float);
  const double lr = 1e-2, eps = 1e-8;
  const float *W0 = fnormal((size_t)len, SEED, 901), *g = fnormal((size_t)len, SEED, 902);
  float *dW = dev_from(W0, fb), *dg = dev_from(g, fb), *dmom = dev_alloc(fb), *dvel = dev_alloc(fb);
  float *W = falloc((size_t)len);
  for (int64_t t = 1; t <= 2; t++) {
    be->ops->adam(be->ctx, len, dW, dg, dmom, dvel, lr, 0.9, 0.999, eps, t);
    download(W, dW, fb);
    for (int64_t i = 0; i < len; i++) {
      if (fabsf(g[i]) < 1e-3f) continue; /* eps matters there */
      const double step = (double)W0[i] - (double)W[i];
      const double want = (double)t * lr * (g[i] > 0 ? 1.0 : -1.0);
      const double bound = (double)t * lr * (eps / fabs((double)g[i]) + 8.0 * U32) +
                           (double)(t + 2) * U32 * (fabs((double)W0[i]) + (double)t * lr);
      cr_assert(fabs(step - want) <= bound, ON "t=%ld: W[%ld] moved %.9g, want %.9g (bound %.3g)",
                BE, (long)t, (long)i, step, want, bound);
    }
  }
  /* a zero gradient leaves W unchanged at t = 1 from zero moments */
  const float Wz0[4] = {1.5f, 0, 0, 0};
  float *Wz = dev_from(Wz0, sizeof Wz0), *gz = dev_alloc(sizeof Wz0);
  float *mz = dev_alloc(sizeof Wz0), *vz = dev_alloc(sizeof Wz0);
  be->ops->adam(be->ctx, 4, Wz, gz, mz, vz, lr, 0.9, 0.999, eps, 1);
  const float *Wz1 = host_from(Wz, sizeof Wz0);
  cr_expect(Wz1[0] == 1.5f && Wz1[1] == 0.0f, ON "zero gradient moved W", BE);
}

/* ---- separate outputs: gram_heads and heads_symv ---- */

/* A separate-outputs shape: m = 2 k h neurons, head c owns [c h, c h + h) and
 * [m/2 + c h, m/2 + c h + h) */
typedef struct heads_shape {
  int64_t n, d, h, k;
} heads_shape;

typedef struct heads_shape_on {
  heads_shape s;
  sgn_device dev;
} heads_shape_on;

#define HEADS_FMT "n=%ld d=%ld h=%ld k=%ld"
#define HEADS_ARGS(s) (long)(s)->n, (long)(s)->d, (long)(s)->h, (long)(s)->k

/* G (k, n, n) host float = the backend's gram_heads, with dK (backend (n, n)) or NULL, into
 * blocks filled with NaN before: the part below each diagonal must come back NaN (not written,
 * backend.h) */
static float *gram_heads(const problem *p, sgn_dims dm, const float *dK, float *dwork) {
  const int64_t n = dm.n, nn = n * n, len = dm.k * nn;
  const size_t bytes = (size_t)len * sizeof(float);
  float *G = falloc((size_t)len);
  for (int64_t e = 0; e < len; e++) G[e] = NAN;
  float *dG = dev_from(G, bytes);
  be->ops->gram_heads(be->ctx, dm, p->dX, dK, p->dM, dwork, dG);
  cr_assert_null(sgn_backend_error(be), ON "gram_heads: %s", BE, sgn_backend_error(be));
  download(G, dG, bytes);
  dev_free(dG);
  for (int64_t e = 0; e < len; e++)
    if (e % n < e % nn / n && !isnan(G[e]))
      cr_assert_fail(ON "gram_heads wrote below the diagonal: block %ld at (%ld, %ld)", BE,
                     (long)(e / nn), (long)(e % nn / n), (long)(e % n));
  return G;
}

/* dK (backend, (n, n)) = X X^T by the backend's gemm op, as a caller keeps it */
static float *gemm_xxt(const problem *p) {
  const int64_t n = p->dm.n, d = p->dm.d;
  float *dK = dev_alloc((size_t)(n * n) * sizeof(float));
  be->ops->gemm(be->ctx, 0, 1, n, n, d, p->dX, d, p->dX, d, dK, n);
  return dK;
}

/* out (n, 2 hw) host = head c's words of the mask M (n, mw): its first half's words, then its
 * second half's, the mask of head c's neurons as an (m / k)-neuron model of its own */
static uint32_t *head_mask(sgn_dims dm, const uint32_t *M, int64_t c) {
  const int64_t mw = SGN_MASK_WORDS(dm.m), hw = mw / (2 * dm.k);
  uint32_t *out = host_alloc((size_t)(dm.n * 2 * hw) * sizeof(uint32_t));
  for (int64_t i = 0; i < dm.n; i++)
    for (int64_t w = 0; w < hw; w++) {
      out[i * 2 * hw + w] = M[i * mw + c * hw + w];
      out[i * 2 * hw + hw + w] = M[i * mw + mw / 2 + c * hw + w];
    }
  return out;
}

/* X <- integers in {-2, ..., 2} (X X^T then exact in float32 on every backend), uploaded, and
 * the forward pass again */
static void integer_x(problem *p, uint64_t seed) {
  const size_t nd = (size_t)(p->dm.n * p->dm.d);
  for (size_t e = 0; e < nd; e++)
    p->X[e] = (float)((int)(sgn_rng_u64(seed, SGN_STREAM_SYNTH_X, (uint64_t)e) % 5) - 2);
  be->ops->upload(be->ctx, p->dX, p->X, nd * sizeof(float));
  forward(p);
}

/* k = 1 (one head: the whole model), n off multiples of 4 (the GPU's int8 padding), d past the
 * CPU's fused products, k = 10 with the narrowest heads */
static const heads_shape heads_shapes[] = {
    {40, 8, 32, 3}, {37, 70, 64, 2}, {9, 2, 32, 1}, {150, 13, 32, 10}, {1, 3, 32, 2},
};

ParameterizedTestParameters(backend_ops, gram_heads_blocks_are_single_head_grams) {
  BACKEND_PARAMS(heads_shape_on, heads_shapes);
}

/* Block c of gram_heads is gram (full = 0) of head c's neurons taken as a model of their own
 * (m / k neurons, its own mask words), rounded to float32. With K NULL bit for bit: the same
 * counts and the same K (n is below one row block of either op on both backends, so both run
 * one identical SGEMM), with the same roundings. With K from the backend's gemm op (one
 * (n, n) SGEMM, whose kernel may sum in another order than the row block's): bit for bit for
 * integer X (K exact), else each side within BOUND_HEADS_GRAM of the exact block against
 * |X| |X|^T o C / (m / k), so 2 BOUND_HEADS_GRAM apart. Each block exactly symmetric; neuron
 * chunks (dm.mc) change no bit. */
ParameterizedTest(const heads_shape_on *c, backend_ops, gram_heads_blocks_are_single_head_grams,
                  .fini = backend_close) {
  backend_open(c->dev);
  const heads_shape *s = &c->s;
  const int64_t n = s->n, k = s->k, m = 2 * k * s->h, nn = n * n;
  const uint64_t seed = SEED + 90 + (uint64_t)(n * 31 + k);
  problem p = make_problem(n, s->d, m, k, seed);
  const sgn_dims dh = {n, s->d, m / k, 1, 0, 0};
  for (int xint = 0; xint < 2; xint++) {
    if (xint) integer_x(&p, seed);
    float *dK = gemm_xxt(&p);
    const float *G = gram_heads(&p, p.dm, NULL, p.dwork), *GK = gram_heads(&p, p.dm, dK, p.dwork);
    double *scale = dalloc((size_t)nn), *Ghf = dalloc((size_t)nn), *GKc = dalloc((size_t)nn);
    for (int64_t hd = 0; hd < k; hd++) {
      const uint32_t *Mh = head_mask(p.dm, p.M, hd);
      uint32_t *dMh = dev_from(Mh, mask_bytes(n, m / k));
      float *dwork = dev_alloc(sgn_work_floats(dh) * sizeof(float));
      double *dGh = dev_alloc((size_t)nn * sizeof(double)), *Gh = dalloc((size_t)nn);
      be->ops->gram(be->ctx, dh, p.dX, dMh, p.dA, 0, dwork, dGh);
      download(Gh, dGh, (size_t)nn * sizeof(double));
      const float *Gc = G + hd * nn, *GKh = GK + hd * nn;
      for (int64_t e = 0; e < nn; e++) {
        if (e % n < e / n) { /* below the diagonal: not written (gram_heads above) */
          Ghf[e] = GKc[e] = scale[e] = 0.0;
          continue;
        }
        const float want = (float)Gh[e];
        cr_assert(memcmp(&Gc[e], &want, sizeof(float)) == 0,
                  ON HEADS_FMT " xint=%d: block %ld at (%ld, %ld) = %.9g, the head's own gram %.9g",
                  BE, HEADS_ARGS(s), xint, (long)hd, (long)(e / n), (long)(e % n), Gc[e], want);
        if (xint)
          cr_assert(memcmp(&GKh[e], &want, sizeof(float)) == 0,
                    ON HEADS_FMT
                    ": with gemm's K, block %ld at (%ld, %ld) = %.9g, the head's "
                    "own gram %.9g",
                    BE, HEADS_ARGS(s), (long)hd, (long)(e / n), (long)(e % n), GKh[e], want);
        Ghf[e] = (double)want, GKc[e] = (double)GKh[e];
      }
      abs_gram(dh, p.X, Mh, scale);
      for (int64_t e = 0; e < nn; e++)
        if (e % n < e / n) scale[e] = 0.0; /* entries below the diagonal compare 0 with 0 */
      const double r = worst_ratio((size_t)nn, GKc, Ghf, scale, 2.0 * BOUND_HEADS_GRAM(dh));
      cr_expect(r <= 1.0, ON HEADS_FMT " xint=%d: block %ld with gemm's K: %.3g of the bound", BE,
                HEADS_ARGS(s), xint, (long)hd, r);
      dev_free(dMh), dev_free(dwork), dev_free(dGh);
    }
    dev_free(dK);
    if (xint) continue;
    const int64_t mcs[2] = {2, 22};
    for (int t = 0; t < 2; t++) {
      const sgn_dims dc = with_chunks(p.dm, mcs[t]);
      float *dwork = dev_alloc(sgn_work_floats(dc) * sizeof(float));
      const float *Gm = gram_heads(&p, dc, NULL, dwork);
      cr_assert(memcmp(Gm, G, (size_t)(k * nn) * sizeof(float)) == 0,
                ON HEADS_FMT ": gram_heads with mc = %ld differs from unchunked", BE, HEADS_ARGS(s),
                (long)mcs[t]);
      dev_free(dwork);
    }
  }
}

/* heads_shapes and n past one CPU row block with K given (n^2 floats past its 4M-float
 * scratch): the row blocks' offsets into K */
static const heads_shape heads_k_shapes[] = {
    {40, 8, 32, 3},    {37, 70, 64, 2}, {9, 2, 32, 1},
    {150, 13, 32, 10}, {1, 3, 32, 2},   {2100, 3, 32, 2},
};

ParameterizedTestParameters(backend_ops, gram_heads_reads_the_given_k) {
  BACKEND_PARAMS(heads_shape_on, heads_k_shapes);
}

/* With K given, gram_heads uses it and nothing else of X: K random with its lower triangle
 * unlike its upper, each entry of a block's upper triangle (backend.h) is
 * (float)((double)K_ij C_ij (1 / (m / k))) with C the head's counts popcount(M_ci & M_cj), bit
 * for bit. */
ParameterizedTest(const heads_shape_on *c, backend_ops, gram_heads_reads_the_given_k,
                  .fini = backend_close) {
  backend_open(c->dev);
  const heads_shape *s = &c->s;
  const int64_t n = s->n, k = s->k, m = 2 * k * s->h, nn = n * n;
  problem p = make_problem(n, s->d, m, k, SEED + 93 + (uint64_t)n);
  float *K = fnormal((size_t)nn, SEED, 931);
  float *dK = dev_from(K, (size_t)nn * sizeof(float));
  const float *G = gram_heads(&p, p.dm, dK, p.dwork);
  const double inv_mh = 1.0 / (double)(m / k);
  const int64_t cw = SGN_MASK_WORDS(m / k);
  for (int64_t hd = 0; hd < k; hd++) {
    const uint32_t *Mh = head_mask(p.dm, p.M, hd);
    const float *Gc = G + hd * nn;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = i; j < n; j++) {
        int64_t cnt = 0;
        for (int64_t w = 0; w < cw; w++) cnt += __builtin_popcount(Mh[i * cw + w] & Mh[j * cw + w]);
        const float want = (float)((double)K[i * n + j] * (double)cnt * inv_mh);
        if (memcmp(&Gc[i * n + j], &want, sizeof(float)) != 0)
          cr_assert_fail(ON HEADS_FMT ": block %ld at (%ld, %ld) = %.9g, from K %.9g", BE,
                         HEADS_ARGS(s), (long)hd, (long)i, (long)j, Gc[i * n + j], want);
      }
  }
}

/* A fresh separate model: every head's W rows copies head 0's (in each half), A = +-sqrt(k) on
 * the head's own neurons and 0 elsewhere. */
static void make_separate(problem *p, int64_t h) {
  const int64_t m = p->dm.m, d = p->dm.d, k = p->dm.k;
  const float a = sqrtf((float)k);
  for (int64_t half = 0; half < 2; half++)
    for (int64_t hd = 1; hd < k; hd++)
      memcpy(p->W + (half * m / 2 + hd * h) * d, p->W + half * m / 2 * d,
             (size_t)(h * d) * sizeof(float));
  for (int64_t r = 0; r < m; r++)
    for (int64_t c = 0; c < k; c++) {
      const int64_t owner = (r % (m / 2)) / h;
      p->A[r * k + c] = owner == c ? (p->A[r * k + c] > 0 ? a : -a) : 0.0f;
    }
  forward(p);
}

ParameterizedTestParameters(backend_ops, gram_heads_of_identical_heads_are_equal) {
  DEVICE_PARAMS();
}

/* On a fresh separate model the forward gives every head the same mask bits (the same W rows
 * through the same products), and so gram_heads gives k equal blocks, bit for bit; with one
 * head redrawn, that head's block is its own and the others stay equal. */
ParameterizedTest(const on_device *c, backend_ops, gram_heads_of_identical_heads_are_equal,
                  .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 45, d = 6, h = 64, k = 5, m = 2 * k * h, nn = n * n;
  problem p = make_problem(n, d, m, k, SEED + 95);
  make_separate(&p, h);
  for (int64_t hd = 1; hd < k; hd++)
    cr_assert(memcmp(head_mask(p.dm, p.M, hd), head_mask(p.dm, p.M, 0), mask_bytes(n, m / k)) == 0,
              ON "the forward gave head %ld other mask bits than head 0", BE, (long)hd);
  const float *G = gram_heads(&p, p.dm, NULL, p.dwork);
  for (int64_t hd = 1; hd < k; hd++)
    cr_assert(memcmp(G + hd * nn, G, (size_t)nn * sizeof(float)) == 0,
              ON "block %ld differs from block 0", BE, (long)hd);
  /* head 2 drawn afresh (the CPU copies the blocks of heads equal to an earlier one): its block
   * is its own model's Gram, the others still block 0, bit for bit */
  const float *W2 = fnormal((size_t)(2 * h * d), SEED, 951);
  for (int64_t half = 0; half < 2; half++)
    memcpy(p.W + (half * m / 2 + 2 * h) * d, W2 + half * h * d, (size_t)(h * d) * sizeof(float));
  forward(&p);
  G = gram_heads(&p, p.dm, NULL, p.dwork);
  const sgn_dims dh = {n, d, m / k, 1, 0, 0};
  uint32_t *dMh = dev_from(head_mask(p.dm, p.M, 2), mask_bytes(n, m / k));
  float *dwork = dev_alloc(sgn_work_floats(dh) * sizeof(float));
  double *dGh = dev_alloc((size_t)nn * sizeof(double)), *Gh = dalloc((size_t)nn);
  be->ops->gram(be->ctx, dh, p.dX, dMh, p.dA, 0, dwork, dGh);
  download(Gh, dGh, (size_t)nn * sizeof(double));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = i; j < n; j++) {
      const float want = (float)Gh[i * n + j];
      cr_assert(memcmp(&G[2 * nn + i * n + j], &want, sizeof want) == 0,
                ON "the redrawn head's block at (%ld, %ld) = %.9g, its own gram %.9g", BE, (long)i,
                (long)j, G[2 * nn + i * n + j], want);
    }
  cr_assert(memcmp(G + 2 * nn, G, (size_t)nn * sizeof(float)) != 0,
            ON "the redrawn head's block is block 0", BE);
  for (int64_t hd = 1; hd < k; hd++)
    cr_assert(hd == 2 || memcmp(G + hd * nn, G, (size_t)nn * sizeof(float)) == 0,
              ON "block %ld differs from block 0 with head 2 redrawn", BE, (long)hd);
  dev_free(dMh), dev_free(dwork), dev_free(dGh);
}

ParameterizedTestParameters(backend_ops, heads_gram_matches_products) { DEVICE_PARAMS(); }

/* heads_symv(gram_heads) g = J (J^T g) for a separate model (k = 4: A = +-2, exact), whose
 * J J^T is block diagonal with gram_heads' blocks (up to their float32 rounding): each side
 * within its bounds of J J^T g, as in gram_matches_products (the products', the float32
 * blocks' BOUND_HEADS_GRAM, and heads_symv's float32 sums, BOUND_HEADS_SYMV(n) against
 * |G| |g|). Heads of 32 neurons that differ (W drawn per row). */
ParameterizedTest(const on_device *c, backend_ops, heads_gram_matches_products,
                  .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 60, d = 9, h = 32, k = 4, m = 2 * k * h, N = n * k;
  problem p = make_problem(n, d, m, k, SEED + 97);
  for (int64_t r = 0; r < m; r++)
    for (int64_t e = 0; e < k; e++)
      p.A[r * k + e] = (r % (m / 2)) / h == e ? 2.0f * p.A[r * k + e] : 0.0f;
  forward(&p);
  const float *G = gram_heads(&p, p.dm, NULL, p.dwork);
  float *dG = dev_from(G, (size_t)(k * n * n) * sizeof(float));
  const float *g = fnormal((size_t)N, SEED, 971);
  double *gd = dalloc((size_t)N);
  for (int64_t e = 0; e < N; e++) gd[e] = (double)g[e];
  double *dgd = dev_from(gd, (size_t)N * sizeof(double)),
         *dGg = dev_alloc((size_t)N * sizeof(double));
  be->ops->heads_symv(be->ctx, n, k, dG, 0.0, dgd, dGg);
  const double *Gg = host_from(dGg, (size_t)N * sizeof(double));

  float *JTg = falloc((size_t)(m * d)), *JJTg = falloc((size_t)N);
  vjp(&p, p.dm, p.dM, g, p.dwork, JTg);
  jvp(&p, p.dm, p.dM, JTg, p.dwork, JJTg);
  double *aT = dalloc((size_t)(m * d)), *scale = dalloc((size_t)N);
  abs_vjp(p.dm, p.X, p.M, p.A, g, aT);
  float *aTf = falloc((size_t)(m * d));
  for (int64_t e = 0; e < m * d; e++) aTf[e] = (float)aT[e];
  abs_jvp(p.dm, p.X, p.M, p.A, aTf, scale);
  const double tol = BOUND_JVP(p.dm) + BOUND_VJP(p.dm) * (1.0 + BOUND_JVP(p.dm)) +
                     BOUND_HEADS_GRAM(p.dm);
  for (int64_t i = 0; i < n; i++)
    for (int64_t e = 0; e < k; e++) {
      double aGg = 0.0;
      for (int64_t j = 0; j < n; j++) /* G_e[i, j] from the upper triangle gram_heads wrote */
        aGg += fabs((double)G[e * n * n + (i < j ? i * n + j : j * n + i)] * gd[j * k + e]);
      scale[i * k + e] += BOUND_HEADS_SYMV(n) * aGg / tol;
    }
  const double r = worst_ratio_fd((size_t)N, JJTg, Gg, scale, tol);
  cr_expect(r <= 1.0, ON "heads_symv(gram_heads) g vs J J^T g: %.3g of the bound", BE, r);
}

/* heads_symv's shapes: one sample, odd n, k = 10 (a long stride), n past a few SIMD widths */
typedef struct symv_case {
  int64_t n, k;
} symv_case;
static const symv_case symv_cases[] = {{1, 1}, {7, 3}, {150, 10}, {64, 1}, {1000, 2}};

ParameterizedTestParameters(backend_ops, heads_symv_matches_dense_product) { DEVICE_PARAMS(); }

/* k random symmetric float32 blocks (n, n) as heads_symv reads them, their upper triangles: the
 * part below the diagonal NaN, which any read of it would carry into the product. *sym gets the
 * whole symmetric blocks, for the reference. */
static float *upper_blocks(int64_t n, int64_t k, uint64_t stream, float **sym) {
  const int64_t nn = n * n;
  float *G = fnormal((size_t)(k * nn), SEED, stream), *U = falloc((size_t)(k * nn));
  for (int64_t b = 0; b < k; b++)
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) {
        const int64_t e = b * nn + i * n + j;
        if (j < i) G[e] = G[b * nn + j * n + i];
        U[e] = j < i ? NAN : G[e];
      }
  *sym = G;
  return U;
}

/* heads_symv on random symmetric float32 blocks, given by their upper triangles, against the
 * plain sum in long double over the whole blocks and the float64 in: within BOUND_HEADS_SYMV(n)
 * (error_bounds.h: in rounded to float32, a float32 sum of n products, the float64 lambda term)
 * of sum_j |G_c[i,j] in_j| + |lambda in_i|; the long double reference adds 2^-64 of that, inside
 * C_ROUND. */
ParameterizedTest(const on_device *c, backend_ops, heads_symv_matches_dense_product,
                  .fini = backend_close) {
  backend_open(c->dev);
  const double lambdas[2] = {0.0, 0.37};
  for (size_t t = 0; t < sizeof symv_cases / sizeof *symv_cases; t++) {
    const int64_t n = symv_cases[t].n, k = symv_cases[t].k, N = n * k, nn = n * n;
    float *G;
    const float *U = upper_blocks(n, k, 1101 + t, &G);
    const double *in = dnormal(N, 1201 + t);
    float *dG = dev_from(U, (size_t)(k * nn) * sizeof(float));
    double *din = dev_from(in, (size_t)N * sizeof(double)),
           *dout = dev_alloc((size_t)N * sizeof(double));
    double *out = dalloc((size_t)N), *want = dalloc((size_t)N), *scale = dalloc((size_t)N);
    for (int l = 0; l < 2; l++) {
      const double lambda = lambdas[l];
      be->ops->heads_symv(be->ctx, n, k, dG, lambda, din, dout);
      download(out, dout, (size_t)N * sizeof(double));
      for (int64_t i = 0; i < n; i++)
        for (int64_t b = 0; b < k; b++) {
          long double acc = (long double)lambda * in[i * k + b];
          double abs_sum = fabs(lambda * in[i * k + b]);
          for (int64_t j = 0; j < n; j++) {
            acc += (long double)G[b * nn + i * n + j] * in[j * k + b];
            abs_sum += fabs((double)G[b * nn + i * n + j] * in[j * k + b]);
          }
          want[i * k + b] = (double)acc, scale[i * k + b] = abs_sum;
        }
      const double r = worst_ratio((size_t)N, out, want, scale, BOUND_HEADS_SYMV(n));
      cr_expect(r <= 1.0, ON "heads_symv n=%ld k=%ld lambda=%g: %.3g of the bound", BE, (long)n,
                (long)k, lambda, r);
    }
    dev_free(dG), dev_free(din), dev_free(dout);
  }
}

/* The CPU's heads_symv on 1 OpenMP thread and on 3 gives the same bits (its sums go by tiles
 * that depend on n alone), at n past its threading threshold and over several tiles. */
Test(backend_ops, cpu_heads_symv_does_not_depend_on_the_thread_count, .init = open_cpu,
     .fini = backend_close) {
  const int64_t n = 1000, k = 3, N = n * k;
  float *G;
  const float *U = upper_blocks(n, k, 1301, &G);
  const double *in = dnormal(N, 1302);
  double *out[2] = {dalloc((size_t)N), dalloc((size_t)N)};
  const int threads[2] = {1, 3}, saved = omp_get_max_threads();
  for (int t = 0; t < 2; t++) {
    omp_set_num_threads(threads[t]);
    be->ops->heads_symv(be->ctx, n, k, U, 0.37, in, out[t]); /* CPU memory is host memory */
  }
  omp_set_num_threads(saved);
  cr_expect(memcmp(out[0], out[1], (size_t)N * sizeof(double)) == 0,
            "heads_symv differs on 3 threads");
}

ParameterizedTestParameters(backend_ops, heads_mean_is_the_blocks_float_sum) { DEVICE_PARAMS(); }

/* heads_mean's upper triangle is each entry's float32 sum over the blocks in order, widened and
 * times 1 / k, bit for bit on every backend (elementwise: one order of additions); the blocks'
 * part below the diagonal (NaN here) is not read and R's (NaN before) not written. */
ParameterizedTest(const on_device *c, backend_ops, heads_mean_is_the_blocks_float_sum,
                  .fini = backend_close) {
  backend_open(c->dev);
  for (size_t t = 0; t < sizeof symv_cases / sizeof *symv_cases; t++) {
    const int64_t n = symv_cases[t].n, k = symv_cases[t].k, nn = n * n;
    float *G;
    const float *U = upper_blocks(n, k, 1401 + t, &G);
    double *R = dalloc((size_t)nn);
    for (int64_t e = 0; e < nn; e++) R[e] = NAN;
    float *dG = dev_from(U, (size_t)(k * nn) * sizeof(float));
    double *dR = dev_from(R, (size_t)nn * sizeof(double));
    be->ops->heads_mean(be->ctx, n, k, dG, dR);
    download(R, dR, (size_t)nn * sizeof(double));
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) {
        if (j < i) {
          cr_assert(isnan(R[i * n + j]),
                    ON
                    "heads_mean n=%ld k=%ld wrote R[%ld, %ld] below the "
                    "diagonal",
                    BE, (long)n, (long)k, (long)i, (long)j);
          continue;
        }
        float sum = U[i * n + j];
        for (int64_t b = 1; b < k; b++) sum += U[b * nn + i * n + j];
        const double want = (double)sum * (1.0 / (double)k);
        cr_assert(memcmp(&R[i * n + j], &want, sizeof want) == 0,
                  ON
                  "heads_mean n=%ld k=%ld: R[%ld, %ld] = %.17g, the blocks' float sum gives %.17g",
                  BE, (long)n, (long)k, (long)i, (long)j, R[i * n + j], want);
      }
    dev_free(dG), dev_free(dR);
  }
}

ParameterizedTestParameters(backend_ops, gram_heads_refuses_heads_off_mask_words) {
  DEVICE_PARAMS();
}

/* h = m / (2 k) not a multiple of 32 (heads would split mask words), or m not 2 k h: the sticky
 * error names the op, G is left alone */
ParameterizedTest(const on_device *c, backend_ops, gram_heads_refuses_heads_off_mask_words,
                  .fini = backend_close) {
  backend_open(c->dev);
  problem p = make_problem(8, 3, 96, 2, SEED + 99); /* h = 24 */
  float *dG = dev_alloc(2 * 64 * sizeof(float));
  be->ops->gram_heads(be->ctx, p.dm, p.dX, NULL, p.dM, p.dwork, dG);
  const char *err = sgn_backend_error(be);
  cr_assert_not_null(err, ON "h = 24 accepted", BE);
  cr_expect(strstr(err, "gram_heads") != NULL, ON "message: %s", BE, err);
}

/* ---- wiring of the sketch and factorization slots ---- */

/* The CPU's sketch slot is the sgn_sketch_*_cpu function of each kind (the GPU's sketches are
 * checked against these in test_gpu_ops.c). */
Test(backend_ops, cpu_sketch_slots_dispatch_by_kind, .init = open_cpu, .fini = backend_close) {
  const int64_t n = 20, s = 80;
  problem p = make_problem(n, 9, 24, 1, SEED + 70);
  const sgn_sketch kinds[4] = {SGN_SKETCH_SRHT, SGN_SKETCH_GAUSSIAN, SGN_SKETCH_SRFT,
                               SGN_SKETCH_COUNTSKETCH};
  for (int t = 0; t < 4; t++) {
    const size_t wb = be->ops->sketch_work_bytes(be->ctx, p.dm, kinds[t], s);
    cr_expect_eq(wb, sgn_sketch_work_bytes_cpu(p.dm, kinds[t], s));
    void *w1 = dev_alloc(wb + 1), *w2 = host_alloc(wb + 1);
    float *Y1 = dev_alloc((size_t)(n * s) * sizeof(float)), *Y2 = falloc((size_t)(n * s));
    be->ops->sketch(be->ctx, p.dm, kinds[t], s, 5, p.dX, p.dM, w1, Y1);
    if (kinds[t] == SGN_SKETCH_SRHT) sgn_sketch_srht_cpu(p.dm, s, 5, p.dX, p.dM, w2, Y2, NULL);
    else if (kinds[t] == SGN_SKETCH_GAUSSIAN)
      sgn_sketch_gaussian_cpu(p.dm, s, 5, p.dX, p.dM, w2, Y2, NULL);
    else if (kinds[t] == SGN_SKETCH_SRFT) sgn_sketch_srft_cpu(p.dm, s, 5, p.dX, p.dM, w2, Y2, NULL);
    else sgn_sketch_countsketch_cpu(p.dm, s, 5, p.dX, p.dM, w2, Y2, NULL);
    cr_expect(memcmp(Y1, Y2, (size_t)(n * s) * sizeof(float)) == 0, "kind %d", t);
  }
}

ParameterizedTestParameters(backend_ops, factorization_slots) { DEVICE_PARAMS(); }

/* gram -> cholesky -> rtr_solve solves (G + lambda I) x = b; sketch_r gives
 * R^T R = Y Y^T + lambda I at every precision; each within the backward-error bounds of the
 * table (the Gram's: sketch_gram_bound). */
ParameterizedTest(const on_device *c, backend_ops, factorization_slots, .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 30, k = 2, N = n * k;
  const double lambda = 1e-3;
  problem p = make_problem(n, 6, 200, k, SEED + 80);
  const size_t NN = (size_t)(N * N);
  double *dG = dev_alloc(NN * sizeof(double));
  be->ops->gram(be->ctx, p.dm, p.dX, p.dM, p.dA, 1, p.dwork, dG);
  const double *G = host_from(dG, NN * sizeof(double));
  void *cwork = dev_alloc(be->ops->cholesky_work_bytes(be->ctx, N) + 1);
  cr_assert_eq(be->ops->cholesky(be->ctx, N, dG, lambda, cwork), 0, ON "G + lambda I not SPD?", BE);
  const double *R = host_from(dG, NN * sizeof(double));
  const double *b = dnormal(N, 1001);
  double *dx = dev_from(b, (size_t)N * sizeof(double));
  be->ops->rtr_solve(be->ctx, N, 1, dG, dx);
  const double *x = host_from(dx, (size_t)N * sizeof(double));
  /* |residual| <= C_ROUND (gamma64(3N + 1) |R|^T |R| |x| + gamma64(N + 1) (|G| + lambda) |x|) */
  double worst = 0.0;
  for (int64_t a = 0; a < N; a++) {
    double acc = lambda * x[a], rr = 0.0, gx = lambda * fabs(x[a]);
    for (int64_t col = 0; col < N; col++) {
      acc += G[a * N + col] * x[col];
      gx += fabs(G[a * N + col] * x[col]);
      double rtr = 0.0;
      for (int64_t l = 0; l <= (a < col ? a : col); l++) rtr += fabs(R[l * N + a] * R[l * N + col]);
      rr += rtr * fabs(x[col]);
    }
    const double bound = C_ROUND *
                         (gamma64(3.0 * (double)N + 1) * rr + gamma64((double)N + 1) * gx);
    worst = fmax(worst, fabs(acc - b[a]) / bound);
  }
  cr_expect(worst <= 1.0, ON "(G + lambda I) x - b: %.3g of the bound", BE, worst);

  const int64_t s = 4 * n;
  const float *Y = fnormal((size_t)(n * s), SEED, 1002);
  float *dY = dev_from(Y, (size_t)(n * s) * sizeof(float));
  double *dRq = dev_alloc((size_t)(n * n) * sizeof(double));
  /* at each precision, |R^T R - Y Y^T - lambda I| <= C_ROUND (2 gamma64(n + 1) |R|^T |R|) +
   * (sketch_gram_bound(p, s) + C_ROUND 2 gamma64(s + 1)) |Y| |Y|^T, the first for the Cholesky
   * and the test's sum, the second for the Gram (error_bounds.h) and the test's own Y Y^T */
  for (int q = SGN_PRECISION_FP64; q <= SGN_PRECISION_BF16; q++) {
    const sgn_precision prec = (sgn_precision)q;
    void *w = dev_alloc(be->ops->sketch_r_work_bytes(be->ctx, n, s, prec) + 1);
    cr_assert_eq(be->ops->sketch_r(be->ctx, n, s, dY, lambda, prec, w, dRq), 0,
                 ON "sketch_r at precision %d", BE, q);
    const double *Rq = host_from(dRq, (size_t)(n * n) * sizeof(double));
    worst = 0.0;
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < n; j++) {
        double rtr = 0.0, artr = 0.0, yyt = (i == j) ? lambda : 0.0, ayyt = yyt;
        for (int64_t l = 0; l < n; l++) {
          rtr += Rq[l * n + i] * Rq[l * n + j];
          artr += fabs(Rq[l * n + i] * Rq[l * n + j]);
        }
        for (int64_t l = 0; l < s; l++) {
          yyt += (double)Y[i * s + l] * Y[j * s + l];
          ayyt += fabs((double)Y[i * s + l] * Y[j * s + l]);
        }
        const double bound = C_ROUND * 2.0 * gamma64((double)n + 1) * artr +
                             (sketch_gram_bound(prec, s) + C_ROUND * 2.0 * gamma64((double)s + 1)) *
                                 ayyt;
        worst = fmax(worst, fabs(rtr - yyt) / bound);
      }
    cr_expect(worst <= 1.0, ON "precision %d: R^T R vs Y Y^T + lambda I: %.3g of the bound", BE, q,
              worst);
  }
}

/* ---- the stop flag ---- */

/* bytes of a backend buffer that differ from the fill byte (the buffer was filled with it) */
static size_t changed_bytes(const void *dev, size_t bytes, unsigned char fill) {
  const unsigned char *h = host_from(dev, bytes);
  size_t changed = 0;
  for (size_t e = 0; e < bytes; e++) changed += h[e] != fill;
  return changed;
}

/* a backend buffer of `bytes` filled with byte `fill` (0x40: doubles 2.0..., floats 3.0...) */
static void *dev_filled(size_t bytes, unsigned char fill) {
  unsigned char *h = host_alloc(bytes);
  memset(h, fill, bytes);
  return dev_from(h, bytes);
}

ParameterizedTestParameters(backend_ops, a_set_stop_flag_ends_long_ops_early) { DEVICE_PARAMS(); }

/* With the stop flag set (backend.h set_stop) before the call, the long ops leave their outputs
 * untouched: gram, gram_heads, every sketch and sketch_gram (each precision) write nothing,
 * cholesky, sketch_r (each precision) and r_inverse return SGN_OP_STOPPED; no sticky error. With
 * the flag cleared the backend works as if it had never been set: the Gram and the Cholesky
 * factor bit for bit those of before. */
ParameterizedTest(const on_device *c, backend_ops, a_set_stop_flag_ends_long_ops_early,
                  .fini = backend_close) {
  backend_open(c->dev);
  const int64_t n = 40, k = 2, m = 128, s = 4 * n, N = n * k; /* m = 2 k h, h = 32: heads */
  const size_t GB = (size_t)(N * N) * sizeof(double), RB = (size_t)(n * n) * sizeof(double);
  const unsigned char F = 0x40;
  problem p = make_problem(n, 6, m, k, SEED + 85);
  double *dG0 = dev_alloc(GB), *dR0 = dev_alloc(GB);
  be->ops->gram(be->ctx, p.dm, p.dX, p.dM, p.dA, 1, p.dwork, dG0);
  be->ops->copy(be->ctx, dR0, dG0, GB);
  void *cw = dev_alloc(be->ops->cholesky_work_bytes(be->ctx, N) + 1);
  cr_assert_eq(be->ops->cholesky(be->ctx, N, dR0, 1e-3, cw), 0, ON "not SPD?", BE);
  const double *G0 = host_from(dG0, GB), *R0 = host_from(dR0, GB);

  sgn_stop_flag stop = 1;
  sgn_backend_set_stop(be, &stop);
  double *dG = dev_filled(GB, F);
  be->ops->gram(be->ctx, p.dm, p.dX, p.dM, p.dA, 1, p.dwork, dG);
  cr_expect_eq(changed_bytes(dG, GB, F), 0, ON "gram wrote G after the stop", BE);
  float *dGh = dev_filled((size_t)(k * n * n) * sizeof(float), F);
  be->ops->gram_heads(be->ctx, p.dm, p.dX, NULL, p.dM, p.dwork, dGh);
  cr_expect_eq(changed_bytes(dGh, (size_t)(k * n * n) * sizeof(float), F), 0,
               ON "gram_heads wrote G after the stop", BE);
  sgn_dims d1 = p.dm;
  d1.k = 1;
  for (int kind = 0; kind < 4; kind++) {
    void *w = dev_alloc(be->ops->sketch_work_bytes(be->ctx, d1, (sgn_sketch)kind, s) + 1);
    float *dY = dev_filled((size_t)(n * s) * sizeof(float), F);
    be->ops->sketch(be->ctx, d1, (sgn_sketch)kind, s, 7, p.dX, p.dM, w, dY);
    cr_expect_eq(changed_bytes(dY, (size_t)(n * s) * sizeof(float), F), 0,
                 ON "sketch %d wrote Y after the stop", BE, kind);
    if (kind == 0)
      for (int q = SGN_PRECISION_FP64; q <= SGN_PRECISION_BF16; q++) {
        const sgn_precision prec = (sgn_precision)q;
        double *dR = dev_filled(RB, F);
        void *rw = dev_alloc(be->ops->sketch_r_work_bytes(be->ctx, n, s, prec) + 1);
        cr_expect_eq(be->ops->sketch_r(be->ctx, n, s, dY, 1e-3, prec, rw, dR), SGN_OP_STOPPED,
                     ON "sketch_r, precision %d", BE, q);
        cr_expect_eq(changed_bytes(dR, RB, F), 0,
                     ON "sketch_r (precision %d) wrote R after the stop", BE, q);
        be->ops->sketch_gram(be->ctx, n, s, dY, prec, rw, dR);
        cr_expect_eq(changed_bytes(dR, RB, F), 0,
                     ON "sketch_gram (precision %d) wrote G after the stop", BE, q);
      }
  }
  be->ops->copy(be->ctx, dG, dG0, GB);
  cr_expect_eq(be->ops->cholesky(be->ctx, N, dG, 1e-3, cw), SGN_OP_STOPPED, ON "cholesky", BE);
  cr_expect(memcmp(host_from(dG, GB), G0, GB) == 0, ON "a stopped cholesky wrote G", BE);
  void *iw = dev_alloc(be->ops->r_inverse_work_bytes(be->ctx, N) + 1);
  be->ops->copy(be->ctx, dG, dR0, GB);
  cr_expect_eq(be->ops->r_inverse(be->ctx, N, dG, iw), SGN_OP_STOPPED, ON "r_inverse", BE);
  cr_expect(memcmp(host_from(dG, GB), R0, GB) == 0, ON "a stopped r_inverse wrote R", BE);
  cr_expect_null(sgn_backend_error(be), ON "a stop left an error: %s", BE, sgn_backend_error(be));

  stop = 0;
  be->ops->gram(be->ctx, p.dm, p.dX, p.dM, p.dA, 1, p.dwork, dG);
  cr_expect(memcmp(host_from(dG, GB), G0, GB) == 0, ON "the Gram after the stop differs", BE);
  cr_expect_eq(be->ops->cholesky(be->ctx, N, dG, 1e-3, cw), 0, ON "cholesky after the stop", BE);
  cr_expect(memcmp(host_from(dG, GB), R0, GB) == 0, ON "R after the stop differs", BE);
  sgn_backend_set_stop(be, NULL);
  cr_expect_null(sgn_backend_error(be), ON "%s", BE, sgn_backend_error(be));
}

/* ---- the sticky error ---- */

/* A scratch growth that cannot be met (gram's row blocks for n = 2^61 samples: 64 rows of 2^62
 * floats, more bytes than size_t counts, refused before the allocator is asked, so the test
 * means the same with or without ASan) sets the CPU backend's error slot; from then on ops return
 * at entry, leaving their outputs alone, free still frees, and the process lives. gram touches
 * none of its arrays before it sizes the blocks, so the NULL arrays are never read. */
Test(backend_ops, cpu_failed_scratch_growth_is_a_sticky_error, .init = open_cpu,
     .fini = backend_close) {
  cr_assert_null(sgn_backend_error(be), "a fresh backend reports no error");
  problem p = make_problem(8, 3, 64, 1, SEED);
  cr_assert_null(sgn_backend_error(be), "a forward that worked reports no error");

  const sgn_dims huge = {(int64_t)1 << 61, 1, 64, 1, 32, 0}; /* chunked: no whole-mask expansion */
  be->ops->gram(be->ctx, huge, NULL, NULL, NULL, 0, NULL, NULL);
  const char *err = sgn_backend_error(be);
  cr_assert_not_null(err, "the failed growth left no error");
  cr_expect(strstr(err, "cpu backend") && strstr(err, "scratch"), "message: %s", err);
  cr_expect(strchr(err, '\n') == NULL, "one line: %s", err);

  /* later ops do nothing: outputs keep their sentinels, reductions give NaN */
  float F0[8];
  for (int i = 0; i < 8; i++) p.dF[i] = F0[i] = -7.0f; /* CPU: backend memory is host memory */
  be->ops->forward(be->ctx, p.dm, p.dX, p.dW, p.dA, p.dwork, p.dM, p.dF);
  cr_expect(memcmp(p.dF, F0, sizeof F0) == 0, "forward wrote F after the error");
  double x[4] = {1, 2, 3, 4}, y[4] = {5, 6, 7, 8};
  be->ops->axpy(be->ctx, 4, 2.0, x, y);
  cr_expect(y[0] == 5 && y[3] == 8, "axpy ran after the error");
  cr_expect(isnan(be->ops->dot(be->ctx, 4, x, y)), "dot returned a number after the error");
  cr_expect_null(be->ops->alloc(be->ctx, 64), "alloc succeeded after the error");
  cr_expect_neq(be->ops->cholesky(be->ctx, 1, x, 0.0, NULL), 0, "cholesky reported success");
  cr_expect_str_eq(sgn_backend_error(be), err, "the first error is kept");
}

/* ---- the preconditioner as two products ---- */

/* R (N, N) row-major upper, the backend's Cholesky factor of D (B B^T / N + I / 20) D with B
 * (N, N) Gaussian and D = diag(10^(g (2 i / (N - 1) - 1))): cond(R) about 9 at g = 0, graded
 * rows and columns and a condition up to 10^(2 g) times that at g > 0. On the backend; *Rh gets
 * a host copy. */
static double *graded_r(int64_t N, double g, uint64_t seed, double **Rh) {
  const size_t NN = (size_t)(N * N);
  double *B = dalloc(NN), *G = dalloc(NN), *D = dalloc((size_t)N);
  for (size_t e = 0; e < NN; e++) B[e] = sgn_rng_normal(seed, 1101, e);
  for (int64_t i = 0; i < N; i++)
    D[i] = N > 1 ? pow(10.0, g * (2.0 * (double)i / (double)(N - 1) - 1.0)) : 1.0;
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < N; j++) {
      double acc = 0.0;
      for (int64_t t = 0; t < N; t++) acc += B[i * N + t] * B[j * N + t];
      G[i * N + j] = D[i] * D[j] * (acc / (double)N + (i == j ? 0.05 : 0.0));
    }
  double *dR = dev_from(G, NN * sizeof(double));
  void *w = dev_alloc(be->ops->cholesky_work_bytes(be->ctx, N) + 1);
  cr_assert_eq(be->ops->cholesky(be->ctx, N, dR, 0.0, w), 0, ON "N=%ld g=%g: not SPD?", BE, (long)N,
               g);
  *Rh = host_from(dR, NN * sizeof(double));
  return dR;
}

/* ||A||inf (max row sum of |A|) and ||A||1 (max column sum) of a row-major (N, N) A */
static double norm_inf(int64_t N, const double *A) {
  double most = 0.0;
  for (int64_t i = 0; i < N; i++) {
    double row = 0.0;
    for (int64_t j = 0; j < N; j++) row += fabs(A[i * N + j]);
    most = fmax(most, row);
  }
  return most;
}

static double norm_1(int64_t N, const double *A) {
  double most = 0.0;
  for (int64_t j = 0; j < N; j++) {
    double col = 0.0;
    for (int64_t i = 0; i < N; i++) col += fabs(A[i * N + j]);
    most = fmax(most, col);
  }
  return most;
}

/* max |(A B - I)_ij| for row-major (N, N) A and B, summed in long double */
static double residual_max(int64_t N, const double *A, const double *B) {
  double worst = 0.0;
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < N; j++) {
      long double acc = i == j ? -1.0L : 0.0L;
      for (int64_t t = 0; t < N; t++) acc += (long double)A[i * N + t] * B[t * N + j];
      worst = fmax(worst, fabs((double)acc));
    }
  return worst;
}

/* sizes on both sides of LAPACK's block of 64, well conditioned (g = 0) and graded (g = 1.5) */
static const int64_t rinv_sizes[] = {1, 7, 65, 130, 300};
static const double rinv_grades[] = {0.0, 1.5};
#define NRINV_SIZES (sizeof rinv_sizes / sizeof *rinv_sizes)

ParameterizedTestParameters(backend_ops, r_inverse_inverts) { DEVICE_PARAMS(); }

/* X = r_inverse(R): upper with exact zeros below, X R - I and R X - I within BOUND_R_INVERSE(N)
 * kappa^2 and one of them within BOUND_R_INVERSE(N) kappa (kappa = ||R||inf ||X||inf, the table);
 * r_inverse of X gives R back within (N + 1) BOUND_R_INVERSE(N) kappa^2 ||R||inf. */
ParameterizedTest(const on_device *c, backend_ops, r_inverse_inverts, .fini = backend_close) {
  backend_open(c->dev);
  for (size_t t = 0; t < NRINV_SIZES; t++)
    for (int q = 0; q < 2; q++) {
      const int64_t N = rinv_sizes[t];
      const double g = rinv_grades[q];
      const size_t NN = (size_t)(N * N);
      double *R;
      double *dX = graded_r(N, g, SEED + 90 + (uint64_t)N, &R);
      void *w = dev_alloc(be->ops->r_inverse_work_bytes(be->ctx, N) + 1);
      cr_assert_eq(be->ops->r_inverse(be->ctx, N, dX, w), 0, ON "N=%ld g=%g", BE, (long)N, g);
      const double *X = host_from(dX, NN * sizeof(double));
      for (int64_t i = 0; i < N; i++)
        for (int64_t j = 0; j < i; j++)
          cr_assert_eq(X[i * N + j], 0.0, ON "N=%ld: X[%ld, %ld] below the diagonal", BE, (long)N,
                       (long)i, (long)j);
      const double kappa = norm_inf(N, R) * norm_inf(N, X), b1 = BOUND_R_INVERSE(N) * kappa;
      const double left = residual_max(N, X, R), right = residual_max(N, R, X);
      cr_expect(fmax(left, right) <= b1 * kappa,
                ON "N=%ld g=%g kappa %.3g: X R - I %.3g, R X - I %.3g, bound %.3g", BE, (long)N, g,
                kappa, left, right, b1 * kappa);
      cr_expect(fmin(left, right) <= b1,
                ON "N=%ld g=%g kappa %.3g: X R - I %.3g of the bound, R X - I %.3g", BE, (long)N, g,
                kappa, left / b1, right / b1);
      cr_assert_eq(be->ops->r_inverse(be->ctx, N, dX, w), 0, ON "N=%ld g=%g: X^-1", BE, (long)N, g);
      const double *R2 = host_from(dX, NN * sizeof(double));
      double worst = 0.0;
      for (size_t e = 0; e < NN; e++) worst = fmax(worst, fabs(R2[e] - R[e]));
      const double b2 = (double)(N + 1) * b1 * kappa * norm_inf(N, R);
      cr_expect(worst <= b2, ON "N=%ld g=%g: r_inverse twice is off R by %.3g of the bound", BE,
                (long)N, g, worst / b2);
    }
}

ParameterizedTestParameters(backend_ops, rinv_apply_matches_rtr_solve) { DEVICE_PARAMS(); }

/* rinv_apply with X = r_inverse(R) against rtr_solve on R, entry by entry: BOUND_RINV_APPLY(N)
 * (|X| |X|^T |v|)_i for the products' roundings, plus, normwise, X's own error and rtr_solve's:
 * X's entries within BOUND_R_INVERSE(N) kappa ||X||inf of R^-1's (the table) put X X^T v within
 * 2 N BOUND_R_INVERSE(N) kappa ||X||inf ||X||1 ||v||inf of R^-1 R^-T v, and rtr_solve's two
 * backward-stable solves within 2 BOUND_R_INVERSE(N) kappa of the same product; kappa the larger
 * of ||R||inf ||X||inf and ||R||1 ||X||1. */
ParameterizedTest(const on_device *c, backend_ops, rinv_apply_matches_rtr_solve,
                  .fini = backend_close) {
  backend_open(c->dev);
  for (size_t t = 0; t < NRINV_SIZES; t++)
    for (int q = 0; q < 2; q++)
      for (int64_t k = 1; k <= 3; k += 2) {
        const int64_t N = rinv_sizes[t];
        const double g = rinv_grades[q];
        const size_t NN = (size_t)(N * N), Nk = (size_t)(N * k);
        double *R;
        double *dR = graded_r(N, g, SEED + 95 + (uint64_t)N, &R),
               *dX = dev_alloc(NN * sizeof(double));
        be->ops->copy(be->ctx, dX, dR, NN * sizeof(double));
        void *w = dev_alloc(be->ops->r_inverse_work_bytes(be->ctx, N) + 1);
        cr_assert_eq(be->ops->r_inverse(be->ctx, N, dX, w), 0, ON "N=%ld g=%g", BE, (long)N, g);
        const double *X = host_from(dX, NN * sizeof(double));
        const double *V = dnormal((int64_t)Nk, 1200 + (uint64_t)(N * k));
        double *dA = dev_from(V, Nk * sizeof(double)), *dS = dev_from(V, Nk * sizeof(double));
        be->ops->rinv_apply(be->ctx, N, k, dX, dA, dev_alloc(Nk * sizeof(double)));
        be->ops->rtr_solve(be->ctx, N, k, dR, dS);
        const double *A = host_from(dA, Nk * sizeof(double)),
                     *S = host_from(dS, Nk * sizeof(double));
        const double kappa = fmax(norm_inf(N, R) * norm_inf(N, X), norm_1(N, R) * norm_1(N, X));
        const double f64 = 2.0 * (double)(N + 1) * BOUND_R_INVERSE(N) * kappa * norm_inf(N, X) *
                           norm_1(N, X);
        double worst = 0.0;
        for (int64_t col = 0; col < k; col++) {
          double vmax = 0.0, *w1 = dalloc((size_t)N);
          for (int64_t i = 0; i < N; i++) vmax = fmax(vmax, fabs(V[i * k + col]));
          for (int64_t j = 0; j < N; j++) /* w1 = |X|^T |v| */
            for (int64_t i = 0; i < N; i++) w1[j] += fabs(X[i * N + j] * V[i * k + col]);
          for (int64_t i = 0; i < N; i++) {
            double scale = 0.0; /* (|X| w1)_i */
            for (int64_t j = 0; j < N; j++) scale += fabs(X[i * N + j]) * w1[j];
            const double bound = BOUND_RINV_APPLY(N) * scale + f64 * vmax;
            worst = fmax(worst, fabs(A[i * k + col] - S[i * k + col]) / bound);
          }
        }
        cr_expect(worst <= 1.0, ON "N=%ld g=%g k=%ld: %.3g of the bound", BE, (long)N, g, (long)k,
                  worst);
      }
}
