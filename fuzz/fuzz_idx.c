/* fuzz_idx.c — the IDX loader on the files as given: idx:IMAGES,LABELS[,n=N]. zlib's gzread
 * passes a plain file through and inflates one that starts with the gzip magic, so this harness
 * also feeds the loader corrupt gzip streams; fuzz_idx_gz feeds it well-formed ones.
 * Input (fuzz_split2): byte 0 bit 7 adds ",n=N" with N = (byte 0 & 63) + 1; then the images
 * file and the labels file. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t opt;
  const uint8_t *im, *lb;
  size_t imlen, lblen;
  if (!fuzz_split2(data, size, &opt, &im, &imlen, &lb, &lblen)) return 0;
  const char *ipath = fuzz_path("images-idx3-ubyte"), *lpath = fuzz_path("labels-idx1-ubyte");
  fuzz_write(ipath, im, imlen);
  fuzz_write(lpath, lb, lblen);
  char spec[1200];
  snprintf(spec, sizeof spec, "idx:%s,%s", ipath, lpath);
  if (opt & 0x80) snprintf(spec + strlen(spec), 32, ",n=%d", (opt & 63) + 1);
  sgn_dataset ds;
  sgn_status st = sgn_data_load(spec, NULL, &ds);
  fuzz_check_dataset(st, &ds);
  return 0;
}
