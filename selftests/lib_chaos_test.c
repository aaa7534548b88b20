// SPDX-License-Identifier: MIT
/*
 * Chaos: worker processes hammer one named pool's structures, and in every
 * round one of them is SIGKILLed at a random instant. Then every survivor
 * must stop within a bound (none may wait on the dead), the dead one's heap
 * memory must come back, and each structure must be whole:
 *
 * - mutex: a pair of counters changed under a shmpool_mutex, with a window
 *   between the two writes; the next locker after a death gets -EOWNERDEAD
 *   and repairs the pair;
 * - heap: random allocations and frees (general blocks and small classes,
 *   thread caches on), each filled with a pattern checked before its free;
 * - config: one writer publishes blobs whose every word is the version's
 *   tag, readers check each blob they read is whole;
 * - cache: puts and gets of keys whose value is derived from the key.
 *
 * After each round: all survivors exited by themselves within the bound;
 * shmpool_heap_reclaim() returned the dead worker's blocks and objects, so
 * the heap's blocks in use equal the baseline taken before the first round
 * (the cache emptied); the heap
 * checker (SHMPOOL_CHECK_QUIESCENT) is clean; the mutex is free or taken
 * over, and its pair is equal after repair; the config reads whole.
 *
 * SHMPOOL_CHAOS_ROUNDS (default 10; 3 in the debug lane, where a round's
 * forks and deaths cost several times more), SHMPOOL_CHAOS_SEED (default: the
 * time) and SHMPOOL_CHAOS_BACKEND (device or memfd: only that variant) are
 * the knobs; `make chaos` runs many rounds on the device in one lane. The test
 * prints, per structure phase, how many kills landed there.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_cache.h>
#include <shmpool_ring.h>
#include <shmpool_state.h>
#include <shmpool_sync.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"

#define POOL_BYTES	(8u << 20)
#define CFG_WORDS	64
#define NR_WORKERS	14
#define RING_COUNT	256
#define MAX_SEQ		(1u << 20)	/* elements one producer sends per round at most */
#define NR_MPMC_PROD	2
#define HEAP_HELD	48		/* blocks a heap worker holds at most */
#define STOP_BOUND_MS	20000		/* a survivor must have stopped by then */

enum role {
	R_MUTEX, R_HEAP, R_CFG_WRITER, R_CFG_READER, R_CACHE,
	R_SPSC_PROD, R_SPSC_CONS, R_MPMC_PROD, R_MPMC_CONS, NR_ROLES
};

static const char *const role_name[NR_ROLES] = {
	"mutex", "heap", "config writer", "config reader", "cache",
	"SPSC producer", "SPSC consumer", "MPMC producer", "MPMC consumer",
};

/* What a worker is doing: the kill statistics count these. */
enum phase {
	P_START,		/* opening its handles */
	P_IDLE,			/* between operations */
	P_MUTEX_WAIT,		/* in shmpool_mutex_lock() */
	P_MUTEX_HELD,		/* between the pair's two writes */
	P_HEAP_ALLOC,
	P_HEAP_FREE,
	P_CFG_WRITE,		/* between write_begin and commit */
	P_CFG_READ,
	P_CACHE_PUT,
	P_CACHE_GET,
	P_ENQUEUE,		/* in a ring's enqueue */
	P_DEQUEUE,		/* in a ring's dequeue */
	P_DRAIN,		/* a consumer emptying the ring after the stop */
	NR_PHASES
};

static const char *const phase_name[NR_PHASES] = {
	"start-up", "between operations", "mutex: waiting", "mutex: holding, pair torn",
	"heap: in alloc", "heap: in free", "config: writing", "config: reading",
	"cache: put", "cache: get", "ring: enqueue", "ring: dequeue", "ring: draining",
};

/* The lock-protected pair, a named object of the heap. */
struct pair {
	struct shmpool_mutex m;
	uint64_t a, b;
};

/* Outside the pool: shared by the test and its workers, survives them. */
struct chaos_ctl {
	_Atomic int stop;
	_Atomic int phase[NR_WORKERS];
	_Atomic uint64_t ops[NR_WORKERS];
	_Atomic uint64_t ownerdead;	/* -EOWNERDEAD seen by lockers */
	_Atomic uint64_t writer_takeovers;
	char err[NR_WORKERS][160];	/* why a worker failed */
	_Atomic uint32_t round;
	_Atomic int gone[NR_WORKERS];	/* exited, or killed by the test */
	_Atomic uint64_t published[NR_WORKERS];	/* enqueues that returned */
	_Atomic uint64_t received;	/* SPSC: elements the consumer took */
	_Atomic uint64_t redelivered;	/* MPMC: seen twice after a consumer died */
	/* MPMC: bit seq of producer k set once a consumer got it */
	_Atomic uint64_t seen[NR_MPMC_PROD][MAX_SEQ / 64];
};

static struct chaos_ctl *ctl;
static char pool_name[64];
static unsigned int backend;

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void set_phase(int w, enum phase p)
{
	atomic_store_explicit(&ctl->phase[w], p, memory_order_relaxed);
}

#define WFAIL(w, ...) do { \
	snprintf(ctl->err[w], sizeof(ctl->err[w]), __VA_ARGS__); \
	return 1; \
} while (0)

static int mutex_op(int w, struct shmpool *p, struct pair *pr)
{
	int ret;

	set_phase(w, P_MUTEX_WAIT);
	ret = shmpool_mutex_lock(p, &pr->m);
	if (ret == -EOWNERDEAD) {
		atomic_fetch_add(&ctl->ownerdead, 1);
		pr->b = pr->a;		/* the repair: the pair was torn */
	} else if (ret) {
		WFAIL(w, "mutex_lock: %d", ret);
	}
	set_phase(w, P_MUTEX_HELD);
	if (pr->a != pr->b)
		WFAIL(w, "pair torn under the lock: %" PRIu64 " != %" PRIu64, pr->a, pr->b);
	pr->a++;
	for (volatile int i = 0; i < 200; i++)
		;
	pr->b = pr->a;
	set_phase(w, P_IDLE);
	ret = shmpool_mutex_unlock(p, &pr->m);
	if (ret)
		WFAIL(w, "mutex_unlock: %d", ret);
	return 0;
}

/* the pattern of a heap block: its offset, so a misplaced block shows */
static void fill(uint64_t *v, size_t words, uint64_t off)
{
	for (size_t i = 0; i < words; i++)
		v[i] = off ^ i;
}

static int heap_op(int w, struct shmpool_heap *h, uint64_t *held, size_t *sz,
		   int *n, uint64_t *rnd)
{
	uint64_t r = xorshift(rnd), *v;
	size_t size;
	int ret, i;

	if (*n == HEAP_HELD || (*n && (r & 1))) {
		i = (int)((r >> 8) % (uint64_t)*n);
		v = shmpool_heap_ptr(h, held[i], sz[i]);
		for (size_t k = 0; k < sz[i] / 8; k++)
			if (v[k] != (held[i] ^ k))
				WFAIL(w, "block %#" PRIx64 " word %zu overwritten", held[i], k);
		set_phase(w, P_HEAP_FREE);
		ret = shmpool_free(h, held[i]);
		set_phase(w, P_IDLE);
		if (ret)
			WFAIL(w, "free(%#" PRIx64 "): %d", held[i], ret);
		held[i] = held[--*n];
		sz[i] = sz[*n];
		return 0;
	}
	size = (r >> 16) % 8 ? 8 + (r >> 24) % 512 : 4096 + (r >> 24) % 65536;
	size &= ~(size_t)7;
	set_phase(w, P_HEAP_ALLOC);
	ret = shmpool_alloc(h, size, &held[*n]);
	set_phase(w, P_IDLE);
	if (ret == -ENOMEM)
		return 0;
	if (ret)
		WFAIL(w, "alloc(%zu): %d", size, ret);
	sz[*n] = size;
	fill(shmpool_heap_ptr(h, held[*n], size), size / 8, held[*n]);
	++*n;
	return 0;
}

static int cfg_write(int w, struct shmpool_config *c, uint64_t *rnd)
{
	uint64_t *buf, tag = xorshift(rnd);
	int ret;

	set_phase(w, P_CFG_WRITE);
	ret = shmpool_config_write_begin(c, (void **)&buf);
	if (ret == -EBUSY) {
		set_phase(w, P_IDLE);
		return 0;
	}
	if (ret < 0)
		WFAIL(w, "write_begin: %d", ret);
	if (ret == 1)
		atomic_fetch_add(&ctl->writer_takeovers, 1);
	for (int i = 0; i < CFG_WORDS; i++)
		buf[i] = tag;
	ret = shmpool_config_write_commit(c, CFG_WORDS * 8, NULL);
	set_phase(w, P_IDLE);
	if (ret)
		WFAIL(w, "write_commit: %d", ret);
	return 0;
}

static int cfg_check(struct shmpool_config *c, char *why, size_t len)
{
	uint64_t buf[CFG_WORDS], ver;
	int ret, tries = 0;

	/* -EAGAIN: writers outran the read every time; the API says call again */
	do
		ret = shmpool_config_read(c, buf, sizeof(buf), &ver);
	while (ret == -EAGAIN && ++tries < 100);

	if (ret < 0) {
		snprintf(why, len, "config_read: %d", ret);
		return 1;
	}
	for (int i = 1; ret == (int)sizeof(buf) && i < CFG_WORDS; i++)
		if (buf[i] != buf[0]) {
			snprintf(why, len, "torn blob at version %" PRIu64 ", word %d", ver, i);
			return 1;
		}
	return 0;
}

static int cache_op(int w, struct shmpool_cache *c, uint64_t *rnd)
{
	uint64_t r = xorshift(rnd), key = r % 512, val[4], want;
	int ret;

	want = key * 0x9e3779b97f4a7c15ULL;
	if (r & 0x100) {
		for (int i = 0; i < 4; i++)
			val[i] = want + (uint64_t)i;
		set_phase(w, P_CACHE_PUT);
		ret = shmpool_cache_put(c, &key, sizeof(key), val, sizeof(val), 0);
		set_phase(w, P_IDLE);
		if (ret < 0 && ret != -ENOMEM)
			WFAIL(w, "cache_put: %d", ret);
		return 0;
	}
	set_phase(w, P_CACHE_GET);
	ret = shmpool_cache_get(c, &key, sizeof(key), val, sizeof(val));
	set_phase(w, P_IDLE);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		WFAIL(w, "cache_get: %d", ret);
	for (int i = 0; i < 4; i++)
		if (val[i] != want + (uint64_t)i)
			WFAIL(w, "cache value of key %" PRIu64 " wrong in word %d", key, i);
	return 0;
}

static int ring_name(char *buf, size_t len, int mpmc)
{
	return snprintf(buf, len, "chaos.%s.%u", mpmc ? "mpmc" : "spsc",
			atomic_load(&ctl->round));
}

/* the producer index among the MPMC producers, from the worker number */
static int mpmc_prod_index(int w);

static int ring_produce(int w, struct shmpool_ring *r, int mpmc, uint64_t *seq)
{
	struct timespec dl;
	uint64_t e[4];
	int ret, k, n;

	if (*seq >= MAX_SEQ) {
		usleep(1000);
		return 0;
	}
	n = (int)(MAX_SEQ - *seq < 4 ? MAX_SEQ - *seq : 4);
	k = mpmc ? mpmc_prod_index(w) : 0;
	for (int i = 0; i < n; i++)
		e[i] = (uint64_t)k << 40 | (*seq + (uint64_t)i);
	dl = after_ms(50);
	set_phase(w, P_ENQUEUE);
	ret = shmpool_ring_enqueue_wait(r, e, (uint32_t)n, 0, &dl);
	set_phase(w, P_IDLE);
	if (ret == -ETIMEDOUT)
		return 0;
	if (ret == -ECONNRESET)
		return 2;	/* the consumer side died: nothing more to do */
	if (ret < 0)
		WFAIL(w, "enqueue: %d", ret);
	*seq += (uint64_t)ret;
	atomic_store(&ctl->published[w], *seq);
	return 0;
}

/* are all producers of this ring done (exited or killed)? */
static int producers_gone(int mpmc);

static int ring_consume(int w, struct shmpool_ring *r, int mpmc, uint64_t *next)
{
	struct timespec dl = after_ms(50);
	int stopping = atomic_load(&ctl->stop), ret, i;
	uint64_t e[4], k, seq, bit;

	set_phase(w, stopping ? P_DRAIN : P_DEQUEUE);
	ret = shmpool_ring_dequeue_wait(r, e, 4, 0, &dl);
	set_phase(w, P_IDLE);
	if (ret == -ECONNRESET)
		return 2;	/* the producer side died and the ring is empty */
	if (ret == -ETIMEDOUT)
		return stopping && producers_gone(mpmc) ? 2 : 0;
	if (ret < 0)
		WFAIL(w, "dequeue: %d", ret);
	for (i = 0; i < ret; i++) {
		k = e[i] >> 40;
		seq = e[i] & ((1ULL << 40) - 1);
		if (!mpmc) {
			if (k || seq != *next)
				WFAIL(w, "SPSC element %#" PRIx64 ": expected seq %" PRIu64,
				      e[i], *next);
			++*next;
			atomic_store(&ctl->received, *next);
			continue;
		}
		if (k >= NR_MPMC_PROD || seq >= MAX_SEQ)
			WFAIL(w, "MPMC element %#" PRIx64 " was never sent", e[i]);
		bit = 1ULL << (seq % 64);
		if (atomic_fetch_or(&ctl->seen[k][seq / 64], bit) & bit)
			atomic_fetch_add(&ctl->redelivered, 1);
	}
	return 0;
}

static int worker(int w, enum role role, uint64_t seed)
{
	struct shmpool_config *cfg = NULL;
	struct shmpool_cache *cache = NULL;
	struct shmpool_heap *h = NULL;
	struct shmpool_ring *ring = NULL;
	struct shmpool *p = NULL;
	uint64_t held[HEAP_HELD], rnd = seed | 1, seq = 0;
	char rname[64];
	size_t sz[HEAP_HELD];
	struct shmpool_obj obj;
	struct pair *pr = NULL;
	int ret, n = 0, rc = 0;
	char why[160];

	set_phase(w, P_START);
	ret = shmpool_open(pool_name, backend, &p);
	if (ret)
		WFAIL(w, "open: %d", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (ret)
		WFAIL(w, "heap_open: %d", ret);
	ret = shmpool_obj_find(h, "chaos.pair", &obj);
	if (ret)
		WFAIL(w, "obj_find: %d", ret);
	pr = shmpool_heap_ptr(h, obj.off, sizeof(*pr));
	ret = shmpool_config_open(h, "chaos.cfg", 0, 0, &cfg);
	if (!ret)
		ret = shmpool_cache_open(h, "chaos.cache", 0, 0, &cache);
	if (ret)
		WFAIL(w, "config/cache open: %d", ret);
	if (role >= R_SPSC_PROD) {
		int mpmc = role >= R_MPMC_PROD;

		ring_name(rname, sizeof(rname), mpmc);
		ret = shmpool_ring_open(h, rname, mpmc ? SHMPOOL_RING_MPMC : SHMPOOL_RING_SPSC,
					8, &ring);
		if (ret)
			WFAIL(w, "ring_open(%s): %d", rname, ret);
	}
	set_phase(w, P_IDLE);

	while (!rc && (!atomic_load_explicit(&ctl->stop, memory_order_relaxed) ||
		       role == R_SPSC_CONS || role == R_MPMC_CONS)) {
		switch (role) {
		case R_MUTEX:
			rc = mutex_op(w, p, pr);
			break;
		case R_HEAP:
			rc = heap_op(w, h, held, sz, &n, &rnd);
			break;
		case R_CFG_WRITER:
			rc = cfg_write(w, cfg, &rnd);
			break;
		case R_CFG_READER:
			set_phase(w, P_CFG_READ);
			rc = cfg_check(cfg, why, sizeof(why));
			set_phase(w, P_IDLE);
			if (rc)
				WFAIL(w, "%s", why);
			break;
		case R_CACHE:
			rc = cache_op(w, cache, &rnd);
			break;
		case R_SPSC_PROD:
		case R_MPMC_PROD:
			rc = ring_produce(w, ring, role == R_MPMC_PROD, &seq);
			break;
		case R_SPSC_CONS:
		case R_MPMC_CONS:
			rc = ring_consume(w, ring, role == R_MPMC_CONS, &seq);
			break;
		default:
			break;
		}
		atomic_fetch_add_explicit(&ctl->ops[w], 1, memory_order_relaxed);
	}
	if (rc == 2)
		rc = 0;		/* a ring whose other side is gone: done */
	/* a clean end: give back what this worker holds */
	while (!rc && n)
		rc = shmpool_free(h, held[--n]) ? 1 : 0;
	shmpool_ring_close(ring);
	shmpool_cache_close(cache);
	shmpool_config_close(cfg);
	shmpool_heap_close(h);
	shmpool_close(p);
	atomic_store(&ctl->gone[w], 1);
	return rc;
}

static const enum role roles[NR_WORKERS] = {
	R_MUTEX, R_MUTEX, R_HEAP, R_HEAP, R_CFG_WRITER, R_CFG_READER, R_CACHE,
	R_SPSC_PROD, R_SPSC_CONS, R_MPMC_PROD, R_MPMC_PROD, R_MPMC_CONS, R_MPMC_CONS,
	R_CACHE,
};

static int mpmc_prod_index(int w)
{
	int k = 0;

	for (int i = 0; i < w; i++)
		k += roles[i] == R_MPMC_PROD;
	return k;
}

/* the first element of MPMC producer @k below @pub no consumer got, or @pub */
static uint64_t first_unseen(int k, uint64_t pub)
{
	for (uint64_t q = 0; q < pub; q++)
		if (!(atomic_load(&ctl->seen[k][q / 64]) & (1ULL << (q % 64))))
			return q;
	return pub;
}

static int producers_gone(int mpmc)
{
	enum role want = mpmc ? R_MPMC_PROD : R_SPSC_PROD;

	for (int w = 0; w < NR_WORKERS; w++)
		if (roles[w] == want && !atomic_load(&ctl->gone[w]))
			return 0;
	return 1;
}

FIXTURE(chaos) {
	struct shmpool *p;
	struct shmpool_heap *h;
	struct pair *pr;
	struct shmpool_config *cfg;
	struct shmpool_cache *cache;
};

FIXTURE_VARIANT(chaos) {
	unsigned int backend;
};

FIXTURE_VARIANT_ADD(chaos, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(chaos, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(chaos)
{
	struct shmpool_obj obj;
	uint64_t zero[CFG_WORDS] = { 0 };
	const char *only;

#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "workers must be processes to be SIGKILLed (threads build)");
#endif
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_ok())
		SKIP(return, "no %s", DEV_PATH);
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	only = getenv("SHMPOOL_CHAOS_BACKEND");
	if (only && *only && strcmp(only, variant->backend == SHMPOOL_BACKEND_DEVICE ?
				    "device" : "memfd"))
		SKIP(return, "SHMPOOL_CHAOS_BACKEND=%s", only);
	backend = variant->backend;
	ctl = mmap(NULL, sizeof(*ctl), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ctl);
	snprintf(pool_name, sizeof(pool_name), "chaos.%d", getpid());
	shmpool_unlink(pool_name, backend);
	ASSERT_EQ(0, shmpool_create(pool_name, POOL_BYTES, 0600,
				    backend | SHMPOOL_EXCL, &self->p));
	ASSERT_EQ(0, shmpool_heap_open(self->p, SHMPOOL_HEAP_NOCACHE, &self->h));
	ASSERT_LE(0, shmpool_obj_create(self->h, "chaos.pair", sizeof(struct pair),
					0, &obj));
	self->pr = shmpool_heap_ptr(self->h, obj.off, sizeof(*self->pr));
	ASSERT_EQ(0, shmpool_mutex_init(self->p, &self->pr->m));
	ASSERT_EQ(0, shmpool_config_open(self->h, "chaos.cfg", CFG_WORDS * 8,
					 SHMPOOL_CONFIG_CREATE, &self->cfg));
	ASSERT_EQ(0, shmpool_config_publish(self->cfg, zero, sizeof(zero), NULL));
	ASSERT_EQ(0, shmpool_cache_open(self->h, "chaos.cache", 256,
					SHMPOOL_CACHE_CREATE, &self->cache));
}

FIXTURE_TEARDOWN(chaos)
{
	if (!self->p)
		return;
	shmpool_cache_close(self->cache);
	shmpool_config_close(self->cfg);
	shmpool_heap_close(self->h);
	shmpool_close(self->p);
	shmpool_unlink(pool_name, backend);
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);

	return s && *s ? strtol(s, NULL, 0) : def;
}

/*
 * Blocks and small objects in use after emptying the cache (its entries are
 * heap blocks too) and reclaiming, or UINT64_MAX. Objects still in a thread cache count as
 * in use: after every handle closed and reclaim ran there must be none.
 */
static uint64_t heap_used(struct shmpool_heap *h, struct shmpool_cache *c)
{
	struct shmpool_heap_stats st;
	uint64_t key, cached = 0;

	for (key = 0; key < 512; key++)
		shmpool_cache_delete(c, &key, sizeof(key));
	/*
	 * What the dead left: cached objects, its blocks (orphans now, as are
	 * those of the clean workers, but they freed theirs), objects it was
	 * moving. The cache is empty, so no orphan is in use.
	 */
	if (shmpool_heap_reclaim(h, SHMPOOL_RECLAIM_HELD | SHMPOOL_RECLAIM_STRANDED) < 0)
		return UINT64_MAX;
	if (shmpool_heap_stats(h, &st))
		return UINT64_MAX;
	for (int i = 0; i < SHMPOOL_HEAP_NR_CLASSES; i++)
		cached += st.classes[i].cached;
	return st.alloc_blocks + cached;
}

TEST_F_TIMEOUT(chaos, kill_one_worker_per_round, 7200)
{
	long rounds = env_long("SHMPOOL_CHAOS_ROUNDS", lane_debug_quarter(10));
	uint64_t seed = (uint64_t)env_long("SHMPOOL_CHAOS_SEED", (long)time(NULL));
	uint64_t rnd = seed | 1, kills[NR_PHASES] = { 0 }, role_kills[NR_ROLES] = { 0 };
	uint64_t base, used, t0, takeovers = 0, writer_takeovers = 0, redelivered = 0, lost;
	char rname[64];
	pid_t pid[NR_WORKERS];
	char msg[256];
	long r;
	int w, victim, st, left, ret;

	if (!self->p || !ctl)
		SKIP(return, "set-up skipped");
	TH_LOG("seed %" PRIu64 ", %ld rounds, %s backend", seed, rounds,
	       variant->backend == SHMPOOL_BACKEND_DEVICE ? "device" : "memfd");
	base = heap_used(self->h, self->cache);
	ASSERT_NE(UINT64_MAX, base);
	for (r = 0; r < rounds; r++) {
		takeovers += atomic_exchange(&ctl->ownerdead, 0);
		writer_takeovers += atomic_exchange(&ctl->writer_takeovers, 0);
		redelivered += atomic_load(&ctl->redelivered);
		memset(ctl, 0, sizeof(*ctl));
		atomic_store(&ctl->round, (uint32_t)r);
		for (int mpmc = 0; mpmc < 2; mpmc++) {
			struct shmpool_ring *ring;

			ring_name(rname, sizeof(rname), mpmc);
			ASSERT_LE(0, shmpool_ring_create(self->h, rname,
				  mpmc ? SHMPOOL_RING_MPMC : SHMPOOL_RING_SPSC,
				  RING_COUNT, 8, 0, &ring));
			shmpool_ring_close(ring);
		}
		for (w = 0; w < NR_WORKERS; w++) {
			uint64_t s = xorshift(&rnd);

			pid[w] = fork();
			ASSERT_LE(0, pid[w]);
			if (!pid[w]) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				_exit(worker(w, roles[w], s));
			}
		}
		/* kill one at a random instant, once they are all at work */
		t0 = now_ms();
		while (now_ms() - t0 < 5000) {
			for (w = 0; w < NR_WORKERS && atomic_load(&ctl->ops[w]); w++)
				;
			if (w == NR_WORKERS)
				break;
			usleep(1000);
		}
		usleep((useconds_t)(xorshift(&rnd) % 20000));
		victim = (int)(xorshift(&rnd) % NR_WORKERS);
		kill(pid[victim], SIGKILL);
		atomic_store(&ctl->gone[victim], 1);
		kills[atomic_load(&ctl->phase[victim])]++;
		role_kills[roles[victim]]++;
		ASSERT_EQ(pid[victim], waitpid(pid[victim], &st, 0));
		/* the survivors go on past the dead one for a while, then stop */
		usleep(10000);
		atomic_store(&ctl->stop, 1);
		t0 = now_ms();
		for (left = NR_WORKERS - 1; left;) {
			pid_t p = waitpid(-1, &st, WNOHANG);

			if (p > 0) {
				for (w = 0; w < NR_WORKERS && pid[w] != p; w++)
					;
				ASSERT_LT(w, NR_WORKERS);
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					TH_LOG("round %ld: worker %d (%s) failed: %s", r, w,
					       role_name[roles[w]], ctl->err[w]);
				ASSERT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st));
				pid[w] = 0;
				left--;
				continue;
			}
			if (now_ms() - t0 > STOP_BOUND_MS * scale()) {
				for (w = 0; w < NR_WORKERS; w++)
					if (w != victim && pid[w])
						TH_LOG("round %ld: worker %d (%s) still blocked in %s after %d ms (victim %d, %s, killed in %s)",
						       r, w, role_name[roles[w]],
						       phase_name[atomic_load(&ctl->phase[w])],
						       STOP_BOUND_MS, victim, role_name[roles[victim]],
						       phase_name[atomic_load(&ctl->phase[victim])]);
				ASSERT_TRUE(0);
			}
			usleep(2000);
		}

		/* the mutex: free, or the dead holder's, taken over at once */
		{
			struct timespec dl = after_ms((long)(STOP_BOUND_MS * scale()));

			ret = shmpool_mutex_timedlock(self->p, &self->pr->m, &dl);
			if (ret == -EOWNERDEAD)
				self->pr->b = self->pr->a;
			else
				ASSERT_EQ(0, ret);
			ASSERT_EQ(self->pr->a, self->pr->b);
			ASSERT_EQ(0, shmpool_mutex_unlock(self->p, &self->pr->m));
		}
		ASSERT_EQ(0, cfg_check(self->cfg, msg, sizeof(msg))) TH_LOG("%s", msg);
		/* rings: every published element reached a consumer, once */
		for (w = 0; w < NR_WORKERS; w++) {
			uint64_t pub = atomic_load(&ctl->published[w]);

			if (roles[w] == R_SPSC_PROD && roles[victim] != R_SPSC_CONS)
				ASSERT_LE(pub, (uint64_t)atomic_load(&ctl->received))
					TH_LOG("round %ld: SPSC: %" PRIu64 " published, %" PRIu64 " received",
					       r, pub, (uint64_t)atomic_load(&ctl->received));
			if (roles[w] != R_MPMC_PROD || roles[victim] == R_MPMC_CONS)
				continue;
			lost = first_unseen(mpmc_prod_index(w), pub);
			ASSERT_EQ(pub, lost)
				TH_LOG("round %ld: MPMC: producer %d's element %" PRIu64 " of %" PRIu64 " lost (victim %s)",
				       r, w, lost, pub, role_name[roles[victim]]);
		}
		if (roles[victim] != R_MPMC_CONS)
			ASSERT_EQ((uint64_t)0, (uint64_t)atomic_load(&ctl->redelivered));
		for (int mpmc = 0; mpmc < 2; mpmc++) {
			ring_name(rname, sizeof(rname), mpmc);
			ASSERT_EQ(0, shmpool_obj_remove(self->h, rname));
		}
		/* the dead worker's blocks come back */
		used = heap_used(self->h, self->cache);
		ASSERT_EQ(base, used) TH_LOG("round %ld: %" PRIu64 " blocks still in use after reclaim (victim %s, killed in %s)",
					    r, used - base, role_name[roles[victim]],
					    phase_name[atomic_load(&ctl->phase[victim])]);
		ASSERT_EQ(0, shmpool_heap_check(self->h, SHMPOOL_CHECK_QUIESCENT,
						msg, sizeof(msg))) TH_LOG("round %ld: %s", r, msg);
	}
	for (w = 0; w < NR_ROLES; w++)
		TH_LOG("kills of a %s worker: %" PRIu64, role_name[w], role_kills[w]);
	for (w = 0; w < NR_PHASES; w++)
		if (kills[w])
			TH_LOG("kills in %s: %" PRIu64, phase_name[w], kills[w]);
	TH_LOG("mutex take-overs: %" PRIu64 " (in workers), config writer take-overs: %" PRIu64
	       ", MPMC elements delivered again after a consumer died: %" PRIu64,
	       takeovers + atomic_load(&ctl->ownerdead),
	       writer_takeovers + atomic_load(&ctl->writer_takeovers),
	       redelivered + atomic_load(&ctl->redelivered));
}

TEST_HARNESS_MAIN
