// SPDX-License-Identifier: GPL-2.0
/*
 * lib_inspect_test: the read-only introspection calls (shmpool_heap_inspect,
 * shmpool_obj_next, shmpool_ring/config/cache_inspect) on a read-only handle.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_cache.h"
#include "shmpool_ring.h"
#include "shmpool_state.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"
#include "hostile.h"
#include "inspect_hostile.h"

FIXTURE(insp) {
	char name[64];
	struct shmpool *p;	/* read-write, with the heap */
	struct shmpool *ro;	/* read-only: what an observer has */
	struct shmpool_heap *h;
};

FIXTURE_SETUP(insp)
{
	snprintf(self->name, sizeof(self->name), "insp-%d", getpid());
	shmpool_unlink(self->name, 0);
	ASSERT_EQ(0, shmpool_create(self->name, 1 << 20, 0600, SHMPOOL_EXCL, &self->p));
	ASSERT_EQ(0, shmpool_open(self->name, SHMPOOL_RDONLY, &self->ro));
	self->h = NULL;
}

FIXTURE_TEARDOWN(insp)
{
	shmpool_heap_close(self->h);
	shmpool_close(self->ro);
	shmpool_close(self->p);
	shmpool_unlink(self->name, 0);
}

TEST_F(insp, no_heap_is_enodata)
{
	struct shmpool_heap_stats st;
	struct shmpool_obj_entry e;
	unsigned int pos = 0;

	ASSERT_EQ(-ENODATA, shmpool_heap_inspect(self->ro, &st));
	ASSERT_EQ(-ENODATA, shmpool_obj_next(self->ro, &pos, &e));
}

TEST_F(insp, not_a_heap_is_euclean)
{
	struct shmpool_heap_stats st;

	/* the heap's READY state with a foreign magic */
	((uint32_t *)shmpool_base(self->p))[0] = 1;
	((uint32_t *)shmpool_base(self->p))[1] = 0xdeadbeef;
	ASSERT_EQ(-EUCLEAN, shmpool_heap_inspect(self->ro, &st));
}

TEST_F(insp, bad_arguments)
{
	struct shmpool_heap_stats st;
	struct shmpool_ring_info ri;
	struct shmpool_config_info ci;
	struct shmpool_cache_stats cs;
	struct shmpool_obj_entry e;

	ASSERT_EQ(-EINVAL, shmpool_heap_inspect(NULL, &st));
	ASSERT_EQ(-EINVAL, shmpool_heap_inspect(self->ro, NULL));
	ASSERT_EQ(-EINVAL, shmpool_obj_next(self->ro, NULL, &e));
	/* an offset outside the pool */
	ASSERT_EQ(-EINVAL, shmpool_ring_inspect(self->ro, 1 << 20, &ri));
	ASSERT_EQ(-EINVAL, shmpool_config_inspect(self->ro, (1 << 20) - 8, &ci));
	ASSERT_EQ(-EINVAL, shmpool_cache_inspect(self->ro, UINT64_MAX, &cs));
}

TEST_F(insp, heap_matches_locked_stats)
{
	struct shmpool_heap_stats a, b;
	uint64_t off[40];
	int i;

	ASSERT_EQ(0, shmpool_heap_open(self->p, SHMPOOL_HEAP_NOCACHE, &self->h));
	for (i = 0; i < 40; i++)
		ASSERT_EQ(0, shmpool_alloc(self->h, i < 30 ? 100 : 20000, &off[i]));
	for (i = 0; i < 40; i += 3)
		ASSERT_EQ(0, shmpool_free(self->h, off[i]));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &a));
	ASSERT_EQ(0, shmpool_heap_inspect(self->ro, &b));
	ASSERT_EQ(0, memcmp(&a, &b, sizeof(a)));
	ASSERT_EQ(26U, b.alloc_blocks);
}

TEST_F(insp, objects_listed_once_each)
{
	struct shmpool_obj_entry e;
	struct shmpool_obj obj;
	unsigned int pos = 0, seen = 0;
	char name[16];
	int i;

	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	for (i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "obj%d", i);
		ASSERT_EQ(1, shmpool_obj_create(self->h, name, 100 + i, 0, &obj));
	}
	ASSERT_EQ(0, shmpool_obj_remove(self->h, "obj2"));
	while (!shmpool_obj_next(self->ro, &pos, &e)) {
		ASSERT_EQ(0, shmpool_obj_find(self->h, e.name, &obj));
		ASSERT_EQ(obj.off, e.off);
		ASSERT_EQ(obj.size, e.size);
		ASSERT_NE(0, strcmp(e.name, "obj2"));
		seen++;
	}
	ASSERT_EQ(4U, seen);
	ASSERT_EQ(-ENOENT, shmpool_obj_next(self->ro, &pos, &e));
}

TEST_F(insp, ring_fill_and_shutdown)
{
	struct shmpool_ring_info ri;
	struct shmpool_ring *r;
	uint64_t v = 1;
	int i;

	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(1, shmpool_ring_create(self->h, "q", SHMPOOL_RING_SPSC, 64, 8, 0, &r));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(1U, shmpool_ring_enqueue_bulk(r, &v, 1));
	ASSERT_EQ(1U, shmpool_ring_dequeue_bulk(r, &v, 1));
	ASSERT_EQ(0, shmpool_ring_inspect(self->ro, r->off, &ri));
	ASSERT_EQ(SHMPOOL_RING_SPSC, ri.type);
	ASSERT_EQ(64U, ri.count);
	ASSERT_EQ(8U, ri.esize);
	ASSERT_EQ(9U, ri.used);
	ASSERT_EQ(10U, ri.produced);
	ASSERT_EQ(0U, ri.shut);
	ASSERT_EQ(0, shmpool_ring_shutdown(r, SHMPOOL_RING_PROD));
	ASSERT_EQ(0, shmpool_ring_inspect(self->ro, r->off, &ri));
	ASSERT_EQ(SHMPOOL_RING_PROD, ri.shut);
	shmpool_ring_close(r);
}

TEST_F(insp, kinds_are_told_apart)
{
	struct shmpool_config_info ci;
	struct shmpool_cache_stats cs;
	struct shmpool_ring_info ri;
	struct shmpool_config *c;
	struct shmpool_cache *k;
	struct shmpool_ring *r;
	struct shmpool_obj obj;

	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(1, shmpool_ring_create(self->h, "q", SHMPOOL_RING_MPMC, 16, 8, 0, &r));
	ASSERT_EQ(0, shmpool_config_open(self->h, "cfg", 100, SHMPOOL_CONFIG_CREATE, &c));
	ASSERT_EQ(0, shmpool_cache_open(self->h, "kv", 8, SHMPOOL_CACHE_CREATE, &k));
	ASSERT_EQ(1, shmpool_obj_create(self->h, "plain", 256, 0, &obj));
	ASSERT_EQ(-EPROTOTYPE, shmpool_config_inspect(self->ro, r->off, &ci));
	ASSERT_EQ(-EPROTOTYPE, shmpool_cache_inspect(self->ro, r->off, &cs));
	ASSERT_EQ(-EPROTOTYPE, shmpool_ring_inspect(self->ro, obj.off, &ri));
	ASSERT_EQ(-EPROTOTYPE, shmpool_config_inspect(self->ro, obj.off, &ci));
	ASSERT_EQ(-EPROTOTYPE, shmpool_cache_inspect(self->ro, obj.off, &cs));
	ASSERT_EQ(0, shmpool_obj_find(self->h, "cfg", &obj));
	ASSERT_EQ(-EPROTOTYPE, shmpool_ring_inspect(self->ro, obj.off, &ri));
	ASSERT_EQ(0, shmpool_config_inspect(self->ro, obj.off, &ci));
	ASSERT_EQ(0U, ci.version);
	ASSERT_EQ(100U, ci.capacity);
	shmpool_ring_close(r);
	shmpool_config_close(c);
	shmpool_cache_close(k);
}

TEST_F(insp, config_version_and_cache_counters)
{
	struct shmpool_config_info ci;
	struct shmpool_cache_stats a, b;
	struct shmpool_config *c;
	struct shmpool_cache *k;
	struct shmpool_obj obj;
	char buf[8];

	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(0, shmpool_config_open(self->h, "cfg", 100, SHMPOOL_CONFIG_CREATE, &c));
	ASSERT_EQ(0, shmpool_config_publish(c, "x", 1, NULL));
	ASSERT_EQ(0, shmpool_config_publish(c, "hello", 5, NULL));
	ASSERT_EQ(0, shmpool_obj_find(self->h, "cfg", &obj));
	ASSERT_EQ(0, shmpool_config_inspect(self->ro, obj.off, &ci));
	ASSERT_EQ(2U, ci.version);
	ASSERT_EQ(5U, ci.len);
	ASSERT_EQ(0U, ci.writer);
	ASSERT_EQ(0, shmpool_cache_open(self->h, "kv", 2, SHMPOOL_CACHE_CREATE, &k));
	ASSERT_EQ(0, shmpool_cache_put(k, "a", 1, "1", 1, 0));
	ASSERT_EQ(0, shmpool_cache_put(k, "b", 1, "2", 1, 0));
	ASSERT_EQ(0, shmpool_cache_put(k, "c", 1, "3", 1, 0));
	ASSERT_EQ(-ENOENT, shmpool_cache_get(k, "zz", 2, buf, sizeof(buf)));
	ASSERT_EQ(0, shmpool_obj_find(self->h, "kv", &obj));
	ASSERT_EQ(0, shmpool_cache_stats(k, &a));
	ASSERT_EQ(0, shmpool_cache_inspect(self->ro, obj.off, &b));
	ASSERT_EQ(0, memcmp(&a, &b, sizeof(a)));
	ASSERT_EQ(1U, b.evictions);
	ASSERT_EQ(1U, b.misses);
	shmpool_config_close(c);
	shmpool_cache_close(k);
}

/* SHMPOOL_HEAP_EXISTING: one look at the state, never a layout, never a wait. */
TEST_F(insp, heap_open_existing_never_lays_out)
{
	uint32_t *state = shmpool_base(self->p);
	struct shmpool_heap *h;

	ASSERT_EQ(-ENODATA, shmpool_heap_open(self->p, SHMPOOL_HEAP_EXISTING, &h));
	ASSERT_EQ(0U, state[0]);
	ASSERT_EQ(0U, state[1]);
	/* being laid out by a live process (ours): no wait, no takeover */
	state[0] = 0x80000000U | 1;
	ASSERT_EQ(-EUCLEAN, shmpool_heap_open(self->p, SHMPOOL_HEAP_EXISTING, &h));
	ASSERT_EQ(0x80000001U, state[0]);
	state[0] = 0;
	ASSERT_EQ(0, shmpool_heap_open(self->p, SHMPOOL_HEAP_NOCACHE, &self->h));
	ASSERT_EQ(0, shmpool_heap_open(self->p, SHMPOOL_HEAP_EXISTING | SHMPOOL_HEAP_NOCACHE, &h));
	shmpool_heap_close(h);
	ASSERT_EQ(-EINVAL, shmpool_heap_open(self->p, 1U << 2, &h));
}

/*
 * shmpoolctl check prints the version that shmpool_ring_inspect() refused:
 * with -EPROTONOSUPPORT, ri.version is another layout version, also while
 * a peer keeps changing the word (read twice, it gave "layout version 6,
 * this library reads 6" where the compiler reloads it, as at -O1).
 */
TEST_F(insp, ring_version_refused_is_reported)
{
	struct shmpool_ring_info ri;
	struct shmpool_ring *r;
	unsigned int i, refused = 0, n = in_vm_lane() ? 20000 : 200000;
	uint32_t *ver;
	pid_t flipper;

	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(1, shmpool_ring_create(self->h, "q", SHMPOOL_RING_SPSC, 16, 8, 0, &r));
	ASSERT_EQ(0, shmpool_ring_inspect(self->ro, r->off, &ri));
	ver = &((struct __shmpool_ring_hdr *)((char *)shmpool_base(self->p) + r->off))->d.version;
	ASSERT_EQ(ri.version, *ver);
	fflush(NULL);
	flipper = fork();
	ASSERT_LE(0, flipper);
	if (!flipper) {
		volatile uint32_t *v = ver;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (i = 0;; i++)
			*v = ri.version + (i & 1);
	}
	/* the flipper is at it */
	while (*(volatile uint32_t *)ver == ri.version)
		;
	for (i = 0; i < n; i++) {
		if (shmpool_ring_inspect(self->ro, r->off, &ri) != -EPROTONOSUPPORT)
			continue;
		refused++;
		if (ri.version == __SHMPOOL_RING_VERSION)
			break;
	}
	hostile_flipper_stop(flipper);
	shmpool_ring_close(r);
	ASSERT_EQ(n, i) TH_LOG("call %u: refused version %u, which is this library's",
			       i, ri.version);
	ASSERT_LT(0U, refused);
}

/* ---- a peer's bytes under the inspection calls (issue 14's threat) -------------------- */

#define ERR_OK(ret, ...) ({							\
	int __r = (ret), __ok = 0;						\
	const int __allowed[] = { 0, __VA_ARGS__ };				\
	for (size_t __i = 0; __i < sizeof(__allowed) / sizeof(int); __i++)	\
		__ok |= __r == __allowed[__i];					\
	if (!__ok)								\
		fprintf(stderr, "# %s:%d: %s returned %d (%s)\n", __FILE__,	\
			__LINE__, #ret, __r, strerror(-__r));			\
	__ok; })

/*
 * One round of every inspection call on the read-only handle, as stat and
 * check make them: the documented errors only, entries inside the pool,
 * names NUL-terminated, fill levels within the ring. Non-zero: a verdict.
 */
static int inspect_round(struct insp_pool *ip)
{
	struct shmpool_heap_stats st;
	struct shmpool_obj_entry e;
	struct shmpool_ring_info ri;
	struct shmpool_config_info ci;
	struct shmpool_cache_stats cs;
	unsigned int pos = 0, n = 0, i;
	uint64_t offs[64 + 5];
	int ret;

	if (!ERR_OK(shmpool_heap_inspect(ip->ro, &st), -EUCLEAN, -ENODATA))
		return 10;
	while (!(ret = shmpool_obj_next(ip->ro, &pos, &e))) {
		if (++n > 64) {
			fprintf(stderr, "# obj_next: more than 64 entries\n");
			return 11;
		}
		if (!memchr(e.name, 0, sizeof(e.name)) || e.off >= ip->size ||
		    e.size > ip->size - e.off) {
			fprintf(stderr, "# obj_next: entry %u outside the pool or unterminated\n", n);
			return 12;
		}
		offs[n - 1] = e.off;
	}
	if (!ERR_OK(ret, -ENOENT, -ENODATA))
		return 13;
	for (i = 0; i < 5; i++)
		offs[n++] = ip->obj_off[i];
	for (i = 0; i < n; i++) {
		ret = shmpool_ring_inspect(ip->ro, offs[i], &ri);
		if (!ERR_OK(ret, -EINVAL, -EPROTOTYPE, -EPROTONOSUPPORT))
			return 14;
		if (!ret && ri.used > ri.count) {
			fprintf(stderr, "# ring_inspect: %u used of %u\n", ri.used, ri.count);
			return 15;
		}
		if (!ERR_OK(shmpool_config_inspect(ip->ro, offs[i], &ci),
			    -EINVAL, -EPROTOTYPE, -EUCLEAN))
			return 16;
		if (!ERR_OK(shmpool_cache_inspect(ip->ro, offs[i], &cs), -EINVAL, -EPROTOTYPE))
			return 17;
	}
	return 0;
}

/* What shmpoolctl check adds: the heap checker, through a read-write handle. */
static int check_round(struct insp_pool *ip)
{
	struct shmpool_heap *h;
	char msg[256];
	int ret;

	ret = shmpool_heap_open(ip->p, SHMPOOL_HEAP_NOCACHE, &h);
	if (!ERR_OK(ret, -EUCLEAN, -ETIMEDOUT))
		return 20;
	if (ret)
		return 0;
	shmpool_heap_set_lock_timeout(h, 200);
	ret = shmpool_heap_check(h, 0, msg, sizeof(msg));
	if (!ERR_OK(ret, -EUCLEAN, -ETIMEDOUT))
		return 21;
	ret = shmpool_heap_check(h, SHMPOOL_CHECK_QUIESCENT, msg, sizeof(msg));
	if (!ERR_OK(ret, -EUCLEAN, -ETIMEDOUT))
		return 22;
	if (ret && !memchr(msg, 0, sizeof(msg)))
		return 23;
	shmpool_heap_close(h);
	return 0;
}

struct insp_victim {
	struct insp_pool *ip;
	int rounds;
	bool check;
};

static int insp_victim(void *arg)
{
	struct insp_victim *v = arg;
	int i, ret;

	for (i = 0; i < v->rounds; i++) {
		ret = inspect_round(v->ip);
		if (!ret && v->check)
			ret = check_round(v->ip);
		if (ret)
			return ret;
	}
	return 0;
}

static int insp_run(void *arg, unsigned int t, char *why, size_t len)
{
	struct insp_victim *v = arg;
	unsigned int ms = (unsigned int)((v->rounds > 1 ? 10000 : 5000) * scale());
	char buf[128];

	/* with a flipper: the checker too, in every other trial (it takes the lock) */
	if (v->rounds > 1)
		v->check = t & 1;
	if (!hostile_run(insp_victim, v, ms, 0, buf))
		return 0;
	snprintf(why, len, "%s", buf);
	return -1;
}

/*
 * Random bytes and crafted values (counts at the maximum, offsets one
 * past, links to themselves, names without NUL) in each structure, then
 * every inspection call and the checker in a child under a watchdog: no
 * signal, no hang, only the documented errors, nothing outside the pool.
 */
TEST_F_TIMEOUT(insp, hostile_contents, 300)
{
	struct insp_pool ip = { .p = self->p, .ro = self->ro };
	struct insp_victim v = { .ip = &ip, .rounds = 1, .check = true };
	char why[768];
	int ret;

	ASSERT_EQ(0, shmpool_heap_open(self->p, SHMPOOL_HEAP_NOCACHE, &self->h));
	populate_kinds(_metadata, self->h, &ip);
	ret = insp_trials_run(&ip, insp_trials(400), hostile_seed(), false, insp_run, &v,
			      why, sizeof(why));
	free(ip.orig);
	ASSERT_EQ(0, ret) TH_LOG("%s", why);
}

/*
 * The same while a flipper keeps rewriting the structure's bytes during
 * the calls: a value checked and then read again must not take a call out
 * of the pool or into an unbounded loop.
 */
TEST_F_TIMEOUT(insp, hostile_contents_changing, 300)
{
	struct insp_pool ip = { .p = self->p, .ro = self->ro };
	struct insp_victim v = { .ip = &ip, .rounds = 20 };
	char why[768];
	int ret;

	ASSERT_EQ(0, shmpool_heap_open(self->p, SHMPOOL_HEAP_NOCACHE, &self->h));
	populate_kinds(_metadata, self->h, &ip);
	ret = insp_trials_run(&ip, insp_trials(60), hostile_seed() ^ 0xf11b, true, insp_run,
			      &v, why, sizeof(why));
	free(ip.orig);
	ASSERT_EQ(0, ret) TH_LOG("%s", why);
}

TEST_HARNESS_MAIN
