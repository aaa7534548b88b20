/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The inspection trials of lib_inspect_test and shmpoolctl_test: a pool
 * with every kind of structure that shmpool_heap_inspect(),
 * shmpool_obj_next(), shmpool_*_inspect(), the heap checker and
 * shmpoolctl walk, and where each lies, for hostile_scribble() and the
 * flipper (hostile.h) to aim at. Include after kselftest_harness.h.
 */
#ifndef SHMPOOL_INSPECT_HOSTILE_H
#define SHMPOOL_INSPECT_HOSTILE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_cache.h"
#include "shmpool_ring.h"
#include "shmpool_state.h"
#include "lib_test.h"
#include "hostile.h"

/*
 * The structures the inspector walks, in a pool laid out by populate_kinds():
 * heap header, directory, slab map, all the heap's metadata, a slab, each
 * kind of ring, a config, a cache, and a window of block headers.
 */
enum { R_HDR, R_DIR, R_CHUNKS, R_META, R_SLAB, R_SPSC, R_MPMC, R_VAR, R_CFG,
       R_CACHE, R_BLOCKS, R_NAME, NR_REGIONS };

static const char *const region_name[NR_REGIONS] = {
	"heap header", "directory", "slab map", "heap metadata", "slab",
	"spsc ring", "mpmc ring", "var ring", "config", "cache", "blocks", "name",
};

struct insp_pool {
	struct shmpool *p, *ro;
	size_t size;
	uint64_t off[NR_REGIONS], len[NR_REGIONS];
	uint64_t obj_off[5];	/* the rings, config and cache, for direct calls */
	unsigned char *orig;	/* the pool as populate_kinds() left it */
};

static uint64_t obj_at(struct __test_metadata *_metadata, struct shmpool_heap *h,
		       const char *name)
{
	struct shmpool_obj obj;

	EXPECT_EQ(0, shmpool_obj_find(h, name, &obj));
	return obj.off;
}

/* Every kind of structure the inspector walks, in @ip->p; the regions noted. */
static void populate_kinds(struct __test_metadata *_metadata, struct shmpool_heap *h,
			   struct insp_pool *ip)
{
	const uint32_t *hw = shmpool_base(ip->p);
	struct shmpool_config *c;
	struct shmpool_cache *k;
	struct shmpool_ring *r;
	struct shmpool_obj obj;
	uint64_t small[8], big[4], v = 7, meta;
	const char *n;
	void *rec = NULL;
	int i;

	ASSERT_EQ(1, shmpool_ring_create(h, "s", SHMPOOL_RING_SPSC, 16, 8, 0, &r));
	ASSERT_EQ(1U, shmpool_ring_enqueue_bulk(r, &v, 1));
	shmpool_ring_close(r);
	ASSERT_EQ(1, shmpool_ring_create(h, "m", SHMPOOL_RING_MPMC, 16, 8, 0, &r));
	ASSERT_EQ(1U, shmpool_ring_enqueue_bulk(r, &v, 1));
	shmpool_ring_close(r);
	ASSERT_EQ(1, shmpool_ring_create(h, "v", SHMPOOL_RING_VAR, 1024, 8, 0, &r));
	ASSERT_EQ(0, shmpool_ring_reserve(r, 24, &rec));
	memset(rec, 0x42, 24);
	shmpool_ring_commit(r);
	shmpool_ring_close(r);
	ASSERT_EQ(0, shmpool_config_open(h, "cfg", 100, SHMPOOL_CONFIG_CREATE, &c));
	ASSERT_EQ(0, shmpool_config_publish(c, "a=1", 3, NULL));
	shmpool_config_close(c);
	ASSERT_EQ(0, shmpool_cache_open(h, "kv", 8, SHMPOOL_CACHE_CREATE, &k));
	ASSERT_EQ(0, shmpool_cache_put(k, "a", 1, "1", 1, 0));
	ASSERT_EQ(0, shmpool_cache_put(k, "b", 1, "2", 1, 0));
	shmpool_cache_close(k);
	ASSERT_EQ(1, shmpool_obj_create(h, "plain", 300, 0, &obj));
	for (i = 0; i < 8; i++)
		ASSERT_EQ(0, shmpool_alloc(h, 48, &small[i]));
	for (i = 0; i < 4; i++)
		ASSERT_EQ(0, shmpool_alloc(h, 5000, &big[i]));
	ASSERT_EQ(0, shmpool_free(h, small[3]));
	ASSERT_EQ(0, shmpool_free(h, big[1]));

	ip->size = shmpool_size(ip->p);
	/* layout words of the heap header (lib/heap.h): hdr_bytes, chunk_off, nr_chunks, heap_g */
	meta = (uint64_t)hw[11] << 4;
	ip->off[R_HDR] = 0;
	ip->len[R_HDR] = hw[3];
	n = memmem(hw, meta, "cfg", 4);
	ASSERT_NE(NULL, n);
	ip->off[R_DIR] = (uint64_t)(n - (const char *)hw) > 2048 ?
			 (uint64_t)(n - (const char *)hw) - 2048 : 0;
	ip->len[R_DIR] = 6144;
	ip->off[R_NAME] = (uint64_t)(n - (const char *)hw);
	ip->len[R_NAME] = SHMPOOL_OBJ_NAME_MAX;
	ip->off[R_CHUNKS] = *(const uint64_t *)(hw + 6);
	ip->len[R_CHUNKS] = hw[10];
	ip->off[R_META] = 0;
	ip->len[R_META] = meta;
	ip->off[R_SLAB] = small[0] & ~(uint64_t)16383;
	ip->len[R_SLAB] = 1024;
	ip->obj_off[0] = ip->off[R_SPSC] = obj_at(_metadata, h, "s");
	ip->obj_off[1] = ip->off[R_MPMC] = obj_at(_metadata, h, "m");
	ip->obj_off[2] = ip->off[R_VAR] = obj_at(_metadata, h, "v");
	ip->obj_off[3] = ip->off[R_CFG] = obj_at(_metadata, h, "cfg");
	ip->obj_off[4] = ip->off[R_CACHE] = obj_at(_metadata, h, "kv");
	ip->len[R_SPSC] = ip->len[R_MPMC] = ip->len[R_VAR] = 512;
	ip->len[R_CFG] = 256;
	ip->len[R_CACHE] = 512;
	ip->off[R_BLOCKS] = big[0] - 64;
	ip->len[R_BLOCKS] = big[3] - big[0] + 128;
	for (i = 0; i < NR_REGIONS; i++)
		ASSERT_LE(ip->off[i] + ip->len[i], ip->size);
	ip->orig = hostile_snapshot(shmpool_base(ip->p), ip->size);
	ASSERT_NE(NULL, ip->orig);
}

/*
 * @n seeded trials from @seed: trial t restores the pool, then writes into
 * region t % NR_REGIONS, with hostile_scribble() or (@flip) a flipper that
 * keeps writing while @run(@arg, t, @why, @len) looks. 0 if every @run gave
 * 0; else -1 and @why says which trial, what was written where, and why.
 * The pool is restored either way.
 */
static inline int insp_trials_run(struct insp_pool *ip, unsigned int n, uint64_t seed,
				  bool flip, int (*run)(void *arg, unsigned int t,
							char *why, size_t len),
				  void *arg, char *why, size_t len)
{
	void *base = shmpool_base(ip->p);
	const char *what = "flipping";
	char verdict[512];
	unsigned int t;
	uint64_t s;
	pid_t flipper = -1;
	int reg, ret = 0;

	for (t = 0; t < n && !ret; t++) {
		s = seed + t;
		reg = (int)(t % NR_REGIONS);
		memcpy(base, ip->orig, ip->size);
		if (flip)
			flipper = hostile_flipper_start(base, ip->orig, ip->off[reg],
							ip->len[reg], hostile_next(&s));
		else
			what = hostile_scribble(&s, base, ip->size, ip->off[reg], ip->len[reg]);
		ret = flip && flipper < 0 ? -1 : run(arg, t, verdict, sizeof(verdict));
		hostile_flipper_stop(flipper);
		if (ret)
			snprintf(why, len, "trial %u (seed 0x%llx), %s in the %s: %s", t,
				 (unsigned long long)(seed + t), what, region_name[reg],
				 flipper < 0 && flip ? "fork failed" : verdict);
	}
	memcpy(base, ip->orig, ip->size);
	return ret ? -1 : 0;
}

/* trials: many on the host, few in the TCG lanes, fewer under the sanitizers */
static unsigned int insp_trials(unsigned int host)
{
	if (in_vm_lane())
		return hostile_trials(host / 10 ? host / 10 : 1);
#if defined(UNDER_TSAN) || defined(__SANITIZE_ADDRESS__)
	return hostile_trials(host / 4 ? host / 4 : 1);
#else
	return hostile_trials(host);
#endif
}

#endif /* SHMPOOL_INSPECT_HOSTILE_H */
