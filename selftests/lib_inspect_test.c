// SPDX-License-Identifier: GPL-2.0
/*
 * lib_inspect_test: the read-only introspection calls (shmpool_heap_inspect,
 * shmpool_obj_next, shmpool_ring/config/cache_inspect) on a read-only handle.
 */
#define _GNU_SOURCE
#include <errno.h>
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

TEST_HARNESS_MAIN
