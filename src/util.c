/* util.c — errors, clocks and checked allocation. The last error is thread-local so the
 * library can serve several threads. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static _Thread_local char last_error[512];
static _Thread_local sgn_status last_status;

sgn_status sgn_last_status(void) { return last_status; }

const char *sgn_last_error(void) { return last_error; }

const char *sgn_version(void) { return SGN_VERSION; }

sgn_status sgn_fail(sgn_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  last_status = code;
  return code;
}

double sgn_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

void *sgn_calloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) sgn_fail(SGN_E_RUNTIME, "out of memory allocating %zu bytes", count * size);
  return p;
}
