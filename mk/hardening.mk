# mk/hardening.mk — `make sanitize` (the library, CLI and Criterion suites under AddressSanitizer
# and UndefinedBehaviorSanitizer, in build-san/) and `make fuzz` (libFuzzer harnesses for every
# parser, in build-fuzz/). Both build the host library alone: the CUDA plugin is not built there,
# so the GPU suite skips after its loader finds no plugin.

# ---- sanitizers ----

SAN_BUILD  := build-san
SAN_CC     ?= gcc
SAN_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# No -Werror: the sanitizers change what the optimizer sees, and the warnings are the normal
# build's job.
SAN_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp $(INC) -MMD -MP $(SAN_FLAGS)
SAN_LDLIBS := $(LDLIBS)
SAN_LIB_OBJ  := $(LIB_SRC:%.c=$(SAN_BUILD)/%.o)
SAN_TEST_SRC := $(wildcard tests/test_*.c)
SAN_TEST_BIN := $(SAN_TEST_SRC:tests/%.c=$(SAN_BUILD)/tests/%)
SAN_EXAMPLE_BIN := $(patsubst examples/%.c,$(SAN_BUILD)/examples/%,$(wildcard examples/*.c))
# the fuzz harnesses, each linked with a plain main that replays its fuzz/corpus folder
SAN_REPLAY_BIN  := $(patsubst fuzz/fuzz_%.c,$(SAN_BUILD)/fuzz/replay_%,$(wildcard fuzz/fuzz_*.c))

# Every report goes to a file in SAN_LOGS/<suite>/, and any file there fails the run: Criterion
# ignores how a test's process exits after the test has passed, so a leak found at its exit would
# otherwise go unseen, and so would one in a `sketchgn` the CLI suites run. Leaks are errors
# (LeakSanitizer); mk/lsan.supp holds the narrow suppressions for code we do not own, and
# fast_unwind_on_malloc=0 gives them whole stacks to match. allocator_may_return_null: a failed
# huge allocation returns NULL as with glibc, so the engine's out-of-memory paths run instead of
# ASan aborting. SKETCHGN_SANITIZED tells test_bad_input that RLIMIT_AS cannot apply.
SAN_LOGS := $(abspath $(SAN_BUILD))/logs
SAN_ENV  := ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:halt_on_error=1:allocator_may_return_null=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$$logs/asan \
            LSAN_OPTIONS=suppressions=$(abspath mk/lsan.supp):print_suppressions=0 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$$logs/ubsan \
            SKETCHGN_SANITIZED=1

.PHONY: sanitize sanitize-build
sanitize-build: $(SAN_BUILD)/sketchgn $(SAN_TEST_BIN) $(SAN_EXAMPLE_BIN) $(SAN_REPLAY_BIN)

# Every Criterion suite (the CLI suites exec the sanitized binary), the examples, and the fuzz
# corpus replayed through the harnesses.
sanitize: sanitize-build
	@echo "== sanitize: ASan + UBSan ($(SAN_CC)), suites and examples in $(SAN_BUILD)/"
	@rm -rf $(SAN_LOGS); fail=0; \
	for t in $(SAN_TEST_BIN) $(SAN_EXAMPLE_BIN) $(SAN_REPLAY_BIN); do \
	  echo "== $$t"; logs=$(SAN_LOGS)/$$(basename $$t); mkdir -p $$logs; \
	  case $$t in */tests/*) args="--jobs 2";; */replay_*) args=fuzz/corpus/$${t##*/replay_};; \
	    *) args=;; esac; \
	  $(SAN_ENV) SKETCHGN_BIN=$(SAN_BUILD)/sketchgn $$t $$args || fail=1; \
	  if [ -n "$$(ls $$logs)" ]; then \
	    fail=1; echo "== sanitizer reports from $$t ($$logs):"; cat $$logs/*; \
	  fi; \
	done; \
	if [ $$fail = 0 ]; then echo "== sanitize: clean"; else echo "== sanitize: FAILED"; fi; \
	exit $$fail

$(SAN_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) -c $< -o $@

$(SAN_BUILD)/libsketchgn.a: $(SAN_LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(SAN_BUILD)/sketchgn: $(CLI_SRC:%.c=$(SAN_BUILD)/%.o) $(SAN_BUILD)/libsketchgn.a
	$(SAN_CC) $(SAN_CFLAGS) $^ -o $@ $(SAN_LDLIBS)

$(SAN_BUILD)/tests/%: tests/%.c $(SAN_BUILD)/libsketchgn.a $(SAN_BUILD)/sketchgn
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) $< $(SAN_BUILD)/libsketchgn.a -o $@ $(SAN_LDLIBS) $(TEST_LDLIBS)

$(SAN_BUILD)/tests/test_cli_opts: tests/test_cli_opts.c $(SAN_BUILD)/cli/opts.o \
                                  $(SAN_BUILD)/libsketchgn.a $(SAN_BUILD)/sketchgn
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) $< $(SAN_BUILD)/cli/opts.o $(SAN_BUILD)/libsketchgn.a -o $@ \
	  $(SAN_LDLIBS) $(TEST_LDLIBS)

$(SAN_BUILD)/examples/%: examples/%.c $(SAN_BUILD)/libsketchgn.a
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) $< $(SAN_BUILD)/libsketchgn.a -o $@ $(SAN_LDLIBS)

$(SAN_BUILD)/fuzz/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(wildcard fuzz/*.h) $(SAN_BUILD)/libsketchgn.a
	@mkdir -p $(dir $@)
	$(SAN_CC) $(SAN_CFLAGS) -Ifuzz $< fuzz/replay.c $(SAN_BUILD)/libsketchgn.a -o $@ $(SAN_LDLIBS)

# ---- valgrind ----

# valgrind on a CPU training run of the normal build (CUDA plugin and all: a CPU run never loads
# it), with definite leaks counted as errors too. The CLI does not re-run itself under valgrind
# (cli/main.c, env_fixup): the re-run would escape the check. Not part of `make sanitize`: it
# takes about a minute.
.PHONY: valgrind
valgrind: all
	valgrind --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
	  $(BUILD)/sketchgn train --data synth:n=256,d=8,seed=1 --width 256 --steps 3 --device cpu

# ---- fuzzing ----

# libFuzzer needs clang (Debian: clang, which brings libclang-rt-NN-dev with the fuzzer runtime).
FUZZ_BUILD  := build-fuzz
FUZZ_CC     ?= clang
FUZZ_FLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra $(INC) -Ifuzz -MMD -MP $(FUZZ_FLAGS)
# Coverage (what libFuzzer steers by) only in the parsers; the rest of the library links in with
# the sanitizers alone.
FUZZ_COV_SRC := src/io/data.c src/io/model_file.c src/io/prep.c src/util.c src/state.c
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_SRC     := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)

.PHONY: fuzz
.SECONDARY: $(FUZZ_LIB_OBJ)
fuzz: $(FUZZ_BIN)
	@echo "== fuzz: $(notdir $(FUZZ_BIN)) in $(FUZZ_BUILD)/; run them with scripts/fuzz.sh SECONDS"

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fopenmp -Wno-pass-failed \
	  $(if $(filter $<,$(FUZZ_COV_SRC)),-fsanitize=fuzzer-no-link) -c $< -o $@

$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(wildcard fuzz/*.h) $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJ) -o $@ $(SAN_LDLIBS)

# The harnesses again, with gcc and no sanitizers, each linked with a main that replays inputs:
# scripts/fuzz.sh runs them on the grown corpus under valgrind, which sees the reads of
# uninitialised memory that ASan cannot.
FUZZ_PLAIN      := $(FUZZ_BUILD)/plain
FUZZ_REPLAY_BIN := $(FUZZ_SRC:fuzz/fuzz_%.c=$(FUZZ_BUILD)/replay_%)
.PHONY: fuzz-replay
fuzz-replay: $(FUZZ_REPLAY_BIN)

FUZZ_PLAIN_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -fopenmp $(INC) -Ifuzz -MMD -MP
FUZZ_PLAIN_OBJ    := $(LIB_SRC:%.c=$(FUZZ_PLAIN)/%.o)
.SECONDARY: $(FUZZ_PLAIN_OBJ)

$(FUZZ_PLAIN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(FUZZ_PLAIN_CFLAGS) -c $< -o $@

$(FUZZ_BUILD)/replay_%: fuzz/fuzz_%.c fuzz/replay.c $(wildcard fuzz/*.h) $(FUZZ_PLAIN_OBJ)
	$(CC) $(FUZZ_PLAIN_CFLAGS) $< fuzz/replay.c $(FUZZ_PLAIN_OBJ) -o $@ $(SAN_LDLIBS)

-include $(shell find $(SAN_BUILD) $(FUZZ_BUILD) -name '*.d' 2>/dev/null)

.PHONY: clean-hardening
clean: clean-hardening
clean-hardening:
	rm -rf $(SAN_BUILD) $(FUZZ_BUILD)
