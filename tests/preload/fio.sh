#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fio.sh UFVM - fio's mmap engine on ufvm: random writes with crc32c
# verification (fio writes, then reads every block back and checks it),
# then random reads, on a $SIZE file.  Passes when fio reports no error and
# no verification failure and ufvm served faults.
UFVM_TOOL=$1
. "$(dirname "$0")/lib.sh"
pl_init fio
pl_need fio
SIZE=${SIZE:-32m}

common=(--filename="$DIR/data" --ioengine=mmap --bs=4k --verify_state_save=0 --size="$SIZE" --randrepeat=1
	--output-format=terse --terse-version=3)
"$UFVM" run --stats "$DIR/stats-w.json" -- fio --name=write-verify --rw=randwrite \
	--verify=crc32c --do_verify=1 --verify_fatal=1 "${common[@]}" >"$DIR/w.terse" ||
	{ cat "$DIR/w.terse"; pl_fail "fio randwrite+verify failed"; }
"$UFVM" run --stats "$DIR/stats-r.json" -- fio --name=read --rw=randread \
	"${common[@]}" >"$DIR/r.terse" || { cat "$DIR/r.terse"; pl_fail "fio randread failed"; }
# Terse v3: field 5 is the job's error; 6 the KiB read, 47 the KiB written.
read -r werr wread wkb < <(awk -F';' '{print $5, $6, $47}' "$DIR/w.terse")
read -r rerr rkb < <(awk -F';' '{print $5, $6}' "$DIR/r.terse")
[ "$werr" = 0 ] && [ "$rerr" = 0 ] || pl_fail "fio reported errors: $werr, $rerr"
[ "$wkb" -gt 0 ] && [ "$wread" = "$wkb" ] || pl_fail "verified $wread KiB of $wkb written"
[ "$rkb" -gt 0 ] || pl_fail "nothing read"
w=$(pl_faults "$DIR/stats-w.json")
r=$(pl_faults "$DIR/stats-r.json")
[ "$w" -gt 0 ] && [ "$r" -gt 0 ] || pl_fail "ufvm served no fault: the mapping was not managed"
echo "fio: $wkb KiB written at random and all verified (crc32c), $rkb KiB read;" \
	"$w + $r ufvm faults"
echo "fio: ok"
