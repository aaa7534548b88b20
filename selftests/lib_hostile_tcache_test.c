// SPDX-License-Identifier: GPL-2.0
/*
 * Hostile-peer trials of the heap's thread caches (issue 14, item 5).
 *
 * A thread cache is process memory; what of it lives in the pool is each
 * cached object's slot ("cached by attachment a"), its allocation bit, its
 * slab's chunk-map byte, the class list it fills from and the owner table
 * that says whose it is (lib/tcache.c, "Trust"). A victim (forked, under
 * hostile.h's watchdog) holds blocks with known contents and a warm cache
 * of 64-byte objects; then a peer's writes land on that shared state:
 *   header:  random bytes over the slot arrays of the cached objects' slabs
 *   object:  random bytes over those whole slabs
 *   crafted: one plausible lie: a cached object pushed on the class list
 *            (slot a link, a link to itself, or "cached by us"), its slot
 *            made free / allocated / another's, the owner table saying we
 *            are dead (then a reclaim), the chunk map making a chunk of
 *            the pool's metadata a slab (then a free there), its
 *            allocation bit cleared (then the victim holds it and sweeps
 *            up stranded objects)
 * (the victim writes them itself through its mapping: to the library that
 * is the same as another process writing, and it lets them land while the
 * cache is warm). Then the victim allocates, frees, flushes, reclaims and
 * allocates again, and asserts: no signal, no hang, only documented errors
 * (-EUCLEAN, -EINVAL, -ENOMEM), every block handed out inside the heap area
 * and overlapping no block it holds, and the contents of every held block
 * that the peer did not write over unchanged at the end (the heap takes the
 * whole pool: its live blocks are what lies "outside" the garbage).
 *
 * SHMPOOL_HOSTILE_SEED / SHMPOOL_HOSTILE_TRIALS as in hostile.h; HTC_VERBOSE=1
 * prints which crafted lie a trial told (for a replay).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdbool.h>

#include <shmpool.h>
#include <shmpool_alloc.h>

#include "../lib/heap.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "hostile.h"
#include "lib_test.h"

#define POOL_BYTES	(4UL << 20)
#define OBJ		64	/* the cached class's size */
#define NHELD		40	/* blocks held through a trial: 32 objects, 8 general */
#define NWARM		12	/* objects freed into the cache before the peer */
#define NNEW		96	/* allocations after the peer, across refills */
#define TRIAL_MS	5000	/* hang detector, scaled */

enum kind { HEADER, OBJECT, CRAFTED };

struct blockref {
	uint64_t off, len;
	unsigned char fill;
	bool spoiled;	/* the peer wrote over it: its contents may change */
};

struct trial {
	struct shmpool *p;
	enum kind kind;
	uint64_t seed;
};

/* the victim's exit codes: its verdicts */
enum {
	V_SETUP = 10, V_ERRNO, V_OUTSIDE, V_OVERLAP, V_CONTENTS, V_CACHE, V_EXTRA,
};

static struct cls_info ci[NR_CLASSES];

static char *pool_base(struct shmpool *p)
{
	return p->base;
}

static bool overlaps(const struct blockref *b, int n, uint64_t off, uint64_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (b[i].len && off < b[i].off + b[i].len && b[i].off < off + len)
			return true;
	return false;
}

/* Mark the held blocks in [@lo, @hi) spoiled: the peer wrote there. */
static void spoil(struct blockref *b, int n, uint64_t lo, uint64_t hi)
{
	int i;

	for (i = 0; i < n; i++)
		if (b[i].off < hi && lo < b[i].off + b[i].len)
			b[i].spoiled = true;
}

static void fill(char *base, struct blockref *b)
{
	memset(base + b->off, b->fill, b->len);
}

static bool intact(const char *base, const struct blockref *b)
{
	uint64_t i;

	if (b->spoiled)
		return true;
	for (i = 0; i < b->len; i++)
		if ((unsigned char)base[b->off + i] != b->fill)
			return false;
	return true;
}

/* the slab start and slot of the class-@c object at @off */
static uint64_t slab_at(unsigned int c, uint64_t off)
{
	return off & ~(uint64_t)ci[c].slab_mask;
}

static _Atomic uint32_t *slot_at(char *base, unsigned int c, uint64_t off)
{
	uint64_t s = slab_at(c, off);
	uint32_t idx = (uint32_t)((off - s - ci[c].obj_off) / ci[c].size);

	return (_Atomic uint32_t *)(base + s + ci[c].slot_off) + idx;
}

static void clear_bit(char *base, unsigned int c, uint64_t off)
{
	uint64_t s = slab_at(c, off);
	uint32_t idx = (uint32_t)((off - s - ci[c].obj_off) / ci[c].size);
	struct slab_hdr *sh = (struct slab_hdr *)(base + s);

	atomic_fetch_and(&sh->bits[idx / 64], ~(1ULL << (idx % 64)));
}

/*
 * Push the object at @off on class @c's list, its slot linking to @link:
 * on the lane of the thread cache made last (the victim's, lib/slab.c).
 */
static void push_obj(char *base, unsigned int c, uint64_t off, uint32_t link,
		     bool link_to_top)
{
	struct heap_hdr *hh = (struct heap_hdr *)base;
	_Atomic uint64_t *tp = &hh->cls[c].top[(atomic_load(&hh->lane_next) - 1) % NR_LANES];
	uint64_t top = atomic_load(tp);

	atomic_store(slot_at(base, c, off), link_to_top ? (uint32_t)top : link);
	clear_bit(base, c, off);
	atomic_store(tp, ((top >> 32) + 1) << 32 | (off >> GRAN_SHIFT));
}

/*
 * The peer's writes. @cached: the objects in the victim's cache. Returns
 * what the victim must do besides its usual calls: 1 reclaim first, 2
 * free @extra.
 */
static int peer(struct trial *t, char *base, struct shmpool_heap *h,
		const uint64_t *cached, int ncached, struct blockref *held,
		uint64_t *extra)
{
	unsigned int c = slab_class(OBJ);
	uint64_t *s = &t->seed, x = cached[hostile_below(s, (uint64_t)ncached)];
	uint64_t lo, hi, pool_g = POOL_BYTES >> GRAN_SHIFT;
	uint16_t me = (uint16_t)shmpool_heap_attach_id(h);
	_Atomic uint32_t *att = (_Atomic uint32_t *)(base + ATTACH_OFF);
	_Atomic uint8_t *chunks = (_Atomic uint8_t *)(base +
				  ((struct heap_hdr *)base)->chunk_off);
	int i;

	switch (t->kind) {
	case HEADER:
		for (i = 0; i < ncached; i++) {
			lo = slab_at(c, cached[i]) + ci[c].slot_off;
			hostile_fill(s, base + lo, ci[c].nobj * 4U);
		}
		return 0;
	case OBJECT:
		for (i = 0; i < ncached; i++) {
			lo = slab_at(c, cached[i]);
			hi = lo + ci[c].slab_mask + 1;
			hostile_fill(s, base + lo, hi - lo);
			spoil(held, NHELD, lo, hi);
		}
		return 0;
	case CRAFTED:
		break;
	}
	i = (int)hostile_below(s, 11);
	if (getenv("HTC_VERBOSE"))
		fprintf(stderr, "crafted case %d\n", i);
	switch (i) {
	case 0:	/* listed, as a well-formed free object */
		push_obj(base, c, x, 0, true);
		return 0;
	case 1:	/* listed, its link "cached by us": the walk stops there */
		push_obj(base, c, x, me | SLOT_CACHED, false);
		return 0;
	case 2:	/* listed, a link to itself */
		push_obj(base, c, x, (uint32_t)(x >> GRAN_SHIFT), false);
		return 0;
	case 3:	/* listed, the link a plausible lie */
		push_obj(base, c, x, (uint32_t)hostile_plausible(s, pool_g), false);
		return 0;
	case 4:	/* its slot says allocated, by us */
		atomic_store(slot_at(base, c, x), me);
		return 0;
	case 5:	/* its slot says cached by someone else */
		atomic_store(slot_at(base, c, x), (uint32_t)(me % (NR_ATTACH - 2) + 1) | SLOT_CACHED);
		return 0;
	case 6:	/* its slot a plausible value */
		atomic_store(slot_at(base, c, x), (uint32_t)hostile_plausible(s, pool_g));
		return 0;
	case 7:	/* the owner table: our attachment ended (a dead one's id) */
		atomic_store(&att[me], 0x3ffffff0U - (uint32_t)hostile_below(s, 16));
		return 1;
	case 9:
		/*
		 * Its allocation bit cleared while it is cached: the victim
		 * may hand it out (its slot still says "cached by us"), and a
		 * stranded-object sweep must then not list it under its holder
		 */
		clear_bit(base, c, x);
		return 3;
	case 8:
		/*
		 * The chunk where the heap area starts (it starts in the
		 * metadata) "a slab of our class": that slab would start
		 * below the heap area though the "object" lies inside it,
		 * which shmpool_free()'s fast path must see. Its "slot"
		 * (in the block bitmap) ours; then the victim frees that
		 * "object"
		 */
		lo = (uint64_t)((struct heap_hdr *)base)->heap_g << GRAN_SHIFT;
		hi = slab_at(c, lo) + ci[c].obj_off;	/* object 0 */
		while (hi < lo)
			hi += ci[c].size;
		if (hi >> SLAB_SHIFT != lo >> SLAB_SHIFT || hi > lo + ci[c].size * 4U)
			break;	/* none in that chunk: the case below instead */
		atomic_store(&chunks[lo >> SLAB_SHIFT], (uint8_t)(c + 1));
		*extra = hi;
		atomic_store(slot_at(base, c, *extra), me);
		return 2;
	}
	/*
	 * The last chunk before the heap area (the general blocks' bitmap
	 * lies there) "a slab of our class", one "slot" ours: then the victim
	 * frees that "object"
	 */
	c = slab_class(OBJ);
	lo = ((uint64_t)((struct heap_hdr *)base)->heap_g << GRAN_SHIFT >> SLAB_SHIFT) - 1;
	atomic_store(&chunks[lo], (uint8_t)(c + 1));
	*extra = (lo << SLAB_SHIFT) + ci[c].obj_off +
		 ci[c].size * hostile_below(s, ci[c].nobj);
	atomic_store(slot_at(base, c, *extra), me);
	return 2;
}

/*
 * Allocate one object and hold it (filled) in @held[*@n]: 0, also when the
 * heap said -EUCLEAN or -ENOMEM (nothing held), else the verdict. @lo, @hi:
 * the heap area.
 */
static int hold_one(struct shmpool_heap *h, char *base, uint64_t lo, uint64_t hi,
		    struct blockref *held, int *n)
{
	uint64_t off;
	int ret = shmpool_alloc(h, OBJ, &off);

	if (ret == -EUCLEAN || ret == -ENOMEM)
		return 0;
	if (ret)
		return V_ERRNO;
	if (off < lo || off + OBJ > hi)
		return V_OUTSIDE;
	if (overlaps(held, *n, off, OBJ))
		return V_OVERLAP;
	held[*n] = (struct blockref){ off, OBJ, (unsigned char)(0x80 + *n), false };
	fill(base, &held[(*n)++]);
	return 0;
}

static int victim(void *arg)
{
	struct trial *t = arg;
	struct blockref held[NHELD + NWARM + NNEW * 2] = { 0 };
	uint64_t cached[NWARM], off, lo, hi, extra = 0;
	struct shmpool_heap *h;
	struct heap_hdr *hh;
	int i, n = 0, ret, todo;
	char *base;

	if (shmpool_heap_open(t->p, 0, &h))
		return V_SETUP;
	base = pool_base(t->p);
	hh = (struct heap_hdr *)base;
	/* the heap area, as the victim knew it before the peer wrote */
	lo = (uint64_t)hh->heap_g << GRAN_SHIFT;
	hi = (uint64_t)hh->end_g << GRAN_SHIFT;
	for (i = 0; i < NHELD; i++) {
		uint64_t len = i < 32 ? OBJ : 3000 + 1000 * (uint64_t)i;

		if (shmpool_alloc(h, len, &off))
			return V_SETUP;
		held[n] = (struct blockref){ off, len, (unsigned char)(0x11 + n), false };
		fill(base, &held[n++]);
	}
	for (i = 0; i < NWARM; i++)
		if (shmpool_alloc(h, OBJ, &cached[i]))
			return V_SETUP;
	for (i = 0; i < NWARM; i++)
		if (shmpool_free(h, cached[i]))
			return V_SETUP;

	todo = peer(t, base, h, cached, NWARM, held, &extra);
	if (todo == 1) {
		long r = shmpool_heap_reclaim(h, 0);

		if (r < 0 && r != -EUCLEAN)
			return V_ERRNO;
	}
	if (todo == 3) {
		/*
		 * Hold every cached object, then sweep (nobody else
		 * allocates): the allocations below must not get them again
		 */
		for (i = 0; i < NWARM; i++)
			if ((ret = hold_one(h, base, lo, hi, held, &n)))
				return ret;
		ret = (int)shmpool_heap_reclaim(h, SHMPOOL_RECLAIM_STRANDED);
		if (ret < 0 && ret != -EUCLEAN)
			return V_ERRNO;
	}
	if (todo == 2) {
		/*
		 * An "object" of a slab that would not lie inside the heap
		 * area, freed while the cache has room for it
		 */
		uint64_t room;
		int r = shmpool_alloc(h, OBJ, &room);

		if (r && r != -EUCLEAN)
			return V_ERRNO;
		ret = shmpool_free(h, extra);
		if (ret != -EUCLEAN)
			return V_EXTRA;
		if (!r && shmpool_free(h, room))
			return V_ERRNO;
	}

	for (int round = 0; round < 2; round++) {
		int first = n;

		for (i = 0; i < NNEW; i++)
			if ((ret = hold_one(h, base, lo, hi, held, &n)))
				return ret;
		/* give half of this round's back, then flush and reclaim */
		for (i = first; i < n; i += 2) {
			ret = shmpool_free(h, held[i].off);
			if (ret && ret != -EINVAL && ret != -EUCLEAN)
				return V_ERRNO;
			held[i].len = 0;	/* gone either way */
		}
		ret = shmpool_heap_flush(h);
		if (ret && ret != -EUCLEAN)
			return V_ERRNO;
		if (shmpool_heap_reclaim(h, 0) < -EUCLEAN)
			return V_ERRNO;
	}
	for (i = 0; i < n; i++)
		if (held[i].len && !intact(base, &held[i]))
			return V_CONTENTS;
	/* no _exit() shortcut: closing returns the cache, which must hold too */
	shmpool_heap_close(h);
	return 0;
}

/* ---- fixture ------------------------------------------------------------------- */

FIXTURE(tcache) {
	char name[SHMPOOL_NAME_MAX];
	unsigned int backend;
};

FIXTURE_VARIANT(tcache) {
	unsigned int backend;
	unsigned int trials;	/* per kind, on the host */
};

/*
 * Where the device is (the VM lanes, under TCG: slow) every variant runs
 * LANE_TRIALS per kind, about 5 s for the whole test; the host, memfd only,
 * runs more.
 */
#define LANE_TRIALS	12

FIXTURE_VARIANT_ADD(tcache, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
	.trials = 60,
};

FIXTURE_VARIANT_ADD(tcache, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
	.trials = LANE_TRIALS,
};

FIXTURE_SETUP(tcache)
{
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_ok())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	__shmpool_slab_geometry(ci);
	self->backend = variant->backend;
}

FIXTURE_TEARDOWN(tcache)
{
}

/* One kind's trials, each on a fresh pool; the first failure ends them. */
static void trials(struct __test_metadata *_metadata, FIXTURE_DATA(tcache) *self,
		   const FIXTURE_VARIANT(tcache) *variant, enum kind kind)
{
	unsigned int i, n = hostile_trials(device_ok() ? LANE_TRIALS : variant->trials);
	uint64_t seed0 = hostile_seed();
	char why[128];

	for (i = 0; i < n; i++) {
		struct trial t = { .kind = kind, .seed = seed0 + i };

		snprintf(self->name, sizeof(self->name), "htc.%d", (int)getpid());
		ASSERT_EQ(0, shmpool_create(self->name, POOL_BYTES, 0600,
					    self->backend | SHMPOOL_EXCL, &t.p));
		if (hostile_run(victim, &t, (unsigned int)(TRIAL_MS * scale()),
				t.seed, why)) {
			shmpool_close(t.p);
			shmpool_unlink(self->name, self->backend);
			ASSERT_TRUE(false) TH_LOG("trial %u: %s (seed 0x%llx)", i, why,
						  (unsigned long long)t.seed);
		}
		shmpool_close(t.p);
		shmpool_unlink(self->name, self->backend);
	}
}

/* random bytes over the slots of the cached objects' slabs */
TEST_F(tcache, random_slots)
{
	trials(_metadata, self, variant, HEADER);
}

/* random bytes over the cached objects' whole slabs */
TEST_F(tcache, random_slabs)
{
	trials(_metadata, self, variant, OBJECT);
}

/* crafted: cached objects listed, relabelled, their owner "dead", metadata a slab */
TEST_F(tcache, crafted)
{
	trials(_metadata, self, variant, CRAFTED);
}

TEST_HARNESS_MAIN
