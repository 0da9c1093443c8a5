/* evaluate.c — losses and outputs outside the training steps: a session's attached test set
 * (its buffers count against the session's budget) and sgn_evaluate_with, which runs a model's
 * forward pass within a budget, in neuron chunks and then row blocks when all of it does not
 * fit. Buffer lists are walked like the session's own (session.h, ALLOC). */
#include <stdio.h>

#include "backend.h"
#include "session.h"
#include "util.h"

/* ---- a session's test set ---- */

/* The test set's buffers (nt rows), walked like session_layout. Its mask is reused per block of
 * the training set's n rows (sgn_session_test). */
static size_t test_layout(sgn_session *s, int64_t nt, int alloc, size_t *bad) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  const int64_t d = s->dm.d, m = s->dm.m, k = s->dm.k;
  size_t total = 0;
  ALLOC(s->Xte, fbytes(nt * d));
  ALLOC(s->Yte, fbytes(nt * k));
  ALLOC(s->Mte, mbytes(nt < s->dm.n ? nt : s->dm.n, m));
  ALLOC(s->Fte, fbytes(nt * k));
  ALLOC(s->rte, dbytes(nt * k));
  return total;
}

/* Frees what test_layout allocated, so a failed attach leaves the session as it was. */
static void test_free(sgn_session *s) {
  void **ptrs[] = {(void **)&s->Xte, (void **)&s->Yte, (void **)&s->Mte, (void **)&s->Fte,
                   (void **)&s->rte};
  for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++) {
    if (*ptrs[i]) s->o->free(s->c, *ptrs[i]);
    *ptrs[i] = NULL;
  }
}

sgn_status sgn_session_attach_test(sgn_session *s, const float *Xt, const float *Yt, int64_t nt) {
  const sgn_backend_ops *o = s->o;
  if (nt < 1) return sgn_fail(SGN_E_INPUT, "the test set is empty");
  if (s->nt) return sgn_fail(SGN_E_INPUT, "a test set is already attached");
  int64_t d = s->dm.d, m = s->dm.m, k = s->dm.k;
  /* the test set's buffers count against the same budget as the session's own */
  size_t bad = 0;
  const size_t test = test_layout(s, nt, 0, &bad);
  const size_t held = sgn_session_held_bytes(s);
  const double avail = (double)o->mem_available(s->c) + (double)held; /* held is already taken */
  const double limit = sgn_mem_budget(s->opt.max_memory, avail);
  if ((double)(held + test) > limit) {
    char shape[96];
    snprintf(shape, sizeof shape, "n=%lld, width %lld, a test set of %lld samples",
             (long long)s->dm.n, (long long)m, (long long)nt);
    return sgn_budget_fail("this run", o->name, held + test, limit, avail, shape);
  }
  test_layout(s, nt, 1, &bad);
  if (bad) {
    test_free(s);
    return sgn_fail(SGN_E_RUNTIME,
                    "out of memory for a test set of %lld samples (%zu bytes on the %s backend; "
                    "allocating %zu bytes failed)",
                    (long long)nt, test, o->name, bad);
  }
  o->upload(s->c, s->Xte, Xt, fbytes(nt * d));
  o->upload(s->c, s->Yte, Yt, fbytes(nt * k));
  const sgn_status st = sgn_check_backend(s->be);
  if (st != SGN_OK) {
    test_free(s);
    return st;
  }
  s->nt = nt;
  return SGN_OK;
}

sgn_status sgn_session_test(sgn_session *s, double *loss, float *out) {
  if (!s->nt) return sgn_fail(SGN_E_INPUT, "no test set attached");
  sgn_dims dm = s->dm;
  /* in blocks of the training set's n rows, the rows the session's work (and Mte) is sized for */
  for (int64_t i0 = 0; i0 < s->nt; i0 += s->dm.n) {
    dm.n = s->nt - i0 < s->dm.n ? s->nt - i0 : s->dm.n;
    s->o->forward(s->c, dm, s->Xte + i0 * dm.d, s->W, s->A, s->work, s->Mte, s->Fte + i0 * dm.k);
  }
  dm.n = s->nt;
  *loss = s->o->residual(s->c, dm.n * dm.k, s->Fte, s->Yte, s->rte) / (2.0 * (double)dm.n);
  if (out) s->o->download(s->c, out, s->Fte, fbytes(dm.n * dm.k));
  return sgn_check_backend(s->be);
}

/* ---- a model on data ---- */

/* An evaluation's buffers: rows in blocks of dm.n, neurons in chunks of dm.mc. */
typedef struct eval_bufs {
  float *X, *Y, *W, *A, *F; /* (nr, d), (nr, k) or none, (m, d), (m, k), (nr, k) */
  float *work;              /* sgn_work_floats(dm) */
  uint32_t *M;              /* (nr, SGN_MASK_WORDS(m)) */
  double *r;                /* (nr k) or none */
} eval_bufs;

/* The list walked like session_layout: counts (o may be NULL), or also allocates into *b. Y and
 * r only with targets. */
static size_t eval_layout(const sgn_backend_ops *o, void *c, sgn_dims dm, int with_y, eval_bufs *b,
                          int alloc, size_t *bad) {
  size_t total = 0;
  eval_bufs none;
  if (!b) b = &none;
  ALLOC(b->X, fbytes(dm.n * dm.d));
  ALLOC(b->W, fbytes(dm.m * dm.d));
  ALLOC(b->A, fbytes(dm.m * dm.k));
  ALLOC(b->work, sgn_work_floats(dm) * sizeof(float));
  ALLOC(b->M, mbytes(dm.n, dm.m));
  ALLOC(b->F, fbytes(dm.n * dm.k));
  if (with_y) {
    ALLOC(b->Y, fbytes(dm.n * dm.k));
    ALLOC(b->r, dbytes(dm.n * dm.k));
  }
  return total;
}

static size_t eval_bytes(void *with_y, sgn_dims dm) {
  return eval_layout(NULL, NULL, dm, *(int *)with_y, NULL, 0, NULL);
}

size_t sgn_evaluate_mem_bytes(sgn_dims dm, int with_targets) {
  return eval_bytes(&with_targets, dm);
}

sgn_status sgn_evaluate_with(sgn_backend *be, const sgn_model *model, const float *X,
                             const float *Y, int64_t n, const sgn_options *opt_in, double *loss,
                             float *out) {
  const sgn_backend_ops *o = be->ops;
  void *c = be->ctx;
  const sgn_options opt = opt_in ? *opt_in : sgn_options_default();
  if (n < 1) return sgn_fail(SGN_E_INPUT, "evaluate: no samples");
  if (opt.chunk_neurons < 0 || opt.chunk_neurons == 1)
    return sgn_fail(SGN_E_INPUT,
                    "invalid chunk width %lld (0 for automatic, or at least 2 neurons)",
                    (long long)opt.chunk_neurons);
  int with_y = Y && loss;
  /* As a session: all rows and all m neurons at once when that fits, else the widest chunk
   * that fits (or the forced one); else, at the narrowest chunk, the most rows that fit. */
  const double avail = (double)o->mem_available(c);
  const double limit = sgn_mem_budget(opt.max_memory, avail);
  sgn_dims dm = {n, model->d, model->m, model->k, 0, 0};
  dm.mc = opt.chunk_neurons ? sgn_forced_chunk(opt.chunk_neurons, dm.m)
                            : sgn_widest_chunk(dm, limit, eval_bytes, &with_y);
  if ((double)eval_bytes(&with_y, dm) > limit) {
    int64_t lo = 1, hi = n - 1, best = 0;
    while (lo <= hi) {
      dm.n = lo + (hi - lo) / 2;
      if ((double)eval_bytes(&with_y, dm) <= limit) best = dm.n, lo = dm.n + 1;
      else hi = dm.n - 1;
    }
    dm.n = best ? best : 1;
    if (!best) {
      char what[64], shape[160];
      snprintf(what, sizeof what, "evaluating %lld samples", (long long)n);
      snprintf(shape, sizeof shape, "width %lld, even with %s one sample at a time",
               (long long)dm.m, sgn_chunked(dm) ? "neurons in the smallest chunks and" : "");
      return sgn_budget_fail(what, o->name, eval_bytes(&with_y, dm), limit, avail, shape);
    }
  }
  eval_bufs b = {0};
  size_t bad = 0;
  const size_t total = eval_layout(o, c, dm, with_y, &b, 1, &bad);
  sgn_status st = SGN_OK;
  if (bad) {
    st = sgn_fail(SGN_E_RUNTIME,
                  "evaluate: out of memory for %.1f MiB (%zu bytes) on the %s backend; "
                  "allocating %zu bytes failed",
                  (double)total / 1048576.0, total, o->name, bad);
  } else {
    const int64_t nr = dm.n, d = dm.d, k = dm.k;
    o->upload(c, b.W, model->W, fbytes(dm.m * d));
    o->upload(c, b.A, model->A, fbytes(dm.m * k));
    double ss = 0;
    for (int64_t i0 = 0; i0 < n; i0 += nr) {
      sgn_dims bd = dm;
      bd.n = n - i0 < nr ? n - i0 : nr;
      o->upload(c, b.X, X + i0 * d, fbytes(bd.n * d));
      o->forward(c, bd, b.X, b.W, b.A, b.work, b.M, b.F);
      if (with_y) {
        o->upload(c, b.Y, Y + i0 * k, fbytes(bd.n * k));
        ss += o->residual(c, bd.n * k, b.F, b.Y, b.r);
      }
      if (out) o->download(c, out + i0 * k, b.F, fbytes(bd.n * k));
    }
    if (with_y) *loss = ss / (2.0 * (double)n);
    st = sgn_check_backend(be);
  }
  void *ptrs[] = {b.X, b.Y, b.W, b.A, b.F, b.work, b.M, b.r};
  for (size_t i = 0; i < sizeof ptrs / sizeof *ptrs; i++)
    if (ptrs[i]) o->free(c, ptrs[i]);
  return st;
}

sgn_status sgn_evaluate(sgn_backend *be, const sgn_model *model, const float *X, const float *Y,
                        int64_t n, double *loss, float *out) {
  return sgn_evaluate_with(be, model, X, Y, n, NULL, loss, out);
}

/* out (n, k) = m^-1/2 relu(X W^T) A, on the CPU backend, within what it has (sgn_evaluate_with
 * chunks neurons or blocks rows when the (n, m) work does not fit). */
sgn_status sgn_model_predict(const sgn_model *model, const float *X, int64_t n, float *out) {
  if (n < 1) return sgn_fail(SGN_E_INPUT, "predict: no samples");
  sgn_backend *be = sgn_backend_cpu_open();
  if (!be) return SGN_E_RUNTIME;
  sgn_status st = sgn_evaluate_with(be, model, X, NULL, n, NULL, NULL, out);
  sgn_backend_close(be);
  return st;
}
