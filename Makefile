# finetune — build, test, bench.
#   make                      build/libfinetune.a and build/finetune
#   make test                 build and run every test (tests/test_*.c) and fuzz each fuzz target FUZZ_TEST_SECONDS (3;
#                             0 = not at all), prints "N passed, N failed"
#   make bench                finetune bench side by side with PyTorch (bench/run.sh; bench/precision.sh: f32 / bf16;
#                             build/bench/bf16_gemm: the GEMM micro-benchmark)
#   make SANITIZE=address     instrumented build in build-address/ (same for undefined)
#   make SANITIZE=thread test ThreadSanitizer build running the tests of shared state (TSAN_TESTS)
#   make serve-hostile        10,000 hostile requests to an AddressSanitizer build of finetune serve (tests/serve/hostile.py)
#   make fuzz                 libFuzzer targets (fuzz/, clang + ASan/UBSan) in build-fuzz/, each run FUZZ_SECONDS (60)
#   make BUILD=dir            build elsewhere (parallel work trees)
CC      ?= cc
SANITIZE ?=
ifeq ($(SANITIZE),)
BUILD   ?= build
OPT     ?= -O3 -march=native
else
BUILD   ?= build-$(SANITIZE)
OPT     ?= -O1 -g -march=native -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif
BLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp
BLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-openmp
CFLAGS  ?=
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -fopenmp -Wall -Wextra -Wno-unused-parameter -Wshadow=local \
           -Iinclude -Isrc -Itests/util -I$(BLAS_INC) -MMD -MP -DFT_BUILD_DIR=\"$(BUILD)\"
LDFLAGS += -fopenmp $(if $(SANITIZE),-fsanitize=$(SANITIZE))
LDLIBS  += -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB) -lopenblas -lpcre2-8 -lutf8proc -lstemmer -lcjson -lmicrohttpd -lsqlite3 -lm -lpthread

# MPI (Open MPI from Debian: libopenmpi-dev): when found, the finetune program runs under mpirun as several
# data-parallel ranks (src/train/dist_mpi.c, linked into the program only; the library needs no MPI).
# make MPI=0 builds without it.
MPI ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null || pkg-config --cflags ompi)
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null || pkg-config --libs ompi)
endif
MPI_SRC  := src/train/dist_mpi.c
LIB_SRC  := $(filter-out $(MPI_SRC),$(sort $(wildcard src/*/*.c src/*/*/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/web_index.o
TOOL_SRC := $(sort $(wildcard tools/finetune/*.c))
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o) $(if $(filter 1,$(MPI)),$(BUILD)/obj/mpi/dist_mpi.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL := $(BUILD)/obj/tests/util/testutil.o $(BUILD)/obj/tests/util/http_client.o

# the libFuzzer targets (fuzz/fuzz_<name>.c): replayed over their seeds by tests/test_fuzz_seeds in `make test`
# (entry point renamed to ft_fuzz_<name>), fuzzed by `make fuzz`, and fuzzed FUZZ_TEST_SECONDS each by `make test`
# (tests/fuzz_short.sh: clang build in build-fuzz/, one test per target; not in the SANITIZE=... runs)
FUZZ_SRC   := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_NAMES := $(FUZZ_SRC:fuzz/fuzz_%.c=%)
FUZZ_SECONDS ?= 60
FUZZ_TEST_SECONDS ?= 3
FUZZ_OPT   := -O1 -g -march=native -fno-omit-frame-pointer -fsanitize=address,undefined,fuzzer-no-link -Wno-unknown-warning-option

.PHONY: all test bench clean fixtures fuzz fuzz-bins serve-hostile FORCE
.SECONDARY:
MAKEFLAGS += -j2
all: $(BUILD)/libfinetune.a $(BUILD)/finetune

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# the web page of `finetune serve` (GET /), embedded as bytes: xxd -i (Debian's xxd) writes them
$(BUILD)/gen/web_index.c: src/serve/web/index.html
	@mkdir -p $(dir $@)
	@{ echo '/* generated from src/serve/web/index.html by the Makefile (xxd -i): do not edit */'; \
	   echo '#include "serve/web.h"'; echo 'const unsigned char ft__web_index_html[] = {'; \
	   xxd -i < $<; echo ', 0x00};'; \
	   echo 'const size_t ft__web_index_html_len = sizeof ft__web_index_html - 1;'; } > $@.tmp && mv $@.tmp $@

# the optimizer updates: sqrtf without errno, so that the compiler vectorises their loops (src/ops/cpu/optim_update.c)
$(BUILD)/obj/src/ops/cpu/optim_update.o: CFLAGS += -fno-math-errno

$(BUILD)/obj/gen/web_index.o: $(BUILD)/gen/web_index.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libfinetune.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/finetune: $(TOOL_OBJ) $(BUILD)/libfinetune.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(MPI_LIBS)

# the MPI layer and the command that starts it: compiled with MPI's flags (and FT_HAVE_MPI) when MPI is on
$(BUILD)/obj/mpi/dist_mpi.o: $(MPI_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(MPI_CFLAGS) -c $< -o $@
ifeq ($(MPI),1)
$(BUILD)/obj/tools/finetune/cmd_train.o: CFLAGS += -DFT_HAVE_MPI
endif
$(BUILD)/obj/tools/finetune/cmd_train.o: $(BUILD)/mpi.flag
# a change of MPI=0/1 rebuilds cmd_train.o
$(BUILD)/mpi.flag: FORCE
	@mkdir -p $(BUILD); echo $(MPI) | cmp -s - $@ || echo $(MPI) > $@
FORCE:

$(BUILD)/obj/fuzz/fuzz_%.o: fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ifuzz -DLLVMFuzzerTestOneInput=ft_fuzz_$* -c $< -o $@

$(BUILD)/tests/test_fuzz_seeds: $(BUILD)/obj/tests/test_fuzz_seeds.o $(FUZZ_SRC:%.c=$(BUILD)/obj/%.o) $(TEST_UTIL) $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

$(BUILD)/fuzz/%: fuzz/fuzz_%.c $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ifuzz -fsanitize=fuzzer,address,undefined $< $(BUILD)/libfinetune.a -o $@ $(LDLIBS)

fuzz-bins: $(BUILD)/libfinetune.a $(FUZZ_NAMES:%=$(BUILD)/fuzz/%)

fuzz:
	@$(MAKE) --no-print-directory BUILD=build-fuzz CC=clang OPT="$(FUZZ_OPT)" fuzz-bins
	@./fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_NAMES)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_UTIL) $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

# the tests of shared state, which `make SANITIZE=thread test` runs (the CPU backend's OpenMP runtime is not
# instrumented, so the other tests would only report it)
TSAN_TESTS := $(BUILD)/tests/test_context_threads $(BUILD)/tests/test_encoder_train_state $(BUILD)/tests/test_serve_engine_threads $(BUILD)/tests/test_serve_metrics \
              $(BUILD)/tests/test_serve_http_threads $(BUILD)/tests/test_serve_stress \
              $(BUILD)/tests/test_train_state $(BUILD)/tests/test_gemm_bf16_threads
RUN_TESTS := $(if $(filter thread,$(SANITIZE)),$(TSAN_TESTS),$(TEST_BIN))

FUZZ_SHORT := $(if $(SANITIZE),,$(if $(filter-out 0,$(FUZZ_TEST_SECONDS)),tests/fuzz_short.sh))

test: all $(RUN_TESTS)
	@./scripts/check_names.sh $(BUILD)/libfinetune.a
	@BUILD=$(BUILD) MAKE="$(MAKE)" FUZZ_OPT="$(FUZZ_OPT)" FUZZ_TEST_SECONDS=$(FUZZ_TEST_SECONDS) ./tests/run_all.sh $(RUN_TESTS) $(FUZZ_SHORT)

# the bf16 GEMM micro-benchmark (bench/bf16_gemm.c): OpenBLAS sgemm, our bf16 kernel, the vdpbf16ps peak, and
# oneDNN's bf16 matmul when Debian's libdnnl-dev is installed (optional: nothing else links it)
DNNL_H := $(wildcard /usr/include/oneapi/dnnl/dnnl.h)
$(BUILD)/bench/bf16_gemm: bench/bf16_gemm.c $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(if $(DNNL_H),-DFT_HAVE_DNNL) $< -o $@ $(LDFLAGS) $(BUILD)/libfinetune.a $(LDLIBS) $(if $(DNNL_H),-ldnnl)

# AdamW against the memory bandwidth (bench/adamw_bw.c: a STREAM-like loop with AdamW's traffic)
$(BUILD)/bench/adamw_bw: bench/adamw_bw.c $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libfinetune.a $(LDLIBS)

# the bf16 attention of one decoder layer, forward and backward (bench/attn_bf16.c)
$(BUILD)/bench/attn_bf16: bench/attn_bf16.c $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libfinetune.a $(LDLIBS)

# the LM head's backward with f32 against bf16 logit gradients, alone and in the step (bench/lm_head_bf16.c)
$(BUILD)/bench/lm_head_bf16: bench/lm_head_bf16.c $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libfinetune.a $(LDLIBS)

# issue 16's gradient zeroing: the training step under memset1 / memset / assign, alternating in one process (bench/grad_zero.c)
$(BUILD)/bench/grad_zero: bench/grad_zero.c $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libfinetune.a $(LDLIBS)

# the bf16 step with the GEMM's fused epilogues on and off, alternated in one process (bench/fuse_step.c)
$(BUILD)/bench/fuse_step: bench/fuse_step.c $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libfinetune.a $(LDLIBS)

# the matmuls of a LoRA / QLoRA step, f32 against bf16 (bench/lora_products.c)
$(BUILD)/bench/lora_products: bench/lora_products.c $(BUILD)/libfinetune.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libfinetune.a $(LDLIBS)

bench: all $(BUILD)/bench/bf16_gemm
	@./bench/run.sh $(BUILD)/finetune
	@echo
	@./bench/precision.sh $(BUILD)/finetune
	@echo
	@$(BUILD)/bench/bf16_gemm --reps 3
	@echo
	@RECOMPUTE_ONLY=1 ./bench/memory.sh $(BUILD)/finetune
	@if [ -f models/all-MiniLM-L6-v2/model.safetensors ]; then echo; ./bench/encoder.sh; fi

# the full robustness run of finetune serve: an ASan build (build-address/), 10,000 malformed or hostile requests,
# valid ones answered throughout, exit 0 after SIGTERM with no leak report (make test runs 2,000 on the plain build)
HOSTILE_N ?= 10000
serve-hostile:
	@$(MAKE) --no-print-directory SANITIZE=address all
	@python3 tests/serve/hostile.py --bin build-address/finetune --n $(HOSTILE_N) --model stories=models/stories260K \
	    --model cls=tests/fixtures/train_encoder/tiny_bert --classifier cls

clean:
	rm -rf build build-address build-undefined build-thread build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
