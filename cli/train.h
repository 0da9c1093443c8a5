/* train.h — what the CLI drives: a whole training run (data, preprocessing, model, step loop,
 * logging, checkpoints) and the eval / predict commands on saved models. */
#ifndef SGN_TRAIN_H
#define SGN_TRAIN_H

#include <stdint.h>

#include "data.h"
#include "model_file.h"
#include "sketchgn.h"

/* --outputs: auto is separate for k > 1 with gn-gram or --solver auto (width a multiple of
 * 64), shared otherwise (README "Many outputs") */
enum { SGN_OUTPUTS_AUTO = 0, SGN_OUTPUTS_SHARED, SGN_OUTPUTS_SEPARATE };

/* --target-scale: a regression trains on its targets standardized per column (sgn_prep's target
 * statistics; outputs mapped back) or on the targets as they are */
enum { SGN_TARGET_SCALE_STANDARD = 0, SGN_TARGET_SCALE_NONE };

typedef struct sgn_train_config {
  const char *data;         /* data SPEC */
  const char *targets;      /* --targets for the training data, or NULL */
  const char *test;         /* --test SPEC evaluated after every step, or NULL */
  const char *test_targets; /* --test-targets, or NULL */
  sgn_task task;
  sgn_normalize normalize;
  int bias;
  int target_scale; /* SGN_TARGET_SCALE_*: regression only */
  int64_t width; /* m (default 1024) */
  sgn_init init;
  int outputs;   /* SGN_OUTPUTS_*: with k > 1, one hidden layer shared by the outputs or one each */
  uint64_t seed; /* model initialization; the solver's seed is opt.seed */
  sgn_device device;
  sgn_options opt;
  int64_t steps;            /* maximum steps, counted from step 0 of the run (default 20) */
  double target_rel;        /* stop when loss <= target_rel * step-0 loss (0: off) */
  double time_limit;        /* stop after this many seconds of training (0: off) */
  double tol;               /* converged: relative loss decrease < tol two steps running (0: off) */
  int64_t patience;         /* with --test: stop after this many steps without a new best test
                               loss, keeping the best model (0: off) */
  const char *log_json;     /* one JSON object per line per step, or NULL */
  const char *save;         /* model file written at the end, or NULL */
  int64_t checkpoint_every; /* steps between checkpoints (0: none) */
  const char *checkpoint;   /* checkpoint path; default: save path + ".ckpt" */
  const char *resume;       /* checkpoint to continue from, or NULL */
  int quiet;                /* no per-step lines on stderr */
  const char *const *args;  /* the command line (train's tokens after "train"), stored in
                               checkpoints so --resume FILE needs nothing else */
  int nargs;
} sgn_train_config;

/* Defaults for every field (data = NULL). */
sgn_train_config sgn_train_config_default(void);

/* Runs it. Returns the exit status: 0 success, 1 runtime failure, 2 bad input, 130 interrupted
 * (after writing a checkpoint). Prints a one-line error on stderr on failure. */
int sgn_train_run(const sgn_train_config *cfg);

typedef struct sgn_eval_config {
  const char *model;   /* model file */
  const char *data;    /* data SPEC */
  const char *targets; /* --targets, or NULL */
  const char *out;     /* predict: FILE.csv or FILE.npy; NULL = CSV on stdout */
  sgn_device device;
  double max_memory;     /* --max-memory bytes; 0: what the device has */
  int64_t chunk_neurons; /* --chunk-neurons; 0: automatic */
} sgn_eval_config;

/* `sketchgn eval`: prints loss (and accuracy when classifying). Exit status as above. */
int sgn_eval_run(const sgn_eval_config *cfg);
/* `sketchgn predict`: writes the outputs (n, k), and the class when classifying. */
int sgn_predict_run(const sgn_eval_config *cfg);

/* ---- shared by train, eval and predict ---- */

/* *X (n, sgn_prep_dim) = the preprocessed inputs of ds; what names the data in messages. */
sgn_status sgn_prepare_inputs(const sgn_model_meta *meta, const sgn_dataset *ds, const char *what,
                              float **X);
/* *Y (n, k): the targets in the units the network trains in: ds->Y for regression, standardized
 * by meta->prep's target statistics (sgn_prep_targets_apply; none: as they are); when
 * classifying, one-hot 0/1 of cls (n), the rows' classes (sgn_labels_classes). */
sgn_status sgn_prepare_targets(const sgn_model_meta *meta, const sgn_dataset *ds,
                               const int64_t *cls, int64_t k, const char *what, float **Y);
/* Regression metrics of outputs F (n, k) against targets Y (n, k): *mse = mean over the n k
 * entries of (F - Y)^2, *r2 = 1 - sum (F - Y)^2 / sum (Y - mean_i Y)^2 with the column means of
 * Y itself (NAN when Y is constant). RMSE is sqrt(mse). */
void sgn_regression_metrics(const float *F, const float *Y, int64_t n, int64_t k, double *mse,
                            double *r2);
/* Fraction of the n rows whose argmax of F (n, k) is cls[i]. */
double sgn_accuracy(const float *F, const int64_t *cls, int64_t n, int64_t k);

/* ---- class labels (labels.c) ---- */

/* A classifier's K classes: names[c] is class c's label, or names NULL for labels 0..K-1. */
typedef struct sgn_labels {
  int64_t K;
  char **names;  /* (K) owned, or NULL */
  char **sorted; /* (K) the same pointers in strcmp order, for lookups */
} sgn_labels;

/* The classes of a training set's labels (ds->Y (n, 1), and text from sgn_data_load_ex for text
 * labels, or NULL): the distinct labels sorted, numbers by value and text by strcmp. Warns on
 * stderr (unless quiet) when numeric labels look continuous (not all integers, or more distinct
 * values than half the samples). SGN_E_INPUT for k != 1 or fewer than two classes. */
sgn_status sgn_labels_fit(const sgn_dataset *ds, char **text, const char *what, int quiet,
                          sgn_labels *lab);
/* Takes K names (NULL: 0..K-1) from a model file; lab owns them afterwards. */
sgn_status sgn_labels_adopt(sgn_labels *lab, int64_t K, char **names);
/* *cls (n, malloc'ed) = the class of each row's label; SGN_E_INPUT naming the first label that is
 * not one of lab's. */
sgn_status sgn_labels_classes(const sgn_labels *lab, const sgn_dataset *ds, char **text,
                              const char *what, int64_t **cls);
/* Class c's label as text (buf holds it for labels 0..K-1). */
const char *sgn_labels_name(const sgn_labels *lab, int64_t c, char buf[32]);
void sgn_labels_free(sgn_labels *lab);

#endif
