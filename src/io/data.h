/* data.h — datasets in host memory and the loaders behind a data SPEC:
 *   synth:n=N,d=D,k=K,seed=S[,aniso=A]   a random teacher task
 *   FILE.csv[,k=K][,n=N]                 last K columns (default 1) are targets, or --targets
 *   FILE.npy[,n=N] with --targets T.npy  inputs (n, d) and targets (n,) or (n, k)
 *   idx:IMAGES[.gz],LABELS[.gz][,n=N]    the MNIST format, plain or gzip
 *   fashion-mnist[:train|:test][,n=N]    $SKETCHGN_DATA or /usr/share/datasets/fashion-mnist
 * ",n=N" keeps the first N samples. */
#ifndef SGN_DATA_H
#define SGN_DATA_H

#include <stdint.h>

#include "sketchgn.h"

typedef struct sgn_dataset {
  int64_t n, d, k;
  float *X;   /* (n, d) row-major inputs */
  float *Y;   /* (n, k) row-major targets */
  int labels; /* 1 when Y (n, 1) holds integer class labels (IDX, fashion-mnist) */
} sgn_dataset;

/* Loads a SPEC. targets: NULL, or the --targets argument (CSV: comma-separated 0-based column
 * indices or header names; NPY: the targets file). SGN_E_INPUT with a one-line message naming the
 * spec or file (and line and field for CSV) on bad input; SGN_E_RUNTIME on allocation failure. */
sgn_status sgn_data_load(const char *spec, const char *targets, sgn_dataset *out);

/* A random teacher task: x uniform on the unit sphere after scaling coordinate j by
 * aniso^(-j/d); y = f_teacher(x), a fixed two-layer ReLU network of width 64. */
sgn_status sgn_data_synth(int64_t n, int64_t d, int64_t k, uint64_t seed, double aniso,
                          sgn_dataset *out);

void sgn_dataset_free(sgn_dataset *ds);

#endif
