/* names.c — the one table of enum names (sketchgn.h, "names"). Each list is indexed by the enum's
 * value; the static asserts keep a list as long as its enum, so a value added to an enum without
 * its name fails the build. */
#include <string.h>

#include "model_file.h"
#include "prep.h"
#include "sketchgn.h"

static const char *const solvers[] = {"gd",        "adam",    "gn-exact", "gn-cg",
                                      "gn-sketch", "gn-gram", "auto",     NULL};
static const char *const sketches[] = {"srht", "gaussian", "srft", "countsketch", NULL};
static const char *const devices[] = {"auto", "cpu", "gpu", NULL};
static const char *const inits[] = {"symmetric", "gaussian", NULL};
static const char *const refreshes[] = {"default", "always", "auto", "every", NULL};
static const char *const tasks[] = {"regression", "classify", NULL};
static const char *const normalizations[] = {"unit",          "none",   "standard",
                                             "standard+unit", "sphere", NULL};
static const char *const precisions[] = {"fp64", "fp32", "tf32", "bf16", NULL};

#define COUNT(a) ((int)(sizeof(a) / sizeof(a[0])) - 1)
_Static_assert(COUNT(solvers) == SGN_SOLVER_AUTO + 1, "a solver without a name");
_Static_assert(COUNT(sketches) == SGN_SKETCH_COUNTSKETCH + 1, "a sketch without a name");
_Static_assert(COUNT(devices) == SGN_DEVICE_GPU + 1, "a device without a name");
_Static_assert(COUNT(inits) == SGN_INIT_GAUSSIAN + 1, "an init without a name");
_Static_assert(COUNT(refreshes) == SGN_REFRESH_EVERY + 1, "a refresh rule without a name");
_Static_assert(COUNT(tasks) == SGN_TASK_CLASSIFY + 1, "a task without a name");
_Static_assert(COUNT(normalizations) == SGN_NORMALIZE_SPHERE + 1,
               "a normalization without a name");
_Static_assert(COUNT(precisions) == SGN_PRECISION_BF16 + 1, "a precision without a name");

static const struct {
  const char *const *names;
  int count;
} table[] = {
    [SGN_NAMES_SOLVER] = {solvers, COUNT(solvers)},
    [SGN_NAMES_SKETCH] = {sketches, COUNT(sketches)},
    [SGN_NAMES_DEVICE] = {devices, COUNT(devices)},
    [SGN_NAMES_INIT] = {inits, COUNT(inits)},
    [SGN_NAMES_REFRESH] = {refreshes, COUNT(refreshes)},
    [SGN_NAMES_TASK] = {tasks, COUNT(tasks)},
    [SGN_NAMES_NORMALIZE] = {normalizations, COUNT(normalizations)},
    [SGN_NAMES_PRECISION] = {precisions, COUNT(precisions)},
};

static int kind_ok(sgn_name_kind kind) {
  return (int)kind >= 0 && (int)kind < (int)(sizeof table / sizeof table[0]);
}

const char *sgn_name(sgn_name_kind kind, int value) {
  if (!kind_ok(kind) || value < 0 || value >= table[kind].count) return NULL;
  return table[kind].names[value];
}

int sgn_name_value(sgn_name_kind kind, const char *name) {
  if (!kind_ok(kind) || !name) return -1;
  for (int v = 0; v < table[kind].count; v++)
    if (strcmp(table[kind].names[v], name) == 0) return v;
  return -1;
}

const char *const *sgn_name_list(sgn_name_kind kind) {
  return kind_ok(kind) ? table[kind].names : NULL;
}
