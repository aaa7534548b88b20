/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference shmpool meets lives here, chosen by
 * feature (a probe in Kbuild or a macro the headers define), never by
 * version number or distribution.
 */
#ifndef _SHMPOOL_COMPAT_H
#define _SHMPOOL_COMPAT_H

#include <linux/err.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/mmzone.h>
#include <linux/log2.h>

/*
 * vm_flags became read-only behind vm_flags_set()/vm_flags_clear() in 6.3;
 * before that the field was written directly (mmap_lock held for write in
 * both cases, as in ->mmap).
 */
#ifndef SHMPOOL_HAVE_VM_FLAGS_SET
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/*
 * The largest order the buddy allocator hands out. MAX_ORDER changed meaning
 * (exclusive, then inclusive) and became MAX_PAGE_ORDER across 6.1..6.8, but
 * MAX_ORDER_NR_PAGES has always been the page count of that largest block.
 */
#define SHMPOOL_MAX_ORDER	ilog2(MAX_ORDER_NR_PAGES)

/*
 * eventfd_signal() lost its count argument in 6.8 (it always added 1
 * anyway). Kbuild probes the old prototype.
 */
#include <linux/eventfd.h>
static inline void shmpool_eventfd_signal(struct eventfd_ctx *ctx)
{
#ifdef SHMPOOL_HAVE_EVENTFD_SIGNAL_N
	eventfd_signal(ctx, 1);
#else
	eventfd_signal(ctx);
#endif
}

/*
 * Permission and setattr calls took a struct user_namespace * (the mount's
 * idmapping) until 6.3 and a struct mnt_idmap * since. shmpool mounts are
 * never idmapped (no FS_ALLOW_IDMAP), so the no-op mapping is always right.
 */
#include <linux/fs.h>
#ifdef SHMPOOL_HAVE_MNT_IDMAP
#define shmpool_idmap		mnt_idmap	/* struct shmpool_idmap * */
#define SHMPOOL_NOP_IDMAP	(&nop_mnt_idmap)
#else
#define shmpool_idmap		user_namespace
#define SHMPOOL_NOP_IDMAP	(&init_user_ns)
#endif

/*
 * Inode times became private behind accessors in 6.6-6.7 (i_ctime, then
 * i_mtime and i_atime). Sets ctime and mtime (and atime) to now.
 */
static inline void shmpool_inode_touch(struct inode *inode, bool atime)
{
#ifdef SHMPOOL_HAVE_INODE_TIME_ACCESSORS
	struct timespec64 now = inode_set_ctime_current(inode);

	inode_set_mtime_to_ts(inode, now);
	if (atime)
		inode_set_atime_to_ts(inode, now);
#else
	struct timespec64 now = current_time(inode);

	inode->i_ctime = now;
	inode->i_mtime = now;
	if (atime)
		inode->i_atime = now;
#endif
}

/*
 * An absolute CLOCK_MONOTONIC deadline given by a task in a time namespace,
 * in host time: what timens_ktime_to_host() does for futexes and
 * clock_nanosleep(). Its worker, do_timens_ktime_to_host(), is not exported
 * (nor is init_time_ns), but the offsets are in the task's time namespace,
 * and the initial one's are zero. A deadline before the offset has passed
 * already. CLOCK_REALTIME is not namespaced.
 */
#include <linux/nsproxy.h>
#include <linux/time_namespace.h>
static inline ktime_t shmpool_timens_to_host(clockid_t clock, ktime_t tim)
{
#ifdef CONFIG_TIME_NS
	if (clock == CLOCK_MONOTONIC) {
		struct time_namespace *ns = current->nsproxy->time_ns;
		ktime_t off = timespec64_to_ktime(ns->offsets.monotonic);

		if (off > 0 && tim < off)
			return 0;
		if (off < 0 && tim > KTIME_MAX + off)
			return KTIME_MAX;
		return ktime_sub(tim, off);
	}
#endif
	return tim;
}

/*
 * Attachments learn of an mm's end through an mmu notifier. A kernel built
 * without CONFIG_MMU_NOTIFIER (no distribution kernel: KVM, SGX and a few
 * drivers select it) declares neither call; there ATTACH and DETACH are
 * unknown commands (ENOTTY, so libshmpool falls back to pid ids) and
 * SHMPOOL_FEAT_ATTACH is not reported.
 */
#define SHMPOOL_HAVE_ATTACH	IS_ENABLED(CONFIG_MMU_NOTIFIER)
#if !IS_ENABLED(CONFIG_MMU_NOTIFIER)
static inline struct mmu_notifier *
mmu_notifier_get(const struct mmu_notifier_ops *ops, struct mm_struct *mm)
{
	return ERR_PTR(-ENOTTY);
}

static inline void mmu_notifier_put(struct mmu_notifier *subscription)
{
}
#endif

/*
 * Symbol namespaces became string literals in 6.13: MODULE_IMPORT_NS("NS");
 * before, the macro stringified an identifier: MODULE_IMPORT_NS(NS). Kbuild
 * probes the newer definition. The dma-buf API is in namespace DMA_BUF.
 */
#include <linux/module.h>
#ifdef SHMPOOL_HAVE_IMPORT_NS_STRING
#define SHMPOOL_IMPORT_NS_DMA_BUF()	MODULE_IMPORT_NS("DMA_BUF")
#else
#define SHMPOOL_IMPORT_NS_DMA_BUF()	MODULE_IMPORT_NS(DMA_BUF)
#endif

/*
 * Huge mappings of pool memory (SHMPOOL_CREATE_HUGE): a PMD entry for pages
 * that nobody may take a reference on through it needs the huge pfnmap
 * support of 6.12 (pmd_special(): GUP, fork and zap then know the entry
 * has no struct page to follow). Without it, a PFN PMD would look like a
 * transparent huge page, which pool extents (split order-0 pages) are not:
 * there the flag is refused. Needs THP (not on PREEMPT_RT) and a CPU with
 * PMD leaf entries.
 */
#if IS_ENABLED(CONFIG_TRANSPARENT_HUGEPAGE) && \
	IS_ENABLED(CONFIG_ARCH_SUPPORTS_PMD_PFNMAP)
#define SHMPOOL_HAVE_HUGE	1
#include <linux/huge_mm.h>
#include <linux/pfn_t.h>
static inline bool shmpool_huge_supported(void)
{
	return has_transparent_hugepage();
}

/* A pfn_t in 6.12; mainline dropped pfn_t and takes the plain pfn. */
static inline vm_fault_t shmpool_insert_pfn_pmd(struct vm_fault *vmf,
						unsigned long pfn, bool write)
{
	return vmf_insert_pfn_pmd(vmf, pfn_to_pfn_t(pfn), write);
}
#else
#define SHMPOOL_HAVE_HUGE	0
static inline bool shmpool_huge_supported(void)
{
	return false;
}
#endif

#endif /* _SHMPOOL_COMPAT_H */
