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

/* Protects shmpool_all, shmpool_names and every pool's registry fields. */
DEFINE_MUTEX(shmpool_lock);
LIST_HEAD(shmpool_all);
static LIST_HEAD(shmpool_names);

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
 */
static int shmpool_charge(struct shmpool_pool *pool, unsigned long nr)
{
	unsigned long limit, cur, new;
	struct user_struct *user;

	if (capable(CAP_IPC_LOCK))
		return 0;
	limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	user = get_current_user();
	cur = atomic_long_read(&user->locked_vm);
	do {
		new = cur + nr;
		if (new < cur || new > limit) {
			free_uid(user);
			return -EDQUOT;
		}
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &cur, new));
	pool->user = user;
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
		page = shmpool_alloc_block(order, order == 0);
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
	shmpool_free_extents(pool);
	atomic_long_sub(pool->nr_pages, &shmpool_reserved);
	shmpool_uncharge(pool);
	kvfree(pool->extents);
	atomic_long_dec(&shmpool_npools);
	kfree(pool);
}

/*
 * kref release: kref_put_mutex() calls it with shmpool_lock held, so that no
 * lookup can find the pool on shmpool_all while it dies; it drops the lock.
 */
static void shmpool_pool_release(struct kref *ref)
{
	struct shmpool_pool *pool = container_of(ref, struct shmpool_pool, ref);

	list_del(&pool->all_node);
	mutex_unlock(&shmpool_lock);
	shmpool_pool_free(pool);
}

void shmpool_pool_put(struct shmpool_pool *pool)
{
	kref_put_mutex(&pool->ref, shmpool_pool_release, &shmpool_lock);
}

static struct shmpool_pool *shmpool_pool_alloc(const struct shmpool_create_args *a)
{
	unsigned long nr = a->bytes >> PAGE_SHIFT;
	struct shmpool_pool *pool;
	int ret;

	pool = kzalloc(sizeof(*pool), GFP_KERNEL_ACCOUNT);
	if (!pool)
		return ERR_PTR(-ENOMEM);
	kref_init(&pool->ref);
	INIT_LIST_HEAD(&pool->all_node);
	INIT_LIST_HEAD(&pool->name_node);
	atomic_long_inc(&shmpool_npools);
	pool->nr_pages = nr;
	strscpy(pool->name, a->name, sizeof(pool->name));
	pool->uid = current_fsuid();
	pool->gid = current_fsgid();
	pool->mode = a->mode & ~current_umask() & 0777;
	pool->contig = a->flags & SHMPOOL_CREATE_CONTIG;
	pool->exec = a->flags & SHMPOOL_CREATE_EXEC;

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

	pool->id = atomic64_inc_return(&shmpool_next_id);
	mutex_lock(&shmpool_lock);
	list_add_tail(&pool->all_node, &shmpool_all);
	mutex_unlock(&shmpool_lock);
	return pool;

err_free:
	/* Gives back whatever part of pages, reservation and charge was taken. */
	shmpool_pool_free(pool);
	return ERR_PTR(ret);
}

static struct shmpool_pool *shmpool_lookup(const char *name)
{
	struct shmpool_pool *pool;

	lockdep_assert_held(&shmpool_lock);
	list_for_each_entry(pool, &shmpool_names, name_node)
		if (!strcmp(pool->name, name))
			return pool;
	return NULL;
}

/* May the caller open @pool for @mask (MAY_READ | MAY_WRITE)? File rules. */
static int shmpool_permission(struct shmpool_pool *pool, int mask)
{
	umode_t mode = pool->mode;

	if (uid_eq(current_fsuid(), pool->uid))
		mode >>= 6;
	else if (in_group_p(pool->gid))
		mode >>= 3;
	if (!(mask & ~mode & (MAY_READ | MAY_WRITE)))
		return 0;
	if (capable(CAP_DAC_OVERRIDE))
		return 0;
	return -EACCES;
}

/* Reference an existing named pool for the caller, checking access. */
static int shmpool_attach_locked(struct shmpool_pool *pool, bool rdonly)
{
	int ret;

	lockdep_assert_held(&shmpool_lock);
	ret = shmpool_permission(pool, rdonly ? MAY_READ : MAY_READ | MAY_WRITE);
	if (ret)
		return ret;
	shmpool_pool_get(pool);
	return 0;
}

/*
 * Open an existing pool of that name for a non-EXCL create. Returns 1 and a
 * reference if it exists, 0 if it does not, or -errno.
 */
static int shmpool_create_existing(const struct shmpool_create_args *a,
				   struct shmpool_pool **poolp)
{
	struct shmpool_pool *pool;
	int ret = 0;

	lockdep_assert_held(&shmpool_lock);
	pool = shmpool_lookup(a->name);
	if (!pool)
		return 0;
	if ((a->flags & SHMPOOL_CREATE_EXCL) ||
	    (u64)pool->nr_pages << PAGE_SHIFT != a->bytes)
		return -EEXIST;
	ret = shmpool_attach_locked(pool, false);
	if (ret)
		return ret;
	*poolp = pool;
	return 1;
}

int shmpool_pool_create(const struct shmpool_create_args *a,
			struct shmpool_pool **poolp, bool *created)
{
	bool named = a->name[0];
	struct shmpool_pool *pool;
	int ret;

	*created = false;
	if (named) {
		/* Common case of a non-EXCL create: the pool already exists. */
		mutex_lock(&shmpool_lock);
		ret = shmpool_create_existing(a, poolp);
		mutex_unlock(&shmpool_lock);
		if (ret)
			return ret < 0 ? ret : 0;
	}

	/* Allocate without the registry lock: this can take a while. */
	pool = shmpool_pool_alloc(a);
	if (IS_ERR(pool))
		return PTR_ERR(pool);
	if (!named) {
		*poolp = pool;
		*created = true;
		return 0;
	}

	mutex_lock(&shmpool_lock);
	ret = shmpool_create_existing(a, poolp);
	if (!ret) {
		/* Still free: link it; the registry holds its own reference. */
		list_add_tail(&pool->name_node, &shmpool_names);
		pool->linked = true;
		shmpool_pool_get(pool);
		mutex_unlock(&shmpool_lock);
		*poolp = pool;
		*created = true;
		return 0;
	}
	mutex_unlock(&shmpool_lock);
	/* Somebody created it meanwhile: theirs is used (or refused), ours goes. */
	shmpool_pool_put(pool);
	return ret < 0 ? ret : 0;
}

int shmpool_pool_open(const char *name, bool rdonly, struct shmpool_pool **poolp)
{
	struct shmpool_pool *pool;
	int ret;

	mutex_lock(&shmpool_lock);
	pool = shmpool_lookup(name);
	ret = pool ? shmpool_attach_locked(pool, rdonly) : -ENOENT;
	mutex_unlock(&shmpool_lock);
	if (!ret)
		*poolp = pool;
	return ret;
}

static void shmpool_unlink_locked(struct shmpool_pool *pool)
{
	list_del_init(&pool->name_node);
	pool->linked = false;
	pool->unlinked = true;
}

int shmpool_pool_unlink(const char *name)
{
	struct shmpool_pool *pool;

	mutex_lock(&shmpool_lock);
	pool = shmpool_lookup(name);
	if (!pool) {
		mutex_unlock(&shmpool_lock);
		return -ENOENT;
	}
	if (!uid_eq(current_fsuid(), pool->uid) && !capable(CAP_SYS_ADMIN)) {
		mutex_unlock(&shmpool_lock);
		return -EPERM;
	}
	shmpool_unlink_locked(pool);
	mutex_unlock(&shmpool_lock);
	/* The registry's reference; users keep the memory alive. */
	shmpool_pool_put(pool);
	return 0;
}

/* Take @pool's name away if it still has it (undoing a failed create). */
void shmpool_pool_unname(struct shmpool_pool *pool)
{
	bool was_linked;

	mutex_lock(&shmpool_lock);
	was_linked = pool->linked;
	if (was_linked)
		shmpool_unlink_locked(pool);
	mutex_unlock(&shmpool_lock);
	if (was_linked)
		shmpool_pool_put(pool);
}

void shmpool_pool_flags(struct shmpool_pool *pool, u32 *flags)
{
	u32 f = 0;

	mutex_lock(&shmpool_lock);
	if (pool->linked || pool->unlinked)
		f |= SHMPOOL_POOL_NAMED;
	if (pool->unlinked)
		f |= SHMPOOL_POOL_UNLINKED;
	mutex_unlock(&shmpool_lock);
	if (pool->contig)
		f |= SHMPOOL_POOL_CONTIG;
	if (pool->exec)
		f |= SHMPOOL_POOL_EXEC;
	*flags = f;
}

/* The page backing pool page @pgoff (< nr_pages): binary search of extents. */
struct page *shmpool_pool_page(struct shmpool_pool *pool, pgoff_t pgoff)
{
	unsigned int lo = 0, hi = pool->nr_extents;

	while (hi - lo > 1) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (pool->extents[mid].pgoff <= pgoff)
			lo = mid;
		else
			hi = mid;
	}
	return pool->extents[lo].page + (pgoff - pool->extents[lo].pgoff);
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
 * Module unload: no file or VMA can exist any more (both pin the module), so
 * only named pools still held by the registry remain. Drop them.
 */
void shmpool_pools_exit(void)
{
	struct shmpool_pool *pool, *tmp;
	LIST_HEAD(dead);

	mutex_lock(&shmpool_lock);
	list_for_each_entry_safe(pool, tmp, &shmpool_names, name_node) {
		shmpool_unlink_locked(pool);
		list_add(&pool->name_node, &dead);
	}
	mutex_unlock(&shmpool_lock);
	list_for_each_entry_safe(pool, tmp, &dead, name_node) {
		list_del(&pool->name_node);
		pr_info("shmpool: freeing pool \"%s\" at unload\n", pool->name);
		shmpool_pool_put(pool);
	}
	WARN_ON(atomic_long_read(&shmpool_pages));
}
