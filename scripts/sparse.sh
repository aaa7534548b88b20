#!/usr/bin/env bash
# Build the module with sparse (C=2: check every file) for every installed
# kernel; fail on any sparse or compiler warning.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One build per kernel, side by side (separate trees), reported in order.
# In the module's own build tree (build/mod/<release>, as "make modules"):
# C=2 checks every file even when its object is up to date, so after make
# all only sparse runs; the compiler's warnings are the W=1 build's check.
kernels=$("$top/scripts/kernels.sh" headers)
for r in $kernels; do
	"$top/scripts/build-module.sh" "/usr/src/linux-headers-$r" "$top/build/mod/$r" C=2 \
		> "$tmp/$r" 2>&1 &
done
wait
st=0
for r in $kernels; do
	out=$(grep -v -e 'Skipping BTF' -e '^ *CHECK' "$tmp/$r" || true)
	if [ -n "$out" ]; then
		echo "sparse ($r):"; echo "$out"; st=1
	fi
done
exit $st
