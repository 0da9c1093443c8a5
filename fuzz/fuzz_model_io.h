/* fuzz_model_io.h — the body of fuzz_model and fuzz_checkpoint. Almost every mutation breaks the
 * CRC, which would stop the loader before it looks at the values; so byte 0 bit 0 asks the
 * harness to write a correct CRC over the rest first. Byte 0 bit 1 picks the loader: the plain
 * one (sgn_model_load, sgn_checkpoint_load) or the _extra one, which also returns the class labels
 * and run settings. A file that loads must save back (through the _extra saver, with what was
 * loaded) to the same bytes when it is version 1; a version-2 file's text may be spelled in more
 * than one way ("1.50" for "1.5", line order, escapes), so there the saved file must load and save
 * back to itself. Input: byte 0 (options), then the file. */
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

/* One of the four loaders: model or checkpoint, plain or _extra (x zeroed for the plain ones). */
static inline sgn_status load_any(const char *path, int ckpt, int extra, sgn_model **model,
                                  sgn_model_meta *meta, sgn_model_extra *x, void **state,
                                  size_t *state_bytes) {
  if (!extra) memset(x, 0, sizeof *x);
  if (ckpt)
    return extra ? sgn_checkpoint_load_extra(path, model, meta, x, state, state_bytes)
                 : sgn_checkpoint_load(path, model, meta, state, state_bytes);
  return extra ? sgn_model_load_extra(path, model, meta, x) : sgn_model_load(path, model, meta);
}

/* Saves what a load returned to path (it must succeed) and reads the file back. */
static inline uint8_t *save_and_read(const char *path, int ckpt, const sgn_model *model,
                                     const sgn_model_meta *meta, const sgn_model_extra *x,
                                     const void *state, size_t state_bytes, size_t *len) {
  sgn_status st = ckpt ? sgn_checkpoint_save_extra(path, model, meta, x, state, state_bytes)
                       : sgn_model_save_extra(path, model, meta, x);
  FUZZ_CHECK(st == SGN_OK);
  return slurp(path, len);
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

  const int extra = (opt & 2) != 0;
  sgn_model *model = (sgn_model *)1;
  sgn_model_meta meta;
  memset(&meta, 0xAB, sizeof meta);
  sgn_model_extra x = {0};
  void *state = (void *)1;
  size_t state_bytes = 7;
  sgn_status st = load_any(path, ckpt, extra, &model, &meta, &x, &state, &state_bytes);
  if (st != SGN_OK) {
    FUZZ_CHECK(st == SGN_E_INPUT || st == SGN_E_RUNTIME);
    FUZZ_CHECK(model == NULL && meta.prep.mean == NULL && meta.prep.scale == NULL);
    FUZZ_CHECK(meta.prep.y_mean == NULL && meta.prep.y_scale == NULL && meta.prep.k_y == 0);
    FUZZ_CHECK(x.nlabels == 0 && x.labels == NULL && x.run == NULL);
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
  /* target statistics: none, or one finite mean and positive scale per output of a regression */
  FUZZ_CHECK(meta.prep.k_y == 0 || (meta.task == SGN_TASK_REGRESSION && meta.prep.k_y == model->k));
  FUZZ_CHECK((meta.prep.k_y == 0) == (meta.prep.y_mean == NULL && meta.prep.y_scale == NULL));
  for (int64_t c = 0; c < meta.prep.k_y; c++)
    FUZZ_CHECK(isfinite(meta.prep.y_mean[c]) && isfinite(meta.prep.y_scale[c]) &&
               meta.prep.y_scale[c] > 0);
  FUZZ_CHECK(x.nlabels == 0 || (meta.task == SGN_TASK_CLASSIFY && x.nlabels == model->k));
  /* saving it back gives the same bytes (version 1), or a file that saves back to itself */
  size_t alen;
  uint8_t *back = save_and_read(again, ckpt, model, &meta, &x, state, state_bytes, &alen);
  if (len > 12 && file[8] == 1) {
    FUZZ_CHECK(alen == len && memcmp(back, file, len) == 0);
  } else {
    sgn_model *m2 = NULL;
    sgn_model_meta meta2;
    sgn_model_extra x2 = {0};
    void *state2 = NULL;
    size_t state2_bytes = 0, blen;
    FUZZ_CHECK(load_any(again, ckpt, 1, &m2, &meta2, &x2, &state2, &state2_bytes) == SGN_OK);
    uint8_t *back2 =
        save_and_read(fuzz_path(ckpt ? "third.ckpt" : "third.bin"), ckpt, m2, &meta2, &x2, state2,
                      state2_bytes, &blen);
    FUZZ_CHECK(blen == alen && memcmp(back2, back, alen) == 0);
    free(back2);
    if (ckpt) free(state2);
    sgn_model_extra_free(&x2);
    sgn_model_free(m2);
    sgn_prep_free(&meta2.prep);
  }
  free(back);
  free(file);
  if (ckpt) free(state);
  sgn_model_extra_free(&x);
  sgn_model_free(model);
  sgn_prep_free(&meta.prep);
  return 0;
}

#endif
