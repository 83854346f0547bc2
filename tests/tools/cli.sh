#!/bin/sh
# SPDX-License-Identifier: MIT
#
# cli.sh UFVM UFVM_DEMO - the command-line tools' handling of what they are
# given (ctest tools/cli): each case runs a command and checks its exit
# status (0 success, 1 failure, 2 usage or configuration error) and one
# line of its output.  Cases that need the preload skip themselves where
# it is not built (sanitizer trees).
set -u

u=${1:?usage: cli.sh UFVM UFVM_DEMO}
demo=${2:?usage: cli.sh UFVM UFVM_DEMO}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
export TMPDIR="$t"
# In a sanitizer tree, no leak check at each command's exit: it costs some
# 75 ms a process here, two thirds of this test's time over its ~160
# commands, most of which only check their arguments and exit.  The
# commands that do work are leak-checked in demo_small, bench_smoke and
# tools/fuzz.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
fail=0

# expect STATUS PATTERN CMD...: CMD exits STATUS and its stdout or stderr
# has a line matching the extended regular expression PATTERN.
expect() {
	want=$1 pat=$2
	shift 2
	"$@" > "$t/out" 2>&1 < /dev/null
	got=$?
	if [ "$got" -ne "$want" ] || ! grep -Eq -- "$pat" "$t/out"; then
		echo "cli: FAIL: $* -> exit $got (want $want), output:" >&2
		sed 's/^/    /' "$t/out" >&2
		echo "    (wanted a line matching: $pat)" >&2
		fail=1
	fi
}

# lacks PATTERN: the output of the last expect has no line matching PATTERN.
lacks() {
	if grep -Eq -- "$1" "$t/out"; then
		echo "cli: FAIL: the last command printed a line matching: $1" >&2
		sed 's/^/    /' "$t/out" >&2
		fail=1
	fi
}

# Sizes: decimal digits with an optional K/M/G/T suffix, nothing else.
expect 2 "bad --size ' -4096'" "$demo" --size " -4096"
expect 2 "bad --size '0x100000'" "$demo" --size 0x100000
expect 2 "bad --size '\+1M'" "$demo" --size +1M
expect 0 "^ufvm demo: 10 MiB store file" "$demo" --size 010M --quiet
expect 2 "--scan-pages 0x400: bad value" "$u" bench floor --scan-pages 0x400
expect 2 "--pages  -1: bad value" "$u" bench floor --pages " -1"
expect 2 "--reps 0x2: expected" "$u" bench floor --reps 0x2
expect 2 "UFVM_CACHE_PAGES=1K: the budget must be at least 2 pages" \
	env UFVM_CACHE_PAGES=1K "$demo" --size 1M
# A size the demo cannot hold is refused before the run, naming the limit;
# --touches above the number of pages is every page, as --help says.
expect 2 "^ufvm-demo: --size 16T: at most 268435456 pages" "$demo" --size 16T
expect 2 "^ufvm demo: --size 2T: at most 268435456 pages" "$u" demo --size 2T
expect 0 "an N above the number of pages touches every page" "$demo" --help
expect 0 "^random passes: 256 distinct pages" "$demo" --size 1M --touches 1000 --quiet

# A benchmark's checks of its option values are usage errors too, made
# before anything runs (no "== ufvm bench" heading), naming the option;
# for `bench all`, every benchmark's checks with its defaults.
expect 2 "floor: --window 0: expected 1\.\.256" "$u" bench floor --window 0
lacks "^== ufvm bench"
expect 2 "floor: --scan-pages 10: expected 256\.\." "$u" bench floor --scan-pages 10
expect 2 "floor: --backend nosuch: expected uffd" "$u" bench floor --backend nosuch
expect 2 "faultaround: --windows 1,0: expected" "$u" bench faultaround --windows 1,0
expect 2 "faultaround: --pages 10: expected 64\.\." "$u" bench faultaround --pages 10
expect 2 "retry: --ms 50: expected 100\.\." "$u" bench retry --ms 50
expect 2 "retry: --small-pages 0: expected 1\.\." "$u" bench retry --small-pages 0
expect 2 "^ufvm fuzz: --threads wants a number from 1 to 4, not '9'$" "$u" fuzz --threads 9
expect 2 "^ufvm fuzz: --ops wants a number from 1 to" "$u" fuzz --ops 0x10
expect 2 "^ufvm fuzz: --seed needs a value$" "$u" fuzz --seed
expect 2 "^ufvm fuzz: unknown option: --bogus$" "$u" fuzz --bogus
expect 2 "^ufvm fuzz: --inject and --shared do not go together" "$u" fuzz --inject --shared
expect 2 "^ufvm fuzz: --jitter wants a number from 1 to 1000000, not '0'$" "$u" fuzz --jitter 0
expect 2 "^ufvm fuzz: --debug-flags wants a number from 0 to 18446744073709551615, not '0x1g'$" \
	"$u" fuzz --debug-flags 0x1g
expect 0 "^ufvm fuzz: jitter, hook point: calls/waits: 1: [0-9]" \
	"$u" --cache 4 fuzz --seed 7 --ops 200 --jitter 2 --dir "$t"
expect 1 "^ufvm fuzz: cannot make a directory in $t/none: No such file or directory$" \
	"$u" fuzz --dir "$t/none"
expect 0 "^ufvm fuzz: 1 seed from 7, 1 worker, 200 operations each: no difference$" \
	"$u" fuzz --seed 7 --ops 200 --dir "$t"
expect 2 "spec: --ms 50: expected 100\.\." "$u" bench spec --ms 50
expect 2 "spec: --threads 0: expected 1\.\.16" "$u" bench spec --threads 0
expect 2 "spec: --pages 2: expected at least --threads \(4\)" \
	"$u" bench spec --pages 2 --threads 4
expect 2 "invalidate: --punch-pages 24: expected a multiple of --chunk \(16\)" \
	"$u" bench invalidate --punch-pages 24
expect 2 "invalidate: --fault-around 0: expected 1\.\.256" \
	"$u" bench invalidate --fault-around 0
expect 2 "sweep: --workload nosuch: expected seq, random or zipf" \
	"$u" bench sweep --workload nosuch
expect 2 "sweep: --cache hot: expected warm, cold" "$u" bench sweep --cache hot
# A list item too long, repeated or one too many is refused, not dropped;
# so is a --policy key given twice (each row used to run with the last).
expect 2 "sweep: --workload seq,bogusbogusbogusbogus: expected" \
	"$u" bench sweep --workload seq,bogusbogusbogusbogus
expect 2 "sweep: --workload seq,seq: expected .* each once" "$u" bench sweep --workload seq,seq
expect 2 "sweep: --cache warm,cold,x: expected" "$u" bench sweep --cache warm,cold,x
expect 2 "sweep: --policy fault_around=64: fault_around given twice" \
	"$u" bench sweep --policy fault_around=1,16 --policy fault_around=64
lacks "bad value"
expect 2 "faultaround: --windows  16,\+4: expected" "$u" bench faultaround --windows " 16,+4"
expect 2 "^ufvm bench: --dir: an empty value$" "$u" bench floor --dir ""
expect 2 "^ufvm-demo: --dir: an empty value$" "$demo" --dir ""
expect 2 "^ufvm-demo: --size needs a value$" "$demo" --size
# A file too long to be a snapshot is refused, not read until memory runs out.
expect 1 "^ufvm stats: /dev/zero: File too large$" "$u" stats /dev/zero
expect 2 "sweep: --pages 8: expected 16\.\." "$u" bench sweep --pages 8
expect 2 "pf: --threads 65: expected 1\.\.64" "$u" bench pf --threads 65
expect 2 "pf: --pages 1: expected at least --threads \(2\)" "$u" bench pf --pages 1
expect 2 "pf: --write and --rmw: expected at most one" "$u" bench pf --write --rmw
expect 2 "pf: --store nosuch: expected tmpfs, file or direct" "$u" bench pf --store nosuch
expect 2 "pf: --cache 2/1: expected" "$u" bench pf --cache 2/1
# --help shows the defaults, not the values given before it.
expect 0 "^  --pages V .*\(default 131072\)" "$u" bench pf --pages 77 --help
expect 2 "pf: --reps 65: expected 1\.\.64" "$u" bench pf --reps 65
expect 2 "floor: --reps 100: expected 1\.\.16" "$u" bench all --reps 100
lacks "^== ufvm bench"
expect 2 "pf: --reps 100: expected 1\.\.64" "$u" bench pf --reps 100
for b in retry spec invalidate; do
	expect 2 "$b: --reps 17: expected 1\.\.16" "$u" bench "$b" --reps 17
done
expect 2 "sweep: --reps 65: expected 1\.\.64" "$u" bench sweep --reps 65
expect 2 "floor: --window 32: at most --pages \(16\)" "$u" bench floor --pages 16 --window 32
# Every size and count has an upper bound, and a value that ufvm_open()
# would refuse (a budget, a policy setting) is refused before the run: no
# wrapped product, no truncating cast, no failed open after the setup.
# (The last option of each stops the run of a build that misses the check.)
expect 2 "sweep: --accesses 2305843009213693953: expected 0\.\.4294967296" \
	"$u" bench sweep --workload zipf --accesses 2305843009213693953 --pages 8
expect 2 "floor: --pages 4503599627370497: expected 16\.\.268435456" \
	"$u" bench floor --pages 4503599627370497 --window 0
expect 2 "floor: --scan-pages 268435457: expected 256\.\.268435456" \
	"$u" bench floor --scan-pages 268435457 --window 0
expect 2 "faultaround: --map-ahead 4294967297: ufvm would refuse map_ahead \(0 to 256" \
	"$u" bench faultaround --map-ahead 4294967297 --backend nosuch
expect 2 "retry: --latency-us 4294967297: ufvm would refuse store_latency_us" \
	"$u" bench retry --latency-us 4294967297 --ms 50
expect 2 "retry: --cache 1: ufvm would refuse cache_pages" "$u" bench retry --cache 1 --ms 50
expect 2 "retry: --ms 3600001: expected 100\.\.3600000" \
	"$u" bench retry --ms 3600001 --small-pages 0
expect 2 "pf: --cache 4K \(1 pages\): ufvm would refuse cache_pages" \
	"$u" bench pf --cache 4K --backend nosuch
expect 2 "pf: --cache 1/64 \(1 pages\): ufvm would refuse cache_pages" \
	"$u" bench pf --pages 64 --cache 1/64 --backend nosuch
expect 2 "pf: --cache 0/8: expected .* a page or more" "$u" bench pf --cache 0/8 --backend nosuch
expect 2 "pf: --pages 268435457: expected 1\.\.268435456" \
	"$u" bench pf --pages 268435457 --backend nosuch
expect 2 "sweep: --policy fault_around=0: ufvm would refuse fault_around" \
	"$u" bench sweep --policy fault_around=0 --pages 8
expect 2 "sweep: --policy cache_pages=1: ufvm would refuse cache_pages" \
	"$u" bench sweep --policy cache_pages=0,1 --pages 8
expect 2 "sweep: --policy speculative=2: ufvm would refuse speculative" \
	"$u" bench sweep --policy fault_around=16 --policy speculative=0,2 --pages 8
expect 2 "invalidate: --window-us 1000000: expected 0\.\.999999" \
	"$u" bench invalidate --window-us 1000000 --punch-pages 24
expect 2 "spec: --pages 268435457: expected 1\.\.268435456" \
	"$u" bench spec --pages 268435457 --threads 0
# A flag takes no value: --json=no or --shuffle=no must not turn it on.
# (--pages 1 stops a run that took the value as an "on" at the check.)
expect 2 "^ufvm bench: --json: takes no value \(--json=no\)" "$u" bench pf --json=no --pages 1
expect 2 "^ufvm bench: --shuffle: takes no value \(--shuffle=no\)" \
	"$u" bench pf --shuffle=no --pages 1
# A bad UFVM_* variable is a usage error for every benchmark, said once, by
# the library, before any of them runs.
for b in floor faultaround retry spec invalidate sweep pf all; do
	expect 2 "^ufvm: UFVM_RETRY=5: expected a number from 0 to 1$" \
		env UFVM_RETRY=5 "$u" bench "$b" --reps 1
	lacks "ufvm_config_init|^== ufvm bench"
done
# --zipf-s is read when it is parsed, whatever the workload.
expect 2 "sweep: --zipf-s abc: expected a number above 0" "$u" bench sweep --zipf-s abc
expect 2 "sweep: --zipf-s 1\.5x: expected a number above 0" \
	"$u" bench sweep --workload seq --zipf-s 1.5x
expect 2 "sweep: --zipf-s 0: expected a number above 0" \
	"$u" bench sweep --workload zipf --zipf-s 0

# ufvm run refuses, with a usage status, what ufvm_open() would refuse.
expect 2 "UFVM_CACHE_PAGES=1: the budget must be at least 2 pages" "$u" run --cache 1 -- true
expect 2 "UFVM_CACHE_PAGES=4K: the budget must be at least 2 pages" "$u" run --cache=4K -- true

# A value-taking option does not take "--" (the end of the options), nor
# a word starting with "-" where its values cannot: `ufvm run --match --
# env` ran env with UFVM_MATCH=--, `ufvm --stats -- demo` wrote ./--.
expect 2 "^ufvm run: --match needs a value$" "$u" run --match -- env
lacks "^UFVM_MATCH="
expect 2 "^ufvm run: --cache needs a value$" "$u" run --cache -v -- true
expect 2 "^ufvm run: --stats needs a value$" "$u" run --stats -- true
expect 2 "^ufvm run: --preload needs a value$" "$u" run --preload -- true
expect 2 "^ufvm: --stats: needs a value" \
	sh -c 'cd "$1" && exec "$0" --stats -- demo --size 1M --quiet' "$u" "$t"
[ ! -e "$t/--" ] ||
	{ echo "cli: FAIL: ufvm --stats -- demo made a file named --" >&2; fail=1; }
expect 2 "^ufvm: --fault-around: needs a value" "$u" --fault-around -1 demo --size 1M --quiet

# ufvm run: a preload path with a space or a colon would be split by ld.so,
# which skips the pieces and runs the program unmanaged: refused.
mkdir "$t/sp ace" "$t/co:lon"
: > "$t/sp ace/libufvm-preload.so"
: > "$t/co:lon/libufvm-preload.so"
expect 2 "^ufvm run: $t/sp ace/libufvm-preload.so: a preload path cannot hold a space or a colon" \
	"$u" run --preload "$t/sp ace/libufvm-preload.so" -- true
lacks "cannot be preloaded"
expect 2 "^ufvm run: $t/co:lon/libufvm-preload.so: a preload path cannot hold a space or a colon" \
	env UFVM_PRELOAD_LIB="$t/co:lon/libufvm-preload.so" "$u" run -- true
lacks "cannot be preloaded"
# A UFVM_PRELOAD_LIB that cannot be read is named, with why.
expect 2 "^ufvm run: UFVM_PRELOAD_LIB=$t/none\.so: No such file or directory$" \
	env UFVM_PRELOAD_LIB="$t/none.so" "$u" run -- true
# The statistics and report files are checked before the program runs (the
# preload could only say at exit, and only if a file was mapped).
expect 2 "^ufvm run: UFVM_STATS=$t/no/such/s\.json: No such file or directory$" \
	"$u" run --stats "$t/no/such/s.json" -- true
expect 2 "^ufvm run: UFVM_REPORT=$t/no/such/r%p\.txt: No such file or directory$" \
	"$u" run --report="$t/no/such/r%p.txt" -- true
: > "$t/file"
expect 2 "^ufvm run: UFVM_STATS=$t/file/s%p\.json: Not a directory$" \
	env UFVM_STATS="$t/file/s%p.json" "$u" run -- true

# Cases that run a program under the preload (not built in sanitizer trees).
if "$u" run -- true > /dev/null 2>&1; then
	# The check makes no file, and "-" (stderr) and "%p" still work.
	expect 0 "^ok$" "$u" run --stats "$t/probe.json" --report=- -- echo ok
	[ ! -e "$t/probe.json" ] ||
		{ echo "cli: FAIL: ufvm run --stats left its probe file" >&2; fail=1; }
	expect 0 "^ok$" "$u" run --stats - --report="$t/r%p.txt" -- echo ok
	# A preload named without a slash goes to ld.so as an absolute path
	# (ld.so would look the bare name up in the library path and skip it).
	pdir=$(dirname "$u")/../preload
	if [ -r "$pdir/libufvm-preload.so" ]; then
		expect 0 "^/.*/libufvm-preload\.so$" sh -c 'cd "$0" && exec "$@"' "$pdir" \
			"$u" run --preload libufvm-preload.so -- sh -c 'echo "$LD_PRELOAD"'
		expect 0 "^/.*/libufvm-preload\.so$" sh -c 'cd "$0" && exec "$@"' "$pdir" \
			env UFVM_PRELOAD_LIB=libufvm-preload.so "$u" run -- sh -c 'echo "$LD_PRELOAD"'
	fi
fi
# Relative files are where `ufvm run` started, wherever the program is when
# it exits.  The program is the demo, which links ufvm itself: under the
# preload that is a second copy of the library, which the sigsegv backend
# does not support (docs/preload.md), so not with that backend.
if "$u" run -- true > /dev/null 2>&1 && [ "${UFVM_BACKEND:-}" != sigsegv ]; then
	mkdir "$t/run" "$t/run/sub"
	expect 0 "all checks passed" sh -c 'cd "$0/run" && exec "$@"' "$t" \
		"$u" run --stats s.json --report=r.txt -- \
		sh -c 'cd sub && exec "$@"' sh "$demo" --size 1M --quiet
	[ -s "$t/run/s.json" ] && [ -s "$t/run/r.txt" ] && [ ! -e "$t/run/sub/s.json" ] &&
		[ ! -e "$t/run/sub/r.txt" ] ||
		{ echo "cli: FAIL: ufvm run --stats/--report FILE: not in the starting directory" >&2
		  ls -R "$t/run" | sed 's/^/    /' >&2; fail=1; }
	# A report that cannot be written is said, not lost in silence (the
	# report: the demo's own copy of ufvm would write UFVM_STATS too).
	expect 0 "cannot write /dev/full: No space left on device" \
		"$u" run --report=/dev/full -- "$demo" --size 1M --quiet
fi
# The library's UFVM_STATS=- is standard error, as the preload's: no file "-".
expect 0 '^\{"schema":"ufvm-stats-1"' sh -c 'cd "$0" && exec "$@"' "$t" \
	"$u" --stats=- demo --size 1M --quiet
[ ! -e "$t/-" ] || { echo "cli: FAIL: ufvm --stats=- made a file named -" >&2; fail=1; }

# Options: looked up before they take a value; usage errors exit 2.
expect 2 "unknown option '--bogus'" "$u" run --bogus -- true
expect 2 "unknown option --bogus for floor" "$u" bench floor --bogus
expect 2 "unknown option --bogus for floor" "$u" bench floor --bogus 1
expect 2 "^ufvm: --speculative: needs a value before the command" "$u" --speculative demo
expect 2 "^ufvm: --bogus: unknown option" "$u" --bogus demo
expect 2 "^ufvm: --report=x: read by the preload alone" "$u" --report=x demo
expect 2 "^ufvm: --match: read by the preload alone" "$u" --match '*' demo
expect 2 "^ufvm: --cache: needs a value" "$u" --cache
expect 2 "UFVM_FAULT_AROUND= 4: expected a number" env UFVM_FAULT_AROUND=" 4" "$demo"
# An empty option value is refused (the empty variable it would set means
# the default); an empty variable itself is taken as unset
# (docs/configuration.md).
expect 2 "^ufvm: --fault-around=: an empty value" "$u" --fault-around= demo --size 1M --quiet
expect 2 "^ufvm: --cache=: an empty value" "$u" --cache= demo --size 1M --quiet
expect 2 "^ufvm: --cache: an empty value" "$u" --cache "" demo --size 1M --quiet
expect 2 "^ufvm run: --cache: an empty value" "$u" run --cache= -- true
expect 2 "^ufvm run: --fault-around: an empty value" "$u" run --fault-around "" -- true
expect 0 "^ufvm demo: 1 MiB store file" env UFVM_FAULT_AROUND= "$demo" --size 1M --quiet
# Policy options are read before the command runs, whether or not it
# opens an instance.
printf '{"a":1}\n' > "$t/a.json"
expect 2 "UFVM_FAULT_AROUND=abc: expected a number" "$u" --fault-around=abc stats --get a "$t/a.json"
lacks "^1$"
expect 2 "UFVM_CACHE_PAGES=1: the budget must be" "$u" --cache=1 help
# A UFVM_* variable nothing reads is named on stderr, with the nearest known
# one; known ones, the preload's among them, are not.
expect 0 "^ufvm: UFVM_FAULTAROUND is not a variable of ufvm's: ignored \(did you mean UFVM_FAULT_AROUND\?\)$" \
	env UFVM_FAULTAROUND=4 "$demo" --size 1M --quiet
expect 0 "^ufvm: UFVM_XYZZY is not a variable of ufvm's: ignored$" env UFVM_XYZZY=1 "$demo" --size 1M --quiet
expect 0 "^ufvm demo: 1 MiB store file" \
	env UFVM_FAULT_AROUND=4 UFVM_MATCH='*' UFVM_REPORT=1 UFVM_PRELOAD_VERBOSE=0 "$demo" --size 1M --quiet
lacks "is not a variable"
expect 0 "^  --report .*only as --report=FILE" "$u" help run
expect 0 "^  --reclaim +clock\|fifo" "$u" --help
expect 0 "^\(--match and --report are read by the preload alone" "$u" --help

# Percentiles are nearest rank: the ceil(q*n)-th smallest sample.
printf '{"v":[10,9,8,7,6,5,4,3,2,1],"h":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63,64,65,66,67,68,69,70,71,72,73,74,75,76,77,78,79,80,81,82,83,84,85,86,87,88,89,90,91,92,93,94,95,96,97,98,99,100]}\n' > "$t/p.json"
for qv in 0.5:5 0.9:9 0.1:1 0.01:1 1:10 0.05:1 0.11:2; do
	expect 0 "^${qv#*:}\$" "$u" stats --pctl "${qv%:*}" v "$t/p.json"
done
for qv in 0.07:7 0.29:29 0.57:57 0.99:99 0.999:100 0.001:1; do
	expect 0 "^${qv#*:}\$" "$u" stats --pctl "${qv%:*}" h "$t/p.json"
done
expect 2 "--pctl 0: expected a quantile" "$u" stats --pctl 0 v "$t/p.json"

# ufvm stats: buckets off the histogram's scale (below 1 ns, beyond 32
# octaves, or not finite) are counted in the first or last row, which says
# so; one whose end is not finite is left out.
hist() {	# BUCKETS: a snapshot with one path, spec, of those buckets
	printf '{"schema":"ufvm-stats-1","latency":{"spec":{"count":1,"p50_ns":999999,"buckets":%s}}}\n' \
		"$1" > "$t/h.json"
}
hist '[[0,0.5,1]]'
expect 0 "^ +< 1\.09 ns +\|#+\| +1 100\.0% 100\.00%$" "$u" stats "$t/h.json"
hist '[[0,1e-300,1]]'
expect 0 "^ +< 1\.09 ns +\|#+\| +1 100\.0% 100\.00%$" "$u" stats "$t/h.json"
hist '[[0,1,1],[1,1,1],[3,1,2]]'
expect 0 "^ +< 1\.09 ns +\|#+\| +2 +50\.0% +50\.00%$" "$u" stats "$t/h.json"
hist '[[1,1,1],[1e308,1e308,1]]'
expect 0 "^spec: 1 faults$" "$u" stats "$t/h.json"
hist '[[1,1,1],[34e9,1,1]]'
expect 0 "^ +>= 2\.15 s +\|#+\| +1 +50\.0% 100\.00%$" "$u" stats "$t/h.json"
lacks " - 4\.29 s"
hist '[[1,1,1],[1e300,1,1]]'
expect 0 "^ +>= 2\.15 s +\|#+\| +1 +50\.0% 100\.00%$" "$u" stats "$t/h.json"
# Three significant digits, the unit chosen after rounding: 999999 ns is 1 ms.
expect 0 "^  spec +1 +0 ns +1 ms " "$u" stats "$t/h.json"
lacks "e\+"
lacks "^ *own[ :(]"	# an older snapshot: no "own" summary, no row for it

# ufvm's own time (service time minus the install call) gets its row and
# its histogram after the paths'.
printf '{"schema":"ufvm-stats-1","latency":{"spec":{"count":2,"buckets":[[2000,16,2]]}},"own":{"count":2,"mean_ns":300,"p50_ns":300,"p90_ns":300,"p99_ns":300,"p999_ns":300,"max_ns":310,"buckets":[[296,4,2]]}}\n' > "$t/o.json"
expect 0 "^  own +2 +300 ns +300 ns +300 ns +300 ns +300 ns +310 ns$" "$u" stats "$t/o.json"
expect 0 "^own \(service time minus the install call\): 2 faults$" "$u" stats "$t/o.json"

# The JSON reader: numbers as RFC 8259 writes them, printed back exactly
# (integers) or in the fewest digits that read back the same; strings it
# cannot hold as C strings refused; nothing after a NUL byte ignored.
getj() {	# VALUE: a file {"a":VALUE}
	printf '{"a":%s}' "$1" > "$t/g.json"
}
for x in 0x10 -0x8 01 1. -01 .5 1e 1e+ -; do
	getj "$x"
	expect 1 "^ufvm stats: .*g\.json: not JSON: .*at byte 5$" "$u" stats --get a "$t/g.json"
done
getj 1e-400
expect 0 "^0$" "$u" stats --get a "$t/g.json"
getj -12345678901
expect 0 "^-12345678901$" "$u" stats --get a "$t/g.json"
getj -9223372036854775808
expect 0 "^-9223372036854775808$" "$u" stats --get a "$t/g.json"
getj 0.1
expect 0 "^0\.1$" "$u" stats --get a "$t/g.json"
getj 0.30000000000000004
expect 0 "^0\.30000000000000004$" "$u" stats --get a "$t/g.json"
getj '[1.25,-3,18446744073709551615]'
expect 0 "^\[1\.25,-3,18446744073709551615\]$" "$u" stats --get a "$t/g.json"
getj '"x\u0000y"'
expect 1 "not JSON: .u0000 in a string" "$u" stats --get a "$t/g.json"
getj '"\ud800"'
expect 0 "^$(printf '\357\277\275')$" "$u" stats --get a "$t/g.json"
getj '"\udc00x\ud83d\ude00"'
expect 0 "^$(printf '\357\277\275x\360\237\230\200')$" "$u" stats --get a "$t/g.json"
printf '{"a":1}\0garbage' > "$t/g.json"
expect 1 "not JSON: a NUL byte at byte 7" "$u" stats --get a "$t/g.json"

# Output that cannot be written fails the command (status 1, and why).
if [ -w /dev/full ]; then
	getj 1
	expect 1 "^ufvm: cannot write standard output: No space left on device$" \
		sh -c '"$0" stats --get a "$1" > /dev/full' "$u" "$t/g.json"
	hist '[[1,1,1],[3000,100,7]]'
	expect 1 "^ufvm: cannot write standard output: " \
		sh -c '"$0" stats "$1" > /dev/full' "$u" "$t/h.json"
	expect 1 "^ufvm: cannot write standard output: " \
		sh -c '"$0" --help > /dev/full' "$u"
	# a benchmark only where one can run here
	if "$u" bench pf --pages 64 --threads 1 --reps 1 --json > /dev/null 2>&1; then
		expect 1 "^ufvm: cannot write standard output: No space left on device$" \
			sh -c '"$0" bench pf --pages 64 --threads 1 --reps 1 --json > /dev/full' "$u"
	fi
fi

# ufvm stats names what is wrong with its file.
expect 1 "Is a directory" "$u" stats "$t"

# UFVM_STATS: "%p" is the pid in every command; a path that cannot be
# written stops the run before it starts.
expect 0 "all checks passed" "$u" --stats="$t/s%p.json" demo --size 1M --quiet
ls "$t"/s[0-9]*.json > /dev/null 2>&1 ||
	{ echo "cli: FAIL: ufvm --stats=s%p.json demo made no s<pid>.json" >&2; fail=1; }
expect 1 "UFVM_STATS.*/no/such/dir/s.json: No such file or directory" \
	env UFVM_STATS="$t/no/such/dir/s.json" "$demo" --size 1M --quiet

# The demo: when ufvm cannot start, the error and no report; after a
# fallback to sigsegv (userfaultfd not permitted to an unprivileged user),
# the report names the backend that ran.
expect 1 "cannot start ufvm: No such file or directory" \
	env UFVM_STATS="$t/no/such/dir/s.json" "$demo" --size 1M --quiet
lacks "^checks:|words read|FAILED"
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null &&
   [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 0 ]; then
	chmod 755 "$t"
	mkdir -m 1777 "$t/nobody"
	expect 0 "^ufvm config: backend sigsegv \(auto\)" \
		env TMPDIR="$t/nobody" UFVM_BACKEND=auto setpriv --reuid=65534 \
		--regid=65534 --clear-groups "$demo" --size 1M --quiet
fi

# tools/bootstrap.sh installs only what is used: each lib*-dev it lists is
# a library the build looks for.
src=$(cd "$(dirname "$0")/../.." && pwd)
if [ -f "$src/tools/bootstrap.sh" ]; then
	for pkg in $(sed -n 's/^[[:space:]]*\(lib[a-z0-9]*\)-dev[[:space:]].*/\1/p' \
		     "$src/tools/bootstrap.sh"); do
		[ "$pkg" = libc6 ] && continue	# the C library's headers
		name=${pkg#lib}
		grep -qi "$name" "$src/CMakeLists.txt" "$src"/*/CMakeLists.txt ||
			{ echo "cli: FAIL: bootstrap.sh installs $pkg-dev, which the build does not use" >&2
			  fail=1; }
	done
fi

exit $fail
