/* hadamard.cu — batched orthonormal fast Walsh-Hadamard transform (Sylvester order), the twin of
 * cpu/hadamard.c. A row of length len = 2^L goes through radix-2 stages h = 1, 2, ..., len/2 in
 * that order, each (u, v) -> (u + v, u - v) in float, with the 1/sqrt(len) scale on the outputs
 * of stage 2 (stage 1 when len = 2): the CPU twin's exact sequence of roundings, so the two agree
 * bit for bit. The stages run in registers, warp shuffles and shared memory (fwht.h), in passes
 * over global memory, each loaded and stored with float4 accesses:
 *   pass 1: rows (runs of 2^min(L, 15) floats) in shared-memory tiles of max(2^L, 8192) floats:
 *           256 threads up to 2^13, 512 from 2^14 (each thread one or two runs of 32 floats per
 *           phase), 36 KiB of shared memory up to 2^13, 72 KiB at 2^14, 144 KiB at 2^15 (tiles
 *           padded by 1/8, fwht.h);
 *   pass p > 1: the remaining L - 15 stages split evenly over ceil((L - 15) / 10) passes of at
 *           most 10 (T = 2^logT <= 1024): 32 neighbouring columns of stride S = 2^(stages
 *           done) per block, T rows of 32 floats (T * 128 bytes, 128 KiB at T = 1024), T threads.
 * So len <= 2^15 takes one pass, len <= 2^25 two, len <= 2^35 three. */
#include <math.h>

#include "cuda_check.h"
#include "fwht.h"
#include "kernels.h"

extern "C" {
#include "backend_cuda.h"
}

#define HAD_ROW_TILE_LOG 13 /* pass 1 tiles hold at least 2^13 floats (many short rows) */
#define HAD_ROW_THREADS 512 /* at most, in pass 1 (ptxas: 106 registers, no spills on sm_90) */
#define HAD_COLS 32         /* columns per block in the later passes (128 bytes per row) */
static_assert(SGN_HADAMARD_CUDA_TILE == 1 << SGN_FWHT_MAX_LOG, "backend_cuda.h's tile is fwht.h's");
static_assert(SGN_HADAMARD_CUDA_LATER_LOG == 10, "fwht_cols_kernel does at most 10 stages");

/* ---- kernels ---- */

/* The tile's count floats between global x (16-byte aligned) and the padded shared tile sh: to
 * sh when in, else back to x. float4s, and floats for a tail (only len 2 with an odd count of
 * rows has one). */
static __device__ void row_tile_copy(float *x, float *sh, int count, bool in) {
  for (int f = threadIdx.x; f < count >> 2; f += blockDim.x) {
    float4 *s = (float4 *)(sh + sgn_fwht_pad(f << 2)), *g = (float4 *)x + f;
    if (in) *s = *g;
    else *g = *s;
  }
  for (int e = (count & ~3) + (int)threadIdx.x; e < count; e += blockDim.x) {
    if (in) sh[sgn_fwht_pad(e)] = x[e];
    else x[e] = sh[sgn_fwht_pad(e)];
  }
}

/* Pass 1: x (rows, 2^L) row-major, L <= 15; a block takes tile_rows rows at a time into the
 * padded tile (dynamic shared memory). */
static __global__ void __launch_bounds__(HAD_ROW_THREADS)
    fwht_rows_kernel(float *__restrict__ x, size_t rows, int L, int tile_rows, float scale) {
  extern __shared__ float4 sh4[];
  float *sh = (float *)sh4;
  for (size_t r0 = (size_t)blockIdx.x * tile_rows; r0 < rows; r0 += (size_t)gridDim.x * tile_rows) {
    const int nr = rows - r0 < (size_t)tile_rows ? (int)(rows - r0) : tile_rows;
    float *xt = x + (r0 << L);
    row_tile_copy(xt, sh, nr << L, true);
    __syncthreads();
    sgn_fwht_block(sh, nr, L, scale);
    __syncthreads();
    row_tile_copy(xt, sh, nr << L, false);
    __syncthreads(); /* the tile is reloaded for the next rows */
  }
}

/* sgn_fwht_strided<K>(sh + ((c >> 5) << lo) * 32 + (c & 31), stride) for c < count */
template <int K>
static __device__ void cols_stages(float *sh, int count, int lo, int stride) {
  for (int c = threadIdx.x; c < count; c += blockDim.x)
    sgn_fwht_strided<K>(sh + (((c >> 5) << lo) << 5) + (c & 31), stride);
}

static __device__ void cols_stages_k(int K, float *sh, int count, int lo, int stride) {
  switch (K) {
  case 1: cols_stages<1>(sh, count, lo, stride); break;
  case 2: cols_stages<2>(sh, count, lo, stride); break;
  case 3: cols_stages<3>(sh, count, lo, stride); break;
  case 4: cols_stages<4>(sh, count, lo, stride); break;
  default: cols_stages<5>(sh, count, lo, stride); break;
  }
}

/* Pass p > 1: groups of 32 columns of length T = 2^logT (1 <= logT <= 10) at stride
 * S = 2^logS (>= 32): column col holds x[(col / S) S T + col % S + t S], t < T. The group's
 * T x 32 tile (row t: the 32 columns at t) sits in dynamic shared memory; a thread holds 32
 * consecutive t of one column (bits 0..4 of t), then 2^(logT - 5) at stride 32 (the rest). */
static __global__ void __launch_bounds__(1024)
    fwht_cols_kernel(float *__restrict__ x, size_t groups, int logS, int logT) {
  extern __shared__ float4 sh4[];
  float *sh = (float *)sh4;
  const size_t S = (size_t)1 << logS;
  const int T = 1 << logT, K1 = logT < 5 ? logT : 5;
  for (size_t g = blockIdx.x; g < groups; g += gridDim.x) {
    const size_t col0 = g * HAD_COLS;
    float *base = x + ((col0 >> logS) << (logS + logT)) + (col0 & (S - 1));
    for (int f = threadIdx.x; f < T * (HAD_COLS / 4); f += blockDim.x)
      sh4[f] = *(const float4 *)(base + (size_t)(f >> 3) * S + ((f & 7) << 2));
    __syncthreads();
    cols_stages_k(K1, sh, HAD_COLS << (logT - K1), K1, HAD_COLS);
    if (logT > 5) {
      __syncthreads();
      cols_stages_k(logT - 5, sh, HAD_COLS * 32, 0, HAD_COLS * 32);
    }
    __syncthreads();
    for (int f = threadIdx.x; f < T * (HAD_COLS / 4); f += blockDim.x)
      *(float4 *)(base + (size_t)(f >> 3) * S + ((f & 7) << 2)) = sh4[f];
    __syncthreads(); /* the tile is reloaded for the next group */
  }
}

/* ---- launchers ---- */

static unsigned grid_of(size_t items) {
  return (unsigned)(items < SGN_MAX_BLOCKS ? items : SGN_MAX_BLOCKS);
}

/* Pass 1 over total floats as rows of 2^L. */
static int fwht_rows(float *x, size_t total, int L, float scale, cudaStream_t st) {
  const int tile_log = L > HAD_ROW_TILE_LOG ? L : HAD_ROW_TILE_LOG;
  const int tile_rows = 1 << (tile_log - L);
  const unsigned threads = 1u << (tile_log - 5) < HAD_ROW_THREADS ? 1u << (tile_log - 5)
                                                                  : HAD_ROW_THREADS;
  const size_t rows = total >> L;
  const size_t bytes = sgn_fwht_tile_floats((int64_t)1 << tile_log) * sizeof(float);
  if (sgn_fwht_allow_smem((const void *)fwht_rows_kernel, bytes)) return -1;
  fwht_rows_kernel<<<grid_of((rows + tile_rows - 1) / tile_rows), threads, bytes, st>>>(
      x, rows, L, tile_rows, scale);
  CUDA_CHECK_LAUNCH();
  return 0;
}

/* A later pass over total floats: columns of 2^logT at stride 2^logS. */
static int fwht_cols(float *x, size_t total, int logS, int logT, cudaStream_t st) {
  const size_t groups = (total >> logT) / HAD_COLS, bytes = (size_t)HAD_COLS << logT << 2;
  if (sgn_fwht_allow_smem((const void *)fwht_cols_kernel, bytes)) return -1;
  fwht_cols_kernel<<<grid_of(groups), logT < 5 ? 32u : 1u << logT, bytes, st>>>(x, groups, logS,
                                                                                  logT);
  CUDA_CHECK_LAUNCH();
  return 0;
}

/* The pass plan, shared by the transform and the pass count: calls visit(logS, logT) per pass
 * (stages 2^logS .. 2^(logS + logT - 1)) and stops at the first that returns nonzero (a failed
 * launch), returning that; else 0. */
template <typename F>
static int fwht_plan(int64_t len, F visit) {
  const int L = sgn_fwht_log2(len);
  const int first = L < SGN_FWHT_MAX_LOG ? L : SGN_FWHT_MAX_LOG;
  if (L == 0) return 0;
  if (int rc = visit(0, first)) return rc;
  const int later = (L - first + SGN_HADAMARD_CUDA_LATER_LOG - 1) / SGN_HADAMARD_CUDA_LATER_LOG;
  for (int p = 0, done = first; p < later; p++) {
    const int step = (L - done + (later - p) - 1) / (later - p); /* even split */
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
  if ((uintptr_t)x % 16) {
    sgn_cuda_error("hadamard: x (%p) is not 16-byte aligned", (void *)x);
    return -1;
  }
  const float scale = (float)(1.0 / sqrt((double)len));
  const size_t total = (size_t)rows * (size_t)len;
  return fwht_plan(len, [&](int logS, int logT) {
    return logS == 0 ? fwht_rows(x, total, logT, scale, st) : fwht_cols(x, total, logS, logT, st);
  });
}
