/* backend.c (cpu) — the CPU backend's ops table (twin of cuda/backend.cu): memory is host memory,
 * the products are cpu/products.c, the Gram cpu/gram.c, the sketches cpu/sketch.c and
 * cpu/sketch_fft.c, the factorizations cpu/linalg.c, the vector ops cpu/vecops.c; the context
 * with its scratch and sticky error is cpu/context.c. This file uses the others and nothing uses it but the
 * table's callers (backend.h). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu.h"
#include "hadamard.h"
#include "linalg.h"
#include "sketch.h"
#include "util.h"

/* ---- memory ----
 * Once the sticky error is set every op returns at entry (alloc with NULL), except free and
 * destroy, which always release. */

static void *cpu_alloc(void *ctx, size_t bytes) {
  if (sgn_cpu_failed(ctx)) {
    sgn_fail(SGN_E_RUNTIME, "%s", ((cpu_ctx *)ctx)->error);
    return NULL;
  }
  return sgn_cpu_zalloc(bytes);
}

static void cpu_free(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

static void cpu_memcpy(void *ctx, void *dst, const void *src, size_t bytes) {
  if (sgn_cpu_failed(ctx)) return;
  if (bytes) memcpy(dst, src, bytes);
}

static void cpu_sync(void *ctx) { (void)ctx; }

/* MemAvailable of /proc/meminfo (what can be allocated without swapping), else free pages. */
static size_t cpu_mem_available(void *ctx) {
  if (sgn_cpu_failed(ctx)) return 0;
  FILE *f = fopen("/proc/meminfo", "r");
  char line[128];
  unsigned long long kib = 0;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
  if (f) fclose(f);
  if (kib) return (size_t)kib * 1024;
  long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? (size_t)pages * (size_t)page : SIZE_MAX;
}

/* ---- sketches and factorizations: wired to cpu/sketch.c, cpu/sketch_fft.c, cpu/linalg.c ---- */

static size_t cpu_sketch_work_bytes(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s) {
  if (sgn_cpu_failed(ctx)) return 0;
  return sgn_sketch_work_bytes_cpu(dm, kind, s);
}

/* Y (n, s) = sketch of the k = 1 block of J */
static void cpu_sketch(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed,
                       const float *X, const uint32_t *M, void *work, float *Y) {
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c)) return;
  switch (kind) {
  case SGN_SKETCH_SRHT: sgn_sketch_srht_cpu(dm, s, seed, X, M, work, Y, c->stop); return;
  case SGN_SKETCH_GAUSSIAN: sgn_sketch_gaussian_cpu(dm, s, seed, X, M, work, Y, c->stop); return;
  case SGN_SKETCH_SRFT:
    if (sgn_sketch_srft_cpu(dm, s, seed, X, M, work, Y, c->stop))
      sgn_cpu_fail(c, "%s", sgn_last_error());
    return;
  case SGN_SKETCH_COUNTSKETCH:
    if (sgn_sketch_countsketch_cpu(dm, s, seed, X, M, work, Y, c->stop))
      sgn_cpu_fail(c, "%s", sgn_last_error());
    return;
  }
  /* an enum value this backend does not know: make the result loud rather than plausible */
  sgn_cpu_fail(c, "unknown sketch kind %d", (int)kind);
  sgn_fail(SGN_E_INPUT, "%s", c->error);
  for (size_t e = 0; e < (size_t)dm.n * (size_t)s; e++) Y[e] = NAN;
}

static size_t cpu_sketch_r_work_bytes(void *ctx, int64_t n, int64_t s, sgn_precision prec) {
  if (sgn_cpu_failed(ctx)) return 0;
  return sgn_sketch_r_work_bytes_cpu(n, s, prec);
}

static void cpu_sketch_gram(void *ctx, int64_t n, int64_t s, const float *Y, sgn_precision prec,
                            void *work, double *G) {
  if (sgn_cpu_failed(ctx)) return;
  (void)sgn_sketch_gram_add_cpu(n, s, Y, s, prec, 1, work, G, ((cpu_ctx *)ctx)->stop);
}

/* With the sticky error set the factorizations report failure (1), never success; with the stop
 * flag set, SGN_OP_STOPPED (backend.h set_stop). */
static int cpu_sketch_r(void *ctx, int64_t n, int64_t s, const float *Y, double lambda,
                        sgn_precision prec, void *work, double *R) {
  if (sgn_cpu_failed(ctx)) return 1;
  return sgn_sketch_r_cpu(n, s, Y, lambda, prec, work, R, ((cpu_ctx *)ctx)->stop);
}

/* 0 (Y whole: sketch, then sketch_r) when one panel would hold all of Y */
static size_t cpu_sketch_panels_work_bytes(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s,
                                           sgn_precision prec) {
  if (sgn_cpu_failed(ctx)) return 0;
  const int64_t panel = sgn_sketch_panel_cols_cpu(dm.n, s);
  return panel >= s ? 0 : sgn_sketch_panels_work_bytes_cpu(dm, kind, s, panel, prec);
}

static int cpu_sketch_panels_r(void *ctx, sgn_dims dm, sgn_sketch kind, int64_t s, uint64_t seed,
                               const float *X, const uint32_t *M, double lambda, sgn_precision prec,
                               void *work, double *R) {
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c)) return 1;
  const int bad = sgn_sketch_panels_r_cpu(dm, kind, s, seed, X, M, lambda, prec,
                                          sgn_sketch_panel_cols_cpu(dm.n, s), work, R, c->stop);
  if (bad == -1) sgn_cpu_fail(c, "%s", sgn_last_error());
  return bad;
}

static size_t cpu_cholesky_work_bytes(void *ctx, int64_t N) {
  (void)ctx, (void)N;
  return 0; /* the blocked Cholesky works in place */
}

static int cpu_cholesky(void *ctx, int64_t N, double *G, double lambda, void *work) {
  (void)work;
  if (sgn_cpu_failed(ctx)) return 1;
  return sgn_cholesky_cpu(N, G, lambda, ((cpu_ctx *)ctx)->stop);
}

static void cpu_rtr_solve(void *ctx, int64_t N, int64_t k, const double *R, double *V) {
  if (sgn_cpu_failed(ctx)) return;
  sgn_rtr_solve_cpu(N, k, R, V);
}

/* Which form of the preconditioner: measured side by side on this repository's 2-core Xeon
 * (OpenBLAS 0.3.21, SkylakeX kernels; scripts/prototypes/precond_apply.md), ms at N = 2000 /
 * 4000 / 8000. Per application, k = 1: two dtrsv on R 1.40 / 5.7 / 37, two dtrmv on R^-1
 * 0.64 / 4.4 / 21; k = 10: two dtrsm 6.3 / 32 / 132, two dtrmm 5.3 / 28 / 152. Once per
 * preconditioner, dtrtri 32 / 202 / 1508, as long as the Cholesky that made R. R^-1 pays for its
 * dtrtri after 40-150 PCG iterations on one preconditioner at k = 1, after 35-45 at k = 10 where
 * it gains at all; gn-sketch runs 12-15 per rebuild (synth:n=4096,d=16,aniso=30), gn-gram 1-10
 * per step at k = 1 and 43-47 with ten shared outputs (Fashion-MNIST, n = 4000: 13.6 s with R,
 * 13.4 s with R^-1). A float32 copy of R^-1 halves the products' time again but moves the
 * preconditioner by u32 cond(R) (PCG 19 -> 20 iterations and the loss 0.247 -> 0.281 after three
 * gn-gram steps of a small separate-outputs task). So the CPU keeps R and its solves. */
static int cpu_rinv_preferred(void *ctx, int64_t N, int64_t k) {
  (void)ctx, (void)N, (void)k;
  return 0;
}

static size_t cpu_r_inverse_work_bytes(void *ctx, int64_t N) {
  (void)ctx, (void)N;
  return 0; /* LAPACK's dtrtri needs none */
}

static int cpu_r_inverse(void *ctx, int64_t N, double *R, void *work) {
  (void)work;
  if (sgn_cpu_failed(ctx)) return 1;
  return sgn_r_inverse_cpu(N, R, ((cpu_ctx *)ctx)->stop);
}

static void cpu_rinv_apply(void *ctx, int64_t N, int64_t k, const double *Rinv, double *V,
                           double *work) {
  (void)work; /* the triangular products run in place */
  if (sgn_cpu_failed(ctx)) return;
  sgn_rinv_apply_cpu(N, k, Rinv, V);
}

static void cpu_heads_symv(void *ctx, int64_t n, int64_t k, const float *G, double lambda,
                           const double *in, double *out) {
  cpu_ctx *c = ctx;
  if (sgn_cpu_failed(c) || n <= 0 || k <= 0) return;
  float *f = sgn_cpu_scratch(c, sgn_heads_symv_scratch_floats(n));
  if (!f) return; /* the sticky error is set */
  sgn_heads_symv_cpu(n, k, G, lambda, in, f, out);
}

static void cpu_heads_mean(void *ctx, int64_t n, int64_t k, const float *G, double *R) {
  if (sgn_cpu_failed(ctx) || n <= 0 || k <= 0) return;
  sgn_heads_mean_cpu(n, k, G, R);
}

/* ---- plain kernels ---- */

static void cpu_gemm(void *ctx, int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc) {
  if (sgn_cpu_failed(ctx)) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M,
              (int)N, (int)K, 1.0f, A, (int)lda, B, (int)ldb, 0.0f, C, (int)ldc);
}

static void cpu_hadamard(void *ctx, float *x, int64_t rows, int64_t len) {
  if (sgn_cpu_failed(ctx)) return;
  sgn_hadamard_cpu(x, rows, len);
}

/* ---- the table ---- */

/* the flag the long ops read between blocks (cpu/linalg.c, cpu/gram.c, cpu/sketch*.c) */
static void cpu_set_stop(void *ctx, const sgn_stop_flag *stop) { ((cpu_ctx *)ctx)->stop = stop; }

/* the precision cpu/products.c rounds the products' operands at */
static void cpu_set_product_precision(void *ctx, sgn_precision prec) {
  ((cpu_ctx *)ctx)->products = prec;
}

/* the sticky error, NULL while there is none */
static const char *cpu_error(void *ctx) {
  const cpu_ctx *c = ctx;
  return c->error[0] ? c->error : NULL;
}

static void cpu_destroy(void *ctx) {
  cpu_ctx *c = ctx;
  if (!c) return;
  free(c->scratch);
  free(c->rounded);
  free(c);
}

static const sgn_backend_ops cpu_ops = {
    .name = "cpu",
    /* memory */
    .alloc = cpu_alloc,                 /* aligned_alloc(64) + memset 0 */
    .free = cpu_free,                   /* free */
    .upload = cpu_memcpy,               /* host memory is backend memory: memcpy */
    .download = cpu_memcpy,             /* memcpy */
    .copy = cpu_memcpy,                 /* memcpy */
    .sync = cpu_sync,                   /* nothing is queued */
    .mem_available = cpu_mem_available, /* MemAvailable from /proc/meminfo */
    /* network products */
    .forward = sgn_cpu_forward, /* mask bits of X W^T > 0; F = m^-1/2 relu(X W^T) A, by chunks */
    .jvp = sgn_cpu_jvp,         /* J V */
    .vjp = sgn_cpu_vjp,         /* J^T Gv */
    .gram = sgn_cpu_gram,       /* J J^T, (n, n) or (n k, n k), float64 */
    .gram_diag = sgn_cpu_gram_diag,   /* diag of the (n, n) Gram */
    .gram_heads = sgn_cpu_gram_heads, /* the k float32 blocks of separate outputs, (k, n, n) */
    .heads_symv = cpu_heads_symv,     /* cpu/heads.c: the upper triangles once, float32 sums */
    .heads_mean = cpu_heads_mean,     /* cpu/heads.c: the upper triangles, float32 sums */
    /* sketches */
    .sketch_work_bytes = cpu_sketch_work_bytes, /* cpu/sketch.c */
    .sketch = cpu_sketch,                       /* srht | gaussian | srft | countsketch */
    /* dense factorizations */
    .sketch_r_work_bytes = cpu_sketch_r_work_bytes, /* cpu/linalg.c */
    .sketch_gram = cpu_sketch_gram, /* DSYRK panels, or float32 SSYRK / SGEMM panels */
    .sketch_r = cpu_sketch_r,       /* sketch_gram, blocked Cholesky -> R */
    .sketch_panels_work_bytes = cpu_sketch_panels_work_bytes, /* cpu/sketch.c */
    .sketch_panels_r = cpu_sketch_panels_r,         /* Y's columns in panels, never whole */
    .cholesky_work_bytes = cpu_cholesky_work_bytes, /* none */
    .cholesky = cpu_cholesky,                       /* blocked: dpotrf, DTRSM, DSYRK/DGEMM; upper */
    .rtr_solve = cpu_rtr_solve,                     /* two dtrsm (dtrsv for one column) */
    .rinv_preferred = cpu_rinv_preferred,           /* never: the solves (measured) */
    .r_inverse_work_bytes = cpu_r_inverse_work_bytes, /* none */
    .r_inverse = cpu_r_inverse,                       /* dtrtri */
    .rinv_apply = cpu_rinv_apply,                     /* two dtrmv / dtrmm */
    /* plain kernels */
    .gemm = cpu_gemm,         /* cblas_sgemm */
    .hadamard = cpu_hadamard, /* cpu/hadamard.c */
    /* vector ops */
    .dot = sgn_cpu_dot,                 /* fixed-block sum, thread-count independent */
    .axpy = sgn_cpu_axpy,               /* y += a x */
    .xpby = sgn_cpu_xpby,               /* y = x + b y */
    .scal = sgn_cpu_scal,               /* x *= a */
    .d2f = sgn_cpu_d2f,                 /* double -> float */
    .f2d = sgn_cpu_f2d,                 /* float -> double */
    .residual = sgn_cpu_residual,       /* r = F - Y, returns ||r||^2 */
    .axpy_f = sgn_cpu_axpy_f,           /* float y += a x */
    .gather_rows = sgn_cpu_gather_rows, /* mini-batch rows */
    .adam = sgn_cpu_adam,               /* bias-corrected Adam */
    /* PCG's scalars in host memory: the same code path as the GPU's, nothing to batch */
    .pcg_dot = sgn_cpu_pcg_dot,             /* dot's sum into *out */
    .pcg_update = sgn_cpu_pcg_update,       /* two axpy, unless done */
    .pcg_control = sgn_cpu_pcg_control,     /* pcg_control.h */
    .pcg_direction = sgn_cpu_pcg_direction, /* xpby, unless done */
    .pcg_queue = 1,                         /* ops run as called: read back every iteration */
    /* no graphs: nothing is launched */
    .set_stop = cpu_set_stop, /* read between blocks: cholesky, sketches, gram, sketch_r */
    .set_product_precision = cpu_set_product_precision, /* tf32, bf16 emulated: rounded copies */
    .error = cpu_error,     /* a failed scratch growth or FFTW plan, an unknown sketch kind */
    .destroy = cpu_destroy, /* frees the ctx; sgn_backend_close frees the handle */
};

sgn_backend *sgn_backend_cpu_open(void) {
  cpu_ctx *c = calloc(1, sizeof *c);
  sgn_backend *be = malloc(sizeof *be);
  if (c) c->scratch = sgn_cpu_zalloc(SCRATCH_FLOATS * sizeof(float));
  if (!c || !be || !c->scratch) {
    if (c) free(c->scratch);
    free(c);
    free(be);
    sgn_fail(SGN_E_RUNTIME, "cpu backend: out of memory opening the backend");
    return NULL;
  }
  c->cap = SCRATCH_FLOATS;
  be->ops = &cpu_ops;
  be->ctx = c;
  return be;
}
