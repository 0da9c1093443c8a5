/* test_bench.c — `sketchgn bench` at the command line (the binary from SKETCHGN_BIN, default
 * build/sketchgn): the CSV's columns and rows for a tiny grid, --kernels, one-line usage errors
 * with exit status 2; and the cost model behind --solver auto, by its properties (which solver
 * wins where, memory, monotone costs), never by timings. */
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
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "cli_run.h"
#include "costmodel.h"
#include "session.h"
#include "sketchgn.h"

/* ---- running the binary (cli_run.h) ---- */

/* `sketchgn bench args...` (NULL-terminated), stdout and stderr captured. */
static run_result run_bench(const char *const *args) {
  const char *argv[64] = {"bench"};
  int argc = 1;
  for (int i = 0; args[i] && argc < 63; i++) argv[argc++] = args[i];
  argv[argc] = NULL;
  return cli_run(cli_bin(), argv, 0);
}

static void check_binary(void) {
  cr_assert(access(cli_bin(), X_OK) == 0, "no executable at %s (make, or set SKETCHGN_BIN)",
            cli_bin());
}

/* Splits a CSV line (no quoting) in place; returns the field count. */
static int split(char *line, char **fields, int cap) {
  int n = 0;
  for (char *p = line;; p++) {
    if (n < cap) fields[n] = p;
    n++;
    p = strchr(p, ',');
    if (!p) break;
    *p = '\0';
  }
  return n;
}

static const char *const step_columns =
    "solver,device,n,d,m,k,s,step_ms,step_ms_min,step_ms_max,forward_ms,sketch_ms,precond_ms,"
    "solve_ms,update_ms,cg_iters,loss_ratio,flops,gflops,precision,product_precision";

/* ---- the CSV ---- */

TestSuite(bench_cli, .init = check_binary, .timeout = 120);

Test(bench_cli, tiny_grid_writes_the_columns_and_one_row_per_configuration) {
  char path[256];
  temp_path(path, sizeof path);
  run_result r = run_bench((const char *[]){"--n", "32,48", "--m", "64", "--d", "3", "--solver",
                                            "gn-exact,gn-sketch,gn-gram,auto", "--device", "cpu",
                                            "--steps", "3", "--warmup", "1", "--csv", path, NULL});
  cr_assert_eq(r.status, 0, "status %d, stderr: %s", r.status, r.err);
  cr_assert_str_empty(r.out, "the CSV went to stdout: %s", r.out);
  /* one progress line per configuration, and auto's reason */
  cr_assert_eq(count_lines(r.err), 8 + 2, "stderr: %s", r.err);
  cr_assert(strstr(r.err, "[8/8]"), "%s", r.err);
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  cr_assert(access(tmp, F_OK) != 0, "%s was left behind", tmp);

  char *csv = slurp_path(path, NULL);
  cr_assert_not_null(csv);
  cr_assert_eq(count_lines(csv), 1 + 8, "%s", csv);
  char *save = NULL, *line = strtok_r(csv, "\n", &save);
  cr_assert_str_eq(line, step_columns);
  int rows = 0, autos = 0;
  while ((line = strtok_r(NULL, "\n", &save))) {
    char *f[32];
    cr_assert_eq(split(line, f, 32), 21, "row: %s", line);
    cr_assert_str_eq(f[19], "fp64");
    cr_assert_str_eq(f[20], "fp32");
    rows++;
    autos += strncmp(f[0], "auto:", 5) == 0;
    cr_assert_str_eq(f[1], "cpu");
    cr_assert(strcmp(f[2], "32") == 0 || strcmp(f[2], "48") == 0);
    cr_assert_str_eq(f[3], "3");
    cr_assert_str_eq(f[4], "64");
    cr_assert_str_eq(f[5], "1");
    long n = strtol(f[2], NULL, 10), s = strtol(f[6], NULL, 10);
    cr_assert_eq(s,
                 strcmp(f[0], "gn-sketch") == 0 || strcmp(f[0], "auto:gn-sketch") == 0 ? 4 * n : 0,
                 "s = %ld for %s", s, f[0]);
    double med = atof(f[7]), lo = atof(f[8]), hi = atof(f[9]);
    cr_assert(lo > 0 && lo <= med && med <= hi, "min %g median %g max %g", lo, med, hi);
    double phases = 0;
    for (int i = 10; i <= 14; i++) phases += atof(f[i]);
    cr_assert(phases <= hi * 1.01 + 0.05, "phases %g > step %g", phases, hi);
    double ratio = atof(f[16]);
    cr_assert(ratio > 0 && ratio < 1, "a Gauss-Newton step lowers the loss: ratio %g", ratio);
    cr_assert(atof(f[17]) > 0 && atof(f[18]) > 0, "flops %s gflops %s", f[17], f[18]);
    if (strstr(f[0], "gn-sketch") || strstr(f[0], "gn-gram"))
      cr_assert(atof(f[15]) >= 1, "PCG iterations %s", f[15]);
  }
  cr_assert_eq(rows, 8);
  cr_assert_eq(autos, 2);
  free(csv);
  unlink(path);
  run_free(&r);
}

/* --largest-n: one row per (k, solver), a second for gn-gram's separate outputs where the width
 * allows their blocks (m a multiple of 64 k); more outputs never fit more samples. */
Test(bench_cli, max_n_writes_one_row_per_solver) {
  run_result r = run_bench((const char *[]){"--largest-n", "--max-memory", "1G", "--m", "1280",
                                            "--d", "4", "--k", "1,10", "--solver",
                                            "gn-exact,gn-gram", "--device", "cpu", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cr_assert_eq(count_lines(r.out), 1 + 5, "%s", r.out);
  char *save = NULL, *line = strtok_r(r.out, "\n", &save);
  cr_assert_str_eq(line, "solver,device,d,m,k,outputs,memory,max_n,bytes");
  long exact1 = 0, exact10 = 0, separate = 0;
  while ((line = strtok_r(NULL, "\n", &save))) {
    char *f[16];
    cr_assert_eq(split(line, f, 16), 9, "row: %s", line);
    const long k = strtol(f[4], NULL, 10), n = strtol(f[7], NULL, 10);
    const double bytes = atof(f[8]);
    cr_assert_gt(n, 0, "%s", line);
    cr_assert(bytes > 0 && bytes <= 0.85 * 1073741824.0, "%s", line);
    if (strcmp(f[0], "gn-exact") == 0 && k == 1) exact1 = n;
    if (strcmp(f[0], "gn-exact") == 0 && k == 10) exact10 = n;
    if (strcmp(f[5], "separate") == 0) separate = n;
  }
  cr_assert(exact10 > 0 && exact10 < exact1, "gn-exact: k = 10 %ld, k = 1 %ld", exact10, exact1);
  cr_assert(separate > 0 && separate < exact1, "gn-gram separate %ld", separate);
  run_free(&r);
  const char *const bad[][8] = {{"--largest-n", "--device", "cpu", NULL},
                                {"--largest-n", "--max-memory", "1G", "--n", "64", NULL},
                                {"--largest-n", "--max-memory", "1G", "--solver", "auto", NULL}};
  for (int i = 0; i < 3; i++) {
    r = run_bench(bad[i]);
    cr_expect_eq(r.status, 2, "case %d: status %d, stderr: %s", i, r.status, r.err);
    cr_expect(strstr(r.err, "--largest-n"), "case %d: %s", i, r.err);
    run_free(&r);
  }
}

Test(bench_cli, csv_on_stdout_without_csv_flag) {
  run_result r = run_bench((const char *[]){"--n", "24", "--m", "32", "--d", "2", "--solver",
                                            "gd,adam,gn-cg", "--device", "cpu", "--steps", "1",
                                            "--warmup", "0", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cr_assert_eq(count_lines(r.out), 4, "%s", r.out);
  cr_assert(strncmp(r.out, step_columns, strlen(step_columns)) == 0, "%s", r.out);
  cr_assert(strstr(r.out, "\ngd,cpu,24,2,32,1,0,"), "%s", r.out);
  cr_assert(strstr(r.out, "\nadam,cpu,"), "%s", r.out);
  cr_assert(strstr(r.out, "\ngn-cg,cpu,"), "%s", r.out);
  run_free(&r);
}

Test(bench_cli, kernels_report_ratios) {
  run_result r = run_bench((const char *[]){"--kernels", "--n", "64", "--m", "128", "--d", "4",
                                            "--device", "cpu", "--reps", "3", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cr_assert_eq(count_lines(r.out), 6, "%s", r.out);
  char *save = NULL, *line = strtok_r(r.out, "\n", &save);
  cr_assert_str_eq(line, "op,device,n,d,m,k,op_ms,ref_ms,ratio,op_gflops,ref_gflops,ref");
  const char *ops[] = {"jvp", "vjp", "hadamard", "r_inverse", "apply"},
             *refs[] = {"sgemm", "sgemm", "copy", "cholesky", "rtr_solve"};
  for (int i = 0; i < 5; i++) {
    line = strtok_r(NULL, "\n", &save);
    cr_assert_not_null(line);
    char *f[16];
    cr_assert_eq(split(line, f, 16), 12, "%s", line);
    cr_assert_str_eq(f[0], ops[i]);
    cr_assert_str_eq(f[11], refs[i]);
    double op = atof(f[6]), ref = atof(f[7]), ratio = atof(f[8]);
    cr_assert(op > 0 && ref > 0 && ratio > 0, "%s", line);
    cr_assert(fabs(ratio - ref / op) <= 0.01 * ratio, "ratio %g vs %g / %g", ratio, ref, op);
  }
  run_free(&r);
}

/* --gram adds the Gram's row, against an SSYRK of the mask's shape */
Test(bench_cli, kernels_gram_row) {
  run_result r = run_bench((const char *[]){"--kernels", "--gram", "--n", "64", "--m", "128", "--d",
                                            "4", "--device", "cpu", "--reps", "3", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cr_assert_eq(count_lines(r.out), 7, "%s", r.out);
  const char *last = strstr(r.out, "\ngram,cpu,64,4,128,1,");
  cr_assert_not_null(last, "%s", r.out);
  char *f[16], line[256];
  snprintf(line, sizeof line, "%s", last + 1);
  line[strcspn(line, "\n")] = 0;
  cr_assert_eq(split(line, f, 16), 12, "%s", line);
  cr_assert_str_eq(f[11], "ssyrk");
  double op = atof(f[6]), ref = atof(f[7]), ratio = atof(f[8]);
  cr_assert(op > 0 && ref > 0 && fabs(ratio - ref / op) <= 0.01 * ratio, "%s", line);
  run_free(&r);
}

/* The --kernels row of out that starts with op ("\n" name and shape): 12 fields, its reference
 * ref, ratio = ref ms / op ms and GFLOP/s = flops / (op ms 1e6). */
static void check_kernel_row(const char *out, const char *op, const char *ref, double flops) {
  const char *at = strstr(out, op);
  cr_assert_not_null(at, "%s", out);
  char *f[16], line[256];
  snprintf(line, sizeof line, "%s", at + 1);
  line[strcspn(line, "\n")] = 0;
  cr_assert_eq(split(line, f, 16), 12, "%s", line);
  cr_assert_str_eq(f[11], ref);
  double ms = atof(f[6]), ref_ms = atof(f[7]), ratio = atof(f[8]), gf = atof(f[9]);
  cr_assert(ms > 0 && ref_ms > 0 && fabs(ratio - ref_ms / ms) <= 0.01 * ratio, "%s", line);
  cr_assert(fabs(gf - flops / (ms * 1e6)) <= 0.01 * gf, "flops: %s", line);
}

/* --precision LIST: gn-sketch runs once per precision (its column says which), the solvers that
 * form no sketch Gram once; with --kernels, the sketch Gram at each precision but fp64 against
 * fp64, s = 4 n, n (n + 1) s flops */
Test(bench_cli, precision_rows) {
  run_result r = run_bench((const char *[]){
      "--n", "32", "--m", "64", "--d", "3", "--solver", "gn-sketch,gn-exact", "--precision",
      "fp64,tf32,bf16", "--device", "cpu", "--steps", "1", "--warmup", "0", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cr_assert_eq(count_lines(r.out), 1 + 4, "%s", r.out);
  cr_assert(strstr(r.out, "\ngn-sketch,cpu,32,3,64,1,128,") && strstr(r.err, "[4/4]"), "%s%s",
            r.out, r.err);
  const char *want[] = {",fp64,fp32\n", ",tf32,fp32\n", ",bf16,fp32\n"};
  for (int i = 0; i < 3; i++) cr_assert(strstr(r.out, want[i]), "%s: %s", want[i], r.out);
  run_free(&r);

  r = run_bench((const char *[]){"--kernels", "--n", "64", "--m", "128", "--d", "4", "--device",
                                 "cpu", "--reps", "2", "--precision", "fp32,bf16", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cr_assert_eq(count_lines(r.out), 8, "%s", r.out);
  const char *ops[] = {"\nsketch_gram:fp32,cpu,64,4,128,1,", "\nsketch_gram:bf16,cpu,64,4,128,1,"};
  for (int i = 0; i < 2; i++)
    check_kernel_row(r.out, ops[i], "sketch_gram:fp64", 64.0 * 65.0 * 256.0);
  run_free(&r);
}

/* --product-precision LIST: every solver runs once per value (its column says which); with
 * --kernels, J v and J^T g at each value but fp32 against fp32, 2 n m (d + k) flops */
Test(bench_cli, product_precision_rows) {
  run_result r = run_bench((const char *[]){
      "--n", "32", "--m", "64", "--d", "3", "--solver", "gn-sketch,gn-exact", "--product-precision",
      "fp32,bf16", "--device", "cpu", "--steps", "1", "--warmup", "0", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cr_assert_eq(count_lines(r.out), 1 + 4, "%s", r.out);
  cr_assert(strstr(r.err, "[4/4]"), "%s", r.err);
  const char *want[] = {"\ngn-sketch,cpu,32,3,64,1,128,", ",fp64,fp32\n", ",fp64,bf16\n",
                        "\ngn-exact,cpu,32,3,64,1,0,"};
  for (int i = 0; i < 4; i++) cr_assert(strstr(r.out, want[i]), "%s: %s", want[i], r.out);
  run_free(&r);

  r = run_bench((const char *[]){"--kernels", "--n", "64", "--m", "128", "--d", "4", "--device",
                                 "cpu", "--reps", "2", "--product-precision", "fp32,tf32", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  const char *ops[] = {"\njvp:tf32,cpu,64,4,128,1,", "\nvjp:tf32,cpu,64,4,128,1,"};
  const char *refs[] = {"jvp:fp32", "vjp:fp32"};
  for (int i = 0; i < 2; i++) check_kernel_row(r.out, ops[i], refs[i], 2.0 * 64 * 128 * 5);
  cr_assert(!strstr(r.out, "jvp:fp32,"), "%s", r.out);
  run_free(&r);
}

/* ---- usage errors: exit 2, one line naming the flag ---- */

/* Fixed arrays, not pointers: Criterion may run each test in a fresh process image. */
typedef struct bad_case {
  char args[3][40]; /* after "bench", ended by an empty string */
  char needle[24];  /* the message names this */
} bad_case;

ParameterizedTestParameters(bench_cli, bad_flags) {
  static bad_case cases[] = {
      {{"--n", "0"}, "--n"},
      {{"--n", "12,abc"}, "--n"},
      {{"--n", "12,"}, "--n"},
      {{"--m", "63"}, "even"},
      {{"--d", "-3"}, "--d"},
      {{"--solver", "gn-fast"}, "--solver"},
      {{"--device", "tpu"}, "--device"},
      {{"--steps", "0"}, "--steps"},
      {{"--warmup", "x"}, "--warmup"},
      {{"--sketch-ratio", "0.5"}, "--sketch-ratio"},
      {{"--cg-tol", "2"}, "--cg-tol"},
      {{"--precond-refresh", "sometimes"}, "--precond-refresh"},
      {{"--bogus"}, "--bogus"},
      {{"--kernels=1"}, "--kernels"},
      {{"--n"}, "--n"},
      {{"extra"}, "extra"},
      {{"--csv", "/nonexistent-dir/out.csv"}, "--csv"},
  };
  return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, bench_cli, bad_flags) {
  const char *args[4] = {0};
  int n = 0;
  for (; n < 3 && c->args[n][0]; n++) args[n] = c->args[n];
  args[n] = NULL;
  run_result r = run_bench(args);
  cr_assert_eq(r.status, 2, "%s: status %d, stderr: %s", c->args[0], r.status, r.err);
  cr_assert_eq(count_lines(r.err), 1, "%s: not one line: %s", c->args[0], r.err);
  cr_assert(strncmp(r.err, "sketchgn bench: ", 16) == 0, "%s", r.err);
  cr_assert(strstr(r.err, c->needle), "%s: message does not name %s: %s", c->args[0], c->needle,
            r.err);
  cr_assert_str_empty(r.out);
  run_free(&r);
}

Test(bench_cli, help) {
  run_result r = run_bench((const char *[]){"--help", NULL});
  cr_assert_eq(r.status, 0);
  cr_assert(strstr(r.out, "usage: sketchgn bench"), "%s", r.out);
  for (const char *p = r.out; *p;) {
    size_t len = strcspn(p, "\n");
    cr_assert(len < 100, "help line of %zu columns: %.*s", len, (int)len, p);
    p += len + (p[len] == '\n');
  }
  run_free(&r);
}

/* ---- the cost model ---- */

static sgn_options defaults(void) { return sgn_options_default(); }

/* The candidates' memory comes from the backend that would run them: the CPU's, here. */
static sgn_backend *cpu;
static void cpu_open(void) {
  cpu = sgn_backend_cpu_open();
  cr_assert_not_null(cpu, "sgn_backend_cpu_open failed");
}
static void cpu_close(void) { sgn_backend_close(cpu); }
TestSuite(costmodel, .init = cpu_open, .fini = cpu_close);

/* The fewest bytes of a session of `solver` on the CPU backend. */
static double mem_bytes(sgn_solver solver, sgn_dims dm, const sgn_options *opt) {
  sgn_options o = *opt;
  o.solver = solver;
  return (double)sgn_session_mem_bytes_min(cpu, dm, &o);
}

/* --solver auto at the rates of `device`, each candidate's memory counted on the CPU backend. */
static sgn_solver choose(sgn_dims dm, const sgn_options *o, double mem_available,
                         const char *device, char *why, size_t len) {
  double need[SGN_COSTMODEL_CANDIDATES];
  for (int i = 0; i < SGN_COSTMODEL_CANDIDATES; i++)
    need[i] = mem_bytes(sgn_costmodel_candidates[i], dm, o);
  const sgn_cost_rates r = sgn_costmodel_rates(device);
  return sgn_costmodel_choose(dm, o, &r, need, mem_available, why, len);
}

Test(costmodel, tiny_n_huge_m_picks_exact) {
  sgn_options o = defaults();
  char why[400];
  sgn_dims dm = {64, 8, 1 << 20, 1, 0, 0};
  cr_assert_eq(choose(dm, &o, 64e9, "cpu", why, sizeof why), SGN_SOLVER_GN_EXACT, "%s", why);
  cr_assert(strncmp(why, "gn-exact: ", 10) == 0, "%s", why);
  cr_assert_null(strchr(why, '\n'));
}

/* k outputs: gn-exact forms the (nk)^2 Gram with k(k-1)/2 extra products and factors it in
 * (nk)^3/3; the others keep one n x n factor. */
Test(costmodel, many_outputs_rule_out_exact) {
  sgn_options o = defaults();
  char why[400];
  sgn_dims dm = {1024, 4, 16384, 10, 0, 0};
  sgn_solver s = choose(dm, &o, 64e9, "cpu", why, sizeof why);
  cr_assert_neq(s, SGN_SOLVER_GN_EXACT, "%s", why);
  sgn_cost_rates r = sgn_costmodel_rates("cpu");
  double ex = sgn_costmodel_step_seconds(SGN_SOLVER_GN_EXACT, dm, &o, &r);
  double sk = sgn_costmodel_step_seconds(SGN_SOLVER_GN_SKETCH, dm, &o, &r);
  cr_assert(sk < ex, "gn-sketch %g s vs gn-exact %g s at k = 10", sk, ex);
}

/* The method's asymptotic regime: n >> d, m >> n, large enough that the n^2 m Gram dwarfs
 * the O(n m d) products and the sketch's n^2 s factorization. */
Test(costmodel, method_regime_picks_sketch) {
  sgn_options o = defaults();
  o.refresh = SGN_REFRESH_ALWAYS; /* gn-gram rebuilds too: an exact Gram per step */
  char why[400];
  sgn_dims dm = {1 << 16, 1, (int64_t)1 << 26, 1, 0, 0};
  sgn_solver s = choose(dm, &o, 0, "gpu", why, sizeof why);
  cr_assert_eq(s, SGN_SOLVER_GN_SKETCH, "%s", why);
}

Test(costmodel, memory_excludes_what_does_not_fit) {
  sgn_options o = defaults();
  char why[400];
  sgn_dims dm = {2048, 4, 2048, 10, 0, 0}; /* gn-exact's Gram: (20480)^2 doubles = 3.1 GiB */
  double ex = mem_bytes(SGN_SOLVER_GN_EXACT, dm, &o);
  double gr = mem_bytes(SGN_SOLVER_GN_GRAM, dm, &o);
  cr_assert(ex > 8.0 * 20480 * 20480 && gr < ex / 20, "exact %g gram %g", ex, gr);
  /* room for gn-gram but not gn-exact */
  sgn_solver s = choose(dm, &o, 2 * gr, "cpu", why, sizeof why);
  cr_assert_neq(s, SGN_SOLVER_GN_EXACT, "%s", why);
  cr_assert(strstr(why, "gn-exact") && strstr(why, "does not fit"), "%s", why);
  /* nothing fits: the smallest, said so */
  s = choose(dm, &o, 1e6, "cpu", why, sizeof why);
  cr_assert(strstr(why, "none fits"), "%s", why);
  double mine = mem_bytes(s, dm, &o);
  for (int c = SGN_SOLVER_GN_EXACT; c <= SGN_SOLVER_GN_GRAM; c++)
    if (c != SGN_SOLVER_GN_CG) cr_assert(mine <= mem_bytes((sgn_solver)c, dm, &o), "%s", why);
}

Test(costmodel, reason_fits_the_buffer) {
  sgn_options o = defaults();
  char why[24];
  sgn_dims dm = {256, 8, 4096, 1, 0, 0};
  choose(dm, &o, 1e9, "cpu", why, sizeof why);
  cr_assert_lt(strlen(why), sizeof why);
  choose(dm, &o, 1e9, "cpu", NULL, 0); /* no reason wanted */
}

/* The regime: with fewer trained parameters than targets (m d < n k) auto takes adam and says
 * why, naming the Gauss-Newton estimate it passed over; at m d >= n k (the boundary included)
 * it takes a Gauss-Newton solver and names the regime too. */
Test(costmodel, fewer_parameters_than_targets_picks_adam) {
  sgn_options o = defaults();
  const sgn_cost_rates r = sgn_costmodel_rates("cpu");
  char why[512];
  const sgn_dims under[] = {
      {20000, 16, 1024, 1, 0, 0}, {16385, 16, 1024, 1, 0, 0}, {2000, 4, 1024, 10, 0, 0}};
  for (size_t i = 0; i < sizeof under / sizeof under[0]; i++) {
    cr_assert(!sgn_costmodel_overparametrized(under[i]));
    sgn_solver s = sgn_session_choose_solver(cpu, under[i], &o, 64e9, &r, why, sizeof why);
    cr_assert_eq(s, SGN_SOLVER_ADAM, "n=%lld: %s", (long long)under[i].n, why);
    cr_assert(strncmp(why, "adam: not overparametrized", 26) == 0, "%s", why);
    cr_assert(strstr(why, "s/epoch") && strstr(why, "gn-gram") && strstr(why, "gn-sketch"), "%s",
              why);
    cr_assert_null(strchr(why, '\n'));
  }
  const sgn_dims over[] = {{16384, 16, 1024, 1, 0, 0}, {1024, 16, 1024, 1, 0, 0}};
  for (size_t i = 0; i < sizeof over / sizeof over[0]; i++) {
    cr_assert(sgn_costmodel_overparametrized(over[i]));
    sgn_solver s = sgn_session_choose_solver(cpu, over[i], &o, 64e9, &r, why, sizeof why);
    cr_assert(s == SGN_SOLVER_GN_EXACT || s == SGN_SOLVER_GN_GRAM || s == SGN_SOLVER_GN_SKETCH,
              "n=%lld: %s", (long long)over[i].n, why);
    cr_assert(strstr(why, "; overparametrized: m*d = 16384 parameters >= n*k"), "%s", why);
  }
  /* no room even for adam: the Gauss-Newton verdict (the smallest), the regime still named */
  sgn_solver s = sgn_session_choose_solver(cpu, under[0], &o, 1e3, &r, why, sizeof why);
  cr_assert_neq(s, SGN_SOLVER_ADAM, "%s", why);
  cr_assert(strstr(why, "none fits") && strstr(why, "not overparametrized"), "%s", why);
}

/* Adam's epoch: the same products as a forward and a J^T g over every row plus the full loss,
 * and per mini-batch the update's seven (m, d) arrays, so smaller batches cost more bytes and
 * no more flops. At the shape (n = 20000, d = 16, width 1024) thirty epochs are
 * estimated well under one Gauss-Newton step. */
Test(costmodel, adam_epoch_counts) {
  sgn_options o = defaults();
  const sgn_dims dm = {20000, 16, 1024, 1, 0, 0};
  const sgn_cost_step st = {0, 0, 0, 0};
  o.batch = 128;
  sgn_cost b128 = sgn_costmodel_step(SGN_SOLVER_ADAM, dm, &o, st);
  o.batch = 32;
  sgn_cost b32 = sgn_costmodel_step(SGN_SOLVER_ADAM, dm, &o, st);
  cr_assert_eq(sgn_cost_flops(&b32), sgn_cost_flops(&b128));
  const double update = 28.0 * 1024 * 16; /* bytes of one update */
  cr_assert(fabs((b32.bytes - b128.bytes) - (625 - 157) * update) <= 1e-9 * b32.bytes, "%g vs %g",
            b32.bytes, b128.bytes);
  o.batch = 0; /* adam's default batch: 128 */
  sgn_cost dflt = sgn_costmodel_step(SGN_SOLVER_ADAM, dm, &o, st);
  cr_assert_eq(dflt.bytes, b128.bytes);
  const sgn_cost_rates r = sgn_costmodel_rates("cpu");
  const double epoch = sgn_costmodel_step_seconds(SGN_SOLVER_ADAM, dm, &o, &r);
  for (int i = 0; i < SGN_COSTMODEL_CANDIDATES; i++)
    cr_assert_lt(30 * epoch, sgn_costmodel_step_seconds(sgn_costmodel_candidates[i], dm, &o, &r),
                 "30 epochs vs one %s step",
                 sgn_name(SGN_NAMES_SOLVER, sgn_costmodel_candidates[i]));
}

/* Expected seconds grow with n, m and d for every solver; GPU rates are faster. */
Test(costmodel, monotone_in_the_sizes) {
  sgn_options o = defaults();
  sgn_cost_rates cpu = sgn_costmodel_rates("cpu"), gpu = sgn_costmodel_rates("gpu");
  const sgn_solver sv[] = {SGN_SOLVER_GN_EXACT, SGN_SOLVER_GN_GRAM, SGN_SOLVER_GN_SKETCH,
                           SGN_SOLVER_GN_CG,    SGN_SOLVER_GD,      SGN_SOLVER_ADAM};
  for (int i = 0; i < 6; i++) {
    sgn_dims base = {512, 16, 8192, 1, 0, 0};
    double t0 = sgn_costmodel_step_seconds(sv[i], base, &o, &cpu);
    sgn_dims bn = base, bm = base, bd = base;
    bn.n *= 2, bm.m *= 2, bd.d *= 8;
    cr_assert_gt(sgn_costmodel_step_seconds(sv[i], bn, &o, &cpu), t0, "solver %d in n", i);
    cr_assert_gt(sgn_costmodel_step_seconds(sv[i], bm, &o, &cpu), t0, "solver %d in m", i);
    cr_assert_gt(sgn_costmodel_step_seconds(sv[i], bd, &o, &cpu), t0, "solver %d in d", i);
    cr_assert_lt(sgn_costmodel_step_seconds(sv[i], base, &o, &gpu), t0, "solver %d gpu", i);
  }
}

/* The Gram's M M^T is counted apart (c.gram, a part of c.gemm: n^2 m per count, one more per
 * signed block) and timed at its own rate, the rest of gemm at the GEMM rate. */
Test(costmodel, gram_counts_at_their_rate) {
  sgn_options o = defaults();
  const sgn_cost_step st = {0, 0, 0, 0};
  sgn_dims d1 = {300, 7, 1000, 1, 0, 0}, d3 = d1;
  d3.k = 3;
  const sgn_cost e1 = sgn_costmodel_step(SGN_SOLVER_GN_EXACT, d1, &o, st);
  const sgn_cost e3 = sgn_costmodel_step(SGN_SOLVER_GN_EXACT, d3, &o, st);
  cr_assert(fabs(e1.gram - 300.0 * 300 * 1000) <= 1e-9 * e1.gram, "%g", e1.gram);
  cr_assert(fabs(e3.gram - 4 * e1.gram) <= 1e-9 * e3.gram, "%g vs %g", e3.gram, e1.gram);
  cr_assert_leq(e1.gram, e1.gemm);
  sgn_cost_rates r = sgn_costmodel_rates("cpu"), r2 = r;
  r2.gram *= 2;
  const double t = sgn_cost_seconds(&e1, &r), t2 = sgn_cost_seconds(&e1, &r2);
  cr_assert(fabs((t - t2) - e1.gram / (2 * r.gram)) <= 1e-9 * t, "%g %g", t, t2);
}

/* Counts: affine in the CG iterations; the exact Gram's extra blocks at k > 1; the sketch and
 * its R only when the preconditioner is rebuilt. */
Test(costmodel, counts_follow_the_work) {
  sgn_options o = defaults();
  sgn_dims dm = {300, 7, 1000, 1, 0, 0};
  sgn_cost_step st = {0, 0, 0, 0};
  double f[3];
  for (int t = 0; t < 3; t++) {
    st.cg_iters = 5 * t;
    sgn_cost c = sgn_costmodel_step(SGN_SOLVER_GN_CG, dm, &o, st);
    f[t] = sgn_cost_flops(&c);
  }
  cr_assert(fabs((f[2] - f[1]) - (f[1] - f[0])) <= 1e-9 * f[2], "%g %g %g", f[0], f[1], f[2]);
  /* one iteration: J^T p and J (J^T p), 4 n m (d + k) flops */
  cr_assert(fabs((f[1] - f[0]) / 5 - 4.0 * 300 * 1000 * 8) <= 1e-9 * f[1]);

  sgn_dims d3 = dm;
  d3.k = 3;
  sgn_cost e1 = sgn_costmodel_step(SGN_SOLVER_GN_EXACT, dm, &o, st);
  sgn_cost e3 = sgn_costmodel_step(SGN_SOLVER_GN_EXACT, d3, &o, st);
  cr_assert_geq(e3.gemm - e1.gemm, 3.0 * 300 * 300 * 1000, "3 signed M M^T products");
  cr_assert(fabs(e3.chol / e1.chol - 27) < 0.5, "(3n)^3 vs n^3: %g", e3.chol / e1.chol);

  st.cg_iters = 10;
  st.refreshed = 1;
  sgn_cost fresh = sgn_costmodel_step(SGN_SOLVER_GN_SKETCH, dm, &o, st);
  sgn_options o2 = o;
  o2.sketch_ratio = 2 * o.sketch_ratio;
  sgn_cost wide = sgn_costmodel_step(SGN_SOLVER_GN_SKETCH, dm, &o2, st);
  st.refreshed = 0;
  sgn_cost reused = sgn_costmodel_step(SGN_SOLVER_GN_SKETCH, dm, &o, st);
  /* the sketch's Gram Y Y^T is linear in the sketch's width; nothing of it on a reused R */
  cr_assert(fabs(wide.syrk / fresh.syrk - 2) < 1e-9, "%g vs %g", wide.syrk, fresh.syrk);
  cr_assert_eq(reused.syrk, 0);
  cr_assert_gt(fresh.chol, reused.chol);
  cr_assert_gt(fresh.other, reused.other);
}

/* The model's iteration counts: the sketch's grow as the sketch shrinks; reuse lowers the
 * fraction of rebuilt steps. */
Test(costmodel, expected_iterations) {
  sgn_options o = defaults();
  sgn_dims dm = {1024, 16, 8192, 1, 0, 0}, dk = {1024, 16, 8192, 10, 0, 0};
  double it4, it2, frac, itk;
  sgn_costmodel_expect(SGN_SOLVER_GN_SKETCH, dm, &o, &it4, &frac);
  cr_assert(it4 >= 8 && it4 <= 16 && frac == 1, "s = 4n: %g iterations", it4);
  o.sketch_ratio = 2;
  sgn_costmodel_expect(SGN_SOLVER_GN_SKETCH, dm, &o, &it2, &frac);
  cr_assert_gt(it2, it4);
  o = defaults();
  sgn_costmodel_expect(SGN_SOLVER_GN_GRAM, dm, &o, &it4, &frac);
  cr_assert(frac < 1 && it4 >= 1, "gn-gram reuses: %g of steps rebuild", frac);
  /* k outputs: block-diagonal preconditioners need more iterations */
  sgn_costmodel_expect(SGN_SOLVER_GN_GRAM, dk, &o, &itk, &frac);
  cr_assert_gt(itk, it4);
  o.refresh = SGN_REFRESH_ALWAYS;
  sgn_costmodel_expect(SGN_SOLVER_GN_GRAM, dm, &o, &it2, &frac);
  cr_assert(frac == 1 && it2 <= it4);
}
