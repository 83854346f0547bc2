#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bootstrap.sh - make sure the Debian packages that ufvm's build, tests and
# benchmarks need are installed.
#
# Quiet when nothing is missing.  Otherwise, as root: one `apt-get update`,
# then a non-interactive `apt-get install -y` of exactly the missing
# packages.  Not root: print the command to run and exit 1.
#
# Exit: 0 when everything is (now) installed, 1 when something is missing
# and could not be installed.
set -euo pipefail

PACKAGES=(
	cmake			# build system
	gcc			# compiler
	libc6-dev		# C headers (gcc only recommends it)
	make
	pkg-config		# finds liburcu
	liburcu-dev		# RCU page index, call_rcu
	libcriterion-dev	# test framework
	libsigsegv-dev		# fallback fault-delivery backend
	systemtap-sdt-dev	# <sys/sdt.h>: USDT trace points
	gnuplot-nox		# bench plots
	sqlite3 lmdb-utils fio	# real programs the preload tests run (tests/preload)
)

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "bootstrap: dpkg-query not found: ufvm's bootstrap knows Debian only." >&2
	echo "bootstrap: install these (or your system's equivalents): ${PACKAGES[*]}" >&2
	exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$pkg")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "bootstrap: missing Debian packages: ${missing[*]}" >&2
	echo "bootstrap: run this as root, then run make again:" >&2
	echo "  sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "bootstrap: installing missing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt_opts=(-q -o Dpkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef
	  -o Dpkg::Options::=--force-confold)
if ! apt-get "${apt_opts[@]}" update </dev/null; then
	echo "bootstrap: apt-get update failed" >&2
	exit 1
fi
if ! apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" \
	</dev/null; then
	echo "bootstrap: apt-get install failed for: ${missing[*]}" >&2
	exit 1
fi

# Check again: apt-get can succeed and still leave something out.
still=()
for pkg in "${missing[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || still+=("$pkg")
done
if [ ${#still[@]} -ne 0 ]; then
	echo "bootstrap: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
echo "bootstrap: installed ${missing[*]}"
