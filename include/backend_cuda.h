/* backend_cuda.h — the CUDA backend's entry points beyond the ops table (kernels/): opening,
 * a device probe and report for `sketchgn info`, and the GPU Hadamard transform for its tests.
 * Plain C: callers never include a CUDA header. Built only when the build found nvcc. */
#ifndef SGN_BACKEND_CUDA_H
#define SGN_BACKEND_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "sketchgn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA backend on device 0: one stream, cuBLAS and cuSOLVER handles bound to it.
 * NULL, with sgn_last_error() set, when no device answers. */
sgn_backend *sgn_backend_cuda_open(void);

/* Devices that answer (0 on any error). Initializes CUDA in the calling process. */
int sgn_cuda_device_count(void);

/* One line into buf (len bytes, NUL-terminated, truncated to fit): device 0's name, compute
 * capability, memory, SM count, and the CUDA runtime / driver, cuBLAS, cuSOLVER, cuFFT and
 * cuRAND versions. Returns 0, or SGN_E_RUNTIME with the reason in buf when no device answers. */
int sgn_cuda_device_info(char *buf, size_t len);

/* In place on be's stream, x (rows, len) row-major in be's device memory: each row <- H row,
 * the orthonormal Walsh-Hadamard transform in Sylvester order, bit for bit the arithmetic of
 * sgn_hadamard_cpu. len a power of two. be must be a CUDA backend. */
void sgn_hadamard_cuda(sgn_backend *be, float *x, int64_t rows, int64_t len);

/* Passes over global memory the GPU transform makes at this length: 0 for len 1 (H_1 = 1),
 * 1 up to SGN_HADAMARD_CUDA_TILE, 2 up to SGN_HADAMARD_CUDA_TILE^2 / 32 (2^19), 3 up to 2^26. */
int sgn_hadamard_cuda_passes(int64_t len);
#define SGN_HADAMARD_CUDA_TILE 4096

#ifdef __cplusplus
}
#endif
#endif
