/* SPDX-License-Identifier: MIT */
/*
 * Hostile-peer trials (issue 14), shared by the lib_hostile_*_test.c files.
 *
 * A trial: a structure lives at [off, off + len) of a pool. The "peer" (the
 * test process) writes garbage or crafted values into it, then a victim
 * process (fork()ed, so a crash or hang cannot take the test down) runs
 * library calls on it under a watchdog. The victim may make every page of
 * the pool outside the structure inaccessible first (hostile_guard()), so
 * that a stray read or write faults instead of passing unseen; what the
 * library must read outside the structure (a pool header, a heap's control
 * block) is opened up with hostile_unguard(). The trial fails on any
 * signal, on a hang past the budget, and on a non-zero exit (the victim's
 * own verdict: an undocumented errno, a result outside the structure).
 *
 * Seeds: SHMPOOL_HOSTILE_SEED (decimal or 0x hex) fixes the first trial's
 * seed; each trial uses seed + trial number and a failure prints it, so
 * that `SHMPOOL_HOSTILE_SEED=<seed> <test> -t <name>` replays it.
 * SHMPOOL_HOSTILE_TRIALS (default: the caller's count) sets how many.
 */
#ifndef SHMPOOL_HOSTILE_H
#define SHMPOOL_HOSTILE_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* splitmix64: small, seedable, good enough to pick bytes and offsets */
static inline uint64_t hostile_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A value in [0, n) (n > 0) */
static inline uint64_t hostile_below(uint64_t *s, uint64_t n)
{
	return hostile_next(s) % n;
}

/* The base seed of a test: SHMPOOL_HOSTILE_SEED, else a fixed default */
static inline uint64_t hostile_seed(void)
{
	const char *s = getenv("SHMPOOL_HOSTILE_SEED");

	return s && *s ? strtoull(s, NULL, 0) : 0x5eed0f5e1f15ull;
}

/* How many trials: SHMPOOL_HOSTILE_TRIALS if set and positive, else @dflt */
static inline unsigned int hostile_trials(unsigned int dflt)
{
	const char *s = getenv("SHMPOOL_HOSTILE_TRIALS");
	long v = s ? strtol(s, NULL, 0) : 0;

	return v > 0 ? (unsigned int)v : dflt;
}

/* Fill @len bytes at @dst with random bytes */
static inline void hostile_fill(uint64_t *s, void *dst, size_t len)
{
	unsigned char *d = dst;
	size_t i;

	for (i = 0; i < len; i++)
		d[i] = (unsigned char)hostile_next(s);
}

/*
 * A value crafted to be plausible for a field that holds an index, length
 * or offset whose sane range is [0, @limit]: 0, 1, limit - 1, limit,
 * limit + 1, a power of two near it, all ones, or a random value near the
 * limit. Used by the crafted-value trials.
 */
static inline uint64_t hostile_plausible(uint64_t *s, uint64_t limit)
{
	switch (hostile_below(s, 9)) {
	case 0: return 0;
	case 1: return 1;
	case 2: return limit ? limit - 1 : 0;
	case 3: return limit;
	case 4: return limit + 1;
	case 5: return limit * 2;
	case 6: return ~0ull;
	case 7: return (uint64_t)1 << hostile_below(s, 64);
	default: return limit + hostile_below(s, 64) - 32;
	}
}

/*
 * In the victim: make the pages of [@base, @base + @size) outside
 * [@off, @off + @len), rounded out to pages, inaccessible. 0 or -errno.
 */
static inline int hostile_guard(void *base, size_t size, size_t off, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t lo = off & ~(pg - 1), hi = (off + len + pg - 1) & ~(pg - 1);

	if (hi > size)
		hi = size;
	if (lo && mprotect(base, lo, PROT_NONE))
		return -errno;
	if (hi < size && mprotect((char *)base + hi, size - hi, PROT_NONE))
		return -errno;
	return 0;
}

/* In the victim: open up [@off, @off + @len) again (rounded out to pages) */
static inline int hostile_unguard(void *base, size_t off, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	size_t lo = off & ~(pg - 1), hi = (off + len + pg - 1) & ~(pg - 1);

	return mprotect((char *)base + lo, hi - lo, PROT_READ | PROT_WRITE) ?
	       -errno : 0;
}

/*
 * Copy of [@base, @base + @size) for hostile_changed_outside(); free() it.
 * Take it after the peer's writes and before the victim runs.
 */
static inline void *hostile_snapshot(const void *base, size_t size)
{
	void *copy = malloc(size);

	if (copy)
		memcpy(copy, base, size);
	return copy;
}

/*
 * The first offset outside [@off, @off + @len) where @base differs from
 * @snap, or -1 if none did: the victim wrote outside the structure.
 */
static inline long hostile_changed_outside(const void *base, const void *snap,
					   size_t size, size_t off, size_t len)
{
	const unsigned char *a = base, *b = snap;
	size_t i;

	for (i = 0; i < size; i++) {
		if (i == off) {
			i = off + len - 1;
			continue;
		}
		if (a[i] != b[i])
			return (long)i;
	}
	return -1;
}

/*
 * Run @victim(@arg) in a child under a watchdog of @ms milliseconds
 * (scaled by the caller as it sees fit). Returns 0 if it exited 0; else
 * fills @why (at least 96 bytes) and returns -1: "signal N (name)",
 * "hung (killed after N ms)", or "exit N" (the victim's own verdict).
 * @seed is only printed. The child dies with the test (PR_SET_PDEATHSIG).
 */
static inline int hostile_run(int (*victim)(void *arg), void *arg,
			      unsigned int ms, uint64_t seed, char *why)
{
	struct timespec tick = { 0, 1000000L };
	unsigned int waited = 0;
	int status;
	pid_t pid, r;

	why[0] = '\0';
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(why, 96, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int rc = victim(arg);

		_exit(rc < 0 || rc > 255 ? 255 : rc);
	}
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0) {
			snprintf(why, 96, "waitpid: %s", strerror(errno));
			return -1;
		}
		if (waited >= ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(why, 96, "hung (killed after %u ms), seed 0x%llx",
				 ms, (unsigned long long)seed);
			return -1;
		}
		nanosleep(&tick, NULL);
		waited++;
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, 96, "signal %d (%s), seed 0x%llx",
			 WTERMSIG(status), strsignal(WTERMSIG(status)),
			 (unsigned long long)seed);
		return -1;
	}
	if (WEXITSTATUS(status)) {
		snprintf(why, 96, "exit %d, seed 0x%llx", WEXITSTATUS(status),
			 (unsigned long long)seed);
		return -1;
	}
	return 0;
}

/*
 * The inspection trials (lib_inspect_test, shmpoolctl_test): what the peer
 * writes into [@off, @off + @len) of the pool at @base, picked by @s: random
 * bytes over all of it, or one to four crafted values (at a 4-aligned
 * place: plausible 32- and 64-bit counts and offsets near the pool's
 * size in bytes and granules, a link to the field itself, a run of
 * name bytes without NUL). Returns what it did, for the log.
 */
static inline const char *hostile_scribble(uint64_t *s, void *base, size_t size,
					   size_t off, size_t len)
{
	unsigned char *b = (unsigned char *)base + off;
	unsigned int n, k;
	size_t at;

	if (len < 8 || hostile_below(s, 4) == 0) {
		hostile_fill(s, b, len);
		return "random bytes";
	}
	n = 1 + (unsigned int)hostile_below(s, 4);
	for (k = 0; k < n; k++) {
		at = hostile_below(s, (len - 8) / 4 + 1) * 4;
		switch (hostile_below(s, 5)) {
		case 0: {
			uint32_t v = (uint32_t)hostile_plausible(s, size >> 4);

			memcpy(b + at, &v, 4);
			break;
		}
		case 1: {
			uint32_t v = (uint32_t)hostile_plausible(s, size);

			memcpy(b + at, &v, 4);
			break;
		}
		case 2: {
			uint64_t v = hostile_plausible(s, size);

			memcpy(b + at, &v, 8);
			break;
		}
		case 3: {
			/* a link to itself, in bytes or in granules */
			uint64_t v = off + at;

			if (hostile_below(s, 2))
				v >>= 4;
			memcpy(b + at, &v, hostile_below(s, 2) ? 4 : 8);
			break;
		}
		default: {
			/* name bytes, none of them NUL, control bytes among them */
			size_t i, m = len - at < 80 ? len - at : 80;

			for (i = 0; i < m; i++)
				b[at + i] = (unsigned char)(1 + hostile_below(s, 255));
			break;
		}
		}
	}
	return "crafted values";
}

/*
 * A "flipper": a child that keeps writing into [@off, @off + @len) of the
 * shared mapping @base while the victim runs (values checked, then read
 * again). It puts back the byte of @orig (the structure as it was) half
 * of the time, so that the structure keeps looking plausible, else writes
 * a random byte; stop it with hostile_flipper_stop(). Returns its pid or -1.
 */
static inline pid_t hostile_flipper_start(void *base, const void *orig,
					  size_t off, size_t len, uint64_t seed)
{
	volatile unsigned char *b = (volatile unsigned char *)base + off;
	const unsigned char *o = (const unsigned char *)orig + off;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		uint64_t r = hostile_next(&seed);
		size_t i = (size_t)((r >> 8) % len);

		b[i] = (r & 1) ? o[i] : (unsigned char)(r >> 1);
	}
}

static inline void hostile_flipper_stop(pid_t pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

#endif /* SHMPOOL_HOSTILE_H */
