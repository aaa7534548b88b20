// SPDX-License-Identifier: MIT
/*
 * The heap of a pool (include/shmpool_alloc.h): layout and race-free
 * initialisation, attachment ids, the general allocator, and the
 * introspection and consistency checks. The small size classes live in
 * slab.c, the named objects in dir.c; lib/heap.h has the layout.
 *
 * General allocator: TLSF (Masmano et al., "TLSF: a new dynamic memory
 * allocator for real-time systems"): free blocks sit in FL_COUNT x SL_COUNT
 * segregated lists found through two bitmaps, so allocate and free are O(1);
 * boundary tags (each header knows its predecessor's size) coalesce a freed
 * block with both neighbours at once. All of it runs under the heap's
 * shmpool_mutex; the mutex's acquire/release orders every write below for
 * the next holder, so the fields under it are plain memory.
 *
 * Nothing is trusted that came from shared memory: a free is checked
 * against the block-start bitmap and every header's check word before any
 * write, so bad input cannot corrupt the heap and a scribbled header is
 * reported instead of followed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include "heap.h"

#define INIT_WAIT_MS	20	/* between looks at a dead initialiser */
#define INIT_TIMEOUT_S	10	/* give up on a live initialiser */

/* ---- attachment ids and fork() ---------------------------------------------- */

/*
 * A handle whose __fork_gen differs from __shmpool_fork_gen (util.c) was
 * inherited over fork(), and its owner id belongs to the parent.
 */

static _Atomic uint32_t *owner_table(const struct shmpool_heap *h)
{
	return (_Atomic uint32_t *)(heap_base(h) + ATTACH_OFF);
}

/*
 * Claim a heap owner id for this handle: a free slot of the owner table,
 * where we record our pool attachment id (lib/attach.c), which is what
 * tells the others whether we still live. A slot whose attachment ended is
 * never taken as it is: it goes back to 0 only once reclaim has relabelled
 * what it owned (heap_release()), so a newcomer inherits nothing. If the
 * table is full, reclaim the dead and look again; @locked: the caller holds
 * the heap lock.
 */
static int attach(struct shmpool_heap *h, bool locked)
{
	_Atomic uint32_t *t = owner_table(h);
	uint32_t self, v;
	int pass, i, ret;

	ret = __shmpool_self(h->pool, &self);
	if (ret)
		return ret;
	for (pass = 0; pass < 2; pass++) {
		for (i = 1; i < OWNER_ORPHAN; i++) {
			v = 0;
			/*
			 * Acquire: pairs with the release store of 0 in
			 * __shmpool_heap_reclaim_locked(), so the relabelling
			 * of the previous owner's blocks is seen before we
			 * own anything under this id.
			 */
			if (!atomic_load_explicit(&t[i], memory_order_relaxed) &&
			    atomic_compare_exchange_strong_explicit(&t[i], &v, self,
					memory_order_acquire, memory_order_relaxed)) {
				h->__attach = (uint32_t)i;
				h->__fork_gen = atomic_load_explicit(&__shmpool_fork_gen,
						memory_order_relaxed);
				return 0;
			}
		}
		if (pass)
			break;
		if (locked) {
			__shmpool_heap_reclaim_locked(h, 0);
			continue;
		}
		ret = __shmpool_heap_lock(h);
		if (ret)
			return ret;
		__shmpool_heap_reclaim_locked(h, 0);
		__shmpool_heap_unlock(h);
	}
	return -EUSERS;
}

static int heap_owner(struct shmpool_heap *h, uint16_t *owner, bool locked)
{
	int ret;

	if (h->__fork_gen != atomic_load_explicit(&__shmpool_fork_gen, memory_order_relaxed)) {
		ret = attach(h, locked);
		if (ret)
			return ret;
	}
	*owner = (uint16_t)h->__attach;
	return 0;
}

int __shmpool_heap_owner(struct shmpool_heap *h, uint16_t *owner)
{
	return heap_owner(h, owner, false);
}

SHMPOOL_EXPORT
int shmpool_heap_attach_id(struct shmpool_heap *h)
{
	uint16_t owner;
	int ret;

	if (!h)
		return -EINVAL;
	ret = __shmpool_heap_owner(h, &owner);
	return ret ? ret : owner;
}

/* ---- block headers ------------------------------------------------------------ */

/*
 * The check word: a hash of the header's fields and of where it lies, so
 * that bytes which are no header here (a payload, a header copied from
 * elsewhere, a peer's random write) pass for one with odds of about 2^-32.
 * Two multiplies: each is odd, so each step maps its input one to one, and
 * headers that differ in a field or a position differ before the final
 * truncation.
 */
static inline __attribute__((always_inline)) uint32_t
blk_hash(uint32_t g, uint32_t size, uint32_t prev, uint16_t owner, uint16_t flags)
{
	uint64_t sp = (uint64_t)prev << 32 | size;
	uint64_t of = (uint64_t)((uint32_t)flags << 16 | owner) << 32 | g;
	uint64_t x = (sp ^ HEAP_MAGIC) * 0x9e3779b97f4a7c15ULL;

	return (uint32_t)(((x ^ of) * 0xc2b2ae3d27d4eb4fULL) >> 32);
}

static inline __attribute__((always_inline)) uint32_t blk_check(uint32_t g,
								  const struct blk *b)
{
	return blk_hash(g, b->size, b->prev, b->owner, b->flags);
}

static void blk_set(struct shmpool_heap *h, uint32_t g, uint32_t size,
		    uint32_t prev, uint16_t owner, uint16_t flags)
{
	struct blk *b = blk_at(h, g);

	/*
	 * What the block is before how big it is: a block being freed and
	 * merged with its free successor says "free" before its size covers
	 * the successor, so a repair never finds an allocated block grown
	 * over free space.
	 */
	b->owner = owner;
	b->flags = flags;
	KILL_POINT();
	b->size = size;
	b->prev = prev;
	/* from the arguments: reading back the halves just stored stalls */
	b->check = blk_hash(g, size, prev, owner, flags);
}

static void blk_set_prev(struct shmpool_heap *h, uint32_t g, uint32_t prev)
{
	struct blk *b = blk_at(h, g);

	b->prev = prev;
	b->check = blk_hash(g, b->size, prev, b->owner, b->flags);
}

/*
 * A header that says what it is and stays inside the heap. Inlined: the
 * general path checks about seven headers per allocate/free pair.
 */
static inline __attribute__((always_inline)) bool blk_ok(struct shmpool_heap *h,
							  uint32_t g)
{
	const struct heap_priv *hp = heap_priv(h);
	struct blk *b;

	/* one compare: below heap_g wraps around to far above */
	if (g - hp->heap_g > hp->end_g - hp->heap_g)
		return false;
	b = blk_at(h, g);
	if (b->check != blk_check(g, b))
		return false;
	if (g == hp->end_g)
		return b->flags == BLK_LAST && b->size == 1;
	return b->size >= MIN_BLOCK_G && b->size <= hp->end_g - g &&
	       !(b->flags & BLK_LAST);
}

static struct blk_links *blk_links(struct shmpool_heap *h, uint32_t g)
{
	return (struct blk_links *)(blk_at(h, g) + 1);
}

static bool bit_test(struct shmpool_heap *h, uint32_t g)
{
	return heap_bitmap(h)[g / 64] >> (g % 64) & 1;
}

/* Bits [@a, @b] of @map (@a <= @b): not 0 if any is set. */
static inline __attribute__((always_inline)) uint64_t
bits_any(const uint64_t *map, uint64_t a, uint64_t b)
{
	uint64_t w, last = b / 64, acc = map[a / 64] & (~0ULL << (a % 64));

	if (a / 64 == last)
		return acc & (~0ULL >> (63 - b % 64));
	for (w = a / 64 + 1; w < last; w++)
		acc |= map[w];
	return acc | (map[last] & (~0ULL >> (63 - b % 64)));
}

/*
 * No block starts in granules [@g, @g + @n) (@n > 0) and no slab covers
 * them: the bitmap's words at both ends, the summary's bits for the words
 * between (a peer that clears those could as well clear the bitmap).
 */
static bool range_unused(struct shmpool_heap *h, uint32_t g, uint32_t n)
{
	const uint64_t *bm = heap_bitmap(h);
	uint64_t end = (uint64_t)g + n, c, c_end, first = g / 64, last = (end - 1) / 64;
	uint64_t acc;

	if (last - first < 2) {
		acc = bits_any(bm, g, end - 1);
	} else {
		acc = bits_any(bm, g, first * 64 + 63) | bits_any(bm, last * 64, end - 1) |
		      bits_any(heap_priv(h)->summary, first + 1, last - 1);
	}
	if (acc)
		return false;
	c_end = ((end << GRAN_SHIFT) - 1) >> SLAB_SHIFT;
	for (c = ((uint64_t)g << GRAN_SHIFT) >> SLAB_SHIFT; c <= c_end; c++)
		if (atomic_load_explicit(&heap_chunks(h)[c], memory_order_relaxed))
			return false;
	return true;
}

/* A free block, as far as its header and the bitmap can tell. */
static inline __attribute__((always_inline)) bool free_ok(struct shmpool_heap *h,
							   uint32_t g)
{
	return blk_ok(h, g) && g != heap_priv(h)->end_g &&
	       blk_at(h, g)->flags == BLK_FREE && !blk_at(h, g)->owner &&
	       !bit_test(h, g);
}

/* the bitmap and its summary; a repair rebuilds both from the headers */
static void bit_set(struct shmpool_heap *h, uint32_t g)
{
	heap_bitmap(h)[g / 64] |= 1ULL << (g % 64);
	heap_priv(h)->summary[g / 4096] |= 1ULL << (g / 64 % 64);
}

static void bit_clear(struct shmpool_heap *h, uint32_t g)
{
	if (!(heap_bitmap(h)[g / 64] &= ~(1ULL << (g % 64))))
		heap_priv(h)->summary[g / 4096] &= ~(1ULL << (g / 64 % 64));
}

/* ---- TLSF lists ------------------------------------------------------------------ */

static unsigned int log2_u32(uint32_t v)
{
	return 31U - (unsigned int)__builtin_clz(v);
}

static void mapping(uint32_t g, unsigned int *fl, unsigned int *sl)
{
	unsigned int l;

	if (g < SL_COUNT) {
		*fl = 0;
		*sl = g;
		return;
	}
	l = log2_u32(g);
	*fl = l - SL_LOG + 1;
	*sl = (g >> (l - SL_LOG)) - SL_COUNT;
}

/*
 * The free block @g's list links agree with their neighbours in the list
 * (and the list head, if it is first): what list_remove() needs before it
 * writes. A peer's write into a freed block's links fails here.
 */
static bool link_ok(struct shmpool_heap *h, uint32_t to, uint32_t g)
{
	const struct heap_priv *hp = heap_priv(h);

	/*
	 * Where the unlink writes: inside the heap, at no block start in use,
	 * and linked back to @g (a block a peer did not forge links back).
	 */
	return to != g && to >= hp->heap_g && to < hp->end_g && !bit_test(h, to);
}

static bool links_ok(struct shmpool_heap *h, uint32_t g)
{
	struct heap_hdr *hh = heap_hdr(h);
	struct blk_links *l = blk_links(h, g);
	uint32_t next = l->next, prev = l->prev;
	unsigned int fl, sl;

	mapping(blk_at(h, g)->size, &fl, &sl);
	if (fl >= FL_COUNT)
		return false;
	if (next && (!link_ok(h, next, g) || blk_links(h, next)->prev != g))
		return false;
	if (!prev)
		return hh->heads[fl][sl] == g;
	return link_ok(h, prev, g) && blk_links(h, prev)->next == g;
}

static void list_insert(struct shmpool_heap *h, uint32_t g)
{
	struct heap_hdr *hh = heap_hdr(h);
	unsigned int fl, sl;
	uint32_t head;

	mapping(blk_at(h, g)->size, &fl, &sl);
	head = hh->heads[fl][sl];
	/* a head that is no free block of this list: drop that list, never follow it */
	if (head && (head == g || !free_ok(h, head) || blk_links(h, head)->prev))
		head = 0;
	blk_links(h, g)->next = head;
	blk_links(h, g)->prev = 0;
	if (head)
		blk_links(h, head)->prev = g;
	hh->heads[fl][sl] = g;
	hh->sl_bitmap[fl] |= 1U << sl;
	hh->fl_bitmap |= 1U << fl;
	hh->free_g += blk_at(h, g)->size;
	hh->nr_free++;
}

static void list_remove(struct shmpool_heap *h, uint32_t g)
{
	struct heap_hdr *hh = heap_hdr(h);
	struct blk_links *l = blk_links(h, g);
	unsigned int fl, sl;

	mapping(blk_at(h, g)->size, &fl, &sl);
	if (l->prev)
		blk_links(h, l->prev)->next = l->next;
	else
		hh->heads[fl][sl] = l->next;
	if (l->next)
		blk_links(h, l->next)->prev = l->prev;
	if (!hh->heads[fl][sl]) {
		hh->sl_bitmap[fl] &= ~(1U << sl);
		if (!hh->sl_bitmap[fl])
			hh->fl_bitmap &= ~(1U << fl);
	}
	hh->free_g -= blk_at(h, g)->size;
	hh->nr_free--;
}

#define FL_MASK	((1U << FL_COUNT) - 1)
#define SL_MASK	((1U << SL_COUNT) - 1)

/*
 * A listed free block of at least @need granules, checked (header, bitmap,
 * links, physical neighbours) so that it can be unlinked and handed out;
 * *@gp = 0 if there is none. First the good fit of TLSF (a list whose every
 * block is big enough), then, so that whatever the largest free block
 * holds can be had, a walk of @need's own list, bounded by the number of
 * free blocks the heap can have. -EUCLEAN if what the lists lead to is not
 * a free block of the heap.
 */
static int find_fit(struct shmpool_heap *h, uint64_t need, uint32_t *gp)
{
	struct heap_hdr *hh = heap_hdr(h);
	const struct heap_priv *hp = heap_priv(h);
	unsigned int fl, sl;
	uint64_t r = need, steps;
	uint32_t map, g = 0;

	*gp = 0;
	if (need > hp->end_g)
		return 0;
	if (r >= SL_COUNT)
		r += (1ULL << (log2_u32((uint32_t)r) - SL_LOG)) - 1;
	if (r <= UINT32_MAX) {
		mapping((uint32_t)r, &fl, &sl);
		map = fl < FL_COUNT ? hh->sl_bitmap[fl] & SL_MASK & (~0U << sl) : 0;
		if (!map && fl + 1 < FL_COUNT) {
			map = hh->fl_bitmap & FL_MASK & (~0U << (fl + 1));
			if (map) {
				fl = (unsigned int)__builtin_ctz(map);
				map = hh->sl_bitmap[fl] & SL_MASK;
				if (!map)
					return -EUCLEAN;
			}
		}
		if (map) {
			sl = (unsigned int)__builtin_ctz(map);
			g = hh->heads[fl][sl];
			if (!g || !free_ok(h, g) || blk_at(h, g)->size < need)
				return -EUCLEAN;
		}
	}
	if (!g) {
		/* the exact list: its blocks may or may not be big enough */
		mapping((uint32_t)need, &fl, &sl);
		if (fl >= FL_COUNT)
			return 0;
		for (g = hh->heads[fl][sl], steps = 0; g; g = blk_links(h, g)->next) {
			if (!free_ok(h, g) || ++steps > hp->max_free)
				return -EUCLEAN;
			if (blk_at(h, g)->size >= need)
				break;
		}
		if (!g)
			return 0;
	}
	/* what unlinking and handing it out will touch */
	if (!links_ok(h, g) || !blk_ok(h, g + blk_at(h, g)->size) ||
	    blk_at(h, g + blk_at(h, g)->size)->prev != blk_at(h, g)->size)
		return -EUCLEAN;
	*gp = g;
	return 0;
}

/*
 * Cut the free, unlisted block @g down to @size granules; the rest becomes
 * a free listed block if it is big enough, else stays in @g.
 */
static void split_tail(struct shmpool_heap *h, uint32_t g, uint32_t size)
{
	struct blk *b = blk_at(h, g);
	uint32_t rest = b->size - size, r = g + size;

	if (rest < MIN_BLOCK_G)
		return;
	blk_set(h, r, rest, size, 0, BLK_FREE);
	blk_set_prev(h, r + rest, rest);
	KILL_POINT();	/* the inner header is whole before @g shrinks onto it */
	blk_set(h, g, size, b->prev, 0, BLK_FREE);
	list_insert(h, r);
}

int __shmpool_tlsf_alloc(struct shmpool_heap *h, uint64_t size, uint64_t align,
			 unsigned int flags, uint64_t *off)
{
	struct heap_hdr *hh = heap_hdr(h);
	uint64_t need, search, pay, aligned;
	uint32_t g, gap;
	uint16_t owner;
	int ret;

	ret = heap_owner(h, &owner, true);
	if (ret)
		return ret;
	if (align < GRAN)
		align = GRAN;
	if (size > (uint64_t)heap_priv(h)->end_g << GRAN_SHIFT ||
	    align > (uint64_t)heap_priv(h)->end_g << GRAN_SHIFT)
		return -ENOMEM;
	need = (size + GRAN - 1) / GRAN + 1;
	if (need < MIN_BLOCK_G)
		need = MIN_BLOCK_G;
	search = need;
	if (align > GRAN)
		search += align / GRAN + MIN_BLOCK_G;
	ret = find_fit(h, search, &g);
	/* out of room: empty slabs go back to the general heap first */
	if (!ret && !g && __shmpool_slab_trim(h) > 0)
		ret = find_fit(h, search, &g);
	if (ret)
		return ret;
	if (!g)
		return -ENOMEM;
	/* never over a block in use, nor a slab (what we hand out lies in @search) */
	if (!range_unused(h, g, (uint32_t)search))
		return -EUCLEAN;
	list_remove(h, g);

	if (align > GRAN) {
		pay = ((uint64_t)g + 1) << GRAN_SHIFT;
		aligned = (pay + align - 1) & ~(align - 1);
		if (aligned != pay && aligned - pay < (uint64_t)MIN_BLOCK_G * GRAN)
			aligned += align;
		gap = (uint32_t)((aligned - pay) >> GRAN_SHIFT);
		if (gap) {
			struct blk *b = blk_at(h, g);
			uint32_t n = g + gap, nsize = b->size - gap;

			/* the front gap becomes a free block; its prev is in use */
			blk_set(h, n, nsize, gap, 0, BLK_FREE);
			blk_set_prev(h, n + nsize, nsize);
			KILL_POINT();	/* as in split_tail() */
			blk_set(h, g, gap, b->prev, 0, BLK_FREE);
			list_insert(h, g);
			g = n;
		}
	}
	split_tail(h, g, (uint32_t)need);
	blk_set(h, g, blk_at(h, g)->size, blk_at(h, g)->prev, owner,
		(uint16_t)flags);
	bit_set(h, g);
	hh->nr_used++;
	*off = ((uint64_t)g + 1) << GRAN_SHIFT;
	return 0;
}

/* The block whose payload is @off, if it is an allocated general block. */
static int used_block(struct shmpool_heap *h, uint64_t off, uint32_t *gp)
{
	uint64_t g;

	if (off & (GRAN - 1))
		return -EINVAL;
	g = (off >> GRAN_SHIFT) - 1;
	if (off < GRAN || g < heap_priv(h)->heap_g || g >= heap_priv(h)->end_g || !bit_test(h, (uint32_t)g))
		return -EINVAL;
	if (!blk_ok(h, (uint32_t)g) || (blk_at(h, (uint32_t)g)->flags & BLK_FREE))
		return -EUCLEAN;
	*gp = (uint32_t)g;
	return 0;
}

int __shmpool_tlsf_free(struct shmpool_heap *h, uint64_t off, unsigned int flags)
{
	struct heap_hdr *hh = heap_hdr(h);
	uint32_t g, size, prev, n, p;
	struct blk *b;
	int ret;

	ret = used_block(h, off, &g);
	if (ret)
		return ret;
	b = blk_at(h, g);
	if ((b->flags & (BLK_SLAB | BLK_NAMED)) != flags)
		return (b->flags & BLK_NAMED) ? -EBUSY : -EINVAL;
	size = b->size;
	prev = b->prev;
	n = g + size;
	/* check both neighbours before the first write */
	if (!blk_ok(h, n) || blk_at(h, n)->prev != size)
		return -EUCLEAN;
	p = prev ? g - prev : 0;
	if (prev && (g < heap_priv(h)->heap_g + prev || !blk_ok(h, p) ||
		     blk_at(h, p)->size != prev))
		return -EUCLEAN;
	/* free neighbours (headers checked above) are unlinked below: their links must hold */
	if ((blk_at(h, n)->flags & BLK_FREE) &&
	    (blk_at(h, n)->flags != BLK_FREE || bit_test(h, n) || !links_ok(h, n)))
		return -EUCLEAN;
	if (prev && (blk_at(h, p)->flags & BLK_FREE) &&
	    (blk_at(h, p)->flags != BLK_FREE || bit_test(h, p) || !links_ok(h, p)))
		return -EUCLEAN;

	bit_clear(h, g);
	hh->nr_used--;
	/*
	 * Free before any merge, so that a repair never keeps it; the check
	 * word is left stale: the blk_set() below rewrites the header, or
	 * the merge makes it payload, and heap_repair() recomputes it.
	 */
	b->owner = 0;
	b->flags = BLK_FREE;
	KILL_POINT();
	if (blk_at(h, n)->flags & BLK_FREE) {
		list_remove(h, n);
		size += blk_at(h, n)->size;
	}
	if (prev && (blk_at(h, p)->flags & BLK_FREE)) {
		list_remove(h, p);
		g = p;
		size += prev;
		prev = blk_at(h, p)->prev;
	}
	blk_set(h, g, size, prev, 0, BLK_FREE);
	blk_set_prev(h, g + size, size);
	list_insert(h, g);
	return 0;
}

/*
 * The heap lock was taken over from a thread that died holding it, anywhere
 * in an allocate or free. Each of those keeps the chain of block sizes
 * walkable at every store: a new inner header is written before the outer
 * block's size shrinks, and a merge is one store of the merged size. So
 * walk the chain and rebuild from the blocks all the rest: check words and
 * previous sizes, merged neighbours, the block bitmap, the free lists and
 * the counters. A slab block whose first chunk is not mapped yet handed
 * nothing out and becomes free, and so does a block marked in use with no
 * owner (its header was being written). A block the dead thread was about
 * to hand out may stay allocated to it (its attachment id is in the
 * header), like any block a dead process held, until reclaim makes it an
 * orphan (heap_release()). A named block that no directory entry names was
 * being created or removed: it is freed, and an entry that names no named
 * block is cleared (dir.c writes an entry's offset last, and frees the
 * block before clearing the entry). -EUCLEAN, and nothing changed, if the
 * chain does not lead to the sentinel.
 */
static bool dir_names(struct shmpool_heap *h, uint64_t off)
{
	int i;

	for (i = 0; i < NR_DIR; i++)
		if (heap_dir(h)[i].off == off)
			return true;
	return false;
}

static void dir_repair(struct shmpool_heap *h)
{
	struct dir_ent *e;
	uint64_t eg;
	int i;

	for (i = 0; i < NR_DIR; i++) {
		e = &heap_dir(h)[i];
		if (!e->off)
			continue;
		eg = (e->off >> GRAN_SHIFT) - 1;
		if ((e->off & (GRAN - 1)) || e->off < GRAN || eg < heap_priv(h)->heap_g ||
		    eg >= heap_priv(h)->end_g || !bit_test(h, (uint32_t)eg) ||
		    !(blk_at(h, (uint32_t)eg)->flags & BLK_NAMED) ||
		    e->size > (uint64_t)(blk_at(h, (uint32_t)eg)->size - 1) << GRAN_SHIFT ||
		    !memchr(e->name, 0, sizeof(e->name)))
			memset(e, 0, sizeof(*e));
	}
}

static int heap_repair(struct shmpool_heap *h)
{
	struct heap_hdr *hh = heap_hdr(h);
	uint32_t g, size, prev = 0, run = 0;
	uint64_t c, pay;
	uint16_t flags, owner;
	struct blk *b;

	for (g = heap_priv(h)->heap_g; g < heap_priv(h)->end_g; g += size) {
		size = blk_at(h, g)->size;
		if (size < MIN_BLOCK_G || size > heap_priv(h)->end_g - g)
			return -EUCLEAN;
	}
	if (g != heap_priv(h)->end_g)
		return -EUCLEAN;

	hh->fl_bitmap = 0;
	memset(hh->sl_bitmap, 0, sizeof(hh->sl_bitmap));
	memset(hh->heads, 0, sizeof(hh->heads));
	hh->free_g = hh->nr_free = hh->nr_used = 0;
	hh->nr_slabs = hh->nr_named = 0;
	memset(heap_bitmap(h), 0, heap_priv(h)->bitmap_words * 8);
	memset(heap_priv(h)->summary, 0, (heap_priv(h)->bitmap_words + 63) / 64 * 8);

	/* @run: the free block being grown by its free successors, or 0 */
	for (g = heap_priv(h)->heap_g; g < heap_priv(h)->end_g; g += size) {
		b = blk_at(h, g);
		size = b->size;
		/* again: a peer may have written the chain since the first walk */
		if (size < MIN_BLOCK_G || size > heap_priv(h)->end_g - g)
			return -EUCLEAN;
		flags = b->flags & (BLK_FREE | BLK_SLAB | BLK_NAMED);
		owner = b->owner;
		pay = ((uint64_t)g + 1) << GRAN_SHIFT;
		if ((flags & BLK_SLAB) && !(flags & BLK_FREE) &&
		    !atomic_load_explicit(&heap_chunks(h)[pay >> SLAB_SHIFT],
					  memory_order_relaxed)) {
			/* refill() maps the first chunk last: none of it was used */
			for (c = pay >> SLAB_SHIFT;
			     c < (pay + ((uint64_t)(size - 1) << GRAN_SHIFT)) >> SLAB_SHIFT; c++)
				atomic_store_explicit(&heap_chunks(h)[c], 0, memory_order_relaxed);
			flags = BLK_FREE;
		}
		/*
		 * Marked in use but by nobody: the dead thread was writing
		 * the header of a block it was about to hand out (the owner
		 * and flag stores may land in either order), or was freeing.
		 */
		if (!(flags & BLK_FREE) && (!owner || owner >= NR_ATTACH))
			flags = BLK_FREE;
		if ((flags & (BLK_FREE | BLK_NAMED)) == BLK_NAMED && !dir_names(h, pay))
			flags = BLK_FREE;	/* a create or remove cut short */
		if (flags & BLK_FREE) {
			if (run) {
				blk_set(h, run, blk_at(h, run)->size + size,
					blk_at(h, run)->prev, 0, BLK_FREE);
				continue;
			}
			blk_set(h, g, size, prev, 0, BLK_FREE);
			run = g;
			prev = size;
			continue;
		}
		if (run) {
			prev = blk_at(h, run)->size;
			list_insert(h, run);
			run = 0;
		}
		blk_set(h, g, size, prev, owner, flags);
		bit_set(h, g);
		hh->nr_used++;
		hh->nr_slabs += !!(flags & BLK_SLAB);
		hh->nr_named += !!(flags & BLK_NAMED);
		prev = size;
	}
	if (run) {
		prev = blk_at(h, run)->size;
		list_insert(h, run);
	}
	blk_set(h, heap_priv(h)->end_g, 1, prev, 0, BLK_LAST);
	dir_repair(h);
	hh->nr_repairs++;
	return 0;
}

static int check_locked(struct shmpool_heap *h, char *msg, size_t len);

/*
 * __shmpool_death_seq() inlined for the lock's fast path: one load of the
 * status page (device with attachments), 0 without one (memfd).
 */
static inline uint32_t pool_death_seq(const struct shmpool *p)
{
	const struct shmpool_status *st = p->__status;

	/* Acquire: pairs with the module's release store, as in attach.c. */
	return st ? __atomic_load_n(&st->death_seq, __ATOMIC_ACQUIRE) : 0;
}

/*
 * Take the heap lock. If its holder died, rebuild the general heap from the
 * block chain, then verify the result with the full checker (the small
 * classes too, as far as they can be checked while others allocate): a
 * heap that fails either is -EUCLEAN from then on. Then, and whenever the
 * pool's death_seq moved since the heap last looked (device backend), give
 * back what dead attachments cached and orphan what they held: the thread
 * that takes the lock first after a death pays for it, once.
 */
int __shmpool_heap_lock(struct shmpool_heap *h)
{
	struct heap_hdr *hh = heap_hdr(h);
	uint32_t seq;
	int ret;

	ret = __shmpool_lib_lock(h->pool, &hh->lock, __shmpool_heap_lock_ms(h));
	if (ret == -EOWNERDEAD) {
		ret = 0;
		if (!hh->damaged && (heap_repair(h) || check_locked(h, NULL, 0) ||
				     __shmpool_slab_check(h, false, NULL, 0)))
			hh->damaged = 1;
		if (!hh->damaged)
			__shmpool_heap_reclaim_locked(h, 0);
	}
	if (!ret && hh->damaged) {
		__shmpool_lib_unlock(h->pool, &hh->lock);
		return -EUCLEAN;
	}
	if (ret)
		return ret;
	seq = pool_death_seq(h->pool);
	if (seq != hh->death_seq) {
		hh->death_seq = seq;
		__shmpool_heap_reclaim_locked(h, 0);
	}
	return 0;
}

void __shmpool_heap_unlock(struct shmpool_heap *h)
{
	__shmpool_lib_unlock(h->pool, &heap_hdr(h)->lock);
}

/* ---- what a dead or closed owner leaves -------------------------------------- */

/*
 * Heap lock held, owner id @o no longer has a handle: the objects it had
 * cached go back to their lists, and the blocks and objects it held become
 * OWNER_ORPHAN (kept: another process may use them on purpose). With
 * @free_held, the orphans are freed too (@o may be 0 then: orphans only),
 * but never slabs or named objects. Returns how many went back.
 */
static long heap_release(struct shmpool_heap *h, uint16_t o, bool free_held)
{
	uint32_t g = heap_priv(h)->heap_g, p;
	/*
	 * A step forward per block, one back per free: a walk longer than
	 * that met headers a peer rewrote under it (it can make a merged
	 * block look allocated again, for ever). The checker will say.
	 */
	uint64_t steps = 2ULL * ((heap_priv(h)->end_g - g) / MIN_BLOCK_G + 1);
	long n = 0;
	struct blk *b;

	while (g < heap_priv(h)->end_g && steps--) {
		if (!blk_ok(h, g))
			break;	/* a scribbled header: the checker will say */
		b = blk_at(h, g);
		if (!(b->flags & BLK_FREE) && o && b->owner == o)
			blk_set(h, g, b->size, b->prev, OWNER_ORPHAN, b->flags);
		if (!(b->flags & BLK_FREE) && free_held && b->owner == OWNER_ORPHAN &&
		    !(b->flags & (BLK_SLAB | BLK_NAMED))) {
			p = b->prev ? g - b->prev : 0;
			if (__shmpool_tlsf_free(h, ((uint64_t)g + 1) << GRAN_SHIFT, 0))
				break;	/* a damaged header: the checker will say */
			n++;
			/* merged into a free predecessor: go on from there */
			if (p && (blk_at(h, p)->flags & BLK_FREE))
				g = p;
			continue;	/* the block at @g is free now */
		}
		g += b->size;
	}
	return n + __shmpool_slab_release(h, o, free_held);
}

long __shmpool_heap_reclaim_locked(struct shmpool_heap *h, unsigned int flags)
{
	_Atomic uint32_t *t = owner_table(h);
	uint32_t v;
	long n = 0;
	int i;

	for (i = 1; i < OWNER_ORPHAN; i++) {
		v = atomic_load_explicit(&t[i], memory_order_relaxed);
		if (!v || __shmpool_alive(h->pool, v))
			continue;
		n += heap_release(h, (uint16_t)i, false);
		/* release: pairs with the acquire CAS in attach() */
		atomic_store_explicit(&t[i], 0, memory_order_release);
	}
	if (flags & SHMPOOL_RECLAIM_HELD)
		n += heap_release(h, 0, true);
	if (flags & SHMPOOL_RECLAIM_STRANDED) {
		long m = __shmpool_slab_sweep(h);

		if (m < 0)
			return m;
		n += m;
	}
	return n;
}

SHMPOOL_EXPORT
long shmpool_heap_reclaim(struct shmpool_heap *h, unsigned int flags)
{
	long n;
	int ret;

	if (!h || (flags & ~(SHMPOOL_RECLAIM_HELD | SHMPOOL_RECLAIM_STRANDED)))
		return -EINVAL;
	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	n = __shmpool_heap_reclaim_locked(h, flags);
	/* and the slabs that all this emptied */
	if (n >= 0)
		__shmpool_slab_trim(h);
	__shmpool_heap_unlock(h);
	return n;
}

/* ---- layout and opening -------------------------------------------------------- */

/*
 * The handle's geometry, from the pool size alone (the same in every
 * process): where the chunk map, the bitmap and the blocks lie. Nothing of
 * it is read from the pool; the header is checked against it at open.
 */
static void heap_geometry(struct heap_priv *hp)
{
	uint64_t bytes = hp->pub.pool->size, bitmap_bytes, hstart, slab;
	size_t i;

	hp->base = heap_base(&hp->pub);
	hp->nr_chunks = (uint32_t)(bytes >> SLAB_SHIFT);
	hp->chunk_off = DIR_OFF + NR_DIR * sizeof(struct dir_ent);
	hp->bitmap_off = (hp->chunk_off + hp->nr_chunks + 63) & ~63ULL;
	hp->bitmap_words = ((bytes >> GRAN_SHIFT) + 63) / 64;
	bitmap_bytes = hp->bitmap_words * 8 + (hp->bitmap_words + 63) / 64 * 8;
	hstart = (hp->bitmap_off + bitmap_bytes + GRAN - 1) & ~(uint64_t)(GRAN - 1);
	hp->heap_g = (uint32_t)(hstart >> GRAN_SHIFT);
	hp->end_g = (uint32_t)(bytes >> GRAN_SHIFT) - 1;
	hp->lo = ((uint64_t)hp->heap_g + 1) << GRAN_SHIFT;
	hp->hi = (uint64_t)hp->end_g << GRAN_SHIFT;
	hp->chunks = (_Atomic uint8_t *)(hp->base + hp->chunk_off);
	hp->bitmap = (uint64_t *)(hp->base + hp->bitmap_off);
	hp->summary = hp->bitmap + hp->bitmap_words;
	hp->max_free = (hp->end_g - hp->heap_g) / MIN_BLOCK_G + 1;
	__shmpool_slab_geometry(hp->cls);
	for (i = 0; i < NR_CLASSES; i++) {
		slab = (uint64_t)hp->cls[i].slab_mask + 1;
		hp->slab_room[i] = hp->hi - hp->lo >= slab ? hp->hi - hp->lo - slab + 1 : 0;
	}
	for (i = 0; i < sizeof(hp->size_cls); i++)
		hp->size_cls[i] = (uint8_t)slab_class((i + 1) << GRAN_SHIFT);
}

/* Lay the heap out in a pool whose state word we own (INIT | our pid). */
static void heap_init(struct shmpool_heap *h)
{
	struct heap_hdr *hh = heap_hdr(h);
	const struct heap_priv *hp = heap_priv(h);

	/* a dead initialiser may have left anything behind: start clean */
	memset((char *)hh + sizeof(hh->state), 0, ATTACH_OFF - sizeof(hh->state));
	memset(heap_base(h) + ATTACH_OFF, 0, NR_ATTACH * 4U + NR_DIR * sizeof(struct dir_ent));
	memset(heap_base(h) + hp->chunk_off, 0,
	       ((uint64_t)hp->heap_g << GRAN_SHIFT) - hp->chunk_off);

	hh->magic = HEAP_MAGIC;
	hh->version = HEAP_VERSION;
	hh->hdr_bytes = sizeof(*hh);
	hh->pool_bytes = h->pool->size;
	hh->chunk_off = hp->chunk_off;
	hh->bitmap_off = hp->bitmap_off;
	hh->nr_chunks = hp->nr_chunks;
	hh->heap_g = hp->heap_g;
	hh->end_g = hp->end_g;
	shmpool_mutex_init(h->pool, &hh->lock);
	__shmpool_slab_layout(hh);

	/* one free block and the sentinel */
	blk_set(h, hp->heap_g, hp->end_g - hp->heap_g, 0, 0, BLK_FREE);
	blk_set(h, hp->end_g, 1, hp->end_g - hp->heap_g, 0, BLK_LAST);
	list_insert(h, hp->heap_g);
}

/* The header says what heap_geometry() computed, or -EUCLEAN. */
static int heap_validate(struct shmpool_heap *h)
{
	struct heap_hdr *hh = heap_hdr(h);
	const struct heap_priv *hp = heap_priv(h);
	unsigned int c;

	if (hh->magic != HEAP_MAGIC || hh->version != HEAP_VERSION ||
	    hh->hdr_bytes != sizeof(*hh) || hh->pool_bytes != h->pool->size ||
	    hh->end_g != hp->end_g || hh->heap_g != hp->heap_g ||
	    hh->bitmap_off != hp->bitmap_off || hh->chunk_off != hp->chunk_off ||
	    hh->nr_chunks != hp->nr_chunks)
		return -EUCLEAN;
	for (c = 0; c < NR_CLASSES; c++)
		if (hh->cls[c].size != hp->cls[c].size ||
		    hh->cls[c].nobj != hp->cls[c].nobj ||
		    hh->cls[c].slot_off != hp->cls[c].slot_off ||
		    hh->cls[c].obj_off != hp->cls[c].obj_off)
			return -EUCLEAN;
	return 0;
}

/*
 * Make sure the pool is laid out: initialise it ourselves, wait for whoever
 * does, or take over from an initialiser that died.
 */
static int heap_ready(struct shmpool_heap *h)
{
	struct heap_hdr *hh = heap_hdr(h);
	struct timespec giveup, dl, now;
	uint32_t s, me;
	int ret;

	ret = __shmpool_self(h->pool, &me);
	if (ret)
		return ret;
	me = HEAP_STATE_INIT | (me & HEAP_STATE_PID_MASK);

	__shmpool_deadline_within(NULL, INIT_TIMEOUT_S * 1000L, &giveup);

	for (;;) {
		/*
		 * Acquire: pairs with the release store of READY below, so an
		 * opener that sees READY sees the whole layout.
		 */
		s = atomic_load_explicit(&hh->state, memory_order_acquire);
		if (s == HEAP_STATE_READY)
			return heap_validate(h);
		/* one look, no layout: this state is all a peer's word decides */
		if (h->__flags & SHMPOOL_HEAP_EXISTING)
			return s ? -EUCLEAN : -ENODATA;
		if (s != 0 && !(s & HEAP_STATE_INIT))
			return -EUCLEAN;
		/* an attachment id: a live initialiser elsewhere is never taken for dead */
		if (s == 0 || !__shmpool_alive(h->pool, s & HEAP_STATE_PID_MASK)) {
			/*
			 * Claim (or take over) initialisation. Relaxed is
			 * enough: we publish nothing yet, and what a dead
			 * initialiser wrote is overwritten, not read.
			 */
			if (atomic_compare_exchange_strong_explicit(&hh->state,
					&s, me, memory_order_relaxed,
					memory_order_relaxed)) {
				heap_init(h);
				/* release: pairs with the acquire load above */
				atomic_store_explicit(&hh->state, HEAP_STATE_READY,
						      memory_order_release);
				ret = shmpool_wake(h->pool, 0, SHMPOOL_WAKE_ALL);
				return ret < 0 ? ret : 0;
			}
			/*
			 * Lost: someone claimed it, or a peer keeps
			 * rewriting the word between our load and our CAS.
			 * Wait on the word we found now (it may move again
			 * at once) and count the time, as below: retrying
			 * at once would spin for as long as the peer did.
			 * Only READY is looked at again at once: it ends
			 * the loop.
			 */
			if (s == HEAP_STATE_READY)
				continue;
		}
		/* someone alive is at it: sleep on the word, look again */
		ret = shmpool_wait(h->pool, 0, s,
				   __shmpool_deadline_within(NULL, INIT_WAIT_MS, &dl), 0);
		if (ret && ret != -EAGAIN && ret != -ETIMEDOUT && ret != -EINTR)
			return ret;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > giveup.tv_sec ||
		    (now.tv_sec == giveup.tv_sec && now.tv_nsec >= giveup.tv_nsec))
			return -ETIMEDOUT;
	}
}

SHMPOOL_EXPORT
int shmpool_heap_open(struct shmpool *p, unsigned int flags,
		      struct shmpool_heap **out)
{
	struct shmpool_heap *h;
	struct heap_priv *hp;
	int ret;

	if (!p || !out || (flags & ~(SHMPOOL_HEAP_NOCACHE | SHMPOOL_HEAP_EXISTING)))
		return -EINVAL;
	if (p->flags & SHMPOOL_RDONLY)
		return -EPERM;
	if (p->size < SHMPOOL_HEAP_MIN_POOL)
		return -EINVAL;
	if ((p->size >> GRAN_SHIFT) > UINT32_MAX)
		return -EFBIG;
	hp = calloc(1, sizeof(*hp));
	if (!hp)
		return -ENOMEM;
	h = &hp->pub;
	h->pool = p;
	h->__hdr = p->base;
	h->__flags = flags;
	atomic_init(&hp->lock_ms, HEAP_LOCK_MS);
	heap_geometry(hp);
	ret = heap_ready(h);
	/* the newcomer pays for the dead it finds (memfd: nobody else notices) */
	if (!ret)
		ret = __shmpool_heap_lock(h);
	if (!ret) {
		__shmpool_heap_reclaim_locked(h, 0);
		__shmpool_heap_unlock(h);
		ret = attach(h, false);
	}
	if (ret) {
		free(hp);
		return ret;
	}
	__shmpool_tcache_register(h);
	*out = h;
	return 0;
}

SHMPOOL_EXPORT
int shmpool_heap_close(struct shmpool_heap *h)
{
	int ret = 0;

	if (!h)
		return 0;
	__shmpool_tcache_detach(h);
	/*
	 * Only our own id (an inherited one is the parent's): what it still
	 * holds becomes an orphan before the id is free for others.
	 */
	if (h->__fork_gen == atomic_load_explicit(&__shmpool_fork_gen, memory_order_relaxed)) {
		ret = __shmpool_heap_lock(h);
		if (!ret) {
			heap_release(h, (uint16_t)h->__attach, false);
			/* release: pairs with the acquire CAS in attach() */
			atomic_store_explicit(&owner_table(h)[h->__attach], 0,
					      memory_order_release);
			__shmpool_heap_unlock(h);
		}
	}
	free(h);
	return ret;
}

/* ---- allocate and free ------------------------------------------------------------ */

long __shmpool_heap_lock_ms(struct shmpool_heap *h)
{
	/* relaxed: a setting of this handle; nothing is ordered by it */
	return atomic_load_explicit(&heap_priv(h)->lock_ms, memory_order_relaxed);
}

SHMPOOL_EXPORT
int shmpool_heap_set_lock_timeout(struct shmpool_heap *h, long ms)
{
	if (!h || ms < -1)
		return -EINVAL;
	/* relaxed: read by __shmpool_heap_lock(), nothing else is ordered by it */
	atomic_store_explicit(&heap_priv(h)->lock_ms, ms, memory_order_relaxed);
	return 0;
}

/* The general heap's side of shmpool_alloc_aligned() (tcache.c). */
int __shmpool_heap_alloc(struct shmpool_heap *h, size_t size, size_t align,
			 uint64_t *off)
{
	int ret;

	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	ret = __shmpool_tlsf_alloc(h, size, align, 0, off);
	__shmpool_heap_unlock(h);
	return ret;
}

/* The general heap's side of shmpool_free() (tcache.c). */
int __shmpool_heap_free(struct shmpool_heap *h, uint64_t off)
{
	int ret;

	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	ret = __shmpool_tlsf_free(h, off, 0);
	__shmpool_heap_unlock(h);
	return ret;
}

/* Size and owner of the allocated block or object at @off. */
static int block_query(struct shmpool_heap *h, uint64_t off, uint32_t *size,
		       uint32_t *owner)
{
	uint32_t g;
	int ret;

	if (!h || off >= h->pool->size)
		return -EINVAL;
	if (__shmpool_slab_query(h, off, size, owner, &ret))
		return ret;
	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	ret = used_block(h, off, &g);
	if (!ret && (blk_at(h, g)->flags & BLK_SLAB))
		ret = -EINVAL;
	if (!ret) {
		*size = (blk_at(h, g)->size - 1) << GRAN_SHIFT;
		*owner = blk_at(h, g)->owner;
	}
	__shmpool_heap_unlock(h);
	return ret;
}

/* Make the caller's handle the owner of the allocated block or object at @off. */
SHMPOOL_EXPORT
int shmpool_alloc_adopt(struct shmpool_heap *h, uint64_t off)
{
	uint16_t me;
	uint32_t g;
	int ret;

	if (!h || off >= h->pool->size)
		return -EINVAL;
	ret = __shmpool_heap_owner(h, &me);
	if (ret)
		return ret;
	ret = __shmpool_slab_adopt(h, off, me);
	if (ret != 1)
		return ret;
	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	ret = used_block(h, off, &g);
	if (!ret && (blk_at(h, g)->flags & (BLK_SLAB | BLK_NAMED)))
		ret = -EINVAL;
	if (!ret)
		blk_set(h, g, blk_at(h, g)->size, blk_at(h, g)->prev, me,
			blk_at(h, g)->flags);
	__shmpool_heap_unlock(h);
	return ret;
}

SHMPOOL_EXPORT
int64_t shmpool_alloc_size(struct shmpool_heap *h, uint64_t off)
{
	uint32_t size, owner;
	int ret = block_query(h, off, &size, &owner);

	return ret ? ret : (int64_t)size;
}

SHMPOOL_EXPORT
int shmpool_alloc_owner(struct shmpool_heap *h, uint64_t off)
{
	uint32_t size, owner;
	int ret = block_query(h, off, &size, &owner);

	return ret ? ret : owner == OWNER_ORPHAN ? 0 : (int)owner;
}

/* ---- introspection ---------------------------------------------------------------- */

/* @st's counters that the heap header holds (stats and inspect) */
static void header_counts(struct shmpool_heap *h, struct shmpool_heap_stats *st)
{
	const struct heap_hdr *hh = heap_hdr(h);

	st->heap_bytes = (uint64_t)(heap_priv(h)->end_g - heap_priv(h)->heap_g) << GRAN_SHIFT;
	st->free_bytes = (hh->free_g - hh->nr_free) << GRAN_SHIFT;
	st->used_bytes = st->heap_bytes - (hh->free_g << GRAN_SHIFT);
	st->free_blocks = hh->nr_free;
	st->alloc_blocks = hh->nr_used - hh->nr_slabs - hh->nr_named;
	st->slabs = hh->nr_slabs;
	st->objects = hh->nr_named;
	st->repairs = hh->nr_repairs;
}

/*
 * The granules of the largest listed free block: it sits in the highest
 * non-empty list, walked as far as the heap can have free blocks. Under
 * the lock (@strict), a list that leads anywhere but to free blocks is
 * -EUCLEAN; without it (inspect) the walk just stops there.
 */
static int largest_listed(struct shmpool_heap *h, bool strict, uint64_t *largest)
{
	struct heap_hdr *hh = heap_hdr(h);
	const struct heap_priv *hp = heap_priv(h);
	uint32_t map = hh->fl_bitmap & FL_MASK, g;
	unsigned int fl, sl;
	uint64_t steps = 0;

	*largest = 0;
	if (!map)
		return 0;
	fl = log2_u32(map);
	map = hh->sl_bitmap[fl] & SL_MASK;
	if (!map)
		return strict ? -EUCLEAN : 0;
	sl = log2_u32(map);
	for (g = hh->heads[fl][sl]; g; g = blk_links(h, g)->next) {
		if (++steps > hp->max_free || g < hp->heap_g || g >= hp->end_g ||
		    (strict && !free_ok(h, g)))
			return strict ? -EUCLEAN : 0;
		if (blk_at(h, g)->size > *largest && blk_at(h, g)->size <= hp->end_g - g)
			*largest = blk_at(h, g)->size;
	}
	return 0;
}

/*
 * The largest size one shmpool_alloc() gets: the largest free block's
 * payload (find_fit() finds any block that fits), or the largest class
 * with an object on its list, if that is more.
 */
static void largest_free(struct shmpool_heap_stats *st, uint64_t largest_g)
{
	int i;

	st->largest_free = largest_g ? (largest_g - 1) << GRAN_SHIFT : 0;
	for (i = NR_CLASSES - 1; i >= 0; i--)
		if (st->classes[i].objs > st->classes[i].used + st->classes[i].cached) {
			if (st->classes[i].size > st->largest_free)
				st->largest_free = st->classes[i].size;
			break;
		}
}

SHMPOOL_EXPORT
int shmpool_heap_stats(struct shmpool_heap *h, struct shmpool_heap_stats *st)
{
	uint64_t largest;
	int ret, i;

	if (!h || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	ret = __shmpool_heap_lock(h);
	if (ret)
		return ret;
	/* what one allocation would get includes the empty slabs: give them back */
	__shmpool_slab_trim(h);
	header_counts(h, st);
	ret = largest_listed(h, true, &largest);
	__shmpool_heap_unlock(h);
	if (ret)
		return ret;

	for (i = 1; i < OWNER_ORPHAN; i++)
		if (atomic_load_explicit(&owner_table(h)[i], memory_order_relaxed))
			st->nr_attach++;
	__shmpool_slab_stats(h, st);
	for (i = 0; i < NR_CLASSES; i++) {
		st->alloc_blocks += st->classes[i].used;
		st->free_bytes += (st->classes[i].objs - st->classes[i].used) *
				  st->classes[i].size;
	}
	largest_free(st, largest);
	return 0;
}

static int check_locked(struct shmpool_heap *h, char *msg, size_t len)
{
	struct heap_hdr *hh = heap_hdr(h);
	uint64_t nfree = 0, nused = 0, free_g = 0, nbits = 0, listed = 0;
	uint32_t g, size = 0, prev_size = 0, nslab = 0, nnamed = 0, w;
	unsigned int fl, sl, efl, esl;
	bool prev_free = false;
	struct blk *b;
	int ret = 0, i;

	for (g = heap_priv(h)->heap_g; g < heap_priv(h)->end_g; g += size) {
		b = blk_at(h, g);
		/*
		 * The size read once, and checked as read: a peer that rewrites
		 * it after blk_ok() looked must not hold the walk in place (or
		 * send it past the end). Each step is then MIN_BLOCK_G or more.
		 */
		size = __atomic_load_n(&b->size, __ATOMIC_RELAXED);
		if (!blk_ok(h, g) || size < MIN_BLOCK_G || size > heap_priv(h)->end_g - g)
			FAIL("block at 0x%llx: bad header (check word, size %u or flags 0x%x)",
			     (unsigned long long)g << GRAN_SHIFT, size, b->flags);
		if (b->prev != prev_size)
			FAIL("block at 0x%llx: previous size %u, the previous block has %u",
			     (unsigned long long)g << GRAN_SHIFT, b->prev, prev_size);
		if (b->flags & BLK_FREE) {
			if (prev_free)
				FAIL("block at 0x%llx: free after a free block (not coalesced)",
				     (unsigned long long)g << GRAN_SHIFT);
			if (b->flags != BLK_FREE || b->owner)
				FAIL("free block at 0x%llx: flags 0x%x owner %u",
				     (unsigned long long)g << GRAN_SHIFT, b->flags, b->owner);
			if (bit_test(h, g))
				FAIL("free block at 0x%llx: marked allocated in the bitmap",
				     (unsigned long long)g << GRAN_SHIFT);
			nfree++;
			free_g += size;
		} else {
			if (!bit_test(h, g))
				FAIL("allocated block at 0x%llx: not in the bitmap",
				     (unsigned long long)g << GRAN_SHIFT);
			if (!b->owner || b->owner >= NR_ATTACH)
				FAIL("allocated block at 0x%llx: owner %u",
				     (unsigned long long)g << GRAN_SHIFT, b->owner);
			if (b->flags & BLK_SLAB) {
				uint64_t pay = ((uint64_t)g + 1) << GRAN_SHIFT;

				if ((pay & (SLAB_SIZE - 1)) ||
				    !atomic_load_explicit(&heap_chunks(h)[pay >> SLAB_SHIFT],
							  memory_order_relaxed))
					FAIL("slab block at 0x%llx: not a mapped, aligned chunk",
					     (unsigned long long)g << GRAN_SHIFT);
				nslab++;
			}
			if (b->flags & BLK_NAMED)
				nnamed++;
			nused++;
		}
		prev_free = b->flags & BLK_FREE;
		prev_size = size;
	}
	if (g != heap_priv(h)->end_g || !blk_ok(h, g) || blk_at(h, g)->prev != prev_size)
		FAIL("heap end at 0x%llx: walk ends at 0x%llx or bad sentinel",
		     (unsigned long long)heap_priv(h)->end_g << GRAN_SHIFT,
		     (unsigned long long)g << GRAN_SHIFT);
	for (i = 0; i < (int)heap_priv(h)->bitmap_words; i++) {
		nbits += (uint64_t)__builtin_popcountll(heap_bitmap(h)[i]);
		if (!heap_bitmap(h)[i] != !(heap_priv(h)->summary[i / 64] >> (i % 64) & 1))
			FAIL("bitmap summary: bit %d says %d, the word is 0x%llx", i,
			     (int)(heap_priv(h)->summary[i / 64] >> (i % 64) & 1),
			     (unsigned long long)heap_bitmap(h)[i]);
	}
	if (heap_priv(h)->bitmap_words % 64 &&
	    heap_priv(h)->summary[heap_priv(h)->bitmap_words / 64] >> (heap_priv(h)->bitmap_words % 64))
		FAIL("bitmap summary: bits past the bitmap's last word");
	if (nbits != nused)
		FAIL("bitmap: %llu block starts marked, %llu allocated blocks",
		     (unsigned long long)nbits, (unsigned long long)nused);
	if (nfree != hh->nr_free || free_g != hh->free_g || nused != hh->nr_used ||
	    nslab != hh->nr_slabs || nnamed != hh->nr_named)
		FAIL("counters: free %llu/%llu blocks, %llu/%llu granules, used %llu/%llu, slabs %u/%u, named %u/%u (walk/header)",
		     (unsigned long long)nfree, (unsigned long long)hh->nr_free,
		     (unsigned long long)free_g, (unsigned long long)hh->free_g,
		     (unsigned long long)nused, (unsigned long long)hh->nr_used,
		     nslab, hh->nr_slabs, nnamed, hh->nr_named);

	/* every list: its blocks are free, belong there, and link back */
	if (hh->fl_bitmap & ~FL_MASK)
		FAIL("TLSF: first-level bitmap 0x%x has bits past the last list", hh->fl_bitmap);
	for (fl = 0; fl < FL_COUNT; fl++) {
		if (hh->sl_bitmap[fl] & ~SL_MASK)
			FAIL("TLSF: second-level bitmap %u is 0x%x", fl, hh->sl_bitmap[fl]);
		if (!!(hh->fl_bitmap & (1U << fl)) != !!hh->sl_bitmap[fl])
			FAIL("TLSF: first-level bit %u disagrees with its second level", fl);
		for (sl = 0; sl < SL_COUNT; sl++) {
			uint32_t prev = 0;

			if (!!(hh->sl_bitmap[fl] & (1U << sl)) != !!hh->heads[fl][sl])
				FAIL("TLSF: list %u/%u bit disagrees with its head", fl, sl);
			for (g = hh->heads[fl][sl]; g; g = blk_links(h, g)->next) {
				if (!blk_ok(h, g) || !(blk_at(h, g)->flags & BLK_FREE) ||
				    g == heap_priv(h)->end_g)
					FAIL("TLSF list %u/%u: 0x%llx is not a free block",
					     fl, sl, (unsigned long long)g << GRAN_SHIFT);
				mapping(blk_at(h, g)->size, &efl, &esl);
				if (efl != fl || esl != sl)
					FAIL("TLSF list %u/%u: free block at 0x%llx of %u granules belongs in %u/%u",
					     fl, sl, (unsigned long long)g << GRAN_SHIFT,
					     blk_at(h, g)->size, efl, esl);
				if (blk_links(h, g)->prev != prev)
					FAIL("TLSF list %u/%u: bad back link at 0x%llx",
					     fl, sl, (unsigned long long)g << GRAN_SHIFT);
				if (++listed > nfree)
					FAIL("TLSF lists: more entries than free blocks (cycle?)");
				prev = g;
			}
		}
	}
	if (listed != nfree)
		FAIL("TLSF lists: %llu entries, %llu free blocks",
		     (unsigned long long)listed, (unsigned long long)nfree);

	/* the directory names allocated, named blocks */
	for (i = 0, w = 0; i < NR_DIR; i++) {
		struct dir_ent *e = &heap_dir(h)[i];
		uint32_t eg;

		if (!e->off)
			continue;
		w++;
		eg = (uint32_t)(e->off >> GRAN_SHIFT) - 1;
		if (e->off >= h->pool->size || (e->off & (GRAN - 1)) || eg < heap_priv(h)->heap_g || eg >= heap_priv(h)->end_g ||
		    !bit_test(h, eg) || !blk_ok(h, eg) ||
		    !(blk_at(h, eg)->flags & BLK_NAMED) ||
		    e->size > (uint64_t)(blk_at(h, eg)->size - 1) << GRAN_SHIFT ||
		    !memchr(e->name, 0, sizeof(e->name)))
			FAIL("directory entry %d: object at 0x%llx is not a named block of its size",
			     i, (unsigned long long)e->off);
	}
	if (w != nnamed)
		FAIL("directory: %u entries, %u named blocks", w, nnamed);
out:
	return ret;
}

SHMPOOL_EXPORT
int shmpool_heap_check(struct shmpool_heap *h, unsigned int flags,
		       char *msg, size_t len)
{
	int ret, lret;

	if (!h || (len && !msg) || (flags & ~SHMPOOL_CHECK_QUIESCENT))
		return -EINVAL;
	if (len)
		msg[0] = '\0';
	lret = __shmpool_heap_lock(h);
	if (lret)
		return lret;
	ret = check_locked(h, msg, len);
	/* slabs are made under the lock: their map holds still meanwhile */
	if (!ret)
		ret = __shmpool_slab_check(h, flags & SHMPOOL_CHECK_QUIESCENT,
					   msg, len);
	__shmpool_heap_unlock(h);
	return ret;
}

/* ---- read-only introspection ------------------------------------------------------ */

/*
 * The heap's counters without its lock, for observers that may not take
 * it (a SHMPOOL_RDONLY handle cannot write the mutex word). Nothing is
 * written; every offset read from the pool is range-checked and the one
 * list walk is bounded, since a peer may change anything meanwhile.
 */
SHMPOOL_EXPORT
int shmpool_heap_inspect(struct shmpool *p, struct shmpool_heap_stats *st)
{
	struct heap_priv hp = { 0 };
	struct shmpool_heap *h = &hp.pub;
	struct heap_hdr *hh;
	uint64_t largest = 0;
	int ret, i;

	if (!p || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	if (p->size < SHMPOOL_HEAP_MIN_POOL || (p->size >> GRAN_SHIFT) > UINT32_MAX)
		return -ENODATA;
	h->pool = p;
	h->__hdr = p->base;
	hh = heap_hdr(h);
	/* acquire: pairs with heap_ready()'s release of READY (the layout) */
	if (atomic_load_explicit(&hh->state, memory_order_acquire) != HEAP_STATE_READY)
		return hh->magic ? -EUCLEAN : -ENODATA;
	heap_geometry(&hp);
	ret = heap_validate(h);
	if (ret)
		return ret;
	header_counts(h, st);
	largest_listed(h, false, &largest);
	for (i = 1; i < OWNER_ORPHAN; i++)
		if (atomic_load_explicit(&owner_table(h)[i], memory_order_relaxed))
			st->nr_attach++;
	__shmpool_slab_stats(h, st);
	for (i = 0; i < NR_CLASSES; i++) {
		st->alloc_blocks += st->classes[i].used;
		st->free_bytes += (st->classes[i].objs - st->classes[i].used) *
				  st->classes[i].size;
	}
	largest_free(st, largest);
	return 0;
}
