/* labels.c — class labels for --task classify: any integers or strings, fitted on the training
 * data (K = the number of distinct labels, sorted: numbers by value, text by strcmp), stored in
 * the model file when they are not 0..K-1, and mapped back on output. A label's key is its text,
 * or "%.9g" of its value when it is a number, so "1", "1.0" and 1 from an NPY are one class.
 * Numeric labels must be integers (of any sign and size). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train.h"
#include "util.h"

/* Row i's key into buf (or the text itself). */
static const char *row_key(const sgn_dataset *ds, char **text, int64_t i, char buf[32]) {
  if (text && text[i]) return text[i];
  snprintf(buf, 32, "%.9g", (double)ds->Y[i * ds->k]);
  return buf;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_val(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

void sgn_labels_free(sgn_labels *lab) {
  for (int64_t c = 0; c < lab->K && lab->names; c++) free(lab->names[c]);
  free(lab->names);
  free(lab->sorted);
  memset(lab, 0, sizeof *lab);
}

/* lab->sorted: the names in strcmp order, for lookups. */
static sgn_status index_names(sgn_labels *lab) {
  if (!lab->names) return SGN_OK;
  lab->sorted = sgn_calloc((size_t)lab->K, sizeof *lab->sorted);
  if (!lab->sorted) return SGN_E_RUNTIME;
  memcpy(lab->sorted, lab->names, (size_t)lab->K * sizeof *lab->sorted);
  qsort(lab->sorted, (size_t)lab->K, sizeof *lab->sorted, cmp_str);
  return SGN_OK;
}

sgn_status sgn_labels_adopt(sgn_labels *lab, int64_t K, char **names) {
  memset(lab, 0, sizeof *lab);
  lab->K = K;
  lab->names = names;
  return index_names(lab);
}

sgn_status sgn_labels_fit(const sgn_dataset *ds, char **text, const char *what, int quiet,
                          sgn_labels *lab) {
  memset(lab, 0, sizeof *lab);
  if (ds->k != 1)
    return sgn_fail(SGN_E_INPUT, "%s: --task classify needs one column of class labels, got %lld",
                    what, (long long)ds->k);
  const int64_t n = ds->n;
  char buf[32];
  int64_t K = 0;
  int integers_from_zero = 0;
  for (int64_t i = 0; !text && i < n; i++) {
    float v = ds->Y[i * ds->k];
    if (v != floorf(v))
      return sgn_fail(SGN_E_INPUT,
                      "%s: label %g of sample %lld is not an integer: class labels are integers "
                      "or text (--task regression fits numbers)",
                      what, (double)v, (long long)i + 1);
  }
  if (!text) { /* integers: distinct values in order */
    float *v = sgn_calloc((size_t)n, sizeof *v);
    if (!v) return SGN_E_RUNTIME;
    for (int64_t i = 0; i < n; i++) v[i] = ds->Y[i * ds->k];
    qsort(v, (size_t)n, sizeof *v, cmp_val);
    for (int64_t i = 0; i < n; i++)
      if (i == 0 || v[i] != v[K - 1]) v[K++] = v[i];
    integers_from_zero = 1;
    for (int64_t c = 0; c < K; c++) {
      integers_from_zero &= v[c] == (float)c;
    }
    if (!integers_from_zero) {
      lab->names = sgn_calloc((size_t)K, sizeof *lab->names);
      for (int64_t c = 0; lab->names && c < K; c++) {
        snprintf(buf, sizeof buf, "%.9g", (double)v[c]);
        if (!(lab->names[c] = strdup(buf))) break;
      }
    }
    free(v);
  } else { /* text (numbers among them keyed as "%.9g"): distinct keys in strcmp order */
    char **k = sgn_calloc((size_t)n, sizeof *k);
    if (!k) return SGN_E_RUNTIME;
    char(*num)[32] = sgn_calloc((size_t)n, sizeof *num);
    if (!num) {
      free(k);
      return SGN_E_RUNTIME;
    }
    for (int64_t i = 0; i < n; i++) {
      const char *key = row_key(ds, text, i, num[i]);
      k[i] = key == num[i] ? num[i] : text[i];
    }
    qsort(k, (size_t)n, sizeof *k, cmp_str);
    for (int64_t i = 0; i < n; i++)
      if (i == 0 || strcmp(k[i], k[K - 1])) k[K++] = k[i];
    lab->names = sgn_calloc((size_t)K, sizeof *lab->names);
    for (int64_t c = 0; lab->names && c < K; c++)
      if (!(lab->names[c] = strdup(k[c]))) break;
    free(k);
    free(num);
  }
  lab->K = K;
  if (!integers_from_zero && (!lab->names || !lab->names[K - 1])) {
    sgn_labels_free(lab);
    return sgn_fail(SGN_E_RUNTIME, "out of memory");
  }
  if (K < 2) {
    sgn_labels_free(lab);
    return sgn_fail(SGN_E_INPUT, "%s: --task classify needs at least two classes", what);
  }
  if (!quiet && !text && K > 2 && K > n / 2)
    fprintf(stderr,
            "sketchgn train: warning: %s: the labels look continuous (%lld distinct values in "
            "%lld samples); --task classify makes each value a class (--task regression fits "
            "them as numbers)\n",
            what, (long long)K, (long long)n);
  return index_names(lab);
}

sgn_status sgn_labels_classes(const sgn_labels *lab, const sgn_dataset *ds, char **text,
                              const char *what, int64_t **cls) {
  *cls = NULL;
  if (ds->k != 1)
    return sgn_fail(SGN_E_INPUT, "%s: --task classify needs one column of class labels, got %lld",
                    what, (long long)ds->k);
  int64_t *out = sgn_calloc((size_t)ds->n, sizeof *out);
  if (!out) return SGN_E_RUNTIME;
  char buf[32];
  for (int64_t i = 0; i < ds->n; i++) {
    const char *key = row_key(ds, text, i, buf);
    int64_t c = -1;
    if (lab->names) {
      char **hit = bsearch(&key, lab->sorted, (size_t)lab->K, sizeof *lab->sorted, cmp_str);
      if (hit)
        for (c = 0; lab->names[c] != *hit; c++) {
        }
    } else if (!(text && text[i])) {
      float v = ds->Y[i * ds->k];
      if (v >= 0 && v == floorf(v) && v < (float)lab->K) c = (int64_t)v;
    }
    if (c < 0) {
      free(out);
      if (lab->names)
        return sgn_fail(SGN_E_INPUT,
                        "%s: label '%.40s' of sample %lld is not one of the model's %lld classes",
                        what, key, (long long)i + 1, (long long)lab->K);
      return sgn_fail(SGN_E_INPUT, "%s: label %s of sample %lld is not a class in 0..%lld", what,
                      key, (long long)i + 1, (long long)lab->K - 1);
    }
    out[i] = c;
  }
  *cls = out;
  return SGN_OK;
}

const char *sgn_labels_name(const sgn_labels *lab, int64_t c, char buf[32]) {
  if (lab->names) return lab->names[c];
  snprintf(buf, 32, "%lld", (long long)c);
  return buf;
}
