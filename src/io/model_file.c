/* model_file.c — model files and checkpoints. Saves go to PATH.tmp, fsync, rename: PATH holds the
 * old or the new file, never half of one. Loads check the header and the exact file length before
 * allocating, then the CRC, then the values: bad input is a one-line SGN_E_INPUT naming the file.
 *
 * Format, version 1 (version 2 adds the extension block; a file without extras is still written as
 * version 1, and both are read). Integers little-endian, floats IEEE-754 binary32 little-endian, no padding:
 *   offset  bytes  field
 *        0      8  magic "SKGNMODL" (model file) or "SKGNCKPT" (checkpoint)
 *        8      4  u32 version = 1 or 2
 *       12      4  u32 flags, reserved: 0
 *       16      8  i64 d        model input dimension, = d_in + (normalize == sphere) + bias
 *       24      8  i64 m        hidden width
 *       32      8  i64 k        outputs
 *       40      4  u32 task     0 regression, 1 classify
 *       44      8  i64 classes  k (>= 2) when classifying, else 0
 *       52      4  u32 normalize  sgn_normalize: 0 unit, 1 none, 2 standard, 3 standard+unit,
 *                                 4 sphere
 *       56      4  u32 bias     0 or 1
 *       60      8  i64 d_in     raw input columns
 *       68         f32 mean[d_in], f32 scale[d_in], f32 A[m*k] (row-major, +-1 or separate outputs),
 *                  f32 W[m*d] (row-major); all finite
 *                  version 2 only: u64 ext_bytes, then ext_bytes of text, "key=value\n" lines
 *                  with '\\' and '\n' in values escaped as \\ and \n: "label=NAME" once per
 *                  class in class order (classifiers whose labels are not 0..K-1),
 *                  "target=MEAN SCALE" once per output in output order (regressions trained
 *                  on standardized targets: sgn_prep's y_mean, y_scale as %.17g, which reads
 *                  back to the same double; finite, SCALE > 0), and a checkpoint's run
 *                  settings ("arg=TOKEN", "fingerprint=...", train.c)
 *                  checkpoints only: u64 state_bytes, then state_bytes opaque bytes
 *     last      4  u32 CRC32 (zlib crc32) of every byte before it
 * Size: 68 + 4 (2 d_in + m k + m d) [+ 8 + ext_bytes] [+ 8 + state_bytes] + 4 bytes, exactly. */
#include "model_file.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"

#define FORMAT_VERSION 1u /* without extras */
#define FORMAT_VERSION_EXT 2u
#define HEADER_BYTES 68
#define CRC_BYTES 4
static const char MAGIC_MODEL[8] = {'S', 'K', 'G', 'N', 'M', 'O', 'D', 'L'};
static const char MAGIC_CKPT[8] = {'S', 'K', 'G', 'N', 'C', 'K', 'P', 'T'};

/* ---- little-endian encoding ---- */

static void put_u32(uint8_t *b, uint32_t v) {
  for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *b, uint64_t v) {
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *b) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= (uint32_t)b[i] << (8 * i);
  return v;
}
static uint64_t get_u64(const uint8_t *b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
  return v;
}

static int host_is_little_endian(void) {
  const uint32_t one = 1;
  uint8_t b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* zlib's crc32 takes a uInt length; feed it in chunks. */
static uLong crc_update(uLong crc, const void *buf, size_t len) {
  const Bytef *p = buf;
  while (len > 0) {
    uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
    crc = crc32(crc, p, chunk);
    p += chunk, len -= chunk;
  }
  return crc;
}

/* ---- the header and its checks (shared by save and load) ---- */

typedef struct header {
  int ckpt; /* magic: 0 model, 1 checkpoint */
  uint32_t version, flags;
  int64_t d, m, k;
  uint32_t task;
  int64_t classes;
  uint32_t normalize, bias;
  int64_t d_in;
} header;

static void header_encode(const header *h, uint8_t b[HEADER_BYTES]) {
  memcpy(b, h->ckpt ? MAGIC_CKPT : MAGIC_MODEL, 8);
  put_u32(b + 8, h->version);
  put_u32(b + 12, h->flags);
  put_u64(b + 16, (uint64_t)h->d);
  put_u64(b + 24, (uint64_t)h->m);
  put_u64(b + 32, (uint64_t)h->k);
  put_u32(b + 40, h->task);
  put_u64(b + 44, (uint64_t)h->classes);
  put_u32(b + 52, h->normalize);
  put_u32(b + 56, h->bias);
  put_u64(b + 60, (uint64_t)h->d_in);
}

/* The magic is checked by the caller. */
static void header_decode(const uint8_t b[HEADER_BYTES], header *h) {
  h->ckpt = memcmp(b, MAGIC_CKPT, 8) == 0;
  h->version = get_u32(b + 8);
  h->flags = get_u32(b + 12);
  h->d = (int64_t)get_u64(b + 16);
  h->m = (int64_t)get_u64(b + 24);
  h->k = (int64_t)get_u64(b + 32);
  h->task = get_u32(b + 40);
  h->classes = (int64_t)get_u64(b + 44);
  h->normalize = get_u32(b + 52);
  h->bias = get_u32(b + 56);
  h->d_in = (int64_t)get_u64(b + 60);
}

/* Every field's own range and their mutual consistency; 0 and a reason in why if broken. */
static int header_check(const header *h, char *why, size_t len) {
  if (h->d < 1 || h->m < 1 || h->k < 1 || h->d_in < 1) {
    snprintf(why, len, "sizes must be >= 1 (d=%lld, m=%lld, k=%lld, d_in=%lld)", (long long)h->d,
             (long long)h->m, (long long)h->k, (long long)h->d_in);
    return 0;
  }
  if (h->bias > 1) {
    snprintf(why, len, "bias flag %u is not 0 or 1", h->bias);
    return 0;
  }
  if (h->normalize != SGN_NORMALIZE_UNIT && h->normalize != SGN_NORMALIZE_NONE &&
      h->normalize != SGN_NORMALIZE_STANDARD && h->normalize != SGN_NORMALIZE_STANDARD_UNIT &&
      h->normalize != SGN_NORMALIZE_SPHERE) {
    snprintf(why, len, "unknown normalization mode %u", h->normalize);
    return 0;
  }
  const sgn_prep dims = {.mode = (sgn_normalize)h->normalize, .bias = (int)h->bias,
                         .d_in = h->d_in};
  if (h->d_in > INT64_MAX - 2 || h->d != sgn_prep_dim(&dims)) {
    snprintf(why, len, "input dimension d=%lld != d_in=%lld%s + bias=%u", (long long)h->d,
             (long long)h->d_in, h->normalize == SGN_NORMALIZE_SPHERE ? " + 1 (sphere)" : "",
             h->bias);
    return 0;
  }
  if (h->task == SGN_TASK_CLASSIFY) {
    if (h->k < 2 || h->classes != h->k) {
      snprintf(why, len, "classification with %lld classes needs classes == k >= 2 (k=%lld)",
               (long long)h->classes, (long long)h->k);
      return 0;
    }
  } else if (h->task == SGN_TASK_REGRESSION) {
    if (h->classes != 0) {
      snprintf(why, len, "regression model declares %lld classes (must be 0)",
               (long long)h->classes);
      return 0;
    }
  } else {
    snprintf(why, len, "unknown task %u", h->task);
    return 0;
  }
  return 1;
}

/* Bytes from the start of the file to the end of W; 0 if that overflows 63 bits. */
static uint64_t body_end(const header *h) {
  uint64_t mk, md, floats, bytes;
  if (__builtin_mul_overflow((uint64_t)h->m, (uint64_t)h->k, &mk) ||
      __builtin_mul_overflow((uint64_t)h->m, (uint64_t)h->d, &md) ||
      __builtin_add_overflow(mk, md, &floats) ||
      __builtin_add_overflow(floats, 2 * (uint64_t)h->d_in, &floats) ||
      __builtin_mul_overflow(floats, (uint64_t)sizeof(float), &bytes) ||
      __builtin_add_overflow(bytes, (uint64_t)HEADER_BYTES, &bytes) ||
      bytes > (uint64_t)INT64_MAX / 2)
    return 0;
  return bytes;
}

/* A +-1 or separate outputs; W, mean, scale finite. 0 and a reason if not. */
static int values_check(const sgn_model *model, const sgn_prep *prep, char *why, size_t len) {
  /* A is +-1 everywhere (shared outputs), or each output's own neurons (separate outputs) */
  for (int64_t i = 0; i < model->m * model->k && !sgn_model_is_separate(model); i++)
    if (model->A[i] != 1.0f && model->A[i] != -1.0f) {
      snprintf(why, len, "A[%lld,%lld] = %g is not +-1, and A is not the separate-outputs pattern",
               (long long)(i / model->k), (long long)(i % model->k), (double)model->A[i]);
      return 0;
    }
  for (int64_t i = 0; i < model->m * model->d; i++)
    if (!isfinite(model->W[i])) {
      snprintf(why, len, "W[%lld,%lld] is not finite", (long long)(i / model->d),
               (long long)(i % model->d));
      return 0;
    }
  for (int64_t j = 0; j < prep->d_in; j++)
    if (!isfinite(prep->mean[j]) || !isfinite(prep->scale[j])) {
      snprintf(why, len, "normalization statistics for column %lld are not finite", (long long)j);
      return 0;
    }
  return 1;
}

/* ---- the extension block (version 2) ---- */

void sgn_model_extra_free(sgn_model_extra *x) {
  if (!x) return;
  for (int64_t c = 0; c < x->nlabels && x->labels; c++) free(x->labels[c]);
  free(x->labels);
  free(x->run);
  memset(x, 0, sizeof *x);
}

/* Whether a file of x and prep has an extension block. */
static int ext_wanted(const sgn_model_extra *x, const sgn_prep *prep) {
  return (x && (x->nlabels || (x->run && *x->run))) || prep->k_y > 0;
}

/* The block's text (malloc'ed, *len bytes), or NULL with *len 0 when x and prep's targets hold
 * nothing (or out of memory). */
static char *ext_encode(const sgn_model_extra *x, const sgn_prep *prep, size_t *len) {
  static const sgn_model_extra none = {0};
  *len = 0;
  if (!ext_wanted(x, prep)) return NULL;
  if (!x) x = &none;
  size_t cap = 2 + (x->run ? strlen(x->run) : 0) + 64 * (size_t)prep->k_y;
  for (int64_t c = 0; c < x->nlabels; c++) cap += 8 + 2 * strlen(x->labels[c]);
  char *t = malloc(cap), *q = t;
  if (!t) return NULL;
  for (int64_t c = 0; c < prep->k_y; c++)
    q += sprintf(q, "target=%.17g %.17g\n", prep->y_mean[c], prep->y_scale[c]);
  for (int64_t c = 0; c < x->nlabels; c++) {
    q += sprintf(q, "label=");
    for (const char *p = x->labels[c]; *p; p++) {
      if (*p == '\\' || *p == '\n') *q++ = '\\', *q++ = *p == '\n' ? 'n' : '\\';
      else *q++ = *p;
    }
    *q++ = '\n';
  }
  if (x->run && *x->run) {
    size_t r = strlen(x->run);
    memcpy(q, x->run, r), q += r;
    if (q[-1] != '\n') *q++ = '\n';
  }
  *len = (size_t)(q - t);
  return t;
}

/* Text from a file quoted for a message: at most 40 characters, non-printing ones as '?'. */
static const char *shown(const char *s, size_t len, char buf[48]) {
  size_t i;
  for (i = 0; i < len && i < 40; i++) buf[i] = (s[i] >= 32 && s[i] < 127) ? s[i] : '?';
  if (len > 40) memcpy(buf + i, "...", 3), i += 3;
  buf[i] = 0;
  return buf;
}

/* "MEAN SCALE" (the text after "target=", le its end) into *mean, *scale: two numbers strtod
 * reads whole, one blank between them and no other white space; finite, scale > 0. 0 and a reason
 * if not. */
static int target_parse(const char *ls, const char *le, double *mean, double *scale, char *why,
                        size_t wlen) {
  char buf[128], sb[48], *e;
  size_t n = (size_t)(le - ls);
  if (n >= sizeof buf) {
    snprintf(why, wlen, "'%s' is too long", shown(ls, n, sb));
    return 0;
  }
  memcpy(buf, ls, n), buf[n] = 0;
  const char *sp = strchr(buf, ' ');
  if (!sp || isspace((unsigned char)buf[0]) || isspace((unsigned char)sp[1]) || sp[1] == 0) {
    snprintf(why, wlen, "'%s' is not MEAN SCALE", shown(buf, n, sb));
    return 0;
  }
  *mean = strtod(buf, &e);
  if (e != sp) {
    snprintf(why, wlen, "mean '%s' is not a number", shown(buf, (size_t)(sp - buf), sb));
    return 0;
  }
  *scale = strtod(sp + 1, &e);
  if (*e || e == sp + 1) {
    snprintf(why, wlen, "scale '%s' is not a number", shown(sp + 1, strlen(sp + 1), sb));
    return 0;
  }
  if (!isfinite(*mean) || !isfinite(*scale)) {
    snprintf(why, wlen, "mean %g and scale %g must be finite", *mean, *scale);
    return 0;
  }
  if (!(*scale > 0)) {
    snprintf(why, wlen, "scale %g is not > 0", *scale);
    return 0;
  }
  return 1;
}

/* Parses a block of len bytes into x, and its target lines into tp's k_y, y_mean, y_scale (the
 * rest of tp untouched); 0 and a reason if it is malformed (nothing left to free). */
static int ext_decode(const char *t, size_t len, const header *h, sgn_model_extra *x,
                      sgn_prep *tp, char *why, size_t wlen) {
  memset(x, 0, sizeof *x);
  tp->k_y = 0, tp->y_mean = tp->y_scale = NULL;
  if (len && t[len - 1] != '\n') {
    snprintf(why, wlen, "extension block does not end in a newline");
    return 0;
  }
  size_t run_len = 0;
  int64_t nl = 0, ntarget = 0;
  for (size_t i = 0; i < len;) {
    const char *ls = t + i, *le = memchr(ls, '\n', len - i);
    if (!memchr(ls, '=', (size_t)(le - ls)) || memchr(ls, 0, (size_t)(le - ls))) {
      snprintf(why, wlen, "extension line %lld is not key=value", (long long)(nl + 1));
      return 0;
    }
    if (!strncmp(ls, "label=", 6)) x->nlabels++;
    else if (!strncmp(ls, "target=", 7)) ntarget++;
    else run_len += (size_t)(le - ls) + 1;
    i = (size_t)(le - t) + 1, nl++;
  }
  if (ntarget && h->task != SGN_TASK_REGRESSION) {
    snprintf(why, wlen, "target statistics in a classification model");
    x->nlabels = 0;
    return 0;
  }
  if (ntarget && ntarget != h->k) {
    snprintf(why, wlen, "%lld target lines for a model of %lld outputs", (long long)ntarget,
             (long long)h->k);
    x->nlabels = 0;
    return 0;
  }
  if (x->nlabels && (h->task != SGN_TASK_CLASSIFY || x->nlabels != h->classes)) {
    snprintf(why, wlen, "%lld class labels for a model of %lld classes", (long long)x->nlabels,
             (long long)h->classes);
    x->nlabels = 0;
    return 0;
  }
  x->labels = x->nlabels ? calloc((size_t)x->nlabels, sizeof *x->labels) : NULL;
  x->run = run_len ? malloc(run_len + 1) : NULL;
  double *ym = ntarget ? malloc((size_t)ntarget * sizeof *ym) : NULL;
  double *ys = ntarget ? malloc((size_t)ntarget * sizeof *ys) : NULL;
  if ((x->nlabels && !x->labels) || (run_len && !x->run) || (ntarget && (!ym || !ys))) {
    snprintf(why, wlen, "out of memory");
    sgn_model_extra_free(x);
    free(ym), free(ys);
    return 0;
  }
  int64_t c = 0, ct = 0;
  char *r = x->run;
  for (size_t i = 0; i < len;) {
    const char *ls = t + i, *le = memchr(ls, '\n', len - i);
    i = (size_t)(le - t) + 1;
    if (!strncmp(ls, "target=", 7)) {
      char bad[160];
      if (!target_parse(ls + 7, le, &ym[ct], &ys[ct], bad, sizeof bad)) {
        snprintf(why, wlen, "target line %lld: %s", (long long)(ct + 1), bad);
        sgn_model_extra_free(x);
        free(ym), free(ys);
        return 0;
      }
      ct++;
      continue;
    }
    if (strncmp(ls, "label=", 6)) {
      memcpy(r, ls, (size_t)(le - ls) + 1), r += le - ls + 1;
      continue;
    }
    char *lab = malloc((size_t)(le - ls)), *q = lab;
    if (!lab) {
      snprintf(why, wlen, "out of memory");
      sgn_model_extra_free(x);
      free(ym), free(ys);
      return 0;
    }
    for (const char *p = ls + 6; p < le; p++) {
      if (*p == '\\' && p + 1 < le) p++, *q++ = *p == 'n' ? '\n' : *p;
      else *q++ = *p;
    }
    *q = 0;
    for (int64_t b = 0; b < c; b++)
      if (!strcmp(x->labels[b], lab)) {
        char sb[48];
        snprintf(why, wlen, "class label '%s' appears twice", shown(lab, strlen(lab), sb));
        free(lab);
        sgn_model_extra_free(x);
        free(ym), free(ys);
        return 0;
      }
    x->labels[c++] = lab;
  }
  if (r) *r = 0;
  tp->k_y = ntarget, tp->y_mean = ym, tp->y_scale = ys;
  return 1;
}

/* ---- saving ---- */

typedef struct writer {
  FILE *f;
  uLong crc;
  int err; /* errno of the first failure, 0 if none */
} writer;

static void write_bytes(writer *w, const void *buf, size_t len, int with_crc) {
  if (w->err || len == 0) return;
  if (with_crc) w->crc = crc_update(w->crc, buf, len);
  errno = 0;
  if (fwrite(buf, 1, len, w->f) != len) w->err = errno ? errno : EIO;
}

static void write_floats(writer *w, const float *x, int64_t count) {
  uint8_t buf[16384];
  const int64_t per = (int64_t)(sizeof buf / 4);
  for (int64_t off = 0; off < count && !w->err; off += per) {
    int64_t c = count - off < per ? count - off : per;
    for (int64_t i = 0; i < c; i++) {
      uint32_t u;
      memcpy(&u, x + off + i, 4);
      put_u32(buf + 4 * i, u);
    }
    write_bytes(w, buf, (size_t)c * 4, 1);
  }
}

/* errno values that mean "this path cannot be written" (the user's to fix), not a failed write. */
static int errno_is_path_problem(int e) {
  return e == EACCES || e == EPERM || e == ENOENT || e == ENOTDIR || e == EISDIR || e == EROFS ||
         e == ELOOP || e == ENAMETOOLONG || e == ETXTBSY || e == EEXIST;
}

static sgn_status write_error(const char *flag, const char *path, int e) {
  if (errno_is_path_problem(e))
    return sgn_fail(SGN_E_INPUT, "%s %s: cannot write: %s", flag, path, strerror(e));
  return sgn_fail(SGN_E_RUNTIME, "%s %s: write failed: %s", flag, path, strerror(e));
}

/* Best effort: make the rename itself durable. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

static sgn_status save_file(const char *path, const char *flag, int ckpt, const sgn_model *model,
                            const sgn_model_meta *meta, const sgn_model_extra *x, const void *state,
                            size_t state_bytes) {
  char why[256];
  if (!path || !*path) return sgn_fail(SGN_E_INPUT, "%s: empty file name", flag);
  if (!model || !meta || !model->W || !model->A || !meta->prep.mean || !meta->prep.scale ||
      (state_bytes > 0 && !state))
    return sgn_fail(SGN_E_RUNTIME, "%s %s: nothing to save (missing model, statistics or state)",
                    flag, path);
  const sgn_prep *prep = &meta->prep;
  if (prep->k_y < 0 || (prep->k_y > 0 && (!prep->y_mean || !prep->y_scale)))
    return sgn_fail(SGN_E_RUNTIME, "%s %s: nothing to save (target statistics missing)", flag,
                    path);
  size_t ext_len = 0;
  char *ext = ext_encode(x, prep, &ext_len);
  if (!ext && ext_wanted(x, prep))
    return sgn_fail(SGN_E_RUNTIME, "%s %s: out of memory", flag, path);
  header h = {.ckpt = ckpt,
              .version = ext ? FORMAT_VERSION_EXT : FORMAT_VERSION,
              .flags = 0,
              .d = model->d,
              .m = model->m,
              .k = model->k,
              .task = (uint32_t)meta->task,
              .classes = meta->classes,
              .normalize = (uint32_t)prep->mode,
              .bias = (uint32_t)prep->bias,
              .d_in = prep->d_in};
  /* Never write a file the loader would reject. */
  sgn_model_extra back;
  sgn_prep back_targets;
  if (!header_check(&h, why, sizeof why)) {
    free(ext);
    return sgn_fail(SGN_E_RUNTIME, "%s %s: refusing to save an inconsistent model: %s", flag, path,
                    why);
  }
  if (ext && !ext_decode(ext, ext_len, &h, &back, &back_targets, why, sizeof why)) {
    free(ext);
    return sgn_fail(SGN_E_RUNTIME, "%s %s: refusing to save: %s", flag, path, why);
  }
  if (ext) {
    /* %.17g reads back to the same double; a libc that broke that would corrupt predictions */
    int same = back_targets.k_y == prep->k_y;
    for (int64_t c = 0; same && c < prep->k_y; c++)
      same = !memcmp(&back_targets.y_mean[c], &prep->y_mean[c], sizeof(double)) &&
             !memcmp(&back_targets.y_scale[c], &prep->y_scale[c], sizeof(double));
    sgn_model_extra_free(&back);
    free(back_targets.y_mean), free(back_targets.y_scale);
    if (!same) {
      free(ext);
      return sgn_fail(SGN_E_RUNTIME, "%s %s: refusing to save: the target statistics do not "
                      "read back exactly", flag, path);
    }
  }
  if (!body_end(&h)) {
    free(ext);
    return sgn_fail(SGN_E_RUNTIME, "%s %s: refusing to save: sizes overflow", flag, path);
  }
  if (!values_check(model, prep, why, sizeof why)) {
    free(ext);
    return sgn_fail(SGN_E_RUNTIME, "%s %s: refusing to save: %s", flag, path, why);
  }

  size_t plen = strlen(path);
  char *tmp = malloc(plen + 5);
  if (!tmp) {
    free(ext);
    return sgn_fail(SGN_E_RUNTIME, "%s %s: out of memory", flag, path);
  }
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp", 5);

  /* O_NOFOLLOW: a stale PATH.tmp symlink must not redirect the write. */
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd < 0) {
    int e = errno;
    sgn_status st = e == EISDIR || e == ELOOP
                        ? sgn_fail(SGN_E_INPUT, "%s %s: cannot write temporary file %s: %s", flag,
                                   path, tmp, strerror(e))
                        : write_error(flag, path, e);
    free(tmp);
    free(ext);
    return st;
  }
  writer w = {.f = fdopen(fd, "wb"), .crc = crc32(0L, Z_NULL, 0), .err = 0};
  if (!w.f) {
    int e = errno;
    close(fd);
    unlink(tmp);
    free(tmp);
    free(ext);
    return write_error(flag, path, e);
  }

  uint8_t hb[HEADER_BYTES], b8[8], b4[4];
  header_encode(&h, hb);
  write_bytes(&w, hb, sizeof hb, 1);
  write_floats(&w, prep->mean, prep->d_in);
  write_floats(&w, prep->scale, prep->d_in);
  write_floats(&w, model->A, model->m * model->k);
  write_floats(&w, model->W, model->m * model->d);
  if (ext) {
    put_u64(b8, (uint64_t)ext_len);
    write_bytes(&w, b8, 8, 1);
    write_bytes(&w, ext, ext_len, 1);
    free(ext);
  }
  if (ckpt) {
    put_u64(b8, (uint64_t)state_bytes);
    write_bytes(&w, b8, 8, 1);
    write_bytes(&w, state, state_bytes, 1);
  }
  put_u32(b4, (uint32_t)w.crc);
  write_bytes(&w, b4, 4, 0);

  if (!w.err && fflush(w.f) != 0) w.err = errno ? errno : EIO;
  if (!w.err && fsync(fileno(w.f)) != 0) w.err = errno;
  if (fclose(w.f) != 0 && !w.err) w.err = errno ? errno : EIO;
  if (!w.err && rename(tmp, path) != 0) w.err = errno;
  sgn_status st = SGN_OK;
  if (w.err) {
    unlink(tmp);
    st = write_error(flag, path, w.err);
  } else {
    sync_parent_dir(path);
  }
  free(tmp);
  return st;
}

sgn_status sgn_model_save(const char *path, const sgn_model *model, const sgn_model_meta *meta) {
  return save_file(path, "--save", 0, model, meta, NULL, NULL, 0);
}

sgn_status sgn_model_save_extra(const char *path, const sgn_model *model,
                                const sgn_model_meta *meta, const sgn_model_extra *x) {
  return save_file(path, "--save", 0, model, meta, x, NULL, 0);
}

sgn_status sgn_checkpoint_save(const char *path, const sgn_model *model, const sgn_model_meta *meta,
                               const void *state, size_t state_bytes) {
  return save_file(path, "--checkpoint", 1, model, meta, NULL, state, state_bytes);
}

sgn_status sgn_checkpoint_save_extra(const char *path, const sgn_model *model,
                                     const sgn_model_meta *meta, const sgn_model_extra *x,
                                     const void *state, size_t state_bytes) {
  return save_file(path, "--checkpoint", 1, model, meta, x, state, state_bytes);
}

/* ---- loading ---- */

typedef struct reader {
  FILE *f;
  uLong crc;
  int err; /* errno of the first failure (EIO for a short read), 0 if none */
} reader;

static void read_bytes(reader *r, void *buf, size_t len, int with_crc) {
  if (r->err || len == 0) return;
  errno = 0;
  if (fread(buf, 1, len, r->f) != len) {
    r->err = ferror(r->f) && errno ? errno : EIO;
    return;
  }
  if (with_crc) r->crc = crc_update(r->crc, buf, len);
}

static void read_floats(reader *r, float *x, int64_t count) {
  read_bytes(r, x, (size_t)count * sizeof(float), 1);
  if (r->err || host_is_little_endian()) return;
  for (int64_t i = 0; i < count; i++) {
    uint8_t b[4];
    memcpy(b, x + i, 4);
    uint32_t u = get_u32(b);
    memcpy(x + i, &u, 4);
  }
}

static sgn_status load_file(const char *path, int ckpt, sgn_model **model_out, sgn_model_meta *meta,
                            sgn_model_extra *x, void **state_out, size_t *state_bytes_out) {
  const char *kind = ckpt ? "checkpoint" : "model file";
  char why[256];
  *model_out = NULL;
  memset(meta, 0, sizeof *meta);
  if (ckpt) *state_out = NULL, *state_bytes_out = 0;
  if (x) memset(x, 0, sizeof *x);
  char *ext = NULL;
  if (!path || !*path) return sgn_fail(SGN_E_INPUT, "empty %s name", kind);

  FILE *f = fopen(path, "rb");
  if (!f) return sgn_fail(SGN_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
  sgn_status st = SGN_E_INPUT;
  sgn_model *model = NULL;
  float *mean = NULL, *scale = NULL;
  uint8_t *state = NULL;
  reader r = {.f = f, .crc = crc32(0L, Z_NULL, 0), .err = 0};

  /* ---- everything below, up to the allocations, touches only the stack ---- */
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0) {
    sgn_fail(SGN_E_INPUT, "%s: cannot stat: %s", path, strerror(errno));
    goto out;
  }
  if (S_ISDIR(sb.st_mode)) {
    sgn_fail(SGN_E_INPUT, "%s: is a directory, not a sketchgn %s", path, kind);
    goto out;
  }
  if (!S_ISREG(sb.st_mode)) {
    sgn_fail(SGN_E_INPUT, "%s: not a regular file", path);
    goto out;
  }
  const uint64_t size = (uint64_t)sb.st_size;
  if (size == 0) {
    sgn_fail(SGN_E_INPUT, "%s: empty file, not a sketchgn %s", path, kind);
    goto out;
  }
  uint8_t hb[HEADER_BYTES];
  read_bytes(&r, hb, size < HEADER_BYTES ? (size_t)size : HEADER_BYTES, 1);
  if (r.err) {
    sgn_fail(SGN_E_INPUT, "%s: read failed: %s", path, strerror(r.err));
    goto out;
  }
  if (size < 8 || (memcmp(hb, MAGIC_MODEL, 8) != 0 && memcmp(hb, MAGIC_CKPT, 8) != 0)) {
    sgn_fail(SGN_E_INPUT, "%s: not a sketchgn %s (bad magic)", path, kind);
    goto out;
  }
  if ((memcmp(hb, MAGIC_CKPT, 8) == 0) != ckpt) {
    sgn_fail(SGN_E_INPUT,
             ckpt ? "%s: is a sketchgn model file, not a checkpoint"
                  : "%s: is a sketchgn checkpoint, not a model file",
             path);
    goto out;
  }
  const uint64_t min_size = HEADER_BYTES + (ckpt ? 8 : 0) + CRC_BYTES;
  if (size < HEADER_BYTES) {
    sgn_fail(SGN_E_INPUT, "%s: truncated: %llu bytes, expected at least %llu", path,
             (unsigned long long)size, (unsigned long long)min_size);
    goto out;
  }
  header h;
  header_decode(hb, &h);
  if (h.version != FORMAT_VERSION && h.version != FORMAT_VERSION_EXT) {
    sgn_fail(SGN_E_INPUT, "%s: unsupported format version %u (this build reads versions 1 and 2)",
             path, h.version);
    goto out;
  }
  if (h.flags != 0) {
    sgn_fail(SGN_E_INPUT, "%s: unknown flags 0x%x in the header", path, h.flags);
    goto out;
  }
  if (!header_check(&h, why, sizeof why)) {
    sgn_fail(SGN_E_INPUT, "%s: bad header: %s", path, why);
    goto out;
  }
  const uint64_t end = body_end(&h);
  if (!end) {
    sgn_fail(SGN_E_INPUT, "%s: bad header: sizes overflow (d=%lld, m=%lld, k=%lld)", path,
             (long long)h.d, (long long)h.m, (long long)h.k);
    goto out;
  }
  /* the extension and state lengths sit after W: read them in place, then come back */
  uint64_t pos = end, ext_len = 0, nstate = 0;
  const char *ver = h.version == FORMAT_VERSION_EXT ? " (format version 2)" : "";
  for (int part = h.version == FORMAT_VERSION_EXT ? 0 : 1; part < 1 + ckpt; part++) {
    uint8_t b8[8];
    if (size < pos + 8 + CRC_BYTES) {
      sgn_fail(SGN_E_INPUT, "%s: truncated%s: %llu bytes, expected at least %llu", path, ver,
               (unsigned long long)size, (unsigned long long)(pos + 8 + CRC_BYTES));
      goto out;
    }
    if (fseeko(f, (off_t)pos, SEEK_SET) != 0 || fread(b8, 1, 8, f) != 8 ||
        fseeko(f, HEADER_BYTES, SEEK_SET) != 0) {
      sgn_fail(SGN_E_INPUT, "%s: read failed: %s", path, strerror(errno ? errno : EIO));
      goto out;
    }
    uint64_t len = get_u64(b8);
    if (len > size - pos - 8 - CRC_BYTES) {
      sgn_fail(SGN_E_INPUT, "%s: truncated%s: %s of %llu bytes past the end of a %llu-byte file",
               path, ver, part == 0 ? "an extension block" : "a state", (unsigned long long)len,
               (unsigned long long)size);
      goto out;
    }
    if (part == 0) ext_len = len;
    else nstate = len;
    pos += 8 + len;
  }
  uint64_t expected = pos + CRC_BYTES;
  if (size != expected) {
    sgn_fail(SGN_E_INPUT, "%s: %s%s: %llu bytes, expected %llu", path,
             size < expected ? "truncated" : "trailing data", ver, (unsigned long long)size,
             (unsigned long long)expected);
    goto out;
  }

  /* ---- the sizes are now those of a real file: allocate and read ---- */
  model = sgn_calloc(1, sizeof *model);
  if (model) {
    model->d = h.d, model->m = h.m, model->k = h.k;
    model->A = sgn_calloc((size_t)(h.m * h.k), sizeof(float));
    model->W = sgn_calloc((size_t)(h.m * h.d), sizeof(float));
  }
  mean = sgn_calloc((size_t)h.d_in, sizeof(float));
  scale = sgn_calloc((size_t)h.d_in, sizeof(float));
  if (ckpt) state = malloc(nstate ? (size_t)nstate : 1);
  ext = malloc((size_t)ext_len + 1);
  if (!model || !model->A || !model->W || !mean || !scale || (ckpt && !state) || !ext) {
    st = sgn_fail(SGN_E_RUNTIME, "%s: out of memory loading a %llu-byte %s", path,
                  (unsigned long long)size, kind);
    goto out;
  }
  read_floats(&r, mean, h.d_in);
  read_floats(&r, scale, h.d_in);
  read_floats(&r, model->A, h.m * h.k);
  read_floats(&r, model->W, h.m * h.d);
  if (h.version == FORMAT_VERSION_EXT) {
    uint8_t b8[8];
    read_bytes(&r, b8, 8, 1);
    read_bytes(&r, ext, (size_t)ext_len, 1);
  }
  if (ckpt) {
    uint8_t b8[8];
    read_bytes(&r, b8, 8, 1);
    read_bytes(&r, state, (size_t)nstate, 1);
  }
  uint8_t b4[4];
  read_bytes(&r, b4, 4, 0);
  if (r.err) {
    sgn_fail(SGN_E_INPUT, "%s: read failed: %s", path, strerror(r.err));
    goto out;
  }
  if (get_u32(b4) != (uint32_t)r.crc) {
    sgn_fail(SGN_E_INPUT, "%s: checksum mismatch (file corrupted)", path);
    goto out;
  }
  sgn_prep prep = {.mode = (sgn_normalize)h.normalize,
                   .bias = (int)h.bias,
                   .d_in = h.d_in,
                   .mean = mean,
                   .scale = scale};
  if (!values_check(model, &prep, why, sizeof why)) {
    sgn_fail(SGN_E_INPUT, "%s: %s", path, why);
    goto out;
  }
  sgn_model_extra got = {0};
  if (ext_len && !ext_decode(ext, (size_t)ext_len, &h, &got, &prep, why, sizeof why)) {
    sgn_fail(SGN_E_INPUT, "%s: bad extension block: %s", path, why);
    goto out;
  }
  if (x) *x = got;
  else sgn_model_extra_free(&got);

  meta->task = (sgn_task)h.task;
  meta->classes = h.classes;
  meta->prep = prep;
  *model_out = model;
  if (ckpt) *state_out = state, *state_bytes_out = (size_t)nstate;
  model = NULL, mean = scale = NULL, state = NULL;
  st = SGN_OK;
out:
  fclose(f);
  free(ext);
  sgn_model_free(model);
  free(mean);
  free(scale);
  free(state);
  return st;
}

sgn_status sgn_model_load(const char *path, sgn_model **model, sgn_model_meta *meta) {
  return load_file(path, 0, model, meta, NULL, NULL, NULL);
}

sgn_status sgn_model_load_extra(const char *path, sgn_model **model, sgn_model_meta *meta,
                                sgn_model_extra *x) {
  return load_file(path, 0, model, meta, x, NULL, NULL);
}

sgn_status sgn_checkpoint_load(const char *path, sgn_model **model, sgn_model_meta *meta,
                               void **state, size_t *state_bytes) {
  return load_file(path, 1, model, meta, NULL, state, state_bytes);
}

sgn_status sgn_checkpoint_load_extra(const char *path, sgn_model **model, sgn_model_meta *meta,
                                     sgn_model_extra *x, void **state, size_t *state_bytes) {
  return load_file(path, 1, model, meta, x, state, state_bytes);
}
