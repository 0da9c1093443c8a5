/* heads.c (cpu) — the separate outputs' block-diagonal Gram (backend.h gram_heads' k blocks, their
 * upper triangles): its product with the PCG's vectors (heads_symv), reading each block's upper
 * triangle once, and the blocks' mean that the preconditioner factors (heads_mean).
 *
 * The PCG on separate outputs reads all k blocks (k n^2 floats) per iteration, so the product is
 * bound by memory. OpenBLAS's SSYMV reads one triangle too, but its SkylakeX and Haswell kernels
 * (the ones this CPU gets) ran 3-4x slower than its Prescott one here (n = 4000, k = 10, 2
 * threads: 55-77 ms against 15-30 ms for the k products, from one triangle's 320 MB). This one
 * streams each row of the upper triangle once and uses it twice: the row's dot with the vector,
 * and the row times in_i added to the outputs right of the diagonal (the lower triangle's part,
 * by symmetry).
 *
 * Determinism: rows go in tiles of tile_rows(n) (a function of n alone); tile t keeps its sums
 * for the lower triangle in its own row of parts, and each output adds the parts of the tiles
 * above it and its own in tile order; each dot sums in 16 lanes added in a fixed tree, with no
 * FMA on any clone. So the result depends on n and the values alone, not on the threads or the
 * clone the CPU picks. */
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "linalg.h"

#define LANES 16         /* partial sums per dot: one AVX-512 register of floats */
#define TILE_ROWS_MIN 64 /* rows per tile at least */
#define TILES_MAX 64     /* tiles per block at most: the parts are TILES_MAX n floats */
/* Compiled for AVX-512 and AVX2 besides the baseline (the build has no -march), picked when the
 * library loads. No FMA: -std=c11 does not contract, so every clone rounds alike. */
#define HEADS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* Rows per tile: at least TILE_ROWS_MIN, so that there are at most TILES_MAX tiles. */
static int64_t tile_rows(int64_t n) {
  const int64_t t = (n + TILES_MAX - 1) / TILES_MAX;
  return t < TILE_ROWS_MIN ? TILE_ROWS_MIN : t;
}

static int64_t tiles(int64_t n) { return (n + tile_rows(n) - 1) / tile_rows(n); }

size_t sgn_heads_symv_scratch_floats(int64_t n) { return (size_t)(tiles(n) + 2) * (size_t)n; }

/* sum_t a[t], t < LANES, halves added lane by lane */
static inline float lane_sum(float *a) {
  for (int h = LANES / 2; h > 0; h /= 2)
    for (int t = 0; t < h; t++) a[t] += a[t + h];
  return a[0];
}

/* Row i of a block's upper triangle, g = G[i, :]: returns g[i] x[i] + sum_{j > i} g[j] x[j] (the
 * sum in LANES lanes, lane (j - i - 1) mod LANES), and adds g[j] xi to part[j] for j > i. */
HEADS_CLONES
static float row_pass(const float *restrict g, const float *restrict x, float xi,
                      float *restrict part, int64_t i, int64_t n) {
  float acc[LANES] = {0};
  int64_t j = i + 1;
  for (; j + LANES <= n; j += LANES)
    for (int t = 0; t < LANES; t++) {
      const float v = g[j + t];
      acc[t] += v * x[j + t];
      part[j + t] += v * xi;
    }
  for (int t = 0; j + t < n; t++) { /* the last, partial group of lanes */
    const float v = g[j + t];
    acc[t] += v * x[j + t];
    part[j + t] += v * xi;
  }
  return g[i] * xi + lane_sum(acc);
}

/* y (n) = G x for one symmetric block G (n, n) float32 given by its upper triangle (the part
 * below the diagonal is not read). Tile t (rows [t tr, (t + 1) tr)) writes its rows' dots to y
 * and the products of its rows' off-diagonal entries with in_i to its part (columns from its
 * first row on); then y_j adds the parts of tiles 0 .. j's own, in that order. parts is
 * (tiles(n), n) scratch. */
static void block_symv(int64_t n, const float *G, const float *x, float *parts, float *y) {
  const int64_t tr = tile_rows(n), nt = tiles(n);
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)n * (size_t)n > 4 * PAR_MIN)
  for (int64_t t = 0; t < nt; t++) {
    const int64_t i0 = t * tr, i1 = i0 + tr < n ? i0 + tr : n;
    float *part = parts + (size_t)t * (size_t)n;
    memset(part + i0, 0, (size_t)(n - i0) * sizeof(float));
    for (int64_t i = i0; i < i1; i++)
      y[i] = row_pass(G + (size_t)i * (size_t)n, x, x[i], part, i, n);
  }
#pragma omp parallel for schedule(static) if ((size_t)n * (size_t)nt > PAR_MIN)
  for (int64_t j = 0; j < n; j++) {
    float s = y[j];
    for (int64_t t = 0; t <= j / tr; t++) s += parts[(size_t)t * (size_t)n + (size_t)j];
    y[j] = s;
  }
}

void sgn_heads_symv_cpu(int64_t n, int64_t k, const float *G, double lambda, const double *in,
                        float *scratch, double *out) {
  float *x = scratch, *y = scratch + n, *parts = scratch + 2 * n;
  for (int64_t c = 0; c < k; c++) {
    for (int64_t j = 0; j < n; j++) x[j] = (float)in[j * k + c];
    block_symv(n, G + (size_t)c * (size_t)n * (size_t)n, x, parts, y);
    for (int64_t j = 0; j < n; j++) out[j * k + c] = (double)y[j] + lambda * in[j * k + c];
  }
}

void sgn_heads_mean_cpu(int64_t n, int64_t k, const float *G, double *R) {
  const size_t nn = (size_t)n * (size_t)n;
  const double inv_k = 1.0 / (double)k;
#pragma omp parallel for schedule(dynamic, 16) if (nn > 2 * PAR_MIN)
  for (int64_t i = 0; i < n; i++) {
    const size_t row = (size_t)i * (size_t)n;
    for (int64_t j = i; j < n; j++) {
      float sum = G[row + (size_t)j];
      for (int64_t c = 1; c < k; c++) sum += G[(size_t)c * nn + row + (size_t)j];
      R[row + (size_t)j] = (double)sum * inv_k;
    }
  }
}
