#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh [BUILD] - what `make bench` runs, on the tree BUILD (make bench
# passes its release tree, build-bench/): every benchmark with --json into
# bench/results/FILE.json (the tables go to the terminal), floor and
# faultaround once per delivery backend, pf in several configurations; a
# demo run with UFVM_STATS for the per-path latency CDF; then the plots
# (bench/plot.sh).  A benchmark that fails, or whose output does not read
# back as its result (an empty or cut-short file after a failed write),
# leaves its previous result alone and makes the run fail at the end.
# Starts with the host's load.
set -uo pipefail

build=${1:-build}
ufvm=$build/tools/ufvm
res=bench/results
fail=0
failed=()

[ -x "$ufvm" ] || { echo "bench: $ufvm was not built" >&2; exit 1; }
mkdir -p "$res"
echo "bench: $ufvm; load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"

# readback FILE PATH VALUE: FILE is JSON whose member PATH is VALUE.
readback() {
	[ "$("$ufvm" stats --get "$2" "$1" 2>/dev/null)" = "$3" ]
}

# bench FILE NAME [OPTIONS...]: ufvm bench NAME OPTIONS --json > FILE.json
bench() {
	local file=$1 name=$2
	shift 2
	echo "bench: $file: ufvm bench $name $* (load $(cut -d' ' -f1 /proc/loadavg))" >&2
	if "$ufvm" bench "$name" "$@" --json > "$res/$file.json.new" &&
	   readback "$res/$file.json.new" bench "$name"; then
		mv "$res/$file.json.new" "$res/$file.json"
	else
		echo "bench: $file (ufvm bench $name $*) failed" >&2
		rm -f "$res/$file.json.new"
		failed+=("$file")
		fail=1
	fi
}

bench floor               floor       --backend uffd
bench floor-sigsegv       floor       --backend sigsegv
bench faultaround         faultaround --backend uffd
bench faultaround-sigsegv faultaround --backend sigsegv
bench retry               retry
bench spec                spec
bench invalidate          invalidate
bench sweep               sweep
# pf (issue 6): 512 MiB, 2 threads, a store file on disk in the host page
# cache, with and without a budget of 1/8 of the file; both backends;
# tmpfs and dropped-cache ("direct") stores; a read-modify-write pass
bench pf-file-seq                pf --backend uffd
bench pf-file-shuffle            pf --backend uffd --shuffle
bench pf-file-seq-cache8         pf --backend uffd --cache 1/8
bench pf-file-shuffle-cache8     pf --backend uffd --shuffle --cache 1/8
bench pf-file-seq-sigsegv        pf --backend sigsegv
bench pf-file-shuffle-sigsegv    pf --backend sigsegv --shuffle
bench pf-tmpfs-seq               pf --backend uffd --store tmpfs
bench pf-tmpfs-shuffle           pf --backend uffd --store tmpfs --shuffle
bench pf-direct-seq              pf --backend uffd --store direct
bench pf-direct-shuffle          pf --backend uffd --store direct --shuffle
bench pf-file-shuffle-cache8-rmw pf --backend uffd --shuffle --cache 1/8 --rmw

if UFVM_STATS="$res/stats-demo.json.new" "$build/demos/ufvm-demo" --size 64M >/dev/null &&
   readback "$res/stats-demo.json.new" schema ufvm-stats-1; then
	mv "$res/stats-demo.json.new" "$res/stats-demo.json"
	"$ufvm" stats "$res/stats-demo.json" | head -40
else
	echo "bench: the demo run for the latency CDF failed" >&2
	rm -f "$res/stats-demo.json.new"
	failed+=("stats-demo")
	fail=1
fi
bench/plot.sh "$ufvm" "$res" || { failed+=("plots"); fail=1; }
echo "bench: done; load average $(cut -d' ' -f1-3 /proc/loadavg)"
[ "$fail" -eq 0 ] || echo "bench: failed: ${failed[*]}" >&2
exit $fail
