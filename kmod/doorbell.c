// SPDX-License-Identifier: GPL-2.0
/*
 * Doorbells: futex-like WAIT/WAKE on u32 words inside pools, with the
 * semantics of kernel/futex/waitwake.c.
 *
 * Waiters hash by (pool, offset) into a fixed table of buckets, each a
 * spinlock, a list of sleepers in wake order (below) and a list of NOTIFY
 * bindings. The hash
 * is hsiphash of the kernel's pool pointer and the offset, under a random
 * key drawn at load: nobody can choose or learn which words share a
 * bucket, so nobody can pile their waiters onto someone else's word.
 *
 * WAIT compares before it queues (futex_wait_setup()): under the bucket
 * lock it reads the word from the pool page and queues itself only if it
 * equals the expected value; a mismatch returns -EAGAIN without ever having
 * been queued. WAKE takes the same lock, so:
 *
 *   waker (user)                  waiter (kernel)
 *   store word = new              lock(bucket); load word; enqueue; unlock
 *   ioctl(WAKE): lock(bucket)     sleep
 *
 * either the waiter's load sees the new value and it returns -EAGAIN, or its
 * critical section came first and the waker's later lock finds it queued.
 * (Userspace that skips WAKE when it believes nobody sleeps needs its own
 * full barrier; see libshmpool.) WAITV does the same entry by entry
 * (futex_wait_multiple_setup()): a mismatch at entry i unqueues entries
 * 0..i-1 and returns the highest index of those woken meanwhile (that wake
 * was real and must not be lost), else -EAGAIN.
 *
 * Wake order is futex's (__futex_queue()): real-time and deadline sleepers
 * first, by their priority when they queued, then everyone else (nice does
 * not count); in the order they queued within one priority. futex keeps
 * its queues in a plist; plist_add() is not exported, so a sleeper below
 * real-time priority goes to the tail at once, and a real-time one walks
 * past the real-time sleepers of its priority or higher, which only
 * real-time tasks (CAP_SYS_NICE or RLIMIT_RTPRIO) can queue.
 *
 * WAKE is one pass (futex_wake()): under the lock it takes at most nr
 * matching sleepers off the bucket in that order and marks each woken with
 * a release store, holding its task first (futex_wake_mark()); the mark is
 * the waker's last touch of the waiter, which lives on the sleeping task's
 * stack and may return as soon as it sees the mark (a death walk reads its
 * list link after the mark too: see WAIT_DEATH below). The tasks are woken
 * after unlocking. So a waiter that stops sleeping on its own (deadline,
 * signal, kill) finds itself, under the lock, either still queued (it
 * leaves) or marked (it was woken and returns so at once), and WAKE's
 * count is always what its waiters return; it never waits for the waker,
 * which may be preempted for as long as a SCHED_FIFO task likes. (futex
 * links the tasks through task_struct.wake_q, which modules cannot reach:
 * wake_q_add() is not exported. A small array on the waker's stack holds
 * the first SHMPOOL_WAKE_BATCH; any more are woken under the lock, as
 * futexes were before wake_q.)
 *
 * While asleep a waiter stays queued where it is: a spurious wake-up
 * (schedule() returning without a WAKE, deadline or signal, e.g. a late
 * wake_up_process() of a waker that marked this task's previous WAIT)
 * sleeps again without leaving the queue, so it keeps its place. So does
 * a frozen one (it sleeps TASK_FREEZABLE, as futexes do). A signal does
 * take it out, as for futexes; the restarted call queues anew.
 *
 * NOTIFY bindings are signalled outside the bucket lock: under the lock WAKE
 * takes a reference on each matching binding into an array it allocated
 * beforehand, sized by the bucket's binding count; should the count have
 * grown past the array, it unlocks, reallocates and starts again, which is
 * safe because nothing was woken or signalled yet. After unlocking it
 * signals each eventfd and drops the references. The per-user limit on
 * bindings bounds what one user can make a WAKE walk.
 *
 * WAIT_DEATH (attach.c ends an attachment): a WAIT that also ends when an
 * attachment of its pool ends after the caller's death_seq. Like the word,
 * death_seq is compared under the bucket lock before queueing. The waiter
 * is also on its pool's list of death waiters (pool->death_lock), from
 * before it takes the bucket lock to after it has left the bucket, and the
 * ender walks that list, taking each waiter's bucket lock to claim it:
 *
 *   ender (attach.c)                  waiter
 *   pool->death_seq = n + 1           lock(death_lock); add to the list;
 *   lock(death_lock);                   unlock
 *   for each waiter on the list:      lock(bucket); load death_seq (n?);
 *     lock(bucket); claim it if         enqueue; unlock
 *     queued; unlock(bucket)          sleep
 *   unlock(death_lock)
 *
 * If the ender's walk holds death_lock first, the waiter's add comes after
 * the ender's unlock, which was after the store: its load sees n + 1,
 * -EOWNERDEAD at once. Otherwise the ender finds it on the list and locks
 * its bucket: if the waiter queued first it is claimed; if not, its lock
 * comes after the ender's unlock, which was after the store, so it sees
 * n + 1. No death is lost. A death claim is a claim like WAKE's (off the
 * bucket and marked under its lock), only flagged @by_death, so the waiter
 * returns -EOWNERDEAD; a waiter either WAKE or a death took is invisible
 * to the other, and WAKE's count stays what its waiters return. The walk
 * reads a claimed waiter's list link after the mark: it is still valid,
 * since the waiter must take death_lock to leave the list and return. A
 * death costs a walk over its own pool's death waiters, not over the
 * table, so processes that attach and detach in a loop tax nobody else's
 * buckets; the walk holds death_lock throughout, as the table walk held
 * each bucket's lock over all of that bucket's sleepers, and its length is
 * bounded by the per-user limits on sleepers.
 *
 * WAIT_OWNER narrows WAIT_DEATH to the word's owner, the attachment id in
 * the word's owner_mask bits, as a robust futex's owner is the tid in
 * FUTEX_TID_MASK: a lock's sleepers are not woken (and do not lose their
 * place in the wake order) by every process that comes and goes. In place
 * of death_seq the waiter checks, under the bucket lock, that the id in
 * @expected is live (shmpool_attach_live(): its status page slot, which
 * only attach.c writes, under shmpool_att_lock); the ender claims such a
 * waiter only if the word, read under the same lock, names the ending id.
 * The argument above holds with "load slot == id" for "load death_seq",
 * since the ender clears the slot before it bumps death_seq:
 *
 *   ender (attach.c)                  waiter
 *   slot[id] = 0; death_seq++         lock(death_lock); add; unlock
 *   lock(death_lock); for each        lock(bucket); load slot (id?);
 *     waiter: lock(bucket); read        enqueue; unlock
 *     its word; claim it if it        sleep
 *     names id; unlock(bucket)
 *
 * If the ender's walk comes first, the waiter's later load sees the slot
 * clear: -EOWNERDEAD at once. Otherwise a waiter queued before the ender
 * locked its bucket is claimed if the word then names the ending id (a
 * word that names someone else, as a lock handed on while it slept does,
 * is that other owner's business: its end is read the same way); one
 * queueing after the ender's unlock sees the slot clear. The word
 * itself is user memory, read as WAIT reads it: a peer that writes it
 * only chooses whose end wakes the sleeper, which it could do anyway by
 * changing the word and waking.
 *
 * The pool outlives its waiters: a sleeper is inside an ioctl on a pool
 * file (fdget) or holds a reference to each WAITV entry's file (fget), and
 * a binding belongs to the file that added it and is removed at its release.
 */
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/highmem.h>
#include <linux/hrtimer.h>
#include <linux/log2.h>
#include <linux/random.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/sched/prio.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/siphash.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "shmpool.h"

struct shmpool_bucket {
	spinlock_t lock;		/* protects everything below */
	struct list_head waiters;	/* shmpool_waiter.node, in wake order */
	struct list_head notifiers;	/* shmpool_notifier.node */
	unsigned int nr_notifiers;
} ____cacheline_aligned_in_smp;

struct shmpool_waiter {
	struct list_head node;		/* in the bucket while queued, else empty */
	struct list_head death_node;	/* WAIT_DEATH: in pool->death_waiters */
	struct shmpool_bucket *bucket;
	struct shmpool_pool *pool;	/* key, with @offset */
	u64 offset;
	u32 bitset;
	int prio;			/* wake order: lower first (task prio) */
	bool by_death;			/* woken by an attachment's end */
	bool death;			/* WAIT_DEATH, with @death_seq or... */
	u32 death_seq;
	u32 owner_mask;			/* ...WAIT_OWNER: the word's owner bits */
	bool woken;			/* a waker took it off, under the lock */
	struct task_struct *task;
};

/* A NOTIFY binding, owned by the file that added it. */
struct shmpool_notifier {
	struct list_head node;		/* in the bucket while bound */
	struct list_head file_node;	/* in shmpool_file.notifiers */
	struct shmpool_bucket *bucket;
	struct shmpool_pool *pool;
	u64 offset;
	u32 bitset;
	refcount_t ref;			/* the file's, and each WAKE's in flight */
	struct eventfd_ctx *efd;
	struct shmpool_user *user;	/* charged one binding while bound */
};

static struct shmpool_bucket *shmpool_buckets;
static unsigned int shmpool_hash_bits;
static hsiphash_key_t shmpool_hash_key;
static atomic_t shmpool_nwaiters = ATOMIC_INIT(0);

unsigned int shmpool_waiters(void)
{
	return atomic_read(&shmpool_nwaiters);
}

/*
 * hsiphash: the keyed hash meant for hash tables that must resist chosen
 * keys, cheaper than siphash; the output never leaves the kernel.
 */
static struct shmpool_bucket *shmpool_bucket(struct shmpool_pool *pool, u64 offset)
{
	u64 p = (u64)(unsigned long)pool;
	u32 h = hsiphash_4u32(lower_32_bits(p), upper_32_bits(p),
			      lower_32_bits(offset), upper_32_bits(offset),
			      &shmpool_hash_key);

	return &shmpool_buckets[h & ((1U << shmpool_hash_bits) - 1)];
}

/* Is [offset, offset + 4) a properly aligned word inside @pool (bound)? */
static int shmpool_word_check(struct shmpool_pool *pool, u64 offset, u32 bitset)
{
	if (!pool)
		return -ENXIO;
	if (offset & 3 || !bitset)
		return -EINVAL;
	if (offset > ((u64)pool->nr_pages << PAGE_SHIFT) - sizeof(u32))
		return -EINVAL;
	return 0;
}

/* The word's current value, read from the pool page (no user access). */
static u32 shmpool_word_read(struct shmpool_pool *pool, u64 offset)
{
	struct page *page = shmpool_pool_page(pool, offset >> PAGE_SHIFT);
	u32 *base = kmap_local_page(page);
	u32 val = READ_ONCE(base[offset_in_page(offset) / sizeof(u32)]);

	kunmap_local(base);
	return val;
}

/*
 * Does @w's call end before it sleeps: -EOWNERDEAD (WAIT_DEATH: an
 * attachment ended after its death_seq; WAIT_OWNER: the owner @expected
 * names is not live; this comes first), -EAGAIN (the word differs), else 0.
 */
static int shmpool_waiter_stale(const struct shmpool_waiter *w, u32 expected)
{
	if (w->owner_mask) {
		if (!shmpool_attach_live(w->pool, expected & w->owner_mask))
			return -EOWNERDEAD;
	} else if (w->death && READ_ONCE(w->pool->death_seq) != w->death_seq) {
		return -EOWNERDEAD;
	}
	if (shmpool_word_read(w->pool, w->offset) != expected)
		return -EAGAIN;
	return 0;
}

/* Does queued @w match a WAKE of (@pool, @offset, @bitset)? */
static bool shmpool_match(struct shmpool_pool *wpool, u64 woffset, u32 wbitset,
			  struct shmpool_pool *pool, u64 offset, u32 bitset)
{
	return wpool == pool && woffset == offset && (wbitset & bitset);
}

/* Has a waker marked @w woken? */
static bool shmpool_woken(struct shmpool_waiter *w)
{
	/* Pairs with smp_store_release() in shmpool_wake_mark(). */
	return smp_load_acquire(&w->woken);
}

/*
 * Take @w off its bucket if it is still queued. Returns true if a waker
 * had taken it, i.e. it was woken. Wakers mark under the bucket lock and
 * never touch @w after it, so @w may go away at once (a WAIT_DEATH waiter
 * first leaves its pool's death list, under the lock a death walk holds).
 */
static bool shmpool_unqueue(struct shmpool_waiter *w)
{
	struct shmpool_bucket *b = w->bucket;
	bool woken;

	if (shmpool_woken(w))
		return true;
	spin_lock(&b->lock);
	woken = w->woken;
	if (!woken)
		list_del_init(&w->node);
	spin_unlock(&b->lock);
	return woken;
}

/*
 * Unqueue w[0..n); return the highest woken index, or -1 if none was woken.
 * The highest, as futex_unqueue_multiple() does: futex_waitv() and the
 * library's memfd backend return the same index as WAITV.
 */
static int shmpool_unqueue_all(struct shmpool_waiter *w, unsigned int n)
{
	int last = -1;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (shmpool_unqueue(&w[i]))
			last = i;
	return last;
}

static bool shmpool_any_woken(struct shmpool_waiter *w, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (shmpool_woken(&w[i]))
			return true;
	return false;
}

/*
 * Queue @w in futex's wake order (see the top of this file): behind every
 * sleeper of its priority or a higher one. The priority is fixed here, as
 * futex's is: one changed while it sleeps does not move it.
 */
static void shmpool_enqueue(struct shmpool_bucket *b, struct shmpool_waiter *w)
{
	struct shmpool_waiter *pos;

	lockdep_assert_held(&b->lock);
	w->prio = min(current->normal_prio, MAX_RT_PRIO);
	if (w->prio < MAX_RT_PRIO) {
		list_for_each_entry(pos, &b->waiters, node) {
			if (pos->prio > w->prio) {
				list_add_tail(&w->node, &pos->node);
				return;
			}
		}
	}
	list_add_tail(&w->node, &b->waiters);
}

/*
 * Queue w[0..n) while each word equals its expected value, then sleep until
 * one of them is woken (return its index), a word differs (-EAGAIN), the
 * deadline passes (-ETIMEDOUT) or a signal arrives (-ERESTARTSYS:
 * restarted with the same absolute deadline, or EINTR after a handler
 * without SA_RESTART); a WAIT_DEATH waiter also returns -EOWNERDEAD when
 * its pool's death_seq is not (or stops being) its own. The caller has
 * charged n waiters to its user.
 */
static int shmpool_wait_words(struct shmpool_waiter *w, const u32 *expected,
			      unsigned int n, ktime_t *deadline, clockid_t clock)
{
	bool timed_out = false;
	unsigned int i;
	int woken, ret;

	for (i = 0; i < n; i++) {
		struct shmpool_bucket *b = w[i].bucket;

		w[i].by_death = false;
		w[i].woken = false;
		w[i].task = current;
		spin_lock(&b->lock);
		/* See the top of this file for why under this lock. */
		ret = shmpool_waiter_stale(&w[i], expected[i]);
		if (ret) {
			spin_unlock(&b->lock);
			woken = shmpool_unqueue_all(w, i);
			return woken >= 0 ? woken : ret;
		}
		shmpool_enqueue(b, &w[i]);
		spin_unlock(&b->lock);
	}

	atomic_inc(&shmpool_nwaiters);
	for (;;) {
		/*
		 * The state first, then the checks: a waker marks, then wakes
		 * (full barrier in try_to_wake_up()), so either we see its
		 * mark or it sees us sleeping and wakes us. Freezable, as
		 * futexes sleep: the freezer (suspend, cgroup v1) freezes us
		 * here, still queued, where a fake signal would take us out
		 * and lose a WAKE that comes meanwhile to the restart. We
		 * hold no lock while asleep; the checks run after a thaw.
		 */
		set_current_state(TASK_INTERRUPTIBLE | TASK_FREEZABLE);
		if (shmpool_any_woken(w, n) || timed_out || signal_pending(current))
			break;
		if (deadline)
			timed_out = !schedule_hrtimeout_range_clock(deadline,
					current->timer_slack_ns, HRTIMER_MODE_ABS, clock);
		else
			schedule();
		/* Woken, timed out, signalled or spurious: the checks say. */
	}
	__set_current_state(TASK_RUNNING);
	woken = shmpool_unqueue_all(w, n);
	atomic_dec(&shmpool_nwaiters);
	/* @by_death was set under the lock, before the mark we saw. */
	if (woken >= 0)
		return w[woken].by_death ? -EOWNERDEAD : woken;
	return timed_out ? -ETIMEDOUT : -ERESTARTSYS;
}

static int shmpool_deadline(u32 flags, u64 deadline_ns, ktime_t *kt,
			    clockid_t *clock)
{
	if (flags & ~(SHMPOOL_WAIT_DEADLINE | SHMPOOL_WAIT_REALTIME))
		return -EINVAL;
	if ((flags & SHMPOOL_WAIT_REALTIME) && !(flags & SHMPOOL_WAIT_DEADLINE))
		return -EINVAL;
	*clock = flags & SHMPOOL_WAIT_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC;
	*kt = deadline_ns > KTIME_MAX ? KTIME_MAX : (ktime_t)deadline_ns;
	/* A deadline in the caller's time namespace, as futexes take it. */
	*kt = shmpool_timens_to_host(*clock, *kt);
	return 0;
}

/*
 * Charge the @n sleeping waiters @w to the caller's identity; *@up to give
 * back. Past the limit, only a call that would sleep fails with -ENOSPC:
 * one that would not gives what it would have given, -EOWNERDEAD or
 * -EAGAIN (nothing is queued: a plain read of each word does).
 */
static int shmpool_waiters_charge(const struct shmpool_waiter *w,
				  const u32 *expected, unsigned int n,
				  struct shmpool_user **up)
{
	struct shmpool_user *u = shmpool_user_get();
	unsigned int i;
	int ret;

	if (IS_ERR(u))
		return PTR_ERR(u);
	ret = shmpool_user_add_waiters(u, n);
	if (ret) {
		shmpool_user_put(u);
		for (i = 0; ret == -ENOSPC && i < n; i++)
			ret = shmpool_waiter_stale(&w[i], expected[i]) ?: ret;
		return ret;
	}
	*up = u;
	return 0;
}

static void shmpool_waiters_uncharge(struct shmpool_user *u, unsigned int n)
{
	shmpool_user_sub_waiters(u, n);
	shmpool_user_put(u);
}

int shmpool_doorbell_wait(struct shmpool_file *sf, const struct shmpool_wait *cmd)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	bool death = cmd->flags & SHMPOOL_WAIT_DEATH;
	bool owner = cmd->flags & SHMPOOL_WAIT_OWNER;
	struct shmpool_waiter w = {
		.node = LIST_HEAD_INIT(w.node),
		.offset = cmd->offset, .bitset = cmd->bitset,
		.death = death, .death_seq = cmd->death_seq,
		.owner_mask = cmd->owner_mask,
	};
	struct shmpool_user *u;
	clockid_t clock;
	ktime_t kt;
	int ret;

	ret = shmpool_deadline(cmd->flags & ~(SHMPOOL_WAIT_DEATH | SHMPOOL_WAIT_OWNER),
			       cmd->deadline_ns, &kt, &clock);
	if (ret)
		return ret;
	if ((!death && cmd->death_seq) || (owner && !death))
		return -EINVAL;
	/* OWNER: the owner's liveness replaces the count of ends. */
	if (owner != !!cmd->owner_mask || (owner && cmd->death_seq))
		return -EINVAL;
	ret = shmpool_word_check(pool, cmd->offset, cmd->bitset);
	if (ret)
		return ret;
	w.pool = pool;
	w.bucket = shmpool_bucket(pool, cmd->offset);
	ret = shmpool_waiters_charge(&w, &cmd->expected, 1, &u);
	if (ret)
		return ret;
	/*
	 * On the list before the bucket lock's compare, off it after leaving
	 * the bucket: the ordering argument is at the top of this file.
	 */
	if (death) {
		spin_lock(&pool->death_lock);
		list_add_tail(&w.death_node, &pool->death_waiters);
		spin_unlock(&pool->death_lock);
	}
	ret = shmpool_wait_words(&w, &cmd->expected, 1,
				 cmd->flags & SHMPOOL_WAIT_DEADLINE ? &kt : NULL,
				 clock);
	if (death) {
		spin_lock(&pool->death_lock);
		list_del(&w.death_node);
		spin_unlock(&pool->death_lock);
	}
	shmpool_waiters_uncharge(u, 1);
	return ret > 0 ? 0 : ret;
}

/* Tasks a waker holds to wake once it has dropped the bucket lock. */
#define SHMPOOL_WAKE_BATCH	16

struct shmpool_wake_q {
	struct task_struct *tasks[SHMPOOL_WAKE_BATCH];
	unsigned int n;
};

/*
 * Under @w's bucket lock: take queued @w off and mark it woken, the last
 * touch of @w. Its task is held first, as @w's task may see the mark and
 * return (and exit) at once; it is woken after the unlock
 * (shmpool_wake_q_run()), or now once @q is full.
 */
static void shmpool_wake_mark(struct shmpool_wake_q *q,
			      struct shmpool_waiter *w, bool by_death)
{
	struct task_struct *task = get_task_struct(w->task);

	lockdep_assert_held(&w->bucket->lock);
	list_del_init(&w->node);
	w->by_death = by_death;
	/* Pairs with shmpool_woken(). */
	smp_store_release(&w->woken, true);
	if (q->n < ARRAY_SIZE(q->tasks)) {
		q->tasks[q->n++] = task;
		return;
	}
	wake_up_process(task);
	put_task_struct(task);
}

/* Wake the tasks of the waiters marked into @q; the lock is dropped. */
static void shmpool_wake_q_run(struct shmpool_wake_q *q)
{
	unsigned int i;

	for (i = 0; i < q->n; i++) {
		wake_up_process(q->tasks[i]);
		put_task_struct(q->tasks[i]);
	}
}

/* Does the end of attachment @id concern queued WAIT_DEATH waiter @w? */
static bool shmpool_death_concerns(const struct shmpool_waiter *w, u32 id)
{
	lockdep_assert_held(&w->bucket->lock);
	if (!w->owner_mask)
		return true;
	/* The owner is whom the word names now: see the top of this file. */
	return (shmpool_word_read(w->pool, w->offset) & w->owner_mask) == id;
}

/*
 * Attachment @id of @pool ended and the pool's death_seq was bumped
 * (attach.c): wake every WAIT_DEATH sleeper of @pool it concerns. The
 * ordering argument is at the top of this file.
 */
void shmpool_doorbell_death(struct shmpool_pool *pool, u32 id)
{
	struct shmpool_wake_q q = { .n = 0 };
	struct shmpool_waiter *w;

	/*
	 * A waiter stays on the list until it has left its bucket and taken
	 * this lock: @w is valid here, and its node says whether it is still
	 * queued (a WAKE or a deadline may have taken it meanwhile).
	 */
	spin_lock(&pool->death_lock);
	list_for_each_entry(w, &pool->death_waiters, death_node) {
		struct shmpool_bucket *b = w->bucket;

		spin_lock(&b->lock);
		if (!list_empty(&w->node) && shmpool_death_concerns(w, id))
			shmpool_wake_mark(&q, w, true);
		spin_unlock(&b->lock);
	}
	spin_unlock(&pool->death_lock);
	shmpool_wake_q_run(&q);
}

static void shmpool_notifier_put(struct shmpool_notifier *n)
{
	if (!refcount_dec_and_test(&n->ref))
		return;
	eventfd_ctx_put(n->efd);
	shmpool_user_put(n->user);
	kfree(n);
}

/* Bindings one WAKE collects without allocating. */
#define SHMPOOL_NOTIFY_STACK	8

int shmpool_doorbell_wake(struct shmpool_file *sf, const struct shmpool_wake *cmd)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	struct shmpool_notifier *stack[SHMPOOL_NOTIFY_STACK], **nf = stack;
	struct shmpool_wake_q q = { .n = 0 };
	struct shmpool_waiter *w, *tmp;
	unsigned int i, cap = ARRAY_SIZE(stack), nn = 0, woken = 0;
	struct shmpool_notifier *n;
	struct shmpool_bucket *b;
	int ret;

	if (cmd->flags)
		return -EINVAL;
	ret = shmpool_word_check(pool, cmd->offset, cmd->bitset);
	if (ret)
		return ret;
	if (sf->rdonly)
		return -EPERM;

	b = shmpool_bucket(pool, cmd->offset);
	spin_lock(&b->lock);
	while (b->nr_notifiers > cap) {
		/* Nothing done yet: starting again cannot signal twice. */
		cap = b->nr_notifiers + SHMPOOL_NOTIFY_STACK;
		spin_unlock(&b->lock);
		if (nf != stack)
			kvfree(nf);
		nf = kvmalloc_array(cap, sizeof(*nf), GFP_KERNEL);
		if (!nf)
			return -ENOMEM;
		spin_lock(&b->lock);
	}
	list_for_each_entry_safe(w, tmp, &b->waiters, node) {
		if (woken == cmd->nr)
			break;
		if (!shmpool_match(w->pool, w->offset, w->bitset, pool,
				   cmd->offset, cmd->bitset))
			continue;
		shmpool_wake_mark(&q, w, false);
		woken++;
	}
	list_for_each_entry(n, &b->notifiers, node) {
		if (!shmpool_match(n->pool, n->offset, n->bitset, pool,
				   cmd->offset, cmd->bitset))
			continue;
		refcount_inc(&n->ref);
		nf[nn++] = n;
	}
	spin_unlock(&b->lock);

	shmpool_wake_q_run(&q);
	for (i = 0; i < nn; i++) {
		shmpool_eventfd_signal(nf[i]->efd);
		shmpool_notifier_put(nf[i]);
	}
	if (nf != stack)
		kvfree(nf);
	return woken;
}

/* Resolve a WAITV entry's fd to a referenced file and its pool. */
static int shmpool_waitv_file(struct file *self, s32 fd, struct file **filep,
			      struct shmpool_pool **poolp)
{
	struct file *f;
	struct shmpool_pool *pool;

	f = fd == -1 ? get_file(self) : fget(fd);
	if (!f)
		return -EBADF;
	if (f->f_op != &shmpool_fops) {
		fput(f);
		return -EINVAL;
	}
	pool = shmpool_file_pool(f->private_data);
	if (!pool) {
		fput(f);
		return -ENXIO;
	}
	*filep = f;
	*poolp = pool;
	return 0;
}

int shmpool_doorbell_waitv(struct file *filp, const struct shmpool_waitv *cmd)
{
	struct shmpool_waitv_entry __user *uents = u64_to_user_ptr(cmd->entries);
	struct shmpool_waitv_entry *ents;
	struct shmpool_waiter *w;
	struct shmpool_user *u;
	struct file **files;
	u32 *expected;
	unsigned int i, n = cmd->nr_entries, nfiles = 0;
	clockid_t clock;
	ktime_t kt;
	int ret;

	ret = shmpool_deadline(cmd->flags, cmd->deadline_ns, &kt, &clock);
	if (ret)
		return ret;
	if (cmd->__reserved || !n || n > SHMPOOL_WAITV_MAX)
		return -EINVAL;

	ents = memdup_user(uents, array_size(n, sizeof(*ents)));
	if (IS_ERR(ents))
		return PTR_ERR(ents);
	w = kcalloc(n, sizeof(*w), GFP_KERNEL);
	files = kcalloc(n, sizeof(*files), GFP_KERNEL);
	expected = kcalloc(n, sizeof(*expected), GFP_KERNEL);
	if (!w || !files || !expected) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (ents[i].__reserved) {
			ret = -EINVAL;
			goto out;
		}
		ret = shmpool_waitv_file(filp, ents[i].fd, &files[i], &w[i].pool);
		if (ret)
			goto out;
		nfiles++;
		ret = shmpool_word_check(w[i].pool, ents[i].offset, ents[i].bitset);
		if (ret)
			goto out;
		w[i].offset = ents[i].offset;
		w[i].bitset = ents[i].bitset;
		w[i].bucket = shmpool_bucket(w[i].pool, w[i].offset);
		expected[i] = ents[i].expected;
	}
	/* Each entry is a waiter of its own, for WAKE and for the limit. */
	ret = shmpool_waiters_charge(w, expected, n, &u);
	if (ret)
		goto out;
	ret = shmpool_wait_words(w, expected, n,
				 cmd->flags & SHMPOOL_WAIT_DEADLINE ? &kt : NULL,
				 clock);
	shmpool_waiters_uncharge(u, n);
out:
	for (i = 0; i < nfiles; i++)
		fput(files[i]);
	kfree(expected);
	kfree(files);
	kfree(w);
	kfree(ents);
	return ret;
}

/* Take @n off its bucket and give back its charge; the file's ref remains. */
static void shmpool_notifier_unhash(struct shmpool_notifier *n)
{
	struct shmpool_bucket *b = n->bucket;

	spin_lock(&b->lock);
	list_del(&n->node);
	b->nr_notifiers--;
	spin_unlock(&b->lock);
	shmpool_user_sub_notifier(n->user);
}

/* Drop the file's binding @n: unhash it, then the file's reference. */
static void shmpool_notifier_remove(struct shmpool_file *sf,
				    struct shmpool_notifier *n)
{
	list_del(&n->file_node);
	sf->nr_notifiers--;
	shmpool_notifier_unhash(n);
	shmpool_notifier_put(n);
}

/*
 * DEL: remove the binding of (@offset, @efd) on this file, or with @efd
 * NULL (eventfd -1) every binding of @offset on this file, which is how a
 * binding whose eventfd was already closed is removed. 0 or -ENOENT.
 */
static int shmpool_notify_del(struct shmpool_file *sf, u64 offset,
			      struct eventfd_ctx *efd)
{
	struct shmpool_notifier *n, *tmp;
	int ret = -ENOENT;

	lockdep_assert_held(&sf->lock);
	list_for_each_entry_safe(n, tmp, &sf->notifiers, file_node) {
		if (n->offset != offset || (efd && n->efd != efd))
			continue;
		shmpool_notifier_remove(sf, n);
		ret = 0;
	}
	return ret;
}

static struct shmpool_notifier *shmpool_notifier_find(struct shmpool_file *sf,
						      u64 offset,
						      struct eventfd_ctx *efd)
{
	struct shmpool_notifier *n;

	lockdep_assert_held(&sf->lock);
	list_for_each_entry(n, &sf->notifiers, file_node)
		if (n->offset == offset && n->efd == efd)
			return n;
	return NULL;
}

static int shmpool_notify_add(struct shmpool_file *sf, struct shmpool_pool *pool,
			      const struct shmpool_notify *cmd,
			      struct eventfd_ctx *efd)
{
	struct shmpool_notifier *n;
	struct shmpool_bucket *b;
	struct shmpool_user *u;
	int ret;

	lockdep_assert_held(&sf->lock);
	if (shmpool_notifier_find(sf, cmd->offset, efd))
		return -EEXIST;
	if (sf->nr_notifiers >= SHMPOOL_NOTIFY_MAX)
		return -ENOSPC;
	u = shmpool_user_get();
	if (IS_ERR(u))
		return PTR_ERR(u);
	ret = shmpool_user_add_notifier(u);
	if (ret)
		goto err_put_user;
	n = kzalloc(sizeof(*n), GFP_KERNEL_ACCOUNT);
	if (!n) {
		ret = -ENOMEM;
		goto err_uncharge;
	}
	/* The binding takes over the eventfd reference and the charge. */
	n->pool = pool;
	n->offset = cmd->offset;
	n->bitset = cmd->bitset;
	n->efd = efd;
	n->user = u;
	refcount_set(&n->ref, 1);
	b = shmpool_bucket(pool, cmd->offset);
	n->bucket = b;
	list_add_tail(&n->file_node, &sf->notifiers);
	sf->nr_notifiers++;
	spin_lock(&b->lock);
	list_add_tail(&n->node, &b->notifiers);
	b->nr_notifiers++;
	spin_unlock(&b->lock);
	return 0;

err_uncharge:
	shmpool_user_sub_notifier(u);
err_put_user:
	shmpool_user_put(u);
	return ret;
}

int shmpool_doorbell_notify(struct shmpool_file *sf,
			    const struct shmpool_notify *cmd)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	struct eventfd_ctx *efd = NULL;
	int ret;

	if (cmd->flags != SHMPOOL_NOTIFY_ADD && cmd->flags != SHMPOOL_NOTIFY_DEL)
		return -EINVAL;
	ret = shmpool_word_check(pool, cmd->offset, cmd->bitset);
	if (ret)
		return ret;
	if (cmd->flags == SHMPOOL_NOTIFY_ADD || cmd->eventfd != -1) {
		efd = eventfd_ctx_fdget(cmd->eventfd);
		if (IS_ERR(efd))
			return PTR_ERR(efd);
	}

	mutex_lock(&sf->lock);
	if (cmd->flags == SHMPOOL_NOTIFY_DEL)
		ret = shmpool_notify_del(sf, cmd->offset, efd);
	else
		ret = shmpool_notify_add(sf, pool, cmd, efd);
	mutex_unlock(&sf->lock);
	/* ADD that worked handed its reference to the binding. */
	if (efd && (ret || cmd->flags == SHMPOOL_NOTIFY_DEL))
		eventfd_ctx_put(efd);
	return ret;
}

/* The file is going away: drop its bindings (before its pool reference). */
void shmpool_doorbell_release(struct shmpool_file *sf)
{
	struct shmpool_notifier *n, *tmp;

	list_for_each_entry_safe(n, tmp, &sf->notifiers, file_node)
		shmpool_notifier_remove(sf, n);
}

int shmpool_doorbell_init(void)
{
	unsigned int i, n;

	get_random_bytes(&shmpool_hash_key, sizeof(shmpool_hash_key));
	/* Like the futex hash: a few hundred buckets per CPU, power of two. */
	n = roundup_pow_of_two(256 * num_possible_cpus());
	shmpool_hash_bits = ilog2(n);
	shmpool_buckets = kvmalloc_array(n, sizeof(*shmpool_buckets), GFP_KERNEL);
	if (!shmpool_buckets)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		spin_lock_init(&shmpool_buckets[i].lock);
		INIT_LIST_HEAD(&shmpool_buckets[i].waiters);
		INIT_LIST_HEAD(&shmpool_buckets[i].notifiers);
		shmpool_buckets[i].nr_notifiers = 0;
	}
	return 0;
}

void shmpool_doorbell_exit(void)
{
	kvfree(shmpool_buckets);
}
