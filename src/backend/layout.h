/* layout.h — the geometry every backend and its callers agree on: the problem sizes (sgn_dims),
 * the bit-packed mask, the neuron chunks of the products and the work they need. Tiny inline
 * arithmetic with no dependency, included by the host (C) and by the CUDA plugin (C++). */
#ifndef SGN_LAYOUT_H
#define SGN_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

/* Problem sizes: n samples, d inputs, m hidden, k outputs; mc the neuron chunk width of the
 * products (0, or >= m: no chunking). A literal {n, d, m, k} leaves mc = 0 and heads = 0. */
typedef struct sgn_dims {
  int64_t n, d, m, k;
  int64_t mc;
  /* k when the model has separate outputs (each its own m / k neurons: sgn_model_is_separate,
   * backend.h gram_heads), else 0. The products do not read it; the session's solve and its
   * memory and cost counts do. */
  int64_t heads;
} sgn_dims;

/* 1 when separate outputs (dm.heads = k) can have their k Gram blocks formed (backend.h
 * gram_heads): whole mask words per head and half. gn-gram then solves on those blocks. */
static inline int sgn_heads_solve(sgn_dims dm) {
  return dm.heads > 1 && dm.m % (64 * dm.heads) == 0;
}

/* ---- the mask and neuron chunks ----
 * The mask M = 1[X W^T > 0] is stored bit-packed, row-major: row i is SGN_MASK_WORDS(m) uint32
 * words, neuron r is bit (r % 32) of word r / 32; the padding bits of a row's last word are 0.
 * Products run neurons in chunks: chunk j holds neurons [j cw, j cw + w0) of the first half
 * [0, m/2) and [m/2 + j cw, m/2 + j cw + w1) of the second, side by side in a work buffer of
 * (rows, w0 + w1) floats, cw = sgn_chunk_half(dm). Unchunked, the one chunk is all m neurons
 * (w0 = m/2, w1 = m - m/2), the layout the products always had. With m even both halves are cut
 * alike, so a symmetric model still gives f == 0 exactly. */
#define SGN_MASK_WORDS(m) (((m) + 31) / 32)

/* 1 when the products cut neurons into more than one chunk. */
static inline int sgn_chunked(sgn_dims dm) { return dm.mc > 0 && dm.mc < dm.m && dm.m >= 2; }

/* Neurons per half in one chunk: m - m/2 unchunked, else max(1, mc / 2). */
static inline int64_t sgn_chunk_half(sgn_dims dm) {
  if (!sgn_chunked(dm)) return dm.m - dm.m / 2;
  return dm.mc / 2 > 1 ? dm.mc / 2 : 1;
}

/* Chunks per product call: ceil((m - m/2) / cw); 1 unchunked (0 when m = 0). */
static inline int64_t sgn_chunk_count(sgn_dims dm) {
  const int64_t cw = sgn_chunk_half(dm), w = dm.m - dm.m / 2;
  return cw > 0 ? (w + cw - 1) / cw : 0;
}

/* Chunk j: neurons [r0a, r0a + w0) of the first half at work columns [0, w0) and
 * [r0b, r0b + w1) of the second at [w0, w0 + w1); w1 >= w0 (w0 is 0 only in the last chunk
 * of an odd m). */
typedef struct sgn_chunk {
  int64_t r0a, w0, r0b, w1;
} sgn_chunk;

static inline sgn_chunk sgn_chunk_at(sgn_dims dm, int64_t j) {
  const int64_t h = dm.m / 2, cw = sgn_chunk_half(dm), lo = j * cw;
  sgn_chunk ch;
  ch.r0a = lo < h ? lo : h;
  ch.w0 = h - ch.r0a < cw ? h - ch.r0a : cw;
  ch.r0b = h + lo;
  ch.w1 = dm.m - ch.r0b < cw ? dm.m - ch.r0b : cw;
  return ch;
}

/* Floats of `work` the products (forward, jvp, vjp, gram) need for dm.n rows: (n, m)
 * unchunked; chunked (n, 2 cw) for the chunk plus (n, k) for the second half's running sum. */
static inline size_t sgn_work_floats(sgn_dims dm) {
  if (!sgn_chunked(dm)) return (size_t)dm.n * (size_t)dm.m;
  return (size_t)dm.n * (size_t)(2 * sgn_chunk_half(dm)) + (size_t)dm.n * (size_t)dm.k;
}

#endif
