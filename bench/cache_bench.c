// SPDX-License-Identifier: MIT
/*
 * cache_bench: shmpool_cache get/put throughput (80% get, 20% put of 64-byte
 * values on 1,000 16-byte keys), in one process and in two processes on the
 * same cache at once, against a single process-shared pthread_mutex_t
 * around the same operations on the same cache (what striping saves).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_cache.h>

#include "bench.h"

#define NKEYS		1000
#define OP_ITERS	500000

struct cache_bench {
	struct shmpool_cache *c;
	pthread_mutex_t *big;	/* NULL: the cache's own stripes only */
};

static void cache_op(void *arg, int side, uint64_t iters)
{
	struct cache_bench *b = arg;
	uint64_t s = 0x9e3779b97f4a7c15ULL + (uint64_t)side, i;
	char key[16], val[64];
	int k, ret;

	memset(val, side, sizeof(val));
	for (i = 0; i < iters; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		k = (int)(s % NKEYS);
		memset(key, 0, sizeof(key));
		snprintf(key, sizeof(key), "key%d", k);
		if (b->big)
			pthread_mutex_lock(b->big);
		if (s % 5)
			ret = shmpool_cache_get(b->c, key, sizeof(key), val, sizeof(val));
		else
			ret = shmpool_cache_put(b->c, key, sizeof(key), val, sizeof(val), 0);
		if (b->big)
			pthread_mutex_unlock(b->big);
		if (ret < 0 && ret != -ENOENT)
			bench_die("shmpool_cache get/put", -ret);
	}
}

int main(int argc, char **argv)
{
	static struct cache_bench striped, locked;
	struct bench_case cs[4];
	struct bench_table t = {
		.title = "shared cache, 80% get / 20% put, 64-byte values, 1,000 keys",
		.op = "one get or put (side 0 timed; in 2-process rows side 1 does as many)",
		.unit = "ns",
		.cases = cs,
		.ncases = 4,
	};
	pthread_mutexattr_t ma;
	struct shmpool_heap *heap;
	struct shmpool_cache *c;
	struct shmpool *pool;
	pthread_mutex_t *big;
	int ret;

	bench_init(argc, argv, "Prints shmpool_cache get/put cost in one and two processes, against\n"
		   "the same cache behind one process-shared pthread_mutex_t.\n");
	ret = shmpool_create_anon(8 << 20, SHMPOOL_BACKEND_MEMFD, &pool);
	if (ret)
		bench_die("shmpool_create_anon", -ret);
	ret = shmpool_heap_open(pool, 0, &heap);
	if (ret)
		bench_die("shmpool_heap_open", -ret);
	ret = shmpool_cache_open(heap, "bench", 4 * NKEYS, SHMPOOL_CACHE_CREATE, &c);
	if (ret)
		bench_die("shmpool_cache_open", -ret);
	big = mmap(NULL, sizeof(*big), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (big == MAP_FAILED)
		bench_die("mmap", errno);
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(big, &ma);
	striped = (struct cache_bench){ .c = c };
	locked = (struct cache_bench){ .c = c, .big = big };

	cs[0] = (struct bench_case){ .name = "1 process, one pthread mutex around each op",
		.nprocs = 1, .iters = OP_ITERS, .fn = cache_op, .arg = &locked };
	cs[1] = (struct bench_case){ .name = "1 process, striped locks",
		.peer = cs[0].name, .nprocs = 1, .iters = OP_ITERS, .fn = cache_op,
		.arg = &striped };
	cs[2] = (struct bench_case){ .name = "2 processes, one pthread mutex around each op",
		.nprocs = 2, .iters = OP_ITERS / 2, .fn = cache_op, .arg = &locked };
	cs[3] = (struct bench_case){ .name = "2 processes, striped locks",
		.peer = cs[2].name, .nprocs = 2, .iters = OP_ITERS / 2, .fn = cache_op,
		.arg = &striped };
	t.notes[0] = "the cache is shared by every row: it is warm (about 1,000 entries) after the first";
	bench_table(&t);
	return 0;
}
