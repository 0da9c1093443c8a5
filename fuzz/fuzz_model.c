/* fuzz_model.c — sgn_model_load on a fuzzed model file (see fuzz_model_io.h). */
#include "fuzz_model_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return fuzz_model_file(data, size, 0);
}
