/* precision.h — the sketch Gram's reduced precisions (sgn_precision, sketchgn.h), one header for C
 * and CUDA like rng.h: where the roundings happen, so both backends form the same Gram up to
 * summation order. tf32 and bf16 round Y's entries here, to nearest-even, before any product: a
 * product of two such values is exact in float32 (22 or 16 significant bits), so what a GPU's
 * tensor cores do to their inputs (round or truncate to TF32) changes nothing, and the CPU's
 * float32 SSYRK on the rounded values is the same arithmetic. The panels' float32 sums then
 * differ between backends only in their order. */
#ifndef SGN_PRECISION_H
#define SGN_PRECISION_H

#include <stdint.h>
#include <string.h>

#include "sketchgn.h"

#ifdef __CUDACC__
#define SGN_PREC_HD __host__ __device__ __forceinline__
#else
#define SGN_PREC_HD static inline
#endif

/* Columns of Y per float32 sum (fp32, tf32, bf16), on both backends: each panel Y_p Y_p^T of at
 * most this many columns is summed in float32 and added to the float64 Gram, so an entry's
 * float32 error stays within gamma32(SGN_GRAM_F32_COLS) (2.4e-4) of sum_t |y_it y_jt| at worst,
 * ~ sqrt(4096) u = 3.8e-6 typically, below TF32's own rounding of Y (2^-11 = 4.9e-4 per entry).
 * Wide panels keep the float64 additions (20 bytes an entry a panel) small beside the products
 * (n^2 / 2 entries, 4096 multiply-adds each a panel). A multiple of the DSYRK panels (512 on the
 * CPU, 1024 on the GPU). */
#define SGN_GRAM_F32_COLS 4096

/* Mantissa bits a precision drops from float32's 23 (0: none). */
SGN_PREC_HD int sgn_precision_dropped_bits(sgn_precision p) {
  return p == SGN_PRECISION_TF32 ? 13 : p == SGN_PRECISION_BF16 ? 16 : 0;
}

/* The float32 bits b rounded to nearest-even at `drop` fewer mantissa bits (0 < drop < 23), the
 * dropped bits zero: a finite value past the largest representable rounds to infinity, as in
 * IEEE; infinities stay; a NaN comes back quiet (its quiet bit set, so it stays a NaN in the kept
 * bits: the top 16 bits of a bf16 NaN are a NaN too). */
SGN_PREC_HD uint32_t sgn_round_mantissa_bits(uint32_t b, int drop) {
  if ((b & 0x7f800000u) == 0x7f800000u) return b & 0x007fffffu ? b | 0x00400000u : b;
  const uint32_t half = (1u << (drop - 1)) - 1u + ((b >> drop) & 1u);
  return (b + half) & ~((1u << drop) - 1u);
}

/* x rounded as precision p rounds Y's entries (p's dropped bits; x itself for fp64 and fp32). */
SGN_PREC_HD float sgn_round_precision(float x, sgn_precision p) {
  const int drop = sgn_precision_dropped_bits(p);
  if (drop == 0) return x;
#ifdef __CUDA_ARCH__
  return __uint_as_float(sgn_round_mantissa_bits(__float_as_uint(x), drop));
#else
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  b = sgn_round_mantissa_bits(b, drop);
  memcpy(&x, &b, sizeof b);
  return x;
#endif
}

/* Unit roundoff of p's rounding of Y (2^-11 for tf32, 2^-8 for bf16; 0 when Y is not rounded):
 * |round(x) - x| <= u |x|. */
SGN_PREC_HD double sgn_precision_unit_roundoff(sgn_precision p) {
  const int drop = sgn_precision_dropped_bits(p);
  return drop ? 1.0 / (double)(1u << (24 - drop)) : 0.0;
}

#endif
