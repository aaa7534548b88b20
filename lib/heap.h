/* SPDX-License-Identifier: MIT */
/*
 * The heap's pool layout, shared by heap.c (layout, TLSF, checks), slab.c
 * (small size classes) and dir.c (named objects). Private to lib/.
 *
 * Pool layout (offsets from the pool start):
 *
 *	0		struct heap_hdr: state word, geometry, heap mutex,
 *			TLSF control, small-class free-list heads (8 KiB)
 *	ATTACH_OFF	u32 att[NR_ATTACH]: heap owner id -> the pool attachment
 *			id (lib/attach.c) of the handle holding it; 0: free
 *	DIR_OFF		struct dir_ent[NR_DIR]: named objects
 *	chunk_off	u8 kind[pool >> SLAB_SHIFT]: 0, or 1 + class of the slab
 *			covering that 16 KiB chunk (a 64 KiB slab covers four)
 *	bitmap_off	u64 bits[]: one bit per 16-byte granule of the pool,
 *			set at the header of each allocated general block
 *	(after it)	u64 sum[]: one bit per word of bits[], set while
 *			that word is not 0 (so that proving a long run of
 *			granules free reads one bit per 1 KiB of it)
 *	heap_g * 16	blocks ... sentinel (end_g)
 *
 * Block (all sizes and links in 16-byte granules, so u32 covers 64 GiB):
 *
 *	struct blk	16-byte header at the block start, payload follows;
 *			a free block's payload starts with its list links
 *
 * Locking: everything in heap_hdr from @lock down to @cls is protected by
 * @lock, as are the bitmap and its summary, every block header and free block, the
 * directory, and the owner table's releases (an id is claimed with a CAS,
 * so opening takes no lock; it is given back to 0 only under @lock, after
 * what it owned was relabelled, see heap_release()). The small classes' heads, slab
 * bitmaps and slots are lock-free atomics; the chunk map is written under
 * @lock and read lock-free (see slab.c).
 */
#ifndef SHMPOOL_HEAP_H
#define SHMPOOL_HEAP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>

#include "internal.h"
#include "shmpool_alloc.h"
#include "shmpool_sync.h"

#define HEAP_MAGIC	0x50414548U	/* "HEAP" */
#define HEAP_VERSION	6U	/* 2: classes up to 8 KiB, cached objects; 3: owners are pool attachments; 4: bitmap summary; 5: check word; 6: lanes */

/* the state word at offset 0 (a doorbell word) */
#define HEAP_STATE_READY	1U
#define HEAP_LOCK_MS		10000L	/* default shmpool_heap_set_lock_timeout() */
#define HEAP_STATE_INIT		0x80000000U	/* | initialiser's pool attachment id */
#define HEAP_STATE_PID_MASK	0x3fffffffU

#define GRAN_SHIFT	4
#define GRAN		(1U << GRAN_SHIFT)
#define MIN_BLOCK_G	2U	/* header + two links */

#define SL_LOG		4
#define SL_COUNT	(1U << SL_LOG)
#define FL_COUNT	29	/* sizes up to 2^32 granules */

#define SLAB_SHIFT	14	/* chunk size; slabs of classes up to 2 KiB */
#define SLAB_SIZE	(1U << SLAB_SHIFT)
#define SLAB_BIG_SHIFT	16	/* slabs of the classes above 2 KiB */
#define SLAB_BIG_MIN	2049	/* smallest object size in a big slab */
#define NR_CLASSES	SHMPOOL_HEAP_NR_CLASSES

#define NR_ATTACH	1024
/*
 * The owner of a block or object whose owner's handle ended (the process
 * died, or closed the heap) while it was still allocated: kept, freeable by
 * anyone, and freed by shmpool_heap_reclaim(SHMPOOL_RECLAIM_HELD). Never
 * handed to a handle.
 */
#define OWNER_ORPHAN	(NR_ATTACH - 1)
#define NR_DIR		64

#define ATTACH_OFF	8192U
#define DIR_OFF		(ATTACH_OFF + NR_ATTACH * 4U)

/* struct blk.flags */
#define BLK_FREE	(1U << 0)
#define BLK_SLAB	(1U << 1)	/* payload is a slab */
#define BLK_NAMED	(1U << 2)	/* payload is a named object */
#define BLK_LAST	(1U << 3)	/* the sentinel at the heap's end */

struct blk {
	uint32_t size;		/* granules, header included */
	uint32_t prev;		/* granules of the previous block, 0 if first */
	uint16_t owner;		/* attachment id; 0 if free */
	uint16_t flags;
	uint32_t check;		/* blk_check() of the fields above and position */
};

struct blk_links {
	uint32_t next;		/* granule of the next free block in the list, 0: none */
	uint32_t prev;
};

/*
 * Lanes: each small class has NR_LANES free lists, and each thread cache
 * fills from and empties into one of them (its lane, given out round-robin
 * from heap_hdr.lane_next), so that threads and processes that allocate at
 * once work in slabs of their own and do not write each other's slot lines
 * (slab.c). Any lane may hold any free object of the class: a lane is where
 * a cache looks first, never what an object's state depends on.
 */
#define NR_LANES	8

/*
 * One small class's free lists: each top is {granule offset in the low 32
 * bits, ABA tag in the high 32}; the tops share one cache line, written
 * once per batch.
 */
struct cls_head {
	_Atomic uint64_t top[NR_LANES];
	uint32_t nobj;		/* objects per slab */
	uint32_t size;		/* object size, bytes */
	uint32_t slot_off;	/* slab offset of u32 slot[nobj] */
	uint32_t obj_off;	/* slab offset of object 0 */
} __attribute__((aligned(64)));

struct heap_hdr {
	_Atomic uint32_t state;	/* offset 0: the init doorbell word */
	uint32_t magic;
	uint32_t version;
	uint32_t hdr_bytes;
	uint64_t pool_bytes;
	uint64_t chunk_off;
	uint64_t bitmap_off;
	uint32_t nr_chunks;
	uint32_t heap_g;	/* first block */
	uint32_t end_g;		/* the sentinel block */
	uint32_t damaged;	/* under @lock: a dead holder left what no walk repairs */

	struct shmpool_mutex lock;

	/* TLSF, under @lock */
	uint32_t fl_bitmap;
	uint32_t sl_bitmap[FL_COUNT];
	uint32_t heads[FL_COUNT][SL_COUNT];
	uint64_t free_g;	/* granules in free blocks */
	uint64_t nr_free;	/* free blocks */
	uint64_t nr_used;	/* allocated blocks, slabs and named objects too */
	uint32_t nr_slabs;
	uint32_t nr_named;
	uint32_t nr_repairs;	/* heap_repair() runs that succeeded */
	uint32_t death_seq;	/* the pool's death_seq when dead owners were last reclaimed */
	_Atomic uint32_t lane_next;	/* the lane of the next thread cache made, mod NR_LANES */

	struct cls_head cls[NR_CLASSES];
};

_Static_assert(sizeof(struct heap_hdr) <= ATTACH_OFF, "heap header too big");
/* lib_alloc_test.c reaches the heap mutex there to play a dying holder */
_Static_assert(offsetof(struct heap_hdr, lock) == 56, "heap mutex moved");
/* and the bitmap's offset there, to find the bitmap's summary after it */
_Static_assert(offsetof(struct heap_hdr, bitmap_off) == 32, "bitmap offset moved");

struct dir_ent {
	char name[SHMPOOL_OBJ_NAME_MAX];
	uint64_t off;		/* 0: free entry */
	uint64_t size;
	uint32_t hash;
	uint32_t kind;		/* DIR_KIND_* (internal.h): who made it */
};

_Static_assert(DIR_OFF + NR_DIR * sizeof(struct dir_ent) <= 5 * 4096,
	       "directory does not fit its place");

/* small object slab, at the start of its 16 KiB chunk */
struct slab_hdr {
	uint32_t magic;		/* SLAB_MAGIC ^ class */
	uint32_t cls;
	_Atomic uint64_t bits[];	/* 1 = object allocated */
};

#define SLAB_MAGIC	0x42414c53U	/* "SLAB" */

/*
 * A kill may stop the lock holder between any two stores, and heap_repair()
 * reads what it left. Everything a dead thread stored before it died is
 * visible to the thread that takes its lock over (it learns of the death
 * from the kernel, after the exit); what matters is which stores were done,
 * so the compiler must keep the order that the repair relies on.
 */
#define KILL_POINT()	atomic_signal_fence(memory_order_seq_cst)

/* in a checker: report the first problem in @msg (@len bytes), leave via out: */
#define FAIL(...) do {						\
	if (len)						\
		snprintf(msg, len, __VA_ARGS__);		\
	ret = -EUCLEAN;						\
	goto out;						\
} while (0)

static inline struct heap_hdr *heap_hdr(const struct shmpool_heap *h)
{
	return h->__hdr;
}

static inline char *heap_base(const struct shmpool_heap *h)
{
	return h->pool->base;
}

static inline struct blk *blk_at(const struct shmpool_heap *h, uint32_t g)
{
	return (struct blk *)(heap_base(h) + ((uint64_t)g << GRAN_SHIFT));
}

/* the block-start bitmap and the chunk map: see heap_priv (the handle's copy) */
static inline uint64_t *heap_bitmap(const struct shmpool_heap *h);
static inline _Atomic uint8_t *heap_chunks(const struct shmpool_heap *h);

static inline struct dir_ent *heap_dir(const struct shmpool_heap *h)
{
	return (struct dir_ent *)(heap_base(h) + DIR_OFF);
}

/* heap.c: the general allocator; callers hold the heap lock */
int __shmpool_heap_lock(struct shmpool_heap *h);
void __shmpool_heap_unlock(struct shmpool_heap *h);
/* payload offset in *@off; @flags BLK_SLAB/BLK_NAMED to mark the block */
int __shmpool_tlsf_alloc(struct shmpool_heap *h, uint64_t size, uint64_t align,
			 unsigned int flags, uint64_t *off);
/* @flags: the BLK_NAMED/BLK_SLAB bits the block must have, else -EINVAL/-EBUSY */
int __shmpool_tlsf_free(struct shmpool_heap *h, uint64_t off, unsigned int flags);
/* the caller's attachment id, re-attaching after fork(); 0 or -errno */
int __shmpool_heap_owner(struct shmpool_heap *h, uint16_t *owner);
/*
 * Under the heap lock: release the owner ids whose pool attachment ended
 * (heap.c, heap_release()); @flags SHMPOOL_RECLAIM_*. Returns how many
 * blocks and objects went back to the heap.
 */
long __shmpool_heap_reclaim_locked(struct shmpool_heap *h, unsigned int flags);

/* slab.c: the small classes' shared state (objects in three states, see there) */
#define SLOT_CACHED	0x80000000U	/* slot of an object in a thread cache */

/* slab objects lie past the first chunk, so no link is below NR_ATTACH */
_Static_assert(SLAB_SIZE / GRAN >= NR_ATTACH, "a free-list link could pass for an owner id");

/* a small object: its granule and index in its slab */
struct slab_ref {
	uint32_t g;
	uint32_t idx;
};

/* the class of a size 1..SHMPOOL_HEAP_SMALL_MAX */
static inline unsigned int slab_class(size_t size)
{
	unsigned int s = (unsigned int)size - 1, l;

	if (s < 128)
		return s >> 4;				/* 16 .. 128 by 16 */
	l = 31U - (unsigned int)__builtin_clz(s);	/* 7 .. 10 */
	return 8 + (l - 7) * 4 + ((s >> (l - 2)) & 3);	/* 4 per power of two */
}

void __shmpool_slab_layout(struct heap_hdr *hh);

/* a small class's geometry, as the layout fixes it (slab.c) */
struct cls_info {
	uint32_t slab_shift;	/* slab bytes: 1 << slab_shift, aligned as much */
	uint32_t slab_mask;	/* (1 << slab_shift) - 1 */
	uint32_t size;		/* object size, bytes */
	uint32_t nobj;		/* objects per slab */
	uint32_t slot_off;	/* slab offset of u32 slot[nobj] */
	uint32_t obj_off;	/* slab offset of object 0 */
	uint32_t inv;		/* ceil(2^32 / size): rel * inv >> 32 == rel / size */
	uint32_t __pad;		/* 32 bytes: the fast paths index by shifting */
};

/*
 * What a handle keeps in process memory: the public part, then what the
 * hot paths need, copied from the header at open and checked there, so
 * that they neither chase the header nor trust it.
 */
struct heap_priv {
	struct shmpool_heap pub;
	struct heap_priv *next_open;	/* the open handles (tcache.c) */
	char *base;			/* the pool's mapping */
	_Atomic uint8_t *chunks;	/* the chunk map */
	uint32_t nr_chunks;
	/*
	 * The geometry, a function of the pool size alone: computed, never
	 * read from the pool (heap_geometry() in heap.c), and the header
	 * checked against it at open. Nothing below is trusted from shared
	 * memory again.
	 */
	uint32_t heap_g;		/* first block */
	uint32_t end_g;			/* the sentinel */
	uint64_t lo;			/* heap area: [lo, hi) bytes, blocks and slabs */
	uint64_t hi;
	uint64_t chunk_off;
	uint64_t bitmap_off;
	uint64_t *bitmap;		/* the block-start bitmap */
	uint64_t *summary;		/* its summary: bit w says bitmap[w] != 0 */
	uint64_t bitmap_words;
	uint64_t max_free;		/* most free blocks there can be: bounds list walks */
	_Atomic long lock_ms;		/* longest wait for the heap lock; -1: no limit */
	struct cls_info cls[NR_CLASSES];
	/*
	 * A class-c slab starting at byte s lies inside [lo, hi) if
	 * s - lo < slab_room[c]: one compare (slab_locate()).
	 */
	uint64_t slab_room[NR_CLASSES];
	/* slab_class() of the sizes 16 * i + 1 .. 16 * (i + 1) */
	uint8_t size_cls[SHMPOOL_HEAP_SMALL_MAX >> GRAN_SHIFT];
};

static inline struct heap_priv *heap_priv(struct shmpool_heap *h)
{
	return (struct heap_priv *)h;	/* @pub is first */
}

static inline const struct heap_priv *heap_cpriv(const struct shmpool_heap *h)
{
	return (const struct heap_priv *)h;
}

static inline uint64_t *heap_bitmap(const struct shmpool_heap *h)
{
	return heap_cpriv(h)->bitmap;
}

static inline _Atomic uint8_t *heap_chunks(const struct shmpool_heap *h)
{
	return heap_cpriv(h)->chunks;
}

/* the geometry of every class (the same in every process) */
void __shmpool_slab_geometry(struct cls_info ci[NR_CLASSES]);

/* the hot paths of the small classes, inlined into tcache.c */

/* pool offset of the class-@c slab holding @off */
static inline uint64_t slab_start(const struct heap_priv *hp, uint64_t off,
				  unsigned int c)
{
	return off & ~(uint64_t)hp->cls[c].slab_mask;
}

static inline struct slab_hdr *slab_of(struct shmpool_heap *h, uint64_t off,
				       unsigned int c)
{
	struct heap_priv *hp = heap_priv(h);

	return (struct slab_hdr *)(hp->base + slab_start(hp, off, c));
}

/* slot[0] of the class-@c slab holding @off */
static inline _Atomic uint32_t *slots_of(struct shmpool_heap *h, uint64_t off,
					 unsigned int c)
{
	return (_Atomic uint32_t *)((char *)slab_of(h, off, c) +
				    heap_priv(h)->cls[c].slot_off);
}

/* the slot of object @idx of class @c in the slab holding @off */
static inline _Atomic uint32_t *slot_of(struct shmpool_heap *h, uint64_t off,
					unsigned int c, uint32_t idx)
{
	return slots_of(h, off, c) + idx;
}

/* the allocation bitmap word of object @idx */
static inline _Atomic uint64_t *bits_of(struct shmpool_heap *h, uint64_t off,
					unsigned int c, uint32_t idx)
{
	return &slab_of(h, off, c)->bits[idx / 64];
}

/*
 * The class of the slab holding @off and the object's index in it; -1 if
 * @off is in no slab, -EINVAL if it is but not at an object, -EUCLEAN.
 */
static inline int slab_locate(struct shmpool_heap *h, uint64_t off, uint32_t *idx)
{
	struct heap_priv *hp = heap_priv(h);
	const struct cls_info *ci;
	uint64_t chunk = off >> SLAB_SHIFT;
	uint32_t rel, i;
	uint8_t k;

	if (chunk >= hp->nr_chunks)
		return -1;
	/*
	 * Acquire: pairs with the release store in refill(), so the slab
	 * header and layout written before it are visible.
	 */
	k = atomic_load_explicit(&hp->chunks[chunk], memory_order_acquire);
	if (!k)
		return -1;
	if (k > NR_CLASSES)
		return -EUCLEAN;
	ci = &hp->cls[k - 1];
	/* a map byte a peer wrote over the metadata or the sentinel */
	if ((off & ~(uint64_t)ci->slab_mask) - hp->lo >= hp->slab_room[k - 1])
		return -EUCLEAN;
	/* below object 0 wraps around to an index past the last object */
	rel = ((uint32_t)off & ci->slab_mask) - ci->obj_off;
	i = (uint32_t)(((uint64_t)rel * ci->inv) >> 32);
	if (i * ci->size != rel || i >= ci->nobj)
		return -EINVAL;
	*idx = i;
	return k - 1;
}

/* A cached object becomes allocated by @owner. */
static inline void slab_hand_out(struct shmpool_heap *h, unsigned int c,
				 struct slab_ref r, uint16_t owner)
{
	/* relaxed: only this thread has the object; the slot guards frees */
	atomic_store_explicit(slot_of(h, (uint64_t)r.g << GRAN_SHIFT, c, r.idx),
			      owner, memory_order_relaxed);
}

/*
 * The allocated object at @off (class @c, index @idx, as located) becomes
 * cached by @owner: 0, or -EINVAL if it is not allocated (free, cached).
 */
static inline int slab_claim(struct shmpool_heap *h, uint64_t off, unsigned int c,
			     uint32_t idx, uint16_t owner)
{
	_Atomic uint32_t *slot = slot_of(h, off, c, idx);
	uint32_t v = owner;
	int tries;

	/*
	 * Relaxed: the object stays with this thread. Only an allocated
	 * object's slot is an owner id: a free object's is a link (0 or a
	 * granule past the metadata, so >= NR_ATTACH) and a cached one's has
	 * SLOT_CACHED, so a double free fails here, and of two racing frees
	 * only one CAS succeeds. The allocation bit need not be looked at.
	 * The first CAS guesses that we allocated the object, so the usual
	 * free takes the slot's line once, for writing. An allocated
	 * object's owner may change meanwhile (its owner's handle ended:
	 * slab_release() makes it OWNER_ORPHAN), so a failed CAS that found
	 * another owner id tries again; bounded, as a peer may keep writing
	 * owner ids there.
	 */
	for (tries = 0; tries < 4; tries++) {
		if (atomic_compare_exchange_strong_explicit(slot, &v, owner | SLOT_CACHED,
				memory_order_relaxed, memory_order_relaxed))
			return 0;
		if (!v || v >= NR_ATTACH)
			return -EINVAL;
	}
	return -EINVAL;
}

/*
 * Pop 1..@want objects of class @c into @out, cached by @owner: count or
 * -errno. From lane @lane, or a new slab for it; from the other lanes only
 * when there is no room for a slab.
 */
int __shmpool_slab_take(struct shmpool_heap *h, unsigned int c, uint16_t owner,
			unsigned int lane, struct slab_ref *out, unsigned int want);
/* push @n cached objects of class @c back on its list @lane */
void __shmpool_slab_give(struct shmpool_heap *h, unsigned int c, unsigned int lane,
			 const struct slab_ref *objs, unsigned int n);
/* 1 if @off is in no slab; else make @owner the owner of the allocated object there: 0 or -EINVAL */
int __shmpool_slab_adopt(struct shmpool_heap *h, uint64_t off, uint16_t owner);
/*
 * Heap lock held: give the slabs none of whose objects is allocated or
 * cached back to the general heap; returns how many (slab.c).
 */
long __shmpool_slab_trim(struct shmpool_heap *h);
/* 1 if @off is in a slab: *@size, *@owner of the object or *@ret -EINVAL */
int __shmpool_slab_query(struct shmpool_heap *h, uint64_t off, uint32_t *size,
			 uint32_t *owner, int *ret);
void __shmpool_slab_stats(struct shmpool_heap *h, struct shmpool_heap_stats *st);
/*
 * Heap lock held, @owner's handle gone: return the objects it had cached,
 * make those it held OWNER_ORPHAN, or free them too if @free_held (then also
 * the orphans). Returns how many went back to the lists.
 */
long __shmpool_slab_release(struct shmpool_heap *h, uint16_t owner, bool free_held);
/*
 * Heap lock held and nobody allocating small objects: list every free
 * object that is on no list (a process died moving it). Returns how many.
 */
long __shmpool_slab_sweep(struct shmpool_heap *h);
/* -EUCLEAN with a message, or 0 */
int __shmpool_slab_check(struct shmpool_heap *h, bool quiescent, char *msg,
			 size_t len);

/* heap.c: allocate and free a general block, taking the heap lock */
int __shmpool_heap_alloc(struct shmpool_heap *h, size_t size, size_t align,
			 uint64_t *off);
int __shmpool_heap_free(struct shmpool_heap *h, uint64_t off);

/* tcache.c: per-thread caches of small objects, and allocate/free */
/* a handle opened: its caches are to be emptied at exit() */
void __shmpool_tcache_register(struct shmpool_heap *h);
/* return every thread's cached objects of @h and forget them (heap close) */
void __shmpool_tcache_detach(struct shmpool_heap *h);

#endif /* SHMPOOL_HEAP_H */
