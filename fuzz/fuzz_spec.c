/* fuzz_spec.c — the data SPEC strings: synth:key=value,..., idx:IMAGES,LABELS[,n=N],
 * fashion-mnist[:split][,n=N], FILE.csv|.txt|.npy[,options] and --targets, parsed and loaded
 * against small valid files in the scratch folder (the current directory here; SKETCHGN_DATA
 * points at a fashion-mnist folder of 3 images). Input: the spec, then optionally a NUL and the
 * --targets string. Specs naming a '/' are skipped (no path leaves the scratch folder), and so
 * are synth tasks too large to build in a fuzzing run (the size is the user's to choose) and
 * strings with control characters (error messages quote the command line as typed). */
#include <sys/stat.h>
#include <zlib.h>

#include "fuzz_common.h"

/* An NPY v1 file of the given dtype and shape holding bytes of data. */
static void write_npy(const char *path, const char *descr, const char *shape, const void *data,
                      size_t bytes) {
  char dict[128];
  int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
  while ((10 + len + 1) % 64) dict[len++] = ' ';
  dict[len++] = '\n';
  uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)len, (uint8_t)(len >> 8)};
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(pre, 1, 10, f) != 10 || fwrite(dict, 1, (size_t)len, f) != (size_t)len ||
      fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0)
    abort();
}

static void write_gz(const char *path, const void *data, size_t len) {
  gzFile g = gzopen(path, "wb");
  if (!g || gzwrite(g, data, (unsigned)len) != (int)len || gzclose(g) != Z_OK) abort();
}

/* 3 images of 2x2 and their labels, plain and gzip, under names and in dir */
static void write_idx(const char *images, const char *labels, int gz) {
  static const uint8_t im[16 + 12] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0,  0,
                                      0, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255};
  static const uint8_t lb[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 9};
  if (gz) {
    write_gz(images, im, sizeof im);
    write_gz(labels, lb, sizeof lb);
  } else {
    fuzz_write(images, im, sizeof im);
    fuzz_write(labels, lb, sizeof lb);
  }
}

static void make_fixtures(void) {
  const char *dir = fuzz_scratch();
  if (chdir(dir) != 0) abort();
  const char csv[] = "x,y,t\n1,2,3\n4,5,6\n\n7,8,9\n";
  fuzz_write("a.csv", csv, sizeof csv - 1);
  const char txt[] = "1, 2\r\n3 ,4\r\n";
  fuzz_write("a.txt", txt, sizeof txt - 1);
  const float x[6] = {1, 2, 3, 4, 5, 6}, y[3] = {0.5f, -1, 2};
  const int64_t l[3] = {0, 2, 1};
  write_npy("x.npy", "<f4", "(3, 2)", x, sizeof x);
  write_npy("y.npy", "<f4", "(3,)", y, sizeof y);
  write_npy("l.npy", "<i8", "(3,)", l, sizeof l);
  write_npy("y2.npy", "<f4", "(3, 1)", y, sizeof y);
  write_idx("i", "l", 0);
  write_idx("i.gz", "l.gz", 1);
  if (mkdir("fm", 0700) != 0) abort();
  write_idx("fm/train-images-idx3-ubyte", "fm/train-labels-idx1-ubyte", 0);
  write_idx("fm/t10k-images-idx3-ubyte.gz", "fm/t10k-labels-idx1-ubyte.gz", 1);
  char fm[600];
  snprintf(fm, sizeof fm, "%s/fm", dir);
  setenv("SKETCHGN_DATA", fm, 1);
}

/* The largest n, d, k a synth spec could ask for (each key's largest value, as strtod reads it;
 * a value the parser rejects never builds a task): too large means more than a few
 * milliseconds of work. */
static int synth_too_large(const char *spec) {
  if (strncmp(spec, "synth", 5)) return 0;
  double v[3] = {1024, 32, 1}; /* the defaults */
  for (const char *p = spec; *p; p++) {
    if (p != spec && p[-1] != ':' && p[-1] != ',') continue;
    int key = *p == 'n' ? 0 : *p == 'd' ? 1 : *p == 'k' ? 2 : -1;
    if (key < 0 || p[1] != '=') continue;
    double x = strtod(p + 2, NULL);
    if (!(x <= 1e12)) x = 1e12; /* NaN and inf too: the parser rejects them, but be safe */
    if (x > v[key]) v[key] = x;
  }
  return v[0] * v[1] * v[2] > 1e5 || v[0] * (v[1] + v[2]) > 1e6;
}

/* The harness works in the scratch folder, so the relative paths libFuzzer was given (corpus
 * folders and inputs, -artifact_prefix=, -dict=, ...) are made absolute first. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) abort();
  for (int i = 1; i < *argc; i++) {
    static const char *const path_flags[] = {
        "-artifact_prefix=", "-exact_artifact_path=", "-dict=", "-features_dir=", NULL};
    char *a = (*argv)[i], *val = a;
    if (a[0] == '-') {
      val = NULL;
      for (int f = 0; path_flags[f] && !val; f++)
        if (!strncmp(a, path_flags[f], strlen(path_flags[f]))) val = a + strlen(path_flags[f]);
      if (!val) continue;
    }
    if (!val[0] || val[0] == '/') continue;
    size_t keep = (size_t)(val - a), len = keep + strlen(cwd) + 1 + strlen(val) + 1;
    char *abs = malloc(len); /* lives as long as the process, like argv */
    if (!abs) abort();
    snprintf(abs, len, "%.*s%s/%s", (int)keep, a, cwd, val);
    (*argv)[i] = abs;
  }
  make_fixtures();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char buf[512];
  if (size >= sizeof buf) return 0;
  memcpy(buf, data, size);
  buf[size] = 0;
  const char *spec = buf, *targets = NULL;
  size_t slen = strlen(buf);
  if (slen < size) targets = buf + slen + 1; /* a second NUL ends the targets early */
  if (strchr(spec, '/') || (targets && strchr(targets, '/'))) return 0;
  if (!fuzz_printable(spec) || (targets && !fuzz_printable(targets))) return 0;
  if (synth_too_large(spec)) return 0;
  sgn_dataset ds;
  sgn_status st = sgn_data_load(spec, targets, &ds);
  fuzz_check_dataset(st, &ds);
  return 0;
}
