/* selftest.cu — the emulator's self-test: one planted bug of each kind, each a tiny kernel or
 * call run in a child process, which must fail with the error that names its kind; and a clean
 * program, which must pass. Built by mk/emu.mk through the same launch rewriting as the backend.
 * `selftest` runs them all; `selftest CASE` runs one in this process (to see its message). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <math.h>
#include <sgn_emu_large.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

#define CHECK(stmt)                                                      \
  do {                                                                   \
    if ((stmt) != 0) {                                                   \
      fprintf(stderr, "selftest: %s failed at line %d\n", #stmt, __LINE__); \
      exit(3);                                                           \
    }                                                                    \
  } while (0)

/* ---- kernels ---- */

/* out[t] = t-th value of a shared array that warp 0 rewrites while warp 1 reads it: the barrier
 * between the write and the read is missing */
static __global__ void race_kernel(float *out) {
  __shared__ float sh[32];
  const int t = threadIdx.x;
  if (t < 32) sh[t] = -1.0f;
  __syncthreads();
  if (t < 32) sh[t] = (float)t; /* warp 0 writes... */
  /* __syncthreads() missing here */
  if (t >= 32) out[t - 32] = sh[t - 32]; /* ...warp 1 reads */
}

/* x[i] += 1 for i <= len: one past the end */
static __global__ void oob_kernel(int len, float *x) {
  for (int i = threadIdx.x; i <= len; i += blockDim.x) x[i] += 1.0f;
}

static __global__ void fill_kernel(int len, float v, float *x) {
  for (int i = threadIdx.x; i < len; i += blockDim.x) x[i] = v;
}

static __global__ void copy_kernel(int len, const float *in, float *out) {
  for (int i = threadIdx.x; i < len; i += blockDim.x) out[i] = in[i];
}

/* x[i] += v */
static __global__ void add_kernel(int len, float v, float *x) {
  for (int i = threadIdx.x; i < len; i += blockDim.x) x[i] += v;
}

/* a full-mask shuffle reached by half the warp */
static __global__ void partial_warp_kernel(float *out) {
  float v = (float)threadIdx.x;
  if (threadIdx.x < 16) v += __shfl_down_sync(0xffffffffu, v, 1);
  out[threadIdx.x] = v;
}

/* a barrier that the first warp never reaches */
static __global__ void partial_barrier_kernel(float *out) {
  if (threadIdx.x < 32) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

/* G[i n + j] = 1 for j >= i of an (n, n) matrix, the index an int: past 2^31 entries (n >= 46341)
 * it wraps negative */
static __global__ void int_index_kernel(int n, double *G) {
  for (int i = blockIdx.x; i < n; i += gridDim.x)
    for (int j = i + threadIdx.x; j < n; j += blockDim.x) G[i * n + j] = 1.0;
}

/* out[i] = 2 (n - 1 - i) through n floats of dynamic shared memory, written and read by different
 * threads across a barrier */
static __global__ void dyn_smem_kernel(int n, float *out) {
  extern __shared__ float dsh[];
  for (int i = threadIdx.x; i < n; i += blockDim.x) dsh[i] = 2.0f * (float)i;
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = dsh[n - 1 - i];
}

/* the clean program: a block sum by shuffles and a barrier */
static __global__ void clean_kernel(const float *in, float *out) {
  __shared__ float part[2];
  float v = in[threadIdx.x];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x == 0) *out = part[0] + part[1];
}

/* ---- cases ---- */

static float *dev(size_t len) {
  float *p = NULL;
  CHECK(cudaMalloc(&p, len * sizeof(float)));
  return p;
}

/* the same racy kernel in the forward and the reverse schedule: the results differ */
static void case_race(void) {
  float a[32], b[32];
  float *out = dev(32);
  sgn_emu_set_order("fwd");
  race_kernel<<<1, 64>>>(out);
  CHECK(cudaMemcpy(a, out, sizeof a, cudaMemcpyDeviceToHost));
  sgn_emu_set_order("rev");
  race_kernel<<<1, 64>>>(out);
  CHECK(cudaMemcpy(b, out, sizeof b, cudaMemcpyDeviceToHost));
  if (memcmp(a, b, sizeof a) != 0) {
    fprintf(stderr, "cuda-emu: ERROR [race]: race_kernel gives different results in the fwd and "
            "rev schedules (out[0] = %g vs %g)\n", a[0], b[0]);
    exit(1);
  }
}

static void case_oob_write(void) {
  float *x = dev(100);
  CHECK(cudaMemset(x, 0, 100 * sizeof(float)));
  oob_kernel<<<1, 64>>>(100, x);
  CHECK(cudaDeviceSynchronize());
}

static void case_host_read_without_sync(void) {
  cudaStream_t st;
  CHECK(cudaStreamCreate(&st));
  float *x = dev(64), *h = NULL;
  CHECK(cudaMallocHost(&h, 64 * sizeof(float)));
  fill_kernel<<<1, 64, 0, st>>>(64, 2.0f, x);
  CHECK(cudaMemcpyAsync(h, x, 64 * sizeof(float), cudaMemcpyDeviceToHost, st));
  /* cudaStreamSynchronize(st) missing */
  printf("%g\n", h[0]);
}

static void case_host_access_to_device(void) {
  float *x = dev(64);
  CHECK(cudaMemset(x, 0, 64 * sizeof(float)));
  printf("%g\n", x[0]);
}

static void case_wrong_lda(void) {
  const int m = 8, n = 4, k = 6;
  float *A = dev(m * k), *B = dev(k * n), *C = dev(m * n);
  const float one = 1.0f, zero = 0.0f;
  cublasHandle_t h;
  CHECK(cublasCreate(&h));
  /* A is (m, k) column-major: lda must be >= m */
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, A, k, B, k, &zero, C, m));
  CHECK(cudaDeviceSynchronize());
}

static void case_small_workspace(void) {
  const int n = 16;
  double *A = NULL, *work = NULL;
  int *info = NULL, lwork = 0;
  CHECK(cudaMalloc(&A, n * n * sizeof(double)));
  CHECK(cudaMalloc(&info, sizeof(int)));
  cusolverDnHandle_t h;
  CHECK(cusolverDnCreate(&h));
  CHECK(cusolverDnDpotrf_bufferSize(h, CUBLAS_FILL_MODE_LOWER, n, A, n, &lwork));
  CHECK(cudaMalloc(&work, (size_t)(lwork / 2) * sizeof(double)));
  CHECK(cusolverDnDpotrf(h, CUBLAS_FILL_MODE_LOWER, n, A, n, work, lwork / 2, info));
}

static void case_partial_warp_collective(void) {
  float *out = dev(32);
  partial_warp_kernel<<<1, 32>>>(out);
  CHECK(cudaDeviceSynchronize());
}

static void case_uninitialized_read(void) {
  float *in = dev(64), *out = dev(64), h[64];
  copy_kernel<<<1, 64>>>(64, in, out); /* in was never written */
  CHECK(cudaMemcpy(h, out, sizeof h, cudaMemcpyDeviceToHost));
}

static void case_partial_barrier(void) {
  float *out = dev(64);
  partial_barrier_kernel<<<1, 64>>>(out);
  CHECK(cudaDeviceSynchronize());
}

/* int_index_kernel at n = 46400 in large-index mode: a 17 GB matrix reserved lazily, a sample of
 * the blocks (the last row among them) run */
static void case_int_index_overflow(void) {
  CHECK(sgn_emu_set_large(1));
  const int n = 46400;
  double *G = NULL;
  CHECK(cudaMalloc(&G, (size_t)n * (size_t)n * sizeof(double)));
  int_index_kernel<<<n, 256>>>(n, G);
  CHECK(cudaDeviceSynchronize());
}

/* 64 KB of dynamic shared memory without cudaFuncSetAttribute raising the kernel's 48 KB */
static void case_dyn_smem_no_attribute(void) {
  const int n = 16384;
  float *out = dev(n);
  dyn_smem_kernel<<<1, 256, n * sizeof(float)>>>(n, out);
  CHECK(cudaDeviceSynchronize());
}

/* 200 KB with the attribute raised to 227 KB, and 48 KB without it, each value checked */
static void case_dyn_smem_clean(void) {
  const int sizes[] = {200 * 1024 / 4, 48 * 1024 / 4};
  CHECK(cudaFuncSetAttribute((const void *)dyn_smem_kernel,
                             cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024));
  for (int c = 0; c < 2; c++) {
    const int n = sizes[c];
    std::vector<float> h((size_t)n);
    float *out = dev((size_t)n);
    dyn_smem_kernel<<<2, 512, n * sizeof(float)>>>(n, out);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(h.data(), out, h.size() * sizeof(float), cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
      if (h[i] != 2.0f * (float)(n - 1 - i)) {
        fprintf(stderr, "selftest: dynamic shared memory: out[%d] = %g at n = %d\n", i, h[i], n);
        exit(1);
      }
    CHECK(cudaFree(out));
  }
}

/* ---- large-index mode's library calls: what they compute is what the whole call computes ---- */

static uint64_t g_rng = 12345;
static double uniform(void) { /* in [-1, 1) */
  g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(g_rng >> 11) * 0x1p-52 - 1.0;
}

static int pick_all(const char *, const int64_t *, int, uint64_t, uint64_t, void *) { return 1; }

/* run() writes the len elements at dC, ld apart per column (or entry) of its output: once whole
 * (every index picked), once as large-index mode samples it (the default picks), both from the
 * same random start. The picked columns must match the whole call's (to rounding: a column alone
 * may sum in another order), the others keep their start. */
template <typename T, typename Run>
static void same_as_whole(const char *what, T *dC, size_t len, size_t ld, double tol, Run run) {
  std::vector<T> init(len), whole(len), part(len);
  for (size_t e = 0; e < len; e++) init[e] = (T)uniform();
  CHECK(cudaMemcpy(dC, init.data(), len * sizeof(T), cudaMemcpyHostToDevice));
  sgn_emu_large_pick(pick_all, NULL);
  run();
  CHECK(cudaMemcpy(whole.data(), dC, len * sizeof(T), cudaMemcpyDeviceToHost));
  CHECK(cudaMemcpy(dC, init.data(), len * sizeof(T), cudaMemcpyHostToDevice));
  sgn_emu_large_pick(NULL, NULL);
  run();
  CHECK(cudaMemcpy(part.data(), dC, len * sizeof(T), cudaMemcpyDeviceToHost));
  sgn_emu_ran r;
  sgn_emu_large_log(sgn_emu_large_log(0, NULL) - 1, &r);
  if (!r.ran || r.nran == 0 || r.nran >= r.count) {
    fprintf(stderr, "selftest: %s computed %lu of %lu: not a sample\n", what, (unsigned long)r.nran,
            (unsigned long)r.count);
    exit(1);
  }
  for (size_t e = 0; e < len; e++) {
    int picked = 0;
    for (uint64_t q = 0; q < r.nran; q++) picked |= r.ran[q] == e / ld;
    const double p = (double)part[e], w = (double)whole[e];
    if (picked ? fabs(p - w) <= tol * (1.0 + fabs(w)) : memcmp(&part[e], &init[e], sizeof(T)) == 0)
      continue;
    fprintf(stderr,
            "selftest: %s: element %zu (column %zu, %s) is %.17g, the whole call's %.17g"
            " (start %.17g)\n",
            what, e, e / ld, picked ? "picked" : "not picked", p, w, (double)init[e]);
    exit(1);
  }
}

template <typename T>
static T *dev_random(size_t len) {
  std::vector<T> h(len);
  for (size_t e = 0; e < len; e++) h[e] = (T)uniform();
  T *p = NULL;
  CHECK(cudaMalloc(&p, len * sizeof(T)));
  CHECK(cudaMemcpy(p, h.data(), len * sizeof(T), cudaMemcpyHostToDevice));
  return p;
}

/* Every library call's large-index stand-in at a size past its threshold: GEMMs (float, double,
 * int8; float32 and bf16 GemmEx) in each transpose, DSYRK in each fill and transpose, SYMV in each fill, GEMV in each
 * transpose, against the whole call; Xpotrf and Xtrtri's trailing block against the whole call on
 * that block alone. */
static void case_large_calls(void) {
  CHECK(sgn_emu_set_large(7));
  cublasHandle_t h;
  cusolverDnHandle_t sh;
  CHECK(cublasCreate(&h));
  CHECK(cusolverDnCreate(&sh));
  const int64_t n = 300, ld = 307; /* n^3 = 2.7e7 multiply-adds, past 2^24 */
  const float one = 1.0f, half = 0.5f;
  const double d1 = 1.0, dh = 0.5;
  float *A = dev_random<float>((size_t)(ld * n)), *B = dev_random<float>((size_t)(ld * n));
  double *Ad = dev_random<double>((size_t)(ld * n)), *Bd = dev_random<double>((size_t)(ld * n));
  float *C = NULL;
  double *Cd = NULL;
  CHECK(cudaMalloc(&C, (size_t)(ld * n) * sizeof(float)));
  CHECK(cudaMalloc(&Cd, (size_t)(ld * n) * sizeof(double)));
  const cublasOperation_t ops[2] = {CUBLAS_OP_N, CUBLAS_OP_T};
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      same_as_whole("cublasSgemm_64", C, (size_t)(ld * n), (size_t)ld, 1e-5, [&] {
        CHECK(cublasSgemm_64(h, ops[ta], ops[tb], n, n, n, &one, A, ld, B, ld, &half, C, ld));
      });
      same_as_whole("cublasDgemm_64", Cd, (size_t)(ld * n), (size_t)ld, 1e-13, [&] {
        CHECK(cublasDgemm_64(h, ops[ta], ops[tb], n, n, n, &d1, Ad, ld, Bd, ld, &dh, Cd, ld));
      });
    }
  /* int8 (TN) -> int32: exact */
  const int64_t m8 = 256, k8 = 256, n8 = 300;
  int8_t *A8 = NULL, *B8 = NULL;
  int32_t *C8 = NULL;
  std::vector<int8_t> h8((size_t)(k8 * n8));
  for (auto &v : h8) v = (int8_t)(uniform() * 3.0);
  CHECK(cudaMalloc(&A8, (size_t)(k8 * n8)));
  CHECK(cudaMalloc(&B8, (size_t)(k8 * n8)));
  CHECK(cudaMalloc(&C8, (size_t)(m8 * n8) * sizeof(int32_t)));
  CHECK(cudaMemcpy(A8, h8.data(), h8.size(), cudaMemcpyHostToDevice));
  CHECK(cudaMemcpy(B8, h8.data(), h8.size(), cudaMemcpyHostToDevice));
  const int32_t i1 = 1, i0 = 0;
  same_as_whole("cublasGemmEx_64", C8, (size_t)(m8 * n8), (size_t)m8, 0.0, [&] {
    CHECK(cublasGemmEx_64(h, CUBLAS_OP_T, CUBLAS_OP_N, m8, n8, k8, &i1, A8, CUDA_R_8I, k8, B8,
                          CUDA_R_8I, k8, &i0, C8, CUDA_R_32I, m8, CUBLAS_COMPUTE_32I,
                          CUBLAS_GEMM_DEFAULT));
  });
  /* float32 and bf16 -> float32 GemmEx in each transpose (the sketch Gram's fp32, tf32, bf16) */
  std::vector<uint16_t> h16((size_t)(ld * n));
  for (auto &v : h16) {
    const float f = (float)uniform();
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    v = (uint16_t)(u >> 16); /* a bfloat16: the top half */
  }
  uint16_t *A16 = NULL;
  CHECK(cudaMalloc(&A16, h16.size() * sizeof(uint16_t)));
  CHECK(cudaMemcpy(A16, h16.data(), h16.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      same_as_whole("cublasGemmEx_64", C, (size_t)(ld * n), (size_t)ld, 1e-5, [&] {
        CHECK(cublasGemmEx_64(h, ops[ta], ops[tb], n, n, n, &one, A, CUDA_R_32F, ld, B, CUDA_R_32F,
                              ld, &half, C, CUDA_R_32F, ld, CUBLAS_COMPUTE_32F_FAST_TF32,
                              CUBLAS_GEMM_DEFAULT));
      });
      same_as_whole("cublasGemmEx_64", C, (size_t)(ld * n), (size_t)ld, 1e-5, [&] {
        CHECK(cublasGemmEx_64(h, ops[ta], ops[tb], n, n, n, &one, A16, CUDA_R_16BF, ld, A16,
                              CUDA_R_16BF, ld, &half, C, CUDA_R_32F, ld, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
      });
    }
  /* SYMV and GEMV: n^2 past 2^24 */
  const int64_t nv = 4100;
  double *Av = dev_random<double>((size_t)(nv * nv)), *x = dev_random<double>((size_t)nv),
         *y = NULL;
  float *Avf = dev_random<float>((size_t)(nv * nv)), *xf = dev_random<float>((size_t)nv),
        *yf = NULL;
  CHECK(cudaMalloc(&y, (size_t)nv * sizeof(double)));
  CHECK(cudaMalloc(&yf, (size_t)nv * sizeof(float)));
  for (int u = 0; u < 2; u++) {
    const cublasFillMode_t fill = u ? CUBLAS_FILL_MODE_UPPER : CUBLAS_FILL_MODE_LOWER;
    for (int t = 0; t < 2; t++) /* n^2 k / 2 = 1.8e7 with k = 400 (A from Av, ld nv) */
      same_as_whole("cublasDsyrk_64", Cd, (size_t)(ld * n), (size_t)ld, 1e-13, [&] {
        CHECK(cublasDsyrk_64(h, fill, ops[t], n, 400, &d1, Av, nv, &dh, Cd, ld));
      });
    same_as_whole("cublasDsymv_64", y, (size_t)nv, 1, 1e-12,
                  [&] { CHECK(cublasDsymv_64(h, fill, nv, &d1, Av, nv, x, 1, &dh, y, 1)); });
    same_as_whole("cublasSsymv_64", yf, (size_t)nv, 1, 1e-4,
                  [&] { CHECK(cublasSsymv_64(h, fill, nv, &one, Avf, nv, xf, 1, &half, yf, 1)); });
    same_as_whole("cublasDgemv_64", y, (size_t)nv, 1, 1e-12,
                  [&] { CHECK(cublasDgemv_64(h, ops[u], nv, nv, &d1, Av, nv, x, 1, &dh, y, 1)); });
  }
  /* Xpotrf, Xtrtri (n^3 / 3 past 2^24): the trailing (64, 64) block against the whole call on a
   * copy of that block; the rest of A kept, devInfo offset to the block */
  const int64_t nf = 400, b = 64, n0 = nf - b;
  std::vector<double> F((size_t)(nf * nf), 0.0), blk((size_t)(b * b));
  for (int64_t j = 0; j < nf; j++) F[(size_t)(j * nf + j)] = 2.0 + uniform();
  for (int64_t j = n0; j < nf; j++)
    for (int64_t i = j + 1; i < nf; i++) F[(size_t)(j * nf + i)] = 0.1 * uniform();
  for (int64_t j = n0; j < nf; j++) /* symmetric on the block, for potrf */
    for (int64_t i = n0; i < j; i++) F[(size_t)(j * nf + i)] = F[(size_t)(i * nf + j)];
  double *dF = NULL, *dB = NULL;
  int *info = NULL;
  CHECK(cudaMalloc(&dF, F.size() * sizeof(double)));
  CHECK(cudaMalloc(&dB, blk.size() * sizeof(double)));
  CHECK(cudaMalloc(&info, 2 * sizeof(int)));
  cusolverDnParams_t params;
  CHECK(cusolverDnCreateParams(&params));
  for (int which = 0; which < 2; which++) {
    for (int64_t j = 0; j < b; j++)
      for (int64_t i = 0; i < b; i++)
        blk[(size_t)(j * b + i)] = F[(size_t)((n0 + j) * nf + n0 + i)];
    CHECK(cudaMemcpy(dF, F.data(), F.size() * sizeof(double), cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dB, blk.data(), blk.size() * sizeof(double), cudaMemcpyHostToDevice));
    for (int big = 0; big < 2; big++) {
      const int64_t nn = big ? nf : b;
      double *a = big ? dF : dB;
      size_t dw = 0, hw = 0;
      if (which == 0)
        CHECK(cusolverDnXpotrf_bufferSize(sh, params, CUBLAS_FILL_MODE_LOWER, nn, CUDA_R_64F, a, nn,
                                          CUDA_R_64F, &dw, &hw));
      else
        CHECK(cusolverDnXtrtri_bufferSize(sh, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, nn,
                                          CUDA_R_64F, a, nn, &dw, &hw));
      void *work = NULL;
      std::vector<char> hwork(hw + 1);
      CHECK(cudaMalloc(&work, dw));
      if (which == 0)
        CHECK(cusolverDnXpotrf(sh, params, CUBLAS_FILL_MODE_LOWER, nn, CUDA_R_64F, a, nn,
                               CUDA_R_64F, work, dw, hwork.data(), hw, info + big));
      else
        CHECK(cusolverDnXtrtri(sh, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, nn, CUDA_R_64F, a,
                               nn, work, dw, hwork.data(), hw, info + big));
      CHECK(cudaDeviceSynchronize());
      CHECK(cudaFree(work));
    }
    std::vector<double> got(F.size()), want(blk.size());
    int hinfo[2];
    CHECK(cudaMemcpy(got.data(), dF, got.size() * sizeof(double), cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(want.data(), dB, want.size() * sizeof(double), cudaMemcpyDeviceToHost));
    CHECK(cudaMemcpy(hinfo, info, sizeof hinfo, cudaMemcpyDeviceToHost));
    const char *call = which ? "cusolverDnXtrtri" : "cusolverDnXpotrf";
    if (hinfo[0] != 0 || hinfo[1] != 0) {
      fprintf(stderr, "selftest: %s: info %d (block) and %d (large)\n", call, hinfo[0], hinfo[1]);
      exit(1);
    }
    for (int64_t j = 0; j < nf; j++)
      for (int64_t i = 0; i < nf; i++) {
        const size_t e = (size_t)(j * nf + i);
        const int in = i >= n0 && j >= n0 && i >= j; /* the block's lower triangle */
        const double w = in ? want[(size_t)((j - n0) * b + i - n0)] : F[e];
        if (in ? fabs(got[e] - w) <= 1e-13 * (1.0 + fabs(w)) : got[e] == w) continue;
        fprintf(stderr, "selftest: %s: A(%ld, %ld) = %.17g, want %.17g\n", call, (long)i, (long)j,
                got[e], w);
        exit(1);
      }
    for (int64_t j = 0; j < nf; j++) /* Xtrtri: the factor's shape, lower with its diagonal */
      for (int64_t i = 0; i < j; i++) F[(size_t)(j * nf + i)] = 0.0;
  }
}

/* ---- stream capture: what is unsafe inside one, and a clean graph ---- */

/* a stream capturing one kernel */
static cudaStream_t capturing_stream(float **x) {
  cudaStream_t st;
  CHECK(cudaStreamCreate(&st));
  *x = dev(64);
  fill_kernel<<<1, 64, 0, st>>>(64, 1.0f, *x);
  CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
  add_kernel<<<1, 64, 0, st>>>(64, 1.0f, *x);
  return st;
}

static void case_sync_in_capture(void) {
  float *x;
  cudaStream_t st = capturing_stream(&x);
  CHECK(cudaStreamSynchronize(st));
}

static void case_malloc_in_capture(void) {
  float *x;
  (void)capturing_stream(&x);
  (void)dev(16);
}

static void case_host_copy_in_capture(void) {
  float *x, *h = NULL;
  CHECK(cudaMallocHost(&h, 64 * sizeof(float)));
  cudaStream_t st = capturing_stream(&x);
  CHECK(cudaMemcpyAsync(h, x, 64 * sizeof(float), cudaMemcpyDeviceToHost, st));
}

/* a cuBLAS call captured on a handle that has no workspace of the caller's */
static void case_blas_capture_without_workspace(void) {
  float *x, *c = dev(64);
  cudaStream_t st = capturing_stream(&x);
  cublasHandle_t h;
  CHECK(cublasCreate(&h));
  CHECK(cublasSetStream(h, st));
  const float one = 1.0f, zero = 0.0f;
  CHECK(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 8, &one, x, 8, x, 8, &zero, c, 8));
}

/* a graph of a kernel, a device-to-device copy and an SGEMM (on a workspace): nothing runs while
 * it is recorded, and each launch runs all three again, in order */
static void case_clean_graph(void) {
  cudaStream_t st;
  CHECK(cudaStreamCreate(&st));
  float *x = dev(64), *y = dev(64), *w = dev(1024), h[64];
  cublasHandle_t bh;
  CHECK(cublasCreate(&bh));
  CHECK(cublasSetStream(bh, st));
  CHECK(cublasSetWorkspace(bh, w, 1024 * sizeof(float)));
  fill_kernel<<<1, 64, 0, st>>>(64, 0.0f, x);
  fill_kernel<<<1, 64, 0, st>>>(64, 0.0f, y);
  const float two = 2.0f, zero = 0.0f;
  CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
  add_kernel<<<1, 64, 0, st>>>(64, 1.0f, x);                        /* x += 1 */
  CHECK(cudaMemcpyAsync(y, x, 64 * sizeof(float), cudaMemcpyDeviceToDevice, st)); /* y = x */
  /* x (8, 8) = 2 y[0:8] y[8:16]^T: an outer product, every entry 2 (x + 1)^2 */
  CHECK(cublasSgemm(bh, CUBLAS_OP_N, CUBLAS_OP_N, 8, 8, 1, &two, y, 8, y + 8, 1, &zero, x, 8));
  cudaGraph_t g;
  cudaGraphExec_t e;
  CHECK(cudaStreamEndCapture(st, &g));
  CHECK(cudaGraphInstantiate(&e, g, 0));
  CHECK(cudaGraphDestroy(g));
  CHECK(cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost));
  if (h[0] != 0.0f) {
    fprintf(stderr, "selftest: a recorded kernel ran (x[0] = %g)\n", h[0]);
    exit(1);
  }
  float want = 0.0f; /* x[0] after each launch: 2 (x[0] + 1) (x[8] + 1) with x[8] = x[0] */
  for (int l = 0; l < 3; l++) {
    CHECK(cudaGraphLaunch(e, st));
    want = 2.0f * (want + 1.0f) * (want + 1.0f);
  }
  CHECK(cudaStreamSynchronize(st));
  CHECK(cudaMemcpy(h, x, sizeof h, cudaMemcpyDeviceToHost));
  if (h[0] != want || h[63] != want) {
    fprintf(stderr, "selftest: graph gives x[0] = %g, x[63] = %g, want %g\n", h[0], h[63], want);
    exit(1);
  }
  CHECK(cudaGraphExecDestroy(e));
  CHECK(cublasDestroy(bh));
  CHECK(cudaStreamDestroy(st));
}

static void case_clean(void) {
  float h[64], sum = 0.0f, want = 0.0f;
  for (int i = 0; i < 64; i++) h[i] = (float)i, want += (float)i;
  float *in = dev(64), *out = dev(1);
  CHECK(cudaMemcpy(in, h, sizeof h, cudaMemcpyHostToDevice));
  const char *orders[] = {"fwd", "rev", "rand:3"};
  for (int o = 0; o < 3; o++) {
    sgn_emu_set_order(orders[o]);
    clean_kernel<<<1, 64>>>(in, out);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(&sum, out, sizeof sum, cudaMemcpyDeviceToHost));
    if (sum != want) {
      fprintf(stderr, "selftest: clean sum %g, want %g (order %s)\n", sum, want, orders[o]);
      exit(1);
    }
  }
  CHECK(cudaFree(in));
  CHECK(cudaFree(out));
}

typedef struct bug {
  const char *name;
  void (*run)(void);
  const char *kind; /* the "[kind]" its error must name; NULL: must pass */
} bug;

static const bug bugs[] = {
    {"missing-barrier", case_race, "race"},
    {"oob-write", case_oob_write, "out-of-bounds"},
    {"host-read-without-sync", case_host_read_without_sync, "host read without sync"},
    {"host-access-to-device", case_host_access_to_device, "host access to device memory"},
    {"sgemm-wrong-lda", case_wrong_lda, "bad library argument"},
    {"potrf-small-workspace", case_small_workspace, "bad library argument"},
    {"partial-warp-collective", case_partial_warp_collective, "warp collective mask mismatch"},
    {"uninitialized-read", case_uninitialized_read, "uninitialized read"},
    {"partial-barrier", case_partial_barrier, "barrier divergence"},
    {"int-index-overflow", case_int_index_overflow, "out-of-bounds"},
    {"sync-in-capture", case_sync_in_capture, "unsafe call during stream capture"},
    {"malloc-in-capture", case_malloc_in_capture, "unsafe call during stream capture"},
    {"host-copy-in-capture", case_host_copy_in_capture, "unsafe call during stream capture"},
    {"blas-capture-no-workspace", case_blas_capture_without_workspace,
     "unsafe call during stream capture"},
    {"clean-graph", case_clean_graph, NULL},
    {"dyn-smem-no-attribute", case_dyn_smem_no_attribute, "bad launch configuration"},
    {"dyn-smem-clean", case_dyn_smem_clean, NULL},
    {"large-calls", case_large_calls, NULL},
    {"clean", case_clean, NULL},
};
#define NBUGS (sizeof bugs / sizeof *bugs)

/* Runs b in a child; returns 1 when it ended as it should. */
static int check(const bug *b) {
  int fd[2];
  if (pipe(fd) != 0) return 0;
  fflush(NULL);
  const pid_t pid = fork();
  if (pid == 0) {
    close(fd[0]);
    dup2(fd[1], 2);
    b->run();
    CHECK(cudaDeviceSynchronize());
    _exit(0);
  }
  close(fd[1]);
  char out[8192];
  size_t len = 0;
  ssize_t got;
  while ((got = read(fd[0], out + len, sizeof out - 1 - len)) > 0) len += (size_t)got;
  out[len] = '\0';
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const int passed = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  char want[96];
  snprintf(want, sizeof want, "[%s]", b->kind ? b->kind : "");
  char *nl = strchr(out, '\n');
  if (nl) *nl = '\0';
  if (!b->kind) {
    printf("selftest: %-26s %s\n", b->name, passed ? "passes, as it should" : "FAILED");
    if (!passed) printf("  %s\n", out);
    return passed;
  }
  const int caught = !passed && strstr(out, want);
  printf("selftest: %-26s %s\n  %s\n", b->name, caught ? "caught" : "NOT CAUGHT", out);
  return caught;
}

int main(int argc, char **argv) {
  if (argc == 2) {
    for (size_t i = 0; i < NBUGS; i++)
      if (!strcmp(argv[1], bugs[i].name)) {
        bugs[i].run();
        CHECK(cudaDeviceSynchronize());
        return 0;
      }
    fprintf(stderr, "selftest: no case %s\n", argv[1]);
    return 2;
  }
  int ok = 1;
  for (size_t i = 0; i < NBUGS; i++) ok &= check(&bugs[i]);
  printf("selftest: %s\n", ok ? "every planted bug was caught" : "FAILED");
  return ok ? 0 : 1;
}
