#!/usr/bin/env bash
# Run the kernel's checkpatch.pl (from Debian's linux-source-6.1 tarball,
# extracted into build/checkpatch) over the module and the UAPI header.
# Exceptions, each justified:
#   MACRO_ARG_REUSE: SHMPOOL_IOCTL_OP() in kmod/ioctl.c uses its ioctl
#     number twice; it is always a constant (SHMPOOL_IOC_*), as in iommufd.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cp_dir=$top/build/checkpatch
tarball=/usr/src/linux-source-6.1.tar.xz
if [ ! -x "$cp_dir/scripts/checkpatch.pl" ]; then
	mkdir -p "$cp_dir"
	tar -xJf "$tarball" -C "$cp_dir" --strip-components=1 --wildcards \
		'*/scripts/checkpatch.pl' '*/scripts/spelling.txt' '*/scripts/const_structs.checkpatch'
fi
cd "$top"
"$cp_dir/scripts/checkpatch.pl" --no-tree --terse --show-types --strict --ignore MACRO_ARG_REUSE -f \
	kmod/*.c kmod/*.h include/uapi/linux/shmpool.h
