#!/usr/bin/env bash
# Build (or reuse) the debug-lane kernel from Debian's linux-source-6.1:
# tinyconfig + scripts/debug-kernel.config, cached under build/kdebug/<key>,
# where <key> hashes the config fragment, the recipe version below and the
# source tarball's identity.
# Prints the cache directory on stdout; the kernel is <dir>/src/arch/x86/boot/bzImage
# and out-of-tree modules build with `make -C <dir>/src M=...`.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
frag=$top/scripts/debug-kernel.config
tarball=$(ls /usr/src/linux-source-6.1.tar.xz 2>/dev/null || true)
[ -n "$tarball" ] || { echo "build-debug-kernel: /usr/src/linux-source-6.1.tar.xz missing (make deps)" >&2; exit 1; }

# Bump when a change to this script changes the kernel it builds.
recipe=2
key=$( { cat "$frag"; echo "recipe $recipe"; stat -c '%s %Y' "$tarball"; } | sha256sum | cut -c1-16)
out=$top/build/kdebug/$key
mkdir -p "$top/build/kdebug"
# One builder at a time; the others wait for it and reuse its kernel.
exec 8> "$top/build/kdebug/.lock"
flock 8
if [ -f "$out/done" ]; then
	echo "$out"
	exit 0
fi

log() { echo "build-debug-kernel: $*" >&2; }
rm -rf "$out"
mkdir -p "$out"
log "extracting $tarball (first build only)"
tar -xJf "$tarball" -C "$out"
mv "$out"/linux-source-* "$out/src"

cd "$out/src"
log "configuring: tinyconfig + $(grep -cv '^[#!]' "$frag") options"
make -s tinyconfig >&2
# One option per line: NAME turns it on, !NAME keeps it off.
opts=$(grep -v '^[#!]' "$frag" | grep -v '^$')
offs=$(sed -n 's/^!//p' "$frag")
args=()
for o in $opts; do args+=(-e "$o"); done
for o in $offs; do args+=(-d "$o"); done
./scripts/config "${args[@]}" -d SLOB -d SLUB_TINY -d WERROR
make -s olddefconfig >&2
# olddefconfig silently drops options whose dependencies are missing: refuse that.
missing=
for o in $opts; do
	grep -q "^CONFIG_$o=y" .config || missing="$missing $o"
done
# ... and turns on again what another option selects.
for o in $offs; do
	grep -q "^CONFIG_$o=[ym]" .config && missing="$missing !$o"
done
[ -z "$missing" ] || { log "options did not stick:$missing"; exit 1; }

log "building bzImage and modules with $(nproc) jobs (about 10 minutes on two idle cores)"
make -s -j"$(nproc)" bzImage modules >&2
touch "$out/done"
# Older caches are dead weight (a full kernel tree each).
for d in "$top"/build/kdebug/*/; do
	[ "${d%/}" = "$out" ] || rm -rf "$d"
done
flock -u 8
echo "$out"
