/* test_hardening.c — bad luck and bad bytes. A save or checkpoint onto a full filesystem (a 64 KiB
 * tmpfs mounted for the test, in a mount namespace of its own when the kernel allows) fails with
 * one clear line and exit status 1, leaves the earlier file byte-identical and no PATH.tmp behind.
 * Then one regression test per bug that fuzzing found (fuzz/, scripts/fuzz.sh); the crash inputs
 * themselves are seeds in fuzz/corpus/, which `make sanitize` replays. The mount needs root
 * (CAP_SYS_ADMIN): without it the full-disk tests skip. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_run.h"
#include "data.h"
#include "model_file.h"

/* ---- files and the binary ---- */

static void write_bytes(const char *path, const void *b, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  cr_assert_eq(fwrite(b, 1, len, f), len);
  cr_assert_eq(fclose(f), 0);
}

/* Runs `sketchgn args...` (NULL-terminated; cli_run.h). */
static run_result run_cli(const char *const *args) { return cli_run(cli_bin(), args, 0); }

/* The folder's entries, sorted, one per line. */
static char *listing(const char *dir) {
  struct dirent **names;
  int n = scandir(dir, &names, NULL, alphasort);
  cr_assert(n >= 0, "scandir %s: %s", dir, strerror(errno));
  char *s = calloc(1, 4096);
  cr_assert_not_null(s);
  for (int i = 0; i < n; i++) {
    if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
      strncat(s, names[i]->d_name, 4096 - strlen(s) - 2);
      strcat(s, "\n");
    }
    free(names[i]);
  }
  free(names);
  return s;
}

/* ---- a full filesystem ---- */

static char mnt[512]; /* a 64 KiB tmpfs */
static int mounted, own_namespace;

static const char *in_mnt(const char *name) {
  static char buf[4][600];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", mnt, name);
  return p;
}

/* Each test runs in a process of its own: a private mount namespace makes the tmpfs vanish with
 * it even if the test dies; without one, .fini unmounts it. */
static void mount_small_fs(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(mnt, sizeof mnt, "%s/sgn_full_fs_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  cr_assert_not_null(mkdtemp(mnt), "mkdtemp: %s", strerror(errno));
  own_namespace = unshare(CLONE_NEWNS) == 0 &&
                  mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0;
  if (mount("sgn_full_fs", mnt, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0700") != 0) {
    int e = errno;
    rmdir(mnt);
    cr_skip_test("cannot mount a 64 KiB tmpfs (%s): the full-disk tests need root", strerror(e));
  }
  mounted = 1;
}

static void unmount_small_fs(void) {
  if (mounted) umount2(mnt, MNT_DETACH);
  mounted = 0;
  rmdir(mnt);
}

TestSuite(full_disk, .init = mount_small_fs, .fini = unmount_small_fs, .timeout = 120);

/* A model that fits in the tmpfs (about 1 KiB), then one that does not: width 4096 and d = 8 is
 * a 128 KiB W. --quiet, so stderr holds only what went wrong. */
#define SMALL_RUN                                                                                \
  "train", "--data", "synth:n=32,d=4,seed=2", "--width", "8", "--steps", "1", "--device", "cpu", \
      "--quiet"
#define BIG_RUN                                                                              \
  "train", "--data", "synth:n=64,d=8,seed=1", "--width", "4096", "--steps", "1", "--device", \
      "cpu", "--quiet"

/* stderr is one line that names path and says the disk is full; the status is 1. */
static void check_failed_clearly(run_result *r, const char *path) {
  cr_assert(r->exited, "killed by signal %d; stderr: %s", r->status - 128, r->err);
  cr_expect_eq(r->status, 1, "status %d, want 1 (runtime failure); stderr: %s", r->status, r->err);
  cr_expect_eq(count_lines(r->err), 1, "want one line on stderr, got:\n%s", r->err);
  cr_expect(strstr(r->err, path), "the message does not name %s: %s", path, r->err);
  cr_expect(strstr(r->err, strerror(ENOSPC)), "the message does not say '%s': %s", strerror(ENOSPC),
            r->err);
}

Test(full_disk, save_keeps_the_earlier_model) {
  const char *path = in_mnt("model.bin");
  run_result r = run_cli((const char *[]){SMALL_RUN, "--save", path, NULL});
  cr_assert(r.exited && r.status == 0, "the small model did not save: %s", r.err);
  run_free(&r);
  size_t len0, len1;
  char *before = slurp_path(path, &len0);
  cr_assert_not_null(before);

  r = run_cli((const char *[]){BIG_RUN, "--save", path, NULL});
  check_failed_clearly(&r, path);
  char *after = slurp_path(path, &len1);
  cr_assert_not_null(after, "the earlier model file is gone");
  cr_expect(len1 == len0 && memcmp(before, after, len0) == 0, "the earlier model file changed");
  char *files = listing(mnt);
  cr_expect_str_eq(files, "model.bin\n", "files left in the full filesystem:\n%s", files);
  /* and it still loads */
  sgn_model *model;
  sgn_model_meta meta;
  cr_expect_eq(sgn_model_load(path, &model, &meta), SGN_OK, "%s", sgn_last_error());
  if (model) sgn_model_free(model), sgn_prep_free(&meta.prep);
  free(files), free(before), free(after), run_free(&r);
}

Test(full_disk, checkpoint_keeps_the_earlier_checkpoint) {
  const char *path = in_mnt("run.ckpt");
  run_result r = run_cli(
      (const char *[]){SMALL_RUN, "--checkpoint-every", "1", "--checkpoint", path, NULL});
  cr_assert(r.exited && r.status == 0, "the small checkpoint was not written: %s", r.err);
  run_free(&r);
  size_t len0, len1;
  char *before = slurp_path(path, &len0);
  cr_assert_not_null(before);

  r = run_cli((const char *[]){BIG_RUN, "--checkpoint-every", "1", "--checkpoint", path, NULL});
  check_failed_clearly(&r, path);
  char *after = slurp_path(path, &len1);
  cr_assert_not_null(after, "the earlier checkpoint is gone");
  cr_expect(len1 == len0 && memcmp(before, after, len0) == 0, "the earlier checkpoint changed");
  char *files = listing(mnt);
  cr_expect_str_eq(files, "run.ckpt\n", "files left in the full filesystem:\n%s", files);
  free(files), free(before), free(after), run_free(&r);
}

/* The library call itself: SGN_E_RUNTIME (a failed write, not a bad path), naming the file. */
Test(full_disk, library_save_is_a_runtime_error) {
  const char *path = in_mnt("lib.bin");
  sgn_model *model = sgn_model_create(8, 4096, 1, SGN_INIT_SYMMETRIC, 1);
  cr_assert_not_null(model);
  sgn_model_meta meta = {.task = SGN_TASK_REGRESSION};
  float X[8 * 2] = {1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1};
  cr_assert_eq(sgn_prep_fit(&meta.prep, X, 2, 8, SGN_NORMALIZE_UNIT, 0), SGN_OK);
  cr_expect_eq(sgn_model_save(path, model, &meta), SGN_E_RUNTIME);
  cr_expect(strstr(sgn_last_error(), path) && strstr(sgn_last_error(), strerror(ENOSPC)), "%s",
            sgn_last_error());
  char *files = listing(mnt);
  cr_expect_str_eq(files, "", "files left in the full filesystem:\n%s", files);
  free(files);
  sgn_model_free(model);
  sgn_prep_free(&meta.prep);
}

/* ---- bugs fuzzing found ---- */

static char dir[512];

static void make_dir(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/sgn_fuzz_regress_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
  cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void remove_dir(void) {
  DIR *d = opendir(dir);
  if (!d) return;
  for (struct dirent *e; (e = readdir(d));) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static const char *in_dir(const char *name) {
  static char buf[4][600];
  static int next;
  char *p = buf[next++ % 4];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

/* An NPY v1 file: the header dict as given (padded), then data. */
static void write_npy(const char *path, const char *dict, const void *data, size_t bytes) {
  char hdr[256];
  int len = snprintf(hdr, sizeof hdr, "%s", dict);
  while ((10 + len + 1) % 64) hdr[len++] = ' ';
  hdr[len++] = '\n';
  char *b = malloc(10 + (size_t)len + bytes);
  cr_assert_not_null(b);
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (char)(len & 0xff), b[9] = (char)(len >> 8);
  memcpy(b + 10, hdr, (size_t)len);
  memcpy(b + 10 + len, data, bytes);
  write_bytes(path, b, 10 + (size_t)len + bytes);
  free(b);
}

static int printable(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 32 || (unsigned char)*s >= 127) return 0;
  return 1;
}

TestSuite(fuzz_regressions, .init = make_dir, .fini = remove_dir, .timeout = 30);

/* fuzz_npy: a dtype string holding control bytes (here a newline) was quoted raw into the error,
 * which then spanned two lines. Seed: fuzz/corpus/npy/regress-descr-control-bytes. */
Test(fuzz_regressions, npy_dtype_with_control_bytes_is_one_printable_line) {
  const float x[4] = {1, 2, 3, 4}, y[2] = {1, 2};
  write_npy(in_dir("x.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", x,
            sizeof x);
  const char *bad[] = {"<\x01@f4", "<f\n4",
                       ">\x7f"
                       "f4",
                       "<\x1b[31m"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }", bad[i]);
    write_npy(in_dir("y.npy"), dict, y, sizeof y);
    sgn_dataset ds;
    cr_expect_eq(sgn_data_load(in_dir("x.npy"), in_dir("y.npy"), &ds), SGN_E_INPUT,
                 "dtype %zu was accepted", i);
    const char *msg = sgn_last_error();
    cr_expect(printable(msg), "dtype %zu: the message carries raw file bytes: '%s'", i, msg);
    cr_expect(strstr(msg, "y.npy") && strstr(msg, "dtype"), "dtype %zu: %s", i, msg);
  }
}

/* Found while writing fuzz_npy, seen by valgrind (ASan and UBSan cannot see it): a dtype string
 * shorter than 3 characters left descr[] partly uninitialised, and the kind check and atoi read
 * it ("Use of uninitialised value" in npy_parse_header). Each must be a clean rejection.
 * Seed: fuzz/corpus/npy/regress-short-descr. */
Test(fuzz_regressions, npy_short_dtype_is_rejected_cleanly) {
  const float x[4] = {1, 2, 3, 4}, y[2] = {1, 2};
  write_npy(in_dir("x.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", x,
            sizeof x);
  const char *bad[] = {"", "<", "<f", "|u", "<i"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (2,), }", bad[i]);
    write_npy(in_dir("y.npy"), dict, y, sizeof y);
    sgn_dataset ds;
    cr_expect_eq(sgn_data_load(in_dir("x.npy"), in_dir("y.npy"), &ds), SGN_E_INPUT,
                 "dtype '%s' was accepted", bad[i]);
    cr_expect(strstr(sgn_last_error(), "unsupported dtype"), "dtype '%s': %s", bad[i],
              sgn_last_error());
  }
}

/* Found by replaying fuzz_npy's grown corpus under valgrind: a file holding the 6-byte magic and
 * at most 3 more bytes had its format version read from past what fread returned (an
 * uninitialised byte; the message could name a random version). Now "truncated NPY header".
 * Seed: fuzz/corpus/npy/regress-magic-only. */
Test(fuzz_regressions, npy_cut_after_the_magic_is_truncated) {
  const float y[2] = {1, 2};
  write_npy(in_dir("y.npy"), "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", y,
            sizeof y);
  const char *cut[] = {"\x93NUMPY", "\x93NUMPY\x01", "\x93NUMPY\x07\x00", "\x93NUMPY\x01\x00\x76"};
  for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
    size_t len = 6 + i;
    write_bytes(in_dir("x.npy"), cut[i], len);
    sgn_dataset ds;
    cr_expect_eq(sgn_data_load(in_dir("x.npy"), in_dir("y.npy"), &ds), SGN_E_INPUT,
                 "%zu bytes were accepted", len);
    cr_expect(strstr(sgn_last_error(), "x.npy: truncated NPY header"), "%zu bytes: %s", len,
              sgn_last_error());
  }
}
