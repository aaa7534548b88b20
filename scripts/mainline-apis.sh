#!/usr/bin/env bash
# Static check: kmod/ uses no kernel API that mainline removed or made
# private, except inside kmod/compat.h, where each one sits behind a Kbuild
# feature probe. The list is what README's "Kernel versions" table found
# changed between Debian's 6.1 and mainline; extend both together.
#   scripts/mainline-apis.sh [tree]      (default: this checkout)
# List format: pattern<TAB>what mainline did
set -uo pipefail
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
bad=0
while IFS=$'\t' read -r pat why; do
	[ -n "$pat" ] || continue
	# Code only: comment lines (" * ...", "/* ...", "// ...") may name them.
	hits=$(grep -nE "$pat" kmod/*.c kmod/shmpool.h 2>/dev/null |
		grep -vE '^[^:]+:[0-9]+:[[:space:]]*(\*|/\*|//)')
	if [ -n "$hits" ]; then
		echo "mainline-apis: $why:"
		echo "$hits" | sed 's/^/  /'
		bad=1
	fi
done <<'LIST'
\bnth_page\(	nth_page() is gone in 6.18 (page + i within one buddy block)
\blookup_one_len(_unlocked)?\(	lookup_one_len() became lookup_noperm() in 6.16
->vm_flags[[:space:]]*[|&^]?=[^=]	vm_flags is read-only since 6.3 (vm_flags_set/clear)
\beventfd_signal\(	eventfd_signal() lost its count in 6.8 (compat.h wraps it)
->i_[mca]time\b	inode times are private behind accessors since 6.6/6.7
\bMAX_ORDER\b	MAX_ORDER changed meaning in 6.4 and became MAX_PAGE_ORDER in 6.8
\bdo_timens_ktime_to_host\(	not exported to modules
\bwake_q_add\(	not exported to modules
LIST
exit $bad
