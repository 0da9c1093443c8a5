/* test_cli_opts.c — the one option parser (cli/opts.c): a table of shared flags run through
 * train, eval, predict and bench with the same spelling, which must give the same result (the
 * same acceptance, or the same one-line error but for the command's name); then the parser
 * itself, linked in, on every kind of value. A flag is "accepted" when the parser goes on to the
 * next word, a sentinel unknown option, so no case does any work and the suite takes seconds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/redirect.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_run.h"
#include "opts.h"

/* ---- the shared flags, command by command ---- */

#define ALL "TEPB" /* train, eval, predict, bench */
#define TB "TB"    /* the solver flags: train and bench */
#define TEP "TEP"  /* the data flags: train, eval and predict */
#define SENTINEL "--zzz-end"

/* Strings live inside the struct: Criterion copies parameters into its worker processes. */
typedef struct flag_case {
  char cmds[8];     /* the commands that take the flag: T, E, P, B */
  char args[3][48]; /* the flag as typed, ended by ""; '' stands for an empty word */
  int last;         /* 1: the flag ends the command line (a missing value) */
  char want[160];   /* "": accepted; else the error after "sketchgn CMD: ", CMD for the command */
} flag_case;

#define BAD_SIZE(v) "--max-memory: expected a size > 0 such as 512M or 8G, got '" v "'"
#define UNKNOWN(f) f ": unknown option (try 'sketchgn CMD --help')"

static flag_case flag_cases[] = {
    /* accepted: both forms, prefixes, signs, exponents where reals are expected */
    {ALL, {"--device", "cpu"}, 0, ""},
    {ALL, {"--device=gpu"}, 0, ""},
    {ALL, {"--dev", "auto"}, 0, ""},
    {ALL, {"--dev=cpu"}, 0, ""},
    {ALL, {"--max-memory", "8G"}, 0, ""},
    {ALL, {"--max=1.5M"}, 0, ""},
    {ALL, {"--max-memory", "+4096"}, 0, ""},
    {ALL, {"--max-memory", "1e9"}, 0, ""},
    {ALL, {"--chunk-neurons", "+64"}, 0, ""},
    {ALL, {"--chunk=0"}, 0, ""},
    {TB, {"--seed", "+7"}, 0, ""},
    {TB, {"--seed", "18446744073709551615"}, 0, ""},
    {TB, {"--seed=0"}, 0, ""},
    {TB, {"--solver", "gn-cg"}, 0, ""},
    {TB, {"--sol=auto"}, 0, ""},
    {TB, {"--sketch", "srft"}, 0, ""},
    {TB, {"--sketch-r", "2.5"}, 0, ""},
    {TB, {"--sketch-ratio", "+1e1"}, 0, ""},
    {TB, {"--precond-refresh", "3"}, 0, ""},
    {TB, {"--precond", "always"}, 0, ""},
    {TB, {"--precond-refresh=+2"}, 0, ""},
    {TB, {"--cg-tol", "1e-3"}, 0, ""},
    {TB, {"--cg-tol=.5"}, 0, ""},
    {TB, {"--cg-max", "+50"}, 0, ""},
    {TB, {"--cg-m", "007"}, 0, ""},
    {TB, {"--steps", "+1"}, 0, ""},
    {TB, {"--steps=10"}, 0, ""},
    {TEP, {"--data", "synth:n=8"}, 0, ""},
    {TEP, {"--targets=y.npy"}, 0, ""},
    {TEP, {"--dat", "x.csv"}, 0, ""},
    /* choices */
    {ALL, {"--device", "tpu"}, 0, "--device: expected one of auto|cpu|gpu, got 'tpu'"},
    {ALL, {"--dev=CPU"}, 0, "--device: expected one of auto|cpu|gpu, got 'CPU'"},
    {ALL, {"--device="}, 0, "--device: expected one of auto|cpu|gpu, got ''"},
    {ALL, {"--device"}, 1, "--device: missing value"},
    {TB,
     {"--solver", "newton"},
     0,
     "--solver: expected one of gd|adam|gn-exact|gn-cg|gn-sketch|gn-gram|auto, got 'newton'"},
    {TB,
     {"--sketch", "fft"},
     0,
     "--sketch: expected one of srht|gaussian|srft|countsketch, got 'fft'"},
    {TB, {"--sk", "4"}, 0, "--sk: ambiguous option (could be --sketch, --sketch-ratio)"},
    {TB, {"--precision", "tf32"}, 0, ""},
    {TB, {"--precisi=bf16"}, 0, ""},
    {TB,
     {"--precision", "fp16"},
     0,
     "--precision: expected one of fp64|fp32|tf32|bf16, got 'fp16'"},
    {TB, {"--pre", "fp32"}, 0, "--pre: ambiguous option (could be --precision, --precond-refresh)"},
    {TB, {"--product-precision", "bf16"}, 0, ""},
    {TB, {"--prod=tf32"}, 0, ""},
    {TB,
     {"--product-precision", "fp64"},
     0,
     "--product-precision: expected one of fp32|tf32|bf16, got 'fp64'"},
    {TB,
     {"--precond-refresh", "0"},
     0,
     "--precond-refresh: expected auto, always or an integer N >= 1, got '0'"},
    {TB,
     {"--precond-refresh", "sometimes"},
     0,
     "--precond-refresh: expected auto, always or an integer N >= 1, got 'sometimes'"},
    /* sizes */
    {ALL, {"--max-memory", "0"}, 0, BAD_SIZE("0")},
    {ALL, {"--max-memory", "8T"}, 0, BAD_SIZE("8T")},
    {ALL, {"--max-memory", "-1G"}, 0, BAD_SIZE("-1G")},
    {ALL, {"--max-memory", "0x10"}, 0, BAD_SIZE("0x10")},
    {ALL, {"--max-memory", " 8G"}, 0, BAD_SIZE(" 8G")},
    /* integers: a sign and decimal digits, nothing else; then the range */
    {ALL,
     {"--chunk-neurons", "1"},
     0,
     "--chunk-neurons: a chunk holds at least 2 neurons (one of each half), or 0 for automatic"},
    {ALL, {"--chunk-neurons", "1e3"}, 0, "--chunk-neurons: expected an integer, got '1e3'"},
    {ALL, {"--chunk-neurons", "0x40"}, 0, "--chunk-neurons: expected an integer, got '0x40'"},
    {ALL, {"--chunk-neurons", "64k"}, 0, "--chunk-neurons: expected an integer, got '64k'"},
    {ALL, {"--chunk-neurons="}, 0, "--chunk-neurons: expected an integer, got ''"},
    {ALL, {"--chunk-neurons", "-2"}, 0, "--chunk-neurons: expected an integer >= 0, got '-2'"},
    {ALL,
     {"--chunk-neurons", "99999999999999999999"},
     0,
     "--chunk-neurons: expected an integer >= 0, got '99999999999999999999'"},
    {TB, {"--seed", "-1"}, 0, "--seed: expected an integer in [0, 2^64 - 1], got '-1'"},
    {TB,
     {"--seed", "18446744073709551616"},
     0,
     "--seed: expected an integer in [0, 2^64 - 1], got '18446744073709551616'"},
    {TB, {"--seed", "0x10"}, 0, "--seed: expected an integer, got '0x10'"},
    {TB, {"--seed", "1e3"}, 0, "--seed: expected an integer, got '1e3'"},
    {TB, {"--cg-max", "0"}, 0, "--cg-max: expected an integer in [1, 2147483647], got '0'"},
    {TB,
     {"--cg-max", "2147483648"},
     0,
     "--cg-max: expected an integer in [1, 2147483647], got '2147483648'"},
    {TB, {"--cg-max", "1.5"}, 0, "--cg-max: expected an integer, got '1.5'"},
    {TB, {"--steps", "1e3"}, 0, "--steps: expected an integer, got '1e3'"},
    {TB, {"--steps", "0x10"}, 0, "--steps: expected an integer, got '0x10'"},
    {TB, {"--steps", "1x"}, 0, "--steps: expected an integer, got '1x'"},
    {TB, {"--steps", " 1"}, 0, "--steps: expected an integer, got ' 1'"},
    {TB, {"--steps", "--"}, 0, "--steps: expected an integer, got '--'"},
    {TB, {"--steps"}, 1, "--steps: missing value"},
    /* reals: decimal notation, finite, then the range */
    {TB, {"--sketch-ratio", "0.5"}, 0, "--sketch-ratio: expected a number >= 1, got '0.5'"},
    {TB, {"--sketch-ratio", "1e999"}, 0, "--sketch-ratio: expected a number >= 1, got '1e999'"},
    {TB, {"--sketch-ratio", "inf"}, 0, "--sketch-ratio: expected a number, got 'inf'"},
    {TB, {"--sketch-ratio", "4x"}, 0, "--sketch-ratio: expected a number, got '4x'"},
    {TB, {"--sketch-ratio", "0x10"}, 0, "--sketch-ratio: expected a number, got '0x10'"},
    {TB, {"--cg-tol", "2"}, 0, "--cg-tol: expected a number > 0 and < 1, got '2'"},
    {TB, {"--cg-tol", "nan"}, 0, "--cg-tol: expected a number, got 'nan'"},
    {TB, {"--cg-tol=0"}, 0, "--cg-tol: expected a number > 0 and < 1, got '0'"},
    /* strings */
    {TEP, {"--data="}, 0, "--data: expected a data SPEC, got ''"},
    {TEP, {"--targets", "''"}, 0, "--targets: expected a value, got ''"},
    {TEP, {"--data"}, 1, "--data: missing value"},
    /* what is not an option of the command */
    {ALL, {"--help=x"}, 0, "--help: takes no value, got 'x'"},
    {ALL, {"--bogus"}, 0, UNKNOWN("--bogus")},
    {ALL, {"--bogus=1"}, 0, UNKNOWN("--bogus")},
    {ALL, {"-x"}, 0, UNKNOWN("-x")},
    {ALL, {"stray"}, 0, "unexpected argument 'stray' (try 'sketchgn CMD --help')"},
};

static const char *command_name(char c) {
  return c == 'T' ? "train" : c == 'E' ? "eval" : c == 'P' ? "predict" : "bench";
}

/* The error line of `cmd args...` (with the sentinel after the flag unless c->last), the command
 * name replaced by CMD. */
static void run_case(const flag_case *c, const char *cmd, char *got, size_t cap) {
  const char *args[8];
  int n = 0;
  args[n++] = cmd;
  for (int i = 0; i < 3 && c->args[i][0]; i++)
    args[n++] = strcmp(c->args[i], "''") == 0 ? "" : c->args[i];
  if (!c->last) args[n++] = SENTINEL;
  args[n] = NULL;
  run_result r = cli_run(cli_bin(), args, 0);
  cr_assert_eq(r.status, 2, "%s %s: status %d, stderr: %s", cmd, c->args[0], r.status, r.err);
  cr_assert_str_empty(r.out, "%s %s: wrote to stdout: %s", cmd, c->args[0], r.out);
  cr_assert_eq(count_lines(r.err), 1, "%s %s: not one line: %s", cmd, c->args[0], r.err);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "sketchgn %s: ", cmd);
  cr_assert(strncmp(r.err, prefix, strlen(prefix)) == 0, "%s", r.err);
  /* the message without the prefix and the newline, the command's name as CMD */
  const char *msg = r.err + strlen(prefix);
  size_t len = strcspn(msg, "\n"), o = 0;
  for (size_t i = 0; i < len && o + 4 < cap;) {
    if (strncmp(msg + i, cmd, strlen(cmd)) == 0 && i >= 9 &&
        strncmp(msg + i - 9, "sketchgn ", 9) == 0) {
      memcpy(got + o, "CMD", 3);
      o += 3;
      i += strlen(cmd);
    } else {
      got[o++] = msg[i++];
    }
  }
  got[o] = '\0';
  run_free(&r);
}

ParameterizedTestParameters(cli_opts, shared_flag) {
  return cr_make_param_array(flag_case, flag_cases, sizeof flag_cases / sizeof flag_cases[0]);
}

ParameterizedTest(flag_case *c, cli_opts, shared_flag, .timeout = 60) {
  char shown[160] = "";
  for (int i = 0; i < 3 && c->args[i][0]; i++) {
    strncat(shown, " ", sizeof shown - strlen(shown) - 1);
    strncat(shown, c->args[i], sizeof shown - strlen(shown) - 1);
  }
  const char *want = c->want[0] ? c->want : UNKNOWN(SENTINEL);
  char first[200] = "";
  for (const char *k = c->cmds; *k; k++) {
    const char *cmd = command_name(*k);
    char got[200];
    run_case(c, cmd, got, sizeof got);
    cr_expect_str_eq(got, (char *)want, "sketchgn %s%s: got '%s', want '%s'", cmd, shown, got,
                     want);
    if (k == c->cmds) snprintf(first, sizeof first, "%s", got);
    else
      cr_expect_str_eq(got, first, "sketchgn %s%s differs from %s: '%s' vs '%s'", cmd, shown,
                       command_name(c->cmds[0]), got, first);
  }
}

/* Where the commands differ on purpose: bench's --steps counts timed repetitions (at least one),
 * train's the steps of a run (0: evaluate only); bench's --device and --solver are lists. */
Test(cli_opts, documented_differences) {
  flag_case steps0 = {"T", {"--steps", "0"}, 0, ""};
  flag_case list_t = {"T", {"--device", "cpu,gpu"}, 0, ""};
  char got[200];
  run_case(&steps0, "train", got, sizeof got);
  cr_expect_str_eq(got, UNKNOWN(SENTINEL));
  run_case(&steps0, "bench", got, sizeof got);
  cr_expect_str_eq(got, "--steps: expected an integer in [1, 1000000], got '0'");
  run_case(&list_t, "bench", got, sizeof got);
  cr_expect_str_eq(got, UNKNOWN(SENTINEL));
  run_case(&list_t, "train", got, sizeof got);
  cr_expect_str_eq(got, "--device: expected one of auto|cpu|gpu, got 'cpu,gpu'");
  flag_case bad_item = {"B", {"--device", "cpu,tpu"}, 0, ""};
  run_case(&bad_item, "bench", got, sizeof got);
  cr_expect_str_eq(got, "--device: expected one of auto|cpu|gpu, got 'tpu' in 'cpu,tpu'");
  flag_case bad_n = {"B", {"--n", "12,"}, 0, ""};
  run_case(&bad_n, "bench", got, sizeof got);
  cr_expect_str_eq(got, "--n: expected an integer, got '' in '12,'");
}

/* ---- the flags do what they say: tiny real runs with abbreviated and '=' spellings ---- */

Test(cli_opts, abbreviations_reach_the_run, .timeout = 120) {
  char model[256], log[256];
  temp_path(model, sizeof model);
  temp_path(log, sizeof log);
  run_result r = cli_run(cli_bin(), (const char *[]){"train",     "--dat=synth:n=16,d=2,seed=1",
                                                     "--wid",     "8",
                                                     "--steps",   "+1",
                                                     "--dev=cpu", "--sol",
                                                     "gn-cg",     "--cg-m",
                                                     "+5",        "--max",
                                                     "64M",       "--chunk",
                                                     "+0",        "--quiet",
                                                     "--log-js",  log,
                                                     "--sav",     model,
                                                     NULL},
                         0);
  cr_assert_eq(r.status, 0, "%s", r.err);
  run_free(&r);
  char *text = slurp_path(log, NULL);
  cr_assert_not_null(text);
  cr_expect(strstr(text, "\"solver\":\"gn-cg\"") && strstr(text, "\"device\":\"cpu\""), "%s", text);
  free(text);
  unlink(log);

  const char *cmds[] = {"eval", "predict"};
  for (int i = 0; i < 2; i++) {
    r = cli_run(cli_bin(),
                (const char *[]){cmds[i], "--mod", model, "--data=synth:n=16,d=2,seed=1", "--dev",
                                 "cpu", "--max-memory=64M", "--chunk-neurons", "+0", NULL},
                0);
    cr_expect_eq(r.status, 0, "%s: %s", cmds[i], r.err);
    cr_expect(strlen(r.out) > 0, "%s wrote nothing", cmds[i]);
    run_free(&r);
  }
  unlink(model);

  r = cli_run(cli_bin(), (const char *[]){"bench",     "--n",     "16",       "--m=8",    "--d",
                                          "2",         "--steps", "+1",       "--war",    "0",
                                          "--dev=cpu", "--sol",   "gn-cg,gd", "--cg-max", "+5",
                                          "--seed",    "+3",      "--chunk",  "0",        NULL},
              0);
  cr_assert_eq(r.status, 0, "%s", r.err);
  cr_expect(strstr(r.out, "\ngn-cg,cpu,16,2,8,1,") && strstr(r.out, "\ngd,cpu,16,2,8,1,"), "%s",
            r.out);
  run_free(&r);
}

/* Every command's help comes from its table: each line under 100 columns, the number rule
 * stated, and `sketchgn help CMD` the same text. */
Test(cli_opts, help_from_the_tables) {
  const char *cmds[] = {"train", "eval", "predict", "bench", "info"};
  for (int i = 0; i < 5; i++) {
    run_result a = cli_run(cli_bin(), (const char *[]){cmds[i], "--he", NULL}, 0);
    run_result b = cli_run(cli_bin(), (const char *[]){"help", cmds[i], NULL}, 0);
    cr_assert_eq(a.status, 0, "%s: %s", cmds[i], a.err);
    cr_assert_str_eq(a.out, b.out, "%s", cmds[i]);
    cr_expect(strstr(a.out, "-h, --help"), "%s", a.out);
    if (i < 4) cr_expect(strstr(a.out, "unique prefix"), "%s", a.out);
    for (const char *p = a.out; *p;) {
      size_t len = strcspn(p, "\n");
      cr_expect(len < 100, "%s: a help line of %zu columns: %.*s", cmds[i], len, (int)len, p);
      p += len + (p[len] == '\n');
    }
    run_free(&a);
    run_free(&b);
  }
  run_result r = cli_run(cli_bin(), (const char *[]){"--help", NULL}, 0);
  for (int i = 0; i < 5; i++) cr_expect(strstr(r.out, cmds[i]), "%s", r.out);
  run_free(&r);
}

/* ---- the parser itself ---- */

typedef struct all_kinds {
  int64_t i64;
  int i32;
  uint64_t u64;
  double real, size;
  int choice, flag, line;
  const char *str;
  opt_list ints, names;
  sgn_options opt;
} all_kinds;

static const char *const onoff[] = {"off", "on", NULL};
static const opt_spec s_i64 = {
    .name = "count", .kind = OPT_INT, .arg = "N", .lo = -5, .hi = INT64_MAX, .help = "an int64"};
static const opt_spec s_i32 = {.name = "cap",
                               .kind = OPT_INT,
                               .arg = "N",
                               .lo = 1,
                               .hi = INT_MAX,
                               .narrow = 1,
                               .help = "an int"};
static const opt_spec s_real = {.name = "rate",
                                .kind = OPT_REAL,
                                .arg = "R",
                                .rlo = 0,
                                .rhi = 1,
                                .lo_open = 1,
                                .help = "a real in (0, 1]"};
static const opt_spec s_line = {
    .name = "line", .kind = OPT_CHOICE, .local = onoff, .help = "a local list"};
static const opt_spec s_flag = {.name = "verbose", .kind = OPT_FLAG, .help = "a flag"};
static const opt_spec s_str = {
    .name = "name", .kind = OPT_STRING, .arg = "S", .what = "a name", .help = "a string"};
static const opt_spec s_even = {.name = "even",
                                .kind = OPT_INT,
                                .arg = "M",
                                .lo = 2,
                                .hi = 1000,
                                .even = 1,
                                .help = "even values"};

typedef struct parsed {
  all_kinds v;
  opt_entry opts[12];
  opt_cmd cmd;
} parsed;

static void parsed_init(parsed *p) {
  memset(p, 0, sizeof *p);
  p->v.opt = sgn_options_default();
  p->v.str = "default";
  opt_entry e[12] = {
      {.spec = &s_i64, .dst = &p->v.i64},
      {.spec = &s_i32, .dst = &p->v.i32},
      {.spec = &opt_seed, .dst = &p->v.u64},
      {.spec = &s_real, .dst = &p->v.real},
      {.spec = &opt_max_memory, .dst = &p->v.size},
      {.spec = &opt_device, .dst = &p->v.choice},
      {.spec = &s_line, .dst = &p->v.line},
      {.spec = &s_flag, .dst = &p->v.flag},
      {.spec = &s_str, .dst = &p->v.str},
      {.spec = &s_even, .dst = &p->v.ints, .list = 3},
      {.spec = &opt_solver, .dst = &p->v.names, .list = OPT_LIST_MAX},
      {.spec = &opt_refresh, .dst = &p->v.opt},
  };
  memcpy(p->opts, e, sizeof e);
  p->cmd = (opt_cmd){"t", "usage: t\n", NULL, p->opts, 12};
}

static int parse(parsed *p, const char *const *words) {
  char *argv[32] = {"t"};
  int argc = 1;
  for (; words[argc - 1]; argc++) argv[argc] = (char *)words[argc - 1];
  return opts_parse(&p->cmd, argc, argv);
}

Test(opts_unit, stores_every_kind) {
  parsed p;
  parsed_init(&p);
  int rc = parse(&p, (const char *[]){
                         "--count", "+12",       "--cap=7",      "--seed",  "18446744073709551615",
                         "--rate",  "5e-1",      "--max-memory", "1.5G",    "--dev",
                         "gpu",     "--line=on", "--verbose",    "--name",  "x",
                         "--even",  "2,4,1000",  "--solver",     "gd,auto", "--precond-refresh",
                         "+7",      "--count",   "-5",           NULL});
  cr_assert_eq(rc, OPTS_RUN);
  cr_expect_eq(p.v.i64, -5, "the last --count wins");
  cr_expect_eq(p.opts[0].seen, 2);
  cr_expect_eq(p.v.i32, 7);
  cr_expect_eq(p.v.u64, UINT64_MAX);
  cr_expect_eq(p.v.real, 0.5);
  cr_expect_eq(p.v.size, 1.5 * 1073741824.0);
  cr_expect_eq(p.v.choice, SGN_DEVICE_GPU);
  cr_expect_eq(p.v.line, 1);
  cr_expect_eq(p.v.flag, 1);
  cr_expect_str_eq(p.v.str, "x");
  cr_expect_eq(p.v.ints.count, 3);
  cr_expect(p.v.ints.v[0] == 2 && p.v.ints.v[1] == 4 && p.v.ints.v[2] == 1000);
  cr_expect_eq(p.v.names.count, 2);
  cr_expect(p.v.names.v[0] == SGN_SOLVER_GD && p.v.names.v[1] == SGN_SOLVER_AUTO);
  cr_expect(p.v.opt.refresh == SGN_REFRESH_EVERY && p.v.opt.refresh_every == 7);
  cr_expect_eq(opts_find(&p.cmd, &opt_seed)->seen, 1);
  cr_expect_null(opts_find(&p.cmd, &opt_data));
}

Test(opts_unit, help_and_double_dash) {
  parsed p;
  parsed_init(&p);
  cr_expect_eq(parse(&p, (const char *[]){"--count", "1", "-h", "--bogus", NULL}), OPTS_HELP);
  cr_expect_eq(parse(&p, (const char *[]){"--he", NULL}), OPTS_HELP);
  cr_expect_eq(parse(&p, (const char *[]){"--verbose", "--", NULL}), OPTS_RUN);
  cr_expect_eq(parse(&p, (const char *[]){"--precond-refresh", "auto", NULL}), OPTS_RUN);
  cr_expect_eq(p.v.opt.refresh, SGN_REFRESH_AUTO);
  /* an exact name wins over the longer names it is a prefix of */
  cr_expect_eq(parse(&p, (const char *[]){"--line", "off", NULL}), OPTS_RUN);
}

/* Errors: the exit status, and one line on stderr in the one wording. */
Test(opts_unit, error_lines, .init = cr_redirect_stderr) {
  parsed p;
  parsed_init(&p);
  const char *const *cases[] = {
      (const char *[]){"--even", "2,3", NULL},
      (const char *[]){"--even", "2,4,6,8", NULL},
      (const char *[]){"--cap", "2147483648", NULL},
      (const char *[]){"--count", "-6", NULL},
      (const char *[]){"--rate", "0", NULL},
      (const char *[]){"--line", "maybe", NULL},
      (const char *[]){"--name=", NULL},
      (const char *[]){"--verbose=1", NULL},
      (const char *[]){"--c", "1", NULL},
      (const char *[]){"--", "x", NULL},
      (const char *[]){"--=1", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    cr_expect_eq(parse(&p, cases[i]), OPTS_EXIT_USAGE, "case %zu", i);
  fflush(stderr);
  cr_assert_stderr_eq_str(
      "sketchgn t: --even: expected an even integer in [2, 1000], got '3' in '2,3'\n"
      "sketchgn t: --even: expected at most 3 values, got '2,4,6,8'\n"
      "sketchgn t: --cap: expected an integer in [1, 2147483647], got '2147483648'\n"
      "sketchgn t: --count: expected an integer >= -5, got '-6'\n"
      "sketchgn t: --rate: expected a number > 0 and <= 1, got '0'\n"
      "sketchgn t: --line: expected one of off|on, got 'maybe'\n"
      "sketchgn t: --name: expected a name, got ''\n"
      "sketchgn t: --verbose: takes no value, got '1'\n"
      "sketchgn t: --c: ambiguous option (could be --count, --cap)\n"
      "sketchgn t: unexpected argument 'x' (try 'sketchgn t --help')\n"
      "sketchgn t: --: unknown option (try 'sketchgn t --help')\n");
}

/* One number rule: a sign and decimal digits; well formed but out of range says the range. */
Test(opts_unit, integer_rule) {
  char msg[200];
  int64_t v = 0;
  const char *good[] = {"0", "+1", "-0", "007", "9223372036854775807"};
  const int64_t want[] = {0, 1, 0, 7, INT64_MAX};
  for (int i = 0; i < 5; i++) {
    cr_expect_eq(opts_int(good[i], 0, INT64_MAX, &v, msg, sizeof msg), 0, "%s: %s", good[i], msg);
    cr_expect_eq(v, want[i], "%s", good[i]);
  }
  const char *bad[] = {"", "+", "-", "1e3", "0x10", " 1", "1 ", "1.0", "1_000", "++1"};
  for (int i = 0; i < 10; i++) {
    cr_expect_eq(opts_int(bad[i], 0, INT64_MAX, &v, msg, sizeof msg), -1, "'%s'", bad[i]);
    cr_expect(strncmp(msg, "expected an integer, got", 24) == 0, "'%s': %s", bad[i], msg);
  }
  cr_expect_eq(opts_int("9223372036854775808", 0, INT64_MAX, &v, msg, sizeof msg), -1);
  cr_expect_str_eq(msg, "expected an integer >= 0, got '9223372036854775808'");
}

/* The help prints each option once with its default read from the destination. */
Test(opts_unit, help_defaults) {
  parsed p;
  parsed_init(&p);
  p.v.i64 = 42;
  p.v.choice = SGN_DEVICE_CPU;
  p.v.ints = (opt_list){2, {8, 16}};
  p.v.names = (opt_list){1, {SGN_SOLVER_GN_CG}};
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  cr_assert_not_null(f);
  opts_help(f, &p.cmd);
  fclose(f);
  const char *want[] = {
      "usage: t\n",     "--count N",      "(default: 42)",      "--device auto|cpu|gpu",
      "(default: cpu)", "--even M,...",   "(default: 8,16)",    "(default: gn-cg)",
      "--verbose",      "(default: off)", "(default: default)", "-h, --help"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    cr_expect(strstr(text, want[i]), "help lacks '%s':\n%s", want[i], text);
  free(text);
}
