/* cuda_runtime.h (emulator) — what the .cu files of src/backend/cuda/ use of the CUDA runtime and of the
 * device language, for g++ on the CPU (tests/cuda_emu/README.md). Force-included into every
 * translated .cu, as nvcc includes the real one. Kernels run in tests/cuda_emu/emu_runtime.cpp:
 * each CUDA thread a fiber, blocks one at a time, warps advancing together to each collective. */
#ifndef SGN_EMU_CUDA_RUNTIME_H
#define SGN_EMU_CUDA_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#endif

/* ---- runtime API ---- */

typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorLaunchFailure = 719,
} cudaError_t;

typedef enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
} cudaMemcpyKind;

typedef struct sgn_emu_stream *cudaStream_t;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major, minor;
  int multiProcessorCount;
};

typedef enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
} cudaFuncAttribute;

typedef enum libraryPropertyType_t { MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL } libraryPropertyType;

#ifdef __cplusplus
extern "C" {
#endif
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t st);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t st);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaStreamCreate(cudaStream_t *st);
cudaError_t cudaStreamDestroy(cudaStream_t st);
cudaError_t cudaStreamSynchronize(cudaStream_t st);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char *cudaGetErrorString(cudaError_t err);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device);
cudaError_t cudaRuntimeGetVersion(int *v);
cudaError_t cudaDriverGetVersion(int *v);
/* Stream capture and graphs (emu_runtime.cpp): while a stream captures, what is queued on it is
 * recorded instead of run; a synchronization, an allocation or free, or a copy to or from host
 * memory meanwhile is an error, as it invalidates the capture on a GPU. A launched graph queues
 * its recorded operations again. The capture mode is accepted and not modelled. */
typedef enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
} cudaStreamCaptureMode;
typedef struct sgn_emu_graph *cudaGraph_t;
typedef struct sgn_emu_graph *cudaGraphExec_t;
cudaError_t cudaStreamBeginCapture(cudaStream_t st, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t st, cudaGraph_t *graph);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t st);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);
/* Only cudaFuncAttributeMaxDynamicSharedMemorySize, up to 227 KB (sm_90's opt-in limit). */
cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value);
#ifdef __cplusplus
}
/* the runtime's C++ conveniences */
template <class T>
inline cudaError_t cudaMalloc(T **p, size_t bytes) { return cudaMalloc((void **)p, bytes); }
template <class T>
inline cudaError_t cudaMallocHost(T **p, size_t bytes) { return cudaMallocHost((void **)p, bytes); }
#endif

/* ---- the device language ---- */

#ifdef __cplusplus

/* Vector types: may_alias, as kernels read float arrays through them. */
struct __attribute__((aligned(8), may_alias)) float2 {
  float x, y;
};
struct __attribute__((aligned(16), may_alias)) float4 {
  float x, y, z, w;
};
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
/* Static shared memory: one copy per kernel (blocks run one at a time), in a section of its own
 * that the runtime fills with the poison pattern before each block. `used` keeps the compiler
 * from caching it across the runtime's calls (another fiber may write it there). */
#define __shared__ static __attribute__((section("sgn_emu_shared"), used, aligned(16)))
/* Dynamic shared memory: translate.py turns `extern __shared__ T name[];` into a pointer to the
 * launch's bytes (poisoned before each block, a PROT_NONE page right after them). */
namespace sgn_emu {
void *dynamic_shared(void);
}

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

/* the running fiber's coordinates, set by the scheduler at every switch */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

namespace sgn_emu {

/* Warp collectives: every lane of mask must arrive; the runtime checks it and computes. */
enum coll_kind { COLL_SHFL, COLL_SHFL_UP, COLL_SHFL_DOWN, COLL_SHFL_XOR, COLL_BALLOT, COLL_ANY,
                 COLL_ALL, COLL_SYNCWARP };
uint64_t warp_collective(coll_kind kind, unsigned mask, uint64_t value, int arg, int width,
                         const char *what, const char *file, int line);
void syncthreads(const char *file, int line);

template <typename T>
inline T shfl(coll_kind kind, unsigned mask, T v, int arg, int width, const char *what,
              const char *file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffle of a big type");
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof v);
  bits = warp_collective(kind, mask, bits, arg, width, what, file, line);
  T out;
  memcpy(&out, &bits, sizeof out);
  return out;
}

} /* namespace sgn_emu */

#define __syncthreads() ::sgn_emu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) \
  ((void)::sgn_emu::warp_collective(::sgn_emu::COLL_SYNCWARP, sgn_emu_mask_or_all(__VA_ARGS__), \
                                    0, 0, 32, "__syncwarp", __FILE__, __LINE__))
static inline unsigned sgn_emu_mask_or_all(unsigned m = 0xffffffffu) { return m; }
#define __shfl_sync(mask, v, src, ...) \
  ::sgn_emu::shfl(::sgn_emu::COLL_SHFL, mask, v, src, sgn_emu_width(__VA_ARGS__), "__shfl_sync", __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, d, ...) \
  ::sgn_emu::shfl(::sgn_emu::COLL_SHFL_UP, mask, v, d, sgn_emu_width(__VA_ARGS__), "__shfl_up_sync", __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, d, ...) \
  ::sgn_emu::shfl(::sgn_emu::COLL_SHFL_DOWN, mask, v, d, sgn_emu_width(__VA_ARGS__), "__shfl_down_sync", __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, d, ...) \
  ::sgn_emu::shfl(::sgn_emu::COLL_SHFL_XOR, mask, v, d, sgn_emu_width(__VA_ARGS__), "__shfl_xor_sync", __FILE__, __LINE__)
static inline int sgn_emu_width(int w = 32) { return w; }
#define __ballot_sync(mask, pred) \
  ((unsigned)::sgn_emu::warp_collective(::sgn_emu::COLL_BALLOT, mask, (pred) ? 1 : 0, 0, 32, "__ballot_sync", __FILE__, __LINE__))
#define __any_sync(mask, pred) \
  ((int)::sgn_emu::warp_collective(::sgn_emu::COLL_ANY, mask, (pred) ? 1 : 0, 0, 32, "__any_sync", __FILE__, __LINE__))
#define __all_sync(mask, pred) \
  ((int)::sgn_emu::warp_collective(::sgn_emu::COLL_ALL, mask, (pred) ? 1 : 0, 0, 32, "__all_sync", __FILE__, __LINE__))

/* One thread runs at a time: atomics are plain read-modify-writes. */
template <typename T>
inline T atomicAdd(T *p, T v) {
  const T old = *p;
  *p = old + v;
  return old;
}
inline int atomicMin(int *p, int v) {
  const int old = *p;
  if (v < old) *p = v;
  return old;
}
inline int atomicMax(int *p, int v) {
  const int old = *p;
  if (v > old) *p = v;
  return old;
}

/* Correctly rounded, never contracted: the host compiler does not form FMAs on x86-64 without
 * -mfma, and these are single IEEE operations. */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return sqrt(a); }
inline float __double2float_rn(double a) { return (float)a; }
inline unsigned __float_as_uint(float a) {
  unsigned u;
  memcpy(&u, &a, sizeof u);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float a;
  memcpy(&a, &u, sizeof a);
  return a;
}
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __clz(int v) { return v ? __builtin_clz((unsigned)v) : 32; }

/* ---- launches: `k<<<g, b, sh, st>>>(args)` is rewritten to SGN_EMU_LAUNCH(k, g, b, sh, st)(args) */

namespace sgn_emu {

struct launch_cfg {
  const void *fn; /* the kernel: its cudaFuncSetAttribute limit */
  const char *name, *file;
  int line;
  dim3 grid, block;
  size_t shmem;
  cudaStream_t stream;
};

/* Checks the configuration and the pointer arguments, then queues body on the stream. vals:
 * every argument as an integer (large-index mode shows them to the test's pick function). */
void enqueue_kernel(const launch_cfg &cfg, std::shared_ptr<void> args, void (*run)(void *),
                    const void *const *ptrs, int nptrs, const int64_t *vals, int nvals);

template <typename T>
inline void collect_ptr(const T &v, const void **out, int &n) {
  if constexpr (std::is_pointer<T>::value) out[n++] = (const void *)v;
  else (void)v, (void)out, (void)n;
}

/* an argument as an integer: its value (integers, enums), its address (pointers), else 0 */
template <typename T>
inline int64_t arg_value(const T &v) {
  if constexpr (std::is_pointer<T>::value) return (int64_t)(intptr_t)v;
  else if constexpr (std::is_integral<T>::value || std::is_enum<T>::value) return (int64_t)v;
  else return (void)v, 0;
}

template <typename... P>
struct launcher {
  void (*fn)(P...);
  launch_cfg cfg;
  using args_t = std::tuple<std::decay_t<P>...>;
  struct bound {
    void (*fn)(P...);
    args_t args;
  };
  static void run(void *b) {
    bound *bb = (bound *)b;
    std::apply(bb->fn, bb->args);
  }
  template <typename... A>
  void operator()(A &&...a) const {
    static_assert(sizeof...(A) == sizeof...(P), "wrong number of kernel arguments");
    auto b = std::make_shared<bound>(bound{fn, args_t(std::forward<A>(a)...)});
    const void *ptrs[sizeof...(P) + 1];
    int64_t vals[sizeof...(P) + 1];
    int n = 0, nv = 0;
    std::apply([&](const auto &...v) { (collect_ptr(v, ptrs, n), ...); }, b->args);
    std::apply([&](const auto &...v) { ((vals[nv++] = arg_value(v)), ...); }, b->args);
    enqueue_kernel(cfg, b, &launcher::run, ptrs, n, vals, nv);
  }
};

template <typename... P>
inline launcher<P...> make_launcher(void (*fn)(P...), const char *name, const char *file, int line,
                                    dim3 grid, dim3 block, size_t shmem = 0,
                                    cudaStream_t st = nullptr) {
  return launcher<P...>{fn, launch_cfg{(const void *)fn, name, file, line, grid, block, shmem, st}};
}

} /* namespace sgn_emu */

#define SGN_EMU_LAUNCH(k, ...) ::sgn_emu::make_launcher(k, #k, __FILE__, __LINE__, __VA_ARGS__)

#endif /* __cplusplus */

/* ---- the harness's own controls (tests/cuda_emu/selftest) ---- */
#ifdef __cplusplus
extern "C" {
#endif
/* "fwd", "rev" or "rand:SEED", as SGN_EMU_ORDER; returns 0, or -1 on a bad spelling */
int sgn_emu_set_order(const char *order);
/* large-index mode on with this seed (0: off), as SGN_EMU_LARGE; only before the first CUDA
 * call (returns -1 after it) */
int sgn_emu_set_large(unsigned long long seed);
#ifdef __cplusplus
}
#endif

#endif
