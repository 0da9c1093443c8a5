# sketchgn — one Makefile: the CPU library (src/), binary (cli/) and tests always build; the CUDA
# backend builds from src/backend/cuda/ when nvcc is found (USE_CUDA=0 turns it off, CUDA_ARCH=90
# picks the GPU), into its own plugin, libsketchgn-cuda.so, which the library loads only when a
# GPU is asked for (src/backend/backend_cuda.h). Nothing else links a CUDA library.

CC      ?= cc
BUILD   ?= build
# Headers: the public ones in include/, each private one beside its .c (one -I per layer).
INC     := -Iinclude -Isrc -Isrc/io -Isrc/backend -Isrc/backend/cpu -Icli
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fopenmp -fPIC $(INC) -MMD -MP
LDLIBS  := -lfftw3f -lopenblas -llapacke -lm -lz -ldl -fopenmp
TEST_LDLIBS := -lcriterion

NVCC      ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
USE_CUDA  ?= $(if $(NVCC),1,0)
CUDA_ARCH ?= 90
CU_SRC    := $(wildcard src/backend/cuda/*.cu)

LIB_SRC  := $(wildcard src/*.c src/io/*.c src/backend/*.c src/backend/cpu/*.c)
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_BIN := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

# The shared library is libsketchgn.so.VERSION with soname libsketchgn.so.MAJOR; `make install`
# puts everything under PREFIX (DESTDIR for staging). PYTHON runs the binding's tests.
VERSION := $(shell sed -n 's/^\#define SGN_VERSION "\(.*\)"/\1/p' include/sketchgn.h)
SONAME  := libsketchgn.so.$(firstword $(subst ., ,$(VERSION)))
PREFIX  ?= /usr/local
PYTHON  ?= python3

ifeq ($(USE_CUDA),1)
ifneq ($(CU_SRC),)
CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
CU_OBJ    := $(CU_SRC:%.cu=$(BUILD)/%.o)
PLUGIN    := $(BUILD)/libsketchgn-cuda.so
CU_LIBS   := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcusolver -lcufft \
             -lcurand -lcudart -lstdc++ -lm
# everything in the plugin is hidden but its entry point (sgn_cuda_plugin_entry)
NVFLAGS   := -O2 -std=c++17 $(INC) -Isrc/backend/cuda -MMD -MP -Xcompiler -fvisibility=hidden \
             -gencode arch=compute_$(CUDA_ARCH),code=sm_$(CUDA_ARCH) \
             -gencode arch=compute_$(CUDA_ARCH),code=compute_$(CUDA_ARCH) \
             -Werror all-warnings -Xcompiler -Wall,-Wextra
endif
endif
NVFLAGS += -Xcompiler -fPIC

.PHONY: all test clean probe demo examples install uninstall FORCE
.PHONY: test-examples test-install test-python check-exports check-cycles
.PHONY: python-libs install-python
all: probe $(BUILD)/libsketchgn.a $(BUILD)/libsketchgn.so $(BUILD)/sketchgn $(PLUGIN)

probe:
	@if [ "$(USE_CUDA)" = 1 ] && [ -n "$(CU_SRC)" ]; then \
	  echo "sketchgn: nvcc found ($(NVCC)); building the CPU backend and the CUDA backend for sm_$(CUDA_ARCH)"; \
	elif [ "$(USE_CUDA)" = 1 ]; then \
	  echo "sketchgn: nvcc found ($(NVCC)), no src/backend/cuda/*.cu yet; building the CPU backend"; \
	else \
	  echo "sketchgn: no nvcc (or USE_CUDA=0); building the CPU backend only"; \
	fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# The library's objects hide every symbol but the SGN_API declarations of the public headers
# (include/sketchgn.h, include/sketchgn_io.h): libsketchgn.so exports exactly the documented API,
# which scripts/check-exports.sh checks. The CLI and the tests reach internals through the
# static archive, where visibility does not apply.
LIB_CFLAGS := -fvisibility=hidden
$(LIB_OBJ): $(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/src/backend/cuda/%.o: src/backend/cuda/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(BUILD)/libsketchgn.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# The CUDA backend's plugin: self-contained (no undefined symbol left for the host to provide).
ifneq ($(PLUGIN),)
$(PLUGIN): $(CU_OBJ)
	$(CC) -shared -Wl,--no-undefined $^ -o $@ $(CU_LIBS)
endif

# Objects follow the compiler flags (those built before -fPIC cannot go into the shared
# library): the stamp is rewritten only when the flags change.
$(BUILD)/flags: FORCE
	@mkdir -p $(BUILD) && echo '$(CFLAGS) | $(LIB_CFLAGS) | $(NVFLAGS)' | cmp -s - $@ || \
	  echo '$(CFLAGS) | $(LIB_CFLAGS) | $(NVFLAGS)' > $@
$(LIB_OBJ) $(CU_OBJ) $(CLI_OBJ): $(BUILD)/flags

$(BUILD)/libsketchgn.so.$(VERSION): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) $^ -o $@ $(LDLIBS)

$(BUILD)/libsketchgn.so: $(BUILD)/libsketchgn.so.$(VERSION)
	ln -sf libsketchgn.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/sketchgn: $(CLI_OBJ) $(BUILD)/libsketchgn.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libsketchgn.a $(BUILD)/sketchgn $(PLUGIN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libsketchgn.a -o $@ $(LDLIBS) $(TEST_LDLIBS)

# test_cli_opts also unit-tests the option parser, so it links the parser's object.
$(BUILD)/tests/test_cli_opts: tests/test_cli_opts.c $(BUILD)/cli/opts.o $(BUILD)/libsketchgn.a \
                              $(BUILD)/sketchgn $(PLUGIN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/cli/opts.o $(BUILD)/libsketchgn.a -o $@ $(LDLIBS) $(TEST_LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libsketchgn.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libsketchgn.a -o $@ $(LDLIBS)

examples: $(EXAMPLE_BIN)

# Each suite runs on its own, two tests at a time with one thread each (results do not depend on
# the thread count; two threads per test on two cores only contend). The CLI tests find the
# binary through SKETCHGN_BIN. Then the
# examples, the install with the README's C snippet, the Python binding's tests, and the checks
# of the library's exports and of cycles between its objects.
test: all $(TEST_BIN) examples
	@fail=0; scripts/check-no-exit.sh $(LIB_OBJ) $(CU_OBJ) || fail=1; \
	for t in $(TEST_BIN); do \
	  echo "== $$t"; SKETCHGN_BIN=$(BUILD)/sketchgn OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
	    $$t --jobs 2 || fail=1; \
	done; \
	for t in test-examples test-install test-python check-exports check-cycles; do \
	  $(MAKE) -s --no-print-directory $$t || fail=1; \
	done; exit $$fail

# libsketchgn.so exports exactly the functions of include/sketchgn.h and include/sketchgn_io.h.
check-exports: $(BUILD)/libsketchgn.so
	@echo "== scripts/check-exports.sh"
	@CC="$(CC)" scripts/check-exports.sh $(BUILD)/libsketchgn.so

# No two of the library's or the CUDA plugin's objects depend on each other (nm's symbols).
check-cycles: $(LIB_OBJ) $(CU_OBJ)
	@echo "== scripts/check-cycles.sh"
	@scripts/check-cycles.sh $(BUILD)

test-examples: examples
	@for e in $(EXAMPLE_BIN); do echo "== $$e"; $$e || exit 1; done

# Installs into a scratch prefix, builds the README's "Use from C" snippet with pkg-config (from
# docs_snippets.md until that section is in README.md), runs it (it saves a model file into
# $(BUILD)/examples), and uninstalls.
STAGE    := $(abspath $(BUILD)/stage)
SNIPPETS := $(firstword $(shell grep -l '^\#\# Use from C' README.md docs_snippets.md 2>/dev/null))
test-install: $(BUILD)/libsketchgn.a $(BUILD)/libsketchgn.so $(BUILD)/sketchgn
	@echo "== make install PREFIX=$(STAGE); the README's C snippet via pkg-config; make uninstall"
	@rm -rf $(STAGE) && $(MAKE) -s --no-print-directory install PREFIX=$(STAGE) >/dev/null
	@mkdir -p $(BUILD)/examples && awk '/^## Use from C/ {s = 1} s && /^```c$$/ {c = 1; next} \
	  c && /^```$$/ {exit} c' $(SNIPPETS) > $(BUILD)/examples/readme_c.c
	@$(CC) -std=c11 -Wall -Wextra -Werror $(BUILD)/examples/readme_c.c -o $(BUILD)/examples/readme_c \
	  $$(PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig pkg-config --cflags --libs sketchgn)
	@$(BUILD)/examples/readme_c $(BUILD)/examples/readme_c.sgn
	@$(MAKE) -s --no-print-directory uninstall PREFIX=$(STAGE) >/dev/null
	@left=$$(find $(STAGE) ! -type d); [ -z "$$left" ] || { echo "uninstall left $$left"; exit 1; }

# The binding's pytest suite, with the first of $(PYTHON) and Debian's python3 that has NumPy
# and pytest.
test-python: $(BUILD)/libsketchgn.so $(BUILD)/sketchgn
	@py=; for p in $(PYTHON) /usr/bin/python3; do \
	  if $$p -c 'import numpy, pytest' 2>/dev/null; then py=$$p; break; fi; done; \
	if [ -z "$$py" ]; then \
	  echo "== python/tests skipped: no python3 with numpy and pytest (scripts/install-deps.sh)"; \
	else \
	  echo "== python/tests ($$py)"; SKETCHGN_BIN=$(BUILD)/sketchgn PYTHONPATH=python \
	    SKETCHGN_LIB=$(abspath $(BUILD))/libsketchgn.so \
	    PYTHONDONTWRITEBYTECODE=1 $$py -m pytest -q -p no:cacheprovider python/tests; \
	fi

# What `pip install ./python` (python/setup.py) ships inside the package: the shared library, and
# the CUDA plugin when nvcc was found. `make install-python` installs the package into the
# environment of $(PYTHON) (PIP_FLAGS: e.g. --user, or --prefix).
python-libs: $(BUILD)/libsketchgn.so $(PLUGIN)

install-python:
	$(PYTHON) -m pip install $(PIP_FLAGS) ./python

# ---- install ----

LIBDIR    := $(DESTDIR)$(PREFIX)/lib
INSTALLED := bin/sketchgn include/sketchgn.h include/sketchgn_io.h lib/libsketchgn.a \
             lib/libsketchgn.so.$(VERSION) lib/$(SONAME) lib/libsketchgn.so \
             lib/pkgconfig/sketchgn.pc share/man/man1/sketchgn.1 lib/libsketchgn-cuda.so

# sketchgn.pc is written for PREFIX. Libs carries an rpath to the library directory, so programs
# linked against any prefix run without LD_LIBRARY_PATH, and -lm for the programs' own math;
# Libs.private lists what the static archive needs (pkg-config --static), LAPACKE before the
# OpenBLAS that provides its LAPACK.
PC_PRIVATE := -llapacke $(filter-out -llapacke,$(LDLIBS))
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include $(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/sketchgn $(DESTDIR)$(PREFIX)/bin/sketchgn
	install -m 644 include/sketchgn.h include/sketchgn_io.h $(DESTDIR)$(PREFIX)/include
	install -m 644 $(BUILD)/libsketchgn.a $(LIBDIR)/libsketchgn.a
	install -m 755 $(BUILD)/libsketchgn.so.$(VERSION) $(LIBDIR)/libsketchgn.so.$(VERSION)
	ln -sf libsketchgn.so.$(VERSION) $(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(LIBDIR)/libsketchgn.so
	printf '%s\n' 'prefix=$(abspath $(PREFIX))' 'libdir=$${prefix}/lib' \
	  'includedir=$${prefix}/include' '' 'Name: sketchgn' \
	  'Description: training engine for wide two-layer ReLU networks (sketched Gauss-Newton)' \
	  'Version: $(VERSION)' 'Cflags: -I$${includedir}' \
	  'Libs: -L$${libdir} -Wl,-rpath,$${libdir} -lsketchgn -lm' 'Libs.private: $(PC_PRIVATE)' \
	  > $(LIBDIR)/pkgconfig/sketchgn.pc
	install -m 644 man/sketchgn.1 $(DESTDIR)$(PREFIX)/share/man/man1/sketchgn.1
	$(if $(PLUGIN),install -m 755 $(PLUGIN) $(LIBDIR)/libsketchgn-cuda.so)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALLED))

# The main job: Fashion-MNIST classification, on the GPU when one answers and otherwise the CPU.
demo: all
	scripts/demo.sh

# The sources in the project's style (.clang-format): `make format` rewrites them in place.
FORMAT_SRC := $(wildcard src/*.[ch] src/*/*.[ch] src/*/*/*.[ch] src/backend/cuda/*.cu cli/*.[ch] \
                include/*.h tests/*.[ch] fuzz/*.[ch] examples/*.c)
.PHONY: format
format:
	clang-format -i $(FORMAT_SRC)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
include mk/hardening.mk
include mk/emu.mk
