#!/bin/sh
# SPDX-License-Identifier: MIT
#
# fuzz.sh UFVM - a short run of `ufvm fuzz` (ctest tools/fuzz): random
# file and mapping operations checked byte for byte against a model, under
# a budget small enough that every few operations evict, with one worker
# (the instance closed and opened again now and then) and with three
# sharing the instance, then with no budget, then three workers sharing
# their files, then two whose stores fail now and then (--inject), with a
# budget and without one (a failed punch keeps dirty pages, which a budget
# of 6 seldom leaves).  Then the fuzzer's own teeth: with --jitter, which
# sleeps at ufvm's hook points, it must find reclaim freeing a frame after
# giving up its page's slot (UFVM_DEBUG_EVICT_PUNCH_LATE, 0x4: 11 of 12
# seeds failed with --jitter 8, 2 of the same 12 without), and pass the
# same runs with the protection on.  The fault backend and the striping
# are the run's (UFVM_BACKEND, UFVM_FRAME_STRIPES from
# tools/run-tests.sh).  A failure prints the seed: `ufvm fuzz --seed N
# --verbose` with the same options follows it.
set -u

u=${1:?usage: fuzz.sh UFVM}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail=0

# ops N: N operations, scaled by FUZZ_SH_SCALE percent (default 100;
# tools/run-tests.sh halves the runs of the striped and sanitizer passes,
# which repeat the release passes' seeds on another layout or build).
ops() {
	echo $(($1 * ${FUZZ_SH_SCALE:-100} / 100))
}

run() {
	echo "fuzz.sh: ufvm $*"
	"$u" "$@" --dir "$t" < /dev/null
	st=$?
	[ "$st" -le 128 ] || echo "fuzz.sh: ufvm fuzz died of signal $((st - 128))" >&2
	[ "$st" -eq 0 ] || fail=1
}

run --cache 8 fuzz --seed 1 --ops "$(ops 2000)"
run --cache 16 fuzz --seed 101 --ops "$(ops 2000)" --threads 3
run --write-ahead 64 fuzz --seed 201 --ops "$(ops 3000)"
run --cache 8 fuzz --seed 301 --ops "$(ops 1500)" --threads 3 --shared
run --cache 6 fuzz --seed 401 --ops "$(ops 2000)" --threads 2 --inject
run --write-ahead 64 fuzz --seed 451 --ops "$(ops 2000)" --threads 2 --inject
run --cache 6 fuzz --seed 501 --ops "$(ops 2000)" --threads 2 --jitter 8
run --cache 8 fuzz --seed 601 --ops "$(ops 2000)" --threads 2 --peek --jitter 8
run --cache 8 fuzz --seed 651 --ops "$(ops 2000)" --inject --peek

# teeth WHAT OPTIONS...: the run with a protection off must fail, with a
# difference (exit 1), one of ufvm's assertions (SIGABRT), or a worker's
# SIGBUS, which the fuzzer reports before it dies of it (a fault whose
# page the backend cannot map, its frame freed, gets SIGBUS).  Not with
# FUZZ_SH_TEETH=0: tools/run-tests.sh runs them in the release passes of
# each backend, not again striped or under the sanitizers.
teeth() {
	[ "${FUZZ_SH_TEETH:-1}" = 0 ] && return
	what=$1
	shift
	echo "fuzz.sh: teeth ($what): ufvm $*"
	"$u" "$@" --dir "$t" < /dev/null > "$t/teeth" 2>&1
	st=$?
	if { [ "$st" -eq 1 ] && grep -q "^ufvm fuzz: FAIL: seed" "$t/teeth"; } ||
	   { [ "$st" -eq 134 ] && grep -q "^ufvm: BUG: " "$t/teeth"; }; then
		grep -m1 -E "^ufvm fuzz: FAIL: seed|^ufvm: BUG: " "$t/teeth"
	elif [ "$st" -eq 135 ] && grep -q "^ufvm fuzz: SIGBUS at 0x" "$t/teeth"; then
		grep -m1 "^ufvm fuzz: SIGBUS at 0x" "$t/teeth"
	else
		echo "fuzz.sh: teeth ($what): not caught (exit $st):" >&2
		cat "$t/teeth" >&2
		fail=1
	fi
}

# 5 of 8 seeds failed on the sigsegv backend, 11 of 12 on uffd (2 of the
# same 12 without --jitter).
teeth "reclaim frees a frame late" --cache 6 fuzz --seed 501 --seeds 8 --ops 2000 \
	--threads 2 --jitter 8 --debug-flags 0x4
# 5 of 8 seeds on uffd, 4 of 8 on sigsegv; without --peek no thread
# touches a region while another unmaps it: no seed failed (40 seeds in
# 20 configurations, with and without --jitter).
teeth "speculative faults on dead regions" --cache 8 fuzz --seed 601 --seeds 12 \
	--ops 2000 --threads 2 --peek --jitter 8 --debug-flags 0x2
exit $fail
