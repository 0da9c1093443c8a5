/* sketch.c (cpu) — sketches of the k = 1 block of J on the CPU (twins of cuda/sketch.cu).
 * Every random draw comes from rng.h, indexed by what it belongs to (neuron, input coordinate,
 * column j, matrix element), so any blocking, thread count or device reproduces it exactly.
 * The mask is read through cpu/mask.c; the FFT sketches are in cpu/sketch_fft.c, whose work
 * sizes the dispatch at the end of this file asks for (never the other way round). Both sketches here work in blocks so their scratch stays bounded: SRHT in
 * blocks of samples (each row transformed while it is in cache), Gaussian in 512 x 512 blocks of
 * (samples, columns). */
#include "sketch.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "hadamard.h"
#include "linalg.h"
#include "mask.h"
#include "precision.h"
#include "rng.h"
#include "util.h"

/* Loops of fewer elements than this run on one thread: waking a team costs more. */
#define PAR_MIN ((int64_t)1 << 16)

/* Rows per block: dflt, cut when chunking so rows * per_row floats stay within the products'
 * work (sgn_work_floats), at least 1. */
static int64_t budget_rows(sgn_dims dm, int64_t per_row, int64_t dflt) {
  if (sgn_chunked(dm)) {
    int64_t fit = (int64_t)(sgn_work_floats(dm) / (size_t)(per_row > 0 ? per_row : 1));
    if (fit < dflt) dflt = fit;
  }
  if (dflt > dm.n) dflt = dm.n;
  return dflt > 1 ? dflt : 1;
}

/* ---- SRHT ---- */

/* Samples per SRHT block: at least 256, more while a block stays under 2^22 floats (16 MiB);
 * within the work budget when chunking. */
static int64_t srht_rows(sgn_dims dm) {
  int64_t width = sgn_next_pow2(dm.m) + sgn_next_pow2(dm.d);
  int64_t nb = ((int64_t)1 << 22) / width;
  if (nb < 256) nb = 256;
  return budget_rows(dm, width, nb);
}

/* work: p, q (s) int64 | D1 (m), D2 (d) float | U (nb, m'), V (nb, d') float */
static size_t srht_work_bytes(sgn_dims dm, int64_t s) {
  int64_t nb = srht_rows(dm);
  size_t floats = (size_t)(dm.m + dm.d) +
                  (size_t)nb * (size_t)(sgn_next_pow2(dm.m) + sgn_next_pow2(dm.d));
  return 2 * (size_t)s * sizeof(int64_t) + floats * sizeof(float);
}

/* Y[i,j] = sqrt(m' d' / (m s)) (H D1 M_i)[p_j] (H D2 x_i)[q_j]   Y (n, s) */
void sgn_sketch_srht_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X, const uint32_t *M,
                         void *work, float *Y, const sgn_stop_flag *stop) {
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  const int64_t mp = sgn_next_pow2(m), dp = sgn_next_pow2(d), nb = srht_rows(dm);
  int64_t *p = (int64_t *)work;           /* (s) neuron-side coordinate of column j */
  int64_t *q = p + s;                     /* (s) input-side coordinate of column j */
  float *D1 = (float *)(q + s);           /* (m) signs per neuron */
  float *D2 = D1 + m;                     /* (d) signs per input coordinate */
  float *U = D2 + d;                      /* (nb, m') transformed mask rows */
  float *V = U + (size_t)nb * (size_t)mp; /* (nb, d') transformed input rows */
  const float scale = (float)sqrt((double)mp * (double)dp / ((double)m * (double)s));

#pragma omp parallel for schedule(static) if (s >= PAR_MIN)
  for (int64_t j = 0; j < s; j++) {
    p[j] = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_P, (uint64_t)j, (uint64_t)mp);
    q[j] = (int64_t)sgn_rng_below(seed, SGN_STREAM_SKETCH_Q, (uint64_t)j, (uint64_t)dp);
  }
  for (int64_t r = 0; r < m; r++) D1[r] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D1, (uint64_t)r);
  for (int64_t t = 0; t < d; t++) D2[t] = sgn_rng_sign(seed, SGN_STREAM_SKETCH_D2, (uint64_t)t);

  for (int64_t i0 = 0; i0 < n && !sgn_stop_requested(stop); i0 += nb) {
    int64_t rows = n - i0 < nb ? n - i0 : nb;
#pragma omp parallel for schedule(static) if (rows * (mp + s) >= PAR_MIN)
    for (int64_t ii = 0; ii < rows; ii++) {
      const int64_t i = i0 + ii;
      const float *x = X + (size_t)i * (size_t)d;
      float *u = U + (size_t)ii * (size_t)mp, *v = V + (size_t)ii * (size_t)dp;
      float *y = Y + (size_t)i * (size_t)s;
      sgn_sketch_mask_rows_cpu(dm, M, i, 1, D1, mp, u);
      for (int64_t t = 0; t < d; t++) v[t] = D2[t] * x[t];
      for (int64_t t = d; t < dp; t++) v[t] = 0.0f;
      sgn_hadamard_cpu(u, 1, mp); /* one row: runs on this thread */
      sgn_hadamard_cpu(v, 1, dp);
      for (int64_t j = 0; j < s; j++) y[j] = scale * u[p[j]] * v[q[j]];
    }
  }
}

/* ---- Gaussian ---- */

/* Block edge for the Gaussian sketch, in samples and in columns. */
#define GAUSS_BLOCK 512

/* Block edges: GAUSS_BLOCK, cut when chunking so Omega's and the mask's blocks each stay within
 * the products' work. */
static int64_t gauss_cols(sgn_dims dm, int64_t s) {
  int64_t cs = s < GAUSS_BLOCK ? s : GAUSS_BLOCK;
  if (sgn_chunked(dm)) {
    int64_t fit = (int64_t)(sgn_work_floats(dm) / (size_t)(dm.m + dm.d));
    if (fit < cs) cs = fit > 1 ? fit : 1;
  }
  return cs;
}

/* work: Omega1 (m, cs), Omega2 (d, cs) | M block (nb, m) | X Omega2 block (nb, cs), all float */
static size_t gaussian_work_bytes(sgn_dims dm, int64_t s) {
  size_t cs = (size_t)gauss_cols(dm, s);
  size_t nb = (size_t)budget_rows(dm, dm.m, GAUSS_BLOCK);
  return ((size_t)(dm.m + dm.d) * cs + nb * (size_t)dm.m + nb * cs) * sizeof(float);
}

/* Y = (M Omega1) o (X Omega2) / sqrt(m s), Omega1[r,j] = N(seed, G1, r s + j),
 * Omega2[t,j] = N(seed, G2, t s + j)   Y (n, s) */
void sgn_sketch_gaussian_cpu(sgn_dims dm, int64_t s, uint64_t seed, const float *X,
                             const uint32_t *M, void *work, float *Y, const sgn_stop_flag *stop) {
  const int64_t n = dm.n, d = dm.d, m = dm.m;
  const int64_t CS = gauss_cols(dm, s), NB = budget_rows(dm, m, GAUSS_BLOCK);
  float *Om1 = (float *)work;                /* (m, cs) columns [j0, j0 + cs) of Omega1 */
  float *Om2 = Om1 + (size_t)m * (size_t)CS; /* (d, cs) the same columns of Omega2 */
  float *Mb = Om2 + (size_t)d * (size_t)CS;  /* (nb, m) mask rows [i0, i0 + nb) */
  float *P = Mb + (size_t)NB * (size_t)m;    /* (nb, cs) X Omega2 block */
  const float alpha = (float)(1.0 / sqrt((double)m * (double)s));
  int64_t mask_rows_at = -1; /* first sample of the mask block in Mb, -1 if none */

  for (int64_t j0 = 0; j0 < s; j0 += CS) {
    const int64_t cs = s - j0 < CS ? s - j0 : CS;
#pragma omp parallel for schedule(static) if ((m + d) * cs >= PAR_MIN / 16)
    for (int64_t r = 0; r < m + d; r++) {
      int stream = r < m ? SGN_STREAM_SKETCH_G1 : SGN_STREAM_SKETCH_G2;
      int64_t row = r < m ? r : r - m;
      float *o = r < m ? Om1 + (size_t)r * (size_t)cs : Om2 + (size_t)row * (size_t)cs;
      for (int64_t jj = 0; jj < cs; jj++)
        o[jj] = (float)sgn_rng_normal(seed, (uint64_t)stream,
                                      (uint64_t)row * (uint64_t)s + (uint64_t)(j0 + jj));
    }
    for (int64_t i0 = 0; i0 < n; i0 += NB) {
      if (sgn_stop_requested(stop)) return;
      const int64_t nb = n - i0 < NB ? n - i0 : NB;
      float *yb = Y + (size_t)i0 * (size_t)s + (size_t)j0; /* (nb, cs) block, leading dim s */
      if (mask_rows_at != i0) {
#pragma omp parallel for schedule(static) if (nb * m >= PAR_MIN)
        for (int64_t ii = 0; ii < nb; ii++)
          sgn_sketch_mask_rows_cpu(dm, M, i0 + ii, 1, NULL, m, Mb + (size_t)ii * (size_t)m);
        mask_rows_at = i0;
      }
      /* yb (nb, cs) = alpha Mb (nb, m) Om1 (m, cs) */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)cs, (int)m, alpha, Mb,
                  (int)m, Om1, (int)cs, 0.0f, yb, (int)s);
      /* P (nb, cs) = X[i0 : i0 + nb] (nb, d) Om2 (d, cs) */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)cs, (int)d, 1.0f,
                  X + (size_t)i0 * (size_t)d, (int)d, Om2, (int)cs, 0.0f, P, (int)cs);
#pragma omp parallel for schedule(static) if (nb * cs >= PAR_MIN)
      for (int64_t ii = 0; ii < nb; ii++)
        for (int64_t jj = 0; jj < cs; jj++)
          yb[(size_t)ii * (size_t)s + (size_t)jj] *= P[(size_t)ii * (size_t)cs + (size_t)jj];
    }
  }
}

/* ---- dispatch ---- */

size_t sgn_sketch_work_bytes_cpu(sgn_dims dm, sgn_sketch kind, int64_t s) {
  switch (kind) {
  case SGN_SKETCH_SRHT: return srht_work_bytes(dm, s);
  case SGN_SKETCH_GAUSSIAN: return gaussian_work_bytes(dm, s);
  case SGN_SKETCH_SRFT:
  case SGN_SKETCH_COUNTSKETCH: return sgn_sketch_fft_work_bytes_cpu(dm, kind, s);
  }
  return 0;
}

/* ---- the sketch's R in panels ---- */

/* Y's rows [i0, i0 + rows) of the sketch: the sketch of those samples alone (every draw is
 * indexed by neuron, coordinate or column, never by sample). 0, or -1 (sgn_last_error says why). */
static int sketch_rows(sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed, const float *X,
                       const uint32_t *M, int64_t i0, int64_t rows, void *work, float *Y,
                       const sgn_stop_flag *stop) {
  sgn_dims db = dm;
  db.n = rows;
  const float *Xb = X + (size_t)i0 * (size_t)dm.d;
  const uint32_t *Mb = M + (size_t)i0 * (size_t)SGN_MASK_WORDS(dm.m);
  switch (kind) {
  case SGN_SKETCH_SRHT: sgn_sketch_srht_cpu(db, s, seed, Xb, Mb, work, Y, stop); return 0;
  case SGN_SKETCH_GAUSSIAN: sgn_sketch_gaussian_cpu(db, s, seed, Xb, Mb, work, Y, stop); return 0;
  case SGN_SKETCH_SRFT: return sgn_sketch_srft_cpu(db, s, seed, Xb, Mb, work, Y, stop) ? -1 : 0;
  case SGN_SKETCH_COUNTSKETCH:
    return sgn_sketch_countsketch_cpu(db, s, seed, Xb, Mb, work, Y, stop) ? -1 : 0;
  }
  sgn_fail(SGN_E_INPUT, "unknown sketch kind %d", (int)kind);
  return -1;
}

int64_t sgn_sketch_panel_cols_cpu(int64_t n, int64_t s) {
  if ((double)n * (double)s <= (double)SKETCH_WHOLE_FLOATS) return s > 1 ? s : 1;
  int64_t p = n / 2 > SKETCH_PANEL_MIN ? n / 2 : SKETCH_PANEL_MIN;
  p = (p + SGN_GRAM_F32_COLS - 1) / SGN_GRAM_F32_COLS * SGN_GRAM_F32_COLS;
  return p < s ? p : (s > 1 ? s : 1);
}

/* Samples per block: their full sketch rows (rows, s) a quarter of the panel's floats, at least
 * 256 rows (each block draws the sketch's indices and signs again: O(s + m)) */
static int64_t panel_block_rows(int64_t n, int64_t s, int64_t panel) {
  if (panel >= s) return n > 1 ? n : 1; /* one panel: the rows go straight into it */
  int64_t rb = (int64_t)((double)n * (double)panel / (4.0 * (double)s));
  if (rb < 256) rb = 256;
  if (rb > n) rb = n;
  return rb > 1 ? rb : 1;
}

/* work: sketch work for a block | block rows (rb, s) (none with one panel) | panel (n, panel) |
 * the Gram's workspace (sgn_sketch_r_work_bytes_cpu) */
size_t sgn_sketch_panels_work_bytes_cpu(sgn_dims dm, sgn_sketch kind, int64_t s, int64_t panel,
                                        sgn_precision prec) {
  const int64_t n = dm.n > 1 ? dm.n : 1, rb = panel_block_rows(n, s, panel);
  sgn_dims db = dm;
  db.n = rb;
  const size_t skw = (sgn_sketch_work_bytes_cpu(db, kind, s) + 63) / 64 * 64;
  const size_t yb = panel >= s ? 0 : (size_t)rb * (size_t)s * sizeof(float);
  const size_t yp = (size_t)n * (size_t)panel * sizeof(float);
  return skw + (yb + 63) / 64 * 64 + (yp + 63) / 64 * 64 +
         sgn_sketch_r_work_bytes_cpu(n, panel, prec);
}

int sgn_sketch_panels_r_cpu(sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed, const float *X,
                            const uint32_t *M, double lambda, sgn_precision prec, int64_t panel,
                            void *work, double *R, const sgn_stop_flag *stop) {
  const int64_t n = dm.n;
  if (n == 0) return 0;
  const int64_t rb = panel_block_rows(n, s, panel);
  sgn_dims db = dm;
  db.n = rb;
  char *w = work;
  void *skw = w;
  w += (sgn_sketch_work_bytes_cpu(db, kind, s) + 63) / 64 * 64;
  float *Yb = (float *)w; /* (rb, s) the block's full sketch rows */
  w += panel >= s ? 0 : ((size_t)rb * (size_t)s * sizeof(float) + 63) / 64 * 64;
  float *Yp = (float *)w; /* (n, w) columns [j0, j0 + w) of Y */
  w += ((size_t)n * (size_t)panel * sizeof(float) + 63) / 64 * 64;
  void *syrk_work = w;

  if (s == 0) memset(R, 0, (size_t)n * (size_t)n * sizeof(double));
  for (int64_t j0 = 0; j0 < s; j0 += panel) {
    const int64_t cw = s - j0 < panel ? s - j0 : panel;
    for (int64_t i0 = 0; i0 < n; i0 += rb) {
      if (sgn_stop_requested(stop)) return SGN_OP_STOPPED;
      const int64_t rows = n - i0 < rb ? n - i0 : rb;
      if (cw == s) { /* one panel: Y itself */
        if (sketch_rows(dm, kind, s, seed, X, M, i0, rows, skw, Yp + (size_t)i0 * (size_t)s, stop))
          return -1;
        continue;
      }
      if (sketch_rows(dm, kind, s, seed, X, M, i0, rows, skw, Yb, stop)) return -1;
#pragma omp parallel for schedule(static) if (rows * cw >= PAR_MIN)
      for (int64_t ii = 0; ii < rows; ii++)
        memcpy(Yp + (size_t)(i0 + ii) * (size_t)cw, Yb + (size_t)ii * (size_t)s + (size_t)j0,
               (size_t)cw * sizeof(float));
    }
    if (sgn_sketch_gram_add_cpu(n, cw, Yp, cw, prec, j0 == 0, syrk_work, R, stop))
      return SGN_OP_STOPPED;
  }
  const int rc = sgn_cholesky_cpu(n, R, lambda, stop);
  return rc > 0 ? 1 : rc;
}
