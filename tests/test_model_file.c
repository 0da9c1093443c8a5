/* test_model_file.c — model files and checkpoints: a save/load round trip is bit-exact in every
 * field, the target statistics included; every malformed file (flipped bytes, truncation, absurd
 * or inconsistent headers, bad target lines, the wrong kind of file, no file) is SGN_E_INPUT
 * naming the file; a failed save leaves the previous file byte-identical and no PATH.tmp behind.
 * Each test works in its own mkdtemp directory. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "model_file.h"
#include "rng.h"

/* No float tolerances here: files must round-trip bit for bit. */

/* ---- fixture: a fresh directory per test ---- */

static char dir[256];

static void make_dir(void) {
  const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(dir, sizeof dir, "%s/sgn_model_io_XXXXXX", base);
  cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  chmod(path, 0700); /* a test may have made it read-only */
  return remove(path);
}

static void remove_dir(void) {
  chmod(dir, 0700);
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *in_dir(const char *name) {
  static char buf[4][512];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

static int exists(const char *path) {
  struct stat sb;
  return lstat(path, &sb) == 0;
}

static uint8_t *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(*len + 1);
  cr_assert_eq(fread(b, 1, *len, f), *len);
  fclose(f);
  return b;
}

static void write_all(const char *path, const void *b, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(b, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

/* ---- a small model with every field non-trivial ---- */

/* The table's shape: d_in = 3, bias -> d = 4, m = 6, k = 3 classes. Offsets of the format. */
enum {
  FX_DIN = 3,
  FX_D = 4,
  FX_M = 6,
  FX_K = 3,
  OFF_MEAN = 68,
  OFF_SCALE = OFF_MEAN + 4 * FX_DIN,
  OFF_A = OFF_SCALE + 4 * FX_DIN,
  OFF_W = OFF_A + 4 * FX_M * FX_K,
  OFF_END = OFF_W + 4 * FX_M * FX_D, /* model: the CRC; checkpoint: state_bytes */
  MODEL_SIZE = OFF_END + 4,
  STATE_BYTES = 37,
  CKPT_SIZE = OFF_END + 8 + STATE_BYTES + 4,
};

typedef struct fixture {
  sgn_model *model;
  sgn_model_meta meta;
  uint8_t *state;
  size_t state_bytes;
} fixture;

static fixture make_fixture(int64_t d_in, int bias, int64_t m, int64_t k, sgn_task task,
                            sgn_normalize mode, size_t state_bytes, uint64_t seed) {
  fixture fx = {0};
  enum { NS = 50 };
  float *X = malloc(sizeof(float) * NS * (size_t)d_in);
  for (int64_t i = 0; i < NS * d_in; i++)
    X[i] = (float)(3.0 * sgn_rng_normal(seed, 77, (uint64_t)i) + (double)(i % d_in) - 1.5);
  cr_assert_eq(sgn_prep_fit(&fx.meta.prep, X, NS, d_in, mode, bias), SGN_OK, "%s",
               sgn_last_error());
  free(X);
  fx.meta.task = task;
  fx.meta.classes = task == SGN_TASK_CLASSIFY ? k : 0;
  const int64_t d = sgn_prep_dim(&fx.meta.prep);
  fx.model = sgn_model_create(d, m, k, SGN_INIT_GAUSSIAN, seed);
  cr_assert_not_null(fx.model, "%s", sgn_last_error());
  /* bit patterns a lossy writer would get wrong */
  const float special[] = {-0.0f, 1e-40f /* subnormal */, FLT_MAX, -FLT_MIN, 0x1.fffffep-1f};
  for (size_t i = 0; i < sizeof special / sizeof special[0] && (int64_t)i < m * d; i++)
    fx.model->W[i] = special[i];
  fx.state_bytes = state_bytes;
  fx.state = malloc(state_bytes ? state_bytes : 1);
  for (size_t i = 0; i < state_bytes; i++) fx.state[i] = (uint8_t)sgn_rng_u64(seed, 78, i);
  return fx;
}

/* Target statistics for a regression fixture: fitted on k random columns, then the first entries
 * overwritten with doubles a lossy writer would get wrong (%.17g must bring each back). */
static void add_targets(fixture *fx, uint64_t seed) {
  const int64_t k = fx->model->k, n = 20;
  float *Y = malloc(sizeof(float) * (size_t)(n * k));
  for (int64_t i = 0; i < n * k; i++) Y[i] = (float)(100 * sgn_rng_normal(seed, 79, (uint64_t)i));
  cr_assert_eq(sgn_prep_fit_targets(&fx->meta.prep, Y, n, k), SGN_OK, "%s", sgn_last_error());
  free(Y);
  const double mean[] = {-0.0, 4.9e-324 /* subnormal */, -DBL_MAX, 0.1, 1e22};
  const double scale[] = {DBL_MIN, 0x1.fffffffffffffp-1, DBL_MAX, 1.0 / 3, 5e-324};
  for (int64_t c = 0; c < k && c < 5; c++)
    fx->meta.prep.y_mean[c] = mean[c], fx->meta.prep.y_scale[c] = scale[c];
}

/* The extension block of a fixture's target statistics, as the format documents it. */
static void targets_text(const sgn_prep *p, char *buf, size_t cap) {
  buf[0] = 0;
  for (int64_t c = 0; c < p->k_y; c++)
    snprintf(buf + strlen(buf), cap - strlen(buf), "target=%.17g %.17g\n", p->y_mean[c],
             p->y_scale[c]);
}

static fixture table_fixture(void) {
  return make_fixture(FX_DIN, 1, FX_M, FX_K, SGN_TASK_CLASSIFY, SGN_NORMALIZE_STANDARD, STATE_BYTES,
                      11);
}

static void free_fixture(fixture *fx) {
  sgn_model_free(fx->model);
  sgn_prep_free(&fx->meta.prep);
  free(fx->state);
}

/* Everything equal, bit for bit. */
static void expect_same(const fixture *a, const sgn_model *m, const sgn_model_meta *meta) {
  cr_assert_eq(m->d, a->model->d);
  cr_assert_eq(m->m, a->model->m);
  cr_assert_eq(m->k, a->model->k);
  cr_expect_eq(memcmp(m->W, a->model->W, sizeof(float) * (size_t)(m->m * m->d)), 0, "W differs");
  cr_expect_eq(memcmp(m->A, a->model->A, sizeof(float) * (size_t)(m->m * m->k)), 0, "A differs");
  cr_expect_eq(meta->task, a->meta.task);
  cr_expect_eq(meta->classes, a->meta.classes);
  cr_expect_eq(meta->prep.mode, a->meta.prep.mode);
  cr_expect_eq(meta->prep.bias, a->meta.prep.bias);
  cr_assert_eq(meta->prep.d_in, a->meta.prep.d_in);
  size_t nb = sizeof(float) * (size_t)meta->prep.d_in;
  cr_expect_eq(memcmp(meta->prep.mean, a->meta.prep.mean, nb), 0, "mean differs");
  cr_expect_eq(memcmp(meta->prep.scale, a->meta.prep.scale, nb), 0, "scale differs");
  cr_assert_eq(meta->prep.k_y, a->meta.prep.k_y, "target statistics of %lld outputs, want %lld",
               (long long)meta->prep.k_y, (long long)a->meta.prep.k_y);
  size_t ny = sizeof(double) * (size_t)meta->prep.k_y;
  if (ny) {
    cr_expect_eq(memcmp(meta->prep.y_mean, a->meta.prep.y_mean, ny), 0, "target means differ");
    cr_expect_eq(memcmp(meta->prep.y_scale, a->meta.prep.y_scale, ny), 0, "target scales differ");
  } else {
    cr_expect(!meta->prep.y_mean && !meta->prep.y_scale, "target statistics without k_y");
  }
}

/* ---- round trips ---- */

typedef struct rt_case {
  int64_t d_in, m, k;
  int bias;
  sgn_task task;
  sgn_normalize mode;
  size_t state_bytes;
  int targets; /* regression: with target statistics (add_targets) */
} rt_case;

static rt_case rt_cases[] = {
    {FX_DIN, FX_M, FX_K, 1, SGN_TASK_CLASSIFY, SGN_NORMALIZE_STANDARD, STATE_BYTES, 0},
    {1, 1, 1, 0, SGN_TASK_REGRESSION, SGN_NORMALIZE_UNIT, 0, 0},
    {17, 64, 1, 0, SGN_TASK_REGRESSION, SGN_NORMALIZE_NONE, 1, 0},
    {31, 130, 10, 1, SGN_TASK_CLASSIFY, SGN_NORMALIZE_UNIT, 100000, 0},
    {5, 8, 4, 1, SGN_TASK_REGRESSION, SGN_NORMALIZE_STANDARD, 8, 0},
    {6, 10, 3, 0, SGN_TASK_CLASSIFY, SGN_NORMALIZE_STANDARD_UNIT, 0, 0},
    {6, 10, 3, 1, SGN_TASK_CLASSIFY, SGN_NORMALIZE_SPHERE, 5, 0},
    {1, 2, 1, 0, SGN_TASK_REGRESSION, SGN_NORMALIZE_SPHERE, 0, 1},
    {7, 12, 5, 1, SGN_TASK_REGRESSION, SGN_NORMALIZE_SPHERE, 3, 1},
    {4, 6, 2, 0, SGN_TASK_REGRESSION, SGN_NORMALIZE_NONE, 0, 1},
};

ParameterizedTestParameters(model_io, round_trip) {
  return cr_make_param_array(rt_case, rt_cases, sizeof rt_cases / sizeof rt_cases[0]);
}

ParameterizedTest(rt_case *c, model_io, round_trip, .init = make_dir, .fini = remove_dir) {
  fixture fx = make_fixture(c->d_in, c->bias, c->m, c->k, c->task, c->mode, c->state_bytes, 5);
  if (c->targets) add_targets(&fx, 5);
  const int64_t d = c->d_in + (c->mode == SGN_NORMALIZE_SPHERE) + c->bias;
  cr_assert_eq(fx.model->d, d);
  char text[1024];
  targets_text(&fx.meta.prep, text, sizeof text);
  /* the target lines, when there are any, are the extension block (version 2) */
  const size_t ext = c->targets ? 8 + strlen(text) : 0;
  const size_t body = 68 + 4 * (size_t)(2 * c->d_in + c->m * c->k + c->m * d) + ext;

  /* model file */
  const char *path = in_dir("model.bin"), *tmp = in_dir("model.bin.tmp");
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_OK, "%s", sgn_last_error());
  cr_expect(!exists(tmp), "PATH.tmp left after a successful save");
  struct stat sb;
  cr_assert_eq(stat(path, &sb), 0);
  cr_expect_eq((size_t)sb.st_size, body + 4, "size %lld, want %zu", (long long)sb.st_size,
               body + 4);
  sgn_model *m = NULL;
  sgn_model_meta meta;
  cr_assert_eq(sgn_model_load(path, &m, &meta), SGN_OK, "%s", sgn_last_error());
  expect_same(&fx, m, &meta);
  sgn_model_free(m);
  sgn_prep_free(&meta.prep);
  sgn_model_extra x;
  cr_assert_eq(sgn_model_load_extra(path, &m, &meta, &x), SGN_OK, "%s", sgn_last_error());
  expect_same(&fx, m, &meta);
  cr_expect(x.nlabels == 0 && !x.run, "target lines read as other extras");
  sgn_model_extra_free(&x);
  sgn_model_free(m);
  sgn_prep_free(&meta.prep);

  /* checkpoint */
  const char *cpath = in_dir("run.ckpt");
  cr_assert_eq(sgn_checkpoint_save(cpath, fx.model, &fx.meta, fx.state, fx.state_bytes), SGN_OK,
               "%s", sgn_last_error());
  cr_expect(!exists(in_dir("run.ckpt.tmp")), "PATH.tmp left after a successful save");
  cr_assert_eq(stat(cpath, &sb), 0);
  cr_expect_eq((size_t)sb.st_size, body + 8 + c->state_bytes + 4);
  /* with the run's settings as well, through the _extra loader */
  const char *cpath2 = in_dir("run2.ckpt");
  sgn_model_extra run = {.run = "arg=--steps\narg=3\n"}, got;
  cr_assert_eq(sgn_checkpoint_save_extra(cpath2, fx.model, &fx.meta, &run, fx.state,
                                         fx.state_bytes),
               SGN_OK, "%s", sgn_last_error());
  void *state2 = NULL;
  size_t state2_bytes = 0;
  cr_assert_eq(sgn_checkpoint_load_extra(cpath2, &m, &meta, &got, &state2, &state2_bytes), SGN_OK,
               "%s", sgn_last_error());
  expect_same(&fx, m, &meta);
  cr_expect_str_eq(got.run ? got.run : "", run.run, "the run's settings");
  sgn_model_extra_free(&got);
  free(state2);
  sgn_model_free(m);
  sgn_prep_free(&meta.prep);

  void *state = NULL;
  size_t state_bytes = 12345;
  cr_assert_eq(sgn_checkpoint_load(cpath, &m, &meta, &state, &state_bytes), SGN_OK, "%s",
               sgn_last_error());
  expect_same(&fx, m, &meta);
  cr_assert_eq(state_bytes, c->state_bytes);
  cr_assert_not_null(state, "state must be malloc'ed even when empty");
  cr_expect_eq(memcmp(state, fx.state, state_bytes), 0, "state blob differs");
  free(state);
  sgn_model_free(m);
  sgn_prep_free(&meta.prep);
  free_fixture(&fx);
}

Test(model_io, format_is_little_endian_as_documented, .init = make_dir, .fini = remove_dir) {
  fixture fx = table_fixture();
  const char *path = in_dir("m.bin");
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_OK, "%s", sgn_last_error());
  size_t len;
  uint8_t *b = read_all(path, &len);
  cr_assert_eq(len, (size_t)MODEL_SIZE);
  cr_expect_eq(memcmp(b, "SKGNMODL", 8), 0);
  /* the header's fields, one per line */
  /* clang-format off */
  const uint8_t hdr[] = {1, 0, 0, 0,  0, 0, 0, 0,           /* version 1, flags 0 */
                         FX_D, 0, 0, 0, 0, 0, 0, 0,         /* d */
                         FX_M, 0, 0, 0, 0, 0, 0, 0,         /* m */
                         FX_K, 0, 0, 0, 0, 0, 0, 0,         /* k */
                         1, 0, 0, 0,                        /* task classify */
                         FX_K, 0, 0, 0, 0, 0, 0, 0,         /* classes */
                         SGN_NORMALIZE_STANDARD, 0, 0, 0,   /* normalize */
                         1, 0, 0, 0,                        /* bias */
                         FX_DIN, 0, 0, 0, 0, 0, 0, 0};      /* d_in */
  /* clang-format on */
  cr_expect_eq(memcmp(b + 8, hdr, sizeof hdr), 0, "header bytes differ from the documented layout");
  uint32_t u;
  memcpy(&u, &fx.model->W[FX_D + 1], 4);
  const uint8_t *w = b + OFF_W + 4 * (FX_D + 1);
  cr_expect_eq(w[0] | w[1] << 8 | w[2] << 16 | (uint32_t)w[3] << 24, u, "W[1,1] not LE binary32");
  const uint8_t *c = b + len - 4;
  uint32_t crc = (uint32_t)crc32(0L, b, (uInt)(len - 4));
  cr_expect_eq(c[0] | c[1] << 8 | c[2] << 16 | (uint32_t)c[3] << 24, crc, "CRC32 not zlib's");
  free(b);
  free_fixture(&fx);
}

Test(model_io, save_replaces_an_existing_file, .init = make_dir, .fini = remove_dir) {
  fixture a = table_fixture();
  fixture b = make_fixture(2, 0, 4, 1, SGN_TASK_REGRESSION, SGN_NORMALIZE_UNIT, 0, 99);
  const char *path = in_dir("m.bin");
  cr_assert_eq(sgn_model_save(path, a.model, &a.meta), SGN_OK, "%s", sgn_last_error());
  cr_assert_eq(sgn_model_save(path, b.model, &b.meta), SGN_OK, "%s", sgn_last_error());
  sgn_model *m;
  sgn_model_meta meta;
  cr_assert_eq(sgn_model_load(path, &m, &meta), SGN_OK, "%s", sgn_last_error());
  expect_same(&b, m, &meta);
  sgn_model_free(m);
  sgn_prep_free(&meta.prep);
  free_fixture(&a), free_fixture(&b);
}

/* ---- malformed files: one table, each row a test ---- */

enum { FILE_MODEL, FILE_CKPT };
enum {
  OP_FLIP,    /* b[off] ^= each of FLIP_MASKS */
  OP_TRUNC,   /* keep the first off bytes */
  OP_APPEND,  /* one extra byte */
  OP_PUT32,   /* u32 at off = val */
  OP_PUT64,   /* u64 at off = val */
  OP_PUTF32,  /* float at off = val / 1000 (val as signed), or NaN/inf below */
  OP_MAGIC,   /* the first 8 bytes = the string in `text` */
  OP_MISSING, /* no file at all */
  OP_DIR,     /* a directory at the path */
};
#define F_NAN 0xFFFFFFFFFFFFFFF0ull
#define F_INF 0xFFFFFFFFFFFFFFF1ull

typedef struct bad_case {
  char what[64];   /* the row's name in failure messages */
  int file;        /* what is written first */
  int ckpt_loader; /* 1: sgn_checkpoint_load, 0: sgn_model_load */
  int op;
  int64_t off;
  uint64_t val;
  int fix_crc;     /* recompute the CRC after the change, so a later check must catch it */
  char expect[40]; /* the message holds this too ("" = only the file name) */
} bad_case;

/* A flip row flips the byte at off with each of FLIP_MASKS in turn (a load per mask). */
static const uint8_t FLIP_MASKS[] = {0x01, 0x10, 0x80, 0xFF};
#define FLIP(off) \
  { "flip @" #off, FILE_MODEL, 0, OP_FLIP, (off), 0, 0, "" }
#define CFLIP(off) \
  { "ckpt flip @" #off, FILE_CKPT, 1, OP_FLIP, (off), 0, 0, "" }
#define TRUNC(len, msg) \
  { "truncate to " #len, FILE_MODEL, 0, OP_TRUNC, (len), 0, 0, msg }

static bad_case bad_cases[] = {
    /* single-byte flips at a sample of offsets: every header field, each array, the CRC */
    FLIP(0),
    FLIP(7),
    FLIP(8),
    FLIP(11),
    FLIP(12),
    FLIP(15),
    FLIP(16),
    FLIP(23),
    FLIP(24),
    FLIP(31),
    FLIP(32),
    FLIP(39),
    FLIP(40),
    FLIP(44),
    FLIP(51),
    FLIP(52),
    FLIP(56),
    FLIP(60),
    FLIP(67),
    FLIP(OFF_MEAN),
    FLIP(OFF_SCALE + 2),
    FLIP(OFF_A + 3) /* A's sign: still +-1 */,
    FLIP(OFF_W),
    FLIP(OFF_W + 50),
    FLIP(OFF_END - 1),
    FLIP(OFF_END),
    FLIP(OFF_END + 3),
    CFLIP(0),
    CFLIP(16),
    CFLIP(OFF_W + 7),
    CFLIP(OFF_END) /* state_bytes */,
    CFLIP(OFF_END + 7),
    CFLIP(OFF_END + 8) /* state */,
    CFLIP(CKPT_SIZE - 5),
    CFLIP(CKPT_SIZE - 1),
    /* truncation */
    TRUNC(0, "empty"),
    TRUNC(5, "bad magic"),
    TRUNC(8, "truncated"),
    TRUNC(40, "truncated"),
    TRUNC(67, "truncated"),
    TRUNC(68, "truncated"),
    TRUNC(OFF_A, "truncated"),
    TRUNC(OFF_END, "truncated"),
    TRUNC(MODEL_SIZE - 1, "truncated"),
    {"ckpt truncated in the state", FILE_CKPT, 1, OP_TRUNC, CKPT_SIZE - 10, 0, 0, "truncated"},
    {"ckpt truncated before state_bytes", FILE_CKPT, 1, OP_TRUNC, OFF_END + 3, 0, 0, "truncated"},
    {"trailing byte", FILE_MODEL, 0, OP_APPEND, 0, 0, 0, "trailing data"},
    /* absurd sizes: must fail on the size check, before any allocation */
    {"m = 10^12", FILE_MODEL, 0, OP_PUT64, 24, 1000000000000ull, 0, "expected 28000000000096"},
    {"m = 2^40", FILE_MODEL, 0, OP_PUT64, 24, 1ull << 40, 0, "truncated"},
    {"m * d overflows", FILE_MODEL, 0, OP_PUT64, 24, 1ull << 62, 0, "overflow"},
    {"m = -1", FILE_MODEL, 0, OP_PUT64, 24, ~0ull, 0, ">= 1"},
    {"k = 0", FILE_MODEL, 0, OP_PUT64, 32, 0, 0, ">= 1"},
    {"state_bytes = 2^63", FILE_CKPT, 1, OP_PUT64, OFF_END, 1ull << 63, 0, ""},
    {"state_bytes = 10^12", FILE_CKPT, 1, OP_PUT64, OFF_END, 1000000000000ull, 0, "truncated"},
    /* inconsistent or unknown header fields */
    {"wrong magic", FILE_MODEL, 0, OP_MAGIC, 0, 0, 0, "bad magic"},
    {"wrong version", FILE_MODEL, 0, OP_PUT32, 8, 2, 1, "version 2"},
    {"version 0", FILE_MODEL, 0, OP_PUT32, 8, 0, 1, "version 0"},
    {"unknown flags", FILE_MODEL, 0, OP_PUT32, 12, 4, 1, "flags"},
    {"d != d_in + bias", FILE_MODEL, 0, OP_PUT64, 16, 3, 1, "d_in"},
    {"classes != k", FILE_MODEL, 0, OP_PUT64, 44, 2, 1, "classes"},
    {"regression with classes", FILE_MODEL, 0, OP_PUT32, 40, 0, 1, "classes"},
    {"unknown task", FILE_MODEL, 0, OP_PUT32, 40, 7, 1, "task"},
    {"unknown normalization", FILE_MODEL, 0, OP_PUT32, 52, SGN_NORMALIZE_SPHERE + 1, 1,
     "normalization"},
    {"sphere without its column", FILE_MODEL, 0, OP_PUT32, 52, SGN_NORMALIZE_SPHERE, 1,
     "+ 1 (sphere)"},
    {"bias 2", FILE_MODEL, 0, OP_PUT32, 56, 2, 1, "bias"},
    /* values, with a valid CRC */
    {"A entry 0.5", FILE_MODEL, 0, OP_PUTF32, OFF_A + 4 * 5, 500, 1, "+-1"},
    {"A entry 0", FILE_MODEL, 0, OP_PUTF32, OFF_A, 0, 1, "+-1"},
    {"W entry NaN", FILE_MODEL, 0, OP_PUTF32, OFF_W + 4 * 9, F_NAN, 1, "W[2,1]"},
    {"W entry inf", FILE_MODEL, 0, OP_PUTF32, OFF_W, F_INF, 1, "not finite"},
    {"mean NaN", FILE_MODEL, 0, OP_PUTF32, OFF_MEAN + 4, F_NAN, 1, "not finite"},
    {"scale inf", FILE_MODEL, 0, OP_PUTF32, OFF_SCALE + 8, F_INF, 1, "not finite"},
    /* the wrong kind of file, or none */
    {"model to checkpoint_load", FILE_MODEL, 1, OP_TRUNC, MODEL_SIZE, 0, 0, "not a checkpoint"},
    {"checkpoint to model_load", FILE_CKPT, 0, OP_TRUNC, CKPT_SIZE, 0, 0, "not a model file"},
    {"missing file", FILE_MODEL, 0, OP_MISSING, 0, 0, 0, "No such file"},
    {"missing checkpoint", FILE_CKPT, 1, OP_MISSING, 0, 0, 0, "No such file"},
    {"directory", FILE_MODEL, 0, OP_DIR, 0, 0, 0, "directory"},
    {"directory as checkpoint", FILE_CKPT, 1, OP_DIR, 0, 0, 0, "directory"},
};

static void put_le(uint8_t *b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) b[i] = (uint8_t)(v >> (8 * i));
}

ParameterizedTestParameters(model_io, malformed) {
  return cr_make_param_array(bad_case, bad_cases, sizeof bad_cases / sizeof bad_cases[0]);
}

/* Writes the variant of the pristine file b (len bytes) that c describes (mask for flips), loads
 * it, and checks the rejection: SGN_E_INPUT, one line naming the file, outputs left empty. */
static void check_rejected(const bad_case *c, const uint8_t *pristine, size_t len, uint8_t mask) {
  const char *path = in_dir(c->file == FILE_CKPT ? "bad.ckpt" : "bad.model");
  uint8_t *b = malloc(len + 1);
  memcpy(b, pristine, len);
  switch (c->op) {
  case OP_FLIP: b[c->off] ^= mask; break;
  case OP_TRUNC: len = (size_t)c->off; break;
  case OP_APPEND: b[len++] = 0; break;
  case OP_PUT32: put_le(b + c->off, c->val, 4); break;
  case OP_PUT64: put_le(b + c->off, c->val, 8); break;
  case OP_PUTF32: {
    float v = c->val == F_NAN ? NAN : c->val == F_INF ? INFINITY : (float)(int64_t)c->val / 1000;
    uint32_t u;
    memcpy(&u, &v, 4);
    put_le(b + c->off, u, 4);
    break;
  }
  case OP_MAGIC: memcpy(b, "SKGNMODX", 8); break;
  default: break;
  }
  if (c->fix_crc) put_le(b + len - 4, (uint32_t)crc32(0L, b, (uInt)(len - 4)), 4);
  remove(path);
  if (c->op == OP_DIR) cr_assert_eq(mkdir(path, 0700), 0);
  else if (c->op != OP_MISSING) write_all(path, b, len);
  free(b);

  int poison;
  sgn_model *m = (sgn_model *)&poison; /* a failed load must set it to NULL */
  sgn_model_meta meta = {.prep.mean = (float *)&poison};
  void *state = &poison;
  size_t state_bytes = 99;
  sgn_status st = c->ckpt_loader ? sgn_checkpoint_load(path, &m, &meta, &state, &state_bytes)
                                 : sgn_model_load(path, &m, &meta);
  const char *msg = sgn_last_error();
  cr_assert_eq(st, SGN_E_INPUT, "%s (mask 0x%02x): status %d, message '%s'", c->what, mask, (int)st,
               msg);
  cr_expect(strstr(msg, path), "%s: message does not name the file: '%s'", c->what, msg);
  cr_expect(strstr(msg, c->expect), "%s: message lacks '%s': '%s'", c->what, c->expect, msg);
  cr_expect(!strchr(msg, '\n'), "%s: message is not one line: '%s'", c->what, msg);
  cr_expect_null(m, "%s: *model not NULL after a failed load", c->what);
  cr_expect_null(meta.prep.mean, "%s: meta holds memory after a failed load", c->what);
  if (c->ckpt_loader) {
    cr_expect_null(state, "%s: *state not NULL after a failed load", c->what);
    cr_expect_eq(state_bytes, 0);
  }
}

ParameterizedTest(bad_case *c, model_io, malformed, .init = make_dir, .fini = remove_dir) {
  fixture fx = table_fixture();
  const char *path = in_dir(c->file == FILE_CKPT ? "bad.ckpt" : "bad.model");
  sgn_status st = c->file == FILE_CKPT
                      ? sgn_checkpoint_save(path, fx.model, &fx.meta, fx.state, fx.state_bytes)
                      : sgn_model_save(path, fx.model, &fx.meta);
  cr_assert_eq(st, SGN_OK, "%s", sgn_last_error());
  size_t len;
  uint8_t *b = read_all(path, &len);
  cr_assert_eq(len, (size_t)(c->file == FILE_CKPT ? CKPT_SIZE : MODEL_SIZE), "fixture size %zu",
               len);
  if (c->op == OP_FLIP)
    for (size_t i = 0; i < sizeof FLIP_MASKS; i++) check_rejected(c, b, len, FLIP_MASKS[i]);
  else check_rejected(c, b, len, 0);
  free(b);
  free_fixture(&fx);
}

/* Peak address space above what is mapped now: a load that allocated the header's 4 TB would
 * fail with "out of memory" (SGN_E_RUNTIME) instead of naming the size mismatch. */
Test(model_io, absurd_header_fails_before_allocating, .init = make_dir, .fini = remove_dir) {
  fixture fx = table_fixture();
  const char *path = in_dir("huge.bin");
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_OK, "%s", sgn_last_error());
  size_t len;
  uint8_t *b = read_all(path, &len);
  put_le(b + 24, 1000000ull, 8);     /* m = 10^6 */
  put_le(b + 16, 1000000ull, 8);     /* d = 10^6 ... */
  put_le(b + 60, 1000000ull - 1, 8); /* ... = d_in + bias: W has 10^12 elements */
  write_all(path, b, len);
  free(b);

  FILE *f = fopen("/proc/self/statm", "r");
  cr_assert_not_null(f);
  unsigned long pages = 0;
  cr_assert_eq(fscanf(f, "%lu", &pages), 1);
  fclose(f);
  struct rlimit old, lim;
  cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
  lim = old;
  lim.rlim_cur = pages * (rlim_t)sysconf(_SC_PAGESIZE) + (64u << 20);
  cr_assert_eq(setrlimit(RLIMIT_AS, &lim), 0);
  sgn_model *m = NULL;
  sgn_model_meta meta;
  sgn_status st = sgn_model_load(path, &m, &meta);
  setrlimit(RLIMIT_AS, &old);
  cr_assert_eq(st, SGN_E_INPUT, "status %d: %s", (int)st, sgn_last_error());
  cr_expect(strstr(sgn_last_error(), "truncated: 264 bytes, expected 4000020000064"), "%s",
            sgn_last_error());
  cr_expect_null(m);
  free_fixture(&fx);
}

/* ---- failed saves ---- */

Test(model_io, save_to_missing_directory, .init = make_dir, .fini = remove_dir) {
  fixture fx = table_fixture();
  const char *path = in_dir("no/such/dir/model.bin");
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_INPUT);
  cr_expect(strstr(sgn_last_error(), "--save"), "%s", sgn_last_error());
  cr_expect(strstr(sgn_last_error(), path), "%s", sgn_last_error());
  cr_expect(strstr(sgn_last_error(), "cannot write: No such file or directory"), "%s",
            sgn_last_error());
  cr_assert_eq(sgn_checkpoint_save(path, fx.model, &fx.meta, fx.state, fx.state_bytes),
               SGN_E_INPUT);
  cr_expect(strstr(sgn_last_error(), "--checkpoint"), "%s", sgn_last_error());
  cr_expect(!exists(in_dir("no")), "something was created");
  free_fixture(&fx);
}

Test(model_io, save_into_read_only_directory, .init = make_dir, .fini = remove_dir) {
  if (geteuid() == 0) {
    remove_dir(); /* a skipped test does not reach .fini */
    cr_skip_test("root ignores directory permissions");
  }
  fixture fx = table_fixture();
  const char *sub = in_dir("ro"), *path = in_dir("ro/model.bin");
  cr_assert_eq(mkdir(sub, 0500), 0);
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_INPUT);
  cr_expect(strstr(sgn_last_error(), "Permission denied"), "%s", sgn_last_error());
  cr_expect(!exists(path) && !exists(in_dir("ro/model.bin.tmp")));
  free_fixture(&fx);
}

Test(model_io, save_onto_a_directory, .init = make_dir, .fini = remove_dir) {
  fixture fx = table_fixture();
  const char *path = in_dir("taken");
  cr_assert_eq(mkdir(path, 0700), 0);
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_INPUT);
  cr_expect(strstr(sgn_last_error(), path), "%s", sgn_last_error());
  struct stat sb;
  cr_expect(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode), "the directory is gone");
  cr_expect(!exists(in_dir("taken.tmp")), "PATH.tmp left behind");
  free_fixture(&fx);
}

/* PATH.tmp is a directory, so the temporary file cannot be created: the earlier file stays. */
Test(model_io, failed_save_keeps_earlier_file, .init = make_dir, .fini = remove_dir) {
  fixture a = table_fixture();
  fixture b = make_fixture(2, 0, 4, 1, SGN_TASK_REGRESSION, SGN_NORMALIZE_UNIT, 0, 99);
  const char *path = in_dir("m.bin"), *tmp = in_dir("m.bin.tmp");
  cr_assert_eq(sgn_model_save(path, a.model, &a.meta), SGN_OK, "%s", sgn_last_error());
  size_t len0, len1;
  uint8_t *before = read_all(path, &len0);
  cr_assert_eq(mkdir(tmp, 0700), 0);
  cr_assert_eq(sgn_model_save(path, b.model, &b.meta), SGN_E_INPUT);
  cr_expect(strstr(sgn_last_error(), path), "%s", sgn_last_error());
  cr_assert_eq(sgn_checkpoint_save(path, b.model, &b.meta, NULL, 0), SGN_E_INPUT);
  uint8_t *after = read_all(path, &len1);
  cr_expect(len0 == len1 && memcmp(before, after, len0) == 0, "the earlier file changed");
  struct stat sb;
  cr_expect(stat(tmp, &sb) == 0 && S_ISDIR(sb.st_mode), "the user's PATH.tmp directory is gone");
  free(before), free(after);
  free_fixture(&a), free_fixture(&b);
}

/* A write that fails midway (simulated disk full: a file-size limit, so writes get EFBIG) is a
 * runtime error naming the path; the earlier file stays byte-identical and no PATH.tmp remains. */
Test(model_io, failed_write_keeps_earlier_file, .init = make_dir, .fini = remove_dir) {
  fixture a = table_fixture();
  fixture b = make_fixture(40, 1, 300, 2, SGN_TASK_REGRESSION, SGN_NORMALIZE_STANDARD, 0, 3);
  const char *path = in_dir("m.bin");
  cr_assert_eq(sgn_model_save(path, a.model, &a.meta), SGN_OK, "%s", sgn_last_error());
  size_t len0, len1;
  uint8_t *before = read_all(path, &len0);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, lim;
  cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
  lim = old;
  lim.rlim_cur = 10000; /* b needs ~50 kB */
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
  sgn_status st = sgn_model_save(path, b.model, &b.meta);
  setrlimit(RLIMIT_FSIZE, &old);
  cr_assert_eq(st, SGN_E_RUNTIME, "status %d: %s", (int)st, sgn_last_error());
  cr_expect(strstr(sgn_last_error(), path), "%s", sgn_last_error());
  cr_expect(!exists(in_dir("m.bin.tmp")), "PATH.tmp left behind");
  uint8_t *after = read_all(path, &len1);
  cr_expect(len0 == len1 && memcmp(before, after, len0) == 0, "the earlier file changed");
  free(before), free(after);
  free_fixture(&a), free_fixture(&b);
}

Test(model_io, refuses_to_save_what_it_could_not_load, .init = make_dir, .fini = remove_dir) {
  fixture fx = table_fixture();
  const char *path = in_dir("m.bin");
  fx.model->W[7] = NAN;
  cr_expect_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_RUNTIME);
  cr_expect(strstr(sgn_last_error(), "W[1,3]"), "%s", sgn_last_error());
  fx.model->W[7] = 0;
  fx.meta.classes = 2;
  cr_expect_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_RUNTIME);
  cr_expect(strstr(sgn_last_error(), "classes"), "%s", sgn_last_error());
  fx.meta.classes = FX_K;
  fx.meta.prep.bias = 0; /* d no longer d_in + bias */
  cr_expect_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_RUNTIME);
  cr_expect(!exists(path) && !exists(in_dir("m.bin.tmp")), "a file was written");
  free_fixture(&fx);
}

/* ---- target statistics ---- */

/* A regression model with target statistics is version 2 and its extension block holds exactly
 * the documented "target=MEAN SCALE" lines; one without any stays version 1 (old readers). */
Test(model_io, target_lines_as_documented, .init = make_dir, .fini = remove_dir) {
  fixture fx = make_fixture(3, 0, 4, 2, SGN_TASK_REGRESSION, SGN_NORMALIZE_SPHERE, 0, 21);
  const char *path = in_dir("m.bin");
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_OK, "%s", sgn_last_error());
  size_t len;
  uint8_t *b = read_all(path, &len);
  cr_expect_eq(b[8], 1, "a model without target statistics must stay version 1");
  cr_expect_eq(b[52], SGN_NORMALIZE_SPHERE);
  cr_expect_eq(b[16], 4, "sphere: d = d_in + 1");
  free(b);
  add_targets(&fx, 21);
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_OK, "%s", sgn_last_error());
  b = read_all(path, &len);
  cr_expect_eq(b[8], 2, "version %d, want 2", b[8]);
  const size_t end = 68 + 4 * (2 * 3 + 4 * 2 + 4 * 4);
  char want[256];
  targets_text(&fx.meta.prep, want, sizeof want);
  cr_assert_eq(len, end + 8 + strlen(want) + 4);
  uint64_t ext = 0;
  for (int i = 0; i < 8; i++) ext |= (uint64_t)b[end + i] << (8 * i);
  cr_expect_eq(ext, strlen(want));
  cr_expect_eq(memcmp(b + end + 8, want, strlen(want)), 0, "block '%.*s', want '%s'", (int)ext,
               (const char *)b + end + 8, want);
  cr_expect(strstr(want, "target=-0 2.2250738585072014e-308\n"), "%s", want);
  free(b);
  free_fixture(&fx);
}

/* A regression model of k = 3 outputs saved with target statistics, its extension block then
 * replaced by `block` (CRC fixed), must be refused naming the file and `expect`. classify: the
 * same lines in a classifier's file. */
typedef struct bad_target {
  char what[48];
  int classify;
  char block[160];
  char expect[48];
} bad_target;

static bad_target bad_targets[] = {
    {"one line short", 0, "target=1 2\ntarget=3 4\n", "2 target lines for a model of 3"},
    {"one line too many", 0, "target=1 2\ntarget=3 4\ntarget=5 6\ntarget=7 8\n", "4 target"},
    {"in a classifier", 1, "target=1 2\ntarget=3 4\ntarget=5 6\n", "classification"},
    {"scale 0", 0, "target=1 2\ntarget=3 0\ntarget=5 6\n", "target line 2: scale 0 is not > 0"},
    {"scale < 0", 0, "target=1 2\ntarget=3 4\ntarget=5 -6\n", "line 3: scale -6 is not > 0"},
    {"mean nan", 0, "target=nan 2\ntarget=3 4\ntarget=5 6\n", "finite"},
    {"scale inf", 0, "target=1 2\ntarget=3 inf\ntarget=5 6\n", "finite"},
    {"mean overflows", 0, "target=1e999 2\ntarget=3 4\ntarget=5 6\n", "finite"},
    {"one number", 0, "target=1\ntarget=3 4\ntarget=5 6\n", "not MEAN SCALE"},
    {"three numbers", 0, "target=1 2 3\ntarget=3 4\ntarget=5 6\n", "scale '2 3'"},
    {"two blanks", 0, "target=1  2\ntarget=3 4\ntarget=5 6\n", "not MEAN SCALE"},
    {"leading blank", 0, "target= 1 2\ntarget=3 4\ntarget=5 6\n", "not MEAN SCALE"},
    {"a tab", 0, "target=1\t2\ntarget=3 4\ntarget=5 6\n", "not MEAN SCALE"},
    {"blank and tab", 0, "target=1 \t2\ntarget=3 4\ntarget=5 6\n", "not MEAN SCALE"},
    {"not a number", 0, "target=one 2\ntarget=3 4\ntarget=5 6\n", "mean 'one'"},
    {"trailing text", 0, "target=1 2x\ntarget=3 4\ntarget=5 6\n", "scale '2x'"},
    {"empty value", 0, "target=\ntarget=3 4\ntarget=5 6\n", "not MEAN SCALE"},
};

ParameterizedTestParameters(model_io, bad_target_lines) {
  return cr_make_param_array(bad_target, bad_targets, sizeof bad_targets / sizeof bad_targets[0]);
}

ParameterizedTest(bad_target *c, model_io, bad_target_lines, .init = make_dir,
                  .fini = remove_dir) {
  fixture fx = make_fixture(2, 1, 4, 3, c->classify ? SGN_TASK_CLASSIFY : SGN_TASK_REGRESSION,
                            SGN_NORMALIZE_SPHERE, 0, 31);
  const char *path = in_dir("bad.model");
  cr_assert_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_OK, "%s", sgn_last_error());
  size_t len;
  uint8_t *b = read_all(path, &len);
  const size_t end = len - 4, blen = strlen(c->block);
  b = realloc(b, end + 8 + blen + 4);
  b[8] = 2; /* version 2: the extension block follows W */
  for (int i = 0; i < 8; i++) b[end + i] = (uint8_t)((uint64_t)blen >> (8 * i));
  memcpy(b + end + 8, c->block, blen);
  len = end + 8 + blen + 4;
  const uint32_t crc = (uint32_t)crc32(0L, b, (uInt)(len - 4));
  for (int i = 0; i < 4; i++) b[len - 4 + i] = (uint8_t)(crc >> (8 * i));
  write_all(path, b, len);
  free(b);

  for (int extra = 0; extra < 2; extra++) { /* sgn_model_load and sgn_model_load_extra alike */
    int poison;
    sgn_model *m = (sgn_model *)&poison;
    sgn_model_meta meta = {.prep.y_mean = (double *)&poison};
    sgn_model_extra x;
    sgn_status st = extra ? sgn_model_load_extra(path, &m, &meta, &x)
                          : sgn_model_load(path, &m, &meta);
    const char *msg = sgn_last_error();
    cr_assert_eq(st, SGN_E_INPUT, "%s: status %d, '%s'", c->what, (int)st, msg);
    cr_expect(strstr(msg, path), "%s: message does not name the file: '%s'", c->what, msg);
    cr_expect(strstr(msg, c->expect), "%s: message lacks '%s': '%s'", c->what, c->expect, msg);
    cr_expect(!strchr(msg, '\n'), "%s: message is not one line: '%s'", c->what, msg);
    cr_expect(!m && !meta.prep.y_mean && !meta.prep.y_scale && meta.prep.k_y == 0,
              "%s: outputs not left empty", c->what);
  }
  free_fixture(&fx);
}

/* The saver refuses target statistics the loader would refuse, and writes nothing. */
Test(model_io, refuses_to_save_bad_target_statistics, .init = make_dir, .fini = remove_dir) {
  const char *path = in_dir("m.bin");
  fixture fx = make_fixture(2, 0, 4, 2, SGN_TASK_REGRESSION, SGN_NORMALIZE_SPHERE, 0, 41);
  add_targets(&fx, 41);
  fx.meta.prep.y_scale[1] = 0;
  cr_expect_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_RUNTIME);
  cr_expect(strstr(sgn_last_error(), "not > 0"), "%s", sgn_last_error());
  fx.meta.prep.y_scale[1] = 1;
  fx.meta.prep.y_mean[0] = NAN;
  cr_expect_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_RUNTIME);
  cr_expect(strstr(sgn_last_error(), "finite"), "%s", sgn_last_error());
  fx.meta.prep.y_mean[0] = 0;
  fx.meta.prep.k_y = 1; /* not k */
  cr_expect_eq(sgn_model_save(path, fx.model, &fx.meta), SGN_E_RUNTIME);
  cr_expect(strstr(sgn_last_error(), "1 target lines for a model of 2"), "%s", sgn_last_error());
  fx.meta.prep.k_y = 2;
  fx.meta.task = SGN_TASK_CLASSIFY, fx.meta.classes = 2;
  cr_expect_eq(sgn_checkpoint_save(path, fx.model, &fx.meta, fx.state, fx.state_bytes),
               SGN_E_RUNTIME);
  cr_expect(strstr(sgn_last_error(), "classification"), "%s", sgn_last_error());
  cr_expect(!exists(path) && !exists(in_dir("m.bin.tmp")), "a file was written");
  free_fixture(&fx);
}
