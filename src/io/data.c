/* data.c — datasets behind a data SPEC: the synthetic teacher task and the file loaders (CSV,
 * NPY, IDX and fashion-mnist). No loader trusts a size a header claims: NPY shapes are checked
 * against the file's real length before allocating, IDX buffers grow only as data arrives. */
#include "data.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zlib.h>

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
  double n = 1024, d = 32, k = 1, seed = 1, aniso = 1, skip = 0;
  const char *p = args;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    const char *eq = memchr(p, '=', len);
    if (!eq)
      return sgn_fail(SGN_E_INPUT, "--data '%s': expected key=value, got '%.*s'", spec, (int)len,
                      p);
    size_t klen = (size_t)(eq - p);
    double v;
    if (parse_number(eq + 1, len - klen - 1, &v))
      return sgn_fail(SGN_E_INPUT, "--data '%s': '%.*s' is not a number", spec, (int)len, p);
    double *dst = NULL;
    const char *names[] = {"n", "d", "k", "seed", "aniso", "skip"};
    double *slots[] = {&n, &d, &k, &seed, &aniso, &skip};
    for (int q = 0; q < 6; q++)
      if (strlen(names[q]) == klen && !strncmp(p, names[q], klen)) dst = slots[q];
    if (!dst)
      return sgn_fail(SGN_E_INPUT,
                      "--data '%s': unknown key '%.*s' (synth takes n, d, k, seed, aniso, skip)",
                      spec, (int)klen, p);
    *dst = v;
    p += len + (comma ? 1 : 0);
  }
  if (n < 1 || d < 1 || k < 1 || n != floor(n) || d != floor(d) || k != floor(k) || n > 1e9 ||
      d > 1e7 || k > 1e5)
    return sgn_fail(SGN_E_INPUT, "--data '%s': n, d and k must be positive integers", spec);
  if (seed < 0 || seed != floor(seed) || seed > 1.8e19)
    return sgn_fail(SGN_E_INPUT, "--data '%s': seed must be a non-negative integer", spec);
  if (aniso < 1) return sgn_fail(SGN_E_INPUT, "--data '%s': aniso must be >= 1", spec);
  if (skip < 0 || skip != floor(skip) || n + skip > 1e9)
    return sgn_fail(SGN_E_INPUT, "--data '%s': skip must be a non-negative integer", spec);
  /* skip=S: rows S..S+n-1 of the same task (same teacher), e.g. a held-out set after n rows */
  const int64_t s0 = (int64_t)skip, nn = (int64_t)n, dd = (int64_t)d, kk = (int64_t)k;
  sgn_status st = sgn_data_synth(nn + s0, dd, kk, (uint64_t)seed, aniso, out);
  if (st != SGN_OK || s0 == 0) return st;
  memmove(out->X, out->X + s0 * dd, (size_t)(nn * dd) * sizeof(float));
  memmove(out->Y, out->Y + s0 * kk, (size_t)(nn * kk) * sizeof(float));
  out->n = nn;
  return SGN_OK;
}

/* ---- spec options and messages ---- */

/* Every input error reads "--data 'SPEC': what is wrong", naming the file inside. */
static sgn_status bad(const char *spec, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static sgn_status bad(const char *spec, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return sgn_fail(SGN_E_INPUT, "--data '%s': %s", spec, msg);
}

static sgn_status oom(const char *spec, const char *path, size_t bytes) {
  return sgn_fail(SGN_E_RUNTIME, "--data '%s': %s: out of memory allocating %zu bytes", spec, path,
                  bytes);
}

/* count1 * count2 floats, or NULL (and an error) on overflow or allocation failure */
static float *alloc_floats(const char *spec, const char *path, int64_t count1, int64_t count2) {
  int64_t count;
  if (count1 < 0 || count2 < 0 || __builtin_mul_overflow(count1, count2, &count) ||
      count > (int64_t)(SIZE_MAX / sizeof(float))) {
    sgn_fail(SGN_E_RUNTIME, "--data '%s': %s: %lld x %lld floats do not fit in memory", spec, path,
             (long long)count1, (long long)count2);
    return NULL;
  }
  float *p = calloc(count ? (size_t)count : 1, sizeof(float));
  if (!p) oom(spec, path, (size_t)count * sizeof(float));
  return p;
}

typedef struct spec_opts {
  int64_t n; /* ,n=N: keep the first N samples (0: all) */
  int64_t k; /* ,k=K: CSV target columns (0: not given) */
} spec_opts;

/* The ",key=value" options after a spec's path(s); k is allowed for CSV only. */
static sgn_status parse_opts(const char *spec, const char *opts, int allow_k, spec_opts *o) {
  memset(o, 0, sizeof *o);
  for (const char *p = opts; *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    int64_t *dst = NULL;
    if (len >= 2 && p[1] == '=' && p[0] == 'n') dst = &o->n;
    if (len >= 2 && p[1] == '=' && p[0] == 'k' && allow_k) dst = &o->k;
    if (!dst)
      return bad(spec, "unknown option '%.*s' (%s)", (int)len, p,
                 allow_k ? "CSV takes n=N and k=K" : "this kind takes n=N");
    int64_t v = 0;
    for (size_t i = 2; i < len; i++) {
      if (p[i] < '0' || p[i] > '9' || v > 1000000000000000LL)
        return bad(spec, "'%.*s': %c must be a positive integer", (int)len, p, p[0]);
      v = v * 10 + (p[i] - '0');
    }
    if (len == 2 || v < 1) return bad(spec, "'%.*s': %c must be >= 1", (int)len, p, p[0]);
    *dst = v;
    p += len + (comma ? 1 : 0);
  }
  return SGN_OK;
}

/* rows to keep of `have`: all when n= is absent, else n (an error when the file holds fewer) */
static sgn_status keep_rows(const char *spec, const char *path, const spec_opts *o, int64_t have,
                            int64_t *keep) {
  if (o->n > have)
    return bad(spec, "n=%lld but %s holds only %lld samples", (long long)o->n, path,
               (long long)have);
  *keep = o->n ? o->n : have;
  return SGN_OK;
}

static int has_suffix(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a > b && !strcasecmp(s + a - b, suffix);
}

/* A whole regular file in one read, NUL-terminated. */
static sgn_status read_file(const char *spec, const char *path, char **buf, size_t *len) {
  *buf = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return bad(spec, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
    fclose(f);
    return bad(spec, "%s: not a regular file", path);
  }
  size_t size = (size_t)sb.st_size;
  char *b = malloc(size + 1);
  if (!b) {
    fclose(f);
    return oom(spec, path, size + 1);
  }
  size_t got = size ? fread(b, 1, size, f) : 0;
  fclose(f);
  if (got != size) {
    free(b);
    return sgn_fail(SGN_E_RUNTIME, "--data '%s': %s: read %zu of %zu bytes", spec, path, got, size);
  }
  b[size] = 0;
  *buf = b;
  *len = size;
  return SGN_OK;
}

/* ---- CSV ---- */

enum { NUM_OK, NUM_BAD, NUM_NAN, NUM_INF, NUM_RANGE, NUM_LONG };

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#if LDBL_MANT_DIG >= 64
static const long double pow10l_exact[28] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
                                             1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
                                             1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                             1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
#endif

static int is_digit(char c) { return (unsigned)(c - '0') < 10; }

/* "nan", "inf", "infinity" with an optional sign, any case: NUM_NAN or NUM_INF, else NUM_BAD */
static int nan_or_inf(const char *s, const char *e) {
  if (s < e && (*s == '+' || *s == '-')) s++;
  size_t len = (size_t)(e - s);
  if (len == 3 && !strncasecmp(s, "nan", 3)) return NUM_NAN;
  if ((len == 3 && !strncasecmp(s, "inf", 3)) || (len == 8 && !strncasecmp(s, "infinity", 8)))
    return NUM_INF;
  return NUM_BAD;
}

/* 1 when v lies exactly halfway between two floats, where rounding the double to float could
 * differ from rounding the decimal once. For v of float-normal size (the fast path below yields
 * 0 or |v| >= 1e-22) that is: the 29 mantissa bits a float drops are exactly 1000...0. */
static int float_midpoint(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return (b & 0x7fffffffffffffffull) && (b & ((1ull << 29) - 1)) == (1ull << 28);
}

/* Decimal text [s, e) (trimmed) to the nearest float, exactly in three tiers. (1) A mantissa
 * below 2^53 times or over an exact power 10^0..10^22 is one correctly rounded double operation
 * (Clinger), and a double off a float midpoint rounds to the float the decimal rounds to.
 * (2) Where long double has a 64-bit mantissa, any 19-digit mantissa and 10^0..10^27 (5^27 <
 * 2^64) are exact, which covers the 17 digits of a float64 written by repr. (3) strtof decides
 * the rest: more digits, larger exponents, results on a midpoint. */
static int parse_float(const char *s, const char *e, float *out) {
  const char *p = s;
  int neg = 0;
  if (p < e && (*p == '+' || *p == '-')) neg = *p++ == '-';
  uint64_t mant = 0;
  int sig = 0, exact = 1, digits = 0;
  int64_t e10 = 0;
  for (; p < e && is_digit(*p); p++, digits++) {
    unsigned d = (unsigned)(*p - '0');
    if (sig < 19) {
      mant = mant * 10 + d;
      sig += mant != 0;
    } else {
      e10++;
      exact &= d == 0;
    }
  }
  if (p < e && *p == '.') {
    for (p++; p < e && is_digit(*p); p++, digits++) {
      unsigned d = (unsigned)(*p - '0');
      if (sig < 19) {
        mant = mant * 10 + d;
        sig += mant != 0;
        e10--;
      } else {
        exact &= d == 0;
      }
    }
  }
  if (!digits) return nan_or_inf(s, e);
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    int eneg = 0;
    if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
    if (p == e || !is_digit(*p)) return NUM_BAD;
    int64_t x = 0;
    for (; p < e && is_digit(*p); p++)
      if (x < 100000) x = x * 10 + (*p - '0');
    e10 += eneg ? -x : x;
  }
  if (p != e) return NUM_BAD;
  if (exact && mant <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
    double v = (double)mant;
    v = e10 < 0 ? v / pow10_exact[-e10] : v * pow10_exact[e10];
    if (!float_midpoint(v)) {
      float f = (float)v;
      *out = neg ? -f : f;
      return NUM_OK;
    }
  }
#if LDBL_MANT_DIG >= 64
  if (exact && e10 >= -27 && e10 <= 27) {
    long double v = (long double)mant;
    v = e10 < 0 ? v / pow10l_exact[-e10] : v * pow10l_exact[e10];
    float f = (float)v;
    if (isinf(f)) return NUM_RANGE;
    long double b = f, g = nextafterf(f, b < v ? INFINITY : -INFINITY);
    if (b == v || fabsl(g - v) != fabsl(v - b)) { /* not a midpoint (differences are exact) */
      *out = neg ? -f : f;
      return NUM_OK;
    }
  }
#endif
  char buf[256];
  size_t len = (size_t)(e - s);
  if (len >= sizeof buf) return NUM_LONG;
  memcpy(buf, s, len);
  buf[len] = 0;
  float f = strtof(buf, NULL); /* the grammar above is a subset of strtof's */
  if (isinf(f)) return NUM_RANGE;
  *out = f;
  return NUM_OK;
}

/* Strips blanks and one pair of double quotes around a field. */
static void field_trim(const char **s, const char **e) {
  while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
  while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
  if (*e - *s >= 2 && **s == '"' && (*e)[-1] == '"') (*s)++, (*e)--;
}

/* The end of the field starting at s: the next ',' outside double quotes, or le. RFC 4180
 * quoting: a quoted field may hold commas, and "" inside it is a quote (fields spanning lines
 * are not supported). */
static const char *field_end(const char *s, const char *le) {
  int quoted = 0;
  for (; s < le; s++) {
    if (*s == '"') quoted = !quoted;
    else if (*s == ',' && !quoted) break;
  }
  return s;
}

/* What the data's authors write for a missing value. */
static int is_missing(const char *s, const char *e) {
  static const char *const names[] = {"NA",   "N/A",  "NaN", "nan", "NAN", "null",
                                      "NULL", "None", "?",   "-",   "."};
  if (s == e) return 1;
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if ((size_t)(e - s) == strlen(names[i]) && !memcmp(s, names[i], (size_t)(e - s))) return 1;
  return 0;
}

/* The line starting at p: [p, *le) without its "\n" or "\r\n"; returns the next line's start. */
static const char *line_end(const char *p, const char *end, const char **le) {
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  const char *e = nl ? nl : end;
  if (e > p && e[-1] == '\r') e--;
  *le = e;
  return nl ? nl + 1 : end;
}

static int is_blank(const char *s, const char *e) {
  for (; s < e; s++)
    if (*s != ' ' && *s != '\t' && *s != '\r') return 0;
  return 1;
}

/* A field quoted for a message: at most 40 characters, non-printing ones as '?'. */
static const char *shown(const char *s, const char *e, char buf[48]) {
  size_t len = (size_t)(e - s), i;
  for (i = 0; i < len && i < 40; i++) buf[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
  if (len > 40) memcpy(buf + i, "...", 3), i += 3;
  buf[i] = 0;
  return buf;
}

typedef struct csv_field {
  const char *s, *e; /* trimmed text */
} csv_field;

/* Which columns are targets: ycol (k) in target order, xcol (d) the rest in file order. */
static sgn_status csv_pick_targets(const char *spec, const char *path, const char *targets,
                                   int64_t k_opt, const csv_field *head, int64_t header_line,
                                   int64_t cols, int64_t *ycol, int64_t *k, int64_t *xcol) {
  int64_t nk = 0;
  if (!targets) {
    nk = k_opt ? k_opt : 1;
    if (nk >= cols)
      return bad(spec, "%s: k=%lld target columns leave no inputs (the file has %lld columns)",
                 path, (long long)nk, (long long)cols);
    for (int64_t c = 0; c < nk; c++) ycol[c] = cols - nk + c;
  } else {
    const char *p = targets;
    for (;;) {
      const char *comma = strchr(p, ','), *e = comma ? comma : p + strlen(p), *s = p;
      field_trim(&s, &e);
      char sb[48];
      if (s == e) return bad(spec, "%s: --targets '%s': empty column name", path, targets);
      int64_t col = -1;
      int numeric = 1;
      for (const char *q = s; q < e; q++) numeric &= is_digit(*q);
      if (numeric) {
        col = 0;
        for (const char *q = s; q < e && col <= cols; q++) col = col * 10 + (*q - '0');
        if (col >= cols)
          return bad(spec,
                     "%s: --targets column %s is out of range (the file has %lld columns, "
                     "indices 0..%lld)",
                     path, shown(s, e, sb), (long long)cols, (long long)cols - 1);
      } else {
        if (!head)
          return bad(spec,
                     "%s: --targets '%s': the file has no header row, so name target "
                     "columns by 0-based index",
                     path, shown(s, e, sb));
        for (int64_t c = 0; c < cols && col < 0; c++)
          if (head[c].e - head[c].s == e - s && !memcmp(head[c].s, s, (size_t)(e - s))) col = c;
        if (col < 0)
          return bad(spec, "%s:%lld: --targets: no column named '%s' in the header", path,
                     (long long)header_line, shown(s, e, sb));
      }
      for (int64_t c = 0; c < nk; c++)
        if (ycol[c] == col)
          return bad(spec, "%s: --targets '%s' names column %lld twice", path, targets,
                     (long long)col);
      if (nk == cols - 1)
        return bad(spec, "%s: --targets '%s' leaves no input columns", path, targets);
      ycol[nk++] = col;
      if (!comma) break;
      p = comma + 1;
    }
  }
  int64_t d = 0;
  for (int64_t c = 0; c < cols; c++) {
    int target = 0;
    for (int64_t t = 0; t < nk; t++) target |= ycol[t] == c;
    if (!target) xcol[d++] = c;
  }
  *k = nk;
  return SGN_OK;
}

/* Comma-separated numbers; a first row with a non-numeric field is a header. Blank lines are
 * skipped. Allocations are bounded by the file: a valid row of C fields takes >= 2C - 1 bytes. */
static sgn_status load_csv(const char *spec, const char *path, const char *targets,
                           const spec_opts *o, const sgn_data_want *w, sgn_dataset *out,
                           char ***text_out) {
  char *buf = NULL;
  size_t len = 0;
  sgn_status st = read_file(spec, path, &buf, &len);
  if (st) return st;
  csv_field *head = NULL;
  int64_t *cols_map = NULL, cap = 0;
  float *X = NULL, *Y = NULL, *row = NULL;
  char **text = NULL; /* (cap) text labels */
  int any_text = 0;
  const char *p = buf, *end = buf + len, *ls, *le;
  if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3; /* a UTF-8 byte order mark */

  int64_t lineno = 0;
  do {
    if (p >= end) {
      st = bad(spec, "%s: empty file, no rows", path);
      goto done;
    }
    lineno++;
    ls = p;
    p = line_end(p, end, &le);
  } while (is_blank(ls, le));
  const char *first = ls, *after_first = p;
  int64_t first_line = lineno;

  /* the first row: its fields give the column count and, when one is not a number, names */
  int64_t cols = 1;
  for (const char *q = field_end(ls, le); q < le; q = field_end(q + 1, le)) cols++;
  if (cols == 1) {
    const char *semi = memchr(ls, ';', (size_t)(le - ls)),
               *tab = memchr(ls, '\t', (size_t)(le - ls));
    if (semi || tab) {
      st = bad(spec,
               "%s:%lld: no commas, but %s: sketchgn reads comma-separated values (convert "
               "first, e.g. tr '%s' ',' < IN > OUT.csv)",
               path, (long long)lineno,
               semi ? "semicolons (';') separate the fields" : "tabs separate the fields",
               semi ? ";" : "\\t");
      goto done;
    }
  }
  head = calloc((size_t)cols, sizeof *head);
  cols_map = calloc((size_t)(2 * cols), sizeof *cols_map);
  row = calloc((size_t)cols, sizeof *row);
  if (!head || !cols_map || !row) {
    st = oom(spec, path, (size_t)cols * (sizeof *head + 2 * sizeof *cols_map + sizeof *row));
    goto done;
  }
  int header = 0;
  for (int64_t c = 0, at = 0; c < cols; c++) {
    const char *s = ls + at, *e = field_end(s, le);
    at = e - ls + 1;
    field_trim(&s, &e);
    head[c] = (csv_field){s, e};
    float v;
    if (s < e && parse_float(s, e, &v) == NUM_BAD) header = 1;
  }
  int64_t *ycol = cols_map, *xcol = cols_map + cols, k = 0, d;
  if (w && w->inputs == cols && !targets && !o->k) {
    for (int64_t c = 0; c < cols; c++) xcol[c] = c; /* unlabeled: every column an input */
  } else {
    st = csv_pick_targets(spec, path, targets, o->k, header ? head : NULL, first_line, cols, ycol,
                          &k, xcol);
    if (st) goto done;
  }
  d = cols - k;
  const int64_t text_col = w && w->text_labels && k == 1 ? ycol[0] : -1;

  /* rows to hold: the non-blank lines, at most what the bytes allow plus one spare, and n= */
  const char *data = header ? after_first : first;
  int64_t data_line = header ? first_line + 1 : first_line, lines = 0;
  for (const char *q = data; q < end;) {
    const char *s = q, *e;
    q = line_end(q, end, &e);
    if (s < e && *s != ' ' && *s != '\t' && *s != '\r') lines++;
    else lines += !is_blank(s, e);
  }
  cap = (int64_t)((size_t)(end - data) + 1) / (2 * cols - 1) + 1;
  if (lines < cap) cap = lines;
  if (o->n && o->n < cap) cap = o->n;
  X = alloc_floats(spec, path, cap, d);
  Y = alloc_floats(spec, path, cap, k);
  if (text_col >= 0 && !(text = calloc((size_t)cap, sizeof *text))) {
    st = oom(spec, path, (size_t)cap * sizeof *text);
    goto done;
  }
  if (!X || !Y) {
    st = SGN_E_RUNTIME;
    goto done;
  }

  int64_t rows = 0;
  lineno = data_line - 1;
  char sb[48];
  for (p = data; p < end && rows < cap;) {
    ls = p;
    p = line_end(p, end, &le);
    lineno++;
    if (is_blank(ls, le)) continue;
    int64_t c = 0;
    for (const char *q = ls;; q++) {
      const char *s = q;
      q = field_end(q, le);
      if (c == cols) {
        st = bad(spec, "%s:%lld:%lld: row has more than %lld fields (as on line %lld)", path,
                 (long long)lineno, (long long)(s - ls + 1), (long long)cols,
                 (long long)first_line);
        goto done;
      }
      const char *e = q;
      field_trim(&s, &e);
      int r = parse_float(s, e, &row[c]);
      if (r != NUM_OK && c == text_col && !is_missing(s, e)) {
        if (!(text[rows] = strndup(s, (size_t)(e - s)))) {
          st = oom(spec, path, (size_t)(e - s) + 1);
          goto done;
        }
        row[c] = NAN, r = NUM_OK, any_text = 1;
      }
      if (r != NUM_OK && is_missing(s, e)) {
        st = bad(spec,
                 "%s:%lld:%lld: field %lld '%s' is %s; sketchgn does not impute missing values: "
                 "remove those rows or fill them in first",
                 path, (long long)lineno, (long long)(s - ls + 1), (long long)c + 1,
                 shown(s, e, sb),
                 s == e                        ? "empty"
                 : nan_or_inf(s, e) == NUM_NAN ? "NaN, a missing value"
                                               : "a missing value");
        goto done;
      }
      if (r != NUM_OK) {
        const char *what = r == NUM_NAN     ? "is NaN; remove or impute missing values"
                           : r == NUM_INF   ? "is infinite"
                           : r == NUM_RANGE ? "is out of float range"
                           : r == NUM_LONG  ? "is too long for a number"
                           : s == e         ? "is empty"
                                            : "is not a number";
        st = bad(spec, "%s:%lld:%lld: field %lld '%s' %s", path, (long long)lineno,
                 (long long)(s - ls + 1), (long long)c + 1, shown(s, e, sb), what);
        goto done;
      }
      c++;
      if (q >= le) break;
    }
    if (c < cols) {
      st = bad(spec, "%s:%lld:%lld: row has %lld fields, expected %lld (as on line %lld)", path,
               (long long)lineno, (long long)(le - ls + 1), (long long)c, (long long)cols,
               (long long)first_line);
      goto done;
    }
    for (int64_t j = 0; j < d; j++) X[rows * d + j] = row[xcol[j]];
    for (int64_t j = 0; j < k; j++) Y[rows * k + j] = row[ycol[j]];
    rows++;
  }
  if (rows == 0) {
    st = bad(spec, "%s: only a header row (line %lld), no data", path, (long long)first_line);
    goto done;
  }
  int64_t keep = 0;
  st = keep_rows(spec, path, o, rows, &keep);
  if (st) goto done;
  if (k == 0) free(Y), Y = NULL;
  *out = (sgn_dataset){.n = keep, .d = d, .k = k, .X = X, .Y = Y, .labels = 0};
  X = Y = NULL;
  if (any_text && text_out) *text_out = text, text = NULL;
done:
  if (text) sgn_data_text_free(text, cap);
  free(buf), free(head), free(cols_map), free(row), free(X), free(Y);
  return st;
}

/* ---- NPY ---- */

#define NPY_MAX_DIM 32

typedef struct npy_file {
  const char *path;
  FILE *f;   /* positioned at the data */
  char kind; /* 'f' float, 'i' signed or 'u' unsigned integer */
  int size;  /* bytes per element */
  int ndim;
  int64_t shape[NPY_MAX_DIM];
  int64_t n, row; /* shape[0] and the product of the other dimensions */
} npy_file;

/* The value of 'key' in the header dict, past its colon and blanks; NULL if absent. */
static const char *npy_key(const char *hdr, const char *key) {
  char pat[32];
  for (int q = 0; q < 2; q++) {
    snprintf(pat, sizeof pat, q ? "\"%s\"" : "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) continue;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p++ != ':') return NULL;
    while (*p == ' ') p++;
    return p;
  }
  return NULL;
}

static const char *npy_shape_str(const npy_file *nf, char buf[128]) {
  int at = snprintf(buf, 128, "(");
  for (int i = 0; i < nf->ndim && at < 100; i++)
    at += snprintf(buf + at, (size_t)(128 - at), "%s%lld", i ? ", " : "", (long long)nf->shape[i]);
  snprintf(buf + at, (size_t)(128 - at), nf->ndim == 1 ? ",)" : ")");
  return buf;
}

/* The header's dict: descr, fortran_order and shape. */
static sgn_status npy_parse_header(const char *spec, npy_file *nf, const char *hdr) {
  const char *path = nf->path, *v = npy_key(hdr, "descr");
  if (!v) return bad(spec, "%s: NPY header has no 'descr'", path);
  if (*v == '[') return bad(spec, "%s: structured dtypes are not supported", path);
  char q = *v, descr[16] = {0}; /* zeroed: a short descr is read up to descr[3] and by atoi */
  const char *close = (q == '\'' || q == '"') ? strchr(v + 1, q) : NULL;
  if (!close || close - v - 1 >= (ptrdiff_t)sizeof descr)
    return bad(spec, "%s: malformed 'descr' in the NPY header", path);
  memcpy(descr, v + 1, (size_t)(close - v - 1));
  descr[close - v - 1] = 0;
  char sb[48]; /* descr as messages show it: file bytes, so non-printing ones become '?' */
  shown(descr, descr + strlen(descr), sb);
  char order = descr[0], kind = descr[1];
  int size = atoi(descr + 2);
  int ok_kind = (kind == 'f' && (size == 4 || size == 8) && !descr[3]) ||
                ((kind == 'i' || kind == 'u') &&
                 (size == 1 || size == 2 || size == 4 || size == 8) && !descr[3]);
  if (ok_kind && size > 1 && order == '>')
    return bad(spec,
               "%s: big-endian dtype '%s' is not supported; convert with "
               "a.astype('<%c%d')",
               path, sb, kind, size);
  if (!ok_kind || !strchr(size == 1 ? "<>|=" : "<=", order) || !order)
    return bad(spec, "%s: unsupported dtype '%s' (need <f4, <f8, |u1 or a little-endian integer)",
               path, sb);
  nf->kind = kind, nf->size = size;

  v = npy_key(hdr, "fortran_order");
  if (v && !strncmp(v, "True", 4))
    return bad(spec,
               "%s: fortran_order True (column-major) is not supported; save "
               "np.ascontiguousarray(a)",
               path);
  if (!v || strncmp(v, "False", 5))
    return bad(spec, "%s: malformed 'fortran_order' in the NPY header", path);

  v = npy_key(hdr, "shape");
  if (!v || *v != '(') return bad(spec, "%s: malformed 'shape' in the NPY header", path);
  for (v++;;) {
    while (*v == ' ') v++;
    if (*v == ')') break;
    if (!is_digit(*v) || nf->ndim == NPY_MAX_DIM)
      return bad(spec, "%s: malformed 'shape' in the NPY header", path);
    int64_t dim = 0;
    for (; is_digit(*v); v++)
      if (__builtin_mul_overflow(dim, 10, &dim) || __builtin_add_overflow(dim, *v - '0', &dim))
        return bad(spec, "%s: a dimension in the NPY header's shape overflows", path);
    nf->shape[nf->ndim++] = dim;
    while (*v == ' ') v++;
    if (*v == ',') v++;
    else if (*v != ')') return bad(spec, "%s: malformed 'shape' in the NPY header", path);
  }
  return SGN_OK;
}

/* Opens an NPY file, reads its header and checks the bytes its shape declares against the
 * file's real length, all before any allocation the header could size. */
static sgn_status npy_open(const char *spec, const char *path, npy_file *nf) {
  memset(nf, 0, sizeof *nf);
  nf->path = path;
  FILE *f = fopen(path, "rb");
  if (!f) return bad(spec, "%s: cannot open: %s", path, strerror(errno));
  char *hdr = NULL;
  sgn_status st = SGN_OK;
  struct stat sb;
  unsigned char pre[12];
  if (fstat(fileno(f), &sb) || !S_ISREG(sb.st_mode)) {
    st = bad(spec, "%s: not a regular file", path);
    goto done;
  }
  size_t got = fread(pre, 1, 10, f);
  if (got < 6 || memcmp(pre, "\x93NUMPY", 6)) {
    st = bad(spec, "%s: not an NPY file (no \\x93NUMPY magic)", path);
    goto done;
  }
  if (got < 10) { /* every version's preamble is at least 10 bytes; pre[6..9] must be read */
    st = bad(spec, "%s: truncated NPY header", path);
    goto done;
  }
  int major = pre[6];
  if (major < 1 || major > 3) {
    st = bad(spec, "%s: unsupported NPY format version %d", path, major);
    goto done;
  }
  int64_t off = major == 1 ? 10 : 12, hlen;
  if (major > 1 && fread(pre + 10, 1, 2, f) < 2) {
    st = bad(spec, "%s: truncated NPY header", path);
    goto done;
  }
  hlen = major == 1 ? pre[8] | pre[9] << 8
                    : (int64_t)pre[8] | pre[9] << 8 | pre[10] << 16 | (int64_t)pre[11] << 24;
  if (hlen > (int64_t)sb.st_size - off) {
    st = bad(spec, "%s: truncated NPY header (%lld bytes declared, the file has %lld)", path,
             (long long)hlen, (long long)sb.st_size);
    goto done;
  }
  if (hlen > (1 << 20)) {
    st = bad(spec, "%s: NPY header of %lld bytes is implausibly large", path, (long long)hlen);
    goto done;
  }
  hdr = malloc((size_t)hlen + 1);
  if (!hdr) {
    st = oom(spec, path, (size_t)hlen + 1);
    goto done;
  }
  if (fread(hdr, 1, (size_t)hlen, f) != (size_t)hlen) {
    st = sgn_fail(SGN_E_RUNTIME, "--data '%s': %s: read error in the NPY header", spec, path);
    goto done;
  }
  hdr[hlen] = 0;
  st = npy_parse_header(spec, nf, hdr);
  if (st) goto done;

  int64_t count = 1, bytes;
  char shape[128];
  for (int i = 0; i < nf->ndim; i++)
    if (__builtin_mul_overflow(count, nf->shape[i], &count)) count = -1;
  if (count < 0 || __builtin_mul_overflow(count, (int64_t)nf->size, &bytes)) {
    st = bad(spec, "%s: NPY shape %s overflows a 64-bit byte count", path,
             npy_shape_str(nf, shape));
    goto done;
  }
  int64_t have = (int64_t)sb.st_size - off - hlen;
  if (bytes != have) {
    st = bad(spec,
             "%s: NPY header declares shape %s of %d-byte elements = %lld bytes of data, "
             "but %lld bytes follow the header%s",
             path, npy_shape_str(nf, shape), nf->size, (long long)bytes, (long long)have,
             bytes > have ? " (truncated?)" : "");
    goto done;
  }
  nf->n = nf->ndim ? nf->shape[0] : 1;
  nf->row = 1;
  for (int i = 1; i < nf->ndim; i++) /* with n = 0 the other dimensions may still be huge */
    if (__builtin_mul_overflow(nf->row, nf->shape[i], &nf->row)) nf->row = 0;
  nf->f = f;
  f = NULL;
done:
  free(hdr);
  if (f) fclose(f);
  return st;
}

/* Little-endian element bytes to float. */
static double npy_value(const unsigned char *b, char kind, int size) {
  uint64_t u = 0;
  for (int i = size - 1; i >= 0; i--) u = u << 8 | b[i];
  if (kind == 'f' && size == 4) {
    uint32_t w = (uint32_t)u;
    float f;
    memcpy(&f, &w, 4);
    return f;
  }
  if (kind == 'f') {
    double x;
    memcpy(&x, &u, 8);
    return x;
  }
  if (kind == 'u') return (double)u;
  if (size < 8 && (u >> (8 * size - 1)) & 1) u |= ~0ull << (8 * size); /* sign-extend */
  return (double)(int64_t)u;
}

/* The first rows (rows, nf->row) into dst, chunk by chunk; NaN and Inf are errors. */
static sgn_status npy_read(const char *spec, npy_file *nf, int64_t rows, float *dst) {
  enum { CHUNK = 1 << 20 };
  unsigned char *buf = malloc(CHUNK);
  if (!buf) return oom(spec, nf->path, CHUNK);
  int64_t total = rows * nf->row, done = 0, per = CHUNK / nf->size;
  sgn_status st = SGN_OK;
  while (done < total && !st) {
    int64_t cnt = total - done < per ? total - done : per;
    if (fread(buf, (size_t)nf->size, (size_t)cnt, nf->f) != (size_t)cnt) {
      st = sgn_fail(SGN_E_RUNTIME, "--data '%s': %s: read error", spec, nf->path);
      break;
    }
    for (int64_t i = 0; i < cnt; i++) {
      double v = npy_value(buf + i * nf->size, nf->kind, nf->size);
      float f = (float)v;
      if (!isfinite(f)) {
        int64_t at = done + i;
        st = bad(spec, "%s: element [%lld, %lld] %s", nf->path, (long long)(at / nf->row),
                 (long long)(at % nf->row),
                 isnan(v)   ? "is NaN"
                 : isinf(v) ? "is infinite"
                            : "is out of float range");
        break;
      }
      dst[done + i] = f;
    }
    done += cnt;
  }
  free(buf);
  return st;
}

/* Inputs (n, d...) flattened to (n, d); targets (n,) or (n, k); integer targets of shape (n,)
 * are class labels. */
/* An NPY of inputs alone (n, ...) flattened to (n, d): k = 0, Y NULL. */
static sgn_status load_npy_inputs(const char *spec, const char *path, const spec_opts *o,
                                  sgn_dataset *out) {
  npy_file xf;
  char shape[128];
  float *X = NULL;
  sgn_status st = npy_open(spec, path, &xf);
  if (st) return st;
  int64_t keep = 0;
  if (xf.ndim < 2 || xf.n == 0 || xf.row == 0)
    st = bad(spec, "%s: inputs have shape %s; need 2-D (n, d) with data", path,
             npy_shape_str(&xf, shape));
  else if (!(st = keep_rows(spec, path, o, xf.n, &keep)) &&
           !(X = alloc_floats(spec, path, keep, xf.row)))
    st = SGN_E_RUNTIME;
  if (!st) st = npy_read(spec, &xf, keep, X);
  if (!st) *out = (sgn_dataset){.n = keep, .d = xf.row, .k = 0, .X = X, .Y = NULL}, X = NULL;
  fclose(xf.f);
  free(X);
  return st;
}

static sgn_status load_npy(const char *spec, const char *path, const char *targets,
                           const spec_opts *o, const sgn_data_want *w, sgn_dataset *out) {
  if (!targets && w && w->inputs > 0) return load_npy_inputs(spec, path, o, out);
  if (!targets)
    return bad(spec,
               "%s: NPY inputs need their targets: pass --targets FILE.npy, shape (n,) or "
               "(n, k)",
               path);
  npy_file xf, yf = {0};
  float *X = NULL, *Y = NULL;
  char shape[128];
  sgn_status st = npy_open(spec, path, &xf);
  if (st) return st;
  if (xf.ndim < 2) {
    st = bad(spec, "%s: inputs have shape %s; need 2-D (n, d) (reshape a 1-D array to (n, 1))",
             path, npy_shape_str(&xf, shape));
    goto done;
  }
  if (xf.n == 0 || xf.row == 0) {
    st = bad(spec, "%s: inputs have shape %s, no data", path, npy_shape_str(&xf, shape));
    goto done;
  }
  st = npy_open(spec, targets, &yf);
  if (st) goto done;
  if (yf.ndim < 1 || yf.ndim > 2 || yf.row == 0) {
    st = bad(spec, "%s: targets have shape %s; need (n,) or (n, k)", targets,
             npy_shape_str(&yf, shape));
    goto done;
  }
  if (yf.n != xf.n) {
    st = bad(spec, "%s holds %lld samples but --targets %s holds %lld", path, (long long)xf.n,
             targets, (long long)yf.n);
    goto done;
  }
  int64_t keep = 0;
  st = keep_rows(spec, path, o, xf.n, &keep);
  if (st) goto done;
  X = alloc_floats(spec, path, keep, xf.row);
  Y = alloc_floats(spec, targets, keep, yf.row);
  if (!X || !Y) {
    st = SGN_E_RUNTIME;
    goto done;
  }
  if ((st = npy_read(spec, &xf, keep, X)) || (st = npy_read(spec, &yf, keep, Y))) goto done;
  int labels = yf.ndim == 1 && yf.kind != 'f';
  for (int64_t i = 0; labels && i < keep; i++)
    if (Y[i] < 0 || Y[i] > 16777216.0f) {
      st = bad(spec, "%s: integer targets are class labels and must lie in 0..2^24; y[%lld] = %.0f",
               targets, (long long)i, (double)Y[i]);
      goto done;
    }
  *out = (sgn_dataset){.n = keep, .d = xf.row, .k = yf.row, .X = X, .Y = Y, .labels = labels};
  X = Y = NULL;
done:
  if (xf.f) fclose(xf.f);
  if (yf.f) fclose(yf.f);
  free(X), free(Y);
  return st;
}

/* ---- IDX and fashion-mnist ---- */

#define IDX_IMAGES 0x00000803u /* uint8, 3 dimensions: (n, rows, cols) */
#define IDX_LABELS 0x00000801u /* uint8, 1 dimension: (n) */

/* Reads up to len bytes; *got is how many arrived. Returns zlib's message after a stream error
 * (a truncated or corrupt gzip file), else NULL; a plain early end is *got < len. */
static const char *gz_read_some(gzFile g, const char *path, void *buf, size_t len, size_t *got) {
  *got = 0;
  while (*got < len) {
    size_t ask = len - *got < (1u << 30) ? len - *got : (1u << 30);
    int r = gzread(g, (unsigned char *)buf + *got, (unsigned)ask);
    int errnum = Z_OK;
    const char *msg = gzerror(g, &errnum);
    if (r < 0 || (errnum != Z_OK && errnum != Z_STREAM_END)) {
      if (errnum == Z_ERRNO) return strerror(errno);
      size_t plen = strlen(path); /* zlib prefixes the path, which the caller names already */
      return !strncmp(msg, path, plen) && !strncmp(msg + plen, ": ", 2) ? msg + plen + 2 : msg;
    }
    if (r == 0) break;
    *got += (size_t)r;
  }
  return NULL;
}

typedef struct idx_file {
  const char *path;
  gzFile g;        /* positioned at the data */
  uint32_t dim[3]; /* n, then rows and cols for images */
} idx_file;

static sgn_status idx_open(const char *spec, const char *path, uint32_t magic, idx_file *xf) {
  memset(xf, 0, sizeof *xf);
  xf->path = path;
  struct stat sb;
  if (stat(path, &sb)) return bad(spec, "%s: cannot open: %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode)) return bad(spec, "%s: not a regular file", path);
  gzFile g = gzopen(path, "rb");
  if (!g) return bad(spec, "%s: cannot open: %s", path, strerror(errno));
  unsigned char h[16];
  int ndim = (int)(magic & 0xff);
  size_t want = 4 + 4 * (size_t)ndim, got;
  const char *why = gz_read_some(g, path, h, want, &got);
  sgn_status st = SGN_OK;
  uint32_t m = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
  if (why) st = bad(spec, "%s: truncated or corrupt gzip stream (zlib: %s)", path, why);
  else if (got < 4 || (m == magic && got < want))
    st = bad(spec, "%s: truncated IDX header (%zu bytes)", path, got);
  else if (m != magic)
    st = bad(spec, "%s: wrong magic 0x%08x, expected 0x%08x (IDX uint8 %s)%s", path, m, magic,
             magic == IDX_IMAGES ? "images (n, rows, cols)" : "labels (n)",
             m == (IDX_IMAGES ^ IDX_LABELS ^ magic) ? "; images and labels swapped?" : "");
  if (st) {
    gzclose(g);
    return st;
  }
  for (int i = 0; i < ndim; i++) {
    const unsigned char *b = h + 4 + 4 * i;
    xf->dim[i] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
  }
  xf->g = g;
  return SGN_OK;
}

/* want bytes of data; the buffer grows as data arrives, so a header that claims more than the
 * file holds costs at most twice what was really there. full: the whole declared data, after
 * which the stream must end (this also checks a gzip file's CRC). */
static sgn_status idx_read(const char *spec, idx_file *xf, size_t want, int full, const char *claim,
                           uint8_t **out) {
  size_t cap = want < (1u << 20) ? want : (1u << 20), have = 0, got;
  uint8_t *buf = malloc(cap ? cap : 1);
  if (!buf) return oom(spec, xf->path, cap);
  for (;;) {
    const char *why = gz_read_some(xf->g, xf->path, buf + have, cap - have, &got);
    have += got;
    if (why) {
      free(buf);
      return bad(spec,
                 "%s: truncated or corrupt gzip stream (zlib: %s) after %zu of %zu "
                 "data bytes",
                 xf->path, why, have, want);
    }
    if (have < cap) {
      free(buf);
      return bad(spec, "%s: truncated: the header declares %s (%zu bytes), the data ends after %zu",
                 xf->path, claim, want, have);
    }
    if (have == want) break;
    cap = want - cap < cap ? want : 2 * cap;
    uint8_t *grown = realloc(buf, cap);
    if (!grown) {
      free(buf);
      return oom(spec, xf->path, cap);
    }
    buf = grown;
  }
  if (full) {
    unsigned char extra;
    const char *why = gz_read_some(xf->g, xf->path, &extra, 1, &got);
    if (why || got) {
      free(buf);
      return why ? bad(spec, "%s: truncated or corrupt gzip stream (zlib: %s) after the data",
                       xf->path, why)
                 : bad(spec, "%s: more data than the header declares (%s)", xf->path, claim);
    }
  }
  *out = buf;
  return SGN_OK;
}

/* MNIST-format images (n, rows, cols) and labels (n), both uint8, plain or gzip. */
static sgn_status load_idx(const char *spec, const char *ipath, const char *lpath,
                           const spec_opts *o, sgn_dataset *out) {
  idx_file xf, yf = {0};
  uint8_t *xb = NULL, *yb = NULL;
  float *X = NULL, *Y = NULL;
  sgn_status st = idx_open(spec, ipath, IDX_IMAGES, &xf);
  if (st) return st;
  if ((st = idx_open(spec, lpath, IDX_LABELS, &yf))) goto done;
  if (xf.dim[0] != yf.dim[0]) {
    st = bad(spec, "images %s hold %u samples but labels %s hold %u", ipath, xf.dim[0], lpath,
             yf.dim[0]);
    goto done;
  }
  if (xf.dim[0] == 0 || xf.dim[1] == 0 || xf.dim[2] == 0) {
    st = bad(spec, "%s: no data (header declares %u images of %ux%u)", ipath, xf.dim[0], xf.dim[1],
             xf.dim[2]);
    goto done;
  }
  int64_t n = xf.dim[0], d, keep = 0, bytes;
  if ((st = keep_rows(spec, ipath, o, n, &keep))) goto done;
  if (__builtin_mul_overflow((int64_t)xf.dim[1], (int64_t)xf.dim[2], &d) ||
      __builtin_mul_overflow(keep, d, &bytes) || (uint64_t)bytes > SIZE_MAX / sizeof(float)) {
    st = bad(spec, "%s: %lld images of %ux%u are too many to load", ipath, (long long)keep,
             xf.dim[1], xf.dim[2]);
    goto done;
  }
  char claim[96];
  snprintf(claim, sizeof claim, "%lld images of %ux%u", (long long)keep, xf.dim[1], xf.dim[2]);
  if ((st = idx_read(spec, &xf, (size_t)bytes, keep == n, claim, &xb))) goto done;
  snprintf(claim, sizeof claim, "%lld labels", (long long)keep);
  if ((st = idx_read(spec, &yf, (size_t)keep, keep == n, claim, &yb))) goto done;
  X = alloc_floats(spec, ipath, keep, d);
  Y = alloc_floats(spec, lpath, keep, 1);
  if (!X || !Y) {
    st = SGN_E_RUNTIME;
    goto done;
  }
  for (int64_t i = 0; i < bytes; i++) X[i] = xb[i];
  for (int64_t i = 0; i < keep; i++) Y[i] = yb[i];
  *out = (sgn_dataset){.n = keep, .d = d, .k = 1, .X = X, .Y = Y, .labels = 1};
  X = Y = NULL;
done:
  if (xf.g) gzclose(xf.g);
  if (yf.g) gzclose(yf.g);
  free(xb), free(yb), free(X), free(Y);
  return st;
}

/* "idx:IMAGES,LABELS[,n=N]" */
static sgn_status load_idx_spec(const char *spec, sgn_dataset *out) {
  const char *a = spec + 4, *b = strchr(a, ',');
  if (!b || b == a || b[1] == ',' || !b[1]) return bad(spec, "expected idx:IMAGES,LABELS[,n=N]");
  const char *c = strchr(b + 1, ',');
  char *ipath = strndup(a, (size_t)(b - a));
  char *lpath = c ? strndup(b + 1, (size_t)(c - b - 1)) : strdup(b + 1);
  sgn_status st;
  spec_opts o;
  if (!ipath || !lpath) st = oom(spec, "spec", strlen(spec));
  else if (!(st = parse_opts(spec, c ? c + 1 : "", 0, &o)))
    st = load_idx(spec, ipath, lpath, &o, out);
  free(ipath), free(lpath);
  return st;
}

/* DIR/NAME, else DIR/NAME.gz; an error names the folder and how to install the dataset. */
static sgn_status fashion_file(const char *spec, const char *dir, const char *name, char *path,
                               size_t size) {
  struct stat sb;
  const char *hint =
      "scripts/install-deps.sh installs it (Debian package dataset-fashion-mnist), "
      "or set SKETCHGN_DATA to a folder holding the IDX files";
  if (stat(dir, &sb) || !S_ISDIR(sb.st_mode))
    return bad(spec, "fashion-mnist folder %s not found; %s", dir, hint);
  size_t len = (size_t)snprintf(path, size, "%s/%s", dir, name);
  if (len + 4 > size) return bad(spec, "fashion-mnist folder path %s is too long", dir);
  if (!stat(path, &sb)) return SGN_OK;
  memcpy(path + len, ".gz", 4);
  if (!stat(path, &sb)) return SGN_OK;
  return bad(spec, "%s not found (nor %s/%s); %s", path, dir, name, hint);
}

/* "fashion-mnist[:train|:test][,n=N]" from $SKETCHGN_DATA or the Debian package's folder. */
static sgn_status load_fashion(const char *spec, sgn_dataset *out) {
  const char *p = spec + strlen("fashion-mnist"), *split = "train";
  if (*p == ':') {
    size_t len = strcspn(p + 1, ",");
    if (len == 4 && !strncmp(p + 1, "test", 4)) split = "t10k";
    else if (len != 5 || strncmp(p + 1, "train", 5))
      return bad(spec, "unknown fashion-mnist split '%.*s' (train or test)", (int)len, p + 1);
    p += 1 + len;
  }
  spec_opts o;
  sgn_status st = parse_opts(spec, *p == ',' ? p + 1 : p, 0, &o);
  if (st) return st;
  const char *dir = getenv("SKETCHGN_DATA");
  if (!dir || !*dir) dir = "/usr/share/datasets/fashion-mnist";
  char ipath[4096], lpath[4096], iname[64], lname[64];
  snprintf(iname, sizeof iname, "%s-images-idx3-ubyte", split);
  snprintf(lname, sizeof lname, "%s-labels-idx1-ubyte", split);
  if ((st = fashion_file(spec, dir, iname, ipath, sizeof ipath)) ||
      (st = fashion_file(spec, dir, lname, lpath, sizeof lpath)))
    return st;
  return load_idx(spec, ipath, lpath, &o, out);
}

/* ---- dispatch ---- */

void sgn_data_text_free(char **text, int64_t n) {
  for (int64_t i = 0; text && i < n; i++) free(text[i]);
  free(text);
}

sgn_status sgn_data_load(const char *spec, const char *targets, sgn_dataset *out) {
  return sgn_data_load_ex(spec, targets, NULL, out, NULL);
}

sgn_status sgn_data_load_ex(const char *spec, const char *targets, const sgn_data_want *want,
                            sgn_dataset *out, char ***text) {
  memset(out, 0, sizeof *out);
  if (text) *text = NULL;
  int synth = !strncmp(spec, "synth:", 6) || !strcmp(spec, "synth");
  int idx = !strncmp(spec, "idx:", 4);
  int fashion = !strncmp(spec, "fashion-mnist", 13) &&
                (spec[13] == 0 || spec[13] == ':' || spec[13] == ',');
  if ((synth || idx || fashion) && targets)
    return bad(spec, "--targets '%s' applies only to CSV and NPY data", targets);
  if (synth) return load_synth(spec, spec[5] ? spec + 6 : "", out);
  if (idx) return load_idx_spec(spec, out);
  if (fashion) return load_fashion(spec, out);

  /* FILE[,options]: the kind from the file name */
  const char *comma = strchr(spec, ',');
  int csv = 0, npy = 0;
  char *path = strndup(spec, comma ? (size_t)(comma - spec) : strlen(spec));
  if (!path) return oom(spec, "spec", strlen(spec));
  csv = has_suffix(path, ".csv") || has_suffix(path, ".txt");
  npy = has_suffix(path, ".npy");
  spec_opts o;
  sgn_status st;
  if (!csv && !npy)
    st = bad(spec,
             "unknown data spec (expected synth:n=N,d=D,k=K,seed=S, FILE.csv, FILE.txt, "
             "FILE.npy, idx:IMAGES,LABELS or fashion-mnist[:train|:test])");
  else if (!(st = parse_opts(spec, comma ? comma + 1 : "", csv, &o)))
    st = csv ? load_csv(spec, path, targets, &o, want, out, text)
             : load_npy(spec, path, targets, &o, want, out);
  free(path);
  return st;
}
