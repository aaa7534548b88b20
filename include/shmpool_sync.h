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
 * for ever; one that shmpool_wait() refuses (tv_nsec outside [0, 1e9), a
 * negative tv_sec) is -EINVAL as soon as a call has to wait (a free mutex
 * or a semaphore with a unit is taken without a look at it; a condition
 * wait always waits, and checks before it unlocks). The inline functions
 * below do no argument checks (they are the hot paths); the exported ones
 * do.
 *
 * A peer that keeps changing an object's word (a hostile or broken one:
 * well-behaved callers change it only by completing an operation) makes a
 * compare-exchange fail again and again. After 1024 failures in a row a
 * call that does not block gives up (shmpool_sem_trywait() -EAGAIN,
 * shmpool_sem_post() -EBUSY; shmpool_event_wake() wakes every sleeper
 * without advancing the word), and a blocking one still returns by its
 * deadline (-ETIMEDOUT). So does one whose sleep peers keep ending with
 * deaths: on the device, every attachment's end (a peer that opens and
 * closes writable handles of the pool does that too) ends every sleep that
 * watches for deaths at once (but a mutex sleeper's or a robust
 * semaphore waiter's, which watches its owner or last taker only, where
 * the module has SHMPOOL_FEAT_WAIT_OWNER), and the
 * module says so before it looks at the time.
 *
 * Concurrency: any operation may run concurrently with any other on the same
 * object from any thread of any process, except init, which must not run
 * while the object is in use.
 *
 * Owner death. A process can die at any instruction, and nothing here waits
 * for ever on a dead one. Owners are attachments (shmpool.h, "Attachments"):
 * a sleeper learns that a peer's attachment ended from the module at once
 * on the device backend (SHMPOOL_CAP_DEATH_NOTICE), and by looking every
 * 100 ms (pidfds) on memfd. What survivors see, per object:
 * - mutex: a locker waiting for an owner that died takes the lock over and
 *   gets -EOWNERDEAD: it holds the mutex, and must put right whatever the
 *   dead owner left half done before it unlocks. A live owner is never
 *   taken over (device: whatever PID namespace it is in). On the device
 *   only the end of the owner the word names wakes a sleeping locker
 *   (SHMPOOL_WAIT_OWNER; a module without SHMPOOL_FEAT_WAIT_OWNER wakes
 *   them at every attachment end of the pool).
 * - condition variable: on the device, the death of a process holding the
 *   waiters' mutex wakes them at once; each relocks the mutex, and the one
 *   that takes it over returns -EOWNERDEAD (it holds the mutex and repairs
 *   as above; the others follow with 0). Other deaths do not end a sleep,
 *   except that a waiter woken by one right after a signal meant for
 *   another waiter returns (a spurious 0) rather than risk losing it. On
 *   memfd a waiter sleeps until signalled or its deadline (a sliced sleep
 *   would steal signals meant for others), then relocks as above.
 * - semaphore: a waiter of an empty robust semaphore (sem_init_robust)
 *   whose last taker died gets -EOWNERDEAD without a unit, once per such
 *   death: if that taker held a unit, post it back. On the device only
 *   the end of that taker wakes a sleeping waiter (as for a mutex). A
 *   plain semaphore waits for a post from anyone; @last_post and
 *   @last_wait are attachment ids for the caller's own recovery.
 * A death that a mutex or robust semaphore waiter learns of only after its
 * deadline still counts: it looks at the owner (last taker) once more and
 * takes a dead one over (-EOWNERDEAD) rather than return -ETIMEDOUT.
 * - event count: no owner; a waiter's condition lives elsewhere, and the
 *   structure that owns it says what its death means.
 * A dead sleeper only costs later wakers a spurious wake syscall.
 *
 * memfd lacks SHMPOOL_CAP_DEATH_NOTICE: the attachment id is the process
 * id, so every process using an object must share a PID namespace (a
 * process id from another one may name a dead process here: its live
 * owner would be taken over), and a dead owner whose process id was
 * reused by a live process passes for alive until that one exits too. A
 * device module without attachments (before API 3) gives memfd's ids and
 * limits.
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
 * returned @key, or @deadline. 0: signalled (re-check the condition): the
 * word moved off @key, also if the doorbell found it so (-EAGAIN) and a
 * peer moved it back; -ETIMEDOUT (also while a peer keeps waking us with
 * the word at @key); -EINTR (a handler without SA_RESTART ran); -EINVAL
 * also for a @key that did not come from prepare_wait.
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
 * sleepers woke (0 without a syscall), or -errno from
 * shmpool_event_wake().
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
 * @word: 0 when free; else the owner's attachment id (shmpool_attach_id())
 *	in bits 0-29, plus SHMPOOL_MUTEX_WAITERS when a thread may sleep on
 *	it, plus SHMPOOL_MUTEX_OWNER_DIED while the owner is one that took the
 *	lock over from a dead one (the futex-PI word format, with attachment
 *	ids for thread ids)
 * @tid: the owning thread (gettid() in its process), stored with the word
 *	or right after it is taken (0 until then), and cleared with it or
 *	before it is released; it tells apart the threads of the owning
 *	process only. 0 whenever @word is 0.
 *
 * Uncontended lock and unlock are one atomic read-modify-write each and no
 * system call: at an 8-byte aligned address, one 8-byte compare-exchange of
 * @word and @tid together, (0, 0) for (id, thread) and back, so the owner
 * check of unlock is the compare itself (the fastest place for a mutex);
 * at offset 4 mod 8, one 4-byte one on @word, plus a store to @tid. Both
 * ways keep the format above and work side by side on one mutex (a failed
 * 8-byte compare falls back to the 4-byte path), so processes whose
 * libraries differ only in this share mutexes. A contended locker
 * spins briefly, then sets WAITERS and sleeps on @word; unlock wakes one
 * sleeper if WAITERS was set: the highest-priority real-time sleeper, else
 * the longest sleeping one (the doorbells' order, futex's; other processes
 * coming and going do not disturb it, as they wake only sleepers whose
 * owner they were, on a module with SHMPOOL_FEAT_WAIT_OWNER; on memfd,
 * where sleepers look for deaths every 100 ms, one that looks just as the
 * mutex is freed may take it ahead of the sleeper the unlock woke, as any
 * futex lock allows: no order there). Locking a
 * mutex the calling thread already holds is -EDEADLK, unlocking one it
 * does not hold -EPERM.
 *
 * No priority inheritance: a low-priority owner that a middle-priority
 * task keeps from running also keeps a high-priority waiter waiting, as
 * with a PTHREAD_PRIO_NONE pthread mutex (the kernel's boosting,
 * rt_mutex_setprio(), is not available to a module). Real-time code that
 * shares a mutex across priorities needs the owner at the highest priority
 * of its waiters (a priority ceiling, set by the application).
 *
 * A word that names the calling thread while that thread holds none of
 * these mutexes is a claim it did not make: a thread of its process died
 * holding the mutex and the kernel gave that thread's id to the caller, or
 * a peer wrote the word. lock, timedlock and trylock take it over as from
 * a dead owner (-EOWNERDEAD), unlock refuses it (-EPERM). While the thread
 * holds another mutex such a claim cannot be told from a relock, and is
 * answered as one (-EDEADLK, trylock -EBUSY).
 *
 * The owner is dead when its attachment ended (the process exited, was
 * killed, exec()ed, or closed its last handle of the pool), or when it is
 * the caller's own attachment and the thread in @tid has exited (tgkill();
 * a main thread that called pthread_exit() is not seen to end). A fork()
 * child has an attachment of its own: it does not hold its parent's locks.
 * Calls may also return the errors of shmpool_attach_id() (a fork() child
 * attaches on its first call).
 */
struct shmpool_mutex {
	__SHMPOOL_ATOMIC(uint32_t) word;
	__SHMPOOL_ATOMIC(uint32_t) tid;
};

#define SHMPOOL_MUTEX_WAITERS		0x80000000U	/* = FUTEX_WAITERS */
#define SHMPOOL_MUTEX_OWNER_DIED	0x40000000U	/* = FUTEX_OWNER_DIED */
#define SHMPOOL_MUTEX_OWNER_MASK	0x3fffffffU	/* = FUTEX_TID_MASK: an attachment id */
#define SHMPOOL_MUTEX_TID_MASK		SHMPOOL_MUTEX_OWNER_MASK	/* the old name */

int shmpool_mutex_init(struct shmpool *p, struct shmpool_mutex *m);
/*
 * Lock @m, sleeping as long as it takes (signals do not interrupt it).
 * 0, or -EOWNERDEAD: locked, taken over from an owner that died holding
 * it (device: at once; memfd: within about 100 ms); repair the data it
 * guards, then unlock as usual (which clears OWNER_DIED).
 */
int shmpool_mutex_lock(struct shmpool *p, struct shmpool_mutex *m);
/* Lock @m or give up at @deadline with -ETIMEDOUT; -EOWNERDEAD as above. */
int shmpool_mutex_timedlock(struct shmpool *p, struct shmpool_mutex *m,
			    const struct timespec *deadline);
/*
 * Lock @m if it is free, else -EBUSY (also if the caller holds it); or take
 * it over from a dead owner: -EOWNERDEAD as above. A busy @m held by another
 * process costs memfd a pidfd_open() to look at its owner.
 */
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
 * one too high, which costs signals a spurious wake syscall. A waiter is
 * not left asleep by a death: see "Owner death" above.
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
 * shmpool_mutex_lock()). A bad @deadline is -EINVAL before @m is touched
 * (as pthread_cond_timedwait()). Signal handlers cause a spurious 0. On the
 * device the death of @m's holder ends the sleep at once (-EOWNERDEAD).
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
 * @value: units available, 1..SHMPOOL_SEM_VALUE_MAX; waiters sleep on it
 *	while there are none. Empty, it is 0, but for a robust semaphore
 *	(SHMPOOL_SEM_TAKER_IN_VALUE): SHMPOOL_SEM_EMPTY | the attachment id of
 *	the taker that emptied it (SHMPOOL_SEM_TAKER_MASK; 0: none, as after
 *	init, or after a waiter was told of its death)
 * @waiters: threads that announced a sleep; post makes a wake syscall only
 *	when it is non-zero
 * @last_post: attachment id of the last successful post
 * @last_wait: attachment id of the last successful wait/trywait; a robust
 *	semaphore's waiter that reports its death clears it
 * @flags: SHMPOOL_SEM_ROBUST | SHMPOOL_SEM_TAKER_IN_VALUE
 *	(shmpool_sem_init_robust()) or 0
 * @__reserved: 0
 *
 * A semaphore has no owner; @last_post and @last_wait are what a recovery
 * step gets (test them with shmpool_peer_alive()), written after the
 * operation, so they may lag behind it (a process that died between its
 * operation and that store is not in them).
 *
 * Robust semaphores (shmpool_sem_init_robust()) are for units that a taker holds
 * until it posts them back (a lock, or n slots of one): a waiter of an empty
 * one whose last taker died gets -EOWNERDEAD without a unit, once per such
 * death (device: at once; memfd: within about 100 ms); if the dead taker
 * held a unit, post it back. The last taker is the one that emptied it,
 * named in @value by the very compare-exchange that took the last unit, so
 * a taker that dies at any instruction of its wait is seen once it holds
 * that unit. Takers of earlier units of a semaphore with several are not
 * recorded: one that dies holding its unit is not reported (the unit is
 * lost until somebody posts). On the device only the end of the taker
 * that @value names wakes a sleeping waiter (SHMPOOL_WAIT_OWNER, where the
 * module has SHMPOOL_FEAT_WAIT_OWNER), and waiters keep their order; a
 * post wakes them in the doorbells' order, as a mutex's unlock does. A
 * waiter that went to sleep on a @value naming nobody (made empty, or
 * after a death notice) is woken by every end in the pool: a post wakes
 * one sleeper, which may take the unit and die while the others sleep on
 * a word that named nobody when they slept. The
 * library cannot tell a taker that died holding a unit from a consumer
 * that took one and exited, which is why plain semaphores (a count of
 * items, say) never report deaths: their waiters wait for a post from
 * anyone, as before.
 *
 * Library versions: robust semaphores made by a library before
 * SHMPOOL_SEM_TAKER_IN_VALUE (@flags SHMPOOL_SEM_ROBUST alone) count down
 * to 0 and name their last taker in @last_wait only, stored after the
 * take (a taker that died between the two is not seen); this library
 * keeps using them that way, with those libraries. A library that old
 * does not know the new @value format: every process that uses a robust
 * semaphore made by shmpool_sem_init_robust() from this version on must
 * link this version or a later one (an older one would take a unit from
 * an empty one, and fail to post to it with -EOVERFLOW).
 */
struct shmpool_sem {
	__SHMPOOL_ATOMIC(uint32_t) value;
	__SHMPOOL_ATOMIC(uint32_t) waiters;
	__SHMPOOL_ATOMIC(uint32_t) last_post;
	__SHMPOOL_ATOMIC(uint32_t) last_wait;
	uint32_t flags;
	uint32_t __reserved;
};

#define SHMPOOL_SEM_VALUE_MAX	0x7fffffffU
#define SHMPOOL_SEM_ROBUST	1U	/* @flags: units are held, deaths reported */
#define SHMPOOL_SEM_TAKER_IN_VALUE 2U	/* @flags: an empty @value names its taker */
#define SHMPOOL_SEM_EMPTY	0x80000000U	/* @value: empty, see above */
#define SHMPOOL_SEM_TAKER_MASK	0x3fffffffU	/* @value: the taker, if EMPTY */

/* Set @s to @value units (-EINVAL above SHMPOOL_SEM_VALUE_MAX). */
int shmpool_sem_init(struct shmpool *p, struct shmpool_sem *s,
		     uint32_t value);
/* The same, robust: units are held by their takers (see above). */
int shmpool_sem_init_robust(struct shmpool *p, struct shmpool_sem *s,
			    uint32_t value);
/*
 * Add a unit; -EOVERFLOW at SHMPOOL_SEM_VALUE_MAX; -EBUSY (no unit added)
 * if a peer kept changing @value (see above).
 */
int shmpool_sem_post(struct shmpool *p, struct shmpool_sem *s);
/* Take a unit if there is one, else -EAGAIN (also: see above). */
int shmpool_sem_trywait(struct shmpool *p, struct shmpool_sem *s);
/*
 * Take a unit, sleeping until there is one or @deadline (-ETIMEDOUT);
 * -EINTR if a handler without SA_RESTART ran; robust semaphores only:
 * -EOWNERDEAD (no unit taken) if it is empty and its last taker died, once
 * per such death, to one waiter (device: at once; memfd: within ~100 ms).
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
