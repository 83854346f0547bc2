#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run-tests.sh - what `make test` runs: ctest in the release tree (build/),
# then configure and build an ASan+UBSan tree (build-asan/) and run ctest
# there too.  Each tree runs the suite once per delivery backend
# (UFVM_BACKEND=uffd, then sigsegv), and the release tree once more with
# frames striped in small chunks.  Every run happens; the script fails if
# any fails.
# Its last line sums both runs: "tests: N passed, M failed[, K skipped]".
# ctest runs CTEST_JOBS test binaries at once (each Criterion binary runs
# two of its tests at once): about half of the suite's time is spent
# waiting (for a hang the teeth look for, for a race's window).
#
# Environment: BUILD, ASAN_BUILD (tree names), BACKENDS (default "uffd
# sigsegv"), JOBS (build jobs), CTEST_JOBS (default: JOBS), TEST_TIMEOUT
# (seconds per test), CMAKE_ARGS (extra configure arguments for both trees).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
ASAN_BUILD=${ASAN_BUILD:-build-asan}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}
CTEST_JOBS=${CTEST_JOBS:-$JOBS}
TEST_TIMEOUT=${TEST_TIMEOUT:-300}
read -r -a extra <<<"${CMAKE_ARGS:-}"

total_pass=0
total_fail=0
total_skip=0
summary=()
rc=0

# run_ctest NAME DIR [CTEST_ARGS...]: run ctest in DIR and add its counts
# to the totals.
run_ctest() {
	local name=$1 dir=$2 log line total failed skipped passed status
	shift 2
	log=$(mktemp)
	echo "== ctest: $name ($dir)"
	(cd "$dir" && ctest -j"$CTEST_JOBS" --output-on-failure --timeout "$TEST_TIMEOUT" \
		--no-tests=ignore "$@") 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}

	# "100% tests passed, 0 tests failed out of 12"
	line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		failed=$(sed -E 's/.* ([0-9]+) tests? failed out of.*/\1/' <<<"$line")
		total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
	else
		failed=0
		total=0
	fi
	# ctest counts skipped tests as passed; list them apart.
	skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$log")
	passed=$((total - failed - skipped))
	if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
		# ctest itself failed (no summary line): count the run as a failure.
		failed=1
	fi
	rm -f "$log"

	total_pass=$((total_pass + passed))
	total_fail=$((total_fail + failed))
	total_skip=$((total_skip + skipped))
	summary+=("$name: $passed passed, $failed failed, $skipped skipped")
	[ "$failed" -eq 0 ] || rc=1
}

BACKENDS=${BACKENDS:-uffd sigsegv}

# backend_args BACKEND: its passes' ctest arguments, into the array bargs.
# The sigsegv passes leave out the benchmarks' smoke run, which runs each
# benchmark on both backends itself whichever UFVM_BACKEND says, and the
# USDT probes' listing and the command line's argument checks, which no
# backend changes, if a uffd pass runs them.
backend_args() {
	bargs=()
	case "$1: $BACKENDS " in
	"sigsegv:"*" uffd "*) bargs=(-E '^(bench_smoke|tools/(sdt|cli))$') ;;
	esac
}

# The release tree is built by `make build` before this script runs.
for be in $BACKENDS; do
	backend_args "$be"
	UFVM_BACKEND=$be run_ctest "release/$be" "$BUILD" "${bargs[@]}"
done
# Once more with every file of more than 4 pages striped in 4-page chunks
# (docs/architecture.md, "Frame striping"): the tests' files are smaller
# than the default chunk.  Only the uffd backend stripes.  This pass leaves
# out the tests of what sits above the frames and is the same whatever
# their layout: the command line's argument checks, the USDT probes'
# listing, the demo, the benchmarks' smoke run, and the preload tests (the
# interposer's handling of a program's calls; what it maps takes the paths
# the api, cache, race and vm tests and tools/fuzz run striped here).
case " $BACKENDS " in
*" uffd "*)
	UFVM_BACKEND=uffd UFVM_FRAME_STRIPES=4 UFVM_CHUNK_PAGES=4 FUZZ_SH_TEETH=0 FUZZ_SH_SCALE=50 \
		run_ctest "release/uffd-stripes" "$BUILD" \
		-E '^(demo_small|bench_smoke|tools/(cli|sdt)|preload/.*)$'
	;;
esac

echo "== configure and build: ASan+UBSan ($ASAN_BUILD)"
if cmake -S . -B "$ASAN_BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUFVM_WERROR=ON \
	-DUFVM_SANITIZE=ON "${extra[@]}" &&
   cmake --build "$ASAN_BUILD" -j"$JOBS"; then
	for be in $BACKENDS; do
		backend_args "$be"
		# The command line's argument checks: the release passes'.
		[ ${#bargs[@]} -gt 0 ] || bargs=(-E '^tools/cli$')
		# The teeth (each race test's run with its protection off,
		# which must fail: tests named *teeth*) show what a test can
		# catch; the release passes run them, here they would only
		# repeat that more slowly (8% of the pass's test time).
		CRITERION_TEST_PATTERN='!(*teeth*)' \
		UFVM_BACKEND=$be FUZZ_SH_TEETH=0 FUZZ_SH_SCALE=50 \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		run_ctest "asan+ubsan/$be" "$ASAN_BUILD" "${bargs[@]}"
	done
else
	echo "run-tests: the ASan+UBSan tree did not build" >&2
	summary+=("asan+ubsan: did not build")
	total_fail=$((total_fail + 1))
	rc=1
fi

echo
for s in "${summary[@]}"; do
	echo "  $s"
done
if [ "$total_skip" -gt 0 ]; then
	echo "tests: $total_pass passed, $total_fail failed, $total_skip skipped"
else
	echo "tests: $total_pass passed, $total_fail failed"
fi
exit $rc
