/* fuzz_model_io.h — the body of fuzz_model and fuzz_checkpoint. Almost every mutation breaks the
 * CRC, which would stop the loader before it looks at the values; so byte 0 bit 0 asks the
 * harness to write a correct CRC over the rest first. A file that loads must save back to the
 * same bytes. Input: byte 0 (options), then the file. */
#ifndef SGN_FUZZ_MODEL_IO_H
#define SGN_FUZZ_MODEL_IO_H

#include <zlib.h>

#include "fuzz_common.h"
#include "model_file.h"

static inline uint8_t *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  FUZZ_CHECK(f != NULL);
  fseek(f, 0, SEEK_END);
  *len = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc(*len + 1);
  FUZZ_CHECK(b && fread(b, 1, *len, f) == *len);
  fclose(f);
  return b;
}

static inline int fuzz_model_file(const uint8_t *data, size_t size, int ckpt) {
  if (size < 1) return 0;
  uint8_t opt = data[0];
  size_t len = size - 1;
  uint8_t *file = malloc(len ? len : 1);
  if (!file) abort();
  memcpy(file, data + 1, len);
  if ((opt & 1) && len >= 4) {
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), file, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) file[len - 4 + i] = (uint8_t)(crc >> (8 * i));
  }
  const char *path = fuzz_path(ckpt ? "in.ckpt" : "in.bin");
  const char *again = fuzz_path(ckpt ? "again.ckpt" : "again.bin");
  fuzz_write(path, file, len);

  sgn_model *model = (sgn_model *)1;
  sgn_model_meta meta;
  memset(&meta, 0xAB, sizeof meta);
  void *state = (void *)1;
  size_t state_bytes = 7;
  sgn_status st = ckpt ? sgn_checkpoint_load(path, &model, &meta, &state, &state_bytes)
                       : sgn_model_load(path, &model, &meta);
  if (st != SGN_OK) {
    FUZZ_CHECK(st == SGN_E_INPUT || st == SGN_E_RUNTIME);
    FUZZ_CHECK(model == NULL && meta.prep.mean == NULL && meta.prep.scale == NULL);
    if (ckpt) FUZZ_CHECK(state == NULL && state_bytes == 0);
    fuzz_check_message();
    free(file);
    return 0;
  }
  /* the contract of a loaded model */
  FUZZ_CHECK(model && model->d >= 1 && model->m >= 1 && model->k >= 1);
  FUZZ_CHECK(sgn_prep_dim(&meta.prep) == model->d);
  FUZZ_CHECK(meta.task == SGN_TASK_REGRESSION ? meta.classes == 0
                                              : meta.classes == model->k && model->k >= 2);
  for (int64_t i = 0; i < model->m * model->k; i++)
    FUZZ_CHECK(model->A[i] == 1.0f || model->A[i] == -1.0f);
  for (int64_t i = 0; i < model->m * model->d; i++) FUZZ_CHECK(isfinite(model->W[i]));
  for (int64_t j = 0; j < meta.prep.d_in; j++)
    FUZZ_CHECK(isfinite(meta.prep.mean[j]) && isfinite(meta.prep.scale[j]));
  /* saving it back gives the same bytes */
  st = ckpt ? sgn_checkpoint_save(again, model, &meta, state, state_bytes)
            : sgn_model_save(again, model, &meta);
  FUZZ_CHECK(st == SGN_OK);
  size_t alen;
  uint8_t *back = slurp(again, &alen);
  FUZZ_CHECK(alen == len && memcmp(back, file, len) == 0);
  free(back);
  free(file);
  if (ckpt) free(state);
  sgn_model_free(model);
  sgn_prep_free(&meta.prep);
  return 0;
}

#endif
