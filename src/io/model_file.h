/* model_file.h — model files and checkpoints (model_file.c). Model files, sgn_task and
 * sgn_model_meta are public (sketchgn_io.h); checkpoints, which the CLI writes for --checkpoint
 * and reads for --resume, are private. A checkpoint is a model file's content plus an opaque
 * session-state blob, written and checked the same way (PATH.tmp renamed into place, sizes
 * against the file's length, CRC32). */
#ifndef SGN_MODEL_IO_H
#define SGN_MODEL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "sketchgn_io.h"

/* What a file holds beyond sgn_model_meta (format version 2; a file without any is written as
 * version 1): the class labels of a classifier whose labels are not 0..K-1 (any strings; numbers
 * as "%.9g"), and in a checkpoint the run's settings. All owned by the struct
 * (sgn_model_extra_free). */
typedef struct sgn_model_extra {
  int64_t nlabels; /* K (= meta->classes) label strings, class c's label at [c]; 0 = 0..K-1 */
  char **labels;
  char *run; /* checkpoints: "key=value" lines (no '\n' in values), or NULL */
} sgn_model_extra;

void sgn_model_extra_free(sgn_model_extra *x);

/* sgn_model_save / sgn_model_load with the extras (x NULL: none; a load fills *x, zeroed first). */
sgn_status sgn_model_save_extra(const char *path, const sgn_model *model,
                                const sgn_model_meta *meta, const sgn_model_extra *x);
sgn_status sgn_model_load_extra(const char *path, sgn_model **model, sgn_model_meta *meta,
                                sgn_model_extra *x);

/* A checkpoint: the model file's content plus `state` (state_bytes opaque bytes), CRC-checked. */
sgn_status sgn_checkpoint_save(const char *path, const sgn_model *model, const sgn_model_meta *meta,
                               const void *state, size_t state_bytes);
/* On success *state is malloc'ed (free it) and *state_bytes set. */
sgn_status sgn_checkpoint_load(const char *path, sgn_model **model, sgn_model_meta *meta,
                               void **state, size_t *state_bytes);
/* The same with the extras (x NULL: none / not wanted). */
sgn_status sgn_checkpoint_save_extra(const char *path, const sgn_model *model,
                                     const sgn_model_meta *meta, const sgn_model_extra *x,
                                     const void *state, size_t state_bytes);
sgn_status sgn_checkpoint_load_extra(const char *path, sgn_model **model, sgn_model_meta *meta,
                                     sgn_model_extra *x, void **state, size_t *state_bytes);

#endif
