#!/usr/bin/env bash
# Discover installed kernels; never hard-code versions.
#   kernels.sh headers        every kernel release with a headers tree
#   kernels.sh lane 6.1|6.12  "<release> <vmlinuz> <headers dir>" for the
#                             newest installed generic (non-rt) kernel of
#                             that series
#   kernels.sh lane rt        the same for the newest PREEMPT_RT kernel
#
# Lanes name their flavour: Debian's rt kernels ("6.12.118+deb12-rt-amd64")
# sort after the generic ones of the same version, so a plain series match
# would pick rt for the 6.12 lane.
set -euo pipefail

headers() {
	local d
	for d in /usr/src/linux-headers-*/; do
		d=${d%/}
		[ -f "$d/Module.symvers" ] || continue	# skip the -common trees
		echo "${d#/usr/src/linux-headers-}"
	done | sort -V
}

case "${1:-}" in
headers)
	headers
	;;
lane)
	series=${2:?series, e.g. 6.1, or rt}
	rel=$(headers | while read -r r; do
		[ -f "/boot/vmlinuz-$r" ] || continue
		case "$series:$r" in
		rt:*-rt-*) echo "$r" ;;
		rt:*|*:*-rt-*) ;;
		"$series:$series".*) echo "$r" ;;
		esac
	done | tail -n 1)
	[ -n "$rel" ] || { echo "kernels: no $series kernel with headers installed (make deps)" >&2; exit 1; }
	echo "$rel /boot/vmlinuz-$rel /usr/src/linux-headers-$rel"
	;;
*)
	echo "usage: $0 headers | lane <series>" >&2
	exit 2
	;;
esac
