/* model_file.h — model files and checkpoints (model_file.c). Model files, sgn_task and
 * sgn_model_meta are public (sketchgn_io.h); checkpoints, which the CLI writes for --checkpoint
 * and reads for --resume, are private. A checkpoint is a model file's content plus an opaque
 * session-state blob, written and checked the same way (PATH.tmp renamed into place, sizes
 * against the file's length, CRC32). */
#ifndef SGN_MODEL_IO_H
#define SGN_MODEL_IO_H

#include <stddef.h>

#include "sketchgn_io.h"

/* A checkpoint: the model file's content plus `state` (state_bytes opaque bytes), CRC-checked. */
sgn_status sgn_checkpoint_save(const char *path, const sgn_model *model, const sgn_model_meta *meta,
                               const void *state, size_t state_bytes);
/* On success *state is malloc'ed (free it) and *state_bytes set. */
sgn_status sgn_checkpoint_load(const char *path, sgn_model **model, sgn_model_meta *meta,
                               void **state, size_t *state_bytes);

#endif
