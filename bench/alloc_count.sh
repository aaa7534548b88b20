#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# alloc_bench's one-process tables counted instead of timed: instructions
# per operation (callgrind's Ir) of shmpool's heap and of each peer over
# the same window loop, less the loop's own, and shmpool's ratio to each.
# Instructions repeat where seconds on these machines do not (see
# bench/alloc_bench.c); they are not time: a cache miss counts as one.
#
#   bench/alloc_count.sh [ALLOC_BENCH]   (default build/bench/alloc_bench-peers,
#                                          else build/bench/alloc_bench)
set -euo pipefail

bench=${1:-}
if [ -z "$bench" ]; then
	bench=build/bench/alloc_bench-peers
	[ -x "$bench" ] || bench=build/bench/alloc_bench
fi
[ -x "$bench" ] || { echo "alloc_count: no $bench (make bench builds it)" >&2; exit 2; }
command -v valgrind >/dev/null ||
	{ echo "alloc_count: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# alloc_bench-peers would re-execute itself for jemalloc's TLS (through
# /proc/self/exe, which under valgrind is valgrind): set what it would set
if ! SHMPOOL_ALLOC_BENCH_TLS=1 GLIBC_TUNABLES=glibc.rtld.optional_static_tls=65536 \
	valgrind --tool=callgrind --collect-atstart=no -q \
	--callgrind-out-file="$dir/cg.%p" "$bench" >"$dir/out" 2>&1; then
	cat "$dir/out" >&2
	exit 1
fi

# Each dump: "desc: Trigger: Client Request: TABLE|CONTENDER|OPS" and "summary: IR".
for f in "$dir"/cg.*; do
	awk '/^desc: Trigger: Client Request: / { sub(/^desc: Trigger: Client Request: /, ""); tag = $0 }
	     /^summary: / { ir = $2 }
	     END { if (tag != "" && ir != "") print tag "|" ir }' "$f"
done > "$dir/counts"
[ -s "$dir/counts" ] || { echo "alloc_count: no counts (is $bench built with valgrind/callgrind.h?)" >&2; exit 1; }

awk -F'|' '
{
	if (!($1 in seen)) {
		seen[$1] = 1
		tbls[++nt] = $1
	}
	ir[$1, $2] = $4 / $3
	ops = $3
}
END {
	order[1] = "the loop alone"
	order[2] = "shmpool heap"
	order[3] = "glibc malloc (process-local)"
	order[4] = "Boost.Interprocess managed_shm"
	order[5] = "mimalloc (process-local)"
	order[6] = "jemalloc (process-local)"
	for (t = 1; t <= nt; t++) {
		tbl = tbls[t]
		loop = ir[tbl, order[1]]
		sp = ir[tbl, order[2]] - loop
		printf "%s== instructions per operation (callgrind Ir), %s ==\n", (t > 1 ? "\n" : ""), tbl
		printf "one op = free a random window slot + allocate into it; %d ops per contender, counted after a warm-up\n", ops
		printf "%-34s %10s %12s %14s\n", "contender", "Ir/op", "less loop", "shmpool / it"
		for (i = 1; i <= 6; i++) {
			if (!((tbl, order[i]) in ir))
				continue
			v = ir[tbl, order[i]]
			if (i == 1)
				printf "%-34s %10.1f %12s %14s\n", order[i], v, "-", "-"
			else if (i == 2)
				printf "%-34s %10.1f %12.1f %14s\n", order[i], v, v - loop, "-"
			else
				printf "%-34s %10.1f %12.1f %14.2f\n", order[i], v, v - loop,
				       (v - loop > 0 ? sp / (v - loop) : 0)
		}
	}
	print "note: instructions, not time: a cache miss or a contended line counts as one"
}
' "$dir/counts"
