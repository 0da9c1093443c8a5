/* backend.c — picks a backend for a device request. The CPU backend is always here; the CUDA
 * backend comes from its plugin (backend_cuda.h), loaded only when a GPU is asked for. */
#include <stdlib.h>

#include "backend.h"
#include "backend_cuda.h"
#include "precision.h"
#include "util.h"

sgn_backend *sgn_backend_open(sgn_device device) {
  if (device == SGN_DEVICE_CPU) return sgn_backend_cpu_open();
  sgn_backend *be = sgn_backend_cuda_open();
  if (be || device == SGN_DEVICE_GPU) return be;
  return sgn_backend_cpu_open();
}

void sgn_backend_close(sgn_backend *be) {
  if (!be) return;
  be->ops->destroy(be->ctx);
  free(be);
}

const char *sgn_backend_name(const sgn_backend *be) { return be->ops->name; }

const char *sgn_backend_error(const sgn_backend *be) {
  return be->ops->error ? be->ops->error(be->ctx) : NULL;
}

void sgn_backend_set_stop(sgn_backend *be, const sgn_stop_flag *stop) {
  if (be->ops->set_stop) be->ops->set_stop(be->ctx, stop);
}

int sgn_backend_set_product_precision(sgn_backend *be, sgn_precision prec) {
  if (be->ops->set_product_precision) {
    be->ops->set_product_precision(be->ctx, prec);
    return 0;
  }
  return sgn_precision_dropped_bits(prec) ? -1 : 0;
}
