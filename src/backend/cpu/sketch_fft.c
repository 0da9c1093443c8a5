/* sketch_fft.c (cpu) — the FFT sketches of the k = 1 block of J on the CPU (twins of
 * cuda/sketch_fft.cu), on FFTW's single-precision real transforms: the tensor SRFT (the SRHT
 * with the orthonormal real Fourier transform of rft.h, so m and d need no padding) and
 * TensorSketch (CountSketches of both factors, circularly convolved by FFTs of length s).
 * Plans are made once per call, for one row (FFTW_ESTIMATE, under a lock: FFTW's planner is not
 * thread-safe), and executed row by row from OpenMP threads with the new-array functions. Rows
 * sit at 64-byte multiples from a 64-byte aligned base, so every row has the alignment the plan
 * was made for, and Y does not depend on the blocking, the thread count or the work buffer. */
#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "mask.h"
#include "rft.h"
#include "rng.h"
#include "sketch.h"
#include "util.h"

/* Loops of fewer elements than this run on one thread (cpu/sketch.c's rule). */
#define PAR_MIN ((int64_t)1 << 16)
/* Row blocks stay under this many floats of scratch (16 MiB), with at least FFT_MIN_ROWS rows,
 * and within the products' work (sgn_work_floats) when dm.mc chunks them (cpu/sketch.c's rule). */
#define FFT_BLOCK_FLOATS ((int64_t)1 << 22)
#define FFT_MIN_ROWS 64
/* Alignment of the work buffer's sub-arrays, in bytes. */
#define FFT_ALIGN 64

static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;

static int64_t round16(int64_t v) { return (v + 15) / 16 * 16; }

/* Samples per block when each takes `width` floats of scratch. */
static int64_t fft_rows(sgn_dims dm, int64_t width) {
  int64_t nb = FFT_BLOCK_FLOATS / (width > 0 ? width : 1);
  if (nb < FFT_MIN_ROWS) nb = FFT_MIN_ROWS;
  if (sgn_chunked(dm)) {
    int64_t fit = (int64_t)(sgn_work_floats(dm) / (size_t)(width > 0 ? width : 1));
    if (fit < nb) nb = fit;
  }
  if (nb > dm.n) nb = dm.n;
  return nb > 1 ? nb : 1;
}

/* Carves work into consecutive FFT_ALIGN-aligned pieces; with base 0 it only counts bytes. */
typedef struct carver {
  uintptr_t at;
} carver;

static void *carve(carver *c, size_t bytes) {
  uintptr_t p = (c->at + FFT_ALIGN - 1) / FFT_ALIGN * FFT_ALIGN;
  c->at = p + bytes;
  return (void *)p;
}

/* One-row in-place plans of length N: r2c (dir 0) or c2r (dir 1), made on buf (a row of the
 * block, FFT_ALIGN-aligned). FFTW_ESTIMATE neither reads nor writes buf. FFTW fails only when
 * memory does: then NULL, with sgn_last_error() naming the length. */
static fftwf_plan plan_row(int64_t N, int dir, float *buf) {
  pthread_mutex_lock(&planner_lock);
  fftwf_plan p = dir == 0 ? fftwf_plan_dft_r2c_1d((int)N, buf, (fftwf_complex *)buf, FFTW_ESTIMATE)
                          : fftwf_plan_dft_c2r_1d((int)N, (fftwf_complex *)buf, buf, FFTW_ESTIMATE);
  pthread_mutex_unlock(&planner_lock);
  if (!p) sgn_fail(SGN_E_RUNTIME, "FFTW could not plan a length-%lld transform", (long long)N);
  return p;
}

static void plan_free(fftwf_plan p) {
  if (!p) return;
  pthread_mutex_lock(&planner_lock);
  fftwf_destroy_plan(p);
  pthread_mutex_unlock(&planner_lock);
}

/* ---- SRFT ---- */

/* work: offu, offx (s) int64 | coef (s), D1 (m), D2 (d) float | U (nb, ld(m)), V (nb, ld(d)) */
typedef struct srft_layout {
  int64_t *offu, *offx; /* (s) float offsets of (F u)[p_j], (F x)[q_j] in a row's r2c output */
  float *coef;          /* (s) sqrt(d / s) w(p_j) w(q_j) */
  float *D1, *D2;       /* (m), (d) signs */
  float *U, *V;         /* (nb, ldm), (nb, ldd) rows of the block, transformed in place */
  int64_t nb, ldm, ldd;
  size_t bytes;
} srft_layout;

static srft_layout srft_carve(sgn_dims dm, int64_t s, void *work) {
  srft_layout L;
  L.ldm = sgn_rft_ld(dm.m), L.ldd = sgn_rft_ld(dm.d);
  L.nb = fft_rows(dm, L.ldm + L.ldd);
  carver c = {(uintptr_t)work};
  L.offu = carve(&c, (size_t)s * sizeof(int64_t));
  L.offx = carve(&c, (size_t)s * sizeof(int64_t));
  L.coef = carve(&c, (size_t)s * sizeof(float));
  L.D1 = carve(&c, (size_t)dm.m * sizeof(float));
  L.D2 = carve(&c, (size_t)dm.d * sizeof(float));
  L.U = carve(&c, (size_t)L.nb * (size_t)L.ldm * sizeof(float));
  L.V = carve(&c, (size_t)L.nb * (size_t)L.ldd * sizeof(float));
  L.bytes = (size_t)(c.at - (uintptr_t)work) + FFT_ALIGN; /* + room to align the base */
  return L;
}

/* Y[i,j] = sqrt(m d / (m s)) (F D1 M_i)[p_j] (F D2 x_i)[q_j]   Y (n, s) */
int sgn_sketch_srft_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X, const uint32_t *M,
                        void *work, float *Y, const sgn_stop_flag *stop) {
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  if (n <= 0 || s <= 0) return 0;
  const srft_layout L = srft_carve(dm, s, work);
  const double scale = sqrt((double)m * (double)d / ((double)m * (double)s));

#pragma omp parallel for schedule(static) if (s >= PAR_MIN)
  for (int64_t j = 0; j < s; j++) {
    int64_t p = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_P, (uint64_t)j, (uint64_t)m);
    int64_t q = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_Q, (uint64_t)j, (uint64_t)d);
    double wu = sgn_rft_coord(m, p, &L.offu[j]);
    double wx = sgn_rft_coord(d, q, &L.offx[j]);
    L.coef[j] = (float)(scale * wu * wx);
  }
  for (int64_t r = 0; r < m; r++) L.D1[r] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)r);
  for (int64_t t = 0; t < d; t++) L.D2[t] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t);

  fftwf_plan pu = plan_row(m, 0, L.U), px = plan_row(d, 0, L.V);
  if (!pu || !px) {
    plan_free(pu);
    plan_free(px);
    return SGN_E_RUNTIME;
  }
  for (int64_t i0 = 0; i0 < n && !sgn_stop_requested(stop); i0 += L.nb) {
    const int64_t rows = n - i0 < L.nb ? n - i0 : L.nb;
#pragma omp parallel for schedule(static) if (rows * (L.ldm + s) >= PAR_MIN)
    for (int64_t ii = 0; ii < rows; ii++) {
      const int64_t i = i0 + ii;
      const float *x = X + (size_t)i * (size_t)d;
      float *u = L.U + (size_t)ii * (size_t)L.ldm, *v = L.V + (size_t)ii * (size_t)L.ldd;
      float *y = Y + (size_t)i * (size_t)s;
      sgn_sketch_mask_rows_cpu(dm, M, i, 1, L.D1, L.ldm, u);
      for (int64_t t = 0; t < d; t++) v[t] = L.D2[t] * x[t];
      fftwf_execute_dft_r2c(pu, u, (fftwf_complex *)u);
      fftwf_execute_dft_r2c(px, v, (fftwf_complex *)v);
      for (int64_t j = 0; j < s; j++) y[j] = L.coef[j] * u[L.offu[j]] * v[L.offx[j]];
    }
  }
  plan_free(pu);
  plan_free(px);
  return 0;
}

/* ---- TensorSketch ---- */

/* work: h1 (m), h2 (d) int64 | D1 (m), D2 (d) float | E (nb, ldE), A, B (nb, ld(s)) float */
typedef struct cs_layout {
  int64_t *h1, *h2; /* (m), (d) buckets in [0, s) */
  float *D1, *D2;   /* (m), (d) signs */
  float *E;         /* (nb, lde) signed mask rows */
  float *A, *B;     /* (nb, lds) CountSketches of the rows, transformed in place */
  int64_t nb, lde, lds;
  size_t bytes;
} cs_layout;

static cs_layout cs_carve(sgn_dims dm, int64_t s, void *work) {
  cs_layout L;
  L.lde = round16(dm.m), L.lds = sgn_rft_ld(s);
  L.nb = fft_rows(dm, L.lde + 2 * L.lds);
  carver c = {(uintptr_t)work};
  L.h1 = carve(&c, (size_t)dm.m * sizeof(int64_t));
  L.h2 = carve(&c, (size_t)dm.d * sizeof(int64_t));
  L.D1 = carve(&c, (size_t)dm.m * sizeof(float));
  L.D2 = carve(&c, (size_t)dm.d * sizeof(float));
  L.E = carve(&c, (size_t)L.nb * (size_t)L.lde * sizeof(float));
  L.A = carve(&c, (size_t)L.nb * (size_t)L.lds * sizeof(float));
  L.B = carve(&c, (size_t)L.nb * (size_t)L.lds * sizeof(float));
  L.bytes = (size_t)(c.at - (uintptr_t)work) + FFT_ALIGN;
  return L;
}

/* Y[i,:] = m^-1/2 (CS1(M_i) circ-conv CS2(x_i)) = m^-1/2 irfft(rfft(a_i) o rfft(b_i))   Y (n, s) */
int sgn_sketch_countsketch_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X,
                               const uint32_t *M, void *work, float *Y, const sgn_stop_flag *stop) {
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  if (n <= 0 || s <= 0) return 0;
  const cs_layout L = cs_carve(dm, s, work);
  const int64_t half = s / 2 + 1; /* complex values of a length-s r2c */
  /* 1/s undoes the unnormalized c2r */
  const float scale = (float)(1.0 / ((double)s * sqrt((double)m)));

  for (int64_t r = 0; r < m; r++) {
    L.h1[r] = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_H1, (uint64_t)r, (uint64_t)s);
    L.D1[r] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)r);
  }
  for (int64_t t = 0; t < d; t++) {
    L.h2[t] = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_H2, (uint64_t)t, (uint64_t)s);
    L.D2[t] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t);
  }

  fftwf_plan fwd = plan_row(s, 0, L.A), inv = plan_row(s, 1, L.A);
  if (!fwd || !inv) {
    plan_free(fwd);
    plan_free(inv);
    return SGN_E_RUNTIME;
  }
  for (int64_t i0 = 0; i0 < n && !sgn_stop_requested(stop); i0 += L.nb) {
    const int64_t rows = n - i0 < L.nb ? n - i0 : L.nb;
#pragma omp parallel for schedule(static) if (rows * (m + 3 * s) >= PAR_MIN)
    for (int64_t ii = 0; ii < rows; ii++) {
      const int64_t i = i0 + ii;
      const float *x = X + (size_t)i * (size_t)d;
      float *e = L.E + (size_t)ii * (size_t)L.lde;
      float *a = L.A + (size_t)ii * (size_t)L.lds, *b = L.B + (size_t)ii * (size_t)L.lds;
      float *y = Y + (size_t)i * (size_t)s;
      sgn_sketch_mask_rows_cpu(dm, M, i, 1, L.D1, m, e);
      memset(a, 0, (size_t)L.lds * sizeof(float));
      memset(b, 0, (size_t)L.lds * sizeof(float));
      for (int64_t r = 0; r < m; r++) a[L.h1[r]] += e[r]; /* sums of +-1: exact in any order */
      for (int64_t t = 0; t < d; t++) b[L.h2[t]] += L.D2[t] * x[t];
      fftwf_execute_dft_r2c(fwd, a, (fftwf_complex *)a);
      fftwf_execute_dft_r2c(fwd, b, (fftwf_complex *)b);
      for (int64_t k = 0; k < half; k++) {
        const float ar = a[2 * k], ai = a[2 * k + 1], br = b[2 * k], bi = b[2 * k + 1];
        a[2 * k] = ar * br - ai * bi;
        a[2 * k + 1] = ar * bi + ai * br;
      }
      fftwf_execute_dft_c2r(inv, (fftwf_complex *)a, a);
      for (int64_t j = 0; j < s; j++) y[j] = scale * a[j];
    }
  }
  plan_free(fwd);
  plan_free(inv);
  return 0;
}

/* ---- sizes and the transform on its own ---- */

size_t sgn_sketch_fft_work_bytes_cpu(sgn_dims dm, sgn_sketch kind, int64_t s) {
  if (kind == SGN_SKETCH_SRFT) return srft_carve(dm, s, NULL).bytes;
  if (kind == SGN_SKETCH_COUNTSKETCH) return cs_carve(dm, s, NULL).bytes;
  return 0;
}

/* y rows = F x rows (inverse 0) or F^T x rows (inverse 1), F of rft.h */
int sgn_sketch_rft_cpu(int64_t rows, int64_t N, int inverse, const float *x, float *y) {
  if (rows <= 0 || N <= 0) return 0;
  float *buf = fftwf_alloc_real((size_t)sgn_rft_ld(N));
  if (!buf) return -1;
  fftwf_plan p = plan_row(N, inverse, buf);
  if (!p) {
    fftwf_free(buf);
    return -1;
  }
  for (int64_t i = 0; i < rows; i++) {
    const float *xi = x + (size_t)i * (size_t)N;
    float *yi = y + (size_t)i * (size_t)N;
    int64_t off;
    if (!inverse) {
      memcpy(buf, xi, (size_t)N * sizeof(float));
      fftwf_execute(p);
      for (int64_t q = 0; q < N; q++) {
        double w = sgn_rft_coord(N, q, &off);
        yi[q] = (float)(w * buf[off]);
      }
    } else {
      /* c[off(q)] = x[q] / w(q); the imaginary parts of c_0 and c_{N/2} are 0; then
       * x = c2r(c) / N */
      memset(buf, 0, (size_t)sgn_rft_ld(N) * sizeof(float));
      for (int64_t q = 0; q < N; q++) {
        double w = sgn_rft_coord(N, q, &off);
        buf[off] = (float)(xi[q] / w);
      }
      fftwf_execute(p);
      for (int64_t t = 0; t < N; t++) yi[t] = (float)(buf[t] / (double)N);
    }
  }
  plan_free(p);
  fftwf_free(buf);
  return 0;
}
