/* hadamard.c (cpu) — in-place orthonormal fast Walsh-Hadamard transform (Sylvester order), the CPU
 * twin of cuda/hadamard.cu. Iterative radix-2 butterflies in float; the strides below
 * HAD_BLOCK run block by block so they stay in L1, the 1/sqrt(len) scale rides on the first pass. */
#include "hadamard.h"

#include <math.h>

/* Floats per cache block for the short-stride passes (16 KiB, fits L1 with room to spare). */
#define HAD_BLOCK 4096

int64_t sgn_next_pow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

/* One radix-2 stage over x[0, len): (x_j, x_{j+h}) <- (x_j + x_{j+h}, x_j - x_{j+h}), h >= 4. */
static void fwht_stage(float *x, int64_t len, int64_t h) {
  for (int64_t i = 0; i < len; i += 2 * h) {
    float *a = x + i, *b = x + i + h;
#pragma omp simd
    for (int64_t j = 0; j < h; j++) {
      float u = a[j], v = b[j];
      a[j] = u + v;
      b[j] = u - v;
    }
  }
}

/* Strides 1 and 2 fused (a 4-point H_4 on each group of 4), times scale: x <- scale (I (x) H_4) x. */
static void fwht_first4(float *x, int64_t len, float scale) {
  for (int64_t i = 0; i < len; i += 4) {
    float a = x[i] + x[i + 1], b = x[i] - x[i + 1];
    float c = x[i + 2] + x[i + 3], e = x[i + 2] - x[i + 3];
    x[i] = (a + c) * scale;
    x[i + 1] = (b + e) * scale;
    x[i + 2] = (a - c) * scale;
    x[i + 3] = (b - e) * scale;
  }
}

/* x (len) <- H x, H[i][j] = (-1)^popcount(i & j) / sqrt(len), len a power of two. */
static void fwht_row(float *x, int64_t len) {
  float scale = (float)(1.0 / sqrt((double)len));
  if (len == 1) return;
  if (len == 2) {
    float u = x[0], v = x[1];
    x[0] = (u + v) * scale;
    x[1] = (u - v) * scale;
    return;
  }
  /* strides < blk: each block of blk floats is transformed on its own while it sits in cache */
  int64_t blk = len < HAD_BLOCK ? len : HAD_BLOCK;
  for (int64_t b0 = 0; b0 < len; b0 += blk) {
    float *xb = x + b0;
    fwht_first4(xb, blk, scale);
    for (int64_t h = 4; h < blk; h <<= 1) fwht_stage(xb, blk, h);
  }
  /* strides >= blk: across the whole row */
  for (int64_t h = blk; h < len; h <<= 1) fwht_stage(x, len, h);
}

/* x (rows, len) row-major: each row <- H row. */
void sgn_hadamard_cpu(float *x, int64_t rows, int64_t len) {
#pragma omp parallel for schedule(static) if (rows > 1 && rows * len >= (1 << 15))
  for (int64_t i = 0; i < rows; i++) fwht_row(x + i * len, len);
}
