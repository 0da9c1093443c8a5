/* prep.h — input preprocessing fitted on the training set and stored with the model:
 * centering by the training mean, then unit norm per sample (unit, the default) or unit
 * variance per feature (standard), and an optional constant feature appended (bias). */
#ifndef SGN_PREP_H
#define SGN_PREP_H

#include <stdint.h>

#include "sketchgn.h"

typedef enum sgn_normalize {
  SGN_NORMALIZE_UNIT = 0, /* x <- (x - mean) / ||x - mean|| (a zero vector stays zero) */
  SGN_NORMALIZE_NONE,     /* x unchanged */
  SGN_NORMALIZE_STANDARD, /* x_j <- (x_j - mean_j) / std_j (std_j == 0 -> 1) */
} sgn_normalize;

typedef struct sgn_prep {
  sgn_normalize mode;
  int bias;      /* 1: append a constant 1 after normalizing */
  int64_t d_in;  /* raw input columns */
  float *mean;   /* (d_in) training mean; zeros for none */
  float *scale;  /* (d_in) 1 / std for standard; ones otherwise */
} sgn_prep;

/* The model's input dimension: d_in + bias. */
int64_t sgn_prep_dim(const sgn_prep *p);

/* Fits the statistics on X (n, d_in). */
sgn_status sgn_prep_fit(sgn_prep *p, const float *X, int64_t n, int64_t d_in, sgn_normalize mode,
                        int bias);

/* out (n, sgn_prep_dim(p)) = the preprocessed X (n, p->d_in). out may not alias X. */
void sgn_prep_apply(const sgn_prep *p, const float *X, int64_t n, float *out);

void sgn_prep_free(sgn_prep *p);

#endif
