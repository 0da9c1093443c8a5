/* fuzz_csv.c — the CSV loader (sgn_data_load on FILE.csv[,options] with optional --targets).
 * Input: the file's bytes; or, when the first byte is 0x01, a control line first:
 * "\x01TARGETS|OPTIONS\n" (empty TARGETS: no --targets; OPTIONS appended to the spec after a
 * comma, e.g. "n=3,k=2"), then the file. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char targets[256] = "", opts[256] = "";
  if (size > 0 && data[0] == 0x01) {
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl) return 0;
    size_t len = (size_t)(nl - data) - 1;
    const uint8_t *bar = memchr(data + 1, '|', len);
    size_t tlen = bar ? (size_t)(bar - data) - 1 : len, olen = bar ? len - tlen - 1 : 0;
    if (tlen >= sizeof targets || olen >= sizeof opts) return 0;
    memcpy(targets, data + 1, tlen);
    if (bar) memcpy(opts, bar + 1, olen);
    /* command-line strings: printable, as typed (messages quote them back) */
    if (strlen(targets) != tlen || strlen(opts) != olen || !fuzz_printable(targets) ||
        !fuzz_printable(opts))
      return 0;
    size -= (size_t)(nl + 1 - data);
    data = nl + 1;
  }
  const char *path = fuzz_path("in.csv");
  fuzz_write(path, data, size);
  char spec[800];
  snprintf(spec, sizeof spec, "%s%s%s", path, opts[0] ? "," : "", opts);
  sgn_dataset ds;
  sgn_status st = sgn_data_load(spec, targets[0] ? targets : NULL, &ds);
  fuzz_check_dataset(st, &ds);
  return 0;
}
