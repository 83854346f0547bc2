#!/bin/sh
# SPDX-License-Identifier: MIT
#
# smoke.sh UFVM - the benchmark harness end to end, small and quick (ctest
# bench_smoke): every benchmark runs with tiny options and --json, and
# `ufvm stats` reads each result back (the JSON reader, --at, --get,
# --rows).  Figures are not checked: only that everything runs and parses.
set -eu

u=${1:?usage: smoke.sh UFVM}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
export TMPDIR="$t"

run() {	# NAME OPTIONS...: run a benchmark into $t/NAME.json and read it back
	name=$1
	shift
	"$u" bench "$name" --reps 1 --json "$@" > "$t/$name.json" 2> "$t/$name.log" ||
		{ cat "$t/$name.log" >&2; echo "smoke: bench $name failed" >&2; exit 1; }
	[ "$("$u" stats --get bench "$t/$name.json")" = "$name" ] ||
		{ echo "smoke: $name.json does not read back" >&2; exit 1; }
}

if [ "$(nproc)" -ge 2 ]; then
	run floor --pages 64 --scan-pages 256
	run floor --pages 64 --scan-pages 256 --backend sigsegv
	[ "$("$u" stats --get cached_floor "$t/floor.json")" = sigbus ]
	"$u" stats --at stats "$t/floor.json" > /dev/null
	"$u" stats --get modes.uffd.available "$t/floor.json" > /dev/null
else
	echo "smoke: one CPU: the floor (which needs two) is skipped"
fi
run faultaround --pages 256 --windows 1,16
"$u" stats --at stats "$t/faultaround.json" > /dev/null
[ "$("$u" stats --rows windows window "$t/faultaround.json" | tr '\n' ' ')" = "1 16 " ]
run retry --pages 256 --ms 100 --latency-us 100
"$u" stats --at stats.on "$t/retry.json" > /dev/null
"$u" stats --cdf --at stats.on "$t/retry.json" > /dev/null
run spec --pages 256 --ms 100
"$u" stats --at stats "$t/spec.json" > /dev/null
run invalidate --hot-pages 64 --punch-pages 64 --ms 100
for m in rwsem addblock none; do "$u" stats --at "stats.$m" "$t/invalidate.json" > /dev/null; done
run pf --pages 512
"$u" stats --at stats "$t/pf.json" > /dev/null
"$u" stats --get ufvm_ns_per_page "$t/pf.json" > /dev/null
"$u" stats --get kernel_ns_per_page "$t/pf.json" > /dev/null
run pf --pages 512 --shuffle --cache 1/8
# the bare pass ran (a number), or says why it could not
[ "$("$u" stats --get bare_ns_per_page "$t/pf.json")" != null ] ||
	"$u" stats --get bare_error "$t/pf.json" > /dev/null
run pf --pages 512 --shuffle --cache 1/8 --rmw
[ "$("$u" stats --get bare_ns_per_page "$t/pf.json")" = null ]
[ "$("$u" stats --get options.cache_pages "$t/pf.json")" = 64 ]
run pf --pages 512 --write --backend sigsegv
[ "$("$u" stats --get options.backend "$t/pf.json")" = sigsegv ]
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	run pf --pages 512 --shuffle --store tmpfs
fi
if [ "$(stat -f -c %T "$t")" != tmpfs ]; then
	run pf --pages 256 --shuffle --store direct
	[ "$("$u" stats --get options.direct_io "$t/pf.json")" = true ]
fi
run faultaround --pages 256 --windows 1,16 --backend sigsegv
[ "$("$u" stats --get backend "$t/faultaround.json")" = sigsegv ]
run sweep --pages 256 --workload seq,zipf --cache cold,warm --policy invalidate=rwsem,none
[ "$("$u" stats --rows rows policy.invalidate "$t/sweep.json" | wc -l)" -eq 8 ]
"$u" stats --at rows.7.stats "$t/sweep.json" > /dev/null

# usage errors are usage errors, and a non-JSON file is refused
if "$u" bench sweep --policy nosuch=1 > /dev/null 2>&1; then exit 1; fi
if "$u" bench nosuch > /dev/null 2>&1; then exit 1; fi
if "$u" bench pf --pages 64 --backend nosuch > /dev/null 2>&1; then exit 1; fi
if "$u" bench pf --pages 64 --write --rmw > /dev/null 2>&1; then exit 1; fi
echo '{"schema":"ufvm-stats-1",' > "$t/bad.json"
if "$u" stats "$t/bad.json" > /dev/null 2>&1; then exit 1; fi
echo "smoke: ok"
