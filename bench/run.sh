#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh [BUILD] - what `make bench` runs: every benchmark with its defaults
# and --json into bench/results/NAME.json (the tables go to the terminal),
# a demo run with UFVM_STATS for the per-path latency CDF, then the plots
# (bench/plot.sh).  A benchmark that fails leaves its previous result alone
# and makes the run fail at the end.
set -uo pipefail

build=${1:-build}
ufvm=$build/tools/ufvm
res=bench/results
fail=0

[ -x "$ufvm" ] || { echo "bench: $ufvm was not built" >&2; exit 1; }
mkdir -p "$res"
for b in floor faultaround retry spec invalidate sweep; do
	if "$ufvm" bench "$b" --json > "$res/$b.json.new"; then
		mv "$res/$b.json.new" "$res/$b.json"
	else
		echo "bench: $b failed" >&2
		rm -f "$res/$b.json.new"
		fail=1
	fi
done
if UFVM_STATS="$res/stats-demo.json.new" "$build/demos/ufvm-demo" --size 64M >/dev/null; then
	mv "$res/stats-demo.json.new" "$res/stats-demo.json"
	"$ufvm" stats "$res/stats-demo.json" | head -40
else
	echo "bench: the demo run for the latency CDF failed" >&2
	rm -f "$res/stats-demo.json.new"
	fail=1
fi
bench/plot.sh "$ufvm" "$res" || fail=1
exit $fail
