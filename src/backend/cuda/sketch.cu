/* sketch.cu — sketches of the k = 1 block of J on the GPU, twins of cpu/sketch.c: the same
 * rng.h draws (stream and index per sign, coordinate and Gaussian), generated in kernels, and the
 * same arithmetic, so the SRHT agrees with the CPU bit for bit and the Gaussian sketch up to the
 * GEMMs' summation order. The SRHT runs in one kernel, a block per sample, when both padded
 * lengths fit one block's shared memory (m' <= 2^15, and the padded tiles of m' and d' within
 * 227 KB: d' <= 2^14 at m' = 2^15): the signed mask and input rows are built in shared memory,
 * transformed there (fwht.h) and gathered into Y with int32 coordinates. Otherwise, and for the
 * Gaussian sketch, blocks of samples go through scratch that stays bounded (the GPU blocks are
 * larger than the CPU's; results do not depend on the blocking). */
#include <math.h>

#include "cuda_check.h"
#include "fwht.h"
#include "kernels.h"
#include "rng.h"

/* SRHT: samples per block while U, V stay under 2^26 floats (256 MiB), unfused. */
#define SRHT_FLOATS ((int64_t)1 << 26)
/* SRHT fused: shared memory a block may take (sm_90), threads per block. */
#define SRHT_SMEM_MAX (227 * 1024)
#define SRHT_THREADS 512
/* Gaussian: block edge in samples and in columns. */
#define GAUSS_BLOCK 1024
/* Work sub-buffers start on this boundary. */
#define WORK_ALIGN 256

/* ---- kernels ---- */

/* p[j], q[j] for j < s, D1[r] for r < m, D2[t] for t < d: one index space of s + m + d */
static __global__ void srht_draw_kernel(int64_t s, int64_t m, int64_t d, int64_t mp, int64_t dp,
                                        uint64_t seed, int32_t *__restrict__ p,
                                        int32_t *__restrict__ q, float *__restrict__ D1,
                                        float *__restrict__ D2) {
  const size_t total = (size_t)(s + m + d);
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (size_t)gridDim.x * blockDim.x) {
    if (e < (size_t)s) {
      p[e] = (int32_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_P, (uint64_t)e, (uint64_t)mp);
      q[e] = (int32_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_Q, (uint64_t)e, (uint64_t)dp);
    } else if (e < (size_t)(s + m)) {
      const size_t r = e - (size_t)s;
      D1[r] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)r);
    } else {
      const size_t t = e - (size_t)(s + m);
      D2[t] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t);
    }
  }
}

/* Row ii of the block (sample i0 + ii): U = D1 o M_i padded to m', V = D2 o x_i padded to d';
 * M points at the block's first mask row */
static __global__ void srht_fill_kernel(int64_t rows, int64_t m, int64_t d, int64_t mp, int64_t dp,
                                        const uint32_t *__restrict__ M, const float *__restrict__ X,
                                        const float *__restrict__ D1, const float *__restrict__ D2,
                                        float *__restrict__ U, float *__restrict__ V) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    const uint32_t *mrow = M + (size_t)ii * (size_t)SGN_MASK_WORDS(m);
    const float *x = X + (size_t)ii * (size_t)d;
    float *u = U + (size_t)ii * (size_t)mp, *v = V + (size_t)ii * (size_t)dp;
    for (int64_t r = threadIdx.x; r < mp; r += blockDim.x)
      u[r] = r < m && sgn_mask_bit(mrow, r) ? D1[r] : 0.0f;
    for (int64_t t = threadIdx.x; t < dp; t += blockDim.x)
      v[t] = t < d ? __fmul_rn(D2[t], x[t]) : 0.0f;
  }
}

/* Y[ii, j] = (scale U[ii, p_j]) V[ii, q_j], the CPU twin's order of products */
static __global__ void srht_gather_kernel(int64_t rows, int64_t s, int64_t mp, int64_t dp,
                                          float scale, const float *__restrict__ U,
                                          const float *__restrict__ V,
                                          const int32_t *__restrict__ p,
                                          const int32_t *__restrict__ q, float *__restrict__ Y) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    const float *u = U + (size_t)ii * (size_t)mp, *v = V + (size_t)ii * (size_t)dp;
    float *y = Y + (size_t)ii * (size_t)s;
    for (int64_t j = threadIdx.x; j < s; j += blockDim.x)
      y[j] = __fmul_rn(__fmul_rn(scale, u[p[j]]), v[q[j]]);
  }
}

/* The fused SRHT, a block per sample i (grid-stride): u = D1 o M_i padded to m' = 2^Lm and
 * v = D2 o x_i padded to d' = 2^Ld built in shared memory (padded tiles, v at float vo), each
 * <- H itself (scales su, sv), then Y[i, j] = (scale u[p_j]) v[q_j], the CPU twin's order. */
static __global__ void __launch_bounds__(SRHT_THREADS)
    srht_fused_kernel(int64_t n, int64_t s, int64_t m, int64_t d, int Lm, int Ld, int vo, float su,
                      float sv, float scale, const uint32_t *__restrict__ M,
                      const float *__restrict__ X, const float *__restrict__ D1,
                      const float *__restrict__ D2, const int32_t *__restrict__ p,
                      const int32_t *__restrict__ q, float *__restrict__ Y) {
  extern __shared__ float4 srht_sh[];
  float *u = (float *)srht_sh, *v = u + vo;
  const int mp = 1 << Lm, dp = 1 << Ld;
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const uint32_t *mrow = M + (size_t)i * (size_t)SGN_MASK_WORDS(m);
    const float *x = X + (size_t)i * (size_t)d;
    for (int r = threadIdx.x; r < mp; r += blockDim.x)
      u[sgn_fwht_pad(r)] = r < m && sgn_mask_bit(mrow, r) ? D1[r] : 0.0f;
    for (int t = threadIdx.x; t < dp; t += blockDim.x)
      v[sgn_fwht_pad(t)] = t < d ? __fmul_rn(D2[t], x[t]) : 0.0f;
    __syncthreads();
    if (Lm > 0) sgn_fwht_block(u, 1, Lm, su); /* the two tiles apart: no barrier between */
    if (Ld > 0) sgn_fwht_block(v, 1, Ld, sv);
    __syncthreads();
    float *y = Y + (size_t)i * (size_t)s;
    for (int64_t j = threadIdx.x; j < s; j += blockDim.x)
      y[j] = __fmul_rn(__fmul_rn(scale, u[sgn_fwht_pad(p[j])]), v[sgn_fwht_pad(q[j])]);
    __syncthreads(); /* the tiles are rebuilt for the next sample */
  }
}

/* Om1[r, jj] = N(seed, G1, r s + j0 + jj) (m, cs), Om2[t, jj] = N(seed, G2, t s + j0 + jj)
 * (d, cs): columns [j0, j0 + cs) of Omega1, Omega2 */
static __global__ void gauss_omega_kernel(int64_t m, int64_t d, int64_t s, int64_t j0, int64_t cs,
                                          uint64_t seed, float *__restrict__ Om1,
                                          float *__restrict__ Om2) {
  const size_t total = (size_t)(m + d) * (size_t)cs;
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (size_t)gridDim.x * blockDim.x) {
    const size_t r = e / (size_t)cs, jj = e % (size_t)cs;
    const int neuron = r < (size_t)m;
    const uint64_t row = neuron ? (uint64_t)r : (uint64_t)(r - (size_t)m);
    const uint64_t stream = neuron ? SGN_STREAM_SKETCH_G1 : SGN_STREAM_SKETCH_G2;
    const float g = (float)sgn_rng_normal(seed, stream, row * (uint64_t)s + (uint64_t)(j0 + jj));
    if (neuron) Om1[e] = g;
    else Om2[e - (size_t)m * (size_t)cs] = g;
  }
}

/* yb[ii, jj] *= P[ii, jj]   yb (rows, cs) with row stride lds, P (rows, cs) */
static __global__ void mul_block_kernel(int64_t rows, int64_t cs, int64_t lds,
                                        const float *__restrict__ P, float *__restrict__ yb) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x)
    for (int64_t jj = threadIdx.x; jj < cs; jj += blockDim.x)
      yb[(size_t)ii * (size_t)lds + jj] = __fmul_rn(yb[(size_t)ii * (size_t)lds + jj],
                                                    P[(size_t)ii * (size_t)cs + jj]);
}

/* ---- work layouts (one function computes both the size and the pointers) ---- */

static size_t align_up(size_t v) { return (v + WORK_ALIGN - 1) / WORK_ALIGN * WORK_ALIGN; }

static int64_t next_pow2(int64_t v) {
  int64_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

/* Rows per block: dflt, cut when chunking so rows * per_row floats stay within the products'
 * work (sgn_work_floats), at least 1 (the CPU twin's rule, with the GPU's larger dflt). */
static int64_t budget_rows(sgn_dims dm, int64_t per_row, int64_t dflt) {
  if (sgn_chunked(dm)) {
    const int64_t fit = (int64_t)(sgn_work_floats(dm) / (size_t)(per_row > 0 ? per_row : 1));
    if (fit < dflt) dflt = fit;
  }
  if (dflt > dm.n) dflt = dm.n;
  return dflt > 1 ? dflt : 1;
}

/* The fused SRHT's shared memory: u's padded tile rounded to float4s, then v's; 0 when the
 * lengths do not fit one block. */
static size_t srht_fused_floats(int64_t mp, int64_t dp, size_t *vo) {
  *vo = (sgn_fwht_tile_floats(mp) + 3) & ~(size_t)3;
  if (mp > (1 << SGN_FWHT_MAX_LOG) || dp > (1 << SGN_FWHT_MAX_LOG)) return 0;
  const size_t floats = *vo + sgn_fwht_tile_floats(dp);
  return floats * sizeof(float) <= SRHT_SMEM_MAX ? floats : 0;
}

static int srht_fused(sgn_dims dm) {
  size_t vo;
  return srht_fused_floats(next_pow2(dm.m), next_pow2(dm.d), &vo) > 0;
}

static int64_t srht_rows(sgn_dims dm) {
  const int64_t width = next_pow2(dm.m) + next_pow2(dm.d);
  return budget_rows(dm, width, SRHT_FLOATS / width);
}

/* Gaussian column block: GAUSS_BLOCK, cut when chunking so Omega's block stays within the work */
static int64_t gauss_cols(sgn_dims dm, int64_t s) {
  int64_t cs = s < GAUSS_BLOCK ? s : GAUSS_BLOCK;
  if (sgn_chunked(dm)) {
    const int64_t fit = (int64_t)(sgn_work_floats(dm) / (size_t)(dm.m + dm.d));
    if (fit < cs) cs = fit > 1 ? fit : 1;
  }
  return cs;
}

typedef struct srht_layout {
  int32_t *p, *q; /* (s) sampled coordinates */
  float *D1, *D2; /* (m), (d) signs */
  float *U, *V;   /* (nb, m'), (nb, d') transformed rows of a block; none when fused */
  size_t bytes;
} srht_layout;

static srht_layout srht_carve(sgn_dims dm, int64_t s, void *work) {
  const size_t nb = srht_fused(dm) ? 0 : (size_t)srht_rows(dm);
  const uintptr_t base = (uintptr_t)work;
  size_t off = 0;
  srht_layout L;
  L.p = (int32_t *)(base + off), off = align_up(off + (size_t)s * sizeof(int32_t));
  L.q = (int32_t *)(base + off), off = align_up(off + (size_t)s * sizeof(int32_t));
  L.D1 = (float *)(base + off), off = align_up(off + (size_t)dm.m * sizeof(float));
  L.D2 = (float *)(base + off), off = align_up(off + (size_t)dm.d * sizeof(float));
  L.U = (float *)(base + off), off = align_up(off + nb * (size_t)next_pow2(dm.m) * sizeof(float));
  L.V = (float *)(base + off), off = align_up(off + nb * (size_t)next_pow2(dm.d) * sizeof(float));
  L.bytes = off;
  return L;
}

typedef struct gauss_layout {
  float *Om1, *Om2; /* (m, cs), (d, cs) columns [j0, j0 + cs) of Omega1, Omega2 */
  float *Mb;        /* (nb, m) mask rows of a block */
  float *P;         /* (nb, cs) X Omega2 block */
  size_t bytes;
} gauss_layout;

static gauss_layout gauss_carve(sgn_dims dm, int64_t s, void *work) {
  const size_t cs = (size_t)gauss_cols(dm, s);
  const size_t nb = (size_t)budget_rows(dm, dm.m, GAUSS_BLOCK);
  const uintptr_t base = (uintptr_t)work;
  size_t off = 0;
  gauss_layout L;
  L.Om1 = (float *)(base + off), off = align_up(off + (size_t)dm.m * cs * sizeof(float));
  L.Om2 = (float *)(base + off), off = align_up(off + (size_t)dm.d * cs * sizeof(float));
  L.Mb = (float *)(base + off), off = align_up(off + nb * (size_t)dm.m * sizeof(float));
  L.P = (float *)(base + off), off = align_up(off + nb * cs * sizeof(float));
  L.bytes = off;
  return L;
}

/* ---- launchers ---- */

extern "C" size_t sgn_cuda_sketch_work_bytes(sgn_dims dm, sgn_sketch kind, int64_t s) {
  switch (kind) {
  case SGN_SKETCH_SRHT: return srht_carve(dm, s, nullptr).bytes;
  case SGN_SKETCH_GAUSSIAN: return gauss_carve(dm, s, nullptr).bytes;
  case SGN_SKETCH_SRFT:
  case SGN_SKETCH_COUNTSKETCH: break; /* sketch_fft.cu, with the backend's plans */
  }
  return 0;
}

/* Y (n, s) fused: one launch, a block per sample */
static int srht_fused_run(sgn_dims dm, int64_t s, float scale, const float *X, const uint32_t *M,
                          const srht_layout &L, float *Y, cudaStream_t st) {
  const int64_t mp = next_pow2(dm.m), dp = next_pow2(dm.d);
  size_t vo;
  const size_t bytes = srht_fused_floats(mp, dp, &vo) * sizeof(float);
  const float su = (float)(1.0 / sqrt((double)mp)), sv = (float)(1.0 / sqrt((double)dp));
  if (sgn_fwht_allow_smem((const void *)srht_fused_kernel, bytes)) return -1;
  srht_fused_kernel<<<sgn_row_grid(dm.n), mp >= 16384 ? SRHT_THREADS : SGN_THREADS, bytes, st>>>(
      dm.n, s, dm.m, dm.d, sgn_fwht_log2(mp), sgn_fwht_log2(dp), (int)vo, su, sv, scale, M, X, L.D1,
      L.D2, L.p, L.q, Y);
  CUDA_CHECK_LAUNCH();
  return 0;
}

/* Y (n, s) in blocks of samples: fill U and V, transform them, gather */
static int srht_blocked_run(sgn_dims dm, int64_t s, float scale, const float *X, const uint32_t *M,
                            const srht_layout &L, float *Y, cudaStream_t st) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
  const int64_t mp = next_pow2(m), dp = next_pow2(d), nb = srht_rows(dm);
  for (int64_t i0 = 0; i0 < n; i0 += nb) {
    const int64_t rows = n - i0 < nb ? n - i0 : nb;
    srht_fill_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(
        rows, m, d, mp, dp, M + (size_t)i0 * (size_t)mw, X + (size_t)i0 * (size_t)d, L.D1, L.D2,
        L.U, L.V);
    CUDA_CHECK_LAUNCH();
    if (sgn_cuda_hadamard(L.U, rows, mp, st) || sgn_cuda_hadamard(L.V, rows, dp, st)) return -1;
    srht_gather_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(
        rows, s, mp, dp, scale, L.U, L.V, L.p, L.q, Y + (size_t)i0 * (size_t)s);
    CUDA_CHECK_LAUNCH();
  }
  return 0;
}

/* Y[i,j] = sqrt(m' d' / (m s)) (H D1 M_i)[p_j] (H D2 x_i)[q_j]   Y (n, s) */
extern "C" int sgn_cuda_sketch_srht(sgn_dims dm, int64_t s, uint64_t seed, const float *X,
                                    const uint32_t *M, void *work, float *Y, cudaStream_t st) {
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  if (n <= 0 || s <= 0) return 0;
  const int64_t mp = next_pow2(m), dp = next_pow2(d);
  if (mp > ((int64_t)1 << 31) || dp > ((int64_t)1 << 31)) {
    sgn_cuda_error(
        "srht: padded widths m' = %ld, d' = %ld: coordinates past 2^31 do not fit the "
        "sketch's int32 indices",
        (long)mp, (long)dp);
    return -1;
  }
  const srht_layout L = srht_carve(dm, s, work);
  const float scale = (float)sqrt((double)mp * (double)dp / ((double)m * (double)s));

  srht_draw_kernel<<<sgn_grid((size_t)(s + m + d)), SGN_THREADS, 0, st>>>(s, m, d, mp, dp, seed,
                                                                          L.p, L.q, L.D1, L.D2);
  CUDA_CHECK_LAUNCH();
  return srht_fused(dm) ? srht_fused_run(dm, s, scale, X, M, L, Y, st)
                        : srht_blocked_run(dm, s, scale, X, M, L, Y, st);
}

/* Y = (M Omega1) o (X Omega2) / sqrt(m s)   Y (n, s), in (sample, column) blocks */
extern "C" int sgn_cuda_sketch_gaussian(cublasHandle_t h, sgn_dims dm, int64_t s, uint64_t seed,
                                        const float *X, const uint32_t *M, void *work, float *Y,
                                        cudaStream_t st) {
  const int64_t n = dm.n, d = dm.d, m = dm.m, mw = SGN_MASK_WORDS(m);
  if (n <= 0 || s <= 0) return 0;
  const int64_t CS = gauss_cols(dm, s), NB = budget_rows(dm, m, GAUSS_BLOCK);
  const gauss_layout L = gauss_carve(dm, s, work);
  const float alpha = (float)(1.0 / sqrt((double)m * (double)s)), one = 1.0f, zero = 0.0f;
  int64_t mask_rows_at = -1; /* first sample of the mask block in Mb, -1 if none */

  for (int64_t j0 = 0; j0 < s; j0 += CS) {
    const int64_t cs = s - j0 < CS ? s - j0 : CS;
    gauss_omega_kernel<<<sgn_grid((size_t)(m + d) * (size_t)cs), SGN_THREADS, 0, st>>>(
        m, d, s, j0, cs, seed, L.Om1, L.Om2);
    CUDA_CHECK_LAUNCH();
    for (int64_t i0 = 0; i0 < n; i0 += NB) {
      const int64_t nb = n - i0 < NB ? n - i0 : NB;
      float *yb = Y + (size_t)i0 * (size_t)s + (size_t)j0; /* (nb, cs) block, row stride s */
      if (mask_rows_at != i0) {
        if (sgn_cuda_mask_expand(nb, M + (size_t)i0 * (size_t)mw, mw, 0, m, m, L.Mb, st)) return -1;
        mask_rows_at = i0;
      }
      /* yb(nb, cs) = alpha Mb(nb, m) Om1(m, cs); column-major: yb^T(cs, nb) ld s =
       * Om1^T(cs, m) Mb^T(m, nb), Om1 read as (cs, m) ld cs, Mb as (m, nb) ld m
       * -> cublasSgemm_64(N, N, cs, nb, m) (Y (n, s) passes 2^31 floats at n s > 2^31) */
      CUBLAS_CHECK(cublasSgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_N, cs, nb, m, &alpha, L.Om1, cs, L.Mb,
                                  m, &zero, yb, s));
      /* P(nb, cs) = X[i0:i0+nb](nb, d) Om2(d, cs) -> cublasSgemm_64(N, N, cs, nb, d), ldc cs */
      CUBLAS_CHECK(cublasSgemm_64(h, CUBLAS_OP_N, CUBLAS_OP_N, cs, nb, d, &one, L.Om2, cs,
                                  X + (size_t)i0 * (size_t)d, d, &zero, L.P, cs));
      mul_block_kernel<<<sgn_row_grid(nb), SGN_THREADS, 0, st>>>(nb, cs, s, L.P, yb);
      CUDA_CHECK_LAUNCH();
    }
  }
  return 0;
}
