#!/usr/bin/env bash
# Build shmpool.ko against one kernel tree, out of the source tree so that
# several kernels can be built side by side:
#   build-module.sh <kdir> <outdir> [extra kbuild args, e.g. C=1]
# Warnings are errors (W=1 KCFLAGS=-Werror).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kdir=${1:?kdir}
out=$(realpath -m "${2:?outdir}")
shift 2
mkdir -p "$out"
# Mirror what Kbuild needs; rsync keeps timestamps, so rebuilds are
# incremental, and --delete (within kmod/ and include/) drops removed files.
rsync -a --delete --exclude '*.o' --exclude '.*.cmd' --exclude '*.mod*' \
	"$top/Kbuild" "$top/kmod" "$top/include" "$out/"
make -s -C "$kdir" M="$out" W=1 KCFLAGS=-Werror "$@" modules
