/* SPDX-License-Identifier: MIT */
/*
 * libshmpool heap: malloc inside a pool, shared by every attached process,
 * and named objects ("requests", "config") that processes find by name.
 *
 * A heap takes over a whole pool. shmpool_heap_open() lays the pool out the
 * first time any process calls it (header at offset 0, then an attachment
 * table, the object directory, the slab map, the block-start bitmap and the
 * heap itself) and attaches to the existing layout afterwards. Any number of
 * processes may call it at once on a fresh pool: one initialises, the others
 * wait on a doorbell until it is done; if the initialiser dies half-way, a
 * waiter notices (its attachment id is in the state word) and starts over.
 *
 * Everything in the pool is an offset; shmpool_heap_ptr() turns one into a
 * pointer in the calling process. Offsets are aligned as requested relative
 * to the pool start; pointers are equally aligned up to the page size (the
 * pool is mapped page-aligned).
 *
 * Allocation:
 * - 1..8192 bytes with alignment <= 16: 32 size classes (16, 32, ..., 128,
 *   then four per power of two: 160, 192, 224, 256, 320, ..., 7168, 8192),
 *   served from slabs (16 KiB up to 2 KiB objects, 64 KiB above) by
 *   lock-free free lists (one 64-bit CAS of {offset, tag}), so small
 *   allocate/free pairs from several processes do not serialise on a lock.
 *   Overhead per object: the rounding to its class (at most 25%), 4 bytes
 *   of side metadata (owner while allocated, free-list link while free) and
 *   1 bit. A slab none of whose objects is allocated or cached goes back
 *   to the general heap when an allocation would fail without it, and on
 *   shmpool_heap_stats() and shmpool_heap_reclaim().
 * - lanes: each class has 8 free lists, and each thread cache (handed a
 *   lane round-robin as it is made) fills from and empties into its own,
 *   so threads and processes allocating at once work in slabs of their
 *   own instead of writing each other's metadata lines. A lane may hold a
 *   partly used slab of its own per class; when there is no room for a new
 *   slab, a lane takes from the others.
 * - thread caches: each thread keeps the small objects it frees, up to 64
 *   per class and pool/4096 bytes per class (so none of a class bigger than
 *   that), and allocates from them first, moving them to and from the
 *   shared lists in batches; an allocate/free pair then costs one atomic
 *   (free's claim of the object). Cached objects go back when the thread
 *   exits, when the process calls exit(), on shmpool_heap_flush(), and on
 *   shmpool_heap_close() or shmpool_close() of the pool;
 *   shmpool_heap_stats() counts them in classes[].cached. A process that
 *   dies or _exit()s leaves its cached objects marked with its owner id;
 *   they come back when its death is noticed (see "Owner death"). Open
 *   with SHMPOOL_HEAP_NOCACHE for no caching.
 * - everything else: a two-level segregated fit (TLSF) heap with boundary
 *   tags under the heap's shmpool_mutex: O(1) allocate and free, immediate
 *   coalescing. Overhead per block: a 16-byte header, rounding up to 16
 *   bytes, and 1 bit of the block-start bitmap; alignments above 16 cost up
 *   to the alignment in a split-off free block.
 * - fixed: the layout's metadata, about 20 KiB + pool/128 + pool/8192 +
 *   pool/16384.
 *
 * Validation: every free is checked against the block-start bitmap (general
 * blocks) or the slab's allocation bitmap (small objects) before anything is
 * written, so an offset outside the heap, misaligned, inside a block, or
 * already free is -EINVAL and changes nothing, in every build. A damaged
 * block header met on the way is -EUCLEAN (nothing is changed either).
 *
 * Hostile peers: the geometry is computed from the pool size and checked
 * against the header at open; every offset, link and size read from the
 * pool later is range-checked against the handle's copy (block headers:
 * check word, size, previous size, free flag against the bitmap; list
 * links against their neighbours; small objects: slab map, slab header,
 * allocation bit), and every walk is bounded by a count from the
 * geometry. A peer that writes into the heap's shared state gets the
 * others -EUCLEAN (the heap may stay so), never a signal, a hang, a block
 * outside the heap area or over a block the heap knows is in use, or a
 * write outside the pool. It can still spoil data in blocks, leak free
 * memory, and, holding or faking the heap mutex, stop the calls that
 * take it.
 *
 * Ownership: every block and small object records the owner id (1..1022) of
 * the handle that allocated it. Each open handle holds one such id, taken
 * at open (and again in a child after fork()) from the heap's owner table,
 * which records the pool attachment (shmpool.h, "Attachments") of the
 * handle's process: that is how others learn that the owner died (at once
 * on the device backend, by pidfd on memfd). shmpool_alloc_adopt() makes
 * the caller the owner of a block it was handed.
 *
 * Owner death. When an owner's attachment ended (its process died) or its
 * handle was closed:
 * - always, automatically: the objects it had cached (in thread caches, or
 *   half-way through an allocate or free) go back to the free lists, and
 *   the blocks and objects it still held become orphans: kept, since
 *   another process may be using them on purpose; shmpool_alloc_owner()
 *   says 0 for them. Its owner id is free for reuse only after that, so a
 *   newcomer never inherits anything. Who pays: shmpool_heap_open() (the
 *   newcomer), the first thread to take the heap lock after the pool's
 *   death_seq moved (device: general allocate/free, slab refill, named
 *   objects, stats, check), a refill that would fail with -ENOMEM, the
 *   thread that takes over a dead holder's heap lock, and
 *   shmpool_heap_reclaim(). Small allocate/free never pays (no syscall, no
 *   extra atomic): on memfd nothing happens until one of the others runs.
 * - on request only: shmpool_heap_reclaim() with SHMPOOL_RECLAIM_HELD frees
 *   the orphans (not named objects, not slabs), and with
 *   SHMPOOL_RECLAIM_STRANDED lists again the few small objects a process
 *   killed while moving a batch between a list and its cache, or while
 *   listing a new slab, left on no list. The second needs what
 *   SHMPOOL_CHECK_QUIESCENT needs: nobody allocating meanwhile.
 *
 * A thread that dies holding the heap's mutex (killed in the middle of an
 * allocate or free) is found out by the next locker (see shmpool_sync.h),
 * which rebuilds the general heap's lists, bitmap, counters and directory
 * from the chain of block headers (every step of an allocate, free, create
 * or remove keeps it walkable), verifies the result with the checker, and
 * carries on; shmpool_heap_stats() counts the rebuilds. If the chain is
 * broken or the check fails the heap is -EUCLEAN from then on.
 *
 * Errors: functions return 0, a non-negative result, or -errno and never
 * set errno; allocation failure is -ENOMEM. Read-only pools are -EPERM.
 * A call that needs the heap's lock (general blocks, a new slab, named
 * objects, stats, check, reclaim, open and close) and cannot get it within
 * the handle's lock timeout (shmpool_heap_set_lock_timeout(), 10 s unless
 * set) returns -ETIMEDOUT having changed nothing: a live peer holds the
 * lock that long, or wrote a live holder into it. A lock that names the
 * calling thread while it is in no heap or cache call (left by a thread
 * whose id was recycled as ours, or written by a peer) is taken over as
 * from a dead holder, repair included; a call made while this thread is
 * inside one (from a signal handler that interrupted it, or from a cache
 * iterate callback) gets -EDEADLK instead, having changed nothing.
 *
 * Concurrency: any call may run concurrently with any other, from any
 * thread of any process, on handles of the same pool, except that
 * shmpool_heap_close() must be the last call on its handle.
 */
#ifndef SHMPOOL_ALLOC_H
#define SHMPOOL_ALLOC_H

#include "shmpool.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHMPOOL_HEAP_NR_CLASSES	32	/* small size classes, 16..8192 bytes */
#define SHMPOOL_HEAP_SMALL_MAX	8192	/* largest size served by a class */
#define SHMPOOL_OBJ_NAME_MAX	40	/* object names: 1..39 bytes + NUL */
#define SHMPOOL_HEAP_MIN_POOL	(64 * 1024)	/* smallest pool a heap fits in */

/**
 * struct shmpool_heap - a process's handle on the heap of a pool
 * @pool: the pool (not owned: close the heap before the pool)
 *
 * Only @pool is API; the rest is private to the library.
 */
struct shmpool_heap {
	struct shmpool *pool;

	/* private: */
	void *__hdr;
	uint32_t __attach;	/* our attachment id, 1..; 0 after fork() until re-attached */
	uint32_t __fork_gen;	/* fork generation @__attach belongs to */
	void *__tcaches;	/* this handle's thread caches (lib/tcache.c) */
	uint32_t __flags;	/* SHMPOOL_HEAP_* open flags */
};

/**
 * struct shmpool_obj - a named object
 * @off: offset of its first byte in the pool
 * @size: the size it was created with
 */
struct shmpool_obj {
	uint64_t off;
	uint64_t size;
};

/**
 * struct shmpool_heap_class - one small size class
 * @size: object size in bytes
 * @slabs: slabs of this class
 * @objs: objects in those slabs
 * @used: objects allocated (exact when nobody allocates meanwhile)
 * @cached: objects in threads' caches: neither free on the shared list nor
 *	allocated
 */
struct shmpool_heap_class {
	uint32_t size;
	uint32_t slabs;
	uint64_t objs;
	uint64_t used;
	uint64_t cached;
};

/**
 * struct shmpool_heap_stats - what shmpool_heap_stats() reports
 * @heap_bytes: bytes the general allocator manages (pool less metadata)
 * @free_bytes: bytes that could still be handed out: usable bytes of free
 *	general blocks plus free objects of every class
 * @largest_free: the largest size one shmpool_alloc() would get now
 * @used_bytes: @heap_bytes less the free general blocks: what a trace has
 *	taken from the pool, headers, slabs and rounding included
 * @alloc_blocks: allocated blocks and small objects (not slabs, not named
 *	objects, which are counted in @objects)
 * @free_blocks: free general blocks
 * @slabs: slabs of all classes
 * @objects: named objects in the directory
 * @nr_attach: attachments in use
 * @repairs: times the heap was rebuilt after a thread died holding its lock
 * @classes: per small size class
 */
struct shmpool_heap_stats {
	uint64_t heap_bytes;
	uint64_t free_bytes;
	uint64_t largest_free;
	uint64_t used_bytes;
	uint64_t alloc_blocks;
	uint64_t free_blocks;
	uint32_t slabs;
	uint32_t objects;
	uint32_t nr_attach;
	uint32_t repairs;
	struct shmpool_heap_class classes[SHMPOOL_HEAP_NR_CLASSES];
};

/* flags for shmpool_heap_check() */
#define SHMPOOL_CHECK_QUIESCENT	(1U << 0)	/* also walk the small free lists:
						   only while nobody allocates */

/* flags for shmpool_heap_open() */
#define SHMPOOL_HEAP_NOCACHE	(1U << 0)	/* no thread caches on this handle */
#define SHMPOOL_HEAP_EXISTING	(1U << 1)	/* never lay a heap out, never wait */

/*
 * Attach to @p's heap, laying it out first if the pool is fresh (all zero).
 * @flags: SHMPOOL_HEAP_NOCACHE, SHMPOOL_HEAP_EXISTING or both, else -EINVAL.
 * With SHMPOOL_HEAP_EXISTING only a heap already laid out is opened:
 * -ENODATA for a fresh pool, -EUCLEAN while one is being laid out (an
 * observer such as shmpoolctl check must not write a layout into a pool
 * whose state a peer may reset after it looked). Without it, waits while
 * another process initialises (-ETIMEDOUT after 10 s if it is alive but
 * does not finish, or if the heap's state word keeps changing under the
 * call); takes over if it died.
 * -EUCLEAN: the pool holds something that is not a heap of this layout
 * version or size; -EPERM: read-only pool; -EINVAL: pool smaller than
 * SHMPOOL_HEAP_MIN_POOL; -EFBIG: pool above 64 GiB; -EUSERS: every
 * attachment id is taken by a live process.
 */
int shmpool_heap_open(struct shmpool *p, unsigned int flags,
		      struct shmpool_heap **out);
/*
 * Return every thread's cached objects, give back the owner id and free @h
 * (NULL is fine); allocated blocks stay, as orphans. 0, or -EUCLEAN if the
 * heap is damaged, or -ETIMEDOUT if its lock stayed busy (@h is freed all
 * the same; after -ETIMEDOUT the owner id and its blocks stay ours until
 * this process ends).
 */
int shmpool_heap_close(struct shmpool_heap *h);
/* Return the calling thread's cached small objects of @h to the shared lists. */
int shmpool_heap_flush(struct shmpool_heap *h);
/*
 * How long calls on @h (and on caches opened on it: shmpool_cache.h) wait
 * for the heap's lock before they return -ETIMEDOUT: @ms milliseconds (0: only if it is free now), or -1 for as
 * long as it takes (then a peer that holds the lock, or writes a live
 * holder into it, blocks them for ever). Default 10000. A holder that dies
 * is taken over whatever the setting (shmpool_sync.h). 0, or -EINVAL for a
 * NULL @h or @ms below -1.
 */
int shmpool_heap_set_lock_timeout(struct shmpool_heap *h, long ms);

/* Allocate @size (>= 1) bytes aligned to 16; offset in *@off. */
int shmpool_alloc(struct shmpool_heap *h, size_t size, uint64_t *off);
/* Same with @align, a power of two (0 means 16); above 16 skips the classes. */
int shmpool_alloc_aligned(struct shmpool_heap *h, size_t size, size_t align,
			  uint64_t *off);
/*
 * Free the block at @off from any process. -EINVAL if @off is not an
 * allocated block (nothing changes), -EBUSY if it is a named object
 * (shmpool_obj_remove() frees those), -EUCLEAN on a damaged header.
 */
int shmpool_free(struct shmpool_heap *h, uint64_t off);
/* Usable bytes of the allocated block at @off (>= the size asked), or -EINVAL. */
int64_t shmpool_alloc_size(struct shmpool_heap *h, uint64_t off);
/*
 * The owner id (shmpool_heap_attach_id()) of the handle that allocated or
 * adopted the block at @off, 0 if that handle is gone (an orphan), or
 * -EINVAL.
 */
int shmpool_alloc_owner(struct shmpool_heap *h, uint64_t off);
/*
 * Make the calling handle the owner of the allocated block or small object
 * at @off (one it was handed by another process, say), so that it is not
 * an orphan when its allocator dies. -EINVAL if @off is not an allocated
 * block or object, or is a named object or a slab; -EBUSY if a small
 * object's owner changed 1024 times in a row under the call (a peer that
 * keeps writing owner ids there); -EUSERS as for shmpool_heap_open() (a
 * fork() child's first call takes an owner id).
 */
int shmpool_alloc_adopt(struct shmpool_heap *h, uint64_t off);
/* This process's attachment id (re-attaching after fork()). */
int shmpool_heap_attach_id(struct shmpool_heap *h);

/*
 * Find object @name or create it with @size bytes aligned to @align (0: 16),
 * zeroed before any other process can find it. Returns 1 if this call
 * created it, 0 if it existed (then *@obj describes the existing object,
 * whatever its size), -EINVAL for a bad name/size/align, -ENAMETOOLONG,
 * -ENOSPC if the directory is full, -ENOMEM.
 */
int shmpool_obj_create(struct shmpool_heap *h, const char *name, size_t size,
		       size_t align, struct shmpool_obj *obj);
/* Describe object @name in *@obj; -ENOENT if there is none. */
int shmpool_obj_find(struct shmpool_heap *h, const char *name,
		     struct shmpool_obj *obj);
/*
 * Remove @name from the directory and free its memory at once; -ENOENT if
 * none. No reference count: a config, cache or ring still open on it then
 * writes into freed heap space. Remove only what nobody uses.
 */
int shmpool_obj_remove(struct shmpool_heap *h, const char *name);

/* flags for shmpool_heap_reclaim() */
#define SHMPOOL_RECLAIM_HELD		(1U << 0)	/* also free the orphans */
#define SHMPOOL_RECLAIM_STRANDED	(1U << 1)	/* also list stranded small objects:
							   only while nobody allocates */

/*
 * Give back what owners without a handle left (see "Owner death" above):
 * their cached objects always, their orphans with SHMPOOL_RECLAIM_HELD,
 * stranded small objects with SHMPOOL_RECLAIM_STRANDED. Returns how many
 * blocks and objects went back (0 if none), -EINVAL for unknown flags,
 * -EUCLEAN for a damaged heap (also a small-object list that does not walk,
 * with SHMPOOL_RECLAIM_STRANDED), -ENOMEM if the walk's bitmap cannot be
 * had (SHMPOOL_RECLAIM_STRANDED).
 */
long shmpool_heap_reclaim(struct shmpool_heap *h, unsigned int flags);

/*
 * Fill *@st; classes are counted without stopping small allocations. Gives
 * the empty slabs back to the general heap first, so that @largest_free is
 * what one shmpool_alloc() gets. -EUCLEAN: a free list is damaged.
 */
int shmpool_heap_stats(struct shmpool_heap *h, struct shmpool_heap_stats *st);
/*
 * Walk the whole heap and its metadata. 0 if consistent; -EUCLEAN with the
 * first problem found (offset and what is wrong) in @msg (@len bytes, may
 * be 0). @flags: 0 or SHMPOOL_CHECK_QUIESCENT.
 */
int shmpool_heap_check(struct shmpool_heap *h, unsigned int flags,
		       char *msg, size_t len);

/* Pointer to [@off, @off + @len) of @h's pool, or NULL if outside it. */
static inline void *shmpool_heap_ptr(const struct shmpool_heap *h,
				     uint64_t off, size_t len)
{
	return shmpool_ptr(h->pool, off, len);
}

/**
 * struct shmpool_obj_entry - one named object, from shmpool_obj_next()
 * @name: its name
 * @off: offset of its first byte in the pool
 * @size: the size it was created with
 */
struct shmpool_obj_entry {
	char name[SHMPOOL_OBJ_NAME_MAX];
	uint64_t off;
	uint64_t size;
};

/*
 * Read-only introspection, for observers that have no heap handle (a heap
 * cannot be opened on a SHMPOOL_RDONLY pool): these take no lock and write
 * nothing, so they see a snapshot, exact only while nobody changes the heap.
 * -ENODATA: the pool holds no heap (yet); -EUCLEAN: not a heap of this
 * layout version (another version, or a heap whose header is damaged).
 */
/* shmpool_heap_stats() without the heap's lock, on any handle of @p. */
int shmpool_heap_inspect(struct shmpool *p, struct shmpool_heap_stats *st);
/*
 * The next named object at directory position *@pos or later, in *@e;
 * advances *@pos past it. Start with *@pos = 0. -ENOENT after the last.
 */
int shmpool_obj_next(struct shmpool *p, unsigned int *pos,
		     struct shmpool_obj_entry *e);

#ifdef __cplusplus
}
#endif

#endif /* SHMPOOL_ALLOC_H */
