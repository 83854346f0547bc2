#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-quiet.sh UFVM PROBE - the configuration is read at the first managed
# mapping, so a process that maps no managed file says nothing, whatever
# the UFVM_* variables hold.  A shell that runs cat, ls and the probe,
# every process under the preload, with a bad value (UFVM_FAULT_AROUND=0)
# and an unknown variable (UFVM_FAULTAROUND): only the probe, which maps
# its files, speaks, once of each, and then runs on the kernel's mappings.
# When the preload read the configuration in its constructor, sh, cat and
# ls each repeated both lines.
UFVM_TOOL=$1
PROBE=$2
. "$(dirname "$0")/lib.sh"
pl_init quiet

lib=$(dirname "$UFVM")/../preload/libufvm-preload.so
err="$DIR/stderr"

# Nothing that maps: not a word.
LD_PRELOAD=$lib UFVM_FAULT_AROUND=0 UFVM_FAULTAROUND=4 \
	/bin/sh -c 'cat /dev/null; ls "$1" >/dev/null; echo hi >/dev/null' sh "$DIR" 2>"$err" ||
	{ cat "$err" >&2; pl_fail "the shell failed"; }
[ ! -s "$err" ] || { cat "$err" >&2; pl_fail "processes that map nothing printed the lines above"; }

# The probe maps: one line of each, however many processes ran before it.
PROBE_EXPECT=unmanaged LD_PRELOAD=$lib UFVM_FAULT_AROUND=0 UFVM_FAULTAROUND=4 \
	/bin/sh -c 'cat /dev/null; ls "$2" >/dev/null; "$1" coherence "$2"' sh "$PROBE" "$DIR" \
	2>"$err" || { cat "$err" >&2; pl_fail "the program failed"; }
cat "$err"
for pat in '^ufvm-preload\[[0-9]*\]: bad ufvm configuration: probe runs unmanaged$' \
	'^ufvm: UFVM_FAULT_AROUND=0' '^ufvm: UFVM_FAULTAROUND is not a variable'; do
	n=$(grep -c "$pat" "$err" || true)
	[ "$n" = 1 ] || pl_fail "expected one line $pat, got $n"
done
n=$(wc -l <"$err")
[ "$n" = 3 ] || pl_fail "expected 3 lines on stderr, got $n"
