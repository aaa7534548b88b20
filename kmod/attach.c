// SPDX-License-Identifier: GPL-2.0
/*
 * Attachments: a process's membership of a pool, ended by the module when
 * the process's mm goes away (exit, kill, exec) or it DETACHes, so that
 * peers learn of a death from the kernel (UAPI "DOC: Attachments").
 *
 * What "the process" is: its mm. The module learns of an mm's end through an
 * mmu_notifier whose only op is ->release, which exit_mmap() calls when the
 * last user of the mm is gone, before any page is unmapped (and exec's old
 * mm goes the same way). One notifier serves all attachments of an mm, and
 * it stays from the mm's first ATTACH until ->release (or module exit):
 * registering one runs mm_take_all_locks(), which write-locks the
 * i_mmap_rwsem of every file the caller maps (libc's too) and so stalls
 * other processes' mmap, munmap, fork and exit on them. Were it dropped
 * with the mm's last attachment, a loop of ATTACH and DETACH would be a
 * loop of such stalls for everyone. mmu_notifier_get() finds or makes it;
 * the mm holds its one reference (struct shmpool_mm.node on shmpool_mms),
 * and mmu_notifier_put() drops it and frees it after an SRCU grace period,
 * asynchronously: nothing here waits for a grace period, and ->release may
 * put its own reference (mmu_notifier_put()'s kernel-doc allows that).
 * A fork() child has an mm of its own and no notifier on it: it is not
 * attached until it ATTACHes.
 *
 * Attachments do not pin their pool: the pool's end (last fd, mapping,
 * name and waiter gone) ends its attachments silently (nobody is left to
 * see the status page), so an attached process that closed its fds does
 * not keep the memory alive. ->release may race with that end: it takes
 * a pool reference only with kref_get_unless_zero() and, failing that,
 * leaves the pool to its teardown.
 *
 * An ATTACH is made in two steps around the write of its reply (ioctl.c):
 * shmpool_attach() takes a slot and counts the call, shmpool_attach_done()
 * then publishes the attachment on the status page if the reply was
 * written, or takes the call back if not. An attachment nobody was told of
 * (every ATTACH of it failed with EFAULT) was never on the status page and
 * goes without a death: peers never see it, alive or dying.
 *
 * Locking: shmpool_att_lock (a mutex) protects every attachment list, each
 * pool's table and death_seq. It nests inside mmap_lock (->mmap, and
 * vm_ops->close dropping the last pool reference) and takes nothing else;
 * waking sleepers and mmu_notifier_put() happen after it is dropped.
 *
 * Module exit: files, mounts and mappings pin the module; pools,
 * attachments and the notifiers of mms that attached do not. Exit first
 * drops the default scope's names (ending the last pools and their
 * attachments), then the references of the notifiers still held, then
 * waits until every notifier has been freed, then
 * mmu_notifier_synchronize() for the callbacks themselves. Frees go
 * through the mmu notifiers' SRCU (mmu_notifier_put()), and every
 * ->release runs inside a read section of it: once the last notifier is
 * freed, no ->release is still running, whether it held its mm's reference
 * or exit dropped it first.
 */
#include <linux/kref.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/wait.h>

#include "compat.h"
#include "shmpool.h"

/* The generation of an id: the bits above the slot, never 0. */
#define SHMPOOL_ATTACH_GEN_MAX	(SHMPOOL_ATTACH_ID_MAX >> SHMPOOL_ATTACH_SLOT_BITS)

/* A pool's attachment state, made at its first ATTACH or status mmap. */
struct shmpool_attach_table {
	struct page *page;		/* the status page */
	struct shmpool_status *status;	/* its kernel address */
	unsigned int next_slot;		/* the round-robin search starts here */
	unsigned int taken;		/* slots in use, shown or not */
	unsigned int live;		/* attachments shown on the status page */
	DECLARE_BITMAP(busy, SHMPOOL_ATTACH_MAX);	/* slots in use */
	u32 gen[SHMPOOL_ATTACH_MAX];	/* each slot's last generation */
};

/* One per mm that attached, from its first ATTACH to ->release. */
struct shmpool_mm {
	struct mmu_notifier mn;
	struct list_head atts;		/* shmpool_att.mm_node */
	/* On shmpool_mms while it holds its reference of @mn; else empty. */
	struct list_head node;
};

struct shmpool_att {
	struct list_head pool_node;	/* in pool->atts; then an ender's list */
	struct list_head mm_node;	/* in smm->atts */
	struct shmpool_pool *pool;
	struct shmpool_mm *smm;		/* its mm's, which outlives it */
	u32 id;
	u32 count;			/* ATTACHes not yet DETACHed, or in flight */
	bool shown;			/* on the status page (an ATTACH returned it) */
};

static DEFINE_MUTEX(shmpool_att_lock);
/* struct shmpool_mm that hold their reference, under shmpool_att_lock. */
static LIST_HEAD(shmpool_mms);
/* Live struct shmpool_mm, for module exit. */
static atomic_t shmpool_nr_mm = ATOMIC_INIT(0);

static struct shmpool_mm *shmpool_mm(struct mmu_notifier *mn)
{
	return container_of(mn, struct shmpool_mm, mn);
}

/*
 * A table for a pool that has none yet, or NULL if out of memory. Made
 * before shmpool_att_lock is taken: the lock is every process's (ATTACH,
 * DETACH, exit), and these allocations may reclaim for as long as the
 * caller's memory cgroup makes them.
 */
static struct shmpool_attach_table *shmpool_atab_alloc(void)
{
	struct shmpool_attach_table *t;

	BUILD_BUG_ON(sizeof(struct shmpool_status) > PAGE_SIZE);
	t = kvzalloc(sizeof(*t), GFP_KERNEL_ACCOUNT);
	if (!t)
		return NULL;
	/* Lowmem: the kernel writes it through page_address(). */
	t->page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);
	if (!t->page) {
		kvfree(t);
		return NULL;
	}
	t->status = page_address(t->page);
	t->status->magic = SHMPOOL_STATUS_MAGIC;
	t->status->nr_slots = SHMPOOL_ATTACH_MAX;
	return t;
}

static void shmpool_atab_free(struct shmpool_attach_table *t)
{
	if (!t)
		return;
	/* A mapping's PTE may hold the page a while longer: its own ref. */
	put_page(t->page);
	kvfree(t);
}

/*
 * @pool's table; if it has none yet, *@spare (from shmpool_atab_alloc(),
 * may be NULL) becomes it and *@spare is cleared. NULL if neither.
 */
static struct shmpool_attach_table *
shmpool_atab(struct shmpool_pool *pool, struct shmpool_attach_table **spare)
{
	struct shmpool_attach_table *t = pool->atab;

	lockdep_assert_held(&shmpool_att_lock);
	if (t || !*spare)
		return t;
	t = *spare;
	*spare = NULL;
	t->status->death_seq = pool->death_seq;
	/* Pairs with the acquire in shmpool_status_page(): a whole table. */
	smp_store_release(&pool->atab, t);
	return t;
}

struct page *shmpool_status_page(struct shmpool_pool *pool)
{
	/* Pairs with the release in shmpool_atab(). */
	struct shmpool_attach_table *t = smp_load_acquire(&pool->atab);
	struct shmpool_attach_table *spare;

	if (!t) {
		spare = shmpool_atab_alloc();
		mutex_lock(&shmpool_att_lock);
		t = shmpool_atab(pool, &spare);
		mutex_unlock(&shmpool_att_lock);
		/* Another caller's table came first. */
		shmpool_atab_free(spare);
	}
	return t ? t->page : NULL;
}

/*
 * Is @id a live attachment of @pool (on its status page)? For WAIT_OWNER,
 * under a bucket spinlock, where shmpool_att_lock (a mutex) cannot be
 * taken: one load of the slot, which shmpool_att_end() clears before it
 * drops shmpool_att_lock, and so before shmpool_doorbell_death() takes the
 * pool's death_lock (the ordering argument is at the top of doorbell.c).
 * The caller holds @pool, so the table stays.
 */
bool shmpool_attach_live(struct shmpool_pool *pool, u32 id)
{
	/* Pairs with the release in shmpool_atab(): a whole table. */
	struct shmpool_attach_table *t = smp_load_acquire(&pool->atab);
	u32 slot = id & SHMPOOL_ATTACH_SLOT_MASK;

	if (!t || !id || id > SHMPOOL_ATTACH_ID_MAX || slot >= SHMPOOL_ATTACH_MAX)
		return false;
	return READ_ONCE(t->status->slot[slot]) == id;
}

/* The attachment of @mm to @pool, if any. */
static struct shmpool_att *shmpool_att_find(struct shmpool_pool *pool,
					    struct mm_struct *mm)
{
	struct shmpool_att *a;

	lockdep_assert_held(&shmpool_att_lock);
	list_for_each_entry(a, &pool->atts, pool_node)
		if (a->smm->mn.mm == mm)
			return a;
	return NULL;
}

/*
 * Give @a an id in a free slot; *@spare is the pool's table if it has
 * none (shmpool_atab()). It stays off the status page until an ATTACH's
 * reply names it (shmpool_att_show()).
 */
static int shmpool_att_add(struct shmpool_pool *pool, struct shmpool_att *a,
			   struct shmpool_mm *smm,
			   struct shmpool_attach_table **spare)
{
	struct shmpool_attach_table *t = shmpool_atab(pool, spare);
	unsigned int s;
	u32 gen;

	lockdep_assert_held(&shmpool_att_lock);
	if (!t)
		return -ENOMEM;
	if (t->taken == SHMPOOL_ATTACH_MAX)
		return -EUSERS;
	/* Round-robin: a freed slot is reused as late as possible. */
	for (s = t->next_slot; test_bit(s, t->busy);
	     s = (s + 1) % SHMPOOL_ATTACH_MAX)
		;
	gen = t->gen[s] == SHMPOOL_ATTACH_GEN_MAX ? 1 : t->gen[s] + 1;
	t->gen[s] = gen;
	t->next_slot = (s + 1) % SHMPOOL_ATTACH_MAX;
	__set_bit(s, t->busy);
	t->taken++;
	a->id = gen << SHMPOOL_ATTACH_SLOT_BITS | s;
	a->count = 1;
	a->shown = false;
	a->pool = pool;
	a->smm = smm;
	list_add_tail(&a->pool_node, &pool->atts);
	list_add_tail(&a->mm_node, &smm->atts);
	return 0;
}

/* Publish @a on the status page: from now on it is alive for everyone. */
static void shmpool_att_show(struct shmpool_att *a)
{
	struct shmpool_attach_table *t = a->pool->atab;

	lockdep_assert_held(&shmpool_att_lock);
	a->shown = true;
	t->live++;
	/* Pairs with the acquire load of a slot in libshmpool's __shmpool_alive(). */
	smp_store_release(&t->status->slot[a->id & SHMPOOL_ATTACH_SLOT_MASK], a->id);
	WRITE_ONCE(t->status->live, t->live);
}

/*
 * End @a: off both lists, its slot cleared, then death_seq bumped. The
 * caller wakes the pool's death sleepers and pollers after dropping the
 * lock (shmpool_death_notify()) and then frees @a.
 * An attachment never shown ends without a death: nobody saw it. Returns
 * whether it was a death.
 */
static bool shmpool_att_end(struct shmpool_att *a)
{
	struct shmpool_pool *pool = a->pool;
	struct shmpool_attach_table *t = pool->atab;
	u32 seq = pool->death_seq + 1;

	lockdep_assert_held(&shmpool_att_lock);
	list_del(&a->pool_node);
	list_del(&a->mm_node);
	__clear_bit(a->id & SHMPOOL_ATTACH_SLOT_MASK, t->busy);
	t->taken--;
	if (!a->shown)
		return false;
	t->live--;
	/*
	 * Read by WAIT_OWNER under a bucket lock (shmpool_attach_live()), so
	 * before shmpool_doorbell_death()'s locks, as death_seq.
	 */
	WRITE_ONCE(t->status->slot[a->id & SHMPOOL_ATTACH_SLOT_MASK], 0);
	/* Read by WAIT_DEATH under a bucket lock and by poll(). */
	WRITE_ONCE(pool->death_seq, seq);
	/*
	 * The slot is clear before the new death_seq shows: pairs with the
	 * reader's acquire load of death_seq (libshmpool's
	 * __shmpool_death_seq()), which then checks the slots it cares about.
	 */
	smp_store_release(&t->status->death_seq, seq);
	WRITE_ONCE(t->status->live, t->live);
	return true;
}

/*
 * Tell everyone who waits for a death of @pool, here attachment @id's:
 * WAIT_DEATH (WAIT_OWNER: if @id owns its word) and poll().
 */
static void shmpool_death_notify(struct shmpool_pool *pool, u32 id)
{
	shmpool_doorbell_death(pool, id);
	/*
	 * death_seq was stored before this wait queue's lock is taken, and a
	 * poller reads it after adding itself under that lock: either it sees
	 * the new value or we see it queued.
	 */
	wake_up_poll(&pool->death_wq, EPOLLPRI);
}

/* The end of one attachment outside the lock: wake, then free. */
static void shmpool_att_free(struct shmpool_att *a, struct shmpool_pool *pool)
{
	if (pool)
		shmpool_death_notify(pool, a->id);
	kfree(a);
}

/*
 * Take @smm's reference of its notifier off shmpool_mms: true if it was
 * there, and the caller must drop it (mmu_notifier_put()) after the lock.
 */
static bool shmpool_mm_unhold(struct shmpool_mm *smm)
{
	lockdep_assert_held(&shmpool_att_lock);
	if (list_empty(&smm->node))
		return false;
	list_del_init(&smm->node);
	return true;
}

/*
 * The mm is going away (exit, kill, exec): end its attachments. Called by
 * exit_mmap() once, without mmap_lock, under SRCU; may sleep.
 */
static void shmpool_mm_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct shmpool_mm *smm = shmpool_mm(mn);
	struct shmpool_att *a, *tmp;
	LIST_HEAD(ended);
	bool held;

	mutex_lock(&shmpool_att_lock);
	list_for_each_entry_safe(a, tmp, &smm->atts, mm_node) {
		/*
		 * A pool already at zero is being torn down, and an attachment
		 * never shown (no ATTACH of it returned) was nobody's: nobody
		 * to wake.
		 */
		if (!shmpool_att_end(a) || !kref_get_unless_zero(&a->pool->ref))
			a->pool = NULL;
		list_add_tail(&a->pool_node, &ended);
	}
	/* Module exit may have dropped it already. */
	held = shmpool_mm_unhold(smm);
	mutex_unlock(&shmpool_att_lock);

	list_for_each_entry_safe(a, tmp, &ended, pool_node) {
		struct shmpool_pool *pool = a->pool;

		if (pool) {
			shmpool_death_notify(pool, a->id);
			shmpool_pool_put(pool);
		}
		kfree(a);
	}
	/* Last: the final put frees @smm after this SRCU section. */
	if (held)
		mmu_notifier_put(mn);
}

static struct mmu_notifier *shmpool_mm_alloc(struct mm_struct *mm)
{
	struct shmpool_mm *smm = kzalloc(sizeof(*smm), GFP_KERNEL_ACCOUNT);

	if (!smm)
		return ERR_PTR(-ENOMEM);
	INIT_LIST_HEAD(&smm->atts);
	INIT_LIST_HEAD(&smm->node);
	atomic_inc(&shmpool_nr_mm);
	return &smm->mn;
}

/* After the last put and an SRCU grace period: no ->release is running. */
static void shmpool_mm_free(struct mmu_notifier *mn)
{
	kfree(shmpool_mm(mn));
	if (atomic_dec_and_test(&shmpool_nr_mm))
		wake_up_var(&shmpool_nr_mm);
}

static const struct mmu_notifier_ops shmpool_mm_ops = {
	.release = shmpool_mm_release,
	.alloc_notifier = shmpool_mm_alloc,
	.free_notifier = shmpool_mm_free,
};

/* One more ATTACH of an existing attachment. */
static int shmpool_att_again(struct shmpool_att *a)
{
	if (a->count == INT_MAX)
		return -EOVERFLOW;
	a->count++;
	return 0;
}

static void shmpool_attach_reply(struct shmpool_attach *cmd,
				 struct shmpool_att *a)
{
	lockdep_assert_held(&shmpool_att_lock);
	cmd->id = a->id;
	cmd->death_seq = a->pool->death_seq;
}

/*
 * ATTACH, first step: fills @cmd's id, death_seq and status_offset and
 * counts the call, but publishes nothing (ACK acknowledges nothing) until
 * shmpool_attach_done() learns that the reply was written.
 */
int shmpool_attach(struct shmpool_file *sf, struct shmpool_attach *cmd)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	struct mm_struct *mm = current->mm;
	struct shmpool_attach_table *spare = NULL;
	struct shmpool_att *a, *new;
	struct mmu_notifier *mn;
	struct shmpool_mm *smm;
	int ret;

	if (cmd->flags & ~SHMPOOL_ATTACH_ACK || cmd->__reserved)
		return -EINVAL;
	cmd->status_offset = SHMPOOL_STATUS_OFFSET;
	if (cmd->flags & SHMPOOL_ATTACH_ACK) {
		cmd->id = 0;
		cmd->death_seq = READ_ONCE(pool->death_seq);
		return 0;
	}
	if (!mm)
		return -EINVAL;

	mutex_lock(&shmpool_att_lock);
	a = shmpool_att_find(pool, mm);
	if (a) {
		ret = shmpool_att_again(a);
		if (!ret)
			shmpool_attach_reply(cmd, a);
		mutex_unlock(&shmpool_att_lock);
		return ret;
	}
	mutex_unlock(&shmpool_att_lock);

	/*
	 * Takes mmap_lock for writing: outside shmpool_att_lock. Registers
	 * (mm_take_all_locks()) only at this mm's first ATTACH: after it, the
	 * notifier stays until ->release and this finds it.
	 */
	mn = mmu_notifier_get(&shmpool_mm_ops, mm);
	if (IS_ERR(mn)) {
		/* mm_take_all_locks() saw a signal: nothing happened yet. */
		if (PTR_ERR(mn) == -EINTR)
			return -ERESTARTNOINTR;
		return PTR_ERR(mn);
	}
	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new) {
		mmu_notifier_put(mn);
		return -ENOMEM;
	}
	/*
	 * The pool's first ATTACH: its table, outside the lock too. Without
	 * one (out of memory), shmpool_att_add() fails with -ENOMEM.
	 */
	if (!smp_load_acquire(&pool->atab))
		spare = shmpool_atab_alloc();

	smm = shmpool_mm(mn);
	mutex_lock(&shmpool_att_lock);
	/* The mm's first ATTACH: this reference is the mm's, until ->release. */
	if (list_empty(&smm->node)) {
		list_add(&smm->node, &shmpool_mms);
		mn = NULL;
	}
	/* Another thread of this process may have attached meanwhile. */
	a = shmpool_att_find(pool, mm);
	if (a) {
		ret = shmpool_att_again(a);
	} else {
		ret = shmpool_att_add(pool, new, smm, &spare);
		a = new;
	}
	if (!ret)
		shmpool_attach_reply(cmd, a);
	mutex_unlock(&shmpool_att_lock);
	if (mn)
		mmu_notifier_put(mn);
	/* Unless @new made it onto the lists; the table, unless used. */
	if (ret || a != new)
		kfree(new);
	shmpool_atab_free(spare);
	return ret;
}

/*
 * ATTACH, second step, after the reply (@cmd as the first step filled it)
 * was written (@replied) or not. Written: the attachment is published on
 * the status page if it was not yet (ACK: death_seq is acknowledged).
 * Not written: the call is taken back, and an attachment that no ATTACH
 * returned goes unseen, without a death.
 */
void shmpool_attach_done(struct shmpool_file *sf,
			 const struct shmpool_attach *cmd, bool replied)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	struct shmpool_att *a;
	bool died = false;

	if (cmd->flags & SHMPOOL_ATTACH_ACK) {
		if (replied)
			WRITE_ONCE(sf->death_ack, cmd->death_seq);
		return;
	}
	mutex_lock(&shmpool_att_lock);
	/*
	 * The caller's mm is alive (no ->release yet) and its call is
	 * counted, so the attachment is there, unless DETACHes of this
	 * process outnumbered its ATTACHes and ended it meanwhile.
	 */
	a = shmpool_att_find(pool, current->mm);
	if (!a || a->id != cmd->id) {
		mutex_unlock(&shmpool_att_lock);
		return;
	}
	if (replied) {
		if (!a->shown)
			shmpool_att_show(a);
		mutex_unlock(&shmpool_att_lock);
		return;
	}
	if (--a->count) {
		mutex_unlock(&shmpool_att_lock);
		return;
	}
	died = shmpool_att_end(a);
	mutex_unlock(&shmpool_att_lock);
	/* The caller's file holds @pool. */
	shmpool_att_free(a, died ? pool : NULL);
}

/* DETACH @id once; returns the count left (0: ended) or -ENOENT. */
int shmpool_detach(struct shmpool_file *sf, u32 id)
{
	struct shmpool_pool *pool = shmpool_file_pool(sf);
	struct shmpool_att *a;
	bool died = false;
	int left;

	mutex_lock(&shmpool_att_lock);
	a = current->mm ? shmpool_att_find(pool, current->mm) : NULL;
	/* Not shown: no ATTACH has returned it yet. */
	if (!a || a->id != id || !a->shown) {
		mutex_unlock(&shmpool_att_lock);
		return -ENOENT;
	}
	left = --a->count;
	if (!left)
		died = shmpool_att_end(a);
	mutex_unlock(&shmpool_att_lock);
	/* The caller's file holds @pool. */
	if (!left)
		shmpool_att_free(a, died ? pool : NULL);
	return left;
}

__poll_t shmpool_attach_poll(struct file *filp, poll_table *pt)
{
	struct shmpool_file *sf = filp->private_data;
	struct shmpool_pool *pool = shmpool_file_pool(sf);

	/* Queued before reading death_seq: see shmpool_death_notify(). */
	poll_wait(filp, &pool->death_wq, pt);
	if (READ_ONCE(pool->death_seq) != READ_ONCE(sf->death_ack))
		return EPOLLPRI;
	return 0;
}

void shmpool_attach_show(struct seq_file *m, struct shmpool_pool *pool)
{
	unsigned int live;
	u32 seq;

	mutex_lock(&shmpool_att_lock);
	live = pool->atab ? pool->atab->live : 0;
	seq = pool->death_seq;
	mutex_unlock(&shmpool_att_lock);
	seq_printf(m, "shmpool-attached:\t%u\n", live);
	seq_printf(m, "shmpool-death-seq:\t%u\n", seq);
}

void shmpool_attach_pool_init(struct shmpool_pool *pool)
{
	INIT_LIST_HEAD(&pool->atts);
	init_waitqueue_head(&pool->death_wq);
	spin_lock_init(&pool->death_lock);
	INIT_LIST_HEAD(&pool->death_waiters);
}

/*
 * The pool is being freed (its last reference is gone): end its
 * attachments. Nobody can see it: no fd, mapping or sleeper is left.
 */
void shmpool_attach_pool_free(struct shmpool_pool *pool)
{
	struct shmpool_att *a, *tmp;
	LIST_HEAD(ended);

	mutex_lock(&shmpool_att_lock);
	list_for_each_entry_safe(a, tmp, &pool->atts, pool_node) {
		list_del(&a->mm_node);
		list_move_tail(&a->pool_node, &ended);
	}
	mutex_unlock(&shmpool_att_lock);
	list_for_each_entry_safe(a, tmp, &ended, pool_node)
		shmpool_att_free(a, NULL);
	/* Mappings hold the pool, so none is left; PTEs held their own. */
	shmpool_atab_free(pool->atab);
	pool->atab = NULL;
}

/* Module exit, after the last pool is gone (see the top of this file). */
void shmpool_attach_exit(void)
{
	struct shmpool_mm *smm;

	for (;;) {
		mutex_lock(&shmpool_att_lock);
		smm = list_first_entry_or_null(&shmpool_mms, struct shmpool_mm,
					       node);
		/*
		 * @smm may still have an attachment: to a pool that only a
		 * ->release in flight holds (kref_get_unless_zero() there).
		 * That ->release is in an SRCU read section, so @smm, freed
		 * after a grace period, outlives its last pool put, which
		 * unlinks the attachment.
		 */
		if (smm)
			shmpool_mm_unhold(smm);
		mutex_unlock(&shmpool_att_lock);
		if (!smm)
			break;
		/* A ->release in flight holds SRCU: @smm outlives it. */
		mmu_notifier_put(&smm->mn);
	}
	wait_var_event(&shmpool_nr_mm, !atomic_read(&shmpool_nr_mm));
	mmu_notifier_synchronize();
}
