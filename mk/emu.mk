# mk/emu.mk — `make test-emu`: the GPU suites on the CPU, against the real src/backend/cuda/*.cu
# compiled with the host C++ compiler and the emulator of tests/cuda_emu/ (CUDA runtime, kernel
# model, cuBLAS / cuSOLVER / cuFFT on OpenBLAS / LAPACKE / FFTW). The emulated plugin goes to
# build-emu/libsketchgn-cuda.so and the suites of $(BUILD)/tests/ load it through
# SKETCHGN_CUDA_PLUGIN; nothing of the product links it. Needs no nvcc and no GPU.

EMU_BUILD   := build-emu
EMU_CXX     ?= g++
EMU_DIR     := tests/cuda_emu
EMU_INC     := -I$(EMU_DIR)/include $(INC) -Isrc/backend/cuda
EMU_FLAGS   := -O2 -g -std=c++17 -fPIC -fvisibility=hidden -D_GNU_SOURCE -MMD -MP
# the .cu files as they are (no -Werror: their warnings are nvcc's business), and the
# emulator's own sources held to the project's bar
EMU_CU_FLAGS := $(EMU_FLAGS) $(EMU_INC) -include cuda_runtime.h -Wall -Wno-unused-function -Wno-unknown-pragmas
EMU_RT_FLAGS := $(EMU_FLAGS) $(EMU_INC) -Wall -Wextra -Werror
EMU_LIBS    := -lopenblas -llapacke -lfftw3f -lm

EMU_CU_CPP  := $(CU_SRC:src/backend/cuda/%.cu=$(EMU_BUILD)/cu/%.cpp)
EMU_CU_OBJ  := $(EMU_CU_CPP:%.cpp=%.o)
EMU_RT_OBJ  := $(EMU_BUILD)/emu_runtime.o $(EMU_BUILD)/emu_libs.o
EMU_PLUGIN  := $(EMU_BUILD)/libsketchgn-cuda.so
EMU_SELFTEST := $(EMU_BUILD)/selftest/selftest

# The suites that test the GPU backend, and the schedules they run in (two at least, so a race
# between blocks or warps shows as a mismatch against the CPU twin in one of them).
EMU_SUITES  := test_gpu_ops test_backend_ops test_chunking
EMU_ORDERS  ?= fwd rev
# Tests left out on the emulator, where a CUDA thread costs some 35 ns per collective it meets:
# their widest shapes at chunk width 2 launch thousands of chunks of hundreds of 256-thread
# blocks (each past the test's 120 s timeout or minutes of CPU). They run on a GPU
# (scripts/device-check.sh), and their CPU halves in `make test`.
EMU_SKIP_test_backend_ops := symmetric_model_is_exactly_zero adjointness
# ...and tests run in the first order only (a minute or more of CPU each)
EMU_ONCE_test_gpu_ops := forward_jvp_vjp_match_cpu first_three_losses_match_cpu_for_every_solver \
                         products_at_each_product_precision_match_cpu
EMU_ONCE_test_backend_ops := chunked_products_match_unchunked
# ...and then, in large-index mode (tests/cuda_emu/README.md), the suite of the ops at N = 46 400,
# one test at a time (each holds up to a GB); EMU_LARGE seeds its samples
EMU_LARGE   ?= 1
EMU_LARGE_FILTER := gpu_large/*
emu_space := $(subst ,, )
# a Criterion --filter that leaves out the tests named in $(1)
emu_filter = $(if $(strip $(1)),!($(subst $(emu_space),|,$(addprefix */,$(strip $(1))))))

.PHONY: test-emu emu-build clean-emu
.SECONDARY: $(EMU_CU_CPP) $(EMU_BUILD)/selftest/selftest.cpp
emu-build: $(EMU_PLUGIN) $(EMU_SELFTEST)

$(EMU_BUILD)/cu/%.cpp: src/backend/cuda/%.cu $(EMU_DIR)/translate.py
	@mkdir -p $(dir $@)
	python3 $(EMU_DIR)/translate.py $< $@

$(EMU_BUILD)/cu/%.o: $(EMU_BUILD)/cu/%.cpp
	$(EMU_CXX) $(EMU_CU_FLAGS) -c $< -o $@

$(EMU_BUILD)/%.o: $(EMU_DIR)/%.cpp
	@mkdir -p $(dir $@)
	$(EMU_CXX) $(EMU_RT_FLAGS) -c $< -o $@

$(EMU_PLUGIN): $(EMU_CU_OBJ) $(EMU_RT_OBJ)
	$(EMU_CXX) -shared -Wl,--no-undefined $^ -o $@ $(EMU_LIBS)

# the self-test: one planted bug of each kind, each of which the emulator must catch
$(EMU_BUILD)/selftest/selftest.cpp: $(EMU_DIR)/selftest/selftest.cu $(EMU_DIR)/translate.py
	@mkdir -p $(dir $@)
	python3 $(EMU_DIR)/translate.py $< $@

$(EMU_SELFTEST): $(EMU_BUILD)/selftest/selftest.cpp $(EMU_RT_OBJ)
	$(EMU_CXX) $(EMU_CU_FLAGS) -Werror $< $(EMU_RT_OBJ) -o $@ $(EMU_LIBS)

# The self-test, then each suite in each order, then the large-index run. SKETCHGN_REQUIRE_GPU
# turns the suites' "no GPU" skips into failures: here a GPU backend must open.
test-emu: $(EMU_PLUGIN) $(EMU_SELFTEST) $(EMU_SUITES:%=$(BUILD)/tests/%)
	@echo "== $(EMU_SELFTEST)"
	@$(EMU_SELFTEST)
	@fail=0; first=1; for o in $(EMU_ORDERS); do \
	  $(foreach t,$(EMU_SUITES), \
	  if [ $$first = 1 ]; then f='$(call emu_filter,$(EMU_SKIP_$(t)))'; \
	  else f='$(call emu_filter,$(EMU_SKIP_$(t)) $(EMU_ONCE_$(t)))'; fi; \
	  echo "== $(BUILD)/tests/$(t) on the emulator, SGN_EMU_ORDER=$$o$${f:+, --filter '$$f'}"; \
	  SKETCHGN_CUDA_PLUGIN=$(abspath $(EMU_PLUGIN)) SKETCHGN_REQUIRE_GPU=1 SGN_EMU_ORDER=$$o \
	    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BUILD)/tests/$(t) --jobs 2 \
	    $${f:+"--filter=$$f"} || fail=1;) \
	  first=0; done; \
	echo "== $(BUILD)/tests/test_gpu_ops on the emulator in large-index mode, SGN_EMU_LARGE=$(EMU_LARGE), --filter '$(EMU_LARGE_FILTER)'"; \
	SKETCHGN_CUDA_PLUGIN=$(abspath $(EMU_PLUGIN)) SKETCHGN_REQUIRE_GPU=1 SGN_EMU_LARGE=$(EMU_LARGE) \
	  OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BUILD)/tests/test_gpu_ops --jobs 1 \
	  --filter='$(EMU_LARGE_FILTER)' || fail=1; \
	exit $$fail

clean-emu:
	rm -rf $(EMU_BUILD)

-include $(shell find $(EMU_BUILD) -name '*.d' 2>/dev/null)
