// SPDX-License-Identifier: MIT
/*
 * Synchronisation objects in pool memory (include/shmpool_sync.h): the
 * exported paths of the event count, and the mutex, condition variable and
 * semaphore. All sleeping goes through shmpool_wait()/shmpool_wake(), so the
 * objects behave the same on the device and memfd backends.
 *
 * Ordering is C11: every acquire, release and fence below says what it pairs
 * with. The kernel side of a doorbell (compare the word under the lock WAKE
 * takes) is the futex guarantee; it is what makes "change the word, then
 * wake" safe against "read the word, then sleep while it is unchanged".
 *
 * Owners (lib/internal.h, "attach.c: attachments"): a mutex's word holds its
 * owner's attachment id, its @tid field the owning thread. A waiter reads
 * the pool's death_seq, looks whether the owner lives, and sleeps with that
 * death_seq (__shmpool_wait_peer()), so an owner's death wakes it (device:
 * at once; memfd: within a slice) and it takes the lock over. Where the
 * module has SHMPOOL_FEAT_WAIT_OWNER the sleep watches only the owner the
 * word names (__shmpool_wait_owner()); so does a robust semaphore's, whose
 * empty @value names the taker that emptied it.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "shmpool_sync.h"

/* tries at a contended lock or empty semaphore before sleeping */
#define SPIN_TRIES	100
/* a sleeping locker looks whether the owner still lives this often */
#define OWNER_CHECK_MS	100

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/*
 * The caller's thread id, cached: gettid() is a system call, and an
 * uncontended lock must not make one. fork() gives the child a new id, so
 * the child forgets the cache (pthread_atfork; the raw clone() syscall and
 * _Fork() bypass it and are not supported).
 *
 * takeover_lock serialises, within this process, taking a lock over and
 * judging a thread of this process dead (owner_take_over()): a taker stores
 * its thread id only after its compare-exchange won the word, and a thread
 * of ours must never judge the dead owner's thread id, still in the field
 * in between, to be the new owner's. Slow paths only.
 */
static _Thread_local uint32_t tid_cache __attribute__((tls_model("initial-exec")));
static pthread_mutex_t takeover_lock = PTHREAD_MUTEX_INITIALIZER;

/* a leaf lock but for the liveness checks' system calls */
void __shmpool_sync_atfork(enum __shmpool_fork_stage stage)
{
	if (stage == __SHMPOOL_FORK_CHILD)
		tid_cache = 0;
	__shmpool_fork_lock(&takeover_lock, stage);
}

uint32_t __shmpool_tid(void)
{
	if (!tid_cache)
		tid_cache = (uint32_t)syscall(SYS_gettid);
	return tid_cache;
}

/* Has thread @tid of this process ended? (tgkill: our own, in our namespace) */
static bool own_thread_gone(uint32_t tid)
{
	return syscall(SYS_tgkill, getpid(), (pid_t)tid, 0) && errno == ESRCH;
}

/*
 * Whether the owner that *@word names (attachment id in bits 0-29) is gone;
 * if so, make *@word @id | @set | (its old value & @keep) and *@tid the
 * caller's thread: 0. -EAGAIN if the owner lives, the word is free, or it
 * changed meanwhile. For an owner of our own attachment *@tid decides: a
 * thread of ours that ended (0, the owner's "not yet stored", is alive).
 */
int __shmpool_owner_take_over(struct shmpool *p, _Atomic uint32_t *word,
			      _Atomic uint32_t *tid, uint32_t id,
			      uint32_t set, uint32_t keep)
{
	uint32_t v, v2, owner, t = 0, t2, me = __shmpool_tid();
	bool gone;
	int ret = -EAGAIN;

	pthread_mutex_lock(&takeover_lock);
	/*
	 * Acquire: pairs with the release of whoever changed the word last
	 * (an unlock, or the dead owner's lock), so we see what the owner
	 * wrote before it died, as far as it got, and a cleared @tid.
	 */
	v = atomic_load_explicit(word, memory_order_acquire);
	owner = v & SHMPOOL_MUTEX_OWNER_MASK;
	if (!owner)
		goto out;
	if (owner != id) {
		gone = !__shmpool_alive(p, owner);
	} else {
		/* acquire: pairs with the owner's release store of @tid */
		t = atomic_load_explicit(tid, memory_order_acquire);
		gone = t && t != me && own_thread_gone(t);
		/*
		 * The same word and thread again: @t was the owner's, not a
		 * thread id of another process that held the lock between
		 * our two loads (those clear @tid before they unlock).
		 */
		v2 = atomic_load_explicit(word, memory_order_acquire);
		t2 = atomic_load_explicit(tid, memory_order_acquire);
		gone = gone && v2 == v && t2 == t;
	}
	if (!gone)
		goto out;
	/* acquire: as the load above */
	if (atomic_compare_exchange_strong_explicit(word, &v,
			id | set | (v & keep),
			memory_order_acquire, memory_order_relaxed)) {
		atomic_store_explicit(tid, me, memory_order_release);
		ret = 0;
	}
out:
	pthread_mutex_unlock(&takeover_lock);
	return ret;
}

/*
 * The offset of @obj (@len bytes) in @p if it lies inside, 4-byte aligned,
 * and @p is writable; else -EINVAL or -EPERM.
 */
/* inlined: it is on every lock and unlock (fast path) */
static inline __attribute__((always_inline))
int64_t obj_off(const struct shmpool *p, const void *obj, size_t len)
{
	int64_t o;

	if (!p || !obj)
		return -EINVAL;
	o = shmpool_off(p, obj);
	if (o < 0 || (o & 3) || len > p->size - (uint64_t)o)
		return -EINVAL;
	if (p->flags & SHMPOOL_RDONLY)
		return -EPERM;
	return o;
}

/* shmpool_wake() for callers that need 0 or -errno, not a count */
static int wake(struct shmpool *p, int64_t off, uint32_t n)
{
	int ret = shmpool_wake(p, (uint64_t)off, n);

	return ret < 0 ? ret : 0;
}

/* ---- event count ---------------------------------------------------------- */

SHMPOOL_EXPORT
int shmpool_event_init(struct shmpool *p, struct shmpool_event *ev)
{
	int64_t off = obj_off(p, ev, sizeof(*ev));

	if (off < 0)
		return (int)off;
	atomic_store_explicit(&ev->word, 0, memory_order_relaxed);
	return 0;
}

SHMPOOL_EXPORT
int shmpool_event_wake(struct shmpool *p, struct shmpool_event *ev)
{
	int64_t off = obj_off(p, ev, sizeof(*ev));
	uint32_t v;
	int i;

	if (off < 0)
		return (int)off;
	v = atomic_load_explicit(&ev->word, memory_order_relaxed);
	for (i = 0; v & SHMPOOL_EVENT_NEED_WAKEUP; i++) {
		/*
		 * A peer keeps changing the word: wake every sleeper without
		 * our step of the sequence. Each looks at the word again and
		 * returns if it moved, which a peer that keeps moving it
		 * could have undone after our step just as well.
		 */
		if (i == __SHMPOOL_CAS_TRIES)
			break;
		/*
		 * With NEED_WAKEUP set, +1 clears it and carries into the
		 * sequence: one step makes every sleeper's key stale, so the
		 * doorbell either finds the word changed or is woken below.
		 * Release: pairs with the acquire load in
		 * shmpool_event_timedwait(), so that a waiter that sees the
		 * new word also sees what the caller published before
		 * signalling. A failed CAS reloads @v: if another signaller
		 * cleared the flag, it also woke everybody.
		 */
		if (atomic_compare_exchange_weak_explicit(&ev->word, &v, v + 1,
							  memory_order_release,
							  memory_order_relaxed))
			break;
	}
	if (!(v & SHMPOOL_EVENT_NEED_WAKEUP))
		return 0;	/* nobody announced a sleep, or another woke them */
	return shmpool_wake(p, (uint64_t)off, SHMPOOL_WAKE_ALL);
}

SHMPOOL_EXPORT
int shmpool_event_timedwait(struct shmpool *p, struct shmpool_event *ev,
			    uint32_t key, const struct timespec *deadline)
{
	int64_t off = obj_off(p, ev, sizeof(*ev));
	bool again;
	int ret;

	if (off < 0)
		return (int)off;
	if (!(key & SHMPOOL_EVENT_NEED_WAKEUP))
		return -EINVAL;
	for (again = false;; again = true) {
		/* acquire: pairs with the release CAS in shmpool_event_wake() */
		if (atomic_load_explicit(&ev->word, memory_order_acquire) != key)
			return 0;
		/*
		 * Woken, yet the word is @key again: a wake without a step
		 * (shmpool_event_wake() after __SHMPOOL_CAS_TRIES) or a peer's. One
		 * that keeps waking us must not keep us past the deadline.
		 */
		if (again && __shmpool_deadline_passed(deadline))
			return -ETIMEDOUT;
		ret = shmpool_wait(p, off, key, deadline, 0);
		if (ret == 0)
			continue;	/* woken: the load decides */
		/*
		 * -EAGAIN: the doorbell found the word other than @key, so
		 * it moved after prepare_wait: signalled (as FUTEX_WAIT's
		 * EAGAIN tells its caller to look again). Not "look at the
		 * word again": a peer that moves it back after the compare
		 * would keep us calling the doorbell for ever, without a
		 * sleep, past any deadline (the doorbell compares before it
		 * looks at the time).
		 */
		if (ret == -EAGAIN)
			return 0;
		if (ret == -ETIMEDOUT &&
		    atomic_load_explicit(&ev->word, memory_order_acquire) != key)
			return 0;	/* signalled as time ran out */
		return ret;
	}
}

/* ---- mutex ---------------------------------------------------------------- */

SHMPOOL_EXPORT
int shmpool_mutex_init(struct shmpool *p, struct shmpool_mutex *m)
{
	int64_t off = obj_off(p, m, sizeof(*m));

	if (off < 0)
		return (int)off;
	atomic_store_explicit(&m->word, 0, memory_order_relaxed);
	atomic_store_explicit(&m->tid, 0, memory_order_relaxed);
	return 0;
}

/*
 * The fast path: @word and @tid as one 8-byte unit, for a mutex at an 8-byte
 * aligned address (its offset decides, so every process sees the same
 * alignment). Lock is one compare-exchange of (free, no thread) for
 * (@id, @tid), unlock the reverse: the word and its thread change together,
 * so no one ever sees the word without its thread, and unlock's owner check
 * is the compare itself. Anything else (WAITERS, OWNER_DIED, another owner,
 * a stale @tid) fails the compare and takes the two-field path below, which
 * gives the same answers and interoperates with it: the layout and the word
 * format are unchanged (the kernel's doorbell still compares the 4-byte
 * word). A mutex at offset 4 mod 8 always takes the two-field path.
 *
 * The 8-byte view is a may_alias type, accessed with the __atomic builtins:
 * mixed-size atomics are outside C11 but single-copy atomic on every CPU
 * we build for (the compare-exchange is lock-free, checked below).
 */
typedef uint64_t __attribute__((may_alias)) mutex_pair_t;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define PAIR(id, tid)	((uint64_t)(tid) << 32 | (id))	/* word first in memory */
#else
#define PAIR(id, tid)	((uint64_t)(id) << 32 | (tid))
#endif

static inline __attribute__((always_inline))
mutex_pair_t *mutex_pair(struct shmpool_mutex *m)
{
	if (!__atomic_always_lock_free(sizeof(mutex_pair_t), 0) ||
	    ((uintptr_t)m & (sizeof(mutex_pair_t) - 1)))
		return NULL;
	return (mutex_pair_t *)(void *)m;
}

/*
 * Take a free @m for attachment @id, thread @tid. @val is what to store: id,
 * or id | WAITERS after we slept (others may still sleep, and only a WAITERS
 * bit makes our unlock wake one of them).
 */
static bool mutex_take(struct shmpool_mutex *m, uint32_t val, uint32_t tid)
{
	uint32_t free_word = 0;

	/*
	 * Acquire: pairs with the release in shmpool_mutex_unlock(); the
	 * critical section cannot start before the lock is ours, and sees the
	 * previous owner's writes (and its clearing of @tid).
	 */
	if (!atomic_compare_exchange_strong_explicit(&m->word, &free_word, val,
						     memory_order_acquire,
						     memory_order_relaxed))
		return false;
	/*
	 * Release: pairs with the acquire loads of @tid in
	 * __shmpool_owner_take_over(): whoever reads our thread id also sees
	 * our word. A plain store on x86, no read-modify-write.
	 */
	atomic_store_explicit(&m->tid, tid, memory_order_release);
	return true;
}

/* Does thread @tid of attachment @id hold @m? (the word's owner and @tid) */
static bool mutex_held(struct shmpool_mutex *m, uint32_t id, uint32_t tid)
{
	return (atomic_load_explicit(&m->word, memory_order_relaxed) &
		SHMPOOL_MUTEX_OWNER_MASK) == id &&
	       atomic_load_explicit(&m->tid, memory_order_relaxed) == tid;
}

/*
 * Timed out: leave, but never leave a sleeper stranded. If the unlock that
 * woke someone woke us, another sleeper relies on the next unlock seeing
 * WAITERS; so either take the lock after all, or make sure the current
 * owner's word has WAITERS set.
 */
static int mutex_timed_out(struct shmpool *p, int64_t off,
			   struct shmpool_mutex *m, uint32_t id, uint32_t tid)
{
	uint32_t v;
	int i;

	for (i = 0; i < __SHMPOOL_CAS_TRIES; i++) {
		v = atomic_load_explicit(&m->word, memory_order_relaxed);
		if (!v) {
			if (mutex_take(m, id | SHMPOOL_MUTEX_WAITERS, tid))
				return 0;
			continue;
		}
		/* relaxed: only the bit matters, the doorbell orders the rest */
		if ((v & SHMPOOL_MUTEX_WAITERS) ||
		    atomic_compare_exchange_weak_explicit(&m->word, &v,
				v | SHMPOOL_MUTEX_WAITERS,
				memory_order_relaxed, memory_order_relaxed))
			return -ETIMEDOUT;
	}
	/*
	 * A peer keeps changing the word, so WAITERS may not stay set: pass
	 * the wake-up we may have taken on to a sleeper, which looks again.
	 */
	wake(p, off, 1);
	return -ETIMEDOUT;
}

/* The owner of @m is gone: take @m over, marked OWNER_DIED. */
static int mutex_take_over(struct shmpool *p, struct shmpool_mutex *m,
			   uint32_t id)
{
	return __shmpool_owner_take_over(p, &m->word, &m->tid, id,
					 SHMPOOL_MUTEX_OWNER_DIED,
					 SHMPOOL_MUTEX_WAITERS);
}

/*
 * @m names this thread (attachment @id, thread @tid) as its holder. A
 * caller that may hold it (shmpool_mutex_lock(), or the library with one
 * of its own locks held: a cache iterate callback, a signal handler) gets
 * -EDEADLK. One that cannot hold it (@stale: the library's own locks, none
 * held by this thread) finds a claim that a thread whose id was recycled
 * as ours left, or that a peer wrote: it takes @m over as from a dead
 * owner, marked OWNER_DIED (-EOWNERDEAD: the caller repairs what @m
 * guards), or gets -EAGAIN if @m moved meanwhile. The compare covers word
 * and thread together where @m allows (mutex_pair()), so a thread of ours
 * that took @m after it was freed is never taken over; at offset 4 mod 8
 * only the word is compared, and that can happen only after a peer freed
 * @m by writing it, which could as well free it under any holder.
 */
static int mutex_self_claim(struct shmpool_mutex *m, uint32_t id, uint32_t tid,
			    bool stale)
{
	mutex_pair_t *pair = mutex_pair(m);
	uint32_t v = atomic_load_explicit(&m->word, memory_order_relaxed);
	uint64_t old;

	if (!stale)
		return -EDEADLK;
	if ((v & SHMPOOL_MUTEX_OWNER_MASK) != id)
		return -EAGAIN;
	/* acquire: as in mutex_take(); our repair starts after the claim */
	if (pair) {
		old = PAIR(v, tid);
		if (__atomic_compare_exchange_n(pair, &old,
						PAIR(v | SHMPOOL_MUTEX_OWNER_DIED, tid),
						false, __ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return -EOWNERDEAD;
	} else if (atomic_load_explicit(&m->tid, memory_order_relaxed) == tid &&
		   atomic_compare_exchange_strong_explicit(&m->word, &v,
				v | SHMPOOL_MUTEX_OWNER_DIED,
				memory_order_acquire, memory_order_relaxed)) {
		return -EOWNERDEAD;
	}
	return -EAGAIN;
}

/*
 * Sleep on @m's word while it is @v. An owner of another attachment: with
 * the death notice from @seq on (-EOWNERDEAD: look at the owner again). An
 * owner thread of our own process: no attachment ends when a thread does,
 * so look again every OWNER_CHECK_MS (-EOWNERDEAD too).
 */
static int mutex_sleep(struct shmpool *p, int64_t off, uint32_t v,
		       uint32_t id, uint32_t seq,
		       const struct timespec *deadline)
{
	const struct timespec *slice;
	struct timespec ts;
	int ret;

	/*
	 * Only the owner's death concerns us: other peers that come and go
	 * neither wake us nor cost us our place among the sleepers.
	 */
	if ((v & SHMPOOL_MUTEX_OWNER_MASK) != id)
		return __shmpool_wait_owner(p, off, v, SHMPOOL_MUTEX_OWNER_MASK,
					    seq, deadline);
	slice = __shmpool_deadline_within(deadline, OWNER_CHECK_MS, &ts);
	ret = shmpool_wait(p, off, v, slice, 0);
	return ret == -ETIMEDOUT && slice != deadline ? -EOWNERDEAD : ret;
}

static int mutex_lock_slow(struct shmpool *p, struct shmpool_mutex *m,
			   int64_t off, uint32_t id, uint32_t tid,
			   const struct timespec *deadline, bool stale)
{
	uint32_t v, seq = 0, checked = ~0U;
	bool again = false, died = false;
	int i, ret;

	for (i = 0; i < SPIN_TRIES; i++) {
		v = atomic_load_explicit(&m->word, memory_order_relaxed);
		if (!v && mutex_take(m, id, tid))
			return 0;
		if (mutex_held(m, id, tid)) {
			ret = mutex_self_claim(m, id, tid, stale);
			if (ret != -EAGAIN)
				return ret;
			continue;
		}
		if (v & SHMPOOL_MUTEX_WAITERS)
			break;		/* others sleep already: queue behind them */
		cpu_relax();
	}

	for (;; again = true) {
		/*
		 * Every pass but the first follows a wake or a word that moved
		 * before we could sleep; a peer that keeps moving it must not
		 * keep us past the deadline. (The first pass looks at the
		 * owner: a dead one is taken over even after the deadline, as
		 * pthread_mutex_timedlock() does; so does the pass after a
		 * death notice, which the module gives before it looks at
		 * the time. That pass ends in a take or a look and never
		 * sleeps, so deaths that keep coming cannot keep us.)
		 */
		if (again && !died && __shmpool_deadline_passed(deadline))
			return mutex_timed_out(p, off, m, id, tid);
		died = false;
		v = atomic_load_explicit(&m->word, memory_order_relaxed);
		if (!v) {
			if (mutex_take(m, id | SHMPOOL_MUTEX_WAITERS, tid))
				return 0;
			continue;
		}
		if (mutex_held(m, id, tid)) {
			ret = mutex_self_claim(m, id, tid, stale);
			if (ret != -EAGAIN)
				return ret;
			continue;
		}
		/*
		 * A new owner, or a death since we last looked: read
		 * death_seq, then look whether the owner lives; a death
		 * after the look makes the sleep below return at once.
		 */
		if ((v & SHMPOOL_MUTEX_OWNER_MASK) != checked) {
			seq = __shmpool_death_seq(p);
			if (!mutex_take_over(p, m, id))
				return -EOWNERDEAD;
			checked = v & SHMPOOL_MUTEX_OWNER_MASK;
			continue;	/* the word may have moved meanwhile */
		}
		if (!(v & SHMPOOL_MUTEX_WAITERS)) {
			/*
			 * Relaxed: the owner's unlock exchanges the word and
			 * so sees this bit or fails our CAS; no other data
			 * rides on it.
			 */
			if (!atomic_compare_exchange_weak_explicit(&m->word, &v,
					v | SHMPOOL_MUTEX_WAITERS,
					memory_order_relaxed,
					memory_order_relaxed))
				continue;
			v |= SHMPOOL_MUTEX_WAITERS;
		}
		/* sleeps only while the word is still v: an unlock changes it */
		ret = mutex_sleep(p, off, v, id, seq, deadline);
		if (ret == -EOWNERDEAD) {
			checked = ~0U;	/* somebody died: look again */
			died = true;
			continue;
		}
		if (ret == -ETIMEDOUT)
			return mutex_timed_out(p, off, m, id, tid);
		/* woken, word changed, or a handler ran: try again */
		if (ret && ret != -EAGAIN && ret != -EINTR)
			return ret;
	}
}

/*
 * Check @m's place in @p, learn who we are (attachment @id, thread @tid),
 * and try to take @m once: 1 if it is ours, 0 if not, or -errno.
 */
static inline __attribute__((always_inline))
int mutex_try(struct shmpool *p, struct shmpool_mutex *m,
	      int64_t *off, uint32_t *id, uint32_t *tid)
{
	int ret;

	*off = obj_off(p, m, sizeof(*m));
	if (*off < 0)
		return (int)*off;
	ret = __shmpool_self(p, id);
	if (ret)
		return ret;
	*tid = __shmpool_tid();
	return mutex_take(m, *id, *tid);
}

/*
 * The fast path of lock, trylock and unlock, a leaf: if @m is 8-byte aligned
 * in a writable @p, and this thread knows its attachment id and thread id
 * without asking (the first call of a thread or of a fork() child does
 * not), the 8-byte view of @m and, in *@pair, the pair (our id, our thread)
 * that owns it; else NULL, and the caller takes the full path, which checks
 * and reports everything.
 */
static inline __attribute__((always_inline))
mutex_pair_t *mutex_fast(struct shmpool *p, struct shmpool_mutex *m,
			 uint64_t *pair)
{
	uintptr_t q = (uintptr_t)m, b;
	uint32_t id;

	if (!p || !mutex_pair(m))
		return NULL;
	b = (uintptr_t)p->base;
	if (q < b || q - b >= p->size || p->size - (q - b) < sizeof(*m) ||
	    (p->flags & SHMPOOL_RDONLY))
		return NULL;
	/* __shmpool_self() without its slow path (see there for the acquire) */
	if (__atomic_load_n(&p->__self_gen, __ATOMIC_ACQUIRE) !=
	    atomic_load_explicit(&__shmpool_fork_gen, memory_order_relaxed))
		return NULL;
	id = __atomic_load_n(&p->__self, __ATOMIC_RELAXED);
	if (!id || !tid_cache)
		return NULL;
	*pair = PAIR(id, tid_cache);
	return mutex_pair(m);
}

/*
 * The fast path of lock, timedlock and trylock: take a free @m in one
 * compare-exchange of both halves, (0, 0) for (our id, our thread); false
 * if that is not possible, and the caller takes the full path. Acquire: as
 * in mutex_take(); it pairs with the release of either unlock path and with
 * mutex_take()'s release store of @tid.
 */
static inline __attribute__((always_inline))
bool mutex_fast_take(struct shmpool *p, struct shmpool_mutex *m)
{
	uint64_t pair, free_pair = 0;
	mutex_pair_t *fast = mutex_fast(p, m, &pair);

	return fast && __atomic_compare_exchange_n(fast, &free_pair, pair,
						   false, __ATOMIC_ACQUIRE,
						   __ATOMIC_RELAXED);
}

/*
 * lock and timedlock after the fast path: checks, learns who we are, sleeps
 * until @deadline or, with none, for @ms from the moment it has to wait
 * (-1: as long as it takes), so that a caller that finds @m free never
 * reads the clock. @stale: as in mutex_self_claim().
 */
static __attribute__((noinline))
int mutex_lock(struct shmpool *p, struct shmpool_mutex *m,
	       const struct timespec *deadline, long ms, bool stale)
{
	struct timespec ts;
	uint32_t id, tid;
	int64_t off;
	int ret = mutex_try(p, m, &off, &id, &tid);

	if (ret)
		return ret < 0 ? ret : 0;
	/*
	 * It has to wait: a bad deadline is -EINVAL now, not once a slice
	 * of the sleep below reaches it (as pthread_mutex_timedlock()).
	 */
	ret = __shmpool_deadline_check(deadline);
	if (ret)
		return ret;
	if (!deadline && ms >= 0)
		deadline = __shmpool_deadline_within(NULL, ms, &ts);
	return mutex_lock_slow(p, m, off, id, tid, deadline, stale);
}

/*
 * The user's mutexes (shmpool_mutex_lock() and the like) this thread holds
 * or is taking. Only the holder unlocks (-EPERM for others), so with none a
 * lock word that names this thread is a claim this thread did not make: a
 * thread of ours died holding it and the kernel gave its id to us, or a
 * peer wrote it. lock, timedlock and trylock take such a claim over as from
 * a dead owner (-EOWNERDEAD), unlock refuses it (-EPERM). While the thread
 * holds others the claim cannot be told from a real relock: -EDEADLK, as
 * for one. The count goes up before the lock is tried and down after the
 * unlock, behind signal fences, as lib_locks_held below: a signal handler
 * that interrupts a lock or unlock anywhere sees the mutex as held.
 */
static _Thread_local unsigned int user_locks_held
	__attribute__((tls_model("initial-exec")));

/*
 * Count, in *@held (user_locks_held or lib_locks_held), a lock about to be
 * tried; return the count before it. The signal fence keeps the increment
 * before the try, for a handler that interrupts it.
 */
static inline __attribute__((always_inline))
unsigned int count_lock(unsigned int *held)
{
	unsigned int before = (*held)++;

	atomic_signal_fence(memory_order_seq_cst);
	return before;
}

/* Uncount a lock in *@held: released, or not taken after all. */
static inline __attribute__((always_inline)) void uncount_lock(unsigned int *held)
{
	atomic_signal_fence(memory_order_seq_cst);
	(*held)--;
}

/* A lock's result @ret, uncounted from *@held if the lock was not taken. */
static inline __attribute__((always_inline))
int counted_result(unsigned int *held, int ret)
{
	if (ret && ret != -EOWNERDEAD)
		uncount_lock(held);
	return ret;
}

SHMPOOL_EXPORT
int shmpool_mutex_timedlock(struct shmpool *p, struct shmpool_mutex *m,
			    const struct timespec *deadline)
{
	unsigned int held = count_lock(&user_locks_held);

	if (mutex_fast_take(p, m))
		return 0;
	return counted_result(&user_locks_held,
			      mutex_lock(p, m, deadline, -1, !held));
}

SHMPOOL_EXPORT
int shmpool_mutex_lock(struct shmpool *p, struct shmpool_mutex *m)
{
	unsigned int held = count_lock(&user_locks_held);

	if (mutex_fast_take(p, m))
		return 0;
	return counted_result(&user_locks_held,
			      mutex_lock(p, m, NULL, -1, !held));
}

/*
 * The library's own locks (the heap's, the cache's stripes): how many this
 * thread holds or is taking. None is ever held across a call, so with none
 * a lock word that names this thread is stale (mutex_self_claim()). The
 * count goes up before the lock is tried and down after it is released,
 * each behind a signal fence, so that a signal handler that interrupts a
 * call anywhere between the two sees it (-EDEADLK, never a take-over of
 * the lock its own thread is using).
 */
static _Thread_local unsigned int lib_locks_held;

int __shmpool_lib_lock(struct shmpool *p, struct shmpool_mutex *m, long ms)
{
	unsigned int held = count_lock(&lib_locks_held);

	if (mutex_fast_take(p, m))
		return 0;
	return counted_result(&lib_locks_held, mutex_lock(p, m, NULL, ms, !held));
}

static inline __attribute__((always_inline))
int mutex_unlock_any(struct shmpool *p, struct shmpool_mutex *m, bool counted);

void __shmpool_lib_unlock(struct shmpool *p, struct shmpool_mutex *m)
{
	mutex_unlock_any(p, m, true);
	uncount_lock(&lib_locks_held);
}

/* @stale: as in mutex_self_claim() */
static __attribute__((noinline))
int mutex_trylock(struct shmpool *p, struct shmpool_mutex *m, bool stale)
{
	uint32_t id, tid;
	int64_t off;
	int ret = mutex_try(p, m, &off, &id, &tid);

	if (ret)
		return ret < 0 ? ret : 0;
	/* held by the caller, or by a live owner: no system call for the first */
	if (mutex_held(m, id, tid))
		return mutex_self_claim(m, id, tid, stale) == -EOWNERDEAD ?
		       -EOWNERDEAD : -EBUSY;
	if (mutex_take_over(p, m, id))
		return -EBUSY;
	return -EOWNERDEAD;
}

SHMPOOL_EXPORT
int shmpool_mutex_trylock(struct shmpool *p, struct shmpool_mutex *m)
{
	unsigned int held = count_lock(&user_locks_held);

	if (mutex_fast_take(p, m))
		return 0;
	return counted_result(&user_locks_held, mutex_trylock(p, m, !held));
}

/*
 * unlock after the fast path: WAITERS, OWNER_DIED, -EPERM, bad arguments.
 * @counted: the caller counts @m among the locks it holds (see
 * user_locks_held); a word in our name that is not is not ours.
 */
static __attribute__((noinline))
int mutex_unlock(struct shmpool *p, struct shmpool_mutex *m, bool counted)
{
	int64_t off = obj_off(p, m, sizeof(*m));
	uint32_t id, tid, v;
	int ret;

	if (off < 0)
		return (int)off;
	ret = __shmpool_self(p, &id);
	if (ret)
		return ret;
	tid = __shmpool_tid();
	/* only we store our thread id there, and we clear it before unlocking */
	if (!counted || !mutex_held(m, id, tid))
		return -EPERM;
	/*
	 * Cleared before the release below, so that the next owner's word
	 * never comes with our thread id (__shmpool_owner_take_over()).
	 */
	atomic_store_explicit(&m->tid, 0, memory_order_relaxed);
	v = id;
	/*
	 * Release: pairs with the acquire in mutex_take() or mutex_fast_take()
	 * of the next owner; our critical section's writes are visible before
	 * the lock is seen free.
	 */
	if (atomic_compare_exchange_strong_explicit(&m->word, &v, 0,
						    memory_order_release,
						    memory_order_relaxed))
		return 0;
	/*
	 * WAITERS or OWNER_DIED is set. While we own the word only WAITERS
	 * can change, so exchange; that also clears OWNER_DIED: the caller
	 * repaired what the dead owner left. Release: as above.
	 */
	v = atomic_exchange_explicit(&m->word, 0, memory_order_release);
	return v & SHMPOOL_MUTEX_WAITERS ? wake(p, off, 1) : 0;
}

/*
 * Unlock @m. @counted: the caller counts a lock of @m's kind as held
 * (lib_locks_held, user_locks_held); if not, a word in our name is not
 * ours (-EPERM).
 */
static inline __attribute__((always_inline))
int mutex_unlock_any(struct shmpool *p, struct shmpool_mutex *m, bool counted)
{
	mutex_pair_t *fast;
	uint64_t pair;

	fast = counted ? mutex_fast(p, m, &pair) : NULL;
	/*
	 * Held by us, with neither WAITERS nor OWNER_DIED: free both halves
	 * at once. Release: pairs with the acquire of the next owner's take
	 * (mutex_fast_take() or mutex_take()); our critical section's writes
	 * are visible before the lock is seen free.
	 */
	if (fast && __atomic_compare_exchange_n(fast, &pair, 0, false,
						__ATOMIC_RELEASE,
						__ATOMIC_RELAXED))
		return 0;
	return mutex_unlock(p, m, counted);
}

SHMPOOL_EXPORT
int shmpool_mutex_unlock(struct shmpool *p, struct shmpool_mutex *m)
{
	int ret = mutex_unlock_any(p, m, user_locks_held);

	if (!ret)
		uncount_lock(&user_locks_held);
	return ret;
}

/* ---- condition variable ----------------------------------------------------- */

SHMPOOL_EXPORT
int shmpool_cond_init(struct shmpool *p, struct shmpool_cond *c)
{
	int64_t off = obj_off(p, c, sizeof(*c));

	if (off < 0)
		return (int)off;
	atomic_store_explicit(&c->seq, 0, memory_order_relaxed);
	atomic_store_explicit(&c->waiters, 0, memory_order_relaxed);
	return 0;
}

/*
 * Sleep on @c's word while it is @seq. On the device, the death of @m's
 * owner ends the sleep too: the caller then relocks @m, taking it over
 * (-EOWNERDEAD). Other deaths do not concern us: sleep on, with the new
 * death_seq (if a signal moved @seq meanwhile, that returns at once: a
 * spurious wake-up, never a lost one), until the deadline. Not on memfd,
 * where nobody tells: a sleep sliced to look at the owner would find @seq
 * moved by every signal meant for another waiter and take it, so memfd
 * sleeps until signalled.
 */
static int cond_sleep(struct shmpool *p, struct shmpool_mutex *m,
		      int64_t off, uint32_t seq, uint32_t id, uint32_t dseq,
		      const struct timespec *deadline)
{
	uint32_t owner;
	int ret;

	if (!p->__status)
		return shmpool_wait(p, off, seq, deadline, 0);
	for (;;) {
		ret = __shmpool_wait_peer(p, off, seq, dseq, deadline);
		if (ret != -EOWNERDEAD)
			return ret;
		/* death_seq, then the owner, then sleep: no death is missed */
		dseq = __shmpool_death_seq(p);
		owner = atomic_load_explicit(&m->word, memory_order_relaxed) &
			SHMPOOL_MUTEX_OWNER_MASK;
		if (owner && owner != id && !__shmpool_alive(p, owner))
			return 0;
		/*
		 * Only after that look: a death before the deadline still
		 * hands a dead owner's @m over. But the module reports a
		 * death before it looks at the time, so peers that keep
		 * attaching and detaching must not keep us past it.
		 */
		if (__shmpool_deadline_passed(deadline))
			return -ETIMEDOUT;
	}
}

/*
 * Why relaxed suffices for @seq and @waiters: a waiter reads @seq and counts
 * itself in @waiters before it unlocks the mutex (a release); a signaller
 * whose predicate change the waiter missed made that change after locking
 * the same mutex (an acquire that synchronises with the waiter's unlock), so
 * by coherence its bump of @seq comes after the value the waiter read, and
 * its load of @waiters sees the waiter's increment. The bump makes the
 * doorbell refuse to sleep (-EAGAIN) or the wake finds the sleeper.
 */
SHMPOOL_EXPORT
int shmpool_cond_timedwait(struct shmpool *p, struct shmpool_cond *c,
			   struct shmpool_mutex *m,
			   const struct timespec *deadline)
{
	int64_t off = obj_off(p, c, sizeof(*c));
	int64_t moff = obj_off(p, m, sizeof(*m));
	uint32_t seq, dseq, id;
	int ret, lret;

	if (off < 0 || moff < 0)
		return (int)(off < 0 ? off : moff);
	ret = __shmpool_self(p, &id);
	if (ret)
		return ret;
	if (!mutex_held(m, id, __shmpool_tid()))
		return -EPERM;
	/*
	 * A condition wait always waits: a bad deadline is -EINVAL before the
	 * mutex is touched, as pthread_cond_timedwait() (an unlock and relock
	 * would clear OWNER_DIED and let others in).
	 */
	ret = __shmpool_deadline_check(deadline);
	if (ret)
		return ret;

	/* before the unlock: a death from here on ends the sleep */
	dseq = __shmpool_death_seq(p);
	seq = atomic_load_explicit(&c->seq, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->waiters, 1, memory_order_relaxed);
	ret = shmpool_mutex_unlock(p, m);
	if (ret) {
		atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_relaxed);
		return ret;
	}

	ret = cond_sleep(p, m, off, seq, id, dseq, deadline);
	/*
	 * A timed-out or interrupted waiter must not swallow a signal meant
	 * for another: if @seq moved, report a wake-up (the caller re-checks
	 * its predicate either way).
	 */
	if ((ret == -ETIMEDOUT || ret == -EINTR) &&
	    atomic_load_explicit(&c->seq, memory_order_relaxed) != seq)
		ret = 0;
	atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_relaxed);

	lret = shmpool_mutex_lock(p, m);
	if (lret)
		return lret;	/* -EOWNERDEAD holds @m too */
	if (ret == -ETIMEDOUT)
		return ret;
	return ret == -EAGAIN || ret == -EINTR ? 0 : ret;
}

static int cond_wake(struct shmpool *p, struct shmpool_cond *c, uint32_t n)
{
	int64_t off = obj_off(p, c, sizeof(*c));

	if (off < 0)
		return (int)off;
	/* relaxed: ordered by the mutex, see above shmpool_cond_timedwait() */
	atomic_fetch_add_explicit(&c->seq, 1, memory_order_relaxed);
	if (!atomic_load_explicit(&c->waiters, memory_order_relaxed))
		return 0;
	return wake(p, off, n);
}

SHMPOOL_EXPORT
int shmpool_cond_signal(struct shmpool *p, struct shmpool_cond *c)
{
	return cond_wake(p, c, 1);
}

SHMPOOL_EXPORT
int shmpool_cond_broadcast(struct shmpool *p, struct shmpool_cond *c)
{
	return cond_wake(p, c, SHMPOOL_WAKE_ALL);
}

/* ---- semaphore ---------------------------------------------------------------- */

/*
 * A robust semaphore made by this library (SHMPOOL_SEM_TAKER_IN_VALUE)
 * names the taker that emptied it in @value itself: the take of the last
 * unit is one compare-exchange 1 -> SHMPOOL_SEM_EMPTY | our id, so no
 * kill point lies between a take and its record. One made by an older
 * library (SHMPOOL_SEM_ROBUST alone) keeps counting to 0 and names its
 * last taker in @last_wait, stored after the take, for the older
 * libraries that share it.
 */
static bool sem_taker_in_value(const struct shmpool_sem *s)
{
	return (s->flags & (SHMPOOL_SEM_ROBUST | SHMPOOL_SEM_TAKER_IN_VALUE)) ==
	       (SHMPOOL_SEM_ROBUST | SHMPOOL_SEM_TAKER_IN_VALUE);
}

/* the units that @value @v holds (@tv: sem_taker_in_value()) */
static uint32_t sem_units(uint32_t v, bool tv)
{
	return tv && (v & SHMPOOL_SEM_EMPTY) ? 0 : v;
}

static int sem_init(struct shmpool *p, struct shmpool_sem *s, uint32_t value,
		    uint32_t flags)
{
	int64_t off = obj_off(p, s, sizeof(*s));

	if (off < 0)
		return (int)off;
	if (value > SHMPOOL_SEM_VALUE_MAX)
		return -EINVAL;
	if ((flags & SHMPOOL_SEM_TAKER_IN_VALUE) && !value)
		value = SHMPOOL_SEM_EMPTY;	/* emptied by nobody */
	atomic_store_explicit(&s->value, value, memory_order_relaxed);
	atomic_store_explicit(&s->waiters, 0, memory_order_relaxed);
	atomic_store_explicit(&s->last_post, 0, memory_order_relaxed);
	atomic_store_explicit(&s->last_wait, 0, memory_order_relaxed);
	s->flags = flags;
	s->__reserved = 0;
	return 0;
}

SHMPOOL_EXPORT
int shmpool_sem_init(struct shmpool *p, struct shmpool_sem *s, uint32_t value)
{
	return sem_init(p, s, value, 0);
}

SHMPOOL_EXPORT
int shmpool_sem_init_robust(struct shmpool *p, struct shmpool_sem *s,
			    uint32_t value)
{
	return sem_init(p, s, value,
			SHMPOOL_SEM_ROBUST | SHMPOOL_SEM_TAKER_IN_VALUE);
}

/*
 * Take a unit if there is one, in at most @tries compare-exchanges; the
 * last one of a sem_taker_in_value() semaphore (@tv) leaves our @id in
 * @value, in the same compare-exchange.
 */
static bool sem_take(struct shmpool_sem *s, uint32_t id, bool tv, int tries)
{
	uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);
	uint32_t n;

	while (sem_units(v, tv) && tries-- > 0) {
		n = v - 1;
		if (tv && !n)
			n = SHMPOOL_SEM_EMPTY | id;
		/*
		 * Acquire: pairs with the release in shmpool_sem_post(); what
		 * the poster wrote before posting is visible to the taker.
		 */
		if (atomic_compare_exchange_weak_explicit(&s->value, &v, n,
							  memory_order_acquire,
							  memory_order_relaxed)) {
			/* relaxed: a hint for recovery, no data rides on it */
			atomic_store_explicit(&s->last_wait, id,
					      memory_order_relaxed);
			return true;
		}
	}
	return false;
}

SHMPOOL_EXPORT
int shmpool_sem_post(struct shmpool *p, struct shmpool_sem *s)
{
	int64_t off = obj_off(p, s, sizeof(*s));
	uint32_t v, n, id;
	bool tv;
	int i, ret;

	if (off < 0)
		return (int)off;
	ret = __shmpool_self(p, &id);
	if (ret)
		return ret;
	tv = sem_taker_in_value(s);
	v = atomic_load_explicit(&s->value, memory_order_relaxed);
	for (i = 0;; i++) {
		n = sem_units(v, tv);
		if (n >= SHMPOOL_SEM_VALUE_MAX)
			return -EOVERFLOW;
		if (i == __SHMPOOL_CAS_TRIES)
			return -EBUSY;	/* a peer keeps changing @value */
		/* release: pairs with the acquire in sem_take() */
		if (atomic_compare_exchange_weak_explicit(&s->value, &v, n + 1,
							  memory_order_release,
							  memory_order_relaxed))
			break;
	}
	atomic_store_explicit(&s->last_post, id, memory_order_relaxed);
	/*
	 * (P) Pairs with (T) in shmpool_sem_timedwait(): Dekker's pattern.
	 * We store @value then load @waiters; a waiter stores @waiters then
	 * loads @value. The fences make at least one side see the other: the
	 * waiter finds our unit, or we see it counted and wake it.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&s->waiters, memory_order_relaxed))
		return 0;
	return wake(p, off, 1);
}

SHMPOOL_EXPORT
int shmpool_sem_trywait(struct shmpool *p, struct shmpool_sem *s)
{
	int64_t off = obj_off(p, s, sizeof(*s));
	uint32_t id;
	int ret;

	if (off < 0)
		return (int)off;
	ret = __shmpool_self(p, &id);
	if (ret)
		return ret;
	return sem_take(s, id, sem_taker_in_value(s), __SHMPOOL_CAS_TRIES) ? 0 : -EAGAIN;
}

/*
 * A robust semaphore is empty, and its last taker @lw died: claim the
 * notice (one waiter gets it, once per death). 0 if ours, -EAGAIN if not.
 * @v: @value as read, SHMPOOL_SEM_EMPTY | @lw where the taker is kept
 * there (@tv), whose compare-exchange to SHMPOOL_SEM_EMPTY | 0 is the
 * claim; else @last_wait's to 0 is. Relaxed: what the dead taker wrote is
 * ordered by the liveness check's acquire (__shmpool_alive()), not here.
 */
static int sem_claim_dead(struct shmpool *p, struct shmpool_sem *s, bool tv,
			  uint32_t v, uint32_t lw)
{
	if (!lw || __shmpool_alive(p, lw))
		return -EAGAIN;
	if (!tv)
		return atomic_compare_exchange_strong_explicit(&s->last_wait,
				&lw, 0, memory_order_relaxed,
				memory_order_relaxed) ? 0 : -EAGAIN;
	if (!atomic_compare_exchange_strong_explicit(&s->value, &v,
			SHMPOOL_SEM_EMPTY, memory_order_relaxed,
			memory_order_relaxed))
		return -EAGAIN;
	/* the hint follows (another taker may have stored it since) */
	atomic_compare_exchange_strong_explicit(&s->last_wait, &lw, 0,
			memory_order_relaxed, memory_order_relaxed);
	return 0;
}

/*
 * Sleep on an empty robust semaphore's @value while it is @v (@tv: @v
 * names the taker that emptied it) with death_seq @seq: a post ends the
 * sleep, and so does (-EOWNERDEAD: look again) the death of whoever holds
 * the unit. Where @v names a taker, the module watches the taker the word
 * names when an attachment ends (SHMPOOL_WAIT_OWNER): no other end wakes
 * us, and we keep our place among the sleepers. A word that names nobody
 * (made empty, or after a death notice) is slept on for a wake or any
 * death (__shmpool_wait_owner() falls back to that): a post wakes one
 * sleeper only, so the word may name its new taker while we sleep, and
 * that taker's end must reach us too, though we could not name it.
 */
static int sem_sleep(struct shmpool *p, int64_t off, bool tv, uint32_t v,
		     uint32_t seq, const struct timespec *deadline)
{
	if (tv)
		return __shmpool_wait_owner(p, off, v, SHMPOOL_SEM_TAKER_MASK,
					    seq, deadline);
	return __shmpool_wait_peer(p, off, v, seq, deadline);
}

SHMPOOL_EXPORT
int shmpool_sem_timedwait(struct shmpool *p, struct shmpool_sem *s,
			  const struct timespec *deadline)
{
	int64_t off = obj_off(p, s, sizeof(*s));
	uint32_t id, v, lw, seq = 0, checked = ~0U;
	bool again = false, died = false, tv;
	int i, ret;

	if (off < 0)
		return (int)off;
	ret = __shmpool_self(p, &id);
	if (ret)
		return ret;
	tv = sem_taker_in_value(s);
	/* one compare-exchange a spin: a failed one is a spin too */
	for (i = 0; i < SPIN_TRIES; i++) {
		if (sem_take(s, id, tv, 1))
			return 0;
		cpu_relax();
	}
	/* it has to wait: as in mutex_lock() */
	ret = __shmpool_deadline_check(deadline);
	if (ret)
		return ret;

	atomic_fetch_add_explicit(&s->waiters, 1, memory_order_relaxed);
	/* (T) Pairs with (P) in shmpool_sem_post(), see there. */
	atomic_thread_fence(memory_order_seq_cst);
	for (;; again = true) {
		if (sem_take(s, id, tv, __SHMPOOL_CAS_TRIES)) {
			ret = 0;
			break;
		}
		/*
		 * Every pass but the first follows a wake, or a @value or
		 * last taker that moved before we could sleep: a peer that
		 * keeps moving them must not keep us past the deadline. The
		 * pass after a death notice (which the module gives before
		 * it looks at the time) looks at the last taker first, as
		 * the first pass does, and never sleeps.
		 */
		if (again && !died && __shmpool_deadline_passed(deadline)) {
			ret = -ETIMEDOUT;
			break;
		}
		v = atomic_load_explicit(&s->value, memory_order_relaxed);
		if (sem_units(v, tv)) {
			/* posted meanwhile: take it (a pass that may time out) */
			died = false;
			continue;
		}
		/* sleeps only while @value is still v: a post changes it */
		if (!(s->flags & SHMPOOL_SEM_ROBUST)) {
			died = false;
			ret = shmpool_wait(p, off, v, deadline, 0);
		} else {
			/*
			 * A new last taker, or a death since we looked: read
			 * death_seq, then look whether it lives (the mutex's
			 * pattern), then sleep with that death_seq.
			 */
			lw = tv ? v & SHMPOOL_SEM_TAKER_MASK :
			     atomic_load_explicit(&s->last_wait,
						  memory_order_relaxed);
			if (lw != checked || died) {
				died = false;
				seq = __shmpool_death_seq(p);
				if (!sem_claim_dead(p, s, tv, v, lw)) {
					ret = -EOWNERDEAD;
					break;
				}
				checked = lw;
				continue;
			}
			ret = sem_sleep(p, off, tv, v, seq, deadline);
		}
		if (ret == -EOWNERDEAD) {
			died = true;	/* somebody died: look again */
			continue;
		}
		if (ret == 0 || ret == -EAGAIN)
			continue;
		/*
		 * Timed out or interrupted: if the post that woke us left a
		 * unit, take it rather than strand a sleeper it was meant to
		 * reach (each post wakes only one).
		 */
		if ((ret == -ETIMEDOUT || ret == -EINTR) &&
		    sem_take(s, id, tv, __SHMPOOL_CAS_TRIES))
			ret = 0;
		break;
	}
	atomic_fetch_sub_explicit(&s->waiters, 1, memory_order_relaxed);
	return ret;
}
