/* SPDX-License-Identifier: MIT */
/*
 * libshmpool rings: fixed-size elements passed between processes through
 * pool memory, with optional blocking.
 *
 * A ring is a named object of a pool's heap (shmpool_alloc.h): one process
 * creates it, the others find it by name; it holds offsets only, so it may
 * sit at a different address in each process. Two kinds:
 *
 * - SHMPOOL_RING_SPSC: one producer thread and one consumer thread at a time.
 *   The consumer learns that an element is there from a word in the
 *   element's own cache line, the producer that a slot is free from another
 *   word in the slot's own line, so a message costs one cache-line transfer,
 *   not two, and no index line travels at the rate of elements. Each side
 *   keeps a private copy of what it learnt and reads the other side's
 *   (exact) index only when a word does not tell it enough: a batch costs
 *   one read of the other side's cache line, not one per element.
 * - SHMPOOL_RING_MPMC: any number of producers and consumers (Vyukov's
 *   bounded queue: a sequence word per slot says whose turn it is; head
 *   reserves slots among one side's threads by CAS, and each slot is
 *   published, or freed, by its own word, so no thread waits for another
 *   of its side to finish). SHMPOOL_RING_SP / SHMPOOL_RING_SC at creation
 *   make one side single-threaded (no CAS on that side).
 *
 * Sizes: @count is the number of slots, a power of two from 2 to 2^30; the
 * ring holds all @count elements (indices run freely modulo 2^32). @esize is
 * the element size, a multiple of 4 from 4 to 65536 bytes. Both are fixed at
 * creation. Bad parameters are -EINVAL.
 *
 * Non-blocking calls (inline): *_burst moves as many elements as it can (0..n),
 * *_bulk all @n or none; both return how many moved. Blocking calls
 * (shmpool_ring_enqueue_wait()/dequeue_wait()) spin briefly, then sleep on a
 * doorbell (struct shmpool_event) until they can move at least one element
 * (burst) or all of them (bulk), @deadline passes (-ETIMEDOUT), or the other
 * end is shut down (-EPIPE). Every enqueue and dequeue that moves something
 * tells the other side, which costs one load of a read-mostly cache line
 * while nobody sleeps (plus a full fence in a process that could not
 * register for membarrier(); see __shmpool_ring_signal()), and one wake
 * syscall only when a sleeper announced itself (NEED_WAKEUP in the event
 * word). Going to sleep costs a membarrier() syscall on top.
 *
 * Shutdown: shmpool_ring_shutdown(r, SHMPOOL_RING_PROD) says no more elements
 * will come: blocked and later consumers drain what is left, then get
 * -EPIPE. SHMPOOL_RING_CONS says nobody will dequeue any more: blocked and
 * later blocking producers get -EPIPE. It is a property of the ring's end,
 * not of one thread: any producer (consumer) may shut its end down.
 *
 * Concurrency: on an SPSC ring, at most one thread enqueues and at most one
 * dequeues at a time (in any processes); on an MPMC ring, the same for a side
 * created SP/SC, any number otherwise. Everything else (counts, shutdown,
 * open, close of other handles) may run concurrently with anything. A handle
 * may be shared by threads of a process within those rules.
 *
 * - SHMPOOL_RING_VAR: variable-size records, one producer and one consumer
 *   (SPSC rules). @count is the ring's size in bytes (a power of two, at
 *   least 64), @esize must be 8. A record is an 8-byte header (its length)
 *   and the payload rounded up to 8 bytes; it is never split at the wrap (a
 *   padding header fills the rest of the lap instead), so the producer
 *   writes it in place between shmpool_ring_reserve() and
 *   shmpool_ring_commit(), and the consumer reads it in place between
 *   shmpool_ring_peek() and shmpool_ring_release(). Payloads are 1 to
 *   shmpool_ring_max_record() = @count / 2 - 8 bytes, which guarantees that
 *   an empty ring takes any record wherever the wrap falls.
 *
 * Owner death (layout 5). Each side records who works it: an SPSC or VAR
 * side the attachment id (shmpool_attach_id()) of the process whose handle
 * last enqueued (dequeued) on it, an MPMC side one record per handle (up
 * to __SHMPOOL_RING_RECS per side): its attachment id and the indices of
 * its last reservation, written before the reservation (in the head's own
 * cache line, so it costs no extra line and no atomic RMW). A handle
 * records itself at its first call on a side (SPSC, VAR: and at its first
 * call after another handle recorded itself there); shmpool_ring_close()
 * clears its record (a side whose handles were all closed has no owner).
 * - A blocking call that cannot move anything and whose other side is
 *   dead (SPSC, VAR: its owner's attachment ended; MPMC: every recorded
 *   handle's attachment ended) returns -ECONNRESET instead of sleeping; a
 *   consumer first drains what the dead producer published. The device
 *   backend tells a sleeper at once (SHMPOOL_WAIT_DEATH); on memfd, and on
 *   a module without attachments, it notices within about 100 ms. A live
 *   peer is never taken for dead on the device backend (ids are the
 *   module's, not PIDs, so PID namespaces do not matter); memfd ids are
 *   PIDs of the caller's namespace (README, "When a process dies").
 * - shmpool_ring_takeover() makes the calling handle the owner of a side
 *   whose owner died (-EBUSY while it lives); a new handle's first call
 *   also takes the side over, as before, and so does the next call of a
 *   handle that worked the side before the dead owner did (starting, as
 *   a new handle does, from the shared indices). A new SPSC consumer
 *   starts at the shared index: elements a killed consumer had copied out
 *   but not yet counted (cons.tail) come again, none is lost or
 *   overwritten unread. A
 *   new SPSC producer starts after every element a consumer can already
 *   see (a group's word may be ahead of prod.tail when its producer was
 *   killed between the two): the elements of a killed producer's last
 *   call come before -ECONNRESET or never, and the next producer's all
 *   come after them. A
 *   VAR record reserved but not committed by a dead producer is never
 *   seen (the new producer writes over it); one peeked but not released by
 *   a dead consumer is peeked again by the next one.
 * - MPMC: a slot that a dead producer reserved but did not publish is
 *   skipped by the first consumer that finds the ring empty in front of
 *   it in a blocking call (or in shmpool_ring_takeover()): it never
 *   held a published element; a bulk blocking dequeue that needs it,
 *   behind elements, first takes those elements (see the stash below).
 *   A slot that a dead consumer reserved but did not free is delivered
 *   again, to a consumer in a blocking dequeue (it was never returned
 *   to the dead one's caller); a bulk one takes them even when they are
 *   fewer than it asked for (the producers cannot refill the ring until
 *   they are free), keeps them in its handle (its stash) and returns
 *   them first, with the rest, from the ring or once they make a bulk
 *   (a burst dequeue_wait on that handle returns them at once; the
 *   inline calls do not see them; closing the handle drops them).
 *   Elements whose slots the dead consumer had already freed in its
 *   last call are gone with it, as if that call had returned. A slot is
 *   declared stuck only if no live record covers it (a producer's, also
 *   only if a dead handle's record covers it or no live handle reserved
 *   past it: a handle shared by threads records only its latest
 *   reservation, so a dead handle whose threads held several leaves the
 *   earlier ones unskipped, and blocking consumers waiting there to their
 *   deadline, while a live handle that reserved past them is open); with more
 *   handles on a side than records, the extra handles are untracked,
 *   and while any is open nothing is skipped; an untracked handle is
 *   only counted, so one whose process dies counts as open for the
 *   ring's life: that side is never recovered again, nor reported dead
 *   (-ECONNRESET). Keep to __SHMPOOL_RING_RECS handles per side where
 *   peers may die.
 * - Each call's side is kept per handle, and a fork() child's handle
 *   records the child at its first call on a side, blocking or not (so a
 *   live child is never taken for dead because its parent exited).
 *
 * A peer that writes into the ring (README, "Trust between processes").
 * The geometry (kind, count, element size, masks, strides, the largest
 * record) is read and checked once, when the handle is made, and the calls
 * use the handle's copy only; shared indices are masked or range-checked
 * against it, and every loop over shared state is bounded by a count
 * derived from it. So a peer that writes garbage can make the calls move
 * garbage, report full or empty, time out, see a shutdown or a dead peer,
 * but no call reads or writes outside the ring object, hands out a pointer
 * outside it, or spins: a state that no peer following the protocol can
 * make returns -EUCLEAN (VAR reserve/peek; MPMC and SPSC element calls
 * return 0 and mark the handle, whose blocking calls then return -EUCLEAN;
 * the handle may stay in that state).
 */
#ifndef SHMPOOL_RING_H
#define SHMPOOL_RING_H

#include <string.h>

#include "shmpool.h"
#include "shmpool_alloc.h"
#include "shmpool_sync.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ring types */
#define SHMPOOL_RING_SPSC	1U
#define SHMPOOL_RING_MPMC	2U
#define SHMPOOL_RING_VAR	3U	/* variable-size records (below) */

/* creation flags (MPMC only) */
#define SHMPOOL_RING_SP		(1U << 0)	/* single producer at a time */
#define SHMPOOL_RING_SC		(1U << 1)	/* single consumer at a time */

/* shmpool_ring_shutdown() ends */
#define SHMPOOL_RING_PROD	(1U << 0)
#define SHMPOOL_RING_CONS	(1U << 1)

/* shmpool_ring_*_wait() flags */
#define SHMPOOL_RING_BULK	(1U << 0)	/* all @n or nothing */

#define SHMPOOL_RING_MAX_COUNT	(1U << 30)	/* counts fit the int results */
#define SHMPOOL_RING_MAX_ESIZE	65536U
#define __SHMPOOL_RING_LINE	128	/* two lines: no adjacent-line prefetch sharing */
#define __SHMPOOL_RING_MAGIC	0x52696e67U	/* "Ring" */
/*
 * Layout version of the shared ring, in d.version. 0 (the field was
 * reserved, zero): head/tail rings of element arrays. 2: a sequence word
 * per slot (SPSC and MPMC). 3: SPSC groups of elements with one word per
 * cache line, MPMC slots with a word each. 4: SPSC groups with two words,
 * the producer's and the consumer's. 5: owners (see "Owner death"). 6: a
 * message receiver claims its loan entry before the dequeue (a receiving
 * state, and the descriptor's ring index in the block's header; see
 * "Loans and a dead process"). 7: a publisher records its descriptor's
 * ring index in the block's header before the descriptor enters the
 * ring, and a receiver without an attachment id marks the entry passed.
 * A ring of another version found by name is refused with
 * -EPROTONOSUPPORT.
 */
#define __SHMPOOL_RING_VERSION	7U

/* MPMC: one handle of a side, and its last reservation (see "Owner death") */
struct __shmpool_ring_rec {
	__SHMPOOL_ATOMIC(uint32_t) owner;	/* attachment id; 0: a free record */
	__SHMPOOL_ATOMIC(uint32_t) start;	/* first index reserved */
	__SHMPOOL_ATOMIC(uint32_t) len;		/* how many */
};

#define __SHMPOOL_RING_RECS	9	/* what fits beside head and tail in a line */

struct __shmpool_ring_ht {
	__SHMPOOL_ATOMIC(uint32_t) head;	/* MPMC: reserved up to here */
	__SHMPOOL_ATOMIC(uint32_t) tail;	/* SPSC, VAR: published up to here */
	__SHMPOOL_ATOMIC(uint32_t) owner;	/* SPSC, VAR: attachment id; 0 none */
	__SHMPOOL_ATOMIC(uint32_t) untracked;	/* MPMC: handles without a record */
	struct __shmpool_ring_rec rec[__SHMPOOL_RING_RECS];	/* MPMC */
} __attribute__((aligned(__SHMPOOL_RING_LINE)));

/*
 * The ring in pool memory. The description line is written once before
 * @magic is set (release) and read-only afterwards; the producer line is
 * written by producers only, the consumer line by consumers only; the event
 * line is written only by sleepers and shutdown, so that while nobody sleeps
 * it stays shared in every cache. The slots follow at offset sizeof(hdr):
 * SPSC: groups of @stride bytes, each @per_group elements and a word;
 * MPMC: @count slots of @stride bytes, each a word and an element (see
 * "Element slots" below); VAR: @count bytes.
 */
struct __shmpool_ring_hdr {
	struct {
		__SHMPOOL_ATOMIC(uint32_t) magic;	/* set last by the creator */
		uint32_t type;
		uint32_t flags;
		uint32_t esize;		/* VAR: 8 */
		uint32_t count;		/* VAR: bytes */
		uint32_t mask;
		uint32_t max_rec;	/* VAR: largest record payload */
		uint32_t version;	/* __SHMPOOL_RING_VERSION */
		uint32_t stride;	/* bytes per group (SPSC), slot (MPMC); VAR: 1 */
		uint32_t per_group;	/* SPSC: elements per group; else 1 */
	} __attribute__((aligned(__SHMPOOL_RING_LINE))) d;
	struct __shmpool_ring_ht prod;
	struct __shmpool_ring_ht cons;
	struct {
		struct shmpool_event data;	/* consumers sleep: "not empty" */
		struct shmpool_event space;	/* producers sleep: "not full" */
		__SHMPOOL_ATOMIC(uint32_t) shut;	/* SHMPOOL_RING_PROD|CONS */
	} __attribute__((aligned(__SHMPOOL_RING_LINE))) ev;
};

/**
 * struct shmpool_ring - a process's handle on a ring
 * @heap: the heap holding the ring (not owned)
 * @off: pool offset of the ring object
 *
 * The rest is private: cached copies of the shared description (so the hot
 * paths never re-read it) and each side's private copy of the other side's
 * index (SPSC).
 */
struct shmpool_ring {
	struct shmpool_heap *heap;
	uint64_t off;

	/* private: */
	struct __shmpool_ring_hdr *hdr;
	unsigned char *slots;
	uint32_t type, flags, esize, count, mask, max_rec;
	uint32_t stride, doff;	/* group or slot size; MPMC: element offset */
	uint32_t per_group;	/* SPSC: elements per group */
	uint32_t cons_cache;	/* VAR producer: copy of cons.tail */
	uint32_t prod_lim;	/* SPSC producer: indices below may be written
				 * (from a group's consumer word or cons.tail) */
	uint32_t prod_cache;	/* consumer: indices below are written (SPSC:
				 * from a word or prod.tail; VAR: prod.tail) */
	uint32_t var_resv;	/* VAR: bytes reserved, not yet committed */
	uint32_t var_peek;	/* VAR: bytes peeked, not yet released */
	uint32_t claimed;	/* SHMPOOL_RING_PROD/CONS: sides recorded */
	uint32_t self;		/* our attachment id when we recorded them */
	uint32_t untracked;	/* MPMC sides where we hold no record */
	struct __shmpool_ring_rec *rec[2];	/* MPMC: ours, producer and consumer side
						 * (NULL until the first call; @own if untracked) */
	struct __shmpool_ring_rec own[2];	/* MPMC: where an untracked handle writes */
	struct __shmpool_msg_loan *loans;	/* message rings: the loan table */
	/* appended after layout 5 (the inline paths of older callers do not use them): */
	__SHMPOOL_ATOMIC(uint32_t) bad;	/* the shared state was found inconsistent */
	uint32_t var_head;	/* VAR producer: prod.tail at the reservation */
	struct shmpool_ring *fork_next, *fork_prev;	/* this process's handles (fork()) */
	unsigned char *stash;	/* MPMC: elements a bulk blocking dequeue took from
				 * a dead consumer's slots, not yet returned */
	uint32_t stashed, stash_cap;	/* elements in @stash, its room */
};

/*
 * Find ring @name in @h or create it (@type, @count slots of @esize bytes,
 * @flags). Returns 1 if this call created it, 0 if it existed with the same
 * parameters; -EEXIST if it exists with different ones (or is not a ring),
 * -EPROTONOSUPPORT if it was made by a library with another ring layout
 * (__SHMPOOL_RING_VERSION), -EINVAL for bad parameters, errors of
 * shmpool_obj_create().
 */
int shmpool_ring_create(struct shmpool_heap *h, const char *name,
			uint32_t type, uint32_t count, uint32_t esize,
			unsigned int flags, struct shmpool_ring **out);
/*
 * Open existing ring @name, which must be of @type with @esize-byte elements
 * (-EPROTOTYPE otherwise, -ENOENT if there is none; -EPROTONOSUPPORT if
 * it has another ring layout version). Waits up to 10 s for a creator that
 * is still setting the ring up (-ETIMEDOUT).
 */
int shmpool_ring_open(struct shmpool_heap *h, const char *name,
		      uint32_t type, uint32_t esize, struct shmpool_ring **out);
/* Free the handle (NULL is fine); the ring stays (shmpool_obj_remove() frees it). */
void shmpool_ring_close(struct shmpool_ring *r);
/* Shut down @ends (SHMPOOL_RING_PROD and/or _CONS) and wake every sleeper. */
int shmpool_ring_shutdown(struct shmpool_ring *r, unsigned int ends);
/*
 * Make @r the owner of side @side (SHMPOOL_RING_PROD or _CONS) of a ring
 * whose owner died (see "Owner death"): 1 if a dead owner was replaced, 0
 * if the side had none or was ours; -EBUSY if another live process owns
 * an SPSC or VAR side, or its owner changed 1024 times in a row under the
 * call (peers that keep taking it over, or writing it); -EINVAL. MPMC:
 * records @r on the side (any number
 * of live handles may work it) and skips slots that dead producers
 * reserved and never published (@side _CONS).
 */
int shmpool_ring_takeover(struct shmpool_ring *r, unsigned int side);
/*
 * Enqueue from @objs up to @n elements (all, with SHMPOOL_RING_BULK),
 * blocking until at least one (all) fit or @deadline (absolute
 * CLOCK_MONOTONIC; NULL: no limit). Returns the count moved, -ETIMEDOUT,
 * -EPIPE if the consumer end is shut down, -ECONNRESET if the ring is
 * full and its consumer side died ("Owner death"), -EINTR if a signal handler
 * without SA_RESTART ran while asleep, -EUCLEAN if the ring's shared state
 * is inconsistent (a peer wrote into it; the handle stays so), -EINVAL for
 * bulk @n above the ring's count or unknown @flags. @n 0 returns 0 at once.
 */
int shmpool_ring_enqueue_wait(struct shmpool_ring *r, const void *objs,
			      uint32_t n, unsigned int flags,
			      const struct timespec *deadline);
/*
 * Dequeue into @objs, like shmpool_ring_enqueue_wait(); -EPIPE once the
 * producer end is shut down and the ring is empty, -ECONNRESET once the
 * producer side died and the ring is empty (after every element it
 * published was delivered), -EUCLEAN.
 */
int shmpool_ring_dequeue_wait(struct shmpool_ring *r, void *objs, uint32_t n,
			      unsigned int flags,
			      const struct timespec *deadline);
/*
 * Blocking shmpool_ring_reserve(): wait for room for a @len-byte record.
 * 0 with *@ptr set, -ETIMEDOUT, -EPIPE (consumer end shut down),
 * -ECONNRESET (no room and the consumer died), -EINTR, -EUCLEAN (the shared
 * indices are damaged), -EINVAL (not a VAR ring, @len 0 or above the maximum).
 */
int shmpool_ring_reserve_wait(struct shmpool_ring *r, uint32_t len,
			      void **ptr, const struct timespec *deadline);
/*
 * Blocking shmpool_ring_peek(): wait for a record; its length, or
 * -ETIMEDOUT, -EPIPE (producers shut down and the ring empty),
 * -ECONNRESET (the producer died and the ring is empty), -EINTR,
 * -EUCLEAN (a damaged record header or damaged indices), -EINVAL.
 */
int shmpool_ring_peek_wait(struct shmpool_ring *r, const void **ptr,
			   const struct timespec *deadline);
/*
 * How many wake calls (each at most one wake syscall) the rings of this
 * process have made since it started: a sleeper-free exchange makes none.
 */
uint64_t shmpool_ring_wake_calls(void);

/* a handle's first call on @side: record its owner (see "Owner death") */
void __shmpool_ring_claim(struct shmpool_ring *r, unsigned int side);

/* SPSC, VAR: the owner field of @side */
#define __SHMPOOL_RING_OWNER(r, side)					\
	((side) == SHMPOOL_RING_PROD ? &(r)->hdr->prod.owner : &(r)->hdr->cons.owner)

/*
 * SPSC, VAR: record the owner at a handle's first call on a side, and
 * again at its first call after another handle recorded itself there (the
 * side's owner is the process whose handle last worked it; an SPSC
 * consumer looks in its slow branches only, when what it knew is used
 * up): two loads (the second of the side's own line, which the call reads
 * anyway) and a branch
 */
#define __SHMPOOL_RING_CLAIM(r, side)					\
	do {								\
		if (__builtin_expect(!((r)->claimed & (side)) ||	\
				     __SHMPOOL_STD atomic_load_explicit(	\
					__SHMPOOL_RING_OWNER(r, side),	\
					__SHMPOOL_STD memory_order_relaxed) != \
				     (r)->self, 0))			\
			__shmpool_ring_claim(r, side);			\
	} while (0)

/* slow path of __shmpool_ring_signal(): a sleeper announced itself */
int __shmpool_ring_wake(struct shmpool_ring *r, struct shmpool_event *ev);
/* sched_yield(); unused by the inline paths since layout 2, still exported */
void __shmpool_ring_yield(void);

/* ---- inline hot paths -------------------------------------------------------- */

/*
 * The hot paths are meant to be inlined into the caller with their
 * constant arguments (one element, 8-byte elements): the compiler's
 * heuristics would otherwise keep the larger ones out of line.
 */
#define __SHMPOOL_RING_INLINE	static inline __attribute__((always_inline))

#define __SHMPOOL_LD(p, mo)	__SHMPOOL_STD atomic_load_explicit(p, __SHMPOOL_STD mo)
#define __SHMPOOL_ST(p, v, mo)	__SHMPOOL_STD atomic_store_explicit(p, v, __SHMPOOL_STD mo)

static inline void __shmpool_ring_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	_mm_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * 1 once this process is registered for MEMBARRIER_CMD_GLOBAL_EXPEDITED (at
 * its first ring create/open, again in children after fork()): then a
 * sleeper's membarrier() stands in for our half of the fence pairing.
 */
extern __SHMPOOL_ATOMIC(int) __shmpool_ring_asym;

/*
 * Tell the other side's sleepers to look again, after the release store
 * that published the change. (S) pairs with the sleeper's (W) in
 * wait_loop() (lib/ring.c): Dekker's pattern, we store the index and load
 * NEED_WAKEUP, the sleeper stores NEED_WAKEUP and loads the index; one of
 * us must see the other's store. Registered processes make that an
 * asymmetric fence: only a compiler barrier here, and the sleeper calls
 * membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) after its fence, which runs
 * a full barrier on every CPU running a registered process (a process
 * that is not running has passed a context switch, a full barrier too).
 * Unregistered processes (no membarrier in the kernel) use a full fence.
 * No syscall while nobody sleeps.
 */
static inline void __shmpool_ring_signal(struct shmpool_ring *r,
					 struct shmpool_event *ev)
{
	if (__SHMPOOL_LD(&__shmpool_ring_asym, memory_order_relaxed))
		__SHMPOOL_STD atomic_signal_fence(__SHMPOOL_STD memory_order_seq_cst);
	else
		__SHMPOOL_STD atomic_thread_fence(__SHMPOOL_STD memory_order_seq_cst);
	if (__SHMPOOL_LD(&ev->word, memory_order_relaxed) &
	    SHMPOOL_EVENT_NEED_WAKEUP)
		__shmpool_ring_wake(r, ev);
}

/*
 * Element slots. Indices run freely modulo 2^32; index i lives in slot
 * i & mask.
 *
 * SPSC: slots come in groups of @per_group elements followed by two 32-bit
 * words, the group (@stride bytes) filling a 64-byte cache line when an
 * element fits in 56 bytes (8-byte elements: 7 and the words, so elements
 * stay 8-byte aligned), else one element and the words (rounded up to 8
 * bytes). The producer's word (P) holds j + 1 for the last index j written
 * to the group, the consumer's (C) j + 1 for an index j it read from it
 * (the last of a dequeue call; it may lag, see spsc_drain_g()). Index i is
 * written when (int32_t)(P - (i + 1)) >= 0: P only grows within a lap, and
 * a P from the next lap means the producer has gone past i (it can reach
 * the group again only for slots before i's). Index i may be written when
 * C + count - i is 1 to count (modulo 2^32): the slot's element of the lap
 * before was read. So each side learns what it needs from the cache line
 * it is about to touch anyway: a consumer that an element
 * arrived from the element's own line, a producer that a slot is free
 * from the slot's own line (one transfer per line each way, no index line
 * shared at full rate), and dense groups keep bursts at about rte_ring's
 * lines per element. The indices (prod.tail, cons.tail) are exact copies
 * that the other side reads only when a group's word does not tell it
 * enough (bursts across groups, a full ring). Zero words say "nothing
 * written" and "free" to every first-lap index: a new ring needs no
 * initialisation.
 *
 * MPMC: slot i is @stride bytes at slots + i * stride, a word at offset 0
 * and the element at @doff (4, or 8 when the element size is a multiple of
 * 8); up to 64 bytes a slot is a power of two and never straddles a line.
 * Vyukov's bounded queue: the word of index i is i while the slot is free
 * for it (creation writes slot i's word as i), i + 1 once it is full, and
 * the consumer frees it for the next lap by writing i + count.
 */

/* SPSC: the group holding index @idx, and the element's position in it */
__SHMPOOL_RING_INLINE unsigned char *
__shmpool_spsc_group(const struct shmpool_ring *r, uint32_t idx, uint32_t per,
		     uint32_t stride, uint32_t *pos)
{
	uint32_t slot = idx & r->mask, q = slot / per;

	*pos = slot - q * per;
	return r->slots + (size_t)q * stride;
}

/* the words at the end of a group: the producer's (P), the consumer's (C) */
static inline __SHMPOOL_ATOMIC(uint32_t) *
__shmpool_spsc_pword(unsigned char *grp, uint32_t stride)
{
	return (__SHMPOOL_ATOMIC(uint32_t) *)(void *)(grp + stride - 8);
}

static inline __SHMPOOL_ATOMIC(uint32_t) *
__shmpool_spsc_cword(unsigned char *grp, uint32_t stride)
{
	return (__SHMPOOL_ATOMIC(uint32_t) *)(void *)(grp + stride - 4);
}

/*
 * Copy @n elements from @src into the slots from index @idx on; after the
 * last element of each group, release-store its P word (pairs with the
 * consumer's acquire in __shmpool_spsc_dequeue(): the elements before it
 * are visible). @esize, @per, @stride are constants for 8-byte elements
 * (always_inline), so the division is a multiplication. (Only for 8: a
 * constant larger size would make GCC warn about the memcpy in callers
 * that pass an 8-byte object to a ring of 8-byte elements.) The handle's
 * fields are read into locals once: stores through a byte pointer would
 * make the compiler reload them.
 */
__SHMPOOL_RING_INLINE void
__shmpool_spsc_fill_g(const struct shmpool_ring *r, uint32_t idx,
		      const void *src, uint32_t n, uint32_t esize,
		      uint32_t per, uint32_t stride)
{
	const unsigned char *s = (const unsigned char *)src;
	uint32_t pos, slot = idx & r->mask, count = r->count, k;
	unsigned char *grp = __shmpool_spsc_group(r, idx, per, stride, &pos);

	for (k = 0; k < n; k++) {
		memcpy(grp + (size_t)pos * esize, s + (size_t)k * esize, esize);
		pos++;
		slot++;
		if (pos == per || slot == count || k == n - 1) {
			__SHMPOOL_ST(__shmpool_spsc_pword(grp, stride), idx + k + 1,
				     memory_order_release);
			if (slot == count) {
				slot = 0;
				pos = 0;
				grp = r->slots;
			} else if (pos == per) {
				pos = 0;
				grp += stride;
			}
		}
	}
}

/*
 * Copy the elements of indices @idx.. @idx + @n - 1 (@n >= 1) into @dst,
 * then release-store cons.tail and the C word of the last group read
 * from: our reads of the slots before a producer that sees either may
 * overwrite them (pairs with the acquire loads in __shmpool_spsc_room()).
 * cons.tail first, so that no C word is ever ahead of it: a handle that
 * takes over the consumer side starts at cons.tail and must not find a
 * slot it has not read already freed. The C words of groups a burst
 * passed through keep an older value: a word that lags only sends the
 * producer to cons.tail (one store per call, not per group).
 */
__SHMPOOL_RING_INLINE void
__shmpool_spsc_drain_g(const struct shmpool_ring *r, uint32_t idx, void *dst,
		       uint32_t n, uint32_t esize, uint32_t per, uint32_t stride)
{
	unsigned char *d = (unsigned char *)dst;
	uint32_t pos, slot = idx & r->mask, count = r->count, k = 0;
	unsigned char *grp = __shmpool_spsc_group(r, idx, per, stride, &pos);

	for (;;) {
		memcpy(d + (size_t)k * esize, grp + (size_t)pos * esize, esize);
		if (++k == n)
			break;
		pos++;
		slot++;
		if (slot == count) {
			slot = 0;
			pos = 0;
			grp = r->slots;
		} else if (pos == per) {
			pos = 0;
			grp += stride;
		}
	}
	__SHMPOOL_ST(&r->hdr->cons.tail, idx + n, memory_order_release);
	__SHMPOOL_ST(__shmpool_spsc_cword(grp, stride), idx + n,
		     memory_order_release);
}

/*
 * The P (@cons 0) or C (@cons 1) word of the group holding index @idx
 * (acquire: see the callers).
 */
__SHMPOOL_RING_INLINE uint32_t __shmpool_spsc_seen(const struct shmpool_ring *r,
						   uint32_t idx, int cons)
{
	uint32_t pos, stride = 64;
	unsigned char *grp;

	if (r->esize == 8)
		grp = __shmpool_spsc_group(r, idx, 7, 64, &pos);
	else
		grp = __shmpool_spsc_group(r, idx, r->per_group,
					   stride = r->stride, &pos);
	return __SHMPOOL_LD(cons ? __shmpool_spsc_cword(grp, stride) :
				   __shmpool_spsc_pword(grp, stride),
			    memory_order_acquire);
}

/*
 * The producer's room from @head on, when its copy says fewer than @n
 * slots: first, if @n fits in a group, from the C word of @head's group,
 * which is in the line the producer writes next (so no other line is
 * read); then, if that group does not hold enough (a burst, a full ring),
 * from cons.tail. Both loads acquire: they pair with the consumer's
 * release stores in __shmpool_spsc_drain_g(), so its reads of the slots
 * are done before we overwrite them. A limit of more than @count ahead is another handle's
 * history (the producer side changed hands): never trusted.
 */
__SHMPOOL_RING_INLINE uint32_t __shmpool_spsc_room(struct shmpool_ring *r,
						   uint32_t head, uint32_t n)
{
	uint32_t count = r->count, lim = head, room = 0;

	if (n <= r->per_group) {
		lim = __shmpool_spsc_seen(r, head, 1) + count;
		room = lim - head;
	}
	if (room < n || room > count) {
		lim = __SHMPOOL_LD(&r->hdr->cons.tail, memory_order_acquire) + count;
		room = lim - head;
		if (room > count) {	/* a consumer ahead of prod.tail */
			lim = head + count;
			room = count;
		}
	}
	r->prod_lim = lim;
	return room;
}

__SHMPOOL_RING_INLINE void __shmpool_spsc_fill(const struct shmpool_ring *r,
					       uint32_t idx, const void *src, uint32_t n)
{
	if (r->esize == 8)
		__shmpool_spsc_fill_g(r, idx, src, n, 8, 7, 64);
	else
		__shmpool_spsc_fill_g(r, idx, src, n, r->esize, r->per_group,
				      r->stride);
}

__SHMPOOL_RING_INLINE void __shmpool_spsc_drain(const struct shmpool_ring *r,
						uint32_t idx, void *dst, uint32_t n)
{
	if (r->esize == 8)
		__shmpool_spsc_drain_g(r, idx, dst, n, 8, 7, 64);
	else
		__shmpool_spsc_drain_g(r, idx, dst, n, r->esize, r->per_group,
				       r->stride);
}

/*
 * MPMC: copy @n elements from @src into the slots from index @idx on, each
 * followed by its word, idx + 1: release, so the element is visible to
 * whoever acquires the word (__shmpool_mpmc_ready()).
 */
__SHMPOOL_RING_INLINE void __shmpool_mpmc_fill(const struct shmpool_ring *r,
					       uint32_t idx, const void *src, uint32_t n)
{
	const unsigned char *s = (const unsigned char *)src;
	unsigned char *slots = r->slots, *slot;
	uint32_t mask = r->mask, stride = r->stride, doff = r->doff;
	uint32_t esize = r->esize, k;

	if (esize == 8) {	/* 16-byte slots; constant-size memcpy: one move */
		for (k = 0; k < n; k++) {
			slot = slots + (size_t)((idx + k) & mask) * 16;
			memcpy(slot + 8, s + (size_t)k * 8, 8);
			__SHMPOOL_ST((__SHMPOOL_ATOMIC(uint32_t) *)(void *)slot,
				     idx + k + 1, memory_order_release);
		}
		return;
	}
	for (k = 0; k < n; k++) {
		slot = slots + (size_t)((idx + k) & mask) * stride;
		memcpy(slot + doff, s + (size_t)k * esize, esize);
		__SHMPOOL_ST((__SHMPOOL_ATOMIC(uint32_t) *)(void *)slot,
			     idx + k + 1, memory_order_release);
	}
}

/*
 * MPMC: copy the elements of @n slots from index @idx on into @dst, and
 * write each word as its index + count (free for the next lap), release:
 * our read of the element before a producer may overwrite it (pairs with
 * the acquire in __shmpool_mpmc_ready()).
 */
__SHMPOOL_RING_INLINE void __shmpool_mpmc_drain(const struct shmpool_ring *r,
						uint32_t idx, void *dst, uint32_t n)
{
	unsigned char *d = (unsigned char *)dst, *slots = r->slots, *slot;
	uint32_t mask = r->mask, stride = r->stride, doff = r->doff;
	uint32_t esize = r->esize, count = r->count, k;

	if (esize == 8) {
		for (k = 0; k < n; k++) {
			slot = slots + (size_t)((idx + k) & mask) * 16;
			memcpy(d + (size_t)k * 8, slot + 8, 8);
			__SHMPOOL_ST((__SHMPOOL_ATOMIC(uint32_t) *)(void *)slot,
				     idx + k + count, memory_order_release);
		}
		return;
	}
	for (k = 0; k < n; k++) {
		slot = slots + (size_t)((idx + k) & mask) * stride;
		memcpy(d + (size_t)k * esize, slot + doff, esize);
		__SHMPOOL_ST((__SHMPOOL_ATOMIC(uint32_t) *)(void *)slot,
			     idx + k + count, memory_order_release);
	}
}

/* SPSC enqueue: @bulk 1 for all-or-nothing */
__SHMPOOL_RING_INLINE uint32_t __shmpool_spsc_enqueue(struct shmpool_ring *r,
						      const void *objs, uint32_t n,
						      int bulk)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t head, room;

	/* relaxed: only this side writes prod.tail */
	head = __SHMPOOL_LD(&h->prod.tail, memory_order_relaxed);
	room = r->prod_lim - head;

	/*
	 * A new handle has no room cached: its first call comes here; so
	 * does a handle's first call after another handle worked the side
	 * (the owner field, in prod.tail's line).
	 */
	if (room < n || room > r->count ||
	    __SHMPOOL_LD(&h->prod.owner, memory_order_relaxed) != r->self) {
		/* before the first element: it may move prod.tail (lib/ring.c) */
		__SHMPOOL_RING_CLAIM(r, SHMPOOL_RING_PROD);
		head = __SHMPOOL_LD(&h->prod.tail, memory_order_relaxed);
		room = __shmpool_spsc_room(r, head, n);
		if (room < n) {
			if (bulk || !room) {
				/*
				 * Full: the caller will likely try again at
				 * once. Pause first, so that a spinning
				 * producer does not take the line the
				 * consumer is reading from it at full rate
				 * just when the consumer is the slower side.
				 */
				__shmpool_ring_relax();
				return 0;
			}
			n = room;
		}
	}
	/* the elements, then each group's P word (release; see spsc_fill_g()) */
	__shmpool_spsc_fill(r, head, objs, n);
	/*
	 * Release: every slot write above before prod.tail; pairs with the
	 * acquire of a consumer that counts a burst by prod.tail (and of
	 * shmpool_ring_count(), a new consumer handle).
	 */
	__SHMPOOL_ST(&h->prod.tail, head + n, memory_order_release);
	__shmpool_ring_signal(r, &h->ev.data);
	return n;
}

__SHMPOOL_RING_INLINE uint32_t __shmpool_spsc_dequeue(struct shmpool_ring *r,
						      void *objs, uint32_t n, int bulk)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t tail, avail, w;

	/* relaxed: only this side writes cons.tail */
	tail = __SHMPOOL_LD(&h->cons.tail, memory_order_relaxed);
	avail = r->prod_cache - tail;

	if (avail > r->count) {	/* another handle consumed meanwhile */
		r->prod_cache = tail;
		avail = 0;
	}
	if (avail < n && n == 1) {
		/* a new handle has nothing cached: its first call comes here */
		__SHMPOOL_RING_CLAIM(r, SHMPOOL_RING_CONS);
		/*
		 * Acquire: pairs with the producer's release store of the
		 * P word of @tail's group; every index below the word is
		 * written and visible (the producer writes in order). That
		 * line holds the element: no other line is read, so a
		 * message costs one transfer. What the word says beyond
		 * @tail is kept.
		 */
		w = __shmpool_spsc_seen(r, tail, 0);
		if ((int32_t)(w - (tail + 1)) < 0) {
			/*
			 * Empty: the caller will likely look again at once.
			 * Pause first, so that a spinning consumer does not
			 * take the line the producer is filling from it at
			 * full rate (as the full enqueue does for the line
			 * the consumer reads).
			 */
			__shmpool_ring_relax();
			return 0;
		}
		r->prod_cache = w;
	} else if (avail < n) {
		__SHMPOOL_RING_CLAIM(r, SHMPOOL_RING_CONS);
		/*
		 * A batch. Acquire: pairs with the producer's release store
		 * of prod.tail, once per batch; the slots below it are
		 * written. Unlike the words, it does not pull the line the
		 * producer is filling away from it in the middle of a
		 * burst. It lags the words (stored after them), so it may
		 * be behind what a word already showed us: never move our
		 * copy back.
		 */
		w = __SHMPOOL_LD(&h->prod.tail, memory_order_acquire);
		if ((int32_t)(w - r->prod_cache) > 0)
			r->prod_cache = w;
		avail = r->prod_cache - tail;
		if (__builtin_expect(avail > r->count, 0)) {
			/* no producer gets a lap ahead: a damaged index */
			r->prod_cache = tail;
			__SHMPOOL_ST(&r->bad, 1, memory_order_relaxed);
			return 0;
		}
		if (avail < n) {
			if (bulk || !avail)
				return 0;
			n = avail;
		}
	}
	/* the elements; cons.tail and the C words (release; see spsc_drain_g()) */
	__shmpool_spsc_drain(r, tail, objs, n);
	__shmpool_ring_signal(r, &h->ev.space);
	return n;
}

/*
 * MPMC: how many times one call may find head moved under it (another
 * thread of its side won the slots, or a peer keeps writing garbage) before
 * it returns "nothing now": a bound from the geometry, not a timer, so that
 * a non-blocking call always returns.
 */
#define __SHMPOOL_RING_TRIES(r)	(4 * (r)->count + 1024)

/*
 * MPMC, Vyukov-style: a side finds its slots by their words, so neither
 * side reads the other side's index line; head only arbitrates among the
 * threads of one side (a CAS, or a plain store for an SP/SC side). The
 * words of @m slots from index @old on are checked against @want (the
 * value the word holds when the slot is ready for us: i for a producer,
 * i + 1 for a consumer). Returns how many are ready from @old on (stops at
 * the first that is not yet), or -1 if a word shows that another thread
 * of our side already moved past @old (reload head and try again).
 *
 * Acquire on each word: for a producer it pairs with the consumer's release
 * store that freed the slot (its reads done before we overwrite), for a
 * consumer with the producer's release store that filled it (the element
 * visible). Those slots cannot change under us once head is ours: nobody
 * else on our side takes an index we reserved, and the other side waits for
 * our word.
 */
__SHMPOOL_RING_INLINE int64_t __shmpool_mpmc_ready(const struct shmpool_ring *r,
						   uint32_t old, uint32_t m,
						   uint32_t want)
{
	unsigned char *slots = r->slots;
	uint32_t mask = r->mask, stride = r->stride, k;
	int32_t d;

	for (k = 0; k < m; k++) {
		d = (int32_t)(__SHMPOOL_LD((__SHMPOOL_ATOMIC(uint32_t) *)(void *)
					   (slots + (size_t)((old + k) & mask) * stride),
					   memory_order_acquire) - (old + k + want));
		if (d < 0)	/* not yet: full (producer), empty (consumer) */
			return k;
		if (d > 0)
			return -1;
	}
	return m;
}

/*
 * Reserve up to @n slots (all with @bulk) at one side's @head among that
 * side's threads: a plain store when the side is single-threaded (@single),
 * else a CAS. @consumer says which side, for the words' test. The count
 * reserved, from index *@old on; 0 if none (or not all, with @bulk).
 */
__SHMPOOL_RING_INLINE uint32_t
__shmpool_mpmc_reserve(struct shmpool_ring *r, __SHMPOOL_ATOMIC(uint32_t) *head,
		       uint32_t n, int bulk, int consumer, int single,
		       uint32_t *old)
{
	struct __shmpool_ring_rec *rec = r->rec[consumer];
	int64_t ready;
	uint32_t m, prev, tries = 0;	/* counted on the retry paths only */

	if (__builtin_expect(!rec, 0)) {	/* the handle's first call here */
		__shmpool_ring_claim(r, consumer ? SHMPOOL_RING_CONS : SHMPOOL_RING_PROD);
		rec = r->rec[consumer] ? r->rec[consumer] : &r->own[consumer];
	}

	/* relaxed: head only reserves; the words carry the ordering */
	*old = __SHMPOOL_LD(head, memory_order_relaxed);
	for (;;) {
		ready = __shmpool_mpmc_ready(r, *old, n, consumer);
		if (ready < 0) {
			prev = *old;
			*old = __SHMPOOL_LD(head, memory_order_relaxed);
			/*
			 * A word ahead of @prev was written by a thread that
			 * reserved its index, which moved head past @prev
			 * first, and our acquire of the word made that move
			 * visible: a head still at @prev is a damaged ring
			 * (shared memory: a peer wrote garbage), not a race.
			 */
			if (__builtin_expect(*old == prev, 0)) {
				__SHMPOOL_ST(&r->bad, 1, memory_order_relaxed);
				return 0;
			}
			if (__builtin_expect(++tries > __SHMPOOL_RING_TRIES(r), 0))
				return 0;	/* lost too often: "nothing now" */
			continue;
		}
		m = (uint32_t)ready;
		if (m < n && (bulk || !m))
			return 0;
		/*
		 * Say what we are about to reserve before we do (relaxed:
		 * the release below orders it), so that if we die holding
		 * the slots, survivors know whose they were. Same cache
		 * line as @head: no extra line moves.
		 */
		__SHMPOOL_ST(&rec->start, *old, memory_order_relaxed);
		__SHMPOOL_ST(&rec->len, m, memory_order_relaxed);
		if (single) {
			/*
			 * Only we move head. Release: our record before the
			 * new head; pairs with the acquire of head in the
			 * survivors' stuck-slot check (lib/ring.c).
			 */
			__SHMPOOL_ST(head, *old + m, memory_order_release);
			return m;
		}
		/*
		 * The CAS reserves [old, old + m) among the side's threads
		 * (the acquire loads of the words above already ordered our
		 * slot accesses after the other side's). Release on
		 * success: our record before the new head, as above (a
		 * locked instruction on x86 either way). On failure *@old
		 * is the new head: check again.
		 */
		if (__SHMPOOL_STD atomic_compare_exchange_weak_explicit(
				head, old, *old + m,
				__SHMPOOL_STD memory_order_release,
				__SHMPOOL_STD memory_order_relaxed))
			return m;
		if (__builtin_expect(++tries > __SHMPOOL_RING_TRIES(r), 0))
			return 0;
	}
}

__SHMPOOL_RING_INLINE uint32_t __shmpool_mpmc_enqueue(struct shmpool_ring *r,
						      const void *objs, uint32_t n,
						      int bulk)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t old, m;

	m = __shmpool_mpmc_reserve(r, &h->prod.head, n, bulk, 0,
				   !!(r->flags & SHMPOOL_RING_SP), &old);
	if (!m)
		return 0;
	/* each element, then the word that publishes it (release) */
	__shmpool_mpmc_fill(r, old, objs, m);
	__shmpool_ring_signal(r, &h->ev.data);
	return m;
}

__SHMPOOL_RING_INLINE uint32_t __shmpool_mpmc_dequeue(struct shmpool_ring *r,
						      void *objs, uint32_t n, int bulk)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t old, m;

	m = __shmpool_mpmc_reserve(r, &h->cons.head, n, bulk, 1,
				   !!(r->flags & SHMPOOL_RING_SC), &old);
	if (!m)
		return 0;
	/*
	 * Each element, then the word that frees its slot for index
	 * + count (release: our read before a producer's overwrite).
	 */
	__shmpool_mpmc_drain(r, old, objs, m);
	__shmpool_ring_signal(r, &h->ev.space);
	return m;
}

/* Enqueue up to @n elements from @objs without blocking; returns how many. */
__SHMPOOL_RING_INLINE uint32_t shmpool_ring_enqueue_burst(struct shmpool_ring *r,
							  const void *objs, uint32_t n)
{
	if (r->type == SHMPOOL_RING_SPSC)
		return __shmpool_spsc_enqueue(r, objs, n, 0);
	return __shmpool_mpmc_enqueue(r, objs, n, 0);
}

/* Enqueue all @n elements or none without blocking; returns @n or 0. */
__SHMPOOL_RING_INLINE uint32_t shmpool_ring_enqueue_bulk(struct shmpool_ring *r,
							 const void *objs, uint32_t n)
{
	if (r->type == SHMPOOL_RING_SPSC)
		return __shmpool_spsc_enqueue(r, objs, n, 1);
	return __shmpool_mpmc_enqueue(r, objs, n, 1);
}

/* Enqueue one element; 1 or 0 (full). */
__SHMPOOL_RING_INLINE uint32_t shmpool_ring_enqueue(struct shmpool_ring *r,
						    const void *obj)
{
	return shmpool_ring_enqueue_bulk(r, obj, 1);
}

__SHMPOOL_RING_INLINE uint32_t shmpool_ring_dequeue_burst(struct shmpool_ring *r,
							  void *objs, uint32_t n)
{
	if (r->type == SHMPOOL_RING_SPSC)
		return __shmpool_spsc_dequeue(r, objs, n, 0);
	return __shmpool_mpmc_dequeue(r, objs, n, 0);
}

__SHMPOOL_RING_INLINE uint32_t shmpool_ring_dequeue_bulk(struct shmpool_ring *r,
							 void *objs, uint32_t n)
{
	if (r->type == SHMPOOL_RING_SPSC)
		return __shmpool_spsc_dequeue(r, objs, n, 1);
	return __shmpool_mpmc_dequeue(r, objs, n, 1);
}

/* Dequeue one element; 1 or 0 (empty). */
__SHMPOOL_RING_INLINE uint32_t shmpool_ring_dequeue(struct shmpool_ring *r, void *obj)
{
	return shmpool_ring_dequeue_bulk(r, obj, 1);
}

/*
 * Elements in the ring now (a snapshot; exact only while nobody moves any).
 * MPMC counts reserved slots: those being written or read count as full.
 */
static inline uint32_t shmpool_ring_count(const struct shmpool_ring *r)
{
	uint32_t c, p;

	if (r->type != SHMPOOL_RING_MPMC) {
		c = __SHMPOOL_LD(&r->hdr->cons.tail, memory_order_acquire);
		p = __SHMPOOL_LD(&r->hdr->prod.tail, memory_order_acquire);
	} else {
		/* relaxed: a count, no slot is read on its strength */
		c = __SHMPOOL_LD(&r->hdr->cons.head, memory_order_relaxed);
		p = __SHMPOOL_LD(&r->hdr->prod.head, memory_order_relaxed);
	}
	/* SPSC: a consumer going by the words may be ahead of prod.tail */
	if ((int32_t)(p - c) < 0)
		return 0;
	return p - c > r->count ? r->count : p - c;
}

/* Slots of the ring. */
static inline uint32_t shmpool_ring_capacity(const struct shmpool_ring *r)
{
	return r->count;
}

/* ---- variable-size records (SHMPOOL_RING_VAR) ------------------------------------ */

#define __SHMPOOL_VAR_PAD	0xffffffffU	/* header: skip to the end of the lap */

/* The largest record payload of a VAR ring. */
static inline uint32_t shmpool_ring_max_record(const struct shmpool_ring *r)
{
	return r->max_rec;
}

/*
 * Reserve room for a @len-byte record without blocking: 0 and *@ptr (8-byte
 * aligned, @len bytes, in the ring) to write the payload into, then
 * shmpool_ring_commit(); -EAGAIN if the ring has no room now; -EINVAL for
 * @len 0 or above shmpool_ring_max_record(); -EUCLEAN if the shared indices
 * are damaged (a misaligned producer index, or one more than the ring's size
 * ahead of the consumer's). One reservation at a time.
 */
static inline int shmpool_ring_reserve(struct shmpool_ring *r, uint32_t len,
				       void **ptr)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t head, off, to_end, used;
	uint32_t need = 8 + ((len + 7) & ~7U), total, pad = __SHMPOOL_VAR_PAD;

	if (!len || len > r->max_rec)
		return -EINVAL;
	__SHMPOOL_RING_CLAIM(r, SHMPOOL_RING_PROD);
	/* relaxed: only the producer writes prod.tail (shared: checked) */
	head = __SHMPOOL_LD(&h->prod.tail, memory_order_relaxed);
	if (__builtin_expect(head & 7, 0))	/* records are 8-byte units */
		return -EUCLEAN;
	off = head & r->mask;
	to_end = r->count - off;	/* >= 8: @off is 8-aligned */
	total = need <= to_end ? need : to_end + need;	/* <= count */
	used = head - r->cons_cache;
	if (used > r->count - total) {
		/* Acquire: pairs with the consumer's release of cons.tail. */
		r->cons_cache = __SHMPOOL_LD(&h->cons.tail, memory_order_acquire);
		used = head - r->cons_cache;
		if (__builtin_expect(used > r->count, 0))
			return -EUCLEAN;	/* not a ring's indices */
		if (used > r->count - total)
			return -EAGAIN;
	}
	if (need > to_end) {
		/* published together with the record by commit's release */
		memcpy(r->slots + off, &pad, 4);
		off = 0;
	}
	memcpy(r->slots + off, &len, 4);
	r->var_head = head;
	r->var_resv = total;
	*ptr = r->slots + off + 8;
	return 0;
}

/* Publish the reserved record (and wake a sleeping consumer). */
static inline void shmpool_ring_commit(struct shmpool_ring *r)
{
	struct __shmpool_ring_hdr *h = r->hdr;

	/*
	 * Release: header and payload writes before the consumer sees them.
	 * From the index reserve() checked, not a new read of shared memory.
	 */
	__SHMPOOL_ST(&h->prod.tail, r->var_head + r->var_resv, memory_order_release);
	r->var_resv = 0;
	__shmpool_ring_signal(r, &h->ev.data);
}

/*
 * Look at the oldest record without blocking: its length and *@ptr to its
 * payload (valid until shmpool_ring_release()); -EAGAIN if the ring is
 * empty; -EUCLEAN if the record's header or the shared indices are damaged
 * (the record would not lie inside the ring).
 */
static inline int shmpool_ring_peek(struct shmpool_ring *r, const void **ptr)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t tail, off, len, avail, rec, used = 0;

	__SHMPOOL_RING_CLAIM(r, SHMPOOL_RING_CONS);
	/* relaxed: only the consumer writes cons.tail (shared: checked) */
	tail = __SHMPOOL_LD(&h->cons.tail, memory_order_relaxed);
	avail = r->prod_cache - tail;
	if (!avail || avail > r->count) {
		/*
		 * Acquire: pairs with commit's release; the record is
		 * visible. (More than the ring ahead: our copy is from
		 * before another handle consumed; read it again.)
		 */
		r->prod_cache = __SHMPOOL_LD(&h->prod.tail, memory_order_acquire);
		avail = r->prod_cache - tail;
		if (!avail)
			return -EAGAIN;
	}
	/* the indices and the header are shared memory: never trust them past the ring */
	if (__builtin_expect(avail > r->count || (tail & 7), 0))
		return -EUCLEAN;
	off = tail & r->mask;
	memcpy(&len, r->slots + off, 4);
	if (len == __SHMPOOL_VAR_PAD) {
		used = r->count - off;
		off = 0;
		memcpy(&len, r->slots, 4);
	}
	rec = 8 + ((len + 7) & ~7U);
	if (!len || len > r->max_rec || off + rec > r->count || used + rec > avail)
		return -EUCLEAN;
	r->var_peek = used + rec;
	*ptr = r->slots + off + 8;
	return (int)len;
}

/* Give the peeked record's room back to the producer (and wake it). */
static inline void shmpool_ring_release(struct shmpool_ring *r)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t tail = __SHMPOOL_LD(&h->cons.tail, memory_order_relaxed);

	/* Release: our reads of the record before the producer reuses it. */
	__SHMPOOL_ST(&h->cons.tail, tail + r->var_peek, memory_order_release);
	r->var_peek = 0;
	__shmpool_ring_signal(r, &h->ev.space);
}

/* ---- zero-copy messages ------------------------------------------------------------ */

/**
 * DOC: Zero-copy messages
 *
 * A message is a block of the ring's heap: the producer loans it
 * (shmpool_msg_loan(), an allocation), writes it in place and publishes its
 * offset and length through a ring whose elements are struct shmpool_msg
 * (any SPSC or MPMC ring with @esize sizeof(struct shmpool_msg)); the
 * consumer receives the descriptor, reads the block in place and releases
 * it (a free, from any process). Only the 16-byte descriptor is copied.
 * Descriptors come from shared memory: receive checks that one names an
 * allocated block at least @len long (-EUCLEAN otherwise; the bad
 * descriptor is consumed). A loan that could not be published stays the
 * caller's: publish it later or release it.
 */
struct shmpool_msg {
	uint64_t off;	/* the payload's pool offset */
	uint64_t len;	/* bytes of payload */
};

/*
 * Loans and a dead process. A ring of 16-byte elements (SPSC or MPMC)
 * carries a table of __SHMPOOL_MSG_LOANS loans after its slots; each loaned
 * block starts with a 16-byte header naming its entry, and the payload
 * follows it. An entry says who holds the block and how: loaned (by the
 * producer, not yet published), published (in the ring, nobody's),
 * receiving (claimed by a receiver before the descriptor leaves the ring),
 * held (received, not yet released). The header records the descriptor's
 * ring index: the publisher's enqueue stores the index it reserved before
 * the entry says published and before the descriptor enters the ring,
 * and a receiver stores the same before its claim. shmpool_msg_reclaim()
 * frees the loaned and held blocks of processes whose attachment ended,
 * their published blocks whose index never entered the ring (a publisher
 * killed between reserving its slot and filling it), and their receiving
 * blocks whose descriptor has left the ring; shmpool_msg_loan() calls it
 * by itself when the heap or the table runs out. A published block in
 * the ring, and a receiving one still in the ring, is the next
 * receiver's: never reclaimed (the next receiver takes over a dead
 * receiver's claim). So a publisher or a receiver killed at any
 * instruction leaks nothing. Two windows of a few instructions leak one
 * block instead (a process killed between its allocation and its entry,
 * or between clearing the entry and freeing it): a leak, never a block
 * freed twice or under its user. A publish that waits for room leaves
 * its block loaned between its tries, so a process killed while it
 * waits leaves a loan. Loans beyond the table's size work, untracked;
 * a process without an attachment id receives a message without owning
 * it (the entry says passed: never reclaimed, freed by its release). Take
 * a message ring's descriptors with shmpool_msg_receive() only: one taken
 * with the plain ring calls claims nothing, so once its publisher has
 * died, shmpool_msg_reclaim() may free the block under the taker. A
 * receive whose descriptor's entry another
 * live process claims or holds (a descriptor twice in the ring, or a
 * peer's garbage) consumes the descriptor and fails with -EUCLEAN: the
 * block stays its holder's.
 */
#define __SHMPOOL_MSG_LOANS	128
struct __shmpool_msg_loan {
	__SHMPOOL_ATOMIC(uint32_t) owner;	/* attachment id; 0: free entry */
	__SHMPOOL_ATOMIC(uint32_t) state;	/* __SHMPOOL_MSG_* */
	uint64_t off;				/* the block (header) */
};

#define SHMPOOL_MSG_NONBLOCK	(1U << 0)	/* -EAGAIN instead of waiting */

/*
 * Allocate a @len-byte message (16-byte aligned) from @r's heap; *@ptr to
 * fill. -ENOMEM once reclaiming dead processes' loans did not help either.
 */
int shmpool_msg_loan(struct shmpool_ring *r, size_t len, void **ptr,
		     struct shmpool_msg *m);
/*
 * Enqueue @m on @r, waiting for room until @deadline (NULL: no limit) unless
 * SHMPOOL_MSG_NONBLOCK; 0, -EAGAIN, -ETIMEDOUT, -EPIPE, -ECONNRESET, -EINTR,
 * -EUCLEAN (the ring's shared state is inconsistent).
 */
int shmpool_msg_publish(struct shmpool_ring *r, const struct shmpool_msg *m,
			unsigned int flags, const struct timespec *deadline);
/*
 * Dequeue a message into *@m and point *@ptr at its payload; 0, -EAGAIN,
 * -ETIMEDOUT, -EPIPE (producers shut down, ring empty), -ECONNRESET, -EINTR,
 * -EUCLEAN (a descriptor that names no message block of its length, or a
 * block another live process holds, or an inconsistent ring).
 */
int shmpool_msg_receive(struct shmpool_ring *r, struct shmpool_msg *m,
			const void **ptr, unsigned int flags,
			const struct timespec *deadline);
/* Free a received (or unpublished) message's block; -EINVAL if it is not one. */
int shmpool_msg_release(struct shmpool_ring *r, const struct shmpool_msg *m);
/*
 * Free the blocks that processes now dead had loaned and not published, or
 * received and not released (also those killed in the receive once the
 * descriptor had left the ring); returns how many, or -EINVAL.
 */
int shmpool_msg_reclaim(struct shmpool_ring *r);

/**
 * struct shmpool_ring_info - what shmpool_ring_inspect() reports
 * @type: SHMPOOL_RING_SPSC, _MPMC or _VAR
 * @flags: creation flags (SHMPOOL_RING_SP, _SC)
 * @esize: element size (VAR: 8)
 * @count: slots (VAR: bytes)
 * @version: the ring's layout version
 * @used: elements in the ring (VAR: bytes); MPMC counts reserved slots
 * @produced: the producers' index (wraps at 2^32)
 * @consumed: the consumers' index
 * @shut: SHMPOOL_RING_PROD and/or _CONS once shut down
 * @cons_sleeping: 1 if a consumer announced a sleep that no signal has
 *	answered yet (it may have left without sleeping)
 * @prod_sleeping: the same for producers
 * @cons_wakes: signals that found a consumer announced (31 bits, wrapping)
 * @prod_wakes: the same for producers
 */
struct shmpool_ring_info {
	uint32_t type;
	uint32_t flags;
	uint32_t esize;
	uint32_t count;
	uint32_t version;
	uint32_t used;
	uint32_t produced;
	uint32_t consumed;
	uint32_t shut;
	uint32_t cons_sleeping;
	uint32_t prod_sleeping;
	uint32_t cons_wakes;
	uint32_t prod_wakes;
};

/*
 * Describe the ring at pool offset @off (a named object's offset) without a
 * handle and without writing: @p may be SHMPOOL_RDONLY. A snapshot, exact
 * only while nobody moves elements. -EPROTOTYPE: no ring there;
 * -EPROTONOSUPPORT: another layout version (@version set); -EINVAL.
 */
int shmpool_ring_inspect(struct shmpool *p, uint64_t off,
			 struct shmpool_ring_info *ri);

#ifdef __cplusplus
}
#endif

#endif /* SHMPOOL_RING_H */
