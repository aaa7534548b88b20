#!/usr/bin/env bash
# Run kselftest programs as the kernel's runner does: one TAP stream, each
# program's own TAP nested under "# ", then "ok N selftests: shmpool: prog".
n=0 rc_all=0
echo "TAP version 13"
echo "1..$#"
for t in "$@"; do
	n=$((n + 1))
	name=$(basename "$t")
	echo "# selftests: shmpool: $name"
	"$t" 2>&1 | sed 's/^/# /'
	rc=${PIPESTATUS[0]}
	case $rc in
	0) echo "ok $n selftests: shmpool: $name" ;;
	4) echo "ok $n selftests: shmpool: $name # SKIP" ;;
	*) echo "not ok $n selftests: shmpool: $name # exit=$rc"; rc_all=1 ;;
	esac
done
exit $rc_all
