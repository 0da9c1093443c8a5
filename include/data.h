/* data.h — datasets in host memory and the loaders behind a data SPEC. */
#ifndef SGN_DATA_H
#define SGN_DATA_H

#include <stdint.h>

#include "sketchgn.h"

typedef struct sgn_dataset {
  int64_t n, d, k;
  float *X; /* (n, d) row-major inputs */
  float *Y; /* (n, k) row-major targets */
} sgn_dataset;

/* Loads a SPEC ("synth:n=1024,d=32,k=1,seed=1,aniso=1"). SGN_E_INPUT with a message naming
 * the spec or file on bad input. */
sgn_status sgn_data_load(const char *spec, sgn_dataset *out);

/* A random teacher task: x uniform on the unit sphere after scaling coordinate j by
 * aniso^(-j/d); y = f_teacher(x), a fixed two-layer ReLU network of width 64. */
sgn_status sgn_data_synth(int64_t n, int64_t d, int64_t k, uint64_t seed, double aniso,
                          sgn_dataset *out);

void sgn_dataset_free(sgn_dataset *ds);

#endif
