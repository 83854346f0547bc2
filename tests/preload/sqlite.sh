#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# sqlite.sh UFVM - sqlite3 with PRAGMA mmap_size on ufvm: builds a database
# of $ROWS rows, queries and updates it, in rollback-journal and in WAL mode
# (whose -shm file is a shared mapping too), under `ufvm run` and without.
# Passes when the query output and the dumps are the same both ways, PRAGMA
# integrity_check says ok, and ufvm served faults (its stats say so).
UFVM_TOOL=$1
. "$(dirname "$0")/lib.sh"
pl_init sqlite
pl_need sqlite3
ROWS=${ROWS:-100000}

sed "s/@ROWS@/$ROWS/" "$(dirname "$0")/sqlite-make.sql" >"$DIR/make.sql"
cp "$(dirname "$0")/sqlite-query.sql" "$DIR/query.sql"

# run MODE WHERE: build and query db-MODE-WHERE (WHERE: ufvm or kernel).
run() {
	local mode=$1 where=$2 db="$DIR/db-$1-$2" pre=()

	[ "$where" = ufvm ] && pre=("$UFVM" run --stats "$DIR/stats-$mode-%p.json" --)
	"${pre[@]}" sqlite3 -batch -cmd "PRAGMA mmap_size=1073741824" \
		-cmd "PRAGMA journal_mode=$mode" -cmd "PRAGMA synchronous=OFF" "$db" \
		<"$DIR/make.sql" >/dev/null
	"${pre[@]}" sqlite3 -batch -cmd "PRAGMA mmap_size=1073741824" "$db" \
		<"$DIR/query.sql" >"$DIR/out-$mode-$where"
	sqlite3 "$db" .dump | md5sum >"$DIR/dump-$mode-$where"
}

for mode in delete wal; do
	t0=$(date +%s%N)
	run $mode kernel
	t1=$(date +%s%N)
	run $mode ufvm
	t2=$(date +%s%N)
	cmp -s "$DIR/out-$mode-kernel" "$DIR/out-$mode-ufvm" ||
		{ diff "$DIR/out-$mode-kernel" "$DIR/out-$mode-ufvm" | head; pl_fail "$mode: query output differs"; }
	[ "$(tail -n 1 "$DIR/out-$mode-ufvm")" = ok ] || pl_fail "$mode: integrity_check is not ok"
	cmp -s "$DIR/dump-$mode-kernel" "$DIR/dump-$mode-ufvm" || pl_fail "$mode: the databases differ"
	faults=0
	for f in "$DIR"/stats-$mode-*.json; do
		faults=$((faults + $(pl_faults "$f")))
	done
	[ "$faults" -gt 0 ] || pl_fail "$mode: ufvm served no fault: the mapping was not managed"
	echo "sqlite $mode, $ROWS rows: same output and database with and without ufvm," \
		"integrity ok, $faults ufvm faults (kernel $(((t1 - t0) / 1000000)) ms," \
		"ufvm $(((t2 - t1) / 1000000)) ms)"
done
# The database ufvm wrote, read by the kernel, and the other way round.
"$UFVM" run -- sqlite3 "$DIR/db-delete-kernel" "PRAGMA integrity_check" | grep -qx ok ||
	pl_fail "the kernel's database read through ufvm is not ok"
sqlite3 "$DIR/db-delete-ufvm" "PRAGMA integrity_check" | grep -qx ok ||
	pl_fail "ufvm's database read by the kernel is not ok"
echo "sqlite: ok"
