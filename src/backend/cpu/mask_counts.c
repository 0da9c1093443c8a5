/* mask_counts.c (cpu) — C = Ma Mb^T for bit-packed 0/1 rows as exact integer counts
 * popcount(Ma_a & Mb_b): the Gram's M M^T (cpu/gram.c), 32 neurons a word where a float SGEMM
 * on an expanded mask does one. Tiles of 128 x 128 rows over slices of 1024 words (4 KB a row,
 * 1 MB for both tiles: in L2), inside them 4 x 4 blocks of rows whose 16 sums stay in registers.
 * The innermost block has three versions picked at run time (AVX-512 VPOPCNTDQ, AVX2 nibble
 * lookups, scalar popcount); integer sums, so all give the same counts. */
#include "mask_counts.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

#define TILE 128   /* rows of a tile, either side */
#define SLICE 1024 /* words of a row per pass over a pair of tiles */
#define QUAD 4     /* rows of a block, either side */

/* out[i QUAD + j] = sum_{w < nw} popcount(a[i][w] & b[j][w]) */
typedef void block_fn(const uint32_t *const a[QUAD], const uint32_t *const b[QUAD], int64_t nw,
                      uint64_t out[QUAD * QUAD]);

/* ---- the blocks ---- */

/* Scalar: 64-bit words where the rows allow (memcpy: rows are 4-byte aligned), one 32-bit word
 * at the end; compiled with the POPCNT instruction besides the baseline. */
__attribute__((target_clones("popcnt", "default"))) static void
block_scalar(const uint32_t *const a[QUAD], const uint32_t *const b[QUAD], int64_t nw,
             uint64_t out[QUAD * QUAD]) {
  for (int i = 0; i < QUAD; i++)
    for (int j = 0; j < QUAD; j++) {
      uint64_t s = 0;
      int64_t w = 0;
      for (; w + 2 <= nw; w += 2) {
        uint64_t x, y;
        memcpy(&x, a[i] + w, sizeof x);
        memcpy(&y, b[j] + w, sizeof y);
        s += (uint64_t)__builtin_popcountll(x & y);
      }
      if (w < nw) s += (uint64_t)__builtin_popcount(a[i][w] & b[j][w]);
      out[i * QUAD + j] = s;
    }
}

/* AVX2: per byte, the bit counts of its two nibbles from a 16-entry table (VPSHUFB), summed
 * into 64-bit lanes by VPSADBW; one row of a at a time against the four of b (16 registers).
 * The last nw % 8 words by a masked load (zeros beyond). */
__attribute__((target("avx2"))) static void block_avx2(const uint32_t *const a[QUAD],
                                                       const uint32_t *const b[QUAD], int64_t nw,
                                                       uint64_t out[QUAD * QUAD]) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                       1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  const int64_t full = nw / 8 * 8;
  const int rest = (int)(nw - full);
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#define CNT(v)                                                                                     \
  _mm256_sad_epu8(                                                                                 \
      _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256((v), low)),                        \
                      _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16((v), 4), low))), \
      zero)
  for (int i = 0; i < QUAD; i++) {
    __m256i s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    const uint32_t *ai = a[i];
    for (int64_t w = 0; w < full; w += 8) {
      const __m256i x = _mm256_loadu_si256((const __m256i *)(ai + w));
      s0 = _mm256_add_epi64(s0,
                            CNT(_mm256_and_si256(x, _mm256_loadu_si256((const void *)(b[0] + w)))));
      s1 = _mm256_add_epi64(s1,
                            CNT(_mm256_and_si256(x, _mm256_loadu_si256((const void *)(b[1] + w)))));
      s2 = _mm256_add_epi64(s2,
                            CNT(_mm256_and_si256(x, _mm256_loadu_si256((const void *)(b[2] + w)))));
      s3 = _mm256_add_epi64(s3,
                            CNT(_mm256_and_si256(x, _mm256_loadu_si256((const void *)(b[3] + w)))));
    }
    if (rest) {
      const __m256i x = _mm256_maskload_epi32((const int *)(ai + full), tail);
#define TAIL(j) _mm256_and_si256(x, _mm256_maskload_epi32((const int *)(b[j] + full), tail))
      s0 = _mm256_add_epi64(s0, CNT(TAIL(0)));
      s1 = _mm256_add_epi64(s1, CNT(TAIL(1)));
      s2 = _mm256_add_epi64(s2, CNT(TAIL(2)));
      s3 = _mm256_add_epi64(s3, CNT(TAIL(3)));
#undef TAIL
    }
    __m256i s[QUAD] = {s0, s1, s2, s3};
    for (int j = 0; j < QUAD; j++) {
      uint64_t l[4];
      _mm256_storeu_si256((__m256i *)l, s[j]);
      out[i * QUAD + j] = l[0] + l[1] + l[2] + l[3];
    }
  }
#undef CNT
}

/* AVX-512 VPOPCNTDQ: all 16 sums in registers, 8 loads per 16 AND + VPOPCNTQ + add; the last
 * nw % 16 words by a masked load (zeros beyond). */
__attribute__((target("avx512f,avx512vpopcntdq"))) static void
block_avx512(const uint32_t *const a[QUAD], const uint32_t *const b[QUAD], int64_t nw,
             uint64_t out[QUAD * QUAD]) {
  __m512i s00 = _mm512_setzero_si512(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00,
          s12 = s00, s13 = s00, s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00,
          s32 = s00, s33 = s00;
  const int64_t full = nw / 16 * 16;
#define ROW(i)                                                                          \
  s##i##0 = _mm512_add_epi64(s##i##0, _mm512_popcnt_epi64(_mm512_and_si512(x##i, y0))); \
  s##i##1 = _mm512_add_epi64(s##i##1, _mm512_popcnt_epi64(_mm512_and_si512(x##i, y1))); \
  s##i##2 = _mm512_add_epi64(s##i##2, _mm512_popcnt_epi64(_mm512_and_si512(x##i, y2))); \
  s##i##3 = _mm512_add_epi64(s##i##3, _mm512_popcnt_epi64(_mm512_and_si512(x##i, y3)))
  for (int64_t w = 0; w < full; w += 16) {
    const __m512i x0 = _mm512_loadu_si512(a[0] + w), x1 = _mm512_loadu_si512(a[1] + w),
                  x2 = _mm512_loadu_si512(a[2] + w), x3 = _mm512_loadu_si512(a[3] + w);
    const __m512i y0 = _mm512_loadu_si512(b[0] + w), y1 = _mm512_loadu_si512(b[1] + w),
                  y2 = _mm512_loadu_si512(b[2] + w), y3 = _mm512_loadu_si512(b[3] + w);
    ROW(0);
    ROW(1);
    ROW(2);
    ROW(3);
  }
  if (full < nw) {
    const __mmask16 k = (__mmask16)((1u << (nw - full)) - 1u);
    const __m512i x0 = _mm512_maskz_loadu_epi32(k, a[0] + full),
                  x1 = _mm512_maskz_loadu_epi32(k, a[1] + full),
                  x2 = _mm512_maskz_loadu_epi32(k, a[2] + full),
                  x3 = _mm512_maskz_loadu_epi32(k, a[3] + full);
    const __m512i y0 = _mm512_maskz_loadu_epi32(k, b[0] + full),
                  y1 = _mm512_maskz_loadu_epi32(k, b[1] + full),
                  y2 = _mm512_maskz_loadu_epi32(k, b[2] + full),
                  y3 = _mm512_maskz_loadu_epi32(k, b[3] + full);
    ROW(0);
    ROW(1);
    ROW(2);
    ROW(3);
  }
#undef ROW
  const __m512i s[QUAD * QUAD] = {s00, s01, s02, s03, s10, s11, s12, s13,
                                  s20, s21, s22, s23, s30, s31, s32, s33};
  for (int t = 0; t < QUAD * QUAD; t++) out[t] = (uint64_t)_mm512_reduce_add_epi64(s[t]);
}

/* ---- dispatch ---- */

static const char *const kernel_names[SGN_POPCOUNT_KERNELS] = {"auto", "scalar", "avx2", "avx512"};

const char *sgn_popcount_kernel_name(sgn_popcount_kernel kern) {
  return kern >= 0 && kern < SGN_POPCOUNT_KERNELS ? kernel_names[kern] : "?";
}

int sgn_popcount_kernel_supported(sgn_popcount_kernel kern) {
  switch (kern) {
  case SGN_POPCOUNT_AUTO:
  case SGN_POPCOUNT_SCALAR: return 1;
  case SGN_POPCOUNT_AVX2: return __builtin_cpu_supports("avx2") != 0;
  case SGN_POPCOUNT_AVX512:
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq");
  default: return 0;
  }
}

sgn_popcount_kernel sgn_popcount_kernel_pick(void) {
  const char *env = getenv("SGN_CPU_POPCOUNT");
  for (int k = SGN_POPCOUNT_SCALAR; env && k < SGN_POPCOUNT_KERNELS; k++)
    if (strcmp(env, kernel_names[k]) == 0 && sgn_popcount_kernel_supported(k))
      return (sgn_popcount_kernel)k;
  for (int k = SGN_POPCOUNT_KERNELS - 1; k > SGN_POPCOUNT_SCALAR; k--)
    if (sgn_popcount_kernel_supported(k)) return (sgn_popcount_kernel)k;
  return SGN_POPCOUNT_SCALAR;
}

/* ---- the tiles ---- */

/* Tile (ta, tb) of C: rows [a0, a1) x [b0, b1), slice by slice. A block's missing rows (at the
 * edges) read its first row, and their sums are dropped. */
static void tile(block_fn *blk, int64_t mw, const uint32_t *Ma, int64_t a0, int64_t a1,
                 const uint32_t *Mb, int64_t b0, int64_t b1, int upper, int32_t *C, int64_t ldc) {
  uint64_t out[QUAD * QUAD];
  for (int64_t w0 = 0; w0 < mw; w0 += SLICE) {
    const int64_t nw = mw - w0 < SLICE ? mw - w0 : SLICE;
    for (int64_t jb = b0; jb < b1; jb += QUAD) {
      const uint32_t *pb[QUAD];
      for (int j = 0; j < QUAD; j++)
        pb[j] = Mb + (size_t)(jb + j < b1 ? jb + j : jb) * (size_t)mw + (size_t)w0;
      for (int64_t ia = a0; ia < a1; ia += QUAD) {
        if (upper && jb + QUAD - 1 < ia) break; /* the rest of the column lies below */
        const uint32_t *pa[QUAD];
        for (int i = 0; i < QUAD; i++)
          pa[i] = Ma + (size_t)(ia + i < a1 ? ia + i : ia) * (size_t)mw + (size_t)w0;
        blk(pa, pb, nw, out);
        for (int i = 0; i < QUAD && ia + i < a1; i++) {
          int32_t *c = C + (size_t)(ia + i) * (size_t)ldc;
          for (int j = 0; j < QUAD && jb + j < b1; j++)
            c[jb + j] = (w0 ? c[jb + j] : 0) + (int32_t)out[i * QUAD + j];
        }
      }
    }
  }
}

void sgn_mask_counts(sgn_popcount_kernel kern, int64_t mw, const uint32_t *Ma, int64_t ra,
                     const uint32_t *Mb, int64_t rb, int upper, int32_t *C, int64_t ldc) {
  if (ra <= 0 || rb <= 0) return;
  if (kern == SGN_POPCOUNT_AUTO || !sgn_popcount_kernel_supported(kern))
    kern = sgn_popcount_kernel_pick();
  block_fn *blk = kern == SGN_POPCOUNT_AVX512 ? block_avx512
                  : kern == SGN_POPCOUNT_AVX2 ? block_avx2
                                              : block_scalar;
  if (mw == 0) { /* no neurons: every count is 0 */
    for (int64_t a = 0; a < ra; a++) memset(C + (size_t)a * (size_t)ldc, 0, (size_t)rb * 4);
    return;
  }
  const int64_t ta = (ra + TILE - 1) / TILE, tb = (rb + TILE - 1) / TILE;
  const double pairs = (double)ra * (double)rb * (double)mw;
#pragma omp parallel for schedule(dynamic, 1) if (pairs > 1e6)
  for (int64_t t = 0; t < ta * tb; t++) {
    const int64_t a0 = t / tb * TILE, b0 = t % tb * TILE;
    const int64_t a1 = a0 + TILE < ra ? a0 + TILE : ra, b1 = b0 + TILE < rb ? b0 + TILE : rb;
    if (upper && b1 <= a0) continue; /* wholly below the diagonal */
    tile(blk, mw, Ma, a0, a1, Mb, b0, b1, upper, C, ldc);
  }
}
