#!/usr/bin/env bash
# Show the guest's output as it arrives: in test mode the TAP result lines
# and the runner's markers, each prefixed with the lane; in demo mode all.
lane=$1
demo=${2:-0}
while IFS= read -r line; do
	if [ "$demo" = 1 ]; then
		case "$line" in "### RESULT"*) ;; *) printf '[%s] %s\n' "$lane" "$line" ;; esac
		continue
	fi
	case "$line" in
	"ok "*|"not ok "*|"### BEGIN"*|"### END"*|"### KERNEL"*|"# FAIL"*|"#  FAIL"*|*"ASSERT"*|*"EXPECT"*|"# Totals"*)
		printf '[%s] %s\n' "$lane" "$line" ;;
	esac
done
