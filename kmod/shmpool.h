/* SPDX-License-Identifier: GPL-2.0 */
/*
 * shmpool internals shared by the files of kmod/.
 *
 * Lock order (outer first):
 *   mmap_lock (->mmap, vm_ops->close)
 *     shmpool_lock (registry of pools and names)
 *       shmpool_file.lock is never held together with shmpool_lock:
 *       binding looks up (and references) the pool first, then takes
 *       the file's lock to publish it.
 *   shmpool_file.lock (NOTIFY)
 *     doorbell bucket spinlock
 *       eventfd wait queue lock (eventfd_signal)
 *
 * Lifetime: a pool is a kref. References are held by each bound file, each
 * VMA (vm_ops open/close), the name registry while the pool is linked, and
 * anyone temporarily using it. The last put frees its pages with put_page(),
 * so pages pinned elsewhere (GUP, O_DIRECT) outlive the pool safely.
 */
#ifndef _SHMPOOL_INTERNAL_H
#define _SHMPOOL_INTERNAL_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/mm_types.h>
#include <uapi/linux/shmpool.h>

/*
 * One physically contiguous run of pages, split into order-0 pages. It is
 * (part of) one buddy block, so its struct pages are contiguous too and
 * page + i reaches any of them (nth_page() is not needed, and gone in 6.18).
 */
struct shmpool_extent_k {
	struct page *page;	/* first page */
	pgoff_t pgoff;		/* pool page index of @page */
	unsigned long nr_pages;
};

struct shmpool_pool {
	struct kref ref;
	u64 id;
	/* Immutable after creation (name is empty for anonymous pools). */
	char name[SHMPOOL_NAME_MAX];
	unsigned long nr_pages;
	unsigned int nr_extents;
	struct shmpool_extent_k *extents;	/* sorted by pgoff */
	kuid_t uid;
	kgid_t gid;
	umode_t mode;
	bool contig;
	bool exec;		/* SHMPOOL_CREATE_EXEC: PROT_EXEC allowed */
	/* RLIMIT_MEMLOCK charge to return on free; NULL if not charged. */
	struct user_struct *user;

	/* Protected by shmpool_lock. */
	struct list_head all_node;	/* in shmpool_all */
	struct list_head name_node;	/* in shmpool_names while linked */
	bool linked;
	bool unlinked;

	atomic_t attachments;	/* bound files */
	atomic_t mappings;	/* VMAs */
};

/* Per open file of /dev/shmpool. */
struct shmpool_file {
	/*
	 * NULL until bound; set once under @lock with smp_store_release()
	 * after @rdonly, read with smp_load_acquire() (shmpool_file_pool()).
	 */
	struct shmpool_pool *pool;
	bool rdonly;
	struct mutex lock;	/* serialises binding; protects the fields below */
	struct list_head notifiers;	/* NOTIFY bindings (doorbell.c) */
	unsigned int nr_notifiers;
};

static inline struct shmpool_pool *shmpool_file_pool(struct shmpool_file *sf)
{
	/* Pairs with smp_store_release() in shmpool_file_bind(). */
	return smp_load_acquire(&sf->pool);
}

/* pool.c */
extern struct mutex shmpool_lock;
extern struct list_head shmpool_all;
extern unsigned long shmpool_max_pool_mb;
extern unsigned long shmpool_max_total_mb;

struct shmpool_create_args {
	u64 bytes;
	u32 flags;		/* SHMPOOL_CREATE_* */
	umode_t mode;
	const char *name;	/* "" for anonymous */
};

int shmpool_name_check(const char name[SHMPOOL_NAME_MAX], bool allow_empty);
int shmpool_pool_create(const struct shmpool_create_args *args,
			struct shmpool_pool **poolp, bool *created);
int shmpool_pool_open(const char *name, bool rdonly,
		      struct shmpool_pool **poolp);
int shmpool_pool_unlink(const char *name);
void shmpool_pool_unname(struct shmpool_pool *pool);
void shmpool_pool_put(struct shmpool_pool *pool);
struct page *shmpool_pool_page(struct shmpool_pool *pool, pgoff_t pgoff);
void shmpool_pool_flags(struct shmpool_pool *pool, u32 *flags);
unsigned long shmpool_pages_held(void);
unsigned long shmpool_pool_count(void);
unsigned long shmpool_bytes_charged(void);
u64 shmpool_max_pool_bytes(void);
u64 shmpool_max_total_bytes(void);
void shmpool_pools_init(void);
void shmpool_pools_exit(void);

static inline void shmpool_pool_get(struct shmpool_pool *pool)
{
	kref_get(&pool->ref);
}

/* mmap.c */
int shmpool_mmap(struct file *filp, struct vm_area_struct *vma);

/* ioctl.c */
long shmpool_ioctl(struct file *filp, unsigned int cmd, unsigned long arg);

/* doorbell.c */
int shmpool_doorbell_wait(struct shmpool_file *sf, const struct shmpool_wait *cmd);
int shmpool_doorbell_wake(struct shmpool_file *sf, const struct shmpool_wake *cmd);
int shmpool_doorbell_waitv(struct file *filp, const struct shmpool_waitv *cmd);
int shmpool_doorbell_notify(struct shmpool_file *sf,
			    const struct shmpool_notify *cmd);
void shmpool_doorbell_release(struct shmpool_file *sf);
unsigned int shmpool_waiters(void);
int shmpool_doorbell_init(void);
void shmpool_doorbell_exit(void);

/* main.c */
extern const struct file_operations shmpool_fops;
int shmpool_file_bind(struct shmpool_file *sf, struct shmpool_pool *pool,
		      bool rdonly);

#endif /* _SHMPOOL_INTERNAL_H */
