// SPDX-License-Identifier: MIT
/*
 * Zero-copy messages (include/shmpool_ring.h): heap blocks whose descriptors
 * travel through a ring. The ring's release/acquire on its indices is what
 * makes the producer's writes to the block visible to the consumer that
 * dequeues the descriptor; the heap's free is safe from any process.
 *
 * Loans and a dead process ("Loans and a dead process" in the header): a
 * block is a 16-byte header (its entry in the ring's loan table) and the
 * payload. An entry's owner field is the arbiter: the reclaimer takes a
 * dead owner's entry by a CAS on it, and only from the loaned and held
 * states, which no other live process touches, or from published or
 * receiving once the descriptor is not in the ring. A publisher's
 * enqueue stores the index it reserved in the block's header, then says
 * published, before it writes the descriptor into the slot; so a
 * publisher killed at any instruction leaves a loan, or a published
 * entry whose index tells whether the descriptor entered the ring. A
 * receiver claims the entry of the descriptor at the ring's head before
 * it frees that slot: owner and state (published, or receiving by a dead
 * receiver) in one CAS, with the slot's index in the block's header; so
 * a receiver killed at any instruction leaves either a descriptor still
 * in the ring whose entry the next receiver takes over, or a consumed
 * one whose entry the reclaimer frees.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"
#include "shmpool_ring.h"

#define MSG_HDR		16U		/* the block header before the payload */
#define MSG_MAGIC	0x4d736731U	/* "Msg1" */
#define NO_ENTRY	0xffffffffU	/* untracked (the table was full) */
#define RECLAIMING	0xffffffffU	/* owner while a reclaimer frees it */

/* entry states */
#define LOANED		1U
#define PUBLISHED	2U
#define HELD		3U
#define RECEIVING	4U	/* claimed; the descriptor may still be in the ring */
#define PASSED		5U	/* received by a process without an attachment id */

struct msg_hdr {
	uint32_t magic;
	uint32_t entry;		/* index in the loan table, or NO_ENTRY */
	uint32_t idx;		/* published, receiving: the descriptor's ring index (__atomic) */
	uint32_t reserved;
};

/* did a call on @r find its shared state inconsistent (MPMC)? */
static bool ring_bad(struct shmpool_ring *r)
{
	/* relaxed: set by this process's own calls only */
	return atomic_load_explicit(&r->bad, memory_order_relaxed);
}

static int check_ring(const struct shmpool_ring *r)
{
	if (!r || r->type == SHMPOOL_RING_VAR ||
	    r->esize != sizeof(struct shmpool_msg))
		return -EINVAL;
	return 0;
}

/* the header of the block at @blk (see entry_of()), or NULL */
static struct msg_hdr *hdr_of(struct shmpool_ring *r, uint64_t blk)
{
	struct msg_hdr *mh = blk % MSG_HDR ? NULL :
			     shmpool_heap_ptr(r->heap, blk, sizeof(*mh));

	return mh && mh->magic == MSG_MAGIC ? mh : NULL;
}

/*
 * The entry of the block at @blk, if its header names one that records
 * it; NULL otherwise (untracked, or a header a peer damaged: the header
 * is shared memory, so it is checked against the entry). @blk may come
 * from a loan entry a peer wrote: a block starts at a multiple of 16, and
 * anything else is no block (nor an address to read a header at).
 */
static struct __shmpool_msg_loan *entry_hdr_of(struct shmpool_ring *r, uint64_t blk,
						struct msg_hdr **mhp)
{
	struct msg_hdr *mh = hdr_of(r, blk);
	struct __shmpool_msg_loan *e;
	uint32_t i;

	if (!mh || !r->loans)
		return NULL;
	i = mh->entry;
	if (i >= __SHMPOOL_MSG_LOANS)
		return NULL;
	e = &r->loans[i];
	*mhp = mh;
	return e->off == blk ? e : NULL;
}

static struct __shmpool_msg_loan *entry_of(struct shmpool_ring *r, uint64_t blk)
{
	struct msg_hdr *mh;

	return entry_hdr_of(r, blk, &mh);
}

/* take a free entry for this process: its index, or NO_ENTRY */
static uint32_t entry_take(struct shmpool_ring *r, uint32_t self)
{
	uint32_t i, o;

	for (i = 0; r->loans && i < __SHMPOOL_MSG_LOANS; i++) {
		o = 0;
		/* acq_rel: the entry's fields are ours only after this */
		if (atomic_compare_exchange_strong_explicit(&r->loans[i].owner, &o, self,
							    memory_order_acq_rel,
							    memory_order_relaxed))
			return i;
	}
	return NO_ENTRY;
}

/*
 * Owner and state as one unit (the entry's first 8 bytes, 8-byte aligned:
 * the entry holds a uint64_t), for the receiver: a process killed between
 * two stores would leave its own id on a published entry, which no
 * reclaimer frees (published is never reclaimed) and nobody else touches:
 * a block leaked for good. A may_alias view, with the __atomic builtins,
 * as the mutex's word and thread (lib/sync.c).
 */
typedef uint64_t __attribute__((may_alias)) entry_pair_t;

struct entry_pair {
	uint32_t owner, state;
};

/* what a receive claimed: the verdict of receive_look() */
enum { UNTRACKED, CLAIMED, NOT_OURS };

struct receive {
	uint32_t self;			/* our attachment id; 0: none, own nothing (passed) */
	int verdict;
	struct __shmpool_msg_loan *e;	/* CLAIMED: our entry */
};

/*
 * The ring's look at the descriptor at index @idx before its slot is
 * freed (lib/ring.c): claim its entry, published -> receiving by us, or
 * take over a receiving entry whose receiver died before it freed the
 * slot (the slot the dead one claimed is the one we hold now: the
 * dequeue never hands out a slot whose consumer lives). Owner and state
 * in one CAS (release: the index in the header before it; pairs with the
 * reclaimer's acquire). Anything else is no message in the ring (a
 * descriptor a peer made up, or a block loaned, held or reclaimed): left
 * alone and the receive fails. Returns false only to leave a dead
 * consumer's slot to the live receiver that claimed it first (several
 * may try it). Bounded: a peer may keep changing the entry.
 */
static bool receive_look(struct shmpool_ring *r, const void *elem, uint32_t idx,
			 bool taken, void *arg)
{
	struct receive *rc = arg;
	struct __shmpool_msg_loan *e;
	struct shmpool_msg m;
	struct msg_hdr *mh = NULL;	/* set with @e */
	struct entry_pair v;
	entry_pair_t *pp;
	uint64_t old, new;
	int tries;

	memcpy(&m, elem, sizeof(m));
	rc->verdict = UNTRACKED;
	e = m.off >= MSG_HDR ? entry_hdr_of(r, m.off - MSG_HDR, &mh) : NULL;
	if (!e)
		return true;
	if (rc->self)
		rc->verdict = NOT_OURS;
	rc->e = e;
	pp = (entry_pair_t *)(void *)e;
	/* acquire: pairs with the release of the entry's last claim */
	old = __atomic_load_n(pp, __ATOMIC_ACQUIRE);
	for (tries = 0; tries < 4; tries++) {
		memcpy(&v, &old, sizeof(v));
		if (v.state == RECEIVING && v.owner && v.owner != RECLAIMING &&
		    __shmpool_alive(r->heap->pool, v.owner))
			return taken || __atomic_load_n(&mh->idx, __ATOMIC_RELAXED) != idx;
		if (v.state != PUBLISHED &&
		    (v.state != RECEIVING || !v.owner || v.owner == RECLAIMING))
			return true;
		/* relaxed: the CAS below publishes it; a contender writes the same */
		__atomic_store_n(&mh->idx, idx, __ATOMIC_RELAXED);
		/*
		 * Without an id we can own nothing: passed, whoever the
		 * owner, is never reclaimed (its publisher's death must not
		 * free it under us), and our release frees the entry.
		 */
		v.owner = rc->self ? rc->self : v.owner;
		v.state = !rc->self ? PASSED : taken ? HELD : RECEIVING;
		memcpy(&new, &v, sizeof(new));
		if (__atomic_compare_exchange_n(pp, &old, new, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE)) {
			rc->verdict = rc->self ? CLAIMED : UNTRACKED;
			return true;
		}
	}
	return true;
}

_Static_assert(offsetof(struct __shmpool_msg_loan, state) == 4 &&
	       _Alignof(struct __shmpool_msg_loan) >= 8, "owner and state: one 8-byte unit");

static void entry_put(struct __shmpool_msg_loan *e)
{
	atomic_store_explicit(&e->state, 0, memory_order_relaxed);
	/* release: the state above before the entry is free again */
	atomic_store_explicit(&e->owner, 0, memory_order_release);
}

/*
 * May the descriptor of a dead owner's entry in state @st be in the ring?
 * Published: the publisher stored the ring index its enqueue took in the
 * header before it said published (publish_look()), and the descriptor
 * is in the ring only once that index is published and until it is
 * consumed (by a receiver that claimed the entry first: then our CAS on
 * the owner fails). Receiving: the receiver stored the same index before
 * its claim; the descriptor is there until the slot is freed. The
 * acquire of the state made the index visible. A published entry that
 * records no such block is left alone (a peer's garbage); a receiving
 * one has nothing in the ring.
 */
static bool msg_in_ring(struct shmpool_ring *r, struct __shmpool_msg_loan *e, uint32_t st)
{
	struct msg_hdr *mh = NULL;	/* set with a match */
	uint32_t idx;

	if (st != PUBLISHED && st != RECEIVING)
		return false;
	if (entry_hdr_of(r, e->off, &mh) != e)
		return st == PUBLISHED;
	idx = __atomic_load_n(&mh->idx, __ATOMIC_RELAXED);
	if (st == PUBLISHED)
		return __shmpool_ring_queued(r, idx);
	return !__shmpool_ring_consumed(r, idx);
}

SHMPOOL_EXPORT
int shmpool_msg_reclaim(struct shmpool_ring *r)
{
	struct __shmpool_msg_loan *e;
	uint32_t i, o, st;
	uint64_t blk;
	int n = 0;

	if (check_ring(r))
		return -EINVAL;
	for (i = 0; r->loans && i < __SHMPOOL_MSG_LOANS; i++) {
		e = &r->loans[i];
		/* acquire: pairs with the release stores of the entry's owner */
		o = atomic_load_explicit(&e->owner, memory_order_acquire);
		if (!o || o == RECLAIMING || __shmpool_alive(r->heap->pool, o))
			continue;
		st = atomic_load_explicit(&e->state, memory_order_acquire);
		/*
		 * Published, or receiving by a receiver killed before it
		 * freed the slot: in the ring, the next receiver's (who
		 * claims a published entry, or takes a receiving one over,
		 * by a CAS of the owner: if it did meanwhile, ours below
		 * fails). Passed: a receiver without an id holds it.
		 */
		if (st == PASSED || msg_in_ring(r, e, st))
			continue;
		if (!atomic_compare_exchange_strong_explicit(&e->owner, &o, RECLAIMING,
							     memory_order_acq_rel,
							     memory_order_relaxed))
			continue;	/* another reclaimer */
		/*
		 * State 0: it died before the block was recorded (a leak).
		 * The entry is shared memory: free only an allocated block
		 * whose header names this entry (never a block a peer named).
		 */
		blk = e->off;
		if (st >= LOANED && st <= RECEIVING && entry_of(r, blk) == e &&
		    shmpool_alloc_size(r->heap, blk) >= MSG_HDR &&
		    !shmpool_free(r->heap, blk))
			n++;
		entry_put(e);
	}
	return n;
}

SHMPOOL_EXPORT
int shmpool_msg_loan(struct shmpool_ring *r, size_t len, void **ptr,
		     struct shmpool_msg *m)
{
	struct msg_hdr *mh;
	uint32_t self = 0, ent;
	uint64_t off;
	int ret;

	ret = check_ring(r);
	if (ret)
		return ret;
	if (!len || !ptr || !m || len > SIZE_MAX - MSG_HDR)
		return -EINVAL;
	if (__shmpool_self(r->heap->pool, &self))
		self = 0;
	/* the entry first, so that a block never exists unrecorded for long */
	ent = self ? entry_take(r, self) : NO_ENTRY;
	if (ent == NO_ENTRY && self && shmpool_msg_reclaim(r) > 0)
		ent = entry_take(r, self);
	ret = shmpool_alloc(r->heap, len + MSG_HDR, &off);
	if (ret == -ENOMEM && shmpool_msg_reclaim(r) > 0)
		ret = shmpool_alloc(r->heap, len + MSG_HDR, &off);
	if (ret) {
		if (ent != NO_ENTRY)
			entry_put(&r->loans[ent]);
		return ret;
	}
	mh = shmpool_heap_ptr(r->heap, off, sizeof(*mh));
	mh->magic = MSG_MAGIC;
	mh->entry = ent;
	mh->idx = 0;
	mh->reserved = 0;
	if (ent != NO_ENTRY) {
		r->loans[ent].off = off;
		/* release: the entry's block before it says loaned */
		atomic_store_explicit(&r->loans[ent].state, LOANED, memory_order_release);
	}
	m->off = off + MSG_HDR;
	m->len = len;
	*ptr = shmpool_heap_ptr(r->heap, off + MSG_HDR, len);
	return 0;
}

/* what a publish enqueues, and the entry that records its block (or NULL) */
struct publish {
	const struct shmpool_msg *m;
	struct __shmpool_msg_loan *e;
	struct msg_hdr *mh;	/* set with @e */
};

/*
 * The enqueue's look at the index it reserved, before the descriptor is
 * written and published: the index in the header, then published
 * (release: the index before the state; pairs with the reclaimer's
 * acquire of the state; the ring's release then orders both before the
 * descriptor). So a publisher killed at any instruction leaves loaned
 * (no index taken: reclaimed), or published with the index, which tells
 * the reclaimer whether the descriptor entered the ring (msg_in_ring()).
 */
static bool publish_look(struct shmpool_ring *r, const void *elem, uint32_t idx,
			 bool taken, void *arg)
{
	struct publish *pb = arg;

	(void)r;
	(void)elem;
	(void)taken;
	/* relaxed: the release below publishes it */
	__atomic_store_n(&pb->mh->idx, idx, __ATOMIC_RELAXED);
	atomic_store_explicit(&pb->e->state, PUBLISHED, memory_order_release);
	return true;
}

/*
 * One try of a publish. The entry says published only once the enqueue
 * holds an index: a try that finds no room leaves it loaned, so a
 * publisher killed while it waits for room (between tries) leaves a
 * loan, which is reclaimed, not a block nobody frees.
 */
static uint32_t publish_try(struct shmpool_ring *r, const void *arg)
{
	const struct publish *pb = arg;

	if (!pb->e)
		return shmpool_ring_enqueue(r, pb->m);
	return __shmpool_ring_enqueue_with(r, pb->m, publish_look, (void *)pb);
}

SHMPOOL_EXPORT
int shmpool_msg_publish(struct shmpool_ring *r, const struct shmpool_msg *m,
			unsigned int flags, const struct timespec *deadline)
{
	struct publish pb;
	int ret;

	ret = check_ring(r);
	if (ret)
		return ret;
	if (!m || (flags & ~SHMPOOL_MSG_NONBLOCK))
		return -EINVAL;
	pb.m = m;
	pb.e = m->off >= MSG_HDR ? entry_hdr_of(r, m->off - MSG_HDR, &pb.mh) : NULL;
	if (flags & SHMPOOL_MSG_NONBLOCK)
		ret = publish_try(r, &pb) ? 0 : ring_bad(r) ? -EUCLEAN : -EAGAIN;
	else
		ret = __shmpool_ring_enqueue_wait_with(r, publish_try, &pb, deadline);
	return ret < 0 ? ret : 0;
}

SHMPOOL_EXPORT
int shmpool_msg_receive(struct shmpool_ring *r, struct shmpool_msg *m,
			const void **ptr, unsigned int flags,
			const struct timespec *deadline)
{
	struct receive rc = { 0, UNTRACKED, NULL };
	struct msg_hdr *mh;
	int64_t size;
	int ret;

	ret = check_ring(r);
	if (ret)
		return ret;
	if (!m || !ptr || (flags & ~SHMPOOL_MSG_NONBLOCK))
		return -EINVAL;
	if (__shmpool_self(r->heap->pool, &rc.self))
		rc.self = 0;
	/* the entry is claimed (receive_look()) before the slot is freed */
	if (flags & SHMPOOL_MSG_NONBLOCK) {
		if (!__shmpool_ring_dequeue_with(r, m, receive_look, &rc))
			return ring_bad(r) ? -EUCLEAN : -EAGAIN;
	} else {
		ret = __shmpool_ring_dequeue_wait_with(r, m, receive_look, &rc, deadline);
		if (ret < 0)
			return ret;
	}
	/*
	 * Out of the ring: held (release: after the slot's release above,
	 * so a reclaimer that sees held never finds the descriptor in the
	 * ring; a receiver killed before this store leaves receiving, which
	 * the ring's index tells to be consumed).
	 */
	if (rc.verdict == CLAIMED)
		atomic_store_explicit(&rc.e->state, HELD, memory_order_release);
	else if (rc.verdict == NOT_OURS)
		return -EUCLEAN;
	/* the descriptor is untrusted: it must name an allocated block */
	if (m->off < MSG_HDR)
		return -EUCLEAN;
	size = shmpool_alloc_size(r->heap, m->off - MSG_HDR);
	if (size < MSG_HDR || !m->len || m->len > (uint64_t)size - MSG_HDR)
		return -EUCLEAN;
	/* and a message's block: another object (a ring, a peer's data) is not one */
	mh = shmpool_heap_ptr(r->heap, m->off - MSG_HDR, sizeof(*mh));
	*ptr = shmpool_heap_ptr(r->heap, m->off, m->len);
	if (!mh || !*ptr || mh->magic != MSG_MAGIC)
		return -EUCLEAN;
	return 0;
}

SHMPOOL_EXPORT
int shmpool_msg_release(struct shmpool_ring *r, const struct shmpool_msg *m)
{
	struct __shmpool_msg_loan *e;
	uint64_t blk;

	if (!r || !m || m->off < MSG_HDR)
		return -EINVAL;
	blk = m->off - MSG_HDR;
	/* only an allocated block's header means anything */
	if (shmpool_alloc_size(r->heap, blk) < 0)
		return -EINVAL;
	/* the entry first: a process killed between the two leaks the block */
	e = entry_of(r, blk);
	if (e)
		entry_put(e);
	return shmpool_free(r->heap, blk);
}
