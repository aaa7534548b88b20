// SPDX-License-Identifier: GPL-2.0
/*
 * Pool allocation, accounting, the name registry and lifetime.
 *
 * A pool is a list of physically contiguous extents. Each extent comes from
 * the buddy allocator as one high-order block that split_page() turns into
 * independent order-0 pages, each with its own refcount, so that .fault can
 * hand out any of them with get_page() and the last put_page() (ours, or a
 * GUP user's long after us) frees it.
 */
#include <linux/atomic.h>
#include <linux/capability.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uidgid.h>

#include "compat.h"
#include "shmpool.h"

/* Protects shmpool_all and every pool's @inode pointer. */
DEFINE_MUTEX(shmpool_lock);
LIST_HEAD(shmpool_all);

/* Module parameters (main.c); 0 means "half of RAM", resolved at load. */
unsigned long shmpool_max_pool_mb;
unsigned long shmpool_max_total_mb;

static atomic64_t shmpool_next_id = ATOMIC64_INIT(0);
static atomic_long_t shmpool_pages;	/* pages held by live pools */
static atomic_long_t shmpool_reserved;	/* pages reserved against max_total */
static atomic_long_t shmpool_npools;
static atomic_long_t shmpool_charged;	/* pages charged to RLIMIT_MEMLOCK */

u64 shmpool_max_pool_bytes(void)
{
	return (u64)READ_ONCE(shmpool_max_pool_mb) << 20;
}

u64 shmpool_max_total_bytes(void)
{
	return (u64)READ_ONCE(shmpool_max_total_mb) << 20;
}

unsigned long shmpool_pages_held(void)
{
	return atomic_long_read(&shmpool_pages);
}

unsigned long shmpool_pool_count(void)
{
	return atomic_long_read(&shmpool_npools);
}

unsigned long shmpool_bytes_charged(void)
{
	return atomic_long_read(&shmpool_charged) << PAGE_SHIFT;
}

int shmpool_name_check(const char name[SHMPOOL_NAME_MAX], bool allow_empty)
{
	size_t len = strnlen(name, SHMPOOL_NAME_MAX);
	size_t i;

	if (len == SHMPOOL_NAME_MAX)
		return -EINVAL;		/* not NUL-terminated */
	if (!len && !allow_empty)
		return -EINVAL;
	/* Names are directory entries of the scope. */
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	for (i = 0; i < len; i++) {
		char c = name[i];

		/* ASCII only: the kernel's isalnum() also accepts Latin-1. */
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
		    !(c >= '0' && c <= '9') && c != '.' && c != '_' && c != '-')
			return -EINVAL;
	}
	/* Nothing may hide after the terminator ("ab\0cd"). */
	for (i = len; i < SHMPOOL_NAME_MAX; i++)
		if (name[i])
			return -EINVAL;
	return 0;
}

/*
 * Charge @nr pages to the current user's RLIMIT_MEMLOCK as mlock() and
 * io_uring do, unless the caller has CAP_IPC_LOCK. The pages are never
 * swapped, so an unprivileged user must not get more than the limit.
 *
 * Twice: to the caller's user_struct->locked_vm (shared with mlock(), as
 * io_uring does), and to its charge identity (user.c), which every uid of
 * a container shares, so that switching uids inside a user namespace gives
 * no extra budget. Both are checked against the caller's RLIMIT_MEMLOCK.
 */
static int shmpool_charge(struct shmpool_pool *pool, unsigned long nr)
{
	unsigned long limit, cur, new;
	struct shmpool_user *charge;
	struct user_struct *user;
	int ret;

	if (capable(CAP_IPC_LOCK))
		return 0;
	limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	charge = shmpool_user_get();
	if (IS_ERR(charge))
		return PTR_ERR(charge);
	ret = shmpool_user_charge_pages(charge, nr, limit);
	if (ret) {
		shmpool_user_put(charge);
		return ret;
	}
	user = get_current_user();
	cur = atomic_long_read(&user->locked_vm);
	do {
		new = cur + nr;
		if (new < cur || new > limit) {
			free_uid(user);
			shmpool_user_uncharge_pages(charge, nr);
			shmpool_user_put(charge);
			return -EDQUOT;
		}
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &cur, new));
	pool->user = user;
	pool->charge = charge;
	atomic_long_add(nr, &shmpool_charged);
	return 0;
}

static void shmpool_uncharge(struct shmpool_pool *pool)
{
	if (!pool->user)
		return;
	atomic_long_sub(pool->nr_pages, &pool->user->locked_vm);
	atomic_long_sub(pool->nr_pages, &shmpool_charged);
	free_uid(pool->user);
	pool->user = NULL;
	shmpool_user_uncharge_pages(pool->charge, pool->nr_pages);
	shmpool_user_put(pool->charge);
	pool->charge = NULL;
}

static int shmpool_reserve(unsigned long nr)
{
	unsigned long max = shmpool_max_total_bytes() >> PAGE_SHIFT;

	if (atomic_long_add_return(nr, &shmpool_reserved) > max) {
		atomic_long_sub(nr, &shmpool_reserved);
		return -ENOSPC;
	}
	return 0;
}

static void shmpool_free_extents(struct shmpool_pool *pool)
{
	unsigned int i;
	unsigned long j;

	for (i = 0; i < pool->nr_extents; i++) {
		struct shmpool_extent_k *ext = &pool->extents[i];

		/*
		 * put_page(), not __free_pages(): a page someone pinned
		 * (O_DIRECT in flight, vmsplice) stays theirs until they drop it.
		 */
		for (j = 0; j < ext->nr_pages; j++)
			put_page(ext->page + j);
		atomic_long_sub(ext->nr_pages, &shmpool_pages);
		cond_resched();
	}
	pool->nr_extents = 0;
}

/* Grow the extent array by doubling; kvrealloc()'s signature is unstable. */
static int shmpool_extents_grow(struct shmpool_pool *pool, unsigned int *cap)
{
	unsigned int ncap = *cap ? *cap * 2 : 8;
	struct shmpool_extent_k *n;

	if (ncap < *cap)
		return -ENOMEM;
	n = kvmalloc_array(ncap, sizeof(*n), GFP_KERNEL_ACCOUNT);
	if (!n)
		return -ENOMEM;
	if (pool->extents) {
		memcpy(n, pool->extents, pool->nr_extents * sizeof(*n));
		kvfree(pool->extents);
	}
	pool->extents = n;
	*cap = ncap;
	return 0;
}

/*
 * Allocate one block of 2^order pages, zeroed and charged to the caller's
 * memory cgroup, and split it into order-0 pages. Never invokes the OOM
 * killer: high orders give up early (__GFP_NORETRY) so that we fall back to
 * smaller ones; the last resort and CONTIG requests try harder but may fail
 * (__GFP_RETRY_MAYFAIL).
 */
static struct page *shmpool_alloc_block(unsigned int order, bool try_hard)
{
	gfp_t gfp = GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT | __GFP_NOWARN;
	struct page *page;

	gfp |= try_hard ? __GFP_RETRY_MAYFAIL : __GFP_NORETRY;
	page = alloc_pages(gfp, order);
	if (page && order)
		split_page(page, order);
	return page;
}

static int shmpool_add_extent(struct shmpool_pool *pool, unsigned int *cap,
			      struct page *page, unsigned long nr,
			      pgoff_t pgoff)
{
	int ret;

	if (pool->nr_extents == *cap) {
		ret = shmpool_extents_grow(pool, cap);
		if (ret)
			return ret;
	}
	pool->extents[pool->nr_extents++] = (struct shmpool_extent_k) {
		.page = page, .pgoff = pgoff, .nr_pages = nr,
	};
	atomic_long_add(nr, &shmpool_pages);
	return 0;
}

static int shmpool_alloc_contig(struct shmpool_pool *pool, unsigned int *cap)
{
	unsigned long nr = pool->nr_pages, i;
	unsigned int order = order_base_2(nr);
	struct page *page;
	int ret;

	page = shmpool_alloc_block(order, true);
	if (!page)
		return -ENOMEM;
	/* Return the tail beyond the requested size to the allocator. */
	for (i = nr; i < (1UL << order); i++)
		__free_page(page + i);
	ret = shmpool_add_extent(pool, cap, page, nr, 0);
	if (ret)
		for (i = 0; i < nr; i++)
			__free_page(page + i);
	return ret;
}

static int shmpool_alloc_pages(struct shmpool_pool *pool)
{
	unsigned long left = pool->nr_pages;
	unsigned int order = SHMPOOL_MAX_ORDER;
	unsigned int cap = 0;
	pgoff_t pgoff = 0;
	int ret;

	if (pool->contig)
		return shmpool_alloc_contig(pool, &cap);

	while (left) {
		struct page *page;
		unsigned long nr, i;

		if (fatal_signal_pending(current))
			return -EINTR;
		order = min_t(unsigned int, order, ilog2(left));
		/*
		 * Orders never grow again, so every extent starts at a pool
		 * offset aligned to its size: a HUGE pool's 2 MiB mappings
		 * need 2 MiB blocks, worth compaction before falling back.
		 */
		page = shmpool_alloc_block(order, order == 0 ||
					   (pool->huge && order == SHMPOOL_PMD_ORDER));
		if (!page) {
			if (!order)
				return -ENOMEM;
			order--;	/* fragmented: fall back to smaller blocks */
			continue;
		}
		nr = 1UL << order;
		ret = shmpool_add_extent(pool, &cap, page, nr, pgoff);
		if (ret) {
			for (i = 0; i < nr; i++)
				__free_page(page + i);
			return ret;
		}
		pgoff += nr;
		left -= nr;
		cond_resched();
	}
	return 0;
}

static void shmpool_pool_free(struct shmpool_pool *pool)
{
	shmpool_attach_pool_free(pool);
	shmpool_free_extents(pool);
	atomic_long_sub(pool->nr_pages, &shmpool_reserved);
	shmpool_uncharge(pool);
	kvfree(pool->extents);
	atomic_long_dec(&shmpool_npools);
	kfree(pool);
}

/*
 * kref release: kref_put_mutex() calls it with shmpool_lock held, so that the
 * debugfs walk cannot find the pool on shmpool_all while it dies; it drops
 * the lock.
 */
static void shmpool_pool_release(struct kref *ref)
{
	struct shmpool_pool *pool = container_of(ref, struct shmpool_pool, ref);

	list_del(&pool->all_node);	/* list_del of an empty node is harmless */
	mutex_unlock(&shmpool_lock);
	shmpool_pool_free(pool);
}

void shmpool_pool_put(struct shmpool_pool *pool)
{
	kref_put_mutex(&pool->ref, shmpool_pool_release, &shmpool_lock);
}

/* An id for a pool about to be made: unique until the module is unloaded. */
u64 shmpool_pool_new_id(void)
{
	return atomic64_inc_return(&shmpool_next_id);
}

/* The pool of @a, with the id @id from shmpool_pool_new_id(). */
struct shmpool_pool *shmpool_pool_alloc(const struct shmpool_create_args *a,
					u64 id)
{
	unsigned long nr = a->bytes >> PAGE_SHIFT;
	struct shmpool_pool *pool;
	int ret;

	pool = kzalloc(sizeof(*pool), GFP_KERNEL_ACCOUNT);
	if (!pool)
		return ERR_PTR(-ENOMEM);
	kref_init(&pool->ref);
	INIT_LIST_HEAD(&pool->all_node);
	shmpool_attach_pool_init(pool);
	atomic_long_inc(&shmpool_npools);
	pool->nr_pages = nr;
	strscpy(pool->name, a->name, sizeof(pool->name));
	pool->contig = a->flags & SHMPOOL_CREATE_CONTIG;
	pool->exec = a->flags & SHMPOOL_CREATE_EXEC;
	pool->huge = a->flags & SHMPOOL_CREATE_HUGE;

	/* Limits first: cheap, and nothing is allocated yet on failure. */
	ret = shmpool_reserve(nr);
	if (ret) {
		pool->nr_pages = 0;	/* nothing reserved to give back */
		goto err_free;
	}
	ret = shmpool_charge(pool, nr);
	if (ret)
		goto err_free;
	ret = shmpool_alloc_pages(pool);
	if (ret)
		goto err_free;

	/* On shmpool_all once fs.c has given it an inode (debugfs). */
	pool->id = id;
	return pool;

err_free:
	/* Gives back whatever part of pages, reservation and charge was taken. */
	shmpool_pool_free(pool);
	return ERR_PTR(ret);
}

/* SHMPOOL_POOL_* of @pool as seen through @filp (a pool file). */
u32 shmpool_pool_flags(struct shmpool_pool *pool, struct file *filp)
{
	struct shmpool_file *sf = filp->private_data;
	u32 f = 0;

	if (pool->name[0]) {
		f |= SHMPOOL_POOL_NAMED;
		/* unlink (ioctl or VFS) dropped the link count under i_rwsem */
		if (!READ_ONCE(file_inode(filp)->i_nlink))
			f |= SHMPOOL_POOL_UNLINKED;
	}
	if (pool->contig)
		f |= SHMPOOL_POOL_CONTIG;
	if (pool->exec)
		f |= SHMPOOL_POOL_EXEC;
	if (pool->huge)
		f |= SHMPOOL_POOL_HUGE;
	if (sf->rdonly)
		f |= SHMPOOL_POOL_RDONLY;
	return f;
}

/* The extent holding pool page @pgoff (< nr_pages): binary search. */
const struct shmpool_extent_k *shmpool_pool_extent(struct shmpool_pool *pool,
						   pgoff_t pgoff)
{
	unsigned int lo = 0, hi = pool->nr_extents;

	while (hi - lo > 1) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (pool->extents[mid].pgoff <= pgoff)
			lo = mid;
		else
			hi = mid;
	}
	return &pool->extents[lo];
}

/* The page backing pool page @pgoff (< nr_pages). */
struct page *shmpool_pool_page(struct shmpool_pool *pool, pgoff_t pgoff)
{
	const struct shmpool_extent_k *ext = shmpool_pool_extent(pool, pgoff);

	return ext->page + (pgoff - ext->pgoff);
}

void shmpool_pools_init(void)
{
	unsigned long half_mb = (totalram_pages() >> 1) >> (20 - PAGE_SHIFT);

	if (!shmpool_max_pool_mb)
		shmpool_max_pool_mb = half_mb;
	if (!shmpool_max_total_mb)
		shmpool_max_total_mb = half_mb;
}

/*
 * Module unload: no file or VMA can exist any more (both pin the module), and
 * fs.c has unmounted the default scope, which drops its named pools.
 */
void shmpool_pools_exit(void)
{
	WARN_ON(atomic_long_read(&shmpool_pages));
}
