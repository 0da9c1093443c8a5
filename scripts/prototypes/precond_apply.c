/* precond_apply.c — prototype: the ways to apply the preconditioner (R^T R)^-1 to k right-hand
 * sides on the CPU, timed side by side (not part of the product; precond_apply.md has the
 * results and the decision). R (N, N) row-major upper is the Cholesky factor of
 * G = 2 I + U / N (U symmetric, uniform in [-1, 1]); V (N, k) row-major, as gn.c's rtr_apply
 * holds it. Versions, each a full application V <- R^-1 R^-T V:
 *   v1 two dtrsm on R               (rtr_solve before, for every k)
 *   v2 two dtrsv on R               (rtr_solve now, k = 1)
 *   v3 two dtrmv / dtrmm on R^-1    (rinv_apply on the CPU)
 *   v4 two dgemv / dgemm on R^-1    (the whole square: the GPU's form)
 *   v5 two strmv / strmm on a float32 copy of R^-1, V converted both ways
 *   v6 two sgemv / sgemm on that copy, the whole square
 * and once per preconditioner: dpotrf (the Cholesky) and dtrtri (R^-1). Each version is checked
 * against v1 (max |diff| / max |v1|) and timed as the median of REPS rounds, the versions
 * interleaved within each round.
 * Build and run (the CLI's kernels: OpenBLAS picks Prescott on this machine otherwise):
 *   cc -O2 -fopenmp scripts/prototypes/precond_apply.c -o /tmp/precond_apply -lopenblas -llapacke -lm
 *   OPENBLAS_CORETYPE=SkylakeX OMP_WAIT_POLICY=passive /tmp/precond_apply 2000 4000 8000 */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPS 9
#define NVER 6

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp);
  return v[n / 2];
}

/* a uniform in [0, 1) from a 64-bit counter (splitmix64) */
static double unif(uint64_t i) {
  uint64_t z = i + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

/* version v on V (N, k) in place; X = R^-1 (double), Xf its float32 copy, W and Wf scratch */
static void apply(int v, int N, int k, const double *R, const double *X, const float *Xf, double *V,
                  double *W, float *Vf, float *Wf) {
  const size_t len = (size_t)N * (size_t)k;
  switch (v) {
  case 1:
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, N, k, 1.0, R, N, V,
                k);
    cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, N, k, 1.0, R, N,
                V, k);
    return;
  case 2: /* k == 1 only */
    cblas_dtrsv(CblasRowMajor, CblasUpper, CblasTrans, CblasNonUnit, N, R, N, V, 1);
    cblas_dtrsv(CblasRowMajor, CblasUpper, CblasNoTrans, CblasNonUnit, N, R, N, V, 1);
    return;
  case 3:
    if (k == 1) {
      cblas_dtrmv(CblasRowMajor, CblasUpper, CblasTrans, CblasNonUnit, N, X, N, V, 1);
      cblas_dtrmv(CblasRowMajor, CblasUpper, CblasNoTrans, CblasNonUnit, N, X, N, V, 1);
    } else {
      cblas_dtrmm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, N, k, 1.0, X, N,
                  V, k);
      cblas_dtrmm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, N, k, 1.0, X, N,
                  V, k);
    }
    return;
  case 4:
    if (k == 1) {
      cblas_dgemv(CblasRowMajor, CblasTrans, N, N, 1.0, X, N, V, 1, 0.0, W, 1);
      cblas_dgemv(CblasRowMajor, CblasNoTrans, N, N, 1.0, X, N, W, 1, 0.0, V, 1);
    } else {
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, k, N, 1.0, X, N, V, k, 0.0, W, k);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, k, N, 1.0, X, N, W, k, 0.0, V, k);
    }
    return;
  case 5:
    for (size_t e = 0; e < len; e++) Vf[e] = (float)V[e];
    if (k == 1) {
      cblas_strmv(CblasRowMajor, CblasUpper, CblasTrans, CblasNonUnit, N, Xf, N, Vf, 1);
      cblas_strmv(CblasRowMajor, CblasUpper, CblasNoTrans, CblasNonUnit, N, Xf, N, Vf, 1);
    } else {
      cblas_strmm(CblasRowMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, N, k, 1.0f, Xf, N,
                  Vf, k);
      cblas_strmm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, N, k, 1.0f, Xf,
                  N, Vf, k);
    }
    for (size_t e = 0; e < len; e++) V[e] = (double)Vf[e];
    return;
  case 6:
    for (size_t e = 0; e < len; e++) Vf[e] = (float)V[e];
    if (k == 1) {
      cblas_sgemv(CblasRowMajor, CblasTrans, N, N, 1.0f, Xf, N, Vf, 1, 0.0f, Wf, 1);
      cblas_sgemv(CblasRowMajor, CblasNoTrans, N, N, 1.0f, Xf, N, Wf, 1, 0.0f, Vf, 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, N, k, N, 1.0f, Xf, N, Vf, k, 0.0f, Wf,
                  k);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, k, N, 1.0f, Xf, N, Wf, k, 0.0f, Vf,
                  k);
    }
    for (size_t e = 0; e < len; e++) V[e] = (double)Vf[e];
    return;
  }
}

static void run(int N) {
  const size_t NN = (size_t)N * (size_t)N, L = (size_t)N * 10;
  double *G = malloc(NN * 8), *R = malloc(NN * 8), *X = malloc(NN * 8);
  double *V0 = malloc(L * 8), *V = malloc(L * 8), *W = malloc(L * 8), *ref = malloc(L * 8);
  float *Xf = malloc(NN * 4), *Vf = malloc(L * 4), *Wf = malloc(L * 4);
  for (int i = 0; i < N; i++)
    for (int j = i; j < N; j++)
      G[(size_t)i * N + j] = G[(size_t)j * N + i] =
          i == j ? 2.0 : (2.0 * unif((uint64_t)i * N + j) - 1.0) / N;
  for (size_t e = 0; e < L; e++) V0[e] = 2.0 * unif(NN + e) - 1.0;
  double t_chol[REPS], t_tri[REPS];
  for (int r = 0; r < REPS && r < 3; r++) { /* the factorizations: 3 rounds */
    memcpy(R, G, NN * 8);
    double t0 = now_ms();
    LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', N, R, N); /* row-major upper R */
    t_chol[r] = now_ms() - t0;
    for (int i = 1; i < N; i++) memset(R + (size_t)i * N, 0, (size_t)i * 8);
    memcpy(X, R, NN * 8);
    t0 = now_ms();
    LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'L', 'N', N, X, N); /* row-major upper R^-1 */
    t_tri[r] = now_ms() - t0;
  }
  for (size_t e = 0; e < NN; e++) Xf[e] = (float)X[e];
  printf("N = %d: dpotrf %.1f ms, dtrtri %.1f ms (median of 3)\n", N, median(t_chol, 3),
         median(t_tri, 3));
  for (int k = 1; k <= 10; k += 9) {
    const size_t len = (size_t)N * (size_t)k;
    double t[NVER + 1][REPS], err[NVER + 1] = {0};
    for (int r = 0; r < REPS; r++)
      for (int v = 1; v <= NVER; v++) {
        if (v == 2 && k > 1) continue;
        memcpy(V, V0, len * 8);
        const double t0 = now_ms();
        apply(v, N, k, R, X, Xf, V, W, Vf, Wf);
        t[v][r] = now_ms() - t0;
        if (v == 1) memcpy(ref, V, len * 8);
        double e = 0, m = 0;
        for (size_t i = 0; i < len; i++)
          e = fmax(e, fabs(V[i] - ref[i])), m = fmax(m, fabs(ref[i]));
        err[v] = fmax(err[v], e / m);
      }
    printf("  k = %2d, ms (max |diff| / max |v1|):", k);
    for (int v = 1; v <= NVER; v++)
      if (!(v == 2 && k > 1)) printf("  v%d %.3f (%.0e)", v, median(t[v], REPS), err[v]);
    printf("\n");
  }
  free(G), free(R), free(X), free(V0), free(V), free(W), free(ref), free(Xf), free(Vf), free(Wf);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s N...\n", argv[0]);
    return 2;
  }
  for (int a = 1; a < argc; a++) run(atoi(argv[a]));
  return 0;
}
