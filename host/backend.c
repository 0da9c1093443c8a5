/* backend.c — picks a backend for a device request. The CPU backend is always built; the CUDA
 * backend only when the build found nvcc (SGN_HAVE_CUDA). */
#include <stdlib.h>

#include "backend.h"
#include "util.h"

#ifdef SGN_HAVE_CUDA
sgn_backend *sgn_backend_cuda_open(void); /* kernels/backend_cuda.cu; NULL when no device answers */
#endif

sgn_backend *sgn_backend_open(sgn_device device) {
  if (device == SGN_DEVICE_CPU) return sgn_backend_cpu_open();
#ifdef SGN_HAVE_CUDA
  sgn_backend *be = sgn_backend_cuda_open();
  if (be || device == SGN_DEVICE_GPU) return be;
#else
  if (device == SGN_DEVICE_GPU) {
    sgn_fail(SGN_E_INPUT, "--device gpu: this build has no CUDA backend (nvcc was not found)");
    return NULL;
  }
#endif
  return sgn_backend_cpu_open();
}

void sgn_backend_close(sgn_backend *be) {
  if (!be) return;
  be->ops->destroy(be->ctx);
  free(be);
}

const char *sgn_backend_name(const sgn_backend *be) { return be->ops->name; }
