// SPDX-License-Identifier: GPL-2.0
/*
 * Doorbells: futex-like WAIT/WAKE on u32 words inside pools.
 *
 * Waiters hash by (pool, offset) into a fixed table of buckets, each a
 * spinlock and a FIFO list. WAIT queues itself on every bucket it waits on,
 * and only then, under each bucket lock, reads the word from the pool page
 * and compares it. WAKE takes the same bucket lock, so:
 *
 *   waker (user)                  waiter (kernel)
 *   store word = new              lock(bucket); enqueue; load word; unlock
 *   ioctl(WAKE): lock(bucket)     sleep
 *
 * either the waiter's load (inside its critical section) sees the new
 * value and it returns -EAGAIN, or that critical section came first and the
 * waker's later lock finds it queued. No wake-up is lost, without any
 * barrier beyond the lock. (Userspace that skips WAKE when it believes
 * nobody sleeps needs its own full barrier; see libshmpool.)
 *
 * A waker takes a waiter off its bucket under the bucket lock, takes a
 * reference to its task, and last of all marks it woken with a release
 * store; it wakes the task only after dropping the lock, so the woken task
 * never spins on a lock its waker still holds (as futexes do). The waiter
 * lives on the sleeping task's stack: once @woken is set, the waker never
 * touches it again. The waiter reads @woken with an acquire load, pairing
 * with that store, so a woken waiter needs no lock at all to learn it; one
 * that is not (yet) marked checks again under the bucket lock, where the
 * mark and the dequeue are atomic.
 *
 * NOTIFY bindings sit in the same buckets (with an eventfd instead of a
 * task): each WAKE that matches signals them and leaves them queued.
 *
 * The pool outlives its waiters: a sleeper is inside an ioctl on a pool
 * file (fdget) or holds a reference to each WAITV entry's file (fget), and
 * a binding belongs to the file that added it and is removed at its release.
 */
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/hash.h>
#include <linux/highmem.h>
#include <linux/hrtimer.h>
#include <linux/jhash.h>
#include <linux/log2.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "shmpool.h"

struct shmpool_bucket {
	spinlock_t lock;		/* protects @waiters */
	struct list_head waiters;	/* shmpool_waiter.node, FIFO */
} ____cacheline_aligned_in_smp;

struct shmpool_waiter {
	struct list_head node;		/* in the bucket while queued */
	bool woken;			/* set by the waker, last */
	struct shmpool_pool *pool;	/* key, with @offset */
	u64 offset;
	u32 bitset;
	struct task_struct *task;	/* sleeping waiters */
	struct eventfd_ctx *efd;	/* NOTIFY bindings (then @task is NULL) */
};

/* A NOTIFY binding, owned by the file that added it. */
struct shmpool_notifier {
	struct shmpool_waiter w;
	struct list_head file_node;	/* in shmpool_file.notifiers */
};

static struct shmpool_bucket *shmpool_buckets;
static unsigned int shmpool_hash_bits;
static atomic_t shmpool_nwaiters = ATOMIC_INIT(0);

unsigned int shmpool_waiters(void)
{
	return atomic_read(&shmpool_nwaiters);
}

static struct shmpool_bucket *shmpool_bucket(struct shmpool_pool *pool, u64 offset)
{
	u32 key[4] = {
		lower_32_bits(pool->id), upper_32_bits(pool->id),
		lower_32_bits(offset), upper_32_bits(offset),
	};

	return &shmpool_buckets[jhash2(key, 4, 0) & ((1U << shmpool_hash_bits) - 1)];
}

/* Is [offset, offset + 4) a properly aligned word inside @pool? */
static int shmpool_word_check(struct shmpool_pool *pool, u64 offset, u32 bitset)
{
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
 * Take @w off its bucket if it is still queued. Returns true if a waker had
 * already taken it off, i.e. it was woken.
 */
static bool shmpool_unqueue(struct shmpool_waiter *w)
{
	struct shmpool_bucket *b;
	bool woken;

	/* Pairs with smp_store_release() in shmpool_doorbell_wake(). */
	if (smp_load_acquire(&w->woken))
		return true;
	b = shmpool_bucket(w->pool, w->offset);
	spin_lock(&b->lock);
	woken = w->woken;
	if (!woken)
		list_del_init(&w->node);
	spin_unlock(&b->lock);
	return woken;
}

/* Unqueue w[0..n); return the lowest woken index, or -1 if none was woken. */
static int shmpool_unqueue_all(struct shmpool_waiter *w, unsigned int n)
{
	int first = -1;
	unsigned int i;

	for (i = 0; i < n; i++)
		if (shmpool_unqueue(&w[i]) && first < 0)
			first = i;
	return first;
}

/*
 * Sleep until one of w[0..n) is woken (return its index), a word differs
 * from @expected (-EAGAIN), @deadline passes (-ETIMEDOUT) or a signal
 * arrives (-ERESTARTSYS: restarted with the same absolute deadline, or
 * EINTR after a handler without SA_RESTART).
 */
static int shmpool_wait_words(struct shmpool_waiter *w, const u32 *expected,
			      unsigned int n, ktime_t *deadline, clockid_t clock)
{
	unsigned int i;
	int woken, ret;

	atomic_inc(&shmpool_nwaiters);
	for (;;) {
		bool timed_out = false;

		/*
		 * TASK_INTERRUPTIBLE before the first enqueue: a WAKE that
		 * finds us from then on makes the schedule() below return.
		 */
		set_current_state(TASK_INTERRUPTIBLE);
		for (i = 0; i < n; i++) {
			struct shmpool_bucket *b = shmpool_bucket(w[i].pool, w[i].offset);
			u32 val;

			w[i].woken = false;
			spin_lock(&b->lock);
			list_add_tail(&w[i].node, &b->waiters);
			val = shmpool_word_read(w[i].pool, w[i].offset);
			spin_unlock(&b->lock);
			if (val != expected[i])
				break;
		}
		if (i < n) {
			__set_current_state(TASK_RUNNING);
			woken = shmpool_unqueue_all(w, i + 1);
			ret = woken >= 0 ? woken : -EAGAIN;
			break;
		}

		if (deadline)
			timed_out = !schedule_hrtimeout_range_clock(deadline,
					current->timer_slack_ns, HRTIMER_MODE_ABS, clock);
		else
			schedule();
		__set_current_state(TASK_RUNNING);

		woken = shmpool_unqueue_all(w, n);
		if (woken >= 0) {
			ret = woken;
			break;
		}
		if (timed_out) {
			ret = -ETIMEDOUT;
			break;
		}
		if (signal_pending(current)) {
			ret = -ERESTARTSYS;
			break;
		}
		/* Spurious wake-up: look at the words again. */
	}
	atomic_dec(&shmpool_nwaiters);
	return ret;
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
	return 0;
}

int shmpool_doorbell_wait(struct shmpool_file *sf, const struct shmpool_wait *cmd)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	struct shmpool_waiter w = {
		.offset = cmd->offset, .bitset = cmd->bitset, .task = current,
	};
	clockid_t clock;
	ktime_t kt;
	int ret;

	ret = shmpool_deadline(cmd->flags, cmd->deadline_ns, &kt, &clock);
	if (ret)
		return ret;
	if (!pool)
		return -ENXIO;
	ret = shmpool_word_check(pool, cmd->offset, cmd->bitset);
	if (ret)
		return ret;
	w.pool = pool;
	ret = shmpool_wait_words(&w, &cmd->expected, 1,
				 cmd->flags & SHMPOOL_WAIT_DEADLINE ? &kt : NULL,
				 clock);
	return ret > 0 ? 0 : ret;
}

/* Tasks woken per pass of WAKE; more wait for the next pass. */
#define SHMPOOL_WAKE_BATCH	16

int shmpool_doorbell_wake(struct shmpool_file *sf, const struct shmpool_wake *cmd)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	struct task_struct *tasks[SHMPOOL_WAKE_BATCH];
	u32 nr = min_t(u32, cmd->nr, INT_MAX);
	struct shmpool_waiter *w, *tmp;
	struct shmpool_bucket *b;
	bool notified = false;
	unsigned int i, batch;
	int ret, woken = 0;

	if (cmd->flags)
		return -EINVAL;
	if (!pool)
		return -ENXIO;
	ret = shmpool_word_check(pool, cmd->offset, cmd->bitset);
	if (ret)
		return ret;
	if (sf->rdonly)
		return -EPERM;

	b = shmpool_bucket(pool, cmd->offset);
	do {
		batch = 0;
		spin_lock(&b->lock);
		list_for_each_entry_safe(w, tmp, &b->waiters, node) {
			if (w->pool != pool || w->offset != cmd->offset ||
			    !(w->bitset & cmd->bitset))
				continue;
			if (w->efd) {
				/* Once per WAKE, not per pass. */
				if (!notified)
					shmpool_eventfd_signal(w->efd);
				continue;
			}
			if (woken == nr || batch == SHMPOOL_WAKE_BATCH)
				continue;	/* keep going: bindings further on */
			list_del_init(&w->node);
			tasks[batch] = get_task_struct(w->task);
			/* Last touch of @w; pairs with shmpool_unqueue(). */
			smp_store_release(&w->woken, true);
			batch++;
			woken++;
		}
		spin_unlock(&b->lock);
		notified = true;
		for (i = 0; i < batch; i++) {
			wake_up_process(tasks[i]);
			put_task_struct(tasks[i]);
		}
	} while (batch == SHMPOOL_WAKE_BATCH && woken < nr);
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
		w[i].task = current;
		expected[i] = ents[i].expected;
	}
	ret = shmpool_wait_words(w, expected, n,
				 cmd->flags & SHMPOOL_WAIT_DEADLINE ? &kt : NULL,
				 clock);
out:
	for (i = 0; i < nfiles; i++)
		fput(files[i]);
	kfree(expected);
	kfree(files);
	kfree(w);
	kfree(ents);
	return ret;
}

static void shmpool_notifier_unhash(struct shmpool_notifier *n)
{
	struct shmpool_bucket *b = shmpool_bucket(n->w.pool, n->w.offset);

	spin_lock(&b->lock);
	list_del(&n->w.node);
	spin_unlock(&b->lock);
}

static void shmpool_notifier_free(struct shmpool_notifier *n)
{
	eventfd_ctx_put(n->w.efd);
	kfree(n);
}

static struct shmpool_notifier *shmpool_notifier_find(struct shmpool_file *sf,
						      u64 offset,
						      struct eventfd_ctx *efd)
{
	struct shmpool_notifier *n;

	lockdep_assert_held(&sf->lock);
	list_for_each_entry(n, &sf->notifiers, file_node)
		if (n->w.offset == offset && n->w.efd == efd)
			return n;
	return NULL;
}

int shmpool_doorbell_notify(struct shmpool_file *sf,
			    const struct shmpool_notify *cmd)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	struct shmpool_notifier *n;
	struct eventfd_ctx *efd;
	struct shmpool_bucket *b;
	int ret;

	if (cmd->flags != SHMPOOL_NOTIFY_ADD && cmd->flags != SHMPOOL_NOTIFY_DEL)
		return -EINVAL;
	if (!pool)
		return -ENXIO;
	ret = shmpool_word_check(pool, cmd->offset, cmd->bitset);
	if (ret)
		return ret;
	efd = eventfd_ctx_fdget(cmd->eventfd);
	if (IS_ERR(efd))
		return PTR_ERR(efd);

	mutex_lock(&sf->lock);
	n = shmpool_notifier_find(sf, cmd->offset, efd);
	if (cmd->flags == SHMPOOL_NOTIFY_DEL) {
		if (n) {
			list_del(&n->file_node);
			sf->nr_notifiers--;
			shmpool_notifier_unhash(n);
			shmpool_notifier_free(n);
		}
		ret = n ? 0 : -ENOENT;
		goto out_put;
	}
	if (n) {
		ret = -EEXIST;
		goto out_put;
	}
	if (sf->nr_notifiers >= SHMPOOL_NOTIFY_MAX) {
		ret = -ENOSPC;
		goto out_put;
	}
	n = kzalloc(sizeof(*n), GFP_KERNEL_ACCOUNT);
	if (!n) {
		ret = -ENOMEM;
		goto out_put;
	}
	/* The binding keeps the eventfd reference we took. */
	n->w.pool = pool;
	n->w.offset = cmd->offset;
	n->w.bitset = cmd->bitset;
	n->w.efd = efd;
	list_add_tail(&n->file_node, &sf->notifiers);
	sf->nr_notifiers++;
	b = shmpool_bucket(pool, cmd->offset);
	spin_lock(&b->lock);
	list_add_tail(&n->w.node, &b->waiters);
	spin_unlock(&b->lock);
	mutex_unlock(&sf->lock);
	return 0;

out_put:
	mutex_unlock(&sf->lock);
	eventfd_ctx_put(efd);
	return ret;
}

/* The file is going away: drop its bindings (before its pool reference). */
void shmpool_doorbell_release(struct shmpool_file *sf)
{
	struct shmpool_notifier *n, *tmp;

	list_for_each_entry_safe(n, tmp, &sf->notifiers, file_node) {
		shmpool_notifier_unhash(n);
		shmpool_notifier_free(n);
	}
	INIT_LIST_HEAD(&sf->notifiers);
	sf->nr_notifiers = 0;
}

int shmpool_doorbell_init(void)
{
	unsigned int i, n;

	/* Like the futex hash: a few hundred buckets per CPU, power of two. */
	n = roundup_pow_of_two(256 * num_possible_cpus());
	shmpool_hash_bits = ilog2(n);
	shmpool_buckets = kvmalloc_array(n, sizeof(*shmpool_buckets), GFP_KERNEL);
	if (!shmpool_buckets)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		spin_lock_init(&shmpool_buckets[i].lock);
		INIT_LIST_HEAD(&shmpool_buckets[i].waiters);
	}
	return 0;
}

void shmpool_doorbell_exit(void)
{
	kvfree(shmpool_buckets);
}
