/* util.h — errors, clocks and checked allocation shared by the host code. */
#ifndef SGN_UTIL_H
#define SGN_UTIL_H

#include <stddef.h>

#include "sketchgn.h"

/* Records the message sgn_last_error() returns; returns code for `return sgn_fail(...)`. */
sgn_status sgn_fail(sgn_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The code of the last sgn_fail on this thread (for calls that return NULL on failure). */
sgn_status sgn_last_status(void);

/* Monotonic wall clock in milliseconds. */
double sgn_now_ms(void);

/* calloc that records an error naming the bytes on failure (returns NULL). */
void *sgn_calloc(size_t count, size_t size);

#endif
