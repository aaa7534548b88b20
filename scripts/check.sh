#!/usr/bin/env bash
# make check: static checks, host tests, then the VM lanes given as
# arguments. Ends with one line "N passed, N failed, N skipped".
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit
passed=0 failed=0 skipped=0
failures=()
SECONDS=0

phase() {	# phase <title>: a header with the time of day and the time so far
	printf '== %s (%s, %dm%02ds into check.sh)\n' "$1" "$(date +%T)" \
		$((SECONDS / 60)) $((SECONDS % 60))
}

result() {	# result <status> <name>
	if [ "$1" = 0 ]; then
		passed=$((passed + 1)); echo "ok - $2"
	else
		failed=$((failed + 1)); failures+=("$2"); echo "not ok - $2"
	fi
}

phase "static checks"
for r in $(scripts/kernels.sh headers); do
	log=$(scripts/build-module.sh "/usr/src/linux-headers-$r" "build/mod/$r" 2>&1 | grep -v 'Skipping BTF')
	[ -z "$log" ] || echo "$log"
	result "$([ -z "$log" ] && [ -f "build/mod/$r/shmpool.ko" ] && echo 0 || echo 1)" "module builds warning-free at W=1 for $r"
done
# The other static checks are independent of each other and single-threaded:
# side by side, reported in this order.
static=build/static
rm -rf "$static"
mkdir -p "$static"
static_check() {	# static_check <name> <command...>: its output and status
	"${@:2}" > "$static/$1.out" 2>&1
	echo $? > "$static/$1.rc"
}
static_check sparse scripts/sparse.sh &
# Kernel APIs gone from mainline (README: "Kernel versions"); the Debian
# headers still have them, so only this check notices a new use.
static_check mainline scripts/mainline-apis.sh &
static_check checkpatch scripts/checkpatch.sh &
static_check man scripts/check-man.sh &
wait
static_result() {	# static_result <name> <test title>
	local st
	st=$(cat "$static/$1.rc" 2>/dev/null || echo 1)
	[ "$st" = 0 ] || cat "$static/$1.out"
	result "$st" "$2"
}
static_result sparse "sparse clean (C=2) on every installed kernel"
static_result mainline "kmod/ uses no kernel API that mainline removed (outside compat.h)"
static_result checkpatch "checkpatch.pl --strict clean on kmod/ and the UAPI header"
static_result man "man pages render without warnings and document every public function"

phase "host tests (library, memfd backend): plain, ASan+UBSan, TSan"
hostlog=build/host-tests.log
hostdir=build/host-tests
rm -rf "$hostdir"
mkdir -p "$hostdir"
# One program: its whole output to its own log, then its TAP lines shown at
# once (under a lock, so that two programs' lines never mix).
host_test() {
	local t=$1 name=${1#build/} log
	log=$hostdir/${name//\//_}.log
	{
		echo "### BEGIN $name"
		SHMPOOL_BACKEND=memfd timeout -s KILL 600 "$t" 2>&1
		echo "### END $name rc=$?"
	} > "$log"
	grep -E '^(not )?ok ' "$log" | sed "s|^|[host $name] |" > "$log.tap"
	flock "$hostdir" cat "$log.tap"
}
# Two programs at a time: most of the plain build's time is its kill
# points, one ptrace-stepped child at a time (about one core), and the
# debug kernel's build (nice 19) takes what is left. Longest first.
# examples_test: every program in examples/ (one test each), on memfd here.
hosttests=()
for t in build/selftests/lib_{alloc,sync,ring,hostile_spin,cache}_test build/selftests/lib_*_test \
	 build/tsan/lib_*_test build/asan/lib_*_test build/selftests/examples_test \
	 build/selftests/shmpoolctl_test; do
	[ -x "$t" ] || continue
	case " ${hosttests[*]} " in *" $t "*) continue ;; esac
	hosttests+=("$t")
done
export -f host_test
export hostdir
# shellcheck disable=SC2016 # "$1" is the inner bash's
printf '%s\n' "${hosttests[@]}" | xargs -P 2 -I{} bash -c 'host_test "$1"' _ {}
for t in "${hosttests[@]}"; do
	name=${t#build/}
	cat "$hostdir/${name//\//_}.log"
done > "$hostlog"
while read -r kind a b c rest; do
	case "$kind" in
	FAIL) echo "# FAIL $a $b $c $rest"; failures+=("host: $a $b $c $rest") ;;
	COUNTS) passed=$((passed + a)); failed=$((failed + b)); skipped=$((skipped + c)) ;;
	esac
done < <(awk -f scripts/tap-count.awk "$hostlog")

# Lines "ok - NAME" / "not ok - NAME" from a script, counted; others shown.
counted() {
	local line
	while IFS= read -r line; do
		case "$line" in
		"ok - "*) result 0 "${line#ok - }" ;;
		"not ok - "*) result 1 "${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done
}

phase "Debian packages: make deb, installed into a clean Debian 12 chroot"
counted < <(scripts/pkg-test.sh 2>&1)
# The 6.1 and 6.12 lanes load the modules DKMS built there.
export SHMPOOL_KO_DIR=$top/build/pkg-test/modules

for lane in "$@"; do
	phase "VM lane $lane"
	scripts/vm-run.sh "$lane" | tee "build/check-$lane.log"
	case "$lane" in
	6.1|6.12) counted < <(scripts/pkg-test.sh --lane "$lane" 2>&1) ;;
	esac
	line=$(tail -n 1 "build/check-$lane.log")
	if [[ $line =~ ^lane\ .*:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed,\ ([0-9]+)\ skipped$ ]]; then
		passed=$((passed + BASH_REMATCH[1]))
		failed=$((failed + BASH_REMATCH[2]))
		skipped=$((skipped + BASH_REMATCH[3]))
		[ "${BASH_REMATCH[2]}" = 0 ] || failures+=("lane $lane")
	else
		result 1 "lane $lane produced a verdict"
	fi
done

phase "done"
[ ${#failures[@]} = 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
