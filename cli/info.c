/* info.c — `sketchgn info`: the version, the backends built, the CUDA plugin and the GPU that
 * answers (loading the plugin is what probes for one), and the linked libraries' versions. */
#include <cblas.h>
#include <dlfcn.h>
#include <fftw3.h>
#include <lapacke.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend_cuda.h"
#include "commands.h"
#include "opts.h"
#include "sketchgn.h"

static void info_gpu(void) {
  /* without the driver's library, CUDA's own message ("driver version is insufficient ...
   * driver 0.0") misleads: say what is missing */
  void *driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (!driver) {
    printf("gpu: none: no NVIDIA driver (libcuda.so.1 not found); training runs on the CPU\n");
    return;
  }
  dlclose(driver);
  const char *path = sgn_cuda_plugin_path();
  if (!path) {
    printf("gpu: %s\n", sgn_last_error());
    return;
  }
  printf("gpu backend: %s\n", path);
  char line[1024];
  sgn_cuda_device_info(line, sizeof line);
  printf("gpu: %s\n", line);
}

int sgn_cmd_info(int argc, char **argv) {
  opt_cmd cmd = {
      "info",
      "usage: sketchgn info [options]\n"
      "\n"
      "Prints the version, the backends, the CUDA plugin and the GPU that answers (if any),\n"
      "and the versions of the linked libraries (OpenBLAS, LAPACK, OpenMP).\n",
      NULL, NULL, 0};
  int rc = opts_parse(&cmd, argc, argv);
  if (rc == OPTS_HELP) {
    opts_help(stdout, &cmd);
    return 0;
  }
  if (rc != OPTS_RUN) return rc;

  lapack_int major = 0, minor = 0, patch = 0;
  LAPACKE_ilaver(&major, &minor, &patch);
  printf("sketchgn %s\n", sgn_version());
  printf("cpu: built\n");
  info_gpu();
  printf("openblas: %s (kernels: %s%s)\n", openblas_get_config(), openblas_get_corename(),
         getenv("OPENBLAS_CORETYPE") ? ", set by OPENBLAS_CORETYPE" : "");
  printf("openblas threads: %d\n", openblas_get_num_threads());
  printf("lapack: %d.%d.%d\n", (int)major, (int)minor, (int)patch);
  printf("fftw: %s\n", fftwf_version);
  printf("openmp: %d max threads (OpenMP %d)\n", omp_get_max_threads(), _OPENMP);
  return 0;
}
