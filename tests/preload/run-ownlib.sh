#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run-ownlib.sh UFVM OWNLIB - ownlib.c, a program with a copy of libufvm of
# its own, under `ufvm run`, its store outside the files the preload
# manages: it must not hang at fork() (each copy registered liburcu's fork
# hooks, which deadlock when run twice) and a child's own instance must
# close.
UFVM_TOOL=$1
PROG=$2
. "$(dirname "$0")/lib.sh"
pl_init ownlib

# A hang with every signal blocked (the double hooks' deadlock) ends only
# by SIGKILL: before ctest's own timeout, so that the program does not
# outlive the test.
timeout -s KILL 45 "$UFVM" run --match "*:!$(realpath "$DIR")/*" -- "$PROG" "$DIR" ||
	pl_fail "the program failed (status $?; 137: killed after 45 s, it hung)"
