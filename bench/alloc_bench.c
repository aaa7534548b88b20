// SPDX-License-Identifier: MIT
/*
 * alloc_bench: the pool heap (shmpool_alloc.h) against Boost.Interprocess
 * managed_shared_memory (the C++ users' shared-memory malloc, via
 * alloc_boost.cpp) and glibc malloc (process-local: the reference a shared
 * allocator is measured against), in one run.
 *
 * One op = free the block in a random slot of a window of WINDOW live
 * blocks (if any) and allocate a new one of a size from a precomputed
 * random table: small (16-256 B) or mixed (16 B-64 KiB, log-uniform). The
 * two-process cases share one pool / one segment, each side with its own
 * window; glibc's two-process row uses two private heaps and is only a
 * reference. A side that is done returns shmpool's thread cache
 * (shmpool_heap_flush()), as a process done with a heap does: the bench's
 * sides leave with _exit(). Then fragmentation on a mixed trace: the peak of what the
 * allocator took (shmpool: heap less free general blocks; Boost: segment
 * less free memory; glibc: arena + mmapped bytes) over the peak of bytes
 * live.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_alloc.h>

#include "bench.h"

#define POOL_BYTES	(64UL << 20)
#define WINDOW		256
#define NSIZES		4096
#define OPS		2000000
#define BOOST_SEG	"shmpool_alloc_bench"

/* alloc_boost.cpp */
void *alloc_boost_create(const char *name, size_t bytes);
void alloc_boost_destroy(void *seg, const char *name);
uint64_t alloc_boost_alloc(void *seg, size_t n);
void alloc_boost_free(void *seg, uint64_t p);
uint64_t alloc_boost_used(void *seg);

static struct shmpool_heap *heap;
static void *boost_seg;

struct contender {
	uint64_t (*alloc)(size_t n);	/* 0: out of memory */
	void (*free)(uint64_t h);
	uint64_t (*used)(void);		/* bytes taken, for fragmentation */
	void (*done)(void);		/* a process is done with it, or NULL */
};

static uint64_t sp_alloc(size_t n)
{
	uint64_t off;

	return shmpool_alloc(heap, n, &off) ? 0 : off;
}

static void sp_free(uint64_t off)
{
	if (shmpool_free(heap, off))
		bench_die("shmpool_free", EINVAL);
}

/* a process that is done returns its thread cache (bench sides _exit()) */
static void sp_done(void)
{
	shmpool_heap_flush(heap);
}

static uint64_t sp_used(void)
{
	struct shmpool_heap_stats st;

	if (shmpool_heap_stats(heap, &st))
		bench_die("shmpool_heap_stats", EINVAL);
	return st.used_bytes;
}

static uint64_t gl_alloc(size_t n)
{
	return (uint64_t)(uintptr_t)malloc(n);
}

static void gl_free(uint64_t p)
{
	free((void *)(uintptr_t)p);
}

static uint64_t gl_used(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.arena + mi.hblkhd;
}

static uint64_t bo_alloc(size_t n)
{
	return alloc_boost_alloc(boost_seg, n);
}

static void bo_free(uint64_t p)
{
	alloc_boost_free(boost_seg, p);
}

static uint64_t bo_used(void)
{
	return alloc_boost_used(boost_seg);
}

static const struct contender shmpool_c = { sp_alloc, sp_free, sp_used, sp_done };
static const struct contender glibc_c = { gl_alloc, gl_free, gl_used, NULL };
static const struct contender boost_c = { bo_alloc, bo_free, bo_used, NULL };

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint32_t small_sizes[NSIZES], mixed_sizes[NSIZES];

static void make_sizes(void)
{
	uint64_t s = 88172645463325252ULL;
	unsigned int e;
	int i;

	for (i = 0; i < NSIZES; i++) {
		small_sizes[i] = 16 + (uint32_t)(rnd(&s) % 241);
		e = 4 + (unsigned int)(rnd(&s) % 12);	/* 16 B .. 64 KiB */
		mixed_sizes[i] = (1U << e) + (uint32_t)(rnd(&s) % (1U << e));
	}
}

struct work {
	const struct contender *c;
	const uint32_t *sizes;
};

static void window_loop(void *arg, int side, uint64_t iters)
{
	const struct work *w = arg;
	uint64_t slot[WINDOW] = { 0 }, s = 0x9e3779b97f4a7c15ULL + (uint64_t)side, i;
	unsigned int k;

	for (i = 0; i < iters; i++) {
		k = (unsigned int)(rnd(&s) % WINDOW);
		if (slot[k])
			w->c->free(slot[k]);
		slot[k] = w->c->alloc(w->sizes[i % NSIZES]);
		if (!slot[k])
			bench_die("allocation", ENOMEM);
	}
	for (k = 0; k < WINDOW; k++)
		if (slot[k])
			w->c->free(slot[k]);
	if (w->c->done)
		w->c->done();
}

/* ---- fragmentation ---------------------------------------------------------- */

#define FRAG_OPS	200000
#define FRAG_LIVE	4096

struct frag_result {
	uint64_t peak_used, peak_live;
};

/*
 * A mixed trace whose live set swells and shrinks between about 2 and 12
 * MiB: allocate while below the phase's target, else free a random block.
 */
static void frag_trace(const struct contender *c, struct frag_result *r)
{
	static uint64_t h[FRAG_LIVE];
	static uint32_t sz[FRAG_LIVE];
	uint64_t s = 1234567, live = 0, used, target = 4 << 20, i;
	size_t n = 0, k;

	r->peak_used = r->peak_live = 0;
	for (i = 0; i < FRAG_OPS; i++) {
		if (i % 20000 == 0)
			target = (2 + rnd(&s) % 11) << 20;
		if (n < FRAG_LIVE && live < target) {
			sz[n] = mixed_sizes[rnd(&s) % NSIZES];
			h[n] = c->alloc(sz[n]);
			if (!h[n])
				bench_die("fragmentation trace", ENOMEM);
			live += sz[n++];
			if (live > r->peak_live)
				r->peak_live = live;
		} else if (n) {
			k = rnd(&s) % n;
			c->free(h[k]);
			live -= sz[k];
			h[k] = h[--n];
			sz[k] = sz[n];
		}
		if (i % 64 == 0 || live == r->peak_live) {
			used = c->used();
			if (used > r->peak_used)
				r->peak_used = used;
		}
	}
	while (n)
		c->free(h[--n]);
}

/* Run the trace in a child, so glibc starts from a fresh heap. */
static void frag_row(const char *name, const struct contender *c)
{
	struct frag_result *r = bench_shared_page();
	pid_t pid = fork();
	int st;

	if (pid < 0)
		bench_die("fork", errno);
	if (pid == 0) {
		frag_trace(c, r);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		bench_die("fragmentation child", ECHILD);
	printf("%-42s %12.2f %12.2f %8.3f\n", name, (double)r->peak_used / (1 << 20),
	       (double)r->peak_live / (1 << 20),
	       (double)r->peak_used / (double)r->peak_live);
}

/* ---- tables --------------------------------------------------------------------- */

#define GLIBC_ROW	"glibc malloc (process-local)"
#define BOOST_ROW	"Boost.Interprocess managed_shm"
#define SP_ROW		"shmpool heap"
#define SP_ROW_G	"shmpool heap (same, vs glibc)"

static void table(const char *title, const uint32_t *sizes, int nprocs)
{
	static struct work w[3];
	struct bench_case cs[4];
	struct bench_table t = {
		.title = title,
		.op = nprocs == 1 ? "free a random window slot + allocate into it" :
			"free + allocate, by each of 2 processes at once (side 0 timed)",
		.unit = "ns",
		.cases = cs,
		.notes = {
			"ratio = ns of the row / ns of its peer in the same round: below 1 is faster",
			nprocs == 2 ? "glibc's two processes have private heaps: a reference, not a shared allocator" : NULL,
		},
	};
	int n = 0;

	w[0] = (struct work){ &glibc_c, sizes };
	w[1] = (struct work){ &shmpool_c, sizes };
	w[2] = (struct work){ &boost_c, sizes };
	cs[n++] = (struct bench_case){ .name = GLIBC_ROW, .nprocs = nprocs,
		.iters = OPS, .fn = window_loop, .arg = &w[0] };
	if (boost_seg)
		cs[n++] = (struct bench_case){ .name = BOOST_ROW, .nprocs = nprocs,
			.iters = OPS, .fn = window_loop, .arg = &w[2] };
	cs[n++] = (struct bench_case){ .name = SP_ROW, .nprocs = nprocs,
		.peer = boost_seg ? BOOST_ROW : GLIBC_ROW,
		.iters = OPS, .fn = window_loop, .arg = &w[1] };
	if (boost_seg)
		cs[n++] = (struct bench_case){ .name = SP_ROW_G, .nprocs = nprocs,
			.peer = GLIBC_ROW, .iters = OPS, .fn = window_loop, .arg = &w[1] };
	t.ncases = n;
	bench_table(&t);
}

int main(int argc, char **argv)
{
	struct shmpool *pool;
	int ret;

	bench_init(argc, argv, "alloc_bench [-r ROUNDS] [-s SCALE]");
	make_sizes();
	ret = shmpool_create_anon(POOL_BYTES, 0, &pool);
	if (!ret)
		ret = shmpool_heap_open(pool, 0, &heap);
	if (ret)
		bench_die("shmpool heap", -ret);
	boost_seg = alloc_boost_create(BOOST_SEG, POOL_BYTES);
	printf("shmpool backend: %s; Boost.Interprocess: %s\n",
	       shmpool_backend_name(shmpool_backend(pool)),
	       boost_seg ? "64 MiB segment in /dev/shm" : "unavailable (no /dev/shm?), rows left out");

	table("small blocks, 16-256 B, one process", small_sizes, 1);
	table("mixed blocks, 16 B-64 KiB, one process", mixed_sizes, 1);
	table("small blocks, 16-256 B, two processes sharing one pool/segment", small_sizes, 2);
	table("mixed blocks, 16 B-64 KiB, two processes sharing one pool/segment", mixed_sizes, 2);

	printf("\n== fragmentation: mixed 16 B-64 KiB trace, %d ops, live set 2-12 MiB ==\n",
	       FRAG_OPS);
	printf("%-42s %12s %12s %8s\n", "allocator", "peak used MiB", "peak live MiB", "ratio");
	frag_row(SP_ROW, &shmpool_c);
	if (boost_seg)
		frag_row(BOOST_ROW, &boost_c);
	frag_row(GLIBC_ROW " (arena+mmap)", &glibc_c);

	if (boost_seg)
		alloc_boost_destroy(boost_seg, BOOST_SEG);
	shmpool_heap_close(heap);
	shmpool_close(pool);
	return 0;
}
