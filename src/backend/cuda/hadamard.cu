/* hadamard.cu — batched orthonormal fast Walsh-Hadamard transform (Sylvester order), the twin of
 * cpu/hadamard.c. A row of length len = 2^L goes through radix-2 stages h = 1, 2, ...,
 * len/2 in that order, each (u, v) -> (u + v, u - v) in float, with the 1/sqrt(len) scale on the
 * outputs of stage 2 (stage 1 when len = 2): the CPU twin's exact sequence of roundings, so the
 * two agree bit for bit. Stages run in passes through shared memory:
 *   pass 1: stages h < T1 = min(len, TILE) on contiguous runs of T1 floats;
 *   pass p > 1: with S the product of the earlier runs, stages h = S, 2S, ..., S T/2 on columns
 *   x[base + o + S t], t < T, T <= TILE / 32, 32+ neighbouring columns per block (coalesced).
 * So len <= 4096 takes one pass, len <= 2^19 two, len <= 2^26 three. */
#include <math.h>

#include "cuda_check.h"
#include "kernels.h"

extern "C" {
#include "backend_cuda.h"
}

#define HAD_TILE SGN_HADAMARD_CUDA_TILE /* floats per block per pass (16 KiB) */
#define HAD_MIN_COLS 32                 /* columns per block in the strided passes */
#define HAD_THREADS 256

/* ---- kernels ---- */

/* Columns col < ncols of length T = 2^logT; column col holds
 *   x[((col >> logS) << (logS + logT)) + (col & (S - 1)) + (t << logS)],  t < T,
 * i.e. offset o = col mod S of super-block col / S (each super-block S T floats). A block takes
 * G consecutive columns: for S = 1 contiguous runs (loaded t-fastest), for S >= G neighbouring
 * offsets of one super-block (loaded column-fastest). The tile is padded to pitch T + 1 so the
 * column-fastest accesses do not collide in shared-memory banks. scale multiplies the outputs
 * of stage scale_h (0: no scaling). */
static __global__ void __launch_bounds__(HAD_THREADS)
    fwht_pass_kernel(float *__restrict__ x, size_t ncols, int logS, int logT, int logG, int scale_h,
                     float scale) {
  __shared__ float tile[HAD_TILE + HAD_TILE / 2];
  const int T = 1 << logT, P = T + 1, G = 1 << logG, cnt = G * T;
  const size_t S = (size_t)1 << logS;
  for (size_t col0 = (size_t)blockIdx.x << logG; col0 < ncols; col0 += (size_t)gridDim.x << logG) {
    for (int e = threadIdx.x; e < cnt; e += blockDim.x) {
      const int g = logS == 0 ? e >> logT : e & (G - 1);
      const int t = logS == 0 ? e & (T - 1) : e >> logG;
      const size_t col = col0 + (size_t)g;
      if (col < ncols)
        tile[g * P + t] =
            x[((col >> logS) << (logS + logT)) + (col & (S - 1)) + ((size_t)t << logS)];
    }
    __syncthreads();
    for (int lh = 0; lh < logT; lh++) { /* stage h = 2^lh */
      const int h = 1 << lh;
      for (int b = threadIdx.x; b < cnt / 2; b += blockDim.x) {
        const int g = b >> (logT - 1), bb = b & (T / 2 - 1);
        const int t = ((bb >> lh) << (lh + 1)) + (bb & (h - 1));
        float *a = tile + g * P + t;
        const float u = a[0], v = a[h];
        float sum = __fadd_rn(u, v), dif = __fsub_rn(u, v);
        if (h == scale_h) sum = __fmul_rn(sum, scale), dif = __fmul_rn(dif, scale);
        a[0] = sum;
        a[h] = dif;
      }
      __syncthreads();
    }
    for (int e = threadIdx.x; e < cnt; e += blockDim.x) {
      const int g = logS == 0 ? e >> logT : e & (G - 1);
      const int t = logS == 0 ? e & (T - 1) : e >> logG;
      const size_t col = col0 + (size_t)g;
      if (col < ncols)
        x[((col >> logS) << (logS + logT)) + (col & (S - 1)) + ((size_t)t << logS)] =
            tile[g * P + t];
    }
    __syncthreads(); /* the tile is reloaded for the next columns */
  }
}

/* ---- launchers ---- */

static int log2_exact(int64_t v) {
  int l = 0;
  while (((int64_t)1 << l) < v) l++;
  return l;
}

/* One pass: columns of length 2^logT at stride 2^logS over rows * len floats, 2^logG columns
 * per block: as many as fill the tile, but within one super-block when logS > 0. */
static int fwht_pass(float *x, int64_t rows, int64_t len, int logS, int logT, int scale_h,
                     float scale, cudaStream_t st) {
  const size_t ncols = (size_t)rows * (size_t)(len >> logT);
  int logG = log2_exact(HAD_TILE) - logT;
  if (logS > 0 && logS < logG) logG = logS;
  size_t blocks = (ncols + ((size_t)1 << logG) - 1) >> logG;
  if (blocks > SGN_MAX_BLOCKS) blocks = SGN_MAX_BLOCKS;
  fwht_pass_kernel<<<(unsigned)blocks, HAD_THREADS, 0, st>>>(x, ncols, logS, logT, logG, scale_h,
                                                             scale);
  CUDA_CHECK_LAUNCH();
  return 0;
}

/* The pass plan, shared by the transform and the pass count: calls visit(logS, logT) per pass
 * and stops at the first that returns nonzero (a failed launch), returning that; else 0. */
template <typename F>
static int fwht_plan(int64_t len, F visit) {
  const int L = log2_exact(len);
  const int first = L < log2_exact(HAD_TILE) ? L : log2_exact(HAD_TILE);
  const int later = log2_exact(HAD_TILE / HAD_MIN_COLS);
  if (L == 0) return 0;
  if (int rc = visit(0, first)) return rc;
  for (int done = first; done < L;) {
    const int step = L - done < later ? L - done : later;
    if (int rc = visit(done, step)) return rc;
    done += step;
  }
  return 0;
}

extern "C" int sgn_cuda_hadamard_passes(int64_t len) {
  int passes = 0;
  (void)fwht_plan(len, [&](int, int) { return passes++, 0; });
  return passes;
}

extern "C" int sgn_cuda_hadamard(float *x, int64_t rows, int64_t len, cudaStream_t st) {
  if (rows <= 0 || len <= 1) return 0; /* H_1 = [1] */
  const float scale = (float)(1.0 / sqrt((double)len));
  const int scale_h = len == 2 ? 1 : 2;
  return fwht_plan(len, [&](int logS, int logT) {
    return fwht_pass(x, rows, len, logS, logT, logS == 0 ? scale_h : 0, scale, st);
  });
}
