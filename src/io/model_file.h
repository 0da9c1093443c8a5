/* model_file.h — model files and checkpoints. A model file is a versioned little-endian binary:
 * magic, version, dimensions, task, preprocessing, A, W, and a CRC32 of everything before it.
 * A checkpoint is the same plus an opaque session-state blob. Files are written to PATH.tmp and
 * renamed into place; loading checks every size against the file's real length before it
 * allocates, and rejects anything inconsistent with a one-line message naming the file. */
#ifndef SGN_MODEL_IO_H
#define SGN_MODEL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "prep.h"
#include "sketchgn.h"

typedef enum sgn_task {
  SGN_TASK_REGRESSION = 0,
  SGN_TASK_CLASSIFY, /* k = classes one-hot outputs; the prediction is the argmax */
} sgn_task;

/* Everything a model file holds beyond the network itself. */
typedef struct sgn_model_meta {
  sgn_task task;
  int64_t classes; /* k when classifying, else 0 */
  sgn_prep prep;   /* prep.d_in raw columns; sgn_prep_dim(&prep) == model->d */
} sgn_model_meta;

/* Writes model + meta to path atomically. SGN_E_INPUT if the path cannot be written (naming it),
 * SGN_E_RUNTIME on a failed write (disk full); the previous file at path is left intact. */
sgn_status sgn_model_save(const char *path, const sgn_model *model, const sgn_model_meta *meta);

/* Reads a model file. On success *model and meta->prep are owned by the caller
 * (sgn_model_free, sgn_prep_free). SGN_E_INPUT naming the file on anything malformed. */
sgn_status sgn_model_load(const char *path, sgn_model **model, sgn_model_meta *meta);

/* A checkpoint: the model file's content plus `state` (state_bytes opaque bytes), CRC-checked. */
sgn_status sgn_checkpoint_save(const char *path, const sgn_model *model,
                               const sgn_model_meta *meta, const void *state, size_t state_bytes);
/* On success *state is malloc'ed (free it) and *state_bytes set. */
sgn_status sgn_checkpoint_load(const char *path, sgn_model **model, sgn_model_meta *meta,
                               void **state, size_t *state_bytes);

#endif
