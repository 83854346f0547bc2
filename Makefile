# SPDX-License-Identifier: MIT
#
# ufvm - the front door.  CMake does the building; this file bootstraps a
# fresh Debian machine (tools/bootstrap.sh), configures, builds and runs.
#
#   make demo    build and run the demo (DEMO_ARGS="--size 1G" to change it)
#   make test    ctest in build/, then again in an ASan+UBSan tree build-asan/
#   make bench   build a release tree build-bench/ (no debug checks, no tests) and
#                run every benchmark there into bench/results/*.json, plots (PNG)
#   make build   configure and build build/ only
#   make clean   remove build/, build-asan/ and build-bench/

BUILD        ?= build
ASAN_BUILD   ?= build-asan
BENCH_BUILD  ?= build-bench
JOBS         ?= $(shell nproc 2>/dev/null || echo 2)
TEST_TIMEOUT ?= 300
CMAKE_ARGS   ?=
DEMO_ARGS    ?=

MAKEFLAGS += --no-print-directory
export BUILD ASAN_BUILD JOBS TEST_TIMEOUT CMAKE_ARGS

.PHONY: all bootstrap build demo test bench clean

all: build

bootstrap:
	@tools/bootstrap.sh

build: bootstrap
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUFVM_WERROR=ON $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	$(BUILD)/demos/ufvm-demo $(DEMO_ARGS)

test: build
	@tools/run-tests.sh

# The benchmarks run on their own release tree: the lock-order checker and
# the assertions (UFVM_DEBUG_CHECKS) cost ~10% on the fault path and are for
# the tests, which this tree does not build.
bench: bootstrap
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release -DUFVM_WERROR=ON \
		-DUFVM_DEBUG_CHECKS=OFF -DUFVM_TESTS=OFF $(CMAKE_ARGS)
	cmake --build $(BENCH_BUILD) -j$(JOBS)
	@bench/run.sh $(BENCH_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD)
