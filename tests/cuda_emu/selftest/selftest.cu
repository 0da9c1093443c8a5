/* selftest.cu — the emulator's self-test: one planted bug of each kind, each a tiny kernel or
 * call run in a child process, which must fail with the error that names its kind; and a clean
 * program, which must pass. Built by mk/emu.mk through the same launch rewriting as the backend.
 * `selftest` runs them all; `selftest CASE` runs one in this process (to see its message). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
