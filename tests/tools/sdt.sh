#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# sdt.sh LIB - the USDT probes of LIB (libufvm) as a tracer sees them: every
# probe docs/tracing.md lists is there, and no argument of any site is an
# immediate (a constant argument is noted as "8@$-1"; perf then refuses the
# whole probe when its other sites pass a register).  Skips (77) without
# probes (no sys/sdt.h at build time) or without readelf.
set -euo pipefail

lib=${1:?usage: sdt.sh LIB}
command -v readelf >/dev/null || { echo "sdt.sh: no readelf"; exit 77; }
notes=$(readelf -n "$lib")
grep -q 'Provider: ufvm' <<<"$notes" || { echo "sdt.sh: $lib has no ufvm probes"; exit 77; }

fail=0
for p in fault_entry fault_exit fault_retry store_read_start store_read_done \
	 store_write_start store_write_done inval_start inval_done; do
	if ! grep -q "Name: $p\$" <<<"$notes"; then
		echo "sdt.sh: probe $p is missing"
		fail=1
	fi
done
bad=$(awk '/Name:/ {name = $2} /Arguments:/ && /@\$/ {print name ": " $0}' <<<"$notes")
if [ -n "$bad" ]; then
	echo "sdt.sh: probe sites with a constant argument:"
	echo "$bad"
	fail=1
fi
[ "$fail" = 0 ] && echo "sdt.sh: $(grep -c 'Name:' <<<"$notes") probe sites, no immediate argument"
exit "$fail"
