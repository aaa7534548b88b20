#!/usr/bin/env bash
# Build the module with sparse (C=2: check every file) for every installed
# kernel; fail on any sparse or compiler warning.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One build per kernel, side by side (separate trees), reported in order.
kernels=$("$top/scripts/kernels.sh" headers)
for r in $kernels; do
	"$top/scripts/build-module.sh" "/usr/src/linux-headers-$r" "$top/build/sparse/$r" C=2 \
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
