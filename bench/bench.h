/* SPDX-License-Identifier: MIT */
/*
 * The benchmark harness shared by the bench/ programs (NAME_bench.c).
 *
 * These machines are 2-vCPU VMs on shared hosts (see shared/BENCHMARKING.md),
 * so a table is only worth something with its context: every table is
 * bracketed by a cache-line ping-pong probe, its cases run interleaved round
 * by round (A, B, C, A, B, C, ...), each case is reported as the per-round
 * ratio to a named peer measured in the same round, and the CPU time other
 * processes used during the table is printed next to it.
 *
 * A case runs in one or two forked processes, pinned to the first two CPUs
 * we may use (side 0 and side 1), which start together from a spin barrier;
 * side 0 times its own loop. Benchmarks assert nothing about time.
 */
#ifndef SHMPOOL_BENCH_H
#define SHMPOOL_BENCH_H

#include <stdatomic.h>
#include <stdint.h>

#define BENCH_MAX_ROUNDS	32
#define BENCH_DEF_ROUNDS	7

/*
 * One side of a measured loop: do @iters operations (a round trip for a
 * two-process case, one operation for a one-process case). @side is 0 or 1.
 * Runs in a forked child; it may exit(1) on a setup error.
 */
typedef void bench_fn(void *arg, int side, uint64_t iters);

struct bench_case {
	const char *name;	/* row label: say what is measured, honestly */
	const char *peer;	/* name of the row to compare with, or NULL */
	int nprocs;		/* 1 or 2 */
	uint64_t iters;		/* most operations per run (times -s SCALE) */
	bench_fn *fn;
	void *arg;
	void (*reset)(void *arg);	/* reset shared state before a run, or NULL */
	int count_syscalls;	/* also count syscalls per op under ptrace */

	/* filled by bench_table() */
	uint64_t run_iters;	/* operations per run: about 200 ms' worth */
	double ns[BENCH_MAX_ROUNDS];	/* ns per op, each round */
	double csw;		/* voluntary context switches per op, both sides */
	double syscalls;	/* syscalls per op (all sides), -1 if not counted */
	char syscall_detail[96];	/* how many of which, over how many ops */
};

struct bench_table {
	const char *title;
	const char *op;		/* what one op is: "round trip", "lock+unlock" */
	const char *unit;	/* "us" or "ns" */
	struct bench_case *cases;
	int ncases;
	const char *notes[8];	/* printed under the table, NULL-terminated */
};

/* Parse -r ROUNDS, -s SCALE (multiplies iters) and -h; exits on bad input. */
void bench_init(int argc, char **argv, const char *usage);

/* Run @t's cases interleaved round by round and print the table. */
void bench_table(struct bench_table *t);

/* A page of MAP_SHARED|MAP_ANONYMOUS memory that forked children share. */
void *bench_shared_page(void);

/*
 * Called by side 0 of a case: use @ns as the run's total instead of side 0's
 * elapsed time (e.g. a sum of latencies it measured itself).
 */
void bench_set_result_ns(uint64_t ns);

/* Wait until *@pid is set, then open /proc/<*pid>/stat (exits on error). */
int bench_open_proc_stat(_Atomic int *pid);
/* Is the process whose /proc/PID/stat is open as @fd asleep (state S or D)? */
int bench_proc_asleep(int fd);

/* nanoseconds on CLOCK_MONOTONIC */
uint64_t bench_now_ns(void);

/* Print "error: <what>: <strerror(err)>" and exit(1). */
void bench_die(const char *what, int err) __attribute__((noreturn));

#endif /* SHMPOOL_BENCH_H */
