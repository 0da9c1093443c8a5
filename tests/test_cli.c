/* test_cli.c — runs the `sketchgn` binary (env SKETCHGN_BIN, default build/sketchgn) as a
 * subprocess and checks the contract of the command line: help text, one-line usage errors
 * with exit status 2, and a real training run that writes its JSON log. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "sketchgn.h"

/* ---- running the binary (cli_run.h) ---- */

static run_result run_cli(const char *const *args) { return cli_run(cli_bin(), args, 0); }

static char *slurp(const char *path) { return slurp_path(path, NULL); }

static void check_binary(void) {
  cr_assert(access(cli_bin(), X_OK) == 0,
            "no executable at %s (build it with make build/sketchgn or set SKETCHGN_BIN)",
            cli_bin());
}

/* Every train option, as the help must list it. */
static const char *const train_options[] = {
    "--data",        "--width",         "--solver",
    "--sketch",      "--sketch-ratio",  "--precond-refresh",
    "--steps",       "--target-rel",    "--time-limit",
    "--batch",       "--damping",       "--lr",
    "--cg-tol",      "--cg-max",        "--init",
    "--line-search", "--device",        "--seed",
    "--log-json",    "--quiet",         "--help",
    "--max-memory",  "--chunk-neurons", "--normalize",
    "--target-scale", "--ridge",        "--precision",
    "--product-precision", NULL,
};

/* ---- help and version ---- */

TestSuite(cli, .init = check_binary, .timeout = 60);

Test(cli, main_help) {
  run_result r = run_cli((const char *[]){"--help", NULL});
  cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
  cr_assert_str_empty(r.err);
  cr_assert(strstr(r.out, "usage: sketchgn"), "%s", r.out);
  cr_assert(strstr(r.out, "train"), "%s", r.out);
  cr_assert(strstr(r.out, "info"), "%s", r.out);
  cr_assert(strstr(r.out, "--version"), "%s", r.out);
  cr_assert(strstr(r.out, "--help"), "%s", r.out);
  run_free(&r);
}

Test(cli, version) {
  run_result r = run_cli((const char *[]){"--version", NULL});
  cr_assert_eq(r.status, 0);
  cr_assert_str_eq(r.out, "sketchgn " SGN_VERSION "\n");
  run_free(&r);
}

/* Each option appears as its own entry, and that entry states a default (or that it is required,
 * or that it is --help itself). */
Test(cli, train_help_lists_every_option_with_default) {
  const char *const forms[][3] = {
      {"train", "--help", NULL}, {"train", "-h", NULL}, {"help", "train", NULL}};
  for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
    run_result r = run_cli(forms[f]);
    cr_assert_eq(r.status, 0, "%s %s: status %d", forms[f][0], forms[f][1], r.status);
    cr_assert_str_empty(r.err);
    cr_assert(strstr(r.out, "usage: sketchgn train"), "%s", r.out);
    for (int i = 0; train_options[i]; i++) {
      const char *at = NULL;
      /* The entry starts a line with two spaces (or "-h, "), then the option, then a space or
       * a newline: that tells --sketch from --sketch-ratio. */
      for (const char *p = r.out; (p = strstr(p, train_options[i])); p++) {
        char next = p[strlen(train_options[i])];
        if ((next == ' ' || next == '\n') && p - r.out >= 2 && p[-1] == ' ' &&
            (p[-2] == ' ' || p[-2] == ',')) {
          at = p;
          break;
        }
      }
      cr_assert_not_null(at, "train help does not list %s:\n%s", train_options[i], r.out);
      /* The entry runs until the next line that starts a new option or a blank line. */
      const char *end = at;
      for (;;) {
        end = strchr(end, '\n');
        if (!end || strncmp(end, "\n  -", 4) == 0 || strncmp(end, "\n\n", 2) == 0) break;
        end++;
      }
      size_t len = end ? (size_t)(end - at) : strlen(at);
      char entry[512];
      snprintf(entry, sizeof entry, "%.*s", (int)(len < sizeof entry ? len : sizeof entry - 1), at);
      if (strcmp(train_options[i], "--help") != 0)
        cr_assert(strstr(entry, "default") || strstr(entry, "required"),
                  "entry for %s gives no default: '%s'", train_options[i], entry);
    }
    run_free(&r);
  }
}

Test(cli, info_help) {
  run_result r = run_cli((const char *[]){"info", "--help", NULL});
  cr_assert_eq(r.status, 0);
  cr_assert(strstr(r.out, "usage: sketchgn info"), "%s", r.out);
  run_free(&r);
}

Test(cli, info_reports_build) {
  run_result r = run_cli((const char *[]){"info", NULL});
  cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
  const char *want[] = {"sketchgn " SGN_VERSION, "cpu:", "gpu:", "openblas:", "lapack:", "openmp:"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    cr_assert(strstr(r.out, want[i]), "info lacks '%s':\n%s", want[i], r.out);
  run_free(&r);
}

/* ---- usage errors: exit 2, one line on stderr naming the flag, nothing on stdout ---- */

#define D "synth:n=64,d=4,seed=1"

/* Strings live inside the struct: Criterion copies parameters into worker processes that may
 * not share the parent's addresses, so pointers to literals would dangle. */
typedef struct bad_case {
  char args[10][40]; /* after the binary's name, ended by an empty string */
  char names[24];    /* the flag or command the message must name */
} bad_case;

static bad_case bad_cases[] = {
    {{"train", "--data", D, "--bogus"}, "--bogus"},
    {{"train", "--data", D, "--width"}, "--width"}, /* missing value at the end */
    {{"train", "--data"}, "--data"},                /* missing value at the end */
    {{"train", "--data", D, "--log-json"}, "--log-json"},
    {{"train", "--data", D, "--width", "abc"}, "--width"},
    {{"train", "--data", D, "--width=abc"}, "--width"},
    {{"train", "--data", D, "--width="}, "--width"}, /* empty value */
    {{"train", "--data", D, "--width", "0"}, "--width"},
    {{"train", "--data", D, "--width", "1e3"}, "--width"},
    {{"train", "--data", D, "--init", "symmetric", "--width", "65"}, "--width"},
    {{"train", "--data", D, "--width", "65", "--init", "symmetric"}, "--width"},
    {{"train", "--data", D, "--damping", "-1"}, "--damping"},
    {{"train", "--data", D, "--damping", "nan"}, "--damping"},
    {{"train", "--data", D, "--ridge", "-1"}, "--ridge"},
    {{"train", "--data", D, "--ridge", "nan"}, "--ridge"},
    {{"train", "--data", D, "--ridge", "some"}, "--ridge"},
    {{"train", "--data", D, "--ridge", "0.1", "--solver", "adam"}, "ridge"},
    {{"train", "--data", D, "--ridge", "0.1", "--batch", "8"}, "ridge"},
    {{"train", "--data", D, "--sketch-ratio", "0.5"}, "--sketch-ratio"},
    {{"train", "--data", D, "--sketch", "fourier"}, "--sketch"},
    {{"train", "--data", D, "--sketch", "fft"}, "--sketch"},
    {{"bench", "--sketch", "tensorsketch"}, "--sketch"},
    {{"train", "--data", D, "--precision", "fp16"}, "--precision"},
    {{"bench", "--precision", "fp32,half"}, "--precision"},
    {{"train", "--data", D, "--product-precision", "fp64"}, "--product-precision"},
    {{"train", "--data", D, "--product-precision", "fp16"}, "--product-precision"},
    {{"bench", "--product-precision", "tf32,half"}, "--product-precision"},
    {{"train", "--data", D, "--cg-tol", "0"}, "--cg-tol"},
    {{"train", "--data", D, "--cg-tol", "2"}, "--cg-tol"},
    {{"train", "--data", D, "--cg-max", "0"}, "--cg-max"},
    {{"train", "--data", D, "--solver", "newton"}, "--solver"},
    {{"train", "--data", D, "--precond-refresh", "sometimes"}, "--precond-refresh"},
    {{"train", "--data", D, "--precond-refresh", "0"}, "--precond-refresh"},
    {{"train", "--data", D, "--init", "xavier"}, "--init"},
    {{"train", "--width", "64"}, "--data"}, /* --data is required */
    {{"train", "--data", D, "--steps", "-1"}, "--steps"},
    {{"train", "--data", D, "--steps", "99999999999999999999"}, "--steps"},
    {{"train", "--data", D, "--seed", "abc"}, "--seed"},
    {{"train", "--data", D, "--seed", "-1"}, "--seed"},
    {{"train", "--data", D, "--lr", "0"}, "--lr"},
    {{"train", "--data", D, "--lr", "inf"}, "--lr"},
    {{"train", "--data", D, "--target-rel", "2"}, "--target-rel"},
    {{"train", "--data", D, "--time-limit", "-1"}, "--time-limit"},
    {{"train", "--data", D, "--batch", "0"}, "--batch"},
    {{"train", "--data", D, "--device", "tpu"}, "--device"},
    {{"train", "--data", D, "--line-search", "maybe"}, "--line-search"},
    {{"train", "--data", D, "--target-scale", "minmax"}, "--target-scale"},
    {{"train", "--data", D, "--task", "classify", "--target-scale", "none"}, "--target-scale"},
    {{"train", "--data", D, "--normalize", "ball"}, "--normalize"},
    {{"train", "--data", D, "--quiet=yes"}, "--quiet"},
    {{"train", "--data", D, "--sk", "4"}, "--sk"}, /* --sketch or --sketch-ratio */
    {{"train", "--data", D, "stray"}, "stray"},
    {{"frobnicate"}, "frobnicate"},
    {{"--bogus"}, "--bogus"},
    {{"info", "--bogus"}, "--bogus"},
    {{""}, "command"}, /* no command at all */
};

ParameterizedTestParameters(cli, bad_invocation) {
  return cr_make_param_array(bad_case, bad_cases, sizeof bad_cases / sizeof bad_cases[0]);
}

ParameterizedTest(bad_case *c, cli, bad_invocation) {
  char shown[512] = "";
  const char *args[11];
  int n = 0;
  for (; n < 10 && c->args[n][0]; n++) {
    args[n] = c->args[n];
    strncat(shown, " ", sizeof shown - strlen(shown) - 1);
    strncat(shown, c->args[n], sizeof shown - strlen(shown) - 1);
  }
  args[n] = NULL;
  run_result r = run_cli(args);
  cr_assert_eq(r.status, 2, "sketchgn%s: status %d, want 2; stderr: %s", shown, r.status, r.err);
  cr_assert_eq(count_lines(r.err), 1, "sketchgn%s: want one line on stderr, got:\n%s", shown,
               r.err);
  cr_assert(r.err[strlen(r.err) - 1] == '\n', "sketchgn%s: stderr not one full line", shown);
  cr_assert(strncmp(r.err, "sketchgn", 8) == 0, "sketchgn%s: '%s'", shown, r.err);
  cr_assert(strstr(r.err, c->names), "sketchgn%s: message does not name '%s': %s", shown, c->names,
            r.err);
  cr_assert_str_empty(r.out, "sketchgn%s: wrote to stdout: %s", shown, r.out);
  run_free(&r);
}

/* ---- real runs (need the whole library: data, train, solvers, CPU backend) ---- */

/* The number after "KEY": in a JSON line, NAN when absent. */
static double json_number(const char *line, const char *key) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\"", key);
  const char *p = strstr(line, quoted);
  if (!p) return NAN;
  p += strlen(quoted);
  while (*p == ' ' || *p == '\t') p++;
  if (*p++ != ':') return NAN;
  char *end;
  double v = strtod(p, &end);
  return end == p ? NAN : v;
}

/* Splits a JSON-lines log into at most cap lines; returns the count. */
static int json_lines(char *text, char **lines, int cap) {
  int n = 0;
  for (char *save = NULL, *tok = strtok_r(text, "\n", &save); tok && n < cap;
       tok = strtok_r(NULL, "\n", &save))
    if (tok[0]) lines[n++] = tok;
  return n;
}


Test(cli, train_gn_exact_writes_json_log, .timeout = 120) {
  char log[256];
  temp_path(log, sizeof log);
  run_result r = run_cli((const char *[]){"train", "--data", D, "--width", "64", "--steps", "2",
                                          "--solver", "gn-exact", "--device", "cpu", "--quiet",
                                          "--log-json", log, NULL});
  cr_assert_eq(r.status, 0, "status %d; stderr: %s", r.status, r.err);
  char *text = slurp(log);
  cr_assert_not_null(text, "no log at %s", log);
  unlink(log);
  char *lines[16];
  int n = json_lines(text, lines, 16);
  cr_assert_eq(n, 3, "want 3 JSON lines (steps 0, 1, 2), got %d:\n%s", n, text);
  const char *keys[] = {"loss",      "time_s",     "cg_iters", "forward_ms",
                        "sketch_ms", "precond_ms", "solve_ms", "update_ms"};
  for (int i = 0; i < n; i++) {
    size_t len = strlen(lines[i]);
    cr_assert(lines[i][0] == '{' && lines[i][len - 1] == '}', "not a JSON object: %s", lines[i]);
    cr_assert_eq(json_number(lines[i], "step"), (double)i, "line %d: %s", i, lines[i]);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
      cr_assert(isfinite(json_number(lines[i], keys[k])), "line %d lacks a number for %s: %s", i,
                keys[k], lines[i]);
    cr_assert(strstr(lines[i], "\"solver\""), "line %d lacks solver: %s", i, lines[i]);
    cr_assert(strstr(lines[i], "\"device\""), "line %d lacks device: %s", i, lines[i]);
    cr_assert(strstr(lines[i], "gn-exact"), "line %d does not name the solver: %s", i, lines[i]);
  }
  double loss0 = json_number(lines[0], "loss"), loss2 = json_number(lines[2], "loss");
  cr_assert(loss2 < loss0, "Gauss-Newton did not lower the loss: %g -> %g", loss0, loss2);
  free(text);
  run_free(&r);
}

/* --flag=value works like --flag value: a zero-step run logs step 0 only. */
Test(cli, train_accepts_equals_form, .timeout = 120) {
  char log[256], arg[300];
  temp_path(log, sizeof log);
  snprintf(arg, sizeof arg, "--log-json=%s", log);
  run_result r = run_cli((const char *[]){"train", "--data=" D, "--width=64", "--steps=0",
                                          "--solver=gn-exact", "--device=cpu", "--quiet", arg,
                                          NULL});
  cr_assert_eq(r.status, 0, "status %d; stderr: %s", r.status, r.err);
  char *text = slurp(log);
  cr_assert_not_null(text);
  unlink(log);
  char *lines[4];
  int n = json_lines(text, lines, 4);
  cr_assert_eq(n, 1, "want 1 JSON line, got %d:\n%s", n, text);
  cr_assert_eq(json_number(lines[0], "step"), 0.0, "%s", lines[0]);
  free(text);
  run_free(&r);
}

/* The same seed gives the same losses, step by step. */
Test(cli, train_same_seed_same_losses, .timeout = 120) {
  double loss[2][3];
  for (int run = 0; run < 2; run++) {
    char log[256];
    temp_path(log, sizeof log);
    run_result r = run_cli((const char *[]){"train", "--data", D, "--width", "64", "--steps", "2",
                                            "--solver", "gn-sketch", "--device", "cpu", "--seed",
                                            "7", "--quiet", "--log-json", log, NULL});
    cr_assert_eq(r.status, 0, "status %d; stderr: %s", r.status, r.err);
    char *text = slurp(log);
    cr_assert_not_null(text);
    unlink(log);
    char *lines[8];
    cr_assert_eq(json_lines(text, lines, 8), 3, "%s", text);
    for (int i = 0; i < 3; i++) loss[run][i] = json_number(lines[i], "loss");
    free(text);
    run_free(&r);
  }
  for (int i = 0; i < 3; i++)
    cr_assert(loss[0][i] == loss[1][i], "step %d: loss %.17g vs %.17g", i, loss[0][i], loss[1][i]);
}

/* A --max-memory just under what the unchunked (n, m) work needs (8 MiB of 8.7 here): the run
 * trains in neuron chunks and its header says so; far under, exit 2 naming the bytes;
 * --chunk-neurons forces a width, and 1 is a usage error. */
Test(cli, train_in_neuron_chunks_under_max_memory, .timeout = 120) {
  check_binary();
  const char *plain[] = {"train",    "--data",  "synth:n=512,d=8,seed=1",
                         "--width",  "4096",    "--solver",
                         "gd",       "--steps", "2",
                         "--device", "cpu",     NULL};
  run_result r = run_cli(plain);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_expect_null(strstr(r.err, "chunks"), "chunked without a budget:\n%s", r.err);
  run_free(&r);

  const char *tight[] = {"train",    "--data",  "synth:n=512,d=8,seed=1",
                         "--width",  "4096",    "--solver",
                         "gd",       "--steps", "2",
                         "--device", "cpu",     "--max-memory",
                         "6M",       NULL};
  r = run_cli(tight);
  cr_expect_eq(r.status, 0, "%s", r.err);
  cr_expect(strstr(r.err, "neurons in chunks of "), "no chunk note:\n%s", r.err);
  run_free(&r);

  const char *tiny[] = {"train",    "--data",  "synth:n=512,d=8,seed=1",
                        "--width",  "4096",    "--solver",
                        "gd",       "--steps", "2",
                        "--device", "cpu",     "--max-memory",
                        "1M",       NULL};
  r = run_cli(tiny);
  cr_expect_eq(r.status, 2, "%s", r.err);
  cr_expect(strstr(r.err, "needs") && strstr(r.err, "MiB"), "%s", r.err);
  run_free(&r);

  const char *forced[] = {
      "train",    "--data", "synth:n=64,d=4,seed=1", "--width", "256", "--steps", "1",
      "--device", "cpu",    "--chunk-neurons",       "96",      NULL};
  r = run_cli(forced);
  cr_expect_eq(r.status, 0, "%s", r.err);
  cr_expect(strstr(r.err, "neurons in chunks of 96"), "%s", r.err);
  run_free(&r);

  const char *bad[] = {"train", "--data", "synth:n=64,d=4,seed=1", "--chunk-neurons", "1", NULL};
  r = run_cli(bad);
  cr_expect_eq(r.status, 2, "%s", r.err);
  cr_expect(strstr(r.err, "--chunk-neurons"), "%s", r.err);
  run_free(&r);
}

/* ---- the FFT sketches from the command line ---- */

/* gn-sketch with --sketch srft and --sketch countsketch trains a small synthetic task to the
 * design's target (loss <= 1e-6 x the initial loss) within 5 steps (measured: 2 steps for both,
 * as for srht), and `info` names the FFTW it runs on. */
Test(cli, train_with_fft_sketches_converges, .timeout = 120) {
  const char *kinds[] = {"srft", "countsketch"};
  for (int q = 0; q < 2; q++) {
    char log[256];
    temp_path(log, sizeof log);
    run_result r = run_cli((const char *[]){"train", "--data", "synth:n=256,d=16,seed=3", "--width",
                                            "1024", "--steps", "5", "--solver", "gn-sketch",
                                            "--sketch", kinds[q], "--device", "cpu", "--tol", "0",
                                            "--quiet", "--log-json", log, NULL});
    cr_assert_eq(r.status, 0, "--sketch %s: status %d; stderr: %s", kinds[q], r.status, r.err);
    char *text = slurp(log);
    cr_assert_not_null(text);
    unlink(log);
    char *lines[8];
    int n = json_lines(text, lines, 8);
    cr_assert_eq(n, 6, "--sketch %s: want 6 JSON lines, got %d", kinds[q], n);
    double loss0 = json_number(lines[0], "loss"), last = json_number(lines[n - 1], "loss");
    cr_assert(last <= 1e-6 * loss0, "--sketch %s: loss %g -> %g (ratio %g)", kinds[q], loss0, last,
              last / loss0);
    for (int i = 1; i < n; i++)
      cr_assert_gt(json_number(lines[i], "cg_iters"), 0, "--sketch %s: %s", kinds[q], lines[i]);
    free(text);
    run_free(&r);
  }
}

Test(cli, info_names_fftw) {
  run_result r = run_cli((const char *[]){"info", NULL});
  cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
  cr_assert(strstr(r.out, "fftw: fftw-3."), "info lacks the FFTW version:\n%s", r.out);
  run_free(&r);
}

/* ---- eval and predict under --max-memory ---- */

/* The first number after `key ` in text, NAN if absent. */
static double text_number(const char *text, const char *key) {
  const char *p = strstr(text, key);
  return p ? strtod(p + strlen(key), NULL) : NAN;
}

/* A model (m = 1024) whose whole evaluation needs ~2.3 MiB: eval and predict under
 * --max-memory 1M (neuron chunks) and 100K (rows in blocks) agree with the whole pass to 1e-6
 * (the max error over the max |output|; float32 regrouping measures <= 4.7e-7); 20K, under W
 * alone, exits 2 naming the bytes needed and allowed and leaves no --out file. */
Test(cli, eval_and_predict_under_max_memory, .timeout = 120) {
  char model[256], out[3][256];
  temp_path(model, sizeof model);
  run_result r = run_cli((const char *[]){"train", "--data", "synth:n=512,d=8,seed=1", "--width",
                                          "1024", "--solver", "gd", "--steps", "2", "--device",
                                          "cpu", "--quiet", "--save", model, NULL});
  cr_assert_eq(r.status, 0, "%s", r.err);
  run_free(&r);
  const char *budgets[3] = {NULL, "1M", "100K"};
  double loss[3];
  float *F[3] = {NULL, NULL, NULL};
  for (int b = 0; b < 3; b++) {
    const char *ev[] = {"eval",
                        "--model",
                        model,
                        "--data",
                        "synth:n=512,d=8,seed=1",
                        "--device",
                        "cpu",
                        budgets[b] ? "--max-memory" : NULL,
                        budgets[b],
                        NULL};
    r = run_cli(ev);
    cr_assert_eq(r.status, 0, "--max-memory %s: %s", budgets[b], r.err);
    loss[b] = text_number(r.out, "loss ");
    run_free(&r);
    temp_path(out[b], sizeof out[b]);
    unlink(out[b]);
    strcat(out[b], ".npy");
    const char *pr[] = {
        "predict",  "--model", model,   "--data", "synth:n=512,d=8,seed=1",
        "--device", "cpu",     "--out", out[b],   budgets[b] ? "--max-memory" : NULL,
        budgets[b], NULL};
    r = run_cli(pr);
    cr_assert_eq(r.status, 0, "--max-memory %s: %s", budgets[b], r.err);
    run_free(&r);
    size_t len = 0;
    char *npy = slurp_path(out[b], &len);
    cr_assert(npy && len == 128 + 512 * sizeof(float), "%s: %zu bytes", out[b], len);
    F[b] = malloc(512 * sizeof(float));
    memcpy(F[b], npy + 128, 512 * sizeof(float));
    free(npy);
    unlink(out[b]);
  }
  for (int b = 1; b < 3; b++) {
    cr_expect(fabs(loss[b] - loss[0]) <= 1e-6 * loss[0], "--max-memory %s: loss %.9g vs %.9g",
              budgets[b], loss[b], loss[0]);
    double err = 0, scale = 0;
    for (int i = 0; i < 512; i++) {
      err = fmax(err, fabs((double)F[b][i] - F[0][i]));
      scale = fmax(scale, fabs((double)F[0][i]));
    }
    cr_expect(err <= 1e-6 * scale, "--max-memory %s: outputs differ by %.3g of %.3g", budgets[b],
              err, scale);
  }

  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", out[0]);
  for (int c = 0; c < 2; c++) {
    const char *tiny[] = {c ? "predict" : "eval",
                          "--model",
                          model,
                          "--data",
                          "synth:n=512,d=8,seed=1",
                          "--device",
                          "cpu",
                          "--max-memory",
                          "20K",
                          c ? "--out" : NULL,
                          out[0],
                          NULL};
    r = run_cli(tiny);
    cr_expect_eq(r.status, 2, "%s: %s", tiny[0], r.err);
    cr_expect(strstr(r.err, "needs") && strstr(r.err, "bytes") && strstr(r.err, "(20480 bytes)"),
              "%s", r.err);
    cr_expect_eq(count_lines(r.err), 1, "%s", r.err);
    cr_expect_eq(r.out[0], '\0', "%s wrote to stdout: %s", tiny[0], r.out);
    run_free(&r);
  }
  cr_expect(access(out[0], F_OK) != 0 && access(tmp, F_OK) != 0, "a partial --out file is left");
  r = run_cli((const char *[]){"predict", "--model", model, "--data", "synth:n=8,d=8,seed=1",
                               "--chunk-neurons", "1", NULL});
  cr_expect_eq(r.status, 2, "%s", r.err);
  cr_expect(strstr(r.err, "--chunk-neurons"), "%s", r.err);
  run_free(&r);
  for (int b = 0; b < 3; b++) free(F[b]);
  unlink(model);
}

/* ---- the default stop rule ---- */

/* With no --steps, a task that converges in a few steps stops on its own, within two steps of
 * converging (the loss floor or --tol), and names the reason in the last JSON line and on
 * stderr; earlier lines carry no "stop". */
Test(cli, train_stops_on_convergence_and_says_why, .timeout = 120) {
  char log[256];
  temp_path(log, sizeof log);
  run_result r = run_cli((const char *[]){"train", "--data", "synth:n=256,d=16,seed=3", "--width",
                                          "1024", "--solver", "gn-sketch", "--device", "cpu",
                                          "--log-json", log, NULL});
  cr_assert_eq(r.status, 0, "status %d; stderr: %s", r.status, r.err);
  char *text = slurp(log);
  cr_assert_not_null(text);
  unlink(log);
  char *lines[128];
  int n = json_lines(text, lines, 128);
  cr_assert(n >= 3 && n <= 8, "want a stop within 7 steps, got %d lines", n);
  cr_assert(strstr(lines[n - 1], "\"stop\":\""), "the last line names no stop: %s", lines[n - 1]);
  for (int i = 0; i < n - 1; i++) cr_assert_null(strstr(lines[i], "\"stop\""), "%s", lines[i]);
  cr_assert(strstr(r.err, "stop: loss floor") || strstr(r.err, "stop: converged"), "%s", r.err);
  free(text);
  run_free(&r);
}
