#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# preload-demo.sh - unmodified programs on ufvm, as a user runs them
# (`ufvm run`, docs/preload.md):
#
#   1. sqlite3 builds and queries a database with PRAGMA mmap_size under
#      `ufvm run --report`: ufvm's report of the run (faults by path, the
#      service time of each path and its histogram), and the same results
#      as on the kernel's mappings;
#   2. fio's mmap engine, 4 KiB random writes with crc32c verification and
#      random reads, with and without ufvm, side by side;
#   3. LMDB: mdb_load, mdb_dump and mdb_stat with and without ufvm.
#
# The SQL is that of the sqlite test (tests/preload/sqlite-*.sql).
#
# usage: demos/preload-demo.sh [UFVM_TOOL]   (default: build/tools/ufvm)
# Environment: ROWS (sqlite rows, 300000), FIO_SIZE (256m), RECORDS (LMDB
# records, 200000), BACKEND (uffd or sigsegv; default: ufvm's choice).
# Exit: 0 when every result matched, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

UFVM=$(realpath "${1:-build/tools/ufvm}")
ROWS=${ROWS:-300000}
FIO_SIZE=${FIO_SIZE:-256m}
RECORDS=${RECORDS:-200000}
[ -n "${BACKEND:-}" ] && export UFVM_BACKEND=$BACKEND
for p in "$UFVM" sqlite3 fio mdb_load; do
	command -v "$p" >/dev/null || { echo "preload-demo: $p not found" >&2; exit 1; }
done
DIR=$(mktemp -d "${TMPDIR:-/var/tmp}/ufvm-preload-demo.XXXXXX")
trap 'rm -rf "$DIR"' EXIT
ok=1
echo "ufvm preload demo, files in $DIR"

# ---- 1. sqlite3 ----
echo
echo "== 1. sqlite3, $ROWS rows, PRAGMA mmap_size=1G, on ufvm"
sed "s/@ROWS@/$ROWS/" tests/preload/sqlite-make.sql >"$DIR/make.sql"
for where in kernel ufvm; do
	pre=()
	[ "$where" = ufvm ] && pre=("$UFVM" run --)
	"${pre[@]}" sqlite3 -batch -cmd "PRAGMA mmap_size=1073741824" "$DIR/$where.db" \
		<"$DIR/make.sql" >/dev/null
done
q=tests/preload/sqlite-query.sql
echo "\$ ufvm run --report=- -- sqlite3 -cmd 'PRAGMA mmap_size=1073741824' ufvm.db < $q"
"$UFVM" run --report=- -- sqlite3 -batch -cmd "PRAGMA mmap_size=1073741824" "$DIR/ufvm.db" \
	<"$q" >"$DIR/out-ufvm" 2>"$DIR/report"
sqlite3 -batch -cmd "PRAGMA mmap_size=1073741824" "$DIR/kernel.db" <"$q" >"$DIR/out-kernel"
cat "$DIR/report"
echo
echo "query output (ufvm), first lines:"
sed -n '2,5s/^/  /p' "$DIR/out-ufvm"
if cmp -s "$DIR/out-ufvm" "$DIR/out-kernel" && [ "$(tail -n 1 "$DIR/out-ufvm")" = ok ] &&
   [ "$(sqlite3 "$DIR/ufvm.db" .dump | md5sum)" = "$(sqlite3 "$DIR/kernel.db" .dump | md5sum)" ]; then
	echo "sqlite3: integrity_check ok; output and database the same as on the kernel's mappings"
else
	echo "sqlite3: DIFFERENT from the kernel's run"
	ok=0
fi

# ---- 2. fio ----
echo
echo "== 2. fio --ioengine=mmap, 4 KiB random, $FIO_SIZE file; cold: fio drops the kernel's"
echo "      page cache of the file before the job (posix_fadvise DONTNEED), so both read the"
echo "      disk; warm: --invalidate=0, the file in the kernel's page cache (ufvm's own cache"
echo "      starts empty in every run)"
fio_run() {	# fio_run kernel|ufvm JOB ARGS...: terse v3 line
	local where=$1 job=$2 pre=()

	shift 2
	[ "$where" = ufvm ] && pre=("$UFVM" run --)
	"${pre[@]}" fio --name="$job" --filename="$DIR/fio-$where" --ioengine=mmap --bs=4k --verify_state_save=0 \
		--size="$FIO_SIZE" --randrepeat=1 --output-format=terse --terse-version=3 "$@"
}
for where in kernel ufvm; do
	fio_run $where write --rw=randwrite --verify=crc32c --do_verify=1 --verify_fatal=1 \
		>"$DIR/w-$where" || ok=0
	fio_run $where read --rw=randread >"$DIR/r-$where" || ok=0
	fio_run $where read --rw=randread --invalidate=0 >"$DIR/rw-$where" || ok=0
done
# Terse v3: 5 error; read: 7 KiB/s, 8 IOPS, 24/30/32 clat p50/p99/p99.9 (us);
# write: 48 KiB/s, 49 IOPS, 65/71/73 clat p50/p99/p99.9.
row() {	# row LABEL FILE-KERNEL FILE-UFVM BW IOPS P50 P99 P999
	awk -F';' -v label="$1" -v bw="$4" -v io="$5" -v a="$6" -v b="$7" -v c="$8" '
		function pct(s) { sub(/.*=/, "", s); return s }
		FNR == 1 { f++; m[f] = sprintf("%8.1f %8d %7s %7s %7s", $bw / 1024, $io,
			pct($a), pct($b), pct($c)) }
		END { printf "%-22s %s   %s\n", label, m[1], m[2] }' "$2" "$3"
}
printf '%-22s %-41s   %s\n' "" "----------------- kernel ----------------" \
	"------------------ ufvm -----------------"
printf '%-22s %8s %8s %7s %7s %7s   %8s %8s %7s %7s %7s\n' job MiB/s IOPS p50us p99us \
	p999us MiB/s IOPS p50us p99us p999us
row "randwrite, cold" "$DIR/w-kernel" "$DIR/w-ufvm" 48 49 65 71 73
row "verify (read back)" "$DIR/w-kernel" "$DIR/w-ufvm" 7 8 24 30 32
row "randread, cold" "$DIR/r-kernel" "$DIR/r-ufvm" 7 8 24 30 32
row "randread, warm" "$DIR/rw-kernel" "$DIR/rw-ufvm" 7 8 24 30 32
errs=$(awk -F';' '{s = s $5 " "} END {print s}' "$DIR"/w-* "$DIR"/r-* "$DIR"/rw-*)
echo "fio errors (every job, both ways): $errs(crc32c verified every block written)"
[ "$(echo $errs)" = "0 0 0 0 0 0" ] || ok=0

# ---- 3. LMDB ----
echo
echo "== 3. LMDB: mdb_load of $RECORDS records, mdb_dump, mdb_stat"
awk -v n="$RECORDS" 'BEGIN {
	print "VERSION=3"; print "format=print"; print "type=btree"
	print "mapsize=268435456"; print "HEADER=END"
	for (i = 1; i <= n; i++)
		printf " key%08d\n value-%d\n", i, (i * 7919) % 100003
	print "DATA=END"
}' >"$DIR/input"
for where in kernel ufvm; do
	pre=()
	[ "$where" = ufvm ] && pre=("$UFVM" run --)
	t0=$(date +%s%N)
	"${pre[@]}" mdb_load -n -f "$DIR/input" "$DIR/$where.mdb"
	t1=$(date +%s%N)
	"${pre[@]}" mdb_dump -n -p "$DIR/$where.mdb" >"$DIR/dump-$where"
	t2=$(date +%s%N)
	"${pre[@]}" mdb_stat -n "$DIR/$where.mdb" >"$DIR/stat-$where"
	printf '%-6s mdb_load %5d ms, mdb_dump %5d ms, %s\n' "$where" $(((t1 - t0) / 1000000)) \
		$(((t2 - t1) / 1000000)) "$(grep Entries "$DIR/stat-$where" | tr -s ' ')"
done
if cmp -s "$DIR/dump-kernel" "$DIR/dump-ufvm" && cmp -s "$DIR/stat-kernel" "$DIR/stat-ufvm"; then
	echo "lmdb: dumps and stats the same with and without ufvm"
else
	echo "lmdb: DIFFERENT from the kernel's run"
	ok=0
fi

echo
if [ $ok = 1 ]; then
	echo "preload-demo: all results matched"
	exit 0
fi
echo "preload-demo: some results differed"
exit 1
