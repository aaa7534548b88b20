/* SPDX-License-Identifier: MIT */
/*
 * libshmpool synchronisation objects that live in pool memory.
 *
 * An event count, a mutex, a condition variable and a semaphore, for threads
 * of unrelated processes that share a pool. Each is a small struct placed
 * anywhere 4-byte aligned in the pool, holding no pointers, set up once with
 * its init function by one process before the others use it (pool memory
 * starts zeroed, and zero is the initial state of each, so a fresh pool needs
 * no init). Every call takes the handle @p through which the caller maps the
 * object and a pointer into that mapping; the object may sit at a different
 * address in each process. Blocking is spin briefly, then sleep on a doorbell
 * (shmpool_wait()), and a wake syscall is made only when somebody announced
 * that it sleeps.
 *
 * Calls return 0 or -errno: -EINVAL if the object is not inside @p or not
 * 4-byte aligned, -EPERM on a read-only handle (every object is written by
 * every operation). Deadlines are absolute CLOCK_MONOTONIC times; NULL waits
 * for ever. The inline functions below do no argument checks (they are the
 * hot paths); the exported ones do.
 *
 * Concurrency: any operation may run concurrently with any other on the same
 * object from any thread of any process, except init, which must not run
 * while the object is in use.
 *
 * Owner death. A process can die at any instruction. A mutex whose owner
 * died is taken over by a thread waiting for it, within about 100 ms
 * (waiters look at the owner between sleeps), and that thread's lock call
 * returns -EOWNERDEAD: it holds the mutex, and must put right whatever the
 * dead owner left half done before it unlocks. A dead sleeper only costs
 * later wakers a spurious wake syscall; the semaphore keeps who posted and
 * waited last for a recovery step of the caller's own.
 */
#ifndef SHMPOOL_SYNC_H
#define SHMPOOL_SYNC_H

#include "shmpool.h"

#ifdef __cplusplus
#include <atomic>
#define __SHMPOOL_ATOMIC(t)	std::atomic<t>
#define __SHMPOOL_STD		std::
extern "C" {
#else
#include <stdatomic.h>
#define __SHMPOOL_ATOMIC(t)	_Atomic t
#define __SHMPOOL_STD
#endif

/*
 * struct shmpool_event - an event count: "something changed, look again"
 * @word: bit 0 SHMPOOL_EVENT_NEED_WAKEUP, bits 1-31 a sequence number that
 *	advances each time a signal finds the flag set
 *
 * For waiting on a condition that lives elsewhere in the pool (a ring's
 * head, a flag) without losing a wake-up:
 *
 *	while (!condition()) {
 *		key = shmpool_event_prepare_wait(ev);
 *		if (condition())
 *			break;
 *		shmpool_event_wait(p, ev, key);
 *	}
 *
 * and on the other side: make condition() true, then shmpool_event_signal().
 * A signal costs a fence and a load while nobody has announced a sleep, and
 * wakes every sleeper otherwise. A waiter that prepared but did not sleep
 * leaves the flag set, which costs the next signal one wake syscall; the
 * flag is not cleared on the waiter's side, where other sleepers may share
 * it. There is no owner: a dead waiter leaves at most that flag behind.
 */
struct shmpool_event {
	__SHMPOOL_ATOMIC(uint32_t) word;
};

#define SHMPOOL_EVENT_NEED_WAKEUP	1U

/* Set @ev to its initial state (all zero). */
int shmpool_event_init(struct shmpool *p, struct shmpool_event *ev);
/*
 * Sleep until @ev is signalled after the shmpool_event_prepare_wait() that
 * returned @key, or @deadline. 0: signalled (re-check the condition);
 * -ETIMEDOUT; -EINTR (a handler without SA_RESTART ran); -EINVAL also for a
 * @key that did not come from prepare_wait.
 */
int shmpool_event_timedwait(struct shmpool *p, struct shmpool_event *ev,
			    uint32_t key, const struct timespec *deadline);
/* Wake every sleeper of @ev now; returns how many woke. */
int shmpool_event_wake(struct shmpool *p, struct shmpool_event *ev);

/*
 * Announce a sleep on @ev; returns the key for shmpool_event_wait(). The
 * caller must re-check its condition after this and before waiting.
 */
static inline uint32_t shmpool_event_prepare_wait(struct shmpool_event *ev)
{
	uint32_t key;

	key = __SHMPOOL_STD atomic_fetch_or_explicit(&ev->word,
			SHMPOOL_EVENT_NEED_WAKEUP,
			__SHMPOOL_STD memory_order_seq_cst);
	/*
	 * (W) Pairs with (S) in shmpool_event_signal(): Dekker's pattern. We
	 * store NEED_WAKEUP, then the caller loads its condition; the
	 * signaller stores the condition, then loads NEED_WAKEUP. With a full
	 * barrier on both sides at least one sees the other's store: the
	 * caller sees the condition and does not sleep, or the signaller sees
	 * the flag and wakes us.
	 */
	__SHMPOOL_STD atomic_thread_fence(__SHMPOOL_STD memory_order_seq_cst);
	return key | SHMPOOL_EVENT_NEED_WAKEUP;
}

static inline int shmpool_event_wait(struct shmpool *p,
				     struct shmpool_event *ev, uint32_t key)
{
	return shmpool_event_timedwait(p, ev, key, NULL);
}

/*
 * Tell the waiters of @ev to look again; call after making their condition
 * true. No syscall unless a waiter announced itself. Returns how many
 * sleepers woke (0 without a syscall), or -errno from the wake.
 */
static inline int shmpool_event_signal(struct shmpool *p,
				       struct shmpool_event *ev)
{
	/*
	 * (S) Pairs with (W) in shmpool_event_prepare_wait(): orders the
	 * caller's stores that made the condition true before our load of
	 * NEED_WAKEUP, as futex wakers need.
	 */
	__SHMPOOL_STD atomic_thread_fence(__SHMPOOL_STD memory_order_seq_cst);
	if (!(__SHMPOOL_STD atomic_load_explicit(&ev->word,
			__SHMPOOL_STD memory_order_relaxed) &
	      SHMPOOL_EVENT_NEED_WAKEUP))
		return 0;
	return shmpool_event_wake(p, ev);
}

/*
 * struct shmpool_mutex - a sleeping lock
 * @word: 0 when free; else the owner's thread id (gettid(), in the PID
 *	namespace of the process that locked it) in bits 0-29, plus
 *	SHMPOOL_MUTEX_WAITERS when a thread may sleep on it, plus
 *	SHMPOOL_MUTEX_OWNER_DIED while the owner is one that took the lock
 *	over from a dead thread (the futex-PI word format). Every process
 *	using a mutex must be in the same PID namespace: a waiter judges the
 *	owner dead when no thread of that id is left (kill(tid, 0) is ESRCH,
 *	or the process is a zombie).
 * @__reserved: 0
 *
 * Uncontended lock and unlock are one atomic read-modify-write each. A
 * contended locker spins briefly, then sets WAITERS and sleeps on @word;
 * unlock wakes one sleeper if WAITERS was set. Locking a mutex the caller
 * already holds is -EDEADLK, unlocking one it does not hold -EPERM. The
 * thread id is cached per thread (and forgotten in the child of fork()).
 */
struct shmpool_mutex {
	__SHMPOOL_ATOMIC(uint32_t) word;
	uint32_t __reserved;
};

#define SHMPOOL_MUTEX_WAITERS		0x80000000U	/* = FUTEX_WAITERS */
#define SHMPOOL_MUTEX_OWNER_DIED	0x40000000U	/* = FUTEX_OWNER_DIED; reserved */
#define SHMPOOL_MUTEX_TID_MASK		0x3fffffffU	/* = FUTEX_TID_MASK */

int shmpool_mutex_init(struct shmpool *p, struct shmpool_mutex *m);
/*
 * Lock @m, sleeping as long as it takes (signals do not interrupt it).
 * 0, or -EOWNERDEAD: locked, taken over from an owner that died holding
 * it; repair the data it guards, then unlock as usual.
 */
int shmpool_mutex_lock(struct shmpool *p, struct shmpool_mutex *m);
/* Lock @m or give up at @deadline with -ETIMEDOUT; -EOWNERDEAD as above. */
int shmpool_mutex_timedlock(struct shmpool *p, struct shmpool_mutex *m,
			    const struct timespec *deadline);
/* Lock @m if it is free, else -EBUSY (also if the caller holds it). */
int shmpool_mutex_trylock(struct shmpool *p, struct shmpool_mutex *m);
/* Unlock @m, which the calling thread must hold (else -EPERM). */
int shmpool_mutex_unlock(struct shmpool *p, struct shmpool_mutex *m);

/*
 * struct shmpool_cond - a condition variable for a shmpool_mutex
 * @seq: advanced by every signal and broadcast; waiters sleep on it
 * @waiters: threads between reading @seq and returning; a hint that lets
 *	signals skip the wake syscall, never a count to rely on
 *
 * A waiter reads @seq while holding the mutex, so a signal issued after it
 * released the mutex changes @seq and cannot be lost; the predicate must be
 * changed under the same mutex (signalling after unlocking is fine). Wakes
 * may be spurious: re-check the predicate. Broadcast wakes every sleeper
 * (no requeueing onto the mutex). No owner; a dead waiter leaves @waiters
 * one too high, which costs signals a spurious wake syscall.
 */
struct shmpool_cond {
	__SHMPOOL_ATOMIC(uint32_t) seq;
	__SHMPOOL_ATOMIC(uint32_t) waiters;
};

int shmpool_cond_init(struct shmpool *p, struct shmpool_cond *c);
/*
 * Unlock @m (held by the caller, else -EPERM), sleep until signalled, lock
 * @m again. Returns 0 (possibly spuriously); -ETIMEDOUT at @deadline, with
 * @m locked again in both cases (and with -EOWNERDEAD, see
 * shmpool_mutex_lock()). Signal handlers cause a spurious 0.
 */
int shmpool_cond_timedwait(struct shmpool *p, struct shmpool_cond *c,
			   struct shmpool_mutex *m,
			   const struct timespec *deadline);
/* Wake one waiter of @c, if any. */
int shmpool_cond_signal(struct shmpool *p, struct shmpool_cond *c);
/* Wake every waiter of @c. */
int shmpool_cond_broadcast(struct shmpool *p, struct shmpool_cond *c);

static inline int shmpool_cond_wait(struct shmpool *p, struct shmpool_cond *c,
				    struct shmpool_mutex *m)
{
	return shmpool_cond_timedwait(p, c, m, NULL);
}

/*
 * struct shmpool_sem - a counting semaphore
 * @value: units available, 0..SHMPOOL_SEM_VALUE_MAX; waiters sleep on it
 *	while it is 0
 * @waiters: threads that announced a sleep; post makes a wake syscall only
 *	when it is non-zero
 * @last_post: thread id of the last successful post
 * @last_wait: thread id of the last successful wait/trywait
 *
 * A semaphore has no owner; @last_post and @last_wait are what a recovery
 * step gets (e.g. the holder of a semaphore used as a lock), written after
 * the operation, so they may lag behind it.
 */
struct shmpool_sem {
	__SHMPOOL_ATOMIC(uint32_t) value;
	__SHMPOOL_ATOMIC(uint32_t) waiters;
	__SHMPOOL_ATOMIC(uint32_t) last_post;
	__SHMPOOL_ATOMIC(uint32_t) last_wait;
};

#define SHMPOOL_SEM_VALUE_MAX	0x7fffffffU

/* Set @s to @value units (-EINVAL above SHMPOOL_SEM_VALUE_MAX). */
int shmpool_sem_init(struct shmpool *p, struct shmpool_sem *s,
		     uint32_t value);
/* Add a unit; -EOVERFLOW at SHMPOOL_SEM_VALUE_MAX. */
int shmpool_sem_post(struct shmpool *p, struct shmpool_sem *s);
/* Take a unit if there is one, else -EAGAIN. */
int shmpool_sem_trywait(struct shmpool *p, struct shmpool_sem *s);
/*
 * Take a unit, sleeping until there is one or @deadline (-ETIMEDOUT);
 * -EINTR if a handler without SA_RESTART ran.
 */
int shmpool_sem_timedwait(struct shmpool *p, struct shmpool_sem *s,
			  const struct timespec *deadline);

static inline int shmpool_sem_wait(struct shmpool *p, struct shmpool_sem *s)
{
	return shmpool_sem_timedwait(p, s, NULL);
}

#ifdef __cplusplus
}
#endif

#endif /* SHMPOOL_SYNC_H */
