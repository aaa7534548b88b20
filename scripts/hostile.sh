#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# make hostile: the hostile-peer tests with fresh seeds and more trials than
# make check gives them (which runs one fixed seed), on the host's memfd
# backend, plain and under ASan+UBSan. Prints the base seed first, so that a
# failure replays with HOSTILE_SEED=<seed> (each failing trial also names
# its own seed). Not part of make check: a seed that fails is a finding.
#
#   HOSTILE_SEED    base seed (default: 8 random bytes)
#   HOSTILE_TRIALS  trials per test (default 500: an ASan test then takes
#                   about a minute of its 120 s harness timeout)
set -uo pipefail

seed=${HOSTILE_SEED:-0x$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')}
trials=${HOSTILE_TRIALS:-500}
echo "hostile: base seed $seed, $trials trials per test (replay: make hostile HOSTILE_SEED=$seed HOSTILE_TRIALS=$trials)"
fail=0
for t in build/selftests/lib_hostile_*_test build/asan/lib_hostile_*_test; do
	[ -x "$t" ] || continue
	log=$(mktemp)
	SHMPOOL_BACKEND=memfd SHMPOOL_HOSTILE_SEED=$seed SHMPOOL_HOSTILE_TRIALS=$trials \
		timeout -s KILL 3600 "$t" >"$log" 2>&1
	rc=$?
	if [ $rc = 0 ] && ! grep -q '^not ok ' "$log"; then
		echo "ok - $t"
	else
		echo "not ok - $t (exit $rc)"
		grep -E '^not ok |replay|trial [0-9]+' "$log" | head -20 | sed 's/^/#   /'
		fail=1
	fi
	rm -f "$log"
done
exit $fail
