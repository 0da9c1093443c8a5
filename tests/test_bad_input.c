/* test_bad_input.c — malformed inputs through the real `sketchgn` binary (env SKETCHGN_BIN,
 * default build/sketchgn): every row writes its fixture files into a fresh mkdtemp folder, runs
 * train, eval or predict on them, and checks the CLI's contract for bad input: exit status 2,
 * one line on stderr naming the file (and for CSV the line and column), nothing on stdout, and
 * no output file (--save, --out, --log-json, --checkpoint, *.tmp) left behind. Rows marked fast
 * run with 1 GiB of address space beyond what the binary needs to start, and must end in under
 * 5 s: a header that declares 10^12 elements must be refused before anything is allocated. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cli_run.h"

/* ---- limits, with how each was chosen ---- */

/* Address space for the fast rows: what the binary needs to start, plus 1 GiB. Starting takes
 * ~100 MB on a CPU build but over a GiB on a CUDA build (cuBLAS, cuSOLVER, cuFFT are mapped at
 * exec), so that part is measured; 10^12 floats would need 4 TB either way. */
#define FAST_AS_HEADROOM (1024ull * 1024 * 1024)
/* Wall time for the fast rows: a refused header costs milliseconds; 5 s leaves room for a
 * loaded, shared 2-core machine. */
#define FAST_WALL_S 5.0

/* Environment the PRE_ALL hook passes to the tests (they run in processes of their own). */
#define SHARED_ENV "SGN_BAD_INPUT_SHARED"         /* folder with m.bin and c.ckpt */
#define STARTUP_AS_ENV "SGN_BAD_INPUT_STARTUP_AS" /* bytes of address space to start */

/* ---- the folder each test works in ---- */

static char dir[PATH_MAX];
static char bin[PATH_MAX]; /* SKETCHGN_BIN made absolute: the tests chdir into dir */

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static void setup(void) {
  const char *b = getenv("SKETCHGN_BIN");
  if (!b || !b[0]) b = "build/sketchgn";
  cr_assert(realpath(b, bin) && access(bin, X_OK) == 0,
            "no executable at %s (build it with make build/sketchgn or set SKETCHGN_BIN)", b);
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/sgn_bad_input_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  cr_assert(mkdtemp(dir), "mkdtemp(%s): %s", dir, strerror(errno));
  cr_assert_eq(chdir(dir), 0, "chdir(%s): %s", dir, strerror(errno));
  /* One BLAS/OpenMP thread per run unless the caller says otherwise: the suites run two at a
   * time on a shared 2-core machine, where oversubscribed threads make runs 100x slower. */
  setenv("OMP_NUM_THREADS", "1", 0);
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
}

static void teardown(void) {
  if (chdir("/") == 0 && dir[0]) nftw(dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- running the binary ---- */

/* Forks, execs argv (argv[0] the binary) in the current folder with stdout and stderr on the
 * given fds (-1: /dev/null) and as_limit > 0 as RLIMIT_AS, and waits. Returns the wait status,
 * or -1 if fork failed. No Criterion calls: the PRE_ALL hook uses it too. */
static int exec_wait(const char *const *argv, int out_fd, int err_fd, rlim_t as_limit) {
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO);
    dup2(err_fd >= 0 ? err_fd : null_fd, STDERR_FILENO);
    if (as_limit > 0) {
      struct rlimit rl = {as_limit, as_limit};
      if (setrlimit(RLIMIT_AS, &rl) != 0) {
        dprintf(STDERR_FILENO, "setrlimit: %s\n", strerror(errno));
        _exit(127);
      }
    }
    alarm(120); /* survives exec: a hung binary dies with SIGALRM */
    execv(argv[0], (char *const *)argv);
    dprintf(STDERR_FILENO, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  return ws;
}

/* Runs `sketchgn args...` (NULL-terminated) in dir; as_limit > 0 caps the child's address space
 * (cli_run.h). */
static run_result run_cli(const char *const *args, rlim_t as_limit) {
  return cli_run(bin, args, as_limit);
}

/* Runs a command that makes a fixture and insists it succeeds. */
static void run_ok(const char *const *args) {
  run_result r = run_cli(args, 0);
  cr_assert(r.exited && r.status == 0, "fixture run %s %s failed: status %d, stderr: %s", args[0],
            args[1], r.status, r.err);
  run_free(&r);
}

/* ---- writing fixture files ---- */

static void write_bytes(const char *name, const void *data, size_t len) {
  FILE *f = fopen(name, "wb");
  cr_assert(f, "cannot write %s: %s", name, strerror(errno));
  cr_assert_eq(fwrite(data, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

static void write_text(const char *name, const char *text) {
  write_bytes(name, text, strlen(text));
}

static off_t file_size(const char *name) {
  struct stat sb;
  cr_assert_eq(stat(name, &sb), 0, "stat %s: %s", name, strerror(errno));
  return sb.st_size;
}

static void truncate_to(const char *name, off_t len) {
  cr_assert_eq(truncate(name, len), 0, "truncate %s: %s", name, strerror(errno));
}

static void patch(const char *name, off_t off, const void *bytes, size_t len) {
  int fd = open(name, O_WRONLY);
  cr_assert(fd >= 0, "open %s: %s", name, strerror(errno));
  cr_assert_eq(pwrite(fd, bytes, len, off), (ssize_t)len);
  close(fd);
}

static void flip_byte(const char *name, off_t off) {
  unsigned char b;
  int fd = open(name, O_RDWR);
  cr_assert(fd >= 0, "open %s: %s", name, strerror(errno));
  cr_assert_eq(pread(fd, &b, 1, off), 1);
  b ^= 0x55;
  cr_assert_eq(pwrite(fd, &b, 1, off), 1);
  close(fd);
}

static void patch_u64(const char *name, off_t off, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  patch(name, off, b, 8);
}

/* An NPY v1.0 file: magic, version, header length, the dict padded so the data starts at a
 * multiple of 64; then len bytes of data (which need not match what the dict declares). */
static void write_npy(const char *name, const char *descr, const char *fortran, const char *shape,
                      const void *data, size_t len) {
  char dict[256];
  int dlen = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }",
                      descr, fortran, shape);
  size_t total = (10 + (size_t)dlen + 1 + 63) / 64 * 64, hlen = total - 10;
  unsigned char *b = calloc(total + len + 1, 1);
  cr_assert_not_null(b);
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)(hlen & 0xff), b[9] = (unsigned char)(hlen >> 8);
  memcpy(b + 10, dict, (size_t)dlen);
  memset(b + 10 + dlen, ' ', total - 11 - (size_t)dlen);
  b[total - 1] = '\n';
  if (len) memcpy(b + total, data, len);
  write_bytes(name, b, total + len);
  free(b);
}

/* Valid inputs x.npy (8, 4) and targets y.npy (8,), float32. */
static float npy_x[8][4], npy_y[8];

static void fill_npy_data(void) {
  for (int i = 0; i < 8; i++) {
    for (int j = 0; j < 4; j++) npy_x[i][j] = (float)(i + 1) * 0.1f - (float)j * 0.05f;
    npy_y[i] = (float)i * 0.25f;
  }
}

/* An IDX file: big-endian magic and dimensions, then the bytes; gzip-compressed when gz. */
static void write_idx(const char *name, uint32_t magic, const uint32_t *dims, int ndim,
                      const unsigned char *data, size_t len, int gz) {
  unsigned char h[16];
  size_t hl = 4 + 4 * (size_t)ndim;
  for (int i = 0; i < 4; i++) h[i] = (unsigned char)(magic >> (24 - 8 * i));
  for (int d = 0; d < ndim; d++)
    for (int i = 0; i < 4; i++) h[4 + 4 * d + i] = (unsigned char)(dims[d] >> (24 - 8 * i));
  if (!gz) {
    unsigned char *b = malloc(hl + len + 1);
    cr_assert_not_null(b);
    memcpy(b, h, hl);
    if (len) memcpy(b + hl, data, len);
    write_bytes(name, b, hl + len);
    free(b);
    return;
  }
  gzFile g = gzopen(name, "wb");
  cr_assert(g, "gzopen %s", name);
  cr_assert_eq(gzwrite(g, h, (unsigned)hl), (int)hl);
  if (len) cr_assert_eq(gzwrite(g, data, (unsigned)len), (int)len);
  cr_assert_eq(gzclose(g), Z_OK);
}

#define IDX_IMAGES 0x00000803u
#define IDX_LABELS 0x00000801u

/* img.idx: n images of 3x3 bytes; lab.idx: n labels in 0..2. */
static void write_idx_pair(const char *img, uint32_t n_img, const char *lab, uint32_t n_lab,
                           int gz) {
  unsigned char pix[9 * 16], labels[16];
  for (int i = 0; i < 9 * 16; i++) pix[i] = (unsigned char)(i * 37 % 256);
  for (int i = 0; i < 16; i++) labels[i] = (unsigned char)(i % 3);
  uint32_t di[3] = {n_img, 3, 3}, dl[1] = {n_lab};
  write_idx(img, IDX_IMAGES, di, 3, pix, 9 * (size_t)n_img, gz);
  write_idx(lab, IDX_LABELS, dl, 1, labels, n_lab, gz);
}

/* A regression CSV of 8 rows: a header, then x0,x1,x2,y. */
static const char csv_good[] =
    "x0,x1,x2,y\n"
    "0.1,0.2,0.3,1\n"
    "0.4,0.5,0.6,2\n"
    "0.7,0.8,0.9,3\n"
    "1.0,1.1,1.2,4\n"
    "1.3,1.4,1.5,5\n"
    "1.6,1.7,1.8,6\n"
    "1.9,2.0,2.1,7\n"
    "2.2,2.3,2.4,8\n";

/* Trained on synth d=4: m.bin is a model (d=4, m=16, k=1: 424 bytes), c.ckpt a checkpoint. The
 * normalization and target scaling are fixed to ones that add no input column and no extension
 * block, so the offsets below stay those of the plain format. */
#define MODEL_DATA "synth:n=64,d=4,seed=1"
#define MODEL_BYTES 424

#define MODEL_TRAIN                                                                             \
  "train", "--data", MODEL_DATA, "--width", "16", "--steps", "1", "--device", "cpu", "--quiet", \
      "--save", "m.bin", "--checkpoint", "c.ckpt", "--checkpoint-every", "1", "--normalize",    \
      "standard+unit", "--target-scale", "none"

static void copy_file(const char *from, const char *to) {
  size_t len = 0;
  char *b = slurp_path(from, &len);
  cr_assert_not_null(b, "cannot read %s", from);
  write_bytes(to, b, len);
  free(b);
}

/* Copies of the files the PRE_ALL hook trained once for the whole run (each exec of a CUDA
 * build costs a good fraction of a second), or a run of its own when the hook could not. */
static void make_model_and_checkpoint(void) {
  const char *shared = getenv(SHARED_ENV);
  char m[PATH_MAX], c[PATH_MAX];
  snprintf(m, sizeof m, "%s/m.bin", shared ? shared : "");
  snprintf(c, sizeof c, "%s/c.ckpt", shared ? shared : "");
  if (shared && access(m, R_OK) == 0 && access(c, R_OK) == 0) {
    copy_file(m, "m.bin");
    copy_file(c, "c.ckpt");
  } else {
    run_ok((const char *[]){MODEL_TRAIN, NULL});
  }
  cr_assert_eq(file_size("m.bin"), MODEL_BYTES, "model file layout changed; update the offsets");
}

/* The address space `sketchgn --version` needs, to a factor of two (doubling from 128 MiB);
 * 0 if it does not start even with 64 GiB. Measured once by the PRE_ALL hook. */
static rlim_t probe_startup_address_space(const char *binary) {
  for (rlim_t lim = 128ull << 20; lim <= (64ull << 30); lim *= 2) {
    int ws = exec_wait((const char *[]){binary, "--version", NULL}, -1, -1, lim);
    if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0) return lim;
  }
  return 0;
}

/* `make sanitize` sets SKETCHGN_SANITIZED: AddressSanitizer reserves terabytes of shadow address
 * space at startup, so no RLIMIT_AS lets the binary start. The fast rows then run unlimited
 * (ASan's allocator_may_return_null=1 turns an attempted huge allocation into the "memory" error
 * they check for); the out-of-memory test is skipped. */
static int sanitized(void) { return getenv("SKETCHGN_SANITIZED") != NULL; }

static rlim_t startup_address_space(void) {
  const char *v = getenv(STARTUP_AS_ENV);
  rlim_t lim = v ? (rlim_t)strtoull(v, NULL, 10) : probe_startup_address_space(bin);
  cr_assert(lim > 0, "sketchgn --version does not start with 64 GiB of address space");
  return lim;
}

/* ---- once per run: a trained model and checkpoint, and the startup address space ---- */

static char shared_dir[PATH_MAX];

ReportHook(PRE_ALL)(struct criterion_test_set *set) {
  (void)set;
  char binary[PATH_MAX];
  const char *b = getenv("SKETCHGN_BIN"), *tmp = getenv("TMPDIR");
  if (!b || !b[0]) b = "build/sketchgn";
  if (!realpath(b, binary)) return; /* the tests' setup reports it */
  setenv("OMP_NUM_THREADS", "1", 0);
  setenv("OPENBLAS_NUM_THREADS", "1", 0);
  rlim_t lim = sanitized() ? 0 : probe_startup_address_space(binary);
  if (lim > 0) {
    char v[32];
    snprintf(v, sizeof v, "%llu", (unsigned long long)lim);
    setenv(STARTUP_AS_ENV, v, 1);
  }
  snprintf(shared_dir, sizeof shared_dir, "%s/sgn_bad_input_shared_XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp");
  char cwd[PATH_MAX];
  if (!mkdtemp(shared_dir) || !getcwd(cwd, sizeof cwd)) {
    shared_dir[0] = 0;
    return;
  }
  if (chdir(shared_dir) == 0) {
    int ws = exec_wait((const char *[]){binary, MODEL_TRAIN, NULL}, -1, -1, 0);
    if (ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0) setenv(SHARED_ENV, shared_dir, 1);
    if (chdir(cwd) != 0) perror("chdir");
  }
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats) {
  (void)stats;
  if (shared_dir[0]) nftw(shared_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- the fixtures ---- */

typedef enum fixture {
  FX_NONE,
  FX_NPY_TRUNC_HEADER, /* x.npy cut inside its header dict */
  FX_NPY_TRUNC_MAGIC,  /* x.npy: 4 bytes of the magic */
  FX_NPY_SHORT_DATA,   /* x.npy declares (8, 4) <f4 = 128 bytes, holds 100 */
  FX_NPY_LONG_DATA,    /* x.npy holds 4 bytes more than it declares */
  FX_NPY_COMPLEX,      /* x.npy dtype <c8 */
  FX_NPY_BIG_ENDIAN,   /* x.npy dtype >f4 */
  FX_NPY_UNICODE,      /* x.npy dtype <U4 */
  FX_NPY_FORTRAN,      /* x.npy fortran_order True */
  FX_NPY_N_MISMATCH,   /* x.npy 8 rows, y.npy 7 */
  FX_NPY_HUGE_X,       /* x.npy declares (1000000, 1000000): 10^12 elements */
  FX_NPY_HUGE_Y,       /* y.npy declares (1000000000000,) */
  FX_NPY_NAN,          /* x.npy element [2, 1] is NaN */
  FX_NPY_GOOD,         /* valid x.npy and y.npy */
  FX_IDX_BAD_MAGIC,    /* img.idx magic 0x00000804 */
  FX_IDX_GOOD,         /* valid img.idx (8 x 3x3) and lab.idx (8) */
  FX_IDX_COUNT,        /* img.idx 8 images, lab.idx 7 labels */
  FX_IDX_GZ_TRUNC,     /* img.idx.gz cut in half, lab.idx.gz whole */
  FX_IDX_GZ_CORRUPT,   /* lab.idx.gz with a flipped byte in its deflate data */
  FX_IDX_SHORT,        /* img.idx declares 8 images, holds 40 of 72 data bytes */
  FX_IDX_HUGE,         /* img.idx and lab.idx declare 4 000 000 000 samples of 1000x1000 */
  FX_CSV_SHORT_ROW,    /* d.csv line 3 has 2 fields of 4 */
  FX_CSV_LONG_ROW,     /* d.csv line 4 has 5 fields of 4 */
  FX_CSV_NOT_NUMBER,   /* d.csv line 3 field 2 is "abc" */
  FX_CSV_NAN,          /* d.csv line 5 field 3 is NaN */
  FX_CSV_INF,          /* d.csv line 2 field 1 is -inf */
  FX_CSV_EMPTY,        /* d.csv: 0 bytes */
  FX_CSV_BLANK,        /* d.csv: blank lines only */
  FX_CSV_HEADER_ONLY,  /* d.csv: a header row only */
  FX_CSV_EMPTY_FIELD,  /* d.csv line 6 field 2 is empty */
  FX_CSV_RANGE,        /* d.csv line 3 field 4 is 1e39 */
  FX_CSV_GOOD,         /* a valid d.csv */
  FX_LABELS_TEST,      /* cls.csv classes 0..2, clt.csv has label 5 on line 4 */
  FX_LABELS_FRACTION,  /* cls.csv has label 0.5 on line 3 (sample 2) */
  FX_LABELS_NEGATIVE,  /* cls.csv has label -1 on line 4 (sample 3) */
  FX_LABELS_ONE_CLASS, /* cls.csv: every label 0 */
  FX_MODEL,            /* m.bin (and c.ckpt), d5.csv with 5 input columns, d.csv */
  FX_MODEL_FLIPPED,    /* m.bin with one byte of W flipped */
  FX_MODEL_TRUNCATED,  /* m.bin cut to 300 bytes */
  FX_MODEL_HUGE,       /* m.bin whose header declares m = 10^12 hidden units */
  FX_CKPT,             /* c.ckpt and m.bin */
  FX_CKPT_FLIPPED,     /* c.ckpt with one flipped byte */
  FX_CKPT_TRUNCATED,   /* c.ckpt cut in half */
  FX_CKPT_HUGE_STATE,  /* c.ckpt whose state length reads 2^40 bytes */
} fixture;

static void make_fixture(fixture fx) {
  fill_npy_data();
  switch (fx) {
  case FX_NONE: break;
  case FX_NPY_GOOD:
  case FX_NPY_TRUNC_HEADER:
  case FX_NPY_TRUNC_MAGIC:
  case FX_NPY_SHORT_DATA:
  case FX_NPY_LONG_DATA:
  case FX_NPY_NAN:
  case FX_NPY_N_MISMATCH:
  case FX_NPY_HUGE_Y: {
    float x[8 * 4 + 1] = {0}; /* one spare element for FX_NPY_LONG_DATA */
    memcpy(x, npy_x, sizeof npy_x);
    if (fx == FX_NPY_NAN) x[2 * 4 + 1] = strtof("nan", NULL);
    size_t xlen = fx == FX_NPY_SHORT_DATA ? 100 : fx == FX_NPY_LONG_DATA ? 132 : sizeof npy_x;
    write_npy("x.npy", "<f4", "False", "(8, 4)", x, xlen);
    if (fx == FX_NPY_TRUNC_HEADER) truncate_to("x.npy", 30);
    if (fx == FX_NPY_TRUNC_MAGIC) truncate_to("x.npy", 4);
    if (fx == FX_NPY_N_MISMATCH)
      write_npy("y.npy", "<f4", "False", "(7,)", npy_y, 7 * sizeof(float));
    else if (fx == FX_NPY_HUGE_Y)
      write_npy("y.npy", "<f4", "False", "(1000000000000,)", npy_y, sizeof npy_y);
    else write_npy("y.npy", "<f4", "False", "(8,)", npy_y, sizeof npy_y);
    break;
  }
  case FX_NPY_COMPLEX:
  case FX_NPY_BIG_ENDIAN:
  case FX_NPY_UNICODE:
  case FX_NPY_FORTRAN:
  case FX_NPY_HUGE_X: {
    const char *descr = fx == FX_NPY_COMPLEX      ? "<c8"
                        : fx == FX_NPY_BIG_ENDIAN ? ">f4"
                        : fx == FX_NPY_UNICODE    ? "<U4"
                                                  : "<f4";
    /* <c8 is 8 bytes per element: (8, 4) of them is 256 bytes; <U4 is 16 bytes per element */
    static unsigned char raw[8 * 4 * 16];
    size_t len = fx == FX_NPY_COMPLEX ? 256 : fx == FX_NPY_UNICODE ? 512 : 128;
    write_npy("x.npy", descr, fx == FX_NPY_FORTRAN ? "True" : "False",
              fx == FX_NPY_HUGE_X ? "(1000000, 1000000)" : "(8, 4)", raw, len);
    write_npy("y.npy", "<f4", "False", "(8,)", npy_y, sizeof npy_y);
    break;
  }
  case FX_IDX_GOOD: write_idx_pair("img.idx", 8, "lab.idx", 8, 0); break;
  case FX_IDX_BAD_MAGIC: {
    write_idx_pair("img.idx", 8, "lab.idx", 8, 0);
    patch("img.idx", 0, "\x00\x00\x08\x04", 4);
    break;
  }
  case FX_IDX_COUNT: write_idx_pair("img.idx", 8, "lab.idx", 7, 0); break;
  case FX_IDX_GZ_TRUNC:
    write_idx_pair("img.idx.gz", 16, "lab.idx.gz", 16, 1);
    truncate_to("img.idx.gz", file_size("img.idx.gz") / 2);
    break;
  case FX_IDX_GZ_CORRUPT:
    write_idx_pair("img.idx.gz", 8, "lab.idx.gz", 8, 1);
    /* the last 8 bytes are the CRC32 and length trailer; the byte before them is deflate data */
    flip_byte("lab.idx.gz", file_size("lab.idx.gz") - 9);
    break;
  case FX_IDX_SHORT:
    write_idx_pair("img.idx", 8, "lab.idx", 8, 0);
    truncate_to("img.idx", 16 + 40);
    break;
  case FX_IDX_HUGE: {
    uint32_t di[3] = {4000000000u, 1000, 1000}, dl[1] = {4000000000u};
    unsigned char data[64] = {0};
    write_idx("img.idx", IDX_IMAGES, di, 3, data, sizeof data, 0);
    write_idx("lab.idx", IDX_LABELS, dl, 1, data, sizeof data, 0);
    break;
  }
  case FX_CSV_GOOD: write_text("d.csv", csv_good); break;
  case FX_CSV_SHORT_ROW:
    write_text("d.csv", "x0,x1,x2,y\n0.1,0.2,0.3,1\n0.4,0.5\n0.7,0.8,0.9,3\n");
    break;
  case FX_CSV_LONG_ROW:
    write_text("d.csv", "x0,x1,x2,y\n0.1,0.2,0.3,1\n0.4,0.5,0.6,2\n0.7,0.8,0.9,3,4\n");
    break;
  case FX_CSV_NOT_NUMBER:
    write_text("d.csv", "x0,x1,x2,y\n0.1,0.2,0.3,1\n0.4,abc,0.6,2\n0.7,0.8,0.9,3\n");
    break;
  case FX_CSV_NAN:
    write_text("d.csv",
               "x0,x1,x2,y\n0.1,0.2,0.3,1\n0.4,0.5,0.6,2\n0.7,0.8,0.9,3\n"
               "1.0,1.1,NaN,4\n");
    break;
  case FX_CSV_INF: write_text("d.csv", "0.1,0.2,0.3,1\n-inf,0.5,0.6,2\n0.7,0.8,0.9,3\n"); break;
  case FX_CSV_EMPTY: write_text("d.csv", ""); break;
  case FX_CSV_BLANK: write_text("d.csv", "\n  \n\t\n\n"); break;
  case FX_CSV_HEADER_ONLY: write_text("d.csv", "x0,x1,x2,y\n"); break;
  case FX_CSV_EMPTY_FIELD:
    write_text("d.csv",
               "x0,x1,x2,y\n0.1,0.2,0.3,1\n0.4,0.5,0.6,2\n0.7,0.8,0.9,3\n"
               "1.0,1.1,1.2,4\n1.3,,1.5,5\n");
    break;
  case FX_CSV_RANGE: write_text("d.csv", "x0,x1,x2,y\n0.1,0.2,0.3,1\n0.4,0.5,0.6,1e39\n"); break;
  case FX_LABELS_TEST:
    write_text("cls.csv", "a,b,y\n0.1,0.9,0\n0.5,0.5,1\n0.9,0.1,2\n0.2,0.7,0\n0.6,0.3,1\n");
    write_text("clt.csv", "a,b,y\n0.1,0.9,0\n0.5,0.5,1\n0.9,0.1,5\n");
    break;
  case FX_LABELS_FRACTION:
    write_text("cls.csv", "a,b,y\n0.1,0.9,0\n0.5,0.5,0.5\n0.9,0.1,1\n");
    break;
  case FX_LABELS_NEGATIVE:
    write_text("cls.csv", "a,b,y\n0.1,0.9,0\n0.5,0.5,1\n0.9,0.1,-1\n");
    break;
  case FX_LABELS_ONE_CLASS:
    write_text("cls.csv", "a,b,y\n0.1,0.9,0\n0.5,0.5,0\n0.9,0.1,0\n");
    break;
  case FX_MODEL:
  case FX_MODEL_FLIPPED:
  case FX_MODEL_TRUNCATED:
  case FX_MODEL_HUGE:
    make_model_and_checkpoint();
    write_text("d5.csv", "a,b,c,d,e,y\n0.1,0.2,0.3,0.4,0.5,1\n0.5,0.4,0.3,0.2,0.1,2\n");
    write_text("d.csv", csv_good);
    /* offsets from src/io/model_file.h: m at 24; W from 68 + 4 (2 d_in + m k) = 164 to 420 */
    if (fx == FX_MODEL_FLIPPED) flip_byte("m.bin", 300);
    if (fx == FX_MODEL_TRUNCATED) truncate_to("m.bin", 300);
    if (fx == FX_MODEL_HUGE) patch_u64("m.bin", 24, 1000000000000ull);
    break;
  case FX_CKPT:
  case FX_CKPT_FLIPPED:
  case FX_CKPT_TRUNCATED:
  case FX_CKPT_HUGE_STATE:
    make_model_and_checkpoint();
    if (fx == FX_CKPT_FLIPPED) flip_byte("c.ckpt", 300);
    if (fx == FX_CKPT_TRUNCATED) truncate_to("c.ckpt", file_size("c.ckpt") / 2);
    /* the state length is a u64 right after W, at the model body's end (420) */
    if (fx == FX_CKPT_HUGE_STATE) patch_u64("c.ckpt", MODEL_BYTES - 4, 1ull << 40);
    break;
  }
}

/* ---- the table ---- */

/* Strings live inside the struct: Criterion copies parameters into worker processes that may
 * not share the parent's addresses, so pointers to literals would dangle. */
typedef struct bad_input {
  char name[48];     /* what the row is about, for messages */
  fixture fx;        /* files written before the run */
  char args[24][48]; /* after the binary's name, ended by an empty string */
  char names[3][48]; /* each must appear in the message */
  int fast;          /* run with FAST_AS_HEADROOM of address space, in under FAST_WALL_S */
} bad_input;

/* The tail of every train row: tiny, on the CPU, quiet, and with output files that must not
 * appear. */
#define TRAIN_TAIL                                                                                \
  "--width", "16", "--steps", "1", "--device", "cpu", "--quiet", "--save", "s.bin", "--log-json", \
      "l.jsonl"
#define EVAL_TAIL "--device", "cpu"

/* one row per case, aligned by hand */
/* clang-format off */
static bad_input rows[] = {
    /* ---- NPY ---- */
    {"npy truncated in its header", FX_NPY_TRUNC_HEADER,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "truncated"}, 0},
    {"npy truncated in its magic", FX_NPY_TRUNC_MAGIC,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "NPY"}, 0},
    {"npy declares more data than it holds", FX_NPY_SHORT_DATA,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "128", "100"}, 0},
    {"npy holds more data than it declares", FX_NPY_LONG_DATA,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "132"}, 0},
    {"npy dtype complex <c8", FX_NPY_COMPLEX,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "<c8"}, 0},
    {"npy dtype big-endian >f4", FX_NPY_BIG_ENDIAN,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", ">f4"}, 0},
    {"npy dtype unicode <U4", FX_NPY_UNICODE,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "<U4"}, 0},
    {"npy fortran_order True", FX_NPY_FORTRAN,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "fortran"}, 0},
    {"npy data and targets differ in n", FX_NPY_N_MISMATCH,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "y.npy"}, 0},
    {"npy inputs declare 10^12 elements", FX_NPY_HUGE_X,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy"}, 1},
    {"npy targets declare 10^12 elements", FX_NPY_HUGE_Y,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"y.npy"}, 1},
    {"npy element is NaN", FX_NPY_NAN,
     {"train", "--data", "x.npy", "--targets", "y.npy", TRAIN_TAIL}, {"x.npy", "[2, 1]", "NaN"}, 0},
    {"npy without --targets", FX_NPY_GOOD, {"train", "--data", "x.npy", TRAIN_TAIL},
     {"x.npy", "--targets"}, 0},
    {"npy targets file missing", FX_NPY_GOOD,
     {"train", "--data", "x.npy", "--targets", "none.npy", TRAIN_TAIL}, {"none.npy"}, 0},
    {"npy inputs to eval, targets missing", FX_MODEL,
     {"eval", "--model", "m.bin", "--data", "gone.npy", "--targets", "y.npy", EVAL_TAIL},
     {"gone.npy"}, 0},

    /* ---- IDX ---- */
    {"idx images with a wrong magic", FX_IDX_BAD_MAGIC,
     {"train", "--data", "idx:img.idx,lab.idx", TRAIN_TAIL}, {"img.idx", "magic"}, 0},
    {"idx images and labels swapped", FX_IDX_GOOD,
     {"train", "--data", "idx:lab.idx,img.idx", TRAIN_TAIL}, {"lab.idx", "swapped"}, 0},
    {"idx images and labels disagree in n", FX_IDX_COUNT,
     {"train", "--data", "idx:img.idx,lab.idx", TRAIN_TAIL}, {"img.idx", "lab.idx"}, 0},
    {"idx gzip images truncated", FX_IDX_GZ_TRUNC,
     {"train", "--data", "idx:img.idx.gz,lab.idx.gz", TRAIN_TAIL}, {"img.idx.gz"}, 0},
    {"idx gzip labels corrupt", FX_IDX_GZ_CORRUPT,
     {"train", "--data", "idx:img.idx.gz,lab.idx.gz", TRAIN_TAIL}, {"lab.idx.gz"}, 0},
    {"idx images shorter than declared", FX_IDX_SHORT,
     {"train", "--data", "idx:img.idx,lab.idx", TRAIN_TAIL}, {"img.idx", "truncated"}, 0},
    {"idx header declares 4e15 pixels", FX_IDX_HUGE,
     {"train", "--data", "idx:img.idx,lab.idx", TRAIN_TAIL}, {"img.idx"}, 1},
    {"idx labels file missing", FX_IDX_GOOD,
     {"train", "--data", "idx:img.idx,none.idx", TRAIN_TAIL}, {"none.idx"}, 0},

    /* ---- CSV: file:line:column ---- */
    {"csv ragged row, too few fields", FX_CSV_SHORT_ROW,
     {"train", "--data", "d.csv", TRAIN_TAIL}, {"d.csv:3:", "2 fields"}, 0},
    {"csv ragged row, too many fields", FX_CSV_LONG_ROW,
     {"train", "--data", "d.csv", TRAIN_TAIL}, {"d.csv:4:", "more than 4 fields"}, 0},
    {"csv field not a number", FX_CSV_NOT_NUMBER, {"train", "--data", "d.csv", TRAIN_TAIL},
     {"d.csv:3:5", "field 2", "abc"}, 0},
    {"csv field NaN", FX_CSV_NAN, {"train", "--data", "d.csv", TRAIN_TAIL},
     {"d.csv:5:9", "field 3", "NaN"}, 0},
    {"csv field -inf", FX_CSV_INF, {"train", "--data", "d.csv", TRAIN_TAIL},
     {"d.csv:2:1", "field 1", "-inf"}, 0},
    {"csv field empty", FX_CSV_EMPTY_FIELD, {"train", "--data", "d.csv", TRAIN_TAIL},
     {"d.csv:6:5", "field 2"}, 0},
    {"csv field beyond float range", FX_CSV_RANGE, {"train", "--data", "d.csv", TRAIN_TAIL},
     {"d.csv:3:", "field 4", "1e39"}, 0},
    {"csv empty file", FX_CSV_EMPTY, {"train", "--data", "d.csv", TRAIN_TAIL}, {"d.csv", "empty"}, 0},
    {"csv blank lines only", FX_CSV_BLANK, {"train", "--data", "d.csv", TRAIN_TAIL}, {"d.csv"}, 0},
    {"csv header only", FX_CSV_HEADER_ONLY, {"train", "--data", "d.csv", TRAIN_TAIL},
     {"d.csv", "header"}, 0},
    {"csv --targets names a missing column", FX_CSV_GOOD,
     {"train", "--data", "d.csv", "--targets", "zz", TRAIN_TAIL}, {"d.csv:1", "zz"}, 0},
    {"csv --targets index out of range", FX_CSV_GOOD,
     {"train", "--data", "d.csv", "--targets", "9", TRAIN_TAIL}, {"d.csv", "9"}, 0},
    {"csv file missing", FX_NONE, {"train", "--data", "none.csv", TRAIN_TAIL}, {"none.csv"}, 0},
    {"csv --test file missing", FX_CSV_GOOD,
     {"train", "--data", "d.csv", "--test", "none.csv", TRAIN_TAIL}, {"none.csv"}, 0},
    {"unknown data spec", FX_NONE, {"train", "--data", "data.parquet", TRAIN_TAIL},
     {"data.parquet", "unknown data spec"}, 0},
    {"synth spec with a bad value", FX_NONE, {"train", "--data", "synth:n=abc", TRAIN_TAIL},
     {"synth:n=abc"}, 0},

    /* ---- class labels ---- */
    {"--test labels beyond the training classes", FX_LABELS_TEST,
     {"train", "--data", "cls.csv", "--task", "classify", "--test", "clt.csv", TRAIN_TAIL},
     {"--test", "label 5"}, 0},
    {"fractional label", FX_LABELS_FRACTION,
     {"train", "--data", "cls.csv", "--task", "classify", TRAIN_TAIL}, {"--data", "0.5"}, 0},
    {"a single class", FX_LABELS_ONE_CLASS,
     {"train", "--data", "cls.csv", "--task", "classify", TRAIN_TAIL}, {"--data", "two classes"}, 0},

    /* ---- model files: eval and predict ---- */
    {"eval on data of another dimension", FX_MODEL,
     {"eval", "--model", "m.bin", "--data", "d5.csv", EVAL_TAIL}, {"--data", "5", "4"}, 0},
    {"predict on data of another dimension", FX_MODEL,
     {"predict", "--model", "m.bin", "--data", "d5.csv", "--out", "p.csv", EVAL_TAIL},
     {"--data", "5", "4"}, 0},
    {"eval a model with a flipped byte", FX_MODEL_FLIPPED,
     {"eval", "--model", "m.bin", "--data", MODEL_DATA, EVAL_TAIL}, {"m.bin"}, 0},
    {"eval a truncated model", FX_MODEL_TRUNCATED,
     {"eval", "--model", "m.bin", "--data", MODEL_DATA, EVAL_TAIL}, {"m.bin", "truncated"}, 0},
    {"predict a truncated model, --out", FX_MODEL_TRUNCATED,
     {"predict", "--model", "m.bin", "--data", MODEL_DATA, "--out", "p.csv", EVAL_TAIL},
     {"m.bin", "truncated"}, 0},
    {"predict a truncated model, stdout", FX_MODEL_TRUNCATED,
     {"predict", "--model", "m.bin", "--data", MODEL_DATA, EVAL_TAIL}, {"m.bin", "truncated"}, 0},
    {"predict a truncated model, --out npy", FX_MODEL_TRUNCATED,
     {"predict", "--model", "m.bin", "--data", MODEL_DATA, "--out", "p.npy", EVAL_TAIL},
     {"m.bin", "truncated"}, 0},
    {"eval a model declaring 10^12 units", FX_MODEL_HUGE,
     {"eval", "--model", "m.bin", "--data", MODEL_DATA, EVAL_TAIL}, {"m.bin"}, 1},
    {"eval a checkpoint as a model", FX_CKPT,
     {"eval", "--model", "c.ckpt", "--data", MODEL_DATA, EVAL_TAIL}, {"c.ckpt", "checkpoint"}, 0},
    {"eval a CSV as a model", FX_CSV_GOOD,
     {"eval", "--model", "d.csv", "--data", MODEL_DATA, EVAL_TAIL}, {"d.csv"}, 0},
    {"eval a missing model", FX_NONE,
     {"eval", "--model", "none.bin", "--data", MODEL_DATA, EVAL_TAIL}, {"none.bin"}, 0},
    {"eval on a missing data file", FX_MODEL,
     {"eval", "--model", "m.bin", "--data", "none.csv", EVAL_TAIL}, {"none.csv"}, 0},
    {"eval with --targets out of range", FX_MODEL,
     {"eval", "--model", "m.bin", "--data", "d5.csv", "--targets", "9", EVAL_TAIL},
     {"d5.csv", "9"}, 0},
    {"predict --out in a missing folder", FX_MODEL,
     {"predict", "--model", "m.bin", "--data", MODEL_DATA, "--out", "nodir/p.csv", EVAL_TAIL},
     {"nodir/p.csv"}, 0},

    /* ---- output paths and checkpoints ---- */
    {"--save in a missing folder", FX_NONE,
     {"train", "--data", MODEL_DATA, "--width", "16", "--steps", "1", "--device", "cpu",
      "--quiet", "--save", "nodir/s.bin"},
     {"nodir/s.bin"}, 0},
    {"--save in a missing folder, --log-json", FX_NONE,
     {"train", "--data", MODEL_DATA, "--width", "16", "--steps", "1", "--device", "cpu",
      "--quiet", "--save", "nodir/s.bin", "--log-json", "l.jsonl"},
     {"nodir/s.bin"}, 0},
    {"--log-json in a missing folder", FX_NONE,
     {"train", "--data", MODEL_DATA, "--width", "16", "--steps", "1", "--device", "cpu",
      "--quiet", "--save", "s.bin", "--log-json", "nodir/l.jsonl"},
     {"nodir/l.jsonl"}, 0},
    {"--resume a checkpoint with a flipped byte", FX_CKPT_FLIPPED,
     {"train", "--data", MODEL_DATA, "--resume", "c.ckpt", TRAIN_TAIL}, {"c.ckpt"}, 0},
    {"--resume a truncated checkpoint", FX_CKPT_TRUNCATED,
     {"train", "--data", MODEL_DATA, "--resume", "c.ckpt", TRAIN_TAIL}, {"c.ckpt", "truncated"}, 0},
    {"--resume a checkpoint of 2^40 state bytes", FX_CKPT_HUGE_STATE,
     {"train", "--data", MODEL_DATA, "--resume", "c.ckpt", TRAIN_TAIL}, {"c.ckpt"}, 1},
    {"--resume a model file", FX_MODEL,
     {"train", "--data", MODEL_DATA, "--resume", "m.bin", TRAIN_TAIL}, {"m.bin", "checkpoint"}, 0},
    {"--resume a missing checkpoint", FX_NONE,
     {"train", "--data", MODEL_DATA, "--resume", "none.ckpt", TRAIN_TAIL}, {"none.ckpt"}, 0},
    {"--resume on other data (n)", FX_CKPT,
     {"train", "--data", "synth:n=32,d=4,seed=1", "--resume", "c.ckpt", TRAIN_TAIL},
     {"c.ckpt", "n=64", "n=32"}, 0},
    {"--resume with another solver", FX_CKPT,
     {"train", "--data", MODEL_DATA, "--resume", "c.ckpt", "--solver", "gd", TRAIN_TAIL},
     {"c.ckpt", "--solver"}, 0},
};
/* clang-format on */

/* The output paths a row passes (--save, --out, --log-json, --checkpoint and their .ckpt/.tmp
 * companions) must not exist after the run. */
static void check_no_outputs(const bad_input *c) {
  static const char *const flags[] = {"--save", "--out", "--log-json", "--checkpoint"};
  for (int i = 0; i < 23 && c->args[i][0]; i++)
    for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
      if (strcmp(c->args[i], flags[f]) != 0 || !c->args[i + 1][0]) continue;
      const char *suffix[] = {"", ".tmp", ".ckpt", ".ckpt.tmp"};
      for (int s = 0; s < 4; s++) {
        char path[80];
        snprintf(path, sizeof path, "%s%s", c->args[i + 1], suffix[s]);
        cr_expect(access(path, F_OK) != 0, "%s: %s %s left %s behind", c->name, flags[f],
                  c->args[i + 1], path);
      }
    }
}

/* The folder's entries, sorted, one per line. */
static char *listing(void) {
  struct dirent **names = NULL;
  int n = scandir(".", &names, NULL, alphasort);
  cr_assert(n >= 0, "scandir %s: %s", dir, strerror(errno));
  size_t cap = 64 + (size_t)n * 260, len = 0;
  char *s = calloc(cap, 1);
  cr_assert_not_null(s);
  for (int i = 0; i < n; i++) {
    if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, ".."))
      len += (size_t)snprintf(s + len, cap - len, "%s\n", names[i]->d_name);
    free(names[i]);
  }
  free(names);
  return s;
}

ParameterizedTestParameters(bad_input, cli) {
  return cr_make_param_array(bad_input, rows, sizeof rows / sizeof rows[0]);
}

ParameterizedTest(bad_input *c, bad_input, cli, .init = setup, .fini = teardown, .timeout = 60) {
  make_fixture(c->fx);
  const char *args[25];
  char shown[1200] = "sketchgn";
  int n = 0;
  for (; n < 24 && c->args[n][0]; n++) {
    args[n] = c->args[n];
    strncat(shown, " ", sizeof shown - strlen(shown) - 1);
    strncat(shown, c->args[n], sizeof shown - strlen(shown) - 1);
  }
  args[n] = NULL;

  rlim_t limit = c->fast && !sanitized() ? startup_address_space() + FAST_AS_HEADROOM : 0;
  char *before = listing();
  run_result r = run_cli(args, limit);
  char *after = listing();

  cr_assert(r.exited, "%s: %s\nkilled by signal %d; stderr: %s", c->name, shown, r.status - 128,
            r.err);
  cr_expect_eq(r.status, 2, "%s: %s\nstatus %d, want 2; stderr: %s", c->name, shown, r.status,
               r.err);
  cr_expect_eq(count_lines(r.err), 1, "%s: %s\nwant one line on stderr, got:\n%s", c->name, shown,
               r.err);
  cr_expect(r.err[0] && r.err[strlen(r.err) - 1] == '\n', "%s: stderr not one full line: '%s'",
            c->name, r.err);
  cr_expect(strncmp(r.err, "sketchgn", 8) == 0, "%s: message does not start with sketchgn: %s",
            c->name, r.err);
  for (int i = 0; i < 3; i++)
    if (c->names[i][0])
      cr_expect(strstr(r.err, c->names[i]), "%s: %s\nmessage does not name '%s': %s", c->name,
                shown, c->names[i], r.err);
  cr_expect_str_empty(r.out, "%s: %s\nwrote to stdout: %s", c->name, shown, r.out);
  check_no_outputs(c);
  cr_expect_str_eq(after, before, "%s: %s\nthe run left files behind.\nbefore:\n%s\nafter:\n%s",
                   c->name, shown, before, after);
  if (c->fast) /* refused, not attempted: an allocation that failed would say "memory" */
    cr_expect(!strstr(r.err, "memory"), "%s: the run tried to allocate: %s", c->name, r.err);
  if (c->fast)
    cr_expect(r.wall_s < FAST_WALL_S, "%s: took %.2f s, want < %.0f s", c->name, r.wall_s,
              FAST_WALL_S);
  free(before);
  free(after);
  run_free(&r);
}

/* ---- a file too large for memory is a runtime failure (exit 1), not bad input ---- */

/* A sparse NPY pair declaring 16 GB of inputs and 4 GB of targets: the sizes agree with the file
 * lengths, so the loader is right to try, and the address-space limit makes the allocation
 * fail. README: exit status 1 is a runtime failure, 2 usage or bad input; data.h: SGN_E_RUNTIME
 * on allocation failure. */
Test(bad_input, out_of_memory_exits_1, .init = setup, .fini = teardown, .timeout = 60) {
  if (sanitized()) cr_skip_test("no address-space limit under AddressSanitizer");
  write_npy("x.npy", "<f4", "False", "(1000000000, 4)", NULL, 0);
  truncate_to("x.npy", file_size("x.npy") + 16000000000LL);
  write_npy("y.npy", "<f4", "False", "(1000000000,)", NULL, 0);
  truncate_to("y.npy", file_size("y.npy") + 4000000000LL);
  rlim_t limit = startup_address_space() + FAST_AS_HEADROOM;
  run_result r = run_cli((const char *[]){"train", "--data", "x.npy", "--targets", "y.npy",
                                          "--width", "16", "--steps", "1", "--device", "cpu",
                                          "--quiet", NULL},
                         limit);
  cr_assert(r.exited, "killed by signal %d; stderr: %s", r.status - 128, r.err);
  cr_expect_eq(count_lines(r.err), 1, "want one line on stderr, got:\n%s", r.err);
  cr_expect(strstr(r.err, "x.npy") && strstr(r.err, "memory"), "%s", r.err);
  cr_expect_eq(r.status, 1, "out of memory exits %d, want 1 (runtime failure); stderr: %s",
               r.status, r.err);
  cr_expect(r.wall_s < FAST_WALL_S, "took %.2f s", r.wall_s);
  run_free(&r);
}
