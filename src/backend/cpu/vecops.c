/* vecops.c (cpu) — the vector ops of CG and the first-order steps (twins of cuda/vecops.cu):
 * OpenMP loops over float64 (float where named _f). The reductions (dot, residual) add fixed
 * blocks in order, so results do not depend on the thread count. */
#include <math.h>
#include <string.h>

#include "cpu.h"
#include "pcg_control.h"

/* Fixed number of blocks of the deterministic reductions. */
#define RED_BLOCKS 64

/* sum_i x_i y_i (y == NULL: sum x_i^2) in RED_BLOCKS fixed blocks added in order */
static double block_dot(int64_t len, const double *x, const double *y) {
  double part[RED_BLOCKS];
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
  for (int b = 0; b < RED_BLOCKS; b++) {
    const int64_t lo = len * b / RED_BLOCKS, hi = len * (b + 1) / RED_BLOCKS;
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t i = lo;
    for (; i + 4 <= hi; i += 4) {
      s0 += x[i] * (y ? y[i] : x[i]);
      s1 += x[i + 1] * (y ? y[i + 1] : x[i + 1]);
      s2 += x[i + 2] * (y ? y[i + 2] : x[i + 2]);
      s3 += x[i + 3] * (y ? y[i + 3] : x[i + 3]);
    }
    for (; i < hi; i++) s0 += x[i] * (y ? y[i] : x[i]);
    part[b] = (s0 + s1) + (s2 + s3);
  }
  double sum = 0.0;
  for (int b = 0; b < RED_BLOCKS; b++) sum += part[b];
  return sum;
}

/* <x, y> */
double sgn_cpu_dot(void *ctx, int64_t len, const double *x, const double *y) {
  if (sgn_cpu_failed(ctx)) return NAN;
  return block_dot(len, x, y);
}

/* y += a x */
void sgn_cpu_axpy(void *ctx, int64_t len, double a, const double *x, double *y) {
  if (sgn_cpu_failed(ctx)) return;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] += a * x[i];
}

/* y = x + b y */
void sgn_cpu_xpby(void *ctx, int64_t len, const double *x, double b, double *y) {
  if (sgn_cpu_failed(ctx)) return;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = x[i] + b * y[i];
}

/* x *= a */
void sgn_cpu_scal(void *ctx, int64_t len, double a, double *x) {
  if (sgn_cpu_failed(ctx)) return;
  if (a == 0.0) { /* zeros, even where x held NaN or Inf (0 * NaN is NaN) */
    memset(x, 0, (size_t)len * sizeof(double));
    return;
  }
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) x[i] *= a;
}

/* y = (float) x */
void sgn_cpu_d2f(void *ctx, int64_t len, const double *x, float *y) {
  if (sgn_cpu_failed(ctx)) return;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = (float)x[i];
}

/* y = (double) x */
void sgn_cpu_f2d(void *ctx, int64_t len, const float *x, double *y) {
  if (sgn_cpu_failed(ctx)) return;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] = (double)x[i];
}

/* r = F - Y in float64; returns sum_i r_i^2 */
double sgn_cpu_residual(void *ctx, int64_t len, const float *F, const float *Y, double *r) {
  if (sgn_cpu_failed(ctx)) return NAN;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) r[i] = (double)F[i] - (double)Y[i];
  return block_dot(len, r, NULL);
}

/* y += a x (float) */
void sgn_cpu_axpy_f(void *ctx, int64_t len, float a, const float *x, float *y) {
  if (sgn_cpu_failed(ctx)) return;
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) y[i] += a * x[i];
}

/* out[i, :] = src[idx[i], :]   out (b, cols) */
void sgn_cpu_gather_rows(void *ctx, int64_t b, int64_t cols, const float *src, const int64_t *idx,
                         float *out) {
  if (sgn_cpu_failed(ctx)) return;
#pragma omp parallel for schedule(static) if ((size_t)b * (size_t)cols > PAR_MIN)
  for (int64_t i = 0; i < b; i++)
    memcpy(out + i * cols, src + idx[i] * cols, (size_t)cols * sizeof(float));
}

/* mom = b1 mom + (1-b1) g; vel = b2 vel + (1-b2) g^2;
 * W -= lr (mom / (1-b1^t)) / (sqrt(vel / (1-b2^t)) + eps) */
void sgn_cpu_adam(void *ctx, int64_t len, float *W, const float *g, float *mom, float *vel,
                  double lr, double b1, double b2, double eps, int64_t t) {
  if (sgn_cpu_failed(ctx)) return;
  const double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
#pragma omp parallel for schedule(static) if (len > PAR_MIN)
  for (int64_t i = 0; i < len; i++) {
    const double gi = g[i];
    const double mo = b1 * mom[i] + (1.0 - b1) * gi;
    const double ve = b2 * vel[i] + (1.0 - b2) * gi * gi;
    mom[i] = (float)mo;
    vel[i] = (float)ve;
    W[i] = (float)((double)W[i] - lr * (mo / bc1) / (sqrt(ve / bc2) + eps));
  }
}

/* ---- PCG's scalars in host memory (backend.h pcg_*): the host loop's ops on them ---- */

/* *out = <x, y> */
void sgn_cpu_pcg_dot(void *ctx, int64_t len, const double *x, const double *y, double *out) {
  if (sgn_cpu_failed(ctx)) return;
  *out = block_dot(len, x, y);
}

/* unless done or p.q breaks down: x += alpha p, r += -alpha q, alpha = rz / pq */
void sgn_cpu_pcg_update(void *ctx, int64_t len, const sgn_pcg_ctl *s, const double *p,
                        const double *q, double *x, double *r) {
  if (s->done || !sgn_pcg_pq_ok(s->pq)) return;
  const double alpha = s->rz / s->pq;
  sgn_cpu_axpy(ctx, len, alpha, p, x);
  sgn_cpu_axpy(ctx, len, -alpha, q, r);
}

/* the iteration's tests (pcg_control.h) */
void sgn_cpu_pcg_control(void *ctx, sgn_pcg_ctl *s) {
  if (sgn_cpu_failed(ctx)) return;
  sgn_pcg_control(s);
}

/* unless done: p = z + (rz / rz_old) p */
void sgn_cpu_pcg_direction(void *ctx, int64_t len, const sgn_pcg_ctl *s, const double *z,
                           double *p) {
  if (s->done) return;
  sgn_cpu_xpby(ctx, len, z, s->rz / s->rz_old, p);
}
