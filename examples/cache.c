// SPDX-License-Identifier: MIT
/*
 * cache: worker processes share the results of an expensive computation.
 *
 * Shows: a shared hash map in a pool (shmpool_cache_open()), the
 * look-aside pattern "get; on a miss compute and put", one worker reusing
 * what another computed, shmpool_cache_put() with SHMPOOL_CACHE_IF_ABSENT
 * when two workers computed the same key at once (the first one wins; both
 * values are equal anyway), and the shared statistics.
 *
 * The parent creates the cache and forks WORKERS children; each looks up
 * KEYS keys ("fib:N", the value the N-th Fibonacci number mod 2^64,
 * computed the slow way on a miss) in its own order, twice over. The
 * parent checks that every value is right, that there were no more misses
 * than there are keys times workers, and that the second pass only hit.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_cache.h>

#include "example.h"

#define POOL_BYTES	(1U << 20)
#define WORKERS		3
#define KEYS		64

static uint64_t fib(unsigned int n)
{
	uint64_t a = 0, b = 1, t;

	while (n--) {
		t = a + b;
		a = b;
		b = t;
	}
	return a;
}

/* One lookup: 0 if the value is right, else -errno or -EBADMSG. */
static int lookup(struct shmpool_cache *c, unsigned int n)
{
	char key[32];
	uint64_t v;
	int klen, ret;

	klen = snprintf(key, sizeof(key), "fib:%u", n);
	ret = shmpool_cache_get(c, key, (size_t)klen, &v, sizeof(v));
	if (ret == -ENOENT) {
		v = fib(n);	/* the expensive part, done once per key (mostly) */
		ret = shmpool_cache_put(c, key, (size_t)klen, &v, sizeof(v),
					SHMPOOL_CACHE_IF_ABSENT);
		if (ret == -EEXIST)	/* another worker was quicker */
			ret = 0;
		return ret;
	}
	if (ret < 0)
		return ret;
	return ret == sizeof(v) && v == fib(n) ? 0 : -EBADMSG;
}

static int worker(struct shmpool *p, int w)
{
	struct shmpool_cache *c = NULL;
	struct shmpool_heap *h = NULL;
	unsigned int i, pass;
	int ret;

	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = shmpool_cache_open(h, "fib", 0, 0, &c);
	for (pass = 0; !ret && pass < 2; pass++)
		for (i = 0; !ret && i < KEYS; i++)
			/* each worker walks the keys from its own starting point */
			ret = lookup(c, (i + (unsigned int)w * 17U) % KEYS);
	if (ret)
		example_fail("worker", "lookup", ret);
	shmpool_cache_close(c);
	shmpool_heap_close(h);
	shmpool_close(p);
	return ret ? 1 : 0;
}

int main(void)
{
	struct shmpool_cache_stats st;
	struct shmpool_cache *c = NULL;
	struct shmpool_heap *h = NULL;
	struct shmpool *p;
	pid_t pids[WORKERS];
	int i, ret, ok = 1;

	ret = shmpool_create_anon(POOL_BYTES, 0, &p);
	if (ret)
		return example_fail("cache", "create_anon", ret);
	ret = shmpool_heap_open(p, 0, &h);
	if (!ret)
		ret = shmpool_cache_open(h, "fib", 4 * KEYS, SHMPOOL_CACHE_CREATE, &c);
	if (ret)
		return example_fail("cache", "create the cache", ret);

	fflush(NULL);
	for (i = 0; i < WORKERS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(worker(p, i));
	}
	for (i = 0; i < WORKERS; i++)
		if (example_wait(pids[i], "worker"))
			ok = 0;

	ret = shmpool_cache_stats(c, &st);
	if (ret)
		return example_fail("cache", "stats", ret);
	printf("cache: %" PRIu64 " entries, %" PRIu64 " hits, %" PRIu64
	       " misses, %" PRIu64 " inserts, %" PRIu64 " evictions\n",
	       st.entries, st.hits, st.misses, st.inserts, st.evictions);
	/* Each key missed at most once per worker (only if they raced), was
	 * inserted once, and every second-pass lookup hit. */
	if (st.entries != KEYS || st.inserts != KEYS ||
	    st.hits + st.misses != 2ULL * KEYS * WORKERS ||
	    st.misses > (uint64_t)KEYS * WORKERS || st.hits < (uint64_t)KEYS * WORKERS)
		ok = 0;
	shmpool_cache_close(c);
	shmpool_heap_close(h);
	shmpool_close(p);
	printf("cache: %s\n", ok ? "OK" : "FAILED");
	return ok ? 0 : 1;
}
