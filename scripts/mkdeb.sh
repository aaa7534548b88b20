#!/usr/bin/env bash
# make deb: build the Debian packages (debian/) into build/deb/.
#
# The packages are built from a copy of the tree, build/deb/shmpool-<VERSION>/
# (the files git knows plus new ones it does not ignore), so the build
# leaves the tree alone. Their version is the Makefile's VERSION: this script
# writes debian/changelog into the copy. Then lintian checks the result and
# any warning or error fails the build (justified exceptions are in
# debian/*.lintian-overrides).
#
# Output: build/deb/{shmpool-dkms,libshmpool0,libshmpool-dev,shmpool-tools}_*.deb
# (shmpool-tools once tools/shmpoolctl.c exists), .buildinfo and .changes.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

version=$(sed -n 's/^VERSION[[:space:]]*:=[[:space:]]*//p' Makefile)
[ -n "$version" ] || { echo "mkdeb: no VERSION in Makefile" >&2; exit 1; }
out=$top/build/deb
src=$out/shmpool-$version

if ! dpkg-checkbuilddeps debian/control; then
	echo "mkdeb: build dependencies missing: run 'make deps' (scripts/deps.sh)" >&2
	exit 1
fi

rm -rf "$out"
mkdir -p "$src"
if git rev-parse --git-dir > /dev/null 2>&1; then
	# Tracked and new files that exist (a file deleted but not yet
	# committed is left out), never what .gitignore names (build/).
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		rsync -a --from0 --files-from=- . "$src/"
	when=$(git log -1 --format=%ct 2>/dev/null || date +%s)
	desc=$(git describe --always --dirty 2>/dev/null || echo unknown)
else
	rsync -a --exclude /build --exclude /.git . "$src/"
	when=$(date +%s)
	desc="a tree without git"
fi

cat > "$src/debian/changelog" <<EOT
shmpool ($version) unstable; urgency=medium

  * Built by "make deb" from $desc.

 -- shmpool developers <shmpool@users.noreply.github.com>  $(date -R -u -d "@$when")
EOT

echo "  DEB     build/deb/ (version $version)"
export SOURCE_DATE_EPOCH=$when
DEB_BUILD_OPTIONS="noautodbgsym parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}"
export DEB_BUILD_OPTIONS
(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign) > "$out/build.log" 2>&1 || {
	tail -n 40 "$out/build.log" >&2
	echo "mkdeb: dpkg-buildpackage failed; whole log in build/deb/build.log" >&2
	exit 1
}
ls "$out"/*.deb | sed "s|^$top/|  |"

changes=$(ls "$out"/shmpool_"$version"_*.changes)
lintian --allow-root --fail-on error,warning --info --display-info "$changes" > "$out/lintian.log" 2>&1 || {
	cat "$out/lintian.log" >&2
	echo "mkdeb: lintian found errors or warnings (build/deb/lintian.log)" >&2
	exit 1
}
[ ! -s "$out/lintian.log" ] || sed 's/^/  lintian: /' "$out/lintian.log"
echo "  lintian clean"
