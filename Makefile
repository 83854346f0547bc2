# SPDX-License-Identifier: MIT
#
# ufvm - the front door.  CMake does the building; this file bootstraps a
# fresh Debian machine (tools/bootstrap.sh), configures, builds and runs.
#
#   make demo    build and run the demo (DEMO_ARGS="--size 1G" to change it)
#   make test    ctest in build/, then again in an ASan+UBSan tree build-asan/
#   make bench   run every benchmark into bench/results/*.json and plot them (PNG)
#   make build   configure and build build/ only
#   make clean   remove build/ and build-asan/

BUILD        ?= build
ASAN_BUILD   ?= build-asan
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

bench: build
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
