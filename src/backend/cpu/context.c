/* context.c (cpu) — the CPU backend's context: 64-byte aligned zeroed memory, the grow-only
 * scratch the products and the Gram cut their blocks to, and the sticky error that a failure
 * inside an op leaves (twins of sgn_cuda_grow and sgn_cuda_fatal in cuda/backend.cu). Kept apart from the ops table so the op files can use it without the table's
 * file and theirs needing each other. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "util.h"

void *sgn_cpu_zalloc(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void *p = bytes > SIZE_MAX - 63 ? NULL : aligned_alloc(64, rounded);
  if (!p) {
    sgn_fail(SGN_E_RUNTIME, "cpu backend: out of memory allocating %zu bytes", bytes);
    return NULL;
  }
  memset(p, 0, rounded);
  return p;
}

void sgn_cpu_fail(cpu_ctx *c, const char *fmt, ...) {
  if (c->error[0]) return;
  const int at = snprintf(c->error, sizeof c->error, "cpu backend: ");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->error + at, sizeof c->error - (size_t)at, fmt, ap);
  va_end(ap);
}

/* Makes the scratch hold at least `floats`. A failure leaves the old scratch and sets the sticky
 * error: the op that asked returns without its work. */
float *sgn_cpu_scratch(cpu_ctx *c, size_t floats) {
  if (floats > c->cap) {
    float *p = floats > SIZE_MAX / sizeof(float) ? NULL : sgn_cpu_zalloc(floats * sizeof(float));
    if (!p) {
      sgn_cpu_fail(c, "out of memory growing the scratch to %zu floats", floats);
      return NULL;
    }
    free(c->scratch);
    c->scratch = p;
    c->cap = floats;
  }
  return c->scratch;
}

/* Rows per block when each row needs per_row floats of scratch after `fixed` floats set aside:
 * as many as fit, at least min_rows (growing the scratch if needed), at most n. */
int64_t sgn_cpu_block_rows_after(cpu_ctx *c, size_t fixed, int64_t n, size_t per_row,
                                 int64_t min_rows) {
  int64_t nb = c->cap > fixed ? (int64_t)((c->cap - fixed) / per_row) : 0;
  if (nb < min_rows) nb = min_rows;
  if (nb > n) nb = n;
  if (nb < 1) nb = 1;
  const size_t most = SIZE_MAX / sizeof(float);
  if (fixed > most || (size_t)nb > (most - fixed) / per_row) {
    if (fixed)
      sgn_cpu_fail(c, "out of memory growing the scratch to %zu floats and %lld rows of %zu floats",
                   fixed, (long long)nb, per_row);
    else
      sgn_cpu_fail(c, "out of memory growing the scratch to %lld rows of %zu floats", (long long)nb,
                   per_row);
    return 0;
  }
  if (!sgn_cpu_scratch(c, fixed + (size_t)nb * per_row)) return 0;
  return nb;
}

int64_t sgn_cpu_block_rows(cpu_ctx *c, int64_t n, size_t per_row, int64_t min_rows) {
  return sgn_cpu_block_rows_after(c, 0, n, per_row, min_rows);
}
