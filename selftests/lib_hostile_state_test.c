/* lib_hostile_state_test: a peer writes random or crafted bytes into a config, a cache, the directory of named objects or handles stored in the pool, or truncates the pool's file; the victim's calls must not crash, hang, write outside the structure, or return an undocumented error. */
// SPDX-License-Identifier: MIT
/*
 * Each trial makes a fresh pool, lets the "peer" (the test process) spoil
 * one structure, and runs the victim's calls in a forked child under the
 * watchdog of selftests/hostile.h. Seeds: SHMPOOL_HOSTILE_SEED, trial
 * counts: SHMPOOL_HOSTILE_TRIALS (defaults are smaller on the device
 * backend, which runs in the QEMU lanes).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_cache.h"
#include "shmpool_state.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"
#include "hostile.h"
/* the directory's place and entry layout: the truth is the library's */
#include "../lib/heap.h"

#define POOL_BYTES	(256U << 10)
#define CFG_CAP		256U
#define CACHE_CAP	64U
#define NR_KEYS		48
#define CANARY_BYTES	512U
#define WATCHDOG_MS	5000U

/* ---- the world of one trial -------------------------------------------------- */

struct world {
	unsigned int backend;
	char name[SHMPOOL_NAME_MAX];
	struct shmpool *p;
	struct shmpool_heap *h;
	struct shmpool_obj cfg, cache, canary, handles;
	void *snap;
	/* what the victim works on */
	int what;
	uint64_t region_off, region_len;	/* the structure */
};

enum { W_CONFIG, W_CACHE, W_DIR, W_HANDLES };
enum { M_HEADER, M_WHOLE, M_CRAFTED };

static void key_of(char *k, int i)
{
	snprintf(k, 16, "key-%03d", i);
}

/* A fresh named pool with a heap, a config, a cache with entries and a canary. */
static int world_make(struct world *w, unsigned int backend)
{
	struct shmpool_config *c;
	struct shmpool_cache *ca;
	char k[16], v[64];
	int i, ret;

	memset(&w->p, 0, sizeof(*w) - offsetof(struct world, p));
	w->backend = backend;
	snprintf(w->name, sizeof(w->name), "hostile.%d", (int)getpid());
	shmpool_unlink(w->name, backend);
	ret = shmpool_create(w->name, POOL_BYTES, 0600, backend | SHMPOOL_EXCL, &w->p);
	if (!ret)
		ret = shmpool_heap_open(w->p, 0, &w->h);
	if (!ret)
		ret = shmpool_config_open(w->h, "cfg", CFG_CAP, SHMPOOL_CONFIG_CREATE, &c);
	if (ret)
		return ret;
	for (i = 0; i < 3 && !ret; i++)
		ret = shmpool_config_publish(c, "version", 8, NULL);
	shmpool_config_close(c);
	if (!ret)
		ret = shmpool_cache_open(w->h, "cache", CACHE_CAP, SHMPOOL_CACHE_CREATE, &ca);
	if (ret)
		return ret;
	for (i = 0; i < NR_KEYS && !ret; i++) {
		key_of(k, i);
		memset(v, 'a' + i % 26, sizeof(v));
		ret = shmpool_cache_put(ca, k, strlen(k), v, 8 + i % 50, 0);
	}
	shmpool_cache_close(ca);
	if (!ret)
		ret = shmpool_obj_create(w->h, "canary", CANARY_BYTES, 16, &w->canary);
	if (ret == 1)
		ret = shmpool_obj_create(w->h, "handles", 64 * 8, 16, &w->handles);
	if (ret == 1)
		ret = shmpool_obj_find(w->h, "cfg", &w->cfg);
	if (!ret)
		ret = shmpool_obj_find(w->h, "cache", &w->cache);
	if (ret)
		return ret;
	memset((char *)w->p->base + w->canary.off, 0xa5, CANARY_BYTES);
	return 0;
}

static void world_drop(struct world *w)
{
	free(w->snap);
	w->snap = NULL;
	shmpool_heap_close(w->h);
	shmpool_close(w->p);
	shmpool_unlink(w->name, w->backend);
	w->h = NULL;
	w->p = NULL;
}

static uint8_t *at(struct world *w, uint64_t off)
{
	return (uint8_t *)w->p->base + off;
}

/* the offsets of every cache entry reachable from the buckets (intact cache) */
static int cache_entries(struct world *w, uint64_t *offs, int max)
{
	uint64_t *bucket = (uint64_t *)(at(w, w->cache.off) + 72 + 64 * sizeof(struct shmpool_mutex));
	uint32_t nb = 64, b;
	int n = 0;

	/* struct cache_shared: ident..evictions (72 bytes), 64 stripes, buckets */
	for (b = 0; b < nb && n < max; b++) {
		uint64_t off = bucket[b];

		while (off && n < max) {
			offs[n++] = off;
			off = *(uint64_t *)at(w, off);
		}
	}
	return n;
}

/* ---- the peer's writes ------------------------------------------------------------ */

static void spoil_config(struct world *w, uint64_t *s, int mode)
{
	uint64_t *hdr = (uint64_t *)at(w, w->cfg.off);	/* ident, seq, begin, len[2] */
	uint64_t seq = hdr[1];

	/* the identity stays: a spoiled one only makes open say -EUCLEAN */
	switch (mode) {
	case M_HEADER:
		hostile_fill(s, hdr + 1, 64 - 8);
		break;
	case M_WHOLE:
		hostile_fill(s, hdr + 1, w->cfg.size - 8);
		break;
	default:
		switch (hostile_below(s, 5)) {
		case 0:		/* a writer two (or more) versions ahead */
			hdr[2] = seq + 2 + hostile_below(s, 3);
			break;
		case 1:		/* begin behind seq */
			hdr[2] = seq - 1 - hostile_below(s, 3);
			break;
		case 2:		/* a length at or past the capacity */
			hdr[3 + (seq & 1)] = hostile_plausible(s, CFG_CAP);
			break;
		case 3:		/* versions anywhere */
			hdr[1] = hostile_plausible(s, seq);
			hdr[2] = hostile_plausible(s, seq + 1);
			break;
		default:	/* an identity of another capacity */
			hdr[0] = (hdr[0] & ~0xffffffffULL) |
				 (uint32_t)hostile_plausible(s, CFG_CAP);
			break;
		}
	}
}

static void spoil_cache(struct world *w, uint64_t *s, int mode)
{
	uint64_t offs[NR_KEYS], *link, target;
	int n = cache_entries(w, offs, NR_KEYS), i;

	switch (mode) {
	case M_HEADER:
		/* the counters, the hand and the buckets (not the stripe locks) */
		hostile_fill(s, at(w, w->cache.off + 8), 64);
		for (i = 0; i < 8; i++)
			hostile_fill(s, at(w, w->cache.off + 72 + 64 * sizeof(struct shmpool_mutex) +
					     8 * hostile_below(s, 64)), 8);
		break;
	case M_WHOLE:
		/*
		 * Everything but the identity, stripe locks included (the
		 * victims wait for none: a live holder is -ETIMEDOUT at once,
		 * any other is taken over), and every entry, whole.
		 */
		hostile_fill(s, at(w, w->cache.off + 8), w->cache.size - 8);
		for (i = 0; i < n; i++)
			hostile_fill(s, at(w, offs[i]), 32 + 8);
		break;
	default:
		if (!n)
			return;
		i = (int)hostile_below(s, (uint64_t)n);
		link = (uint64_t *)at(w, offs[i]);	/* the entry's next */
		switch (hostile_below(s, 6)) {
		case 0:		/* a link to itself */
			target = offs[i];
			break;
		case 1:		/* a link to a live entry (maybe of another chain) */
			target = offs[hostile_below(s, (uint64_t)n)];
			break;
		case 2:		/* to another object of the heap */
			target = w->canary.off;
			break;
		case 3:		/* one past the pool, or near it */
			target = hostile_plausible(s, POOL_BYTES);
			break;
		case 4:		/* lengths at the maximum */
			((uint32_t *)link)[5] = (uint32_t)hostile_plausible(s, SHMPOOL_CACHE_VALUE_MAX);
			((uint32_t *)link)[4] = (uint32_t)hostile_plausible(s, SHMPOOL_CACHE_KEY_MAX);
			return;
		default:	/* into the heap's metadata */
			target = hostile_below(s, 5 * 4096) & ~15ULL;
			break;
		}
		*link = target;
	}
}

static struct dir_ent *dir_of(struct world *w)
{
	return (struct dir_ent *)at(w, DIR_OFF);
}

static void spoil_dir(struct world *w, uint64_t *s, int mode)
{
	struct dir_ent *d = dir_of(w);
	int i = (int)hostile_below(s, 4);	/* the four objects are 0..3 */

	switch (mode) {
	case M_HEADER:
		hostile_fill(s, &d[i], sizeof(d[i]));
		break;
	case M_WHOLE:
		hostile_fill(s, d, NR_DIR * sizeof(*d));
		break;
	default:
		switch (hostile_below(s, 4)) {
		case 0:
			d[i].off = hostile_plausible(s, POOL_BYTES);
			break;
		case 1:
			d[i].size = hostile_plausible(s, POOL_BYTES - d[i].off);
			break;
		case 2:		/* a name without its NUL */
			memset(d[i].name, 'x', sizeof(d[i].name));
			break;
		default:	/* an object over the heap's header */
			d[i].off = 16 * hostile_below(s, 256);
			break;
		}
	}
}

/* ---- the victims ---------------------------------------------------------------- */

static int documented(int ret, const int *ok)
{
	if (ret >= 0)
		return 1;
	for (; *ok; ok++)
		if (ret == *ok)
			return 1;
	fprintf(stderr, "# undocumented error %d\n", ret);
	return 0;
}

static int victim_config(void *arg)
{
	static const int open_ok[] = { -EUCLEAN, -EEXIST, -ENOENT, -EAGAIN, 0 };
	static const int read_ok[] = { -ENODATA, -EMSGSIZE, -EUCLEAN, -EAGAIN, 0 };
	static const int wait_ok[] = { -ETIMEDOUT, -EOWNERDEAD, 0 };
	static const int pub_ok[] = { -EBUSY, -EPERM, -EUCLEAN, 0 };
	struct world *w = arg;
	struct shmpool_config *c;
	struct timespec dl;
	char buf[CFG_CAP];
	uint64_t v = 0;
	int ret, i;

	if (shmpool_heap_open(w->p, 0, &w->h))
		return 2;
	ret = shmpool_config_open(w->h, "cfg", CFG_CAP, 0, &c);
	if (ret)
		return documented(ret, open_ok) ? 0 : 3;
	/* from here on the config object is all the victim may touch */
	if (hostile_guard(w->p->base, w->p->size, w->region_off, w->region_len))
		return 4;
	for (i = 0; i < 4; i++) {
		ret = shmpool_config_read(c, buf, sizeof(buf), NULL);
		if (!documented(ret, read_ok) || ret > (int)CFG_CAP)
			return 5;
		ret = shmpool_config_read(c, buf, 4, NULL);
		if (!documented(ret, read_ok) || ret > 4)
			return 5;
	}
	dl = after_ms(5);
	ret = shmpool_config_wait(c, shmpool_config_version(c), &dl, NULL);
	if (!documented(ret, wait_ok))
		return 6;
	ret = shmpool_config_publish(c, "after", 6, &v);
	if (!documented(ret, pub_ok))
		return 7;
	if (!ret && !v)		/* 0 is "never published" */
		return 9;
	ret = shmpool_config_read(c, buf, sizeof(buf), NULL);
	return documented(ret, read_ok) ? 0 : 8;
}

static int victim_cache(void *arg)
{
	static const int open_ok[] = { -EUCLEAN, -EEXIST, -ENOENT, -EAGAIN, 0 };
	static const int call_ok[] = { -EUCLEAN, -ENOENT, -EMSGSIZE, -EEXIST, -ENOMEM,
				       -ETIMEDOUT, 0 };
	struct shmpool_cache_stats st;
	struct world *w = arg;
	struct shmpool_cache *c;
	char k[16], v[64];
	int ret, i;

	if (shmpool_heap_open(w->p, 0, &w->h))
		return 2;
	/* a stripe a live process holds (random words may name one): -ETIMEDOUT now */
	shmpool_heap_set_lock_timeout(w->h, 0);
	ret = shmpool_cache_open(w->h, "cache", 0, 0, &c);
	if (ret)
		return documented(ret, open_ok) ? 0 : 3;
	for (i = 0; i < NR_KEYS + 4; i++) {
		key_of(k, i);
		ret = shmpool_cache_get(c, k, strlen(k), v, sizeof(v));
		if (!documented(ret, call_ok) || ret > (int)sizeof(v))
			return 4;
	}
	for (i = 0; i < 8; i++) {
		key_of(k, i * 7);
		ret = i & 1 ? shmpool_cache_delete(c, k, strlen(k)) :
			      shmpool_cache_put(c, k, strlen(k), "new", 3, 0);
		if (!documented(ret, call_ok))
			return 5;
	}
	ret = shmpool_cache_stats(c, &st);
	return ret ? 6 : 0;
}

static int count_cb(const void *key, size_t klen, const void *val, size_t vlen,
		    void *arg)
{
	/* touch every byte the callback is given: inside the pool, or a fault */
	const volatile char *kp = key, *vp = val;
	size_t i;
	char x = 0;

	for (i = 0; i < klen; i++)
		x ^= kp[i];
	for (i = 0; i < vlen; i++)
		x ^= vp[i];
	(*(int *)arg) += 1 + (x & 0);
	return 0;
}

static int victim_cache_iterate(void *arg)
{
	struct world *w = arg;
	struct shmpool_cache *c;
	int ret, n = 0;

	if (shmpool_heap_open(w->p, 0, &w->h))
		return 2;
	shmpool_heap_set_lock_timeout(w->h, 0);	/* as in victim_cache() */
	ret = shmpool_cache_open(w->h, "cache", 0, 0, &c);
	if (ret)
		return ret == -EUCLEAN || ret == -EEXIST || ret == -EAGAIN ? 0 : 3;
	ret = shmpool_cache_iterate(c, count_cb, &n);
	return ret >= 0 || ret == -EUCLEAN || ret == -ETIMEDOUT ? 0 : 4;
}

static int victim_dir(void *arg)
{
	static const char *const names[] = { "cfg", "cache", "canary", "handles", "none" };
	struct world *w = arg;
	struct shmpool_obj_entry e;
	struct shmpool_obj obj;
	unsigned int pos = 0;
	int ret, i, n = 0;

	if (shmpool_heap_open(w->p, 0, &w->h))
		return 2;
	for (i = 0; i < 5; i++) {
		ret = shmpool_obj_find(w->h, names[i], &obj);
		if (ret && ret != -ENOENT && ret != -EUCLEAN) {
			fprintf(stderr, "# find %s: %d\n", names[i], ret);
			return 3;
		}
		/* what it hands out lies past the heap's metadata, in the pool */
		if (!ret && (obj.off < DIR_OFF + NR_DIR * sizeof(struct dir_ent) ||
			     obj.off > w->p->size || obj.size > w->p->size - obj.off)) {
			fprintf(stderr, "# find %s: [%llu, +%llu)\n", names[i],
				(unsigned long long)obj.off, (unsigned long long)obj.size);
			return 4;
		}
		ret = shmpool_obj_create(w->h, names[i], 64, 16, &obj);
		if (ret < 0 && ret != -EUCLEAN && ret != -ENOSPC && ret != -ENOMEM) {
			fprintf(stderr, "# create %s: %d\n", names[i], ret);
			return 5;
		}
	}
	while (!shmpool_obj_next(w->p, &pos, &e))
		if (++n > NR_DIR || e.off > w->p->size || e.size > w->p->size - e.off)
			return 6;
	return 0;
}

/* ---- the trial loop ------------------------------------------------------------- */

/*
 * Trials per test: @host on the plain host build; a half under ASan, an
 * eighth under TSan, where each fork() costs much more (every test must
 * stay well inside the harness's 30 s). Where the device exists (here: the
 * QEMU lanes, under TCG) a 32nd for both backends, so that the whole file
 * stays near 10 s per lane; SHMPOOL_HOSTILE_TRIALS overrides all of it.
 */
static unsigned int default_trials(unsigned int host)
{
	unsigned int n = host;

#if defined(UNDER_TSAN)
	n /= 8;
#elif defined(__SANITIZE_ADDRESS__)
	n /= 2;
#endif
	if (device_ok())
		n /= 32;
	return hostile_trials(n ? n : 1);
}

/*
 * Run @trials trials of @spoil (mode @mode) then @victim on structure
 * @what; 0 if every trial passed, else the first failure's trial number +
 * 1, with @why filled in.
 */
static int trials(unsigned int backend, int what, int mode, unsigned int n,
		  void (*spoil)(struct world *, uint64_t *, int),
		  int (*victim)(void *), char *why)
{
	uint64_t base = hostile_seed() ^ ((uint64_t)what << 40 | (uint64_t)mode << 32);
	struct world w;
	unsigned int t;
	long where;
	int ret;

	for (t = 0; t < n; t++) {
		uint64_t seed = base + t, s = seed;

		ret = world_make(&w, backend);
		if (ret) {
			snprintf(why, 96, "world_make: %d", ret);
			return (int)t + 1;
		}
		spoil(&w, &s, mode);
		switch (what) {
		case W_CONFIG:
			w.region_off = w.cfg.off;
			w.region_len = w.cfg.size;
			break;
		case W_DIR:
			w.region_off = DIR_OFF;
			w.region_len = NR_DIR * sizeof(struct dir_ent);
			break;
		default:	/* the cache: its entries are anywhere in the heap */
			w.region_off = 0;
			w.region_len = 0;
			break;
		}
		/* heap_close() in the victim writes the owner table: not a trial write */
		w.snap = hostile_snapshot(w.p->base, w.p->size);
		ret = hostile_run(victim, &w, (unsigned int)(WATCHDOG_MS * scale()), seed, why);
		if (!ret && what == W_CONFIG) {
			/*
			 * The victim's heap_open() claims an owner id in the
			 * heap's owner table (before the guard): not a trial
			 * write. The guard pages catch everything after it.
			 */
			memcpy(w.snap, w.p->base, DIR_OFF);
			where = hostile_changed_outside(w.p->base, w.snap, w.p->size,
							w.region_off, w.region_len);
			if (where >= 0) {
				snprintf(why, 96, "wrote at %ld outside, seed 0x%llx", where,
					 (unsigned long long)seed);
				ret = -1;
			}
		}
		if (!ret && memcmp(at(&w, w.canary.off), (char *)w.snap + w.canary.off,
				   CANARY_BYTES)) {
			snprintf(why, 96, "another object changed, seed 0x%llx",
				 (unsigned long long)seed);
			ret = -1;
		}
		world_drop(&w);
		if (ret)
			return (int)t + 1;
	}
	return 0;
}

FIXTURE(hostile) {
	char why[128];
};

FIXTURE_VARIANT(hostile) {
	unsigned int backend;
};

FIXTURE_VARIANT_ADD(hostile, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(hostile, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(hostile)
{
	/* 6.1's harness would still run the test after SKIP() here */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_ok())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	self->why[0] = '\0';
}

FIXTURE_TEARDOWN(hostile)
{
}

#define TRIALS(what, mode, host, spoil, victim) do {				\
	int _t = trials(variant->backend, what, mode,				\
			default_trials(host), spoil, victim,	\
			self->why);						\
	if (_t)									\
		TH_LOG("trial %d: %s", _t - 1, self->why);			\
	ASSERT_EQ(0, _t);							\
} while (0)

/* ---- the bullets of issue 14, one crafted case each ------------------------------ */

static void craft_begin_ahead(struct world *w, uint64_t *s, int mode)
{
	uint64_t *hdr = (uint64_t *)at(w, w->cfg.off);

	hdr[2] = hdr[1] + 2;	/* begin: a writer two versions ahead of seq */
}

static int victim_read_once(void *arg)
{
	struct world *w = arg;
	struct shmpool_config *c;
	char buf[CFG_CAP];
	int ret;

	if (shmpool_heap_open(w->p, 0, &w->h) ||
	    shmpool_config_open(w->h, "cfg", CFG_CAP, 0, &c))
		return 2;
	ret = shmpool_config_read(c, buf, sizeof(buf), NULL);
	return ret == -EUCLEAN ? 0 : 3;
}

/* issue 14: a config whose begin runs two versions ahead of seq made read retry for ever */
TEST_F(hostile, config_begin_ahead_is_euclean)
{
	TRIALS(W_CONFIG, M_CRAFTED, 1, craft_begin_ahead, victim_read_once);
}

static void craft_self_link(struct world *w, uint64_t *s, int mode)
{
	uint64_t offs[NR_KEYS];
	int n = cache_entries(w, offs, NR_KEYS), i;

	for (i = 0; i < n; i++)		/* every entry links to itself */
		*(uint64_t *)at(w, offs[i]) = offs[i];
}

static int victim_get_missing(void *arg)
{
	struct world *w = arg;
	struct shmpool_cache *c;
	char k[16], v[64];
	int ret, i;

	if (shmpool_heap_open(w->p, 0, &w->h) ||
	    shmpool_cache_open(w->h, "cache", 0, 0, &c))
		return 2;
	for (i = NR_KEYS; i < NR_KEYS + 64; i++) {
		key_of(k, i);
		ret = shmpool_cache_get(c, k, strlen(k), v, sizeof(v));
		if (ret != -EUCLEAN && ret != -ENOENT)
			return 3;
	}
	/* and the stripes are free again: a put elsewhere goes through */
	ret = shmpool_cache_delete(c, "key-000", 7);
	return ret == -EUCLEAN || ret == 0 ? 0 : 4;
}

/* issue 14: a cache entry linking to itself made get walk the cycle for ever, stripe locked */
TEST_F(hostile, cache_self_link_is_euclean)
{
	TRIALS(W_CACHE, M_CRAFTED, 1, craft_self_link, victim_get_missing);
}

/* ---- seeded trials per structure ------------------------------------------------ */

TEST_F(hostile, config_random_header)
{
	TRIALS(W_CONFIG, M_HEADER, 64, spoil_config, victim_config);
}

TEST_F(hostile, config_random_object)
{
	TRIALS(W_CONFIG, M_WHOLE, 64, spoil_config, victim_config);
}

TEST_F(hostile, config_crafted)
{
	TRIALS(W_CONFIG, M_CRAFTED, 96, spoil_config, victim_config);
}

TEST_F(hostile, cache_random_header)
{
	TRIALS(W_CACHE, M_HEADER, 64, spoil_cache, victim_cache);
}

TEST_F(hostile, cache_random_entries)
{
	TRIALS(W_CACHE, M_WHOLE, 64, spoil_cache, victim_cache);
}

TEST_F(hostile, cache_crafted)
{
	TRIALS(W_CACHE, M_CRAFTED, 96, spoil_cache, victim_cache);
}

TEST_F(hostile, cache_crafted_iterate)
{
	TRIALS(W_CACHE, M_CRAFTED, 64, spoil_cache, victim_cache_iterate);
}

TEST_F(hostile, dir_random_entry)
{
	TRIALS(W_DIR, M_HEADER, 64, spoil_dir, victim_dir);
}

TEST_F(hostile, dir_random_directory)
{
	TRIALS(W_DIR, M_WHOLE, 64, spoil_dir, victim_dir);
}

TEST_F(hostile, dir_crafted)
{
	TRIALS(W_DIR, M_CRAFTED, 96, spoil_dir, victim_dir);
}

/* ---- handles stored in shared memory ---------------------------------------------- */

struct handle_trial {
	struct world *w;
	uint64_t seed;
};

static int victim_handles(void *arg)
{
	struct handle_trial *ht = arg;
	struct world *w = ht->w;
	uint64_t *stored = (uint64_t *)at(w, w->handles.off), s = ht->seed;
	int slot, i;
	size_t len;

	slot = shmpool_handle_attach(w->p);
	if (slot <= 0)
		return 2;
	/* the peer's handles: random, and crafted around the pool's end */
	for (i = 0; i < 64; i++) {
		uint64_t off = hostile_plausible(&s, w->p->size);

		stored[i] = i & 1 ? hostile_next(&s) :
			    (shmpool_handle_make(slot, 0) & ~SHMPOOL_HANDLE_OFF_MASK) |
			    (off & SHMPOOL_HANDLE_OFF_MASK);
	}
	shmpool_handle_read_lock();
	for (i = 0; i < 64; i++) {
		volatile char *q;

		len = (size_t)hostile_plausible(&s, 4096);
		q = shmpool_handle_ptr(stored[i], len);
		if (!q)
			continue;
		/* a resolved handle lies inside the pool, whole */
		if ((char *)q < (char *)w->p->base ||
		    len > w->p->size - (size_t)((char *)q - (char *)w->p->base)) {
			shmpool_handle_read_unlock();
			return 3;
		}
		if (len)
			(void)q[len - 1];
	}
	shmpool_handle_read_unlock();
	return shmpool_handle_detach(slot) ? 4 : 0;
}

TEST_F(hostile, handles_random_and_crafted)
{
	unsigned int t, n = default_trials(64);
	struct handle_trial ht;
	struct world w;

	for (t = 0; t < n; t++) {
		ASSERT_EQ(0, world_make(&w, variant->backend));
		ht.w = &w;
		ht.seed = hostile_seed() + t;
		if (hostile_run(victim_handles, &ht, (unsigned int)(WATCHDOG_MS * scale()),
				ht.seed, self->why))
			TH_LOG("trial %u: %s", t, self->why);
		world_drop(&w);
		ASSERT_EQ('\0', self->why[0]);
	}
}

/* ---- truncation ----------------------------------------------------------------- */

struct trunc {
	struct world *w;
	int fd;			/* the peer's fd of the pool's file */
	off_t to;		/* the size the peer truncates to */
	_Atomic int *go;	/* victim -> peer: allocating; peer -> victim: done */
};

/* Allocate and free in a loop; the peer truncates the file in the middle. */
static int victim_alloc(void *arg)
{
	static const int ok[] = { -ENOMEM, -EUCLEAN, -EINVAL, 0 };
	struct trunc *tr = arg;
	struct shmpool_pool_info info;
	struct shmpool *p;
	struct shmpool_heap *h;
	uint64_t off[64];
	int i, j, ret;

	if (tr->w->name[0]) {
		if (shmpool_open(tr->w->name, tr->w->backend, &p))
			return 2;
	} else {
		p = tr->w->p;
	}
	if (shmpool_heap_open(p, 0, &h))
		return 3;
	/* 100 rounds before the truncation, 60 after (the debug lane is slow) */
	for (i = 0; i < 160; i++) {
		if (i == 100) {
			int idle = 0;

			/* a peer that gave up waiting has truncated already (2) */
			atomic_compare_exchange_strong(tr->go, &idle, 1);
			while (atomic_load(tr->go) != 2)
				usleep(100);
		}
		for (j = 0; j < 64; j++) {
			off[j] = 0;
			ret = shmpool_alloc(h, 16 + (size_t)(i * 64 + j) % 3000, &off[j]);
			if (!documented(ret, ok))
				return 4;
			if (!ret)	/* inside the pool: the victim may write it */
				memset(shmpool_heap_ptr(h, off[j], 16), 0x5a, 16);
		}
		for (j = 0; j < 64; j++) {
			ret = off[j] ? shmpool_free(h, off[j]) : 0;
			if (!documented(ret, ok))
				return 5;
		}
	}
	/* a truncated pool says so */
	if (shmpool_info(p, &info))
		return 6;
	if (tr->to < (off_t)p->size && tr->fd >= 0 &&
	    !(info.flags & SHMPOOL_POOL_TRUNCATED) && tr->w->backend == SHMPOOL_BACKEND_MEMFD &&
	    tr->w->name[0])
		return 7;
	return 0;
}

/* a hang detector, not a timing assertion: the debug lane can be slow */
#define TRUNC_WATCHDOG_MS	((unsigned int)(WATCHDOG_MS * 4 * scale()))

/* The peer: wait for the victim to be allocating, truncate, let it go on. */
static int run_truncation(struct trunc *tr, char *why, int *trunc_ret)
{
	int ret;

	tr->go = mmap(NULL, sizeof(*tr->go), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (tr->go == MAP_FAILED)
		return -1;
	atomic_store(tr->go, 0);
	if (fork() == 0) {
		/* the peer, a process of its own; gives up after the victim's watchdog */
		uint64_t end = now_ms() + TRUNC_WATCHDOG_MS + 1000;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		while (atomic_load(tr->go) != 1 && now_ms() < end)
			usleep(100);
		ret = ftruncate(tr->fd, tr->to) ? -errno : 0;
		atomic_store(tr->go, 2);
		_exit(ret == 0 ? 0 : ret == -EPERM ? 1 : 2);
	}
	ret = hostile_run(victim_alloc, tr, TRUNC_WATCHDOG_MS, 0, why);
	{
		int status;

		wait(&status);
		*trunc_ret = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	}
	munmap((void *)tr->go, sizeof(*tr->go));
	return ret;
}

/* issue 14: a peer that truncated a named memfd pool's file killed the others with SIGBUS */
TEST_F(hostile, truncate_named_pool)
{
	struct trunc tr = { 0 };
	struct world w;
	int tret;

	ASSERT_EQ(0, world_make(&w, variant->backend));
	tr.w = &w;
	tr.fd = shmpool_fd(w.p);
	tr.to = 0;
	EXPECT_EQ(0, run_truncation(&tr, self->why, &tret)) TH_LOG("%s", self->why);
	/* the device's pool files keep their size; a /dev/shm file does not */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE)
		EXPECT_EQ(1, tret);
	world_drop(&w);
}

/* An anonymous memfd pool is sealed: the peer's truncation fails, the victim never notices. */
TEST_F(hostile, truncate_anon_pool)
{
	struct trunc tr = { 0 };
	struct world w = { 0 };
	int tret;

	ASSERT_EQ(0, shmpool_create_anon(POOL_BYTES, variant->backend, &w.p));
	w.backend = variant->backend;
	tr.w = &w;
	tr.fd = shmpool_fd(w.p);
	tr.to = 4096;
	EXPECT_EQ(0, run_truncation(&tr, self->why, &tret)) TH_LOG("%s", self->why);
	EXPECT_EQ(1, tret);	/* EPERM */
	shmpool_close(w.p);
}

/* An adopted memfd that allows sealing is sealed against shrinking when it is mapped. */
TEST_F(hostile, truncate_adopted_memfd)
{
	struct trunc tr = { 0 };
	struct world w = { 0 };
	int fd, tret;

	if (variant->backend != SHMPOOL_BACKEND_MEMFD)
		SKIP(return, "memfd only");
	fd = memfd_create("peer", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, POOL_BYTES));
	ASSERT_EQ(0, shmpool_adopt_fd(fd, 0, &w.p));
	w.backend = variant->backend;
	tr.w = &w;
	tr.fd = fd;
	tr.to = 0;
	EXPECT_EQ(0, run_truncation(&tr, self->why, &tret)) TH_LOG("%s", self->why);
	EXPECT_EQ(1, tret);	/* EPERM */
	shmpool_close(w.p);
}

TEST_HARNESS_MAIN
