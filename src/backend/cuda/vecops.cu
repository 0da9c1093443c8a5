/* vecops.cu — the vector ops of CG and the first-order solvers, twins of the loops in
 * cpu/vecops.c. Elementwise ops spell out the CPU's roundings with __d*_rn / __f*_rn
 * intrinsics (never contracted to FMA), so they agree with it bit for bit. dot and residual
 * reduce in two deterministic stages (per-block partial sums, then one block adds them in
 * order) and copy one double back, so the same input gives the same sum on every run. */
#include <math.h>

#include "cuda_check.h"
#include "kernels.h"
#include "pcg_control.h"

/* ---- kernels ---- */

#define GRID_STRIDE(i, len)                                                         \
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)(len); \
       i += (size_t)gridDim.x * blockDim.x)

/* partials[block] = sum over the block's grid-stride share of x_i y_i */
static __global__ void dot_partial_kernel(int64_t len, const double *__restrict__ x,
                                          const double *__restrict__ y,
                                          double *__restrict__ partials) {
  double acc = 0.0;
  GRID_STRIDE(i, len) acc = fma(x[i], y[i], acc);
  acc = sgn_block_sum<double>(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

/* r = F - Y in float64; partials[block] = the block's share of sum r^2 */
static __global__ void residual_partial_kernel(int64_t len, const float *__restrict__ F,
                                               const float *__restrict__ Y, double *__restrict__ r,
                                               double *__restrict__ partials) {
  double acc = 0.0;
  GRID_STRIDE(i, len) {
    const double ri = __dsub_rn((double)F[i], (double)Y[i]);
    r[i] = ri;
    acc = fma(ri, ri, acc);
  }
  acc = sgn_block_sum<double>(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

/* *out = sum of partials[0, count), one block */
static __global__ void sum_partials_kernel(int count, const double *__restrict__ partials,
                                           double *__restrict__ out) {
  double acc = 0.0;
  for (int b = threadIdx.x; b < count; b += blockDim.x) acc += partials[b];
  acc = sgn_block_sum<double>(acc);
  if (threadIdx.x == 0) *out = acc;
}

static __global__ void axpy_kernel(int64_t len, double a, const double *__restrict__ x,
                                   double *__restrict__ y) {
  GRID_STRIDE(i, len) y[i] = __dadd_rn(y[i], __dmul_rn(a, x[i]));
}

static __global__ void xpby_kernel(int64_t len, const double *__restrict__ x, double b,
                                   double *__restrict__ y) {
  GRID_STRIDE(i, len) y[i] = __dadd_rn(x[i], __dmul_rn(b, y[i]));
}

static __global__ void scal_kernel(int64_t len, double a, double *__restrict__ x) {
  GRID_STRIDE(i, len) x[i] = __dmul_rn(x[i], a);
}

static __global__ void d2f_kernel(int64_t len, const double *__restrict__ x,
                                  float *__restrict__ y) {
  GRID_STRIDE(i, len) y[i] = __double2float_rn(x[i]);
}

static __global__ void f2d_kernel(int64_t len, const float *__restrict__ x,
                                  double *__restrict__ y) {
  GRID_STRIDE(i, len) y[i] = (double)x[i];
}

static __global__ void axpy_f_kernel(int64_t len, float a, const float *__restrict__ x,
                                     float *__restrict__ y) {
  GRID_STRIDE(i, len) y[i] = __fadd_rn(y[i], __fmul_rn(a, x[i]));
}

/* out[i, :] = src[idx[i], :]: rows over blocks, columns over threads */
static __global__ void gather_rows_kernel(int64_t b, int64_t cols, const float *__restrict__ src,
                                          const int64_t *__restrict__ idx,
                                          float *__restrict__ out) {
  for (int64_t i = blockIdx.x; i < b; i += gridDim.x) {
    const float *s = src + (size_t)idx[i] * (size_t)cols;
    float *o = out + (size_t)i * (size_t)cols;
    for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) o[c] = s[c];
  }
}

/* mom = b1 mom + (1-b1) g; vel = b2 vel + (1-b2) g g; W -= lr (mom / bc1) / (sqrt(vel / bc2) + eps)
 * in float64 per element, rounded as the CPU twin's expression (left to right, no FMA). */
static __global__ void adam_kernel(int64_t len, float *__restrict__ W, const float *__restrict__ g,
                                   float *__restrict__ mom, float *__restrict__ vel, double lr,
                                   double b1, double omb1, double b2, double omb2, double eps,
                                   double bc1, double bc2) {
  GRID_STRIDE(i, len) {
    const double gi = (double)g[i];
    const double mo = __dadd_rn(__dmul_rn(b1, (double)mom[i]), __dmul_rn(omb1, gi));
    const double ve = __dadd_rn(__dmul_rn(b2, (double)vel[i]), __dmul_rn(__dmul_rn(omb2, gi), gi));
    mom[i] = __double2float_rn(mo);
    vel[i] = __double2float_rn(ve);
    const double step = __ddiv_rn(__dmul_rn(lr, __ddiv_rn(mo, bc1)),
                                  __dadd_rn(__dsqrt_rn(__ddiv_rn(ve, bc2)), eps));
    W[i] = __double2float_rn(__dsub_rn((double)W[i], step));
  }
}

/* ---- PCG's scalars in device memory (backend.h pcg_*): the host loop's ops, reading the
 * state s where the host passed values ---- */

/* unless done or p.q breaks down: x += alpha p, r += -alpha q (axpy_kernel's roundings) */
static __global__ void pcg_update_kernel(int64_t len, const sgn_pcg_ctl *__restrict__ s,
                                         const double *__restrict__ p, const double *__restrict__ q,
                                         double *__restrict__ x, double *__restrict__ r) {
  if (s->done || !sgn_pcg_pq_ok(s->pq)) return;
  const double alpha = __ddiv_rn(s->rz, s->pq);
  GRID_STRIDE(i, len) {
    x[i] = __dadd_rn(x[i], __dmul_rn(alpha, p[i]));
    r[i] = __dadd_rn(r[i], __dmul_rn(-alpha, q[i]));
  }
}

/* the iteration's tests (pcg_control.h), one thread */
static __global__ void pcg_control_kernel(sgn_pcg_ctl *s) { sgn_pcg_control(s); }

/* unless done: p = z + (rz / rz_old) p (xpby_kernel's roundings) */
static __global__ void pcg_direction_kernel(int64_t len, const sgn_pcg_ctl *__restrict__ s,
                                            const double *__restrict__ z, double *__restrict__ p) {
  if (s->done) return;
  const double beta = __ddiv_rn(s->rz, s->rz_old);
  GRID_STRIDE(i, len) p[i] = __dadd_rn(z[i], __dmul_rn(beta, p[i]));
}

/* ---- launchers ---- */

static unsigned red_blocks(int64_t len) {
  const size_t b = ((size_t)len + SGN_THREADS - 1) / SGN_THREADS;
  return (unsigned)(b < SGN_RED_BLOCKS ? b : SGN_RED_BLOCKS);
}

/* Adds the blocks' partial sums into partials[SGN_RED_BLOCKS] and brings it to the host (NaN,
 * with the sticky error set, on a failure). */
static double finish_sum(unsigned blocks, double *partials, double *host, cudaStream_t st) {
  sum_partials_kernel<<<1, SGN_THREADS, 0, st>>>((int)blocks, partials, partials + SGN_RED_BLOCKS);
  if (CUDA_FAILED(cudaGetLastError()) ||
      CUDA_FAILED(cudaMemcpyAsync(host, partials + SGN_RED_BLOCKS, sizeof(double),
                                  cudaMemcpyDeviceToHost, st)) ||
      CUDA_FAILED(cudaStreamSynchronize(st)))
    return NAN;
  return *host;
}

extern "C" double sgn_cuda_dot(int64_t len, const double *x, const double *y, double *partials,
                               double *host, cudaStream_t st) {
  if (len <= 0) return 0.0;
  const unsigned blocks = red_blocks(len);
  dot_partial_kernel<<<blocks, SGN_THREADS, 0, st>>>(len, x, y, partials);
  if (CUDA_FAILED(cudaGetLastError())) return NAN;
  return finish_sum(blocks, partials, host, st);
}

extern "C" double sgn_cuda_residual(int64_t len, const float *F, const float *Y, double *r,
                                    double *partials, double *host, cudaStream_t st) {
  if (len <= 0) return 0.0;
  const unsigned blocks = red_blocks(len);
  residual_partial_kernel<<<blocks, SGN_THREADS, 0, st>>>(len, F, Y, r, partials);
  if (CUDA_FAILED(cudaGetLastError())) return NAN;
  return finish_sum(blocks, partials, host, st);
}

extern "C" int sgn_cuda_pcg_dot(int64_t len, const double *x, const double *y, double *partials,
                                double *out, cudaStream_t st) {
  if (len <= 0) {
    CUDA_CHECK(cudaMemsetAsync(out, 0, sizeof(double), st));
    return 0;
  }
  const unsigned blocks = red_blocks(len);
  dot_partial_kernel<<<blocks, SGN_THREADS, 0, st>>>(len, x, y, partials);
  CUDA_CHECK_LAUNCH();
  sum_partials_kernel<<<1, SGN_THREADS, 0, st>>>((int)blocks, partials, out);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_pcg_update(int64_t len, const sgn_pcg_ctl *s, const double *p,
                                   const double *q, double *x, double *r, cudaStream_t st) {
  if (len <= 0) return 0;
  pcg_update_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, s, p, q, x, r);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_pcg_control(sgn_pcg_ctl *s, cudaStream_t st) {
  pcg_control_kernel<<<1, 1, 0, st>>>(s);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_pcg_direction(int64_t len, const sgn_pcg_ctl *s, const double *z, double *p,
                                      cudaStream_t st) {
  if (len <= 0) return 0;
  pcg_direction_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, s, z, p);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_axpy(int64_t len, double a, const double *x, double *y, cudaStream_t st) {
  if (len <= 0) return 0;
  axpy_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, a, x, y);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_xpby(int64_t len, const double *x, double b, double *y, cudaStream_t st) {
  if (len <= 0) return 0;
  xpby_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, x, b, y);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_scal(int64_t len, double a, double *x, cudaStream_t st) {
  if (len <= 0) return 0;
  if (a == 0.0) { /* zeros, even where x held NaN or Inf (0 * NaN is NaN) */
    CUDA_CHECK(cudaMemsetAsync(x, 0, (size_t)len * sizeof(double), st));
    return 0;
  }
  scal_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, a, x);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_d2f(int64_t len, const double *x, float *y, cudaStream_t st) {
  if (len <= 0) return 0;
  d2f_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, x, y);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_f2d(int64_t len, const float *x, double *y, cudaStream_t st) {
  if (len <= 0) return 0;
  f2d_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, x, y);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_axpy_f(int64_t len, float a, const float *x, float *y, cudaStream_t st) {
  if (len <= 0) return 0;
  axpy_f_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, a, x, y);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_gather_rows(int64_t b, int64_t cols, const float *src, const int64_t *idx,
                                    float *out, cudaStream_t st) {
  if (b <= 0 || cols <= 0) return 0;
  gather_rows_kernel<<<sgn_row_grid(b), SGN_THREADS, 0, st>>>(b, cols, src, idx, out);
  CUDA_CHECK_LAUNCH();
  return 0;
}

extern "C" int sgn_cuda_adam(int64_t len, float *W, const float *g, float *mom, float *vel,
                             double lr, double b1, double b2, double eps, int64_t t,
                             cudaStream_t st) {
  if (len <= 0) return 0;
  /* the bias corrections on the host, with the CPU twin's pow */
  const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
  adam_kernel<<<sgn_grid((size_t)len), SGN_THREADS, 0, st>>>(len, W, g, mom, vel, lr, b1, 1.0 - b1,
                                                             b2, 1.0 - b2, eps, bc1, bc2);
  CUDA_CHECK_LAUNCH();
  return 0;
}
