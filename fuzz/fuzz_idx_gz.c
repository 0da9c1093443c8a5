/* fuzz_idx_gz.c — the IDX loader through gzip: the harness compresses the images and labels it
 * is given (so the fuzzer mutates the IDX content, not the deflate bits) and may then cut the
 * compressed images short, as a truncated download would.
 * Input (fuzz_split2): byte 0 bit 7 adds ",n=N" with N = (byte 0 & 63) + 1; bit 6 truncates
 * the compressed images to (byte 0 & 63) / 64 of their length; bit 5 truncates the labels the
 * same way. Then the images and the labels, uncompressed. */
#include <zlib.h>

#include "fuzz_common.h"

/* data as a gzip member written to path, cut to keep/64 of its bytes when keep < 64. */
static void write_gz(const char *path, const uint8_t *data, size_t len, unsigned keep) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
  uLong cap = deflateBound(&z, (uLong)len) + 64;
  uint8_t *out = malloc(cap);
  if (!out) abort();
  z.next_in = (Bytef *)data;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  size_t n = (size_t)z.total_out;
  deflateEnd(&z);
  if (keep < 64) n = n * keep / 64;
  fuzz_write(path, out, n);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t opt;
  const uint8_t *im, *lb;
  size_t imlen, lblen;
  if (!fuzz_split2(data, size, &opt, &im, &imlen, &lb, &lblen)) return 0;
  const char *ipath = fuzz_path("images-idx3-ubyte.gz"), *lpath = fuzz_path("labels-idx1-ubyte.gz");
  write_gz(ipath, im, imlen, (opt & 0x40) ? opt & 63 : 64);
  write_gz(lpath, lb, lblen, (opt & 0x20) ? opt & 63 : 64);
  char spec[1200];
  snprintf(spec, sizeof spec, "idx:%s,%s", ipath, lpath);
  if (opt & 0x80) snprintf(spec + strlen(spec), 32, ",n=%d", (opt & 63) + 1);
  sgn_dataset ds;
  sgn_status st = sgn_data_load(spec, NULL, &ds);
  fuzz_check_dataset(st, &ds);
  return 0;
}
