#!/usr/bin/env bash
# Extract kselftest.h and kselftest_harness.h from Debian's linux-source-6.1
# tarball into $1 (default build/kselftest). They are GPL-2.0 kernel files:
# extracted at build time, never committed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dst=${1:-$top/build/kselftest}
tarball=/usr/src/linux-source-6.1.tar.xz
[ -f "$dst/kselftest_harness.h" ] && [ "$dst/kselftest_harness.h" -nt "$tarball" ] && exit 0
[ -f "$tarball" ] || { echo "kselftest-headers: $tarball missing (run make deps)" >&2; exit 1; }
mkdir -p "$dst"
tar -xJf "$tarball" -C "$dst" --strip-components=4 --wildcards \
	'*/tools/testing/selftests/kselftest.h' \
	'*/tools/testing/selftests/kselftest_harness.h'
touch "$dst/kselftest_harness.h"
