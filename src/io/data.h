/* data.h — the data loaders (data.c) behind the SPECs of sketchgn_io.h. Everything they offer is
 * public: sgn_dataset, sgn_data_load, sgn_data_synth, sgn_dataset_free are declared there. */
#ifndef SGN_DATA_H
#define SGN_DATA_H

#include "sketchgn_io.h"

/* What the CLI may ask of a loader beyond sgn_data_load (private: sgn_dataset stays as the
 * public API and the Python binding lay it out). */
typedef struct sgn_data_want {
  int64_t inputs;  /* > 0: the model's raw input columns. A CSV without ,k= or --targets whose rows
                     have exactly this many fields, or an NPY without --targets, is read as inputs
                     only: k = 0, Y NULL (predict on unlabeled data). */
  int text_labels; /* 1: a CSV's one target column may hold text (class labels of any kind):
                      (*text)[i] is row i's label when it is not a number (Y[i] NaN), else NULL
                      (Y[i] its value); *text is NULL when every label is a number. */
} sgn_data_want;

/* sgn_data_load with want (NULL: none, as sgn_data_load). text may be NULL unless
 * want->text_labels; free it with sgn_data_text_free(*text, out->n). */
sgn_status sgn_data_load_ex(const char *spec, const char *targets, const sgn_data_want *want,
                            sgn_dataset *out, char ***text);
void sgn_data_text_free(char **text, int64_t n);

#endif
