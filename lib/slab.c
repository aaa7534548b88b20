// SPDX-License-Identifier: MIT
/*
 * Small size classes of the heap (include/shmpool_alloc.h): 16..256 bytes
 * from 16 KiB slabs, through one lock-free free list per class.
 *
 * A slab is a general block whose payload is one 16 KiB-aligned chunk of the
 * pool, so the chunk map (one byte per chunk: 0 or 1 + class) says in one
 * load whether an offset is a small object and of which class. A slab
 * starts with struct slab_hdr and an allocation bitmap, then u32 slot[nobj],
 * then the objects. slot[i] holds object i's free-list link while it is
 * free and its owner's attachment id while it is allocated: the allocator
 * never writes into an object, so users own every byte of it.
 *
 * Free lists: a Treiber stack per class whose head is {granule offset of
 * the top object, ABA tag} in one 64-bit word; every successful push or pop
 * bumps the tag, so a CAS prepared on a stale top fails even if the same
 * object is back on top. A popper may read the slot of an object that
 * another process has just allocated (and overwritten with an owner id):
 * that CAS fails on the tag, and the value read is never used.
 *
 * The bitmap makes frees safe: free clears the object's bit with one atomic
 * and-not and pushes only if the bit was set, so a double free, or a free
 * racing another free of the same object, is -EINVAL and never puts an
 * object on a list twice.
 *
 * Slabs are made under the heap lock when a class's list is empty and are
 * never given back; a chunk's map byte, once set, never changes.
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
	16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256,
};

void __shmpool_slab_layout(struct heap_hdr *hh)
{
	uint32_t c, n, size, slot_off = 0, obj_off = 0;

	for (c = 0; c < NR_CLASSES; c++) {
		size = class_size[c];
		for (n = SLAB_SIZE / size; n; n--) {
			slot_off = (uint32_t)sizeof(struct slab_hdr) + (n + 63) / 64 * 8;
			obj_off = (slot_off + 4 * n + GRAN - 1) & ~(GRAN - 1);
			if (obj_off + n * size <= SLAB_SIZE)
				break;
		}
		hh->cls[c].size = size;
		hh->cls[c].nobj = n;
		hh->cls[c].slot_off = slot_off;
		hh->cls[c].obj_off = obj_off;
		atomic_store_explicit(&hh->cls[c].top, 0, memory_order_relaxed);
	}
}

static unsigned int size_class(size_t size)
{
	if (size <= 128)
		return (unsigned int)(size + 15) / 16 - 1;
	return 8 + (unsigned int)(size - 129) / 32;
}

static struct slab_hdr *slab_at(struct shmpool_heap *h, uint64_t chunk)
{
	return (struct slab_hdr *)(heap_base(h) + (chunk << SLAB_SHIFT));
}

static _Atomic uint32_t *slab_slots(struct shmpool_heap *h, uint64_t chunk,
				    const struct cls_head *ch)
{
	return (_Atomic uint32_t *)((char *)slab_at(h, chunk) + ch->slot_off);
}

/*
 * The class (0..) of the slab holding offset @off and the object's index in
 * it; -1 if @off is not in a slab, -EINVAL if it is but not at an object.
 */
static int locate(struct shmpool_heap *h, uint64_t off, uint32_t *idx)
{
	struct heap_hdr *hh = heap_hdr(h);
	const struct cls_head *ch;
	uint64_t chunk = off >> SLAB_SHIFT, rel;
	uint8_t k;

	if (chunk >= hh->nr_chunks)
		return -1;
	/*
	 * Acquire: pairs with the release store in refill(), so the slab
	 * header and layout written before it are visible.
	 */
	k = atomic_load_explicit(&heap_chunks(h)[chunk], memory_order_acquire);
	if (!k)
		return -1;
	if (k > NR_CLASSES)
		return -EUCLEAN;
	ch = &hh->cls[k - 1];
	rel = off & (SLAB_SIZE - 1);
	if (rel < ch->obj_off || (rel - ch->obj_off) % ch->size)
		return -EINVAL;
	*idx = (uint32_t)((rel - ch->obj_off) / ch->size);
	if (*idx >= ch->nobj)
		return -EINVAL;
	return k - 1;
}

/* Push the chain @first .. @last (slot of @last gets the old top) on @ch. */
static void push(struct cls_head *ch, uint32_t first,
		 _Atomic uint32_t *last_slot)
{
	uint64_t top = atomic_load_explicit(&ch->top, memory_order_relaxed);

	do {
		atomic_store_explicit(last_slot, TOP_G(top), memory_order_relaxed);
		/*
		 * Release: pairs with the acquire CAS in __shmpool_slab_alloc();
		 * the link just stored, and whatever the freeing process wrote
		 * into the object, are visible to the process that pops it.
		 */
	} while (!atomic_compare_exchange_weak_explicit(&ch->top, &top,
			TOP(first, TOP_TAG(top) + 1),
			memory_order_release, memory_order_relaxed));
}

/* Give class @c a new slab, unless someone already refilled its list. */
static int refill(struct shmpool_heap *h, unsigned int c)
{
	struct heap_hdr *hh = heap_hdr(h);
	struct cls_head *ch = &hh->cls[c];
	_Atomic uint32_t *slots;
	struct slab_hdr *s;
	uint64_t off, chunk;
	uint32_t i, g0;
	int ret;

	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	/* relaxed: only a hint; a refill under this lock would show */
	if (TOP_G(atomic_load_explicit(&ch->top, memory_order_relaxed))) {
		__shmpool_heap_unlock(h);
		return 0;
	}
	ret = __shmpool_tlsf_alloc(h, SLAB_SIZE, SLAB_SIZE, BLK_SLAB, &off);
	if (ret) {
		__shmpool_heap_unlock(h);
		return ret;
	}
	hh->nr_slabs++;
	chunk = off >> SLAB_SHIFT;
	s = slab_at(h, chunk);
	s->magic = SLAB_MAGIC ^ c;
	s->cls = c;
	for (i = 0; i < (ch->nobj + 63) / 64; i++)
		atomic_store_explicit(&s->bits[i], 0, memory_order_relaxed);
	slots = slab_slots(h, chunk, ch);
	g0 = (uint32_t)((off + ch->obj_off) >> GRAN_SHIFT);
	for (i = 0; i + 1 < ch->nobj; i++)
		atomic_store_explicit(&slots[i], g0 + (i + 1) * (ch->size / GRAN),
				      memory_order_relaxed);
	/* release: pairs with the acquire load in locate() */
	atomic_store_explicit(&heap_chunks(h)[chunk], (uint8_t)(c + 1),
			      memory_order_release);
	push(ch, g0, &slots[ch->nobj - 1]);
	__shmpool_heap_unlock(h);
	return 0;
}

int __shmpool_slab_alloc(struct shmpool_heap *h, size_t size, uint64_t *off)
{
	struct heap_hdr *hh = heap_hdr(h);
	unsigned int c = size_class(size);
	struct cls_head *ch = &hh->cls[c];
	uint64_t top, o, old, mask;
	uint32_t idx, next;
	uint16_t owner;
	int ret, k;

	ret = __shmpool_heap_owner(h, &owner);
	if (ret)
		return ret;
	/* acquire: pairs with the release CAS in push() */
	top = atomic_load_explicit(&ch->top, memory_order_acquire);
	for (;;) {
		if (!TOP_G(top)) {
			ret = refill(h, c);
			if (ret)
				return ret;
			top = atomic_load_explicit(&ch->top, memory_order_acquire);
			continue;
		}
		o = (uint64_t)TOP_G(top) << GRAN_SHIFT;
		k = locate(h, o, &idx);
		if (k != (int)c)
			return -EUCLEAN;	/* the list head is not one of ours */
		next = atomic_load_explicit(&slab_slots(h, o >> SLAB_SHIFT, ch)[idx],
					    memory_order_relaxed);
		/*
		 * Acquire on success and failure: pairs with the release CAS
		 * in push(); we read the slot of the top we see next.
		 */
		if (atomic_compare_exchange_weak_explicit(&ch->top, &top,
				TOP(next, TOP_TAG(top) + 1),
				memory_order_acquire, memory_order_acquire))
			break;
	}
	mask = 1ULL << (idx % 64);
	/* relaxed: the object is ours now; the bit only guards frees */
	old = atomic_fetch_or_explicit(&slab_at(h, o >> SLAB_SHIFT)->bits[idx / 64],
				       mask, memory_order_relaxed);
	if (old & mask)
		return -EUCLEAN;	/* was on the list and allocated */
	atomic_store_explicit(&slab_slots(h, o >> SLAB_SHIFT, ch)[idx], owner,
			      memory_order_relaxed);
	*off = o;
	return 0;
}

int __shmpool_slab_free(struct shmpool_heap *h, uint64_t off, int *ret)
{
	struct heap_hdr *hh = heap_hdr(h);
	struct cls_head *ch;
	uint64_t mask, old;
	uint32_t idx;
	int c;

	c = locate(h, off, &idx);
	if (c == -1)
		return 0;
	if (c < 0) {
		*ret = c;
		return 1;
	}
	ch = &hh->cls[c];
	mask = 1ULL << (idx % 64);
	/*
	 * Relaxed: only one free can clear the bit; the object's contents
	 * are handed over by push()'s release.
	 */
	old = atomic_fetch_and_explicit(&slab_at(h, off >> SLAB_SHIFT)->bits[idx / 64],
					~mask, memory_order_relaxed);
	if (!(old & mask)) {
		*ret = -EINVAL;		/* free already, or never allocated */
		return 1;
	}
	push(ch, (uint32_t)(off >> GRAN_SHIFT),
	     &slab_slots(h, off >> SLAB_SHIFT, ch)[idx]);
	*ret = 0;
	return 1;
}

int __shmpool_slab_query(struct shmpool_heap *h, uint64_t off, uint32_t *size,
			 uint32_t *owner, int *ret)
{
	struct heap_hdr *hh = heap_hdr(h);
	struct cls_head *ch;
	uint32_t idx;
	int c;

	c = locate(h, off, &idx);
	if (c == -1)
		return 0;
	*ret = c < 0 ? c : 0;
	if (c < 0)
		return 1;
	ch = &hh->cls[c];
	if (!(atomic_load_explicit(&slab_at(h, off >> SLAB_SHIFT)->bits[idx / 64],
				   memory_order_relaxed) >> (idx % 64) & 1)) {
		*ret = -EINVAL;
		return 1;
	}
	*size = ch->size;
	*owner = atomic_load_explicit(&slab_slots(h, off >> SLAB_SHIFT, ch)[idx],
				      memory_order_relaxed);
	return 1;
}

static uint32_t slab_used(struct shmpool_heap *h, uint64_t chunk,
			  const struct cls_head *ch)
{
	struct slab_hdr *s = slab_at(h, chunk);
	uint32_t i, n = 0;

	for (i = 0; i < (ch->nobj + 63) / 64; i++)
		n += (uint32_t)__builtin_popcountll(
			atomic_load_explicit(&s->bits[i], memory_order_relaxed));
	return n;
}

void __shmpool_slab_stats(struct shmpool_heap *h, struct shmpool_heap_stats *st)
{
	struct heap_hdr *hh = heap_hdr(h);
	struct shmpool_heap_class *sc;
	uint64_t chunk;
	uint8_t k;
	int c;

	for (c = 0; c < NR_CLASSES; c++)
		st->classes[c].size = hh->cls[c].size;
	for (chunk = 0; chunk < hh->nr_chunks; chunk++) {
		/* acquire: as in locate() */
		k = atomic_load_explicit(&heap_chunks(h)[chunk], memory_order_acquire);
		if (!k || k > NR_CLASSES)
			continue;
		sc = &st->classes[k - 1];
		sc->slabs++;
		sc->objs += hh->cls[k - 1].nobj;
		sc->used += slab_used(h, chunk, &hh->cls[k - 1]);
	}
}

/* Called with the heap lock held, after the general heap checked out. */
int __shmpool_slab_check(struct shmpool_heap *h, bool quiescent, char *msg,
			 size_t len)
{
	struct heap_hdr *hh = heap_hdr(h);
	uint64_t chunk, free_objs[NR_CLASSES] = { 0 }, *seen = NULL, n;
	uint32_t nslabs = 0, i, idx = 0, owner;
	const struct cls_head *ch;
	struct slab_hdr *s;
	struct blk *b;
	uint64_t top, o;
	unsigned int c;
	int ret = 0, k;

	for (chunk = 0; chunk < hh->nr_chunks; chunk++) {
		k = atomic_load_explicit(&heap_chunks(h)[chunk], memory_order_relaxed);
		if (!k)
			continue;
		if (k > NR_CLASSES)
			FAIL("chunk at 0x%llx: slab class %d out of range",
			     (unsigned long long)chunk << SLAB_SHIFT, k - 1);
		ch = &hh->cls[k - 1];
		s = slab_at(h, chunk);
		b = (struct blk *)s - 1;
		if ((b->flags & (BLK_SLAB | BLK_FREE)) != BLK_SLAB)
			FAIL("slab at 0x%llx: its block is not an allocated slab block",
			     (unsigned long long)chunk << SLAB_SHIFT);
		if (s->magic != (SLAB_MAGIC ^ (uint32_t)(k - 1)) || s->cls != (uint32_t)(k - 1))
			FAIL("slab at 0x%llx: bad slab header", (unsigned long long)chunk << SLAB_SHIFT);
		if (ch->nobj % 64 &&
		    atomic_load_explicit(&s->bits[ch->nobj / 64], memory_order_relaxed) >>
				(ch->nobj % 64))
			FAIL("slab at 0x%llx: allocation bits past the last object",
			     (unsigned long long)chunk << SLAB_SHIFT);
		for (i = 0; i < ch->nobj; i++) {
			if (!(atomic_load_explicit(&s->bits[i / 64], memory_order_relaxed) >>
			      (i % 64) & 1))
				continue;
			owner = atomic_load_explicit(&slab_slots(h, chunk, ch)[i],
						     memory_order_relaxed);
			if (!owner || owner >= NR_ATTACH)
				FAIL("object at 0x%llx: owner %u",
				     (unsigned long long)((chunk << SLAB_SHIFT) + ch->obj_off +
							  (uint64_t)i * ch->size), owner);
		}
		free_objs[k - 1] += ch->nobj - slab_used(h, chunk, ch);
		nslabs++;
	}
	if (nslabs != hh->nr_slabs)
		FAIL("slab map: %u slabs mapped, %u slab blocks", nslabs, hh->nr_slabs);
	if (!quiescent)
		goto out;

	/* nobody allocates: every free object is on its list exactly once */
	seen = calloc((hh->pool_bytes >> GRAN_SHIFT) / 64 + 1, sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (c = 0; c < NR_CLASSES; c++) {
		ch = &hh->cls[c];
		n = 0;
		top = atomic_load_explicit(&ch->top, memory_order_acquire);
		for (o = (uint64_t)TOP_G(top) << GRAN_SHIFT; o;
		     o = (uint64_t)atomic_load_explicit(&slab_slots(h, o >> SLAB_SHIFT, ch)[idx],
							memory_order_relaxed) << GRAN_SHIFT) {
			k = locate(h, o, &idx);
			if (k != (int)c)
				FAIL("class %u list: 0x%llx is not an object of the class",
				     ch->size, (unsigned long long)o);
			if (atomic_load_explicit(&slab_at(h, o >> SLAB_SHIFT)->bits[idx / 64],
						 memory_order_relaxed) >> (idx % 64) & 1)
				FAIL("class %u list: object at 0x%llx is allocated",
				     ch->size, (unsigned long long)o);
			if (seen[(o >> GRAN_SHIFT) / 64] >> ((o >> GRAN_SHIFT) % 64) & 1)
				FAIL("class %u list: object at 0x%llx is listed twice",
				     ch->size, (unsigned long long)o);
			seen[(o >> GRAN_SHIFT) / 64] |= 1ULL << ((o >> GRAN_SHIFT) % 64);
			n++;
		}
		if (n != free_objs[c])
			FAIL("class %u list: %llu objects listed, %llu free",
			     ch->size, (unsigned long long)n,
			     (unsigned long long)free_objs[c]);
	}
out:
	free(seen);
	return ret;
}
