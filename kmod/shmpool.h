/* SPDX-License-Identifier: GPL-2.0 */
/*
 * shmpool internals shared by the files of kmod/.
 *
 * Lock order (outer first):
 *   scope root directory's i_rwsem (names: create, unlink)
 *     mmap_lock (->mmap, vm_ops->close)
 *       shmpool_lock (the list of all pools, for debugfs and kref_put_mutex)
 *       shmpool_att_lock (attach.c: attachments, status tables; also taken
 *                         by an mm's ->release, without mmap_lock)
 *   shmpool_file.lock (NOTIFY)
 *     doorbell bucket spinlock
 *       eventfd wait queue lock (eventfd_signal)
 *   shmpool_pool.death_lock (its WAIT_DEATH sleepers)
 *     doorbell bucket spinlock
 *
 * An attachment's end (attach.c) drops shmpool_att_lock before it takes
 * the pool's death_lock (shmpool_doorbell_death()) or its death_wq lock.
 *
 * Names: every pool is an inode of one instance of the "shmpool" filesystem
 * (fs.c), its scope; a named pool is also a dentry in the instance's root
 * directory, pinned (as in ramfs) until unlinked. The dcache is the name
 * registry, serialised by the root directory's i_rwsem.
 *
 * Lifetime: a pool is a kref. References are held by its inode (i_private,
 * dropped at eviction), each VMA (vm_ops open/close) and anyone temporarily
 * using it. A pool file pins its dentry and inode, and so its mount and
 * superblock: a scope dies only after its last file. The last put frees the
 * pages with put_page(), so pages pinned elsewhere (GUP, O_DIRECT) outlive
 * the pool safely. Attachments (attach.c) hold no reference: the pool's end
 * ends them.
 */
#ifndef _SHMPOOL_INTERNAL_H
#define _SHMPOOL_INTERNAL_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/mm_types.h>
#include <linux/poll.h>
#include <linux/wait.h>
#include <uapi/linux/shmpool.h>

/*
 * One physically contiguous run of pages, split into order-0 pages. It is
 * (part of) one buddy block, so its struct pages are contiguous too and
 * page + i reaches any of them (nth_page() is not needed, and gone in 6.18).
 */
/* The order of a PMD mapping's block: 2 MiB on x86-64 (HUGE pools). */
#define SHMPOOL_PMD_ORDER	(PMD_SHIFT - PAGE_SHIFT)

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
	dev_t scope;		/* s_dev of its filesystem instance */
	bool contig;
	bool exec;		/* SHMPOOL_CREATE_EXEC: PROT_EXEC allowed */
	bool huge;		/* SHMPOOL_CREATE_HUGE: PFN + PMD mappings */
	/* RLIMIT_MEMLOCK charge to return on free; NULL if not charged. */
	struct user_struct *user;
	struct shmpool_user *charge;	/* the same pages, per identity (user.c) */

	/* Protected by shmpool_lock. */
	struct list_head all_node;	/* in shmpool_all */
	/* Owner, group, mode; NULL once the inode is evicted (debugfs). */
	struct inode *inode;

	atomic_t attachments;	/* open pool files */
	atomic_t mappings;	/* VMAs */

	/* Process attachments (attach.c); under shmpool_att_lock. */
	struct shmpool_attach_table *atab;	/* NULL until first used */
	struct list_head atts;		/* shmpool_att.pool_node */
	u32 death_seq;			/* attachment ends; READ_ONCE outside */
	spinlock_t death_lock;		/* protects death_waiters */
	struct list_head death_waiters;	/* WAIT_DEATH callers (doorbell.c) */
	wait_queue_head_t death_wq;	/* poll() on pool files */
};

/* Per open pool file (f_op == &shmpool_fops). */
struct shmpool_file {
	/* Set before the file is visible; never NULL, never changes. */
	struct shmpool_pool *pool;
	bool rdonly;
	struct mutex lock;	/* protects the fields below */
	struct list_head notifiers;	/* NOTIFY bindings (doorbell.c) */
	unsigned int nr_notifiers;
	u32 death_ack;		/* death_seq acknowledged for poll(); WRITE_ONCE */
};

static inline struct shmpool_pool *shmpool_file_pool(struct shmpool_file *sf)
{
	return sf->pool;
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
	/*
	 * Tells the caller the id of the new pool before anything is
	 * allocated, charged or named; an error makes nothing (fs.c).
	 */
	int (*announce)(const struct shmpool_create_args *a, u64 id);
	void *ctx;		/* the caller's, for @announce */
};

int shmpool_name_check(const char name[SHMPOOL_NAME_MAX], bool allow_empty);
u64 shmpool_pool_new_id(void);
struct shmpool_pool *shmpool_pool_alloc(const struct shmpool_create_args *a,
					u64 id);
void shmpool_pool_put(struct shmpool_pool *pool);
struct page *shmpool_pool_page(struct shmpool_pool *pool, pgoff_t pgoff);
const struct shmpool_extent_k *shmpool_pool_extent(struct shmpool_pool *pool,
						   pgoff_t pgoff);
u32 shmpool_pool_flags(struct shmpool_pool *pool, struct file *filp);
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
long shmpool_scope_ioctl(struct file *filp, unsigned int cmd, unsigned long arg);

/* fs.c: scopes (filesystem instances) and pool files */
extern struct vfsmount *shmpool_default_mnt;
int shmpool_scope_of(struct file *filp, struct path *root);
struct file *shmpool_pool_create(const struct path *root,
				 const struct shmpool_create_args *args,
				 bool *created);
struct file *shmpool_pool_open(const struct path *root, const char *name,
			       bool rdonly);
int shmpool_pool_unlink(const struct path *root, const char *name);
int shmpool_fs_init(void);
void shmpool_fs_exit(void);

/* doorbell.c */
int shmpool_doorbell_wait(struct shmpool_file *sf, const struct shmpool_wait *cmd);
int shmpool_doorbell_wake(struct shmpool_file *sf, const struct shmpool_wake *cmd);
int shmpool_doorbell_waitv(struct file *filp, const struct shmpool_waitv *cmd);
int shmpool_doorbell_notify(struct shmpool_file *sf,
			    const struct shmpool_notify *cmd);
void shmpool_doorbell_release(struct shmpool_file *sf);
void shmpool_doorbell_death(struct shmpool_pool *pool, u32 id);
unsigned int shmpool_waiters(void);
int shmpool_doorbell_init(void);
void shmpool_doorbell_exit(void);

/* attach.c */
struct seq_file;
int shmpool_attach(struct shmpool_file *sf, struct shmpool_attach *cmd);
void shmpool_attach_done(struct shmpool_file *sf,
			 const struct shmpool_attach *cmd, bool replied);
int shmpool_detach(struct shmpool_file *sf, u32 id);
struct page *shmpool_status_page(struct shmpool_pool *pool);
bool shmpool_attach_live(struct shmpool_pool *pool, u32 id);
__poll_t shmpool_attach_poll(struct file *filp, poll_table *pt);
void shmpool_attach_show(struct seq_file *m, struct shmpool_pool *pool);
void shmpool_attach_pool_init(struct shmpool_pool *pool);
void shmpool_attach_pool_free(struct shmpool_pool *pool);
void shmpool_attach_exit(void);

/* user.c */
struct shmpool_user;
struct shmpool_user *shmpool_user_get(void);
void shmpool_user_put(struct shmpool_user *u);
int shmpool_user_charge_pages(struct shmpool_user *u, unsigned long nr,
			      unsigned long limit);
void shmpool_user_uncharge_pages(struct shmpool_user *u, unsigned long nr);
int shmpool_user_add_waiters(struct shmpool_user *u, unsigned int n);
void shmpool_user_sub_waiters(struct shmpool_user *u, unsigned int n);
int shmpool_user_add_notifier(struct shmpool_user *u);
void shmpool_user_sub_notifier(struct shmpool_user *u);
void shmpool_users_exit(void);

/* dmabuf.c (without CONFIG_DMA_SHARED_BUFFER: EXPORT_DMABUF is ENOTTY) */
#define SHMPOOL_HAVE_DMABUF	IS_ENABLED(CONFIG_DMA_SHARED_BUFFER)
#if SHMPOOL_HAVE_DMABUF
struct file *shmpool_dmabuf_export(struct shmpool_file *sf,
				   struct shmpool_export_dmabuf *cmd);
#else
static inline struct file *
shmpool_dmabuf_export(struct shmpool_file *sf, struct shmpool_export_dmabuf *cmd)
{
	return ERR_PTR(-ENOTTY);
}
#endif

/* main.c */
extern const struct file_operations shmpool_fops;
int shmpool_file_init(struct file *filp, struct shmpool_pool *pool);

#endif /* _SHMPOOL_INTERNAL_H */
