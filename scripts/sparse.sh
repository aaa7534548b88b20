#!/usr/bin/env bash
# Build the module with sparse (C=2: check every file) for every installed
# kernel; fail on any sparse or compiler warning.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
st=0
for r in $("$top/scripts/kernels.sh" headers); do
	out=$("$top/scripts/build-module.sh" "/usr/src/linux-headers-$r" "$top/build/sparse/$r" C=2 2>&1 |
		grep -v -e 'Skipping BTF' -e '^ *CHECK' || true)
	if [ -n "$out" ]; then
		echo "sparse ($r):"; echo "$out"; st=1
	fi
done
exit $st
