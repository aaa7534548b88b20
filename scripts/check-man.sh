#!/usr/bin/env bash
# The man pages in man/: every page renders without a single groff or man
# warning and within 80 columns, every .so link points at a page that names it, and every public
# function of libshmpool (the global symbols of lib/libshmpool.map and the
# static inline functions of include/shmpool*.h, "__" names excepted) has a
# page or a link, while every name a page lists exists. So a new function
# without documentation, or documentation of a function that is gone, fails
# make check. Prints what is wrong; exit status 0 only if nothing is.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top/man" || exit 1
bad=0
fail() { echo "man: $*"; bad=1; }

is_link() { local first; read -r first < "$1"; [[ $first == ".so "* ]]; }

# The names a page documents: its NAME section up to " \- ".
page_names() {
	awk '/^\.SH NAME/ { f = 1; next } /^\.SH/ { f = 0 } f' "$1" |
		tr '\n' ' ' | sed 's/ \\-.*//; s/,/ /g'
}

pages=()
for f in *.[1-8]; do
	[ -e "$f" ] || continue
	if is_link "$f"; then
		target=$(sed -n '1s/^\.so man[1-8]\///p' "$f")
		[ "$(wc -l < "$f")" = 1 ] || fail "$f: a .so link must be one line"
		if [ -z "$target" ] || [ ! -f "$target" ]; then
			fail "$f: .so to a missing page (${target:-?})"
		elif is_link "$target"; then
			fail "$f: .so to another link, $target"
		elif ! grep -qx -- "${f%.*}" <<< "$(page_names "$target" | tr ' ' '\n')"; then
			fail "$f: $target does not list ${f%.*} in its NAME section"
		fi
		continue
	fi
	pages+=("$f")
	# groff's own warnings, all of them (-ww), and man's rendering at 80
	# columns with its warnings on; any output on stderr is a failure.
	out=$(groff -ww -z -t -man "$f" 2>&1)
	[ -z "$out" ] || fail "$f: groff -ww: $out"
	out=$(MANWIDTH=80 man --warnings=w -l "$f" 2>&1 > /dev/null)
	[ -z "$out" ] || fail "$f: man --warnings: $out"
	# and fits the 80 columns it was rendered for (synopses, examples)
	wide=$(MANWIDTH=80 man -l "$f" 2> /dev/null | wc -L)
	[ "$wide" -le 80 ] || fail "$f: a line $wide columns wide at MANWIDTH=80"
done
[ ${#pages[@]} -gt 0 ] || fail "no pages in man/"

# What must be documented: exported symbols and public inline functions.
public=$(
	sed -n '/global:/,/local:/p' "$top/lib/libshmpool.map" |
		sed -n 's/^[[:space:]]*\([a-z_][a-z0-9_]*\);.*/\1/p'
	cat "$top"/include/shmpool*.h |
		sed -n 's/^\(static inline\|__SHMPOOL_RING_INLINE\)[^(]*[^a-z0-9_]\([a-z_][a-z0-9_]*\)(.*/\2/p'
)
public=$(echo "$public" | grep -v '^__' | sort -u)
[ -n "$public" ] || fail "found no public functions (map or headers moved?)"
for s in $public; do
	[ -f "$s.3" ] || fail "$s is public but has no page or link man/$s.3"
done

# Every name a section 3 page documents must exist.
for f in "${pages[@]}"; do
	case "$f" in *.3) ;; *) continue ;; esac
	for n in $(page_names "$f"); do
		# a here-string: "echo | grep -q" fails under pipefail when
		# grep stops reading early
		grep -qx -- "$n" <<< "$public" || fail "$f documents $n, which is not a public function"
		[ -f "$n.3" ] || fail "$f documents $n but man/$n.3 (page or .so link) is missing"
	done
done

[ "$bad" = 0 ] && echo "man: ${#pages[@]} pages render without warnings; $(echo "$public" | wc -l) public functions documented"
exit $bad
