/* context.c (cpu) — the CPU backend's context: 64-byte aligned zeroed memory and the grow-only
 * scratch the products and the Gram cut their blocks to (the twin of the scratch helpers in
 * cuda/backend.cu). Kept apart from the ops table so the op files can use it without the table's
 * file and theirs needing each other. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "util.h"

void *sgn_cpu_zalloc(size_t bytes) {
  size_t rounded = (bytes + 63) / 64 * 64;
  if (rounded == 0) rounded = 64;
  void *p = aligned_alloc(64, rounded);
  if (!p) {
    sgn_fail(SGN_E_RUNTIME, "cpu backend: out of memory allocating %zu bytes", bytes);
    return NULL;
  }
  memset(p, 0, rounded);
  return p;
}

/* Makes the scratch hold at least `floats`. The ops have no error channel, and failing to get a
 * few megabytes leaves nothing sensible to compute, so failure here aborts with a message. */
float *sgn_cpu_scratch(cpu_ctx *c, size_t floats) {
  if (floats > c->cap) {
    float *p = sgn_cpu_zalloc(floats * sizeof(float));
    if (!p) {
      fprintf(stderr, "sketchgn: cpu backend: out of memory growing scratch to %zu bytes\n",
              floats * sizeof(float));
      abort();
    }
    free(c->scratch);
    c->scratch = p;
    c->cap = floats;
  }
  return c->scratch;
}

/* Rows per block when each row needs per_row floats of scratch: as many as fit, at least
 * min_rows (growing the scratch if needed), at most n. */
int64_t sgn_cpu_block_rows(cpu_ctx *c, int64_t n, size_t per_row, int64_t min_rows) {
  int64_t nb = (int64_t)(c->cap / per_row);
  if (nb < min_rows) nb = min_rows;
  if (nb > n) nb = n;
  if (nb < 1) nb = 1;
  sgn_cpu_scratch(c, (size_t)nb * per_row);
  return nb;
}
