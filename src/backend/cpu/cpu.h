/* cpu.h — what the files of the CPU backend share (private to src/backend/cpu/): the context
 * with its grow-only scratch and sticky error, the thread threshold of the elementwise loops, and the ops that
 * cpu/backend.c gathers into the table (each defined in the file named after its topic). */
#ifndef SGN_CPU_H
#define SGN_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Elementwise loops shorter than this stay on one thread. */
#define PAR_MIN 16384

/* One backend serves one thread at a time (the scratch is shared by its ops), like a stream. */
typedef struct cpu_ctx {
  float *scratch; /* (cap) floats, 64-byte aligned */
  size_t cap;
  const sgn_stop_flag *stop; /* backend.h set_stop: read between blocks of the long ops; NULL */
  sgn_precision products;    /* backend.h set_product_precision (0, fp64: as fp32) */
  float *rounded;            /* (rounded_cap) floats: the products' rounded operands, grow-only */
  size_t rounded_cap;
  char error[256]; /* the sticky error (backend.h): "" while every op has done its work */
} cpu_ctx;

/* ---- cpu/context.c ---- */

/* Grow-only scratch allocated at open (floats): the unchunked products' second-half partial
 * sums and gram's row blocks are cut to fit it, so the hot paths allocate nothing. It grows only
 * when a single minimal block does not fit (k > 4M, or gram with n, m in the hundreds of
 * thousands); gram, a once-per-refresh setup op, may grow it to keep its blocks >= 64 rows. */
#define SCRATCH_FLOATS ((size_t)1 << 22)

/* bytes (rounded up to 64, at least 64) zero-filled and 64-byte aligned; NULL (and
 * sgn_last_error) on failure */
void *sgn_cpu_zalloc(size_t bytes);
/* Makes the scratch hold at least `floats`; returns it, or NULL with the sticky error set when
 * it cannot grow (the old scratch stays). */
float *sgn_cpu_scratch(cpu_ctx *c, size_t floats);
/* Rows per block when each row needs per_row floats of scratch: as many as fit, at least
 * min_rows (growing the scratch if needed), at most n; 0 (sticky error set) when the scratch
 * cannot grow to that. */
int64_t sgn_cpu_block_rows(cpu_ctx *c, int64_t n, size_t per_row, int64_t min_rows);
/* The same with `fixed` floats set aside at the start of the scratch (the rows come after them). */
int64_t sgn_cpu_block_rows_after(cpu_ctx *c, size_t fixed, int64_t n, size_t per_row,
                                 int64_t min_rows);
/* Records "cpu backend: <message>" as the sticky error unless one is set already (first wins). */
void sgn_cpu_fail(cpu_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 1 once the sticky error is set: every op checks it at entry and then returns at once. */
static inline int sgn_cpu_failed(const void *ctx) { return ((const cpu_ctx *)ctx)->error[0] != 0; }

/* ---- the ops (backend.h has their contracts) ---- */

/* cpu/products.c */
void sgn_cpu_forward(void *ctx, sgn_dims dm, const float *X, const float *W, const float *A,
                     float *work, uint32_t *M, float *F);
void sgn_cpu_jvp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                 const float *V, float *work, float *out);
void sgn_cpu_vjp(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                 const float *Gv, float *work, float *out);
/* cpu/gram.c */
void sgn_cpu_gram(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, const float *A,
                  int full, float *work, double *G);
void sgn_cpu_gram_diag(void *ctx, sgn_dims dm, const float *X, const uint32_t *M, double *diag);
void sgn_cpu_gram_heads(void *ctx, sgn_dims dm, const float *X, const float *K, const uint32_t *M,
                        float *work, float *G);
/* cpu/vecops.c */
double sgn_cpu_dot(void *ctx, int64_t len, const double *x, const double *y);
void sgn_cpu_axpy(void *ctx, int64_t len, double a, const double *x, double *y);
void sgn_cpu_xpby(void *ctx, int64_t len, const double *x, double b, double *y);
void sgn_cpu_scal(void *ctx, int64_t len, double a, double *x);
void sgn_cpu_d2f(void *ctx, int64_t len, const double *x, float *y);
void sgn_cpu_f2d(void *ctx, int64_t len, const float *x, double *y);
double sgn_cpu_residual(void *ctx, int64_t len, const float *F, const float *Y, double *r);
void sgn_cpu_axpy_f(void *ctx, int64_t len, float a, const float *x, float *y);
void sgn_cpu_gather_rows(void *ctx, int64_t b, int64_t cols, const float *src, const int64_t *idx,
                         float *out);
void sgn_cpu_adam(void *ctx, int64_t len, float *W, const float *g, float *mom, float *vel,
                  double lr, double b1, double b2, double eps, int64_t t);
/* PCG's scalars in host memory (backend.h pcg_*; s a sgn_pcg_ctl of pcg_control.h) */
void sgn_cpu_pcg_dot(void *ctx, int64_t len, const double *x, const double *y, double *out);
void sgn_cpu_pcg_update(void *ctx, int64_t len, const struct sgn_pcg_ctl *s, const double *p,
                        const double *q, double *x, double *r);
void sgn_cpu_pcg_control(void *ctx, struct sgn_pcg_ctl *s);
void sgn_cpu_pcg_direction(void *ctx, int64_t len, const struct sgn_pcg_ctl *s, const double *z,
                           double *p);

#endif
