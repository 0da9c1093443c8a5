/* test_names.c — the one table of enum names: every value has a name, each name maps back to its
 * value, the list is the names in value order, and anything else is refused. */
#include <criterion/criterion.h>
#include <string.h>

#include "sketchgn.h"
#include "sketchgn_io.h"

static const struct {
  sgn_name_kind kind;
  int count;
} kinds[] = {
    {SGN_NAMES_SOLVER, SGN_SOLVER_AUTO + 1},
    {SGN_NAMES_SKETCH, SGN_SKETCH_COUNTSKETCH + 1},
    {SGN_NAMES_DEVICE, SGN_DEVICE_GPU + 1},
    {SGN_NAMES_INIT, SGN_INIT_GAUSSIAN + 1},
    {SGN_NAMES_REFRESH, SGN_REFRESH_EVERY + 1},
    {SGN_NAMES_TASK, 2},
    {SGN_NAMES_NORMALIZE, SGN_NORMALIZE_SPHERE + 1},
    {SGN_NAMES_PRECISION, SGN_PRECISION_BF16 + 1},
};

Test(names, every_value_round_trips_and_the_list_matches) {
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
    const char *const *list = sgn_name_list(kinds[i].kind);
    cr_assert_not_null(list);
    for (int v = 0; v < kinds[i].count; v++) {
      const char *name = sgn_name(kinds[i].kind, v);
      cr_assert_not_null(name, "kind %d value %d has no name", (int)kinds[i].kind, v);
      cr_assert_eq(sgn_name_value(kinds[i].kind, name), v, "%s", name);
      cr_assert_str_eq(list[v], name);
      for (int w = 0; w < v; w++) cr_assert_str_neq(list[w], name, "duplicate name %s", name);
    }
    cr_assert_null(list[kinds[i].count], "kind %d lists more names than values",
                   (int)kinds[i].kind);
    cr_assert_null(sgn_name(kinds[i].kind, kinds[i].count));
    cr_assert_null(sgn_name(kinds[i].kind, -1));
  }
}

Test(names, what_the_front_ends_spell) {
  cr_assert_eq(sgn_name_value(SGN_NAMES_SOLVER, "gn-sketch"), SGN_SOLVER_GN_SKETCH);
  cr_assert_eq(sgn_name_value(SGN_NAMES_SOLVER, "auto"), SGN_SOLVER_AUTO);
  cr_assert_eq(sgn_name_value(SGN_NAMES_SKETCH, "countsketch"), SGN_SKETCH_COUNTSKETCH);
  cr_assert_eq(sgn_name_value(SGN_NAMES_DEVICE, "gpu"), SGN_DEVICE_GPU);
  cr_assert_eq(sgn_name_value(SGN_NAMES_INIT, "symmetric"), SGN_INIT_SYMMETRIC);
  cr_assert_eq(sgn_name_value(SGN_NAMES_PRECISION, "fp64"), SGN_PRECISION_FP64);
  cr_assert_eq(sgn_name_value(SGN_NAMES_PRECISION, "tf32"), SGN_PRECISION_TF32);
  /* model files store the value: old files' standard+unit (3) keeps its meaning */
  cr_assert_eq(sgn_name_value(SGN_NAMES_NORMALIZE, "standard+unit"), 3);
  cr_assert_eq(sgn_name_value(SGN_NAMES_NORMALIZE, "sphere"), SGN_NORMALIZE_SPHERE);
}

Test(names, anything_else_is_refused) {
  cr_assert_eq(sgn_name_value(SGN_NAMES_SOLVER, "gn"), -1, "a prefix is not a name");
  cr_assert_eq(sgn_name_value(SGN_NAMES_SOLVER, "GN-SKETCH"), -1, "names are case-sensitive");
  cr_assert_eq(sgn_name_value(SGN_NAMES_SOLVER, ""), -1);
  cr_assert_eq(sgn_name_value(SGN_NAMES_SOLVER, NULL), -1);
  cr_assert_eq(sgn_name_value((sgn_name_kind)99, "gd"), -1);
  cr_assert_null(sgn_name((sgn_name_kind)-1, 0));
  cr_assert_null(sgn_name_list((sgn_name_kind)99));
}
