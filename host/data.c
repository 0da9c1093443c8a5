/* data.c — datasets behind a data SPEC. For now the synthetic teacher task; the file loaders
 * (CSV, NPY, IDX) plug in here by their SPEC prefix. */
#include "data.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "util.h"

#define TEACHER_WIDTH 64

void sgn_dataset_free(sgn_dataset *ds) {
  if (!ds) return;
  free(ds->X);
  free(ds->Y);
  ds->X = ds->Y = NULL;
}

/* x_i: Gaussian, coordinate j scaled by aniso^(-j/d), then normalized to unit length.
 * y_i = 64^-1/2 a^T relu(T x_i) with T (64, d) Gaussian and a (64, k) signs. */
sgn_status sgn_data_synth(int64_t n, int64_t d, int64_t k, uint64_t seed, double aniso,
                          sgn_dataset *out) {
  memset(out, 0, sizeof *out);
  if (n < 1 || d < 1 || k < 1 || !(aniso >= 1.0) || !isfinite(aniso))
    return sgn_fail(SGN_E_INPUT, "synth: need n, d, k >= 1 and aniso >= 1");
  out->n = n, out->d = d, out->k = k;
  out->X = sgn_calloc((size_t)(n * d), sizeof(float));
  out->Y = sgn_calloc((size_t)(n * k), sizeof(float));
  float *T = sgn_calloc((size_t)(TEACHER_WIDTH * d), sizeof(float));
  if (!out->X || !out->Y || !T) {
    free(T);
    sgn_dataset_free(out);
    return SGN_E_RUNTIME;
  }
  for (int64_t t = 0; t < TEACHER_WIDTH * d; t++)
    T[t] = (float)sgn_rng_normal(seed, SGN_STREAM_SYNTH_TEACHER, (uint64_t)t);
  for (int64_t i = 0; i < n; i++) {
    float *x = out->X + i * d;
    double norm2 = 0;
    for (int64_t j = 0; j < d; j++) {
      double v = sgn_rng_normal(seed, SGN_STREAM_SYNTH_X, (uint64_t)(i * d + j)) *
                 pow(aniso, -(double)j / (double)d);
      x[j] = (float)v;
      norm2 += v * v;
    }
    float inv = (float)(1.0 / sqrt(norm2));
    for (int64_t j = 0; j < d; j++) x[j] *= inv;
    for (int64_t c = 0; c < k; c++) {
      double y = 0;
      for (int64_t r = 0; r < TEACHER_WIDTH; r++) {
        double z = 0;
        for (int64_t j = 0; j < d; j++) z += (double)T[r * d + j] * x[j];
        /* teacher signs come after the teacher weights in the same stream */
        double a = sgn_rng_sign(seed, SGN_STREAM_SYNTH_TEACHER,
                                (uint64_t)(TEACHER_WIDTH * d + r * k + c));
        y += a * (z > 0 ? z : 0);
      }
      out->Y[i * k + c] = (float)(y / sqrt((double)TEACHER_WIDTH));
    }
  }
  free(T);
  return SGN_OK;
}

/* One "key=value" of a synth spec into *val (integer or real); 0 on success. */
static int parse_number(const char *s, size_t len, double *val) {
  char buf[64];
  if (len == 0 || len >= sizeof buf) return -1;
  memcpy(buf, s, len);
  buf[len] = 0;
  char *end;
  errno = 0;
  *val = strtod(buf, &end);
  return (*end || errno || !isfinite(*val)) ? -1 : 0;
}

static sgn_status load_synth(const char *spec, const char *args, sgn_dataset *out) {
  double n = 1024, d = 32, k = 1, seed = 1, aniso = 1;
  const char *p = args;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    if (!eq)
      return sgn_fail(SGN_E_INPUT, "--data '%s': expected key=value, got '%.*s'", spec, (int)len, p);
    size_t klen = (size_t)(eq - p);
    double v;
    if (parse_number(eq + 1, len - klen - 1, &v))
      return sgn_fail(SGN_E_INPUT, "--data '%s': '%.*s' is not a number", spec, (int)len, p);
    double *dst = NULL;
    const char *names[] = {"n", "d", "k", "seed", "aniso"};
    double *slots[] = {&n, &d, &k, &seed, &aniso};
    for (int q = 0; q < 5; q++)
      if (strlen(names[q]) == klen && !strncmp(p, names[q], klen)) dst = slots[q];
    if (!dst)
      return sgn_fail(SGN_E_INPUT, "--data '%s': unknown key '%.*s' (synth takes n, d, k, seed, aniso)",
                      spec, (int)klen, p);
    *dst = v;
    p += len + (comma ? 1 : 0);
  }
  if (n < 1 || d < 1 || k < 1 || n != floor(n) || d != floor(d) || k != floor(k) || n > 1e9 ||
      d > 1e7 || k > 1e5)
    return sgn_fail(SGN_E_INPUT, "--data '%s': n, d and k must be positive integers", spec);
  if (seed < 0 || seed != floor(seed) || seed > 1.8e19)
    return sgn_fail(SGN_E_INPUT, "--data '%s': seed must be a non-negative integer", spec);
  if (aniso < 1)
    return sgn_fail(SGN_E_INPUT, "--data '%s': aniso must be >= 1", spec);
  return sgn_data_synth((int64_t)n, (int64_t)d, (int64_t)k, (uint64_t)seed, aniso, out);
}

sgn_status sgn_data_load(const char *spec, sgn_dataset *out) {
  memset(out, 0, sizeof *out);
  if (!strncmp(spec, "synth:", 6)) return load_synth(spec, spec + 6, out);
  if (!strcmp(spec, "synth")) return load_synth(spec, "", out);
  return sgn_fail(SGN_E_INPUT, "--data '%s': unknown data spec (expected synth:n=N,d=D,k=K,seed=S[,aniso=A])",
                  spec);
}
