/* fuzz_npy.c — the NPY loader: FILE.npy[,n=N] with --targets T.npy, both files fuzzed.
 * Input (fuzz_split2): byte 0 bit 7 adds ",n=N" with N = (byte 0 & 63) + 1, bit 6 drops
 * --targets; then the inputs file and the targets file. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t opt;
  const uint8_t *x, *y;
  size_t xlen, ylen;
  if (!fuzz_split2(data, size, &opt, &x, &xlen, &y, &ylen)) return 0;
  const char *xpath = fuzz_path("x.npy"), *ypath = fuzz_path("y.npy");
  fuzz_write(xpath, x, xlen);
  fuzz_write(ypath, y, ylen);
  char spec[600];
  if (opt & 0x80) snprintf(spec, sizeof spec, "%s,n=%d", xpath, (opt & 63) + 1);
  else snprintf(spec, sizeof spec, "%s", xpath);
  sgn_dataset ds;
  sgn_status st = sgn_data_load(spec, (opt & 0x40) ? NULL : ypath, &ds);
  fuzz_check_dataset(st, &ds);
  return 0;
}
