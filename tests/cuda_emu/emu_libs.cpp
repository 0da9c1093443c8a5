/* emu_libs.cpp — cuBLAS, cuSOLVER, cuFFT and cuRAND for the emulator, on OpenBLAS, LAPACKE and
 * FFTW. Every call checks its arguments by the libraries' documented rules (column-major leading
 * dimensions, operand extents inside one live device allocation, workspace sizes, devInfo in
 * device memory, the cuFFT work area) and fails naming the call and the argument; the work is
 * queued on the handle's stream like a kernel. Host-mode scalars are read at the call. In
 * large-index mode a call past LARGE_OPS, checked in full, computes a sample: GEMMs some output
 * columns, GEMV and SYMV some entries, the factorizations their trailing block; DSYRK and DTRSM
 * nothing (tests/cuda_emu/README.md). */
#include <cblas.h>
#include <fftw3.h>
#include <lapacke.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "cufft.h"
#include "curand.h"
#include "cusolverDn.h"
#include "emu_internal.h"

using namespace sgn_emu;

struct sgn_emu_cublas {
  cudaStream_t stream;
  cublasPointerMode_t pmode;
  cublasMath_t math;
  size_t ws_bytes; /* cublasSetWorkspace's (0: cuBLAS's own pool, which allocates) */
};

struct sgn_emu_cusolver {
  cudaStream_t stream;
};

struct sgn_emu_cusolver_params {
  int live; /* 1 from cusolverDnCreateParams until cusolverDnDestroyParams */
};

namespace {

const char *opname(int op) { return op == CUBLAS_OP_N ? "N" : op == CUBLAS_OP_T ? "T" : "C"; }

/* A (rows, cols) column-major with leading dimension ld, elem bytes each: ld >= max(1, rows) and
 * the whole extent in one live device allocation */
void check_matrix(const char *call, const char *name, const void *p, long rows, long cols, long ld,
                  size_t elem, const char *rows_is) {
  if (ld < (rows > 1 ? rows : 1))
    fail(EMU_BADARG, "%s: ld%s = %ld < max(1, %s = %ld)", call, name, ld, rows_is, rows);
  if (rows == 0 || cols == 0) return;
  char arg[64];
  snprintf(arg, sizeof arg, "%s (%ld x %ld, ld %ld)", name, rows, cols, ld);
  check_device_range(call, arg, p, ((size_t)ld * (size_t)(cols - 1) + (size_t)rows) * elem);
}

/* A GEMM's C, [c, c + c_bytes), apart from A and B, [in[q], in[q] + in_bytes[q]) (an in-place
 * GEMM is undefined; A and B may share memory: both are only read); with k == 0 neither is read */
void check_gemm_apart(const char *call, const void *c, size_t c_bytes, const void *const in[2],
                      const size_t in_bytes[2], long k) {
  const char *c0 = (const char *)c, *c1 = c0 + c_bytes;
  for (int q = 0; q < 2 && k > 0; q++) {
    const char *i0 = (const char *)in[q];
    if (i0 < c1 && c0 < i0 + in_bytes[q])
      fail(EMU_BADARG, "%s: C overlaps %s (in-place GEMM is undefined)", call, q ? "B" : "A");
  }
}

void check_dims(const char *call, std::initializer_list<std::pair<const char *, long>> dims) {
  for (auto &d : dims)
    if (d.second < 0) fail(EMU_BADARG, "%s: %s = %ld < 0", call, d.first, d.second);
}

/* whether two (m, n) column-major matrices of leading dimension ld >= m, delta elements apart,
 * share an element: delta = q ld + r, element (i, c) of one is (i - r, c - q) or
 * (i - r + ld, c - q - 1) of the other */
bool overlap(long long delta, long m, long n, long ld) {
  const long long q = delta / ld, r = delta % ld;
  return (r < m && q < n) || (r > ld - m && q + 1 < n);
}

/* The 64-bit entry points run on OpenBLAS's and LAPACKE's 32-bit interfaces: a size past
 * INT_MAX is refused as not modelled (a test at such a size belongs on a GPU). */
void check_int(const char *call, std::initializer_list<std::pair<const char *, int64_t>> sizes) {
  for (auto &v : sizes)
    if (v.second > INT_MAX)
      fail(EMU_BADARG, "%s: %s = %lld: sizes past INT_MAX are not modelled", call, v.first,
           (long long)v.second);
}

/* ---- large-index mode ---- */

/* multiply-adds past which a call is a large one: it computes a sample */
const double LARGE_OPS = 16777216.0;
/* the order of the diagonal block a large factorization computes */
const int64_t LARGE_BLOCK = 64;

bool is_large(double ops) { return large_mode() && ops > LARGE_OPS; }

/* A call's arguments for the log: its integer ones, then each operand's offset in elements of
 * elem bytes from the start of its allocation */
std::vector<int64_t> with_offsets(std::vector<int64_t> ints,
                                  std::initializer_list<const void *> ops, size_t elem) {
  for (const void *p : ops) ints.push_back((int64_t)(device_offset(p) / elem));
  return ints;
}

/* The output columns (entries) of count the queued call computes, logged: outside large-index
 * mode all; in it the test's picks, the rest by the default sample, or every one for a call of
 * ops <= LARGE_OPS. Called when the call runs. */
picks run_picks(const char *call, const std::vector<int64_t> &args, uint64_t count, double ops) {
  picks p;
  p.all = true;
  if (!large_mode()) return p;
  p = large_pick(call, args.data(), (int)args.size(), count, ops <= LARGE_OPS);
  large_log(call, args.data(), (int)args.size(), count, p);
  return p;
}

/* Logs that a large call computed the indices [lo, hi) of count (none: lo == hi). */
void log_range(const char *call, const std::vector<int64_t> &args, uint64_t count, uint64_t lo,
               uint64_t hi) {
  picks p;
  p.all = lo == 0 && hi == count;
  for (uint64_t i = lo; !p.all && i < hi; i++) p.idx.push_back(i);
  large_log(call, args.data(), (int)args.size(), count, p);
}

/* The first row and column of the diagonal block a factorization of order n computes when it
 * runs: 0 (all of it); in large-index mode, for a large one, n - LARGE_BLOCK: its trailing
 * (LARGE_BLOCK, LARGE_BLOCK) block alone, at A + n0 (lda + 1). Logged. */
int64_t factor_from(const char *call, const std::vector<int64_t> &args, int64_t n) {
  if (!large_mode()) return 0;
  const int64_t n0 = is_large((double)n * (double)n * (double)n / 3) ? n - std::min(n, LARGE_BLOCK)
                                                                     : 0;
  log_range(call, args, (uint64_t)n, (uint64_t)n0, (uint64_t)n);
  return n0;
}

void check_handle(const char *call, const void *h) {
  if (!h) fail(EMU_BADARG, "%s: handle is NULL (not created)", call);
}

/* Queues a cuBLAS call on its handle's stream. Captured, it needs a workspace of the caller's
 * (cublasSetWorkspace): cuBLAS would allocate its own during the capture. */
void blas_enqueue(cublasHandle_t h, const char *what, std::function<void()> fn) {
  if (capturing(h->stream) && !h->ws_bytes)
    fail(EMU_CAPTURE, "%s: captured on a handle without cublasSetWorkspace", what);
  enqueue(h->stream, what, std::move(fn));
}

/* a scalar argument: a host value in host pointer mode, read now */
template <typename T>
T scalar(const char *call, const char *name, cublasHandle_t h, const T *p) {
  if (!p) fail(EMU_BADARG, "%s: %s is NULL", call, name);
  if (h->pmode == CUBLAS_POINTER_MODE_HOST) {
    if (is_device(p))
      fail(EMU_BADARG, "%s: %s is device memory, but the pointer mode is HOST", call, name);
    return *p;
  }
  fail(EMU_BADARG, "%s: device pointer mode is not modelled", call);
}

CBLAS_TRANSPOSE cb(cublasOperation_t op) { return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

void check_op(const char *call, const char *name, int op) {
  if (op != CUBLAS_OP_N && op != CUBLAS_OP_T && op != CUBLAS_OP_C)
    fail(EMU_BADARG, "%s: %s = %d is not a cublasOperation_t", call, name, op);
}

void check_fill(const char *call, int uplo) {
  if (uplo != CUBLAS_FILL_MODE_LOWER && uplo != CUBLAS_FILL_MODE_UPPER)
    fail(EMU_BADARG, "%s: uplo = %d is neither LOWER nor UPPER", call, uplo);
}

} // namespace

extern "C" {

/* ---- cuBLAS ---- */

cublasStatus_t cublasCreate(cublasHandle_t *h) {
  *h = new sgn_emu_cublas{nullptr, CUBLAS_POINTER_MODE_HOST, CUBLAS_DEFAULT_MATH, 0};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t h) {
  check_handle("cublasDestroy", h);
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t st) {
  check_handle("cublasSetStream", h);
  h->stream = st;
  h->ws_bytes = 0; /* as cuBLAS: back to its own workspace pool */
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
  check_handle("cublasSetWorkspace", h);
  if (bytes) check_device_range("cublasSetWorkspace", "workspace", ws, bytes);
  h->ws_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t mode) {
  check_handle("cublasSetMathMode", h);
  h->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t h, cublasPointerMode_t mode) {
  check_handle("cublasSetPointerMode", h);
  h->pmode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetProperty(libraryPropertyType type, int *value) {
  *value = type == MAJOR_VERSION ? 13 : 0;
  return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t st) {
  switch (st) {
  case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
  case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
  case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
  case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
  case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
  case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
  case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
  case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
  case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "unrecognized cuBLAS status";
}

/* C (m, n) = alpha op(A) op(B) + beta C, column-major; batchCount >= 1 with element strides */
static cublasStatus_t sgemm_batched(const char *call, cublasHandle_t h, cublasOperation_t ta,
                                    cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                    const float *alpha, const float *A, int64_t lda, long long sA,
                                    const float *B, int64_t ldb, long long sB, const float *beta,
                                    float *C, int64_t ldc, long long sC, int64_t batch) {
  check_handle(call, h);
  check_op(call, "transa", ta);
  check_op(call, "transb", tb);
  check_dims(call, {{"m", m}, {"n", n}, {"k", k}, {"batchCount", batch}});
  check_int(call, {{"m", m}, {"n", n}, {"k", k}, {"lda", lda}, {"ldb", ldb}, {"ldc", ldc}});
  const float a = scalar(call, "alpha", h, alpha), b = scalar(call, "beta", h, beta);
  const long ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  const long br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  const size_t cext = (size_t)ldc * (size_t)(n - 1) + (size_t)m;
  for (int64_t j = 1; j < batch; j++)
    if (overlap(j * llabs(sC), m, n, ldc))
      fail(EMU_BADARG, "%s: strideC = %lld: C[0] and C[%ld] (%ld x %ld, ldc %ld) share elements",
           call, sC, (long)j, (long)m, (long)n, (long)ldc);
  for (int64_t i = 0; i < batch; i++) {
    char name[32];
    if (k > 0) {
      snprintf(name, sizeof name, batch > 1 ? "A[%ld]" : "A", (long)i);
      check_matrix(call, batch > 1 ? name : "a", A + i * sA, ar, ac, lda, sizeof(float),
                   ta == CUBLAS_OP_N ? "m (rows of A, transa N)" : "k (rows of A, transa T)");
      snprintf(name, sizeof name, batch > 1 ? "B[%ld]" : "B", (long)i);
      check_matrix(call, batch > 1 ? name : "b", B + i * sB, br, bc, ldb, sizeof(float),
                   tb == CUBLAS_OP_N ? "k (rows of B, transb N)" : "n (rows of B, transb T)");
    }
    snprintf(name, sizeof name, batch > 1 ? "C[%ld]" : "C", (long)i);
    check_matrix(call, batch > 1 ? name : "c", C + i * sC, m, n, ldc, sizeof(float), "m");
    const void *in[2] = {A + i * sA, B + i * sB};
    const size_t inext[2] = {((size_t)lda * (size_t)(ac - 1) + (size_t)ar) * sizeof(float),
                             ((size_t)ldb * (size_t)(bc - 1) + (size_t)br) * sizeof(float)};
    check_gemm_apart(call, C + i * sC, cext * sizeof(float), in, inext, k);
  }
  char what[160];
  snprintf(what, sizeof what,
           "%s(%s, %s, m=%ld, n=%ld, k=%ld, lda=%ld, ldb=%ld, ldc=%ld, batch=%ld)", call,
           opname(ta), opname(tb), (long)m, (long)n, (long)k, (long)lda, (long)ldb, (long)ldc,
           (long)batch);
  const std::vector<int64_t> args = with_offsets({ta, tb, m, n, k, lda, ldb, ldc}, {A, B, C},
                                                 sizeof(float));
  blas_enqueue(h, what, [=] {
    const picks p = run_picks(call, args, (uint64_t)n, (double)m * (double)n * (double)k * batch);
    for (int64_t i = 0; i < batch; i++) {
      if (p.all) {
        cblas_sgemm(CblasColMajor, cb(ta), cb(tb), (int)m, (int)n, (int)k, a, A + i * sA, (int)lda,
                    B + i * sB, (int)ldb, b, C + i * sC, (int)ldc);
        continue;
      }
      /* column j of C from column j of op(B): B's column j (N) or row j (T) */
      for (uint64_t j : p.idx)
        cblas_sgemm(CblasColMajor, cb(ta), cb(tb), (int)m, 1, (int)k, a, A + i * sA, (int)lda,
                    B + i * sB + (tb == CUBLAS_OP_N ? (size_t)j * (size_t)ldb : (size_t)j),
                    (int)ldb, b, C + i * sC + (size_t)j * (size_t)ldc, (int)ldc);
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                           int n, int k, const float *alpha, const float *A, int lda,
                           const float *B, int ldb, const float *beta, float *C, int ldc) {
  return sgemm_batched("cublasSgemm", h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C,
                       ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta,
                                         cublasOperation_t tb, int m, int n, int k,
                                         const float *alpha, const float *A, int lda,
                                         long long strideA, const float *B, int ldb,
                                         long long strideB, const float *beta, float *C, int ldc,
                                         long long strideC, int batchCount) {
  return sgemm_batched("cublasSgemmStridedBatched", h, ta, tb, m, n, k, alpha, A, lda, strideA, B,
                       ldb, strideB, beta, C, ldc, strideC, batchCount);
}

cublasStatus_t cublasSgemm_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                              int64_t m, int64_t n, int64_t k, const float *alpha, const float *A,
                              int64_t lda, const float *B, int64_t ldb, const float *beta, float *C,
                              int64_t ldc) {
  return sgemm_batched("cublasSgemm_64", h, ta, tb, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C,
                       ldc, 0, 1);
}

cublasStatus_t cublasSgemmStridedBatched_64(cublasHandle_t h, cublasOperation_t ta,
                                            cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                            const float *alpha, const float *A, int64_t lda,
                                            long long strideA, const float *B, int64_t ldb,
                                            long long strideB, const float *beta, float *C,
                                            int64_t ldc, long long strideC, int64_t batchCount) {
  return sgemm_batched("cublasSgemmStridedBatched_64", h, ta, tb, m, n, k, alpha, A, lda, strideA,
                       B, ldb, strideB, beta, C, ldc, strideC, batchCount);
}

/* C (m, n) int32 = alpha op(A) op(B) + beta C with int8 A and B in exact integer arithmetic: the
 * int8 tensor-core GEMM. The emulator holds the call to the conservative form that cuBLAS's int8
 * kernels serve on every architecture: the TN layout (transa T, transb N), m, k and every leading
 * dimension a multiple of 4, and 16-byte aligned matrices; a call outside it, which a GPU may
 * answer with CUBLAS_STATUS_NOT_SUPPORTED or a slow path, fails here. */
static cublasStatus_t gemm_ex_int8(const char *call, cublasHandle_t h, cublasOperation_t ta,
                                   cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                   const void *alpha, const void *A, int64_t lda, const void *B,
                                   int64_t ldb, const void *beta, void *C, int64_t ldc) {
  if (ta != CUBLAS_OP_T || tb != CUBLAS_OP_N)
    fail(EMU_BADARG, "%s: int8 GEMM needs the TN layout (transa T, transb N), got %s %s", call,
         opname(ta), opname(tb));
  check_dims(call, {{"m", m}, {"n", n}, {"k", k}});
  check_int(call, {{"m", m}, {"n", n}, {"k", k}, {"lda", lda}, {"ldb", ldb}, {"ldc", ldc}});
  const long rules[][2] = {{m, 0}, {k, 1}, {lda, 2}, {ldb, 3}, {ldc, 4}};
  static const char *rule_names[] = {"m", "k", "lda", "ldb", "ldc"};
  for (const auto &r : rules)
    if (r[0] % 4 != 0)
      fail(EMU_BADARG, "%s: int8 GEMM needs %s a multiple of 4, got %ld", call,
           rule_names[r[1]], r[0]);
  for (const void *p : {A, B, (const void *)C})
    if ((uintptr_t)p % 16 != 0)
      fail(EMU_BADARG, "%s: int8 GEMM needs 16-byte aligned A, B and C", call);
  const int32_t a = scalar(call, "alpha", h, (const int32_t *)alpha);
  const int32_t b = scalar(call, "beta", h, (const int32_t *)beta);
  /* TN: op(A) = A^T with A stored (k, m) ld lda; op(B) = B stored (k, n) ld ldb */
  const int8_t *A8 = (const int8_t *)A, *B8 = (const int8_t *)B;
  int32_t *C32 = (int32_t *)C;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (k > 0) {
    check_matrix(call, "a", A8, k, m, lda, 1, "k (rows of A, transa T)");
    check_matrix(call, "b", B8, k, n, ldb, 1, "k (rows of B, transb N)");
  }
  check_matrix(call, "c", C32, m, n, ldc, sizeof(int32_t), "m");
  char what[160];
  snprintf(what, sizeof what,
           "%s(T, N, m=%ld, n=%ld, k=%ld, lda=%ld, ldb=%ld, ldc=%ld, int8->int32)", call, (long)m,
           (long)n, (long)k, (long)lda, (long)ldb, (long)ldc);
  const std::vector<int64_t> args = with_offsets(
      with_offsets({ta, tb, m, n, k, lda, ldb, ldc}, {A, B}, 1), {C}, sizeof(int32_t));
  blas_enqueue(h, what, [=] {
    const picks p = run_picks(call, args, (uint64_t)n, (double)m * (double)n * (double)k);
    const int64_t nj = p.all ? n : (int64_t)p.idx.size();
    for (int64_t jj = 0; jj < nj; jj++) {
      const int64_t j = p.all ? jj : (int64_t)p.idx[(size_t)jj]; /* column j of C */
      for (int64_t i = 0; i < m; i++) {
        int64_t acc = 0;
        for (int64_t q = 0; q < k; q++)
          acc += (int64_t)A8[(size_t)i * (size_t)lda + (size_t)q] *
                 (int64_t)B8[(size_t)j * (size_t)ldb + (size_t)q];
        const size_t e = (size_t)j * (size_t)ldc + (size_t)i;
        int64_t v = (int64_t)a * acc + (b ? (int64_t)b * C32[e] : 0);
        C32[e] = (int32_t)v;
      }
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}

/* C (m, n) float32 = alpha op(A) op(B) + beta C with float32 or bfloat16 (bf16) A and B, summed
 * in float32 (bf16 inputs widened exactly first). CUBLAS_COMPUTE_32F_FAST_TF32 runs the same
 * float32 sum: the emulator does not round the inputs to TF32 (README). */
static cublasStatus_t gemm_ex_float(const char *call, cublasHandle_t h, cublasOperation_t ta,
                                    cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                    const void *alpha, const void *A, int64_t lda, const void *B,
                                    int64_t ldb, const void *beta, float *C, int64_t ldc,
                                    bool bf16) {
  check_dims(call, {{"m", m}, {"n", n}, {"k", k}});
  check_int(call, {{"m", m}, {"n", n}, {"k", k}, {"lda", lda}, {"ldb", ldb}, {"ldc", ldc}});
  const float a = scalar(call, "alpha", h, (const float *)alpha);
  const float b = scalar(call, "beta", h, (const float *)beta);
  const long ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  const long br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  const size_t elem = bf16 ? sizeof(uint16_t) : sizeof(float);
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const size_t aext = (size_t)lda * (size_t)(ac - 1) + (size_t)ar;
  const size_t bext = (size_t)ldb * (size_t)(bc - 1) + (size_t)br;
  if (k > 0) {
    check_matrix(call, "a", A, ar, ac, lda, elem,
                 ta == CUBLAS_OP_N ? "m (rows of A, transa N)" : "k (rows of A, transa T)");
    check_matrix(call, "b", B, br, bc, ldb, elem,
                 tb == CUBLAS_OP_N ? "k (rows of B, transb N)" : "n (rows of B, transb T)");
  }
  check_matrix(call, "c", C, m, n, ldc, sizeof(float), "m");
  const void *in[2] = {A, B};
  const size_t inext[2] = {aext * elem, bext * elem};
  check_gemm_apart(call, C, ((size_t)ldc * (size_t)(n - 1) + (size_t)m) * sizeof(float), in,
                   inext, k);
  char what[192];
  snprintf(what, sizeof what,
           "%s(%s, %s, m=%ld, n=%ld, k=%ld, lda=%ld, ldb=%ld, ldc=%ld, %s->float32)", call,
           opname(ta), opname(tb), (long)m, (long)n, (long)k, (long)lda, (long)ldb, (long)ldc,
           bf16 ? "bf16" : "float32");
  const std::vector<int64_t> args = with_offsets(
      with_offsets({ta, tb, m, n, k, lda, ldb, ldc}, {A, B}, elem), {C}, sizeof(float));
  blas_enqueue(h, what, [=] {
    const picks p = run_picks(call, args, (uint64_t)n, (double)m * (double)n * (double)k);
    const float *Af = (const float *)A, *Bf = (const float *)B;
    std::vector<float> wa, wb;
    const uint16_t *A16 = (const uint16_t *)A, *B16 = (const uint16_t *)B;
    /* a bfloat16 is the top half of the float32 with the same value */
    auto widen = [](const uint16_t *x, size_t count, std::vector<float> &out) {
      out.resize(count);
      for (size_t e = 0; e < count; e++) {
        const uint32_t u = (uint32_t)x[e] << 16;
        memcpy(&out[e], &u, sizeof u);
      }
    };
    if (bf16 && k > 0) {
      widen(A16, aext, wa);
      Af = wa.data();
      if (p.all) {
        widen(B16, bext, wb);
        Bf = wb.data();
      }
    }
    if (p.all) {
      cblas_sgemm(CblasColMajor, cb(ta), cb(tb), (int)m, (int)n, (int)k, a, Af, (int)lda, Bf,
                  (int)ldb, b, C, (int)ldc);
      return;
    }
    /* large-index mode: column j of C from column j of op(B), B's column j (N) or row j (T) */
    std::vector<float> bj;
    for (uint64_t j : p.idx) {
      const size_t off = tb == CUBLAS_OP_N ? (size_t)j * (size_t)ldb : (size_t)j;
      const float *Bj = Bf + off;
      int ldbj = (int)ldb;
      if (bf16 && k > 0) { /* op(B)'s column j (k entries) widened into bj, stride 1 */
        bj.resize((size_t)k);
        for (int64_t q = 0; q < k; q++) {
          const size_t e = off + (tb == CUBLAS_OP_N ? (size_t)q : (size_t)q * (size_t)ldb);
          const uint32_t u = (uint32_t)B16[e] << 16;
          memcpy(&bj[(size_t)q], &u, sizeof u);
        }
        Bj = bj.data();
        ldbj = tb == CUBLAS_OP_N ? (int)k : 1;
      }
      cblas_sgemm(CblasColMajor, cb(ta), cb(tb), (int)m, 1, (int)k, a, Af, (int)lda, Bj, ldbj, b,
                  C + (size_t)j * (size_t)ldc, (int)ldc);
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}

static cublasStatus_t gemm_ex(const char *call, cublasHandle_t h, cublasOperation_t ta,
                              cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                              const void *alpha, const void *A, cudaDataType Atype, int64_t lda,
                              const void *B, cudaDataType Btype, int64_t ldb, const void *beta,
                              void *C, cudaDataType Ctype, int64_t ldc, cublasComputeType_t compute,
                              cublasGemmAlgo_t algo) {
  check_handle(call, h);
  check_op(call, "transa", ta);
  check_op(call, "transb", tb);
  if (algo != CUBLAS_GEMM_DEFAULT) fail(EMU_BADARG, "%s: algo %d is not modelled", call, algo);
  const bool f32c = compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC;
  if (Atype == CUDA_R_8I && Btype == CUDA_R_8I && Ctype == CUDA_R_32I &&
      compute == CUBLAS_COMPUTE_32I)
    return gemm_ex_int8(call, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc);
  if (Atype == CUDA_R_32F && Btype == CUDA_R_32F && Ctype == CUDA_R_32F &&
      (f32c || compute == CUBLAS_COMPUTE_32F_FAST_TF32))
    return gemm_ex_float(call, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, (float *)C, ldc,
                         false);
  if (Atype == CUDA_R_16BF && Btype == CUDA_R_16BF && Ctype == CUDA_R_32F && f32c)
    return gemm_ex_float(call, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, (float *)C, ldc,
                         true);
  fail(EMU_BADARG,
       "%s: types A %d, B %d, C %d with compute %d: only int8 x int8 -> int32 "
       "(CUBLAS_COMPUTE_32I), float32 -> float32 (CUBLAS_COMPUTE_32F, _PEDANTIC, _FAST_TF32) and "
       "bf16 x bf16 -> float32 (CUBLAS_COMPUTE_32F, _PEDANTIC) are modelled",
       call, (int)Atype, (int)Btype, (int)Ctype, (int)compute);
}

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                            int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                            int lda, const void *B, cudaDataType Btype, int ldb, const void *beta,
                            void *C, cudaDataType Ctype, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo) {
  return gemm_ex("cublasGemmEx", h, ta, tb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C,
                 Ctype, ldc, compute, algo);
}

cublasStatus_t cublasGemmEx_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                               int64_t m, int64_t n, int64_t k, const void *alpha, const void *A,
                               cudaDataType Atype, int64_t lda, const void *B, cudaDataType Btype,
                               int64_t ldb, const void *beta, void *C, cudaDataType Ctype,
                               int64_t ldc, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
  return gemm_ex("cublasGemmEx_64", h, ta, tb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta,
                 C, Ctype, ldc, compute, algo);
}

/* C (n, n) uplo triangle = alpha op(A) op(A)^T + beta C; op(A) (n, k) */
static cublasStatus_t dsyrk(const char *call, cublasHandle_t h, cublasFillMode_t uplo,
                            cublasOperation_t trans, int64_t n, int64_t k, const double *alpha,
                            const double *A, int64_t lda, const double *beta, double *C,
                            int64_t ldc) {
  check_handle(call, h);
  check_fill(call, uplo);
  check_op(call, "trans", trans);
  check_dims(call, {{"n", n}, {"k", k}});
  check_int(call, {{"n", n}, {"k", k}, {"lda", lda}, {"ldc", ldc}});
  const double a = scalar(call, "alpha", h, alpha), b = scalar(call, "beta", h, beta);
  const long ar = trans == CUBLAS_OP_N ? n : k, ac = trans == CUBLAS_OP_N ? k : n;
  if (k > 0)
    check_matrix(call, "a", A, ar, ac, lda, sizeof(double),
                 trans == CUBLAS_OP_N ? "n (rows of A, trans N)" : "k (rows of A, trans T)");
  check_matrix(call, "c", C, n, n, ldc, sizeof(double), "n");
  if (n == 0) return CUBLAS_STATUS_SUCCESS;
  char what[128];
  snprintf(what, sizeof what, "%s(%s, %s, n=%ld, k=%ld, lda=%ld, ldc=%ld)", call,
           uplo == CUBLAS_FILL_MODE_LOWER ? "LOWER" : "UPPER", opname(trans), (long)n, (long)k,
           (long)lda, (long)ldc);
  const std::vector<int64_t> args = with_offsets({uplo, trans, n, k, lda, ldc}, {A, C},
                                                 sizeof(double));
  blas_enqueue(h, what, [=] {
    const picks p = run_picks(call, args, (uint64_t)n, (double)n * (double)n * (double)k / 2);
    if (p.all) {
      cblas_dsyrk(CblasColMajor, uplo == CUBLAS_FILL_MODE_LOWER ? CblasLower : CblasUpper,
                  cb(trans), (int)n, (int)k, a, A, (int)lda, b, C, (int)ldc);
      return;
    }
    /* column j of C's triangle, rows [r0, r0 + len): alpha op(A)[r0:r0+len, :] op(A)[j, :]^T +
     * beta C, by a GEMV on A's rows (N) or columns (T) */
    const bool lo = uplo == CUBLAS_FILL_MODE_LOWER;
    for (uint64_t jj : p.idx) {
      const int64_t j = (int64_t)jj, r0 = lo ? j : 0, len = lo ? n - j : j + 1;
      double *c = C + (size_t)j * (size_t)ldc + (size_t)r0;
      if (b == 0.0)
        for (int64_t i = 0; i < len; i++) c[i] = 0.0;
      if (trans == CUBLAS_OP_N)
        cblas_dgemv(CblasColMajor, CblasNoTrans, (int)len, (int)k, a, A + r0, (int)lda, A + j,
                    (int)lda, b, c, 1);
      else
        cblas_dgemv(CblasColMajor, CblasTrans, (int)k, (int)len, a, A + (size_t)r0 * (size_t)lda,
                    (int)lda, A + (size_t)j * (size_t)lda, 1, b, c, 1);
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDsyrk(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t trans, int n,
                           int k, const double *alpha, const double *A, int lda, const double *beta,
                           double *C, int ldc) {
  return dsyrk("cublasDsyrk", h, uplo, trans, n, k, alpha, A, lda, beta, C, ldc);
}

cublasStatus_t cublasDsyrk_64(cublasHandle_t h, cublasFillMode_t uplo, cublasOperation_t trans,
                              int64_t n, int64_t k, const double *alpha, const double *A,
                              int64_t lda, const double *beta, double *C, int64_t ldc) {
  return dsyrk("cublasDsyrk_64", h, uplo, trans, n, k, alpha, A, lda, beta, C, ldc);
}

/* B (m, n) <- alpha op(A)^-1 B (LEFT) or alpha B op(A)^-1 (RIGHT), A triangular */
static cublasStatus_t dtrsm(const char *call, cublasHandle_t h, cublasSideMode_t side,
                            cublasFillMode_t uplo, cublasOperation_t trans, cublasDiagType_t diag,
                            int64_t m, int64_t n, const double *alpha, const double *A, int64_t lda,
                            double *B, int64_t ldb) {
  check_handle(call, h);
  check_fill(call, uplo);
  check_op(call, "trans", trans);
  if (side != CUBLAS_SIDE_LEFT && side != CUBLAS_SIDE_RIGHT)
    fail(EMU_BADARG, "%s: side = %d", call, side);
  if (diag != CUBLAS_DIAG_NON_UNIT && diag != CUBLAS_DIAG_UNIT)
    fail(EMU_BADARG, "%s: diag = %d", call, diag);
  check_dims(call, {{"m", m}, {"n", n}});
  check_int(call, {{"m", m}, {"n", n}, {"lda", lda}, {"ldb", ldb}});
  const double a = scalar(call, "alpha", h, alpha);
  const long na = side == CUBLAS_SIDE_LEFT ? m : n;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  check_matrix(call, "a", A, na, na, lda, sizeof(double),
               side == CUBLAS_SIDE_LEFT ? "m (side LEFT)" : "n (side RIGHT)");
  check_matrix(call, "b", B, m, n, ldb, sizeof(double), "m");
  char what[128];
  snprintf(what, sizeof what, "%s(%s, %s, %s, m=%ld, n=%ld, lda=%ld, ldb=%ld)", call,
           side == CUBLAS_SIDE_LEFT ? "LEFT" : "RIGHT",
           uplo == CUBLAS_FILL_MODE_LOWER ? "LOWER" : "UPPER", opname(trans), (long)m, (long)n,
           (long)lda, (long)ldb);
  const std::vector<int64_t> args = with_offsets({side, uplo, trans, diag, m, n, lda, ldb}, {A, B},
                                                 sizeof(double));
  const bool large = is_large((double)m * (double)n * (double)na);
  blas_enqueue(h, what, [=] {
    if (large) { /* not computed: B is left as it is */
      log_range(call, args, (uint64_t)(side == CUBLAS_SIDE_LEFT ? n : m), 0, 0);
      return;
    }
    cblas_dtrsm(CblasColMajor, side == CUBLAS_SIDE_LEFT ? CblasLeft : CblasRight,
                uplo == CUBLAS_FILL_MODE_LOWER ? CblasLower : CblasUpper, cb(trans),
                diag == CUBLAS_DIAG_UNIT ? CblasUnit : CblasNonUnit, (int)m, (int)n, a, A, (int)lda,
                B, (int)ldb);
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDtrsm(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo,
                           cublasOperation_t trans, cublasDiagType_t diag, int m, int n,
                           const double *alpha, const double *A, int lda, double *B, int ldb) {
  return dtrsm("cublasDtrsm", h, side, uplo, trans, diag, m, n, alpha, A, lda, B, ldb);
}

cublasStatus_t cublasDtrsm_64(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo,
                              cublasOperation_t trans, cublasDiagType_t diag, int64_t m, int64_t n,
                              const double *alpha, const double *A, int64_t lda, double *B,
                              int64_t ldb) {
  return dtrsm("cublasDtrsm_64", h, side, uplo, trans, diag, m, n, alpha, A, lda, B, ldb);
}

/* y = alpha A x + beta y, A (n, n) symmetric, only its uplo triangle read; x and y of n elements
 * incx and incy apart; with beta == 0 y is not read (cuBLAS's rule: y need not hold numbers), so
 * it is zeroed before the BLAS call. The 64-bit entry points, run by OpenBLAS's 32-bit interface:
 * sizes past INT_MAX and negative increments are not modelled (refused). T is float or double
 * (a C++ template inside the C entry points' block). */
extern "C++" {
template <typename T>
static cublasStatus_t symv_64(const char *call, cublasHandle_t h, cublasFillMode_t uplo, int64_t n,
                              const T *alpha, const T *A, int64_t lda, const T *x, int64_t incx,
                              const T *beta, T *y, int64_t incy) {
  check_handle(call, h);
  check_fill(call, uplo);
  check_dims(call, {{"n", (long)n}});
  if (incx == 0 || incy == 0)
    fail(EMU_BADARG, "%s: incx = %ld, incy = %ld: 0", call, (long)incx, (long)incy);
  if (incx < 0 || incy < 0)
    fail(EMU_BADARG, "%s: negative increments are not modelled (incx %ld, incy %ld)", call,
         (long)incx, (long)incy);
  if (n > INT_MAX || lda > INT_MAX || incx > INT_MAX || incy > INT_MAX)
    fail(EMU_BADARG, "%s: sizes past INT_MAX are not modelled (n %ld, lda %ld)", call, (long)n,
         (long)lda);
  const T a = scalar(call, "alpha", h, alpha), b = scalar(call, "beta", h, beta);
  check_matrix(call, "a", A, n, n, lda, sizeof(T), "n");
  if (n == 0) return CUBLAS_STATUS_SUCCESS;
  const size_t xlen = (size_t)(n - 1) * (size_t)incx + 1, ylen = (size_t)(n - 1) * (size_t)incy + 1;
  check_device_range(call, "x", x, xlen * sizeof(T));
  check_device_range(call, "y", y, ylen * sizeof(T));
  /* y must not overlap the inputs */
  const T *y0 = y, *y1 = y + ylen, *aend = A + (size_t)lda * (size_t)(n - 1) + (size_t)n;
  if ((A < y1 && y0 < aend) || (x < y1 && y0 < x + xlen))
    fail(EMU_BADARG, "%s: y overlaps %s", call, (A < y1 && y0 < aend) ? "A" : "x");
  char what[160];
  snprintf(what, sizeof what, "%s(%s, n=%ld, lda=%ld, incx=%ld, incy=%ld)", call,
           uplo == CUBLAS_FILL_MODE_LOWER ? "LOWER" : "UPPER", (long)n, (long)lda, (long)incx,
           (long)incy);
  const CBLAS_UPLO cu = uplo == CUBLAS_FILL_MODE_LOWER ? CblasLower : CblasUpper;
  const std::vector<int64_t> args = with_offsets({uplo, n, lda, incx, incy}, {A, x, y}, sizeof(T));
  blas_enqueue(h, what, [=] {
    const picks p = run_picks(call, args, (uint64_t)n, (double)n * (double)n);
    if (!p.all) { /* entry e of y: row e of A, from the stored triangle's row e and column e */
      const bool lo = uplo == CUBLAS_FILL_MODE_LOWER;
      for (uint64_t e : p.idx) {
        T acc = (T)0;
        for (uint64_t j = 0; j < (uint64_t)n; j++) {
          const bool row = lo ? j <= e : j >= e; /* A(e, j) stored at (e, j), else at (j, e) */
          const T v = row ? A[e + j * (uint64_t)lda] : A[j + e * (uint64_t)lda];
          acc += v * x[j * (uint64_t)incx];
        }
        T &ye = y[e * (uint64_t)incy];
        ye = b == (T)0 ? a * acc : a * acc + b * ye;
      }
      return;
    }
    if (b == (T)0)
      for (int64_t i = 0; i < n; i++) y[(size_t)i * (size_t)incy] = (T)0;
    /* OpenBLAS's lower SYMV kernels read a few elements past the last column (harmless in
     * ordinary memory, a fault at the arena's guard page): they get a padded copy of A */
    std::vector<T> Ac((size_t)lda * (size_t)(n - 1) + (size_t)n + 64);
    memcpy(Ac.data(), A, ((size_t)lda * (size_t)(n - 1) + (size_t)n) * sizeof(T));
    if constexpr (sizeof(T) == sizeof(double)) {
      cblas_dsymv(CblasColMajor, cu, (int)n, a, Ac.data(), (int)lda, x, (int)incx, b, y,
                  (int)incy);
    } else {
      cblas_ssymv(CblasColMajor, cu, (int)n, a, Ac.data(), (int)lda, x, (int)incx, b, y,
                  (int)incy);
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}
} /* extern "C++" */

cublasStatus_t cublasDsymv_64(cublasHandle_t h, cublasFillMode_t uplo, int64_t n,
                              const double *alpha, const double *A, int64_t lda, const double *x,
                              int64_t incx, const double *beta, double *y, int64_t incy) {
  return symv_64("cublasDsymv_64", h, uplo, n, alpha, A, lda, x, incx, beta, y, incy);
}

cublasStatus_t cublasSsymv_64(cublasHandle_t h, cublasFillMode_t uplo, int64_t n,
                              const float *alpha, const float *A, int64_t lda, const float *x,
                              int64_t incx, const float *beta, float *y, int64_t incy) {
  return symv_64("cublasSsymv_64", h, uplo, n, alpha, A, lda, x, incx, beta, y, incy);
}

/* y = alpha op(A) x + beta y, A (m, n) column-major; x and y of the lengths op(A) gives,
 * incx and incy apart; with beta == 0 y is not read (zeroed first, as for symv). The 64-bit
 * entry point run by OpenBLAS's 32-bit interface, under symv_64's rules. */
cublasStatus_t cublasDgemv_64(cublasHandle_t h, cublasOperation_t trans, int64_t m, int64_t n,
                              const double *alpha, const double *A, int64_t lda, const double *x,
                              int64_t incx, const double *beta, double *y, int64_t incy) {
  const char *call = "cublasDgemv_64";
  check_handle(call, h);
  check_op(call, "trans", trans);
  check_dims(call, {{"m", (long)m}, {"n", (long)n}});
  if (incx == 0 || incy == 0)
    fail(EMU_BADARG, "%s: incx = %ld, incy = %ld: 0", call, (long)incx, (long)incy);
  if (incx < 0 || incy < 0)
    fail(EMU_BADARG, "%s: negative increments are not modelled (incx %ld, incy %ld)", call,
         (long)incx, (long)incy);
  if (m > INT_MAX || n > INT_MAX || lda > INT_MAX || incx > INT_MAX || incy > INT_MAX)
    fail(EMU_BADARG, "%s: sizes past INT_MAX are not modelled (m %ld, n %ld, lda %ld)", call,
         (long)m, (long)n, (long)lda);
  const double a = scalar(call, "alpha", h, alpha), b = scalar(call, "beta", h, beta);
  check_matrix(call, "a", A, m, n, lda, sizeof(double), "m");
  const int64_t xn = trans == CUBLAS_OP_N ? n : m, yn = trans == CUBLAS_OP_N ? m : n;
  if (yn == 0) return CUBLAS_STATUS_SUCCESS;
  const size_t xlen = xn > 0 ? (size_t)(xn - 1) * (size_t)incx + 1 : 0,
               ylen = (size_t)(yn - 1) * (size_t)incy + 1;
  if (xlen) check_device_range(call, "x", x, xlen * sizeof(double));
  check_device_range(call, "y", y, ylen * sizeof(double));
  const double *y0 = y, *y1 = y + ylen;
  const double *aend = m && n ? A + (size_t)lda * (size_t)(n - 1) + (size_t)m : A;
  if ((A < y1 && y0 < aend) || (xlen && x < y1 && y0 < x + xlen))
    fail(EMU_BADARG, "%s: y overlaps %s", call, (A < y1 && y0 < aend) ? "A" : "x");
  char what[160];
  snprintf(what, sizeof what, "%s(%s, m=%ld, n=%ld, lda=%ld, incx=%ld, incy=%ld)", call,
           opname(trans), (long)m, (long)n, (long)lda, (long)incx, (long)incy);
  const std::vector<int64_t> args = with_offsets({trans, m, n, lda, incx, incy}, {A, x, y},
                                                 sizeof(double));
  blas_enqueue(h, what, [=] {
    const picks p = run_picks(call, args, (uint64_t)yn, (double)m * (double)n);
    if (!p.all) { /* entry e of y: row e of A (N, ld apart) or its column e (T) times x */
      for (uint64_t e : p.idx) {
        const double dot = trans == CUBLAS_OP_N
                               ? cblas_ddot((int)n, A + e, (int)lda, x, (int)incx)
                               : cblas_ddot((int)m, A + e * (uint64_t)lda, 1, x, (int)incx);
        double &ye = y[e * (uint64_t)incy];
        ye = b == 0.0 ? a * dot : a * dot + b * ye;
      }
      return;
    }
    if (b == 0.0)
      for (int64_t i = 0; i < yn; i++) y[(size_t)i * (size_t)incy] = 0.0;
    cblas_dgemv(CblasColMajor, cb(trans), (int)m, (int)n, a, A, (int)(lda > 0 ? lda : 1), x,
                (int)incx, b, y, (int)incy);
  });
  return CUBLAS_STATUS_SUCCESS;
}

/* C (m, n) = alpha op(A) op(B) + beta C in float64, column-major, under cublasSgemm's rules (C
 * apart from A and B; with beta == 0 C is not read, zeroed first). The 64-bit entry point, sizes
 * past INT_MAX not modelled. */
cublasStatus_t cublasDgemm_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                              int64_t m, int64_t n, int64_t k, const double *alpha, const double *A,
                              int64_t lda, const double *B, int64_t ldb, const double *beta,
                              double *C, int64_t ldc) {
  const char *call = "cublasDgemm_64";
  check_handle(call, h);
  check_op(call, "transa", ta);
  check_op(call, "transb", tb);
  check_dims(call, {{"m", (long)m}, {"n", (long)n}, {"k", (long)k}});
  for (int64_t v : {m, n, k, lda, ldb, ldc})
    if (v > INT_MAX)
      fail(EMU_BADARG, "%s: sizes past INT_MAX are not modelled (m %ld, n %ld, k %ld)", call,
           (long)m, (long)n, (long)k);
  const double a = scalar(call, "alpha", h, alpha), b = scalar(call, "beta", h, beta);
  const long ar = ta == CUBLAS_OP_N ? m : k, ac = ta == CUBLAS_OP_N ? k : m;
  const long br = tb == CUBLAS_OP_N ? k : n, bc = tb == CUBLAS_OP_N ? n : k;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (k > 0) {
    check_matrix(call, "a", A, ar, ac, lda, sizeof(double),
                 ta == CUBLAS_OP_N ? "m (rows of A, transa N)" : "k (rows of A, transa T)");
    check_matrix(call, "b", B, br, bc, ldb, sizeof(double),
                 tb == CUBLAS_OP_N ? "k (rows of B, transb N)" : "n (rows of B, transb T)");
  }
  check_matrix(call, "c", C, m, n, ldc, sizeof(double), "m");
  const void *in[2] = {A, B};
  const size_t inext[2] = {((size_t)lda * (size_t)(ac - 1) + (size_t)ar) * sizeof(double),
                           ((size_t)ldb * (size_t)(bc - 1) + (size_t)br) * sizeof(double)};
  check_gemm_apart(call, C, ((size_t)ldc * (size_t)(n - 1) + (size_t)m) * sizeof(double), in,
                   inext, k);
  char what[160];
  snprintf(what, sizeof what, "%s(%s, %s, m=%ld, n=%ld, k=%ld, lda=%ld, ldb=%ld, ldc=%ld)", call,
           opname(ta), opname(tb), (long)m, (long)n, (long)k, (long)lda, (long)ldb, (long)ldc);
  const std::vector<int64_t> args = with_offsets({ta, tb, m, n, k, lda, ldb, ldc}, {A, B, C},
                                                 sizeof(double));
  blas_enqueue(h, what, [=] {
    const picks p = run_picks(call, args, (uint64_t)n, (double)m * (double)n * (double)k);
    const int64_t nj = p.all ? n : (int64_t)p.idx.size();
    if (b == 0.0)
      for (int64_t jj = 0; jj < nj; jj++) {
        const size_t j = p.all ? (size_t)jj : (size_t)p.idx[(size_t)jj];
        for (int64_t i = 0; i < m; i++) C[j * (size_t)ldc + (size_t)i] = 0.0;
      }
    if (p.all) {
      cblas_dgemm(CblasColMajor, cb(ta), cb(tb), (int)m, (int)n, (int)k, a, A, (int)lda, B,
                  (int)ldb, b, C, (int)ldc);
      return;
    }
    /* column j of C from column j of op(B), as in sgemm_batched */
    for (uint64_t j : p.idx)
      cblas_dgemm(CblasColMajor, cb(ta), cb(tb), (int)m, 1, (int)k, a, A, (int)lda,
                  B + (tb == CUBLAS_OP_N ? j * (uint64_t)ldb : j), (int)ldb, b,
                  C + j * (uint64_t)ldc, (int)ldc);
  });
  return CUBLAS_STATUS_SUCCESS;
}

/* ---- cuSOLVER ---- */

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *h) {
  *h = new sgn_emu_cusolver{nullptr};
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t h) {
  check_handle("cusolverDnDestroy", h);
  delete h;
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t h, cudaStream_t st) {
  check_handle("cusolverDnSetStream", h);
  h->stream = st;
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverGetProperty(libraryPropertyType type, int *value) {
  *value = type == MAJOR_VERSION ? 12 : 0;
  return CUSOLVER_STATUS_SUCCESS;
}

/* the emulator's trtri workspaces: plausible sizes that a caller must ask for and honour, a
 * host one included so that its path runs */
static size_t trtri_device_bytes(int64_t n) { return n < 1 ? 8 : (size_t)(64 * n + 128) * 8; }
static size_t trtri_host_bytes(int64_t n) { return n < 1 ? 0 : 64; }

static void check_trtri(const char *call, cusolverDnHandle_t h, cublasFillMode_t uplo,
                        cublasDiagType_t diag, int64_t n, cudaDataType type, int64_t lda) {
  check_handle(call, h);
  check_fill(call, uplo);
  if (diag != CUBLAS_DIAG_NON_UNIT && diag != CUBLAS_DIAG_UNIT)
    fail(EMU_BADARG, "%s: diag = %d", call, diag);
  check_dims(call, {{"n", (long)n}});
  if (type != CUDA_R_64F) fail(EMU_BADARG, "%s: only CUDA_R_64F is modelled", call);
  if (lda < (n > 1 ? n : 1))
    fail(EMU_BADARG, "%s: lda = %ld < max(1, n = %ld)", call, (long)lda, (long)n);
  if (n > INT_MAX || lda > INT_MAX)
    fail(EMU_BADARG, "%s: sizes past INT_MAX are not modelled (n %ld)", call, (long)n);
}

cusolverStatus_t cusolverDnXtrtri_bufferSize(cusolverDnHandle_t h, cublasFillMode_t uplo,
                                             cublasDiagType_t diag, int64_t n,
                                             cudaDataType dataTypeA, void *A, int64_t lda,
                                             size_t *workspaceInBytesOnDevice,
                                             size_t *workspaceInBytesOnHost) {
  const char *call = "cusolverDnXtrtri_bufferSize";
  check_trtri(call, h, uplo, diag, n, dataTypeA, lda);
  if (!A) fail(EMU_BADARG, "%s: A is NULL", call);
  if (!workspaceInBytesOnDevice || !workspaceInBytesOnHost)
    fail(EMU_BADARG, "%s: a workspace size pointer is NULL", call);
  *workspaceInBytesOnDevice = trtri_device_bytes(n);
  *workspaceInBytesOnHost = trtri_host_bytes(n);
  return CUSOLVER_STATUS_SUCCESS;
}

/* A (n, n) uplo triangle <- its inverse in place (LAPACK's dtrtri); devInfo = i > 0 when A(i, i)
 * (1-based) is zero. The host workspace is written when the queued work runs: a caller that
 * frees it before the stream synchronizes reads as a use after free. */
cusolverStatus_t cusolverDnXtrtri(cusolverDnHandle_t h, cublasFillMode_t uplo,
                                  cublasDiagType_t diag, int64_t n, cudaDataType dataTypeA, void *A,
                                  int64_t lda, void *bufferOnDevice,
                                  size_t workspaceInBytesOnDevice, void *bufferOnHost,
                                  size_t workspaceInBytesOnHost, int *devInfo) {
  const char *call = "cusolverDnXtrtri";
  check_trtri(call, h, uplo, diag, n, dataTypeA, lda);
  check_matrix(call, "a", A, n, n, lda, sizeof(double), "n");
  if (workspaceInBytesOnDevice < trtri_device_bytes(n))
    fail(EMU_BADARG,
         "%s: workspaceInBytesOnDevice = %zu < %zu, what cusolverDnXtrtri_bufferSize gives for "
         "n = %ld",
         call, workspaceInBytesOnDevice, trtri_device_bytes(n), (long)n);
  if (workspaceInBytesOnHost < trtri_host_bytes(n))
    fail(EMU_BADARG,
         "%s: workspaceInBytesOnHost = %zu < %zu, what cusolverDnXtrtri_bufferSize gives for "
         "n = %ld",
         call, workspaceInBytesOnHost, trtri_host_bytes(n), (long)n);
  check_device_range(call, "bufferOnDevice", bufferOnDevice, workspaceInBytesOnDevice);
  if (workspaceInBytesOnHost > 0 && (!bufferOnHost || is_device(bufferOnHost)))
    fail(EMU_BADARG, "%s: bufferOnHost is %s", call, bufferOnHost ? "device memory" : "NULL");
  check_device_range(call, "devInfo", devInfo, sizeof(int));
  char what[160];
  snprintf(what, sizeof what, "%s(%s, %s, n=%ld, lda=%ld)", call,
           uplo == CUBLAS_FILL_MODE_LOWER ? "LOWER" : "UPPER",
           diag == CUBLAS_DIAG_UNIT ? "UNIT" : "NON_UNIT", (long)n, (long)lda);
  const size_t hbytes = workspaceInBytesOnHost;
  const std::vector<int64_t> args = with_offsets({uplo, diag, n, lda}, {A}, sizeof(double));
  enqueue(h->stream, what, [=] {
    poison(bufferOnDevice, workspaceInBytesOnDevice); /* the workspace is scratch */
    if (hbytes) memset(bufferOnHost, 0xff, hbytes);
    /* large-index mode: the trailing block's inverse, which is that block of A^-1 */
    const int64_t n0 = factor_from(call, args, n);
    lapack_int info = 0;
    if (n > 0)
      info = LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, uplo == CUBLAS_FILL_MODE_LOWER ? 'L' : 'U',
                                 diag == CUBLAS_DIAG_UNIT ? 'U' : 'N', (lapack_int)(n - n0),
                                 (double *)A + (size_t)n0 * ((size_t)lda + 1), (lapack_int)lda);
    if (info < 0) fail(EMU_BADARG, "%s: LAPACK rejected argument %d", call, (int)-info);
    *devInfo = info > 0 ? (int)(info + n0) : 0;
  });
  return CUSOLVER_STATUS_SUCCESS;
}

/* the emulator's dpotrf workspace: a plausible size that a caller must ask for and honour */
static int potrf_lwork(int n) { return n < 1 ? 1 : 64 * n + 128; }

cusolverStatus_t cusolverDnDpotrf_bufferSize(cusolverDnHandle_t h, cublasFillMode_t uplo, int n,
                                             double *A, int lda, int *lwork) {
  const char *call = "cusolverDnDpotrf_bufferSize";
  check_handle(call, h);
  check_fill(call, uplo);
  check_dims(call, {{"n", n}});
  if (lda < (n > 1 ? n : 1)) fail(EMU_BADARG, "%s: lda = %d < max(1, n = %d)", call, lda, n);
  if (!A) fail(EMU_BADARG, "%s: A is NULL", call);
  if (!lwork) fail(EMU_BADARG, "%s: lwork is NULL", call);
  *lwork = potrf_lwork(n);
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDpotrf(cusolverDnHandle_t h, cublasFillMode_t uplo, int n, double *A,
                                  int lda, double *work, int lwork, int *devInfo) {
  const char *call = "cusolverDnDpotrf";
  check_handle(call, h);
  check_fill(call, uplo);
  check_dims(call, {{"n", n}});
  check_matrix(call, "a", A, n, n, lda, sizeof(double), "n");
  if (lwork < potrf_lwork(n))
    fail(EMU_BADARG, "%s: Lwork = %d < %d, what cusolverDnDpotrf_bufferSize gives for n = %d",
         call, lwork, potrf_lwork(n), n);
  check_device_range(call, "workspace (Lwork doubles)", work, (size_t)lwork * sizeof(double));
  check_device_range(call, "devInfo", devInfo, sizeof(int));
  char what[128];
  snprintf(what, sizeof what, "%s(%s, n=%d, lda=%d, Lwork=%d)", call,
           uplo == CUBLAS_FILL_MODE_LOWER ? "LOWER" : "UPPER", n, lda, lwork);
  const std::vector<int64_t> args = with_offsets({uplo, n, lda}, {A}, sizeof(double));
  enqueue(h->stream, what, [=] {
    poison(work, (size_t)lwork * sizeof(double)); /* the workspace is scratch */
    const int64_t n0 = factor_from(call, args, n); /* large-index mode: the trailing block */
    lapack_int info = 0;
    if (n > 0)
      info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, uplo == CUBLAS_FILL_MODE_LOWER ? 'L' : 'U',
                                 (lapack_int)(n - n0), A + (size_t)n0 * ((size_t)lda + 1), lda);
    if (info < 0) fail(EMU_BADARG, "%s: LAPACK rejected argument %d", call, (int)-info);
    *devInfo = info > 0 ? (int)(info + n0) : 0;
  });
  return CUSOLVER_STATUS_SUCCESS;
}

/* The 64-bit API's options: defaults only. */
cusolverStatus_t cusolverDnCreateParams(cusolverDnParams_t *params) {
  if (!params) fail(EMU_BADARG, "cusolverDnCreateParams: params is NULL");
  *params = new sgn_emu_cusolver_params{1};
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDestroyParams(cusolverDnParams_t params) {
  check_handle("cusolverDnDestroyParams", params);
  delete params;
  return CUSOLVER_STATUS_SUCCESS;
}

/* Xpotrf's workspaces as the emulator asks for them: on the device dpotrf's (potrf_lwork
 * doubles), and a small host one, which cuSOLVER may or may not want: a caller must query and
 * honour both. */
static size_t xpotrf_dev_bytes(int64_t n) { return (size_t)potrf_lwork((int)n) * sizeof(double); }
static const size_t XPOTRF_HOST_BYTES = 64;

/* the arguments both Xpotrf calls check: handle, params, uplo, n, lda and the float64 types */
static void xpotrf_args(const char *call, cusolverDnHandle_t h, cusolverDnParams_t params,
                        cublasFillMode_t uplo, int64_t n, cudaDataType dataTypeA, int64_t lda,
                        cudaDataType computeType) {
  check_handle(call, h);
  if (!params) fail(EMU_BADARG, "%s: params is NULL (cusolverDnCreateParams)", call);
  check_fill(call, uplo);
  check_dims(call, {{"n", n}});
  check_int(call, {{"n", n}, {"lda", lda}});
  if (dataTypeA != CUDA_R_64F || computeType != CUDA_R_64F)
    fail(EMU_BADARG, "%s: only dataTypeA = computeType = CUDA_R_64F is modelled (got %d, %d)", call,
         (int)dataTypeA, (int)computeType);
  if (lda < (n > 1 ? n : 1))
    fail(EMU_BADARG, "%s: lda = %ld < max(1, n = %ld)", call, (long)lda, (long)n);
}

cusolverStatus_t cusolverDnXpotrf_bufferSize(cusolverDnHandle_t h, cusolverDnParams_t params,
                                             cublasFillMode_t uplo, int64_t n,
                                             cudaDataType dataTypeA, const void *A, int64_t lda,
                                             cudaDataType computeType,
                                             size_t *workspaceInBytesOnDevice,
                                             size_t *workspaceInBytesOnHost) {
  const char *call = "cusolverDnXpotrf_bufferSize";
  xpotrf_args(call, h, params, uplo, n, dataTypeA, lda, computeType);
  if (!A) fail(EMU_BADARG, "%s: A is NULL", call);
  if (!workspaceInBytesOnDevice || !workspaceInBytesOnHost)
    fail(EMU_BADARG, "%s: a workspace size pointer is NULL", call);
  *workspaceInBytesOnDevice = xpotrf_dev_bytes(n);
  *workspaceInBytesOnHost = XPOTRF_HOST_BYTES;
  return CUSOLVER_STATUS_SUCCESS;
}

/* A (n, n) column-major, its uplo triangle <- the Cholesky factor; *info = 0, or the order of
 * the first minor that is not positive definite. Both workspaces are scratch for the whole call,
 * so they are scribbled on when it runs (at the stream's next synchronization): a host buffer
 * freed before then is a use after free. */
cusolverStatus_t cusolverDnXpotrf(cusolverDnHandle_t h, cusolverDnParams_t params,
                                  cublasFillMode_t uplo, int64_t n, cudaDataType dataTypeA, void *A,
                                  int64_t lda, cudaDataType computeType, void *bufferOnDevice,
                                  size_t workspaceInBytesOnDevice, void *bufferOnHost,
                                  size_t workspaceInBytesOnHost, int *info) {
  const char *call = "cusolverDnXpotrf";
  xpotrf_args(call, h, params, uplo, n, dataTypeA, lda, computeType);
  double *a = (double *)A;
  check_matrix(call, "a", a, n, n, lda, sizeof(double), "n");
  if (workspaceInBytesOnDevice < xpotrf_dev_bytes(n))
    fail(EMU_BADARG,
         "%s: workspaceInBytesOnDevice = %zu < %zu, what cusolverDnXpotrf_bufferSize gives for "
         "n = %ld",
         call, workspaceInBytesOnDevice, xpotrf_dev_bytes(n), (long)n);
  if (workspaceInBytesOnHost < XPOTRF_HOST_BYTES)
    fail(EMU_BADARG,
         "%s: workspaceInBytesOnHost = %zu < %zu, what cusolverDnXpotrf_bufferSize gives", call,
         workspaceInBytesOnHost, XPOTRF_HOST_BYTES);
  check_device_range(call, "bufferOnDevice", bufferOnDevice, workspaceInBytesOnDevice);
  if (!bufferOnHost || is_device(bufferOnHost))
    fail(EMU_BADARG, "%s: bufferOnHost is %s", call, bufferOnHost ? "device memory" : "NULL");
  check_device_range(call, "info", info, sizeof(int));
  char what[160];
  snprintf(what, sizeof what, "%s(%s, n=%ld, lda=%ld, device %zu B, host %zu B)", call,
           uplo == CUBLAS_FILL_MODE_LOWER ? "LOWER" : "UPPER", (long)n, (long)lda,
           workspaceInBytesOnDevice, workspaceInBytesOnHost);
  const std::vector<int64_t> args = with_offsets({uplo, n, lda}, {A}, sizeof(double));
  enqueue(h->stream, what, [=] {
    poison(bufferOnDevice, workspaceInBytesOnDevice); /* the workspaces are scratch */
    memset(bufferOnHost, 0xa5, workspaceInBytesOnHost);
    /* large-index mode: the factor of the trailing block taken alone (README) */
    const int64_t n0 = factor_from(call, args, n);
    lapack_int r = 0;
    if (n > 0)
      r = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, uplo == CUBLAS_FILL_MODE_LOWER ? 'L' : 'U',
                              (int)(n - n0), a + (size_t)n0 * ((size_t)lda + 1), (int)lda);
    if (r < 0) fail(EMU_BADARG, "%s: LAPACK rejected argument %d", call, (int)-r);
    *info = r > 0 ? (int)(r + n0) : 0;
  });
  return CUSOLVER_STATUS_SUCCESS;
}

/* ---- cuFFT ---- */

namespace {
struct fft_plan {
  bool made, autoalloc;
  int n, batch, istride, idist, ostride, odist;
  bool iembed, oembed;
  int inembed, onembed;
  cufftType type;
  size_t ws;
  void *work;     /* the caller's work area (auto-allocation off) */
  void *own_work; /* ours (auto-allocation on) */
  cudaStream_t stream;
};
std::map<int, fft_plan> g_plans;
int g_next_plan = 1;

fft_plan &plan_of(const char *call, cufftHandle h) {
  auto it = g_plans.find(h);
  if (it == g_plans.end()) fail(EMU_BADARG, "%s: plan %d was not created (or is destroyed)", call, h);
  return it->second;
}
} // namespace

cufftResult cufftCreate(cufftHandle *plan) {
  *plan = g_next_plan++;
  fft_plan p = {};
  p.autoalloc = true;
  g_plans[*plan] = p;
  return CUFFT_SUCCESS;
}

cufftResult cufftDestroy(cufftHandle plan) {
  fft_plan &p = plan_of("cufftDestroy", plan);
  if (p.own_work) cudaFree(p.own_work);
  g_plans.erase(plan);
  return CUFFT_SUCCESS;
}

cufftResult cufftSetStream(cufftHandle plan, cudaStream_t st) {
  plan_of("cufftSetStream", plan).stream = st;
  return CUFFT_SUCCESS;
}

cufftResult cufftSetAutoAllocation(cufftHandle plan, int a) {
  fft_plan &p = plan_of("cufftSetAutoAllocation", plan);
  if (p.made) fail(EMU_BADARG, "cufftSetAutoAllocation: plan %d is already made", plan);
  p.autoalloc = a != 0;
  return CUFFT_SUCCESS;
}

cufftResult cufftSetWorkArea(cufftHandle plan, void *work) {
  const char *call = "cufftSetWorkArea";
  fft_plan &p = plan_of(call, plan);
  if (!p.made) fail(EMU_BADARG, "%s: plan %d is not made yet", call, plan);
  if (p.ws > 0) check_device_range(call, "workArea (the plan's work size)", work, p.ws);
  p.work = work;
  return CUFFT_SUCCESS;
}

cufftResult cufftMakePlanMany(cufftHandle plan, int rank, int *n, int *inembed, int istride,
                              int idist, int *onembed, int ostride, int odist, cufftType type,
                              int batch, size_t *workSize) {
  const char *call = "cufftMakePlanMany";
  fft_plan &p = plan_of(call, plan);
  if (rank != 1) fail(EMU_BADARG, "%s: rank %d (the emulator models rank 1)", call, rank);
  if (!n || n[0] < 1) fail(EMU_BADARG, "%s: n[0] must be >= 1", call);
  if (type != CUFFT_R2C && type != CUFFT_C2R)
    fail(EMU_BADARG, "%s: type %#x (the emulator models R2C and C2R)", call, type);
  if (batch < 1) fail(EMU_BADARG, "%s: batch = %d < 1", call, batch);
  if (!workSize) fail(EMU_BADARG, "%s: workSize is NULL", call);
  const int N = n[0], nc = N / 2 + 1;
  const int real_n = N, in_n = type == CUFFT_R2C ? real_n : nc, out_n = type == CUFFT_R2C ? nc : real_n;
  p.n = N, p.batch = batch, p.type = type;
  /* NULL embeds: the basic layout, strides and distances ignored (cuFFT's rule) */
  p.iembed = inembed != nullptr, p.oembed = onembed != nullptr;
  p.istride = inembed ? istride : 1, p.idist = inembed ? idist : in_n;
  p.ostride = onembed ? ostride : 1, p.odist = onembed ? odist : out_n;
  p.inembed = inembed ? inembed[0] : in_n, p.onembed = onembed ? onembed[0] : out_n;
  if (p.istride < 1 || p.ostride < 1) fail(EMU_BADARG, "%s: istride / ostride < 1", call);
  if (p.inembed < in_n)
    fail(EMU_BADARG, "%s: inembed[0] = %d < %d input elements per transform", call, p.inembed, in_n);
  if (p.onembed < out_n)
    fail(EMU_BADARG, "%s: onembed[0] = %d < %d output elements per transform", call, p.onembed, out_n);
  if (batch > 1 && (p.idist < p.inembed * p.istride || p.odist < p.onembed * p.ostride))
    fail(EMU_BADARG, "%s: idist %d / odist %d smaller than one embedded transform: batches overlap",
         call, p.idist, p.odist);
  p.ws = (size_t)batch * (size_t)N * 8 + 4096; /* something a caller must provide */
  *workSize = p.ws;
  p.made = true;
  if (p.autoalloc && cudaMalloc(&p.own_work, p.ws) != cudaSuccess) return CUFFT_ALLOC_FAILED;
  return CUFFT_SUCCESS;
}

static cufftResult fft_exec(const char *call, cufftHandle plan, cufftType want, void *in,
                            void *out) {
  fft_plan &p = plan_of(call, plan);
  if (!p.made) fail(EMU_BADARG, "%s: plan %d is not made", call, plan);
  if (p.type != want) fail(EMU_BADARG, "%s: plan %d is of another type", call, plan);
  void *work = p.autoalloc ? p.own_work : p.work;
  if (!work)
    fail(EMU_BADARG, "%s: plan %d has auto-allocation off and no work area (cufftSetWorkArea)",
         call, plan);
  const bool r2c = want == CUFFT_R2C;
  const size_t isz = r2c ? sizeof(float) : 2 * sizeof(float), osz = r2c ? 2 * sizeof(float) : sizeof(float);
  const int in_n = r2c ? p.n : p.n / 2 + 1, out_n = r2c ? p.n / 2 + 1 : p.n;
  const size_t iext = ((size_t)(p.batch - 1) * p.idist + (size_t)(in_n - 1) * p.istride + 1) * isz;
  const size_t oext = ((size_t)(p.batch - 1) * p.odist + (size_t)(out_n - 1) * p.ostride + 1) * osz;
  check_device_range(call, "idata (batch x idist)", in, iext);
  check_device_range(call, "odata (batch x odist)", out, oext);
  check_device_range(call, "work area", work, p.ws);
  if (in == out) { /* in place: the real and complex rows must coincide */
    const size_t rd = r2c ? (size_t)p.idist : (size_t)p.odist, cd = r2c ? (size_t)p.odist : (size_t)p.idist;
    const size_t rs = r2c ? (size_t)p.istride : (size_t)p.ostride, cs = r2c ? (size_t)p.ostride : (size_t)p.istride;
    if (rd != 2 * cd || rs != 1 || cs != 1 || rd < 2 * (size_t)(p.n / 2 + 1))
      fail(EMU_BADARG, "%s: in-place transform needs unit strides, real distance = 2 x complex "
           "distance >= 2 (n/2 + 1); got real %zu, complex %zu", call, rd, cd);
  } else if ((uintptr_t)in < (uintptr_t)out + oext && (uintptr_t)out < (uintptr_t)in + iext) {
    fail(EMU_BADARG, "%s: idata and odata overlap without being the same pointer", call);
  }
  const fft_plan q = p;
  char what[160];
  snprintf(what, sizeof what, "%s(plan %d: n=%d, batch=%d, idist=%d, odist=%d)", call, plan, p.n,
           p.batch, p.idist, p.odist);
  enqueue(p.stream, what, [=] {
    poison(work, q.ws);
    int nn[1] = {q.n}, ie[1] = {q.inembed}, oe[1] = {q.onembed};
    fftwf_plan fp;
    if (r2c)
      fp = fftwf_plan_many_dft_r2c(1, nn, q.batch, (float *)in, ie, q.istride, q.idist,
                                   (fftwf_complex *)out, oe, q.ostride, q.odist, FFTW_ESTIMATE);
    else
      fp = fftwf_plan_many_dft_c2r(1, nn, q.batch, (fftwf_complex *)in, ie, q.istride, q.idist,
                                   (float *)out, oe, q.ostride, q.odist, FFTW_ESTIMATE);
    if (!fp) fail(EMU_BADARG, "%s: FFTW could not plan this layout", call);
    fftwf_execute(fp);
    fftwf_destroy_plan(fp);
  });
  return CUFFT_SUCCESS;
}

cufftResult cufftExecR2C(cufftHandle plan, cufftReal *idata, cufftComplex *odata) {
  return fft_exec("cufftExecR2C", plan, CUFFT_R2C, idata, odata);
}

cufftResult cufftExecC2R(cufftHandle plan, cufftComplex *idata, cufftReal *odata) {
  return fft_exec("cufftExecC2R", plan, CUFFT_C2R, idata, odata);
}

cufftResult cufftGetVersion(int *version) {
  *version = 12000;
  return CUFFT_SUCCESS;
}

/* ---- cuRAND ---- */

curandStatus_t curandGetVersion(int *version) {
  *version = 10400;
  return CURAND_STATUS_SUCCESS;
}

} /* extern "C" */
