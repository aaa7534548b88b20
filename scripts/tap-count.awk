# Count TAP results of kselftest programs run by shmpool's runners.
# Input: lines "### BEGIN <prog>", TAP from the program, "### END <prog> rc=N".
# A program that exits non-zero without a failing TAP line (crash, timeout,
# harness abort) counts as one failure of its own. Prints for each failure
# "FAIL <what>" and at the end "COUNTS <passed> <failed> <skipped>".
/^### BEGIN / { prog = $3; infile = 1; fails_here = 0; next }
/^### END / {
	rc = $4; sub(/^rc=/, "", rc)
	if (rc != 0 && fails_here == 0) {
		failed++
		print "FAIL " prog ": exited with status " rc (rc == 137 ? " (killed: timeout)" : "")
	}
	infile = 0; done[prog] = 1; next
}
infile && /^ok / {
	if ($0 ~ /# [Ss][Kk][Ii][Pp]/) skipped++; else passed++
	next
}
infile && /^not ok / {
	if ($0 ~ /# [Ss][Kk][Ii][Pp]/) { skipped++; next }
	failed++; fails_here++
	print "FAIL " prog ": " $0
	next
}
END {
	if (infile) { failed++; print "FAIL " prog ": never finished (the guest died or hung)" }
	printf "COUNTS %d %d %d\n", passed, failed, skipped
}
