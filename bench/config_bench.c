// SPDX-License-Identifier: MIT
/*
 * config_bench: what a consistent copy of a 256-byte shared config costs,
 * shmpool_config_read() (a double-buffered seqlock: no writes to shared
 * memory by readers) against a process-shared pthread_rwlock_t on a memfd
 * (rdlock, memcpy, unlock), alone and while another process keeps
 * publishing; and what resolving a multi-pool handle costs against a plain
 * base + offset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <shmpool.h>
#include <shmpool_alloc.h>
#include <shmpool_state.h>

#include "bench.h"

#define BLOB		256
#define OP_ITERS	2000000

struct rw_shared {
	pthread_rwlock_t lock;
	unsigned char blob[BLOB];
};

struct cfg_bench {
	struct shmpool_config *cfg;
	struct rw_shared *rw;
	atomic_int *stop;	/* side 0 done: the writer side stops */
	int writer;		/* 2-process case: side 1 writes meanwhile */
};

static volatile unsigned char sink;

static void cfg_reset(void *arg)
{
	struct cfg_bench *b = arg;

	atomic_store(b->stop, 0);
}

static void config_read_op(void *arg, int side, uint64_t iters)
{
	struct cfg_bench *b = arg;
	unsigned char buf[BLOB];
	unsigned char v = 0;
	uint64_t i;

	if (side == 1) {
		for (i = 0; !atomic_load_explicit(b->stop, memory_order_relaxed); i++) {
			memset(buf, (int)i, sizeof(buf));
			if (shmpool_config_publish(b->cfg, buf, sizeof(buf), NULL))
				bench_die("shmpool_config_publish", EIO);
		}
		return;
	}
	for (i = 0; i < iters; i++) {
		if (shmpool_config_read(b->cfg, buf, sizeof(buf), NULL) != BLOB)
			bench_die("shmpool_config_read", EIO);
		v ^= buf[i % BLOB];
	}
	sink = v;
	atomic_store(b->stop, 1);
}

static void rwlock_read_op(void *arg, int side, uint64_t iters)
{
	struct cfg_bench *b = arg;
	unsigned char buf[BLOB];
	unsigned char v = 0;
	uint64_t i;

	if (side == 1) {
		for (i = 0; !atomic_load_explicit(b->stop, memory_order_relaxed); i++) {
			memset(buf, (int)i, sizeof(buf));
			pthread_rwlock_wrlock(&b->rw->lock);
			memcpy(b->rw->blob, buf, sizeof(buf));
			pthread_rwlock_unlock(&b->rw->lock);
		}
		return;
	}
	for (i = 0; i < iters; i++) {
		pthread_rwlock_rdlock(&b->rw->lock);
		memcpy(buf, b->rw->blob, sizeof(buf));
		pthread_rwlock_unlock(&b->rw->lock);
		v ^= buf[i % BLOB];
	}
	sink = v;
	atomic_store(b->stop, 1);
}

struct handle_bench {
	struct shmpool *pool;
	shmpool_handle_t h;
};

static void handle_op(void *arg, int side, uint64_t iters)
{
	struct handle_bench *hb = arg;
	unsigned char v = 0;
	uint64_t i;

	(void)side;
	for (i = 0; i < iters; i++) {
		shmpool_handle_read_lock();
		v ^= *(volatile unsigned char *)shmpool_handle_ptr(hb->h + (i & 4095), 1);
		shmpool_handle_read_unlock();
	}
	sink = v;
}

static void plain_op(void *arg, int side, uint64_t iters)
{
	struct handle_bench *hb = arg;
	unsigned char v = 0;
	uint64_t i;

	(void)side;
	for (i = 0; i < iters; i++)
		v ^= *(volatile unsigned char *)shmpool_ptr(hb->pool, i & 4095, 1);
	sink = v;
}

int main(int argc, char **argv)
{
	static struct cfg_bench alone[2], busy[2];
	static struct handle_bench hb;
	struct bench_case rc[2], wc[2], hc[2];
	struct bench_table t1 = {
		.title = "consistent 256-byte config read, one process, no writer",
		.op = "one copy of the whole blob",
		.unit = "ns",
		.cases = rc,
		.ncases = 2,
	};
	struct bench_table t2 = {
		.title = "consistent 256-byte config read while another process publishes non-stop",
		.op = "one copy of the whole blob (reader side timed)",
		.unit = "ns",
		.cases = wc,
		.ncases = 2,
	};
	struct bench_table t3 = {
		.title = "multi-pool handle resolution vs plain base + offset, one process",
		.op = "one resolve and 1-byte load (handle: inside its own read-side section)",
		.unit = "ns",
		.cases = hc,
		.ncases = 2,
	};
	struct shmpool *pool, *hp;
	struct shmpool_heap *heap;
	struct shmpool_config *cfg;
	pthread_rwlockattr_t ra;
	struct rw_shared *rw;
	atomic_int *stop;
	unsigned char blob[BLOB];
	int ret, slot;

	bench_init(argc, argv, "Prints a 256-byte consistent config read (shmpool_config) against a\n"
		   "process-shared pthread_rwlock_t, and handle resolution against base + offset.\n");
	ret = shmpool_create_anon(1 << 20, SHMPOOL_BACKEND_MEMFD, &pool);
	if (ret)
		bench_die("shmpool_create_anon", -ret);
	ret = shmpool_heap_open(pool, 0, &heap);
	if (ret)
		bench_die("shmpool_heap_open", -ret);
	ret = shmpool_config_open(heap, "bench", BLOB, SHMPOOL_CONFIG_CREATE, &cfg);
	if (ret)
		bench_die("shmpool_config_open", -ret);
	memset(blob, 1, sizeof(blob));
	ret = shmpool_config_publish(cfg, blob, sizeof(blob), NULL);
	if (ret)
		bench_die("shmpool_config_publish", -ret);

	rw = mmap(NULL, sizeof(*rw), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rw == MAP_FAILED)
		bench_die("mmap", errno);
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setpshared(&ra, PTHREAD_PROCESS_SHARED);
	pthread_rwlock_init(&rw->lock, &ra);
	memset(rw->blob, 1, sizeof(rw->blob));
	stop = bench_shared_page();

	alone[0] = (struct cfg_bench){ .cfg = cfg, .rw = rw, .stop = stop };
	alone[1] = alone[0];
	busy[0] = alone[0];
	busy[0].writer = 1;
	busy[1] = busy[0];
	rc[0] = (struct bench_case){ .name = "pthread_rwlock_t rdlock+memcpy+unlock",
		.nprocs = 1, .iters = OP_ITERS, .fn = rwlock_read_op, .arg = &alone[0],
		.reset = cfg_reset };
	rc[1] = (struct bench_case){ .name = "shmpool_config_read",
		.peer = rc[0].name, .nprocs = 1, .iters = OP_ITERS,
		.fn = config_read_op, .arg = &alone[1], .reset = cfg_reset };
	wc[0] = (struct bench_case){ .name = "pthread_rwlock_t rdlock+memcpy+unlock",
		.nprocs = 2, .iters = OP_ITERS / 4, .fn = rwlock_read_op, .arg = &busy[0],
		.reset = cfg_reset };
	wc[1] = (struct bench_case){ .name = "shmpool_config_read",
		.peer = wc[0].name, .nprocs = 2, .iters = OP_ITERS / 4,
		.fn = config_read_op, .arg = &busy[1], .reset = cfg_reset };
	t2.notes[0] = "side 1 publishes (config) or wrlocks+copies (rwlock) until side 0 is done";

	ret = shmpool_create_anon(1 << 20, SHMPOOL_BACKEND_MEMFD, &hp);
	if (ret)
		bench_die("shmpool_create_anon", -ret);
	hb.pool = hp;
	slot = shmpool_handle_attach(hp);
	if (slot < 0)
		bench_die("shmpool_handle_attach", -slot);
	hb.h = shmpool_handle_make(slot, 0);
	hc[0] = (struct bench_case){ .name = "shmpool_ptr(pool, off) (base + offset)",
		.nprocs = 1, .iters = OP_ITERS, .fn = plain_op, .arg = &hb };
	hc[1] = (struct bench_case){ .name = "read_lock + shmpool_handle_ptr + unlock",
		.peer = hc[0].name, .nprocs = 1, .iters = OP_ITERS, .fn = handle_op,
		.arg = &hb };

	bench_table(&t1);
	bench_table(&t2);
	bench_table(&t3);
	return 0;
}
