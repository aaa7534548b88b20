#!/usr/bin/env bash
# Install everything shmpool's build, tests, VM lanes and benchmarks need,
# with apt-get. Idempotent: when all is present it only checks (well under a
# second) and installs nothing.
set -euo pipefail

pkgs=(
	build-essential make gcc g++ pkg-config xz-utils cpio kmod rsync
	qemu-system-x86 busybox-static
	linux-image-amd64 linux-headers-amd64
	linux-image-6.12-amd64 linux-headers-6.12-amd64
	linux-image-6.12-rt-amd64 linux-headers-6.12-rt-amd64
	linux-source-6.1 flex bison libelf-dev libssl-dev bc dwarves
	sparse liburcu-dev libboost-dev
	dpdk-dev libck-dev
	iceoryx libiceoryx-binding-c-dev libiceoryx-binding-c2
	man-db groff-base
	debhelper dh-dkms dkms lintian debootstrap	# make deb, the package test
	libmimalloc-dev libjemalloc-dev libpmemobj-dev	# alloc_bench's stronger peers
	valgrind	# bench/alloc_count.sh: alloc_bench counted in instructions
)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
sudo=
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q >&2
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
