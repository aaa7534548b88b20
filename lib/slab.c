// SPDX-License-Identifier: MIT
/*
 * Small size classes of the heap (include/shmpool_alloc.h): 16..2048 bytes
 * from 16 KiB slabs, through one lock-free free list per class and the
 * threads' caches (tcache.c).
 *
 * A slab is a general block whose payload is one 16 KiB-aligned chunk of the
 * pool, so the chunk map (one byte per chunk: 0 or 1 + class) says in one
 * load whether an offset is a small object and of which class. A slab
 * starts with struct slab_hdr and an allocation bitmap, then u32 slot[nobj],
 * then the objects. The allocator never writes into an object, so users own
 * every byte of it. An object is in one of three states:
 *
 *	free:		bit 0, slot = free-list link (granule of the next object)
 *	cached by a:	bit 1, slot = a | SLOT_CACHED (in a thread cache of
 *			attachment a, see tcache.c)
 *	allocated by a:	bit 1, slot = a (1 <= a < NR_ATTACH)
 *
 * Objects move between the class list and a thread cache in batches
 * (__shmpool_slab_take/give: one CAS on the list for the whole batch, and an
 * atomic on the bitmap per object); a thread cache hands them out and takes
 * them back with no atomic but the CAS of free's claim.
 *
 * Lanes: a class has NR_LANES lists (heap.h), and a thread cache takes from
 * and gives to its own lane, so a new slab made for an empty lane serves
 * that lane's caches alone. Two processes (or threads) allocating at once
 * then write the slots of different slabs, not each other's slot lines,
 * which would move between their cores on most operations. An object freed
 * by another thread than the one that took it joins the freer's lane. A
 * lane that is empty when there is no room for a new slab takes from the
 * others; checks, sweeps and trims look at every lane.
 *
 * Free lists: a Treiber stack per class whose head is {granule offset of
 * the top object, ABA tag} in one 64-bit word; every successful push or pop
 * bumps the tag, so a CAS prepared on a stale top fails even if the same
 * object is back on top, and a batch walked from a top the CAS then finds
 * unchanged was not touched meanwhile (objects leave a list only at its
 * top). A walker may read the slot of an object that another process has
 * just taken (and overwritten): that CAS fails on the tag, and the value
 * read is never used.
 *
 * Frees are safe against bad input: free claims an object with a CAS of its
 * slot from a plain owner id to "cached", which fails for a free or cached
 * object (its slot is a link, or has SLOT_CACHED) and for a second free
 * racing the first, so a double free is -EINVAL and never puts an object in
 * two places. A link is a granule past the heap's metadata, never below
 * NR_ATTACH, so it cannot pass for an owner id.
 *
 * Slabs are made under the heap lock when a class's list is empty, and go
 * back to the general heap once empty (__shmpool_slab_trim(), under the
 * heap lock, lazily: when an allocation would fail, on stats and reclaim).
 * A chunk's map byte is set before its slab's objects are listed and
 * cleared only after they all left the list again.
 *
 * Nothing read from the pool is trusted: the class geometry is the
 * handle's (cls_info), a list link must lead to a free object of the
 * class (map byte, slab inside the heap area with its header, allocation
 * bit clear), and a list that does not is cut there (-EUCLEAN).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"

#define TOP_G(t)	((uint32_t)(t))
#define TOP_TAG(t)	((uint32_t)((t) >> 32))
#define TOP(g, tag)	((uint64_t)(tag) << 32 | (g))

static const uint16_t class_size[NR_CLASSES] = {
	16, 32, 48, 64, 80, 96, 112, 128,
	160, 192, 224, 256, 320, 384, 448, 512,
	640, 768, 896, 1024, 1280, 1536, 1792, 2048,
	2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
};

void __shmpool_slab_geometry(struct cls_info ci[NR_CLASSES])
{
	uint32_t c, n, size, slab, slot_off = 0, obj_off = 0;

	for (c = 0; c < NR_CLASSES; c++) {
		size = class_size[c];
		ci[c].slab_shift = size >= SLAB_BIG_MIN ? SLAB_BIG_SHIFT : SLAB_SHIFT;
		slab = 1U << ci[c].slab_shift;
		ci[c].slab_mask = slab - 1;
		for (n = slab / size; n; n--) {
			slot_off = (uint32_t)sizeof(struct slab_hdr) + (n + 63) / 64 * 8;
			obj_off = (slot_off + 4 * n + GRAN - 1) & ~(GRAN - 1);
			if (obj_off + n * size <= slab)
				break;
		}
		ci[c].size = size;
		ci[c].nobj = n;
		ci[c].slot_off = slot_off;
		ci[c].obj_off = obj_off;
		ci[c].inv = (uint32_t)(((1ULL << 32) + size - 1) / size);
	}
}

void __shmpool_slab_layout(struct heap_hdr *hh)
{
	struct cls_info ci[NR_CLASSES];
	uint32_t c, l;

	__shmpool_slab_geometry(ci);
	for (c = 0; c < NR_CLASSES; c++) {
		hh->cls[c].size = ci[c].size;
		hh->cls[c].nobj = ci[c].nobj;
		hh->cls[c].slot_off = ci[c].slot_off;
		hh->cls[c].obj_off = ci[c].obj_off;
		for (l = 0; l < NR_LANES; l++)
			atomic_store_explicit(&hh->cls[c].top[l], 0, memory_order_relaxed);
	}
}

static inline _Atomic uint64_t *lane_top(struct shmpool_heap *h, unsigned int c,
					 unsigned int lane)
{
	return &heap_hdr(h)->cls[c].top[lane % NR_LANES];
}

/*
 * Push the chain @first .. @last (slot of @last gets the old top) on list
 * @tp. After __SHMPOOL_CAS_TRIES lost CASes the chain stays on no list: its
 * objects are free (their bits are clear) but stranded, which
 * SHMPOOL_RECLAIM_STRANDED lists again.
 */
static void push(_Atomic uint64_t *tp, uint32_t first, _Atomic uint32_t *last_slot)
{
	uint64_t top = atomic_load_explicit(tp, memory_order_relaxed);
	int tries = 0;

	do {
		if (tries++ == __SHMPOOL_CAS_TRIES)
			return;
		atomic_store_explicit(last_slot, TOP_G(top), memory_order_relaxed);
		/*
		 * Release: pairs with the acquire load and CAS in take();
		 * the links just stored, and whatever the freeing threads
		 * wrote into the objects, are visible to whoever pops them.
		 */
	} while (!atomic_compare_exchange_weak_explicit(tp, &top,
			TOP(first, TOP_TAG(top) + 1),
			memory_order_release, memory_order_relaxed));
}

/* Give class @c's list @tp a new slab, unless someone already refilled it. */
static int refill(struct shmpool_heap *h, unsigned int c, _Atomic uint64_t *tp)
{
	struct heap_hdr *hh = heap_hdr(h);
	const struct cls_info *ci = &heap_priv(h)->cls[c];	/* never the pool's copy */
	uint64_t off, chunk, bytes = 1ULL << ci->slab_shift;
	_Atomic uint32_t *slots;
	struct slab_hdr *s;
	uint32_t i, g0;
	int ret;

	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	/* relaxed: only a hint; a refill under this lock would show */
	if (TOP_G(atomic_load_explicit(tp, memory_order_relaxed))) {
		__shmpool_heap_unlock(h);
		return 0;
	}
	ret = __shmpool_tlsf_alloc(h, bytes, bytes, BLK_SLAB, &off);
	/* out of room: what dead attachments cached may be this class's */
	if (ret == -ENOMEM && __shmpool_heap_reclaim_locked(h, 0) > 0 &&
	    TOP_G(atomic_load_explicit(tp, memory_order_relaxed)))
		ret = -EAGAIN;	/* the list has objects again */
	if (ret) {
		__shmpool_heap_unlock(h);
		return ret == -EAGAIN ? 0 : ret;
	}
	hh->nr_slabs++;
	s = slab_of(h, off, c);
	s->magic = SLAB_MAGIC ^ c;
	s->cls = c;
	for (i = 0; i < (ci->nobj + 63) / 64; i++)
		atomic_store_explicit(&s->bits[i], 0, memory_order_relaxed);
	slots = slots_of(h, off, c);
	g0 = (uint32_t)((off + ci->obj_off) >> GRAN_SHIFT);
	for (i = 0; i + 1 < ci->nobj; i++)
		atomic_store_explicit(&slots[i], g0 + (i + 1) * (ci->size / GRAN),
				      memory_order_relaxed);
	/*
	 * Release: pairs with the acquire load in slab_locate(). The first
	 * chunk last, so that a slab whose first chunk is mapped is whole
	 * (the heap's repair after a dead refiller relies on it).
	 */
	for (chunk = (off + bytes) >> SLAB_SHIFT; chunk-- > off >> SLAB_SHIFT;)
		atomic_store_explicit(&heap_chunks(h)[chunk], (uint8_t)(c + 1),
				      memory_order_release);
	push(tp, g0, &slots[ci->nobj - 1]);
	__shmpool_heap_unlock(h);
	return 0;
}

/*
 * Whether @slot can be a free object's: a free-list link (the granule of an
 * object, which lies in a slab past the first 16 KiB chunk: above any owner
 * id) or 0 (the end). An allocated object's slot holds its owner's id (1 to
 * NR_ATTACH - 1), a cached one's that id | SLOT_CACHED: a list that leads
 * to one of those was written by a peer, and taking the object would hand
 * out a block someone holds. (A granule of 2^31 or more, in a heap above
 * 32 GiB, has bit 31 set; its low bits are still those of a granule inside
 * a slab, so at least NR_ATTACH.)
 */
static inline bool slot_is_link(uint32_t slot)
{
	return !slot || (slot & ~SLOT_CACHED) >= NR_ATTACH;
}

/*
 * Is the class-@c slab at @soff one that refill() made? Its header says so
 * (a peer's map byte over other memory does not), and it lies in the heap
 * area (slab_locate() checked that). Relaxed: refill() wrote the header
 * before the release store of the map byte that slab_locate() acquired.
 */
static bool slab_hdr_ok(struct shmpool_heap *h, uint64_t soff, unsigned int c)
{
	struct slab_hdr *s = (struct slab_hdr *)(heap_priv(h)->base + soff);

	return __atomic_load_n(&s->magic, __ATOMIC_RELAXED) == (SLAB_MAGIC ^ c) &&
	       __atomic_load_n(&s->cls, __ATOMIC_RELAXED) == c;
}

/*
 * Take from list @tp; an empty one is refilled with a new slab if @grow,
 * else it is -ENOMEM. -ENOMEM also after __SHMPOOL_CAS_TRIES rounds in which
 * the top moved under every try: the caller looks elsewhere, as when
 * there is no room for a slab.
 */
static int take(struct shmpool_heap *h, unsigned int c, uint16_t owner,
		_Atomic uint64_t *tp, bool grow, struct slab_ref *out, unsigned int want)
{
	uint64_t top, o, old, mask, soff, ok_slab = 0, now;
	uint32_t idx = 0, next, link;
	unsigned int n, i;
	bool bad;
	int ret, k, round;

	/* acquire: pairs with the release CAS in push() */
	top = atomic_load_explicit(tp, memory_order_acquire);
	for (round = 0;; round++) {
		if (round == __SHMPOOL_CAS_TRIES)
			return -ENOMEM;
		if (!TOP_G(top)) {
			ret = grow ? refill(h, c, tp) : -ENOMEM;
			if (ret)
				return ret;
			/* acquire: as above */
			top = atomic_load_explicit(tp, memory_order_acquire);
			continue;
		}
		/*
		 * Walk up to @want objects down from the top. Each must be a
		 * free object of this class in a slab of this class: a stale
		 * walk stops early (the CAS below fails), and so does a list
		 * a peer wrote into, whose rest is then dropped.
		 */
		next = TOP_G(top);
		bad = false;
		for (n = 0; n < want && next; n++) {
			o = (uint64_t)next << GRAN_SHIFT;
			k = slab_locate(h, o, &idx);
			soff = slab_start(heap_priv(h), o, c);
			if (k != (int)c || (soff != ok_slab && !slab_hdr_ok(h, soff, c)) ||
			    atomic_load_explicit(bits_of(h, o, c, idx), memory_order_relaxed) >>
					(idx % 64) & 1 ||
			    !slot_is_link(link = atomic_load_explicit(slot_of(h, o, c, idx),
								       memory_order_relaxed))) {
				bad = true;
				break;
			}
			ok_slab = soff;
			out[n].g = next;
			out[n].idx = idx;
			next = link;
		}
		if (!n) {
			/* acquire: as above */
			now = atomic_load_explicit(tp, memory_order_acquire);
			if (now != top) {
				top = now;	/* it moved under a stale walk */
				continue;
			}
			/*
			 * The list head is not one of ours: drop the list
			 * (its objects are stranded, see SHMPOOL_RECLAIM_STRANDED).
			 * Relaxed: nothing is handed over.
			 */
			atomic_compare_exchange_strong_explicit(tp, &top,
					TOP(0, TOP_TAG(top) + 1),
					memory_order_relaxed, memory_order_relaxed);
			return -EUCLEAN;
		}
		/*
		 * Acquire on success and failure: pairs with the release CAS
		 * in push(); on failure we walk again from the top we see.
		 */
		if (atomic_compare_exchange_weak_explicit(tp, &top,
				TOP(bad ? 0 : next, TOP_TAG(top) + 1),
				memory_order_acquire, memory_order_acquire))
			break;
	}
	for (i = 0; i < n; i++) {
		o = (uint64_t)out[i].g << GRAN_SHIFT;
		/* relaxed: the objects are ours now; slot and bit guard frees */
		atomic_store_explicit(slot_of(h, o, c, out[i].idx),
				      owner | SLOT_CACHED, memory_order_relaxed);
		mask = 1ULL << (out[i].idx % 64);
		old = atomic_fetch_or_explicit(bits_of(h, o, c, out[i].idx), mask,
					       memory_order_relaxed);
		/* listed twice (a link to an earlier object): keep the first */
		if (old & mask)
			return i ? (int)i : -EUCLEAN;
	}
	return (int)n;
}

int __shmpool_slab_take(struct shmpool_heap *h, unsigned int c, uint16_t owner,
			unsigned int lane, struct slab_ref *out, unsigned int want)
{
	unsigned int i;
	int ret;

	ret = take(h, c, owner, lane_top(h, c, lane), true, out, want);
	/* no room for a slab of our own: what the other lanes have */
	for (i = 1; ret == -ENOMEM && i < NR_LANES; i++)
		ret = take(h, c, owner, lane_top(h, c, lane + i), false, out, want);
	return ret;
}

void __shmpool_slab_give(struct shmpool_heap *h, unsigned int c, unsigned int lane,
			 const struct slab_ref *objs, unsigned int n)
{
	_Atomic uint32_t *last = NULL;
	uint32_t first = 0;
	uint64_t o, mask, old;
	unsigned int i;

	for (i = 0; i < n; i++) {
		o = (uint64_t)objs[i].g << GRAN_SHIFT;
		mask = 1ULL << (objs[i].idx % 64);
		/* relaxed: the contents are handed over by push()'s release */
		old = atomic_fetch_and_explicit(bits_of(h, o, c, objs[i].idx), ~mask,
						memory_order_relaxed);
		if (!(old & mask))
			continue;	/* not ours after all: never list it twice */
		if (last)
			atomic_store_explicit(last, objs[i].g, memory_order_relaxed);
		else
			first = objs[i].g;
		last = slot_of(h, o, c, objs[i].idx);
	}
	if (last)
		push(lane_top(h, c, lane), first, last);
}

/* Is object @idx of class @c at @off allocated, its slot holding @v (an owner id)? */
static bool obj_allocated(struct shmpool_heap *h, uint64_t off, unsigned int c,
			  uint32_t idx, uint32_t v)
{
	return v && v < NR_ATTACH &&
	       atomic_load_explicit(bits_of(h, off, c, idx), memory_order_relaxed) >>
			(idx % 64) & 1;
}

/* The slab object at @off: -1 if @off is in no slab, else its class or -errno. */
static int obj_slot(struct shmpool_heap *h, uint64_t off, uint32_t *idx,
		    _Atomic uint32_t **slot)
{
	int c = slab_locate(h, off, idx);

	if (c >= 0)
		*slot = slot_of(h, off, (unsigned int)c, *idx);
	return c;
}

int __shmpool_slab_query(struct shmpool_heap *h, uint64_t off, uint32_t *size,
			 uint32_t *owner, int *ret)
{
	_Atomic uint32_t *slot;
	uint32_t idx, v;
	int c;

	c = obj_slot(h, off, &idx, &slot);
	if (c == -1)
		return 0;
	*ret = c < 0 ? c : 0;
	if (c < 0)
		return 1;
	v = atomic_load_explicit(slot, memory_order_relaxed);
	if (!obj_allocated(h, off, (unsigned int)c, idx, v)) {
		*ret = -EINVAL;		/* free, or in a thread cache */
		return 1;
	}
	*size = heap_priv(h)->cls[c].size;
	*owner = v;
	return 1;
}

int __shmpool_slab_adopt(struct shmpool_heap *h, uint64_t off, uint16_t owner)
{
	_Atomic uint32_t *slot;
	uint32_t idx, v;
	int c, tries;

	c = obj_slot(h, off, &idx, &slot);
	if (c == -1)
		return 1;
	if (c < 0)
		return c;
	v = atomic_load_explicit(slot, memory_order_relaxed);
	/*
	 * Relaxed: only the owner id changes hands. An allocated object's
	 * slot is an owner id; free and cached ones fail here, and a free
	 * racing us wins or loses the CAS as a whole.
	 */
	for (tries = 0; tries < __SHMPOOL_CAS_TRIES; tries++) {
		if (!obj_allocated(h, off, (unsigned int)c, idx, v))
			return -EINVAL;
		if (atomic_compare_exchange_weak_explicit(slot, &v, owner,
				memory_order_relaxed, memory_order_relaxed))
			return 0;
	}
	return -EBUSY;	/* its owner id kept changing under us */
}

/* Objects of the class-@c slab at @off with their bit set, and how many are cached. */
static uint32_t slab_used(struct shmpool_heap *h, uint64_t off, unsigned int c,
			  uint32_t *cached)
{
	struct slab_hdr *s = slab_of(h, off, c);
	_Atomic uint32_t *slots = slots_of(h, off, c);
	uint32_t i, n = 0, nobj = heap_priv(h)->cls[c].nobj;
	uint64_t w;

	*cached = 0;
	for (i = 0; i < (nobj + 63) / 64; i++) {
		w = atomic_load_explicit(&s->bits[i], memory_order_relaxed);
		/* bits past the last object are never set, unless by a peer */
		if (nobj - i * 64 < 64)
			w &= (1ull << (nobj - i * 64)) - 1;
		n += (uint32_t)__builtin_popcountll(w);
		for (; w; w &= w - 1)
			if (atomic_load_explicit(&slots[i * 64 + (uint32_t)__builtin_ctzll(w)],
						 memory_order_relaxed) & SLOT_CACHED)
				(*cached)++;
	}
	return n;
}

/*
 * The class of the slab starting at chunk @chunk, -1 if none starts there
 * (no slab, or a 64 KiB slab's later chunk), -2 if the map byte is bad.
 */
static int slab_starting(struct shmpool_heap *h, uint64_t chunk)
{
	struct heap_priv *hp = heap_priv(h);
	uint8_t k;

	/* acquire: as in slab_locate() */
	k = atomic_load_explicit(&hp->chunks[chunk], memory_order_acquire);
	if (!k)
		return -1;
	if (k > NR_CLASSES)
		return -2;
	if (slab_start(hp, chunk << SLAB_SHIFT, k - 1U) != chunk << SLAB_SHIFT)
		return -1;
	/* outside the heap area, or no slab header: a peer's map byte */
	if ((chunk << SLAB_SHIFT) < hp->lo ||
	    ((chunk << SLAB_SHIFT) | hp->cls[k - 1].slab_mask) >= hp->hi ||
	    !slab_hdr_ok(h, chunk << SLAB_SHIFT, k - 1U))
		return -2;
	return k - 1;
}

#define RELEASE_BATCH	64

/*
 * Release one slab's objects (__shmpool_slab_release()). A cached object of
 * an owner without a handle is touched by nobody else (free refuses cached
 * objects), so it is ours to give back; an allocated one may be freed by
 * anyone meanwhile, so it changes owner only by CAS.
 */
static long slab_release(struct shmpool_heap *h, uint64_t off, unsigned int c,
			 uint16_t o, bool free_held)
{
	const struct cls_info *ci = &heap_priv(h)->cls[c];
	struct slab_hdr *s = slab_of(h, off, c);
	_Atomic uint32_t *slots = slots_of(h, off, c);
	struct slab_ref batch[RELEASE_BATCH];
	unsigned int nb = 0;
	uint32_t i, v;
	long n = 0;
	uint64_t w;

	for (i = 0; i < ci->nobj; i++) {
		w = atomic_load_explicit(&s->bits[i / 64], memory_order_relaxed);
		if (!(w >> (i % 64) & 1))
			continue;
		v = atomic_load_explicit(&slots[i], memory_order_relaxed);
		/* relaxed: the slot alone decides who has the object */
		if (o && v == o &&
		    atomic_compare_exchange_strong_explicit(&slots[i], &v, OWNER_ORPHAN,
				memory_order_relaxed, memory_order_relaxed))
			v = OWNER_ORPHAN;
		if (free_held && v == OWNER_ORPHAN &&
		    atomic_compare_exchange_strong_explicit(&slots[i], &v,
				OWNER_ORPHAN | SLOT_CACHED,
				memory_order_relaxed, memory_order_relaxed))
			v = OWNER_ORPHAN | SLOT_CACHED;
		/*
		 * Ours to give back: cached by @o, or claimed for freeing
		 * above (only a reclaimer under the heap lock makes an orphan
		 * cached, so one found so was left by a reclaimer that died).
		 */
		if (!(o && v == (o | SLOT_CACHED)) && v != (OWNER_ORPHAN | SLOT_CACHED))
			continue;
		batch[nb].g = (uint32_t)((off + ci->obj_off + (uint64_t)i * ci->size) >> GRAN_SHIFT);
		batch[nb++].idx = i;
		if (nb == RELEASE_BATCH) {
			__shmpool_slab_give(h, c, 0, batch, nb);
			n += nb;
			nb = 0;
		}
	}
	if (nb)
		__shmpool_slab_give(h, c, 0, batch, nb);
	return n + nb;
}

long __shmpool_slab_release(struct shmpool_heap *h, uint16_t owner, bool free_held)
{
	struct heap_priv *hp = heap_priv(h);
	uint64_t chunk;
	long n = 0;
	int c;

	for (chunk = 0; chunk < hp->nr_chunks; chunk++) {
		c = slab_starting(h, chunk);
		if (c >= 0)
			n += slab_release(h, chunk << SLAB_SHIFT, (unsigned int)c,
					  owner, free_held);
	}
	return n;
}

/* Append the object at @o (slot @slot) to the chain *@first .. *@last. */
static void chain_add(uint32_t *first, _Atomic uint32_t **last, uint64_t o,
		      _Atomic uint32_t *slot)
{
	/* relaxed: push() publishes the chain */
	if (*last)
		atomic_store_explicit(*last, (uint32_t)(o >> GRAN_SHIFT), memory_order_relaxed);
	else
		*first = (uint32_t)(o >> GRAN_SHIFT);
	*last = slot;
}

/*
 * Mark in @seen (a bit per granule) the objects on class @c's list @tp;
 * false if it leads outside the class's objects or to one already marked.
 */
static bool mark_listed(struct shmpool_heap *h, unsigned int c,
			_Atomic uint64_t *tp, uint64_t *seen)
{
	uint32_t idx = 0;
	uint64_t o;

	/* acquire: pairs with the release CAS in push() (the links) */
	for (o = (uint64_t)TOP_G(atomic_load_explicit(tp, memory_order_acquire)) << GRAN_SHIFT;
	     o; o = (uint64_t)atomic_load_explicit(slot_of(h, o, c, idx),
						   memory_order_relaxed) << GRAN_SHIFT) {
		if (slab_locate(h, o, &idx) != (int)c ||
		    seen[(o >> GRAN_SHIFT) / 64] >> ((o >> GRAN_SHIFT) % 64) & 1)
			return false;
		seen[(o >> GRAN_SHIFT) / 64] |= 1ULL << ((o >> GRAN_SHIFT) % 64);
	}
	return true;
}

long __shmpool_slab_sweep(struct shmpool_heap *h)
{
	struct heap_priv *hp = heap_priv(h);
	struct heap_hdr *hh = heap_hdr(h);
	uint64_t *seen, chunk, o, off, w;
	_Atomic uint32_t *last, *slots;
	uint32_t i, first, v;
	const struct cls_info *ci;
	unsigned int c, l;
	long n = 0;
	int k;

	seen = calloc((h->pool->size >> GRAN_SHIFT) / 64 + 1, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (c = 0; c < NR_CLASSES; c++)
		for (l = 0; l < NR_LANES; l++)
			/* a bad list (the checker says): sweep nothing rather than list twice */
			if (!mark_listed(h, c, &hh->cls[c].top[l], seen)) {
				free(seen);
				return -EUCLEAN;
			}
	for (chunk = 0; chunk < hp->nr_chunks; chunk++) {
		k = slab_starting(h, chunk);
		if (k < 0)
			continue;
		c = (unsigned int)k;
		ci = &hp->cls[c];
		off = chunk << SLAB_SHIFT;
		slots = slots_of(h, off, c);
		last = NULL;
		first = 0;
		for (i = 0; i < ci->nobj; i++) {
			w = atomic_load_explicit(&slab_of(h, off, c)->bits[i / 64],
						 memory_order_relaxed);
			o = off + ci->obj_off + (uint64_t)i * ci->size;
			if (w >> (i % 64) & 1 ||
			    seen[(o >> GRAN_SHIFT) / 64] >> ((o >> GRAN_SHIFT) % 64) & 1)
				continue;
			/*
			 * Its slot says someone holds it: no batch leaves that
			 * with the bit clear (a take sets "cached" first, a give
			 * clears the bit of a cached one), so a peer cleared
			 * the bit; a thread cache hands out what its slot says
			 * is cached by it without looking at the bit. Leave it.
			 */
			v = atomic_load_explicit(&slots[i], memory_order_relaxed);
			if (v && v < NR_ATTACH)
				continue;
			/* free, on no list: a batch or a refill cut short */
			chain_add(&first, &last, o, &slots[i]);
			n++;
		}
		if (last)
			push(&hh->cls[c].top[0], first, last);
	}
	free(seen);
	return n;
}

/*
 * Give the empty slabs of class @c back to the general heap; heap lock held
 * (so no refill or other trim runs). Every lane's whole list is taken off at
 * once, as one big take: then every object on them is ours, and a slab all
 * of whose objects are on them has none allocated or cached (and none
 * half-way through a give: those are not on a list yet). The rest is pushed
 * back on the lane it came from; a list that leads anywhere but to free
 * objects of the class is cut there (what lay beyond is stranded, see
 * SHMPOOL_RECLAIM_STRANDED). A process killed in here strands the lists the
 * same way; a slab whose first chunk is unmapped is freed by the repair.
 * @cnt: a zeroed counter per chunk, @seen: a zeroed bit per granule, both
 * left zeroed.
 */
static long trim_class(struct shmpool_heap *h, unsigned int c, uint32_t *cnt,
		       uint64_t *seen)
{
	struct heap_priv *hp = heap_priv(h);
	struct cls_head *ch = &heap_hdr(h)->cls[c];
	const struct cls_info *ci = &hp->cls[c];
	uint32_t idx = 0, g, first, n[NR_LANES] = { 0 }, i, l, nslab = 0;
	uint64_t top[NR_LANES], o, soff, chunk, bytes = 1ULL << ci->slab_shift;
	_Atomic uint32_t *last;
	long freed = 0;
	int k;

	for (l = 0; l < NR_LANES; l++) {
		/* acquire: pairs with the release CAS in push() (the links, the objects) */
		top[l] = atomic_load_explicit(&ch->top[l], memory_order_acquire);
		for (i = 0; TOP_G(top[l]) &&
		     !atomic_compare_exchange_weak_explicit(&ch->top[l], &top[l],
				TOP(0, TOP_TAG(top[l]) + 1),
				memory_order_acquire, memory_order_acquire); i++)
			if (i == __SHMPOOL_CAS_TRIES) {
				top[l] = 0;	/* not taken: this lane's slabs stay */
				break;
			}
	}

	/* count the free objects of each slab; stop at the first bad link */
	for (l = 0; l < NR_LANES; l++)
		for (g = TOP_G(top[l]); g; n[l]++) {
			o = (uint64_t)g << GRAN_SHIFT;
			k = slab_locate(h, o, &idx);
			soff = slab_start(hp, o, c);
			if (k != (int)c || seen[g / 64] >> (g % 64) & 1 ||
			    atomic_load_explicit(bits_of(h, o, c, idx), memory_order_relaxed) >>
					(idx % 64) & 1 || !slab_hdr_ok(h, soff, c) ||
			    !slot_is_link(atomic_load_explicit(slot_of(h, o, c, idx),
							       memory_order_relaxed)))
				break;
			seen[g / 64] |= 1ULL << (g % 64);
			if (!cnt[soff >> SLAB_SHIFT]++)
				nslab++;
			g = atomic_load_explicit(slot_of(h, o, c, idx), memory_order_relaxed);
		}

	/* push back those of slabs that are not empty, in their order */
	for (l = 0; l < NR_LANES; l++) {
		last = NULL;
		first = 0;
		for (g = TOP_G(top[l]), i = 0; i < n[l]; i++) {
			o = (uint64_t)g << GRAN_SHIFT;
			slab_locate(h, o, &idx);
			soff = slab_start(hp, o, c);
			seen[g / 64] &= ~(1ULL << (g % 64));
			g = atomic_load_explicit(slot_of(h, o, c, idx), memory_order_relaxed);
			if (cnt[soff >> SLAB_SHIFT] != ci->nobj)
				chain_add(&first, &last, o, slot_of(h, o, c, idx));
		}
		if (last)
			push(&ch->top[l], first, last);
	}

	/* free the empty ones, and zero the counters */
	for (chunk = hp->lo >> SLAB_SHIFT; nslab && chunk < hp->nr_chunks; chunk++) {
		if (!cnt[chunk])
			continue;
		nslab--;
		if (cnt[chunk] == ci->nobj) {
			soff = chunk << SLAB_SHIFT;
			/*
			 * Unmap the first chunk first (release: pairs with the
			 * acquire in slab_locate(), which then sees no slab):
			 * a slab whose first chunk is unmapped is free to the
			 * repair.
			 */
			for (o = soff; o < soff + bytes; o += SLAB_SIZE)
				atomic_store_explicit(&hp->chunks[o >> SLAB_SHIFT], 0,
						      memory_order_release);
			KILL_POINT();
			if (!__shmpool_tlsf_free(h, soff, BLK_SLAB)) {
				heap_hdr(h)->nr_slabs--;
				freed++;
			}
		}
		cnt[chunk] = 0;
	}
	return freed;
}

long __shmpool_slab_trim(struct shmpool_heap *h)
{
	struct heap_priv *hp = heap_priv(h);
	uint32_t *cnt;
	uint64_t *seen;
	long n = 0;
	unsigned int c;

	cnt = calloc(hp->nr_chunks, sizeof(*cnt));
	seen = calloc((h->pool->size >> GRAN_SHIFT) / 64 + 1, sizeof(*seen));
	if (cnt && seen)
		for (c = 0; c < NR_CLASSES; c++)
			n += trim_class(h, c, cnt, seen);
	free(cnt);
	free(seen);
	return n;
}

void __shmpool_slab_stats(struct shmpool_heap *h, struct shmpool_heap_stats *st)
{
	struct heap_priv *hp = heap_priv(h);
	struct shmpool_heap_class *sc;
	uint32_t used, cached;
	uint64_t chunk;
	int c;

	for (c = 0; c < NR_CLASSES; c++)
		st->classes[c].size = hp->cls[c].size;
	for (chunk = 0; chunk < hp->nr_chunks; chunk++) {
		c = slab_starting(h, chunk);
		if (c < 0)
			continue;
		sc = &st->classes[c];
		sc->slabs++;
		sc->objs += hp->cls[c].nobj;
		used = slab_used(h, chunk << SLAB_SHIFT, (unsigned int)c, &cached);
		sc->used += used - cached;
		sc->cached += cached;
	}
}

/* Called with the heap lock held, after the general heap checked out. */
int __shmpool_slab_check(struct shmpool_heap *h, bool quiescent, char *msg,
			 size_t len)
{
	struct heap_priv *hp = heap_priv(h);
	struct heap_hdr *hh = heap_hdr(h);
	const struct cls_head *ch;
	uint64_t chunk, free_objs[NR_CLASSES] = { 0 }, *seen = NULL, n, off, next;
	uint32_t nslabs = 0, i, idx = 0, owner, cached;
	const struct cls_info *ci;
	struct slab_hdr *s;
	struct blk *b;
	uint64_t top, o;
	unsigned int c, l;
	int ret = 0, k;

	for (chunk = 0; chunk < hp->nr_chunks; chunk = next) {
		next = chunk + 1;
		off = chunk << SLAB_SHIFT;
		k = slab_starting(h, chunk);
		if (k == -2)
			FAIL("slab at 0x%llx: bad class byte or slab header, or outside the heap",
			     (unsigned long long)off);
		if (k < 0) {
			if (atomic_load_explicit(&hp->chunks[chunk], memory_order_relaxed))
				FAIL("chunk at 0x%llx: inside no slab of its class",
				     (unsigned long long)off);
			continue;
		}
		c = (unsigned int)k;
		ci = &hp->cls[c];
		/* every chunk of the slab says the same class */
		for (next = chunk + 1; next < hp->nr_chunks &&
		     slab_start(hp, next << SLAB_SHIFT, c) == off; next++)
			if (atomic_load_explicit(&hp->chunks[next], memory_order_relaxed) != k + 1)
				FAIL("slab at 0x%llx: chunk at 0x%llx has another class",
				     (unsigned long long)off,
				     (unsigned long long)next << SLAB_SHIFT);
		s = slab_of(h, off, c);
		b = (struct blk *)s - 1;
		if ((b->flags & (BLK_SLAB | BLK_FREE)) != BLK_SLAB ||
		    b->size != (1U << ci->slab_shift) / GRAN + 1)
			FAIL("slab at 0x%llx: its block is not an allocated slab block",
			     (unsigned long long)off);
		if (s->magic != (SLAB_MAGIC ^ c) || s->cls != c)
			FAIL("slab at 0x%llx: bad slab header", (unsigned long long)off);
		if (ci->nobj % 64 &&
		    atomic_load_explicit(&s->bits[ci->nobj / 64], memory_order_relaxed) >>
				(ci->nobj % 64))
			FAIL("slab at 0x%llx: allocation bits past the last object",
			     (unsigned long long)off);
		for (i = 0; i < ci->nobj; i++) {
			if (!(atomic_load_explicit(&s->bits[i / 64], memory_order_relaxed) >>
			      (i % 64) & 1))
				continue;
			owner = atomic_load_explicit(&slots_of(h, off, c)[i],
						     memory_order_relaxed) & ~SLOT_CACHED;
			if (!owner || owner >= NR_ATTACH)
				FAIL("object at 0x%llx: owner %u",
				     (unsigned long long)(off + ci->obj_off +
							  (uint64_t)i * ci->size), owner);
		}
		free_objs[c] += ci->nobj - slab_used(h, off, c, &cached);
		nslabs++;
	}
	if (nslabs != hh->nr_slabs)
		FAIL("slab map: %u slabs mapped, %u slab blocks", nslabs, hh->nr_slabs);
	if (!quiescent)
		goto out;

	/* nobody allocates: every free object is on one list, once */
	seen = calloc((h->pool->size >> GRAN_SHIFT) / 64 + 1, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (c = 0; c < NR_CLASSES; c++) {
		ch = &hh->cls[c];
		n = 0;
		for (l = 0; l < NR_LANES; l++) {
			/* acquire: pairs with the release CAS in push() (the links) */
			top = atomic_load_explicit(&ch->top[l], memory_order_acquire);
			for (o = (uint64_t)TOP_G(top) << GRAN_SHIFT; o;
			     o = (uint64_t)atomic_load_explicit(slot_of(h, o, c, idx),
								memory_order_relaxed) << GRAN_SHIFT) {
				k = slab_locate(h, o, &idx);
				if (k != (int)c)
					FAIL("class %u list %u: 0x%llx is not an object of the class",
					     ch->size, l, (unsigned long long)o);
				if (atomic_load_explicit(bits_of(h, o, c, idx),
							 memory_order_relaxed) >> (idx % 64) & 1)
					FAIL("class %u list %u: object at 0x%llx is allocated",
					     ch->size, l, (unsigned long long)o);
				if (seen[(o >> GRAN_SHIFT) / 64] >> ((o >> GRAN_SHIFT) % 64) & 1)
					FAIL("class %u list %u: object at 0x%llx is listed twice",
					     ch->size, l, (unsigned long long)o);
				seen[(o >> GRAN_SHIFT) / 64] |= 1ULL << ((o >> GRAN_SHIFT) % 64);
				n++;
			}
		}
		if (n != free_objs[c])
			FAIL("class %u lists: %llu objects listed, %llu free",
			     ch->size, (unsigned long long)n,
			     (unsigned long long)free_objs[c]);
	}
out:
	free(seen);
	return ret;
}
