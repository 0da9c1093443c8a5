/* test_workflow.c — end-to-end properties of the `sketchgn` binary (env SKETCHGN_BIN, default
 * build/sketchgn), run as a subprocess on tiny shapes: train --save then eval reproduces the
 * final training loss bit for bit, predict agrees with eval, a regression's predictions are the
 * target mean plus the target scale times the network's output (in the targets' units), training
 * on a y + b gives a f + b, checkpoint/resume is bit-identical
 * to an uninterrupted run (also after SIGKILL), SIGINT/SIGTERM stop a step in flight promptly
 * (inside its CG loop or its one long Cholesky), save the last completed step and exit 130,
 * --time-limit stops inside a step, and --test adds
 * test_loss/test_acc to every JSON log line. Losses are compared as the %.9g strings the binary
 * prints, so "equal" means equal floats. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli_run.h"
#include "sketchgn_io.h"

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
  snprintf(dir, sizeof dir, "%s/sgn_workflow_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
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

TestSuite(workflow, .init = setup, .fini = teardown, .timeout = 120);

/* ---- running the binary ---- */

/* Starts `sketchgn args...` (NULL-terminated) in dir (cli_run.h). */
static cli_child spawn(const char *const *args) { return cli_spawn(bin, args, 0); }

static run_result run_cli(const char *const *args) { return cli_finish(spawn(args)); }

/* Runs a command that must succeed; returns its stdout (caller frees). */
static char *run_ok(const char *const *args) {
  run_result r = run_cli(args);
  cr_assert(r.exited && r.status == 0, "sketchgn %s %s %s: status %d (%s), stderr: %s", args[0],
            args[1], args[2], r.status, r.exited ? "exit" : "signal", r.err);
  free(r.err);
  return r.out;
}


/* ---- reading what the binary wrote ---- */

/* The raw text of "KEY": in a JSON line (up to the next ',' or '}'), into buf; NULL if absent. */
static const char *json_raw(const char *line, const char *key, char *buf, size_t cap) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\":", key);
  const char *p = strstr(line, quoted);
  if (!p) return NULL;
  p += strlen(quoted);
  size_t len = strcspn(p, ",}\n");
  snprintf(buf, cap, "%.*s", (int)len, p);
  return buf;
}

static double json_num(const char *line, const char *key) {
  char buf[64];
  if (!json_raw(line, key, buf, sizeof buf)) return NAN;
  char *end;
  double v = strtod(buf, &end);
  return end == buf || *end ? NAN : v;
}

/* Splits text in place into at most cap non-empty lines; returns the count. */
static int split_lines(char *text, char **lines, int cap) {
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(text, "\n", &save); tok && n < cap;
       tok = strtok_r(NULL, "\n", &save))
    if (tok[0]) lines[n++] = tok;
  return n;
}

/* A JSON log, split into lines (caller frees *text). */
static int read_log(const char *path, char **text, char **lines, int cap) {
  *text = slurp_path(path, NULL);
  cr_assert_not_null(*text, "no log at %s", path);
  return split_lines(*text, lines, cap);
}

/* The value after "KEY " on a line of eval's output, into buf. */
static const char *eval_field(const char *out, const char *key, char *buf, size_t cap) {
  size_t klen = strlen(key);
  for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (!strncmp(p, key, klen) && p[klen] == ' ') {
      snprintf(buf, cap, "%.*s", (int)strcspn(p + klen + 1, "\n"), p + klen + 1);
      return buf;
    }
  cr_assert_fail("eval printed no '%s' line:\n%s", key, out);
  return NULL;
}

static void assert_same_bytes(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  char *x = slurp_path(a, &la), *y = slurp_path(b, &lb);
  cr_assert(x && y, "missing %s or %s", a, b);
  cr_assert_eq(la, lb, "%s has %zu bytes, %s %zu", a, la, b, lb);
  size_t at = 0;
  while (at < la && x[at] == y[at]) at++;
  cr_assert_eq(at, la, "%s and %s differ first at byte %zu of %zu", a, b, at, la);
  free(x);
  free(y);
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

/* Names in dir ending in .tmp, as one string ("" if none). */
static void tmp_files(char *buf, size_t cap) {
  buf[0] = 0;
  DIR *d = opendir(".");
  cr_assert_not_null(d);
  for (struct dirent *e; (e = readdir(d));) {
    size_t len = strlen(e->d_name);
    if (len >= 4 && !strcmp(e->d_name + len - 4, ".tmp"))
      snprintf(buf + strlen(buf), cap - strlen(buf), "%s ", e->d_name);
  }
  closedir(d);
}

/* The file a --log-json FILE is being written to during the run: FILE itself, line by line. */
#define LOG_IN_FLIGHT(path) path

/* ---- a small classification task as CSV ---- */

/* n points in [0,1)^3 from a fixed LCG; the label is the argmax of three fixed linear scores,
 * so classes 0..2 all occur. Header x0,x1,x2,y. labels (n) gets the labels. */
static void write_class_csv(const char *path, int n, uint64_t seed, int *labels) {
  FILE *f = fopen(path, "w");
  cr_assert(f, "cannot write %s", path);
  fprintf(f, "x0,x1,x2,y\n");
  uint64_t s = seed;
  for (int i = 0; i < n; i++) {
    double x[3];
    for (int j = 0; j < 3; j++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      x[j] = (double)(s >> 11) / 9007199254740992.0;
    }
    double score[3] = {x[0] - x[1], x[1] - x[2] + 0.1, x[2] - x[0] + 0.05};
    int y = 0;
    for (int c = 1; c < 3; c++)
      if (score[c] > score[y]) y = c;
    if (labels) labels[i] = y;
    fprintf(f, "%.6f,%.6f,%.6f,%d\n", x[0], x[1], x[2], y);
  }
  cr_assert_eq(fclose(f), 0);
}

/* ---- predict's outputs ---- */

/* Parses predict's CSV: header out0..out{k-1}[,class], then n rows. F (n, k) and cls (n) or
 * NULL. Returns the number of rows. */
static int parse_predict_csv(char *text, int k, int with_class, float *F, int *cls, int cap) {
  char *lines[1024];
  int nl = split_lines(text, lines, 1024);
  cr_assert(nl >= 1, "predict wrote nothing");
  char want[256] = "";
  for (int c = 0; c < k; c++)
    snprintf(want + strlen(want), sizeof want - strlen(want), "%sout%d", c ? "," : "", c);
  if (with_class) strcat(want, ",class");
  cr_assert_str_eq(lines[0], want, "predict's CSV header");
  cr_assert(nl - 1 <= cap);
  for (int i = 1; i < nl; i++) {
    char *p = lines[i], *end;
    for (int c = 0; c < k; c++) {
      F[(i - 1) * k + c] = strtof(p, &end);
      cr_assert(end != p && (*end == ',' || (*end == 0 && c == k - 1 && !with_class)),
                "predict row %d: '%s'", i, lines[i]);
      p = end + (*end == ',');
    }
    if (with_class) {
      long v = strtol(p, &end, 10);
      cr_assert(end != p && *end == 0, "predict row %d has no class: '%s'", i, lines[i]);
      cls[i - 1] = (int)v;
    }
  }
  return nl - 1;
}

/* Checks that path is an NPY v1.0 float32 C-order array of shape (n, k) whose values are
 * bitwise those of F. */
static void check_predict_npy(const char *path, int n, int k, const float *F) {
  size_t len = 0;
  char *b = slurp_path(path, &len);
  cr_assert_not_null(b, "no %s", path);
  cr_assert(len >= 10 && !memcmp(b, "\x93NUMPY\x01\x00", 8), "%s: not NPY v1.0", path);
  size_t hlen = (unsigned char)b[8] | (size_t)(unsigned char)b[9] << 8, off = 10 + hlen;
  cr_assert_eq(off % 64, 0, "%s: data starts at %zu, not a multiple of 64", path, off);
  cr_assert(off <= len && b[off - 1] == '\n', "%s: header does not end in a newline", path);
  char hdr[256];
  snprintf(hdr, sizeof hdr, "%.*s", (int)(hlen < 255 ? hlen : 255), b + 10);
  char shape[64];
  snprintf(shape, sizeof shape, "'shape': (%d, %d)", n, k);
  cr_assert(strstr(hdr, "'descr': '<f4'"), "%s header: %s", path, hdr);
  cr_assert(strstr(hdr, "'fortran_order': False"), "%s header: %s", path, hdr);
  cr_assert(strstr(hdr, shape), "%s header lacks %s: %s", path, shape, hdr);
  cr_assert_eq(len - off, (size_t)n * k * 4, "%s: %zu data bytes, want %d", path, len - off,
               n * k * 4);
  for (int i = 0; i < n * k; i++) {
    const unsigned char *q = (const unsigned char *)b + off + 4 * i;
    uint32_t u = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    cr_assert(memcmp(&v, &F[i], 4) == 0, "%s element %d: %.9g, the CSV says %.9g", path, i,
              (double)v, (double)F[i]);
  }
  free(b);
}

/* ---- train --save, then eval and predict ---- */

#define REG_DATA "synth:n=128,d=8,k=2,seed=3,aniso=4"

Test(workflow, regression_eval_reproduces_training_loss) {
  free(run_ok((const char *[]){"train", "--data", REG_DATA, "--width", "64", "--steps", "3",
                               "--device", "cpu", "--quiet", "--save", "m.bin", "--log-json",
                               "l.jsonl", NULL}));
  char *log, *lines[16], want[64], got[64];
  int nl = read_log("l.jsonl", &log, lines, 16);
  cr_assert_eq(nl, 4, "want steps 0..3 in the log, got %d lines", nl);
  cr_assert_not_null(json_raw(lines[nl - 1], "loss", want, sizeof want));
  cr_assert_str_eq(json_raw(lines[nl - 1], "train_acc", got, sizeof got), "null",
                   "regression logs a train_acc: %s", lines[nl - 1]);

  char *out = run_ok(
      (const char *[]){"eval", "--model", "m.bin", "--data", REG_DATA, "--device", "cpu", NULL});
  cr_assert_str_eq(eval_field(out, "loss", got, sizeof got), want,
                   "eval's loss differs from the last training step's");
  cr_assert_str_eq(eval_field(out, "samples", got, sizeof got), "128");
  cr_assert_null(strstr(out, "accuracy"), "regression eval prints an accuracy:\n%s", out);
  /* MSE, RMSE and R^2 against the data's own mean, as the last step's line logged them */
  char mse[64], rmse[64], r2[64];
  cr_assert_not_null(eval_field(out, "mse", mse, sizeof mse), "%s", out);
  cr_assert_not_null(eval_field(out, "rmse", rmse, sizeof rmse), "%s", out);
  cr_assert_not_null(eval_field(out, "r2", r2, sizeof r2), "%s", out);
  cr_assert(fabs(sqrt(strtod(mse, NULL)) - strtod(rmse, NULL)) <= 1e-6 * strtod(rmse, NULL));
  cr_assert(fabs(strtod(r2, NULL) - json_num(lines[nl - 1], "train_r2")) <= 1e-5,
            "eval r2 %s, "
            "logged %s",
            r2, lines[nl - 1]);
  free(out);

  /* predict: CSV on stdout, the same CSV with --out, and the same numbers as NPY (128, 2) */
  char *csv = run_ok(
      (const char *[]){"predict", "--model", "m.bin", "--data", REG_DATA, "--device", "cpu", NULL});
  free(run_ok((const char *[]){"predict", "--model", "m.bin", "--data", REG_DATA, "--out", "p.csv",
                               "--device", "cpu", NULL}));
  free(run_ok((const char *[]){"predict", "--model", "m.bin", "--data", REG_DATA, "--out", "p.npy",
                               "--device", "cpu", NULL}));
  char *file_csv = slurp_path("p.csv", NULL);
  cr_assert_not_null(file_csv);
  cr_assert_str_eq(file_csv, csv, "predict --out p.csv differs from predict's stdout");
  static float F[128 * 2];
  cr_assert_eq(parse_predict_csv(csv, 2, 0, F, NULL, 128), 128);
  check_predict_npy("p.npy", 128, 2, F);
  free(file_csv);
  free(csv);
  free(log);
}

#define CLS_N 90

Test(workflow, classify_eval_and_predict_agree_with_training) {
  int labels[CLS_N];
  write_class_csv("cls.csv", CLS_N, 11, labels);
  int seen[3] = {0};
  for (int i = 0; i < CLS_N; i++) seen[labels[i]]++;
  cr_assert(seen[0] && seen[1] && seen[2], "the fixture lacks a class: %d %d %d", seen[0], seen[1],
            seen[2]);
  free(run_ok((const char *[]){"train", "--data", "cls.csv", "--task", "classify", "--width", "64",
                               "--steps", "3", "--device", "cpu", "--quiet", "--save", "m.bin",
                               "--log-json", "l.jsonl", NULL}));
  char *log, *lines[16], want_loss[64], acc_raw[64], got[64];
  int nl = read_log("l.jsonl", &log, lines, 16);
  cr_assert_eq(nl, 4, "want steps 0..3 in the log, got %d lines", nl);
  cr_assert_not_null(json_raw(lines[nl - 1], "loss", want_loss, sizeof want_loss));
  cr_assert_not_null(json_raw(lines[nl - 1], "train_acc", acc_raw, sizeof acc_raw));
  double train_acc = strtod(acc_raw, NULL);
  cr_assert(train_acc >= 0 && train_acc <= 1, "train_acc %s", acc_raw);

  char *out = run_ok(
      (const char *[]){"eval", "--model", "m.bin", "--data", "cls.csv", "--device", "cpu", NULL});
  cr_assert_str_eq(eval_field(out, "loss", got, sizeof got), want_loss,
                   "eval's loss differs from the last training step's");
  char acc6[32];
  snprintf(acc6, sizeof acc6, "%.6f", train_acc);
  cr_assert_str_eq(eval_field(out, "accuracy", got, sizeof got), acc6,
                   "eval's accuracy differs from the last log line's train_acc %s", acc_raw);
  double eval_acc = strtod(got, NULL), eval_loss = strtod(want_loss, NULL);
  free(out);

  /* predict: the class column is the argmax of the outputs, and scores like eval */
  char *csv = run_ok((const char *[]){"predict", "--model", "m.bin", "--data", "cls.csv",
                                      "--device", "cpu", NULL});
  static float F[CLS_N * 3];
  int cls[CLS_N];
  cr_assert_eq(parse_predict_csv(csv, 3, 1, F, cls, CLS_N), CLS_N);
  int right = 0;
  double loss = 0;
  for (int i = 0; i < CLS_N; i++) {
    int best = 0;
    for (int c = 1; c < 3; c++)
      if (F[i * 3 + c] > F[i * 3 + best]) best = c;
    cr_assert_eq(cls[i], best, "row %d: class %d is not the argmax %d", i, cls[i], best);
    right += cls[i] == labels[i];
    for (int c = 0; c < 3; c++) {
      double r = (double)F[i * 3 + c] - (c == labels[i]);
      loss += r * r;
    }
  }
  cr_assert_eq(right, (int)lround(eval_acc * CLS_N), "predict's classes score %d/%d, eval says %s",
               right, CLS_N, got);
  /* the loss from predict's outputs: 1/(2n) sum ||f - onehot||^2, summed here in double from
   * the printed floats, so it agrees to rounding of the sum (rtol 1e-5) */
  loss /= 2.0 * CLS_N;
  cr_assert(fabs(loss - eval_loss) <= 1e-5 * eval_loss, "loss from predict %.9g, eval %.9g", loss,
            eval_loss);

  free(run_ok((const char *[]){"predict", "--model", "m.bin", "--data", "cls.csv", "--out", "p.npy",
                               "--device", "cpu", NULL}));
  check_predict_npy("p.npy", CLS_N, 3, F);
  free(csv);
  free(log);
}

/* ---- checkpoint and resume ---- */

/* Keys that must agree, step for step, between an uninterrupted run and a resumed one
 * (everything but the timings). */
static const char *const step_keys[] = {
    "step",      "loss",        "cg_iters",  "lr",        "damping",   "cg_relres", "cg_capped",
    "refreshed", "ls_halvings", "ls_failed", "train_acc", "test_loss", "test_acc"};

/* Line by line, the resumed log's steps equal the same steps of the full log. */
static void check_resumed_log(char **full, int nfull, char **resumed, int nres, int first_step) {
  cr_assert(nres >= 1, "the resumed run logged nothing");
  for (int i = 0; i < nres; i++) {
    int step = (int)json_num(resumed[i], "step");
    cr_assert_eq(step, first_step + i, "resumed log line %d is step %d, want %d", i, step,
                 first_step + i);
    cr_assert(step < nfull, "the resumed run went past the full run (step %d)", step);
    for (size_t k = 0; k < sizeof step_keys / sizeof step_keys[0]; k++) {
      char a[64], b[64];
      const char *ra = json_raw(full[step], step_keys[k], a, sizeof a);
      const char *rb = json_raw(resumed[i], step_keys[k], b, sizeof b);
      cr_assert(ra && rb, "step %d lacks %s:\n%s\n%s", step, step_keys[k], full[step], resumed[i]);
      cr_assert_str_eq(rb, ra, "step %d: %s is %s resumed, %s uninterrupted", step, step_keys[k],
                       rb, ra);
    }
  }
}

#define RESUME_DATA "synth:n=128,d=8,seed=3,aniso=4"
#define RESUME_DATA_K3 "synth:n=64,d=8,k=3,seed=3,aniso=8"
#define RESUME_STEPS 6

typedef struct resume_case {
  char solver[4][32]; /* --solver and its options, ended by "" */
  int ckpt_step;      /* the checkpoint B1 writes and B2 resumes from */
  int reuses;         /* 1: step ckpt_step + 1 must reuse the checkpointed preconditioner */
  char data[48];      /* --data, "" for RESUME_DATA */
} resume_case;

static resume_case resume_cases[] = {
    {{"gn-sketch", "--precond-refresh", "auto"}, 4, 0, ""},
    /* with auto, steps 1, 3, 5 rebuild: from step 3's checkpoint, step 4 runs on its R */
    {{"gn-sketch", "--precond-refresh", "auto"}, 3, 1, ""},
    {{"gn-gram"}, 4, 0, ""},
    {{"gn-gram"}, 3, 1, ""},
    {{"gn-sketch", "--precond-refresh", "3"}, 2, 1, ""},
    /* three outputs: the kept preconditioner is I_3 (x) R, PCG's vectors (n, 3) */
    {{"gn-gram", "--precond-refresh", "3"}, 2, 1, RESUME_DATA_K3},
    {{"gn-sketch", "--precond-refresh", "3"}, 2, 1, RESUME_DATA_K3},
    /* a ridge: its dual coefficients and initial outputs travel in the state (GSTATE05) */
    {{"gn-gram", "--ridge", "1e-3"}, 3, 1, ""},
    {{"gn-exact", "--ridge", "1e-3"}, 2, 0, RESUME_DATA_K3},
    {{"adam", "--batch", "32"}, 4, 0, ""},
    {{"gd"}, 4, 0, ""},
};

ParameterizedTestParameters(workflow, resume_is_bit_identical) {
  return cr_make_param_array(resume_case, resume_cases,
                             sizeof resume_cases / sizeof resume_cases[0]);
}

/* A = RESUME_STEPS steps at once; B1 = ckpt_step steps, writing a checkpoint at the last; B2 =
 * resume B1's checkpoint up to RESUME_STEPS. B2's log lines and saved model equal A's. */
ParameterizedTest(resume_case *c, workflow, resume_is_bit_identical) {
  char steps_a[16], steps_b[16];
  snprintf(steps_a, sizeof steps_a, "%d", RESUME_STEPS);
  snprintf(steps_b, sizeof steps_b, "%d", c->ckpt_step);
  const char *base[32] = {"train",   "--data",  c->data[0] ? c->data : RESUME_DATA,
                          "--width", "64",      "--device",
                          "cpu",     "--quiet", "--seed",
                          "5",       "--tol",   "0", /* every step, converged or not */
                          "--ridge", "0", /* interpolate, unless the case gives one */
                          "--solver"};
  int nb = 15;
  for (int i = 0; i < 4 && c->solver[i][0]; i++) base[nb++] = c->solver[i];
  const char *args[48];
#define WITH(...)                                    \
  do {                                               \
    const char *tail[] = {__VA_ARGS__, NULL};        \
    memcpy(args, base, sizeof(char *) * nb);         \
    for (int t = 0; (args[nb + t] = tail[t]); t++) { \
    }                                                \
  } while (0)
  WITH("--steps", steps_a, "--log-json", "a.jsonl", "--save", "a.bin");
  free(run_ok(args));
  WITH("--steps", steps_b, "--checkpoint-every", steps_b, "--checkpoint", "c.ckpt");
  free(run_ok(args));
  cr_assert(exists("c.ckpt"), "no checkpoint after %s steps", steps_b);
  WITH("--resume", "c.ckpt", "--steps", steps_a, "--log-json", "b.jsonl", "--save", "b.bin");
  free(run_ok(args));
#undef WITH

  char *ta, *tb, *la[16], *lb[16], buf[32];
  int na = read_log("a.jsonl", &ta, la, 16), nbl = read_log("b.jsonl", &tb, lb, 16);
  cr_assert_eq(na, RESUME_STEPS + 1, "%s: the uninterrupted run logged %d lines (stopped early?)",
               c->solver[0], na);
  if (c->reuses)
    cr_assert_str_eq(json_raw(la[c->ckpt_step + 1], "refreshed", buf, sizeof buf), "false",
                     "%s: step %d rebuilds its preconditioner, so this row tests no reuse: %s",
                     c->solver[0], c->ckpt_step + 1, la[c->ckpt_step + 1]);
  cr_assert_eq(nbl, RESUME_STEPS - c->ckpt_step, "%s: the resumed run logged %d lines",
               c->solver[0], nbl);
  check_resumed_log(la, na, lb, nbl, c->ckpt_step + 1);
  assert_same_bytes("a.bin", "b.bin");
  free(ta);
  free(tb);
}

#define KILL_DATA "synth:n=2048,d=16,seed=1"
#define KILL_STEPS "12"

/* B trains with a checkpoint every 4 steps and is SIGKILLed as soon as a checkpoint appears; the
 * checkpoint (written to .tmp and renamed, so whole) loads, and resuming it to step 12 lands
 * bit for bit where an uninterrupted run A does. Adam: its loss keeps falling, so no run stops
 * early. */
Test(workflow, checkpoint_survives_sigkill) {
  const char *common[] = {"train", "--data",  KILL_DATA, "--width",  "1024", "--solver",
                          "adam",  "--batch", "32",      "--device", "cpu",  "--quiet"};
  const int nc = (int)(sizeof common / sizeof common[0]);
  const char *args[32];
  memcpy(args, common, sizeof common);
  const char *a_tail[] = {"--steps", KILL_STEPS, "--log-json", "a.jsonl", "--save", "a.bin", NULL};
  memcpy(args + nc, a_tail, sizeof a_tail);
  free(run_ok(args));

  const char *b_tail[] = {"--steps", "1000", "--checkpoint-every", "4", "--checkpoint",
                          "c.ckpt",  NULL};
  memcpy(args + nc, b_tail, sizeof b_tail);
  cli_child b = spawn(args);
  double t0 = cli_now_s();
  while (!exists("c.ckpt") && cli_now_s() - t0 < 60) usleep(500);
  kill(b.pid, SIGKILL);
  run_result rb = cli_finish(b);
  cr_assert(exists("c.ckpt"), "no checkpoint within 60 s; stderr: %s", rb.err);
  cr_assert(!rb.exited && rb.status == 128 + SIGKILL, "B was not killed: %s %d, stderr: %s",
            rb.exited ? "exit" : "signal", rb.status, rb.err);
  run_free(&rb);

  const char *r_tail[] = {"--resume", "c.ckpt", "--steps", KILL_STEPS, "--log-json",
                          "r.jsonl",  "--save", "r.bin",   NULL};
  memcpy(args + nc, r_tail, sizeof r_tail);
  free(run_ok(args));
  char *ta, *tr, *la[32], *lr[32];
  int na = read_log("a.jsonl", &ta, la, 32), nr = read_log("r.jsonl", &tr, lr, 32);
  cr_assert_eq(na, 13, "the uninterrupted run logged %d lines", na);
  cr_assert(nr >= 1,
            "the checkpoint was taken at step 12 or later: the machine stalled the "
            "poll for 8 steps; nothing to compare");
  int first = (int)json_num(lr[0], "step");
  cr_assert(first == 5 || first == 9, "resumed at step %d, want 5 or 9 (checkpoints every 4)",
            first);
  check_resumed_log(la, na, lr, nr, first);
  assert_same_bytes("a.bin", "r.bin");
  free(ta);
  free(tr);
}

/* SIGINT stops the step in flight, writes m.bin (the last completed step) and m.bin.ckpt, exits
 * 130; no *.tmp; eval scores m.bin at the last logged loss; the checkpoint resumes for one more
 * step and saves a model that eval scores at the logged loss. */
Test(workflow, sigint_checkpoints_and_resumes) {
  const char *common[] = {"train",   "--data",   "synth:n=512,d=16,seed=1",
                          "--width", "2048",     "--solver",
                          "gn-cg",   "--device", "cpu",
                          "--quiet", "--save",   "m.bin"};
  const int nc = (int)(sizeof common / sizeof common[0]);
  const char *args[32];
  memcpy(args, common, sizeof common);
  const char *tail[] = {"--steps", "1000", "--log-json", "l.jsonl", NULL};
  memcpy(args + nc, tail, sizeof tail);
  cli_child c = spawn(args);
  /* the step-0 line is logged after the signal handlers are in place */
  double t0 = cli_now_s();
  for (;;) {
    char *t = slurp_path(LOG_IN_FLIGHT("l.jsonl"), NULL);
    int ready = t && strchr(t, '\n');
    free(t);
    if (ready || cli_now_s() - t0 > 60) break;
    usleep(1000);
  }
  kill(c.pid, SIGINT);
  run_result r = cli_finish(c);
  cr_assert(r.exited, "killed by signal %d instead of exiting 130; stderr: %s", r.status - 128,
            r.err);
  cr_assert_eq(r.status, 130, "status %d; stderr: %s", r.status, r.err);
  cr_assert(strstr(r.err, "interrupted") && strstr(r.err, "m.bin.ckpt"), "stderr: %s", r.err);
  cr_assert(strstr(r.err, "SIGINT: stopping"), "no acknowledgement of the signal: %s", r.err);
  cr_assert_str_empty(r.out);
  run_free(&r);
  cr_assert(exists("m.bin.ckpt"), "no m.bin.ckpt after SIGINT");
  cr_assert(exists("m.bin"), "an interrupted run with --save wrote no m.bin");
  char tmps[512];
  tmp_files(tmps, sizeof tmps);
  cr_assert_str_empty(tmps, "left behind: %s", tmps);

  char *log, *lines[64];
  int nl = read_log("l.jsonl", &log, lines, 64);
  cr_assert(nl >= 1, "the interrupted run logged %d lines", nl);
  int last = (int)json_num(lines[nl - 1], "step");
  char want[64], got[64];
  json_raw(lines[nl - 1], "loss", want, sizeof want);
  char *out = run_ok((const char *[]){"eval", "--model", "m.bin", "--data",
                                      "synth:n=512,d=16,seed=1", "--device", "cpu", NULL});
  cr_assert_str_eq(eval_field(out, "loss", got, sizeof got), want,
                   "m.bin is not the last completed step %d", last);
  free(out);
  free(log);

  char next[16];
  snprintf(next, sizeof next, "%d", last + 1);
  const char *resume[] = {"--resume", "m.bin.ckpt", "--steps", next, "--log-json", "r.jsonl", NULL};
  memcpy(args + nc, resume, sizeof resume);
  free(run_ok(args));
  nl = read_log("r.jsonl", &log, lines, 64);
  cr_assert(nl >= 1, "want the resumed step, got %d lines", nl);
  cr_assert_eq((int)json_num(lines[nl - 1], "step"), last + 1, "%s", lines[nl - 1]);
  json_raw(lines[nl - 1], "loss", want, sizeof want);
  out = run_ok((const char *[]){"eval", "--model", "m.bin", "--data", "synth:n=512,d=16,seed=1",
                                "--device", "cpu", NULL});
  cr_assert_str_eq(eval_field(out, "loss", got, sizeof got), want);
  free(out);
  free(log);
}

/* A Gauss-Newton step that takes about 40 s here (plain CG to 1e-14 on an ill-conditioned
 * teacher task, 20-30 ms per iteration), so the signal lands inside the CG loop of step 1. */
#define LONG_STEP_DATA "synth:n=2000,d=32,aniso=1000"
#define LONG_STEP_ARGS                                                                     \
  "train", "--data", LONG_STEP_DATA, "--normalize", "none", "--width", "1024", "--solver", \
      "gn-cg", "--cg-tol", "1e-14", "--cg-max", "1000000", "--damping", "1e-12", "--device", "cpu"

/* SIGTERM 1 s into step 1 of `sketchgn ARGS... --steps 3 --save m.bin --log-json l.jsonl` (a
 * step that takes far longer; args NULL-terminated, at most 24): the process ends within 2 s
 * with status 130, m.bin is the step-0 model (eval on data gives the step-0 loss) and m.bin.ckpt
 * is written. */
static void sigterm_one_second_into_step_1(const char *const *args, const char *data) {
  const char *argv[32];
  int na = 0;
  while (args[na] && na < 24) argv[na] = args[na], na++;
  const char *tail[] = {"--steps", "3", "--save", "m.bin", "--log-json", "l.jsonl", NULL};
  memcpy(argv + na, tail, sizeof tail);
  cli_child c = spawn(argv);
  double t0 = cli_now_s();
  for (;;) {
    char *t = slurp_path(LOG_IN_FLIGHT("l.jsonl"), NULL);
    int ready = t && strchr(t, '\n');
    free(t);
    if (ready || cli_now_s() - t0 > 60) break;
    usleep(1000);
  }
  usleep(1000000);
  double tk = cli_now_s();
  kill(c.pid, SIGTERM);
  run_result r = cli_finish(c);
  double took = cli_now_s() - tk;
  cr_assert(r.exited && r.status == 130, "status %d (%s); stderr: %s", r.status,
            r.exited ? "exit" : "signal", r.err);
  cr_assert(took < 2.0, "ended %.2f s after SIGTERM; stderr: %s", took, r.err);
  cr_assert(strstr(r.err, "SIGTERM: stopping") && strstr(r.err, "step 1 dropped"), "stderr: %s",
            r.err);
  cr_assert(exists("m.bin") && exists("m.bin.ckpt"), "stderr: %s", r.err);
  run_free(&r);
  char *log, *lines[8], want[64], got[64];
  int nl = read_log("l.jsonl", &log, lines, 8);
  cr_assert_eq(nl, 1, "only step 0 completes, got %d lines", nl);
  json_raw(lines[0], "loss", want, sizeof want);
  char *out = run_ok(
      (const char *[]){"eval", "--model", "m.bin", "--data", data, "--device", "cpu", NULL});
  cr_assert_str_eq(eval_field(out, "loss", got, sizeof got), want);
  free(out);
  free(log);
}

/* SIGTERM 1 s into that step (inside its CG loop). */
Test(workflow, sigterm_stops_a_long_step_promptly) {
  sigterm_one_second_into_step_1((const char *[]){LONG_STEP_ARGS, NULL}, LONG_STEP_DATA);
}

/* --time-limit 1 inside that step: the run stops at 1 s of training plus at most one CG iteration
 * (asserted with room for a loaded machine: 0.5 s), exit 0, the step dropped, m.bin saved. */
static void time_limit_stops_step_1(run_result r) {
  cr_assert(r.exited && r.status == 0, "status %d; stderr: %s", r.status, r.err);
  const char *p = strstr(r.err, "stopped step 1 at ");
  cr_assert_not_null(p, "stderr: %s", r.err);
  double at = strtod(p + strlen("stopped step 1 at "), NULL);
  cr_assert(at >= 1.0 && at < 1.5, "stopped at %.3f s of training; stderr: %s", at, r.err);
  cr_assert(exists("m.bin"));
}

Test(workflow, time_limit_stops_inside_a_step) {
  run_result r = run_cli((const char *[]){LONG_STEP_ARGS, "--steps", "3", "--time-limit", "1",
                                          "--save", "m.bin", NULL});
  time_limit_stops_step_1(r);
  cr_assert(r.wall_s < 10, "took %.1f s", r.wall_s);
  run_free(&r);
}

/* A Gauss-Newton step spent in one factorization: gn-exact's Gram of n = 11 000 samples (a
 * fraction of a second: d = 8, width 64) and its Cholesky, n^3 / 3 = 4.4e11 flops, 6 s on one
 * core of this repository's Xeon (15 s when the machine is shared). LAPACK's dpotrf ran it in
 * one call; the blocked Cholesky reads the interrupt between blocks. Damping 1e-3 keeps the
 * singular Gram (n > m d) factorable. */
#define LONG_FACTOR_DATA "synth:n=11000,d=8,seed=1"
#define LONG_FACTOR_ARGS                                                                     \
  "train", "--data", LONG_FACTOR_DATA, "--width", "64", "--solver", "gn-exact", "--damping", \
      "1e-3", "--device", "cpu"

/* SIGTERM 1 s into that step, inside its Cholesky: ends within 2 s as in a CG loop. */
Test(workflow, sigterm_stops_a_long_factorization_promptly) {
  sigterm_one_second_into_step_1((const char *[]){LONG_FACTOR_ARGS, NULL}, LONG_FACTOR_DATA);
}

/* --time-limit 1 inside that factorization: stopped at 1 s of training plus one block of
 * the Cholesky (asserted with the same room: 0.5 s), exit 0, the step dropped. */
Test(workflow, time_limit_stops_inside_a_factorization) {
  run_result r = run_cli((const char *[]){LONG_FACTOR_ARGS, "--steps", "3", "--time-limit", "1",
                                          "--save", "m.bin", NULL});
  time_limit_stops_step_1(r);
  run_free(&r);
}

/* ---- --test in the JSON log ---- */

/* Every line has test_loss (a number) and test_acc (a number when classifying, else null); the
 * last line's agree with eval of the saved model on the test data. */
static void check_test_columns(const char *log_path, int steps, int classify,
                               const char *test_spec) {
  char *log, *lines[32], buf[64];
  int nl = read_log(log_path, &log, lines, 32);
  cr_assert_eq(nl, steps + 1, "want %d lines, got %d", steps + 1, nl);
  for (int i = 0; i < nl; i++) {
    double tl = json_num(lines[i], "test_loss");
    cr_assert(isfinite(tl) && tl >= 0, "line %d: test_loss: %s", i, lines[i]);
    const char *acc = json_raw(lines[i], "test_acc", buf, sizeof buf);
    cr_assert_not_null(acc, "line %d lacks test_acc: %s", i, lines[i]);
    if (classify) {
      double a = json_num(lines[i], "test_acc");
      cr_assert(a >= 0 && a <= 1, "line %d: test_acc: %s", i, lines[i]);
      cr_assert(json_num(lines[i], "train_acc") >= 0, "line %d: train_acc: %s", i, lines[i]);
    } else {
      cr_assert_str_eq(acc, "null", "line %d: regression test_acc: %s", i, lines[i]);
      cr_assert_str_eq(json_raw(lines[i], "train_acc", buf, sizeof buf), "null", "line %d: %s", i,
                       lines[i]);
    }
  }
  char want[64], got[64];
  json_raw(lines[nl - 1], "test_loss", want, sizeof want);
  char *out = run_ok(
      (const char *[]){"eval", "--model", "m.bin", "--data", test_spec, "--device", "cpu", NULL});
  cr_assert_str_eq(eval_field(out, "loss", got, sizeof got), want,
                   "eval on the test data differs from the last test_loss");
  if (classify) {
    char acc6[32];
    snprintf(acc6, sizeof acc6, "%.6f", json_num(lines[nl - 1], "test_acc"));
    cr_assert_str_eq(eval_field(out, "accuracy", got, sizeof got), acc6);
  }
  free(out);
  free(log);
}

Test(workflow, test_columns_regression) {
  free(run_ok((const char *[]){"train",
                               "--data",
                               "synth:n=64,d=4,seed=1",
                               "--test",
                               "synth:n=32,d=4,seed=2",
                               "--width",
                               "64",
                               "--steps",
                               "3",
                               "--device",
                               "cpu",
                               "--tol",
                               "0",
                               "--patience",
                               "0",
                               "--quiet",
                               "--save",
                               "m.bin",
                               "--log-json",
                               "l.jsonl",
                               NULL}));
  check_test_columns("l.jsonl", 3, 0, "synth:n=32,d=4,seed=2");
}

Test(workflow, test_columns_classify) {
  write_class_csv("cls.csv", 60, 11, NULL);
  write_class_csv("clt.csv", 30, 12, NULL);
  free(run_ok((const char *[]){
      "train", "--data",  "cls.csv", "--test",   "clt.csv",    "--task",  "classify", "--width",
      "64",    "--steps", "3",       "--device", "cpu",        "--tol",   "0",        "--patience",
      "0",     "--quiet", "--save",  "m.bin",    "--log-json", "l.jsonl", NULL}));
  check_test_columns("l.jsonl", 3, 1, "clt.csv");
}

/* Without --test the columns are there, and null. */
Test(workflow, test_columns_null_without_test) {
  free(run_ok((const char *[]){"train", "--data", "synth:n=64,d=4,seed=1", "--width", "64",
                               "--steps", "2", "--device", "cpu", "--quiet", "--log-json",
                               "l.jsonl", NULL}));
  char *log, *lines[8], buf[64];
  int nl = read_log("l.jsonl", &log, lines, 8);
  cr_assert_eq(nl, 3);
  for (int i = 0; i < nl; i++) {
    cr_assert_str_eq(json_raw(lines[i], "test_loss", buf, sizeof buf), "null", "%s", lines[i]);
    cr_assert_str_eq(json_raw(lines[i], "test_acc", buf, sizeof buf), "null", "%s", lines[i]);
  }
  free(log);
}

/* ---- class labels of any kind, predict on unlabeled data, resume from the checkpoint alone ---- */

/* Writes the task of write_class_csv with text labels (one holds a comma, so it is quoted) and a
 * quoted header field holding a comma; inputs.csv gets the same rows without the label column. */
static void write_text_label_csv(const char *path, const char *inputs, int n) {
  static const char *const names[] = {"setosa", "\"versi, color\"", "virginica"};
  int labels[256];
  cr_assert(n <= 256);
  write_class_csv("tmp.csv", n, 7, labels);
  char *text = slurp_path("tmp.csv", NULL), *lines[300];
  int nl = split_lines(text, lines, 300);
  FILE *f = fopen(path, "w"), *g = fopen(inputs, "w");
  cr_assert(f && g);
  fprintf(f, "x0,\"x1, a comma\",x2,species\n");
  fprintf(g, "x0,x1,x2\n");
  for (int i = 1; i < nl; i++) {
    *strrchr(lines[i], ',') = 0;
    fprintf(f, "%s,%s\n", lines[i], names[labels[i - 1]]);
    fprintf(g, "%s\n", lines[i]);
  }
  fclose(f), fclose(g);
  free(text);
}

Test(workflow, text_labels_round_trip_and_predict_without_labels) {
  write_text_label_csv("t.csv", "in.csv", 120);
  free(run_ok((const char *[]){"train", "--data", "t.csv", "--task", "classify", "--width", "64",
                               "--steps", "2", "--device", "cpu", "--quiet", "--save", "m.bin",
                               NULL}));
  char *ev = run_ok(
      (const char *[]){"eval", "--model", "m.bin", "--data", "t.csv", "--device", "cpu", NULL});
  char acc[64];
  eval_field(ev, "accuracy", acc, sizeof acc);
  free(ev);
  char *with = run_ok(
      (const char *[]){"predict", "--model", "m.bin", "--data", "t.csv", "--device", "cpu", NULL});
  char *without = run_ok(
      (const char *[]){"predict", "--model", "m.bin", "--data", "in.csv", "--device", "cpu", NULL});
  cr_assert_str_eq(with, without, "predict differs with and without the label column");
  cr_assert(strstr(without, "\"versi, color\"") || strstr(without, ",setosa") ||
                strstr(without, ",virginica"),
            "predict does not print the labels:\n%.300s", without);
  char *lines[200];
  int nl = split_lines(without, lines, 200);
  cr_assert_eq(nl, 121);
  cr_assert_str_eq(lines[0], "out0,out1,out2,class");
  free(with);
  free(without);
}

Test(workflow, labels_of_any_value_give_k_distinct_classes) {
  FILE *f = fopen("c.csv", "w");
  cr_assert(f);
  for (int i = 0; i < 60; i++) fprintf(f, "%d,%d,%d\n", i % 7, (i * 3) % 5, 10 * (i % 3) - 10);
  fclose(f);
  run_result r = run_cli((const char *[]){"train", "--data", "c.csv", "--task", "classify",
                                          "--width", "16", "--steps", "1", "--device", "cpu",
                                          "--save", "m.bin", NULL});
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_assert(strstr(r.err, " k=3 "), "labels -10, 0, 10 are 3 classes: %s", r.err);
  run_free(&r);
  char *out = run_ok(
      (const char *[]){"predict", "--model", "m.bin", "--data", "c.csv", "--device", "cpu", NULL});
  char *lines[80];
  int nl = split_lines(out, lines, 80);
  for (int i = 1; i < nl; i++) {
    const char *c = strrchr(lines[i], ',') + 1;
    cr_assert(!strcmp(c, "-10") || !strcmp(c, "0") || !strcmp(c, "10"), "row %d: %s", i, lines[i]);
  }
  free(out);
}

Test(workflow, resume_needs_only_the_checkpoint) {
  free(
      run_ok((const char *[]){"train", "--data", "synth:n=128,d=6,seed=4", "--width", "64",
                              "--seed", "5", "--steps", "2", "--device", "cpu", "--quiet", "--save",
                              "m.bin", "--checkpoint-every", "1", "--log-json", "l.jsonl", NULL}));
  free(run_ok((const char *[]){"train", "--resume", "m.bin.ckpt", "--steps", "4", NULL}));
  char *log, *lines[16];
  int nl = read_log("l.jsonl", &log, lines, 16);
  cr_assert_eq(nl, 5, "the resumed run appends steps 3 and 4 to the log: %d lines", nl);
  for (int i = 0; i < nl; i++) cr_assert_eq((int)json_num(lines[i], "step"), i);
  char want[64], got[64];
  json_raw(lines[4], "loss", want, sizeof want);
  free(log);
  char *out = run_ok((const char *[]){"eval", "--model", "m.bin", "--data",
                                      "synth:n=128,d=6,seed=4", "--device", "cpu", NULL});
  cr_assert_str_eq(eval_field(out, "loss", got, sizeof got), want);
  free(out);

  run_result r = run_cli(
      (const char *[]){"train", "--resume", "m.bin.ckpt", "--width", "32", NULL});
  cr_assert(r.exited && r.status == 2 && strstr(r.err, "--width") && strstr(r.err, "64"), "%s",
            r.err);
  run_free(&r);
  /* the ridge is part of the objective the checkpoint's run minimizes */
  r = run_cli((const char *[]){"train", "--resume", "m.bin.ckpt", "--ridge", "0.5", NULL});
  cr_assert(r.exited && r.status == 2 && strstr(r.err, "--ridge") && strstr(r.err, "auto"), "%s",
            r.err);
  run_free(&r);
  r = run_cli((const char *[]){"train", "--resume", "m.bin.ckpt", "--data",
                               "synth:n=128,d=6,seed=9", NULL});
  cr_assert(r.exited && r.status == 2 && strstr(r.err, "not the data"), "%s", r.err);
  run_free(&r);
}

/* ---- regression targets: standardized for training, predicted in their own units ---- */

/* n rows x0,x1,x2,y of a learnable task in [0,1)^3 from a fixed LCG, y = a (sin(3 x0) + x1 x2 +
 * x0 / 4) rounded to a multiple of 2^-10, plus b. Written with %.17g so every float reads back
 * exactly. X (n, 3) and Y (n) get the values. */
static void write_regression_csv(const char *path, int n, double a, double b, float *X, float *Y) {
  FILE *f = fopen(path, "w");
  cr_assert(f, "cannot write %s", path);
  fprintf(f, "x0,x1,x2,y\n");
  uint64_t s = 12345;
  for (int i = 0; i < n; i++) {
    double x[3];
    for (int j = 0; j < 3; j++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      x[j] = (double)(s >> 40) / 16777216.0; /* 24 bits: exact in float */
      X[i * 3 + j] = (float)x[j];
    }
    const double t = ldexp(nearbyint(ldexp(sin(3 * x[0]) + x[1] * x[2] + x[0] / 4, 10)), -10);
    Y[i] = (float)(a * t + b);
    cr_assert_eq((double)Y[i], a * t + b, "a y + b is not exact in float");
    fprintf(f, "%.17g,%.17g,%.17g,%.17g\n", x[0], x[1], x[2], (double)Y[i]);
  }
  cr_assert_eq(fclose(f), 0);
}

#define REG_N 128

/* The model file holds the training targets' mean and std; predict writes mean + std f (f the
 * network's output on the inputs preprocessed as in training, computed here from the same file
 * by the library), to float rounding of that sum: |P - (mean + std f)| <= 2^-24 (|mean| + std
 * |f|), asserted with 2x. eval's mse is that of predict's outputs against the targets, in the
 * targets' units: std^2 times twice the loss of the standardized targets, up to the float
 * rounding of the outputs and targets in either unit. */
Test(workflow, regression_predicts_in_the_targets_units) {
  static float X[REG_N * 3], Y[REG_N];
  write_regression_csv("r.csv", REG_N, 50, 1000, X, Y);
  free(run_ok((const char *[]){"train", "--data", "r.csv", "--width", "64", "--steps", "3",
                               "--device", "cpu", "--quiet", "--save", "m.bin", "--log-json",
                               "l.jsonl", NULL}));
  double mu = 0, var = 0;
  for (int i = 0; i < REG_N; i++) mu += Y[i];
  mu /= REG_N;
  for (int i = 0; i < REG_N; i++) var += (Y[i] - mu) * (Y[i] - mu);
  const double sd = sqrt(var / REG_N);

  sgn_model *model = NULL;
  sgn_model_meta meta;
  cr_assert_eq(sgn_model_load("m.bin", &model, &meta), SGN_OK, "%s", sgn_last_error());
  cr_assert_eq(meta.prep.k_y, 1, "no target statistics in the model file");
  cr_assert_eq(meta.prep.mode, SGN_NORMALIZE_SPHERE, "the default normalization");
  cr_expect(fabs(meta.prep.y_mean[0] - mu) <= 1e-12 * (fabs(mu) + sd), "mean %.17g, want %.17g",
            meta.prep.y_mean[0], mu);
  cr_expect(fabs(meta.prep.y_scale[0] - sd) <= 1e-12 * sd, "scale %.17g, want %.17g",
            meta.prep.y_scale[0], sd);
  static float Xp[REG_N * 4], f[REG_N];
  cr_assert_eq(sgn_prep_dim(&meta.prep), 4, "sphere: 3 columns and the constant");
  sgn_prep_apply(&meta.prep, X, REG_N, Xp);
  cr_assert_eq(sgn_model_predict(model, Xp, REG_N, f), SGN_OK, "%s", sgn_last_error());

  char *csv = run_ok(
      (const char *[]){"predict", "--model", "m.bin", "--data", "r.csv", "--device", "cpu", NULL});
  static float P[REG_N];
  cr_assert_eq(parse_predict_csv(csv, 1, 0, P, NULL, REG_N), REG_N);
  double sse = 0, sst = 0, pmax = 0, emax = 0;
  for (int i = 0; i < REG_N; i++) {
    const double want = meta.prep.y_mean[0] + meta.prep.y_scale[0] * f[i];
    const double bound = 0x1p-23 * (fabs(meta.prep.y_mean[0]) + meta.prep.y_scale[0] * fabs(f[i]));
    cr_assert(fabs(P[i] - want) <= bound, "row %d: predict %.9g, mean + scale f = %.9g", i,
              (double)P[i], want);
    sse += ((double)P[i] - Y[i]) * ((double)P[i] - Y[i]);
    sst += (Y[i] - mu) * (Y[i] - mu);
    pmax = fmax(pmax, fabs(P[i])), emax = fmax(emax, fabs(Y[i] - mu));
  }
  free(csv);

  char *out = run_ok(
      (const char *[]){"eval", "--model", "m.bin", "--data", "r.csv", "--device", "cpu", NULL});
  char buf[160];
  const double mse = strtod(eval_field(out, "mse", buf, sizeof buf), NULL);
  const double r2 = strtod(eval_field(out, "r2", buf, sizeof buf), NULL);
  const double loss = strtod(eval_field(out, "loss", buf, sizeof buf), NULL);
  cr_expect(strstr(eval_field(out, "units", buf, sizeof buf), "standardized"), "%s", out);
  /* the same sums of the same floats; %.9g printing is the only difference */
  cr_expect(fabs(mse - sse / REG_N) <= 1e-8 * mse, "eval mse %.9g, from predict %.9g", mse,
            sse / REG_N);
  cr_expect(fabs(r2 - (1 - sse / sst)) <= 1e-8, "eval r2 %.9g, from predict %.9g", r2,
            1 - sse / sst);
  cr_expect(r2 > 0, "r2 %.4f: no better than the targets' mean", r2);
  /* each residual moves by at most delta between the units (one float rounding of the output
   * and of the target in each), so |mse - 2 std^2 loss| <= 2 sqrt(mse) delta + delta^2 */
  const double delta = 0x1p-23 * (pmax + emax), scaled = 2 * sd * sd * loss;
  cr_expect(fabs(mse - scaled) <= 2 * sqrt(mse) * delta + delta * delta,
            "mse %.9g in the targets' units, 2 std^2 loss %.9g", mse, scaled);
  free(out);

  /* and the log's mse is eval's (the same model on the same data) */
  char *log, *lines[8];
  int nl = read_log("l.jsonl", &log, lines, 8);
  cr_assert_eq(nl, 4);
  cr_expect(fabs(json_num(lines[nl - 1], "train_mse") - mse) <= 1e-5 * mse, "log %s, eval %.9g",
            lines[nl - 1], mse);
  cr_expect(fabs(json_num(lines[0], "loss") - 0.5) <= 1e-6,
            "step 0 (f = 0): half the mean square of standardized targets is 1/2: %s", lines[0]);
  free(log);
  sgn_model_free(model);
  sgn_prep_free(&meta.prep);
}

/* Training on a y + b instead of y (a > 0) standardizes to the same targets, so the network is
 * the same and predictions map by the same affine map. With a a power of two, b and the y here
 * (multiples of 2^-10 below 2^3, n = 128) every step of the statistics is exact or scales
 * exactly: mean' = a mean + b, and the deviations, their squares, sums and square roots scale by
 * a and a^2 exactly, so the standardized targets are bit-identical; W must be too. What remains
 * is the rounding of each prediction to float: |P' - (a P + b)| <= 2^-24 (|P'| + a |P|), asserted
 * with 2x. */
Test(workflow, regression_is_affine_equivariant) {
  static float X[REG_N * 3], Y[REG_N], Y2[REG_N];
  const double a = 4, b = -1000;
  write_regression_csv("y.csv", REG_N, 1, 0, X, Y);
  write_regression_csv("ay.csv", REG_N, a, b, X, Y2);
  const char *common[] = {"--width", "64", "--steps", "3", "--device", "cpu", "--quiet"};
  const char *args[16] = {"train", "--data", "y.csv", "--save", "y.bin"};
  memcpy(args + 5, common, sizeof common);
  free(run_ok(args));
  args[2] = "ay.csv", args[4] = "ay.bin";
  free(run_ok(args));

  sgn_model *m1 = NULL, *m2 = NULL;
  sgn_model_meta t1, t2;
  cr_assert_eq(sgn_model_load("y.bin", &m1, &t1), SGN_OK, "%s", sgn_last_error());
  cr_assert_eq(sgn_model_load("ay.bin", &m2, &t2), SGN_OK, "%s", sgn_last_error());
  cr_expect_eq(t2.prep.y_mean[0], a * t1.prep.y_mean[0] + b, "mean %.17g, a mean + b %.17g",
               t2.prep.y_mean[0], a * t1.prep.y_mean[0] + b);
  cr_expect_eq(t2.prep.y_scale[0], a * t1.prep.y_scale[0]);
  cr_expect_eq(memcmp(m1->W, m2->W, sizeof(float) * (size_t)(m1->m * m1->d)), 0,
               "the networks differ: the standardized targets were not the same");
  sgn_model_free(m1), sgn_model_free(m2);
  sgn_prep_free(&t1.prep), sgn_prep_free(&t2.prep);

  static float P[REG_N], P2[REG_N];
  char *c1 = run_ok(
      (const char *[]){"predict", "--model", "y.bin", "--data", "y.csv", "--device", "cpu", NULL});
  char *c2 = run_ok((const char *[]){"predict", "--model", "ay.bin", "--data", "ay.csv", "--device",
                                     "cpu", NULL});
  cr_assert_eq(parse_predict_csv(c1, 1, 0, P, NULL, REG_N), REG_N);
  cr_assert_eq(parse_predict_csv(c2, 1, 0, P2, NULL, REG_N), REG_N);
  for (int i = 0; i < REG_N; i++)
    cr_assert(fabs(P2[i] - (a * P[i] + b)) <= 0x1p-23 * (fabs(P2[i]) + a * fabs(P[i])),
              "row %d: trained on a y + b predicts %.9g, a P + b = %.9g", i, (double)P2[i],
              a * P[i] + b);
  free(c1), free(c2);
}

/* --target-scale none: no target statistics in the file (version 1, as before), the loss at
 * step 0 is half the mean square of the raw targets, and eval says its units. Classification
 * refuses it; a resumed run keeps the checkpoint's choice. */
Test(workflow, target_scale_none_trains_on_raw_targets) {
  static float X[REG_N * 3], Y[REG_N];
  write_regression_csv("r.csv", REG_N, 50, 1000, X, Y);
  free(run_ok((const char *[]){"train", "--data", "r.csv", "--width", "64", "--steps", "1",
                               "--device", "cpu", "--quiet", "--target-scale", "none", "--save",
                               "m.bin", "--log-json", "l.jsonl", "--checkpoint-every", "1", NULL}));
  sgn_model *model = NULL;
  sgn_model_meta meta;
  cr_assert_eq(sgn_model_load("m.bin", &model, &meta), SGN_OK, "%s", sgn_last_error());
  cr_expect_eq(meta.prep.k_y, 0);
  sgn_model_free(model);
  sgn_prep_free(&meta.prep);
  char *bytes = slurp_path("m.bin", NULL);
  cr_expect_eq(bytes[8], 1, "a model without target statistics is version 1");
  free(bytes);
  double ms = 0;
  for (int i = 0; i < REG_N; i++) ms += (double)Y[i] * Y[i];
  char *log, *lines[4], buf[160];
  cr_assert_eq(read_log("l.jsonl", &log, lines, 4), 2);
  cr_expect(fabs(json_num(lines[0], "loss") - ms / (2 * REG_N)) <= 1e-6 * ms / (2 * REG_N), "%s",
            lines[0]);
  free(log);
  char *out = run_ok(
      (const char *[]){"eval", "--model", "m.bin", "--data", "r.csv", "--device", "cpu", NULL});
  cr_expect(strstr(eval_field(out, "units", buf, sizeof buf), "own units"), "%s", out);
  free(out);

  run_result r = run_cli((const char *[]){"train", "--resume", "m.bin.ckpt", "--target-scale",
                                          "standard", "--steps", "2", NULL});
  cr_assert(r.exited && r.status == 2 && strstr(r.err, "--target-scale") &&
                strstr(r.err, "none"),
            "status %d: %s", r.status, r.err);
  run_free(&r);
  free(run_ok((const char *[]){"train", "--resume", "m.bin.ckpt", "--steps", "2", "--quiet",
                               NULL}));
  cr_assert_eq(sgn_model_load("m.bin", &model, &meta), SGN_OK, "%s", sgn_last_error());
  cr_expect_eq(meta.prep.k_y, 0, "the resumed run started scaling the targets");
  sgn_model_free(model);
  sgn_prep_free(&meta.prep);
}
