/* test_mask_counts.c — the CPU's integer mask counts (cpu/mask_counts.c) and the Gram built on
 * them (cpu/gram.c): every kernel (scalar, AVX2, AVX-512 VPOPCNTDQ, those this CPU runs) gives
 * counts equal to a bit-by-bit reference on shapes off every boundary the kernels have (32-bit
 * words, 64-bit popcounts, 8 and 16 word vectors, 4-row blocks, 128-row tiles, 1024-word
 * slices), full or upper triangle; the Gram is the same bits under every kernel and in chunks;
 * with k > 1 its signed blocks equal the definition sum_r A[r,c] A[r,e] M_ir M_jr.
 * Tolerances: none. Counts are integers; for the Gram, X has small integer entries so X X^T is
 * exact in float32 in any order, and G = K S (1/m) is then one float64 expression of exact
 * integers K and S, compared bit for bit. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backends.h"
#include "mask_counts.h"

#define SEED 20260601u

/* ---- helpers ---- */

static uint64_t mix(uint64_t x) { /* splitmix64 */
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* rows random bit rows of m neurons (padding bits 0), each bit set with probability about
 * dens / 8 (dens 1..7), varying by row so that counts span a range */
static uint32_t *random_mask(int64_t rows, int64_t m, uint64_t seed) {
  const int64_t mw = SGN_MASK_WORDS(m);
  uint32_t *M = host_alloc((size_t)(rows * mw + 1) * sizeof(uint32_t));
  for (int64_t i = 0; i < rows; i++) {
    const uint64_t dens = 1 + mix(seed ^ (uint64_t)i) % 7;
    for (int64_t r = 0; r < m; r++)
      if (mix(seed * 31 + (uint64_t)(i * m + r)) % 8 < dens) M[i * mw + (r >> 5)] |= 1u << (r & 31);
  }
  return M;
}

/* bit r of row i */
static int bit(const uint32_t *M, int64_t mw, int64_t i, int64_t r) {
  return (int)((M[i * mw + (r >> 5)] >> (r & 31)) & 1u);
}

/* the reference: one neuron at a time */
static int32_t ref_count(const uint32_t *Ma, int64_t a, const uint32_t *Mb, int64_t b, int64_t m) {
  const int64_t mw = SGN_MASK_WORDS(m);
  int32_t c = 0;
  for (int64_t r = 0; r < m; r++) c += bit(Ma, mw, a, r) & bit(Mb, mw, b, r);
  return c;
}

static const sgn_popcount_kernel kernels[] = {SGN_POPCOUNT_AUTO, SGN_POPCOUNT_SCALAR,
                                              SGN_POPCOUNT_AVX2, SGN_POPCOUNT_AVX512};
#define NKERNELS (sizeof kernels / sizeof *kernels)

/* ---- counts against the reference ---- */

typedef struct count_case {
  int64_t ra, rb, m;
} count_case;

ParameterizedTestParameters(mask_counts, match_reference) {
  static count_case cases[] = {
      {1, 1, 1},           {3, 5, 31},     {5, 3, 32},     {4, 4, 33},    {7, 9, 63},
      {9, 7, 64},          {6, 6, 65},     {5, 11, 100},   {3, 4, 255},   {4, 3, 256},
      {5, 6, 257},         {2, 9, 511},    {9, 2, 512},    {6, 5, 513},   {3, 3, 1000},
      {130, 133, 67},      {129, 257, 40}, {257, 130, 97}, {4, 5, 32768}, {5, 4, 32801},
      {3, 6, 65536 + 545},
  };
  return cr_make_param_array(count_case, cases, sizeof cases / sizeof *cases);
}

/* Every kernel this CPU runs, full and upper, against ref_count. The upper case puts Ma's rows
 * first in Mb, as the Gram does, and checks only b >= a. */
ParameterizedTest(const count_case *c, mask_counts, match_reference, .timeout = 120) {
  const int64_t ra = c->ra, rb = c->rb, m = c->m, mw = SGN_MASK_WORDS(m);
  const uint32_t *Ma = random_mask(ra, m, SEED + (uint64_t)m);
  const uint32_t *Mb = random_mask(rb, m, SEED + 7 * (uint64_t)m + 1);
  int32_t *want = host_alloc((size_t)(ra * rb) * sizeof(int32_t));
  for (int64_t a = 0; a < ra; a++)
    for (int64_t b = 0; b < rb; b++) want[a * rb + b] = ref_count(Ma, a, Mb, b, m);
  /* the upper case: Mu = [Ma; Mb] against itself, rows [0, ra) of it */
  const int64_t ru = ra + rb;
  uint32_t *Mu = host_alloc((size_t)(ru * mw) * sizeof(uint32_t));
  memcpy(Mu, Ma, (size_t)(ra * mw) * sizeof(uint32_t));
  memcpy(Mu + ra * mw, Mb, (size_t)(rb * mw) * sizeof(uint32_t));
  int32_t *got = host_alloc((size_t)(ra * ru) * sizeof(int32_t));
  int ran = 0;
  for (size_t t = 0; t < NKERNELS; t++) {
    const sgn_popcount_kernel kern = kernels[t];
    const char *name = sgn_popcount_kernel_name(kern);
    if (!sgn_popcount_kernel_supported(kern)) {
      cr_log_info("ra=%ld rb=%ld m=%ld: this CPU does not run the %s kernel", (long)ra, (long)rb,
                  (long)m, name);
      continue;
    }
    ran++;
    memset(got, 0x5a, (size_t)(ra * rb) * sizeof(int32_t));
    sgn_mask_counts(kern, mw, Ma, ra, Mb, rb, 0, got, rb);
    for (int64_t a = 0; a < ra; a++)
      for (int64_t b = 0; b < rb; b++)
        cr_assert_eq(got[a * rb + b], want[a * rb + b],
                     "%s ra=%ld rb=%ld m=%ld: C[%ld,%ld] = %d, want %d", name, (long)ra, (long)rb,
                     (long)m, (long)a, (long)b, got[a * rb + b], want[a * rb + b]);
    sgn_mask_counts(kern, mw, Mu, ra, Mu, ru, 1, got, ru);
    for (int64_t a = 0; a < ra; a++)
      for (int64_t b = a; b < ru; b++) {
        const int32_t w = b < ra ? ref_count(Ma, a, Ma, b, m)
                                 : want[a * rb + (b - ra)]; /* Mu rows */
        cr_assert_eq(got[a * ru + b], w, "%s upper ra=%ld m=%ld: C[%ld,%ld] = %d, want %d", name,
                     (long)ra, (long)m, (long)a, (long)b, got[a * ru + b], w);
      }
  }
  cr_assert(ran >= 2, "the scalar and auto kernels always run");
}

/* The kernel sgn_popcount_kernel_pick takes: SGN_CPU_POPCOUNT when this CPU runs it, else the
 * best it runs; an unknown name is ignored. */
Test(mask_counts, pick_follows_the_environment) {
  unsetenv("SGN_CPU_POPCOUNT");
  const sgn_popcount_kernel best = sgn_popcount_kernel_pick();
  cr_assert(best != SGN_POPCOUNT_AUTO && sgn_popcount_kernel_supported(best));
  for (int k = SGN_POPCOUNT_SCALAR; k < SGN_POPCOUNT_KERNELS; k++) {
    cr_assert(k <= (int)best || !sgn_popcount_kernel_supported(k), "a better kernel runs");
    setenv("SGN_CPU_POPCOUNT", sgn_popcount_kernel_name(k), 1);
    cr_assert_eq(sgn_popcount_kernel_pick(), sgn_popcount_kernel_supported(k) ? k : (int)best, "%s",
                 sgn_popcount_kernel_name(k));
  }
  setenv("SGN_CPU_POPCOUNT", "avx9000", 1);
  cr_assert_eq(sgn_popcount_kernel_pick(), best);
}

/* ---- the Gram ---- */

typedef struct gram_case {
  int64_t n, d, m, k;
} gram_case;

ParameterizedTestParameters(mask_counts, gram_definition) {
  /* m off words and halves off words (m/2 = 50, 33, 16.5), past the 128-row tiles */
  static gram_case cases[] = {
      {7, 3, 100, 1}, {37, 4, 66, 3}, {23, 2, 33, 4}, {140, 3, 67, 2}, {9, 5, 1100, 3},
  };
  return cr_make_param_array(gram_case, cases, sizeof cases / sizeof *cases);
}

/* X with entries in {-2, ..., 2} (X X^T exact), the mask and A from the CPU's forward pass; the
 * full Gram under every kernel and in chunks of 6 neurons is, entry by entry, K S (1/m) with
 * K = <x_i, x_j> and S = sum_r A[r,c] A[r,e] M_ir M_jr counted one neuron at a time. */
ParameterizedTest(const gram_case *g, mask_counts, gram_definition, .init = open_cpu,
                  .fini = backend_close) {
  const int64_t n = g->n, d = g->d, m = g->m, k = g->k, N = n * k, mw = SGN_MASK_WORDS(m);
  const sgn_dims dm = {n, d, m, k, 0, 0};
  float *X = dev_alloc((size_t)(n * d) * sizeof(float));
  float *W = dev_alloc((size_t)(m * d) * sizeof(float));
  float *A = dev_alloc((size_t)(m * k) * sizeof(float));
  uint32_t *M = dev_alloc((size_t)(n * mw) * sizeof(uint32_t));
  float *F = dev_alloc((size_t)(n * k) * sizeof(float));
  float *work = dev_alloc(sgn_work_floats(dm) * sizeof(float));
  for (int64_t e = 0; e < n * d; e++) X[e] = (float)((int)(mix(SEED + (uint64_t)e) % 5) - 2);
  for (int64_t e = 0; e < m * d; e++)
    W[e] = (float)((double)(mix(SEED * 3 + (uint64_t)e) % 2001) / 1000.0 - 1.0);
  for (int64_t e = 0; e < m * k; e++) A[e] = mix(SEED * 5 + (uint64_t)e) & 1 ? 1.0f : -1.0f;
  be->ops->forward(be->ctx, dm, X, W, A, work, M, F);

  double *want = host_alloc((size_t)(N * N) * sizeof(double));
  const double inv_m = 1.0 / (double)m;
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) {
      float K = 0.0f;
      for (int64_t l = 0; l < d; l++) K += X[i * d + l] * X[j * d + l];
      for (int64_t c = 0; c < k; c++)
        for (int64_t e = 0; e < k; e++) {
          int32_t S = 0;
          for (int64_t r = 0; r < m; r++)
            S += bit(M, mw, i, r) * bit(M, mw, j, r) * (int32_t)(A[r * k + c] * A[r * k + e]);
          want[(i * k + c) * N + j * k + e] = (double)K * (double)S * inv_m;
        }
    }

  double *G = dev_alloc((size_t)(N * N) * sizeof(double));
  for (size_t t = 0; t < NKERNELS; t++)
    for (int chunk = 0; chunk < 2; chunk++) {
      const sgn_popcount_kernel kern = kernels[t];
      if (!sgn_popcount_kernel_supported(kern)) continue;
      if (kern == SGN_POPCOUNT_AUTO) unsetenv("SGN_CPU_POPCOUNT");
      else setenv("SGN_CPU_POPCOUNT", sgn_popcount_kernel_name(kern), 1);
      sgn_dims dc = dm;
      dc.mc = chunk ? 6 : 0;
      memset(G, 0xff, (size_t)(N * N) * sizeof(double));
      be->ops->gram(be->ctx, dc, X, M, A, 1, work, G);
      cr_assert_null(sgn_backend_error(be), "%s", sgn_backend_error(be));
      for (int64_t a = 0; a < N; a++)
        for (int64_t b = 0; b < N; b++)
          cr_assert(memcmp(&G[a * N + b], &want[a * N + b], sizeof(double)) == 0,
                    "%s mc=%ld n=%ld m=%ld k=%ld: G[%ld,%ld] = %.17g, want %.17g",
                    sgn_popcount_kernel_name(kern), (long)dc.mc, (long)n, (long)m, (long)k, (long)a,
                    (long)b, G[a * N + b], want[a * N + b]);
    }
}
