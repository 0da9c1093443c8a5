/* mask_counts.h — exact integer products of bit-packed mask rows (layout.h), the CPU's M M^T
 * for the Gram (cpu/mask_counts.c): C[a, b] = popcount(Ma_a & Mb_b), by a cache-blocked kernel
 * picked at run time (AVX-512 VPOPCNTDQ, AVX2, scalar). */
#ifndef SGN_MASK_COUNTS_H
#define SGN_MASK_COUNTS_H

#include <stdint.h>

/* The kernels, best last. SGN_POPCOUNT_AUTO: the best this CPU runs. */
typedef enum sgn_popcount_kernel {
  SGN_POPCOUNT_AUTO = 0,
  SGN_POPCOUNT_SCALAR,
  SGN_POPCOUNT_AVX2,
  SGN_POPCOUNT_AVX512,
  SGN_POPCOUNT_KERNELS /* how many, AUTO included */
} sgn_popcount_kernel;

/* "auto", "scalar", "avx2", "avx512" */
const char *sgn_popcount_kernel_name(sgn_popcount_kernel kern);
/* 1 when this CPU runs the kernel (scalar and auto always) */
int sgn_popcount_kernel_supported(sgn_popcount_kernel kern);
/* The kernel the Gram uses: the environment's SGN_CPU_POPCOUNT (scalar|avx2|avx512) when this
 * CPU runs it, else the best it runs. Tests and benchmarks force a kernel through it. */
sgn_popcount_kernel sgn_popcount_kernel_pick(void);

/* C (ra, ldc) int32: C[a, b] = sum_{w < mw} popcount(Ma[a mw + w] & Mb[b mw + w]) for a < ra,
 * b < rb: the number of neurons active in both rows. Rows are mw uint32 words apart.
 * With upper, only the entries b >= a are needed (the Gram's upper triangle when Mb's first
 * ra rows are Ma's rows): those below may be left unwritten. kern picks the kernel (AUTO: the
 * best); every kernel gives the same counts. Parallel (OpenMP) over tiles of C. */
void sgn_mask_counts(sgn_popcount_kernel kern, int64_t mw, const uint32_t *Ma, int64_t ra,
                     const uint32_t *Mb, int64_t rb, int upper, int32_t *C, int64_t ldc);

#endif
