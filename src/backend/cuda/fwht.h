/* fwht.h — the Walsh-Hadamard transform of rows that sit in shared memory, done by a whole block:
 * the device half of hadamard.cu, shared with sketch.cu's fused SRHT. Every element goes through
 * the radix-2 stages h = 1, 2, 4, ... in that order, (u, v) -> (u + v, u - v) in float, the
 * CPU twin's exact roundings (cpu/hadamard.c); several stages run on registers a thread holds,
 * which changes no element's sequence of roundings. A row of 2^L floats, L <= 15:
 *   phase A: a thread holds 32 consecutive floats (2^L when L < 5) and does stages h = 1 .. 16 in
 *            registers, then the next min(L - 5, 5) stages by __shfl_xor_sync with the lanes that
 *            hold the neighbouring runs (the lanes of a warp hold consecutive runs);
 *   phase B (L > 10): a thread holds 2^(L - 10) floats at stride 1024, the rest of the stages.
 * Tiles are padded (sgn_fwht_pad): 4 floats after every 32, so the float4 accesses of phase A hit
 * every bank once per quarter warp and phase B's scalar ones once per warp. */
#ifndef SGN_FWHT_H
#define SGN_FWHT_H

#include <cuda_runtime.h>

#include "cuda_check.h"

#define SGN_FWHT_MAX_LOG 15 /* longest row one block transforms: 2^15 floats */
#define SGN_FWHT_RUN_LOG 5  /* 32 floats per thread per phase */

/* Position of element e of a tile in its padded shared-memory layout. */
__device__ __forceinline__ int sgn_fwht_pad(int e) { return e + ((e >> 5) << 2); }
/* Floats of shared memory that a tile of n floats takes padded (n a power of two). */
inline size_t sgn_fwht_tile_floats(int64_t n) { return (size_t)(n + (n >> 3)); }

/* log2 of a power of two (host side) */
inline int sgn_fwht_log2(int64_t len) {
  int l = 0;
  while (((int64_t)1 << l) < len) l++;
  return l;
}

/* Lets kernel take bytes of dynamic shared memory, raising its limit when above the 48 KB a
 * kernel may take without (host side; 0, or -1 with the sticky error set). */
inline int sgn_fwht_allow_smem(const void *kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
  return 0;
}

/* The stages of bits 0 .. K-1 of the register index over v, in order; outputs of stage bit
 * scale_bit (-1: none) multiplied by scale. */
template <int K>
__device__ __forceinline__ void sgn_fwht_regs(float (&v)[1 << K], int scale_bit, float scale) {
#pragma unroll
  for (int b = 0; b < K; b++) {
#pragma unroll
    for (int k = 0; k < (1 << K); k++) {
      if (k & (1 << b)) continue;
      const float u = v[k], w = v[k + (1 << b)];
      float sum = __fadd_rn(u, w), dif = __fsub_rn(u, w);
      if (b == scale_bit) sum = __fmul_rn(sum, scale), dif = __fmul_rn(dif, scale);
      v[k] = sum;
      v[k + (1 << b)] = dif;
    }
  }
}

/* The stages of lane bits 0 .. nbits-1 (nbits <= 5, warp-uniform): the lane with the bit set
 * holds the upper element of each pair. Every lane of the warp must call it. */
template <int K>
__device__ __forceinline__ void sgn_fwht_lanes(float (&v)[1 << K], int nbits) {
  const int lane = threadIdx.x & 31;
  for (int j = 0; j < nbits; j++) {
    const bool upper = (lane >> j) & 1;
#pragma unroll
    for (int k = 0; k < (1 << K); k++) {
      const float o = __shfl_xor_sync(0xffffffffu, v[k], 1 << j);
      v[k] = upper ? __fsub_rn(o, v[k]) : __fadd_rn(v[k], o);
    }
  }
}

/* sh[k stride], k < 2^K <- the stages of bits 0 .. K-1 of k (no scale) */
template <int K>
__device__ __forceinline__ void sgn_fwht_strided(float *sh, int stride) {
  float v[1 << K];
#pragma unroll
  for (int k = 0; k < (1 << K); k++) v[k] = sh[k * stride];
  sgn_fwht_regs<K>(v, -1, 0.0f);
#pragma unroll
  for (int k = 0; k < (1 << K); k++) sh[k * stride] = v[k];
}

/* Phase A over runs of 2^K floats (K = min(L, 5)): run c at tile element c 2^K. */
template <int K>
__device__ void sgn_fwht_phase_a(float *sh, int runs, int L, int scale_bit, float scale) {
  const int lanes = L - K < 5 ? L - K : 5;
  for (int c0 = threadIdx.x & ~31; c0 < runs; c0 += blockDim.x) { /* warp-uniform */
    const int c = c0 + (threadIdx.x & 31);
    float v[1 << K];
    float *at = sh + sgn_fwht_pad(c << K);
#pragma unroll
    for (int k = 0; k < (1 << K); k += K >= 2 ? 4 : 2) {
      if constexpr (K >= 2) {
        const float4 f = c < runs ? *(const float4 *)(at + k) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        v[k] = f.x, v[k + 1] = f.y, v[k + 2] = f.z, v[k + 3] = f.w;
      } else {
        const float2 f = c < runs ? *(const float2 *)(at + k) : make_float2(0.0f, 0.0f);
        v[k] = f.x, v[k + 1] = f.y;
      }
    }
    sgn_fwht_regs<K>(v, scale_bit, scale);
    sgn_fwht_lanes<K>(v, lanes);
    if (c >= runs) continue;
#pragma unroll
    for (int k = 0; k < (1 << K); k += K >= 2 ? 4 : 2) {
      if constexpr (K >= 2) *(float4 *)(at + k) = make_float4(v[k], v[k + 1], v[k + 2], v[k + 3]);
      else *(float2 *)(at + k) = make_float2(v[k], v[k + 1]);
    }
  }
}

/* Phase B: the stages of bits 10 .. 10+K-1 of each of nrows rows of 2^(10+K) floats. */
template <int K>
__device__ void sgn_fwht_phase_b(float *sh, int nrows) {
  for (int c = threadIdx.x; c < nrows << 10; c += blockDim.x) {
    const int row = c >> 10, o = c & 1023;
    sgn_fwht_strided<K>(sh + sgn_fwht_pad((row << (10 + K)) + o), sgn_fwht_pad(1024));
  }
}

/* nrows rows of 2^L floats (1 <= L <= 15) at tile element row 2^L, padded: each row <- H row,
 * the outputs of stage h = min(2, 2^(L-1)) times scale. All threads of the block call it
 * (blockDim.x a multiple of 32), after a barrier that makes the tile visible; it ends before the
 * barrier that makes the result visible. */
__device__ inline void sgn_fwht_block(float *sh, int nrows, int L, float scale) {
  const int K = L < SGN_FWHT_RUN_LOG ? L : SGN_FWHT_RUN_LOG;
  const int runs = nrows << (L - K), scale_bit = L == 1 ? 0 : 1;
  switch (K) {
  case 1: sgn_fwht_phase_a<1>(sh, runs, L, scale_bit, scale); break;
  case 2: sgn_fwht_phase_a<2>(sh, runs, L, scale_bit, scale); break;
  case 3: sgn_fwht_phase_a<3>(sh, runs, L, scale_bit, scale); break;
  case 4: sgn_fwht_phase_a<4>(sh, runs, L, scale_bit, scale); break;
  default: sgn_fwht_phase_a<5>(sh, runs, L, scale_bit, scale); break;
  }
  if (L <= 10) return;
  __syncthreads();
  switch (L - 10) {
  case 1: sgn_fwht_phase_b<1>(sh, nrows); break;
  case 2: sgn_fwht_phase_b<2>(sh, nrows); break;
  case 3: sgn_fwht_phase_b<3>(sh, nrows); break;
  case 4: sgn_fwht_phase_b<4>(sh, nrows); break;
  default: sgn_fwht_phase_b<5>(sh, nrows); break;
  }
}

#endif
