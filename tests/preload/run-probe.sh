#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-probe.sh UFVM PROBE SCENARIO [unmanaged|excluded|teeth BUG|match GLOBS|nobody] - one
# scenario of probe.c under `ufvm run`: its mappings must be managed.  With
# "teeth BUG", under UFVM_PRELOAD_TEETH=BUG (a fixed bug of the preload
# back): the scenario must fail.  With "match GLOBS", under `ufvm run
# --match GLOBS` ("DIR" in GLOBS stands for the scenario's directory).
# With "nobody", as the user nobody (setpriv; skipped unless root may, and
# nobody can run the programs), on the sigsegv backend unless userfaultfd
# is open to all users.  With "unmanaged",
# under a configuration ufvm refuses (bad UFVM_FAULT_AROUND): the program
# must run on the kernel's mappings after exactly one warning line.  With
# "excluded", under a UFVM_MATCH that leaves its files out: the kernel's
# mappings, and not a word.
UFVM_TOOL=$1
PROBE=$2
SC=$3
. "$(dirname "$0")/lib.sh"
pl_init "probe-$SC"

case "${4:-}" in
"")
	# Not exec: the EXIT trap must remove $DIR (set -e passes a failure on).
	"$UFVM" run -- "$PROBE" "$SC" "$DIR"
	exit 0
	;;
nobody)
	as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null ||
	   ! "${as[@]}" test -x "$PROBE" -a -x "$UFVM"; then
		echo "run-probe: cannot run the programs as nobody here: skipped"
		exit 77
	fi
	chmod 0777 "$DIR"
	# userfaultfd is root's here unless the sysctl gives it to all.
	[ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 1 ] ||
		export UFVM_BACKEND=sigsegv
	"${as[@]}" "$UFVM" run -- "$PROBE" "$SC" "$DIR"
	exit 0
	;;
match)
	"$UFVM" run --match "${5//DIR/$(realpath "$DIR")}" -- "$PROBE" "$SC" "$DIR"
	exit 0
	;;
teeth)
	# Failed its own checks (exit 1, "N check(s) failed"), not otherwise.
	st=0
	out=$(UFVM_PRELOAD_TEETH=$5 "$UFVM" run -- "$PROBE" "$SC" "$DIR" 2>&1) || st=$?
	echo "$out"
	[ "$st" -ne 0 ] || pl_fail "the scenario passed with the preload's bug $5 back"
	[ "$st" -eq 1 ] && grep -q "^probe $SC: [0-9]* check(s) failed" <<<"$out" ||
		pl_fail "the scenario ended with status $st, not its checks' failure"
	echo "run-probe: the scenario failed with the bug $5 back, as it must"
	exit 0
	;;
excluded)
	out=$(PROBE_EXPECT=unmanaged "$UFVM" run --match "*:!$(realpath "$DIR")/*" -- "$PROBE" "$SC" "$DIR" 2>&1) ||
		{ echo "$out" >&2; pl_fail "the program failed"; }
	echo "$out"
	[ "$(echo "$out" | grep -c ufvm)" = 0 ] || pl_fail "ufvm spoke for excluded files"
	exit 0
	;;
esac
lib=$(dirname "$UFVM")/../preload/libufvm-preload.so
err="$DIR/stderr"
PROBE_EXPECT=unmanaged LD_PRELOAD=$lib UFVM_FAULT_AROUND=0 "$PROBE" "$SC" "$DIR" 2>"$err" ||
	{ cat "$err" >&2; pl_fail "the program failed"; }
cat "$err"
n=$(grep -c '^ufvm-preload' "$err" || true)
[ "$n" = 1 ] || pl_fail "expected one ufvm-preload warning line, got $n"
