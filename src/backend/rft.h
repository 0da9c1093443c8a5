/* rft.h — the orthonormal real Fourier transform F (N, N) of the srft sketch, read off a real
 * FFT's half spectrum. Shared by the CPU (FFTW) and the GPU (cuFFT): both libraries store the
 * r2c output c_k = sum_t x_t e^{-2 pi i k t / N}, k <= N/2, as interleaved floats
 * (Re c_0, Im c_0, Re c_1, ...), so one coordinate map serves both. */
#ifndef SGN_RFT_H
#define SGN_RFT_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define SGN_RFT_HD __host__ __device__ __forceinline__
#else
#define SGN_RFT_HD static inline
#endif

/* Coordinate p < N of F x is w * c[*off] with c the r2c output as floats:
 *   (F x)[0]      = c_0 / sqrt(N)
 *   (F x)[2k - 1] = sqrt(2/N) Re c_k,  (F x)[2k] = sqrt(2/N) Im c_k   for 0 < k < N/2
 *   (F x)[N - 1]  = c_{N/2} / sqrt(N)                                 for even N
 * Rows of F are the constant, cosine, sine (and alternating) vectors, each of unit norm. */
SGN_RFT_HD double sgn_rft_coord(int64_t N, int64_t p, int64_t *off) {
  if (p == 0) {
    *off = 0;
    return sqrt(1.0 / (double)N);
  }
  if (N % 2 == 0 && p == N - 1) {
    *off = N; /* Re c_{N/2} at float 2 (N/2) */
    return sqrt(1.0 / (double)N);
  }
  const int64_t k = (p + 1) / 2;
  *off = 2 * k + (p % 2 == 0); /* odd p: Re c_k, even p: Im c_k */
  return sqrt(2.0 / (double)N);
}

/* Floats per row of an in-place r2c buffer of length N: room for N/2 + 1 complex values,
 * rounded up to 16 floats (64 bytes), so every row of a block keeps the first row's alignment. */
SGN_RFT_HD int64_t sgn_rft_ld(int64_t N) { return (2 * (N / 2 + 1) + 15) / 16 * 16; }

#endif
