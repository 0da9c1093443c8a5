/* backend_cuda.h — the CUDA backend, reached through a plugin.
 *
 * The CUDA backend (src/backend/cuda/) is built into its own shared object, libsketchgn-cuda.so, linked
 * against cuBLAS, cuSOLVER, cuFFT, cuRAND and the CUDA runtime. The library and the CLI load it
 * with dlopen the first time a GPU is asked for (--device gpu or auto), so a CPU run never loads
 * a CUDA library, and a build made with nvcc still runs on a machine without CUDA.
 *
 * Where the plugin is looked for, first hit wins:
 *   1. $SKETCHGN_CUDA_PLUGIN (a path to the file);
 *   2. the directory of the program or shared library that contains libsketchgn's code, then
 *      its ../lib, then its parent (build/tests/ finds build/);
 *   3. the dynamic linker's own search (LD_LIBRARY_PATH, the program's rpath, system dirs).
 * Plain C: callers never include a CUDA header. */
#ifndef SGN_BACKEND_CUDA_H
#define SGN_BACKEND_CUDA_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "sketchgn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SGN_CUDA_PLUGIN_FILE "libsketchgn-cuda.so"
#define SGN_CUDA_PLUGIN_ABI \
  2 /* 2: the backend table gained heads_mean, pcg_*, graph_*, set_product_precision */

/* ---- the host side (cuda_plugin.c) ---- */

/* The CUDA backend on device 0: one stream, cuBLAS and cuSOLVER handles bound to it.
 * NULL, with sgn_last_error() set, when the plugin is missing or no device answers. */
sgn_backend *sgn_backend_cuda_open(void);

/* Devices that answer (0 when the plugin is missing or on any error). */
int sgn_cuda_device_count(void);

/* One line into buf (len bytes, NUL-terminated, truncated to fit): device 0's name, compute
 * capability, memory, SM count, and the CUDA runtime / driver, cuBLAS, cuSOLVER, cuFFT and
 * cuRAND versions. Returns 0, or SGN_E_RUNTIME with the reason in buf when the plugin is missing
 * or no device answers. */
int sgn_cuda_device_info(char *buf, size_t len);

/* Passes over global memory the GPU Hadamard transform makes at this length: 0 for len 1,
 * 1 up to SGN_HADAMARD_CUDA_TILE (2^15), then one more per SGN_HADAMARD_CUDA_LATER_LOG stages
 * or fewer: 2 up to 2^25, 3 up to 2^35. -1 when the plugin is missing. */
int sgn_hadamard_cuda_passes(int64_t len);
#define SGN_HADAMARD_CUDA_TILE 32768   /* floats one block transforms in pass 1 (128 KiB) */
#define SGN_HADAMARD_CUDA_LATER_LOG 10 /* stages per later pass, at most */

/* The path the plugin was loaded from, or NULL (with sgn_last_error() saying where it was looked
 * for) when it cannot be loaded. Loads it on the first call. */
const char *sgn_cuda_plugin_path(void);

/* ---- the plugin's side (cuda/backend.cu) ---- */

/* What the host lends the plugin: its error recorder (sgn_fail of util.h, as a va_list). */
typedef struct sgn_cuda_host {
  sgn_status (*vfail)(sgn_status code, const char *fmt, va_list ap);
} sgn_cuda_host;

typedef struct sgn_cuda_plugin {
  int abi;             /* SGN_CUDA_PLUGIN_ABI of the headers it was built with */
  const char *version; /* SGN_VERSION it was built from */
  sgn_backend *(*open)(void);
  int (*device_count)(void);
  int (*device_info)(char *buf, size_t len);
  int (*hadamard_passes)(int64_t len);
} sgn_cuda_plugin;

/* The plugin's one exported symbol. */
#define SGN_CUDA_PLUGIN_ENTRY "sgn_cuda_plugin_entry"
const sgn_cuda_plugin *sgn_cuda_plugin_entry(const sgn_cuda_host *host);

#ifdef __cplusplus
}
#endif
#endif
