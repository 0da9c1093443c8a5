/* sketchgn_io.h — the public C API around the network: datasets loaded from a data SPEC, the
 * input preprocessing fitted on a training set, and model files (what `sketchgn train --save`
 * writes and `sketchgn eval`/`predict` read). Letters and conventions as in sketchgn.h.
 * Checkpoints and the loaders' internals are private to the library. */
#ifndef SKETCHGN_IO_H
#define SKETCHGN_IO_H

#include <stdint.h>

#include "sketchgn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- datasets ----
 * Datasets in host memory and the loaders behind a data SPEC:
 *   synth:n=N,d=D,k=K,seed=S[,aniso=A]   a random teacher task
 *   FILE.csv[,k=K][,n=N]                 last K columns (default 1) are targets, or --targets
 *   FILE.npy[,n=N] with --targets T.npy  inputs (n, d) and targets (n,) or (n, k)
 *   idx:IMAGES[.gz],LABELS[.gz][,n=N]    the MNIST format, plain or gzip
 *   fashion-mnist[:train|:test][,n=N]    $SKETCHGN_DATA or /usr/share/datasets/fashion-mnist
 * ",n=N" keeps the first N samples. */

typedef struct sgn_dataset {
  int64_t n, d, k;
  float *X;   /* (n, d) row-major inputs */
  float *Y;   /* (n, k) row-major targets */
  int labels; /* 1 when Y (n, 1) holds integer class labels (IDX, fashion-mnist) */
} sgn_dataset;

/* Loads a SPEC. targets: NULL, or the --targets argument (CSV: comma-separated 0-based column
 * indices or header names; NPY: the targets file). SGN_E_INPUT with a one-line message naming the
 * spec or file (and line and field for CSV) on bad input; SGN_E_RUNTIME on allocation failure. */
SGN_API sgn_status sgn_data_load(const char *spec, const char *targets, sgn_dataset *out);

/* A random teacher task: x uniform on the unit sphere after scaling coordinate j by
 * aniso^(-j/d); y = f_teacher(x), a fixed two-layer ReLU network of width 64. */
SGN_API sgn_status sgn_data_synth(int64_t n, int64_t d, int64_t k, uint64_t seed, double aniso,
                                  sgn_dataset *out);

SGN_API void sgn_dataset_free(sgn_dataset *ds);

/* ---- preprocessing ----
 * The preprocessing fitted on the training set and stored with the model. Inputs: centering by
 * the training mean and scaling (the modes below), then an optional constant feature (bias).
 * Targets of a regression: each output column standardized by the training targets' mean and
 * std (the CLI's --target-scale standard), the network trained on those, and its outputs mapped
 * back to the targets' units. Names: SGN_NAMES_NORMALIZE. */

typedef enum sgn_normalize {
  SGN_NORMALIZE_UNIT = 0,      /* x <- (x - mean) / ||x - mean|| (a zero vector stays zero) */
  SGN_NORMALIZE_NONE,          /* x unchanged */
  SGN_NORMALIZE_STANDARD,      /* x_j <- (x_j - mean_j) / std_j (std_j == 0 -> 1) */
  SGN_NORMALIZE_STANDARD_UNIT, /* standard, then x <- x / ||x||: drops each sample's norm */
  SGN_NORMALIZE_SPHERE,        /* standard, then one constant sqrt(d_in) appended, then
                                  x <- x / ||x|| (d_in + 1 coordinates): every sample on the unit
                                  sphere, its standardized norm kept in the angle to the constant
                                  coordinate; a zero row becomes (0, ..., 0, 1). The CLI's
                                  default: tables and images alike */
} sgn_normalize;

typedef struct sgn_prep {
  sgn_normalize mode;
  int bias;         /* 1: append a constant 1 after normalizing */
  int64_t d_in;     /* raw input columns */
  float *mean;      /* (d_in) training mean; zeros for none */
  float *scale;     /* (d_in) 1 / std for standard, standard+unit, sphere; ones otherwise */
  int64_t k_y;      /* target columns standardized (= k of a regression model), 0: none */
  double *y_mean;   /* (k_y) training targets' mean per column, or NULL */
  double *y_scale;  /* (k_y) their population std (1 where it is 0), > 0, or NULL */
} sgn_prep;

/* The model's input dimension: d_in + 1 for sphere + bias. */
SGN_API int64_t sgn_prep_dim(const sgn_prep *p);

/* Fits the input statistics on X (n, d_in); *p is overwritten (not freed), with k_y = 0. */
SGN_API sgn_status sgn_prep_fit(sgn_prep *p, const float *X, int64_t n, int64_t d_in,
                                sgn_normalize mode, int bias);

/* out (n, sgn_prep_dim(p)) = the preprocessed X (n, p->d_in). out may not alias X. */
SGN_API void sgn_prep_apply(const sgn_prep *p, const float *X, int64_t n, float *out);

/* Fits the target statistics on Y (n, k) of a regression: y_mean[c] = mean of column c,
 * y_scale[c] = its population std (1 when that is 0); sets k_y = k, replacing any earlier ones
 * (p as sgn_prep_fit left it). SGN_E_INPUT naming the sample and column of a non-finite target. */
SGN_API sgn_status sgn_prep_fit_targets(sgn_prep *p, const float *Y, int64_t n, int64_t k);

/* Y (n, k_y) in place, to the units the network trains in: Y[i,c] <- (Y[i,c] - y_mean[c]) /
 * y_scale[c]. Nothing when k_y = 0. */
SGN_API void sgn_prep_targets_apply(const sgn_prep *p, float *Y, int64_t n);

/* F (n, k_y) in place, network outputs back to the targets' units: F[i,c] <- y_mean[c] +
 * y_scale[c] F[i,c]. Nothing when k_y = 0. */
SGN_API void sgn_prep_targets_undo(const sgn_prep *p, float *F, int64_t n);

/* Frees the statistics (inputs and targets) and zeroes *p. */
SGN_API void sgn_prep_free(sgn_prep *p);

/* ---- model files ----
 * A model file is a versioned little-endian binary: magic, version, dimensions, task,
 * preprocessing (the inputs' and the targets' statistics), A, W, and a CRC32 of everything before
 * it (the layout: src/io/model_file.c). A model's outputs are in the units it trained in: map them
 * back with sgn_prep_targets_undo(&meta.prep, ...) (nothing to do when prep.k_y = 0).
 * Files are written to PATH.tmp and renamed into place; loading checks every size against the
 * file's real length before it allocates, and rejects anything inconsistent with a one-line
 * message naming the file. Task names: SGN_NAMES_TASK. */

typedef enum sgn_task {
  SGN_TASK_REGRESSION = 0,
  SGN_TASK_CLASSIFY, /* k = classes one-hot outputs; the prediction is the argmax */
} sgn_task;

/* Everything a model file holds beyond the network itself. */
typedef struct sgn_model_meta {
  sgn_task task;
  int64_t classes; /* k when classifying, else 0 */
  sgn_prep prep;   /* prep.d_in raw columns; sgn_prep_dim(&prep) == model->d; prep.k_y is
                      model->k (targets standardized) or 0, and 0 when classifying */
} sgn_model_meta;

/* Writes model + meta to path atomically. SGN_E_INPUT if the path cannot be written (naming it),
 * SGN_E_RUNTIME on a failed write (disk full); the previous file at path is left intact. */
SGN_API sgn_status sgn_model_save(const char *path, const sgn_model *model,
                                  const sgn_model_meta *meta);

/* Reads a model file. On success *model and meta->prep are owned by the caller
 * (sgn_model_free, sgn_prep_free). SGN_E_INPUT naming the file on anything malformed. */
SGN_API sgn_status sgn_model_load(const char *path, sgn_model **model, sgn_model_meta *meta);

#ifdef __cplusplus
}
#endif
#endif
