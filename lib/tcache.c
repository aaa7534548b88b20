// SPDX-License-Identifier: MIT
/*
 * Thread caches of small objects (include/shmpool_alloc.h).
 *
 * Each thread keeps, per heap handle it uses, a stack of freed objects per
 * class, so that a free followed by an allocation of the same class costs
 * no atomic but free's claim of the object (slab.c). The stacks are filled
 * from and emptied into the class's shared free list in batches of half
 * their capacity: one CAS on the list per batch.
 *
 * An object in a cache is neither free nor allocated: its slot says
 * "cached by attachment a" (slab.c), so shmpool_free() of it is -EINVAL,
 * the checker accepts it, and shmpool_heap_stats() counts it in @cached,
 * not @used. Caches go back to the lists when their thread exits, on
 * shmpool_heap_flush() and on shmpool_heap_close(); a process that dies
 * without closing the heap leaves its cached objects marked with its
 * owner id, and whoever notices its death first gives them back
 * (heap_release() in heap.c, slab_release() in slab.c).
 *
 * Capacity: up to TC_MAX objects of a class and at most pool/4096 bytes of
 * it, so a thread cannot hoard much of a small pool (all classes together:
 * 0.6% of it); a class whose object is bigger than that is not cached at
 * all, nor is anything on a handle opened with SHMPOOL_HEAP_NOCACHE.
 *
 * Exit: a thread's caches are emptied when it exits (a pthread key
 * destructor), and the caches of the thread calling exit() by an atexit()
 * handler, for every heap still open; shmpool_close() of a pool closes out
 * the caches of heaps still open on it first, so that handler never
 * touches an unmapped pool. Only _exit() and death leave cached objects
 * behind, until the death is noticed (see above).
 *
 * Lifetime. A cache belongs to one thread and one handle, and is on two
 * lists: its thread's (thread-local, @tnext) and its handle's (@hnext, under
 * tc_lock). The hot path looks only at the thread's last used cache. Heap
 * close empties every cache of the handle, unlinks them from it and sets
 * their @heap to NULL (the owning thread frees them later, when it next
 * looks for a cache or exits). After fork() the child's copies carry the
 * parent's generation: the child's own thread resets its copy (its objects
 * are the parent's, cached in the parent too) and never empties the copies
 * of threads that did not come along.
 *
 * Trust (issue 14). A cache itself is process memory: its stacks, counts
 * and limits are out of a peer's reach. What of it lives in the pool is
 * each cached object's slot ("cached by attachment a"), its allocation bit,
 * its slab's chunk-map byte, the class lists the caches fill from and empty
 * into, and the owner table that says whose a cached object is. A peer (or
 * a reclaim that took us for dead after a peer's write to that table) may
 * change any of them, so: an object enters a cache only inside the heap
 * area (the handle's geometry, copied at the cache's making and checked
 * like heap open checks it) and only in a number the batch asked for; and
 * on the way out its slot must still say "cached by us", else it was taken
 * from us (listed, or handed to someone else) and is dropped, -EUCLEAN,
 * rather than handed out a second time (nor listed again by a flush: that
 * needs the slot and the allocation bit). Every loop here runs over the
 * cache's own stacks, bounded by TC_MAX.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"

#define TC_MAX		64	/* most objects of one class per cache */
#define TC_POOL_SHARE	12	/* at most pool >> TC_POOL_SHARE bytes per class */

struct tcache {
	struct shmpool_heap *_Atomic heap;	/* NULL once the handle closed */
	unsigned int gen;	/* fork generation the objects belong to */
	uint16_t owner;		/* our attachment id in that generation */
	uint16_t lane;		/* the class lists we fill from and empty into (slab.c) */
	uint32_t cached;	/* owner | SLOT_CACHED: the slot of an object cached here */
	uint32_t lo_g;		/* the heap area's first granule */
	uint32_t span[NR_CLASSES];	/* a class-c object at g lies inside if g - lo_g <= span[c] */
	struct tcache *tnext;	/* this thread's caches */
	struct tcache *hnext;	/* the handle's caches, under tc_lock */
	uint8_t n[NR_CLASSES];		/* objects cached: obj[c][0 .. n[c]) */
	uint8_t limit[NR_CLASSES];	/* capacity; 0: not cached */
	struct slab_ref obj[NR_CLASSES][TC_MAX];
};

_Static_assert(TC_MAX <= UINT8_MAX, "counts are bytes");

static pthread_mutex_t tc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static pthread_key_t tc_key;
static int tc_key_err;

/* initial-exec: no __tls_get_addr() call on the hot path of the shared library */
static __thread struct tcache *tc_hot __attribute__((tls_model("initial-exec")));	/* the last cache used */
static __thread struct tcache *tc_list;	/* all of this thread's caches */

static struct heap_priv *open_heaps;	/* every open handle, under tc_lock */
static bool exit_registered;		/* under tc_lock */

static unsigned int fork_gen(void)
{
	return atomic_load_explicit(&__shmpool_fork_gen, memory_order_relaxed);
}

/*
 * Give back class @c's objects [0, @n) of @tc and keep the rest. Those whose
 * slot no longer says "cached by us" were taken from us (see the top): they
 * are not ours to list.
 */
static void tc_drain(struct shmpool_heap *h, struct tcache *tc, unsigned int c,
		     uint32_t n)
{
	struct slab_ref give[TC_MAX];
	uint32_t i, k = 0;

	for (i = 0; i < n; i++)
		/* relaxed: the objects are this thread's; push() publishes them */
		if (atomic_load_explicit(slot_of(h, (uint64_t)tc->obj[c][i].g << GRAN_SHIFT,
						 c, tc->obj[c][i].idx),
					 memory_order_relaxed) == (tc->owner | SLOT_CACHED))
			give[k++] = tc->obj[c][i];
	__shmpool_slab_give(h, c, tc->lane, give, k);
	memmove(tc->obj[c], tc->obj[c] + n, (tc->n[c] - n) * sizeof(tc->obj[c][0]));
	tc->n[c] -= (uint8_t)n;
}

static void tc_drain_all(struct shmpool_heap *h, struct tcache *tc)
{
	unsigned int c;

	for (c = 0; c < NR_CLASSES; c++)
		if (tc->n[c])
			tc_drain(h, tc, c, tc->n[c]);
}

/* Unlink @tc from its handle's list; under tc_lock. */
static void tc_unlink_heap(struct shmpool_heap *h, struct tcache *tc)
{
	struct tcache **pp;

	for (pp = (struct tcache **)&h->__tcaches; *pp; pp = &(*pp)->hnext)
		if (*pp == tc) {
			*pp = tc->hnext;
			break;
		}
}

/* Thread exit: empty and free this thread's caches. */
static void tc_thread_exit(void *arg)
{
	struct shmpool_heap *h;
	struct tcache *tc;

	(void)arg;
	pthread_mutex_lock(&tc_lock);
	while ((tc = tc_list)) {
		tc_list = tc->tnext;
		h = atomic_load_explicit(&tc->heap, memory_order_relaxed);
		if (h) {
			if (tc->gen == fork_gen())
				tc_drain_all(h, tc);
			tc_unlink_heap(h, tc);
		}
		free(tc);
	}
	tc_hot = NULL;
	pthread_mutex_unlock(&tc_lock);
}

/* exit(): empty the calling thread's caches of every heap still open. */
static void tc_process_exit(void)
{
	struct tcache *tc;
	struct shmpool_heap *h;

	pthread_mutex_lock(&tc_lock);
	for (tc = tc_list; tc; tc = tc->tnext) {
		h = atomic_load_explicit(&tc->heap, memory_order_relaxed);
		if (h && tc->gen == fork_gen())
			tc_drain_all(h, tc);
	}
	pthread_mutex_unlock(&tc_lock);
}

void __shmpool_tcache_register(struct shmpool_heap *h)
{
	pthread_mutex_lock(&tc_lock);
	if (!exit_registered)
		exit_registered = !atexit(tc_process_exit);
	heap_priv(h)->next_open = open_heaps;
	open_heaps = heap_priv(h);
	pthread_mutex_unlock(&tc_lock);
}

/* Empty and forget every cache of @h; under tc_lock. */
static void tc_detach_locked(struct shmpool_heap *h)
{
	struct heap_priv **pp;
	struct tcache *tc;

	for (pp = &open_heaps; *pp; pp = &(*pp)->next_open)
		if (*pp == heap_priv(h)) {
			*pp = heap_priv(h)->next_open;
			break;
		}
	while ((tc = h->__tcaches)) {
		h->__tcaches = tc->hnext;
		if (tc->gen == fork_gen())
			tc_drain_all(h, tc);
		/* its thread frees it (tc_find, tc_thread_exit) */
		atomic_store_explicit(&tc->heap, NULL, memory_order_relaxed);
	}
}

void __shmpool_tcache_pool_closing(struct shmpool *p)
{
	struct heap_priv *hp, *next;

	pthread_mutex_lock(&tc_lock);
	for (hp = open_heaps; hp; hp = next) {
		next = hp->next_open;
		if (hp->pub.pool == p)
			tc_detach_locked(&hp->pub);
	}
	pthread_mutex_unlock(&tc_lock);
}

static void tc_key_init(void)
{
	tc_key_err = pthread_key_create(&tc_key, tc_thread_exit);
}

/*
 * The heap area [lo_g, end_g) in granules, read from the header once and
 * checked as heap open checks it (heap_validate()); -EUCLEAN if a peer
 * has scribbled it since.
 */
static int tc_geometry(struct shmpool_heap *h, struct tcache *tc)
{
	const struct heap_hdr *hh = heap_hdr(h);
	uint64_t pool_g = h->pool->size >> GRAN_SHIFT;
	uint32_t lo = hh->heap_g, end = hh->end_g;
	unsigned int c, size_g;

	if (end != pool_g - 1 || lo >= end || hh->bitmap_off >= h->pool->size ||
	    hh->bitmap_off + (pool_g + 7) / 8 > (uint64_t)lo << GRAN_SHIFT)
		return -EUCLEAN;
	tc->lo_g = lo;
	for (c = 0; c < NR_CLASSES; c++) {
		size_g = heap_priv(h)->cls[c].size >> GRAN_SHIFT;
		tc->span[c] = end - lo >= size_g ? end - lo - size_g : 0;
	}
	return 0;
}

/* Is the class-@c object at granule @g inside the heap area? */
static inline bool tc_inside(const struct tcache *tc, uint32_t g, unsigned int c)
{
	/* one compare: below lo_g wraps around to far above any span */
	return g - tc->lo_g <= tc->span[c];
}

/* The next lane round-robin: any value a peer left there will do. */
static uint16_t tc_pick_lane(struct shmpool_heap *h)
{
	/* relaxed: a hint; nothing is ordered by it */
	return (uint16_t)(atomic_fetch_add_explicit(&heap_hdr(h)->lane_next, 1,
						    memory_order_relaxed) % NR_LANES);
}

/*
 * An empty cache of this process's generation, for attachment @owner: the
 * heap's geometry (0 or -EUCLEAN), its own lane, and capacities.
 */
static int tc_start(struct shmpool_heap *h, struct tcache *tc, uint16_t owner)
{
	uint64_t share = h->pool->size >> TC_POOL_SHARE, n;
	unsigned int c;
	int ret = tc_geometry(h, tc);

	if (ret)
		return ret;
	tc->gen = fork_gen();
	tc->owner = owner;
	tc->cached = owner | SLOT_CACHED;
	tc->lane = tc_pick_lane(h);
	for (c = 0; c < NR_CLASSES; c++) {
		n = share / heap_priv(h)->cls[c].size;
		if (h->__flags & SHMPOOL_HEAP_NOCACHE)
			n = 0;
		tc->limit[c] = (uint8_t)(n < TC_MAX ? (n < 2 ? 0 : n) : TC_MAX);
		tc->n[c] = 0;
	}
	return 0;
}

/*
 * This thread's cache for @h, made if need be; NULL if none can be had
 * (out of memory, or no attachment id), with the error in tc_err.
 */
static __thread int tc_err;

static __attribute__((noinline)) struct tcache *tc_find(struct shmpool_heap *h)
{
	struct tcache **pp, *tc, *found = NULL;
	int *err = &tc_err;
	uint16_t owner;

	pthread_once(&tc_once, tc_key_init);
	pthread_mutex_lock(&tc_lock);
	for (pp = &tc_list; (tc = *pp);) {
		if (!atomic_load_explicit(&tc->heap, memory_order_relaxed)) {
			*pp = tc->tnext;	/* its handle closed */
			if (tc_hot == tc)
				tc_hot = NULL;
			free(tc);
			continue;
		}
		if (atomic_load_explicit(&tc->heap, memory_order_relaxed) == h)
			found = tc;
		pp = &tc->tnext;
	}
	*err = __shmpool_heap_owner(h, &owner);
	if (*err)
		goto out;
	tc = found;
	if (tc && tc->gen != fork_gen()) {
		/* a fork()ed child's copy: its objects are the parent's */
		*err = tc_start(h, tc, owner);
		if (*err)
			goto out;
	}
	if (!tc) {
		*err = tc_key_err ? -tc_key_err : 0;
		if (!*err)
			*err = -pthread_setspecific(tc_key, (void *)1);
		if (*err)
			goto out;
		tc = calloc(1, sizeof(*tc));
		if (!tc) {
			*err = -ENOMEM;
			goto out;
		}
		*err = tc_start(h, tc, owner);
		if (*err) {
			free(tc);
			goto out;
		}
		atomic_store_explicit(&tc->heap, h, memory_order_relaxed);
		tc->tnext = tc_list;
		tc_list = tc;
		tc->hnext = h->__tcaches;
		h->__tcaches = tc;
	}
	tc_hot = tc;
out:
	pthread_mutex_unlock(&tc_lock);
	return *err ? NULL : tc;
}

/*
 * Another heap than last time: only this thread changes its list, so it
 * may walk it unlocked (a closing handle only clears @heap).
 */
static __attribute__((noinline)) struct tcache *tc_switch(struct shmpool_heap *h)
{
	struct tcache *tc;

	for (tc = tc_list; tc; tc = tc->tnext)
		if (atomic_load_explicit(&tc->heap, memory_order_relaxed) == h &&
		    tc->gen == fork_gen())
			return tc_hot = tc;
	return tc_find(h);
}

static inline struct tcache *tc_get(struct shmpool_heap *h)
{
	struct tcache *tc = tc_hot;

	/* fork() resets tc_hot in the child (the generation is checked there) */
	if (tc && atomic_load_explicit(&tc->heap, memory_order_relaxed) == h)
		return tc;
	return tc_switch(h);
}

/*
 * The class-@c stack is empty: fill it from the class's list. A count
 * above the batch, or an object outside the heap area, is a list a peer
 * wrote: -EUCLEAN, and nothing of the batch is kept.
 */
static __attribute__((noinline)) int tc_refill(struct shmpool_heap *h,
					       struct tcache *tc, unsigned int c)
{
	unsigned int want = tc->limit[c] > 2 ? tc->limit[c] / 2U : 1;
	int ret, i;

	ret = __shmpool_slab_take(h, c, tc->owner, tc->lane, tc->obj[c], want);
	if (ret < 0)
		return ret;
	if (!ret || (unsigned int)ret > want)
		return -EUCLEAN;
	for (i = 0; i < ret; i++)
		if (!tc_inside(tc, tc->obj[c][i].g, c))
			return -EUCLEAN;
	tc->n[c] = (uint8_t)ret;
	return 0;
}

/* The class-@c stack is full (or caches nothing): make room and keep @r. */
static __attribute__((noinline)) void tc_overflow(struct shmpool_heap *h,
						  struct tcache *tc, unsigned int c,
						  struct slab_ref r)
{
	if (!tc->limit[c]) {
		__shmpool_slab_give(h, c, tc->lane, &r, 1);
		return;
	}
	tc_drain(h, tc, c, tc->limit[c] / 2U);	/* the oldest */
	tc->obj[c][tc->n[c]++] = r;
}

/* always inlined: GCC would split it, and the hot path would pay a call */
static inline __attribute__((always_inline)) int alloc(struct shmpool_heap *h,
							size_t size, size_t align,
							uint64_t *off)
{
	_Atomic uint32_t *slot;
	struct tcache *tc;
	struct slab_ref r;
	unsigned int c;
	uint64_t o;
	int ret;

	if (!h || !off || !size || (align & (align - 1)))
		return -EINVAL;
	if (align > GRAN || size > SHMPOOL_HEAP_SMALL_MAX)
		return __shmpool_heap_alloc(h, size, align, off);
	tc = tc_get(h);
	if (!tc)
		return tc_err;
	c = slab_class(size);
	if (!tc->n[c]) {
		ret = tc_refill(h, tc, c);
		if (ret == -ENOMEM)	/* no room for a slab: maybe a block */
			return __shmpool_heap_alloc(h, size, align, off);
		if (ret)
			return ret;
	}
	r = tc->obj[c][--tc->n[c]];
	o = (uint64_t)r.g << GRAN_SHIFT;
	slot = slot_of(h, o, c, r.idx);
	/*
	 * Relaxed: only this thread has the object (the slot guards frees).
	 * Still "cached by us"? Else a peer's write or a reclaim took it
	 * from us (it may be on a list, or someone's): drop it, never hand
	 * it out twice. The slot's line is about to be written anyway. The
	 * allocation bit is not looked at: its line is the slab header's,
	 * which every batch of every process writes (reading it here cost
	 * the two-process rows a third of their speed); if a peer cleared
	 * it, the object we hand out is still ours, as its slot says, and
	 * the stranded sweep leaves an object whose slot says it is held
	 * (slab.c).
	 */
	if (atomic_load_explicit(slot, memory_order_relaxed) != (tc->owner | SLOT_CACHED))
		return -EUCLEAN;
	atomic_store_explicit(slot, tc->owner, memory_order_relaxed);
	*off = o;
	return 0;
}

SHMPOOL_EXPORT
int shmpool_alloc_aligned(struct shmpool_heap *h, size_t size, size_t align,
			  uint64_t *off)
{
	return alloc(h, size, align, off);
}

/*
 * The fast paths of shmpool_alloc() and shmpool_free(): a small object
 * from or into the thread's last used cache, when that is @h's. They do
 * what alloc() and free_full() do in that case, with the same checks,
 * and hand every other case (errors, other heaps, empty or full stacks,
 * a slot that does not say what we expect) to those before changing
 * anything, so the full paths start from where the fast ones found
 * things. Leaves: no frame, the full paths are tail calls. shmpool_free()
 * repeats slab_locate() and slab_claim()'s first guess inline rather than
 * calling them: calling them costs 15 more instructions per free (83
 * against 68), as they derive the class's geometry again.
 */
static __attribute__((noinline)) int alloc_full(struct shmpool_heap *h,
						size_t size, uint64_t *off)
{
	return alloc(h, size, 0, off);
}

SHMPOOL_EXPORT
int shmpool_alloc(struct shmpool_heap *h, size_t size, uint64_t *off)
{
	const struct heap_priv *hp = heap_cpriv(h);
	struct tcache *tc = tc_hot;
	const struct cls_info *ci;
	_Atomic uint32_t *slot;
	struct slab_ref r;
	unsigned int c, n;
	char *slab;
	uint64_t o;

	if (!h || !off || size - 1 >= SHMPOOL_HEAP_SMALL_MAX || !tc ||
	    atomic_load_explicit(&tc->heap, memory_order_relaxed) != h)
		return alloc_full(h, size, off);
	c = hp->size_cls[(size - 1) >> GRAN_SHIFT];
	n = tc->n[c];
	if (!n)
		return alloc_full(h, size, off);
	r = tc->obj[c][n - 1];
	o = (uint64_t)r.g << GRAN_SHIFT;
	ci = &hp->cls[c];
	slab = hp->base + (o & ~(uint64_t)ci->slab_mask);
	slot = (_Atomic uint32_t *)(slab + ci->slot_off) + r.idx;
	/* relaxed, as in alloc(): still "cached by us"? */
	if (atomic_load_explicit(slot, memory_order_relaxed) != tc->cached)
		return alloc_full(h, size, off);
	atomic_store_explicit(slot, tc->owner, memory_order_relaxed);
	tc->n[c] = (uint8_t)(n - 1);
	*off = o;
	return 0;
}

static __attribute__((noinline)) int free_full(struct shmpool_heap *h, uint64_t off)
{
	struct tcache *tc;
	struct slab_ref r;
	int c, ret;

	if (!h)
		return -EINVAL;
	c = slab_locate(h, off, &r.idx);
	if (c == -1)	/* not in a slab: a general block, if anything */
		return off < h->pool->size ? __shmpool_heap_free(h, off) : -EINVAL;
	if (c < 0)
		return c;
	tc = tc_get(h);
	if (!tc)
		return tc_err;
	r.g = (uint32_t)(off >> GRAN_SHIFT);
	/* a chunk map a peer wrote may put a "slab" in the metadata */
	if (!tc_inside(tc, r.g, (unsigned int)c))
		return -EUCLEAN;
	ret = slab_claim(h, off, (unsigned int)c, r.idx, tc->owner);
	if (ret)
		return ret;
	if (tc->n[c] < tc->limit[c])
		tc->obj[c][tc->n[c]++] = r;
	else
		tc_overflow(h, tc, (unsigned int)c, r);
	return 0;
}

SHMPOOL_EXPORT
int shmpool_free(struct shmpool_heap *h, uint64_t off)
{
	const struct heap_priv *hp = heap_cpriv(h);
	struct tcache *tc = tc_hot;
	uint64_t chunk = off >> SLAB_SHIFT, slab;
	const struct cls_info *ci;
	_Atomic uint32_t *slot;
	uint32_t rel, i, v;
	unsigned int c, n;

	if (!h || !tc || atomic_load_explicit(&tc->heap, memory_order_relaxed) != h ||
	    chunk >= hp->nr_chunks)
		return free_full(h, off);
	/* acquire: as in slab_locate(), pairs with the release store in refill() */
	c = atomic_load_explicit(&hp->chunks[chunk], memory_order_acquire) - 1U;
	if (c >= NR_CLASSES)
		return free_full(h, off);	/* a general block, or a damaged map */
	ci = &hp->cls[c];
	slab = off & ~(uint64_t)ci->slab_mask;
	rel = ((uint32_t)off & ci->slab_mask) - ci->obj_off;	/* wraps if below */
	i = (uint32_t)(((uint64_t)rel * ci->inv) >> 32);
	/* the slab inside the heap area (a peer may write the map), @off at an object */
	if (slab - hp->lo >= hp->slab_room[c] || i * ci->size != rel || i >= ci->nobj)
		return free_full(h, off);
	n = tc->n[c];
	if (n >= tc->limit[c])
		return free_full(h, off);
	slot = (_Atomic uint32_t *)(hp->base + slab + ci->slot_off) + i;
	/* relaxed, as in slab_claim(): allocated by us, now cached by us */
	v = tc->owner;
	if (!atomic_compare_exchange_strong_explicit(slot, &v, tc->cached,
			memory_order_relaxed, memory_order_relaxed))
		return free_full(h, off);
	tc->obj[c][n] = (struct slab_ref){ (uint32_t)(off >> GRAN_SHIFT), i };
	tc->n[c] = (uint8_t)(n + 1);
	return 0;
}

SHMPOOL_EXPORT
int shmpool_heap_flush(struct shmpool_heap *h)
{
	struct tcache *tc;

	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&tc_lock);
	for (tc = tc_list; tc; tc = tc->tnext)
		if (atomic_load_explicit(&tc->heap, memory_order_relaxed) == h &&
		    tc->gen == fork_gen())
			tc_drain_all(h, tc);
	pthread_mutex_unlock(&tc_lock);
	return 0;
}

void __shmpool_tcache_detach(struct shmpool_heap *h)
{
	pthread_mutex_lock(&tc_lock);
	tc_detach_locked(h);
	pthread_mutex_unlock(&tc_lock);
}

/*
 * Taken under tc_lock: __shmpool_self()'s reattach_lock and the heap's lock,
 * which may take a dead holder's lock over (takeover_lock).
 */
void __shmpool_tcache_atfork(enum __shmpool_fork_stage stage)
{
	if (stage == __SHMPOOL_FORK_CHILD)
		tc_hot = NULL;	/* the child's one thread: look its caches up again */
	__shmpool_fork_lock(&tc_lock, stage);
}
