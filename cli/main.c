/* main.c — the `sketchgn` command line: a table of commands (name, entry point, one line of
 * help) that dispatches to train, eval, predict, info and bench and prints the top-level help.
 * Every command reads its options with the one parser in opts.c. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "opts.h"
#include "sketchgn.h"

/* ---- the commands ---- */

typedef struct command {
  const char *name;
  int (*run)(int argc, char **argv); /* argv[0] is the command's name */
  const char *help;                  /* one line for 'sketchgn --help' */
} command;

static const command commands[] = {
    {"train", sgn_cmd_train, "train a network on a data SPEC ('sketchgn train --help')"},
    {"eval", sgn_cmd_eval, "loss and accuracy of a saved model on a data SPEC"},
    {"predict", sgn_cmd_predict, "a saved model's outputs (and classes) on a data SPEC"},
    {"info", sgn_cmd_info, "print the version, the backends built and the library versions"},
    {"bench", sgn_cmd_bench, "time training steps over grids of sizes and solvers (CSV)"},
};
#define NCOMMANDS ((int)(sizeof commands / sizeof commands[0]))

static const command *find_command(const char *name) {
  for (int i = 0; i < NCOMMANDS; i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

static void main_usage(FILE *f) {
  fprintf(f,
          "usage: sketchgn <command> [options]\n"
          "       sketchgn --help | --version\n"
          "\n"
          "Trains wide two-layer ReLU networks f(x) = m^-1/2 A^T relu(W x) with Gauss-Newton\n"
          "steps solved by conjugate gradient with sketched preconditioners.\n"
          "\n"
          "Commands:\n");
  for (int i = 0; i < NCOMMANDS; i++) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
  fprintf(f,
          "\n"
          "Options:\n"
          "  -h, --help      print this help and exit\n"
          "  -V, --version   print the version and exit\n"
          "\n"
          "Every command takes --help ('sketchgn help COMMAND' says the same). Exit status:\n"
          "0 success, 1 runtime failure, 2 usage or bad input, 130 train interrupted by\n"
          "SIGINT or SIGTERM (the last completed step saved).\n");
}

/* "unknown command 'x' (commands: train, eval, ...; try 'sketchgn --help')" */
static int unknown_command(const char *name) {
  char buf[80], list[256] = "";
  for (int i = 0; i < NCOMMANDS; i++) {
    if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
    strncat(list, commands[i].name, sizeof list - strlen(list) - 1);
  }
  return opts_error(NULL, "unknown command '%s' (commands: %s; try 'sketchgn --help')",
                    opts_shown(name, buf, sizeof buf), list);
}

/* ---- threading and BLAS kernels ---- */

/* Two environment settings that only take effect when the libraries load, so the process
 * re-runs itself once with them:
 * - OpenBLAS's runtime dispatch falls back to its SSE3 "Prescott" kernels on a CPU whose model
 *   it does not recognize, even when the CPU has AVX2 or AVX-512 (3-5x slower GEMMs); unless the
 *   user chose OPENBLAS_CORETYPE, pick the kernels the CPU's features support.
 * - libgomp's threads spin after every OpenMP loop and then compete with OpenBLAS's own threads
 *   for the same cores (gn-cg 2.2x slower on 2 cores); unless the user chose OMP_WAIT_POLICY,
 *   make them sleep. */
static void env_fixup(char **argv) {
  const char *preload = getenv("LD_PRELOAD");
  if (preload && strstr(preload, "vgpreload")) return; /* under valgrind an exec would escape it */
  int again = 0;
  if (!getenv("OPENBLAS_CORETYPE") && strcmp(openblas_get_corename(), "Prescott") == 0) {
    __builtin_cpu_init();
    const char *core = NULL;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      core = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) core = "Haswell";
    if (core && setenv("OPENBLAS_CORETYPE", core, 1) == 0) again = 1;
  }
  if (!getenv("OMP_WAIT_POLICY") && setenv("OMP_WAIT_POLICY", "passive", 1) == 0) again = 1;
  if (!again) return;
  /* exec the binary by its real path, so ps and top show "sketchgn", not "exe" */
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0 || len >= (ssize_t)sizeof self - 1) return;
  self[len] = 0;
  execv(self, argv);
  /* exec failed: go on with what the libraries picked */
}

/* ---- dispatch ---- */

int main(int argc, char **argv) {
  env_fixup(argv);
  if (argc < 2) return opts_error(NULL, "missing command (try 'sketchgn --help')");
  const char *name = argv[1];
  if (strcmp(name, "help") == 0 && argc > 2) {
    /* sketchgn help CMD: what CMD --help prints */
    const command *c = find_command(argv[2]);
    if (!c) return unknown_command(argv[2]);
    char *help_argv[] = {argv[2], "--help", NULL};
    return c->run(2, help_argv);
  }
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    main_usage(stdout);
    return 0;
  }
  if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
    printf("sketchgn %s\n", sgn_version());
    return 0;
  }
  const command *c = find_command(name);
  if (c) return c->run(argc - 1, argv + 1);
  char buf[80];
  if (name[0] == '-')
    return opts_error(NULL, "%s: unknown option (try 'sketchgn --help')",
                      opts_shown(name, buf, sizeof buf));
  return unknown_command(name);
}
