#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-probe.sh UFVM PROBE SCENARIO [unmanaged] - one scenario of probe.c:
# under `ufvm run` (its mappings must be managed), or, with "unmanaged",
# with a configuration ufvm refuses (bad UFVM_FAULT_AROUND): the program
# must run on the kernel's mappings after exactly one warning line.
UFVM_TOOL=$1
PROBE=$2
SC=$3
. "$(dirname "$0")/lib.sh"
pl_init "probe-$SC"

if [ "${4:-}" != unmanaged ]; then
	exec "$UFVM" run -- "$PROBE" "$SC" "$DIR"
fi
lib=$(dirname "$UFVM")/../preload/libufvm-preload.so
err="$DIR/stderr"
PROBE_EXPECT=unmanaged LD_PRELOAD=$lib UFVM_FAULT_AROUND=0 "$PROBE" "$SC" "$DIR" 2>"$err" ||
	{ cat "$err" >&2; pl_fail "the program failed"; }
cat "$err"
n=$(grep -c '^ufvm-preload' "$err" || true)
[ "$n" = 1 ] || pl_fail "expected one ufvm-preload warning line, got $n"
