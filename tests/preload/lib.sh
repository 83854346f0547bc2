# SPDX-License-Identifier: MIT
# lib.sh - shared by the preload test scripts (sourced, not run).
#
#   pl_init NAME     set UFVM (the ufvm tool, $1 of the script) and DIR (a
#                    fresh directory under /var/tmp, removed at exit)
#   pl_need PROG     skip the test (exit 77) unless PROG is installed
#   pl_fail MSG      print "NAME: FAIL: MSG" and exit 1
#   pl_faults JSON   the "faults" counter of a UFVM_STATS file
set -euo pipefail

pl_init() {
	PL_NAME=$1
	UFVM=${UFVM_TOOL:?}
	DIR=$(mktemp -d "${TMPDIR:-/var/tmp}/ufvm-preload-$PL_NAME.XXXXXX")
	trap 'rm -rf "$DIR"' EXIT
}

pl_need() {
	if ! command -v "$1" >/dev/null 2>&1; then
		echo "$PL_NAME: SKIP: $1 is not installed (tools/bootstrap.sh installs it)"
		exit 77
	fi
}

pl_fail() {
	echo "$PL_NAME: FAIL: $*" >&2
	exit 1
}

pl_faults() {
	local n
	n=$(grep -o '"faults":[0-9]*' "$1" | head -n 1 | cut -d: -f2)
	echo "${n:-0}"
}
