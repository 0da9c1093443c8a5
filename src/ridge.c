/* ridge.c — the ridge of the Gauss-Newton solvers (sgn_options.ridge): its automatic choice by
 * leave-one-out on the initial Gram, and its penalty rho / (2n) ||W - W0||^2. In the lazy regime
 * the regularized run converges to kernel ridge regression with the tangent kernel G, whose
 * leave-one-out residuals have a closed form, so the choice costs one eigendecomposition of a
 * Gram of at most SGN_RIDGE_SAMPLE rows. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "backend.h"
#include "rng.h"
#include "session.h"
#include "util.h"

/* The grid of ridges relative to mean(G_ii): 10^-5 ... 10^2 in quarter decades. */
#define GRID_LO (-5.0)
#define GRID_STEPS 29
#define GRID_PER_DECADE 4.0

/* Leave-one-out mean squared error of kernel ridge regression with ridge L on the Gram
 * G = Q diag(ev) Q^T (ns, ns), targets Y (ns, k): with H = (G + L I)^-1 and alpha = H Y, the
 * residual of sample i left out is alpha_i / H_ii. QtY = Q^T Y (ns, k), Q2 = Q o Q; z and alpha
 * (ns, k), h (ns) scratch. */
static double loo_mse(int64_t ns, int64_t k, const double *Q, const double *Q2, const double *ev,
                      const double *QtY, double L, double *z, double *alpha, double *h,
                      double *inv) {
  for (int64_t j = 0; j < ns; j++) inv[j] = 1.0 / (fmax(ev[j], 0.0) + L);
  for (int64_t j = 0; j < ns; j++)
    for (int64_t c = 0; c < k; c++) z[j * k + c] = QtY[j * k + c] * inv[j];
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)ns, (int)k, (int)ns, 1.0, Q, (int)ns,
              z, (int)k, 0.0, alpha, (int)k);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, (int)ns, (int)ns, 1.0, Q2, (int)ns, inv, 1, 0.0, h, 1);
  double sum = 0;
  for (int64_t i = 0; i < ns; i++)
    for (int64_t c = 0; c < k; c++) {
      const double e = alpha[i * k + c] / h[i];
      sum += e * e;
    }
  return sum / (double)(ns * k);
}

/* The grid's ridge (relative to mean(G_ii) = mdiag) of least leave-one-out error on G (ns, ns)
 * host, overwritten, and targets Yh (ns, k); -1 when LAPACK fails or memory runs out. */
static double loo_choose(int64_t ns, int64_t k, double *G, const double *Yh, double mdiag) {
  double *ev = malloc(dbytes(ns)), *Q2 = malloc(dbytes(ns * ns)), *QtY = malloc(dbytes(ns * k)),
         *z = malloc(dbytes(ns * k)), *alpha = malloc(dbytes(ns * k)), *h = malloc(dbytes(ns)),
         *inv = malloc(dbytes(ns));
  double best = -1, best_err = INFINITY;
  if (ev && Q2 && QtY && z && alpha && h && inv &&
      LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)ns, G, (lapack_int)ns, ev) == 0) {
    /* G now holds Q, eigenvector j in column j */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)ns, (int)k, (int)ns, 1.0, G,
                (int)ns, Yh, (int)k, 0.0, QtY, (int)k);
    for (int64_t i = 0; i < ns * ns; i++) Q2[i] = G[i] * G[i];
    for (int t = 0; t < GRID_STEPS; t++) {
      const double rel = pow(10.0, GRID_LO + t / GRID_PER_DECADE);
      const double err = loo_mse(ns, k, G, Q2, ev, QtY, rel * mdiag, z, alpha, h, inv);
      if (err < best_err) best_err = err, best = rel;
    }
    if (best < 0) best = 0; /* no finite error anywhere (targets all equal): no ridge */
  }
  free(ev), free(Q2), free(QtY), free(z), free(alpha), free(h), free(inv);
  return best;
}

sgn_status sgn_ridge_choose(sgn_session *s, const float *Y) {
  const sgn_backend_ops *o = s->o;
  void *c = s->c;
  const int64_t n = s->dm.n, d = s->dm.d, k = s->dm.k;
  const int64_t ns = n < SGN_RIDGE_SAMPLE ? n : SGN_RIDGE_SAMPLE;
  sgn_dims ds = s->dm;
  ds.n = ns;
  /* the sample: all rows, or the first ns of a seeded permutation, gathered with their mask */
  const float *Xs = s->X;
  const uint32_t *Ms = s->M;
  float *Xg = NULL, *Fg = NULL;
  uint32_t *Mg = NULL;
  int64_t *idx = NULL;
  double *G = NULL, *Gh = NULL, *Yh = NULL;
  sgn_status st = SGN_E_RUNTIME;
  if (!(G = o->alloc(c, dbytes(ns * ns))) || !(Gh = malloc(dbytes(ns * ns))) ||
      !(Yh = malloc(dbytes(ns * k)))) {
    sgn_fail(SGN_E_RUNTIME, "out of memory choosing the ridge (%zu bytes)", 2 * dbytes(ns * ns));
    goto done;
  }
  if (ns < n) {
    sgn_step_shuffle(s->perm, n, ns, s->opt.seed, (uint64_t)1 << 62);
    if (!(idx = o->alloc(c, (size_t)ns * sizeof(int64_t))) || !(Xg = o->alloc(c, fbytes(ns * d))) ||
        !(Mg = o->alloc(c, mbytes(ns, s->dm.m))) || !(Fg = o->alloc(c, fbytes(ns * k)))) {
      sgn_fail(SGN_E_RUNTIME, "out of memory choosing the ridge");
      goto done;
    }
    o->upload(c, idx, s->perm, (size_t)ns * sizeof(int64_t));
    o->gather_rows(c, ns, d, s->X, idx, Xg);
    o->forward(c, ds, Xg, s->W, s->A, s->work, Mg, Fg);
    Xs = Xg, Ms = Mg;
  }
  for (int64_t i = 0; i < ns; i++)
    for (int64_t j = 0; j < k; j++) Yh[i * k + j] = Y[(ns < n ? s->perm[i] : i) * k + j];
  o->gram(c, ds, Xs, Ms, s->A, 0, s->work, G);
  o->download(c, Gh, G, dbytes(ns * ns));
  if ((st = sgn_check_backend(s->be)) != SGN_OK) goto done;
  double mdiag = 0;
  for (int64_t i = 0; i < ns; i++) mdiag += Gh[i * ns + i];
  mdiag /= (double)ns;
  double rel = s->opt.ridge;
  if (rel < 0 && (ns < 2 || !(mdiag > 0))) rel = 0; /* nothing to leave out, or G = 0 */
  if (rel < 0 && (rel = loo_choose(ns, k, Gh, Yh, mdiag)) < 0) {
    st = sgn_fail(SGN_E_RUNTIME, "choosing the ridge: the eigendecomposition of the %lld-sample "
                                 "Gram failed",
                  (long long)ns);
    goto done;
  }
  /* A sample's choice, scaled by ns / n for the whole set: measured on Fashion-MNIST at
   * n = 10 000 (README "Ridge"), the 2048-sample choice itself over-regularizes (0.6 points of
   * test accuracy), scaled it is within 0.1 of the best fixed ridge. */
  if (s->opt.ridge < 0) rel *= (double)ns / (double)n;
  s->ridge_rel = rel;
  s->rho = rel * mdiag;
  s->pen = 0; /* W = W0 */
  st = SGN_OK;
done:
  if (G) o->free(c, G);
  if (idx) o->free(c, idx);
  if (Xg) o->free(c, Xg);
  if (Mg) o->free(c, Mg);
  if (Fg) o->free(c, Fg);
  free(Gh), free(Yh);
  return st;
}
