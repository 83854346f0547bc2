#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# lmdb.sh UFVM - LMDB's tools on ufvm: mdb_load $RECORDS records into an
# environment under `ufvm run` and another without, then mdb_dump and
# mdb_stat each both ways.  LMDB maps the whole data file read-only and
# writes it with pwrite/writev, so this checks that ufvm's mapping sees
# every write at once.  Passes when every dump equals the input and every
# stat agrees, and ufvm served faults.
UFVM_TOOL=$1
. "$(dirname "$0")/lib.sh"
pl_init lmdb
pl_need mdb_load
RECORDS=${RECORDS:-100000}

# The input, in mdb_dump's "print" format with a 256 MiB map size.
awk -v n="$RECORDS" 'BEGIN {
	print "VERSION=3"; print "format=print"; print "type=btree"
	print "mapsize=268435456"; print "maxreaders=126"
	print "HEADER=END"
	for (i = 1; i <= n; i++)
		printf " key%08d\n value-%d-%s\n", i, (i * 7919) % 100003,
			substr("abcdefghijklmnopqrstuvwxyz0123456789", 1 + i % 36, 1 + i % 29)
	print "DATA=END"
}' >"$DIR/input"

t0=$(date +%s%N)
mdb_load -n -f "$DIR/input" "$DIR/kernel.mdb"
t1=$(date +%s%N)
"$UFVM" run --stats "$DIR/stats-load.json" -- mdb_load -n -f "$DIR/input" "$DIR/ufvm.mdb"
t2=$(date +%s%N)
for db in kernel ufvm; do
	mdb_dump -n -p "$DIR/$db.mdb" >"$DIR/dump-$db-kernel"
	"$UFVM" run --stats "$DIR/stats-dump.json" -- mdb_dump -n -p "$DIR/$db.mdb" \
		>"$DIR/dump-$db-ufvm"
	mdb_stat -n "$DIR/$db.mdb" >"$DIR/stat-$db-kernel"
	"$UFVM" run -- mdb_stat -n "$DIR/$db.mdb" >"$DIR/stat-$db-ufvm"
done
for f in dump-kernel-ufvm dump-ufvm-kernel dump-ufvm-ufvm; do
	cmp -s "$DIR/dump-kernel-kernel" "$DIR/$f" || pl_fail "$f differs from the kernel's dump"
done
for f in stat-kernel-ufvm stat-ufvm-kernel stat-ufvm-ufvm; do
	cmp -s "$DIR/stat-kernel-kernel" "$DIR/$f" || pl_fail "$f differs from the kernel's stat"
done
# The data lines, as loaded.
cmp -s <(sed -n '/^HEADER=END$/,$p' "$DIR/input") \
	<(sed -n '/^HEADER=END$/,$p' "$DIR/dump-ufvm-ufvm") || pl_fail "the dump is not the input"
grep -q "Entries: $RECORDS\$" "$DIR/stat-ufvm-ufvm" || pl_fail "mdb_stat does not count $RECORDS"
load=$(pl_faults "$DIR/stats-load.json")
dump=$(pl_faults "$DIR/stats-dump.json")
[ "$load" -gt 0 ] && [ "$dump" -gt 0 ] || pl_fail "ufvm served no fault: the mapping was not managed"
echo "lmdb: $RECORDS records loaded, dumped and counted the same with and without ufvm;" \
	"$load faults in mdb_load, $dump in mdb_dump (mdb_load: kernel" \
	"$(((t1 - t0) / 1000000)) ms, ufvm $(((t2 - t1) / 1000000)) ms)"
echo "lmdb: ok"
