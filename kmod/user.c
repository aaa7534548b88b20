// SPDX-License-Identifier: GPL-2.0
/*
 * Per-user accounting that switching uids inside a container cannot multiply.
 *
 * RLIMIT_MEMLOCK is charged per user_struct, and every uid mapped into a user
 * namespace has its own user_struct: a container with 65536 mapped uids
 * would get 65536 budgets. So every charge also goes to a "charge identity":
 *
 *   - a caller in the initial user namespace: its own (global) uid;
 *   - a caller inside user namespaces: the owner of the outermost one below
 *     init_user_ns, i.e. the global uid that created the container. Every
 *     uid of every namespace nested in it shares that one identity.
 *
 * An identity holds, per kind, what its callers have charged: pool pages
 * (checked against the caller's RLIMIT_MEMLOCK, as user_struct->locked_vm
 * is), sleeping doorbell waiters (max_waiters_per_user) and NOTIFY bindings
 * (max_notify_per_user). Entries live in a small hash while anything is
 * charged to them or anyone holds a reference; lookups are RCU, inserts and
 * removals take shmpool_users_lock.
 */
#include <linux/cred.h>
#include <linux/hashtable.h>
#include <linux/moduleparam.h>
#include <linux/rcupdate.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/user_namespace.h>

#include "shmpool.h"

struct shmpool_user {
	struct hlist_node node;		/* in shmpool_users, RCU */
	struct rcu_head rcu;
	kuid_t uid;			/* the identity (a global uid) */
	refcount_t ref;
	atomic_long_t pages;		/* pool pages charged */
	atomic_t waiters;		/* sleeping doorbell waiters (entries) */
	atomic_t notifiers;		/* NOTIFY bindings */
};

#define SHMPOOL_USERS_BITS	6
static DEFINE_HASHTABLE(shmpool_users, SHMPOOL_USERS_BITS);
static DEFINE_SPINLOCK(shmpool_users_lock);	/* inserts and removals */

static unsigned int shmpool_max_waiters_per_user = 4096;
static unsigned int shmpool_max_notify_per_user = 1024;

/* A per-user limit: 1..INT_MAX. 0 would turn the feature off for everyone. */
static int shmpool_limit_set(const char *val, const struct kernel_param *kp)
{
	unsigned int n;

	if (kstrtouint(val, 0, &n) || !n || n > INT_MAX)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, n);
	return 0;
}

static const struct kernel_param_ops shmpool_limit_ops = {
	.set = shmpool_limit_set,
	.get = param_get_uint,
};

module_param_cb(max_waiters_per_user, &shmpool_limit_ops,
		&shmpool_max_waiters_per_user, 0644);
MODULE_PARM_DESC(max_waiters_per_user,
		 "Sleeping doorbell waiters per user (WAITV: per entry), 1..INT_MAX (default 4096)");
module_param_cb(max_notify_per_user, &shmpool_limit_ops,
		&shmpool_max_notify_per_user, 0644);
MODULE_PARM_DESC(max_notify_per_user,
		 "NOTIFY bindings per user, 1..INT_MAX (default 1024)");

/* The caller's charge identity (see the top of this file). */
static kuid_t shmpool_charge_uid(void)
{
	const struct user_namespace *ns = current_user_ns();

	if (ns == &init_user_ns)
		return current_uid();
	while (ns->parent != &init_user_ns)
		ns = ns->parent;
	return ns->owner;
}

static struct shmpool_user *shmpool_user_lookup(kuid_t uid)
{
	struct shmpool_user *u;

	hash_for_each_possible_rcu(shmpool_users, u, node, __kuid_val(uid))
		if (uid_eq(u->uid, uid) && refcount_inc_not_zero(&u->ref))
			return u;
	return NULL;
}

struct shmpool_user *shmpool_user_get(void)
{
	kuid_t uid = shmpool_charge_uid();
	struct shmpool_user *u, *n;

	rcu_read_lock();
	u = shmpool_user_lookup(uid);
	rcu_read_unlock();
	if (u)
		return u;

	n = kzalloc(sizeof(*n), GFP_KERNEL);
	if (!n)
		return ERR_PTR(-ENOMEM);
	n->uid = uid;
	refcount_set(&n->ref, 1);
	spin_lock(&shmpool_users_lock);
	/* Under the lock no entry of @uid can die: only put removes them. */
	u = shmpool_user_lookup(uid);
	if (!u) {
		hash_add_rcu(shmpool_users, &n->node, __kuid_val(uid));
		u = n;
		n = NULL;
	}
	spin_unlock(&shmpool_users_lock);
	kfree(n);
	return u;
}

void shmpool_user_put(struct shmpool_user *u)
{
	/* refcount_dec_and_lock(), spelled out so that sparse can follow. */
	if (refcount_dec_not_one(&u->ref))
		return;
	spin_lock(&shmpool_users_lock);
	if (!refcount_dec_and_test(&u->ref)) {
		spin_unlock(&shmpool_users_lock);
		return;
	}
	hash_del_rcu(&u->node);
	spin_unlock(&shmpool_users_lock);
	WARN_ON(atomic_long_read(&u->pages) || atomic_read(&u->waiters) ||
		atomic_read(&u->notifiers));
	kfree_rcu(u, rcu);
}

int shmpool_user_charge_pages(struct shmpool_user *u, unsigned long nr,
			      unsigned long limit)
{
	long cur = atomic_long_read(&u->pages), new;

	do {
		new = cur + nr;
		if (new < cur || (unsigned long)new > limit)
			return -EDQUOT;
	} while (!atomic_long_try_cmpxchg(&u->pages, &cur, new));
	return 0;
}

void shmpool_user_uncharge_pages(struct shmpool_user *u, unsigned long nr)
{
	atomic_long_sub(nr, &u->pages);
}

/* Add @n to *@cnt unless that goes above @max: 0 or -ENOSPC. */
static int shmpool_user_add(atomic_t *cnt, unsigned int n, unsigned int max)
{
	int cur = atomic_read(cnt);

	do {
		if ((unsigned int)cur + n > max)
			return -ENOSPC;
	} while (!atomic_try_cmpxchg(cnt, &cur, cur + n));
	return 0;
}

int shmpool_user_add_waiters(struct shmpool_user *u, unsigned int n)
{
	return shmpool_user_add(&u->waiters, n,
				READ_ONCE(shmpool_max_waiters_per_user));
}

void shmpool_user_sub_waiters(struct shmpool_user *u, unsigned int n)
{
	atomic_sub(n, &u->waiters);
}

int shmpool_user_add_notifier(struct shmpool_user *u)
{
	return shmpool_user_add(&u->notifiers, 1,
				READ_ONCE(shmpool_max_notify_per_user));
}

void shmpool_user_sub_notifier(struct shmpool_user *u)
{
	atomic_dec(&u->notifiers);
}

/* Module unload: every file, pool and waiter is gone, so is every entry. */
void shmpool_users_exit(void)
{
	struct shmpool_user *u;
	unsigned int bkt;

	hash_for_each(shmpool_users, bkt, u, node)
		WARN(1, "identity %u still referenced\n",
		     from_kuid(&init_user_ns, u->uid));
}
