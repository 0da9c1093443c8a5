/* replay.c — a main() for a harness without libFuzzer: runs LLVMFuzzerTestOneInput once on each
 * file named, or on each file in each folder named. `make sanitize` links every harness with it
 * (gcc, ASan + UBSan) and replays fuzz/corpus, so the seeds and the crash inputs kept there as
 * regressions run in CI. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    perror(path);
    return 1;
  }
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len == cap) {
      cap = cap ? 2 * cap : 4096;
      uint8_t *grown = realloc(buf, cap);
      if (!grown) abort();
      buf = grown;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    if (got == 0) break;
    len += got;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  return 0;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int runs = 0, bad = 0;
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
      struct dirent **names;
      int n = scandir(argv[i], &names, NULL, alphasort);
      if (n < 0) {
        perror(argv[i]);
        return 1;
      }
      for (int j = 0; j < n; j++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[i], names[j]->d_name);
        if (names[j]->d_name[0] != '.' && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
          bad |= replay_file(path), runs++;
        free(names[j]);
      }
      free(names);
    } else {
      bad |= replay_file(argv[i]), runs++;
    }
  }
  printf("%s: replayed %d inputs\n", argv[0], runs);
  return bad;
}
