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
 */
#define _GNU_SOURCE
#include <pthread.h>
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
 */
static _Thread_local uint32_t tid_cache;
static pthread_once_t tid_once = PTHREAD_ONCE_INIT;

static void tid_forget(void)
{
	tid_cache = 0;
}

static void tid_register(void)
{
	pthread_atfork(NULL, NULL, tid_forget);
}

static uint32_t self_tid(void)
{
	if (!tid_cache) {
		pthread_once(&tid_once, tid_register);
		tid_cache = (uint32_t)syscall(SYS_gettid);
	}
	return tid_cache;
}

/*
 * The offset of @obj (@len bytes) in @p if it lies inside, 4-byte aligned,
 * and @p is writable; else -EINVAL or -EPERM.
 */
static int64_t obj_off(const struct shmpool *p, const void *obj, size_t len)
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

	if (off < 0)
		return (int)off;
	v = atomic_load_explicit(&ev->word, memory_order_relaxed);
	while (v & SHMPOOL_EVENT_NEED_WAKEUP) {
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
			return shmpool_wake(p, (uint64_t)off,
					    SHMPOOL_WAKE_ALL);
	}
	return 0;
}

SHMPOOL_EXPORT
int shmpool_event_timedwait(struct shmpool *p, struct shmpool_event *ev,
			    uint32_t key, const struct timespec *deadline)
{
	int64_t off = obj_off(p, ev, sizeof(*ev));
	int ret;

	if (off < 0)
		return (int)off;
	if (!(key & SHMPOOL_EVENT_NEED_WAKEUP))
		return -EINVAL;
	for (;;) {
		/* acquire: pairs with the release CAS in shmpool_event_wake() */
		if (atomic_load_explicit(&ev->word, memory_order_acquire) != key)
			return 0;
		ret = shmpool_wait(p, off, key, deadline, 0);
		if (ret == 0 || ret == -EAGAIN)
			continue;	/* woken, or changed: the load decides */
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
	m->__reserved = 0;
	return 0;
}

/*
 * Take a free @m for @tid. @val is what to store: tid, or tid | WAITERS
 * after we slept (others may still sleep, and only a WAITERS bit makes our
 * unlock wake one of them).
 */
static bool mutex_take(struct shmpool_mutex *m, uint32_t val)
{
	uint32_t free_word = 0;

	/*
	 * Acquire: pairs with the release in shmpool_mutex_unlock(); the
	 * critical section cannot start before the lock is ours, and sees the
	 * previous owner's writes.
	 */
	return atomic_compare_exchange_strong_explicit(&m->word, &free_word, val,
						       memory_order_acquire,
						       memory_order_relaxed);
}

/*
 * Timed out: leave, but never leave a sleeper stranded. If the unlock that
 * woke someone woke us, another sleeper relies on the next unlock seeing
 * WAITERS; so either take the lock after all, or make sure the current
 * owner's word has WAITERS set.
 */
static int mutex_timed_out(struct shmpool_mutex *m, uint32_t tid)
{
	uint32_t v;

	for (;;) {
		v = atomic_load_explicit(&m->word, memory_order_relaxed);
		if (!v) {
			if (mutex_take(m, tid | SHMPOOL_MUTEX_WAITERS))
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
}

/*
 * The word says @v and its owner is gone: take the lock over for @tid,
 * marked OWNER_DIED (and WAITERS if set, for the others asleep). 0 if we
 * now own it, -EAGAIN if the word changed meanwhile.
 */
static int mutex_take_over(struct shmpool_mutex *m, uint32_t v, uint32_t tid)
{
	/*
	 * Acquire: pairs with the release of whoever changed the word last
	 * (the dead owner's lock, or an unlock before it), so we see what
	 * the dead owner wrote before it died, as far as it got.
	 */
	if (!atomic_compare_exchange_strong_explicit(&m->word, &v,
			tid | SHMPOOL_MUTEX_OWNER_DIED | (v & SHMPOOL_MUTEX_WAITERS),
			memory_order_acquire, memory_order_relaxed))
		return -EAGAIN;
	return 0;
}

static int mutex_lock_slow(struct shmpool *p, struct shmpool_mutex *m,
			   int64_t off, uint32_t tid,
			   const struct timespec *deadline)
{
	const struct timespec *slice;
	struct timespec ts;
	uint32_t v;
	int i, ret;

	for (i = 0; i < SPIN_TRIES; i++) {
		v = atomic_load_explicit(&m->word, memory_order_relaxed);
		if (!v && mutex_take(m, tid))
			return 0;
		if ((v & SHMPOOL_MUTEX_TID_MASK) == tid)
			return -EDEADLK;
		if (v & SHMPOOL_MUTEX_WAITERS)
			break;		/* others sleep already: queue behind them */
		cpu_relax();
	}

	for (;;) {
		v = atomic_load_explicit(&m->word, memory_order_relaxed);
		if (!v) {
			if (mutex_take(m, tid | SHMPOOL_MUTEX_WAITERS))
				return 0;
			continue;
		}
		if ((v & SHMPOOL_MUTEX_TID_MASK) == tid)
			return -EDEADLK;
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
		slice = __shmpool_deadline_within(deadline, OWNER_CHECK_MS, &ts);
		ret = shmpool_wait(p, off, v, slice, 0);
		if (ret == -ETIMEDOUT && slice != deadline) {
			/* a slice ended: is the owner still there? */
			if (__shmpool_task_gone(v & SHMPOOL_MUTEX_TID_MASK) &&
			    !mutex_take_over(m, v, tid))
				return -EOWNERDEAD;
			continue;
		}
		if (ret == -ETIMEDOUT)
			return mutex_timed_out(m, tid);
		/* woken, word changed, or a handler ran: try again */
		if (ret && ret != -EAGAIN && ret != -EINTR)
			return ret;
	}
}

SHMPOOL_EXPORT
int shmpool_mutex_timedlock(struct shmpool *p, struct shmpool_mutex *m,
			    const struct timespec *deadline)
{
	int64_t off = obj_off(p, m, sizeof(*m));
	uint32_t tid;

	if (off < 0)
		return (int)off;
	tid = self_tid();
	if (mutex_take(m, tid))
		return 0;
	return mutex_lock_slow(p, m, off, tid, deadline);
}

SHMPOOL_EXPORT
int shmpool_mutex_lock(struct shmpool *p, struct shmpool_mutex *m)
{
	return shmpool_mutex_timedlock(p, m, NULL);
}

SHMPOOL_EXPORT
int shmpool_mutex_trylock(struct shmpool *p, struct shmpool_mutex *m)
{
	int64_t off = obj_off(p, m, sizeof(*m));

	if (off < 0)
		return (int)off;
	return mutex_take(m, self_tid()) ? 0 : -EBUSY;
}

SHMPOOL_EXPORT
int shmpool_mutex_unlock(struct shmpool *p, struct shmpool_mutex *m)
{
	int64_t off = obj_off(p, m, sizeof(*m));
	uint32_t tid, v;

	if (off < 0)
		return (int)off;
	tid = self_tid();
	v = tid;
	/*
	 * Release: pairs with the acquire in mutex_take() of the next owner;
	 * our critical section's writes are visible before the lock is seen
	 * free.
	 */
	if (atomic_compare_exchange_strong_explicit(&m->word, &v, 0,
						    memory_order_release,
						    memory_order_relaxed))
		return 0;
	if ((v & SHMPOOL_MUTEX_TID_MASK) != tid)
		return -EPERM;
	/*
	 * WAITERS or OWNER_DIED is set. While we own the word only WAITERS
	 * can change, so exchange; that also clears OWNER_DIED: the caller
	 * repaired what the dead owner left. Release: as above.
	 */
	v = atomic_exchange_explicit(&m->word, 0, memory_order_release);
	return v & SHMPOOL_MUTEX_WAITERS ? wake(p, off, 1) : 0;
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
	uint32_t seq;
	int ret, lret;

	if (off < 0 || moff < 0)
		return (int)(off < 0 ? off : moff);
	if ((atomic_load_explicit(&m->word, memory_order_relaxed) &
	     SHMPOOL_MUTEX_TID_MASK) != self_tid())
		return -EPERM;

	seq = atomic_load_explicit(&c->seq, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->waiters, 1, memory_order_relaxed);
	ret = shmpool_mutex_unlock(p, m);
	if (ret) {
		atomic_fetch_sub_explicit(&c->waiters, 1, memory_order_relaxed);
		return ret;
	}

	ret = shmpool_wait(p, off, seq, deadline, 0);
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

SHMPOOL_EXPORT
int shmpool_sem_init(struct shmpool *p, struct shmpool_sem *s, uint32_t value)
{
	int64_t off = obj_off(p, s, sizeof(*s));

	if (off < 0)
		return (int)off;
	if (value > SHMPOOL_SEM_VALUE_MAX)
		return -EINVAL;
	atomic_store_explicit(&s->value, value, memory_order_relaxed);
	atomic_store_explicit(&s->waiters, 0, memory_order_relaxed);
	atomic_store_explicit(&s->last_post, 0, memory_order_relaxed);
	atomic_store_explicit(&s->last_wait, 0, memory_order_relaxed);
	return 0;
}

static bool sem_take(struct shmpool_sem *s)
{
	uint32_t v = atomic_load_explicit(&s->value, memory_order_relaxed);

	while (v) {
		/*
		 * Acquire: pairs with the release in shmpool_sem_post(); what
		 * the poster wrote before posting is visible to the taker.
		 */
		if (atomic_compare_exchange_weak_explicit(&s->value, &v, v - 1,
							  memory_order_acquire,
							  memory_order_relaxed)) {
			atomic_store_explicit(&s->last_wait, self_tid(),
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
	uint32_t v;

	if (off < 0)
		return (int)off;
	v = atomic_load_explicit(&s->value, memory_order_relaxed);
	do {
		if (v >= SHMPOOL_SEM_VALUE_MAX)
			return -EOVERFLOW;
		/* release: pairs with the acquire in sem_take() */
	} while (!atomic_compare_exchange_weak_explicit(&s->value, &v, v + 1,
							memory_order_release,
							memory_order_relaxed));
	atomic_store_explicit(&s->last_post, self_tid(), memory_order_relaxed);
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

	if (off < 0)
		return (int)off;
	return sem_take(s) ? 0 : -EAGAIN;
}

SHMPOOL_EXPORT
int shmpool_sem_timedwait(struct shmpool *p, struct shmpool_sem *s,
			  const struct timespec *deadline)
{
	int64_t off = obj_off(p, s, sizeof(*s));
	int i, ret;

	if (off < 0)
		return (int)off;
	for (i = 0; i < SPIN_TRIES; i++) {
		if (sem_take(s))
			return 0;
		cpu_relax();
	}

	atomic_fetch_add_explicit(&s->waiters, 1, memory_order_relaxed);
	/* (T) Pairs with (P) in shmpool_sem_post(), see there. */
	atomic_thread_fence(memory_order_seq_cst);
	for (;;) {
		if (sem_take(s)) {
			ret = 0;
			break;
		}
		/* sleeps only while @value is still 0: a post changes it */
		ret = shmpool_wait(p, off, 0, deadline, 0);
		if (ret == 0 || ret == -EAGAIN)
			continue;
		/*
		 * Timed out or interrupted: if the post that woke us left a
		 * unit, take it rather than strand a sleeper it was meant to
		 * reach (each post wakes only one).
		 */
		if ((ret == -ETIMEDOUT || ret == -EINTR) && sem_take(s))
			ret = 0;
		break;
	}
	atomic_fetch_sub_explicit(&s->waiters, 1, memory_order_relaxed);
	return ret;
}
