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
 * states, which no other live process touches; a receiver takes a
 * published entry (that nobody reclaims) by storing itself as owner before
 * it calls the entry held.
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

struct msg_hdr {
	uint32_t magic;
	uint32_t entry;		/* index in the loan table, or NO_ENTRY */
	uint64_t reserved;
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

/*
 * The entry of the block at @blk, if its header names one that records
 * it; NULL otherwise (untracked, or a header a peer damaged: the header
 * is shared memory, so it is checked against the entry). @blk may come
 * from a loan entry a peer wrote: a block starts at a multiple of 16, and
 * anything else is no block (nor an address to read a header at).
 */
static struct __shmpool_msg_loan *entry_of(struct shmpool_ring *r, uint64_t blk)
{
	struct msg_hdr *mh = blk % MSG_HDR ? NULL :
			     shmpool_heap_ptr(r->heap, blk, sizeof(*mh));
	struct __shmpool_msg_loan *e;
	uint32_t i;

	if (!mh || !r->loans || mh->magic != MSG_MAGIC)
		return NULL;
	i = mh->entry;
	if (i >= __SHMPOOL_MSG_LOANS)
		return NULL;
	e = &r->loans[i];
	return e->off == blk ? e : NULL;
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

/*
 * Published -> held by @self, in one step; an entry in any other state
 * (a descriptor a peer made up) is left alone. Bounded: a peer may keep
 * changing the entry.
 */
static void entry_hold(struct __shmpool_msg_loan *e, uint32_t self)
{
	entry_pair_t *pp = (entry_pair_t *)(void *)e;
	struct entry_pair v;
	uint64_t old, new;
	int tries;

	/* acquire: as the reclaimer's loads of the owner and the state */
	old = __atomic_load_n(pp, __ATOMIC_ACQUIRE);
	for (tries = 0; tries < 4; tries++) {
		memcpy(&v, &old, sizeof(v));
		if (v.state != PUBLISHED)
			return;
		v.owner = self;
		v.state = HELD;
		memcpy(&new, &v, sizeof(new));
		/*
		 * Release: pairs with the reclaimer's acquire of the owner;
		 * it sees both fields or neither.
		 */
		if (__atomic_compare_exchange_n(pp, &old, new, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return;
	}
}

_Static_assert(offsetof(struct __shmpool_msg_loan, state) == 4 &&
	       _Alignof(struct __shmpool_msg_loan) >= 8, "owner and state: one 8-byte unit");

static void entry_put(struct __shmpool_msg_loan *e)
{
	atomic_store_explicit(&e->state, 0, memory_order_relaxed);
	/* release: the state above before the entry is free again */
	atomic_store_explicit(&e->owner, 0, memory_order_release);
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
		/* published: in the ring, the receiver's */
		if (st == PUBLISHED)
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
		if ((st == LOANED || st == HELD) && entry_of(r, blk) == e &&
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
};

/*
 * One try of a publish. The entry says published only while the
 * descriptor may be in the ring: a reclaimer must never free a block that
 * a receiver may already hold, and a publisher killed while it waits for
 * room (between tries) leaves a loan, which is reclaimed, not a block
 * nobody frees (relaxed: the ring's release orders the store before the
 * descriptor; a failed try published nothing).
 */
static uint32_t publish_try(struct shmpool_ring *r, const void *arg)
{
	const struct publish *pb = arg;
	uint32_t ok;

	if (pb->e)
		atomic_store_explicit(&pb->e->state, PUBLISHED, memory_order_relaxed);
	ok = shmpool_ring_enqueue(r, pb->m);
	if (!ok && pb->e)	/* still ours */
		atomic_store_explicit(&pb->e->state, LOANED, memory_order_relaxed);
	return ok;
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
	pb.e = m->off >= MSG_HDR ? entry_of(r, m->off - MSG_HDR) : NULL;
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
	struct __shmpool_msg_loan *e;
	struct msg_hdr *mh;
	uint32_t self;
	int64_t size;
	int ret;

	ret = check_ring(r);
	if (ret)
		return ret;
	if (!m || !ptr || (flags & ~SHMPOOL_MSG_NONBLOCK))
		return -EINVAL;
	/* before the dequeue: after it, every instruction is a leak window */
	if (__shmpool_self(r->heap->pool, &self))
		self = 0;
	if (flags & SHMPOOL_MSG_NONBLOCK) {
		if (!shmpool_ring_dequeue(r, m))
			return ring_bad(r) ? -EUCLEAN : -EAGAIN;
	} else {
		ret = shmpool_ring_dequeue_wait(r, m, 1, 0, deadline);
		if (ret < 0)
			return ret;
	}
	/*
	 * Ours at once (a held entry of a dead owner is reclaimed, a
	 * published one never): a block recorded in an entry is a message's
	 * (entry_of() checks the header against the entry), so this comes
	 * before the checks below, which may take a while.
	 */
	e = m->off >= MSG_HDR ? entry_of(r, m->off - MSG_HDR) : NULL;
	if (e && self)
		entry_hold(e, self);
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
