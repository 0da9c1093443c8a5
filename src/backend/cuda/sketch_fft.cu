/* sketch_fft.cu — the FFT sketches of the k = 1 block of J on the GPU, twins of
 * cpu/sketch_fft.c: the tensor SRFT and TensorSketch on batched in-place cuFFT R2C / C2R
 * over a block of rows. The draws (rng.h) and the coordinate map of the real transform (rft.h)
 * are the CPU's, bit for bit; only the FFTs round differently (cuFFT vs FFTW), so Y agrees with
 * the CPU to float rounding. The CountSketch scatter of the mask adds +-1 values, exact in any
 * order, so its atomics keep Y deterministic. Plans live in the backend's sgn_cuda_fft cache:
 * made when sketch_work_bytes is asked (session setup), with their work area in the sketch's
 * work buffer, so a step allocates nothing. */
#include <math.h>
#include <stdlib.h>

#include <cufft.h>

#include "cuda_check.h"
#include "kernels.h"
#include "rft.h"
#include "rng.h"

/* Row blocks stay under this many floats of scratch (256 MiB), as the SRHT's. */
#define FFT_FLOATS ((int64_t)1 << 26)
/* Work sub-buffers start on this boundary. */
#define WORK_ALIGN 256
/* Plans kept per backend; a full cache is emptied (a run uses at most four shapes at a time). */
#define FFT_PLANS 16

/* ---- kernels ---- */

/* U[ii, r] = sign[r] M_(i0+ii),r for r < m (sign NULL: 1), 0 for m <= r < ld; M the whole mask */
static __global__ void mask_rows_kernel(int64_t rows, int64_t m, int64_t ld, int64_t i0,
                                        const uint32_t *__restrict__ M,
                                        const float *__restrict__ sign, float *__restrict__ U) {
  const int64_t mw = SGN_MASK_WORDS(m);
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    const uint32_t *mrow = M + (size_t)(i0 + ii) * (size_t)mw;
    float *u = U + (size_t)ii * (size_t)ld;
    for (int64_t r = threadIdx.x; r < ld; r += blockDim.x)
      u[r] = r < m && sgn_mask_bit(mrow, r) ? (sign ? sign[r] : 1.0f) : 0.0f;
  }
}

/* SRFT draws over one index space of s + m + d: column j's coordinates as float offsets into the
 * r2c rows and its coefficient scale w(p_j) w(q_j) (float64, then rounded: the CPU's values);
 * D1[r] for r < m, D2[t] for t < d */
static __global__ void srft_draw_kernel(int64_t s, int64_t m, int64_t d, uint64_t seed,
                                        double scale, int64_t *__restrict__ offu,
                                        int64_t *__restrict__ offx, float *__restrict__ coef,
                                        float *__restrict__ D1, float *__restrict__ D2) {
  const size_t total = (size_t)(s + m + d);
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (size_t)gridDim.x * blockDim.x) {
    if (e < (size_t)s) {
      const int64_t p = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_P, (uint64_t)e, (uint64_t)m);
      const int64_t q = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_Q, (uint64_t)e, (uint64_t)d);
      int64_t ou, ox;
      const double wu = sgn_rft_coord(m, p, &ou);
      const double wx = sgn_rft_coord(d, q, &ox);
      offu[e] = ou;
      offx[e] = ox;
      coef[e] = (float)(scale * wu * wx);
    } else if (e < (size_t)(s + m)) {
      const size_t r = e - (size_t)s;
      D1[r] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)r);
    } else {
      const size_t t = e - (size_t)(s + m);
      D2[t] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t);
    }
  }
}

/* V[ii, t] = D2[t] x_(i0+ii),t for t < d, 0 for d <= t < ld; X at the block's first row */
static __global__ void signed_rows_kernel(int64_t rows, int64_t d, int64_t ld,
                                          const float *__restrict__ X, const float *__restrict__ D2,
                                          float *__restrict__ V) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    const float *x = X + (size_t)ii * (size_t)d;
    float *v = V + (size_t)ii * (size_t)ld;
    for (int64_t t = threadIdx.x; t < ld; t += blockDim.x)
      v[t] = t < d ? __fmul_rn(D2[t], x[t]) : 0.0f;
  }
}

/* Y[ii, j] = (coef_j U[ii, offu_j]) V[ii, offx_j], the CPU twin's order of products */
static __global__ void srft_gather_kernel(int64_t rows, int64_t s, int64_t ldm, int64_t ldd,
                                          const float *__restrict__ coef,
                                          const int64_t *__restrict__ offu,
                                          const int64_t *__restrict__ offx,
                                          const float *__restrict__ U, const float *__restrict__ V,
                                          float *__restrict__ Y) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    const float *u = U + (size_t)ii * (size_t)ldm, *v = V + (size_t)ii * (size_t)ldd;
    float *y = Y + (size_t)ii * (size_t)s;
    for (int64_t j = threadIdx.x; j < s; j += blockDim.x)
      y[j] = __fmul_rn(__fmul_rn(coef[j], u[offu[j]]), v[offx[j]]);
  }
}

/* CountSketch draws over m + d: h1[r], D1[r] for r < m; h2[t], D2[t] for t < d */
static __global__ void cs_draw_kernel(int64_t m, int64_t d, int64_t s, uint64_t seed,
                                      int64_t *__restrict__ h1, int64_t *__restrict__ h2,
                                      float *__restrict__ D1, float *__restrict__ D2) {
  const size_t total = (size_t)(m + d);
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (size_t)gridDim.x * blockDim.x) {
    if (e < (size_t)m) {
      h1[e] = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_H1, (uint64_t)e, (uint64_t)s);
      D1[e] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)e);
    } else {
      const size_t t = e - (size_t)m;
      h2[t] = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_H2, (uint64_t)t, (uint64_t)s);
      D2[t] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t);
    }
  }
}

/* A[ii, h1[r]] += E[ii, r] over (ii, r) < (rows, m). E holds 0 and +-1: the sums are integers,
 * exact in float in any order, so the atomics give the CPU's values. A zeroed before. */
static __global__ void cs_scatter_mask_kernel(int64_t rows, int64_t m, int64_t lde, int64_t lds,
                                              const int64_t *__restrict__ h1,
                                              const float *__restrict__ E, float *__restrict__ A) {
  const size_t total = (size_t)rows * (size_t)m;
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (size_t)gridDim.x * blockDim.x) {
    const size_t ii = e / (size_t)m, r = e % (size_t)m;
    const float v = E[ii * (size_t)lde + r];
    if (v != 0.0f) atomicAdd(&A[ii * (size_t)lds + (size_t)h1[r]], v);
  }
}

/* B[ii, h2[t]] += D2[t] x_(i0+ii),t, t in order (one thread per row: the CPU's float sums).
 * X at the block's first row; B zeroed before. */
static __global__ void cs_scatter_x_kernel(int64_t rows, int64_t d, int64_t lds,
                                           const int64_t *__restrict__ h2,
                                           const float *__restrict__ D2,
                                           const float *__restrict__ X, float *__restrict__ B) {
  for (int64_t ii = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; ii < rows;
       ii += (int64_t)gridDim.x * blockDim.x) {
    const float *x = X + (size_t)ii * (size_t)d;
    float *b = B + (size_t)ii * (size_t)lds;
    for (int64_t t = 0; t < d; t++) b[h2[t]] = __fadd_rn(b[h2[t]], __fmul_rn(D2[t], x[t]));
  }
}

/* A[ii, k] <- A[ii, k] B[ii, k] (complex) for k <= s/2, the CPU's roundings */
static __global__ void cs_multiply_kernel(int64_t rows, int64_t half, int64_t lds,
                                          const float *__restrict__ B, float *__restrict__ A) {
  const size_t total = (size_t)rows * (size_t)half;
  for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
       e += (size_t)gridDim.x * blockDim.x) {
    const size_t ii = e / (size_t)half, k = e % (size_t)half;
    float *a = A + ii * (size_t)lds + 2 * k;
    const float *b = B + ii * (size_t)lds + 2 * k;
    const float ar = a[0], ai = a[1], br = b[0], bi = b[1];
    a[0] = __fsub_rn(__fmul_rn(ar, br), __fmul_rn(ai, bi));
    a[1] = __fadd_rn(__fmul_rn(ar, bi), __fmul_rn(ai, br));
  }
}

/* Y[ii, j] = scale A[ii, j] for j < s */
static __global__ void cs_out_kernel(int64_t rows, int64_t s, int64_t lds, float scale,
                                     const float *__restrict__ A, float *__restrict__ Y) {
  for (int64_t ii = blockIdx.x; ii < rows; ii += gridDim.x) {
    const float *a = A + (size_t)ii * (size_t)lds;
    float *y = Y + (size_t)ii * (size_t)s;
    for (int64_t j = threadIdx.x; j < s; j += blockDim.x) y[j] = __fmul_rn(scale, a[j]);
  }
}

/* ---- the plan cache ---- */

typedef struct fft_entry {
  int c2r;                /* 0: R2C, 1: C2R, in place */
  int64_t len, ld, batch; /* transform length, floats per row, rows */
  cufftHandle h;          /* bound to the backend's stream, no work area of its own */
  size_t ws;              /* bytes of work area it needs (cufftSetWorkArea before each run) */
} fft_entry;

struct sgn_cuda_fft {
  int count;
  fft_entry e[FFT_PLANS];
};

static void fft_clear(sgn_cuda_fft *c) {
  for (int i = 0; i < c->count; i++) (void)cufftDestroy(c->e[i].h);
  c->count = 0;
}

extern "C" void sgn_cuda_sketch_fft_free(sgn_cuda_fft *cache) {
  if (!cache) return;
  fft_clear(cache);
  free(cache);
}

static const fft_entry *fft_find(const sgn_cuda_fft *c, int c2r, int64_t len, int64_t ld,
                                 int64_t batch) {
  for (int i = 0; c && i < c->count; i++) {
    const fft_entry *e = &c->e[i];
    if (e->c2r == c2r && e->len == len && e->ld == ld && e->batch == batch) return e;
  }
  return nullptr;
}

/* The in-place batched plan for (c2r, len, ld, batch) from the cache, made if missing: batch
 * rows of ld floats, the real data in the first len, the half spectrum (len/2 + 1 complex) over
 * the same floats. Its work area is the caller's (auto-allocation off). NULL, with the sticky
 * error set, when it cannot be made. */
static const fft_entry *fft_plan(sgn_cuda_fft **cache, int c2r, int64_t len, int64_t ld,
                                 int64_t batch, cudaStream_t st) {
  /* length 1 is the identity in place (the imaginary slot is never read, or zero): no plan */
  static const fft_entry identity = {0, 1, 0, 0, 0, 0};
  if (len == 1) return &identity;
  if (!*cache) {
    *cache = (sgn_cuda_fft *)calloc(1, sizeof **cache);
    if (!*cache) {
      sgn_cuda_error("gpu backend: out of host memory for the FFT plans");
      return nullptr;
    }
  }
  sgn_cuda_fft *c = *cache;
  const fft_entry *hit = fft_find(c, c2r, len, ld, batch);
  if (hit) return hit;
  if (c->count == FFT_PLANS) { /* fft_plans_ws makes room first: a bug if reached */
    sgn_cuda_error("gpu backend: FFT plan cache full");
    return nullptr;
  }
  int n[1] = {sgn_cuda_int(len, "FFT length")};
  int real_embed[1] = {sgn_cuda_int(ld, "FFT row stride")}, cplx_embed[1] = {(int)(ld / 2)};
  const int nb = sgn_cuda_int(batch, "FFT batch");
  if (n[0] < 0 || real_embed[0] < 0 || nb < 0) return nullptr;
  fft_entry *e = &c->e[c->count];
  e->c2r = c2r, e->len = len, e->ld = ld, e->batch = batch, e->ws = 0;
  if (CUFFT_FAILED(cufftCreate(&e->h))) return nullptr;
  c->count++; /* from here on fft_clear destroys it */
  if (CUFFT_FAILED(cufftSetAutoAllocation(e->h, 0))) return nullptr;
  if (!c2r) { /* real rows of stride ld in, complex rows of stride ld / 2 out */
    if (CUFFT_FAILED(cufftMakePlanMany(e->h, 1, n, real_embed, 1, real_embed[0], cplx_embed, 1,
                                       cplx_embed[0], CUFFT_R2C, nb, &e->ws)))
      return nullptr;
  } else {
    if (CUFFT_FAILED(cufftMakePlanMany(e->h, 1, n, cplx_embed, 1, cplx_embed[0], real_embed, 1,
                                       real_embed[0], CUFFT_C2R, nb, &e->ws)))
      return nullptr;
  }
  if (CUFFT_FAILED(cufftSetStream(e->h, st))) return nullptr;
  return e;
}

/* Runs the plan in place on x (batch rows of ld floats), its work area at ws; 0 or -1 */
SGN_MUST_CHECK static int fft_exec(const fft_entry *e, float *x, void *ws) {
  if (e->len == 1) return 0;
  CUFFT_CHECK(cufftSetWorkArea(e->h, ws));
  if (!e->c2r) CUFFT_CHECK(cufftExecR2C(e->h, (cufftReal *)x, (cufftComplex *)x));
  else CUFFT_CHECK(cufftExecC2R(e->h, (cufftComplex *)x, (cufftReal *)x));
  return 0;
}

/* ---- work layouts (one function computes both the size and the pointers) ---- */

static size_t align_up(size_t v) { return (v + WORK_ALIGN - 1) / WORK_ALIGN * WORK_ALIGN; }

/* Samples per block when each takes width floats: FFT_FLOATS / width, cut when chunking so the
 * block stays within the products' work (sgn_work_floats), at least 1, at most n. */
static int64_t fft_rows(sgn_dims dm, int64_t width) {
  int64_t nb = FFT_FLOATS / (width > 0 ? width : 1);
  if (sgn_chunked(dm)) {
    const int64_t fit = (int64_t)(sgn_work_floats(dm) / (size_t)(width > 0 ? width : 1));
    if (fit < nb) nb = fit;
  }
  if (nb > dm.n) nb = dm.n;
  return nb > 1 ? nb : 1;
}

/* *ws = the cuFFT work area of the plans a sketch with nb-row blocks runs (full blocks and the
 * last one), making them on the way: the most any of them needs. Transforms: (c2r, len, ld) x
 * count. The plans are the same for the same (dm, s), so the area sketch_work_bytes reserved is
 * the area the sketch finds. Returns 0, or -1 when a plan cannot be made. */
SGN_MUST_CHECK static int fft_plans_ws(sgn_cuda_fft **cache, int64_t n, int64_t nb, const int *c2r,
                                       const int64_t *len, const int64_t *ld, int count,
                                       cudaStream_t st, size_t *ws) {
  *ws = 0;
  const int64_t batches[2] = {nb, n % nb};
  int missing = 0;
  for (int b = 0; b < 2; b++)
    for (int t = 0; batches[b] > 0 && t < count; t++)
      missing += len[t] > 1 && !fft_find(*cache, c2r[t], len[t], ld[t], batches[b]);
  if (*cache && (*cache)->count + missing > FFT_PLANS) { /* room for the whole set, so no plan
                                                            a sketch holds is destroyed */
    CUDA_CHECK(cudaStreamSynchronize(st));               /* the old plans may still be queued */
    fft_clear(*cache);
  }
  for (int b = 0; b < 2; b++) {
    if (batches[b] == 0) continue;
    for (int t = 0; t < count; t++) {
      const fft_entry *e = fft_plan(cache, c2r[t], len[t], ld[t], batches[b], st);
      if (!e) return -1;
      if (e->ws > *ws) *ws = e->ws;
    }
  }
  return 0;
}

typedef struct srft_layout {
  int64_t *offu, *offx; /* (s) float offsets of (F u)[p_j], (F x)[q_j] in a row's r2c output */
  float *coef;          /* (s) sqrt(d / s) w(p_j) w(q_j) */
  float *D1, *D2;       /* (m), (d) signs */
  float *U, *V;         /* (nb, ldm), (nb, ldd) rows of a block, transformed in place */
  void *ws;             /* cuFFT work area */
  int64_t nb, ldm, ldd;
  size_t ws_bytes, bytes;
} srft_layout;

static srft_layout srft_carve(sgn_dims dm, int64_t s, size_t ws_bytes, void *work) {
  srft_layout L;
  L.ldm = sgn_rft_ld(dm.m), L.ldd = sgn_rft_ld(dm.d);
  L.nb = fft_rows(dm, L.ldm + L.ldd);
  L.ws_bytes = ws_bytes;
  const uintptr_t base = (uintptr_t)work;
  size_t off = 0;
  L.offu = (int64_t *)(base + off), off = align_up(off + (size_t)s * sizeof(int64_t));
  L.offx = (int64_t *)(base + off), off = align_up(off + (size_t)s * sizeof(int64_t));
  L.coef = (float *)(base + off), off = align_up(off + (size_t)s * sizeof(float));
  L.D1 = (float *)(base + off), off = align_up(off + (size_t)dm.m * sizeof(float));
  L.D2 = (float *)(base + off), off = align_up(off + (size_t)dm.d * sizeof(float));
  L.U = (float *)(base + off), off = align_up(off + (size_t)L.nb * (size_t)L.ldm * sizeof(float));
  L.V = (float *)(base + off), off = align_up(off + (size_t)L.nb * (size_t)L.ldd * sizeof(float));
  L.ws = (void *)(base + off), off = align_up(off + ws_bytes);
  L.bytes = off;
  return L;
}

typedef struct cs_layout {
  int64_t *h1, *h2; /* (m), (d) buckets in [0, s) */
  float *D1, *D2;   /* (m), (d) signs */
  float *E;         /* (nb, lde) signed mask rows */
  float *A, *B;     /* (nb, lds) CountSketches of the rows, transformed in place */
  void *ws;         /* cuFFT work area */
  int64_t nb, lde, lds;
  size_t ws_bytes, bytes;
} cs_layout;

static cs_layout cs_carve(sgn_dims dm, int64_t s, size_t ws_bytes, void *work) {
  cs_layout L;
  L.lde = (dm.m + 15) / 16 * 16, L.lds = sgn_rft_ld(s);
  L.nb = fft_rows(dm, L.lde + 2 * L.lds);
  L.ws_bytes = ws_bytes;
  const uintptr_t base = (uintptr_t)work;
  size_t off = 0;
  L.h1 = (int64_t *)(base + off), off = align_up(off + (size_t)dm.m * sizeof(int64_t));
  L.h2 = (int64_t *)(base + off), off = align_up(off + (size_t)dm.d * sizeof(int64_t));
  L.D1 = (float *)(base + off), off = align_up(off + (size_t)dm.m * sizeof(float));
  L.D2 = (float *)(base + off), off = align_up(off + (size_t)dm.d * sizeof(float));
  L.E = (float *)(base + off), off = align_up(off + (size_t)L.nb * (size_t)L.lde * sizeof(float));
  L.A = (float *)(base + off), off = align_up(off + (size_t)L.nb * (size_t)L.lds * sizeof(float));
  L.B = (float *)(base + off), off = align_up(off + (size_t)L.nb * (size_t)L.lds * sizeof(float));
  L.ws = (void *)(base + off), off = align_up(off + ws_bytes);
  L.bytes = off;
  return L;
}

/* *ws = the cuFFT work area a sketch of this shape needs (plans made and cached on the way);
 * 0 or -1 */
SGN_MUST_CHECK static int srft_ws(sgn_cuda_fft **cache, sgn_dims dm, int64_t s, cudaStream_t st,
                                  size_t *ws) {
  const srft_layout L = srft_carve(dm, s, 0, nullptr);
  const int c2r[2] = {0, 0};
  const int64_t len[2] = {dm.m, dm.d}, ld[2] = {L.ldm, L.ldd};
  return fft_plans_ws(cache, dm.n, L.nb, c2r, len, ld, 2, st, ws);
}

SGN_MUST_CHECK static int cs_ws(sgn_cuda_fft **cache, sgn_dims dm, int64_t s, cudaStream_t st,
                                size_t *ws) {
  const cs_layout L = cs_carve(dm, s, 0, nullptr);
  const int c2r[2] = {0, 1};
  const int64_t len[2] = {s, s}, ld[2] = {L.lds, L.lds};
  return fft_plans_ws(cache, dm.n, L.nb, c2r, len, ld, 2, st, ws);
}

/* ---- launchers ---- */

extern "C" int sgn_cuda_sketch_mask_rows(sgn_dims dm, const uint32_t *M, int64_t i0, int64_t rows,
                                         const float *sign, int64_t ld, float *U, cudaStream_t st) {
  if (rows <= 0) return 0;
  mask_rows_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(rows, dm.m, ld, i0, M, sign, U);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" size_t sgn_cuda_sketch_fft_work_bytes(sgn_cuda_fft **cache, sgn_dims dm, sgn_sketch kind,
                                                 int64_t s, cudaStream_t st) {
  size_t ws = 0;
  if (dm.n <= 0 || s <= 0) return 0;
  if (kind == SGN_SKETCH_SRFT)
    return srft_ws(cache, dm, s, st, &ws) ? 0 : srft_carve(dm, s, ws, nullptr).bytes;
  if (kind == SGN_SKETCH_COUNTSKETCH)
    return cs_ws(cache, dm, s, st, &ws) ? 0 : cs_carve(dm, s, ws, nullptr).bytes;
  return 0;
}

/* Y[i,j] = sqrt(m d / (m s)) (F D1 M_i)[p_j] (F D2 x_i)[q_j]   Y (n, s) */
extern "C" int sgn_cuda_sketch_srft(sgn_cuda_fft **cache, sgn_dims dm, int64_t s, uint64_t seed,
                                    const float *X, const uint32_t *M, void *work, float *Y,
                                    cudaStream_t st) {
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  if (n <= 0 || s <= 0) return 0;
  size_t ws = 0;
  if (srft_ws(cache, dm, s, st, &ws)) return -1;
  const srft_layout L = srft_carve(dm, s, ws, work);
  const double scale = sqrt((double)m * (double)d / ((double)m * (double)s));

  srft_draw_kernel<<<sgn_grid((size_t)(s + m + d)), SGN_THREADS, 0, st>>>(
      s, m, d, seed, scale, L.offu, L.offx, L.coef, L.D1, L.D2);
  CUDA_CHECK_LAUNCH();
  for (int64_t i0 = 0; i0 < n; i0 += L.nb) {
    const int64_t rows = n - i0 < L.nb ? n - i0 : L.nb;
    const fft_entry *pu = fft_plan(cache, 0, m, L.ldm, rows, st);
    const fft_entry *px = fft_plan(cache, 0, d, L.ldd, rows, st);
    if (!pu || !px || sgn_cuda_sketch_mask_rows(dm, M, i0, rows, L.D1, L.ldm, L.U, st)) return -1;
    signed_rows_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(
        rows, d, L.ldd, X + (size_t)i0 * (size_t)d, L.D2, L.V);
    CUDA_CHECK_LAUNCH();
    /* one work area: the two plans run one after the other */
    if (fft_exec(pu, L.U, L.ws) || fft_exec(px, L.V, L.ws)) return -1;
    srft_gather_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(
        rows, s, L.ldm, L.ldd, L.coef, L.offu, L.offx, L.U, L.V, Y + (size_t)i0 * (size_t)s);
    CUDA_CHECK_LAUNCH();
  }
  return 0;
}

/* Y[i,:] = m^-1/2 irfft(rfft(a_i) o rfft(b_i)), a_i, b_i the CountSketches of M_i and x_i */
extern "C" int sgn_cuda_sketch_countsketch(sgn_cuda_fft **cache, sgn_dims dm, int64_t s,
                                           uint64_t seed, const float *X, const uint32_t *M,
                                           void *work, float *Y, cudaStream_t st) {
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  if (n <= 0 || s <= 0) return 0;
  size_t ws = 0;
  if (cs_ws(cache, dm, s, st, &ws)) return -1;
  const cs_layout L = cs_carve(dm, s, ws, work);
  const int64_t half = s / 2 + 1;
  const float scale = (float)(1.0 / ((double)s * sqrt((double)m))); /* the CPU's value */

  cs_draw_kernel<<<sgn_grid((size_t)(m + d)), SGN_THREADS, 0, st>>>(m, d, s, seed, L.h1, L.h2, L.D1,
                                                                    L.D2);
  CUDA_CHECK_LAUNCH();
  for (int64_t i0 = 0; i0 < n; i0 += L.nb) {
    const int64_t rows = n - i0 < L.nb ? n - i0 : L.nb;
    const fft_entry *fwd = fft_plan(cache, 0, s, L.lds, rows, st);
    const fft_entry *inv = fft_plan(cache, 1, s, L.lds, rows, st);
    const size_t block_bytes = (size_t)rows * (size_t)L.lds * sizeof(float);
    if (!fwd || !inv || sgn_cuda_sketch_mask_rows(dm, M, i0, rows, L.D1, L.lde, L.E, st)) return -1;
    CUDA_CHECK(cudaMemsetAsync(L.A, 0, block_bytes, st));
    CUDA_CHECK(cudaMemsetAsync(L.B, 0, block_bytes, st));
    cs_scatter_mask_kernel<<<sgn_grid((size_t)rows * (size_t)m), SGN_THREADS, 0, st>>>(
        rows, m, L.lde, L.lds, L.h1, L.E, L.A);
    CUDA_CHECK_LAUNCH();
    cs_scatter_x_kernel<<<sgn_grid((size_t)rows), SGN_THREADS, 0, st>>>(
        rows, d, L.lds, L.h2, L.D2, X + (size_t)i0 * (size_t)d, L.B);
    CUDA_CHECK_LAUNCH();
    if (fft_exec(fwd, L.A, L.ws) || fft_exec(fwd, L.B, L.ws)) return -1;
    cs_multiply_kernel<<<sgn_grid((size_t)rows * (size_t)half), SGN_THREADS, 0, st>>>(
        rows, half, L.lds, L.B, L.A);
    CUDA_CHECK_LAUNCH();
    if (fft_exec(inv, L.A, L.ws)) return -1;
    cs_out_kernel<<<sgn_row_grid(rows), SGN_THREADS, 0, st>>>(rows, s, L.lds, scale, L.A,
                                                              Y + (size_t)i0 * (size_t)s);
    CUDA_CHECK_LAUNCH();
  }
  return 0;
}
