#!/usr/bin/env bash
# Judge one VM lane from its logs (called by vm-run.sh):
#   vm-verdict.sh <lane> <dir> <nonce> <qemu exit status> <demo 0|1>
# Prints a TAP line per lane-level check, then
# "lane <lane>: P passed, F failed, S skipped"; exits non-zero on any failure.
set -uo pipefail
lane=$1 dir=$2 nonce=$3 qemu_rc=$4 demo=$5
out=$dir/out.log
console=$dir/console.log
top=$(cd "$(dirname "$0")/.." && pwd)

passed=0 failed=0 skipped=0
check() {	# check <ok 0|1> <description> [detail...]
	local ok=$1 what=$2
	shift 2
	if [ "$ok" = 0 ]; then
		passed=$((passed + 1))
		echo "[$lane] ok - $what"
	else
		failed=$((failed + 1))
		echo "[$lane] not ok - $what"
		local l
		for l in "$@"; do echo "[$lane] #   $l"; done
	fi
}
has() { grep -q "$@" "$out"; }

# The tests (or the demo programs).
while read -r kind a b c rest; do
	case "$kind" in
	FAIL) echo "[$lane] # FAIL $a $b $c $rest" ;;
	COUNTS) passed=$((passed + a)); failed=$((failed + b)); skipped=$((skipped + c)) ;;
	esac
done < <(awk -f "$top/scripts/tap-count.awk" "$out")
if [ "$demo" = 1 ]; then
	# Demo programs print prose, not TAP: their exit status is the verdict.
	bad=$(grep '^### END .* rc=' "$out" | grep -v 'rc=0$' || true)
	check "$([ -z "$bad" ] && has '^### END ' && echo 0 || echo 1)" "demo programs succeeded" "$bad"
fi

marker=1
grep -qx "### RESULT $nonce" "$out" && marker=0
check "$marker" "guest ran to completion" "qemu exit status $qemu_rc; see $console"
check "$(has -x '### INSMOD ok'; echo $?)" "module loaded"
if [ "$marker" = 0 ]; then
	check "$(has -x '### POOLS 0'; echo $?)" "no pools left after the tests" \
		"$(sed -n '/^### POOLS/p; /^### left behind/,/^### PAGES/p' "$out" | grep -v '^### PAGES')"
	check "$(has -x '### PAGES 0'; echo $?)" "module holds zero pages after the tests" "$(grep '^### PAGES' "$out")"
	check "$(has -x '### RMMOD ok'; echo $?)" "module unloaded"
	if has '^### LINGER'; then
		check "$(has -x '### LINGER ready'; echo $?)" "module unloaded under a live process that attached" \
			"$(grep '^### LINGER' "$out")"
	fi
	if has -x '### KMEMLEAK BEGIN'; then
		leaks=$(sed -n '/^### KMEMLEAK BEGIN$/,/^### KMEMLEAK END$/p' "$out" | grep -c 'unreferenced object')
		check "$([ "$leaks" = 0 ] && echo 0 || echo 1)" "kmemleak: no leaks" "$leaks unreferenced objects; see $out"
	fi
fi

# The kernel's own complaints, from the moment our module was loaded.
bad='BUG[: ]|WARNING:|Oops|KASAN|UBSAN|kmemleak|Kernel panic|Call Trace|general protection|'
bad+='possible recursive locking|circular locking|inconsistent lock state|lock held when returning|'
bad+='suspicious RCU|sleeping function called|corruption|Bad page|page dumped|hung_task|soft lockup'
found=$(sed -n '/shmpool-vm: start/,$p' "$console" | tr -d '\r' | grep -a -E "$bad" | grep -a -v 'shmpool-vm:' | head -n 20)
check "$([ -z "$found" ] && echo 0 || echo 1)" "kernel log clean (no warnings, BUG, KASAN, lockdep, leaks, panic)" \
	"${found:-}" "(full log: $console)"

echo "lane $lane: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
