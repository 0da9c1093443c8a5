# sketchgn — one Makefile: the CPU library, binary and tests always build; the CUDA backend
# builds from kernels/ when nvcc is found (USE_CUDA=0 turns it off, CUDA_ARCH=90 picks the GPU).

CC      ?= cc
BUILD   := build
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fopenmp -Iinclude -MMD -MP
LDLIBS  := -lopenblas -llapacke -lm -lz -fopenmp
TEST_LDLIBS := -lcriterion

NVCC      ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
USE_CUDA  ?= $(if $(NVCC),1,0)
CUDA_ARCH ?= 90
CU_SRC    := $(wildcard kernels/*.cu)

LIB_SRC  := $(filter-out host/main.c,$(wildcard host/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

ifeq ($(USE_CUDA),1)
ifneq ($(CU_SRC),)
CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
CU_OBJ    := $(CU_SRC:%.cu=$(BUILD)/%.o)
CFLAGS    += -DSGN_HAVE_CUDA -I$(CUDA_HOME)/include
LDLIBS    += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcusolver -lcufft \
             -lcurand -lcudart -lstdc++
NVFLAGS   := -O2 -std=c++17 -Iinclude \
             -gencode arch=compute_$(CUDA_ARCH),code=sm_$(CUDA_ARCH) \
             -gencode arch=compute_$(CUDA_ARCH),code=compute_$(CUDA_ARCH) \
             -Werror all-warnings -Xcompiler -Wall,-Wextra
endif
endif

.PHONY: all test clean probe demo
all: probe $(BUILD)/libsketchgn.a $(BUILD)/sketchgn

probe:
	@if [ "$(USE_CUDA)" = 1 ] && [ -n "$(CU_SRC)" ]; then \
	  echo "sketchgn: nvcc found ($(NVCC)); building the CPU backend and the CUDA backend for sm_$(CUDA_ARCH)"; \
	elif [ "$(USE_CUDA)" = 1 ]; then \
	  echo "sketchgn: nvcc found ($(NVCC)), no kernels/*.cu yet; building the CPU backend"; \
	else \
	  echo "sketchgn: no nvcc (or USE_CUDA=0); building the CPU backend only"; \
	fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/kernels/%.o: kernels/%.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -c $< -o $@

$(BUILD)/libsketchgn.a: $(LIB_OBJ) $(CU_OBJ)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/sketchgn: $(BUILD)/host/main.o $(BUILD)/libsketchgn.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c $(BUILD)/libsketchgn.a $(BUILD)/sketchgn
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< $(BUILD)/libsketchgn.a -o $@ $(LDLIBS) $(TEST_LDLIBS)

# Each suite runs on its own; the CLI tests find the binary through SKETCHGN_BIN.
test: all $(TEST_BIN)
	@fail=0; for t in $(TEST_BIN); do \
	  echo "== $$t"; SKETCHGN_BIN=$(BUILD)/sketchgn $$t --jobs 2 || fail=1; \
	done; exit $$fail

# The main job: a real training run, on the GPU when one answers and otherwise the CPU.
DEMO_DATA ?= synth:n=2048,d=32,seed=1,aniso=4
demo: all
	$(BUILD)/sketchgn train --data $(DEMO_DATA) --width 4096 --solver gn-sketch \
	  --precond-refresh auto --steps 15 --target-rel 1e-6 --device auto

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
