#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# plot.sh UFVM RESULTS - render the PNG plots of docs/performance.md from the
# JSON results in RESULTS (written by bench/run.sh) with gnuplot.  The data
# is pulled out of the JSON by `ufvm stats` (--cdf, --rows, --get), so no
# other JSON tool is needed.
#
#   latency-cdf.png   CDF of the pager-side service time per fault path
#                     (stats-demo.json: the demo run with UFVM_STATS)
#   faultaround.png   ns/page against the fault-around window, sequential
#                     and random, with the kernel's own mmap as lines and
#                     ufvm's default (window 16 + map-ahead) as a point;
#                     the sigsegv backend's windows too when
#                     faultaround-sigsegv.json is there
#   pf.png            ns/page of `ufvm bench pf` per configuration (the
#                     pf-*.json read runs): ufvm, the kernel, umap's figure
#                     from issue 6 and the target bound it sets
#   retry.png         map+unmap/s beside slow major faults, retry off/on
#   spec.png          cached faults/s, speculation off/on, writer and idle
set -euo pipefail

ufvm=${1:?usage: plot.sh UFVM RESULTS}
res=${2:?usage: plot.sh UFVM RESULTS}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot not found (gnuplot-nox)" >&2; exit 1; }
term='set terminal pngcairo noenhanced size 900,560 font "sans,11"'
get() { "$ufvm" stats --get "$2" "$res/$1.json"; }

# Latency CDF per path.
"$ufvm" stats --cdf "$res/stats-demo.json" > "$tmp/cdf.dat"
nblocks=$(grep -c '^"' "$tmp/cdf.dat")
gnuplot <<GP
$term
set output "$res/latency-cdf.png"
set title "ufvm: pager-side service time per fault path (make demo run, UFVM_STATS)"
set logscale x
set format x "%.0s %cs"
set xlabel "service time (log scale)"
set ylabel "fraction of faults"
set yrange [0:1.02]
set grid
set key bottom right
plot for [i=0:$((nblocks - 1))] "$tmp/cdf.dat" index i using (\$1*1e-9):2 with steps lw 2 title columnheader(1)
GP

# Fault-around window.
"$ufvm" stats --rows windows window,ns_per_page "$res/faultaround.json" > "$tmp/fa-seq.dat"
"$ufvm" stats --rows random.windows window,ns_per_page "$res/faultaround.json" > "$tmp/fa-rnd.dat"
kseq=$(get faultaround kernel_ns_per_page)
krnd=$(get faultaround random.kernel_ns_per_page)
kmemfd=$(get faultaround kernel_memfd_ns_per_page)
kcont=$(get faultaround continue16_ns_per_page 2>/dev/null) || kcont=
fa_cont=
[ -z "$kcont" ] || fa_cont=", $kcont with lines lw 2 dt 1 lc rgb \"#777777\" title \"bare 16-page UFFDIO_CONTINUE, no fault, sequential\""
echo "$(get faultaround default.window) $(get faultaround default.ns_per_page)" > "$tmp/fa-def.dat"
fa_sig=
if [ -f "$res/faultaround-sigsegv.json" ]; then
	"$ufvm" stats --rows windows window,ns_per_page "$res/faultaround-sigsegv.json" > "$tmp/fa-sseq.dat"
	"$ufvm" stats --rows random.windows window,ns_per_page "$res/faultaround-sigsegv.json" > "$tmp/fa-srnd.dat"
	fa_sig=", \"$tmp/fa-sseq.dat\" using 1:2 with linespoints lw 2 pt 6 dt 5 title \"ufvm sigsegv backend, sequential\", \"$tmp/fa-srnd.dat\" using 1:2 with linespoints lw 2 pt 4 dt 5 title \"ufvm sigsegv backend, random\""
fi
gnuplot <<GP
$term
set output "$res/faultaround.png"
set title "cached scans: ns per page against the fault-around window (map-ahead off)"
set logscale x 2
set logscale y
set xlabel "fault-around window (pages)"
set ylabel "ns per page (log scale)"
set grid
set key top right
set xrange [0.8:80]
plot "$tmp/fa-seq.dat" using 1:2 with linespoints lw 2 pt 7 title "ufvm (uffd), sequential", \
     "$tmp/fa-rnd.dat" using 1:2 with linespoints lw 2 pt 5 title "ufvm (uffd), random"$fa_sig, \
     "$tmp/fa-def.dat" using 1:2 with points pt 9 ps 2.5 title "ufvm (uffd) default (with map-ahead), sequential", \
     $kseq with lines lw 2 dt 2 title "kernel mmap of the same file, sequential", \
     $krnd with lines lw 2 dt 3 title "kernel mmap of the same file, random", \
     $kmemfd with lines lw 2 dt 4 title "kernel mmap of a memfd, sequential"$fa_cont
GP

# Retry.
{
	echo "off $(get retry off.mapunmap_per_s) $(get retry off.faults_per_s)"
	echo "on $(get retry on.mapunmap_per_s) $(get retry on.faults_per_s)"
} > "$tmp/retry.dat"
ratio=$(get retry ratio)
gnuplot <<GP
$term
set output "$res/retry.png"
set title sprintf("retry (seed 003): map+unmap beside slow major faults; ratio on/off = %.1f", $ratio)
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [1:*]
set ylabel "per second (log scale)"
set xlabel "retry"
set grid ytics
set key top left
plot "$tmp/retry.dat" using 2:xtic(1) title "thread B: ufvm_map+ufvm_unmap per s", \
     "" using 3 title "thread A: major faults per s"
GP

# Speculation.
{
	echo "writer $(get spec writer.off.faults_per_s) $(get spec writer.on.faults_per_s)"
	echo "idle $(get spec idle.off.faults_per_s) $(get spec idle.on.faults_per_s)"
} > "$tmp/spec.dat"
gnuplot <<GP
$term
set output "$res/spec.png"
set title sprintf("speculative faults (seed 002): ratio on/off %.2f with the writer, %.2f idle", $(get spec writer.ratio), $(get spec idle.ratio))
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:*]
set ylabel "cached faults per second"
set grid ytics
set key top left
plot "$tmp/spec.dat" using 2:xtic(1) title "speculation off", "" using 3 title "speculation on"
GP

# pf: one cluster per configuration that has a result.
: > "$tmp/pf.dat"
for c in file-seq file-shuffle file-seq-cache8 file-shuffle-cache8 file-seq-sigsegv \
	 file-shuffle-sigsegv tmpfs-seq tmpfs-shuffle direct-seq direct-shuffle; do
	[ -f "$res/pf-$c.json" ] || continue
	umap=$(get "pf-$c" umap.compared_ns_per_page)
	tgt=$(get "pf-$c" targets.speedup_target)
	echo "$c $(get "pf-$c" ufvm_ns_per_page) $(get "pf-$c" kernel_ns_per_page)" \
	     "$(awk -v u="$umap" -v t="$tgt" 'BEGIN { print u / t }') $umap" >> "$tmp/pf.dat"
done
if [ -s "$tmp/pf.dat" ]; then
	gnuplot <<GP
$term
set output "$res/pf.png"
set title "ufvm bench pf: 512 MiB, 2 threads, reads; ns per page (umap: issue 6's figures)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [10:1e6]
set ylabel "ns per page (log scale)"
set xtics rotate by -30
set grid ytics
set key top left
plot "$tmp/pf.dat" using 2:xtic(1) title "ufvm", "" using 3 title "kernel mmap, same file", \
     "" using 4 title "target: umap / 10 (seq) or / 4 (shuffle)", "" using 5 title "umap (issue 6)"
GP
fi

echo "plots: $res/latency-cdf.png $res/faultaround.png $res/retry.png $res/spec.png $res/pf.png"
