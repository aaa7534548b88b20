/* lib_cache_test: the shared hash map cache (shmpool_cache.h): get/put/put-if-absent/delete/iterate against a model, several processes on their own and on shared keys, CLOCK eviction within the capacity, statistics, each bad input; memfd and device backends. */
// SPDX-License-Identifier: MIT
/*
 * Workers are processes (fork) by default; built with -DSHMPOOL_TEST_THREADS
 * (or under ThreadSanitizer) they are threads of the test process. Long
 * tests run for a number of operations or a time budget, whichever ends
 * first; nothing asserts on time. SHMPOOL_TEST_SCALE multiplies both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_cache.h"
#include "shmpool_sync.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"

#define POOL_BYTES	(8U << 20)
#define NR_WORKERS	3
#define NR_KEYS		400	/* per worker */
#define NR_SHARED	8	/* keys every worker hits */
#define VMAX		300
/* The cache's stripe locks: offset 72 of its object (lib/cache.c asserts it). */
#define STRIPES_OFF	72
#define NR_STRIPES	64
/* the bucket array: after the stripe locks (struct cache_shared in lib/cache.c) */
#define BUCKETS_OFF	(STRIPES_OFF + NR_STRIPES * sizeof(struct shmpool_mutex))

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* key "w<owner>.k<i>" */
static size_t key_make(char *k, int owner, int i)
{
	return (size_t)sprintf(k, "w%d.k%d", owner, i);
}

/*
 * A self-checking value for (@owner, @i) written with @seed: 4 bytes owner,
 * 4 bytes i, 8 bytes seed, filler from the seed, 4-byte sum. 20..VMAX bytes.
 */
static size_t val_make(uint8_t *v, int owner, int i, uint64_t seed)
{
	size_t n = 20 + (size_t)(seed % (VMAX - 19)), j;
	uint32_t sum = 0;

	memcpy(v, &owner, 4);
	memcpy(v + 4, &i, 4);
	memcpy(v + 8, &seed, 8);
	for (j = 16; j < n - 4; j++)
		v[j] = (uint8_t)(seed * 29 + j);
	for (j = 0; j < n - 4; j++)
		sum = sum * 31 + v[j];
	memcpy(v + n - 4, &sum, 4);
	return n;
}

/* 0 if @v (@n bytes) is a whole value of (@owner, @i); its seed in *@seed */
static int val_check(const uint8_t *v, size_t n, int owner, int i,
		     uint64_t *seed)
{
	uint8_t want[VMAX];

	if (n < 20 || n > VMAX)
		return -1;
	memcpy(seed, v + 8, 8);
	return val_make(want, owner, i, *seed) == n && !memcmp(want, v, n) ?
		0 : -1;
}

/* ---- fixture ------------------------------------------------------------------------ */

FIXTURE(cache) {
	char name[SHMPOOL_NAME_MAX];
	struct shmpool *p;
	struct shmpool_heap *h;
	struct shmpool_cache *c;
	uint64_t blocks0;	/* allocated blocks before the cache had entries */
};

FIXTURE_VARIANT(cache) {
	unsigned int backend;
};

FIXTURE_VARIANT_ADD(cache, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
};

FIXTURE_VARIANT_ADD(cache, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
};

FIXTURE_SETUP(cache)
{
	struct shmpool_heap_stats st;

	/* 6.1's harness would still run the test after SKIP() here */
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_ok())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	snprintf(self->name, sizeof(self->name), "cache.%d", (int)getpid());
	ASSERT_EQ(0, shmpool_create(self->name, POOL_BYTES, 0600,
				    variant->backend | SHMPOOL_EXCL, &self->p));
	ASSERT_EQ(0, shmpool_heap_open(self->p, 0, &self->h));
	ASSERT_EQ(0, shmpool_cache_open(self->h, "cache", 100000,
					SHMPOOL_CACHE_CREATE, &self->c));
	ASSERT_EQ(0, shmpool_heap_stats(self->h, &st));
	self->blocks0 = st.alloc_blocks;
}

FIXTURE_TEARDOWN(cache)
{
	shmpool_cache_close(self->c);
	shmpool_heap_close(self->h);
	shmpool_close(self->p);
	shmpool_unlink(self->name, variant->backend);
}

struct collect {
	char keys[4096][32];
	size_t len[4096];
	int n;
};

static int collect_key(const void *key, size_t klen, const void *val,
		       size_t vlen, void *arg)
{
	struct collect *co = arg;

	if (co->n < 4096 && klen < 32) {
		memcpy(co->keys[co->n], key, klen);
		co->len[co->n++] = klen;
	}
	return 0;
}

/* Delete every entry of @c; 0 if all went and the heap holds @blocks0 blocks again. */
static int empty_and_count(struct shmpool_heap *h, struct shmpool_cache *c,
			   uint64_t blocks0)
{
	static struct collect co;
	struct shmpool_heap_stats st;
	int n, i;

	do {
		co.n = 0;
		n = shmpool_cache_iterate(c, collect_key, &co);
		if (n < 0)
			return -1;
		for (i = 0; i < co.n; i++)
			if (shmpool_cache_delete(c, co.keys[i], co.len[i]))
				return -2;
	} while (n > 0);
	if (shmpool_heap_stats(h, &st))
		return -3;
	return st.alloc_blocks == blocks0 ? 0 : -4;
}

/* ---- basics --------------------------------------------------------------------------- */

TEST_F(cache, put_get_replace_delete)
{
	struct shmpool_cache_stats st;
	char v[16];

	EXPECT_EQ(-ENOENT, shmpool_cache_get(self->c, "a", 1, v, sizeof(v)));
	EXPECT_EQ(0, shmpool_cache_put(self->c, "a", 1, "one", 3, 0));
	EXPECT_EQ(3, shmpool_cache_get(self->c, "a", 1, v, sizeof(v)));
	EXPECT_EQ(0, memcmp(v, "one", 3));
	EXPECT_EQ(1, shmpool_cache_put(self->c, "a", 1, "three", 5, 0));
	EXPECT_EQ(5, shmpool_cache_get(self->c, "a", 1, v, sizeof(v)));
	EXPECT_EQ(0, memcmp(v, "three", 5));
	EXPECT_EQ(-EEXIST, shmpool_cache_put(self->c, "a", 1, "x", 1,
					     SHMPOOL_CACHE_IF_ABSENT));
	EXPECT_EQ(0, shmpool_cache_put(self->c, "b", 1, "", 0,
				       SHMPOOL_CACHE_IF_ABSENT));
	EXPECT_EQ(0, shmpool_cache_get(self->c, "b", 1, v, sizeof(v)));
	EXPECT_EQ(-EMSGSIZE, shmpool_cache_get(self->c, "a", 1, v, 4));
	/* keys are bytes: a NUL inside counts */
	EXPECT_EQ(0, shmpool_cache_put(self->c, "a\0b", 3, "z", 1, 0));
	EXPECT_EQ(5, shmpool_cache_get(self->c, "a", 1, v, sizeof(v)));
	EXPECT_EQ(0, shmpool_cache_delete(self->c, "a", 1));
	EXPECT_EQ(-ENOENT, shmpool_cache_delete(self->c, "a", 1));
	EXPECT_EQ(-ENOENT, shmpool_cache_get(self->c, "a", 1, v, sizeof(v)));
	EXPECT_EQ(1, shmpool_cache_get(self->c, "a\0b", 3, v, sizeof(v)));

	ASSERT_EQ(0, shmpool_cache_stats(self->c, &st));
	EXPECT_EQ(3U, st.inserts);
	EXPECT_EQ(1U, st.updates);
	EXPECT_EQ(1U, st.deletes);
	EXPECT_EQ(2U, st.entries);
	EXPECT_EQ(100000U, st.capacity);
	EXPECT_EQ(0U, st.evictions);
	EXPECT_EQ(2U, st.misses);
	EXPECT_EQ(6U, st.hits);		/* the EMSGSIZE get found the key */
	EXPECT_EQ(0, empty_and_count(self->h, self->c, self->blocks0));
}

TEST_F(cache, second_handle_and_reopen)
{
	struct shmpool_cache *c2;
	char v[8];

	ASSERT_EQ(0, shmpool_cache_put(self->c, "k", 1, "v", 1, 0));
	ASSERT_EQ(0, shmpool_cache_open(self->h, "cache", 0, 0, &c2));
	EXPECT_EQ(1, shmpool_cache_get(c2, "k", 1, v, sizeof(v)));
	EXPECT_EQ(0, shmpool_cache_close(c2));
	ASSERT_EQ(0, shmpool_cache_open(self->h, "cache", 100000,
					SHMPOOL_CACHE_CREATE, &c2));
	EXPECT_EQ(1, shmpool_cache_get(c2, "k", 1, v, sizeof(v)));
	EXPECT_EQ(0, shmpool_cache_close(c2));
}

/* ---- bad input ---------------------------------------------------------------------- */

TEST_F(cache, open_errors)
{
	struct shmpool_cache *c2;
	struct shmpool_obj obj;

	EXPECT_EQ(-ENOENT, shmpool_cache_open(self->h, "nope", 0, 0, &c2));
	EXPECT_EQ(-EINVAL, shmpool_cache_open(NULL, "x", 10, SHMPOOL_CACHE_CREATE, &c2));
	EXPECT_EQ(-EINVAL, shmpool_cache_open(self->h, "x", 10, SHMPOOL_CACHE_CREATE, NULL));
	EXPECT_EQ(-EINVAL, shmpool_cache_open(self->h, "x", 0, SHMPOOL_CACHE_CREATE, &c2));
	EXPECT_EQ(-EINVAL, shmpool_cache_open(self->h, "x", SHMPOOL_CACHE_CAP_MAX + 1,
					      SHMPOOL_CACHE_CREATE, &c2));
	EXPECT_EQ(-EINVAL, shmpool_cache_open(self->h, "x", 10, 1U << 4, &c2));
	EXPECT_EQ(-EEXIST, shmpool_cache_open(self->h, "cache", 10,
					      SHMPOOL_CACHE_CREATE, &c2));
	ASSERT_EQ(1, shmpool_obj_create(self->h, "small", 100, 0, &obj));
	EXPECT_EQ(-EUCLEAN, shmpool_cache_open(self->h, "small", 0, 0, &c2));
}

/*
 * A cache object whose creator died before stamping it: an open without a
 * capacity is -EAGAIN at once (shmpool_cache_open(3)); one with the
 * capacity finishes the creation.
 */
TEST_F(cache, unstamped_object_is_eagain_until_opened_with_capacity)
{
	struct shmpool_cache *c2;
	struct shmpool_obj obj;
	struct shmpool_cache_stats st;

	_Atomic uint64_t *ident;

	/* made by the cache's own create, then its identity word back at 0 */
	ASSERT_EQ(0, shmpool_cache_open(self->h, "half", 10, SHMPOOL_CACHE_CREATE, &c2));
	EXPECT_EQ(0, shmpool_cache_close(c2));
	ASSERT_EQ(0, shmpool_obj_find(self->h, "half", &obj));
	ident = shmpool_heap_ptr(self->h, obj.off, 8);
	ASSERT_NE(NULL, ident);
	atomic_store(ident, 0);
	EXPECT_EQ(-EAGAIN, shmpool_cache_open(self->h, "half", 0, 0, &c2));
	ASSERT_EQ(0, shmpool_cache_open(self->h, "half", 10, SHMPOOL_CACHE_CREATE, &c2));
	EXPECT_EQ(0, shmpool_cache_close(c2));
	ASSERT_EQ(0, shmpool_cache_open(self->h, "half", 0, 0, &c2));
	ASSERT_EQ(0, shmpool_cache_stats(c2, &st));
	EXPECT_EQ(10U, st.capacity);
	EXPECT_EQ(0, shmpool_cache_close(c2));
}

/*
 * A plain named object of a cache's size, not yet written (its first word
 * 0), is somebody else's: an open with a capacity must not stamp it a
 * cache (and then write a cache into it), with or without CREATE.
 * (It did: any unstamped object of the right size was taken.)
 */
static void plain_object_is_not_stamped(struct __test_metadata *_metadata,
					struct shmpool_heap *h, unsigned int flags)
{
	struct shmpool_cache *c2;
	uint8_t *b, want[BUCKETS_OFF + 64 * 8];

	/* the size of a cache for 10 entries: its header and 64 buckets */
	b = plain_object_make(h, "plain", sizeof(want), want);
	ASSERT_NE(NULL, b);
	EXPECT_EQ(-EUCLEAN, shmpool_cache_open(h, "plain", 10, flags, &c2));
	EXPECT_EQ(0, memcmp(want, b, sizeof(want)));
	/* and nobody will stamp it: not "being created" */
	EXPECT_EQ(-EUCLEAN, shmpool_cache_open(h, "plain", 0, 0, &c2));
}

TEST_F(cache, create_does_not_stamp_a_plain_object)
{
	plain_object_is_not_stamped(_metadata, self->h, SHMPOOL_CACHE_CREATE);
}

TEST_F(cache, open_with_capacity_does_not_stamp_a_plain_object)
{
	plain_object_is_not_stamped(_metadata, self->h, 0);
}

TEST_F(cache, bad_keys_and_values)
{
	static char big[SHMPOOL_CACHE_VALUE_MAX + 1];
	char v[8];

	EXPECT_EQ(-EINVAL, shmpool_cache_put(self->c, "", 0, "v", 1, 0));
	EXPECT_EQ(-EINVAL, shmpool_cache_put(self->c, NULL, 1, "v", 1, 0));
	EXPECT_EQ(-EINVAL, shmpool_cache_put(self->c, big,
					     SHMPOOL_CACHE_KEY_MAX + 1, "v", 1, 0));
	EXPECT_EQ(-EINVAL, shmpool_cache_put(self->c, "k", 1, big,
					     SHMPOOL_CACHE_VALUE_MAX + 1, 0));
	EXPECT_EQ(-EINVAL, shmpool_cache_put(self->c, "k", 1, NULL, 1, 0));
	EXPECT_EQ(-EINVAL, shmpool_cache_put(self->c, "k", 1, "v", 1, 1U << 3));
	EXPECT_EQ(-EINVAL, shmpool_cache_put(NULL, "k", 1, "v", 1, 0));
	EXPECT_EQ(-EINVAL, shmpool_cache_get(self->c, "", 0, v, sizeof(v)));
	EXPECT_EQ(-EINVAL, shmpool_cache_get(self->c, "k", 1, NULL, 1));
	EXPECT_EQ(-EINVAL, shmpool_cache_delete(self->c, "", 0));
	EXPECT_EQ(-EINVAL, shmpool_cache_iterate(self->c, NULL, NULL));
	EXPECT_EQ(-EINVAL, shmpool_cache_stats(self->c, NULL));
	/* the largest key and value are fine */
	EXPECT_EQ(0, shmpool_cache_put(self->c, big, SHMPOOL_CACHE_KEY_MAX, big,
				       SHMPOOL_CACHE_VALUE_MAX, 0));
	EXPECT_EQ(0, shmpool_cache_delete(self->c, big, SHMPOOL_CACHE_KEY_MAX));
}

TEST_F(cache, heap_full_is_enomem_and_changes_nothing)
{
	static char big[SHMPOOL_CACHE_VALUE_MAX];
	char k[32];
	int i, ret = 0;

	for (i = 0; i < 64 && !ret; i++)
		ret = shmpool_cache_put(self->c, k, key_make(k, 9, i), big,
					sizeof(big), 0);
	EXPECT_EQ(-ENOMEM, ret);
	EXPECT_EQ(-ENOENT, shmpool_cache_get(self->c, k, strlen(k), big, 1));
	EXPECT_EQ(0, empty_and_count(self->h, self->c, self->blocks0));
}

static int stop_at_3(const void *key, size_t klen, const void *val,
		     size_t vlen, void *arg)
{
	int *n = arg;

	return ++*n == 3 ? 77 : 0;
}

TEST_F(cache, iterate_stops_on_nonzero)
{
	char k[32];
	int i, n = 0;

	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, shmpool_cache_put(self->c, k, key_make(k, 0, i), "v", 1, 0));
	EXPECT_EQ(77, shmpool_cache_iterate(self->c, stop_at_3, &n));
	EXPECT_EQ(3, n);
}

/* ---- eviction ----------------------------------------------------------------------- */

/* Inserting beyond the capacity evicts: the count stays within it, stats add up. */
TEST_F(cache, eviction_keeps_within_capacity)
{
	struct shmpool_cache_stats st;
	struct shmpool_cache *c;
	char k[32];
	int i;

	ASSERT_EQ(0, shmpool_cache_open(self->h, "small", 100,
					SHMPOOL_CACHE_CREATE, &c));
	for (i = 0; i < 300; i++) {
		ASSERT_EQ(0, shmpool_cache_put(c, k, key_make(k, 0, i), "v", 1, 0));
		ASSERT_EQ(0, shmpool_cache_stats(c, &st));
		ASSERT_GE(100U, st.entries);
	}
	EXPECT_EQ(300U, st.inserts);
	EXPECT_EQ(100U, st.entries);
	EXPECT_EQ(200U, st.evictions);
	EXPECT_EQ(100, shmpool_cache_iterate(c, stop_at_3, &(int){ -1000 }));
	EXPECT_EQ(0, empty_and_count(self->h, c, self->blocks0));
	shmpool_cache_close(c);
}

/* CLOCK gives a recently used entry a second chance over unused ones. */
TEST_F(cache, eviction_spares_recently_used)
{
	struct shmpool_cache *c;
	char k[32], v[8];
	int i;

	ASSERT_EQ(0, shmpool_cache_open(self->h, "small", 64,
					SHMPOOL_CACHE_CREATE, &c));
	for (i = 0; i < 64; i++)
		ASSERT_EQ(0, shmpool_cache_put(c, k, key_make(k, 0, i), "v", 1, 0));
	for (i = 0; i < 64; i += 2)	/* use the even keys */
		ASSERT_EQ(1, shmpool_cache_get(c, k, key_make(k, 0, i), v, sizeof(v)));
	for (i = 64; i < 64 + 8; i++)	/* evicts 8: within one sweep */
		ASSERT_EQ(0, shmpool_cache_put(c, k, key_make(k, 0, i), "v", 1, 0));
	for (i = 0; i < 64; i += 2)
		EXPECT_EQ(1, shmpool_cache_get(c, k, key_make(k, 0, i), v, sizeof(v)))
			TH_LOG("used key %d was evicted", i);
	shmpool_cache_close(c);
}

/* ---- against a model ------------------------------------------------------------------- */

struct work_arg {
	struct shmpool_heap *h;
	struct shmpool_cache *c;
	int owner;
	uint64_t budget_ms;
	uint64_t ops;
	atomic_int *stop;
};

/*
 * Random ops on the keys of @owner against a local model, and on the
 * shared keys with self-checking values; verifies every result and, at
 * the end, the whole model. 0 on success, else a code saying what failed.
 */
static int worker(void *a)
{
	struct work_arg *w = a;
	static _Thread_local uint64_t model[NR_KEYS];	/* seed + 1, 0 = absent */
	uint64_t s = 0x9e3779b97f4a7c15ULL * (uint64_t)(w->owner + 1), seed;
	uint64_t end = now_ms() + w->budget_ms, op;
	uint8_t v[VMAX], got[VMAX];
	char k[32];
	size_t kn, vn;
	int i, ret;

	memset(model, 0, sizeof(model));
	for (op = 0; op < w->ops && (op & 255 || now_ms() < end); op++) {
		uint64_t r = rnd(&s) % 100;
		int shared = rnd(&s) % 8 == 0;
		int owner = shared ? 99 : w->owner;

		i = (int)(rnd(&s) % (shared ? NR_SHARED : NR_KEYS));
		kn = key_make(k, owner, i);
		if (r < 40) {
			ret = shmpool_cache_get(w->c, k, kn, got, sizeof(got));
			if (shared) {
				if (ret >= 0 && val_check(got, (size_t)ret, owner, i, &seed))
					return 10;	/* torn or freed value */
				if (ret < 0 && ret != -ENOENT)
					return 11;
			} else if (model[i]) {
				if (ret < 0 || val_check(got, (size_t)ret, owner, i, &seed) ||
				    seed + 1 != model[i])
					return 12;	/* lost update */
			} else if (ret != -ENOENT) {
				return 13;
			}
		} else if (r < 75) {
			unsigned int fl = r < 55 ? 0 : SHMPOOL_CACHE_IF_ABSENT;

			seed = rnd(&s) >> 1;
			vn = val_make(v, owner, i, seed);
			ret = shmpool_cache_put(w->c, k, kn, v, vn, fl);
			if (shared) {
				if (ret < 0 && ret != -EEXIST)
					return 14;
			} else if (fl && model[i]) {
				if (ret != -EEXIST)
					return 15;
			} else {
				if (ret != (model[i] ? 1 : 0))
					return 16;
				model[i] = seed + 1;
			}
		} else {
			ret = shmpool_cache_delete(w->c, k, kn);
			if (shared) {
				if (ret && ret != -ENOENT)
					return 17;
			} else {
				if (ret != (model[i] ? 0 : -ENOENT))
					return 18;
				model[i] = 0;
			}
		}
	}
	for (i = 0; i < NR_KEYS; i++) {
		kn = key_make(k, w->owner, i);
		ret = shmpool_cache_get(w->c, k, kn, got, sizeof(got));
		if (model[i] ? ret < 0 || val_check(got, (size_t)ret, w->owner, i,
						   &seed) || seed + 1 != model[i]
			     : ret != -ENOENT)
			return 19;
	}
	return 0;
}

/*
 * Several processes at once: each against its own model on its own keys
 * (no lost updates), all on a few shared keys (every value read is whole:
 * nothing read was freed under the reader); then the heap is consistent and
 * emptying the cache gives back every block.
 */
TEST_F_TIMEOUT(cache, processes_against_models, 120)
{
	struct work_arg wa[NR_WORKERS];
	struct task t[NR_WORKERS];
	struct shmpool_cache_stats st;
	char msg[256];
	int i;

	for (i = 0; i < NR_WORKERS; i++) {
		wa[i] = (struct work_arg){ .h = self->h, .c = self->c, .owner = i,
			.budget_ms = (uint64_t)(3000 * scale()),
			.ops = (uint64_t)(300000 * scale()) };
		ASSERT_EQ(0, task_start(&t[i], worker, &wa[i]));
	}
	for (i = 0; i < NR_WORKERS; i++)
		EXPECT_EQ(0, task_join(&t[i])) TH_LOG("worker %d", i);
	ASSERT_EQ(0, shmpool_cache_stats(self->c, &st));
	EXPECT_EQ(st.inserts - st.deletes, st.entries);
	EXPECT_LT(0U, st.hits);
	EXPECT_EQ(0, shmpool_heap_check(self->h, SHMPOOL_CHECK_QUIESCENT, msg,
					 sizeof(msg))) TH_LOG("%s", msg);
	EXPECT_EQ(0, empty_and_count(self->h, self->c, self->blocks0));
	TH_LOG("%llu hits, %llu misses, %llu inserts, %llu updates, %llu deletes",
	       (unsigned long long)st.hits, (unsigned long long)st.misses,
	       (unsigned long long)st.inserts, (unsigned long long)st.updates,
	       (unsigned long long)st.deletes);
}

/* The same with a small capacity: eviction races with everything, values stay whole. */
static int shared_only(void *a)
{
	struct work_arg *w = a;
	uint64_t s = 77 + (uint64_t)w->owner, seed, end = now_ms() + w->budget_ms, op;
	uint8_t v[VMAX];
	char k[32];
	size_t kn;
	int i, ret;

	for (op = 0; op < w->ops && (op & 255 || now_ms() < end); op++) {
		i = (int)(rnd(&s) % 200);
		kn = key_make(k, 5, i);
		switch (rnd(&s) % 3) {
		case 0:
			ret = shmpool_cache_get(w->c, k, kn, v, sizeof(v));
			if (ret >= 0 && val_check(v, (size_t)ret, 5, i, &seed))
				return 20;
			if (ret < 0 && ret != -ENOENT)
				return 21;
			break;
		case 1:
			ret = shmpool_cache_put(w->c, k, kn, v,
						val_make(v, 5, i, rnd(&s) >> 1), 0);
			if (ret < 0)
				return 22;
			break;
		default:
			ret = shmpool_cache_delete(w->c, k, kn);
			if (ret && ret != -ENOENT)
				return 23;
		}
	}
	return 0;
}

TEST_F_TIMEOUT(cache, eviction_races_stay_whole_and_bounded, 120)
{
	struct work_arg wa[NR_WORKERS];
	struct task t[NR_WORKERS];
	struct shmpool_cache_stats st;
	struct shmpool_cache *c;
	int i;

	ASSERT_EQ(0, shmpool_cache_open(self->h, "small", 50,
					SHMPOOL_CACHE_CREATE, &c));
	for (i = 0; i < NR_WORKERS; i++) {
		wa[i] = (struct work_arg){ .h = self->h, .c = c, .owner = i,
			.budget_ms = (uint64_t)(2000 * scale()),
			.ops = (uint64_t)(200000 * scale()) };
		ASSERT_EQ(0, task_start(&t[i], shared_only, &wa[i]));
	}
	for (i = 0; i < NR_WORKERS; i++)
		EXPECT_EQ(0, task_join(&t[i])) TH_LOG("worker %d", i);
	ASSERT_EQ(0, shmpool_cache_stats(c, &st));
	EXPECT_GE(50U, st.entries);
	EXPECT_EQ(st.inserts - st.deletes - st.evictions, st.entries);
	EXPECT_LT(0U, st.evictions);
	EXPECT_EQ(0, empty_and_count(self->h, c, self->blocks0));
	shmpool_cache_close(c);
}

#ifndef SHMPOOL_TEST_THREADS
/* Put, get and delete keys until killed: mostly inside a stripe's lock. */
struct churn {
	struct shmpool_cache *c;
	unsigned int seed;
};

static void cache_churn(void *arg, _Atomic uint64_t *progress)
{
	struct shmpool_cache *c = ((struct churn *)arg)->c;
	static char val[2048];
	char key[16];
	unsigned int i;
	int j;

	for (i = ((struct churn *)arg)->seed;; i = i * 1103515245U + 12345U) {
		snprintf(key, sizeof(key), "k%u", i % 64);
		if (i & 0x100) {
			shmpool_cache_delete(c, key, strlen(key));
			continue;
		}
		shmpool_cache_put(c, key, strlen(key), val, sizeof(val), 0);
		for (j = 0; j < 16; j++)	/* copies out under the lock */
			shmpool_cache_get(c, key, strlen(key), val, sizeof(val));
		atomic_fetch_add(progress, 1);
	}
}


static struct shmpool_mutex *stripes(struct shmpool_heap *h, const char *name)
{
	struct shmpool_obj obj;

	if (shmpool_obj_find(h, name, &obj))
		return NULL;
	return shmpool_heap_ptr(h, obj.off + STRIPES_OFF,
				NR_STRIPES * sizeof(struct shmpool_mutex));
}

/* How many stripe locks name an owner that is dead. */
static int stripes_of_the_dead(struct shmpool *p, struct shmpool_mutex *st)
{
	uint32_t owner;
	int i, n = 0;

	for (i = 0; i < NR_STRIPES; i++) {
		owner = atomic_load(&st[i].word) & SHMPOOL_MUTEX_OWNER_MASK;
		if (owner && shmpool_peer_alive(p, owner) == 0)
			n++;
	}
	return n;
}

/*
 * Processes killed at random points of their puts and deletes: a stripe
 * lock they held is taken over by the next user, and every key still
 * works afterwards (a chain is whole at every instruction).
 */
TEST_F_TIMEOUT(cache, killed_stripe_holders_are_recovered_from, 120)
{
	struct shmpool_mutex *st = stripes(self->h, "cache");
	struct churn ch = { self->c, 0 };
	int round, i, held = 0;
	char key[16], v[8];

	ASSERT_NE(NULL, st);
	for (round = 0; round < 30; round++) {
		ch.seed = (unsigned int)round + 1;
		ASSERT_EQ(0, kill_midway(cache_churn, &ch, 20,
					 2000 + (unsigned int)(round * 997 % 15000)));
		held += stripes_of_the_dead(self->p, st) > 0;
		for (i = 0; i < 64; i++) {
			snprintf(key, sizeof(key), "k%d", i);
			ASSERT_LE(0, shmpool_cache_put(self->c, key, strlen(key), "v", 1, 0));
			ASSERT_EQ(1, shmpool_cache_get(self->c, key, strlen(key), v, sizeof(v)));
			ASSERT_EQ(0, shmpool_cache_delete(self->c, key, strlen(key)));
		}
		/* every stripe the dead held was taken over on the way */
		ASSERT_EQ(0, stripes_of_the_dead(self->p, st)) TH_LOG("round %d", round);
	}
	TH_LOG("%d of 30 kills left a stripe lock held", held);
	EXPECT_LT(0, held);
}

/* Flags that the processes of the PID namespace test share. */
struct ns_flags {
	atomic_int ready, go, got;
};

struct ns_arg {
	struct shmpool_cache *c;
	struct ns_flags *f;
};

/* iterate callback: hold the stripe of the first entry until f->go */
static int hold_stripe(const void *key, size_t klen, const void *val,
		       size_t vlen, void *arg)
{
	struct ns_flags *f = arg;

	atomic_store(&f->ready, 1);
	while (!atomic_load(&f->go))
		usleep(1000);
	return 1;
}

static int pidns_stripe_holder(void *a)
{
	struct ns_arg *n = a;

	return shmpool_cache_iterate(n->c, hold_stripe, n->f) == 1 ? 0 : 2;
}

static int stripe_getter(void *a)
{
	struct ns_arg *n = a;
	char v[8];

	if (shmpool_cache_get(n->c, "k", 1, v, sizeof(v)) != 1)
		return 2;
	atomic_store(&n->f->got, 1);
	return 0;
}

/*
 * A stripe holder alive in another PID namespace is waited for, not taken
 * over (device): a get on its stripe is still blocked after 1.5 s (many
 * owner checks), and completes once the holder lets go.
 */
TEST_F_TIMEOUT(cache, pidns_live_stripe_holder_waited_for, 60)
{
	struct ns_flags *f;
	struct ns_arg n;
	struct task g;
	pid_t a;

	if (!attachments_exact(self->p))
		SKIP(return, "owners are process ids here (memfd, or no attachments)");
	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, f);
	n = (struct ns_arg){ self->c, f };
	ASSERT_EQ(0, shmpool_cache_put(self->c, "k", 1, "v", 1, 0));
	a = pidns_start(pidns_stripe_holder, &n);
	if (a < 0 && (errno == EPERM || errno == EINVAL || errno == ENOSYS)) {
		munmap(f, sizeof(*f));
		SKIP(return, "no PID namespaces here: %s", strerror(errno));
	}
	ASSERT_LT(0, a);
	while (!atomic_load(&f->ready))
		usleep(1000);
	ASSERT_EQ(0, task_start(&g, stripe_getter, &n));
	usleep(1500 * 1000);
	EXPECT_EQ(0, atomic_load(&f->got));
	atomic_store(&f->go, 1);
	EXPECT_EQ(0, pidns_join(a));
	EXPECT_EQ(0, task_join(&g));
	EXPECT_EQ(1, atomic_load(&f->got));
	munmap(f, sizeof(*f));
}

/*
 * A stripe holder alive (here: inside an iterate callback) does not hang
 * us: get, put and delete on its stripe give up at the heap handle's lock
 * timeout with -ETIMEDOUT and change nothing (the old code waited for as
 * long as the holder lived), and work once it lets go.
 */
TEST_F_TIMEOUT(cache, live_stripe_holder_times_calls_out, 60)
{
	struct ns_flags *f;
	char v[8] = { 0 };
	int status;
	pid_t pid;

	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, f);
	ASSERT_EQ(0, shmpool_cache_put(self->c, "k", 1, "v", 1, 0));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(shmpool_cache_iterate(self->c, hold_stripe, f) == 1 ? 0 : 2);
	while (!atomic_load(&f->ready))
		usleep(1000);
	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, 200));
	EXPECT_EQ(-ETIMEDOUT, shmpool_cache_get(self->c, "k", 1, v, sizeof(v)));
	EXPECT_EQ(-ETIMEDOUT, shmpool_cache_put(self->c, "k", 1, "w", 1, 0));
	EXPECT_EQ(-ETIMEDOUT, shmpool_cache_delete(self->c, "k", 1));
	atomic_store(&f->go, 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, status);
	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, -1));
	EXPECT_EQ(1, shmpool_cache_get(self->c, "k", 1, v, sizeof(v)));
	EXPECT_EQ('v', v[0]);
	EXPECT_EQ(0, shmpool_cache_delete(self->c, "k", 1));
	EXPECT_EQ(0, shmpool_heap_check(self->h, SHMPOOL_CHECK_QUIESCENT, NULL, 0));
	munmap(f, sizeof(*f));
}

/* iterate callback: visit, nothing else */
static int visit(const void *key, size_t klen, const void *val, size_t vlen,
		 void *arg)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	(void)arg;
	return 0;
}

/*
 * A peer writes this very thread (attachment id and thread id) into every
 * stripe lock, as a thread of ours whose id was recycled would leave them:
 * a cache call holds no stripe on entry, so each claim is stale and is
 * taken over as from a dead holder; nothing is lost. The old code answered
 * -EDEADLK for as long as this thread lived.
 */
TEST_F(cache, stripes_naming_this_thread_are_taken_over)
{
	struct shmpool_mutex *st = stripes(self->h, "cache");
	uint32_t tid = (uint32_t)syscall(SYS_gettid);
	int i, id = shmpool_attach_id(self->p);
	char v[8] = { 0 };

	ASSERT_NE(NULL, st);
	ASSERT_LT(0, id);
	ASSERT_EQ(0, shmpool_cache_put(self->c, "k", 1, "v", 1, 0));
	ASSERT_EQ(0, shmpool_heap_set_lock_timeout(self->h, 200));
	for (i = 0; i < NR_STRIPES; i++) {
		atomic_store(&st[i].word, (uint32_t)id | (i & 1 ? SHMPOOL_MUTEX_WAITERS : 0));
		atomic_store(&st[i].tid, tid);
	}
	EXPECT_EQ(1, shmpool_cache_get(self->c, "k", 1, v, sizeof(v)));
	EXPECT_EQ('v', v[0]);
	EXPECT_EQ(0, shmpool_cache_put(self->c, "k2", 2, "w", 1, 0));
	EXPECT_EQ(0, shmpool_cache_delete(self->c, "k", 1));
	EXPECT_EQ(1, shmpool_cache_iterate(self->c, visit, NULL));
	for (i = 0; i < NR_STRIPES; i++)
		EXPECT_EQ(0U, atomic_load(&st[i].word)) TH_LOG("stripe %d", i);
	EXPECT_EQ(0, shmpool_heap_check(self->h, SHMPOOL_CHECK_QUIESCENT, NULL, 0));
}

/* iterate callback: a get of the entry it is shown, against the rule */
static int get_in_callback(const void *key, size_t klen, const void *val,
			   size_t vlen, void *arg)
{
	char v[8];

	(void)val;
	(void)vlen;
	return shmpool_cache_get(arg, key, klen, v, sizeof(v));
}

/*
 * A callback that calls the cache (which it must not) on the stripe being
 * walked gets -EDEADLK: that stripe is held by this thread for real, and
 * is never taken over from under the walk as a stale claim would be.
 */
TEST_F(cache, get_from_iterate_callback_is_edeadlk)
{
	char v[8] = { 0 };

	ASSERT_EQ(0, shmpool_cache_put(self->c, "k", 1, "v", 1, 0));
	EXPECT_EQ(-EDEADLK, shmpool_cache_iterate(self->c, get_in_callback, self->c));
	EXPECT_EQ(1, shmpool_cache_get(self->c, "k", 1, v, sizeof(v)));
	EXPECT_EQ('v', v[0]);
	EXPECT_EQ(0, shmpool_heap_check(self->h, SHMPOOL_CHECK_QUIESCENT, NULL, 0));
}

#define FIX_BUCKETS	131072U	/* the fixture's capacity 100000, rounded up */
#define BIG_VALUE	9000U	/* above SHMPOOL_HEAP_SMALL_MAX: a general block */

/* lib/cache.c's bucket of @key: FNV-1a 64, masked */
static uint32_t bucket_of(const char *key)
{
	uint64_t h = 14695981039346656037ULL;

	while (*key)
		h = (h ^ (unsigned char)*key++) * 1099511628211ULL;
	return (uint32_t)h & (FIX_BUCKETS - 1);
}

/*
 * A peer links a bucket to a cache entry that was deleted (its heap block
 * is free, but it still carries the entry's tag, lengths and key). A put
 * of a key of that bucket walks past it and must not write its link into
 * the free block (README, "Trust between processes": an entry is written
 * only if the heap says it is an allocated block big enough for it): the
 * free block's first bytes are the heap's free-list links. -EUCLEAN, the
 * block untouched, the heap whole.
 */
TEST_F(cache, put_never_links_into_a_freed_entry)
{
	static char big[BIG_VALUE];
	struct shmpool_obj obj;
	uint64_t *bucket, f = 0, was[4];
	uint32_t b;
	char msg[160] = "";

	ASSERT_EQ(0, shmpool_obj_find(self->h, "cache", &obj));
	bucket = shmpool_heap_ptr(self->h, obj.off + BUCKETS_OFF, FIX_BUCKETS * 8);
	ASSERT_NE(NULL, bucket);
	ASSERT_EQ(0, shmpool_cache_put(self->c, "big", 3, big, sizeof(big), 0));
	/* keeps the freed block from merging with the free space after it */
	ASSERT_EQ(0, shmpool_cache_put(self->c, "pin", 3, big, sizeof(big), 0));
	f = bucket[bucket_of("big")];
	ASSERT_NE(0ULL, (unsigned long long)f);
	ASSERT_EQ(0, shmpool_cache_delete(self->c, "big", 3));
	ASSERT_GT(0, shmpool_alloc_size(self->h, f));	/* free now */
	b = bucket_of("new");
	ASSERT_NE(b, bucket_of("pin"));
	bucket[b] = f;					/* the peer's write */
	memcpy(was, shmpool_heap_ptr(self->h, f, sizeof(was)), sizeof(was));

	EXPECT_EQ(-EUCLEAN, shmpool_cache_put(self->c, "new", 3, "v", 1, 0));
	EXPECT_EQ(0, memcmp(was, shmpool_heap_ptr(self->h, f, sizeof(was)), sizeof(was)))
		TH_LOG("the put wrote into the free block at 0x%llx", (unsigned long long)f);
	bucket[b] = 0;					/* the peer undoes its link */
	EXPECT_EQ(0, shmpool_heap_check(self->h, 0, msg, sizeof(msg))) TH_LOG("%s", msg);
}

/* iterate callback: count the calls */
static int count_calls(const void *key, size_t klen, const void *val,
		       size_t vlen, void *arg)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	(*(unsigned int *)arg)++;
	return 0;
}

/*
 * A peer links every bucket to the one entry of the cache. Each chain is
 * short and has no cycle, but an entry sits only on the chain of its own
 * hash: on any other it is damage (-EUCLEAN), not another entry to call
 * back for. Before, one iterate called back 131072 times for one entry
 * (a bigger table and longer chains: for ever, and the int count wraps).
 */
TEST_F(cache, iterate_never_visits_an_entry_twice)
{
	struct shmpool_obj obj;
	uint64_t *bucket, e;
	unsigned int calls = 0, i;

	ASSERT_EQ(0, shmpool_obj_find(self->h, "cache", &obj));
	bucket = shmpool_heap_ptr(self->h, obj.off + BUCKETS_OFF, FIX_BUCKETS * 8);
	ASSERT_NE(NULL, bucket);
	ASSERT_EQ(0, shmpool_cache_put(self->c, "k", 1, "v", 1, 0));
	e = bucket[bucket_of("k")];
	ASSERT_NE(0ULL, (unsigned long long)e);
	for (i = 0; i < FIX_BUCKETS; i++)
		bucket[i] = e;				/* the peer's writes */

	EXPECT_EQ(-EUCLEAN, shmpool_cache_iterate(self->c, count_calls, &calls));
	EXPECT_GE(1U, calls);
	for (i = 0; i < FIX_BUCKETS; i++)
		if (i != bucket_of("k"))
			bucket[i] = 0;			/* the peer undoes it */
	calls = 0;
	EXPECT_EQ(1, shmpool_cache_iterate(self->c, count_calls, &calls));
	EXPECT_EQ(1U, calls);
}
#endif

/* ---- killed at every instruction ---------------------------------------------------- */

/*
 * A process single-stepped through a put or a delete and SIGKILLed after
 * k instructions, for every k (lib_test.h, KILL_AT_EVERY_STEP). What the
 * header promises, at every kill point: the next caller gets the stripe
 * (no error), every key reads whole (the victim's key: its old value or
 * its new one), a walk finds every entry once, and a death leaves at most
 * one heap block the cache no longer reaches and the entry count at most
 * one off; put, get and delete then work.
 */
#define CKS_KEYS	4	/* k0..k3 on the table; the victim works k1 or "new" */

enum cks_op { CKS_INSERT, CKS_REPLACE, CKS_DELETE };

struct cks {
	struct shmpool *p;
	struct shmpool_heap *h;
	struct shmpool_cache *c;
	enum cks_op op;
	uint64_t blocks0;
	long leaked, drift;	/* unreached blocks, entry count off, so far */
};

/* value of key @key in version @v: 40..70 bytes, each says whose it is */
static size_t cks_val(char *b, const char *key, int v)
{
	size_t n = 40 + (strlen(key) * 7 + (size_t)v * 13) % 31, i;

	for (i = 0; i < n; i++)
		b[i] = (char)(key[0] + key[1] + v * 3 + (int)i);
	return n;
}

static int cks_victim(void *arg)
{
	struct cks *s = arg;
	char v[128];
	size_t n;

	if (shmpool_attach_id(s->p) <= 0)
		return 2;
	/* unstepped: our thread cache made, holding objects of the entries' classes */
	if (shmpool_cache_put(s->c, "wx", 2, v, cks_val(v, "wx", 1), 0) ||
	    shmpool_cache_put(s->c, "wxy", 3, v, cks_val(v, "wxy", 1), 0) ||
	    shmpool_cache_delete(s->c, "wx", 2) || shmpool_cache_delete(s->c, "wxy", 3))
		return 2;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL))
		return 3;
	raise(SIGSTOP);
	switch (s->op) {
	case CKS_INSERT:
		n = cks_val(v, "new", 1);
		return shmpool_cache_put(s->c, "new", 3, v, n, 0) == 0 ? 0 : 4;
	case CKS_REPLACE:
		n = cks_val(v, "k1", 1);
		return shmpool_cache_put(s->c, "k1", 2, v, n, 0) == 1 ? 0 : 4;
	case CKS_DELETE:
		return shmpool_cache_delete(s->c, "k1", 2) ? 4 : 0;
	}
	return 5;
}

static int cks_count(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
	(void)key;
	(void)klen;
	(void)val;
	(void)vlen;
	(*(long *)arg)++;
	return 0;
}

/* @key reads whole: 1 with version 0's value, 2 with version 1's, 0 absent, -1 */
static int cks_get(struct shmpool_cache *c, const char *key)
{
	char got[VMAX], want[128];
	int ret = shmpool_cache_get(c, key, strlen(key), got, sizeof(got)), v;

	if (ret == -ENOENT)
		return 0;
	for (v = 0; v < 2 && ret >= 0; v++)
		if ((size_t)ret == cks_val(want, key, v) && !memcmp(got, want, (size_t)ret))
			return v + 1;
	return -1;
}

static int cks_killed_at(struct __test_metadata *_metadata, struct cks *s, long k)
{
	static const char *const keys[CKS_KEYS] = { "k0", "k1", "k2", "k3" };
	struct shmpool_cache_stats cs;
	struct shmpool_heap_stats st;
	char v[128];
	long walked = 0, present = 0, leaked, drift;
	int killed, i, r;

	/* the table as the victim finds it: k0..k3 at version 0, no "new" */
	for (i = 0; i < CKS_KEYS; i++)
		if (shmpool_cache_put(s->c, keys[i], 2, v, cks_val(v, keys[i], 0), 0) < 0)
			return -1;
	shmpool_cache_delete(s->c, "new", 3);
	killed = step_and_kill(cks_victim, s, k);
	STEP_CHECK(killed >= 0, "the victim failed");
	for (i = 0; i < CKS_KEYS; i++) {
		r = cks_get(s->c, keys[i]);
		STEP_CHECK(r >= 0, "%s: not a whole value", keys[i]);
		STEP_CHECK(r == 1 || (i == 1 && s->op == CKS_REPLACE) ||
			 (i == 1 && s->op == CKS_DELETE && r == 0),
			 "%s: %d", keys[i], r);
		present += r > 0;
	}
	r = cks_get(s->c, "new");
	STEP_CHECK(r == 0 || (s->op == CKS_INSERT && r == 2), "new: %d", r);
	present += r > 0;
	r = shmpool_cache_iterate(s->c, cks_count, &walked);
	STEP_CHECK(r == walked && walked == present, "walk %d, %ld entries, %ld keys", r,
		 walked, present);
	/* the bounds: per death one block unreached, the count one off */
	shmpool_heap_reclaim(s->h, 0);	/* the dead one's cached objects */
	STEP_CHECK(!shmpool_heap_stats(s->h, &st), "heap stats");
	STEP_CHECK(!shmpool_cache_stats(s->c, &cs), "cache stats");
	leaked = (long)(st.alloc_blocks - s->blocks0) - walked;
	drift = (long)cs.entries - walked;
	STEP_CHECK(leaked >= s->leaked && leaked <= s->leaked + 1,
		 "%ld blocks unreached, %ld before", leaked, s->leaked);
	STEP_CHECK(drift >= s->drift - 1 && drift <= s->drift + 1,
		 "entry count %ld off, %ld before", drift, s->drift);
	s->leaked = leaked;
	s->drift = drift;
	STEP_CHECK(!shmpool_heap_check(s->h, 0, NULL, 0), "heap check");
	/* and the cache works */
	STEP_CHECK(shmpool_cache_put(s->c, "k1", 2, v, cks_val(v, "k1", 0), 0) >= 0, "put");
	STEP_CHECK(cks_get(s->c, "k1") == 1, "get");
	STEP_CHECK(!shmpool_cache_delete(s->c, "k1", 2), "delete");
	STEP_CHECK(cks_get(s->c, "k1") == 0, "get after delete");
	return killed;
}

static void cks_everywhere(struct __test_metadata *_metadata, FIXTURE_DATA(cache) *self,
			   enum cks_op op)
{
	struct cks s = { self->p, self->h, self->c, op, self->blocks0, 0, 0 };
	long k;

#ifdef SHMPOOL_TEST_THREADS
	SKIP(return, "needs callers in other processes");
#endif
	KILL_AT_EVERY_STEP(self->p, k, cks_killed_at(_metadata, &s, k));
	TH_LOG("%ld heap blocks left unreached, entry count %ld off", s.leaked, s.drift);
}

TEST_F_TIMEOUT(cache, insert_killed_at_every_step, 600)
{
	cks_everywhere(_metadata, self, CKS_INSERT);
}

TEST_F_TIMEOUT(cache, replace_killed_at_every_step, 600)
{
	cks_everywhere(_metadata, self, CKS_REPLACE);
}

TEST_F_TIMEOUT(cache, delete_killed_at_every_step, 600)
{
	cks_everywhere(_metadata, self, CKS_DELETE);
}

TEST_HARNESS_MAIN
