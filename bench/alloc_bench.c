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
 *
 * Stronger peers (built with -DHAVE_PEERS: build/bench/alloc_bench-peers,
 * the host's make bench): mimalloc and jemalloc as process-private
 * references, through their own APIs (mi_malloc/mi_free, mallocx/dallocx),
 * and PMDK's libpmemobj (pmemobj_alloc/pmemobj_free into a volatile PMEMoid,
 * a pool file in /dev/shm) as the one peer that, like shmpool, lives in a
 * mapping and survives crashes. Debian's libmimalloc.so and libjemalloc.so
 * both export malloc/free too, and a static libpmemobj needs libndctl, which
 * Debian ships shared only: so the three are dlopen()ed RTLD_LOCAL, which
 * leaves glibc's malloc the binary's malloc, and the VM lanes (static
 * programs) leave their rows out. jemalloc's initial-exec TLS needs a bigger
 * static TLS surplus than glibc reserves for dlopen(): the bench re-executes
 * itself once with GLIBC_TUNABLES=glibc.rtld.optional_static_tls set.
 * pmemobj runs with PMEM_IS_PMEM_FORCE=1 and PMEM_NO_FLUSH=1: its undo/redo
 * logging and fences stay, cache-line flushes (power-loss durability, which
 * shmpool does not promise either) go; without them every persist on
 * /dev/shm is an msync(). A pmemobj pool is one process's: it is in the
 * one-process tables only, a fresh pool file per run (see po_loop()).
 *
 * Fragmentation after churn: 4 processes each do 200k window operations
 * (mixed sizes) on one fresh pool / segment, free everything and leave;
 * then free bytes, the largest free block and their ratio.
 *
 * Counted, not timed: run under callgrind (bench/alloc_count.sh does, and
 * make bench when valgrind is installed), the bench runs the one-process
 * tables' window loop instead, COUNT_OPS operations per contender after a
 * warm-up, and dumps callgrind's counts around each loop alone ("table|
 * contender|ops"); the script turns the dumps into instructions per
 * operation. Instructions repeat to the unit where seconds vary by 10-30%
 * here, so this is how a change's cost is checked against a small band.
 * A contender that does nothing ("the loop alone") measures the loop's own
 * instructions, which the script takes off every row.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#ifdef HAVE_PEERS
#include <dlfcn.h>
#include <libpmemobj.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif

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
uint64_t alloc_boost_free_memory(void *seg);

static struct shmpool_heap *heap;
static void *boost_seg;

struct contender {
	uint64_t (*alloc)(size_t n);	/* 0: out of memory */
	void (*free)(uint64_t h);
	uint64_t (*used)(void);		/* bytes taken, for fragmentation */
	void (*done)(void);		/* a process is done with it, or NULL */
	const char *name;		/* for error messages */
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

static const struct contender shmpool_c = { sp_alloc, sp_free, sp_used, sp_done, "shmpool" };
static const struct contender glibc_c = { gl_alloc, gl_free, gl_used, NULL, "glibc" };
static const struct contender boost_c = { bo_alloc, bo_free, bo_used, NULL, "Boost" };

#ifdef HAVE_PEERS
/* ---- mimalloc, jemalloc, libpmemobj (dlopen()ed, see the top) ---------------- */

#define TLS_TUNABLE	"glibc.rtld.optional_static_tls=65536"
#define PMEM_FILE	"/dev/shm/shmpool_alloc_bench.pmemobj"	/* .PID */
/*
 * 4x the others' 64 MiB: at 64 MiB (and 128 works) pmemobj runs out
 * (-ENOMEM) after about 1100 ops of the mixed trace, its runs of each size
 * class taking whole 256 KiB chunks.
 */
#define PMEM_POOL_BYTES	(256UL << 20)

static void *(*mi_malloc_p)(size_t);
static void (*mi_free_p)(void *);
static void *(*je_mallocx_p)(size_t, int);
static void (*je_dallocx_p)(void *, int);
static __typeof__(pmemobj_create) *po_create_p;
static __typeof__(pmemobj_alloc) *po_alloc_p;
static __typeof__(pmemobj_free) *po_free_p;
static PMEMobjpool *po_pool;
static uint64_t po_uuid;	/* the pool's uuid_lo, for rebuilding an oid */
static char peer_note[3][160];

static uint64_t mi_alloc(size_t n)
{
	return (uint64_t)(uintptr_t)mi_malloc_p(n);
}

static void mi_free(uint64_t p)
{
	mi_free_p((void *)(uintptr_t)p);
}

static uint64_t je_alloc(size_t n)
{
	return (uint64_t)(uintptr_t)je_mallocx_p(n, 0);
}

static void je_free(uint64_t p)
{
	je_dallocx_p((void *)(uintptr_t)p, 0);
}

/* a handle is the object's pool offset (never 0: the pool header is there) */
static uint64_t po_alloc(size_t n)
{
	PMEMoid oid;

	if (po_alloc_p(po_pool, &oid, n, 0, NULL, NULL))
		return 0;
	po_uuid = oid.pool_uuid_lo;
	return oid.off;
}

static void po_free(uint64_t off)
{
	PMEMoid oid = { po_uuid, off };

	po_free_p(&oid);
}

static const struct contender mimalloc_c = { mi_alloc, mi_free, NULL, NULL, "mimalloc" };
static const struct contender jemalloc_c = { je_alloc, je_free, NULL, NULL, "jemalloc" };
static const struct contender pmemobj_c = { po_alloc, po_free, NULL, NULL, "pmemobj" };

static void window_loop(void *arg, int side, uint64_t iters);

/*
 * A pmemobj run's child makes its own fresh pool (a pmemobj pool belongs to
 * one process: the parent never opens one), untimed, and warms it with a
 * run of the trace (a fresh pool's first allocations of each size set up
 * its runs). The harness calibrates on wall time, which that setup swamps
 * at pmemobj's speed: so the child times at least PO_MIN_OPS operations
 * itself and reports that time scaled to the @iters asked.
 */
#define PO_MIN_OPS	20000

static void po_loop(void *arg, int side, uint64_t iters)
{
	uint64_t n = iters < PO_MIN_OPS ? PO_MIN_OPS : iters, t0, ns;
	char path[64];

	snprintf(path, sizeof(path), PMEM_FILE ".%d", (int)getpid());
	unlink(path);
	po_pool = po_create_p(path, NULL, PMEM_POOL_BYTES, 0600);
	if (!po_pool)
		bench_die("pmemobj_create", errno);
	window_loop(arg, side + 2, NSIZES);
	t0 = bench_now_ns();
	window_loop(arg, side, n);
	ns = bench_now_ns() - t0;
	unlink(path);
	bench_set_result_ns(ns * iters / n);
}

static void *peer_open(int i, const char *lib, const char *const *sym, void **fn, int nsym)
{
	void *dl = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	int k;

	if (!dl) {
		snprintf(peer_note[i], sizeof(peer_note[i]), "%s: rows left out (%s)",
			 lib, dlerror());
		return NULL;
	}
	for (k = 0; k < nsym; k++)
		if (!(fn[k] = dlsym(dl, sym[k]))) {
			snprintf(peer_note[i], sizeof(peer_note[i]),
				 "%s: no %s, rows left out", lib, sym[k]);
			return NULL;
		}
	snprintf(peer_note[i], sizeof(peer_note[i]), "%s", lib);
	return dl;
}

/* Re-execute with room for jemalloc's TLS (once), then load the three peers. */
static void peers_load(char **argv)
{
	static const char *const mi_sym[] = { "mi_malloc", "mi_free" };
	static const char *const je_sym[] = { "mallocx", "dallocx" };
	static const char *const po_sym[] = { "pmemobj_create", "pmemobj_alloc",
					      "pmemobj_free" };
	void *fn[3];

	if (!getenv("SHMPOOL_ALLOC_BENCH_TLS")) {
		setenv("SHMPOOL_ALLOC_BENCH_TLS", "1", 1);
		setenv("GLIBC_TUNABLES", TLS_TUNABLE, 1);
		execv("/proc/self/exe", argv);
		/* no re-exec: jemalloc's dlopen() says why below */
	}
	if (peer_open(0, "libmimalloc.so.2", mi_sym, fn, 2)) {
		mi_malloc_p = (void *(*)(size_t))fn[0];
		mi_free_p = (void (*)(void *))fn[1];
	}
	if (peer_open(1, "libjemalloc.so.2", je_sym, fn, 2)) {
		je_mallocx_p = (void *(*)(size_t, int))fn[0];
		je_dallocx_p = (void (*)(void *, int))fn[1];
	}
	/* read by libpmem when it loads */
	setenv("PMEM_IS_PMEM_FORCE", "1", 1);
	setenv("PMEM_NO_FLUSH", "1", 1);
	if (peer_open(2, "libpmemobj.so.1", po_sym, fn, 3)) {
		po_create_p = (__typeof__(pmemobj_create) *)fn[0];
		po_alloc_p = (__typeof__(pmemobj_alloc) *)fn[1];
		po_free_p = (__typeof__(pmemobj_free) *)fn[2];
	}
}

#endif /* HAVE_PEERS */

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
			bench_die(w->c->name, ENOMEM);
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
#define MI_ROW		"mimalloc (process-local)"
#define JE_ROW		"jemalloc (process-local)"
#define PO_ROW		"libpmemobj (one process, no flush)"

static void table(const char *title, const uint32_t *sizes, int nprocs)
{
	static struct work w[6];
	struct bench_case cs[12];
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
	int n = 0, k = 1;

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
#ifdef HAVE_PEERS
	{
		static const char *const peer[3] = { MI_ROW, JE_ROW, PO_ROW };
		static const char *const same[3] = { "shmpool heap (same, vs mimalloc)",
			"shmpool heap (same, vs jemalloc)", "shmpool heap (same, vs pmemobj)" };
		const struct contender *pc[3] = { &mimalloc_c, &jemalloc_c, &pmemobj_c };
		bool have[3] = { mi_malloc_p, je_mallocx_p, po_create_p && nprocs == 1 };
		int i;

		for (i = 0; i < 3; i++) {
			if (!have[i])
				continue;
			w[3 + i] = (struct work){ pc[i], sizes };
			cs[n++] = (struct bench_case){ .name = peer[i], .nprocs = nprocs,
				.iters = OPS, .fn = i == 2 ? po_loop : window_loop,
				.arg = &w[3 + i] };
			cs[n++] = (struct bench_case){ .name = same[i], .nprocs = nprocs,
				.peer = peer[i], .iters = OPS, .fn = window_loop, .arg = &w[1] };
		}
		t.notes[k + (nprocs == 2)] = nprocs == 2 ?
			"mimalloc's and jemalloc's two processes have private heaps too; "
			"a libpmemobj pool is one process's: not in this table" :
			"libpmemobj: pmemobj_alloc/pmemobj_free, volatile PMEMoid, 256 MiB pool, "
			"PMEM_IS_PMEM_FORCE=1 PMEM_NO_FLUSH=1 (logging and fences, no cache-line flushes)";
	}
#else
	t.notes[k + (nprocs == 2)] = "mimalloc, jemalloc, libpmemobj: in alloc_bench-peers "
		"(host: dynamic, dlopen()ed); left out of this static build";
#endif
	t.ncases = n;
	bench_table(&t);
}

/* ---- counted under callgrind ---------------------------------------------------- */

#ifdef HAVE_CALLGRIND
#define COUNT_OPS	200000
#define COUNT_WARM	50000

/* the loop alone: a nonzero "block" per slot, nothing freed */
static uint64_t nop_alloc(size_t n)
{
	return n;
}

static void nop_free(uint64_t p)
{
	(void)p;
}

static const struct contender nop_c = { nop_alloc, nop_free, NULL, NULL, "loop" };

static void count_case(const char *table, const char *name,
		       const struct contender *c, const uint32_t *sizes)
{
	struct work w = { c, sizes };
	char tag[192];

	window_loop(&w, 0, COUNT_WARM);	/* slabs made, caches filled, pages touched */
	snprintf(tag, sizeof(tag), "%s|%s|%d", table, name, COUNT_OPS);
	CALLGRIND_ZERO_STATS;
	CALLGRIND_TOGGLE_COLLECT;
	window_loop(&w, 1, COUNT_OPS);
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT(tag);
}

static void count_table(const char *table, const uint32_t *sizes)
{
	count_case(table, "the loop alone", &nop_c, sizes);
	count_case(table, GLIBC_ROW, &glibc_c, sizes);
	count_case(table, SP_ROW, &shmpool_c, sizes);
	if (boost_seg)
		count_case(table, BOOST_ROW, &boost_c, sizes);
#ifdef HAVE_PEERS
	if (mi_malloc_p)
		count_case(table, MI_ROW, &mimalloc_c, sizes);
	if (je_mallocx_p)
		count_case(table, JE_ROW, &jemalloc_c, sizes);
#endif
}
#endif /* HAVE_CALLGRIND */

/* ---- fragmentation after churn ------------------------------------------------- */

#define CHURN_PROCS	4
#define CHURN_OPS	200000

/* one process of the churn: CHURN_OPS window operations, then all freed */
static void churn_side(const struct contender *c, int side)
{
	struct work w = { c, mixed_sizes };

	window_loop(&w, 100 + side, CHURN_OPS);
}

/*
 * The largest size @c allocates now, by binary search below @hi (each
 * probe freed at once); @grew, if set, says whether a probe took more
 * memory from the system (then it does not count; after its free, @grew
 * is called with @rebase set to take what stayed as the new reference).
 */
static uint64_t largest_alloc(const struct contender *c, uint64_t hi,
			      bool (*grew)(bool rebase))
{
	uint64_t lo = 0, mid, h;

	while (lo < hi) {
		mid = lo + (hi - lo + 1) / 2;
		h = c->alloc(mid);
		if (h && grew && grew(false)) {
			c->free(h);
			grew(true);
			h = 0;
		}
		if (h) {
			c->free(h);
			lo = mid;
		} else {
			hi = mid - 1;
		}
	}
	return lo;
}

static void churn_print(const char *name, uint64_t free_b, double reported,
			uint64_t largest)
{
	char rep[32] = "-";

	if (reported >= 0)
		snprintf(rep, sizeof(rep), "%.2f", reported / (1 << 20));
	printf("%-42s %10.2f %10s %10.2f %8.3f\n", name, (double)free_b / (1 << 20),
	       rep, (double)largest / (1 << 20),
	       free_b ? (double)largest / (double)free_b : 0.0);
}

/* CHURN_PROCS forked processes on the contender set up before the fork */
static void churn_fork(const struct contender *c)
{
	pid_t pid[CHURN_PROCS];
	int i, st;

	for (i = 0; i < CHURN_PROCS; i++) {
		pid[i] = fork();
		if (pid[i] < 0)
			bench_die("fork", errno);
		if (pid[i] == 0) {
			churn_side(c, i);
			_exit(0);
		}
	}
	for (i = 0; i < CHURN_PROCS; i++)
		if (waitpid(pid[i], &st, 0) != pid[i] || !WIFEXITED(st) || WEXITSTATUS(st))
			bench_die("churn child", ECHILD);
}

static size_t gl_arena0;

static bool gl_grew(bool rebase)
{
	struct mallinfo2 mi = mallinfo2();

	if (rebase)
		gl_arena0 = mi.arena + mi.hblkhd;
	return mi.arena + mi.hblkhd > gl_arena0;
}

/* glibc: one fresh process, the 4 sides' windows one after the other, all freed */
static void churn_glibc(void)
{
	uint64_t *r = bench_shared_page();
	struct mallinfo2 mi;
	pid_t pid = fork();
	int i, st;

	if (pid < 0)
		bench_die("fork", errno);
	if (pid == 0) {
		/* fixed thresholds: a freed probe's growth is trimmed again */
		mallopt(M_MMAP_THRESHOLD, 128 << 10);
		mallopt(M_TRIM_THRESHOLD, 128 << 10);
		mallopt(M_TOP_PAD, 0);
		for (i = 0; i < CHURN_PROCS; i++)
			churn_side(&glibc_c, i);
		mi = mallinfo2();
		gl_arena0 = mi.arena + mi.hblkhd;
		r[0] = mi.fordblks;
		r[1] = largest_alloc(&glibc_c, POOL_BYTES, gl_grew);
		_exit(0);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		bench_die("churn child", ECHILD);
	churn_print(GLIBC_ROW, r[0], -1, r[1]);
}

static void churn_table(void)
{
	struct shmpool_heap_stats st;
	struct shmpool_heap *keep = heap;
	struct shmpool *pool;
	void *keep_seg = boost_seg;
	int ret;

	printf("\n== fragmentation after churn: %d processes x %d window ops "
	       "(mixed 16 B-64 KiB, %d live each), all freed ==\n",
	       CHURN_PROCS, CHURN_OPS, WINDOW);
	printf("%-42s %10s %10s %10s %8s\n", "allocator", "free MiB", "reported",
	       "allocates", "ratio");
	ret = shmpool_create_anon(POOL_BYTES, 0, &pool);
	if (!ret)
		ret = shmpool_heap_open(pool, 0, &heap);
	if (ret)
		bench_die("shmpool heap", -ret);
	churn_fork(&shmpool_c);
	if (shmpool_heap_stats(heap, &st))
		bench_die("shmpool_heap_stats", EINVAL);
	churn_print(SP_ROW, st.free_bytes, (double)st.largest_free,
		    largest_alloc(&shmpool_c, st.free_bytes, NULL));
	shmpool_heap_close(heap);
	shmpool_close(pool);
	heap = keep;

	boost_seg = alloc_boost_create(BOOST_SEG "_churn", POOL_BYTES);
	if (boost_seg) {
		churn_fork(&boost_c);
		churn_print(BOOST_ROW, alloc_boost_free_memory(boost_seg), -1,
			    largest_alloc(&boost_c, alloc_boost_free_memory(boost_seg), NULL));
		alloc_boost_destroy(boost_seg, BOOST_SEG "_churn");
	}
	boost_seg = keep_seg;
	churn_glibc();
	printf("pools/segments of %lu MiB; free = shmpool_heap_stats() free_bytes (free "
	       "blocks and free slab objects), Boost get_free_memory(), glibc mallinfo2() "
	       "fordblks\n", POOL_BYTES >> 20);
	printf("reported = shmpool_heap_stats() largest_free; allocates = the largest "
	       "size one allocation gets now (binary search, each probe freed); ratio = "
	       "allocates / free\n");
	printf("glibc: one process runs the 4 sides' churns in turn (one arena, mmap and trim "
	       "thresholds fixed at 128 KiB, no top pad); a probe that grows arena+mmapped "
	       "bytes (mallinfo2) counts as failed\n");
}

int main(int argc, char **argv)
{
	struct shmpool *pool;
	int ret;

#ifdef HAVE_PEERS
	peers_load(argv);
#endif
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
#ifdef HAVE_PEERS
	printf("peers: %s; %s; %s\n", peer_note[0], peer_note[1], peer_note[2]);
#endif

#ifdef HAVE_CALLGRIND
	if (RUNNING_ON_VALGRIND) {
		count_table("small blocks, 16-256 B, one process", small_sizes);
		count_table("mixed blocks, 16 B-64 KiB, one process", mixed_sizes);
		goto out;
	}
#endif
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

	churn_table();
#ifdef HAVE_CALLGRIND
out:
#endif
	if (boost_seg)
		alloc_boost_destroy(boost_seg, BOOST_SEG);
	shmpool_heap_close(heap);
	shmpool_close(pool);
	return 0;
}
