/* opts.h — the one option parser of every `sketchgn` command. An option is described once (an
 * opt_spec: long name, kind of value, range or names, help text); a command lists the options it
 * takes as entries that pair a spec with where the value goes, and opts_parse reads argv into
 * them. Every command therefore gets the same abbreviations, number syntax and error wording:
 * one line "sketchgn CMD: --flag: message" on stderr and exit status 2. */
#ifndef SGN_CLI_OPTS_H
#define SGN_CLI_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sketchgn.h"

#define OPTS_EXIT_USAGE 2
#define OPTS_RUN (-1)  /* opts_parse: every option read; run the command */
#define OPTS_HELP (-2) /* opts_parse: --help was given; print opts_help and exit 0 */
#define OPT_LIST_MAX 64

typedef enum opt_kind {
  OPT_FLAG,   /* no value; *(int *)dst = 1 */
  OPT_INT,    /* an integer in [lo, hi]; int64_t *dst (int *dst when narrow) */
  OPT_U64,    /* an integer in [0, 2^64 - 1]; uint64_t *dst */
  OPT_REAL,   /* a finite number in the range rlo..rhi; double *dst */
  OPT_SIZE,   /* bytes > 0, with an optional K, M or G suffix; double *dst */
  OPT_CHOICE, /* one of a name list (the library's sgn_name_list, or a local one); int *dst */
  OPT_STRING, /* a non-empty string; const char **dst (points into argv) */
  OPT_CUSTOM, /* spec->parse reads it */
} opt_kind;

/* A comma-separated list (bench's grids): integers, or the values of names. */
typedef struct opt_list {
  int count;
  int64_t v[OPT_LIST_MAX];
} opt_list;

typedef struct opt_spec {
  const char *name; /* without the leading "--" */
  opt_kind kind;
  const char *arg;  /* the value's placeholder in the help ("M", "SPEC"); NULL for choices: the
                       names joined by '|' */
  const char *help; /* what it does, one line */
  const char *dflt; /* the default as the help shows it; NULL: read from the destination;
                       "": none shown (the help says "required" instead) */
  const char *what; /* OPT_STRING: what is expected ("a file name"); otherwise NULL, or a
                       replacement for the range in messages */
  int64_t lo, hi;   /* OPT_INT */
  int even;         /* OPT_INT: even values only */
  int narrow;       /* OPT_INT: dst is an int (hi <= INT_MAX) */
  double rlo, rhi;  /* OPT_REAL */
  int lo_open, hi_open, zero_ok; /* OPT_REAL: bounds excluded; 0 accepted outside the range */
  sgn_name_kind names;           /* OPT_CHOICE: the library's table... */
  const char *const *local;      /* ...or this NULL-terminated list when not NULL */
  int first;                     /* OPT_CHOICE: the values offered start here (names before it
                                    are neither accepted nor listed) */
  /* OPT_CUSTOM: parses s into dst; 0, or -1 after writing the message (after "--flag: ") */
  int (*parse)(const char *s, void *dst, char *msg, size_t cap);
  /* After a value is stored: NULL, or the error message (after "--flag: "). */
  const char *(*check)(const void *dst);
} opt_spec;

/* One option of one command. A NULL spec is a section heading in the help (help = its title). */
typedef struct opt_entry {
  const opt_spec *spec;
  void *dst;
  int list;         /* > 0: a comma-separated list of at most `list` values into an opt_list */
  const char *help; /* NULL: spec->help */
  const char *dflt; /* NULL: spec->dflt */
  int seen;         /* set by opts_parse: how many times the option was given */
} opt_entry;

typedef struct opt_cmd {
  const char *name;  /* "train" */
  const char *intro; /* the help before the options: usage lines and what the command does */
  const char *outro; /* the help after them (exit status), or NULL */
  opt_entry *opts;
  int count;
} opt_cmd;

#define OPTS_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Reads argv[1..argc) (argv[0] is the command's name) into the entries. A long option may be
 * abbreviated to any unique prefix and takes its value as "--flag value" or "--flag=value";
 * "--" ends the options. No command takes operands. Returns OPTS_RUN, OPTS_HELP, or
 * OPTS_EXIT_USAGE after printing the error. Entries' `seen` counts are reset first. */
int opts_parse(opt_cmd *cmd, int argc, char **argv);

/* The help: intro, then one entry per option (its default read from the destinations, so print
 * it with the command's defaults in place), then the outro. */
void opts_help(FILE *f, const opt_cmd *cmd);

/* The entry of `spec` in cmd (NULL if it has none): for checks after parsing (->seen). */
const opt_entry *opts_find(const opt_cmd *cmd, const opt_spec *spec);

/* Prints "sketchgn CMD: MESSAGE" (or "sketchgn: MESSAGE" when cmd is NULL) as one line on
 * stderr and returns OPTS_EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) int opts_error(const char *cmd, const char *fmt, ...);

/* A user string fit for a one-line message: non-printable bytes become '?', long ones are cut. */
const char *opts_shown(const char *s, char *buf, size_t cap);

/* The number rules, for custom parsers. Integers: an optional sign and decimal digits, nothing
 * else (no 0x, no exponent, no spaces). Returns 0, or -1 after writing "expected ..." to msg. */
int opts_int(const char *s, int64_t lo, int64_t hi, int64_t *out, char *msg, size_t cap);

/* ---- the options several commands share (opts.c) ---- */

extern const opt_spec opt_data;              /* --data SPEC (const char *) */
extern const opt_spec opt_targets;           /* --targets T (const char *) */
extern const opt_spec opt_device;            /* --device (int: sgn_device) */
extern const opt_spec opt_seed;              /* --seed (uint64_t) */
extern const opt_spec opt_max_memory;        /* --max-memory SIZE (double) */
extern const opt_spec opt_chunk_neurons;     /* --chunk-neurons N (int64_t) */
extern const opt_spec opt_solver;            /* --solver (int: sgn_solver) */
extern const opt_spec opt_sketch;            /* --sketch (int: sgn_sketch) */
extern const opt_spec opt_precision;         /* --precision (int: sgn_precision) */
extern const opt_spec opt_product_precision; /* --product-precision (int: sgn_precision) */
extern const opt_spec opt_sketch_ratio;      /* --sketch-ratio R (double) */
extern const opt_spec opt_refresh;           /* --precond-refresh (sgn_options: refresh, every) */
extern const opt_spec opt_cg_tol;            /* --cg-tol E (double) */
extern const opt_spec opt_cg_max;            /* --cg-max N (int) */

#endif
