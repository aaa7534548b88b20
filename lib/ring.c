// SPDX-License-Identifier: MIT
/*
 * Rings in pool memory (include/shmpool_ring.h): creation and lookup by
 * name through the heap's object directory, the blocking paths, shutdown.
 * The non-blocking enqueue/dequeue paths are inline in the header.
 *
 * Blocking is the event-count pattern of shmpool_sync.h: spin a little on the
 * non-blocking call, then announce the sleep (shmpool_event_prepare_wait(),
 * fence W), try once more, and sleep on the event word only if that failed
 * too. The other side's successful call signals after its release store
 * (fence S), so a sleep is never lost. Processes registered for
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED signal with a compiler barrier only; the
 * sleeper's membarrier() supplies their half of the pairing (see
 * __shmpool_ring_signal() in the header).
 */
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "shmpool_ring.h"

/* non-blocking tries before announcing a sleep */
#define SPIN_TRIES	200
/* how long an opener waits for a creator still setting a ring up */
#define OPEN_WAIT_MS	10000

static atomic_uint_fast64_t wake_calls;

SHMPOOL_EXPORT atomic_int __shmpool_ring_asym;

static pthread_once_t asym_once = PTHREAD_ONCE_INIT;

static int membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0) ? -errno : 0;
}

/*
 * Register for the sleepers' membarrier(). Whether a child inherits the
 * registration is the kernel's business; registering again is cheap and
 * certain. A failure leaves this process on full fences.
 */
static void asym_register(void)
{
	atomic_store_explicit(&__shmpool_ring_asym,
			      !membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED),
			      memory_order_relaxed);
}

static void asym_child(void)
{
	if (atomic_load_explicit(&__shmpool_ring_asym, memory_order_relaxed))
		asym_register();
}

/*
 * This process's handles, so that a fork() child forgets the sides its
 * parent recorded on them: the child's first call on a side, blocking or
 * not, records the child. Otherwise a child working a side through an
 * inherited handle would be known by its parent's id, and taken for dead
 * once the parent exits (and an MPMC child would share its parent's
 * record of reserved slots).
 */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shmpool_ring *handles;
/*
 * Serialises the stashes of all handles (a handle may be shared by the
 * threads of a side): taken only by blocking calls that recover a dead
 * peer's slots or hand out what that left in a stash.
 */
static pthread_mutex_t stash_lock = PTHREAD_MUTEX_INITIALIZER;

static void handles_add(struct shmpool_ring *r)
{
	pthread_mutex_lock(&handles_lock);
	r->fork_next = handles;
	if (handles)
		handles->fork_prev = r;
	handles = r;
	pthread_mutex_unlock(&handles_lock);
}

static void handles_del(struct shmpool_ring *r)
{
	pthread_mutex_lock(&handles_lock);
	if (r->fork_prev)
		r->fork_prev->fork_next = r->fork_next;
	else
		handles = r->fork_next;
	if (r->fork_next)
		r->fork_next->fork_prev = r->fork_prev;
	pthread_mutex_unlock(&handles_lock);
}

/*
 * fork(): handles_lock, then stash_lock (under which the dead peers' slots
 * are taken: liveness checks, and __shmpool_self()'s reattach_lock).
 *
 * In the child: no side recorded, no id known; SPSC also no room and
 * nothing known to be there, so that the first call on each side takes
 * the slow branch that records it: our copies moved back by more than a
 * lap (the fast paths take a distance above the count as "ask again").
 * No shared memory is read here: a handle may outlive its pool's mapping.
 */
void __shmpool_ring_atfork(enum __shmpool_fork_stage stage)
{
	struct shmpool_ring *r;

	if (stage == __SHMPOOL_FORK_PREPARE) {
		pthread_mutex_lock(&handles_lock);
		pthread_mutex_lock(&stash_lock);
		return;
	}
	if (stage == __SHMPOOL_FORK_CHILD) {
		asym_child();
		for (r = handles; r; r = r->fork_next) {
			r->claimed = 0;
			r->self = 0;
			r->untracked = 0;	/* the parent's count, not ours */
			r->stashed = 0;		/* the parent's elements, not ours */
			r->rec[0] = NULL;
			r->rec[1] = NULL;
			if (r->type == SHMPOOL_RING_SPSC) {
				r->prod_lim -= r->count + 1;
				r->prod_cache -= r->count + 1;
			}
		}
	}
	pthread_mutex_unlock(&stash_lock);
	pthread_mutex_unlock(&handles_lock);
}

SHMPOOL_EXPORT
uint64_t shmpool_ring_wake_calls(void)
{
	return atomic_load_explicit(&wake_calls, memory_order_relaxed);
}

SHMPOOL_EXPORT
int __shmpool_ring_wake(struct shmpool_ring *r, struct shmpool_event *ev)
{
	atomic_fetch_add_explicit(&wake_calls, 1, memory_order_relaxed);
	return shmpool_event_wake(r->heap->pool, ev);
}

SHMPOOL_EXPORT
void __shmpool_ring_yield(void)
{
	sched_yield();
}

static int is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static int check_params(uint32_t type, uint32_t count, uint32_t esize,
			unsigned int flags)
{
	switch (type) {
	case SHMPOOL_RING_SPSC:
		if (flags)
			return -EINVAL;
		break;
	case SHMPOOL_RING_MPMC:
		if (flags & ~(SHMPOOL_RING_SP | SHMPOOL_RING_SC))
			return -EINVAL;
		break;
	case SHMPOOL_RING_VAR:
		/* byte ring: @count bytes, records of 8-byte units */
		if (flags || esize != 8 || count < 64)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if (count < 2 || count > SHMPOOL_RING_MAX_COUNT || !is_pow2(count))
		return -EINVAL;
	if (!esize || esize % 4 || esize > SHMPOOL_RING_MAX_ESIZE)
		return -EINVAL;
	return 0;
}

/* MPMC: the element's place in its slot, after the word (8-byte aligned if it can be) */
static uint32_t slot_doff(uint32_t esize)
{
	return esize % 8 ? 4 : 8;
}

/* SPSC: elements per group (see "Element slots" in shmpool_ring.h) */
static uint32_t group_elems(uint32_t type, uint32_t esize)
{
	if (type != SHMPOOL_RING_SPSC || esize > 56)
		return 1;
	return 56 / esize;	/* and the two words in the line's last 8 bytes */
}

/*
 * Bytes per SPSC group or MPMC slot. SPSC: a cache line if the element
 * leaves room for the two words, else element and words rounded up to 8
 * bytes.
 * MPMC: word and element, rounded up to a power of two up to a cache line
 * (a slot never straddles one), to 8 bytes beyond. VAR rings are bytes.
 */
static uint32_t slot_stride(uint32_t type, uint32_t esize)
{
	uint32_t s = slot_doff(esize) + esize, p = 8;

	if (type == SHMPOOL_RING_VAR)
		return 1;
	if (type == SHMPOOL_RING_SPSC)
		return esize <= 56 ? 64 : (esize + 8 + 7) & ~7U;
	if (s > 64)
		return (s + 7) & ~7U;
	while (p < s)
		p <<= 1;
	return p;
}

/* a message ring (16-byte elements) carries a loan table after its slots */
static bool has_loans(uint32_t type, uint32_t esize)
{
	return type != SHMPOOL_RING_VAR && esize == sizeof(struct shmpool_msg);
}

static uint64_t loans_off(uint32_t type, uint32_t count, uint32_t esize)
{
	uint32_t per = group_elems(type, esize);

	return (sizeof(struct __shmpool_ring_hdr) +
		(uint64_t)((count + per - 1) / per) * slot_stride(type, esize) + 63) &
	       ~(uint64_t)63;
}

static uint64_t ring_bytes(uint32_t type, uint32_t count, uint32_t esize)
{
	return loans_off(type, count, esize) +
	       (has_loans(type, esize) ?
		__SHMPOOL_MSG_LOANS * sizeof(struct __shmpool_msg_loan) : 0);
}

/* one read of a shared description field (a peer may write it meanwhile) */
#define RD(f)	__atomic_load_n(&(f), __ATOMIC_RELAXED)

/* not a cancellation point (shmpool.h), as nanosleep() would be */
static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	int cs;

	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
	while (nanosleep(&ts, &ts))
		;
	pthread_setcancelstate(cs, NULL);
}

/* the shared description as one attach() read it */
struct desc {
	uint32_t type, flags, esize, count, mask, max_rec, version, stride,
		 per_group;
};

/*
 * Read the geometry once (relaxed loads: a peer may write the shared copy
 * at any time; what attach() checked is what the handle keeps, and the
 * other calls use only the handle's copy).
 */
static void read_desc(const struct __shmpool_ring_hdr *hdr, struct desc *d)
{
	d->type = RD(hdr->d.type);
	d->flags = RD(hdr->d.flags);
	d->esize = RD(hdr->d.esize);
	d->count = RD(hdr->d.count);
	d->mask = RD(hdr->d.mask);
	d->max_rec = RD(hdr->d.max_rec);
	d->version = RD(hdr->d.version);
	d->stride = RD(hdr->d.stride);
	d->per_group = RD(hdr->d.per_group);
}

/*
 * Make a handle for the ring object @obj once its creator has published it:
 * @exact 0 means any count and flags. Waits for @magic (acquire: pairs with
 * the creator's release store, so the description and the initial slot
 * words are complete when we see it). A ring of another layout version is
 * -EPROTONOSUPPORT.
 */
static int attach(struct shmpool_heap *h, const struct shmpool_obj *obj,
		  uint32_t type, uint32_t esize, uint32_t count,
		  unsigned int flags, int exact, struct shmpool_ring **out)
{
	struct __shmpool_ring_hdr *hdr;
	struct shmpool_ring *r;
	struct desc d;
	long waited = 0;
	uint32_t max_rec;

	if (obj->size < sizeof(*hdr))
		return exact ? -EEXIST : -EPROTOTYPE;
	hdr = shmpool_heap_ptr(h, obj->off, obj->size);
	if (!hdr)
		return -EUCLEAN;
	while (atomic_load_explicit(&hdr->d.magic, memory_order_acquire) !=
	       __SHMPOOL_RING_MAGIC) {
		if (waited >= OPEN_WAIT_MS)
			return -ETIMEDOUT;
		sleep_ms(1);
		waited++;
	}
	read_desc(hdr, &d);
	/* another layout: its fields below may mean something else */
	if (d.version != __SHMPOOL_RING_VERSION)
		return -EPROTONOSUPPORT;
	if (d.type != type || d.esize != esize)
		return exact ? -EEXIST : -EPROTOTYPE;
	if (exact && (d.count != count || d.flags != flags))
		return -EEXIST;
	/* the description is untrusted: it must describe this object */
	max_rec = d.type == SHMPOOL_RING_VAR ? d.count / 2 - 8 : 0;
	if (check_params(d.type, d.count, d.esize, d.flags) ||
	    d.mask != d.count - 1 || d.max_rec != max_rec ||
	    d.stride != slot_stride(d.type, d.esize) ||
	    d.per_group != group_elems(d.type, d.esize) ||
	    ring_bytes(d.type, d.count, d.esize) > obj->size)
		return -EUCLEAN;
	pthread_once(&asym_once, asym_register);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->heap = h;
	r->off = obj->off;
	r->hdr = hdr;
	r->slots = (unsigned char *)hdr + sizeof(*hdr);
	r->type = d.type;
	r->flags = d.flags;
	r->esize = d.esize;
	r->count = d.count;
	r->mask = d.mask;
	r->max_rec = max_rec;
	r->stride = d.stride;
	r->doff = slot_doff(r->esize);
	r->per_group = d.per_group;
	/* our id now, so that a first call on a side makes no syscall */
	if (__shmpool_self(h->pool, &r->self))
		r->self = 0;
	if (has_loans(r->type, r->esize))
		r->loans = (struct __shmpool_msg_loan *)(void *)((unsigned char *)hdr +
			loans_off(r->type, r->count, r->esize));
	/*
	 * Acquire: pairs with the other side's release stores of its index,
	 * so that a handle taking over one side may trust its copy at once
	 * (SPSC, VAR; MPMC handles do not use them).
	 */
	r->cons_cache = atomic_load_explicit(&hdr->cons.tail, memory_order_acquire);
	r->prod_cache = atomic_load_explicit(&hdr->prod.tail, memory_order_acquire);
	/*
	 * SPSC: no room and nothing known to be there, so that the first
	 * call on either side (which records the owner first,
	 * __SHMPOOL_RING_CLAIM) takes the slow branch and reads the words.
	 * VAR uses prod_cache as is.
	 */
	r->prod_lim = r->prod_cache;
	if (r->type == SHMPOOL_RING_SPSC)
		r->prod_cache = r->cons_cache;
	handles_add(r);
	*out = r;
	return 0;
}

SHMPOOL_EXPORT
int shmpool_ring_create(struct shmpool_heap *h, const char *name,
			uint32_t type, uint32_t count, uint32_t esize,
			unsigned int flags, struct shmpool_ring **out)
{
	struct __shmpool_ring_hdr *hdr;
	struct shmpool_obj obj;
	unsigned char *slots;
	int ret, created;
	uint32_t i, stride = slot_stride(type, esize);

	if (!h || !name || !out)
		return -EINVAL;
	ret = check_params(type, count, esize, flags);
	if (ret)
		return ret;
	created = shmpool_obj_create(h, name, ring_bytes(type, count, esize),
				     __SHMPOOL_RING_LINE, &obj);
	if (created < 0)
		return created;
	if (created) {
		hdr = shmpool_heap_ptr(h, obj.off, obj.size);
		if (!hdr)
			return -EUCLEAN;
		/* the object is zeroed: indices, events and shutdown start at 0 */
		hdr->d.type = type;
		hdr->d.flags = flags;
		hdr->d.esize = esize;
		hdr->d.count = count;
		hdr->d.mask = count - 1;
		/* VAR: a record and its 8-byte length take at most half the ring */
		hdr->d.max_rec = type == SHMPOOL_RING_VAR ? count / 2 - 8 : 0;
		hdr->d.version = __SHMPOOL_RING_VERSION;
		hdr->d.stride = stride;
		hdr->d.per_group = group_elems(type, esize);
		/*
		 * MPMC slot i starts free for index i (its word holds i); SPSC
		 * words start at 0 (nothing written, all free), which the
		 * zeroed object already is.
		 */
		slots = (unsigned char *)hdr + sizeof(*hdr);
		for (i = 0; type == SHMPOOL_RING_MPMC && i < count; i++)
			atomic_store_explicit((_Atomic uint32_t *)(void *)
					      (slots + (size_t)i * stride), i,
					      memory_order_relaxed);
		/* Release: pairs with the acquire in attach(). */
		atomic_store_explicit(&hdr->d.magic, __SHMPOOL_RING_MAGIC,
				      memory_order_release);
	}
	ret = attach(h, &obj, type, esize, count, flags, 1, out);
	return ret ? ret : created;
}

SHMPOOL_EXPORT
int shmpool_ring_open(struct shmpool_heap *h, const char *name,
		      uint32_t type, uint32_t esize, struct shmpool_ring **out)
{
	struct shmpool_obj obj;
	int ret;

	if (!h || !name || !out || !type || type > SHMPOOL_RING_VAR || !esize)
		return -EINVAL;
	ret = shmpool_obj_find(h, name, &obj);
	if (ret)
		return ret;
	return attach(h, &obj, type, esize, 0, 0, 0, out);
}

/* ---- owners (shmpool_ring.h, "Owner death") ------------------------------------ */

static struct __shmpool_ring_ht *side_ht(const struct shmpool_ring *r,
					 unsigned int side)
{
	return side == SHMPOOL_RING_PROD ? &r->hdr->prod : &r->hdr->cons;
}

static _Atomic uint32_t *mpmc_word(const struct shmpool_ring *r, uint32_t idx)
{
	return (_Atomic uint32_t *)(void *)(r->slots +
					    (size_t)(idx & r->mask) * r->stride);
}

static bool alive(const struct shmpool_ring *r, uint32_t id)
{
	return __shmpool_alive(r->heap->pool, id);
}

/*
 * MPMC: is a slot of [@start, @start + @len) on @side still held: reserved
 * (behind the side's head) and not yet published (producer: the word is
 * still the index) or freed (consumer: index + 1)? Bounded by the ring's
 * count; only stable when the record's owner is dead.
 */
static bool rec_pending(const struct shmpool_ring *r, unsigned int side,
			uint32_t start, uint32_t len)
{
	bool cons = side == SHMPOOL_RING_CONS;
	/* acquire: pairs with the release that moved head (see reserve) */
	uint32_t head = atomic_load_explicit(&side_ht(r, side)->head,
					     memory_order_acquire);
	uint32_t k, idx;

	if (len > r->count)
		len = r->count;
	for (k = 0; k < len; k++) {
		idx = start + k;
		if ((int32_t)(head - idx) <= 0)
			break;	/* never reserved: a CAS that failed */
		/* acquire: pairs with the publishing (freeing) release store */
		if (atomic_load_explicit(mpmc_word(r, idx), memory_order_acquire) ==
		    idx + cons)
			return true;
	}
	return false;
}

/*
 * MPMC: does a live record of @side cover index @idx? Read after the
 * side's head and before the slot's word (see stuck()).
 */
static bool live_covers(const struct shmpool_ring *r, unsigned int side,
			uint32_t idx)
{
	struct __shmpool_ring_ht *ht = side_ht(r, side);
	uint32_t i, o;

	/* relaxed: the count only grows while a handle of ours lives */
	if (atomic_load_explicit(&ht->untracked, memory_order_relaxed))
		return true;	/* someone we cannot see may hold it */
	for (i = 0; i < __SHMPOOL_RING_RECS; i++) {
		/*
		 * Acquire: pairs with the release on head that followed the
		 * record's store (reserve), so a record that reserved @idx
		 * is seen, or a later one of the same handle, which it
		 * wrote only after publishing @idx.
		 */
		o = atomic_load_explicit(&ht->rec[i].owner, memory_order_acquire);
		if (!o)
			continue;
		if (idx - atomic_load_explicit(&ht->rec[i].start, memory_order_acquire) <
		    atomic_load_explicit(&ht->rec[i].len, memory_order_acquire) &&
		    alive(r, o))
			return true;
	}
	return false;
}

/*
 * MPMC: is slot @idx of @side held by a handle that died? Order: the
 * side's head (by the caller, acquire), the records (acquire), then the
 * word (acquire). A live handle that reserved @idx wrote its record
 * before the release that moved head, and writes a new one only after it
 * published @idx: so if the word still says "held" after we found no live
 * record covering @idx, no live handle holds it.
 */
static bool stuck(const struct shmpool_ring *r, unsigned int side, uint32_t idx)
{
	uint32_t want = idx + (side == SHMPOOL_RING_CONS);

	if (live_covers(r, side, idx))
		return false;
	return atomic_load_explicit(mpmc_word(r, idx), memory_order_acquire) == want;
}

/* a record we may take: free, or a dead handle's with nothing left held */
static bool rec_free(const struct shmpool_ring *r, unsigned int side,
		     struct __shmpool_ring_rec *rec, uint32_t o)
{
	if (!o)
		return true;
	if (alive(r, o))
		return false;
	return !rec_pending(r, side, atomic_load_explicit(&rec->start, memory_order_acquire),
			    atomic_load_explicit(&rec->len, memory_order_acquire));
}

static void claim_rec(struct shmpool_ring *r, unsigned int side, uint32_t id)
{
	struct __shmpool_ring_ht *ht = side_ht(r, side);
	int c = side == SHMPOOL_RING_CONS;
	struct __shmpool_ring_rec *rec;
	uint32_t i, o;

	/* free records first: a dead owner's costs a look at the process (memfd) */
	for (i = 0; i < 2 * __SHMPOOL_RING_RECS; i++) {
		rec = &ht->rec[i % __SHMPOOL_RING_RECS];
		o = atomic_load_explicit(&rec->owner, memory_order_relaxed);
		if (i < __SHMPOOL_RING_RECS ? o != 0 : !rec_free(r, side, rec, o))
			continue;
		if (atomic_compare_exchange_strong_explicit(&rec->owner, &o, id,
							    memory_order_acq_rel,
							    memory_order_relaxed)) {
			/*
			 * Ours now: forget the dead one's range (it holds
			 * nothing); relaxed, our head release orders it.
			 */
			atomic_store_explicit(&rec->len, 0, memory_order_relaxed);
			r->rec[c] = rec;
			return;
		}
	}
	/* all taken by live handles: ours goes untracked (recovery pauses) */
	atomic_fetch_add_explicit(&ht->untracked, 1, memory_order_relaxed);
	r->untracked |= side;
	r->rec[c] = &r->own[c];
}

static void unclaim(struct shmpool_ring *r, unsigned int side)
{
	struct __shmpool_ring_ht *ht = side_ht(r, side);
	int c = side == SHMPOOL_RING_CONS;
	uint32_t id = r->self;

	if (!(r->claimed & side))
		return;
	if (r->type != SHMPOOL_RING_MPMC) {
		/* still ours? then the side has no owner now */
		atomic_compare_exchange_strong_explicit(&ht->owner, &id, 0,
							memory_order_release,
							memory_order_relaxed);
	} else if (r->untracked & side) {
		atomic_fetch_sub_explicit(&ht->untracked, 1, memory_order_relaxed);
		r->untracked &= ~side;
	} else if (r->rec[c]) {
		/* release: our slots are all published (freed) by now */
		atomic_store_explicit(&r->rec[c]->owner, 0, memory_order_release);
	}
	r->rec[c] = NULL;
	r->claimed &= ~side;
}

/*
 * SPSC: the end of what the P words show written from index @from on.
 * A producer stores each group's word before prod.tail, so one killed
 * between the two leaves elements that a one-element dequeue finds (by
 * the word) and prod.tail does not count. The producer writes in order:
 * a word w ahead of @from says [@from, w) is written, and w's group (or
 * the next, if w starts one) says how far on. Bounded by the groups; a
 * word more than the ring ahead of @from is not believed.
 */
static uint32_t spsc_words_end(const struct shmpool_ring *r, uint32_t from)
{
	uint32_t h = from, w, k, groups = r->count / r->per_group + 1;

	for (k = 0; k <= groups; k++) {
		/* acquire: pairs with the P word's release in spsc_fill_g() */
		w = __shmpool_spsc_seen(r, h, 0);
		if ((int32_t)(w - h) <= 0 || w - from > r->count)
			break;
		h = w;
	}
	return h;
}

/*
 * SPSC producer side, on changing hands: count what the last producer's
 * words published and prod.tail does not, so that the new producer
 * writes after it (not over elements a consumer may have read already,
 * whose slots it would fill with elements nobody reads).
 */
static void spsc_adopt(struct shmpool_ring *r)
{
	uint32_t t = atomic_load_explicit(&r->hdr->prod.tail, memory_order_relaxed);
	uint32_t e = spsc_words_end(r, t);

	/*
	 * Release: pairs with the consumers' acquire of prod.tail; the
	 * elements were published to us by the words' acquire above.
	 */
	if (e != t)
		atomic_store_explicit(&r->hdr->prod.tail, e, memory_order_release);
}

/*
 * A handle that works @side again after another handle did (a takeover,
 * or another handle's first call) starts from the shared indices, as a
 * new handle does (attach()): what it kept of them is from before.
 */
static void side_restart(struct shmpool_ring *r, unsigned int side)
{
	if (side == SHMPOOL_RING_PROD) {
		/* acquire: pairs with the consumer's release of cons.tail */
		r->cons_cache = atomic_load_explicit(&r->hdr->cons.tail, memory_order_acquire);
		r->prod_lim = atomic_load_explicit(&r->hdr->prod.tail, memory_order_relaxed);
		r->var_resv = 0;
	} else {
		r->prod_cache = atomic_load_explicit(&r->hdr->cons.tail, memory_order_relaxed);
		r->var_peek = 0;
	}
}

/*
 * Record @r on @side as attachment @id. The fast path's first call on a
 * side passes the id learnt at open (no syscall there); blocking calls and
 * takeover pass __shmpool_self()'s, which differs in a fork() child. SPSC,
 * VAR: also a handle that recorded itself before, when another handle
 * has recorded itself since (the side's owner is the process whose handle
 * last worked it: a handle that was one of two in turn, the other killed,
 * must not leave the side a dead one's for good).
 */
static void claim_as(struct shmpool_ring *r, unsigned int side, uint32_t id)
{
	_Atomic uint32_t *owner = &side_ht(r, side)->owner;
	bool again = r->claimed & side;

	/* relaxed: the fast path's test; the store below is what publishes */
	if (again && id == r->self &&
	    (r->type == SHMPOOL_RING_MPMC ||
	     atomic_load_explicit(owner, memory_order_relaxed) == id))
		return;
	if (again && id != r->self) {
		/* a fork() child: the records are the parent's, leave them */
		r->rec[side == SHMPOOL_RING_CONS] = NULL;
		r->untracked &= ~side;
	}
	r->self = id;
	r->claimed |= side;
	if (r->type == SHMPOOL_RING_MPMC) {
		claim_rec(r, side, id);
		return;
	}
	/* release: pairs with the acquire in peer_dead() */
	atomic_store_explicit(owner, id, memory_order_release);
	if (r->type == SHMPOOL_RING_SPSC && side == SHMPOOL_RING_PROD)
		spsc_adopt(r);
	if (again)
		side_restart(r, side);
}

/* from the inline fast paths, once per handle and side */
SHMPOOL_EXPORT
void __shmpool_ring_claim(struct shmpool_ring *r, unsigned int side)
{
	uint32_t id = r->self;

	if (!id && __shmpool_self(r->heap->pool, &id)) {
		r->claimed |= side;	/* no id: never ask again on the fast path */
		return;
	}
	claim_as(r, side, id);
}

/* from the slow paths: this process's id as it is now (fork()) */
static void claim_now(struct shmpool_ring *r, unsigned int side)
{
	uint32_t id;

	if (__shmpool_self(r->heap->pool, &id))
		return;
	claim_as(r, side, id);
}

/*
 * Is @side (the one a blocked caller waits for) dead: SPSC, VAR its owner's
 * attachment ended; MPMC every recorded handle's did (and none is
 * untracked)? A side nobody ever worked, or whose handles were closed, is
 * not dead: a blocked call waits for a new one.
 */
/*
 * Is @o, just read from @owner, a dead owner? Its attachment ended, and
 * @owner still names it: a handle clears its owner field when it closes,
 * before its process can end, so a field cleared (or taken) meanwhile was
 * a clean close, not a death. Without that second look, a handle that
 * closed and exited between our load and alive() passed for dead.
 */
static bool owner_dead(const struct shmpool_ring *r, _Atomic uint32_t *owner,
		       uint32_t o)
{
	if (!o || alive(r, o))
		return false;
	/* acquire: pairs with the release that cleared it in unclaim() */
	return atomic_load_explicit(owner, memory_order_acquire) == o;
}

static bool peer_dead(const struct shmpool_ring *r, unsigned int side)
{
	struct __shmpool_ring_ht *ht = side_ht(r, side);
	uint32_t i, o, seen = 0;

	if (r->type != SHMPOOL_RING_MPMC) {
		/* acquire: pairs with the release in __shmpool_ring_claim() */
		o = atomic_load_explicit(&ht->owner, memory_order_acquire);
		return owner_dead(r, &ht->owner, o);
	}
	if (atomic_load_explicit(&ht->untracked, memory_order_relaxed))
		return false;
	for (i = 0; i < __SHMPOOL_RING_RECS; i++) {
		o = atomic_load_explicit(&ht->rec[i].owner, memory_order_acquire);
		if (!o)
			continue;
		if (!owner_dead(r, &ht->rec[i].owner, o))
			return false;
		seen++;
	}
	return seen;
}

/*
 * MPMC: is the unpublished slot @idx a hole that a dead producer left?
 * stuck() finds no live record covering it, but a handle shared by
 * threads records only its latest reservation: a slot that one thread
 * reserved before another thread's reservation is covered by no record
 * while the first still writes it. So it is a dead one's only if a dead
 * handle's record covers it, or no live handle reserved past it (a live
 * handle that could hold it did). Bounded by the records.
 */
static bool prod_hole(const struct shmpool_ring *r, uint32_t idx)
{
	struct __shmpool_ring_ht *ht = &r->hdr->prod;
	uint32_t i, o, start, len;
	bool live_past = false;

	if (!stuck(r, SHMPOOL_RING_PROD, idx))
		return false;
	for (i = 0; i < __SHMPOOL_RING_RECS; i++) {
		/* acquire: as in live_covers() */
		o = atomic_load_explicit(&ht->rec[i].owner, memory_order_acquire);
		if (!o)
			continue;
		start = atomic_load_explicit(&ht->rec[i].start, memory_order_acquire);
		len = atomic_load_explicit(&ht->rec[i].len, memory_order_acquire);
		if (alive(r, o)) {
			live_past |= (int32_t)(start - idx) > 0;
			continue;
		}
		/* still the dead one's range: a new handle takes a record by its owner */
		if (idx - start < len && owner_dead(r, &ht->rec[i].owner, o))
			return true;
	}
	return !live_past;
}

/*
 * MPMC consumer: skip the slots at cons.head that a dead producer reserved
 * and never published; the consumers' head CAS decides who skips each.
 * Returns how many were skipped.
 */
static uint32_t skip_dead_producers(struct shmpool_ring *r)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t c, p, n = 0, tries = 4 * r->count + 1024;

	/* bounded: a head that keeps moving under us is other consumers' (or garbage) */
	while (n < r->count && tries--) {
		/* acquire: pairs with the producers' release on head */
		c = atomic_load_explicit(&h->cons.head, memory_order_acquire);
		p = atomic_load_explicit(&h->prod.head, memory_order_acquire);
		if ((int32_t)(p - c) <= 0 || !prod_hole(r, c))
			break;
		/* the slot is ours to skip if we win it from the other consumers */
		if (!atomic_compare_exchange_strong_explicit(&h->cons.head, &c, c + 1,
							     memory_order_acq_rel,
							     memory_order_relaxed))
			continue;
		/*
		 * Free it for the next lap (release: pairs with a producer's
		 * acquire of the word in __shmpool_mpmc_ready()).
		 */
		atomic_store_explicit(mpmc_word(r, c), c + r->count, memory_order_release);
		n++;
	}
	if (n)
		__shmpool_ring_signal(r, &h->ev.space);
	return n;
}

/*
 * MPMC consumer: deliver into @objs (up to @n) the elements of slots that
 * a dead consumer reserved and never freed. Each is copied, then won by a
 * CAS on its word against other consumers doing the same. With @look
 * (msg.c), each copy is looked at before that CAS, and one that @look
 * leaves to another consumer is not taken. Returns how many.
 */
static uint32_t take_dead_consumers(struct shmpool_ring *r, void *objs, uint32_t n,
				    __shmpool_ring_look_fn *look, void *arg)
{
	struct __shmpool_ring_ht *ht = &r->hdr->cons;
	unsigned char *d = objs;
	uint32_t i, k, o, start, len, idx, w, got = 0;

	for (i = 0; i < __SHMPOOL_RING_RECS && got < n; i++) {
		o = atomic_load_explicit(&ht->rec[i].owner, memory_order_acquire);
		if (!o || alive(r, o))
			continue;
		start = atomic_load_explicit(&ht->rec[i].start, memory_order_acquire);
		len = atomic_load_explicit(&ht->rec[i].len, memory_order_acquire);
		if (len > r->count)
			len = r->count;
		for (k = 0; k < len && got < n; k++) {
			idx = start + k;
			/*
			 * Acquire: pairs with the consumers' release on head.
			 * A held slot is behind head by 1 to count (no
			 * consumer gets a lap past it): anything else is a
			 * record a peer damaged, and a word that does not
			 * say "full" needs no look at the records.
			 */
			if (atomic_load_explicit(&ht->head, memory_order_acquire) - idx - 1 >=
			    r->count ||
			    atomic_load_explicit(mpmc_word(r, idx), memory_order_relaxed) !=
			    idx + 1 || !stuck(r, SHMPOOL_RING_CONS, idx))
				continue;
			memcpy(d + (size_t)got * r->esize,
			       r->slots + (size_t)(idx & r->mask) * r->stride + r->doff,
			       r->esize);
			/* before the slot leaves the ring: see __shmpool_ring_dequeue_with() */
			if (look && !look(r, d + (size_t)got * r->esize, idx, false, arg))
				continue;
			w = idx + 1;
			/*
			 * Release: our copy before a producer overwrites the
			 * slot (as __shmpool_mpmc_drain()'s store).
			 */
			if (atomic_compare_exchange_strong_explicit(
					mpmc_word(r, idx), &w, idx + r->count,
					memory_order_acq_rel, memory_order_relaxed))
				got++;
		}
	}
	if (got)
		__shmpool_ring_signal(r, &r->hdr->ev.space);
	return got;
}

SHMPOOL_EXPORT
int shmpool_ring_takeover(struct shmpool_ring *r, unsigned int side)
{
	struct __shmpool_ring_ht *ht;
	uint32_t id, o;
	int ret, tries;

	if (!r || (side != SHMPOOL_RING_PROD && side != SHMPOOL_RING_CONS))
		return -EINVAL;
	ret = __shmpool_self(r->heap->pool, &id);
	if (ret)
		return ret;
	ht = side_ht(r, side);
	if (r->type == SHMPOOL_RING_MPMC) {
		ret = peer_dead(r, side);
		claim_now(r, side);
		if (side == SHMPOOL_RING_CONS)
			skip_dead_producers(r);
		return ret;
	}
	/* acquire: pairs with the release in __shmpool_ring_claim() */
	o = atomic_load_explicit(&ht->owner, memory_order_acquire);
	tries = 0;
	do {
		/* a live owner, or one that keeps changing (bounded: a peer may write it) */
		if ((o && o != id && alive(r, o)) || tries++ == __SHMPOOL_CAS_TRIES)
			return -EBUSY;
	} while (!atomic_compare_exchange_weak_explicit(&ht->owner, &o, id,
							memory_order_acq_rel,
							memory_order_acquire));
	r->self = id;
	r->claimed |= side;
	if (r->type == SHMPOOL_RING_SPSC && side == SHMPOOL_RING_PROD)
		spsc_adopt(r);
	side_restart(r, side);
	return o && o != id;
}

SHMPOOL_EXPORT
void shmpool_ring_close(struct shmpool_ring *r)
{
	if (!r)
		return;
	unclaim(r, SHMPOOL_RING_PROD);
	unclaim(r, SHMPOOL_RING_CONS);
	handles_del(r);
	free(r->stash);
	free(r);
}

SHMPOOL_EXPORT
int shmpool_ring_shutdown(struct shmpool_ring *r, unsigned int ends)
{
	int ret;

	if (!r || !ends || (ends & ~(SHMPOOL_RING_PROD | SHMPOOL_RING_CONS)))
		return -EINVAL;
	/*
	 * seq_cst RMW: a sleeper checks @shut after its fence W, so either it
	 * sees the bit, or the wake below finds its NEED_WAKEUP (same Dekker
	 * pairing as an index move and its signal).
	 */
	atomic_fetch_or_explicit(&r->hdr->ev.shut, ends, memory_order_seq_cst);
	atomic_fetch_add_explicit(&wake_calls, 2, memory_order_relaxed);
	ret = shmpool_event_wake(r->heap->pool, &r->hdr->ev.data);
	if (ret >= 0)
		ret = shmpool_event_wake(r->heap->pool, &r->hdr->ev.space);
	return ret < 0 ? ret : 0;
}

/*
 * SPSC consumer whose producer died: what its words published counts,
 * as for a one-element dequeue (the burst path counts by prod.tail).
 */
static void spsc_consumer_catch_up(struct shmpool_ring *r)
{
	uint32_t t = atomic_load_explicit(&r->hdr->cons.tail, memory_order_relaxed);
	uint32_t e = spsc_words_end(r, t);

	if ((int32_t)(e - r->prod_cache) > 0 || r->prod_cache - t > r->count)
		r->prod_cache = e;
}

/*
 * One non-blocking try of the operation a blocking call is doing: > 0 done
 * (the result), 0 nothing possible yet, < 0 an error to return.
 */
typedef int try_fn(struct shmpool_ring *r, void *objs, uint32_t n, int bulk);

static int try_enqueue(struct shmpool_ring *r, void *objs, uint32_t n,
		       int bulk)
{
	return (int)(bulk ? shmpool_ring_enqueue_bulk(r, objs, n) :
			    shmpool_ring_enqueue_burst(r, objs, n));
}

/* how many elements @r's stash holds (relaxed: changed under stash_lock) */
static uint32_t stashed(const struct shmpool_ring *r)
{
	return __atomic_load_n(&r->stashed, __ATOMIC_RELAXED);
}

static void set_stashed(struct shmpool_ring *r, uint32_t n)
{
	__atomic_store_n(&r->stashed, n, __ATOMIC_RELAXED);
}

/*
 * MPMC, with elements in the stash (stash_dead()): hand those out first.
 * A bulk call completes from the ring what the stash lacks, or takes
 * nothing; a burst returns what the stash holds (up to @n). Stash locked.
 */
static int stash_dequeue(struct shmpool_ring *r, void *objs, uint32_t n,
			 int bulk)
{
	unsigned char *d = objs;
	uint32_t s = r->stashed < n ? r->stashed : n;
	size_t es = r->esize;

	if (bulk && s < n &&
	    !shmpool_ring_dequeue_bulk(r, d + (size_t)s * es, n - s))
		return 0;
	memcpy(d, r->stash, (size_t)s * es);
	set_stashed(r, r->stashed - s);
	memmove(r->stash, r->stash + (size_t)s * es, (size_t)r->stashed * es);
	return (int)(bulk ? n : s);
}

static int try_dequeue(struct shmpool_ring *r, void *objs, uint32_t n,
		       int bulk)
{
	int got;

	if (__builtin_expect(stashed(r) != 0, 0)) {
		pthread_mutex_lock(&stash_lock);
		/* another thread of the handle may have emptied it meanwhile */
		got = r->stashed ? stash_dequeue(r, objs, n, bulk) : -1;
		pthread_mutex_unlock(&stash_lock);
		if (got >= 0)
			return got;
	}
	return (int)(bulk ? shmpool_ring_dequeue_bulk(r, objs, n) :
			    shmpool_ring_dequeue_burst(r, objs, n));
}

/* room in the stash for a bulk of @n: false if none can be made; stash locked */
static bool stash_room(struct shmpool_ring *r, uint32_t n)
{
	unsigned char *p;

	if (r->stashed >= n)
		return false;
	if (r->stash_cap < n) {
		p = realloc(r->stash, (size_t)n * r->esize);
		if (!p)
			return false;
		r->stash = p;
		r->stash_cap = n;
	}
	return true;
}

/*
 * MPMC bulk consumer: take what dead consumers hold (at most what a bulk
 * of @n lacks) into the stash. A bulk may need more than they hold, and
 * the producers can refill the ring only once their slots are free: so
 * take them now, and return them with the next elements. How many taken.
 */
static uint32_t stash_dead(struct shmpool_ring *r, uint32_t n)
{
	uint32_t got = 0;

	pthread_mutex_lock(&stash_lock);
	if (stash_room(r, n)) {
		got = take_dead_consumers(r, r->stash + (size_t)r->stashed * r->esize,
					  n - r->stashed, NULL, NULL);
		set_stashed(r, r->stashed + got);
	}
	pthread_mutex_unlock(&stash_lock);
	return got;
}

/*
 * MPMC bulk consumer: a slot that a dead producer reserved and never
 * published, among those a bulk of @n needs but not the first, keeps the
 * bulk from ever completing (skip_dead_producers() skips only the first).
 * Take the elements before it into the stash, so that it comes first.
 * Bounded by @n; how many taken.
 */
static uint32_t stash_before_dead(struct shmpool_ring *r, uint32_t n)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t c, p, k, lim, got = 0;

	pthread_mutex_lock(&stash_lock);
	if (!stash_room(r, n))
		goto out;
	lim = n - r->stashed;
	/* acquire: as in skip_dead_producers() */
	c = atomic_load_explicit(&h->cons.head, memory_order_acquire);
	p = atomic_load_explicit(&h->prod.head, memory_order_acquire);
	for (k = 1; k < lim && (int32_t)(p - (c + k)) > 0; k++)
		if (prod_hole(r, c + k))
			break;
	if (k == lim || (int32_t)(p - (c + k)) <= 0)
		goto out;
	got = shmpool_ring_dequeue_burst(r, r->stash + (size_t)r->stashed * r->esize, k);
	set_stashed(r, r->stashed + got);
out:
	pthread_mutex_unlock(&stash_lock);
	return got;
}

/* @objs: where to put the payload pointer; @n: the record length */
static int try_reserve(struct shmpool_ring *r, void *objs, uint32_t n,
		       int bulk)
{
	int ret = shmpool_ring_reserve(r, n, objs);

	(void)bulk;
	return ret == -EAGAIN ? 0 : ret ? ret : 1;
}

static int try_peek(struct shmpool_ring *r, void *objs, uint32_t n, int bulk)
{
	int ret = shmpool_ring_peek(r, objs);

	(void)n;
	(void)bulk;
	return ret == -EAGAIN ? 0 : ret;
}

/* a receive of __shmpool_ring_dequeue_wait_with(): where to, and its look */
struct look_with {
	void *obj;
	__shmpool_ring_look_fn *look;
	void *arg;
};

/* one element out of its slot: a message descriptor's 16 bytes inline, not a libc call */
static inline void copy_one(const struct shmpool_ring *r, void *dst, const void *src)
{
	if (r->esize == 16)
		memcpy(dst, src, 16);
	else
		memcpy(dst, src, r->esize);
}

/*
 * One element, looked at (@look) between its copy and freeing its slot:
 * the copy is repeated by the drain (16 bytes; nobody else writes a slot
 * that is ours until we free it), so the inline paths stay as they are.
 */
uint32_t __shmpool_ring_dequeue_with(struct shmpool_ring *r, void *obj,
				     __shmpool_ring_look_fn *look, void *arg)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	unsigned char *grp;
	uint32_t tail, w, pos;

	if (r->type == SHMPOOL_RING_MPMC) {
		if (!__shmpool_mpmc_reserve(r, &h->cons.head, 1, 1, 1,
					    !!(r->flags & SHMPOOL_RING_SC), &tail))
			return 0;
		/* the slot is ours (reserved): its word said full (acquire) */
		copy_one(r, obj, r->slots + (size_t)(tail & r->mask) * r->stride + r->doff);
		look(r, obj, tail, false, arg);
		__shmpool_mpmc_drain(r, tail, obj, 1);
		__shmpool_ring_signal(r, &h->ev.space);
		return 1;
	}
	/* SPSC: __shmpool_spsc_dequeue() of one element, see there */
	tail = atomic_load_explicit(&h->cons.tail, memory_order_relaxed);
	if (r->prod_cache - tail > r->count)
		r->prod_cache = tail;
	if (r->prod_cache == tail) {
		__SHMPOOL_RING_CLAIM(r, SHMPOOL_RING_CONS);
		/* acquire: pairs with the producer's release of the P word */
		w = __shmpool_spsc_seen(r, tail, 0);
		if ((int32_t)(w - (tail + 1)) < 0) {
			__shmpool_ring_relax();
			return 0;
		}
		r->prod_cache = w;
	}
	grp = __shmpool_spsc_group(r, tail, r->per_group, r->stride, &pos);
	copy_one(r, obj, grp + (size_t)pos * r->esize);
	look(r, obj, tail, false, arg);
	/* cons.tail and the C word (release; see __shmpool_spsc_drain_g()) */
	__shmpool_spsc_drain(r, tail, obj, 1);
	__shmpool_ring_signal(r, &h->ev.space);
	return 1;
}

/*
 * A try of __shmpool_ring_dequeue_wait_with(). An element a bulk blocking
 * dequeue of this handle stashed left its slot already: looked at as taken.
 */
static int try_dequeue_with(struct shmpool_ring *r, void *objs, uint32_t n,
			    int bulk)
{
	struct look_with *lw = objs;
	int got;

	(void)n;
	(void)bulk;
	if (__builtin_expect(stashed(r) != 0, 0)) {
		pthread_mutex_lock(&stash_lock);
		got = r->stashed ? stash_dequeue(r, lw->obj, 1, 0) : 0;
		pthread_mutex_unlock(&stash_lock);
		if (got) {
			lw->look(r, lw->obj, 0, true, lw->arg);
			return got;
		}
	}
	return (int)__shmpool_ring_dequeue_with(r, lw->obj, lw->look, lw->arg);
}

/*
 * The blocking loop. @ev is the event this side sleeps on, @end the other
 * side's shutdown bit. For a dequeue, shutdown of the producers ends the
 * wait only once the ring is empty: the try comes first.
 */
static int wait_loop(struct shmpool_ring *r, void *objs, uint32_t n,
		     unsigned int flags, const struct timespec *deadline,
		     try_fn *try_op, struct shmpool_event *ev,
		     unsigned int end, int drain)
{
	int bulk = !!(flags & SHMPOOL_RING_BULK);
	int spins = 0, ret, got, sliced;
	unsigned int side = end ^ (SHMPOOL_RING_PROD | SHMPOOL_RING_CONS);
	int64_t evoff = (int64_t)r->off + ((unsigned char *)ev - (unsigned char *)r->hdr);
	struct timespec ts;
	uint32_t key, seq;

	ret = __shmpool_deadline_check(deadline);
	if (ret)
		return ret;
	/* a fork() child's first blocking call records the child */
	claim_now(r, side);
	/* acquire: pairs with the seq_cst RMW in shmpool_ring_shutdown() */
	if (!drain && (atomic_load_explicit(&r->hdr->ev.shut,
					    memory_order_acquire) & end))
		return -EPIPE;
	for (;;) {
		got = try_op(r, objs, n, bulk);
		if (got)
			return got;
		/* relaxed: only this process's own calls set it */
		if (atomic_load_explicit(&r->bad, memory_order_relaxed))
			return -EUCLEAN;
		/* relaxed: shutdown is re-checked after fence W below */
		if (atomic_load_explicit(&r->hdr->ev.shut, memory_order_relaxed) & end)
			goto shut;
		if (spins++ < SPIN_TRIES) {
			__shmpool_ring_relax();
			continue;
		}
		if (__shmpool_deadline_passed(deadline))
			return -ETIMEDOUT;
		/*
		 * About to sleep: only now look at the peers (include/
		 * shmpool.h, "Attachments": read the death count first, so
		 * that a death after our look ends the sleep). An MPMC
		 * consumer first clears slots that dead peers hold.
		 */
		seq = __shmpool_death_seq(r->heap->pool);
		if (r->type == SHMPOOL_RING_MPMC && side == SHMPOOL_RING_CONS &&
		    try_op == try_dequeue_with) {
			got = (int)take_dead_consumers(r, ((struct look_with *)objs)->obj, 1,
						       ((struct look_with *)objs)->look,
						       ((struct look_with *)objs)->arg);
			if (got)
				return got;
		} else if (r->type == SHMPOOL_RING_MPMC && side == SHMPOOL_RING_CONS &&
			   try_op == try_dequeue) {
			if (!bulk) {
				got = (int)take_dead_consumers(r, objs, n, NULL, NULL);
				if (got)
					return got;
			} else if (stash_dead(r, n) || stash_before_dead(r, n)) {
				spins = 0;	/* the stash may complete the bulk */
				continue;
			}
			if (skip_dead_producers(r)) {
				spins = 0;
				continue;
			}
		}
		if (peer_dead(r, end)) {
			/*
			 * The last elements may have come just before the
			 * death; SPSC: a burst counts by prod.tail, which the
			 * dead producer may not have stored after the words.
			 */
			if (r->type == SHMPOOL_RING_SPSC && side == SHMPOOL_RING_CONS)
				spsc_consumer_catch_up(r);
			got = try_op(r, objs, n, bulk);
			return got ? got : -ECONNRESET;
		}
		key = shmpool_event_prepare_wait(ev);	/* fence W */
		/*
		 * (W), second half: a barrier on every CPU running a process
		 * that signals with a compiler barrier only (see
		 * __shmpool_ring_signal()). If it fails although such
		 * processes may exist, sleep in short slices instead.
		 */
		ret = membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED);
		/* without membarrier() in the kernel nobody could register */
		sliced = ret && ret != -ENOSYS && ret != -EINVAL;
		got = try_op(r, objs, n, bulk);
		if (got)
			return got;
		if (atomic_load_explicit(&r->hdr->ev.shut, memory_order_relaxed) & end)
			goto shut;
		/*
		 * Sleep on the event word (what shmpool_event_timedwait()
		 * does), but also end the sleep when a peer dies.
		 */
		ret = __shmpool_wait_peer(r->heap->pool, evoff, key, seq, sliced ?
				__shmpool_deadline_within(deadline, 1, &ts) : deadline);
		if (ret == -ETIMEDOUT && sliced && !__shmpool_deadline_passed(deadline))
			ret = 0;	/* only the slice ended */
		if (ret == -EOWNERDEAD) {
			/* a peer died (or memfd: a slice ended): look again */
			spins = SPIN_TRIES;
			continue;
		}
		if (ret == -ETIMEDOUT) {
			/* one last look: the deadline and a signal may cross */
			got = try_op(r, objs, n, bulk);
			return got ? got : -ETIMEDOUT;
		}
		if (ret && ret != -EAGAIN)
			return ret;	/* -EINTR and real errors */
		spins = 0;
	}
shut:
	if (!drain)
		return -EPIPE;
	/*
	 * Acquire on @shut, then one more try: elements published before
	 * the producers' shutdown are still delivered (the ring drains).
	 */
	(void)atomic_load_explicit(&r->hdr->ev.shut, memory_order_acquire);
	got = try_op(r, objs, n, bulk);
	return got ? got : -EPIPE;
}

SHMPOOL_EXPORT
int shmpool_ring_enqueue_wait(struct shmpool_ring *r, const void *objs,
			      uint32_t n, unsigned int flags,
			      const struct timespec *deadline)
{
	if (!r || (n && !objs) || (flags & ~SHMPOOL_RING_BULK) ||
	    r->type == SHMPOOL_RING_VAR ||
	    ((flags & SHMPOOL_RING_BULK) && n > r->count))
		return -EINVAL;
	if (!n)
		return 0;
	/* the cast drops const only to share wait_loop(); try_enqueue reads */
	return wait_loop(r, (void *)(uintptr_t)objs, n, flags, deadline,
			 try_enqueue, &r->hdr->ev.space, SHMPOOL_RING_CONS, 0);
}

/* a try of __shmpool_ring_enqueue_wait_with() */
struct try_with {
	uint32_t (*fn)(struct shmpool_ring *r, const void *arg);
	const void *arg;
};

static int try_with(struct shmpool_ring *r, void *objs, uint32_t n, int bulk)
{
	const struct try_with *t = objs;

	(void)n;
	(void)bulk;
	return (int)t->fn(r, t->arg);
}

int __shmpool_ring_enqueue_wait_with(struct shmpool_ring *r,
				     uint32_t (*try_one)(struct shmpool_ring *r,
							 const void *arg),
				     const void *arg,
				     const struct timespec *deadline)
{
	struct try_with t = { try_one, arg };

	if (r->type == SHMPOOL_RING_VAR)
		return -EINVAL;
	return wait_loop(r, &t, 1, 0, deadline, try_with, &r->hdr->ev.space,
			 SHMPOOL_RING_CONS, 0);
}

SHMPOOL_EXPORT
int shmpool_ring_dequeue_wait(struct shmpool_ring *r, void *objs, uint32_t n,
			      unsigned int flags,
			      const struct timespec *deadline)
{
	if (!r || (n && !objs) || (flags & ~SHMPOOL_RING_BULK) ||
	    r->type == SHMPOOL_RING_VAR ||
	    ((flags & SHMPOOL_RING_BULK) && n > r->count))
		return -EINVAL;
	if (!n)
		return 0;
	return wait_loop(r, objs, n, flags, deadline, try_dequeue,
			 &r->hdr->ev.data, SHMPOOL_RING_PROD, 1);
}

int __shmpool_ring_dequeue_wait_with(struct shmpool_ring *r, void *obj,
				     __shmpool_ring_look_fn *look, void *arg,
				     const struct timespec *deadline)
{
	struct look_with lw = { obj, look, arg };

	if (r->type == SHMPOOL_RING_VAR)
		return -EINVAL;
	return wait_loop(r, &lw, 1, 0, deadline, try_dequeue_with, &r->hdr->ev.data,
			 SHMPOOL_RING_PROD, 1);
}

bool __shmpool_ring_consumed(const struct shmpool_ring *r, uint32_t idx)
{
	/*
	 * Acquire: pairs with the consumer's release that freed the slot
	 * (__shmpool_mpmc_drain(), take_dead_consumers()) or counted it
	 * (cons.tail, __shmpool_spsc_drain_g()).
	 */
	if (r->type == SHMPOOL_RING_MPMC)
		return atomic_load_explicit(mpmc_word(r, idx), memory_order_acquire) != idx + 1;
	return idx - atomic_load_explicit(&r->hdr->cons.tail, memory_order_acquire) >=
	       r->count;
}

uint32_t __shmpool_ring_enqueue_with(struct shmpool_ring *r, const void *obj,
				     __shmpool_ring_look_fn *look, void *arg)
{
	struct __shmpool_ring_hdr *h = r->hdr;
	uint32_t idx, room;

	if (r->type == SHMPOOL_RING_MPMC) {
		if (!__shmpool_mpmc_reserve(r, &h->prod.head, 1, 1, 0,
					    !!(r->flags & SHMPOOL_RING_SP), &idx))
			return 0;
		look(r, obj, idx, false, arg);
		/* the element, then the word that publishes it (release) */
		__shmpool_mpmc_fill(r, idx, obj, 1);
		__shmpool_ring_signal(r, &h->ev.data);
		return 1;
	}
	/* SPSC: __shmpool_spsc_enqueue() of one element, see there */
	idx = atomic_load_explicit(&h->prod.tail, memory_order_relaxed);
	room = r->prod_lim - idx;
	if (!room || room > r->count ||
	    atomic_load_explicit(&h->prod.owner, memory_order_relaxed) != r->self) {
		__SHMPOOL_RING_CLAIM(r, SHMPOOL_RING_PROD);
		idx = atomic_load_explicit(&h->prod.tail, memory_order_relaxed);
		if (!__shmpool_spsc_room(r, idx, 1)) {
			__shmpool_ring_relax();
			return 0;
		}
	}
	look(r, obj, idx, false, arg);
	__shmpool_spsc_fill(r, idx, obj, 1);
	/* release: the slot before prod.tail, as in __shmpool_spsc_enqueue() */
	atomic_store_explicit(&h->prod.tail, idx + 1, memory_order_release);
	__shmpool_ring_signal(r, &h->ev.data);
	return 1;
}

bool __shmpool_ring_queued(const struct shmpool_ring *r, uint32_t idx)
{
	/*
	 * Acquire: pairs with the producer's release that published the
	 * slot (its MPMC word, its SPSC group's P word), as a consumer's.
	 * A consumed MPMC slot's word is the next lap's; an SPSC index is
	 * published if its group's P word passed it (a word of an older lap
	 * is below it), and in the ring if not yet consumed.
	 */
	if (r->type == SHMPOOL_RING_MPMC)
		return atomic_load_explicit(mpmc_word(r, idx), memory_order_acquire) == idx + 1;
	return !__shmpool_ring_consumed(r, idx) &&
	       (int32_t)(__shmpool_spsc_seen(r, idx, 0) - (idx + 1)) >= 0;
}

SHMPOOL_EXPORT
int shmpool_ring_reserve_wait(struct shmpool_ring *r, uint32_t len,
			      void **ptr, const struct timespec *deadline)
{
	int ret;

	if (!r || !ptr || r->type != SHMPOOL_RING_VAR || !len ||
	    len > r->max_rec)
		return -EINVAL;
	ret = wait_loop(r, ptr, len, 0, deadline, try_reserve,
			&r->hdr->ev.space, SHMPOOL_RING_CONS, 0);
	return ret < 0 ? ret : 0;
}

SHMPOOL_EXPORT
int shmpool_ring_peek_wait(struct shmpool_ring *r, const void **ptr,
			   const struct timespec *deadline)
{
	if (!r || !ptr || r->type != SHMPOOL_RING_VAR)
		return -EINVAL;
	return wait_loop(r, (void *)ptr, 0, 0, deadline, try_peek,
			 &r->hdr->ev.data, SHMPOOL_RING_PROD, 1);
}

/*
 * Read-only introspection of the ring at @off: no handle, no write, so
 * that an observer with a SHMPOOL_RDONLY pool can report fill levels. The
 * description is checked as ring_open() checks it; indices are snapshots.
 */
SHMPOOL_EXPORT
int shmpool_ring_inspect(struct shmpool *p, uint64_t off,
			 struct shmpool_ring_info *ri)
{
	const struct __shmpool_ring_hdr *h;
	uint32_t pi, ci, w;

	if (!p || !ri)
		return -EINVAL;
	memset(ri, 0, sizeof(*ri));
	h = shmpool_ptr(p, off, sizeof(*h));
	if (!h)
		return -EINVAL;
	/* rings are made aligned to their lines: anything else is not one */
	if (off % _Alignof(struct __shmpool_ring_hdr))
		return -EPROTOTYPE;
	/* acquire: pairs with the creator's release of magic (the description) */
	if (atomic_load_explicit(&h->d.magic, memory_order_acquire) != __SHMPOOL_RING_MAGIC)
		return -EPROTOTYPE;
	/* once: the version reported is the one refused, whatever a peer writes */
	ri->version = *(const volatile uint32_t *)&h->d.version;
	if (ri->version != __SHMPOOL_RING_VERSION)
		return -EPROTONOSUPPORT;
	ri->type = h->d.type;
	ri->flags = h->d.flags;
	ri->esize = h->d.esize;
	ri->count = h->d.count;
	if (ri->type != SHMPOOL_RING_MPMC) {
		ci = atomic_load_explicit(&h->cons.tail, memory_order_relaxed);
		pi = atomic_load_explicit(&h->prod.tail, memory_order_relaxed);
	} else {
		ci = atomic_load_explicit(&h->cons.head, memory_order_relaxed);
		pi = atomic_load_explicit(&h->prod.head, memory_order_relaxed);
	}
	ri->produced = pi;
	ri->consumed = ci;
	ri->used = (int32_t)(pi - ci) < 0 ? 0 : pi - ci > ri->count ? ri->count : pi - ci;
	ri->shut = atomic_load_explicit(&h->ev.shut, memory_order_relaxed);
	w = atomic_load_explicit(&h->ev.data.word, memory_order_relaxed);
	ri->cons_sleeping = w & SHMPOOL_EVENT_NEED_WAKEUP;
	ri->cons_wakes = w >> 1;
	w = atomic_load_explicit(&h->ev.space.word, memory_order_relaxed);
	ri->prod_sleeping = w & SHMPOOL_EVENT_NEED_WAKEUP;
	ri->prod_wakes = w >> 1;
	return 0;
}
