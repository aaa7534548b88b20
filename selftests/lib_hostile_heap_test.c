/* lib_hostile_heap_test: a peer that writes garbage or crafted values into the heap (header, TLSF control, block headers and links, small-class heads, slab metadata, chunk map) cannot make another process's heap calls crash, hang, hand out memory outside the heap area or over live blocks, write outside the pool, or return undocumented errors; memfd and device backends. */
// SPDX-License-Identifier: MIT
/*
 * Every trial (selftests/hostile.h): a fresh pool and heap, a history of
 * allocations and frees by the test (general blocks and small objects, some
 * held with a pattern in them), then the peer's writes:
 *  (a) random bytes into the heap header and its TLSF control,
 *  (b) random bytes anywhere in the pool,
 *  (c) crafted plausible values: a freed block's list links (a use-after-
 *      free write) pointing to itself, to a held block, one past the end,
 *      at the sentinel; block sizes at the maximum; TLSF list heads and
 *      bitmaps; small-class list heads and free objects' links to held
 *      objects, to themselves, past the slab; class geometry; chunk map
 *      bytes over the metadata and over general blocks.
 * The heap mutex is left alone by (a)-(c); the heap_lock trials write it
 * instead, with crafted owners, and the victim takes the lock at once or
 * gets -ETIMEDOUT (its lock timeout 0) where a live process may hold it.
 *
 * Then a victim process (fork, watchdog) runs allocations (some of exactly
 * shmpool_heap_stats()' largest_free), frees, stats, check, reclaim and a
 * new open on the heap, with inaccessible pages mapped right around the
 * pool where the address space allows, and exits non-zero if a call
 * returns an undocumented error, a block lies outside the heap area or
 * over a block the test holds or the victim got, or the contents of those
 * blocks changed behind its back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_sync.h"
/* the 6.1 harness leaves parameters unused and defines unprototyped functions */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include "kselftest_harness.h"
#include "lib_test.h"
#include "hostile.h"

#define POOL_BYTES	(2U << 20)
#define NHIST		64	/* allocations of the history */
#define NHELD		32	/* at most held by the test */
#define NGOT		64	/* at most held by the victim */
#define VICTIM_OPS	150
#define WATCHDOG_MS	10000
/* per test, scaled, bounds the trials: the device runs in the TCG lanes (7 tests) */
#define BUDGET_MS	2500
#define BUDGET_DEV_MS	900

/*
 * The heap header as lib/heap.h lays it out in layout version 6 (8 lists
 * per class, the lanes), so that the crafted trials can aim; checked
 * against the pool at every trial.
 */
#define T_LANES	8

struct t_cls {
	uint64_t top[T_LANES];
	uint32_t nobj, size, slot_off, obj_off;
} __attribute__((aligned(64)));

struct t_hdr {
	uint32_t state, magic, version, hdr_bytes;
	uint64_t pool_bytes, chunk_off, bitmap_off;
	uint32_t nr_chunks, heap_g, end_g, damaged;
	struct shmpool_mutex lock;
	uint32_t fl_bitmap;
	uint32_t sl_bitmap[29];
	uint32_t heads[29][16];
	uint64_t free_g, nr_free, nr_used;
	uint32_t nr_slabs, nr_named, nr_repairs, death_seq;
	uint32_t lane_next;
	struct t_cls cls[SHMPOOL_HEAP_NR_CLASSES];
};

/* Class @c's list on the lane of the thread cache made last: the victim's. */
static uint64_t *top_of(struct t_hdr *hh, int c)
{
	return &hh->cls[c].top[(hh->lane_next - 1) % T_LANES];
}

_Static_assert(offsetof(struct t_hdr, lock) == 56, "heap mutex moved");

/* KINDS: only the crafted writes of the kinds asked for, in turn */
enum mode { RANDOM_HEADER, RANDOM_POOL, CRAFTED, KINDS, LOCK };

struct blockref {
	uint64_t off;
	size_t size;
	uint8_t tag;
};

struct trial {
	struct shmpool *p;
	struct shmpool_heap *h;
	uint64_t lo, hi;	/* heap area */
	struct blockref held[NHELD];
	int nheld;
	uint8_t *copy;		/* the pool after the peer's writes */
	uint64_t seed;
	const char *what;	/* the crafted write, for the log */
	int owner;		/* the test's owner id: every held block's */
	bool meta_untouched;	/* the peer wrote no held block's metadata */
	int lock_kind;		/* LOCK: what is written into the heap's lock, else -1 */
	uint32_t parent_id, parent_tid;	/* the test's attachment and thread: alive */
};

static struct t_hdr *hdr(struct trial *t)
{
	return shmpool_base(t->p);
}

static uint8_t *at(struct trial *t, uint64_t off)
{
	return (uint8_t *)shmpool_base(t->p) + off;
}

static size_t hist_size(uint64_t *s)
{
	switch (hostile_below(s, 4)) {
	case 0: return 1 + hostile_below(s, 128);
	case 1: return 129 + hostile_below(s, 2048);
	case 2: return 2049 + hostile_below(s, 6144);
	default: return 8193 + hostile_below(s, 24 * 1024);
	}
}

/* The history: allocate, free about half (general and small), hold the rest. */
static int history(struct trial *t, uint64_t *s)
{
	struct blockref b[NHIST];
	int i, ret;

	for (i = 0; i < NHIST; i++) {
		b[i].size = hist_size(s);
		ret = shmpool_alloc(t->h, b[i].size, &b[i].off);
		if (ret)
			return ret;
		b[i].tag = (uint8_t)(i + 1);
		memset(at(t, b[i].off), b[i].tag, b[i].size);
	}
	t->nheld = 0;
	for (i = 0; i < NHIST; i++) {
		if (t->nheld < NHELD && hostile_below(s, 2)) {
			t->held[t->nheld++] = b[i];
			continue;
		}
		ret = shmpool_free(t->h, b[i].off);
		if (ret)
			return ret;
	}
	return shmpool_heap_flush(t->h);
}

/* ---- the peer's writes -------------------------------------------------------- */

/* random bytes at @n random places of [@from, @to), the mutex spared */
static void scribble(struct trial *t, uint64_t *s, uint64_t from, uint64_t to, int n)
{
	uint64_t off, len;

	while (n--) {
		len = 1 + hostile_below(s, 16);
		off = from + hostile_below(s, to - from - len);
		if (off < offsetof(struct t_hdr, lock) + sizeof(struct shmpool_mutex) &&
		    off + len > offsetof(struct t_hdr, lock))
			continue;
		hostile_fill(s, at(t, off), len);
	}
}

/* up to @max granules of free general blocks, from the TLSF lists */
static int free_blocks(struct trial *t, uint32_t *g, int max)
{
	struct t_hdr *hh = hdr(t);
	int fl, sl, n = 0, steps;
	uint32_t x;

	for (fl = 0; fl < 29; fl++)
		for (sl = 0; sl < 16; sl++)
			/* a link an earlier crafted() spoiled may point anywhere */
			for (x = hh->heads[fl][sl], steps = 0;
			     x && n < max && steps < 64 &&
			     (uint64_t)x * 16 >= t->lo && (uint64_t)x * 16 < t->hi;
			     x = *(uint32_t *)at(t, ((uint64_t)x + 1) * 16), steps++)
				g[n++] = x;
	return n;
}

/* a held small object and a held general block (0 if none) */
static uint64_t held_of(struct trial *t, uint64_t *s, bool small)
{
	int i, k = (int)hostile_below(s, NHELD);

	for (i = 0; i < t->nheld; i++) {
		struct blockref *b = &t->held[(i + k) % t->nheld];

		if ((b->size <= 8192) == small)
			return b->off;
	}
	return 0;
}

/* the granule of a held object of class @c, or of another small one, or 0 */
static uint32_t held_in_class(struct trial *t, uint64_t *s, int c)
{
	uint32_t lo = c ? hdr(t)->cls[c - 1].size : 0, hi = hdr(t)->cls[c].size;
	int i;

	for (i = 0; i < t->nheld; i++)
		if (t->held[i].size > lo && t->held[i].size <= hi)
			return (uint32_t)(t->held[i].off / 16);
	return (uint32_t)(held_of(t, s, true) / 16);
}

/* slot (free-list link) of the small object at @off of class @c */
static uint32_t *slot_of(struct trial *t, uint64_t off, int c)
{
	struct t_cls *ci = &hdr(t)->cls[c];
	uint64_t slab = off & ~(uint64_t)(ci->size > 2048 ? 65535 : 16383);

	return (uint32_t *)at(t, slab + ci->slot_off + 4 * ((off - slab - ci->obj_off) / ci->size));
}

/* a granule a crafted link points to */
static uint32_t crafted_g(struct trial *t, uint64_t *s, uint32_t self)
{
	uint64_t x;

	switch (hostile_below(s, 7)) {
	case 0: return self;
	case 1: x = held_of(t, s, false); return x ? (uint32_t)(x / 16 - 1) : self;
	case 2: x = held_of(t, s, true); return x ? (uint32_t)(x / 16) : self;
	case 3: return hdr(t)->end_g;
	case 4: return hdr(t)->end_g + 1;
	case 5: return (uint32_t)(t->lo / 16) - 2;	/* metadata */
	default: return (uint32_t)hostile_plausible(s, POOL_BYTES / 16);
	}
}

#define NR_KINDS	9

/* crafted write @kind (0..NR_KINDS - 1) */
static void crafted(struct trial *t, uint64_t *s, int kind)
{
	struct t_hdr *hh = hdr(t);
	uint32_t g[64], *p;
	int n, c, i, fl, sl;
	uint64_t off;

	/* these write into no held block's header, slot or bit */
	t->meta_untouched &= kind <= 5;
	switch (kind) {
	case 0:	/* use after free: 8 bytes into a freed block's links */
		t->what = "a freed block's links";
		n = free_blocks(t, g, 64);
		if (!n)
			break;
		i = (int)hostile_below(s, (uint64_t)n);
		p = (uint32_t *)at(t, ((uint64_t)g[i] + 1) * 16);
		p[0] = crafted_g(t, s, g[i]);
		if (hostile_below(s, 2))
			p[1] = crafted_g(t, s, g[i]);
		break;
	case 1:	/* a free block's size at the maximum or just past its end */
		t->what = "a free block's size";
		n = free_blocks(t, g, 64);
		if (!n)
			break;
		i = (int)hostile_below(s, (uint64_t)n);
		p = (uint32_t *)at(t, (uint64_t)g[i] * 16);
		p[hostile_below(s, 2)] = (uint32_t)hostile_plausible(s, hh->end_g - g[i]);
		break;
	case 2:	/* a TLSF list head, and its bitmaps */
		t->what = "a TLSF list head";
		fl = (int)hostile_below(s, 29);
		sl = (int)hostile_below(s, 16);
		hh->heads[fl][sl] = crafted_g(t, s, hh->heads[fl][sl]);
		hh->sl_bitmap[fl] |= 1U << sl;
		hh->fl_bitmap |= 1U << fl;
		if (!hostile_below(s, 3))
			hh->fl_bitmap = ~0U;
		break;
	case 3:	/* a small class's list head */
		t->what = "a class list head";
		c = (int)hostile_below(s, SHMPOOL_HEAP_NR_CLASSES);
		*top_of(hh, c) = (*top_of(hh, c) & ~0xffffffffULL) |
				 (hostile_below(s, 2) ? held_in_class(t, s, c) :
				  crafted_g(t, s, (uint32_t)*top_of(hh, c)));
		break;
	case 4:	/* a free small object's link, into its own class if it can */
		t->what = "a free object's link";
		for (i = 0, c = (int)hostile_below(s, SHMPOOL_HEAP_NR_CLASSES);
		     i < SHMPOOL_HEAP_NR_CLASSES && !(uint32_t)*top_of(hh, c); i++)
			c = (c + 1) % SHMPOOL_HEAP_NR_CLASSES;
		if (!(uint32_t)*top_of(hh, c))
			break;
		off = (uint64_t)(uint32_t)*top_of(hh, c) * 16;
		*slot_of(t, off, c) = hostile_below(s, 2) ? held_in_class(t, s, c) :
				      crafted_g(t, s, (uint32_t)(off / 16));
		/*
		 * The top is a held object only after a kind-8 write cleared
		 * its bit and listed it. With its slot now a link as well,
		 * nothing in the pool says it is held: the peer has freed it
		 * (any process may), and the victim may get it.
		 */
		for (i = 0; i < t->nheld; i++)
			if (t->held[i].off == off) {
				t->held[i] = t->held[--t->nheld];
				break;
			}
		break;
	case 5:	/* a class's geometry */
		t->what = "a class's geometry";
		c = (int)hostile_below(s, SHMPOOL_HEAP_NR_CLASSES);
		p = &hh->cls[c].nobj + hostile_below(s, 4);
		*p = (uint32_t)hostile_plausible(s, *p);
		break;
	case 6:	/* a chunk map byte over the metadata, a block, or past the end */
		t->what = "a chunk map byte";
		off = hostile_below(s, 3) ? held_of(t, s, false) : 0;
		i = (int)(off ? off >> 14 : hostile_below(s, POOL_BYTES >> 14));
		at(t, hh->chunk_off)[i] = (uint8_t)(1 + hostile_below(s, 34));
		break;
	case 8:	/* a held small object's bit cleared, and its class list led to it */
		t->what = "a held object relisted";
		for (i = 0; i < t->nheld; i++) {
			if (t->held[i].size > hh->cls[SHMPOOL_HEAP_NR_CLASSES - 1].size)
				continue;
			for (c = 0; t->held[i].size > hh->cls[c].size; c++)
				;
			off = t->held[i].off;
			n = (int)((off - (off & ~(uint64_t)(hh->cls[c].size > 2048 ? 65535 : 16383)) -
				   hh->cls[c].obj_off) / hh->cls[c].size);
			((uint64_t *)at(t, (off & ~(uint64_t)(hh->cls[c].size > 2048 ?
							     65535 : 16383)) + 8))[n / 64] &=
				~(1ULL << (n % 64));
			*top_of(hh, c) = (*top_of(hh, c) & ~0xffffffffULL) | (uint32_t)(off / 16);
			break;
		}
		break;
	default:	/* a held block's neighbour's previous-size link */
		t->what = "a block's previous size";
		off = held_of(t, s, false);
		if (!off)
			break;
		p = (uint32_t *)at(t, off - 16);
		p[1] = (uint32_t)hostile_plausible(s, p[0]);
		break;
	}
}

/* ---- the victim ----------------------------------------------------------------- */

/* inaccessible pages right below and above the pool, where they can go */
static void fence(struct trial *t)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	char *b = shmpool_base(t->p);

	mmap(b - pg, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	mmap(b + shmpool_size(t->p), pg, PROT_NONE,
	     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
}

static bool overlaps(const struct blockref *b, int n, uint64_t off, size_t size)
{
	int i;

	for (i = 0; i < n; i++)
		if (off < b[i].off + b[i].size && b[i].off < off + size)
			return true;
	return false;
}

static bool intact(struct trial *t, const struct blockref *b)
{
	size_t i;

	for (i = 0; i < b->size; i++)
		if (at(t, b->off)[i] != b->tag)
			return false;
	return true;
}

#define VFAIL(code, ...) do {						\
	fprintf(stderr, "victim (%s): ", t->what);			\
	fprintf(stderr, __VA_ARGS__);					\
	fputc('\n', stderr);						\
	return code;							\
} while (0)

/*
 * LOCK: what a peer writes into the heap's lock (word, thread), as the
 * victim sees it; the victim then waits for the lock not at all (timeout
 * 0). Kinds 0, 1, 3, 6 and 7 name no live holder but the victim's own
 * thread, which is in no heap call: each call takes the lock (a stale
 * claim or a dead holder is taken over), and -ETIMEDOUT fails the trial.
 * Kinds 2, 4 and 5 may name a live holder: -ETIMEDOUT is what they get.
 */
#define NR_LOCK_KINDS	8
static const char *const lock_what[NR_LOCK_KINDS] = {
	"the victim's own thread", "the victim's own thread, waiters marked",
	"the victim's attachment, no thread yet", "the victim's attachment, a thread gone",
	"the live test process", "random bytes", "free, a stray thread",
	"an attachment id never issued",
};

static bool lock_may_time_out(const struct trial *t)
{
	return t->lock_kind == 2 || t->lock_kind == 4 || t->lock_kind == 5;
}

/* an error the call may give: @ok, or -ETIMEDOUT where the lock may be held */
static bool documented(const struct trial *t, int ret, bool ok)
{
	return ok || (ret == -ETIMEDOUT && lock_may_time_out(t));
}

static void forge_lock(struct trial *t, uint64_t *s)
{
	struct shmpool_mutex *m = shmpool_heap_ptr(t->h, offsetof(struct t_hdr, lock),
						   sizeof(*m));
	uint32_t me = (uint32_t)shmpool_attach_id(t->p), tid = (uint32_t)syscall(SYS_gettid);
	uint32_t w = me, th = tid, bits = (uint32_t)hostile_below(s, 4) << 30;

	shmpool_heap_set_lock_timeout(t->h, 0);
	switch (t->lock_kind) {
	case 1: w = me | SHMPOOL_MUTEX_WAITERS | (bits & SHMPOOL_MUTEX_OWNER_DIED); break;
	case 2: th = 0; break;
	case 3: th = tid + 1 + (uint32_t)hostile_below(s, 1000); break;
	case 4: w = t->parent_id | (bits & SHMPOOL_MUTEX_WAITERS); th = t->parent_tid; break;
	case 5: hostile_fill(s, &w, sizeof(w)); hostile_fill(s, &th, sizeof(th)); break;
	case 6: w = 0; th = 1 + (uint32_t)hostile_below(s, 1U << 22); break;
	case 7: w = SHMPOOL_MUTEX_OWNER_MASK | bits; th = 1 + (uint32_t)hostile_below(s, 1U << 22); break;
	}
	atomic_store(&m->word, w);
	atomic_store(&m->tid, th);
}

static int victim(void *arg)
{
	struct trial *t = arg;
	struct blockref got[NGOT];
	struct shmpool_heap_stats st;
	struct shmpool_heap *h2;
	uint64_t s = t->seed ^ 0x77, off;
	int ngot = 0, op, i, ret;
	bool held_valid = true;
	size_t size;
	long r;

	fence(t);
	if (t->lock_kind >= 0)
		forge_lock(t, &s);
	for (op = 0; op < VICTIM_OPS; op++) {
		switch (hostile_below(&s, 8)) {
		case 0: case 1: case 2: case 3:
			if (ngot == NGOT)
				break;
			size = hist_size(&s);
			if (!hostile_below(&s, 8)) {
				ret = shmpool_heap_stats(t->h, &st);
				if (!documented(t, ret, !ret || ret == -EUCLEAN))
					VFAIL(10, "stats: %d", ret);
				if (!ret && st.largest_free)
					size = st.largest_free;
			}
			ret = shmpool_alloc(t->h, size, &off);
			if (ret && documented(t, ret, ret == -ENOMEM || ret == -EUCLEAN))
				break;
			if (ret)
				VFAIL(11, "alloc(%zu): %d", size, ret);
			if (off < t->lo || off + size > t->hi || off + size < off)
				VFAIL(12, "alloc(%zu): 0x%llx outside the heap [0x%llx, 0x%llx)",
				      size, (unsigned long long)off,
				      (unsigned long long)t->lo, (unsigned long long)t->hi);
			if ((held_valid && overlaps(t->held, t->nheld, off, size)) ||
			    overlaps(got, ngot, off, size))
				VFAIL(13, "alloc(%zu): 0x%llx over a live block (%s)",
				      size, (unsigned long long)off,
				      overlaps(got, ngot, off, size) ?
				      "one this victim allocated after the damage" :
				      "one held from before the damage");
			got[ngot] = (struct blockref){ off, size, (uint8_t)(0x80 | op) };
			memset(at(t, off), got[ngot].tag, size);
			ngot++;
			break;
		case 4: case 5:
			if (!ngot)
				break;
			i = (int)hostile_below(&s, (uint64_t)ngot);
			ret = shmpool_free(t->h, got[i].off);
			if (!documented(t, ret, !ret || ret == -EUCLEAN || ret == -EINVAL))
				VFAIL(14, "free: %d", ret);
			if (!ret)
				got[i] = got[--ngot];
			break;
		case 6:
			ret = shmpool_heap_stats(t->h, &st);
			if (!documented(t, ret, !ret || ret == -EUCLEAN))
				VFAIL(15, "stats: %d", ret);
			for (i = 0; !ret && i < SHMPOOL_HEAP_NR_CLASSES; i++)
				if (st.classes[i].used + st.classes[i].cached > st.classes[i].objs)
					VFAIL(16, "stats: class %u: %llu used, %llu cached of %llu",
					      st.classes[i].size,
					      (unsigned long long)st.classes[i].used,
					      (unsigned long long)st.classes[i].cached,
					      (unsigned long long)st.classes[i].objs);
			break;
		default:
			if (hostile_below(&s, 2)) {
				ret = shmpool_heap_check(t->h, (unsigned int)hostile_below(&s, 2),
							 NULL, 0);
				if (!documented(t, ret, !ret || ret == -EUCLEAN || ret == -ENOMEM))
					VFAIL(17, "check: %d", ret);
			} else {
				r = shmpool_heap_reclaim(t->h, (unsigned int)hostile_below(&s, 4));
				if (!documented(t, (int)r, r >= 0 || r == -EUCLEAN || r == -ENOMEM))
					VFAIL(18, "reclaim: %ld", r);
				/*
				 * A held block whose owner field the peer wrote
				 * reads as held by a dead attachment, and
				 * SHMPOOL_RECLAIM_HELD frees it: the peer freed
				 * it, which the API lets any process do.
				 */
				if (r > 0 && !t->meta_untouched)
					held_valid = false;
			}
			break;
		}
	}
	for (i = 0; i < ngot; i++)
		if (!intact(t, &got[i]))
			VFAIL(19, "the victim's block at 0x%llx changed",
			      (unsigned long long)got[i].off);
	for (i = 0; held_valid && i < t->nheld; i++) {
		if (memcmp(at(t, t->held[i].off), t->copy + t->held[i].off, t->held[i].size))
			VFAIL(20, "the test's block at 0x%llx changed",
			      (unsigned long long)t->held[i].off);
		/* nor was it taken for free or cached, or given to another */
		ret = shmpool_alloc_owner(t->h, t->held[i].off);
		if (t->meta_untouched && !documented(t, ret, ret == t->owner || ret == -EUCLEAN))
			VFAIL(23, "the test's block at 0x%llx: owner %d, not %d",
			      (unsigned long long)t->held[i].off, ret, t->owner);
	}
	/* a new handle waits 10 s for a lock a live process may hold */
	if (lock_may_time_out(t))
		return 0;
	ret = shmpool_heap_open(t->p, 0, &h2);
	if (ret && ret != -EUCLEAN && ret != -EUSERS && ret != -ETIMEDOUT)
		VFAIL(21, "open: %d", ret);
	if (!ret) {
		ret = shmpool_heap_close(h2);
		if (ret && ret != -EUCLEAN)
			VFAIL(22, "close: %d", ret);
	}
	return 0;
}

/* ---- the trials ------------------------------------------------------------------ */

FIXTURE(hheap) {
	char name[SHMPOOL_NAME_MAX];
};

FIXTURE_VARIANT(hheap) {
	unsigned int backend;
	unsigned int trials;
};

FIXTURE_VARIANT_ADD(hheap, memfd) {
	.backend = SHMPOOL_BACKEND_MEMFD,
	.trials = 60,
};

FIXTURE_VARIANT_ADD(hheap, device) {
	.backend = SHMPOOL_BACKEND_DEVICE,
	.trials = 30,
};

FIXTURE_SETUP(hheap)
{
	if (variant->backend == SHMPOOL_BACKEND_DEVICE && !device_ok())
		SKIP(longjmp(_metadata->env, 1), DEV_PATH " not available");
	SKIP_MEMFD_IN_DEVICE_LANE(variant->backend);
	/* the VM lanes try the device; memfd is the host's (unless asked for) */
	if (variant->backend == SHMPOOL_BACKEND_MEMFD && device_ok() &&
	    !getenv("SHMPOOL_HOSTILE_TRIALS"))
		SKIP(longjmp(_metadata->env, 1), "memfd trials run on the host");
	snprintf(self->name, sizeof(self->name), "hheap.%d", (int)getpid());
}

FIXTURE_TEARDOWN(hheap)
{
}

static void run_trials(struct __test_metadata *_metadata,
		       FIXTURE_DATA(hheap) *self, const FIXTURE_VARIANT(hheap) *variant,
		       enum mode mode, int kind_a, int kind_b)
{
	unsigned int n = hostile_trials(variant->trials), i, done = 0;
	uint64_t base = hostile_seed() + (uint64_t)(mode * 16 + kind_a) * 1000003, end, s;
	struct shmpool_heap_stats st;
	struct trial t;
	char why[128];

	end = now_ms() + (uint64_t)((variant->backend == SHMPOOL_BACKEND_DEVICE ?
				     BUDGET_DEV_MS : BUDGET_MS) * scale());
	/* a count asked for (make hostile) is run whole; else the time budget bounds it */
	for (i = 0; i < n && (i < 3 || getenv("SHMPOOL_HOSTILE_TRIALS") || now_ms() < end);
	     i++, done++) {
		memset(&t, 0, sizeof(t));
		t.seed = base + i;
		t.what = mode == RANDOM_HEADER ? "random header" : "random bytes";
		t.lock_kind = mode == LOCK ? (int)(i % NR_LOCK_KINDS) : -1;
		s = t.seed;
		ASSERT_EQ(0, shmpool_create(self->name, POOL_BYTES, 0600,
					    variant->backend | SHMPOOL_EXCL, &t.p));
		ASSERT_EQ(0, shmpool_heap_open(t.p, SHMPOOL_HEAP_NOCACHE, &t.h));
		ASSERT_EQ(0, shmpool_heap_stats(t.h, &st));
		t.hi = (POOL_BYTES / 16 - 1) * 16;
		t.lo = t.hi - st.heap_bytes + 16;
		/* the mirror of the layout agrees with the pool */
		ASSERT_EQ(t.lo, ((uint64_t)hdr(&t)->heap_g + 1) * 16);
		ASSERT_EQ(st.classes[5].size, hdr(&t)->cls[5].size);
		ASSERT_EQ(0, history(&t, &s));
		t.owner = shmpool_heap_attach_id(t.h);
		t.meta_untouched = mode >= CRAFTED;
		t.parent_id = (uint32_t)shmpool_attach_id(t.p);
		t.parent_tid = (uint32_t)syscall(SYS_gettid);

		switch (mode) {
		case RANDOM_HEADER:
			scribble(&t, &s, 0, sizeof(struct t_hdr), 1 + (int)hostile_below(&s, 8));
			break;
		case RANDOM_POOL:
			scribble(&t, &s, 0, POOL_BYTES, 1 + (int)hostile_below(&s, 256));
			break;
		case CRAFTED:
			crafted(&t, &s, (int)hostile_below(&s, NR_KINDS));
			if (hostile_below(&s, 3))
				crafted(&t, &s, (int)hostile_below(&s, NR_KINDS));
			break;
		case KINDS:
			crafted(&t, &s, i % 2 ? kind_b : kind_a);
			break;
		case LOCK:	/* written by the victim, which alone knows its ids */
			t.what = lock_what[t.lock_kind];
			break;
		}
		t.copy = hostile_snapshot(shmpool_base(t.p), POOL_BYTES);
		ASSERT_NE(NULL, t.copy);
		EXPECT_EQ(0, hostile_run(victim, &t, (unsigned int)(WATCHDOG_MS * scale()),
					 t.seed, why))
			TH_LOG("trial %u (%s): %s; replay: SHMPOOL_HOSTILE_SEED=%llu SHMPOOL_HOSTILE_TRIALS=%u",
			       i, t.what, why, (unsigned long long)hostile_seed(), i + 1);
		free(t.copy);
		shmpool_heap_close(t.h);
		shmpool_close(t.p);
		shmpool_unlink(self->name, variant->backend);
		if (!_metadata->passed)
			break;
	}
	TH_LOG("%u trials", done);
}

/* (a) random bytes in the header and TLSF control */
TEST_F_TIMEOUT(hheap, random_header, 120)
{
	run_trials(_metadata, self, variant, RANDOM_HEADER, 0, 0);
}

/* (b) random bytes anywhere in the pool */
TEST_F_TIMEOUT(hheap, random_anywhere, 120)
{
	run_trials(_metadata, self, variant, RANDOM_POOL, 0, 0);
}

/* (c) crafted plausible values: links, sizes, heads, class geometry, chunk map */
TEST_F_TIMEOUT(hheap, crafted_values, 120)
{
	run_trials(_metadata, self, variant, CRAFTED, 0, 0);
}

/* (c) one 8-byte use-after-free write into a freed block's list links */
TEST_F_TIMEOUT(hheap, freed_block_link, 120)
{
	run_trials(_metadata, self, variant, KINDS, 0, 0);
}

/* (c) a TLSF list head to itself, a held block, the end, the metadata */
TEST_F_TIMEOUT(hheap, tlsf_list_head, 120)
{
	run_trials(_metadata, self, variant, KINDS, 2, 2);
}

/* (c) a small class's list head, and a free object's link */
TEST_F_TIMEOUT(hheap, class_list_links, 120)
{
	run_trials(_metadata, self, variant, KINDS, 3, 4);
}

/* (c) a held object's bit cleared and its class list pointed at it: its slot still names its owner */
TEST_F_TIMEOUT(hheap, held_object_relisted, 120)
{
	run_trials(_metadata, self, variant, KINDS, 8, 8);
}

/*
 * (c) the heap's lock: the victim's own thread (a stale claim, taken over;
 * -EDEADLK before 17c4b45), a live holder (-ETIMEDOUT at once with
 * timeout 0), a dead or never-issued one (taken over), random bytes
 */
TEST_F_TIMEOUT(hheap, heap_lock, 120)
{
	run_trials(_metadata, self, variant, LOCK, 0, 0);
}

/* (c) a class's geometry in the header, and chunk map bytes */
TEST_F_TIMEOUT(hheap, class_geometry_and_map, 120)
{
	run_trials(_metadata, self, variant, KINDS, 5, 6);
}

TEST_HARNESS_MAIN
