/* test_data.c — the file loaders behind a data SPEC: exact round trips of CSV, NPY (v1-v3) and
 * IDX (plain and gzip) written from known arrays, the CSV number parser against strtof, and a
 * table of malformed inputs that must each fail with SGN_E_INPUT and a message naming the file. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <float.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "rng.h"
#include "util.h"

/* ---- fixtures: a fresh directory per test ---- */

static char dir[64];

static void make_dir(void) {
  strcpy(dir, "/tmp/sgn_test_data_XXXXXX");
  cr_assert(mkdtemp(dir), "mkdtemp failed");
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void remove_dir(void) {
  if (dir[0]) nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(data, .init = make_dir, .fini = remove_dir);

/* dir/name (or dir/ + a format with "%s" for the directory); a few live at once */
static const char *at(const char *name) {
  static char bufs[8][600];
  static int next;
  char *b = bufs[next++ % 8];
  if (strstr(name, "%s")) snprintf(b, 600, name, dir, dir);
  else snprintf(b, 600, "%s/%s", dir, name);
  return b;
}

static void write_bytes(const char *name, const void *data, size_t len) {
  FILE *f = fopen(at(name), "wb");
  cr_assert(f, "cannot write %s", at(name));
  cr_assert_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void write_text(const char *name, const char *text) {
  write_bytes(name, text, strlen(text));
}

/* drops the last `bytes` bytes of a file */
static void chop(const char *name, long bytes) {
  struct stat sb;
  cr_assert_eq(stat(at(name), &sb), 0);
  cr_assert_eq(truncate(at(name), sb.st_size - bytes), 0);
}

/* An NPY file: magic, version, little-endian header length, the dict padded to 64 bytes. */
static void write_npy(const char *name, int version, const char *descr, int fortran,
                      const char *shape, const void *data, size_t nbytes) {
  char dict[256];
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                     descr, fortran ? "True" : "False", shape);
  size_t pre = version == 1 ? 10 : 12, total = (pre + (size_t)len + 1 + 63) / 64 * 64;
  size_t hlen = total - pre;
  unsigned char *b = calloc(total + nbytes, 1);
  memcpy(b, "\x93NUMPY", 6);
  b[6] = (unsigned char)version;
  for (size_t i = 0; i < pre - 8; i++) b[8 + i] = (unsigned char)(hlen >> (8 * i));
  memset(b + pre, ' ', hlen);
  memcpy(b + pre, dict, (size_t)len);
  b[total - 1] = '\n';
  if (nbytes) memcpy(b + total, data, nbytes);
  write_bytes(name, b, total + nbytes);
  free(b);
}

/* An IDX file: big-endian magic and dimensions, then the bytes; gzip when gz. */
static void write_idx(const char *name, int gz, uint32_t magic, const uint32_t *dims, int ndim,
                      const uint8_t *data, size_t len) {
  unsigned char h[16];
  for (int i = 0; i <= ndim; i++) {
    uint32_t v = i ? dims[i - 1] : magic;
    h[4 * i] = (unsigned char)(v >> 24), h[4 * i + 1] = (unsigned char)(v >> 16);
    h[4 * i + 2] = (unsigned char)(v >> 8), h[4 * i + 3] = (unsigned char)v;
  }
  size_t hl = 4 + 4 * (size_t)ndim;
  if (!gz) {
    unsigned char *b = malloc(hl + len + 1);
    memcpy(b, h, hl);
    if (len) memcpy(b + hl, data, len);
    write_bytes(name, b, hl + len);
    free(b);
    return;
  }
  gzFile g = gzopen(at(name), "wb");
  cr_assert(g);
  cr_assert_eq(gzwrite(g, h, (unsigned)hl), (int)hl);
  if (len) cr_assert_eq(gzwrite(g, data, (unsigned)len), (int)len);
  cr_assert_eq(gzclose(g), Z_OK);
}

static float rnd(uint64_t i) { return (float)sgn_rng_normal(99, SGN_STREAM_SYNTH_X, i); }

static void load_ok(const char *spec, const char *targets, sgn_dataset *ds) {
  sgn_status st = sgn_data_load(at(spec), targets, ds);
  cr_assert_eq(st, SGN_OK, "%s: %s", at(spec), sgn_last_error());
}

/* bit-for-bit equality, so -0.0 and 0.0 differ */
static void assert_same(const float *got, const float *want, int64_t count, const char *what) {
  for (int64_t i = 0; i < count; i++)
    cr_assert(!memcmp(&got[i], &want[i], sizeof(float)), "%s[%lld]: got %.9g, want %.9g", what,
              (long long)i, (double)got[i], (double)want[i]);
}

/* ---- CSV ---- */

/* Values the parser must carry exactly, beside random normals. */
static const float special[] = {0.0f,    -0.0f,  1.0f,         0.1f,        FLT_MAX, -FLT_MAX,
                                FLT_MIN, 1e-45f, 123456789.0f, 16777217.0f, 3e-39f,  -2.5e-8f};

Test(data, csv_round_trip_exact) {
  const int64_t n = 40, d = 5, k = 2;
  float X[40 * 5], Y[40 * 2];
  for (int64_t i = 0; i < n * d; i++)
    X[i] = i < (int64_t)(sizeof special / sizeof *special) ? special[i] : rnd((uint64_t)i) * 100;
  for (int64_t i = 0; i < n * k; i++) Y[i] = rnd((uint64_t)(1000 + i));
  FILE *f = fopen(at("rt.csv"), "w");
  for (int64_t i = 0; i < n; i++) {
    for (int64_t j = 0; j < d; j++) fprintf(f, "%.9g,", (double)X[i * d + j]);
    fprintf(f, "%.9g,%.17g\n", (double)Y[i * k], (double)Y[i * k + 1]); /* 17 digits: slow path */
  }
  fclose(f);
  sgn_dataset ds;
  load_ok("rt.csv,k=2", NULL, &ds);
  cr_assert(ds.n == n && ds.d == d && ds.k == k && ds.labels == 0);
  assert_same(ds.X, X, n * d, "X");
  assert_same(ds.Y, Y, n * k, "Y");
  sgn_dataset_free(&ds);
}

/* The fast path and its strtof fallback give strtof's correctly rounded float on random
 * decimals: 1..20 significant digits, exponents -45..37, and the odd integers near 2^24 and
 * 2^25, which are exact midpoints between floats. */
Test(data, csv_parser_agrees_with_strtof) {
  enum { COUNT = 30000 };
  static char text[COUNT][48];
  /* one digit either side of float midpoints, and on them: 1 + 2^-24, 2^24 + 1 */
  static const char *near[] = {"1.000000059604644775",
                               "1.000000059604644776",
                               "1.000000059604644775390625",
                               "16777217.00000000001",
                               "16777216.99999999999",
                               "16777217.000000000001",
                               "16777217",
                               "3.4028235677973366e38",
                               "1e-46",
                               "-0.0"};
  enum { NEAR = sizeof near / sizeof near[0] };
  FILE *f = fopen(at("p.csv"), "w");
  for (int i = 0; i < COUNT - NEAR; i++) {
    uint64_t r = sgn_rng_u64(5, SGN_STREAM_SYNTH_X, (uint64_t)i);
    int digits = 1 + (int)(r % 20), e = (int)((r >> 8) % 83) - 45;
    char mant[24];
    for (int j = 0; j < digits; j++)
      mant[j] = (char)('0' + sgn_rng_u64(6, SGN_STREAM_SYNTH_X, (uint64_t)i * 32 + j) % 10);
    mant[digits] = 0;
    switch (i % 4) {
    case 0: snprintf(text[i], 48, "%s%.1s.%se%d", r >> 40 & 1 ? "-" : "", mant, mant + 1, e); break;
    case 1: snprintf(text[i], 48, "0.%s", mant); break;
    case 2: snprintf(text[i], 48, "%s", mant); break;
    default: snprintf(text[i], 48, "%d", (i & 1 ? 16777217 : 33554434) + 4 * (i % 1000)); break;
    }
    fprintf(f, "%s,0\n", text[i]);
  }
  for (int i = 0; i < NEAR; i++) {
    strcpy(text[COUNT - NEAR + i], near[i]);
    fprintf(f, "%s,0\n", near[i]);
  }
  fclose(f);
  sgn_dataset ds;
  load_ok("p.csv", NULL, &ds);
  cr_assert_eq(ds.n, COUNT);
  for (int i = 0; i < COUNT; i++) {
    float want = strtof(text[i], NULL);
    cr_assert(!memcmp(&ds.X[i], &want, 4), "'%s': got %.9g, strtof %.9g", text[i], (double)ds.X[i],
              (double)want);
  }
  sgn_dataset_free(&ds);
}

Test(data, csv_header_detection) {
  sgn_dataset ds;
  write_text("h.csv", "x,y,label\n1,2,3\n4,5,6\n");
  load_ok("h.csv", NULL, &ds);
  cr_assert(ds.n == 2 && ds.d == 2 && ds.k == 1);
  cr_assert(ds.X[0] == 1 && ds.X[3] == 5 && ds.Y[0] == 3 && ds.Y[1] == 6);
  sgn_dataset_free(&ds);

  /* numbers of every form in the first row: data, not a header */
  write_text("nh.csv", "1e5,-2.5,.5\n+7,8.,-0\n");
  load_ok("nh.csv", NULL, &ds);
  cr_assert(ds.n == 2 && ds.d == 2 && ds.X[0] == 1e5f && ds.X[1] == -2.5f && ds.Y[0] == 0.5f);
  sgn_dataset_free(&ds);

  /* one name among numbers makes a header; quotes and blanks around names are dropped */
  write_text("q.csv", "1, \"x2\" ,3\n4,5,6\n");
  load_ok("q.csv", NULL, &ds);
  cr_assert(ds.n == 1 && ds.X[0] == 4);
  sgn_dataset_free(&ds);
  load_ok("q.csv", "x2", &ds);
  cr_assert(ds.n == 1 && ds.Y[0] == 5 && ds.X[0] == 4 && ds.X[1] == 6);
  sgn_dataset_free(&ds);
}

/* --targets by index, by name and mixed: Y in the order given, X the rest in file order. */
Test(data, csv_targets) {
  write_text("t.csv", "a,b,c,d\n1,2,3,4\n5,6,7,8\n");
  const char *sel[] = {"2,0", "c,a", "2, a", " c ,0"};
  for (int s = 0; s < 4; s++) {
    sgn_dataset ds;
    load_ok("t.csv", sel[s], &ds);
    cr_assert(ds.n == 2 && ds.d == 2 && ds.k == 2, "%s", sel[s]);
    float wx[] = {2, 4, 6, 8}, wy[] = {3, 1, 7, 5};
    assert_same(ds.X, wx, 4, "X");
    assert_same(ds.Y, wy, 4, "Y");
    sgn_dataset_free(&ds);
  }
  /* indices work without a header too; --targets overrides k= */
  write_text("nt.csv", "1,2,3\n4,5,6\n");
  sgn_dataset ds;
  load_ok("nt.csv,k=2", "0", &ds);
  cr_assert(ds.k == 1 && ds.d == 2 && ds.Y[0] == 1 && ds.Y[1] == 4 && ds.X[0] == 2);
  sgn_dataset_free(&ds);
}

Test(data, csv_k_and_n) {
  FILE *f = fopen(at("kn.csv"), "w");
  for (int i = 0; i < 10; i++) fprintf(f, "%d,%d,%d,%d\n", 4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3);
  fclose(f);
  sgn_dataset ds;
  load_ok("kn.csv,k=3", NULL, &ds);
  cr_assert(ds.n == 10 && ds.d == 1 && ds.k == 3 && ds.X[9] == 36 && ds.Y[29] == 39);
  sgn_dataset_free(&ds);
  load_ok("kn.csv,n=3,k=2", NULL, &ds);
  cr_assert(ds.n == 3 && ds.d == 2 && ds.k == 2);
  float wx[] = {0, 1, 4, 5, 8, 9}, wy[] = {2, 3, 6, 7, 10, 11};
  assert_same(ds.X, wx, 6, "X");
  assert_same(ds.Y, wy, 6, "Y");
  sgn_dataset_free(&ds);
  load_ok("kn.csv,n=10", NULL, &ds);
  cr_assert_eq(ds.n, 10);
  sgn_dataset_free(&ds);
}

/* CRLF, a byte order mark, blanks, blank lines and a missing final newline change nothing. */
Test(data, csv_line_endings) {
  const char *variants[] = {
      "a,b,y\n1,2.5,3\n-4,5,6e-3\n",
      "a,b,y\r\n1,2.5,3\r\n-4,5,6e-3\r\n",
      "a,b,y\r\n1,2.5,3\r\n-4,5,6e-3",
      "\xEF\xBB\xBF"
      "a,b,y\n1,2.5,3\n\n-4,5,6e-3\n\n\r\n  \n",
      "a, b ,y\n 1 ,\t2.5,3\n-4,5 , 6e-3",
  };
  float wx[] = {1, 2.5f, -4, 5}, wy[] = {3, 6e-3f};
  for (int v = 0; v < 5; v++) {
    write_text("le.csv", variants[v]);
    sgn_dataset ds;
    load_ok("le.csv", NULL, &ds);
    cr_assert(ds.n == 2 && ds.d == 2 && ds.k == 1, "variant %d", v);
    assert_same(ds.X, wx, 4, "X");
    assert_same(ds.Y, wy, 2, "Y");
    sgn_dataset_free(&ds);
  }
}

/* ---- NPY ---- */

Test(data, npy_round_trip_versions) {
  const int64_t n = 7, d = 3;
  float X[7 * 3], Y[7 * 2];
  for (int64_t i = 0; i < n * d; i++) X[i] = rnd((uint64_t)i);
  for (int64_t i = 0; i < n * 2; i++) Y[i] = rnd((uint64_t)(100 + i));
  X[0] = -0.0f, X[1] = FLT_MAX, X[2] = 1e-45f;
  for (int v = 1; v <= 3; v++) {
    write_npy("x.npy", v, "<f4", 0, "(7, 3)", X, sizeof X);
    write_npy("y.npy", v, "<f4", 0, "(7, 2)", Y, sizeof Y);
    sgn_dataset ds;
    load_ok("x.npy", at("y.npy"), &ds);
    cr_assert(ds.n == n && ds.d == d && ds.k == 2 && ds.labels == 0, "version %d", v);
    assert_same(ds.X, X, n * d, "X");
    assert_same(ds.Y, Y, n * 2, "Y");
    sgn_dataset_free(&ds);
    load_ok("x.npy,n=2", at("y.npy"), &ds);
    cr_assert(ds.n == 2 && ds.d == d);
    assert_same(ds.X, X, 2 * d, "X");
    assert_same(ds.Y, Y, 2 * 2, "Y");
    sgn_dataset_free(&ds);
  }
}

/* float64 and uint8 inputs; integer targets of shape (n,) are labels, (n, 1) and floats not. */
Test(data, npy_dtypes_and_labels) {
  double X8[6] = {0.5, -1.25, 3e10, -0.0, 1e-30, 7};
  uint8_t Xu[6] = {0, 1, 127, 128, 254, 255};
  int64_t y8[3] = {0, 9, 3};
  int32_t y4[3] = {2, 0, 1};
  uint8_t yu[3] = {5, 4, 255};
  float yf[3] = {0.5f, 1, 2};
  write_npy("x8.npy", 1, "<f8", 0, "(3, 2)", X8, sizeof X8);
  write_npy("xu.npy", 2, "|u1", 0, "(3, 2)", Xu, sizeof Xu);
  write_npy("x3d.npy", 1, "|u1", 0, "(3, 1, 2)", Xu, sizeof Xu);
  write_npy("y8.npy", 1, "<i8", 0, "(3,)", y8, sizeof y8);
  write_npy("y4.npy", 3, "<i4", 0, "(3,)", y4, sizeof y4);
  write_npy("yu.npy", 1, "|u1", 0, "(3,)", yu, sizeof yu);
  write_npy("y41.npy", 1, "<i4", 0, "(3, 1)", y4, sizeof y4);
  write_npy("yf.npy", 1, "<f4", 0, "(3,)", yf, sizeof yf);
  sgn_dataset ds;
  load_ok("x8.npy", at("y8.npy"), &ds);
  cr_assert(ds.n == 3 && ds.d == 2 && ds.k == 1 && ds.labels == 1);
  for (int i = 0; i < 6; i++) cr_assert(!memcmp(&ds.X[i], &(float){(float)X8[i]}, 4), "X8[%d]", i);
  float w8[] = {0, 9, 3};
  assert_same(ds.Y, w8, 3, "y8");
  sgn_dataset_free(&ds);

  const char *xs[] = {"xu.npy", "x3d.npy"};
  for (int q = 0; q < 2; q++) {
    load_ok(xs[q], at("y4.npy"), &ds);
    cr_assert(ds.n == 3 && ds.d == 2 && ds.labels == 1, "%s", xs[q]);
    for (int i = 0; i < 6; i++) cr_assert_eq(ds.X[i], (float)Xu[i]);
    float w4[] = {2, 0, 1};
    assert_same(ds.Y, w4, 3, "y4");
    sgn_dataset_free(&ds);
  }
  load_ok("xu.npy", at("yu.npy"), &ds);
  cr_assert(ds.labels == 1 && ds.Y[2] == 255);
  sgn_dataset_free(&ds);
  load_ok("xu.npy", at("y41.npy"), &ds);
  cr_assert(ds.labels == 0 && ds.k == 1 && ds.Y[0] == 2);
  sgn_dataset_free(&ds);
  load_ok("xu.npy", at("yf.npy"), &ds);
  cr_assert(ds.labels == 0 && ds.k == 1 && ds.Y[0] == 0.5f);
  sgn_dataset_free(&ds);
}

/* ---- IDX and fashion-mnist ---- */

static uint8_t pixel(uint64_t i) { return (uint8_t)sgn_rng_u64(3, SGN_STREAM_SYNTH_X, i); }

static void write_idx_pair(const char *images, const char *labels, int gz, uint32_t n,
                           uint32_t rows, uint32_t cols) {
  size_t len = (size_t)n * rows * cols;
  uint8_t *px = malloc(len), *lb = malloc(n);
  for (size_t i = 0; i < len; i++) px[i] = pixel(i);
  for (uint32_t i = 0; i < n; i++) lb[i] = (uint8_t)(i % 10);
  write_idx(images, gz, 0x803, (uint32_t[]){n, rows, cols}, 3, px, len);
  write_idx(labels, gz, 0x801, (uint32_t[]){n}, 1, lb, n);
  free(px), free(lb);
}

static void check_idx(const sgn_dataset *ds, int64_t n, int64_t d) {
  cr_assert(ds->n == n && ds->d == d && ds->k == 1 && ds->labels == 1);
  for (int64_t i = 0; i < n * d; i++)
    cr_assert_eq(ds->X[i], (float)pixel((uint64_t)i), "pixel %lld", (long long)i);
  for (int64_t i = 0; i < n; i++) cr_assert_eq(ds->Y[i], (float)(i % 10));
}

Test(data, idx_round_trip_plain_and_gzip) {
  write_idx_pair("img", "lab", 0, 12, 3, 5);
  write_idx_pair("img.gz", "lab.gz", 1, 12, 3, 5);
  sgn_dataset ds;
  load_ok("idx:%s/img,%s/lab", NULL, &ds);
  check_idx(&ds, 12, 15);
  sgn_dataset_free(&ds);
  load_ok("idx:%s/img.gz,%s/lab.gz", NULL, &ds);
  check_idx(&ds, 12, 15);
  sgn_dataset_free(&ds);
  load_ok("idx:%s/img.gz,%s/lab,n=5", NULL, &ds);
  check_idx(&ds, 5, 15);
  sgn_dataset_free(&ds);
}

/* $SKETCHGN_DATA, with plain and gzip names mixed; the default split is train. */
Test(data, fashion_mnist_from_env) {
  write_idx_pair("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz", 0, 4, 2, 2);
  write_idx_pair("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte", 1, 6, 2, 2);
  setenv("SKETCHGN_DATA", dir, 1);
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("fashion-mnist:test", NULL, &ds), SGN_OK, "%s", sgn_last_error());
  check_idx(&ds, 4, 4);
  sgn_dataset_free(&ds);
  cr_assert_eq(sgn_data_load("fashion-mnist,n=5", NULL, &ds), SGN_OK, "%s", sgn_last_error());
  check_idx(&ds, 5, 4);
  sgn_dataset_free(&ds);
  cr_assert_eq(sgn_data_load("fashion-mnist:train", NULL, &ds), SGN_OK, "%s", sgn_last_error());
  check_idx(&ds, 6, 4);
  sgn_dataset_free(&ds);
}

/* The installed Debian dataset, when present. */
Test(data, fashion_mnist_installed) {
  const char *root = getenv("SKETCHGN_DATA");
  if (!root || !*root) root = "/usr/share/datasets/fashion-mnist";
  struct stat sb;
  if (stat(root, &sb)) cr_skip_test("%s not installed (scripts/install-deps.sh)", root);
  sgn_dataset ds;
  cr_assert_eq(sgn_data_load("fashion-mnist:test,n=100", NULL, &ds), SGN_OK, "%s",
               sgn_last_error());
  cr_assert(ds.n == 100 && ds.d == 784 && ds.k == 1 && ds.labels == 1);
  int seen[10] = {0};
  for (int64_t i = 0; i < 100; i++) {
    cr_assert(ds.Y[i] >= 0 && ds.Y[i] <= 9 && ds.Y[i] == floorf(ds.Y[i]), "label %g", ds.Y[i]);
    seen[(int)ds.Y[i]] = 1;
  }
  float lo = 255, hi = 0;
  for (int64_t i = 0; i < 100 * 784; i++) {
    cr_assert(ds.X[i] >= 0 && ds.X[i] <= 255 && ds.X[i] == floorf(ds.X[i]));
    lo = fminf(lo, ds.X[i]), hi = fmaxf(hi, ds.X[i]);
  }
  int classes = 0;
  for (int c = 0; c < 10; c++) classes += seen[c];
  cr_assert(lo == 0 && hi == 255 && classes >= 8, "pixels %g..%g, %d classes", lo, hi, classes);
  sgn_dataset_free(&ds);
}

/* ---- malformed inputs ---- */

/* Writers for the binary fixtures: a valid x.npy (4, 3) and y.npy (4,) unless a case says
 * otherwise, images img(.gz) of 5 4x4 images and labels lab(.gz). */
static const float X43[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const float Y4[4] = {1, 0, 1, 0};

static void npy_pair(const char *xdescr, const char *xshape, const char *ydescr,
                     const char *yshape) {
  write_npy("x.npy", 1, xdescr, 0, xshape, X43, sizeof X43);
  write_npy("y.npy", 1, ydescr, 0, yshape, Y4, sizeof Y4);
}
static void w_npy_ok(void) { npy_pair("<f4", "(4, 3)", "<f4", "(4,)"); }
static void w_npy_truncated(void) { w_npy_ok(), chop("x.npy", 5); }
static void w_npy_header_cut(void) { w_npy_ok(), chop("x.npy", sizeof X43 + 100); }
static void w_npy_more_data(void) { npy_pair("<f4", "(10, 3)", "<f4", "(4,)"); }
static void w_npy_trailing(void) { npy_pair("<f4", "(2, 3)", "<f4", "(4,)"); }
static void w_npy_c16(void) { npy_pair("<c16", "(4, 3)", "<f4", "(4,)"); }
static void w_npy_big_endian(void) { npy_pair("<f4", "(4, 3)", ">f4", "(4,)"); }
static void w_npy_huge(void) { npy_pair("<f4", "(1000000, 1000000)", "<f4", "(4,)"); }
static void w_npy_overflow(void) { npy_pair("<f4", "(4611686018427387904, 4)", "<f4", "(4,)"); }
static void w_npy_1d(void) { npy_pair("<f4", "(12,)", "<f4", "(4,)"); }
static void w_npy_3d_targets(void) { npy_pair("<f4", "(4, 3)", "<f4", "(2, 1, 2)"); }
static void w_npy_fortran(void) {
  w_npy_ok();
  write_npy("x.npy", 1, "<f4", 1, "(4, 3)", X43, sizeof X43);
}
static void w_npy_n_mismatch(void) {
  write_npy("x.npy", 1, "<f4", 0, "(4, 3)", X43, sizeof X43);
  write_npy("y.npy", 1, "<f4", 0, "(3,)", Y4, 3 * sizeof(float));
}
static void w_npy_nan(void) {
  float X[12];
  memcpy(X, X43, sizeof X);
  X[7] = NAN;
  write_npy("x.npy", 2, "<f4", 0, "(4, 3)", X, sizeof X);
  write_npy("y.npy", 1, "<f4", 0, "(4,)", Y4, sizeof Y4);
}
static void w_npy_negative_label(void) {
  int64_t y[4] = {0, 1, -1, 2};
  write_npy("x.npy", 1, "<f4", 0, "(4, 3)", X43, sizeof X43);
  write_npy("y.npy", 1, "<i8", 0, "(4,)", y, sizeof y);
}
static void w_npy_not_npy(void) { w_npy_ok(), write_text("x.npy", "PK\x03\x04 not numpy"); }

static void idx_pair(int gz, uint32_t n_img, uint32_t n_lab, size_t img_bytes) {
  uint8_t px[5 * 16 + 8] = {0}, lb[8] = {0};
  write_idx(gz ? "img.gz" : "img", gz, 0x803, (uint32_t[]){n_img, 4, 4}, 3, px, img_bytes);
  write_idx(gz ? "lab.gz" : "lab", gz, 0x801, (uint32_t[]){n_lab}, 1, lb, n_lab < 8 ? n_lab : 5);
}
static void w_idx_ok(void) { idx_pair(0, 5, 5, 80); }
static void w_idx_magic(void) {
  w_idx_ok();
  write_idx("img", 0, 0x802, (uint32_t[]){5, 16}, 2, (uint8_t[80]){0}, 80);
}
static void w_idx_swapped(void) { w_idx_ok(); }
static void w_idx_count(void) { idx_pair(0, 5, 4, 80); }
static void w_idx_truncated(void) { idx_pair(0, 5, 5, 50); }
static void w_idx_trailing(void) { idx_pair(0, 5, 5, 88); }
static void w_idx_gz_truncated(void) {
  uint8_t px[4096];
  for (int i = 0; i < 4096; i++) px[i] = pixel((uint64_t)i);
  write_idx("img.gz", 1, 0x803, (uint32_t[]){16, 16, 16}, 3, px, sizeof px);
  write_idx("lab.gz", 1, 0x801, (uint32_t[]){16}, 1, px, 16);
  struct stat sb;
  stat(at("img.gz"), &sb);
  chop("img.gz", sb.st_size / 2);
}
static void w_idx_gz_crc(void) {
  idx_pair(1, 5, 5, 80);
  FILE *f = fopen(at("img.gz"), "r+b");
  fseek(f, -8, SEEK_END); /* the trailer: CRC-32, then the length */
  int c = fgetc(f);
  fseek(f, -8, SEEK_END);
  fputc(c ^ 0xff, f);
  fclose(f);
}
/* a header claiming a million 28x28 images over two images of data */
static void w_idx_gz_claims_more(void) {
  uint8_t px[2 * 784] = {0};
  write_idx("img.gz", 1, 0x803, (uint32_t[]){1000000, 28, 28}, 3, px, sizeof px);
  write_idx("lab.gz", 1, 0x801, (uint32_t[]){1000000}, 1, px, 2);
}
static void w_fashion_missing(void) { setenv("SKETCHGN_DATA", at("no-such-folder"), 1); }
static void w_fashion_no_file(void) {
  setenv("SKETCHGN_DATA", dir, 1);
  write_idx_pair("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 1, 3, 2, 2);
}

typedef struct bad_case {
  const char *name;
  const char *csv;     /* written to bad.csv when not NULL */
  void (*write)(void); /* or writes the fixture files */
  const char *spec;    /* "%s" is the fixture directory */
  const char *targets; /* NULL, or a --targets argument ("%s" as in spec) */
  const char *want[3]; /* substrings of the message */
} bad_case;

#define CSV "%s/bad.csv"
#define IDX "idx:%s/img,%s/lab"
#define IDXGZ "idx:%s/img.gz,%s/lab.gz"

/* The table lives at file scope and each test takes its row number: Criterion runs a test in a
 * fresh process where pointers (strings, writers) copied from the parent would not be valid. */
static const bad_case cases[] = {
    /* CSV: the line and field of the fault */
    {"csv ragged short", "1,2,3\n4,5\n", 0, CSV, 0, {"bad.csv:2:4:", "2 fields, expected 3"}},
    {"csv ragged long", "a,b\n1,2\n3,4,5\n", 0, CSV, 0, {"bad.csv:3:5:", "more than 2 fields"}},
    {"csv non-numeric",
     "1,2\n3,abc\n",
     0,
     CSV,
     0,
     {"bad.csv:2:3:", "field 2 'abc'", "not a number"}},
    {"csv number with junk", "1,2\r\n3,4.5x\r\n", 0, CSV, 0, {"bad.csv:2:3:", "'4.5x'"}},
    {"csv NaN", "a,b\n1,2\nnan,3\n", 0, CSV, 0, {"bad.csv:3:1:", "field 1 'nan' is NaN"}},
    {"csv Inf", "1,-inf\n", 0, CSV, 0, {"bad.csv:1:3:", "field 2", "infinite"}},
    {"csv out of range", "1,2\n1e39,0\n", 0, CSV, 0, {"bad.csv:2:1:", "out of float range"}},
    {"csv empty field", "1,,3\n", 0, CSV, 0, {"bad.csv:1:3:", "field 2 '' is empty"}},
    {"csv NA", "a,b,y\n1,2,3\n4,NA,6\n", 0, CSV, 0, {"bad.csv:3:3:", "'NA' is a missing value"}},
    {"csv semicolons", "a;b;y\n1;2;3\n", 0, CSV, 0, {"bad.csv:1:", "semicolons"}},
    {"csv tabs", "a\tb\ty\n1\t2\t3\n", 0, CSV, 0, {"bad.csv:1:", "tabs"}},
    {"csv empty file", "", 0, CSV, 0, {"bad.csv", "empty file"}},
    {"csv blank lines only", "\n \r\n\t\n", 0, CSV, 0, {"bad.csv", "empty file"}},
    {"csv header only", "a,b,c\r\n\r\n", 0, CSV, 0, {"bad.csv", "only a header"}},
    {"csv unknown target name", "a,b\n1,2\n", 0, CSV, "zz", {"bad.csv:1:", "no column named 'zz'"}},
    {"csv target index out of range",
     "a,b\n1,2\n",
     0,
     CSV,
     "0,5",
     {"bad.csv", "column 5 is out of range"}},
    {"csv target name without header", "1,2\n", 0, CSV, "b", {"bad.csv", "no header row"}},
    {"csv target named twice", "1,2,3\n", 0, CSV, "1,1", {"bad.csv", "column 1 twice"}},
    {"csv targets take every column", "1,2\n", 0, CSV, "0,1", {"bad.csv", "no input columns"}},
    {"csv k leaves no inputs", "1,2\n", 0, CSV ",k=2", 0, {"bad.csv", "k=2", "no inputs"}},
    {"csv n=0", "1,2\n", 0, CSV ",n=0", 0, {"bad.csv", "n=0", ">= 1"}},
    {"csv n beyond the rows", "1,2\n3,4\n", 0, CSV ",n=5", 0, {"bad.csv", "n=5", "only 2"}},
    {"csv unknown option", "1,2\n", 0, CSV ",m=3", 0, {"bad.csv", "unknown option 'm=3'"}},
    {"csv missing file", 0, 0, "%s/nope.csv", 0, {"nope.csv", "cannot open"}},
    /* NPY */
    {"npy truncated data", 0, w_npy_truncated, "%s/x.npy", "%s/y.npy", {"x.npy", "truncated"}},
    {"npy truncated header",
     0,
     w_npy_header_cut,
     "%s/x.npy",
     "%s/y.npy",
     {"x.npy", "truncated NPY header"}},
    {"npy shape beyond the data",
     0,
     w_npy_more_data,
     "%s/x.npy",
     "%s/y.npy",
     {"x.npy", "120 bytes", "48 bytes"}},
    {"npy data beyond the shape",
     0,
     w_npy_trailing,
     "%s/x.npy",
     "%s/y.npy",
     {"x.npy", "24 bytes", "48 bytes"}},
    {"npy complex dtype",
     0,
     w_npy_c16,
     "%s/x.npy",
     "%s/y.npy",
     {"x.npy", "unsupported dtype '<c16'"}},
    {"npy big-endian",
     0,
     w_npy_big_endian,
     "%s/x.npy",
     "%s/y.npy",
     {"y.npy", "big-endian", "'>f4'"}},
    {"npy fortran order", 0, w_npy_fortran, "%s/x.npy", "%s/y.npy", {"x.npy", "fortran_order"}},
    {"npy 10^12 elements", 0, w_npy_huge, "%s/x.npy", "%s/y.npy", {"x.npy", "4000000000000 bytes"}},
    {"npy shape overflows", 0, w_npy_overflow, "%s/x.npy", "%s/y.npy", {"x.npy", "overflows"}},
    {"npy 1-D inputs", 0, w_npy_1d, "%s/x.npy", "%s/y.npy", {"x.npy", "(12,)", "2-D"}},
    {"npy 3-D targets", 0, w_npy_3d_targets, "%s/x.npy", "%s/y.npy", {"y.npy", "(n,) or (n, k)"}},
    {"npy n mismatch",
     0,
     w_npy_n_mismatch,
     "%s/x.npy",
     "%s/y.npy",
     {"x.npy holds 4", "y.npy holds 3"}},
    {"npy NaN", 0, w_npy_nan, "%s/x.npy", "%s/y.npy", {"x.npy", "[2, 1] is NaN"}},
    {"npy negative label", 0, w_npy_negative_label, "%s/x.npy", "%s/y.npy", {"y.npy", "y[2] = -1"}},
    {"npy not an npy file", 0, w_npy_not_npy, "%s/x.npy", "%s/y.npy", {"x.npy", "magic"}},
    {"npy without --targets", 0, w_npy_ok, "%s/x.npy", 0, {"x.npy", "--targets"}},
    {"npy missing targets file",
     0,
     w_npy_ok,
     "%s/x.npy",
     "%s/nope.npy",
     {"nope.npy", "cannot open"}},
    {"npy n beyond the rows", 0, w_npy_ok, "%s/x.npy,n=9", "%s/y.npy", {"x.npy", "n=9", "only 4"}},
    {"npy takes no k", 0, w_npy_ok, "%s/x.npy,k=1", "%s/y.npy", {"x.npy", "unknown option 'k=1'"}},
    /* IDX */
    {"idx wrong magic", 0, w_idx_magic, IDX, 0, {"img", "wrong magic 0x00000802"}},
    {"idx swapped", 0, w_idx_swapped, "idx:%s/lab,%s/img", 0, {"lab", "swapped"}},
    {"idx count mismatch", 0, w_idx_count, IDX, 0, {"img hold 5", "lab hold 4"}},
    {"idx truncated plain", 0, w_idx_truncated, IDX, 0, {"img", "truncated", "ends after 50"}},
    {"idx more data than declared", 0, w_idx_trailing, IDX, 0, {"img", "more data than"}},
    {"idx truncated gzip", 0, w_idx_gz_truncated, IDXGZ, 0, {"img.gz", "gzip"}},
    {"idx gzip CRC", 0, w_idx_gz_crc, IDXGZ, 0, {"img.gz", "gzip", "check"}},
    {"idx header claims more", 0, w_idx_gz_claims_more, IDXGZ, 0, {"img.gz", "truncated", "1568"}},
    {"idx n beyond the rows", 0, w_idx_ok, IDX ",n=6", 0, {"img", "n=6", "only 5"}},
    {"idx missing labels", 0, w_idx_ok, "idx:%s/img", 0, {"img", "IMAGES,LABELS"}},
    {"idx missing file",
     0,
     w_idx_ok,
     "idx:%s/img,%s/nope-labels",
     0,
     {"nope-labels", "cannot open"}},
    /* specs */
    {"unknown suffix", 0, 0, "%s/data.bin", 0, {"data.bin", "unknown data spec"}},
    {"unknown prefix", 0, 0, "foo:bar", 0, {"foo:bar", "unknown data spec"}},
    {"targets for synth", 0, 0, "synth:n=8", "y.npy", {"synth:n=8", "--targets 'y.npy'"}},
    {"fashion split", 0, 0, "fashion-mnist:valid", 0, {"fashion-mnist:valid", "'valid'"}},
    {"fashion folder missing",
     0,
     w_fashion_missing,
     "fashion-mnist",
     0,
     {"no-such-folder", "install-deps.sh"}},
    {"fashion file missing",
     0,
     w_fashion_no_file,
     "fashion-mnist:train",
     0,
     {"train-images-idx3-ubyte.gz", "install-deps.sh"}},
};

ParameterizedTestParameters(data, malformed) {
  static int rows[sizeof cases / sizeof cases[0]];
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) rows[i] = (int)i;
  return cr_make_param_array(int, rows, sizeof rows / sizeof rows[0]);
}

ParameterizedTest(int *row, data, malformed) {
  const bad_case *c = &cases[*row];
  if (c->csv) write_text("bad.csv", c->csv);
  if (c->write) c->write();
  char spec[600], targets[600];
  snprintf(spec, sizeof spec, c->spec, dir, dir);
  if (c->targets) snprintf(targets, sizeof targets, c->targets, dir);
  sgn_dataset ds;
  memset(&ds, 0xab, sizeof ds);
  sgn_status st = sgn_data_load(spec, c->targets ? targets : NULL, &ds);
  const char *msg = sgn_last_error();
  cr_log_info("%s: %s", c->name, msg); /* shown by --verbose */
  cr_assert_eq(st, SGN_E_INPUT, "%s: status %d: %s", c->name, st, msg);
  cr_assert(!ds.X && !ds.Y && ds.n == 0, "%s: the dataset is not left empty", c->name);
  cr_assert(!strchr(msg, '\n'), "%s: message spans lines: %s", c->name, msg);
  cr_assert(!strncmp(msg, "--data '", 8), "%s: %s", c->name, msg);
  for (int i = 0; i < 3 && c->want[i]; i++)
    cr_assert(strstr(msg, c->want[i]), "%s: message lacks '%s': %s", c->name, c->want[i], msg);
}
