/* fused.h — when the CPU products take their fused kernels (cpu/products.c), which read the bit
 * mask directly instead of going through GEMMs: d <= SGN_FUSED_MAX_D and k <= SGN_FUSED_MAX_K.
 * The cost model (costmodel.c) counts the CPU's flops by the same rule. */
#ifndef SGN_FUSED_H
#define SGN_FUSED_H

/* Measured on the 2-core AVX-512 Xeon (n = 1024, m = 65536, 2 threads, each op alone, vs the
 * GEMM path): at k = 1 forward, J v, J^T g are 8x, 12x, 12x faster at d = 4 and about 2x at
 * d = 32; at d = 64 forward and J^T g still gain 1.2-1.4x and J v breaks even; at d = 96 and
 * 128 the GEMM path wins. k = 10 and 16 gain more (the GEMM path's second GEMM costs more). */
#define SGN_FUSED_MAX_D 64
#define SGN_FUSED_MAX_K 16

#endif
