/* cuda_plugin.c — finds and loads the CUDA backend plugin (libsketchgn-cuda.so) on first use.
 * The search order is in backend_cuda.h. A missing plugin is not an error until a GPU is asked
 * for: sgn_backend_cuda_open then says where it looked. */
#include "backend_cuda.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const sgn_cuda_plugin *plugin; /* NULL when it could not be loaded */
static char loaded_from[PATH_MAX];
static char why[1024]; /* why it could not be loaded */

static sgn_status host_vfail(sgn_status code, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  return sgn_fail(code, "%s", msg);
}

static const sgn_cuda_host host = {.vfail = host_vfail};

/* Appends "; " and printf-style text to why[], never past its end. */
static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...) {
  size_t used = strlen(why);
  if (used + 3 >= sizeof why) return;
  if (used) strcpy(why + used, "; "), used += 2;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why + used, sizeof why - used, fmt, ap);
  va_end(ap);
}

/* dlopens path and checks the plugin's ABI and version. Returns 1 when it is the one to use. */
static int try_load(const char *path, int must_exist) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    /* a file that is not there is the normal case of all but the last candidate */
    if (must_exist || (e && !strstr(e, "No such file"))) note("%s", e ? e : path);
    return 0;
  }
  const sgn_cuda_plugin *(*entry)(const sgn_cuda_host *);
  *(void **)&entry = dlsym(h, SGN_CUDA_PLUGIN_ENTRY);
  const sgn_cuda_plugin *p = entry ? entry(&host) : NULL;
  if (!p) {
    note("%s: no %s in it", path, SGN_CUDA_PLUGIN_ENTRY);
  } else if (p->abi != SGN_CUDA_PLUGIN_ABI || strcmp(p->version, SGN_VERSION) != 0) {
    note("%s is from sketchgn %s (plugin ABI %d); this is sketchgn %s (ABI %d)", path, p->version,
         p->abi, SGN_VERSION, SGN_CUDA_PLUGIN_ABI);
  } else {
    plugin = p;
    /* the file's own name, without the "/../lib" of the search (a bare name stays bare) */
    char real[PATH_MAX];
    snprintf(loaded_from, sizeof loaded_from, "%s",
             strchr(path, '/') && realpath(path, real) ? real : path);
    return 1; /* stays loaded for the life of the process */
  }
  dlclose(h);
  return 0;
}

/* Tries DIR, DIR/../lib and DIR/.. for the plugin, DIR the folder of the file at path. */
static int try_beside(const char *path) {
  char dir[PATH_MAX];
  if (!path || !strchr(path, '/') || !realpath(path, dir)) return 0;
  *strrchr(dir, '/') = '\0';
  const char *rel[] = {"", "/../lib", "/.."};
  for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
    char cand[PATH_MAX + 64];
    snprintf(cand, sizeof cand, "%s%s/%s", dir, rel[i], SGN_CUDA_PLUGIN_FILE);
    if (try_load(cand, 0)) return 1;
  }
  return 0;
}

static void load(void) {
  const char *env = getenv("SKETCHGN_CUDA_PLUGIN");
  if (env && *env) {
    try_load(env, 1);
    return;
  }
  /* beside the object that holds this code: libsketchgn.so, or a program linked with the static
   * library (whose name dladdr may not know: /proc/self/exe is the program) */
  Dl_info info;
  if (dladdr((void *)&load, &info) && try_beside(info.dli_fname)) return;
  if (try_beside("/proc/self/exe")) return;
  if (try_load(SGN_CUDA_PLUGIN_FILE, 1)) return;
  if (!why[0]) note("%s not found", SGN_CUDA_PLUGIN_FILE);
}

const char *sgn_cuda_plugin_path(void) {
  pthread_once(&once, load);
  if (!plugin) {
    sgn_fail(SGN_E_INPUT,
             "the CUDA backend is not available (%s); it is built when `make` finds nvcc", why);
    return NULL;
  }
  return loaded_from;
}

sgn_backend *sgn_backend_cuda_open(void) {
  if (!sgn_cuda_plugin_path()) return NULL;
  return plugin->open();
}

int sgn_cuda_device_count(void) {
  pthread_once(&once, load);
  return plugin ? plugin->device_count() : 0;
}

int sgn_cuda_device_info(char *buf, size_t len) {
  if (!buf || len == 0) return SGN_E_INPUT;
  if (!sgn_cuda_plugin_path()) {
    snprintf(buf, len, "%s", sgn_last_error());
    return SGN_E_RUNTIME;
  }
  return plugin->device_info(buf, len);
}

int sgn_hadamard_cuda_passes(int64_t len) {
  pthread_once(&once, load);
  return plugin ? plugin->hadamard_passes(len) : -1;
}
