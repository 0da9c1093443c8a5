/* opts.c — the option parser of every command (opts.h) and the options several commands share.
 * One rule for numbers everywhere: an optional sign and decimal digits for integers (no 0x, no
 * exponent, no spaces, nothing after); decimal notation with an optional exponent for reals (no
 * hex, inf or nan); a value that is well formed but outside the range (overflow included) is
 * reported with the range. Messages say "expected WHAT, got 'VALUE'". */
#include "opts.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(sgn_device) == sizeof(int) && sizeof(sgn_solver) == sizeof(int) &&
                   sizeof(sgn_sketch) == sizeof(int),
               "choices are stored through int *");

/* ---- one-line errors ---- */

const char *opts_shown(const char *s, char *buf, size_t cap) {
  size_t i = 0;
  for (; s[i] && i + 4 < cap; i++) buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
  if (s[i]) {
    memcpy(buf + i, "...", 3);
    i += 3;
  }
  buf[i] = '\0';
  return buf;
}

int opts_error(const char *cmd, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (!isprint((unsigned char)*p)) *p = ' ';
  if (cmd) fprintf(stderr, "sketchgn %s: %s\n", cmd, msg);
  else fprintf(stderr, "sketchgn: %s\n", msg);
  return OPTS_EXIT_USAGE;
}

/* Writes "expected WHAT, got 'S'" to msg; returns -1. */
static int expected(char *msg, size_t cap, const char *what, const char *s) {
  char buf[80];
  snprintf(msg, cap, "expected %s, got '%s'", what, opts_shown(s, buf, sizeof buf));
  return -1;
}

/* ---- numbers ---- */

/* An optional sign, then one or more decimal digits and nothing else. */
static int int_syntax(const char *s) {
  const char *p = s + (s[0] == '+' || s[0] == '-');
  if (!*p) return 0;
  for (; *p; p++)
    if (!isdigit((unsigned char)*p)) return 0;
  return 1;
}

/* "an integer >= lo", "an integer in [lo, hi]", "an even integer ...". */
static const char *int_what(int64_t lo, int64_t hi, int even, char *buf, size_t cap) {
  const char *a = even ? "an even integer" : "an integer";
  if (hi == INT64_MAX) snprintf(buf, cap, "%s >= %" PRId64, a, lo);
  else snprintf(buf, cap, "%s in [%" PRId64 ", %" PRId64 "]", a, lo, hi);
  return buf;
}

static int int_value(const char *s, int64_t lo, int64_t hi, int even, const char *what,
                     int64_t *out, char *msg, size_t cap) {
  char wbuf[96];
  if (!int_syntax(s)) return expected(msg, cap, even ? "an even integer" : "an integer", s);
  errno = 0;
  long long v = strtoll(s, NULL, 10);
  if (errno == ERANGE || v < lo || v > hi || (even && v % 2))
    return expected(msg, cap, what ? what : int_what(lo, hi, even, wbuf, sizeof wbuf), s);
  *out = v;
  return 0;
}

int opts_int(const char *s, int64_t lo, int64_t hi, int64_t *out, char *msg, size_t cap) {
  return int_value(s, lo, hi, 0, NULL, out, msg, cap);
}

static int u64_value(const char *s, uint64_t *out, char *msg, size_t cap) {
  if (!int_syntax(s)) return expected(msg, cap, "an integer", s);
  const char *digits = s + (s[0] == '+' || s[0] == '-');
  errno = 0;
  unsigned long long v = strtoull(digits, NULL, 10);
  if (errno == ERANGE || (s[0] == '-' && v != 0))
    return expected(msg, cap, "an integer in [0, 2^64 - 1]", s);
  *out = v;
  return 0;
}

/* A decimal real: sign, digits, point, exponent, as strtod reads them (no hex, inf, nan).
 * *end gets what strtod left (for a size's suffix). */
static int real_syntax(const char *s, double *v, const char **end) {
  size_t len = strspn(s, "0123456789+-.eE");
  if (len == 0 || !isdigit((unsigned char)s[strcspn(s, "0123456789")])) return 0;
  char *e;
  errno = 0;
  *v = strtod(s, &e);
  if (e == s || (size_t)(e - s) != len) return 0;
  *end = e;
  return 1;
}

/* "a number >= 0", "a number > 0 and < 1", "..., or 0". */
static const char *real_what(const opt_spec *sp, char *buf, size_t cap) {
  if (sp->what) return sp->what;
  int n = snprintf(buf, cap, "a number");
  if (isfinite(sp->rlo))
    n += snprintf(buf + n, cap - (size_t)n, " %s %g", sp->lo_open ? ">" : ">=", sp->rlo);
  if (isfinite(sp->rhi))
    n += snprintf(buf + n, cap - (size_t)n, "%s %s %g", isfinite(sp->rlo) ? " and" : "",
                  sp->hi_open ? "<" : "<=", sp->rhi);
  if (sp->zero_ok) snprintf(buf + n, cap - (size_t)n, ", or 0");
  return buf;
}

static int real_value(const opt_spec *sp, const char *s, double *out, char *msg, size_t cap) {
  char wbuf[96];
  double v;
  const char *end;
  if (!real_syntax(s, &v, &end) || *end) return expected(msg, cap, "a number", s);
  int ok = isfinite(v) && (sp->lo_open ? v > sp->rlo : v >= sp->rlo) &&
           (sp->hi_open ? v < sp->rhi : v <= sp->rhi);
  if (!ok && !(sp->zero_ok && v == 0.0))
    return expected(msg, cap, real_what(sp, wbuf, sizeof wbuf), s);
  *out = v;
  return 0;
}

static int size_value(const char *s, double *out, char *msg, size_t cap) {
  double v;
  const char *end;
  const char *what = "a size > 0 such as 512M or 8G";
  if (!real_syntax(s, &v, &end)) return expected(msg, cap, what, s);
  double unit = *end == 'K' ? 1024.0 : *end == 'M' ? 1048576.0 : *end == 'G' ? 1073741824.0 : 1;
  if (unit > 1) end++;
  if (*end || !isfinite(v * unit) || !(v > 0)) return expected(msg, cap, what, s);
  *out = v * unit;
  return 0;
}

/* ---- names ---- */

static const char *const *choice_names(const opt_spec *sp) {
  return sp->local ? sp->local : sgn_name_list(sp->names);
}

/* The names joined by '|'. */
static const char *joined(const opt_spec *sp, char *buf, size_t cap) {
  const char *const *names = choice_names(sp);
  buf[0] = '\0';
  for (int i = sp->first; names && names[i]; i++) {
    if (i > sp->first) strncat(buf, "|", cap - strlen(buf) - 1);
    strncat(buf, names[i], cap - strlen(buf) - 1);
  }
  return buf;
}

static int choice_value(const opt_spec *sp, const char *s, int *out, char *msg, size_t cap) {
  const char *const *names = choice_names(sp);
  for (int i = sp->first; names && names[i]; i++)
    if (strcmp(s, names[i]) == 0) {
      *out = i;
      return 0;
    }
  char what[256] = "one of ";
  joined(sp, what + 7, sizeof what - 7);
  return expected(msg, cap, what, s);
}

/* ---- one value ---- */

/* Parses one value (not a list) of sp into dst. */
static int parse_one(const opt_spec *sp, const char *s, void *dst, char *msg, size_t cap) {
  switch (sp->kind) {
  case OPT_INT: {
    int64_t v = 0;
    if (int_value(s, sp->lo, sp->hi, sp->even, sp->what, &v, msg, cap)) return -1;
    if (sp->narrow) *(int *)dst = (int)v;
    else *(int64_t *)dst = v;
    return 0;
  }
  case OPT_U64: return u64_value(s, (uint64_t *)dst, msg, cap);
  case OPT_REAL: return real_value(sp, s, (double *)dst, msg, cap);
  case OPT_SIZE: return size_value(s, (double *)dst, msg, cap);
  case OPT_CHOICE: return choice_value(sp, s, (int *)dst, msg, cap);
  case OPT_STRING:
    if (!s[0]) return expected(msg, cap, sp->what ? sp->what : "a value", s);
    *(const char **)dst = s;
    return 0;
  case OPT_CUSTOM: return sp->parse(s, dst, msg, cap);
  case OPT_FLAG: break;
  }
  snprintf(msg, cap, "internal error: option kind %d takes no value", (int)sp->kind);
  return -1;
}

/* "a,b,c" into an opt_list of at most e->list values (integers or choices). */
static int parse_list(const opt_entry *e, const char *s, char *msg, size_t cap) {
  opt_list *l = e->dst;
  opt_list got = {0};
  char buf[80];
  for (const char *p = s;;) {
    size_t len = strcspn(p, ",");
    if (got.count == e->list || got.count == OPT_LIST_MAX) {
      snprintf(msg, cap, "expected at most %d values, got '%s'", got.count,
               opts_shown(s, buf, sizeof buf));
      return -1;
    }
    char *item = strndup(p, len);
    if (!item) {
      snprintf(msg, cap, "out of memory");
      return -1;
    }
    int64_t v = 0;
    int choice = 0,
        rc = parse_one(e->spec, item, e->spec->kind == OPT_CHOICE ? (void *)&choice : (void *)&v,
                       msg, cap);
    free(item);
    if (rc) {
      if (strchr(s, ',')) {
        size_t n = strlen(msg);
        snprintf(msg + n, cap - n, " in '%s'", opts_shown(s, buf, sizeof buf));
      }
      return -1;
    }
    got.v[got.count++] = e->spec->kind == OPT_CHOICE ? choice : v;
    if (!p[len]) break;
    p += len + 1;
  }
  *l = got;
  return 0;
}

/* ---- the parser ---- */

const opt_entry *opts_find(const opt_cmd *cmd, const opt_spec *spec) {
  for (int i = 0; i < cmd->count; i++)
    if (cmd->opts[i].spec == spec) return &cmd->opts[i];
  return NULL;
}

#define HELP_INDEX (-2)
#define NO_MATCH (-1)

/* The entry whose name is name[0..len), exactly or as the only one it is a prefix of;
 * HELP_INDEX for --help; NO_MATCH after printing the error. */
static int lookup(const opt_cmd *cmd, const char *typed, const char *name, size_t len) {
  char buf[80];
  if (len == 4 && strncmp(name, "help", 4) == 0) return HELP_INDEX;
  for (int i = 0; i < cmd->count; i++) {
    const opt_spec *sp = cmd->opts[i].spec;
    if (sp && strlen(sp->name) == len && strncmp(sp->name, name, len) == 0) return i;
  }
  int found = NO_MATCH, matches = 0;
  char list[512] = "";
  if (len > 0 && strncmp("help", name, len) == 0) {
    found = HELP_INDEX, matches = 1;
    strncat(list, "--help", sizeof list - 1);
  }
  for (int i = 0; i < cmd->count; i++) {
    const opt_spec *sp = cmd->opts[i].spec;
    if (!sp || len == 0 || strncmp(sp->name, name, len) != 0) continue;
    found = i;
    strncat(list, matches++ ? ", --" : "--", sizeof list - strlen(list) - 1);
    strncat(list, sp->name, sizeof list - strlen(list) - 1);
  }
  if (matches == 1) return found;
  if (matches > 1)
    opts_error(cmd->name, "%s: ambiguous option (could be %s)", opts_shown(typed, buf, sizeof buf),
               list);
  else
    opts_error(cmd->name, "%s: unknown option (try 'sketchgn %s --help')",
               opts_shown(typed, buf, sizeof buf), cmd->name);
  return NO_MATCH;
}

int opts_parse(opt_cmd *cmd, int argc, char **argv) {
  char buf[80], msg[400];
  for (int i = 0; i < cmd->count; i++) cmd->opts[i].seen = 0;
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "-h") == 0) return OPTS_HELP;
    if (a[0] != '-' || a[1] == '\0') break; /* an operand */
    if (a[1] != '-')
      return opts_error(cmd->name, "%s: unknown option (try 'sketchgn %s --help')",
                        opts_shown(a, buf, sizeof buf), cmd->name);
    const char *name = a + 2;
    size_t len = strcspn(name, "=");
    const char *value = name[len] == '=' ? name + len + 1 : NULL;
    char typed[80];
    snprintf(typed, sizeof typed, "--%.*s", (int)(len < 70 ? len : 70), name);
    int idx = lookup(cmd, typed, name, len);
    if (idx == NO_MATCH) return OPTS_EXIT_USAGE;
    const char *flag = "--help";
    char flagbuf[80];
    if (idx != HELP_INDEX) {
      snprintf(flagbuf, sizeof flagbuf, "--%s", cmd->opts[idx].spec->name);
      flag = flagbuf;
    }
    if (idx == HELP_INDEX || cmd->opts[idx].spec->kind == OPT_FLAG) {
      if (value)
        return opts_error(cmd->name, "%s: takes no value, got '%s'", flag,
                          opts_shown(value, buf, sizeof buf));
      if (idx == HELP_INDEX) return OPTS_HELP;
      *(int *)cmd->opts[idx].dst = 1;
      cmd->opts[idx].seen++;
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) return opts_error(cmd->name, "%s: missing value", flag);
      value = argv[++i];
    }
    opt_entry *e = &cmd->opts[idx];
    int rc = e->list > 0 ? parse_list(e, value, msg, sizeof msg)
                         : parse_one(e->spec, value, e->dst, msg, sizeof msg);
    const char *bad = rc || e->list > 0 || !e->spec->check ? NULL : e->spec->check(e->dst);
    if (rc) return opts_error(cmd->name, "%s: %s", flag, msg);
    if (bad) return opts_error(cmd->name, "%s: %s", flag, bad);
    e->seen++;
  }
  if (i < argc)
    return opts_error(cmd->name, "unexpected argument '%s' (try 'sketchgn %s --help')",
                      opts_shown(argv[i], buf, sizeof buf), cmd->name);
  return OPTS_RUN;
}

/* ---- help ---- */

#define HELP_COL 27
#define HELP_WIDTH 99

/* Prints text word by word from column *col, wrapping at HELP_WIDTH to HELP_COL. */
static void wrap(FILE *f, const char *text, int *col) {
  for (const char *p = text; *p;) {
    while (*p == ' ') p++;
    int len = (int)strcspn(p, " ");
    if (!len) break;
    if (*col > HELP_COL && *col + 1 + len > HELP_WIDTH) {
      fprintf(f, "\n%*s", HELP_COL, "");
      *col = HELP_COL;
    } else if (*col > HELP_COL) {
      fputc(' ', f);
      (*col)++;
    }
    *col += fprintf(f, "%.*s", len, p);
    p += len;
  }
}

/* "  --flag ARG   meaning (default: ...)"; a long flag puts the meaning on the next line. */
static void help_entry(FILE *f, const char *flag, const char *meaning, const char *dflt) {
  int col = fprintf(f, "  %s", flag);
  if (col + 1 > HELP_COL) {
    fputc('\n', f);
    col = 0;
  }
  col += fprintf(f, "%*s", HELP_COL - col, "");
  wrap(f, meaning, &col);
  if (dflt && dflt[0]) {
    char d[300];
    snprintf(d, sizeof d, "(default: %s)", dflt);
    /* a default that does not fit the line goes on its own */
    if (col + 1 + (int)strlen(d) > HELP_WIDTH) {
      fprintf(f, "\n%*s", HELP_COL, "");
      col = HELP_COL;
      fputs(d, f);
    } else {
      wrap(f, d, &col);
    }
  }
  fputc('\n', f);
}

/* One value of sp at dst, as the help shows a default. */
static void format_value(const opt_spec *sp, const void *dst, char *buf, size_t cap) {
  const char *const *names;
  switch (sp->kind) {
  case OPT_INT:
    snprintf(buf, cap, "%" PRId64,
             sp->narrow ? (int64_t) * (const int *)dst : *(const int64_t *)dst);
    break;
  case OPT_U64: snprintf(buf, cap, "%" PRIu64, *(const uint64_t *)dst); break;
  case OPT_REAL:
  case OPT_SIZE: snprintf(buf, cap, "%g", *(const double *)dst); break;
  case OPT_CHOICE: {
    int v = *(const int *)dst, n = 0;
    names = choice_names(sp);
    while (names && names[n]) n++;
    snprintf(buf, cap, "%s", v >= 0 && v < n ? names[v] : "?");
    break;
  }
  case OPT_STRING: {
    const char *v = *(const char *const *)dst;
    snprintf(buf, cap, "%s", v ? v : "none");
    break;
  }
  case OPT_FLAG: snprintf(buf, cap, "%s", *(const int *)dst ? "on" : "off"); break;
  case OPT_CUSTOM: snprintf(buf, cap, "?"); break;
  }
}

static void entry_default(const opt_entry *e, char *buf, size_t cap) {
  const char *d = e->dflt ? e->dflt : e->spec->dflt;
  if (d) {
    snprintf(buf, cap, "%s", d);
    return;
  }
  if (e->list <= 0) {
    format_value(e->spec, e->dst, buf, cap);
    return;
  }
  const opt_list *l = e->dst;
  buf[0] = '\0';
  for (int i = 0; i < l->count; i++) {
    char one[64];
    int iv = (int)l->v[i];
    if (e->spec->kind == OPT_CHOICE) format_value(e->spec, &iv, one, sizeof one);
    else snprintf(one, sizeof one, "%" PRId64, l->v[i]);
    if (i) strncat(buf, ",", cap - strlen(buf) - 1);
    strncat(buf, one, cap - strlen(buf) - 1);
  }
}

void opts_help(FILE *f, const opt_cmd *cmd) {
  fputs(cmd->intro, f);
  if (cmd->count == 0 || cmd->opts[0].spec) fputs("\nOptions:\n", f);
  for (int i = 0; i < cmd->count; i++) {
    const opt_entry *e = &cmd->opts[i];
    if (!e->spec) {
      fprintf(f, "\n%s\n", e->help);
      continue;
    }
    char flag[300], arg[256], dflt[300];
    const char *a = e->spec->arg ? e->spec->arg : joined(e->spec, arg, sizeof arg);
    if (e->spec->kind == OPT_FLAG) snprintf(flag, sizeof flag, "--%s", e->spec->name);
    else snprintf(flag, sizeof flag, "--%s %s%s", e->spec->name, a, e->list > 0 ? ",..." : "");
    entry_default(e, dflt, sizeof dflt);
    help_entry(f, flag, e->help ? e->help : e->spec->help, dflt);
  }
  help_entry(f, "-h, --help", "print this help and exit", NULL);
  if (cmd->count > 0)
    fputs(
        "\nOptions take their value as '--flag value' or '--flag=value'; a unique prefix of\n"
        "a flag stands for it (--sketch-r for --sketch-ratio). Numbers are decimal: integers\n"
        "are digits with an optional sign, reals may have an exponent (1e-3).\n",
        f);
  if (cmd->outro) fputs(cmd->outro, f);
}

/* ---- the options several commands share ---- */

/* --precond-refresh auto|always|N into an sgn_options' refresh and refresh_every. */
static int parse_refresh(const char *s, void *dst, char *msg, size_t cap) {
  sgn_options *o = dst;
  int64_t n = 0;
  if (strcmp(s, "auto") == 0 || strcmp(s, "always") == 0) {
    o->refresh = (sgn_refresh)sgn_name_value(SGN_NAMES_REFRESH, s);
    return 0;
  }
  if (opts_int(s, 1, INT_MAX, &n, msg, cap))
    return expected(msg, cap, "auto, always or an integer N >= 1", s);
  o->refresh = SGN_REFRESH_EVERY;
  o->refresh_every = (int)n;
  return 0;
}

static const char *check_chunk(const void *dst) {
  return *(const int64_t *)dst == 1
             ? "a chunk holds at least 2 neurons (one of each half), or 0 for automatic"
             : NULL;
}

const opt_spec opt_data = {.name = "data",
                           .kind = OPT_STRING,
                           .arg = "SPEC",
                           .what = "a data SPEC",
                           .help = "the data (required), e.g. synth:n=1024,d=32,k=1,seed=1",
                           .dflt = ""};
const opt_spec opt_targets = {
    .name = "targets",
    .kind = OPT_STRING,
    .arg = "T",
    .what = "a value",
    .help = "CSV: target columns (indices or names); NPY: the targets file",
    .dflt = "CSV: the last k columns"};
const opt_spec opt_device = {.name = "device",
                             .kind = OPT_CHOICE,
                             .names = SGN_NAMES_DEVICE,
                             .help = "where to run; auto takes the GPU when one answers"};
const opt_spec opt_seed = {.name = "seed",
                           .kind = OPT_U64,
                           .arg = "S",
                           .help = "unsigned 64-bit seed for the model, sketches and batches"};
const opt_spec opt_max_memory = {.name = "max-memory",
                                 .kind = OPT_SIZE,
                                 .arg = "SIZE",
                                 .help = "refuse runs needing more, e.g. 512M, 8G (bytes, K, M, G)",
                                 .dflt = "what the device has"};
const opt_spec opt_chunk_neurons = {
    .name = "chunk-neurons",
    .kind = OPT_INT,
    .arg = "N",
    .lo = 0,
    .hi = INT64_MAX,
    .help =
        "run the Jacobian products N neurons at a time (N >= 2; 0: all at once when the n x m "
        "work fits --max-memory, else the widest chunk that fits)",
    .check = check_chunk};
const opt_spec opt_solver = {
    .name = "solver",
    .kind = OPT_CHOICE,
    .names = SGN_NAMES_SOLVER,
    .help =
        "the method (auto: adam when the network has fewer parameters than targets, "
        "m*d < n*k, else the fastest Gauss-Newton solver that fits)"};
const opt_spec opt_sketch = {.name = "sketch",
                             .kind = OPT_CHOICE,
                             .names = SGN_NAMES_SKETCH,
                             .help = "the sketch of J for gn-sketch (README: Sketches)"};
const opt_spec opt_precision = {
    .name = "precision",
    .kind = OPT_CHOICE,
    .names = SGN_NAMES_PRECISION,
    .help =
        "gn-sketch: arithmetic of the sketch Gram Y Y^T (README: Precision); fp32 sums panels "
        "in float32, tf32 and bf16 round Y first (the CPU emulates them at fp32 speed: for "
        "their accuracy, not faster)"};
const opt_spec opt_product_precision = {
    .name = "product-precision",
    .kind = OPT_CHOICE,
    .names = SGN_NAMES_PRECISION,
    .first = SGN_PRECISION_FP32, /* no float64 products */
    .help =
        "the Jacobian products' GEMM inputs (README: Precision): fp32, or X and W, V or the "
        "masked coefficients rounded to tf32 or bf16, float32 sums (the CPU emulates them "
        "at fp32 speed: for their accuracy, not faster)"};
const opt_spec opt_sketch_ratio = {.name = "sketch-ratio",
                                   .kind = OPT_REAL,
                                   .arg = "R",
                                   .rlo = 1,
                                   .rhi = INFINITY,
                                   .hi_open = 1,
                                   .help = "sketch rows s = R * n, >= 1; 2 or more advised"};
const opt_spec opt_refresh = {.name = "precond-refresh",
                              .kind = OPT_CUSTOM,
                              .arg = "auto|always|N",
                              .parse = parse_refresh,
                              .help = "when PCG rebuilds its preconditioner; N: every N steps",
                              .dflt = "always for gn-sketch, auto for gn-gram"};
const opt_spec opt_cg_tol = {.name = "cg-tol",
                             .kind = OPT_REAL,
                             .arg = "E",
                             .rlo = 0,
                             .rhi = 1,
                             .lo_open = 1,
                             .hi_open = 1,
                             .help = "relative residual per CG solve, 0 < E < 1"};
const opt_spec opt_cg_max = {.name = "cg-max",
                             .kind = OPT_INT,
                             .arg = "N",
                             .lo = 1,
                             .hi = INT_MAX,
                             .narrow = 1,
                             .help = "CG iteration cap per solve, >= 1"};
